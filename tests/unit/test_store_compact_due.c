/*
 * test_store_compact_due.c - when compaction runs under sync = interval
 * (log_compact.c). Only records that are durable may supersede others (the
 * round's horizon). A round was due at a roll, when the segment just sealed
 * and the newest one were not synced yet: it kept every record the newest
 * ones superseded, and nothing made it due again, so a topic of hot keys
 * kept every version, also after a remount (found by an exploratory
 * tester: 3,000 of 3,000 records kept for 20 keys). A round now syncs what
 * was appended before it picks its segments; and records appended since
 * the last round, with no roll, make one due again SB_COMPACT_RETRY_MS
 * later once they are 1/64 of the log's bytes. And a copy of the directory
 * taken during a round (cp -a) may hold a compacted segment beside the
 * index file of what it was before: that index proves nothing about the
 * compacted file (its entries name other records), and such a copy was
 * refused as "records lost" (found by the same tester, 2 copies of 48).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util_files.h"
#include "util_store.h"

UT_ENV_FIXTURE("cdue")

TestSuite(cdue, .init = ut_env_setup, .fini = ut_env_teardown);

#define NKEYS 20
#define T0 1700000000000000000LL

static sb_log_config cfg(void)
{
	sb_log_config c;

	ut_cfg(&c, 16384, SB_SYNC_INTERVAL);
	c.cleanup = SB_CLEANUP_COMPACT;
	return c;
}

/* n records of 150 bytes over NKEYS keys, round robin, from *i on. */
static void hot_keys(sb_log *l, int *i, int n)
{
	char k[16], v[150];

	memset(v, 'x', sizeof(v));
	for (int end = *i + n; *i < end; (*i)++) {
		sb_record_in r = {.key = k, .key_len = (uint32_t)sprintf(k, "k%02d", *i % NKEYS), .value = v,
				  .value_len = sizeof(v), .timestamp_ns = T0 + *i};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
}

/* No flusher: nothing is synced but by the round itself (a flusher syncs
 * within sync_interval_ms, after the round the roll made due). */
Test(cdue, a_round_under_sync_interval_drops_what_the_newest_records_supersede)
{
	sb_log_config c = cfg();
	sb_compact_stats st;
	sb_store *s;
	int i = 0;

	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	hot_keys(l, &i, 3000);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	/* of the sealed segments' records only the keys' latest (offsets
	 * 2980..2999) below the newest segment stay */
	uint64_t latest_in = st.end > 3000 - NKEYS ? st.end - (3000 - NKEYS) : 0;
	cr_assert_gt(st.records_in, 2000, "only %lu records in sealed segments", (unsigned long)st.records_in);
	cr_assert_eq(st.records_out, latest_in, "%lu of %lu records kept, %lu of them latest (horizon %lu, next %lu)",
		     (unsigned long)st.records_out, (unsigned long)st.records_in, (unsigned long)latest_in,
		     (unsigned long)st.horizon, (unsigned long)sb_log_next(l));
	cr_assert_eq(st.horizon, sb_log_next(l), "the round did not sync what was appended before it");
	cr_assert_eq(sb_store_close(s), 0);
}

/* Appends since the last round, no roll: due again SB_COMPACT_RETRY_MS
 * after it (never before), once they are 1/64 of the log's bytes; not
 * when nothing was appended since. */
Test(cdue, appends_since_the_last_round_make_one_due_later)
{
	sb_log_config c = cfg();
	sb_compact_stats st;
	sb_store *s;
	int i = 0;
	const int64_t later = (int64_t)SB_COMPACT_RETRY_MS * 1000000;

	c.segment_bytes = 1 << 20; /* no roll below */
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	hot_keys(l, &i, 200);
	cr_assert_eq(sb_log_compact(l, T0, &st), 0);
	cr_assert_eq(sb_log_compact_due(l, T0 + 2 * later), 0, "due with nothing appended since the round");
	hot_keys(l, &i, 1);
	cr_assert_eq(sb_log_compact_due(l, T0 + 2 * later), 0, "due for 1 record of 201 (under 1/64 of the bytes)");
	hot_keys(l, &i, 20);
	cr_assert_eq(sb_log_compact_due(l, T0 + later - 1), 0, "due before SB_COMPACT_RETRY_MS");
	cr_assert_eq(sb_log_compact_due(l, T0 + later), 1, "not due SB_COMPACT_RETRY_MS after the round");
	cr_assert_eq(sb_log_compact(l, T0 + later, &st), 0);
	cr_assert_eq(sb_log_compact_due(l, T0 + 3 * later), 0, "due again with nothing appended since");
	cr_assert_eq(sb_store_close(s), 0);
}

static int refused_msgs;
static void count_lost(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	refused_msgs += strstr(msg, "records lost") != NULL;
}

/* The store with config c, its reports of "records lost" counted in
 * refused_msgs (from 0). */
static sb_store *open_counting_lost(const sb_log_config *c)
{
	sb_store_options o;
	sb_store *s;

	sb_store_options_default(&o);
	o.defaults = *c;
	o.no_flusher = 1;
	o.report = count_lost;
	refused_msgs = 0;
	cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
	return s;
}

/* Each trial: hot keys over a few segments, synced; the index files of the
 * sealed segments kept aside; a round of compaction; then the old index
 * files put back beside the compacted segments (a copy's view). The open
 * rebuilds them: no "records lost", the topic is there, every key's latest
 * record is read. */
Test(cdue, a_compacted_segment_beside_its_old_index_opens)
{
	sb_log_config c = cfg();
	char td[4400], path[8800], save[8800];
	int trials = 0;

	c.segment_bytes = 4096;
	c.sync = SB_SYNC_ALWAYS;
	for (int t = 0; t < 6; t++) {
		sb_compact_stats st;
		sb_store *s;
		int i = 0;
		char topic[16];
		snprintf(topic, sizeof(topic), "t%d", t);
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		sb_log *l = ut_topic(s, topic);
		hot_keys(l, &i, 60 + 37 * t);
		cr_assert_eq(sb_log_sync(l), 0);
		ut_topic_path(&env, topic, NULL, td, sizeof(td));
		char **idx;
		int nidx = uf_list_suffix(td, ".idx", &idx);
		cr_assert_gt(nidx, 0);
		for (int j = 0; j < nidx; j++) {
			snprintf(path, sizeof(path), "%s/%s", td, idx[j]);
			snprintf(save, sizeof(save), "%s/%s.old", env.store, idx[j]);
			cr_assert_eq(uf_copy_file(path, save), 0);
		}
		cr_assert_eq(sb_log_compact(l, T0, &st), 0);
		cr_assert_eq(sb_store_close(s), 0);
		trials += st.segments > 0;
		/* the copy: compacted segments, the old index files */
		for (int j = 0; j < nidx; j++) {
			snprintf(path, sizeof(path), "%s/%s", td, idx[j]);
			snprintf(save, sizeof(save), "%s/%s.old", env.store, idx[j]);
			char seg[8800];
			snprintf(seg, sizeof(seg), "%.*s.seg", (int)(strlen(path) - 4), path);
			if (uf_exists(seg))
				cr_assert_eq(uf_copy_file(save, path), 0);
			uf_remove(save);
		}
		uf_list_free(idx, nidx);
		/* verify, before any open rebuilds them, says the same (its
		 * notes about the index files are not damage) */
		sb_verify_result vr;
		cr_assert_eq(sb_verify_topic(td, NULL, NULL, NULL, &vr), 0);
		cr_assert_eq(vr.problems[SB_VERIFY_RECORD] + vr.problems[SB_VERIFY_ORDER] + vr.problems[SB_VERIFY_FILE], 0,
			     "trial %d: verify finds damage (%lu record, %lu order, %lu file)",
			     t, (unsigned long)vr.problems[SB_VERIFY_RECORD], (unsigned long)vr.problems[SB_VERIFY_ORDER],
			     (unsigned long)vr.problems[SB_VERIFY_FILE]);
		s = open_counting_lost(&c);
		cr_assert_eq(sb_store_get(s, topic, &l), 0, "trial %d: the topic refused", t);
		cr_assert_eq(refused_msgs, 0, "trial %d: records said lost", t);
		for (int k = 0; k < NKEYS && k < i; k++) {
			char kb[16], v[200];
			size_t n;
			sb_record_info info;
			int kl = sprintf(kb, "k%02d", k);
			cr_assert_eq(sb_log_get_key(l, kb, (size_t)kl, v, sizeof(v), &n, &info), 0, "trial %d: %s", t, kb);
		}
		cr_assert_eq(sb_store_close(s), 0);
	}
	cr_assert_geq(trials, 4, "only %d trials compacted a segment", trials);
}

/*
 * A plain segment beside an index file that covers more bytes than it has
 * but whose entries name other records (another segment's index with the
 * same base: a copy put together from two logs, generated over 8 seeds):
 * no proof that records were lost; the open rebuilds the index, and verify
 * says the same. (Since compacted segments skip this check, only a plain
 * segment reaches it: the mutations of it survived every other test.)
 */
Test(cdue, a_plain_segment_beside_another_logs_index_opens)
{
	sb_log_config c = cfg();
	char tx[4400], ty[4400], from[8800], to[8800];

	c.cleanup = SB_CLEANUP_DELETE;
	c.index_interval_bytes = 256;
	for (int seed = 0; seed < 8; seed++) {
		sb_store *s;
		char x[16], y[16];
		snprintf(x, sizeof(x), "x%d", seed);
		snprintf(y, sizeof(y), "y%d", seed);
		cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
		/* the same base, longer records in x: x's index covers more */
		cr_assert_eq(ut_append_n(ut_topic(s, x), 60, (uint64_t)seed, 60, 90), 0);
		cr_assert_eq(ut_append_n(ut_topic(s, y), 60, (uint64_t)seed + 100, 20, 40), 0);
		cr_assert_eq(sb_store_close(s), 0);
		ut_topic_path(&env, x, NULL, tx, sizeof(tx));
		ut_topic_path(&env, y, NULL, ty, sizeof(ty));
		snprintf(from, sizeof(from), "%s/%020d.idx", tx, 0);
		snprintf(to, sizeof(to), "%s/%020d.idx", ty, 0);
		cr_assert_eq(uf_copy_file(from, to), 0);
		sb_verify_result vr;
		cr_assert_eq(sb_verify_topic(ty, NULL, NULL, NULL, &vr), 0);
		cr_assert_eq(vr.problems[SB_VERIFY_RECORD] + vr.problems[SB_VERIFY_ORDER] + vr.problems[SB_VERIFY_FILE], 0,
			     "seed %d: verify calls another log's index damage", seed);
		s = open_counting_lost(&c);
		sb_log *l;
		cr_assert_eq(sb_store_get(s, y, &l), 0, "seed %d: the topic was refused", seed);
		cr_assert_eq(refused_msgs, 0, "seed %d: records lost, said", seed);
		for (uint64_t i = 0; i < 60; i++)
			cr_assert_eq(ut_check(l, i, SIZE_MAX, (uint64_t)seed + 100), 0, "seed %d: record %llu", seed,
				     (unsigned long long)i);
		cr_assert_eq(sb_store_close(s), 0);
	}
}
