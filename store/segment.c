/*
 * segment.c - one segment file: create, append, seal, close, remove
 * (opening and checking one: segment_open.c; locating records and copying
 * their bytes out: segment_read.c). The format is in format.h.
 *
 * Appending: with io->mmap_writes the file is preallocated in growing chunks
 * (fallocate) and records are encoded straight into a shared mapping, so an
 * append makes no system call most of the time and its bytes are in the page
 * cache at once (a crash of the process loses nothing). Otherwise records are
 * encoded into a scratch buffer and written with one pwrite per batch. Either
 * way the segment may end in zeros, which a reader takes as its end. A sealed
 * segment's pages are unmapped before its sync (sb_segment_make_durable):
 * the page cache keeps them, and the sync write-protects no mapped page.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "segment_impl.h"

void sb_seg_report(const sb_seg_params *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!p->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->report(p->report_arg, p->topic, msg);
}

size_t sb_seg_index_cap(const sb_seg_params *p)
{
	size_t step = p->index_interval > SB_REC_HDR ? p->index_interval : SB_REC_HDR;
	return p->capacity / step + 2;
}

int sb_seg_alloc(const sb_seg_params *p, uint64_t base, sb_segment **out)
{
	sb_segment *s = calloc(1, sizeof(*s));
	char name[32];

	if (!s)
		return -ENOMEM;
	s->p = p;
	s->base = base;
	s->fd = -1;
	s->map = MAP_FAILED;
	size_t cap = strlen(p->dir) + 1 + sizeof(name);
	if (cap > PATH_MAX) {
		free(s);
		return -ENAMETOOLONG;
	}
	s->seg_path = malloc(cap);
	s->idx_path = malloc(cap);
	s->tix_path = malloc(cap);
	if (!s->seg_path || !s->idx_path || !s->tix_path) {
		free(s->seg_path);
		free(s->idx_path);
		free(s->tix_path);
		free(s);
		return -ENOMEM;
	}
	atomic_init(&s->prior_max, INT64_MIN);
	sb_seg_name(name, base, SB_SEG_SUFFIX);
	snprintf(s->seg_path, cap, "%s/%s", p->dir, name);
	sb_seg_name(name, base, SB_IDX_SUFFIX);
	snprintf(s->idx_path, cap, "%s/%s", p->dir, name);
	sb_seg_name(name, base, SB_TIX_SUFFIX);
	snprintf(s->tix_path, cap, "%s/%s", p->dir, name);
	*out = s;
	return 0;
}

void sb_seg_free(sb_segment *s)
{
	if (s->map != MAP_FAILED)
		munmap(s->map, s->map_len);
	sb_zseg_free(s->z); /* first: its read-ahead reads s->fd */
	if (s->fd >= 0)
		s->p->io->close(s->p->io->ctx, s->fd);
	sb_index_free(s->ix);
	sb_tindex_free(s->tix);
	sb_segwin_free(s->win);
	free(s->scratch);
	free(s->seg_path);
	free(s->idx_path);
	free(s->tix_path);
	free(s);
}

/* Map the file: the whole capacity for the active segment (so the mapping
 * never moves as the file grows), else its size (read-only: the bytes found
 * to hold whole records, which no writer trims). */
int sb_seg_map(sb_segment *s, uint64_t file_size, int active)
{
	int prot = PROT_READ;

	s->writable = active && !s->p->read_only && s->p->io->mmap_writes;
	if (s->writable)
		prot |= PROT_WRITE;
	s->map_len = active && !s->p->read_only ? s->p->capacity : file_size;
	s->map = mmap(NULL, s->map_len, prot, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED)
		return -errno;
	return 0;
}

