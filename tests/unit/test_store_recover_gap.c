/*
 * test_store_recover_gap.c - `streambus recover --cut` (a repairing open)
 * of damage that cannot be a torn write in a sealed segment that other
 * segments follow drops only the damaged records (SPEC §6): generated
 * cases, for several seeds, of a plain and a zstd log of small segments,
 * closed cleanly (so the damage is proven bit rot), a random sealed
 * segment damaged: in its records (plain: a flipped bit, two, a run of
 * zeros or of random bytes; or its header) or a byte of a block
 * (compressed).
 * After the repair: every record not dropped reads back with its offset
 * and payload; the dropped records are exactly the damaged ones (plain:
 * those holding a changed byte; the records between and after damages
 * kept) or the damaged block's (compressed), ENOENT; the stream (what
 * `.log` reads) is the kept records' payloads back to back, with no hole
 * where the dropped ones were; each record's key finds it, but the dropped
 * ones' (though key tables named them); the next append takes the next
 * offset; verify finds no damage; a plain reopen sees the same. (Before, the repair cut the log at the damage and
 * removed every later segment.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "format.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"
#include "verify.h"

#define NREC 300u
#define LO 20u
#define HI 120u

UT_ENV_FIXTURE("gap")
TestSuite(recover_gap, .init = ut_env_setup, .fini = ut_env_teardown);

typedef struct gcase {
	uint64_t seed, rng;
	enum sb_compression comp;
	sb_log_config cfg;
	char tdir[4096];
	uint8_t gone[NREC + 1]; /* the offsets the repair must drop */
	uint64_t end;           /* the log's next offset after the repair */
	int newest;             /* damage the newest segment (plain) */
	unsigned mode;         /* which damage (damage_plain, damage_block) */
} gcase;

static size_t len_of(const gcase *c, uint64_t i)
{
	return ut_len(i, c->seed, LO, HI);
}

/* What the last repairing open reported, one line each. */
static char said[16384];

static void on_report(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	size_t n = strlen(said);
	snprintf(said + n, sizeof(said) - n, "%s\n", msg);
}

static sb_store *open_store(gcase *c, int repair)
{
	sb_store_options o;
	sb_store *s = NULL;

	sb_store_options_default(&o);
	o.defaults = c->cfg;
	o.no_flusher = 1;
	o.full_check = repair;
	o.repair = repair;
	said[0] = 0;
	if (repair)
		o.report = on_report;
	int rc = sb_store_open(env.store, &o, &s);
	cr_assert_eq(rc, 0, "seed %llu: open: %s", (unsigned long long)c->seed, sb_strerror(rc));
	return s;
}

static sb_log *topic(gcase *c, sb_store *s)
{
	sb_log *t = NULL;
	int rc = sb_store_get(s, "t", &t);
	cr_assert_eq(rc, 0, "seed %llu (%s): topic: %s", (unsigned long long)c->seed,
		     sb_compression_name(c->comp), sb_strerror(rc));
	return t;
}

