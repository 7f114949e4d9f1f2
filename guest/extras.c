/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "extras.h"
#include "llm-channel.h"
#include "log.h"
#include "netns.h"
#include "privsep.h"

#include "llm-endpoint.h"
#include "llm-helper.h"
#include "shell-relay.h"
#include "shell-supervisor.h"
#include "egress-helper.h"
#include "egress-proxy.h"

void sv_extras_helper_main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], LLM_HELPER_ARG) == 0)
		llm_helper_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], SV_SHELL_RELAY_ARG) == 0)
		sv_shell_relay_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], EGRESS_HELPER_ARG) == 0)
		egress_helper_main(argc, argv);
}

void sv_extras_print_dlopen(FILE *f)
{
	fprintf(f, "%s\n", llm_endpoint_library());
}

static int llm_listen(struct supervisor *sv, struct sv_slot *slot, struct orch_error *err)
{
	_cleanup_close_ int fd =
		sv_netns_socket(slot->netns_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, err);
	if (fd < 0)
		return fd;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)sv->cfg->llm_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 64) < 0)
		return orch_errno(err, -errno, "slot %u: cannot listen on 127.0.0.1:%u",
				  slot->index, sv->cfg->llm_port);
	/* Its endpoint process: a uid of its own, in the slot's network namespace. */
	uid_t uid = sv_privsep_uid(sv->cfg->uid_base, SV_PRIVSEP_LLM, slot->index);
	struct llm_endpoint_opts o = {.slot = slot->index,
				      .uid = uid,
				      .gid = uid,
				      .netns_fd = slot->netns_fd,
				      .no_seccomp = sv->cfg->no_seccomp};
	return llm_endpoint_new(sv->llm, TAKE_FD(fd), &o, &slot->llm, err);
}

static int m_llm_chunk(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	struct supervisor *sv = data;
	return llm_bridge_on_chunk(sv->llm, params, err);
}

static int m_llm_done(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	struct supervisor *sv = data;
	return llm_bridge_on_done(sv->llm, params, err);
}

const struct orch_rpc_method sv_extras_methods[] = {
	{"llm.chunk", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, m_llm_chunk},
	{"llm.done", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, m_llm_done},
};
const size_t sv_extras_n_methods = ELEMENTSOF(sv_extras_methods);

static void shell_event(unsigned slot, enum sv_shell_event ev, const char *detail, void *data)
{
	char s[16];
	snprintf(s, sizeof(s), "%u", slot);
	const char *what = ev == SV_SHELL_OPENED    ? "debug shell opened"
			   : ev == SV_SHELL_CLOSED  ? "debug shell closed"
			   : ev == SV_SHELL_REFUSED ? "debug shell refused"
						    : "debug shell failed";
	orch_log(ORCH_LOG_INFO, "shell", what, "slot", s, "detail", detail ? detail : "", NULL);
}

int sv_extras_start(struct supervisor *sv, struct orch_error *err)
{
	int r = 0;
	if (sv->cfg->llm_port) {
		if ((r = llm_bridge_new(sv->loop, &sv->llm, err)) < 0)
			return r;
		for (unsigned i = 0; i < sv->cfg->slots; i++)
			if ((r = llm_listen(sv, &sv->slots[i], err)) < 0)
				return r;
	}
	if ((r = sv_llm_channel_start(sv, err)) < 0) /* --llm-connect */
		return r;
	if (sv->cfg->egress_connect && sv->cfg->egress_port) {
		int netns[ORCH_MAX_SLOTS];
		for (unsigned i = 0; i < sv->cfg->slots; i++)
			netns[i] = sv->slots[i].netns_fd;
		struct egress_bridge_opts eo = {.connect = sv->cfg->egress_connect,
						.port = sv->cfg->egress_port,
						.slots = sv->cfg->slots,
						.uid_base = sv->cfg->uid_base,
						.netns_fds = netns,
						.no_seccomp = sv->cfg->no_seccomp};
		if ((r = egress_bridge_new(sv->loop, &eo, &sv->egress, err)) < 0)
			return orch_err_prefix(err, "egress");
	}
	if (sv->cfg->shell_listen)
		for (unsigned i = 0; i < sv->cfg->slots; i++)
			if ((r = sv_shell_start_slot(sv, &sv->slots[i], sv->cfg->shell_listen,
						     shell_event, sv, &sv->slots[i].shell, err)) <
			    0)
				return r;
	return r;
}

