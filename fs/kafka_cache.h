/*
 * kafka_cache.h - a bounded cache of fetched Kafka records, in chunks.
 *
 * A chunk holds the records of one fetch of one partition: every record
 * with an offset in [first, next) that the partition holds (offsets in the
 * range without a record hold none: compaction, transaction markers). A
 * chunk is immutable once put; readers hold a reference while they copy
 * from it, so eviction never frees bytes being read. The cache keeps at most
 * `cap` bytes of chunks (least recently used go first; one chunk larger
 * than cap is kept alone).
 */
#ifndef SBFS_KAFKA_CACHE_H
#define SBFS_KAFKA_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "kafka_client.h"

typedef struct kcache kcache;
typedef struct kchunk kchunk;

typedef struct kcrec {
	int64_t offset;
	int64_t timestamp_ms;
	size_t value;           /* where in the chunk's data */
	uint32_t value_len;
	uint32_t key_len;
	size_t key;             /* where; has_key says whether there is one */
	size_t headers;         /* encoded: u16 name length, name, u32 length, value */
	uint32_t headers_len;
	uint16_t nheaders;
	uint8_t has_key;
	uint8_t tombstone;      /* a null value (kc_rec.tombstone) */
} kcrec;

int kcache_new(size_t cap, kcache **out);
void kcache_free(kcache *c);

/* A chunk of `owner` (any pointer naming a partition) from offset first. */
int kchunk_new(const void *owner, int64_t first, kchunk **out);
int kchunk_add(kchunk *ch, const kc_rec *r);
/* Records up to next (exclusive) are covered. */
void kchunk_seal(kchunk *ch, int64_t next);
/* Put into the cache; the caller keeps its reference (release it). */
void kcache_put(kcache *c, kchunk *ch);
/* The chunk of owner covering off (a reference), or NULL. */
kchunk *kcache_get(kcache *c, const void *owner, int64_t off);
void kchunk_release(kcache *c, kchunk *ch);
/* Drop owner's chunks (its partition is gone). */
void kcache_drop(kcache *c, const void *owner);
size_t kcache_bytes(kcache *c);

int64_t kchunk_first(const kchunk *ch);
int64_t kchunk_next(const kchunk *ch);
size_t kchunk_count(const kchunk *ch);
/* Index of the first record at or after off (kchunk_count if none). */
size_t kchunk_find(const kchunk *ch, int64_t off);
const kcrec *kchunk_rec(const kchunk *ch, size_t i);
const char *kchunk_data(const kchunk *ch);

#endif
