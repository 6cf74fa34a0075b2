/*
 * test_store_keyflush.c - the key index while keys come faster than the
 * flusher writes tables (store/keyidx.h): the store's indexer thread keeps
 * the runs up with the appends while the flusher is stuck in a table
 * write, so that the appender never indexes for it; and a busy flusher
 * writes the frozen runs alone (no carry, no merge) and merges the tables
 * it left, more at once, on a quieter turn, every key's latest record
 * found all along and after a reopen.
 * SB_KEYFLUSH_ROUNDS: the busy flushes of the longest case (default
 * 2 * SB_KX_MERGE_WIDTH + 3).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
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
#include "util_files.h"
#include "util_keytable.h"
#include "util_store.h"

UT_ENV_FIXTURE("keyflush")

/* 300 s: a hang's bound, not a speed target (the crash test below ran past
 * 120 s under ASan at load 8 on 2 cores, beside an exploratory tester) */
TestSuite(keyflush, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 300);

static size_t skey(uint64_t i, char *buf)
{
	return (size_t)snprintf(buf, 32, "key-%011llu", (unsigned long long)i); /* 15 bytes */
}

/* ---- the indexer thread --------------------------------------------------- */

/* Is a key table being written in dir (its temp file there)? */
static int table_in_progress(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	cr_assert_not_null(d);
	while (!found && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		found = n > 4 && !strcmp(de->d_name + n - 4, ".tmp");
	}
	closedir(d);
	return found;
}

