/*
 * test_store_tix_verify.c - `streambus verify` checks each segment's time
 * index (.tix) against the segment's records, and `streambus recover`
 * rebuilds one that does not hold (store/verify_tix.c, segment_open.c,
 * segment_tix.c).
 *
 * A store with two topics of non-monotonic timestamps: "p" (plain sealed
 * segments) and "z" (sealed segments compressed). Each case damages one
 * random .tix file: random bit flips, a truncation, bytes appended, or a
 * change that keeps the file's CRCs right (an entry's time or offset, an
 * entry dropped or repeated, the largest time, the open interval, the
 * covered length) so that only the records can show it. Then:
 *   - verify reports no damage (a time index is derived data: notes only);
 *   - a time index verify passes gives right answers to seeks by time (a
 *     read-only open uses the files as they are): what verify misses is not
 *     wrong; flips, truncations and appended bytes are always reported;
 *   - recover (full check) then verify: no problem at all, and seeks right.
 * SB_TEST_TIX_CASES: number of cases (default 60); SB_TEST_TIX_SEED.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "timeindex.h"
#include "util_files.h"
#include "util_store.h"
#include "verify.h"

#define N 1500
#define SEED 11

UT_ENV_FIXTURE("tixv")
static int64_t ts_of[N];
static sb_log_config C;

TestSuite(tixverify, .init = ut_env_setup, .fini = ut_env_teardown);

/* Record i's time: seconds that mostly grow, now and then step back. */
static int64_t ts_at(uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
	int64_t jitter = (int64_t)((x >> 40) % 61) - 30;

	return (int64_t)1000000000000000000ll + ((int64_t)i * 10 + (i % 7 == 3 ? jitter * 10 : 0)) * 1000000000ll;
}

/* The real system calls without syncs: what this test checks does not
 * depend on them, and a busy disk makes them slow. */
static int no_sync(void *ctx, int fd)
{
	(void)ctx;
	(void)fd;
	return 0;
}

static sb_io nosync;

static void make_store(void)
{
	sb_store *s;

	nosync = *sb_io_default();
	nosync.fdatasync = no_sync;
	ut_cfg(&C, 8192, SB_SYNC_NEVER);
	C.index_interval_bytes = 256;
	cr_assert_eq(ut_open(env.store, &C, &nosync, &s), 0);
	for (int t = 0; t < 2; t++) {
		sb_log *l = ut_topic(s, t ? "z" : "p");
		cr_assert_not_null(l);
		for (uint64_t i = 0; i < N; i++) {
			uint8_t v[64];
			size_t len = ut_len(i, SEED, 8, sizeof v);
			ut_fill(v, len, i, SEED);
			ts_of[i] = ts_at(i);
			sb_record_in r = {.value = v, .value_len = (uint32_t)len, .timestamp_ns = ts_of[i]};
			cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
		}
		cr_assert_eq(sb_log_sync(l), 0);
		if (t) {
			size_t done = 0;
			cr_assert_eq(sb_log_compress(l, &done), 0); /* lz4 */
			cr_assert_gt(done, 3);
		}
	}
	cr_assert_eq(sb_store_close(s), 0);
}

typedef struct vseen {
	int tix_notes;   /* problems of .tix files */
	int other;       /* anything else */
	char first[600];
} vseen;

static void on_problem(void *arg, const sb_verify_problem *p)
{
	vseen *v = arg;
	size_t l = strlen(p->path);

	if (p->kind == SB_VERIFY_INDEX && l > 4 && !strcmp(p->path + l - 4, ".tix"))
		v->tix_notes++;
	else
		v->other++;
	if (!v->first[0])
		snprintf(v->first, sizeof(v->first), "%s: %s", p->path, p->msg);
}

static vseen verify_all(void)
{
	vseen v = {0};
	sb_verify_result r;
	char d[4096];

	for (int t = 0; t < 2; t++)
		cr_assert_eq(sb_verify_topic(ut_topic_path(&env, t ? "z" : "p", NULL, d, sizeof d), on_problem, NULL,
					     &v, &r), 0);
	return v;
}

