/*
 * util_workload.h - a scripted single-threaded workload for the fault and
 * crash tests, and the check of what a reopened store must hold after it.
 *
 * The script: open a store in `dir` (4 KiB segments, index every 256 bytes),
 * create topic "t", then 80 steps of appends (singles and batches of 2-5,
 * payloads of 1..900 bytes, so it rolls through a dozen segments), with a
 * delete_before(next / 2) at step 40, then close. It stops at the first
 * call that fails and records what had been acknowledged.
 */
#ifndef UTIL_WORKLOAD_H
#define UTIL_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "sb_store.h"

typedef struct uw_result {
	int opened;           /* sb_store_open returned 0 */
	int created;          /* sb_store_create returned 0 */
	uint64_t acked_next;  /* every offset below was acknowledged (append returned 0) */
	uint64_t tried_next;  /* no offset at or past this was ever passed to append */
	uint64_t del_done;    /* delete_before(x) returned 0 for this x (0: none) */
	uint64_t del_tried;   /* delete_before(x) was called with this x (0: never) */
	int fail_rc;          /* the first failure (0: none) */
	const char *fail_at;  /* which call failed */
	int close_rc;
} uw_result;

/* Run the script over io. Always returns (the result says how far it got). */
void uw_run(const char *dir, const sb_io *io, enum sb_sync sync, uw_result *r);
/*
 * Reopen dir with the real io and check it against r: the log is a prefix
 * of the appended sequence holding every acknowledged record (and nothing
 * never appended), every record reads back exactly, the start is where
 * delete_before put it; then close, reopen, check again, append one record
 * at the right offset. 0, or -1 with why (a message) filled.
 */
int uw_check(const char *dir, const uw_result *r, char *why, size_t cap);
/* Open dir over io with the script's config (recovery runs) and close it;
 * the first error, or 0. */
int uw_reopen(const char *dir, const sb_io *io);

#endif
