/*
 * keyidx_write.c - a key index's table writes (keyidx_impl.h): a flush of
 * the frozen runs, with the newest tables its carry takes in, and merges
 * of tables; while keys come faster than they are written (busy), a flush
 * writes the runs alone and merges wait. [maint_mu]
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "keyidx_impl.h"

/* What a table write adds entries through: tombstones dropped when no
 * older table is left under them; a merge (tables in it) abandoned with
 * -ECANCELED when the store closes (stop_merges), and one that `yields`
 * with -EAGAIN when the keys pile up meanwhile (PILED), for the table they
 * make is due first: both looked at before the first entry and every
 * 256th. */
typedef struct wctx {
	sb_kt_writer *w;
	sb_kx *x;
	int drop_tombstones, may_cancel, yields, interleave;
	uint32_t n;
} wctx;

/* The runs waiting for the flusher hold half of what the indexer may put
 * in them (INDEXER_CAP): a merge taking longer (0.2 to 0.7 s for 8 tables
 * at 5,000,000 keys) would bring the appender to its bound, and it would
 * wait for the merge. */
#define PILED(x) (atomic_load(&(x)->act_bytes) >= INDEXER_CAP(x) / 2)

static int add_entry(void *arg, const uint8_t *k, size_t kl, const sb_mt_val *v)
{
	wctx *c = arg;

	if (c->drop_tombstones && (v->flags & SB_MT_TOMBSTONE))
		return 0;
	if (c->may_cancel && !(c->n++ & 255)) {
		if (atomic_load(&c->x->stop_merges))
			return -ECANCELED;
		if (c->yields && PILED(c->x))
			return -EAGAIN;
		if (c->interleave && c->x->nt < SB_KX_TABLES_MAX &&
		    atomic_load(&c->x->act_bytes) >= c->x->p.memtable_bytes) {
			int rc = sb_kx_write_runs_in_merge(c->x);
			if (rc)
				return rc;
		}
	}
	return sb_kt_writer_add(c->w, k, kl, v);
}

/* Past this many tables with no group of a level due, the adjacent
 * SB_KX_MERGE_WIDTH tables of fewest entries are merged: groups of fewer
 * than SB_KX_MERGE_WIDTH tables of a level left between tables of other
 * levels (by busy flushes) are never due by level, and the count would
 * grow past SB_KX_BUSY_TABLES_MAX. Such a merge never yields. */
#define BOUND_TABLES (SB_KX_BUSY_TABLES_MAX - SB_KX_MERGE_WIDTH)

/* What a table write takes in: the frozen runs alone; the runs with the
 * newest tables (a carry); tables alone (a merge). */
enum wkind { WT_RUNS, WT_CARRY, WT_MERGE };

/* Write sources s[0..n) as the table [first, last] and open it. One with
 * tables in it may be cancelled, and yields under BOUND_TABLES; a merge
 * writes the runs that come due meanwhile as tables of their own
 * (sb_kx_write_runs_in_merge: a merge forced by the table bound, 16
 * tables at 10,000,000 keys, took 0.5 s while the appender waited). The runs
 * alone, with a flusher, are published lazily (sb_kt_writer_lazy: not
 * synced; sb_kx_sync_tables syncs them, from the store's flusher): an
 * fdatasync waited 0.1 s behind the sync of a sealed segment (128 MiB),
 * the keys meanwhile piled up to the appender's bound. A merge's table is
 * synced before its inputs go. */
static int write_table(sb_kx *x, src *s, size_t n, uint64_t first, uint64_t last, uint64_t max, uint32_t level,
		       int drop_tombstones, enum wkind kind, sb_kt **out)
{
	wctx c = {.x = x, .drop_tombstones = drop_tombstones, .may_cancel = kind != WT_RUNS,
		  .yields = kind != WT_RUNS && x->nt <= BOUND_TABLES, .interleave = kind == WT_MERGE};
	char name[48];
	int lazy = x->p.background && kind == WT_RUNS;
	int rc = sb_kt_writer_new(x->p.io, x->dir, first, last, max, level, &c.w);

	if (rc)
		return rc;
	if (lazy)
		sb_kt_writer_lazy(c.w);
	rc = sb_km_merge(s, n, add_entry, &c);
	if (rc) {
		sb_kt_writer_abort(c.w);
		return rc;
	}
	if ((rc = sb_kt_writer_finish(c.w)))
		return rc;
	sb_kt_name(name, first, last);
	if (lazy)
		atomic_store(&x->lazy_new, 1);
	return sb_kt_open_written(x->p.io, x->dir, name, !lazy, out);
}

