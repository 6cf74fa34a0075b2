/*
 * verify_tix.h - `streambus verify`'s check of a segment's time index file
 * (format.h, "Time index file"), from its bytes: verify.c's only, like the
 * rest of the verifier it uses nothing of the store's reader.
 *
 * The file is read whole and checked on its own (header, CRCs, size, order:
 * what the store's loader takes), then against the records of its segment
 * as the verifier walks them: the first entry at the first record, the
 * running maximum timestamp equal to each entry's at the start of the next
 * interval, the last entry and the open interval inside the segment, the
 * largest timestamp and the covered length the segment's. Problems are
 * notes about a rebuildable file (SB_VERIFY_INDEX): the next open, or
 * `streambus recover`, rebuilds a time index that does not hold.
 */
#ifndef SB_VERIFY_TIX_H
#define SB_VERIFY_TIX_H

#include <limits.h>
#include <stdint.h>

/* A problem of the time index file at path, byte pos (UINT64_MAX: the
 * whole file); io: it could not be read (else: it does not hold). */
typedef void (*sb_vtix_report_fn)(void *arg, int io, const char *path, uint64_t pos, const char *msg);
/* Word a note (printf's fmt) and pass it to report: the say() of
 * verify_tix.c and verify_idx.c. */
void sb_vtix_note(sb_vtix_report_fn report, void *arg, int io, const char *path, uint64_t pos, const char *fmt,
		  ...) __attribute__((format(printf, 6, 7)));

typedef struct sb_vtix {
	char path[PATH_MAX];
	sb_vtix_report_fn report;
	void *arg;
	int ok;             /* read and sound on its own: check it against records */
	uint64_t base;
	uint32_t n, open, seg_len;
	int64_t max_ts;
	uint8_t *e;         /* the n entries as in the file */
	/* the walk of the records */
	uint32_t j;         /* the next interval boundary to meet */
	int64_t run;        /* running maximum timestamp so far */
	uint64_t nrec;      /* records walked */
	uint64_t first_rel, last_rel; /* the first and last one's rel offsets
				       * (a compacted segment has gaps: not 0
				       * and nrec - 1) */
	int bad;            /* a mismatch was found: */
	uint32_t bad_entry; /* at that entry, */
	uint64_t bad_rel;   /* before that record, */
	int64_t bad_run;    /* the records' running maximum */
} sb_vtix;

/* Read and check the time index of segment `base` in dir. required: its
 * absence is a problem (a version 3 segment; version 2 wrote none). */
void sb_vtix_load(sb_vtix *t, const char *dir, uint64_t base, int required, sb_vtix_report_fn report,
		  void *arg);
/* The walk met the record at rel offset rel (records in offset order; a
 * compacted segment's offsets have gaps, and may not start at 0). */
void sb_vtix_record(sb_vtix *t, uint64_t rel, int64_t ts);
/* The walk ended: seg_len bytes of records (the plain length), records_ok:
 * every record was whole and in order (else nothing is checked against
 * them: the records' damage is what verify reports, and recovery rebuilds
 * the index from what it keeps). Frees what load took. */
void sb_vtix_end(sb_vtix *t, uint64_t seg_len, int records_ok);

#endif
