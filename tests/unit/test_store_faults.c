/*
 * test_store_faults.c - I/O errors through util_faultio: a failed fdatasync
 * is sticky until reopen and loses nothing acknowledged before it; ENOSPC
 * and short writes fail an append and leave the log exactly as before; EIO
 * on open and elsewhere surfaces as an error; EMFILE in a roll fails one
 * append, not the next; and every call of the
 * scripted workload failed in turn loses no acknowledged record.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"
#include "util_workload.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;
static fio *F;
static char tdir[4096];

#define SB_REC_HDR_BYTES 32
#define LEN(i) ut_len((i), 1, 20, 300)

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "faults"), 0);
	S = NULL;
	F = fio_new(env.stash);
	fio_set_sync(F, 0, 0);
	ut_cfg(&C, 8192, SB_SYNC_ALWAYS);
	C.index_interval_bytes = 512;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	fio_free(F);
	ut_env_fini(&env);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 240);

static void open_fio(void)
{
	cr_assert_eq(ut_open(env.store, &C, fio_io(F), &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

/* Close whatever happened (the result is not asserted), reopen with the
 * real io. */
static void reopen_real(void)
{
	sb_store_close(S);
	S = NULL;
	int rc = ut_open(env.store, &C, NULL, &S);
	cr_assert_eq(rc, 0, "reopen: %s", sb_strerror(rc));
	cr_assert_eq(sb_store_get(S, "t", &L), 0);
}

static void fill(uint64_t n)
{
	for (uint64_t i = sb_log_next(L); i < n; i++)
		cr_assert_eq(ut_append1(L, i, LEN(i), 1, NULL), 0, "append %llu",
			     (unsigned long long)i);
}

static void expect_records(uint64_t n, const char *when)
{
	for (uint64_t i = sb_log_start(L); i < n; i++)
		cr_assert_eq(ut_check(L, i, LEN(i), 1), 0, "%s: record %llu", when,
			     (unsigned long long)i);
}

/* Nothing changed since *before (stats and next). */
static void expect_unchanged(const sb_log_stats *before, const char *when)
{
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.next, before->next, "%s: next %llu, was %llu", when,
		     (unsigned long long)st.next, (unsigned long long)before->next);
	cr_expect_eq(st.bytes, before->bytes, "%s: bytes %llu, was %llu", when,
		     (unsigned long long)st.bytes, (unsigned long long)before->bytes);
	cr_expect_eq(st.stream_bytes, before->stream_bytes, "%s", when);
}

static void sticky(enum sb_sync sync)
{
	C.sync = sync;
	/* acked: what must be there after reopen (no crash happened) */
	uint64_t acked = sync == SB_SYNC_NEVER ? 31 : 30;
	open_fio();
	fill(30);
	if (sync == SB_SYNC_NEVER) {
		cr_assert_eq(sb_log_sync(L), 0);
		fill(31); /* something for the next sync to do */
	}
	fio_fail(F, FIO_FDATASYNC, 1, EIO, 0, ".seg");
	int rc = sync == SB_SYNC_ALWAYS ? ut_append1(L, 30, LEN(30), 1, NULL) : sb_log_sync(L);
	if (sync == SB_SYNC_NEVER) {
		cr_assert_eq(rc, -EIO, "sb_log_sync: %s", sb_strerror(rc));
		rc = ut_append1(L, 31, LEN(31), 1, NULL);
	}
	cr_assert_eq(rc, -EIO, "the append after the failed sync: %s", sb_strerror(rc));
	fio_fail_clear(F);
	/* the disk is fine again, but the log stays refused until reopened */
	for (int i = 0; i < 3; i++) {
		rc = ut_append1(L, sb_log_next(L), 10, 1, NULL);
		cr_expect_eq(rc, -EIO, "append %d after the failure: %s", i, sb_strerror(rc));
	}
	sb_record_in r = {.value = "x", .value_len = 1};
	cr_expect_eq(sb_log_append_at(L, sb_log_next(L), &r, 1), -EIO);
	expect_records(acked, "readable after the failure");
	reopen_real();
	cr_assert_geq(sb_log_next(L), acked, "acknowledged records lost");
	cr_assert_leq(sb_log_next(L), acked + 1);
	expect_records(sb_log_next(L), "after reopen");
	uint64_t next = sb_log_next(L), got = 0;
	cr_assert_eq(ut_append1(L, next, LEN(next), 1, &got), 0, "appends work after reopen");
	cr_expect_eq(got, next);
}