/* NREC records, sealed segments compressed (zstd), a clean close. */
static void write_log(gcase *c)
{
	sb_store *s = open_store(c, 0);
	sb_log *t = ut_topic(s, "t");
	cr_assert_not_null(t);
	for (uint64_t i = 0; i < NREC; i++)
		cr_assert_eq(ut_append1(t, i, len_of(c, i), c->seed, NULL), 0);
	if (c->comp != SB_COMPRESS_NONE) {
		cr_assert_eq(sb_log_sync(t), 0);
		cr_assert_eq(sb_log_compress(t, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
}

/* The offset of the record of plain segment b holding byte `pos`. */
static uint64_t record_at(const uint8_t *b, uint64_t pos)
{
	uint64_t p = SB_SEG_HDR;

	while (p + sb_get32(b + p + SB_REC_AT_SIZE) <= pos)
		p += sb_get32(b + p + SB_REC_AT_SIZE);
	return sb_get64(b + p + SB_REC_AT_OFFSET);
}

/* Plain segment b (*lenp bytes): one of six damages at a random place of
 * its records: a flipped bit, two flipped bits (anywhere in the segment),
 * a run of zeros, a run of random bytes (runs up to 300 bytes), a bit of
 * its header (and of a record, half the time), or the file cut shorter
 * than its header (*lenp). The records dropped are those holding a changed
 * byte (every one when cut): the records after each damage resume
 * (log_recover_gap.c, resync), and a bad header is written anew. */
static void damage_plain(gcase *c, uint8_t *b, size_t *lenp)
{
	size_t len = *lenp;
	uint8_t *was = malloc(len);
	size_t changed = 0, room, rend = SB_SEG_HDR;
	unsigned mode = (unsigned)(ut_rnd(&c->rng) % (c->newest ? 4 : 6));

	/* the records' end (the newest may have zeros after them) */
	while (rend + SB_REC_HDR <= len && sb_get32(b + rend + SB_REC_AT_SIZE) >= SB_REC_HDR &&
	       rend + sb_get32(b + rend + SB_REC_AT_SIZE) <= len)
		rend += sb_get32(b + rend + SB_REC_AT_SIZE);
	room = rend - SB_SEG_HDR;

	cr_assert_not_null(was);
	memcpy(was, b, len);
	if (mode == 5) { /* cut shorter than its header: every record of it goes */
		*lenp = ut_rnd(&c->rng) % (SB_SEG_HDR + 1);
		for (size_t p = SB_SEG_HDR; p < rend; p += sb_get32(was + p + SB_REC_AT_SIZE))
			c->gone[sb_get64(was + p + SB_REC_AT_OFFSET)] = 1;
		c->mode = mode;
		free(was);
		return;
	}
	if (mode == 4) { /* its header, and a bit of a record half the time */
		b[ut_rnd(&c->rng) % SB_SEG_HDR] ^= (uint8_t)(1u << ut_rnd(&c->rng) % 8);
		if (ut_rnd(&c->rng) % 2)
			b[SB_SEG_HDR + ut_rnd(&c->rng) % room] ^= 0x04;
	}
	for (unsigned k = 0; k < (mode == 1 ? 2u : mode == 4 ? 0u : 1u); k++) {
		size_t pos = SB_SEG_HDR + ut_rnd(&c->rng) % room, run = 1;
		if (mode >= 2)
			run = 1 + ut_rnd(&c->rng) % 300;
		for (size_t i = pos; i < pos + run && i < rend; i++)
			b[i] = mode == 2   ? 0
			       : mode == 3 ? (uint8_t)ut_rnd(&c->rng)
					   : b[i] ^ (uint8_t)(1u << ut_rnd(&c->rng) % 8);
	}
	if (mode < 4 && !memcmp(b, was, len)) /* the run changed nothing (zeros over zeros) */
		b[SB_SEG_HDR + ut_rnd(&c->rng) % room] ^= 0x10;
	for (size_t i = SB_SEG_HDR; i < rend; i++)
		if (b[i] != was[i]) {
			c->gone[record_at(was, i)] = 1;
			changed++;
		}
	cr_assert(changed || mode == 4);
	c->mode = mode;
	free(was);
}

/* Compressed segment b: flip a bit of a random block's stored bytes (the
 * dropped range: that block's offsets, format.h, block table), or of its
 * header or block table (every offset of the segment: its blocks cannot
 * be told good without the table). */
static void damage_block(gcase *c, uint8_t *b)
{
	uint64_t base = sb_get64(b + 8), next = sb_get64(b + 24), table = sb_get64(b + 64);
	uint32_t nb = sb_get32(b + 72), i = (uint32_t)(ut_rnd(&c->rng) % nb);
	const uint8_t *e = b + table + (size_t)i * SB_ZSEG_ENTRY;
	uint32_t at = sb_get32(e + 8), stored = sb_get32(e + 12);

	c->mode = (unsigned)(ut_rnd(&c->rng) % 4);
	if (c->mode >= 2) { /* its header or its block table: every offset of it goes */
		size_t pos = c->mode == 2 ? ut_rnd(&c->rng) % SB_ZSEG_HDR
					  : table + ut_rnd(&c->rng) % ((size_t)nb * SB_ZSEG_ENTRY);
		for (uint64_t o = base; o < next; o++)
			c->gone[o] = 1;
		b[pos] ^= (uint8_t)(1u << ut_rnd(&c->rng) % 8);
		return;
	}
	for (uint64_t o = base + sb_get32(e), end = i + 1 < nb ? base + sb_get32(e + SB_ZSEG_ENTRY) : next; o < end;
	     o++)
		c->gone[o] = 1;
	b[at + ut_rnd(&c->rng) % stored] ^= (uint8_t)(1u << ut_rnd(&c->rng) % 8);
}

/* One random byte of a random sealed segment (not the newest) flipped. */
static void damage(gcase *c)
{
	char **segs, p[4096];
	uint8_t *b;
	size_t len;
	int n = uf_list_suffix(c->tdir, SB_SEG_SUFFIX, &segs);

	cr_assert_gt(n, 3, "seed %llu: %d segments", (unsigned long long)c->seed, n);
	int k = c->newest ? n - 1 : (int)(ut_rnd(&c->rng) % (uint64_t)(n - 1));
	uf_join(p, sizeof(p), c->tdir, segs[k]);
	cr_assert_eq(uf_read_all(p, &b, &len), 0);
	if (c->comp == SB_COMPRESS_NONE)
		damage_plain(c, b, &len);
	else {
		cr_assert_eq(sb_get32(b), SB_ZSEG_MAGIC, "seed %llu: %s not compressed", (unsigned long long)c->seed,
			     segs[k]);
		damage_block(c, b);
	}
	cr_assert_eq(uf_write_file(p, b, len), 0);
	free(b);
	uf_list_free(segs, n);
	/* the newest segment's dropped records at its end are a cut: the
	 * log ends before them (the next append takes the first) */
	for (c->end = NREC; c->newest && c->end && c->gone[c->end - 1]; c->end--)
		c->gone[c->end - 1] = 0;
}

/* The stream from its start to its end, read in pieces of 700 bytes
 * (across records and blocks), against the payloads of records [0, last)
 * but the dropped ones. */
static void check_stream(gcase *c, sb_log *t, uint64_t last, const char *when)
{
	size_t total = 0, done = 0;
	uint8_t *want, *got;

	for (uint64_t i = 0; i < last; i++)
		total += c->gone[i] ? 0 : len_of(c, i);
	cr_assert_eq(sb_log_stream_end(t) - sb_log_stream_start(t), total, "seed %llu (%s, %s): stream of %llu bytes",
		     (unsigned long long)c->seed, sb_compression_name(c->comp), when,
		     (unsigned long long)(sb_log_stream_end(t) - sb_log_stream_start(t)));
	cr_assert_not_null(want = malloc(total + 1));
	cr_assert_not_null(got = malloc(total + 1));
	for (uint64_t i = 0, at = 0; i < last; i++) {
		if (c->gone[i])
			continue;
		ut_fill(want + at, len_of(c, i), i, c->seed);
		at += len_of(c, i);
	}
	while (done < total) {
		size_t n = 0, ask = total - done < 700 ? total - done : 700;
		int rc = sb_log_read_stream(t, sb_log_stream_start(t) + done, got + done, ask, &n);
		cr_assert_eq(rc, 0, "seed %llu (%s, %s): stream read at %zu of %zu: %s", (unsigned long long)c->seed,
			     sb_compression_name(c->comp), when, done, total, sb_strerror(rc));
		cr_assert_gt(n, 0);
		done += n;
	}
	cr_assert(memcmp(got, want, total) == 0, "seed %llu (%s, %s): stream bytes differ",
		  (unsigned long long)c->seed, sb_compression_name(c->comp), when);
	free(want);
	free(got);
}

/* Each record's key ("k<offset>": ut_append1) finds it, but the dropped
 * ones' (ENOENT): the key index agrees with the repaired log. */
static void check_keys(gcase *c, sb_log *t, uint64_t last, const char *when)
{
	uint8_t buf[HI];

	for (uint64_t i = 0; i < last; i++) {
		char key[32];
		size_t n = 0;
		snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
		int rc = sb_log_get_key(t, key, strlen(key), buf, sizeof(buf), &n, NULL);
		cr_assert_eq(rc, c->gone[i] ? -ENOENT : 0, "seed %llu (%s, damage %u, %s): key %s (%s): %s",
			     (unsigned long long)c->seed, sb_compression_name(c->comp), c->mode, when, key,
			     c->gone[i] ? "dropped" : "kept", sb_strerror(rc));
		cr_assert(rc || (n == len_of(c, i) && ut_match(buf, n, i, c->seed)),
			  "seed %llu (%s, %s): key %s: wrong value", (unsigned long long)c->seed,
			  sb_compression_name(c->comp), when, key);
	}
}

/* Every record is there as written but the dropped ones (ENOENT), and
 * record c->end (appended after the repair) when `appended`; the stream is
 * theirs. */
static void check_log(gcase *c, sb_log *t, int appended, const char *when)
{
	uint64_t last = c->end + (appended ? 1 : 0);

	cr_assert_eq(sb_log_next(t), last, "seed %llu (%s, %s): next %llu, not %llu", (unsigned long long)c->seed,
		     sb_compression_name(c->comp), when, (unsigned long long)sb_log_next(t),
		     (unsigned long long)last);
	for (uint64_t i = 0; i < last; i++) {
		int rc = ut_check(t, i, len_of(c, i), c->seed);
		cr_assert_eq(rc, c->gone[i] ? -ENOENT : 0, "seed %llu (%s, damage %u, %s): record %llu (%s): %d",
			     (unsigned long long)c->seed, sb_compression_name(c->comp), c->mode, when,
			     (unsigned long long)i, c->gone[i] ? "dropped" : "kept", rc);
	}
	check_stream(c, t, last, when);
	check_keys(c, t, last, when);
}

/* A damaged log of case c (seed, comp set). */
static void prepare(gcase *c)
{
	c->rng = ut_mix(c->seed) | 1;
	ut_cfg(&c->cfg, 4096, SB_SYNC_NEVER);
	c->cfg.index_interval_bytes = 512;
	c->cfg.compression = c->comp;
	c->cfg.compression_block_bytes = 1024;
	c->cfg.key_memtable_bytes = 2048; /* key tables naming the records the repair drops */
	ut_topic_path(&env, "t", NULL, c->tdir, sizeof(c->tdir));
	uf_rmrf(env.store);
	write_log(c);
	cr_assert_gt(uf_count_suffix(c->tdir, ".keys"), 0, "seed %llu: no key table", (unsigned long long)c->seed);
	damage(c);
}

/* recover --cut, then everything as written but the damaged records; an
 * append; verify; a plain reopen. */
static void repair_and_check(gcase *c)
{
	sb_verify_result vr;
	uint64_t got;

	sb_store *s = open_store(c, 1); /* recover --cut */
	sb_log *t = topic(c, s);
	check_log(c, t, 0, "repaired");
	cr_assert_eq(ut_append1(t, c->end, len_of(c, c->end), c->seed, &got), 0);
	cr_assert_eq(got, c->end);
	cr_assert_eq(sb_store_close(s), 0);

	cr_assert_eq(sb_verify_topic(c->tdir, NULL, NULL, NULL, &vr), 0);
	cr_assert_eq(sb_verify_damage(&vr), 0, "seed %llu (%s): verify after repair: %llu problems",
		     (unsigned long long)c->seed, sb_compression_name(c->comp),
		     (unsigned long long)sb_verify_damage(&vr));

	s = open_store(c, 0); /* a mount */
	check_log(c, topic(c, s), 1, "reopened");
	cr_assert_eq(sb_store_close(s), 0);

	if (c->comp != SB_COMPRESS_NONE || c->seed % 4)
		return;
	/* a mount with compression on: the segments below the gap, moved up
	 * in the stream at the open, compressed keep their place (a compressed
	 * one took its old file's: .log EIO, found by an exploratory tester) */
	c->cfg.compression = SB_COMPRESS_ZSTD;
	s = open_store(c, 0);
	sb_log *t2 = topic(c, s);
	cr_assert_eq(sb_log_compress(t2, NULL), 0);
	check_log(c, t2, 1, "compressed after the repair");
	cr_assert_eq(sb_store_close(s), 0);
	c->cfg.compression = SB_COMPRESS_NONE;
}

static void one_case(uint64_t seed, enum sb_compression comp)
{
	gcase c = {.seed = seed, .comp = comp};

	prepare(&c);
	repair_and_check(&c);
}

/* The segment files of c's topic, concatenated with their names. */
static void seg_bytes(gcase *c, uint8_t **out, size_t *len)
{
	char **segs, p[4096];
	int n = uf_list_suffix(c->tdir, SB_SEG_SUFFIX, &segs);
	size_t cap = 0;

	*out = NULL;
	*len = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *b;
		size_t bl, nl = strlen(segs[i]);
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), c->tdir, segs[i]), &b, &bl), 0);
		if (*len + nl + bl > cap) {
			cap = 2 * (*len + nl + bl);
			cr_assert_not_null(*out = realloc(*out, cap));
		}
		memcpy(*out + *len, segs[i], nl);
		memcpy(*out + *len + nl, b, bl);
		*len += nl + bl;
		free(b);
	}
	uf_list_free(segs, n);
}

