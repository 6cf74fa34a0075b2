/*
 * log.c - a topic's log: its segments, the log start, opening, closing and
 * removal, retention. Appending (with group commit) and syncing are in
 * log_append.c, recovery in log_recover.c, reads in log_read.c.
 *
 * Locks, in the order they are taken:
 *   compress_mu one compressor or compactor of sealed segments (log_compress.c, log_compact.c);
 *              and the key index's open at its first use, which takes
 *              append_mu too (log_keys.c sb_log_keys_ready).
 *   append_mu  the appender: writing records, rolling, moving the start,
 *              dropping segments; guards the fields marked [append].
 *   (the key index's maint_mu and idx_mu, keyidx.h: its indexer reads the
 *              keyed records from the segments, seg_lock shared; nothing
 *              calls into the key index holding seg_lock)
 *   seg_lock   (rwlock) the segs array: readers hold it shared while they
 *              copy out of a segment; changes to the array take it exclusive.
 *   sync_mu    group commit state, marked [sync].
 * Fields marked [atomic] are published with release stores by the appender
 * (holding append_mu) and read with acquire loads by anyone.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "fsutil.h"
#include "log.h"
#include "log_impl.h"

/* Add a segment at the end of the array (seg_lock taken here). */
int sb_log_segs_push(sb_log *l, sb_segment *s)
{
	int rc = 0;

	pthread_rwlock_wrlock(&l->seg_lock);
	if (l->nsegs == l->segcap) {
		size_t cap = l->segcap ? l->segcap * 2 : 8;
		sb_segment **a = realloc(l->segs, cap * sizeof(*a));
		if (!a) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		l->segs = a;
		l->segcap = cap;
	}
	if (l->nsegs) { /* for the seek by time (log_time.c) */
		sb_segment *prev = l->segs[l->nsegs - 1];
		int64_t a = sb_segment_prior_max(prev), b = sb_segment_max_ts(prev);
		sb_segment_set_prior_max(s, a > b ? a : b);
	}
	l->segs[l->nsegs++] = s;
out_unlock:
	pthread_rwlock_unlock(&l->seg_lock);
	return rc;
}

sb_segment *sb_log_active(sb_log *l)
{
	return l->segs[l->nsegs - 1];
}

/*
 * seg_lock taken exclusive while no sealed segment is being synced. Seen
 * idle with seg_lock held: the syncer (sb_log_finish_seals) sets `syncing`
 * before it looks for a segment under seg_lock, so it picks none of those
 * the caller now drops. (Waiting for idle before taking seg_lock left a
 * gap: the syncer picked a segment meanwhile, and after its drop saved
 * that segment's index files back into the directory: rmdir of a removed
 * topic failed, or orphan index files stayed.)
 */
void sb_log_segs_wrlock_idle(sb_log *l)
{
	for (;;) {
		pthread_rwlock_wrlock(&l->seg_lock);
		pthread_mutex_lock(&l->sync_mu);
		int busy = l->syncing;
		pthread_mutex_unlock(&l->sync_mu);
		if (!busy)
			return;
		pthread_rwlock_unlock(&l->seg_lock);
		pthread_mutex_lock(&l->sync_mu);
		while (l->syncing)
			pthread_cond_wait(&l->sync_cv, &l->sync_mu);
		pthread_mutex_unlock(&l->sync_mu);
	}
}

/* Drop the first k segments (never the last). [append] */
int sb_log_drop_front(sb_log *l, size_t k)
{
	sb_segment **gone;
	int rc = 0;

	if (!k)
		return 0;
	gone = malloc(k * sizeof(*gone));
	if (!gone)
		return -ENOMEM;
	sb_log_segs_wrlock_idle(l);
	memcpy(gone, l->segs, k * sizeof(*gone));
	memmove(l->segs, l->segs + k, (l->nsegs - k) * sizeof(*gone));
	l->nsegs -= k;
	pthread_rwlock_unlock(&l->seg_lock);
	/* Oldest first, and none after one that stays: the files left are
	 * always whole and contiguous (a gap would read as a break in the log;
	 * what stays below the start is dropped again at the next open). */
	for (size_t i = 0; i < k; i++) {
		if (rc)
			sb_segment_close(gone[i], 0);
		else
			rc = sb_segment_remove(gone[i]);
	}
	free(gone);
	if (!rc)
		rc = sb_fsync_dir(l->io, l->dir);
	return rc;
}

