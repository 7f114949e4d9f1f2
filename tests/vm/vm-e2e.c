/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end boot of a real guest: the domain XML from host/libvirt, a transient libvirt
 * domain, the supervisor's hello over the virtio-serial control channel, tasks on two
 * agents over task.run/task.output/task.exit, workspace ownership on the host, cgroup v2
 * limits inside the guest, and `destroy` mid-task seen as a lifecycle event and a closed
 * channel. Run by tests/vm/e2e.sh, which builds the image and starts libvirtd.
 *
 *   vm-e2e --image DIR --work DIR [--boot-timeout SECONDS]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "choose.h"
#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "virt-event-loop.h"
#include "events.h"
#include "loop.h"
#include "rpc.h"
#include "schema.h"

#define MAX_TASKS 8
#define UID_BASE 10000

struct task {
	char id[32];
	char out[65536];
	size_t out_len;
	char err[16384];
	size_t err_len;
	bool exited;
	enum orch_exit_status status;
	int64_t exit_code, signal;
	char reason[256];
};

struct e2e {
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	bool hello;
	json_t *capabilities;
	int64_t slots;
	bool channel_closed;
	bool domain_stopped;
	char stop_reason[32];
	const char *name;
	struct task tasks[MAX_TASKS];
	size_t n_tasks;
	int failures;
};

static void check(struct e2e *e, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check(struct e2e *e, bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s - ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (!ok)
		e->failures++;
}

static struct task *find_task(struct e2e *e, const char *id)
{
	for (size_t i = 0; i < e->n_tasks; i++)
		if (!strcmp(e->tasks[i].id, id))
			return &e->tasks[i];
	return NULL;
}

static int on_hello(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct e2e *e = data;
	struct orch_hello h;
	int r = orch_hello_parse(params, &h, err);
	if (r < 0)
		return r;
	e->slots = h.slots;
	e->capabilities = json_incref(h.capabilities);
	printf("# hello: supervisor %s, %lld slots, boot %s\n", h.supervisor, (long long)h.slots,
	       h.boot_id);
	orch_hello_done(&h);
	struct orch_hello_reply rep = {
		.protocol = ORCH_PROTOCOL_VERSION, .heartbeat_ms = 5000, .name = e->name};
	r = orch_rpc_reply(req, orch_hello_reply_build(&rep));
	if (r < 0)
		return orch_err(err, r, "cannot reply to hello");
	orch_rpc_set_state(rpc, ORCH_STATE_READY);
	e->hello = true;
	return 0;
}

static int on_heartbeat(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	struct orch_heartbeat hb;
	return orch_heartbeat_parse(params, &hb, err);
}

static void append(char *buf, size_t cap, size_t *len, const unsigned char *d, size_t n)
{
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, d, n);
	*len += n;
	buf[*len] = 0;
}

static int on_output(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err)
{
	struct e2e *e = data;
	struct orch_task_output o;
	int r = orch_task_output_parse(params, &o, err);
	if (r < 0)
		return r;
	struct task *t = find_task(e, o.task);
	if (t && o.stream == ORCH_STREAM_STDOUT)
		append(t->out, sizeof(t->out), &t->out_len, o.data, o.len);
	else if (t)
		append(t->err, sizeof(t->err), &t->err_len, o.data, o.len);
	orch_task_output_done(&o);
	return 0;
}

static int on_exit_req(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	struct e2e *e = data;
	struct orch_task_exit x;
	int r = orch_task_exit_parse(params, &x, err);
	if (r < 0)
		return r;
	struct task *t = find_task(e, x.task);
	if (t) {
		t->exited = true;
		t->status = x.status;
		t->exit_code = x.exit_code;
		t->signal = x.signal;
		snprintf(t->reason, sizeof(t->reason), "%s", x.reason);
	}
	return orch_rpc_reply(req, json_object());
}

static const struct orch_rpc_method methods[] = {
	{"hello", ORCH_RPC_M_REQUEST, ORCH_STATE_NEW, on_hello},
	{"heartbeat", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, on_heartbeat},
	{"task.output", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, on_output},
	{"task.exit", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, on_exit_req},
};

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	struct e2e *e = data;
	e->channel_closed = true;
}

static void on_event(const char *domain, const struct lv_event *ev, void *data)
{
	struct e2e *e = data;
	if (strcmp(domain, e->name) != 0)
		return;
	printf("# lifecycle event: %s (%d/%d)\n", ev->reason, ev->event, ev->detail);
	if (ev->kind == LV_EV_STOPPED) {
		e->domain_stopped = true;
		snprintf(e->stop_reason, sizeof(e->stop_reason), "%s", ev->reason);
	}
}

