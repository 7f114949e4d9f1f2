/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the jail pieces: bwrap argv, seccomp export, network namespace, cgroups,
 * privilege drop, workspace preparation, and one real jailed spawn. Needs root. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "check-run.h"
#include "cleanup.h"
#include "jail-seccomp.h"
#include "jail.h"
#include "netns.h"
#include "privdrop.h"
#include "spawn.h"
#include "strv.h"

#define TEST_UID 10071

static bool is_root(void)
{
	return geteuid() == 0;
}

static size_t strv_find(char **v, const char *s)
{
	for (size_t i = 0; v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return i;
	return (size_t)-1;
}

START_TEST(test_argv)
{
	char *ro[] = {"/usr", "/bin", "/nonexistent-orch-path"};
	const char *cmd[] = {"make", "test", NULL};
	struct sv_jail_spec s = {
		.bwrap = "/usr/bin/bwrap",
		.exec_helper = "/opt/orch-jail-exec",
		.slot = 3,
		.workspace = "/srv/ws/agent-3",
		.ro_paths = ro,
		.n_ro_paths = 3,
		.seccomp = true,
		.argv = cmd,
	};
	char **v = NULL;
	struct orch_error err = {0};
	ck_assert_int_eq(sv_jail_argv(&s, &v, &err), 0);
	ck_assert_str_eq(v[0], "/usr/bin/bwrap");
	ck_assert_uint_ne(strv_find(v, "--unshare-all"), (size_t)-1);
	ck_assert_uint_ne(strv_find(v, "--share-net"), (size_t)-1);
	ck_assert_uint_ne(strv_find(v, "--disable-userns"), (size_t)-1);
	ck_assert_uint_ne(strv_find(v, "--die-with-parent"), (size_t)-1);
	ck_assert_uint_ne(strv_find(v, "--new-session"), (size_t)-1);
	size_t i = strv_find(v, "/srv/ws/agent-3");
	ck_assert_uint_ne(i, (size_t)-1);
	ck_assert_str_eq(v[i - 1], "--bind");
	ck_assert_str_eq(v[i + 1], "/workspace");
	i = strv_find(v, "--seccomp");
	ck_assert_str_eq(v[i + 1], "3");
	ck_assert_uint_eq(strv_find(v, "/nonexistent-orch-path"), (size_t)-1);
	i = strv_find(v, "--hostname");
	ck_assert_str_eq(v[i + 1], "agent-3");
	/* The command comes last, after the helper and its status fd. */
	i = strv_find(v, "--");
	ck_assert_str_eq(v[i + 1], SV_JAIL_HELPER_PATH);
	ck_assert_str_eq(v[i + 2], "4");
	ck_assert_str_eq(v[i + 3], "make");
	ck_assert_str_eq(v[i + 4], "test");
	ck_assert_ptr_null(v[i + 5]);
	struct stat st;
	if (lstat("/bin", &st) == 0 && S_ISLNK(st.st_mode)) {
		i = strv_find(v, "/bin");
		ck_assert_str_eq(v[i - 2], "--symlink");
	}
	orch_strv_free(v);

	const char *empty[] = {NULL};
	s.argv = empty;
	ck_assert_int_eq(sv_jail_argv(&s, &v, &err), -EINVAL);
}
END_TEST

/* Index of the read-only bind of path p (its source), or -1. */
static size_t ro_bind_at(char **v, const char *p)
{
	for (size_t i = 1; v[i] && v[i + 1]; i++)
		if (strcmp(v[i - 1], "--ro-bind") == 0 && strcmp(v[i], p) == 0)
			return i;
	return (size_t)-1;
}

START_TEST(test_argv_tmp)
{
	/* A read-only path below /tmp is bound after the jail's tmpfs /tmp (else it would be
	 * hidden); /tmp itself, spelled in any way, and everything else come before it, so
	 * no read-only path can cover the private /tmp, the workspace or the helper. */
	char dir[] = "/tmp/orch-ro-XXXXXX", dot[64], dotdot[64], slashes[64], absent[64];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(absent, sizeof(absent), "%s-absent/..", dir); /* beside a unique name */
	snprintf(dot, sizeof(dot), "%s/./", dir);
	snprintf(dotdot, sizeof(dotdot), "%s/..", dir);
	snprintf(slashes, sizeof(slashes), "/.//%s", dir + 1);
	char *ro[] = {"/usr", "/tmp",  "/tmp/", "//tmp/./", absent,
		      dotdot, "/tmpx", dir,	dot,	    slashes};
	const char *cmd[] = {"true", NULL};
	struct sv_jail_spec s = {
		.bwrap = "/usr/bin/bwrap",
		.exec_helper = "/opt/orch-jail-exec",
		.slot = 0,
		.workspace = "/srv/ws/agent-0",
		.ro_paths = ro,
		.n_ro_paths = sizeof(ro) / sizeof(ro[0]),
		.argv = cmd,
	};
	char **v = NULL;
	struct orch_error err = {0};
	ck_assert_int_eq(sv_jail_argv(&s, &v, &err), 0);
	size_t tmpfs = strv_find(v, "--tmpfs");
	ck_assert_uint_ne(tmpfs, (size_t)-1);
	ck_assert_str_eq(v[tmpfs + 1], "/tmp");
	size_t ws = strv_find(v, "/srv/ws/agent-0");
	size_t helper = strv_find(v, "/opt/orch-jail-exec");
	ck_assert_uint_gt(ws, tmpfs);
	ck_assert_uint_gt(helper, tmpfs);
	ck_assert_uint_lt(ro_bind_at(v, "/usr"), tmpfs);
	size_t i = ro_bind_at(v, dir);
	ck_assert_uint_gt(i, tmpfs);
	ck_assert_uint_lt(i, ws);
	ck_assert_str_eq(v[i + 1], dir);
	i = ro_bind_at(v, dot);
	ck_assert_uint_gt(i, tmpfs);
	ck_assert_uint_lt(i, ws);
	i = ro_bind_at(v, slashes);
	ck_assert_uint_gt(i, tmpfs);
	ck_assert_uint_lt(i, ws);
	const char *before[] = {"/tmp", "/tmp/", "//tmp/./", dotdot};
	for (size_t k = 0; k < sizeof(before) / sizeof(before[0]); k++)
		ck_assert_msg(ro_bind_at(v, before[k]) < tmpfs, "%s bound after the tmpfs",
			      before[k]);
	/* Absent paths are skipped. */
	ck_assert_uint_eq(ro_bind_at(v, absent), (size_t)-1);
	orch_strv_free(v);
	rmdir(dir);
}
END_TEST

/* The task's own read-only paths (task.run ro_paths): bound from their resolved source
 * at the asked place, absent ones skipped, below /tmp after the tmpfs; refused when the
 * place is one of the jail's own mounts or the source is /proc, /sys, /dev or overlaps a
 * denied path (the workspace root), also through a symlink. */
START_TEST(test_argv_task_ro_paths)
{
	char top[] = "/tmp/orch-tro-XXXXXX", opt[PATH_MAX], link[PATH_MAX], root[PATH_MAX],
	     ws[PATH_MAX + 16], sub[PATH_MAX + 32];
	ck_assert_ptr_nonnull(mkdtemp(top));
	snprintf(opt, sizeof(opt), "%s/opt", top);
	snprintf(link, sizeof(link), "%s/link", top);
	snprintf(root, sizeof(root), "%s/ws-root", top);
	snprintf(ws, sizeof(ws), "%s/agent-0", root);
	snprintf(sub, sizeof(sub), "%s/inside", ws);
	ck_assert_int_eq(mkdir(opt, 0755), 0);
	ck_assert_int_eq(symlink(opt, link), 0);
	ck_assert_int_eq(mkdir(root, 0711), 0);
	ck_assert_int_eq(mkdir(ws, 0700), 0);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	const char *cmd[] = {"true", NULL};
	const char *deny[] = {root, "/nonexistent-orch-deny", NULL};
	struct sv_jail_spec s = {
		.bwrap = "/usr/bin/bwrap",
		.exec_helper = "/opt/orch-jail-exec",
		.workspace = ws,
		.argv = cmd,
		.deny = deny,
	};
	const char *good[] = {"/usr/share", opt, link, "/nonexistent-orch-ro", NULL};
	s.task_ro_paths = good;
	s.n_task_ro_paths = 4;
	char **v = NULL;
	struct orch_error err = {0};
	ck_assert_msg(sv_jail_argv(&s, &v, &err) == 0, "%s", err.msg);
	size_t tmpfs = strv_find(v, "--tmpfs"), i;
	ck_assert_uint_lt(ro_bind_at(v, "/usr/share"), tmpfs);
	i = ro_bind_at(v, opt);
	ck_assert_uint_gt(i, tmpfs); /* below /tmp: after the tmpfs */
	ck_assert_str_eq(v[i + 1], opt);
	/* the symlink: its target, at the link's place */
	for (i = 1; v[i + 1]; i++)
		if (strcmp(v[i - 1], "--ro-bind") == 0 && strcmp(v[i + 1], link) == 0)
			break;
	ck_assert_ptr_nonnull(v[i + 1]);
	ck_assert_str_eq(v[i], opt);
	ck_assert_uint_eq(strv_find(v, "/nonexistent-orch-ro"), (size_t)-1);
	orch_strv_free(v);

	char below_link[PATH_MAX];
	snprintf(below_link, sizeof(below_link), "%s/ws-link", top);
	ck_assert_int_eq(symlink(ws, below_link), 0);
	const struct {
		const char *path, *msg;
	} bad[] = {
		{"/proc", "jail's own /proc"},
		{"/proc/1", "jail's own /proc"},
		{"/dev", "jail's own /dev"},
		{"/sys/kernel", "jail's own /sys"},
		{"/workspace/x", "jail's own /workspace"},
		{"/run", "jail's own /run/orch"},
		{"/tmp", "the jail's own /tmp"},
		{root, "must not see"},
		{ws, "must not see"},
		{sub, "must not see"},
		{top, "must not see"}, /* above the workspace root */
		{below_link, "must not see"},
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		const char *one[] = {bad[k].path, NULL};
		s.task_ro_paths = one;
		s.n_task_ro_paths = 1;
		v = NULL;
		memset(&err, 0, sizeof(err));
		ck_assert_msg(sv_jail_argv(&s, &v, &err) == -EPERM, "%s accepted", bad[k].path);
		ck_assert_ptr_null(v);
		ck_assert_msg(strstr(err.msg, bad[k].msg), "%s: %s", bad[k].path, err.msg);
	}
	unlink(below_link);
	unlink(link);
	rmdir(sub);
	rmdir(ws);
	rmdir(root);
	rmdir(opt);
	rmdir(top);
}
END_TEST

START_TEST(test_seccomp)
{
	struct sv_seccomp sc = {0};
	struct orch_error err = {0};
	ck_assert_msg(sv_seccomp_build(&sc, &err) == 0, "%s", err.msg);
	ck_assert_uint_gt(sc.len, 0);
	ck_assert_uint_eq(sc.len % 8, 0); /* struct sock_filter */
	int fd = sv_seccomp_memfd(&sc);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	unsigned char *buf = malloc(sc.len + 1);
	ck_assert_int_eq(read(fd, buf, sc.len + 1), (ssize_t)sc.len);
	ck_assert_mem_eq(buf, sc.bpf, sc.len);
	free(buf);
	close(fd);
	sv_seccomp_done(&sc);
}
END_TEST

START_TEST(test_netns)
{
	struct orch_error err = {0};
	int ns = sv_netns_new(&err);
	ck_assert_msg(ns >= 0, "%s", err.msg);
	/* The supervisor stayed in its own namespace. */
	char a[64] = "", b[64] = "";
	ck_assert_int_gt(readlink("/proc/self/ns/net", a, sizeof(a) - 1), 0);
	snprintf(b, sizeof(b), "/proc/self/fd/%d", ns);
	char c[64] = "";
	ck_assert_int_gt(readlink(b, c, sizeof(c) - 1), 0);
	ck_assert_str_ne(a, c);

	/* lo is up inside: a listener on 127.0.0.1 accepts a connection made inside. */
	int ls = sv_netns_socket(ns, AF_INET, SOCK_STREAM, &err);
	ck_assert_msg(ls >= 0, "%s", err.msg);
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(4000),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(ls, 1), 0);
	int cs = sv_netns_socket(ns, AF_INET, SOCK_STREAM, &err);
	ck_assert_int_ge(cs, 0);
	ck_assert_int_eq(connect(cs, (struct sockaddr *)&sin, sizeof(sin)), 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	ck_assert_int_eq(ioctl(cs, SIOCGIFFLAGS, &ifr), 0);
	ck_assert(ifr.ifr_flags & IFF_UP);
	/* Only lo exists. */
	ck_assert_int_eq(if_nametoindex("lo") > 0, 1);
	struct ifreq e = {.ifr_ifindex = 2};
	ck_assert_int_lt(ioctl(cs, SIOCGIFNAME, &e), 0);
	close(cs);
	close(ls);
	close(ns);
}
END_TEST

START_TEST(test_cgroups)
{
	struct sv_cgroups cg;
	struct orch_error err = {0};
	ck_assert_int_eq(sv_cgroups_init(&cg, "orch-unit", &err), 0);
	json_t *d = sv_cgroups_describe(&cg);
	ck_assert_ptr_nonnull(json_object_get(d, "kill"));
	ck_assert_ptr_nonnull(json_object_get(d, "memory"));
	json_decref(d);
	struct sv_cgroup c = {0};
	ck_assert_msg(sv_cgroup_create(&cg, 5, &c, &err) == 0, "%s", err.msg);
	struct orch_limits l = {.memory_bytes = 64 << 20, .pids = 50, .cpu_percent = 50};
	bool enforced[_SV_CG_MAX];
	ck_assert_msg(sv_cgroup_apply(&c, &l, enforced, &err) == 0, "%s", err.msg);
	for (int i = 0; i < _SV_CG_MAX; i++)
		ck_assert_int_eq(enforced[i], cg.ctrl[i] != SV_CG_NONE);
	/* A child joins and is killed through the cgroup. */
	if (c.v2 || c.v1[0] || c.v1[1]) {
		pid_t pid = fork();
		if (pid == 0) {
			if (sv_cgroup_enter(&c) < 0)
				_exit(3);
			pause();
			_exit(0);
		}
		for (int i = 0; i < 200 && sv_cgroup_count(&c) < 1; i++)
			usleep(10000);
		ck_assert_int_eq(sv_cgroup_count(&c), 1);
		ck_assert_int_eq(sv_cgroup_kill(&c), 1);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	}
	sv_cgroup_remove(&c);
	sv_cgroup_done(&c);
	sv_cgroups_remove(&cg);
	sv_cgroups_done(&cg);
}
END_TEST

START_TEST(test_privdrop)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (sv_drop_privileges(TEST_UID, TEST_UID) < 0)
			_exit(2);
		if (getuid() != TEST_UID || geteuid() != TEST_UID || getgid() != TEST_UID)
			_exit(3);
		if (setuid(0) == 0 || setresuid(0, 0, 0) == 0)
			_exit(4);
		gid_t groups[4];
		if (getgroups(4, groups) != 1 || groups[0] != TEST_UID)
			_exit(5);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(sv_drop_privileges(0, 0), -EINVAL);
}
END_TEST