int sb_segment_create(const sb_seg_params *p, uint64_t base, uint64_t base_stream, sb_segment **out)
{
	const sb_io *io = p->io;
	uint8_t hdr[SB_SEG_HDR];
	sb_seg_hdr h = {.base_offset = base, .base_stream = base_stream};
	sb_segment *s;
	int rc;

	if (p->read_only)
		return -EROFS;
	/* a header sb_seg_hdr_decode refuses is never written: the stream
	 * cannot go past SB_STREAM_MAX (a damaged or forged base near 2^64
	 * in the segment before; appends check the same, EOVERFLOW) */
	if (base_stream > SB_STREAM_MAX)
		return -EOVERFLOW;
	rc = sb_seg_alloc(p, base, &s);
	if (rc)
		return rc;
	s->base_stream = s->file_stream = base_stream;
	s->version = SB_FORMAT_VERSION;
	rc = sb_index_new(sb_seg_index_cap(p), &s->ix);
	if (!rc)
		rc = sb_tindex_new(sb_seg_index_cap(p), &s->tix);
	if (rc)
		goto out_free;
	s->fd = io->open(io->ctx, s->seg_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s->fd < 0) {
		rc = s->fd;
		goto out_free;
	}
	sb_seg_hdr_encode(hdr, &h);
	rc = sb_pwrite_full(io, s->fd, hdr, sizeof(hdr), 0);
	if (rc)
		goto out_unlink;
	rc = io->fdatasync(io->ctx, s->fd);
	if (rc)
		goto out_unlink;
	rc = sb_seg_map(s, SB_SEG_HDR, 1);
	if (rc)
		goto out_unlink;
	s->alloc = SB_SEG_HDR;
	s->active = 1;
	atomic_init(&s->len, SB_SEG_HDR);
	atomic_init(&s->next, base);
	atomic_init(&s->stream_end, base_stream);
	atomic_init(&s->max_ts, INT64_MIN);
	s->idx_dirty = 1;
	s->tix_dirty = 1;
	*out = s;
	return 0;
out_unlink:
	io->unlink(io->ctx, s->seg_path);
out_free:
	sb_seg_free(s);
	return rc;
}

uint64_t sb_segment_base(const sb_segment *s) { return s->base; }
uint64_t sb_segment_base_stream(const sb_segment *s) { return s->base_stream; }
uint64_t sb_segment_len(const sb_segment *s) { return atomic_load_explicit(&s->len, memory_order_acquire); }
uint64_t sb_segment_next(const sb_segment *s) { return atomic_load_explicit(&s->next, memory_order_acquire); }
uint64_t sb_segment_stream_end(const sb_segment *s)
{
	return atomic_load_explicit(&s->stream_end, memory_order_acquire);
}
unsigned sb_segment_version(const sb_segment *s) { return atomic_load_explicit(&s->version, memory_order_relaxed); }
int64_t sb_segment_first_ts(const sb_segment *s) { return atomic_load_explicit(&s->first_ts, memory_order_relaxed); }
/* From the time index: retention by age reads it, never the records. */
int64_t sb_segment_max_ts(const sb_segment *s) { return sb_tindex_max(s->tix); }
int64_t sb_segment_prior_max(const sb_segment *s)
{
	return atomic_load_explicit(&s->prior_max, memory_order_relaxed);
}
void sb_segment_set_prior_max(sb_segment *s, int64_t ts)
{
	atomic_store_explicit(&s->prior_max, ts, memory_order_relaxed);
}
const sb_tindex *sb_segment_tindex(const sb_segment *s) { return s->tix; }
int sb_segment_fd(const sb_segment *s) { return s->fd; }
uint64_t sb_segment_plain_len(const sb_segment *s) { return s->z ? sb_zseg_plain_len(s->z) : sb_segment_len(s); }
sb_zseg *sb_segment_zseg(const sb_segment *s) { return s->z; }
int sb_segment_active(const sb_segment *s) { return s->active; }
int sb_segment_zskip(const sb_segment *s) { return atomic_load(&s->zskip); }
uint32_t sb_segment_compacted(const sb_segment *s) { return s->span; }
void sb_segment_set_zskip(sb_segment *s) { atomic_store(&s->zskip, 1); }
const char *sb_segment_path(const sb_segment *s) { return s->seg_path; }

