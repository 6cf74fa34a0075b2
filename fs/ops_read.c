/*
 * ops_read.c - read: a record file's payload, .log's stream bytes from the
 * open's base, a file being created's buffer.
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

/* h's reader memo (made by its first read), or NULL (none, or no memory:
 * the reads check what they serve themselves). */
static void *memo_of(sbfs *fs, sbfs_fh *h)
{
	void *m = atomic_load(&h->memo), *none = NULL;

	if (m || !fs->b->ops->memo_new || fs->b->ops->memo_new(&m))
		return m;
	if (!atomic_compare_exchange_strong(&h->memo, &none, m)) {
		fs->b->ops->memo_free(m); /* another read of it made one first */
		m = none;
	}
	return m;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	sbfs *fs = FS(req);
	sbfs_fh *h = sbfs_fh_of(fi);
	size_t n = 0;
	void *m;
	int rc = 0;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return sbfs_reply_err(req, -ENOMEM);
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	if (h->kind == K_PENDING)
		rc = sbfs_pending_read(h->p, off, buf, size, &n);
	else if (h->kind == K_RECORD && (m = memo_of(fs, h)))
		rc = fs->b->ops->read_m(t, m, h->offset, (uint64_t)off, buf, size, &n);
	else if (h->kind == K_RECORD)
		rc = fs->b->ops->read(t, h->offset, (uint64_t)off, buf, size, &n);
	else if (h->kind == K_LOG) {
		uint64_t pos = h->base + (uint64_t)off;
		if ((m = memo_of(fs, h)))
			rc = fs->b->ops->read_stream_m(t, m, h->view, pos, buf, size, &n);
		else
			rc = h->view ? fs->b->ops->read_view(t, h->view, pos, buf, size, &n)
				     : fs->b->ops->read_stream(t, pos, buf, size, &n);
		if (rc == -ENOENT)
			rc = -ENODATA; /* that part of the log was removed meanwhile */
	} else if (h->kind == K_SINCE)
		rc = sbfs_since_read(fs, h, (uint64_t)off, buf, size, &n);
	else
		rc = -EBADF;
	if (rc)
		sbfs_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

void sbfs_ops_read_fill(struct fuse_lowlevel_ops *ops)
{
	ops->read = op_read;
}
