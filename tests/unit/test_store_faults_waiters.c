/*
 * test_store_faults_waiters.c - under sync=always, a writer whose record is
 * written and waits for its sync while another writer's roll fails: what
 * the waiter is told must be what the log holds after a reopen. Its record
 * was written before the failure, and nothing of it failed: it is synced
 * and acknowledged; it used to be told the other's EIO and found there all
 * the same (tools/faults, seed 12045: "an append that failed EIO is
 * there", the failed call a pwrite of the sealed segment's .tix.tmp).
 * Only after a failed sync of records may a failed append be there.
 *
 * Every call of the roll of the kinds below fails in turn (EIO, then
 * ENOSPC): writer C's sync is held (FIO_HOLD) so that writer A's record
 * waits behind it; B's append rolls and meets the fault; then the hold is
 * released.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("waiters")
TestSuite(waiters, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 240);

#define LEN 1000 /* four records do not fit a segment of 4096 bytes */

struct writer {
	sb_log *l;
	uint64_t off;
	pthread_t t;
	atomic_int done;
	int rc;
};

static void *write_one(void *arg)
{
	struct writer *w = arg;

	w->rc = ut_append1(w->l, w->off, LEN, 1, NULL);
	atomic_store(&w->done, 1);
	return NULL;
}

static void start(struct writer *w, sb_log *l, uint64_t off)
{
	w->l = l;
	w->off = off;
	atomic_store(&w->done, 0);
	cr_assert_eq(pthread_create(&w->t, NULL, write_one, w), 0);
}

/* Spin (yielding) until cond or about 10 s. */
#define WAIT_FOR(cond)                                                    \
	for (long k_ = 0; !(cond) && k_ < 2000000; k_++)                  \
		sched_yield()

/* A new store (topic t) through a new fault table with fake syncs:
 * through the mapping or pwrite (use_mmap 0). The table is the caller's
 * to free, after the store's close. */
static fio *open_fresh(const sb_log_config *cfg, int use_mmap, sb_store **s, sb_log **l)
{
	cr_assert_eq(uf_rmrf(env.store), 0);
	fio *f = use_mmap ? fio_new_mmap(env.stash) : fio_new(env.stash);
	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	cr_assert_eq(ut_open(env.store, cfg, fio_io(f), s), 0);
	*l = ut_topic(*s, "t");
	cr_assert_not_null(*l);
	return f;
}

struct outcome {
	int rc[3];   /* C's (offset 1), A's (2), B's (3) */
	int fired;   /* the rule failed a call */
	int nsegs;   /* segment files after B */
};

/* One case: kind's nth call after C and A wait fails with err (nth 0: no
 * fault). The store is closed after; the results in *o. */
static void run_case(fio_kind kind, unsigned nth, int err, struct outcome *o)
{
	char tdir[4096];
	sb_log_config cfg;
	sb_store *s;
	struct writer w[3];

	sb_log *l;
	ut_cfg(&cfg, 4096, SB_SYNC_ALWAYS);
	fio *f = open_fresh(&cfg, 0, &s, &l);
	cr_assert_eq(ut_append1(l, 0, LEN, 1, NULL), 0);

	fio_slow(f, FIO_FDATASYNC, FIO_HOLD, ".seg");
	start(&w[0], l, 1); /* C: the leader, its sync held */
	WAIT_FOR(fio_slowed(f) >= 1);
	cr_assert_eq(fio_slowed(f), 1u, "C's sync never started");
	start(&w[1], l, 2); /* A: written, waits for C's sync to end */
	WAIT_FOR(sb_log_next(l) >= 3);
	cr_assert_eq(sb_log_next(l), 3u, "A did not append");
	if (nth)
		fio_fail(f, kind, nth, err, 0, NULL);
	start(&w[2], l, 3); /* B: rolls; its own sync is held too, if it gets there */
	WAIT_FOR(atomic_load(&w[2].done) || fio_slowed(f) >= 2);
	fio_slow(f, FIO_FDATASYNC, 0, NULL);
	for (int i = 0; i < 3; i++) {
		pthread_join(w[i].t, NULL);
		o->rc[i] = w[i].rc;
	}
	o->fired = fio_failed(f) > 0;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	o->nsegs = uf_count_suffix(tdir, ".seg");
	sb_store_close(s);
	fio_free(f);
}

