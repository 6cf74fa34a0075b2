/*
 * keyidx.h - a topic's key index (internal to the store): for every key,
 * its latest record.
 *
 * Indexing is off the append path: a keyed append only notes how far the
 * log goes and how many keyed bytes it added (note_end: a few atomic
 * stores; an unkeyed one adds none). The indexer (the store's indexer
 * thread, sb_kx_index, as the keys come a batch of key_memtable_bytes / 8
 * at a time, a batch that fits in a core's cache; the flusher,
 * sb_kx_maintain: in the store, its key writer thread, apart from the
 * thread that syncs segments; or a reader catching up) reads the keyed records from
 * the log itself, from
 * where it stopped to the noted end (params.walk: the records hold the
 * key, offset, time, size, flags and position a tail entry copied), into
 * the unindexed tail (keyrun.h) a batch at a time, sorts each batch into
 * an immutable sorted run, and keeps such runs apart (smaller ones, a
 * reader's catch-up, are merged as a binary counter). Past
 * key_memtable_bytes the runs are frozen and written as one key table
 * (keytable.h) beside the segments; the flusher publishes such a table
 * without syncing it (sb_kx_sync_tables syncs it, from the store's
 * flusher thread; a close and sb_kx_cover too). When no keyed record was noted past
 * where the indexer stopped, it reads nothing: the flusher never walks a
 * topic without keys. The replay at open puts the records it reads
 * itself (sb_kx_put). Without a flusher (the replay, no_flusher) the
 * appender indexes in batches of half key_memtable_bytes. With one, the
 * indexer thread keeps the runs up with the appends while the flusher
 * writes a table (up to 4x key_memtable_bytes of runs, INDEXER_CAP; the
 * keys past it wait in the log), and the appender steps in only when both
 * are far behind (4x key_memtable_bytes of keys unindexed: it sorts them
 * itself while the runs have room, else waits for the flusher).
 *
 * Reads see every record appended before them (read your writes, SPEC §2):
 * a get scans a short tail (TAIL_SCAN_MAX entries) or first indexes a long
 * one; a listing, verify and compaction's "is this the latest?" (a get)
 * likewise. Lookups go tail, runs newest first, frozen runs, then tables
 * newest first, skipping tables by Bloom filter. Tables are merged as a
 * counter of base SB_KX_MERGE_WIDTH (8 tables of one level become one of
 * the next level), so a lookup meets at most 7 tables a level; but while
 * keys come faster than the flusher writes (busy), it writes the frozen
 * runs alone and merges later, more tables at once (up to
 * SB_KX_BUSY_TABLES_MAX tables meanwhile); past SB_KX_BUSY_TABLES_MAX -
 * SB_KX_MERGE_WIDTH tables with no group of a level due, the adjacent
 * tables of fewest entries are merged (keyidx_write.c: the groups busy
 * flushes strand between levels). A merge under that bound gives way
 * (is abandoned) when the runs pile up to half the indexer's cap; any
 * merge writes the runs that come due while it runs as tables of their
 * own, up to SB_KX_TABLES_MAX tables. A flusher turn is busy while keys
 * keep coming at a batch every 100 ms or faster (keyidx_turn.c
 * turn_begins). Base 8 rather than 4: each key
 * is rewritten at fewer levels (the flusher's CPU a key at 10,000,000
 * keys 556 -> 450 ns, docs/BENCHMARKS.md), for a few more Bloom filters
 * a lookup looks at.
 *
 * Derived data: the tables cover a contiguous range of log offsets
 * [lo, covered]; everything after `covered` (the tail and the runs not yet
 * written: a crash loses them) is replayed from the log at open
 * (sb_kx_replay_from). A damaged or missing table, one that covers offsets
 * the log no longer has (a tail cut after a crash), and every table after
 * it in offset order, is dropped, and its range replayed.
 *
 * Threads: one appender (note_end; the log's append lock), any number
 * of readers (get, scan), one indexer at a time (idx_mu: the indexer
 * thread, the flusher, or a reader catching up; it alone puts to the
 * tail), one maintainer
 * (maint_mu: freeze, table writes and merges). `lock` (rwlock) guards the
 * run and table arrays and the tail's releases: readers hold it shared for
 * a lookup.
 *
 * Lock order (with the log's, log.c): compress_mu, append_mu, maint_mu,
 * idx_mu, then the log's seg_lock (params.walk takes it shared, for a
 * segment at a time, never while holding `lock`), and `lock`. A caller
 * that may index (put aside, every function here: get, scan, note_end,
 * maintain, close) holds neither seg_lock nor `lock`; sb_kx_scan's fn runs
 * with `lock` shared and may take seg_lock (a read of the record).
 */
