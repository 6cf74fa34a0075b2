/*
 * test_store_compress_blocks.c - what a compressed segment's block holds
 * (format.h, "Compressed segment"): records with headers (binary, empty,
 * hundreds of them) round trip and damage in the header column is never
 * served; value lengths coded against the newlines in the values; the
 * block CRC's three lanes. Segments, damage, swaps and crashes:
 * test_store_compress.c; the store both use: util_zstore.h.
 * SB_TEST_COMPRESS_CASES sets the number of damage cases (default 60).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "util_files.h"
#include "util_zstore.h"

UZ_FIXTURE("zb")

TestSuite(compress, .init = uz_setup, .fini = uz_teardown);

/* ---- records with headers in compressed blocks -------------------------- */

/* The headers of record i (deterministic): none on most, one binary value
 * (NULs in it), an empty value, hundreds of headers, a long value; none at
 * all in [HNONE_FROM, HNONE_TO) (whole segments without headers). */
#define HNONE_FROM 1000
#define HNONE_TO 2200
typedef struct hgen {
	sb_header h[SB_HEADERS_MAX_COUNT];
	char names[SB_HEADERS_MAX_COUNT][16];
	uint8_t vals[SB_HEADERS_MAX_COUNT][16];
	uint8_t big[1200];
	uint32_t n;
} hgen;

static hgen *HG;

static void hgen_make(uint64_t i)
{
	hgen *g = HG;
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 7;
	uint32_t kind = (uint32_t)(i % 6);

	g->n = 0;
	if ((i >= HNONE_FROM && i < HNONE_TO) || kind == 0 || kind == 4)
		return;
	uint32_t n = kind == 3 ? 20 + (uint32_t)(i % 300) : kind == 2 ? 2 : 1;
	for (uint32_t k = 0; k < n; k++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		snprintf(g->names[k], sizeof(g->names[k]), "m%04u", k);
		uint32_t vl = (uint32_t)(x >> 60); /* 0..15, binary bytes */
		for (uint32_t j = 0; j < sizeof(g->vals[k]); j++) /* all: kind 1 takes more */
			g->vals[k][j] = (uint8_t)(x >> (j * 3 % 56));
		g->h[k] = (sb_header){.name = g->names[k], .name_len = (uint32_t)strlen(g->names[k]),
				      .value = g->vals[k], .value_len = vl};
	}
	if (kind == 1) { /* one binary value with NULs in it */
		g->vals[0][0] = 0;
		g->vals[0][1] = 0xff;
		g->h[0].name = "bin";
		g->h[0].name_len = 3;
		g->h[0].value_len = 2 + (uint32_t)(i % 14);
	} else if (kind == 2) { /* an empty value */
		g->h[0].name = "empty";
		g->h[0].name_len = 5;
		g->h[0].value_len = 0;
	} else if (kind == 5) { /* a long value */
		for (size_t j = 0; j < sizeof(g->big); j++)
			g->big[j] = (uint8_t)(i + j * 7);
		g->h[0].value = g->big;
		g->h[0].value_len = (uint32_t)(i % sizeof(g->big));
	}
	g->n = n;
}

/* uz_append's headers: record i's, from hgen_make. */
static void headers_of(uint64_t i, const sb_header **h, uint32_t *n)
{
	hgen_make(i);
	*h = HG->h;
	*n = HG->n;
}

/* Record i's headers as read: 0 if right, else an error or 1. */
static int check_hdrs(uint64_t i)
{
	static uint8_t buf[SB_HEADERS_MAX_BYTES];
	size_t len = 0, pos = 0;
	uint32_t k = 0;
	sb_header h;
	sb_record_info info;
	int rc = sb_log_read_headers(Z.L, i, buf, sizeof(buf), &len), r;

	if (rc)
		return rc;
	hgen_make(i);
	if ((rc = sb_log_stat(Z.L, i, &info)))
		return rc;
	if (info.headers_len != len || !!(info.flags & SB_REC_HEADERS) != !!HG->n)
		return 1;
	while ((r = sb_headers_next(buf, len, &pos, &h)) == 1) {
		if (k >= HG->n || h.name_len != HG->h[k].name_len || memcmp(h.name, HG->h[k].name, h.name_len) ||
		    h.value_len != HG->h[k].value_len ||
		    (h.value_len && memcmp(h.value, HG->h[k].value, h.value_len)))
			return 1;
		k++;
	}
	return r == 0 && k == HG->n ? 0 : 1;
}

static int check_rec_h(uint64_t i)
{
	int rc = uz_check_rec(&Z, i);

	return rc ? rc : check_hdrs(i);
}