/* Make sure the file has `need` bytes allocated (mmap path). */
static int seg_grow(sb_segment *s, uint64_t need)
{
	const sb_io *io = s->p->io;
	uint64_t step = s->alloc < (1u << 16) ? (1u << 16) : s->alloc;
	uint64_t target, limit;
	int rc;

	/* Chunks of at most 1 MiB: the appender holds the append lock while
	 * the pages are populated (about 0.6 ms a MiB here; 8 MiB stalled
	 * appends for 5 ms). */
	if (step > (1u << 20))
		step = 1u << 20;
	target = (need + step + 4095) & ~(uint64_t)4095;
	/* Never past the roll (the segment ends there): on a nearly full
	 * disk the space freed by removing old records would otherwise go
	 * to one topic's tail, which no append could ever use, while
	 * appends to other topics fail. */
	limit = (need > s->p->roll_at ? need : s->p->roll_at);
	limit = (limit + 4095) & ~(uint64_t)4095;
	if (target > limit)
		target = limit;
	if (target > s->p->capacity)
		target = s->p->capacity;
	if (target < need)
		return -EFBIG;
	rc = io->fallocate(io->ctx, s->fd, (off_t)s->alloc, (off_t)(target - s->alloc));
	if (sb_no_space(rc) && target > ((need + 4095) & ~(uint64_t)4095)) {
		/* Nearly full: take only what this append needs, so that the
		 * disk fills up before appends fail. */
		target = (need + 4095) & ~(uint64_t)4095;
		if (target > s->p->capacity)
			target = s->p->capacity;
		rc = io->fallocate(io->ctx, s->fd, (off_t)s->alloc, (off_t)(target - s->alloc));
	}
	/* -EOPNOTSUPP: the caller appends with pwrite instead (a store into
	 * a page the filesystem cannot allocate would be a SIGBUS). */
	if (rc)
		return rc;
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
	/* Fault the new pages in with one call rather than one fault each
	 * (best effort: older kernels say EINVAL and fault as usual). */
	uint64_t from = s->alloc & ~(uint64_t)4095;
	(void)madvise(s->map + from, target - from, MADV_POPULATE_WRITE);
	s->alloc = target;
	return 0;
}

int sb_segment_append(sb_segment *s, uint64_t first, const sb_record_in *r, size_t n, size_t bytes, int64_t now)
{
	const sb_io *io = s->p->io;
	uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
	uint64_t off = first, next = atomic_load_explicit(&s->next, memory_order_relaxed);
	uint64_t st = atomic_load_explicit(&s->stream_end, memory_order_relaxed);
	uint8_t *dst;
	int rc;

	/* past the next offset only inside a span sb_segment_reach made */
	if (first < next || ((first > next || s->span) && first + n - s->base > s->span))
		return -EINVAL;
	if (len + bytes > s->p->capacity)
		return -EFBIG;
	if (s->writable && len + bytes > s->alloc && (rc = seg_grow(s, len + bytes))) {
		if (rc != -EOPNOTSUPP)
			return rc;
		s->writable = 0; /* no fallocate here: from now on pwrite */
	}
	if (s->writable) {
		dst = s->map + len;
	} else {
		if (bytes > s->scratch_cap) {
			size_t cap = bytes < 65536 ? 65536 : bytes;
			uint8_t *b = realloc(s->scratch, cap);
			if (!b)
				return -ENOMEM;
			s->scratch = b;
			s->scratch_cap = cap;
		}
		dst = s->scratch;
	}
	for (size_t i = 0, at = 0; i < n; i++)
		at += sb_rec_encode(dst + at, off + i, r[i].timestamp_ns ? r[i].timestamp_ns : now, &r[i]);
	if (!s->writable) {
		rc = sb_pwrite_full(io, s->fd, dst, bytes, (off_t)len);
		if (rc) { /* take back whatever part of it was written */
			if (io->ftruncate(io->ctx, s->fd, (off_t)len))
				rc = -EIO; /* cannot take the partial record back */
			return rc;
		}
	}
	/* Index entries, then publish. */
	int64_t ts = 0, max_ts = atomic_load_explicit(&s->max_ts, memory_order_relaxed);
	for (size_t i = 0; i < n; i++) {
		int point = len == SB_SEG_HDR || len - s->last_idx_pos >= s->p->index_interval;
		if (point) {
			sb_idx_entry e = {(uint32_t)(off - s->base), (uint32_t)len, (uint32_t)(st - s->base_stream)};
			if (sb_index_add(s->ix, &e) == 0)
				s->last_idx_pos = len;
			else
				point = 0; /* the interval goes on (see timeindex.h) */
		}
		ts = r[i].timestamp_ns ? r[i].timestamp_ns : now;
		(void)sb_tindex_feed(s->tix, (uint32_t)(off - s->base), ts, point);
		if (ts > max_ts)
			max_ts = ts;
		if (len == SB_SEG_HDR)
			atomic_store_explicit(&s->first_ts, ts, memory_order_relaxed);
		len += sb_rec_size_in(&r[i]);
		st += r[i].value_len;
		off++;
	}
	s->idx_dirty = 1;
	s->tix_dirty = 1;
	if (!s->writable && len > s->alloc)
		s->alloc = len;
	atomic_store_explicit(&s->max_ts, max_ts, memory_order_relaxed);
	atomic_store_explicit(&s->stream_end, st, memory_order_release);
	atomic_store_explicit(&s->len, len, memory_order_release);
	atomic_store_explicit(&s->next, off, memory_order_release);
	return 0;
}

