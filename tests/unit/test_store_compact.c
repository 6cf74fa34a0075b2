/*
 * test_store_compact.c - cleanup = compact (store/log_compact.c): generated
 * workloads of random keys, tombstones and unkeyed records over several
 * segments, compacted, against a model: exactly the records the rule keeps
 * are readable (the others ENOENT), at their offsets, the stream is the
 * kept payloads in order, every key reads its latest value, tombstones go
 * after delete_retention_ms (the clock is the call's now_ns), verify is
 * clean, after a reopen too; readers and a writer busy during compaction;
 * a crash (power loss or kill -9) at every step of the swap (the crash
 * simulator); compression and compaction leave each other's segments
 * alone, and nothing is lost whichever runs first; a copy of the
 * compacted directory (a backup with gaps) opens and verifies; a gap in a
 * segment not marked compacted stays damage.
 * SB_COMPACT_SEEDS: workloads per generated test (default 2);
 * SB_COMPACT_CRASH_STEPS: crash points to try (default a stride of them).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "log.h"
#include "util_faultio.h"
#include "util_store.h"

/* Under ThreadSanitizer (tools/test's TSan stage runs this program for
 * its readers and writer) the single-threaded crash test tries one point
 * of each kind. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

UT_ENV_FIXTURE("compact")

TestSuite(compact, .init = ut_env_setup, .fini = ut_env_teardown);

#define MAXREC 6000
#define NKEYS 40
#define T0 1700000000000000000LL /* record i's time: T0 + i ms */
#define RET_MS 1000              /* delete_retention_ms */

/* The model: every record appended. */
typedef struct mrec {
	int key;   /* -1: none */
	int tomb;
	uint32_t len;
	int64_t ts;
} mrec;
static mrec M[MAXREC];
static uint64_t MN;             /* records in the model (offsets 0..MN-1) */
static int gone[MAXREC];         /* compacted away (the model's verdict) */

static size_t mkey(int i, char *buf)
{
	return (size_t)sprintf(buf, "key-%03d", i);
}

static sb_log_config ccfg(void)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.cleanup = SB_CLEANUP_COMPACT;
	c.delete_retention_ms = RET_MS;
	c.index_interval_bytes = 512;
	return c;
}

/* Append n random records: keyed (some tombstones) and unkeyed. */
static void workload(sb_log *l, uint64_t *seed, unsigned n, int nkeys)
{
	char k[32];
	uint8_t val[300];

	for (unsigned j = 0; j < n && MN < MAXREC; j++) {
		uint64_t off = sb_log_next(l);
		cr_assert_eq(off, MN);
		unsigned r = (unsigned)(ut_rnd(seed) % 100);
		int key = r < 80 ? (int)(ut_rnd(seed) % (uint64_t)nkeys) : -1;
		int tomb = key >= 0 && r < 12;
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(off, 7, 8, 200);
		ut_fill(val, len, off, 7);
		sb_record_in in = {.key = k, .key_len = key >= 0 ? (uint32_t)mkey(key, k) : 0, .value = val,
				   .value_len = len, .flags = tomb ? SB_REC_TOMBSTONE : 0,
				   .timestamp_ns = T0 + (int64_t)off * 1000000};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		M[MN] = (mrec){key, tomb, len, in.timestamp_ns};
		MN++;
	}
}

/* Append n unkeyed records: a segment or two of them after the keyed
 * ones puts those below the compaction's horizon (the newest segment). */
static void unkeyed(sb_log *l, unsigned n)
{
	uint8_t val[300];

	for (unsigned j = 0; j < n && MN < MAXREC; j++) {
		uint64_t off = sb_log_next(l);
		uint32_t len = (uint32_t)ut_len(off, 7, 8, 200);
		ut_fill(val, len, off, 7);
		sb_record_in in = {.value = val, .value_len = len, .timestamp_ns = T0 + (int64_t)off * 1000000};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		M[MN++] = (mrec){-1, 0, len, in.timestamp_ns};
	}
}

/* The latest offset of each key in the model (-1: none). */
static void latest(int64_t *lat)
{
	for (int i = 0; i < NKEYS; i++)
		lat[i] = -1;
	for (uint64_t o = 0; o < MN; o++)
		if (M[o].key >= 0)
			lat[M[o].key] = (int64_t)o;
}

/* What a compaction at now_ns with that horizon removes (the rule of
 * log_compact.c): a keyed record below the horizon whose key has a later
 * record below the horizon too, or a tombstone, latest, older than the
 * retention. */
