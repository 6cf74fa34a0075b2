/*
 * segment.c - one segment file: create, open and check (recovery), append,
 * seal, locate records. The format is in format.h.
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
#include "segment.h"
#include "segwin.h"

struct sb_segment {
	const sb_seg_params *p;
	uint64_t base, base_stream;   /* immutable */
	char *seg_path;               /* heap, exact size: thousands of topics */
	char *idx_path;
	int fd;
	uint8_t *map;                 /* map_len bytes of the file, MAP_SHARED */
	size_t map_len;
	int writable;                 /* mapped for writing (mmap_writes) */
	sb_index *ix;
	/* Published by the appender (release), read by readers (acquire). */
	_Atomic uint64_t len;         /* bytes of whole records + header */
	_Atomic uint64_t next;        /* offset after the last record */
	_Atomic uint64_t stream_end;  /* stream pos after the last payload */
	_Atomic int64_t first_ts, max_ts; /* max_ts: the largest timestamp */
	/* Guarded by the log's append lock. */
	uint64_t alloc;               /* file size (preallocated) */
	uint64_t last_idx_pos;        /* position of the last index entry */
	int idx_dirty;                /* the index file is not up to date */
	_Atomic int unsynced;         /* finished (sealed) but not yet synced */
	int damage;                   /* SB_REC_* that stopped the check before the
				       * end of the file, 0 if none; left for the log */
	int zeros;                    /* only zeros past len (preallocated space?) */
	int idx_valid;                /* a valid index file was found at open */
	_Atomic uint64_t damage_seen; /* the last damage a read reported (pos << 1 | 1) */
	uint64_t file_size;           /* at open */
	sb_segwin *win;               /* read-only, while checking at open: the
				       * file through pread (see segwin.h) */
	uint8_t *scratch;             /* pwrite path: encode buffer */
	size_t scratch_cap;
};

static void report(const sb_seg_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const sb_seg_params *p, const char *fmt, ...)
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

static size_t index_cap(const sb_seg_params *p)
{
	size_t step = p->index_interval > SB_REC_HDR ? p->index_interval : SB_REC_HDR;
	return p->capacity / step + 2;
}

static int seg_alloc(const sb_seg_params *p, uint64_t base, sb_segment **out)
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
	if (!s->seg_path || !s->idx_path) {
		free(s->seg_path);
		free(s->idx_path);
		free(s);
		return -ENOMEM;
	}
	sb_seg_name(name, base, SB_SEG_SUFFIX);
	snprintf(s->seg_path, cap, "%s/%s", p->dir, name);
	sb_seg_name(name, base, SB_IDX_SUFFIX);
	snprintf(s->idx_path, cap, "%s/%s", p->dir, name);
	*out = s;
	return 0;
}

static void seg_free(sb_segment *s)
{
	if (s->map != MAP_FAILED)
		munmap(s->map, s->map_len);
	if (s->fd >= 0)
		s->p->io->close(s->p->io->ctx, s->fd);
	sb_index_free(s->ix);
	sb_segwin_free(s->win);
	free(s->scratch);
	free(s->seg_path);
	free(s->idx_path);
	free(s);
}

/* Map the file: the whole capacity for the active segment (so the mapping
 * never moves as the file grows), else its size (read-only: the bytes found
 * to hold whole records, which no writer trims). */
static int seg_map(sb_segment *s, uint64_t file_size, int active)
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
	rc = seg_alloc(p, base, &s);
	if (rc)
		return rc;
	s->base_stream = base_stream;
	rc = sb_index_new(index_cap(p), &s->ix);
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
	rc = seg_map(s, SB_SEG_HDR, 1);
	if (rc)
		goto out_unlink;
	s->alloc = SB_SEG_HDR;
	atomic_init(&s->len, SB_SEG_HDR);
	atomic_init(&s->next, base);
	atomic_init(&s->stream_end, base_stream);
	s->idx_dirty = 1;
	*out = s;
	return 0;
out_unlink:
	io->unlink(io->ctx, s->seg_path);
out_free:
	seg_free(s);
	return rc;
}

/* Checking an index file's entries against the records a scan walks. */
typedef struct idx_check {
	const sb_index *ix;
	size_t i;                     /* the next entry to meet */
	int bad;                      /* an entry points at no record, or wrongly */
} idx_check;

