/*
 * fuzz_index - the index loader (store/index.c sb_index_load) against a
 * valid segment (the sample of util.c) and a fuzzed index file.
 *
 * Input: byte 0 mode (bit 0: recompute the header and entries CRCs of the
 * fuzzed index, so that what lies behind them is explored; bit 1: also open
 * the store over the segment, sealed by a second segment, with this index),
 * u16 capacity, then the index file.
 *
 * Properties: no crash or sanitizer report; an index the loader accepts has
 * its count of sorted entries inside the segment, the first at the first
 * record; unless its CRCs were forged (bit 0), every entry points at the
 * record of that offset and stream position. The store over a segment with
 * any index (forged ones too) serves each offset's own record or an error,
 * never another record's bytes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "index.h"
#include "sb_store.h"
#include "util.h"

/* The entries of the file (count from its header) against the loaded
 * index and the segment. */
static void check_loaded(const sb_index *ix, const uint8_t *file, const fz_sample *s, int forged)
{
	size_t n = sb_index_count(ix);
	sb_idx_entry prev = {0}, e, got;

	FZ_CHECK(n == sb_get32(file + 16), "loaded %zu entries, the header says %u", n, sb_get32(file + 16));
	for (size_t i = 0; i < n; i++) {
		sb_idx_entry_decode(file + SB_IDX_HDR + i * SB_IDX_ENTRY, &e);
		if (i == 0) /* the sample is not compacted: the first record at the base */
			FZ_CHECK(e.rel_offset == 0 && e.pos == SB_SEG_HDR && e.rel_stream == 0,
				 "first entry is not the first record");
		else
			FZ_CHECK(e.rel_offset > prev.rel_offset && e.pos > prev.pos &&
				 e.rel_stream >= prev.rel_stream, "entries not sorted");
		FZ_CHECK(!sb_index_lookup(ix, e.rel_offset, 0, &got) && !memcmp(&got, &e, sizeof e),
			 "lookup of entry %zu finds another", i);
		FZ_CHECK(e.pos >= SB_SEG_HDR && e.pos < s->len, "entry position %u outside the segment",
			 e.pos);
		if (!forged)
			FZ_CHECK(e.rel_offset < FZ_SAMPLE_RECORDS && s->pos[e.rel_offset] == e.pos &&
				 s->stream[e.rel_offset] == e.rel_stream,
				 "entry %zu (offset +%u pos %u stream +%u) is not that record", i,
				 e.rel_offset, e.pos, e.rel_stream);
		prev = e;
	}
}

static void check_store(const char *dir, const fz_sample *s)
{
	static uint8_t buf[4096];
	sb_store_options opt;
	sb_store *st;
	sb_log *l;
	sb_record_info info;
	size_t n;

	sb_store_options_default(&opt);
	opt.no_flusher = 1;
	opt.read_only = 1;
	if (sb_store_open(dir, &opt, &st))
		return;
	if (!sb_store_get(st, "t", &l)) {
		for (uint64_t off = sb_log_start(l); off < sb_log_next(l) && off < FZ_SAMPLE_BASE + 64; off++) {
			if (sb_log_read(l, off, 0, buf, sizeof buf, &n, &info))
				continue;
			FZ_CHECK(off >= FZ_SAMPLE_BASE && off < FZ_SAMPLE_BASE + FZ_SAMPLE_RECORDS,
				 "offset %llu read, the segment has no such record", (unsigned long long)off);
			uint32_t i = (uint32_t)(off - FZ_SAMPLE_BASE);
			sb_rec_hdr h;
			FZ_CHECK(sb_rec_decode(s->seg + s->pos[i], s->len - s->pos[i], 1, &h) == SB_REC_OK, "sample");
			FZ_CHECK(info.offset == off && n == h.value_len &&
				 !memcmp(buf, s->seg + s->pos[i] + SB_REC_HDR + h.key_len, n),
				 "offset %llu served another record's bytes", (unsigned long long)off);
		}
	}
	sb_store_close(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const fz_sample *s = fz_sample_segment();
	fz_in in = {data, size};
	int mode = fz_u8(&in);
	size_t cap = fz_u16(&in) % 4096, n;
	const uint8_t *idx = fz_bytes(&in, in.n, &n);
	uint8_t *copy = malloc(n + 1);
	char dir[PATH_MAX], topic[PATH_MAX + 8], seg[PATH_MAX + 64], path[PATH_MAX + 64], name[32];
	sb_index *ix;
	int64_t max_ts;

	memcpy(copy, idx, n);
	if ((mode & 1) && n >= SB_IDX_HDR) {
		sb_put32(copy + 32, sb_crc32c(0, copy + SB_IDX_HDR, n - SB_IDX_HDR));
		sb_put32(copy + 36, sb_crc32c(0, copy, 36));
	}
	snprintf(dir, sizeof dir, "%s/store", fz_scratch());
	snprintf(topic, sizeof topic, "%s/t", dir);
	fz_rmtree(dir);
	FZ_CHECK(mkdir(dir, 0755) == 0 && mkdir(topic, 0755) == 0, "mkdir");
	sb_seg_name(name, FZ_SAMPLE_BASE, SB_SEG_SUFFIX);
	snprintf(seg, sizeof seg, "%s/%s", topic, name);
	fz_write(seg, s->seg, s->len);
	sb_seg_name(name, FZ_SAMPLE_BASE, SB_IDX_SUFFIX);
	snprintf(path, sizeof path, "%s/%s", topic, name);
	fz_write(path, copy, n);

	if (sb_index_load(sb_io_default(), path, FZ_SAMPLE_BASE, (uint32_t)s->len, 0, cap, &ix, &max_ts) == 0) {
		check_loaded(ix, copy, s, mode & 1);
		sb_index_free(ix);
	}
	if (mode & 2) {
		/* seal the sample: an empty segment after it */
		uint8_t h2[SB_SEG_HDR];
		sb_seg_hdr sh = {.base_offset = FZ_SAMPLE_BASE + FZ_SAMPLE_RECORDS,
				 .base_stream = FZ_SAMPLE_STREAM + s->stream[FZ_SAMPLE_RECORDS - 1] + (uint32_t)((FZ_SAMPLE_RECORDS - 1) * 37 % 301)};
		sb_seg_hdr_encode(h2, &sh);
		sb_seg_name(name, sh.base_offset, SB_SEG_SUFFIX);
		snprintf(path, sizeof path, "%s/%s", topic, name);
		fz_write(path, h2, sizeof h2);
		check_store(dir, s);
	}
	fz_rmtree(dir);
	free(copy);
	return 0;
}
