/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/save-image.c (the domain XML inside a libvirt save image) and
 * snapshot.c's pure part (a template's XML made a clone's). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "save-image.h"
#include "save-stream.h"
#include "snapshot.h"

static void header(unsigned char *h, uint32_t version, uint32_t data_len, uint32_t compressed,
		   uint32_t cookie_off)
{
	uint32_t w[5] = {version, data_len, 1, compressed, cookie_off};
	memset(h, 0, LV_SAVE_HEADER_LEN);
	memcpy(h, LV_SAVE_MAGIC, 16);
	memcpy(h + 16, w, sizeof(w));
}

START_TEST(test_header)
{
	unsigned char h[LV_SAVE_HEADER_LEN];
	struct lv_save_header sh;
	struct orch_error err = {0};

	header(h, 2, 65536, 0, 100);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), 0);
	ck_assert_uint_eq(sh.data_len, 65536);
	ck_assert_uint_eq(sh.cookie_off, 100);
	ck_assert_int_eq(lv_save_header_parse(h, 40, &sh, &err), -EINVAL);

	memcpy(h, "LibvirtQemudPart", 16);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "unfinished"));
	memcpy(h, "SomethingElse...", 16);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "take the snapshot again"));

	header(h, 3, 65536, 0, 100);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	header(h, 0x02000000, 65536, 0, 100); /* the other byte order */
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	header(h, 2, 65536, 1, 100);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "compressed"));
	header(h, 2, 0, 0, 0);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	header(h, 2, LV_SAVE_DATA_MAX + 1, 0, 0);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
	header(h, 2, 4096, 0, 4096);
	ck_assert_int_eq(lv_save_header_parse(h, sizeof(h), &sh, &err), -EINVAL);
}
END_TEST

START_TEST(test_replace_xml)
{
	struct orch_error err = {0};
	unsigned char data[256];
	struct lv_save_header h = {.version = 2, .data_len = sizeof(data)};
	uint32_t off = 0;

	memset(data, 0, sizeof(data));
	strcpy((char *)data, "<domain>old</domain>");
	h.cookie_off = 21;
	strcpy((char *)data + 21, "<cookie/>");
	ck_assert_int_eq(
		lv_save_data_replace_xml(data, &h, "<domain>a longer one</domain>", &off, &err), 0);
	ck_assert_str_eq((char *)data, "<domain>a longer one</domain>");
	ck_assert_uint_eq(off, strlen("<domain>a longer one</domain>") + 1);
	ck_assert_str_eq((char *)data + off, "<cookie/>");
	for (size_t i = off + strlen("<cookie/>"); i < sizeof(data); i++)
		ck_assert_int_eq(data[i], 0);

	/* too long for the data */
	char big[300];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	h.cookie_off = off;
	ck_assert_int_eq(lv_save_data_replace_xml(data, &h, big, &off, &err), -E2BIG);
	/* no cookie */
	h.cookie_off = 0;
	ck_assert_int_eq(lv_save_data_replace_xml(data, &h, "<d/>", &off, &err), 0);
	ck_assert_uint_eq(off, 0);
	ck_assert_str_eq((char *)data, "<d/>");
	/* a cookie without its NUL */
	memset(data, 'c', sizeof(data));
	h.cookie_off = 10;
	ck_assert_int_eq(lv_save_data_replace_xml(data, &h, "<d/>", &off, &err), -EINVAL);
}
END_TEST

/* A save image file: header, data (xml, cookie, padding), then "stream" bytes. */
static void write_image(const char *path, const char *xml, const char *cookie, size_t data_len,
			const char *stream)
{
	unsigned char h[LV_SAVE_HEADER_LEN];
	_cleanup_free_ unsigned char *d = calloc(1, data_len);
	ck_assert_ptr_nonnull(d);
	strcpy((char *)d, xml);
	strcpy((char *)d + strlen(xml) + 1, cookie);
	header(h, 2, (uint32_t)data_len, 0, (uint32_t)strlen(xml) + 1);
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(h, 1, sizeof(h), f), sizeof(h));
	ck_assert_uint_eq(fwrite(d, 1, data_len, f), data_len);
	ck_assert_uint_eq(fwrite(stream, 1, strlen(stream), f), strlen(stream));
	fclose(f);
}

