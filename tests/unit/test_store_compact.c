/*
 * test_store_compact.c - cleanup = compact (store/log_compact.c): generated
 * workloads of random keys, tombstones and unkeyed records over several
 * segments, compacted, against a model (util_compact.h): exactly the
 * records the rule keeps are readable (the others ENOENT), at their
 * offsets, the stream is the kept payloads in order, every key reads its
 * latest value, tombstones go after delete_retention_ms (the clock is the
 * call's now_ns), verify is clean, after a reopen too; readers and a
 * writer busy during compaction; a crash (power loss or kill -9) at every
 * step of the swap (the crash simulator); a gap in a segment not marked
 * compacted stays damage. (Compaction beside compression, backups,
 * restores, a removed topic and the store's close:
 * test_store_compact_interplay.c.)
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
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "log.h"
#include "util_compact.h"

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

static unsigned seeds(void)
{
	const char *e = getenv("SB_COMPACT_SEEDS");
	return e ? (unsigned)atoi(e) : 2;
}

/* Random workloads, two rounds each (the second after the tombstones'
 * retention), reopened in between: exactly the model's records stay. */
Test(compact, keeps_exactly_the_latest_per_key)
{
	sb_log_config c = uc_cfg();

	for (unsigned si = 0; si < seeds(); si++) {
		ut_env_fini(&env);
		cr_assert_eq(ut_env_init(&env, "compact"), 0);
		uint64_t seed = 0x9e3779b97f4a7c15ull + si * 7919;
		sb_store *s;
		sb_compact_stats st;
		fio *f = uc_quick_io(env.stash);
		uc_model_reset();
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		uc_workload(l, &seed, 1500, si % 2 ? UC_NKEYS : 7);
		uc_unkeyed(l, 60);
		cr_assert_eq(sb_log_sync(l), 0);
		int64_t now = UC_T0 + (int64_t)uc_MN * 1000000; /* tombstones of the last second stay */
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		cr_assert_gt(st.segments, 0);
		cr_assert_lt(st.bytes_out, st.bytes_in);
		uc_model_compact(&st, now);
		uc_check_log(l, "after the first round");
		/* a second round changes nothing */
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		cr_assert_eq(st.segments, 0, "a second round rewrote %u segments", st.segments);
		cr_assert_eq(sb_store_close(s), 0);
		uc_verify_clean(env.store, "after the first round");
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		l = ut_topic(s, "t");
		uc_check_log(l, "reopened");
		/* more records, then a round after every tombstone's retention */
		uc_workload(l, &seed, 1500, si % 2 ? UC_NKEYS : 7);
		cr_assert_eq(sb_log_sync(l), 0);
		now = UC_T0 + (int64_t)uc_MN * 1000000 + (int64_t)UC_RET_MS * 1000000 * 10;
		cr_assert_eq(sb_log_compact(l, now, &st), 0);
		uc_model_compact(&st, now);
		uc_check_log(l, "after the second round");
		cr_assert_eq(sb_store_close(s), 0);
		uc_verify_clean(env.store, "after the second round");
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		uc_check_log(ut_topic(s, "t"), "reopened again");
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
}

/* A gap in a segment that is not marked compacted is damage: clear the
 * mark of a compacted segment (header CRC made right) and verify and the
 * open see the gap. */
Test(compact, a_gap_in_a_plain_segment_is_damage)
{
	sb_log_config c = uc_cfg();
	uint64_t seed = 5;
	sb_store *s;
	sb_compact_stats st;
	fio *f = uc_quick_io(env.stash);

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uc_workload(l, &seed, 1500, UC_NKEYS);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
	uc_model_compact(&st, UC_T0);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	/* the first segment with a gap inside */
	uint64_t base = 0, o;
	char name[32], path[4200];
	for (o = 1; o < uc_MN && !(uc_gone[o] && !uc_gone[o - 1]); o++)
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
		while (after < uc_MN && uc_gone[after])
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

	while (!atomic_load(&b->stop) && uc_MN < UC_MAXREC) {
		uint64_t off = sb_log_next(b->l);
		int key = (int)(ut_rnd(&seed) % UC_NKEYS);
		uint32_t len = (uint32_t)ut_len(off, 7, 8, 200);
		ut_fill(val, len, off, 7);
		sb_record_in in = {.key = k, .key_len = (uint32_t)uc_mkey(key, k), .value = val, .value_len = len,
				   .timestamp_ns = UC_T0 + (int64_t)off * 1000000};
		if (sb_log_append(b->l, &in, 1, NULL)) {
			atomic_fetch_add(&b->errors, 1);
			break;
		}
		uc_M[off] = (uc_mrec){key, 0, len, in.timestamp_ns};
		uc_MN = off + 1;
	}
	return NULL;
}

Test(compact, readers_and_a_writer_meanwhile)
{
	sb_log_config c = uc_cfg();
	uint64_t seed = 77;
	sb_store *s;
	pthread_t rt[2], wt;
	fio *f = uc_quick_io(env.stash);

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uc_workload(l, &seed, 1500, UC_NKEYS);
	busy b = {.l = l, .seed = 99};
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&rt[i], NULL, reader_main, &b), 0);
	cr_assert_eq(pthread_create(&wt, NULL, writer_main, &b), 0);
	unsigned rounds = 0;
	uint64_t t0 = ut_now_ms();
	while (ut_now_ms() - t0 < 500 || rounds < 3) {
		sb_compact_stats st;
		cr_assert_eq(sb_log_sync(l), 0);
		cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
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
	cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
	/* which records went is what the rounds decided with the records of
	 * their moment: every record is either readable and right, or gone
	 * and superseded; every key reads its latest value */
	int64_t lat[UC_NKEYS];
	uc_latest(lat);
	for (uint64_t o = 0; o < uc_MN; o++) {
		uint8_t buf[400];
		size_t n;
		int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, NULL);
		if (rc == -ENOENT) {
			cr_assert(uc_M[o].key >= 0 && (uint64_t)lat[uc_M[o].key] != o, "offset %llu gone", (unsigned long long)o);
			uc_gone[o] = 1;
		} else {
			cr_assert_eq(rc, 0);
			cr_assert(ut_match(buf, n, o, 7));
		}
	}
	uc_check_log(l, "after the busy rounds");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	uc_verify_clean(env.store, "after the busy rounds");
}

