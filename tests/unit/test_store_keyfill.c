/*
 * test_store_keyfill.c - the key index reads its keys from the log: a
 * keyed append only notes how far the log goes, and the indexer (the
 * flusher, a reader catching up, the appender far behind, the replay at
 * open) reads the keyed records from the segments (store/keyidx.h).
 * Generated interleavings against a model: random mixes of keyed and
 * unkeyed appends, batches with repeated keys, tombstones, gets and
 * listings between them, rolls (small segments), compressed segments not
 * yet indexed, the start moved past records not yet indexed, reopens;
 * with the flusher on, a second thread reading all along.
 * SB_KEYFILL_STEPS: steps a round (default 4,000; 1,500 under ASan and
 * TSan, also in tools/test's TSan subset); SB_KEYFILL_SEEDS: seeds a mode
 * (default 2; 1 under the sanitizers).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_store.h"

UT_ENV_FIXTURE("keyfill")

TestSuite(keyfill, .init = ut_env_setup, .fini = ut_env_teardown);

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STEPS_DEFAULT 1500
#define SEEDS_DEFAULT 1
#else
#define STEPS_DEFAULT 4000
#define SEEDS_DEFAULT 2
#endif

#define NKEYS 400
#define VSEED 9

typedef struct mentry {
	uint64_t off;
	int present, tomb;
	uint32_t len;
} mentry;

typedef struct model {
	mentry m[NKEYS];
	uint64_t start;
	_Atomic uint64_t seen[NKEYS]; /* the reader's: offset + 1 it last got */
} model;

static model M;

/* Key i: lengths 1 to ~300 (a few past 256: the compressed walk's
 * allocated key), sharing prefixes. */
static size_t fkey(uint64_t i, char *buf)
{
	int n = sprintf(buf, "%llu", (unsigned long long)i);
	size_t pad = i % 17 == 0 ? 290 : i % 5 == 0 ? 20 : 0;
	memset(buf + n, 'p', pad);
	return (size_t)n + pad;
}

static int key_of(const void *k, size_t kl)
{
	char b[400];
	unsigned long long i;

	if (kl >= sizeof(b))
		return -1;
	memcpy(b, k, kl);
	b[kl] = 0;
	if (sscanf(b, "%llu", &i) != 1 || i >= NKEYS)
		return -1;
	return (int)i;
}

static void check_get(sb_log *l, uint64_t i, const char *when, int step)
{
	char k[400];
	uint8_t buf[600];
	size_t n = 0;
	sb_record_info info;
	const mentry *e = &M.m[i];
	int rc = sb_log_get_key(l, k, fkey(i, k), buf, sizeof(buf), &n, &info);

	if (!e->present || e->tomb || e->off < M.start) {
		cr_assert_eq(rc, -ENOENT, "%s step %d: key %llu (latest %llu%s, start %llu): %s", when, step,
			     (unsigned long long)i, (unsigned long long)e->off, e->tomb ? ", a tombstone" : "",
			     (unsigned long long)M.start, sb_strerror(rc));
		return;
	}
	cr_assert_eq(rc, 0, "%s step %d: key %llu (latest %llu): %s", when, step, (unsigned long long)i,
		     (unsigned long long)e->off, sb_strerror(rc));
	cr_assert_eq(info.offset, e->off, "%s step %d: key %llu: offset %llu, the latest is %llu", when, step,
		     (unsigned long long)i, (unsigned long long)info.offset, (unsigned long long)e->off);
	cr_assert_eq(n, e->len);
	cr_assert(ut_match(buf, n, e->off, VSEED), "key %llu: the bytes of another record", (unsigned long long)i);
}

typedef struct lctx {
	uint64_t n, bad;
} lctx;

static int list_cb(void *arg, const void *key, size_t kl, const sb_record_info *info)
{
	lctx *c = arg;
	int i = key_of(key, kl);

	if (i < 0 || !M.m[i].present || M.m[i].tomb || M.m[i].off != info->offset)
		c->bad++;
	c->n++;
	return 0;
}

static void check_all(sb_log *l, const char *when, int step)
{
	lctx c = {0, 0};
	uint64_t live = 0;

	for (uint64_t i = 0; i < NKEYS; i++) {
		check_get(l, i, when, step);
		live += M.m[i].present && !M.m[i].tomb && M.m[i].off >= M.start;
	}
	cr_assert_eq(sb_log_list_keys(l, NULL, 0, list_cb, &c), 0);
	cr_assert_eq(c.bad, 0, "%s step %d: %llu keys listed with another record", when, step,
		     (unsigned long long)c.bad);
	cr_assert_eq(c.n, live, "%s step %d: %llu keys listed, %llu live", when, step, (unsigned long long)c.n,
		     (unsigned long long)live);
	uint64_t checked = 0, wrong = 0;
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0, "%s step %d: verify found %llu wrong entries", when, step, (unsigned long long)wrong);
}

