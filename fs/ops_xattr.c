/*
 * ops_xattr.c - extended attributes: a record's user.streambus.offset,
 * .timestamp, .key and .header.NAME (its headers, from the backend); a file
 * being created takes them (pending.c, headers.c).
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
#define XA_TOMBSTONE "user.streambus.tombstone" /* "1" on a tombstone record */

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

/* The names listxattr gives, NUL-terminated back to back. */
typedef struct xa_list {
	char *buf;
	size_t len, cap;
} xa_list;

/* Add the name a + b (blen bytes) to l. */
static int xa_add(xa_list *l, const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a), need = l->len + alen + blen + 1;
	if (need > l->cap) {
		size_t cap = need > 2 * l->cap ? need + 256 : 2 * l->cap;
		char *nb = realloc(l->buf, cap);
		if (!nb)
			return -ENOMEM;
		l->buf = nb;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, a, alen);
	memcpy(l->buf + l->len + alen, b, blen);
	l->buf[need - 1] = '\0';
	l->len = need;
	return 0;
}

static int list_header(void *arg, const sbfs_header *h)
{
	return xa_add(arg, SBFS_XA_HEADER, h->name, h->name_len);
}

/* A record's names: offset, timestamp, key (if it has one), its headers. */
static int xattr_names(sbfs *fs, fuse_ino_t ino, xa_list *l)
{
	uint32_t id;
	uint64_t off;
	sbfs_tentry *te;
	sbfs_topic *t;
	enum sbfs_kind k = sbfs_ino_kind(ino, &id, &off);
	if (k != K_RECORD && k != K_KEY) /* a key's file: its record's */
		return 0;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);
	if (rc)
		return rc;
	if ((rc = xa_add(l, XA_OFFSET, "", 0)) || (rc = xa_add(l, XA_TIMESTAMP, "", 0)) ||
	    (ri.key_len && (rc = xa_add(l, XA_KEY, "", 0))) ||
	    ((ri.flags & SBFS_REC_TOMBSTONE) && (rc = xa_add(l, XA_TOMBSTONE, "", 0))))
		return rc;
	if (fs->b->ops->read_headers)
		rc = fs->b->ops->read_headers(t, off, list_header, l);
	return rc < 0 ? rc : 0;
}

int sbfs_xattr_list(sbfs *fs, fuse_ino_t ino, char **names, size_t *len)
{
	xa_list l = {0};
	int rc = xattr_names(fs, ino, &l);
	if (rc) {
		free(l.buf);
		return rc;
	}
	*names = l.buf;
	*len = l.len;
	return 0;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *names = NULL;
	size_t len = 0;
	int rc = sbfs_xattr_list(FS(req), ino, &names, &len);
	if (rc)
		sbfs_reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		sbfs_reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, names, len);
	free(names);
}

/* getxattr of header NAME: its value, copied. */
typedef struct xa_find {
	const char *name;
	size_t nlen;
	char *val;
	size_t len;
} xa_find;

static int find_header(void *arg, const sbfs_header *h)
{
	xa_find *f = arg;
	if (h->name_len != f->nlen || memcmp(h->name, f->name, f->nlen))
		return 0;
	if (!(f->val = malloc(h->value_len ? h->value_len : 1)))
		return -ENOMEM;
	memcpy(f->val, h->value, h->value_len);
	f->len = h->value_len;
	return 1; /* found: stop */
}

