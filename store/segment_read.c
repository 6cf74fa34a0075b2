/*
 * segment_read.c - the read side of one segment file: find a record by
 * offset, by stream position or by time (the forward scan from an index
 * entry), and copy its bytes out with their CRC checked (one record, or
 * the stream through many, checked in batches); the walk that replays a
 * segment's records. Create, append and seal: segment.c; open and check:
 * segment_open.c. The format is in format.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "segment_impl.h"

/*
 * The forward scan: from index entry e, step over records by their size
 * fields, up to record `want` (by_stream: up to the record whose payload
 * holds stream byte `want`). Every record stepped over must be framed
 * sanely (size = header + key + value, inside the segment), or the stream
 * positions counted would be wrong. The target's header is decoded only
 * with `decode` (and must then be sane and carry the offset counted).
 */
static int seg_scan_to(sb_segment *s, const sb_idx_entry *e, int by_stream, uint64_t want, int decode,
		       uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	uint64_t len = sb_segment_len(s), p = e->pos, st = s->base_stream + e->rel_stream;
	uint64_t off = s->base + e->rel_offset;
	const uint8_t *map = s->map;
	sb_rec_hdr t = {0};

	/* The chain of size fields is a chain of dependent loads: fetch the
	 * lines it will walk all at once (an estimate from the average record
	 * size, for offsets; the index interval for stream positions). */
	uint64_t ahead = s->p->index_interval;
	uint64_t nrec = atomic_load_explicit(&s->next, memory_order_relaxed) - s->base;
	if (!by_stream && nrec)
		ahead = (want - off) * ((len - SB_SEG_HDR) / nrec) + 2 * SB_REC_HDR;
	if (ahead > len - p)
		ahead = len - p;
	for (uint64_t a = 0; a < ahead; a += 64)
		__builtin_prefetch(map + p + a);

	for (;;) {
		/* (compacted: `off` counted past a record may be a removed
		 * one; the record's own offset decides, below) */
		if (!by_stream && off == want && !s->span)
			break;
		if (p + SB_REC_HDR > len) {
			if (s->span && !by_stream && p == len)
				return -ENOENT; /* compacted away after the last kept record */
			sb_segment_report_damage(s, off, p, "the records end early");
			return SB_ECORRUPT;
		}
		if (!sb_rec_frame(map + p, len - p, &t)) {
			sb_segment_report_damage(s, off, p, "bad record header");
			return SB_ECORRUPT;
		}
		if (s->span) {
			/* compacted: offsets grow with gaps (checked at open) */
			if (t.offset < off || t.offset - s->base >= s->span) {
				sb_segment_report_damage(s, off, p, "bad record header");
				return SB_ECORRUPT;
			}
			off = t.offset;
			if (!by_stream && off == want)
				break;
			if (!by_stream && off > want)
				return -ENOENT; /* compacted away */
		}
		if (by_stream && want < st + t.value_len)
			break;
		p += t.size;
		st += t.value_len;
		off++;
	}
	if (decode && (sb_rec_decode_v(map + p, len - p, s->version, 0, &t) != SB_REC_OK || t.offset != off)) {
		sb_segment_report_damage(s, off, p, "bad record header");
		return SB_ECORRUPT;
	}
	if (!decode)
		t.offset = off;
	*pos = p;
	*stream = st;
	*h = t;
	return 0;
}

static int seg_locate_from(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h);

int sb_segment_locate(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	sb_idx_entry e;

	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e)) {
		if (s->span)
			return -ENOENT; /* compacted away, before its first record */
		sb_segment_report_damage(s, offset, 0, "no index entry leads to it");
		return SB_ECORRUPT;
	}
	return seg_scan_to(s, &e, 0, offset, 1, pos, stream, h);
}

int sb_segment_locate_at(sb_segment *s, uint64_t offset, uint64_t at, sb_rec_hdr *h)
{
	uint64_t len = sb_segment_len(s);
	sb_rec_hdr t;

	/* compacted: its span is set (by the rewrite, or when it took a
	 * removed successor's offsets, which moves nothing: skipped alike) */
	if (s->z || s->span || at < SB_SEG_HDR || at >= len || len - at < SB_REC_HDR)
		return 1;
	/* A key index's get: the record's first lines (a small record's key
	 * and value, which its CRC reads next) on their way together with the
	 * header's, rather than each after the one before. */
	for (uint64_t a = (at & ~(uint64_t)63) + 64; a < at + 256 && a < len; a += 64)
		__builtin_prefetch(s->map + a);
	if (sb_rec_decode_v(s->map + at, len - at, s->version, 0, &t) != SB_REC_OK || t.offset != offset)
		return 1;
	*h = t;
	return 0;
}

