/*
 * test_store_keys.c - a topic as a table: key tables (writer, reader, Bloom
 * filter, damage), and the key index of a log against a model through
 * random keyed appends, tombstones, flushes, merges, reopens, lost and
 * damaged tables, and a crash at every write step of a table write and a
 * merge (the crash simulator, util_faultio).
 * SB_KEYS_CRASH_STEPS: how many crash points to try (default all).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "keyidx.h"
#include "keytable.h"
#include "util_faultio.h"
#include "util_keytable.h"
#include "util_store.h"

UT_ENV_FIXTURE("keys")

TestSuite(keys, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 240);

/* Key number i: "k" + 8 big-endian bytes of i*2 + some tail: sorted by i,
 * and odd numbers are absent keys that sort between present ones. */
static size_t tkey(uint64_t i, uint8_t *buf)
{
	buf[0] = 'k';
	for (int b = 0; b < 8; b++)
		buf[1 + b] = (uint8_t)((i * 2) >> (56 - 8 * b));
	size_t extra = i % 13;
	memset(buf + 9, 'z', extra);
	return 9 + extra;
}

static int count_tables(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	uint64_t a, b;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += sb_kt_name_parse(de->d_name, &a, &b) == 0;
	closedir(d);
	return n;
}

Test(keys, table_roundtrip_and_bloom)
{
	const uint64_t N = 30000;
	sb_kt_writer *w;
	sb_kt *t;
	uint8_t k[32];
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", env.stash);
	cr_assert_eq(sb_kt_writer_new(sb_io_default(), dir, 5, 9000, N, 0, &w), 0);
	for (uint64_t i = 0; i < N; i++) {
		sb_mt_val v = {.offset = i * 3, .ts = (int64_t)i, .size = (uint32_t)(i * 7), .flags = (uint16_t)(i % 5 == 0)};
		cr_assert_eq(sb_kt_writer_add(w, k, tkey(i, k), &v), 0);
	}
	cr_assert_eq(sb_kt_writer_add(w, k, tkey(3, k), &(sb_mt_val){0}), -EINVAL, "keys must increase");
	cr_assert_eq(sb_kt_writer_finish(w), 0);
	char name[48];
	sb_kt_name(name, 5, 9000);
	cr_assert_eq(sb_kt_open(sb_io_default(), dir, name, &t, NULL, 0), 0);
	cr_assert_eq(sb_kt_count(t), N);
	for (uint64_t i = 0; i < N; i++) {
		sb_mt_val v;
		size_t kl = tkey(i, k);
		cr_assert_eq(sb_kt_get(t, k, kl, sb_kt_hash(k, kl), &v), 0, "key %llu", (unsigned long long)i);
		cr_assert(v.offset == i * 3 && v.ts == (int64_t)i && v.size == i * 7 && v.flags == (i % 5 == 0));
	}
	/* absent keys: between present ones; count Bloom false positives */
	unsigned fp = 0;
	for (uint64_t i = 0; i < N; i++) {
		sb_mt_val v;
		size_t kl = tkey(i, k);
		k[8] |= 1; /* i*2+1: absent */
		uint64_t h = sb_kt_hash(k, kl);
		fp += sb_kt_may_contain(t, h);
		cr_assert_eq(sb_kt_get(t, k, kl, h, &v), -ENOENT);
	}
	double rate = (double)fp / N;
	cr_log_info("Bloom false positives: %.3f%% (%u of %llu)", rate * 100, fp, (unsigned long long)N);
	cr_assert_lt(rate, 0.03, "Bloom false-positive rate %.4f", rate);
	/* ordered iteration from a key between two present ones */
	sb_kt_iter it;
	size_t kl = tkey(100, k);
	k[8] |= 1;
	sb_kt_seek(t, k, kl, &it);
	for (uint64_t i = 101; i < N; i++, sb_kt_iter_next(&it)) {
		cr_assert(sb_kt_iter_valid(&it));
		sb_mt_val v;
		sb_kt_iter_val(&it, &v);
		cr_assert_eq(v.offset, i * 3);
	}
	cr_assert_not(sb_kt_iter_valid(&it));
	sb_kt_close(t);

	/* Damage anywhere is found: at open (footer, index, Bloom) or by the
	 * lookups and scans that meet it (a block's CRC); never a wrong value. */
	char path[8192];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	off_t len = lseek(fd, 0, SEEK_END);
	uint64_t seed = 77;
	for (int trial = 0; trial < 200; trial++) {
		off_t at = (off_t)(ut_rnd(&seed) % (uint64_t)len);
		uint8_t b, x = (uint8_t)(1 + ut_rnd(&seed) % 255);
		cr_assert_eq(pread(fd, &b, 1, at), 1);
		b ^= x;
		cr_assert_eq(pwrite(fd, &b, 1, at), 1);
		int rc = sb_kt_open(sb_io_default(), dir, name, &t, NULL, 0);
		if (rc == 0) {
			int seen_bad = 0;
			for (uint64_t i = 0; i < N; i += 1 + ut_rnd(&seed) % 50) {
				sb_mt_val v;
				size_t kl2 = tkey(i, k);
				int r = sb_kt_get(t, k, kl2, sb_kt_hash(k, kl2), &v);
				if (r == 0)
					cr_assert_eq(v.offset, i * 3, "a damaged table served a wrong entry");
				else
				{
					seen_bad = 1;
					cr_assert(r == SB_ECORRUPT || r == -ENOENT);
				}
			}
			(void)seen_bad;
			sb_kt_close(t);
		} else {
			cr_assert(rc == SB_ECORRUPT || rc == SB_EVERSION, "open: %d", rc);
		}
		b ^= x;
		cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	}
	close(fd);
}

