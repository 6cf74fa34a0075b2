/*
 * test_store_rec_headers.c - record headers (format version 3): records
 * carry zero or more (name, bytes) headers. Generated records with binary
 * values, empty values and many headers round-trip through appends, reopens
 * (clean, after a crash, read-only) and verify; bad headers are refused with
 * a clean error and append nothing; random damage inside header blocks is
 * detected and never served; version 2 segments stay readable, get no
 * headers (a record with headers rolls to, or upgrades to, version 3) and
 * keep rejecting the flag bit v3 defines.
 *
 * SB_TEST_HDR_DAMAGE (default 60): how many damaged bytes to try.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "util_disk.h"
#include "util_files.h"
#include "util_store.h"

#define NREC 300
#define SEED 5

UT_ENV_FIXTURE("rhdr")

/* ---- the generated headers of record `off` ------------------------------ */

typedef struct gen_hdrs {
	sb_header h[SB_HEADERS_MAX_COUNT];
	char names[SB_HEADERS_MAX_COUNT][16];
	uint8_t *vals;           /* all values, back to back */
	size_t n;
} gen_hdrs;

/* Record off's headers: none for most, a few with binary (NUL-holding)
 * values, empty values, and now and then very many. */
static void gen(gen_hdrs *g, uint64_t off)
{
	uint64_t r = ut_mix(off * 7919 + SEED);
	size_t n = r % 4 == 0 ? 0 : r % 4 == 1 ? 1 : (r >> 8) % 6 + 1, at = 0;

	if (off % 97 == 13)
		n = SB_HEADERS_MAX_COUNT; /* many */
	g->n = n;
	for (size_t i = 0; i < n; i++) {
		uint64_t q = ut_mix(r + i);
		size_t vlen = n > 10 ? q % 3 : q % 5 == 0 ? 0 : q % 300;
		int nl = snprintf(g->names[i], sizeof g->names[i], "h%zu-%c", i, 'a' + (int)(q % 26));
		for (size_t j = 0; j < vlen; j++)
			g->vals[at + j] = (uint8_t)(ut_mix(q + j) & (j % 3 ? 0xff : 0x00)); /* NULs among them */
		g->h[i] = (sb_header){.name = g->names[i], .name_len = (uint32_t)nl, .value = g->vals + at,
				      .value_len = (uint32_t)vlen};
		at += vlen;
	}
}

static gen_hdrs *gen_new(void)
{
	gen_hdrs *g = calloc(1, sizeof *g);
	cr_assert_not_null(g);
	g->vals = malloc(SB_HEADERS_MAX_COUNT * 300);
	cr_assert_not_null(g->vals);
	return g;
}

static void gen_free(gen_hdrs *g)
{
	free(g->vals);
	free(g);
}

static int append_gen(sb_log *l, gen_hdrs *g, uint64_t off)
{
	uint8_t val[300];
	size_t len = ut_len(off, SEED, 0, sizeof val);
	char key[32];
	int kl = snprintf(key, sizeof key, "k%llu", (unsigned long long)off);
	uint64_t got;

	gen(g, off);
	ut_fill(val, len, off, SEED);
	sb_record_in in = {.key = key, .key_len = off % 3 ? (uint32_t)kl : 0, .value = val,
			   .value_len = (uint32_t)len, .headers = g->h, .n_headers = (uint32_t)g->n};
	int rc = sb_log_append(l, &in, 1, &got);
	if (!rc && got != off)
		return -1;
	return rc;
}

/* Record off reads back whole: payload, key, headers (and its info). */
static void check_record(sb_log *l, gen_hdrs *g, uint64_t off, uint8_t *buf, size_t cap)
{
	sb_record_info info;
	size_t len, pos = 0, i = 0;
	sb_header h;
	int r;

	gen(g, off);
	cr_assert_eq(ut_check(l, off, ut_len(off, SEED, 0, 300), SEED), 0, "payload of %llu",
		     (unsigned long long)off);
	cr_assert_eq(sb_log_stat(l, off, &info), 0);
	cr_assert_eq(sb_log_read_headers(l, off, buf, cap, &len), 0, "headers of %llu", (unsigned long long)off);
	cr_assert_eq(info.headers_len, len);
	cr_assert_eq(len == 0, g->n == 0, "record %llu: %zu header bytes for %zu headers",
		     (unsigned long long)off, len, g->n);
	while ((r = sb_headers_next(buf, len, &pos, &h)) == 1) {
		cr_assert_lt(i, g->n);
		cr_assert(h.name_len == g->h[i].name_len && !memcmp(h.name, g->h[i].name, h.name_len),
			  "record %llu header %zu: name", (unsigned long long)off, i);
		cr_assert(h.value_len == g->h[i].value_len && !memcmp(h.value, g->h[i].value, h.value_len),
			  "record %llu header %zu (%.*s): value", (unsigned long long)off, i, (int)h.name_len,
			  h.name);
		i++;
	}
	cr_assert_eq(r, 0);
	cr_assert_eq(i, g->n, "record %llu: %zu headers read, %zu written", (unsigned long long)off, i, g->n);
}