/*
 * Write the start to `meta`. On a full disk the temp file of a durable
 * publish may not fit: then rewrite the existing `meta` in place (it is one
 * sector, under a CRC; torn, it is ignored and the start falls back to the
 * first segment's base, which brings back removed records, never loses
 * kept ones). With no `meta` yet and no room for one, the start stays
 * unsaved (meta_dirty) and is saved by a later call. sb_log_save_meta() saves
 * `start`, whatever l->start says.
 *
 * unsynced (the start of a removal: rm of the oldest records): `meta` is
 * rewritten in place and not synced, so that a crash of the process keeps
 * it at once and a removal costs one write (rm -r of a topic removes one
 * record at a time); sb_log_sync_meta() syncs it (sb_log_sync, the flusher's
 * pass, the close). A power loss before may bring the removed records
 * back (a torn meta is ignored), never loses a kept one. The first time,
 * with no meta yet, a durable publish. [append]
 */
int sb_log_save_meta(sb_log *l, uint64_t start, int unsynced)
{
	uint8_t buf[SB_META_SIZE];
	int rc;

	sb_meta_encode(buf, start);
	if (unsynced) {
		rc = sb_overwrite_file(l->io, l->dir, SB_META_NAME, buf, sizeof(buf), 0);
		if (rc != -ENOENT) {
			l->meta_dirty = rc != 0;
			l->meta_unsynced |= rc == 0;
			return rc;
		}
	}
	rc = sb_publish_file(l->io, l->dir, SB_META_NAME, buf, sizeof(buf));
	if (sb_no_space(rc)) {
		int r = sb_overwrite_file(l->io, l->dir, SB_META_NAME, buf, sizeof(buf), 1);
		rc = r == -ENOENT ? rc : r;
	}
	l->meta_dirty = rc != 0;
	return rc;
}

int sb_log_save_start(sb_log *l)
{
	return sb_log_save_meta(l, atomic_load(&l->start), 0);
}

/* Sync meta after an unsynced sb_log_save_meta, and the directory the removal
 * changed. [append] */
int sb_log_sync_meta(sb_log *l)
{
	int rc;

	if (!l->meta_unsynced)
		return 0;
	if ((rc = sb_fdatasync_file(l->io, l->dir, SB_META_NAME)) || (rc = sb_fsync_dir(l->io, l->dir)))
		return rc;
	l->meta_unsynced = 0;
	return 0;
}

/*
 * Publish a new start, drop the segments wholly below it, then save it.
 * Dropping first frees space before anything needs a new block (a full disk
 * can be emptied), and is safe: a crash before the save finds the segments
 * gone and starts at the first one left (recovery never starts below it).
 * Not saved for lack of space is not an error: the removal happened, and
 * the start is saved later (or comes back as that first segment's base).
 * unsynced: saved as a removal's (sb_log_save_meta). [append]
 */
int sb_log_set_start(sb_log *l, uint64_t start, int unsynced)
{
	size_t k = 0;
	int rc;

	/* The start first: a reader that sees the stream start moved (its
	 * read ENOENT) then sees the record's offset below the start too,
	 * never a removed stream position whose offset still looks kept
	 * (test readers_while_the_start_moves, 1 read of 42,886 under TSan). */
	uint64_t spos = sb_log_stream_pos_of(l, start);
	atomic_store_explicit(&l->start, start, memory_order_release);
	atomic_store_explicit(&l->stream_start, spos, memory_order_release);
	while (k + 1 < l->nsegs && sb_segment_next(l->segs[k]) <= start)
		k++;
	rc = sb_log_drop_front(l, k);
	int r = sb_log_save_meta(l, atomic_load(&l->start), unsynced);
	if (!rc && !sb_no_space(r))
		rc = r;
	return rc;
}

/*
 * The first k segments hold no record (compacted to nothing,
 * log_compact.c): the start moves past them, saved before their files go,
 * so that a crash in between leaves files below a saved start (the next
 * open keeps them below it; the next round drops them), never a missing
 * start. [append]
 */
