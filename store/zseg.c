/*
 * zseg.c - reading compressed segments: the header and block table, and
 * blocks through a small cache of decompressed, checked, decoded blocks.
 * Building them and writing them back plain is in zbuild.c.
 */
#include <errno.h>
#include <lz4.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "zseg_impl.h"

int sb_zseg_is(const uint8_t *buf)
{
	return sb_get32(buf) == SB_ZSEG_MAGIC;
}

int sb_zseg_hdr_valid(const uint8_t buf[SB_ZSEG_HDR])
{
	sb_zhdr h;

	return sb_zhdr_decode(buf, &h) == 0;
}

static int pread_full(const sb_io *io, int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = io->pread(io->ctx, fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if (r < 0)
			return (int)r;
		if (r == 0)
			return SB_ECORRUPT; /* shorter than its table says */
		done += (size_t)r;
	}
	return 0;
}

void sb_zhdr_encode(uint8_t dst[SB_ZSEG_HDR], const sb_zhdr *h)
{
	memset(dst, 0, SB_ZSEG_HDR);
	sb_put32(dst, SB_ZSEG_MAGIC);
	sb_put16(dst + 4, SB_ZSEG_VERSION);
	sb_put16(dst + 6, SB_ZSEG_HDR);
	sb_put64(dst + 8, h->base);
	sb_put64(dst + 16, h->base_stream);
	sb_put64(dst + 24, h->next);
	sb_put64(dst + 32, h->stream_end);
	sb_put64(dst + 40, h->plain_len);
	sb_put64(dst + 48, (uint64_t)h->first_ts);
	sb_put64(dst + 56, (uint64_t)h->max_ts);
	sb_put64(dst + 64, h->table_pos);
	sb_put32(dst + 72, h->nblocks);
	sb_put16(dst + 76, (uint16_t)h->codec);
	sb_put16(dst + SB_ZSEG_AT_FEATURES, (uint16_t)h->features);
	sb_put32(dst + 80, h->table_crc);
	sb_put32(dst + 84, h->dict_len);
	sb_put32(dst + 88, h->dict_crc);
	sb_put32(dst + 92, sb_crc32c(0, dst, 92));
}

int sb_zhdr_decode(const uint8_t src[SB_ZSEG_HDR], sb_zhdr *h)
{
	sb_zhdr t;

	if (sb_get32(src) != SB_ZSEG_MAGIC || sb_get16(src + 6) != SB_ZSEG_HDR ||
	    sb_get32(src + 92) != sb_crc32c(0, src, 92))
		return SB_ECORRUPT;
	if (sb_get16(src + 4) != SB_ZSEG_VERSION || (sb_get16(src + SB_ZSEG_AT_FEATURES) & ~SB_ZSEG_KNOWN_FEATURES))
		return SB_EVERSION;
	t.base = sb_get64(src + 8);
	t.base_stream = sb_get64(src + 16);
	t.next = sb_get64(src + 24);
	t.stream_end = sb_get64(src + 32);
	t.plain_len = sb_get64(src + 40);
	t.first_ts = (int64_t)sb_get64(src + 48);
	t.max_ts = (int64_t)sb_get64(src + 56);
	t.table_pos = sb_get64(src + 64);
	t.nblocks = sb_get32(src + 72);
	t.codec = sb_get16(src + 76);
	t.features = sb_get16(src + SB_ZSEG_AT_FEATURES);
	t.table_crc = sb_get32(src + 80);
	t.dict_len = sb_get32(src + 84);
	t.dict_crc = sb_get32(src + 88);
	if ((t.codec != SB_CODEC_LZ4 && t.codec != SB_CODEC_ZSTD) ||
	    (t.dict_len && t.codec != SB_CODEC_ZSTD) || t.dict_len > SB_ZDICT_MAX)
		return SB_ECORRUPT;
	*h = t;
	return 0;
}

void sb_zent_encode(uint8_t dst[SB_ZSEG_ENTRY], const sb_zent *e)
{
	sb_put32(dst, e->rel_offset);
	sb_put32(dst + 4, e->rel_stream);
	sb_put32(dst + 8, e->pos);
	sb_put32(dst + 12, e->stored);
	sb_put32(dst + 16, e->raw);
	sb_put32(dst + 20, e->count);
	sb_put32(dst + 24, e->stored_crc);
	sb_put32(dst + 28, e->raw_crc);
}

