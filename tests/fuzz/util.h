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