START_TEST(test_workspace)
{
	char root[] = "/tmp/orch-ws-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(root));
	struct orch_error err = {0};
	char *p = NULL;
	ck_assert_int_eq(sv_workspace_prepare(root, 2, TEST_UID, TEST_UID, &p, &err), 0);
	struct stat st;
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_uid, TEST_UID);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	rmdir(p);
	free(p);
	/* A symlink in place of the workspace is refused. */
	char link[PATH_MAX];
	snprintf(link, sizeof(link), "%s/agent-4", root);
	ck_assert_int_eq(symlink("/etc", link), 0);
	ck_assert_int_lt(sv_workspace_prepare(root, 4, TEST_UID, TEST_UID, &p, &err), 0);
	unlink(link);
	rmdir(root);
}
END_TEST

/* A task's own workspace (task.run "workspace"): taken only when the host made it, never
 * through a symlink, never created here. */
START_TEST(test_task_workspace)
{
	char root[] = "/tmp/check-jail-tws.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(root));
	struct orch_error err = {0};
	char *p = NULL, path[PATH_MAX];
	ck_assert_int_lt(sv_task_workspace(root, "task-7", TEST_UID, TEST_UID, &p, &err), 0);
	ck_assert_msg(strstr(err.msg, "is not there"), "%s", err.msg);
	snprintf(path, sizeof(path), "%s/task-7", root);
	ck_assert_int_eq(access(path, F_OK), -1); /* not created */
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(sv_task_workspace(root, "task-7", TEST_UID, TEST_UID, &p, &err), 0);
	struct stat st;
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert_uint_eq(st.st_uid, TEST_UID);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	free(p);
	snprintf(path, sizeof(path), "%s/task-8", root);
	ck_assert_int_eq(symlink("/etc", path), 0);
	ck_assert_int_lt(sv_task_workspace(root, "task-8", TEST_UID, TEST_UID, &p, &err), 0);
	ck_assert_int_lt(sv_task_workspace(root, "../etc", TEST_UID, TEST_UID, &p, &err), 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/task-7", root);
	rmdir(path);
	rmdir(root);
}
END_TEST

static size_t read_all(int fd, char *buf, size_t size)
{
	size_t off = 0;
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		if (poll(&pfd, 1, 20000) <= 0)
			break;
		ssize_t n = read(fd, buf + off, size - 1 - off);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	buf[off] = 0;
	return off;
}

START_TEST(test_spawn)
{
	const char *bd = getenv("ORCH_BUILDDIR");
	ck_assert_ptr_nonnull(bd);
	char helper[PATH_MAX];
	snprintf(helper, sizeof(helper), "%s/guest/orch-jail-exec", bd);
	char root[] = "/tmp/orch-ws-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(root));
	chmod(root, 0711);
	struct orch_error err = {0};
	char *ws = NULL;
	ck_assert_int_eq(sv_workspace_prepare(root, 1, TEST_UID, TEST_UID, &ws, &err), 0);

	struct sv_seccomp sc = {0};
	ck_assert_int_eq(sv_seccomp_build(&sc, &err), 0);
	int ns = sv_netns_new(&err);
	ck_assert_int_ge(ns, 0);
	char *ro[] = {"/usr", "/bin", "/lib", "/lib64", "/etc"};
	const char *cmd[] = {"sh", "-c",
			     "id -u; echo \"$FOO-$LEAK\"; touch /workspace/made; echo oops >&2; "
			     "exit 7",
			     NULL};
	/* The task's environment is set inside the jail; bwrap's own does not leak in. */
	const char *env[] = {"PATH=/usr/bin:/bin", "FOO=bar", NULL};
	struct sv_jail_spec js = {.bwrap = "/usr/bin/bwrap",
				  .exec_helper = helper,
				  .slot = 1,
				  .workspace = ws,
				  .ro_paths = ro,
				  .n_ro_paths = 5,
				  .seccomp = true,
				  .argv = cmd,
				  .env = env};
	char **argv = NULL;
	ck_assert_int_eq(sv_jail_argv(&js, &argv, &err), 0);
	char *envp[] = {"PATH=/usr/bin:/bin", "LEAK=1", NULL};
	struct sv_spawn_spec ss = {.bwrap_argv = argv,
				   .envp = envp,
				   .seccomp = &sc,
				   .netns_fd = ns,
				   .uid = TEST_UID,
				   .gid = TEST_UID,
				   .limits = {.nofile = 256}};
	struct sv_spawned sp;
	ck_assert_msg(sv_spawn(&ss, &sp, &err) == 0, "%s", err.msg);
	char out[4096], errb[4096], st[256];
	read_all(sp.out_fd, out, sizeof(out));
	read_all(sp.err_fd, errb, sizeof(errb));
	read_all(sp.status_fd, st, sizeof(st));
	int status;
	ck_assert_int_eq(waitpid(sp.pid, &status, 0), sp.pid);
	ck_assert_str_eq(out, "10071\nbar-\n");
	ck_assert_msg(strstr(errb, "oops") != NULL, "stderr: %s", errb);
	ck_assert_str_eq(st, "exited 7\n");
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);

	char made[PATH_MAX];
	snprintf(made, sizeof(made), "%s/made", ws);
	struct stat sb;
	ck_assert_int_eq(stat(made, &sb), 0);
	ck_assert_uint_eq(sb.st_uid, TEST_UID);
	unlink(made);
	close(sp.out_fd);
	close(sp.err_fd);
	close(sp.status_fd);
	close(sp.pidfd);

	/* A setup failure is reported, not exec'd: a bad namespace fd. */
	ss.netns_fd = 1000;
	ck_assert_int_lt(sv_spawn(&ss, &sp, &err), 0);
	ck_assert_msg(strstr(err.msg, "network namespace") != NULL, "%s", err.msg);

	orch_strv_free(argv);
	sv_seccomp_done(&sc);
	close(ns);
	rmdir(ws);
	rmdir(root);
	free(ws);
}
END_TEST

static Suite *jail_suite(void)
{
	Suite *s = suite_create("guest-jail");
	TCase *tc = tcase_create("jail");
	tcase_add_test(tc, test_argv);
	tcase_add_test(tc, test_argv_tmp);
	tcase_add_test(tc, test_argv_task_ro_paths);
	tcase_add_test(tc, test_seccomp);
	tcase_add_test(tc, test_netns);
	tcase_add_test(tc, test_cgroups);
	tcase_add_test(tc, test_privdrop);
	tcase_add_test(tc, test_workspace);
	tcase_add_test(tc, test_task_workspace);
	tcase_add_test(tc, test_spawn);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!is_root()) { /* namespaces, cgroups, uid switches */
		printf("SKIP: needs root (the namespace, cgroup and spawn cases)\n");
		return 77;
	}
	return orch_check_run(jail_suite());
}
