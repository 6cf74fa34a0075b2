/*
 * keytable.h - immutable sorted key tables (SSTables) of a topic's key
 * index (internal to the store), and their format, table version 4
 * (docs/FORMAT.md says the same in prose).
 *
 * A table maps keys to their latest record (offset, payload size, time,
 * tombstone flag, where it was written) as of the log offsets it covers,
 * [first, last]. It is
 * derived data: any table can be rebuilt from the log. File:
 * LOG_DIR/TOPIC/FFFFFFFFFFFFFFFFFFFF-LLLLLLLLLLLLLLLLLLLL.keys (its first
 * and last covered offsets, 20 digits each), published durably (written
 * as NAME.tmp, fdatasync, rename, fsync of the directory), or lazily (a
 * table of runs the flusher writes: the rename alone, synced later;
 * keyidx.h).
 *
 * All integers little-endian. The file is:
 *   blocks | block index | Bloom filter | footer (72 bytes)
 *
 *   block (about SB_KT_BLOCK bytes; one entry at least):
 *     entries, sorted by key (bytes compared, a prefix first), each
 *       0  u16 key_len (1..65535)   4  u32 payload size
 *       2  u16 flags (1: tombstone) 8  u64 offset
 *                                  16  i64 timestamp ns
 *                                  24  u32 position: where the record
 *                                      starts in its segment file (0:
 *                                      unknown)
 *                                  28  key bytes
 *     The position is a hint, written when the record was appended or
 *     replayed: a lookup reads the record there only if the record header
 *     there is sane and carries the entry's offset, in a segment that was
 *     never compacted (compaction moves records), and the record's CRC and
 *     key are checked as always; otherwise, and when the record's stream
 *     position is wanted too, it finds the record by offset (the segment's
 *     sparse index). `verify` checks every position of an
 *     entry in an uncompacted segment. (Version 3 had no position and
 *     24-byte entries; such tables are rebuilt from the log at open.)
 *     u32 position in the block of each entry, in order
 *     u32 entry count n (>= 1)
 *     u32 crc32c of all the block's bytes before it
 *   block index: u32 block count, then per block 16 bytes
 *       {u64 file position, u32 length, u32 position of its last key in
 *       the key area}, then the key area: per block u16 length + the
 *       block's last key.
 *   Bloom filter: u32 line count L (>= 1), u32 probes k, then L lines of
 *     64 bytes. Key hash h = sb_kt_hash(key) (keytable.c, fixed by the
 *     format); line ((h >> 32) * L) >> 32; probe i sets bit
 *     (g + i * d) mod 512 of the line, g = (uint32_t)h, d = g >> 17 | g << 15.
 *   footer:
 *     0  u32 magic "SBKT"          40 u32 index length
 *     4  u16 version (4)           44 u32 crc32c of the index
 *     6  u16 footer size (72)      48 u64 Bloom filter position
 *     8  u64 entry count           56 u32 Bloom filter length
 *    16  u64 first covered offset  60 u32 crc32c of the Bloom filter
 *    24  u64 last covered offset   64 u32 merge level (0: from a MemTable)
 *    32  u64 index position        68 u32 crc32c of [0,68)
 *
 * Opening checks the footer, index and Bloom filter CRCs, every block's
 * CRC and every bound, and the entries as the writer leaves them (keys
 * strictly increasing through the table, each block ending at its index
 * key, as many as the footer says); lookups check bounds (the record a lookup names is
 * read with its own CRC and must carry the key looked up). Reads go through
 * a read-only shared mapping of the file (like segments' reads).
 */
#ifndef SB_KEYTABLE_H
#define SB_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "memtable.h"
#include "sb_io.h"

#define SB_KT_MAGIC   0x544b4253u /* "SBKT" */
#define SB_KT_VERSION 4
#define SB_KT_FOOTER  72u
#define SB_KT_ENTRY   28u
#define SB_KT_BLOCK   1024u
#define SB_KT_SUFFIX  ".keys"
#define SB_KT_BLOOM_BITS_PER_KEY 10
#define SB_KT_BLOOM_K 6

uint64_t sb_kt_hash(const void *key, size_t len);

/* The Bloom filter's line for hash h in a filter of nlines lines, and its
 * probes there: the first bit g and the step d (the format above). */
static inline uint32_t sb_kt_bloom_line(uint64_t h, uint32_t nlines)
{
	return (uint32_t)(((h >> 32) * (uint64_t)nlines) >> 32);
}

static inline void sb_kt_bloom_probe(uint64_t h, uint32_t nlines, uint32_t *line, uint32_t *g, uint32_t *d)
{
	*line = sb_kt_bloom_line(h, nlines);
	*g = (uint32_t)h;
	*d = *g >> 17 | *g << 15;
}

