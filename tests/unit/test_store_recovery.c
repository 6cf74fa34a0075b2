/*
 * test_store_recovery.c - what reopening finds after damage and crashes:
 * torn and garbled tails are cut back to the last whole record (the seed's
 * engine refused to open), appending then continues at the right offset
 * without overwriting anything (the seed's engine overwrote data after a
 * read), indexes are rebuilt, zeros end a segment, clean markers, and the
 * log start persists.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;
static char tdir[4096];

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "rec"), 0);
	S = NULL;
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	ut_cfg(&C, 8192, SB_SYNC_NEVER);
	C.index_interval_bytes = 512;
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(recovery, .init = setup, .fini = teardown);

static void open_store(void)
{
	int rc = ut_open(env.store, &C, NULL, &S);
	cr_assert_eq(rc, 0, "reopen failed: %s", sb_strerror(rc));
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

static void close_store(void)
{
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
}

static char *last_seg(char *buf)
{
	char name[256];
	cr_assert_eq(uf_last_suffix(tdir, ".seg", name, sizeof(name)), 0);
	return uf_join(buf, 4096, tdir, name);
}

/* Bytes record i takes on disk (ut_append1 keys it "k<i>"). */
static size_t rec_bytes(uint64_t i, size_t len)
{
	char k[32];
	return SB_REC_HDR + (size_t)snprintf(k, sizeof(k), "k%llu", (unsigned long long)i) + len;
}

#define LEN(i) ut_len((i), 1, 30, 300)

/* What a crash leaves where a clean close left more: no clean marker, and
 * no index file of the segment being written (the damage these tests make
 * in a cleanly closed log is then a torn write, not bit rot). */
static void as_if_crashed(void)
{
	char p[4096], name[256];
	size_t nl;
	cr_assert_eq(uf_last_suffix(tdir, ".seg", name, sizeof(name)), 0);
	nl = strlen(name);
	memcpy(name + nl - 4, ".idx", 5);
	uf_remove(uf_join(p, sizeof(p), tdir, name));
	uf_remove(uf_join(p, sizeof(p), tdir, "clean"));
}

/* A crash leaves no clean marker (it goes, synced, before the first
 * append): damage after a clean close is never a torn write (SPEC §6). */
static void no_clean_marker(void)
{
	char p[4096];
	uf_remove(uf_join(p, sizeof(p), tdir, "clean"));
}

static void fill(uint64_t n)
{
	for (uint64_t i = sb_log_next(L); i < n; i++)
		cr_assert_eq(ut_append1(L, i, LEN(i), 1, NULL), 0);
}

/* Records [0, n) intact, next == n. */
static void expect_intact(uint64_t n, const char *when)
{
	cr_assert_eq(sb_log_next(L), n, "%s: next %llu, want %llu", when,
		     (unsigned long long)sb_log_next(L), (unsigned long long)n);
	for (uint64_t i = sb_log_start(L); i < n; i++)
		cr_assert_eq(ut_check(L, i, LEN(i), 1), 0, "%s: record %llu", when,
			     (unsigned long long)i);
}

/* Append after recovery: continues at `n`, and everything survives another
 * clean reopen. */
static void append_continues(uint64_t n)
{
	uint64_t got = 0;
	cr_assert_eq(ut_append1(L, n, LEN(n), 1, &got), 0);
	cr_assert_eq(got, n, "append after recovery got offset %llu, want %llu",
		     (unsigned long long)got, (unsigned long long)n);
	fill(n + 40);
	expect_intact(n + 40, "after appending");
	close_store();
	open_store();
	expect_intact(n + 40, "after reopening");
}

/* Size of the last segment file. */
static off_t last_size(void)
{
	char p[4096];
	off_t n = uf_size(last_seg(p));
	cr_assert_geq(n, 0);
	return n;
}

/*
 * Recovery really cut: the damage left the last segment `damaged` bytes long
 * with records [0, n] in it (`clean` bytes before the damage); after the
 * reopen it holds records [0, n) and ends right after the last of them.
 */