/* Runs the loop until *flag or timeout. */
static bool run_until(struct e2e *e, const bool *flag, unsigned timeout_s)
{
	uint64_t deadline = orch_now_ms() + (uint64_t)timeout_s * 1000;
	while (!*flag && orch_now_ms() < deadline)
		orch_loop_run_once(e->loop, 100);
	return *flag;
}

static int dial_unix(const char *path, unsigned timeout_s)
{
	uint64_t deadline = orch_now_ms() + (uint64_t)timeout_s * 1000;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			int fl = fcntl(fd, F_GETFL);
			if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
				int r = -errno;
				close(fd);
				return r;
			}
			return fd;
		}
		int r = -errno;
		close(fd);
		if (orch_now_ms() >= deadline)
			return r;
		usleep(50 * 1000);
	}
}

static struct task *run_task(struct e2e *e, int64_t slot, const char *script,
			     const struct orch_limits *limits, unsigned timeout_s)
{
	if (e->n_tasks >= MAX_TASKS)
		return NULL;
	struct task *t = &e->tasks[e->n_tasks];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "e2e-%zu", e->n_tasks++);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct orch_task_run run = {
		.task = t->id,
		.slot = slot,
		.argc = 3,
		.argv = argv,
		.timeout_ms = (int64_t)timeout_s * 1000,
	};
	if (limits)
		run.limits = *limits;
	int r = orch_rpc_call(e->rpc, "task.run", orch_task_run_build(&run), 30000, NULL, NULL);
	if (r < 0) {
		check(e, false, "task.run %s: %s", t->id, strerror(-r));
		return t;
	}
	if (timeout_s && !run_until(e, &t->exited, timeout_s + 30))
		check(e, false, "task %s: no task.exit within %us", t->id, timeout_s + 30);
	return t;
}

static void show(const struct task *t)
{
	printf("# task %s: status %s code %lld signal %lld reason '%s'\n", t->id,
	       orch_exit_status_name(t->status), (long long)t->exit_code, (long long)t->signal,
	       t->reason);
	printf("# stdout: %s\n# stderr: %s\n", t->out, t->err);
}

static bool file_owned_by(const char *path, uid_t uid)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		printf("# %s: %s\n", path, strerror(errno));
		return false;
	}
	printf("# %s: uid %u\n", path, (unsigned)st.st_uid);
	return st.st_uid == uid;
}

/* capabilities.cgroup_detail.<ctrl> == "v2" */
static bool cgroup_v2(json_t *caps, const char *ctrl)
{
	json_t *v = json_object_get(json_object_get(caps, "cgroup_detail"), ctrl);
	return json_is_string(v) && !strcmp(json_string_value(v), "v2");
}

