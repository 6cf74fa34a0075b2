/*
 * segment.c - one segment file: create, append, seal, locate records and
 * copy their bytes out (opening and checking one: segment_open.c). The
 * format is in format.h.
 *
 * Appending: with io->mmap_writes the file is preallocated in growing chunks
 * (fallocate) and records are encoded straight into a shared mapping, so an
 * append makes no system call most of the time and its bytes are in the page
 * cache at once (a crash of the process loses nothing). Otherwise records are
 * encoded into a scratch buffer and written with one pwrite per batch. Either
 * way the segment may end in zeros, which a reader takes as its end.
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
	rc = sb_seg_alloc(p, base, &s);
	if (rc)
		return rc;
	s->base_stream = base_stream;
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
	uint64_t target;
	int rc;

	/* Chunks of at most 1 MiB: the appender holds the append lock while
	 * the pages are populated (about 0.6 ms a MiB here; 8 MiB stalled
	 * appends for 5 ms). */
	if (step > (1u << 20))
		step = 1u << 20;
	target = (need + step + 4095) & ~(uint64_t)4095;
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

int sb_segment_append(sb_segment *s, const sb_record_in *r, size_t n, size_t bytes, int64_t now)
{
	const sb_io *io = s->p->io;
	uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
	uint64_t off = atomic_load_explicit(&s->next, memory_order_relaxed);
	uint64_t st = atomic_load_explicit(&s->stream_end, memory_order_relaxed);
	uint8_t *dst;
	int rc;

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

int sb_segment_save_index(sb_segment *s)
{
	uint64_t len = sb_segment_len(s);
	int rc;

	if (s->p->read_only || (!s->idx_dirty && !s->tix_dirty))
		return 0;
	/* A valid index file says its segment was synced (recovery takes it as
	 * proof that damage there is no torn write): sync first, also when
	 * recovery rebuilt it for records a crash left in the page cache. */
	rc = s->p->io->fdatasync(s->p->io->ctx, s->fd);
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
	 * no room for it is not an error; it stays dirty and is saved later. */
	return sb_no_space(rc) ? 0 : rc;
}

int sb_segment_upgrade(sb_segment *s)
{
	const sb_io *io = s->p->io;
	uint8_t hdr[SB_SEG_HDR];
	sb_seg_hdr h = {.base_offset = s->base, .base_stream = s->base_stream};
	int rc;

	if (sb_segment_len(s) != SB_SEG_HDR || s->p->read_only)
		return -EINVAL;
	sb_seg_hdr_encode(hdr, &h);
	rc = sb_pwrite_full(io, s->fd, hdr, sizeof(hdr), 0);
	if (!rc)
		rc = io->fdatasync(io->ctx, s->fd);
	if (!rc)
		atomic_store_explicit(&s->version, SB_FORMAT_VERSION, memory_order_relaxed);
	return rc;
}

void sb_segment_rebase_stream(sb_segment *s, uint64_t base_stream)
{
	uint64_t n = atomic_load(&s->stream_end) - s->base_stream;

	s->base_stream = base_stream;
	atomic_store(&s->stream_end, base_stream + n);
}

int sb_segment_write_span(sb_segment *s, uint64_t next)
{
	const sb_io *io = s->p->io;
	uint8_t hdr[SB_SEG_HDR];
	sb_seg_hdr h = {.base_offset = s->base, .base_stream = s->base_stream};
	int rc;

	if (s->p->read_only || s->z || next <= s->base || next - s->base > UINT32_MAX ||
	    next < sb_segment_next(s))
		return -EINVAL;
	h.span = (uint32_t)(next - s->base);
	sb_seg_hdr_encode(hdr, &h);
	rc = sb_pwrite_full(io, s->fd, hdr, sizeof(hdr), 0);
	if (!rc)
		rc = io->fdatasync(io->ctx, s->fd);
	return rc;
}

void sb_segment_set_span(sb_segment *s, uint64_t next)
{
	s->span = (uint32_t)(next - s->base);
	atomic_store_explicit(&s->version, SB_FORMAT_VERSION, memory_order_relaxed);
	atomic_store_explicit(&s->next, next, memory_order_release);
}

int sb_segment_finish(sb_segment *s)
{
	const sb_io *io = s->p->io;
	uint64_t len = sb_segment_len(s);
	int rc;

	if (s->p->read_only)
		return 0;
	if (s->alloc > len) {
		rc = io->ftruncate(io->ctx, s->fd, (off_t)len);
		if (rc)
			return rc;
		s->alloc = len;
	}
	atomic_store(&s->unsynced, 1);
	return 0;
}

int sb_segment_unsynced(const sb_segment *s)
{
	return atomic_load(&s->unsynced);
}

int sb_segment_make_durable(sb_segment *s)
{
	const sb_io *io = s->p->io;
	int rc;

	if (s->p->read_only)
		return 0;
	rc = io->fdatasync(io->ctx, s->fd);
	if (!rc)
		rc = sb_segment_save_index(s);
	if (!rc)
		atomic_store(&s->unsynced, 0);
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

/*
 * The forward scan: from index entry e, step over records by their size
 * fields, up to record `want` (by_stream: up to the record whose payload
 * holds stream byte `want`). Every record stepped over must be framed
 * sanely (size = header + key + value, inside the segment), or the stream
 * positions counted would be wrong. The target's header is decoded only
 * with `decode` (and must then be sane and carry the offset counted).
 */
static int seg_scan_to(sb_segment *s, const sb_idx_entry *e, int by_stream, uint64_t want, int decode,
		       uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	uint64_t len = sb_segment_len(s), p = e->pos, st = s->base_stream + e->rel_stream;
	uint64_t off = s->base + e->rel_offset;
	const uint8_t *map = s->map;
	sb_rec_hdr t = {0};

	/* The chain of size fields is a chain of dependent loads: fetch the
	 * lines it will walk all at once (an estimate from the average record
	 * size, for offsets; the index interval for stream positions). */
	uint64_t ahead = s->p->index_interval;
	uint64_t nrec = atomic_load_explicit(&s->next, memory_order_relaxed) - s->base;
	if (!by_stream && nrec)
		ahead = (want - off) * ((len - SB_SEG_HDR) / nrec) + 2 * SB_REC_HDR;
	if (ahead > len - p)
		ahead = len - p;
	for (uint64_t a = 0; a < ahead; a += 64)
		__builtin_prefetch(map + p + a);

	for (;;) {
		/* (compacted: `off` counted past a record may be a removed
		 * one; the record's own offset decides, below) */
		if (!by_stream && off == want && !s->span)
			break;
		if (p + SB_REC_HDR > len) {
			if (s->span && !by_stream && p == len)
				return -ENOENT; /* compacted away after the last kept record */
			sb_segment_report_damage(s, off, p, "the records end early");
			return SB_ECORRUPT;
		}
		if (!sb_rec_frame(map + p, len - p, &t)) {
			sb_segment_report_damage(s, off, p, "bad record header");
			return SB_ECORRUPT;
		}
		if (s->span) {
			/* compacted: offsets grow with gaps (checked at open) */
			if (t.offset < off || t.offset - s->base >= s->span) {
				sb_segment_report_damage(s, off, p, "bad record header");
				return SB_ECORRUPT;
			}
			off = t.offset;
			if (!by_stream && off == want)
				break;
			if (!by_stream && off > want)
				return -ENOENT; /* compacted away */
		}
		if (by_stream && want < st + t.value_len)
			break;
		p += t.size;
		st += t.value_len;
		off++;
	}
	if (decode && (sb_rec_decode_v(map + p, len - p, s->version, 0, &t) != SB_REC_OK || t.offset != off)) {
		sb_segment_report_damage(s, off, p, "bad record header");
		return SB_ECORRUPT;
	}
	if (!decode)
		t.offset = off;
	*pos = p;
	*stream = st;
	*h = t;
	return 0;
}

static int seg_locate_from(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h);

int sb_segment_locate(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	sb_idx_entry e;

	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e)) {
		if (s->span)
			return -ENOENT; /* compacted away, before its first record */
		sb_segment_report_damage(s, offset, 0, "no index entry leads to it");
		return SB_ECORRUPT;
	}
	return seg_scan_to(s, &e, 0, offset, 1, pos, stream, h);
}

