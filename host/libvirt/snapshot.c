/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshot templates and VMs restored from them (snapshot.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "cleanup.h"
#include "domain.h"
#include "save-image.h"
#include "save-stream.h"
#include "snapshot.h"
#include "strbuf.h"

int lv_uuid_new(char ret[LV_UUID_LEN + 1])
{
	unsigned char u[16];

	if (getrandom(u, sizeof(u), 0) != sizeof(u))
		return -EIO;
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(ret, LV_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
	return 0;
}

/* Characters a name, UUID or directory may hold here: nothing XML escapes or a quote. */
static bool plain(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || strchr("&<>'\"", *s))
			return false;
	return true;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Replaces the text of the first <tag>...</tag> element before "<devices>". */
static int replace_element(struct lv_buf *b, const char **pos, const char *end_of_head,
			   const char *tag, const char *value, struct orch_error *err)
{
	char otag[32], ctag[32];
	snprintf(otag, sizeof(otag), "<%s>", tag);
	snprintf(ctag, sizeof(ctag), "</%s>", tag);
	const char *s = strstr(*pos, otag), *e = s ? strstr(s, ctag) : NULL;
	if (!s || !e || s > end_of_head)
		return orch_err(err, -EINVAL, "the template's XML has no <%s> element", tag);
	lv_buf_appendf(b, "%.*s%s%s", (int)(s - *pos), *pos, otag, value);
	*pos = e;
	return 0;
}

int lv_clone_xml(const char *xml, const struct lv_clone *c, char **ret, struct orch_error *err)
{
	static const char cid_at[] = "<cid auto='no' address='";
	struct lv_buf b = {0}, d = {0};
	int r;

	if (!plain(c->name, 64) || !plain(c->uuid, LV_UUID_LEN) || strlen(c->uuid) != LV_UUID_LEN ||
	    !plain(c->from_dir, 4096) || !plain(c->to_dir, 4096) || c->from_dir[0] != '/' ||
	    c->to_dir[0] != '/')
		return orch_err(err, -EINVAL,
				"a clone's name, UUID and directories must be plain printable "
				"ASCII (the directories absolute)");
	const char *head_end = strstr(xml, "<devices>");
	if (!head_end)
		return orch_err(err, -EINVAL, "the template's XML has no <devices>");
	/* A template's CID must never be a clone's: one there, one given, or neither. */
	unsigned cids = count(xml, cid_at);
	if (cids != (c->cid ? 1u : 0u))
		return orch_err(err, -EINVAL, "the template's XML has %u vsock CIDs, the clone %s",
				cids, c->cid ? "one" : "none");

	/* 1. name and UUID */
	const char *p = xml;
	if ((r = replace_element(&b, &p, head_end, "name", c->name, err)) < 0 ||
	    (r = replace_element(&b, &p, head_end, "uuid", c->uuid, err)) < 0) {
		lv_buf_done(&b);
		return r;
	}
	lv_buf_append(&b, p);
	_cleanup_free_ char *step = NULL;
	if ((r = lv_buf_steal(&b, &step)) < 0)
		return orch_err(err, r, "out of memory");

	/* 2. everything below the template's directory, below the clone's; 3. the CID */
	char from[4200], to[4200];
	snprintf(from, sizeof(from), "%s/", c->from_dir);
	snprintf(to, sizeof(to), "%s/", c->to_dir);
	unsigned paths = 0;
	for (p = step;;) {
		const char *f = strstr(p, from), *k = c->cid ? strstr(p, cid_at) : NULL;
		if (!f && !k)
			break;
		if (f && (!k || f < k)) {
			lv_buf_appendf(&d, "%.*s%s", (int)(f - p), p, to);
			p = f + strlen(from);
			paths++;
			continue;
		}
		k += strlen(cid_at);
		lv_buf_appendf(&d, "%.*s%u", (int)(k - p), p, c->cid);
		p = k + strspn(k, "0123456789");
	}
	lv_buf_append(&d, p);
	if (paths == 0) {
		lv_buf_done(&d);
		return orch_err(err, -EINVAL, "the template's XML names nothing below %s",
				c->from_dir);
	}
	if ((r = lv_buf_steal(&d, ret)) < 0)
		return orch_err(err, r, "out of memory");
	return 0;
}

int lv_snapshot_save(virDomainPtr dom, const char *path, bool drop_zero, char **ret_xml,
		     uint64_t *ret_dropped, struct orch_error *err)
{
	_cleanup_free_ char *part = NULL;
	int r;

	if (asprintf(&part, "%s.part", path) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	unlink(part);
	if (virDomainSaveFlags(dom, part, NULL, 0) < 0) {
		r = orch_err(err, -EIO, "cannot save the snapshot to %s: %s", part,
			     lv_last_error());
		unlink(part);
		return r;
	}
	/* Without the zero pages of the guest's RAM: a restore then reads in only what the
	 * guest had written (save-stream.h). An image not to rewrite stays as it is. */
	struct lv_stream_stats st = {0};
	if (drop_zero && (r = lv_save_image_drop_zero(part, &st, err)) < 0) {
		unlink(part);
		return r;
	}
	*err = (struct orch_error){0};
	if (ret_dropped)
		*ret_dropped = st.dropped;
	if (ret_xml && (r = lv_save_image_xml(part, ret_xml, err)) < 0) {
		unlink(part);
		return r;
	}
	if (rename(part, path) < 0) {
		r = orch_errno(err, -errno, "cannot rename %s", part);
		unlink(part);
		if (ret_xml) {
			free(*ret_xml);
			*ret_xml = NULL;
		}
		return r;
	}
	return 0;
}

int lv_snapshot_restore(virConnectPtr conn, const char *path, const char *clone_xml,
			const char *name, virDomainPtr *ret, struct orch_error *err)
{
	int r;

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
	if ((r = lv_save_image_set_xml(path, clone_xml, err)) < 0)
		return r;
	if (virDomainRestoreFlags(conn, path, NULL, VIR_DOMAIN_SAVE_PAUSED) < 0)
		return orch_err(err, -EIO, "cannot restore %s from %s: %s", name, path,
				lv_last_error());
	virDomainPtr dom = virDomainLookupByName(conn, name);
	if (!dom)
		return orch_err(err, -EIO, "%s was restored but libvirt does not know it: %s", name,
				lv_last_error());
	*ret = dom;
	return 0;
}

int lv_domain_attach_fs(virDomainPtr dom, const struct lv_fs_config *fs, struct orch_error *err)
{
	_cleanup_free_ char *xml = NULL;
	int r;

	if ((r = lv_filesystem_xml(fs, &xml, err)) < 0)
		return r;
	if (virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
		return orch_err(err, -EIO, "cannot attach the share %s (%s): %s", fs->tag, fs->dir,
				lv_last_error());
	return 0;
}