static void append_keys(sb_log *l, uint64_t from, uint64_t to)
{
	char k[32];
	uint8_t v[8];

	for (uint64_t i = from; i < to; i++) {
		memcpy(v, &i, sizeof(v));
		sb_record_in r = {.key = k, .key_len = skey(i, k), .value = v, .value_len = sizeof(v)};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
}

static void check_keys(sb_log *l, uint64_t n, uint64_t step, const char *when)
{
	char k[32];
	uint8_t got[8];
	size_t nread;

	for (uint64_t i = 0; i < n; i += step) {
		size_t kl = skey(i, k);
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
		writing = table_in_progress(tdir);
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

/* A log of keyed records in memory for an sb_kx of its own: record o has
 * key o % KEYS; with tomb, every tomb-th record is a tombstone. */
#define KEYS 300
#define MT (16 * 1024)

typedef struct flog {
	uint64_t n;
	unsigned tomb;
	int distinct;   /* record o has key o (not o % KEYS) */
} flog;

static sb_mt_val flog_val(const flog *g, uint64_t o)
{
	int dead = g->tomb && o % g->tomb == g->tomb - 1;
	return (sb_mt_val){.offset = o, .ts = (int64_t)o, .size = dead ? 0 : 8, .flags = dead ? SB_MT_TOMBSTONE : 0};
}

static int flog_walk(void *arg, uint64_t from, uint64_t to, sb_kx_walk_fn fn, void *fnarg)
{
	flog *g = arg;
	char k[32];

	for (uint64_t o = from; o < to && o < g->n; o++) {
		sb_mt_val v = flog_val(g, o);
		int rc = fn(fnarg, (const uint8_t *)k, skey(g->distinct ? o : o % KEYS, k), &v);
		if (rc)
			return rc;
	}
	return 0;
}

static void flog_append(sb_kx *x, flog *g, uint64_t key_bytes)
{
	for (uint64_t b = 0; b < key_bytes; b += SB_KX_KEY_BYTES(15)) {
		g->n++;
		cr_assert_eq(sb_kx_note_end(x, g->n, 64, SB_KX_KEY_BYTES(15), g->n), 0);
	}
}

/* n busy flushes: `bytes` of keys appended, then a flusher turn, each. */
static void busy_flushes(sb_kx *x, flog *g, int n, uint64_t bytes)
{
	for (int r = 0; r < n; r++) {
		flog_append(x, g, bytes);
		cr_assert_eq(sb_kx_maintain(x), 0);
	}
}

/* Every key's entry names its latest record (a key whose latest record is
 * a tombstone: that tombstone, or none once a merge into the oldest table
 * dropped it). */
static void flog_check(sb_kx *x, const flog *g, const char *when)
{
	char k[32];

	for (uint64_t key = 0; key < KEYS && key < g->n; key++) {
		uint64_t last = (g->n - 1) - ((g->n - 1 + KEYS - key) % KEYS);
		int dead = flog_val(g, last).flags & SB_MT_TOMBSTONE;
		sb_mt_val v;
		int rc = sb_kx_get(x, k, skey(key, k), &v);
		if (dead && rc == -ENOENT)
			continue;
		cr_assert_eq(rc, 0, "%s: key %llu: %d", when, (unsigned long long)key, rc);
		cr_assert_eq(v.offset, last, "%s: key %llu at %llu, its latest is %llu", when, (unsigned long long)key,
			     (unsigned long long)v.offset, (unsigned long long)last);
		cr_assert_eq(v.flags & SB_MT_TOMBSTONE, (unsigned)dead, "%s: key %llu: tombstone flag %u, want %d",
			     when, (unsigned long long)key, v.flags & SB_MT_TOMBSTONE, dead);
	}
}

static sb_kx *flog_open(const char *dir, flog *g, uint64_t start, uint64_t next)
{
	sb_kx_params p = {.io = sb_io_default(), .dir = dir, .topic = "t", .memtable_bytes = MT,
			  .background = 1, .walk = flog_walk, .walk_arg = g};
	sb_kx *x;

	cr_assert_eq(sb_kx_open(&p, start, next, &x), 0, "open of the key index of %s", dir);
	return x;
}

/* Open as a log of g->n records does: the tables, then the replay of the
 * records past what they cover. */
static sb_kx *flog_reopen(const char *dir, flog *g)
{
	sb_kx *x = flog_open(dir, g, 0, g->n);
	char k[32];

	for (uint64_t o = sb_kx_replay_from(x); o < g->n; o++) {
		sb_mt_val v = flog_val(g, o);
		cr_assert_eq(sb_kx_put(x, k, skey(o % KEYS, k), &v), 0);
	}
	return x;
}

/* The key tables in dir of level 1 and above; they tile the offsets. */
static int upper_tables(const char *dir)
{
	ut_kt_info ti[64];
	int n = ut_kt_list(dir, ti, 64), upper = 0;

	cr_assert_geq(n, 0, "the tables of %s", dir);
	for (int i = 0; i < n; i++) {
		upper += ti[i].level > 0;
		if (i)
			cr_assert_eq(ti[i].last + 1, ti[i - 1].first, "the tables do not tile the offsets");
	}
	return upper;
}

/* `rounds` busy flushes (each a key_memtable_bytes and some of keys
 * appended since the flusher's last turn), then a turn with none: returns
 * the tables of level 1 and above it left. */
static int busy_then_quiet(const char *dir, int rounds)
{
	flog g = {0};
	sb_kx *x = flog_open(dir, &g, 0, 0);
	sb_kx_stats st;

	for (int r = 0; r < rounds; r++) {
		flog_append(x, &g, MT + MT / 5);
		cr_assert_eq(sb_kx_maintain(x), 0);
		sb_kx_get_stats(x, &st);
		cr_assert_eq(st.tables, (uint32_t)r + 1, "busy flush %d: %u tables (a carry or a merge while busy)",
			     r + 1, st.tables);
		flog_check(x, &g, "busy");
	}
	cr_assert_eq(sb_kx_maintain(x), 0); /* no keys since: the merges */
	sb_kx_get_stats(x, &st);
	cr_assert_leq(st.tables, (uint32_t)rounds - 2, "%u tables left after a quiet turn (of %d)", st.tables,
		      rounds);
	int upper = upper_tables(dir);
	flog_check(x, &g, "quiet");
	cr_assert_eq(sb_kx_close(x, 1), 0);
	/* reopen: the tables tile what they cover; the rest is replayed */
	x = flog_reopen(dir, &g);
	flog_check(x, &g, "reopened");
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

static sb_kx *flog_in(const char *name, flog *g, char *dir, size_t cap)
{
	cr_assert(mkdir(env.store, 0755) == 0 || errno == EEXIST);
	snprintf(dir, cap, "%.4000s/%s", env.store, name);
	cr_assert_eq(mkdir(dir, 0755), 0);
	return flog_open(dir, g, 0, 0);
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
	flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("rate", &g, dir, sizeof(dir));
	sb_kx_stats st;

	busy_flushes(x, &g, SB_KX_MERGE_WIDTH, MT + MT / 5);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, SB_KX_MERGE_WIDTH);
	/* just under a batch (MT / 8), at once */
	flog_append(x, &g, MT / 8 - 2 * SB_KX_KEY_BYTES(15));
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_geq(st.tables, SB_KX_MERGE_WIDTH, "%u tables: a merge while keys were still coming", st.tables);
	uint32_t busy_tables = st.tables;
	flog_check(x, &g, "keys coming");
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_lt(st.tables, busy_tables, "%u tables after a quiet turn", st.tables);
	flog_check(x, &g, "quiet");
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
	flog g = {.tomb = 7};
	char dir[4200];
	sb_kx *x = flog_in("bound", &g, dir, sizeof(dir));
	sb_kx_stats st;
	uint32_t most = 0;

	for (int b = 0; b < steps; b++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int rounds = 1 + (int)((seed >> 33) % (3 * SB_KX_MERGE_WIDTH));
		for (int r = 0; r < rounds; r++) {
			flog_append(x, &g, MT + MT / 5);
			cr_assert_eq(sb_kx_maintain(x), 0);
		}
		cr_assert_eq(sb_kx_maintain(x), 0); /* quiet */
		sb_kx_get_stats(x, &st);
		most = st.tables > most ? st.tables : most;
		cr_assert_leq(st.tables, SB_KX_BUSY_TABLES_MAX, "burst %d: %u tables after a quiet turn", b, st.tables);
		flog_check(x, &g, "after a quiet turn");
		if ((seed >> 40) % 4 == 0) {
			cr_assert_eq(sb_kx_close(x, 1), 0);
			x = flog_reopen(dir, &g);
			sb_kx_set_background(x, 1);
		}
	}
	flog_check(x, &g, "after the bursts");
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
	flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("c", &g, dir, sizeof(dir));
	sb_kx_stats st;

	busy_flushes(x, &g, SB_KX_MERGE_WIDTH, MT + MT / 5);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, SB_KX_MERGE_WIDTH, "%u tables after %d busy flushes", st.tables, SB_KX_MERGE_WIDTH);
	sb_kx_stop_merges(x);
	cr_assert_eq(sb_kx_maintain(x), 0, "an abandoned merge is no failure");
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, SB_KX_MERGE_WIDTH, "the merge was not abandoned: %u tables", st.tables);
	cr_assert(!table_in_progress(dir), "the abandoned merge left its temp file");
	flog_check(x, &g, "merge abandoned");
	cr_assert_eq(sb_kx_close(x, 1), 0);
	cr_assert_eq(upper_tables(dir), 0, "the close merged tables");
	x = flog_reopen(dir, &g);
	sb_kx_set_background(x, 1);
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert(st.tables < SB_KX_MERGE_WIDTH && upper_tables(dir) > 0,
		  "the first turn after the reopen merged nothing (%u tables)", st.tables);
	flog_check(x, &g, "merged after the reopen");
	cr_assert_eq(sb_kx_close(x, 0), 0);
}

/*
 * With a flusher, the runs frozen for a table are about key_memtable_bytes
 * even when more keys wait (3.5x here): the rest goes to fresh runs, so
 * that a flush after a long write is not a pile of runs frozen at once.
 */
Test(keyflush, a_flush_freezes_about_key_memtable_bytes)
{
	flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("f", &g, dir, sizeof(dir));
	sb_kx_stats st;

	flog_append(x, &g, 7 * MT / 2);
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, 1);
	uint64_t per_mt = MT / SB_KX_KEY_BYTES(15);
	cr_assert_leq(st.covered_to + 1, per_mt + per_mt / 2, "the table covers %llu records, a memtable holds %llu",
		      (unsigned long long)st.covered_to + 1, (unsigned long long)per_mt);
	flog_check(x, &g, "after the flush");
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
	flog g = {0};
	char dir[4200];
	sb_kx *x = flog_in("i", &g, dir, sizeof(dir));
	sb_kx_stats st;

	for (int i = 0; i < 1000; i++) {
		flog_append(x, &g, MT / 8);
		cr_assert_geq(sb_kx_index(x), 0);
		sb_kx_get_stats(x, &st);
		if (st.mt_bytes >= 4 * MT)
			break;
	}
	cr_assert_geq(st.mt_bytes, 4 * MT, "the indexer stopped at %llu bytes of runs", (unsigned long long)st.mt_bytes);
	flog_append(x, &g, 2 * MT);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.appender_writes, 0, "the appender wrote a table");
	cr_assert_eq(st.tables, 0);
	cr_assert_eq(st.appender_sorts, 0, "the appender indexed");
	flog_check(x, &g, "with keys waiting in the log");
	cr_assert_eq(sb_kx_close(x, 0), 0);
}

