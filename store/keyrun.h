/*
 * keyrun.h - the in-memory part of a topic's key index (internal to the
 * store, used by keyidx*.c): the unindexed tail and sorted runs.
 *
 * A keyed append only copies its key and value to the end of the tail
 * (sb_kp_put: no lock, no ordered insert). The indexer (the flusher, or a
 * reader catching up) takes the tail's entries below an offset, sorts them
 * (a radix sort by 8-byte chunks of the key, most significant byte first,
 * stable, so the latest record of a key wins) into an immutable sorted run (sb_kr), and only then
 * releases them from the tail. Runs are merged with each other and written
 * as key tables by keyidx*.c.
 *
 * Threads: one appender (put), one indexer at a time (take, release), any
 * number of readers (find, count, runs). The owner excludes readers of the
 * tail while it releases (keyidx_turn.c: its rwlock held exclusively).
 */
#ifndef SB_KEYRUN_H
#define SB_KEYRUN_H

#include <stddef.h>
#include <stdint.h>

#include "memtable.h"

/* ---- sorted runs ------------------------------------------------------------ */

typedef struct sb_kr sb_kr;
/* Memory of freed runs kept for the next ones (a topic's key index has
 * one): a run's memory is fresh pages otherwise, faulted in and zeroed
 * (and, once a table write frees the runs, given back to the kernel and
 * unmapped, which interrupts the other CPUs). The scratch of a sort is
 * kept there too. Locked inside: runs may be freed by any thread. */
typedef struct sb_kr_pool sb_kr_pool;
/* A pool keeping up to `keep` bytes of freed runs. 0 or -ENOMEM. */
int sb_kr_pool_new(size_t keep, sb_kr_pool **out);
/* Free the pool and what it keeps (its runs must be freed already). */
void sb_kr_pool_free(sb_kr_pool *pool);
/* Bytes of freed runs the pool keeps now (at most its bound). */
size_t sb_kr_pool_held(sb_kr_pool *pool);
/* Free a run (to its pool, if any, while the pool keeps less than its
 * bound). [no reader in it] */
void sb_kr_free(sb_kr *r);
size_t sb_kr_count(const sb_kr *r);
/* Memory the run holds (what key_memtable_bytes bounds). */
size_t sb_kr_bytes(const sb_kr *r);
/* 0 and *v, or -ENOENT. The first get of a run makes its Bloom filter
 * (once, whichever reader comes first; the others wait for it). */
int sb_kr_get(const sb_kr *r, const void *key, size_t klen, sb_mt_val *v);
/* One run of the entries of `newer` and `older`, newer winning a key
 * (its memory from newer's pool). 0 or -ENOMEM. */
int sb_kr_merge(const sb_kr *newer, const sb_kr *older, sb_kr **out);

typedef struct sb_kr_iter {
	const sb_kr *r;
	size_t i;
} sb_kr_iter;
/* Position at the first key >= key (klen 0: the first). */
void sb_kr_seek(const sb_kr *r, const void *key, size_t klen, sb_kr_iter *it);
int sb_kr_iter_valid(const sb_kr_iter *it);
void sb_kr_iter_next(sb_kr_iter *it);
const uint8_t *sb_kr_iter_key(const sb_kr_iter *it, size_t *klen);
void sb_kr_iter_val(const sb_kr_iter *it, sb_mt_val *v);
/* The current key and its first 8 bytes (keyprefix.h) at once: 1, or 0
 * past the end (a merge's step: one call). */
int sb_kr_iter_load(const sb_kr_iter *it, const uint8_t **key, size_t *klen, uint64_t *pfx);

/* ---- the unindexed tail ------------------------------------------------------- */

typedef struct sb_kp sb_kp;
/* Where a take stopped (sb_kp_release's argument). */
typedef struct sb_kp_pos {
	void *chunk;
	size_t at;
	uint64_t n;   /* entries taken */
	uint64_t bytes;
} sb_kp_pos;

int sb_kp_new(sb_kp **out);
void sb_kp_free(sb_kp *p);
/* Append an entry (offsets increasing). 0, -ENOMEM. [appender] */
int sb_kp_put(sb_kp *p, const void *key, size_t klen, const sb_mt_val *v);
/* Entries and bytes held (put and not released). [any thread] */
uint64_t sb_kp_count(const sb_kp *p);
uint64_t sb_kp_bytes(const sb_kp *p);
/* The latest entry of key in the tail: 0 and *v, or -ENOENT. A linear scan:
 * for a short tail. [reader, releases excluded] */
int sb_kp_find(const sb_kp *p, const void *key, size_t klen, sb_mt_val *v);
/* The entries with offsets below `below`, from the first not released, as
 * a sorted run (*out NULL when there are none; its memory from pool, which
 * may be NULL) and where they end. They stay in the tail until
 * sb_kp_release(). 0, -ENOMEM. [indexer: one at a time a pool] */
int sb_kp_take(sb_kp *p, uint64_t below, sb_kr_pool *pool, sb_kr **out, sb_kp_pos *pos);
/* Drop the entries up to pos (from sb_kp_take). [indexer, readers excluded] */
void sb_kp_release(sb_kp *p, const sb_kp_pos *pos);
/* Free the released chunks kept for the appender's reuse (a tail idle for
 * a while). [indexer, or with no appender] */
void sb_kp_trim(sb_kp *p);

#endif
