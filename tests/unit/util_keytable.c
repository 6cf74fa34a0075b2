/*
 * util_keytable.c - see util_keytable.h.
 */
#include <dirent.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>

#include "codec.h"
#include "format.h"
#include "keytable.h"
#include "util_keytable.h"

void ut_kt_forge(uint8_t *b, size_t n)
{
	if (n < SB_KT_FOOTER + 12)
		return;
	uint8_t *f = b + n - SB_KT_FOOTER;
	uint64_t body = n - SB_KT_FOOTER, ipos = sb_get64(f + 32), ilen = sb_get32(f + 40);
	uint64_t bpos = sb_get64(f + 48), blen = sb_get32(f + 56);
	if (ipos <= body && ilen <= body - ipos && ilen >= 4) {
		uint64_t nb = sb_get32(b + ipos);
		for (uint64_t i = 0; i < nb && 4 + (i + 1) * 16 <= ilen; i++) {
			const uint8_t *e = b + ipos + 4 + i * 16;
			uint64_t p = sb_get64(e), l = sb_get32(e + 8);
			if (l >= 12 && p <= body && l <= body - p)
				sb_put32(b + p + l - 4, sb_crc32c(0, b + p, l - 4));
		}
		/* the blocks may overlap the index: its CRC after theirs */
		sb_put32(f + 44, sb_crc32c(0, b + ipos, ilen));
	}
	if (bpos <= body && blen <= body - bpos)
		sb_put32(f + 60, sb_crc32c(0, b + bpos, blen));
	sb_put32(f + 68, sb_crc32c(0, f, 68));
}

static int info_cmp(const void *a, const void *b)
{
	const ut_kt_info *x = a, *y = b;

	return x->first > y->first ? -1 : x->first < y->first;
}

int ut_kt_list(const char *dir, ut_kt_info *out, int cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while (n >= 0 && (de = readdir(d))) {
		uint64_t a, b;
		sb_kt *t;
		if (sb_kt_name_parse(de->d_name, &a, &b))
			continue;
		if (n == cap || sb_kt_open(sb_io_default(), dir, de->d_name, &t, NULL, 0)) {
			n = -1;
			break;
		}
		out[n++] = (ut_kt_info){a, b, sb_kt_level(t)};
		sb_kt_close(t);
	}
	closedir(d);
	if (n > 0)
		qsort(out, (size_t)n, sizeof(*out), info_cmp);
	return n;
}

int ut_kt_remove_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[8192];
	int rc = 0;

	if (!d)
		return -1;
	while (!rc && (de = readdir(d))) {
		uint64_t a, b;
		if (sb_kt_name_parse(de->d_name, &a, &b))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		rc = unlink(p) ? -1 : 0;
	}
	closedir(d);
	return rc;
}