/* ---- crashes in busy flushes and their merges ---------------------------- */

/* Workloads of the crash campaign by default: one thread, so TSan has
 * nothing to find in it (and runs it 40 times slower); ASan several times. */
#if defined(__SANITIZE_THREAD__)
#define CRASH_WORKLOADS 1
#elif defined(__SANITIZE_ADDRESS__)
#define CRASH_WORKLOADS 8
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CRASH_WORKLOADS 1
#elif __has_feature(address_sanitizer)
#define CRASH_WORKLOADS 8
#endif
#endif
#ifndef CRASH_WORKLOADS
#define CRASH_WORKLOADS 16
#endif

/*
 * Workload `seed` on io: three bursts of busy flushes (W to W + 7, 1 to 3,
 * W to W + 4; W = SB_KX_MERGE_WIDTH), each followed by a quiet turn that
 * merges what they left, at the head or behind the newest table; then a
 * clean close. Every seventh record a tombstone. Stops at the first
 * failure (a crash froze io).
 */
static void busy_workload(const char *dir, const sb_io *io, uint64_t seed, flog *g)
{
	sb_kx_params p = {.io = io, .dir = dir, .topic = "t", .memtable_bytes = MT,
			  .background = 1, .walk = flog_walk, .walk_arg = g};
	int bursts[3] = {SB_KX_MERGE_WIDTH + (int)(seed % 8), 1 + (int)(seed % 3),
			 SB_KX_MERGE_WIDTH + (int)(seed / 8 % 5)};
	sb_kx *x = NULL;
	int rc = sb_kx_open(&p, 0, 0, &x);

	for (int b = 0; !rc && b < 3; b++) {
		for (int r = 0; !rc && r < bursts[b]; r++) {
			flog_append(x, g, MT + MT / 5);
			rc = sb_kx_maintain(x);
		}
		if (!rc)
			rc = sb_kx_maintain(x);
	}
	if (x)
		(void)sb_kx_close(x, !rc);
}

