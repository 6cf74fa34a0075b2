/*
 * keyidx_turn.c - a topic's key index (keyidx.h): indexing the tail (the
 * keyed records read from the log into the tail, sorted into runs) and the
 * turns: the indexer's, the flusher's, the appender's when it steps in,
 * the close's and compaction's cover (freezing the runs, writing them and
 * merging tables with keyidx_write.c); syncing the tables published
 * lazily. Opening and closing are keyidx.c's, lookups keyidx_read.c's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsutil.h"
#include "keyidx_impl.h"

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sb_kx_set_background(sb_kx *x, int on)
{
	x->p.background = on;
	x->maint_kb = atomic_load(&x->noted_kbytes); /* the replay's keys came before */
	x->maint_ns = mono_ns();
}

void sb_kx_set_wake(sb_kx *x, void (*fn)(void *arg), void *arg)
{
	x->wake = fn;
	x->wake_arg = arg;
}

/* Keyed bytes noted and not yet read into the tail (an estimate: records
 * retention took before they were read count until the indexer next
 * reads up to the end), with_tail plus the tail's. [any thread] */
static uint64_t unindexed_bytes(sb_kx *x, int with_tail)
{
	uint64_t m = atomic_load_explicit(&x->kb_mark, memory_order_acquire);
	uint64_t k = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);

	/* With a flusher the tail is its own (filled and sorted in one turn
	 * under idx_mu): its counters, which it writes, are not read here. */
	return (with_tail ? sb_kp_bytes(x->tail) : 0) + (k > m ? k - m : 0);
}

/* ---- indexing the tail ---------------------------------------------------------- */

/*
 * Sort the tail's records below `below` into a run and put it in front
 * of act, merging it with the runs after it while they are no more than
 * twice its size (a binary counter: a few runs, each key copied a few
 * times). The run is in act before its records leave the tail, under one
 * exclusive hold of `lock`: a reader sees each record in one or the other.
 * will_freeze (maintain): 2, act is frozen next; 1, it is if due with
 * the new run (act_due); then its runs are not merged here, the table
 * write merges them. [idx_mu]
 */
static int index_batch(sb_kx *x, int will_freeze, uint64_t below, uint64_t bytes)
{
	sb_kr *r = NULL, *old[RUNS_MAX];
	sb_kp_pos pos;
	size_t k = 0;
	int rc;

	if (below <= x->idx_end) {
		sb_kp_trim(x->tail); /* idle: the spare chunks are not needed */
		return 0;
	}
	if ((rc = sb_kp_take(x->tail, below, x->pool, &r, &pos)))
		return rc;
	if (!r)
		sb_kp_trim(x->tail);
	/* Runs are changed only here, under idx_mu: reading act needs no lock.
	 * When act is frozen right after (maintain), its runs are merged as
	 * the table is written: no merge here. */
	if (r && will_freeze == 1)
		will_freeze = atomic_load(&x->act_bytes) + sb_kr_bytes(r) >= x->p.memtable_bytes ||
			      bytes - atomic_load(&x->act_mark) >= SB_KX_REPLAY_BYTES;
	while (r && k < x->nact &&
	       (x->nact == RUNS_MAX || (!will_freeze && sb_kr_bytes(x->act[k]) < sb_kx_batch_bytes(x) &&
					2 * sb_kr_bytes(r) >= sb_kr_bytes(x->act[k])))) {
		sb_kr *m;
		if (sb_kr_merge(r, x->act[k], &m)) {
			if (x->nact < RUNS_MAX)
				break; /* no memory for the merge: keep the runs apart */
			sb_kr_free(r);
			return -ENOMEM;
		}
		sb_kr_free(r); /* this call's (the batch or a merge): nobody saw it */
		r = m;
		old[k] = x->act[k];
		k++;
	}
	uint64_t ab = 0;
	pthread_rwlock_wrlock(&x->lock);
	if (r) {
		memmove(x->act + 1, x->act + k, (x->nact - k) * sizeof(*x->act));
		x->act[0] = r;
		x->nact = x->nact - k + 1;
	}
	sb_kp_release(x->tail, &pos);
	x->idx_end = below;
	for (size_t i = 0; i < x->nact; i++)
		ab += sb_kr_bytes(x->act[i]);
	pthread_rwlock_unlock(&x->lock);
	/* No reader is inside the merged runs now (they held the lock shared). */
	for (size_t i = 0; i < k; i++)
		sb_kr_free(old[i]);
	atomic_store(&x->act_bytes, ab);
	x->idx_bytes = bytes;
	return 0;
}

