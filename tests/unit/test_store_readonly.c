/*
 * test_store_readonly.c - read-only opens (what `streambus stat`, `dump` and
 * `verify` do) of a store another opener appends to, rolling segments all
 * the time. A roll trims the sealed segment's preallocated tail with
 * ftruncate: a reader that had mapped that tail died of SIGBUS when it
 * touched it (Criterion reports the crash as a failure). Readers must
 * never crash, and every record they read must be the one written. Two
 * cases close the writer (which trims the tail too) at the worst moment, the
 * third races readers against rolls; SB_READONLY_MS sets how long it runs
 * (default 3000 ms).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util_files.h"
#include "format.h"
#include "util_store.h"
#include "verify.h"

#define SEED 5
#define LEN(off) ut_len((off), SEED, 8, 3000)
#define READERS 2

static ut_env env;
static atomic_int stop;
static atomic_ulong opens, records, verifies, bad;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "ro"), 0);
	atomic_store(&stop, 0);
	atomic_store(&opens, 0);
	atomic_store(&records, 0);
	atomic_store(&verifies, 0);
	atomic_store(&bad, 0);
}

static sb_store *W; /* the writer of the cases that close it mid-read */

static void teardown(void)
{
	if (W)
		sb_store_close(W);
	W = NULL;
	ut_env_fini(&env);
}

TestSuite(readonly, .init = setup, .fini = teardown, .timeout = 120);

static void *writer_main(void *arg)
{
	sb_log *l = arg;

	while (!atomic_load(&stop)) {
		/* Batches of a few records, so that rolls land everywhere. */
		uint64_t off = sb_log_next(l);
		size_t n = 1 + off % 5;
		for (size_t i = 0; i < n; i++)
			if (ut_append1(l, off + i, LEN(off + i), SEED, NULL)) {
				atomic_fetch_add(&bad, 1);
				return NULL;
			}
		/* Keep the log short (a few segments), so that readers spend
		 * their time near the segment being rolled (and meet removed
		 * segments too). */
		if (off % 64 < n && off > 200 && sb_log_delete_before(l, off - 200)) {
			atomic_fetch_add(&bad, 1);
			return NULL;
		}
	}
	return NULL;
}

static void *reader_main(void *arg)
{
	sb_log_config *c = arg;
	char dir[4096];

	ut_topic_path(&env, "t", NULL, dir, sizeof dir);
	while (!atomic_load(&stop)) {
		sb_store_options o;
		sb_store *s = NULL;
		sb_log *l = NULL;

		sb_store_options_default(&o);
		o.defaults = *c;
		o.read_only = 1;
		o.no_flusher = 1;
		o.lock_wait_ms = 0; /* the writer holds the lock: do not wait */
		if (sb_store_open(env.store, &o, &s) == 0) {
			atomic_fetch_add(&opens, 1);
			int rc = sb_store_get(s, "t", &l);
			if (rc) { /* the topic left out: a segment went while listed */
				fprintf(stderr, "the read-only open left the topic out: %s\n", sb_strerror(rc));
				atomic_fetch_add(&bad, 1);
			} else {
				sb_log_stats st;
				if (sb_log_get_stats(l, &st))
					atomic_fetch_add(&bad, 1);
				for (uint64_t off = sb_log_start(l); off < sb_log_next(l); off++) {
					if (ut_check(l, off, LEN(off), SEED))
						atomic_fetch_add(&bad, 1);
					atomic_fetch_add(&records, 1);
				}
			}
			sb_store_close(s);
		}
		sb_verify_result vr;
		if (sb_verify_topic(dir, NULL, NULL, NULL, &vr) == 0)
			atomic_fetch_add(&verifies, 1);
	}
	return NULL;
}

