/* SPDX-License-Identifier: Apache-2.0 */
/* orchd configuration: defaults, the example file, and strict errors naming the key. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "config.h"

static int parse(const char *text, struct orchd_config **c, struct orch_error *err)
{
	return orchd_config_parse(text, strlen(text), NULL, c, err);
}

START_TEST(test_defaults)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};

	ck_assert_int_eq(orchd_config_load(NULL, NULL, &c, &err), 0);
	ck_assert_str_eq(c->state_dir, "/var/lib/orch");
	ck_assert_str_eq(c->socket, "/run/orch/orch.sock");
	ck_assert_str_eq(c->workspace_root, "/var/lib/orch/workspaces");
	ck_assert_ptr_null(c->group);
	ck_assert_int_eq(c->n_vms, 1);
	ck_assert_str_eq(c->vms[0].name, "local");
	ck_assert_int_eq(c->vms[0].backend, ORCHD_BACKEND_LOCAL);
	ck_assert_int_eq(c->vms[0].slots, 4);
	ck_assert_str_eq(c->vms[0].workspace, "/var/lib/orch/workspaces/local");
	ck_assert_int_eq(c->scheduler.retries, 1);
	ck_assert_int_eq(c->uid_base, 100000);
	ck_assert_str_eq(c->agents_dir, ORCHD_DEFAULT_AGENTS_DIR);
	ck_assert_uint_eq(c->n_image_packages, 0);
	ck_assert_int_eq(c->vsock.control_port, 700);
	ck_assert_int_eq(c->vsock.llm_port, 701);
	ck_assert_int_eq(c->vsock.egress_port, 702);
	ck_assert_ptr_null(c->egress);
	orchd_config_free(c);

	ck_assert_int_eq(orchd_config_load(NULL, "/tmp/x", &c, &err), 0);
	ck_assert_str_eq(c->workspace_root, "/tmp/x/workspaces");
	orchd_config_free(c);
}
END_TEST

START_TEST(test_example_file)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	char path[4096];
	const struct orchd_vm_config *vm;

	snprintf(path, sizeof(path), "%s/host/orchd.example.json", getenv("ORCH_SOURCEDIR"));
	ck_assert_msg(orchd_config_load(path, NULL, &c, &err) == 0, "%s", err.msg);
	vm = orchd_config_vm(c, "dev");
	ck_assert_ptr_nonnull(vm);
	ck_assert_int_eq(vm->backend, ORCHD_BACKEND_LIBVIRT);
	ck_assert_int_eq(vm->memory_mib, 8192);
	ck_assert_int_eq(vm->limits.memory_mib, 2048);
	ck_assert_int_eq(vm->n_profiles, 2);
	vm = orchd_config_vm(c, "scratch");
	ck_assert_int_eq(vm->backend, ORCHD_BACKEND_LOCAL);
	ck_assert_int_eq(vm->slots, 2);
	ck_assert_ptr_nonnull(orchd_config_profile(c, "claude"));
	ck_assert_int_eq(orchd_config_profile(c, "claude")->n_env, 1);
	ck_assert_str_eq(orchd_config_profile(c, "claude")->env[0], "DISABLE_AUTOUPDATER=1");
	ck_assert_str_eq(orchd_config_profile(c, "claude")->agent, "claude");
	ck_assert_str_eq(c->agents_dir, "/opt/orch/agents");
	ck_assert_uint_eq(c->n_image_packages, 2);
	ck_assert_str_eq(c->image_packages[0], "jq");
	ck_assert_int_eq(c->llm.n_upstreams, 3);
	ck_assert_int_eq(c->llm.policy.n_strip, 3);
	ck_assert_int_eq(c->llm.agent_inflight, 16);
	ck_assert_int_eq(c->llm.vm_inflight, 64);
	orchd_config_free(c);
}
END_TEST

static const struct {
	const char *text;
	const char *msg; /* expected prefix of the error */
} bad[] = {
	{"[]", "(top level): expected an object"},
	{"{\"a\":1,\"a\":2}", "line 1"},
	{"{\"statedir\":\"/x\"}", "statedir: unknown key"},
	{"{\"state_dir\":\"relative\"}", "state_dir: expected an absolute path"},
	{"{\"log_level\":\"loud\"}", "log_level: expected one of"},
	{"{\"uid_base\":5}", "uid_base: expected an integer 1000..4294000000"},
	{"{\"scheduler\":{\"retires\":1}}", "scheduler.retires: unknown key"},
	{"{\"scheduler\":{\"retries\":11}}", "scheduler.retries: expected an integer 0..10"},
	{"{\"vms\":{}}", "vms: expected at least one VM"},
	{"{\"vms\":{\"bad name\":{}}}", "vms.bad name: names must match"},
	{"{\"vms\":{\"dev\":{\"memory_mib\":5}}}",
	 "vms.dev.memory_mib: expected an integer 64..1048576"},
	{"{\"vms\":{\"dev\":{\"memory_mib\":\"5\"}}}", "vms.dev.memory_mib: expected an integer"},
	{"{\"vms\":{\"dev\":{\"slots\":65}}}", "vms.dev.slots: expected an integer 1..64"},
	{"{\"vms\":{\"dev\":{\"backend\":\"xen\"}}}",
	 "vms.dev.backend: expected one of \"local\", \"libvirt\""},
	{"{\"vms\":{\"dev\":{\"transport\":\"tcp\"}}}", "vms.dev.transport: expected one of"},
	{"{\"vms\":{\"dev\":{\"limits\":{\"pids\":-1}}}}",
	 "vms.dev.limits.pids: expected an integer"},
	{"{\"vms\":{\"dev\":{\"limits\":{\"memory\":1}}}}", "vms.dev.limits.memory: unknown key"},
	{"{\"vms\":{\"dev\":{\"profiles\":[\"no pe\"]}}}",
	 "vms.dev.profiles[0]: expected a profile name"},
	{"{\"vms\":{\"dev\":{\"autostart\":1}}}", "vms.dev.autostart: expected true or false"},
	{"{\"profiles\":{\"p\":{\"env\":{\"1X\":\"v\"}}}}", "profiles.p.env.1X: expected a name"},
	{"{\"profiles\":{\"p\":{\"command\":[1]}}}", "profiles.p.command[0]: expected a string"},
	{"{\"llm\":{\"upstreams\":{\"a\":{\"kind\":\"anthropic\"}}}}",
	 "llm.upstreams.a.key_file: required"},
	{"{\"llm\":{\"upstreams\":{\"a\":{\"kind\":\"x\",\"key_file\":\"/k\"}}}}",
	 "llm.upstreams.a.kind: expected one of"},
	{"{\"llm\":{\"upstreams\":{\"a\":{\"kind\":\"openai\",\"key_file\":\"/"
	 "k\",\"base_url\":\"ftp://x\"}}}}",
	 "llm.upstreams.a.base_url: expected an http"},
	{"{\"llm\":{\"models\":{\"m\":{\"upstream\":\"a\",\"input_usd_per_mtok\":1,\"output_usd_"
	 "per_mtok\":1}}}}",
	 "llm.models.m.upstream: no upstream named"},
	{"{\"llm\":{\"models\":{\"m\":{\"upstream\":\"a\"}}}}",
	 "llm.models.m.input_usd_per_mtok: required"},
	{"{\"llm\":{\"budgets\":{\"agent_usd\":-1}}}", "llm.budgets.agent_usd: expected a number"},
	{"{\"llm\":{\"rate_limits\":{\"rpm\":1}}}", "llm.rate_limits.rpm: unknown key"},
	{"{\"llm\":{\"rate_limits\":{\"vm_inflight\":257}}}",
	 "llm.rate_limits.vm_inflight: expected an integer 0..256"},
	{"{\"llm\":{\"rate_limits\":{\"agent_inflight\":-1}}}",
	 "llm.rate_limits.agent_inflight: expected an integer 0..256"},
	{"{\"llm\":{\"max_tokens_cap\":0}}", "llm.max_tokens_cap: expected an integer 1..1000000"},
	{"{\"llm\":{\"allow_remote_input\":\"yes\"}}", "llm.allow_remote_input"},
	{"{\"llm\":{\"anthropic_betas\":[1]}}", "llm.anthropic_betas"},
	{"{\"group\":\"\"}", "group: expected a group name or null"},
	{"{\"agents_dir\":\"opt\"}", "agents_dir: expected an absolute path"},
	{"{\"agents_dir\":\"/opt/./a\"}", "agents_dir: '/opt/./a' is not an absolute, normalised"},
	{"{\"agents_dir\":\"/var/lib/orch/agents\"}", "agents_dir: /var/lib/orch/agents overlaps"},
	{"{\"agents_dir\":\"/var\"}", "agents_dir: /var overlaps"},
	{"{\"image\":{\"pkgs\":[]}}", "image.pkgs: unknown key"},
	{"{\"image\":{\"packages\":[\"Bad\"]}}", "image.packages[0]: 'Bad' is not a Debian"},
	{"{\"image\":{\"packages\":[\"a;b\"]}}", "image.packages[0]: 'a;b' is not a Debian"},
	{"{\"image\":{\"packages\":\"jq\"}}", "image.packages: expected an array"},
	{"{\"profiles\":{\"p\":{\"agent\":\"a/b\"}}}", "profiles.p.agent: expected an agent name"},
	{"{\"uid_base\":200000,\"vms\":{\"a\":{},\"b\":{\"uid_base\":200100}}}",
	 "vms.b.uid_base: its uids 200100..200355 overlap those of VM a (200000..200255)"},
	{"{\"vms\":{\"a\":{\"uid_base\":300000},\"b\":{\"uid_base\":299900}}}",
	 "vms.b.uid_base: its uids 299900..300155 overlap those of VM a"},
	{"{\"vms\":{\"a\":{\"uid_base\":4294000001}}}", "vms.a.uid_base: expected an integer"},
	{"{\"vsock\":{\"control_port\":5000}}", "vsock.control_port: expected an integer 1..1023"},
	{"{\"vsock\":{\"llm_port\":0}}", "vsock.llm_port: expected an integer 1..1023"},
	{"{\"vsock\":{\"control_port\":701}}", "vsock.llm_port: must differ from"},
	{"{\"vsock\":{\"egress_port\":700}}", "vsock.egress_port: must differ"},
	{"{\"vsock\":{\"egress_port\":1024}}", "vsock.egress_port: expected an integer 1..1023"},
	{"{\"egress\":{\"sets\":{\"a\":[\"x\"]}}}", "egress.sets.a[0]"},
	{"{\"vms\":{\"a\":{\"egress\":[\"npm\"]}}}", "vms.a.egress: no egress set"},
	{"{\"vms\":{\"a\":{\"isolation\":\"none\"}}}", "vms.a.isolation: expected one of"},
	{"{\"vms\":{\"a\":{\"isolation\":\"vm-per-task\",\"slots\":2}}}",
	 "vms.a.slots: a vm-per-task VM runs one task"},
	{"{\"vms\":{\"a\":{\"isolation\":\"vm-per-task\",\"pool\":{\"ready\":5,\"max\":4}}}}",
	 "vms.a.pool.max: 4 is below pool.ready"},
	{"{\"vms\":{\"a\":{\"isolation\":\"vm-per-task\",\"pool\":{\"ready\":65}}}}",
	 "vms.a.pool.ready: expected an integer 0..64"},
	{"{\"vms\":{\"a\":{\"pool\":{\"ready\":0}}}}",
	 "vms.a.pool.ready: expected an integer 1..64"},
	{"{\"vms\":{\"a\":{\"pool\":{\"ready\":2,\"max\":3}}}}",
	 "vms.a.pool.max: only a vm-per-task pool grows"},
	{"{\"vms\":{\"a\":{\"pool\":{\"ready\":1,\"keep_workspaces\":3}}}}",
	 "vms.a.pool.keep_workspaces: only a vm-per-task pool prunes"},
	{"{\"vms\":{\"a\":{\"isolation\":\"vm-per-task\",\"pool\":{\"keep_workspaces\":-1}}}}",
	 "vms.a.pool.keep_workspaces: expected an integer 0..1000000"},
	{"{\"vms\":{\"a\":{\"pool\":{\"size\":2}}}}", "vms.a.pool.size: unknown key"},
	{"{\"vms\":{\"a\":{\"pool\":[]}}}", "vms.a.pool: expected an object"},
	{"{\"vms\":{\"a\":{\"backend\":\"local\",\"pool\":{},\"snapshot\":true}}}",
	 "vms.a.snapshot: only the libvirt backend"},
	{"{\"vms\":{\"a\":{\"backend\":\"libvirt\",\"snapshot\":true}}}",
	 "vms.a.snapshot: snapshots serve pools"},
	{"{\"profiles\":{\"p\":{\"command\":[\"x\"],\"egress\":[\"npm\"]}}}",
	 "profiles.p.egress: no egress set"},
	{"{\"vms\":{\"a\":{\"unplug_idle_ms\":5000}}}",
	 "vms.a.unplug_idle_ms: only memory hot-plug (boot_memory_mib) unplugs"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":256,\"unplug_idle_ms\":999}}}",
	 "vms.a.unplug_idle_ms: expected an integer 1000..86400000"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":-1}}}",
	 "vms.a.boot_memory_mib: expected an integer 0..1048576"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":63,\"memory_mib\":191}}}",
	 "vms.a.boot_memory_mib: memory hot-plug needs memory_mib >= 192"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":32}}}",
	 "vms.a.boot_memory_mib: expected 0 (no hot-plug) or 64..1920 with memory_mib - "
	 "boot_memory_mib a multiple of 128 (the guest adds memory in blocks of that size), "
	 "e.g. 256"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":2048}}}",
	 "vms.a.boot_memory_mib: expected 0 (no hot-plug) or 64..1920"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":200}}}",
	 "vms.a.boot_memory_mib: expected 0 (no hot-plug) or 64..1920"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":100,\"memory_mib\":500}}}",
	 "vms.a.boot_memory_mib: expected 0 (no hot-plug) or 64..372 with memory_mib - "
	 "boot_memory_mib a multiple of 128 (the guest adds memory in blocks of that size), "
	 "e.g. 372"},
	{"{\"vms\":{\"a\":{\"boot_memory_mib\":100,\"memory_mib\":300}}}",
	 "vms.a.boot_memory_mib: expected 0 (no hot-plug) or 64..172 with memory_mib - "
	 "boot_memory_mib a multiple of 128 (the guest adds memory in blocks of that size), "
	 "e.g. 172"},
};

