/*
 * test_store_retention.c - delete_before and retention drop only whole
 * segments below the start, never live ones (the seed's engine deleted live
 * segments), and by bytes and age only whole old sealed segments.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;
static char tdir[4096];

#define SEG 8192
#define LEN(i) ut_len((i), 1, 40, 400)
#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "ret"), 0);
	S = NULL;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	ut_cfg(&C, SEG, SB_SYNC_NEVER);
	C.index_interval_bytes = 512;
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(retention, .init = setup, .fini = teardown);

static void open_store(void)
{
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

static void reopen(void)
{
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	open_store();
}

/* Append records [next, n) with timestamps T0 + i seconds. */
static void fill(uint64_t n)
{
	for (uint64_t i = sb_log_next(L); i < n; i++) {
		uint8_t buf[512];
		char key[32];
		ut_fill(buf, LEN(i), i, 1);
		snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
		sb_record_in r = {.key = key, .key_len = (uint32_t)strlen(key), .value = buf,
				  .value_len = (uint32_t)LEN(i), .timestamp_ns = T0 + (int64_t)i * SEC};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
	}
}

/* Segment bases in order (from the file names); returns how many. */
static int bases(uint64_t *out, int cap)
{
	char **names;
	int n = uf_list_suffix(tdir, ".seg", &names);
	cr_assert_geq(n, 0);
	cr_assert_leq(n, cap);
	for (int i = 0; i < n; i++)
		cr_assert_eq(sb_seg_name_parse(names[i], ".seg", &out[i]), 0);
	uf_list_free(names, n);
	return n;
}

static void expect_readable_from(uint64_t start, uint64_t next)
{
	cr_assert_eq(sb_log_start(L), start);
	cr_assert_eq(sb_log_next(L), next);
	for (uint64_t i = start; i < next; i++)
		cr_assert_eq(ut_check(L, i, LEN(i), 1), 0, "record %llu", (unsigned long long)i);
	if (start)
		cr_expect_eq(sb_log_read(L, start - 1, 0, (char[8]){0}, 8, &(size_t){0}, NULL),
			     -ENOENT);
}

Test(retention, delete_before_drops_only_whole_segments_below_it)
{
	uint64_t b0[256], b1[256];
	open_store();
	fill(400);
	int n0 = bases(b0, 256);
	cr_assert_gt(n0, 6);
	/* a point in the middle of the 4th segment */
	uint64_t cut = (b0[3] + b0[4]) / 2;
	cr_assert_gt(cut, b0[3]);
	cr_assert_eq(sb_log_delete_before(L, cut), 0);
	expect_readable_from(cut, 400);
	int n1 = bases(b1, 256);
	cr_expect_eq(n1, n0 - 3, "%d segments left of %d: only the 3 wholly below %llu go", n1, n0,
		     (unsigned long long)cut);
	cr_expect_eq(b1[0], b0[3], "the segment holding the new start stays");
	cr_expect_eq(uf_count_suffix(tdir, ".idx") <= n1, 1);
	/* moving the start backwards is no deletion */
	sb_log_delete_before(L, cut - 5);
	cr_expect_eq(sb_log_start(L), cut);
	reopen();
	expect_readable_from(cut, 400);
	cr_expect_eq(bases(b1, 256), n0 - 3);
	fill(450);
	expect_readable_from(cut, 450);
}

Test(retention, delete_before_next_keeps_the_active_segment_usable)
{
	open_store();
	fill(200);
	cr_expect_eq(sb_log_delete_before(L, 201), -EINVAL, "past next");
	cr_expect_eq(sb_log_start(L), 0);
	cr_assert_eq(sb_log_delete_before(L, 200), 0);
	cr_expect_eq(sb_log_start(L), 200);
	cr_expect_eq(sb_log_next(L), 200);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.records, 0);
	cr_expect_eq(st.stream_bytes, 0);
	uint64_t got = 0;
	cr_assert_eq(ut_append1(L, 200, LEN(200), 1, &got), 0);
	cr_expect_eq(got, 200);
	fill(260);
	expect_readable_from(200, 260);
	reopen();
	expect_readable_from(200, 260);
}

