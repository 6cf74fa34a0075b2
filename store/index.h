/*
 * index.h - a segment's sparse index in memory (internal to the store).
 *
 * Entries map an offset to the record's file position and its stream
 * position, both relative to the segment. The array has a fixed capacity
 * reserved up front (anonymous mapping, touched lazily) so that readers can
 * search it without a lock while the appender adds entries: the appender
 * writes an entry, then publishes the count with a release store.
 */
#ifndef SB_INDEX_H
#define SB_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct sb_index sb_index;

/* An empty index with room for `cap` entries; -ENOMEM. *out owned by caller. */
int sb_index_new(size_t cap, sb_index **out);
void sb_index_free(sb_index *ix);
/* Entries published so far (acquire). */
size_t sb_index_count(const sb_index *ix);
/* Append an entry (appender only); -ENOSPC when the capacity is reached. */
int sb_index_add(sb_index *ix, const sb_idx_entry *e);
/* Forget entries from `count` on (appender only, e.g. after a cut). */
void sb_index_truncate(sb_index *ix, size_t count);
/* Entry i (0 = the first); -ENOENT past the end. */
int sb_index_at(const sb_index *ix, size_t i, sb_idx_entry *e);
/* The last entry, or -ENOENT when empty. */
int sb_index_last(const sb_index *ix, sb_idx_entry *e);
/*
 * The last entry whose rel_offset <= rel (or rel_stream <= rel with
 * by_stream). -ENOENT if none. Searches the tail (the last 8 KiB of
 * entries) first, so lookups near the end touch no cold pages.
 */
int sb_index_lookup(const sb_index *ix, uint32_t rel, int by_stream, sb_idx_entry *e);

/*
 * Load an index file; it must match base offset `base` and cover exactly
 * seg_len bytes, its first entry the record at the header, at offset
 * `base` unless `compacted` (a compacted segment's first record may be past
 * it; -1: either, when it is not known). 0, -errno, SB_ECORRUPT or
 * SB_EVERSION. The loaded index gets capacity max(cap, its count); *max_ts
 * the segment's largest timestamp. Out-parameters untouched on failure.
 */
int sb_index_load(const sb_io *io, const char *path, uint64_t base, uint32_t seg_len, int compacted, size_t cap,
		  sb_index **out, int64_t *max_ts);
/*
 * The length of segment `base` its index file covers (the index is written
 * only once that much of the segment was synced), from the header alone:
 * 0 and *seg_len, -errno (no file) or SB_ECORRUPT (a header that is not a
 * good one of this segment's). *seg_len untouched on failure.
 */
int sb_index_covered(const struct sb_io *io, const char *path, uint64_t base, uint32_t *seg_len);
/* Durably write the index as `path` (temp file, fdatasync, rename); the
 * caller fsyncs the directory. */
int sb_index_save(const sb_index *ix, const struct sb_io *io, const char *path, uint64_t base,
		  uint32_t seg_len, int64_t max_ts);

#endif
