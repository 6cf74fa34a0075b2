/*
 * test_store_compact_tombs.c - compaction drops a tombstone past
 * delete_retention_ms only once a key table holds it (log_compact.c).
 * The key index's runs in memory are replayed from the log at the next
 * open, from where the tables end: a tombstone dropped while only the runs
 * held it was no longer there to replay, and the key's older entry in a
 * table came back (listed, naming a record compaction had removed: `ls`
 * showed it, `cat` and `rm` gave ENOENT, verify failed and recover could
 * not repair it; found by a tester). Generated: random keys written one to
 * three times, a random set of them removed last (their tombstones in the
 * runs), unkeyed records after them so that they are below the horizon,
 * a round of compaction past the retention, a close and an open; then the
 * listing is exactly the live keys, each removed key is absent, and
 * verify's key check finds no wrong entry. In every other trial the key
 * tables cannot be written (ENOSPC at their creation) from the compaction
 * through the close: the tombstones no table holds are kept.
 * SB_TEST_TOMB_TRIALS: trials (default 12).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_faultio.h"
#include "util_store.h"

UT_ENV_FIXTURE("ctomb")

TestSuite(ctomb, .init = ut_env_setup, .fini = ut_env_teardown);

#define MAXKEYS 400
#define T0 1700000000000000000LL /* record i's time: T0 + i ms */

typedef struct model {
	int written[MAXKEYS], removed[MAXKEYS];
	unsigned nkeys;
	uint64_t n; /* records appended */
} model;

static size_t kname(unsigned i, char *buf)
{
	return (size_t)sprintf(buf, "k%03u", i);
}

static void put(sb_log *l, model *m, int key, int tomb)
{
	char k[16], v[64];
	uint32_t vl = tomb ? 0 : (uint32_t)sprintf(v, "value %u @%llu", (unsigned)key, (unsigned long long)m->n);
	sb_record_in in = {.key = key >= 0 ? k : NULL, .key_len = key >= 0 ? (uint32_t)kname((unsigned)key, k) : 0,
			   .value = v, .value_len = key >= 0 || vl ? vl : 0,
			   .flags = tomb ? SB_RECORD_TOMBSTONE : 0, .timestamp_ns = T0 + (int64_t)m->n * 1000000};

	if (key < 0)
		in.value_len = (uint32_t)sprintf(v, "unkeyed %llu", (unsigned long long)m->n);
	cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	m->n++;
}

/* Keys written, some removed last, unkeyed records after them. */
static void workload(sb_log *l, model *m, uint64_t *seed)
{
	m->nkeys = 50 + (unsigned)(ut_rnd(seed) % (MAXKEYS - 50));
	for (int pass = 0; pass < 3; pass++)
		for (unsigned i = 0; i < m->nkeys; i++)
			if (pass == 0 || ut_rnd(seed) % 3 == 0) {
				put(l, m, (int)i, 0);
				m->written[i] = 1;
			}
	unsigned nrm = 1 + (unsigned)(ut_rnd(seed) % 12);
	for (unsigned j = 0; j < nrm; j++) {
		unsigned i = (unsigned)(ut_rnd(seed) % m->nkeys);
		put(l, m, (int)i, 1);
		m->removed[i] = 1;
	}
	for (int j = 0; j < 80; j++)
		put(l, m, -1, 0);
}

typedef struct listing {
	const model *m;
	unsigned seen, bad;
	char first_bad[32];
} listing;

static int on_key(void *arg, const void *key, size_t key_len, const sb_record_info *info)
{
	listing *ls = arg;
	char k[32];
	unsigned i;

	(void)info;
	snprintf(k, sizeof(k), "%.*s", (int)(key_len < 30 ? key_len : 30), (const char *)key);
	if (sscanf(k, "k%u", &i) != 1 || i >= ls->m->nkeys || !ls->m->written[i] || ls->m->removed[i]) {
		if (!ls->bad++)
			snprintf(ls->first_bad, sizeof(ls->first_bad), "%s", k);
	}
	ls->seen++;
	return 0;
}

static void check(sb_log *l, const model *m, const char *when)
{
	listing ls = {.m = m};
	unsigned live = 0;
	char k[16];
	uint8_t buf[64];
	size_t n;

	for (unsigned i = 0; i < m->nkeys; i++) {
		live += m->written[i] && !m->removed[i];
		if (m->removed[i])
			cr_assert_eq(sb_log_get_key(l, k, kname(i, k), buf, sizeof(buf), &n, NULL), -ENOENT,
				     "%s: removed key %s found", when, k);
	}
	cr_assert_eq(sb_log_list_keys(l, NULL, 0, on_key, &ls), 0);
	cr_assert_eq(ls.bad, 0, "%s: %u keys listed that are not live (%s first)", when, ls.bad, ls.first_bad);
	cr_assert_eq(ls.seen, live, "%s: %u keys listed, %u live", when, ls.seen, live);
	uint64_t checked = 0, wrong = 0;
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0, "%s: verify: %llu of %llu key entries wrong", when, (unsigned long long)wrong,
		     (unsigned long long)checked);
}

Test(ctomb, a_dropped_tombstone_never_brings_its_key_back)
{
	const char *e = getenv("SB_TEST_TOMB_TRIALS");
	unsigned trials = e ? (unsigned)atoi(e) : 12, dropped = 0;

	for (unsigned t = 0; t < trials; t++) {
		uint64_t seed = 0x5eed0000u + t;
		sb_log_config c;
		sb_store *s;
		sb_compact_stats st;
		model m = {0};
		char when[64];

		int full = t % 2;
		ut_env_fini(&env);
		cr_assert_eq(ut_env_init(&env, "ctomb"), 0);
		fio *f = fio_new(env.stash);
		cr_assert_not_null(f);
		fio_set_sync(f, 0, 0);
		ut_cfg(&c, 4096, SB_SYNC_NEVER);
		c.cleanup = SB_CLEANUP_COMPACT;
		c.delete_retention_ms = 1000;
		c.key_memtable_bytes = 2048 + ut_rnd(&seed) % 8192;
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		workload(l, &m, &seed);
		cr_assert_eq(sb_log_sync(l), 0);
		if (full)
			cr_assert_eq(fio_fail(f, FIO_OPEN, 1, ENOSPC, FIO_STICKY, ".keys.tmp"), 0);
		int64_t now = T0 + (int64_t)m.n * 1000000 + 60 * 1000000000LL; /* past the retention */
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		dropped += full ? 0 : (unsigned)st.tombstones_dropped;
		snprintf(when, sizeof(when), "trial %u%s, compacted", t, full ? " (no table written)" : "");
		check(l, &m, when);
		int rc = sb_store_close(s);
		cr_assert(full || rc == 0, "%s: close: %d", when, rc);
		fio_free(f);
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		snprintf(when, sizeof(when), "trial %u%s, reopened", t, full ? " (no table written)" : "");
		check(ut_topic(s, "t"), &m, when);
		cr_assert_eq(sb_store_close(s), 0);
	}
	cr_assert_gt(dropped, trials / 2, "only %u tombstones dropped in %u trials: the case is not met", dropped,
		     trials);
}
