/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config-util.h"
#include "config-egress.h"
#include "config-git.h"
#include "config-store.h"
#include "config.h"
#include "schema.h"
#include "transport.h"
#include "strv.h"

#define CONFIG_MAX_BYTES (4 * 1024 * 1024)
#define MAX_VMS 256
#define MAX_PROFILES 256

static const char *const backend_names[] = {"local", "libvirt", NULL};
static const char *const transport_names[] = {"auto", "vsock", "virtio-serial", NULL};
static const char *const accel_names[] = {"auto", "kvm", "tcg", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};

const char *orchd_backend_name(enum orchd_backend_kind k)
{
	return k == ORCHD_BACKEND_LIBVIRT ? "libvirt" : "local";
}

bool orchd_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ORCHD_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

static int parse_limits(json_t *o, const char *path, struct orchd_limits *l, struct orch_error *err)
{
	static const char *const keys[] = {"timeout_ms", "memory_mib", "pids", "cpu_percent",
					   "nofile",	 "fsize_mib",  NULL};
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, path, err)) < 0 || (r = cfg_check_keys(o, path, keys, err)) < 0)
		return r;
	if ((r = cfg_int(o, path, "timeout_ms", 0, 604800000, &l->timeout_ms, err)) < 0 ||
	    (r = cfg_int(o, path, "memory_mib", 0, 1048576, &l->memory_mib, err)) < 0 ||
	    (r = cfg_int(o, path, "pids", 0, 1000000, &l->pids, err)) < 0 ||
	    (r = cfg_int(o, path, "cpu_percent", 0, 6400, &l->cpu_percent, err)) < 0 ||
	    (r = cfg_int(o, path, "nofile", 0, 1048576, &l->nofile, err)) < 0 ||
	    (r = cfg_int(o, path, "fsize_mib", 0, 1048576, &l->fsize_mib, err)) < 0)
		return r;
	return 0;
}

static int parse_scheduler(json_t *o, struct orchd_scheduler_config *s, struct orch_error *err)
{
	static const char *const keys[] = {"retries",	    "heartbeat_ms",	"heartbeat_misses",
					   "max_queue",	    "lease_timeout_ms", "max_clients",
					   "keep_finished", "max_output_mib",	NULL};
	const char *p = "scheduler";
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	if ((r = cfg_int(o, p, "retries", 0, 10, &s->retries, err)) < 0 ||
	    (r = cfg_int(o, p, "heartbeat_ms", 100, 600000, &s->heartbeat_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "heartbeat_misses", 1, 100, &s->heartbeat_misses, err)) < 0 ||
	    (r = cfg_int(o, p, "max_queue", 1, 10000000, &s->max_queue, err)) < 0 ||
	    (r = cfg_int(o, p, "lease_timeout_ms", 100, 600000, &s->lease_timeout_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "max_clients", 1, 4096, &s->max_clients, err)) < 0 ||
	    (r = cfg_int(o, p, "keep_finished", 0, 100000000, &s->keep_finished, err)) < 0 ||
	    (r = cfg_int(o, p, "max_output_mib", 1, 1048576, &s->max_output_mib, err)) < 0)
		return r;
	return 0;
}

/* The host ports the guests dial (host/libvirt/lanes.h): reserved, distinct. */
static int parse_vsock(json_t *o, struct orchd_vsock_config *v, struct orch_error *err)
{
	static const char *const keys[] = {"control_port", "llm_port", "egress_port", NULL};
	const char *p = "vsock";
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	if ((r = cfg_int(o, p, "control_port", 1, ORCH_VSOCK_LAST_RESERVED_PORT, &v->control_port,
			 err)) < 0 ||
	    (r = cfg_int(o, p, "llm_port", 1, ORCH_VSOCK_LAST_RESERVED_PORT, &v->llm_port, err)) <
		    0 ||
	    (r = cfg_int(o, p, "egress_port", 1, ORCH_VSOCK_LAST_RESERVED_PORT, &v->egress_port,
			 err)) < 0)
		return r;
	if (v->control_port == v->llm_port)
		return orch_err(err, -EINVAL,
				"vsock.llm_port: must differ from vsock.control_port (%lld)",
				(long long)v->control_port);
	if (v->egress_port == v->control_port || v->egress_port == v->llm_port)
		return orch_err(err, -EINVAL,
				"vsock.egress_port: must differ from vsock.control_port and "
				"vsock.llm_port");
	return 0;
}

