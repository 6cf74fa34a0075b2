/*
 * test_store_rewrite_open.c - a compression or a compaction whose new file
 * is in place (renamed over NNNN.seg) but whose segment then fails to open.
 *
 * The segment object in the log still maps the old file, which is no
 * longer at its path. A later rewrite that read the path at the object's
 * length would map past the end of the smaller new file and die of
 * SIGBUS. So after such a failure the log rewrites nothing until it is
 * reopened (rewrite_err, store/log_compress.c), reads keep serving the old
 * file, and a reopen takes the new file.
 *
 * For every open(2) a round makes (counted by a clean run first), that
 * open fails with EIO: then more records, another round, every record read
 * back (right, or for compaction gone only when a later record has its
 * key), the store closed, `verify` clean, reopened, read back again, a
 * round that now works, and every key's latest value.
 * It found the same defect after a failed sync of the directory that
 * follows the rename: a round after it left the segment before a run of
 * emptied ones short of their offsets ("records missing" at the reopen).
 * SB_REWRITE_DEBUG=1: verify's findings; FIO_DEBUG_FAIL=1: which call failed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_faultio.h"
#include "util_store.h"

UT_ENV_FIXTURE("rwopen")

TestSuite(rwopen, .init = ut_env_setup, .fini = ut_env_teardown);

#define MAXREC 2000
#define NKEYS 6
#define T0 1700000000000000000LL
#define NOW (T0 + (INT64_C(1) << 50))

static int K[MAXREC]; /* record o's key (-1: none) */
static uint64_t MN;

static sb_log_config cfg(int compact)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.index_interval_bytes = 512;
	if (compact) {
		c.cleanup = SB_CLEANUP_COMPACT;
		c.delete_retention_ms = 0;
	} else {
		c.compression = SB_COMPRESS_LZ4;
		c.compression_block_bytes = 1024;
	}
	return c;
}

static void append_some(sb_log *l, uint64_t *seed, unsigned n)
{
	uint8_t val[200];
	char k[16];

	for (unsigned j = 0; j < n && MN < MAXREC; j++) {
		uint64_t off = sb_log_next(l);
		cr_assert_eq(off, MN);
		int key = ut_rnd(seed) % 8 == 0 ? -1 : (int)(ut_rnd(seed) % NKEYS);
		uint32_t len = (uint32_t)ut_len(off, 3, 20, sizeof(val));
		ut_fill(val, len, off, 3);
		sb_record_in in = {.key = k, .key_len = key >= 0 ? (uint32_t)sprintf(k, "k%d", key) : 0,
				   .value = val, .value_len = len, .timestamp_ns = T0 + (int64_t)off * 1000000};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		K[MN++] = key;
	}
	cr_assert_eq(sb_log_sync(l), 0);
}

static int superseded(uint64_t o)
{
	if (K[o] < 0)
		return 0;
	for (uint64_t p = o + 1; p < MN; p++)
		if (K[p] == K[o])
			return 1;
	return 0;
}

/* Every record right, or (compact) gone only if superseded; every key's
 * latest record found by key. */
static void check(sb_log *l, int compact, const char *when)
{
	uint8_t buf[256];
	size_t n;

	cr_assert_eq(sb_log_next(l), MN, "%s", when);
	for (uint64_t o = 0; o < MN; o++) {
		int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, NULL);
		if (rc == -ENOENT && compact && superseded(o))
			continue;
		cr_assert_eq(rc, 0, "%s: offset %llu: %s", when, (unsigned long long)o, sb_strerror(rc));
		cr_assert(n == ut_len(o, 3, 20, 200) && ut_match(buf, n, o, 3), "%s: offset %llu", when,
			  (unsigned long long)o);
	}
	for (int k = 0; k < NKEYS; k++) {
		char kn[16];
		int64_t lat = -1;
		sb_record_info info;
		for (uint64_t o = 0; o < MN; o++)
			if (K[o] == k)
				lat = (int64_t)o;
		int rc = sb_log_get_key(l, kn, (size_t)sprintf(kn, "k%d", k), buf, sizeof(buf), &n, &info);
		if (lat < 0)
			cr_assert_eq(rc, -ENOENT, "%s: key %d", when, k);
		else
			cr_assert(rc == 0 && info.offset == (uint64_t)lat, "%s: key %d: %s", when, k, sb_strerror(rc));
	}
}

static int rewrite(sb_log *l, int compact)
{
	return compact ? sb_log_compact(l, NOW, NULL) : sb_log_compress(l, NULL);
}

static void vproblem(void *arg, const sb_verify_problem *p)
{
	(void)arg;
	fprintf(stderr, "verify: %s: %s\n", p->path, p->msg);
}

static void verify_clean(const char *when)
{
	sb_verify_result res;
	char td[4200];

	snprintf(td, sizeof(td), "%s/t", env.store);
	cr_assert_eq(sb_verify_topic(td, getenv("SB_REWRITE_DEBUG") ? vproblem : NULL, NULL, NULL, &res), 0);
	cr_assert_eq(sb_verify_damage(&res) - res.problems[SB_VERIFY_INDEX], 0, "%s: verify finds damage", when);
}

static sb_log *fresh(fio **f, sb_store **s, const sb_log_config *c)
{
	uint64_t seed = 77;

	ut_env_fini(&env);
	cr_assert_eq(ut_env_init(&env, "rwopen"), 0);
	*f = fio_new(env.stash);
	cr_assert(*f);
	fio_set_sync(*f, 0, 0);
	cr_assert_eq(ut_open(env.store, c, fio_io(*f), s), 0);
	sb_log *l = ut_topic(*s, "t");
	cr_assert(l);
	MN = 0;
	append_some(l, &seed, 500);
	return l;
}

static void every_open_fails_in_turn(int compact)
{
	sb_log_config c = cfg(compact);
	unsigned total, failed_rounds = 0;
	fio *f;
	sb_store *s;

	sb_log *l = fresh(&f, &s, &c);
	unsigned before = fio_calls(f, FIO_OPEN);
	cr_assert_eq(rewrite(l, compact), 0);
	total = fio_calls(f, FIO_OPEN) - before;
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	for (unsigned step = 1; step <= total; step++) {
		char when[64];
		uint64_t seed = 99 + step;
		snprintf(when, sizeof(when), "%s, open %u of %u failed", compact ? "compact" : "compress", step, total);
		l = fresh(&f, &s, &c);
		cr_assert_eq(fio_fail(f, FIO_OPEN, step, EIO, 0, NULL), 0);
		int rc = rewrite(l, compact);
		fio_fail_clear(f);
		if (rc)
			failed_rounds += rc == -EIO;
		check(l, compact, when);
		append_some(l, &seed, 100);
		(void)rewrite(l, compact); /* refused after a failed open, or works */
		check(l, compact, when);
		cr_assert_eq(sb_store_close(s), 0);
		verify_clean(when);
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
		check(l, compact, when);
		cr_assert_eq(rewrite(l, compact), 0, "%s: a rewrite after the reopen", when);
		check(l, compact, when);
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
	cr_assert_gt(failed_rounds, 0, "no open failed");
}

Test(rwopen, compaction)
{
	every_open_fails_in_turn(1);
}

Test(rwopen, compression)
{
	every_open_fails_in_turn(0);
}
