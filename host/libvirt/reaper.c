/* SPDX-License-Identifier: Apache-2.0 */
/* Domains destroyed, VMs restored or started, and templates saved by child processes
 * (reaper.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "domain.h"
#include "reaper.h"
#include "save-image.h"
#include "snapshot.h"

/* The largest clone XML or share XML passed to a restoring child (argv strings). */
#define RESTORE_ARG_MAX (64 * 1024)
#define RESTORE_ERR_MAX 512
/* A restoring child's exit status when it destroyed the domain it restored because orchd
 * gave the restore up (or went). */
#define RESTORE_EXIT_CANCELLED 3

extern char **environ;

struct child {
	struct lv_reaper *r;
	int pidfd;
	struct orch_io *io;
	struct child *next;
};

struct lv_restore {
	struct lv_reaper *r;
	int pidfd, errfd, keepfd; /* keepfd: closed when orchd gives the restore up */
	struct orch_io *io;
	char uuid[LV_UUID_LEN + 1];
	lv_restore_done_fn done;
	void *data;
	struct lv_restore **ref; /* the caller's pointer to it, cleared when it goes */
	bool cancelled;
	struct lv_restore *next;
};

struct lv_reaper {
	struct orch_loop *loop;
	struct child *children;
	struct lv_restore *restores;
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

static void restore_free(struct lv_restore *j)
{
	for (struct lv_restore **p = &j->r->restores; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	if (j->ref)
		*j->ref = NULL;
	orch_io_free(j->io);
	close(j->pidfd);
	close(j->errfd);
	if (j->keepfd >= 0)
		close(j->keepfd);
	free(j);
}

void lv_reaper_free(struct lv_reaper *r)
{
	if (!r)
		return;
	while (r->children)
		child_free(r->children);
	while (r->restores) /* each child destroys what it restores (keepfd closed) */
		restore_free(r->restores);
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

/* ---- restores ---- */

static void on_restore_exit(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			    void *data)
{
	struct lv_restore *j = data;
	siginfo_t si = {0};
	char msg[RESTORE_ERR_MAX + 1];
	ssize_t n;

	if (waitid(P_PIDFD, (id_t)j->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
		return; /* not yet */
	n = read(j->errfd, msg, RESTORE_ERR_MAX);
	msg[n > 0 ? n : 0] = 0;
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	bool ok = si.si_code == CLD_EXITED && si.si_status == 0;
	if (j->cancelled) {
		struct orch_error err = {0};
		/* It restored the domain before it saw the restore given up. */
		if (ok && lv_reaper_destroy(j->r, j->uuid, &err) < 0)
			fprintf(stderr, "orchd: %s\n", err.msg);
		restore_free(j);
		return;
	}
	lv_restore_done_fn done = j->done;
	void *done_data = j->data;
	restore_free(j);
	if (!ok && !msg[0])
		snprintf(msg, sizeof(msg), "the libvirt child ended with %s %d",
			 si.si_code == CLD_EXITED ? "status" : "signal", si.si_status);
	done(ok ? 0 : -EIO, ok && !msg[0] ? NULL : msg, done_data);
}

static int fd_above(int fd, int min)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
	close(fd);
	return n;
}

/* Starts the child argv runs (a restore or a create of the domain name, UUID uuid). */
static int spawn_job(struct lv_reaper *r, char **argv, const char *what, const char *name,
		     const char *uuid, lv_restore_done_fn done, void *data, struct lv_restore **ret,
		     struct orch_error *err)
{
	int keep[2] = {-1, -1}, errp[2] = {-1, -1}, rc;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	struct lv_restore *j = calloc(1, sizeof(*j));
	if (!j)
		return orch_err(err, -ENOMEM, "out of memory");
	*j = (struct lv_restore){
		.r = r, .pidfd = -1, .errfd = -1, .keepfd = -1, .done = done, .data = data};
	snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
	/* Above 3, so that dup2 onto 2 and 3 always makes a copy without O_CLOEXEC. */
	if (pipe2(keep, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (keep[0] = fd_above(keep[0], 10)) < 0 || (errp[1] = fd_above(errp[1], 10)) < 0) {
		rc = orch_errno(err, -errno, "cannot %s %s in a child: pipe", what, name);
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	posix_spawn_file_actions_adddup2(&fa, keep[0], 3);
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(keep[0]);
	close(errp[1]);
	keep[0] = errp[1] = -1;
	if (rc != 0) {
		rc = orch_errno(err, -rc, "cannot start a child to %s %s", what, name);
		goto fail;
	}
	j->keepfd = keep[1];
	j->errfd = errp[0];
	keep[1] = errp[0] = -1;
	if ((j->pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0 ||
	    orch_io_add(r->loop, j->pidfd, EPOLLIN, on_restore_exit, j, &j->io) < 0) {
		/* It cannot be watched: it destroys what it starts (keepfd closed). */
		close(j->keepfd);
		j->keepfd = -1;
		(void)waitpid(pid, NULL, 0);
		rc = orch_err(err, -EIO, "cannot watch the child to %s %s", what, name);
		goto fail;
	}
	j->next = r->restores;
	r->restores = j;
	j->ref = ret;
	*ret = j;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (keep[i] >= 0)
			close(keep[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (j->pidfd >= 0)
		close(j->pidfd);
	if (j->errfd >= 0)
		close(j->errfd);
	free(j);
	return rc;
}

int lv_reaper_restore(struct lv_reaper *r, const struct lv_restore_in *in, lv_restore_done_fn done,
		      void *data, struct lv_restore **ret, struct orch_error *err)
{
	char *argv[8 + 2] = {"orchd",	       LV_RESTORE_ARG,	 (char *)in->save,
			     (char *)in->name, (char *)in->uuid, (char *)in->xml};
	size_t argc = 6;

	if (!r || !uuid_ok(in->uuid) || in->n_fs > 2 || strlen(in->xml) > RESTORE_ARG_MAX)
		return orch_err(err, -EINVAL, "cannot restore %s in a child", in->name);
	for (size_t i = 0; i < in->n_fs; i++) {
		if (strlen(in->fs_xml[i]) > RESTORE_ARG_MAX)
			return orch_err(err, -EINVAL, "cannot restore %s in a child", in->name);
		argv[argc++] = (char *)in->fs_xml[i];
	}
	argv[argc] = NULL;
	return spawn_job(r, argv, "restore", in->name, in->uuid, done, data, ret, err);
}

int lv_reaper_create(struct lv_reaper *r, const struct lv_restore_in *in, lv_restore_done_fn done,
		     void *data, struct lv_restore **ret, struct orch_error *err)
{
	char *argv[] = {"orchd",	  LV_CREATE_ARG,   (char *)in->name,
			(char *)in->uuid, (char *)in->xml, NULL};

	if (!r || !uuid_ok(in->uuid) || strlen(in->xml) > RESTORE_ARG_MAX)
		return orch_err(err, -EINVAL, "cannot start %s in a child", in->name);
	return spawn_job(r, argv, "start", in->name, in->uuid, done, data, ret, err);
}

int lv_reaper_save(struct lv_reaper *r, const struct lv_save_in *in, lv_restore_done_fn done,
		   void *data, struct lv_restore **ret, struct orch_error *err)
{
	char *argv[] = {
		"orchd", LV_SAVE_ARG, (char *)in->uuid, (char *)in->path, in->drop_zero ? "1" : "0",
		NULL};

	if (!r || !uuid_ok(in->uuid) || strlen(in->path) > RESTORE_ARG_MAX)
		return orch_err(err, -EINVAL, "cannot save %s in a child", in->path);
	return spawn_job(r, argv, "save", in->path, in->uuid, done, data, ret, err);
}

void lv_restore_cancel(struct lv_restore *j)
{
	if (!j || j->cancelled)
		return;
	j->cancelled = true;
	j->ref = NULL;
	close(j->keepfd); /* the child, done, sees it and destroys the domain */
	j->keepfd = -1;
}

/* A child's connection to libvirt, or its exit. */
static virConnectPtr child_connect(void)
{
	virSetErrorFunc(NULL, quiet);
	virConnectPtr conn = virConnectOpen(LV_URI_DEFAULT);
	if (!conn) {
		fprintf(stderr, "cannot connect to libvirt: %s\n", lv_last_error());
		_exit(1);
	}
	return conn;
}

/* A child's domain is the one asked for (its UUID), or the child destroys it and exits. */
static void child_check(virDomainPtr dom, const char *name, const char *uuid, const char *what)
{
	char got[VIR_UUID_STRING_BUFLEN];

	if (virDomainGetUUIDString(dom, got) == 0 && strcasecmp(got, uuid) == 0)
		return;
	fprintf(stderr, "the %s domain %s is not the one asked for\n", what, name);
	virDomainDestroy(dom);
	_exit(1);
}

/* The end of a child that restored or started dom: it exits leaving it running when orchd
 * still wants it (its end of fd 3 is open until it gives the job up), else destroys it. */
static _Noreturn void child_hand_over(virDomainPtr dom)
{
	struct pollfd p = {.fd = 3, .events = POLLIN};
	if (poll(&p, 1, 0) == 0)
		_exit(0);
	virDomainDestroy(dom);
	_exit(RESTORE_EXIT_CANCELLED);
}

/* The restoring child: argv = orchd LV_RESTORE_ARG SAVE NAME UUID XML [FS_XML...]. */
static _Noreturn void restore_main(int argc, char **argv)
{
	const char *save = argv[2], *name = argv[3], *uuid = argv[4], *xml = argv[5];
	struct orch_error err = {0};
	virDomainPtr dom = NULL;

	if (argc < 6 || argc > 8 || !uuid_ok(uuid))
		_exit(2);
	/* libvirt reads the XML from the image: one restore of this image at a time. */
	int fd = open(save, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		fprintf(stderr, "cannot lock %s: %s\n", save, strerror(errno));
		_exit(1);
	}
	virConnectPtr conn = child_connect();
	if (lv_snapshot_restore(conn, save, xml, name, &dom, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		_exit(1);
	}
	close(fd); /* the lock goes with it */
	child_check(dom, name, uuid, "restored");
	for (int i = 6; i < argc; i++)
		if (virDomainAttachDeviceFlags(dom, argv[i], VIR_DOMAIN_AFFECT_LIVE) < 0) {
			fprintf(stderr, "vm %s: cannot attach a share: %s\n", name,
				lv_last_error());
			virDomainDestroy(dom);
			_exit(1);
		}
	child_hand_over(dom);
}

/* The child that starts a domain: argv = orchd LV_CREATE_ARG NAME UUID XML. */
static _Noreturn void create_main(int argc, char **argv)
{
	const char *name = argv[2], *uuid = argv[3], *xml = argv[4];
	struct orch_error err = {0};
	virDomainPtr dom = NULL;

	if (argc != 5 || !uuid_ok(uuid))
		_exit(2);
	virConnectPtr conn = child_connect();
	if (lv_domain_create_xml(conn, name, xml, false, &dom, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		_exit(1);
	}
	child_check(dom, name, uuid, "started");
	child_hand_over(dom);
}

/* The child that saves a template: argv = orchd LV_SAVE_ARG UUID PATH DROP_ZERO(0|1). */
static _Noreturn void save_main(int argc, char **argv)
{
	struct orch_error err = {0};
	uint64_t dropped = 0;

	if (argc != 5 || !uuid_ok(argv[2]))
		_exit(2);
	virConnectPtr conn = child_connect();
	virDomainPtr dom = virDomainLookupByUUIDString(conn, argv[2]);
	if (!dom) {
		fprintf(stderr, "no domain %s to save: %s\n", argv[2], lv_last_error());
		_exit(1);
	}
	if (lv_snapshot_save(dom, argv[3], !strcmp(argv[4], "1"), NULL, &dropped, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		_exit(1);
	}
	fprintf(stderr, LV_SAVE_SAID_DROPPED "%llu\n", (unsigned long long)dropped);
	_exit(0);
}

void lv_reaper_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], LV_SAVE_ARG))
		save_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], LV_RESTORE_ARG))
		restore_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], LV_CREATE_ARG))
		create_main(argc, argv);
	if (argc != 3 || strcmp(argv[1], LV_REAP_ARG) != 0)
		return;
	if (!uuid_ok(argv[2]))
		_exit(2);
	virConnectPtr conn = child_connect();
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
