/*
 * ops_write.c - file I/O: open, read, write, flush, release, fsync, and
 * files being created (a topic's new names, each appended as one record).
 *
 * Lines written to .log become one record each; all complete lines of one
 * write() go in as one append under the topic's lock, so no other writer's
 * bytes land between them. A trailing partial line waits in the open file
 * for the rest and is appended at close (flush), on its own.
 *
 * A created file is buffered in memory and appended as one record, keyed by
 * its name, when it is closed after being written (flush), or on release if
 * it never was (touch). What is written after such a close goes into a next
 * record. A name of digits appends at that offset instead (no key).
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XA_KEY "user.streambus.key"

typedef struct sbfs_pending {
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
} sbfs_pending;

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }
static sbfs_fh *FH(struct fuse_file_info *fi) { return (sbfs_fh *)(uintptr_t)fi->fh; }

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sbfs_fh_free(sbfs_fh *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h->part);
	free(h);
}

static sbfs_fh *fh_new(enum sbfs_kind k, sbfs_tentry *te)
{
	sbfs_fh *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->kind = k;
	h->te = te;
	pthread_mutex_init(&h->lock, NULL);
	return h;
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
	pthread_mutex_lock(&te->wlock);
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	if (p->digits && p->committed)
		rc = -EPERM; /* that offset is taken now: by this file's first record */
	else if (p->digits) {
		/* an emptied topic may start anew: the store must know it is empty */
		rc = sbfs_drop_hidden_locked(fs, te, t);
		if (rc == 0)
			rc = fs->b->ops->append_at(t, p->at, &r, 1);
		if (rc == -EINVAL)
			rc = -EPERM;
	} else {
		rc = fs->b->ops->append(t, &r, 1, NULL);
	}
	pthread_mutex_unlock(&te->wlock);
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
static int pending_new(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int opens,
		       sbfs_pending **out)
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

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	sbfs_pending *p;
	int rc = pending_new(fs, parent, name, mode, 1, &p);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_fh *h = fh_new(K_PENDING, p->te);
	if (!h) {
		sbfs_pending_unlink(fs, p->te, name);
		return sbfs_reply_err(req, -ENOMEM);
	}
	h->p = p;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	struct fuse_entry_param e;
	fill_entry(fs, p, &e);
	fuse_reply_create(req, &e, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	(void)rdev;
	sbfs *fs = FS(req);
	if (!S_ISREG(mode))
		return sbfs_reply_err(req, -EPERM);
	sbfs_pending *p;
	int rc = pending_new(fs, parent, name, mode, 0, &p);
	if (rc)
		return sbfs_reply_err(req, rc);
	struct fuse_entry_param e;
	fill_entry(fs, p, &e);
	fuse_reply_entry(req, &e);
}