/* `streambus verify` of topic t finds nothing. */
static void expect_verify_clean(const char *what)
{
	char tdir[4096];
	sb_verify_result res;

	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	cr_assert_eq(sb_verify_topic(tdir, NULL, NULL, NULL, &res), 0);
	for (int k = 0; k < SB_VERIFY_NKINDS; k++)
		cr_assert_eq(res.problems[k], 0, "%s: verify: %llu problems of kind %d", what,
			     (unsigned long long)res.problems[k], k);
}

/* After run_case: reopen with the real io and check each writer's record
 * against what it was told. may_land: a sync of records may have failed. */
static void check_case(const char *what, const struct outcome *o, int may_land)
{
	sb_log_config cfg;
	sb_store *s;
	sb_log *l;

	ut_cfg(&cfg, 4096, SB_SYNC_ALWAYS);
	int rc = ut_open(env.store, &cfg, NULL, &s);
	cr_assert_eq(rc, 0, "%s: reopen: %s", what, sb_strerror(rc));
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	uint64_t next = sb_log_next(l);
	cr_assert_eq(ut_check(l, 0, LEN, 1), 0, "%s: record 0 lost", what);
	for (uint64_t off = 1; off <= 3; off++) {
		int told = o->rc[off - 1], there = off < next;
		if (there)
			cr_assert_eq(ut_check(l, off, LEN, 1), 0, "%s: record %llu garbled", what,
				     (unsigned long long)off);
		if (!told)
			cr_assert(there, "%s: acknowledged record %llu lost", what, (unsigned long long)off);
		else if (!may_land)
			cr_assert(!there, "%s: record %llu is there, its writer was told %s", what,
				  (unsigned long long)off, sb_strerror(told));
	}
	cr_assert_leq(next, 4u, "%s: next %llu", what, (unsigned long long)next);
	cr_assert_eq(ut_append1(l, next, LEN, 1, NULL), 0, "%s: an append after the reopen", what);
	sb_store_close(s);
	expect_verify_clean(what);
}

Test(waiters, the_scenario_rolls_in_b_and_acknowledges_all_without_faults)
{
	struct outcome o;

	run_case(FIO_PWRITE, 0, 0, &o);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(o.rc[i], 0, "writer %d: %s", i, sb_strerror(o.rc[i]));
	cr_assert_eq(o.nsegs, 2, "B's append did not roll");
	check_case("no fault", &o, 0);
}

Test(waiters, another_writers_failed_roll_is_not_the_waiters_failure)
{
	static const fio_kind kinds[] = {FIO_OPEN, FIO_PWRITE, FIO_FDATASYNC, FIO_FTRUNCATE,
					 FIO_FALLOCATE, FIO_RENAME, FIO_CLOSE};
	static const char *names[] = {"open", "pwrite", "fdatasync", "ftruncate",
				      "fallocate", "rename", "close"};
	static const int errs[] = {EIO, ENOSPC};
	unsigned cases = 0, b_failed = 0;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (unsigned nth = 1; nth < 64; nth++) {
			int fired = 0;
			for (size_t e = 0; e < 2; e++) {
				struct outcome o;
				char what[96];
				snprintf(what, sizeof(what), "%s #%u %s", names[k], nth,
					 errs[e] == EIO ? "EIO" : "ENOSPC");
				run_case(kinds[k], nth, errs[e], &o);
				if (!o.fired)
					continue;
				fired = 1;
				cases++;
				int sync = kinds[k] == FIO_FDATASYNC;
				if (!sync) /* the point: A's record was written, nothing of it failed */
					cr_assert_eq(o.rc[1], 0, "%s: A, waiting for its sync, was told %s", what,
						     sb_strerror(o.rc[1]));
				b_failed += o.rc[2] != 0;
				check_case(what, &o, sync);
			}
			if (!fired)
				break;
		}
	}
	cr_log_info("waiters: %u cases, B failed in %u", cases, b_failed);
	cr_assert_geq(cases, 20u, "only %u cases fired", cases);
	cr_assert_geq(b_failed, 10u, "B's roll failed in only %u cases", b_failed);
}

/* The other side: when B's seal fails in its sync of the records, A's
 * among them, A is not acknowledged (a later sync that succeeds proves
 * nothing: the failed one may have dropped the pages). The fault is the
 * first fdatasync after C and A wait: C's or B's, whichever
 * comes first once both are released; the cases where it was B's (C
 * acknowledged) are the ones that count. */
