/* SPDX-License-Identifier: Apache-2.0 */
/* Per-agent debug shells. One sv_shell per agent slot: a listener (AF_UNIX path for the
 * local backend, AF_VSOCK port 6000+N accepting only the host's CID, or a virtio-serial
 * port) whose every connection gets an interactive shell on a real PTY, started INSIDE
 * that agent's jail (same uid, bwrap mounts and namespaces, network namespace, seccomp
 * filter, cgroup and rlimits as the agent's tasks).
 *
 * On connect the server asks the client's terminal for its size (cursor-position report
 * after moving the cursor to 999;999, as xterm's resize(1) does) and waits briefly for
 * the answer; a client that is not a terminal gets 24x80. ^C, ^Z, ^\ reach the
 * foreground job through the PTY line discipline (the shell is a session leader with
 * the PTY as its controlling terminal). Closing the connection SIGKILLs bwrap; its pid
 * namespace dies with it, so nothing the shell started survives.
 *
 * Privilege separation: the caller (root) accepts, opens the PTY and starts the jailed
 * shell; it never reads the client's bytes nor the shell's output. Those pass through a
 * relay process per connection (shell-relay.h: the program itself executed again, as
 * relay_uid, without privileges, behind a seccomp filter), which also parses the
 * terminal's size report. When the relay exits the jail is killed; when the jail ends
 * the relay sends what the PTY still holds and exits (else it is killed after 5 s).
 *
 * Who can connect: orchd only (users reach the shells through orchd's relay, which
 * checks they may). The Unix socket is 0600 (root) and lives outside every jail; VSOCK
 * peers other than allow_cid, or from a port that is not reserved (only a privileged host
 * process can bind one), are closed at accept, and jailed processes cannot create
 * AF_VSOCK sockets (seccomp); the virtio-serial port's other end is QEMU's chardev on the
 * host, and the jails' /dev holds no virtio ports.
 *
 * Everything runs on the caller's orch_loop; child exits are observed through pidfds,
 * so the caller must not reap unknown children with waitpid(-1). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "orch-config.h"
#include "cgroup.h"
#include "error.h"
#include "jail-seccomp.h"
#include "loop.h"
#include "schema.h"
#include "transport.h"

#define SV_SHELL_VSOCK_PORT_BASE ORCH_VSOCK_SHELL_PORT_BASE /* + slot */
#define SV_SHELL_MAX_CONNS 4u
#define SV_SHELL_DEFAULT_INIT ORCH_LIBEXECDIR "/orch-shell-init"

/* The agent's jail, as the supervisor builds it for a task of this slot. sv_shell_new
 * copies the strings; seccomp and cgroup are borrowed and must outlive the sv_shell. */
struct sv_shell_jail {
	const char *bwrap;	/* absolute path of bwrap */
	const char *shell_init; /* host path of orch-shell-init; NULL: SV_SHELL_DEFAULT_INIT */
	const char *workspace;	/* host path of <root>/agent-N */
	char *const *ro_paths;
	size_t n_ro_paths;
	const struct sv_seccomp *seccomp; /* NULL: no filter */
	int netns_fd;			  /* the slot's network namespace; < 0: none */
	const struct sv_cgroup *cgroup;	  /* the slot's cgroup (shares its limits); NULL */
	uid_t uid;
	gid_t gid;
	struct orch_limits limits; /* rlimits (nofile, fsize; pids when nproc_rlimit) */
	bool nproc_rlimit;
	const char *shell; /* program inside the jail; NULL: /bin/bash, else /bin/sh */
};

enum sv_shell_event {
	SV_SHELL_OPENED = 1, /* a shell started (detail: "pid N") */
	SV_SHELL_CLOSED,     /* a session ended (detail: why) */
	SV_SHELL_REFUSED,    /* a connection was refused (detail: why) */
	SV_SHELL_FAILED,     /* a shell could not start (detail: the error) */
};

/* Called on the loop for each event, so the caller can log an audit line. */
typedef void (*sv_shell_event_cb)(unsigned slot, enum sv_shell_event ev, const char *detail,
				  void *data);

struct sv_shell_opts {
	unsigned slot;
	/* "unix:/path", "vsock:any:PORT" (default port 6000+slot) or "serial:/dev/..." */
	const char *listen;
	uint32_t allow_cid;	    /* VSOCK: the only peer CID accepted (2 = host) */
	unsigned max_conns;	    /* 0: SV_SHELL_MAX_CONNS */
	unsigned winsize_wait_ms;   /* 0: 700 */
	sv_shell_event_cb on_event; /* may be NULL */
	void *event_data;
	/* The relay processes (shell-relay.h): their uid and gid (sv_privsep_uid, not root
	 * nor the agent's; ignored when the caller is not root), the program (NULL:
	 * /proc/self/exe, whose main() must hand SV_SHELL_RELAY_ARG to
	 * sv_shell_relay_main) and whether their seccomp filter is left out. */
	uid_t relay_uid;
	gid_t relay_gid;
	const char *relay_exe;
	bool relay_no_seccomp;
};

struct sv_shell;

int sv_shell_new(struct orch_loop *loop, const struct sv_shell_opts *o,
		 const struct sv_shell_jail *j, struct sv_shell **ret, struct orch_error *err);
/* Closes the listener and kills every shell of this slot (SIGKILL, then reaped). */
void sv_shell_free(struct sv_shell *s);

/* Live connections (for status reports and tests). */
unsigned sv_shell_count(const struct sv_shell *s);

/* Last error of a connection that failed after accept (exec of bwrap, jail setup), ""
 * when none; for the caller's log. */
const char *sv_shell_last_error(const struct sv_shell *s);
