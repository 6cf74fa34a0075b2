/*
 * bench_keys.h - what the parts of `streambus bench keys` share
 * (bench_keys.c: the MemTable, append and memory parts and the command;
 * bench_keys_get.c: get by key against LevelDB, RocksDB and LMDB).
 */
#ifndef SB_BENCH_KEYS_H
#define SB_BENCH_KEYS_H

#include <stdint.h>
#include <time.h>

#define VAL 100u   /* bytes of a value */
#define GKEY 16u   /* bytes of a key of the get and append parts */

typedef struct kopts {
	uint64_t mt_keys;     /* MemTable figures: 10,000 keys up to this */
	int mt_runs;          /* ... runs of each (median and spread) */
	uint64_t keys;        /* get figures */
	uint64_t lookups;     /* gets per measurement */
	uint64_t appends;     /* append figures */
	int pairs;            /* append: unkeyed/keyed pairs (medians) */
	uint64_t memtable;    /* append, --mem: key_memtable_bytes (0: the default) */
	uint64_t segment;     /* append: segment_bytes (0: the default) */
	uint64_t mem_keys;    /* --mem: 0 none */
	const char *dir;
	const char *only;     /* memtable, get or append: that part alone */
	const char *peers;    /* get: the peers measured (names, comma-separated; NULL: all) */
	int verbose;
} kopts;

/* Key i (distinct for distinct i, in a random order) and its value. */
void kb_gkey(uint64_t i, uint8_t k[GKEY]);
void kb_gval(uint64_t i, uint8_t v[VAL]);
/* ns per op of n ops since t0 (sb_bench_now); 0 if n is 0. */
double kb_ns_per(uint64_t t0, uint64_t n);
/* CPU time of clock c (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID), ns. */
uint64_t kb_cpu_ns(clockid_t c);

/* The get part: ours against the peers o->peers names (all if NULL). */
void kb_bench_get(const kopts *o);

#endif