/* ---- the key index of a log against a model ------------------------------- */

#define MKEYS 3000
typedef struct mentry {
	uint64_t off;
	int present;   /* has a record */
	int tomb;      /* the latest is a tombstone */
	uint32_t len;
} mentry;
static mentry M[MKEYS];

static size_t mkey(uint64_t i, char *buf)
{
	return (size_t)sprintf(buf, "key/%llu%s", (unsigned long long)i, i % 3 ? "-long-suffix" : "");
}

static void model_reset(void)
{
	memset(M, 0, sizeof(M));
}

static void do_appends(sb_log *l, uint64_t *seed, int n)
{
	char k[64];
	uint8_t val[300];

	for (int j = 0; j < n; j++) {
		uint64_t i = ut_rnd(seed) % MKEYS;
		int tomb = ut_rnd(seed) % 10 == 0;
		/* unkeyed records between */
		if (ut_rnd(seed) % 4 == 0) {
			sb_record_in u = {.value = "u", .value_len = 1};
			cr_assert_eq(sb_log_append(l, &u, 1, NULL), 0);
		}
		uint64_t next = sb_log_next(l);
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(next, 5, 1, sizeof(val));
		ut_fill(val, len, next, 5);
		sb_record_in r = {.key = k, .key_len = (uint32_t)mkey(i, k), .value = val, .value_len = len,
				  .flags = tomb ? SB_REC_TOMBSTONE : 0};
		uint64_t off;
		cr_assert_eq(sb_log_append(l, &r, 1, &off), 0);
		M[i] = (mentry){off, 1, tomb, len};
	}
}

static void check_model(sb_log *l)
{
	char k[64];
	uint8_t buf[400];

	for (uint64_t i = 0; i < MKEYS; i++) {
		size_t n = 0;
		sb_record_info info;
		int rc = sb_log_get_key(l, k, mkey(i, k), buf, sizeof(buf), &n, &info);
		if (!M[i].present || M[i].tomb) {
			cr_assert_eq(rc, -ENOENT, "key %llu: %d", (unsigned long long)i, rc);
			continue;
		}
		cr_assert_eq(rc, 0, "key %llu: %s", (unsigned long long)i, sb_strerror(rc));
		cr_assert_eq(info.offset, M[i].off);
		cr_assert_eq(n, M[i].len);
		cr_assert(ut_match(buf, n, M[i].off, 5));
	}
}

typedef struct lctx {
	uint64_t n;
	char prev[64];
	size_t prevl;
	int bad;
} lctx;

static int list_cb(void *arg, const void *key, size_t kl, const sb_record_info *info)
{
	lctx *c = arg;
	char k[64];
	unsigned long long i;

	if (c->prevl && (memcmp(c->prev, key, kl < c->prevl ? kl : c->prevl) > 0 ||
			 (memcmp(c->prev, key, kl < c->prevl ? kl : c->prevl) == 0 && c->prevl >= kl)))
		c->bad++;
	memcpy(c->prev, key, kl);
	c->prevl = kl;
	memcpy(k, key, kl);
	k[kl] = 0;
	if (sscanf(k, "key/%llu", &i) != 1 || i >= MKEYS || !M[i].present || M[i].tomb || M[i].off != info->offset)
		c->bad++;
	c->n++;
	return 0;
}