static void tasks_and_checks(struct e2e *e, const char *ws)
{
	_cleanup_free_ char *dump = json_dumps(e->capabilities, JSON_COMPACT | JSON_SORT_KEYS);
	printf("# capabilities: %s\n", dump ? dump : "?");
	check(e, e->slots >= 2, "supervisor offers at least two agent slots (%lld)",
	      (long long)e->slots);
	check(e,
	      cgroup_v2(e->capabilities, "memory") && cgroup_v2(e->capabilities, "pids") &&
		      cgroup_v2(e->capabilities, "cpu"),
	      "memory, pids and cpu controllers are cgroup v2 in the guest");

	struct task *t0 = run_task(e, 0,
				   "echo out-$((6*7)); echo to-stderr >&2; id -u; "
				   "echo agent0 > /workspace/e2e-0.txt; cat /proc/net/dev",
				   NULL, 60);
	show(t0);
	check(e, t0->exited && t0->status == ORCH_EXIT_EXITED && t0->exit_code == 0,
	      "agent 0: task exits 0");
	check(e, strstr(t0->out, "out-42") != NULL, "agent 0: stdout streamed");
	check(e, strstr(t0->err, "to-stderr") != NULL, "agent 0: stderr streamed");
	check(e, strstr(t0->out, "10000") != NULL, "agent 0: runs as uid 10000");
	check(e, strstr(t0->out, "lo:") && !strstr(t0->out, "eth") && !strstr(t0->out, "ens"),
	      "agent 0: only lo in its network namespace");

	struct task *t1 = run_task(e, 1,
				   "echo agent1 > /workspace/e2e-1.txt; id -u; "
				   "cat /workspace/../agent-0/e2e-0.txt || echo cannot-see-agent-0",
				   NULL, 60);
	show(t1);
	check(e, t1->exited && strstr(t1->out, "10001") != NULL, "agent 1: runs as uid 10001");
	check(e, strstr(t1->out, "cannot-see-agent-0") && !strstr(t1->out, "agent0"),
	      "agent 1 cannot read agent 0's workspace");

	_cleanup_free_ char *f0 = NULL, *f1 = NULL;
	if (asprintf(&f0, "%s/agent-0/e2e-0.txt", ws) < 0 ||
	    asprintf(&f1, "%s/agent-1/e2e-1.txt", ws) < 0)
		return;
	check(e, file_owned_by(f0, UID_BASE), "file written by agent 0 is uid 10000 on the host");
	check(e, file_owned_by(f1, UID_BASE + 1),
	      "file written by agent 1 is uid 10001 on the host");

	struct orch_limits pids = {.pids = 8};
	struct task *t2 = run_task(e, 0,
				   "i=0; while [ $i -lt 24 ]; do sleep 30 & i=$((i+1)); done; "
				   "echo spawned-all",
				   &pids, 90);
	show(t2);
	check(e, t2->exited && !strstr(t2->out, "spawned-all"),
	      "pids.max stops a fork loop inside the guest");

	struct orch_limits mem = {.memory_bytes = 32 << 20};
	struct task *t3 = run_task(e, 1,
				   "x=$(head -c 67108864 /dev/zero | tr '\\0' a); "
				   "echo got-${#x}",
				   &mem, 120);
	show(t3);
	check(e, t3->exited && !strstr(t3->out, "got-67108864"),
	      "memory.max stops a 64 MiB allocation under a 32 MiB limit");
}

/* Agent 0's debug shell over its virtio-serial port: a shell in the agent's jail. */
static void debug_shell(struct e2e *e, const char *path)
{
	int fd = dial_unix(path, 10);
	if (fd < 0) {
		check(e, false, "connect %s: %s", path, strerror(-fd));
		return;
	}
	static const char cmd[] = "echo shell-$((40+2)) uid-$(id -u)\n";
	char buf[8192];
	size_t n = 0;
	bool sent = false, found = false;
	uint64_t deadline = orch_now_ms() + 60000, next_send = 0;
	while (!found && orch_now_ms() < deadline) {
		/* The shell starts when the guest notices the connection: say it again until
		 * an answer comes. */
		if (orch_now_ms() >= next_send) {
			sent = write(fd, cmd, sizeof(cmd) - 1) == (ssize_t)(sizeof(cmd) - 1) ||
			       sent;
			next_send = orch_now_ms() + 3000;
		}
		orch_loop_run_once(e->loop, 50);
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k > 0) {
			n += (size_t)k;
			buf[n] = 0;
			found = strstr(buf, "shell-42 uid-10000") != NULL;
			if (n > sizeof(buf) / 2) {
				memmove(buf, buf + n - 64, 64);
				n = 64;
			}
		}
	}
	check(e, sent && found, "agent 0's debug shell runs commands as uid 10000");
	if (write(fd, "exit\n", 5) < 0)
		printf("# shell: %s\n", strerror(errno));
	close(fd);
}

/* The vsock variant cannot start here (no /dev/vhost-vsock), but libvirt must accept
 * its XML, and give back the CID the way the backend's adoption looks for it. */
static void vsock_xml_accepted(struct e2e *e, virConnectPtr conn,
			       const struct lv_domain_config *good)
{
	struct orch_error err = {0};
	struct lv_domain_config c = *good;
	char name[80];
	snprintf(name, sizeof(name), "%s-vsock", good->name);
	c.name = name;
	c.transport = LV_TRANSPORT_VSOCK;
	c.cid = 4242;
	c.ports = NULL;
	c.n_ports = 0;
	_cleanup_free_ char *xml = NULL;
	if (lv_domain_xml(&c, &xml, &err) < 0) {
		check(e, false, "vsock xml: %s", err.msg);
		return;
	}
	_cleanup_(virDomainFreep) virDomainPtr dom = virDomainDefineXML(conn, xml);
	check(e, dom != NULL, "libvirt accepts the vsock domain XML%s%s", dom ? "" : ": ",
	      dom ? "" : lv_last_error());
	if (!dom)
		return;
	_cleanup_free_ char *back = virDomainGetXMLDesc(dom, 0);
	check(e, back && strstr(back, "<cid auto='no' address='4242'/>"),
	      "libvirt keeps the vsock CID as the backend expects");
	virDomainUndefine(dom);
}