Test(retention, delete_before_within_the_active_segment_deletes_no_file)
{
	open_store();
	fill(5); /* all in one segment */
	cr_assert_eq(uf_count_suffix(tdir, ".seg"), 1);
	cr_assert_eq(sb_log_delete_before(L, 3), 0);
	cr_expect_eq(uf_count_suffix(tdir, ".seg"), 1);
	expect_readable_from(3, 5);
	fill(10);
	reopen();
	expect_readable_from(3, 10);
}

Test(retention, retention_bytes_drops_whole_old_sealed_segments)
{
	uint64_t b0[256], b1[256];
	C.retention_bytes = 5 * SEG;
	open_store();
	fill(600);
	int n0 = bases(b0, 256);
	cr_assert_gt(n0, 10);
	size_t dropped = 0;
	cr_assert_eq(sb_log_retain(L, T0 + 1000 * SEC, &dropped), 0);
	int n1 = bases(b1, 256);
	cr_expect_eq((int)dropped, n0 - n1);
	cr_expect_gt(dropped, 0);
	cr_expect_eq(b1[n1 - 1], b0[n0 - 1], "the active segment stays");
	cr_expect_eq(b1[0], b0[n0 - n1], "the oldest go first");
	expect_readable_from(b1[0], 600);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_leq(st.bytes, (uint64_t)(5 * SEG + SEG + 512), "%llu bytes kept",
		      (unsigned long long)st.bytes);
	cr_expect_geq(st.bytes + SEG + 512, (uint64_t)(5 * SEG), "%llu bytes kept: too many dropped",
		      (unsigned long long)st.bytes);
	/* a second pass with nothing new changes nothing */
	cr_assert_eq(sb_log_retain(L, T0 + 1000 * SEC, &dropped), 0);
	cr_expect_eq(dropped, 0);
	reopen();
	expect_readable_from(b1[0], 600);
}

/*
 * retention_bytes exactly (Kafka's rule): drop the oldest sealed segment
 * while the bytes left without it would still be at least retention_bytes;
 * never one more (the kept bytes stay >= the limit), never one fewer. For
 * random logs and limits, the segments dropped must be exactly those.
 */
Test(retention, retention_bytes_drops_exactly_the_oldest_segments_over_the_limit)
{
	uint64_t rng = 2024;
	int trials = 0, dropped_some = 0, kept_some = 0;
	for (int trial = 0; trial < 24; trial++) {
		uint64_t b0[256], len[256], total = 0, sealed = 0;
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t recs = 60 + (rng >> 33) % 400;
		if (S) {
			cr_assert_eq(sb_store_close(S), 0);
			S = NULL;
		}
		cr_assert_eq(uf_rmrf(env.store), 0);
		C.retention_bytes = -1;
		open_store();
		fill(recs);
		/* sealed segments: their file sizes; the active one: the rest */
		int n0 = bases(b0, 256);
		sb_log_stats st;
		cr_assert_eq(sb_log_get_stats(L, &st), 0);
		for (int i = 0; i + 1 < n0; i++) {
			char name[64], p[4096];
			sb_seg_name(name, b0[i], ".seg");
			len[i] = (uint64_t)uf_size(uf_join(p, sizeof(p), tdir, name));
			sealed += len[i];
		}
		cr_assert_geq(st.bytes, sealed);
		len[n0 - 1] = st.bytes - sealed;
		total = st.bytes;
		/* a limit anywhere from 0 to a bit past the whole log, often
		 * exactly on a segment boundary */
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		int64_t rb = (int64_t)((rng >> 33) % (total + SEG));
		if (trial % 3 == 0) {
			uint64_t suffix = 0;
			for (int i = n0 - 1; i >= (int)((rng >> 20) % (uint64_t)n0); i--)
				suffix += len[i];
			rb = (int64_t)suffix;
		}
		size_t want = 0;
		uint64_t left = total;
		while ((int)want + 1 < n0 && left - len[want] >= (uint64_t)rb)
			left -= len[want++];
		/* reopen with the limit (retention runs only when asked) */
		C.retention_bytes = rb;
		reopen();
		size_t dropped = 0;
		cr_assert_eq(sb_log_retain(L, T0, &dropped), 0);
		uint64_t b1[256];
		int n1 = bases(b1, 256);
		cr_assert_eq(sb_log_get_stats(L, &st), 0);
		cr_expect_eq(dropped, want,
			     "trial %d: %d segments, %llu bytes, retention_bytes %lld: dropped %zu, "
			     "want %zu", trial, n0, (unsigned long long)total, (long long)rb, dropped, want);
		cr_expect_eq(n1, n0 - (int)want, "trial %d: segment files left", trial);
		cr_expect_eq(b1[0], b0[want], "trial %d: the oldest go first", trial);
		if (total >= (uint64_t)rb)
			cr_expect_geq(st.bytes, (uint64_t)rb,
				      "trial %d: %llu bytes kept, under retention_bytes %lld", trial,
				      (unsigned long long)st.bytes, (long long)rb);
		expect_readable_from(b0[want], recs);
		trials++;
		dropped_some += want > 0;
		kept_some += want + 1 < (size_t)n0;
	}
	cr_expect_geq(dropped_some, 6, "too few trials dropped anything");
	cr_expect_geq(kept_some, 6, "too few trials kept a sealed segment");
}