/* A key: mostly from a small hot set, so that batches and runs repeat keys. */
static uint64_t pick_key(uint64_t *seed)
{
	uint64_t r = ut_rnd(seed);
	return r % 3 ? r % 23 : (r >> 8) % NKEYS;
}

/* Append n records (n > 1: one batch), keyed with probability about
 * keyed_pct %, and update the model. */
static void append_some(sb_log *l, uint64_t *seed, size_t n, unsigned keyed_pct)
{
	sb_record_in r[8];
	char kb[8][400];
	uint8_t vb[8][300];
	uint64_t ki[8], next = sb_log_next(l), first;

	for (size_t j = 0; j < n; j++) {
		int keyed = ut_rnd(seed) % 100 < keyed_pct;
		int tomb = keyed && ut_rnd(seed) % 8 == 0;
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(next + j, VSEED, 0, sizeof(vb[j]));
		ut_fill(vb[j], len, next + j, VSEED);
		ki[j] = keyed ? pick_key(seed) : UINT64_MAX;
		r[j] = (sb_record_in){.value = vb[j], .value_len = len, .flags = tomb ? SB_RECORD_TOMBSTONE : 0};
		if (keyed) {
			r[j].key = kb[j];
			r[j].key_len = (uint32_t)fkey(ki[j], kb[j]);
		}
	}
	cr_assert_eq(sb_log_append(l, r, n, &first), 0);
	cr_assert_eq(first, next);
	for (size_t j = 0; j < n; j++)
		if (ki[j] != UINT64_MAX)
			M.m[ki[j]] = (mentry){first + j, 1, !!(r[j].flags & SB_RECORD_TOMBSTONE), r[j].value_len};
}

typedef struct reader {
	sb_log *l;
	_Atomic int stop;
	uint64_t gets, bad;
} reader;

/* Gets all along (beside the flusher and the appender): a key never goes
 * back to an older record. */
static void *read_loop(void *arg)
{
	reader *c = arg;
	uint64_t seed = 5150;
	char k[400];
	uint8_t buf[600];

	while (!atomic_load(&c->stop)) {
		uint64_t i = pick_key(&seed);
		size_t n;
		sb_record_info info;
		int rc = sb_log_get_key(c->l, k, fkey(i, k), buf, sizeof(buf), &n, &info);
		c->gets++;
		if (rc == 0) {
			if (info.offset + 1 < atomic_load(&M.seen[i]) || !ut_match(buf, n, info.offset, VSEED))
				c->bad++;
			atomic_store(&M.seen[i], info.offset + 1);
		} else if (rc != -ENOENT) {
			c->bad++;
		}
	}
	return NULL;
}

static int env_int(const char *name, int dflt)
{
	const char *e = getenv(name);
	return e && atoi(e) > 0 ? atoi(e) : dflt;
}

static sb_store *open_store(const sb_log_config *c, int flusher)
{
	sb_store_options o;
	sb_store *s = NULL;

	if (!flusher) {
		cr_assert_eq(ut_open(env.store, c, NULL, &s), 0);
		return s;
	}
	sb_store_options_default(&o);
	o.defaults = *c;
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	return s;
}

/*
 * One mode: rounds of random steps, the store reopened between rounds.
 * Without the flusher and with a large key_memtable_bytes the indexer
 * lags by hundreds of records across rolls, compressions and start
 * moves, until a get, a listing or the appender's bound makes it read.
 */
