/* SPDX-License-Identifier: Apache-2.0 */
/* Host <-> guest message schemas (docs/PROTOCOL.md). Each parse function validates the
 * params object strictly (json_unpack_ex with JSON_STRICT: unknown or ill-typed members
 * are errors) plus explicit range checks, and reports failures as ORCH_RPC_INVALID_PARAMS
 * with the offending field named in err->msg. Parsed strings are BORROWED from params:
 * they live as long as the params json. Builders return new references. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

#define ORCH_PROTOCOL_VERSION 1

/* Bounds applied by the parsers. */
#define ORCH_MAX_SLOTS 64  /* slot numbers are 0-based: 0..slots-1 */
#define ORCH_MAX_ID_LEN 64 /* task / request ids: [A-Za-z0-9._:-]{1,64} */
#define ORCH_MAX_ARGV 256
#define ORCH_MAX_ARG_LEN (64 * 1024)
#define ORCH_MAX_ENV 256
#define ORCH_MAX_OUTPUT_CHUNK (64 * 1024) /* decoded bytes per task.output (at least 1) */
/* Sequence numbers (task.output, heartbeat, llm.chunk): 0..2^53-1, the integers every JSON
 * reader keeps exactly; a counter that got there has no "next" left and is refused. */
#define ORCH_MAX_SEQ 9007199254740991LL
#define ORCH_MAX_REASON_LEN 1024
#define ORCH_MAX_PATH_LEN 4096 /* task.run cwd, ro_paths */
#define ORCH_MAX_RO_PATHS 16   /* task.run ro_paths */
#define ORCH_MAX_ENV_KEY_LEN 256
#define ORCH_MAX_LLM_BODY (4 * 1024 * 1024) /* decoded llm.request body */
#define ORCH_MAX_LLM_CHUNK (64 * 1024)	    /* decoded bytes per llm.chunk */
#define ORCH_MAX_LLM_HEADERS 64
#define ORCH_MAX_LLM_HEADER_LEN 8192 /* one header value */
#define ORCH_MAX_LLM_PATH_LEN 2048
/* max_line for the host <-> guest channel: an llm.request body of ORCH_MAX_LLM_BODY bytes
 * is about 5.6 MB once base64-encoded. Both ends set orch_rpc_opts.max_line to this. */
#define ORCH_PROTOCOL_MAX_LINE (8 * 1024 * 1024)

/* Connection states for method tables (bit masks). */
#define ORCH_STATE_NEW (1u << 0)   /* before hello */
#define ORCH_STATE_READY (1u << 1) /* after a successful hello */

bool orch_id_valid(const char *s);
/* An environment variable's name, wherever one is accepted (task.run, task.submit, the
 * config's profiles, profile files): [A-Za-z_][A-Za-z0-9_]*, 1..ORCH_MAX_ENV_KEY_LEN
 * bytes. The one rule; callers may reserve names of their own on top. */
bool orch_env_name_valid(const char *s);

/* hello: guest -> host request, the first message on a channel. */
struct orch_hello_running {
	const char *task;
	int64_t slot;
};
struct orch_hello {
	int64_t protocol;
	const char *supervisor; /* supervisor version */
	int64_t slots;		/* 1..ORCH_MAX_SLOTS */
	const char *boot_id;	/* changes on every supervisor start */
	json_t *capabilities;	/* borrowed object: {"cgroup":[...], "seccomp":bool, ...} */
	size_t n_running;
	struct orch_hello_running *running; /* allocated (free() it), strings borrowed */
};
int orch_hello_parse(json_t *params, struct orch_hello *ret, struct orch_error *err);
void orch_hello_done(struct orch_hello *h);
json_t *orch_hello_build(const struct orch_hello *h);

/* hello result: host -> guest. */
struct orch_hello_reply {
	int64_t protocol;
	int64_t heartbeat_ms; /* 100..600000 */
	const char *name;     /* the VM's name as the host knows it */
};
int orch_hello_reply_parse(json_t *result, struct orch_hello_reply *ret, struct orch_error *err);
json_t *orch_hello_reply_build(const struct orch_hello_reply *r);

