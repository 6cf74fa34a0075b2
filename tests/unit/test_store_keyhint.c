/*
 * test_store_keyhint.c - the key index's position hint (keytable.h: where
 * each entry's record starts in its segment, so that a get reads it without
 * searching the segment by offset).
 *
 * Generated workloads of random keys, values of random sizes, tombstones,
 * unkeyed records, compaction and compression of sealed segments (records
 * move: their hints must not be used), reopens (hints from tables and from
 * the replay), checked against a model after every step; and tables made
 * by hand whose hints are wrong in random ways (another record of the same
 * key, another key's, inside a value, off by a few bytes, past the end):
 * every get still serves exactly the latest value, and verify reports each
 * wrong hint.
 * SB_KEYHINT_STEPS: steps of the generated workload (default 200).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "keytable.h"
#include "util_keytable.h"
#include "util_store.h"

UT_ENV_FIXTURE("keyhint")

TestSuite(keyhint, .init = ut_env_setup, .fini = ut_env_teardown);

#define NKEYS 48
#define SEED 77
#define T0 1700000000000000000LL

static size_t hkey(int i, char *buf)
{
	return (size_t)sprintf(buf, "hk-%02d%s", i, i % 4 ? "" : "-a-longer-key");
}

/* The model: each key's latest record (offset, length), -1 none/tombstone. */
static int64_t latest[NKEYS];
static uint32_t latest_len[NKEYS];

static void check_all(sb_log *l, const char *when)
{
	uint8_t buf[1024];
	char k[64];

	for (int i = 0; i < NKEYS; i++) {
		size_t kl = hkey(i, k), n = 0;
		int rc = sb_log_get_key(l, k, kl, buf, sizeof(buf), &n, NULL);
		if (latest[i] < 0) {
			cr_assert_eq(rc, -ENOENT, "%s: key %d: %d, want ENOENT", when, i, rc);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: key %d: %s", when, i, sb_strerror(rc));
		cr_assert_eq(n, latest_len[i], "%s: key %d: %zu bytes, want %u", when, i, n, latest_len[i]);
		cr_assert(ut_match(buf, n, (uint64_t)latest[i], SEED), "%s: key %d: not the value of offset %lld",
			  when, i, (long long)latest[i]);
		/* with the record's info (no hint: the stream position is asked) */
		sb_record_info ri, st;
		cr_assert_eq(sb_log_get_key(l, k, kl, buf, sizeof(buf), &n, &ri), 0);
		cr_assert_eq(sb_log_stat(l, (uint64_t)latest[i], &st), 0);
		cr_assert_eq(ri.offset, (uint64_t)latest[i]);
		cr_assert_eq(ri.stream_pos, st.stream_pos, "%s: key %d: stream position", when, i);
	}
}

static void verify_clean(sb_log *l, const char *when)
{
	uint64_t checked = 0, wrong = 0;

	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0, "%s: verify found %llu wrong entries", when, (unsigned long long)wrong);
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

Test(keyhint, generated_appends_compaction_compression_reopen)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	uint64_t rnd = 0x5eed;
	char kb[8][64];
	int steps = env_int("SB_KEYHINT_STEPS", 200);

	ut_cfg(&c, 8 * 1024, SB_SYNC_NEVER);
	c.key_memtable_bytes = 4 * 1024; /* tables and merges often */
	c.cleanup = SB_CLEANUP_COMPACT;
	c.delete_retention_ms = 1000LL * 1000 * 1000;
	c.compression = SB_COMPRESS_LZ4;
	for (int i = 0; i < NKEYS; i++)
		latest[i] = -1;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (int step = 0; step < steps; step++) {
		uint64_t op = ut_rnd(&rnd) % 100;
		if (op < 80) { /* a batch: keyed records, tombstones, unkeyed ones */
			sb_record_in r[8];
			int key[8];
			size_t n = 1 + ut_rnd(&rnd) % 8;
			uint64_t next = sb_log_next(l);
			uint8_t vals[8][600];
			for (size_t j = 0; j < n; j++) {
				uint64_t kind = ut_rnd(&rnd) % 10;
				key[j] = kind == 0 ? -1 : (int)(ut_rnd(&rnd) % NKEYS);
				size_t len = kind == 1 ? 0 : ut_len(next + j, SEED + step, 0, 500);
				ut_fill(vals[j], len, next + j, SEED);
				r[j] = (sb_record_in){.value = vals[j], .value_len = (uint32_t)len};
				if (key[j] >= 0) {
					r[j].key = kb[j];
					r[j].key_len = (uint32_t)hkey(key[j], kb[j]);
					if (kind == 1)
						r[j].flags = SB_RECORD_TOMBSTONE;
				}
			}
			uint64_t first;
			cr_assert_eq(sb_log_append(l, r, n, &first), 0);
			for (size_t j = 0; j < n; j++) {
				if (key[j] < 0)
					continue;
				latest[key[j]] = r[j].flags ? -1 : (int64_t)(first + j);
				latest_len[key[j]] = r[j].value_len;
			}
		} else if (op < 88) {
			sb_compact_stats st;
			cr_assert_eq(sb_log_compact(l, ut_now_ms() * 1000000LL, &st), 0);
		} else if (op < 93) {
			size_t done;
			cr_assert_eq(sb_log_compress(l, &done), 0);
		} else {
			verify_clean(l, "before a reopen");
			cr_assert_eq(sb_store_close(s), 0);
			cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
			l = ut_topic(s, "t");
		}
		char when[64];
		snprintf(when, sizeof(when), "step %d (op %llu)", step, (unsigned long long)op);
		check_all(l, when);
	}
	verify_clean(l, "at the end");
	cr_assert_eq(sb_store_close(s), 0);
}

