/*
 * codec.h - encode and decode the on-disk structures of format.h. Shared by
 * the writer, the reader and `streambus verify`.
 */
#ifndef SB_CODEC_H
#define SB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "sb_store.h"

/* CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
 * Start with crc = 0; feed the result back to continue. */
uint32_t sb_crc32c(uint32_t crc, const void *p, size_t n);

/*
 * One record to copy out and check: its payload (or the part of it served)
 * goes from src to dst, and its CRC is computed over exactly what is used:
 * the header bytes [4, 32) as the reader decoded them (hdr), the key, the
 * payload bytes before the served part (pre), the served bytes as they are
 * stored in dst, and the payload bytes after it (post). So bytes served are
 * bytes checked, even if the file changes under a mapping meanwhile.
 */
typedef struct sb_crc_copy {
	const uint8_t *hdr;
	const uint8_t *key;
	const uint8_t *pre;
	const uint8_t *src;
	uint8_t *dst;
	const uint8_t *post;
	uint32_t key_len, pre_len, len, post_len;
	uint32_t crc;           /* the record's CRC field */
} sb_crc_copy;
/* Copy and check r[0..n) in order: the index of the first record whose
 * CRC does not hold, or n. (Records after that one may be copied too.) */
size_t sb_crc32c_copy_check(const sb_crc_copy *r, size_t n);

typedef struct sb_rec_hdr {
	uint32_t crc;
	uint32_t size;      /* whole record, header included */
	uint64_t offset;
	int64_t timestamp_ns;
	uint16_t flags;
	uint16_t key_len;
	uint32_t value_len;
	uint32_t hdrs_len;  /* v3: the header block after the value (0: none) */
} sb_rec_hdr;

/* Bytes one record of this key and value (and no headers) takes in a segment. */
static inline size_t sb_rec_size(uint32_t key_len, uint32_t value_len)
{
	return (size_t)SB_REC_HDR + key_len + value_len;
}
/* Bytes of r's encoded header block (0 without headers; see format.h). */
static inline size_t sb_hdrs_size(const sb_record_in *r)
{
	size_t b = SB_HDRS_AT_FIRST;

	if (!r->n_headers)
		return 0;
	for (uint32_t i = 0; i < r->n_headers; i++)
		b += SB_HDR_AT_NAME + (size_t)r->headers[i].name_len + r->headers[i].value_len;
	return b;
}
/* Bytes record r takes in a segment. */
static inline size_t sb_rec_size_in(const sb_record_in *r)
{
	return sb_rec_size(r->key_len, r->value_len) + sb_hdrs_size(r);
}

/* Where the value of a record with header h starts, from the record's start. */
static inline uint32_t sb_rec_value_at(const sb_rec_hdr *h)
{
	return SB_REC_AT_KEY + h->key_len;
}
/* Where its header block starts (v3; h->hdrs_len bytes). */
static inline uint32_t sb_rec_hdrs_at(const sb_rec_hdr *h)
{
	return SB_REC_AT_KEY + h->key_len + h->value_len;
}

/*
 * The framing of the record at p (avail bytes readable there, at least
 * SB_REC_HDR), from its first SB_REC_HDR bytes alone: its crc, size,
 * offset, timestamp, flags and lengths into *h. 1 when the lengths add up
 * to its size (with a header block of SB_HDRS_MIN..SB_HDRS_MAX bytes when
 * the flags say it has one, none otherwise) and it fits in avail, else 0.
 * What a reader checks of each record it steps over; no CRC, no check of
 * the other flags.
 */
static inline int sb_rec_frame(const uint8_t *p, uint64_t avail, sb_rec_hdr *h)
{
	h->crc = sb_get32(p + SB_REC_AT_CRC);
	h->size = sb_get32(p + SB_REC_AT_SIZE);
	h->offset = sb_get64(p + SB_REC_AT_OFFSET);
	h->timestamp_ns = (int64_t)sb_get64(p + SB_REC_AT_TS);
	h->flags = sb_get16(p + SB_REC_AT_FLAGS);
	h->key_len = sb_get16(p + SB_REC_AT_KEY_LEN);
	h->value_len = sb_get32(p + SB_REC_AT_VAL_LEN);
	uint64_t body = (uint64_t)SB_REC_HDR + h->key_len + h->value_len;
	if (h->size < body || h->size > avail)
		return 0;
	h->hdrs_len = h->size - (uint32_t)body;
	if (h->flags & SB_REC_HEADERS)
		return h->hdrs_len >= SB_HDRS_MIN && h->hdrs_len <= SB_HDRS_MAX;
	return h->hdrs_len == 0;
}

/* Encode record r at `offset` into dst (sb_rec_size_in() bytes; its headers
 * passed sb_headers_check()). Returns the size. */
size_t sb_rec_encode(uint8_t *dst, uint64_t offset, int64_t ts, const sb_record_in *r);
/* Is the header block [p, p + len) well formed (format.h)? 1 or 0. */
int sb_hdrs_valid(const uint8_t *p, size_t len);
/* A record flagged a tombstone has a key and no payload (format.h); 1 if h
 * is no tombstone or such a one, 0 if malformed (damage under a good CRC). */