int sb_segment_key_is(const sb_segment *s, uint64_t pos, const sb_rec_hdr *h, const void *key, size_t klen)
{
	return h->key_len == klen && !memcmp(s->map + pos + SB_REC_AT_KEY, key, klen);
}

/* The first record at or after `offset` (a compacted segment may have
 * removed it): -ENOENT when none is left in the segment. */
static int seg_locate_from(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h)
{
	sb_idx_entry e;
	uint64_t len = sb_segment_len(s);

	if (!s->span)
		return sb_segment_locate(s, offset, pos, stream, h);
	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e))
		e = (sb_idx_entry){0, SB_SEG_HDR, 0}; /* before its first record */
	uint64_t p = e.pos, st = s->base_stream + e.rel_stream;
	sb_rec_hdr t;
	while (p < len) {
		if (sb_rec_decode_v(s->map + p, len - p, s->version, 0, &t) != SB_REC_OK) {
			sb_segment_report_damage(s, offset, p, "bad record header");
			return SB_ECORRUPT;
		}
		if (t.offset >= offset) {
			*pos = p;
			*stream = st;
			*h = t;
			return 0;
		}
		p += t.size;
		st += t.value_len;
	}
	return -ENOENT;
}

int sb_segment_locate_stream(sb_segment *s, uint64_t spos, uint64_t *pos, uint64_t *stream,
			     sb_rec_hdr *h)
{
	sb_idx_entry e;

	if (spos < s->base_stream || sb_index_lookup(s->ix, (uint32_t)(spos - s->base_stream), 1, &e)) {
		sb_segment_report_damage(s, s->base, 0, "no index entry leads to the stream position");
		return SB_ECORRUPT;
	}
	return seg_scan_to(s, &e, 1, spos, 1, pos, stream, h);
}

int sb_segment_stream_of(sb_segment *s, uint64_t offset, uint64_t *stream, uint64_t *lower)
{
	sb_idx_entry e;
	sb_rec_hdr h;
	uint64_t pos;

	*lower = s->base_stream;
	if (s->z)
		return sb_seg_zstream_of(s, offset, stream, lower);
	if (s->span) { /* compacted: where the first record at or after it starts */
		int rc = seg_locate_from(s, offset, &pos, stream, &h);
		if (rc == -ENOENT) {
			*stream = sb_segment_stream_end(s);
			rc = 0;
		}
		return rc;
	}
	if (sb_index_lookup(s->ix, (uint32_t)(offset - s->base), 0, &e))
		return SB_ECORRUPT;
	*lower = s->base_stream + e.rel_stream;
	return seg_scan_to(s, &e, 0, offset, 0, &pos, stream, &h);
}

/* ---- copying record bytes out ------------------------------------------- */

/* Records copied and checked together in a stream copy (on the stack). */
#define STREAM_BATCH 32
/* How far ahead of the record it reads a stream copy fetches (bytes): 4 KiB
 * made a scan of 100-byte records 30% faster here, where 1 KiB did not. */
#define STREAM_AHEAD 4096

typedef struct stream_batch {
	uint8_t hdr[STREAM_BATCH][SB_REC_HDR]; /* each header as read, once */
	sb_crc_copy job[STREAM_BATCH];
	uint64_t pos[STREAM_BATCH], off[STREAM_BATCH]; /* for reports */
	size_t n, bytes;                       /* jobs, bytes in them */
} stream_batch;

/*
 * The job that copies bytes [at + from, at + from + n) of the record at rec
 * (header h, re-encoded in hb) and checks its CRC over exactly what is
 * used: the header as decoded (hb), the bytes before the part copied, the
 * part as copied into dst, the bytes after it.
 */
static sb_crc_copy copy_job(const uint8_t *rec, const uint8_t *hb, const sb_rec_hdr *h, uint32_t at,
			    uint64_t from, size_t n, uint8_t *dst)
{
	const uint8_t *src = rec + at + from;

	return (sb_crc_copy){
		.hdr = hb + SB_REC_AT_SIZE,
		.key = rec + SB_REC_AT_KEY, .key_len = at - SB_REC_AT_KEY,
		.pre = rec + at, .pre_len = (uint32_t)from,
		.src = src, .dst = dst, .len = (uint32_t)n,
		.post = src + n, .post_len = (uint32_t)(h->size - at - from - n),
		.crc = h->crc,
	};
}