static void model_compact(const sb_compact_stats *st, int64_t now_ns)
{
	int64_t lat[NKEYS];
	uint64_t horizon = st->horizon;

	latest(lat);
	for (uint64_t o = 0; o < st->end && o < MN; o++) {
		int k = M[o].key;
		if (k < 0 || gone[o])
			continue;
		if ((uint64_t)lat[k] != o && (uint64_t)lat[k] < horizon)
			gone[o] = 1;
		if ((uint64_t)lat[k] == o && M[o].tomb && M[o].ts < now_ns - (int64_t)RET_MS * 1000000)
			gone[o] = 1;
	}
}

/* Everything readable as the model says: records, the stream, keys. */
static void check_log(sb_log *l, const char *when)
{
	uint8_t buf[400];
	size_t n;
	sb_record_info info;

	cr_assert_eq(sb_log_next(l), MN, "%s", when);
	for (uint64_t o = 0; o < MN; o++) {
		int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, &info);
		if (gone[o]) {
			cr_assert_eq(rc, -ENOENT, "%s: offset %llu should be gone: %s", when, (unsigned long long)o,
				     sb_strerror(rc));
			continue;
		}
		cr_assert_eq(rc, 0, "%s: offset %llu: %s", when, (unsigned long long)o, sb_strerror(rc));
		cr_assert_eq(info.offset, o);
		cr_assert_eq(n, M[o].len, "%s: offset %llu", when, (unsigned long long)o);
		cr_assert(ut_match(buf, n, o, 7), "%s: offset %llu", when, (unsigned long long)o);
	}
	/* what ls lists: the offsets that hold a record */
	uint64_t want_next = MN;
	for (uint64_t o = MN; o-- > 0;) {
		if (!gone[o])
			want_next = o;
		uint64_t found = UINT64_MAX;
		int rc = sb_log_next_present(l, o, &found);
		if (want_next == MN)
			cr_assert_eq(rc, -ENOENT, "%s: next_present(%llu)", when, (unsigned long long)o);
		else
			cr_assert(rc == 0 && found == want_next, "%s: next_present(%llu): %llu, want %llu", when,
				  (unsigned long long)o, (unsigned long long)found, (unsigned long long)want_next);
	}
	/* the stream: the kept payloads in offset order */
	static uint8_t want[MAXREC * 200], got[MAXREC * 200];
	size_t wl = 0;
	for (uint64_t o = 0; o < MN; o++)
		if (!gone[o]) {
			ut_fill(want + wl, M[o].len, o, 7);
			wl += M[o].len;
		}
	uint64_t pos = sb_log_stream_start(l), end = sb_log_stream_end(l);
	cr_assert_eq(end - pos, wl, "%s: stream of %llu bytes, %zu kept", when, (unsigned long long)(end - pos), wl);
	size_t gl = 0;
	while (pos < end) {
		size_t chunk = 777, nr = 0;
		int rc = sb_log_read_stream(l, pos, got + gl, chunk, &nr);
		cr_assert_eq(rc, 0, "%s: stream at %llu: %s", when, (unsigned long long)pos, sb_strerror(rc));
		cr_assert_gt(nr, 0);
		pos += nr;
		gl += nr;
	}
	cr_assert(!memcmp(want, got, wl), "%s: stream bytes", when);
	/* keys */
	int64_t lat[NKEYS];
	latest(lat);
	for (int i = 0; i < NKEYS; i++) {
		char k[32];
		int rc = sb_log_get_key(l, k, mkey(i, k), buf, sizeof(buf), &n, &info);
		if (lat[i] < 0 || M[lat[i]].tomb) {
			cr_assert_eq(rc, -ENOENT, "%s: key %d", when, i);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: key %d: %s", when, i, sb_strerror(rc));
		cr_assert_eq(info.offset, (uint64_t)lat[i]);
		cr_assert(ut_match(buf, n, info.offset, 7));
	}
	uint64_t wrong = 1;
	cr_assert_eq(sb_log_verify_keys(l, NULL, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0, "%s: key index disagrees with the log", when);
}

static void verify_clean(const char *dir, const char *when)
{
	sb_verify_result res;
	char td[4200];

	snprintf(td, sizeof(td), "%s/t", dir);
	cr_assert_eq(sb_verify_topic(td, NULL, NULL, NULL, &res), 0);
	cr_assert_eq(sb_verify_damage(&res) - res.problems[SB_VERIFY_INDEX], 0, "%s: verify finds damage (%llu)",
		     when, (unsigned long long)sb_verify_damage(&res));
}

/* An io table over the real files whose fdatasync is a no-op: these tests
 * check what the store does, not the disk (the crash test checks that). */
static fio *quick_io(void)
{
	fio *f = fio_new(env.stash);
	cr_assert(f);
	fio_set_sync(f, 0, 0);
	return f;
}

static void model_reset(void)
{
	MN = 0;
	memset(gone, 0, sizeof(gone));
}

static unsigned seeds(void)
{
	const char *e = getenv("SB_COMPACT_SEEDS");
	return e ? (unsigned)atoi(e) : 2;
}

/* Random workloads, two rounds each (the second after the tombstones'
 * retention), reopened in between: exactly the model's records stay. */
Test(compact, keeps_exactly_the_latest_per_key)
{
	sb_log_config c = ccfg();

	for (unsigned si = 0; si < seeds(); si++) {
		ut_env_fini(&env);
		cr_assert_eq(ut_env_init(&env, "compact"), 0);
		uint64_t seed = 0x9e3779b97f4a7c15ull + si * 7919;
		sb_store *s;
		sb_compact_stats st;
		fio *f = quick_io();
		model_reset();
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		workload(l, &seed, 1500, si % 2 ? NKEYS : 7);
		unkeyed(l, 60);
		cr_assert_eq(sb_log_sync(l), 0);
		int64_t now = T0 + (int64_t)MN * 1000000; /* tombstones of the last second stay */
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		cr_assert_gt(st.segments, 0);
		cr_assert_lt(st.bytes_out, st.bytes_in);
		model_compact(&st, now);
		check_log(l, "after the first round");
		/* a second round changes nothing */
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		cr_assert_eq(st.segments, 0, "a second round rewrote %u segments", st.segments);
		cr_assert_eq(sb_store_close(s), 0);
		verify_clean(env.store, "after the first round");
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		l = ut_topic(s, "t");
		check_log(l, "reopened");
		/* more records, then a round after every tombstone's retention */
		workload(l, &seed, 1500, si % 2 ? NKEYS : 7);
		cr_assert_eq(sb_log_sync(l), 0);
		now = T0 + (int64_t)MN * 1000000 + (int64_t)RET_MS * 1000000 * 10;
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		model_compact(&st, now);
		check_log(l, "after the second round");
		cr_assert_eq(sb_store_close(s), 0);
		verify_clean(env.store, "after the second round");
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		check_log(ut_topic(s, "t"), "reopened again");
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
}

/* A backup of the compacted directory (cp -a, as rsync of LOG_DIR would
 * copy it) opens, verifies and reads as the original. */
Test(compact, a_backup_with_gaps_restores)
{
	sb_log_config c = ccfg();
	uint64_t seed = 42;
	sb_store *s;
	sb_compact_stats st;
	char cmd[16384], restored[4200];
	fio *f = quick_io();

	model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	workload(l, &seed, 2000, 9);
	cr_assert_eq(sb_log_sync(l), 0);
	int64_t now = T0 + (int64_t)MN * 1000000 + (int64_t)RET_MS * 2000000;
	cr_assert_eq(sb_log_compact(l, now, &st), 0);
	model_compact(&st, now);
	/* copied while open, as a backup of LOG_DIR is */
	snprintf(restored, sizeof(restored), "%s/restored", env.root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/'", restored, env.store, restored);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(restored, &c, fio_io(f), &s), 0);
	check_log(ut_topic(s, "t"), "restored");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	verify_clean(restored, "restored");
}

/* A gap in a segment that is not marked compacted is damage: clear the
 * mark of a compacted segment (header CRC made right) and verify and the
 * open see the gap. */
Test(compact, a_gap_in_a_plain_segment_is_damage)
{
	sb_log_config c = ccfg();
	uint64_t seed = 5;
	sb_store *s;
	sb_compact_stats st;
	fio *f = quick_io();

	model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	workload(l, &seed, 1500, NKEYS);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	model_compact(&st, T0);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	/* the first segment with a gap inside */
	uint64_t base = 0, o;
	char name[32], path[4200];
	for (o = 1; o < MN && !(gone[o] && !gone[o - 1]); o++)
		;
	cr_assert_lt(o, st.horizon, "no gap to find (o %llu, horizon %llu, %u segments)", (unsigned long long)o,
		     (unsigned long long)st.horizon, st.segments);
	(void)base;
	/* the segment holding o: the last file with base <= o */
	uint64_t b = 0;
	for (uint64_t cand = 0; cand <= o; cand++) {
		sb_seg_name(name, cand, SB_SEG_SUFFIX);
		ut_topic_path(&env, "t", name, path, sizeof(path));
		if (access(path, F_OK) == 0)
			b = cand;
	}
	sb_seg_name(name, b, SB_SEG_SUFFIX);
	ut_topic_path(&env, "t", name, path, sizeof(path));
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t hb[SB_SEG_HDR];
	cr_assert_eq(pread(fd, hb, sizeof(hb), 0), (ssize_t)sizeof(hb));
	cr_assert_neq(sb_get32(hb + SB_SEG_AT_SPAN), 0, "the segment is marked compacted");
	sb_put32(hb + SB_SEG_AT_SPAN, 0);
	sb_put32(hb + SB_SEG_AT_CRC, sb_crc32c(0, hb, SB_SEG_AT_CRC));
	cr_assert_eq(pwrite(fd, hb, sizeof(hb), 0), (ssize_t)sizeof(hb));
	close(fd);
	sb_verify_result res;
	char td[4200];
	snprintf(td, sizeof(td), "%s/t", env.store);
	cr_assert_eq(sb_verify_topic(td, NULL, NULL, NULL, &res), 0);
	cr_assert_gt(res.problems[SB_VERIFY_ORDER] + res.problems[SB_VERIFY_RECORD], 0, "verify misses the gap");
	/* the open does not serve the records after the gap as if nothing happened */
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *t = NULL;
	int rc = sb_store_get(s, "t", &t);
	if (rc == 0) {
		uint8_t buf[400];
		size_t n;
		/* a record after the gap in that segment is not readable */
		uint64_t after = o;
		while (after < MN && gone[after])
			after++;
		cr_assert(sb_log_read(t, after, 0, buf, sizeof(buf), &n, NULL) != 0 || sb_log_next(t) <= after);
	} else {
		cr_assert_eq(rc, SB_ECORRUPT);
	}
	sb_store_close(s);
}

/* ---- readers and a writer during compaction ---------------------------- */

typedef struct busy {
	sb_log *l;
	_Atomic int stop;
	_Atomic uint64_t reads, errors;
	uint64_t seed;
} busy;

static void *reader_main(void *arg)
{
	busy *b = arg;
	uint64_t seed = b->seed;
	uint8_t buf[4096];

	while (!atomic_load(&b->stop)) {
		uint64_t next = sb_log_next(b->l), o = next ? ut_rnd(&seed) % next : 0;
		size_t n;
		sb_record_info info;
		int rc = sb_log_read(b->l, o, 0, buf, sizeof(buf), &n, &info);
		if (rc == 0 && (info.offset != o || !ut_match(buf, n, o, 7)))
			atomic_fetch_add(&b->errors, 1);
		else if (rc && rc != -ENOENT)
			atomic_fetch_add(&b->errors, 1);
		/* the stream from its start: never damage, never short of its end */
		uint64_t pos = sb_log_stream_start(b->l) + ut_rnd(&seed) % 4096;
		rc = sb_log_read_stream(b->l, pos, buf, sizeof(buf), &n);
		if (rc && rc != -ENOENT)
			atomic_fetch_add(&b->errors, 1);
		atomic_fetch_add(&b->reads, 1);
	}
	return NULL;
}

static void *writer_main(void *arg)
{
	busy *b = arg;
	uint64_t seed = b->seed;
	char k[32];
	uint8_t val[300];

	while (!atomic_load(&b->stop) && MN < MAXREC) {
		uint64_t off = sb_log_next(b->l);
		int key = (int)(ut_rnd(&seed) % NKEYS);
		uint32_t len = (uint32_t)ut_len(off, 7, 8, 200);
		ut_fill(val, len, off, 7);
		sb_record_in in = {.key = k, .key_len = (uint32_t)mkey(key, k), .value = val, .value_len = len,
				   .timestamp_ns = T0 + (int64_t)off * 1000000};
		if (sb_log_append(b->l, &in, 1, NULL)) {
			atomic_fetch_add(&b->errors, 1);
			break;
		}
		M[off] = (mrec){key, 0, len, in.timestamp_ns};
		MN = off + 1;
	}
	return NULL;
}

Test(compact, readers_and_a_writer_meanwhile)
{
	sb_log_config c = ccfg();
	uint64_t seed = 77;
	sb_store *s;
	pthread_t rt[2], wt;
	fio *f = quick_io();

	model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	workload(l, &seed, 1500, NKEYS);
	busy b = {.l = l, .seed = 99};
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&rt[i], NULL, reader_main, &b), 0);
	cr_assert_eq(pthread_create(&wt, NULL, writer_main, &b), 0);
	unsigned rounds = 0;
	uint64_t t0 = ut_now_ms();
	while (ut_now_ms() - t0 < 500 || rounds < 3) {
		sb_compact_stats st;
		cr_assert_eq(sb_log_sync(l), 0);
		cr_assert_eq(sb_log_compact(l, T0, &st), 0);
		rounds++;
	}
	atomic_store(&b.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(rt[i], NULL);
	pthread_join(wt, NULL);
	cr_assert_eq(atomic_load(&b.errors), 0, "%llu bad reads of %llu", (unsigned long long)b.errors,
		     (unsigned long long)b.reads);
	/* a last round with everything still, then the model holds */
	sb_compact_stats st;
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	/* which records went is what the rounds decided with the records of
	 * their moment: every record is either readable and right, or gone
	 * and superseded; every key reads its latest value */
	int64_t lat[NKEYS];
	latest(lat);
	for (uint64_t o = 0; o < MN; o++) {
		uint8_t buf[400];
		size_t n;
		int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, NULL);
		if (rc == -ENOENT) {
			cr_assert(M[o].key >= 0 && (uint64_t)lat[M[o].key] != o, "offset %llu gone", (unsigned long long)o);
			gone[o] = 1;
		} else {
			cr_assert_eq(rc, 0);
			cr_assert(ut_match(buf, n, o, 7));
		}
	}
	check_log(l, "after the busy rounds");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	verify_clean(env.store, "after the busy rounds");
}

/* ---- a crash at every step of the swap ----------------------------------- */

static void crash_workload(sb_store **sp, fio *f, sb_log_config *c)
{
	uint64_t seed = 1234;

	model_reset();
	cr_assert_eq(ut_open(env.store, c, fio_io(f), sp), 0);
	sb_log *l = ut_topic(*sp, "t");
	workload(l, &seed, 900, 6);
	cr_assert_eq(sb_log_sync(l), 0);
}

Test(compact, crash_at_every_step_of_the_swap)
{
	sb_log_config c = ccfg();
	const char *e = getenv("SB_COMPACT_CRASH_STEPS");
	fio_kind kinds[] = {FIO_PWRITE, FIO_FDATASYNC, FIO_RENAME, FIO_UNLINK, FIO_OPEN};
	unsigned tried = 0;
	int64_t now = T0 + 900LL * 1000000 + (int64_t)RET_MS * 3000000;

	for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
		unsigned total;
		sb_compact_stats clean_st;
		{
			ut_env_fini(&env);
			cr_assert_eq(ut_env_init(&env, "compact"), 0);
			fio *f = fio_new(env.stash);
			fio_set_sync(f, 0, 0);
			sb_store *s;
			sb_compact_stats st;
			crash_workload(&s, f, &c);
			unsigned before = fio_calls(f, kinds[ki]);
			cr_assert_eq(sb_log_compact(ut_topic(s, "t"), now, &st), 0);
			total = fio_calls(f, kinds[ki]) - before;
			clean_st = st;
			cr_assert_gt(st.segments, 1);
			sb_store_close(s);
			fio_free(f);
		}
		unsigned stride = e ? 1 : UNDER_TSAN ? total : total / 4 + 1;
		for (unsigned step = 1; step <= total; step += stride, tried++) {
			ut_env_fini(&env);
			cr_assert_eq(ut_env_init(&env, "compact"), 0);
			fio *f = fio_new(env.stash);
			fio_set_sync(f, 0, 0);
			sb_store *s;
			crash_workload(&s, f, &c);
			fio_crash_at(f, kinds[ki], step);
			(void)sb_log_compact(ut_topic(s, "t"), now, NULL);
			sb_store_close(s);
			/* a power loss, or (every other point) a kill -9: the
			 * process gone, everything it wrote kept */
			int mode = step % 2 ? FIO_CRASH_RANDOM : FIO_CRASH_KEEP_ALL;
			cr_assert_eq(fio_crash_apply(f, step * 131 + ki, mode, NULL), 0);
			fio_free(f);
			/* Whatever survived: a log that opens, verifies, and
			 * reads each record right or as compacted away (never
			 * one the rule keeps); every key its latest value. */
			fio *q = quick_io();
			cr_assert_eq(ut_open(env.store, &c, fio_io(q), &s), 0);
			sb_log *l = NULL;
			cr_assert_eq(sb_store_get(s, "t", &l), 0, "kind %zu step %u: topic refused", ki, step);
			memset(gone, 0, sizeof(gone));
			model_compact(&clean_st, now);
			int may_go[MAXREC];
			memcpy(may_go, gone, sizeof(gone));
			for (uint64_t o = 0; o < MN; o++) {
				uint8_t buf[400];
				size_t n;
				int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, NULL);
				if (rc == -ENOENT) {
					cr_assert(may_go[o], "kind %zu step %u: offset %llu lost", ki, step,
						  (unsigned long long)o);
					gone[o] = 1;
				} else {
					cr_assert_eq(rc, 0, "kind %zu step %u: offset %llu: %s", ki, step,
						     (unsigned long long)o, sb_strerror(rc));
					gone[o] = 0;
					cr_assert(ut_match(buf, n, o, 7));
				}
			}
			/* the stream may have a gap after a crash between two
			 * swaps: the next round closes it */
			/* (what the crashed round removed stays removed; the
			 * new round removes what its own horizon allows) */
			sb_compact_stats st;
			cr_assert_eq(sb_log_compact(l, now, &st), 0);
			model_compact(&st, now);
			check_log(l, "after a crash and a new round");
			cr_assert_eq(sb_store_close(s), 0);
			fio_free(q);
			verify_clean(env.store, "after a crash");
		}
	}
	cr_log_info("%u crash points", tried);
}