int sb_segment_locate_at(sb_segment *s, uint64_t offset, uint64_t at, sb_rec_hdr *h)
{
	uint64_t len = sb_segment_len(s);
	sb_rec_hdr t;

	/* compacted: its span is set (by the rewrite, or when it took a
	 * removed successor's offsets, which moves nothing: skipped alike) */
	if (s->z || s->span || at < SB_SEG_HDR || at >= len || len - at < SB_REC_HDR)
		return 1;
	if (sb_rec_decode_v(s->map + at, len - at, s->version, 0, &t) != SB_REC_OK || t.offset != offset)
		return 1;
	*h = t;
	return 0;
}

int sb_segment_key_is(const sb_segment *s, uint64_t pos, const sb_rec_hdr *h, const void *key, size_t klen)
{
	return h->key_len == klen && !memcmp(s->map + pos + SB_REC_AT_KEY, key, klen);
}

/* The first record at or after `offset` (a compacted segment may have
 * removed it): -ENOENT when none is left in the segment. */
static int seg_locate_from(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	sb_idx_entry e;
	uint64_t len = sb_segment_len(s);

	if (!s->span)
		return sb_segment_locate(s, offset, pos, stream, h);
	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e))
		e = (sb_idx_entry){0, SB_SEG_HDR, 0}; /* before its first record */
	uint64_t p = e.pos, st = s->base_stream + e.rel_stream;
	sb_rec_hdr t;
	while (p < len) {
		if (sb_rec_decode_v(s->map + p, len - p, s->version, 0, &t) != SB_REC_OK) {
			sb_segment_report_damage(s, offset, p, "bad record header");
			return SB_ECORRUPT;
		}
		if (t.offset >= offset) {
			*pos = p;
			*stream = st;
			*h = t;
			return 0;
		}
		p += t.size;
		st += t.value_len;
	}
	return -ENOENT;
}

