/*
 * codec.c - encode/decode of the structures described in format.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

/* The header block of r at dst (sb_hdrs_size(r) bytes). */
__attribute__((noinline, cold)) static void hdrs_encode(uint8_t *dst, const sb_record_in *r)
{
	uint8_t *q = dst + SB_HDRS_AT_FIRST;

	sb_put16(dst + SB_HDRS_AT_COUNT, (uint16_t)r->n_headers);
	for (uint32_t i = 0; i < r->n_headers; i++) {
		const sb_header *h = &r->headers[i];
		q[SB_HDR_AT_NAME_LEN] = (uint8_t)h->name_len;
		sb_put16(q + SB_HDR_AT_VAL_LEN, (uint16_t)h->value_len);
		memcpy(q + SB_HDR_AT_NAME, h->name, h->name_len);
		if (h->value_len)
			memcpy(q + SB_HDR_AT_NAME + h->name_len, h->value, h->value_len);
		q += SB_HDR_AT_NAME + h->name_len + h->value_len;
	}
}

size_t sb_rec_encode(uint8_t *dst, uint64_t offset, int64_t ts, const sb_record_in *r)
{
	size_t size = sb_rec_size(r->key_len, r->value_len);
	uint16_t flags = (uint16_t)(r->flags & ~SB_REC_HEADERS);

	if (r->n_headers) {
		hdrs_encode(dst + size, r);
		size += sb_hdrs_size(r);
		flags |= SB_REC_HEADERS;
	}
	sb_put32(dst + SB_REC_AT_SIZE, (uint32_t)size);
	sb_put64(dst + SB_REC_AT_OFFSET, offset);
	sb_put64(dst + SB_REC_AT_TS, (uint64_t)ts);
	sb_put16(dst + SB_REC_AT_FLAGS, flags);
	sb_put16(dst + SB_REC_AT_KEY_LEN, (uint16_t)r->key_len);
	sb_put32(dst + SB_REC_AT_VAL_LEN, r->value_len);
	if (r->key_len)
		memcpy(dst + SB_REC_AT_KEY, r->key, r->key_len);
	if (r->value_len)
		memcpy(dst + SB_REC_AT_KEY + r->key_len, r->value, r->value_len);
	sb_put32(dst + SB_REC_AT_CRC, sb_crc32c(0, dst + SB_REC_AT_SIZE, size - SB_REC_AT_SIZE));
	return size;
}

int sb_headers_check(const sb_header *h, size_t n)
{
	size_t bytes = SB_HDRS_AT_FIRST;

	if (n > SB_HEADERS_MAX_COUNT)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (!h[i].name_len || h[i].name_len > SB_HDR_NAME_MAX || memchr(h[i].name, 0, h[i].name_len))
			return -EINVAL;
		if (h[i].value_len > SB_HDR_VALUE_MAX)
			return -E2BIG;
		bytes += SB_HDR_AT_NAME + h[i].name_len + h[i].value_len;
		for (size_t j = 0; j < i; j++)
			if (h[j].name_len == h[i].name_len && !memcmp(h[j].name, h[i].name, h[i].name_len))
				return -EINVAL;
	}
	return n && bytes > SB_HDRS_MAX ? -E2BIG : 0;
}

int sb_headers_next(const void *block, size_t len, size_t *pos, sb_header *h)
{
	const uint8_t *b = block;
	size_t p = *pos ? *pos : SB_HDRS_AT_FIRST;

	if (len == 0 || p == len)
		return 0;
	if (p < SB_HDRS_AT_FIRST || p > len || len - p < SB_HDR_AT_NAME)
		return SB_ECORRUPT;
	uint32_t nl = b[p + SB_HDR_AT_NAME_LEN], vl = sb_get16(b + p + SB_HDR_AT_VAL_LEN);
	if (!nl || len - p - SB_HDR_AT_NAME < (size_t)nl + vl)
		return SB_ECORRUPT;
	h->name = (const char *)b + p + SB_HDR_AT_NAME;
	h->name_len = nl;
	h->value = b + p + SB_HDR_AT_NAME + nl;
	h->value_len = vl;
	*pos = p + SB_HDR_AT_NAME + nl + vl;
	return 1;
}

