/*
 * test_store_compact_views.c - a reader's view of the stream is not
 * disturbed by compaction (SPEC §2; store/log_view.c): through a view,
 * every position reads the bytes it read when the view was taken, and
 * past them the bytes appended since, whatever compaction rounds ran in
 * between, while the same positions read live name other bytes.
 *   - generated interleavings (one thread): appends of keyed records (some
 *     tombstones) and unkeyed ones, syncs and compaction rounds, views
 *     taken, read at random places and closed in random order;
 *   - a slow reader thread reading a view from its start in small pieces
 *     while the main thread appends and compacts: what it read equals a
 *     copy of the stream taken when it opened, then the appended bytes;
 *   - records removed meanwhile (sb_log_delete_before) read as -ENOENT
 *     through a view too; a view outlives a removed topic's reads.
 * SB_COMPACT_SEEDS: interleavings (default 2).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util_faultio.h"
#include "util_store.h"

UT_ENV_FIXTURE("cviews")

TestSuite(cviews, .init = ut_env_setup, .fini = ut_env_teardown);

/* The real files, fdatasync a no-op: what the store does, not the disk. */
static fio *quick_io(void)
{
	fio *f = fio_new(env.stash);
	cr_assert(f);
	fio_set_sync(f, 0, 0);
	return f;
}

#define T0 1700000000000000000LL
#define NOW (T0 + (INT64_C(1) << 50)) /* every tombstone past its retention */
#define NKEYS 12
#define APP_MAX (4u << 20)

/* Every payload byte appended, at the stream position it was given (the
 * log starts at 0): positions at or past a view's end never move. */
static uint8_t app[APP_MAX];
static uint64_t app_len;

static sb_log_config vcfg(void)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.cleanup = SB_CLEANUP_COMPACT;
	c.delete_retention_ms = 0; /* tombstones go at the next round */
	c.index_interval_bytes = 256;
	return c;
}

/* Append n records: 70% keyed (of few keys: most are superseded soon), a
 * tenth of those tombstones. */
static void append_some(sb_log *l, uint64_t *seed, unsigned n)
{
	uint8_t val[160];
	char k[16];

	for (unsigned j = 0; j < n; j++) {
		uint64_t off = sb_log_next(l);
		unsigned r = (unsigned)(ut_rnd(seed) % 100);
		int key = r < 70 ? (int)(ut_rnd(seed) % NKEYS) : -1;
		int tomb = key >= 0 && r < 7;
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(off, 3, 1, sizeof(val));
		cr_assert_lt(app_len + len, (uint64_t)APP_MAX);
		ut_fill(val, len, off, 3);
		sb_record_in in = {.key = k, .key_len = key >= 0 ? (uint32_t)sprintf(k, "k%d", key) : 0,
				   .value = val, .value_len = len, .flags = tomb ? SB_RECORD_TOMBSTONE : 0,
				   .timestamp_ns = T0 + (int64_t)off * 1000000};
		cr_assert_eq(sb_log_stream_end(l), app_len);
		memcpy(app + app_len, val, len);
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		app_len += len;
	}
}

/* A view and what it must read: snap = the stream [base, end) when taken. */
typedef struct tview {
	sb_log_view *v;
	uint64_t base, end;
	uint8_t *snap;
} tview;

static uint8_t want_at(const tview *t, uint64_t p)
{
	return p < t->end ? t->snap[p - t->base] : app[p];
}

static void take(sb_log *l, tview *t)
{
	cr_assert_eq(sb_log_view_open(l, &t->v), 0);
	cr_assert(sb_log_view_current(l, t->v));
	t->base = sb_log_stream_start(l);
	t->end = sb_log_stream_end(l);
	cr_assert_eq(t->end, app_len);
	t->snap = malloc(t->end - t->base + 1);
	cr_assert(t->snap);
	for (uint64_t p = t->base; p < t->end;) {
		size_t n = 0;
		cr_assert_eq(sb_log_read_stream(l, p, t->snap + (p - t->base), (size_t)(t->end - p), &n), 0);
		cr_assert_gt(n, 0);
		p += n;
	}
}

/* Read [p, p + len) through the view (in pieces as short reads come) and
 * compare; *moved counts positions whose live bytes differ now. */
static void check_range(sb_log *l, const tview *t, uint64_t p, size_t len, uint64_t *moved)
{
	static uint8_t got[8192], live[8192];
	uint64_t end = sb_log_stream_end(l);

	if (p + len > end)
		len = (size_t)(end - p);
	size_t done = 0;
	while (done < len) {
		size_t n = 0;
		int rc = sb_log_view_read(l, t->v, p + done, got + done, len - done, &n);
		cr_assert_eq(rc, 0, "view read at %llu: %s", (unsigned long long)(p + done), sb_strerror(rc));
		cr_assert_gt(n, 0, "view read at %llu: nothing before the end", (unsigned long long)(p + done));
		done += n;
	}
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(got[i], want_at(t, p + i), "view of base %llu: byte at %llu differs",
			     (unsigned long long)t->base, (unsigned long long)(p + i));
	size_t n = 0;
	if (moved && p >= sb_log_stream_start(l) && sb_log_read_stream(l, p, live, len, &n) == 0 &&
	    memcmp(live, got, n))
		(*moved)++;
}