/* heartbeat: guest -> host notification. */
struct orch_heartbeat {
	int64_t seq;
	int64_t running; /* tasks running now */
};
int orch_heartbeat_parse(json_t *params, struct orch_heartbeat *ret, struct orch_error *err);
json_t *orch_heartbeat_build(const struct orch_heartbeat *h);

/* task.run: host -> guest request. */
struct orch_limits {
	int64_t memory_bytes; /* 0: none */
	int64_t pids;	      /* 0: none */
	int64_t cpu_percent;  /* 0: none; 100 = one full cpu */
	int64_t nofile;	      /* 0: default */
	int64_t fsize_bytes;  /* 0: none */
};
struct orch_task_run {
	const char *task;
	int64_t slot;
	size_t argc;
	const char **argv; /* allocated array (NULL-terminated), strings borrowed */
	size_t n_env;
	const char *
		*env;	 /* allocated "K=V" array (NULL-terminated), strings built: freed by done */
	const char *cwd; /* NULL: /workspace */
	int64_t timeout_ms; /* 0: none */
	struct orch_limits limits;
	/* Extra read-only binds (the task's profile): absolute, normalised paths ("/a/b": no
	 * ".", "..", "//" or trailing "/"), not "/"; bound at the same place when they exist.
	 * Allocated array (NULL-terminated), strings borrowed. */
	size_t n_ro_paths;
	const char **ro_paths;
	/* The task's own workspace prepared by the host (a repository checkout): a directory
	 * name below the supervisor's workspace root (orch_workspace_name_valid), bound at
	 * /workspace instead of the slot's agent-N. NULL: agent-N. Borrowed. */
	const char *workspace;
};
/* A task workspace's name: [a-z0-9][a-z0-9_-]{0,63} (no '.', no '/'). */
bool orch_workspace_name_valid(const char *name);
/* A task's PATH when task.run sets none (the supervisor's default; profiles that put an
 * agent's bin/ first extend it). */
#define ORCH_TASK_PATH_DEFAULT "/usr/local/bin:/usr/bin:/bin"
/* Whether path is absolute and normalised as ro_paths requires. */
bool orch_path_normalised(const char *path);
/* Whether a and b (absolute, no trailing '/' but "/" itself) are the same path or one lies
 * below the other. */
bool orch_paths_overlap(const char *a, const char *b);
int orch_task_run_parse(json_t *params, struct orch_task_run *ret, struct orch_error *err);
void orch_task_run_done(struct orch_task_run *r);
json_t *orch_task_run_build(const struct orch_task_run *r);

/* task.output: guest -> host notification; data is base64 on the wire. */
enum orch_stream { ORCH_STREAM_STDOUT = 1, ORCH_STREAM_STDERR = 2 };
struct orch_task_output {
	const char *task;
	int64_t seq; /* per task, from 0, no gaps */
	enum orch_stream stream;
	size_t len;
	unsigned char *data; /* decoded, allocated (freed by done) */
};
int orch_task_output_parse(json_t *params, struct orch_task_output *ret, struct orch_error *err);
void orch_task_output_done(struct orch_task_output *o);
json_t *orch_task_output_build(const char *task, int64_t seq, enum orch_stream stream,
			       const void *data, size_t len);

