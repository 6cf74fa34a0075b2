/*
 * pending.c - files being created in a topic.
 *
 * A created file is buffered in memory and appended as one record, keyed by
 * its name, when it is closed after being written or having its times set
 * (flush: the closer learns the outcome), or on release if neither happened.
 * What is written after such a close goes into a next record. A name of
 * digits appends at that offset instead (no key; cp -a restores the key
 * through user.streambus.key and the time through utimens). The name is
 * visible (lookup, getattr) until the last close.
 *
 * A temporary name (starting with '.', or ending in ".tmp") is not a record
 * at its close: the file is held, its attributes still settable, until it
 * is renamed within the topic (then it is appended under the final name:
 * rsync closes its temp file, sets its times, mode and xattrs, then renames
 * it), unlinked (nothing is appended), or left alone for SBFS_HOLD_NS after
 * its last close, or the daemon unmounts (then it is appended under its own
 * name: a close that succeeded never loses data).
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XA_KEY "user.streambus.key"
#define XA_OFFSET "user.streambus.offset"
#define XA_TIMESTAMP "user.streambus.timestamp"
#define XA_PREFIX "user.streambus."

struct sbfs_pending {
	struct sbfs_pending *next;   /* guarded by sbfs.plock */
	int linked;                  /* guarded by sbfs.plock: in the list */
	int opens;                   /* guarded by sbfs.plock */
	int held;                    /* guarded by sbfs.plock: a temporary name, closed */
	int64_t held_ns;             /* guarded by sbfs.plock: its last close (monotonic) */
	fuse_ino_t ino;
	sbfs_tentry *te;
	/* name, digits, at: written under sbfs.plock and lock both, read under either */
	char *name;
	int digits;
	uint64_t at;                 /* digits: the offset asked for */
	mode_t mode;
	pthread_mutex_t lock;        /* guards everything below */
	char *buf;
	size_t len, cap;
	uint64_t base;               /* bytes already appended as earlier records */
	int dirty, committed;
	int failed;                  /* a write failed (EFBIG): never append it */
	char *key;                   /* from setxattr user.streambus.key */
	size_t key_len;
	int key_set;
	int64_t mtime_ns;
	int64_t stamp_ns;            /* set by utimens (cp -p): the record's time */
	int stamp_xattr;             /* stamp_ns came from user.streambus.timestamp */
	int want_set;                /* user.streambus.offset was set: */
	uint64_t want;               /* the record must land at this offset */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A temporary name: its file becomes a record when renamed, not at close. */
static int temp_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' || (n > 4 && strcmp(name + n - 4, ".tmp") == 0);
}

/* What a name asks for in te: *digits and *at for a record name; -EPERM for
 * a digits name that cannot be the next record (only the next offset, or
 * any in an empty topic), -EEXIST for .log, -ENAMETOOLONG. */
static int name_check(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, const char *name, int *digits,
		      uint64_t *at)
{
	size_t nlen = strlen(name);
	if (strcmp(name, ".log") == 0)
		return -EEXIST;
	if (nlen > 255)
		return -ENAMETOOLONG;
	*digits = 0;
	if (strspn(name, "0123456789") != nlen)
		return 0;
	if (sbfs_parse_offset(name, at) != 0)
		return -EPERM; /* digits, but no offset there can ever be */
	sbfs_bounds bd;
	int rc = sbfs_offsets_of(fs, te, t, &bd);
	if (rc)
		return rc;
	if (*at > SBFS_MAX_OFFSET || !(*at == bd.next || (bd.start == bd.next && *at >= bd.next)))
		return -EPERM;
	*digits = 1;
	return 0;
}

/* ---- pending files ---------------------------------------------------------- */

static void pending_free(sbfs_pending *p)
{
	pthread_mutex_destroy(&p->lock);
	free(p->buf);
	free(p->key);
	free(p->name);
	free(p);
}

/* Find by ino (plock held). */
static sbfs_pending *pending_by_ino(sbfs *fs, fuse_ino_t ino)
{
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (p->ino == ino)
			return p;
	return NULL;
}