int sb_log_drop_empty_head(sb_log *l, size_t k)
{
	uint64_t first = sb_segment_base(l->segs[k]);
	int rc;

	if (first > atomic_load(&l->start)) {
		uint64_t spos = sb_log_stream_pos_of(l, first);
		atomic_store_explicit(&l->start, first, memory_order_release);
		atomic_store_explicit(&l->stream_start, spos, memory_order_release);
		if ((rc = sb_log_save_start(l)))
			return rc;
	}
	return sb_log_drop_front(l, k);
}

/* ---- open, close, remove ------------------------------------------------- */

static void log_free(sb_log *l)
{
	sb_log_keys_close(l, 0);
	sb_log_view_close(atomic_load(&l->view)); /* the views are closed first (sb_store.h) */
	for (size_t i = 0; i < l->nsegs; i++)
		sb_segment_close(l->segs[i], 0);
	free(l->segs);
	sb_zcache_free(l->zc); /* after the segments: theirs */
	pthread_mutex_destroy(&l->append_mu);
	pthread_mutex_destroy(&l->compress_mu);
	pthread_rwlock_destroy(&l->seg_lock);
	pthread_mutex_destroy(&l->sync_mu);
	pthread_cond_destroy(&l->sync_cv);
	pthread_cond_destroy(&l->linger_cv);
	free(l->damage);
	free(l->why);
	free(l->dir);
	free(l->name);
	free(l);
}

/* A new log: its directory and first segment. Nothing is left of them on
 * failure (a topic that could not be made must not appear at the next open). */
static int create_dir(sb_log *l, const char *parent)
{
	sb_segment *s;
	int rc;

	rc = l->io->mkdir(l->io->ctx, l->dir, 0755);
	if (rc)
		return rc;
	rc = sb_segment_create(&l->sp, 0, 0, &s);
	if (rc)
		goto out_rmdir;
	rc = sb_log_segs_push(l, s);
	if (rc)
		goto out_remove;
	rc = sb_fsync_dir(l->io, l->dir);
	if (!rc)
		rc = sb_fsync_dir(l->io, parent);
	if (!rc)
		return 0;
	l->nsegs = 0;
out_remove:
	sb_segment_remove(s);
out_rmdir:
	l->io->rmdir(l->io->ctx, l->dir);
	return rc;
}

int sb_log_open_dir(const char *dir, const char *name, const sb_log_config *cfg,
		    const sb_store_options *o, int create, sb_log **out, char *why, size_t whycap)
{
	pthread_rwlockattr_t ra;
	char path[PATH_MAX];
	sb_log *l;
	int rc;

	if (strlen(name) >= SB_LOG_NAME_MAX || sb_path(path, dir, name))
		return -ENAMETOOLONG;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->append_mu, NULL);
	pthread_mutex_init(&l->compress_mu, NULL);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->seg_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&l->sync_mu, NULL);
	pthread_cond_init(&l->sync_cv, NULL);
	pthread_cond_init(&l->linger_cv, NULL);
	l->name = strdup(name);
	l->dir = strdup(path);
	l->why = calloc(1, SB_LOG_WHY);
	if (!l->name || !l->dir || !l->why) {
		rc = -ENOMEM;
		goto out_free;
	}
	l->cfg = *cfg;
	l->opt = *o;
	l->io = o->io ? o->io : sb_io_default();
	l->read_only = o->read_only;
	l->batch_max = cfg->max_record_bytes + SB_REC_HDR + SB_KEY_MAX + SB_HDRS_MAX;
	if (l->batch_max < (4u << 20))
		l->batch_max = 4u << 20;
	l->sp = (sb_seg_params){
		.io = l->io,
		.dir = l->dir,
		.topic = l->name,
		.index_interval = cfg->index_interval_bytes,
		.capacity = SB_SEG_HDR + cfg->segment_bytes + l->batch_max,
		.roll_at = SB_SEG_HDR + cfg->segment_bytes,
		.read_only = o->read_only,
		.full_check = o->full_check,
		.report = o->report,
		.report_arg = o->report_arg,
		.zc = &l->zc, /* made at the first compressed segment's open */
	};

	if (create) {
		rc = create_dir(l, dir);
		if (rc)
			goto out_free;
	} else {
		rc = sb_log_recover(l);
		if (rc)
			goto out_free;
	}
	atomic_store(&l->mtime_ns, sb_segment_max_ts(sb_log_active(l)));
	if (atomic_load(&l->mtime_ns) <= 0)
		atomic_store(&l->mtime_ns, sb_now_ns());
	rc = sb_log_keys_open(l);
	if (rc)
		goto out_free;
	free(l->why);
	l->why = NULL;
	*out = l;
	return 0;
