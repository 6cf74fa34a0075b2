/*
 * log_impl.h - the sb_log structure, shared by the log's files: log.c (the
 * segments, the start, open and close), log_append.c (appending, syncing),
 * log_read.c (reading) and the others named below. Nothing outside
 * store/log*.c includes it.
 */
#ifndef SB_LOG_IMPL_H
#define SB_LOG_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "segment.h"

/* A topic name is shorter than this; why recovery refused a log fits in
 * SB_LOG_WHY bytes. */
#define SB_LOG_NAME_MAX 256
#define SB_LOG_WHY 512

struct sb_log {
	char *name;                     /* heap, set at open (thousands of topics) */
	char *dir;                      /* LOG_DIR/name (heap: thousands of topics) */
	sb_log_config cfg;
	sb_store_options opt;
	sb_seg_params sp;
	const sb_io *io;
	int read_only;
	size_t batch_max;
	/* Set by the store before sb_log_close, by the closing thread
	 * (sb_log_set_close_step): called after each step of the close's
	 * syncing of sealed segments, so that the store can say it moves. */
	void (*close_step)(void *arg);
	void *close_step_arg;
	char *why;                      /* why recovery refused the log, if it did:
					 * SB_LOG_WHY bytes, only during the open
					 * (sb_log_open_dir frees it), else NULL */
	int damaged_tail;               /* read-only: recovery ended the log at damage
					 * a mount refuses (sb_log_damaged_tail); set
					 * before the log is shared */
	char *damage;                   /* with damaged_tail: where ("FILE: byte N:
					 * what"; heap, NULL if unknown) */

	pthread_mutex_t compress_mu;    /* one compressor or compactor at a time
					 * (log_compress.c, log_compact.c) */
	sb_zcache *zc;                  /* [compress_mu, or the open] the cache of
					 * compressed blocks, sp.zc points here:
					 * NULL until the first compressed segment
					 * is opened (sb_seg_zopen); freed after
					 * the segments */
	_Atomic uint64_t compact_mark;  /* [compress_mu] the newest segment's base
					 * at the last compaction (log_compact.c) */
	_Atomic int64_t compact_due;    /* [compress_mu] when a kept tombstone expires */
	_Atomic uint64_t compact_next;  /* [compress_mu] next and stream_end at the */
	_Atomic uint64_t compact_bytes; /* last compaction, and when it ended */
	_Atomic int64_t compact_ns;
	pthread_mutex_t append_mu;
	pthread_rwlock_t seg_lock;
	sb_segment **segs;              /* [seg_lock] oldest first; never empty */
	size_t nsegs, segcap;           /* [seg_lock] */
	int meta_dirty;                 /* [append] `start` not yet in meta */
	int meta_unsynced;              /* [append] meta rewritten in place for a
					 * removal, not yet synced (sb_log_sync_meta) */
	int clean_unsynced;             /* [append] the clean marker's removal is not
					 * synced yet: done before the first append (a
					 * marker back after a power loss would vouch for
					 * a length the newest segment no longer has) */

