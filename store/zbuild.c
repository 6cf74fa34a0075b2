/*
 * zbuild.c - writing compressed segments (from a sealed plain segment) and
 * writing them back as plain segments (a cut in recovery, or a compressed
 * segment that must become the log's active one). The format is in
 * format.h, "Compressed segment".
 */
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define ZDICT_STATIC_LINKING_ONLY /* ZDICT_trainFromBuffer_fastCover: exported by libzstd since 1.3.6 */
#include <zdict.h>
#include <zstd.h>

#include "fsutil.h"
#include "zseg_impl.h"

#define ZSTD_LEVEL 9 /* background work: 64 KiB blocks at 9 beat 128 KiB at 3 (docs/FORMAT.md) */
/* The dictionary: at most this big, and at most 1/64 of the segment. */
#define DICT_BYTES (64u << 10)
/* Payload sampled to train it: runs of SAMPLE bytes spread over the segment. */
#define SAMPLES_TOTAL (2u << 20)
#define SAMPLE (4u << 10)
/* The trainer: fastCover with fixed parameters. ZDICT_trainFromBuffer
 * searches k over several trainings, each with a 6 MiB frequency table
 * (f = 20), and compresses the samples to compare them: on 8 MiB segments
 * of the man-page corpus it cost as much CPU as compressing the segment
 * (~0.14 s each, load ~8), all of it beside the appenders. These (k the
 * value it settled on most often, f = 16: a 384 KiB table) train in
 * ~0.02 s with the same ratio (9.51x against 9.45x over 48 MiB in 64 KiB
 * blocks; BENCHMARKS.md, "Append with compression on", 2026-11-30). */
#define TRAIN_K 1024
#define TRAIN_D 8
#define TRAIN_F 16
#define TRAIN_ACCEL 10
/* Columns: flags, key lengths, value lengths, timestamps, header block
 * lengths (this one empty in a block without headers). */
#define NCOLS 5
#define COL_HDRS 4

typedef struct builder {
	const sb_io *io;
	int fd;
	unsigned codec;
	ZSTD_CCtx *cctx;
	ZSTD_CDict *cdict;           /* the segment's dictionary, if any */
	uint64_t pos;                /* where the next block goes */
	/* The block being gathered: its columns, keys, values and header
	 * blocks. */
	uint8_t *keys, *vals, *hdrs;
	size_t keys_len, vals_len, hdrs_len, keys_cap, vals_cap, hdrs_cap;
	unsigned features;           /* SB_ZSEG_F_HEADERS once a record has some */
	uint32_t n;
	uint64_t first_off, first_stream; /* of the block, relative */
	int64_t prev_ts;
	uint8_t *col[NCOLS];         /* the columns, gathered apart (the value
				      * lengths are coded at the flush) */
	uint32_t *vlen;              /* the block's value lengths */
	size_t vlen_cap;
	size_t meta_len[NCOLS], meta_cap[NCOLS];
	uint8_t *raw, *out;
	size_t raw_cap, out_cap;
	sb_zent *t;                  /* the table */
	size_t nt, tcap;
} builder;

static int put_bytes(uint8_t **p, size_t *len, size_t *cap, const void *src, size_t n)
{
	if (!n)
		return 0;
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < *len + n)
			c *= 2;
		uint8_t *b = realloc(*p, c);
		if (!b)
			return -ENOMEM;
		*p = b;
		*cap = c;
	}
	memcpy(*p + *len, src, n);
	*len += n;
	return 0;
}

