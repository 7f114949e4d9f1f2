/* SPDX-License-Identifier: Apache-2.0 */
/* The egress lane, the supervisor's end (egress-proxy.h): dialled like the LLM channel,
 * redialled with backoff; orchd's hello (and its CA certificate, written where the jails
 * can have it bound); frames in and out with the lane's congestion bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "egress-internal.h"
#include "log.h"
#include "netns.h"

#define DIAL_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READ_BUDGET (1024 * 1024) /* per wake-up: the agents' pipes and channels run too */
#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define JAIL_CA "/run/orch/egress-ca.pem"
#define JAIL_BUNDLE "/run/orch/ca-bundle.pem"

static void lane_drop(struct egress_bridge *b, const char *why);

static void lane_events(struct egress_bridge *b)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP;

	if (b->lane && orch_egress_io_queued(b->lane) > 0)
		ev |= EPOLLOUT;
	if (b->lane_io)
		(void)orch_io_set_events(b->lane_io, ev);
}

/* Congestion: past EGRESS_LANE_CONGESTED queued, the agents' sockets are not read until
 * the lane drains to half of it. */
static void congestion(struct egress_bridge *b)
{
	size_t q = b->lane ? orch_egress_io_queued(b->lane) : 0;
	bool was = b->congested;

	if (q >= EGRESS_LANE_CONGESTED)
		b->congested = true;
	else if (q < EGRESS_LANE_CONGESTED / 2)
		b->congested = false;
	if (was != b->congested)
		egress_conns_update(b);
}

int egress_lane_send(struct egress_bridge *b, uint8_t type, uint32_t conn, const void *p,
		     size_t len)
{
	bool was_empty;
	int r;

	if (!b->lane)
		return -ENOTCONN;
	was_empty = orch_egress_io_queued(b->lane) == 0;
	if ((r = orch_egress_io_queue(b->lane, type, conn, p, len)) < 0)
		return r;
	if (was_empty && (r = orch_egress_io_flush(b->lane, b->lane_fd)) < 0) {
		/* reported by the lane's own event */
		lane_events(b);
		return 0;
	}
	lane_events(b);
	congestion(b);
	return 0;
}

