/*
 * util_disk.c - see util_disk.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "format.h"
#include "util_disk.h"
#include "util_files.h"

size_t ut_disk_records(const char *store, const char *topic, ut_disk_keep_fn *keep, void *arg, ut_disk_rec *out,
		       size_t cap)
{
	char dir[4400], path[8800];
	char **names;
	size_t n = 0;
	int k;

	snprintf(dir, sizeof dir, "%s/%s", store, topic);
	k = uf_list_suffix(dir, ".seg", &names);
	cr_assert_gt(k, 0, "%s: no segment files", dir);
	for (int i = 0; i < k; i++) {
		uint8_t *b;
		size_t len;
		sb_rec_hdr h;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		cr_assert_eq(uf_read_all(path, &b, &len), 0);
		for (uint64_t p = SB_SEG_HDR; p + SB_REC_HDR <= len && sb_rec_frame(b + p, len - p, &h); p += h.size)
			if (n < cap && keep(arg, &h)) {
				snprintf(out[n].seg, sizeof out[n].seg, "%s", path);
				out[n].pos = p;
				out[n].offset = h.offset;
				out[n].h = h;
				n++;
			}
		free(b);
	}
	uf_list_free(names, k);
	return n;
}