Test(faults, failed_sync_is_sticky_under_always)
{
	sticky(SB_SYNC_ALWAYS);
}

Test(faults, failed_sync_is_sticky_under_never)
{
	sticky(SB_SYNC_NEVER);
}

Test(faults, failed_sync_is_sticky_on_the_mmap_path)
{
	fio_free(F);
	F = fio_new_mmap(env.stash);
	fio_set_sync(F, 0, 0);
	sticky(SB_SYNC_ALWAYS);
}

/* What returns is durable: no write, create or rename left unsynced. */
Test(faults, always_acknowledges_only_durable_records)
{
	C.sync = SB_SYNC_ALWAYS;
	C.segment_bytes = 4096;
	open_fio();
	for (uint64_t i = 0; i < 80; i++) {
		cr_assert_eq(ut_append1(L, i, LEN(i), 1, NULL), 0);
		cr_assert_eq(fio_pending_data(F), 0, "append %llu returned with unsynced writes",
			     (unsigned long long)i);
		cr_assert_eq(fio_pending_ns(F), 0,
			     "append %llu returned with a file created/renamed but its directory "
			     "not synced", (unsigned long long)i);
	}
	cr_assert_gt(uf_count_suffix(tdir, ".seg"), 3);
	cr_assert_eq(sb_log_delete_before(L, 40), 0);
	cr_expect_eq(fio_pending_data(F), 0, "delete_before returned with unsynced writes");
	cr_expect_eq(fio_pending_ns(F), 0, "delete_before returned before its directory sync");
}

Test(faults, log_sync_makes_everything_durable)
{
	C.sync = SB_SYNC_NEVER;
	C.segment_bytes = 4096;
	open_fio();
	fill(80);
	cr_assert_eq(sb_log_sync(L), 0);
	cr_expect_eq(fio_pending_data(F), 0, "sb_log_sync left unsynced writes");
	cr_expect_eq(fio_pending_ns(F), 0, "sb_log_sync left unsynced directory entries");
}

/* A sync by the interval flusher that fails is as sticky as any other. */
Test(faults, failed_flusher_sync_is_sticky)
{
	sb_store_options o;
	sb_store_options_default(&o);
	o.io = fio_io(F);
	o.defaults = C;
	o.defaults.sync = SB_SYNC_INTERVAL;
	o.defaults.sync_interval_ms = 10;
	o.no_flusher = 0;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
	fill(10);
	fio_fail(F, FIO_FDATASYNC, 1, EIO, 0, ".seg");
	int rc = 0;
	uint64_t t0 = ut_now_ms(), i = 10;
	/* bounded wait for the flusher to run into the failure (10 ms expected) */
	while (!rc && ut_now_ms() - t0 < 20000) {
		rc = ut_append1(L, i, LEN(i), 1, NULL);
		if (!rc)
			i++;
		usleep(2000);
	}
	cr_assert_eq(rc, -EIO, "appends after the flusher's failed sync: %s", sb_strerror(rc));
	fio_fail_clear(F);
	usleep(30000);
	cr_expect_eq(ut_append1(L, i, LEN(i), 1, NULL), -EIO, "the failure was forgotten");
	expect_records(i, "after the flusher failed");
	reopen_real();
	cr_expect_geq(sb_log_next(L), i);
	expect_records(i, "after reopen");
}

/* Close the store, remove it, and open an empty one over a new fault layer
 * (C as it is). */
static void fresh_store(void)
{
	if (S)
		sb_store_close(S);
	S = NULL;
	fio_free(F);
	cr_assert_eq(uf_rmrf(env.store), 0);
	F = fio_new(env.stash);
	fio_set_sync(F, 0, 0);
	open_fio();
}

/* Under sync=never the sealed segments are synced by sb_log_sync (or the
 * flusher), after the active one. If a sync of records fails there (the
 * active segment's, or a sealed one's), sb_log_sync and appends say so
 * from then on: a retried fdatasync can succeed with the data lost. (This
 * test failed the syncs of new segments' headers until 2026-12-03: no
 * record was in them; see the next test.) */