int sb_segment_locate_stream(sb_segment *s, uint64_t spos, uint64_t *pos, uint64_t *stream,
			     sb_rec_hdr *h)
{
	sb_idx_entry e;

	if (spos < s->base_stream || sb_index_lookup(s->ix, (uint32_t)(spos - s->base_stream), 1, &e)) {
		sb_segment_report_damage(s, s->base, 0, "no index entry leads to the stream position");
		return SB_ECORRUPT;
	}
	return seg_scan_to(s, &e, 1, spos, 1, pos, stream, h);
}

int sb_segment_stream_of(sb_segment *s, uint64_t offset, uint64_t *stream, uint64_t *lower)
{
	sb_idx_entry e;
	sb_rec_hdr h;
	uint64_t pos;

	*lower = s->base_stream;
	if (s->z)
		return sb_seg_zstream_of(s, offset, stream, lower);
	if (s->span) { /* compacted: where the first record at or after it starts */
		int rc = seg_locate_from(s, offset, &pos, stream, &h);
		if (rc == -ENOENT) {
			*stream = sb_segment_stream_end(s);
			rc = 0;
		}
		return rc;
	}
	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e))
		return SB_ECORRUPT;
	*lower = s->base_stream + e.rel_stream;
	return seg_scan_to(s, &e, 0, offset, 0, &pos, stream, &h);
}

/* ---- copying record bytes out ------------------------------------------- */

/* Records copied and checked together in a stream copy (on the stack). */
#define STREAM_BATCH 32
/* How far ahead of the record it reads a stream copy fetches (bytes): 4 KiB
 * made a scan of 100-byte records 30% faster here, where 1 KiB did not. */
#define STREAM_AHEAD 4096

typedef struct stream_batch {
	uint8_t hdr[STREAM_BATCH][SB_REC_HDR]; /* each header as read, once */
	sb_crc_copy job[STREAM_BATCH];
	uint64_t pos[STREAM_BATCH], off[STREAM_BATCH]; /* for reports */
	size_t n, bytes;                       /* jobs, bytes in them */
} stream_batch;