/* Copy and check the batch; *done counts the bytes of the good records. */
static int batch_flush(sb_segment *s, stream_batch *b, size_t *done)
{
	size_t good = sb_crc32c_copy_check(b->job, b->n);
	int rc = 0;

	for (size_t i = 0; i < good; i++)
		*done += b->job[i].len;
	if (good < b->n) {
		sb_segment_report_damage(s, b->off[good], b->pos[good], "checksum mismatch");
		rc = SB_ECORRUPT;
	}
	b->n = b->bytes = 0;
	return rc;
}

/*
 * The stream: payload bytes from `skip` in the record at pos (offset off)
 * on, through the records after it, into dst[0, len). Each header is read
 * once, into the batch, and both its framing and its CRC come from that copy.
 */
static int copy_stream(sb_segment *s, sb_read_memo *m, uint64_t p, uint64_t off, uint64_t skip, uint8_t *dst,
		       size_t len, size_t *done)
{
	const uint8_t *map = s->map;
	uint64_t slen = sb_segment_len(s), pf = p & ~(uint64_t)63;
	stream_batch b;
	sb_rec_hdr h;
	int rc;

	b.n = b.bytes = 0;
	for (;;) {
		uint8_t *hb = b.hdr[b.n];
		/* Each header's place comes from the one before, a chain of
		 * loads that would wait for memory at every step: keep the
		 * next STREAM_AHEAD bytes on their way (a line once each). */
		for (; pf < p + STREAM_AHEAD && pf < slen; pf += 64)
			__builtin_prefetch(map + pf);
		int sane = p + SB_REC_HDR <= slen;
		if (sane) {
			/* The framing only (the CRC covers the rest, from hb). */
			memcpy(hb, map + p, SB_REC_HDR);
			sane = sb_rec_frame(hb, slen - p, &h) &&
			       (h.offset == off || (s->span && h.offset > off && h.offset - s->base < s->span));
			if (sane) /* (a damaged header's offset names nothing) */
				off = h.offset;
		}
		if (!sane) {
			/* The records before it first: the damage met first is reported. */
			if ((rc = batch_flush(s, &b, done)))
				return rc;
			sb_segment_report_damage(s, off, p, "bad record header");
			return SB_ECORRUPT;
		}
		size_t n = h.value_len - skip, room = len - *done - b.bytes;
		if (n > room)
			n = room;
		/* A large record served only in part: through the memo (the
		 * records before it first, in order). */
		if (m && n && h.value_len >= SB_MEMO_MIN && n < h.value_len) {
			size_t got = 0;
			if ((rc = batch_flush(s, &b, done)))
				return rc;
			if ((rc = sb_segment_copy_memo(s, m, p, &h, skip, dst + *done, n, &got)))
				return rc;
			*done += got;
		} else if (n) {
			/* (a record giving no bytes, an empty one, is only stepped over) */
			b.job[b.n] = copy_job(map + p, hb, &h, sb_rec_value_at(&h), skip, n,
					      dst + *done + b.bytes);
			b.pos[b.n] = p;
			b.off[b.n] = off;
			b.n++;
			b.bytes += n;
		}
		skip = 0;
		p += h.size;
		off++;
		int last = b.bytes == len - *done || p >= slen;
		if (last || b.n == STREAM_BATCH) {
			if ((rc = batch_flush(s, &b, done)) || last)
				return rc;
		}
	}
}

int sb_segment_copy(sb_segment *s, uint64_t pos, const sb_rec_hdr *h, int part, uint64_t from, void *dst,
		    size_t len, size_t *done)
{
	return sb_segment_copy_m(s, NULL, pos, h, part, from, dst, len, done);
}

int sb_segment_copy_m(sb_segment *s, sb_read_memo *m, uint64_t pos, const sb_rec_hdr *h, int part,
		      uint64_t from, void *dst, size_t len, size_t *done)
{
	uint8_t hb[SB_REC_HDR];
	uint32_t at, plen;
	size_t n = 0;
	int rc;

	if (part == SB_COPY_STREAM) {
		rc = copy_stream(s, m, pos, h->offset, from, dst, len, &n);
		*done = n;
		return rc;
	}
	if (m && part == SB_COPY_VALUE && h->value_len >= SB_MEMO_MIN && len)
		return sb_segment_copy_memo(s, m, pos, h, from, dst, len, done);
	if (part == SB_COPY_KEY) {
		at = SB_REC_AT_KEY;
		plen = h->key_len;
	} else if (part == SB_COPY_HEADERS) {
		at = sb_rec_hdrs_at(h);
		plen = h->hdrs_len;
	} else {
		at = sb_rec_value_at(h);
		plen = h->value_len;
	}
	if (from > plen)
		from = plen;
	n = plen - from < len ? plen - from : len;
	sb_rec_hdr_encode(hb, h);
	sb_crc_copy job = copy_job(s->map + pos, hb, h, at, from, n, dst);
	if (sb_crc32c_copy_check(&job, 1) == 0) {
		sb_segment_report_damage(s, h->offset, pos, "checksum mismatch");
		return SB_ECORRUPT;
	}
	*done = n;
	return 0;
}