/* A rewrite that fails (its temp file's write or fdatasync on a full or
 * failing disk, the rename) changes nothing: the topic does not open, with
 * the reason; its segment files are as they were and no temp file is
 * left, so no record is lost to the attempt (before, the log was cut at
 * the damage and every later segment removed); a repair run again then
 * works. A damaged record, a damaged header, a damaged block. */
Test(recover_gap, a_failed_rewrite_changes_nothing)
{
	struct {
		fio_kind kind;
		int err;
	} f[] = {{FIO_PWRITE, ENOSPC}, {FIO_FDATASYNC, EIO}, {FIO_RENAME, EIO}};

	for (uint64_t seed = 1; seed <= 9; seed++) {
		gcase c = {.seed = seed, .comp = seed % 3 ? SB_COMPRESS_NONE : SB_COMPRESS_ZSTD};
		uint8_t *before, *after;
		size_t blen, alen;
		sb_log *t = NULL;

		prepare(&c);
		seg_bytes(&c, &before, &blen);
		fio *io = fio_new(env.stash);
		cr_assert_not_null(io);
		cr_assert_eq(fio_fail(io, f[seed % 3].kind, 1, f[seed % 3].err, FIO_STICKY, ".gap.tmp"), 0);
		sb_store_options o;
		sb_store *s = NULL;
		sb_store_options_default(&o);
		o.defaults = c.cfg;
		o.no_flusher = o.full_check = o.repair = 1;
		o.io = fio_io(io);
		/* the store's open fails, or that topic's */
		int rc = sb_store_open(env.store, &o, &s);
		if (!rc) {
			rc = sb_store_get(s, "t", &t);
			cr_assert_eq(sb_store_close(s), 0);
		}
		cr_assert_eq(rc, -f[seed % 3].err, "seed %llu (%s, damage %u): repair with a failing %s: %s",
			     (unsigned long long)seed, sb_compression_name(c.comp), c.mode,
			     f[seed % 3].kind == FIO_PWRITE ? "write" : f[seed % 3].kind == FIO_RENAME ? "rename" : "sync",
			     sb_strerror(rc));
		fio_free(io);
		seg_bytes(&c, &after, &alen);
		cr_assert(blen == alen && !memcmp(before, after, blen), "seed %llu: the segment files changed",
			  (unsigned long long)seed);
		cr_assert_eq(uf_count_suffix(c.tdir, ".tmp"), 0, "seed %llu: a temp file left",
			     (unsigned long long)seed);
		free(before);
		free(after);
		repair_and_check(&c);
	}
}