Test(faults, failed_sync_of_a_sealed_segment_surfaces)
{
	C.sync = SB_SYNC_NEVER;
	C.segment_bytes = 4096;
	for (unsigned nth = 1; nth <= 3; nth++) { /* the active segment's, then two sealed ones' */
		fresh_store();
		uint64_t i = 0;
		for (; uf_count_suffix(tdir, ".seg") < 4 && i < 1000; i++)
			cr_assert_eq(ut_append1(L, i, LEN(i), 1, NULL), 0);
		fio_fail(F, FIO_FDATASYNC, nth, EIO, 0, ".seg");
		int rc = sb_log_sync(L);
		cr_assert_eq(fio_failed(F), 1, "nth %u: the injected failure was never hit", nth);
		cr_expect_eq(rc, -EIO, "nth %u: a failed segment sync went unreported: %s", nth,
			     sb_strerror(rc));
		cr_expect_eq(ut_append1(L, i, LEN(i), 1, NULL), -EIO,
			     "nth %u: appends go on after a failed sync", nth);
		cr_expect_eq(sb_log_sync(L), -EIO, "nth %u: a sync after the failed one", nth);
		expect_records(i, "after the failed sync");
		reopen_real();
		cr_expect_geq(sb_log_next(L), i);
		expect_records(i, "after reopen");
	}
}

/* A roll whose new segment's header sync fails (a file with no record
 * in it, removed at once): that append fails and appends are refused
 * until the reopen, but nothing appended was lost. sb_log_sync still
 * makes it durable and says 0, and so does the close: a power loss right
 * after either keeps every record. Both said EIO or did nothing until
 * 2026-12-03 (a power loss after the close lost what was appended). */
Test(faults, failed_header_sync_of_a_new_segment_loses_nothing)
{
	C.sync = SB_SYNC_NEVER;
	C.segment_bytes = 4096;
	for (unsigned c = 0; c < 6; c++) {
		unsigned nth = 1 + c / 2;
		int by_close = c % 2;
		fresh_store();
		fill(5);
		fio_fail(F, FIO_FDATASYNC, nth, EIO, 0, ".seg");
		uint64_t i = 5;
		int rc = 0;
		for (; !rc && i < 1000; i += !rc)
			rc = ut_append1(L, i, LEN(i), 1, NULL);
		cr_assert_eq(rc, -EIO, "nth %u: %s", nth, sb_strerror(rc));
		cr_assert_eq(fio_failed(F), 1u);
		cr_expect_eq(ut_append1(L, i, LEN(i), 1, NULL), -EIO, "nth %u: appends go on", nth);
		if (!by_close) {
			rc = sb_log_sync(L);
			cr_assert_eq(rc, 0, "nth %u: nothing was lost, yet the sync says %s", nth, sb_strerror(rc));
			fio_crash_now(F);
		}
		sb_store_close(S); /* (its error is the failure's) */
		S = NULL;
		fio_crash_now(F);
		cr_assert_eq(fio_crash_apply(F, nth, FIO_CRASH_DROP_ALL, NULL), 0);
		reopen_real();
		cr_expect_eq(sb_log_next(L), i, "nth %u, after %s and a power loss: next %llu", nth,
			     by_close ? "the close" : "the sync", (unsigned long long)sb_log_next(L));
		expect_records(i, by_close ? "after the close and a power loss" : "after the sync and a power loss");
	}
}

/* ENOSPC from fdatasync is a failed sync like EIO (its pages may have been
 * dropped), not a full disk to retry: every sync of the first segment once
 * it holds records (the appends' own under `always`, the seal's, the one
 * before its index is saved) fails in turn with ENOSPC, and from then on
 * the log refuses appends until reopened. It was forgiven in two places:
 * a roll's seal (as if creating the next segment had found the disk full)
 * and the sync before an index save (as if the index had no room).
 * tools/faults found both through the mount. */
static void enospc_sync_of_segment0(enum sb_sync sync)
{
	unsigned fired = 0;
	C.sync = sync;
	C.segment_bytes = 4096;
	for (unsigned nth = 1; nth <= 40; nth++) {
		fresh_store();
		fill(5);
		fio_fail(F, FIO_FDATASYNC, nth, ENOSPC, 0, "/00000000000000000000.seg");
		uint64_t i = 5;
		int rc = 0;
		while (!rc && uf_count_suffix(tdir, ".seg") < 4 && i < 1000) {
			rc = ut_append1(L, i, LEN(i), 1, NULL);
			if (!rc)
				i++;
		}
		if (!rc)
			rc = sb_log_sync(L); /* under `never`, seals sync here */
		if (!fio_failed(F))
			break; /* fewer syncs of segment 0 than nth */
		fired++;
		cr_expect_eq(rc, -ENOSPC, "nth %u: the failed sync went unreported: %s", nth, sb_strerror(rc));
		fio_fail_clear(F);
		for (int k = 0; k < 2; k++) {
			rc = ut_append1(L, i, LEN(i), 1, NULL);
			cr_expect_eq(rc, -ENOSPC, "nth %u: append %d after the failed sync: %s", nth, k,
				     sb_strerror(rc));
		}
		expect_records(i, "after the failed sync");
		reopen_real();
		cr_expect_geq(sb_log_next(L), i);
		expect_records(i, "after reopen");
		cr_expect_eq(ut_append1(L, sb_log_next(L), 10, 1, NULL), 0, "nth %u: appends after reopen", nth);
	}
	/* (under `never` one: the index save after the seal's sync of the
	 * records no longer syncs them again) */
	cr_expect_geq(fired, sync == SB_SYNC_ALWAYS ? 3u : 1u, "only %u syncs of segment 0 failed", fired);
}