Test(retention, retention_ms_drops_only_segments_wholly_older)
{
	uint64_t b0[256], b1[256];
	C.retention_ms = 100 * 1000; /* 100 s; record i is T0 + i s */
	open_store();
	fill(400);
	int n0 = bases(b0, 256);
	cr_assert_gt(n0, 8);
	int64_t now = T0 + 300 * SEC; /* keep what is newer than T0 + 200 s */
	size_t dropped = 0;
	cr_assert_eq(sb_log_retain(L, now, &dropped), 0);
	int n1 = bases(b1, 256);
	cr_expect_eq((int)dropped, n0 - n1);
	uint64_t start = sb_log_start(L);
	cr_expect_eq(start, b1[0], "start on a segment boundary");
	/* the dropped: every record older than the cutoff */
	cr_expect_leq(start, 201, "record 200 (at the cutoff) or newer dropped: start %llu",
		      (unsigned long long)start);
	/* the kept: the first kept segment has a record at or past the cutoff */
	uint64_t last_of_first = n1 > 1 ? b1[1] - 1 : sb_log_next(L) - 1;
	cr_expect_geq(last_of_first, 200, "a segment wholly older than the cutoff was kept");
	expect_readable_from(start, 400);
	reopen();
	expect_readable_from(start, 400);
}

/*
 * retention_ms exactly (Kafka's rule): a sealed segment goes when its newest
 * record is older than retention_ms (now - max_ts > retention_ms), oldest
 * first, stopping at the first that is not; one whose newest record is
 * exactly retention_ms old stays. Random logs and times, a third of them
 * right on a segment's newest record.
 */
