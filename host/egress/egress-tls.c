/* SPDX-License-Identifier: Apache-2.0 */
/* The interception CA, the intercepted hosts' certificates and the TLS contexts
 * (egress-tls.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cleanup.h"
#include "egress-tls.h"
#include "llm-key.h"

#define CA_DAYS 3650
#define LEAF_DAYS 30

struct egress_tls {
	const struct egress_config *cfg;
	EVP_PKEY *ca_key, *leaf_key;
	X509 *ca;
	char *ca_pem;
	SSL_CTX **server; /* per inject entry */
	SSL_CTX *client;
	char **values; /* per inject entry: prefix + key */
	char **keys;   /* NULL-terminated */
};

static int ssl_err(struct orch_error *err, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return orch_err(err, -EIO, "%s: %s", what, e ? buf : "failed");
}

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if (!(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)))
		return -1;
	int r = X509_add_ext(cert, ext, -1) ? 0 : -1;
	X509_EXTENSION_free(ext);
	return r;
}

/* A certificate for key, signed by issuer_key (issuer NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long days,
		       bool ca, const char *san)
{
	X509 *x = X509_new();
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	BIGNUM *bn = BN_new();
	bool ok = x && serial && bn;

	ok = ok && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(bn, serial) && X509_set_version(x, 2) &&
	     X509_set_serialNumber(x, serial) && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), days * 24 * 3600) && X509_set_pubkey(x, key);
	if (ok) {
		X509_NAME *n = X509_get_subject_name(x);
		ok = X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
						-1, -1, 0) &&
		     X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
						(const unsigned char *)"orch egress", -1, -1, 0) &&
		     X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	}
	X509 *iss = issuer ? issuer : x;
	if (ok && ca)
		ok = add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
		     add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
		     add_ext(x, iss, NID_subject_key_identifier, "hash") == 0;
	if (ok && !ca)
		ok = add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
		     add_ext(x, iss, NID_key_usage, "critical,digitalSignature") == 0 &&
		     add_ext(x, iss, NID_ext_key_usage, "serverAuth") == 0 &&
		     add_ext(x, iss, NID_subject_alt_name, san) == 0 &&
		     add_ext(x, iss, NID_authority_key_identifier, "keyid:always") == 0;
	ok = ok && X509_sign(x, issuer_key, EVP_sha256());
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* <state_dir>/egress/ca.{key,pem}: loaded when present (the key must be 0600), else made. */
static int load_or_make_ca(struct egress_tls *t, const char *state_dir, struct orch_error *err)
{
	_cleanup_free_ char *dir = NULL, *kpath = NULL, *cpath = NULL;
	struct stat st;
	FILE *f;

	if (asprintf(&dir, "%s/egress", state_dir) < 0 || asprintf(&kpath, "%s/ca.key", dir) < 0 ||
	    asprintf(&cpath, "%s/ca.pem", dir) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return orch_errno(err, -errno, "cannot create %s", dir);
	if (stat(kpath, &st) == 0) {
		if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid())
			return orch_err(
				err, -EPERM,
				"%s must be a regular file of orchd's user, mode 0600 (chmod "
				"600 %s)",
				kpath, kpath);
		if (!(f = fopen(kpath, "re")))
			return orch_errno(err, -errno, "cannot open %s", kpath);
		t->ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (!(f = fopen(cpath, "re")))
			return orch_errno(err, -errno, "cannot open %s", cpath);
		t->ca = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		if (!t->ca_key || !t->ca || X509_check_private_key(t->ca, t->ca_key) != 1)
			return ssl_err(err, "the egress CA in the state directory is unusable");
		return 0;
	}
	char cn[128], host[64] = "";
	gethostname(host, sizeof(host) - 1);
	snprintf(cn, sizeof(cn), "orch egress CA %.60s", host);
	if (!(t->ca_key = new_key()) ||
	    !(t->ca = make_cert(t->ca_key, cn, NULL, t->ca_key, CA_DAYS, true, NULL)))
		return ssl_err(err, "cannot make the egress CA");
	int fd = open(kpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return orch_errno(err, -errno, "cannot create %s", kpath);
	}
	bool ok = PEM_write_PrivateKey(f, t->ca_key, NULL, NULL, 0, NULL, NULL);
	ok = fclose(f) == 0 && ok;
	fd = open(cpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		unlink(kpath);
		return orch_errno(err, -errno, "cannot create %s", cpath);
	}
	ok = PEM_write_X509(f, t->ca) && ok;
	ok = fclose(f) == 0 && ok;
	(void)chmod(cpath, 0644);
	if (!ok) {
		unlink(kpath);
		unlink(cpath);
		return ssl_err(err, "cannot write the egress CA");
	}
	return 1; /* made */
}

