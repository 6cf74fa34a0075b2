/*
 * bench.h - `streambus bench`: the storage engine's benchmarks, with LevelDB
 * run beside them in the same process for comparison (tools/bench*.c).
 */
#ifndef SB_BENCH_H
#define SB_BENCH_H

/* Run the benchmarks; argv[0] is "bench", options follow (--help lists
 * them). Returns the exit status: 0, 1 when a figure failed, 2 on bad usage or
 * an I/O error (a --dir it cannot make a directory in). */
int sb_bench_main(int argc, char **argv);
/* `streambus bench keys ...` (bench_keys.c); argv[0] is "keys". */
int sb_bench_keys_main(int argc, char **argv);
/* `streambus bench since ...` (bench_since.c); argv[0] is "since". */
int sb_bench_since_main(int argc, char **argv);
/* `streambus bench compact ...` (bench_compact.c); argv[0] is "compact". */
int sb_bench_compact_main(int argc, char **argv);
/* `streambus bench open ...` (bench_open.c); argv[0] is "open". */
int sb_bench_open_main(int argc, char **argv);

/* ---- internal to tools/bench*.c ------------------------------------------ */
#ifdef SB_BENCH_INTERNAL

/* `streambus bench --compression ...` (bench_compress.c). */
int sb_bench_compress(int argc, char **argv);

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Allocation counting (bench_alloc.c). Only the benchmark binary
 * streambus-bench (built with SB_BENCH_COUNT_ALLOCS, never installed)
 * counts: its malloc, calloc and realloc count the calls made while
 * counting is on, from every thread (LevelDB's background compaction
 * included). In `streambus bench`, and in a sanitizer build, nothing is
 * replaced and sb_bench_alloc_available() is 0.
 */
int sb_bench_alloc_available(void);
void sb_bench_alloc_start(void);      /* zero the count, start counting */
uint64_t sb_bench_alloc_stop(void);   /* stop; the calls counted since start */

/* One measured value of a figure: ours or LevelDB's. */
#define SB_BENCH_MAX_EXTRA 8
typedef struct sb_bench_val {
	int state;            /* 0: not run, 1: measured, -1: failed */
	double value;         /* in the figure's unit: the median of the reps */
	double lo, hi;        /* the smallest and largest of the reps */
	double allocs;        /* allocations per op; < 0: not counted */
	double rep[16];       /* each repetition's value, in the order run */
	int nrep;
	uint64_t ops;         /* ops per repetition */
	int reps;             /* repetitions (value is their median) */
	const char *how;      /* what exactly was measured (static string) */
	char err[160];        /* why it failed */
	int nx;
	struct { const char *key; double v; } x[SB_BENCH_MAX_EXTRA]; /* more figures */
} sb_bench_val;

enum {
	SB_FIG_INDEX,        /* sb_index_lookup, 10,000 entries */
	SB_FIG_STAT,         /* random get with a copy, 10,000 records */
	SB_FIG_APPEND39,     /* append, 39-byte payload, sync never */
	SB_FIG_APPEND100,    /* append, 100-byte payload, sync never */
	SB_FIG_FSYNC1,       /* append, sync always, 1 writer */
	SB_FIG_FSYNC8,       /* append, sync always, 8 writers */
	SB_FIG_READ,         /* random sb_log_read over N records */
	SB_FIG_SCAN_STREAM,  /* sb_log_read_stream in 1 MiB chunks */
	SB_FIG_SCAN_RECORD,  /* sb_log_read per record */
	SB_FIG_STREAM4K,     /* sb_log_read_stream, 4 KiB at random positions */
	SB_FIG_OPEN,         /* sb_store_open of a cleanly closed topic */
	SB_FIG_COUNT
};