Test(faults, enospc_syncing_a_segment_with_records_is_sticky_under_always)
{
	enospc_sync_of_segment0(SB_SYNC_ALWAYS);
}

Test(faults, enospc_syncing_a_segment_with_records_is_sticky_under_never)
{
	enospc_sync_of_segment0(SB_SYNC_NEVER);
}

/* The other sync before an index save: the open saves the indexes it
 * rebuilt for sealed segments, syncing each segment first (its records
 * may be in the page cache alone, after a crash). A failed sync there,
 * ENOSPC too, fails the topic's open and writes no index file: an index
 * says its segment was synced (recovery takes it as proof that damage is
 * no torn write), and a sync tried again later can succeed with the
 * pages gone. */
Test(faults, enospc_syncing_a_segment_before_its_rebuilt_index_writes_no_index)
{
	char idx[8192], tix[8192];
	C.segment_bytes = 4096;
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(100);
	cr_assert_geq(uf_count_suffix(tdir, ".seg"), 3);
	reopen_real();
	snprintf(idx, sizeof(idx), "%s/00000000000000000000.idx", tdir);
	snprintf(tix, sizeof(tix), "%s/00000000000000000000.tix", tdir);
	cr_assert_eq(uf_remove(idx), 0);
	cr_assert_eq(uf_remove(tix), 0);
	sb_store_close(S);
	S = NULL;
	fio_fail(F, FIO_FDATASYNC, 1, ENOSPC, FIO_STICKY, "/00000000000000000000.seg");
	int rc = ut_open(env.store, &C, fio_io(F), &S);
	if (!rc)
		rc = sb_store_get(S, "t", &L);
	cr_assert_gt(fio_failed(F), 0u, "the open did not sync segment 0");
	cr_expect_neq(rc, 0, "the topic opened as if its segment were synced");
	cr_expect(!uf_exists(idx) && !uf_exists(tix), "an index file written though the sync of its segment failed");
	fio_fail_clear(F);
	reopen_real();
	expect_records(100, "after the reopen");
}

Test(faults, enospc_fails_the_append_and_changes_nothing)
{
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(40);
	sb_log_stats before;
	cr_assert_eq(sb_log_get_stats(L, &before), 0);
	fio_disk_budget(F, 0);
	uint64_t got = 4242;
	cr_expect_eq(ut_append1(L, 40, LEN(40), 1, &got), -ENOSPC);
	cr_expect_eq(got, 4242);
	sb_record_in rs[3] = {{.value = "a", .value_len = 1}, {.value = "b", .value_len = 1},
			      {.value = "c", .value_len = 1}};
	cr_expect_eq(sb_log_append(L, rs, 3, NULL), -ENOSPC);
	expect_unchanged(&before, "after ENOSPC");
	expect_records(40, "after ENOSPC");
	fio_disk_budget(F, -1);
	cr_assert_eq(ut_append1(L, 40, LEN(40), 1, &got), 0, "append once there is space");
	cr_expect_eq(got, 40);
	fill(45);
	reopen_real();
	cr_expect_eq(sb_log_next(L), 45);
	expect_records(45, "after reopen");
}

Test(faults, enospc_in_the_middle_of_a_batch_appends_none_of_it)
{
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(12);
	sb_log_stats before;
	cr_assert_eq(sb_log_get_stats(L, &before), 0);
	uint8_t buf[5][300];
	sb_record_in rs[5];
	for (int j = 0; j < 5; j++) {
		ut_fill(buf[j], 300, 12 + (uint64_t)j, 1);
		rs[j] = (sb_record_in){.value = buf[j], .value_len = 300};
	}
	fio_disk_budget(F, 2 * (SB_REC_HDR_BYTES + 300) + 10); /* room for two of five */
	cr_expect_eq(sb_log_append(L, rs, 5, NULL), -ENOSPC);
	expect_unchanged(&before, "after a batch hit ENOSPC");
	cr_expect_eq(sb_log_read(L, 12, 0, buf[0], 8, &(size_t){0}, NULL), -ENOENT);
	fio_disk_budget(F, -1);
	fill(20);
	reopen_real();
	cr_expect_eq(sb_log_next(L), 20);
	expect_records(20, "after reopen");
}

