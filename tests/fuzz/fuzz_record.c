/*
 * fuzz_record - the record decoder and the header decoders of store/codec.c
 * on arbitrary bytes.
 *
 * Properties: no crash and no read outside the input (ASan: the input is
 * copied to a buffer of exactly its size); a record that decodes with a good
 * CRC re-encodes (its headers walked with sb_headers_next) to exactly the
 * same bytes, decodes the same without the CRC check, decodes as a version 2
 * record only without headers, and is TORN one byte short; a record encoded
 * from fields and headers taken from the input decodes to those fields and
 * headers and stops decoding (never OK) when any one of its bytes changes; each header (segment, index, meta, clean) that
 * decodes re-encodes to a header that decodes to the same fields; a segment
 * file name that parses is the name printed for its base.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "util.h"

/* A record at the start of p: the properties of a decode. */
static void check_decode(const uint8_t *p, size_t n)
{
	sb_rec_hdr h, h2;
	int rc = sb_rec_decode(p, n, 1, &h);
	int rc2 = sb_rec_decode(p, n, 0, &h2);

	FZ_CHECK(rc >= SB_REC_OK && rc <= SB_REC_BAD, "decode returned %d", rc);
	if (rc == SB_REC_OK) {
		FZ_CHECK(rc2 == SB_REC_OK && !memcmp(&h, &h2, sizeof h), "CRC check changes the header");
		FZ_CHECK(h.size <= n && h.size >= SB_REC_HDR, "size %u outside [32, %zu]", h.size, n);
		FZ_CHECK(h.size == SB_REC_HDR + h.key_len + h.value_len + h.hdrs_len, "size is not the sum");
		FZ_CHECK(!(h.flags & ~SB_REC_KNOWN_FLAGS), "unknown flags 0x%04x decode", h.flags);
		FZ_CHECK(!h.hdrs_len == !(h.flags & SB_REC_HEADERS), "header block without its flag");
		FZ_CHECK(sb_rec_tombstone_valid(&h), "a malformed tombstone decodes");
		/* the headers, walked */
		static sb_header hs[SB_HEADERS_MAX_COUNT + 1];
		size_t nh = 0, hp = 0;
		int hr;
		const uint8_t *blk = p + sb_rec_hdrs_at(&h);
		while (nh <= SB_HEADERS_MAX_COUNT && (hr = sb_headers_next(blk, h.hdrs_len, &hp, &hs[nh])) == 1)
			nh++;
		FZ_CHECK(hr == 0 && nh <= SB_HEADERS_MAX_COUNT, "a decoded header block does not walk");
		FZ_CHECK(!h.hdrs_len || nh == sb_get16(blk + SB_HDRS_AT_COUNT), "header count");
		FZ_CHECK(sb_headers_check(hs, nh) == 0 || sb_headers_check(hs, nh) == -EINVAL,
			 "decoded headers out of bounds"); /* repeated names are not the decoder's */
		uint8_t *re = malloc(h.size);
		sb_record_in r = {.key = p + SB_REC_HDR, .key_len = h.key_len,
				  .value = p + SB_REC_HDR + h.key_len, .value_len = h.value_len,
				  .flags = h.flags, .headers = hs, .n_headers = (uint32_t)nh};
		FZ_CHECK(sb_rec_size_in(&r) == h.size, "encoded size of the decoded record");
		FZ_CHECK(sb_rec_encode(re, h.offset, h.timestamp_ns, &r) == h.size, "encode size");
		FZ_CHECK(!memcmp(re, p, h.size), "a decoded record re-encodes differently");
		free(re);
		/* version 2: the same record, unless it has headers */
		int v2 = sb_rec_decode_v(p, n, 2, 1, &h2);
		FZ_CHECK(h.hdrs_len ? v2 == SB_REC_BAD : v2 == SB_REC_OK, "as version 2: %d", v2);
		/* one byte short: torn, never OK */
		uint8_t *shorter = malloc(h.size - 1);
		memcpy(shorter, p, h.size - 1);
		FZ_CHECK(sb_rec_decode(shorter, h.size - 1, 1, &h2) == SB_REC_TORN,
			 "a record one byte short is not torn");
		free(shorter);
	} else if (rc == SB_REC_BAD) {
		/* without the CRC check: OK only if the CRC was the problem */
		FZ_CHECK(rc2 == SB_REC_BAD || rc2 == SB_REC_OK, "CRC check changed BAD to %d", rc2);
	} else {
		FZ_CHECK(rc2 == rc, "CRC check changed %d to %d", rc, rc2);
	}
}