START_TEST(test_bad)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};

	ck_assert_int_lt(parse(bad[_i].text, &c, &err), 0);
	ck_assert_ptr_null(c);
	ck_assert_msg(strncmp(err.msg, bad[_i].msg, strlen(bad[_i].msg)) == 0,
		      "for %s: got \"%s\", expected \"%s...\"", bad[_i].text, err.msg, bad[_i].msg);
}
END_TEST

/* Every VM has uids of its own: derived from the top level's uid_base by its place in
 * the config, or its own. */
START_TEST(test_vm_uids)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};

	ck_assert_int_eq(parse("{\"uid_base\":100000,\"vms\":{\"a\":{},\"b\":{},"
			       "\"c\":{\"uid_base\":900000}}}",
			       &c, &err),
			 0);
	ck_assert_int_eq(orchd_config_vm(c, "a")->uid_base, 100000);
	ck_assert_int_eq(orchd_config_vm(c, "b")->uid_base, 100000 + ORCHD_VM_UIDS);
	ck_assert_int_eq(orchd_config_vm(c, "c")->uid_base, 900000);
	orchd_config_free(c);
}
END_TEST

/* Pools: vm-per-task is one slot, a warm pool of 1 and at most 4 by default; a shared
 * pool is pool.ready VMs; snapshots on libvirt pools. */