int sb_segment_index_saved(const sb_segment *s)
{
	return s->p->read_only || (!s->idx_dirty && !s->tix_dirty);
}

int sb_segment_gone(const sb_segment *s)
{
	struct stat st;

	return fstat(s->fd, &st) == 0 && st.st_nlink == 0;
}

int sb_segment_save_index(sb_segment *s)
{
	uint64_t len = sb_segment_len(s);
	int rc;

	if (s->p->read_only || (!s->idx_dirty && !s->tix_dirty))
		return 0;
	/* The segment's file was removed (an rm of the topic's directory
	 * racing the daemon's close): its index would be left behind, alone,
	 * in a directory rm has emptied. */
	if (sb_segment_gone(s)) {
		s->idx_dirty = s->tix_dirty = 0;
		return 0;
	}
	/* A valid index file says its segment was synced (recovery takes it as
	 * proof that damage there is no torn write): sync first, also when
	 * recovery rebuilt it for records a crash left in the page cache;
	 * not again right after a seal's sync of it (make_durable). */
	rc = atomic_load(&s->data_synced) ? 0 : s->p->io->fdatasync(s->p->io->ctx, s->fd);
	/* A failed sync of the segment itself is an error whatever its errno:
	 * ENOSPC from fdatasync may mean its pages were dropped (tools/faults
	 * fdatasync ENOSPC). Only no room for the index files is forgiven. */
	if (rc)
		return rc;
	/* The time index first: a valid offset index without it makes the
	 * next open read the segment whole, to rebuild it. */
	if (!rc && s->tix_dirty)
		rc = sb_tindex_save(s->tix, s->p->io, s->tix_path, s->base, (uint32_t)sb_segment_plain_len(s));
	if (!rc)
		s->tix_dirty = 0;
	if (!rc && s->idx_dirty)
		rc = sb_index_save(s->ix, s->p->io, s->idx_path, s->base, (uint32_t)len,
				   atomic_load_explicit(&s->max_ts, memory_order_relaxed));
	if (!rc)
		s->idx_dirty = 0;
	/* The index is optional (rebuilt from the segment at the next open):
	 * no room for it is not an error (but for recover, which says so);
	 * it stays dirty and is saved later. */
	if (sb_no_space(rc) && !s->p->full_check)
		return 0;
	if (rc)
		sb_seg_report(s->p, "%s: index not saved: %s", strrchr(s->seg_path, '/') + 1, sb_strerror(rc));
	return rc;
}

/* Rewrite the header in place with compacted span `span`, fdatasync'd if
 * `sync`. Only the bytes that change are written (the version of an older
 * segment, the span and the CRC): a crash may leave those torn, never the
 * magic, base or stream position, from which the next open writes a torn
 * header anew (log_recover_hdr.c). The CRC covers the stream position the
 * file holds, not the one the open may have moved in memory (a CRC over
 * that one read as a torn header, and the next open refused the topic). */