static void check_all(sb_log *l, uint64_t n)
{
	gen_hdrs *g = gen_new();
	uint8_t *buf = malloc(SB_HEADERS_MAX_BYTES);
	uint64_t spos = 0;

	cr_assert_not_null(buf);
	for (uint64_t o = 0; o < n; o++)
		check_record(l, g, o, buf, SB_HEADERS_MAX_BYTES);
	/* The stream is the payloads alone: headers are not in it. */
	for (uint64_t o = 0; o < n; o++) {
		size_t len = ut_len(o, SEED, 0, 300), got;
		uint8_t want[300], have[300];
		ut_fill(want, len, o, SEED);
		cr_assert_eq(sb_log_read_stream(l, spos, have, len, &got), 0);
		cr_assert(got == len && !memcmp(want, have, len), "stream at record %llu", (unsigned long long)o);
		spos += len;
	}
	cr_assert_eq(sb_log_stream_end(l), spos);
	free(buf);
	gen_free(g);
}

static uint64_t verify_damage(const char *topic)
{
	char dir[4400];
	sb_verify_result r;

	snprintf(dir, sizeof dir, "%s/%s", env.store, topic);
	cr_assert_eq(sb_verify_topic(dir, NULL, NULL, NULL, &r), 0);
	return sb_verify_damage(&r);
}

TestSuite(rec_headers, .init = ut_env_setup, .fini = ut_env_teardown);

static void fill_topic(const char *topic, uint64_t n)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	gen_hdrs *g = gen_new();

	ut_cfg(&c, 16384, SB_SYNC_NEVER);
	c.index_interval_bytes = 1024;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, topic));
	for (uint64_t o = 0; o < n; o++)
		cr_assert_eq(append_gen(l, g, o), 0, "append %llu", (unsigned long long)o);
	check_all(l, n);
	cr_assert_eq(sb_store_close(s), 0);
	gen_free(g);
}

Test(rec_headers, round_trip)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	char path[8800];

	fill_topic("t", NREC);
	cr_assert_eq(verify_damage("t"), 0);
	ut_cfg(&c, 16384, SB_SYNC_NEVER);
	/* after a clean close */
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	check_all(l, NREC);
	cr_assert_eq(sb_store_close(s), 0);
	/* as after a crash: no clean marker, no index files (rebuilt by a scan) */
	cr_assert_eq(uf_remove(ut_topic_path(&env, "t", "clean", path, sizeof path)), 0);
	snprintf(path, sizeof path, "%s/t", env.store);
	cr_assert_gt(uf_remove_suffix(path, ".idx"), 0);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	check_all(l, NREC);
	cr_assert_eq(sb_store_close(s), 0);
	/* read-only */
	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	check_all(l, NREC);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(verify_damage("t"), 0);
}

