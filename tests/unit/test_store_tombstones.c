/*
 * test_store_tombstones.c - a tombstone is a key and no payload (format.h,
 * docs/FORMAT.md). The append refuses any other (EINVAL); one found on
 * disk under a good CRC (a writer's bug, a forged record) is damage, as a
 * header block that does not parse: verify names it ("malformed
 * tombstone", its offset), reads of it fail, an open refuses the topic,
 * and recover (repair: `streambus recover --cut`) cuts the log there,
 * after which verify passes and every record before it reads right.
 * Generated damage: random records of a topic of keyed records, valid
 * tombstones and unkeyed ones, made into malformed tombstones of each
 * kind (a keyed record flagged, a tombstone whose key became a payload,
 * an unkeyed record flagged) and re-signed.
 * SB_TEST_TOMB_DAMAGE: trials (default 12).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "format.h"
#include "util_disk.h"
#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("tomb")

TestSuite(tomb, .init = ut_env_setup, .fini = ut_env_teardown);

#define NREC 300

static sb_log_config tcfg(void)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	return c;
}

/* NREC records: keyed (a fifth of them tombstones) and unkeyed; closed. */
static void fill(void)
{
	sb_log_config c = tcfg();
	sb_store *s;
	uint8_t val[120];
	char k[16];

	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	for (uint64_t o = 0; o < NREC; o++) {
		uint64_t r = ut_mix(o) % 10;
		int keyed = r < 7, tomb = r < 2;
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(o, 9, 1, sizeof(val));
		ut_fill(val, len, o, 9);
		sb_record_in in = {.key = k, .key_len = keyed ? (uint32_t)sprintf(k, "k%llu", (unsigned long long)(o % 13)) : 0,
				   .value = val, .value_len = len, .flags = tomb ? SB_RECORD_TOMBSTONE : 0};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
}

/* Is the record of kind *(int *)arg? */
static int of_kind(void *arg, const sb_rec_hdr *h)
{
	int kd = (h->flags & SB_REC_TOMBSTONE) ? 1 : h->key_len ? 0 : 2;

	return kd == *(const int *)arg && (kd == 1 || h->value_len);
}

/* The records on disk, each of a kind: 0 keyed with a payload, 1 a valid
 * tombstone, 2 unkeyed with a payload. */
static size_t records(ut_disk_rec *out, size_t cap, int kind)
{
	return ut_disk_records(env.store, "t", of_kind, &kind, out, cap);
}

/* Make record f a malformed tombstone of `kind` under a good CRC. */
static void forge(const ut_disk_rec *f, int kind)
{
	uint8_t rec[4096];
	FILE *fp = fopen(f->seg, "rb");

	cr_assert(fp && f->h.size <= sizeof rec);
	cr_assert_eq(fseek(fp, (long)f->pos, SEEK_SET), 0);
	cr_assert_eq(fread(rec, 1, f->h.size, fp), f->h.size);
	fclose(fp);
	uint16_t flags = sb_get16(rec + SB_REC_AT_FLAGS) | SB_REC_TOMBSTONE;
	sb_put16(rec + SB_REC_AT_FLAGS, flags);
	if (kind == 1) { /* the tombstone's key becomes its payload */
		sb_put32(rec + SB_REC_AT_VAL_LEN, sb_get16(rec + SB_REC_AT_KEY_LEN));
		sb_put16(rec + SB_REC_AT_KEY_LEN, 0);
	}
	sb_put32(rec + SB_REC_AT_CRC, sb_crc32c(0, rec + SB_REC_AT_SIZE, f->h.size - SB_REC_AT_SIZE));
	cr_assert_eq(uf_write_at(f->seg, (off_t)f->pos, rec, f->h.size), 0);
}

typedef struct seen {
	uint64_t offset;
	int named;
} seen;

static void on_problem(void *arg, const sb_verify_problem *p)
{
	seen *s = arg;
	if (strstr(p->msg, "malformed tombstone") && p->offset == s->offset)
		s->named = 1;
}

static uint64_t verify(seen *s)
{
	sb_verify_result res;
	char td[4200];

	snprintf(td, sizeof td, "%s/t", env.store);
	cr_assert_eq(sb_verify_topic(td, s ? on_problem : NULL, NULL, s, &res), 0);
	return sb_verify_damage(&res) - res.problems[SB_VERIFY_INDEX];
}

static int open_repair(sb_store **out)
{
	sb_store_options o;

	sb_store_options_default(&o);
	o.defaults = tcfg();
	o.no_flusher = 1;
	o.repair = 1;
	return sb_store_open(env.store, &o, out);
}

Test(tomb, malformed_tombstones_are_damage_that_recover_cuts)
{
	static ut_disk_rec recs[NREC];
	const char *knob = getenv("SB_TEST_TOMB_DAMAGE");
	int trials = knob ? atoi(knob) : 12;
	sb_log_config c = tcfg();
	uint64_t rng = 0x2545f4914f6cdd1dull;

	for (int t = 0; t < trials; t++) {
		ut_env_fini(&env);
		cr_assert_eq(ut_env_init(&env, "tomb"), 0);
		fill();
		cr_assert_eq(verify(NULL), 0, "trial %d: the topic before the damage", t);
		rng = ut_mix(rng + (uint64_t)t);
		int kind = (int)(rng % 3);
		size_t n = records(recs, NREC, kind);
		cr_assert_gt(n, 10);
		const ut_disk_rec *f = &recs[(rng >> 8) % n];
		forge(f, kind);

		seen sn = {.offset = f->offset};
		cr_assert_gt(verify(&sn), 0, "trial %d: verify misses a malformed tombstone (kind %d) at offset %llu", t,
			     kind, (unsigned long long)f->offset);
		cr_assert(sn.named, "trial %d: verify does not name the malformed tombstone at offset %llu", t,
			  (unsigned long long)f->offset);

		/* never served; a read-write open refuses the topic */
		sb_store *s;
		sb_log *l;
		uint8_t buf[256];
		size_t got;
		cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
		if (sb_store_get(s, "t", &l) == 0 && f->offset < sb_log_next(l))
			cr_assert_eq(sb_log_read(l, f->offset, 0, buf, sizeof buf, &got, NULL), SB_ECORRUPT);
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		cr_assert_neq(sb_store_get(s, "t", &l), 0, "trial %d: a topic with a malformed tombstone opens", t);
		cr_assert_eq(sb_store_close(s), 0);

		/* recover --cut: the records from it to its segment's end go
		 * (a gap, where later segments follow: log_recover_gap.c), or
		 * the log ends before it (in the last segment); every other
		 * record reads as written; verify passes */
		cr_assert_eq(open_repair(&s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0, "trial %d: recover refuses the topic", t);
		uint64_t next = sb_log_next(l), end = f->offset;
		cr_assert(next == f->offset || next == NREC, "trial %d: next %llu after a repair at %llu", t,
			  (unsigned long long)next, (unsigned long long)f->offset);
		for (uint64_t o = 0; o < next; o++) {
			sb_record_info info;
			int rc = sb_log_read(l, o, 0, buf, sizeof buf, &got, &info);
			if (rc == -ENOENT && o == end) {
				end++; /* the dropped run, from the malformed tombstone on */
				continue;
			}
			cr_assert_eq(rc, 0, "trial %d: offset %llu (dropped from %llu): %s", t, (unsigned long long)o,
				     (unsigned long long)f->offset, sb_strerror(rc));
			cr_assert(ut_match(buf, got, o, 9));
		}
		cr_assert(next == f->offset || end > f->offset, "trial %d: the malformed tombstone at %llu is kept", t,
			  (unsigned long long)f->offset);
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(verify(NULL), 0, "trial %d: verify after recover", t);
	}
}