START_TEST(test_pools)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	const struct orchd_vm_config *v;

	ck_assert_msg(parse("{\"backend\":\"libvirt\",\"vms\":{\"a\":{},"
			    "\"t\":{\"isolation\":\"vm-per-task\"},"
			    "\"u\":{\"isolation\":\"vm-per-task\",\"slots\":1,\"snapshot\":true,"
			    "\"pool\":{\"ready\":6}},"
			    "\"w\":{\"isolation\":\"vm-per-task\",\"pool\":{\"ready\":0,\"max\":2,"
			    "\"keep_workspaces\":0}},"
			    "\"s\":{\"pool\":{\"ready\":3},\"slots\":2}}}",
			    &c, &err) == 0,
		      "%s", err.msg);
	v = orchd_config_vm(c, "a");
	ck_assert(!v->pooled);
	ck_assert_int_eq(v->isolation, ORCHD_ISOLATION_SHARED);
	ck_assert(!v->snapshot);
	v = orchd_config_vm(c, "t");
	ck_assert(v->pooled);
	ck_assert_int_eq(v->isolation, ORCHD_ISOLATION_VM_PER_TASK);
	ck_assert_int_eq(v->slots, 1);
	ck_assert_int_eq(v->pool_ready, 1);
	ck_assert_int_eq(v->pool_max, 4);
	ck_assert_int_eq(v->pool_keep_workspaces, ORCHD_POOL_KEEP_WORKSPACES_DEFAULT);
	v = orchd_config_vm(c, "u");
	ck_assert_int_eq(v->pool_ready, 6);
	ck_assert_int_eq(v->pool_max, 6);
	ck_assert(v->snapshot);
	v = orchd_config_vm(c, "w");
	ck_assert_int_eq(v->pool_ready, 0);
	ck_assert_int_eq(v->pool_max, 2);
	ck_assert_int_eq(v->pool_keep_workspaces, 0);
	v = orchd_config_vm(c, "s");
	ck_assert(v->pooled);
	ck_assert_int_eq(v->isolation, ORCHD_ISOLATION_SHARED);
	ck_assert_int_eq(v->pool_ready, 3);
	ck_assert_int_eq(v->slots, 2);
	ck_assert_str_eq(orchd_isolation_name(v->isolation), "shared");
	orchd_config_free(c);
}
END_TEST

