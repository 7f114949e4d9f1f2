/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
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
#include "shell-listen.h"
#include "shell-spawn.h"
#include "shell.h"

#define BUF_SIZE (16 * 1024)
#define SERIAL_POLL_MS 500
#define DEFAULT_WINSIZE_WAIT_MS 700

enum conn_state { C_SIZING, C_RUNNING, C_CLOSED };

struct conn {
	struct sv_shell *srv;
	struct conn *next;
	enum conn_state state;
	int fd; /* the client; for SERIAL the port, owned by the server */
	struct orch_io *io_fd;
	struct sv_shell_pty pty;
	struct orch_io *io_pty;
	struct sv_shell_child child; /* pid 0: not started or reaped */
	struct orch_io *io_pid;
	struct orch_timer *t_size;
	bool fd_eof, pty_eof;
	bool fd_rd_eof;	   /* the client shut down its sending side */
	bool eof_sent;	   /* ^D queued for the shell after that */
	char in[BUF_SIZE]; /* client -> pty */
	size_t in_len;
	char out[BUF_SIZE]; /* pty -> client */
	size_t out_len;
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

static void conn_update(struct conn *c);

static void event(struct sv_shell *s, enum sv_shell_event ev, const char *detail)
{
	if (s->opts.on_event)
		s->opts.on_event(s->opts.slot, ev, detail, s->opts.event_data);
}
static void conn_close(struct conn *c);
static void on_pty(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data);

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

/* Ends the session: the client is closed, the jail killed; the conn goes once reaped. */
static void conn_close(struct conn *c)
{
	if (c->state == C_CLOSED)
		return;
	if (c->state == C_RUNNING)
		event(c->srv, SV_SHELL_CLOSED,
		      c->fd_eof	   ? "client disconnected"
		      : c->pty_eof ? "shell exited"
				   : "closed");
	c->state = C_CLOSED;
	orch_timer_free(c->t_size);
	c->t_size = NULL;
	orch_io_free(c->io_fd);
	c->io_fd = NULL;
	orch_io_free(c->io_pty);
	c->io_pty = NULL;
	if (c->fd >= 0 && c->fd != c->srv->lfd)
		close(c->fd);
	if (c->fd >= 0 && c->fd == c->srv->lfd)
		orch_timer_rearm(c->srv->t_serial, SERIAL_POLL_MS);
	c->fd = -1;
	closep(&c->pty.master);
	closep(&c->pty.slave);
	c->pty.master = c->pty.slave = -1;
	if (c->child.pid > 0) {
		(void)syscall(SYS_pidfd_send_signal, c->child.pidfd, SIGKILL, NULL, 0);
		reap(c, false);
	}
	if (c->child.pid <= 0)
		conn_free(c);
}

static void on_pid(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	reap(c, false);
	if (c->child.pid > 0)
		return;
	if (c->state == C_CLOSED) {
		conn_free(c);
		return;
	}
	/* The jail is gone: whatever the pty still holds goes out, then the client closes. */
	for (;;) {
		if (c->out_len == sizeof(c->out))
			break;
		ssize_t n = read(c->pty.master, c->out + c->out_len, sizeof(c->out) - c->out_len);
		if (n <= 0)
			break;
		c->out_len += (size_t)n;
	}
	c->pty_eof = true;
	conn_update(c);
}

static void set_winsize(struct conn *c, unsigned rows, unsigned cols)
{
	struct winsize ws = {
		.ws_row = (unsigned short)(rows > 1000 ? 1000 : rows),
		.ws_col = (unsigned short)(cols > 1000 ? 1000 : cols),
	};
	(void)ioctl(c->pty.master, TIOCSWINSZ, &ws);
}

/* Looks for the terminal's size report among the bytes received so far; removes it. */
static bool take_size_report(struct conn *c)
{
	for (size_t i = 0; i < c->in_len; i++) {
		if (c->in[i] != '\033')
			continue;
		unsigned rows, cols;
		int n = sv_shell_parse_cpr(c->in + i, c->in_len - i, &rows, &cols);
		if (n == 0)
			return false; /* maybe the start of it: wait for more */
		if (n < 0)
			continue;
		set_winsize(c, rows, cols);
		memmove(c->in + i, c->in + i + (size_t)n, c->in_len - i - (size_t)n);
		c->in_len -= (size_t)n;
		return true;
	}
	return false;
}

static void start_shell(struct conn *c)
{
	struct sv_shell *s = c->srv;
	orch_timer_free(c->t_size);
	c->t_size = NULL;
	int r = sv_shell_spawn(&s->jail, s->opts.slot, c->pty.slave, &c->child, &s->last);
	closep(&c->pty.slave);
	c->pty.slave = -1;
	if (r < 0) {
		char msg[ORCH_ERROR_MSG_MAX + 32];
		event(s, SV_SHELL_FAILED, s->last.msg);
		int n = snprintf(msg, sizeof(msg), "orch: %s\r\n", s->last.msg);
		ssize_t w = write(c->fd, msg, (size_t)n);
		(void)w;
		conn_close(c);
		return;
	}
	if (orch_io_add(s->loop, c->child.pidfd, EPOLLIN, on_pid, c, &c->io_pid) < 0 ||
	    orch_io_add(s->loop, c->pty.master, EPOLLIN, on_pty, c, &c->io_pty) < 0) {
		conn_close(c);
		return;
	}
	c->state = C_RUNNING;
	char d[32];
	snprintf(d, sizeof(d), "pid %d", (int)c->child.pid);
	event(s, SV_SHELL_OPENED, d);
	conn_update(c);
}

static void on_size_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	start_shell(data);
}