/* dir and the stash made empty, and a fault table over them whose syncs
 * only count (the caller's: fio_free). */
static fio *fresh_fio(const char *dir)
{
	cr_assert_eq(uf_rmrf(dir), 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(uf_rmrf(env.stash), 0);
	cr_assert_eq(mkdir(env.stash, 0755), 0);
	fio *f = fio_new(env.stash);
	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	return f;
}

/* After the power loss: the index opened over the log (all of it, or with
 * `lose`, a third less: unsynced records lost too) answers every key's
 * latest record; so it does after a close and another open, and its
 * tables tile the offsets. */
static void check_recovery(const char *dir, flog *g, int lose, const char *when)
{
	if (lose)
		g->n -= g->n / 3;
	sb_kx *x = flog_reopen(dir, g);
	flog_check(x, g, when);
	cr_assert_eq(sb_kx_close(x, 1), 0, "%s: close", when);
	(void)upper_tables(dir);
	x = flog_reopen(dir, g);
	flog_check(x, g, when);
	cr_assert_eq(sb_kx_close(x, 0), 0);
}

static const fio_kind crash_kinds[] = {FIO_FDATASYNC, FIO_RENAME, FIO_UNLINK, FIO_PWRITE};

/* Crash workload `seed` at every fdatasync, rename, unlink and pwrite it
 * makes, in each crash mode in turn. Returns the scenarios. */
static unsigned crash_every_point(const char *dir, uint64_t seed)
{
	unsigned calls[4], n = 0;
	flog g = {.tomb = 7};
	fio *f = fresh_fio(dir);

	busy_workload(dir, fio_io(f), seed, &g);
	for (int i = 0; i < 4; i++)
		calls[i] = fio_calls(f, crash_kinds[i]);
	fio_free(f);
	cr_log_info("workload %llu: %u fdatasyncs, %u renames, %u unlinks, %u pwrites", (unsigned long long)seed,
		    calls[0], calls[1], calls[2], calls[3]);
	for (int i = 0; i < 4; i++) {
		for (unsigned k = 1; k <= calls[i]; k++, n++) {
			char when[160];
			int mode = (int)((k + seed + (unsigned)i) % FIO_CRASH_NMODES);
			f = fresh_fio(dir);
			fio_crash_at(f, crash_kinds[i], k);
			g = (flog){.tomb = 7};
			busy_workload(dir, fio_io(f), seed, &g);
			cr_assert(fio_crashed(f), "workload %llu: no crash at call %u of kind %d", (unsigned long long)seed,
				  k, crash_kinds[i]);
			cr_assert_eq(fio_crash_apply(f, seed * 7919 + k, mode, NULL), 0);
			fio_free(f);
			int lose = (k + seed) % 3 == 0;
			snprintf(when, sizeof(when), "workload %llu, crash at call %u of kind %d, mode %d (%llu records%s)",
				 (unsigned long long)seed, k, crash_kinds[i], mode, (unsigned long long)g.n,
				 lose ? ", the last third lost" : "");
			check_recovery(dir, &g, lose, when);
		}
	}
	return n;
}

/*
 * A crash at every fdatasync, rename, unlink and pwrite of busy flushes,
 * the quiet turns' merges (at the head and behind the newest table) and
 * the close, each crash mode in turn (util_faultio.h): the index opened over the log after the power loss
 * finds every key's latest record (tombstones too), also after another
 * close and open, and its tables tile the offsets.
 * (The suite's timeout, 300 s: a test's own .timeout makes Criterion 2.4's
 * runner leak 48 bytes, which ASan's leak check fails.)
 * SB_KEYFLUSH_CRASH_WORKLOADS: how many workloads (default 16, the first
 * burst W to W + 7 flushes long, the others 1 to 3 and W to W + 4; 8 under
 * ASan, 1 under TSan).
 */
Test(keyflush, crash_at_every_step_of_busy_flushes_and_merges)
{
	const char *e = getenv("SB_KEYFLUSH_CRASH_WORKLOADS");
	unsigned long w = e ? strtoul(e, NULL, 10) : CRASH_WORKLOADS, scenarios = 0;
	char dir[4200];

	cr_assert(mkdir(env.store, 0755) == 0 || errno == EEXIST);
	snprintf(dir, sizeof(dir), "%.4000s/crash", env.store);
	for (uint64_t seed = 0; seed < w; seed++)
		scenarios += crash_every_point(dir, seed);
	fprintf(stderr, "keyflush: %lu crash scenarios of %lu workloads, 0 failures\n", scenarios, w);
	cr_assert_geq(scenarios, 50 * w);
}

/*
 * The tables of runs a flusher writes are published unsynced (an fdatasync
 * waited behind the flusher's sync of a sealed segment: keyidx_write.c);
 * a power loss may take them, and the open replays their range. But what
 * sb_kx_sync_tables (the store's flusher), sb_kx_cover (compaction drops
 * tombstones below what it returns: also when the tables cover that
 * already) and a clean close leave survives a
 * power loss that drops every unsynced write and rename: the open replays
 * nothing of it.
 */
Test(keyflush, lazy_tables_are_synced_by_the_flusher_cover_and_close)
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%.4000s/lazy", env.store);
	cr_assert(mkdir(env.store, 0755) == 0 || errno == EEXIST);
	for (int how = 0; how < 5; how++) {
		flog g = {.tomb = 7};
		fio *f = fresh_fio(dir);
		sb_kx_params p = {.io = fio_io(f), .dir = dir, .topic = "t", .memtable_bytes = MT,
				  .background = 1, .walk = flog_walk, .walk_arg = &g};
		sb_kx *x;
		sb_kx_stats st;
		uint64_t kept = 0;

		cr_assert_eq(sb_kx_open(&p, 0, 0, &x), 0);
		for (int r = 0; r < 3; r++) {
			flog_append(x, &g, MT + MT / 5);
			cr_assert_eq(sb_kx_maintain(x), 0);
		}
		sb_kx_get_stats(x, &st);
		cr_assert_eq(st.tables, 3);
		if (how == 0) {
			cr_assert_eq(sb_kx_sync_tables(x), 0);
			kept = st.covered_to; /* the first offset not covered */
		} else if (how == 1) {
			kept = sb_kx_cover(x, g.n);
			cr_assert_eq(kept, g.n);
		} else if (how == 2) {
			cr_assert_eq(sb_kx_close(x, 1), 0);
			x = NULL;
			kept = g.n;
		} else if (how == 3) { /* what the tables cover already */
			kept = sb_kx_cover(x, st.covered_to);
			cr_assert_geq(kept, st.covered_to);
		} /* 4: nothing synced them */
		fio_crash_now(f);
		if (x)
			cr_assert_eq(sb_kx_close(x, 0), 0);
		cr_assert_eq(fio_crash_apply(f, 1, FIO_CRASH_DROP_ALL, NULL), 0);
		fio_free(f);
		x = flog_open(dir, &g, 0, g.n);
		uint64_t from = sb_kx_replay_from(x);
		cr_assert_eq(sb_kx_close(x, 0), 0);
		if (how < 4)
			cr_assert_geq(from, kept, "case %d: the open replays from %llu, synced were [0, %llu)", how,
				      (unsigned long long)from, (unsigned long long)kept);
		else
			cr_assert_eq(from, 0, "the tables were synced when written: the other cases prove nothing");
		check_recovery(dir, &g, 0, how < 4 ? "synced tables" : "lazy tables lost");
	}
}