/* Encode a record from fields (and headers) in the input, decode it back. */
static void check_roundtrip(fz_in *in)
{
	uint64_t off = fz_u64(in);
	int64_t ts = (int64_t)fz_u64(in);
	uint16_t flags = fz_u16(in);
	size_t klen, vlen;
	const uint8_t *key = fz_bytes(in, fz_u8(in), &klen);
	const uint8_t *val = fz_bytes(in, fz_u16(in), &vlen);
	unsigned flip = fz_u16(in);
	uint8_t mask = fz_u8(in) | 1;
	sb_header hs[8];
	size_t nh = fz_u8(in) % 9, k;
	for (size_t i = 0; i < nh; i++) {
		hs[i].name = (const char *)fz_bytes(in, fz_u8(in) % 16 + 1, &k);
		hs[i].name_len = (uint32_t)k;
		hs[i].value = fz_bytes(in, fz_u8(in), &k);
		hs[i].value_len = (uint32_t)k;
	}
	if (sb_headers_check(hs, nh))
		nh = 0; /* the store refuses these (EINVAL) */
	sb_record_in r = {.key = key, .key_len = (uint32_t)klen, .value = val,
			  .value_len = (uint32_t)vlen, .flags = flags, .headers = hs, .n_headers = (uint32_t)nh};
	size_t size = sb_rec_size_in(&r);
	uint8_t *b = malloc(size);
	sb_rec_hdr h;

	/* the encoder owns the headers bit */
	flags = (uint16_t)((flags & ~SB_REC_HEADERS) | (nh ? SB_REC_HEADERS : 0));
	FZ_CHECK(sb_rec_encode(b, off, ts, &r) == size, "encode size");
	if (flags & ~SB_REC_KNOWN_FLAGS) {
		/* the store never writes such a record (EINVAL), and never takes
		 * one on disk for a plain record */
		FZ_CHECK(sb_rec_decode(b, size, 1, &h) == SB_REC_BAD,
			 "a record with unknown flags 0x%04x decodes", flags);
		free(b);
		return;
	}
	if ((flags & SB_REC_TOMBSTONE) && (!klen || vlen)) {
		/* a tombstone with a payload or no key: the store never writes
		 * one (EINVAL), and takes one on disk for damage */
		FZ_CHECK(sb_rec_decode(b, size, 1, &h) == SB_REC_BAD, "a malformed tombstone decodes");
		free(b);
		return;
	}
	FZ_CHECK(sb_rec_decode(b, size, 1, &h) == SB_REC_OK, "an encoded record does not decode");
	FZ_CHECK(h.size == size && h.offset == off && h.timestamp_ns == ts && h.flags == flags &&
		 h.key_len == klen && h.value_len == vlen, "decoded fields differ from encoded");
	size_t hp = 0, i = 0;
	sb_header g;
	while (sb_headers_next(b + sb_rec_hdrs_at(&h), h.hdrs_len, &hp, &g) == 1) {
		FZ_CHECK(i < nh && g.name_len == hs[i].name_len && !memcmp(g.name, hs[i].name, g.name_len) &&
			 g.value_len == hs[i].value_len && !memcmp(g.value, hs[i].value, g.value_len),
			 "header %zu differs", i);
		i++;
	}
	FZ_CHECK(i == nh, "%zu headers decoded, %zu encoded", i, nh);
	b[flip % size] ^= mask;
	FZ_CHECK(sb_rec_decode(b, size, 1, &h) != SB_REC_OK,
		 "byte %zu changed (^%02x) and the record still decodes", flip % size, mask);
	free(b);
}

