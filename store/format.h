/*
 * format.h - the on-disk format, in one place. The writer (segment.c,
 * index.c, log.c), the reader and `streambus verify` (verify.c) all use these
 * constants; docs/FORMAT.md says the same in prose. A change here bumps
 * SB_FORMAT_VERSION and updates all three.
 *
 * All integers are little-endian.
 *
 * A topic directory LOG_DIR/TOPIC/ holds:
 *   NNNNNNNNNNNNNNNNNNNN.seg   a segment: records from offset N (20 digits)
 *   NNNNNNNNNNNNNNNNNNNN.idx   its sparse index (rebuildable, optional)
 *   NNNNNNNNNNNNNNNNNNNN.tix   its sparse time index (rebuildable, optional)
 *   meta                       the log start (first retained offset)
 *   clean                      present only after a clean close
 *   F-L.keys                   a key table of the key index (table
 *                              version 4; rebuildable; its format is in
 *                              keytable.h)
 *
 * Format version 3 (SB_FORMAT_VERSION). Version 2 files are still read,
 * verified and recovered (SB_FORMAT_MIN_VERSION); new files are written in
 * version 3. A version 2 segment stays version 2: records without headers
 * are appended to it as before (their bytes are the same in both versions);
 * a record with headers rolls to a new version 3 segment first.
 *
 * Segment file = header (32 bytes) then records back to back. A segment may
 * end in zeros (preallocated space): a record whose size field is 0 ends it.
 *
 *   segment header            record (SB_REC_HDR = 32 bytes + key + value
 *                                     [+ header block, v3])
 *   0  u32 magic "SBSG"       0  u32 crc32c of bytes [4, size)
 *   4  u16 version (2 or 3)   4  u32 size = 32 + key_len + value_len
 *   6  u16 header size (32)            (+ header block length, v3)
 *   8  u64 base offset        8  u64 offset
 *  16  u64 base stream pos   16  i64 timestamp, ns since the epoch
 *  24  u32 compacted span    24  u16 flags (SB_REC_*)
 *  28  u32 crc32c of [0,28)  26  u16 key_len
 *                            28  u32 value_len
 *                            32  key bytes, then value bytes, then (v3,
 *                                flag SB_REC_HEADERS) the header block
 *
 * Record headers (v3): a record whose flags have SB_REC_HEADERS ends in a
 * header block, after its value; its length is what the size field counts
 * past the value: size - 32 - key_len - value_len, at least SB_HDRS_MIN and
 * at most SB_HDRS_MAX. Without the flag that difference is 0. So a record's
 * framing (and where its value is) still comes from its first 32 bytes
 * alone, and the record CRC covers the block like the rest.
 *
 *   header block
 *   0  u16 count of headers (1 .. SB_HEADERS_MAX_COUNT)
 *   2  the headers back to back, each:
 *        0  u8  name length (1 .. SB_HDR_NAME_MAX)
 *        1  u16 value length (0 .. SB_HDR_VALUE_MAX)
 *        3  name bytes (no NUL among them), then value bytes
 *
 * The headers fill the block exactly; names differ from each other (a
 * writer refuses duplicates). A block that does not parse so is damage.
 *
 * [v3 sections of the other issue 9 parts go here: the time index file
 *  (timeidx) and the compressed segment form (compress).]
 *
 * Compacted segment (cleanup = compact; format version 3): a sealed
 * segment rewritten keeping only the latest record of each key (and
 * records without a key, and tombstones younger than delete_retention_ms)
 * has a nonzero "compacted span" in its header: next offset - base offset,
 * the offsets it covers. Its records keep their offsets, strictly
 * increasing inside [base, base + span), with gaps where records were
 * removed; in any other segment (span 0, as every segment before
 * compaction existed) offsets follow each other and a gap is damage. Its
 * records' stream positions follow each other from its base stream pos as
 * in any segment; the compactor chooses that base so that the segment's
 * stream ends where the next segment's begins (the removed payloads leave
 * the stream; a crash between two segments' swaps may leave a stream gap
 * before a compacted segment, a copy taken during a round an overlap: both
 * accepted next to a compacted segment, whose positions recovery derives
 * from the next segment's; the next compaction writes them). A
 * compacted segment is never compressed, and a compressed one never
 * compacted. Written like a compressed one: temp file, fsync, rename over
 * NNNN.seg, directory fsync (its .idx and .tix then rebuilt).
 *
 * The active segment of a compacted topic takes records past its next
 * offset (a backup with gaps copied back) the same way: while active its
 * span is a bound (every record below base + span, offsets skipping
 * inside), raised in place before a record past it is written, to
 * SB_SPAN_SPARE (segment.h) offsets past that record, and cut back to
 * next - base (synced) when the segment is sealed or cleanly closed.
 *
 * "stream pos" is a position in the topic's stream: the concatenation of
 * every payload ever appended, in offset order (what the filesystem serves as
 * .log). A record's stream pos is the segment's base stream pos plus the
 * value lengths of the records before it in that segment.
 *
 * Index file = header (40 bytes) then entries of 12 bytes, one about every
 * index_interval_bytes of records, sorted:
 *
 *   index header              entry
 *   0  u32 magic "SBIX"       0  u32 offset - base offset
 *   4  u16 version            4  u32 file position of that record
 *   6  u16 header size (40)   8  u32 its stream pos - base stream pos
 *   8  u64 base offset
 *  16  u32 entry count
 *  20  u32 segment length it covers (bytes, header included)
 *  24  i64 largest record timestamp in the segment (retention by age)
 *  32  u32 crc32c of the entries
 *  36  u32 crc32c of [0,36)
 *
 * An index whose CRCs, count or covered length disagree with its segment is
 * rebuilt from the segment. The first record of a segment always has an
 * entry. Segments are at most SB_SEG_MAX_BYTES long, so u32 positions fit.
 *
 * Time index file (format version 3) = header (48 bytes) then entries of
 * 12 bytes. The records are cut into intervals where the offset index has
 * its entries; an entry says that the segment's running maximum timestamp
 * first reaches `ts` in the interval starting at record base + rel. Only
 * intervals that raise the maximum have one, so entries are strictly
 * increasing in ts and in rel; the last interval (open to appends) has none.
 *
 *   time index header         entry
 *   0  u32 magic "SBTX"       0  i64 running max timestamp reached
 *   4  u16 version            8  u32 rel offset of the interval's first record
 *   6  u16 header size (48)
 *   8  u64 base offset
 *  16  u32 entry count
 *  20  u32 segment length it covers (bytes, header included)
 *  24  i64 largest timestamp in the segment (INT64_MIN: no record)
 *  32  u32 rel offset of the last (open) interval's first record
 *  36  u32 crc32c of the entries
 *  40  u32 reserved (0)
 *  44  u32 crc32c of [0,44)
 *
 * A time index whose CRCs, size, base, covered length, order or maximum
 * disagree with its segment is rebuilt from the segment, like the offset
 * index; it is written (temp file, fdatasync, rename, directory fsync) with
 * the offset index, before it.
 *
 * meta = u32 magic "SBMT", u16 version, u16 size (24), u64 start offset,
 *        u32 reserved, u32 crc32c of [0,20). Rewritten in place when the
 *        disk has no room for a temp file; the start is never below the
 *        first segment's base, whatever meta says.
 * clean = u32 magic "SBCL", u16 version, u16 size (32), u64 base offset of
 *        the last segment, u64 its length, u32 reserved, u32 crc32c of [0,28).
 *        Written at clean close; an open that finds it matching the last
 *        segment's length skips the scan of that segment.
 */
