/*
 * log_read.c - reading a log: by offset (binary search of the segments, of
 * the segment's sparse index, then a short forward scan) and by stream
 * position (the same, keyed by stream position). Readers take no lock but
 * the segments array's shared lock while they copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "log_impl.h"

const char *sb_log_name(const sb_log *l) { return l->name; }
const sb_log_config *sb_log_get_config(const sb_log *l) { return &l->cfg; }
uint64_t sb_log_start(const sb_log *l) { return atomic_load_explicit(&l->start, memory_order_acquire); }
uint64_t sb_log_next(const sb_log *l) { return atomic_load_explicit(&l->next, memory_order_acquire); }
int sb_log_damaged_tail(const sb_log *l) { return l->damaged_tail; }
const char *sb_log_damage(const sb_log *l) { return l->damaged_tail ? l->damage : NULL; }
uint64_t sb_log_stream_start(const sb_log *l)
{
	return atomic_load_explicit(&l->stream_start, memory_order_acquire);
}
uint64_t sb_log_stream_end(const sb_log *l)
{
	return atomic_load_explicit(&l->stream_end, memory_order_acquire);
}
int64_t sb_log_mtime_ns(const sb_log *l) { return atomic_load_explicit(&l->mtime_ns, memory_order_relaxed); }

/* The segment holding offset `off`, with seg_lock held; NULL if none. */
static sb_segment *seg_by_offset(sb_log *l, uint64_t off)
{
	size_t lo = 0, hi = l->nsegs;

	if (!hi)
		return NULL;
	if (sb_segment_base(l->segs[hi - 1]) <= off)
		return l->segs[hi - 1]; /* the tail: the common case */
	while (lo < hi) { /* first segment with base > off */
		size_t mid = lo + (hi - lo) / 2;
		if (sb_segment_base(l->segs[mid]) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? l->segs[lo - 1] : NULL;
}

/* The segment holding stream byte pos, with seg_lock held; NULL if none. */
static size_t seg_by_stream(sb_log *l, uint64_t pos)
{
	size_t lo = 0, hi = l->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sb_segment_base_stream(l->segs[mid]) <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo; /* index + 1 of the last segment with base_stream <= pos, 0 if none */
}

/* Locate record `offset` with seg_lock held. */
static int locate(sb_log *l, uint64_t offset, sb_segment **seg, uint64_t *pos, uint64_t *stream,
		  sb_rec_hdr *h)
{
	if (atomic_load_explicit(&l->removed, memory_order_relaxed))
		return -ENOENT;
	if (offset < sb_log_start(l) || offset >= sb_log_next(l))
		return -ENOENT;
	sb_segment *s = seg_by_offset(l, offset);
	if (!s)
		return -ENOENT;
	*seg = s;
	if (sb_segment_zseg(s))
		return 1; /* compressed: the caller reads it with zget() */
	return sb_segment_locate(s, offset, pos, stream, h);
}

/*
 * Pin the block of compressed segment s that holds record `key` (by_stream:
 * stream byte `key`) and fill *r, with seg_lock held. The block was checked
 * (CRCs of its stored and raw bytes) when it was decompressed into private
 * memory, where it stays as checked: what is copied out of it is served.
 */
static int zget(sb_segment *s, uint64_t key, int by_stream, sb_zpin *pin, sb_zrec *r)
{
	sb_zseg *z = sb_segment_zseg(s);
	uint64_t bad = 0;
	int rc = sb_zseg_get(z, key, by_stream, pin, r, &bad);

	if (rc == SB_ECORRUPT || rc == -ENOENT) {
		uint64_t off = by_stream ? sb_zseg_block_offset(z, sb_zseg_block_of(z, key, 1)) : key;
		sb_segment_report_damage(s, off, bad, "damaged compressed block");
		rc = SB_ECORRUPT;
	}
	return rc;
}

static void zfill_info(sb_record_info *info, const sb_zrec *r)
{
	info->offset = r->offset;
	info->timestamp_ns = r->timestamp_ns;
	info->stream_pos = r->stream;
	info->value_len = r->value_len;
	info->key_len = r->key_len;
	info->flags = r->flags;
	info->headers_len = r->hdrs_len;
}

/* Serve bytes [from, from + len) of record part `part` (segment.h): the
 * whole record is checked, whatever part of it is read. */
static int serve_m(sb_segment *s, sb_read_memo *m, uint64_t pos, const sb_rec_hdr *h, int part, uint64_t from,
		   void *dst, size_t len, size_t *n)
{
	size_t got = 0;
	int rc = sb_segment_copy_m(s, m, pos, h, part, from, dst, len, &got);

	if (!rc && n)
		*n = got;
	return rc;
}

static int serve(sb_segment *s, uint64_t pos, const sb_rec_hdr *h, int part, uint64_t from, void *dst,
		 size_t len, size_t *n)
{
	size_t got = 0;
	int rc = sb_segment_copy(s, pos, h, part, from, dst, len, &got);

	if (!rc && n)
		*n = got;
	return rc;
}

static int read_m(sb_log *l, sb_read_memo *m, uint64_t offset, uint64_t from, void *buf, size_t len,
		  size_t *nread, sb_record_info *info);

static void fill_info(sb_record_info *info, const sb_rec_hdr *h, uint64_t stream)
{
	info->offset = h->offset;
	info->timestamp_ns = h->timestamp_ns;
	info->stream_pos = stream;
	info->value_len = h->value_len;
	info->key_len = h->key_len;
	info->flags = h->flags;
	info->headers_len = h->hdrs_len;
}

int sb_log_stat(sb_log *l, uint64_t offset, sb_record_info *info)
{
	sb_segment *s;
	uint64_t pos, stream;
	sb_rec_hdr h;
	int rc;

	pthread_rwlock_rdlock(&l->seg_lock);
	rc = locate(l, offset, &s, &pos, &stream, &h);
	if (rc == 1) {
		sb_zpin pin;
		sb_zrec r;
		if (!(rc = zget(s, offset, 0, &pin, &r))) {
			sb_zseg_unpin(sb_segment_zseg(s), &pin);
			zfill_info(info, &r);
		}
		pthread_rwlock_unlock(&l->seg_lock);
		return rc;
	}
	if (!rc)
		rc = serve(s, pos, &h, SB_COPY_VALUE, 0, NULL, 0, NULL); /* what it says must hold too */
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		fill_info(info, &h, stream);
	return rc;
}

int sb_log_read(sb_log *l, uint64_t offset, uint64_t from, void *buf, size_t len, size_t *nread,
		sb_record_info *info)
{
	return read_m(l, NULL, offset, from, buf, len, nread, info);
}

int sb_log_read_m(sb_log *l, sb_read_memo *m, uint64_t offset, uint64_t from, void *buf, size_t len,
		  size_t *nread)
{
	return read_m(l, m, offset, from, buf, len, nread, NULL);
}

static int read_m(sb_log *l, sb_read_memo *m, uint64_t offset, uint64_t from, void *buf, size_t len,
		  size_t *nread, sb_record_info *info)
{
	sb_segment *s;
	uint64_t pos, stream;
	sb_rec_hdr h;
	size_t n = 0;
	int rc;

	pthread_rwlock_rdlock(&l->seg_lock);
	rc = locate(l, offset, &s, &pos, &stream, &h);
	if (rc == 1) {
		sb_zpin pin;
		sb_zrec r;
		if (!(rc = zget(s, offset, 0, &pin, &r))) {
			n = from < r.value_len ? r.value_len - from : 0;
			if (n > len)
				n = len;
			if (n)
				memcpy(buf, r.value + from, n);
			sb_zseg_unpin(sb_segment_zseg(s), &pin);
			*nread = n;
			if (info)
				zfill_info(info, &r);
		}
		pthread_rwlock_unlock(&l->seg_lock);
		return rc;
	}
	if (rc)
		goto out_unlock;
	rc = serve_m(s, m, pos, &h, SB_COPY_VALUE, from, buf, len, &n);
out_unlock:
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc) {
		*nread = n;
		if (info)
			fill_info(info, &h, stream);
	}
	return rc;
}

int sb_log_read_key(sb_log *l, uint64_t offset, void *buf, size_t cap, size_t *key_len)
{
	sb_segment *s;
	uint64_t pos, stream;
	sb_rec_hdr h;
	int rc;

	pthread_rwlock_rdlock(&l->seg_lock);
	rc = locate(l, offset, &s, &pos, &stream, &h);
	if (rc == 1) {
		sb_zpin pin;
		sb_zrec r;
		if (!(rc = zget(s, offset, 0, &pin, &r))) {
			memcpy(buf, r.key, r.key_len < cap ? r.key_len : cap);
			sb_zseg_unpin(sb_segment_zseg(s), &pin);
			*key_len = r.key_len;
		}
		pthread_rwlock_unlock(&l->seg_lock);
		return rc;
	}
	if (!rc)
		rc = serve(s, pos, &h, SB_COPY_KEY, 0, buf, cap, NULL);
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		*key_len = h.key_len;
	return rc;
}

/* locate() from the key index's position hint first (0: none; *stream
 * is then not set). */
static int locate_hinted(sb_log *l, uint64_t offset, uint32_t hint, sb_segment **seg, uint64_t *pos,
			 uint64_t *stream, sb_rec_hdr *h)
{
	if (hint && !atomic_load_explicit(&l->removed, memory_order_relaxed) && offset >= sb_log_start(l) &&
	    offset < sb_log_next(l)) {
		sb_segment *s = seg_by_offset(l, offset);
		if (s && !sb_segment_locate_at(s, offset, hint, h)) {
			*seg = s;
			*pos = hint;
			return 0;
		}
	}
	return locate(l, offset, seg, pos, stream, h);
}

int sb_log_check_hint(sb_log *l, uint64_t offset, uint32_t hint)
{
	sb_segment *s;
	uint64_t pos, stream;
	sb_rec_hdr h, h2;
	int rc = 0;

	if (!hint)
		return 0;
	pthread_rwlock_rdlock(&l->seg_lock);
	if (locate(l, offset, &s, &pos, &stream, &h) == 0 && !sb_segment_compacted(s) &&
	    (sb_segment_locate_at(s, offset, hint, &h2) || hint != pos))
		rc = -ESTALE;
	pthread_rwlock_unlock(&l->seg_lock);
	return rc;
}

int sb_log_read_keyed(sb_log *l, uint64_t offset, uint32_t hint, const void *key, size_t key_len, void *buf,
		      size_t cap, size_t *nread, sb_record_info *info)
{
	sb_segment *s;
	uint64_t pos, stream = 0;
	sb_rec_hdr h;
	size_t n = 0;
	int rc;

	pthread_rwlock_rdlock(&l->seg_lock);
	rc = locate_hinted(l, offset, info ? 0 : hint, &s, &pos, &stream, &h);
	if (rc == 1) {
		sb_zpin pin;
		sb_zrec r;
		if (!(rc = zget(s, offset, 0, &pin, &r))) {
			if (r.key_len != key_len || memcmp(r.key, key, key_len)) {
				rc = -ESTALE;
			} else {
				n = r.value_len < cap ? r.value_len : cap;
				memcpy(buf, r.value, n);
				if (info)
					zfill_info(info, &r);
			}
			sb_zseg_unpin(sb_segment_zseg(s), &pin);
		}
		goto out_unlock;
	}
	if (rc)
		goto out_unlock;
	/* The key compared in place, then the payload copied: the copy
	 * checks the record's CRC whole, over the key too (a damaged key
	 * fails it; another record's fails the comparison). */
	if (!sb_segment_key_is(s, pos, &h, key, key_len)) {
		/* damage (reported as such) or another record */
		rc = serve(s, pos, &h, SB_COPY_KEY, 0, NULL, 0, NULL);
		if (!rc)
			rc = -ESTALE;
		goto out_unlock;
	}
	rc = serve(s, pos, &h, SB_COPY_VALUE, 0, buf, cap, &n);
	if (!rc && info)
		fill_info(info, &h, stream);
out_unlock:
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		*nread = n;
	return rc;
}

/* stream_from() of a compressed segment: a block's values are its
 * records' payloads back to back, a run of stream bytes. */
static int zstream_from(sb_segment *s, uint64_t pos, uint8_t *dst, size_t len, size_t *done)
{
	uint64_t end = sb_segment_stream_end(s);

	while (*done < len && pos < end) {
		sb_zseg *z = sb_segment_zseg(s);
		size_t n;
		uint64_t bad = 0;
		int rc = sb_zseg_stream_copy(z, pos, dst + *done, len - *done, &n, &bad);
		if (rc) {
			sb_segment_report_damage(s, sb_zseg_block_offset(z, sb_zseg_block_of(z, pos, 1)), bad,
						 "damaged compressed block");
			return SB_ECORRUPT;
		}
		*done += n;
		pos += n;
	}
	return 0;
}

int sb_log_read_headers(sb_log *l, uint64_t offset, void *buf, size_t cap, size_t *len)
{
	sb_segment *s;
	uint64_t pos, stream;
	sb_rec_hdr h;
	size_t n = 0;
	int rc;

	pthread_rwlock_rdlock(&l->seg_lock);
	rc = locate(l, offset, &s, &pos, &stream, &h);
	if (rc == 1) {
		/* compressed: the header block as its block was checked */
		sb_zpin pin;
		sb_zrec r;
		if (!(rc = zget(s, offset, 0, &pin, &r))) {
			if (r.hdrs_len && cap)
				memcpy(buf, r.hdrs, r.hdrs_len < cap ? r.hdrs_len : cap);
			sb_zseg_unpin(sb_segment_zseg(s), &pin);
			*len = r.hdrs_len;
		}
		pthread_rwlock_unlock(&l->seg_lock);
		return rc;
	}
	if (!rc)
		rc = serve(s, pos, &h, SB_COPY_HEADERS, 0, buf, cap, &n);
	/* What a good CRC covers may still not parse (a writer's bug): damage
	 * all the same, never served. */
	if (!rc && h.hdrs_len && n == h.hdrs_len && !sb_hdrs_valid(buf, n)) {
		sb_segment_report_damage(s, h.offset, pos, "malformed header block");
		rc = SB_ECORRUPT;
	}
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		*len = h.hdrs_len;
	return rc;
}

/*
 * Serve stream bytes [pos, pos + len - *done) from segment s (which holds
 * pos) into dst + *done; *done counts the bytes served, also on failure.
 */
static int stream_from(sb_segment *s, sb_read_memo *m, uint64_t pos, uint8_t *dst, size_t len, size_t *done)
{
	if (sb_segment_zseg(s))
		return zstream_from(s, pos, dst, len, done);

	uint64_t p, st;
	sb_rec_hdr h;
	size_t n = 0;
	int rc = sb_segment_locate_stream(s, pos, &p, &st, &h);

	if (rc)
		return rc;
	rc = sb_segment_copy_m(s, m, p, &h, SB_COPY_STREAM, pos - st, dst + *done, len - *done, &n);
	*done += n;
	return rc;
}

int sb_log_seg_stream(sb_segment *s, sb_read_memo *m, uint64_t pos, uint8_t *dst, size_t len, size_t *done)
{
	return stream_from(s, m, pos, dst, len, done);
}

int sb_log_stream_locked(sb_log *l, sb_read_memo *m, uint64_t pos, uint8_t *buf, size_t len, size_t *nread)
{
	size_t done = 0;
	int rc = 0;
	uint64_t end = sb_log_stream_end(l);

	if (atomic_load_explicit(&l->removed, memory_order_relaxed) || pos < sb_log_stream_start(l))
		return -ENOENT;
	if (pos >= end || !len)
		goto out;
	if (len > end - pos)
		len = (size_t)(end - pos);
	for (size_t si = seg_by_stream(l, pos); si && si <= l->nsegs && done < len && !rc; si++) {
		sb_segment *s = l->segs[si - 1];
		if (pos + done < sb_segment_stream_end(s))
			rc = stream_from(s, m, pos + done, buf, len, &done);
	}
	if (!rc && done < len) {
		/* The segments end before the log does: never a silent end. */
		if (l->opt.report)
			l->opt.report(l->opt.report_arg, l->name, "the segments end before the stream does");
		rc = SB_ECORRUPT;
	}
out:
	*nread = done;
	return rc;
}

int sb_log_read_stream(sb_log *l, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	return sb_log_read_stream_m(l, NULL, pos, buf, len, nread);
}

int sb_log_read_stream_m(sb_log *l, sb_read_memo *m, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	size_t done = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	int rc = sb_log_stream_locked(l, m, pos, buf, len, &done);
	/* Damage after some good bytes: serve those (a short read); the next
	 * read starts at the damage and fails. */
	if (rc == SB_ECORRUPT && done)
		rc = 0;
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		*nread = done;
	return rc;
}

uint64_t sb_log_stream_pos_of(sb_log *l, uint64_t off)
{
	uint64_t stream = sb_log_stream_end(l), lower;

	pthread_rwlock_rdlock(&l->seg_lock);
	sb_segment *s = off < sb_log_next(l) ? seg_by_offset(l, off) : NULL;
	/* Known from the records before it, so that a damaged header of this
	 * one does not lose its place (which once made the whole stream look
	 * empty). Damage before it: the lower bound, so that reads from there
	 * meet the damage and fail rather than skip records silently. */
	if (s && sb_segment_stream_of(s, off, &stream, &lower))
		stream = lower;
	pthread_rwlock_unlock(&l->seg_lock);
	return stream;
}

int sb_log_offset_at(sb_log *l, uint64_t pos, uint64_t *offset)
{
	uint64_t p, st;
	sb_rec_hdr h;
	int rc = -ENOENT;

	pthread_rwlock_rdlock(&l->seg_lock);
	if (atomic_load(&l->removed) || pos < sb_log_stream_start(l) || pos >= sb_log_stream_end(l))
		goto out_unlock;
	for (size_t si = seg_by_stream(l, pos); si && si <= l->nsegs; si++) {
		sb_segment *s = l->segs[si - 1];
		if (pos >= sb_segment_stream_end(s))
			continue;
		if (sb_segment_zseg(s)) {
			sb_zpin pin;
			sb_zrec r;
			if (!(rc = zget(s, pos, 1, &pin, &r))) {
				sb_zseg_unpin(sb_segment_zseg(s), &pin);
				*offset = r.offset;
			}
			break;
		}
		rc = sb_segment_locate_stream(s, pos, &p, &st, &h);
		if (!rc)
			*offset = h.offset;
		break;
	}
out_unlock:
	pthread_rwlock_unlock(&l->seg_lock);
	return rc;
}

/* The records in [from, to) of a compacted segment's range: counted one
 * by one (its gaps). 0 or the error that stopped the count. */
static int count_present(sb_log *l, uint64_t from, uint64_t to, uint64_t *n)
{
	uint64_t f;
	int rc;

	while (from < to && (rc = sb_log_next_present(l, from, &f)) == 0 && f < to) {
		(*n)++;
		from = f + 1;
	}
	return from < to && rc != -ENOENT && rc != 0 ? rc : 0;
}

#define STATS_GAPS_MAX 64 /* compacted segments whose records are counted */

int sb_log_get_stats(sb_log *l, sb_log_stats *st)
{
	sb_log_stats t = {0};
	sb_record_info info;
	uint64_t gap_from[STATS_GAPS_MAX], gap_to[STATS_GAPS_MAX];
	size_t ngaps = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	if (atomic_load(&l->removed)) {
		pthread_rwlock_unlock(&l->seg_lock);
		return -ENOENT;
	}
	t.start = sb_log_start(l);
	t.next = sb_log_next(l);
	t.records = t.next - t.start;
	t.segments = (uint32_t)l->nsegs;
	for (size_t i = 0; i < l->nsegs; i++) {
		sb_segment *s = l->segs[i];
		uint64_t from = sb_segment_base(s) > t.start ? sb_segment_base(s) : t.start, to = sb_segment_next(s);
		if (sb_segment_compacted(s) && from < to) {
			/* counted below, without the lock; past STATS_GAPS_MAX
			 * the last range grows over what lies between */
			if (ngaps == STATS_GAPS_MAX) {
				t.records -= to - gap_to[ngaps - 1];
				gap_to[ngaps - 1] = to;
			} else {
				t.records -= to - from;
				gap_from[ngaps] = from;
				gap_to[ngaps++] = to;
			}
		}
		t.bytes += sb_segment_len(l->segs[i]);
		t.logical_bytes += sb_segment_plain_len(l->segs[i]);
		t.compressed += sb_segment_zseg(l->segs[i]) != NULL;
	}
	t.stream_bytes = sb_log_stream_end(l) - sb_log_stream_start(l);
	pthread_rwlock_unlock(&l->seg_lock);
	for (size_t i = 0; i < ngaps; i++)
		if (count_present(l, gap_from[i], gap_to[i], &t.records))
			t.unreadable |= 1;
	t.first = t.next;
	if (t.next > t.start && sb_log_next_present(l, t.start, &t.first))
		t.first = t.start; /* damage there: shown as unreadable below */
	if (t.records) {
		if (sb_log_stat(l, t.first, &info) == 0)
			t.oldest_ns = info.timestamp_ns;
		else
			t.unreadable |= 1;
		if (sb_log_stat(l, t.next - 1, &info) == 0)
			t.newest_ns = info.timestamp_ns;
		else
			t.unreadable |= 2;
	}
	pthread_mutex_lock(&l->sync_mu);
	t.syncs = l->syncs;
	t.synced_appends = l->synced_appends;
	pthread_mutex_unlock(&l->sync_mu);
	*st = t;
	return 0;
}
