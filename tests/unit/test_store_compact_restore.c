/*
 * test_store_compact_restore.c - a compacted topic restored from a backup
 * with gaps (SPEC §3: records appended back at their offsets, as rsync
 * through the mount does): the gaps go into the active segment, inside its
 * compacted span (format.h "Compacted segment"), not one segment each (a
 * tester restored 3,000 records with gaps: 3,000 segment files, each held
 * open, and a daemon out of descriptors); the span's spare offsets are
 * taken back at a seal and a clean close; a power loss at any sync of
 * such a restore keeps every acknowledged record, exactly, and no other;
 * and a header torn while its span was rewritten in place is written anew
 * at the next open (log_recover_hdr.c), not cut with its records.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("restore")

TestSuite(restore, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 300);

#define SEED 0x6a95
#define LEN(o) ut_len((o), SEED, 8, 72)

static sb_log_config cfg(uint64_t seg, enum sb_sync sync)
{
	sb_log_config c;

	ut_cfg(&c, seg, sync);
	c.cleanup = SB_CLEANUP_COMPACT;
	c.index_interval_bytes = 512;
	return c;
}

/* Append record `o` (its payload ut_fill(LEN(o))) at offset o. */
static int put(sb_log *l, uint64_t o)
{
	uint8_t p[72];
	sb_record_in r = {.value = p, .value_len = (uint32_t)LEN(o)};

	ut_fill(p, r.value_len, o, SEED);
	return sb_log_append_at(l, o, &r, 1);
}

/* The bases of topic t's segment files, sorted (at most cap). */
static size_t seg_bases(uint64_t *b, size_t cap)
{
	char d[4200];
	size_t n = 0;
	struct dirent *e;
	DIR *dir = opendir(ut_topic_path(&env, "t", NULL, d, sizeof(d)));

	cr_assert_not_null(dir);
	while ((e = readdir(dir)))
		if (strlen(e->d_name) == 24 && !strcmp(e->d_name + 20, ".seg") && n < cap)
			b[n++] = strtoull(e->d_name, NULL, 10);
	closedir(dir);
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j && b[j - 1] > b[j]; j--) {
			uint64_t t = b[j];
			b[j] = b[j - 1];
			b[j - 1] = t;
		}
	return n;
}

/* Segment files in topic t's directory (up to 64). */
static unsigned seg_files(void)
{
	uint64_t b[64];

	return (unsigned)seg_bases(b, 64);
}

/* The offsets the restore appends: 5,000 with gaps of two, 10,000 in a
 * row (past the span's spare offsets twice), one past a gap wider than
 * the spare, then one past a gap the active segment's span cannot reach
 * (2^32 offsets from its base: a new segment at the next offset takes it),
 * then a few with gaps again. */
static size_t plan(uint64_t *o, size_t cap)
{
	size_t n = 0;
	uint64_t at = 0;

	for (int i = 0; i < 5000; i++, at += 3)
		o[n++] = at;
	for (int i = 0; i < 10000; i++)
		o[n++] = at++;
	o[n++] = at += 3 * SB_SPAN_SPARE;
	o[n++] = at += (1ull << 32) - 9;
	for (int i = 0; i < 5; i++)
		o[n++] = at += 2;
	cr_assert_leq(n, cap);
	return n;
}

/* Every record of o reads, the offset before each gap is ENOENT; the next
 * offset is the one after the last record (at least, unless exact: a
 * crash may skip the spare offsets of a span, never give one twice). */
static void check_all(sb_log *l, const uint64_t *o, size_t n, int exact, const char *when)
{
	uint8_t b[8];
	size_t got;
	sb_record_info info;

	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(ut_check(l, o[i], LEN(o[i]), SEED), 0, "%s: record %llu", when,
			     (unsigned long long)o[i]);
		if (i && o[i] - o[i - 1] > 1)
			cr_assert_eq(sb_log_read(l, o[i] - 1, 0, b, sizeof(b), &got, &info), -ENOENT,
				     "%s: offset %llu, in a gap", when, (unsigned long long)(o[i] - 1));
	}
	if (exact)
		cr_assert_eq(sb_log_next(l), o[n - 1] + 1, "%s: the next offset", when);
	else
		cr_assert_geq(sb_log_next(l), o[n - 1] + 1, "%s: the next offset", when);
}