static int seg_write_span(sb_segment *s, uint32_t span, int sync)
{
	const sb_io *io = s->p->io;
	uint8_t hdr[SB_SEG_HDR];
	sb_seg_hdr h = {.base_offset = s->base, .base_stream = s->file_stream, .span = span};
	int rc = 0;

	sb_seg_hdr_encode(hdr, &h);
	if (atomic_load_explicit(&s->version, memory_order_relaxed) != SB_FORMAT_VERSION)
		rc = sb_pwrite_full(io, s->fd, hdr + SB_FH_VERSION, 2, SB_FH_VERSION);
	if (!rc)
		rc = sb_pwrite_full(io, s->fd, hdr + SB_SEG_AT_SPAN, SB_SEG_HDR - SB_SEG_AT_SPAN, SB_SEG_AT_SPAN);
	if (!rc && sync)
		rc = io->fdatasync(io->ctx, s->fd);
	return rc;
}

int sb_segment_upgrade(sb_segment *s)
{
	int rc;

	if (sb_segment_len(s) != SB_SEG_HDR || s->p->read_only)
		return -EINVAL;
	if (!(rc = seg_write_span(s, s->span, 1)))
		atomic_store_explicit(&s->version, SB_FORMAT_VERSION, memory_order_relaxed);
	return rc;
}

void sb_segment_rebase_stream(sb_segment *s, uint64_t base_stream)
{
	uint64_t n = atomic_load(&s->stream_end) - s->base_stream;

	s->base_stream = base_stream;
	atomic_store(&s->stream_end, base_stream + n);
	if (s->z)
		sb_zseg_rebase_stream(s->z, base_stream);
}

int sb_segment_write_span(sb_segment *s, uint64_t next)
{
	if (s->p->read_only || s->z || next <= s->base || next - s->base > UINT32_MAX ||
	    next < sb_segment_next(s))
		return -EINVAL;
	return seg_write_span(s, (uint32_t)(next - s->base), 1);
}

void sb_segment_set_span(sb_segment *s, uint64_t next)
{
	s->span = (uint32_t)(next - s->base);
	atomic_store_explicit(&s->version, SB_FORMAT_VERSION, memory_order_relaxed);
	atomic_store_explicit(&s->next, next, memory_order_release);
}

int sb_segment_reach(sb_segment *s, uint64_t first, size_t n)
{
	uint64_t end = first + n, span;
	int rc;

	if (!s->active || s->p->read_only || s->z || first < sb_segment_next(s) || end < first ||
	    end - s->base > UINT32_MAX)
		return -EINVAL;
	if (end - s->base <= s->span)
		return 0;
	/* Offsets to spare past the batch: the header is rewritten once per
	 * SB_SPAN_SPARE appends after a gap, not at each. They are what a
	 * crash may skip (the next offset after one is base + span); a seal
	 * or a clean close takes them back (sb_segment_finish). */
	span = end - s->base + SB_SPAN_SPARE;
	if (span > UINT32_MAX)
		span = UINT32_MAX;
	/* Not synced here: every sync of the file that covers the records
	 * past the old span covers this header too. */
	if ((rc = seg_write_span(s, (uint32_t)span, 0)))
		return rc;
	atomic_store_explicit(&s->version, SB_FORMAT_VERSION, memory_order_relaxed);
	s->span = (uint32_t)span;
	return 0;
}

/* An active segment's span back to its next offset (the offsets it spared
 * for appends not made), synced before anything can follow the segment:
 * the next segment starts at its next offset. A span with no record under
 * it goes back to 0. */
static int seg_trim_span(sb_segment *s)
{
	uint64_t keep = sb_segment_next(s) - s->base;
	int rc;

	if (!s->active || !s->span || keep == s->span)
		return 0;
	if ((rc = seg_write_span(s, (uint32_t)keep, 1)))
		return rc;
	s->span = (uint32_t)keep;
	return 0;
}

int sb_segment_finish(sb_segment *s)
{
	const sb_io *io = s->p->io;
	uint64_t len = sb_segment_len(s);
	int rc;

	if (s->p->read_only)
		return 0;
	if ((rc = seg_trim_span(s)))
		return rc;
	if (s->alloc > len) {
		rc = io->ftruncate(io->ctx, s->fd, (off_t)len);
		if (rc)
			return rc;
		s->alloc = len;
	}
	atomic_store(&s->data_synced, 0);
	atomic_store(&s->unsynced, 1);
	return 0;
}

int sb_segment_unsynced(const sb_segment *s)
{
	return atomic_load(&s->unsynced);
}

int sb_segment_data_synced(const sb_segment *s)
{
	return atomic_load(&s->data_synced);
}