/*
 * The job that copies bytes [at + from, at + from + n) of the record at rec
 * (header h, re-encoded in hb) and checks its CRC over exactly what is
 * used: the header as decoded (hb), the bytes before the part copied, the
 * part as copied into dst, the bytes after it.
 */
static sb_crc_copy copy_job(const uint8_t *rec, const uint8_t *hb, const sb_rec_hdr *h, uint32_t at,
			    uint64_t from, size_t n, uint8_t *dst)
{
	const uint8_t *src = rec + at + from;

	return (sb_crc_copy){
		.hdr = hb + SB_REC_AT_SIZE,
		.key = rec + SB_REC_AT_KEY, .key_len = at - SB_REC_AT_KEY,
		.pre = rec + at, .pre_len = (uint32_t)from,
		.src = src, .dst = dst, .len = (uint32_t)n,
		.post = src + n, .post_len = (uint32_t)(h->size - at - from - n),
		.crc = h->crc,
	};
}

/* Copy and check the batch; *done counts the bytes of the good records. */
static int batch_flush(sb_segment *s, stream_batch *b, size_t *done)
{
	size_t good = sb_crc32c_copy_check(b->job, b->n);
	int rc = 0;

	for (size_t i = 0; i < good; i++)
		*done += b->job[i].len;
	if (good < b->n) {
		sb_segment_report_damage(s, b->off[good], b->pos[good], "checksum mismatch");
		rc = SB_ECORRUPT;
	}
	b->n = b->bytes = 0;
	return rc;
}

/*
 * The stream: payload bytes from `skip` in the record at pos (offset off)
 * on, through the records after it, into dst[0, len). Each header is read
 * once, into the batch, and both its framing and its CRC come from that copy.
 */
static int copy_stream(sb_segment *s, uint64_t p, uint64_t off, uint64_t skip, uint8_t *dst, size_t len,
		       size_t *done)
{
	const uint8_t *map = s->map;
	uint64_t slen = sb_segment_len(s), pf = p & ~(uint64_t)63;
	stream_batch b;
	sb_rec_hdr h;
	int rc;

	b.n = b.bytes = 0;
	for (;;) {
		uint8_t *hb = b.hdr[b.n];
		/* Each header's place comes from the one before, a chain of
		 * loads that would wait for memory at every step: keep the
		 * next STREAM_AHEAD bytes on their way (a line once each). */
		for (; pf < p + STREAM_AHEAD && pf < slen; pf += 64)
			__builtin_prefetch(map + pf);
		int sane = p + SB_REC_HDR <= slen;
		if (sane) {
			/* The framing only (the CRC covers the rest, from hb). */
			memcpy(hb, map + p, SB_REC_HDR);
			sane = sb_rec_frame(hb, slen - p, &h) &&
			       (h.offset == off || (s->span && h.offset > off && h.offset - s->base < s->span));
			if (sane) /* (a damaged header's offset names nothing) */
				off = h.offset;
		}
		if (!sane) {
			/* The records before it first: the damage met first is reported. */
			if ((rc = batch_flush(s, &b, done)))
				return rc;
			sb_segment_report_damage(s, off, p, "bad record header");
			return SB_ECORRUPT;
		}
		size_t n = h.value_len - skip, room = len - *done - b.bytes;
		if (n > room)
			n = room;
		/* A record giving no bytes (an empty one) is only stepped over. */
		if (n) {
			b.job[b.n] = copy_job(map + p, hb, &h, sb_rec_value_at(&h), skip, n,
					      dst + *done + b.bytes);
			b.pos[b.n] = p;
			b.off[b.n] = off;
			b.n++;
			b.bytes += n;
		}
		skip = 0;
		p += h.size;
		off++;
		int last = b.bytes == len - *done || p >= slen;
		if (last || b.n == STREAM_BATCH) {
			if ((rc = batch_flush(s, &b, done)) || last)
				return rc;
		}
	}
}

