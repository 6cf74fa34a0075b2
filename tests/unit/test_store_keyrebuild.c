/*
 * test_store_keyrebuild.c - `streambus recover` (sb_store_options
 * .full_check) rebuilds a key index whose entries do not match the log
 * (log_keys.c rebuild_if_wrong). A store that met the compaction defect of
 * test_store_compact_tombs.c kept a table entry naming a record compaction
 * had removed: `ls .keys` listed the key, `cat` and `rm` gave ENOENT,
 * verify failed, and recover said "nothing to recover". Generated: a log
 * of keyed and unkeyed records whose key tables are replaced by one of
 * random ghost keys naming unkeyed records (CRCs valid: only the log can
 * tell); a plain open trusts it (the ghosts are listed, the real keys
 * not); a recovering open reports the rebuild, and from then on the
 * listing is exactly the log's keys and verify finds no wrong entry, also
 * after another plain open.
 * SB_TEST_REBUILD_TRIALS: trials (default 6).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keytable.h"
#include "util_keytable.h"
#include "util_store.h"

UT_ENV_FIXTURE("krebuild")

TestSuite(krebuild, .init = ut_env_setup, .fini = ut_env_teardown);

typedef struct counts {
	unsigned real, ghosts, other;
} counts;

static int on_key(void *arg, const void *key, size_t key_len, const sb_record_info *info)
{
	counts *c = arg;

	(void)info;
	if (key_len == 4 && ((const char *)key)[0] == 'k')
		c->real++;
	else if (key_len == 4 && ((const char *)key)[0] == 'g')
		c->ghosts++;
	else
		c->other++;
	return 0;
}

static counts list(sb_store *s)
{
	sb_log *l;
	counts c = {0};

	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	cr_assert_eq(sb_log_list_keys(l, NULL, 0, on_key, &c), 0);
	return c;
}

static uint64_t wrong_entries(sb_store *s)
{
	sb_log *l;
	uint64_t wrong = 0;

	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	cr_assert_eq(sb_log_verify_keys(l, NULL, &wrong, NULL, NULL), 0);
	return wrong;
}

/* nk keyed records k000.., then nu unkeyed ones; closed. */
static void fill(unsigned nk, unsigned nu)
{
	sb_log_config c;
	sb_store *s;
	char k[16], v[32];

	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.key_memtable_bytes = 2048;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	for (unsigned i = 0; i < nk + nu; i++) {
		sb_record_in in = {.value = v, .value_len = (uint32_t)sprintf(v, "value %u", i)};
		if (i < nk) {
			in.key = k;
			in.key_len = (uint32_t)sprintf(k, "k%03u", i);
		}
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
}

/* The topic's key tables replaced by one for [0, last] of ng ghost keys,
 * each naming one of the unkeyed records [nk, last]. */
static void ghost_table(unsigned nk, uint64_t last, unsigned ng, uint64_t *seed)
{
	char dir[4200], k[16];
	sb_kt_writer *w;

	snprintf(dir, sizeof(dir), "%s/t", env.store);
	cr_assert_eq(ut_kt_remove_all(dir), 0);
	cr_assert_eq(sb_kt_writer_new(sb_io_default(), dir, 0, last, ng, 0, &w), 0);
	for (unsigned i = 0; i < ng; i++) {
		sb_mt_val v = {.offset = nk + ut_rnd(seed) % (last + 1 - nk), .ts = 1, .size = 9};
		cr_assert_eq(sb_kt_writer_add(w, k, (size_t)sprintf(k, "g%03u", i), &v), 0);
	}
	cr_assert_eq(sb_kt_writer_finish(w), 0);
}

typedef struct heard {
	unsigned rebuilt;
} heard;

static void hear(void *arg, const char *topic, const char *msg)
{
	heard *h = arg;

	(void)topic;
	if (strstr(msg, "rebuilt from the log"))
		h->rebuilt++;
}

static void open_with(int full_check, heard *h, sb_store **s)
{
	sb_store_options o;

	sb_store_options_default(&o);
	o.defaults.key_memtable_bytes = 2048;
	o.no_flusher = 1;
	o.full_check = full_check;
	o.report = h ? hear : NULL;
	o.report_arg = h;
	cr_assert_eq(sb_store_open(env.store, &o, s), 0);
}

Test(krebuild, recover_rebuilds_an_index_that_names_records_the_log_lacks)
{
	const char *e = getenv("SB_TEST_REBUILD_TRIALS");
	unsigned trials = e ? (unsigned)atoi(e) : 6;

	for (unsigned t = 0; t < trials; t++) {
		uint64_t seed = 0x4eb0u + t;
		unsigned nk = 20 + (unsigned)(ut_rnd(&seed) % 300), nu = 10 + (unsigned)(ut_rnd(&seed) % 50);
		unsigned ng = 1 + (unsigned)(ut_rnd(&seed) % 40);
		heard h = {0};
		sb_store *s;

		ut_env_fini(&env);
		cr_assert_eq(ut_env_init(&env, "krebuild"), 0);
		fill(nk, nu);
		ghost_table(nk, nk + nu - 1, ng, &seed);
		open_with(0, NULL, &s);
		counts c = list(s);
		cr_assert(c.ghosts == ng && c.real == 0, "trial %u: a plain open lists %u ghosts, %u real keys", t,
			  c.ghosts, c.real);
		cr_assert_gt(wrong_entries(s), 0, "trial %u: verify finds the ghosts", t);
		cr_assert_eq(sb_store_close(s), 0);
		open_with(1, &h, &s); /* recover */
		cr_assert_eq(h.rebuilt, 1, "trial %u: the rebuild is reported %u times", t, h.rebuilt);
		c = list(s);
		cr_assert(c.ghosts == 0 && c.real == nk && c.other == 0, "trial %u, recovered: %u ghosts, %u of %u keys",
			  t, c.ghosts, c.real, nk);
		cr_assert_eq(wrong_entries(s), 0, "trial %u, recovered", t);
		cr_assert_eq(sb_store_close(s), 0);
		open_with(0, NULL, &s);
		c = list(s);
		cr_assert(c.ghosts == 0 && c.real == nk, "trial %u, reopened: %u ghosts, %u of %u keys", t, c.ghosts,
			  c.real, nk);
		cr_assert_eq(sb_store_close(s), 0);
		h.rebuilt = 0;
		open_with(1, &h, &s); /* a sound index is left alone */
		cr_assert_eq(h.rebuilt, 0, "trial %u: a sound index rebuilt", t);
		cr_assert_eq(sb_store_close(s), 0);
	}
}
