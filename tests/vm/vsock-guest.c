/* SPDX-License-Identifier: Apache-2.0 */
/* orch-vsock-guest-test: the AF_VSOCK parts of orch carried over a real AF_VSOCK
 * transport. It runs inside a guest (tests/vm/vsock-guest.sh boots one with the
 * vsock_loopback module, where CID 1 is the kernel itself) as root, and prints "ok: ..."
 * per check, "FAIL ..." and exit 1 on the first failure.
 *
 *   - orchd's lanes (host/libvirt/lanes.c) listen on the reserved ports 700 and 701 and
 *     hand each connection to the owner of its peer CID, on the right lane; a CID with no
 *     owner, or one its owner refuses, is refused with the peer reported; a second orchd
 *     gets a clear "taken" error; an unprivileged uid cannot open them at all (the
 *     squatting of issue 12 item 6).
 *   - the supervisor's debug shell listener (guest/shell/) on vsock:any:6000: a connection
 *     from an unreserved port (what any host user's socat makes) is refused; one from a
 *     reserved port (orch_vsock_connect_reserved, what orchd's relay makes) gets a working
 *     shell in the agent's jail; a reserved port of another CID is refused.
 *
 *   orch-vsock-guest-test [SCRATCH_DIR]   (default /tmp/orch-vsock-test) */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "jail-seccomp.h"
#include "lanes.h"
#include "loop.h"
#include "privsep.h"
#include "shell-relay.h"
#include "shell.h"
#include "transport.h"

#define NOBODY 65534
#define AGENT_UID 10000
#define WAIT_MS 30000

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			exit(1);                                             \
		}                                                            \
	} while (0)

/* ---- lanes ---- */

struct seen {
	int conns[LV_LANE_MAX];
	struct orch_vsock_peer last;
	int refused;
	char why[256];
	bool refuse; /* the owner refuses what it gets */
};

static int on_conn(void *owner, enum lv_lane lane, int fd, const struct orch_vsock_peer *peer,
		   struct orch_error *err)
{
	struct seen *s = owner;
	s->last = *peer;
	close(fd);
	if (s->refuse)
		return orch_err(err, -EPERM, "the owner said no");
	s->conns[lane]++;
	return 0;
}

static void on_refused(enum lv_lane lane, const struct orch_vsock_peer *peer, const char *why,
		       void *data)
{
	struct seen *s = data;
	s->refused++;
	s->last = *peer;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

static bool wait_loop(struct orch_loop *loop, const int *counter, int want)
{
	uint64_t end = orch_now_ms() + WAIT_MS;
	while (*counter < want && orch_now_ms() < end)
		orch_loop_run_once(loop, 20);
	return *counter >= want;
}

static int dial(uint32_t cid, uint32_t port)
{
	struct orch_error err = {0};
	struct orch_addr a = {.kind = ORCH_TRANSPORT_VSOCK, .cid = cid, .port = port};
	int fd = orch_transport_dial(&a, 5000, &err);
	CHECK(fd >= 0, "dial vsock:%u:%u: %s", cid, port, err.msg);
	return fd;
}

static struct lv_lanes_opts lanes_opts(struct seen *s)
{
	return (struct lv_lanes_opts){
		.port = {[LV_LANE_CONTROL] = ORCH_VSOCK_CONTROL_PORT,
			 [LV_LANE_LLM] = ORCH_VSOCK_LLM_PORT},
		.port_name = {[LV_LANE_CONTROL] = "vsock.control_port",
			      [LV_LANE_LLM] = "vsock.llm_port"},
		.on_conn = on_conn,
		.on_refused = on_refused,
		.data = s,
	};
}

/* In a child as uid 65534: the lanes cannot be opened. */
static int lanes_unprivileged(void)
{
	struct orch_loop *loop = NULL;
	struct lv_lanes *l = NULL;
	struct orch_error err = {0};
	struct seen s = {0};
	struct lv_lanes_opts o = lanes_opts(&s);

	if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0 ||
	    orch_loop_new(&loop) < 0)
		return 2;
	int r = lv_lanes_new(loop, &o, &l, &err);
	if (r != -EACCES || !strstr(err.msg, "CAP_NET_BIND_SERVICE")) {
		fprintf(stderr, "FAIL: uid %d opening the lanes: %d (%s)\n", NOBODY, r, err.msg);
		return 1;
	}
	printf("ok: uid %d cannot take orchd's lane ports: %s\n", NOBODY, err.msg);
	orch_loop_free(loop);
	return 0;
}