Test(rec_headers, short_buffer_and_no_headers)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	uint8_t buf[8];
	size_t len = 99;
	sb_header h = {.name = "n", .name_len = 1, .value = "0123456789", .value_len = 10};
	sb_record_in plain = {.value = "x", .value_len = 1};
	sb_record_in with = {.value = "y", .value_len = 1, .headers = &h, .n_headers = 1};

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	cr_assert_eq(sb_log_append(l, &plain, 1, NULL), 0);
	cr_assert_eq(sb_log_append(l, &with, 1, NULL), 0);
	cr_assert_eq(sb_log_read_headers(l, 0, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, 0);
	/* A short buffer gets the start; *len says how much there is. */
	cr_assert_eq(sb_log_read_headers(l, 1, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, 2 + 3 + 1 + 10);
	cr_assert_eq(sb_log_read_headers(l, 2, buf, sizeof buf, &len), -ENOENT);
	cr_assert_eq(sb_record_size(&with), 32 + 1 + len);
	cr_assert_eq(sb_store_close(s), 0);
}

Test(rec_headers, limits)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	static char big[SB_HEADERS_MAX_BYTES + 1], names[SB_HEADERS_MAX_COUNT + 1][8];
	static sb_header many[SB_HEADERS_MAX_COUNT + 1];
	sb_header h[3];
	sb_record_in in = {.value = "v", .value_len = 1, .headers = h};
	struct {
		const char *what;
		sb_header a, b;
		size_t n;
		int rc;
	} cases[] = {
		{"empty name", {.name = "", .name_len = 0}, {0}, 1, -EINVAL},
		{"name of 256 bytes", {.name = big, .name_len = 256}, {0}, 1, -EINVAL},
		{"NUL in a name", {.name = "a\0b", .name_len = 3}, {0}, 1, -EINVAL},
		{"a name twice", {.name = "same", .name_len = 4}, {.name = "same", .name_len = 4}, 2, -EINVAL},
		{"value of 65536 bytes", {.name = "v", .name_len = 1, .value = big, .value_len = 65536}, {0}, 1,
		 -E2BIG},
		{"block over 64 KiB", {.name = "a", .name_len = 1, .value = big, .value_len = 65000},
		 {.name = "b", .name_len = 1, .value = big, .value_len = 600}, 2, -E2BIG},
		{"name of 255 bytes", {.name = big, .name_len = 255, .value = "", .value_len = 0}, {0}, 1, 0},
		{"value of 65530 bytes (a block of 65536)", {.name = "v", .name_len = 1, .value = big,
							  .value_len = SB_HEADERS_MAX_BYTES - 6}, {0}, 1, 0},
	};

	memset(big, 'x', sizeof big);
	ut_cfg(&c, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t next = sb_log_next(l);
		h[0] = cases[i].a;
		h[1] = cases[i].b;
		in.n_headers = (uint32_t)cases[i].n;
		cr_assert_eq(sb_headers_check(h, cases[i].n), cases[i].rc, "%s: check", cases[i].what);
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), cases[i].rc, "%s: append", cases[i].what);
		cr_assert_eq(sb_log_next(l), next + (cases[i].rc == 0), "%s: appended", cases[i].what);
	}
	for (size_t i = 0; i <= SB_HEADERS_MAX_COUNT; i++) {
		snprintf(names[i], sizeof names[i], "n%zu", i);
		many[i] = (sb_header){.name = names[i], .name_len = (uint32_t)strlen(names[i])};
	}
	in.headers = many;
	in.n_headers = SB_HEADERS_MAX_COUNT + 1;
	cr_assert_eq(sb_log_append(l, &in, 1, NULL), -E2BIG, "1025 headers");
	in.n_headers = SB_HEADERS_MAX_COUNT;
	cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0, "1024 headers");
	/* All or nothing: one bad record in a batch appends none. */
	sb_record_in two[2] = {{.value = "a", .value_len = 1}, in};
	uint64_t next = sb_log_next(l);
	h[0] = (sb_header){.name = "", .name_len = 0};
	two[1].headers = h;
	two[1].n_headers = 1;
	cr_assert_eq(sb_log_append(l, two, 2, NULL), -EINVAL);
	cr_assert_eq(sb_log_next(l), next);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(verify_damage("t"), 0);
}

/* ---- records on disk ------------------------------------------------------ */

static int has_headers(void *arg, const sb_rec_hdr *h)
{
	(void)arg;
	return h->hdrs_len != 0;
}

/* Every record of topic's segments with a header block. */
static size_t with_headers(const char *topic, ut_disk_rec *out, size_t cap)
{
	return ut_disk_records(env.store, topic, has_headers, NULL, out, cap);
}

/* Damage one byte of a header block: reads of that record fail (its
 * headers, its payload, the stream through it), verify reports it; nothing
 * of it is served. */