static void run_mode(int flusher, uint64_t memtable, uint64_t seed0)
{
	sb_log_config c;
	int steps = env_int("SB_KEYFILL_STEPS", STEPS_DEFAULT);

	memset(&M, 0, sizeof(M));
	ut_cfg(&c, 16 * 1024, SB_SYNC_NEVER);
	c.key_memtable_bytes = memtable;
	c.compression = SB_COMPRESS_LZ4;
	uint64_t seed = seed0;
	char topic[32];
	snprintf(topic, sizeof(topic), "t%llu", (unsigned long long)seed0);
	for (int round = 0; round < 3; round++) {
		sb_store *s = open_store(&c, flusher);
		sb_log *l = ut_topic(s, topic);
		reader rd = {.l = l};
		pthread_t th;
		cr_assert_not_null(l);
		check_all(l, "reopened", round);
		if (flusher)
			cr_assert_eq(pthread_create(&th, NULL, read_loop, &rd), 0);
		/* Phases: gets often, then long stretches with none. */
		unsigned get_pct = 20;
		for (int step = 0; step < steps; step++) {
			uint64_t r = ut_rnd(&seed) % 1000;
			if (step % 500 == 0)
				get_pct = (unsigned)(ut_rnd(&seed) % 3) * 15; /* 0, 15 or 30 % */
			if (r < 450) {
				append_some(l, &seed, 1, 70);
			} else if (r < 600) {
				append_some(l, &seed, 2 + ut_rnd(&seed) % 7, 60);
			} else if (r < 700) {
				append_some(l, &seed, 1 + ut_rnd(&seed) % 4, 0); /* unkeyed stretches */
			} else if (r < 700 + get_pct * 3) {
				check_get(l, pick_key(&seed), "get", step);
			} else if (r < 995) {
				append_some(l, &seed, 1, 100);
			} else if (r < 997) {
				size_t done = 0;
				cr_assert_eq(sb_log_sync(l), 0);
				cr_assert_eq(sb_log_compress(l, &done), 0);
			} else if (r < 998) {
				/* the start past records the indexer may not have read */
				uint64_t st = sb_log_start(l), nx = sb_log_next(l);
				uint64_t to = st + (nx - st) / 8;
				cr_assert_eq(sb_log_delete_before(l, to), 0);
				M.start = sb_log_start(l);
			} else {
				check_all(l, "all", step);
			}
		}
		check_all(l, "round end", round);
		if (flusher) {
			atomic_store(&rd.stop, 1);
			pthread_join(th, NULL);
			cr_assert_eq(rd.bad, 0, "the reader saw a key go back or fail (%llu of %llu gets)",
				     (unsigned long long)rd.bad, (unsigned long long)rd.gets);
		}
		cr_assert_eq(sb_store_close(s), 0);
	}
	sb_store *s = open_store(&c, 0);
	check_all(ut_topic(s, topic), "last reopen", 0);
	cr_assert_eq(sb_store_close(s), 0);
}

Test(keyfill, no_flusher_lagging_indexer)
{
	int seeds = env_int("SB_KEYFILL_SEEDS", SEEDS_DEFAULT);
	for (int i = 0; i < seeds; i++)
		run_mode(0, 256 * 1024, 1000 + (uint64_t)i);
}

Test(keyfill, no_flusher_small_memtable)
{
	int seeds = env_int("SB_KEYFILL_SEEDS", SEEDS_DEFAULT);
	for (int i = 0; i < seeds; i++)
		run_mode(0, 8 * 1024, 2000 + (uint64_t)i);
}

Test(keyfill, flusher_and_a_reader)
{
	int seeds = env_int("SB_KEYFILL_SEEDS", SEEDS_DEFAULT);
	for (int i = 0; i < seeds; i++)
		run_mode(1, 16 * 1024, 3000 + (uint64_t)i);
}

/* A topic without keys: the indexer never reads its records, and the
 * open after a clean close replays none of them (the empty table). */
Test(keyfill, unkeyed_topic_reads_nothing)
{
	sb_log_config c;
	sb_store *s;

	ut_cfg(&c, 256 * 1024, SB_SYNC_NEVER);
	s = open_store(&c, 1);
	sb_log *l = ut_topic(s, "t");
	cr_assert_not_null(l);
	uint8_t v[80];
	for (int i = 0; i < 30000; i++) {
		sb_record_in r = {.value = v, .value_len = 40 + (uint32_t)(i % 40)};
		ut_fill(v, r.value_len, (uint64_t)i, 3);
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	char k[8] = "x";
	uint8_t b[8];
	size_t n;
	cr_assert_eq(sb_log_get_key(l, k, 1, b, sizeof(b), &n, NULL), -ENOENT);
	sb_log_key_stats ks;
	cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
	cr_assert_eq(ks.memtable_keys, 0);
	cr_assert_eq(sb_store_close(s), 0);
	s = open_store(&c, 0);
	l = ut_topic(s, "t");
	cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
	cr_assert_eq(ks.tables, 1, "the close wrote the empty table: %u", ks.tables);
	cr_assert_eq(ks.table_keys, 0);
	cr_assert_eq(sb_store_close(s), 0);
}