static void zent_decode(const uint8_t src[SB_ZSEG_ENTRY], sb_zent *e)
{
	e->rel_offset = sb_get32(src);
	e->rel_stream = sb_get32(src + 4);
	e->pos = sb_get32(src + 8);
	e->stored = sb_get32(src + 12);
	e->raw = sb_get32(src + 16);
	e->count = sb_get32(src + 20);
	e->stored_crc = sb_get32(src + 24);
	e->raw_crc = sb_get32(src + 28);
}

/* The table must tile the file and the offsets/stream of the header. */
static int table_check(const sb_zhdr *h, const sb_zent *t, uint64_t file_size)
{
	uint64_t pos = SB_ZSEG_HDR + (uint64_t)h->dict_len, off = 0, st = 0;

	if (h->next < h->base || h->stream_end < h->base_stream || h->next - h->base > UINT32_MAX ||
	    h->stream_end - h->base_stream > UINT32_MAX || h->plain_len > SB_SEG_MAX_BYTES ||
	    file_size != h->table_pos + (uint64_t)h->nblocks * SB_ZSEG_ENTRY || h->max_ts < h->first_ts)
		return SB_ECORRUPT;
	for (uint32_t i = 0; i < h->nblocks; i++) {
		const sb_zent *e = &t[i];
		if (e->pos != pos || e->rel_offset != off || e->rel_stream < st || !e->count ||
		    e->raw > SB_ZBLOCK_MAX || e->raw < e->count * 4u || !e->stored)
			return SB_ECORRUPT;
		pos += e->stored;
		off += e->count;
		st = e->rel_stream;
	}
	if (pos != h->table_pos || off != h->next - h->base || st > h->stream_end - h->base_stream)
		return SB_ECORRUPT;
	return 0;
}

int sb_zseg_open(const sb_io *io, int fd, uint64_t file_size, uint64_t base, sb_zcache *c, sb_zseg **out)
{
	uint8_t hb[SB_ZSEG_HDR], *tb = NULL;
	sb_zseg *z;
	sb_zhdr h;
	int rc;

	if (file_size < SB_ZSEG_HDR || file_size > SB_SEG_MAX_BYTES)
		return SB_ECORRUPT;
	if ((rc = pread_full(io, fd, hb, sizeof(hb), 0)))
		return rc;
	if ((rc = sb_zhdr_decode(hb, &h)))
		return rc;
	if (h.base != base || h.table_pos > file_size || (file_size - h.table_pos) / SB_ZSEG_ENTRY != h.nblocks)
		return SB_ECORRUPT;
	z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->io = io;
	z->fd = fd;
	z->h = h;
	if (!c) {
		if ((rc = sb_zcache_new(&z->own)))
			goto out_free;
		c = z->own;
	}
	z->c = c;
	size_t tlen = (size_t)h.nblocks * SB_ZSEG_ENTRY;
	z->t = malloc((h.nblocks ? h.nblocks : 1) * sizeof(*z->t));
	tb = malloc(tlen ? tlen : 1);
	if (!z->t || !tb) {
		rc = -ENOMEM;
		goto out_free;
	}
	if ((rc = pread_full(io, fd, tb, tlen, h.table_pos)))
		goto out_free;
	if (sb_crc32c(0, tb, tlen) != h.table_crc) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	for (uint32_t i = 0; i < h.nblocks; i++)
		zent_decode(tb + (size_t)i * SB_ZSEG_ENTRY, &z->t[i]);
	if ((rc = table_check(&h, z->t, file_size)))
		goto out_free;
	if (h.dict_len) {
		if (!(z->dict = malloc(h.dict_len))) {
			rc = -ENOMEM;
			goto out_free;
		}
		if ((rc = pread_full(io, fd, z->dict, h.dict_len, SB_ZSEG_HDR)))
			goto out_free;
		if (sb_crc32c(0, z->dict, h.dict_len) != h.dict_crc) {
			rc = SB_ECORRUPT;
			goto out_free;
		}
	}
	free(tb);
	pthread_mutex_lock(&c->mu);
	z->gen = ++c->gens;
	pthread_mutex_unlock(&c->mu);
	*out = z;
	return 0;
out_free:
	free(tb);
	sb_zseg_free(z);
	return rc;
}