/* The guest adds hot-plugged memory in blocks of 128 MiB (host/libvirt/domain-xml.h). */
#define HOTPLUG_BLOCK_MIB 128
#define BOOT_MEMORY_MIN_MIB 64

static int check_boot_memory(json_t *o, const char *p, const struct orchd_vm_config *vm,
			     struct orch_error *err)
{
	int64_t b = vm->boot_memory_mib, m = vm->memory_mib;
	if (!b && json_object_get(o, "unplug_idle_ms"))
		return orch_err(err, -EINVAL,
				"%s.unplug_idle_ms: only memory hot-plug (boot_memory_mib) unplugs",
				p);
	if (!b)
		return 0;
	if (m < BOOT_MEMORY_MIN_MIB + HOTPLUG_BLOCK_MIB)
		return orch_err(err, -EINVAL,
				"%s.boot_memory_mib: memory hot-plug needs memory_mib >= %d", p,
				BOOT_MEMORY_MIN_MIB + HOTPLUG_BLOCK_MIB);
	if (b < BOOT_MEMORY_MIN_MIB || b >= m || (m - b) % HOTPLUG_BLOCK_MIB) {
		/* a value that fits: about 256 MiB, or the least the rule allows */
		int64_t fit = m >= 256 + HOTPLUG_BLOCK_MIB ? 256 + (m - 256) % HOTPLUG_BLOCK_MIB
							   : m - HOTPLUG_BLOCK_MIB;
		return orch_err(err, -EINVAL,
				"%s.boot_memory_mib: expected 0 (no hot-plug) or %d..%lld with "
				"memory_mib - boot_memory_mib a multiple of %d (the guest adds "
				"memory in blocks of that size), e.g. %lld",
				p, BOOT_MEMORY_MIN_MIB, (long long)(m - HOTPLUG_BLOCK_MIB),
				HOTPLUG_BLOCK_MIB, (long long)fit);
	}
	return 0;
}

static int parse_vm(const char *name, json_t *o, struct orchd_config *c, struct orchd_vm_config *vm,
		    struct orch_error *err)
{
	static const char *const keys[] = {
		"backend",	  "slots",     "workspace",  "autostart",	"limits",
		"profiles",	  "vcpus",     "memory_mib", "transport",	"kernel",
		"initrd",	  "cmdline",   "accel",	     "boot_timeout_ms", "uid_base",
		"egress",	  "isolation", "pool",	     "snapshot",	"boot_memory_mib",
		"unplug_idle_ms", NULL};
	char p[64], lp[80];
	int r, e;