	_Atomic uint64_t start;         /* [atomic] first retained offset */
	_Atomic uint64_t next;          /* [atomic] offset of the next append */
	_Atomic uint64_t stream_start;  /* [atomic] stream pos of `start` */
	_Atomic uint64_t stream_end;    /* [atomic] */
	_Atomic long long mtime_ns;     /* [atomic] last append */
	_Atomic int err;                /* [atomic] sticky append error, 0 if none */
	_Atomic int sync_lost;          /* [atomic] set before err when a sync of
					 * records failed: no later sync may
					 * acknowledge what it covered */
	_Atomic int removed;            /* [atomic] topic removed */
	_Atomic int stop_rewrites;      /* [atomic] the store is closing: rounds of
					 * compaction and compression stop early */
	_Atomic int rewrite_err;        /* [atomic] a compression or compaction
					 * put its new file in place but failed
					 * after (dir sync, open): the object maps
					 * the old file, which no longer is at its
					 * path, so no segment is rewritten again
					 * until the log is reopened (this error) */
	_Atomic uint64_t appended;      /* [atomic] append calls so far */
	/* The key index (log_keys.c), opened at the first use of the topic's
	 * keys (sb_log_keys_ready; at the open for recover's full_check).
	 * kx and kx_damaged are written once, with compress_mu and append_mu
	 * held (or before the log is shared), then keys_open is set
	 * (release); they are read under append_mu, or after keys_open is
	 * seen set (acquire: sb_log_kx, sb_log_keys_ready), and change again
	 * only at the close (the flusher joined). */
	_Atomic int keys_open;          /* [compress_mu and append to set; atomic] */
	int keys_check;                 /* [the open] opened without a clean close
					 * with a compacted segment: the index is
					 * checked against the log as it opens */
	struct sb_kx *kx;               /* [compress_mu and append, once: keys_open] NULL when
					 * its replay met damage (kx_damaged),
					 * and read-only with no_keys */
	struct sb_kx *kx_damaged;       /* [compress_mu and append, once: keys_open] the index
					 * whose replay met damage, so no answer
					 * by key can be trusted (SB_ECORRUPT);
					 * never used but to remove its tables
					 * with the topic */
	void (*wake)(void *arg);        /* set before the log is shared (the */
	void *wake_arg;                 /* store's insert_topic): given to the
					 * index when it opens (sb_log_set_wake) */
	/* the stream's current generation once a view was taken (log_view.c):
	 * replaced with seg_lock exclusive, set from NULL with it shared */
	struct sb_log_view *_Atomic view;

	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;         /* a sync finished */
	pthread_cond_t linger_cv;       /* an appender arrived while lingering */
	int syncing;                    /* [sync] a leader is in fdatasync */
	int lingering;                  /* [sync] the leader waits for more */
	uint64_t synced;                /* [sync] appends covered by a sync */
	_Atomic uint64_t synced_next;   /* [atomic] the records of the active
					 * segment below it were in an fdatasync
					 * (log_compact.c's horizon) */
	uint64_t last_batch;            /* [sync] appends the last sync covered */
	long long last_sync_ns;         /* [sync] when the last sync finished */
	long long last_sync_dur;        /* [sync] how long it took */
	uint64_t syncs, synced_appends; /* [sync] statistics */
};

/* The last (active) segment; call with seg_lock or append_mu held. */
sb_segment *sb_log_active(sb_log *l);
/* Add a segment at the end (takes seg_lock). */
int sb_log_segs_push(sb_log *l, sb_segment *s);
/* Drop the first k segments, never the last, and fsync the directory. [append] */
int sb_log_drop_front(sb_log *l, size_t k);
/* The same for k segments compacted to nothing, the start moved past them
 * and saved first (log.c). [append] */
int sb_log_drop_empty_head(sb_log *l, size_t k);
/* The start's file, meta (log.c). [append] Write `start` to it (unsynced:
 * rewritten in place and not synced, as a removal's); write l->start; sync
 * it after an unsynced write, and the directory; publish a new start, drop
 * the segments wholly below it, then save it. */
int sb_log_save_meta(sb_log *l, uint64_t start, int unsynced);
int sb_log_save_start(sb_log *l);
int sb_log_sync_meta(sb_log *l);
int sb_log_set_start(sb_log *l, uint64_t start, int unsynced);
/* Sync the sealed segments a roll left unsynced and save their indexes
 * (log_append.c); never takes append_mu. */
int sb_log_finish_seals(sb_log *l);
/* 0, or after a failed sync of records (sync_lost) the error every later
 * sync returns (log_append.c). */
int sb_log_sync_lost(sb_log *l);
/* Stream position of record `off` in [start, next] (the end for next); call
 * with append_mu held or before the log is shared (log_read.c). */
