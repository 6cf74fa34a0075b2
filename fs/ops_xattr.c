/*
 * ops_xattr.c - extended attributes: a record's user.streambus.offset,
 * .timestamp and .key; a file being created takes them (pending.c).
 */
#include "fs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XA_OFFSET "user.streambus.offset"
#define XA_TIMESTAMP "user.streambus.timestamp"
#define XA_KEY "user.streambus.key"

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

static int xattr_names(sbfs *fs, fuse_ino_t ino, char *buf, size_t *len)
{
	uint32_t id;
	uint64_t off;
	sbfs_tentry *te;
	sbfs_topic *t;
	*len = 0;
	if (sbfs_ino_kind(ino, &id, &off) != K_RECORD)
		return 0;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);
	if (rc)
		return rc;
	size_t n = 0;
	memcpy(buf + n, XA_OFFSET, sizeof XA_OFFSET);
	n += sizeof XA_OFFSET;
	memcpy(buf + n, XA_TIMESTAMP, sizeof XA_TIMESTAMP);
	n += sizeof XA_TIMESTAMP;
	if (ri.key_len) {
		memcpy(buf + n, XA_KEY, sizeof XA_KEY);
		n += sizeof XA_KEY;
	}
	*len = n;
	return 0;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[128];
	size_t len;
	int rc = xattr_names(FS(req), ino, buf, &len);
	if (rc)
		return sbfs_reply_err(req, rc);
	if (size == 0)
		return (void)fuse_reply_xattr(req, len);
	if (size < len)
		return sbfs_reply_err(req, -ERANGE);
	fuse_reply_buf(req, buf, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	sbfs *fs = FS(req);
	uint32_t id;
	uint64_t off;
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_ino_kind(ino, &id, &off) != K_RECORD || strncmp(name, "user.streambus.", 15))
		return sbfs_reply_err(req, -ENODATA);
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return sbfs_reply_err(req, -ENOENT);
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);
	if (rc)
		return sbfs_reply_err(req, rc);
	char small[32];
	char *val = small;
	size_t len;
	if (strcmp(name, XA_OFFSET) == 0) {
		len = (size_t)snprintf(small, sizeof small, "%" PRIu64, off);
	} else if (strcmp(name, XA_TIMESTAMP) == 0) {
		len = (size_t)snprintf(small, sizeof small, "%" PRId64, ri.timestamp_ns);
	} else if (strcmp(name, XA_KEY) == 0 && ri.key_len) {
		val = malloc(ri.key_len);
		if (!val)
			return sbfs_reply_err(req, -ENOMEM);
		rc = fs->b->ops->read_key(t, off, val, ri.key_len, &len);
		if (rc) {
			free(val);
			return sbfs_reply_err(req, rc);
		}
	} else {
		return sbfs_reply_err(req, -ENODATA);
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		sbfs_reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, val, len);
	if (val != small)
		free(val);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)flags;
	if (sbfs_ino_kind(ino, NULL, NULL) == K_PENDING) {
		int rc = sbfs_pending_setxattr(FS(req), ino, name, value, size);
		return rc ? sbfs_reply_err(req, rc) : (void)fuse_reply_err(req, 0);
	}
	sbfs_reply_err(req, -ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	sbfs_reply_err(req, -ENOTSUP);
}

void sbfs_ops_xattr_fill(struct fuse_lowlevel_ops *ops)
{
	ops->listxattr = op_listxattr;
	ops->getxattr = op_getxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
}