#ifndef SB_FORMAT_H
#define SB_FORMAT_H

#include <stdint.h>
#include <string.h>

#include "sb_store.h"

/* 2: the index header holds the largest timestamp; 3: record headers. */
#define SB_FORMAT_VERSION 3
#define SB_FORMAT_MIN_VERSION 2 /* the oldest version still read */

#define SB_SEG_MAGIC   0x47534253u /* "SBSG" */
#define SB_IDX_MAGIC   0x58494253u /* "SBIX" */
#define SB_TIX_MAGIC   0x58544253u /* "SBTX" */
#define SB_META_MAGIC  0x544d4253u /* "SBMT" */
#define SB_CLEAN_MAGIC 0x4c434253u /* "SBCL" */

#define SB_SEG_HDR     32u
#define SB_IDX_HDR     40u
#define SB_IDX_ENTRY   12u
#define SB_REC_HDR     32u
#define SB_META_SIZE   24u
#define SB_CLEAN_SIZE  32u
#define SB_TIX_HDR     48u
#define SB_TIX_ENTRY   12u

/* Where each field is: byte offsets inside each structure above (the
 * tables at the top of this file). Code names fields by these, never by a
 * bare number. */
/* every file header (segment, index, meta, clean) starts with these: */
#define SB_FH_MAGIC        0u  /* u32 */
#define SB_FH_VERSION      4u  /* u16 */
#define SB_FH_SIZE         6u  /* u16 header size */
/* segment header */
#define SB_SEG_AT_BASE     8u  /* u64 base offset */
#define SB_SEG_AT_STREAM  16u  /* u64 base stream pos */
#define SB_SEG_AT_SPAN    24u  /* u32 compacted: next - base offset (0: not compacted) */
#define SB_SEG_AT_CRC     28u  /* u32 crc32c of [0, 28) */
/* record */
#define SB_REC_AT_CRC      0u  /* u32 crc32c of [SB_REC_AT_SIZE, size) */
#define SB_REC_AT_SIZE     4u  /* u32 */
#define SB_REC_AT_OFFSET   8u  /* u64 */
#define SB_REC_AT_TS      16u  /* i64 */
#define SB_REC_AT_FLAGS   24u  /* u16 */
#define SB_REC_AT_KEY_LEN 26u  /* u16 */
#define SB_REC_AT_VAL_LEN 28u  /* u32 */
#define SB_REC_AT_KEY     SB_REC_HDR /* the key; the value follows it */
/* index header and entry */
#define SB_IDX_AT_BASE     8u  /* u64 */
#define SB_IDX_AT_COUNT   16u  /* u32 */
#define SB_IDX_AT_SEG_LEN 20u  /* u32 */
#define SB_IDX_AT_MAX_TS  24u  /* i64 */
#define SB_IDX_AT_ECRC    32u  /* u32 crc32c of the entries */
#define SB_IDX_AT_CRC     36u  /* u32 crc32c of [0, 36) */
#define SB_IE_AT_OFFSET    0u  /* u32 offset - base offset */
#define SB_IE_AT_POS       4u  /* u32 file position */
#define SB_IE_AT_STREAM    8u  /* u32 stream pos - base stream pos */
/* meta and clean */
#define SB_META_AT_START   8u  /* u64 */
#define SB_META_AT_CRC    20u  /* u32 crc32c of [0, 20) */
#define SB_CLEAN_AT_BASE   8u  /* u64 base offset of the last segment */
#define SB_CLEAN_AT_LEN   16u  /* u64 its length */
#define SB_CLEAN_AT_CRC   28u  /* u32 crc32c of [0, 28) */
/* time index header and entry (format version 3) */
#define SB_TIX_AT_BASE     8u  /* u64 */
#define SB_TIX_AT_COUNT   16u  /* u32 */
#define SB_TIX_AT_SEG_LEN 20u  /* u32 */
#define SB_TIX_AT_MAX_TS  24u  /* i64 largest timestamp, INT64_MIN: none */
#define SB_TIX_AT_OPEN    32u  /* u32 rel offset of the open interval */
#define SB_TIX_AT_ECRC    36u  /* u32 crc32c of the entries */
#define SB_TIX_AT_CRC     44u  /* u32 crc32c of [0, 44) */
#define SB_TE_AT_TS        0u  /* i64 running max timestamp reached */
#define SB_TE_AT_REL       8u  /* u32 first record of the interval - base */

