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