static void check_list(sb_log *l)
{
	lctx c = {0};
	uint64_t live = 0;

	for (int i = 0; i < MKEYS; i++)
		live += M[i].present && !M[i].tomb;
	cr_assert_eq(sb_log_list_keys(l, NULL, 0, list_cb, &c), 0);
	cr_assert_eq(c.bad, 0);
	cr_assert_eq(c.n, live);
}

static sb_log_config kcfg(void)
{
	sb_log_config c;
	ut_cfg(&c, 64 * 1024, SB_SYNC_NEVER);
	c.key_memtable_bytes = 16 * 1024; /* a table every ~200 keys */
	return c;
}

Test(keys, log_model_reopen_lost_and_damaged_tables)
{
	sb_log_config c = kcfg();
	sb_store *s;
	uint64_t seed = 4242;
	char tdir[4096];

	model_reset();
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	for (int round = 0; round < 6; round++) {
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		sb_log *l = ut_topic(s, "t");
		cr_assert_not_null(l);
		check_model(l);
		do_appends(l, &seed, 2500);
		check_model(l);
		check_list(l);
		sb_log_key_stats ks;
		cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
		cr_assert_gt(ks.tables, 0);
		cr_assert_leq(ks.tables, SB_KX_BUSY_TABLES_MAX, "merges keep the table count low: %u", ks.tables);
		if (round % 2) { /* the replay then reads compressed segments */
			size_t done = 0;
			cr_assert_eq(sb_log_compress(l, &done), 0);
			cr_assert_gt(done, 0);
		}
		cr_assert_eq(sb_store_close(s), 0);
		/* Now and then lose or damage a table: the index comes back
		 * from the log. */
		int n = count_tables(tdir);
		cr_assert_gt(n, 0);
		if (round % 3 == 1 || round % 3 == 2) {
			DIR *d = opendir(tdir);
			struct dirent *de;
			uint64_t a, b;
			char p[8192];
			while ((de = readdir(d)))
				if (sb_kt_name_parse(de->d_name, &a, &b) == 0)
					break;
			cr_assert_not_null(de);
			snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
			if (round % 3 == 1) {
				/* all of them: the whole log is replayed, its
				 * compressed segments too */
				do {
					if (sb_kt_name_parse(de->d_name, &a, &b) == 0) {
						snprintf(p, sizeof(p), "%s/%s", tdir, de->d_name);
						cr_assert_eq(unlink(p), 0);
					}
				} while ((de = readdir(d)));
			} else {
				int fd = open(p, O_RDWR);
				uint8_t z[64] = {0};
				cr_assert_eq(pwrite(fd, z, sizeof(z), 100), (ssize_t)sizeof(z));
				close(fd);
			}
			closedir(d);
		}
	}
}

/* The table set of dir, newest first: levels never decrease towards the
 * older tables, and no level holds more than SB_KX_MERGE_WIDTH - 1 (a
 * flush carries into the next level at the next one: keyidx_write.c
 * flush_carry). Returns the count. */
static uint32_t max_level;

static int check_levels(const char *dir)
{
	ut_kt_info ti[64];
	int n = ut_kt_list(dir, ti, 64);

	cr_assert_geq(n, 0, "the tables of %s", dir);
	for (int i = 0, run = 0; i < n; i++) {
		max_level = ti[i].level > max_level ? ti[i].level : max_level;
		if (i)
			cr_assert_eq(ti[i].last + 1, ti[i - 1].first, "the tables do not tile the offsets");
		run = i && ti[i].level == ti[i - 1].level ? run + 1 : 1;
		cr_assert_leq(run, SB_KX_MERGE_WIDTH - 1, "%d tables of level %u", run, ti[i].level);
		if (i)
			cr_assert_geq(ti[i].level, ti[i - 1].level, "an older table of a lower level");
	}
	return n;
}

/* Flushes with their carry (the frozen runs written together with the
 * newest tables they would be merged with) against the model: random
 * keyed appends and tombstones, a random key_memtable_bytes at each open
 * (tables of random sizes), every key checked after every change of the
 * table set and after each reopen; the levels stay a counter of base
 * SB_KX_MERGE_WIDTH.
 * SB_KEYS_CARRY_ROUNDS (default 8). */