static void expect_cut(off_t clean, off_t damaged, uint64_t n)
{
	off_t whole = clean - (off_t)rec_bytes(n, LEN(n));
	cr_assert_gt(damaged, whole, "the damage left nothing to cut (%lld <= %lld bytes)",
		     (long long)damaged, (long long)whole);
	cr_expect_eq(last_size(), whole, "after recovery the last segment is %lld bytes, "
		     "want %lld (the damaged tail of %lld bytes was not cut)",
		     (long long)last_size(), (long long)whole, (long long)(damaged - whole));
}

Test(recovery, torn_tail_is_cut_to_the_last_whole_record)
{
	char p[4096];
	open_store();
	fill(100);
	close_store();
	no_clean_marker(); /* a crash, not a change after a clean close */
	off_t clean = last_size();
	cr_assert_eq(uf_cut_tail(last_seg(p), (off_t)rec_bytes(99, LEN(99)) / 2), 0);
	off_t damaged = last_size();
	open_store();
	expect_intact(99, "torn tail");
	expect_cut(clean, damaged, 99);
	append_continues(99);
}

Test(recovery, torn_record_header_is_cut)
{
	char p[4096];
	open_store();
	fill(60);
	close_store();
	no_clean_marker(); /* a crash, not a change after a clean close */
	off_t clean = last_size();
	cr_assert_eq(uf_cut_tail(last_seg(p), (off_t)rec_bytes(59, LEN(59)) - 10), 0);
	off_t damaged = last_size();
	open_store();
	expect_intact(59, "torn header");
	expect_cut(clean, damaged, 59);
	append_continues(59);
}

Test(recovery, read_then_append_after_reopen_overwrites_nothing)
{
	uint8_t buf[512];
	size_t n;
	open_store();
	fill(100);
	close_store();
	open_store();
	/* read the last record, the stream's tail, then append */
	cr_assert_eq(ut_check(L, 99, LEN(99), 1), 0);
	cr_assert_eq(sb_log_read_stream(L, sb_log_stream_end(L) - 10, buf, sizeof(buf), &n), 0);
	cr_expect_eq(n, 10);
	cr_assert_eq(ut_check(L, 0, LEN(0), 1), 0);
	append_continues(100);
}

Test(recovery, torn_tail_then_read_then_append)
{
	char p[4096];
	open_store();
	fill(80);
	close_store();
	no_clean_marker(); /* a crash, not a change after a clean close */
	off_t clean = last_size();
	cr_assert_eq(uf_cut_tail(last_seg(p), 7), 0);
	off_t damaged = last_size();
	open_store();
	expect_cut(clean, damaged, 79);
	cr_assert_eq(ut_check(L, 78, LEN(78), 1), 0);
	uint8_t b[64];
	cr_expect_eq(sb_log_read(L, 79, 0, b, sizeof(b), &(size_t){0}, NULL), -ENOENT);
	append_continues(79);
}

Test(recovery, garbled_last_record_is_cut)
{
	char p[4096];
	open_store();
	fill(70);
	close_store();
	off_t clean = last_size();
	cr_assert_eq(uf_flip_byte(last_seg(p), -3, 0x10), 0); /* in its payload */
	as_if_crashed();
	open_store();
	expect_intact(69, "garbled payload");
	expect_cut(clean, clean, 69);
	append_continues(69);
}

Test(recovery, garbled_last_record_header_is_cut)
{
	char p[4096];
	open_store();
	fill(70);
	close_store();
	/* the offset field of the last record */
	off_t clean = last_size();
	cr_assert_eq(uf_flip_byte(last_seg(p), -(off_t)rec_bytes(69, LEN(69)) + 9, 0x01), 0);
	as_if_crashed();
	open_store();
	expect_intact(69, "garbled header");
	expect_cut(clean, clean, 69);
	append_continues(69);
}