Test(retention, retention_ms_drops_exactly_the_segments_wholly_older)
{
	uint64_t rng = 77;
	int dropped_some = 0, kept_some = 0, on_edge = 0;
	for (int trial = 0; trial < 24; trial++) {
		uint64_t b0[256], b1[256];
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t recs = 60 + (rng >> 33) % 400;
		if (S) {
			cr_assert_eq(sb_store_close(S), 0);
			S = NULL;
		}
		cr_assert_eq(uf_rmrf(env.store), 0);
		C.retention_ms = 100 * 1000; /* 100 s; record i is T0 + i s */
		open_store();
		fill(recs);
		int n0 = bases(b0, 256);
		cr_assert_gt(n0, 1);
		/* the newest record of sealed segment j is b0[j + 1] - 1 */
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		int64_t now = T0 + (int64_t)((rng >> 33) % (recs + 100)) * SEC + (int64_t)((rng >> 8) % 3) * SEC / 2;
		if (trial % 3 == 0) { /* exactly retention_ms after a segment's newest record */
			uint64_t j = (rng >> 20) % (uint64_t)(n0 - 1);
			now = T0 + (int64_t)(b0[j + 1] - 1) * SEC + C.retention_ms * 1000000LL;
			on_edge++;
		}
		size_t want = 0;
		while ((int)want + 1 < n0 &&
		       T0 + (int64_t)(b0[want + 1] - 1) * SEC < now - C.retention_ms * 1000000LL)
			want++;
		size_t dropped = 0;
		cr_assert_eq(sb_log_retain(L, now, &dropped), 0);
		int n1 = bases(b1, 256);
		cr_expect_eq(dropped, want, "trial %d: %d segments, now T0 + %.1f s: dropped %zu, want %zu",
			     trial, n0, (double)(now - T0) / SEC, dropped, want);
		cr_expect_eq(n1, n0 - (int)want, "trial %d: segment files left", trial);
		cr_expect_eq(b1[0], b0[want], "trial %d: the oldest go first", trial);
		expect_readable_from(b0[want], recs);
		dropped_some += want > 0;
		kept_some += want + 1 < (size_t)n0;
	}
	cr_expect_geq(dropped_some, 6, "too few trials dropped anything");
	cr_expect_geq(kept_some, 6, "too few trials kept a sealed segment");
	cr_expect_geq(on_edge, 8);
}

Test(retention, retention_never_drops_the_active_segment)
{
	uint64_t b0[256], b1[256];
	C.retention_ms = 1;
	C.retention_bytes = 1;
	open_store();
	fill(300);
	int n0 = bases(b0, 256);
	size_t dropped = 0;
	cr_assert_eq(sb_log_retain(L, T0 + 100000 * SEC, &dropped), 0);
	int n1 = bases(b1, 256);
	cr_expect_eq(n1, 1);
	cr_expect_eq(b1[0], b0[n0 - 1]);
	expect_readable_from(b0[n0 - 1], 300);
	fill(320);
	reopen();
	expect_readable_from(b0[n0 - 1], 320);
}

Test(retention, no_retention_keeps_everything)
{
	open_store();
	fill(300);
	int n0 = uf_count_suffix(tdir, ".seg");
	size_t dropped = 99;
	cr_assert_eq(sb_log_retain(L, T0 + 1000000 * SEC, &dropped), 0);
	cr_expect_eq(dropped, 0, "dropped %zu segments with no retention", dropped);
	cr_expect_eq(uf_count_suffix(tdir, ".seg"), n0);
	expect_readable_from(0, 300);
	cr_assert_eq(sb_store_retain(S, T0 + 1000000 * SEC), 0);
	expect_readable_from(0, 300);
}

Test(retention, store_retain_runs_every_topic)
{
	C.retention_bytes = 2 * SEG;
	open_store();
	fill(300);
	sb_log *l2 = ut_topic(S, "u");
	cr_assert_not_null(l2);
	cr_assert_eq(ut_append_n(l2, 300, 2, 40, 400), 0);
	cr_assert_eq(sb_store_retain(S, T0), 0);
	cr_expect_gt(sb_log_start(L), 0);
	cr_expect_gt(sb_log_start(l2), 0);
	expect_readable_from(sb_log_start(L), 300);
}

Test(retention, stats_of_an_emptied_log)
{
	open_store();
	fill(100);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.oldest_ns, T0);
	cr_assert_eq(sb_log_delete_before(L, 50), 0);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.oldest_ns, T0 + 50 * SEC, "oldest after delete_before(50): %lld",
		     (long long)st.oldest_ns);
	cr_expect_eq(st.newest_ns, T0 + 99 * SEC);
	cr_expect_eq(st.records, 50);
	cr_assert_eq(sb_log_delete_before(L, 100), 0);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.records, 0);
	cr_expect_eq(st.stream_bytes, 0);
	cr_expect_eq(st.oldest_ns, 0, "an empty log has no oldest timestamp");
	cr_expect_eq(st.newest_ns, 0, "an empty log has no newest timestamp");
}

