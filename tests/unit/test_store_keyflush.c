/*
 * test_store_keyflush.c - the key index while keys come faster than the
 * flusher writes tables (store/keyidx.h): the store's indexer thread keeps
 * the runs up with the appends while the flusher is stuck in a table
 * write, so that the appender never indexes for it; and a busy flusher
 * writes the frozen runs alone (no carry, no merge) and merges the tables
 * it left, more at once, on a quieter turn, every key's latest record
 * found all along and after a reopen (a log in memory, util_flog.h). (Its
 * crashes, lazy tables, and merges that yield: test_store_keyflush_faults.c.)
 * SB_KEYFLUSH_ROUNDS: the busy flushes of the longest case (default
 * 2 * SB_KX_MERGE_WIDTH + 3).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "keyidx.h"
#include "keytable.h"
#include "util_faultio.h"
#include "util_flog.h"
#include "util_store.h"

UT_ENV_FIXTURE("keyflush")

/* 300 s: a hang's bound, not a speed target (the crash test, now in
 * test_store_keyflush_faults.c, ran past 120 s under ASan at load 8 on 2
 * cores, beside an exploratory tester) */
TestSuite(keyflush, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 300);

/* ---- the indexer thread --------------------------------------------------- */

static void append_keys(sb_log *l, uint64_t from, uint64_t to)
{
	char k[32];
	uint8_t v[8];

	for (uint64_t i = from; i < to; i++) {
		memcpy(v, &i, sizeof(v));
		sb_record_in r = {.key = k, .key_len = uk_skey(i, k), .value = v, .value_len = sizeof(v)};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
}

static void check_keys(sb_log *l, uint64_t n, uint64_t step, const char *when)
{
	char k[32];
	uint8_t got[8];
	size_t nread;

	for (uint64_t i = 0; i < n; i += step) {
		size_t kl = uk_skey(i, k);
		cr_assert_eq(sb_log_get_key(l, k, kl, got, sizeof(got), &nread, NULL), 0, "%s: %s", when, k);
		cr_assert(nread == sizeof(got) && !memcmp(got, &i, sizeof(got)), "%s: %s", when, k);
	}
}

/*
 * A store with its key writer whose writes of a table are held (a table
 * of runs is not synced when written: keyidx_write.c; fio_slow FIO_HOLD,
 * released at the end). A little more than key_memtable_bytes of keys,
 * and the key writer starts its first table write (its temp file
 * appears), where it stalls. Then 2x
 * key_memtable_bytes of keys more (under the appender's bound, 4x, and
 * within the indexer's, 4x of runs, which take more a key): within
 * a second every key is in the runs while the table is still being
 * written (the indexer read them), and the appender never indexed or
 * wrote one itself. Then every key is found, and after a reopen.
 */
Test(keyflush, indexer_keeps_up_while_the_flusher_writes)
{
	sb_log_config c;
	sb_store_options o;
	sb_store *s;
	fio *f = fio_new(env.stash);
	char tdir[4096];

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	c.segment_bytes = 64u << 20; /* no roll: no fdatasync of the appender's */
	c.key_memtable_bytes = 64 * 1024;
	fio_set_sync(f, 0, 0);
	sb_store_options_default(&o);
	o.defaults = c;
	o.io = fio_io(f);
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_not_null(l);
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	fio_slow(f, FIO_PWRITE, FIO_HOLD, SB_KT_SUFFIX ".tmp");
	uint64_t per_mt = c.key_memtable_bytes / SB_KX_KEY_BYTES(15), n1 = per_mt + per_mt / 4, n = n1 + 2 * per_mt;
	append_keys(l, 0, n1);
	int writing = 0;
	for (int w = 0; w < 300 && !writing; w++) {
		writing = uk_table_in_progress(tdir);
		if (!writing)
			usleep(10000);
	}
	cr_assert(writing, "the flusher wrote no table within 3 s of a key_memtable_bytes of keys");
	append_keys(l, n1, n);
	sb_log_key_stats ks;
	int all = 0;
	for (int w = 0; w < 100 && !all; w++) {
		cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
		all = ks.memtable_keys + ks.table_keys == n;
		if (!all)
			usleep(10000);
	}
	cr_assert(all, "%llu of %llu keys read within a second of the appends",
		  (unsigned long long)(ks.memtable_keys + ks.table_keys), (unsigned long long)n);
	cr_assert_eq(ks.tables, 0, "the table was written: the flusher was not held up, the test proves nothing");
	cr_assert_eq(ks.appender_sorts, 0, "the appender indexed %llu times", (unsigned long long)ks.appender_sorts);
	cr_assert_eq(ks.appender_writes, 0, "the appender wrote %llu tables", (unsigned long long)ks.appender_writes);
	fio_slow(f, FIO_PWRITE, 0, NULL);
	check_keys(l, n, 1, "after the burst");
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	check_keys(ut_topic(s, "t"), n, 7, "after a reopen");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

/*
 * The key writer is not the flusher: while the flusher's sync of a sealed
 * segment stalls (the first segment's fdatasync is held here until the
 * end; a sealed 128 MiB segment takes a few hundred ms on a busy disk), 2x
 * key_memtable_bytes of keys (under the appender's bound, 4x) are written
 * as tables within 3.5 s, and the appender wrote none itself. When one
 * thread did both, the tables waited for the sync, the keys piled up, and
 * the appender wrote them (docs/BENCHMARKS.md, "Sustained keyed appends").
 */
Test(keyflush, tables_are_written_while_a_sealed_segment_syncs)
{
	sb_log_config c;
	sb_store_options o;
	sb_store *s;
	fio *f = fio_new(env.stash);

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	c.segment_bytes = 64 * 1024;
	c.key_memtable_bytes = 64 * 1024;
	fio_set_sync(f, 0, 0);
	sb_store_options_default(&o);
	o.defaults = c;
	o.io = fio_io(f);
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_not_null(l);
	/* the first segment's: the appender syncs each new one it creates */
	fio_slow(f, FIO_FDATASYNC, FIO_HOLD, "/00000000000000000000" SB_SEG_SUFFIX);
	/* a segment sealed (unkeyed records: nothing for the key writer) */
	uint8_t v[512] = {0};
	sb_record_in r = {.value = v, .value_len = sizeof(v)};
	for (int i = 0; i < 200; i++)
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	for (int w = 0; w < 300 && !fio_slowed(f); w++) /* the flusher's period: 100 ms */
		usleep(10000);
	cr_assert_geq(fio_slowed(f), 1, "no segment was synced: the test proves nothing");
	uint64_t n = 2 * c.key_memtable_bytes / SB_KX_KEY_BYTES(15);
	append_keys(l, 0, n);
	sb_log_key_stats ks;
	for (int w = 0; w < 350; w++) {
		cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
		if (ks.tables)
			break;
		usleep(10000);
	}
	cr_assert_geq(ks.tables, 1, "no key table within 3.5 s while the flusher syncs a sealed segment");
	cr_assert_eq(ks.appender_writes, 0, "the appender wrote %llu tables", (unsigned long long)ks.appender_writes);
	fio_slow(f, FIO_FDATASYNC, 0, NULL);
	check_keys(l, n, 1, "after the stall");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

/* ---- a busy flusher -------------------------------------------------------- */

/* `rounds` busy flushes (each a key_memtable_bytes and some of keys
 * appended since the flusher's last turn), then a turn with none: returns
 * the tables of level 1 and above it left. */
static int busy_then_quiet(const char *dir, int rounds)
{
	uk_flog g = {0};
	sb_kx *x = uk_flog_open(dir, &g, 0, 0);
	sb_kx_stats st;

	for (int r = 0; r < rounds; r++) {
		uk_flog_append(x, &g, UK_MT + UK_MT / 5);
		cr_assert_eq(sb_kx_maintain(x), 0);
		sb_kx_get_stats(x, &st);
		cr_assert_eq(st.tables, (uint32_t)r + 1, "busy flush %d: %u tables (a carry or a merge while busy)",
			     r + 1, st.tables);
		uk_flog_check(x, &g, "busy");
	}
	cr_assert_eq(sb_kx_maintain(x), 0); /* no keys since: the merges */
	sb_kx_get_stats(x, &st);
	cr_assert_leq(st.tables, (uint32_t)rounds - 2, "%u tables left after a quiet turn (of %d)", st.tables,
		      rounds);
	int upper = uk_upper_tables(dir);
	uk_flog_check(x, &g, "quiet");
	cr_assert_eq(sb_kx_close(x, 1), 0);
	/* reopen: the tables tile what they cover; the rest is replayed */
	x = uk_flog_reopen(dir, &g);
	uk_flog_check(x, &g, "reopened");
	cr_assert_eq(sb_kx_close(x, 0), 0);
	return upper;
}

/*
 * SB_KX_MERGE_WIDTH (W) to SB_KEYFLUSH_ROUNDS busy flushes: each writes
 * one level-0 table (no carry, no merge: the tables grow by one a flush),
 * every key's latest record found after each; the quiet turn after them
 * merges groups of W to 2W level-0 tables: at the head, or, when it also
 * flushes runs that came due (with the carry of the W - 1 newest tables
 * into a level-1 table), behind that table. Every key found, and after a
 * reopen; both shapes (one and two tables of level 1) are met over the
 * range.
 */
Test(keyflush, busy_flusher_defers_merges)
{
	const char *e = getenv("SB_KEYFLUSH_ROUNDS");
	int maxr = e && atoi(e) >= SB_KX_MERGE_WIDTH ? atoi(e) : 2 * SB_KX_MERGE_WIDTH + 3;
	int shapes[3] = {0};

	cr_assert(mkdir(env.store, 0755) == 0 || errno == EEXIST);

	for (int rounds = SB_KX_MERGE_WIDTH; rounds <= maxr; rounds++) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%.4000s/b%d", env.store, rounds);
		cr_assert_eq(mkdir(dir, 0755), 0);
		int upper = busy_then_quiet(dir, rounds);
		cr_log_info("%d busy flushes: %d tables of level 1", rounds, upper);
		shapes[upper < 2 ? upper : 2]++;
	}
	cr_assert(shapes[1] > 0 && shapes[2] > 0, "one level-1 table %d times, two %d: not both shapes met",
		  shapes[1], shapes[2]);
}

static sb_kx *flog_in(const char *name, uk_flog *g, char *dir, size_t cap)
{
	cr_assert(mkdir(env.store, 0755) == 0 || errno == EEXIST);
	snprintf(dir, cap, "%.4000s/%s", env.store, name);
	cr_assert_eq(mkdir(dir, 0755), 0);
	return uk_flog_open(dir, g, 0, 0);
}

/*
 * A turn that meets fewer than a batch of keys, but soon after a busy turn
 * (they keep coming at more than a batch every 100 ms), is busy too: it
 * merges nothing. Before, it was quiet, and at 5,000,000 keys it began a
 * merge of 8 tables (0.2 to 0.5 s) while the keys kept coming, up to the
 * appender's bound. A turn with no key since is quiet: the merge then.
 */
Test(keyflush, keys_still_coming_keep_the_flusher_busy)
{
	uk_flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("rate", &g, dir, sizeof(dir));
	sb_kx_stats st;

	uk_busy_flushes(x, &g, SB_KX_MERGE_WIDTH, UK_MT + UK_MT / 5);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, SB_KX_MERGE_WIDTH);
	/* just under a batch (UK_MT / 8), at once */
	uk_flog_append(x, &g, UK_MT / 8 - 2 * SB_KX_KEY_BYTES(15));
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_geq(st.tables, SB_KX_MERGE_WIDTH, "%u tables: a merge while keys were still coming", st.tables);
	uint32_t busy_tables = st.tables;
	uk_flog_check(x, &g, "keys coming");
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_lt(st.tables, busy_tables, "%u tables after a quiet turn", st.tables);
	uk_flog_check(x, &g, "quiet");
	cr_assert_eq(sb_kx_close(x, 0), 0);
}

/*
 * The table count stays bounded whatever the bursts: random bursts of busy
 * flushes (1 to 3 SB_KX_MERGE_WIDTH long), each followed by a quiet turn,
 * and now and then a close and a reopen (the close merges nothing): after
 * every quiet turn at most SB_KX_BUSY_TABLES_MAX tables (a get reads that
 * many at most), every key's latest record found (every seventh record a
 * tombstone: merges over older tables keep them). Before, a group of fewer than
 * SB_KX_MERGE_WIDTH tables of a level left between tables of other levels
 * was never merged again, and the count grew past the bound (29 to 33
 * tables seen by a tester). SB_KEYFLUSH_BOUND_STEPS: bursts (default 60).
 */
Test(keyflush, table_count_stays_bounded)
{
	const char *e = getenv("SB_KEYFLUSH_BOUND_STEPS");
	int steps = e ? atoi(e) : 60;
	uint64_t seed = 20261201;
	uk_flog g = {.tomb = 7};
	char dir[4200];
	sb_kx *x = flog_in("bound", &g, dir, sizeof(dir));
	sb_kx_stats st;
	uint32_t most = 0;

	for (int b = 0; b < steps; b++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int rounds = 1 + (int)((seed >> 33) % (3 * SB_KX_MERGE_WIDTH));
		for (int r = 0; r < rounds; r++) {
			uk_flog_append(x, &g, UK_MT + UK_MT / 5);
			cr_assert_eq(sb_kx_maintain(x), 0);
		}
		cr_assert_eq(sb_kx_maintain(x), 0); /* quiet */
		sb_kx_get_stats(x, &st);
		most = st.tables > most ? st.tables : most;
		cr_assert_leq(st.tables, SB_KX_BUSY_TABLES_MAX, "burst %d: %u tables after a quiet turn", b, st.tables);
		uk_flog_check(x, &g, "after a quiet turn");
		if ((seed >> 40) % 4 == 0) {
			cr_assert_eq(sb_kx_close(x, 1), 0);
			x = uk_flog_reopen(dir, &g);
			sb_kx_set_background(x, 1);
		}
	}
	uk_flog_check(x, &g, "after the bursts");
	cr_assert_eq(sb_kx_close(x, 0), 0);
	cr_log_info("at most %u tables after a quiet turn", most);
}

/*
 * A close leaves merges to the next open: with SB_KX_MERGE_WIDTH level-0
 * tables due for a merge, a store that is closing (sb_kx_stop_merges, as sb_store_close
 * does before it joins the flusher) abandons the merge the flusher
 * starts (no table changed, no temp file left), and the close itself
 * merges nothing either (under SB_KX_BUSY_TABLES_MAX tables, as a busy
 * flusher: its runs alone make a level-0 table); after the
 * reopen the flusher's first turn merges them. Every key found at each
 * step.
 */
Test(keyflush, a_close_leaves_merges_to_the_next_open)
{
	uk_flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("c", &g, dir, sizeof(dir));
	sb_kx_stats st;

	uk_busy_flushes(x, &g, SB_KX_MERGE_WIDTH, UK_MT + UK_MT / 5);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, SB_KX_MERGE_WIDTH, "%u tables after %d busy flushes", st.tables, SB_KX_MERGE_WIDTH);
	sb_kx_stop_merges(x);
	cr_assert_eq(sb_kx_maintain(x), 0, "an abandoned merge is no failure");
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, SB_KX_MERGE_WIDTH, "the merge was not abandoned: %u tables", st.tables);
	cr_assert(!uk_table_in_progress(dir), "the abandoned merge left its temp file");
	uk_flog_check(x, &g, "merge abandoned");
	cr_assert_eq(sb_kx_close(x, 1), 0);
	cr_assert_eq(uk_upper_tables(dir), 0, "the close merged tables");
	x = uk_flog_reopen(dir, &g);
	sb_kx_set_background(x, 1);
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert(st.tables < SB_KX_MERGE_WIDTH && uk_upper_tables(dir) > 0,
		  "the first turn after the reopen merged nothing (%u tables)", st.tables);
	uk_flog_check(x, &g, "merged after the reopen");
	cr_assert_eq(sb_kx_close(x, 0), 0);
}

