/*
 * test_store_sync.c - the sync policy decides the fdatasyncs, counted by an
 * sb_io that sees every one (util_faultio): under `always` every append
 * waits for one, under `never` appends make none, under `interval` the
 * flusher makes some, fewer than the appends; per-topic settings apply to
 * their topic only. A process crash keeps the page cache, so without
 * counting, `always` and `never` look alike.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

#define N 40
#define SEG (1u << 20) /* no roll: a roll syncs under every policy */

static ut_env env;
static sb_store *S;
static fio *F;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "sync"), 0);
	S = NULL;
	F = fio_new_mmap(env.stash);
	cr_assert_not_null(F);
	fio_set_sync(F, 0, 0);
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	fio_free(F);
	ut_env_fini(&env);
}

TestSuite(sync, .init = setup, .fini = teardown, .timeout = 60);

static int per_topic(void *arg, const char *topic, sb_log_config *cfg)
{
	(void)arg;
	if (!strcmp(topic, "a"))
		cfg->sync = SB_SYNC_ALWAYS;
	else if (!strcmp(topic, "n"))
		cfg->sync = SB_SYNC_NEVER;
	return 0;
}

/* Open with the flusher running (as the daemon does), default policy `sync`. */
static void open_store(enum sb_sync sync, int hook)
{
	sb_store_options o;
	sb_store_options_default(&o);
	ut_cfg(&o.defaults, SEG, sync);
	o.defaults.sync_interval_ms = 20;
	o.io = fio_io(F);
	if (hook)
		o.topic_config = per_topic;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* fdatasyncs made by N appends to l (and by the flusher meanwhile). */
static unsigned syncs_of_appends(sb_log *l)
{
	unsigned before = fio_calls(F, FIO_FDATASYNC);
	for (uint64_t i = 0; i < N; i++)
		cr_assert_eq(ut_append1(l, i, 100, 7, NULL), 0);
	return fio_calls(F, FIO_FDATASYNC) - before;
}

Test(sync, always_syncs_every_append)
{
	open_store(SB_SYNC_ALWAYS, 0);
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	cr_expect_eq(sb_log_get_config(l)->sync, SB_SYNC_ALWAYS);
	unsigned n = syncs_of_appends(l);
	cr_expect_geq(n, N, "sync=always: %u fdatasyncs for %d appends from one thread", n, N);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(l, &st), 0);
	cr_expect_geq(st.syncs, N, "sync=always: the log counted %llu syncs",
		      (unsigned long long)st.syncs);
}

Test(sync, never_syncs_no_append)
{
	open_store(SB_SYNC_NEVER, 0);
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	unsigned before = fio_calls(F, FIO_FDATASYNC);
	syncs_of_appends(l);
	sleep_ms(150); /* the flusher has nothing to do under never */
	unsigned n = fio_calls(F, FIO_FDATASYNC) - before;
	cr_expect_eq(n, 0, "sync=never: %u fdatasyncs for %d appends", n, N);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(l, &st), 0);
	cr_expect_eq(st.syncs, 0, "sync=never: the log counted %llu syncs",
		     (unsigned long long)st.syncs);
	/* and an explicit sync still syncs */
	before = fio_calls(F, FIO_FDATASYNC);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_expect_gt(fio_calls(F, FIO_FDATASYNC), before, "sb_log_sync made no fdatasync");
}

Test(sync, interval_syncs_in_the_background_only)
{
	open_store(SB_SYNC_INTERVAL, 0);
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	unsigned before = fio_calls(F, FIO_FDATASYNC);
	unsigned n = syncs_of_appends(l);
	cr_expect_lt(n, N / 2, "sync=interval: %u fdatasyncs during %d appends", n, N);
	/* within a few intervals the flusher syncs what was appended */
	for (int i = 0; i < 100 && fio_calls(F, FIO_FDATASYNC) == before; i++)
		sleep_ms(10);
	cr_expect_gt(fio_calls(F, FIO_FDATASYNC), before,
		     "sync=interval: no fdatasync 1 s after the appends");
}

/* [topic:NAME] sync= overrides the default for that topic only. */
Test(sync, per_topic_policy_applies_to_its_topic)
{
	open_store(SB_SYNC_NEVER, 1);
	sb_log *a = ut_topic(S, "a"), *n = ut_topic(S, "n"), *d = ut_topic(S, "d");
	cr_assert(a && n && d);
	cr_expect_eq(sb_log_get_config(a)->sync, SB_SYNC_ALWAYS);
	cr_expect_eq(sb_log_get_config(d)->sync, SB_SYNC_NEVER);
	unsigned sn = syncs_of_appends(n), sd = syncs_of_appends(d), sa = syncs_of_appends(a);
	cr_expect_eq(sn, 0, "topic n (never): %u fdatasyncs", sn);
	cr_expect_eq(sd, 0, "topic d (the default, never): %u fdatasyncs", sd);
	cr_expect_geq(sa, N, "topic a (always): %u fdatasyncs for %d appends", sa, N);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(a, &st), 0);
	cr_expect_geq(st.syncs, N);
	cr_assert_eq(sb_log_get_stats(n, &st), 0);
	cr_expect_eq(st.syncs, 0);
}