Test(recover_gap, damaged_plain_segment_keeps_the_records_around_it, .timeout = 300)
{
	for (uint64_t seed = 1; seed <= 200; seed++)
		one_case(seed, SB_COMPRESS_NONE);
}

/* The same in the newest segment of a cleanly closed log (its clean
 * marker proves the damage no torn write): the records after each damage
 * are kept too (it was cut at the damage), the segment compacted, and a
 * new one takes the appends. */
Test(recover_gap, damaged_newest_segment_keeps_the_records_after_the_damage, .timeout = 300)
{
	for (uint64_t seed = 1; seed <= 100; seed++) {
		gcase c = {.seed = seed, .comp = SB_COMPRESS_NONE, .newest = 1};
		prepare(&c);
		repair_and_check(&c);
	}
}

Test(recover_gap, damaged_compressed_block_keeps_the_other_blocks, .timeout = 300)
{
	for (uint64_t seed = 1; seed <= 40; seed++)
		one_case(seed, SB_COMPRESS_ZSTD);
}

/* The payload of each record of t (NULL: none there) into got[0..NREC). */
static void snapshot(sb_log *t, uint8_t *got[NREC], size_t glen[NREC])
{
	for (uint64_t i = 0; i < NREC; i++) {
		uint8_t buf[HI];
		size_t n = 0;
		got[i] = NULL;
		if (sb_log_read(t, i, 0, buf, sizeof(buf), &n, NULL) == 0) {
			cr_assert_not_null(got[i] = malloc(n + 1));
			memcpy(got[i], buf, n);
			glen[i] = n;
		}
	}
}