Test(waiters, a_failed_sync_of_the_sealed_records_fails_the_waiter)
{
	unsigned seal_failed = 0, tries = 0;

	for (; tries < 400 && seal_failed < 5; tries++) {
		struct outcome o;
		char what[64];

		snprintf(what, sizeof(what), "try %u", tries);
		run_case(FIO_FDATASYNC, 1, EIO, &o);
		cr_assert(o.fired, "%s: no sync failed", what);
		if (o.rc[0] == 0) { /* C's sync went through: B's seal failed */
			seal_failed++;
			cr_assert_neq(o.rc[1], 0, "%s: A acknowledged after the sync of its records failed", what);
			cr_assert_neq(o.rc[2], 0, "%s: B's append went on after its seal failed", what);
		}
		check_case(what, &o, 1);
	}
	cr_log_info("waiters: the seal's sync failed first in %u of %u tries", seal_failed, tries);
	cr_assert_geq(seal_failed, 1u, "in %u tries C's sync always failed first", tries);
}

struct syncer {
	sb_log *l;
	pthread_t t;
	int rc;
};

static void *sync_one(void *arg)
{
	struct syncer *y = arg;

	y->rc = sb_log_sync(y->l);
	return NULL;
}

/* Under sync=never: X's sb_log_sync fails in its sync of a sealed
 * segment's records; Y's, begun before that failure and waiting for X's
 * turn, must fail too. It used to sync the same segment again, succeed,
 * and say all was durable (a retried fdatasync can succeed with the pages
 * gone). */
Test(waiters, a_sync_waiting_behind_a_failed_sync_of_sealed_records_fails_too)
{
	static const char seg0[] = "00000000000000000000.seg";
	sb_log_config cfg;
	sb_store *s;
	struct syncer x = {0}, y = {0};

	sb_log *l;
	ut_cfg(&cfg, 4096, SB_SYNC_NEVER);
	fio *f = open_fresh(&cfg, 0, &s, &l);
	for (uint64_t i = 0; i < 4; i++) /* the fourth rolls: segment 0 sealed, not synced */
		cr_assert_eq(ut_append1(l, i, LEN, 1, NULL), 0);
	fio_slow(f, FIO_FDATASYNC, FIO_HOLD, seg0);
	fio_fail(f, FIO_FDATASYNC, 1, EIO, 0, seg0);
	x.l = y.l = l;
	cr_assert_eq(pthread_create(&x.t, NULL, sync_one, &x), 0);
	WAIT_FOR(fio_slowed(f) >= 1);
	cr_assert_eq(fio_slowed(f), 1u, "X never synced segment 0");
	cr_assert_eq(pthread_create(&y.t, NULL, sync_one, &y), 0);
	usleep(100 * 1000); /* Y past its first check, waiting for X's turn */
	fio_slow(f, FIO_FDATASYNC, 0, NULL);
	pthread_join(x.t, NULL);
	pthread_join(y.t, NULL);
	cr_assert_eq(fio_failed(f), 1u);
	cr_assert_eq(x.rc, -EIO, "X: %s", sb_strerror(x.rc));
	cr_assert_eq(y.rc, -EIO, "Y, waiting behind the failed sync, was told %s", sb_strerror(y.rc));
	cr_assert_eq(sb_log_sync(l), -EIO, "a sync after");
	cr_assert_eq(ut_append1(l, 4, LEN, 1, NULL), -EIO, "an append after");
	sb_store_close(s);
	fio_free(f);
	struct outcome o = {{0, 0, 0}, 1, 2}; /* records 1..3 acknowledged (no crash: there) */
	check_case("after the failed sync", &o, 0);
}

/* ---- writers at random, one call failed --------------------------------- */

#define NW 4    /* writer threads */
#define PER 40  /* appends each */
#define PAYLOAD_MAX 1500

/* Writer w's i-th payload: "wW-IIII|" then bytes of (w, i), len bytes in
 * all; odd writers' records have keys. */
static size_t payload(uint8_t *buf, int w, int i)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(w * 1000 + i + 1);
	size_t len = 20 + ut_rnd(&s) % (PAYLOAD_MAX - 20);
	int h = snprintf((char *)buf, len, "w%d-%04d|", w, i);
	for (size_t k = (size_t)h; k < len; k++)
		buf[k] = (uint8_t)ut_rnd(&s);
	return len;
}

struct rwriter {
	sb_log *l;
	int w, sync_every;
	pthread_t t;
	int rc[PER];
};