typedef struct sb_bench_cfg {
	int quick;
	const char *dir;         /* our scratch directory (removed afterwards) */
	uint64_t records;        /* records appended, then read (1M) */
	uint64_t lookups;        /* random ops per repetition */
	uint64_t fsync_ops;      /* sync=always appends, 1 writer */
	uint64_t fsync_ops_mt;   /* ... per writer, with `threads` writers */
	int threads;
	uint64_t open_bytes;     /* size of the topic opened */
	int reps;                /* repetitions of the short benchmarks */
	const uint8_t *rnd;      /* SB_BENCH_RND_BYTES random bytes: payloads */
	int verbose;             /* progress on stderr */
	int leveldb;             /* run LevelDB's side too */
	double other_cpu;        /* CPUs' worth of time others used during the run */
} sb_bench_cfg;

#define SB_BENCH_RND_BYTES (4u << 20)

/* Our store (bench_store.c) and LevelDB (bench_leveldb.c). Each fills its
 * side of every figure but the fsync ones; failures are recorded in the
 * figure, not returned. */
void sb_bench_store(const sb_bench_cfg *c, sb_bench_val ours[SB_FIG_COUNT]);
void sb_bench_leveldb(const sb_bench_cfg *c, sb_bench_val ldb[SB_FIG_COUNT]);

/* The fsync figures, both sides, alternating ours and LevelDB's rep by rep
 * (who goes first alternates too), so that drift of the disk hits both
 * alike (bench_store.c; LevelDB's side only when c->leveldb). */
void sb_bench_fsync(const sb_bench_cfg *c, sb_bench_val ours[SB_FIG_COUNT], sb_bench_val ldb[SB_FIG_COUNT]);

/* LevelDB's sync puts one repetition at a time (bench_leveldb.c). */
typedef struct sb_bench_ldb_sync sb_bench_ldb_sync;
/* A fresh DB for sync puts; NULL when LevelDB is not built in or fails (v
 * says why). */
sb_bench_ldb_sync *sb_bench_ldb_sync_open(const sb_bench_cfg *c, sb_bench_val *v);
/* `writers` threads of n sync puts each (keys never reused): wall ns, the
 * sum of each writer's own ns, allocations added to *allocs. 0, or -1 with
 * v failed. */
int sb_bench_ldb_sync_rep(sb_bench_ldb_sync *d, int writers, uint64_t n, uint64_t *ns,
			  uint64_t *sum_ns, uint64_t *allocs, sb_bench_val *v);
void sb_bench_ldb_sync_close(sb_bench_ldb_sync *d);

/* Helpers (bench.c). */
void sb_bench_fail(sb_bench_val *v, const char *what, const char *why);
void sb_bench_fail_rc(sb_bench_val *v, const char *what, int rc);
/* Record the median of `reps` values; allocs: total over all reps, or
 * UINT64_MAX when not counted. */
void sb_bench_set(sb_bench_val *v, const double *vals, int reps, uint64_t ops, uint64_t allocs);
/* The median of n values (n <= 16; reorders a). */
double sb_bench_median(double *a, int n);
void sb_bench_extra(sb_bench_val *v, const char *key, double x);
void sb_bench_progress(const sb_bench_cfg *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* mkdir path (0755); 0 or -errno. */
int sb_bench_mkdir(const char *path);
/* Remove a directory tree; 0 or -errno. */
int sb_bench_rmtree(const char *path);

static inline uint64_t sb_bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a cheap deterministic generator (state must not be 0). */
static inline uint64_t sb_bench_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) (Lemire's multiply-shift; no division). */
static inline uint64_t sb_bench_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)sb_bench_rand(s) * n) >> 64);
}

/* The payload of record i (len <= 64 KiB): a slice of the random bytes, so
 * that no two neighbours are equal and nothing compresses. */
static inline const uint8_t *sb_bench_payload(const sb_bench_cfg *c, uint64_t i, size_t len)
{
	return c->rnd + (i * 4099u) % (SB_BENCH_RND_BYTES - len);
}

/* Make the compiler believe x is used (so a measured loop is not optimized
 * away), without a store to any global. */
static inline void sb_bench_keep(uint64_t x)
{
	__asm__ __volatile__("" : : "r"(x) : "memory");
}

/* MB/s (10^6 bytes per second). */
static inline double sb_bench_mbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes * 1e3 / (double)ns : 0; /* 10^6 bytes per second */
}

#endif /* SB_BENCH_INTERNAL */
#endif