int egress_lane_credit(struct egress_bridge *b, uint32_t conn, uint32_t n)
{
	uint8_t p[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	return egress_lane_send(b, ORCH_EGRESS_CREDIT, conn, p, sizeof(p));
}

/* ---- the CA, for the jails ---- */

static void ca_remove(struct egress_bridge *b)
{
	if (b->ca_file[0])
		unlink(b->ca_file);
	if (b->bundle_file[0])
		unlink(b->bundle_file);
	if (b->ca_dir)
		rmdir(b->ca_dir);
	free(b->ca_dir);
	b->ca_dir = NULL;
	b->ca_file[0] = b->bundle_file[0] = 0;
}

static int write_file(const char *path, const char *a, size_t alen, const char *b, size_t blen)
{
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if ((alen && write(fd, a, alen) != (ssize_t)alen) ||
	    (blen && write(fd, b, blen) != (ssize_t)blen))
		return -EIO;
	return fchmod(fd, 0644) < 0 ? -errno : 0;
}

/* The CA certificate alone (NODE_EXTRA_CA_CERTS) and the system's bundle with it
 * (SSL_CERT_FILE, GIT_SSL_CAINFO...: those replace the default store), in a fresh
 * directory of their own that agents can read but nobody else can write. */
static int ca_write(struct egress_bridge *b, const char *pem)
{
	_cleanup_free_ char *sys = NULL;
	size_t sys_len = 0;
	char tmpl[64];

	if (b->ca_pem && !strcmp(b->ca_pem, pem))
		return 0;
	ca_remove(b);
	free(b->ca_pem);
	if (!(b->ca_pem = strdup(pem)))
		return -ENOMEM;
	snprintf(tmpl, sizeof(tmpl), "/run/orch-egress.XXXXXX");
	if (!mkdtemp(tmpl)) {
		snprintf(tmpl, sizeof(tmpl), "/tmp/orch-egress.XXXXXX");
		if (!mkdtemp(tmpl))
			return -errno;
	}
	if (chmod(tmpl, 0755) < 0 || !(b->ca_dir = strdup(tmpl)))
		return -errno;
	snprintf(b->ca_file, sizeof(b->ca_file), "%s/ca.pem", tmpl);
	snprintf(b->bundle_file, sizeof(b->bundle_file), "%s/bundle.pem", tmpl);
	FILE *f = fopen(SYSTEM_BUNDLE, "re");
	if (f) {
		sys = malloc(4 * 1024 * 1024);
		if (sys)
			sys_len = fread(sys, 1, 4 * 1024 * 1024, f);
		fclose(f);
	}
	int r = write_file(b->ca_file, pem, strlen(pem), NULL, 0);
	if (r >= 0)
		r = write_file(b->bundle_file, sys ? sys : "", sys_len, pem, strlen(pem));
	if (r < 0) {
		ca_remove(b);
		return r;
	}
	return 0;
}

const char *const *egress_bridge_env(const struct egress_bridge *b)
{
	return b->env;
}

const char *const *egress_bridge_binds(const struct egress_bridge *b)
{
	return b->binds;
}

static void env_build(struct egress_bridge *b)
{
	static const char *const names[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
					    "https_proxy"};
	static const char *const ca[] = {"SSL_CERT_FILE=" JAIL_BUNDLE,
					 "GIT_SSL_CAINFO=" JAIL_BUNDLE,
					 "CURL_CA_BUNDLE=" JAIL_BUNDLE,
					 "REQUESTS_CA_BUNDLE=" JAIL_BUNDLE,
					 "PIP_CERT=" JAIL_BUNDLE,
					 "NODE_EXTRA_CA_CERTS=" JAIL_CA,
					 NULL};
	size_t n = 0, k = 0;
	struct stat st;

	for (size_t i = 0; i < 4; i++) {
		snprintf(b->proxy_env[i], sizeof(b->proxy_env[i]), "%s=http://127.0.0.1:%u",
			 names[i], b->o.port);
		b->env[n++] = b->proxy_env[i];
	}
	b->env[n++] = "NO_PROXY=127.0.0.1,localhost";
	b->env[n++] = "no_proxy=127.0.0.1,localhost";
	for (size_t i = 0; ca[i] && b->ca_dir; i++)
		b->env[n++] = ca[i];
	b->env[n] = NULL;
	if (b->ca_dir) {
		b->binds[k++] = b->ca_file;
		b->binds[k++] = JAIL_CA;
		b->binds[k++] = b->bundle_file;
		b->binds[k++] = JAIL_BUNDLE;
		/* The system's store too, for tools that read only it. */
		if (lstat(SYSTEM_BUNDLE, &st) == 0 && S_ISREG(st.st_mode)) {
			b->binds[k++] = b->bundle_file;
			b->binds[k++] = SYSTEM_BUNDLE;
		}
	}
	b->binds[k] = NULL;
}

/* ---- the lane ---- */

static int on_frame(void *data, const struct orch_egress_hdr *h, const uint8_t *p)
{
	struct egress_bridge *b = data;
	struct orch_error err = {0};
	int r;

	if (h->type == ORCH_EGRESS_HELLO) {
		_cleanup_json_ json_t *root = NULL;
		struct orch_egress_hello hello;
		if (b->ready || orch_egress_hello_parse(p, h->len, &root, &hello, &err) < 0) {
			orch_log(ORCH_LOG_WARN, "egress", "bad hello on the egress lane", "error",
				 err.msg[0] ? err.msg : "a second hello", NULL);
			return -EPROTO;
		}
		if (hello.ca_pem && (r = ca_write(b, hello.ca_pem)) < 0)
			orch_logf(ORCH_LOG_WARN, "egress", "cannot write the CA for the jails: %s",
				  strerror(-r));
		env_build(b);
		b->ready = true;
		return 0;
	}
	if (!b->ready) {
		orch_log(ORCH_LOG_WARN, "egress", "frame before hello on the egress lane", NULL);
		return -EPROTO;
	}
	if ((r = egress_conn_on_frame(b, h, p, &err)) < 0)
		orch_log(ORCH_LOG_WARN, "egress", "protocol error on the egress lane", "error",
			 err.msg, NULL);
	return r;
}

static int on_sink(void *data, const struct orch_egress_hdr *h)
{
	return egress_conn_sink(data, h);
}

static void on_sunk(void *data, const struct orch_egress_hdr *h)
{
	egress_conn_sunk(data, h);
}

static void schedule(struct egress_bridge *b)
{
	if (b->stopping)
		return;
	if (b->addr.kind == ORCH_TRANSPORT_FD && b->fd_used) {
		orch_log(ORCH_LOG_WARN, "egress", "egress lane closed and cannot be dialled again",
			 "connect", b->connect, NULL);
		return;
	}
	uint64_t d = b->backoff_ms;
	b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (b->backoff_ms > BACKOFF_MAX_MS)
		b->backoff_ms = BACKOFF_MAX_MS;
	orch_timer_rearm(b->reconnect, d);
}

static void on_lane(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct egress_bridge *b = data;
	struct orch_error err = {0};
	int r;

	if (events & EPOLLOUT) {
		if ((r = orch_egress_io_flush(b->lane, fd)) < 0) {
			lane_drop(b, strerror(-r));
			return;
		}
		congestion(b);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		r = orch_egress_io_read(b->lane, fd, READ_BUDGET, &err);
		if (r < 0) {
			lane_drop(b, r == -EPIPE  ? "closed by orchd"
				     : err.msg[0] ? err.msg
						  : strerror(-r));
			return;
		}
	}
	lane_events(b);
}

/* Every connection ends with the lane (their agents see the connection close). */
static void lane_drop(struct egress_bridge *b, const char *why)
{
	if (!b->lane)
		return;
	orch_log(ORCH_LOG_INFO, "egress", "egress lane closed", "why", why, NULL);
	orch_io_free(b->lane_io);
	b->lane_io = NULL;
	orch_egress_io_free(b->lane);
	b->lane = NULL;
	close(b->lane_fd);
	b->lane_fd = -1;
	b->ready = false;
	b->congested = false;
	for (size_t i = 0; i < EGRESS_BUCKETS; i++)
		while (b->buckets[i])
			egress_conn_free(b->buckets[i], NULL);
	if (orch_now_ms() - b->connected_ms >= BACKOFF_MAX_MS)
		b->backoff_ms = 0;
	schedule(b);
}

static void connect_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct egress_bridge *b = data;
	struct orch_error err = {0};

	if (b->lane || b->stopping)
		return;
	int fd = orch_transport_dial(&b->addr, DIAL_TIMEOUT_MS, &err);
	if (fd < 0) {
		orch_log(ORCH_LOG_WARN, "egress", "cannot reach orchd's egress lane", "error",
			 err.msg, NULL);
		schedule(b);
		return;
	}
	if (b->addr.kind == ORCH_TRANSPORT_FD)
		b->fd_used = true;
	if (orch_egress_io_new(on_frame, b, &b->lane) < 0 ||
	    orch_io_add(b->loop, fd, EPOLLIN | EPOLLRDHUP, on_lane, b, &b->lane_io) < 0) {
		orch_egress_io_free(b->lane);
		b->lane = NULL;
		close(fd);
		schedule(b);
		return;
	}
	/* downloads go from the lane to the agents' sockets inside the kernel */
	orch_egress_io_set_sink(b->lane, on_sink, on_sunk);
	b->lane_fd = fd;
	b->connected_ms = orch_now_ms();
	orch_log(ORCH_LOG_INFO, "egress", "egress lane connected", "connect", b->connect, NULL);
}