Test(recovery, zeros_after_the_last_record_are_the_end)
{
	char p[4096];
	static const uint8_t zeros[6000];
	open_store();
	fill(50);
	close_store();
	cr_assert_eq(uf_write_at(last_seg(p), -1, zeros, sizeof(zeros)), 0);
	open_store();
	expect_intact(50, "zero tail");
	append_continues(50);
}

Test(recovery, empty_new_segment_file_is_dropped)
{
	char p[4096], name[64];
	open_store();
	fill(50);
	close_store();
	no_clean_marker(); /* a crash, not a change after a clean close */
	/* a crash right after creating the next segment file */
	sb_seg_name(name, 50, ".seg");
	cr_assert_eq(uf_write_at(uf_join(p, sizeof(p), tdir, name), 0, "", 0), -ENOENT);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fclose(f);
	open_store();
	expect_intact(50, "empty last segment");
	append_continues(50);
}

Test(recovery, crc_mismatch_inside_a_sealed_segment_is_reported_on_read)
{
	char p[4096];
	char **names;
	open_store();
	fill(200);
	close_store();
	int n = uf_list_suffix(tdir, ".seg", &names);
	cr_assert_gt(n, 3);
	uint64_t base;
	cr_assert_eq(sb_seg_name_parse(names[1], ".seg", &base), 0);
	/* last payload byte of the first record of the second segment */
	cr_assert_eq(uf_flip_byte(uf_join(p, sizeof(p), tdir, names[1]),
				  SB_SEG_HDR + (off_t)rec_bytes(base, LEN(base)) - 1, 0x20), 0);
	uf_list_free(names, n);
	open_store();
	cr_expect_eq(ut_check(L, base, LEN(base), 1), SB_ECORRUPT, "damaged record %llu",
		     (unsigned long long)base);
	cr_expect_eq(ut_check(L, 0, LEN(0), 1), 0);
	cr_expect_eq(ut_check(L, 199, LEN(199), 1), 0);
	cr_expect_eq(sb_log_next(L), 200);
}

Test(recovery, clean_close_leaves_a_matching_clean_marker)
{
	char p[4096], q[4096];
	uint8_t *b;
	size_t n;
	sb_clean_rec cr;
	open_store();
	fill(120);
	close_store();
	ut_topic_path(&env, "t", "clean", q, sizeof(q));
	cr_assert_eq(uf_read_all(q, &b, &n), 0, "no clean marker after a clean close");
	cr_assert_eq(n, SB_CLEAN_SIZE);
	cr_assert_eq(sb_clean_decode(b, &cr), 0);
	free(b);
	char name[256];
	uint64_t base;
	cr_assert_eq(uf_last_suffix(tdir, ".seg", name, sizeof(name)), 0);
	cr_assert_eq(sb_seg_name_parse(name, ".seg", &base), 0);
	cr_expect_eq(cr.last_base, base);
	cr_expect_eq(cr.last_len, (uint64_t)uf_size(last_seg(p)));
	open_store();
	fill(121);
	cr_expect(!uf_exists(q), "a clean marker while the log is open for appending");
	close_store();
	cr_expect(uf_exists(q));
}

Test(recovery, delete_before_and_retention_persist)
{
	open_store();
	fill(300);
	cr_assert_eq(sb_log_delete_before(L, 123), 0);
	close_store();
	open_store();
	cr_expect_eq(sb_log_start(L), 123);
	expect_intact(300, "after delete_before");
	cr_expect_eq(sb_log_read(L, 122, 0, (char[8]){0}, 8, &(size_t){0}, NULL), -ENOENT);
	close_store();
	C.retention_bytes = 3 * 8192;
	open_store();
	size_t dropped = 0;
	cr_assert_eq(sb_log_retain(L, 0, &dropped), 0);
	uint64_t start = sb_log_start(L);
	cr_expect_gt(dropped, 0);
	cr_expect_gt(start, 123);
	close_store();
	open_store();
	cr_expect_eq(sb_log_start(L), start, "retention start lost on reopen");
	expect_intact(300, "after retention");
}