#define SB_SEG_SUFFIX  ".seg"
#define SB_IDX_SUFFIX  ".idx"
#define SB_TIX_SUFFIX  ".tix"
#define SB_META_NAME   "meta"
#define SB_CLEAN_NAME  "clean"
/* LOG_DIR/.lock: flock'ed (LOCK_EX) by the read-write opener for as long as
 * the store is open. Holds a note of three lines, "PID\nMOUNTPOINT\nDIR\n":
 * the holder's pid, the mountpoint it serves the store on (empty for a
 * tool) and the store directory as it named it (the mount's source); while
 * the store closes, a fourth, "closing DONE TOTAL STEPS\n": topics closed
 * of all, and steps inside their closes (a sealed segment synced, its
 * index saved), rewritten as it goes, so that a waiting opener sees it
 * progress. */
#define SB_LOCK_NAME   SB_STORE_LOCK_NAME /* ".lock", named in sb_store.h for the tools */
#define SB_NAME_DIGITS 20

/* Largest segment file: positions and sizes fit in u32 with room to spare. */
#define SB_SEG_MAX_BYTES (3u * 1024 * 1024 * 1024)
/* Largest base stream pos of a segment: so that no stream pos inside one
 * (at most SB_SEG_MAX_BYTES of records) can wrap past 2^64. A header that
 * says more is damaged; an append that would take the stream past it fails
 * (EOVERFLOW), so a new segment never needs more. */
