/*
 * ops_write.c - write: lines through .log (files being created are
 * pending.c's).
 *
 * Lines written to .log become one record each; all complete lines of one
 * write() go in as one append under the topic's lock, so no other writer's
 * bytes land between them. A trailing partial line waits in the open file
 * for the rest and is appended at close (flush), on its own. A line over
 * max_record_bytes fails with EFBIG and is dropped whole, rest included;
 * when an earlier write had accepted some of it (a write(2) over what one
 * request carries, split by the kernel), the request that ends it is taken
 * through its newline, unappended, with a short count (the caller sends
 * what follows again: never the line's end, which would make a record of
 * its own), and the close fails with EFBIG.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

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

/* Append the write's complete lines (h->lock held); *took: the bytes taken
 * (size, or fewer when a line over the limit ended in it: see above). 0 or
 * -errno; on failure nothing of it was appended and h is unchanged. */
static int log_write(sbfs *fs, sbfs_fh *h, const char *buf, size_t size, size_t *took)
{
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	uint32_t max = fs->b->ops->record_max(t);
	size_t skipped = 0;
	*took = size;
	if (h->broken) {
		/* the rest of a line that was too long: dropped up to its end */
		const char *nl = memchr(buf, '\n', size);
		if (!nl)
			return -EFBIG;
		h->broken = 0;
		skipped = (size_t)(nl + 1 - buf);
		size -= skipped;
		buf = nl + 1;
	}
	const char *last = memrchr(buf, '\n', size);
	size_t tail = last ? size - (size_t)(last + 1 - buf) : size;
	size_t nlines = 0;
	for (const char *p = buf; last && p <= last; nlines++)
		p = (const char *)memchr(p, '\n', (size_t)(last + 1 - p)) + 1;
	if ((!last && h->plen + size > max) || (last && tail > max)) {
		/* that line can never be a record: drop it, and its rest to come */
		h->lost |= h->plen > 0;
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
				/* that whole line is lost, its end taken here */
				h->lost = 1;
				h->plen = 0;
				*took = skipped + len;
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
	int lost = h->lost; /* said once: at the close (flush), or else the release */
	h->lost = 0;
	if (!h->plen)
		return lost ? -EFBIG : 0;
	sbfs_rec r = { .value = h->part, .value_len = (uint32_t)h->plen };
	pthread_rwlock_rdlock(&h->te->alock);
	int rc = fs->b->ops->append(sbfs_topic_handle(fs, h->te), &r, 1, NULL);
	pthread_rwlock_unlock(&h->te->alock);
	if (rc == 0) {
		h->plen = 0;
		sbfs_notify_kick(fs);
	}
	return rc ? rc : lost ? -EFBIG : 0;
}

int sbfs_log_close(sbfs *fs, sbfs_fh *h)
{
	int rc = sbfs_log_flush_partial(fs, h);
	if (rc && h->plen) {
		/* the close is told; a try at the release would append what it
		 * said failed, a later write of a copy the rest of a line cut */
		h->plen = 0;
		h->dead = rc;
	}
	return rc;
}

int sbfs_fh_write(sbfs *fs, sbfs_fh *h, const char *buf, size_t size, off_t off, size_t *took)
{
	int rc;
	*took = size;
	if (h->kind == K_PENDING) {
		rc = sbfs_pending_write(fs, h->p, buf, size, off);
	} else if (h->kind == K_LOG) {
		sbfs_pending_settle(fs, h->te); /* files closed before come first */
		pthread_mutex_lock(&h->lock);
		sbfs_bounds bd;
		rc = sbfs_bounds_of(fs, h->te, sbfs_topic_handle(fs, h->te), &bd);
		uint64_t end = bd.stream_end - h->base;
		if (rc)
			; /* the backend cannot tell where the end is */
		else if (h->dead)
			rc = h->dead; /* its close failed (sbfs_log_close) */
		else if (!h->append && (uint64_t)off != h->wpos && (uint64_t)off != end)
			rc = -EPERM; /* into the middle of the log */
		else
			rc = log_write(fs, h, buf, size, took);
		if (rc == 0)
			h->wpos = (uint64_t)off + *took;
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
	size_t took;
	int rc = sbfs_fh_write(FS(req), sbfs_fh_of(fi), buf, size, off, &took);
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_write(req, took);
}

void sbfs_ops_write_fill(struct fuse_lowlevel_ops *ops)
{
	ops->write = op_write;
}
