/*
 * test_store_crash.c - power-loss simulation (SQLite style): the scripted
 * workload of util_workload.c runs over util_faultio under sync=always; at
 * each sync point k (the kth fdatasync) the machine "crashes": the workload
 * stops there, each write not yet covered by an fdatasync is kept, dropped
 * or garbled and unsynced renames/unlinks/creates are undone, as a seeded
 * RNG chooses. The reopened store must hold a prefix of what was appended,
 * with every acknowledged record, exactly.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"
#include "util_workload.h"

UT_ENV_FIXTURE("crash")
static int use_mmap; /* the store's real write path (snapshot-tracked) */

static fio *mk(void)
{
	fio *f = use_mmap ? fio_new_mmap(env.stash) : fio_new(env.stash);
	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	return f;
}

TestSuite(crash, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 300);

static void fresh(void)
{
	cr_assert_eq(uf_rmrf(env.store), 0);
	cr_assert_eq(uf_rmrf(env.stash), 0);
	cr_assert_eq(mkdir(env.stash, 0755), 0);
}

/* A fresh store over a new fault table (the mmap write path if mm), sync
 * = always, segment_bytes seg, and its topic "t": *c, *s, *l. */
static fio *open_fresh(int mm, size_t seg, enum sb_sync sync, sb_log_config *c, sb_store **s, sb_log **l)
{
	use_mmap = mm;
	fresh();
	fio *f = mk();
	ut_cfg(c, seg, sync);
	cr_assert_eq(ut_open(env.store, c, fio_io(f), s), 0);
	cr_assert_not_null(*l = ut_topic(*s, "t"));
	return f;
}

/* Calls of `kind` made by a full run of the workload (which must succeed). */
static unsigned reference_calls(enum sb_sync sync, fio_kind kind)
{
	char why[512];
	uw_result r;
	fresh();
	fio *f = mk();
	uw_run(env.store, fio_io(f), sync, &r);
	unsigned n = fio_calls(f, kind);
	fio_free(f);
	cr_assert_eq(r.fail_rc, 0, "reference run failed at %s: %s", r.fail_at,
		     sb_strerror(r.fail_rc));
	cr_assert_gt(r.acked_next, 80);
	cr_assert_gt(r.del_done, 0);
	cr_assert_eq(uw_check(env.store, &r, why, sizeof(why)), 0, "reference: %s", why);
	return n;
}

/*
 * A case where the crash never fired (the run made fewer calls than the
 * reference) checks nothing: count them, and fail if more than a tenth of
 * the cases were such (the workload is deterministic, so normally none).
 * Callers check that there were cases at all.
 */
static void expect_crashed(unsigned tried, unsigned crashed, const char *what)
{
	cr_log_info("%s: %u of %u cases crashed", what, crashed, tried);
	cr_expect_geq(crashed * 10, tried * 9, "%s: only %u of %u cases crashed (the others checked nothing)",
		      what, crashed, tried);
}

/*
 * Crash at the kth call of `kind` for k = 1..n, for each seed; check each.
 * Returns the number of failing cases (the first few are printed).
 */
static int crash_each_stride(enum sb_sync sync, fio_kind kind, unsigned n, unsigned stride,
			     const uint64_t *seeds, int nseeds, int mode)
{
	int failures = 0;
	unsigned tried = 0, crashed = 0;
	for (unsigned k = 1; k <= n; k += stride) {
		for (int si = 0; si < nseeds; si++) {
			char why[512];
			uw_result r;
			fio_crash_stats st;
			fresh();
			fio *f = mk();
			fio_crash_at(f, kind, k);
			uw_run(env.store, fio_io(f), sync, &r);
			tried++;
			if (!fio_crashed(f)) {
				fio_free(f);
				continue; /* the workload made fewer calls this time */
			}
			crashed++;
			fio_crash_apply(f, seeds[si], mode, &st);
			fio_free(f);
			if (sync != SB_SYNC_ALWAYS) { /* nothing was promised durable */
				r.acked_next = 0;
				r.del_done = 0;
			}
			if (uw_check(env.store, &r, why, sizeof(why))) {
				if (++failures <= 5)
					cr_log_error("%s: crash at call %u of kind %d, seed %llu, mode %d "
						     "(stopped at %s: %s; acked %llu, tried %llu; "
						     "kept %u dropped %u garbled %u, ns undone %u): %s",
						     use_mmap ? "mmap" : "pwrite", k, (int)kind,
						     (unsigned long long)seeds[si], mode,
						     r.fail_at ? r.fail_at : "-", sb_strerror(r.fail_rc),
						     (unsigned long long)r.acked_next,
						     (unsigned long long)r.tried_next, st.kept, st.dropped,
						     st.garbled, st.ns_undone, why);
			}
		}
	}
	expect_crashed(tried, crashed, use_mmap ? "crash points (mmap)" : "crash points");
	return failures;
}

