/*
 * test_store_integrity.c - SPEC §4: a reader never sees a damaged byte.
 *
 * A log of records of random sizes (empty ones, ~100 bytes, and some of
 * 128 KiB to 1 MiB), with and without keys, over several segments, closed
 * cleanly. Then, case after case, one byte of one record (its header, key or
 * payload) is flipped, either while the store is open (the segment is
 * mapped: a change made to the file under a running daemon) or between a
 * clean close and a (read-only) reopen, and every reading call is checked:
 *
 *   sb_log_stat, sb_log_read (at any `from`, 128 KiB and more into a large
 *   record too), sb_log_read_key, sb_log_read_stream (a cat-like scan in
 *   chunks, and reads at random positions): each returns exactly what was
 *   written or fails with SB_ECORRUPT; never a wrong byte; never ENOENT for
 *   an offset in [start, next) or a stream byte in [stream_start, end); a
 *   scan never ends short without SB_ECORRUPT; nothing of the damaged record
 *   is ever served, and a read that fails reports the damaged record's
 *   offset and segment file.
 *
 * The flip is undone after each case. SB_TEST_INTEGRITY_CASES sets the
 * number of cases (default 160).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "util_files.h"
#include "util_store.h"

#define NREC 240
#define TS0 1700000000000000000ll

typedef struct rec {
	uint64_t off, stream;   /* offset, stream pos of its payload */
	uint32_t vlen, klen;
	uint8_t *val;           /* into payloads */
	char key[16];
	int64_t ts;
	int seg;                /* index into segs */
	uint64_t pos, size;     /* in that segment file */
} rec;

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;
static rec R[NREC];
static uint8_t *stream;     /* every payload in order */
static uint64_t stream_len;
static char **segs;         /* segment file names, in order */
static int nsegs;
static char tdir[4096];
static uint64_t rng = 0x1234567887654321ull;

/* What the store reported since the last look. */
static char reports[64][512];
static int nreports;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void on_report(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	if (nreports < 64)
		snprintf(reports[nreports++], sizeof(reports[0]), "%s: %s", topic, msg);
}

static int open_store(int ro)
{
	sb_store_options o;

	sb_store_options_default(&o);
	o.defaults = C;
	o.read_only = ro;
	o.no_flusher = 1;
	o.report = on_report;
	int rc = sb_store_open(env.store, &o, &S);
	if (rc)
		S = NULL;
	return rc;
}

static uint32_t pick_len(uint64_t i)
{
	uint64_t r = below(100);

	if (i % 40 == 5)
		return (uint32_t)(128 * 1024 + below(1024 * 1024 - 128 * 1024 + 1)); /* large */
	if (r < 8)
		return 0;
	if (r < 70)
		return (uint32_t)(60 + below(80));
	return (uint32_t)below(5000);
}

/* Find every record in the segment files, as the format says. */
static void map_files(void)
{
	nsegs = uf_list_suffix(tdir, SB_SEG_SUFFIX, &segs);
	cr_assert_gt(nsegs, 2, "the log should span several segments (%d)", nsegs);
	uint64_t i = 0;
	for (int s = 0; s < nsegs; s++) {
		char path[4096];
		uint8_t *b;
		size_t len;
		cr_assert_eq(uf_read_all(uf_join(path, sizeof(path), tdir, segs[s]), &b, &len), 0);
		for (uint64_t p = SB_SEG_HDR; p < len; i++) {
			cr_assert_lt(i, NREC);
			uint32_t size = sb_get32(b + p + 4);
			cr_assert_eq(sb_get64(b + p + 8), R[i].off, "record %llu in %s", (unsigned long long)i, segs[s]);
			cr_assert_eq(size, SB_REC_HDR + R[i].klen + R[i].vlen);
			R[i].seg = s;
			R[i].pos = p;
			R[i].size = size;
			p += size;
		}
		free(b);
	}
	cr_assert_eq(i, NREC);
}

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "integrity"), 0);
	ut_cfg(&C, 2u << 20, SB_SYNC_NEVER);
	C.index_interval_bytes = 1024;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	cr_assert_eq(open_store(0), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);

	uint32_t lens[NREC];
	stream_len = 0;
	for (int i = 0; i < NREC; i++) {
		lens[i] = pick_len((uint64_t)i);
		stream_len += lens[i];
	}
	stream = malloc(stream_len ? stream_len : 1);
	cr_assert_not_null(stream);
	uint64_t at = 0;
	for (int i = 0; i < NREC; i++) {
		rec *r = &R[i];
		r->off = (uint64_t)i;
		r->vlen = lens[i];
		r->val = stream + at;
		r->stream = at;
		r->ts = TS0 + i * 1000;
		ut_fill(r->val, r->vlen, r->off, 9);
		if (i % 3)
			snprintf(r->key, sizeof(r->key), "key-%d", i);
		r->klen = (uint32_t)strlen(r->key);
		sb_record_in in = {.key = r->key, .key_len = r->klen, .value = r->val, .value_len = r->vlen,
				   .timestamp_ns = r->ts};
		uint64_t got;
		cr_assert_eq(sb_log_append(L, &in, 1, &got), 0);
		cr_assert_eq(got, r->off);
		at += r->vlen;
	}
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	map_files();
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	uf_list_free(segs, nsegs);
	free(stream);
	ut_env_fini(&env);
}

