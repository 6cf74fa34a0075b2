/*
 * test_store_manytopics.c - a store with thousands of topics: created while
 * the flusher runs (sync=interval, whose snapshot of the topics must grow
 * with them), then random create/remove/append from several threads, and a
 * reopen that must find exactly the topics and records the threads left.
 *
 * UT_TOPICS=N scales the number of topics (default 3000), UT_TOPICS_OPS=N
 * the random operations per thread (default 1500).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util_store.h"

#define NTHREADS 4

static ut_env env;
static sb_store *S;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "many"), 0);
	S = NULL;
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(manytopics, .init = setup, .fini = teardown, .timeout = 300);

static size_t env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);
	long n = v ? atol(v) : 0;
	return n > 0 ? (size_t)n : dflt;
}

/* The flusher runs every ms: it snapshots the topics as they grow. */
static void open_flushing(sb_store **out)
{
	sb_store_options o;

	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 64 * 1024, SB_SYNC_INTERVAL);
	o.defaults.sync_interval_ms = 1;
	cr_assert_eq(sb_store_open(env.store, &o, out), 0);
}

static void topic_name(char *buf, size_t cap, size_t i)
{
	snprintf(buf, cap, "topic-%05zu", i);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* What the threads did: topic i belongs to thread i % NTHREADS. */
typedef struct model {
	size_t n;
	unsigned char *exists;
	uint64_t *count;   /* records in the current incarnation */
} model;

typedef struct worker {
	model *m;
	size_t tid, ops;
	uint64_t seed;
	int failed;
	char why[160];
} worker;

#define FAIL(w, ...) do { snprintf((w)->why, sizeof((w)->why), __VA_ARGS__); (w)->failed = 1; return NULL; } while (0)

static void *work(void *arg)
{
	worker *w = arg;
	model *m = w->m;
	char name[32];

	for (size_t k = 0; k < w->ops; k++) {
		size_t i = (size_t)(ut_rnd(&w->seed) % (m->n / NTHREADS)) * NTHREADS + w->tid;
		unsigned op = (unsigned)(ut_rnd(&w->seed) % 10);
		sb_log *l = NULL;
		int rc;

		topic_name(name, sizeof(name), i);
		if (!m->exists[i]) {
			if ((rc = sb_store_create(S, name)))
				FAIL(w, "create %s: %d", name, rc);
			m->exists[i] = 1;
			m->count[i] = 0;
			continue;
		}
		if ((rc = sb_store_get(S, name, &l)))
			FAIL(w, "get %s: %d", name, rc);
		if (op < 7) {
			uint64_t off = m->count[i];
			if ((rc = ut_append1(l, off, ut_len(off, i, 1, 64), i, NULL)))
				FAIL(w, "append %s: %d", name, rc);
			m->count[i]++;
		} else if (op < 9) {
			/* empty it and remove it; the old handle stays valid and
			 * refuses everything, a new topic of that name is a new log */
			if ((rc = sb_log_delete_before(l, m->count[i])))
				FAIL(w, "delete_before %s: %d", name, rc);
			if ((rc = sb_store_remove(S, name)))
				FAIL(w, "remove %s: %d", name, rc);
			if (sb_log_append(l, &(sb_record_in){.value = "x", .value_len = 1}, 1, NULL) != -ENOENT)
				FAIL(w, "append to removed %s did not fail with ENOENT", name);
			m->exists[i] = 0;
			if (op == 8) {
				sb_log *nl = NULL;
				if ((rc = sb_store_create(S, name)) || (rc = sb_store_get(S, name, &nl)))
					FAIL(w, "re-create %s: %d", name, rc);
				if (nl == l || sb_log_next(nl) != 0 || sb_log_start(nl) != 0)
					FAIL(w, "re-created %s is not a new empty topic", name);
				m->exists[i] = 1;
				m->count[i] = 0;
			}
		} else {
			/* someone else's topic: just look */
			char other[32];
			topic_name(other, sizeof(other), (size_t)(ut_rnd(&w->seed) % m->n));
			if (sb_store_get(S, other, &l) == 0)
				(void)sb_log_next(l);
		}
	}
	return NULL;
}

static int count_cb(void *arg, const char *name, sb_log *log)
{
	(void)name, (void)log;
	(*(size_t *)arg)++;
	return 0;
}

static void *retainer(void *arg)
{
	int *stop = arg;
	while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
		size_t n = 0;
		sb_store_list(S, count_cb, &n);
		sb_store_retain(S, 0);
		sleep_ms(2);
	}
	return NULL;
}

