/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "schema.h"
#include "llm-ledger.h"
#include "sqlite-util.h"
#include "llm-test-stack.h"
#include "llm-test-util.h"

static const struct orch_rpc_method host_methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, 0, llm_serve_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, 0, llm_serve_on_cancel},
};

static int resolve(void *data, int64_t slot, const char **ret_task)
{
	if (slot < LLM_STACK_SLOT || slot > LLM_STACK_SLOT + 2)
		return -ENOENT;
	*ret_task = slot == LLM_STACK_SLOT	 ? LLM_STACK_TASK
		    : slot == LLM_STACK_SLOT + 1 ? LLM_STACK_TASK "-4"
						 : LLM_STACK_TASK "-5";
	return 0;
}

static int listen_loopback(unsigned *ret_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

struct llm_endpoint_opts llm_stack_opts(int64_t slot)
{
	/* Its own range per test process (several run at once), clear of the other tests'
	 * agent uids: 30000 + 256k + 64 + slot. */
	uid_t uid = 30000 + 256 * (uid_t)(getpid() % 64) + 64 + (uid_t)slot;
	return (struct llm_endpoint_opts){.slot = slot, .uid = uid, .gid = uid, .netns_fd = -1};
}

int llm_stack_start(struct llm_stack *s, const char *fake_path, const char *const *fake_args)
{
	const char *args[16] = {"--key", LLM_TEST_KEY, "--record", s->recpath};
	struct orch_rpc_opts opts = {.max_line = ORCH_PROTOCOL_MAX_LINE, .name = "llm-test"};
	struct orch_error err = {0};
	char url[64];
	int sv[2], fd, r;
	size_t n = 4;

	memset(s, 0, sizeof(*s));
	snprintf(s->tmpdir, sizeof(s->tmpdir), "/tmp/orch-llm-stack-XXXXXX");
	if (!mkdtemp(s->tmpdir))
		return -errno;
	snprintf(s->recpath, sizeof(s->recpath), "%s/requests.jsonl", s->tmpdir);
	snprintf(s->dbpath, sizeof(s->dbpath), "%s/orch.db", s->tmpdir);
	args[3] = s->recpath;
	for (size_t i = 0; fake_args && fake_args[i] && n < 15; i++)
		args[n++] = fake_args[i];
	args[n] = NULL;
	r = llm_test_write_key(s->tmpdir, s->keypath, sizeof(s->keypath));
	if (r < 0)
		return r;
	r = llm_test_spawn_fake(fake_path, args, &s->fake_pid, &s->fake_port);
	if (r < 0)
		return r;
	if (orch_loop_new(&s->loop) < 0 || sqlite3_open(s->dbpath, &s->db) != SQLITE_OK)
		return -EIO;
	/* As orchd's store runs it: WAL, fsync at checkpoints only. */
	sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	if (store_migrate(s->db, &err) < 0 || llm_config_init(&s->cfg) < 0)
		goto fail;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", s->fake_port);
	if (llm_config_add_upstream(&s->cfg, "anthropic", LLM_API_ANTHROPIC, url, s->keypath,
				    &err) < 0 ||
	    llm_config_add_upstream(&s->cfg, "openai", LLM_API_OPENAI, url, s->keypath, &err) < 0 ||
	    llm_config_add_upstream(&s->cfg, "gemini", LLM_API_GEMINI, url, s->keypath, &err) < 0 ||
	    llm_config_add_model(&s->cfg, "gemini-2.5-pro", "gemini", 1, 10, &err) < 0 ||
	    llm_config_add_model(&s->cfg, "claude-sonnet-4-5", "anthropic", 3, 15, &err) < 0 ||
	    llm_config_add_model(&s->cfg, "gpt-4.1", "openai", 2, 8, &err) < 0 ||
	    llm_config_load_keys(&s->cfg, &err) < 0 ||
	    llm_proxy_new(s->loop, s->db, &s->cfg, &s->proxy, &err) < 0)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	if (orch_rpc_new(s->loop, sv[0], host_methods, ELEMENTSOF(host_methods), &opts, NULL,
			 &s->host_rpc) < 0 ||
	    llm_serve_new(s->proxy, s->host_rpc, "vm", resolve, NULL, &s->serve) < 0)
		return -EIO;
	orch_rpc_set_data(s->host_rpc, s->serve);
	if (llm_bridge_new(s->loop, &s->bridge, &err) < 0 ||
	    orch_rpc_new(s->loop, sv[1], llm_bridge_methods, ELEMENTSOF(llm_bridge_methods), &opts,
			 s->bridge, &s->guest_rpc) < 0)
		return -EIO;
	llm_bridge_set_rpc(s->bridge, s->guest_rpc);
	fd = listen_loopback(&s->port);
	if (fd < 0)
		return fd;
	struct llm_endpoint_opts o = llm_stack_opts(LLM_STACK_SLOT);
	if (llm_endpoint_new(s->bridge, fd, &o, &s->ep, &err) < 0)
		goto fail;
	llm_endpoint_set_task(s->ep, LLM_STACK_TASK);
	fd = listen_loopback(&s->port2);
	if (fd < 0)
		return fd;
	o = llm_stack_opts(LLM_STACK_SLOT + 1);
	if (llm_endpoint_new(s->bridge, fd, &o, &s->ep2, &err) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "llm stack: %s\n", err.msg);
	return err.code < 0 ? err.code : -EIO;
}

void llm_stack_stop(struct llm_stack *s)
{
	llm_endpoint_free(s->ep);
	llm_endpoint_free(s->ep2);
	llm_bridge_set_rpc(s->bridge, NULL);
	llm_serve_free(s->serve);
	if (s->guest_rpc) {
		orch_rpc_close(s->guest_rpc);
		orch_rpc_unref(s->guest_rpc);
	}
	if (s->host_rpc) {
		orch_rpc_close(s->host_rpc);
		orch_rpc_unref(s->host_rpc);
	}
	llm_bridge_free(s->bridge);
	llm_proxy_free(s->proxy);
	llm_config_done(&s->cfg);
	if (s->db)
		sqlite3_close(s->db);
	orch_loop_free(s->loop);
	llm_test_stop(s->fake_pid);
	llm_test_rmtree(s->tmpdir);
}