static void check_headers(const uint8_t *p, size_t n)
{
	uint8_t buf[64];

	if (n >= SB_SEG_HDR) {
		sb_seg_hdr h, h2;
		if (!sb_seg_hdr_decode(p, &h)) {
			FZ_CHECK(h.version >= SB_FORMAT_MIN_VERSION && h.version <= SB_FORMAT_VERSION,
				 "segment version %u", h.version);
			sb_seg_hdr_encode(buf, &h);
			FZ_CHECK(!sb_seg_hdr_decode(buf, &h2) && h.base_offset == h2.base_offset &&
				 h.base_stream == h2.base_stream && h2.version == SB_FORMAT_VERSION, "seg hdr");
		}
	}
	if (n >= SB_IDX_HDR) {
		sb_idx_hdr h, h2;
		memset(&h, 0, sizeof h);
		memset(&h2, 0, sizeof h2);
		if (!sb_idx_hdr_decode(p, &h)) {
			sb_idx_hdr_encode(buf, &h);
			FZ_CHECK(!sb_idx_hdr_decode(buf, &h2) && h.base_offset == h2.base_offset &&
				 h.count == h2.count && h.seg_len == h2.seg_len && h.max_ts == h2.max_ts &&
				 h.entries_crc == h2.entries_crc, "idx hdr");
		}
	}
	if (n >= SB_META_SIZE) {
		uint64_t s, s2;
		if (!sb_meta_decode(p, &s)) {
			sb_meta_encode(buf, s);
			FZ_CHECK(!sb_meta_decode(buf, &s2) && s == s2, "meta");
		}
	}
	if (n >= SB_CLEAN_SIZE) {
		sb_clean_rec c, c2;
		if (!sb_clean_decode(p, &c)) {
			sb_clean_encode(buf, &c);
			FZ_CHECK(!sb_clean_decode(buf, &c2) && !memcmp(&c, &c2, sizeof c), "clean");
		}
	}
}

static void check_name(const uint8_t *p, size_t n)
{
	char name[40], again[32];
	uint64_t base;
	size_t k = n < sizeof name - 1 ? n : sizeof name - 1;

	memcpy(name, p, k);
	name[k] = '\0';
	for (int i = 0; i < 2; i++) {
		const char *suffix = i ? SB_IDX_SUFFIX : SB_SEG_SUFFIX;
		if (sb_seg_name_parse(name, suffix, &base) == 0) {
			sb_seg_name(again, base, suffix);
			FZ_CHECK(!strcmp(again, name), "name %s parses as %llu", name,
				 (unsigned long long)base);
		}
	}
}

/* Fields from the encoded headers, encoded and decoded. */
static void check_header_roundtrip(fz_in *in)
{
	uint8_t buf[64];
	sb_seg_hdr s = {.base_offset = fz_u64(in), .base_stream = fz_u64(in), .version = SB_FORMAT_VERSION}, s2;
	sb_idx_hdr x = {.base_offset = fz_u64(in), .count = fz_u32(in), .seg_len = fz_u32(in),
			.max_ts = (int64_t)fz_u64(in), .entries_crc = fz_u32(in)}, x2;
	sb_clean_rec c = {fz_u64(in), fz_u64(in)}, c2;
	uint64_t m = fz_u64(in), m2;

	s.span = fz_u32(in);

	sb_seg_hdr_encode(buf, &s);
	if (s.base_stream > SB_STREAM_MAX) /* its stream positions would wrap */
		FZ_CHECK(sb_seg_hdr_decode(buf, &s2) == SB_ECORRUPT, "seg header past SB_STREAM_MAX decoded");
	else if (s.span > UINT64_MAX - s.base_offset) /* its next offset would wrap */
		FZ_CHECK(sb_seg_hdr_decode(buf, &s2) == SB_ECORRUPT, "seg header with a wrapping span decoded");
	else
		FZ_CHECK(!sb_seg_hdr_decode(buf, &s2) && !memcmp(&s, &s2, sizeof s), "seg roundtrip");
	sb_idx_hdr_encode(buf, &x);
	FZ_CHECK(!sb_idx_hdr_decode(buf, &x2) && x.count == x2.count && x.seg_len == x2.seg_len &&
		 x.base_offset == x2.base_offset && x.max_ts == x2.max_ts &&
		 x.entries_crc == x2.entries_crc, "idx roundtrip");
	sb_clean_encode(buf, &c);
	FZ_CHECK(!sb_clean_decode(buf, &c2) && !memcmp(&c, &c2, sizeof c), "clean roundtrip");
	sb_meta_encode(buf, m);
	FZ_CHECK(!sb_meta_decode(buf, &m2) && m == m2, "meta roundtrip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: any read past the end is an ASan report */
	uint8_t *p = malloc(size ? size : 1);
	fz_in in = {p, size};

	memcpy(p, data, size);
	check_decode(p, size);
	/* records back to back, as a segment holds them */
	for (size_t pos = 0; pos < size;) {
		sb_rec_hdr h;
		if (sb_rec_decode(p + pos, size - pos, 1, &h) != SB_REC_OK)
			break;
		pos += h.size;
		check_decode(p + pos, size - pos);
	}
	check_headers(p, size);
	check_name(p, size);
	check_roundtrip(&in);
	check_header_roundtrip(&in);
	free(p);
	return 0;
}
