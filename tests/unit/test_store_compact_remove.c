/*
 * test_store_compact_remove.c - removing a topic (rm -r through the mount:
 * every record, then the directory) while a compaction round or a
 * compression pass of it is in progress. Found by an exploratory tester:
 * the round went on beside the removal, wrote its temp file or the index
 * of a segment it had just swapped into the directory being removed, so
 * rmdir failed (ENOTEMPTY) and the topic stayed half removed: listed, no
 * records, no appends, refused by rmdir and mkdir, `verify` exit 2, back
 * (empty) after a remount.
 *
 * Each case holds the rewriter at a write of its temp file (fio_slow), or
 * lets it run free, removes the topic from another thread, releases the
 * hold after a while, and checks: the removal succeeded, the directory is
 * gone, the store no longer has the topic, and a reopen has none either.
 * Generated: the rewriter (compaction or compression), the workload's size
 * and seed, held or not. SB_REMOVE_CASES: cases (default 8).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_store.h"

UT_ENV_FIXTURE("cremove")

TestSuite(cremove, .init = ut_env_setup, .fini = ut_env_teardown);

typedef struct job {
	sb_log *l;
	sb_store *s;
	int compress; /* the rewriter: 1 compression, 0 compaction */
	int rc;
} job;

static void *rewrite_main(void *arg)
{
	job *j = arg;
	j->rc = j->compress ? sb_log_compress(j->l, NULL)
			    : sb_log_compact(j->l, INT64_C(1700000000000000000) + (INT64_C(1) << 50), NULL);
	return NULL;
}

static void *remove_main(void *arg)
{
	job *j = arg;
	j->rc = sb_store_remove(j->s, "t");
	return NULL;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Sealed segments for the rewriter: keys that repeat (compaction has work)
 * or plain text (compression has). */
static void fill(sb_log *l, uint64_t *seed, unsigned n)
{
	char key[16], val[200];
	for (unsigned i = 0; i < n; i++) {
		size_t vl = 20 + next_rand(seed) % 150;
		memset(val, 'a' + (int)(i % 26), vl);
		sb_record_in in = {.key = key,
				   .key_len = (uint32_t)snprintf(key, sizeof(key), "k%u", (unsigned)(next_rand(seed) % 20)),
				   .value = val, .value_len = (uint32_t)vl};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	}
}

/* A store of topic "t" (compressed, or compacted), filled and synced (only
 * synced segments are rewritten; their own indexes are saved by then): the
 * store in *s, its config in *c, its io table in *f (the caller's). */
static sb_log *filled(int compress, uint64_t *seed, sb_log_config *c, fio **f, sb_store **s)
{
	ut_cfg(c, 4096, SB_SYNC_NEVER);
	c->index_interval_bytes = 256;
	if (compress) {
		c->compression = SB_COMPRESS_ZSTD;
		c->compression_block_bytes = 4096;
	} else {
		c->cleanup = SB_CLEANUP_COMPACT;
		c->delete_retention_ms = 0;
	}
	*f = fio_new(env.stash);
	cr_assert(*f);
	fio_set_sync(*f, 0, 0);
	cr_assert_eq(ut_open(env.store, c, fio_io(*f), s), 0);
	sb_log *l = ut_topic(*s, "t");
	fill(l, seed, 300 + (unsigned)(next_rand(seed) % 700));
	cr_assert_eq(sb_log_sync(l), 0);
	return l;
}

static int cases(void)
{
	const char *e = getenv("SB_REMOVE_CASES");
	return e && atoi(e) > 0 ? atoi(e) : 8;
}

static void one_case(int n)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(n + 1);
	int compress = n % 2, held = (n / 2) % 2 == 0;
	sb_log_config c;
	sb_store *s;
	char td[4200];
	struct stat st;

	fio *f;
	sb_log *l = filled(compress, &seed, &c, &f, &s);

	/* the rewriter at its first temp file write, held there (or free);
	 * meanwhile every record is removed (rm -r: each file, then the
	 * directory) */
	if (held)
		fio_slow(f, FIO_PWRITE, FIO_HOLD, compress ? ".zseg.tmp" : ".cseg.tmp");
	job rw = {.l = l, .compress = compress}, rm = {.s = s};
	pthread_t rt, mt;
	cr_assert_eq(pthread_create(&rt, NULL, rewrite_main, &rw), 0);
	for (int i = 0; held && i < 10000 && !fio_slowed(f); i++)
		usleep(1000);
	cr_assert(!held || fio_slowed(f), "case %d: the rewriter wrote no temp file", n);
	cr_assert_eq(sb_log_delete_before(l, sb_log_next(l)), 0, "rm of every record");
	cr_assert_eq(pthread_create(&mt, NULL, remove_main, &rm), 0);
	if (held) {
		usleep(100000); /* the removal now waits for the rewriter, or went on */
		fio_slow(f, FIO_PWRITE, 0, NULL);
	}
	pthread_join(rt, NULL);
	pthread_join(mt, NULL);

	snprintf(td, sizeof(td), "%s/t", env.store);
	cr_expect_eq(rm.rc, 0, "case %d (%s, %s): the removal failed: %s", n, compress ? "compression" : "compaction",
		     held ? "held" : "free", sb_strerror(rm.rc));
	cr_expect(stat(td, &st) != 0, "case %d: the topic's directory is still there", n);
	sb_log *again;
	cr_expect_eq(sb_store_get(s, "t", &again), -ENOENT, "case %d: the store still has the topic", n);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	cr_expect_eq(sb_store_get(s, "t", &again), -ENOENT, "case %d: the topic is back after a reopen", n);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
}