int sb_rec_tombstone_valid(const sb_rec_hdr *h)
{
	return !(h->flags & SB_REC_TOMBSTONE) || (h->key_len && !h->value_len);
}

int sb_hdrs_valid(const uint8_t *p, size_t len)
{
	size_t pos = 0, n = 0;
	sb_header h;
	int r;

	if (len < SB_HDRS_MIN || len > SB_HDRS_MAX)
		return 0;
	while ((r = sb_headers_next(p, len, &pos, &h)) == 1) {
		if (memchr(h.name, 0, h.name_len))
			return 0;
		n++;
	}
	return r == 0 && n == sb_get16(p + SB_HDRS_AT_COUNT) && n <= SB_HEADERS_MAX_COUNT;
}

size_t sb_record_size(const sb_record_in *r)
{
	return sb_rec_size_in(r);
}

size_t sb_record_encode(void *dst, size_t cap, uint64_t offset, int64_t ts_ns, const sb_record_in *r)
{
	if (r->key_len > SB_KEY_MAX || sb_headers_check(r->headers, r->n_headers) || sb_record_size(r) > cap)
		return 0;
	return sb_rec_encode(dst, offset, ts_ns, r);
}

void sb_rec_hdr_encode(uint8_t dst[SB_REC_HDR], const sb_rec_hdr *h)
{
	sb_put32(dst + SB_REC_AT_CRC, h->crc);
	sb_put32(dst + SB_REC_AT_SIZE, h->size);
	sb_put64(dst + SB_REC_AT_OFFSET, h->offset);
	sb_put64(dst + SB_REC_AT_TS, (uint64_t)h->timestamp_ns);
	sb_put16(dst + SB_REC_AT_FLAGS, h->flags);
	sb_put16(dst + SB_REC_AT_KEY_LEN, h->key_len);
	sb_put32(dst + SB_REC_AT_VAL_LEN, h->value_len);
}

int sb_rec_decode(const uint8_t *p, size_t avail, int check_crc, sb_rec_hdr *h)
{
	return sb_rec_decode_v(p, avail, SB_FORMAT_VERSION, check_crc, h);
}

int sb_rec_decode_v(const uint8_t *p, size_t avail, unsigned version, int check_crc, sb_rec_hdr *h)
{
	sb_rec_hdr t;

	if (avail < SB_REC_AT_OFFSET) {
		/* Too short for even crc+size: zeros are the end, else torn. */
		for (size_t i = 0; i < avail; i++)
			if (p[i])
				return SB_REC_TORN;
		return SB_REC_END;
	}
	t.crc = sb_get32(p + SB_REC_AT_CRC);
	t.size = sb_get32(p + SB_REC_AT_SIZE);
	if (t.size == 0)
		return t.crc == 0 ? SB_REC_END : SB_REC_BAD;
	if (t.size < SB_REC_HDR || t.size > SB_SEG_MAX_BYTES)
		return SB_REC_BAD;
	if (avail < SB_REC_HDR)
		return SB_REC_TORN;
	t.offset = sb_get64(p + SB_REC_AT_OFFSET);
	t.timestamp_ns = (int64_t)sb_get64(p + SB_REC_AT_TS);
	t.flags = sb_get16(p + SB_REC_AT_FLAGS);
	t.key_len = sb_get16(p + SB_REC_AT_KEY_LEN);
	t.value_len = sb_get32(p + SB_REC_AT_VAL_LEN);
	uint64_t body = (uint64_t)SB_REC_HDR + t.key_len + t.value_len;
	if (t.size < body)
		return SB_REC_BAD;
	t.hdrs_len = t.size - (uint32_t)body;
	/* Only a v3 record with the flag has a header block (format.h). */
	if (version >= 3 && (t.flags & SB_REC_HEADERS) ? t.hdrs_len < SB_HDRS_MIN || t.hdrs_len > SB_HDRS_MAX
						      : t.hdrs_len != 0)
		return SB_REC_BAD;
	if (t.size > avail)
		return SB_REC_TORN;
	if (t.flags & ~(version >= 3 ? SB_REC_KNOWN_FLAGS : SB_REC_KNOWN_FLAGS_V2)) {
		/* A flag this version does not know (a newer writer, or damage
		 * under a good CRC): never taken for a plain record. */
		*h = t;
		return SB_REC_BAD;
	}
	if (check_crc && sb_crc32c(0, p + SB_REC_AT_SIZE, t.size - SB_REC_AT_SIZE) != t.crc) {
		*h = t;
		return SB_REC_BAD;
	}
	if (check_crc && t.hdrs_len && !sb_hdrs_valid(p + sb_rec_hdrs_at(&t), t.hdrs_len)) {
		*h = t; /* a good CRC over a block that does not parse */
		return SB_REC_BAD;
	}
	if (check_crc && !sb_rec_tombstone_valid(&t)) {
		*h = t; /* a good CRC over a tombstone with a payload or no key */
		return SB_REC_BAD;
	}
	*h = t;
	return SB_REC_OK;
}