START_TEST(test_image_file)
{
	char path[] = "/tmp/check-snapshot-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	write_image(path, "<domain><name>t</name></domain>", "<cookie/>", 4096, "QEVM-stream");

	struct orch_error err = {0};
	_cleanup_free_ char *x = NULL, *y = NULL;
	ck_assert_int_eq(lv_save_image_xml(path, &x, &err), 0);
	ck_assert_str_eq(x, "<domain><name>t</name></domain>");
	ck_assert_int_eq(lv_save_image_set_xml(path, "<domain><name>clone-1</name></domain>", &err),
			 0);
	ck_assert_int_eq(lv_save_image_xml(path, &y, &err), 0);
	ck_assert_str_eq(y, "<domain><name>clone-1</name></domain>");

	/* the header names the moved cookie, the stream is where it was */
	unsigned char buf[LV_SAVE_HEADER_LEN + 4096 + 16];
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), LV_SAVE_HEADER_LEN + 4096 + 11);
	close(fd);
	struct lv_save_header h;
	ck_assert_int_eq(lv_save_header_parse(buf, sizeof(buf), &h, &err), 0);
	ck_assert_uint_eq(h.cookie_off, strlen(y) + 1);
	ck_assert_str_eq((char *)buf + LV_SAVE_HEADER_LEN + h.cookie_off, "<cookie/>");
	ck_assert_int_eq(memcmp(buf + LV_SAVE_HEADER_LEN + 4096, "QEVM-stream", 11), 0);

	/* not an image */
	FILE *f = fopen(path, "we");
	fputs("not a save image at all, but long enough to have a header of 92 bytes: ........"
	      "..................",
	      f);
	fclose(f);
	ck_assert_int_eq(lv_save_image_set_xml(path, "<d/>", &err), -EINVAL);
	unlink(path);
	ck_assert_int_eq(lv_save_image_xml(path, &x, &err), -ENOENT);
}
END_TEST

/* As libvirt saves a template (trimmed). */
static const char tmpl_xml[] =
	"<domain type='qemu'>\n"
	"  <name>orch-dev.tmpl</name>\n"
	"  <uuid>6094a007-15c3-4338-83c8-f543c38cd80b</uuid>\n"
	"  <memory unit='KiB'>524288</memory>\n"
	"  <os>\n"
	"    <cmdline>console=ttyS0 orch.name=orch-dev.tmpl orch.snapshot=1</cmdline>\n"
	"  </os>\n"
	"  <devices>\n"
	"    <serial type='file'>\n"
	"      <source path='/var/lib/orch/vm/dev.tmpl/console.log' append='on'/>\n"
	"    </serial>\n"
	"    <channel type='unix'>\n"
	"      <source mode='bind' path='/var/lib/orch/vm/dev.tmpl/chan/control.sock'/>\n"
	"      <target type='virtio' name='org.orch.control' state='disconnected'/>\n"
	"    </channel>\n"
	"    <channel type='unix'>\n"
	"      <source mode='bind' path='/var/lib/orch/vm/dev.tmpl2/chan/other.sock'/>\n"
	"    </channel>\n"
	"    <vsock model='virtio'>\n"
	"      <cid auto='no' address='17'/>\n"
	"    </vsock>\n"
	"  </devices>\n"
	"</domain>\n";