int sb_segment_copy(sb_segment *s, uint64_t pos, const sb_rec_hdr *h, int part, uint64_t from, void *dst,
		    size_t len, size_t *done)
{
	uint8_t hb[SB_REC_HDR];
	uint32_t at, plen;
	size_t n = 0;
	int rc;

	if (part == SB_COPY_STREAM) {
		rc = copy_stream(s, pos, h->offset, from, dst, len, &n);
		*done = n;
		return rc;
	}
	if (part == SB_COPY_KEY) {
		at = SB_REC_AT_KEY;
		plen = h->key_len;
	} else if (part == SB_COPY_HEADERS) {
		at = sb_rec_hdrs_at(h);
		plen = h->hdrs_len;
	} else {
		at = sb_rec_value_at(h);
		plen = h->value_len;
	}
	if (from > plen)
		from = plen;
	n = plen - from < len ? plen - from : len;
	sb_rec_hdr_encode(hb, h);
	sb_crc_copy job = copy_job(s->map + pos, hb, h, at, from, n, dst);
	if (sb_crc32c_copy_check(&job, 1) == 0) {
		sb_segment_report_damage(s, h->offset, pos, "checksum mismatch");
		return SB_ECORRUPT;
	}
	*done = n;
	return 0;
}

int sb_segment_walk(sb_segment *s, uint64_t from, sb_seg_walk_fn fn, void *arg)
{
	uint64_t pos, stream, len = sb_segment_len(s), end = sb_segment_next(s);
	sb_rec_hdr h;
	int rc;

	if (s->z)
		return -ENOTSUP;
	if (from >= end)
		return 0;
	if ((rc = seg_locate_from(s, from, &pos, &stream, &h)))
		return rc == -ENOENT ? 0 : rc;
	from = h.offset;
	uint64_t first = pos;
	while (from < end && pos < len) {
		if (sb_rec_decode_v(s->map + pos, len - pos, s->version, 1, &h) != SB_REC_OK ||
		    (h.offset != from && !(s->span && h.offset > from && h.offset < end))) {
			rc = SB_ECORRUPT;
			break;
		}
		if ((rc = fn(arg, &h, s->map + pos + SB_REC_AT_KEY, pos)))
			break;
		pos += h.size;
		from = h.offset + 1;
	}
	/* A walk (the key index's replay at open) reads up to tens of MiB:
	 * let go of the pages it touched, so that they stay evictable page
	 * cache, not pages mapped into the daemon (which drop_caches and
	 * memory pressure cannot reclaim). A shared file mapping: the next
	 * read faults them in again from the cache. */
	uint64_t a = first & ~(uint64_t)4095, b = pos < s->map_len ? pos : s->map_len;
	if (b > a)
		(void)madvise(s->map + a, b - a, MADV_DONTNEED);
	return rc;
}

int sb_segment_find_time(sb_segment *s, int64_t ts, uint64_t *offset)
{
	uint64_t pos, stream, next = sb_segment_next(s), len = sb_segment_len(s);
	sb_rec_hdr h;
	uint32_t rel;
	int rc;

	if (sb_tindex_find(s->tix, ts, &rel) || s->base + rel >= next)
		return -ENOENT;
	uint64_t off = s->base + rel;
	if (s->z)
		return sb_seg_zfind_time(s, off, ts, offset);
	rc = seg_locate_from(s, off, &pos, &stream, &h);
	if (rc)
		return rc;
	/* At most one interval of records (timeindex.h); each one judged by
	 * must hold its CRC, so that a damaged time never moves the start. */
	for (off = h.offset; off < next && pos < len; off++) {
		if (sb_rec_decode_v(s->map + pos, len - pos, s->version, 1, &h) != SB_REC_OK ||
		    (h.offset != off && !(s->span && h.offset > off && h.offset < next))) {
			sb_segment_report_damage(s, off, pos, "bad record");
			return SB_ECORRUPT;
		}
		off = h.offset;
		if (h.timestamp_ns >= ts) {
			*offset = off;
			return 0;
		}
		pos += h.size;
	}
	return -ENOENT; /* its record is not published yet */
}

int sb_segment_next_present(sb_segment *s, uint64_t offset, uint64_t *found)
{
	uint64_t pos, stream;
	sb_rec_hdr h;
	int rc;

	if (!s->span) {
		*found = offset;
		return 0;
	}
	rc = seg_locate_from(s, offset, &pos, &stream, &h);
	if (!rc)
		*found = h.offset;
	return rc;
}