static void pending_unlink_locked(sbfs *fs, sbfs_pending *p)
{
	for (sbfs_pending **pp = &fs->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->linked = 0;
}

static void pending_stat(sbfs *fs, sbfs_pending *p, struct stat *st)
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
	sbfs_pending *p = pending_by_ino(fs, ino);
	if (p) {
		pending_stat(fs, p, st);
		rc = 0;
	}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

/* name "" matches any pending file of the topic; st may be NULL. */
int sbfs_pending_lookup(sbfs *fs, sbfs_tentry *te, const char *name, struct stat *st)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (p->te == te && (!*name || strcmp(p->name, name) == 0)) {
			if (st)
				pending_stat(fs, p, st);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

/* rm of a file being created: it is dropped, nothing is appended. */
int sbfs_pending_unlink(sbfs *fs, sbfs_tentry *te, const char *name)
{
	int rc = -ENOENT;
	sbfs_pending *dead = NULL;
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (p->te == te && strcmp(p->name, name) == 0) {
			pending_unlink_locked(fs, p);
			if (p->opens == 0)
				dead = p;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&fs->plock);
	if (dead)
		pending_free(dead);
	return rc;
}

int sbfs_pending_setattr(sbfs *fs, fuse_ino_t ino, struct stat *attr, int to_set)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = pending_by_ino(fs, ino);
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
	pthread_mutex_lock(&p->lock);
	if (to_set & FUSE_SET_ATTR_MODE)
		p->mode = attr->st_mode;
	if (p->stamp_xattr)
		; /* user.streambus.timestamp is exact; tar's mtime may be whole seconds */
	else if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		p->stamp_ns = 0;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		p->stamp_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
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
		else if (sz - p->base > max)
			rc = -EFBIG;
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
 * --xattrs): key, timestamp, offset (which must agree with a digits name).
 * Other user.streambus.* names (headers among them) are refused with
 * ENOTSUP rather than dropped; other user.* names are accepted and
 * dropped, so that cp -a of ordinary files does not complain. */
static int pending_xattr_locked(sbfs_pending *p, const char *name, const char *value, size_t size)
{
	uint64_t v;
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
		return -ENOTSUP; /* headers and the like: not kept yet, never dropped */
	return 0;
}

int sbfs_pending_setxattr(sbfs *fs, fuse_ino_t ino, const char *name, const char *value,
			  size_t size)
{
	if (strncmp(name, "user.", 5) != 0)
		return -ENOTSUP;
	int rc;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = pending_by_ino(fs, ino);
	if (!p) {
		rc = -ENOENT;
	} else {
		pthread_mutex_lock(&p->lock);
		rc = pending_xattr_locked(p, name, value, size);
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

/* Append what was written since the last commit as one record (p->lock held). */
static int pending_commit(sbfs *fs, sbfs_pending *p)
{
	if (fs->cfg->read_only)
		return -EROFS;
	if (p->failed)
		return -EFBIG;
	if (p->want_set && p->digits && p->want != p->at)
		return -EPERM; /* renamed to another offset than its xattr says */
	int exact = p->digits || p->want_set;
	uint64_t at = p->digits ? p->at : p->want;
	sbfs_rec r = { .value = p->buf, .value_len = (uint32_t)p->len,
		       .timestamp_ns = p->stamp_ns > 0 ? p->stamp_ns : 0 };
	if (p->key_set) {
		r.key = p->key;
		r.key_len = (uint32_t)p->key_len;
	} else if (!p->digits) {
		r.key = p->name;
		r.key_len = (uint32_t)strlen(p->name);
	}
	sbfs_tentry *te = p->te;
	int rc;
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	if (exact && p->committed) {
		rc = -EPERM; /* that offset is taken now: by this file's first record */
	} else if (exact) {
		pthread_mutex_lock(&te->wlock);
		/* an emptied topic may start anew: the store must know it is empty */
		rc = sbfs_drop_hidden_locked(fs, te, t, 1);
		if (rc == 0) {
			pthread_rwlock_rdlock(&te->alock);
			rc = fs->b->ops->append_at(t, at, &r, 1);
			pthread_rwlock_unlock(&te->alock);
		}
		pthread_mutex_unlock(&te->wlock);
		if (rc == -EINVAL)
			rc = -EPERM;
	} else {
		pthread_rwlock_rdlock(&te->alock);
		rc = fs->b->ops->append(t, &r, 1, NULL);
		pthread_rwlock_unlock(&te->alock);
	}
	if (rc == 0) {
		p->base += p->len;
		p->len = 0;
		p->dirty = 0;
		p->committed = 1;
		sbfs_notify_kick(fs);
	}
	return rc;
}

void sbfs_pending_free_all(sbfs *fs)
{
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = fs->pending;
	fs->pending = NULL;
	pthread_mutex_unlock(&fs->plock);
	while (p) {
		sbfs_pending *n = p->next;
		/* made by mknod and never opened: it counts as created and closed;
		 * held under a temporary name: its close succeeded, keep it */
		if (p->opens == 0 && !p->committed) {
			pthread_mutex_lock(&p->lock);
			int rc = pending_commit(fs, p);
			pthread_mutex_unlock(&p->lock);
			if (p->held)
				sbfs_log("unmount: %s/%s was never renamed: %s under that name",
					 p->te->name, p->name, rc ? sbfs_strerror(rc) : "appended");
		}
		if (p->opens == 0)
			pending_free(p);
		/* else an open file still points at it: the kernel releases it
		 * only if the session is still there, so let it go with the fh */
		p = n;
	}
}

void sbfs_pending_expire(sbfs *fs)
{
	int64_t now = mono_ns();
	for (;;) {
		sbfs_pending *p = NULL;
		pthread_mutex_lock(&fs->plock);
		for (sbfs_pending *q = fs->pending; q; q = q->next)
			if (q->held && q->opens == 0 && now - q->held_ns >= SBFS_HOLD_NS) {
				p = q;
				pending_unlink_locked(fs, p);
				break;
			}
		pthread_mutex_unlock(&fs->plock);
		if (!p)
			return;
		pthread_mutex_lock(&p->lock);
		int rc = pending_commit(fs, p);
		pthread_mutex_unlock(&p->lock);
		sbfs_log("%s/%s was not renamed within %d s of its close: %s under that name",
			 p->te->name, p->name, (int)(SBFS_HOLD_NS / 1000000000),
			 rc ? sbfs_strerror(rc) : "appended");
		pending_free(p);
	}
}

/* A new pending file `name` in te (create and mknod). */
static void fill_entry(sbfs *fs, sbfs_pending *p, struct fuse_entry_param *e);

static int pending_new(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int opens,
		       struct fuse_entry_param *e, sbfs_pending **out)
{
	uint32_t id;
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_ino_kind(parent, &id, NULL) != K_TOPIC)
		return -EPERM;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	if (fs->cfg->read_only)
		return -EROFS;
	int digits;
	uint64_t at = 0;
	int rc = name_check(fs, te, t, name, &digits, &at);
	if (rc)
		return rc;
	sbfs_pending *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(name))) {
		free(p);
		return -ENOMEM;
	}
	p->digits = digits;
	p->at = at;
	p->te = te;
	p->mode = mode;
	p->opens = opens;
	p->mtime_ns = now_ns();
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *q = fs->pending; q; q = q->next)
		if (q->te == te && strcmp(q->name, name) == 0) {
			pthread_mutex_unlock(&fs->plock);
			pending_free(p);
			return -EEXIST;
		}
	p->ino = sbfs_ino(0, fs->next_pending++);
	p->linked = 1;
	p->next = fs->pending;
	fs->pending = p;
	fill_entry(fs, p, e); /* before anyone else can unlink and free it */
	pthread_mutex_unlock(&fs->plock);
	*out = p;
	return 0;
}