static void verify_clean(const char *when)
{
	char td[4200];
	sb_verify_result vr;

	cr_assert_eq(sb_verify_topic(ut_topic_path(&env, "t", NULL, td, sizeof(td)), NULL, NULL, NULL, &vr), 0);
	cr_assert_eq(sb_verify_damage(&vr), 0, "%s: verify found damage", when);
}

Test(restore, gaps_share_the_active_segment)
{
	static uint64_t o[16000];
	size_t n = plan(o, 16000);
	sb_log_config c = cfg(1 << 20, SB_SYNC_NEVER);
	sb_store *s;
	sb_log *l;

	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(put(l, o[i]), 0, "append at %llu", (unsigned long long)o[i]);
	/* 15,000 records of 40..104 bytes: two segments by size, one more
	 * past the gap no span reaches (before: a segment at every gap) */
	cr_assert_leq(seg_files(), 4, "%u segment files", seg_files());
	check_all(l, o, n, 1, "appended");
	cr_assert_eq(sb_store_close(s), 0);
	verify_clean("closed");
	unsigned segs = seg_files();
	/* The clean close took the spare offsets back: the next offset is
	 * the one after the last record, not the span's end. */
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	check_all(l, o, n, 1, "reopened");
	uint64_t next = sb_log_next(l);
	cr_assert_eq(put(l, next), 0);
	cr_assert_eq(put(l, next + 9), 0, "a gap after the reopen");
	cr_assert_eq(sb_log_next(l), next + 10);
	/* a gap of 2^32 offsets no segment can take: refused, nothing changed */
	cr_assert_eq(put(l, next + 10 + (1ull << 32)), -EINVAL);
	cr_assert_eq(sb_log_next(l), next + 10);
	cr_assert_eq(sb_store_close(s), 0);
	verify_clean("appended after the reopen");
	/* the newest segment, with its span, took them: no new segment */
	cr_assert_eq(seg_files(), segs, "%u segment files, %u before the reopen", seg_files(), segs);
}

static fio *crash_open(int mm, uint64_t seg, enum sb_sync sync, sb_store **s, sb_log **l);

/* Messages the store reports, for the tests that look for one. */
static char said[4096];
static void keep_said(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	snprintf(said + strlen(said), sizeof(said) - strlen(said), "%s\n", msg);
}

static void keep_problem(void *arg, const sb_verify_problem *p)
{
	keep_said(arg, NULL, p->msg);
}

/* The store opened with config c, no flusher, what it says kept in `said`
 * (emptied first); `repair` and `full_check` as a repairing open sets them. */
static sb_store *open_saying(const sb_log_config *c, int repair, int full_check)
{
	sb_store_options so;
	sb_store *s;

	sb_store_options_default(&so);
	so.defaults = *c;
	so.no_flusher = 1;
	so.repair = repair;
	so.full_check = full_check;
	so.report = keep_said;
	said[0] = 0;
	cr_assert_eq(sb_store_open(env.store, &so, &s), 0);
	return s;
}

/*
 * The newest segment's header torn while its span was rewritten (the bytes
 * that write changes, span and CRC, garbage; generated, 64 seeds): the
 * open writes it anew and every record is there (before: the segment was
 * cut as a torn tail, every record in it lost); verify before the open
 * says what it may be. A header whose base or magic is garbage too is no
 * such rewrite: cut as before.
 */
