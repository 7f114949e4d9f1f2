/* SPDX-License-Identifier: Apache-2.0 */
/* orchd: the host daemon. One event loop for the control socket, the supervisor
 * channels, timers and (through event-libvirt.c) libvirt. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "control.h"
#include "virt-event-loop.h"
#include "fs-util.h"
#include "log.h"
#include "orch-config.h"
#include "orchd-egress.h"
#include "orchd-git.h"
#include "orchd-llm.h"
#include "orchd-fleet.h"
#include "orchd-metrics.h"
#include "profiles.h"
#include "orchd.h"
#include "pool-prune.h"
#include "pool.h"
#include "reaper.h"
#include "shell-relay.h"
#include "store-config.h"
#include "workspace-dirs.h"

struct args {
	const char *config;
	const char *check_config;
	bool offline;
	const char *state_dir;
	const char *socket;
	int verbose;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orchd [OPTIONS]\n"
		"Runs the orch host daemon in the foreground (use a service manager to detach).\n"
		"\n"
		"  -c, --config FILE        configuration file (docs/CONFIG.md); default: none,\n"
		"                           every key takes its default (local backend)\n"
		"      --check-config FILE  validate FILE, print the result, exit 0 (ok) or 1;\n"
		"                           with a postgresql store also connect to it\n"
		"      --offline            with --check-config: do not connect (a build sandbox)\n"
		"  -s, --state-dir DIR      state directory (default %s)\n"
		"  -S, --socket PATH        control socket (default %s)\n"
		"  -f, --foreground         run in the foreground (the default; accepted for "
		"clarity)\n"
		"  -v, --verbose            more log output (repeat for debug)\n"
		"  -h, --help               this text\n"
		"  -V, --version            print the version\n",
		ORCHD_DEFAULT_STATE_DIR, ORCHD_DEFAULT_SOCKET);
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", required_argument, NULL, 'C'},
		{"offline", no_argument, NULL, 'O'},
		{"state-dir", required_argument, NULL, 's'},
		{"socket", required_argument, NULL, 'S'},
		{"foreground", no_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:S:fvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'C':
			a->check_config = optarg;
			break;
		case 'O':
			a->offline = true;
			break;
		case 's':
			a->state_dir = optarg;
			break;
		case 'S':
			a->socket = optarg;
			break;
		case 'f':
			break;
		case 'v':
			a->verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("orchd %s\n", ORCH_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "orchd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (a->state_dir && a->state_dir[0] != '/') {
		fprintf(stderr, "orchd: --state-dir must be an absolute path\n");
		return -EINVAL;
	}
	return 0;
}

static char *find_supervisor(const struct orchd_config *cfg)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	const char *env = getenv("ORCH_LIBEXECDIR");
	ssize_t n;

	if (cfg->supervisor)
		return access(cfg->supervisor, X_OK) == 0 ? strdup(cfg->supervisor) : NULL;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;
		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(path, sizeof(path), "%s/orch-supervisor", self);
			if (access(path, X_OK) == 0)
				return strdup(path);
			snprintf(path, sizeof(path), "%s/../guest/orch-supervisor", self);
			if (access(path, X_OK) == 0)
				return realpath(path, NULL);
		}
	}
	if (env && *env) {
		snprintf(path, sizeof(path), "%s/orch-supervisor", env);
		if (access(path, X_OK) == 0)
			return strdup(path);
	}
	snprintf(path, sizeof(path), "%s/orch-supervisor", ORCH_LIBEXECDIR);
	if (access(path, X_OK) == 0)
		return strdup(path);
	snprintf(path, sizeof(path), "%s/guest/orch-supervisor", ORCH_BUILDDIR);
	if (access(path, X_OK) == 0)
		return strdup(path);
	return NULL;
}

static void on_signal(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct orchd *d = data;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		orch_logf(ORCH_LOG_INFO, "orchd", "signal %u: shutting down", si.ssi_signo);
		d->quitting = true;
		orch_loop_quit(loop);
	}
}

static int mkdir_mode(const char *path, mode_t mode, struct orch_error *err)
{
	int r = orchd_mkdir(path, mode);

	if (r < 0)
		return orch_errno(err, r, "cannot create %s", path);
	return 0;
}

/* Tasks a previous orchd left leased/running wait in their slots for the supervisor's
 * hello, which says whether they still run; tasks of VMs that are gone are lost now. */