#define SB_STREAM_MAX (UINT64_MAX - SB_SEG_MAX_BYTES)
/* Largest key. */
#define SB_KEY_MAX 65535u

/* Record flags. Bits a segment's version does not define make a record
 * damage (SB_REC_BAD), whatever its CRC says. */
#define SB_REC_TOMBSTONE 0x0001u /* a delete marker for its key: a keyed record, no payload (rm TOPIC/.keys/K) */
#define SB_REC_COMPRESSED_MASK 0x000eu /* reserved: compression codec */
#define SB_REC_HEADERS   0x0010u /* v3: a header block ends the record */
#define SB_REC_KNOWN_FLAGS_V2 (SB_REC_TOMBSTONE)
#define SB_REC_KNOWN_FLAGS (SB_REC_TOMBSTONE | SB_REC_HEADERS) /* version 3 */
/* The flags a writer may ask for (sb_record_in.flags); SB_REC_HEADERS is
 * the encoder's, set when a record has headers. */
#define SB_REC_USER_FLAGS (SB_REC_TOMBSTONE)

/* Record headers (v3): the header block (see the top of this file). */
#define SB_HDRS_AT_COUNT   0u  /* u16 */
#define SB_HDRS_AT_FIRST   2u  /* the first header */
#define SB_HDR_AT_NAME_LEN 0u  /* u8, in each header */
#define SB_HDR_AT_VAL_LEN  1u  /* u16 */
#define SB_HDR_AT_NAME     3u  /* the name; the value follows it */
#define SB_HDR_NAME_MAX    SB_HEADER_NAME_MAX  /* 255 (sb_store.h) */
#define SB_HDR_VALUE_MAX   SB_HEADER_VALUE_MAX /* 65535 */
#define SB_HDRS_MAX        SB_HEADERS_MAX_BYTES /* 65536: the whole block */
#define SB_HDRS_MIN        (SB_HDRS_AT_FIRST + SB_HDR_AT_NAME + 1u) /* one header, 1-byte name */

