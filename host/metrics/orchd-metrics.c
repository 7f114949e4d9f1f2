/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "access.h"
#include "cleanup.h"
#include "control.h"
#include "egress-serve.h"
#include "metrics-config.h"
#include "metrics-http.h"
#include "orch-config.h"
#include "orchd-metrics.h"
#include "orchd.h"
#include "store-config.h"

/* The Unix socket: 0660 root:group from birth, like the control socket (control.c). */
static int listen_unix(const char *path, const struct orchd_access *a, struct orch_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return orch_err(err, -ENAMETOOLONG, "metrics socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return orch_errno(err, -errno, "socket");
	(void)unlink(path);
	old = umask(0117);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || (a->has_group && chown(path, (uid_t)-1, a->gid) < 0) || listen(fd, 16) < 0)
		return orch_errno(err, -errno, "cannot listen on %s", path);
	return TAKE_FD(fd);
}

static int listen_tcp(int64_t port, struct orch_error *err)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;

	if (fd < 0)
		return orch_errno(err, -errno, "socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return orch_errno(err, -errno, "cannot listen on 127.0.0.1:%lld", (long long)port);
	return TAKE_FD(fd);
}

static bool allow_peer(void *data, int fd)
{
	struct orchd *d = data;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return orchd_access_allowed(&d->metrics->access, cred.uid, cred.gid);
}

static char *render_cb(void *data, size_t *ret_len)
{
	return orchd_metrics_render(data, ret_len);
}

