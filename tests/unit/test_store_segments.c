/*
 * test_store_segments.c - rolling into segment files with sparse indexes
 * beside them, and the density of those indexes (also after a rebuild: the
 * seed's engine rebuilt an index with a single entry).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "codec.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;
static char tdir[4096];

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "seg"), 0);
	S = NULL;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(segments, .init = setup, .fini = teardown);

static void open_store(uint64_t seg_bytes, uint32_t interval)
{
	ut_cfg(&C, seg_bytes, SB_SYNC_NEVER);
	C.index_interval_bytes = interval;
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

static void close_store(void)
{
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
}

static void check_all(uint64_t n, uint64_t seed, size_t lo, size_t hi)
{
	cr_assert_eq(sb_log_start(L), 0);
	cr_assert_eq(sb_log_next(L), n);
	for (uint64_t i = 0; i < n; i++)
		cr_assert_eq(ut_check(L, i, ut_len(i, seed, lo, hi), seed), 0, "record %llu",
			     (unsigned long long)i);
}

/*
 * Check every .idx file against its .seg: a valid header, entries sorted,
 * each pointing at a record of that offset, the first record covered, and
 * about one entry per `interval` bytes of records. Returns the entry total.
 */
static size_t check_indexes(uint32_t interval)
{
	char name[64], p[4096];
	size_t total = 0;
	char **names = NULL;
	int nseg = uf_list_suffix(tdir, ".seg", &names);
	cr_assert_gt(nseg, 0);
	cr_assert_eq(uf_count_suffix(tdir, ".idx"), nseg, "one index per segment after close");
	for (int k = 0; k < nseg; k++) {
		uint8_t *seg, *idx;
		size_t seglen, idxlen;
		const char *best = names[k];
		uint64_t base;
		cr_assert_eq(sb_seg_name_parse(best, ".seg", &base), 0, "segment name %s", best);
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), tdir, best), &seg, &seglen), 0);
		sb_seg_name(name, base, ".idx");
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), tdir, name), &idx, &idxlen), 0);
		sb_idx_hdr h;
		cr_assert_geq(idxlen, SB_IDX_HDR);
		cr_assert_eq(sb_idx_hdr_decode(idx, &h), 0, "%s header", name);
		cr_expect_eq(h.base_offset, base);
		cr_expect_eq(h.seg_len, seglen, "%s covers %u bytes, segment has %zu", name, h.seg_len,
			     seglen);
		cr_assert_eq(idxlen, SB_IDX_HDR + (size_t)h.count * SB_IDX_ENTRY);
		cr_assert_gt(h.count, 0, "%s: the first record always has an entry", name);
		uint32_t prev_pos = 0;
		for (uint32_t i = 0; i < h.count; i++) {
			sb_idx_entry e;
			sb_rec_hdr rh;
			sb_idx_entry_decode(idx + SB_IDX_HDR + (size_t)i * SB_IDX_ENTRY, &e);
			if (i == 0) {
				cr_expect_eq(e.rel_offset, 0);
				cr_expect_eq(e.pos, SB_SEG_HDR);
				cr_expect_eq(e.rel_stream, 0);
			} else {
				cr_expect_gt(e.pos, prev_pos);
			}
			cr_assert_lt(e.pos, seglen);
			cr_assert_eq(sb_rec_decode(seg + e.pos, seglen - e.pos, 1, &rh), SB_REC_OK,
				     "%s entry %u points at no record", name, i);
			cr_expect_eq(rh.offset, base + e.rel_offset, "%s entry %u", name, i);
			prev_pos = e.pos;
		}
		/* density: about one entry per interval bytes of records */
		size_t rec_bytes = seglen - SB_SEG_HDR;
		size_t want = rec_bytes / interval;
		cr_expect_geq(h.count + 1, want / 2 + 1,
			      "%s: %u entries for %zu bytes at interval %u (want ~%zu)", name, h.count,
			      rec_bytes, interval, want);
		cr_expect_leq(h.count, want + 2, "%s: %u entries for %zu bytes (want ~%zu)", name,
			      h.count, rec_bytes, want);
		total += h.count;
		free(seg);
		free(idx);
	}
	uf_list_free(names, nseg);
	return total;
}