/* The default write path preallocates: a full disk shows up there. */
Test(faults, enospc_preallocating_on_the_mmap_path_appends_nothing)
{
	fio_free(F);
	F = fio_new_mmap(env.stash);
	fio_set_sync(F, 0, 0);
	C.sync = SB_SYNC_NEVER;
	C.segment_bytes = 4096;
	open_fio();
	fill(5);
	fio_fail(F, FIO_FALLOCATE, 1, ENOSPC, FIO_STICKY, NULL);
	fio_fail(F, FIO_FTRUNCATE, 1, ENOSPC, FIO_STICKY, NULL); /* a fallback to growing */
	int rc = 0;
	uint64_t i;
	for (i = 5; i < 2000 && !rc; i++)
		rc = ut_append1(L, i, LEN(i), 1, NULL);
	cr_assert_eq(rc, -ENOSPC, "appends never needed space? %s", sb_strerror(rc));
	uint64_t acked = i - 1;
	cr_expect_eq(sb_log_next(L), acked, "the failed append appended");
	expect_records(acked, "after ENOSPC");
	cr_expect_eq(ut_append1(L, acked, LEN(acked), 1, NULL), -ENOSPC, "still full");
	fio_fail_clear(F);
	uint64_t got = 0;
	cr_assert_eq(ut_append1(L, acked, LEN(acked), 1, &got), 0, "space again");
	cr_expect_eq(got, acked);
	fill(acked + 20);
	reopen_real();
	cr_expect_eq(sb_log_next(L), acked + 20);
	expect_records(acked + 20, "after reopen");
}

Test(faults, short_write_then_enospc_cuts_back)
{
	char name[256], p[4096];
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(25);
	cr_assert_eq(uf_last_suffix(tdir, ".seg", name, sizeof(name)), 0);
	uf_join(p, sizeof(p), tdir, name);
	off_t size = uf_size(p);
	sb_log_stats before;
	cr_assert_eq(sb_log_get_stats(L, &before), 0);
	fio_disk_budget(F, 20); /* the record's header fits, not the record */
	cr_expect_eq(ut_append1(L, 25, 200, 1, NULL), -ENOSPC);
	expect_unchanged(&before, "after a short write");
	cr_expect_eq(uf_size(p), size, "the segment file was not cut back: %lld, was %lld",
		     (long long)uf_size(p), (long long)size);
	fio_disk_budget(F, -1);
	fill(35);
	expect_records(35, "after the short write");
	reopen_real();
	cr_expect_eq(sb_log_next(L), 35, "reopen after a short write");
	expect_records(35, "after reopen");
}

Test(faults, one_short_write_is_completed_or_undone)
{
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(10);
	fio_short_write(F, 1, 7);
	int rc = ut_append1(L, 10, LEN(10), 1, NULL);
	if (rc) {
		cr_expect_eq(sb_log_next(L), 10, "failed append (%s) appended", sb_strerror(rc));
	} else {
		cr_expect_eq(sb_log_next(L), 11);
		cr_expect_eq(ut_check(L, 10, LEN(10), 1), 0, "a short write made it into a record");
	}
	uint64_t n = sb_log_next(L);
	rc = ut_append1(L, n, LEN(n), 1, NULL);
	if (!rc)
		fill(n + 10);
	uint64_t acked = sb_log_next(L);
	expect_records(acked, "after the short write");
	reopen_real();
	cr_expect_eq(sb_log_next(L), acked);
	expect_records(acked, "after reopen");
}

Test(faults, eio_on_pwrite_fails_the_append_only)
{
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(10);
	sb_log_stats before;
	cr_assert_eq(sb_log_get_stats(L, &before), 0);
	fio_fail(F, FIO_PWRITE, 1, EIO, 0, ".seg");
	cr_expect_eq(ut_append1(L, 10, LEN(10), 1, NULL), -EIO);
	expect_unchanged(&before, "after EIO");
	uint64_t n = sb_log_next(L), got = 0;
	int rc = ut_append1(L, n, LEN(n), 1, &got);
	cr_expect(rc == 0 || rc == -EIO, "append after a failed write: %s", sb_strerror(rc));
	uint64_t acked = rc ? n : n + 1;
	if (!rc)
		cr_expect_eq(got, 10);
	reopen_real();
	cr_expect_eq(sb_log_next(L), acked);
	expect_records(acked, "after reopen");
}