Test(restore, a_torn_span_rewrite_is_written_anew)
{
	sb_log_config c = cfg(1 << 20, SB_SYNC_NEVER);
	uint64_t o[300], rng = 0x70de;
	char seg[4200];
	sb_store *s;
	sb_log *l;

	ut_topic_path(&env, "t", "00000000000000000000.seg", seg, sizeof(seg));
	for (size_t i = 0; i < 300; i++)
		o[i] = i < 200 ? 3 * i : 600 + i; /* gaps, then a run */
	for (int seed = 0; seed < 66; seed++) {
		fio *fi = crash_open(seed % 2, 1 << 20, SB_SYNC_NEVER, &s, &l);
		for (size_t i = 0; i < 300; i++)
			cr_assert_eq(put(l, o[i]), 0);
		cr_assert_eq(sb_log_sync(l), 0);
		/* a crash of the process: no seal, no clean close; the rest
		 * on the disk as written */
		fio_crash_now(fi);
		sb_store_close(s);
		cr_assert_eq(fio_crash_apply(fi, 1, FIO_CRASH_KEEP_ALL, NULL), 0);
		fio_free(fi);
		uint8_t h[SB_SEG_HDR];
		FILE *f = fopen(seg, "r+b");
		cr_assert_not_null(f);
		cr_assert_eq(fread(h, 1, sizeof(h), f), sizeof(h));
		int whole = seed >= 64; /* the magic and base too */
		for (size_t b = whole ? 0 : SB_SEG_AT_SPAN; b < SB_SEG_HDR; b++)
			if (whole || ut_rnd(&rng) % 2)
				h[b] ^= (uint8_t)(1 + ut_rnd(&rng) % 255);
		cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
		cr_assert_eq(fwrite(h, 1, sizeof(h), f), sizeof(h));
		cr_assert_eq(fclose(f), 0);
		/* verify before the open: damage, named for what it may be */
		char td[4200];
		sb_verify_result vr;
		said[0] = 0;
		cr_assert_eq(sb_verify_topic(ut_topic_path(&env, "t", NULL, td, sizeof(td)), keep_problem, NULL,
					     NULL, &vr), 0);
		cr_assert_gt(sb_verify_damage(&vr), 0);
		cr_assert_eq(!strstr(said, "torn while it was rewritten in place"), whole, "seed %d: %s", seed, said);
		s = open_saying(&c, 0, 0);
		cr_assert_not_null(l = ut_topic(s, "t"));
		if (whole) {
			cr_assert_eq(sb_log_next_present(l, 0, &o[0]), -ENOENT, "seed %d: cut as before", seed);
			o[0] = 0;
		} else {
			check_all(l, o, 300, 0, "written anew");
			cr_assert(strstr(said, "header torn while it was rewritten"), "seed %d: said %s", seed, said);
		}
		cr_assert_eq(sb_store_close(s), 0);
		verify_clean("after the open");
	}
}

/*
 * A fresh store whose topic t holds 600 records over 4 KiB segments,
 * closed: compacted (cleanup = compact) for an even seed, plain for an odd
 * one; with `gaps`, a compacted one's offsets skip every fifth. o[*m] the
 * offsets there, b[*n] the segment files' bases. Returns the config.
 */
static sb_log_config sealed_topic(int seed, int gaps, uint64_t o[600], size_t *m, uint64_t b[64], size_t *n)
{
	sb_log_config c = cfg(4096, SB_SYNC_NEVER);
	sb_store *s;
	sb_log *l;

	if (seed % 2)
		c.cleanup = SB_CLEANUP_DELETE;
	cr_assert_eq(uf_rmrf(env.store), 0);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	*m = 0;
	for (uint64_t i = 0; i < 600; i++)
		if (!gaps || c.cleanup == SB_CLEANUP_DELETE || i % 5)
			cr_assert_eq(put(l, o[(*m)++] = i), 0);
	cr_assert_eq(sb_store_close(s), 0);
	*n = seg_bases(b, 64);
	cr_assert_geq(*n, 4);
	return c;
}

/*
 * A segment file missing between two others (a live copy that read the
 * segment before a compaction round extended its span over a segment
 * compacted to nothing, and listed the directory after the round removed
 * it: 1 of 39 of a tester's live copies; or a lost file): `recover --cut`
 * (a repairing open) makes the missing offsets a gap, the previous
 * segment's span reaching the next, and keeps every later segment. Before,
 * it cut the log there: every later record lost. Generated: 24 seeds,
 * plain and compacted topics, a random middle segment removed, its index
 * files kept or not.
 */