/* Age is judged by a segment's newest record, not its last one: explicit
 * timestamps need not be in order. */
Test(retention, a_segment_with_any_recent_record_is_kept)
{
	C.retention_ms = 100 * 1000;
	open_store();
	uint8_t buf[1000];
	memset(buf, 'x', sizeof(buf));
	for (uint64_t i = 0; i < 40; i++) {
		sb_record_in r = {.value = buf, .value_len = sizeof(buf),
				  .timestamp_ns = i == 1 ? T0 + 10000 * SEC : T0};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
	}
	cr_assert_gt(uf_count_suffix(tdir, ".seg"), 3);
	size_t dropped = 99;
	cr_assert_eq(sb_log_retain(L, T0 + 10000 * SEC + SEC, &dropped), 0);
	cr_expect_eq(sb_log_start(L), 0, "record 1 (recent) was dropped: start %llu",
		     (unsigned long long)sb_log_start(L));
	cr_expect_eq(dropped, 0, "%zu segments dropped", dropped);
	sb_record_info in;
	int rc = sb_log_stat(L, 1, &in);
	cr_expect_eq(rc, 0, "record 1: %s (start %llu)", sb_strerror(rc),
		     (unsigned long long)sb_log_start(L));
}

/* A retention far in the future (a year in ms, and the largest value the
 * config accepts) drops nothing and does not overflow. */
Test(retention, huge_retention_ms_drops_nothing)
{
	C.retention_ms = INT64_MAX;
	if (sb_log_config_check(&C, NULL) != 0)
		C.retention_ms = 365LL * 24 * 3600 * 1000 * 1000; /* a thousand years */
	cr_assert_eq(sb_log_config_check(&C, NULL), 0);
	open_store();
	fill(300);
	size_t dropped = 99;
	cr_assert_eq(sb_log_retain(L, T0 + 1000 * SEC, &dropped), 0);
	cr_expect_eq(dropped, 0, "retention_ms %lld dropped %zu segments", (long long)C.retention_ms,
		     dropped);
	cr_expect_eq(sb_log_start(L), 0);
}

/* SPEC §5: a reader of the stream keeps its positions while the head goes. */
Test(retention, stream_positions_survive_head_removal_and_reopen)
{
	open_store();
	fill(300);
	sb_record_info a, b;
	cr_assert_eq(sb_log_stat(L, 200, &a), 0);
	uint64_t end = sb_log_stream_end(L);
	cr_assert_eq(sb_log_delete_before(L, 150), 0);
	cr_assert_eq(sb_log_stat(L, 200, &b), 0);
	cr_expect_eq(b.stream_pos, a.stream_pos);
	cr_expect_eq(sb_log_stream_end(L), end);
	sb_record_info s150;
	cr_assert_eq(sb_log_stat(L, 150, &s150), 0);
	cr_expect_eq(sb_log_stream_start(L), s150.stream_pos);
	reopen();
	cr_assert_eq(sb_log_stat(L, 200, &b), 0);
	cr_expect_eq(b.stream_pos, a.stream_pos, "stream position of 200 moved on reopen");
	cr_expect_eq(sb_log_stream_end(L), end);
	cr_expect_eq(sb_log_stream_start(L), s150.stream_pos);
	uint64_t o = 0;
	cr_assert_eq(sb_log_offset_at(L, a.stream_pos, &o), 0);
	cr_expect_eq(o, 200);
	cr_expect_eq(sb_log_offset_at(L, s150.stream_pos - 1, &o), -ENOENT);
	sb_record_info keep = {.offset = 4242};
	cr_expect_eq(sb_log_stat(L, 10, &keep), -ENOENT);
	cr_expect_eq(keep.offset, 4242, "out-parameter touched on failure");
}