void sb_seg_hdr_encode(uint8_t dst[SB_SEG_HDR], const sb_seg_hdr *h)
{
	memset(dst, 0, SB_SEG_HDR);
	sb_put32(dst + SB_FH_MAGIC, SB_SEG_MAGIC);
	sb_put16(dst + SB_FH_VERSION, SB_FORMAT_VERSION);
	sb_put16(dst + SB_FH_SIZE, SB_SEG_HDR);
	sb_put64(dst + SB_SEG_AT_BASE, h->base_offset);
	sb_put64(dst + SB_SEG_AT_STREAM, h->base_stream);
	sb_put32(dst + SB_SEG_AT_SPAN, h->span);
	sb_put32(dst + SB_SEG_AT_CRC, sb_crc32c(0, dst, SB_SEG_AT_CRC));
}

/* Shared check of the magic/version/size/crc words of a 28+4-byte header. */
static int hdr_check(const uint8_t *src, uint32_t magic, uint16_t size)
{
	if (sb_get32(src + SB_FH_MAGIC) != magic || sb_get16(src + SB_FH_SIZE) != size ||
	    sb_crc32c(0, src, size - 4u) != sb_get32(src + size - 4u))
		return SB_ECORRUPT;
	if (sb_get16(src + SB_FH_VERSION) < SB_FORMAT_MIN_VERSION ||
	    sb_get16(src + SB_FH_VERSION) > SB_FORMAT_VERSION)
		return SB_EVERSION;
	return 0;
}

int sb_seg_hdr_decode(const uint8_t src[SB_SEG_HDR], sb_seg_hdr *h)
{
	int rc = hdr_check(src, SB_SEG_MAGIC, SB_SEG_HDR);

	if (rc)
		return rc;
	if (sb_get64(src + SB_SEG_AT_STREAM) > SB_STREAM_MAX)
		return SB_ECORRUPT; /* stream positions in it would wrap */
	uint16_t version = sb_get16(src + SB_FH_VERSION);
	uint64_t base = sb_get64(src + SB_SEG_AT_BASE);
	uint32_t span = version >= 3 ? sb_get32(src + SB_SEG_AT_SPAN) : 0;
	if (span > UINT64_MAX - base)
		return SB_ECORRUPT; /* a compacted segment's next offset would wrap */
	h->base_offset = base;
	h->base_stream = sb_get64(src + SB_SEG_AT_STREAM);
	h->version = version;
	h->span = span;
	return 0;
}

int sb_seg_hdr_torn(const uint8_t src[SB_SEG_HDR], uint64_t base)
{
	return sb_get32(src + SB_FH_MAGIC) == SB_SEG_MAGIC && sb_get16(src + SB_FH_SIZE) == SB_SEG_HDR &&
	       sb_get64(src + SB_SEG_AT_BASE) == base && sb_get64(src + SB_SEG_AT_STREAM) <= SB_STREAM_MAX &&
	       sb_crc32c(0, src, SB_SEG_AT_CRC) != sb_get32(src + SB_SEG_AT_CRC);
}