Test(keys, flush_carry_against_the_model)
{
	const char *e = getenv("SB_KEYS_CARRY_ROUNDS");
	int rounds = e ? atoi(e) : 8;
	uint64_t seed = 20261130;
	char tdir[4096];
	unsigned changes = 0, maxt = 0;

	model_reset();
	max_level = 0;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	for (int round = 0; round < rounds; round++) {
		sb_log_config c = kcfg();
		c.key_memtable_bytes = 2048 + ut_rnd(&seed) % (14 * 1024);
		c.segment_bytes = 64u << 20; /* no segment is sealed: renames are tables' */
		sb_store *s;
		fio *f = fio_new(env.stash);
		fio_set_sync(f, 0, 0);
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		cr_assert_not_null(l);
		check_model(l);
		sb_log_key_stats prev, ks;
		cr_assert_eq(sb_log_get_key_stats(l, &prev), 0);
		int n = 500 + (int)(ut_rnd(&seed) % 3000);
		for (int j = 0; j < n; j++) {
			unsigned r0 = fio_calls(f, FIO_RENAME);
			do_appends(l, &seed, 1);
			unsigned written = fio_calls(f, FIO_RENAME) - r0;
			cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
			if (ks.tables == prev.tables && ks.table_keys == prev.table_keys &&
			    ks.table_bytes == prev.table_bytes) {
				cr_assert_eq(written, 0);
				continue;
			}
			/* one table written: the flush and the merges it causes
			 * are one pass */
			cr_assert_eq(written, 1, "%u tables written for one flush", written);
			prev = ks;
			changes++;
			check_model(l);
			unsigned nt = (unsigned)check_levels(tdir);
			maxt = nt > maxt ? nt : maxt;
		}
		check_list(l);
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
		check_levels(tdir);
	}
	sb_store *s;
	sb_log_config c = kcfg();
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	check_model(ut_topic(s, "t"));
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_gt(changes, 50, "the table set changed %u times", changes);
	cr_assert_geq(max_level, 2, "carries into level 2 and above: %u", max_level);
	cr_log_info("%u table set changes, at most %u tables, level %u", changes, maxt, max_level);
}

/* A second thread's gets and listings while the writer appends: a key's
 * record found never goes back to an older one (a record is in the
 * unindexed tail or in a sorted run at every moment, never in neither). */
typedef struct rywctx {
	sb_log *l;
	atomic_int stop;
	uint64_t seen[MKEYS];  /* offset + 1 of the newest record found */
	unsigned gets, lists, bad;
} rywctx;

typedef struct order_ctx {
	char prev[64];
	size_t prevl;
	int bad;
} order_ctx;

static int order_cb(void *arg, const void *key, size_t kl, const sb_record_info *info)
{
	order_ctx *c = arg;
	size_t m = kl < c->prevl ? kl : c->prevl;
	int d = memcmp(c->prev, key, m);

	(void)info;
	if (c->prevl && (d > 0 || (d == 0 && c->prevl >= kl)))
		c->bad++;
	if (kl > sizeof(c->prev))
		return c->bad = 1;
	memcpy(c->prev, key, kl);
	c->prevl = kl;
	return 0;
}

static void *ryw_reader(void *arg)
{
	rywctx *c = arg;
	uint64_t seed = 77;
	char k[64];
	uint8_t buf[400];

	while (!atomic_load(&c->stop)) {
		if (ut_rnd(&seed) % 512 == 0) { /* a listing: keys in order, none twice */
			order_ctx oc = {0};
			if (sb_log_list_keys(c->l, NULL, 0, order_cb, &oc) || oc.bad)
				c->bad++;
			c->lists++;
			continue;
		}
		uint64_t i = ut_rnd(&seed) % MKEYS;
		size_t n;
		sb_record_info info;
		int rc = sb_log_get_key(c->l, k, mkey(i, k), buf, sizeof(buf), &n, &info);
		c->gets++;
		if (rc == 0) {
			if (info.offset + 1 < c->seen[i])
				c->bad++;
			c->seen[i] = info.offset + 1;
		} else if (rc != -ENOENT) {
			c->bad++;
		}
	}
	return NULL;
}

/* Read your writes beside the background indexer: with the flusher on and
 * a small key_memtable_bytes (the tail sorted, tables written and merged
 * all along), a get right after each keyed append finds it (a tombstone:
 * -ENOENT), while another thread reads. SB_KEYS_RYW_N appends (default
 * 20,000). */
