/*
 * util_flog.c - see util_flog.h.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util_flog.h"
#include "util_keytable.h"

size_t uk_skey(uint64_t i, char *buf)
{
	return (size_t)snprintf(buf, 32, "key-%011llu", (unsigned long long)i); /* 15 bytes */
}

/* Is a key table being written in dir (its temp file there)? */
int uk_table_in_progress(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	cr_assert_not_null(d);
	while (!found && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		found = n > 4 && !strcmp(de->d_name + n - 4, ".tmp");
	}
	closedir(d);
	return found;
}

sb_mt_val uk_flog_val(const uk_flog *g, uint64_t o)
{
	int dead = g->tomb && o % g->tomb == g->tomb - 1;
	return (sb_mt_val){.offset = o, .ts = (int64_t)o, .size = dead ? 0 : 8, .flags = dead ? SB_MT_TOMBSTONE : 0};
}

int uk_flog_walk(void *arg, uint64_t from, uint64_t to, sb_kx_walk_fn fn, void *fnarg)
{
	uk_flog *g = arg;
	char k[32];

	for (uint64_t o = from; o < to && o < g->n; o++) {
		sb_mt_val v = uk_flog_val(g, o);
		int rc = fn(fnarg, (const uint8_t *)k, uk_skey(g->distinct ? o : o % UK_KEYS, k), &v);
		if (rc)
			return rc;
	}
	return 0;
}

void uk_flog_append(sb_kx *x, uk_flog *g, uint64_t key_bytes)
{
	for (uint64_t b = 0; b < key_bytes; b += SB_KX_KEY_BYTES(15)) {
		g->n++;
		cr_assert_eq(sb_kx_note_end(x, g->n, 64, SB_KX_KEY_BYTES(15), g->n), 0);
	}
}

/* n busy flushes: `bytes` of keys appended, then a flusher turn, each. */
void uk_busy_flushes(sb_kx *x, uk_flog *g, int n, uint64_t bytes)
{
	for (int r = 0; r < n; r++) {
		uk_flog_append(x, g, bytes);
		cr_assert_eq(sb_kx_maintain(x), 0);
	}
}

/* Every key's entry names its latest record (a key whose latest record is
 * a tombstone: that tombstone, or none once a merge into the oldest table
 * dropped it). */
void uk_flog_check(sb_kx *x, const uk_flog *g, const char *when)
{
	char k[32];

	for (uint64_t key = 0; key < UK_KEYS && key < g->n; key++) {
		uint64_t last = (g->n - 1) - ((g->n - 1 + UK_KEYS - key) % UK_KEYS);
		int dead = uk_flog_val(g, last).flags & SB_MT_TOMBSTONE;
		sb_mt_val v;
		int rc = sb_kx_get(x, k, uk_skey(key, k), &v);
		if (dead && rc == -ENOENT)
			continue;
		cr_assert_eq(rc, 0, "%s: key %llu: %d", when, (unsigned long long)key, rc);
		cr_assert_eq(v.offset, last, "%s: key %llu at %llu, its latest is %llu", when, (unsigned long long)key,
			     (unsigned long long)v.offset, (unsigned long long)last);
		cr_assert_eq(v.flags & SB_MT_TOMBSTONE, (unsigned)dead, "%s: key %llu: tombstone flag %u, want %d",
			     when, (unsigned long long)key, v.flags & SB_MT_TOMBSTONE, dead);
	}
}

sb_kx *uk_flog_open(const char *dir, uk_flog *g, uint64_t start, uint64_t next)
{
	sb_kx_params p = {.io = sb_io_default(), .dir = dir, .topic = "t", .memtable_bytes = UK_MT,
			  .background = 1, .walk = uk_flog_walk, .walk_arg = g};
	sb_kx *x;

	cr_assert_eq(sb_kx_open(&p, start, next, &x), 0, "open of the key index of %s", dir);
	return x;
}

/* Open as a log of g->n records does: the tables, then the replay of the
 * records past what they cover. */
sb_kx *uk_flog_reopen(const char *dir, uk_flog *g)
{
	sb_kx *x = uk_flog_open(dir, g, 0, g->n);
	char k[32];

	for (uint64_t o = sb_kx_replay_from(x); o < g->n; o++) {
		sb_mt_val v = uk_flog_val(g, o);
		cr_assert_eq(sb_kx_put(x, k, uk_skey(o % UK_KEYS, k), &v), 0);
	}
	return x;
}

/* The key tables in dir of level 1 and above; they tile the offsets. */
int uk_upper_tables(const char *dir)
{
	ut_kt_info ti[64];
	int n = ut_kt_list(dir, ti, 64), upper = 0;

	cr_assert_geq(n, 0, "the tables of %s", dir);
	for (int i = 0; i < n; i++) {
		upper += ti[i].level > 0;
		if (i)
			cr_assert_eq(ti[i].last + 1, ti[i - 1].first, "the tables do not tile the offsets");
	}
	return upper;
}