/* Seeks by time through a read-only open (the files as they are) against
 * a scan of the times; 0 if all right, else the first wrong time. */
static int64_t seeks_wrong(uint64_t seed)
{
	sb_store *s;
	int64_t wrong = 0;

	cr_assert_eq(ut_open_ro(env.store, &C, &s), 0);
	for (int t = 0; t < 2 && !wrong; t++) {
		sb_log *l;
		cr_assert_eq(sb_store_get(s, t ? "z" : "p", &l), 0);
		for (int k = 0; k < 300 && !wrong; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			int64_t want_ts = ts_of[0] - 5000000000ll + (int64_t)((seed >> 20) % ((uint64_t)N * 10 + 400)) * 1000000000ll;
			uint64_t want = N, got = UINT64_MAX;
			for (uint64_t i = 0; i < N; i++)
				if (ts_of[i] >= want_ts) {
					want = i;
					break;
				}
			if (sb_log_seek_time(l, want_ts, &got) || got != want)
				wrong = want_ts;
		}
	}
	cr_assert_eq(sb_store_close(s), 0);
	return wrong;
}

/* The names of the .tix files of both topics. */
static int list_tix(char paths[][4200], int cap)
{
	int n = 0;

	for (int t = 0; t < 2; t++) {
		char d[4096], **names;
		ut_topic_path(&env, t ? "z" : "p", NULL, d, sizeof d);
		int k = uf_list_suffix(d, ".tix", &names);
		cr_assert_geq(k, 0);
		for (int i = 0; i < k && n < cap; i++)
			snprintf(paths[n++], 4200, "%s/%s", d, names[i]);
		uf_list_free(names, k);
	}
	return n;
}

/* Change the time index in b (len bytes; its CRCs made right after):
 * kind k. Returns the new length. */
static size_t semantic(uint8_t *b, size_t len, uint64_t r, int k)
{
	uint32_t n = sb_get32(b + SB_TIX_AT_COUNT);
	uint8_t *e = b + SB_TIX_HDR + (n ? (r >> 8) % n : 0) * SB_TIX_ENTRY;
	int64_t d = (int64_t)((r >> 32) % 40) - 20;

	d = d ? d : 1;
	switch (n ? k : 4 + k % 3) {
	case 0: /* an entry's time */
		sb_put64(e + SB_TE_AT_TS, (uint64_t)((int64_t)sb_get64(e + SB_TE_AT_TS) + d * 1000000000ll));
		break;
	case 1: /* an entry's record */
		sb_put32(e + SB_TE_AT_REL, (uint32_t)((int64_t)sb_get32(e + SB_TE_AT_REL) + d));
		break;
	case 2: /* an entry dropped */
		memmove(e, e + SB_TIX_ENTRY, len - (size_t)(e + SB_TIX_ENTRY - b));
		len -= SB_TIX_ENTRY;
		sb_put32(b + SB_TIX_AT_COUNT, n - 1);
		break;
	case 3: /* an entry repeated */
		memmove(e + SB_TIX_ENTRY, e, len - (size_t)(e - b));
		len += SB_TIX_ENTRY;
		sb_put32(b + SB_TIX_AT_COUNT, n + 1);
		break;
	case 4: /* the largest time */
		sb_put64(b + SB_TIX_AT_MAX_TS, (uint64_t)((int64_t)sb_get64(b + SB_TIX_AT_MAX_TS) + d));
		break;
	case 5: /* the open interval */
		sb_put32(b + SB_TIX_AT_OPEN, (uint32_t)((int64_t)sb_get32(b + SB_TIX_AT_OPEN) + d));
		break;
	default: /* the covered length */
		sb_put32(b + SB_TIX_AT_SEG_LEN, (uint32_t)((int64_t)sb_get32(b + SB_TIX_AT_SEG_LEN) + d));
		break;
	}
	sb_put32(b + SB_TIX_AT_ECRC, sb_crc32c(0, b + SB_TIX_HDR, len - SB_TIX_HDR));
	sb_put32(b + SB_TIX_AT_CRC, sb_crc32c(0, b, SB_TIX_AT_CRC));
	return len;
}

