/*
 * util_disk.h - the records of a topic as they lie in its segment files,
 * found by the tests' own reading of the files (codec.h's framing), for
 * tests that damage or forge one record in place.
 */
#ifndef UTIL_DISK_H
#define UTIL_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ut_disk_rec {
	char seg[8800];  /* its segment file's path */
	uint64_t pos;    /* where it starts in the file */
	uint64_t offset;
	sb_rec_hdr h;    /* its header as framed (CRC not checked) */
} ut_disk_rec;

/* Does the test want the record with header h? */
typedef int ut_disk_keep_fn(void *arg, const sb_rec_hdr *h);

/* The records of store/topic's segment files (in the order of their
 * names, then of their places) that keep takes, into out (cap at most);
 * their count. Each file is walked by its records' size fields from its
 * header to the first that does not frame. */
size_t ut_disk_records(const char *store, const char *topic, ut_disk_keep_fn *keep, void *arg, ut_disk_rec *out,
		       size_t cap);

#endif