/* ---- open / read -------------------------------------------------------------- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	uint32_t id;
	uint64_t off = 0;
	sbfs_tentry *te = NULL;
	sbfs_topic *t = NULL;
	int acc = fi->flags & O_ACCMODE;
	enum sbfs_kind k = sbfs_ino_kind(ino, &id, &off);
	sbfs_fh *h;
	sbfs_bounds bd;

	switch (k) {
	case K_ROOT:
	case K_TOPIC:
		return sbfs_reply_err(req, -EISDIR);
	case K_RECORD: {
		if (sbfs_topic_by_id(fs, id, &te, &t))
			return sbfs_reply_err(req, -ENOENT);
		/* refused here: root passes the permission bits */
		if (acc != O_RDONLY || (fi->flags & O_TRUNC))
			return sbfs_reply_err(req, -EPERM);
		sbfs_recinfo ri;
		int rc = sbfs_stat_visible(fs, te, t, off, &ri);
		if (rc)
			return sbfs_reply_err(req, rc);
		if (!(h = fh_new(K_RECORD, te)))
			return sbfs_reply_err(req, -ENOMEM);
		h->offset = off;
		fi->keep_cache = 1; /* a record never changes */
		break;
	}
	case K_LOG:
		if (sbfs_topic_by_id(fs, id, &te, &t))
			return sbfs_reply_err(req, -ENOENT);
		if (acc != O_RDONLY && fs->cfg->read_only)
			return sbfs_reply_err(req, -EROFS);
		if (!(h = fh_new(K_LOG, te)))
			return sbfs_reply_err(req, -ENOMEM);
		sbfs_bounds_of(fs, te, t, &bd);
		h->base = bd.stream_start;
		h->writer = acc != O_RDONLY;
		h->append = !!(fi->flags & O_APPEND);
		/* `>` truncates nothing: its writes from 0 go to the end */
		h->wpos = (fi->flags & O_TRUNC) ? 0 : bd.stream_end - bd.stream_start;
		/* positions are relative to this open's start: no shared page cache */
		fi->direct_io = 1;
		break;
	case K_PENDING: {
		pthread_mutex_lock(&fs->plock);
		sbfs_pending *p = pending_by_ino(fs, ino);
		if (p)
			p->opens++;
		pthread_mutex_unlock(&fs->plock);
		if (!p)
			return sbfs_reply_err(req, -ENOENT);
		if (!(h = fh_new(K_PENDING, p->te))) {
			pthread_mutex_lock(&fs->plock);
			p->opens--;
			pthread_mutex_unlock(&fs->plock);
			return sbfs_reply_err(req, -ENOMEM);
		}
		h->p = p;
		fi->direct_io = 1;
		break;
	}
	default:
		return sbfs_reply_err(req, -ENOENT);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	sbfs *fs = FS(req);
	sbfs_fh *h = FH(fi);
	size_t n = 0;
	int rc = 0;
	if (h->kind == K_PENDING) {
		sbfs_pending *p = h->p;
		pthread_mutex_lock(&p->lock);
		if ((uint64_t)off < p->base)
			rc = -EPERM; /* already appended: read the record */
		else if ((uint64_t)off - p->base < p->len) {
			n = p->len - (size_t)((uint64_t)off - p->base);
			if (n > size)
				n = size;
			fuse_reply_buf(req, p->buf + (off - (off_t)p->base), n);
		} else {
			fuse_reply_buf(req, NULL, 0);
		}
		pthread_mutex_unlock(&p->lock);
		if (rc)
			sbfs_reply_err(req, rc);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return sbfs_reply_err(req, -ENOMEM);
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	if (h->kind == K_RECORD)
		rc = fs->b->ops->read(t, h->offset, (uint64_t)off, buf, size, &n);
	else if (h->kind == K_LOG) {
		rc = fs->b->ops->read_stream(t, h->base + (uint64_t)off, buf, size, &n);
		if (rc == -ENOENT)
			rc = -ENODATA; /* that part of the log was removed meanwhile */
	} else
		rc = -EBADF;
	if (rc)
		sbfs_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

/* ---- writing .log -------------------------------------------------------------- */

/* Append recs[0..n) as few batches as the backend allows (te->wlock held). */
static int append_lines(sbfs *fs, sbfs_topic *t, const sbfs_rec *recs, size_t n)
{
	size_t max = fs->b->ops->batch_max(t), ovh = fs->b->ops->record_overhead(t);
	size_t i = 0;
	while (i < n) {
		size_t j = i, bytes = 0;
		while (j < n && (j == i || bytes + ovh + recs[j].value_len <= max)) {
			bytes += ovh + recs[j].value_len;
			j++;
		}
		int rc = fs->b->ops->append(t, recs + i, j - i, NULL);
		if (rc)
			return rc;
		i = j;
	}
	return 0;
}

/* Append the write's complete lines (h->lock held). 0 or -errno; on failure
 * nothing of it was appended and h is unchanged. */
static int log_write(sbfs *fs, sbfs_fh *h, const char *buf, size_t size)
{
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	uint32_t max = fs->b->ops->record_max(t);
	if (h->broken) {
		/* the rest of a line that was too long: dropped up to its end */
		const char *nl = memchr(buf, '\n', size);
		if (!nl)
			return -EFBIG;
		h->broken = 0;
		size -= (size_t)(nl + 1 - buf);
		buf = nl + 1;
	}
	const char *last = memrchr(buf, '\n', size);
	size_t tail = last ? size - (size_t)(last + 1 - buf) : size;
	size_t nlines = 0;
	for (const char *p = buf; last && p <= last; nlines++)
		p = (const char *)memchr(p, '\n', (size_t)(last + 1 - p)) + 1;
	if ((!last && h->plen + size > max) || (last && tail > max)) {
		/* that line can never be a record: drop it, and its rest to come */
		h->plen = 0;
		h->broken = 1;
		return -EFBIG;
	}
	/* grow the partial buffer: it holds the first line joined to it, then the tail */
	const char *first_nl = last ? memchr(buf, '\n', size) : NULL;
	size_t first_len = first_nl ? (size_t)(first_nl + 1 - buf) : size;
	size_t need = h->plen + first_len;
	if (need < h->plen + tail)
		need = h->plen + tail;
	if (need > h->pcap) {
		char *np = realloc(h->part, need);
		if (!np)
			return -ENOMEM;
		h->part = np;
		h->pcap = need;
	}
	if (!last) {
		memcpy(h->part + h->plen, buf, size);
		h->plen += size;
		return 0;
	}
	sbfs_rec one, *recs = nlines <= 1 ? &one : calloc(nlines, sizeof *recs);
	if (!recs)
		return -ENOMEM;
	int rc = 0;
	size_t k = 0;
	const char *p = buf;
	while (p <= last) {
		const char *nl = memchr(p, '\n', (size_t)(last + 1 - p));
		size_t len = (size_t)(nl + 1 - p);
		if (k == 0 && h->plen) {
			if (h->plen + len > max) {
				h->plen = 0; /* that whole line is lost */
				rc = -EFBIG;
				goto out;
			}
			memcpy(h->part + h->plen, p, len);
			recs[k] = (sbfs_rec){ .value = h->part, .value_len = (uint32_t)(h->plen + len) };
		} else {
			if (len > max) {
				rc = -EFBIG;
				goto out;
			}
			recs[k] = (sbfs_rec){ .value = p, .value_len = (uint32_t)len };
		}
		k++;
		p = nl + 1;
	}
	pthread_mutex_lock(&h->te->wlock);
	rc = append_lines(fs, t, recs, k);
	pthread_mutex_unlock(&h->te->wlock);
	if (rc == 0) {
		memcpy(h->part, last + 1, tail);
		h->plen = tail;
		sbfs_notify_kick(fs);
	}
out:
	if (recs != &one)
		free(recs);
	return rc;
}

int sbfs_log_flush_partial(sbfs *fs, sbfs_fh *h)
{
	if (!h->plen)
		return 0;
	sbfs_rec r = { .value = h->part, .value_len = (uint32_t)h->plen };
	pthread_mutex_lock(&h->te->wlock);
	int rc = fs->b->ops->append(sbfs_topic_handle(fs, h->te), &r, 1, NULL);
	pthread_mutex_unlock(&h->te->wlock);
	if (rc == 0) {
		h->plen = 0;
		sbfs_notify_kick(fs);
	}
	return rc;
}

static int pending_write(sbfs *fs, sbfs_pending *p, const char *buf, size_t size, off_t off)
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

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	sbfs *fs = FS(req);
	sbfs_fh *h = FH(fi);
	int rc;
	if (h->kind == K_PENDING) {
		rc = pending_write(fs, h->p, buf, size, off);
	} else if (h->kind == K_LOG) {
		pthread_mutex_lock(&h->lock);
		sbfs_bounds bd;
		sbfs_bounds_of(fs, h->te, sbfs_topic_handle(fs, h->te), &bd);
		uint64_t end = bd.stream_end - bd.stream_start;
		if (!h->append && (uint64_t)off != h->wpos && (uint64_t)off != end)
			rc = -EPERM; /* into the middle of the log */
		else
			rc = log_write(fs, h, buf, size);
		if (rc == 0)
			h->wpos = (uint64_t)off + size;
		pthread_mutex_unlock(&h->lock);
	} else {
		rc = -EPERM;
	}
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_write(req, size);
}