static int reconcile_store(struct orchd *d, struct orch_error *err)
{
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0;
	int r;

	r = store_tasks_active(d->store, &ids, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct task_row *t = NULL;
		struct vm *vm;

		if (store_task_get(d->store, ids[i], &t, err) < 0)
			continue;
		vm = t->vm ? orchd_find_vm(d, t->vm) : NULL;
		if (vm && vm->cfg->autostart && t->slot >= 0 && t->slot < vm->n_slots &&
		    !vm_slot_task(vm, t->slot)) {
			vm_adopt_orphan(vm, t->slot, t->id, t->attempts, t->output_seq);
		} else {
			bool requeued;
			store_task_lost(d->store, t->id,
					vm ? "lost: its VM does not start with orchd"
					   : "lost: its VM is no longer configured",
					&requeued, err);
		}
		task_row_free(t);
	}
	if (n)
		orch_logf(ORCH_LOG_INFO, "orchd",
			  "%zu task(s) from before the restart await "
			  "reconciliation",
			  n);
	return 0;
}

static void on_prune_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orchd *d = data;
	struct orch_error err = {0};
	int64_t *ids = NULL;
	size_t n = 0;

	if (store_task_prune(d->store, d->cfg->scheduler.keep_finished, &ids, &n, &err) < 0) {
		orch_log(ORCH_LOG_WARN, "store", "cannot prune finished tasks", "error", err.msg,
			 NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		spool_remove(d, ids[i]);
		orchd_services_task_pruned(d, ids[i]);
	}
	if (n)
		orch_logf(ORCH_LOG_INFO, "store", "pruned %zu finished task(s)", n);
	free(ids);
}

/* The backend of the config's i-th VM (class), NULL when it is not built in. */
static const struct orchd_backend_ops *backend_of(struct orchd *d, size_t i)
{
	return orchd_backend_find(orchd_backend_name(d->cfg->vms[i].backend));
}

/* True when the config's i-th VM is the first to use its backend (init/shutdown run once
 * each, also for a pool with no VM yet). */
static bool first_of_backend(struct orchd *d, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (d->cfg->vms[j].backend == d->cfg->vms[i].backend)
			return false;
	return true;
}

