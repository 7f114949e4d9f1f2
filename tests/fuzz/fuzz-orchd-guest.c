/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what a compromised guest can send, into orchd's own guest-facing code
 * (host/core/vm.c, scheduler.c, output.c, spool.c, host/core/orchd-llm.c and the LLM proxy) with a real
 * SQLite store in a temporary directory. One orchd, one VM of two slots with two queued
 * tasks per input; its control channel and its LLM channel are socketpairs whose guest
 * ends the input writes to.
 *
 * The input is lines (each sent with its newline):
 *   "~"          run orchd's loop until it settles (the scheduler sends task.run after
 *                hello; orchd's requests get ids 1, 2, ... per channel)
 *   "L <line>"   <line> goes to the LLM channel instead of the control channel
 *   "X"          the guest closes its LLM channel and dials a new one (a reconnect)
 *   "C"          the guest closes its control channel
 *   anything else goes to the control channel as it is
 * The task ids are 1 and 2 in every run (wire ids "1.1", "2.1"). The LLM upstream is a
 * closed port on 127.0.0.1, so an admitted request ends in a connection error. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "orchd-llm.h"
#include "orchd.h"

static struct orchd d;
static bool ready;

static int fz_start(struct vm *vm, struct orch_error *err)
{
	return 0; /* the guest is the fuzzer: nothing to start */
}
static void fz_stop(struct vm *vm, bool force)
{
}
static const struct orchd_backend_ops fz_ops = {
	.name = "local",
	.start = fz_start,
	.stop = fz_stop,
};

static void setup(void)
{
	struct orch_error err = {0};
	char dir[] = "/tmp/fuzz-orchd-guest.XXXXXX", *json = NULL, *db = NULL, *key = NULL;
	FILE *f;

	orch_log_level = ORCH_LOG_ERROR; /* quiet */
	signal(SIGPIPE, SIG_IGN); /* as orchd does: a closed peer is an error, not a signal */
	if (!mkdtemp(dir))
		abort();
	if (asprintf(&key, "%s/key", dir) < 0)
		abort();
	f = fopen(key, "w");
	if (!f)
		abort();
	fputs("sk-fuzz\n", f);
	fclose(f);
	chmod(key, 0600);
	/* Port 9 on loopback: nothing listens, a connection is refused at once. */
	if (asprintf(&json,
		     "{\"state_dir\": \"%s\", \"uid_base\": 300000,"
		     " \"scheduler\": {\"max_output_mib\": 1},"
		     " \"vms\": {\"fz\": {\"slots\": 2}},"
		     " \"llm\": {\"upstreams\": {\"up\": {\"kind\": \"anthropic\","
		     "   \"base_url\": \"http://127.0.0.1:9\", \"key_file\": \"%s\"}},"
		     "  \"models\": {\"m\": {\"upstream\": \"up\", \"input_usd_per_mtok\": 1,"
		     "   \"output_usd_per_mtok\": 1}}}}",
		     dir, key) < 0)
		abort();
	if (orchd_config_parse(json, strlen(json), NULL, &d.cfg, &err) < 0) {
		fprintf(stderr, "fuzz-orchd-guest: config: %s\n", err.msg);
		abort();
	}
	if (asprintf(&d.spool_dir, "%s/spool", dir) < 0 || asprintf(&db, "%s/orch.db", dir) < 0)
		abort();
	mkdir(d.spool_dir, 0700);
	if (store_open(db, &d.store, &err) < 0 || orch_loop_new(&d.loop) < 0) {
		fprintf(stderr, "fuzz-orchd-guest: %s\n", err.msg);
		abort();
	}
	if (orchd_service_add(&d, &orchd_llm_service, &err) < 0 || orchd_llm_new(&d, &err) < 0) {
		fprintf(stderr, "fuzz-orchd-guest: llm: %s\n", err.msg);
		abort();
	}
	d.vms = calloc(1, sizeof(*d.vms));
	if (!d.vms)
		abort();
	free(json);
	free(db);
	free(key);
	ready = true;
}