/* ---- close ---------------------------------------------------------------------- */

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	sbfs *fs = FS(req);
	sbfs_fh *h = FH(fi);
	int rc = 0;
	if (h->kind == K_LOG && h->writer) {
		pthread_mutex_lock(&h->lock);
		rc = sbfs_log_flush_partial(fs, h);
		pthread_mutex_unlock(&h->lock);
	} else if (h->kind == K_PENDING) {
		sbfs_pending *p = h->p;
		pthread_mutex_lock(&fs->plock);
		int linked = p->linked;
		pthread_mutex_unlock(&fs->plock);
		pthread_mutex_lock(&p->lock);
		if (linked && p->dirty)
			rc = pending_commit(fs, p);
		pthread_mutex_unlock(&p->lock);
	}
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	sbfs *fs = FS(req);
	sbfs_fh *h = FH(fi);
	int rc = 0;
	if (h->kind == K_LOG && h->writer) {
		rc = sbfs_log_flush_partial(fs, h);
	} else if (h->kind == K_PENDING) {
		sbfs_pending *p = h->p;
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
	}
	if (rc)
		sbfs_log("close of a file in %s: record lost: %s", h->te->name,
			 sbfs_strerror(rc));
	sbfs_fh_free(h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync;
	sbfs *fs = FS(req);
	sbfs_fh *h = FH(fi);
	int rc = h->te ? fs->b->ops->sync(sbfs_topic_handle(fs, h->te)) : 0;
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	sbfs_reply_err(req, -EOPNOTSUPP);
}

void sbfs_ops_write_fill(struct fuse_lowlevel_ops *ops)
{
	ops->create = op_create;
	ops->mknod = op_mknod;
	ops->open = op_open;
	ops->read = op_read;
	ops->write = op_write;
	ops->flush = op_flush;
	ops->release = op_release;
	ops->fsync = op_fsync;
	ops->fallocate = op_fallocate;
}
