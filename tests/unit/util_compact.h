/*
 * util_compact.h - the model of the compaction tests (test_store_compact.c,
 * test_store_compact_interplay.c): generated workloads of random keys,
 * tombstones and unkeyed records appended to a topic and to the model,
 * what a compaction removes by the rule of store/log_compact.c, and the
 * check that the topic reads as the model says.
 */
#ifndef UTIL_COMPACT_H
#define UTIL_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "util_faultio.h"
#include "util_store.h"

#define UC_MAXREC 6000
#define UC_NKEYS 40
#define UC_T0 1700000000000000000LL /* record i's time: UC_T0 + i ms */
#define UC_RET_MS 1000              /* delete_retention_ms */

/* The model: every record appended. */
typedef struct uc_mrec {
	int key;   /* -1: none */
	int tomb;
	uint32_t len;
	int64_t ts;
} uc_mrec;
extern uc_mrec uc_M[UC_MAXREC];
extern uint64_t uc_MN;          /* records in the model (offsets 0..uc_MN-1) */
extern int uc_gone[UC_MAXREC];  /* compacted away (the model's verdict) */

/* The name of key i into buf (at least 32 bytes): its length. */
size_t uc_mkey(int i, char *buf);
/* The tests' config: 4 KiB segments, sync never, cleanup compact,
 * delete_retention_ms UC_RET_MS, an index entry every 512 bytes. */
sb_log_config uc_cfg(void);
/* Append n random records: keyed (some tombstones) and unkeyed. */
void uc_workload(sb_log *l, uint64_t *seed, unsigned n, int nkeys);
/* Append n unkeyed records: a segment or two of them after the keyed
 * ones puts those below the compaction's horizon (the newest segment). */
void uc_unkeyed(sb_log *l, unsigned n);
/* The latest offset of each key in the model (-1: none), UC_NKEYS of them. */
void uc_latest(int64_t *lat);
/* What a compaction at now_ns with that horizon removes (the rule of
 * log_compact.c): a keyed record below the horizon whose key has a later
 * record below the horizon too, or a tombstone, latest, older than the
 * retention. */
void uc_model_compact(const sb_compact_stats *st, int64_t now_ns);
/* Everything readable as the model says: records, the stream, keys. */
void uc_check_log(sb_log *l, const char *when);
/* Verify of dir's topic "t" finds no damage (index problems aside). */
void uc_verify_clean(const char *dir, const char *when);
/* An io table over the real files (its stash in stash) whose fdatasync is
 * a no-op: these tests check what the store does, not the disk (the crash
 * test checks that). */
fio *uc_quick_io(const char *stash);
/* An empty model. */
void uc_model_reset(void);

#endif