	snprintf(p, sizeof(p), "vms.%s", name);
	snprintf(lp, sizeof(lp), "%s.limits", p);
	vm->name = strdup(name);
	if (!vm->name)
		return orch_err(err, -ENOMEM, "out of memory");
	vm->backend = c->backend;
	vm->slots = 4;
	vm->autostart = true;
	vm->vcpus = 2;
	vm->memory_mib = 2048;
	vm->boot_timeout_ms = 120000;
	vm->unplug_idle_ms = ORCHD_UNPLUG_IDLE_MS_DEFAULT;
	if (!o)
		return 0;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	e = (int)vm->backend;
	if ((r = cfg_enum(o, p, "backend", backend_names, &e, err)) < 0)
		return r;
	vm->backend = (enum orchd_backend_kind)e;
	e = 0;
	if ((r = cfg_enum(o, p, "transport", transport_names, &e, err)) < 0)
		return r;
	vm->transport = (enum orchd_transport)e;
	e = 0;
	if ((r = cfg_enum(o, p, "accel", accel_names, &e, err)) < 0)
		return r;
	vm->accel = (enum orchd_accel)e;
	if ((r = cfg_int(o, p, "slots", 1, 64, &vm->slots, err)) < 0 ||
	    (r = cfg_path(o, p, "workspace", false, &vm->workspace, err)) < 0 ||
	    (r = cfg_bool(o, p, "autostart", &vm->autostart, err)) < 0 ||
	    (r = parse_limits(json_object_get(o, "limits"), lp, &vm->limits, err)) < 0 ||
	    (r = cfg_strv(o, p, "profiles", MAX_PROFILES, ORCHD_NAME_MAX, &vm->profiles,
			  &vm->n_profiles, err)) < 0 ||
	    (r = cfg_int(o, p, "vcpus", 1, 256, &vm->vcpus, err)) < 0 ||
	    (r = cfg_int(o, p, "memory_mib", 64, 1048576, &vm->memory_mib, err)) < 0 ||
	    (r = cfg_path(o, p, "kernel", true, &vm->kernel, err)) < 0 ||
	    (r = cfg_path(o, p, "initrd", true, &vm->initrd, err)) < 0 ||
	    (r = cfg_string(o, p, "cmdline", 4096, true, &vm->cmdline, err)) < 0 ||
	    (r = cfg_int(o, p, "boot_timeout_ms", 1000, 3600000, &vm->boot_timeout_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "uid_base", 1000, 4294000000LL, &vm->uid_base, err)) < 0 ||
	    (r = cfg_strv(o, p, "egress", 64, ORCHD_NAME_MAX, &vm->egress, &vm->n_egress, err)) <
		    0 ||
	    (r = orchd_config_vm_pool(o, p, vm, err)) < 0 ||
	    (r = cfg_int(o, p, "boot_memory_mib", 0, 1048576, &vm->boot_memory_mib, err)) < 0 ||
	    (r = cfg_int(o, p, "unplug_idle_ms", 1000, 86400000, &vm->unplug_idle_ms, err)) < 0)
		return r;
	return check_boot_memory(o, p, vm, err);
}

static int parse_profile(const char *name, json_t *o, struct orchd_profile_config *pr,
			 struct orch_error *err)
{
	static const char *const keys[] = {"description", "command", "env",  "limits", "ro_paths",
					   "egress",	  "agent",   "repo", "ref",    NULL};
	char p[64], lp[80];
	json_t *env, *v;
	const char *k;
	size_t i = 0;
	int r;

