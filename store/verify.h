/*
 * verify.h - check a topic directory on disk against store/format.h, without
 * the store: every record's CRC, the order of offsets and stream positions
 * (within and across segments, against the segment names and headers), every
 * index file (header CRC, entries CRC, count, covered length, and each entry
 * against the record it points at), the meta and clean files.
 *
 * It only reads (open O_RDONLY, pread); it never takes the store lock and
 * never changes a file. Running it while a daemon appends to the same
 * directory may report the active segment's index as stale; a segment the
 * daemon trims meanwhile (a roll cuts its preallocated tail) is checked up to
 * where it ends now.
 */
#ifndef SB_VERIFY_H
#define SB_VERIFY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sb_verify_kind {
	SB_VERIFY_RECORD = 0, /* a record: CRC, header, torn or garbled tail */
	SB_VERIFY_ORDER = 1,  /* offsets/stream positions not dense and in order */
	SB_VERIFY_INDEX = 2,  /* an index file (rebuildable from its segment:
			       * streambus verify notes these, not damage) */
	SB_VERIFY_FILE = 3,   /* a segment header, meta, clean or a file name */
	SB_VERIFY_IO = 4,     /* a file could not be read (not damage as such) */
};
#define SB_VERIFY_NKINDS 5

/* No byte position: the problem is about the whole file. */
#define SB_VERIFY_NOPOS UINT64_MAX
/* No record offset: the problem is not about one record. */
#define SB_VERIFY_NOOFF UINT64_MAX

typedef struct sb_verify_problem {
	enum sb_verify_kind kind;
	const char *path;   /* the file (or the topic directory) */
	uint64_t pos;       /* byte position in it, or SB_VERIFY_NOPOS */
	const char *msg;    /* what is wrong, one line without the path */
	uint64_t offset;    /* the offset of the record concerned (the one
			     * expected at pos, for a damaged or torn one), or
			     * SB_VERIFY_NOOFF */
	int newest;         /* about the topic's newest segment or its index:
			     * while a daemon appends to it, its index is
			     * stale or missing until the segment is closed */
	int tail;           /* newest, and at its very end (a torn last record,
			     * a last record failing its CRC with only zeros
			     * after it, a file shorter than its header): what
			     * a write in progress looks like while a daemon
			     * appends */
} sb_verify_problem;

/* Called once per problem; the strings are valid only during the call. */
typedef void (*sb_verify_problem_fn)(void *arg, const sb_verify_problem *p);
/* Called now and then with segment bytes checked so far and the total. */
typedef void (*sb_verify_progress_fn)(void *arg, uint64_t done, uint64_t total);

typedef struct sb_verify_result {
	uint64_t segments;       /* segment files found */
	uint64_t records;        /* records with a good CRC, from the log start on */
	uint64_t bytes;          /* segment bytes checked (file sizes) */
	uint64_t index_entries;  /* index entries checked */
	uint64_t first, next;    /* offsets [first, next) seen; both 0 if none */
	uint64_t start;          /* log start: from meta if past first, else first */
	uint64_t problems[SB_VERIFY_NKINDS]; /* count per kind */
} sb_verify_result;

/* Sum of the sizes of the segment files in topic_dir: the progress total.
 * 0 or -errno; *bytes untouched on failure. */
int sb_verify_topic_bytes(const char *topic_dir, uint64_t *bytes);

/*
 * Check the topic directory `topic_dir`. Each problem found goes to
 * `problem` (may be NULL); `progress` (may be NULL) hears how far it got.
 * Returns 0 when the check ran (damage or not: see res->problems), or -errno
 * when the directory itself cannot be listed (then nothing is reported and
 * *res is untouched). Files that cannot be read count as SB_VERIFY_IO.
 */
int sb_verify_topic(const char *topic_dir, sb_verify_problem_fn problem,
		    sb_verify_progress_fn progress, void *arg, sb_verify_result *res);

/* Total of res->problems[] except SB_VERIFY_IO. */
uint64_t sb_verify_damage(const sb_verify_result *res);

#ifdef __cplusplus
}
#endif
#endif
