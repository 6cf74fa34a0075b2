/*
 * pending_attr.c - the attributes of a file being created: its stat, what
 * setattr sets (mode, times: the record's timestamp, size), and the
 * user.streambus.* extended attributes cp -a, tar --xattrs and rsync -X
 * restore (key, timestamp, offset).
 */
#include "fs.h"
#include "pending_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XA_KEY "user.streambus.key"
#define XA_OFFSET "user.streambus.offset"
#define XA_TIMESTAMP "user.streambus.timestamp"
#define XA_TOMBSTONE "user.streambus.tombstone"
#define XA_PREFIX "user.streambus."

void sbfs_pending_stat(sbfs *fs, sbfs_pending *p, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = p->ino;
	st->st_mode = S_IFREG | (p->mode & 0777 & ~fs->cfg->umask);
	st->st_nlink = 1;
	st->st_uid = fs->cfg->owner;
	st->st_gid = fs->cfg->group;
	st->st_blksize = SBFS_BLKSIZE;
	pthread_mutex_lock(&p->lock);
	uint64_t size = p->base + p->len;
	int64_t ns = p->mtime_ns;
	pthread_mutex_unlock(&p->lock);
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_mtim.tv_sec = ns / 1000000000;
	st->st_mtim.tv_nsec = ns % 1000000000;
	st->st_ctim = st->st_atim = st->st_mtim;
}

int sbfs_pending_attr(sbfs *fs, fuse_ino_t ino, struct stat *st)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = sbfs_pending_by_ino(fs, ino);
	if (!p) /* let go since the lookup: the kernel's permission check
		 * before an open of it (pending.c, ghosts) */
		p = sbfs_pending_ghost_locked(fs, ino);
	if (p) {
		sbfs_pending_stat(fs, p, st);
		rc = 0;
	}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

int sbfs_pending_as_record(sbfs *fs, fuse_ino_t ino)
{
	int as = 0;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = sbfs_pending_by_ino(fs, ino);
	if (p) {
		pthread_mutex_lock(&p->lock);
		as = p->as_record;
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&fs->plock);
	return as;
}

int sbfs_pending_setattr(sbfs *fs, fuse_ino_t ino, struct stat *attr, int to_set)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = sbfs_pending_by_ino(fs, ino);
	if (!p) {
		pthread_mutex_unlock(&fs->plock);
		return -ENOENT;
	}
	/* the tree's owner is the mount's: the same owner is fine (tar, cp -a
	 * and rsync -a as root set it), another never comes true */
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != fs->cfg->owner) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != fs->cfg->group)) {
		pthread_mutex_unlock(&fs->plock);
		return -EPERM;
	}
	/* A record's time is after the epoch and within 2262 (ns in an
	 * int64), as user.streambus.timestamp says: other times are refused
	 * (EINVAL, like that xattr), never replaced by the time of the close. */
	int64_t want = 0;
	if ((to_set & FUSE_SET_ATTR_MTIME) && !(to_set & FUSE_SET_ATTR_MTIME_NOW) &&
	    (__builtin_mul_overflow((int64_t)attr->st_mtim.tv_sec, (int64_t)1000000000, &want) ||
	     __builtin_add_overflow(want, (int64_t)attr->st_mtim.tv_nsec, &want) || want <= 0)) {
		pthread_mutex_unlock(&fs->plock);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->lock);
	if (to_set & FUSE_SET_ATTR_MODE)
		p->mode = attr->st_mode;
	if (p->stamp_xattr)
		; /* user.streambus.timestamp is exact; tar's mtime may be whole seconds */
	else if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		p->stamp_ns = 0;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		p->stamp_ns = want;
	if (p->stamp_ns > 0)
		p->mtime_ns = p->stamp_ns;
	/* touch sets times and closes: append at that close (flush), which the
	 * caller waits for, not at the release, which it does not */
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
		p->dirty = 1;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		uint64_t sz = (uint64_t)attr->st_size;
		uint32_t max = fs->b->ops->record_max(sbfs_topic_handle(fs, p->te));
		if (sz < p->base)
			rc = -EPERM; /* that part is already a record */
		else if (sz - p->base > max) {
			p->failed = -EFBIG; /* as a write past the limit: never a record */
			rc = -EFBIG;
		}
		else if (sz - p->base > p->cap) {
			char *nb = realloc(p->buf, sz - p->base);
			if (!nb)
				rc = -ENOMEM;
			else {
				p->buf = nb;
				p->cap = sz - p->base;
			}
		}
		if (rc == 0) {
			size_t nl = sz - p->base;
			if (nl > p->len)
				memset(p->buf + p->len, 0, nl - p->len);
			p->len = nl;
			p->dirty = 1;
			p->as_record = 0;
		}
	}
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