	snprintf(p, sizeof(p), "profiles.%s", name);
	snprintf(lp, sizeof(lp), "%s.limits", p);
	pr->name = strdup(name);
	pr->description = strdup("");
	if (!pr->name || !pr->description)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	if ((r = cfg_string(o, p, "description", 256, false, &pr->description, err)) < 0 ||
	    (r = cfg_strv(o, p, "command", 256, 65536, &pr->command, &pr->n_command, err)) < 0 ||
	    (r = parse_limits(json_object_get(o, "limits"), lp, &pr->limits, err)) < 0 ||
	    (r = cfg_strv(o, p, "ro_paths", ORCH_MAX_RO_PATHS, ORCH_MAX_PATH_LEN, &pr->ro_paths,
			  &pr->n_ro_paths, err)) < 0 ||
	    (r = cfg_strv(o, p, "egress", 64, ORCHD_NAME_MAX, &pr->egress, &pr->n_egress, err)) < 0)
		return r;
	if ((r = cfg_string(o, p, "agent", ORCHD_NAME_MAX, true, &pr->agent, err)) < 0 ||
	    (r = cfg_string(o, p, "repo", 4096, true, &pr->repo, err)) < 0 ||
	    (r = cfg_string(o, p, "ref", 255, true, &pr->ref, err)) < 0)
		return r;
	if (pr->repo && !git_repo_valid(pr->repo))
		return orch_err(err, -EINVAL,
				"%s.repo: expected an absolute path or an https, http, ssh, git or "
				"file URL (no password in it)",
				p);
	if (pr->ref && !git_ref_valid(pr->ref))
		return orch_err(err, -EINVAL, "%s.ref: expected a branch, tag or commit", p);
	if (pr->agent && !orchd_name_valid(pr->agent))
		return orch_err(err, -EINVAL,
				"%s.agent: expected an agent name ([A-Za-z0-9_-]{1,32})", p);
	for (size_t j = 0; j < pr->n_ro_paths; j++)
		if (!orch_path_normalised(pr->ro_paths[j]))
			return orch_err(err, -EINVAL,
					"%s.ro_paths[%zu]: '%.128s' is not an absolute, normalised "
					"path other than / (no '.', '..', '//' or trailing '/')",
					p, j, pr->ro_paths[j]);
	env = json_object_get(o, "env");
	if (!env)
		return 0;
	if (!json_is_object(env) || json_object_size(env) > 256)
		return orch_err(err, -EINVAL, "%s.env: expected an object of at most 256 strings",
				p);
	pr->env = calloc(json_object_size(env) + 1, sizeof(char *));
	if (!pr->env)
		return orch_err(err, -ENOMEM, "out of memory");
	json_object_foreach(env, k, v)
	{
		if (!orch_env_name_valid(k))
			return orch_err(
				err, -EINVAL,
				"%s.env.%.64s: expected a name matching [A-Za-z_][A-Za-z0-9_]*", p,
				k);
		if (!json_is_string(v) || json_string_length(v) > 65536 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return orch_err(err, -EINVAL, "%s.env.%s: expected a string", p, k);
		if (asprintf(&pr->env[i], "%s=%s", k, json_string_value(v)) < 0) {
			pr->env[i] = NULL;
			return orch_err(err, -ENOMEM, "out of memory");
		}
		pr->n_env = ++i;
	}
	return 0;
}

static void set_defaults(struct orchd_config *c)
{
	c->backend = ORCHD_BACKEND_LOCAL;
	c->uid_base = 100000;
	c->scheduler = (struct orchd_scheduler_config){
		.retries = 1,
		.heartbeat_ms = 2000,
		.heartbeat_misses = 3,
		.max_queue = 100000,
		.lease_timeout_ms = 30000,
		.max_clients = 256,
		.keep_finished = 0,
		.max_output_mib = 1024,
	};
	c->vsock = (struct orchd_vsock_config){
		.control_port = ORCH_VSOCK_CONTROL_PORT,
		.llm_port = ORCH_VSOCK_LLM_PORT,
		.egress_port = ORCH_VSOCK_EGRESS_PORT,
	};
}

static int parse_named(json_t *root, const char *key, size_t max, struct orch_error *err)
{
	json_t *o = json_object_get(root, key);
	const char *name;
	json_t *v;

	if (!o)
		return 0;
	if (!json_is_object(o) || json_object_size(o) > max)
		return orch_err(err, -EINVAL, "%s: expected an object of at most %zu entries", key,
				max);
	json_object_foreach(o, name, v)
	{
		if (!orchd_name_valid(name))
			return orch_err(err, -EINVAL,
					"%s.%.64s: names must match [A-Za-z0-9_-]{1,32}", key,
					name);
	}
	return (int)json_object_size(o);
}

/* Each VM's uids: its own uid_base, or the top level's plus ORCHD_VM_UIDS per place in
 * the config. Two VMs sharing uids would share files and the per-uid process limit, so
 * ranges that overlap are refused. */
static int vm_uid_ranges(struct orchd_config *c, struct orch_error *err)
{
	for (size_t i = 0; i < c->n_vms; i++) {
		struct orchd_vm_config *vm = &c->vms[i];
		if (!vm->uid_base)
			vm->uid_base = c->uid_base + (int64_t)i * ORCHD_VM_UIDS;
		if (vm->uid_base + ORCHD_VM_UIDS >= 4294967295LL)
			return orch_err(
				err, -EINVAL,
				"vms.%s.uid_base: its uids (%lld..+%d) must stay below 2^32-1; "
				"lower uid_base",
				vm->name, (long long)vm->uid_base, ORCHD_VM_UIDS - 1);
	}
	for (size_t i = 0; i < c->n_vms; i++)
		for (size_t j = i + 1; j < c->n_vms; j++) {
			const struct orchd_vm_config *a = &c->vms[i], *b = &c->vms[j];
			if (a->uid_base < b->uid_base + ORCHD_VM_UIDS &&
			    b->uid_base < a->uid_base + ORCHD_VM_UIDS)
				return orch_err(
					err, -EINVAL,
					"vms.%s.uid_base: its uids %lld..%lld overlap those "
					"of VM %s (%lld..%lld); each VM needs %d of its own",
					b->name, (long long)b->uid_base,
					(long long)b->uid_base + ORCHD_VM_UIDS - 1, a->name,
					(long long)a->uid_base,
					(long long)a->uid_base + ORCHD_VM_UIDS - 1, ORCHD_VM_UIDS);
		}
	return 0;
}

static int cross_checks(struct orchd_config *c, struct orch_error *err)
{
	int64_t max_slots = 0;

	for (size_t i = 0; i < c->n_vms; i++) {
		struct orchd_vm_config *vm = &c->vms[i];
		/* names only: shipped profiles are not known here (orchd warns at start) */
		for (size_t j = 0; j < vm->n_profiles; j++)
			if (!orchd_name_valid(vm->profiles[j]))
				return orch_err(err, -EINVAL,
						"vms.%s.profiles[%zu]: expected a profile name "
						"([A-Za-z0-9_-]{1,32})",
						vm->name, j);
		if (vm->slots > max_slots)
			max_slots = vm->slots;
		if (!vm->workspace &&
		    asprintf(&vm->workspace, "%s/%s", c->workspace_root, vm->name) < 0) {
			vm->workspace = NULL;
			return orch_err(err, -ENOMEM, "out of memory");
		}
	}
	/* Jails see the agents: none of orchd's own files may be in there. */
	if (orch_paths_overlap(c->agents_dir, c->state_dir) ||
	    orch_paths_overlap(c->agents_dir, c->workspace_root) ||
	    orch_paths_overlap(c->agents_dir, c->socket))
		return orch_err(
			err, -EINVAL,
			"agents_dir: %s overlaps state_dir, workspace_root or socket; jails "
			"see the agents directory, so keep it apart",
			c->agents_dir);
	/* Task workspace images and repository caches: no guest or jail may reach them. */
	for (size_t i = 0; i < c->n_vms; i++)
		if (orch_paths_overlap(c->git->dir, c->vms[i].workspace))
			return orch_err(err, -EINVAL,
					"git.dir: %s overlaps the workspace of VM %s; keep it "
					"apart",
					c->git->dir, c->vms[i].name);
	if (orch_paths_overlap(c->git->dir, c->workspace_root) ||
	    orch_paths_overlap(c->git->dir, c->agents_dir))
		return orch_err(err, -EINVAL,
				"git.dir: %s overlaps workspace_root or agents_dir; keep it apart",
				c->git->dir);
	if (c->uid_base + max_slots >= 4294967295LL)
		return orch_err(err, -EINVAL, "uid_base: uid_base + slots must stay below 2^32-1");
	int ur = vm_uid_ranges(c, err);
	if (ur < 0)
		return ur;
	return 0;
}

/* A Debian package name (Debian policy 5.6.1): [a-z0-9][a-z0-9+.-]+. */
static bool deb_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > 128 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr("+.-", *s)))
			return false;
	return true;
}

