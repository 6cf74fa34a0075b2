/*
 * verify_list.c - the verifier's listing of a topic directory
 * (verify_list.h), and sb_verify_topic_bytes (sb_store.h) which needs
 * nothing else. Checking what it lists is verify.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "format.h"
#include "verify.h"
#include "verify_list.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Append base to a growing array. 0 or -ENOMEM. */
static int push_u64(uint64_t **a, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		uint64_t *t = realloc(*a, nc * sizeof *t);
		if (!t)
			return -ENOMEM;
		*a = t;
		*cap = nc;
	}
	(*a)[(*n)++] = x;
	return 0;
}

void sb_vlist_free(sb_vlisting *l)
{
	free(l->segs);
	free(l->idxs);
	free(l->tixs);
}

int sb_vlist_topic(const char *dir, sb_vlisting *l)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	memset(l, 0, sizeof *l);
	if (!d)
		return -errno;
	while ((errno = 0, e = readdir(d)) != NULL) {
		uint64_t base;

		if (sb_seg_name_parse(e->d_name, SB_SEG_SUFFIX, &base) == 0)
			rc = push_u64(&l->segs, &l->nseg, &l->capseg, base);
		else if (sb_seg_name_parse(e->d_name, SB_IDX_SUFFIX, &base) == 0)
			rc = push_u64(&l->idxs, &l->nidx, &l->capidx, base);
		else if (sb_seg_name_parse(e->d_name, SB_TIX_SUFFIX, &base) == 0)
			rc = push_u64(&l->tixs, &l->ntix, &l->captix, base);
		else if (strcmp(e->d_name, SB_META_NAME) == 0)
			l->has_meta = 1;
		else if (strcmp(e->d_name, SB_CLEAN_NAME) == 0)
			l->has_clean = 1;
		if (rc)
			goto out_close_dir;
	}
	if (errno) {
		rc = -errno;
		goto out_close_dir;
	}
	if (l->nseg > 1)
		qsort(l->segs, l->nseg, sizeof *l->segs, cmp_u64);
	if (l->nidx > 1)
		qsort(l->idxs, l->nidx, sizeof *l->idxs, cmp_u64);
	if (l->ntix > 1)
		qsort(l->tixs, l->ntix, sizeof *l->tixs, cmp_u64);
out_close_dir:
	closedir(d);
	if (rc)
		sb_vlist_free(l);
	return rc;
}

void sb_vlist_path(char *buf, const char *dir, uint64_t base, const char *suffix)
{
	char name[32];

	sb_seg_name(name, base, suffix);
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
}

int sb_verify_topic_bytes(const char *topic_dir, uint64_t *bytes)
{
	sb_vlisting l;
	uint64_t sum = 0;
	char path[PATH_MAX];
	int rc = sb_vlist_topic(topic_dir, &l);

	if (rc)
		return rc;
	for (size_t i = 0; i < l.nseg; i++) {
		struct stat st;

		sb_vlist_path(path, topic_dir, l.segs[i], SB_SEG_SUFFIX);
		if (stat(path, &st) == 0)
			sum += (uint64_t)st.st_size;
	}
	sb_vlist_free(&l);
	*bytes = sum;
	return 0;
}