/* Case c's log with cleanup = compact, compacted, closed cleanly: half its
 * records of unique keys (kept), half of 5 keys (removed but each one's
 * latest); was/wl: each record's payload as compacted (NULL: removed). */
static void write_compacted(gcase *c, uint8_t *was[NREC], size_t wl[NREC])
{
	sb_compact_stats st;

	ut_cfg(&c->cfg, 4096, SB_SYNC_NEVER);
	c->cfg.cleanup = SB_CLEANUP_COMPACT;
	ut_topic_path(&env, "t", NULL, c->tdir, sizeof(c->tdir));
	uf_rmrf(env.store);
	sb_store *s = open_store(c, 0);
	sb_log *t = ut_topic(s, "t");
	for (uint64_t i = 0; i < NREC; i++) {
		uint8_t buf[HI];
		char key[24];
		snprintf(key, sizeof(key), i % 2 ? "d%u" : "u%u", (unsigned)(i % 2 ? i % 5 : i));
		ut_fill(buf, len_of(c, i), i, c->seed);
		sb_record_in r = {.key = key, .key_len = (uint32_t)strlen(key), .value = buf,
				  .value_len = (uint32_t)len_of(c, i)};
		cr_assert_eq(sb_log_append(t, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_log_sync(t), 0);
	cr_assert_eq(sb_log_compact(t, INT64_MAX / 2, &st), 0);
	cr_assert_gt(st.segments, 1);
	snapshot(t, was, wl);
	cr_assert_eq(sb_store_close(s), 0);
}

/* A damaged first record of a compacted segment whose predecessor is
 * compacted too: a plain open refuses the topic and keeps every file (it
 * removed the segment as "compacted to nothing", found by an exploratory
 * tester), and recover --cut drops that record alone, every other record
 * as it was. */
Test(recover_gap, damaged_first_record_of_a_compacted_segment_is_damage_not_a_removal)
{
	gcase c = {.seed = 7, .comp = SB_COMPRESS_NONE};
	uint8_t *was[NREC], *now[NREC];
	size_t wl[NREC], nl[NREC];
	char **segs, p[4096];
	sb_log *t;

	write_compacted(&c, was, wl);

	/* the first record of a compacted segment after a compacted one */
	int n = uf_list_suffix(c.tdir, SB_SEG_SUFFIX, &segs), k = -1;
	uint64_t first = 0;
	for (int i = 1; i + 1 < n && k < 0; i++) {
		uint8_t *a, *b;
		size_t al, bl;
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), c.tdir, segs[i - 1]), &a, &al), 0);
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), c.tdir, segs[i]), &b, &bl), 0);
		if (sb_get32(a + SB_SEG_AT_SPAN) && sb_get32(b + SB_SEG_AT_SPAN) && bl > SB_SEG_HDR) {
			k = i;
			first = sb_get64(b + SB_SEG_HDR + SB_REC_AT_OFFSET);
			b[SB_SEG_HDR + SB_REC_HDR + 3] ^= 0x01;
			cr_assert_eq(uf_write_file(p, b, bl), 0);
		}
		free(a);
		free(b);
	}
	cr_assert_geq(k, 0, "no compacted segment after a compacted one among %d", n);

	sb_store *s = open_store(&c, 0); /* a mount */
	cr_assert_eq(sb_store_get(s, "t", &t), SB_ECORRUPT);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(uf_count_suffix(c.tdir, SB_SEG_SUFFIX), n, "the refusing open removed a segment");

	s = open_store(&c, 1); /* recover --cut */
	/* the range dropped holds offsets compaction had removed: its count
	 * of records is a bound (it said "(N records)", counting offsets) */
	cr_assert(strstr(said, "(at most ") && strstr(said, ") dropped"), "the repair said: %s", said);
	cr_assert_eq(sb_store_get(s, "t", &t), 0);
	snapshot(t, now, nl);
	for (uint64_t i = 0; i < NREC; i++) {
		int want = was[i] && i != first;
		cr_assert_eq(now[i] != NULL, want, "record %llu (damaged %llu): %s", (unsigned long long)i,
			     (unsigned long long)first, now[i] ? "there" : "missing");
		cr_assert(!want || (nl[i] == wl[i] && !memcmp(now[i], was[i], wl[i])), "record %llu differs",
			  (unsigned long long)i);
		free(was[i]);
		free(now[i]);
	}
	cr_assert_eq(sb_store_close(s), 0);
	uf_list_free(segs, n);
}

