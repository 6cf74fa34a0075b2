/*
 * log_append.c - a topic's log: appending (checking a batch, rolling to a
 * new segment, an empty log's first offset, a compacted topic's gap), group
 * commit, and syncing the sealed segments and the start (sb_log_sync, the
 * flusher's pass). The segments, the start, opening and closing are in
 * log.c, which also gives the lock order; the fields are in log_impl.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "codec.h"
#include "fsutil.h"
#include "log.h"
#include "log_impl.h"

static void report(sb_log *l, const char *what, int rc, const char *then)
{
	char msg[256];

	if (!l->opt.report)
		return;
	snprintf(msg, sizeof(msg), "%s failed: %s; %s", what, sb_strerror(rc), then);
	l->opt.report(l->opt.report_arg, l->name, msg);
}

/* A failure rc after which the log refuses appends until it is reopened
 * (err), said once. Records appended before it are still synced and
 * acknowledged (wait_synced) unless a sync of records failed (lost): its
 * pages may be gone, and a later sync that succeeds proves nothing. */
static void stick_as(sb_log *l, const char *what, int rc, int lost)
{
	int none = 0;

	if (lost)
		atomic_store(&l->sync_lost, 1);
	if (atomic_compare_exchange_strong(&l->err, &none, rc))
		report(l, what, rc, "appends to the topic are refused until it is reopened (remount)");
}

static void stick(sb_log *l, const char *what, int rc)
{
	stick_as(l, what, rc, 0);
}

/* 0, or after a failed sync of records the error to return (err, which
 * stick_as sets just after sync_lost). */
static int sync_lost(sb_log *l)
{
	if (!atomic_load(&l->sync_lost))
		return 0;
	int rc = atomic_load(&l->err);
	return rc ? rc : -EIO;
}

/* Whether failure rc was the lack of a descriptor or of memory to open,
 * create or map a file (EMFILE, ENFILE, ENOMEM: nothing was written, no
 * sync failed): it fails only the call that met it; the next tries again. */
static int transient(int rc)
{
	return rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM;
}

/* A roll's or a seal's failure rc (not 0) in sealing s: sticks unless
 * transient, lost if s's records were not synced. Returns rc. */
static int failed(sb_log *l, const char *what, int rc, const sb_segment *s)
{
	if (!transient(rc))
		stick_as(l, what, rc, s && !sb_segment_data_synced(s));
	return rc;
}

/* Seal the active segment and start a new one after it. [append] */
static int roll(sb_log *l)
{
	sb_segment *last = sb_log_active(l), *s;
	/* Under `always` every record is synced before it is acknowledged,
	 * and group commit syncs the active segment only: seal it synchronously.
	 * Otherwise the flusher syncs it in the background
	 * (sb_log_finish_seals). */
	int rc = sb_segment_finish(last);

	/* A failed sync of the segment being sealed refuses appends whatever
	 * its errno, ENOSPC too: the caller forgives ENOSPC (a full disk,
	 * retried) only from cutting the old segment's preallocated tail or
	 * creating the next one. */
	if (!rc && l->cfg.sync == SB_SYNC_ALWAYS && (rc = sb_segment_make_durable(last)))
		return failed(l, "sealing the full segment", rc, last);
	if (rc)
		return rc;
	rc = sb_segment_create(&l->sp, sb_segment_next(last), sb_segment_stream_end(last), &s);
	if (rc)
		return rc;
	rc = sb_fsync_dir(l->io, l->dir);
	if (!rc)
		rc = sb_log_segs_push(l, s);
	if (rc)
		sb_segment_remove(s);
	return rc;
}

/*
 * Wait until an fdatasync covers append number `seq`, doing it ourselves if
 * no one else is (group commit). The leader lingers briefly for other
 * appenders when the previous sync covered several, so that a crowd shares
 * one sync instead of alternating between a full one and a lone one.
 */