static int crash_each(enum sb_sync sync, fio_kind kind, unsigned n, const uint64_t *seeds,
		      int nseeds, int mode)
{
	return crash_each_stride(sync, kind, n, 1, seeds, nseeds, mode);
}

static const uint64_t seeds_a[] = {1, 2};
static const uint64_t seeds_b[] = {3, 4};
static const uint64_t seed0[] = {0};

Test(crash, at_every_sync_point_dropping_everything_unsynced)
{
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	cr_assert_gt(n, 50);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seed0, 1, FIO_CRASH_DROP_ALL);
	cr_expect_eq(bad, 0, "%d of %u crash points lost or invented records", bad, n);
}

Test(crash, at_every_sync_point_keeping_everything)
{
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seed0, 1, FIO_CRASH_KEEP_ALL);
	cr_expect_eq(bad, 0, "%d of %u crash points failed", bad, n);
}

Test(crash, at_every_sync_point_random_seeds_1_2)
{
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seeds_a, 2, FIO_CRASH_RANDOM);
	cr_expect_eq(bad, 0, "%d of %u crash cases failed", bad, 2 * n);
}

Test(crash, at_every_third_sync_point_random_seeds_3_4)
{
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	int bad = crash_each_stride(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, 3, seeds_b, 2,
				    FIO_CRASH_RANDOM);
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}

/* Crashes between syncs: at each rename, unlink, ftruncate and open. */
Test(crash, at_every_namespace_and_truncate_call)
{
	const fio_kind kinds[] = {FIO_RENAME, FIO_UNLINK, FIO_FTRUNCATE, FIO_OPEN};
	int bad = 0;
	for (size_t i = 0; i < 4; i++) {
		unsigned n = reference_calls(SB_SYNC_ALWAYS, kinds[i]);
		/* the pwrite path truncates only after a failed write */
		if (kinds[i] != FIO_FTRUNCATE)
			cr_expect_gt(n, 0, "the workload made no call of kind %d", (int)kinds[i]);
		bad += crash_each(SB_SYNC_ALWAYS, kinds[i], n, seeds_a, 2, FIO_CRASH_RANDOM);
	}
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}

/* Every 7th pwrite: a crash with a write in flight. */
Test(crash, at_pwrites_under_sync_never_recovers_a_prefix)
{
	unsigned n = reference_calls(SB_SYNC_NEVER, FIO_PWRITE);
	unsigned tried = 0, crashed = 0;
	int bad = 0;
	for (unsigned k = 1; k <= n; k += 7) {
		static const uint64_t s[] = {5};
		/* crash_each walks 1..n; emulate a stride with a one-point window */
		char why[512];
		uw_result r;
		fresh();
		fio *f = fio_new(env.stash);
		fio_set_sync(f, 0, 0);
		fio_crash_at(f, FIO_PWRITE, k);
		uw_run(env.store, fio_io(f), SB_SYNC_NEVER, &r);
		tried++;
		if (!fio_crashed(f)) {
			fio_free(f);
			continue;
		}
		crashed++;
		fio_crash_apply(f, s[0] + k, FIO_CRASH_RANDOM, NULL);
		fio_free(f);
		r.acked_next = 0;
		r.del_done = 0;
		if (uw_check(env.store, &r, why, sizeof(why)) && ++bad <= 5)
			cr_log_error("crash at pwrite %u (sync=never): %s", k, why);
	}
	expect_crashed(tried, crashed, "pwrite crash points");
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}