Test(segments, small_segments_roll_into_many_files)
{
	const uint64_t n = 600;
	open_store(8192, 1024);
	cr_assert_eq(ut_append_n(L, n, 1, 50, 400), 0);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	int nseg = uf_count_suffix(tdir, ".seg");
	cr_expect_eq(st.segments, (uint32_t)nseg);
	size_t bytes = 0;
	for (uint64_t i = 0; i < n; i++)
		bytes += SB_REC_HDR + strlen("k") + (i < 10 ? 1 : i < 100 ? 2 : 3) +
			 ut_len(i, 1, 50, 400);
	cr_expect_geq(nseg, (int)(bytes / 8192), "%zu bytes of records in %d segments", bytes, nseg);
	cr_expect_leq(nseg, (int)(bytes / (8192 - 500)) + 1);
	check_all(n, 1, 50, 400);
	close_store();
	/* every segment at most segment_bytes (+ one record that did not fit) */
	cr_expect_leq(uf_sum_suffix(tdir, ".seg"), (off_t)(bytes + (size_t)nseg * SB_SEG_HDR));
	open_store(8192, 1024);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.segments, (uint32_t)nseg);
	cr_expect_eq(st.bytes, (uint64_t)uf_sum_suffix(tdir, ".seg"));
	check_all(n, 1, 50, 400);
	/* appending after reopen continues in order */
	cr_assert_eq(ut_append_n(L, 50, 1, 50, 400), 0);
	close_store();
	open_store(8192, 1024);
	check_all(n + 50, 1, 50, 400);
}

/* Resident KiB of this process's mappings of the files in tdir whose
 * names end in .seg and sort before `below` (the sealed segments), from
 * /proc/self/smaps. */
static long sealed_rss_kib(const char *below)
{
	char line[8192];
	long kib = 0;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perm[8];
		long v;
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) == 3) { /* a mapping */
			char *path = strchr(line, '/'), *nl = strchr(line, '\n');
			if (nl)
				*nl = 0;
			const char *name = path ? strrchr(path, '/') + 1 : "";
			in = path && !strncmp(path, tdir, strlen(tdir)) && strstr(name, ".seg") &&
			     strcmp(name, below) < 0;
		} else if (in && sscanf(line, "Rss: %ld kB", &v) == 1) {
			kib += v;
		}
	}
	fclose(f);
	return kib;
}

/* Sealed segments written through the shared mapping hold no mapped pages
 * once synced: the sync would otherwise write-protect each dirty page with
 * a TLB shootdown of its own (an IPI to the appending thread's CPU a page,
 * 32,768 for a 128 MiB segment). Records of random sizes over several
 * seals; every record read back after (faulted in again), and after a
 * reopen. */
Test(segments, sealed_segments_unmapped_before_their_sync)
{
	const uint64_t n = 3000;
	open_store(256 << 10, 4096);
	cr_assert_eq(ut_append_n(L, n, 7, 200, 1500), 0);
	cr_assert_geq(uf_count_suffix(tdir, ".seg"), 4);
	/* the name of the active (newest) segment: what sorts below is sealed */
	char newest[64] = "";
	DIR *d = opendir(tdir);
	struct dirent *de;
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".seg") && strlen(de->d_name) < sizeof(newest) && strcmp(de->d_name, newest) > 0)
			memcpy(newest, de->d_name, strlen(de->d_name) + 1);
	closedir(d);
	cr_assert_eq(sb_log_sync(L), 0);
	long kib = sealed_rss_kib(newest);
	cr_expect_eq(kib, 0, "%ld KiB of sealed segments still mapped after their sync", kib);
	check_all(n, 7, 200, 1500);
	close_store();
	open_store(256 << 10, 4096);
	check_all(n, 7, 200, 1500);
}