/* The tables' key order: bytes compared, a prefix first. */
static inline int sb_kt_keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (al > bl) - (al < bl);
}

/* "FFFF...-LLLL....keys" (20+1+20+5 chars) into buf (>= 48 bytes). */
void sb_kt_name(char *buf, uint64_t first, uint64_t last);
/* Parse such a name: 0 or -EINVAL. */
int sb_kt_name_parse(const char *name, uint64_t *first, uint64_t *last);

/* ---- writing -------------------------------------------------------------- */

typedef struct sb_kt_writer sb_kt_writer;
/*
 * Start dir/NAME.tmp for offsets [first, last], at most `max_entries`
 * entries (sizes the Bloom filter), merge `level`. *out is the caller's:
 * sb_kt_writer_finish() or sb_kt_writer_abort() frees it.
 */
int sb_kt_writer_new(const sb_io *io, const char *dir, uint64_t first, uint64_t last, uint64_t max_entries,
		     uint32_t level, sb_kt_writer **out);
/* Add an entry; keys strictly increasing. -EINVAL otherwise, -errno. */
int sb_kt_writer_add(sb_kt_writer *w, const void *key, size_t klen, const sb_mt_val *v);
/* Write the rest, fdatasync, rename into place, fsync the directory. Frees
 * w; on failure the temp file is removed. */
int sb_kt_writer_finish(sb_kt_writer *w);
/* Publish w without syncing: sb_kt_writer_finish() writes and renames but
 * neither fdatasyncs the file nor fsyncs the directory. A table is derived
 * data: a crash before its owner syncs it may lose it or leave it torn,
 * and the next open drops it (and the tables after it) and replays its
 * range from the log. */
void sb_kt_writer_lazy(sb_kt_writer *w);
void sb_kt_writer_abort(sb_kt_writer *w);

/* ---- reading -------------------------------------------------------------- */

typedef struct sb_kt sb_kt;
/* Open and check dir/name: 0, SB_ECORRUPT (a message in why, if given),
 * -errno. *out is the caller's (sb_kt_close). */
int sb_kt_open(const sb_io *io, const char *dir, const char *name, sb_kt **out, char *why, size_t whycap);
/* The same for a table this process has just written and published
 * (sb_kt_writer_finish): the blocks' CRCs are not checked again (the
 * writer computed them over the bytes it wrote); the rest is. `durable`:
 * it was published synced (not sb_kt_writer_lazy). */
int sb_kt_open_written(const sb_io *io, const char *dir, const char *name, int durable, sb_kt **out);
/* Was t published synced (not lazily)? Its owner knows whether a lazy
 * one was synced since. */
int sb_kt_durable(const sb_kt *t);
void sb_kt_close(sb_kt *t);
/* Close and delete the file. */
int sb_kt_remove(const sb_io *io, sb_kt *t);
uint64_t sb_kt_first(const sb_kt *t);
uint64_t sb_kt_last(const sb_kt *t);
uint64_t sb_kt_count(const sb_kt *t);
uint32_t sb_kt_level(const sb_kt *t);
uint64_t sb_kt_file_bytes(const sb_kt *t);
const char *sb_kt_filename(const sb_kt *t);
/* May the table hold key? 0: surely not. h: sb_kt_hash(key). */
int sb_kt_may_contain(const sb_kt *t, uint64_t h);
/* Start fetching what sb_kt_may_contain(t, h) reads (a lookup that will
 * meet several tables fetches all their filters' lines at once). */
void sb_kt_prefetch(const sb_kt *t, uint64_t h);
/* 0 and *v, -ENOENT, or SB_ECORRUPT (a block failed its CRC or bounds). */
int sb_kt_get(const sb_kt *t, const void *key, size_t klen, uint64_t h, sb_mt_val *v);

/* In-order iteration (blocks checked as they are reached). */
typedef struct sb_kt_iter {
	const sb_kt *t;
	uint32_t block, n, i, area;
	const uint8_t *b, *pos;
	int err;          /* SB_ECORRUPT once a block fails */
} sb_kt_iter;
/* Position at the first key >= key (klen 0: the first). */
void sb_kt_seek(const sb_kt *t, const void *key, size_t klen, sb_kt_iter *it);
int sb_kt_iter_valid(const sb_kt_iter *it);
void sb_kt_iter_next(sb_kt_iter *it);
const uint8_t *sb_kt_iter_key(const sb_kt_iter *it, size_t *klen);
void sb_kt_iter_val(const sb_kt_iter *it, sb_mt_val *v);

#endif
