/*
 * keymerge.h - merging the sorted sources of a key index (internal to the
 * store, used by keyidx*.c): sorted runs (keyrun.h) and key tables
 * (keytable.h), newest first, into one stream in key order in which the
 * newest entry of a key wins. A table write (flush, merge) and a listing
 * use it.
 */
#ifndef SB_KEYMERGE_H
#define SB_KEYMERGE_H

#include <stddef.h>
#include <stdint.h>

#include "keyidx.h"
#include "keyrun.h"
#include "keytable.h"

/* One source: a run (is_run) positioned by sb_kr_seek, or a table
 * positioned by sb_kt_seek. The other fields are the merge's. */
typedef struct src {
	int is_run;
	sb_kr_iter ri;
	sb_kt_iter ki;
	const uint8_t *k;  /* the current key (src_load), NULL at the end */
	size_t kl;
	uint64_t pfx;      /* its first 8 bytes, big-endian, zero-padded */
} src;

/* Merge sources s[0..n) (newest first) in key order, the newest entry of a
 * key winning: fn gets each. 0, fn's nonzero value, -ENOMEM or
 * SB_ECORRUPT (a table's block is damaged). */
int sb_km_merge(src *s, size_t n, sb_kx_scan_fn fn, void *arg);

#endif