void sb_zseg_free(sb_zseg *z)
{
	if (!z)
		return;
	if (z->c)
		sb_zcache_forget(z->c, z);
	sb_zcache_free(z->own);
	ZSTD_freeDDict(z->ddict);
	free(z->dict);
	free(z->t);
	free(z);
}

uint64_t sb_zseg_base_stream(const sb_zseg *z) { return z->h.base_stream; }
uint64_t sb_zseg_next(const sb_zseg *z) { return z->h.next; }
uint64_t sb_zseg_stream_end(const sb_zseg *z) { return z->h.stream_end; }

void sb_zseg_rebase_stream(sb_zseg *z, uint64_t base_stream)
{
	z->h.stream_end = base_stream + (z->h.stream_end - z->h.base_stream);
	z->h.base_stream = base_stream;
}
uint64_t sb_zseg_plain_len(const sb_zseg *z) { return z->h.plain_len; }
int64_t sb_zseg_first_ts(const sb_zseg *z) { return z->h.first_ts; }
int64_t sb_zseg_max_ts(const sb_zseg *z) { return z->h.max_ts; }
uint32_t sb_zseg_blocks(const sb_zseg *z) { return z->h.nblocks; }
unsigned sb_zseg_codec(const sb_zseg *z) { return z->h.codec; }
uint64_t sb_zseg_block_pos(const sb_zseg *z, uint32_t i)
{
	return i < z->h.nblocks ? z->t[i].pos : z->h.table_pos;
}
uint64_t sb_zseg_block_offset(const sb_zseg *z, uint32_t i)
{
	return i < z->h.nblocks ? z->h.base + z->t[i].rel_offset : z->h.next;
}

uint64_t sb_zseg_block_stream(const sb_zseg *z, uint32_t i)
{
	return i < z->h.nblocks ? z->h.base_stream + z->t[i].rel_stream : z->h.stream_end;
}

uint64_t sb_zseg_block_stream_len(const sb_zseg *z, uint32_t i)
{
	uint64_t end = i + 1 < z->h.nblocks ? z->t[i + 1].rel_stream : z->h.stream_end - z->h.base_stream;
	return end - z->t[i].rel_stream;
}

static int grow(void **p, uint32_t *cap, uint32_t want, size_t elem)
{
	if (want <= *cap)
		return 0;
	void *n = realloc(*p, (size_t)want * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = want;
	return 0;
}

static int grow_bytes(uint8_t **p, size_t *cap, size_t want)
{
	if (want <= *cap)
		return 0;
	size_t c = want < 65536 ? 65536 : want;
	uint8_t *n = realloc(*p, c);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

/* Read a LEB128 varint of at most 10 bytes from [*p, end). */
static inline int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	if (*p < end && **p < 0x80) { /* most of a block's columns: one byte */
		*v = *(*p)++;
		return 0;
	}

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* The header column (after the timestamps; format.h): the lengths of the
 * header blocks of the records whose flags say they have one, then (after
 * the keys) those blocks, each of which must parse. *p is at the column;
 * end: the raw end; keys: the keys' total. */
static int decode_hdrs(struct zslot *s, uint32_t n, const uint8_t **p, const uint8_t *end, uint64_t keys)
{
	uint64_t v, hdrs = 0;

	for (uint32_t k = 0; k < n; k++) {
		s->hoff[k] = (uint32_t)hdrs;
		if (!(s->flags[k] & SB_REC_HEADERS))
			continue;
		if (get_varint(p, end, &v) || v < SB_HDRS_MIN || v > SB_HDRS_MAX)
			return SB_ECORRUPT;
		hdrs += v;
		if (hdrs > (uint64_t)(end - *p))
			return SB_ECORRUPT;
	}
	s->hoff[n] = (uint32_t)hdrs;
	if (keys + hdrs != (uint64_t)(end - *p))
		return SB_ECORRUPT;
	s->hdrs_at = (uint32_t)(*p - s->raw + keys);
	for (uint32_t k = 0; k < n && hdrs; k++) /* checked once, served as checked */
		if (s->hoff[k + 1] > s->hoff[k] &&
		    !sb_hdrs_valid(s->raw + s->hdrs_at + s->hoff[k], s->hoff[k + 1] - s->hoff[k]))
			return SB_ECORRUPT;
	return 0;
}

/* Finding the newlines in a block's values: the bitmask of those in the
 * 64 bytes [base, base + 64) (none at or past total). */
struct nlscan {
	const uint8_t *b;
	uint64_t total, base, mask;
};

/* The first newline at or after byte at, or total if none: one pass of
 * 64 bytes at a time over the values, not a call per record. */
static inline uint64_t nl_next(struct nlscan *ns, uint64_t at)
{
	for (;;) {
		if (at >= ns->total)
			return ns->total;
		if (at >= ns->base && at - ns->base < 64) {
			uint64_t m = ns->mask >> (at - ns->base);
			if (m)
				return at + (uint64_t)__builtin_ctzll(m);
			at = ns->base + 64;
			continue;
		}
		const uint8_t *q = ns->b + at;
		uint64_t m = 0;
#if defined(__SSE2__)
		if (ns->total - at >= 64) {
			const __m128i nl = _mm_set1_epi8('\n');
			for (int j = 0; j < 4; j++) {
				__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * j));
				m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) << (16 * j);
			}
		} else
#endif
		{
			uint64_t lim = ns->total - at < 64 ? ns->total - at : 64;
			for (uint64_t j = 0; j < lim; j++)
				m |= (uint64_t)(q[j] == '\n') << j;
		}
		ns->base = at;
		ns->mask = m;
	}
}