static int put_varint(builder *b, int col, uint64_t v)
{
	uint8_t buf[10];
	size_t n = 0;

	do {
		buf[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			buf[n] |= 0x80;
		n++;
	} while (v);
	return put_bytes(&b->col[col], &b->meta_len[col], &b->meta_cap[col], buf, n);
}

static int flush_block(builder *b)
{
	size_t raw = 0, bound, stored;
	int rc;

	if (!b->n)
		return 0;
	/* Value lengths against the next newline (format.h): lines code 0. */
	for (uint32_t k = 0, at = 0; k < b->n; k++) {
		size_t left = b->vals_len - at;
		const uint8_t *nl = left ? memchr(b->vals + at, '\n', left) : NULL;
		int64_t pred = nl ? (int64_t)(nl - (b->vals + at)) + 1 : (int64_t)left;
		int64_t d = (int64_t)b->vlen[k] - pred;
		if ((rc = put_varint(b, 2, d >= 0 ? (uint64_t)d << 1 : ((uint64_t)(-d - 1) << 1) | 1)))
			return rc;
		at += b->vlen[k];
	}
	for (int c = 0; c < NCOLS; c++)
		raw += b->meta_len[c];
	raw += b->keys_len + b->vals_len + b->hdrs_len;
	if (raw > SB_ZBLOCK_MAX)
		return -EFBIG;
	if (raw > b->raw_cap) {
		uint8_t *r = realloc(b->raw, raw);
		if (!r)
			return -ENOMEM;
		b->raw = r;
		b->raw_cap = raw;
	}
	size_t at = 0;
	if (b->vals_len)
		memcpy(b->raw, b->vals, b->vals_len);
	at += b->vals_len;
	for (int c = 0; c < NCOLS; c++) {
		if (b->meta_len[c]) /* empty: the header column without headers */
			memcpy(b->raw + at, b->col[c], b->meta_len[c]);
		at += b->meta_len[c];
	}
	if (b->keys_len)
		memcpy(b->raw + at, b->keys, b->keys_len);
	at += b->keys_len;
	if (b->hdrs_len)
		memcpy(b->raw + at, b->hdrs, b->hdrs_len);
	bound = b->codec == SB_CODEC_LZ4 ? (size_t)LZ4_compressBound((int)raw) : ZSTD_compressBound(raw);
	if (bound > b->out_cap) {
		uint8_t *o = realloc(b->out, bound);
		if (!o)
			return -ENOMEM;
		b->out = o;
		b->out_cap = bound;
	}
	if (b->codec == SB_CODEC_LZ4) {
		int r = LZ4_compress_default((const char *)b->raw, (char *)b->out, (int)raw, (int)bound);
		if (r <= 0)
			return -EIO;
		stored = (size_t)r;
	} else {
		stored = b->cdict ? ZSTD_compress_usingCDict(b->cctx, b->out, bound, b->raw, raw, b->cdict)
				  : ZSTD_compressCCtx(b->cctx, b->out, bound, b->raw, raw, ZSTD_LEVEL);
		if (ZSTD_isError(stored))
			return -EIO;
	}
	if (b->pos + stored > SB_SEG_MAX_BYTES)
		return -EFBIG;
	if ((rc = sb_pwrite_full(b->io, b->fd, b->out, stored, (off_t)b->pos)))
		return rc;
	if (b->nt == b->tcap) {
		size_t c = b->tcap ? b->tcap * 2 : 64;
		sb_zent *t = realloc(b->t, c * sizeof(*t));
		if (!t)
			return -ENOMEM;
		b->t = t;
		b->tcap = c;
	}
	b->t[b->nt++] = (sb_zent){
		.rel_offset = (uint32_t)b->first_off, .rel_stream = (uint32_t)b->first_stream,
		.pos = (uint32_t)b->pos, .stored = (uint32_t)stored, .raw = (uint32_t)raw, .count = b->n,
		.stored_crc = sb_crc32c(0, b->out, stored), .raw_crc = sb_crc32c(0, b->raw, raw),
	};
	b->pos += stored;
	b->first_off += b->n;
	b->first_stream += b->vals_len;
	b->n = 0;
	b->keys_len = b->vals_len = b->hdrs_len = 0;
	for (int c = 0; c < NCOLS; c++)
		b->meta_len[c] = 0;
	b->prev_ts = 0;
	return 0;
}

/* Add one record (already checked), with its header block hdrs (h->hdrs_len
 * bytes) if it has one. */
static int add_rec(builder *b, const sb_rec_hdr *h, const uint8_t *key, const uint8_t *val, const uint8_t *hdrs)
{
	uint64_t d = (uint64_t)h->timestamp_ns - (uint64_t)b->prev_ts;
	int64_t sd = (int64_t)d;
	int rc;

	if (b->n == b->vlen_cap) {
		size_t c = b->vlen_cap ? b->vlen_cap * 2 : 1024;
		uint32_t *v = realloc(b->vlen, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->vlen = v;
		b->vlen_cap = c;
	}
	b->vlen[b->n] = h->value_len;
	if ((rc = put_varint(b, 0, h->flags)) || (rc = put_varint(b, 1, h->key_len)) ||
	    (rc = put_varint(b, 3, (d << 1) ^ (uint64_t)(sd >> 63))) ||
	    (rc = put_bytes(&b->keys, &b->keys_len, &b->keys_cap, key, h->key_len)) ||
	    (rc = put_bytes(&b->vals, &b->vals_len, &b->vals_cap, val, h->value_len)))
		return rc;
	if (h->hdrs_len) {
		if ((rc = put_varint(b, COL_HDRS, h->hdrs_len)) ||
		    (rc = put_bytes(&b->hdrs, &b->hdrs_len, &b->hdrs_cap, hdrs, h->hdrs_len)))
			return rc;
		b->features |= SB_ZSEG_F_HEADERS;
	}
	b->prev_ts = h->timestamp_ns;
	b->n++;
	return 0;
}

static void builder_free(builder *b)
{
	for (int c = 0; c < NCOLS; c++)
		free(b->col[c]);
	free(b->keys);
	free(b->hdrs);
	free(b->vals);
	free(b->raw);
	free(b->out);
	free(b->t);
	free(b->vlen);
	ZSTD_freeCDict(b->cdict);
	ZSTD_freeCCtx(b->cctx);
}

/* Write the table and then the header. */
static int finish(builder *b, sb_zhdr *h, uint64_t *stored)
{
	size_t tlen = b->nt * SB_ZSEG_ENTRY;
	uint8_t *tb = malloc(tlen ? tlen : 1), hb[SB_ZSEG_HDR];
	int rc;

	if (!tb)
		return -ENOMEM;
	for (size_t i = 0; i < b->nt; i++)
		sb_zent_encode(tb + i * SB_ZSEG_ENTRY, &b->t[i]);
	h->table_pos = b->pos;
	h->nblocks = (uint32_t)b->nt;
	h->table_crc = sb_crc32c(0, tb, tlen);
	h->features = b->features;
	rc = sb_pwrite_full(b->io, b->fd, tb, tlen, (off_t)b->pos);
	free(tb);
	if (rc)
		return rc;
	sb_zhdr_encode(hb, h);
	if ((rc = sb_pwrite_full(b->io, b->fd, hb, sizeof(hb), 0)))
		return rc;
	*stored = b->pos + tlen;
	return 0;
}

/*
 * Train a dictionary on runs of payloads spread over the plain segment
 * map[0, len) (its bytes as they are: a dictionary only helps or hurts the
 * ratio, and it is stored under its own CRC). Its length, 0 for none.
 */
static size_t train(const uint8_t *map, uint64_t len, uint8_t *dict, size_t cap)
{
	uint8_t *buf = malloc(SAMPLES_TOTAL + SAMPLE);
	size_t *sizes = malloc((SAMPLES_TOTAL / 64 + 2) * sizeof(*sizes)), n = 0, total = 0, r = 0;
	uint64_t stride = len / (SAMPLES_TOTAL / SAMPLE) + 1, pos = SB_SEG_HDR, next = SB_SEG_HDR;

	if (!buf || !sizes)
		goto out_free;
	sizes[0] = 0;
	while (pos + SB_REC_HDR <= len && total < SAMPLES_TOTAL && n < SAMPLES_TOTAL / 64) {
		sb_rec_hdr rh;
		if (!sb_rec_frame(map + pos, len - pos, &rh))
			break;
		uint32_t size = rh.size, kl = rh.key_len, vl = rh.value_len;
		if (pos >= next) {
			uint32_t take = vl < SAMPLE - sizes[n] ? vl : SAMPLE - sizes[n];
			memcpy(buf + total, map + pos + SB_REC_HDR + kl, take);
			total += take;
			sizes[n] += take;
			if (sizes[n] >= SAMPLE) {
				sizes[++n] = 0;
				next = pos + stride;
			}
		}
		pos += size;
	}
	if (sizes[n])
		n++;
	if (total >= 16 * cap && n >= 8) {
		ZDICT_fastCover_params_t p = {.k = TRAIN_K, .d = TRAIN_D, .f = TRAIN_F, .accel = TRAIN_ACCEL,
					      .zParams = {.compressionLevel = ZSTD_LEVEL}};
		r = ZDICT_trainFromBuffer_fastCover(dict, cap, buf, sizes, (unsigned)n, p);
		if (ZDICT_isError(r))
			r = 0;
	}
out_free:
	free(buf);
	free(sizes);
	return r;
}

int sb_zseg_build(const sb_io *io, int fd, const uint8_t *map, uint64_t len, unsigned codec,
		  uint32_t block_bytes, uint64_t *stored, char *why, size_t whycap)
{
	builder b = {.io = io, .fd = fd, .codec = codec, .pos = SB_ZSEG_HDR};
	uint8_t *rec = NULL;
	size_t rec_cap = 0;
	sb_seg_hdr sh;
	sb_rec_hdr rh;
	sb_zhdr h = {0};
	int rc;

	if ((codec != SB_CODEC_LZ4 && codec != SB_CODEC_ZSTD) || len < SB_SEG_HDR || len > SB_SEG_MAX_BYTES)
		return -EINVAL;
	if ((rc = sb_seg_hdr_decode(map, &sh))) {
		snprintf(why, whycap, "bad segment header");
		return rc;
	}
	if (codec == SB_CODEC_ZSTD && !(b.cctx = ZSTD_createCCtx()))
		return -ENOMEM;
	if (codec == SB_CODEC_ZSTD && len / 64 >= 4096) {
		size_t cap = len / 64 < DICT_BYTES ? (size_t)(len / 64) : DICT_BYTES;
		uint8_t *dict = malloc(cap);
		if (!dict) {
			rc = -ENOMEM;
			goto out_free;
		}
		h.dict_len = (uint32_t)train(map, len, dict, cap);
		if (h.dict_len) {
			h.dict_crc = sb_crc32c(0, dict, h.dict_len);
			b.cdict = ZSTD_createCDict(dict, h.dict_len, ZSTD_LEVEL);
			rc = b.cdict ? sb_pwrite_full(io, fd, dict, h.dict_len, SB_ZSEG_HDR) : -ENOMEM;
			b.pos += h.dict_len;
		}
		free(dict);
		if (rc)
			goto out_free;
	}
	h.base = sh.base_offset;
	h.base_stream = sh.base_stream;
	h.plain_len = len;
	h.codec = codec;
	h.first_ts = INT64_MAX;
	h.max_ts = INT64_MIN;
	uint64_t pos = SB_SEG_HDR, off = h.base, st = h.base_stream;
	while (pos < len) {
		/* Copy the record, then decode and check the copy: what goes
		 * into the block is what was checked. */
		uint32_t size = len - pos >= 8 ? sb_get32(map + pos + 4) : 0;
		if (size < SB_REC_HDR || size > len - pos) {
			snprintf(why, whycap, "byte %llu: bad record header", (unsigned long long)pos);
			rc = SB_ECORRUPT;
			goto out_free;
		}
		if (size > rec_cap) {
			size_t c = size < 65536 ? 65536 : size;
			uint8_t *r = realloc(rec, c);
			if (!r) {
				rc = -ENOMEM;
				goto out_free;
			}
			rec = r;
			rec_cap = c;
		}
		memcpy(rec, map + pos, size);
		if (sb_rec_decode_v(rec, size, sh.version, 1, &rh) != SB_REC_OK || rh.size != size ||
		    rh.offset != off) {
			snprintf(why, whycap, "byte %llu: damaged record (offset %llu)", (unsigned long long)pos,
				 (unsigned long long)off);
			rc = SB_ECORRUPT;
			goto out_free;
		}
		if ((rc = add_rec(&b, &rh, rec + SB_REC_AT_KEY, rec + sb_rec_value_at(&rh), rec + sb_rec_hdrs_at(&rh))))
			goto out_free;
		if (h.first_ts == INT64_MAX && off == h.base)
			h.first_ts = rh.timestamp_ns;
		if (rh.timestamp_ns > h.max_ts)
			h.max_ts = rh.timestamp_ns;
		if (b.vals_len + b.keys_len + b.hdrs_len >= block_bytes && (rc = flush_block(&b)))
			goto out_free;
		pos += size;
		off++;
		st += rh.value_len;
	}
	if ((rc = flush_block(&b)))
		goto out_free;
	if (off == h.base)
		h.first_ts = h.max_ts = 0;
	h.next = off;
	h.stream_end = st;
	rc = finish(&b, &h, stored);
out_free:
	free(rec);
	builder_free(&b);
	return rc;
}

/* Record r as a plain segment holds it, at dst; its size. */
static size_t plain_rec(uint8_t *dst, const sb_zrec *r)
{
	sb_record_in in = {.key = r->key, .key_len = r->key_len, .value = r->value, .value_len = r->value_len,
			   .flags = r->flags, .timestamp_ns = r->timestamp_ns};
	size_t n = sb_rec_encode(dst, r->offset, r->timestamp_ns, &in);

	if (!r->hdrs_len)
		return n;
	/* its header block as it was (checked when the block was decoded) */
	memcpy(dst + n, r->hdrs, r->hdrs_len);
	n += r->hdrs_len;
	sb_put32(dst + SB_REC_AT_SIZE, (uint32_t)n);
	sb_put16(dst + SB_REC_AT_FLAGS, r->flags);
	sb_put32(dst + SB_REC_AT_CRC, sb_crc32c(0, dst + SB_REC_AT_SIZE, n - SB_REC_AT_SIZE));
	return n;
}

/* Block i's records, plain, into buf (grown as needed); *at their bytes. */
static int block_plain(sb_zseg *z, uint32_t i, uint8_t **buf, size_t *cap, size_t *at)
{
	sb_zpin pin;
	sb_zrec r;
	int rc = sb_zseg_pin_block(z, i, &pin);

	if (rc)
		return rc;
	uint32_t n = sb_zpin_count(&pin);
	size_t need = (size_t)z->t[i].raw + (size_t)n * SB_REC_HDR;
	if (need > *cap) {
		uint8_t *nb = realloc(*buf, need);
		if (!nb) {
			sb_zseg_unpin(z, &pin);
			return -ENOMEM;
		}
		*buf = nb;
		*cap = need;
	}
	*at = 0;
	for (uint32_t k = 0; k < n; k++) {
		sb_zpin_rec(z, &pin, k, &r);
		*at += plain_rec(*buf + *at, &r);
	}
	sb_zseg_unpin(z, &pin);
	return 0;
}

int sb_zseg_write_block(sb_zseg *z, uint32_t i, const sb_io *io, int fd, uint64_t pos, uint64_t *bytes)
{
	uint8_t *buf = NULL;
	size_t cap = 0, at = 0;
	int rc = i < z->h.nblocks ? block_plain(z, i, &buf, &cap, &at) : -EINVAL;

	if (!rc && pos + at > SB_SEG_MAX_BYTES)
		rc = -EFBIG;
	if (!rc)
		rc = sb_pwrite_full(io, fd, buf, at, (off_t)pos);
	free(buf);
	if (!rc)
		*bytes = at;
	return rc;
}

int sb_zseg_write_plain(sb_zseg *z, uint32_t nblocks, const sb_io *io, int fd, uint64_t *len, uint32_t *bad)
{
	uint8_t hb[SB_SEG_HDR], *buf = NULL;
	size_t cap = 0, at;
	sb_seg_hdr sh = {.base_offset = z->h.base, .base_stream = z->h.base_stream};
	uint64_t pos = SB_SEG_HDR;
	int rc = 0;

	sb_seg_hdr_encode(hb, &sh);
	if ((rc = sb_pwrite_full(io, fd, hb, sizeof(hb), 0)))
		return rc;
	for (uint32_t i = 0; i < nblocks && i < z->h.nblocks; i++) {
		if ((rc = block_plain(z, i, &buf, &cap, &at))) {
			if (rc == SB_ECORRUPT && bad)
				*bad = i;
			break;
		}
		if (pos + at > SB_SEG_MAX_BYTES) {
			rc = -EFBIG;
			break;
		}
		if ((rc = sb_pwrite_full(io, fd, buf, at, (off_t)pos)))
			break;
		pos += at;
	}
	free(buf);
	if (!rc)
		*len = pos;
	return rc;
}