static void test_lanes(void)
{
	struct orch_loop *loop = NULL;
	struct lv_lanes *l = NULL, *l2 = NULL;
	struct orch_error err = {0};
	struct seen s = {0}, refused = {0};
	int st;

	/* Before orchd runs: an unprivileged user cannot squat the ports. */
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		fflush(stdout);
		int rc = lanes_unprivileged();
		fflush(stdout);
		_exit(rc);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the unprivileged lanes check failed");

	CHECK(orch_loop_new(&loop) == 0, "loop");
	struct lv_lanes_opts o = lanes_opts(&refused);
	CHECK(lv_lanes_new(loop, &o, &l, &err) == 0, "lanes: %s", err.msg);
	CHECK(lv_lanes_serves(l, LV_LANE_CONTROL) && lv_lanes_serves(l, LV_LANE_LLM), "serves");
	printf("ok: orchd's lanes listen on the reserved vsock ports %u and %u\n",
	       ORCH_VSOCK_CONTROL_PORT, ORCH_VSOCK_LLM_PORT);

	CHECK(lv_lanes_new(loop, &o, &l2, &err) == -EADDRINUSE &&
		      strstr(err.msg, "vsock.control_port") && strstr(err.msg, "taken"),
	      "a second orchd: %s", err.msg);
	printf("ok: a second listener is refused: %s\n", err.msg);

	/* The guest of CID 1 (here: ourselves) is a registered VM. */
	CHECK(lv_lanes_register(l, ORCH_VSOCK_CID_LOCAL, &s) == 0, "register");
	CHECK(lv_lanes_register(l, ORCH_VSOCK_CID_LOCAL, &refused) == -EEXIST, "CID taken");
	int c1 = dial(ORCH_VSOCK_CID_LOCAL, ORCH_VSOCK_CONTROL_PORT);
	CHECK(wait_loop(loop, &s.conns[LV_LANE_CONTROL], 1), "no control connection");
	int c2 = dial(ORCH_VSOCK_CID_LOCAL, ORCH_VSOCK_LLM_PORT);
	CHECK(wait_loop(loop, &s.conns[LV_LANE_LLM], 1), "no LLM connection");
	CHECK(s.conns[LV_LANE_CONTROL] == 1 && s.last.cid == ORCH_VSOCK_CID_LOCAL &&
		      !orch_vsock_port_reserved(s.last.port),
	      "peer %u:%u", s.last.cid, s.last.port);
	close(c1);
	close(c2);
	printf("ok: connections reach the owner of their peer CID (%u), each on its lane\n",
	       s.last.cid);

	s.refuse = true;
	c1 = dial(ORCH_VSOCK_CID_LOCAL, ORCH_VSOCK_CONTROL_PORT);
	CHECK(wait_loop(loop, &refused.refused, 1), "the owner's refusal was not reported");
	CHECK(strstr(refused.why, "the owner said no"), "why: %s", refused.why);
	close(c1);
	s.refuse = false;

	/* Once the VM is gone (its domain stopped), its CID is nobody's. */
	lv_lanes_unregister(l, ORCH_VSOCK_CID_LOCAL);
	c1 = dial(ORCH_VSOCK_CID_LOCAL, ORCH_VSOCK_CONTROL_PORT);
	CHECK(wait_loop(loop, &refused.refused, 2), "an unknown CID was not refused");
	CHECK(strstr(refused.why, "no VM of this orchd has that CID") &&
		      refused.last.cid == ORCH_VSOCK_CID_LOCAL,
	      "why: %s (cid %u)", refused.why, refused.last.cid);
	{
		struct pollfd p = {.fd = c1, .events = POLLIN};
		char b;
		CHECK(poll(&p, 1, 5000) == 1 && read(c1, &b, 1) <= 0,
		      "the refused connection stayed open");
	}
	close(c1);
	CHECK(s.conns[LV_LANE_CONTROL] == 1, "an unknown CID reached an owner");
	printf("ok: a CID with no VM, or refused by its VM, is closed and reported (%s)\n",
	       refused.why);
	lv_lanes_free(l);
	orch_loop_free(loop);
}