int sb_zblock_decode(struct zslot *s, uint32_t n, uint64_t stream_len, unsigned features)
{
	const uint8_t *p = s->raw + stream_len, *end = s->raw + s->raw_len;
	uint64_t v, keys = 0, vals = 0;
	uint64_t known = SB_REC_KNOWN_FLAGS & ~(features & SB_ZSEG_F_HEADERS ? 0u : SB_REC_HEADERS);
	int64_t ts = 0;
	int rc;

	if (stream_len > s->raw_len)
		return SB_ECORRUPT;
	if (grow((void **)&s->koff, &s->kcap, n + 1, sizeof(*s->koff)) ||
	    grow((void **)&s->voff, &s->vcap, n + 1, sizeof(*s->voff)) ||
	    grow((void **)&s->ts, &s->tcap, n, sizeof(*s->ts)) ||
	    grow((void **)&s->flags, &s->fcap, n, sizeof(*s->flags)) ||
	    grow((void **)&s->hoff, &s->hcap, n + 1, sizeof(*s->hoff)))
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		if (get_varint(&p, end, &v) || (v & ~known)) /* header blocks: with the feature only */
			return SB_ECORRUPT;
		s->flags[k] = (uint16_t)v;
	}
	for (uint32_t k = 0; k < n; k++) {
		if (get_varint(&p, end, &v) || v > SB_KEY_MAX)
			return SB_ECORRUPT;
		s->koff[k] = (uint32_t)keys;
		keys += v;
	}
	for (uint32_t k = 0; k < n; k++) { /* the codes, resolved below */
		if (get_varint(&p, end, &v) || v > UINT32_MAX)
			return SB_ECORRUPT;
		s->voff[k] = (uint32_t)v;
	}
	for (uint32_t k = 0; k < n; k++) {
		if (get_varint(&p, end, &v))
			return SB_ECORRUPT;
		/* zigzag delta; wrapping arithmetic, as it was encoded */
		uint64_t d = (v >> 1) ^ (uint64_t)-(int64_t)(v & 1);
		ts = (int64_t)((uint64_t)ts + d);
		s->ts[k] = ts;
	}
	if ((rc = decode_hdrs(s, n, &p, end, keys)))
		return rc;
	/* A value length is coded against the length up to and including the
	 * next newline in the values (the rest of them if none): a line is 0. */
	uint64_t total = stream_len;
	struct nlscan ns = {.b = s->raw, .total = total, .base = UINT64_MAX};
	for (uint32_t k = 0; k < n; k++) {
		uint64_t c = s->voff[k], left = total - vals, nl = nl_next(&ns, vals);
		int64_t len = (int64_t)(nl < total ? nl - vals + 1 : left) +
			      ((c & 1) ? -(int64_t)(c >> 1) - 1 : (int64_t)(c >> 1));
		if (len < 0 || (uint64_t)len > left)
			return SB_ECORRUPT;
		s->voff[k] = (uint32_t)vals;
		vals += (uint64_t)len;
	}
	if (vals != total)
		return SB_ECORRUPT;
	s->koff[n] = (uint32_t)keys;
	s->voff[n] = (uint32_t)vals;
	s->keys_at = (uint32_t)(p - s->raw);
	s->vals_at = 0;
	s->n = n;
	s->decoded = 1;
	return 0;
}