static int setup(struct orchd *d, const struct args *a, struct orch_error *err)
{
	char node[STORE_NODE_MAX + 1] = "";
	sigset_t mask;
	int r, sfd;
	struct orch_io *sio;

	d->started_ms = orch_now_ms();
	/* state_dir 0711, workspace_root 0700; o+x where local agents pass through
	 * (workspace-dirs.h). The store and the spool are not readable for anyone else. */
	if ((r = orchd_dirs_prepare(d->cfg, err)) < 0)
		return r;
	if (asprintf(&d->spool_dir, "%s/spool", d->cfg->state_dir) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = mkdir_mode(d->spool_dir, 0700, err)) < 0)
		return r;
	if (d->cfg->store->kind == STORE_POSTGRESQL &&
	    orchd_fleet_node_name(d->cfg, node, sizeof(node)) < 0)
		return orch_err(err, -EINVAL,
				"store.postgresql.node: not set, and the host's name is no valid "
				"node name; set one");
	r = store_open_config(d->cfg->store, d->cfg->state_dir, node, &d->store, err);
	if (r < 0)
		return r;
	r = orch_loop_new(&d->loop);
	if (r < 0)
		return orch_errno(err, r, "cannot create the event loop");

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return orch_errno(err, -errno, "signalfd");
	r = orch_io_add(d->loop, sfd, EPOLLIN, on_signal, d, &sio);
	if (r < 0)
		return orch_errno(err, r, "watching signals");

	d->supervisor_path = find_supervisor(d->cfg);
	d->vms = calloc(d->cfg->n_vms, sizeof(*d->vms));
	if (!d->vms)
		return orch_err(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < d->cfg->n_vms; i++) {
		if (d->cfg->vms[i].pooled) /* its pool makes its VMs (host/pool/) */
			continue;
		r = vm_new(d, &d->cfg->vms[i], &d->vms[d->n_vms], err);
		if (r < 0)
			return r;
		d->n_vms++;
	}
	r = pools_new(d, err);
	if (r < 0)
		return r;
	/* libvirt's events run on our loop; registered before any backend connects (and
	 * only when a VM uses libvirt: it costs memory otherwise). */
	for (size_t i = 0; i < d->cfg->n_vms; i++)
		if (d->cfg->vms[i].backend == ORCHD_BACKEND_LIBVIRT) {
			orchd_event_libvirt_register(d->loop);
			break;
		}
	/* The services beside the core (service.h), in the order they see events. */
	static const struct orchd_service *const services[] = {
		&orchd_llm_service, &orchd_egress_service, &orchd_shell_service, &orchd_git_service,
		&orchd_pool_service};
	for (size_t i = 0; i < ELEMENTSOF(services); i++)
		if ((r = orchd_service_add(d, services[i], err)) < 0)
			return r;
	r = orchd_llm_new(d, err);
	if (r < 0)
		return orch_err_prefix(err, "llm");
	r = orchd_egress_new(d, err);
	if (r < 0)
		return r;
	r = orchd_profiles_init(d, err);
	if (r < 0)
		return r;
	/* before any VM starts: the libvirt VMs' workspaces become shared mounts */
	r = orchd_git_new(d, err);
	if (r < 0)
		return orch_err_prefix(err, "git");
	for (size_t i = 0; i < d->cfg->n_vms; i++)
		for (size_t j = 0; j < d->cfg->vms[i].n_profiles; j++)
			if (!orchd_profile_known(d, d->cfg->vms[i].profiles[j]))
				orch_log(ORCH_LOG_WARN, "profiles",
					 "unknown profile in vms.*.profiles", "vm",
					 d->cfg->vms[i].name, "profile", d->cfg->vms[i].profiles[j],
					 NULL);
	for (size_t i = 0; i < d->cfg->n_vms; i++)
		if (backend_of(d, i) && backend_of(d, i)->init && first_of_backend(d, i)) {
			r = backend_of(d, i)->init(d, err);
			if (r < 0)
				return r;
		}
	if (!d->supervisor_path)
		for (size_t i = 0; i < d->cfg->n_vms; i++)
			if (d->cfg->vms[i].backend == ORCHD_BACKEND_LOCAL)
				return orch_err(err, -ENOENT,
						"orch-supervisor not found (next to orchd, in "
						"$ORCH_LIBEXECDIR, %s or the build tree); set "
						"\"supervisor\" in the config",
						ORCH_LIBEXECDIR);
	r = orchd_fleet_new(d, err); /* registers this node first: a shared store's tasks */
	if (r < 0)
		return orch_err_prefix(err, "fleet");
	r = reconcile_store(d, err);
	if (r < 0)
		return r;
	static const struct control_hooks hooks = {
		.client_closed = waiters_drop_client,
		.client_drained = waiters_drain,
	};
	r = control_new(d, &hooks, &d->control, err);
	if (r < 0)
		return r;
	r = shell_relay_new(d, &d->shells, err);
	if (r < 0)
		return orch_err_prefix(err, "debug shells");
	r = orchd_metrics_new(d, err);
	if (r >= 0)
		r = control_metrics_new(d, &d->metrics_srv, err);
	if (r < 0)
		return orch_err_prefix(err, "metrics");
	for (size_t i = 0; i < d->n_vms; i++)
		if (d->vms[i]->cfg->autostart && !d->vms[i]->owner)
			vm_start(d->vms[i]);
	pools_start(d);
	if (d->cfg->scheduler.keep_finished > 0) {
		r = orch_timer_add(d->loop, 0, 60000, on_prune_timer, d, &d->prune_timer);
		if (r < 0)
			return orch_errno(err, r, "prune timer");
	}
	sched_kick(d);
	return 0;
}