Test(keys, get_right_after_each_append)
{
	sb_log_config c = kcfg();
	sb_store_options o;
	sb_store *s;
	const char *e = getenv("SB_KEYS_RYW_N");
	int total = e ? atoi(e) : 20000;
	uint64_t seed = 31337;
	static rywctx rc_;
	rywctx *rc = &rc_;
	pthread_t th;

	model_reset();
	sb_store_options_default(&o);
	o.defaults = c; /* the flusher on (ut_open turns it off) */
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_not_null(l);
	memset(rc, 0, sizeof(*rc));
	rc->l = l;
	cr_assert_eq(pthread_create(&th, NULL, ryw_reader, rc), 0);
	for (int j = 0; j < total; j++) {
		char k[64];
		uint8_t val[300], buf[400];
		uint64_t i = ut_rnd(&seed) % MKEYS, off;
		int tomb = ut_rnd(&seed) % 10 == 0;
		uint64_t next = sb_log_next(l);
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(next, 5, 1, sizeof(val));
		ut_fill(val, len, next, 5);
		sb_record_in r = {.key = k, .key_len = (uint32_t)mkey(i, k), .value = val, .value_len = len,
				  .flags = tomb ? SB_REC_TOMBSTONE : 0};
		cr_assert_eq(sb_log_append(l, &r, 1, &off), 0);
		M[i] = (mentry){off, 1, tomb, len};
		size_t n = 0;
		sb_record_info info;
		int got = sb_log_get_key(l, k, r.key_len, buf, sizeof(buf), &n, &info);
		if (tomb) {
			cr_assert_eq(got, -ENOENT, "append %d: a tombstone's key: %s", j, sb_strerror(got));
		} else {
			cr_assert_eq(got, 0, "append %d: key %llu right after its append: %s", j,
				     (unsigned long long)i, sb_strerror(got));
			cr_assert_eq(info.offset, off, "append %d: key %llu: offset %llu, appended at %llu", j,
				     (unsigned long long)i, (unsigned long long)info.offset, (unsigned long long)off);
		}
		if (j % 4000 == 3999) {
			check_model(l);
			check_list(l);
		}
	}
	atomic_store(&rc->stop, 1);
	pthread_join(th, NULL);
	cr_assert_eq(rc->bad, 0, "the reader saw a key go back to an older record or fail (%u of %u gets)", rc->bad,
		     rc->gets);
	check_model(l);
	check_list(l);
	sb_log_key_stats ks;
	cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
	cr_assert_gt(ks.tables, 0, "the flusher wrote tables");
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	check_model(l);
	check_list(l);
	cr_assert_eq(sb_store_close(s), 0);
}

/* Crash at every write-side call while keyed appends flush and merge
 * tables, then recover with the real io and check the model for what was
 * acknowledged (sync=always: all of it). */
