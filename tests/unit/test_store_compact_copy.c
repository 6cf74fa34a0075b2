/*
 * test_store_compact_copy.c - a copy of a compacted topic's directory
 * taken file by file while it is written and compacted (SPEC §6: "copy
 * LOG_DIR itself while mounted ... a copy taken at any moment mounts and
 * recovers"). The copy's key tables may be older than its segments: a
 * segment copied after a round lacks a key's versions the round removed
 * for a newer one past the copy's end, while the copy's tables still name
 * them. tools/livecopy found it through the mount (rsync -a of LOG_DIR
 * beside a writer): the copy's `.keys/` listed keys that `cat` said
 * ENOENT for, and `streambus verify` reported the key index after every
 * later mount. Now the first open of a compacted log's key index after an
 * open without a clean close checks it against the log and rebuilds it
 * from the log when it does not match (log_keys.c, rebuild_if_wrong).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("ccopy")

TestSuite(ccopy, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 120);

#define NKEYS 10
#define ROUND1 200 /* keyed records before the copy's tables */

static sb_log_config cfg(void)
{
	sb_log_config c;

	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.cleanup = SB_CLEANUP_COMPACT;
	c.index_interval_bytes = 512;
	c.key_memtable_bytes = 1; /* a key table an append, merged as it runs */
	return c;
}

/* Append n records from offset `at`, one in `unkeyed` without a key (1:
 * all, 0: none), the others with key k<offset % NKEYS>; 60-byte values
 * naming their offset. */
static void put(sb_log *l, uint64_t at, unsigned n, unsigned unkeyed)
{
	for (unsigned i = 0; i < n; i++) {
		char k[8], v[60];
		uint64_t o = at + i;
		int keyed = !unkeyed || o % unkeyed;
		snprintf(k, sizeof(k), "k%u", (unsigned)(o % NKEYS));
		memset(v, 'a' + (int)(o % 26), sizeof(v));
		snprintf(v, sizeof(v), "%llu:", (unsigned long long)o);
		sb_record_in r = {.key = keyed ? k : NULL,
				  .key_len = keyed ? (uint16_t)strlen(k) : 0,
				  .value = v,
				  .value_len = sizeof(v)};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0, "append at %llu", (unsigned long long)o);
	}
}

typedef struct listed {
	sb_log *l;
	unsigned n, unread;
} listed;

/* Every key listed reads (sb_log_get_key). */
static int read_listed(void *arg, const void *key, size_t klen, const sb_record_info *info)
{
	listed *c = arg;
	uint8_t b[64];
	size_t n;

	(void)info;
	c->n++;
	c->unread += sb_log_get_key(c->l, key, klen, b, sizeof(b), &n, NULL) != 0;
	return 0;
}

/* Entries of topic t's key index (in dir, opened read-only: nothing
 * rebuilt) that name what the log lacks or disagree with it. */
static uint64_t wrong_keys(const char *dir, const sb_log_config *c)
{
	sb_store *s;
	sb_log *l = NULL;
	uint64_t checked = 0, wrong = 0;

	cr_assert_eq(ut_open_ro(dir, c, &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_assert_gt(checked, 0);
	cr_assert_eq(sb_store_close(s), 0);
	return wrong;
}

static int damage(const char *dir)
{
	char td[4200];
	sb_verify_result vr;

	uf_join(td, sizeof(td), dir, "t");
	cr_assert_eq(sb_verify_topic(td, NULL, NULL, NULL, &vr), 0);
	return sb_verify_damage(&vr);
}

/* The copy: the tables and segments of a clean close, then (the copy
 * went on while the log was written and compacted) the original's files
 * of the copy's sealed segments after a round that removed versions
 * superseded past the copy's end (those of a segment the round removed
 * gone); no clean marker (the live log had none). */
static void make_copy(const char *copy)
{
	static const char *const suffix[] = {".seg", ".idx", ".tix"};
	char src[4200], dst[4200], ct[4200], name[64], **names;

	uf_join(ct, sizeof(ct), copy, "t");
	int n = uf_list_suffix(ct, ".seg", &names);
	cr_assert_gt(n, 3);
	for (int i = 0; i + 1 < n; i++) { /* the newest stays */
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "%.20s%s", names[i], suffix[k]);
			ut_topic_path(&env, "t", name, src, sizeof(src));
			uf_join(dst, sizeof(dst), ct, name);
			if (uf_exists(src))
				cr_assert_eq(uf_copy_file(src, dst), 0);
			else if (uf_exists(dst))
				cr_assert_eq(uf_remove(dst), 0);
		}
	}
	uf_list_free(names, n);
	uf_remove(uf_join(dst, sizeof(dst), ct, "clean"));
}

Test(ccopy, a_copy_whose_tables_name_versions_a_round_removed_rebuilds_its_key_index)
{
	sb_log_config c = cfg();
	sb_store *s;
	sb_compact_stats st;
	char copy[4200], ct[4200];

	snprintf(copy, sizeof(copy), "%s/copy", env.root);
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	put(l, 0, ROUND1, 4); /* the unkeyed ones keep each segment after a round */
	put(l, ROUND1, 80, 1); /* the latest versions in a sealed segment */
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(uf_copy_tree(env.store, copy), 0);
	cr_assert_gt(uf_count_suffix(uf_join(ct, sizeof(ct), copy, "t"), ".keys"), 0, "no key table to copy");

	/* the log goes on: half the keys again, then unkeyed records
	 * sealing their segment; a round removes every version of theirs
	 * that the copy has */
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	l = ut_topic(s, "t");
	put(l, ROUND1 + 80, NKEYS / 2, 0); /* k0..k4 */
	put(l, ROUND1 + 80 + NKEYS / 2, 120, 1);
	cr_assert_eq(sb_log_sync(l), 0);
	cr_assert_eq(sb_log_compact(l, ut_now_ms() * 1000000, &st), 0);
	cr_assert_gt(st.segments, 0);
	cr_assert_eq(sb_store_close(s), 0);
	make_copy(copy);
	cr_assert_eq(damage(copy), 0, "the copy as taken: its log");
	cr_assert_gt(wrong_keys(copy, &c), 0, "the copy as taken: its key index names nothing the log lacks");

	/* opened, its keys used (a mount's round or a `cat` does): the
	 * index rebuilt; every key listed reads; verify clean after */
	cr_assert_eq(ut_open(copy, &c, NULL, &s), 0);
	l = NULL;
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	uint64_t checked = 0, wrong = 0;
	cr_assert_eq(sb_log_verify_keys(l, &checked, &wrong, NULL, NULL), 0);
	cr_expect_eq(wrong, 0, "%llu of %llu key index entries name what the copy's log lacks",
		     (unsigned long long)wrong, (unsigned long long)checked);
	listed ls = {l, 0, 0};
	cr_assert_eq(sb_log_list_keys(l, NULL, 0, read_listed, &ls), 0);
	cr_expect_eq(ls.unread, 0, "%u of %u keys listed do not read", ls.unread, ls.n);
	cr_expect_eq(ls.n, NKEYS / 2, "keys listed: those with a version in the copy's log");
	cr_assert_eq(sb_store_close(s), 0);
	cr_expect_eq(wrong_keys(copy, &c), 0, "after its open and close");
	cr_expect_eq(damage(copy), 0, "verify of the copy after its open and close");
}
