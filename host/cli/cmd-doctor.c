/* SPDX-License-Identifier: Apache-2.0 */
/* orch doctor: checks this host for what orch needs (host/doctor.h). Exit 0 when nothing
 * required is missing, 1 otherwise. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-ops.h"
#include "doctor.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch doctor [--json] [--config FILE] [--image DIR] [--no-boot]\n"
		   "                   [--kvm-timeout MS]\n"
		   "Checks the host: KVM (a real test boot), /dev/vhost-vsock, libvirtd, "
		   "virtiofsd,\n"
		   "QEMU, bubblewrap, user namespaces, cgroup v2 controllers, the guest "
		   "image, API key\n"
		   "file permissions, the state directory. Each item is ok, degraded or "
		   "missing, with\n"
		   "the fix. FILE (default $ORCH_CONFIG) decides what is required (libvirt "
		   "pieces only\n"
		   "for libvirt VMs). Exit code 1 when a required item is missing.\n");
}

static void progress(const char *what, void *data)
{
	if (isatty(2))
		fprintf(stderr, "checking %s...\r", what);
	else
		fprintf(stderr, "checking %s\n", what);
}

static int run(struct cli *c, int argc, char **argv)
{
	const char *config = getenv("ORCH_CONFIG");
	struct orch_doctor_opts o = {.progress = progress};
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"config", required_argument, NULL, 'c'},
		{"image", required_argument, NULL, 'i'},
		{"no-boot", no_argument, NULL, 'n'},
		{"kvm-timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int opt, r;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "jc:i:nt:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'i':
			o.image_dir = optarg;
			break;
		case 'n':
			o.no_boot = true;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 100 || v > 600000) {
				fprintf(stderr, "orch doctor: --kvm-timeout: 100..600000 ms\n");
				return CLI_EXIT_USAGE;
			}
			o.kvm_timeout_ms = (unsigned)v;
			break;
		}
		default:
			r = cli_common_opt(c, opt, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "orch doctor: unexpected argument '%s'\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	struct orchd_config *cfg;
	r = cli_load_config("doctor", config, &cfg);
	if (r != CLI_GO_ON)
		return r;
	o.cfg = cfg;
	if (c->json)
		o.progress = NULL;
	struct orch_doctor_report rep;
	orch_doctor_run(&o, &rep);
	orchd_config_free(cfg);
	if (!c->json && isatty(2))
		fprintf(stderr, "\033[K");
	if (c->json) {
		json_t *j = orch_doctor_report_json(&rep);
		cli_print_json(j);
		json_decref(j);
		return rep.failed ? CLI_EXIT_ERROR : 0;
	}
	for (size_t i = 0; i < rep.n; i++) {
		const struct orch_doctor_item *it = &rep.items[i];
		printf("%-9s %-24s %s%s\n", orch_doctor_status_name(it->status), it->title,
		       it->detail, it->required ? "" : "");
		if (it->fix[0])
			printf("%-9s %-24s fix: %s\n", "", "", it->fix);
	}
	printf("\n%s\n", rep.failed ? "orch cannot run here: a required item is missing (see "
				      "above)."
				    : "orch can run here (degraded items limit isolation, speed or "
				      "limits).");
	return rep.failed ? CLI_EXIT_ERROR : 0;
}

const struct cli_cmd cmd_doctor = {
	.name = "doctor",
	.summary = "check this host for what orch needs, with fixes",
	.run = run,
};