/* image: {"packages": [...]}, what vm-images/build adds to the guest image. */
static int parse_image(json_t *o, struct orchd_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"packages", NULL};
	int r;
	if (!o)
		return 0;
	if ((r = cfg_object(o, "image", err)) < 0 ||
	    (r = cfg_check_keys(o, "image", keys, err)) < 0 ||
	    (r = cfg_strv(o, "image", "packages", ORCHD_MAX_IMAGE_PACKAGES, 128, &c->image_packages,
			  &c->n_image_packages, err)) < 0)
		return r;
	for (size_t i = 0; i < c->n_image_packages; i++)
		if (!deb_name_valid(c->image_packages[i]))
			return orch_err(
				err, -EINVAL,
				"image.packages[%zu]: '%.128s' is not a Debian package name "
				"([a-z0-9][a-z0-9+.-]+)",
				i, c->image_packages[i]);
	return 0;
}

static int parse_root(json_t *root, const char *state_dir_override, struct orchd_config *c,
		      struct orch_error *err)
{
	static const char *const keys[] = {
		"state_dir",  "socket",		"group",    "log_level", "backend",
		"supervisor", "workspace_root", "uid_base", "scheduler", "limits",
		"vms",	      "profiles",	"llm",	    "vsock",	 "egress",
		"agents_dir", "image",		"git",	    "store",	 "metrics",
		NULL};
	const char *name;
	json_t *v;
	int r, e, n;