Test(segments, segment_names_are_their_first_offsets)
{
	open_store(4096, 512);
	cr_assert_eq(ut_append_n(L, 200, 2, 100, 300), 0);
	close_store();
	DIR *d = opendir(tdir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		uint64_t base;
		char p[4096];
		uint8_t *b;
		size_t len;
		sb_seg_hdr h;
		sb_rec_hdr rh;
		if (sb_seg_name_parse(e->d_name, ".seg", &base))
			continue;
		n++;
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), tdir, e->d_name), &b, &len), 0);
		cr_assert_geq(len, SB_SEG_HDR + SB_REC_HDR);
		cr_assert_eq(sb_seg_hdr_decode(b, &h), 0);
		cr_expect_eq(h.base_offset, base);
		cr_assert_eq(sb_rec_decode(b + SB_SEG_HDR, len - SB_SEG_HDR, 1, &rh), SB_REC_OK);
		cr_expect_eq(rh.offset, base, "%s starts with record %llu", e->d_name,
			     (unsigned long long)rh.offset);
		free(b);
	}
	closedir(d);
	cr_expect_gt(n, 5);
}

Test(segments, index_has_one_entry_per_interval)
{
	open_store(256 * 1024, 1024);
	cr_assert_eq(ut_append_n(L, 3000, 3, 20, 200), 0);
	close_store();
	size_t entries = check_indexes(1024);
	off_t bytes = uf_sum_suffix(tdir, ".seg");
	cr_expect_gt(entries, (size_t)bytes / 1024 / 2, "%zu entries for %lld bytes", entries,
		     (long long)bytes);
}

/* Delete (or damage) every index, reopen, read everything: the rebuilt
 * indexes must be as dense as written ones. */
static void rebuild_case(int damage)
{
	open_store(64 * 1024, 512);
	cr_assert_eq(ut_append_n(L, 2500, 4, 20, 200), 0);
	close_store();
	check_indexes(512);
	off_t idx_before = uf_sum_suffix(tdir, ".idx");
	if (damage) {
		DIR *d = opendir(tdir);
		struct dirent *e;
		char p[4096];
		while ((e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (l > 4 && !strcmp(e->d_name + l - 4, ".idx"))
				cr_assert_eq(uf_flip_byte(uf_join(p, sizeof(p), tdir, e->d_name),
							  damage == 1 ? -5 : 17, 0x40), 0);
		}
		closedir(d);
	} else {
		cr_assert_gt(uf_remove_suffix(tdir, ".idx"), 1);
	}
	open_store(64 * 1024, 512);
	check_all(2500, 4, 20, 200);
	uint8_t buf[100];
	size_t n;
	cr_assert_eq(sb_log_read_stream(L, sb_log_stream_end(L) / 2, buf, sizeof(buf), &n), 0);
	cr_expect_gt(n, 0);
	close_store();
	check_indexes(512);
	off_t idx_after = uf_sum_suffix(tdir, ".idx");
	/* as dense as the written ones (within 10%): not one entry per segment */
	cr_expect(idx_after * 10 >= idx_before * 9 && idx_after * 10 <= idx_before * 11,
		  "rebuilt indexes: %lld bytes, written ones: %lld", (long long)idx_after,
		  (long long)idx_before);
	open_store(64 * 1024, 512);
	check_all(2500, 4, 20, 200);
}

Test(segments, missing_indexes_rebuilt_dense)
{
	rebuild_case(0);
}

Test(segments, corrupt_index_entries_rebuilt_dense)
{
	rebuild_case(1);
}

Test(segments, corrupt_index_header_rebuilt_dense)
{
	rebuild_case(2);
}

Test(segments, stats_count_bytes_and_timestamps)
{
	open_store(4096, 512);
	for (int i = 0; i < 100; i++) {
		sb_record_in r = {.value = "0123456789", .value_len = 10,
				  .timestamp_ns = 1000000000LL * (i + 1)};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
	}
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.records, 100);
	cr_expect_eq(st.stream_bytes, 1000);
	cr_expect_eq(st.oldest_ns, 1000000000LL);
	cr_expect_eq(st.newest_ns, 100000000000LL);
	cr_expect_geq(st.bytes, 100 * (SB_REC_HDR + 10));
	close_store();
	open_store(4096, 512);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_expect_eq(st.bytes, (uint64_t)uf_sum_suffix(tdir, ".seg"));
	cr_expect_eq(st.oldest_ns, 1000000000LL);
	cr_expect_eq(st.newest_ns, 100000000000LL);
}