/* The tail is filled from the log up to a batch, then sorted (the batch
 * and its run in a core's cache; the tail's chunks go back to its spares). */
static uint64_t fill_bytes(const sb_kx *x)
{
	return sb_kx_batch_bytes(x);
}

typedef struct fill_ctx {
	sb_kx *x;
	uint64_t done;   /* every keyed record below is in the tail */
	uint64_t limit;  /* tail bytes to stop at */
	int full;
} fill_ctx;

static int fill_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v)
{
	fill_ctx *c = arg;
	int rc = sb_kp_put(c->x->tail, key, klen, v);

	if (rc)
		return rc;
	c->done = v->offset + 1;
	if (sb_kp_bytes(c->x->tail) >= c->limit) {
		c->full = 1;
		return 1;
	}
	return 0;
}

/* Read the keyed records of [walk_end, to) from the log into the tail,
 * up to fill_bytes: *more when it stopped there (walk_end is where).
 * Nothing is read when no keyed record was noted past walk_end. kb is
 * noted_kbytes loaded before `to`: all of its records are below `to`.
 * [idx_mu] */
static int fill(sb_kx *x, uint64_t to, uint64_t kb, int *more)
{
	uint64_t from = atomic_load_explicit(&x->walk_end, memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&x->last_keyed, memory_order_acquire);
	fill_ctx c = {x, from, fill_bytes(x), 0};
	int rc = 0;

	*more = 0;
	if (from >= to) { /* read to there already (a batch ended at it) */
		atomic_store_explicit(&x->kb_mark, kb, memory_order_release);
		return 0;
	}
	if (last > from && x->p.walk)
		rc = x->p.walk(x->p.walk_arg, from, to, fill_one, &c);
	if (c.full || rc) {
		/* how far it came (stored once: the appender's line is near) */
		atomic_store_explicit(&x->walk_end, c.done, memory_order_release);
		*more = c.full;
		return c.full ? 0 : rc; /* the rest next time */
	}
	atomic_store_explicit(&x->walk_end, to, memory_order_release);
	atomic_store_explicit(&x->kb_mark, kb, memory_order_release);
	return 0;
}

/* Read the keyed records below noted_end from the log and index them, a
 * batch (fill_bytes) at a time, stopping early (the rest waits in the log)
 * once the active runs hold act_cap bytes. [idx_mu] */
static int index_tail(sb_kx *x, int will_freeze, uint64_t act_cap)
{
	uint64_t kb = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);
	uint64_t below = atomic_load_explicit(&x->noted_end, memory_order_acquire);
	uint64_t bytes = atomic_load_explicit(&x->noted_bytes, memory_order_acquire);
	int rc, more;

	atomic_store(&x->woken, 0);
	do {
		if ((rc = fill(x, below, kb, &more)))
			return rc;
		rc = index_batch(x, will_freeze, more ? atomic_load(&x->walk_end) : below, bytes);
	} while (!rc && more && atomic_load(&x->act_bytes) < act_cap);
	return rc;
}

int sb_kx_catch_up(sb_kx *x)
{
	pthread_mutex_lock(&x->idx_mu);
	int rc = index_tail(x, 0, UINT64_MAX);
	pthread_mutex_unlock(&x->idx_mu);
	return rc;
}

/* ---- the turns -------------------------------------------------------------- */