static void flush_out(struct conn *c)
{
	while (c->out_len > 0) {
		ssize_t n = write(c->fd, c->out, c->out_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) { /* the client is gone: drop what it cannot get */
				c->fd_eof = true;
				c->out_len = 0;
			}
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
}

static void on_fd(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	if (events & EPOLLOUT)
		flush_out(c);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && c->in_len < sizeof(c->in) &&
	    !c->fd_rd_eof) {
		ssize_t n = read(fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n > 0)
			c->in_len += (size_t)n;
		else if (n == 0 && !(events & (EPOLLHUP | EPOLLERR)))
			c->fd_rd_eof = true; /* half-close: EOF for the shell, output still flows */
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			c->fd_eof = true;
	} else if (events & (EPOLLHUP | EPOLLERR)) {
		c->fd_eof = true;
	}
	if (c->state == C_SIZING && (take_size_report(c) || c->fd_rd_eof)) {
		start_shell(c);
		return;
	}
	conn_update(c);
}

static void on_pty(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct conn *c = data;
	if ((events & EPOLLOUT) && c->in_len > 0) {
		ssize_t n = write(fd, c->in, c->in_len);
		if (n > 0) {
			memmove(c->in, c->in + n, c->in_len - (size_t)n);
			c->in_len -= (size_t)n;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->out_len < sizeof(c->out)) {
		ssize_t n = read(fd, c->out + c->out_len, sizeof(c->out) - c->out_len);
		if (n > 0)
			c->out_len += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			c->pty_eof = true; /* EIO: every slave fd is closed */
	}
	conn_update(c);
}

/* True when the shell's line editor waits for input (non-canonical mode). A ^D written
 * while the line discipline is canonical would turn into a NUL byte when readline then
 * switches it to raw mode, so the end of a half-closed client's input waits for that. */
static bool shell_reading_raw(const struct conn *c)
{
	struct termios t;
	return tcgetattr(c->pty.master, &t) == 0 && !(t.c_lflag & ICANON);
}

/* Recomputes what each side waits for, or ends the session. */
static void conn_update(struct conn *c)
{
	if (c->fd_eof || (c->pty_eof && c->out_len == 0)) {
		conn_close(c);
		return;
	}
	if (c->fd_rd_eof && !c->eof_sent && c->state == C_RUNNING && c->in_len == 0 &&
	    shell_reading_raw(c)) {
		c->in[c->in_len++] = 4; /* ^D: end of input for the shell */
		c->eof_sent = true;
	}
	uint32_t ev = c->out_len > 0 ? EPOLLOUT : 0;
	if (c->in_len < sizeof(c->in) && !c->fd_rd_eof)
		ev |= EPOLLIN | EPOLLRDHUP;
	orch_io_set_events(c->io_fd, ev);
	if (c->io_pty && c->pty_eof) {
		orch_io_free(c->io_pty); /* a hung-up pty would report EPOLLHUP forever */
		c->io_pty = NULL;
	}
	if (c->io_pty) {
		ev = c->in_len > 0 ? EPOLLOUT : 0;
		if (c->out_len < sizeof(c->out))
			ev |= EPOLLIN;
		orch_io_set_events(c->io_pty, ev);
	}
}

static unsigned live(const struct sv_shell *s)
{
	unsigned n = 0;
	for (const struct conn *c = s->conns; c; c = c->next)
		n += c->state != C_CLOSED;
	return n;
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
	c->pty.master = c->pty.slave = -1;
	c->state = C_SIZING;
	c->next = s->conns;
	s->conns = c;
	if (sv_shell_pty_open(s->jail.uid, s->jail.gid, &c->pty, &s->last) < 0 ||
	    orch_io_add(s->loop, fd, EPOLLIN, on_fd, c, &c->io_fd) < 0 ||
	    orch_timer_add(s->loop, s->opts.winsize_wait_ms, 0, on_size_timeout, c, &c->t_size) <
		    0) {
		conn_close(c);
		return;
	}
	memcpy(c->out, SV_SHELL_SIZE_QUERY, sizeof(SV_SHELL_SIZE_QUERY) - 1);
	c->out_len = sizeof(SV_SHELL_SIZE_QUERY) - 1;
	conn_update(c);
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
		if (c->fd == s->lfd)
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
	if (!s->opts.max_conns)
		s->opts.max_conns = SV_SHELL_MAX_CONNS;
	if (!s->opts.winsize_wait_ms)
		s->opts.winsize_wait_ms = DEFAULT_WINSIZE_WAIT_MS;
	int r = sv_shell_addr_parse(o->listen, o->slot, &s->addr, err);
	if (r >= 0)
		r = sv_shell_listen(&s->addr, err);
	if (r < 0) {
		jail_free(&s->jail);
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
		conn_close(c);
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