Test(tixverify, damaged_time_indexes_are_noted_and_rebuilt)
{
	const char *ec = getenv("SB_TEST_TIX_CASES"), *es = getenv("SB_TEST_TIX_SEED");
	int cases = ec ? atoi(ec) : 60, raw_cases = 0, noted = 0, sem_cases = 0;
	uint64_t seed = es ? strtoull(es, NULL, 0) : 20261130;
	char pristine[4096 + 16];
	static char paths[256][4200];

	make_store();
	{ /* as written: clean, seeks right */
		vseen v = verify_all();
		cr_assert_eq(v.tix_notes + v.other, 0, "fresh store: %s", v.first);
		cr_assert_eq(seeks_wrong(seed), 0);
	}
	snprintf(pristine, sizeof pristine, "%s.orig", env.store);
	cr_assert_eq(uf_copy_tree(env.store, pristine), 0, "%s", pristine);
	for (int c = 0; c < cases; c++) {
		uint64_t r = (seed + (uint64_t)c) * 0x2545f4914f6cdd1dull + 12345;
		cr_assert_eq(uf_rmrf(env.store), 0);
		cr_assert_eq(uf_copy_tree(pristine, env.store), 0, "%s", env.store);
		int nt = list_tix(paths, 256);
		cr_assert_gt(nt, 10);
		const char *path = paths[(r >> 5) % (uint64_t)nt];
		uint8_t *b;
		size_t len;
		cr_assert_eq(uf_read_all(path, &b, &len), 0);
		uint8_t *nb = malloc(len + 2 * SB_TIX_ENTRY + 64);
		memcpy(nb, b, len);
		free(b);
		int kind = (int)((r >> 13) % 10), raw = kind < 3;
		if (kind == 0) { /* 1..3 bit flips */
			for (int f = 0; f < 1 + (int)((r >> 17) % 3); f++)
				nb[(r >> (20 + f * 7)) % len] ^= (uint8_t)(1u << ((r >> (40 + f * 3)) % 8));
		} else if (kind == 1) { /* truncated */
			len = (size_t)((r >> 20) % len);
		} else if (kind == 2) { /* bytes appended */
			size_t add = 1 + (size_t)((r >> 20) % 40);
			for (size_t i = 0; i < add; i++)
				nb[len + i] = (uint8_t)(r >> (i % 56));
			len += add;
		} else {
			len = semantic(nb, len, r, kind - 3);
		}
		cr_assert_eq(uf_write_file(path, nb, len), 0, "%s", path);
		free(nb);
		raw_cases += raw;
		sem_cases += !raw;

		vseen v = verify_all();
		cr_assert_eq(v.other, 0, "case %d (kind %d, %s): not a time index note: %s", c, kind, path, v.first);
		cr_assert(!raw || v.tix_notes > 0, "case %d (kind %d, %s): damage not noted", c, kind, path);
		noted += v.tix_notes > 0;
		if (!v.tix_notes) /* passed verify: then it must be right */
			cr_assert_eq(seeks_wrong(r), 0, "case %d (kind %d, %s): verify passed a time index that seeks wrong",
				     c, kind, path);

		/* recover: a full check rebuilds it */
		sb_store_options o;
		sb_store *s;
		sb_store_options_default(&o);
		o.io = &nosync;
		o.defaults = C;
		o.no_flusher = 1;
		o.full_check = 1;
		cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
		cr_assert_eq(sb_store_close(s), 0);
		v = verify_all();
		cr_assert_eq(v.tix_notes + v.other, 0, "case %d (kind %d, %s): after recover: %s", c, kind, path,
			     v.first);
		cr_assert_eq(seeks_wrong(r ^ 0x5555), 0, "case %d (kind %d): seeks after recover", c, kind);
	}
	fprintf(stderr, "tixverify: %d cases (%d flips/cuts/appends, %d CRC-kept changes), %d noted\n", cases,
		raw_cases, sem_cases, noted);
	cr_assert_geq(noted, raw_cases + sem_cases * 3 / 5, "verify noted %d of %d", noted, cases);
	cr_assert_eq(uf_rmrf(pristine), 0);
}

