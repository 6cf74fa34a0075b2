/*
 * segment_open.c - open an existing segment file and check its records from
 * where a valid index file ends, or from its start (recovery): what the log
 * judges with sb_segment_damage() and sb_segment_cut(). The format is in
 * format.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "segment_impl.h"

/* Checking an index file's entries against the records a scan walks. */
typedef struct idx_check {
	const sb_index *ix;
	size_t i;                     /* the next entry to meet */
	int bad;                      /* an entry points at no record, or wrongly */
	sb_tindex_check *tix;         /* the time index file's check, or NULL */
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
	uint64_t first = pos;
	sb_rec_hdr h;
	int r = SB_REC_OK;

	while (pos < end) {
		r = s->win ? sb_segwin_decode(s->win, pos, s->version, 1, &h, NULL, NULL)
			   : sb_rec_decode_v(s->map + pos, end - pos, s->version, 1, &h);
		/* offsets follow each other and never wrap: no append writes
		 * a record at UINT64_MAX (there would be no next offset); in
		 * a compacted segment they grow, with gaps, inside its span */
		if (r == SB_REC_OK && !s->span && (h.offset != off || off == UINT64_MAX))
			r = SB_REC_BAD;
		if (r == SB_REC_OK && s->span && (h.offset < off || h.offset - s->base >= s->span))
			r = SB_REC_BAD;
		if (r != SB_REC_OK)
			break;
		off = h.offset;
		if (check)
			idx_check_at(s, check, pos, off, st);
		if (check && check->tix)
			sb_tindex_check_record(check->tix, (uint32_t)(off - s->base), h.timestamp_ns);
		int point = pos == SB_SEG_HDR || pos - s->last_idx_pos >= s->p->index_interval;
		if (build && point) {
			sb_idx_entry e = {(uint32_t)(off - s->base), (uint32_t)pos, (uint32_t)(st - s->base_stream)};
			if (sb_index_add(s->ix, &e))
				return SB_REC_BAD;
			s->last_idx_pos = pos;
		}
		if (build)
			(void)sb_tindex_feed(s->tix, (uint32_t)(off - s->base), h.timestamp_ns, point);
		if (pos == SB_SEG_HDR)
			atomic_store(&s->first_ts, h.timestamp_ns);
		if (h.timestamp_ns > max_ts)
			max_ts = h.timestamp_ns;
		pos += h.size;
		off++;
		st += h.value_len;
	}
	/* The check read what it checked through the mapping: let its pages
	 * go (as sb_segment_walk does), or a mount keeps the tail it checked
	 * mapped (a 256 MiB last record: 256 MiB resident in the daemon). */
	uint64_t a = (first + 4095) & ~(uint64_t)4095, b = pos & ~(uint64_t)4095;
	if (!s->win && b > a)
		(void)madvise(s->map + a, b - a, MADV_DONTNEED);
	atomic_store(&s->len, pos);
	if (s->span && r == SB_REC_OK)
		off = s->base + s->span; /* the records removed after the last kept one */
	atomic_store(&s->next, off);
	atomic_store(&s->stream_end, st);
	atomic_store(&s->max_ts, max_ts);
	if (check && check->i < sb_index_count(check->ix))
		check->bad = 1; /* entries past the last record */
	return r;
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
	if (s->z) {
		*pos = sb_zseg_block_pos(s->z, s->zbad);
		*what = "damaged compressed block";
		return SB_REC_BAD;
	}
	*pos = atomic_load(&s->len);
	*what = s->lost ? s->lost_what : damage_name(s->damage, s->zeros);
	return s->zeros ? SB_REC_END : s->damage;
}

int sb_segment_index_valid(const sb_segment *s)
{
	return s->idx_valid || s->lost;
}

/* Do the entries of index ix below `size` name records of this segment
 * (a record starts there, with that offset)? An index file of what a
 * compacted segment was before (a copy taken during the round: the
 * segment copied after its swap, the index before) names other records
 * and proves nothing about the file. */
