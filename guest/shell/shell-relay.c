/* SPDX-License-Identifier: Apache-2.0 */
/* One debug shell session's byte relay, in its own unprivileged process (shell-relay.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include "loop.h"
#include "privsep.h"
#include "schema.h"
#include "shell-relay.h"

#define FD_CLIENT 3
#define FD_PTY 4
#define FD_CTL 5
#define BUF_SIZE (16 * 1024)
#define RELAY_NOFILE 16
#define RELAY_MEMORY (256ull * 1024 * 1024)

enum relay_state { R_SIZING, R_RUNNING };

struct relay {
	struct orch_loop *loop;
	enum relay_state state;
	struct orch_io *io_fd, *io_pty;
	struct orch_timer *t_size;
	bool fd_eof, pty_eof;
	bool fd_rd_eof;	   /* the client shut down its sending side */
	bool eof_sent;	   /* ^D queued for the shell after that */
	char in[BUF_SIZE]; /* client -> pty */
	size_t in_len;
	char out[BUF_SIZE]; /* pty -> client */
	size_t out_len;
};

static void update(struct relay *r);

int sv_shell_parse_cpr(const char *buf, size_t len, unsigned *ret_rows, unsigned *ret_cols)
{
	static const char head[] = "\033[";
	for (size_t i = 0; i < 2; i++) {
		if (i >= len)
			return 0;
		if (buf[i] != head[i])
			return -EINVAL;
	}
	unsigned v[2] = {0, 0};
	size_t k = 0, digits = 0;
	for (size_t i = 2; i < len && i < 16; i++) {
		char c = buf[i];
		if (c >= '0' && c <= '9') {
			if (++digits > 4)
				return -EINVAL;
			v[k] = v[k] * 10 + (unsigned)(c - '0');
		} else if (c == ';' && k == 0 && digits > 0) {
			k = 1;
			digits = 0;
		} else if (c == 'R' && k == 1 && digits > 0) {
			if (v[0] == 0 || v[1] == 0)
				return -EINVAL;
			*ret_rows = v[0];
			*ret_cols = v[1];
			return (int)i + 1;
		} else {
			return -EINVAL;
		}
	}
	return len >= 16 ? -EINVAL : 0;
}

static void set_winsize(unsigned rows, unsigned cols)
{
	struct winsize ws = {
		.ws_row = (unsigned short)(rows > 1000 ? 1000 : rows),
		.ws_col = (unsigned short)(cols > 1000 ? 1000 : cols),
	};
	(void)ioctl(FD_PTY, TIOCSWINSZ, &ws);
}

/* Looks for the terminal's size report among the bytes received so far; removes it. */
static bool take_size_report(struct relay *r)
{
	for (size_t i = 0; i < r->in_len; i++) {
		if (r->in[i] != '\033')
			continue;
		unsigned rows, cols;
		int n = sv_shell_parse_cpr(r->in + i, r->in_len - i, &rows, &cols);
		if (n == 0)
			return false; /* maybe the start of it: wait for more */
		if (n < 0)
			continue;
		set_winsize(rows, cols);
		memmove(r->in + i, r->in + i + (size_t)n, r->in_len - i - (size_t)n);
		r->in_len -= (size_t)n;
		return true;
	}
	return false;
}

static void on_pty(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data);

/* The size is set: the supervisor starts the shell, the relay runs both ways. */
static void start(struct relay *r)
{
	orch_timer_free(r->t_size);
	r->t_size = NULL;
	if (write(FD_CTL, "S", 1) != 1 ||
	    orch_io_add(r->loop, FD_PTY, EPOLLIN, on_pty, r, &r->io_pty) < 0)
		_exit(2);
	close(FD_CTL);
	r->state = R_RUNNING;
	update(r);
}

static void on_size_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	start(data);
}

static void flush_out(struct relay *r)
{
	while (r->out_len > 0) {
		ssize_t n = write(FD_CLIENT, r->out, r->out_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) { /* the client is gone: drop what it cannot get */
				r->fd_eof = true;
				r->out_len = 0;
			}
			return;
		}
		memmove(r->out, r->out + n, r->out_len - (size_t)n);
		r->out_len -= (size_t)n;
	}
}

static void on_fd(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct relay *r = data;
	if (events & EPOLLOUT)
		flush_out(r);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && r->in_len < sizeof(r->in) &&
	    !r->fd_rd_eof) {
		ssize_t n = read(fd, r->in + r->in_len, sizeof(r->in) - r->in_len);
		if (n > 0)
			r->in_len += (size_t)n;
		else if (n == 0 && !(events & (EPOLLHUP | EPOLLERR)))
			r->fd_rd_eof = true; /* half-close: EOF for the shell, output still flows */
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			r->fd_eof = true;
	} else if (events & (EPOLLHUP | EPOLLERR)) {
		r->fd_eof = true;
	}
	if (r->state == R_SIZING && !r->fd_eof && (take_size_report(r) || r->fd_rd_eof)) {
		start(r);
		return;
	}
	update(r);
}