	if ((r = cfg_object(root, "", err)) < 0 || (r = cfg_check_keys(root, "", keys, err)) < 0)
		return r;
	if ((r = cfg_path(root, "", "state_dir", false, &c->state_dir, err)) < 0 ||
	    (r = cfg_path(root, "", "socket", false, &c->socket, err)) < 0 ||
	    (r = cfg_string(root, "", "group", 64, true, &c->group, err)) < 0 ||
	    (r = cfg_path(root, "", "supervisor", true, &c->supervisor, err)) < 0 ||
	    (r = cfg_path(root, "", "workspace_root", false, &c->workspace_root, err)) < 0 ||
	    (r = cfg_path(root, "", "agents_dir", false, &c->agents_dir, err)) < 0 ||
	    (r = parse_image(json_object_get(root, "image"), c, err)) < 0 ||
	    (r = cfg_int(root, "", "uid_base", 1000, 4294000000LL, &c->uid_base, err)) < 0 ||
	    (r = parse_scheduler(json_object_get(root, "scheduler"), &c->scheduler, err)) < 0 ||
	    (r = parse_vsock(json_object_get(root, "vsock"), &c->vsock, err)) < 0 ||
	    (r = parse_limits(json_object_get(root, "limits"), "limits", &c->limits, err)) < 0)
		return r;
	if (c->group && !*c->group)
		return orch_err(err, -EINVAL, "group: expected a group name or null");
	e = 1;
	if ((r = cfg_enum(root, "", "log_level", level_names, &e, err)) < 0)
		return r;
	c->log_level = strdup(level_names[e]);
	e = 0;
	if ((r = cfg_enum(root, "", "backend", backend_names, &e, err)) < 0)
		return r;
	c->backend = (enum orchd_backend_kind)e;
	if (state_dir_override) {
		free(c->state_dir);
		c->state_dir = strdup(state_dir_override);
	}
	if (!c->state_dir)
		c->state_dir = strdup(ORCHD_DEFAULT_STATE_DIR);
	if (!c->socket)
		c->socket = strdup(ORCHD_DEFAULT_SOCKET);
	if (!c->workspace_root && c->state_dir &&
	    asprintf(&c->workspace_root, "%s/workspaces", c->state_dir) < 0)
		c->workspace_root = NULL;
	if (!c->agents_dir)
		c->agents_dir = strdup(ORCHD_DEFAULT_AGENTS_DIR);
	if (!c->state_dir || !c->socket || !c->workspace_root || !c->log_level || !c->agents_dir)
		return orch_err(err, -ENOMEM, "out of memory");
	if (!orch_path_normalised(c->agents_dir))
		return orch_err(err, -EINVAL,
				"agents_dir: '%.128s' is not an absolute, normalised path other "
				"than / (no '.', '..', '//' or trailing '/')",
				c->agents_dir);

	if ((n = parse_named(root, "profiles", MAX_PROFILES, err)) < 0)
		return n;
	c->profiles = calloc((size_t)n + 1, sizeof(*c->profiles));
	if (!c->profiles)
		return orch_err(err, -ENOMEM, "out of memory");
	json_object_foreach(json_object_get(root, "profiles"), name, v)
	{
		r = parse_profile(name, v, &c->profiles[c->n_profiles++], err);
		if (r < 0)
			return r;
	}

	if ((n = parse_named(root, "vms", MAX_VMS, err)) < 0)
		return n;
	if (json_object_get(root, "vms") && n == 0)
		return orch_err(err, -EINVAL, "vms: expected at least one VM");
	c->vms = calloc(n ? (size_t)n : 1, sizeof(*c->vms));
	if (!c->vms)
		return orch_err(err, -ENOMEM, "out of memory");
	json_object_foreach(json_object_get(root, "vms"), name, v)
	{
		r = parse_vm(name, v, c, &c->vms[c->n_vms++], err);
		if (r < 0)
			return r;
	}
	if (n == 0 && (r = parse_vm("local", NULL, c, &c->vms[c->n_vms++], err)) < 0)
		return r;