Test(readonly, readers_beside_rolling_writer)
{
	const char *e = getenv("SB_READONLY_MS");
	uint64_t ms = e ? strtoull(e, NULL, 10) : 3000;
	sb_log_config c;
	sb_store *w = NULL;
	pthread_t wt, rt[READERS];

	/* Small segments: a roll every few dozen appends; each trims the
	 * preallocated tail (mmap appends preallocate 64 KiB and more). */
	ut_cfg(&c, 16 * 1024, SB_SYNC_NEVER);
	c.index_interval_bytes = 1024;
	cr_assert_eq(ut_open(env.store, &c, NULL, &w), 0);
	sb_log *l = ut_topic(w, "t");
	cr_assert_not_null(l);
	cr_assert_eq(ut_append_n(l, 10, SEED, 8, 3000), 0);

	cr_assert_eq(pthread_create(&wt, NULL, writer_main, l), 0);
	for (int i = 0; i < READERS; i++)
		cr_assert_eq(pthread_create(&rt[i], NULL, reader_main, &c), 0);
	uint64_t t0 = ut_now_ms();
	while (ut_now_ms() - t0 < ms && !atomic_load(&bad)) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, 1);
	pthread_join(wt, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(rt[i], NULL);
	cr_log_info("%lu opens, %lu records read, %lu verify runs, %llu records written",
		    atomic_load(&opens), atomic_load(&records), atomic_load(&verifies),
		    (unsigned long long)sb_log_next(l));
	cr_assert_eq(sb_store_close(w), 0);
	cr_assert_eq(atomic_load(&bad), 0, "%lu wrong records or failed calls", atomic_load(&bad));
	cr_assert_gt(atomic_load(&opens), 0);
	cr_assert_gt(atomic_load(&verifies), 0);
}

/* ---- the writer closes (trimming its active segment) mid-read ---------- */

static sb_log *WL;
static uint64_t wlen; /* bytes of the records written, segment header included */

/* A writer with one segment (of many records, ending in preallocated space
 * at least two pages long) left open in W. */
static void writer_with_tail(size_t min_bytes)
{
	char path[4096];
	sb_log_config c;
	struct stat st;

	ut_cfg(&c, 64u << 20, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &W), 0);
	WL = ut_topic(W, "t");
	cr_assert_not_null(WL);
	wlen = SB_SEG_HDR;
	for (uint64_t off = 0;; off++) {
		cr_assert_eq(ut_append1(WL, off, 1000, SEED, NULL), 0);
		wlen += SB_REC_HDR + 1000;
		if (wlen < min_bytes)
			continue;
		ut_topic_path(&env, "t", "00000000000000000000.seg", path, sizeof path);
		cr_assert_eq(stat(path, &st), 0);
		if ((uint64_t)st.st_size >= wlen + 8192)
			break;
	}
}

static atomic_int closed;

static void close_writer(void)
{
	if (atomic_exchange(&closed, 1))
		return;
	cr_assert_eq(sb_store_close(W), 0);
	W = NULL;
}

static void on_report(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	/* Called after the records of the active segment were checked, before
	 * what follows them is looked at. */
	if (strstr(msg, "index rebuilt"))
		close_writer();
}

Test(readonly, open_while_writer_closes)
{
	char path[4096];
	FILE *f;

	writer_with_tail(100000);
	/* A bad index file beside the active segment: the read-only open
	 * rebuilds the index and says so, between checking the records and
	 * looking at what follows them. */
	ut_topic_path(&env, "t", "00000000000000000000.idx", path, sizeof path);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs("not an index", f);
	fclose(f);
	uint64_t next = sb_log_next(WL);

	sb_store_options o;
	sb_store *s = NULL;
	sb_log *l = NULL;
	sb_store_options_default(&o);
	o.read_only = 1;
	o.no_flusher = 1;
	o.lock_wait_ms = 0;
	o.report = on_report;
	atomic_store(&closed, 0);
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	cr_assert_eq(atomic_load(&closed), 1, "the writer was not closed during the open");
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	cr_assert_eq(sb_log_next(l), next);
	for (uint64_t off = 0; off < next; off++)
		cr_assert_eq(ut_check(l, off, 1000, SEED), 0, "record %llu", (unsigned long long)off);
	cr_assert_eq(sb_store_close(s), 0);
}

