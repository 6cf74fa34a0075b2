/*
 * memtable.h - the MemTable of a topic's key index (internal to the store):
 * a sorted in-memory map from a key (1..SB_KEY_MAX bytes, compared as bytes,
 * a shorter prefix first) to its latest record: offset, payload size, time
 * and tombstone flag.
 *
 * A B+tree in an arena under a reader-writer lock (store/memtable.c says
 * why a B+tree). Threads: any number of writers (put, delete) and readers
 * (get, iteration, count, bytes) at the same time. Keys stay in memory
 * until sb_mt_clear()/sb_mt_free(), which need that no iterator or reader
 * is inside the table (the key index swaps tables under its own lock).
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
} sb_mt_val;

typedef struct sb_mt sb_mt;

/* A new empty table; *out is the caller's (sb_mt_free). 0 or -ENOMEM. */
int sb_mt_new(sb_mt **out);
void sb_mt_free(sb_mt *m);

/* Insert or replace. -EINVAL for an empty key or one over SB_KEY_MAX,
 * -ENOMEM. [writer] */
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
/* Empty the table and release its memory. No reader may be inside. */
void sb_mt_clear(sb_mt *m);

/*
 * Ordered iteration: sb_mt_seek() positions at the first key >= key (klen
 * 0: the first key); then while sb_mt_iter_valid(), read the entry and
 * sb_mt_iter_next(). Safe beside writers: each step finds the first key
 * after the current one again, so a key put meanwhile may or may not be
 * seen; keys come in order, none twice.
 */
typedef struct sb_mt_iter {
	const struct sb_mt *m;
	const uint8_t *key;   /* the current key (in the table's arena) */
	size_t klen;
	sb_mt_val val;        /* its value when the iterator got there */
	int valid;
	const void *leaf;     /* where it is (memtable.c), while gen holds */
	int at;
	uint64_t gen;
} sb_mt_iter;
void sb_mt_seek(const sb_mt *m, const void *key, size_t klen, sb_mt_iter *it);
int sb_mt_iter_valid(const sb_mt_iter *it);
void sb_mt_iter_next(sb_mt_iter *it);
/* The current key (valid until clear) and its value. */
const uint8_t *sb_mt_iter_key(const sb_mt_iter *it, size_t *klen);
void sb_mt_iter_val(const sb_mt_iter *it, sb_mt_val *v);

#endif
