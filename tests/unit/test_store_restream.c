/*
 * test_store_restream.c - the stream positions the open derives next to a
 * compacted segment (log_recover.c, restream). A compacted segment's
 * position is derived from the next segment's; a next segment whose base
 * position is below the compacted one's payload bytes (a header whose
 * stream field was damaged and its CRC made right; no valid log has it)
 * left the log's stream starting past its end: `fuzz_segment` found it in
 * a clean-clone run (2026-12-03, "stream start > end"). Generated cases:
 * a compacted segment (records with gaps inside its span) then a plain
 * one whose base position is below, at or above where the compacted one
 * ends, opened plain, with repair, read-only and with full_check; every
 * record served must sit in the stream in offset order, the stream
 * holding exactly their payloads, and `.log`'s bytes be those payloads.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("restream")

TestSuite(restream, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 120);

#define NREC 12
#define MAXV 200

typedef struct seg_img {
	uint8_t b[SB_SEG_HDR + NREC * (SB_REC_HDR + MAXV)];
	size_t len, payload;
} seg_img;

/* A segment at base with base stream position `stream`, span `span` (0:
 * plain), records at base + the offsets in `at` (n of them), values of
 * random lengths filled by ut_fill. */
static void seg_make(seg_img *s, uint64_t base, uint64_t stream, uint32_t span, const uint64_t *at, size_t n,
		     uint64_t *rng)
{
	sb_seg_hdr h = {.base_offset = base, .base_stream = stream, .span = span};
	uint8_t val[MAXV];

	sb_seg_hdr_encode(s->b, &h);
	s->len = SB_SEG_HDR;
	s->payload = 0;
	for (size_t i = 0; i < n; i++) {
		sb_record_in r = {.value = val, .value_len = (uint32_t)(ut_rnd(rng) % MAXV)};
		ut_fill(val, r.value_len, base + at[i], 9);
		s->len += sb_rec_encode(s->b + s->len, base + at[i], 1000, &r);
		s->payload += r.value_len;
	}
}

static void seg_write(const char *tdir, uint64_t base, const seg_img *s)
{
	char name[32], p[4200];

	sb_seg_name(name, base, SB_SEG_SUFFIX);
	cr_assert_eq(uf_write_file(uf_join(p, sizeof(p), tdir, name), s->b, s->len), 0);
}

/* The positions hold together, and the stream is the records' payloads. */
static void check(sb_log *l, const char *when)
{
	uint64_t start = sb_log_start(l), next = sb_log_next(l);
	uint64_t ss = sb_log_stream_start(l), se = sb_log_stream_end(l), prev_end = ss;
	static uint8_t want[2 * NREC * MAXV], got[2 * NREC * MAXV];
	size_t total = 0, n;
	sb_record_info info;

	cr_assert_leq(ss, se, "%s: stream start %llu > stream end %llu", when, (unsigned long long)ss,
		      (unsigned long long)se);
	for (uint64_t o = start; o < next; o++) {
		if (sb_log_read(l, o, 0, want + total, sizeof(want) - total, &n, &info))
			continue; /* in a gap */
		cr_assert_eq(info.stream_pos, prev_end, "%s: record %llu at stream %llu, after %llu", when,
			     (unsigned long long)o, (unsigned long long)info.stream_pos,
			     (unsigned long long)prev_end);
		prev_end += n;
		total += n;
	}
	cr_assert_eq(se - ss, total, "%s: the stream holds %llu bytes, its records %zu", when,
		     (unsigned long long)(se - ss), total);
	cr_assert_eq(sb_log_read_stream(l, ss, got, sizeof(got), &n), 0, "%s: stream read", when);
	cr_assert_eq(n, total, "%s: stream read %zu bytes of %zu", when, n, total);
	cr_assert_eq(memcmp(got, want, total), 0, "%s: the stream is not the records' payloads", when);
}

Test(restream, a_segment_positioned_below_a_compacted_one_keeps_the_stream_whole)
{
	uint64_t rng = 0x5eed;
	int served = 0, below = 0;
	char tdir[4200];

	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	for (int c = 0; c < 96; c++) {
		seg_img s1, s2;
		uint64_t at[NREC], base = 1000, n1 = 0;
		uint32_t span = NREC + 4;
		for (uint64_t o = 0; o < span && n1 < NREC; o++)
			if (o == 0 || ut_rnd(&rng) % 3) /* gaps: compacted away */
				at[n1++] = o;
		seg_make(&s1, base, 5000 + ut_rnd(&rng) % 1000, span, at, n1, &rng);
		for (uint64_t i = 0; i < NREC; i++)
			at[i] = i;
		/* below the compacted one's bytes, or anywhere up to past its end */
		int low = c % 2 == 0;
		uint64_t st = low ? ut_rnd(&rng) % (s1.payload ? s1.payload : 1) : s1.payload + ut_rnd(&rng) % 9000;
		below += st < s1.payload;
		seg_make(&s2, base + span, st, 0, at, 1 + ut_rnd(&rng) % NREC, &rng);
		uf_rmrf(env.store);
		cr_assert_eq(mkdir(env.store, 0755), 0);
		cr_assert_eq(mkdir(tdir, 0755), 0);
		seg_write(tdir, base, &s1);
		seg_write(tdir, base + span, &s2);

		sb_store_options o;
		sb_store *s;
		sb_log *l;
		int mode = (c / 2) % 4;
		char when[128];
		snprintf(when, sizeof(when), "case %d (mode %d, second segment's stream %llu, first's payload %zu)", c,
			 mode, (unsigned long long)st, s1.payload);
		sb_store_options_default(&o);
		ut_cfg(&o.defaults, 0, SB_SYNC_NEVER);
		o.defaults.cleanup = SB_CLEANUP_COMPACT;
		o.no_flusher = 1;
		o.repair = mode == 1 || mode == 3;
		o.full_check = mode == 3;
		o.read_only = mode == 2;
		cr_assert_eq(sb_store_open(env.store, &o, &s), 0, "%s", when);
		if (sb_store_get(s, "t", &l) == 0) {
			served++;
			check(l, when);
		}
		cr_assert_eq(sb_store_close(s), 0, "%s", when);
	}
	cr_expect_gt(below, 40, "cases with the second segment below the first's bytes");
	cr_expect_gt(served, 80, "topics served: %d of 96", served);
}