uint64_t sb_log_stream_pos_of(sb_log *l, uint64_t off);
/* Take seg_lock exclusive with no fdatasync of a sealed segment running
 * (before dropping or closing one): see log.c. */
void sb_log_segs_wrlock_idle(sb_log *l);
/* The key index (log_keys.c): open and replay the records it lacks; note
 * a batch appended at `first` [append]; finish a table at a clean close;
 * the flusher's turn; delete its files with the topic. */
/* A rewrite's new file is at path, renamed there, but not in use (the
 * directory's sync or the segment's open failed with rc): no rewrite until
 * reopened (rewrite_err), said through the report hook.
 * Defined in log_compress.c. */
void sb_log_rewrite_failed(sb_log *l, const char *path, int rc);
int sb_log_keys_open(sb_log *l);
/* Open the key index now if it is not yet (log_keys.c): 0, or the open's
 * failure (-ENOMEM, -EIO, ...; tried again at the next use). Takes
 * compress_mu, then append_mu: call with no lock of the log held. */
int sb_log_keys_ready(sb_log *l);
/* The key index if it is open, else NULL (any thread). */
static inline struct sb_kx *sb_log_kx(sb_log *l)
{
	return atomic_load_explicit(&l->keys_open, memory_order_acquire) ? l->kx : NULL;
}
/* Read record `offset` (payload into buf, up to cap; info) only if its key
 * is `key`: one lookup for both. -ESTALE when it has another key. */
/* A key index entry's hint of where its record starts in its segment
 * (sb_mt_val.pos): 0 (unknown) past 32 bits. */
static inline uint32_t sb_log_pos_hint(uint64_t pos)
{
	return pos <= UINT32_MAX ? (uint32_t)pos : 0;
}
/* Record `offset` read as a get by key: found at file position `hint`
 * (0: none) when a record with that offset starts there in an uncompacted
 * segment and info is NULL (a hint gives no stream position), else by
 * offset; -ESTALE when it carries another key. */
int sb_log_read_keyed(sb_log *l, uint64_t offset, uint32_t hint, const void *key, size_t key_len, void *buf,
		      size_t cap, size_t *nread, sb_record_info *info);
/* Does the position hint of an entry for record `offset` hold (verify)?
 * 0: it does, or it is not used (0, a compressed or compacted segment, the
 * record gone); -ESTALE: it names a place in an uncompacted segment where
 * that record does not start. */
int sb_log_check_hint(sb_log *l, uint64_t offset, uint32_t hint);
void sb_log_keys_added(sb_log *l, const sb_record_in *r, size_t n, uint64_t first, size_t bytes);
int sb_log_keys_close(sb_log *l, int clean);
void sb_log_keys_remove(sb_log *l);
/* Does offset lie in a compacted segment (log_compact.c)? There a record
 * may be gone: a tombstone past delete_retention_ms. */
int sb_log_in_compacted(sb_log *l, uint64_t offset);
/* Stream bytes from the segments (log_read.c), seg_lock held: of segment
 * s from pos (into dst + *done, up to len, *done counting); of the log
 * from pos (into buf, *nread counting, also on failure). */
int sb_log_seg_stream(sb_segment *s, sb_read_memo *m, uint64_t pos, uint8_t *dst, size_t len, size_t *done);
int sb_log_stream_locked(sb_log *l, sb_read_memo *m, uint64_t pos, uint8_t *buf, size_t len, size_t *nread);
/* A compaction round and the views (log_view.c). Before the round, outside
 * every lock: room for its n segments (0 or -ENOMEM). When it publishes,
 * seg_lock held exclusive: the segments old[0..k) it replaced (oldest
 * first; stream positions at or past `end` unchanged) go to the views
 * that may still read them (1: the caller must not close them; *put is
 * the reference to drop with sb_log_view_close after the locks), or stay
 * the caller's (0). Then unprep frees what the round did not use. */
