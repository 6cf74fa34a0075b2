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
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"
#include "util_workload.h"

static ut_env env;
static int use_mmap; /* the store's real write path (snapshot-tracked) */

static fio *mk(void)
{
	fio *f = use_mmap ? fio_new_mmap(env.stash) : fio_new(env.stash);
	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	return f;
}

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "crash"), 0);
}

static void teardown(void)
{
	ut_env_fini(&env);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 300);

static void fresh(void)
{
	cr_assert_eq(uf_rmrf(env.store), 0);
	cr_assert_eq(uf_rmrf(env.stash), 0);
	cr_assert_eq(mkdir(env.stash, 0755), 0);
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
 * Crash at the kth call of `kind` for k = 1..n, for each seed; check each.
 * Returns the number of failing cases (the first few are printed).
 */
static int crash_each(enum sb_sync sync, fio_kind kind, unsigned n, const uint64_t *seeds,
		      int nseeds, int mode)
{
	int failures = 0;
	for (unsigned k = 1; k <= n; k++) {
		for (int si = 0; si < nseeds; si++) {
			char why[512];
			uw_result r;
			fio_crash_stats st;
			fresh();
			fio *f = mk();
			fio_crash_at(f, kind, k);
			uw_run(env.store, fio_io(f), sync, &r);
			if (!fio_crashed(f)) {
				fio_free(f);
				continue; /* the workload made fewer calls this time */
			}
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
	return failures;
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

Test(crash, at_every_sync_point_random_seeds_3_4)
{
	unsigned n = reference_calls(SB_SYNC_ALWAYS, FIO_FDATASYNC);
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seeds_b, 2, FIO_CRASH_RANDOM);
	cr_expect_eq(bad, 0, "%d of %u crash cases failed", bad, 2 * n);
}

/* Crashes between syncs: at each rename, unlink, ftruncate and open. */
Test(crash, at_every_namespace_and_truncate_call)
{
	const fio_kind kinds[] = {FIO_RENAME, FIO_UNLINK, FIO_FTRUNCATE, FIO_OPEN};
	int bad = 0;
	for (size_t i = 0; i < 4; i++) {
		unsigned n = reference_calls(SB_SYNC_ALWAYS, kinds[i]);
		bad += crash_each(SB_SYNC_ALWAYS, kinds[i], n, seeds_a, 2, FIO_CRASH_RANDOM);
	}
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}

/* Every 7th pwrite: a crash with a write in flight. */
Test(crash, at_pwrites_under_sync_never_recovers_a_prefix)
{
	unsigned n = reference_calls(SB_SYNC_NEVER, FIO_PWRITE);
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
		if (!fio_crashed(f)) {
			fio_free(f);
			continue;
		}
		fio_crash_apply(f, s[0] + k, FIO_CRASH_RANDOM, NULL);
		fio_free(f);
		r.acked_next = 0;
		r.del_done = 0;
		if (uw_check(env.store, &r, why, sizeof(why)) && ++bad <= 5)
			cr_log_error("crash at pwrite %u (sync=never): %s", k, why);
	}
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
	int bad = crash_each(SB_SYNC_ALWAYS, FIO_FDATASYNC, n, seeds, 2, FIO_CRASH_RANDOM);
	cr_expect_eq(bad, 0, "%d of %u crash cases failed", bad, 2 * n);
}

Test(crash, mmap_path_at_every_namespace_and_truncate_call)
{
	const fio_kind kinds[] = {FIO_RENAME, FIO_UNLINK, FIO_FTRUNCATE, FIO_FALLOCATE};
	int bad = 0;
	use_mmap = 1;
	for (size_t i = 0; i < 4; i++) {
		unsigned n = reference_calls(SB_SYNC_ALWAYS, kinds[i]);
		bad += crash_each(SB_SYNC_ALWAYS, kinds[i], n, seeds_a, 2, FIO_CRASH_RANDOM);
	}
	cr_expect_eq(bad, 0, "%d crash cases failed", bad);
}