Test(segments, records_larger_than_a_segment_get_one_each)
{
	open_store(4096, 512);
	for (uint64_t i = 0; i < 4; i++)
		cr_assert_eq(ut_append1(L, i, 100000 + i, 5, NULL), 0);
	cr_expect_geq(uf_count_suffix(tdir, ".seg"), 3);
	for (uint64_t i = 0; i < 4; i++)
		cr_assert_eq(ut_check(L, i, 100000 + i, 5), 0);
	close_store();
	open_store(4096, 512);
	cr_assert_eq(sb_log_next(L), 4);
	for (uint64_t i = 0; i < 4; i++)
		cr_assert_eq(ut_check(L, i, 100000 + i, 5), 0, "after reopen: %llu",
			     (unsigned long long)i);
}

Test(segments, an_index_of_another_segment_is_not_trusted)
{
	char a[4096], b[4096];
	char **names;
	open_store(8192, 512);
	cr_assert_eq(ut_append_n(L, 400, 6, 50, 300), 0);
	close_store();
	int n = uf_list_suffix(tdir, ".idx", &names);
	cr_assert_gt(n, 4);
	/* the 2nd segment gets the 3rd one's index, the 3rd an empty file */
	cr_assert_eq(rename(uf_join(a, sizeof(a), tdir, names[2]),
			    uf_join(b, sizeof(b), tdir, names[1])), 0);
	cr_assert(!uf_exists(a));
	FILE *f = fopen(a, "w");
	cr_assert_not_null(f);
	fclose(f);
	uf_list_free(names, n);
	open_store(8192, 512);
	check_all(400, 6, 50, 300);
	close_store();
	check_indexes(512);
}

/* The active segment's index keeps its density across sessions (appending
 * after a reopen, after a torn tail was cut, after the index was lost). */
Test(segments, index_stays_dense_across_sessions)
{
	char name[256], p[4096];
	open_store(1 << 20, 1024);
	cr_assert_eq(ut_append_n(L, 1000, 7, 20, 200), 0);
	close_store();
	open_store(1 << 20, 1024);
	cr_assert_eq(ut_append_n(L, 1000, 7, 20, 200), 0);
	close_store();
	check_indexes(1024);
	uf_remove(uf_join(p, sizeof(p), tdir, "clean")); /* a crash: the torn tail below is no damage */
	cr_assert_eq(uf_last_suffix(tdir, ".seg", name, sizeof(name)), 0);
	cr_assert_eq(uf_cut_tail(uf_join(p, sizeof(p), tdir, name), 10), 0);
	open_store(1 << 20, 1024);
	cr_assert_eq(sb_log_next(L), 1999);
	cr_assert_eq(ut_append_n(L, 1001, 7, 20, 200), 0);
	close_store();
	check_indexes(1024);
	uf_remove_suffix(tdir, ".idx");
	open_store(1 << 20, 1024);
	cr_assert_eq(ut_append_n(L, 500, 7, 20, 200), 0);
	check_all(3500, 7, 20, 200);
	close_store();
	check_indexes(1024);
}

static void count_report_any(void *arg, const char *topic, const char *msg)
{
	(void)topic;
	cr_log_info("report: %s", msg);
	++*(int *)arg;
}

static void count_report(void *arg, const char *topic, const char *msg)
{
	(void)topic;
	if (strstr(msg, "removed before its close"))
		++*(int *)arg;
}

/* Options for a fresh store (the old one removed): 4 KiB segments,
 * sync=never, no flusher, reports counted by fn into *said. */