/* The power goes (S abandoned, every unsynced write dropped); the store
 * opened again with the real io (4 KiB segments, policy sync, no
 * flusher): topic t's first n records of len bytes (seed 7) must be
 * there. Returns the topic. */
static sb_log *after_power_loss(enum sb_sync sync, uint64_t n, size_t len)
{
	sb_log_config c;
	sb_log *l;

	sb_store_close(S);
	S = NULL;
	cr_assert_eq(fio_crash_apply(F, 1, FIO_CRASH_DROP_ALL, NULL), 0);
	ut_cfg(&c, 4096, sync);
	cr_assert_eq(ut_open(env.store, &c, NULL, &S), 0);
	cr_assert_eq(sb_store_get(S, "t", &l), 0);
	cr_assert_geq(sb_log_next(l), n, "%llu records after the power loss, %llu must be there",
		      (unsigned long long)sb_log_next(l), (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(ut_check(l, i, len, 7), 0, "record %llu", (unsigned long long)i);
	return l;
}

/*
 * A backlog of sealed segments (small segments filled faster than they are
 * synced) is synced records first: every sealed segment's records before
 * any of their index files, which cost four times a segment's sync (two
 * files, their renames, the directory). Before, one whole segment at a
 * time: a tester saw records unsynced for seconds under `interval`. Here a
 * crash at the sync's first index publish (its first rename), the power
 * lost: every record of every sealed segment is there.
 */
Test(sync, sealed_records_synced_before_any_index)
{
	sb_store_options o;
	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 4096, SB_SYNC_NEVER);
	o.io = fio_io(F);
	o.no_flusher = 1;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	sb_log *l = ut_topic(S, "t");
	for (uint64_t i = 0; i < 400; i++)
		cr_assert_eq(ut_append1(l, i, 100, 7, NULL), 0);
	/* the active segment's base: the records below it are sealed */
	char dir[4200], cmd[4400];
	snprintf(dir, sizeof(dir), "%s/t", env.store);
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep 'seg$' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int nseg = 0;
	cr_assert(p && fscanf(p, "%d", &nseg) == 1);
	pclose(p);
	cr_assert_gt(nseg, 8, "%d segments: too few sealed ones", nseg);
	uint64_t sealed = 0;
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep 'seg$' | tail -1", dir);
	p = popen(cmd, "r");
	cr_assert(p && fscanf(p, "%20llu", (unsigned long long *)&sealed) == 1);
	pclose(p);
	fio_crash_at(F, FIO_RENAME, 1);
	cr_assert_neq(sb_log_sync(l), 0, "the sync went through its crash");
	cr_assert(fio_crashed(F));
	after_power_loss(SB_SYNC_NEVER, sealed, 100); /* the sealed records */
}

/* Under `interval`, a failure that refuses appends but loses nothing (the
 * next segment's file could not be created) does not stop the flusher's
 * pass: what was appended before it is synced at the next pass, as before
 * the failure, and a power loss after that keeps it. The pass skipped
 * such a topic until 2026-12-03 (what was appended stayed unsynced). The
 * pass is called here (no flusher thread, no timing). */
Test(sync, interval_syncs_what_was_appended_before_a_failed_roll)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_INTERVAL);
	c.sync_interval_ms = 20;
	cr_assert_eq(ut_open(env.store, &c, fio_io(F), &S), 0);
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	fio_fail(F, FIO_OPEN, 1, EIO, 0, ".seg");
	uint64_t i = 0;
	int rc = 0;
	for (; !rc && i < 1000; i += !rc)
		rc = ut_append1(l, i, 300, 7, NULL);
	cr_assert_eq(rc, -EIO, "the roll's failure: %s", sb_strerror(rc));
	cr_assert_eq(ut_append1(l, i, 300, 7, NULL), -EIO, "appends refused after it");
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(l, &st), 0);
	cr_assert_eq(st.synced_appends, 0u);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now); /* sb_now_ns()'s clock */
	(void)sb_log_flush_due(l, (long long)now.tv_sec * 1000000000LL + now.tv_nsec + 1000000000LL);
	cr_assert_eq(sb_log_get_stats(l, &st), 0);
	cr_assert_eq(st.synced_appends, i, "the pass after the failure synced %llu of %llu appends",
		     (unsigned long long)st.synced_appends, (unsigned long long)i);
	fio_crash_now(F);
	l = after_power_loss(SB_SYNC_INTERVAL, i, 300);
	cr_expect_eq(sb_log_next(l), i, "after a power loss: next %llu, %llu appended",
		     (unsigned long long)sb_log_next(l), (unsigned long long)i);
}

/* A seal (a roll under `always`, the close) syncs the segment's records
 * once: the index save that follows it synced them a second time. Counted
 * on the segment files (fio_slow with no delay to speak of counts the
 * calls whose path matches). */
Test(sync, a_seal_syncs_its_segment_once)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, fio_io(F), &S), 0);
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	for (uint64_t i = 0; i < 3; i++)
		cr_assert_eq(ut_append1(l, i, 300, 7, NULL), 0);
	fio_slow(F, FIO_FDATASYNC, 1, ".seg");
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	cr_expect_eq(fio_slowed(F), 1u, "the close of one segment synced it %u times", fio_slowed(F));
	fio_slow(F, FIO_FDATASYNC, 0, NULL);
}