int sb_zblock_decompress(unsigned codec, struct zslot *s, uint8_t *out, const uint8_t *src, size_t n, size_t raw,
			 const void *ddict)
{
	if (codec == SB_CODEC_LZ4) {
		if (n > INT32_MAX || raw > INT32_MAX)
			return SB_ECORRUPT;
		int r = LZ4_decompress_safe((const char *)src, (char *)out, (int)n, (int)raw);
		return r == (int)raw ? 0 : SB_ECORRUPT;
	}
	if (!s->dctx && !(s->dctx = ZSTD_createDCtx()))
		return -ENOMEM;
	size_t r = ddict ? ZSTD_decompress_usingDDict(s->dctx, out, raw, src, n, ddict)
		      : ZSTD_decompressDCtx(s->dctx, out, raw, src, n);
	return !ZSTD_isError(r) && r == raw ? 0 : SB_ECORRUPT;
}

int sb_zblock_load_into(sb_zseg *z, struct zslot *s, uint32_t i, uint8_t *out)
{
	const sb_zent *e = &z->t[i];
	int rc;

	if ((rc = grow_bytes(&s->stored, &s->stored_cap, e->stored)))
		return rc;
	if (z->h.dict_len && !atomic_load_explicit(&z->ddict_ready, memory_order_acquire)) {
		pthread_mutex_lock(&z->c->mu);
		if (!z->ddict && !(z->ddict = ZSTD_createDDict(z->dict, z->h.dict_len))) {
			pthread_mutex_unlock(&z->c->mu);
			return -ENOMEM;
		}
		atomic_store_explicit(&z->ddict_ready, 1, memory_order_release);
		pthread_mutex_unlock(&z->c->mu);
	}
	if ((rc = pread_full(z->io, z->fd, s->stored, e->stored, e->pos)))
		return rc;
	if (sb_crc32c(0, s->stored, e->stored) != e->stored_crc)
		return SB_ECORRUPT;
	if ((rc = sb_zblock_decompress(z->h.codec, s, out, s->stored, e->stored, e->raw, z->ddict)))
		return rc;
	if (sb_crc32c(0, out, e->raw) != e->raw_crc)
		return SB_ECORRUPT;
	if (sb_zseg_block_stream_len(z, i) > e->raw)
		return SB_ECORRUPT;
	return 0;
}

int sb_zblock_load(sb_zseg *z, struct zslot *s, uint32_t i, int decode)
{
	const sb_zent *e = &z->t[i];
	int rc;

	s->decoded = 0;
	if ((rc = grow_bytes(&s->raw, &s->raw_cap, e->raw)) || (rc = sb_zblock_load_into(z, s, i, s->raw)))
		return rc;
	s->raw_len = e->raw;
	return decode ? sb_zblock_decode(s, e->count, sb_zseg_block_stream_len(z, i), z->h.features) : 0;
}

uint32_t sb_zpin_count(const sb_zpin *pin)
{
	return pin->slot->n;
}

void sb_zpin_rec(const sb_zseg *z, const sb_zpin *pin, uint32_t k, sb_zrec *r)
{
	const struct zslot *s = pin->slot;
	const sb_zent *e = &z->t[pin->block];

	r->offset = z->h.base + e->rel_offset + k;
	r->stream = z->h.base_stream + e->rel_stream + s->voff[k];
	r->timestamp_ns = s->ts[k];
	r->flags = s->flags[k];
	r->key_len = (uint16_t)(s->koff[k + 1] - s->koff[k]);
	r->value_len = s->voff[k + 1] - s->voff[k];
	r->key = s->raw + s->keys_at + s->koff[k];
	r->value = s->raw + s->vals_at + s->voff[k];
	r->hdrs_len = s->hoff[k + 1] - s->hoff[k];
	r->hdrs = s->raw + s->hdrs_at + s->hoff[k];
	r->block_stream_end = z->h.base_stream + e->rel_stream + s->voff[s->n];
}