/* The same over the default write path: records copied into a shared
 * mapping of a preallocated segment. */
Test(crash, mmap_path_at_every_sync_point_dropping_everything_unsynced)
{
	use_mmap = 1;
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	cr_assert_gt(n, 50);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seed0, 1, FIO_CRASH_DROP_ALL);
	cr_expect_eq(bad, 0, "%d of %u crash points lost or invented records", bad, n);
}

Test(crash, mmap_path_at_every_sync_point_keeping_everything)
{
	use_mmap = 1;
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seed0, 1, FIO_CRASH_KEEP_ALL);
	cr_expect_eq(bad, 0, "%d of %u crash points failed", bad, n);
}

Test(crash, mmap_path_at_every_sync_point_random_seeds)
{
	static const uint64_t seeds[] = {7, 8};
	use_mmap = 1;
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seeds, 1, FIO_CRASH_RANDOM);
	bad += crash_each_stride(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, 2, seeds + 1, 1,
				 FIO_CRASH_RANDOM);
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}

Test(crash, mmap_path_at_every_namespace_and_truncate_call)
{
	const fio_kind kinds[] = {FIO_RENAME, FIO_UNLINK, FIO_FTRUNCATE, FIO_FALLOCATE};
	int bad = 0;
	use_mmap = 1;
	for (size_t i = 0; i < 4; i++) {
		unsigned n = reference_calls(SB_SYNC_ALWAYS, kinds[i]);
		cr_expect_gt(n, 0, "the workload made no call of kind %d", (int)kinds[i]);
		bad += crash_each(SB_SYNC_ALWAYS, kinds[i], n, seeds_a, 2, FIO_CRASH_RANDOM);
	}
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}

/* ---- power loss during group commit (4 appending threads) --------------- */

#define MT_SEED 41
#define MT_PER 40
#define MT_LEN(id) ut_len((id), MT_SEED, 8, 600)
static _Atomic uint64_t mt_ids[4 * MT_PER + 8]; /* offset -> id + 1 once acknowledged */
static int mt_mode = FIO_CRASH_RANDOM;          /* what the crash does to unsynced data */
static unsigned mt_delay_us = 100;              /* how long each fdatasync takes */

struct mt_arg {
	sb_log *l;
	uint64_t tid;
};

static void *mt_appender(void *arg)
{
	struct mt_arg *a = arg;
	uint8_t buf[640];
	for (uint64_t s = 0; s < MT_PER; s++) {
		uint64_t id = (a->tid << 32) | s, off;
		ut_fill(buf, MT_LEN(id), id, MT_SEED);
		sb_record_in r = {.value = buf, .value_len = (uint32_t)MT_LEN(id)};
		if (sb_log_append(a->l, &r, 1, &off))
			break;
		atomic_store(&mt_ids[off], id + 1);
	}
	return NULL;
}

/* One run crashing at the kth fdatasync (0: none). Returns 1 if it crashed,
 * 0 if the run ended first; -1 (why filled) if the recovered log is wrong. */