START_TEST(test_clone_xml)
{
	struct orch_error err = {0};
	struct lv_clone c = {
		.name = "orch-dev.3",
		.uuid = "177fbe4d-086f-4299-a5a8-e62669e57b27",
		.from_dir = "/var/lib/orch/vm/dev.tmpl",
		.to_dir = "/var/lib/orch/vm/dev.3",
		.cid = 42,
	};
	_cleanup_free_ char *x = NULL;
	ck_assert_int_eq(lv_clone_xml(tmpl_xml, &c, &x, &err), 0);
	ck_assert_ptr_nonnull(strstr(x, "  <name>orch-dev.3</name>\n"));
	ck_assert_ptr_nonnull(strstr(x, "<uuid>177fbe4d-086f-4299-a5a8-e62669e57b27</uuid>"));
	ck_assert_ptr_nonnull(strstr(x, "path='/var/lib/orch/vm/dev.3/console.log'"));
	ck_assert_ptr_nonnull(strstr(x, "path='/var/lib/orch/vm/dev.3/chan/control.sock'"));
	/* a directory that only starts like the template's is not the template's */
	ck_assert_ptr_nonnull(strstr(x, "path='/var/lib/orch/vm/dev.tmpl2/chan/other.sock'"));
	ck_assert_ptr_nonnull(strstr(x, "<cid auto='no' address='42'/>"));
	ck_assert_ptr_null(strstr(x, "6094a007"));
	ck_assert_ptr_null(strstr(x, "address='17'"));
	/* the command line is the template's: the guest learns its name from vm.thaw */
	ck_assert_ptr_nonnull(strstr(x, "orch.name=orch-dev.tmpl orch.snapshot=1"));

	char *y = NULL;
	struct lv_clone bad = c;
	bad.name = "a'b";
	ck_assert_int_eq(lv_clone_xml(tmpl_xml, &bad, &y, &err), -EINVAL);
	bad = c;
	bad.uuid = "short";
	ck_assert_int_eq(lv_clone_xml(tmpl_xml, &bad, &y, &err), -EINVAL);
	bad = c;
	bad.to_dir = "relative/dir";
	ck_assert_int_eq(lv_clone_xml(tmpl_xml, &bad, &y, &err), -EINVAL);
	bad = c;
	bad.from_dir = "/somewhere/else";
	ck_assert_int_eq(lv_clone_xml(tmpl_xml, &bad, &y, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "names nothing below"));
	ck_assert_int_eq(lv_clone_xml("<domain><devices/></domain>", &c, &y, &err), -EINVAL);
	ck_assert_int_eq(
		lv_clone_xml("<domain><name>x</name><uuid>u</uuid></domain>", &c, &y, &err),
		-EINVAL); /* no <devices> */
	ck_assert_ptr_null(y);

	/* without vsock: a template with a CID is refused, one without is fine */
	struct lv_clone serial = c;
	serial.cid = 0;
	ck_assert_int_eq(lv_clone_xml(tmpl_xml, &serial, &y, &err), -EINVAL);
	const char *no_vsock = "<domain>\n  <name>t</name>\n  <uuid>u</uuid>\n  <devices>\n"
			       "    <source path='/var/lib/orch/vm/dev.tmpl/x'/>\n"
			       "  </devices>\n</domain>\n";
	ck_assert_int_eq(lv_clone_xml(no_vsock, &serial, &y, &err), 0);
	ck_assert_ptr_nonnull(strstr(y, "/var/lib/orch/vm/dev.3/x"));
	free(y);
	y = NULL;
	ck_assert_int_eq(lv_clone_xml(no_vsock, &c, &y, &err), -EINVAL); /* a CID, no vsock */
}
END_TEST

START_TEST(test_uuid)
{
	char a[LV_UUID_LEN + 1], b[LV_UUID_LEN + 1];
	ck_assert_int_eq(lv_uuid_new(a), 0);
	ck_assert_int_eq(lv_uuid_new(b), 0);
	ck_assert_uint_eq(strlen(a), LV_UUID_LEN);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(a[14], '4');
	ck_assert_ptr_nonnull(strchr("89ab", a[19]));
}
END_TEST

/* ---- the stream without pc.ram's zero pages (save-stream.h) ---- */

struct sb {
	unsigned char b[65536];
	size_t n;
};