/* ---- a crash at every step of the swap ----------------------------------- */

static void crash_workload(sb_store **sp, fio *f, sb_log_config *c)
{
	uint64_t seed = 1234;

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, c, fio_io(f), sp), 0);
	sb_log *l = ut_topic(*sp, "t");
	uc_workload(l, &seed, 900, 6);
	cr_assert_eq(sb_log_sync(l), 0);
}

Test(compact, crash_at_every_step_of_the_swap)
{
	sb_log_config c = uc_cfg();
	const char *e = getenv("SB_COMPACT_CRASH_STEPS");
	fio_kind kinds[] = {FIO_PWRITE, FIO_FDATASYNC, FIO_RENAME, FIO_UNLINK, FIO_OPEN};
	unsigned tried = 0;
	int64_t now = UC_T0 + 900LL * 1000000 + (int64_t)UC_RET_MS * 3000000;

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
			fio *q = uc_quick_io(env.stash);
			cr_assert_eq(ut_open(env.store, &c, fio_io(q), &s), 0);
			sb_log *l = NULL;
			cr_assert_eq(sb_store_get(s, "t", &l), 0, "kind %zu step %u: topic refused", ki, step);
			memset(uc_gone, 0, sizeof(uc_gone));
			uc_model_compact(&clean_st, now);
			int may_go[UC_MAXREC];
			memcpy(may_go, uc_gone, sizeof(uc_gone));
			for (uint64_t o = 0; o < uc_MN; o++) {
				uint8_t buf[400];
				size_t n;
				int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, NULL);
				if (rc == -ENOENT) {
					cr_assert(may_go[o], "kind %zu step %u: offset %llu lost", ki, step,
						  (unsigned long long)o);
					uc_gone[o] = 1;
				} else {
					cr_assert_eq(rc, 0, "kind %zu step %u: offset %llu: %s", ki, step,
						     (unsigned long long)o, sb_strerror(rc));
					uc_gone[o] = 0;
					cr_assert(ut_match(buf, n, o, 7));
				}
			}
			/* the stream may have a gap after a crash between two
			 * swaps: the next round closes it */
			/* (what the crashed round removed stays removed; the
			 * new round removes what its own horizon allows) */
			sb_compact_stats st;
			cr_assert_eq(sb_log_compact(l, now, &st), 0);
			uc_model_compact(&st, now);
			uc_check_log(l, "after a crash and a new round");
			cr_assert_eq(sb_store_close(s), 0);
			fio_free(q);
			uc_verify_clean(env.store, "after a crash");
		}
	}
	cr_log_info("%u crash points", tried);
}