Test(restore, a_missing_segment_is_repaired_as_a_gap)
{
	for (int seed = 0; seed < 24; seed++) {
		uint64_t rng = 0x5e9 + (uint64_t)seed, b[64], o[600];
		char p[4200], name[32];
		size_t n, m;
		sb_store *s;
		sb_log *l;
		sb_log_config c = sealed_topic(seed, 0, o, &m, b, &n);
		size_t k = 1 + (size_t)(ut_rnd(&rng) % (n - 2));
		snprintf(name, sizeof(name), "%020llu.seg", (unsigned long long)b[k]);
		cr_assert_eq(unlink(ut_topic_path(&env, "t", name, p, sizeof(p))), 0);
		if (seed % 3) {
			snprintf(name, sizeof(name), "%020llu.idx", (unsigned long long)b[k]);
			unlink(ut_topic_path(&env, "t", name, p, sizeof(p)));
			snprintf(name, sizeof(name), "%020llu.tix", (unsigned long long)b[k]);
			unlink(ut_topic_path(&env, "t", name, p, sizeof(p)));
		}
		s = open_saying(&c, 1, 1);
		cr_assert_eq(sb_store_get(s, "t", &l), 0, "seed %d: refused after the repair: %s", seed, said);
		cr_assert(strstr(said, "missing after it"), "seed %d: said %s", seed, said);
		m = 0;
		for (uint64_t i = 0; i < 600; i++)
			if (i < b[k] || i >= b[k + 1])
				o[m++] = i;
		check_all(l, o, m, 1, "repaired");
		for (uint64_t i = b[k]; i < b[k + 1]; i++)
			cr_assert_eq(sb_log_next_present(l, i, &o[0]), 0) ;
		cr_assert_eq(o[0], b[k + 1], "seed %d: the gap %llu..%llu", seed, (unsigned long long)b[k],
			     (unsigned long long)b[k + 1]);
		cr_assert_eq(sb_store_close(s), 0);
		verify_clean("repaired");
	}
}

/*
 * A sealed segment's header torn while it was rewritten in place (a round
 * giving it the offsets of the empty segments after it: the span and CRC
 * garbage): the open writes it anew and every record is there. A header
 * whose stream position is garbage too is no such rewrite (its stream no
 * longer meets the next segment's): refused as damage, and a repair keeps
 * every record (the damage campaign found such a header, in the first
 * segment, written anew with the garbage position: the records after it
 * missing). Generated: 32 seeds, plain and compacted topics, a random
 * sealed segment, the first one too.
 */
Test(restore, a_sealed_segments_torn_header_is_written_anew_unless_its_stream_is_damaged)
{
	for (int seed = 0; seed < 32; seed++) {
		uint64_t rng = 0x7e3 + (uint64_t)seed, b[64], o[600];
		int stream_too = seed % 4 >= 2;
		char p[4200], name[32], when[64];
		uint8_t h[SB_SEG_HDR];
		size_t n, m;
		sb_store *s;
		sb_log *l;
		sb_log_config c = sealed_topic(seed, 1, o, &m, b, &n);
		size_t k = (size_t)(ut_rnd(&rng) % (n - 1));
		snprintf(name, sizeof(name), "%020llu.seg", (unsigned long long)b[k]);
		FILE *f = fopen(ut_topic_path(&env, "t", name, p, sizeof(p)), "r+b");
		cr_assert_not_null(f);
		cr_assert_eq(fread(h, 1, sizeof(h), f), sizeof(h));
		for (size_t i = SB_SEG_AT_SPAN; i < SB_SEG_HDR; i++)
			h[i] ^= (uint8_t)(1 + ut_rnd(&rng) % 255);
		if (stream_too)
			h[SB_SEG_AT_STREAM + ut_rnd(&rng) % 3] ^= (uint8_t)(1 + ut_rnd(&rng) % 255);
		cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
		cr_assert_eq(fwrite(h, 1, sizeof(h), f), sizeof(h));
		cr_assert_eq(fclose(f), 0);
		snprintf(when, sizeof(when), "seed %d, segment %zu of %zu%s", seed, k, n,
			 stream_too ? ", its stream too" : "");
		for (int repair = 0; repair < 2; repair++) {
			s = open_saying(&c, repair, 0);
			int rc = sb_store_get(s, "t", &l);
			if (stream_too && !repair) {
				cr_assert_neq(rc, 0, "%s: opened (%s)", when, said);
				cr_assert_eq(sb_store_close(s), 0);
				continue;
			}
			cr_assert_eq(rc, 0, "%s: refused: %s", when, said);
			check_all(l, o, m, 1, when);
			cr_assert(stream_too || strstr(said, "header torn while it was rewritten"), "%s: said %s", when,
				  said);
			cr_assert_eq(sb_store_close(s), 0);
			verify_clean(when);
			break;
		}
	}
}