static void sb_put(struct sb *s, const void *p, size_t n)
{
	ck_assert_uint_le(s->n + n, sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void sb_be32(struct sb *s, uint32_t v)
{
	unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
	sb_put(s, b, 4);
}

static void sb_be64(struct sb *s, uint64_t v)
{
	sb_be32(s, (uint32_t)(v >> 32));
	sb_be32(s, (uint32_t)v);
}

static void sb_name(struct sb *s, const char *name)
{
	unsigned char l = (unsigned char)strlen(name);
	sb_put(s, &l, 1);
	sb_put(s, name, l);
}

/* A record: block NULL = "continue". */
static void sb_rec(struct sb *s, uint64_t addr, unsigned flags, const char *block, int fill)
{
	sb_be64(s, addr | flags | (block ? 0 : 0x20));
	if (block)
		sb_name(s, block);
	if (flags == 0x02) {
		unsigned char c = (unsigned char)fill;
		sb_put(s, &c, 1);
	} else {
		unsigned char page[4096];
		memset(page, fill, sizeof(page));
		sb_put(s, page, sizeof(page));
	}
}

static void sb_section(struct sb *s, int type)
{
	unsigned char t = (unsigned char)type;
	sb_put(s, &t, 1);
	sb_be32(s, 3);
	if (type == 1) {
		sb_name(s, "ram");
		sb_be32(s, 0);
		sb_be32(s, 4);
	}
}

static void sb_eos(struct sb *s)
{
	unsigned char f = 0x7e;
	sb_be64(s, 0x10);
	sb_put(s, &f, 1);
	sb_be32(s, 3);
}

/* The stream's head: its configuration and the mem-size record naming ram (2 MiB) and
 * other (4 KiB). */
static void sb_head_blocks(struct sb *s, const char *ram, const char *other)
{
	unsigned char cfg = 0x07;
	sb_put(s, "QEVM", 4);
	sb_be32(s, 3);
	sb_put(s, &cfg, 1);
	sb_be32(s, 13);
	sb_put(s, "pc-i440fx-7.2", 13);
	sb_section(s, 1);
	sb_be64(s, ((2u << 20) + 4096) | 0x04);
	sb_name(s, ram);
	sb_be64(s, 2u << 20);
	sb_name(s, other);
	sb_be64(s, 4096);
	sb_eos(s);
}

static void sb_head(struct sb *s)
{
	sb_head_blocks(s, "pc.ram", "pc.rom");
}

/* Rewrites in into a temporary file (returned, open): it must read as want, with these
 * counts of records dropped, zero pages and pages. */
static int rewrite_as(const struct sb *in, const struct sb *want, uint64_t dropped, uint64_t zero,
		      uint64_t pages)
{
	struct lv_stream_stats st;
	struct orch_error err = {0};
	char path[] = "/tmp/check-stream.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(lv_save_stream_drop_zero(in->b, in->n, fd, &st, &err), 0);
	ck_assert_uint_eq(st.dropped, dropped);
	ck_assert_uint_eq(st.zero, zero);
	ck_assert_uint_eq(st.pages, pages);
	off_t len = lseek(fd, 0, SEEK_END);
	ck_assert_int_eq(len, (off_t)want->n);
	static unsigned char got[65536];
	ck_assert_int_eq(pread(fd, got, want->n, 0), (ssize_t)want->n);
	ck_assert(memcmp(got, want->b, want->n) == 0);
	return fd;
}

START_TEST(test_stream_drop_zero)
{
	static struct sb in, want;
	struct lv_stream_stats st;
	struct orch_error err = {0};
	const uint64_t mib = 1 << 20;

	in.n = want.n = 0;
	sb_head(&in);
	sb_head(&want);
	sb_section(&in, 2);
	sb_section(&want, 2);
	/* below 1 MiB: kept */
	sb_rec(&in, 0, 0x02, "pc.ram", 0);
	sb_rec(&want, 0, 0x02, "pc.ram", 0);
	sb_rec(&in, 4096, 0x08, NULL, 0xab);
	sb_rec(&want, 4096, 0x08, NULL, 0xab);
	/* zero pages of pc.ram above 1 MiB: dropped, named or continued */
	sb_rec(&in, mib, 0x02, "pc.ram", 0);
	sb_rec(&in, mib + 4096, 0x02, NULL, 0);
	/* a zero record filled with another byte: kept */
	sb_rec(&in, mib + 8192, 0x02, NULL, 7);
	sb_rec(&want, mib + 8192, 0x02, NULL, 7);
	/* another block's zero page: kept, it names its block */
	sb_rec(&in, 0, 0x02, "pc.rom", 0);
	sb_rec(&want, 0, 0x02, "pc.rom", 0);
	/* a dropped record named pc.ram; the page continuing it must name it again */
	sb_rec(&in, mib + 3 * 4096, 0x02, "pc.ram", 0);
	sb_rec(&in, mib + 4 * 4096, 0x08, NULL, 0xcd);
	sb_rec(&want, mib + 4 * 4096, 0x08, "pc.ram", 0xcd);
	sb_eos(&in);
	sb_eos(&want);
	sb_section(&in, 3);
	sb_section(&want, 3);
	sb_rec(&in, mib + 5 * 4096, 0x02, NULL, 0);
	sb_rec(&in, mib + 6 * 4096, 0x08, NULL, 0xef);
	sb_rec(&want, mib + 6 * 4096, 0x08, NULL, 0xef);
	sb_eos(&in);
	sb_eos(&want);
	sb_put(&in, "\x04the devices' state", 19);
	sb_put(&want, "\x04the devices' state", 19);

	int fd = rewrite_as(&in, &want, 4, 7, 3);

	/* Records of another kind (an XBZRLE page): refused, the caller keeps the image. */
	in.n = 0;
	sb_head(&in);
	sb_section(&in, 2);
	sb_be64(&in, mib | 0x40);
	ck_assert_int_eq(lv_save_stream_drop_zero(in.b, in.n, fd, &st, &err), -EPROTO);
	/* A block the mem-size record did not name. */
	in.n = 0;
	sb_head(&in);
	sb_section(&in, 2);
	sb_rec(&in, mib, 0x02, "pc.other", 0);
	ck_assert_int_eq(lv_save_stream_drop_zero(in.b, in.n, fd, &st, &err), -EPROTO);
	/* Another iterable section, and a cut stream. */
	in.n = 0;
	sb_head(&in);
	in.b[4 + 4 + 1 + 4 + 13 + 5 + 1] = 'x'; /* "ram" -> "xam" */
	ck_assert_int_eq(lv_save_stream_drop_zero(in.b, in.n, fd, &st, &err), -EPROTO);
	in.n = 0;
	sb_head(&in);
	ck_assert_int_eq(lv_save_stream_drop_zero(in.b, in.n - 3, fd, &st, &err), -EPROTO);
	ck_assert_int_eq(
		lv_save_stream_drop_zero((const unsigned char *)"QEVM\0\0\0\2", 8, fd, &st, &err),
		-EPROTO);
	close(fd);
}
END_TEST

/* Only a bzImage's domain is saved without zero pages: an ELF (PVH) or multiboot kernel is
 * a ROM blob QEMU writes into the guest's RAM before it loads the stream. */
static bool kernel_file(const unsigned char *b, size_t n)
{
	char path[] = "/tmp/check-kernel.XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
	close(fd);
	bool r = lv_kernel_is_bzimage(path);
	unlink(path);
	return r;
}

START_TEST(test_kernel_bzimage)
{
	static unsigned char k[0x400];
	memset(k, 0, sizeof(k));
	memcpy(k + 0x202, "HdrS", 4);
	k[0x206] = 0x0f; /* protocol 2.15 */
	k[0x207] = 0x02;
	ck_assert(kernel_file(k, sizeof(k)));
	k[0x207] = 0x01; /* protocol 1.x: loaded into the guest's low memory */
	ck_assert(!kernel_file(k, sizeof(k)));
	k[0x207] = 0x02;
	ck_assert(!kernel_file(k, 0x205)); /* cut short */
	static const unsigned char elf[0x400] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	ck_assert(!kernel_file(elf, sizeof(elf)));
	ck_assert(!lv_kernel_is_bzimage("/nonexistent/vmlinuz"));
}
END_TEST

/* With memory hot-plug the RAM is NUMA node 0's block, ram-node0; the virtio-mem device's
 * block (memvirtiomem0) is not the RAM the rewrite is for: its zero pages stay. */
START_TEST(test_stream_drop_zero_numa)
{
	static struct sb in, want;
	const uint64_t mib = 1 << 20;

	in.n = want.n = 0;
	sb_head_blocks(&in, "ram-node0", "memvirtiomem0");
	sb_head_blocks(&want, "ram-node0", "memvirtiomem0");
	sb_section(&in, 2);
	sb_section(&want, 2);
	sb_rec(&in, 0, 0x02, "ram-node0", 0); /* below 1 MiB: kept */
	sb_rec(&want, 0, 0x02, "ram-node0", 0);
	sb_rec(&in, mib, 0x02, NULL, 0); /* dropped */
	sb_rec(&in, 0, 0x02, "memvirtiomem0", 0);
	sb_rec(&want, 0, 0x02, "memvirtiomem0", 0);
	sb_rec(&in, 4096, 0x08, NULL, 0x5a);
	sb_rec(&want, 4096, 0x08, NULL, 0x5a);
	sb_eos(&in);
	sb_eos(&want);
	sb_section(&in, 3);
	sb_section(&want, 3);
	sb_eos(&in);
	sb_eos(&want);
	sb_put(&in, "\x04the devices' state", 19);
	sb_put(&want, "\x04the devices' state", 19);

	close(rewrite_as(&in, &want, 1, 3, 1));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_replace_xml);
	tcase_add_test(tc, test_image_file);
	tcase_add_test(tc, test_clone_xml);
	tcase_add_test(tc, test_uuid);
	tcase_add_test(tc, test_stream_drop_zero);
	tcase_add_test(tc, test_stream_drop_zero_numa);
	tcase_add_test(tc, test_kernel_bzimage);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
