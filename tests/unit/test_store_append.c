/*
 * test_store_append.c - appending and reading one log: dense offsets, exact
 * payloads, keys/flags/timestamps, the stream view, batches, limits.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;

static void open_with(uint64_t seg_bytes)
{
	ut_cfg(&C, seg_bytes, SB_SYNC_NEVER);
	C.index_interval_bytes = 512;
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "append"), 0);
	S = NULL;
	L = NULL;
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

static void reopen(void)
{
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	cr_assert_eq(sb_store_get(S, "t", &L), 0);
}

TestSuite(append, .init = setup, .fini = teardown);

Test(append, offsets_are_dense_from_zero)
{
	open_with(0);
	cr_expect_eq(sb_log_start(L), 0);
	cr_expect_eq(sb_log_next(L), 0);
	for (uint64_t i = 0; i < 200; i++) {
		uint64_t got = 999999;
		cr_assert_eq(ut_append1(L, i, ut_len(i, 1, 0, 300), 1, &got), 0);
		cr_assert_eq(got, i, "append %llu got offset %llu", (unsigned long long)i,
			     (unsigned long long)got);
	}
	cr_expect_eq(sb_log_next(L), 200);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.start, 0);
	cr_expect_eq(st.next, 200);
	cr_expect_eq(st.records, 200);
	for (uint64_t i = 0; i < 200; i++)
		cr_assert_eq(ut_check(L, i, ut_len(i, 1, 0, 300), 1), 0, "record %llu",
			     (unsigned long long)i);
	reopen();
	cr_expect_eq(sb_log_next(L), 200);
	for (uint64_t i = 0; i < 200; i++)
		cr_assert_eq(ut_check(L, i, ut_len(i, 1, 0, 300), 1), 0, "after reopen: record %llu",
			     (unsigned long long)i);
}

Test(append, partial_reads_from_any_byte)
{
	open_with(0);
	uint8_t want[1000], buf[1000];
	ut_fill(want, sizeof(want), 0, 5);
	sb_record_in r = {.value = want, .value_len = sizeof(want)};
	cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
	size_t n = 12345;
	/* whole, head, middle, tail, at the end, past the end */
	cr_assert_eq(sb_log_read(L, 0, 0, buf, sizeof(buf), &n, NULL), 0);
	cr_expect_eq(n, 1000);
	cr_expect_eq(memcmp(buf, want, 1000), 0);
	cr_assert_eq(sb_log_read(L, 0, 0, buf, 10, &n, NULL), 0);
	cr_expect_eq(n, 10);
	cr_expect_eq(memcmp(buf, want, 10), 0);
	cr_assert_eq(sb_log_read(L, 0, 333, buf, 100, &n, NULL), 0);
	cr_expect_eq(n, 100);
	cr_expect_eq(memcmp(buf, want + 333, 100), 0);
	cr_assert_eq(sb_log_read(L, 0, 900, buf, 500, &n, NULL), 0);
	cr_expect_eq(n, 100);
	cr_expect_eq(memcmp(buf, want + 900, 100), 0);
	cr_assert_eq(sb_log_read(L, 0, 1000, buf, 10, &n, NULL), 0);
	cr_expect_eq(n, 0);
	n = 77;
	cr_assert_eq(sb_log_read(L, 0, 5000, buf, 10, &n, NULL), 0);
	cr_expect_eq(n, 0);
}