/* The newest segment torn by a crash in a roll (its header garbage, no
 * index, no clean marker): the open removes it, and the compacted segment
 * before it is the newest. It takes the appends, each raising its span
 * first (sb_segment_reach). Once the append went into it past its span,
 * read EIO, and the next open refused the topic (found by an exploratory
 * tester); then a new segment followed it at every open; now the appends
 * go inside its span, as a restore's do. */
Test(recover_gap, a_compacted_segment_left_newest_takes_appends_inside_its_span)
{
	gcase c = {.seed = 9, .comp = SB_COMPRESS_NONE};
	uint8_t *was[NREC], buf[HI];
	size_t wl[NREC], n = 0;
	char **segs, p[4096], name[64];
	sb_verify_result vr;
	uint64_t got = 0;
	sb_log *t;

	write_compacted(&c, was, wl);
	int ns = uf_list_suffix(c.tdir, SB_SEG_SUFFIX, &segs);
	uint64_t at = strtoull(segs[ns - 1], NULL, 10);
	cr_assert_eq(uf_write_at(uf_join(p, sizeof(p), c.tdir, segs[ns - 1]), 4, "garbagegarbage", 14), 0);
	uf_remove(uf_join(p, sizeof(p), c.tdir, "clean"));
	snprintf(name, sizeof(name), "%.20s.idx", segs[ns - 1]);
	uf_remove(uf_join(p, sizeof(p), c.tdir, name));
	snprintf(name, sizeof(name), "%.20s.tix", segs[ns - 1]);
	uf_remove(uf_join(p, sizeof(p), c.tdir, name));
	uf_list_free(segs, ns);

	sb_store *s = open_store(&c, 0); /* a mount */
	cr_assert_eq(sb_store_get(s, "t", &t), 0);
	cr_assert_eq(sb_log_next(t), at);
	cr_assert_eq(ut_append1(t, at, len_of(&c, at), c.seed, &got), 0);
	cr_assert_eq(got, at);
	cr_assert_eq(ut_check(t, at, len_of(&c, at), c.seed), 0, "the append reads back");
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(sb_verify_topic(c.tdir, NULL, NULL, NULL, &vr), 0);
	cr_assert_eq(sb_verify_damage(&vr), 0, "verify after the append: %llu problems",
		     (unsigned long long)sb_verify_damage(&vr));
	s = open_store(&c, 0);
	cr_assert_eq(sb_store_get(s, "t", &t), 0, "the reopen refused the topic");
	cr_assert_eq(sb_log_read(t, at, 0, buf, sizeof(buf), &n, NULL), 0);
	cr_assert(n == len_of(&c, at) && ut_match(buf, n, at, c.seed), "the append, after a reopen");
	for (uint64_t i = 0; i < at; i++)
		if (was[i]) {
			cr_assert_eq(sb_log_read(t, i, 0, buf, sizeof(buf), &n, NULL), 0, "record %llu",
				     (unsigned long long)i);
			cr_assert(n == wl[i] && !memcmp(buf, was[i], n), "record %llu", (unsigned long long)i);
		}
	cr_assert_eq(sb_store_close(s), 0);
	for (uint64_t i = 0; i < NREC; i++)
		free(was[i]);
}