static void teardown(struct orchd *d)
{
	d->quitting = true;
	waiters_free_all(d);
	control_metrics_free(d->metrics_srv);
	d->metrics_srv = NULL;
	orchd_metrics_free(d);
	orchd_fleet_free(d);
	control_free(d->control);
	shell_relay_free(d->shells);
	d->shells = NULL;
	for (size_t i = 0; d->cfg && i < d->cfg->n_vms; i++)
		if (backend_of(d, i) && backend_of(d, i)->shutdown && first_of_backend(d, i))
			backend_of(d, i)->shutdown(d);
	orchd_llm_free(d);
	orchd_egress_free(d);
	orchd_git_free(d);
	orchd_profiles_free(d);
	for (size_t i = 0; i < d->n_vms; i++)
		vm_free(d->vms[i]);
	orchd_event_libvirt_drain(); /* what closing libvirt's connections left to free */
	free(d->vms);
	pools_free(d);
	free(d->vm_methods);
	orch_timer_free(d->sched_timer);
	orch_timer_free(d->prune_timer);
	store_close(d->store);
	free(d->supervisor_path);
	free(d->spool_dir);
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct orchd d = {0};
	struct orch_error err = {0};
	enum orch_log_level lvl;
	int r;

	/* Everything orchd creates is its own unless it says otherwise (the store holds task
	 * argv, env and prompts; the spool their output): directories that others must
	 * traverse get their mode explicitly (orchd_mkdir). */
	umask(077);
	lv_reaper_main(argc, argv);  /* a hidden mode: destroys a domain and exits */
	pool_prune_main(argc, argv); /* a hidden mode: removes retired workspaces, exits */
	if (parse_args(argc, argv, &a) < 0)
		return 2;
	if (a.check_config) {
		struct orchd_config *c = NULL;
		r = orchd_config_load(a.check_config, NULL, &c, &err);
		if (r < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		char what[160] = "";
		if (!a.offline && store_check(c->store, what, sizeof(what), &err) < 0) {
			fprintf(stderr, "%s: %s\n", a.check_config, err.msg);
			orchd_config_free(c);
			return 1;
		}
		orchd_config_free(c);
		printf("%s: ok%s%s\n", a.check_config, what[0] ? "; " : "", what);
		return 0;
	}
	r = orchd_config_load(a.config, a.state_dir, &d.cfg, &err);
	if (r < 0) {
		fprintf(stderr, "orchd: %s\n", err.msg);
		return 1;
	}
	if (a.socket) {
		free(d.cfg->socket);
		d.cfg->socket = strdup(a.socket);
	}
	if (orch_log_level_parse(d.cfg->log_level, &lvl) == 0)
		orch_log_level = lvl;
	for (int i = 0; i < a.verbose && orch_log_level < ORCH_LOG_DEBUG; i++)
		orch_log_level++;

	r = setup(&d, &a, &err);
	if (r < 0) {
		orch_log(ORCH_LOG_ERROR, "orchd", "cannot start", "error", err.msg, NULL);
		teardown(&d);
		orch_loop_free(d.loop);
		orchd_config_free(d.cfg);
		return 1;
	}
	orch_log(ORCH_LOG_INFO, "orchd", "ready", "socket", d.cfg->socket, "state_dir",
		 d.cfg->state_dir, NULL);
	r = orch_loop_run(d.loop);
	if (r < 0)
		orch_logf(ORCH_LOG_ERROR, "orchd", "event loop failed: %s", strerror(-r));
	teardown(&d);
	orch_loop_free(d.loop);
	orchd_config_free(d.cfg);
	return r < 0 ? 1 : 0;
}