Test(rec_headers, damage_in_header_blocks_is_never_served)
{
	static ut_disk_rec recs[NREC];
	const char *knob = getenv("SB_TEST_HDR_DAMAGE");
	int trials = knob ? atoi(knob) : 60;
	uint8_t *buf = malloc(SB_HEADERS_MAX_BYTES);
	sb_log_config c;
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	cr_assert_not_null(buf);
	fill_topic("t", NREC);
	size_t n = with_headers("t", recs, NREC);
	cr_assert_gt(n, 50);
	ut_cfg(&c, 16384, SB_SYNC_NEVER);
	for (int t = 0; t < trials; t++) {
		rng = ut_mix(rng + (uint64_t)t);
		const ut_disk_rec *r = &recs[rng % n];
		uint64_t at = r->pos + sb_rec_hdrs_at(&r->h) + (rng >> 20) % r->h.hdrs_len;
		uint8_t mask = (uint8_t)(1u << ((rng >> 8) % 8));
		sb_store *s;
		sb_log *l;
		size_t len, got;
		uint8_t val[300];

		cr_assert_eq(uf_flip_byte(r->seg, (off_t)at, mask), 0);
		cr_assert_gt(verify_damage("t"), 0, "verify misses a flipped bit at byte %llu of %s",
			     (unsigned long long)at, r->seg);
		cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
		if (sb_store_get(s, "t", &l) == 0 && r->offset < sb_log_next(l)) {
			int rh = sb_log_read_headers(l, r->offset, buf, SB_HEADERS_MAX_BYTES, &len);
			int rv = sb_log_read(l, r->offset, 0, val, sizeof val, &got, NULL);
			cr_assert(rh == SB_ECORRUPT && rv == SB_ECORRUPT,
				  "record %llu with a damaged header block (byte %llu) served: headers %d, payload %d",
				  (unsigned long long)r->offset, (unsigned long long)at, rh, rv);
		}
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(uf_flip_byte(r->seg, (off_t)at, mask), 0); /* back */
	}
	cr_assert_eq(verify_damage("t"), 0);
	free(buf);
}

/* A good CRC over a block that does not parse (a writer's bug, a forged
 * record) is damage too. */
Test(rec_headers, malformed_block_under_a_good_crc)
{
	static ut_disk_rec recs[NREC];
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	uint8_t *b, buf[4096];
	size_t len, n;

	fill_topic("t", 40);
	n = with_headers("t", recs, NREC);
	cr_assert_gt(n, 0);
	cr_assert_eq(uf_read_all(recs[0].seg, &b, &len), 0);
	uint8_t *rec = b + recs[0].pos;
	/* count one more header than the block holds, and re-sign it */
	uint8_t *blk = rec + sb_rec_hdrs_at(&recs[0].h);
	sb_put16(blk + SB_HDRS_AT_COUNT, (uint16_t)(sb_get16(blk + SB_HDRS_AT_COUNT) + 1));
	sb_put32(rec + SB_REC_AT_CRC, sb_crc32c(0, rec + SB_REC_AT_SIZE, recs[0].h.size - SB_REC_AT_SIZE));
	cr_assert_eq(uf_write_at(recs[0].seg, (off_t)recs[0].pos, rec, recs[0].h.size), 0);
	free(b);
	cr_assert_gt(verify_damage("t"), 0);
	ut_cfg(&c, 16384, SB_SYNC_NEVER);
	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	if (sb_store_get(s, "t", &l) == 0 && recs[0].offset < sb_log_next(l))
		cr_assert_eq(sb_log_read_headers(l, recs[0].offset, buf, sizeof buf, &len), SB_ECORRUPT);
	cr_assert_eq(sb_store_close(s), 0);
}

/* ---- version 2 ------------------------------------------------------------ */

/* Make the segment at path a version 2 one (its header says so, re-signed). */
static void to_v2(const char *path)
{
	uint8_t hdr[SB_SEG_HDR];
	FILE *f = fopen(path, "r+b");

	cr_assert_not_null(f);
	cr_assert_eq(fread(hdr, 1, sizeof hdr, f), sizeof hdr);
	sb_put16(hdr + SB_FH_VERSION, 2);
	sb_put32(hdr + SB_SEG_AT_CRC, sb_crc32c(0, hdr, SB_SEG_AT_CRC));
	cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
	cr_assert_eq(fwrite(hdr, 1, sizeof hdr, f), sizeof hdr);
	cr_assert_eq(fclose(f), 0);
}

static unsigned seg_version(const char *path)
{
	uint8_t *b;
	size_t len;
	sb_seg_hdr h;

	cr_assert_eq(uf_read_all(path, &b, &len), 0);
	cr_assert_eq(sb_seg_hdr_decode(b, &h), 0, "%s: bad segment header", path);
	free(b);
	return h.version;
}

static void all_to_v2(const char *topic)
{
	char dir[4400], path[8800];
	char **names;
	int k;

	snprintf(dir, sizeof dir, "%s/%s", env.store, topic);
	k = uf_list_suffix(dir, ".seg", &names);
	cr_assert_gt(k, 0);
	for (int i = 0; i < k; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		to_v2(path);
	}
	uf_list_free(names, k);
}