/* A record whose payload is a copy of a segment's records (an archived
 * segment file), damaged in its CRC or in its size: the repair drops it
 * alone and keeps the records after it, never the copied records inside
 * its payload (their offsets 0..3 are the log's own: before, offsets 1..3
 * served the copy's records, found by an exploratory tester). */
Test(recover_gap, records_inside_a_damaged_payload_are_not_taken_for_the_log)
{
	for (int field = 0; field < 2; field++) {
		gcase c = {.seed = 11, .comp = SB_COMPRESS_NONE};
		uint8_t *seg, pay[4096];
		size_t sl, pl = 0;
		char **segs, p[4096];
		sb_log *t;

		/* the payload: records 0..9 of another log, as a segment holds them */
		ut_cfg(&c.cfg, 1 << 20, SB_SYNC_NEVER);
		ut_topic_path(&env, "src", NULL, c.tdir, sizeof(c.tdir));
		uf_rmrf(env.store);
		sb_store *s = open_store(&c, 0);
		cr_assert_eq(ut_append_n(ut_topic(s, "src"), 10, 99, LO, HI), 0);
		cr_assert_eq(sb_store_close(s), 0);
		int n = uf_list_suffix(c.tdir, SB_SEG_SUFFIX, &segs);
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), c.tdir, segs[0]), &seg, &sl), 0);
		uf_list_free(segs, n);
		for (uint64_t at = SB_SEG_HDR; at + SB_REC_HDR <= sl && sb_get32(seg + at + SB_REC_AT_SIZE);
		     at += sb_get32(seg + at + SB_REC_AT_SIZE))
			pl = at + sb_get32(seg + at + SB_REC_AT_SIZE) - SB_SEG_HDR;
		cr_assert(pl > 0 && pl <= sizeof(pay));
		memcpy(pay, seg + SB_SEG_HDR, pl);
		free(seg);

		/* topic t: that record at offset 0, then 1..NREC-1 */
		c.cfg.segment_bytes = 4096;
		ut_topic_path(&env, "t", NULL, c.tdir, sizeof(c.tdir));
		s = open_store(&c, 0);
		t = ut_topic(s, "t");
		sb_record_in r = {.value = pay, .value_len = (uint32_t)pl};
		cr_assert_eq(sb_log_append(t, &r, 1, NULL), 0);
		for (uint64_t i = 1; i < NREC; i++)
			cr_assert_eq(ut_append1(t, i, len_of(&c, i), c.seed, NULL), 0);
		cr_assert_eq(sb_store_close(s), 0);
		n = uf_list_suffix(c.tdir, SB_SEG_SUFFIX, &segs);
		cr_assert_gt(n, 2);
		uf_join(p, sizeof(p), c.tdir, segs[0]);
		uf_list_free(segs, n);
		/* its CRC zeroed, or its size a byte off */
		if (field == 0)
			cr_assert_eq(uf_write_at(p, SB_SEG_HDR + SB_REC_AT_CRC, "\0\0\0\0", 4), 0);
		else
			cr_assert_eq(uf_flip_byte(p, SB_SEG_HDR + SB_REC_AT_SIZE, 0x01), 0);

		s = open_store(&c, 1); /* recover --cut */
		cr_assert_eq(sb_store_get(s, "t", &t), 0);
		cr_assert_eq(ut_check(t, 0, SIZE_MAX, c.seed), -ENOENT, "%s damaged: record 0 not dropped",
			     field ? "size" : "CRC");
		for (uint64_t i = 1; i < NREC; i++)
			cr_assert_eq(ut_check(t, i, len_of(&c, i), c.seed), 0, "%s damaged: record %llu",
				     field ? "size" : "CRC", (unsigned long long)i);
		cr_assert_eq(sb_store_close(s), 0);
	}
}