/*
 * How many of the newest tables the next flush takes in, and the level of
 * the table it writes: a flush is a merge counter of base
 * SB_KX_MERGE_WIDTH's increment, done in one pass. A level-0 table joining
 * SB_KX_MERGE_WIDTH - 1 level-0 tables would be merged with them into a
 * level-1 table at once, and that with SB_KX_MERGE_WIDTH - 1 level-1
 * tables into a level 2 one, and so on: the frozen runs are written with
 * all of those into the level the carry stops at, rather than as a
 * level-0 table rewritten at once (each key written fewer times; the
 * tables are the ones the counter leaves). [maint_mu; tables only change
 * under it] */
static size_t flush_carry(sb_kx *x, uint32_t *level)
{
	size_t k = 0;
	uint32_t lv = 0;

	pthread_rwlock_rdlock(&x->lock);
	for (;;) {
		size_t j = 0;
		while (j < SB_KX_MERGE_WIDTH - 1 && k + j < x->nt && sb_kt_level(x->t[k + j]) == lv)
			j++;
		if (j < SB_KX_MERGE_WIDTH - 1)
			break;
		k += j;
		lv++;
	}
	pthread_rwlock_unlock(&x->lock);
	*level = lv;
	return k;
}

/* Are keys coming in faster than the flusher writes tables (a batch or
 * more of them since its last turn began, or the runs PILED, looked at
 * again before each write: keys that came during the turn's first write
 * make the rest of it busy; turn_begins, keyidx_turn.c, says how a turn
 * begins)? Then a flush writes the frozen runs alone (level 0) and
 * merges wait for a quieter turn, while there are fewer than
 * SB_KX_BUSY_TABLES_MAX tables: the write is the shortest, and the merge
 * later takes in more tables at once (fewer rewrites a key). Only with a
 * flusher, or at the close (maintain). [maint_mu: tables only change
 * under it] */
static int busy(sb_kx *x)
{
	if (x->nt >= SB_KX_BUSY_TABLES_MAX)
		return 0;
	if (!x->busy && x->p.background &&
	    (atomic_load_explicit(&x->noted_kbytes, memory_order_acquire) - x->maint_kb >= sb_kx_batch_bytes(x) ||
	     PILED(x)))
		x->busy = 1;
	return x->busy;
}

static void remove_tables(sb_kx *x, sb_kt **in, size_t k)
{
	/* No reader is inside them now (they held the lock shared). */
	for (size_t i = 0; i < k; i++) {
		if (x->p.read_only)
			sb_kt_close(in[i]);
		else
			sb_kt_remove(x->p.io, in[i]);
	}
}

/* Write the frozen runs (with the tables flush_carry names) as the newest
 * table. [maint_mu] */
int sb_kx_flush_imm(sb_kx *x, int alone)
{
	src *s;
	sb_kr *runs[RUNS_MAX];
	sb_kt **in = NULL, *t;
	uint64_t from, to, max = 0;
	uint32_t level;
	size_t n, k;
	int rc = -ENOMEM, all;

	/* imm is set and cleared only under maint_mu: no lock to read it. */
	n = x->nimm;
	from = x->imm_from;
	to = x->imm_to;
	if (!x->frozen)
		return 0;
	level = 0;
	k = alone || busy(x) ? 0 : flush_carry(x, &level);
	if (!(s = calloc(n + k, sizeof(*s))) || (k && !(in = malloc(k * sizeof(*in)))))
		goto out_free;
	memcpy(runs, x->imm, n * sizeof(*runs));
	for (size_t i = 0; i < n; i++) {
		s[i].is_run = 1;
		sb_kr_seek(runs[i], NULL, 0, &s[i].ri);
		max += sb_kr_count(runs[i]);
	}
	pthread_rwlock_rdlock(&x->lock);
	if (k)
		memcpy(in, x->t, k * sizeof(*in));
	all = k && k == x->nt;
	pthread_rwlock_unlock(&x->lock);
	for (size_t i = 0; i < k; i++) {
		sb_kt_seek(in[i], NULL, 0, &s[n + i].ki);
		max += sb_kt_count(in[i]);
	}
	if (k)
		from = sb_kt_first(in[k - 1]);
	if ((rc = write_table(x, s, n + k, from, to, max, level, all, k ? WT_CARRY : WT_RUNS, &t)))
		goto out_free;
	pthread_rwlock_wrlock(&x->lock);
	rc = sb_kx_tables_reserve(x, x->nt + 1);
	if (!rc) {
		memmove(x->t + 1, x->t + k, (x->nt - k) * sizeof(*x->t));
		x->t[0] = t;
		x->nt = x->nt - k + 1;
		x->nimm = 0;
		x->frozen = 0;
		x->covered = to + 1;
	}
	pthread_rwlock_unlock(&x->lock);
	if (rc) {
		sb_kt_close(t);
		goto out_free;
	}
	for (size_t i = 0; i < n; i++)
		sb_kr_free(runs[i]);
	remove_tables(x, in, k);
	if (k)
		rc = sb_fsync_dir(x->p.io, x->dir);
out_free:
	free(in);
	free(s);
	return rc;
}