static void *rwrite(void *arg)
{
	struct rwriter *r = arg;
	uint8_t buf[PAYLOAD_MAX];

	for (int i = 0; i < PER; i++) {
		char key[16];
		sb_record_in in = {.value = buf, .value_len = payload(buf, r->w, i)};
		if (r->w % 2) { /* keyed: the key index follows (derived data) */
			in.key = key;
			in.key_len = (uint32_t)snprintf(key, sizeof(key), "k%d", i % 10);
		}
		r->rc[i] = sb_log_append(r->l, &in, 1, NULL);
		if (r->sync_every && i % r->sync_every == r->sync_every - 1)
			(void)sb_log_sync(r->l);
		if (i % 7 == 3)
			sched_yield();
	}
	return NULL;
}

/* Run the writers with kind's nth call failing with err (nth 0: none),
 * through the mapping (the store's write path) or pwrite (use_mmap 0),
 * the keys in the MemTable or a key table an append (key_tables);
 * *calls gets the calls of kind the run made. Returns whether the rule
 * fired. The store is closed after. */
static int rwriters_run(enum sb_sync sync, int use_mmap, int key_tables, fio_kind kind, unsigned nth,
			int err, struct rwriter *ws, unsigned *calls)
{
	sb_log_config cfg;
	sb_store *s;

	sb_log *l;
	ut_cfg(&cfg, 4096, sync);
	cfg.index_interval_bytes = 512;
	if (key_tables)
		cfg.key_memtable_bytes = 1; /* a key table an append, merged as they come */
	fio *f = open_fresh(&cfg, use_mmap, &s, &l);
	unsigned before = fio_calls(f, kind);
	if (nth)
		fio_fail(f, kind, nth, err, 0, NULL);
	for (int w = 0; w < NW; w++) {
		ws[w].l = l;
		ws[w].w = w;
		ws[w].sync_every = sync == SB_SYNC_NEVER ? 8 : 0;
		cr_assert_eq(pthread_create(&ws[w].t, NULL, rwrite, &ws[w]), 0);
	}
	for (int w = 0; w < NW; w++)
		pthread_join(ws[w].t, NULL);
	int fired = fio_failed(f) > 0;
	if (calls)
		*calls = fio_calls(f, kind) - before;
	sb_store_close(s);
	fio_free(f);
	return fired;
}

/* After rwriters_run: every append told 0 there once, every one told an
 * error not there (may_land: unless a sync failed), each writer's in its
 * order, every byte as written; verify clean; an append works. */
static void rwriters_check(const char *what, const struct rwriter *ws, int may_land)
{
	sb_log_config cfg;
	sb_store *s;
	sb_log *l;
	int seen[NW][PER] = {{0}}, last[NW], latest[10][2];
	uint8_t want[PAYLOAD_MAX], *got = malloc(PAYLOAD_MAX + 16);

	cr_assert_not_null(got);
	for (int w = 0; w < NW; w++)
		last[w] = -1;
	for (int k = 0; k < 10; k++)
		latest[k][0] = -1;
	ut_cfg(&cfg, 4096, SB_SYNC_NEVER);
	int rc = ut_open(env.store, &cfg, NULL, &s);
	cr_assert_eq(rc, 0, "%s: reopen: %s", what, sb_strerror(rc));
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	for (uint64_t off = sb_log_start(l); off < sb_log_next(l); off++) {
		sb_record_info info;
		size_t n = 0;
		int w, i;
		rc = sb_log_read(l, off, 0, got, PAYLOAD_MAX + 16, &n, &info);
		cr_assert_eq(rc, 0, "%s: record %llu: %s", what, (unsigned long long)off, sb_strerror(rc));
		cr_assert(n >= 8 && sscanf((const char *)got, "w%d-%d|", &w, &i) == 2 && w >= 0 && w < NW &&
				  i >= 0 && i < PER,
			  "%s: record %llu is no one's", what, (unsigned long long)off);
		cr_assert(n == payload(want, w, i) && memcmp(got, want, n) == 0, "%s: record %llu (w%d-%d) garbled",
			  what, (unsigned long long)off, w, i);
		cr_assert_eq(seen[w][i]++, 0, "%s: w%d-%d twice", what, w, i);
		cr_assert_gt(i, last[w], "%s: w%d-%d after w%d-%d", what, w, i, w, last[w]);
		last[w] = i;
		if (w % 2) {
			latest[i % 10][0] = w;
			latest[i % 10][1] = i;
		}
	}
	/* the key index, replayed or read from its tables, agrees */
	for (int k = 0; k < 10; k++) {
		char key[16];
		size_t n = 0, kl = (size_t)snprintf(key, sizeof(key), "k%d", k);
		rc = sb_log_get_key(l, key, kl, got, PAYLOAD_MAX + 16, &n, NULL);
		if (latest[k][0] < 0) {
			cr_assert_eq(rc, -ENOENT, "%s: key %s has no record, get: %s", what, key, sb_strerror(rc));
			continue;
		}
		cr_assert_eq(rc, 0, "%s: get key %s: %s", what, key, sb_strerror(rc));
		cr_assert(n == payload(want, latest[k][0], latest[k][1]) && memcmp(got, want, n) == 0,
			  "%s: key %s does not give w%d-%d, its latest", what, key, latest[k][0], latest[k][1]);
	}
	uint64_t checked = 0, wrong = 0;
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0u, "%s: %llu key entries wrong", what, (unsigned long long)wrong);
	for (int w = 0; w < NW; w++)
		for (int i = 0; i < PER; i++) {
			if (!ws[w].rc[i])
				cr_assert(seen[w][i], "%s: acknowledged w%d-%d lost", what, w, i);
			else if (!may_land)
				cr_assert(!seen[w][i], "%s: w%d-%d is there, its writer was told %s", what, w, i,
					  sb_strerror(ws[w].rc[i]));
		}
	sb_record_in in = {.value = "after", .value_len = 5};
	cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0, "%s: an append after the reopen", what);
	sb_store_close(s);
	free(got);
	expect_verify_clean(what);
}