int egress_tls_new(const struct egress_config *cfg, const char *state_dir, struct egress_tls **ret,
		   struct orch_error *err)
{
	struct egress_tls *t = calloc(1, sizeof(*t));
	size_t n = cfg->n_injects;
	int r;

	if (!t)
		return orch_err(err, -ENOMEM, "out of memory");
	t->cfg = cfg;
	if (!(t->server = calloc(n + 1, sizeof(*t->server))) ||
	    !(t->values = calloc(n + 1, sizeof(*t->values))) ||
	    !(t->keys = calloc(n + 1, sizeof(*t->keys)))) {
		egress_tls_free(t);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	if ((r = load_or_make_ca(t, state_dir, err)) < 0) {
		egress_tls_free(t);
		return r;
	}
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long plen;
	if (!b || !PEM_write_bio_X509(b, t->ca) || (plen = BIO_get_mem_data(b, &pem)) <= 0 ||
	    !(t->ca_pem = strndup(pem, (size_t)plen))) {
		BIO_free(b);
		egress_tls_free(t);
		return ssl_err(err, "cannot encode the egress CA");
	}
	BIO_free(b);
	if (!(t->leaf_key = new_key())) {
		egress_tls_free(t);
		return ssl_err(err, "cannot make a key");
	}
	for (size_t i = 0; i < n; i++) {
		const struct egress_inject *in = &cfg->injects[i];
		char san[300], *key = NULL;
		snprintf(san, sizeof(san), "DNS:%s", in->host);
		X509 *leaf =
			make_cert(t->leaf_key, in->host, t->ca, t->ca_key, LEAF_DAYS, false, san);
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
		if (!leaf || !ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
		    SSL_CTX_use_certificate(ctx, leaf) != 1 ||
		    SSL_CTX_use_PrivateKey(ctx, t->leaf_key) != 1) {
			X509_free(leaf);
			SSL_CTX_free(ctx);
			egress_tls_free(t);
			return ssl_err(err, "cannot make an intercepted host's certificate");
		}
		X509_free(leaf);
		t->server[i] = ctx;
		if ((r = llm_key_read(in->key_file, &key, err)) < 0) {
			egress_tls_free(t);
			return orch_err_prefix(err, "egress.inject[%zu].key_file", i);
		}
		t->keys[i] = key;
		if (asprintf(&t->values[i], "%s%s", in->prefix, key) < 0) {
			t->values[i] = NULL;
			egress_tls_free(t);
			return orch_err(err, -ENOMEM, "out of memory");
		}
	}
	t->client = SSL_CTX_new(TLS_client_method());
	if (!t->client || !SSL_CTX_set_min_proto_version(t->client, TLS1_2_VERSION) ||
	    (cfg->upstream_ca_file
		     ? SSL_CTX_load_verify_locations(t->client, cfg->upstream_ca_file, NULL) != 1
		     : SSL_CTX_set_default_verify_paths(t->client) != 1)) {
		egress_tls_free(t);
		return ssl_err(err, "cannot set up TLS to the intercepted hosts");
	}
	SSL_CTX_set_verify(t->client, SSL_VERIFY_PEER, NULL);
	*ret = t;
	return 0;
}

void egress_tls_free(struct egress_tls *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->server && t->server[i]; i++)
		SSL_CTX_free(t->server[i]);
	for (size_t i = 0; t->values && t->values[i]; i++) {
		explicit_bzero(t->values[i], strlen(t->values[i]));
		free(t->values[i]);
	}
	for (size_t i = 0; t->keys && t->keys[i]; i++)
		llm_key_free(t->keys[i]);
	free(t->server);
	free(t->values);
	free(t->keys);
	SSL_CTX_free(t->client);
	EVP_PKEY_free(t->ca_key);
	EVP_PKEY_free(t->leaf_key);
	X509_free(t->ca);
	free(t->ca_pem);
	free(t);
}

const char *egress_tls_ca_pem(const struct egress_tls *t)
{
	return t->ca_pem;
}

int egress_tls_find(const struct egress_tls *t, const char *host, uint16_t port)
{
	for (size_t i = 0; t && i < t->cfg->n_injects; i++)
		if (t->cfg->injects[i].port == port && !strcmp(t->cfg->injects[i].host, host))
			return (int)i;
	return -1;
}

SSL_CTX *egress_tls_server_ctx(const struct egress_tls *t, int i)
{
	return t->server[i];
}

SSL_CTX *egress_tls_client_ctx(const struct egress_tls *t)
{
	return t->client;
}

const char *egress_tls_header_value(const struct egress_tls *t, int i)
{
	return t->values[i];
}

const char *const *egress_tls_keys(const struct egress_tls *t)
{
	return (const char *const *)t->keys;
}