/*
 * Compressed segment (format version 3; docs/FORMAT.md "Compressed
 * segment"). A sealed, synced segment may be replaced (temp file, fsync,
 * rename over NNNN.seg, directory fsync; its .idx is then removed) by a file
 * of the same name that starts with magic "SBZS" instead of "SBSG": the
 * same records, in blocks of about compression_block_bytes of payload, each
 * compressed with the topic's codec. It carries its own block table (the
 * offset index of a compressed segment points at blocks) and needs no .idx.
 *
 *   compressed segment header (96 bytes)   block table entry (32 bytes)
 *   0  u32 magic "SBZS"                    0  u32 first offset - base offset
 *   4  u16 version (3)                     4  u32 its stream pos - base stream pos
 *   6  u16 header size (96)                8  u32 file position of the block
 *   8  u64 base offset                    12  u32 stored (compressed) length
 *  16  u64 base stream pos                16  u32 raw (decompressed) length
 *  24  u64 next offset (after the last)   20  u32 record count (>= 1)
 *  32  u64 stream end                     24  u32 crc32c of the stored bytes
 *  40  u64 plain length (the segment's    28  u32 crc32c of the raw bytes
 *          length before compression)
 *  48  i64 first record's timestamp
 *  56  i64 largest record timestamp
 *  64  u64 block table position
 *  72  u32 block count
 *  76  u16 codec (SB_CODEC_LZ4, SB_CODEC_ZSTD)
 *  78  u16 features (SB_ZSEG_F_*; 0 in files without headers)
 *  80  u32 crc32c of the block table
 *  84  u32 dictionary length (zstd; 0: none)
 *  88  u32 crc32c of the dictionary
 *  92  u32 crc32c of [0,92)
 *
 * A zstd dictionary (trained on the segment's payloads when it is
 * compressed) follows the header; the blocks follow back to back, each
 * compressed with it; the table follows the last block
 * and ends the file. A raw block of n records (n from its table entry) is
 * its records' values back to back (its stream bytes: as many as the table
 * says), then four columns of n LEB128 varints each, then the keys:
 *   flags; key_len; value_len as a zigzag difference from its prediction
 *   (the bytes up to and including the next '\n' in the values from where
 *   the record's value starts, or all that are left: a line codes 0);
 *   timestamp as a zigzag delta from the record before it in the block
 *   (the first: from 0)
 * so that a stream read needs no decoding. Offsets are dense: record k of a
 * block has the entry's first offset + k. A reader checks the stored
 * bytes' CRC before decompressing and the raw bytes' CRC after; records
 * have no CRC of their own there.
 *
 * Record headers (feature SB_ZSEG_F_HEADERS, set when any record of the
 * file has headers): a record whose flags (first column) have
 * SB_REC_HEADERS keeps its header block (format above, checked when the
 * block is decoded) in the block. After the timestamps comes a fifth
 * column, one LEB128 varint per record with the flag (in record order):
 * its header block's length (SB_HDRS_MIN..SB_HDRS_MAX); after the keys,
 * those header blocks back to back. Without the flag in any record the
 * column and the blocks are empty: such a block is what a file without
 * the feature holds. The raw CRC covers them like the rest. A reader
 * refuses feature bits it does not know (SB_EVERSION), and takes a record
 * flag SB_REC_HEADERS in a file without SB_ZSEG_F_HEADERS as damage.
 */
#define SB_ZSEG_MAGIC   0x535a4253u /* "SBZS" */
#define SB_ZSEG_HDR     96u
#define SB_ZSEG_ENTRY   32u
#define SB_ZSEG_VERSION 3
#define SB_CODEC_NONE   0u
#define SB_CODEC_LZ4    1u
#define SB_CODEC_ZSTD   2u
#define SB_ZSEG_AT_FEATURES 78u /* u16 */
#define SB_ZSEG_F_HEADERS 0x0001u /* blocks may hold records' header blocks */
#define SB_ZSEG_KNOWN_FEATURES (SB_ZSEG_F_HEADERS)
/* Largest dictionary. */
#define SB_ZDICT_MAX    (1u << 20)
/* Largest raw block: a block holds at least one record (up to 512 MiB + key). */
#define SB_ZBLOCK_MAX   ((512u << 20) + (1u << 20))

static inline uint16_t sb_get16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v; /* little-endian hosts only (checked in store.c) */
}
static inline uint32_t sb_get32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t sb_get64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline void sb_put16(void *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void sb_put32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void sb_put64(void *p, uint64_t v) { memcpy(p, &v, 8); }

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "StreamBus's on-disk format is little-endian; this host is not"
#endif

#endif