/* The features field of compressed segment `name` (-1: not compressed). */
static int zfeatures(const char *name)
{
	uint64_t end;

	if (!uz_is_compressed(&Z, name, &end))
		return -1;
	char path[4096];
	uint8_t h[SB_ZSEG_HDR];
	int fd = open(ut_topic_path(&Z.env, "t", name, path, sizeof(path)), O_RDONLY);
	cr_assert_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	return sb_get16(h + SB_ZSEG_AT_FEATURES);
}

/*
 * Records with headers (binary, empty and hundreds of them), in segments
 * mixing them with records without and in segments without any: every
 * sealed segment compresses and every header reads back equal, from the
 * blocks, after a reopen; a file without headers has no feature bit.
 */
static void headers_roundtrip(enum sb_compression z)
{
	const uint64_t n = 3000;
	char names[64][32];
	sb_log_stats st;
	size_t done = 0;
	int with = 0, without = 0;

	HG = malloc(sizeof(*HG));
	cr_assert_not_null(HG);
	uz_open(&Z, z);
	uz_append(&Z, n, headers_of);
	cr_assert_eq(sb_log_sync(Z.L), 0);
	cr_assert_eq(sb_log_compress(Z.L, &done), 0);
	cr_assert_eq(sb_log_get_stats(Z.L, &st), 0);
	cr_assert_gt(st.segments, 4);
	cr_assert_eq(st.compressed, st.segments - 1, "%u of %u segments compressed", st.compressed, st.segments);
	int ns = uz_list_segs(&Z, names, 64);
	for (int k = 0; k < ns; k++) {
		int f = zfeatures(names[k]);
		with += f == SB_ZSEG_F_HEADERS;
		without += f == 0;
	}
	cr_assert(with > 1 && without > 0, "%d compressed with headers, %d without", with, without);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(check_rec_h(i), 0, "record %llu", (unsigned long long)i);
		for (int k = 0; k < 2000; k++) {
			uint64_t i = (uint64_t)rand() % n;
			cr_assert_eq(check_rec_h(i), 0, "record %llu", (unsigned long long)i);
		}
		uz_check_stream(&Z, 0, n, 65536);
		uz_reopen(&Z);
	}
	free(HG);
}

Test(compress, headers_roundtrip_lz4) { headers_roundtrip(SB_COMPRESS_LZ4); }
Test(compress, headers_roundtrip_zstd) { headers_roundtrip(SB_COMPRESS_ZSTD); }

/* Read (lz4) block `b` of compressed segment file f: its table entry at
 * *e (32 bytes), its raw bytes (malloc'ed). */
static uint8_t *zblock_raw(const uint8_t *f, uint32_t b, const uint8_t **e)
{
	const uint8_t *t = f + sb_get64(f + 64) + (size_t)b * SB_ZSEG_ENTRY;
	uint32_t pos = sb_get32(t + 8), stored = sb_get32(t + 12), raw = sb_get32(t + 16);
	uint8_t *r = malloc(raw);

	cr_assert_not_null(r);
	cr_assert_eq(LZ4_decompress_safe((const char *)f + pos, (char *)r, (int)stored, (int)raw), (int)raw);
	*e = t;
	return r;
}

/* Put raw back into block b of f (recompressed; the block may change size:
 * the blocks after it move, the table and header are rewritten); fix_raw:
 * the raw CRC is recomputed too. The new file's length. */
static size_t zblock_put(uint8_t **fp, size_t flen, uint32_t b, const uint8_t *raw, int fix_raw)
{
	uint8_t *f = *fp;
	uint64_t tpos = sb_get64(f + 64);
	uint32_t nb = sb_get32(f + 72);
	uint8_t *t = f + tpos + (size_t)b * SB_ZSEG_ENTRY;
	uint32_t pos = sb_get32(t + 8), stored = sb_get32(t + 12), rl = sb_get32(t + 16);
	int bound = LZ4_compressBound((int)rl);
	uint8_t *c = malloc((size_t)bound);
	int cl = LZ4_compress_default((const char *)raw, (char *)c, (int)rl, bound);
	cr_assert_gt(cl, 0);
	size_t nlen = flen - stored + (size_t)cl;
	uint8_t *g = malloc(nlen);
	memcpy(g, f, pos);
	memcpy(g + pos, c, (size_t)cl);
	memcpy(g + pos + cl, f + pos + stored, flen - pos - stored);
	int64_t d = (int64_t)cl - (int64_t)stored;
	sb_put64(g + 64, (uint64_t)((int64_t)tpos + d));
	uint8_t *nt = g + (size_t)((int64_t)tpos + d);
	for (uint32_t k = 0; k < nb; k++) {
		uint8_t *ek = nt + (size_t)k * SB_ZSEG_ENTRY;
		if (k > b)
			sb_put32(ek + 8, (uint32_t)((int64_t)sb_get32(ek + 8) + d));
	}
	uint8_t *eb = nt + (size_t)b * SB_ZSEG_ENTRY;
	sb_put32(eb + 12, (uint32_t)cl);
	sb_put32(eb + 24, sb_crc32c(0, c, (size_t)cl));
	if (fix_raw)
		sb_put32(eb + 28, sb_crc32c(0, raw, rl));
	sb_put32(g + 80, sb_crc32c(0, nt, (size_t)nb * SB_ZSEG_ENTRY));
	sb_put32(g + 92, sb_crc32c(0, g, 92));
	free(c);
	free(f);
	*fp = g;
	return nlen;
}