static void fresh_options(sb_store_options *o, sb_report_fn fn, int *said)
{
	cr_assert_eq(uf_rmrf(env.store), 0);
	sb_store_options_default(o);
	ut_cfg(&o->defaults, 4096, SB_SYNC_NEVER);
	o->no_flusher = 1;
	o->report = fn;
	o->report_arg = said;
	*said = 0;
}

/* `fusermount3 -u` returns before the daemon has closed the store; an `rm
 * -rf` of a topic's directory right after it removed the files while the
 * close still had sealed segments' index files and the clean marker to
 * write: they were written into the emptied directory, rm's rmdir failed,
 * and the next open refused the topic ("missing, the newest segment ... at
 * the clean close: records lost"; tests/explore11/ops_rm_topic_after_umount.sh).
 * Now a close whose newest segment's file is gone writes nothing there,
 * and an index save of a segment whose file is gone writes nothing. Each
 * case removes every file of the topic while it is open, with k sealed
 * segments' indexes still to save, then closes. */
Test(segments, files_removed_before_the_close_get_nothing_written_back)
{
	for (int k = 0; k < 4; k++) {
		sb_store_options o;
		int said;
		fresh_options(&o, count_report, &said);
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		L = ut_topic(S, "t");
		cr_assert_not_null(L);
		cr_assert_eq(ut_append_n(L, 3, 1, 1000, 1000), 0); /* segment 0 */
		for (int i = 0; i < k; i++) /* a roll each: k sealed, their indexes not saved */
			cr_assert_eq(ut_append_n(L, 4, 1, 1000, 1000), 0);
		char **names;
		int n = uf_list_suffix(tdir, "", &names);
		cr_assert_geq(n, 1);
		for (int i = 0; i < n; i++) {
			char p[8192];
			snprintf(p, sizeof(p), "%s/%s", tdir, names[i]);
			cr_assert_eq(unlink(p), 0, "%s", p);
		}
		uf_list_free(names, n);
		(void)sb_store_close(S);
		S = NULL;
		n = uf_list_suffix(tdir, "", &names);
		cr_assert_eq(n, 0, "k %d: the close wrote %d files into the emptied directory, the first %s", k, n,
			     n > 0 ? names[0] : "");
		uf_list_free(names, n);
		cr_expect_eq(said, 1, "k %d: the close said so %d times", k, said);
		cr_assert_eq(rmdir(tdir), 0, "k %d: rmdir after rm: %s", k, strerror(errno));
		/* the next open: the topic is gone, nothing refused */
		cr_assert_eq(ut_open(env.store, &o.defaults, NULL, &S), 0);
		cr_assert_eq(sb_store_get(S, "t", &L), -ENOENT);
		cr_assert_eq(sb_store_close(S), 0);
		S = NULL;
	}
}

static void *close_store_thread(void *arg)
{
	(void)sb_store_close(arg);
	return NULL;
}

/* The same race with rm going through in the middle of the close: the
 * close is held at its first index file (a sealed segment's .tix.tmp,
 * made after rm read the directory) while the files rm saw are removed.
 * What is left is that segment's index files (rm never saw them: no
 * remedy in the daemon can know of an rm), nothing of the later sealed
 * segments, no start file, no clean marker; the next open takes the
 * directory as an empty topic. */