static int wait_synced(sb_log *l, uint64_t seq)
{
	int rc = 0;

	pthread_mutex_lock(&l->sync_mu);
	if (l->lingering)
		pthread_cond_signal(&l->linger_cv);
	while (l->synced < seq) {
		/* Another's failure (a roll's, a span's) refuses later appends
		 * but leaves this one's record written: sync it, as its writer
		 * will be told it is there. Not after a failed sync. */
		if ((rc = sync_lost(l)))
			break;
		if (l->syncing) {
			pthread_cond_wait(&l->sync_cv, &l->sync_mu);
			continue;
		}
		l->syncing = 1;
		if (l->last_batch > 1) {
			long long wait = l->last_sync_dur / 2;
			if (wait > 1000000)
				wait = 1000000;
			long long until = sb_now_ns() + wait;
			struct timespec ts = {until / 1000000000LL, until % 1000000000LL};
			l->lingering = 1;
			while (atomic_load(&l->appended) - l->synced < l->last_batch && sb_now_ns() < until)
				if (pthread_cond_timedwait(&l->linger_cv, &l->sync_mu, &ts))
					break;
			l->lingering = 0;
		}
		pthread_mutex_unlock(&l->sync_mu);

		/* Every append counted in `target` is in the active segment or
		 * in one sealed before it (under `always` a roll syncs what it
		 * seals; otherwise sb_log_sync() calls sb_log_finish_seals
		 * afterwards). No append_mu here: holders of append_mu wait for
		 * `syncing`. */
		pthread_rwlock_rdlock(&l->seg_lock);
		/* the records below nx are in the mapping before the fdatasync
		 * starts (published after they were written) */
		uint64_t nx = sb_log_next(l);
		uint64_t target = atomic_load(&l->appended);
		int fd = l->nsegs ? sb_segment_fd(sb_log_active(l)) : -1;
		pthread_rwlock_unlock(&l->seg_lock);
		long long t0 = sb_now_ns();
		int r = fd < 0 ? -ENOENT : l->io->fdatasync(l->io->ctx, fd);
		long long t1 = sb_now_ns();

		pthread_mutex_lock(&l->sync_mu);
		l->syncing = 0;
		if (r) {
			stick_as(l, "syncing the newest segment", r, 1);
		} else if (target > l->synced) {
			if (nx > atomic_load(&l->synced_next))
				atomic_store(&l->synced_next, nx);
			l->last_batch = target - l->synced;
			l->synced_appends += target - l->synced;
			l->synced = target;
			l->syncs++;
		}
		l->last_sync_ns = t1;
		l->last_sync_dur = t1 - t0;
		pthread_cond_broadcast(&l->sync_cv);
	}
	pthread_mutex_unlock(&l->sync_mu);
	return rc;
}

_Static_assert(SB_RECORD_TOMBSTONE == SB_REC_TOMBSTONE, "sb_store.h names format.h's tombstone flag");

/* Check a batch; its encoded size in *bytes, whether a record of it has
 * headers in *hdrs. */
static int check_batch(const sb_log *l, const sb_record_in *r, size_t n, size_t *bytes, int *hdrs, int *keyed)
{
	size_t b = 0;
	uint32_t kl = 0;
	int rc, any = 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (r[i].value_len > l->cfg.max_record_bytes)
			return -EFBIG;
		if (r[i].key_len > SB_KEY_MAX)
			return -EINVAL;
		if (r[i].flags & ~SB_REC_KNOWN_FLAGS)
			return -EINVAL;
		if ((r[i].flags & SB_REC_TOMBSTONE) && (!r[i].key_len || r[i].value_len))
			return -EINVAL; /* a tombstone is a key and no payload */
		if (r[i].n_headers) {
			if ((rc = sb_headers_check(r[i].headers, r[i].n_headers)))
				return rc;
			any = 1;
		}
		b += sb_rec_size_in(&r[i]);
		kl |= r[i].key_len;
	}
	if (b > l->batch_max)
		return -EFBIG;
	*bytes = b;
	*hdrs = any;
	*keyed = kl != 0;
	return 0;
}

/* Append with append_mu held at offset `from` (the next offset, or past it
 * in a compacted topic); *seq gets the append's number. */
static int append_locked(sb_log *l, uint64_t from, const sb_record_in *r, size_t n, size_t bytes, int hdrs,
			 uint64_t *first, uint64_t *seq)
{
	sb_segment *s = sb_log_active(l);
	uint64_t len = sb_segment_len(s);
	long long now = sb_now_ns();
	int rc;
	/* Records with headers go into version 3 segments only (format.h). */
	int old = hdrs && sb_segment_version(s) < 3;

	if (l->clean_unsynced) {
		if ((rc = sb_fsync_dir(l->io, l->dir)))
			return rc;
		l->clean_unsynced = 0;
	}
	if (old && len == SB_SEG_HDR && (rc = sb_segment_upgrade(s)))
		return rc;
	/* A gap farther than this segment's span can reach (2^32 offsets
	 * from its base): the next segment starts at the next offset, if its
	 * span can. */
	uint64_t next = sb_segment_next(s);
	if (from != next && from + n - next > UINT32_MAX)
		return -EINVAL;
	int far = from != next && from + n - sb_segment_base(s) > UINT32_MAX;
	if (len > SB_SEG_HDR && (old || far || len + bytes > SB_SEG_HDR + l->cfg.segment_bytes)) {
		rc = roll(l);
		if (rc && transient(rc))
			report(l, "starting a new segment", rc, "the append fails, the next tries again");
		else if (rc && rc != -ENOSPC)
			stick(l, "starting a new segment", rc);
		if (rc)
			return rc;
		s = sb_log_active(l);
	}
	uint64_t off = from;
	if ((off != sb_segment_next(s) || sb_segment_compacted(s)) && (rc = sb_segment_reach(s, off, n)))
		return rc == -EINVAL ? rc : failed(l, "marking the newest segment's span", rc, NULL);
	rc = sb_segment_append(s, off, r, n, bytes, now);
	if (rc)
		return rc;
	atomic_store_explicit(&l->stream_end, sb_segment_stream_end(s), memory_order_release);
	atomic_store_explicit(&l->mtime_ns, now, memory_order_relaxed);
	atomic_store_explicit(&l->next, off + n, memory_order_release);
	sb_log_keys_added(l, r, n, off, bytes);
	*seq = atomic_fetch_add(&l->appended, 1) + 1;
	if (first)
		*first = off;
	return 0;
}

