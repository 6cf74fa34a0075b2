/*
 * test_store_concurrency.c - readers and appenders at once (the seed's
 * engine returned wrong records to concurrent readers), a stream reader
 * following the tail, the start moving under readers, and group commit.
 * Every payload names itself (its first 8 bytes are its id, its length and
 * bytes follow from the id), so a reader can check any record on its own.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;

#define SEED 11
#define MAXREC 200000
#define LEN(id) ut_len((id), SEED, 8, 1500)

static _Atomic uint64_t ids[MAXREC]; /* offset -> id + 1, once its append returned */
static atomic_int done;
static atomic_ulong bad, reads;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "conc"), 0);
	S = NULL;
	ut_cfg(&C, 64 * 1024, SB_SYNC_NEVER);
	C.index_interval_bytes = 1024;
	for (size_t i = 0; i < MAXREC; i++)
		atomic_store(&ids[i], 0);
	atomic_store(&done, 0);
	atomic_store(&bad, 0);
	atomic_store(&reads, 0);
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(concurrency, .init = setup, .fini = teardown, .timeout = 240);

static void open_store(const sb_io *io)
{
	cr_assert_eq(ut_open(env.store, &C, io, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

static int append_id(uint64_t id, uint64_t *off)
{
	uint8_t buf[1600];
	size_t len = LEN(id);
	ut_fill(buf, len, id, SEED);
	sb_record_in r = {.key = &id, .key_len = 8, .value = buf, .value_len = (uint32_t)len};
	return sb_log_append(L, &r, 1, off);
}

struct appender {
	int tid;
	int n;
	int batch; /* records per call */
	int rc;
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	for (int s = 0; s < a->n;) {
		uint64_t id = ((uint64_t)(a->tid + 1) << 32) | (uint64_t)s, off;
		if (a->batch > 1) {
			uint8_t buf[8][1600];
			sb_record_in r[8];
			int k = a->batch;
			for (int j = 0; j < k; j++) {
				uint64_t jd = id + (uint64_t)j;
				ut_fill(buf[j], LEN(jd), jd, SEED);
				r[j] = (sb_record_in){.value = buf[j], .value_len = (uint32_t)LEN(jd)};
			}
			if ((a->rc = sb_log_append(L, r, (size_t)k, &off)))
				break;
			for (int j = 0; j < k && off + (uint64_t)j < MAXREC; j++)
				atomic_store_explicit(&ids[off + (uint64_t)j], id + (uint64_t)j + 1,
						      memory_order_release);
			s += k;
		} else {
			if ((a->rc = append_id(id, &off)))
				break;
			if (off < MAXREC)
				atomic_store_explicit(&ids[off], id + 1, memory_order_release);
			s++;
		}
	}
	return NULL;
}

/* Read record `off` and check it names itself and matches the map. */
static void check_one(uint64_t off)
{
	uint8_t buf[2048], sbuf[2048];
	size_t n = 0, m = 0;
	sb_record_info in;
	int rc = sb_log_read(L, off, 0, buf, sizeof(buf), &n, &in);
	atomic_fetch_add(&reads, 1);
	if (rc == -ENOENT && off < sb_log_start(L))
		return; /* the start moved past it */
	if (rc) {
		fprintf(stderr, "read %llu: %s\n", (unsigned long long)off, sb_strerror(rc));
		atomic_fetch_add(&bad, 1);
		return;
	}
	uint64_t id;
	memcpy(&id, buf, 8);
	uint64_t want = atomic_load_explicit(&ids[off], memory_order_acquire);
	if (in.offset != off || n < 8 || n != LEN(id) || in.value_len != n ||
	    !ut_match(buf, n, id, SEED) || (want && want - 1 != id)) {
		fprintf(stderr, "offset %llu: wrong record (id %llx, len %zu, map %llx)\n",
			(unsigned long long)off, (unsigned long long)id, n,
			(unsigned long long)want);
		atomic_fetch_add(&bad, 1);
		return;
	}
	/* the same bytes through the stream view */
	rc = sb_log_read_stream(L, in.stream_pos, sbuf, n, &m);
	if (rc == -ENOENT && off < sb_log_start(L))
		return;
	if (rc || m == 0 || m > n || memcmp(sbuf, buf, m)) {
		fprintf(stderr, "stream at %llu (offset %llu): rc %d, %zu bytes\n",
			(unsigned long long)in.stream_pos, (unsigned long long)off, rc, m);
		atomic_fetch_add(&bad, 1);
	}
}

static void *reader_main(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 1;
	while (!atomic_load(&done)) {
		uint64_t start = sb_log_start(L), next = sb_log_next(L);
		if (next <= start)
			continue;
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off = (rng >> 33) % 4 == 0 ? next - 1 : start + (rng >> 20) % (next - start);
		check_one(off);
	}
	return NULL;
}

static void run(int nappenders, int per, int batch, int nreaders, void *(*extra)(void *))
{
	pthread_t at[4], rt[8], xt;
	struct appender a[4];
	for (int i = 0; i < nreaders; i++)
		cr_assert_eq(pthread_create(&rt[i], NULL, reader_main, (void *)(uintptr_t)(i + 1)), 0);
	if (extra)
		cr_assert_eq(pthread_create(&xt, NULL, extra, NULL), 0);
	for (int i = 0; i < nappenders; i++) {
		a[i] = (struct appender){.tid = i, .n = per, .batch = batch};
		cr_assert_eq(pthread_create(&at[i], NULL, appender_main, &a[i]), 0);
	}
	for (int i = 0; i < nappenders; i++)
		pthread_join(at[i], NULL);
	atomic_store(&done, 1);
	for (int i = 0; i < nreaders; i++)
		pthread_join(rt[i], NULL);
	if (extra)
		pthread_join(xt, NULL);
	for (int i = 0; i < nappenders; i++)
		cr_assert_eq(a[i].rc, 0, "appender %d: %s", i, sb_strerror(a[i].rc));
	cr_expect_eq(atomic_load(&bad), 0, "%lu bad reads of %lu", atomic_load(&bad),
		     atomic_load(&reads));
	cr_expect_gt(atomic_load(&reads), 0);
	uint64_t total = (uint64_t)nappenders * (uint64_t)per;
	cr_assert_eq(sb_log_next(L), total);
	/* every id exactly once */
	uint8_t *seen = calloc((size_t)nappenders, (size_t)per);
	for (uint64_t o = sb_log_start(L); o < total; o++) {
		uint64_t v = atomic_load(&ids[o]);
		cr_assert_neq(v, 0, "offset %llu never reported", (unsigned long long)o);
		uint64_t id = v - 1, t = (id >> 32) - 1, s = id & 0xffffffffu;
		cr_assert(t < (uint64_t)nappenders && s < (uint64_t)per);
		cr_assert_eq(seen[t * (uint64_t)per + s]++, 0, "id %llx twice", (unsigned long long)id);
		check_one(o);
	}
	free(seen);
	cr_expect_eq(atomic_load(&bad), 0);
}

Test(concurrency, four_readers_one_appender)
{
	open_store(NULL);
	run(1, 12000, 1, 4, NULL);
}

Test(concurrency, four_readers_two_appenders)
{
	open_store(NULL);
	run(2, 6000, 1, 4, NULL);
}

Test(concurrency, four_readers_two_batch_appenders_pwrite_io)
{
	fio *f = fio_new(env.stash);
	fio_set_sync(f, 0, 0);
	open_store(fio_io(f));
	run(2, 8000, 4, 4, NULL);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	fio_free(f);
	open_store(NULL);
	for (uint64_t o = 0; o < 16000; o++)
		check_one(o);
	cr_expect_eq(atomic_load(&bad), 0);
}

static void *mover_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		uint64_t next = sb_log_next(L), start = sb_log_start(L);
		int rc;
		if (next > start + 3000 && (rc = sb_log_delete_before(L, next - 2000))) {
			fprintf(stderr, "delete_before: %s\n", sb_strerror(rc));
			atomic_fetch_add(&bad, 1);
		}
		sched_yield();
	}
	return NULL;
}

Test(concurrency, readers_while_the_start_moves)
{
	open_store(NULL);
	run(1, 15000, 1, 4, mover_main);
	cr_expect_gt(sb_log_start(L), 0);
}

/* A tail -f: reads the stream from 0 in chunks while one thread appends. */
static void *stream_reader_main(void *arg)
{
	(void)arg;
	uint8_t chunk[3000], rec[1600];
	uint64_t pos = 0, off = 0, in_rec = 0;
	ut_fill(rec, LEN(((uint64_t)1 << 32) | 0), ((uint64_t)1 << 32) | 0, SEED);
	for (;;) {
		int fin = atomic_load(&done);
		size_t n = 0;
		int rc = sb_log_read_stream(L, pos, chunk, sizeof(chunk), &n);
		if (rc) {
			atomic_fetch_add(&bad, 1);
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t id = ((uint64_t)1 << 32) | off; /* one appender: seq == offset */
			if (chunk[i] != rec[in_rec]) {
				fprintf(stderr, "stream byte %llu (offset %llu +%llu) differs\n",
					(unsigned long long)(pos + i), (unsigned long long)off,
					(unsigned long long)in_rec);
				atomic_fetch_add(&bad, 1);
				return NULL;
			}
			if (++in_rec == LEN(id)) {
				off++;
				in_rec = 0;
				uint64_t nid = ((uint64_t)1 << 32) | off;
				ut_fill(rec, LEN(nid), nid, SEED);
			}
		}
		pos += n;
		atomic_fetch_add(&reads, 1);
		if (fin && n == 0)
			break;
	}
	if (pos != sb_log_stream_end(L))
		atomic_fetch_add(&bad, 1);
	return NULL;
}

Test(concurrency, stream_reader_follows_the_tail)
{
	open_store(NULL);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, stream_reader_main, NULL), 0);
	run(1, 20000, 1, 2, NULL);
	atomic_store(&done, 1);
	pthread_join(t, NULL);
	cr_expect_eq(atomic_load(&bad), 0);
}