/* A key index over g (a flusher's: background), key_memtable_bytes mt,
 * in env.store/name made afresh (its path into dir), through a fresh fault
 * table *fp (the caller's: fio_free). */
static sb_kx *fio_flog_open(const char *name, flog *g, uint64_t mt, char *dir, size_t cap, fio **fp)
{
	snprintf(dir, cap, "%.4000s/%s", env.store, name);
	cr_assert(mkdir(env.store, 0755) == 0 || errno == EEXIST);
	fio *f = fresh_fio(dir);
	sb_kx_params p = {.io = fio_io(f), .dir = dir, .topic = "t", .memtable_bytes = mt,
			  .background = 1, .walk = flog_walk, .walk_arg = g};
	sb_kx *x;

	cr_assert_eq(sb_kx_open(&p, 0, 0, &x), 0);
	*fp = f;
	return x;
}

/* Every step-th record of a flog of distinct keys is its key's entry. */
static void distinct_check(sb_kx *x, const flog *g, uint64_t step, const char *when)
{
	char k[32];

	for (uint64_t o = 0; o < g->n; o += step) {
		sb_mt_val v;
		cr_assert_eq(sb_kx_get(x, k, skey(o, k), &v), 0, "%s: key %llu", when, (unsigned long long)o);
		cr_assert_eq(v.offset, o, "%s: key %llu", when, (unsigned long long)o);
	}
}