static int mt_case(unsigned k, uint64_t seed, char *why, size_t cap)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l = NULL;
	int crashed;

	fresh();
	for (size_t i = 0; i < sizeof(mt_ids) / sizeof(*mt_ids); i++)
		atomic_store(&mt_ids[i], 0);
	fio *f = mk();
	fio_set_sync(f, 0, mt_delay_us);
	if (k)
		fio_crash_at(f, FIO_FDATASYNC, k);
	ut_cfg(&c, 4096, SB_SYNC_ALWAYS);
	c.index_interval_bytes = 256;
	if (ut_open(env.store, &c, fio_io(f), &s) == 0) {
		if ((l = ut_topic(s, "t"))) {
			pthread_t t[4];
			struct mt_arg a[4];
			for (int i = 0; i < 4; i++) {
				a[i] = (struct mt_arg){.l = l, .tid = (uint64_t)i + 1};
				pthread_create(&t[i], NULL, mt_appender, &a[i]);
			}
			for (int i = 0; i < 4; i++)
				pthread_join(t[i], NULL);
		}
		sb_store_close(s);
	}
	crashed = fio_crashed(f);
	fio_crash_apply(f, seed, mt_mode, NULL);
	fio_free(f);

	int rc = ut_open(env.store, &c, NULL, &s);
	if (rc) {
		snprintf(why, cap, "reopen: %s", sb_strerror(rc));
		return -1;
	}
	rc = crashed;
	if (sb_store_get(s, "t", &l)) {
		for (size_t i = 0; i < sizeof(mt_ids) / sizeof(*mt_ids); i++)
			if (atomic_load(&mt_ids[i])) {
				snprintf(why, cap, "topic lost with offset %zu acknowledged", i);
				rc = -1;
				break;
			}
		goto out;
	}
	uint64_t next = sb_log_next(l), start = sb_log_start(l);
	uint8_t seen[5][MT_PER] = {{0}};
	for (uint64_t o = 0; o < sizeof(mt_ids) / sizeof(*mt_ids) && rc >= 0; o++) {
		uint64_t want = atomic_load(&mt_ids[o]);
		if (o < start || o >= next) {
			if (want) {
				snprintf(why, cap, "acknowledged offset %llu outside [%llu, %llu)",
					 (unsigned long long)o, (unsigned long long)start,
					 (unsigned long long)next);
				rc = -1;
			}
			continue;
		}
		uint8_t buf[640];
		size_t n = 0;
		uint64_t id = 0;
		int r = sb_log_read(l, o, 0, buf, sizeof(buf), &n, NULL);
		if (!r && n >= 8)
			memcpy(&id, buf, 8);
		uint64_t t = id >> 32, sq = id & 0xffffffffu;
		if (r || n < 8 || t < 1 || t > 4 || sq >= MT_PER || n != MT_LEN(id) ||
		    !ut_match(buf, n, id, MT_SEED) || (want && want - 1 != id) || seen[t][sq]++) {
			snprintf(why, cap, "record %llu of [%llu, %llu): %s (id %llx, %zu bytes, want %llx)",
				 (unsigned long long)o, (unsigned long long)start,
				 (unsigned long long)next, r ? sb_strerror(r) : "wrong or repeated",
				 (unsigned long long)id, n, (unsigned long long)(want ? want - 1 : 0));
			rc = -1;
		}
	}
out:
	sb_store_close(s);
	return rc;
}

Test(crash, during_group_commit_from_four_threads)
{
	char why[512];
	int bad = 0, cases = 0;
	cr_assert_eq(mt_case(0, 0, why, sizeof(why)), 0, "reference run: %s", why);
	for (int m = 0; m < 2; m++) {
		use_mmap = m;
		for (unsigned k = 1; k < 400; k++) {
			int rc = mt_case(k, 1000 + k, why, sizeof(why));
			if (rc == 0)
				break; /* the run finished before its kth sync */
			cases++;
			if (rc < 0 && ++bad <= 5)
				cr_log_error("%s: crash at sync %u: %s", m ? "mmap" : "pwrite", k, why);
		}
	}
	cr_expect_gt(cases, 20);
	cr_expect_eq(bad, 0, "%d of %d crash cases failed", bad, cases);
}

/*
 * A group-commit leader may acknowledge only the appends its fdatasync
 * covered: those made before the call began. With a 2 ms fdatasync, appends
 * arrive while the leader syncs; a crash that drops everything unsynced then
 * loses any of them that were acknowledged anyway (a leader that reads its
 * target after the sync instead of before).
 */