static void fill_entry(sbfs *fs, sbfs_pending *p, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = p->ino;
	pending_stat(fs, p, &e->attr);
	e->attr_timeout = 0;
	e->entry_timeout = 0;
}

int sbfs_pending_write(sbfs *fs, sbfs_pending *p, const char *buf, size_t size, off_t off)
{
	uint32_t max = fs->b->ops->record_max(sbfs_topic_handle(fs, p->te));
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	if ((uint64_t)off < p->base || (p->digits && p->committed)) {
		rc = -EPERM; /* that part is a record already */
		goto out;
	}
	uint64_t at = (uint64_t)off - p->base;
	if (at + size > max) {
		p->failed = 1; /* a cut-off file must not become a record */
		rc = -EFBIG;
		goto out;
	}
	if (at + size > p->cap) {
		size_t ncap = p->cap ? p->cap : 4096;
		while (ncap < at + size)
			ncap *= 2;
		if (ncap > max)
			ncap = max;
		char *nb = realloc(p->buf, ncap);
		if (!nb) {
			rc = -ENOMEM;
			goto out;
		}
		p->buf = nb;
		p->cap = ncap;
	}
	if (at > p->len)
		memset(p->buf + p->len, 0, at - p->len);
	if (size) /* a write of nothing to an empty file: p->buf is NULL */
		memcpy(p->buf + at, buf, size);
	if (at + size > p->len)
		p->len = at + size;
	p->dirty = 1;
	if (!p->stamp_ns)
		p->mtime_ns = now_ns();
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}


int sbfs_pending_create(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int open,
			struct fuse_entry_param *e, sbfs_pending **out)
{
	sbfs_pending *p;
	int rc = pending_new(fs, parent, name, mode, open ? 1 : 0, e, &p);
	if (rc)
		return rc;
	*out = p;
	return 0;
}

sbfs_tentry *sbfs_pending_topic(const sbfs_pending *p)
{
	return p->te;
}

int sbfs_pending_open(sbfs *fs, fuse_ino_t ino, sbfs_pending **out)
{
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = pending_by_ino(fs, ino);
	if (p)
		p->opens++;
	pthread_mutex_unlock(&fs->plock);
	if (!p)
		return -ENOENT;
	*out = p;
	return 0;
}

