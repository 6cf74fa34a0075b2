/*
 * log_compact.c - cleanup = compact: a log's sealed segments rewritten
 * keeping only the latest record of each key (format.h, "Compacted
 * segment"; SPEC §2 "Keys").
 *
 * A round first syncs what was appended (sb_log_sync), then takes the run
 * of sealed, synced, plain segments at the head of the log (it stops at
 * the first compressed, unsynced or active one: the newest segment is
 * never touched) and rewrites them. A round is due at a roll, when a kept
 * tombstone expires, and SB_COMPACT_RETRY_MS after the last one when
 * records were appended since (log.h: sb_log_compact_due). A record stays when
 * it has no key, or when the key index names it as its key's latest
 * record (one lookup, no second pass over the log) and it is not a
 * tombstone older than delete_retention_ms. Only a record below the
 * round's horizon (the first segment that is unsynced, or in the newest
 * the end of what its last fdatasync covered) may supersede another, so
 * that what replaces a removed record is on disk.
 *
 * Offsets stay; the stream loses the removed payloads: each rewritten
 * segment's base stream pos is chosen so that it ends where its successor
 * begins (that is why the new files are built newest first), and the
 * log's stream start moves up. For each segment NNNN.seg:
 *   1. (newest first) write NNNN.cseg.tmp from the segment's file (its own
 *      descriptor and mapping; nothing of the log held), every record
 *      checked (CRC); fdatasync it;
 *   2. (oldest first: see run()) under append_mu (no removal drops the
 *      segment meanwhile): remove NNNN.idx and NNNN.tix, fsync the
 *      directory (an old index covering more than the compacted file
 *      would read as records lost), rename the temp file over NNNN.seg,
 *      fsync the directory;
 *   3. open it (its index rebuilt and saved).
 * Then, under append_mu and seg_lock exclusive, every new segment takes its
 * old one's place at once, with the new stream start: readers finish with
 * the old segments first (their mappings of the old inodes), appenders
 * never wait for more than that. The old segments go to the open views
 * that may still read them (log_view.c: a view's positions never move;
 * they close when the last such view does), or are closed now. Last,
 * segments compacted to nothing go (drop_empty). A crash before a rename
 * leaves *.tmp files that the next open removes; between two renames, a
 * stream overlap after a compacted segment, which recovery accepts (the
 * positions of compacted segments are derived) and the next round ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "codec.h"
#include "fsutil.h"
#include "keyidx.h"
#include "log.h"
#include "log_impl.h"

/* One segment of the round. */
typedef struct cseg {
	sb_segment *old, *ns;     /* ns: its compacted form, NULL if unchanged */
	uint64_t base, len, next, stream;
	uint32_t span;
	int built;                /* its temp file is written (run) */
} cseg;

typedef struct round {
	sb_log *l;
	cseg *c;
	size_t n;
	uint64_t horizon;         /* only records below it supersede others */
	uint64_t mark;            /* base of the newest segment */
	uint64_t succ_stream;     /* base stream of the segment after the run */
	int64_t now, keep_ns;     /* tombstones younger than keep_ns stay */
	int64_t due;              /* the next moment a kept tombstone expires */
	uint64_t covered;         /* the key tables cover the offsets below it */
	sb_compact_stats st;
} round;

/* The run at the head of the log; *horizon. 0, -ENOENT (the log was removed)
 * or -ENOMEM. */
static int pick(round *r)
{
	sb_log *l = r->l;
	int rc = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	if (!l->nsegs) { /* removed since sb_log_compact looked */
		pthread_rwlock_unlock(&l->seg_lock);
		return -ENOENT;
	}
	size_t n = 0;
	while (n + 1 < l->nsegs && !sb_segment_zseg(l->segs[n]) && !sb_segment_unsynced(l->segs[n]))
		n++;
	size_t h = 0;
	while (h + 1 < l->nsegs && !sb_segment_unsynced(l->segs[h]))
		h++;
	r->horizon = sb_segment_base(l->segs[h]);
	if (h + 1 == l->nsegs && atomic_load(&l->synced_next) > r->horizon)
		r->horizon = atomic_load(&l->synced_next); /* synced in the newest one */
	r->mark = sb_segment_base(l->segs[l->nsegs - 1]);
	if (n && !(r->c = calloc(n, sizeof(*r->c))))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		sb_segment *s = l->segs[i];
		r->c[i] = (cseg){.old = s, .base = sb_segment_base(s), .len = sb_segment_len(s),
				 .next = sb_segment_next(s), .stream = sb_segment_base_stream(s),
				 .span = sb_segment_compacted(s)};
	}
	if (!rc) {
		r->n = n;
		r->st.end = sb_segment_base(l->segs[n]);
		r->succ_stream = sb_segment_base_stream(l->segs[n]);
	}
	pthread_rwlock_unlock(&l->seg_lock);
	return rc;
}