Test(rec_headers, v2_segments_take_no_headers)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	char dir[4400], last[256], path[8800];
	sb_header h = {.name = "trace", .name_len = 5, .value = "\0\1\2", .value_len = 3};
	sb_record_in plain = {.value = "p", .value_len = 1};
	sb_record_in with = {.value = "w", .value_len = 1, .headers = &h, .n_headers = 1};
	uint8_t buf[64];
	size_t len;

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "full"));
	cr_assert_not_null(ut_topic(s, "empty"));
	cr_assert_eq(ut_append_n(l, 20, SEED, 1, 100), 0);
	cr_assert_eq(sb_store_close(s), 0);
	all_to_v2("full");
	all_to_v2("empty");
	cr_assert_eq(verify_damage("full"), 0);

	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "full"));
	/* records without headers still go into the v2 segment ... */
	cr_assert_eq(sb_log_append(l, &plain, 1, NULL), 0);
	snprintf(dir, sizeof dir, "%s/full", env.store);
	cr_assert_eq(uf_count_suffix(dir, ".seg"), 1);
	/* ... one with headers rolls to a new, version 3, segment */
	cr_assert_eq(sb_log_append(l, &with, 1, NULL), 0);
	cr_assert_eq(uf_count_suffix(dir, ".seg"), 2);
	cr_assert_eq(uf_last_suffix(dir, ".seg", last, sizeof last), 0);
	snprintf(path, sizeof path, "%s/%s", dir, last);
	cr_assert_eq(seg_version(path), 3);
	for (uint64_t o = 0; o < 20; o++)
		cr_assert_eq(ut_check(l, o, ut_len(o, SEED, 1, 100), SEED), 0);
	cr_assert_eq(sb_log_read_headers(l, 21, buf, sizeof buf, &len), 0);
	cr_assert(len == 2 + 3 + 5 + 3 && !memcmp(buf + 5, "trace\0\1\2", 8));
	/* an empty v2 segment is upgraded in place */
	cr_assert_not_null(l = ut_topic(s, "empty"));
	cr_assert_eq(sb_log_append(l, &with, 1, NULL), 0);
	snprintf(dir, sizeof dir, "%s/empty", env.store);
	cr_assert_eq(uf_count_suffix(dir, ".seg"), 1);
	cr_assert_eq(uf_last_suffix(dir, ".seg", last, sizeof last), 0);
	snprintf(path, sizeof path, "%s/%s", dir, last);
	cr_assert_eq(seg_version(path), 3);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(verify_damage("full"), 0);
	cr_assert_eq(verify_damage("empty"), 0);

	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	cr_assert_eq(sb_store_get(s, "empty", &l), 0);
	cr_assert_eq(sb_log_read_headers(l, 0, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, 2 + 3 + 5 + 3);
	cr_assert_eq(sb_store_close(s), 0);
}

/* The flag bit v3 gives headers is still damage in a version 2 segment, and
 * bits v3 leaves undefined are damage in both. */