/* A topic without compact still refuses an offset past the next. */
Test(restore, a_gap_needs_compact)
{
	sb_log_config c = cfg(1 << 20, SB_SYNC_NEVER);
	sb_store *s;
	sb_log *l;

	c.cleanup = SB_CLEANUP_DELETE;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	cr_assert_eq(put(l, 0), 0);
	cr_assert_eq(put(l, 5), -EINVAL);
	cr_assert_eq(put(l, 1), 0);
	cr_assert_eq(sb_store_close(s), 0);
}

/* ---- a power loss at every sync of a restore ------------------------------------ */

#define CR_N 40
#define CR_MAX (CR_N * (3 * SB_SPAN_SPARE + 4))

static uint64_t o_plan[CR_N];

/* The crash workload's offsets: in a row, small gaps, and gaps wider than
 * the spare (each a header rewrite), over small segments (rolls). */
static void crash_plan(uint64_t *o)
{
	uint64_t at = 0, r = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < CR_N; i++) {
		o[i] = at;
		unsigned k = (unsigned)(ut_rnd(&r) % 10);
		at += k < 5 ? 1 : k < 9 ? 2 + k % 3 : 2 * SB_SPAN_SPARE + k;
	}
}

static fio *crash_io(int mm)
{
	fio *f = mm ? fio_new_mmap(env.stash) : fio_new(env.stash);

	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	return f;
}

static void crash_fresh(void)
{
	cr_assert_eq(uf_rmrf(env.store), 0);
	cr_assert_eq(uf_rmrf(env.stash), 0);
	cr_assert_eq(mkdir(env.stash, 0755), 0);
}

/* After the crash: every acknowledged record reads right, every offset
 * that reads is one appended (tried: acknowledged, or in flight), no
 * offset is given twice; verify finds no damage. */
static void crash_check(const uint64_t *o, int acked, int tried_n, const char *why)
{
	static uint8_t tried[CR_MAX];
	sb_log_config c = cfg(4096, SB_SYNC_ALWAYS);
	uint8_t b[8];
	size_t got;
	sb_record_info info;
	sb_store *s;
	sb_log *l;

	memset(tried, 0, sizeof(tried));
	for (int i = 0; i < tried_n && i < CR_N; i++)
		tried[o[i]] = 1;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0, "%s: open", why);
	cr_assert_not_null(l = ut_topic(s, "t"), "%s: the topic was refused", why);
	for (int i = 0; i < acked; i++)
		cr_assert_eq(ut_check(l, o[i], LEN(o[i]), SEED), 0, "%s: acknowledged record %llu", why,
			     (unsigned long long)o[i]);
	uint64_t next = sb_log_next(l), last = 0, x = 0;
	int rc;
	while ((rc = sb_log_next_present(l, x, &x)) == 0) {
		cr_assert_lt(x, CR_MAX, "%s: offset %llu", why, (unsigned long long)x);
		cr_assert(tried[x], "%s: offset %llu reads, never appended", why, (unsigned long long)x);
		cr_assert_eq(ut_check(l, x, LEN(x), SEED), 0, "%s: record %llu", why, (unsigned long long)x);
		/* (what is not listed does not read) */
		if (x > last)
			cr_assert_eq(sb_log_read(l, x - 1, 0, b, sizeof(b), &got, &info), -ENOENT, "%s: %llu",
				     why, (unsigned long long)(x - 1));
		last = ++x;
	}
	cr_assert_eq(rc, -ENOENT, "%s: listing: %s", why, sb_strerror(rc));
	cr_assert_geq(next, last, "%s", why);
	if (acked)
		cr_assert_gt(next, o[acked - 1], "%s: an offset would be given twice", why);
	/* the next append after the crash goes on from there */
	uint64_t at = next > o[CR_N - 1] ? next : o[CR_N - 1] + 1;
	cr_assert_eq(put(l, at), 0, "%s: an append after the crash", why);
	cr_assert_eq(sb_store_close(s), 0);
	verify_clean(why);
}

