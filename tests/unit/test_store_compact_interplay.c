/*
 * test_store_compact_interplay.c - compaction (store/log_compact.c) beside
 * the rest of the store, against the model of util_compact.h (generated
 * workloads of random keys, tombstones and unkeyed records): a copy of the
 * compacted directory (a backup with gaps) opens, verifies and reads as
 * the original, and so does one taken during a round; a compacted topic's
 * records appended back one by one at their offsets (a restore through
 * the mount) read as the original; compression and compaction leave each
 * other's segments alone, and nothing is lost whichever runs first; a
 * removed topic is left alone; the store's close stops a round in
 * progress; and a keyless topic's key index is not replayed at open.
 * (The model-based tests of the rule itself, readers and a writer during
 * rounds, crashes in the swap: test_store_compact.c.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "log.h"
#include "util_compact.h"

UT_ENV_FIXTURE("compact")

TestSuite(compact, .init = ut_env_setup, .fini = ut_env_teardown);

/* ---- backups and restores --------------------------------------------------- */

/* A backup of the compacted directory (cp -a, as rsync of LOG_DIR would
 * copy it) opens, verifies and reads as the original. */
Test(compact, a_backup_with_gaps_restores)
{
	sb_log_config c = uc_cfg();
	uint64_t seed = 42;
	sb_store *s;
	sb_compact_stats st;
	char cmd[16384], restored[4200];
	fio *f = uc_quick_io(env.stash);

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uc_workload(l, &seed, 2000, 9);
	cr_assert_eq(sb_log_sync(l), 0);
	int64_t now = UC_T0 + (int64_t)uc_MN * 1000000 + (int64_t)UC_RET_MS * 2000000;
	cr_assert_eq(sb_log_compact(l, now, &st), 0);
	uc_model_compact(&st, now);
	/* copied while open, as a backup of LOG_DIR is */
	snprintf(restored, sizeof(restored), "%s/restored", env.root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/'", restored, env.store, restored);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(ut_open(restored, &c, fio_io(f), &s), 0);
	uc_check_log(ut_topic(s, "t"), "restored");
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	uc_verify_clean(restored, "restored");
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
	fio *f = uc_quick_io(env.stash);

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
		sb_log_config c = uc_cfg();
		c.compression = SB_COMPRESS_LZ4;
		c.compression_block_bytes = 1024;
		uint64_t seed = 31 + (uint64_t)order;
		sb_store *s;
		sb_compact_stats st;
		sb_log_stats ls;
		size_t done = 0;
		fio *f = uc_quick_io(env.stash);
		uc_model_reset();
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		uc_workload(l, &seed, 1200, UC_NKEYS);
		uc_unkeyed(l, 60);
		cr_assert_eq(sb_log_sync(l), 0);
		if (order == 0) { /* compacted first: then only the segments it left as they were are compressed */
			cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
			cr_assert_gt(st.segments, 0);
			uc_model_compact(&st, UC_T0);
			cr_assert_eq(sb_log_compress(l, &done), 0);
			cr_assert_eq(sb_log_get_stats(l, &ls), 0);
			cr_assert_leq(ls.compressed, ls.segments - 1 - st.segments, "%u compressed, %u compacted of %u",
				      ls.compressed, st.segments, ls.segments);
		} else { /* compressed first: then nothing is compacted */
			cr_assert_eq(sb_log_compress(l, &done), 0);
			cr_assert_gt(done, 0);
			cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
			cr_assert_eq(st.segments, 0, "%u compressed segments compacted", st.segments);
		}
		uc_check_log(l, order ? "compressed, then compacted" : "compacted, then compressed");
		cr_assert_eq(sb_store_close(s), 0);
		uc_verify_clean(env.store, "compression and compaction");
		cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
		uc_check_log(ut_topic(s, "t"), "reopened");
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
	sb_log_config c = uc_cfg();
	uint64_t seed = 8;
	sb_store *s, *s2;
	sb_compact_stats st;
	char restored[4200];
	fio *f = uc_quick_io(env.stash);

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uc_workload(l, &seed, 1200, UC_NKEYS);
	uc_unkeyed(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
	uc_model_compact(&st, UC_T0);
	snprintf(restored, sizeof(restored), "%s/restored", env.root);
	cr_assert_eq(ut_open(restored, &c, fio_io(f), &s2), 0);
	sb_log *r = ut_topic(s2, "t");
	for (uint64_t o = 0; o < uc_MN; o++) {
		uint8_t val[400];
		char key[64];
		size_t n, kl = 0;
		sb_record_info info;
		if (uc_gone[o])
			continue;
		cr_assert_eq(sb_log_read(l, o, 0, val, sizeof(val), &n, &info), 0);
		if (info.key_len)
			cr_assert_eq(sb_log_read_key(l, o, key, sizeof(key), &kl), 0);
		sb_record_in in = {.key = key, .key_len = (uint32_t)kl, .value = val, .value_len = (uint32_t)n,
				   .flags = info.flags & SB_REC_TOMBSTONE, .timestamp_ns = info.timestamp_ns};
		cr_assert_eq(sb_log_append_at(r, o, &in, 1), 0, "append at %llu", (unsigned long long)o);
	}
	cr_assert_eq(sb_store_close(s), 0);
	uc_check_log(r, "appended back");
	cr_assert_eq(sb_store_close(s2), 0);
	uc_verify_clean(restored, "appended back");
	cr_assert_eq(ut_open(restored, &c, fio_io(f), &s2), 0);
	r = ut_topic(s2, "t");
	uc_check_log(r, "appended back, reopened");
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
	sb_log_config c = uc_cfg();
	uint64_t seed = 77;
	sb_store *s;
	sb_compact_stats st;
	char a[4200], b[4200], cmd[32768];
	fio *f = uc_quick_io(env.stash);

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uc_workload(l, &seed, 800, 9);
	uc_unkeyed(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
	snprintf(a, sizeof(a), "%s/a", env.root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/'", a, env.store, a);
	cr_assert_eq(system(cmd), 0);
	uc_workload(l, &seed, 400, 9); /* more superseded: the next round moves every segment */
	uc_unkeyed(l, 60);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
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
	cr_assert_eq(sb_log_next(t), uc_MN);
	for (uint64_t o = 0; o < uc_MN; o++) {
		uint8_t buf[400];
		size_t n;
		int rc = sb_log_read(t, o, 0, buf, sizeof(buf), &n, NULL);
		cr_assert(rc == 0 || rc == -ENOENT, "offset %llu: %s", (unsigned long long)o, sb_strerror(rc));
		if (!rc)
			cr_assert(ut_match(buf, n, o, 7) && n == uc_M[o].len, "offset %llu", (unsigned long long)o);
	}
	static uint8_t got[UC_MAXREC * 200];
	uint64_t pos = sb_log_stream_start(t), end = sb_log_stream_end(t);
	while (pos < end) {
		size_t nr = 0;
		cr_assert_eq(sb_log_read_stream(t, pos, got, sizeof(got), &nr), 0, "stream at %llu",
			     (unsigned long long)pos);
		cr_assert_gt(nr, 0);
		pos += nr;
	}
	cr_assert_eq(sb_log_compact(t, UC_T0, &st), 0); /* puts the headers right */
	cr_assert_eq(sb_store_close(s), 0);
	uc_verify_clean(b, "a copy taken during a round, compacted again");
	fio_free(f);
}

/* How many of dir/t's index files cover more bytes than their segment. */
static int indexes_ahead(const char *dir)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd),
		 "cd '%s/t' && n=0 && for i in *.idx; do s=${i%%.idx}.seg; "
		 "c=$(od -An -tu4 -j20 -N4 $i | tr -d ' '); "
		 "[ -e $s ] && [ \"$c\" -gt \"$(stat -c %%s $s)\" ] && n=$((n+1)); done; exit $n", dir);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/*
 * A copy of the directory whose index files are older than its segment
 * files: cp -a, rsync -a and tar copy NNNN.idx before NNNN.seg, and a
 * round may compact the segment in between. An index that covers more
 * than its compacted segment is then the index of what the segment was
 * before the round, not proof of records lost, also where its entries
 * below the segment's end name records the round kept (the unkeyed ones
 * at its start). The copy opens, reads as the model says and verifies
 * clean (found by a tester: 8 of 39 live copies refused as "records
 * lost").
 */
Test(compact, a_copy_with_indexes_from_before_the_round_opens)
{
	const char *e = getenv("SB_TEST_COPY_CASES");
	int cases = e ? atoi(e) : 30, ahead = 0;
	sb_log_config c = uc_cfg();
	sb_store *s;
	sb_compact_stats st;
	char a[4200], b[4200], d[4200], cmd[32768];
	fio *f = uc_quick_io(env.stash);

	for (int k = 0; k < cases; k++) {
		uint64_t seed = 100 + (uint64_t)k;
		uc_model_reset();
		snprintf(d, sizeof(d), "%s/s%d", env.root, k);
		snprintf(a, sizeof(a), "%s/a%d", env.root, k);
		snprintf(b, sizeof(b), "%s/b%d", env.root, k);
		cr_assert_eq(mkdir(d, 0755), 0);
		cr_assert_eq(ut_open(d, &c, fio_io(f), &s), 0);
		sb_log *l = ut_topic(s, "t");
		for (int run = 0; run < 6; run++) { /* unkeyed records, then keys that later ones supersede */
			uc_unkeyed(l, (unsigned)(ut_rnd(&seed) % 14));
			uc_workload(l, &seed, 10 + (unsigned)(ut_rnd(&seed) % 40), 3);
		}
		uc_unkeyed(l, 40); /* the keyed ones below the horizon */
		cr_assert_eq(sb_store_close(s), 0); /* every sealed segment's index written */
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/'", a, d, a);
		cr_assert_eq(system(cmd), 0);
		cr_assert_eq(ut_open(d, &c, fio_io(f), &s), 0);
		l = ut_topic(s, "t");
		cr_assert_eq(sb_log_compact(l, UC_T0, &st), 0);
		uc_model_compact(&st, UC_T0);
		cr_assert_eq(sb_store_close(s), 0);
		/* b: the segments as the round left them, the index files as they were before it */
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/t' '%s/' && rm -f '%s/t/clean' && "
			 "for i in '%s/t'/*.idx; do [ -e \"%s/t/$(basename \"${i%%.idx}\").seg\" ] && "
			 "cp -a \"$i\" '%s/t/'; done; true", b, d, b, b, a, b, b);
		cr_assert_eq(system(cmd), 0);
		ahead += indexes_ahead(b);
		cr_assert_eq(ut_open(b, &c, fio_io(f), &s), 0);
		sb_log *t = NULL;
		int rc = sb_store_get(s, "t", &t);
		cr_assert_eq(rc, 0, "case %d: the copy is refused: %s", k, sb_strerror(rc));
		uc_check_log(t, "a copy with indexes from before the round");
		cr_assert_eq(sb_store_close(s), 0);
		uc_verify_clean(b, "a copy with indexes from before the round");
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", a, b, d);
		cr_assert_eq(system(cmd), 0);
	}
	cr_assert_gt(ahead, cases, "%d indexes ahead of their segment in %d cases: too few tested", ahead, cases);
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
	sb_log_config c = uc_cfg();
	uint64_t seed = 9;
	sb_store *s;
	fio *f = uc_quick_io(env.stash);

	uc_model_reset();
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	uc_workload(l, &seed, 200, 5);
	cr_assert_eq(sb_log_delete_before(l, sb_log_next(l)), 0);
	cr_assert_eq(sb_store_remove(s, "t"), 0);
	int64_t now = UC_T0 + (int64_t)UC_RET_MS * 4000000;
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
	sb_log_config c = uc_cfg();
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
		sb_record_in in = {.key = k, .key_len = (uint32_t)uc_mkey(i % 50, k), .value = val,
				   .value_len = sizeof(val)};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	snprintf(td, sizeof(td), "%s/t", env.store);
	uint64_t before = seg_bytes_of(td, &tmp);

	sb_store_options_default(&o); /* the background threads on: the compactor */
	o.defaults = uc_cfg();
	fio *hf = uc_quick_io(env.stash);
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
	uc_verify_clean(env.store, "after the close");

	c = uc_cfg();
	fio *f = uc_quick_io(env.stash);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	sb_compact_stats st;
	cr_assert_eq(sb_log_compact(l, (int64_t)time(NULL) * 1000000000LL, &st), 0);
	cr_expect_gt(st.segments, 100, "the next round compacts the backlog (%u segments)", st.segments);
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	uc_verify_clean(env.store, "after the next round");
}