/* Memory hot-plug: off by default; a boot size that leaves whole 128 MiB blocks. */
START_TEST(test_boot_memory)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};

	ck_assert_msg(parse("{\"backend\":\"libvirt\",\"vms\":{\"a\":{},"
			    "\"b\":{\"boot_memory_mib\":256},"
			    "\"c\":{\"memory_mib\":512,\"boot_memory_mib\":128,"
			    "\"unplug_idle_ms\":5000},"
			    "\"d\":{\"memory_mib\":192,\"boot_memory_mib\":64},"
			    "\"e\":{\"isolation\":\"vm-per-task\",\"boot_memory_mib\":0},"
			    "\"f\":{\"isolation\":\"vm-per-task\",\"snapshot\":true,"
			    "\"boot_memory_mib\":256}}}",
			    &c, &err) == 0,
		      "%s", err.msg);
	ck_assert_int_eq(orchd_config_vm(c, "a")->boot_memory_mib, 0);
	ck_assert_int_eq(orchd_config_vm(c, "b")->boot_memory_mib, 256);
	ck_assert_int_eq(orchd_config_vm(c, "b")->memory_mib, 2048);
	ck_assert_int_eq(orchd_config_vm(c, "c")->boot_memory_mib, 128);
	ck_assert_int_eq(orchd_config_vm(c, "d")->boot_memory_mib, 64);
	ck_assert_int_eq(orchd_config_vm(c, "e")->boot_memory_mib, 0);
	ck_assert_int_eq(orchd_config_vm(c, "f")->boot_memory_mib, 256);
	ck_assert(orchd_config_vm(c, "f")->snapshot);
	ck_assert_int_eq(orchd_config_vm(c, "b")->unplug_idle_ms, ORCHD_UNPLUG_IDLE_MS_DEFAULT);
	ck_assert_int_eq(orchd_config_vm(c, "c")->unplug_idle_ms, 5000);
	orchd_config_free(c);
}
END_TEST

START_TEST(test_nulls_and_overrides)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};

	ck_assert_int_eq(
		parse("{\"group\":null,\"supervisor\":null,\"backend\":\"libvirt\","
		      "\"vms\":{\"a\":{},\"b\":{\"backend\":\"local\",\"workspace\":\"/w\"}}}",
		      &c, &err),
		0);
	ck_assert_int_eq(orchd_config_vm(c, "a")->backend, ORCHD_BACKEND_LIBVIRT);
	ck_assert_int_eq(orchd_config_vm(c, "b")->backend, ORCHD_BACKEND_LOCAL);
	ck_assert_str_eq(orchd_config_vm(c, "b")->workspace, "/w");
	orchd_config_free(c);
	ck_assert_int_eq(parse("{\"vsock\":{\"control_port\":800,\"llm_port\":1023}}", &c, &err),
			 0);
	ck_assert_int_eq(c->vsock.control_port, 800);
	ck_assert_int_eq(c->vsock.llm_port, 1023);
	orchd_config_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("host_config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_example_file);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_nulls_and_overrides);
	tcase_add_test(tc, test_vm_uids);
	tcase_add_test(tc, test_pools);
	tcase_add_test(tc, test_boot_memory);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