Test(faults, eio_opening_a_segment_fails_the_store_open)
{
	open_fio();
	fill(200);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	fio_fail(F, FIO_OPEN, 2, EIO, FIO_STICKY, ".seg");
	sb_store *s = (sb_store *)0x1;
	int rc = ut_open(env.store, &C, fio_io(F), &s);
	cr_expect_eq(rc, -EIO, "open with an unreadable segment: %s", sb_strerror(rc));
	cr_expect_eq(s, (sb_store *)0x1);
	if (!rc)
		sb_store_close(s);
	fio_fail_clear(F);
	reopen_real();
	cr_expect_eq(sb_log_next(L), 200);
	expect_records(200, "after the failed open");
}

Test(faults, eio_creating_the_next_segment_fails_the_append)
{
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(20);
	int nseg = uf_count_suffix(tdir, ".seg");
	fio_fail(F, FIO_OPEN, 1, EIO, FIO_STICKY, ".seg");
	int rc = 0;
	uint64_t i;
	for (i = 20; i < 400 && !rc; i++)
		rc = ut_append1(L, i, LEN(i), 1, NULL);
	cr_assert_eq(rc, -EIO, "no roll needed a new segment? %s", sb_strerror(rc));
	uint64_t acked = i - 1;
	cr_expect_eq(sb_log_next(L), acked, "the failed append appended");
	cr_expect_eq(uf_count_suffix(tdir, ".seg"), nseg, "a segment file appeared though open failed");
	fio_fail_clear(F);
	rc = ut_append1(L, acked, LEN(acked), 1, NULL);
	cr_expect(rc == 0 || rc == -EIO, "%s", sb_strerror(rc));
	if (!rc)
		acked++;
	expect_records(acked, "after the failed roll");
	reopen_real();
	cr_expect_eq(sb_log_next(L), acked);
	expect_records(acked, "after reopen");
}

/* The process out of descriptors (EMFILE) at each open of a roll in turn
 * (the new segment's create, the directory's sync, the sealed segment's
 * index files under `always`, or under `never` at the sync after): that
 * append (or sync) fails, and the next one, descriptors free again,
 * succeeds: it used to refuse every append until reopened (a remount).
 * Nothing is lost; verify finds nothing. */
static void emfile_in_a_roll(enum sb_sync sync)
{
	unsigned fired = 0;
	C.sync = sync;
	C.segment_bytes = 4096;
	for (unsigned nth = 1; nth <= 8; nth++) {
		fresh_store();
		fill(5);
		int nseg = uf_count_suffix(tdir, ".seg");
		fio_fail(F, FIO_OPEN, nth, EMFILE, 0, NULL);
		uint64_t i = 5;
		int rc = 0, failures = 0;
		while (uf_count_suffix(tdir, ".seg") < nseg + 3 && i < 1000) {
			rc = ut_append1(L, i, LEN(i), 1, NULL);
			if (rc) {
				cr_assert_eq(rc, -EMFILE, "nth %u: append %llu: %s", nth,
					     (unsigned long long)i, sb_strerror(rc));
				cr_assert_eq(failures++, 0, "nth %u: append %llu failed again: the failure stuck",
					     nth, (unsigned long long)i);
				continue;
			}
			i++;
		}
		rc = sb_log_sync(L);
		if (rc) { /* under `never`, seals sync here */
			cr_assert_eq(rc, -EMFILE, "nth %u: sync: %s", nth, sb_strerror(rc));
			failures++;
			rc = sb_log_sync(L);
			cr_assert_eq(rc, 0, "nth %u: the sync after EMFILE: %s", nth, sb_strerror(rc));
		}
		if (!fio_failed(F))
			break; /* fewer opens than nth */
		fired++;
		cr_expect_eq(failures, 1, "nth %u: EMFILE failed %d calls", nth, failures);
		expect_records(i, "after EMFILE");
		reopen_real();
		cr_expect_eq(sb_log_next(L), i, "nth %u", nth);
		expect_records(i, "after reopen");
		sb_verify_result res;
		cr_assert_eq(sb_verify_topic(tdir, NULL, NULL, NULL, &res), 0);
		for (int k = 0; k < SB_VERIFY_NKINDS; k++)
			cr_expect_eq(res.problems[k], 0, "nth %u: verify: %llu problems of kind %d", nth,
				     (unsigned long long)res.problems[k], k);
	}
	cr_expect_geq(fired, 2u, "only %u opens failed", fired);
}