/* ---- the key index's replay at open --------------------------------------- */

/* A topic without keys: a clean close leaves a key table saying how far
 * the index is complete, so that the open replays none of its records;
 * a key appended after that is still found after the next reopen. */
Test(compact, a_keyless_topic_is_not_replayed_at_open)
{
	sb_log_config c;
	sb_store *s;
	sb_log_key_stats ks;
	fio *f = quick_io();

	ut_cfg(&c, 0, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uint8_t val[200] = {0};
	sb_record_in u = {.value = val, .value_len = sizeof(val)};
	for (int i = 0; i < 8000; i++) /* about 2 MiB of records */
		cr_assert_eq(sb_log_append(l, &u, 1, NULL), 0);
	/* The key index opens at the first use of the topic's keys (here its
	 * statistics), replaying the log; then the clean close notes how far
	 * it is complete. (One that never opened notes nothing: the next
	 * first use replays the log.) */
	cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	l = ut_topic(s, "t");
	cr_assert_eq(sb_log_get_key_stats(l, &ks), 0);
	cr_assert_geq(ks.tables, 1, "no key table: the next open replays every record");
	sb_record_in r = {.key = "k", .key_len = 1, .value = "v", .value_len = 1};
	cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	l = ut_topic(s, "t");
	char buf[8];
	size_t n;
	cr_assert_eq(sb_log_get_key(l, "k", 1, buf, sizeof(buf), &n, NULL), 0);
	cr_assert_eq(n, 1);
	uint64_t wrong = 1;
	cr_assert_eq(sb_log_verify_keys(l, NULL, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

/* ---- compressed segments ---------------------------------------------------- */

/* A topic that is both compressed and compacted (sb_log_compress and
 * sb_log_compact called by hand, in both orders): neither touches the
 * other's segments (compressed blocks have dense offsets), and every
 * record reads as the model says. */
Test(compact, compression_and_compaction_leave_each_other_alone)
{
	for (int order = 0; order < 2; order++) {
		ut_env_fini(&env);
		cr_assert_eq(ut_env_init(&env, "compact"), 0);
		sb_log_config c = ccfg();
		c.compression = SB_COMPRESS_LZ4;
		c.compression_block_bytes = 1024;
		uint64_t seed = 31 + (uint64_t)order;
		sb_store *s;
		sb_compact_stats st;
		sb_log_stats ls;
		size_t done = 0;
		fio *f = quick_io();
		model_reset();
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		workload(l, &seed, 1200, NKEYS);
		unkeyed(l, 60);
		cr_assert_eq(sb_log_sync(l), 0);
		if (order == 0) { /* compacted first: then only the segments it left as they were are compressed */
			cr_assert_eq(sb_log_compact(l, T0, &st), 0);
			cr_assert_gt(st.segments, 0);
			model_compact(&st, T0);
			cr_assert_eq(sb_log_compress(l, &done), 0);
			cr_assert_eq(sb_log_get_stats(l, &ls), 0);
			cr_assert_leq(ls.compressed, ls.segments - 1 - st.segments, "%u compressed, %u compacted of %u",
				      ls.compressed, st.segments, ls.segments);
		} else { /* compressed first: then nothing is compacted */
			cr_assert_eq(sb_log_compress(l, &done), 0);
			cr_assert_gt(done, 0);
			cr_assert_eq(sb_log_compact(l, T0, &st), 0);
			cr_assert_eq(st.segments, 0, "%u compressed segments compacted", st.segments);
		}
		check_log(l, order ? "compressed, then compacted" : "compacted, then compressed");
		cr_assert_eq(sb_store_close(s), 0);
		verify_clean(env.store, "compression and compaction");
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		check_log(ut_topic(s, "t"), "reopened");
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
}

/* A compacted topic's records copied back one by one at their offsets
 * (what rsync of a backup through the mount does, SPEC §3): a topic whose
 * cleanup has compact takes an offset past the next one (a gap), and reads
 * as the original; one without compact refuses it. */
Test(compact, records_appended_back_at_their_offsets_with_gaps)
{
	sb_log_config c = ccfg();
	uint64_t seed = 8;
	sb_store *s, *s2;
	sb_compact_stats st;
	char restored[4200];
	fio *f = quick_io();

	model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	workload(l, &seed, 1200, NKEYS);
	unkeyed(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	model_compact(&st, T0);
	snprintf(restored, sizeof(restored), "%s/restored", env.root);
	cr_assert_eq(ut_open(restored, &c, fio_io(f), &s2), 0);
	sb_log *r = ut_topic(s2, "t");
	for (uint64_t o = 0; o < MN; o++) {
		uint8_t val[400];
		char key[64];
		size_t n, kl = 0;
		sb_record_info info;
		if (gone[o])
			continue;
		cr_assert_eq(sb_log_read(l, o, 0, val, sizeof(val), &n, &info), 0);
		if (info.key_len)
			cr_assert_eq(sb_log_read_key(l, o, key, sizeof(key), &kl), 0);
		sb_record_in in = {.key = key, .key_len = (uint32_t)kl, .value = val, .value_len = (uint32_t)n,
				   .flags = info.flags & SB_REC_TOMBSTONE, .timestamp_ns = info.timestamp_ns};
		cr_assert_eq(sb_log_append_at(r, o, &in, 1), 0, "append at %llu", (unsigned long long)o);
	}
	cr_assert_eq(sb_store_close(s), 0);
	check_log(r, "appended back");
	cr_assert_eq(sb_store_close(s2), 0);
	verify_clean(restored, "appended back");
	cr_assert_eq(ut_open(restored, &c, fio_io(f), &s2), 0);
	r = ut_topic(s2, "t");
	check_log(r, "appended back, reopened");
	/* a topic without compact: only the next offset */
	sb_log_config d = c;
	d.cleanup = SB_CLEANUP_DELETE;
	cr_assert_eq(sb_store_close(s2), 0);
	cr_assert_eq(ut_open(restored, &d, fio_io(f), &s2), 0);
	r = ut_topic(s2, "t");
	sb_record_in one = {.value = "x", .value_len = 1};
	cr_assert_eq(sb_log_append_at(r, sb_log_next(r) + 5, &one, 1), -EINVAL);
	cr_assert_eq(sb_store_close(s2), 0);
	fio_free(f);
}

/* A copy of the directory taken during a round (cp -a copies the files one
 * by one: one segment as the round left it, the next as it was before):
 * the stream positions of compacted segments disagree (an overlap), which
 * is not damage; the copy opens, verifies, and reads every record it has
 * right, the whole stream without an error. */
Test(compact, a_copy_taken_during_a_round_opens)
{
	sb_log_config c = ccfg();
	uint64_t seed = 77;
	sb_store *s;
	sb_compact_stats st;
	char a[4200], b[4200], cmd[32768];
	fio *f = quick_io();

	model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	workload(l, &seed, 800, 9);
	unkeyed(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	snprintf(a, sizeof(a), "%s/a", env.root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/'", a, env.store, a);
	cr_assert_eq(system(cmd), 0);
	workload(l, &seed, 400, 9); /* more superseded: the next round moves every segment */
	unkeyed(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	cr_assert_gt(st.segments, 2);
	cr_assert_eq(sb_store_close(s), 0);
	snprintf(b, sizeof(b), "%s/b", env.root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/'", b, env.store, b);
	cr_assert_eq(system(cmd), 0);
	/* b with every other segment file as it was in a (older, before the
	 * second round): overlaps and gaps between them */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s/t' && i=0 && for f in $(ls '%s/t' | grep 'seg$'); do i=$((i+1)); "
		 "if [ $((i %% 2)) = 0 ] && [ -e '%s/t'/$f ] && [ \"$f\" != \"$(ls '%s/t' | grep 'seg$' | tail -1)\" ]; then "
		 "cp '%s/t'/$f .; rm -f ${f%%.seg}.idx ${f%%.seg}.tix; fi; done",
		 b, b, a, a, a);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(ut_open(b, &c, fio_io(f), &s), 0);
	sb_log *t = NULL;
	cr_assert_eq(sb_store_get(s, "t", &t), 0, "the copy is refused");
	cr_assert_eq(sb_log_next(t), MN);
	for (uint64_t o = 0; o < MN; o++) {
		uint8_t buf[400];
		size_t n;
		int rc = sb_log_read(t, o, 0, buf, sizeof(buf), &n, NULL);
		cr_assert(rc == 0 || rc == -ENOENT, "offset %llu: %s", (unsigned long long)o, sb_strerror(rc));
		if (!rc)
			cr_assert(ut_match(buf, n, o, 7) && n == M[o].len, "offset %llu", (unsigned long long)o);
	}
	static uint8_t got[MAXREC * 200];
	uint64_t pos = sb_log_stream_start(t), end = sb_log_stream_end(t);
	while (pos < end) {
		size_t nr = 0;
		cr_assert_eq(sb_log_read_stream(t, pos, got, sizeof(got), &nr), 0, "stream at %llu",
			     (unsigned long long)pos);
		cr_assert_gt(nr, 0);
		pos += nr;
	}
	cr_assert_eq(sb_log_compact(t, T0, &st), 0); /* puts the headers right */
	cr_assert_eq(sb_store_close(s), 0);
	verify_clean(b, "a copy taken during a round, compacted again");
	fio_free(f);
}

/*
 * A compacted topic removed (rm -r) while the store's compressor thread
 * holds it in its snapshot: the thread's next look (sb_log_compact_due,
 * then sb_log_compact) finds no segment and does nothing. Before, it read
 * the segment array past its end (a daemon segfault seen once in a
 * generated stress run; ASan: heap-buffer-overflow).
 */
Test(compact, a_removed_topic_is_left_alone)
{
	sb_log_config c = ccfg();
	uint64_t seed = 9;
	sb_store *s;
	fio *f = quick_io();

	model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	workload(l, &seed, 200, 5);
	cr_assert_eq(sb_log_delete_before(l, sb_log_next(l)), 0);
	cr_assert_eq(sb_store_remove(s, "t"), 0);
	int64_t now = T0 + (int64_t)RET_MS * 4000000;
	cr_expect_eq(sb_log_compact_due(l, now), 0, "a removed topic is never due");
	cr_expect_eq(sb_log_compact(l, now, NULL), -ENOENT);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

/* The bytes of the topic's segment files, and whether a compaction's
 * temp file is there. */
static uint64_t seg_bytes_of(const char *td, int *tmp)
{
	char cmd[4400], line[64];
	uint64_t n = 0;

	snprintf(cmd, sizeof(cmd), "cat %s/*.seg | wc -c", td);
	FILE *p = popen(cmd, "r");
	cr_assert(p && fgets(line, sizeof(line), p));
	pclose(p);
	n = strtoull(line, NULL, 10);
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c 'cseg.tmp$'", td);
	p = popen(cmd, "r");
	cr_assert(p && fgets(line, sizeof(line), p));
	pclose(p);
	*tmp = atoi(line) > 0;
	return n;
}

/* Release the writes fio_slow holds, 0.3 s from now (the close meanwhile
 * tells the round to stop, and waits for it). */
static void *release_later(void *arg)
{
	usleep(300000);
	fio_slow(arg, FIO_PWRITE, 0, NULL);
	return NULL;
}

/* The store's close (an unmount) stops a compaction round in progress
 * before its next segment: a round over thousands of segments, each built
 * file synced, held the close, and the unmount, for 8 to 22 s, and a mount
 * started right after gave up waiting for LOG_DIR (found by a tester).
 * Closed while the round builds its first file (held there: before, the
 * round could build them all before the close began on a loaded machine,
 * and swap them): nothing is swapped (every
 * segment's bytes as they were), no temp file is left, verify is clean,
 * and the next round does the work. */
Test(compact, a_round_stops_when_the_store_closes, .timeout = 300)
{
	sb_log_config c = ccfg();
	sb_store_options o;
	sb_store *s;
	char td[4200], k[32];
	uint8_t val[100];
	int tmp = 0;

	c.cleanup = SB_CLEANUP_DELETE; /* the backlog first, uncompacted */
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	for (int i = 0; i < 20000; i++) {
		memset(val, 'a' + i % 26, sizeof(val));
		sb_record_in in = {.key = k, .key_len = (uint32_t)mkey(i % 50, k), .value = val,
				   .value_len = sizeof(val)};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	snprintf(td, sizeof(td), "%s/t", env.store);
	uint64_t before = seg_bytes_of(td, &tmp);

	sb_store_options_default(&o); /* the background threads on: the compactor */
	o.defaults = ccfg();
	fio *hf = quick_io();
	o.io = fio_io(hf);
	/* the round's first file held until the close has begun */
	fio_slow(hf, FIO_PWRITE, FIO_HOLD, ".cseg.tmp");
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	for (int i = 0; i < 20000 && !fio_slowed(hf); i++) /* up to 20 s */
		usleep(1000);
	cr_assert(fio_slowed(hf), "no compaction round began");
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, release_later, hf), 0);
	cr_assert_eq(sb_store_close(s), 0);
	pthread_join(th, NULL);
	fio_free(hf);
	uint64_t after = seg_bytes_of(td, &tmp);
	cr_expect_eq(after, before, "the round went on after the close began: %llu of %llu segment bytes left",
		     (unsigned long long)after, (unsigned long long)before);
	cr_expect(!tmp, "a compaction temp file left");
	verify_clean(env.store, "after the close");

	c = ccfg();
	fio *f = quick_io();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	sb_compact_stats st;
	cr_assert_eq(sb_log_compact(l, (int64_t)time(NULL) * 1000000000LL, &st), 0);
	cr_expect_gt(st.segments, 100, "the next round compacts the backlog (%u segments)", st.segments);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	verify_clean(env.store, "after the next round");
}
