/*
 * ops_attr.c - getattr, setattr and statfs (the attributes themselves are
 * attr.c's).
 */
#include "fs.h"

#include <errno.h>
#include <string.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

/* The file being created that the request's open file (fi) writes: its
 * opener's own, another than the inode's when another process was writing
 * the name at the open (pending.c), which may be a record by now; 0 if fi
 * is none or no such file. */
static fuse_ino_t own_pending(const struct fuse_file_info *fi)
{
	sbfs_fh *h = sbfs_fh_of(fi);
	return h && h->kind == K_PENDING ? sbfs_pending_ino(h->p) : 0;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	struct stat st;
	double ttl;
	sbfs_fh *h = sbfs_fh_of(fi);
	fuse_ino_t own = own_pending(fi);
	if (own && sbfs_ino_kind(ino, NULL, NULL) == K_PENDING) {
		/* asked through an open file (the kernel names the handle
		 * for some calls, not fstat's) */
		int rc = sbfs_pending_attr(fs, own, &st);
		if (rc)
			return sbfs_reply_err(req, rc);
		st.st_ino = ino;
		return (void)fuse_reply_attr(req, &st, 0);
	}
	int rc = sbfs_attr_any(fs, ino, &st, &ttl);
	if (rc)
		return sbfs_reply_err(req, rc);
	if (h && h->kind == K_LOG && sbfs_ino_kind(ino, NULL, NULL) == K_LOG) {
		/* asked through an open file (lseek SEEK_END): its own extent,
		 * so that tail -n reads the end whatever other readers pin */
		sbfs_bounds bd;
		rc = sbfs_bounds_of(fs, h->te, sbfs_topic_handle(fs, h->te), &bd);
		if (rc)
			return sbfs_reply_err(req, rc);
		uint64_t size = bd.stream_end > h->base ? bd.stream_end - h->base : 0;
		st.st_size = (off_t)size;
		st.st_blocks = (blkcnt_t)((size + 511) / 512);
	}
	fuse_reply_attr(req, &st, ttl);
}

/* Does setattr ask for what the record st already has? (records keep no
 * access time: atime is taken as set; a size is never "set") */
static int record_attr_same(const struct stat *st, const struct stat *attr, int to_set)
{
	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME_NOW))
		return 0;
	if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (st->st_mode & 07777))
		return 0;
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != st->st_uid)
		return 0;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != st->st_gid)
		return 0;
	if ((to_set & FUSE_SET_ATTR_MTIME) &&
	    (attr->st_mtim.tv_sec != st->st_mtim.tv_sec ||
	     attr->st_mtim.tv_nsec != st->st_mtim.tv_nsec))
		return 0;
	return 1;
}

/* Pending files take what cp -a sets; directories pretend (their bits
 * come from the mount's settings); a record takes what it already has
 * (rsync -a, cp -a over a restored topic) and refuses anything else;
 * .log refuses. */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	struct stat st;
	double ttl;
	int rc;
	switch (sbfs_ino_kind(ino, NULL, NULL)) {
	case K_PENDING: {
		/* through an open file: its own (another writer's of the name: pending.c) */
		fuse_ino_t own = own_pending(fi);
		if (!own)
			own = ino;
		if ((rc = sbfs_pending_setattr(fs, own, attr, to_set)) || (rc = sbfs_pending_attr(fs, own, &st)))
			return sbfs_reply_err(req, rc);
		st.st_ino = ino;
		return (void)fuse_reply_attr(req, &st, 0);
	}
	case K_ROOT:
	case K_TOPIC:
	case K_KEYSDIR:
		if (to_set & FUSE_SET_ATTR_SIZE)
			return sbfs_reply_err(req, -EISDIR);
		break;
	case K_KEY: {
		/* through a key file open for writing (ftruncate), or by its
		 * writer's process (futimens, cp -a: the kernel names no handle):
		 * the file being written's, as on a created one */
		fuse_ino_t pino = own_pending(fi);
		if (!pino && sbfs_fh_key_writer(fs, ino, fuse_req_ctx(req)->pid, &pino))
			pino = 0;
		/* opened without O_TRUNC and not written (touch): nothing to
		 * append, so the times and mode are the record's, as on
		 * TOPIC/OFFSET (only what it has: touch's "now" is EPERM) */
		if (pino && !(to_set & FUSE_SET_ATTR_SIZE) && sbfs_pending_as_record(fs, pino))
			pino = 0;
		if (pino) {
			if ((rc = sbfs_pending_setattr(fs, pino, attr, to_set)) ||
			    (rc = sbfs_pending_attr(fs, pino, &st)))
				return sbfs_reply_err(req, rc);
			st.st_ino = ino;
			return (void)fuse_reply_attr(req, &st, 0);
		}
	}
		/* otherwise a record's */
		/* fall through */
	case K_RECORD:
		rc = sbfs_attr_any(fs, ino, &st, &ttl);
		if (rc)
			return sbfs_reply_err(req, rc);
		if (!record_attr_same(&st, attr, to_set))
			return sbfs_reply_err(req, -EPERM);
		return (void)fuse_reply_attr(req, &st, ttl);
	case K_LOG:
	case K_SINCE:
	case K_SINCEDIR:
		rc = sbfs_attr_any(fs, ino, &st, &ttl);
		return sbfs_reply_err(req, rc ? rc : -EPERM);
	default:
		return sbfs_reply_err(req, -ENOENT);
	}
	rc = sbfs_attr_any(fs, ino, &st, &ttl);
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_attr(req, &st, ttl);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	sbfs *fs = FS(req);
	struct statvfs st;
	int rc = fs->b->ops->statfs(fs->b, &st);
	if (rc)
		return sbfs_reply_err(req, rc);
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

void sbfs_ops_attr_fill(struct fuse_lowlevel_ops *ops)
{
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->statfs = op_statfs;
}