/* ---- hand-made tables with wrong hints -------------------------------------- */

#define VERS 4 /* records per key */

static void remove_tables(const char *dir)
{
	cr_assert_eq(ut_kt_remove_all(dir), 0, "the key tables of %s", dir);
}

Test(keyhint, wrong_hints_fall_back_and_verify_reports_them)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	uint64_t rnd = 0xbad;
	char k[64], tdir[4096];
	/* every record: its key, length, position */
	int rkey[NKEYS * VERS];
	uint32_t rlen[NKEYS * VERS], rpos[NKEYS * VERS];
	uint64_t nrec = NKEYS * VERS, pos = SB_SEG_HDR;

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (uint64_t off = 0; off < nrec; off++) {
		uint8_t v[400];
		rkey[off] = (int)(ut_rnd(&rnd) % NKEYS);
		rlen[off] = (uint32_t)ut_len(off, SEED, 1, sizeof(v));
		ut_fill(v, rlen[off], off, SEED);
		size_t kl = hkey(rkey[off], k);
		sb_record_in r = {.key = k, .key_len = (uint32_t)kl, .value = v, .value_len = rlen[off],
				  .timestamp_ns = T0 + (int64_t)off};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
		rpos[off] = (uint32_t)pos;
		pos += sb_rec_size((uint32_t)kl, rlen[off]);
	}
	cr_assert_eq(sb_store_close(s), 0);

	for (int round = 0; round < 8; round++) {
		/* the latest record of each key, in key order (keys sort as numbered) */
		int64_t last[NKEYS], older[NKEYS];
		for (int i = 0; i < NKEYS; i++)
			last[i] = older[i] = -1;
		for (uint64_t off = 0; off < nrec; off++) {
			older[rkey[off]] = last[rkey[off]];
			last[rkey[off]] = (int64_t)off;
		}
		ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
		remove_tables(tdir);
		sb_kt_writer *w;
		uint64_t bad = 0;
		cr_assert_eq(sb_kt_writer_new(sb_io_default(), tdir, 0, nrec - 1, NKEYS, 0, &w), 0);
		for (int i = 0; i < NKEYS; i++) {
			if (last[i] < 0)
				continue;
			uint64_t off = (uint64_t)last[i];
			uint32_t good = rpos[off], h;
			switch (ut_rnd(&rnd) % 9) {
			case 0: h = 0; break;
			case 1: h = good; break;
			case 2: h = older[i] >= 0 ? rpos[older[i]] : good + 1; break; /* the key's older record */
			case 3: h = rpos[ut_rnd(&rnd) % nrec]; break;                  /* any record */
			case 4: h = good + 1 + (uint32_t)(ut_rnd(&rnd) % 7); break;
			case 5: h = good - 1 - (uint32_t)(ut_rnd(&rnd) % 7); break;
			case 6: h = good + SB_REC_AT_KEY + (uint32_t)(ut_rnd(&rnd) % rlen[off]); break;
			case 7: h = (uint32_t)(pos + ut_rnd(&rnd) % 100); break; /* past the end */
			default: h = (uint32_t)ut_rnd(&rnd); break;
			}
			bad += h && h != good;
			sb_mt_val v = {.offset = off, .ts = T0 + (int64_t)off, .size = rlen[off], .pos = h};
			cr_assert_eq(sb_kt_writer_add(w, k, hkey(i, k), &v), 0);
		}
		cr_assert_eq(sb_kt_writer_finish(w), 0);

		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		l = ut_topic(s, "t");
		for (int i = 0; i < NKEYS; i++) {
			latest[i] = last[i];
			latest_len[i] = last[i] >= 0 ? rlen[last[i]] : 0;
		}
		check_all(l, "wrong hints");
		uint64_t checked = 0, wrong = 0;
		cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
		cr_assert_eq(wrong, bad, "round %d: verify found %llu wrong hints of %llu", round,
			     (unsigned long long)wrong, (unsigned long long)bad);
		cr_assert_eq(sb_store_close(s), 0);
	}
}