/*
 * A leftover segment wholly below the start (an unlink that failed, or a
 * backup copy taken while the head was being removed: SPEC §6) must not
 * make the open drop the live segments after the gap.
 */
Test(recovery, stale_segment_below_the_start_is_not_a_break)
{
	char **names, p[4096];
	uint8_t *old;
	size_t oldlen;
	open_store();
	fill(300);
	int n = uf_list_suffix(tdir, ".seg", &names);
	cr_assert_gt(n, 6);
	uf_join(p, sizeof(p), tdir, names[0]);
	cr_assert_eq(uf_read_all(p, &old, &oldlen), 0);
	uf_list_free(names, n);
	cr_assert_eq(sb_log_delete_before(L, 150), 0);
	close_store();
	cr_assert(!uf_exists(p));
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(old, 1, oldlen, f), oldlen);
	fclose(f);
	free(old);
	open_store();
	cr_expect_eq(sb_log_next(L), 300, "live records dropped: start %llu next %llu",
		     (unsigned long long)sb_log_start(L), (unsigned long long)sb_log_next(L));
	cr_expect_eq(sb_log_start(L), 150);
	expect_intact(300, "with a stale segment below the start");
}

Test(recovery, topic_without_segments_opens_at_its_start)
{
	open_store();
	fill(10);
	cr_assert_eq(sb_log_delete_before(L, 10), 0);
	close_store();
	uf_remove_suffix(tdir, ".seg");
	uf_remove_suffix(tdir, ".idx");
	uf_remove_suffix(tdir, "clean");
	open_store();
	cr_expect_eq(sb_log_start(L), 10);
	cr_expect_eq(sb_log_next(L), 10);
	append_continues(10);
}

/* SPEC §6: a copy of LOG_DIR taken at any moment (file by file, while the
 * log is appended to and its head removed) recovers to a prefix. */
Test(recovery, copy_taken_while_writing_recovers_to_a_prefix)
{
	char copy[2048], ctdir[4096];
	snprintf(copy, sizeof(copy), "%s/copy", env.root);
	snprintf(ctdir, sizeof(ctdir), "%s/t", copy);
	for (int round = 0; round < 6; round++) {
		char **names;
		cr_assert_eq(uf_rmrf(copy), 0);
		cr_assert_eq(mkdir(copy, 0755), 0);
		cr_assert_eq(mkdir(ctdir, 0755), 0);
		open_store();
		fill(sb_log_next(L) + 100);
		int n = uf_list_suffix(tdir, "", &names);
		cr_assert_gt(n, 0);
		for (int i = 0; i < n; i++) {
			char a[4096], b[4096];
			if (i == n / 2) { /* the log moves on while the copy is half done */
				fill(sb_log_next(L) + 60);
				cr_assert_eq(sb_log_delete_before(L, sb_log_next(L) - 150), 0);
			}
			if (uf_copy_file(uf_join(a, sizeof(a), tdir, names[i]),
					 uf_join(b, sizeof(b), ctdir, names[i])) == -ENOENT)
				continue; /* removed meanwhile */
		}
		uf_list_free(names, n);
		uint64_t next = sb_log_next(L);
		close_store();
		sb_store *cs;
		int rc = ut_open(copy, &C, NULL, &cs);
		cr_assert_eq(rc, 0, "round %d: the copy does not open: %s", round, sb_strerror(rc));
		sb_log *cl;
		cr_assert_eq(sb_store_get(cs, "t", &cl), 0);
		uint64_t cs_start = sb_log_start(cl), cs_next = sb_log_next(cl);
		cr_expect_leq(cs_next, next);
		cr_expect_gt(cs_next, cs_start, "round %d: the copy is empty ([%llu, %llu))", round,
			     (unsigned long long)cs_start, (unsigned long long)cs_next);
		for (uint64_t i = cs_start; i < cs_next; i++)
			cr_assert_eq(ut_check(cl, i, LEN(i), 1), 0, "round %d: copy's record %llu", round,
				     (unsigned long long)i);
		cr_assert_eq(sb_store_close(cs), 0);
	}
}

