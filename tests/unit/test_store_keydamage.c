/*
 * test_store_keydamage.c - a damaged record never makes the key index
 * answer wrong (SPEC §2 "Keys", §4: nothing damaged, nothing stale).
 *
 * Generated cases: a keyed workload (keys reused, tombstones, unkeyed
 * records between) over small segments, a clean close, one random byte of
 * one random record flipped, a reopen. Then every key of the workload is
 * asked for and the keys are listed: each answer must be the right one
 * (the payload of the key's latest record, or no such key when that is a
 * tombstone or there is none) or say the damage (SB_ECORRUPT); a listing
 * is the exact set of live keys, or SB_ECORRUPT. Half the cases keep the
 * key index in tables at the close (the index then never reads the
 * damaged record: a lookup of its key fails when it reads the record),
 * half leave it to the replay at the open, which meets the damage. In a
 * third of the cases the topic is then removed as `rm -r` does (its key
 * tables with it).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "util_disk.h"
#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("keydamage")
TestSuite(keydamage, .init = ut_env_setup, .fini = ut_env_teardown);

enum { NKEYS = 24, NRECS = 260, MAXREC = 600 };

/* The model: the latest record of each key. */
typedef struct kd_key {
	int has;        /* a record with this key was written */
	int tomb;       /* its latest is a tombstone */
	uint64_t off;   /* its latest record's offset */
	size_t len;     /* its payload's length */
} kd_key;

static kd_key K[NKEYS];

static size_t key_of(int k, char *buf)
{
	return (size_t)snprintf(buf, 32, "key-%02d-%s", k, k % 3 ? "x" : "longer-name");
}

/* Append the workload; the model follows it. */
static void workload(sb_log *l, uint64_t *rng)
{
	uint8_t val[MAXREC];
	char kb[32];

	memset(K, 0, sizeof(K));
	for (int i = 0; i < NRECS; i++) {
		uint64_t r = ut_splitmix(rng), off = sb_log_next(l);
		int k = (int)(r % NKEYS), keyed = (r >> 8) % 5 != 0, tomb = keyed && (r >> 16) % 7 == 0;
		size_t len = tomb ? 0 : 1 + (size_t)((r >> 24) % MAXREC);
		ut_fill(val, len, off, 11);
		sb_record_in in = {.value = val, .value_len = (uint32_t)len,
				   .flags = tomb ? SB_RECORD_TOMBSTONE : 0};
		if (keyed) {
			in.key = kb;
			in.key_len = (uint32_t)key_of(k, kb);
		}
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0, "append %d", i);
		if (keyed)
			K[k] = (kd_key){1, tomb, off, len};
	}
}

static int keep_all(void *arg, const sb_rec_hdr *h)
{
	(void)arg;
	(void)h;
	return 1;
}

/* Flip one random byte (random nonzero mask) of one random record. */
static void damage_one(uint64_t *rng, uint64_t *off)
{
	static ut_disk_rec recs[NRECS + 8];
	size_t n = ut_disk_records(env.store, "t", keep_all, NULL, recs, NRECS + 8);

	cr_assert_eq(n, NRECS, "the topic's files hold %zu records, not %d", n, NRECS);
	const ut_disk_rec *d = &recs[ut_splitmix(rng) % n];
	uint64_t at = d->pos + ut_splitmix(rng) % d->h.size;
	uint8_t mask = (uint8_t)(1 + ut_splitmix(rng) % 255);
	cr_assert_eq(uf_flip_byte(d->seg, (off_t)at, mask), 0);
	*off = d->offset;
}

typedef struct kd_list {
	int seen[NKEYS];
	int other;
} kd_list;

static int list_cb(void *arg, const void *key, size_t kl, const sb_record_info *info)
{
	kd_list *c = arg;
	char kb[32];

	(void)info;
	for (int k = 0; k < NKEYS; k++)
		if (key_of(k, kb) == kl && !memcmp(kb, key, kl)) {
			c->seen[k]++;
			return 0;
		}
	c->other++;
	return 0;
}