/*
 * Damage in the header column of a compressed block, in the headers' bytes
 * (the raw CRC left as it was: it catches it) and in a header block's count
 * with every CRC made to agree (the block's decoding catches it: a block
 * that does not parse): the block's records fail with SB_ECORRUPT, never
 * other headers; the other blocks read; recover --cut keeps the blocks
 * before it, headers included. SB_TEST_COMPRESS_CASES cases (default 60).
 */
Test(compress, header_damage_never_served)
{
	const char *ev = getenv("SB_TEST_COMPRESS_CASES");
	int cases = ev ? atoi(ev) : 60;
	const uint64_t n = 1200;
	char names[64][32], copy[4096 + 16], path[4096];

	HG = malloc(sizeof(*HG));
	cr_assert_not_null(HG);
	uz_open(&Z, SB_COMPRESS_LZ4);
	uz_append(&Z, n, headers_of);
	uz_compress_keep(&Z, copy, sizeof(copy));
	srand(4242);
	for (int c = 0; c < cases; c++) {
		uz_restore(&Z, copy);
		int ns = uz_list_segs(&Z, names, 64), zs[64], nz = 0;
		for (int i = 0; i < ns; i++)
			if (zfeatures(names[i]) == SB_ZSEG_F_HEADERS)
				zs[nz++] = i;
		cr_assert_gt(nz, 0);
		const char *name = names[zs[rand() % nz]];
		uint8_t *f;
		size_t flen;
		ut_topic_path(&Z.env, "t", name, path, sizeof(path));
		cr_assert_eq(uf_read_all(path, &f, &flen), 0);
		uint64_t base = sb_get64(f + 8);
		uint32_t b = (uint32_t)rand() % sb_get32(f + 72);
		const uint8_t *e;
		uint8_t *raw = zblock_raw(f, b, &e);
		uint32_t rl = sb_get32(e + 16), cnt = sb_get32(e + 20);
		uint64_t first = base + sb_get32(e);
		/* the block's header blocks end it: their lengths from the oracle */
		uint32_t htotal = 0, nh = 0, hlen[4096];
		for (uint32_t k = 0; k < cnt; k++) {
			hgen_make(first + k);
			if (HG->n) {
				sb_record_in in = {.headers = HG->h, .n_headers = HG->n};
				hlen[nh] = (uint32_t)sb_hdrs_size(&in);
				nh++;
				htotal += hlen[nh - 1];
			}
		}
		if (!nh) {
			free(raw);
			free(f);
			c--;
			continue; /* a block without headers: pick again */
		}
		int fix = c % 2;
		if (!fix) { /* a bit of the header bytes; the raw CRC as it was */
			uint32_t at = rl - htotal + (uint32_t)rand() % htotal;
			raw[at] ^= (uint8_t)(1u << (rand() % 8));
		} else { /* a header block's count; all CRCs agree */
			uint32_t h = (uint32_t)rand() % nh, at = rl - htotal;
			for (uint32_t k = 0; k < h; k++)
				at += hlen[k];
			raw[at + (uint32_t)(rand() % 2)] ^= (uint8_t)(1u << (rand() % 8));
		}
		flen = zblock_put(&f, flen, b, raw, fix);
		cr_assert_eq(uf_write_file(path, f, flen), 0, "%s", path);
		free(raw);
		free(f);

		int grc = uz_open_quiet(&Z, 0);
		cr_assert_eq(grc, 0, "case %d: %s", c, sb_strerror(grc));
		for (uint64_t i = 0; i < n; i++) {
			int rc = check_rec_h(i);
			int inside = i >= first && i < first + cnt;
			cr_assert(inside ? rc == SB_ECORRUPT : rc == 0, "case %d (fix %d) record %llu: %d", c, fix,
				  (unsigned long long)i, rc);
		}
		cr_assert_eq(sb_store_close(Z.S), 0);
		Z.S = NULL;
		cr_assert_eq(uz_open_quiet(&Z, 1), 0);
		/* the damaged block's records go (a gap), the others stay */
		cr_assert_eq(sb_log_next(Z.L), n, "case %d: the repair kept the records after the block", c);
		for (uint64_t i = 0; i < n; i++) {
			int inside = i >= first && i < first + cnt;
			cr_assert_eq(check_rec_h(i), inside ? -ENOENT : 0, "case %d record %llu after the repair", c,
				     (unsigned long long)i);
		}
		cr_assert_eq(sb_store_close(Z.S), 0);
		Z.S = NULL;
	}
	cr_assert_eq(uf_rmrf(copy), 0);
	free(HG);
}

