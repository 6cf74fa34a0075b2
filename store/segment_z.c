/*
 * segment_z.c - segments kept compressed (format.h, "Compressed segment";
 * zseg.h): opening one as a segment, writing one back plain (a cut, or one
 * that must become the log's active segment), the stream position of a
 * record in one. Compressing is log_compress.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"
#include "segment_impl.h"

/* Write blocks [0, nblocks) back as a plain file in the segment's place
 * (temp file, fdatasync, rename, directory fsync). */
static int z_write_plain(sb_segment *s, uint32_t nblocks, uint32_t *bad)
{
	const sb_io *io = s->p->io;
	char tmp[PATH_MAX];
	uint64_t len;
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.plain.tmp", s->seg_path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = io->open(io->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fd;
	rc = sb_zseg_write_plain(s->z, nblocks, io, fd, &len, bad);
	if (!rc)
		rc = io->fdatasync(io->ctx, fd);
	int rc2 = io->close(io->ctx, fd);
	if (!rc)
		rc = rc2;
	if (!rc)
		rc = io->rename(io->ctx, tmp, s->seg_path);
	if (rc) {
		io->unlink(io->ctx, tmp);
		return rc;
	}
	return sb_fsync_dir(io, s->p->dir);
}

/* The log is cut before block `bad` of a compressed segment. */
static void z_set_damage(sb_segment *s, uint32_t bad)
{
	s->damage = SB_REC_BAD;
	s->zbad = bad;
	atomic_store(&s->next, sb_zseg_block_offset(s->z, bad));
	atomic_store(&s->stream_end, sb_zseg_block_stream(s->z, bad));
}

/* Open the compressed segment in s->fd (see sb_segment_open). 1: it was
 * written back plain, to be opened again. */
int sb_seg_zopen(sb_segment *s, uint64_t size, int flags, int *changed)
{
	const sb_seg_params *p = s->p;
	uint32_t nb, bad;
	int rc;

	/* The log's cache, made now if this is its first compressed segment
	 * ([compress_mu, or the open]: sb_seg_params.zc). */
	if (p->zc && !*p->zc && (rc = sb_zcache_new(p->zc)))
		return rc;
	if ((rc = sb_zseg_open(p->io, s->fd, size, s->base, p->zc ? *p->zc : NULL, &s->z)))
		return rc;
	s->base_stream = s->file_stream = sb_zseg_base_stream(s->z);
	s->file_size = s->alloc = size;
	s->idx_valid = 1;
	atomic_init(&s->len, size);
	atomic_init(&s->next, sb_zseg_next(s->z));
	atomic_init(&s->stream_end, sb_zseg_stream_end(s->z));
	atomic_init(&s->first_ts, sb_zseg_first_ts(s->z));
	atomic_init(&s->max_ts, sb_zseg_max_ts(s->z));
	nb = bad = sb_zseg_blocks(s->z);
	for (uint32_t i = 0; (flags & SB_SEG_CHECK_ALL) && i < nb; i++) {
		if ((rc = sb_zseg_check_block(s->z, i))) {
			if (rc != SB_ECORRUPT)
				return rc;
			bad = i;
			break;
		}
	}
	if (!p->read_only && (flags & SB_SEG_ACTIVE) && bad == nb) {
		/* The log's last segment must take appends: plain again. */
		rc = z_write_plain(s, nb, &bad);
		if (!rc)
			return 1;
		if (rc != SB_ECORRUPT)
			return rc;
	}
	if (bad < nb)
		z_set_damage(s, bad);
	/* An index file left by a crash after the swap's rename is stale. */
	if (!p->read_only && p->io->unlink(p->io->ctx, s->idx_path) == 0)
		*changed = 1;
	return 0;
}

/* sb_segment_cut of a compressed segment: the blocks before the damage
 * are written back plain and the segment becomes that (sealed) file. */
int sb_seg_zcut(sb_segment *s, int quiet)
{
	sb_segment *t;
	int ch = 0, rc;

	if (!quiet)
		sb_seg_report(s->p, "%s: damaged compressed block at byte %llu; log cut at offset %llu",
		       strrchr(s->seg_path, '/') + 1, (unsigned long long)sb_zseg_block_pos(s->z, s->zbad),
		       (unsigned long long)atomic_load(&s->next));
	if (s->p->read_only) {
		s->damage = 0;
		return 0;
	}
	if ((rc = z_write_plain(s, s->zbad, NULL)))
		return rc;
	if ((rc = sb_segment_open(s->p, s->base, SB_SEG_QUIET, &ch, &t)))
		return rc;
	/* The caller holds s: it becomes the plain one. */
	sb_segment tmp;
	memcpy(&tmp, s, sizeof(tmp));
	memcpy(s, t, sizeof(tmp));
	memcpy(t, &tmp, sizeof(tmp));
	atomic_store(&s->prior_max, atomic_load(&t->prior_max)); /* the log's, not the file's */
	sb_seg_free(t);
	s->idx_dirty = 1;
	return 0;
}

int sb_seg_zstream_of(sb_segment *s, uint64_t offset, uint64_t *stream, uint64_t *lower)
{
	uint32_t i = sb_zseg_block_of(s->z, offset, 0);
	sb_zpin pin;
	sb_zrec r;
	uint64_t bad;

	*lower = sb_zseg_block_stream(s->z, i);
	int rc = sb_zseg_get(s->z, offset, 0, &pin, &r, &bad);
	if (rc)
		return rc == -ENOENT ? SB_ECORRUPT : rc;
	sb_zseg_unpin(s->z, &pin);
	*stream = r.stream;
	return 0;
}