/*
 * With a flusher, the runs frozen for a table are about key_memtable_bytes
 * even when more keys wait (3.5x here): the rest goes to fresh runs, so
 * that a flush after a long write is not a pile of runs frozen at once.
 */
Test(keyflush, a_flush_freezes_about_key_memtable_bytes)
{
	uk_flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("f", &g, dir, sizeof(dir));
	sb_kx_stats st;

	uk_flog_append(x, &g, 7 * UK_MT / 2);
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, 1);
	uint64_t per_mt = UK_MT / SB_KX_KEY_BYTES(15);
	cr_assert_leq(st.covered_to + 1, per_mt + per_mt / 2, "the table covers %llu records, a memtable holds %llu",
		      (unsigned long long)st.covered_to + 1, (unsigned long long)per_mt);
	uk_flog_check(x, &g, "after the flush");
	cr_assert_eq(sb_kx_close(x, 0), 0);
}

/*
 * Runs the indexer filled up to its bound (4x key_memtable_bytes, waiting
 * for the flusher's freeze) do not stop the appender: it writes no table
 * itself and sorts nothing until 4x key_memtable_bytes more wait in the
 * log.
 */
Test(keyflush, runs_at_the_indexer_bound_do_not_stop_the_appender)
{
	uk_flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("i", &g, dir, sizeof(dir));
	sb_kx_stats st;

	for (int i = 0; i < 1000; i++) {
		uk_flog_append(x, &g, UK_MT / 8);
		cr_assert_geq(sb_kx_index(x), 0);
		sb_kx_get_stats(x, &st);
		if (st.mt_bytes >= 4 * UK_MT)
			break;
	}
	cr_assert_geq(st.mt_bytes, 4 * UK_MT, "the indexer stopped at %llu bytes of runs", (unsigned long long)st.mt_bytes);
	uk_flog_append(x, &g, 2 * UK_MT);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.appender_writes, 0, "the appender wrote a table");
	cr_assert_eq(st.tables, 0);
	cr_assert_eq(st.appender_sorts, 0, "the appender indexed");
	uk_flog_check(x, &g, "with keys waiting in the log");
	cr_assert_eq(sb_kx_close(x, 0), 0);
}
