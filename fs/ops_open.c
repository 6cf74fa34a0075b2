/*
 * ops_open.c - a file's life: create and mknod (files being created are
 * pending.c's), open, flush (close), release, fsync, fallocate (refused).
 * Reads are ops_read.c's, writes ops_write.c's.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

/* A file being created in a topic, or in its .keys/ (keyed by the name). */
static int create_in(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int open,
		     struct fuse_entry_param *e, sbfs_pending **p)
{
	uint32_t id;
	sbfs_tentry *te;
	if (sbfs_ino_kind(parent, &id, NULL) != K_KEYSDIR)
		return sbfs_pending_create(fs, parent, name, mode, open, e, p);
	if (sbfs_topic_by_id(fs, id, &te, NULL))
		return -ENOENT;
	return sbfs_key_create(fs, te, name, mode, open, e, p);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	sbfs_pending *p;
	struct fuse_entry_param e;
	int rc = create_in(fs, parent, name, mode, 1, &e, &p);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_fh *h = sbfs_fh_new(fs, K_PENDING, sbfs_pending_topic(p));
	if (!h) {
		sbfs_pending_discard(fs, p);
		return sbfs_reply_err(req, -ENOMEM);
	}
	h->p = p;
	h->opener = fuse_req_ctx(req)->pid;
	if (fi->flags & O_APPEND)
		sbfs_pending_set_append(p);
	sbfs_fh_publish(fi, h);
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
	int rc = create_in(fs, parent, name, mode, 0, &e, &p);
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_entry(req, &e);
}

/*
 * A .log reader's view of the stream (backend.h) and the bounds that give
 * its base, in the view's positions: taken again if a compaction round
 * moved them between the two.
 */
static int log_view_bounds(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, int reader, void **view,
			   sbfs_bounds *bd)
{
	for (int tries = 0;; tries++) {
		void *v = NULL;
		int rc = reader && fs->b->ops->view_open ? fs->b->ops->view_open(t, &v) : 0;
		if (rc)
			return rc;
		rc = sbfs_bounds_of(fs, te, t, bd);
		if (!rc && v && !fs->b->ops->view_current(t, v) && tries < 100) {
			fs->b->ops->view_close(t, v);
			continue;
		}
		if (rc && v)
			fs->b->ops->view_close(t, v);
		else
			*view = v;
		return rc;
	}
}

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
		void *view = NULL;
		int brc = log_view_bounds(fs, te, t, acc != O_WRONLY, &view, &bd);
		if (brc)
			return sbfs_reply_err(req, brc);
		if (!(h = sbfs_fh_new(fs, K_LOG, te))) {
			if (view)
				fs->b->ops->view_close(t, view);
			return sbfs_reply_err(req, -ENOMEM);
		}
		h->view = view;
		h->writer = acc != O_RDONLY;
		h->append = !!(fi->flags & O_APPEND);
		/* readers pin where positions start; writers only append, and a
		 * long-lived appender must not keep rm'ed records on disk */
		h->base = bd.stream_start;
		h->pin_off = bd.start;
		if (acc != O_WRONLY) {
			int rc = sbfs_log_pin(te, h->base, h->pin_off);
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
	case K_SINCE: {
		if (acc != O_RDONLY || (fi->flags & O_TRUNC))
			return sbfs_reply_err(req, -EPERM);
		int rc = sbfs_since_open(fs, ino, &h);
		if (rc)
			return sbfs_reply_err(req, rc);
		fi->direct_io = 1; /* it grows as .log does */
		fi->noflush = 1;
		break;
	}
	case K_SINCEDIR:
	case K_KEYSDIR:
		return sbfs_reply_err(req, -EISDIR);
	case K_KEY: {
		int rc = sbfs_keys_open(req, ino, fi, &h);
		if (rc)
			return sbfs_reply_err(req, rc);
		break;
	}
	case K_PENDING: {
		sbfs_pending *p;
		int rc = sbfs_pending_open(fs, ino, fi->flags, &p);
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
	sbfs_fh_publish(fi, h);
	fuse_reply_open(req, fi);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	sbfs *fs = FS(req);
	sbfs_fh *h = sbfs_fh_of(fi);
	int rc = 0;
	/*
	 * Only the opener's close counts: in `(date; hostname) > t/f` each
	 * child closes its inherited copy first, and the subshell's close is
	 * the end of the file. Closes by others are left to the release.
	 */
	int mine = sbfs_fh_is_opener(h, fuse_req_ctx(req)->pid);
	if (mine && h->kind == K_LOG && h->writer) {
		sbfs_pending_settle(fs, h->te); /* its last line after files closed before */
		pthread_mutex_lock(&h->lock);
		rc = sbfs_log_close(fs, h);
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
	sbfs_fh *h = sbfs_fh_of(fi);
	int rc = 0;
	if (h->kind == K_PENDING) {
		int ms = fs->cfg->test_release_delay_ms;
		if (fs->cfg->test_empty_release_delay_ms > 0 && sbfs_pending_closed_unwritten(h->p))
			ms += fs->cfg->test_empty_release_delay_ms;
		if (ms > 0)
			nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
	}
	if (h->kind == K_LOG && h->writer)
		rc = sbfs_log_flush_partial(fs, h);
	else if (h->kind == K_PENDING)
		rc = sbfs_pending_release(fs, h->p);
	if (h->kind == K_SINCE)
		sbfs_since_release(fs, h);
	else if (h->pinned) {
		sbfs_log_unpin(h->te, h->base, h->pin_off);
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
	sbfs_fh *h = sbfs_fh_of(fi);
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

void sbfs_ops_open_fill(struct fuse_lowlevel_ops *ops)
{
	ops->create = op_create;
	ops->mknod = op_mknod;
	ops->open = op_open;
	ops->flush = op_flush;
	ops->release = op_release;
	ops->fsync = op_fsync;
	ops->fallocate = op_fallocate;
}