Test(crash, group_commit_acknowledges_only_what_its_sync_covered)
{
	char why[512];
	int bad = 0, cases = 0;
	mt_mode = FIO_CRASH_DROP_ALL;
	mt_delay_us = 2000;
	for (int m = 0; m < 2; m++) {
		use_mmap = m;
		for (unsigned k = 4; k < 400; k += 9) {
			int rc = mt_case(k, k, why, sizeof(why));
			if (rc == 0)
				break; /* the run finished before its kth sync */
			cases++;
			if (rc < 0 && ++bad <= 5)
				cr_log_error("%s: crash at sync %u: %s", m ? "mmap" : "pwrite", k, why);
		}
	}
	cr_expect_geq(cases, 10);
	cr_expect_eq(bad, 0, "%d of %d crash cases lost acknowledged records", bad, cases);
}

/* ---- a clean close is durable ------------------------------------------- */

static int rebuilt_reports;

static void count_reports(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	if (strstr(msg, "index") || strstr(msg, "rebuil"))
		rebuilt_reports++;
	cr_log_info("report: %s", msg);
}

/* SPEC §1: after an unmount everything acknowledged is on disk, indexes
 * included: a power loss right after sb_store_close changes nothing. */
static void close_then_power_loss(int mmap_path)
{
	uw_result r;
	char why[512];
	use_mmap = mmap_path;
	fresh();
	fio *f = mk();
	uw_run(env.store, fio_io(f), SB_SYNC_NEVER, &r);
	cr_assert_eq(r.fail_rc, 0, "run: %s at %s", sb_strerror(r.fail_rc), r.fail_at);
	fio_crash_now(f);
	fio_crash_stats st;
	fio_crash_apply(f, 1, FIO_CRASH_DROP_ALL, &st);
	fio_free(f);
	cr_expect_eq(st.lost_linked + st.ns_undone, 0,
		     "close left %u writes to live files and %u directory entries unsynced",
		     st.lost_linked, st.ns_undone);
	char clean[8192];
	snprintf(clean, sizeof(clean), "%s/t/clean", env.store);
	cr_expect(uf_exists(clean), "the clean marker did not survive");
	sb_store_options o;
	sb_store *s;
	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 4096, SB_SYNC_NEVER);
	o.defaults.index_interval_bytes = 256;
	o.no_flusher = 1;
	o.report = count_reports;
	rebuilt_reports = 0;
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	cr_assert_eq(sb_store_close(s), 0);
	cr_expect_eq(rebuilt_reports, 0, "indexes had to be rebuilt after a clean close");
	cr_assert_eq(uw_check(env.store, &r, why, sizeof(why)), 0, "%s", why);
}

Test(crash, power_loss_after_close_loses_nothing)
{
	close_then_power_loss(0);
}

Test(crash, power_loss_after_close_loses_nothing_mmap_path)
{
	close_then_power_loss(1);
}

/* ---- a crash during recovery -------------------------------------------- */

/* Crash once in the workload, then again at each sync point of the
 * recovery that follows: recovery must be restartable. */
Test(crash, again_during_recovery)
{
	static const unsigned first[] = {12, 45, 90, 130};
	int bad = 0, cases = 0;
	for (int mm = 0; mm < 2; mm++) {
		use_mmap = mm;
		for (size_t i = 0; i < sizeof(first) / sizeof(*first); i++) {
			for (unsigned k = 1; k < 100; k++) {
				char why[512];
				uw_result r;
				fresh();
				fio *f = mk();
				fio_crash_at(f, FIO_FDATASYNC, first[i]);
				uw_run(env.store, fio_io(f), SB_SYNC_ALWAYS, &r);
				fio_crash_apply(f, 77 + first[i], FIO_CRASH_RANDOM, NULL);
				fio_free(f);
				/* the recovery, crashing at its kth sync */
				f = mk();
				fio_crash_at(f, FIO_FDATASYNC, k);
				uw_reopen(env.store, fio_io(f));
				int crashed = fio_crashed(f);
				fio_crash_apply(f, 99 + k, FIO_CRASH_RANDOM, NULL);
				fio_free(f);
				if (uw_check(env.store, &r, why, sizeof(why)) && ++bad <= 5)
					cr_log_error("%s: crash at sync %u, then at recovery sync %u: %s",
						     mm ? "mmap" : "pwrite", first[i], k, why);
				cases++;
				if (!crashed)
					break; /* recovery needed fewer than k syncs */
			}
		}
	}
	cr_expect_gt(cases, 8);
	cr_expect_eq(bad, 0, "%d of %d cases failed", bad, cases);
}

