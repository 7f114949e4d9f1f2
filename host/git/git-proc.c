/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes on the loop (see git-proc.h). Everything the child needs is prepared
 * before fork(); between fork and exec it makes only system calls. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "cleanup.h"
#include "git-proc.h"

#define READ_CHUNK 65536

struct gproc {
	struct orch_loop *loop;
	pid_t pid;
	int pidfd, out_fd, err_fd, in_fd;
	struct orch_io *pid_io, *out_io, *err_io, *in_io;
	struct orch_timer *timer;
	unsigned char *in;
	size_t in_len, in_off;
	size_t out_max, err_max;
	struct gproc_result res;
	size_t out_cap, err_cap;
	gproc_cb cb;
	void *data;
};

static void close_io(struct orch_io **io, int *fd)
{
	orch_io_free(*io);
	*io = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void gproc_free(struct gproc *p)
{
	close_io(&p->pid_io, &p->pidfd);
	close_io(&p->out_io, &p->out_fd);
	close_io(&p->err_io, &p->err_fd);
	close_io(&p->in_io, &p->in_fd);
	orch_timer_free(p->timer);
	free(p->in);
	free(p->res.out);
	free(p->res.err);
	free(p);
}

/* Appends to a bounded buffer; beyond max the bytes are dropped. */
static void append(char **buf, size_t *len, size_t *cap, size_t max, bool *trunc, const char *data,
		   size_t n)
{
	if (*len + n > max) {
		if (trunc)
			*trunc = true;
		n = max > *len ? max - *len : 0;
	}
	if (n == 0)
		return;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < *len + n + 1)
			c *= 2;
		if (c > max + 1)
			c = max + 1;
		char *b = realloc(*buf, c);
		if (!b) {
			if (trunc)
				*trunc = true;
			return;
		}
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* Reads what is there; returns true at EOF or error. */
static bool drain(struct gproc *p, int fd, bool is_out)
{
	char chunk[READ_CHUNK];
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno != EAGAIN;
		if (n == 0)
			return true;
		if (is_out)
			append(&p->res.out, &p->res.out_len, &p->out_cap, p->out_max,
			       &p->res.out_truncated, chunk, (size_t)n);
		else
			append(&p->res.err, &p->res.err_len, &p->err_cap, p->err_max, NULL, chunk,
			       (size_t)n);
	}
	return false;
}

static void on_out(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct gproc *p = data;
	if (drain(p, fd, io == p->out_io)) {
		if (io == p->out_io)
			close_io(&p->out_io, &p->out_fd);
		else
			close_io(&p->err_io, &p->err_fd);
	}
}

static void on_in(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct gproc *p = data;
	while (p->in_off < p->in_len) {
		ssize_t n = write(fd, p->in + p->in_off, p->in_len - p->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break; /* the child stopped reading: its exit says how it went */
		p->in_off += (size_t)n;
	}
	close_io(&p->in_io, &p->in_fd);
}

static void finish(struct gproc *p)
{
	while (p->out_fd >= 0 && !drain(p, p->out_fd, true))
		;
	while (p->err_fd >= 0 && !drain(p, p->err_fd, false))
		;
	if (!p->res.out)
		p->res.out = strdup("");
	if (!p->res.err)
		p->res.err = strdup("");
	p->cb(&p->res, p->data);
	gproc_free(p);
}

static void on_pidfd(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		     void *data)
{
	struct gproc *p = data;
	siginfo_t si = {0};
	int st;
	/* Exited? (not reaped yet, so its process group id cannot have been reused) */
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
		return;
	/* Anything the child left behind in its group goes too. */
	kill(-p->pid, SIGKILL);
	pid_t r = waitpid(p->pid, &st, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return;
	p->res.status = r == p->pid ? st : (W_EXITCODE(127, 0));
	finish(p);
}

static void on_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct gproc *p = data;
	p->res.timed_out = true;
	kill(-p->pid, SIGKILL);
}

/* In the child: the given fds become 3, 4, ...; everything else above 2 is closed. */
static void child_fds(const struct gproc_spec *s, int in, int out, int errfd)
{
	int high[16];
	size_t n = s->n_fds < ELEMENTSOF(high) ? s->n_fds : ELEMENTSOF(high);
	for (size_t i = 0; i < n; i++)
		if ((high[i] = fcntl(s->fds[i], F_DUPFD, 64)) < 0)
			_exit(126);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
		_exit(126);
	for (size_t i = 0; i < n; i++)
		if (dup2(high[i], (int)(3 + i)) < 0)
			_exit(126);
	syscall(SYS_close_range, (unsigned)(3 + n), ~0U, 0);
}

static void child(const struct gproc_spec *s, int in, int out, int errfd)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	setsid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	child_fds(s, in, out, errfd);
	umask(s->umask);
	if (s->fsize_max) {
		struct rlimit rl = {s->fsize_max, s->fsize_max};
		setrlimit(RLIMIT_FSIZE, &rl);
	}
	if (s->as_user && (setgroups(0, NULL) < 0 || setresgid(s->gid, s->gid, s->gid) < 0 ||
			   setresuid(s->uid, s->uid, s->uid) < 0))
		_exit(126);
	if (chdir(s->cwd ? s->cwd : "/") < 0) {
		static const char msg[] = "cannot enter the working directory\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(126);
	}
	execve(s->argv[0], (char *const *)s->argv, (char *const *)s->env);
	static const char msg[] = "cannot execute the program\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(127);
}

