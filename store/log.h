/*
 * log.h - the store's side of a topic's log (internal): opening with
 * recovery, closing, removal, and the flusher's hook. The public verbs are
 * in sb_store.h.
 */
#ifndef SB_LOG_H
#define SB_LOG_H

#include "sb_store.h"

/*
 * Open the log in dir/name (recovering it), or with `create` make the
 * directory and its first segment. *out is the caller's, freed by
 * sb_log_free(). When recovery refuses the log (SB_ECORRUPT), why (if not
 * NULL) gets one line naming the file and byte.
 */
int sb_log_open_dir(const char *dir, const char *name, const sb_log_config *cfg,
		    const sb_store_options *o, int create, sb_log **out, char *why, size_t whycap);
/* Sync, write indexes and the clean marker (read-write), then free. */
int sb_log_close(sb_log *l);
/* Have sb_log_close call fn(arg) after each step of syncing the sealed
 * segments (a segment's records, or its index files), from the thread
 * that closes: a close of thousands of them takes seconds. Set by the
 * thread that then closes l, with no other thread using l. */
void sb_log_set_close_step(sb_log *l, void (*fn)(void *arg), void *arg);
/* Delete the files of an empty log (-ENOTEMPTY otherwise); afterwards every
 * call on l fails with -ENOENT. l itself stays allocated until sb_log_close. */
int sb_log_remove(sb_log *l);
/* The flusher's hook: sync segments sealed since the last call and, under
 * SB_SYNC_INTERVAL, unsynced appends once the period has passed. Returns the
 * first sync error. */
int sb_log_flush_due(sb_log *l, long long now_ns);
/* What the topic's key index calls (from an appender, which must not wait)
 * when its unindexed tail is long: the flusher should take its turn now. */
void sb_log_set_wake(sb_log *l, void (*fn)(void *arg), void *arg);
/* The store's indexer's hook: read the keys appended since into the topic's
 * key index (keyidx.h sb_kx_index); no file is written. 2: a key table is
 * due (the key writer's turn); 1: keys are coming (the indexer looks again
 * shortly); else 0. */
int sb_log_index_keys(sb_log *l);
/* The flusher's: sync the key tables the key writer published lazily
 * (keyidx.h sb_kx_sync_tables). */
void sb_log_keys_sync(sb_log *l);
/* The store's key writer's hook: write the key index's tables when due,
 * and merge them (keyidx.h sb_kx_maintain). Nothing on a removed or failed
 * log. */
void sb_log_keys_maintain(sb_log *l);
int sb_log_removed(const sb_log *l);
/* cleanup = compact: is a round of sb_log_compact() due (a segment sealed
 * since the last one, a kept tombstone expired, or records appended since
 * the last one, SB_COMPACT_RETRY_MS ago or more, of at least 1/64 of the
 * log's bytes)? */
#define SB_COMPACT_RETRY_MS 10000
int sb_log_compact_due(sb_log *l, int64_t now_ns);
/* sb_log_compress for the store's background compressor: each segment is
 * built in a thread of its own at SCHED_IDLE (log_compress.c). */
int sb_log_compress_bg(sb_log *l, size_t *done);
/* The store is closing: a compaction or compression round in progress
 * stops before its next segment (a compaction's built files are removed,
 * nothing swapped; what is compressed stays), and a merge of key tables
 * in progress is abandoned (the next open's flusher does it), so that the
 * close, and the unmount waiting for it, is not held for the rest of a
 * long round. */
void sb_log_stop_rewrites(sb_log *l);

#endif