/* A decimal number of xattr value bytes (no sign, no NUL inside). */
static int parse_u64(const char *v, size_t n, uint64_t *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof buf)
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return sbfs_parse_offset(buf, out) ? -EINVAL : 0;
}

/* The record's attributes as a backup carries them (cp -a, rsync -X, tar
 * --xattrs): key, timestamp, offset (which must agree with a digits name),
 * tombstone ("1": the record is one; a backend with keys only), headers
 * (when the backend keeps them). Other user.streambus.* names are
 * refused with ENOTSUP rather than dropped; other user.* names are accepted
 * and dropped, so that cp -a of ordinary files does not complain. */
static int pending_xattr_locked(sbfs *fs, sbfs_pending *p, int flags, const char *name, const char *value,
				size_t size)
{
	uint64_t v;
	if (strncmp(name, SBFS_XA_HEADER, strlen(SBFS_XA_HEADER)) == 0) {
		if (!fs->b->ops->read_headers)
			return -ENOTSUP; /* this backend keeps none: never dropped */
		return sbfs_hdrs_set(&p->hdrs, name + strlen(SBFS_XA_HEADER), value, size, flags);
	}
	/* In .keys/ the name is the key and the record is appended: the key
	 * and offset a copy carries (cp -a, rsync -aX of another key's file or
	 * of a .keys/ backup, in key order, not offset order) are taken and
	 * left unused. */
	if (p->keyview && (strcmp(name, XA_KEY) == 0 || strcmp(name, XA_OFFSET) == 0))
		return 0;
	if (strcmp(name, XA_KEY) == 0) {
		if (size > 65535)
			return -E2BIG;
		char *k = malloc(size ? size : 1);
		if (!k)
			return -ENOMEM;
		memcpy(k, value, size);
		free(p->key);
		p->key = k;
		p->key_len = size;
		p->key_set = 1;
		return 0;
	}
	if (strcmp(name, XA_TIMESTAMP) == 0) {
		if (parse_u64(value, size, &v) || v == 0 || v > INT64_MAX)
			return -EINVAL;
		p->stamp_ns = p->mtime_ns = (int64_t)v;
		p->stamp_xattr = 1;
		return 0;
	}
	if (strcmp(name, XA_TOMBSTONE) == 0) {
		if (!fs->b->ops->get_key)
			return -ENOTSUP; /* a backend without keys: never dropped */
		if (size != 1 || value[0] != '1')
			return -EINVAL;
		p->tombstone = 1;
		return 0;
	}
	if (strcmp(name, XA_OFFSET) == 0) {
		if (parse_u64(value, size, &v) || v > SBFS_MAX_OFFSET)
			return -EINVAL;
		if (p->digits && v != p->at)
			return -EINVAL; /* the name says another offset */
		p->want = v;
		p->want_set = 1;
		return 0;
	}
	if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) == 0)
		return -ENOTSUP; /* names of ours it does not know: never dropped */
	return 0;
}

int sbfs_pending_setxattr(sbfs *fs, fuse_ino_t ino, int flags, const char *name, const char *value,
			  size_t size)
{
	if (strncmp(name, "user.", 5) != 0)
		return -ENOTSUP;
	int rc;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = sbfs_pending_by_ino(fs, ino);
	if (!p) {
		rc = -ENOENT;
	} else {
		pthread_mutex_lock(&p->lock);
		rc = pending_xattr_locked(fs, p, flags, name, value, size);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

int sbfs_pending_removexattr(sbfs *fs, fuse_ino_t ino, const char *name)
{
	if (strncmp(name, SBFS_XA_HEADER, strlen(SBFS_XA_HEADER)) != 0)
		return -ENOTSUP;
	int rc;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = sbfs_pending_by_ino(fs, ino);
	if (!p) {
		rc = -ENOENT;
	} else {
		pthread_mutex_lock(&p->lock);
		rc = sbfs_hdrs_remove(p->hdrs, name + strlen(SBFS_XA_HEADER));
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}
