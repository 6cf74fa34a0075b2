/*
 * seeds.c - fuzz-seeds OUTDIR: write the seed inputs of the binary targets
 * (record, segment, index) as OUTDIR/TARGET/NAME, from the sample segment
 * of util.c. The committed corpus tests/fuzz/corpus/ was made with it (the
 * config and ops seeds are written by hand there).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "keytable.h"
#include "util.h"

static const char *out;

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s", out, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", out, target, name);
	fz_write(path, p, n);
}

/* A fuzz_segment input: mode, lengths, parts. */
static void seg_input(const char *name, int mode, const uint8_t *s1, size_t n1, const uint8_t *ix,
		      size_t ni, const uint8_t *s2, size_t n2)
{
	uint8_t *b = malloc(5 + n1 + ni + n2);
	size_t k = 0;

	b[k++] = (uint8_t)mode;
	b[k++] = (uint8_t)n1;
	b[k++] = (uint8_t)(n1 >> 8);
	if (mode & 4) {
		b[k++] = (uint8_t)ni;
		b[k++] = (uint8_t)(ni >> 8);
	}
	memcpy(b + k, s1, n1);
	k += n1;
	if (mode & 4) {
		memcpy(b + k, ix, ni);
		k += ni;
	}
	if (mode & 8) {
		memcpy(b + k, s2, n2);
		k += n2;
	}
	put("fuzz_segment", name, b, k);
	free(b);
}

/* A fuzz_keytable input: mode, table file. */
static void kt_input(const char *name, int mode, const uint8_t *t, size_t n)
{
	uint8_t *b = malloc(n + 1);

	b[0] = (uint8_t)mode;
	if (n)
		memcpy(b + 1, t, n);
	put("fuzz_keytable", name, b, n + 1);
	free(b);
}

/* fuzz_keytable: a valid version 4 table in each mode (of the range the
 * mode names), one stamped version 3 (footer and its CRC), truncated ones,
 * one with a flipped block byte, forged ones (CRCs recomputed) with keys
 * out of order or the footer's entry count off by one. */