/*
 * Bit rot in the header of a sealed segment in the middle is not a torn
 * tail: recovery may refuse to open (SB_ECORRUPT) or skip the damage, but
 * must not delete the healthy, synced segments after it.
 */
/* Records [0, n) intact, next == n, but for a gap (ENOENT) from the damaged
 * record of segment [base, end) to that segment's end. */
/* Every record of [start, n) reads back but one in [base, end): the
 * damaged record (its segment's later records resume after it). */
static void expect_gap(uint64_t base, uint64_t end, uint64_t n, const char *when)
{
	uint64_t i = sb_log_start(L);

	cr_assert_eq(sb_log_next(L), n, "%s: next %llu, want %llu", when, (unsigned long long)sb_log_next(L),
		     (unsigned long long)n);
	for (; i < end && ut_check(L, i, LEN(i), 1) == 0; i++)
		;
	cr_assert(i >= base && i < end, "%s: the gap starts at %llu, outside [%llu, %llu)", when,
		  (unsigned long long)i, (unsigned long long)base, (unsigned long long)end);
	cr_assert_eq(ut_check(L, i, LEN(i), 1), -ENOENT, "%s: record %llu", when, (unsigned long long)i);
	for (i++; i < n; i++)
		cr_assert_eq(ut_check(L, i, LEN(i), 1), 0, "%s: record %llu", when, (unsigned long long)i);
}

static void middle_damage(int in_record)
{
	char **names, p[4096];
	open_store();
	fill(400);
	close_store();
	int n = uf_list_suffix(tdir, ".seg", &names);
	cr_assert_gt(n, 8);
	uint64_t base3;
	cr_assert_eq(sb_seg_name_parse(names[3], ".seg", &base3), 0);
	/* a byte of the header, or of a record's payload near the start */
	cr_assert_eq(uf_flip_byte(uf_join(p, sizeof(p), tdir, names[3]),
				  in_record ? SB_SEG_HDR + 400 : 10, 0x01), 0);
	if (in_record)
		uf_remove_suffix(tdir, ".idx"); /* and the index must be rebuilt */
	/* sb_store.h: the topic is refused, nothing is deleted, the store opens */
	int rc = ut_open(env.store, &C, NULL, &S);
	cr_assert_eq(rc, 0, "open of a store with a damaged topic: %s", sb_strerror(rc));
	rc = sb_store_get(S, "t", &L);
	cr_expect_eq(rc, SB_ECORRUPT, "open of a log damaged before its tail: %s",
		     sb_strerror(rc));
	sb_store_close(S);
	S = NULL;
	int lost = 0;
	for (int i = 0; i < n; i++)
		lost += !uf_exists(uf_join(p, sizeof(p), tdir, names[i]));
	cr_expect_eq(lost, 0, "recovery deleted %d segments (%d before)", lost, n);
	/* with `repair` a bad header is written anew and every record
	 * stays; a damaged record goes alone (a gap), the records after it
	 * in its segment and the later segments stay */
	sb_store_options o;
	sb_store_options_default(&o);
	o.defaults = C;
	o.no_flusher = 1;
	o.repair = 1;
	rc = sb_store_open(env.store, &o, &S);
	cr_assert_eq(rc, 0, "repair open: %s", sb_strerror(rc));
	cr_assert_eq(sb_store_get(S, "t", &L), 0);
	uint64_t next = sb_log_next(L);
	if (in_record) {
		uint64_t base4;
		cr_assert_eq(sb_seg_name_parse(names[4], ".seg", &base4), 0);
		expect_gap(base3, base4, 400, "after repair");
		uint64_t got = 0;
		cr_assert_eq(ut_append1(L, 400, LEN(400), 1, &got), 0);
		cr_assert_eq(got, 400);
		uf_list_free(names, n);
		return;
	}
	cr_expect_eq(next, 400, "cut at %llu, damaged segment %llu", (unsigned long long)next,
		     (unsigned long long)base3);
	expect_intact(next, "after repair");
	append_continues(next);
	uf_list_free(names, n);
}

