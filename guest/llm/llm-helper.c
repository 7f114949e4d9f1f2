/* SPDX-License-Identifier: Apache-2.0 */
/* The endpoint process of one slot (see llm-endpoint.h): orch-supervisor executed again
 * as `orch-supervisor --llm-endpoint --slot N --uid U --gid G [--library PATH]
 * [--max-body BYTES] [--no-seccomp]` with the slot's listening socket as fd 3 and its
 * connection to the supervisor as fd 4. It loads libmicrohttpd, gives up everything
 * else (guest/privsep.h), then serves HTTP until the supervisor closes fd 4. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <jansson.h>

#include "cleanup.h"
#include "llm-endpoint.h"
#include "llm-helper.h"
#include "llm-http.h"
#include "log.h"
#include "privsep.h"
#include "schema.h"

#define FD_LISTEN 3
#define FD_SUPERVISOR 4
/* Descriptors: 32 connections, the two sockets, epolls, stdio, slack. */
#define HELPER_NOFILE 128
/* Bodies (4 MiB) and buffered responses (16 MiB) of 32 connections, with room. */
#define HELPER_MEMORY (2ull * 1024 * 1024 * 1024)

static int m_chunk(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	return llm_http_on_chunk(data, params, err);
}

static int m_done(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return llm_http_on_done(data, params, err);
}

static const struct orch_rpc_method methods[] = {
	{"llm.chunk", ORCH_RPC_M_NOTIFY, 0, m_chunk},
	{"llm.done", ORCH_RPC_M_NOTIFY, 0, m_done},
};

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	/* The supervisor is gone or closed this endpoint: so are we. */
	_exit(0);
}

static int num(const char *s, long long lo, long long hi, long long *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

struct args {
	long long slot, uid, gid, max_body;
	const char *library;
	bool seccomp;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	*a = (struct args){.slot = -1, .uid = -1, .gid = -1, .seccomp = true};
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int r = 0;
		if (!strcmp(k, "--no-seccomp")) {
			a->seccomp = false;
			continue;
		}
		if (!v)
			return -EINVAL;
		i++;
		if (!strcmp(k, "--slot"))
			r = num(v, 0, ORCH_MAX_SLOTS - 1, &a->slot);
		else if (!strcmp(k, "--uid"))
			r = num(v, 1, 4294967294LL, &a->uid);
		else if (!strcmp(k, "--gid"))
			r = num(v, 1, 4294967294LL, &a->gid);
		else if (!strcmp(k, "--max-body"))
			r = num(v, 0, LLM_ENDPOINT_MAX_BODY, &a->max_body);
		else if (!strcmp(k, "--library"))
			a->library = v;
		else
			r = -EINVAL;
		if (r < 0)
			return r;
	}
	return a->slot >= 0 && a->uid > 0 && a->gid > 0 ? 0 : -EINVAL;
}

_Noreturn void llm_helper_main(int argc, char **argv)
{
	struct orch_error err = {0};
	struct orch_loop *loop = NULL;
	struct orch_rpc *rpc = NULL;
	struct llm_http *h = NULL;
	struct args a;
	char slot[24];
	int r;

	const char *lvl = getenv("ORCH_LOG_LEVEL");
	if (lvl)
		(void)orch_log_level_parse(lvl, &orch_log_level);
	if (parse_args(argc, argv, &a) < 0) {
		orch_log(ORCH_LOG_ERROR, "llm", "endpoint process: bad arguments", NULL);
		_exit(2);
	}
	snprintf(slot, sizeof(slot), "%lld", a.slot);
	char name[16]; /* the kernel's limit; the slot is at most 63 */
	snprintf(name, sizeof(name), "orch-llm-%d", (int)(a.slot & 63));
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(FD_LISTEN, F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(FD_SUPERVISOR, F_SETFL, O_NONBLOCK) < 0) {
		orch_log(ORCH_LOG_ERROR, "llm", "endpoint process: descriptors missing", NULL);
		_exit(2);
	}

	/* What needs the filesystem, before it is gone: the library, and the hash seed
	 * jansson would otherwise read from /dev/urandom on first use. */
	json_object_seed(0);
	if (llm_http_load(a.library ? a.library : llm_endpoint_library(), &err) < 0)
		orch_log(ORCH_LOG_WARN, "llm", "LLM endpoint unavailable", "slot", slot, "error",
			 err.msg, NULL);
	struct sv_privsep p = {.uid = (uid_t)a.uid,
			       .gid = (gid_t)a.gid,
			       .nofile = HELPER_NOFILE,
			       .memory = HELPER_MEMORY,
			       .seccomp = a.seccomp};
	if ((r = sv_privsep_enter(&p, &err)) < 0) {
		orch_log(ORCH_LOG_ERROR, "llm", "endpoint process: cannot drop privileges", "slot",
			 slot, "error", err.msg, NULL);
		_exit(1);
	}

	/* From here on everything read comes from an agent (HTTP) or the supervisor. */
	struct orch_rpc_opts opts = {.max_line = ORCH_PROTOCOL_MAX_LINE,
				     .max_queued = 2 * ORCH_PROTOCOL_MAX_LINE,
				     .name = "supervisor"};
	if (orch_loop_new(&loop) < 0 || orch_rpc_new(loop, FD_SUPERVISOR, methods,
						     ELEMENTSOF(methods), &opts, NULL, &rpc) < 0) {
		orch_log(ORCH_LOG_ERROR, "llm", "endpoint process: cannot set up", NULL);
		_exit(1);
	}
	orch_rpc_set_close_cb(rpc, on_close);
	if ((r = llm_http_new(loop, rpc, FD_LISTEN, a.slot, (size_t)a.max_body, &h, &err)) < 0) {
		orch_log(ORCH_LOG_ERROR, "llm", "endpoint process: cannot serve", "slot", slot,
			 "error", err.msg, NULL);
		_exit(1);
	}
	orch_rpc_set_data(rpc, h);
	r = orch_loop_run(loop);
	/* No cleanup: the process ends here (and a sanitizer's exit-time leak check would
	 * need system calls the filter denies). */
	_exit(r < 0 ? 1 : 0);
}