static void on_problem(void *arg, const sb_verify_problem *p)
{
	(void)arg;
	fprintf(stderr, "verify: %s: byte %llu: %s\n", p->path, (unsigned long long)p->pos, p->msg);
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	(void)total;
	if (done > 0) /* the first call comes before any segment is opened */
		close_writer();
}

Test(readonly, verify_while_writer_closes)
{
	char dir[4096];
	sb_verify_result vr;

	/* verify reports progress every 8 MiB: the first call comes while it
	 * walks the active segment, before its tail. */
	writer_with_tail(9u << 20);
	uint64_t next = sb_log_next(WL);
	atomic_store(&closed, 0);
	ut_topic_path(&env, "t", NULL, dir, sizeof dir);
	cr_assert_eq(sb_verify_topic(dir, on_problem, on_progress, NULL, &vr), 0);
	cr_assert_eq(atomic_load(&closed), 1, "the writer was not closed during verify");
	/* (The index was missing when verify looked: noted, not damage.) */
	cr_assert_eq(vr.problems[SB_VERIFY_RECORD] + vr.problems[SB_VERIFY_ORDER] + vr.problems[SB_VERIFY_FILE] +
			     vr.problems[SB_VERIFY_IO], 0);
	cr_assert_eq(vr.records, next);
}

/*
 * Retention (or rm) of the oldest segments between a read-only open's
 * listing of the topic and its open of a listed segment: `streambus
 * stat/dump/verify` of a mounted LOG_DIR left the topic out ("cannot open:
 * N.seg: No such file or directory", then "no such topic", exit 2). The
 * reader's io drops segments at its open of the k-th segment file, for
 * every k; the topic must open, from the new start, with every record.
 */
static sb_log *RL;       /* the writer's log, whose oldest segments go */
static uint64_t drop_to; /* sb_log_delete_before's offset */
static int drop_at, seg_opens, drop_rc = 1;

static int dropping_open(void *ctx, const char *path, int flags, mode_t mode)
{
	const char *dot = strrchr(path, '.');
	if (dot && strcmp(dot, SB_SEG_SUFFIX) == 0 && seg_opens++ == drop_at)
		drop_rc = sb_log_delete_before(RL, drop_to);
	return sb_io_default()->open(ctx, path, flags, mode);
}

Test(readonly, segments_dropped_while_the_topic_opens)
{
	sb_log_config c;
	sb_store *w = NULL;
	sb_io io = *sb_io_default();
	io.open = dropping_open;

	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, NULL, &w), 0);
	cr_assert_not_null(RL = ut_topic(w, "t"));
	for (drop_at = 0; drop_at < 6; drop_at++) {
		sb_store_options o;
		sb_store *s = NULL;
		sb_log *l = NULL;
		uint64_t start = sb_log_next(RL);

		cr_assert_eq(ut_append_n(RL, 300, SEED, 1, 400), 0); /* ~18 segments more */
		cr_assert_eq(sb_log_delete_before(RL, start), 0);
		drop_to = start + 30 + 20 * (uint64_t)drop_at; /* a segment or more */
		seg_opens = 0;
		drop_rc = 1;
		sb_store_options_default(&o);
		o.defaults = c;
		o.read_only = 1;
		o.no_flusher = 1;
		o.lock_wait_ms = 0;
		o.io = &io;
		cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
		cr_assert_eq(drop_rc, 0, "case %d: no segment dropped during the open", drop_at);
		int rc = sb_store_get(s, "t", &l);
		cr_assert_eq(rc, 0, "case %d: the topic was left out: %s", drop_at, sb_strerror(rc));
		cr_assert_eq(sb_log_start(l), sb_log_start(RL), "case %d", drop_at);
		cr_assert_eq(sb_log_next(l), sb_log_next(RL), "case %d", drop_at);
		for (uint64_t off = sb_log_start(l); off < sb_log_next(l); off++)
			cr_assert_eq(ut_check(l, off, ut_len(off, SEED, 1, 400), SEED), 0, "case %d, record %llu",
				     drop_at, (unsigned long long)off);
		cr_assert_eq(sb_store_close(s), 0);
	}
	cr_assert_eq(sb_store_close(w), 0);
}