/* Does the record stay? */
static int keep(round *r, const sb_rec_hdr *h, const uint8_t *key)
{
	sb_mt_val v;

	if (!h->key_len)
		return 1;
	/* Not in the index (a put that found no memory), or a damaged table:
	 * keep it; a later round may know. */
	if (!r->l->kx || sb_kx_get(r->l->kx, key, h->key_len, &v))
		return 1;
	if (v.offset != h->offset)
		return v.offset < h->offset || v.offset >= r->horizon;
	if (!(h->flags & SB_REC_TOMBSTONE))
		return 1;
	/* Expired, and a key table holds it: the runs in memory are replayed
	 * from the log at the next open, which would not have it, and an
	 * older entry of the key in a table would come back. */
	if (h->timestamp_ns < r->now - r->keep_ns && h->offset < r->covered) {
		r->st.tombstones_dropped++;
		return 0;
	}
	int64_t at = h->timestamp_ns + r->keep_ns;
	if (at <= r->now) /* expired, no table holds it (its write failed) */
		at = r->now + 1000000000LL;
	if (at < r->due)
		r->due = at;
	return 1;
}

/* Step 1: the kept records of map[0, c->len) into out from SB_SEG_HDR on;
 * *kept_stream their payload bytes, *out_len the file's length, *removed
 * the records left out. SB_ECORRUPT at damage. */
static int copy_kept(round *r, const cseg *c, const uint8_t *map, unsigned version, int out,
		     uint64_t *kept_stream, uint64_t *out_len, uint64_t *removed)
{
	uint64_t pos = SB_SEG_HDR, at = SB_SEG_HDR, ks = 0, gone = 0, prev = c->base;
	sb_rec_hdr h;
	int rc;

	while (pos < c->len) {
		if (sb_rec_decode_v(map + pos, c->len - pos, version, 1, &h) != SB_REC_OK || h.offset < prev ||
		    h.offset >= c->next)
			return SB_ECORRUPT;
		prev = h.offset + 1;
		r->st.records_in++;
		if (keep(r, &h, map + pos + SB_REC_AT_KEY)) {
			if ((rc = sb_pwrite_full(r->l->io, out, map + pos, h.size, (off_t)at)))
				return rc;
			at += h.size;
			ks += h.value_len;
			r->st.records_out++;
		} else {
			gone++;
		}
		pos += h.size;
	}
	*kept_stream = ks;
	*out_len = at;
	*removed = gone;
	return 0;
}

static void tmp_path(char *tmp, size_t cap, const char *path)
{
	snprintf(tmp, cap, "%.*s.cseg.tmp", (int)(strlen(path) - strlen(SB_SEG_SUFFIX)), path);
}

/* Step 1 for c, packed to end at stream position `end`: 0 and *new_stream
 * (the segment's base stream pos after the round); 1 when the file needs
 * no rewrite; an error. */