Test(recovery, corrupt_middle_segment_header_is_refused_then_repaired)
{
	middle_damage(0);
}

Test(recovery, corrupt_record_in_a_middle_segment_is_refused_then_repaired)
{
	middle_damage(1);
}

/* Run fn in a child that dies without closing anything (kill -9). */
static void in_child_then_die(void (*fn)(void))
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: status %d", st);
}

static void child_appends(void)
{
	sb_store *s;
	C.sync = SB_SYNC_ALWAYS;
	if (ut_open(env.store, &C, NULL, &s))
		_exit(2);
	sb_log *l = ut_topic(s, "t");
	if (!l)
		_exit(3);
	for (uint64_t i = sb_log_next(l); i < 90; i++)
		if (ut_append1(l, i, LEN(i), 1, NULL))
			_exit(4);
	if (sb_log_delete_before(l, 7))
		_exit(5);
}

Test(recovery, process_crash_keeps_every_acknowledged_record)
{
	C.segment_bytes = 4096;
	in_child_then_die(child_appends);
	cr_expect(!uf_exists(ut_topic_path(&env, "t", "clean", (char[4096]){0}, 4096)));
	open_store();
	cr_expect_eq(sb_log_start(L), 7);
	expect_intact(90, "after kill -9");
	/* read, then append, then reopen: nothing overwritten */
	append_continues(90);
}

static void child_appends_unsynced(void)
{
	sb_store *s;
	if (ut_open(env.store, &C, NULL, &s))
		_exit(2);
	sb_log *l = ut_topic(s, "t");
	if (!l)
		_exit(3);
	for (uint64_t i = sb_log_next(l); i < 500; i++)
		if (ut_append1(l, i, LEN(i), 1, NULL))
			_exit(4);
}

/* A process crash is not a power loss: what was appended is in the page
 * cache and must be found (format.h: a preallocated segment ends in zeros). */
Test(recovery, process_crash_under_sync_never_keeps_appended_records)
{
	in_child_then_die(child_appends_unsynced);
	open_store();
	expect_intact(500, "after kill -9 (sync=never)");
	append_continues(500);
}

Test(recovery, second_crash_after_recovery)
{
	char p[4096];
	C.segment_bytes = 4096;
	in_child_then_die(child_appends);
	open_store();
	close_store();
	no_clean_marker(); /* a crash, not a change after a clean close */
	cr_assert_eq(uf_cut_tail(last_seg(p), 5), 0);
	in_child_then_die(child_appends); /* appends up to 90 again */
	open_store();
	cr_expect_eq(sb_log_start(L), 7);
	expect_intact(90, "after two crashes");
}

/* Config is not format: records written under a larger max_record_bytes or
 * segment_bytes are still the log after reopening with smaller ones. */
Test(recovery, smaller_limits_on_reopen_keep_existing_records)
{
	C.segment_bytes = 1 << 20;
	open_store();
	for (uint64_t i = 0; i < 30; i++)
		cr_assert_eq(ut_append1(L, i, 5000 + i, 3, NULL), 0);
	close_store();
	uf_remove_suffix(tdir, "clean"); /* force a scan of the last segment */
	uf_remove_suffix(tdir, ".idx");
	C.segment_bytes = 4096;
	C.max_record_bytes = 1000;
	open_store();
	cr_assert_eq(sb_log_next(L), 30, "records over the new max_record_bytes were cut: next %llu",
		     (unsigned long long)sb_log_next(L));
	for (uint64_t i = 0; i < 30; i++)
		cr_assert_eq(ut_check(L, i, 5000 + i, 3), 0, "record %llu", (unsigned long long)i);
	cr_expect_eq(ut_append1(L, 30, 1001, 3, NULL), -EFBIG, "the new limit applies to appends");
	cr_assert_eq(ut_append1(L, 30, 900, 3, NULL), 0);
	close_store();
	open_store();
	cr_expect_eq(sb_log_next(L), 31);
}