/* The scan is at the record at pos (offset off, stream pos st). */
static void idx_check_at(const sb_segment *s, idx_check *c, uint64_t pos, uint64_t off, uint64_t st)
{
	sb_idx_entry e;

	while (!c->bad && sb_index_at(c->ix, c->i, &e) == 0 && e.pos <= pos) {
		c->bad = e.pos < pos || s->base + e.rel_offset != off || s->base_stream + e.rel_stream != st ||
			 (c->i == 0 && pos != SB_SEG_HDR);
		c->i++;
	}
	if (!c->bad && c->i == 0 && pos == SB_SEG_HDR)
		c->bad = 1; /* the first record has no entry */
}

/*
 * Walk records from `pos` (the record there has offset `off` and stream pos
 * `st`), checking CRCs and that offsets follow each other, up to `end`.
 * With `build`, add index entries as an appender would; with `check`, check
 * its entries against the records. Leaves the state at the end of the last
 * good record and returns the SB_REC_* that stopped it (SB_REC_OK when it
 * reached `end` exactly).
 */
static int seg_scan(sb_segment *s, uint64_t pos, uint64_t end, int build, idx_check *check)
{
	uint64_t off = atomic_load(&s->next), st = atomic_load(&s->stream_end);
	int64_t max_ts = atomic_load(&s->max_ts);
	sb_rec_hdr h;
	int r = SB_REC_OK;

	while (pos < end) {
		r = s->win ? sb_segwin_decode(s->win, pos, 1, &h, NULL, NULL)
			   : sb_rec_decode(s->map + pos, end - pos, 1, &h);
		if (r == SB_REC_OK && h.offset != off)
			r = SB_REC_BAD;
		if (r != SB_REC_OK)
			break;
		if (check)
			idx_check_at(s, check, pos, off, st);
		if (build && (pos == SB_SEG_HDR || pos - s->last_idx_pos >= s->p->index_interval)) {
			sb_idx_entry e = {(uint32_t)(off - s->base), (uint32_t)pos, (uint32_t)(st - s->base_stream)};
			if (sb_index_add(s->ix, &e))
				return SB_REC_BAD;
			s->last_idx_pos = pos;
		}
		if (pos == SB_SEG_HDR)
			atomic_store(&s->first_ts, h.timestamp_ns);
		if (h.timestamp_ns > max_ts)
			max_ts = h.timestamp_ns;
		pos += h.size;
		off++;
		st += h.value_len;
	}
	atomic_store(&s->len, pos);
	atomic_store(&s->next, off);
	atomic_store(&s->stream_end, st);
	atomic_store(&s->max_ts, max_ts);
	if (check && check->i < sb_index_count(check->ix))
		check->bad = 1; /* entries past the last record */
	return r;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static const char *damage_name(int kind, int zeros)
{
	if (kind == SB_REC_TORN)
		return "torn record";
	if (kind == SB_REC_BAD)
		return "corrupt record";
	return zeros ? "zeros" : "garbage after the last record";
}

int sb_segment_damage(const sb_segment *s, uint64_t *pos, const char **what)
{
	if (!s->damage)
		return 0;
	*pos = atomic_load(&s->len);
	*what = damage_name(s->damage, s->zeros);
	return s->zeros ? SB_REC_END : s->damage;
}

int sb_segment_index_valid(const sb_segment *s)
{
	return s->idx_valid;
}

int sb_segment_cut(sb_segment *s, int quiet)
{
	uint64_t len = sb_segment_len(s);
	int rc = 0;

	if (!s->damage)
		return 0;
	if (!quiet)
		report(s->p, "%s: %s at byte %llu; cut %llu bytes (log ends at offset %llu)",
		       strrchr(s->seg_path, '/') + 1, damage_name(s->damage, s->zeros),
		       (unsigned long long)len, (unsigned long long)(s->file_size - len),
		       (unsigned long long)atomic_load(&s->next));
	if (!s->p->read_only) {
		rc = s->p->io->ftruncate(s->p->io->ctx, s->fd, (off_t)len);
		s->idx_dirty = 1;
		if (!rc)
			s->alloc = len;
	}
	if (!rc)
		s->damage = 0;
	return rc;
}

/* Trust a valid index: check only the records from its last entry on. */
static int seg_check_tail(sb_segment *s, uint64_t size)
{
	sb_idx_entry last;
	sb_rec_hdr h;

	if (sb_index_last(s->ix, &last) != 0)
		return size == SB_SEG_HDR ? SB_REC_OK : -1;
	atomic_store(&s->next, s->base + last.rel_offset);
	atomic_store(&s->stream_end, s->base_stream + last.rel_stream);
	s->last_idx_pos = last.pos;
	if ((s->win ? sb_segwin_decode(s->win, SB_SEG_HDR, 0, &h, NULL, NULL)
		    : sb_rec_decode(s->map + SB_SEG_HDR, size - SB_SEG_HDR, 0, &h)) == SB_REC_OK)
		atomic_store(&s->first_ts, h.timestamp_ns);
	return seg_scan(s, last.pos, size, 0, NULL);
}

/*
 * Check the records of an opened, mapped segment of file size `size`: from
 * the last entry of a valid index file (SB_SEG_TRUST_INDEX), or all of them,
 * rebuilding the index. Cuts nothing: what lies past the last whole record
 * is left for the log to judge (sb_segment_damage).
 */
static int seg_check(sb_segment *s, uint64_t size, int flags, int *changed)
{
	const sb_seg_params *p = s->p;
	sb_index *old = NULL;
	int64_t loaded_max = 0;
	int r = -1, rc;

	if ((flags & (SB_SEG_TRUST_INDEX | SB_SEG_CHECK_ALL)) && size <= UINT32_MAX &&
	    sb_index_load(p->io, s->idx_path, s->base, (uint32_t)size, index_cap(p), &old, &loaded_max) == 0) {
		s->idx_valid = 1;
		if (!(flags & SB_SEG_CHECK_ALL)) {
			s->ix = old;
			old = NULL;
			atomic_store(&s->max_ts, loaded_max);
			r = seg_check_tail(s, size);
			if (r != SB_REC_OK) {
				sb_index_free(s->ix);
				s->ix = NULL;
			}
		}
	}
	if (r != SB_REC_OK) {
		/* Rebuild the index from the whole segment. */
		if (!s->ix && (rc = sb_index_new(index_cap(p), &s->ix))) {
			sb_index_free(old);
			return rc;
		}
		atomic_store(&s->next, s->base);
		atomic_store(&s->stream_end, s->base_stream);
		atomic_store(&s->max_ts, INT64_MIN);
		s->last_idx_pos = 0;
		idx_check c = {old, 0, 0};
		r = seg_scan(s, SB_SEG_HDR, size, 1, old ? &c : NULL);
		if (old && !c.bad) {
			/* A full check found the index file right: keep it (it
			 * may have been written with another interval). */
			sb_idx_entry last;
			sb_index_free(s->ix);
			s->ix = old;
			old = NULL;
			if (sb_index_last(s->ix, &last) == 0)
				s->last_idx_pos = last.pos;
		} else {
			s->idx_dirty = 1;
			*changed = 1;
			if (!(flags & SB_SEG_QUIET) && (access(s->idx_path, F_OK) == 0 || !(flags & SB_SEG_ACTIVE)))
				report(p, "%s: index rebuilt (%zu entries)", strrchr(s->seg_path, '/') + 1,
				       sb_index_count(s->ix));
		}
	}
	sb_index_free(old);
	uint64_t len = atomic_load(&s->len);
	if (s->win) {
		if ((rc = sb_segwin_error(s->win)))
			return rc;
		size = sb_segwin_size(s->win); /* less if trimmed meanwhile */
	}
	s->file_size = size;
	if (len < size) {
		s->zeros = s->win ? sb_segwin_zeros(s->win, len, NULL) : all_zero(s->map + len, size - len);
		if (s->win && (rc = sb_segwin_error(s->win)))
			return rc;
		s->damage = r == SB_REC_OK ? SB_REC_BAD : r;
	}
	return 0;
}

int sb_segment_open(const sb_seg_params *p, uint64_t base, int flags, int *changed, sb_segment **out)
{
	const sb_io *io = p->io;
	uint8_t hdr[SB_SEG_HDR];
	sb_seg_hdr h;
	struct stat st;
	sb_segment *s;
	int rc;

	rc = seg_alloc(p, base, &s);
	if (rc)
		return rc;
	s->fd = io->open(io->ctx, s->seg_path, p->read_only ? O_RDONLY : O_RDWR, 0);
	if (s->fd < 0) {
		rc = s->fd;
		goto out_free;
	}
	if (fstat(s->fd, &st) < 0) {
		rc = -errno;
		goto out_free;
	}
	if (st.st_size < (off_t)SB_SEG_HDR || io->pread(io->ctx, s->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	rc = sb_seg_hdr_decode(hdr, &h);
	if (rc)
		goto out_free;
	if (h.base_offset != base || (uint64_t)st.st_size > p->capacity) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	s->base_stream = h.base_stream;
	/* Read-only, without the lock: a writer may trim the file past its
	 * records at any moment. Check it through pread, then map only the
	 * whole records found. */
	if (p->read_only)
		rc = sb_segwin_new(s->fd, (uint64_t)st.st_size, &s->win);
	else
		rc = seg_map(s, (uint64_t)st.st_size, flags & SB_SEG_ACTIVE);
	if (rc)
		goto out_free;
	atomic_init(&s->len, SB_SEG_HDR);
	atomic_init(&s->next, base);
	atomic_init(&s->stream_end, s->base_stream);
	rc = seg_check(s, (uint64_t)st.st_size, flags, changed);
	if (rc)
		goto out_free;
	s->alloc = atomic_load(&s->len);
	if (p->read_only) {
		sb_segwin_free(s->win);
		s->win = NULL;
		rc = seg_map(s, s->alloc, 0);
		if (rc)
			goto out_free;
	}
	*out = s;
	return 0;
out_free:
	seg_free(s);
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
int64_t sb_segment_first_ts(const sb_segment *s) { return atomic_load_explicit(&s->first_ts, memory_order_relaxed); }
int64_t sb_segment_max_ts(const sb_segment *s) { return atomic_load_explicit(&s->max_ts, memory_order_relaxed); }
int sb_segment_fd(const sb_segment *s) { return s->fd; }
const uint8_t *sb_segment_map(const sb_segment *s) { return s->map; }

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
		if (len == SB_SEG_HDR || len - s->last_idx_pos >= s->p->index_interval) {
			sb_idx_entry e = {(uint32_t)(off - s->base), (uint32_t)len, (uint32_t)(st - s->base_stream)};
			if (sb_index_add(s->ix, &e) == 0)
				s->last_idx_pos = len;
		}
		ts = r[i].timestamp_ns ? r[i].timestamp_ns : now;
		if (ts > max_ts)
			max_ts = ts;
		if (len == SB_SEG_HDR)
			atomic_store_explicit(&s->first_ts, ts, memory_order_relaxed);
		len += sb_rec_size(r[i].key_len, r[i].value_len);
		st += r[i].value_len;
		off++;
	}
	s->idx_dirty = 1;
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

	if (s->p->read_only || !s->idx_dirty)
		return 0;
	/* A valid index file says its segment was synced (recovery takes it as
	 * proof that damage there is no torn write): sync first, also when
	 * recovery rebuilt it for records a crash left in the page cache. */
	rc = s->p->io->fdatasync(s->p->io->ctx, s->fd);
	if (!rc)
		rc = sb_index_save(s->ix, s->p->io, s->idx_path, s->base, (uint32_t)len, sb_segment_max_ts(s));
	if (!rc)
		s->idx_dirty = 0;
	/* The index is optional (rebuilt from the segment at the next open):
	 * no room for it is not an error; it stays dirty and is saved later. */
	return sb_no_space(rc) ? 0 : rc;
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
	seg_free(s);
	return rc;
}

int sb_segment_remove(sb_segment *s)
{
	const sb_io *io = s->p->io;
	int rc = io->unlink(io->ctx, s->seg_path);
	int rc2 = io->unlink(io->ctx, s->idx_path);

	if (rc2 == -ENOENT)
		rc2 = 0;
	seg_free(s);
	return rc ? rc : rc2;
}

void sb_segment_report_damage(sb_segment *s, uint64_t offset, uint64_t pos, const char *what)
{
	uint64_t key = (pos << 1) | 1; /* never 0, the value of "none yet" */

	/* The same damage met again (a reader retrying) is not reported again. */
	if (atomic_exchange_explicit(&s->damage_seen, key, memory_order_relaxed) == key)
		return;
	report(s->p, "damaged record at offset %llu in %s (byte %llu): %s; reads of it fail",
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
		if (!by_stream && off == want)
			break;
		if (p + SB_REC_HDR > len) {
			sb_segment_report_damage(s, off, p, "the records end early");
			return SB_ECORRUPT;
		}
		uint32_t size = sb_get32(map + p + 4), klen = sb_get16(map + p + 26), vlen = sb_get32(map + p + 28);
		if (size != (uint64_t)SB_REC_HDR + klen + vlen || size > len - p) {
			sb_segment_report_damage(s, off, p, "bad record header");
			return SB_ECORRUPT;
		}
		if (by_stream && want < st + vlen)
			break;
		p += size;
		st += vlen;
		off++;
	}
	if (decode && (sb_rec_decode(map + p, len - p, 0, &t) != SB_REC_OK || t.offset != off)) {
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

int sb_segment_locate(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	sb_idx_entry e;

	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e)) {
		sb_segment_report_damage(s, offset, 0, "no index entry leads to it");
		return SB_ECORRUPT;
	}
	return seg_scan_to(s, &e, 0, offset, 1, pos, stream, h);
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
	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e))
		return SB_ECORRUPT;
	*lower = s->base_stream + e.rel_stream;
	return seg_scan_to(s, &e, 0, offset, 0, &pos, stream, &h);
}