/* A guest that cannot find its root powers off; the console log says why. */
static void boot_failure(struct e2e *e, virConnectPtr conn, const struct lv_domain_config *good)
{
	struct orch_error err = {0};
	struct lv_domain_config c = *good;
	c.cmdline = "console=ttyS0 panic=-1 quiet root=/dev/vdz orch.rootwait=1 "
		    "orch.workspace=none";
	c.workspace_dir = NULL;
	unlink(c.console_log);
	e->domain_stopped = false;
	_cleanup_(virDomainFreep) virDomainPtr dom = NULL;
	if (lv_domain_start(conn, &c, true, &dom, &err) < 0) {
		check(e, false, "start with a missing root: %s", err.msg);
		return;
	}
	run_until(e, &e->domain_stopped, 120);
	check(e, e->domain_stopped && !strcmp(e->stop_reason, "shutdown"),
	      "a guest without its root powers off (%s)", e->stop_reason);
	lv_console_error(&err, -EIO, c.console_log, "boot failed");
	printf("# %s\n", err.msg);
	check(e, strstr(err.msg, "root device /dev/vdz did not appear") != NULL,
	      "the console tail names the missing root device");
	lv_domain_stop(dom, true, &err);
}

int main(int argc, char **argv)
{
	const char *image = NULL, *work = NULL;
	unsigned boot_timeout = 180;
	static const struct option opts[] = {{"image", required_argument, NULL, 'i'},
					     {"work", required_argument, NULL, 'w'},
					     {"boot-timeout", required_argument, NULL, 'b'},
					     {0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (opt) {
		case 'i':
			image = optarg;
			break;
		case 'w':
			work = optarg;
			break;
		case 'b':
			boot_timeout = (unsigned)atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!image || !work) {
		fprintf(stderr, "usage: vm-e2e --image DIR --work DIR [--boot-timeout S]\n");
		return 2;
	}

	struct e2e e = {0};
	struct orch_error err = {0};
	int r;
	_cleanup_free_ char *name = NULL, *kernel = NULL, *initrd = NULL, *rootfs = NULL,
			    *ws = NULL, *console = NULL, *sock = NULL, *baseline = NULL,
			    *cache = NULL;
	if (asprintf(&name, "orch-e2e-%d", (int)getpid()) < 0 ||
	    asprintf(&kernel, "%s/vmlinuz", image) < 0 ||
	    asprintf(&initrd, "%s/initrd.img", image) < 0 ||
	    asprintf(&rootfs, "%s/rootfs.erofs", image) < 0 ||
	    asprintf(&baseline, "%s/baseline-initrd.img", image) < 0 ||
	    asprintf(&ws, "%s/workspace", work) < 0 ||
	    asprintf(&console, "%s/console.log", work) < 0 ||
	    asprintf(&sock, "%s/chan/control.sock", work) < 0 ||
	    asprintf(&cache, "%s/accel-probe.json", work) < 0)
		return 1;
	e.name = name;

	if ((r = orch_loop_new(&e.loop)) < 0 || (r = orchd_event_libvirt_register(e.loop)) < 0) {
		fprintf(stderr, "vm-e2e: event loop: %s\n", strerror(-r));
		return 1;
	}
	_cleanup_(virConnectClosep) virConnectPtr conn = NULL;
	if ((r = lv_connect(NULL, &conn, &err)) < 0) {
		/* e2e.sh started libvirtd: not reaching it now is a failure, not a skip */
		printf("FAIL - cannot connect to libvirtd: %s\n", err.msg);
		return 1;
	}
	int ev_id = -1;
	if ((r = lv_events_subscribe(conn, NULL, on_event, &e, &ev_id, &err)) < 0) {
		check(&e, false, "%s", err.msg);
		return 1;
	}

	/* The accelerator probe, for real (cached per work dir). */
	struct lv_accel_probe probe = {
		.kernel = kernel, .initrd = baseline, .timeout_ms = 8000, .cache_path = cache};
	enum lv_accel accel;
	bool cached;
	char why[256];
	r = lv_accel_choose(0, &probe, &accel, &cached, why, sizeof(why), &err);
	check(&e, r == 0, "accelerator probe: %s (%s)", r == 0 ? lv_accel_name(accel) : err.msg,
	      why);
	if (r < 0)
		accel = LV_ACCEL_TCG;
	enum lv_transport tr;
	lv_transport_choose(0, NULL, &tr, why, sizeof(why));
	printf("# transport: %s (%s); this test drives virtio-serial\n", lv_transport_name(tr),
	       why);

	_cleanup_free_ char *shell0 = NULL, *shell1 = NULL;
	if (asprintf(&shell0, "%s/chan/shell-0.sock", work) < 0 ||
	    asprintf(&shell1, "%s/chan/shell-1.sock", work) < 0)
		return 1;
	struct lv_port ports[] = {{LV_PORT_CONTROL, sock},
				  {LV_PORT_SHELL_PREFIX "0", shell0},
				  {LV_PORT_SHELL_PREFIX "1", shell1}};
	struct lv_domain_config c = {
		.name = name,
		.accel = accel,
		.vcpus = 2,
		.memory_mib = 512,
		.kernel = kernel,
		.initrd = initrd,
		.rootfs = rootfs,
		.workspace_dir = ws,
		.console_log = console,
		.transport = LV_TRANSPORT_VIRTIO_SERIAL,
		.ports = ports,
		.n_ports = ELEMENTSOF(ports),
		.shells = true,
	};
	_cleanup_free_ char *cmdline = NULL;
	if ((r = lv_kernel_cmdline("console=ttyS0 panic=-1 quiet root=/dev/vda rootfstype=erofs",
				   &c, 2, &cmdline, &err)) < 0) {
		check(&e, false, "cmdline: %s", err.msg);
		return 1;
	}
	c.cmdline = cmdline;

	vsock_xml_accepted(&e, conn, &c);

	_cleanup_(virDomainFreep) virDomainPtr dom = NULL;
	uint64_t t0 = orch_now_ms();
	if ((r = lv_domain_start(conn, &c, true, &dom, &err)) < 0) {
		check(&e, false, "start: %s", err.msg);
		return 1;
	}
	check(&e, true, "transient domain %s started (%s)", name, lv_accel_name(accel));

	int fd = dial_unix(sock, 10);
	if (fd < 0) {
		check(&e, false, "connect %s: %s", sock, strerror(-fd));
		return 1;
	}
	struct orch_rpc_opts ro = {.name = "guest"};
	if ((r = orch_rpc_new(e.loop, fd, methods, ELEMENTSOF(methods), &ro, &e, &e.rpc)) < 0) {
		check(&e, false, "rpc: %s", strerror(-r));
		return 1;
	}
	orch_rpc_set_state(e.rpc, ORCH_STATE_NEW);
	orch_rpc_set_close_cb(e.rpc, on_close);

	if (!run_until(&e, &e.hello, boot_timeout)) {
		lv_console_error(&err, -ETIMEDOUT, console, "no hello from the supervisor");
		check(&e, false, "%s", err.msg);
	} else {
		printf("# boot to hello: %llu ms\n", (unsigned long long)(orch_now_ms() - t0));
		check(&e, true, "supervisor said hello over virtio-serial");
		tasks_and_checks(&e, ws);
		debug_shell(&e, shell0);

		/* destroy mid-task: the lifecycle event and the closed channel say the VM is
		 * gone (orchd marks the task lost). */
		run_task(&e, 0, "sleep 600", NULL, 0);
		orch_loop_run_once(e.loop, 500);
		r = lv_domain_stop(dom, true, &err);
		check(&e, r == 0, "destroy mid-task%s%s", r ? ": " : "", r ? err.msg : "");
		run_until(&e, &e.domain_stopped, 30);
		check(&e, e.domain_stopped && !strcmp(e.stop_reason, "destroyed"),
		      "lifecycle event: stopped/destroyed");
		run_until(&e, &e.channel_closed, 30);
		check(&e, e.channel_closed, "control channel closed after destroy");
	}

	lv_domain_stop(dom, true, &err);
	virDomainFree(TAKE_PTR(dom));
	boot_failure(&e, conn, &c);
	if (e.rpc)
		orch_rpc_unref(e.rpc);
	json_decref(e.capabilities);
	lv_events_unsubscribe(conn, ev_id);
	printf("%s\n", e.failures ? "vm-e2e: FAILED" : "vm-e2e: all checks passed");
	return e.failures ? 1 : 0;
}