Test(faults, emfile_in_a_roll_fails_one_append_under_never)
{
	emfile_in_a_roll(SB_SYNC_NEVER);
}

Test(faults, emfile_in_a_roll_fails_one_append_under_always)
{
	emfile_in_a_roll(SB_SYNC_ALWAYS);
}

Test(faults, failing_index_saves_at_close_lose_nothing)
{
	open_fio();
	fill(300);
	fio_fail(F, FIO_RENAME, 1, EIO, FIO_STICKY, NULL);
	int rc = sb_store_close(S);
	S = NULL;
	cr_expect_neq(rc, 0, "close hid a failed index save");
	fio_fail_clear(F);
	reopen_real();
	cr_expect_eq(sb_log_next(L), 300);
	expect_records(300, "after failed index saves");
}

/* A segment that cannot be unlinked while the start moves must not make a
 * later open drop the live segments after it. */
static void failed_unlink(int err)
{
	C.sync = SB_SYNC_NEVER;
	open_fio();
	fill(300);
	cr_assert_gt(uf_count_suffix(tdir, ".seg"), 5);
	fio_fail(F, FIO_UNLINK, 1, err, 0, ".seg");
	int rc = sb_log_delete_before(L, 150);
	uint64_t start = sb_log_start(L);
	cr_expect(start == 150 || (rc && start == 0), "delete_before: %s, start %llu",
		  sb_strerror(rc), (unsigned long long)start);
	expect_records(300, "after the failed unlink");
	fill(310);
	reopen_real();
	cr_expect_eq(sb_log_next(L), 310,
		     "acknowledged records lost after a failed unlink (delete_before said %s): "
		     "start %llu next %llu after reopen, want next 310",
		     sb_strerror(rc), (unsigned long long)sb_log_start(L),
		     (unsigned long long)sb_log_next(L));
	cr_expect(sb_log_start(L) == start || (rc && sb_log_start(L) <= 150),
		  "start %llu after reopen, was %llu", (unsigned long long)sb_log_start(L),
		  (unsigned long long)start);
	cr_assert_leq(sb_log_start(L), 150);
	expect_records(310, "after reopen");
}

Test(faults, eio_unlinking_an_old_segment_loses_no_live_record)
{
	failed_unlink(EIO);
}

Test(faults, ebusy_unlinking_an_old_segment_loses_no_live_record)
{
	failed_unlink(EBUSY);
}

static void every_call_in_turn(int use_mmap)
{
	static const int errs[] = {EIO, ENOSPC};
	int bad = 0, runs = 0, fired = 0;
	for (int kind = 0; kind < FIO_NKINDS; kind++) {
		if (use_mmap && (kind == FIO_RENAME || kind == FIO_UNLINK))
			continue; /* the same code as the pwrite path */
		/* how many calls of this kind a whole run makes */
		char why[512];
		uw_result r;
		cr_assert_eq(uf_rmrf(env.store), 0);
		fio *g = use_mmap ? fio_new_mmap(env.stash) : fio_new(env.stash);
		fio_set_sync(g, 0, 0);
		uw_run(env.store, fio_io(g), SB_SYNC_ALWAYS, &r);
		unsigned n = fio_calls(g, (fio_kind)kind);
		fio_free(g);
		cr_assert_eq(r.fail_rc, 0);
		for (unsigned k = 1; k <= n; k++) {
			int err = errs[k % 2];
			cr_assert_eq(uf_rmrf(env.store), 0);
			g = use_mmap ? fio_new_mmap(env.stash) : fio_new(env.stash);
			fio_set_sync(g, 0, 0);
			fio_fail(g, (fio_kind)kind, k, err, 0, NULL);
			uw_run(env.store, fio_io(g), SB_SYNC_ALWAYS, &r);
			fired += fio_failed(g) > 0; /* else the run checked nothing new */
			fio_free(g);
			runs++;
			/* no crash: even a record whose append failed may be there, but
			 * every acknowledged one must be */
			if (uw_check(env.store, &r, why, sizeof(why)) && ++bad <= 5)
				cr_log_error("%s: %s on call %u of kind %d (stopped at %s: %s): %s",
					     use_mmap ? "mmap" : "pwrite", strerror(err), k, kind, r.fail_at ? r.fail_at : "-",
					     sb_strerror(r.fail_rc), why);
			if (r.fail_at && !strcmp(r.fail_at, "append") && r.fail_rc != -err &&
			    r.fail_rc != -EIO && ++bad <= 5)
				cr_log_error("call %u of kind %d failed with %s, append said %s", k,
					     kind, strerror(err), sb_strerror(r.fail_rc));
		}
	}
	cr_expect_gt(runs, 100);
	cr_expect_geq(fired * 10, runs * 9, "the fault fired in only %d of %d runs", fired, runs);
	cr_expect_eq(bad, 0, "%d of %d runs failed", bad, runs);
}

