/* SPDX-License-Identifier: Apache-2.0 */
/* The domain XML of a libvirt QEMU save image (save-image.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "save-image.h"

#define RETAKE "; take the snapshot again"

int lv_save_header_parse(const unsigned char *buf, size_t len, struct lv_save_header *ret,
			 struct orch_error *err)
{
	struct lv_save_header h;
	uint32_t w[5];

	if (len < LV_SAVE_HEADER_LEN)
		return orch_err(err, -EINVAL, "a save image's header is %d bytes, got %zu" RETAKE,
				LV_SAVE_HEADER_LEN, len);
	if (memcmp(buf, "LibvirtQemudPart", 16) == 0)
		return orch_err(err, -EINVAL, "an unfinished libvirt save image" RETAKE);
	if (memcmp(buf, LV_SAVE_MAGIC, strlen(LV_SAVE_MAGIC)) != 0)
		return orch_err(err, -EINVAL, "not a libvirt QEMU save image" RETAKE);
	memcpy(w, buf + 16, sizeof(w));
	h = (struct lv_save_header){w[0], w[1], w[2], w[3], w[4]};
	if (h.version != LV_SAVE_VERSION)
		return orch_err(err, -EINVAL, "save image version %u, orch knows %d" RETAKE,
				h.version, LV_SAVE_VERSION);
	if (h.compressed != 0)
		return orch_err(err, -EINVAL,
				"the save image is compressed (qemu.conf save_image_format); orch "
				"needs raw images" RETAKE);
	if (h.data_len == 0 || h.data_len > LV_SAVE_DATA_MAX || h.cookie_off >= h.data_len)
		return orch_err(err, -EINVAL,
				"save image data of %u bytes with the cookie at %u" RETAKE,
				h.data_len, h.cookie_off);
	*ret = h;
	return 0;
}

int lv_save_data_replace_xml(unsigned char *data, const struct lv_save_header *h, const char *xml,
			     uint32_t *ret_cookie_off, struct orch_error *err)
{
	size_t xl = strlen(xml), cl = 0;
	const char *cookie = NULL;

	if (h->cookie_off) {
		cookie = (const char *)data + h->cookie_off;
		cl = strnlen(cookie, h->data_len - h->cookie_off);
		if (cl == h->data_len - h->cookie_off)
			return orch_err(err, -EINVAL,
					"the save image's cookie is not terminated" RETAKE);
	}
	/* xml NUL cookie NUL, within data_len (libvirt pads the data generously). */
	if (xl + 1 + (cookie ? cl + 1 : 0) > h->data_len)
		return orch_err(err, -E2BIG,
				"the new domain XML (%zu bytes) does not fit the save image's %u "
				"bytes",
				xl, h->data_len);
	_cleanup_free_ char *c = cookie ? strndup(cookie, cl) : NULL;
	if (cookie && !c)
		return orch_err(err, -ENOMEM, "out of memory");
	memset(data, 0, h->data_len);
	memcpy(data, xml, xl);
	if (c)
		memcpy(data + xl + 1, c, cl);
	*ret_cookie_off = c ? (uint32_t)(xl + 1) : 0;
	return 0;
}

static int read_all(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Opens path and reads its header and data (malloc'd, data_len + 1 bytes, NUL after). */
static int load(const char *path, int flags, int *ret_fd, unsigned char *hdr,
		struct lv_save_header *h, unsigned char **ret_data, struct orch_error *err)
{
	_cleanup_close_ int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW);
	int r;

	if (fd < 0)
		return orch_errno(err, -errno, "cannot open the save image %s", path);
	if ((r = read_all(fd, hdr, LV_SAVE_HEADER_LEN, 0)) < 0)
		return orch_errno(err, r, "cannot read the save image %s", path);
	if ((r = lv_save_header_parse(hdr, LV_SAVE_HEADER_LEN, h, err)) < 0)
		return orch_err_prefix(err, "%s", path);
	_cleanup_free_ unsigned char *data = malloc((size_t)h->data_len + 1);
	if (!data)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = read_all(fd, data, h->data_len, LV_SAVE_HEADER_LEN)) < 0)
		return orch_errno(err, r, "cannot read the save image %s", path);
	data[h->data_len] = 0;
	*ret_data = TAKE_PTR(data);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int lv_save_image_xml(const char *path, char **ret, struct orch_error *err)
{
	unsigned char hdr[LV_SAVE_HEADER_LEN], *data = NULL;
	struct lv_save_header h;
	int fd = -1, r;

	if ((r = load(path, O_RDONLY, &fd, hdr, &h, &data, err)) < 0)
		return r;
	close(fd);
	size_t xl = strnlen((char *)data, h.cookie_off ? h.cookie_off : h.data_len);
	char *x = strndup((char *)data, xl);
	free(data);
	if (!x)
		return orch_err(err, -ENOMEM, "out of memory");
	*ret = x;
	return 0;
}

int lv_save_image_set_xml(const char *path, const char *xml, struct orch_error *err)
{
	unsigned char hdr[LV_SAVE_HEADER_LEN];
	_cleanup_free_ unsigned char *data = NULL;
	struct lv_save_header h;
	uint32_t cookie_off;
	_cleanup_close_ int fd = -1;
	int r;

	if ((r = load(path, O_RDWR, &fd, hdr, &h, &data, err)) < 0)
		return r;
	if ((r = lv_save_data_replace_xml(data, &h, xml, &cookie_off, err)) < 0)
		return orch_err_prefix(err, "%s", path);
	memcpy(hdr + 16 + 4 * 4, &cookie_off, sizeof(cookie_off));
	/* The data first, then the header naming the new cookie offset. */
	if ((r = write_all(fd, data, h.data_len, LV_SAVE_HEADER_LEN)) < 0 ||
	    (r = write_all(fd, hdr, LV_SAVE_HEADER_LEN, 0)) < 0)
		return orch_errno(err, r, "cannot write the save image %s", path);
	return 0;
}