static void drop(tview *t)
{
	sb_log_view_close(t->v);
	free(t->snap);
	t->v = NULL;
}

static unsigned seeds(void)
{
	const char *e = getenv("SB_COMPACT_SEEDS");
	return e ? (unsigned)atoi(e) : 2;
}

Test(cviews, generated_interleavings_read_what_they_would_have)
{
	uint64_t moved = 0, rounds_moved = 0;

	for (unsigned sd = 0; sd < seeds(); sd++) {
		sb_log_config c = vcfg();
		sb_store *s;
		uint64_t seed = 0x9e3779b97f4a7c15ULL + sd * 7919;
		tview tv[6] = {0};
		char dir[4200];

		snprintf(dir, sizeof(dir), "%s/s%u", env.root, sd);
		cr_assert_eq(mkdir(dir, 0755), 0);
		fio *f = quick_io();
		cr_assert_eq(ut_open(dir, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		app_len = 0;
		append_some(l, &seed, 60);
		for (unsigned step = 0; step < 150; step++) {
			unsigned op = (unsigned)(ut_rnd(&seed) % 100);
			tview *t = &tv[ut_rnd(&seed) % 6];
			if (op < 35) {
				append_some(l, &seed, 1 + (unsigned)(ut_rnd(&seed) % 20));
			} else if (op < 47) {
				sb_compact_stats st;
				uint64_t start = sb_log_stream_start(l);
				cr_assert_eq(sb_log_sync(l), 0);
				cr_assert_eq(sb_log_compact(l, NOW, &st), 0);
				rounds_moved += sb_log_stream_start(l) != start;
			} else if (op < 62) {
				if (t->v)
					drop(t);
				take(l, t);
			} else if (op < 68) {
				if (t->v) {
					check_range(l, t, t->base, 8192, &moved);
					drop(t);
				}
			} else if (t->v) {
				uint64_t end = sb_log_stream_end(l);
				uint64_t p = t->base + ut_rnd(&seed) % (end - t->base + 1);
				check_range(l, t, p, 1 + (size_t)(ut_rnd(&seed) % 3000), &moved);
			}
		}
		for (int i = 0; i < 6; i++)
			if (tv[i].v) {
				uint64_t end = sb_log_stream_end(l);
				for (uint64_t p = tv[i].base; p < end; p += 8192)
					check_range(l, &tv[i], p, 8192, &moved);
				drop(&tv[i]);
			}
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
	/* the case was there: rounds moved positions that views then read */
	cr_assert_gt(rounds_moved, 0);
	cr_assert_gt(moved, 0, "no view read a position a round had moved");
}

/* ---- a slow reader while rounds run ---------------------------------------- */

typedef struct slow {
	sb_log *l;
	tview *t;
	_Atomic int stop;
	_Atomic unsigned rounds; /* the main thread's rounds so far */
	uint8_t *got;
	uint64_t n;         /* bytes read from t->base on */
	int err;
} slow;

/* One small piece per round (at a random moment of it: the rounds run
 * meanwhile), so that the reader stays in the part the rounds rewrite;
 * after the last one, the rest to the end. */
static void *slow_main(void *arg)
{
	slow *r = arg;
	uint64_t p = r->t->base, seed = 99;
	unsigned seen = 0;

	for (;;) {
		int stopping = atomic_load(&r->stop);
		size_t n = 0;
		size_t want = stopping ? 4096 : 1 + (size_t)(ut_rnd(&seed) % 150);
		int rc = sb_log_view_read(r->l, r->t->v, p, r->got + (p - r->t->base), want, &n);
		if (rc) {
			r->err = rc;
			break;
		}
		p += n;
		if (!n && stopping)
			break; /* read to the end after the last append */
		while (!stopping && !atomic_load(&r->stop) && atomic_load(&r->rounds) == seen)
			sched_yield();
		seen = atomic_load(&r->rounds);
	}
	r->n = p - r->t->base;
	return NULL;
}

Test(cviews, a_slow_reader_while_rounds_run)
{
	sb_log_config c = vcfg();
	sb_store *s;
	uint64_t seed = 4242;
	tview t = {0};
	pthread_t th;

	fio *f = quick_io();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	app_len = 0;
	append_some(l, &seed, 300);
	take(l, &t);
	slow r = {.l = l, .t = &t, .got = malloc(APP_MAX)};
	cr_assert(r.got);
	cr_assert_eq(pthread_create(&th, NULL, slow_main, &r), 0);
	unsigned moved = 0;
	for (int i = 0; i < 20; i++) {
		sb_compact_stats st;
		uint64_t start = sb_log_stream_start(l);
		append_some(l, &seed, 15);
		cr_assert_eq(sb_log_sync(l), 0);
		cr_assert_eq(sb_log_compact(l, NOW, &st), 0);
		moved += sb_log_stream_start(l) != start;
		atomic_fetch_add(&r.rounds, 1);
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	cr_assert_eq(r.err, 0, "the reader: %s", sb_strerror(r.err));
	cr_assert_eq(r.n, app_len - t.base, "read %llu of %llu bytes", (unsigned long long)r.n,
		     (unsigned long long)(app_len - t.base));
	for (uint64_t i = 0; i < r.n; i++)
		cr_assert_eq(r.got[i], want_at(&t, t.base + i), "byte %llu of the reader's", (unsigned long long)i);
	cr_assert_gt(moved, 0, "no round moved the stream");
	cr_assert(!sb_log_view_current(l, t.v));
	drop(&t);
	free(r.got);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

/* Records removed after the view was taken read as removed through it. */
Test(cviews, records_removed_since_are_gone_through_a_view)
{
	sb_log_config c = vcfg();
	sb_store *s;
	uint64_t seed = 777;
	tview t = {0};

	fio *f = quick_io();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	app_len = 0;
	append_some(l, &seed, 300);
	take(l, &t);
	append_some(l, &seed, 100);
	cr_assert_eq(sb_log_sync(l), 0);
	sb_compact_stats st;
	cr_assert_eq(sb_log_compact(l, NOW, &st), 0);
	cr_assert(!sb_log_view_current(l, t.v));
	uint8_t b[64];
	size_t n = 0;
	cr_assert_eq(sb_log_view_read(l, t.v, t.base, b, sizeof(b), &n), 0);
	cr_assert(n > 0 && !memcmp(b, t.snap, n));
	/* drop the first half of the offsets: the view's start goes too */
	uint64_t cut = sb_log_next(l) / 2;
	cr_assert_eq(sb_log_delete_before(l, cut), 0);
	cr_assert_eq(sb_log_view_read(l, t.v, t.base, b, sizeof(b), &n), -ENOENT);
	/* the tail still reads as it was appended */
	check_range(l, &t, app_len - 500, 500, NULL);
	drop(&t);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

/* Append n versions of key k0 and k1 in turn (150 bytes each): every
 * record before them is superseded. */
static void append_versions(sb_log *l, unsigned n)
{
	enum { VLEN = 150 };
	uint8_t v[VLEN];
	char k[8];

	for (unsigned j = 0; j < n; j++) {
		uint64_t off = sb_log_next(l);
		ut_fill(v, VLEN, off, 5);
		sb_record_in in = {.key = k, .key_len = (uint32_t)sprintf(k, "k%u", j % 2),
				   .value = v, .value_len = VLEN,
				   .timestamp_ns = T0 + (int64_t)off * 1000000};
		cr_assert_lt(app_len + VLEN, (uint64_t)APP_MAX);
		memcpy(app + app_len, v, VLEN);
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		app_len += VLEN;
	}
}

/* Rounds that leave the head segments with no record move the log's start
 * past them, but not while a view is open: the view still reads those
 * records in the segments the rounds replaced (before, they read as
 * removed, -ENOENT: a slow .since or .log reader got ENODATA, t_compact).
 * Once the views are closed, the next round drops them. */
Test(cviews, an_empty_head_stays_while_a_view_may_read_it)
{
	sb_log_config c = vcfg();
	sb_store *s;
	sb_compact_stats st;
	tview t = {0};

	fio *f = quick_io();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	app_len = 0;
	append_versions(l, 60); /* two sealed segments and more */
	take(l, &t);
	uint64_t start0 = sb_log_start(l);
	for (int round = 0; round < 4; round++) {
		append_versions(l, 60); /* all before superseded */
		cr_assert_eq(sb_log_sync(l), 0);
		cr_assert_eq(sb_log_compact(l, NOW, &st), 0);
		for (uint64_t p = t.base; p < t.end; p += 4096) /* (8 KiB at most a call) */
			check_range(l, &t, p, (size_t)(t.end - p < 4096 ? t.end - p : 4096), NULL);
		cr_assert_eq(sb_log_start(l), start0, "round %d moved the start with a view open", round);
	}
	cr_assert(!sb_log_view_current(l, t.v));
	drop(&t);
	append_versions(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, NOW, &st), 0);
	cr_assert_gt(sb_log_start(l), start0, "no view open: the empty head goes");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}