Test(faults, eio_and_enospc_on_every_call_in_turn)
{
	every_call_in_turn(0);
}

Test(faults, eio_and_enospc_on_every_call_in_turn_mmap_path)
{
	every_call_in_turn(1);
}

/*
 * Topic create and remove, then reopen (mkdir, rmdir, unlink, close, pread
 * are only made there): EIO and ENOSPC on each call of every kind in turn.
 * An error that reaches a caller (create, remove, open or close) is the
 * injected one (or EIO, or damage found); "t" keeps its records; a topic
 * left over by a failed create or remove is empty and removable, and one
 * whose remove returned 0 is gone. Not every failure reaches a caller:
 * recovery treats a failed read or open of an index, meta or clean file as
 * damage and rebuilds it, saves at close of best-effort files (indexes, the
 * clean marker) and LOG_DIR's parent sync at the open of an existing store
 * do not fail their caller, and a failed close changes nothing (what it
 * covered was synced): those runs check only that nothing was lost.
 */
static int topic_cycle(const sb_io *io, int *create_rc, int *remove_rc)
{
	sb_store *s;
	int rc = ut_open(env.store, &C, io, &s);
	if (rc)
		return rc;
	*create_rc = sb_store_create(s, "x");
	*remove_rc = *create_rc ? -ENOENT : sb_store_remove(s, "x");
	rc = sb_store_close(s);
	if (!rc && io) { /* a reopen over io too: recovery reads through it */
		if (!(rc = ut_open(env.store, &C, io, &s)))
			rc = sb_store_close(s);
	}
	return rc;
}

Test(faults, eio_and_enospc_on_every_call_of_topic_create_and_remove)
{
	static const int errs[] = {EIO, ENOSPC};
	int runs = 0, fired = 0, reached = 0;
	open_fio();
	fill(50);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	for (int kind = 0; kind < FIO_NKINDS; kind++) {
		int crc, rrc;
		fio *g = fio_new(env.stash);
		fio_set_sync(g, 0, 0);
		cr_assert_eq(topic_cycle(fio_io(g), &crc, &rrc), 0);
		cr_assert_eq(crc, 0);
		cr_assert_eq(rrc, 0);
		unsigned n = fio_calls(g, (fio_kind)kind);
		fio_free(g);
		for (unsigned k = 1; k <= n; k++) {
			int err = errs[k % 2];
			g = fio_new(env.stash);
			fio_set_sync(g, 0, 0);
			fio_fail(g, (fio_kind)kind, k, err, 0, NULL);
			int rc = topic_cycle(fio_io(g), &crc, &rrc);
			int failed = fio_failed(g) > 0;
			fio_free(g);
			runs++;
			fired += failed;
			reached += failed && (rc || crc || rrc);
			cr_expect(!rc || rc == -err || rc == -EIO || rc == SB_ECORRUPT,
				  "kind %d call %u: open/close said %s", kind, k, sb_strerror(rc));
			reopen_real();
			cr_expect_eq(sb_log_next(L), 50, "kind %d call %u", kind, k);
			expect_records(50, "after a failed topic create/remove");
			sb_log *x;
			int gx = sb_store_get(S, "x", &x);
			if (!rrc)
				cr_expect_neq(gx, 0, "kind %d call %u: x back after its remove returned", kind, k);
			if (!gx) { /* left over: empty, and it goes */
				cr_expect_eq(sb_log_start(x), sb_log_next(x));
				cr_expect_eq(sb_store_remove(S, "x"), 0);
			}
			cr_assert_eq(sb_store_close(S), 0);
			S = NULL;
		}
	}
	cr_log_info("%d runs, the error reached a caller in %d", runs, reached);
	cr_expect_gt(runs, 50);
	/* A quarter: the reopen's open, pread and close of each time index
	 * file (format 3) fail nobody (it is rebuilt), as for the offset index. */
	cr_expect_gt(reached, runs / 4);
	cr_expect_eq(fired, runs, "the fault fired in only %d of %d runs", fired, runs);
}