/* Every answer by key right or SB_ECORRUPT; counts the right ones. */
static int check_answers(sb_log *l, int c, uint64_t damaged)
{
	uint8_t buf[MAXREC + 1];
	char kb[32];
	int right = 0;

	for (int k = 0; k < NKEYS; k++) {
		size_t n = 0, kl = key_of(k, kb);
		int rc = sb_log_get_key(l, kb, kl, buf, sizeof(buf), &n, NULL);
		if (rc == SB_ECORRUPT)
			continue;
		if (!K[k].has || K[k].tomb) {
			cr_assert_eq(rc, -ENOENT, "case %d (record %llu damaged): %s has no live record, got %s", c,
				     (unsigned long long)damaged, kb, rc ? sb_strerror(rc) : "a payload");
		} else {
			cr_assert_eq(rc, 0, "case %d (record %llu damaged): %s is record %llu, got %s", c,
				     (unsigned long long)damaged, kb, (unsigned long long)K[k].off,
				     sb_strerror(rc));
			cr_assert(n == K[k].len && ut_match(buf, n, K[k].off, 11),
				  "case %d (record %llu damaged): %s served %zu bytes, not record %llu's %zu", c,
				  (unsigned long long)damaged, kb, n, (unsigned long long)K[k].off, K[k].len);
		}
		right++;
	}
	kd_list li = {{0}, 0};
	int rc = sb_log_list_keys(l, NULL, 0, list_cb, &li);
	if (rc == SB_ECORRUPT)
		return right;
	cr_assert_eq(rc, 0, "case %d: listing: %s", c, sb_strerror(rc));
	cr_assert_eq(li.other, 0, "case %d (record %llu damaged): %d keys listed that were never written", c,
		     (unsigned long long)damaged, li.other);
	for (int k = 0; k < NKEYS; k++)
		cr_assert_eq(li.seen[k], K[k].has && !K[k].tomb,
			     "case %d (record %llu damaged): %s listed %d times, live %d", c,
			     (unsigned long long)damaged, key_of(k, kb) ? kb : "", li.seen[k],
			     K[k].has && !K[k].tomb);
	return right;
}

/* What `rm -r TOPIC` does: every record, then the topic. */
static void remove_topic(sb_store *s, sb_log *l, int c, const char *dir)
{
	int rc = sb_log_delete_before(l, sb_log_next(l));

	cr_assert_eq(rc, 0, "case %d: removing the records: %s", c, sb_strerror(rc));
	rc = sb_store_remove(s, "t");
	cr_assert_eq(rc, 0, "case %d: removing the topic: %s", c, sb_strerror(rc));
	cr_assert(!uf_exists(dir), "case %d: the topic's directory is still there", c);
}

Test(keydamage, no_wrong_answer_by_key_after_random_damage)
{
	uint64_t rng = 0x6b657964616d61ULL;
	int cases = 240, refused = 0, corrupt_all = 0, answered = 0, tabled = 0;
	sb_log_config cfg;

	for (int c = 0; c < cases; c++) {
		sb_store *s;
		sb_log *l;
		uint64_t damaged;
		ut_cfg(&cfg, 4096 + ut_splitmix(&rng) % 8192, SB_SYNC_NEVER);
		cfg.index_interval_bytes = 256;
		/* tables at the close (a tiny MemTable) or the replay */
		cfg.key_memtable_bytes = c % 2 ? 4096 : 0;
		cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
		l = ut_topic(s, "t");
		cr_assert_not_null(l);
		workload(l, &rng);
		cr_assert_eq(sb_store_close(s), 0);
		char dir[4400];
		ut_topic_path(&env, "t", NULL, dir, sizeof(dir));
		tabled += uf_count_suffix(dir, ".keys") > 0;
		damage_one(&rng, &damaged);
		if (ut_open(env.store, &cfg, NULL, &s) == 0) {
			if (sb_store_get(s, "t", &l) == 0) {
				int right = check_answers(l, c, damaged);
				answered += right;
				corrupt_all += right == 0;
				/* rm -r works on it: its key tables go too (a
				 * third of the cases: it syncs the directory) */
				if (c % 3 == 0)
					remove_topic(s, l, c, dir);
			} else {
				refused++; /* damage the open found: the topic refused */
			}
			cr_assert_eq(sb_store_close(s), 0);
		} else {
			refused++;
		}
		if (uf_exists(dir))
			cr_assert_eq(uf_rmrf(dir), 0);
	}
	cr_log_info("%d cases (%d with key tables): %d topics refused at the open, %d with every answer by "
		    "key refused, %d right answers", cases, tabled, refused, corrupt_all, answered);
	/* the cases must reach both paths and both kinds of answer */
	cr_assert_gt(tabled, cases / 4, "few cases kept their key index in tables");
	cr_assert_gt(answered, cases * NKEYS / 4, "few answers by key were checked");
	cr_assert_gt(corrupt_all, 0, "no case met damage in the replay");
}