#ifndef SB_KEYIDX_H
#define SB_KEYIDX_H

#include <stdint.h>

#include "memtable.h" /* sb_mt_val */
#include "sb_store.h"

typedef struct sb_kx sb_kx;

/* The base of the tables' merge counter, and the tables a busy flusher
 * leaves unmerged at most (a get reads at most this many, their Bloom
 * filters first). */
#define SB_KX_MERGE_WIDTH 8
#define SB_KX_BUSY_TABLES_MAX (8 * SB_KX_MERGE_WIDTH)
/* Past the busy bound a merge still writes the runs that come due while
 * it runs, as tables of their own, up to this many tables in all: the
 * most a lookup meets. */
#define SB_KX_TABLES_MAX (SB_KX_BUSY_TABLES_MAX + SB_KX_MERGE_WIDTH)

/* One keyed record of the log for the indexer (params.walk): 0 to go on,
 * nonzero to stop the walk (returned by it). */
typedef int (*sb_kx_walk_fn)(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v);

typedef struct sb_kx_params {
	const sb_io *io;
	const char *dir;          /* the topic directory */
	const char *topic;        /* for reports */
	uint64_t memtable_bytes;  /* write a table when the runs pass this */
	int read_only;            /* never write or delete a table */
	int background;           /* a flusher calls sb_kx_maintain() */
	sb_report_fn report;
	void *report_arg;
	/* The keyed records of log offsets [from, to), in offset order, to fn
	 * (records the log no longer has, or damaged, are skipped). Called by
	 * the indexer with idx_mu held; takes the log's seg_lock. */
	int (*walk)(void *walk_arg, uint64_t from, uint64_t to, sb_kx_walk_fn fn, void *fnarg);
	void *walk_arg;
} sb_kx_params;

/* Open the tables of p->dir that are usable for a log of offsets
 * [start, next) and remove the others (not read_only). *out is the
 * caller's (sb_kx_close). */
int sb_kx_open(const sb_kx_params *p, uint64_t start, uint64_t next, sb_kx **out);
/* The first offset whose keyed record the index lacks (replay from here). */
uint64_t sb_kx_replay_from(const sb_kx *x);
/* The replay at open (the indexer then: nothing else runs) read keyed
 * record v->offset: to the tail; the indexer's walk goes on after it. */
int sb_kx_put(sb_kx *x, const void *key, size_t klen, const sb_mt_val *v);
/* What a keyed record adds to the unindexed keys (about its tail entry). */
#define SB_KX_KEY_BYTES(klen) ((32u + (uint64_t)(klen) + 7u) & ~(uint64_t)7)
/* Every record below `next` is in the log (or, at the replay, put):
 * `bytes` more of records, `kbytes` of them keyed (the sum of
 * SB_KX_KEY_BYTES), the last keyed one below `last_keyed` (0: none in
 * these). Wakes the flusher when the unindexed keys are many; without
 * background indexes (and writes) itself. A table is also written when
 * SB_KX_REPLAY_BYTES of records would have to be replayed (an empty table
 * then records how far the index is complete, so that opening a log of
 * unkeyed records never reads it all). [appender] */
#define SB_KX_REPLAY_BYTES (64u << 20)
int sb_kx_note_end(sb_kx *x, uint64_t next, uint64_t bytes, uint64_t kbytes, uint64_t last_keyed);
/* The latest record of key: 0 and *v (a tombstone too: SB_MT_TOMBSTONE in
 * v->flags), -ENOENT, SB_ECORRUPT (a table block is damaged). */