static void on_pty(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct relay *r = data;
	if ((events & EPOLLOUT) && r->in_len > 0) {
		ssize_t n = write(fd, r->in, r->in_len);
		if (n > 0) {
			memmove(r->in, r->in + n, r->in_len - (size_t)n);
			r->in_len -= (size_t)n;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && r->out_len < sizeof(r->out)) {
		ssize_t n = read(fd, r->out + r->out_len, sizeof(r->out) - r->out_len);
		if (n > 0)
			r->out_len += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			r->pty_eof = true; /* EIO: every slave fd is closed, the jail is gone */
	}
	update(r);
}

/* True when the shell's line editor waits for input (non-canonical mode). A ^D written
 * while the line discipline is canonical would turn into a NUL byte when readline then
 * switches it to raw mode, so the end of a half-closed client's input waits for that. */
static bool shell_reading_raw(void)
{
	struct termios t;
	return tcgetattr(FD_PTY, &t) == 0 && !(t.c_lflag & ICANON);
}

/* Recomputes what each side waits for, or ends the relay. */
static void update(struct relay *r)
{
	if (r->fd_eof)
		_exit(SV_SHELL_RELAY_CLIENT_GONE);
	if (r->pty_eof && r->out_len == 0)
		_exit(SV_SHELL_RELAY_SHELL_GONE);
	if (r->fd_rd_eof && !r->eof_sent && r->state == R_RUNNING && r->in_len == 0 &&
	    shell_reading_raw()) {
		r->in[r->in_len++] = 4; /* ^D: end of input for the shell */
		r->eof_sent = true;
	}
	uint32_t ev = r->out_len > 0 ? EPOLLOUT : 0;
	if (r->in_len < sizeof(r->in) && !r->fd_rd_eof)
		ev |= EPOLLIN | EPOLLRDHUP;
	orch_io_set_events(r->io_fd, ev);
	if (r->io_pty && r->pty_eof) {
		orch_io_free(r->io_pty); /* a hung-up pty would report EPOLLHUP forever */
		r->io_pty = NULL;
	}
	if (r->io_pty) {
		ev = r->in_len > 0 ? EPOLLOUT : 0;
		if (r->out_len < sizeof(r->out))
			ev |= EPOLLIN;
		orch_io_set_events(r->io_pty, ev);
	}
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

_Noreturn void sv_shell_relay_main(int argc, char **argv)
{
	static struct relay r; /* 32 KiB of buffers: not on the stack */
	struct orch_error err = {0};
	long long slot = -1, uid = -1, gid = -1, wait_ms = 700;
	bool seccomp = true;

	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int e = 0;
		if (!strcmp(k, "--no-seccomp")) {
			seccomp = false;
			continue;
		}
		if (!v)
			_exit(2);
		i++;
		if (!strcmp(k, "--slot"))
			e = num(v, 0, ORCH_MAX_SLOTS - 1, &slot);
		else if (!strcmp(k, "--uid"))
			e = num(v, 1, 4294967294LL, &uid);
		else if (!strcmp(k, "--gid"))
			e = num(v, 1, 4294967294LL, &gid);
		else if (!strcmp(k, "--wait-ms"))
			e = num(v, 1, 60000, &wait_ms);
		else
			e = -EINVAL;
		if (e < 0)
			_exit(2);
	}
	if (slot < 0 || uid < 0 || gid < 0) {
		fprintf(stderr, "shell relay: bad arguments\n");
		_exit(2);
	}
	char name[16];
	snprintf(name, sizeof(name), "orch-shell-%d", (int)(slot & 63));
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	struct sv_privsep p = {.uid = (uid_t)uid,
			       .gid = (gid_t)gid,
			       .nofile = RELAY_NOFILE,
			       .memory = RELAY_MEMORY,
			       .seccomp = seccomp};
	if (sv_privsep_enter(&p, &err) < 0) {
		fprintf(stderr, "shell relay: cannot drop privileges: %s\n", err.msg);
		_exit(2);
	}
	/* From here on: the client's bytes and the shell's output. */
	if (fcntl(FD_CLIENT, F_SETFL, O_NONBLOCK) < 0 || fcntl(FD_PTY, F_SETFL, O_NONBLOCK) < 0 ||
	    orch_loop_new(&r.loop) < 0 ||
	    orch_io_add(r.loop, FD_CLIENT, EPOLLIN, on_fd, &r, &r.io_fd) < 0 ||
	    orch_timer_add(r.loop, (uint64_t)wait_ms, 0, on_size_timeout, &r, &r.t_size) < 0)
		_exit(2);
	memcpy(r.out, SV_SHELL_SIZE_QUERY, sizeof(SV_SHELL_SIZE_QUERY) - 1);
	r.out_len = sizeof(SV_SHELL_SIZE_QUERY) - 1;
	update(&r);
	(void)orch_loop_run(r.loop);
	_exit(2);
}
