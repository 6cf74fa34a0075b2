/*
 * util_zstore.h - the store of the compression tests (test_store_compress.c,
 * test_store_compress_blocks.c): one topic "t" whose sealed segments
 * compress, records whose payload, key and time follow from their offset
 * (any read checks itself), and a look at the topic's segment files.
 */
#ifndef UTIL_ZSTORE_H
#define UTIL_ZSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "util_store.h"

typedef struct uz_store {
	ut_env env;
	sb_store *S;        /* NULL while closed */
	sb_log *L;          /* topic "t" of S */
	sb_log_config C;    /* every topic's config */
	uint64_t seg_bytes; /* the segment size uz_open sets (64 KiB) */
} uz_store;

/* The fixture: the env made (tag names its directory), nothing open;
 * uz_fini closes the store if it is open and removes the env. */
void uz_init(uz_store *z, const char *tag);
void uz_fini(uz_store *z);
/* The same as a suite's fixture, as UT_ENV_FIXTURE (util_store.h): a
 * file-scope `Z`; TestSuite(name, .init = uz_setup, .fini = uz_teardown). */
#define UZ_FIXTURE(tag)                  \
	static uz_store Z;               \
	static void uz_setup(void)       \
	{                                \
		uz_init(&Z, (tag));      \
	}                                \
	static void uz_teardown(void)    \
	{                                \
		uz_fini(&Z);             \
	}
/* Open the store with topic "t": segments of z->seg_bytes, compression c
 * in blocks of 4 KiB, an index entry every 512 bytes, sync never. */
void uz_open(uz_store *z, enum sb_compression c);
/* Close it and open it again, with the same config. */
void uz_reopen(uz_store *z);
/* Open a store that may be damaged: no flusher, its reports dropped;
 * repair: cut at the damage after a full check (recover --cut). Then get
 * topic "t". 0, or the error of the open or of the get. */
int uz_open_quiet(uz_store *z, int repair);

/* Sync the topic, compress its sealed segments, close the store, and keep
 * a copy of it (its path into copy, cap bytes: the store's + ".orig"). */
void uz_compress_keep(uz_store *z, char *copy, size_t cap);
/* The store as kept in copy, in place of the one there. */
void uz_restore(const uz_store *z, const char *copy);

/* Record i's payload into buf (cap bytes: 3000 at least), its length: an
 * empty one on every 11th, a long and less compressible one now and
 * then, compressible text otherwise. */
size_t uz_payload(uint64_t i, uint8_t *buf, size_t cap);
/* Record i's headers (n of them at *h; none: 0). */
typedef void uz_headers_fn(uint64_t i, const sb_header **h, uint32_t *n);
/* Append n records from sb_log_next on: record i's payload, key "k<i%13>"
 * on every third, timestamp 1000 + i * 7; its headers from hdrs (NULL: none). */
void uz_append(uz_store *z, uint64_t n, uz_headers_fn *hdrs);
/* The same for one record, without asserting: 0 or sb_log_append's error. */
int uz_try_append(uz_store *z, uz_headers_fn *hdrs);
/* Record i as read (all of it, its key, a part from the middle): 0 if
 * right, else what was wrong (an error, or 1). */
int uz_check_rec(const uz_store *z, uint64_t i);
/* The stream of records [from, to), in reads of `chunk` bytes, against
 * their payloads (asserts). */
void uz_check_stream(const uz_store *z, uint64_t from, uint64_t to, size_t chunk);
/* The same, records [skip_lo, skip_hi) left out (a gap `recover --cut`
 * left where it dropped damaged records). */
void uz_check_stream_gap(const uz_store *z, uint64_t from, uint64_t to, uint64_t skip_lo, uint64_t skip_hi,
			 size_t chunk);

/* The names of topic t's segment files (up to cap), their count. */
int uz_list_segs(const uz_store *z, char names[][32], int cap);
/* Is segment file `name` compressed? *blocks_end: where its blocks end
 * (its table). */
int uz_is_compressed(const uz_store *z, const char *name, uint64_t *blocks_end);

#endif