static int index_names_records(const sb_segment *s, const sb_index *ix, uint64_t size)
{
	sb_idx_entry e;
	sb_rec_hdr h;

	for (size_t i = 0; sb_index_at(ix, i, &e) == 0 && e.pos < size; i++) {
		int r = s->win ? sb_segwin_decode(s->win, e.pos, s->version, 0, &h, NULL, NULL)
			       : sb_rec_decode_v(s->map + e.pos, size - e.pos, s->version, 0, &h);
		if (r != SB_REC_OK || h.offset != s->base + e.rel_offset)
			return 0;
	}
	return 1;
}

/*
 * The segment ends cleanly after its last whole record at `size`, but its
 * index file (a header good for this segment) covers more: those bytes were
 * synced before the index was written, so whole records are gone (a cut at
 * a record boundary, which nothing else shows). Damage, proven synced.
 *
 * Not for a compacted segment (span): it is written whole and synced before
 * it is renamed into place, its index after, so an index covering more is
 * the index of what the segment was before a round, which a copy of the
 * directory taken during the round pairs with it (cp, rsync and tar copy
 * NNNN.idx before NNNN.seg), whatever its entries below `size` name (the
 * records at the segment's start the round kept: found by a tester, 8 of
 * 39 live copies refused). A compacted segment cut at a record boundary
 * after its index was written is not seen here: the price of SPEC §6's
 * live copies; the key tables still name a lost latest record of a key.
 */
static void seg_check_lost(sb_segment *s, uint64_t size)
{
	uint32_t covered;
	sb_index *ix;
	int64_t max_ts;

	if (s->z || s->span || s->idx_valid || s->damage ||
	    sb_index_covered(s->p->io, s->idx_path, s->base, &covered) || covered <= size)
		return;
	/* Entries that load (their CRC good) but name other records: the
	 * index of what the segment was before a compaction, no proof. (A
	 * damaged index is taken at its header's word, as before.) */
	if (sb_index_load(s->p->io, s->idx_path, s->base, covered, -1, 1, &ix, &max_ts) == 0) {
		int ours = index_names_records(s, ix, size);
		sb_index_free(ix);
		if (!ours)
			return;
	}
	s->lost = covered;
	s->damage = SB_REC_BAD;
	snprintf(s->lost_what, sizeof(s->lost_what),
		 "records lost: the segment ends after a whole record, but its index "
		 "(written once the segment was synced) covers %u bytes", covered);
}

int sb_segment_cut(sb_segment *s, int quiet)
{
	uint64_t len = sb_segment_len(s);
	int rc = 0;

	if (!s->damage)
		return 0;
	if (s->z)
		return sb_seg_zcut(s, quiet);
	if (!quiet)
		sb_seg_report(s->p, "%s: %s at byte %llu; cut %llu bytes (log ends at offset %llu)",
		       strrchr(s->seg_path, '/') + 1, s->lost ? s->lost_what : damage_name(s->damage, s->zeros),
		       (unsigned long long)len, (unsigned long long)(s->file_size - len),
		       (unsigned long long)atomic_load(&s->next));
	if (!s->p->read_only) {
		rc = s->p->io->ftruncate(s->p->io->ctx, s->fd, (off_t)len);
		s->idx_dirty = 1;
		s->tix_dirty = 1;
		if (!rc)
			s->alloc = len;
	}
	if (!rc) {
		s->damage = 0;
		s->lost = 0;
		/* A compacted segment ends at its span whatever was cut (as
		 * its reopen says): the offsets of the records cut are never
		 * given again (fuzz_segment: next 1005 after the cut, the
		 * span's end on reopen). */
		if (s->span)
			atomic_store(&s->next, s->base + s->span);
	}
	return rc;
}