static int append_common(sb_log *l, int at_set, uint64_t at, const sb_record_in *r, size_t n,
			 uint64_t *first)
{
	size_t bytes;
	uint64_t seq = 0, off;
	int rc, hdrs = 0, keyed = 0;

	if (l->read_only)
		return -EROFS;
	rc = check_batch(l, r, n, &bytes, &hdrs, &keyed);
	if (rc)
		return rc;
	/* The topic's first keyed batch (since the open) opens its key index,
	 * which reads the log so far, before the batch is written: then
	 * sb_log_keys_added, under append_mu, finds it. */
	if (keyed && (rc = sb_log_keys_ready(l)))
		return rc;
	pthread_mutex_lock(&l->append_mu);
	if (atomic_load(&l->removed)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if ((rc = atomic_load(&l->err)))
		goto out_unlock;
	/* Offsets never wrap: the next offset after the batch must exist;
	 * nor go past the opener's max_offset (the last one it can name). */
	uint64_t from = at_set ? at : atomic_load(&l->next);
	if (from >= UINT64_MAX - n || (l->opt.max_offset && from + n - 1 > l->opt.max_offset)) {
		rc = -EOVERFLOW;
		goto out_unlock;
	}
	/* Nor stream positions: the stream stays within what a segment
	 * header may say (bytes bounds the payloads). */
	if (atomic_load(&l->stream_end) > SB_STREAM_MAX - bytes) {
		rc = -EOVERFLOW;
		goto out_unlock;
	}
	/* A compacted topic takes an offset past its next one (a backup with
	 * gaps copied back, SPEC §3): append_locked puts it in the active
	 * segment, inside its span (format.h "Compacted segment"). */
	uint64_t next = atomic_load(&l->next);
	int gap = at_set && at > next && atomic_load(&l->start) != next && (l->cfg.cleanup & SB_CLEANUP_COMPACT);
	if (at_set && at != next && !gap) {
		if (at < next || atomic_load(&l->start) != next) {
			rc = -EINVAL;
			goto out_unlock;
		}
		/* An empty log may start anywhere past its end: a new segment.
		 * The new start is saved before that segment exists: a crash
		 * after leaves what precedes it below the saved start, which
		 * the next open removes (log_recover.c), never a gap it must
		 * refuse. */
		sb_segment *s = sb_log_active(l), *ns;
		int empty_seg = sb_segment_len(s) == SB_SEG_HDR;
		if ((!empty_seg && (rc = sb_segment_seal(s))) || (rc = sb_log_save_meta(l, at, 0)))
			goto out_unlock;
		rc = sb_segment_create(&l->sp, at, sb_segment_stream_end(s), &ns);
		if (rc)
			goto out_unlock;
		if ((rc = sb_log_segs_push(l, ns))) {
			sb_segment_remove(ns);
			goto out_unlock;
		}
		if (empty_seg) {
			/* The old empty segment goes: move it out of the array. */
			sb_log_segs_wrlock_idle(l);
			l->segs[l->nsegs - 2] = l->segs[l->nsegs - 1];
			l->nsegs--;
			pthread_rwlock_unlock(&l->seg_lock);
			sb_segment_remove(s);
		}
		atomic_store(&l->next, at);
		rc = sb_log_set_start(l, at, 0); /* also fsyncs the directory */
		if (rc)
			goto out_unlock;
	}
	rc = append_locked(l, at_set ? at : next, r, n, bytes, hdrs, &off, &seq);
out_unlock:
	pthread_mutex_unlock(&l->append_mu);
	if (!rc && l->cfg.sync == SB_SYNC_ALWAYS)
		rc = wait_synced(l, seq);
	if (!rc && first)
		*first = off;
	return rc;
}

int sb_log_append(sb_log *l, const sb_record_in *recs, size_t n, uint64_t *first_offset)
{
	return append_common(l, 0, 0, recs, n, first_offset);
}

int sb_log_append_at(sb_log *l, uint64_t at, const sb_record_in *recs, size_t n)
{
	return append_common(l, 1, at, recs, n, NULL);
}

size_t sb_log_batch_max(const sb_log *l)
{
	return l->batch_max;
}

/*
 * Sync the sealed segments that a roll left unsynced, oldest first, all their
 * records before any of their index files, and save those. Never takes append_mu; holds the `syncing` flag so that a
 * segment being synced is not dropped meanwhile.
 */
int sb_log_finish_seals(sb_log *l)
{
	int rc = 0;

	while (!rc) {
		sb_segment *s = NULL;
		pthread_mutex_lock(&l->sync_mu);
		while (l->syncing)
			pthread_cond_wait(&l->sync_cv, &l->sync_mu);
		/* After a failed sync of records, trying it again and
		 * succeeding proves nothing (a caller that began before the
		 * failure waited here for it). */
		if ((rc = sync_lost(l))) {
			pthread_mutex_unlock(&l->sync_mu);
			return rc;
		}
		l->syncing = 1;
		pthread_mutex_unlock(&l->sync_mu);
		/* With `syncing` set no segment is dropped (drop_front waits).
		 * One step a turn (appenders that roll wait for `syncing`
		 * between them): the records of the oldest sealed segment not
		 * synced; once there is none, the index files of the oldest
		 * not saved. Records first: an index costs four times its
		 * segment's sync (two files, their renames, the directory),
		 * and a backlog of small sealed segments synced one whole
		 * segment at a time left records unsynced for seconds under
		 * `interval` (found by a tester). */
		pthread_rwlock_rdlock(&l->seg_lock);
		for (size_t i = 0; i + 1 < l->nsegs && !s; i++)
			if (sb_segment_unsynced(l->segs[i]) && !sb_segment_data_synced(l->segs[i]))
				s = l->segs[i];
		int records = s != NULL;
		for (size_t i = 0; i + 1 < l->nsegs && !s; i++)
			if (sb_segment_unsynced(l->segs[i]))
				s = l->segs[i];
		pthread_rwlock_unlock(&l->seg_lock);
		if (s && records) {
			rc = sb_segment_sync_data(s);
		} else if (s) {
			rc = sb_segment_make_durable(s);
			if (!rc)
				rc = sb_fsync_dir(l->io, l->dir);
		}
		pthread_mutex_lock(&l->sync_mu);
		l->syncing = 0;
		if (rc) /* (a sealed segment's index not saved: tried again) */
			failed(l, "syncing a sealed segment", rc, records ? s : NULL);
		pthread_cond_broadcast(&l->sync_cv);
		pthread_mutex_unlock(&l->sync_mu);
		if (!s)
			break;
		if (l->close_step)
			l->close_step(l->close_step_arg);
	}
	return rc;
}

int sb_log_sync_lost(sb_log *l)
{
	return sync_lost(l);
}

int sb_log_sync(sb_log *l)
{
	int rc;

	if (l->read_only)
		return 0;
	/* After a failure that refused appends but lost nothing (a roll's,
	 * an index's), what was appended is still synced: only a failed
	 * sync of records makes every later sync fail. */
	if ((rc = sync_lost(l)))
		return rc;
	/* Sync the active segment first, then whatever was sealed before or
	 * meanwhile: together they hold every append made before this call. */
	rc = wait_synced(l, atomic_load(&l->appended));
	if (!rc)
		rc = sb_log_finish_seals(l);
	if (!rc) { /* and the removals made before this call */
		pthread_mutex_lock(&l->append_mu);
		rc = sb_log_sync_meta(l);
		pthread_mutex_unlock(&l->append_mu);
	}
	return rc;
}

int sb_log_flush_due(sb_log *l, long long now_ns)
{
	long long last;
	uint64_t synced;

	if (l->read_only || atomic_load(&l->removed) || sync_lost(l))
		return 0;
	int rc = sb_log_finish_seals(l);
	sb_log_keys_sync(l);
	/* A start not saved for lack of space, or indexes: try again. Never
	 * wait for the appender here. */
	if (!rc && pthread_mutex_trylock(&l->append_mu) == 0) {
		if (l->meta_dirty && !atomic_load(&l->removed))
			sb_log_save_start(l);
		if (!atomic_load(&l->removed))
			sb_log_sync_meta(l); /* a failure is tried again next time */
		pthread_mutex_unlock(&l->append_mu);
	}
	if (rc || l->cfg.sync != SB_SYNC_INTERVAL)
		return rc;
	pthread_mutex_lock(&l->sync_mu);
	last = l->last_sync_ns;
	synced = l->synced;
	pthread_mutex_unlock(&l->sync_mu);
	if (synced == atomic_load(&l->appended) || now_ns - last < (long long)l->cfg.sync_interval_ms * 1000000LL)
		return 0;
	return sb_log_sync(l);
}