typedef struct sb_view_prep {
	struct sb_log_view *next;
	sb_segment **old;
} sb_view_prep;
int sb_log_views_prep(sb_view_prep *p, size_t n);
int sb_log_views_advance(sb_log *l, sb_view_prep *p, size_t k, uint64_t end, struct sb_log_view **put);
void sb_log_views_unprep(sb_view_prep *p);
/* Is a view open (1) or none (0)? */
int sb_log_views_open(sb_log *l);
/* Find and check the log's segments (log_recover.c). */
int sb_log_recover(sb_log *l);
/*
 * Recovery with repair (log_recover_gap.c): damage that cannot be a torn
 * write in sealed segment *sp, which the segment at next_base follows.
 * The segment is rewritten as a compacted one keeping its intact records
 * (the damaged ones become a gap, reported) and reopened into *sp (the
 * old one closed); *changed set once the directory changed. 1: it cannot
 * be (said in a report; nothing changed on disk): the caller cuts the log
 * there as before. Else 0 or -errno with l->why (*sp untouched, still the
 * caller's; a rewrite that failed, a full disk say, changed nothing).
 */
int sb_log_recover_gap(sb_log *l, sb_segment **sp, uint64_t next_base, int *changed);
/*
 * The same for sealed segment `base` whose header is damaged (it does not
 * open): it is written anew (a compacted segment's header reaching
 * next_base) with the whole plain records found after the header (none in
 * a compressed one whose block table or dictionary is damaged: its offsets
 * become a gap), and opened into *out (the caller's). 1: it cannot be (its
 * offsets do not fit a span; nothing changed on disk). Else 0 or -errno
 * with l->why.
 */
int sb_log_recover_header(sb_log *l, uint64_t base, uint64_t next_base, int *changed, sb_segment **out);
/*
 * The same for damage in the newest segment *sp where it cannot be a torn
 * write (a clean close's marker vouches for it): the records after each
 * damage are kept as in sb_log_recover_gap, the segment rewritten as a
 * compacted one ending after the last record kept (*sp, reopened; the old
 * one closed), and *active a new empty segment there for the appends (the
 * caller's). 1: nothing whole after the damage, or a compressed or
 * pre-v3 segment (nothing changed on disk): the caller cuts there as
 * before. Else 0 or -errno with l->why.
 */
int sb_log_recover_newest(sb_log *l, sb_segment **sp, int *changed, sb_segment **active);
/*
 * Segment `base` does not open: if its header is one torn by a crash while
 * it was rewritten in place (the bytes such a write leaves alone intact:
 * magic, size, base, a base stream position equal to stream_end unless
 * that is UINT64_MAX; the CRC bad), write it anew (synced) with the span
 * its records need (log_recover_hdr.c), for the caller to open again: 0.
 * next_base: the next segment's base, UINT64_MAX for the newest one. 1: it
 * is not such a header (nothing changed). Else -errno.
 */
int sb_log_recover_torn_header(sb_log *l, uint64_t base, uint64_t next_base, uint64_t stream_end, int *changed);
/* The first n bytes of segment `base`'s file into buf (log_recover_hdr.c):
 * 0, or -errno (-EIO: the file is shorter). */
int sb_log_seg_head(sb_log *l, uint64_t base, void *buf, size_t n);
/*
 * Repairing a gap between sealed segment prev (opened) and the next one,
 * at next_base (a segment file missing: a live copy that read prev before
 * a compaction round extended its span over a segment compacted to
 * nothing, and listed the directory after the round removed it; or a lost
 * file): prev's span is made to reach next_base (its header rewritten in
 * place, synced; format.h "Compacted segment"), so that the missing
 * offsets read as compacted away and the later segments stay. 1: it
 * cannot be (a compressed segment, a gap past what a span reaches; nothing
 * changed: the caller cuts there as before). Else 0 or -errno.
 */
int sb_log_recover_span_gap(sb_log *l, sb_segment *prev, uint64_t next_base, int *changed);

#endif
