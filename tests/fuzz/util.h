/*
 * util.h - helpers shared by the fuzz targets (tests/fuzz/fuzz_*.c): a
 * scratch directory on tmpfs, files written and removed, a byte reader over
 * the fuzz input.
 */
#ifndef SB_FUZZ_UTIL_H
#define SB_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory for this process under $SB_FUZZ_SCRATCH, else
 * /dev/shm (tmpfs: fast), else $TMPDIR; made
 * once and reused; removed at exit. Never NULL (aborts). */
const char *fz_scratch(void);
/* Remove a tree (files and directories); missing is fine. */
void fz_rmtree(const char *path);
/* Empty the scratch directory. */
void fz_clear(void);
/* Write n bytes as path (created or truncated); aborts on failure. */
void fz_write(const char *path, const void *p, size_t n);
/* Read a whole file (malloc'ed, *n its size); NULL if unreadable. */
uint8_t *fz_read(const char *path, size_t *n);
/* Abort with a message: a property of the target does not hold. */
void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define FZ_CHECK(cond, ...) do { if (!(cond)) fz_fail(__VA_ARGS__); } while (0)

/* A cursor over the fuzz input: reads past the end give zeros. */
typedef struct fz_in {
	const uint8_t *p;
	size_t n;
} fz_in;
uint8_t fz_u8(fz_in *in);
uint16_t fz_u16(fz_in *in);
uint32_t fz_u32(fz_in *in);
uint64_t fz_u64(fz_in *in);
/* Up to max bytes (fewer at the end): *len gets the count. */
const uint8_t *fz_bytes(fz_in *in, size_t max, size_t *len);

#endif

/* A valid segment of FZ_SAMPLE_RECORDS records from offset FZ_SAMPLE_BASE
 * (stream base FZ_SAMPLE_STREAM), payloads of varied lengths, some keyed:
 * made once, the same in every process. pos[i] / stream[i]: record i's file
 * position and stream position relative to the segment. */
#define FZ_SAMPLE_RECORDS 40
#define FZ_SAMPLE_BASE 1000u
#define FZ_SAMPLE_STREAM 5000u
typedef struct fz_sample {
	uint8_t *seg;
	size_t len;
	uint32_t pos[FZ_SAMPLE_RECORDS];
	uint32_t stream[FZ_SAMPLE_RECORDS];
} fz_sample;
const fz_sample *fz_sample_segment(void);
/* A valid index file of the sample with an entry every `every` records
 * (malloc'ed, *n its size). */
uint8_t *fz_sample_index(unsigned every, size_t *n);

/* A valid segment of FZ_KEYED_RECORDS records from offset FZ_SAMPLE_BASE
 * (fuzz_keytable): keys from the FZ_KEYED_KEYS of keys[] (prefixes of each
 * other, binary ones, two long enough to fill blocks of their own), most
 * of them repeated, some records unkeyed (key[i] -1), some tombstones; each
 * record's value (val[i], vlen[i] bytes) different from every other's. */
#define FZ_KEYED_RECORDS 48
#define FZ_KEYED_KEYS 12
typedef struct fz_keyed {
	uint8_t *seg;
	size_t len;
	uint32_t pos[FZ_KEYED_RECORDS];
	int key[FZ_KEYED_RECORDS];
	uint16_t flags[FZ_KEYED_RECORDS];
	int64_t ts[FZ_KEYED_RECORDS];
	uint32_t vlen[FZ_KEYED_RECORDS];
	uint8_t *val[FZ_KEYED_RECORDS];
	const uint8_t *keys[FZ_KEYED_KEYS];
	size_t klen[FZ_KEYED_KEYS];
} fz_keyed;
const fz_keyed *fz_keyed_sample(void);
/* The latest record of key k among records [0, n), -1 if none. */
int fz_keyed_latest(const fz_keyed *s, int k, unsigned n);
/* The latest record of key k among records [from, to), -1 if none. */
int fz_keyed_latest_in(const fz_keyed *s, int k, unsigned from, unsigned to);
/* A valid key table (version 4, written by the store's writer, level 0)
 * of the sample's records [from, from + n), named for offsets
 * FZ_SAMPLE_BASE + [from, from + n - 1] (malloc'ed, *len its size). */
uint8_t *fz_keyed_table(unsigned from, unsigned n, size_t *len);