int sbfs_xattr_get(sbfs *fs, fuse_ino_t ino, const char *name, char **value, size_t *len)
{
	uint32_t id;
	uint64_t off;
	sbfs_tentry *te;
	sbfs_topic *t;
	enum sbfs_kind k = sbfs_ino_kind(ino, &id, &off);
	if ((k != K_RECORD && k != K_KEY) || strncmp(name, "user.streambus.", 15))
		return -ENODATA;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);
	if (rc)
		return rc;
	char *val = malloc(ri.key_len > 32 ? ri.key_len : 32);
	size_t n;
	if (!val)
		return -ENOMEM;
	if (strcmp(name, XA_OFFSET) == 0) {
		n = (size_t)snprintf(val, 32, "%" PRIu64, off);
	} else if (strcmp(name, XA_TIMESTAMP) == 0) {
		n = (size_t)snprintf(val, 32, "%" PRId64, ri.timestamp_ns);
	} else if (strcmp(name, XA_TOMBSTONE) == 0 && (ri.flags & SBFS_REC_TOMBSTONE)) {
		n = 1;
		val[0] = '1';
	} else if (strcmp(name, XA_KEY) == 0 && ri.key_len) {
		rc = fs->b->ops->read_key(t, off, val, ri.key_len, &n);
	} else if (strncmp(name, SBFS_XA_HEADER, strlen(SBFS_XA_HEADER)) == 0 && fs->b->ops->read_headers) {
		xa_find f = {.name = name + strlen(SBFS_XA_HEADER)};
		f.nlen = strlen(f.name);
		rc = fs->b->ops->read_headers(t, off, find_header, &f);
		free(val);
		val = f.val;
		n = f.len;
		if (rc >= 0 && !val)
			rc = -ENODATA;
	} else {
		rc = -ENODATA;
	}
	if (rc < 0) {
		free(val);
		return rc;
	}
	*value = val;
	*len = n;
	return 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *val;
	size_t len;
	int rc = sbfs_xattr_get(FS(req), ino, name, &val, &len);
	if (rc)
		return sbfs_reply_err(req, rc);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		sbfs_reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, val, len);
	free(val);
}


/*
 * A record's xattrs never change: setting one to the value it has succeeds
 * (rsync -aX over a restored topic), as does, on a key's file in .keys/,
 * any user.streambus.offset (a .keys/ copy's offsets are another topic's or
 * in key order: there the name is the key, pending_attr.c); anything else
 * is ENOTSUP.
 */
static int record_setxattr(sbfs *fs, fuse_ino_t ino, const char *name, const char *value, size_t size)
{
	char *val;
	size_t len;

	if (sbfs_ino_kind(ino, NULL, NULL) == K_KEY && strcmp(name, XA_OFFSET) == 0)
		return 0;
	if (sbfs_xattr_get(fs, ino, name, &val, &len))
		return -ENOTSUP;
	int same = len == size && (!size || memcmp(val, value, size) == 0);
	free(val);
	return same ? 0 : -ENOTSUP;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int rc;
	enum sbfs_kind k = sbfs_ino_kind(ino, NULL, NULL);
	fuse_ino_t pino;

	if (k == K_PENDING)
		rc = sbfs_pending_setxattr(FS(req), ino, flags, name, value, size);
	else if (k == K_KEY && sbfs_fh_key_writer(FS(req), ino, fuse_req_ctx(req)->pid, &pino) == 0)
		rc = sbfs_pending_setxattr(FS(req), pino, flags, name, value, size); /* its writer's: its file's */
	else if (k == K_RECORD || k == K_KEY)
		rc = record_setxattr(FS(req), ino, name, value, size);
	else
		rc = -ENOTSUP;
	return rc ? sbfs_reply_err(req, rc) : (void)fuse_reply_err(req, 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_ino_t pino = ino;
	enum sbfs_kind k = sbfs_ino_kind(ino, NULL, NULL);
	if (k == K_PENDING ||
	    (k == K_KEY && sbfs_fh_key_writer(FS(req), ino, fuse_req_ctx(req)->pid, &pino) == 0)) {
		int rc = sbfs_pending_removexattr(FS(req), pino, name);
		return rc ? sbfs_reply_err(req, rc) : (void)fuse_reply_err(req, 0);
	}
	sbfs_reply_err(req, -ENOTSUP);
}

void sbfs_ops_xattr_fill(struct fuse_lowlevel_ops *ops)
{
	ops->listxattr = op_listxattr;
	ops->getxattr = op_getxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
}