/* Bit by bit, the definition: the reference for the store's CRC32C. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* The CRC of a block (and of every large run) goes three lanes at once and
 * joins them: the same as one chain and as the definition, at every length
 * and alignment, whole or continued in pieces. */
Test(compress, crc_lanes_match_one_chain)
{
	enum { MAX = 3 * 65536 + 77 };
	uint8_t *buf = malloc(MAX + 8);
	uint64_t seed = 9;

	cr_assert(buf);
	for (size_t i = 0; i < MAX + 8; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(seed >> 33);
	}
	cr_assert_eq(sb_crc32c(0, "123456789", 9), 0xE3069283u);
	for (int t = 0; t < 200; t++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t n = t < 8 ? (size_t)(3 * 4096 * (t + 1) - 1 + (t & 1) * 2) : (size_t)(seed >> 20) % MAX;
		const uint8_t *p = buf + (seed >> 8) % 8;
		uint32_t whole = sb_crc32c(7, p, n), pieces = 7;
		for (size_t at = 0; at < n;) { /* pieces below one 3-lane run */
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			size_t k = 1 + (size_t)(seed >> 40) % 12000;
			if (k > n - at)
				k = n - at;
			pieces = sb_crc32c(pieces, p + at, k);
			at += k;
		}
		cr_assert_eq(whole, pieces, "length %zu", n);
		if (t < 20)
			cr_assert_eq(whole, crc_ref(7, p, n), "length %zu", n);
	}
	free(buf);
}

/* Value i of value_lengths_any_newlines: 0..299 bytes of 'x' and '\n', the
 * newlines from none to all, by a density drawn per run of 50 records. */
static size_t nl_value(uint64_t i, uint8_t *buf)
{
	uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull, d = ((i / 50) * 0xD1B54A32D192ED03ull) >> 61;
	size_t n = (size_t)((h >> 40) % 300);

	for (size_t k = 0; k < n; k++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		buf[k] = d == 0 ? 'x' : d == 7 ? '\n' : ((h >> 33) % (1u << d) == 0 ? '\n' : 'x');
	}
	return n;
}

/* A block codes each value's length against the next newline in the
 * values (the decoder finds them 64 bytes at a time): values with no,
 * some, many and only newlines, short and long, across block edges, read
 * back exactly by offset and in the stream. */
Test(compress, value_lengths_any_newlines)
{
	enum { N = 4000 };
	uint8_t buf[512], got[512];
	size_t total = 0, done = 0, nr;

	uz_open(&Z, SB_COMPRESS_ZSTD);
	for (uint64_t i = 0; i < N; i++) {
		size_t n = nl_value(i, buf);
		sb_record_in r = {.value = buf, .value_len = (uint32_t)n, .timestamp_ns = 5};
		cr_assert_eq(sb_log_append(Z.L, &r, 1, NULL), 0);
		total += n;
	}
	cr_assert_eq(sb_log_sync(Z.L), 0);
	cr_assert_eq(sb_log_compress(Z.L, &done), 0);
	cr_assert_gt(done, 2);
	uint8_t *all = malloc(total), *st = malloc(total);
	cr_assert(all && st);
	for (uint64_t i = 0, at = 0; i < N; i++) {
		size_t n = nl_value(i, buf);
		cr_assert_eq(sb_log_read(Z.L, i, 0, got, sizeof(got), &nr, NULL), 0);
		cr_assert(nr == n && !memcmp(got, buf, n), "record %llu", (unsigned long long)i);
		memcpy(all + at, buf, n);
		at += n;
	}
	for (size_t at = 0; at < total;) {
		cr_assert_eq(sb_log_read_stream(Z.L, at, st + at, total - at < 999 ? total - at : 999, &nr), 0);
		cr_assert_gt(nr, 0);
		at += nr;
	}
	cr_assert(!memcmp(all, st, total));
	free(all);
	free(st);
}