/* Trust a valid index: check only the records from its last entry on. */
static int seg_check_tail(sb_segment *s, uint64_t size)
{
	sb_idx_entry last;
	sb_rec_hdr h;

	if (sb_index_last(s->ix, &last) != 0) {
		if (size == SB_SEG_HDR && s->span)
			atomic_store(&s->next, s->base + s->span); /* compacted to nothing */
		return size == SB_SEG_HDR ? SB_REC_OK : -1;
	}
	atomic_store(&s->next, s->base + last.rel_offset);
	atomic_store(&s->stream_end, s->base_stream + last.rel_stream);
	s->last_idx_pos = last.pos;
	if ((s->win ? sb_segwin_decode(s->win, SB_SEG_HDR, s->version, 0, &h, NULL, NULL)
		    : sb_rec_decode_v(s->map + SB_SEG_HDR, size - SB_SEG_HDR, s->version, 0, &h)) == SB_REC_OK)
		atomic_store(&s->first_ts, h.timestamp_ns);
	return seg_scan(s, last.pos, size, 0, NULL);
}

/*
 * Check the records of an opened, mapped segment of file size `size`: from
 * the last entry of a valid index file (SB_SEG_TRUST_INDEX), or all of them,
 * rebuilding the index. Cuts nothing: what lies past the last whole record
 * is left for the log to judge (sb_segment_damage).
 */
/* Does a loaded time index agree with what the offset index and the tail
 * check found (the same largest timestamp, its open interval a record)? */
static int tix_agrees(const sb_segment *s, const sb_tindex *t)
{
	uint64_t n = atomic_load(&s->next) - s->base;

	if (!n)
		return sb_tindex_max(t) == INT64_MIN;
	return sb_tindex_max(t) == atomic_load(&s->max_ts) && sb_tindex_open_start(t) < n;
}