static int build(round *r, cseg *c, const char *path, uint64_t end, uint64_t *new_stream)
{
	const sb_io *io = r->l->io;
	char tmp[PATH_MAX + 16];
	sb_seg_hdr sh;
	uint64_t ks = 0, olen = 0, gone = 0;
	int in, out, rc;

	in = io->open(io->ctx, path, O_RDONLY, 0);
	if (in < 0)
		return in == -ENOENT ? -ESTALE : in; /* dropped meanwhile */
	uint8_t *map = mmap(NULL, c->len, PROT_READ, MAP_SHARED, in, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_in;
	}
	if ((rc = sb_seg_hdr_decode(map, &sh)))
		goto out_unmap;
	tmp_path(tmp, sizeof(tmp), path);
	out = io->open(io->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		rc = out;
		goto out_unmap;
	}
	rc = copy_kept(r, c, map, sh.version, out, &ks, &olen, &gone);
	if (!rc && end - c->stream < ks)
		rc = SB_ECORRUPT; /* the successor starts before this one's records end */
	if (!rc && !gone && end - ks == c->stream) {
		rc = 1; /* as it was */
		*new_stream = c->stream;
	}
	if (!rc) {
		sh.base_stream = end - ks;
		sh.span = (uint32_t)(c->next - c->base);
		rc = sb_segment_seal_file(io, out, &sh);
	} else {
		io->close(io->ctx, out);
	}
	if (rc)
		io->unlink(io->ctx, tmp);
	if (!rc) {
		*new_stream = sh.base_stream;
		r->st.bytes_in += c->len;
		r->st.bytes_out += olen;
	}
out_unmap:
	munmap(map, c->len);
out_in:
	io->close(io->ctx, in);
	return rc;
}

/* Is c->old still in the log? With append_mu held. Its base too: once
 * dropped (rm, retention) its memory may hold a newer segment, which the
 * round then took for it (it renamed the rewritten file back where the
 * drop had removed the old one, and put it in the newer one's place in the
 * array: .log EIO, removed records back at the next open; found by an
 * exploratory tester). */
static int still_here(sb_log *l, const cseg *c)
{
	int here = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	for (size_t i = 0; i + 1 < l->nsegs && !here; i++)
		here = l->segs[i] == c->old && sb_segment_base(l->segs[i]) == c->base;
	pthread_rwlock_unlock(&l->seg_lock);
	return here && !atomic_load(&l->removed);
}

/* Step 2 (takes append_mu) and 3. */
static int swap(round *r, cseg *c, const char *path)
{
	sb_log *l = r->l;
	const sb_io *io = l->io;
	char tmp[PATH_MAX + 16];
	int ch = 0, rc = 0, renamed = 0;

	tmp_path(tmp, sizeof(tmp), path);
	int64_t prior_max = 0;
	pthread_mutex_lock(&l->append_mu);
	if (!still_here(l, c))
		rc = -ESTALE;
	else /* (read while it cannot be dropped) */
		prior_max = sb_segment_prior_max(c->old);
	if (!rc)
		rc = sb_segment_replace_file(io, l->dir, path, tmp, &renamed);
	pthread_mutex_unlock(&l->append_mu);
	if (rc && renamed) /* the new file is in place, not in use */
		sb_log_rewrite_failed(l, path, rc);
	if (rc) {
		io->unlink(io->ctx, tmp);
		return rc;
	}
	/* The file is compacted now, whatever happens next: on failure the
	 * old segment (its mapping of the old file) serves until reopened,
	 * and no round reads its path meanwhile (it would map the smaller
	 * new file at the old length). */
	if ((rc = sb_segment_open(&l->sp, c->base, SB_SEG_QUIET, &ch, &c->ns))) {
		sb_log_rewrite_failed(l, path, rc);
		return rc;
	}
	sb_segment_set_prior_max(c->ns, prior_max);
	(void)sb_segment_save_index(c->ns); /* no room: rebuilt at the next open */
	r->st.segments++;
	return 0;
}

/* The stream pos of offset `start` in the segments, with seg_lock held. */
static uint64_t stream_of_start(sb_log *l, uint64_t start)
{
	uint64_t st = sb_log_stream_end(l), lower;

	for (size_t i = 0; i < l->nsegs; i++) {
		sb_segment *s = l->segs[i];
		if (start < sb_segment_next(s)) {
			if (sb_segment_stream_of(s, start < sb_segment_base(s) ? sb_segment_base(s) : start, &st,
						 &lower))
				st = lower;
			break;
		}
	}
	return st;
}

/* Every new segment in its old one's place, at once. The old ones go to
 * the open views that may still read them (log_view.c): 1, and the caller
 * leaves them open; 0: they are the caller's to close. */
