/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "privsep.h"
#include "shell-listen.h"
#include "shell-relay.h"
#include "shell-spawn.h"
#include "shell.h"

#define SERIAL_POLL_MS 500
#define DEFAULT_WINSIZE_WAIT_MS 700
#define RELAY_LINGER_MS 5000 /* the relay's time to send the end of the output */

enum conn_state { C_SIZING, C_RUNNING, C_CLOSED };

struct conn {
	struct sv_shell *srv;
	struct conn *next;
	enum conn_state state;
	int fd;	   /* the client until the shell runs (for an error line); SERIAL: the port */
	bool port; /* SERIAL: the session holds the server's port (fd or not) */
	int slave; /* the pty slave, until the shell has it */
	int ctl;   /* the relay's 'S': start the shell */
	struct sv_helper relay; /* pid 0: gone */
	struct orch_io *io_relay, *io_ctl, *io_log;
	struct sv_helper_log log;
	struct orch_timer *t_linger;
	struct sv_shell_child child; /* bwrap; pid 0: not started or reaped */
	struct orch_io *io_pid;
};

struct sv_shell {
	struct orch_loop *loop;
	struct sv_shell_opts opts;
	struct sv_shell_jail jail;
	struct sv_shell_addr addr;
	int lfd;
	struct orch_io *io_listen;
	struct orch_timer *t_serial;
	struct conn *conns;
	struct orch_error last;
};

static void event(struct sv_shell *s, enum sv_shell_event ev, const char *detail)
{
	if (s->opts.on_event)
		s->opts.on_event(s->opts.slot, ev, detail, s->opts.event_data);
}

