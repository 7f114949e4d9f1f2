/* SPDX-License-Identifier: Apache-2.0 */
/* TLS for the hosts orchd intercepts (egress.inject, docs/EGRESS.md): the installation's
 * CA (made at the first start under <state_dir>/egress/: ca.key 0600, never leaving the
 * host; ca.pem, the certificate the guests get), one certificate per intercepted host
 * signed by it (made at start, with a key that lives in memory only), the server
 * contexts the agents' TLS ends in, the client context that talks to the real host with
 * verified TLS (the system's trust store, or egress.upstream_ca_file), and the injected
 * keys. OpenSSL (libssl). */
#pragma once

#include <stdint.h>
#include <openssl/ssl.h>

#include "config-egress.h"
#include "error.h"

struct egress_tls;

/* Loads or creates the CA, makes the hosts' certificates, reads the key files. */
int egress_tls_new(const struct egress_config *cfg, const char *state_dir, struct egress_tls **ret,
		   struct orch_error *err);
void egress_tls_free(struct egress_tls *t);
/* The CA certificate, PEM. */
const char *egress_tls_ca_pem(const struct egress_tls *t);
/* The inject entry for host:port (index into cfg->injects), -1 when not intercepted. */
int egress_tls_find(const struct egress_tls *t, const char *host, uint16_t port);
/* The server context presenting the certificate of inject entry i. */
SSL_CTX *egress_tls_server_ctx(const struct egress_tls *t, int i);
/* The client context for the real hosts (peer verification on). */
SSL_CTX *egress_tls_client_ctx(const struct egress_tls *t);
/* The header value of entry i ("<prefix><key>"); its name is cfg->injects[i].header. */
const char *egress_tls_header_value(const struct egress_tls *t, int i);
/* The keys of every entry (for DLP: none may leave in a request), NULL-terminated. */
const char *const *egress_tls_keys(const struct egress_tls *t);
