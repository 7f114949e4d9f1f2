/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "cleanup.h"
#include "llm-http.h"

/* Response headers handed to the agent; everything else (cookies, upstream internals) is
 * dropped. */
static const char *const pass_headers[] = {
	"content-type",
	"request-id",
	"x-request-id",
	"retry-after",
};

struct llm_http {
	struct llm_curl *curl;
	CURL *easy;
	struct curl_slist *hdrs;
	const struct llm_http_ops *ops;
	void *data;
	json_t *resp_headers;
	bool head_sent, aborted, paused;
	char errbuf[CURL_ERROR_SIZE];
	struct llm_http *next, *prev;
};

struct llm_curl {
	struct orch_loop *loop;
	CURLM *multi;
	struct orch_timer *timer;
	struct llm_http *list;
	unsigned in_action; /* depth of curl_multi_socket_action calls */
	bool need_sweep;
};

static void unlink_http(struct llm_http *h)
{
	struct llm_curl *c = h->curl;

	if (h->prev)
		h->prev->next = h->next;
	else
		c->list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->next = h->prev = NULL;
}

static void http_free(struct llm_http *h)
{
	if (!h)
		return;
	if (h->easy) {
		curl_multi_remove_handle(h->curl->multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	unlink_http(h);
	curl_slist_free_all(h->hdrs);
	json_decref(h->resp_headers);
	free(h);
}

static void sweep(struct llm_curl *c)
{
	struct llm_http *h = c->list, *next;

	c->need_sweep = false;
	for (; h; h = next) {
		next = h->next;
		if (h->aborted)
			http_free(h);
	}
}

static void send_head(struct llm_http *h)
{
	long status = 0;

	if (h->head_sent)
		return;
	h->head_sent = true;
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	if (h->ops->head)
		h->ops->head(h->data, (int)status, h->resp_headers);
}

/* -ECONNREFUSED means the request never left: no connection, or TLS refused the peer. */
static int curl_code(CURLcode rc)
{
	static const CURLcode never_sent[] = {
		CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,    CURLE_COULDNT_CONNECT,
		CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR,
		CURLE_SSL_CERTPROBLEM,	    CURLE_SSL_CACERT_BADFILE,
	};

	if (rc == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	for (size_t i = 0; i < ELEMENTSOF(never_sent); i++)
		if (rc == never_sent[i])
			return -ECONNREFUSED;
	return -EIO;
}

static void check_done(struct llm_curl *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct llm_http *h = NULL;
		int code = 0;
		const char *msg = "";

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
		if (!h || h->aborted)
			continue;
		if (m->data.result != CURLE_OK) {
			code = curl_code(m->data.result);
			msg = h->errbuf[0] ? h->errbuf : curl_easy_strerror(m->data.result);
		} else {
			send_head(h);
		}
		/* The callback may start or abort transfers; this one is gone afterwards. */
		h->aborted = true;
		if (h->ops->done)
			h->ops->done(h->data, code, msg);
		http_free(h);
	}
	if (c->need_sweep)
		sweep(c);
}

static void action(struct llm_curl *c, curl_socket_t s, int ev)
{
	int running;

	c->in_action++;
	curl_multi_socket_action(c->multi, s, ev, &running);
	c->in_action--;
	check_done(c);
}

static void on_io(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	int ev = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
		ev |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		ev |= CURL_CSELECT_OUT;
	if (events & EPOLLERR)
		ev |= CURL_CSELECT_ERR;
	action(data, fd, ev);
}

static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	action(data, CURL_SOCKET_TIMEOUT, 0);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct llm_curl *c = userp;
	struct orch_io *io = socketp;
	uint32_t ev = 0;

	if (what == CURL_POLL_REMOVE) {
		orch_io_free(io);
		curl_multi_assign(c->multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (io)
		return orch_io_set_events(io, ev) < 0 ? -1 : 0;
	if (orch_io_add(c->loop, s, ev, on_io, c, &io) < 0)
		return -1;
	curl_multi_assign(c->multi, s, io);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct llm_curl *c = userp;

	if (timeout_ms < 0)
		orch_timer_disarm(c->timer);
	else
		orch_timer_rearm(c->timer, (uint64_t)timeout_ms);
	return 0;
}

int llm_curl_new(struct orch_loop *loop, struct llm_curl **ret, struct orch_error *err)
{
	struct llm_curl *c;
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return orch_err(err, -EIO, "libcurl failed to initialise");
	c = calloc(1, sizeof(*c));
	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	c->loop = loop;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		return orch_err(err, -ENOMEM, "curl_multi_init failed");
	}
	r = orch_timer_add(loop, 0, 0, on_timer, c, &c->timer);
	if (r < 0) {
		curl_multi_cleanup(c->multi);
		free(c);
		return orch_errno(err, r, "cannot add the curl timer");
	}
	orch_timer_disarm(c->timer);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	*ret = c;
	return 0;
}

void llm_curl_free(struct llm_curl *c)
{
	if (!c)
		return;
	while (c->list)
		http_free(c->list);
	curl_multi_cleanup(c->multi);
	orch_timer_free(c->timer);
	free(c);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct llm_http *h = userdata;
	size_t len = size * nmemb;

	if (h->aborted)
		return 0; /* ends the transfer; swept afterwards */
	send_head(h);
	if (!h->aborted && h->ops->body && len && h->ops->body(h->data, ptr, len)) {
		if (h->aborted)
			return 0;
		h->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	return h->aborted ? 0 : len;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct llm_http *h = userdata;
	size_t len = size * nitems, nlen, vstart, vend;
	char name[64];
	const char *colon;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		json_object_clear(h->resp_headers); /* a new response (after 100 Continue) */
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - buf);
	if (nlen == 0 || nlen >= sizeof(name))
		return len;
	for (size_t i = 0; i < nlen; i++)
		name[i] = (char)tolower((unsigned char)buf[i]);
	name[nlen] = '\0';
	for (size_t i = 0; i < ELEMENTSOF(pass_headers); i++) {
		if (strcmp(name, pass_headers[i]) != 0)
			continue;
		vstart = nlen + 1;
		vend = len;
		while (vstart < vend && (buf[vstart] == ' ' || buf[vstart] == '\t'))
			vstart++;
		while (vend > vstart &&
		       (buf[vend - 1] == '\r' || buf[vend - 1] == '\n' || buf[vend - 1] == ' '))
			vend--;
		if (vend - vstart <= 1024)
			json_object_set_new(h->resp_headers, name,
					    json_stringn_nocheck(buf + vstart, vend - vstart));
	}
	return len;
}

int llm_http_start(struct llm_curl *c, const struct llm_http_req *req,
		   const struct llm_http_ops *ops, void *data, struct llm_http **ret,
		   struct orch_error *err)
{
	struct llm_http *h;
	CURL *e;

	if (!req->url || !req->method ||
	    (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0))
		return orch_err(err, -EINVAL, "llm upstream: bad request");
	h = calloc(1, sizeof(*h));
	if (!h)
		return orch_err(err, -ENOMEM, "out of memory");
	h->curl = c;
	h->ops = ops;
	h->data = data;
	h->resp_headers = json_object();
	h->easy = e = curl_easy_init();
	h->next = c->list;
	if (c->list)
		c->list->prev = h;
	c->list = h;
	if (!e || !h->resp_headers) {
		http_free(h);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		struct curl_slist *n = curl_slist_append(h->hdrs, req->headers[i]);
		if (!n) {
			http_free(h);
			return orch_err(err, -ENOMEM, "out of memory");
		}
		h->hdrs = n;
	}
	h->hdrs = curl_slist_append(h->hdrs, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 600000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (req->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
	if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
	}
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		http_free(h);
		return orch_err(err, -EIO, "llm upstream: cannot add the transfer");
	}
	if (ret)
		*ret = h;
	return 0;
}

void llm_http_resume(struct llm_http *h)
{
	struct llm_curl *c;

	if (!h || h->aborted || !h->paused)
		return;
	c = h->curl;
	h->paused = false;
	c->in_action++;
	curl_easy_pause(h->easy, CURLPAUSE_CONT);
	c->in_action--;
	/* Unpausing may have finished it, or another pause may be pending: let the loop
	 * look (curl set a timer), and collect what is done. */
	check_done(c);
}

void llm_http_abort(struct llm_http *h)
{
	if (!h || h->aborted)
		return;
	h->aborted = true;
	if (h->curl->in_action)
		h->curl->need_sweep = true;
	else
		http_free(h);
}