/*
 * Damage that leaves a read-only open no segment to read (a bad header in
 * the first segment, with or without proof that it was synced; every
 * segment file gone; a topic directory without any) must refuse that topic
 * alone, with a message: `streambus dump` and `stat` of the whole LOG_DIR,
 * and a read-only mount, failed instead (the store's open returned
 * -ENOENT). Found by tools/damage (a batch of damaged topics dumped at once).
 */
static int count_refused(void *arg, const char *name, int err, const char *msg)
{
	(void)err;
	cr_assert_str_eq(name, "bad");
	cr_assert_gt(strlen(msg), 0, "a refused topic without a message");
	(*(int *)arg)++;
	return 0;
}

Test(readonly, no_segment_left_refuses_that_topic_alone)
{
	uint64_t r = 0x9e3779b97f4a7c15ull;

	for (int round = 0; round < 16; round++) {
		int kind = round % 4;
		sb_log_config c;
		sb_store *s = NULL;
		sb_log *l = NULL;
		char path[4096];
		int refused = 0;

		r = r * 6364136223846793005ull + 1442695040888963407ull;
		ut_cfg(&c, 4096, SB_SYNC_NEVER);
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		cr_assert_not_null(l = ut_topic(s, "good"));
		cr_assert_eq(ut_append_n(l, 40, SEED, 1, 400), 0);
		cr_assert_not_null(l = ut_topic(s, "bad"));
		cr_assert_eq(ut_append_n(l, 1 + (r >> 40) % 40, SEED, 1, 400), 0);
		cr_assert_eq(sb_store_close(s), 0);

		ut_topic_path(&env, "bad", "00000000000000000000.seg", path, sizeof path);
		if (kind == 0 || kind == 1) {
			/* a bad header in the first segment: after a clean close
			 * (proof), or with no proof of a sync at all */
			cr_assert_eq(uf_flip_byte(path, (off_t)((r >> 20) % SB_SEG_HDR), (uint8_t)(1 + (r >> 8) % 255)), 0);
			if (kind == 1) {
				char dir[4096];
				ut_topic_path(&env, "bad", NULL, dir, sizeof dir);
				uf_remove_suffix(dir, SB_IDX_SUFFIX);
				uf_remove(ut_topic_path(&env, "bad", SB_CLEAN_NAME, path, sizeof path));
			}
		} else {
			/* every segment gone (meta stays), or none ever made */
			char dir[4096];
			ut_topic_path(&env, "bad", NULL, dir, sizeof dir);
			uf_remove_suffix(dir, SB_SEG_SUFFIX);
			uf_remove_suffix(dir, SB_IDX_SUFFIX);
			if (kind == 3)
				cr_assert_eq(uf_rmrf(dir) == 0 && mkdir(dir, 0755) == 0, 1);
		}

		cr_assert_eq(ut_open_ro(env.store, &c, &s), 0, "round %d (kind %d): the read-only open failed", round, kind);
		cr_assert_eq(sb_store_get(s, "good", &l), 0);
		cr_assert_eq(sb_log_next(l), 40);
		for (uint64_t off = 0; off < 40; off++)
			cr_assert_eq(ut_check(l, off, ut_len(off, SEED, 1, 400), SEED), 0);
		cr_assert_eq(sb_store_get(s, "bad", &l), SB_ECORRUPT, "round %d (kind %d)", round, kind);
		cr_assert_eq(sb_store_list_refused(s, count_refused, &refused), 0);
		cr_assert_eq(refused, 1);
		cr_assert_eq(sb_store_close(s), 0);

		/* a read-write open (a mount) opens the good topic all the same */
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		cr_assert_eq(sb_store_get(s, "good", &l), 0);
		cr_assert_eq(sb_log_next(l), 40);
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(uf_rmrf(env.store), 0);
	}
}