/* Freeze act (the records [act_from, idx_end)) for flush_imm. [maint_mu, idx_mu] */
static void freeze(sb_kx *x)
{
	if (x->frozen || x->idx_end <= x->act_from)
		return;
	pthread_rwlock_wrlock(&x->lock);
	memcpy(x->imm, x->act, x->nact * sizeof(*x->act));
	x->nimm = x->nact;
	x->imm_from = x->act_from;
	x->imm_to = x->idx_end - 1;
	x->frozen = 1;
	x->nact = 0;
	x->act_from = x->idx_end;
	pthread_rwlock_unlock(&x->lock);
	atomic_store(&x->act_bytes, 0);
	atomic_store(&x->act_mark, x->idx_bytes);
}

/* Is act due to be written: past key_memtable_bytes, or SB_KX_REPLAY_BYTES
 * of records to replay? [idx_mu] */
static int act_due(sb_kx *x)
{
	return atomic_load(&x->act_bytes) >= x->p.memtable_bytes ||
	       x->idx_bytes - atomic_load(&x->act_mark) >= SB_KX_REPLAY_BYTES;
}

int sb_kx_write_runs_in_merge(sb_kx *x)
{
	pthread_mutex_lock(&x->idx_mu);
	if (act_due(x))
		freeze(x);
	pthread_mutex_unlock(&x->idx_mu);
	return sb_kx_flush_imm(x, 1);
}

/* A turn begins: is it busy (keyidx_write.c)? A flusher's turn is when a
 * batch of keys or more came since its last turn began; or, after a busy
 * turn, while they keep coming at a batch every BUSY_RATE_MS or faster.
 * Without the rate, a short turn (nothing due) made the next one quiet (a
 * few thousand keys in its 2 ms), and that one began a merge of 8 tables
 * (0.2 to 0.5 s at 5,000,000 keys) while the keys went on coming, past
 * the appender's bound: it waited for the merge (docs/BENCHMARKS.md,
 * "Sustained keyed appends"). A turn with no key since the last is quiet.
 * The appender's and the close's turns are busy, and theirs and
 * compaction's leave the flusher's measure alone; the flusher's turn after
 * the appender stepped in is busy: the appender, waiting in its turn,
 * appended nothing, which made the next turn look quiet.
 * [maint_mu] */
#define BUSY_RATE_MS 100
static void turn_begins(sb_kx *x, enum sb_kx_turn who)
{
	uint64_t kb = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);
	uint64_t d = kb - x->maint_kb, batch = sb_kx_batch_bytes(x);
	long long now = mono_ns(), dt = now - x->maint_ns;
	int fast = x->busy && d && (double)d * (BUSY_RATE_MS * 1000000.0) >= (double)batch * (double)dt;

	if (!x->p.background) {
		x->busy = 0;
	} else if (who == TURN_APPENDER || who == TURN_CLOSE) {
		x->busy = 1;
	} else if (who == TURN_COVER) {
		x->busy = x->busy || d >= batch;
	} else {
		uint64_t app = atomic_load(&x->app_sorts) + atomic_load(&x->app_writes);
		x->busy = d >= batch || fast || app != x->maint_app;
		x->maint_kb = kb;
		x->maint_ns = now;
		x->maint_app = app;
	}
}

/* Index the tail; past the limits, freeze the runs and write them as a
 * table; merge tables. With `all`, freeze whatever was indexed. With a
 * flusher, the close counts as busy (turn_begins): the frozen runs are
 * written alone and merges are left to the flusher after the next open (it
 * merges what is due within its first turn), unless the tables are at the
 * busy bound: a close does no more than it must. Without one (no_flusher:
 * the tools) the close merges what is due, as every maintain does. */