/* ---- a merge yields to the runs -------------------------------------------- */

typedef struct piler {
	sb_kx *x;
	flog *g;
	fio *f;
	uint64_t kbytes;
} piler;

/* Once the merge's write stalls: keys appended and indexed into runs. */
static void *pile_up(void *arg)
{
	piler *p = arg;

	while (!fio_slowed(p->f))
		usleep(1000);
	for (uint64_t b = 0; b < p->kbytes; b += SB_KX_KEY_BYTES(15)) {
		p->g->n++;
		sb_kx_note_end(p->x, p->g->n, 64, SB_KX_KEY_BYTES(15), p->g->n);
	}
	/* a batch or more a call, until none is left */
	for (int i = 0; i < 10000 && sb_kx_index(p->x) > 0; i++)
		;
	fio_slow(p->f, FIO_PWRITE, 0, NULL); /* the merge's write goes on */
	return NULL;
}

/*
 * A merge of tables (a quiet turn's) gives way when keys pile up in the
 * runs meanwhile (half the indexer's cap, 2x key_memtable_bytes): it is
 * abandoned, its temp file removed, and the turn writes the runs instead.
 * Here the merge's first write of its table is held while another thread
 * appends 2.5x key_memtable_bytes of keys and indexes them. Before,
 * the merge ran on (0.2 to 0.7 s for 8 tables at 5,000,000 keys) while
 * the keys piled up to the appender's bound.
 */