/* ---- the bridge ---- */

static int listen_slot(struct egress_bridge *b, unsigned slot, struct orch_error *err)
{
	/* the slot's own network namespace; without one (tests), the caller's */
	_cleanup_close_ int fd =
		b->o.netns_fds ? sv_netns_socket(b->o.netns_fds[slot], AF_INET,
						 SOCK_STREAM | SOCK_NONBLOCK, err)
			       : socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return b->o.netns_fds ? fd : orch_errno(err, -errno, "socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)b->o.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0)
		return orch_errno(err, -errno, "slot %u: cannot listen on 127.0.0.1:%u", slot,
				  b->o.port);
	return egress_ep_new(b, slot, TAKE_FD(fd), err);
}

int egress_bridge_new(struct orch_loop *loop, const struct egress_bridge_opts *o,
		      struct egress_bridge **ret, struct orch_error *err)
{
	struct egress_bridge *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return orch_err(err, -ENOMEM, "out of memory");
	b->loop = loop;
	b->o = *o;
	b->lane_fd = -1;
	if (o->slots > EGRESS_MAX_SLOTS || !o->port || !o->connect ||
	    !(b->connect = strdup(o->connect))) {
		free(b);
		return orch_err(err, -EINVAL, "egress: bad options");
	}
	b->o.connect = b->connect;
	if (o->netns_fds) { /* the slots' namespaces are used later, when a helper starts */
		memcpy(b->netns_fds, o->netns_fds, o->slots * sizeof(*b->netns_fds));
		b->o.netns_fds = b->netns_fds;
	}
	env_build(b);
	if ((r = orch_addr_parse(b->connect, &b->addr, err)) < 0 ||
	    (r = orch_timer_add(loop, 0, 0, connect_cb, b, &b->reconnect)) < 0) {
		free(b->connect);
		free(b);
		return r < 0 && err && err->msg[0] ? orch_err_prefix(err, "--egress-connect")
						   : orch_errno(err, r, "egress");
	}
	for (unsigned i = 0; i < o->slots; i++)
		if ((r = listen_slot(b, i, err)) < 0) {
			egress_bridge_free(b);
			return r;
		}
	*ret = b;
	return 0;
}

void egress_bridge_free(struct egress_bridge *b)
{
	if (!b)
		return;
	b->stopping = true;
	lane_drop(b, "stopping");
	orch_timer_free(b->reconnect);
	for (unsigned i = 0; i < EGRESS_MAX_SLOTS; i++)
		egress_ep_free(b->eps[i]);
	ca_remove(b);
	free(b->ca_pem);
	free(b->connect);
	free(b->helper);
	free(b);
}

int egress_bridge_set_helper(struct egress_bridge *b, const char *exe)
{
	char *e = NULL;

	if (exe && !(e = strdup(exe)))
		return -ENOMEM;
	free(b->helper);
	b->helper = e;
	return 0;
}

bool egress_bridge_connected(const struct egress_bridge *b)
{
	return b->lane && b->ready;
}

void egress_bridge_redial(struct egress_bridge *b)
{
	if (!b || b->lane || b->stopping)
		return;
	b->backoff_ms = 0;
	orch_timer_rearm(b->reconnect, 0);
}