int sb_segment_sync_data(sb_segment *s)
{
	const sb_io *io = s->p->io;
	int rc;

	if (s->p->read_only || atomic_load(&s->data_synced))
		return 0;
	/* Written through the shared mapping, its dirty pages are mapped
	 * writable: the sync would write-protect them one at a time, a TLB
	 * shootdown (an IPI to every CPU running this process, the
	 * appender's) a page. Unmapped first (the page cache keeps them,
	 * dirty; a reader faults them back in), the TLBs are flushed in
	 * batches. */
	if (s->writable)
		(void)madvise(s->map, s->map_len, MADV_DONTNEED);
	rc = io->fdatasync(io->ctx, s->fd);
	if (!rc && atomic_load(&s->unsynced)) /* sealed: nothing is written to it again */
		atomic_store(&s->data_synced, 1);
	return rc;
}

int sb_segment_make_durable(sb_segment *s)
{
	int rc;

	if (s->p->read_only)
		return 0;
	rc = sb_segment_sync_data(s);
	if (!rc)
		rc = sb_segment_save_index(s);
	if (!rc) {
		atomic_store(&s->unsynced, 0);
		atomic_store(&s->data_synced, 0); /* (only meant between the two steps) */
	}
	return rc;
}

int sb_segment_seal(sb_segment *s)
{
	int rc = sb_segment_finish(s);

	return rc ? rc : sb_segment_make_durable(s);
}

int sb_segment_close(sb_segment *s, int clean)
{
	int rc = 0;

	if (!s)
		return 0;
	if (clean)
		rc = sb_segment_seal(s);
	sb_seg_free(s);
	return rc;
}

int sb_segment_remove(sb_segment *s)
{
	const sb_io *io = s->p->io;
	int rc = io->unlink(io->ctx, s->seg_path);
	int rc2 = io->unlink(io->ctx, s->idx_path);
	int rc3 = io->unlink(io->ctx, s->tix_path);

	if (rc2 == -ENOENT)
		rc2 = 0;
	if (!rc2 && rc3 != -ENOENT)
		rc2 = rc3;
	sb_seg_free(s);
	return rc ? rc : rc2;
}

void sb_segment_report_damage(sb_segment *s, uint64_t offset, uint64_t pos, const char *what)
{
	uint64_t key = (pos << 1) | 1; /* never 0, the value of "none yet" */

	/* The same damage met again (a reader retrying) is not reported again. */
	if (atomic_exchange_explicit(&s->damage_seen, key, memory_order_relaxed) == key)
		return;
	sb_seg_report(s->p, "damaged record at offset %llu in %s (byte %llu): %s; reads of it fail",
	       (unsigned long long)offset, strrchr(s->seg_path, '/') + 1, (unsigned long long)pos, what);
}

int sb_segment_seal_file(const sb_io *io, int fd, const sb_seg_hdr *h)
{
	uint8_t hb[SB_SEG_HDR];
	int rc;

	sb_seg_hdr_encode(hb, h);
	rc = sb_pwrite_full(io, fd, hb, sizeof(hb), 0);
	if (!rc)
		rc = io->fdatasync(io->ctx, fd);
	int rc2 = io->close(io->ctx, fd);
	return rc ? rc : rc2;
}

int sb_segment_replace_file(const sb_io *io, const char *dir, const char *path, const char *tmp, int *renamed)
{
	const char *sfx[] = {SB_IDX_SUFFIX, SB_TIX_SUFFIX};
	size_t stem = strlen(path) - strlen(SB_SEG_SUFFIX);
	char side[PATH_MAX];
	int rc = 0;

	*renamed = 0;
	for (size_t i = 0; i < 2 && !rc; i++) {
		if ((size_t)snprintf(side, sizeof(side), "%.*s%s", (int)stem, path, sfx[i]) >= sizeof(side))
			return -ENAMETOOLONG;
		if ((rc = io->unlink(io->ctx, side)) == -ENOENT)
			rc = 0;
	}
	if (rc || (rc = sb_fsync_dir(io, dir)) || (rc = io->rename(io->ctx, tmp, path)))
		return rc;
	*renamed = 1;
	return sb_fsync_dir(io, dir);
}