int sbfs_pending_read(sbfs_pending *p, off_t off, char *buf, size_t size, size_t *n)
{
	int rc = 0;
	*n = 0;
	pthread_mutex_lock(&p->lock);
	if ((uint64_t)off < p->base) {
		rc = -EPERM; /* already appended: read the record */
	} else if ((uint64_t)off - p->base < p->len) {
		size_t k = p->len - (size_t)((uint64_t)off - p->base);
		if (k > size)
			k = size;
		memcpy(buf, p->buf + ((uint64_t)off - p->base), k);
		*n = k;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* The writer closed a file under a temporary name (plock held): hold it. */
static int hold_locked(sbfs_pending *p)
{
	if (!p->linked || !temp_name(p->name))
		return 0;
	p->held = 1;
	p->held_ns = mono_ns();
	return 1;
}

int sbfs_pending_flush(sbfs *fs, sbfs_pending *p)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	int linked = p->linked, held = hold_locked(p);
	pthread_mutex_unlock(&fs->plock);
	pthread_mutex_lock(&p->lock);
	if (linked && !held && p->dirty)
		rc = pending_commit(fs, p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void sbfs_pending_abandon(sbfs *fs, sbfs_pending *p)
{
	pthread_mutex_lock(&fs->plock);
	int last = --p->opens == 0;
	/* a held file was closed by its writer: unmount appends it */
	int keep = p->held && p->linked;
	if (last && p->linked && !keep)
		pending_unlink_locked(fs, p);
	pthread_mutex_unlock(&fs->plock);
	if (last && !keep)
		pending_free(p);
}

int sbfs_pending_release(sbfs *fs, sbfs_pending *p)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	int linked = p->linked, last = --p->opens == 0;
	int held = hold_locked(p);
	if (last && linked && !held)
		pending_unlink_locked(fs, p); /* its record is the file now */
	pthread_mutex_unlock(&fs->plock);
	if (held)
		return 0; /* it waits for its rename (or unlink) */
	pthread_mutex_lock(&p->lock);
	if (linked && !p->failed && (p->dirty || (last && !p->committed)))
		rc = pending_commit(fs, p);
	pthread_mutex_unlock(&p->lock);
	if (last)
		pending_free(p);
	return rc;
}

/*
 * rename within a topic. The source must be a file being created; a file
 * being created under the new name is replaced (unless RENAME_NOREPLACE).
 * A file already closed (held under a temporary name, or made by mknod)
 * that gets a final name is appended now, and the rename fails, leaving it
 * as it was, if that append does; one still open is appended at its close.
 */
int sbfs_pending_rename(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
			unsigned int flags)
{
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (fs->cfg->read_only)
		return -EROFS;
	int digits;
	uint64_t at = 0;
	int rc = name_check(fs, te, sbfs_topic_handle(fs, te), newname, &digits, &at);
	if (rc)
		return rc == -EEXIST ? -EPERM : rc;
	char *nn = strdup(newname);
	if (!nn)
		return -ENOMEM;
	sbfs_pending *p = NULL, *q = NULL, *pdead = NULL, *qdead = NULL;
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *x = fs->pending; x; x = x->next)
		if (x->te == te && strcmp(x->name, name) == 0)
			p = x;
		else if (x->te == te && strcmp(x->name, newname) == 0)
			q = x;
	if (!p) {
		rc = -ENOENT;
	} else if (q && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
	} else if (strcmp(name, newname) == 0) {
		rc = 0;
	} else {
		int closed = p->held || p->opens == 0;
		int commit = closed && !temp_name(newname);
		pthread_mutex_lock(&p->lock);
		char *old = p->name;
		int odigits = p->digits;
		uint64_t oat = p->at;
		p->name = nn;
		p->digits = digits;
		p->at = at;
		nn = NULL;
		if (commit) {
			rc = pending_commit(fs, p);
			if (rc) { /* as it was */
				nn = p->name;
				p->name = old;
				p->digits = odigits;
				p->at = oat;
				old = NULL;
			}
		}
		pthread_mutex_unlock(&p->lock);
		free(old);
		if (rc == 0 && q) {
			pending_unlink_locked(fs, q); /* replaced */
			if (q->opens == 0)
				qdead = q;
		}
		if (rc == 0 && commit) {
			pending_unlink_locked(fs, p); /* its record is the file now */
			if (p->opens == 0)
				pdead = p;
		} else if (rc == 0 && closed && temp_name(p->name)) {
			p->held = 1;
			p->held_ns = mono_ns();
		}
	}
	pthread_mutex_unlock(&fs->plock);
	if (qdead)
		pending_free(qdead);
	if (pdead)
		pending_free(pdead);
	free(nn);
	return rc;
}