static int publish(round *r, sb_view_prep *vp)
{
	sb_log *l = r->l;
	sb_log_view *put = NULL;
	size_t k = 0;

	pthread_mutex_lock(&l->append_mu);
	sb_log_segs_wrlock_idle(l);
	for (size_t i = 0; i < r->n; i++) {
		cseg *c = &r->c[i];
		for (size_t j = 0; c->ns && j + 1 < l->nsegs; j++)
			if (l->segs[j] == c->old && sb_segment_base(l->segs[j]) == c->base) {
				l->segs[j] = c->ns;
				vp->old[k++] = c->old; /* oldest first */
				c->ns = NULL; /* now the log's */
				c->old = NULL;
				break;
			}
	}
	atomic_store(&l->stream_start, stream_of_start(l, atomic_load(&l->start)));
	/* A reader's positions stay as they were (SPEC §2) */
	int kept = sb_log_views_advance(l, vp, k, r->succ_stream, &put);
	pthread_rwlock_unlock(&l->seg_lock);
	pthread_mutex_unlock(&l->append_mu);
	sb_log_view_close(put);
	for (size_t i = 0; i < r->n; i++) {
		cseg *c = &r->c[i];
		if (!c->ns && !c->old)
			continue;
		/* dropped meanwhile: the new file went with it, but the index
		 * files swap() saved after the drop are still to go */
		if (c->ns)
			(void)sb_segment_remove(c->ns);
		c->ns = NULL;
	}
	return kept;
}

/* ---- segments compacted to nothing ---------------------------------------- */

/* A segment of no record left (its header alone), compacted. */
static int empty(const sb_segment *s)
{
	return sb_segment_compacted(s) && !sb_segment_zseg(s) && sb_segment_len(s) == SB_SEG_HDR;
}

/* Segments [i, j) are empty, segs[i - 1] (p) is not compressed: p takes
 * their offsets, they go. [append] */
static int absorb_run(sb_log *l, size_t i, size_t j)
{
	sb_segment *p = l->segs[i - 1], **gone;
	uint64_t to = sb_segment_base(l->segs[j]);
	size_t k = j - i;
	int rc;

	if (!(gone = malloc(k * sizeof(*gone))))
		return -ENOMEM;
	/* p's span first, synced: a crash after it leaves the empty files
	 * inside p's span, which recovery removes (log_recover.c) */
	if ((rc = sb_segment_write_span(p, to))) {
		free(gone);
		return rc;
	}
	sb_log_segs_wrlock_idle(l);
	sb_segment_set_span(p, to);
	memcpy(gone, l->segs + i, k * sizeof(*gone));
	memmove(l->segs + i, l->segs + j, (l->nsegs - j) * sizeof(*gone));
	l->nsegs -= k;
	pthread_rwlock_unlock(&l->seg_lock);
	for (size_t g = 0; g < k; g++) {
		int r = sb_segment_remove(gone[g]); /* no reader reaches it now */
		if (!rc)
			rc = r;
	}
	free(gone);
	if (!rc)
		rc = sb_fsync_dir(l->io, l->dir);
	return rc;
}

/*
 * Segments compacted to nothing go (their offsets stay: none holds a
 * record). At the head of the log the start moves past them (saved, then
 * their files dropped: sb_log_drop_empty_head), but not while a view is
 * open: a view may still read those offsets' records in the segments the
 * rounds replaced (log_view.c), and a record below the start reads as
 * removed (retention), so a slow reader got ENODATA; a later round drops
 * them. Elsewhere the
 * segment before takes their offsets into its span, its header rewritten
 * in place and synced before the files are removed. The newest segment is
 * never one of them. A compressed segment before them is left as it is
 * (its offsets are dense), and so are they.
 */
static int drop_empty(sb_log *l, uint32_t *removed)
{
	size_t h = 0;
	int rc = 0;

	pthread_mutex_lock(&l->append_mu);
	while (h + 1 < l->nsegs && empty(l->segs[h]))
		h++;
	if (h && !atomic_load(&l->removed) && !sb_log_views_open(l) &&
	    !(rc = sb_log_drop_empty_head(l, h)))
		*removed += (uint32_t)h;
	for (size_t i = 1; !rc && i + 1 < l->nsegs && !atomic_load(&l->removed); i++) {
		size_t j = i;
		while (j + 1 < l->nsegs && empty(l->segs[j]))
			j++;
		if (j == i || sb_segment_zseg(l->segs[i - 1]))
			continue;
		if (!(rc = absorb_run(l, i, j)))
			*removed += (uint32_t)(j - i);
	}
	pthread_mutex_unlock(&l->append_mu);
	return rc;
}