void sb_idx_hdr_encode(uint8_t dst[SB_IDX_HDR], const sb_idx_hdr *h)
{
	memset(dst, 0, SB_IDX_HDR);
	sb_put32(dst + SB_FH_MAGIC, SB_IDX_MAGIC);
	sb_put16(dst + SB_FH_VERSION, SB_FORMAT_VERSION);
	sb_put16(dst + SB_FH_SIZE, SB_IDX_HDR);
	sb_put64(dst + SB_IDX_AT_BASE, h->base_offset);
	sb_put32(dst + SB_IDX_AT_COUNT, h->count);
	sb_put32(dst + SB_IDX_AT_SEG_LEN, h->seg_len);
	sb_put64(dst + SB_IDX_AT_MAX_TS, (uint64_t)h->max_ts);
	sb_put32(dst + SB_IDX_AT_ECRC, h->entries_crc);
	sb_put32(dst + SB_IDX_AT_CRC, sb_crc32c(0, dst, SB_IDX_AT_CRC));
}

int sb_idx_hdr_decode(const uint8_t src[SB_IDX_HDR], sb_idx_hdr *h)
{
	int rc = hdr_check(src, SB_IDX_MAGIC, SB_IDX_HDR);

	if (rc)
		return rc;
	h->base_offset = sb_get64(src + SB_IDX_AT_BASE);
	h->count = sb_get32(src + SB_IDX_AT_COUNT);
	h->seg_len = sb_get32(src + SB_IDX_AT_SEG_LEN);
	h->max_ts = (int64_t)sb_get64(src + SB_IDX_AT_MAX_TS);
	h->entries_crc = sb_get32(src + SB_IDX_AT_ECRC);
	return 0;
}

void sb_meta_encode(uint8_t dst[SB_META_SIZE], uint64_t start)
{
	memset(dst, 0, SB_META_SIZE);
	sb_put32(dst + SB_FH_MAGIC, SB_META_MAGIC);
	sb_put16(dst + SB_FH_VERSION, SB_FORMAT_VERSION);
	sb_put16(dst + SB_FH_SIZE, SB_META_SIZE);
	sb_put64(dst + SB_META_AT_START, start);
	sb_put32(dst + SB_META_AT_CRC, sb_crc32c(0, dst, SB_META_AT_CRC));
}

int sb_meta_decode(const uint8_t src[SB_META_SIZE], uint64_t *start)
{
	int rc = hdr_check(src, SB_META_MAGIC, SB_META_SIZE);

	if (rc)
		return rc;
	*start = sb_get64(src + SB_META_AT_START);
	return 0;
}

void sb_clean_encode(uint8_t dst[SB_CLEAN_SIZE], const sb_clean_rec *c)
{
	memset(dst, 0, SB_CLEAN_SIZE);
	sb_put32(dst + SB_FH_MAGIC, SB_CLEAN_MAGIC);
	sb_put16(dst + SB_FH_VERSION, SB_FORMAT_VERSION);
	sb_put16(dst + SB_FH_SIZE, SB_CLEAN_SIZE);
	sb_put64(dst + SB_CLEAN_AT_BASE, c->last_base);
	sb_put64(dst + SB_CLEAN_AT_LEN, c->last_len);
	sb_put32(dst + SB_CLEAN_AT_CRC, sb_crc32c(0, dst, SB_CLEAN_AT_CRC));
}

int sb_clean_decode(const uint8_t src[SB_CLEAN_SIZE], sb_clean_rec *c)
{
	int rc = hdr_check(src, SB_CLEAN_MAGIC, SB_CLEAN_SIZE);

	if (rc)
		return rc;
	c->last_base = sb_get64(src + SB_CLEAN_AT_BASE);
	c->last_len = sb_get64(src + SB_CLEAN_AT_LEN);
	return 0;
}

void sb_seg_name(char *buf, uint64_t base, const char *suffix)
{
	snprintf(buf, 32, "%020llu%s", (unsigned long long)base, suffix);
}

int sb_seg_name_parse(const char *name, const char *suffix, uint64_t *base)
{
	uint64_t v = 0;

	for (int i = 0; i < SB_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (strcmp(name + SB_NAME_DIGITS, suffix) != 0)
		return -EINVAL;
	*base = v;
	return 0;
}