/* Reads whatever orchd sent on the guest ends (nobody needs it; the buffers must not fill). */
static void drain(int fd)
{
	char buf[65536];

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

static void settle(int ctl, int llm)
{
	for (int i = 0; i < 40; i++) {
		orch_loop_run_once(d.loop, i < 36 ? 0 : 1);
		drain(ctl);
		drain(llm);
	}
}

static void put(int fd, const char *p, size_t n)
{
	while (fd >= 0 && n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EAGAIN) {
			settle(-1, -1); /* let orchd read */
			continue;
		}
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static int pair(int *ret_guest, struct orch_error *err)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return orch_errno(err, -errno, "socketpair");
	*ret_guest = sv[1];
	return sv[0];
}

static void reset_store(void)
{
	struct orch_error err = {0};

	(void)store_exec(d.store,
			 "DELETE FROM output; DELETE FROM tasks; DELETE FROM llm_reservation;"
			 " DELETE FROM llm_budget; DELETE FROM llm_spend;",
			 &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = {0};
	const char *argv[] = {"true", NULL};
	struct task_spec spec = {.argv = argv, .argc = 1, .slot = -1, .retries = 1};
	int ctl = -1, llm = -1, fd;
	struct vm *vm;
	int64_t id;
	size_t off = 0;

	if (!ready)
		setup();
	reset_store();
	for (int i = 0; i < 2; i++)
		if (store_task_insert(d.store, &spec, &id, &err) < 0)
			abort();
	if (vm_new(&d, &d.cfg->vms[0], &vm, &err) < 0)
		abort();
	vm->ops = &fz_ops;
	d.vms[0] = vm;
	d.n_vms = 1;
	vm->state = VM_STARTING;
	if ((fd = pair(&ctl, &err)) < 0 || vm_attach_channel(vm, fd, &err) < 0 ||
	    (fd = pair(&llm, &err)) < 0 || vm_lane_attach(vm, ORCHD_LANE_LLM, fd, &err) < 0)
		abort();

	while (off < size) {
		const char *line = (const char *)data + off;
		const char *nl = memchr(line, '\n', size - off);
		size_t len = nl ? (size_t)(nl - line) : size - off;

		off += len + (nl ? 1 : 0);
		if (len == 1 && line[0] == '~') {
			settle(ctl, llm);
		} else if (len == 1 && line[0] == 'X') {
			if (llm >= 0)
				close(llm);
			llm = -1;
			settle(ctl, llm);
			if ((fd = pair(&llm, &err)) >= 0 &&
			    vm_lane_attach(vm, ORCHD_LANE_LLM, fd, &err) < 0)
				llm = -1; /* attach closed both ends' orchd side */
		} else if (len == 1 && line[0] == 'C') {
			if (ctl >= 0)
				close(ctl);
			ctl = -1;
		} else if (len >= 2 && line[0] == 'L' && line[1] == ' ') {
			put(llm, line + 2, len - 2);
			put(llm, "\n", 1);
		} else {
			put(ctl, line, len);
			put(ctl, "\n", 1);
		}
	}
	settle(ctl, llm);
	if (getenv("ORCH_FUZZ_DEBUG")) { /* what the input did to the store */
		json_t *list = NULL;
		if (store_task_list(d.store, -1, 10, &list, &err) >= 0) {
			char *s = json_dumps(list, JSON_COMPACT);
			fprintf(stderr, "tasks: %s\n", s ? s : "?");
			free(s);
			json_decref(list);
		}
	}
	d.quitting = true; /* no restart from vm_gone while the VM is taken down */
	vm_free(vm);
	d.vms[0] = NULL;
	d.n_vms = 0;
	d.quitting = false;
	if (ctl >= 0)
		close(ctl);
	if (llm >= 0)
		close(llm);
	/* Exchanges the VM left behind end (connection refused) and settle. */
	for (int i = 0; i < 200 && orchd_llm_enabled(&d); i++)
		orch_loop_run_once(d.loop, 0);
	return 0;
}
