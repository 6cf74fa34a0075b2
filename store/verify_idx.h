/*
 * verify_idx.h - `streambus verify`'s check of a segment's offset index file
 * (format.h, "Index file"), from its bytes: verify.c's only, like the rest
 * of the verifier it uses nothing of the store's reader.
 *
 * The file is loaded whole (header checks: magic, version, CRC, base
 * offset, covered length, entry count against the file size, the entries'
 * CRC), then its entries are matched against the records as the verifier
 * walks them: each entry at the start of a record, with that record's
 * offset and stream position; none past the last record; one at the first
 * record; the covered length the records' end. Problems are notes about a
 * rebuildable file (SB_VERIFY_INDEX, io: SB_VERIFY_IO): the next open, or
 * `streambus recover`, rebuilds an index that does not hold.
 */
#ifndef SB_VERIFY_IDX_H
#define SB_VERIFY_IDX_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "verify_tix.h" /* sb_vtix_report_fn: the same kind of note */

typedef struct sb_vidx {
	char path[PATH_MAX];
	sb_vtix_report_fn report;
	void *arg;
	uint8_t *entries;      /* NULL: nothing to check entries against */
	uint32_t n;            /* entries loaded */
	uint32_t next;         /* the next entry the walk meets */
	uint32_t seg_len;      /* covered length from the header */
	int hdr_ok;
	int base_ok;           /* the header names this segment's base offset */
	int valid;             /* all of it checks out (what the store would trust) */
	int ecrc_ok;           /* its entries pass their CRC */
	int wrong;             /* an entry below the last record names no
				* record or another one */
	uint64_t checked;      /* entries checked against records so far */
} sb_vidx;

/* Read exactly n bytes at off: 0, -errno, or -ENODATA when the file is short. */
int sb_vidx_pread(int fd, void *buf, size_t n, off_t off);

/* Load and check on its own the index of segment `base` (seg_size bytes)
 * in dir. Problems go to report(arg, ...). Never fails: what could not be
 * loaded is not checked against the records. sb_vidx_free releases it. */
void sb_vidx_load(sb_vidx *ix, const char *dir, uint64_t base, uint64_t seg_size,
		  sb_vtix_report_fn report, void *arg);
/* The walk reached a record at byte pos of the segment with offset off and
 * stream position stream (have_stream: stream is known): check the entries
 * up to it. */
void sb_vidx_record(sb_vidx *ix, uint64_t pos, uint64_t base, uint64_t off,
		    uint64_t base_stream, uint64_t stream, int have_stream);
/* The walk ended after `records` whole records, the last ending at byte end
 * of a file of seg_size bytes: entries past it, the first record's entry,
 * a stale covered length. */
void sb_vidx_end(sb_vidx *ix, uint64_t records, uint64_t end, uint64_t seg_size);
void sb_vidx_free(sb_vidx *ix);

#endif
