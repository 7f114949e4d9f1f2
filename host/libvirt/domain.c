/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "domain.h"

const char *lv_last_error(void)
{
	const char *m = virGetLastErrorMessage();
	return m && m[0] ? m : "unknown libvirt error";
}

/* libvirt prints every error to stderr by default; orch reports them itself. */
static void quiet_errors(void *data, virErrorPtr e)
{
}

int lv_connect(const char *uri, virConnectPtr *ret, struct orch_error *err)
{
	virSetErrorFunc(NULL, quiet_errors);
	if (!uri)
		uri = LV_URI_DEFAULT;
	virConnectPtr c = virConnectOpen(uri);
	if (!c)
		return orch_err(err, -ECONNREFUSED,
				"cannot connect to libvirt at %s: %s (is libvirtd running? "
				"scripts/libvirtd-up starts it)",
				uri, lv_last_error());
	*ret = c;
	return 0;
}

int lv_domain_start(virConnectPtr conn, const struct lv_domain_config *c, bool autodestroy,
		    virDomainPtr *ret, struct orch_error *err)
{
	int r;
	_cleanup_free_ char *xml = NULL;
	if ((r = lv_domain_xml(c, &xml, err)) < 0)
		return orch_err_prefix(err, "vm %s", c->name ? c->name : "?");
	return lv_domain_create_xml(conn, c->name, xml, autodestroy, ret, err);
}

int lv_domain_create_xml(virConnectPtr conn, const char *name, const char *xml, bool autodestroy,
			 virDomainPtr *ret, struct orch_error *err)
{
	virDomainPtr old = virDomainLookupByName(conn, name);
	if (old) {
		int active = virDomainIsActive(old);
		virDomainFree(old);
		if (active == 1)
			return orch_err(err, -EEXIST,
					"a libvirt domain named %s is already running (virsh "
					"destroy %s)",
					name, name);
	}
	virDomainPtr dom =
		virDomainCreateXML(conn, xml, autodestroy ? VIR_DOMAIN_START_AUTODESTROY : 0);
	if (!dom) {
		const char *m = lv_last_error();
		/* Only a domain with a vsock device names vhost-vsock. */
		return orch_err(err, -EIO, "cannot start vm %s: %s%s", name, m,
				strstr(m, "vhost-vsock")
					? " (load vhost_vsock or set transport to virtio-serial)"
					: "");
	}
	*ret = dom;
	return 0;
}

int lv_channel_state_xml(const char *xml, const char *name)
{
	char want[160];
	if (!xml || (size_t)snprintf(want, sizeof(want), "<target type='virtio' name='%s'", name) >=
			    sizeof(want))
		return -1;
	const char *p = strstr(xml, want);
	if (!p)
		return -1;
	p += strlen(want);
	const char *end = strchr(p, '>');
	const char *st = strstr(p, " state='");
	if (!end || !st || st > end)
		return -1;
	st += strlen(" state='");
	if (!strncmp(st, "connected'", 10))
		return 1;
	if (!strncmp(st, "disconnected'", 13))
		return 0;
	return -1;
}

int lv_domain_channel_state(virDomainPtr dom, const char *name)
{
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
	return lv_channel_state_xml(xml, name);
}

/* The number of <NAME unit='KiB'>N</NAME> within [p, end), or -1. */
static int64_t kib_elem(const char *p, const char *end, const char *name, const char **ret_num,
			const char **ret_num_end)
{
	char open[64];
	snprintf(open, sizeof(open), "<%s unit='KiB'>", name);
	const char *e = strstr(p, open);
	if (!e || e >= end)
		return -1;
	e += strlen(open);
	char *num_end;
	errno = 0;
	unsigned long long v = strtoull(e, &num_end, 10);
	if (errno || num_end == e || num_end >= end || *num_end != '<' || v > INT64_MAX)
		return -1;
	if (ret_num)
		*ret_num = e;
	if (ret_num_end)
		*ret_num_end = num_end;
	return (int64_t)v;
}

int lv_virtio_mem_xml(const char *xml, uint64_t requested_kib, char **ret_dev,
		      uint64_t *ret_current_kib, uint64_t *ret_requested_kib)
{
	static const char start[] = "<memory model='virtio-mem'";
	const char *p = xml ? strstr(xml, start) : NULL;
	const char *end = p ? strstr(p, "</memory>") : NULL;
	if (!end)
		return -ENODEV;
	end += strlen("</memory>");
	const char *num, *num_end;
	int64_t req = kib_elem(p, end, "requested", &num, &num_end);
	int64_t cur = kib_elem(p, end, "current", NULL, NULL);
	if (req < 0)
		return -EPROTO;
	if (ret_current_kib)
		*ret_current_kib = cur < 0 ? 0 : (uint64_t)cur;
	if (ret_requested_kib)
		*ret_requested_kib = (uint64_t)req;
	if (ret_dev &&
	    asprintf(ret_dev, "%.*s%llu%.*s", (int)(num - p), p, (unsigned long long)requested_kib,
		     (int)(end - num_end), num_end) < 0) {
		*ret_dev = NULL;
		return -ENOMEM;
	}
	return 0;
}

int lv_domain_memory_state(virDomainPtr dom, uint64_t *ret_current_kib, uint64_t *ret_requested_kib)
{
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
	return xml ? lv_virtio_mem_xml(xml, 0, NULL, ret_current_kib, ret_requested_kib) : -EIO;
}

int lv_domain_memory_request(virDomainPtr dom, uint64_t mib, struct orch_error *err)
{
	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0), *dev = NULL;
	if (!xml)
		return orch_err(err, -EIO, "cannot read the domain's XML: %s", lv_last_error());
	int r = lv_virtio_mem_xml(xml, mib * 1024, &dev, NULL, NULL);
	if (r == -ENODEV)
		return orch_err(err, r, "the domain has no virtio-mem device (boot_memory_mib)");
	if (r < 0)
		return orch_err(err, r, "cannot read the virtio-mem device from the domain's XML");
	if (virDomainUpdateDeviceFlags(dom, dev, VIR_DOMAIN_AFFECT_LIVE) < 0)
		return orch_err(err, -EIO, "cannot ask for %llu MiB of hot-plugged memory: %s",
				(unsigned long long)mib, lv_last_error());
	return 0;
}

static bool no_domain(void)
{
	virErrorPtr e = virGetLastError();
	return e && e->code == VIR_ERR_NO_DOMAIN;
}

int lv_domain_stop(virDomainPtr dom, bool force, struct orch_error *err)
{
	char name[128];
	const char *n = virDomainGetName(dom);
	snprintf(name, sizeof(name), "%s", n ? n : "?");

	int active = virDomainIsActive(dom);
	if (active == 0 || (active < 0 && no_domain()))
		return 0; /* already gone (a transient domain vanishes when it stops) */
	int r = force ? virDomainDestroy(dom)
		      : virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
	if (r == 0)
		return 0;
	if (no_domain())
		return 0;
	/* Copy the message before any other libvirt call resets it. */
	char msg[256];
	snprintf(msg, sizeof(msg), "%s", lv_last_error());
	if (virDomainIsActive(dom) != 1)
		return 0; /* it went away meanwhile */
	return orch_err(err, -EIO, "cannot %s vm %s: %s", force ? "destroy" : "shut down", name,
			msg);
}