/* ---- the debug shell listener ---- */

struct events {
	int n[8];
	char last[256];
};

static void on_shell_event(unsigned slot, enum sv_shell_event ev, const char *detail, void *data)
{
	struct events *e = data;
	if ((unsigned)ev < 8)
		e->n[ev]++;
	snprintf(e->last, sizeof(e->last), "%s", detail ? detail : "");
	printf("  shell slot=%u event=%d detail=\"%s\"\n", slot, (int)ev, detail ? detail : "");
}

/* Reads what fd gives until want appears, the peer closes, or time is up (the loop runs
 * meanwhile). Returns 1 found, 0 closed, -ETIMEDOUT. */
static int expect(struct orch_loop *loop, int fd, const char *want, char *buf, size_t len)
{
	size_t n = 0;
	uint64_t end = orch_now_ms() + WAIT_MS;
	buf[0] = 0;
	while (orch_now_ms() < end) {
		orch_loop_run_once(loop, 20);
		ssize_t k = read(fd, buf + n, len - 1 - n);
		if (k > 0) {
			n += (size_t)k;
			buf[n] = 0;
			if (want && strstr(buf, want))
				return 1;
			if (n == len - 1) {
				memmove(buf, buf + len / 2, n - len / 2 + 1);
				n -= len / 2;
			}
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			return 0;
	}
	return -ETIMEDOUT;
}

static int connect_reserved(uint32_t port, uint32_t *local)
{
	struct orch_error err = {0};
	int fd = orch_vsock_connect_reserved(ORCH_VSOCK_CID_LOCAL, port, local, &err);
	CHECK(fd >= 0, "connect from a reserved port: %s", err.msg);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	CHECK(poll(&p, 1, 5000) == 1 && orch_transport_connect_result(fd) == 0,
	      "connect to vsock:1:%u did not complete", port);
	return fd;
}

/* The slot's jail as the supervisor builds it (its default read-only system paths and
 * seccomp filter), without a cgroup or network namespace of its own. */
static struct sv_shell *shell_new(struct orch_loop *loop, const char *listen, uint32_t allow_cid,
				  const char *ws, const struct sv_seccomp *sc, struct events *ev)
{
	struct orch_error err = {0};
	struct sv_shell *sh = NULL;
	struct sv_config cfg;
	sv_config_init(&cfg);
	struct sv_shell_jail j = {
		.bwrap = "/usr/bin/bwrap",
		.ro_paths = cfg.ro_paths,
		.n_ro_paths = cfg.n_ro_paths,
		.shell_init = "/usr/bin/orch-shell-init",
		.workspace = ws,
		.seccomp = sc,
		.netns_fd = -1,
		.uid = AGENT_UID,
		.gid = AGENT_UID,
		.limits = {.nofile = 1024},
		.nproc_rlimit = false,
	};
	struct sv_shell_opts o = {
		.slot = 0,
		.listen = listen,
		.allow_cid = allow_cid,
		/* the relay is this program again (main), as the supervisor's slot 0 relay uid */
		.relay_uid = sv_privsep_uid(AGENT_UID, SV_PRIVSEP_SHELL, 0),
		.relay_gid = sv_privsep_uid(AGENT_UID, SV_PRIVSEP_SHELL, 0),
		.winsize_wait_ms = 300,
		.on_event = on_shell_event,
		.event_data = ev,
	};
	CHECK(sv_shell_new(loop, &o, &j, &sh, &err) == 0, "shell on %s: %s", listen, err.msg);
	sv_config_done(&cfg);
	return sh;
}

static void test_shell(const char *scratch)
{
	struct orch_loop *loop = NULL;
	struct orch_error err = {0};
	struct sv_seccomp sc;
	struct events ev = {0}, ev2 = {0};
	char ws[256], buf[8192];
	uint32_t local = 0;

	snprintf(ws, sizeof(ws), "%s/agent-0", scratch);
	CHECK((mkdir(scratch, 0755) == 0 || errno == EEXIST) &&
		      (mkdir(ws, 0700) == 0 || errno == EEXIST) &&
		      chown(ws, AGENT_UID, AGENT_UID) == 0,
	      "workspace %s: %s", ws, strerror(errno));
	CHECK(sv_seccomp_build(&sc, &err) == 0, "seccomp: %s", err.msg);
	CHECK(orch_loop_new(&loop) == 0, "loop");
	char listen[64];
	snprintf(listen, sizeof(listen), "vsock:any:%u", ORCH_VSOCK_SHELL_PORT_BASE);
	struct sv_shell *sh = shell_new(loop, listen, ORCH_VSOCK_CID_LOCAL, ws, &sc, &ev);

	/* What any host user gets with socat VSOCK-CONNECT: an unreserved source port. */
	int fd = dial(ORCH_VSOCK_CID_LOCAL, ORCH_VSOCK_SHELL_PORT_BASE);
	CHECK(expect(loop, fd, NULL, buf, sizeof(buf)) == 0, "an unreserved port was not closed");
	CHECK(ev.n[SV_SHELL_REFUSED] == 1 && strstr(ev.last, "not a reserved port") &&
		      ev.n[SV_SHELL_OPENED] == 0,
	      "refusal: %d %s", ev.n[SV_SHELL_REFUSED], ev.last);
	CHECK(!strstr(buf, "$"), "the refused client saw a prompt: %s", buf);
	close(fd);
	printf("ok: the shell listener refuses a connection from an unreserved port: %s\n",
	       ev.last);

	/* What orchd's relay does: a reserved source port. */
	fd = connect_reserved(ORCH_VSOCK_SHELL_PORT_BASE, &local);
	static const char cmd[] = "echo \"vsock-$((6*7))\"; echo \"uid-$(id -u)\"\n";
	CHECK(write(fd, cmd, sizeof(cmd) - 1) == (ssize_t)sizeof(cmd) - 1, "write");
	/* Both lines may come in one read: wait for the last, then look for both. */
	int r = expect(loop, fd, "uid-10000", buf, sizeof(buf));
	CHECK(r == 1 && strstr(buf, "vsock-42"), "no shell output (%d): %s", r, buf);
	CHECK(strstr(buf, "uid-10000"), "the shell does not run as uid %d: %s", AGENT_UID, buf);
	CHECK(ev.n[SV_SHELL_OPENED] == 1, "no opened event");
	close(fd);
	printf("ok: a connection from the reserved port %u gets a working shell in the agent's "
	       "jail (uid %d)\n",
	       local, AGENT_UID);
	for (int i = 0; i < 500 && ev.n[SV_SHELL_CLOSED] == 0; i++)
		orch_loop_run_once(loop, 20);
	CHECK(ev.n[SV_SHELL_CLOSED] == 1, "the session did not end with its connection");

	/* A listener for the host (CID 2) refuses CID 1 even from a reserved port. */
	snprintf(listen, sizeof(listen), "vsock:any:%u", ORCH_VSOCK_SHELL_PORT_BASE + 1);
	struct sv_shell *sh2 = shell_new(loop, listen, ORCH_VSOCK_CID_HOST, ws, &sc, &ev2);
	fd = connect_reserved(ORCH_VSOCK_SHELL_PORT_BASE + 1, &local);
	CHECK(expect(loop, fd, NULL, buf, sizeof(buf)) == 0, "another CID was not closed");
	CHECK(ev2.n[SV_SHELL_REFUSED] == 1 && strstr(ev2.last, "cid 1") &&
		      ev2.n[SV_SHELL_OPENED] == 0,
	      "refusal: %s", ev2.last);
	close(fd);
	printf("ok: a listener for the host's CID refuses CID 1 even from a reserved port: %s\n",
	       ev2.last);
	sv_shell_free(sh2);
	sv_shell_free(sh);
	sv_seccomp_done(&sc);
	orch_loop_free(loop);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], SV_SHELL_RELAY_ARG) == 0)
		sv_shell_relay_main(argc, argv); /* a shell session's relay process */
	const char *scratch = argc > 1 ? argv[1] : "/tmp/orch-vsock-test";

	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK(geteuid() == 0, "must run as root (it binds reserved ports)");
	CHECK(orch_vsock_available(), "no AF_VSOCK in this kernel (load vsock_loopback)");
	test_lanes();
	test_shell(scratch);
	printf("ok: all vsock checks passed\n");
	return 0;
}
