/* SPDX-License-Identifier: Apache-2.0 */
/* orch-virtiofsd-ro: virtiofsd serving its shared directory read-only, for the agents
 * share of every VM (docs/VM.md). libvirt 9 refuses <readonly/> for virtio-fs and the C
 * virtiofsd has no read-only option, so the guest's kernel would be the only thing
 * keeping the host's agent files read-only. libvirt runs this program as the
 * filesystem's <binary>, with virtiofsd's own arguments; it makes a mount namespace of
 * its own in which the source directory (-o source=DIR) is a read-only, nosuid, nodev
 * bind mount of itself, checks that it is, and execs orch-virtiofsd there (virtiofsd.h;
 * a virtiofsd of its own when that is missing). Every write the guest asks for then
 * fails on the host with EROFS. virtiofsd's own sandbox (its mount namespace and
 * pivot_root into DIR) keeps the read-only mount: a bind copies it. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *const virtiofsd_paths[] = {
	"/usr/lib/qemu/virtiofsd", /* Debian 12 (C virtiofsd); NixOS links it there too */
	"/usr/libexec/virtiofsd",  /* the Rust virtiofsd of newer distributions */
	"/usr/lib/virtiofsd",
};

/* The DIR of "source=DIR" in a comma-separated -o option list (copied into buf). */
static int source_in(const char *opts, char *buf, size_t size)
{
	for (const char *p = opts; p && *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n > 7 && strncmp(p, "source=", 7) == 0) {
			if (n - 7 >= size)
				return -ENAMETOOLONG;
			memcpy(buf, p + 7, n - 7);
			buf[n - 7] = 0;
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* The shared directory: -o source=DIR (C virtiofsd, as libvirt passes it), or
 * --shared-dir=DIR (the Rust virtiofsd). */
static int find_source(int argc, char **argv, char *buf, size_t size)
{
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--shared-dir=", 13) == 0) {
			if (strlen(argv[i] + 13) >= size)
				return -ENAMETOOLONG;
			snprintf(buf, size, "%s", argv[i] + 13);
			return 0;
		}
		const char *opts = NULL;
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			opts = argv[++i];
		else if (strncmp(argv[i], "-o", 2) == 0)
			opts = argv[i] + 2;
		if (opts && source_in(opts, buf, size) == 0)
			return 0;
	}
	return -ENOENT;
}

/* What runs after the namespace is set up: orch-virtiofsd beside this program (it adds
 * the options that drop virtiofsd's mknod, setfcap and fsetid capabilities), else a
 * virtiofsd of its own. */
static const char *next_program(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	if (n > 0) {
		buf[n] = 0;
		char *slash = strrchr(buf, '/');
		if (slash && (size_t)(slash - buf) + sizeof("/orch-virtiofsd") <= size) {
			strcpy(slash, "/orch-virtiofsd");
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
	for (size_t i = 0; i < sizeof(virtiofsd_paths) / sizeof(virtiofsd_paths[0]); i++)
		if (access(virtiofsd_paths[i], X_OK) == 0)
			return virtiofsd_paths[i];
	return NULL;
}

int main(int argc, char **argv)
{
	char src[4096], self[4096];
	const char *virtiofsd = next_program(self, sizeof(self));
	if (!virtiofsd) {
		fprintf(stderr, "orch-virtiofsd-ro: neither orch-virtiofsd beside it nor a "
				"virtiofsd (in /usr/lib/qemu, /usr/libexec, /usr/lib) found\n");
		return 1;
	}
	argv[0] = (char *)virtiofsd;
	/* Capability and help queries share nothing: virtiofsd answers them itself. */
	if (find_source(argc, argv, src, sizeof(src)) < 0) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "--print-capabilities") == 0 ||
			    strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
			    strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
				execv(virtiofsd, argv);
				fprintf(stderr, "orch-virtiofsd-ro: cannot run %s: %s\n", virtiofsd,
					strerror(errno));
				return 1;
			}
		fprintf(stderr, "orch-virtiofsd-ro: no -o source=DIR among the arguments\n");
		return 1;
	}
	struct statvfs sv;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(src, src, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, src, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
		    0) {
		fprintf(stderr, "orch-virtiofsd-ro: cannot make %s read-only: %s\n", src,
			strerror(errno));
		return 1;
	}
	if (statvfs(src, &sv) < 0 || !(sv.f_flag & ST_RDONLY)) {
		fprintf(stderr, "orch-virtiofsd-ro: %s is still writable; refusing to share it\n",
			src);
		return 1;
	}
	execv(virtiofsd, argv);
	fprintf(stderr, "orch-virtiofsd-ro: cannot run %s: %s\n", virtiofsd, strerror(errno));
	return 1;
}
