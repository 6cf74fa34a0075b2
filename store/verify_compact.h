/*
 * verify_compact.h - the verifier's checks about compaction and keys
 * (format.h "Compacted segment", "tombstone"), for verify.c;
 * verify_compact.c. Reads files only, like verify.c.
 */
#ifndef SB_VERIFY_COMPACT_H
#define SB_VERIFY_COMPACT_H

#include <stdint.h>

#include "codec.h"

/* Is the segment file at path (named for base) compacted to nothing (a
 * header alone, with a compacted span) and inside the previous segment's
 * span, which ends at prev_next? Then it is what an interrupted removal of
 * an empty segment leaves (log_compact.c): the next open removes it. */
int sb_vc_absorbed(const char *path, uint64_t base, uint64_t prev_next);

/* A record under a good CRC that is a malformed tombstone (format.h: a
 * tombstone is a key and no payload): what is wrong with it, else NULL.
 * rec: its h->size bytes. */
const char *sb_vc_bad_tombstone(const sb_rec_hdr *h, const uint8_t *rec);

#endif