int sb_kx_get(sb_kx *x, const void *key, size_t klen, sb_mt_val *v);
/* From now on a flusher calls sb_kx_maintain() (on: the appender only
 * fills the tail; off: it indexes and writes tables itself). */
void sb_kx_set_background(sb_kx *x, int on);
/* What to call (from the appender: it must not wait) when the unindexed
 * tail reaches key_memtable_bytes / 8: the wake-up of the store's indexer
 * and flusher. Set before the index is shared. */
void sb_kx_set_wake(sb_kx *x, void (*fn)(void *arg), void *arg);
/* Index the tail; write the runs as a table when due; merge. [maintainer] */
int sb_kx_maintain(sb_kx *x);
/* The indexer's turn (one thread beside the flusher, background on; the
 * only caller): read the keys appended since into sorted runs, a batch
 * (key_memtable_bytes / 8) or more at a time, or the few that stopped
 * coming, while the runs hold less than 4x key_memtable_bytes (the rest
 * waits in the log for the flusher to freeze the runs). Never writes a
 * file. 2 when a table is due (the flusher's turn), 1 while keys are
 * coming (look again soon), 0 when there are none to read, or what
 * reading the log returned (negative). */
int sb_kx_index(sb_kx *x);
/* With `finish` (not read_only): index the tail and write the runs if
 * they are due or frozen (the rest is replayed from the log at the next
 * open: a few key_memtable_bytes of keys at most, SB_KX_REPLAY_BYTES of
 * records; when there is no key since the last table and
 * SB_KX_CLOSE_NOTE_BYTES of records or more came, an empty table is
 * written instead, so that the open of a topic without keys replays
 * nothing), and sync the tables published lazily. Then free. */
#define SB_KX_CLOSE_NOTE_BYTES (1u << 20)
int sb_kx_close(sb_kx *x, int finish);
/* Make the tables cover every keyed record below `below` (the runs in
 * memory written as a table, if they hold some: compaction drops a
 * tombstone only where a table holds it, for the runs are replayed from
 * the log at the next open, which would no longer have it), and synced
 * (sb_kx_sync_tables). Returns the first offset the synced tables do not
 * cover (below `below` if a write or sync failed). [no log lock held but
 * compress_mu] */
uint64_t sb_kx_cover(sb_kx *x, uint64_t below);
/* Sync the tables published lazily (the flusher's tables of runs: not
 * synced when written, keyidx_write.c): each file, then the directory.
 * Cheap when there are none. [any thread; the store's flusher calls it
 * on every turn, apart from the key writer] */
int sb_kx_sync_tables(sb_kx *x);
/* The store is closing: a merge of tables in progress (the flusher's) is
 * abandoned, its temp file removed; the table writes of the close itself
 * (sb_kx_close) still happen. [any thread] */
void sb_kx_stop_merges(sb_kx *x);
/* Delete every table file (the topic is being removed). */
void sb_kx_remove_files(sb_kx *x);

typedef struct sb_kx_stats {
	uint64_t mt_keys, mt_bytes;  /* in memory: the tail and the runs */
	uint32_t tables;
	uint64_t table_keys, table_bytes;
	uint64_t covered_to;         /* the first offset no table covers */
	uint64_t appender_sorts;     /* the appender indexed the tail (the
				      * flusher was 4x memtable_bytes behind) */
	uint64_t appender_writes;    /* the appender wrote a table (with a flusher) */
} sb_kx_stats;
void sb_kx_get_stats(sb_kx *x, sb_kx_stats *st);

/* In key order, the latest entry of every key >= from (tombstones too),
 * merged from the runs and tables (the tail indexed first); stops when fn returns nonzero
 * (that value returned). Holds the lock shared throughout: fn must not
 * append to this log. */
typedef int (*sb_kx_scan_fn)(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v);
int sb_kx_scan(sb_kx *x, const void *from, size_t from_len, sb_kx_scan_fn fn, void *arg);

#endif