TestSuite(integrity, .init = setup, .fini = teardown, .timeout = 300);

/* The damage of one case: record `bad` (-1: none in the log now). */
typedef struct dmg {
	int rec;        /* the record flipped */
	int bad;
	const char *where;
	uint64_t at;    /* byte in its segment file */
	uint8_t mask;
} dmg;

static void flip(const dmg *d)
{
	char path[4096];

	cr_assert_eq(uf_flip_byte(uf_join(path, sizeof(path), tdir, segs[R[d->rec].seg]), (off_t)d->at, d->mask), 0);
}

/* Any failure must be SB_ECORRUPT, and the damaged record must fail. */
#define CHECK_RC(rc, touches, what, ...)                                                                     \
	do {                                                                                                 \
		cr_assert((rc) == 0 || (rc) == SB_ECORRUPT, "%s: " what ": %s (damage: record %d, %s)",      \
			  ctx, ##__VA_ARGS__, sb_strerror(rc), d->bad, d->where);                            \
		cr_assert(!(touches) || (rc) == SB_ECORRUPT,                                                 \
			  "%s: " what " read the damaged record without failing (damage: %s)", ctx,          \
			  ##__VA_ARGS__, d->where);                                                          \
	} while (0)

/* Does stream range [a, b) take a byte of the damaged record's payload? */
static int hits(const dmg *d, uint64_t a, uint64_t b)
{
	if (d->bad < 0 || !R[d->bad].vlen)
		return 0;
	return a < R[d->bad].stream + R[d->bad].vlen && R[d->bad].stream < b;
}

static void check_records(const dmg *d, const char *ctx, uint64_t start, uint64_t next, uint8_t *buf)
{
	for (uint64_t o = start; o < next; o++) {
		rec *r = &R[o];
		int touched = d->bad == (int)o;
		sb_record_info info;
		int rc = sb_log_stat(L, o, &info);
		CHECK_RC(rc, touched, "sb_log_stat(%llu)", (unsigned long long)o);
		if (!rc)
			cr_assert(info.offset == o && info.value_len == r->vlen && info.key_len == r->klen &&
					  info.timestamp_ns == r->ts && info.stream_pos == r->stream,
				  "%s: sb_log_stat(%llu) says something else (damage: %s)", ctx, (unsigned long long)o,
				  d->where);

		/* A read from anywhere, 128 KiB and more into a large record too. */
		uint64_t from = below(r->vlen + 1);
		if (r->vlen > 200 * 1024 && below(2))
			from = 128 * 1024 + below(r->vlen - 128 * 1024);
		else if (below(3) == 0)
			from = 0;
		size_t len = 1 + below(r->vlen + 64), n = 0;
		rc = sb_log_read(L, o, from, buf, len, &n, NULL);
		CHECK_RC(rc, touched, "sb_log_read(%llu, from %llu, %zu)", (unsigned long long)o,
			 (unsigned long long)from, len);
		if (!rc) {
			size_t want = from < r->vlen ? r->vlen - from : 0;
			want = want < len ? want : len;
			cr_assert(n == want && (!n || memcmp(buf, r->val + from, n) == 0),
				  "%s: sb_log_read(%llu, from %llu) served wrong bytes (damage: %s)", ctx,
				  (unsigned long long)o, (unsigned long long)from, d->where);
		}

		size_t klen = 0;
		rc = sb_log_read_key(L, o, buf, 64, &klen);
		CHECK_RC(rc, touched, "sb_log_read_key(%llu)", (unsigned long long)o);
		if (!rc)
			cr_assert(klen == r->klen && memcmp(buf, r->key, klen) == 0,
				  "%s: sb_log_read_key(%llu) served a wrong key (damage: %s)", ctx,
				  (unsigned long long)o, d->where);
	}
}

static void check_stream(const dmg *d, const char *ctx, uint8_t *buf, size_t cap)
{
	uint64_t s0 = sb_log_stream_start(L), end = sb_log_stream_end(L);
	uint64_t pos = s0;
	int rc = 0;

	/* As cat does: chunk after chunk until the end or an error. */
	while (pos < end) {
		size_t len = 1 + below(cap), n = 0;
		rc = sb_log_read_stream(L, pos, buf, len, &n);
		CHECK_RC(rc, 0, "stream read at %llu", (unsigned long long)pos);
		if (rc)
			break;
		cr_assert_gt(n, 0, "%s: the stream read at %llu gave nothing before its end %llu (damage: %s)", ctx,
			     (unsigned long long)pos, (unsigned long long)end, d->where);
		cr_assert(memcmp(buf, stream + pos, n) == 0, "%s: stream bytes at %llu+%zu are wrong (damage: %s)",
			  ctx, (unsigned long long)pos, n, d->where);
		cr_assert(!hits(d, pos, pos + n), "%s: stream read at %llu+%zu served the damaged record (%s)", ctx,
			  (unsigned long long)pos, n, d->where);
		pos += n;
	}
	if (hits(d, s0, end))
		cr_assert_eq(rc, SB_ECORRUPT, "%s: a scan of the stream did not fail at the damage (%s)", ctx,
			     d->where);

	/* Reads at random positions. */
	for (int k = 0; k < 16 && end > s0; k++) {
		uint64_t p = s0 + below(end - s0);
		size_t len = 1 + below(k & 1 ? 300 : cap), n = 0;
		rc = sb_log_read_stream(L, p, buf, len, &n);
		CHECK_RC(rc, 0, "stream read at %llu+%zu", (unsigned long long)p, len);
		if (rc)
			continue;
		cr_assert_gt(n, 0, "%s: stream read at %llu before the end gave nothing", ctx, (unsigned long long)p);
		cr_assert(memcmp(buf, stream + p, n) == 0 && !hits(d, p, p + n),
			  "%s: stream read at %llu+%zu served wrong bytes (damage: %s)", ctx, (unsigned long long)p,
			  n, d->where);
	}
}

/* Every damage report names the record's offset and its segment file. */
static void check_reports(const dmg *d, const char *ctx)
{
	char want[128];

	if (d->bad < 0)
		return;
	snprintf(want, sizeof(want), "offset %llu in %s", (unsigned long long)R[d->bad].off, segs[R[d->bad].seg]);
	for (int i = 0; i < nreports; i++)
		if (strstr(reports[i], "damaged record"))
			cr_assert(strncmp(reports[i], "t: ", 3) == 0 && strstr(reports[i], want),
				  "%s: report [%s] should name topic t and [%s]", ctx, reports[i], want);
}

static int count_damage_reports(void)
{
	int n = 0;
	for (int i = 0; i < nreports; i++)
		n += strstr(reports[i], "damaged record") != NULL;
	return n;
}

/* Pick one byte of a random record: header, key or payload. */
static dmg pick(void)
{
	dmg d;

	d.rec = d.bad = (int)below(NREC);
	rec *r = &R[d.rec];
	int part = (int)below(3);
	if (part == 1 && !r->klen)
		part = 2;
	if (part == 2 && !r->vlen)
		part = 0;
	if (part == 0) {
		d.at = r->pos + below(SB_REC_HDR);
		d.where = "header";
	} else if (part == 1) {
		d.at = r->pos + SB_REC_HDR + below(r->klen);
		d.where = "key";
	} else {
		d.at = r->pos + SB_REC_HDR + r->klen + below(r->vlen);
		d.where = "payload";
	}
	d.mask = (uint8_t)(below(2) ? 1u << below(8) : 1 + below(255));
	return d;
}

Test(integrity, random_damage_never_served)
{
	const char *env_cases = getenv("SB_TEST_INTEGRITY_CASES");
	int cases = env_cases ? atoi(env_cases) : 160;
	size_t cap = 300 * 1024;
	uint8_t *buf = malloc(1u << 21);
	uint8_t reported[NREC] = {0};
	int failed_reads = 0, refused = 0, cut = 0;
	char ctx[160];

	cr_assert_not_null(buf);
	cr_assert_eq(open_store(0), 0);
	cr_assert_eq(sb_store_get(S, "t", &L), 0);

	/* First, undamaged: everything reads back. */
	dmg none = {.rec = -1, .bad = -1, .where = "none"};
	nreports = 0;
	check_records(&none, "undamaged", sb_log_start(L), sb_log_next(L), buf);
	check_stream(&none, "undamaged", buf, cap);
	cr_assert_eq(sb_log_next(L), NREC);

	for (int c = 0; c < cases; c++) {
		dmg d = pick();
		rec *r = &R[d.rec];
		int reopen = below(4) == 0;
		snprintf(ctx, sizeof(ctx), "case %d (%s, byte %llu of record %d in %s, %u bytes, mask %#x)", c,
			 reopen ? "flipped while closed" : "flipped while open",
			 (unsigned long long)(d.at - r->pos), d.bad, segs[r->seg], r->vlen, d.mask);
		int usable = 1;
		if (reopen) {
			cr_assert_eq(sb_store_close(S), 0);
			S = NULL;
			flip(&d);
			memset(reported, 0, sizeof(reported));
			nreports = 0;
			int rc = open_store(1);
			if (rc == 0)
				rc = sb_store_get(S, "t", &L);
			/* Refusing the topic is honest too (damage found at open). */
			cr_assert(rc == 0 || rc == SB_ECORRUPT, "%s: reopen: %s", ctx, sb_strerror(rc));
			if (rc) {
				refused++;
				usable = 0;
			} else {
				cr_assert_eq(sb_log_start(L), 0);
				if (sb_log_next(L) <= r->off) {
					cut++;
					d.bad = -1; /* recovery ended the log before it */
				} else if (count_damage_reports()) {
					reported[d.bad] = 1; /* the open met it already */
				}
			}
		} else {
			flip(&d);
			nreports = 0;
		}
		if (usable) {
			int before = count_damage_reports();
			check_records(&d, ctx, sb_log_start(L), sb_log_next(L), buf);
			check_stream(&d, ctx, buf, cap);
			check_reports(&d, ctx);
			if (d.bad >= 0) {
				failed_reads++;
				/* Reported once per store (a repeat is not reported again). */
				if (!reported[d.bad])
					cr_assert_gt(count_damage_reports(), before, "%s: the damage was not reported", ctx);
				reported[d.bad] = 1;
			}
		}
		if (reopen) {
			if (S)
				cr_assert_eq(sb_store_close(S), 0);
			S = NULL;
			flip(&d); /* undo */
			memset(reported, 0, sizeof(reported));
			cr_assert_eq(open_store(0), 0);
			cr_assert_eq(sb_store_get(S, "t", &L), 0);
		} else {
			flip(&d); /* undo */
		}
	}
	/* Whole again. */
	check_records(&none, "after", sb_log_start(L), sb_log_next(L), buf);
	check_stream(&none, "after", buf, cap);
	cr_assert_eq(sb_log_next(L), NREC);
	cr_log_info("%d cases: %d read the damage, %d refused at reopen, %d cut at reopen", cases, failed_reads,
		    refused, cut);
	free(buf);
}
