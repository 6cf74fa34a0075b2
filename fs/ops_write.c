/*
 * ops_write.c - file I/O: create, open, read, write, flush, release, fsync.
 * Files being created are pending.c's.
 *
 * Lines written to .log become one record each; all complete lines of one
 * write() go in as one append under the topic's lock, so no other writer's
 * bytes land between them. A trailing partial line waits in the open file
 * for the rest and is appended at close (flush), on its own. A line over
 * max_record_bytes fails with EFBIG and is dropped whole, rest included.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }
static sbfs_fh *FH(struct fuse_file_info *fi) { return (sbfs_fh *)(uintptr_t)fi->fh; }

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	sbfs_pending *p;
	struct fuse_entry_param e;
	int rc = sbfs_pending_create(fs, parent, name, mode, 1, &e, &p);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_fh *h = sbfs_fh_new(fs, K_PENDING, sbfs_pending_topic(p));
	if (!h) {
		sbfs_pending_unlink(fs, sbfs_pending_topic(p), name);
		sbfs_pending_release(fs, p);
		return sbfs_reply_err(req, -ENOMEM);
	}
	h->p = p;
	h->opener = fuse_req_ctx(req)->pid;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
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
	struct fuse_entry_param e;
	int rc = sbfs_pending_create(fs, parent, name, mode, 0, &e, &p);
	if (rc)
		return sbfs_reply_err(req, rc);
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
		if (!(h = sbfs_fh_new(fs, K_RECORD, te)))
			return sbfs_reply_err(req, -ENOMEM);
		h->offset = off;
		fi->keep_cache = 1; /* a record never changes */
		fi->noflush = 1;    /* nothing to do at close: one request less */
		break;
	}
	case K_LOG:
		if (sbfs_topic_by_id(fs, id, &te, &t))
			return sbfs_reply_err(req, -ENOENT);
		if (acc != O_RDONLY && fs->cfg->read_only)
			return sbfs_reply_err(req, -EROFS);
		if (!(h = sbfs_fh_new(fs, K_LOG, te)))
			return sbfs_reply_err(req, -ENOMEM);
		sbfs_bounds_of(fs, te, t, &bd);
		h->writer = acc != O_RDONLY;
		h->append = !!(fi->flags & O_APPEND);
		/* readers pin where positions start; writers only append, and a
		 * long-lived appender must not keep rm'ed records on disk */
		h->base = bd.stream_start;
		if (acc != O_WRONLY) {
			int rc = sbfs_log_pin(te, &bd);
			if (rc) {
				sbfs_fh_free(fs, h);
				return sbfs_reply_err(req, rc);
			}
			h->pinned = 1;
		}
		/* `>` truncates nothing: its writes from 0 go to the end */
		h->wpos = (fi->flags & O_TRUNC) ? 0 : bd.stream_end - h->base;
		/* positions are relative to this open's start: no shared page cache */
		fi->direct_io = 1;
		fi->noflush = acc == O_RDONLY;
		break;
	case K_PENDING: {
		sbfs_pending *p;
		int rc = sbfs_pending_open(fs, ino, &p);
		if (rc)
			return sbfs_reply_err(req, rc);
		if (!(h = sbfs_fh_new(fs, K_PENDING, sbfs_pending_topic(p)))) {
			sbfs_pending_release(fs, p);
			return sbfs_reply_err(req, -ENOMEM);
		}
		h->p = p;
		fi->direct_io = 1;
		break;
	}
	default:
		return sbfs_reply_err(req, -ENOENT);
	}
	h->opener = fuse_req_ctx(req)->pid;
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
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return sbfs_reply_err(req, -ENOMEM);
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	if (h->kind == K_PENDING)
		rc = sbfs_pending_read(h->p, off, buf, size, &n);
	else if (h->kind == K_RECORD)
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

/* Append recs[0..n) in as few batches as the backend allows, none of
 * another writer's records between them. */
static int append_lines(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, const sbfs_rec *recs,
			size_t n)
{
	size_t max = fs->b->ops->batch_max(t);
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += fs->b->ops->record_size(t, &recs[i]);
	if (n == 1 || total <= max) {
		pthread_rwlock_rdlock(&te->alock);
		int rc = fs->b->ops->append(t, recs, n, NULL);
		pthread_rwlock_unlock(&te->alock);
		return rc;
	}
	int rc = 0;
	pthread_rwlock_wrlock(&te->alock);
	for (size_t i = 0; i < n && rc == 0;) {
		size_t j = i, bytes = 0;
		while (j < n && (j == i || bytes + fs->b->ops->record_size(t, &recs[j]) <= max)) {
			bytes += fs->b->ops->record_size(t, &recs[j]);
			j++;
		}
		rc = fs->b->ops->append(t, recs + i, j - i, NULL);
		i = j;
	}
	pthread_rwlock_unlock(&te->alock);
	return rc;
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
		if (size) /* nothing written yet: h->part is NULL */
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
	rc = append_lines(fs, h->te, t, recs, k);
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
	pthread_rwlock_rdlock(&h->te->alock);
	int rc = fs->b->ops->append(sbfs_topic_handle(fs, h->te), &r, 1, NULL);
	pthread_rwlock_unlock(&h->te->alock);
	if (rc == 0) {
		h->plen = 0;
		sbfs_notify_kick(fs);
	}
	return rc;
}

int sbfs_fh_write(sbfs *fs, sbfs_fh *h, const char *buf, size_t size, off_t off)
{
	int rc;
	if (h->kind == K_PENDING) {
		rc = sbfs_pending_write(fs, h->p, buf, size, off);
	} else if (h->kind == K_LOG) {
		pthread_mutex_lock(&h->lock);
		sbfs_bounds bd;
		sbfs_bounds_of(fs, h->te, sbfs_topic_handle(fs, h->te), &bd);
		uint64_t end = bd.stream_end - h->base;
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
	return rc;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	int rc = sbfs_fh_write(FS(req), FH(fi), buf, size, off);
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
	/*
	 * Only the opener's close counts: in `(date; hostname) > t/f` each
	 * child closes its inherited copy first, and the subshell's close is
	 * the end of the file. Closes by others are left to the release.
	 */
	int mine = sbfs_fh_is_opener(h, fuse_req_ctx(req)->pid);
	if (mine && h->kind == K_LOG && h->writer) {
		pthread_mutex_lock(&h->lock);
		rc = sbfs_log_flush_partial(fs, h);
		pthread_mutex_unlock(&h->lock);
	} else if (mine && h->kind == K_PENDING) {
		rc = sbfs_pending_flush(fs, h->p);
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
	if (h->kind == K_LOG && h->writer)
		rc = sbfs_log_flush_partial(fs, h);
	else if (h->kind == K_PENDING)
		rc = sbfs_pending_release(fs, h->p);
	if (h->pinned) {
		sbfs_log_unpin(h->te, h->base);
		sbfs_notify_kick(fs); /* the size may shrink to the new head now */
	}
	if (rc)
		sbfs_log("close of a file in %s: record lost: %s", h->te->name,
			 sbfs_strerror(rc));
	sbfs_fh_free(fs, h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync;
	sbfs *fs = FS(req);
	sbfs_fh *h = FH(fi);
	int rc = 0;
	if (h->te) {
		/* appends, and rm'ed records no open reader still covers */
		rc = sbfs_drop_hidden(fs, h->te, 0);
		if (rc == 0)
			rc = fs->b->ops->sync(sbfs_topic_handle(fs, h->te));
	}
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