struct gc_arg {
	int n, rc;
};

static void *gc_main(void *arg)
{
	struct gc_arg *g = arg;
	for (int i = 0; i < g->n && !g->rc; i++)
		g->rc = append_id((uint64_t)i, NULL);
	return NULL;
}

Test(concurrency, group_commit_syncs_fewer_times_than_appends)
{
	fio *f = fio_new(env.stash);
	fio_set_sync(f, 0, 2000); /* a 2 ms fdatasync */
	C.sync = SB_SYNC_ALWAYS;
	C.segment_bytes = 64 << 20;
	open_store(fio_io(f));
	sb_log_stats st0, st;
	cr_assert_eq(sb_log_get_stats(L, &st0), 0);
	pthread_t t[8];
	struct gc_arg g[8];
	for (int i = 0; i < 8; i++) {
		g[i] = (struct gc_arg){.n = 40};
		cr_assert_eq(pthread_create(&t[i], NULL, gc_main, &g[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(g[i].rc, 0);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.next, 320);
	cr_expect_eq(st.synced_appends - st0.synced_appends, 320, "every append covered by a sync");
	cr_expect_lt(st.syncs - st0.syncs, 320, "%llu syncs for 320 appends: no group commit",
		     (unsigned long long)(st.syncs - st0.syncs));
	cr_expect_gt(st.syncs - st0.syncs, 0);
	cr_expect_eq(fio_pending_data(f), 0, "unsynced writes after every append returned");
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	fio_free(f);
}

/* sync=interval: the store's flusher makes appends durable on its own. */
Test(concurrency, interval_flusher_syncs_without_being_asked)
{
	fio *f = fio_new(env.stash);
	fio_set_sync(f, 0, 0);
	sb_store_options o;
	sb_store_options_default(&o);
	o.io = fio_io(f);
	o.defaults = C;
	o.defaults.sync = SB_SYNC_INTERVAL;
	o.defaults.sync_interval_ms = 20;
	o.no_flusher = 0;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
	for (uint64_t i = 0; i < 5; i++)
		cr_assert_eq(append_id(i, NULL), 0);
	/* a bound on the wait, not a timing assertion: 20 ms expected, 20 s allowed */
	uint64_t t0 = ut_now_ms();
	while (fio_pending_data(f) && ut_now_ms() - t0 < 20000)
		usleep(5000);
	cr_expect_eq(fio_pending_data(f), 0, "appends never synced by the flusher");
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_gt(st.syncs, 0);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	fio_free(f);
}

static void *syncer_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&done)) {
		int rc = sb_log_sync(L);
		if (rc) {
			fprintf(stderr, "sb_log_sync: %s\n", sb_strerror(rc));
			atomic_fetch_add(&bad, 1);
		}
		uint64_t next = sb_log_next(L), start = sb_log_start(L);
		if (next > start + 1500 && (rc = sb_log_delete_before(L, next - 1000))) {
			fprintf(stderr, "delete_before: %s\n", sb_strerror(rc));
			atomic_fetch_add(&bad, 1);
		}
		sched_yield();
	}
	return NULL;
}

