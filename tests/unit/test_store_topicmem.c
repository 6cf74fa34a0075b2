/*
 * test_store_topicmem.c - what an idle topic costs in memory once its
 * store is open (docs/RELIABILITY.md "Daemon memory at scale": 10,000
 * topics must fit the daemon's 64 MiB). The topics are memscale's: 10
 * records each, the first keyed. The heap the store's open takes, per
 * topic (mallinfo2's bytes in use, the open's thread: no flusher), must
 * stay under TOPIC_BYTES; reading a record of every topic adds nothing
 * to speak of (no key index, no block cache opens for it); the first
 * lookup by key then opens that topic's index and finds the key.
 *
 * Before the key index and the block cache were made at their first use
 * (and a topic's name and recovery's message moved to the heap) a topic
 * cost about 10.9 KiB here. Not under a sanitizer (its allocator is not
 * malloc's). UT_TOPICS=N scales the number of topics (default 2000).
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_store.h"

#define TOPIC_BYTES 3072

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static ut_env env;
static int env_made;

/* The scratch is made in the test, after a skip (a skipped test's .init
 * is run, its .fini is not: its scratch would stay). */
static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "topicmem"), 0);
	env_made = 1;
}

static void teardown(void)
{
	if (env_made)
		ut_env_fini(&env);
	env_made = 0;
}

TestSuite(topicmem, .fini = teardown, .timeout = 120);

static size_t ntopics(void)
{
	const char *v = getenv("UT_TOPICS");
	long n = v ? atol(v) : 0;
	return n > 0 ? (size_t)n : 2000;
}

static sb_store *open_store(void)
{
	sb_store_options o;
	sb_store *s;

	sb_store_options_default(&o);
	o.no_flusher = 1;
	o.defaults.sync = SB_SYNC_NEVER;
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	return s;
}

/* Topics t00000.. of 10 records "rec O\n", record 0 keyed "k0". */
static void make_topics(size_t n)
{
	sb_store *s = open_store();

	for (size_t t = 0; t < n; t++) {
		char name[32], val[10][16];
		sb_record_in r[10];
		sb_log *l;
		snprintf(name, sizeof(name), "t%05zu", t);
		cr_assert_eq(sb_store_create(s, name), 0, "%s", name);
		cr_assert_eq(sb_store_get(s, name, &l), 0, "%s", name);
		for (int i = 0; i < 10; i++) {
			memset(&r[i], 0, sizeof(r[i]));
			r[i].value = val[i];
			r[i].value_len = (uint32_t)snprintf(val[i], sizeof(val[i]), "rec %d\n", i);
		}
		r[0].key = "k0";
		r[0].key_len = 2;
		cr_assert_eq(sb_log_append(l, r, 10, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
}

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

Test(topicmem, an_idle_topic_costs_little)
{
	if (SANITIZED)
		cr_skip_test("a sanitizer's allocator: mallinfo2 does not see it");
	setup();
	size_t n = ntopics();
	make_topics(n);
	malloc_trim(0);
	size_t before = heap_in_use();
	sb_store *s = open_store();
	size_t opened = heap_in_use();
	double per = (double)(opened - before) / (double)n;
	printf("topicmem: %zu topics: %.0f bytes a topic at the open (limit %d)\n", n, per, TOPIC_BYTES);
	cr_assert_leq(per, TOPIC_BYTES, "an idle topic costs %.0f bytes at the open, over %d", per, TOPIC_BYTES);

	/* a record of every topic read: nothing more opens */
	for (size_t t = 0; t < n; t++) {
		char name[32], buf[16];
		size_t got = 0;
		sb_log *l;
		snprintf(name, sizeof(name), "t%05zu", t);
		cr_assert_eq(sb_store_get(s, name, &l), 0, "%s", name);
		cr_assert_eq(sb_log_read(l, t % 10, 0, buf, sizeof(buf), &got, NULL), 0, "%s", name);
		cr_assert(got >= 6 && !memcmp(buf, "rec ", 4), "%s", name);
	}
	double read = (double)(heap_in_use() - before) / (double)n;
	printf("topicmem: after a record of each read: %.0f bytes a topic\n", read);
	cr_assert_leq(read, TOPIC_BYTES, "after a read of each, a topic costs %.0f bytes, over %d", read, TOPIC_BYTES);

	/* the keys still answer: the first lookup opens the index */
	sb_log *l;
	char buf[16];
	size_t got = 0;
	cr_assert_eq(sb_store_get(s, "t00000", &l), 0);
	cr_assert_eq(sb_log_get_key(l, "k0", 2, buf, sizeof(buf), &got, NULL), 0);
	cr_assert(got == 6 && !memcmp(buf, "rec 0\n", 6));
	cr_assert_eq(sb_store_close(s), 0);
}
