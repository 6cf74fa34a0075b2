/*
 * log_time.c - seek by time: the first record whose timestamp is at or
 * after a moment (SPEC §2 "Seek by time", sb_log_seek_time in sb_store.h).
 *
 * Timestamps need not grow with offsets (writers set them: cp -p, touch
 * -d; clocks step back). The answer is the first record whose running
 * maximum timestamp reaches the moment, which is also the first record
 * whose own timestamp does: a binary search of the segments by the largest
 * timestamp before each one (sb_segment_prior_max, a lower bound that
 * removed segments may only raise), a step forward to the first segment
 * whose own largest timestamp reaches the moment, then its time index
 * (timeindex.h) and a forward scan of at most one index interval.
 */
#include <errno.h>

#include "log.h"
#include "log_impl.h"

/* The first segment (from `from`) whose records reach ts; nsegs if none.
 * seg_lock held. */
static size_t first_reaching(sb_log *l, size_t from, int64_t ts)
{
	size_t lo = from, hi = l->nsegs;

	/* The largest timestamp before segment i and in it never falls as i
	 * grows: the first i where it reaches ts is where the search starts. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t a = sb_segment_prior_max(l->segs[mid]), b = sb_segment_max_ts(l->segs[mid]);
		if ((a > b ? a : b) < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* prior_max may count segments removed since: step on to one whose
	 * own records reach ts. */
	while (lo < l->nsegs && sb_segment_max_ts(l->segs[lo]) < ts)
		lo++;
	return lo;
}

int sb_log_seek_time(sb_log *l, int64_t ts, uint64_t *offset)
{
	uint64_t found = 0, start, next;
	int rc = -ENOENT;

	pthread_rwlock_rdlock(&l->seg_lock);
	if (atomic_load_explicit(&l->removed, memory_order_relaxed))
		goto out_unlock;
	start = sb_log_start(l);
	next = sb_log_next(l);
	size_t first = 0;
	while (first + 1 < l->nsegs && sb_segment_next(l->segs[first]) <= start)
		first++;
	rc = 0;
	found = next;
	for (size_t i = first_reaching(l, first, ts); i < l->nsegs; i = first_reaching(l, i + 1, ts)) {
		rc = sb_segment_find_time(l->segs[i], ts, &found);
		if (rc != -ENOENT)
			break;
		/* Not published yet in the newest segment: none (yet). */
		found = next;
		rc = 0;
	}
	if (!rc && found < start)
		found = start; /* a removed record reached ts: the start is the answer */
out_unlock:
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		*offset = found;
	return rc;
}