/* task.exit: guest -> host request (acknowledged, so it is re-sent after a reconnect). */
enum orch_exit_status {
	ORCH_EXIT_EXITED = 1, /* exit_code valid */
	ORCH_EXIT_SIGNALED,   /* signal valid */
	ORCH_EXIT_TIMED_OUT,
	ORCH_EXIT_CANCELLED,
	ORCH_EXIT_FAILED, /* never ran (exec failed, jail could not be built); reason says why */
};
struct orch_rusage {
	int64_t utime_ms, stime_ms, maxrss_kb;
};
struct orch_task_exit {
	const char *task;
	enum orch_exit_status status;
	int64_t exit_code; /* -1 when not EXITED */
	int64_t signal; /* 0 when not SIGNALED (or the signal that killed it on timeout/cancel) */
	int64_t duration_ms;
	int64_t output_seq; /* seq of the next task.output that would have been sent (count) */
	struct orch_rusage rusage;
	const char *reason; /* "" allowed */
};
int orch_task_exit_parse(json_t *params, struct orch_task_exit *ret, struct orch_error *err);
json_t *orch_task_exit_build(const struct orch_task_exit *e);
const char *orch_exit_status_name(enum orch_exit_status s);

/* task.cancel: host -> guest request. */
struct orch_task_cancel {
	const char *task;
	int64_t grace_ms; /* default 2000 */
};
int orch_task_cancel_parse(json_t *params, struct orch_task_cancel *ret, struct orch_error *err);
json_t *orch_task_cancel_build(const struct orch_task_cancel *c);

/* llm.request (guest -> host request), llm.chunk (host -> guest notification),
 * llm.done (host -> guest notification), llm.cancel (guest -> host notification):
 * see docs/PROTOCOL.md. Bodies are base64 on the wire. */
struct orch_llm_request {
	const char *req;    /* request id chosen by the guest */
	int64_t slot;	    /* filled by the supervisor from the socket it arrived on */
	const char *task;   /* task running in that slot, may be NULL */
	const char *method; /* "GET" | "POST" */
	const char *path;   /* e.g. "/v1/messages" */
	json_t *headers;    /* borrowed object of string -> string */
	size_t body_len;
	unsigned char *body; /* decoded, allocated */
};
int orch_llm_request_parse(json_t *params, struct orch_llm_request *ret, struct orch_error *err);
void orch_llm_request_done(struct orch_llm_request *r);
json_t *orch_llm_request_build(const struct orch_llm_request *r);

/* llm.request result: host -> guest, once the upstream's status and headers are known. */
struct orch_llm_response {
	int64_t status;	 /* HTTP status 100..599 */
	json_t *headers; /* borrowed object of string -> string */
};
int orch_llm_response_parse(json_t *result, struct orch_llm_response *ret, struct orch_error *err);
json_t *orch_llm_response_build(const struct orch_llm_response *r);

/* llm.chunk: host -> guest notification, body bytes in order (seq from 0, no gaps). */
struct orch_llm_chunk {
	const char *req;
	int64_t seq;
	size_t len;
	unsigned char *data; /* decoded, allocated (freed by done) */
};
int orch_llm_chunk_parse(json_t *params, struct orch_llm_chunk *ret, struct orch_error *err);
void orch_llm_chunk_done(struct orch_llm_chunk *c);
json_t *orch_llm_chunk_build(const char *req, int64_t seq, const void *data, size_t len);

/* llm.done: host -> guest notification, the end of one llm.request's body. error_code 0
 * means success; otherwise error_message says why (upstream failure, budget, cancel). */
struct orch_llm_done {
	const char *req;
	int64_t error_code;
	const char *error_message; /* NULL when error_code is 0 */
};
int orch_llm_done_parse(json_t *params, struct orch_llm_done *ret, struct orch_error *err);
json_t *orch_llm_done_build(const struct orch_llm_done *d);

/* llm.cancel: guest -> host notification, the agent hung up. */
struct orch_llm_cancel {
	const char *req;
};
int orch_llm_cancel_parse(json_t *params, struct orch_llm_cancel *ret, struct orch_error *err);
json_t *orch_llm_cancel_build(const struct orch_llm_cancel *c);

/* base64 helpers (RFC 4648, with padding). decode rejects invalid input. */
char *orch_b64_encode(const void *data, size_t len);
int orch_b64_decode(const char *s, size_t slen, unsigned char **ret, size_t *ret_len);