	v = json_object_get(root, "llm");
	if ((r = orchd_config_llm_parse(v, &c->llm, err)) < 0)
		return r;
	v = json_object_get(root, "egress");
	if (v && (r = egress_config_parse(v, &c->egress, err)) < 0)
		return r;
	if ((r = store_config_parse(json_object_get(root, "store"), &c->store, err)) < 0 ||
	    (r = metrics_config_parse(json_object_get(root, "metrics"), &c->metrics, err)) < 0 ||
	    (r = git_config_parse(json_object_get(root, "git"), c->state_dir, &c->git, err)) < 0)
		return r;
	for (size_t i = 0; i < c->n_vms; i++) {
		char p[64];
		snprintf(p, sizeof(p), "vms.%s.egress", c->vms[i].name);
		if ((r = egress_config_check_names(c->egress, c->vms[i].egress, p, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_profiles; i++) {
		char p[64];
		snprintf(p, sizeof(p), "profiles.%s.egress", c->profiles[i].name);
		if ((r = egress_config_check_names(c->egress, c->profiles[i].egress, p, err)) < 0)
			return r;
	}
	return cross_checks(c, err);
}

int orchd_config_parse(const char *text, size_t len, const char *state_dir_override,
		       struct orchd_config **ret, struct orch_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct orchd_config *c;
	json_error_t jerr;
	int r;

	if (text) {
		root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!root)
			return orch_err(err, -EINVAL, "line %d column %d: %s", jerr.line,
					jerr.column, jerr.text);
	} else {
		root = json_object();
		if (!root)
			return orch_err(err, -ENOMEM, "out of memory");
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	set_defaults(c);
	r = parse_root(root, state_dir_override, c, err);
	if (r < 0) {
		orchd_config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int orchd_config_load(const char *path, const char *state_dir_override, struct orchd_config **ret,
		      struct orch_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int r;

	if (!path)
		return orchd_config_parse(NULL, 0, state_dir_override, ret, err);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return orch_errno(err, -errno, "%s: cannot open", path);
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES)
		return orch_err(err, -EINVAL, "%s: expected a regular file of at most %d bytes",
				path, CONFIG_MAX_BYTES);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return orch_err(err, -ENOMEM, "out of memory");
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return orch_errno(err, -errno, "%s: cannot read", path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	r = orchd_config_parse(buf, len, state_dir_override, ret, err);
	if (r < 0)
		return orch_err_prefix(err, "%s", path);
	return 0;
}

static void free_vm(struct orchd_vm_config *vm)
{
	free(vm->name);
	free(vm->workspace);
	orch_strv_free(vm->profiles);
	orch_strv_free(vm->egress);
	free(vm->kernel);
	free(vm->initrd);
	free(vm->cmdline);
}

void orchd_config_free(struct orchd_config *c)
{
	if (!c)
		return;
	free(c->state_dir);
	free(c->socket);
	free(c->group);
	free(c->log_level);
	free(c->supervisor);
	free(c->workspace_root);
	free(c->agents_dir);
	orch_strv_free(c->image_packages);
	for (size_t i = 0; i < c->n_vms; i++)
		free_vm(&c->vms[i]);
	free(c->vms);
	for (size_t i = 0; i < c->n_profiles; i++) {
		free(c->profiles[i].name);
		free(c->profiles[i].description);
		orch_strv_free(c->profiles[i].command);
		orch_strv_free(c->profiles[i].env);
		orch_strv_free(c->profiles[i].ro_paths);
		orch_strv_free(c->profiles[i].egress);
		free(c->profiles[i].agent);
		free(c->profiles[i].repo);
		free(c->profiles[i].ref);
	}
	free(c->profiles);
	llm_config_done(&c->llm);
	egress_config_free(c->egress);
	git_config_free(c->git);
	store_config_free(c->store);
	metrics_config_free(c->metrics);
	free(c);
}

const struct orchd_vm_config *orchd_config_vm(const struct orchd_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_vms; i++)
		if (strcmp(c->vms[i].name, name) == 0)
			return &c->vms[i];
	return NULL;
}

const struct orchd_profile_config *orchd_config_profile(const struct orchd_config *c,
							const char *name)
{
	for (size_t i = 0; i < c->n_profiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}