/* The block holding record rel (by_stream: stream byte rel). */
static uint32_t find_block(const sb_zseg *z, uint64_t rel, int by_stream)
{
	uint32_t lo = 0, hi = z->h.nblocks;

	while (lo < hi) { /* first block starting past rel */
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t at = by_stream ? z->t[mid].rel_stream : z->t[mid].rel_offset;
		if (at <= rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : 0;
}

uint32_t sb_zseg_block_of(const sb_zseg *z, uint64_t key, int by_stream)
{
	return find_block(z, key - (by_stream ? z->h.base_stream : z->h.base), by_stream);
}

int sb_zseg_get(sb_zseg *z, uint64_t key, int by_stream, sb_zpin *pin, sb_zrec *r, uint64_t *bad_pos)
{
	uint64_t lo = by_stream ? z->h.base_stream : z->h.base, hi = by_stream ? z->h.stream_end : z->h.next;
	uint32_t i, k;
	int rc;

	if (key < lo || key >= hi || !z->h.nblocks)
		return -ENOENT;
	i = find_block(z, key - lo, by_stream);
	rc = sb_zcache_pin(z, i, pin, 1, 0);
	if (rc) {
		if (bad_pos)
			*bad_pos = z->t[i].pos;
		return rc;
	}
	const struct zslot *s = pin->slot;
	if (!by_stream) {
		k = (uint32_t)(key - lo - z->t[i].rel_offset);
	} else {
		uint64_t rel = key - lo - z->t[i].rel_stream;
		uint32_t a = 0, b = s->n;
		while (a < b) { /* first record whose value starts past rel */
			uint32_t mid = a + (b - a) / 2;
			if (s->voff[mid] <= rel)
				a = mid + 1;
			else
				b = mid;
		}
		k = a - 1; /* a >= 1: voff[0] = 0 <= rel */
	}
	sb_zpin_rec(z, pin, k, r);
	return 0;
}

int sb_zseg_check_block(sb_zseg *z, uint32_t i)
{
	sb_zpin pin;
	int rc = sb_zcache_pin(z, i, &pin, 1, 0);

	if (!rc)
		sb_zseg_unpin(z, &pin);
	return rc;
}

int sb_zseg_pin_block(sb_zseg *z, uint32_t i, sb_zpin *pin)
{
	return sb_zcache_pin(z, i, pin, 1, 0);
}

int sb_zseg_stream(sb_zseg *z, uint64_t spos, sb_zpin *pin, const uint8_t **p, uint64_t *avail, uint64_t *bad_pos)
{
	uint32_t i;
	int rc;

	if (spos < z->h.base_stream || spos >= z->h.stream_end || !z->h.nblocks)
		return -ENOENT;
	i = find_block(z, spos - z->h.base_stream, 1);
	if ((rc = sb_zcache_pin(z, i, pin, 0, 1))) {
		if (bad_pos)
			*bad_pos = z->t[i].pos;
		return rc;
	}
	uint64_t rel = spos - z->h.base_stream - z->t[i].rel_stream;
	*p = pin->slot->raw + rel;
	*avail = sb_zseg_block_stream_len(z, i) - rel;
	return 0;
}

int sb_zseg_stream_copy(sb_zseg *z, uint64_t spos, uint8_t *dst, size_t len, size_t *n, uint64_t *bad_pos)
{
	uint32_t i;
	int rc;

	if (spos < z->h.base_stream || spos >= z->h.stream_end || !z->h.nblocks || !len)
		return -ENOENT;
	i = find_block(z, spos - z->h.base_stream, 1);
	uint64_t rel = spos - z->h.base_stream - z->t[i].rel_stream, slen = sb_zseg_block_stream_len(z, i);
	/* A whole block with room for all its raw bytes: straight into dst */
	if (!rel && len >= z->t[i].raw && (rc = sb_zcache_direct(z, i, dst)) != 0) {
		if (rc < 0) {
			if (bad_pos)
				*bad_pos = z->t[i].pos;
			return rc;
		}
		*n = (size_t)slen;
		return 0;
	}
	sb_zpin pin;
	const uint8_t *p;
	uint64_t avail;
	if ((rc = sb_zseg_stream(z, spos, &pin, &p, &avail, bad_pos)))
		return rc;
	if (avail > len)
		avail = len;
	memcpy(dst, p, (size_t)avail);
	sb_zseg_unpin(z, &pin);
	*n = (size_t)avail;
	return 0;
}
