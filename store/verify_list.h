/*
 * verify_list.h - the verifier's listing of a topic directory (its segment,
 * index and time index files by base, sorted; the meta and clean files),
 * for verify.c; verify_list.c.
 */
#ifndef SB_VERIFY_LIST_H
#define SB_VERIFY_LIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_vlisting {
	uint64_t *segs, *idxs, *tixs;
	size_t nseg, nidx, ntix, capseg, capidx, captix;
	int has_meta, has_clean;
} sb_vlisting;

/* List the topic directory: segment and index bases, sorted. 0 or -errno. */
int sb_vlist_topic(const char *dir, sb_vlisting *l);
void sb_vlist_free(sb_vlisting *l);
/* buf (PATH_MAX bytes) = dir/<base><suffix>. */
void sb_vlist_path(char *buf, const char *dir, uint64_t base, const char *suffix);

#endif