/* Merge tables t[i, i + k) (newest first, adjacent in offsets) into one at
 * place i. [maint_mu] */
int sb_kx_merge_at(sb_kx *x, size_t i, size_t k)
{
	src s[SB_KX_MERGE_WIDTH * 2];
	sb_kt *in[SB_KX_MERGE_WIDTH * 2], *out;
	uint64_t max = 0;
	uint32_t lv = 0, same = 1;
	int rc, all;

	pthread_rwlock_rdlock(&x->lock);
	memcpy(in, x->t + i, k * sizeof(*in));
	all = i + k == x->nt; /* no older table: tombstones can go */
	pthread_rwlock_unlock(&x->lock);
	for (size_t j = 0; j < k; j++) {
		s[j].is_run = 0;
		sb_kt_seek(in[j], NULL, 0, &s[j].ki);
		max += sb_kt_count(in[j]);
		same &= sb_kt_level(in[j]) == sb_kt_level(in[0]);
		lv = sb_kt_level(in[j]) > lv ? sb_kt_level(in[j]) : lv;
	}
	/* A group of one level makes one of the next; a mixed one (the
	 * bound's, merge_due) one of its highest. Tables are only removed
	 * here, under maint_mu: `in` stays valid. */
	rc = write_table(x, s, k, sb_kt_first(in[k - 1]), sb_kt_last(in[0]), max, lv + same, all, WT_MERGE, &out);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&x->lock);
	while (x->t[i] != in[0]) /* moved by tables of runs written meanwhile */
		i++;
	x->t[i] = out;
	memmove(x->t + i + 1, x->t + i + k, (x->nt - i - k) * sizeof(*x->t));
	x->nt -= k - 1;
	pthread_rwlock_unlock(&x->lock);
	remove_tables(x, in, k);
	return sb_fsync_dir(x->p.io, x->dir);
}

/* The first of the SB_KX_MERGE_WIDTH adjacent tables with the fewest
 * entries (the cheapest merge). [lock] */
static size_t cheapest_window(const sb_kx *x)
{
	uint64_t sum = 0, best = UINT64_MAX;
	size_t at = 0;

	for (size_t i = 0; i < x->nt; i++) {
		sum += sb_kt_count(x->t[i]);
		if (i >= SB_KX_MERGE_WIDTH)
			sum -= sb_kt_count(x->t[i - SB_KX_MERGE_WIDTH]);
		if (i + 1 >= SB_KX_MERGE_WIDTH && sum < best) {
			best = sum;
			at = i + 1 - SB_KX_MERGE_WIDTH;
		}
	}
	return at;
}

/* The first group of SB_KX_MERGE_WIDTH or more adjacent tables of a level,
 * newest first: 1 and *at, *k (up to twice SB_KX_MERGE_WIDTH of them; the
 * tables a busy flusher left are merged so, more at once); else, past
 * BOUND_TABLES tables, the cheapest SB_KX_MERGE_WIDTH adjacent ones; or 0.
 * None while busy. [maint_mu] */
int sb_kx_merge_due(sb_kx *x, size_t *at, size_t *k)
{
	int found = 0;

	if (busy(x))
		return 0;
	pthread_rwlock_rdlock(&x->lock);
	for (size_t i = 0, j; i < x->nt && !found; i = j) {
		uint32_t lv = sb_kt_level(x->t[i]);
		for (j = i + 1; j < x->nt && j - i < 2 * SB_KX_MERGE_WIDTH && sb_kt_level(x->t[j]) == lv; j++)
			;
		if (j - i >= SB_KX_MERGE_WIDTH) {
			*at = i;
			*k = j - i;
			found = 1;
		}
	}
	if (!found && x->nt > BOUND_TABLES) {
		*at = cheapest_window(x);
		*k = SB_KX_MERGE_WIDTH;
		found = 1;
	}
	pthread_rwlock_unlock(&x->lock);
	return found;
}