/* The walk of [from, to) (sb_segment_walk, sb_segment_walk_range), each
 * record's CRC checked if check_crc; *endpos where it stopped, *firstpos
 * where it began (unchanged if it did not). */
static int walk(sb_segment *s, uint64_t from, uint64_t to, int check_crc, sb_seg_walk_fn fn, void *arg,
		uint64_t *firstpos, uint64_t *endpos)
{
	uint64_t pos, stream, len = sb_segment_len(s), end = sb_segment_next(s);
	sb_rec_hdr h;
	int rc;

	if (s->z)
		return -ENOTSUP;
	if (to < end)
		end = to;
	if (from >= end)
		return 0;
	if ((rc = seg_locate_from(s, from, &pos, &stream, &h)))
		return rc == -ENOENT ? 0 : rc;
	from = h.offset;
	*firstpos = pos;
	while (from < end && pos < len) {
		if (sb_rec_decode_v(s->map + pos, len - pos, s->version, check_crc, &h) != SB_REC_OK ||
		    (h.offset != from && !(s->span && h.offset > from && h.offset < sb_segment_next(s)))) {
			rc = SB_ECORRUPT;
			break;
		}
		if (h.offset >= end)
			break; /* a gap of a compacted segment reaches past `to` */
		if ((rc = fn(arg, &h, s->map + pos + SB_REC_AT_KEY, pos)))
			break;
		pos += h.size;
		from = h.offset + 1;
	}
	*endpos = pos;
	return rc;
}

int sb_segment_walk(sb_segment *s, uint64_t from, sb_seg_walk_fn fn, void *arg)
{
	uint64_t first = 0, pos = 0;
	int rc = walk(s, from, UINT64_MAX, 1, fn, arg, &first, &pos);

	/* A walk (the key index's replay at open) reads up to tens of MiB:
	 * let go of the pages it touched, so that they stay evictable page
	 * cache, not pages mapped into the daemon (which drop_caches and
	 * memory pressure cannot reclaim). A shared file mapping: the next
	 * read faults them in again from the cache. */
	uint64_t a = first & ~(uint64_t)4095, b = pos < s->map_len ? pos : s->map_len;
	if (b > a)
		(void)madvise(s->map + a, b - a, MADV_DONTNEED);
	return rc;
}

int sb_segment_walk_range(sb_segment *s, uint64_t from, uint64_t to, sb_seg_walk_fn fn, void *arg)
{
	uint64_t first = 0, pos = 0;

	return walk(s, from, to, 0, fn, arg, &first, &pos);
}

int sb_segment_find_time(sb_segment *s, int64_t ts, uint64_t *offset)
{
	uint64_t pos, stream, next = sb_segment_next(s), len = sb_segment_len(s);
	sb_rec_hdr h;
	uint32_t rel;
	int rc;

	if (sb_tindex_find(s->tix, ts, &rel) || s->base + rel >= next)
		return -ENOENT;
	uint64_t off = s->base + rel;
	if (s->z)
		return sb_seg_zfind_time(s, off, ts, offset);
	rc = seg_locate_from(s, off, &pos, &stream, &h);
	if (rc)
		return rc;
	/* At most one interval of records (timeindex.h); each one judged by
	 * must hold its CRC, so that a damaged time never moves the start. */
	for (off = h.offset; off < next && pos < len; off++) {
		if (sb_rec_decode_v(s->map + pos, len - pos, s->version, 1, &h) != SB_REC_OK ||
		    (h.offset != off && !(s->span && h.offset > off && h.offset < next))) {
			sb_segment_report_damage(s, off, pos, "bad record");
			return SB_ECORRUPT;
		}
		off = h.offset;
		if (h.timestamp_ns >= ts) {
			*offset = off;
			return 0;
		}
		pos += h.size;
	}
	return -ENOENT; /* its record is not published yet */
}

int sb_segment_next_present(sb_segment *s, uint64_t offset, uint64_t *found)
{
	uint64_t pos, stream;
	sb_rec_hdr h;
	int rc;

	if (!s->span) {
		*found = offset;
		return 0;
	}
	rc = seg_locate_from(s, offset, &pos, &stream, &h);
	if (!rc)
		*found = h.offset;
	return rc;
}