static void count_rebuilt(void *arg, const char *topic, const char *msg)
{
	(void)topic;
	if (strstr(msg, "time index rebuilt"))
		(*(int *)arg)++;
}

/*
 * Compacted segments (format.h "Compacted segment"): offsets with gaps, and
 * a segment's first offset may be gone, so its time index's first entry is
 * at its first record, not at rel 0. verify notes nothing, and a full
 * check (recover) keeps every time index as written.
 */
Test(tixverify, compacted_segments_pass)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	sb_compact_stats st;
	int rebuilt = 0;

	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.cleanup = SB_CLEANUP_COMPACT;
	c.index_interval_bytes = 256;
	nosync = *sb_io_default();
	nosync.fdatasync = no_sync;
	cr_assert_eq(ut_open(env.store, &c, &nosync, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "p"));
	cr_assert_not_null(ut_topic(s, "z")); /* verify_all's other topic: empty */
	for (uint64_t i = 0; i < N; i++) {
		char key[8], v[40];
		int kl = snprintf(key, sizeof key, "k%u", (unsigned)(i * 7 % 13));
		int vl = snprintf(v, sizeof v, "value %llu", (unsigned long long)i);
		sb_record_in r = {.key = key, .key_len = (uint32_t)kl, .value = v, .value_len = (uint32_t)vl,
				  .timestamp_ns = ts_at(i)};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, ts_at(N) + 1000000000000ll, &st), 0);
	cr_assert_gt(st.segments, 3);
	cr_assert_lt(st.records_out, st.records_in / 4);
	cr_assert_eq(sb_store_close(s), 0);
	vseen v = verify_all();
	cr_assert_eq(v.tix_notes + v.other, 0, "compacted: %s", v.first);

	sb_store_options o;
	sb_store_options_default(&o);
	o.io = &nosync;
	o.defaults = c;
	o.no_flusher = 1;
	o.full_check = 1;
	o.report = count_rebuilt;
	o.report_arg = &rebuilt;
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(rebuilt, 0, "a full check rebuilt %d time indexes of compacted segments", rebuilt);
	v = verify_all();
	cr_assert_eq(v.tix_notes + v.other, 0, "after a full check: %s", v.first);
}

/* The store's own check (timeindex.h, what a full-check open keeps a time
 * index by) takes the first entry at the first record, wherever that is: a
 * time index fed from a first record at rel 5 holds for those records, and
 * not for the same records with one more in front. */
Test(tixverify, store_check_takes_the_first_record_where_it_is)
{
	sb_tindex *t;
	sb_tindex_check c;
	const uint32_t first = 5;

	cr_assert_eq(sb_tindex_new(64, &t), 0);
	for (uint32_t rel = first, k = 0; k < 40; rel += 1 + k % 3, k++)
		cr_assert_eq(sb_tindex_feed(t, rel, ts_at(k), k % 4 == 0), 0);
	cr_assert_gt(sb_tindex_count(t), 3);
	for (int front = 0; front < 2; front++) {
		sb_tindex_check_begin(&c, t);
		if (front)
			sb_tindex_check_record(&c, 0, ts_at(0) - 1);
		uint32_t last = 0;
		for (uint32_t rel = first, k = 0; k < 40; rel += 1 + k % 3, k++)
			sb_tindex_check_record(&c, last = rel, ts_at(k));
		cr_assert_eq(sb_tindex_check_end(&c, last + 1), !front, "a record in front: %d", front);
	}
	sb_tindex_free(t);
}