int sb_kx_maintain_as(sb_kx *x, int all, enum sb_kx_turn who)
{
	size_t at, k;
	int rc, yielded = 0;

	if (x->p.read_only)
		return sb_kx_catch_up(x);
	pthread_mutex_lock(&x->maint_mu);
	turn_begins(x, who);
again:
	rc = sb_kx_flush_imm(x, 0); /* one left by a failure */
	if (!rc) {
		/* With a flusher, what is frozen is about key_memtable_bytes,
		 * and the keys past it go to fresh runs (up to INDEXER_CAP): a
		 * long write is not followed by a pile of runs frozen at once,
		 * over the appender's bound. */
		uint64_t cap = all || !x->p.background ? UINT64_MAX : x->p.memtable_bytes;
		pthread_mutex_lock(&x->idx_mu);
		rc = index_tail(x, 1 + all, cap);
		if (!rc && (all || act_due(x)))
			freeze(x);
		if (!rc && cap != UINT64_MAX)
			rc = index_tail(x, 0, INDEXER_CAP(x));
		pthread_mutex_unlock(&x->idx_mu);
	}
	if (!rc)
		rc = sb_kx_flush_imm(x, 0);
	while (!rc && sb_kx_merge_due(x, &at, &k))
		rc = sb_kx_merge_at(x, at, k);
	if (rc == -EAGAIN && !yielded) { /* a merge yielded (keyidx_write.c): the runs first */
		yielded = 1;
		x->busy = 1;
		goto again;
	}
	pthread_mutex_unlock(&x->maint_mu);
	if (rc == -ECANCELED) /* the store closes (sb_kx_stop_merges) */
		rc = 0;
	if (rc)
		sb_kx_report(x, SB_REPORT_KEY_INDEX "writing a table failed: %s%s", sb_strerror(rc), "");
	return rc;
}

int sb_kx_maintain(sb_kx *x)
{
	return sb_kx_maintain_as(x, 0, TURN_FLUSHER);
}

int sb_kx_index(sb_kx *x)
{
	int rc, due;

	if (x->p.read_only || !x->p.background)
		return 0;
	uint64_t kb = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);
	uint64_t tb = unindexed_bytes(x, 0), seen = x->idx_seen;

	x->idx_seen = kb;
	if (!tb)
		return 0;
	/* Keys coming (more since the last look) but not a batch yet, or no
	 * room until the flusher freezes the runs: look again soon. A few
	 * keys that stopped coming are read at once. */
	if ((tb < sb_kx_batch_bytes(x) && kb != seen) || atomic_load(&x->act_bytes) >= INDEXER_CAP(x))
		return 1;
	pthread_mutex_lock(&x->idx_mu);
	rc = index_tail(x, 0, INDEXER_CAP(x));
	due = !rc && act_due(x);
	pthread_mutex_unlock(&x->idx_mu);
	return rc ? rc : due ? 2 : 1;
}

int sb_kx_note_end(sb_kx *x, uint64_t next, uint64_t bytes, uint64_t kbytes, uint64_t last_keyed)
{
	uint64_t nb = atomic_load_explicit(&x->noted_bytes, memory_order_relaxed) + bytes;
	uint64_t mt = x->p.memtable_bytes;

	/* last_keyed and noted_end before noted_kbytes: the indexer loads
	 * noted_kbytes first, then noted_end (fill). */
	if (last_keyed)
		atomic_store_explicit(&x->last_keyed, last_keyed, memory_order_release);
	atomic_store_explicit(&x->noted_bytes, nb, memory_order_release);
	atomic_store_explicit(&x->noted_end, next, memory_order_release);
	if (kbytes)
		atomic_store_explicit(&x->noted_kbytes,
				      atomic_load_explicit(&x->noted_kbytes, memory_order_relaxed) + kbytes,
				      memory_order_release);
	if (x->p.read_only) { /* index the replay at open; never write */
		if (sb_kp_bytes(x->tail) >= mt / 2)
			sb_kx_catch_up(x);
		return 0;
	}
	/* Without a flusher (the replay at open, no_flusher) the appender
	 * indexes in batches of half key_memtable_bytes; with one, only when
	 * the flusher is far behind, bounding the reads a get may wait for. */
	uint64_t tb = unindexed_bytes(x, !x->p.background);
	if (x->p.background && x->wake && tb >= sb_kx_batch_bytes(x) &&
	    !atomic_load_explicit(&x->woken, memory_order_relaxed)) {
		atomic_store(&x->woken, 1);
		x->wake(x->wake_arg);
	}
	/* With a flusher (and the indexer), past 4x key_memtable_bytes of
	 * unindexed keys the appender sorts them itself while the runs are
	 * under INDEXER_CAP (the indexer starved of CPU); when they are at it
	 * (the indexer waits for the flusher's freeze), or past it by 2x
	 * key_memtable_bytes (readers' catch-ups), it waits for the flusher
	 * and writes the next table itself. */
	uint64_t lim = x->p.background ? 4 * mt : mt / 2;
	uint64_t rlim = x->p.background ? 2 * (uint64_t)SB_KX_REPLAY_BYTES : SB_KX_REPLAY_BYTES;
	uint64_t ab = atomic_load(&x->act_bytes);
	int act_over = ab >= (x->p.background ? INDEXER_CAP(x) + lim / 2 : mt) ||
		       (x->p.background && tb >= lim && ab >= INDEXER_CAP(x)) ||
		       nb - atomic_load(&x->act_mark) >= rlim;
	if (tb < lim && !act_over)
		return 0;
	/* counted first: the flusher's next turn sees it (turn_begins) */
	if (x->p.background && !act_over) {
		atomic_fetch_add_explicit(&x->app_sorts, 1, memory_order_relaxed);
		sb_kx_catch_up(x); /* only sort: table writes stay the flusher's */
	} else {
		if (x->p.background)
			atomic_fetch_add_explicit(&x->app_writes, 1, memory_order_relaxed);
		sb_kx_maintain_as(x, 0, TURN_APPENDER); /* a failed write is retried later */
	}
	return 0;
}