Test(segments, files_removed_during_the_close_get_nothing_more_written_back)
{
	sb_log_config c;
	sb_store *s;
	char **names;
	pthread_t t;

	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	fio *f = fio_new_mmap(env.stash);
	cr_assert_not_null(f);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_not_null(l);
	cr_assert_eq(ut_append_n(l, 3, 1, 1000, 1000), 0);
	for (int i = 0; i < 3; i++) /* three sealed segments, their indexes not saved */
		cr_assert_eq(ut_append_n(l, 4, 1, 1000, 1000), 0);
	cr_assert_eq(sb_log_delete_before(l, 1), 0); /* a start to save at the close */
	int n = uf_list_suffix(tdir, "", &names); /* what rm reads */
	cr_assert_geq(n, 4);
	fio_slow(f, FIO_PWRITE, FIO_HOLD, ".tix.tmp");
	cr_assert_eq(pthread_create(&t, NULL, close_store_thread, s), 0);
	for (int k = 0; !fio_slowed(f) && k < 10000; k++)
		usleep(1000);
	cr_assert_eq(fio_slowed(f), 1u, "the close wrote no index file");
	for (int i = 0; i < n; i++) {
		char p[8192];
		snprintf(p, sizeof(p), "%s/%s", tdir, names[i]);
		cr_assert_eq(unlink(p), 0, "%s", p);
	}
	uf_list_free(names, n);
	fio_slow(f, FIO_PWRITE, 0, NULL);
	pthread_join(t, NULL);
	fio_free(f);
	n = uf_list_suffix(tdir, "", &names);
	for (int i = 0; i < n; i++)
		cr_expect(!strcmp(names[i], "00000000000000000000.tix") || !strcmp(names[i], "00000000000000000000.idx"),
			  "written after rm: %s", names[i]);
	uf_list_free(names, n);
	cr_assert_eq(ut_open(env.store, &c, NULL, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L, "the next open refused the topic");
	cr_expect_eq(sb_log_next(L), sb_log_start(L), "records in a topic whose segments are gone");
}

/* What the race above leaves when rm went through first, in the worst
 * case: every segment file gone, the clean marker, the start file, index
 * files and key tables still there. No record is left to keep: the next
 * open starts an empty log and says so (it refused the topic: "missing,
 * the newest segment ... at the clean close: records lost"), and nothing
 * of the old records is served, by offset or by key. */
Test(segments, a_topic_whose_segment_files_were_all_removed_opens_empty)
{
	for (int keyed = 0; keyed < 2; keyed++) {
		sb_store_options o;
		int said;
		fresh_options(&o, count_report_any, &said);
		o.defaults.key_memtable_bytes = 1; /* key tables on disk */
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		L = ut_topic(S, "t");
		cr_assert_not_null(L);
		for (uint64_t i = 0; i < 20; i++) {
			sb_record_in r = {.value = "value", .value_len = 5, .key = "k", .key_len = keyed};
			cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
		}
		cr_assert_eq(sb_log_delete_before(L, 2), 0);
		close_store();
		cr_assert_gt(uf_remove_suffix(tdir, ".seg"), 0);
		cr_assert(uf_exists(tdir) && uf_count_suffix(tdir, "clean") == 1);
		said = 0;
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		cr_assert_eq(sb_store_get(S, "t", &L), 0, "keyed %d: the topic was refused", keyed);
		cr_expect_eq(sb_log_next(L), sb_log_start(L), "keyed %d: records in a topic without segments", keyed);
		cr_expect_geq(said, 1, "keyed %d: the open said nothing", keyed);
		uint8_t buf[16];
		size_t n;
		cr_expect_eq(sb_log_read(L, 5, 0, buf, sizeof(buf), &n, NULL), -ENOENT);
		if (keyed)
			cr_expect_eq(sb_log_get_key(L, "k", 1, buf, sizeof(buf), &n, NULL), -ENOENT,
				     "a removed record served by its key");
		uint64_t first = 0;
		sb_record_in r = {.value = "again", .value_len = 5, .key = "k", .key_len = keyed};
		cr_assert_eq(sb_log_append(L, &r, 1, &first), 0);
		close_store();
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		cr_assert_eq(sb_store_get(S, "t", &L), 0);
		cr_expect_eq(sb_log_next(L), first + 1);
		if (keyed) {
			cr_expect_eq(sb_log_get_key(L, "k", 1, buf, sizeof(buf), &n, NULL), 0);
			cr_expect(n == 5 && !memcmp(buf, "again", 5));
		}
		close_store();
		sb_verify_result res;
		cr_assert_eq(sb_verify_topic(tdir, NULL, NULL, NULL, &res), 0);
		for (int k = 0; k < SB_VERIFY_NKINDS; k++)
			cr_expect_eq(res.problems[k], 0, "keyed %d: verify: %llu problems of kind %d", keyed,
				     (unsigned long long)res.problems[k], k);
	}
}