void sv_extras_stop(struct supervisor *sv)
{
	sv_llm_channel_stop(sv);
	egress_bridge_free(sv->egress);
	sv->egress = NULL;
	for (unsigned i = 0; i < sv->cfg->slots; i++) {
		sv_shell_free(sv->slots[i].shell);
		if (sv->slots[i].llm)
			llm_endpoint_free(sv->slots[i].llm);
		sv->slots[i].shell = NULL;
		sv->slots[i].llm = NULL;
	}
	if (sv->llm)
		llm_bridge_free(sv->llm);
	sv->llm = NULL;
}

void sv_extras_set_rpc(struct supervisor *sv, struct orch_rpc *rpc)
{
	if (sv->llm && !sv->cfg->llm_connect) /* else the LLM channel of its own */
		llm_bridge_set_rpc(sv->llm, rpc);
}

void sv_extras_redial(struct supervisor *sv)
{
	egress_bridge_redial(sv->egress);
}

void sv_extras_set_task(struct supervisor *sv, struct sv_slot *slot, const char *task)
{
	if (slot->llm)
		(void)llm_endpoint_set_task(slot->llm, task);
	if (sv->egress)
		egress_bridge_set_task(sv->egress, slot->index, task);
}

static const char *const *llm_env(const struct supervisor *sv)
{
	/* The agent's tools talk to the in-jail endpoint with a placeholder key; the host
	 * holds the real one. (Only the default port 4000 is spelled out here.) */
	static const char *const llm_env[] = {
		"ANTHROPIC_BASE_URL=http://127.0.0.1:4000",
		"ANTHROPIC_API_KEY=orch-placeholder",
		"OPENAI_BASE_URL=http://127.0.0.1:4000/v1",
		"OPENAI_API_KEY=orch-placeholder",
		NULL,
	};
	static const char *const none[] = {NULL};
	if (sv->llm && sv->cfg->llm_port == 4000)
		return llm_env;
	return none;
}

const char *const *sv_extras_env(struct supervisor *sv)
{
	const char *const *l = llm_env(sv);
	size_t n = 0;

	for (size_t i = 0; l[i] && n < ELEMENTSOF(sv->extras_env) - 1; i++)
		sv->extras_env[n++] = l[i];
	const char *const *e = sv->egress ? egress_bridge_env(sv->egress) : NULL;
	for (size_t i = 0; e && e[i] && n < ELEMENTSOF(sv->extras_env) - 1; i++)
		sv->extras_env[n++] = e[i];
	sv->extras_env[n] = NULL;
	return sv->extras_env;
}

const char *const *sv_extras_binds(const struct supervisor *sv)
{
	static const char *const none[] = {NULL};
	if (sv->egress)
		return egress_bridge_binds(sv->egress);
	return none;
}

void sv_extras_capabilities(const struct supervisor *sv, json_t *caps)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", sv->cfg->llm_port);
	json_object_set_new(caps, "llm", sv->llm ? json_string(url) : json_null());
	json_object_set_new(caps, "llm_channel",
			    !sv->llm	   ? json_null()
			    : sv->llm_chan ? json_string("separate")
					   : json_string("main"));
	json_object_set_new(caps, "shell",
			    sv->cfg->shell_listen ? json_string(sv->cfg->shell_listen)
						  : json_null());
	char eg[64];
	snprintf(eg, sizeof(eg), "http://127.0.0.1:%u", sv->cfg->egress_port);
	json_object_set_new(caps, "egress", sv->egress ? json_string(eg) : json_null());
}
