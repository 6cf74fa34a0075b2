/*
 * util_flog.h - a keyed log in memory for a key index (store/keyidx.h) of
 * its own, for the tests of the key index's flusher (test_store_keyflush.c,
 * test_store_keyflush_faults.c): record o has key o % UK_KEYS (or o), some
 * of them tombstones; its appends noted to the index, busy flusher turns,
 * the check that every key's entry names its latest record, the index
 * opened (and reopened, replaying what its tables do not cover) over it;
 * and a look at the index's directory (its tables' levels, a table being
 * written).
 */
#ifndef UTIL_FLOG_H
#define UTIL_FLOG_H

#include <stddef.h>
#include <stdint.h>

#include "keyidx.h"

#define UK_KEYS 300        /* the keys of a log (not distinct) */
#define UK_MT (16 * 1024)  /* key_memtable_bytes of the index uk_flog_open opens */

/* The log: record o has key o % UK_KEYS; with tomb, every tomb-th record
 * is a tombstone. */
typedef struct uk_flog {
	uint64_t n;
	unsigned tomb;
	int distinct;   /* record o has key o (not o % UK_KEYS) */
} uk_flog;

/* The name of key i into buf (32 bytes): 15 bytes, its length. */
size_t uk_skey(uint64_t i, char *buf);
/* Is a key table being written in dir (its temp file there)? */
int uk_table_in_progress(const char *dir);
/* Record o's entry. */
sb_mt_val uk_flog_val(const uk_flog *g, uint64_t o);
/* The index's walk of the log (sb_kx_params.walk; arg: the uk_flog). */
int uk_flog_walk(void *arg, uint64_t from, uint64_t to, sb_kx_walk_fn fn, void *fnarg);
/* Append key_bytes of keys (15 bytes each) to g, each noted to x. */
void uk_flog_append(sb_kx *x, uk_flog *g, uint64_t key_bytes);
/* n busy flushes: `bytes` of keys appended, then a flusher turn, each. */
void uk_busy_flushes(sb_kx *x, uk_flog *g, int n, uint64_t bytes);
/* Every key's entry names its latest record (a key whose latest record is
 * a tombstone: that tombstone, or none once a merge into the oldest table
 * dropped it). */
void uk_flog_check(sb_kx *x, const uk_flog *g, const char *when);
/* A flusher's key index over g in dir (key_memtable_bytes UK_MT, the
 * default io), opened with start and next. */
sb_kx *uk_flog_open(const char *dir, uk_flog *g, uint64_t start, uint64_t next);
/* Open as a log of g->n records does: the tables, then the replay of the
 * records past what they cover. */
sb_kx *uk_flog_reopen(const char *dir, uk_flog *g);
/* The key tables in dir of level 1 and above; they tile the offsets. */
int uk_upper_tables(const char *dir);

#endif
