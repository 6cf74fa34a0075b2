/*
 * segment_memo.c - a reader's memo (sb_store.h: sb_read_memo): one large
 * record checked whole once, then served in slices, each slice checked on
 * its own, so that reading a record of N bytes in requests of R bytes costs
 * O(N) rather than O(N * N / R) (SPEC §4: a record read through its file,
 * or the stream through .log, 128 KiB at a time by the kernel).
 *
 * The record's CRC is a running CRC32C over its bytes from SB_REC_AT_SIZE
 * on: the rest of its header, its key, its payload, its header block. The
 * memo keeps that running value at the start of its payload and after every
 * SB_MEMO_CHUNK bytes of it, computed by a pass that checked the whole
 * record against its CRC field. A later read of payload bytes [a, b) then
 * checks, from those values alone: the header (as the reader decoded it,
 * compared with the one checked) and key lead to the value at the payload's
 * start; each chunk that [a, b) touches, with the served bytes as copied
 * into the reader's buffer, leads from its value to the next; and the
 * header block leads from the last one to the CRC field. So every byte
 * served is covered by a check that ties it to the record's CRC, and damage
 * made after the memo was filled fails the first read that reaches it.
 *
 * Memory: 4 bytes per chunk of the one record it holds (32 KiB for a
 * 512 MiB record; SB_MAX_RECORD_BYTES), one memo per open file that reads
 * records of at least SB_MEMO_MIN bytes; none is shared.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "segment_impl.h"

struct sb_read_memo {
	pthread_mutex_t mu;       /* guards everything below; held for a read */
	uint8_t hb[SB_REC_HDR];   /* the header of the record checked (re-encoded) */
	int full;                 /* v holds a record's values */
	uint32_t *v;              /* v[i]: the running CRC after i chunks of payload */
	size_t nv, cap;
};

int sb_read_memo_new(sb_read_memo **out)
{
	sb_read_memo *m = calloc(1, sizeof *m);

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void sb_read_memo_free(sb_read_memo *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->v);
	free(m);
}

/* The running CRC over [from, to) of chunk bytes [c0, c1) of the payload at
 * val: bytes inside [a, b) come from dst (copied there from val first, so
 * that what is checked is what is served), the others from val. */
static uint32_t chunk_crc(uint32_t c, const uint8_t *val, uint64_t c0, uint64_t c1, uint64_t a, uint64_t b,
			  uint8_t *dst)
{
	uint64_t s = a > c0 ? a : c0, e = b < c1 ? b : c1;

	if (s >= e)
		return sb_crc32c(c, val + c0, c1 - c0);
	c = sb_crc32c(c, val + c0, s - c0);
	memcpy(dst + (s - a), val + s, e - s);
	c = sb_crc32c(c, dst + (s - a), e - s);
	return sb_crc32c(c, val + e, c1 - e);
}

/* Fill m from the record at rec (header h, re-encoded in hb), checking it
 * whole; payload bytes [a, b) go to dst on the way. 0 or SB_ECORRUPT (m
 * then holds nothing). */
static int memo_fill(sb_read_memo *m, const uint8_t *rec, const uint8_t *hb, const sb_rec_hdr *h,
		     uint64_t a, uint64_t b, uint8_t *dst)
{
	size_t nv = ((size_t)h->value_len + SB_MEMO_CHUNK - 1) / SB_MEMO_CHUNK + 1;
	const uint8_t *val = rec + sb_rec_value_at(h);

	m->full = 0;
	if (nv > m->cap) {
		uint32_t *v = realloc(m->v, nv * sizeof *v);
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = nv;
	}
	uint32_t c = sb_crc32c(0, hb + SB_REC_AT_SIZE, SB_REC_HDR - SB_REC_AT_SIZE);
	c = sb_crc32c(c, rec + SB_REC_AT_KEY, h->key_len);
	m->v[0] = c;
	for (size_t i = 1; i < nv; i++) {
		uint64_t c0 = (uint64_t)(i - 1) * SB_MEMO_CHUNK, c1 = c0 + SB_MEMO_CHUNK;
		if (c1 > h->value_len)
			c1 = h->value_len;
		c = m->v[i] = chunk_crc(c, val, c0, c1, a, b, dst);
	}
	if (sb_crc32c(c, rec + sb_rec_hdrs_at(h), h->hdrs_len) != h->crc)
		return SB_ECORRUPT;
	memcpy(m->hb, hb, SB_REC_HDR);
	m->nv = nv;
	m->full = 1;
	return 0;
}

