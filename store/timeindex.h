/*
 * timeindex.h - a segment's sparse time index (internal to the store).
 *
 * The records of a segment are cut into intervals at the points where the
 * offset index has its entries (about every index_interval_bytes). An
 * entry (ts, rel) says: the running maximum of the segment's timestamps
 * first reaches ts in the interval that starts at record base + rel. An
 * interval whose records do not raise the maximum gets no entry, so
 * entries are strictly increasing in both fields. The last interval (the
 * one still open to appends) has no entry: its start (open_start) and the
 * segment's largest timestamp (max_ts) are kept beside the entries.
 *
 * So the first record whose timestamp is >= T (which is also the first
 * whose running maximum is >= T) lies in the interval of the first entry
 * with ts >= T, or in the open interval when no entry reaches T but max_ts
 * does, or in no record of this segment when max_ts < T: a binary search
 * and a forward scan of at most one interval.
 *
 * Readers search without a lock while the appender feeds records: the
 * appender writes an entry, publishes the count (release), then moves
 * open_start (release); a reader loads max_ts and open_start first, then
 * the count (acquire), so an entry for an interval the reader skips is
 * always among the entries it sees.
 *
 * On disk (format.h): NNNNNNNNNNNNNNNNNNNN.tix beside the segment, written
 * whole like the offset index, and rebuilt from the segment when it is
 * missing, damaged or does not match it.
 */
#ifndef SB_TIMEINDEX_H
#define SB_TIMEINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "sb_io.h"

typedef struct sb_tindex sb_tindex;

typedef struct sb_tix_entry {
	int64_t ts;      /* the running maximum reached in this interval */
	uint32_t rel;    /* its first record's offset - the segment's base */
} sb_tix_entry;

/* An empty time index with room for `cap` entries; -ENOMEM. */
int sb_tindex_new(size_t cap, sb_tindex **out);
void sb_tindex_free(sb_tindex *t);
/* Entries published so far (acquire). */
size_t sb_tindex_count(const sb_tindex *t);
int sb_tindex_at(const sb_tindex *t, size_t i, sb_tix_entry *e);
/* The largest timestamp fed so far (INT64_MIN: none). */
int64_t sb_tindex_max(const sb_tindex *t);
/* The rel offset of the open interval's first record. */
uint32_t sb_tindex_open_start(const sb_tindex *t);

/*
 * Feed the record at rel offset `rel` with timestamp ts, in offset order
 * (appender only). `point`: the offset index starts an interval at this
 * record. -ENOSPC when the capacity is reached (the entry is dropped; the
 * index is then still right, only coarser: see sb_tindex_find).
 */
int sb_tindex_feed(sb_tindex *t, uint32_t rel, int64_t ts, int point);

/*
 * Where to start the forward scan for the first record whose timestamp is
 * >= ts: 0 and *rel the first record of the interval that holds it, or
 * -ENOENT when no record fed reaches ts.
 */
int sb_tindex_find(const sb_tindex *t, int64_t ts, uint32_t *rel);

/*
 * Checking a time index (made with any interval) against the records a
 * scan walks: _begin, then _record for every record in offset order, then
 * _end. It holds when every interval boundary it names (each entry but the
 * first, and the open interval's start) comes right after records whose
 * running maximum is the entry before it, and the maximum is the segment's:
 * then every seek through it finds what a scan of the records would.
 */
typedef struct sb_tindex_check {
	const sb_tindex *t;
	size_t j;          /* the next boundary to meet */
	int64_t run;       /* running maximum so far */
	int bad;
	int seen;          /* a record was walked */
} sb_tindex_check;
void sb_tindex_check_begin(sb_tindex_check *c, const sb_tindex *t);
void sb_tindex_check_record(sb_tindex_check *c, uint32_t rel, int64_t ts);
/* 1 if it holds for the `nrec` records walked. */
int sb_tindex_check_end(sb_tindex_check *c, uint64_t nrec);

/* Same entries, open interval and maximum? */
int sb_tindex_equal(const sb_tindex *a, const sb_tindex *b);

/*
 * Load a time index file; it must match base offset `base` and cover
 * exactly seg_len bytes of segment. 0, -errno, SB_ECORRUPT (bad magic, CRC,
 * size, order) or SB_EVERSION. Out-parameters untouched on failure.
 */
int sb_tindex_load(const sb_io *io, const char *path, uint64_t base, uint32_t seg_len, size_t cap,
		   sb_tindex **out);
/* Decode a time index file held in memory (the loader's parser; fuzzed). */
int sb_tindex_parse(const uint8_t *buf, size_t len, uint64_t base, uint32_t seg_len, size_t cap,
		    sb_tindex **out);
/* Durably write it as `path` (temp file, fdatasync, rename); the caller
 * fsyncs the directory. */
int sb_tindex_save(const sb_tindex *t, const sb_io *io, const char *path, uint64_t base, uint32_t seg_len);

#endif