static void keytable_seeds(void)
{
	static const unsigned cover[4] = {FZ_KEYED_RECORDS, FZ_KEYED_RECORDS / 2, FZ_KEYED_RECORDS / 4,
					  FZ_KEYED_RECORDS / 4};
	size_t nf, n;
	uint8_t *full = fz_keyed_table(0, FZ_KEYED_RECORDS, &nf);
	char name[64];

	for (int mode = 0; mode < 16; mode++) {
		uint8_t *t = fz_keyed_table(0, cover[mode >> 1 & 3], &n);
		snprintf(name, sizeof name, "v4_mode%d", mode);
		kt_input(name, mode, t, n);
		free(t);
	}
	uint8_t *b = malloc(nf);
	memcpy(b, full, nf);
	sb_put16(b + nf - SB_KT_FOOTER + 4, 3);
	sb_put32(b + nf - SB_KT_FOOTER + 68, sb_crc32c(0, b + nf - SB_KT_FOOTER, 68));
	kt_input("v3", 0, b, nf);
	kt_input("v3_rw", 8, b, nf);
	memcpy(b, full, nf);
	b[100] ^= 0x08; /* in the first block: its CRC fails */
	kt_input("block_rot", 0, b, nf);
	kt_input("block_rot_rw", 8, b, nf);
	kt_input("block_rot_forged", 1, b, nf);
	memcpy(b, full, nf);
	b[SB_KT_ENTRY] = 0x7f; /* the first key "\0" now after the second "\0\xff" */
	kt_input("unsorted_forged", 1, b, nf);
	kt_input("unsorted_forged_rw", 9, b, nf);
	memcpy(b, full, nf);
	sb_put64(b + nf - SB_KT_FOOTER + 8, sb_get64(b + nf - SB_KT_FOOTER + 8) + 1);
	kt_input("count_forged", 1, b, nf);
	kt_input("trunc_half", 0, full, nf / 2);
	kt_input("trunc_footer_rw", 8, full, nf - 1);
	kt_input("footer_only", 0, full + nf - SB_KT_FOOTER, SB_KT_FOOTER);
	kt_input("footer_only_forged", 1, full + nf - SB_KT_FOOTER, SB_KT_FOOTER);
	kt_input("empty", 0, NULL, 0);
	free(b);
	free(full);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz-seeds OUTDIR\n");
		return 2;
	}
	out = argv[1];
	mkdir(out, 0755);
	const fz_sample *s = fz_sample_segment();
	size_t ni;
	uint8_t *ix = fz_sample_index(4, &ni);
	uint8_t *bad = malloc(s->len);
	uint8_t h2[SB_SEG_HDR], meta[SB_META_SIZE], clean[SB_CLEAN_SIZE];
	sb_seg_hdr sh = {.base_offset = FZ_SAMPLE_BASE + FZ_SAMPLE_RECORDS,
			 .base_stream = FZ_SAMPLE_STREAM + s->stream[FZ_SAMPLE_RECORDS - 1] + (FZ_SAMPLE_RECORDS - 1) * 37 % 301};
	sb_seg_hdr_encode(h2, &sh);

	/* fuzz_record: records back to back, headers, a name */
	put("fuzz_record", "records", s->seg + SB_SEG_HDR, s->len - SB_SEG_HDR);
	put("fuzz_record", "record_keyed", s->seg + s->pos[3], s->pos[4] - s->pos[3]);
	put("fuzz_record", "record_headers", s->seg + s->pos[7], s->pos[8] - s->pos[7]);
	put("fuzz_record", "record_keyed_headers", s->seg + s->pos[12], s->pos[13] - s->pos[12]);
	put("fuzz_record", "seg_header", s->seg, SB_SEG_HDR);
	put("fuzz_record", "idx_header", ix, SB_IDX_HDR);
	sb_meta_encode(meta, FZ_SAMPLE_BASE);
	put("fuzz_record", "meta", meta, sizeof meta);
	sb_clean_rec c = {FZ_SAMPLE_BASE, s->len};
	sb_clean_encode(clean, &c);
	put("fuzz_record", "clean", clean, sizeof clean);
	put("fuzz_record", "name", "00000000000000001000.seg", 24);

	/* fuzz_segment: modes as in fuzz_segment.c */
	seg_input("whole", 32, s->seg, s->len, NULL, 0, NULL, 0);
	seg_input("whole_base0", 0, s->seg, s->len, NULL, 0, NULL, 0);
	seg_input("torn_repair", 32 | 1, s->seg, s->pos[30] + 20, NULL, 0, NULL, 0);
	seg_input("torn_rdonly", 32 | 2, s->seg, s->pos[30] + 20, NULL, 0, NULL, 0);
	memcpy(bad, s->seg, s->len);
	bad[s->pos[17] + 40] ^= 0x20;
	seg_input("rot_repair", 32 | 1, bad, s->len, NULL, 0, NULL, 0);
	seg_input("rot_fixcrc", 32 | 64, bad, s->len, NULL, 0, NULL, 0);
	memcpy(bad, s->seg, s->len);
	bad[s->pos[23] - 3] ^= 0x04; /* in record 22's header block (v3) */
	seg_input("hdrs_rot_repair", 32 | 1, bad, s->len, NULL, 0, NULL, 0);
	seg_input("hdrs_rot_index", 32 | 4 | 16, bad, s->len, ix, ni, NULL, 0);
	seg_input("hdrs_rot_fixcrc", 32 | 64, bad, s->len, NULL, 0, NULL, 0);
	memcpy(bad, s->seg, s->len);
	bad[s->pos[17] + 40] ^= 0x20;
	seg_input("index_clean", 32 | 4 | 16, s->seg, s->len, ix, ni, NULL, 0);
	seg_input("two_segments", 32 | 4 | 8, s->seg, s->len, ix, ni, h2, sizeof h2);
	seg_input("two_rot_repair", 32 | 4 | 8 | 1, bad, s->len, ix, ni, h2, sizeof h2);
	seg_input("two_rot", 32 | 4 | 8 | 16, bad, s->len, ix, ni, h2, sizeof h2);

	/* fuzz_index: mode, u16 capacity, index file */
	for (unsigned every = 1; every <= 13; every += 3) {
		size_t n;
		uint8_t *x = fz_sample_index(every, &n);
		uint8_t *b = malloc(n + 3);
		char name[32];
		for (int mode = 0; mode < 4; mode += 2) {
			b[0] = (uint8_t)(mode | (every == 4));
			b[1] = (uint8_t)every;
			b[2] = 0;
			memcpy(b + 3, x, n);
			snprintf(name, sizeof name, "every%u_mode%d", every, b[0]);
			put("fuzz_index", name, b, n + 3);
		}
		free(b);
		free(x);
	}
	keytable_seeds();
	free(bad);
	free(ix);
	return 0;
}