/*
 * Build every new file newest first (each packed against its successor's
 * new place), then swap them oldest first: a crash between two swaps then
 * never leaves a key's latest record or tombstone removed while an older
 * record of that key is still in a segment not yet swapped, which the key
 * index rebuilt at the next open would take for the key's latest (a
 * deleted key back with an old value). A swap that fails stops the swaps;
 * the temp files left are removed.
 */
static int run(round *r)
{
	sb_log *l = r->l;
	char path[PATH_MAX], name[32];
	uint64_t end = r->succ_stream;
	int rc = 0;

	for (size_t i = r->n; i-- > 0 && !atomic_load(&l->removed);) {
		cseg *c = &r->c[i];
		uint64_t ns = c->stream;
		if (atomic_load(&l->stop_rewrites)) {
			rc = -ECANCELED; /* the store closes: nothing is swapped */
			break;
		}
		sb_seg_name(name, c->base, SB_SEG_SUFFIX);
		if ((rc = sb_path(path, l->dir, name)))
			break;
		rc = build(r, c, path, end, &ns);
		c->built = rc == 0;
		if (rc == 1 || rc == SB_ECORRUPT || rc == -ESTALE) {
			/* unchanged, damaged (reads report it; left as it is)
			 * or dropped: the ones before it pack against it */
			ns = c->stream;
			rc = 0;
		}
		if (rc)
			break;
		end = ns;
	}
	for (size_t i = 0; i < r->n; i++) {
		cseg *c = &r->c[i];
		if (!c->built)
			continue;
		sb_seg_name(name, c->base, SB_SEG_SUFFIX);
		int e = sb_path(path, l->dir, name);
		if (!e && !rc && !atomic_load(&l->removed)) {
			e = swap(r, c, path); /* its temp file gone, whatever it says */
			rc = e == -ESTALE ? 0 : e; /* dropped meanwhile: and the ones before it */
		} else if (!e) {
			char tmp[PATH_MAX + 16];
			tmp_path(tmp, sizeof(tmp), path);
			r->l->io->unlink(r->l->io->ctx, tmp);
		}
	}
	return rc;
}

int sb_log_compact(sb_log *l, int64_t now_ns, sb_compact_stats *st)
{
	round r = {.l = l, .now = now_ns, .due = INT64_MAX};
	int rc;

	if (l->read_only)
		return -EROFS;
	if (atomic_load(&l->removed))
		return -ENOENT;
	if ((rc = atomic_load(&l->rewrite_err)))
		return rc;
	r.keep_ns = l->cfg.delete_retention_ms > INT64_MAX / 1000000 ? INT64_MAX / 2
								     : l->cfg.delete_retention_ms * 1000000;
	/* The round asks the key index which record is a key's latest: it
	 * opens now if no use of the keys opened it yet (log_keys.c). */
	if ((rc = sb_log_keys_ready(l)))
		return rc;
	pthread_mutex_lock(&l->compress_mu); /* one rewriter of segments at a time */
	sb_view_prep vp = {0};
	uint64_t next = atomic_load(&l->next), bytes = atomic_load(&l->stream_end);
	/* What is appended may supersede older records once it is durable:
	 * synced now, not by the flusher a moment after the roll that made
	 * the round due (under sync = interval the round then kept every
	 * record the newest ones superseded, and nothing made it due again).
	 * A failure leaves the horizon where the syncs got to. */
	(void)sb_log_sync(l);
	rc = pick(&r);
	if (!rc && r.n && l->kx)
		r.covered = sb_kx_cover(l->kx, r.st.end);
	if (!rc && r.n)
		rc = sb_log_views_prep(&vp, r.n); /* before anything is rewritten */
	if (!rc && r.n)
		rc = run(&r);
	sb_segment **old_of = NULL;
	if (r.n && (old_of = calloc(r.n, sizeof(*old_of)))) {
		for (size_t i = 0; i < r.n; i++)
			old_of[i] = r.c[i].ns ? r.c[i].old : NULL;
	}
	int kept = r.n && vp.old ? publish(&r, &vp) : 0;
	sb_log_views_unprep(&vp);
	/* The old segments that were replaced: no reader holds them now, and
	 * no view may read them (else they are the views' now). */
	if (old_of && !kept) {
		for (size_t i = 0; i < r.n; i++)
			if (r.c[i].old) /* not replaced (dropped meanwhile) */
				old_of[i] = NULL;
		for (size_t i = 0; i < r.n; i++)
			if (old_of[i])
				sb_segment_close(old_of[i], 0);
	}
	if (!rc && r.n)
		rc = drop_empty(l, &r.st.segments_removed);
	atomic_store(&l->compact_due, r.due);
	if (!rc) {
		atomic_store(&l->compact_mark, r.mark);
		atomic_store(&l->compact_next, next);
		atomic_store(&l->compact_bytes, bytes);
		atomic_store(&l->compact_ns, now_ns);
	}
	r.st.horizon = r.horizon;
	pthread_mutex_unlock(&l->compress_mu);
	free(old_of);
	free(r.c);
	if (st)
		*st = r.st;
	return rc;
}