int sb_kx_sync_tables(sb_kx *x)
{
	char (*names)[48] = NULL;
	size_t n = 0;
	uint64_t to = 0;
	int rc = 0;

	if (!atomic_exchange(&x->lazy_new, 0))
		return 0;
	pthread_rwlock_rdlock(&x->lock);
	uint64_t dt = atomic_load(&x->durable_to);
	if (x->nt && !(names = malloc(x->nt * sizeof(*names))))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < x->nt; i++) {
		if (sb_kt_durable(x->t[i]) || sb_kt_last(x->t[i]) < dt)
			continue;
		snprintf(names[n++], sizeof(*names), "%s", sb_kt_filename(x->t[i]));
		to = sb_kt_last(x->t[i]) + 1 > to ? sb_kt_last(x->t[i]) + 1 : to;
	}
	pthread_rwlock_unlock(&x->lock);
	/* A table merged meanwhile is gone: its merge's table was synced. */
	for (size_t i = 0; !rc && i < n; i++)
		if ((rc = sb_fdatasync_file(x->p.io, x->dir, names[i])) == -ENOENT)
			rc = 0;
	if (!rc && n)
		rc = sb_fsync_dir(x->p.io, x->dir);
	if (rc) {
		atomic_store(&x->lazy_new, 1); /* tried again */
		sb_kx_report(x, SB_REPORT_KEY_INDEX "syncing a table failed: %s%s", sb_strerror(rc), "");
	} else {
		uint64_t cur = atomic_load(&x->durable_to);
		while (cur < to && !atomic_compare_exchange_weak(&x->durable_to, &cur, to))
			;
	}
	free(names);
	return rc;
}

/* The first offset the synced tables do not cover: a table published
 * lazily and not synced since covers nothing a crash may not take. */
static uint64_t durably_covered(sb_kx *x)
{
	pthread_rwlock_rdlock(&x->lock);
	uint64_t covered = x->covered, dt = atomic_load(&x->durable_to);
	for (size_t i = 0; i < x->nt; i++)
		if (!sb_kt_durable(x->t[i]) && sb_kt_last(x->t[i]) >= dt && sb_kt_first(x->t[i]) < covered)
			covered = sb_kt_first(x->t[i]);
	pthread_rwlock_unlock(&x->lock);
	return covered;
}

uint64_t sb_kx_cover(sb_kx *x, uint64_t below)
{
	uint64_t covered = durably_covered(x);

	if (covered >= below || x->p.read_only)
		return covered;
	sb_kx_maintain_as(x, 1, TURN_COVER); /* a failure is reported; what is covered is said */
	sb_kx_sync_tables(x);
	return durably_covered(x);
}

void sb_kx_stop_merges(sb_kx *x)
{
	atomic_store(&x->stop_merges, 1);
}