/*
 * The clean marker goes at the next open, and its removal is synced before
 * the first append: a power loss after a synced append must not bring the
 * marker back beside a newest segment that grew, which the open would take
 * for damage after a clean close and refuse (the acknowledged record then
 * unreadable). Both the pwrite and the mmap paths, every crash mode.
 */
Test(crash, clean_marker_removal_is_synced_before_the_first_append)
{
	for (int m = 0; m < 2; m++)
		for (int mode = 0; mode < FIO_CRASH_NMODES; mode++) {
			sb_log_config c;
			sb_store *s;
			sb_log *l;
			fio *f = open_fresh(m, 1 << 20, SB_SYNC_ALWAYS, &c, &s, &l);
			cr_assert_eq(ut_append_n(l, 10, 5, 10, 100), 0);
			cr_assert_eq(sb_store_close(s), 0); /* clean: the marker is written */
			cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
			cr_assert_not_null(l = ut_topic(s, "t"));
			cr_assert_eq(ut_append1(l, 10, ut_len(10, 5, 10, 100), 5, NULL), 0); /* synced */
			fio_crash_now(f);
			sb_store_close(s); /* fails: the power is gone */
			cr_assert_eq(fio_crash_apply(f, 7, mode, NULL), 0);
			fio_free(f);
			cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
			cr_assert_not_null(l = ut_topic(s, "t"), "mmap %d, mode %d: the topic was refused", m, mode);
			cr_expect_eq(sb_log_next(l), 11, "mmap %d, mode %d", m, mode);
			for (uint64_t o = 0; o < 11 && o < sb_log_next(l); o++)
				cr_expect_eq(ut_check(l, o, ut_len(o, 5, 10, 100), 5), 0, "record %llu",
					     (unsigned long long)o);
			cr_assert_eq(sb_store_close(s), 0);
		}
	use_mmap = 0;
}

/*
 * An empty topic, cleanly closed, reopened: its first record sets the
 * first offset (a backup's first digits name), which replaces the empty
 * newest segment the clean marker names. A power loss at any sync of that
 * append, or after it, must leave a topic that opens (never one whose
 * marker names the segment that went), with the record there once it was
 * acknowledged. Both write paths, every crash mode, every sync point.
 */
/* Counts the gaps between segments verify reports (into *arg). */
static void crash_vgaps(void *arg, const sb_verify_problem *p)
{
	if (getenv("SB_CRASH_DEBUG"))
		fprintf(stderr, "verify: %s: %s\n", p->path, p->msg);
	if (p->kind == SB_VERIFY_ORDER && strstr(p->msg, "the previous segment ends"))
		++*(int *)arg;
}