Test(keyflush, a_merge_yields_to_piled_up_keys)
{
	char dir[4200];
	flog g = {.distinct = 1};
	const uint64_t mt = 512 * 1024;
	fio *f;
	sb_kx *x = fio_flog_open("yield", &g, mt, dir, sizeof(dir), &f);
	sb_kx_stats st;

	busy_flushes(x, &g, SB_KX_MERGE_WIDTH, mt + mt / 5);
	sb_kx_get_stats(x, &st);
	uint32_t before = st.tables;
	cr_assert_geq(before, SB_KX_MERGE_WIDTH);
	fio_slow(f, FIO_PWRITE, FIO_HOLD, SB_KT_SUFFIX ".tmp");
	piler pl = {.x = x, .g = &g, .f = f, .kbytes = 2 * mt + mt / 2};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, pile_up, &pl), 0);
	cr_assert_eq(sb_kx_maintain(x), 0); /* quiet: the merge */
	pthread_join(th, NULL);
	fio_slow(f, FIO_PWRITE, 0, NULL);
	sb_kx_get_stats(x, &st);
	cr_assert_gt(st.tables, before, "%u tables of %u: the merge ran on while the keys piled up", st.tables,
		     before);
	cr_assert_eq(table_in_progress(dir), 0, "the abandoned merge left its temp file");
	distinct_check(x, &g, 97, "after the yield");
	/* the piled keys came during that turn: the next is busy, then quiet */
	for (int t = 0; t < 3; t++)
		cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_lt(st.tables, before, "%u tables: no merge after the pile was written", st.tables);
	cr_assert_eq(sb_kx_close(x, 0), 0);
	fio_free(f);
}

/*
 * A merge writes the runs that come due meanwhile as tables of their own
 * (a merge forced by the table bound does not yield: at 10,000,000 keys
 * one of 16 tables took 0.5 s while the keys piled up and the appender
 * waited). Here the merge's first write is held while another thread
 * appends a little more than key_memtable_bytes of keys (under the
 * yield's 2x) and indexes them: the turn ends with the merged table and a table of
 * those runs, newer, and every key found.
 */