int sb_rec_tombstone_valid(const sb_rec_hdr *h);

enum {
	SB_REC_OK = 0,     /* a whole record with a good CRC */
	SB_REC_END = 1,    /* zeros: the end of the written part */
	SB_REC_TORN = 2,   /* size runs past the available bytes */
	SB_REC_BAD = 3,    /* inconsistent header, unknown flags or CRC mismatch */
};
/*
 * Decode the record at p with `avail` bytes after it, as a segment of format
 * version `version` holds it (flags that version does not define are
 * damage). check_crc: verify the CRC over the whole record, and that its
 * header block parses. Returns SB_REC_*; *h is filled when the header
 * itself is sane (OK, and BAD from unknown flags, a CRC mismatch or a bad
 * header block), untouched otherwise.
 */
int sb_rec_decode_v(const uint8_t *p, size_t avail, unsigned version, int check_crc, sb_rec_hdr *h);
/* The same for the current version (SB_FORMAT_VERSION). */
int sb_rec_decode(const uint8_t *p, size_t avail, int check_crc, sb_rec_hdr *h);

/* The 32 header bytes of *h, as in a segment. A reader checks the CRC over
 * the header re-encoded from what it decoded, so that the check covers
 * exactly the values it goes by. */
void sb_rec_hdr_encode(uint8_t dst[SB_REC_HDR], const sb_rec_hdr *h);

typedef struct sb_seg_hdr {
	uint64_t base_offset;
	uint64_t base_stream;
	unsigned version;   /* decoded: SB_FORMAT_MIN_VERSION..SB_FORMAT_VERSION */
	uint32_t span;      /* compacted: next - base offset; 0: not compacted */
} sb_seg_hdr;
/* Encoded with version SB_FORMAT_VERSION, whatever h->version says. */
void sb_seg_hdr_encode(uint8_t dst[SB_SEG_HDR], const sb_seg_hdr *h);
/* 0, SB_ECORRUPT (magic/CRC/size, or a base stream pos past SB_STREAM_MAX)
 * or SB_EVERSION (a version outside SB_FORMAT_MIN_VERSION..SB_FORMAT_VERSION);
 * *h untouched on failure. The index, meta and clean decoders below accept
 * the same versions. */
int sb_seg_hdr_decode(const uint8_t src[SB_SEG_HDR], sb_seg_hdr *h);
/* A header torn while rewritten in place (format.h, docs/FORMAT.md
 * "Recovery"): the bytes such a rewrite leaves alone are a segment
 * header's (magic, size, base offset `base`, a stream position within
 * bounds) and its CRC fails. */
int sb_seg_hdr_torn(const uint8_t src[SB_SEG_HDR], uint64_t base);

typedef struct sb_idx_entry {
	uint32_t rel_offset;
	uint32_t pos;
	uint32_t rel_stream;
} sb_idx_entry;

typedef struct sb_idx_hdr {
	uint64_t base_offset;
	uint32_t count;
	uint32_t seg_len;
	int64_t max_ts;
	uint32_t entries_crc;
} sb_idx_hdr;
void sb_idx_hdr_encode(uint8_t dst[SB_IDX_HDR], const sb_idx_hdr *h);
int sb_idx_hdr_decode(const uint8_t src[SB_IDX_HDR], sb_idx_hdr *h);
static inline void sb_idx_entry_encode(uint8_t dst[SB_IDX_ENTRY], const sb_idx_entry *e)
{
	sb_put32(dst + SB_IE_AT_OFFSET, e->rel_offset);
	sb_put32(dst + SB_IE_AT_POS, e->pos);
	sb_put32(dst + SB_IE_AT_STREAM, e->rel_stream);
}
static inline void sb_idx_entry_decode(const uint8_t src[SB_IDX_ENTRY], sb_idx_entry *e)
{
	e->rel_offset = sb_get32(src + SB_IE_AT_OFFSET);
	e->pos = sb_get32(src + SB_IE_AT_POS);
	e->rel_stream = sb_get32(src + SB_IE_AT_STREAM);
}

void sb_meta_encode(uint8_t dst[SB_META_SIZE], uint64_t start);
int sb_meta_decode(const uint8_t src[SB_META_SIZE], uint64_t *start);

typedef struct sb_clean_rec {
	uint64_t last_base;
	uint64_t last_len;
} sb_clean_rec;
void sb_clean_encode(uint8_t dst[SB_CLEAN_SIZE], const sb_clean_rec *c);
int sb_clean_decode(const uint8_t src[SB_CLEAN_SIZE], sb_clean_rec *c);

/* "%020llu" + suffix into buf (at least 32 bytes). */
void sb_seg_name(char *buf, uint64_t base, const char *suffix);
/* Parse a 20-digit name with the given suffix; 0 or -EINVAL. */
int sb_seg_name_parse(const char *name, const char *suffix, uint64_t *base);

/* Are the n bytes at p all zero (what follows the last record of a
 * segment with preallocated space)? */
static inline int sb_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

#endif