static void conn_free(struct conn *c)
{
	struct sv_shell *s = c->srv;
	for (struct conn **p = &s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	free(c);
}

static void reap(struct conn *c, bool wait)
{
	if (c->child.pid <= 0)
		return;
	siginfo_t si = {0};
	int r = waitid(P_PIDFD, (id_t)c->child.pidfd, &si, WEXITED | (wait ? 0 : WNOHANG));
	if (r < 0 && errno != ECHILD)
		return;
	if (r == 0 && !wait && si.si_pid == 0)
		return; /* still running */
	orch_io_free(c->io_pid);
	c->io_pid = NULL;
	close(c->child.pidfd);
	close(c->child.status_fd);
	c->child.pid = 0;
}

static void close_client(struct conn *c)
{
	if (c->fd >= 0 && !c->port)
		close(c->fd);
	c->fd = -1;
}

static void relay_stop(struct conn *c)
{
	orch_timer_free(c->t_linger);
	c->t_linger = NULL;
	orch_io_free(c->io_ctl);
	orch_io_free(c->io_relay);
	c->io_ctl = c->io_relay = NULL;
	closep(&c->ctl);
	c->ctl = -1;
	if (c->io_log)
		(void)sv_helper_log_read(c->relay.log_fd, &c->log, "shell", c->srv->opts.slot);
	orch_io_free(c->io_log);
	c->io_log = NULL;
	sv_helper_kill(&c->relay);
}

/* Ends the session: the relay and the jail are killed; the conn goes once reaped. */
static void conn_close(struct conn *c, const char *why)
{
	struct sv_shell *s = c->srv;

	if (c->state == C_CLOSED)
		return;
	if (c->state == C_RUNNING)
		event(s, SV_SHELL_CLOSED, why);
	c->state = C_CLOSED;
	relay_stop(c);
	close_client(c); /* never the port */
	if (c->port)	 /* the next session on the port when it is connected */
		orch_timer_rearm(s->t_serial, SERIAL_POLL_MS);
	c->port = false;
	closep(&c->slave);
	c->slave = -1;
	if (c->child.pid > 0) {
		(void)syscall(SYS_pidfd_send_signal, c->child.pidfd, SIGKILL, NULL, 0);
		reap(c, false);
	}
	if (c->child.pid <= 0)
		conn_free(c);
}

/* The jail ended: the relay sends what the pty still holds, then exits by itself. */
static void on_pid(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	reap(c, false);
	if (c->child.pid > 0)
		return;
	if (c->state == C_CLOSED)
		conn_free(c);
	else if (c->relay.pid > 0)
		orch_timer_rearm(c->t_linger, RELAY_LINGER_MS);
	else
		conn_close(c, "shell exited");
}

static void on_linger(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	conn_close(data, "shell exited");
}

/* The relay exited: its status says why the session ended. */
static void on_relay(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		     void *data)
{
	struct conn *c = data;
	int code = 0, status = 0;
	char why[64];

	if (!sv_helper_exited(&c->relay, &code, &status))
		return;
	if (code == CLD_EXITED && status == SV_SHELL_RELAY_CLIENT_GONE)
		snprintf(why, sizeof(why), "client disconnected");
	else if (code == CLD_EXITED && status == SV_SHELL_RELAY_SHELL_GONE)
		snprintf(why, sizeof(why), "shell exited");
	else if (code == CLD_EXITED)
		snprintf(why, sizeof(why), "relay failed (exit status %d)", status);
	else
		snprintf(why, sizeof(why), "relay killed by signal %d", status);
	if (c->state == C_SIZING && strncmp(why, "relay", 5) == 0)
		event(c->srv, SV_SHELL_FAILED, why);
	conn_close(c, why);
}

static void on_log(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	if (sv_helper_log_read(fd, &c->log, "shell", c->srv->opts.slot) < 0) {
		orch_io_free(c->io_log);
		c->io_log = NULL;
	}
}

static void fail_line(struct conn *c, const char *msg)
{
	char line[ORCH_ERROR_MSG_MAX + 32];
	int n = snprintf(line, sizeof(line), "orch: %s\r\n", msg);
	if (c->fd >= 0) {
		ssize_t w = write(c->fd, line, (size_t)n);
		(void)w;
	}
}

/* The relay has the terminal's size: the jailed shell starts on the pty. */
static void start_shell(struct conn *c)
{
	struct sv_shell *s = c->srv;
	int r = sv_shell_spawn(&s->jail, s->opts.slot, c->slave, &c->child, &s->last);
	closep(&c->slave);
	c->slave = -1;
	if (r < 0) {
		event(s, SV_SHELL_FAILED, s->last.msg);
		relay_stop(c); /* first: nothing of it may follow the message */
		fail_line(c, s->last.msg);
		conn_close(c, "failed");
		return;
	}
	if (orch_io_add(s->loop, c->child.pidfd, EPOLLIN, on_pid, c, &c->io_pid) < 0) {
		conn_close(c, "failed");
		return;
	}
	close_client(c); /* the relay has it */
	c->state = C_RUNNING;
	char d[32];
	snprintf(d, sizeof(d), "pid %d", (int)c->child.pid);
	event(s, SV_SHELL_OPENED, d);
}

static void on_ctl(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	char b = 0;
	ssize_t n = read(fd, &b, 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	orch_io_free(c->io_ctl); /* one byte, once; EOF: the relay's exit tells the rest */
	c->io_ctl = NULL;
	if (n == 1 && b == 'S' && c->state == C_SIZING)
		start_shell(c);
}

static unsigned live(const struct sv_shell *s)
{
	unsigned n = 0;
	for (const struct conn *c = s->conns; c; c = c->next)
		n += c->state != C_CLOSED;
	return n;
}

static int relay_start(struct conn *c, int master, struct orch_error *err)
{
	struct sv_shell *s = c->srv;
	const struct sv_shell_opts *o = &s->opts;
	char slot[16], uid[16], gid[16], wait[16];
	const char *argv[16];
	size_t n = 0;
	int ctl[2], r;
	bool root = geteuid() == 0;

	snprintf(slot, sizeof(slot), "%u", o->slot);
	snprintf(uid, sizeof(uid), "%u", root ? (unsigned)o->relay_uid : (unsigned)getuid());
	snprintf(gid, sizeof(gid), "%u", root ? (unsigned)o->relay_gid : (unsigned)getgid());
	snprintf(wait, sizeof(wait), "%u", o->winsize_wait_ms);
	argv[n++] = "orch-shell-relay";
	argv[n++] = SV_SHELL_RELAY_ARG;
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--uid";
	argv[n++] = uid;
	argv[n++] = "--gid";
	argv[n++] = gid;
	argv[n++] = "--wait-ms";
	argv[n++] = wait;
	if (o->relay_no_seccomp)
		argv[n++] = "--no-seccomp";
	argv[n] = NULL;
	if (pipe2(ctl, O_CLOEXEC | O_NONBLOCK) < 0)
		return orch_errno(err, -errno, "pipe");
	int fds[3] = {c->fd, master, ctl[1]};
	struct sv_helper_spawn sp = {.exe = o->relay_exe,
				     .argv = (char *const *)argv,
				     .fds = fds,
				     .n_fds = 3,
				     .netns_fd = s->jail.netns_fd};
	r = sv_helper_spawn(&sp, &c->relay, err);
	close(ctl[1]);
	c->ctl = ctl[0];
	if (r < 0)
		return r;
	if ((r = orch_io_add(s->loop, c->ctl, EPOLLIN, on_ctl, c, &c->io_ctl)) < 0 ||
	    (r = orch_io_add(s->loop, c->relay.pidfd, EPOLLIN, on_relay, c, &c->io_relay)) < 0 ||
	    (r = orch_io_add(s->loop, c->relay.log_fd, EPOLLIN, on_log, c, &c->io_log)) < 0 ||
	    (r = orch_timer_add(s->loop, 0, 0, on_linger, c, &c->t_linger)) < 0)
		return orch_errno(err, r, "cannot watch the shell relay");
	orch_timer_disarm(c->t_linger);
	return 0;
}

static void conn_start(struct sv_shell *s, int fd)
{
	if (live(s) >= s->opts.max_conns) {
		static const char msg[] = "orch: too many debug shells for this agent\r\n";
		event(s, SV_SHELL_REFUSED, "too many debug shells");
		ssize_t w = write(fd, msg, sizeof(msg) - 1);
		(void)w;
		if (fd != s->lfd)
			close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		if (fd != s->lfd)
			close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	c->port = fd == s->lfd;
	c->slave = c->ctl = -1;
	c->relay = (struct sv_helper){.pidfd = -1, .log_fd = -1};
	c->state = C_SIZING;
	c->next = s->conns;
	s->conns = c;
	struct sv_shell_pty pty = {.master = -1, .slave = -1};
	int r = sv_shell_pty_open(s->jail.uid, s->jail.gid, &pty, &s->last);
	if (r >= 0) {
		c->slave = pty.slave;
		r = relay_start(c, pty.master, &s->last);
		close(pty.master); /* the relay's alone */
	}
	if (r < 0) {
		event(s, SV_SHELL_FAILED, s->last.msg);
		relay_stop(c);
		fail_line(c, s->last.msg);
		conn_close(c, "failed");
	}
}

static void on_listen(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct sv_shell *s = data;
	for (int i = 0; i < 16; i++) {
		int c = sv_shell_accept(fd, &s->addr, s->opts.allow_cid, &s->last);
		if (c == -EPERM) {
			event(s, SV_SHELL_REFUSED, s->last.msg);
			continue;
		}
		if (c < 0)
			return;
		conn_start(s, c);
	}
}

static bool serial_busy(const struct sv_shell *s)
{
	for (const struct conn *c = s->conns; c; c = c->next)
		if (c->port)
			return true;
	return false;
}

static void on_serial_poll(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct sv_shell *s = data;
	if (serial_busy(s))
		return;
	if (sv_shell_serial_connected(s->lfd) == 1)
		conn_start(s, s->lfd);
	else
		orch_timer_rearm(t, SERIAL_POLL_MS);
}

static void jail_free(struct sv_shell_jail *j)
{
	free((char *)j->bwrap);
	free((char *)j->shell_init);
	free((char *)j->workspace);
	free((char *)j->shell);
	for (size_t i = 0; j->ro_paths && i < j->n_ro_paths; i++)
		free(j->ro_paths[i]);
	free((char **)j->ro_paths);
	*j = (struct sv_shell_jail){0};
}

/* The strings are copied; seccomp and cgroup stay borrowed. */
static int jail_copy(struct sv_shell_jail *d, const struct sv_shell_jail *j)
{
	*d = *j;
	d->bwrap = strdup(j->bwrap);
	d->workspace = strdup(j->workspace);
	d->shell_init = j->shell_init ? strdup(j->shell_init) : NULL;
	d->shell = j->shell ? strdup(j->shell) : NULL;
	char **ro = calloc(j->n_ro_paths + 1, sizeof(char *));
	d->ro_paths = ro;
	if (!d->bwrap || !d->workspace || (j->shell_init && !d->shell_init) ||
	    (j->shell && !d->shell) || !ro)
		return -ENOMEM;
	for (size_t i = 0; i < j->n_ro_paths; i++)
		if (!(ro[i] = strdup(j->ro_paths[i])))
			return -ENOMEM;
	return 0;
}

int sv_shell_new(struct orch_loop *loop, const struct sv_shell_opts *o,
		 const struct sv_shell_jail *j, struct sv_shell **ret, struct orch_error *err)
{
	if (!j->bwrap || !j->workspace)
		return orch_err(err, -EINVAL, "shell jail: bwrap and workspace needed");
	if (j->uid == 0)
		return orch_err(err, -EINVAL, "refusing a debug shell as root");
	if (geteuid() == 0 && (o->relay_uid == 0 || o->relay_gid == 0 || o->relay_uid == j->uid))
		return orch_err(err, -EINVAL,
				"a debug shell's relay needs a uid of its own (not root, not the "
				"agent's)");
	_cleanup_free_ struct sv_shell *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->opts = *o;
	if (jail_copy(&s->jail, j) < 0) {
		jail_free(&s->jail);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	s->lfd = -1;
	s->opts.relay_exe = NULL;
	if (o->relay_exe && !(s->opts.relay_exe = strdup(o->relay_exe))) {
		jail_free(&s->jail);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	if (!s->opts.max_conns)
		s->opts.max_conns = SV_SHELL_MAX_CONNS;
	if (!s->opts.winsize_wait_ms)
		s->opts.winsize_wait_ms = DEFAULT_WINSIZE_WAIT_MS;
	int r = sv_shell_addr_parse(o->listen, o->slot, &s->addr, err);
	if (r >= 0)
		r = sv_shell_listen(&s->addr, err);
	if (r < 0) {
		jail_free(&s->jail);
		free((char *)s->opts.relay_exe);
		return r;
	}
	s->lfd = r;
	if (s->addr.kind == SV_SHELL_SERIAL)
		r = orch_timer_add(loop, 0, 0, on_serial_poll, s, &s->t_serial);
	else
		r = orch_io_add(loop, s->lfd, EPOLLIN, on_listen, s, &s->io_listen);
	if (r < 0) {
		close(s->lfd);
		jail_free(&s->jail);
		free((char *)s->opts.relay_exe);
		return orch_errno(err, r, "cannot watch agent %u's shell listener", o->slot);
	}
	*ret = TAKE_PTR(s);
	return 0;
}

void sv_shell_free(struct sv_shell *s)
{
	if (!s)
		return;
	while (s->conns) {
		struct conn *c = s->conns;
		conn_close(c, "closed");
		if (s->conns == c) { /* still being reaped */
			reap(c, true);
			conn_free(c);
		}
	}
	orch_io_free(s->io_listen);
	orch_timer_free(s->t_serial);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->addr.kind == SV_SHELL_UNIX)
		(void)unlink(s->addr.path);
	jail_free(&s->jail);
	free((char *)s->opts.relay_exe);
	free(s);
}

unsigned sv_shell_count(const struct sv_shell *s)
{
	return live(s);
}

const char *sv_shell_last_error(const struct sv_shell *s)
{
	return s->last.msg;
}