Test(crash, first_offset_of_a_cleanly_closed_empty_topic_survives_a_power_loss)
{
	int cases = 0;
	for (int m = 0; m < 2; m++)
		for (unsigned k = 1; k < 12; k++)
			for (int mode = 0; mode < FIO_CRASH_NMODES; mode++) {
				sb_log_config c;
				sb_store *s;
				sb_log *l;
				uint8_t p[64];
				fio *f = open_fresh(m, 1 << 20, SB_SYNC_ALWAYS, &c, &s, &l);
				cr_assert_eq(sb_store_close(s), 0); /* clean: the marker names the empty segment */
				cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
				cr_assert_not_null(l = ut_topic(s, "t"));
				ut_fill(p, sizeof(p), 1000, 9);
				sb_record_in r = {.value = p, .value_len = sizeof(p)};
				fio_crash_at(f, FIO_FDATASYNC, k);
				int acked = sb_log_append_at(l, 1000, &r, 1) == 0;
				int crashed = fio_crashed(f);
				fio_crash_now(f);
				sb_store_close(s);
				cr_assert_eq(fio_crash_apply(f, 31 + k, mode, NULL), 0);
				fio_free(f);
				/* verify agrees: an interrupted operation, not damage */
				char td[8192];
				sb_verify_result vr;
				snprintf(td, sizeof(td), "%s/t", env.store);
				int gaps = 0;
				cr_assert_eq(sb_verify_topic(td, crash_vgaps, NULL, &gaps, &vr), 0);
				/* (a torn record is what a power loss leaves, and a
				 * saved start past the empty log's end the open puts
				 * right; a gap would be records missing) */
				cr_expect_eq(gaps, 0, "mmap %d, sync %u, mode %d: verify found a gap", m, k, mode);
				cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
				l = ut_topic(s, "t");
				cr_assert_not_null(l, "mmap %d, sync %u, mode %d: the topic was refused", m, k, mode);
				if (acked) {
					cr_expect_eq(sb_log_next(l), 1001, "mmap %d, sync %u, mode %d", m, k, mode);
					cr_expect_eq(ut_check(l, 1000, sizeof(p), 9), 0, "mmap %d, sync %u, mode %d", m,
						     k, mode);
				}
				cr_assert_eq(sb_store_close(s), 0);
				cr_assert_eq(sb_verify_topic(td, crash_vgaps, NULL, &gaps, &vr), 0);
				cr_expect_eq(sb_verify_damage(&vr), 0, "mmap %d, sync %u, mode %d: verify after the open",
					     m, k, mode);
				cases++;
				if (!crashed && mode == FIO_CRASH_NMODES - 1)
					k = 12; /* the append took fewer than k syncs */
			}
	use_mmap = 0;
	cr_expect_gt(cases, 20);
}

/*
 * A removal (sb_log_delete_before: rm of the oldest records) is kept by a
 * crash of the process at once, by a power loss once sb_log_sync returned,
 * and under sync = always by a power loss at once (the others: never). Random
 * removal points; both write paths.
 */
Test(crash, removal_survives_a_process_crash_at_once_and_a_power_loss_once_synced)
{
	uint64_t seed = 0x5eed0001;
	for (int m = 0; m < 2; m++)
		for (int synced = 0; synced < 3; synced++)
			for (int round = 0; round < 6; round++) {
				sb_log_config c;
				sb_store *s;
				sb_log *l;
				/* under never, the removal's meta is written in place and
				 * synced by sb_log_sync; under always, published */
				fio *f = open_fresh(m, 4096, synced == 2 ? SB_SYNC_ALWAYS : SB_SYNC_NEVER, &c, &s, &l);
				cr_assert_eq(ut_append_n(l, 60, 3, 10, 100), 0);
				uint64_t to = 1 + ut_rnd(&seed) % 59;
				for (uint64_t o = 1; o <= to; o += 1 + ut_rnd(&seed) % 5) /* rm, rm, ... */
					cr_assert_eq(sb_log_delete_before(l, o), 0);
				cr_assert_eq(sb_log_delete_before(l, to), 0);
				if (synced == 1)
					cr_assert_eq(sb_log_sync(l), 0);
				fio_crash_now(f);
				sb_store_close(s);
				/* 0: the process died (everything written kept); 1:
				 * after the sync the power went (nothing unsynced); 2:
				 * the power went at once: under sync = always a
				 * removal is on disk when it returns, as an append is
				 * (tools/crashsim found it was not: 573 of 20,000) */
				cr_assert_eq(fio_crash_apply(f, 11 + round, synced ? FIO_CRASH_DROP_ALL : FIO_CRASH_KEEP_ALL,
							     NULL), 0);
				fio_free(f);
				cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
				cr_assert_not_null(l = ut_topic(s, "t"));
				cr_expect_eq(sb_log_start(l), to, "mmap %d, %s: start %llu, removed below %llu", m,
					     synced == 2 ? "power loss at once (sync = always)"
					     : synced ? "power loss after the sync" : "process crash",
					     (unsigned long long)sb_log_start(l), (unsigned long long)to);
				cr_expect_eq(sb_log_next(l), 60);
				cr_expect_eq(ut_check(l, to, ut_len(to, 3, 10, 100), 3), 0);
				cr_assert_eq(sb_store_close(s), 0);
			}
	use_mmap = 0;
}