Test(cremove, a_topic_removed_while_its_segments_are_rewritten)
{
	for (int n = 0; n < cases(); n++)
		one_case(n);
}

/* Files of the topic's directory that name no segment there: index files
 * (.idx, .tix) whose .seg is gone. */
static int orphans(const char *td, char *first, size_t cap)
{
	char cmd[4400], line[256];
	int n = 0;

	snprintf(cmd, sizeof(cmd),
		 "cd %s && for f in *.idx *.tix; do [ -e \"$f\" ] && [ ! -e \"${f%%.*}.seg\" ] && echo \"$f\"; done",
		 td);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	while (fgets(line, sizeof(line), p))
		if (n++ == 0)
			snprintf(first, cap, "%s", line);
	pclose(p);
	return n;
}

/* rm of the records a round is compacting, between its swap of a segment
 * and the round's end: the round saved the new segment's index files after
 * the drop had removed the segment, and left them there (the mount removes
 * them as "an index file without its segment"; rmdir of the topic failed on
 * them). Held at the round's first index write; the drop, then the round
 * goes on. Then the topic is removed. */
Test(cremove, records_dropped_while_a_round_swaps_leave_no_index_files)
{
	for (int n = 0; n < cases(); n++) {
		uint64_t seed = 0x51ed270b27dd3b35ULL * (uint64_t)(n + 1);
		sb_log_config c;
		sb_store *s;
		char td[4200], first[256] = "";

		fio *f;
		sb_log *l = filled(0, &seed, &c, &f, &s); /* (synced: the hold is for the round's index) */
		fio_slow(f, FIO_PWRITE, FIO_HOLD, ".idx");
		job rw = {.l = l};
		pthread_t rt;
		cr_assert_eq(pthread_create(&rt, NULL, rewrite_main, &rw), 0);
		for (int i = 0; i < 10000 && !fio_slowed(f); i++)
			usleep(1000);
		cr_assert(fio_slowed(f), "case %d: the round wrote no index", n);
		/* every record but the newest few: the sealed segments go */
		cr_assert_eq(sb_log_delete_before(l, sb_log_next(l) - 1 - n % 3), 0);
		fio_slow(f, FIO_PWRITE, 0, NULL);
		pthread_join(rt, NULL);
		snprintf(td, sizeof(td), "%s/t", env.store);
		int k = orphans(td, first, sizeof(first));
		cr_expect_eq(k, 0, "case %d: %d index files without their segment (%s)", n, k, first);
		cr_assert_eq(sb_log_delete_before(l, sb_log_next(l)), 0);
		cr_expect_eq(sb_store_remove(s, "t"), 0, "case %d: the topic's removal", n);
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
}

/* The stream from its start to its end reads whole, and no record in
 * [start, next) reads as damage. 0, or the first failure. */
static int reads_whole(sb_log *l, uint64_t *where)
{
	static uint8_t buf[65536];
	uint64_t pos = sb_log_stream_start(l), end = sb_log_stream_end(l);
	sb_record_info info;
	int rc;

	while (pos < end) {
		size_t n = 0;
		if ((rc = sb_log_read_stream(l, pos, buf, sizeof(buf), &n)) || !n) {
			*where = pos;
			return rc ? rc : -ENODATA;
		}
		pos += n;
	}
	for (uint64_t o = sb_log_start(l); o < sb_log_next(l); o++)
		if ((rc = sb_log_stat(l, o, &info)) && rc != -ENOENT) {
			*where = o;
			return rc;
		}
	return 0;
}

/* rm of every sealed segment's records while a round builds, then appends
 * that roll new segments: a dropped segment's memory then often holds a
 * new one (the allocator hands the freed block back), and the round took
 * the new segment for the one it had picked. It renamed the compacted file
 * back where the drop had removed the old one and put it in the new one's
 * place in the array: .log EIO ("no index entry leads to the stream
 * position"), the mount's listing above the store's start, records rm had
 * removed back at the next open (found by an exploratory tester, with two
 * writers busy during rm -r). */
Test(cremove, a_round_never_takes_a_new_segment_for_a_dropped_one)
{
	for (int n = 0; n < cases(); n++) {
		uint64_t seed = 0x2545f4914f6cdd1dULL * (uint64_t)(n + 1), where = 0;
		sb_log_config c;
		sb_store *s;
		fio *f;
		sb_log *l = filled(0, &seed, &c, &f, &s);

		fio_slow(f, FIO_PWRITE, FIO_HOLD, ".cseg.tmp");
		job rw = {.l = l};
		pthread_t rt;
		cr_assert_eq(pthread_create(&rt, NULL, rewrite_main, &rw), 0);
		for (int i = 0; i < 10000 && !fio_slowed(f); i++)
			usleep(1000);
		cr_assert(fio_slowed(f), "case %d: the round wrote no temp file", n);
		cr_assert_eq(sb_log_delete_before(l, sb_log_next(l) - 1), 0, "rm of all but the newest");
		uint64_t start = sb_log_start(l);
		fill(l, &seed, 200 + (unsigned)(next_rand(&seed) % 300)); /* new segments */
		cr_assert_eq(sb_log_sync(l), 0);
		fio_slow(f, FIO_PWRITE, 0, NULL);
		pthread_join(rt, NULL);

		int rc = reads_whole(l, &where);
		cr_expect_eq(rc, 0, "case %d: after the round, reading at %llu: %s", n, (unsigned long long)where,
			     sb_strerror(rc));
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
		cr_expect_geq(sb_log_start(l), start, "case %d: records removed are back at the reopen (from %llu, was %llu)",
			      n, (unsigned long long)sb_log_start(l), (unsigned long long)start);
		rc = reads_whole(l, &where);
		cr_expect_eq(rc, 0, "case %d: after the reopen, reading at %llu: %s", n, (unsigned long long)where,
			     sb_strerror(rc));
		cr_assert_eq(sb_log_delete_before(l, sb_log_next(l)), 0);
		cr_expect_eq(sb_store_remove(s, "t"), 0, "case %d: the topic's removal", n);
		cr_assert_eq(sb_store_close(s), 0);
		fio_free(f);
	}
}