int orchd_metrics_new(struct orchd *d, struct orch_error *err)
{
	struct orchd_metrics *m = calloc(1, sizeof(*m));
	int fd, r;

	if (!m)
		return orch_err(err, -ENOMEM, "out of memory");
	d->metrics = m;
	if (metrics_config_socket(d->cfg->metrics, d->cfg->socket, &m->socket_path) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if (m->socket_path && strcmp(m->socket_path, d->cfg->socket) == 0)
		return orch_err(err, -EINVAL,
				"metrics.socket: %s is the control socket; name another path",
				m->socket_path);
	if ((r = orchd_access_init(&m->access, d->cfg->group, err)) < 0)
		return r;
	if (m->socket_path) {
		if ((fd = listen_unix(m->socket_path, &m->access, err)) < 0)
			return fd;
		if ((r = mx_http_new(d->loop, fd, render_cb, allow_peer, d, &m->unix_srv, err)) < 0)
			return r;
	}
	if (d->cfg->metrics->tcp_port) {
		if ((fd = listen_tcp(d->cfg->metrics->tcp_port, err)) < 0)
			return fd;
		if ((r = mx_http_new(d->loop, fd, render_cb, NULL, d, &m->tcp_srv, err)) < 0)
			return r;
	}
	return 0;
}

void orchd_metrics_free(struct orchd *d)
{
	struct orchd_metrics *m = d->metrics;

	if (!m)
		return;
	mx_http_free(m->unix_srv);
	mx_http_free(m->tcp_srv);
	if (m->unix_srv && m->socket_path)
		(void)unlink(m->socket_path);
	free(m->socket_path);
	free(m);
	d->metrics = NULL;
}

void orchd_metrics_observe(struct orchd *d, enum orchd_mx_hist h, double seconds)
{
	if (d->metrics && (unsigned)h < _ORCHD_MX_HIST_MAX)
		mx_observe(&d->metrics->hist[h], seconds);
}

void orchd_metrics_task_ended(struct orchd *d, int state)
{
	if (d->metrics && state >= 0 && state < (int)ELEMENTSOF(d->metrics->finished))
		d->metrics->finished[state]++;
}

void orchd_metrics_task_lost(struct orchd *d)
{
	if (d->metrics)
		d->metrics->lost++;
}

static void tasks(struct orchd *d, struct mx_text *t, const int64_t counts[])
{
	d->n_queued = counts[TASK_QUEUED];
	mx_family(t, "orch_queue_depth", "gauge", "Tasks queued, waiting for an agent slot.");
	mx_sample_int(t, "orch_queue_depth", NULL, counts[TASK_QUEUED]);
	mx_family(t, "orch_tasks", "gauge",
		  "Tasks in the store by state (with PostgreSQL: the whole cluster's).");
	for (int i = 0; i < _TASK_STATE_MAX; i++) {
		const char *l[] = {"state", task_state_name((enum task_state)i), NULL};
		mx_sample_int(t, "orch_tasks", l, counts[i]);
	}
}

static void node(struct orchd *d, struct mx_text *t)
{
	struct orchd_metrics *m = d->metrics;

	mx_family(t, "orch_tasks_finished_total", "counter",
		  "Tasks whose exit this orchd recorded, by final state.");
	for (int i = TASK_SUCCEEDED; i < _TASK_STATE_MAX; i++) {
		const char *l[] = {"state", task_state_name((enum task_state)i), NULL};
		mx_sample_int(t, "orch_tasks_finished_total", l, (int64_t)m->finished[i]);
	}
	mx_family(t, "orch_tasks_lost_total", "counter",
		  "Tasks this orchd lost (their VM or supervisor went away under them).");
	mx_sample_int(t, "orch_tasks_lost_total", NULL, (int64_t)m->lost);
	mx_family(t, "orch_task_lease_seconds", "histogram",
		  "From a task's submission to its first lease to an agent slot.");
	mx_histogram(t, "orch_task_lease_seconds", NULL, &m->hist[ORCHD_MX_LEASE]);
	mx_family(t, "orch_task_dispatch_seconds", "histogram",
		  "From a lease to the supervisor's acknowledgement of task.run.");
	mx_histogram(t, "orch_task_dispatch_seconds", NULL, &m->hist[ORCHD_MX_DISPATCH]);
	mx_family(t, "orch_vm_boot_seconds", "histogram",
		  "From a VM's start to its supervisor's hello, by backend.");
	{
		const char *l[] = {"backend", "local", NULL};
		const char *v[] = {"backend", "libvirt", NULL};
		mx_histogram(t, "orch_vm_boot_seconds", l, &m->hist[ORCHD_MX_BOOT_LOCAL]);
		mx_histogram(t, "orch_vm_boot_seconds", v, &m->hist[ORCHD_MX_BOOT_LIBVIRT]);
	}
}

static void vms(struct orchd *d, struct mx_text *t)
{
	int64_t by_state[VM_STOPPED + 1] = {0};

	mx_family(t, "orch_vms", "gauge", "This orchd's VMs by state.");
	for (size_t i = 0; i < d->n_vms; i++)
		by_state[d->vms[i]->state]++;
	for (int s = VM_DOWN; s <= VM_STOPPED; s++) {
		const char *l[] = {"state", vm_state_name((enum vm_state)s), NULL};
		mx_sample_int(t, "orch_vms", l, by_state[s]);
	}
	mx_family(t, "orch_vm_slots", "gauge", "Agent slots of each VM.");
	for (size_t i = 0; i < d->n_vms; i++) {
		const char *l[] = {"vm", d->vms[i]->cfg->name, NULL};
		mx_sample_int(t, "orch_vm_slots", l, d->vms[i]->n_slots);
	}
	mx_family(t, "orch_vm_slots_busy", "gauge", "Agent slots of each VM holding a task.");
	for (size_t i = 0; i < d->n_vms; i++) {
		const char *l[] = {"vm", d->vms[i]->cfg->name, NULL};
		int64_t busy = 0;
		for (int64_t j = 0; j < d->vms[i]->n_slots; j++)
			busy += d->vms[i]->slots[j].task != 0;
		mx_sample_int(t, "orch_vm_slots_busy", l, busy);
	}
}

static void egress(struct orchd *d, struct mx_text *t)
{
	struct egress_totals e;

	if (!d->egress)
		return;
	egress_host_totals(d->egress, &e);
	mx_family(t, "orch_egress_connections_total", "counter",
		  "Agents' egress connections that ended, by verdict.");
	mx_sample_int(t, "orch_egress_connections_total",
		      (const char *const[]){"verdict", "allowed", NULL}, (int64_t)e.allowed);
	mx_sample_int(t, "orch_egress_connections_total",
		      (const char *const[]){"verdict", "denied", NULL}, (int64_t)e.denied);
	mx_family(t, "orch_egress_bytes_total", "counter",
		  "Bytes of agents' egress connections that ended, by direction.");
	mx_sample_int(t, "orch_egress_bytes_total", (const char *const[]){"direction", "up", NULL},
		      (int64_t)e.bytes_up);
	mx_sample_int(t, "orch_egress_bytes_total",
		      (const char *const[]){"direction", "down", NULL}, (int64_t)e.bytes_down);
}

struct llm_ctx {
	struct mx_text *t;
	int pass;
};

static int llm_total(const struct store_llm_total *x, void *data)
{
	struct llm_ctx *c = data;
	const char *l[] = {"model", x->model, NULL};

	switch (c->pass) {
	case 0:
		mx_sample_int(c->t, "orch_llm_requests_total", l, x->requests);
		break;
	case 1: {
		const char *kinds[] = {"input", "output", "cache_write", "cache_read"};
		int64_t v[] = {x->input, x->output, x->cache_write, x->cache_read};
		for (int k = 0; k < 4; k++) {
			const char *lk[] = {"model", x->model, "kind", kinds[k], NULL};
			mx_sample_int(c->t, "orch_llm_tokens_total", lk, v[k]);
		}
		break;
	}
	default:
		mx_sample(c->t, "orch_llm_spend_usd_total", l, (double)x->micro / 1e6);
	}
	return 0;
}

/* The ledger's spend by this orchd (with PostgreSQL: this node), per model. */
static void llm(struct orchd *d, struct mx_text *t)
{
	static const char *const fam[][3] = {
		{"orch_llm_requests_total", "counter", "LLM requests settled, by model."},
		{"orch_llm_tokens_total", "counter", "LLM tokens settled, by model and kind."},
		{"orch_llm_spend_usd_total", "counter", "LLM spend settled in USD, by model."},
	};
	struct llm_ctx c = {t, 0};

	for (c.pass = 0; c.pass < 3; c.pass++) {
		mx_family(t, fam[c.pass][0], fam[c.pass][1], fam[c.pass][2]);
		if (store_llm_totals(d->store, llm_total, &c, NULL) < 0)
			break;
	}
}

char *orchd_metrics_render(struct orchd *d, size_t *ret_len)
{
	struct mx_text t = {0};
	int64_t counts[_TASK_STATE_MAX];
	struct orch_error err = {0};
	bool store_ok;
	const char *info[] = {"version", ORCH_VERSION, "store",
			      d->cfg->store->kind == STORE_POSTGRESQL ? "postgresql" : "sqlite",
			      NULL};

	if (!d->metrics)
		return NULL;
	mx_family(&t, "orch_info", "gauge", "orchd's version and store (always 1).");
	mx_sample_int(&t, "orch_info", info, 1);
	mx_family(&t, "orch_uptime_seconds", "gauge", "Time since orchd started.");
	mx_sample(&t, "orch_uptime_seconds", NULL, (double)(orch_now_ms() - d->started_ms) / 1e3);
	store_ok = store_task_counts(d->store, counts, &err) >= 0;
	mx_family(&t, "orch_store_up", "gauge", "1 while the store answers, 0 while it is away.");
	mx_sample_int(&t, "orch_store_up", NULL, store_ok);
	if (store_ok)
		tasks(d, &t, counts);
	node(d, &t);
	vms(d, &t);
	if (store_ok)
		llm(d, &t);
	egress(d, &t);
	mx_family(&t, "orch_control_clients", "gauge", "Connections to the control socket.");
	mx_sample_int(&t, "orch_control_clients", NULL,
		      d->control ? (int64_t)control_n_clients(d->control) : 0);
	return mx_text_take(&t, ret_len);
}

int control_metrics(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	if (params && (!json_is_object(params) || json_object_size(params)))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params: expected none");
	text = orchd_metrics_render(d, &len);
	if (!text)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "cannot render the metrics");
	return orch_rpc_reply(req, json_pack("{ss%}", "text", text, len));
}