/* A table of the old version (3) is rebuilt from the log at open, with
 * a hint in every entry. */
Test(keyhint, old_version_table_rebuilt_with_hints)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	char k[64], tdir[4096], path[4400];
	const uint64_t nrec = 3000;
	uint8_t v[64], buf[64];
	size_t n;

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	c.key_memtable_bytes = 16 * 1024;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (uint64_t off = 0; off < nrec; off++) {
		ut_fill(v, sizeof(v), off, SEED);
		sb_record_in r = {.key = k, .key_len = (uint32_t)sprintf(k, "ok-%05llu", (unsigned long long)off),
				  .value = v, .value_len = sizeof(v)};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	/* every table's version field set to 3 (its footer CRC made good) */
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	DIR *d = opendir(tdir);
	struct dirent *de;
	int nt = 0;
	uint64_t a, b;
	cr_assert(d);
	while ((de = readdir(d))) {
		if (sb_kt_name_parse(de->d_name, &a, &b))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tdir, de->d_name);
		FILE *f = fopen(path, "r+b");
		uint8_t ft[SB_KT_FOOTER];
		cr_assert(f);
		cr_assert_eq(fseek(f, -(long)SB_KT_FOOTER, SEEK_END), 0);
		cr_assert_eq(fread(ft, 1, sizeof(ft), f), sizeof(ft));
		sb_put16(ft + 4, 3);
		sb_put32(ft + 68, sb_crc32c(0, ft, 68));
		cr_assert_eq(fseek(f, -(long)SB_KT_FOOTER, SEEK_END), 0);
		cr_assert_eq(fwrite(ft, 1, sizeof(ft), f), sizeof(ft));
		fclose(f);
		nt++;
	}
	closedir(d);
	cr_assert_gt(nt, 0, "no table was written");
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (uint64_t off = 0; off < nrec; off++) {
		size_t kl = (size_t)sprintf(k, "ok-%05llu", (unsigned long long)off);
		cr_assert_eq(sb_log_get_key(l, k, kl, buf, sizeof(buf), &n, NULL), 0, "key %s", k);
		cr_assert(n == sizeof(v) && ut_match(buf, n, off, SEED), "key %s: wrong value", k);
	}
	verify_clean(l, "after the rebuild");
	cr_assert_eq(sb_store_close(s), 0);
	/* the tables now: version 4, every entry with its hint */
	d = opendir(tdir);
	cr_assert(d);
	nt = 0;
	while ((de = readdir(d))) {
		sb_kt *t;
		sb_kt_iter it;
		if (sb_kt_name_parse(de->d_name, &a, &b))
			continue;
		cr_assert_eq(sb_kt_open(sb_io_default(), tdir, de->d_name, &t, NULL, 0), 0, "%s", de->d_name);
		for (sb_kt_seek(t, NULL, 0, &it); sb_kt_iter_valid(&it); sb_kt_iter_next(&it)) {
			sb_mt_val mv;
			sb_kt_iter_val(&it, &mv);
			cr_assert_geq(mv.pos, SB_SEG_HDR, "%s: an entry without its position", de->d_name);
		}
		sb_kt_close(t);
		nt++;
	}
	closedir(d);
	cr_assert_gt(nt, 0, "no table after the rebuild");
}

