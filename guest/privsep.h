/* SPDX-License-Identifier: Apache-2.0 */
/* Privilege separation (OpenSSH's privsep is the model): the root supervisor keeps the
 * jails, the host channels and every decision; the bytes agents send (HTTP to the in-jail
 * LLM endpoint, a debug shell's terminal traffic) are parsed in helper processes that
 * hold nothing worth taking.
 *
 * A helper is the supervisor's own binary executed again (/proc/self/exe: a fresh address
 * space and layout, no copy of the supervisor's memory, no extra file in the guest image)
 * in a hidden mode named by argv[1]. It gets only the file descriptors it serves, a
 * minimal environment (ORCH_LOG_LEVEL and the sanitizers' options: never the
 * supervisor's, which on the host is orchd's) and a pipe as stderr whose lines the
 * supervisor logs quoted (sv_helper_log_read), so a helper cannot forge log lines. Once
 * it loaded what it needs from the filesystem it calls sv_privsep_enter, which takes
 * everything else away.
 *
 * Uids: a helper runs as a uid of its own, neither root nor an agent's uid:
 *   agents            uid_base + slot          (0..63)
 *   LLM endpoints     uid_base + 64 + slot     (SV_PRIVSEP_LLM)
 *   debug shell relays uid_base + 128 + slot   (SV_PRIVSEP_SHELL)
 *   egress helpers    uid_base + 192 + slot   (SV_PRIVSEP_EGRESS)
 * gid = uid. A supervisor therefore uses uid_base .. uid_base + 255 (the same numbers
 * in a VM and, with the local backend, on the host). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "error.h"

enum sv_privsep_kind {
	SV_PRIVSEP_LLM = 1,    /* an in-jail LLM endpoint's HTTP server, one per slot */
	SV_PRIVSEP_SHELL = 2,  /* a debug shell's byte relay, one per connection */
	SV_PRIVSEP_EGRESS = 3, /* the egress proxy's request-head reader, one per slot */
};

/* uid_base + 64 * kind + slot (see above). */
uid_t sv_privsep_uid(uid_t uid_base, enum sv_privsep_kind kind, unsigned slot);

/* ---- in the supervisor ---- */

struct sv_helper_spawn {
	const char *exe;   /* NULL: /proc/self/exe */
	char *const *argv; /* argv[0] first, NULL-terminated */
	const int *fds;	   /* become 3, 4, ... in the helper (the originals stay open) */
	size_t n_fds;	   /* at most 8 */
	int netns_fd;	   /* the helper lives in this network namespace; < 0: the caller's */
};

struct sv_helper {
	pid_t pid;  /* 0: none */
	int pidfd;  /* CLOEXEC */
	int log_fd; /* the read end of its stderr, CLOEXEC|NONBLOCK */
};

/* A forked child's exec-error pipe (O_CLOEXEC, so that a successful exec closes it):
 * sv_exec_fail in the child writes the errno of a step that failed before exec and exits
 * 127; sv_exec_wait in the parent reads the read end: 0 once the child executed its
 * program, the child's -errno, or 1 when it died before exec without a word. */
_Noreturn void sv_exec_fail(int efd, int r);
int sv_exec_wait(int efd);

/* Forks and executes the helper (stdin and stdout /dev/null, stderr the pipe). Returns
 * once it runs the new program; an exec failure is reported here. Signals, the signal
 * mask and every other descriptor are not inherited. */
int sv_helper_spawn(const struct sv_helper_spawn *s, struct sv_helper *ret, struct orch_error *err);
/* SIGKILL, reap, close (a helper that already exited is only reaped). NULL/pid 0: no-op. */
void sv_helper_kill(struct sv_helper *h);
/* 1 when the helper has exited (not reaped: sv_helper_kill does that), with waitid's
 * si_code (CLD_EXITED, CLD_KILLED...) and si_status; 0 while it runs. */
int sv_helper_exited(const struct sv_helper *h, int *ret_code, int *ret_status);

/* Restarting a helper that serves a listener (the LLM endpoint's, the egress proxy's):
 * the wait before a start after a failed one doubles from SV_HELPER_RESTART_MIN_MS up to
 * SV_HELPER_RESTART_MAX_MS; a helper that ran SV_HELPER_STABLE_MS restarts at once. */
#define SV_HELPER_RESTART_MIN_MS 100
#define SV_HELPER_RESTART_MAX_MS 5000
#define SV_HELPER_STABLE_MS 5000
/* The wait after last_ms (0: the first). */
uint64_t sv_helper_backoff(uint64_t last_ms);
/* After a helper started at started_ms stopped: 0 (start again at once) or the wait. */
uint64_t sv_helper_restart_wait(uint64_t last_ms, uint64_t started_ms, uint64_t now_ms);

/* Lines a helper writes on stderr, logged by the supervisor one by one with the text
 * quoted, bounded in length (SV_HELPER_LOG_LINE) and number (SV_HELPER_LOG_MAX lines per
 * helper, then one "further output dropped"). */
#define SV_HELPER_LOG_LINE 400
#define SV_HELPER_LOG_MAX 200
struct sv_helper_log {
	char buf[SV_HELPER_LOG_LINE + 1];
	size_t len;
	bool skipping; /* the rest of an over-long line */
	unsigned lines;
};
/* Reads what is there (non-blocking). 0: read on; -EPIPE: EOF (the caller stops watching
 * and closes the fd). comp: the log component; slot: for the log line. */
int sv_helper_log_read(int fd, struct sv_helper_log *l, const char *comp, unsigned slot);

/* ---- in the helper ---- */

struct sv_privsep {
	uid_t uid; /* root: switch to these (not 0); else: already unprivileged, must match */
	gid_t gid;
	rlim_t nofile; /* RLIMIT_NOFILE */
	rlim_t memory; /* RLIMIT_AS in bytes; 0: none (never set in sanitizer builds) */
	bool seccomp;  /* install the helpers' seccomp filter */
};

/* Irreversibly, in this order: an empty root directory (a fresh directory under /run, or
 * /tmp, entered and removed, then chroot: nothing can be opened or created any more), an
 * empty capability bounding set, setgroups(0), setresgid, setresuid, a check that
 * neither root nor any other id can be regained, PR_SET_NO_NEW_PRIVS, not dumpable
 * (PR_SET_DUMPABLE 0: no ptrace, no core, /proc/PID owned by root), PR_SET_PDEATHSIG
 * SIGKILL, rlimits (CORE, FSIZE, NPROC, MEMLOCK, MSGQUEUE 0; NOFILE; AS), and a seccomp
 * filter: the jail's denied system calls plus everything that makes a new socket,
 * connection, process or program (socket, socketpair, connect, bind, listen, fork,
 * vfork, clone, clone3, execve, execveat) and the ioctls that push input into a terminal
 * (TIOCSTI, TIOCLINUX), EPERM; a foreign architecture kills.
 * Without root (tests run unprivileged) the first steps are impossible and skipped; the
 * rest is the same. A helper never runs as uid 0: -EPERM. Call before reading anything
 * an agent sent. */
int sv_privsep_enter(const struct sv_privsep *p, struct orch_error *err);