/* Every topic of the model, with its records, and nothing else. */
static void check_model(const model *m)
{
	size_t live = 0, listed = 0;
	char name[32];

	for (size_t i = 0; i < m->n; i++) {
		sb_log *l = NULL;
		topic_name(name, sizeof(name), i);
		int rc = sb_store_get(S, name, &l);
		if (!m->exists[i]) {
			cr_expect_eq(rc, -ENOENT, "%s was removed, but it is there", name);
			continue;
		}
		live++;
		cr_assert_eq(rc, 0, "%s is missing after reopen", name);
		cr_expect_eq(sb_log_next(l), m->count[i], "%s: next", name);
		if (m->count[i])
			cr_expect_eq(ut_check(l, m->count[i] - 1, SIZE_MAX, i), 0, "%s: last record", name);
	}
	cr_assert_eq(sb_store_list(S, count_cb, &listed), 0);
	cr_expect_eq(listed, live, "listed %zu topics, the model has %zu", listed, live);
}

Test(manytopics, thousands_under_the_flusher)
{
	model m = {.n = env_size("UT_TOPICS", 3000)};
	size_t ops = env_size("UT_TOPICS_OPS", 1500);
	char name[32];

	m.n -= m.n % NTHREADS;
	cr_assert_geq(m.n, NTHREADS);
	m.exists = calloc(m.n, 1);
	m.count = calloc(m.n, sizeof(*m.count));
	cr_assert(m.exists && m.count);

	open_flushing(&S);
	for (size_t i = 0; i < m.n; i++) {
		topic_name(name, sizeof(name), i);
		cr_assert_eq(sb_store_create(S, name), 0, "create %s", name);
		m.exists[i] = 1;
	}
	sleep_ms(20); /* the flusher takes a snapshot of them all */

	pthread_t th[NTHREADS], ret;
	worker w[NTHREADS];
	int stop = 0;
	cr_assert_eq(pthread_create(&ret, NULL, retainer, &stop), 0);
	for (size_t t = 0; t < NTHREADS; t++) {
		w[t] = (worker){.m = &m, .tid = t, .ops = ops, .seed = 0x9e3779b97f4a7c15ull * (t + 1)};
		cr_assert_eq(pthread_create(&th[t], NULL, work, &w[t]), 0);
	}
	for (size_t t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(ret, NULL);
	for (size_t t = 0; t < NTHREADS; t++)
		cr_assert_not(w[t].failed, "thread %zu: %s", t, w[t].why);
	check_model(&m);

	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	open_flushing(&S);
	sleep_ms(20);
	check_model(&m);
	free(m.exists);
	free(m.count);
}

/* RssAnon of this process, KiB (0 if unknown). */
static long rss_anon_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "RssAnon: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

#if defined(__SANITIZE_ADDRESS__)
#define UT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UT_ASAN 1
#endif
#endif

/* An open topic of a few records costs its structs and its sparse index,
 * not a page of anonymous memory per index (10,000 topics must mount in
 * well under 64 MiB: tools/memscale). Measured on the reopen, as a mount
 * does; the bound is skipped under ASan (its shadow and quarantine). */
Test(manytopics, an_open_small_topic_costs_under_3_kib)
{
	size_t n = env_size("UT_TOPICS", 3000);
	sb_store_options o;
	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 64 * 1024, SB_SYNC_NEVER);
	o.no_flusher = 1;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	for (size_t i = 0; i < n; i++) {
		char name[32];
		sb_log *l;
		topic_name(name, sizeof name, i);
		cr_assert_eq(sb_store_create(S, name), 0);
		cr_assert_eq(sb_store_get(S, name, &l), 0);
		sb_record_in r = {.value = "v", .value_len = 1};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	long before = rss_anon_kib();
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	long after = rss_anon_kib();
	double per = (double)(after - before) / (double)n;
	cr_log_info("RssAnon %ld -> %ld KiB for %zu topics: %.2f KiB a topic", before, after, n, per);
#ifndef UT_ASAN
	cr_expect_lt(per, 3.0, "%.2f KiB of RssAnon a topic (%ld -> %ld KiB, %zu topics)", per, before,
		     after, n);
#endif
}
