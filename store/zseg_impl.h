/*
 * zseg_impl.h - the structures of zseg.c and zbuild.c (compressed
 * segments); nothing else includes it.
 */
#ifndef SB_ZSEG_IMPL_H
#define SB_ZSEG_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "zseg.h"

/* The header of a compressed segment (format.h). */
typedef struct sb_zhdr {
	uint64_t base, base_stream, next, stream_end, plain_len;
	int64_t first_ts, max_ts;
	uint64_t table_pos;
	uint32_t nblocks;
	unsigned codec;
	unsigned features;          /* SB_ZSEG_F_* */
	uint32_t table_crc;
	uint32_t dict_len, dict_crc; /* zstd: a dictionary after the header */
} sb_zhdr;

/* One block table entry (format.h). */
typedef struct sb_zent {
	uint32_t rel_offset, rel_stream, pos, stored, raw, count, stored_crc, raw_crc;
} sb_zent;

/* EMPTY -> LOADING (a loader holds a ref) -> READY, or EMPTY again if the
 * load failed; QUEUED: asked for by a read-ahead, no ref, loaded by the
 * worker or by the reader that needs it first (zcache.c). */
enum { ZS_EMPTY = 0, ZS_LOADING = 1, ZS_READY = 2, ZS_QUEUED = 3 };

/* A decompressed, checked, decoded block. The key fields are the cache's
 * (under its mutex); the buffers are the loader's while ZS_LOADING and
 * read-only while pinned. */
struct zslot {
	uint64_t gen;               /* the segment's id, 0: none */
	sb_zseg *z;                 /* the segment (to load a QUEUED slot) */
	uint32_t block;
	int state, refs, heap;
	uint64_t used;
	uint8_t *stored, *raw;
	size_t stored_cap, raw_cap, raw_len;
	uint32_t n;                 /* records */
	uint32_t *koff, *voff;      /* n + 1: key / value starts (relative) */
	int64_t *ts;
	uint16_t *flags;
	uint32_t *hoff;             /* n + 1: header block starts (relative;
				     * a record without headers has none) */
	uint32_t kcap, vcap, tcap, fcap, hcap;
	uint32_t keys_at, vals_at, hdrs_at; /* where keys, values and header
					     * blocks start in raw */
	int decoded;                /* n, koff, voff, ts, flags are valid */
	void *dctx;                 /* ZSTD_DCtx, made at first use */
};

struct sb_zseg {
	const sb_io *io;
	int fd;
	sb_zhdr h;
	sb_zent *t;                 /* the block table */
	sb_zcache *c, *own;
	uint64_t gen;
	void *ddict;                /* ZSTD_DDict of its dictionary, made at the
				     * first block read (under c->mu) */
	uint8_t *dict;              /* dict_len bytes, checked at open */
	_Atomic int ddict_ready;    /* ddict is made (release/acquire) */
	uint32_t seq_next;          /* [c->mu] the block after the last stream pin */
};

/* Slots per cache: a few readers of one topic at a time each keep their
 * block (a forward scan and the up to 4 blocks it reads ahead, a random
 * read, the daemon's readahead). */
#define ZC_SLOTS 6

struct sb_zcache {
	pthread_mutex_t mu;
	pthread_cond_t cv;           /* a slot finished loading */
	pthread_cond_t wcv;          /* wakes the read-ahead worker */
	struct zslot slots[ZC_SLOTS]; /* [mu] key, state, refs, used, z */
	uint64_t tick;               /* [mu] */
	uint64_t gens;               /* [mu] ids handed to segments */
	pthread_t worker;            /* [mu] made: worker_made */
	int worker_made;             /* [mu] not joined yet */
	int worker_on;               /* [mu] running (not ending) */
	int stop;                    /* [mu] the cache is being freed */
	uint64_t ahead_loads;        /* [mu] blocks the worker loaded */
	uint64_t direct_loads;       /* [mu] blocks loaded into a reader's buffer */
	uint32_t steps;              /* [mu] forward stream pins (ahead_pays) */
	int run_on;                  /* [mu] reading ahead pays (last look) */
	int ahead;                   /* [mu] -1: by the load; 0 off; 1 on */
};

void sb_zhdr_encode(uint8_t dst[SB_ZSEG_HDR], const sb_zhdr *h);
int sb_zhdr_decode(const uint8_t src[SB_ZSEG_HDR], sb_zhdr *h);
void sb_zent_encode(uint8_t dst[SB_ZSEG_ENTRY], const sb_zent *e);
/* Decode the columns of s->raw (raw_len bytes, n records, stream_len bytes
 * of values; features: the file's SB_ZSEG_F_*). 0, SB_ECORRUPT or -ENOMEM. */
int sb_zblock_decode(struct zslot *s, uint32_t n, uint64_t stream_len, unsigned features);
/* Decompress n bytes at src into out (raw bytes exactly; s: its DCtx). */
int sb_zblock_decompress(unsigned codec, struct zslot *s, uint8_t *out, const uint8_t *src, size_t n, size_t raw,
			 const void *ddict);
int sb_zseg_pin_block(sb_zseg *z, uint32_t i, sb_zpin *pin);
/* Stream bytes of block i. */
uint64_t sb_zseg_block_stream_len(const sb_zseg *z, uint32_t i);
/* Read, check (both CRCs), decompress and (with decode) decode block i of z
 * into slot s, which is the caller's alone meanwhile. 0, SB_ECORRUPT or
 * -errno. */
int sb_zblock_load(sb_zseg *z, struct zslot *s, uint32_t i, int decode);
/* Read and check block i of z, decompressed into out (its raw bytes; s
 * lends its stored buffer and DCtx): 0, SB_ECORRUPT or -errno. */
int sb_zblock_load_into(sb_zseg *z, struct zslot *s, uint32_t i, uint8_t *out);

/* zcache.c */
/* Pin block i of z (stream: for a stream read, which may read ahead). */
int sb_zcache_pin(sb_zseg *z, uint32_t i, sb_zpin *pin, int decode, int stream);
/* Drop z's blocks from c, cancel its queued ones and wait for its loading
 * ones (before z is freed). */
void sb_zcache_forget(sb_zcache *c, const sb_zseg *z);
/* A stream read of all of block i of z into dst (room for its raw bytes):
 * if no slot has it ready or loading, it is loaded and checked straight
 * into dst (no slot keeps it; the read-ahead goes on as for a pin): 1. 0:
 * a slot has it (pin it). SB_ECORRUPT or -errno: the load failed (what dst
 * holds then is no one's). */
int sb_zcache_direct(sb_zseg *z, uint32_t i, uint8_t *dst);
/* Tests: blocks loaded straight into a reader's buffer. */
uint64_t sb_zcache_direct_loads(sb_zcache *c);
/* Tests: wait until no read-ahead is queued or loading; *loads (if not
 * NULL) gets how many blocks the worker has loaded. */
void sb_zcache_ahead_wait(sb_zcache *c, uint64_t *loads);
/* Tests: read ahead always (1), never (0) or when it pays (-1, the
 * default). */
void sb_zcache_set_ahead(sb_zcache *c, int mode);

#endif
