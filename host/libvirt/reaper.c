/* SPDX-License-Identifier: Apache-2.0 */
/* Domains destroyed by a child process (reaper.h). */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "domain.h"
#include "reaper.h"
#include "snapshot.h"

extern char **environ;

struct child {
	struct lv_reaper *r;
	int pidfd;
	struct orch_io *io;
	struct child *next;
};

struct lv_reaper {
	struct orch_loop *loop;
	struct child *children;
};

int lv_reaper_new(struct orch_loop *loop, struct lv_reaper **ret)
{
	struct lv_reaper *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	*ret = r;
	return 0;
}

static void child_free(struct child *c)
{
	for (struct child **p = &c->r->children; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	orch_io_free(c->io);
	close(c->pidfd);
	free(c);
}

void lv_reaper_free(struct lv_reaper *r)
{
	if (!r)
		return;
	while (r->children)
		child_free(r->children);
	free(r);
}

static void on_child_exit(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			  void *data)
{
	struct child *c = data;
	siginfo_t si = {0};

	(void)waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG);
	child_free(c);
}

static bool uuid_ok(const char *s)
{
	if (strlen(s) != LV_UUID_LEN)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF-", *s))
			return false;
	return true;
}

int lv_reaper_destroy(struct lv_reaper *r, const char *uuid, struct orch_error *err)
{
	char *argv[] = {"orchd", LV_REAP_ARG, (char *)uuid, NULL};
	pid_t pid;
	int rc;

	if (!r || !uuid_ok(uuid))
		return orch_err(err, -EINVAL, "no domain UUID to destroy");
	if ((rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ)) != 0)
		return orch_errno(err, -rc, "cannot start a child to destroy domain %s", uuid);
	struct child *c = calloc(1, sizeof(*c));
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (!c || pidfd < 0 || orch_io_add(r->loop, pidfd, EPOLLIN, on_child_exit, c, &c->io) < 0) {
		/* it destroys the domain all the same; reaped here */
		(void)waitpid(pid, NULL, 0);
		if (pidfd >= 0)
			close(pidfd);
		free(c);
		return 0;
	}
	c->r = r;
	c->pidfd = pidfd;
	c->next = r->children;
	r->children = c;
	return 0;
}

static void quiet(void *data, virErrorPtr e)
{
}

void lv_reaper_main(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], LV_REAP_ARG) != 0)
		return;
	if (!uuid_ok(argv[2]))
		_exit(2);
	virSetErrorFunc(NULL, quiet);
	virConnectPtr conn = virConnectOpen(LV_URI_DEFAULT);
	if (!conn)
		_exit(1);
	virDomainPtr dom = virDomainLookupByUUIDString(conn, argv[2]);
	int rc = 0;
	if (dom && virDomainIsActive(dom) == 1 && virDomainDestroy(dom) < 0) {
		fprintf(stderr, "orchd: cannot destroy domain %s: %s\n", argv[2], lv_last_error());
		rc = 1;
	}
	if (dom)
		virDomainFree(dom);
	virConnectClose(conn);
	_exit(rc);
}