Test(keyflush, a_merge_writes_the_runs_due_meanwhile)
{
	char dir[4200];
	flog g = {.distinct = 1};
	const uint64_t mt = 512 * 1024;
	fio *f;
	sb_kx *x = fio_flog_open("interleave", &g, mt, dir, sizeof(dir), &f);
	sb_kx_stats st;

	/* busy turns until W tables or more, the runs left not due */
	for (int r = 0; r < 4 * SB_KX_MERGE_WIDTH; r++) {
		flog_append(x, &g, mt / 2);
		cr_assert_eq(sb_kx_maintain(x), 0);
		sb_kx_get_stats(x, &st);
		if (st.tables >= SB_KX_MERGE_WIDTH && st.mt_bytes < mt / 2)
			break;
	}
	cr_assert(st.tables >= SB_KX_MERGE_WIDTH && st.tables < 2 * SB_KX_MERGE_WIDTH && st.mt_bytes < mt / 2,
		  "%u tables, %llu bytes of runs: the test proves nothing", st.tables, (unsigned long long)st.mt_bytes);
	fio_slow(f, FIO_PWRITE, FIO_HOLD, SB_KT_SUFFIX ".tmp");
	/* with those left, due and under the yield's 2x */
	piler pl = {.x = x, .g = &g, .f = f, .kbytes = mt + mt / 8};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, pile_up, &pl), 0);
	cr_assert_eq(sb_kx_maintain(x), 0); /* quiet: the merge */
	pthread_join(th, NULL);
	fio_slow(f, FIO_PWRITE, 0, NULL);
	sb_kx_get_stats(x, &st);
	cr_assert_eq(st.tables, 2, "%u tables: the merged one and one of the runs due during the merge", st.tables);
	ut_kt_info ti[4];
	cr_assert_eq(ut_kt_list(dir, ti, 4), 2);
	cr_assert(ti[0].level == 0 && ti[1].level == 1 && ti[0].first == ti[1].last + 1,
		  "levels %u, %u; the runs' table newer", ti[0].level, ti[1].level);
	distinct_check(x, &g, 97, "after the merge");
	cr_assert_eq(sb_kx_close(x, 1), 0);
	x = flog_reopen(dir, &g);
	distinct_check(x, &g, 89, "reopened");
	cr_assert_eq(sb_kx_close(x, 0), 0);
	fio_free(f);
}

/* The appender steps in (its turn waits for the flusher's) after one keyed
 * record of 200 MiB: past twice SB_KX_REPLAY_BYTES of records unwritten. */
static void *step_in(void *arg)
{
	piler *p = arg;

	while (!fio_slowed(p->f))
		usleep(1000);
	p->g->n++;
	sb_kx_note_end(p->x, p->g->n, 200u << 20, SB_KX_KEY_BYTES(15), p->g->n);
	return NULL;
}

/*
 * A flusher turn after the appender stepped in is busy, though few keys
 * came since the last turn began: the appender appends nothing while its
 * turn waits for the flusher's. Here a busy turn's write stalls (0.3 s),
 * the appender steps in meanwhile (one record) and waits; the next turn
 * meets one key in 0.6 s, under the rate, and merges nothing (before, it
 * was quiet and began a merge while the appender's keys kept coming); the
 * one after, with no key since, merges.
 */
Test(keyflush, a_turn_after_the_appender_stepped_in_is_busy)
{
	char dir[4200];
	flog g = {0};
	fio *f;
	sb_kx *x = fio_flog_open("stepin", &g, MT, dir, sizeof(dir), &f);
	sb_kx_stats st;

	busy_flushes(x, &g, SB_KX_MERGE_WIDTH, MT + MT / 5);
	flog_append(x, &g, MT + MT / 5);
	fio_slow(f, FIO_PWRITE, 300000, SB_KT_SUFFIX ".tmp");
	piler pl = {.x = x, .g = &g, .f = f};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, step_in, &pl), 0);
	cr_assert_eq(sb_kx_maintain(x), 0); /* busy; the appender steps in */
	pthread_join(th, NULL);
	fio_slow(f, FIO_PWRITE, 0, NULL);
	sb_kx_get_stats(x, &st);
	cr_assert_geq(st.appender_writes, 1, "the appender did not step in: the test proves nothing");
	uint32_t before = st.tables;
	cr_assert_geq(before, SB_KX_MERGE_WIDTH);
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_geq(st.tables, before, "%u tables of %u: a merge right after the appender stepped in",
		      st.tables, before);
	cr_assert_eq(sb_kx_maintain(x), 0);
	sb_kx_get_stats(x, &st);
	cr_assert_lt(st.tables, before, "no merge on a quiet turn");
	flog_check(x, &g, "after the appender's turn");
	cr_assert_eq(sb_kx_close(x, 0), 0);
	fio_free(f);
}