Test(keys, crash_at_every_step)
{
	sb_log_config c = kcfg();
	c.sync = SB_SYNC_ALWAYS;
	const char *e = getenv("SB_KEYS_CRASH_STEPS");
	unsigned max_steps = e ? (unsigned)atoi(e) : 100000;
	fio_kind kinds[] = {FIO_PWRITE, FIO_FDATASYNC, FIO_RENAME, FIO_UNLINK};
	unsigned tried = 0;

	for (size_t ki = 0; ki < 4; ki++) {
		/* How many calls of this kind a clean run makes. */
		unsigned total;
		{
			ut_env_fini(&env);
			cr_assert_eq(ut_env_init(&env, "keys"), 0);
			fio *f = fio_new(env.stash);
			fio_set_sync(f, 0, 0);
			sb_store *s;
			uint64_t seed = 9;
			model_reset();
			cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
			unsigned before = fio_calls(f, kinds[ki]);
			do_appends(ut_topic(s, "t"), &seed, 1200);
			total = fio_calls(f, kinds[ki]) - before;
			sb_store_close(s);
			fio_free(f);
		}
		unsigned stride = total / 25 + 1; /* keep the default run short */
		if (e)
			stride = 1;
		for (unsigned step = 1; step <= total && tried < max_steps; step += stride, tried++) {
			ut_env_fini(&env);
			cr_assert_eq(ut_env_init(&env, "keys"), 0);
			fio *f = fio_new(env.stash);
			fio_set_sync(f, 0, 0);
			sb_store *s;
			uint64_t seed = 9;
			model_reset();
			cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
			sb_log *l = ut_topic(s, "t");
			fio_crash_at(f, kinds[ki], step);
			/* append until the crash refuses one: the model keeps
			 * only what was acknowledged */
			char k[64];
			uint8_t val[300];
			uint64_t acked = 0; /* the offset after the last acknowledged append */
			for (int j = 0; j < 1200; j++) {
				uint64_t i = ut_rnd(&seed) % MKEYS;
				int tomb = ut_rnd(&seed) % 10 == 0;
				uint64_t next = sb_log_next(l);
				uint32_t len = tomb ? 0 : (uint32_t)ut_len(next, 5, 1, sizeof(val));
				ut_fill(val, len, next, 5);
				sb_record_in r = {.key = k, .key_len = (uint32_t)mkey(i, k), .value = val,
						  .value_len = len, .flags = tomb ? SB_REC_TOMBSTONE : 0};
				uint64_t off;
				if (sb_log_append(l, &r, 1, &off))
					break;
				M[i] = (mentry){off, 1, tomb, len};
				acked = off + 1;
			}
			sb_store_close(s);
			cr_assert_eq(fio_crash_apply(f, step * 31 + ki, FIO_CRASH_RANDOM, NULL), 0);
			fio_free(f);
			cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
			l = ut_topic(s, "t");
			/* Acknowledged under `always`: every key as the model says,
			 * except a record the crash may have kept beyond the last
			 * acknowledged one (the refused append): a newer offset for
			 * its key, or, a tombstone, its key absent. */
			char rk[64];
			size_t rkl = 0;
			sb_record_info ri;
			int refused_tomb = sb_log_next(l) > acked && !sb_log_stat(l, sb_log_next(l) - 1, &ri) &&
					   (ri.flags & SB_REC_TOMBSTONE) &&
					   !sb_log_read_key(l, sb_log_next(l) - 1, rk, sizeof(rk), &rkl);
			for (uint64_t i = 0; i < MKEYS; i++) {
				uint8_t buf[400];
				size_t n;
				sb_record_info info;
				int rc = sb_log_get_key(l, k, mkey(i, k), buf, sizeof(buf), &n, &info);
				if (rc == 0 && (!M[i].present || info.offset != M[i].off)) {
					/* only the one refused append may show up */
					cr_assert_geq(info.offset, sb_log_next(l) - 1, "kind %zu step %u key %llu", ki,
						      step, (unsigned long long)i);
					continue;
				}
				size_t kl = mkey(i, k);
				if (!M[i].present || M[i].tomb)
					cr_assert(rc == -ENOENT || rc == 0);
				else if (rc == -ENOENT && refused_tomb && rkl == kl && !memcmp(rk, k, kl))
					continue; /* the refused append, a tombstone of it, kept */
				else
					cr_assert_eq(rc, 0, "kind %zu step %u key %llu: %s", ki, step,
						     (unsigned long long)i, sb_strerror(rc));
			}
			cr_assert_eq(sb_store_close(s), 0);
		}
	}
	cr_log_info("%u crash points", tried);
}

/* A key table that names the wrong record: verify says so, and a lookup
 * through it never serves another key's value. */
Test(keys, verify_finds_a_wrong_entry)
{
	sb_log_config c = kcfg();
	sb_store *s;
	sb_log *l;
	char k[64], tdir[4096];
	uint64_t checked = 0, wrong = 0;

	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (int i = 0; i < 10; i++) {
		sb_record_in r = {.key = k, .key_len = (uint32_t)mkey((uint64_t)i, k), .value = "v", .value_len = 1};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_eq(checked, 10);
	cr_assert_eq(wrong, 0);
	cr_assert_eq(sb_store_close(s), 0);

	/* a table for [0, 9] whose entry for key/3 names offset 5 */
	sb_kt_writer *w;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	cr_assert_eq(sb_kt_writer_new(sb_io_default(), tdir, 0, 9, 1, 0, &w), 0);
	sb_mt_val v = {.offset = 5, .ts = 0, .size = 1};
	cr_assert_eq(sb_kt_writer_add(w, k, mkey(3, k), &v), 0);
	cr_assert_eq(sb_kt_writer_finish(w), 0);

	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 1, "wrong entries found: %llu", (unsigned long long)wrong);
	uint8_t buf[8];
	size_t n;
	cr_assert_eq(sb_log_get_key(l, k, mkey(3, k), buf, sizeof(buf), &n, NULL), SB_ECORRUPT);
	cr_assert_eq(sb_store_close(s), 0);
}
