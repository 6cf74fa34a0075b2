/*
 * segment_tix.c - the time index of a compressed segment (timeindex.h,
 * zseg.h): loaded from its .tix (written while it was plain, covering its
 * plain length; a full check checks it against the blocks' records), or
 * rebuilt from its blocks (each block an interval); and
 * the seek's forward scan through its blocks.
 */
#include <errno.h>
#include <string.h>

#include "segment_impl.h"

int sb_seg_ztix(sb_segment *s, int flags, int *changed)
{
	const sb_seg_params *p = s->p;
	uint64_t plain = sb_zseg_plain_len(s->z), next = atomic_load(&s->next), n = next - s->base;
	size_t cap = sb_seg_index_cap(p) + sb_zseg_blocks(s->z);
	sb_tindex *t = NULL, *old = NULL;
	sb_tindex_check tc;
	int rc;

	if (plain <= UINT32_MAX && sb_tindex_load(p->io, s->tix_path, s->base, (uint32_t)plain, cap, &old) == 0 &&
	    (sb_tindex_max(old) != sb_zseg_max_ts(s->z) || sb_tindex_open_start(old) >= n)) {
		sb_tindex_free(old);
		old = NULL;
	}
	/*
	 * An ordinary open trusts it without reading a block, as a plain
	 * segment's open trusts its .tix (tix_agrees in segment_open.c): it
	 * was written for the plain file of this base and this plain length
	 * (both in its header, checked), under CRCs of its header and its
	 * entries, its entries in order, inside the open interval and not
	 * above the maximum; the swap to compressed copies the records as
	 * they are (offsets and times), and every path that writes a segment
	 * of this base anew (compaction, a cut written back plain) removes
	 * the .tix first or changes the length it is keyed by. What is left is
	 * a .tix damaged with both CRCs still matching, or a writer's bug: a
	 * seek by time would then start in the wrong interval (records read
	 * are still checked in their blocks). verify and recover (CHECK_ALL)
	 * compare it with every record; a cheaper check here has nothing to
	 * compare it with short of decompressing blocks (the block table
	 * holds no times).
	 */
	if (old && !(flags & SB_SEG_CHECK_ALL)) {
		s->tix = old;
		return 0;
	}
	/* Rebuilt from the blocks, or (a full check) the file checked against
	 * them as they are read. */
	if ((rc = sb_tindex_new(cap, &t))) {
		sb_tindex_free(old);
		return rc;
	}
	if (old)
		sb_tindex_check_begin(&tc, old);
	/* Blocks before the first bad one (next stops there). */
	for (uint32_t i = 0; sb_zseg_block_offset(s->z, i) < next; i++) {
		sb_zpin pin;
		sb_zrec r;
		uint64_t bad;
		if ((rc = sb_zseg_get(s->z, sb_zseg_block_offset(s->z, i), 0, &pin, &r, &bad))) {
			sb_tindex_free(old);
			if (rc != SB_ECORRUPT) {
				sb_tindex_free(t);
				return rc;
			}
			/* Damage (reads of it fail too): an index of the blocks
			 * before it, kept in memory only. */
			sb_seg_report(p, "%s: damaged compressed block at byte %llu: time index of the "
				      "blocks before it", strrchr(s->seg_path, '/') + 1, (unsigned long long)bad);
			s->tix = t;
			return 0;
		}
		for (uint32_t k = 0; k < sb_zpin_count(&pin) && r.offset < next; k++) {
			sb_zpin_rec(s->z, &pin, k, &r);
			(void)sb_tindex_feed(t, (uint32_t)(r.offset - s->base), r.timestamp_ns, k == 0);
			if (old)
				sb_tindex_check_record(&tc, (uint32_t)(r.offset - s->base), r.timestamp_ns);
		}
		sb_zseg_unpin(s->z, &pin);
	}
	if (old && sb_tindex_check_end(&tc, n)) {
		/* right for these records (made with other intervals): kept */
		sb_tindex_free(t);
		s->tix = old;
		return 0;
	}
	sb_tindex_free(old);
	s->tix = t;
	s->tix_dirty = 1;
	*changed = 1;
	if (!(flags & SB_SEG_QUIET))
		sb_seg_report(p, "%s: time index rebuilt (%zu entries)", strrchr(s->seg_path, '/') + 1,
			      sb_tindex_count(t));
	return 0;
}

int sb_seg_zfind_time(sb_segment *s, uint64_t off, int64_t ts, uint64_t *offset)
{
	uint64_t next = sb_segment_next(s);

	while (off < next) {
		sb_zpin pin;
		sb_zrec r;
		uint64_t bad;
		int rc = sb_zseg_get(s->z, off, 0, &pin, &r, &bad);
		if (rc) {
			if (rc == SB_ECORRUPT)
				sb_segment_report_damage(s, off, bad, "damaged compressed block");
			return rc == -ENOENT ? SB_ECORRUPT : rc;
		}
		uint32_t k = (uint32_t)(off - sb_zseg_block_offset(s->z, pin.block));
		for (; k < sb_zpin_count(&pin) && off < next; k++, off++) {
			sb_zpin_rec(s->z, &pin, k, &r);
			if (r.timestamp_ns >= ts) {
				sb_zseg_unpin(s->z, &pin);
				*offset = off;
				return 0;
			}
		}
		sb_zseg_unpin(s->z, &pin);
	}
	return -ENOENT;
}