Test(append, keys_flags_and_timestamps_round_trip)
{
	open_with(0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t before = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	static const char k1[] = "user-42";
	uint8_t bigkey[3000];
	memset(bigkey, 'K', sizeof(bigkey));
	sb_record_in r[4] = {
		{.key = k1, .key_len = 7, .value = "v0", .value_len = 2, .flags = 0,
		 .timestamp_ns = 1234567890123456789LL},
		{.key = "t1", .key_len = 2, .value = "", .value_len = 0, .flags = SB_REC_TOMBSTONE,
		 .timestamp_ns = 42},
		{.key = bigkey, .key_len = sizeof(bigkey), .value = "", .value_len = 0,
		 .timestamp_ns = 0},
		{.key = "x", .key_len = 1, .value = "v3", .value_len = 2, .timestamp_ns = -5},
	};
	/* a tombstone is a key and no payload (format.h): nothing else */
	sb_record_in bad[2] = {{.key = NULL, .key_len = 0, .flags = SB_REC_TOMBSTONE},
			       {.key = "t", .key_len = 1, .value = "v", .value_len = 1, .flags = SB_REC_TOMBSTONE}};
	cr_assert_eq(sb_log_append(L, &bad[0], 1, NULL), -EINVAL);
	cr_assert_eq(sb_log_append(L, &bad[1], 1, NULL), -EINVAL);
	cr_assert_eq(sb_log_next(L), 0);
	cr_assert_eq(sb_log_append(L, r, 4, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t after = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

	for (int pass = 0; pass < 2; pass++) {
		sb_record_info in;
		char kb[4000];
		size_t kl = 0;
		cr_assert_eq(sb_log_stat(L, 0, &in), 0);
		cr_expect_eq(in.offset, 0);
		cr_expect_eq(in.timestamp_ns, 1234567890123456789LL, "pass %d", pass);
		cr_expect_eq(in.key_len, 7);
		cr_expect_eq(in.value_len, 2);
		cr_expect_eq(in.flags, 0);
		cr_assert_eq(sb_log_read_key(L, 0, kb, sizeof(kb), &kl), 0);
		cr_expect_eq(kl, 7);
		cr_expect_eq(memcmp(kb, k1, 7), 0);

		cr_assert_eq(sb_log_stat(L, 1, &in), 0);
		cr_expect_eq(in.flags, SB_REC_TOMBSTONE);
		cr_expect_eq(in.timestamp_ns, 42);
		cr_expect_eq(in.key_len, 2);
		cr_expect_eq(in.value_len, 0);
		kl = 99;
		cr_assert_eq(sb_log_read_key(L, 1, kb, sizeof(kb), &kl), 0);
		cr_expect_eq(kl, 2);

		cr_assert_eq(sb_log_stat(L, 2, &in), 0);
		cr_expect_eq(in.key_len, sizeof(bigkey));
		cr_expect_eq(in.value_len, 0);
		cr_expect(in.timestamp_ns >= before && in.timestamp_ns <= after,
			  "timestamp 0 means now: %lld not in [%lld, %lld]", (long long)in.timestamp_ns,
			  (long long)before, (long long)after);
		cr_assert_eq(sb_log_read_key(L, 2, kb, sizeof(kb), &kl), 0);
		cr_expect_eq(kl, sizeof(bigkey));
		cr_expect_eq(memcmp(kb, bigkey, sizeof(bigkey)), 0);
		/* a small buffer gets a prefix and the true length */
		kl = 0;
		memset(kb, 0, 16);
		cr_assert_eq(sb_log_read_key(L, 2, kb, 10, &kl), 0);
		cr_expect_eq(kl, sizeof(bigkey));
		cr_expect_eq(memcmp(kb, bigkey, 10), 0);

		cr_assert_eq(sb_log_stat(L, 3, &in), 0);
		cr_expect_eq(in.timestamp_ns, -5);
		size_t n = 0;
		char vb[8];
		cr_assert_eq(sb_log_read(L, 3, 0, vb, sizeof(vb), &n, NULL), 0);
		cr_expect_eq(n, 2);
		cr_expect_eq(memcmp(vb, "v3", 2), 0);
		if (!pass)
			reopen();
	}
}

/* Build the expected stream of records [0, n) appended with ut_len(lo, hi). */
static uint8_t *expected_stream(uint64_t n, uint64_t seed, size_t lo, size_t hi, size_t *len,
				uint64_t *pos)
{
	size_t total = 0;
	for (uint64_t i = 0; i < n; i++)
		total += ut_len(i, seed, lo, hi);
	uint8_t *s = malloc(total + 1);
	cr_assert_not_null(s);
	total = 0;
	for (uint64_t i = 0; i < n; i++) {
		size_t l = ut_len(i, seed, lo, hi);
		if (pos)
			pos[i] = total;
		ut_fill(s + total, l, i, seed);
		total += l;
	}
	*len = total;
	return s;
}

static void check_stream_at(uint64_t p, size_t want, const uint8_t *s, size_t total)
{
	uint8_t *buf = malloc(want + 1);
	size_t n = 999999, exp = p >= total ? 0 : (total - p < want ? total - p : want);
	cr_assert_eq(sb_log_read_stream(L, p, buf, want, &n), 0, "read_stream at %llu",
		     (unsigned long long)p);
	/* A short read is allowed only if the next read continues exactly. */
	size_t got = n;
	while (n && got < exp) {
		cr_assert_eq(sb_log_read_stream(L, p + got, buf + got, want - got, &n), 0);
		got += n;
	}
	cr_expect_eq(got, exp, "read_stream(%llu, %zu): %zu bytes, want %zu", (unsigned long long)p,
		     want, got, exp);
	cr_expect(got == exp && !memcmp(buf, s + p, exp), "stream bytes at %llu differ",
		  (unsigned long long)p);
	free(buf);
}

Test(append, read_stream_anywhere_across_segments)
{
	open_with(4096);
	const uint64_t n = 300;
	uint64_t pos[300];
	size_t total;
	cr_assert_eq(ut_append_n(L, n, 3, 1, 700), 0);
	uint8_t *s = expected_stream(n, 3, 1, 700, &total, pos);
	cr_assert_gt(uf_count_suffix(ut_topic_path(&env, "t", NULL, (char[4096]){0}, 4096), ".seg"),
		     5, "small segment_bytes rolls");
	for (int pass = 0; pass < 2; pass++) {
		cr_expect_eq(sb_log_stream_start(L), 0);
		cr_expect_eq(sb_log_stream_end(L), total);
		check_stream_at(0, total, s, total);            /* all at once */
		check_stream_at(0, 1, s, total);
		for (uint64_t i = 0; i < n; i += 7) {
			check_stream_at(pos[i], 1, s, total);       /* a record's first byte */
			check_stream_at(pos[i] + 1, 9000, s, total); /* from inside, across many */
			sb_record_info in;
			cr_assert_eq(sb_log_stat(L, i, &in), 0);
			cr_expect_eq(in.stream_pos, pos[i], "stream_pos of %llu",
				     (unsigned long long)i);
		}
		check_stream_at(total - 1, 100, s, total);
		check_stream_at(total, 100, s, total);          /* the end: 0 */
		check_stream_at(total + 1000, 100, s, total);
		if (!pass)
			reopen();
	}
	free(s);
}

Test(append, offset_at_maps_every_stream_byte)
{
	open_with(4096);
	const uint64_t n = 120;
	uint64_t pos[120];
	size_t total;
	cr_assert_eq(ut_append_n(L, n, 4, 1, 400), 0);
	uint8_t *s = expected_stream(n, 4, 1, 400, &total, pos);
	free(s);
	for (uint64_t i = 0; i < n; i++) {
		size_t l = ut_len(i, 4, 1, 400);
		uint64_t o = 999;
		cr_assert_eq(sb_log_offset_at(L, pos[i], &o), 0);
		cr_expect_eq(o, i, "offset_at(first byte of %llu) = %llu", (unsigned long long)i,
			     (unsigned long long)o);
		cr_assert_eq(sb_log_offset_at(L, pos[i] + l - 1, &o), 0);
		cr_expect_eq(o, i, "offset_at(last byte of %llu) = %llu", (unsigned long long)i,
			     (unsigned long long)o);
	}
	uint64_t o = 4242;
	cr_expect_eq(sb_log_offset_at(L, total, &o), -ENOENT);
	cr_expect_eq(o, 4242, "out-parameter untouched on failure");
}

Test(append, batch_is_all_or_nothing)
{
	open_with(0);
	C.max_record_bytes = 1000;
	reopen();
	cr_assert_eq(sb_log_get_config(L)->max_record_bytes, 1000);
	cr_assert_eq(ut_append_n(L, 3, 9, 10, 10), 0);
	uint8_t a[1001];
	memset(a, 'a', sizeof(a));
	sb_record_in rs[5];
	for (int i = 0; i < 5; i++)
		rs[i] = (sb_record_in){.value = a, .value_len = 100};
	rs[3].value_len = 1001;
	uint64_t first = 777;
	cr_expect_eq(sb_log_append(L, rs, 5, &first), -EFBIG);
	cr_expect_eq(first, 777, "first_offset untouched on failure");
	cr_expect_eq(sb_log_next(L), 3, "nothing of a failed batch is appended");
	cr_expect_eq(sb_log_read(L, 3, 0, a, 10, &(size_t){0}, NULL), -ENOENT);
	rs[3].value_len = 1000;
	cr_assert_eq(sb_log_append(L, rs, 5, &first), 0);
	cr_expect_eq(first, 3);
	cr_expect_eq(sb_log_next(L), 8);
	sb_record_info in;
	cr_assert_eq(sb_log_stat(L, 6, &in), 0);
	cr_expect_eq(in.value_len, 1000);
	reopen();
	cr_expect_eq(sb_log_next(L), 8);
	for (uint64_t i = 0; i < 3; i++)
		cr_expect_eq(ut_check(L, i, 10, 9), 0);
	cr_expect_gt(sb_log_batch_max(L), 1000 + SB_REC_HDR);
}

Test(append, batch_over_batch_max_is_refused_whole)
{
	open_with(0);
	C.max_record_bytes = 4000;
	reopen();
	cr_assert_eq(ut_append_n(L, 2, 9, 10, 10), 0);
	size_t max = sb_log_batch_max(L);
	cr_assert_geq(max, 4000 + SB_REC_HDR);
	size_t n = max / (4000 + SB_REC_HDR) + 2;
	uint8_t *v = calloc(1, 4000);
	sb_record_in *rs = calloc(n, sizeof(*rs));
	for (size_t i = 0; i < n; i++)
		rs[i] = (sb_record_in){.value = v, .value_len = 4000};
	int rc = sb_log_append(L, rs, n, NULL);
	cr_expect_lt(rc, 0, "a batch of %zu bytes (max %zu) accepted",
		     n * (4000 + SB_REC_HDR), max);
	cr_expect_eq(sb_log_next(L), 2, "part of a refused batch appended (%s)", sb_strerror(rc));
	/* one that fits is fine */
	size_t fit = max / (4000 + SB_REC_HDR);
	cr_expect_eq(sb_log_append(L, rs, fit, NULL), 0, "a batch of %zu records that fits", fit);
	cr_expect_eq(sb_log_next(L), 2 + fit);
	free(rs);
	free(v);
}

Test(append, efbig_leaves_the_log_unchanged)
{
	open_with(0);
	cr_assert_eq(ut_append_n(L, 5, 2, 50, 60), 0);
	sb_log_stats a, b;
	cr_assert_eq(sb_log_get_stats(L, &a), 0);
	uint32_t max = sb_log_get_config(L)->max_record_bytes;
	uint8_t *big = calloc(1, (size_t)max + 1);
	sb_record_in r = {.value = big, .value_len = max + 1};
	cr_expect_eq(sb_log_append(L, &r, 1, NULL), -EFBIG);
	cr_assert_eq(sb_log_get_stats(L, &b), 0);
	cr_expect_eq(b.next, a.next);
	cr_expect_eq(b.bytes, a.bytes);
	cr_expect_eq(b.stream_bytes, a.stream_bytes);
	cr_expect_eq(sb_log_stream_end(L), a.stream_bytes);
	r.value_len = max; /* the limit itself is allowed */
	cr_expect_eq(sb_log_append(L, &r, 1, NULL), 0);
	cr_expect_eq(sb_log_next(L), 6);
	free(big);
	reopen();
	cr_expect_eq(sb_log_next(L), 6);
	cr_expect_eq(ut_check(L, 4, ut_len(4, 2, 50, 60), 2), 0);
}

Test(append, reads_outside_the_log_are_enoent)
{
	open_with(4096);
	uint8_t buf[64];
	size_t n = 55;
	sb_record_info in;
	cr_expect_eq(sb_log_read(L, 0, 0, buf, sizeof(buf), &n, NULL), -ENOENT, "empty log");
	cr_expect_eq(n, 55);
	cr_assert_eq(ut_append_n(L, 100, 6, 100, 200), 0);
	cr_expect_eq(sb_log_read(L, 100, 0, buf, sizeof(buf), &n, NULL), -ENOENT);
	cr_expect_eq(sb_log_read(L, UINT64_MAX, 0, buf, sizeof(buf), &n, NULL), -ENOENT);
	cr_expect_eq(sb_log_stat(L, 100, &in), -ENOENT);
	cr_expect_eq(sb_log_read_key(L, 100, buf, sizeof(buf), &n), -ENOENT);
	cr_assert_eq(sb_log_delete_before(L, 50), 0);
	cr_expect_eq(sb_log_start(L), 50);
	cr_expect_eq(sb_log_read(L, 49, 0, buf, sizeof(buf), &n, NULL), -ENOENT);
	cr_expect_eq(sb_log_read(L, 0, 0, buf, sizeof(buf), &n, NULL), -ENOENT);
	cr_expect_eq(sb_log_stat(L, 10, &in), -ENOENT);
	cr_expect_eq(ut_check(L, 50, ut_len(50, 6, 100, 200), 6), 0);
	cr_expect_eq(sb_log_read_stream(L, 0, buf, 10, &n), -ENOENT, "stream below its start");
	cr_expect_eq(ut_check(L, 99, ut_len(99, 6, 100, 200), 6), 0);
}

Test(append, append_at_checks_the_offset)
{
	open_with(0);
	sb_record_in r = {.value = "abc", .value_len = 3};
	cr_expect_eq(sb_log_append_at(L, 1000, &r, 1), 0, "empty log may start anywhere ahead");
	cr_expect_eq(sb_log_start(L), 1000);
	cr_expect_eq(sb_log_next(L), 1001);
	cr_expect_eq(sb_log_append_at(L, 1000, &r, 1), -EINVAL);
	cr_expect_eq(sb_log_append_at(L, 1002, &r, 1), -EINVAL);
	cr_expect_eq(sb_log_next(L), 1001);
	cr_expect_eq(sb_log_append_at(L, 1001, &r, 1), 0);
	uint64_t got = 0;
	cr_expect_eq(sb_log_append(L, &r, 1, &got), 0);
	cr_expect_eq(got, 1002);
	reopen();
	cr_expect_eq(sb_log_start(L), 1000);
	cr_expect_eq(sb_log_next(L), 1003);
	size_t n = 0;
	char b[4];
	cr_expect_eq(sb_log_read(L, 1000, 0, b, 4, &n, NULL), 0);
	cr_expect_eq(n, 3);
	cr_expect_eq(sb_log_read(L, 999, 0, b, 4, &n, NULL), -ENOENT);
}

/* The seed's engine could not read a record until it was synced. */
static void unsynced_readable(const sb_io *io)
{
	ut_cfg(&C, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &C, io, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
	sb_log *other = NULL;
	for (uint64_t i = 0; i < 50; i++) {
		cr_assert_eq(ut_append1(L, i, 100 + i, 8, NULL), 0);
		cr_assert_eq(ut_check(L, i, 100 + i, 8), 0, "record %llu unreadable right after append",
			     (unsigned long long)i);
		cr_assert_eq(sb_store_get(S, "t", &other), 0);
		cr_assert_eq(ut_check(other, i, 100 + i, 8), 0);
	}
	uint8_t buf[200];
	size_t n = 0;
	cr_assert_eq(sb_log_read_stream(other, 0, buf, 100, &n), 0);
	cr_expect_eq(n, 100);
	cr_expect(ut_match(buf, 100, 0, 8));
}

Test(append, unsynced_records_are_readable_default_io)
{
	unsynced_readable(NULL);
}

Test(append, unsynced_records_are_readable_pwrite_io)
{
	fio *f = fio_new(env.stash);
	unsynced_readable(fio_io(f));
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	fio_free(f);
}

Test(append, append_at_after_emptying_the_log_starts_there)
{
	open_with(4096);
	cr_assert_eq(ut_append_n(L, 40, 1, 100, 200), 0);
	uint64_t send = sb_log_stream_end(L);
	cr_assert_eq(sb_log_delete_before(L, 40), 0);
	sb_record_in r = {.value = "hello", .value_len = 5};
	cr_expect_eq(sb_log_append_at(L, 39, &r, 1), -EINVAL, "below next");
	cr_assert_eq(sb_log_append_at(L, 500, &r, 1), 0, "an empty log may jump ahead");
	cr_expect_eq(sb_log_start(L), 500);
	cr_expect_eq(sb_log_next(L), 501);
	cr_expect_eq(sb_log_stream_end(L), send + 5, "the stream has no gap");
	cr_expect_eq(sb_log_stream_start(L), send);
	uint64_t got = 0;
	cr_assert_eq(sb_log_append(L, &r, 1, &got), 0);
	cr_expect_eq(got, 501);
	reopen();
	cr_expect_eq(sb_log_start(L), 500);
	cr_expect_eq(sb_log_next(L), 502, "after reopen: start %llu next %llu",
		     (unsigned long long)sb_log_start(L), (unsigned long long)sb_log_next(L));
	char b[8];
	size_t n = 0;
	cr_expect_eq(sb_log_read(L, 500, 0, b, sizeof(b), &n, NULL), 0);
	cr_expect_eq(n, 5);
	cr_expect_eq(sb_log_read(L, 499, 0, b, sizeof(b), &n, NULL), -ENOENT);
	cr_expect_eq(sb_log_stream_end(L), send + 10);
}

Test(append, keys_over_the_limit_are_refused)
{
	open_with(0);
	uint8_t *k = calloc(1, SB_KEY_MAX + 2);
	sb_record_in r = {.key = k, .key_len = SB_KEY_MAX + 1, .value = "v", .value_len = 1};
	int rc = sb_log_append(L, &r, 1, NULL);
	cr_expect_lt(rc, 0, "a key of %u bytes accepted", SB_KEY_MAX + 1);
	cr_expect_eq(sb_log_next(L), 0);
	r.key_len = SB_KEY_MAX;
	cr_expect_eq(sb_log_append(L, &r, 1, NULL), 0, "a key of SB_KEY_MAX bytes");
	size_t kl = 0;
	cr_expect_eq(sb_log_read_key(L, 0, k, SB_KEY_MAX + 2, &kl), 0);
	cr_expect_eq(kl, SB_KEY_MAX);
	free(k);
}

Test(append, empty_payloads_hold_no_stream_bytes)
{
	open_with(0);
	sb_record_in r[4] = {{.value = "ab", .value_len = 2}, {.value = "", .value_len = 0},
			     {.value = "", .value_len = 0}, {.value = "cd", .value_len = 2}};
	cr_assert_eq(sb_log_append(L, r, 4, NULL), 0);
	cr_expect_eq(sb_log_stream_end(L), 4);
	sb_record_info in;
	cr_assert_eq(sb_log_stat(L, 2, &in), 0);
	cr_expect_eq(in.stream_pos, 2);
	cr_assert_eq(sb_log_stat(L, 3, &in), 0);
	cr_expect_eq(in.stream_pos, 2);
	uint64_t o = 0;
	cr_assert_eq(sb_log_offset_at(L, 2, &o), 0);
	cr_expect_eq(o, 3, "stream byte 2 is in record 3, not in an empty one");
	char b[8];
	size_t n = 0;
	cr_assert_eq(sb_log_read_stream(L, 0, b, sizeof(b), &n), 0);
	cr_expect_eq(n, 4);
	cr_expect_eq(memcmp(b, "abcd", 4), 0);
}

Test(append, mtime_follows_appends)
{
	open_with(0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t before = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	cr_assert_eq(ut_append_n(L, 1, 1, 10, 10), 0);
	cr_expect_geq(sb_log_mtime_ns(L), before - 1000000000LL, "mtime %lld before the append %lld",
		      (long long)sb_log_mtime_ns(L), (long long)before);
}

Test(append, offsets_never_wrap_around)
{
	open_with(0);
	sb_record_in r[2] = {{.value = "a", .value_len = 1}, {.value = "b", .value_len = 1}};
	int rc = sb_log_append_at(L, UINT64_MAX, r, 1);
	cr_expect_lt(rc, 0, "a record at offset UINT64_MAX leaves no next offset");
	rc = sb_log_append_at(L, UINT64_MAX - 1, r, 2);
	cr_expect_lt(rc, 0, "a batch running past UINT64_MAX");
	cr_expect_eq(sb_log_next(L), 0, "next %llu after refused appends",
		     (unsigned long long)sb_log_next(L));
	cr_expect_eq(sb_log_start(L), 0);
	cr_assert_eq(sb_log_append(L, r, 2, NULL), 0);
	cr_expect_eq(sb_log_next(L), 2);
}

Test(append, max_offset_bounds_every_append)
{
	sb_store_options o;
	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 0, SB_SYNC_NEVER);
	o.no_flusher = 1;
	o.max_offset = 1000;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
	sb_record_in r[3] = {{.value = "a", .value_len = 1}, {.value = "b", .value_len = 1},
			     {.value = "c", .value_len = 1}};
	cr_expect_eq(sb_log_append_at(L, 1001, r, 1), -EOVERFLOW, "a start past max_offset");
	cr_assert_eq(sb_log_append_at(L, 998, r, 2), 0, "998 and 999");
	cr_expect_eq(sb_log_append(L, r, 2, NULL), -EOVERFLOW, "a batch running past max_offset");
	cr_expect_eq(sb_log_next(L), 1000);
	cr_assert_eq(sb_log_append(L, r, 1, NULL), 0, "max_offset itself");
	cr_expect_eq(sb_log_append(L, r + 2, 1, NULL), -EOVERFLOW, "nothing after max_offset");
	cr_expect_eq(sb_log_next(L), 1001);
	char buf[4];
	size_t n = 0;
	cr_assert_eq(sb_log_read_stream(L, sb_log_stream_start(L), buf, sizeof buf, &n), 0);
	cr_expect_eq(n, 3);
	cr_expect_eq(memcmp(buf, "aba", 3), 0, "only what was acknowledged is in the log");
}

Test(append, empty_batches_and_null_empty_values)
{
	open_with(0);
	uint64_t first = 77;
	int rc = sb_log_append(L, NULL, 0, &first);
	cr_expect(rc == 0 || rc == -EINVAL, "empty batch: %s", sb_strerror(rc));
	cr_expect_eq(sb_log_next(L), 0, "an empty batch appended something");
	sb_record_in r = {.key = NULL, .key_len = 0, .value = NULL, .value_len = 0};
	cr_assert_eq(sb_log_append(L, &r, 1, &first), 0, "a record with no key and no value");
	cr_expect_eq(first, 0);
	size_t n = 9;
	char b[4];
	cr_assert_eq(sb_log_read(L, 0, 0, b, sizeof(b), &n, NULL), 0);
	cr_expect_eq(n, 0);
	cr_expect_eq(sb_log_next(L), 1);
}

/*
 * A flag this version does not know is neither written nor served: an append
 * asking for one is refused, and a record on disk carrying one under a good
 * CRC (a newer writer, or damage the CRC cannot see) reads as damage, as
 * `streambus verify` reports it (found by fuzz_segment).
 */
Test(append, unknown_record_flags_are_never_written_nor_served)
{
	open_with(0);
	sb_record_in r = {.value = "hello", .value_len = 5, .flags = 0x0004};
	uint64_t first = 77;
	cr_expect_eq(sb_log_append(L, &r, 1, &first), -EINVAL);
	cr_expect_eq(first, 77);
	cr_expect_eq(sb_log_next(L), 0, "a record with an unknown flag was appended");
	r.flags = 0;
	cr_assert_eq(sb_log_append(L, &r, 1, &first), 0);

	/* give record 0 an unknown flag under a good CRC, behind the store */
	char path[4200];
	snprintf(path, sizeof(path), "%s/t/%020d.seg", env.store, 0);
	int fd = open(path, O_RDWR);
	cr_assert(fd >= 0, "open %s", path);
	uint8_t rec[SB_REC_HDR + 5];
	cr_assert_eq(pread(fd, rec, sizeof(rec), SB_SEG_HDR), (ssize_t)sizeof(rec));
	sb_put16(rec + 24, 0x0004);
	sb_put32(rec, sb_crc32c(0, rec + 4, sizeof(rec) - 4));
	cr_assert_eq(pwrite(fd, rec, sizeof(rec), SB_SEG_HDR), (ssize_t)sizeof(rec));
	close(fd);

	char b[8];
	size_t n = 0;
	sb_record_info info;
	cr_expect_eq(sb_log_read(L, 0, 0, b, sizeof(b), &n, NULL), SB_ECORRUPT);
	cr_expect_eq(sb_log_stat(L, 0, &info), SB_ECORRUPT);
	cr_expect_neq(sb_log_read_stream(L, sb_log_stream_start(L), b, sizeof(b), &n), 0,
		      "the stream served a record with an unknown flag");
}
