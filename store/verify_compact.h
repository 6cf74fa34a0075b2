/*
 * verify_compact.h - the verifier's checks about compaction and keys
 * (format.h "Compacted segment", "tombstone"), for verify.c;
 * verify_compact.c. Reads files only, like verify.c.
 */
#ifndef SB_VERIFY_COMPACT_H
#define SB_VERIFY_COMPACT_H

#include <stdint.h>

/* Is the segment file at path (named for base) compacted to nothing (a
 * header alone, with a compacted span) and inside the previous segment's
 * span, which ends at prev_next? Then it is what an interrupted removal of
 * an empty segment leaves (log_compact.c): the next open removes it. */
int sb_vc_absorbed(const char *path, uint64_t base, uint64_t prev_next);

#endif
