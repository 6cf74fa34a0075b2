/*
 * memtable.h - the MemTable of a topic's key index (internal to the store):
 * a sorted in-memory map from a key (1..SB_KEY_MAX bytes, compared as bytes,
 * a shorter prefix first) to its latest record: offset, payload size, time
 * and tombstone flag.
 *
 * A hash index over entries in an arena, and a sorted view built when an
 * ordered iteration asks for it (store/memtable.c says why). Threads: one
 * writer at a time (put, delete, clear: the caller serializes them) beside
 * any number of readers (get, iteration, count, bytes); get takes no lock.
 * Keys stay in memory until sb_mt_clear()/sb_mt_free(), which need that no
 * iterator or reader is inside the table (the key index swaps tables under
 * its own lock).
 */
#ifndef SB_MEMTABLE_H
#define SB_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#define SB_MT_TOMBSTONE 0x0001u /* the key's latest record is a tombstone */

typedef struct sb_mt_val {
	uint64_t offset;   /* the record's offset */
	int64_t ts;        /* its timestamp, ns */
	uint32_t size;     /* its payload size */
	uint16_t flags;    /* SB_MT_* */
	uint32_t pos;      /* where the record starts in its segment file, a
			    * hint of the key index (the MemTable does not
			    * keep it: 0); 0: unknown (log_read.c) */
} sb_mt_val;

typedef struct sb_mt sb_mt;

/* A new empty table; *out is the caller's (sb_mt_free). 0 or -ENOMEM. */
int sb_mt_new(sb_mt **out);
void sb_mt_free(sb_mt *m);

/* Insert or replace. -EINVAL for an empty key or one over SB_KEY_MAX,
 * -ENOMEM (the table as it was). [writer] */
int sb_mt_put(sb_mt *m, const void *key, size_t klen, const sb_mt_val *v);
/* Remove the key: 0, or -ENOENT when absent. Its memory is reclaimed at
 * clear. [writer] */
int sb_mt_delete(sb_mt *m, const void *key, size_t klen);
/* 0 and *v, or -ENOENT (*v untouched). [any thread] */
int sb_mt_get(const sb_mt *m, const void *key, size_t klen, sb_mt_val *v);
/* Keys present. [any thread] */
size_t sb_mt_count(const sb_mt *m);
/* Memory the table holds (arena bytes used), what key_memtable_bytes bounds. */
size_t sb_mt_bytes(const sb_mt *m);
/* Empty the table and release its memory, but what sb_mt_keep() asks it
 * to keep. No reader may be inside. [writer] */
void sb_mt_clear(sb_mt *m);
/* Keep up to `bytes` of the memory clear releases (default 0: none) for
 * the table's next fill: the arena's chunks and the index's arrays, which
 * the fill takes again as it asks for the same sizes. Fresh memory costs
 * its first touch, page faults that took up to 15 us a page on a guest
 * whose host takes freed memory back (docs/BENCHMARKS.md); the key index's
 * sorted runs keep their memory so too (keyrun.h). Kept memory is not in
 * sb_mt_bytes(). Lowering the bound frees what it keeps beyond it. [writer] */
void sb_mt_keep(sb_mt *m, size_t bytes);
/* Tests: blocks of new memory the table took from the system so far (not
 * kept ones). */
uint64_t sb_mt_test_fresh(const sb_mt *m);
/* Tests: no sorted view can be built from now on (as when memory for one
 * runs out): iteration falls back to a walk over every entry per step. */
void sb_mt_test_no_views(sb_mt *m);
/* Tests: the index's growth yields the CPU now and then (readers beside
 * it find the old index and the new one published). */
void sb_mt_test_yield_in_grow(sb_mt *m);

/*
 * Ordered iteration: sb_mt_seek() positions at the first key >= key (klen
 * 0: the first key); then while sb_mt_iter_valid(), read the entry and
 * sb_mt_iter_next(). Safe beside the writer: a seek sees every key put
 * before it; a key put after it may or may not be seen; keys come in order,
 * none twice; each step reads the value its key has then.
 */
typedef struct sb_mt_iter {
	const struct sb_mt *m;
	const uint8_t *key;   /* the current key (in the table's arena) */
	size_t klen;
	sb_mt_val val;        /* its value when the iterator got there */
	int valid;
	size_t at;            /* its place in the sorted view, while gen holds */
	uint64_t gen;         /* that view (memtable.c); 0: none */
} sb_mt_iter;
void sb_mt_seek(const sb_mt *m, const void *key, size_t klen, sb_mt_iter *it);
int sb_mt_iter_valid(const sb_mt_iter *it);
void sb_mt_iter_next(sb_mt_iter *it);
/* The current key (valid until clear) and its value. */
const uint8_t *sb_mt_iter_key(const sb_mt_iter *it, size_t *klen);
void sb_mt_iter_val(const sb_mt_iter *it, sb_mt_val *v);

#endif