/*
 * The restore over store s (its fault table f): the records of o appended
 * in turn until one fails; under sync = never an sb_log_sync after every
 * eighth. *acked: how many are known durable (under always each appended
 * one; under never those before the last sync that returned); *tried: how
 * many were tried (the last maybe in flight).
 */
static void crash_run(sb_log *l, enum sb_sync sync, int *acked, int *tried)
{
	int i = 0;

	*acked = 0;
	for (; i < CR_N; i++) {
		if (put(l, o_plan[i]))
			break;
		if (sync == SB_SYNC_ALWAYS)
			*acked = i + 1;
		else if (i % 8 == 7 && sb_log_sync(l) == 0)
			*acked = i + 1;
		else if (i % 8 == 7)
			break;
	}
	*tried = i < CR_N ? i + 1 : CR_N;
}

/* A fresh store over a new fault table (the mmap write path if mm),
 * segments of seg bytes under `sync`, and its topic "t": *s, *l. */
static fio *crash_open(int mm, uint64_t seg, enum sb_sync sync, sb_store **s, sb_log **l)
{
	sb_log_config c = cfg(seg, sync);

	crash_fresh();
	fio *f = crash_io(mm);
	cr_assert_eq(ut_open(env.store, &c, fio_io(f), s), 0);
	cr_assert_not_null(*l = ut_topic(*s, "t"));
	return f;
}

/* The number of fdatasyncs the whole restore makes. */
static unsigned crash_reference(int mm, enum sb_sync sync)
{
	sb_store *s;
	sb_log *l;
	int acked, tried;
	fio *f = crash_open(mm, 4096, sync, &s, &l);
	unsigned before = fio_calls(f, FIO_FDATASYNC);
	crash_run(l, sync, &acked, &tried);
	cr_assert_eq(acked, CR_N);
	unsigned n = fio_calls(f, FIO_FDATASYNC) - before;
	cr_assert_eq(sb_store_close(s), 0);
	fio_free(f);
	crash_check(o_plan, CR_N, CR_N, "reference");
	return n;
}

/*
 * Every crash mode: RANDOM and GARBAGE garble what a write changed, the
 * span's header rewrite too (its span and CRC bytes: the open writes such
 * a header anew); the others keep or drop writes (or changed blocks) whole.
 */
Test(restore, a_power_loss_at_every_sync_keeps_what_was_acknowledged)
{
	static const int modes[] = {FIO_CRASH_RANDOM,  FIO_CRASH_KEEP_ALL, FIO_CRASH_DROP_ALL,
				    FIO_CRASH_GARBAGE, FIO_CRASH_REORDER,  FIO_CRASH_PREFIX};
	static const enum sb_sync syncs_of[] = {SB_SYNC_ALWAYS, SB_SYNC_NEVER};
	unsigned cases = 0;

	crash_plan(o_plan);
	for (int mm = 0; mm < 2; mm++)
		for (size_t y = 0; y < 2; y++) {
			enum sb_sync sync = syncs_of[y];
			unsigned syncs = crash_reference(mm, sync);
			cr_assert_geq(syncs, sync == SB_SYNC_ALWAYS ? CR_N : CR_N / 8, "%u syncs", syncs);
			for (unsigned k = 1; k <= syncs; k++)
				for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
					char why[128];
					sb_store *s;
					sb_log *l;
					int acked, tried;
					fio *f = crash_open(mm, 4096, sync, &s, &l);
					fio_crash_at(f, FIO_FDATASYNC, fio_calls(f, FIO_FDATASYNC) + k);
					crash_run(l, sync, &acked, &tried);
					fio_crash_now(f);
					sb_store_close(s);
					cr_assert_eq(fio_crash_apply(f, 17 * k + m, modes[m], NULL), 0);
					fio_free(f);
					snprintf(why, sizeof(why), "mmap %d, sync %s, crash at sync %u, mode %d, %d acknowledged",
						 mm, y ? "never" : "always", k, modes[m], acked);
					crash_check(o_plan, acked, tried, why);
					cases++;
				}
		}
	cr_expect_gt(cases, 300, "%u cases", cases);
}