static int seg_check(sb_segment *s, uint64_t size, int flags, int *changed)
{
	const sb_seg_params *p = s->p;
	sb_index *old = NULL;
	sb_tindex *old_tix = NULL;
	int64_t loaded_max = 0;
	int r = -1, rc, tix_kept = 0;

	if ((flags & (SB_SEG_TRUST_INDEX | SB_SEG_CHECK_ALL)) && size <= UINT32_MAX &&
	    sb_index_load(p->io, s->idx_path, s->base, (uint32_t)size, s->span != 0, sb_seg_index_cap(p), &old,
			  &loaded_max) == 0) {
		s->idx_valid = 1;
		(void)sb_tindex_load(p->io, s->tix_path, s->base, (uint32_t)size, sb_seg_index_cap(p), &old_tix);
		/* Without a good time index the segment is read whole to
		 * rebuild it (the offset index is kept if it matches). */
		if (!(flags & SB_SEG_CHECK_ALL) && old_tix) {
			s->ix = old;
			old = NULL;
			atomic_store(&s->max_ts, loaded_max);
			r = seg_check_tail(s, size);
			if (r == SB_REC_OK && tix_agrees(s, old_tix)) {
				s->tix = old_tix;
				old_tix = NULL;
			} else {
				r = -1;
				sb_index_free(s->ix);
				s->ix = NULL;
			}
		}
	}
	if (r != SB_REC_OK) {
		/* Rebuild the index from the whole segment. */
		if (!s->ix && (rc = sb_index_new(sb_seg_index_cap(p), &s->ix))) {
			sb_index_free(old);
			sb_tindex_free(old_tix);
			return rc;
		}
		sb_tindex_free(s->tix);
		s->tix = NULL;
		if ((rc = sb_tindex_new(sb_seg_index_cap(p), &s->tix))) {
			sb_index_free(old);
			sb_tindex_free(old_tix);
			return rc;
		}
		atomic_store(&s->next, s->base);
		atomic_store(&s->stream_end, s->base_stream);
		atomic_store(&s->max_ts, INT64_MIN);
		s->last_idx_pos = 0;
		sb_tindex_check tc;
		if (old_tix)
			sb_tindex_check_begin(&tc, old_tix);
		idx_check c = {old, 0, 0, old_tix ? &tc : NULL};
		r = seg_scan(s, SB_SEG_HDR, size, 1, old ? &c : NULL);
		if (old && old_tix && sb_tindex_check_end(&tc, atomic_load(&s->next) - s->base)) {
			/* Right for these records (maybe made with another
			 * interval, as the index): keep it. */
			sb_tindex_free(s->tix);
			s->tix = old_tix;
			old_tix = NULL;
			tix_kept = 1;
		}
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
			/* The newest segment's index is missing after any
			 * crash (it is written at the seal or the close): said
			 * only to recover. */
			int had = access(s->idx_path, F_OK) == 0;
			if (!(flags & SB_SEG_QUIET) && (had || !(flags & SB_SEG_ACTIVE) || p->full_check))
				sb_seg_report(p, had ? "%s: index rebuilt (%zu entries)" : "%s: missing index rebuilt (%zu entries)",
					      strrchr(s->seg_path, '/') + 1, sb_index_count(s->ix));
		}
		if (!tix_kept && (!old_tix || !sb_tindex_equal(old_tix, s->tix))) {
			s->tix_dirty = 1;
			*changed = 1;
			if (!(flags & SB_SEG_QUIET) && !(flags & SB_SEG_ACTIVE) && !s->idx_dirty)
				sb_seg_report(p, "%s: time index rebuilt (%zu entries)",
					      strrchr(s->seg_path, '/') + 1, sb_tindex_count(s->tix));
		}
	}
	sb_index_free(old);
	sb_tindex_free(old_tix);
	uint64_t len = atomic_load(&s->len);
	if (s->win) {
		if ((rc = sb_segwin_error(s->win)))
			return rc;
		size = sb_segwin_size(s->win); /* less if trimmed meanwhile */
	}
	s->file_size = size;
	if (len < size) {
		s->zeros = s->win ? sb_segwin_zeros(s->win, len, NULL) : sb_all_zero(s->map + len, size - len);
		if (s->win && (rc = sb_segwin_error(s->win)))
			return rc;
		s->damage = r == SB_REC_OK ? SB_REC_BAD : r;
	}
	if (len == size)
		seg_check_lost(s, size);
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

	rc = sb_seg_alloc(p, base, &s);
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
	if (sb_zseg_is(hdr)) {
		rc = sb_seg_zopen(s, (uint64_t)st.st_size, flags, changed);
		if (!rc)
			rc = sb_seg_ztix(s, flags, changed);
		if (rc == 1) { /* written back plain: open that */
			sb_seg_free(s);
			*changed = 1;
			return sb_segment_open(p, base, flags, changed, out);
		}
		if (rc)
			goto out_free;
		*out = s;
		return 0;
	}
	rc = sb_seg_hdr_decode(hdr, &h);
	if (rc)
		goto out_free;
	if (h.base_offset != base || (uint64_t)st.st_size > p->capacity) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	s->base_stream = s->file_stream = h.base_stream;
	s->version = h.version;
	s->span = h.span;
	/* Read-only, without the lock: a writer may trim the file past its
	 * records at any moment. Check it through pread, then map only the
	 * whole records found. */
	if (p->read_only)
		rc = sb_segwin_new(s->fd, (uint64_t)st.st_size, &s->win);
	else
		rc = sb_seg_map(s, (uint64_t)st.st_size, flags & SB_SEG_ACTIVE);
	if (rc)
		goto out_free;
	atomic_init(&s->len, SB_SEG_HDR);
	atomic_init(&s->next, base);
	atomic_init(&s->stream_end, s->base_stream);
	rc = seg_check(s, (uint64_t)st.st_size, flags, changed);
	if (rc)
		goto out_free;
	s->alloc = atomic_load(&s->len);
	s->active = (flags & SB_SEG_ACTIVE) != 0;
	if (p->read_only) {
		sb_segwin_free(s->win);
		s->win = NULL;
		rc = sb_seg_map(s, s->alloc, 0);
		if (rc)
			goto out_free;
	}
	*out = s;
	return 0;
out_free:
	sb_seg_free(s);
	return rc;
}