out_free:
	if (why && whycap)
		snprintf(why, whycap, "%s", l->why && l->why[0] ? l->why : sb_strerror(rc));
	log_free(l);
	return rc;
}

void sb_log_set_close_step(sb_log *l, void (*fn)(void *arg), void *arg)
{
	l->close_step = fn;
	l->close_step_arg = arg;
}

int sb_log_close(sb_log *l)
{
	int rc = 0;

	if (!l)
		return 0;
	int live = !l->read_only && !atomic_load(&l->removed);
	/* Its newest segment's file removed under the daemon (`rm -rf` of
	 * the topic's directory right after `fusermount3 -u`, which returns
	 * before the daemon has closed): nothing is written into the
	 * directory, where index files and a clean marker without their
	 * segments would stop rm's rmdir and make the next open refuse the
	 * topic. */
	int gone = live && l->nsegs && sb_segment_gone(sb_log_active(l));
	if (gone && l->opt.report)
		l->opt.report(l->opt.report_arg, l->name,
			      "its files were removed before its close: nothing written into its directory");
	int clean = live && !gone && !atomic_load(&l->err);
	/* The key index is derived data: what it could not write out is
	 * replayed from the log at the next open (it reports why). */
	sb_log_keys_close(l, clean);
	/* A failure refused appends but lost nothing: the close is not a
	 * clean one (the next open scans), but what was appended is made
	 * durable, as a clean close makes it (a power loss after it loses
	 * nothing). Its error is the failure's, returned already. */
	if (live && !gone && !clean && !sb_log_sync_lost(l))
		(void)sb_log_sync(l);
	if (clean) {
		sb_segment *last = sb_log_active(l);
		rc = sb_log_finish_seals(l);
		l->close_step = NULL;
		if (!rc)
			rc = sb_segment_seal(last);
		for (size_t i = 0; !rc && i + 1 < l->nsegs; i++) /* the newest's: its seal */
			rc = sb_segment_save_index(l->segs[i]);
		size_t unsaved = 0;
		for (size_t i = 0; !rc && i < l->nsegs; i++)
			unsaved += !sb_segment_index_saved(l->segs[i]);
		if (unsaved && l->opt.report) { /* no room: said, not an error */
			char msg[160];
			snprintf(msg, sizeof(msg), "index files of %zu segment%s not saved: no space left on device "
				 "(derived data: the next open rebuilds them from the segments)", unsaved,
				 unsaved == 1 ? "" : "s");
			l->opt.report(l->opt.report_arg, l->name, msg);
		}
		/* (removed meanwhile, as above: no start file, no marker) */
		int gone_now = !rc && sb_segment_gone(last);
		if (!rc && !gone_now && l->meta_dirty && sb_no_space(rc = sb_log_save_start(l)))
			rc = 0; /* the removed records come back at the next open */
		if (!rc && !gone_now)
			rc = sb_log_sync_meta(l);
		if (!rc && !gone_now) {
			uint8_t buf[SB_CLEAN_SIZE];
			sb_clean_rec c = {sb_segment_base(last), sb_segment_len(last)};
			sb_clean_encode(buf, &c);
			rc = sb_publish_file(l->io, l->dir, SB_CLEAN_NAME, buf, sizeof(buf));
			if (sb_no_space(rc))
				rc = 0; /* only saves the next open a scan */
		}
	}
	log_free(l);
	return rc;
}

int sb_log_removed(const sb_log *l)
{
	return atomic_load(&l->removed);
}