Test(rec_headers, undefined_flags_stay_damage)
{
	static ut_disk_rec recs[NREC];
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	uint8_t buf[4096];
	size_t len, n, got;

	fill_topic("t", 40);
	n = with_headers("t", recs, NREC);
	cr_assert_gt(n, 0);
	all_to_v2("t");
	cr_assert_gt(verify_damage("t"), 0, "a v2 segment with a header block verifies");
	ut_cfg(&c, 16384, SB_SYNC_NEVER);
	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	if (sb_store_get(s, "t", &l) == 0 && recs[0].offset < sb_log_next(l))
		cr_assert_eq(sb_log_read_headers(l, recs[0].offset, buf, sizeof buf, &len), SB_ECORRUPT);
	cr_assert_eq(sb_store_close(s), 0);

	/* v2: a record without a header block but with bit 4 set, re-signed */
	ut_cfg(&c, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "v"));
	cr_assert_eq(ut_append_n(l, 5, SEED, 1, 50), 0);
	cr_assert_eq(sb_store_close(s), 0);
	all_to_v2("v");
	{
		char path[8800], dir[4400];
		uint8_t *b;
		size_t blen;
		sb_rec_hdr h;
		snprintf(dir, sizeof dir, "%s/v", env.store);
		char last[256];
		cr_assert_eq(uf_last_suffix(dir, ".seg", last, sizeof last), 0);
		snprintf(path, sizeof path, "%s/%s", dir, last);
		cr_assert_eq(uf_read_all(path, &b, &blen), 0);
		uint8_t *rec = b + SB_SEG_HDR;
		cr_assert(sb_rec_frame(rec, blen - SB_SEG_HDR, &h));
		sb_put16(rec + SB_REC_AT_FLAGS, (uint16_t)(h.flags | SB_REC_HEADERS));
		sb_put32(rec + SB_REC_AT_CRC, sb_crc32c(0, rec + SB_REC_AT_SIZE, h.size - SB_REC_AT_SIZE));
		cr_assert_eq(uf_write_at(path, SB_SEG_HDR, rec, h.size), 0);
		free(b);
	}
	cr_assert_gt(verify_damage("v"), 0, "bit 4 in a v2 segment verifies");
	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	if (sb_store_get(s, "v", &l) == 0 && sb_log_next(l) > 0)
		cr_assert_eq(sb_log_read(l, 0, 0, buf, sizeof buf, &got, NULL), SB_ECORRUPT);
	cr_assert_eq(sb_store_close(s), 0);
	ut_cfg(&c, 16384, SB_SYNC_NEVER);

	/* v3: a record re-signed with bit 5 set */
	fill_topic("u", 40);
	n = with_headers("u", recs, NREC);
	cr_assert_gt(n, 0);
	uint8_t *b;
	size_t blen;
	cr_assert_eq(uf_read_all(recs[0].seg, &b, &blen), 0);
	uint8_t *rec = b + recs[0].pos;
	sb_put16(rec + SB_REC_AT_FLAGS, (uint16_t)(sb_get16(rec + SB_REC_AT_FLAGS) | 0x0020));
	sb_put32(rec + SB_REC_AT_CRC, sb_crc32c(0, rec + SB_REC_AT_SIZE, recs[0].h.size - SB_REC_AT_SIZE));
	cr_assert_eq(uf_write_at(recs[0].seg, (off_t)recs[0].pos, rec, recs[0].h.size), 0);
	free(b);
	cr_assert_gt(verify_damage("u"), 0);
	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	if (sb_store_get(s, "u", &l) == 0 && recs[0].offset < sb_log_next(l))
		cr_assert_eq(sb_log_read(l, recs[0].offset, 0, buf, sizeof buf, &got, NULL), SB_ECORRUPT);
	cr_assert_eq(sb_store_close(s), 0);
}

/* Compressed blocks hold header blocks (format.h, "Compressed segment"):
 * every sealed segment compresses, those with records with headers too, and
 * every header reads back (before and after a reopen). */
Test(rec_headers, compression_keeps_headers)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	sb_log_stats st;
	size_t done = 0;
	gen_hdrs *g = gen_new();
	const uint64_t n = 600;

	ut_cfg(&c, 16384, SB_SYNC_NEVER);
	c.compression = SB_COMPRESS_ZSTD;
	c.compression_block_bytes = 4096;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	for (uint64_t o = 0; o < n; o++) {
		uint8_t val[300];
		size_t len = ut_len(o, SEED, 0, sizeof val);
		ut_fill(val, len, o, SEED);
		gen(g, o);
		/* headers only in the first 200 records */
		sb_record_in in = {.value = val, .value_len = (uint32_t)len, .headers = g->h,
				   .n_headers = o < 200 ? (uint32_t)g->n : 0};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	}
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compress(l, &done), 0);
	cr_assert_gt(done, 0);
	cr_assert_eq(sb_log_get_stats(l, &st), 0);
	cr_assert_eq(st.compressed, st.segments - 1, "the segments with headers compress too");
	for (int pass = 0; pass < 2; pass++) {
		uint8_t *buf = malloc(SB_HEADERS_MAX_BYTES);
		cr_assert_not_null(buf);
		for (uint64_t o = 0; o < n; o++) {
			size_t len, pos = 0, i = 0;
			sb_header h;
			gen(g, o);
			size_t want = o < 200 ? g->n : 0;
			cr_assert_eq(ut_check(l, o, ut_len(o, SEED, 0, 300), SEED), 0, "payload of %llu",
				     (unsigned long long)o);
			cr_assert_eq(sb_log_read_headers(l, o, buf, SB_HEADERS_MAX_BYTES, &len), 0);
			while (sb_headers_next(buf, len, &pos, &h) == 1) {
				cr_assert(i < want && h.value_len == g->h[i].value_len &&
					  !memcmp(h.value, g->h[i].value, h.value_len), "record %llu header %zu",
					  (unsigned long long)o, i);
				i++;
			}
			cr_assert_eq(i, want, "record %llu: %zu headers of %zu", (unsigned long long)o, i, want);
		}
		free(buf);
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(verify_damage("t"), 0);
	gen_free(g);
}
