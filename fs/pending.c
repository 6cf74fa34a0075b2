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
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XA_KEY "user.streambus.key"

struct sbfs_pending {
	struct sbfs_pending *next;   /* guarded by sbfs.plock */
	int linked;                  /* guarded by sbfs.plock: in the list */
	int opens;                   /* guarded by sbfs.plock */
	fuse_ino_t ino;
	sbfs_tentry *te;
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
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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
	pthread_mutex_lock(&p->lock);
	if (to_set & FUSE_SET_ATTR_MODE)
		p->mode = attr->st_mode;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
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

/* cp --preserve=xattr restores a record's key; other names are accepted
 * and dropped, so that cp -a does not complain. */
int sbfs_pending_setxattr(sbfs *fs, fuse_ino_t ino, const char *name, const char *value,
			  size_t size)
{
	if (strncmp(name, "user.", 5) != 0)
		return -ENOTSUP;
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = pending_by_ino(fs, ino);
	if (!p)
		rc = -ENOENT;
	else if (strcmp(name, XA_KEY) == 0) {
		if (size > 65535) {
			rc = -E2BIG;
		} else {
			char *k = malloc(size ? size : 1);
			if (!k) {
				rc = -ENOMEM;
			} else {
				memcpy(k, value, size);
				pthread_mutex_lock(&p->lock);
				free(p->key);
				p->key = k;
				p->key_len = size;
				p->key_set = 1;
				pthread_mutex_unlock(&p->lock);
			}
		}
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
	if (p->digits && p->committed) {
		rc = -EPERM; /* that offset is taken now: by this file's first record */
	} else if (p->digits) {
		pthread_mutex_lock(&te->wlock);
		/* an emptied topic may start anew: the store must know it is empty */
		rc = sbfs_drop_hidden_locked(fs, te, t, 1);
		if (rc == 0) {
			pthread_rwlock_rdlock(&te->alock);
			rc = fs->b->ops->append_at(t, p->at, &r, 1);
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
		/* made by mknod and never opened: it counts as created and closed */
		if (p->opens == 0 && !p->committed) {
			pthread_mutex_lock(&p->lock);
			pending_commit(fs, p);
			pthread_mutex_unlock(&p->lock);
		}
		if (p->opens == 0)
			pending_free(p);
		/* else an open file still points at it: the kernel releases it
		 * only if the session is still there, so let it go with the fh */
		p = n;
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
	if (strcmp(name, ".log") == 0)
		return -EEXIST;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	sbfs_pending *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(name))) {
		free(p);
		return -ENOMEM;
	}
	size_t nlen = strlen(name);
	if (strspn(name, "0123456789") == nlen && sbfs_parse_offset(name, &p->at) != 0) {
		free(p->name);
		free(p);
		return -EPERM; /* digits, but no offset there can ever be */
	}
	if (sbfs_parse_offset(name, &p->at) == 0) {
		sbfs_bounds bd;
		sbfs_bounds_of(fs, te, t, &bd);
		p->digits = 1;
		if (p->at > SBFS_MAX_OFFSET ||
		    !(p->at == bd.next || (bd.start == bd.next && p->at >= bd.next))) {
			free(p->name);
			free(p);
			return -EPERM; /* only the next offset (or any, in an empty topic) */
		}
	}
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

int sbfs_pending_flush(sbfs *fs, sbfs_pending *p)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	int linked = p->linked;
	pthread_mutex_unlock(&fs->plock);
	pthread_mutex_lock(&p->lock);
	if (linked && p->dirty)
		rc = pending_commit(fs, p);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void sbfs_pending_abandon(sbfs *fs, sbfs_pending *p)
{
	pthread_mutex_lock(&fs->plock);
	int last = --p->opens == 0;
	if (last && p->linked)
		pending_unlink_locked(fs, p);
	pthread_mutex_unlock(&fs->plock);
	if (last)
		pending_free(p);
}

int sbfs_pending_release(sbfs *fs, sbfs_pending *p)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	int linked = p->linked, last = --p->opens == 0;
	if (last && linked)
		pending_unlink_locked(fs, p); /* its record is the file now */
	pthread_mutex_unlock(&fs->plock);
	pthread_mutex_lock(&p->lock);
	if (linked && !p->failed && (p->dirty || (last && !p->committed)))
		rc = pending_commit(fs, p);
	pthread_mutex_unlock(&p->lock);
	if (last)
		pending_free(p);
	return rc;
}
