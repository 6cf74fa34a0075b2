/*
 * zseg.h - compressed segments (format.h, "Compressed segment"), internal
 * to the store.
 *
 * A compressed segment is read a block at a time: a block is read with
 * pread into private memory, its stored bytes' CRC checked, decompressed,
 * its raw bytes' CRC checked and its columns decoded, all into a slot of a
 * small cache (one per log, shared by its compressed segments). A reader
 * pins the slot while it copies out of it: what it serves is what was
 * checked, in memory no file change can reach. A reader moving forward
 * decompresses each block once; a slot is reused without allocating.
 */
#ifndef SB_ZSEG_H
#define SB_ZSEG_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "sb_io.h"

typedef struct sb_zcache sb_zcache;
typedef struct sb_zseg sb_zseg;

/* A cache of decompressed blocks (lazily allocated slots). 0 or -ENOMEM. */
int sb_zcache_new(sb_zcache **out);
void sb_zcache_free(sb_zcache *c);

/*
 * Compress the plain segment map[0, len) (header included, a sealed segment:
 * whole records up to len, nothing after) into fd, from byte 0, with codec
 * (SB_CODEC_LZ4, SB_CODEC_ZSTD) and blocks of about block_bytes of payload.
 * Every record is copied and its CRC checked on the copy; header blocks go
 * into the blocks with their records. 0, SB_ECORRUPT (why says where: the
 * records do not hold) or -errno.
 * *stored gets the file's length. Nothing is synced here.
 */
int sb_zseg_build(const sb_io *io, int fd, const uint8_t *map, uint64_t len, unsigned codec,
		  uint32_t block_bytes, uint64_t *stored, char *why, size_t whycap);

/*
 * Open the compressed segment in fd (file_size bytes; it must start with
 * SB_ZSEG_MAGIC): its header and block table are checked (CRCs, the table
 * against the header and the file size), not its blocks. c: the cache to
 * read blocks through (NULL: a private one). The fd stays the caller's.
 * 0, SB_ECORRUPT, SB_EVERSION or -errno.
 */
int sb_zseg_open(const sb_io *io, int fd, uint64_t file_size, uint64_t base, sb_zcache *c, sb_zseg **out);
void sb_zseg_free(sb_zseg *z);
/* Does buf (at least 4 bytes) start like a compressed segment? */
int sb_zseg_is(const uint8_t *buf);
/* Is buf a valid compressed segment header (magic, version, CRC)? */
int sb_zseg_hdr_valid(const uint8_t buf[SB_ZSEG_HDR]);

uint64_t sb_zseg_base_stream(const sb_zseg *z);
uint64_t sb_zseg_next(const sb_zseg *z);
uint64_t sb_zseg_stream_end(const sb_zseg *z);
/* Its stream positions moved to start at base_stream, in memory (every
 * position it gives is its header's base plus a relative one): a segment
 * below a stream gap the log closes at open (log_recover.c). Before any
 * reader; the file is not changed. */
void sb_zseg_rebase_stream(sb_zseg *z, uint64_t base_stream);
uint64_t sb_zseg_plain_len(const sb_zseg *z);
int64_t sb_zseg_first_ts(const sb_zseg *z);
int64_t sb_zseg_max_ts(const sb_zseg *z);
uint32_t sb_zseg_blocks(const sb_zseg *z);
unsigned sb_zseg_codec(const sb_zseg *z);
/* File position of block i (the table's position for i = count). */
uint64_t sb_zseg_block_pos(const sb_zseg *z, uint32_t i);
/* First offset of block i (next for i = count). */
uint64_t sb_zseg_block_offset(const sb_zseg *z, uint32_t i);
/* Stream position of block i's first payload (stream end for i = count). */
uint64_t sb_zseg_block_stream(const sb_zseg *z, uint32_t i);
/* The block holding record `key` (by_stream: stream byte `key`), which must
 * be inside the segment. */
uint32_t sb_zseg_block_of(const sb_zseg *z, uint64_t key, int by_stream);

/* One record of a pinned block; key and value point into the slot. */
typedef struct sb_zrec {
	uint64_t offset;
	uint64_t stream;        /* where its payload starts in the stream */
	int64_t timestamp_ns;
	uint16_t flags;
	uint16_t key_len;
	uint32_t value_len;
	const uint8_t *key;
	const uint8_t *value;   /* the block's values run on after it */
	const uint8_t *hdrs;    /* its header block (checked), hdrs_len bytes */
	uint32_t hdrs_len;      /* 0: no headers */
	uint64_t block_stream_end; /* stream pos after the block's last value */
} sb_zrec;

typedef struct sb_zpin {
	struct zslot *slot;
	uint32_t block;
} sb_zpin;

/*
 * Pin the block holding record `offset` (by_stream: the record whose payload
 * holds stream byte `key`) and fill *r with that record. Unpin with
 * sb_zseg_unpin() after copying. 0, SB_ECORRUPT (the block fails its checks,
 * *bad_pos gets its file position) or -errno; nothing is pinned on failure.
 */
int sb_zseg_get(sb_zseg *z, uint64_t key, int by_stream, sb_zpin *pin, sb_zrec *r, uint64_t *bad_pos);
/*
 * Pin the block holding stream byte spos for a stream read (its records are
 * not decoded: a block's raw bytes start with its stream bytes); *p gets
 * spos's byte in it and *avail how many stream bytes follow in the block.
 * Errors as sb_zseg_get.
 */
int sb_zseg_stream(sb_zseg *z, uint64_t spos, sb_zpin *pin, const uint8_t **p, uint64_t *avail, uint64_t *bad_pos);
/*
 * Copy stream bytes from spos into dst, at most len, from the block holding
 * spos only; *n gets how many. A block read whole whose raw bytes fit in
 * len is decompressed straight into dst (no copy; dst's bytes past *n up to
 * the block's raw length are then overwritten too). Errors as sb_zseg_get.
 */
int sb_zseg_stream_copy(sb_zseg *z, uint64_t spos, uint8_t *dst, size_t len, size_t *n, uint64_t *bad_pos);
/* Record k of the pinned block (k < sb_zpin_count()). */
void sb_zpin_rec(const sb_zseg *z, const sb_zpin *pin, uint32_t k, sb_zrec *r);
uint32_t sb_zpin_count(const sb_zpin *pin);
void sb_zseg_unpin(sb_zseg *z, sb_zpin *pin);
/* Read and check block i (a verify): 0, SB_ECORRUPT or -errno. */
int sb_zseg_check_block(sb_zseg *z, uint32_t i);

/*
 * Write blocks [0, nblocks) back as a plain segment (format.h) into fd from
 * byte 0; *len gets its length. Every block is checked on the way. 0,
 * SB_ECORRUPT (*bad gets the first bad block) or -errno.
 */
int sb_zseg_write_plain(sb_zseg *z, uint32_t nblocks, const sb_io *io, int fd, uint64_t *len, uint32_t *bad);
/*
 * Write block i's records as a plain segment holds them into fd at byte
 * pos (a recovery keeping the good blocks of a damaged segment); *bytes
 * gets how many. The block is checked on the way. 0, SB_ECORRUPT (the
 * block is damaged) or -errno; nothing is written when it is damaged.
 */
int sb_zseg_write_block(sb_zseg *z, uint32_t i, const sb_io *io, int fd, uint64_t pos, uint64_t *bytes);

#endif