/* Serve payload bytes [a, b) from what m holds of this record (hb its
 * header as decoded now). 0 or SB_ECORRUPT. */
static int memo_serve(const sb_read_memo *m, const uint8_t *rec, const uint8_t *hb, const sb_rec_hdr *h,
		      uint64_t a, uint64_t b, uint8_t *dst)
{
	const uint8_t *val = rec + sb_rec_value_at(h);
	uint32_t c = sb_crc32c(0, hb + SB_REC_AT_SIZE, SB_REC_HDR - SB_REC_AT_SIZE);

	if (sb_crc32c(c, rec + SB_REC_AT_KEY, h->key_len) != m->v[0])
		return SB_ECORRUPT;
	for (size_t i = a / SB_MEMO_CHUNK; a < b && i < m->nv - 1 && (uint64_t)i * SB_MEMO_CHUNK < b; i++) {
		uint64_t c0 = (uint64_t)i * SB_MEMO_CHUNK, c1 = c0 + SB_MEMO_CHUNK;
		if (c1 > h->value_len)
			c1 = h->value_len;
		if (chunk_crc(m->v[i], val, c0, c1, a, b, dst) != m->v[i + 1])
			return SB_ECORRUPT;
	}
	if (sb_crc32c(m->v[m->nv - 1], rec + sb_rec_hdrs_at(h), h->hdrs_len) != h->crc)
		return SB_ECORRUPT;
	return 0;
}

int sb_segment_copy_memo(sb_segment *s, sb_read_memo *m, uint64_t pos, const sb_rec_hdr *h, uint64_t from,
			 void *dst, size_t len, size_t *done)
{
	uint8_t hb[SB_REC_HDR];
	const uint8_t *rec = s->map + pos;
	uint64_t n = from < h->value_len ? h->value_len - from : 0;
	int rc;

	if (n > len)
		n = len;
	if (from > h->value_len)
		from = h->value_len;
	sb_rec_hdr_encode(hb, h);
	/* What the read touched of the file: the whole record (a fill), or
	 * the chunks of its payload served. */
	uint64_t a0 = pos, b0 = pos + h->size;
	pthread_mutex_lock(&m->mu);
	if (m->full && !memcmp(m->hb, hb, SB_REC_HDR)) {
		rc = memo_serve(m, rec, hb, h, from, from + n, dst);
		a0 = pos + sb_rec_value_at(h) + from / SB_MEMO_CHUNK * SB_MEMO_CHUNK;
		b0 = pos + sb_rec_value_at(h) + (from + n + SB_MEMO_CHUNK - 1) / SB_MEMO_CHUNK * SB_MEMO_CHUNK;
	} else {
		rc = memo_fill(m, rec, hb, h, from, from + n, dst);
	}
	pthread_mutex_unlock(&m->mu);
	/* Its pages are let go (as sb_segment_walk's), so that a large
	 * record read does not stay mapped into the daemon (its resident
	 * size grew by the record's size); the next read faults what it
	 * needs back in from the page cache. */
	a0 = (a0 + 4095) & ~(uint64_t)4095;
	b0 = (b0 < pos + h->size ? b0 : pos + h->size) & ~(uint64_t)4095;
	if (b0 > a0)
		(void)madvise(s->map + a0, b0 - a0, MADV_DONTNEED);
	if (rc == SB_ECORRUPT)
		sb_segment_report_damage(s, h->offset, pos, "checksum mismatch");
	if (!rc)
		*done = n;
	return rc;
}