void sb_log_stop_rewrites(sb_log *l)
{
	sb_kx *x = sb_log_kx(l);

	atomic_store(&l->stop_rewrites, 1);
	if (x)
		sb_kx_stop_merges(x);
}

/* Records appended since the last round (in the newest segment: no roll
 * made a round due) may supersede records the round kept: a round again,
 * SB_COMPACT_RETRY_MS after it, once they are 1/64 of the log's bytes or
 * more (a round reads every sealed segment: a trickle of appends to a big
 * log does not make one every few seconds). */
static int retry_due(sb_log *l, int64_t now_ns)
{
	uint64_t next = atomic_load(&l->next), end = atomic_load(&l->stream_end);
	uint64_t was = atomic_load(&l->compact_bytes), start = atomic_load(&l->stream_start);

	if (next == atomic_load(&l->compact_next) || now_ns - atomic_load(&l->compact_ns) < SB_COMPACT_RETRY_MS * 1000000LL)
		return 0;
	return end > was && (end - was) * 64 >= (end > start ? end - start : 0);
}

int sb_log_compact_due(sb_log *l, int64_t now_ns)
{
	uint64_t mark = atomic_load(&l->compact_mark);
	int due = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	int gone = !l->nsegs; /* removed (the compressor's snapshot held it) */
	due = !gone && sb_segment_base(l->segs[l->nsegs - 1]) != mark;
	pthread_rwlock_unlock(&l->seg_lock);
	return !gone && (due || now_ns >= atomic_load(&l->compact_due) || retry_due(l, now_ns));
}

int sb_log_in_compacted(sb_log *l, uint64_t offset)
{
	int in = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	for (size_t i = 0; i < l->nsegs && !in; i++) {
		sb_segment *s = l->segs[i];
		in = offset >= sb_segment_base(s) && offset < sb_segment_next(s) && sb_segment_compacted(s);
	}
	pthread_rwlock_unlock(&l->seg_lock);
	return in;
}

int sb_log_next_present(sb_log *l, uint64_t offset, uint64_t *found)
{
	int rc = -ENOENT;

	pthread_rwlock_rdlock(&l->seg_lock);
	uint64_t next = sb_log_next(l), start = sb_log_start(l);
	if (offset < start)
		offset = start;
	size_t lo = 0, hi = l->nsegs; /* the last segment with base <= offset */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (sb_segment_base(l->segs[mid]) <= offset)
			lo = mid;
		else
			hi = mid;
	}
	for (size_t i = lo; i < l->nsegs && offset < next && rc == -ENOENT && !atomic_load(&l->removed); i++) {
		sb_segment *s = l->segs[i];
		if (offset >= sb_segment_next(s))
			continue;
		if (offset < sb_segment_base(s))
			offset = sb_segment_base(s);
		rc = sb_segment_next_present(s, offset, found);
		if (!rc && *found >= next)
			rc = -ENOENT;
	}
	pthread_rwlock_unlock(&l->seg_lock);
	if (rc == SB_ECORRUPT) { /* damage: named, so that a read of it reports it */
		*found = offset;
		rc = 0;
	}
	return rc;
}