/*
 * Positions near the top of their range, as a damaged or forged segment
 * header can claim them (found by tests/fuzz/fuzz_segment: a base stream
 * position of 2^64 - 120 made the stream end wrap below the stream start).
 * Generated: segments of random records whose header says a random base
 * stream position near 2^64 (or near the largest one the format allows)
 * and a random base offset (near 2^64 every 4th case), opened read-write,
 * with `repair`, with `full_check`, read-only, with or without a clean
 * marker. Whatever the open does (refuse, cut, keep), no position wraps:
 * start <= next, stream start <= stream end, every record read lies inside
 * the stream and follows the one before, the stream is the records; an
 * append either lands after the end or fails with EOVERFLOW, leaving the
 * log as it was and able to take records at the next reopen.
 * SB_TOP_CASES=N runs N cases (default 96).
 */
#define TOP_CASES 96
#define TOP_RECS 24

static uint64_t top_mix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void top_write(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

/* One segment file of nrec records from `base` at stream `bstream`; its
 * size. The value lengths go to vlen[]. */
static size_t top_segment(uint64_t base, uint64_t bstream, size_t nrec, uint64_t *rng, int clean,
			  size_t vlen[])
{
	static uint8_t seg[SB_SEG_HDR + TOP_RECS * (SB_REC_HDR + 8 + 400)];
	uint8_t val[400], cl[SB_CLEAN_SIZE];
	char name[32], p[4096];
	sb_seg_hdr h = {.base_offset = base, .base_stream = bstream};
	size_t len = SB_SEG_HDR;

	sb_seg_hdr_encode(seg, &h);
	for (size_t i = 0; i < nrec; i++) {
		vlen[i] = top_mix(rng) % 400;
		ut_fill(val, vlen[i], base + i, 7);
		sb_record_in r = {.key = "key", .key_len = (uint32_t)(top_mix(rng) % 4), .value = val,
				  .value_len = (uint32_t)vlen[i]};
		len += sb_rec_encode(seg + len, base + i, 1000 + (int64_t)i, &r);
	}
	mkdir(env.store, 0755);
	mkdir(tdir, 0755);
	sb_seg_name(name, base, SB_SEG_SUFFIX);
	top_write(uf_join(p, sizeof(p), tdir, name), seg, len);
	if (clean) {
		sb_clean_rec c = {base, len};
		sb_clean_encode(cl, &c);
		top_write(uf_join(p, sizeof(p), tdir, "clean"), cl, sizeof(cl));
	}
	return len;
}

/* The positions of L hold together; 1 if every record read. */
static int top_check(const char *when)
{
	uint64_t start = sb_log_start(L), next = sb_log_next(L);
	uint64_t ss = sb_log_stream_start(L), se = sb_log_stream_end(L), total = 0, prev_end = ss;
	static uint8_t buf[512];
	sb_record_info info;
	size_t n;
	int all = 1;

	cr_assert_leq(start, next, "%s: start %llu > next %llu", when, (unsigned long long)start,
		      (unsigned long long)next);
	cr_assert_leq(ss, se, "%s: stream start %llu > stream end %llu", when, (unsigned long long)ss,
		      (unsigned long long)se);
	for (uint64_t o = start; o < next; o++) {
		if (sb_log_read(L, o, 0, buf, sizeof(buf), &n, &info)) {
			all = 0;
			continue;
		}
		cr_assert(info.stream_pos >= ss && info.stream_pos <= se && se - info.stream_pos >= info.value_len,
			  "%s: record %llu at stream %llu + %u, the stream is [%llu, %llu)", when,
			  (unsigned long long)o, (unsigned long long)info.stream_pos, info.value_len,
			  (unsigned long long)ss, (unsigned long long)se);
		cr_assert(!all || info.stream_pos == prev_end, "%s: record %llu not after its predecessor", when,
			  (unsigned long long)o);
		prev_end = info.stream_pos + info.value_len;
		total += info.value_len;
	}
	if (all)
		cr_assert_eq(se - ss, total, "%s: the stream holds %llu bytes, its records %llu", when,
			     (unsigned long long)(se - ss), (unsigned long long)total);
	return all;
}

Test(recovery, positions_near_the_top_never_wrap)
{
	uint64_t rng = 42;
	size_t vlen[TOP_RECS];
	sb_store_options o;
	const char *env_n = getenv("SB_TOP_CASES");
	int ncases = env_n ? atoi(env_n) : TOP_CASES, served = 0, refused = 0, overflows = 0, rolls = 0;

	for (int c = 0; c < ncases; c++) {
		size_t nrec = 1 + top_mix(&rng) % TOP_RECS, sum = 0;
		uint64_t base = c % 4 == 3 ? UINT64_MAX - top_mix(&rng) % (2 * TOP_RECS) : top_mix(&rng) % 1000;
		/* near 2^64, or near 2^64 less the largest segment (the top a
		 * base may have, so that nothing inside a segment can wrap) */
		uint64_t room = c % 2 ? (uint64_t)SB_SEG_MAX_BYTES : 0;
		uint64_t bstream = UINT64_MAX - room - top_mix(&rng) % (TOP_RECS * 400);
		int mode = (c / 4) % 4;
		char when[96];

		uf_rmrf(tdir);
		top_segment(base, bstream, nrec, &rng, (c / 16) % 2, vlen);
		for (size_t i = 0; i < nrec; i++)
			sum += vlen[i];
		snprintf(when, sizeof(when), "case %d (base %llu, stream %llu + %zu, mode %d)", c,
			 (unsigned long long)base, (unsigned long long)bstream, sum, mode);
		sb_store_options_default(&o);
		o.defaults = C;
		o.no_flusher = 1;
		o.repair = mode == 1 || mode == 3;
		o.full_check = mode == 3;
		o.read_only = mode == 2;
		if (sb_store_open(env.store, &o, &S)) {
			refused++;
			continue;
		}
		if (sb_store_get(S, "t", &L)) {
			close_store();
			refused++;
			continue;
		}
		served++;
		top_check(when);
		if (!o.read_only) {
			/* appends: after the end, or EOVERFLOW and nothing changes;
			 * enough of them to roll into a new segment */
			for (int i = 0; i < 26; i++) {
				uint64_t next = sb_log_next(L), se = sb_log_stream_end(L), got;
				int rc = ut_append1(L, next, 300, 1, &got);
				if (rc == 0) {
					rolls += uf_count_suffix(tdir, ".seg") > 1 && i + 1 == 26;
					cr_assert_eq(got, next, "%s", when);
					cr_assert(sb_log_stream_end(L) > se && sb_log_stream_end(L) - se == 300,
						  "%s: an append moved the stream end from %llu to %llu", when,
						  (unsigned long long)se, (unsigned long long)sb_log_stream_end(L));
				} else {
					cr_assert_eq(rc, -EOVERFLOW, "%s: append: %s", when, sb_strerror(rc));
					overflows++;
					cr_assert(sb_log_next(L) == next && sb_log_stream_end(L) == se, "%s", when);
				}
			}
			top_check(when);
		}
		uint64_t next = sb_log_next(L);
		close_store();
		if (o.read_only)
			continue;
		o.repair = 0;
		o.full_check = 0;
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0, "%s: reopen", when);
		cr_assert_eq(sb_store_get(S, "t", &L), 0, "%s: refused at the reopen", when);
		cr_assert_eq(sb_log_next(L), next, "%s: next %llu at the reopen, was %llu", when,
			     (unsigned long long)sb_log_next(L), (unsigned long long)next);
		top_check(when);
		close_store();
	}
	/* the cases reached what they are for */
	cr_expect(ncases < TOP_CASES || (served && refused && overflows && rolls),
		  "%d served, %d refused, %d appends refused with EOVERFLOW, %d rolls", served, refused,
		  overflows, rolls);
}