int sb_log_remove(sb_log *l)
{
	char path[PATH_MAX];
	int rc = 0;

	if (l->read_only)
		return -EROFS;
	/* The key index's tables go with the topic: it opens to name them
	 * (not for a topic that is not empty: checked again below). */
	if (atomic_load(&l->removed))
		return -ENOENT;
	if (atomic_load(&l->start) != atomic_load(&l->next))
		return -ENOTEMPTY;
	if ((rc = sb_log_keys_ready(l)))
		return rc;
	/* No compaction round or compression pass meanwhile: one that went on
	 * wrote its temp file, or the index of the segment it had just put in
	 * place, into the directory being removed (rmdir then failed, the
	 * topic left half removed; found by an exploratory tester) */
	pthread_mutex_lock(&l->compress_mu);
	pthread_mutex_lock(&l->append_mu);
	if (atomic_load(&l->removed)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (atomic_load(&l->start) != atomic_load(&l->next)) {
		rc = -ENOTEMPTY;
		goto out_unlock;
	}
	atomic_store(&l->removed, 1);
	sb_log_segs_wrlock_idle(l);
	for (size_t i = 0; i < l->nsegs; i++)
		sb_segment_remove(l->segs[i]);
	l->nsegs = 0;
	pthread_rwlock_unlock(&l->seg_lock);
	sb_log_keys_remove(l);
	const char *extra[] = {SB_META_NAME, SB_CLEAN_NAME};
	for (size_t i = 0; i < 2; i++) {
		if (sb_path(path, l->dir, extra[i]) == 0)
			l->io->unlink(l->io->ctx, path);
	}
	rc = l->io->rmdir(l->io->ctx, l->dir);
out_unlock:
	pthread_mutex_unlock(&l->append_mu);
	pthread_mutex_unlock(&l->compress_mu);
	return rc;
}

/* ---- the start, retention ------------------------------------------------ */

int sb_log_delete_before(sb_log *l, uint64_t offset)
{
	int rc = 0;

	if (l->read_only)
		return -EROFS;
	pthread_mutex_lock(&l->append_mu);
	if (atomic_load(&l->removed))
		rc = -ENOENT;
	else if (offset > atomic_load(&l->next))
		rc = -EINVAL;
	else if (offset > atomic_load(&l->start))
		/* under `always` on disk before it returns, as an append is: a
		 * durable publish (a rewrite in place, torn by a power loss,
		 * would lose the start an earlier removal made durable) */
		rc = sb_log_set_start(l, offset, l->cfg.sync != SB_SYNC_ALWAYS);
	pthread_mutex_unlock(&l->append_mu);
	return rc;
}

int sb_log_retain(sb_log *l, int64_t now_ns, size_t *dropped)
{
	int64_t rb = l->cfg.retention_bytes, rms = l->cfg.retention_ms;
	size_t k = 0;
	int rc = 0;

	if (atomic_load(&l->removed))
		return -ENOENT;
	if (l->read_only || (rb < 0 && rms < 0) || l->cfg.cleanup == SB_CLEANUP_COMPACT) {
		if (dropped)
			*dropped = 0;
		return 0;
	}
	pthread_mutex_lock(&l->append_mu);
	if (atomic_load(&l->removed)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < l->nsegs; i++)
		total += sb_segment_len(l->segs[i]);
	for (; k + 1 < l->nsegs; k++) {
		sb_segment *s = l->segs[k];
		uint64_t len = sb_segment_len(s);
		int by_bytes = rb >= 0 && total - len >= (uint64_t)rb;
		int by_age = rms >= 0 && rms <= now_ns / 1000000 && sb_segment_max_ts(s) < now_ns - rms * 1000000LL;
		if (!by_bytes && !by_age)
			break;
		total -= len;
	}
	if (k) {
		uint64_t start = sb_segment_base(l->segs[k]);
		if (start > atomic_load(&l->start))
			rc = sb_log_set_start(l, start, 0); /* drops the k segments */
		else
			rc = sb_log_drop_front(l, k);
	}
	if (!rc && dropped)
		*dropped = k;
out_unlock:
	pthread_mutex_unlock(&l->append_mu);
	return rc;
}