int gproc_start(struct orch_loop *loop, const struct gproc_spec *s, gproc_cb cb, void *data,
		struct gproc **ret, struct orch_error *err)
{
	int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
	_cleanup_close_ int devnull = -1;
	struct gproc *p;
	int r;

	if (!s->argv || !s->argv[0] || s->argv[0][0] != '/')
		return orch_err(err, -EINVAL, "a child needs an absolute program path");
	p = calloc(1, sizeof(*p));
	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	p->loop = loop;
	p->pidfd = p->out_fd = p->err_fd = p->in_fd = -1;
	p->out_max = s->out_max;
	p->err_max = s->err_max ? s->err_max : 8192;
	p->cb = cb;
	p->data = data;
	if (s->in && s->in_len) {
		p->in = malloc(s->in_len);
		if (!p->in) {
			free(p);
			return orch_err(err, -ENOMEM, "out of memory");
		}
		memcpy(p->in, s->in, s->in_len);
		p->in_len = s->in_len;
	}
	if ((s->in && pipe2(inp, O_CLOEXEC) < 0) || (s->out_fd < 0 && pipe2(outp, O_CLOEXEC) < 0) ||
	    pipe2(errp, O_CLOEXEC) < 0) {
		r = orch_errno(err, -errno, "pipe");
		goto fail;
	}
	if (!s->in && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		r = orch_errno(err, -errno, "/dev/null");
		goto fail;
	}
	p->pid = fork();
	if (p->pid < 0) {
		r = orch_errno(err, -errno, "fork");
		goto fail;
	}
	if (p->pid == 0)
		child(s, s->in ? inp[0] : devnull, s->out_fd >= 0 ? s->out_fd : outp[1], errp[1]);
	if (inp[0] >= 0)
		close(inp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	close(errp[1]);
	p->in_fd = inp[1];
	p->out_fd = outp[0];
	p->err_fd = errp[0];
	inp[0] = inp[1] = outp[0] = outp[1] = errp[0] = errp[1] = -1;
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0) {
		r = orch_errno(err, -errno, "pidfd_open");
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
		gproc_free(p);
		return r;
	}
	fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
	if (p->in_fd >= 0)
		fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	if (p->out_fd >= 0)
		fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
	if ((r = orch_io_add(loop, p->pidfd, EPOLLIN, on_pidfd, p, &p->pid_io)) < 0 ||
	    (r = orch_io_add(loop, p->err_fd, EPOLLIN, on_out, p, &p->err_io)) < 0 ||
	    (p->out_fd >= 0 &&
	     (r = orch_io_add(loop, p->out_fd, EPOLLIN, on_out, p, &p->out_io)) < 0) ||
	    (p->in_fd >= 0 &&
	     (r = orch_io_add(loop, p->in_fd, EPOLLOUT, on_in, p, &p->in_io)) < 0) ||
	    (s->timeout_ms &&
	     (r = orch_timer_add(loop, s->timeout_ms, 0, on_timeout, p, &p->timer)) < 0)) {
		gproc_cancel(p);
		return orch_errno(err, r, "cannot watch a child");
	}
	if (p->in_fd >= 0 && !p->in)
		close_io(&p->in_io, &p->in_fd);
	if (ret)
		*ret = p;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (inp[i] >= 0)
			close(inp[i]);
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	gproc_free(p);
	return r;
}

void gproc_cancel(struct gproc *p)
{
	if (!p)
		return;
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
		;
	gproc_free(p);
}

bool gproc_ok(const struct gproc_result *res)
{
	return !res->timed_out && WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0;
}

void gproc_describe(const struct gproc_result *res, char *buf, size_t len)
{
	char first[200] = "";
	const char *e = res->err ? res->err : "";
	/* The last non-empty line of stderr says most (git's "fatal: ..."). */
	const char *end = e + strlen(e);
	while (end > e && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > e && start[-1] != '\n')
		start--;
	size_t n = (size_t)(end - start) < sizeof(first) - 1 ? (size_t)(end - start)
							     : sizeof(first) - 1;
	for (size_t i = 0; i < n; i++)
		first[i] = (start[i] >= 0x20 && start[i] < 0x7f) ? start[i] : '?';
	first[n] = '\0';
	if (res->timed_out)
		snprintf(buf, len, "timed out%s%s", first[0] ? ": " : "", first);
	else if (WIFSIGNALED(res->status))
		snprintf(buf, len, "killed by signal %d%s%s", WTERMSIG(res->status),
			 first[0] ? ": " : "", first);
	else
		snprintf(buf, len, "exit %d%s%s", WEXITSTATUS(res->status), first[0] ? ": " : "",
			 first);
}