/* Group commit, segment rolls, explicit syncs and a moving start at once
 * (about a second of work; a deadlock ends in the timeout). */
Test(concurrency, always_appenders_syncs_and_deletes_together, .timeout = 30)
{
	fio *f = fio_new(env.stash);
	fio_set_sync(f, 0, 300);
	C.sync = SB_SYNC_ALWAYS;
	C.segment_bytes = 16 * 1024;
	open_store(fio_io(f));
	run(4, 800, 1, 2, syncer_main);
	cr_expect_eq(fio_pending_data(f), 0);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	fio_free(f);
}

static atomic_int created, exists;

static void *creator_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		char name[16];
		snprintf(name, sizeof(name), "topic%02d", i);
		int rc = sb_store_create(S, name);
		if (rc == 0)
			atomic_fetch_add(&created, 1);
		else if (rc == -EEXIST)
			atomic_fetch_add(&exists, 1);
		sb_log *l;
		if (sb_store_get(S, name, &l) == 0) {
			sb_record_in r = {.value = name, .value_len = (uint32_t)strlen(name)};
			if (sb_log_append(l, &r, 1, NULL))
				atomic_fetch_add(&bad, 1);
		} else {
			atomic_fetch_add(&bad, 1);
		}
	}
	return NULL;
}

static int count_topic(void *arg, const char *name, sb_log *log)
{
	(void)name;
	(void)log;
	++*(int *)arg;
	return 0;
}

Test(concurrency, racing_creates_make_each_topic_once)
{
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, creator_main, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(atomic_load(&created), 20);
	cr_expect_eq(atomic_load(&exists), 60);
	cr_expect_eq(atomic_load(&bad), 0, "a created topic could not be found or appended to");
	int n = 0;
	cr_assert_eq(sb_store_list(S, count_topic, &n), 0);
	cr_expect_eq(n, 20);
	sb_log *l;
	cr_assert_eq(sb_store_get(S, "topic07", &l), 0);
	cr_expect_eq(sb_log_next(l), 4, "each of the 4 threads appended once");
}