/* SB_WAITERS_CASES (default 8) calls of each kind failed a policy, at
 * random among those the run makes (counted with key tables), half
 * through each write path, half with key tables;
 * SB_WAITERS_SEED the seed. */
static void random_writers(enum sb_sync sync)
{
	static const fio_kind kinds[] = {FIO_OPEN, FIO_PWRITE, FIO_FDATASYNC, FIO_FTRUNCATE,
					 FIO_FALLOCATE, FIO_RENAME, FIO_CLOSE};
	static const char *names[] = {"open", "pwrite", "fdatasync", "ftruncate",
				      "fallocate", "rename", "close"};
	const char *e = getenv("SB_WAITERS_CASES"), *sd = getenv("SB_WAITERS_SEED");
	unsigned per = e ? (unsigned)atoi(e) : 8, fired = 0, told = 0;
	uint64_t seed = sd ? strtoull(sd, NULL, 0) : (uint64_t)time(NULL);
	struct rwriter ws[NW];

	cr_log_info("waiters: SB_WAITERS_SEED=%llu", (unsigned long long)seed);
	seed |= 1;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		unsigned calls = 0;
		memset(ws, 0, sizeof(ws));
		rwriters_run(sync, 1, 1, kinds[k], 0, 0, ws, &calls);
		rwriters_check("no fault", ws, 0);
		for (unsigned c = 0; c < per && calls; c++) {
			unsigned nth = 1 + (unsigned)(ut_rnd(&seed) % (calls + 2));
			int err = c % 2 ? ENOSPC : EIO, mm = c / 2 % 2 == 0, kt = c / 4 % 2 == 0;
			char what[192];
			snprintf(what, sizeof(what), "%s, %s, %s, %s #%u of about %u %s (SB_WAITERS_SEED=%s)",
				 sb_sync_name(sync), mm ? "mmap" : "pwrite", kt ? "key tables" : "keys in memory",
				 names[k], nth, calls, err == EIO ? "EIO" : "ENOSPC", sd ? sd : "time");
			memset(ws, 0, sizeof(ws));
			if (!rwriters_run(sync, mm, kt, kinds[k], nth, err, ws, NULL))
				continue;
			fired++;
			for (int w = 0; w < NW; w++)
				for (int i = 0; i < PER; i++)
					told += ws[w].rc[i] != 0;
			rwriters_check(what, ws, kinds[k] == FIO_FDATASYNC);
		}
	}
	cr_log_info("waiters: %s: %u cases fired, %u appends told an error", sb_sync_name(sync), fired, told);
	cr_assert_geq(fired, per * 3, "only %u cases fired", fired);
	cr_assert_gt(told, 0u, "no append was told an error");
}

Test(waiters, random_writers_with_a_call_failed_are_told_the_truth_under_always)
{
	random_writers(SB_SYNC_ALWAYS);
}

Test(waiters, random_writers_with_a_call_failed_are_told_the_truth_under_never)
{
	random_writers(SB_SYNC_NEVER);
}