/* ---- the table search (in-memory top level, groups of blocks, ties) ------- */

typedef struct gk {
	uint8_t k[48];
	uint8_t len;
} gk;

static int gk_cmp(const void *a, const void *b)
{
	const gk *x = a, *y = b;
	size_t m = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->k, y->k, m);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A random key: often sharing a long prefix with others (ties of the
 * search's 8-byte prefixes), of 1..40 bytes. */
static void gk_rand(gk *g, uint64_t *rnd)
{
	g->len = (uint8_t)(1 + ut_rnd(rnd) % 40);
	uint64_t shape = ut_rnd(rnd) % 4;
	for (size_t i = 0; i < g->len; i++)
		g->k[i] = shape == 0 && i < 12 ? 'p' : (uint8_t)(shape == 1 ? 'a' + ut_rnd(rnd) % 3 : ut_rnd(rnd));
}

Test(keyhint, table_search_generated_sizes)
{
	uint64_t rnd = 0x7ab1e;
	char dir[4096];
	/* entries: a block, around group boundaries (16 blocks of ~70), big */
	const uint32_t sizes[] = {1, 2, 70, 1100, 1150, 1200, 2300, 2400, 9000};

	snprintf(dir, sizeof(dir), "%s", env.stash);
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint32_t n = sizes[si] + (uint32_t)(ut_rnd(&rnd) % 40);
		gk *keys = malloc((size_t)n * 2 * sizeof(*keys));
		cr_assert(keys);
		for (uint32_t i = 0; i < 2 * n; i++)
			gk_rand(&keys[i], &rnd);
		qsort(keys, 2 * n, sizeof(*keys), gk_cmp);
		/* distinct, then every other one present */
		uint32_t m = 0;
		for (uint32_t i = 0; i < 2 * n; i++)
			if (!m || gk_cmp(&keys[m - 1], &keys[i]))
				keys[m++] = keys[i];
		sb_kt_writer *w;
		uint64_t first = 1000 * si;
		cr_assert_eq(sb_kt_writer_new(sb_io_default(), dir, first, first + 999, m, 0, &w), 0);
		for (uint32_t i = 0; i < m; i += 2) {
			sb_mt_val v = {.offset = i, .size = i + 1, .pos = SB_SEG_HDR + i};
			cr_assert_eq(sb_kt_writer_add(w, keys[i].k, keys[i].len, &v), 0);
		}
		cr_assert_eq(sb_kt_writer_finish(w), 0);
		char name[48];
		sb_kt *t;
		sb_kt_name(name, first, first + 999);
		cr_assert_eq(sb_kt_open(sb_io_default(), dir, name, &t, NULL, 0), 0);
		for (uint32_t i = 0; i < m; i++) {
			sb_mt_val v;
			int rc = sb_kt_get(t, keys[i].k, keys[i].len, sb_kt_hash(keys[i].k, keys[i].len), &v);
			if (i % 2) {
				cr_assert_eq(rc, -ENOENT, "table of %u: absent key %u found", m, i);
			} else {
				cr_assert_eq(rc, 0, "table of %u: key %u (%u bytes) not found", m, i, keys[i].len);
				cr_assert(v.offset == i && v.size == i + 1 && v.pos == SB_SEG_HDR + i);
			}
			/* a seek lands on the first present key >= it */
			sb_kt_iter it;
			sb_kt_seek(t, keys[i].k, keys[i].len, &it);
			uint32_t want = i + (i % 2);
			if (want >= m) {
				cr_assert_not(sb_kt_iter_valid(&it));
			} else {
				cr_assert(sb_kt_iter_valid(&it));
				sb_kt_iter_val(&it, &v);
				cr_assert_eq(v.offset, want);
			}
		}
		sb_kt_close(t);
		free(keys);
	}
}
