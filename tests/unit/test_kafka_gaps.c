/*
 * test_kafka_gaps.c - a Kafka partition with offsets that hold no record
 * (compaction, transaction markers: SPEC §2 "a compacted topic has gaps"),
 * against the fake cluster (kafka_fake.c, fhole). Generated cases: random
 * partitions with random gap patterns (single holes, runs longer than a
 * fetch, holes at the start and at the end), random fetch sizes and cache
 * sizes, random cleanup.policy (compact, compact,delete, delete, Kafka's
 * default), a config the cluster does not give (no permission, no
 * DescribeConfigs, no answer in time) and [kafka] ls_gaps forced either
 * way, each checked against a model:
 *   - where gaps are skipped (a compacted topic, ls_gaps = skip): ls lists
 *     exactly the present offsets, in order, whatever the size of
 *     readdir's replies; ls fetches each chunk once (never once per name
 *     or per gap) and a second ls fetches nothing;
 *   - elsewhere (delete, config unreadable, ls_gaps = list): ls lists
 *     every offset from the watermarks and fetches nothing (a 100 GB topic
 *     is not read for an ls); an unreadable config is said once in the
 *     log; the config is asked at most once;
 *   - always: a gap's stat is ENOENT; .log is the present records'
 *     payloads.
 * And the end: a gap after the last record (a transaction's commit marker)
 * is fetched once, and a record that comes after it shows. And a topic of
 * several partitions asks for its config once, by the topic's name.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_fake.h"

/* What ls gets: ops_dir.c's loop over next_present (none: every offset
 * in [start, next) listed), in replies of up to `per` names, each resumed
 * at the offset after the last name listed, as the kernel's cookies do. */
static size_t ls(sbfs_backend *b, sbfs_topic *t, size_t per, uint64_t *out, size_t cap)
{
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(t, 0, &bd), 0);
	uint64_t o = bd.start;
	size_t n = 0, got;
	do {
		got = 0;
		for (; o < bd.next; o++) {
			if (b->ops->next_present) {
				int rc = b->ops->next_present(t, o, &o);
				if (rc == -ENOENT)
					break;
				cr_assert_eq(rc, 0, "next_present(%lu): %d", (unsigned long)o, rc);
			}
			if (o >= bd.next || got == per)
				break;
			cr_assert_lt(n, cap, "more names than offsets");
			out[n++] = o;
			got++;
		}
	} while (got);
	return n;
}

static int64_t lrand(int64_t n) { return n > 0 ? (int64_t)(rand() % n) : 0; }

/* The backend over f as open_backend makes it, with [kafka] ls_gaps. */
static sbfs_backend *open_gaps(fake *f, size_t cache, int ls_gaps)
{
	sbfs_kafka_config cfg;
	sbfs_kafka_config_init(&cfg);
	cfg.cache_bytes = cache;
	cfg.ls_gaps = ls_gaps;
	sbfs_backend *b = NULL;
	cr_assert_eq(sbfs_backend_kafka_open_client(&cfg, &f->base, &b), 0);
	return b;
}

/* How a case's topic is configured, and what ls must do with its gaps. */
typedef struct gcase {
	const char *what;
	const char *policy;     /* the topic's cleanup.policy ("": default) */
	int config_err;         /* the cluster's answer to DescribeConfigs */
	int ls_gaps;            /* [kafka] ls_gaps */
	int skip;               /* ls skips the gaps (else: lists them) */
	int asks;               /* DescribeConfigs calls made */
	int says;               /* lines logged */
} gcase;

static const gcase gcases[] = {
	{ "compact", "compact", 0, SBFS_KAFKA_GAPS_AUTO, 1, 1, 0 },
	{ "compact,delete", "compact,delete", 0, SBFS_KAFKA_GAPS_AUTO, 1, 1, 0 },
	{ "delete, compact", "delete, compact", 0, SBFS_KAFKA_GAPS_AUTO, 1, 1, 0 },
	{ "delete", "delete", 0, SBFS_KAFKA_GAPS_AUTO, 0, 1, 0 },
	{ "default (delete)", "", 0, SBFS_KAFKA_GAPS_AUTO, 0, 1, 0 },
	{ "no permission", "compact", -EACCES, SBFS_KAFKA_GAPS_AUTO, 0, 1, 1 },
	{ "no DescribeConfigs", "compact", -EOPNOTSUPP, SBFS_KAFKA_GAPS_AUTO, 0, 1, 1 },
	{ "no answer in time", "compact", -ETIMEDOUT, SBFS_KAFKA_GAPS_AUTO, 0, 1, 1 },
	{ "ls_gaps = skip", "delete", 0, SBFS_KAFKA_GAPS_SKIP, 1, 0, 0 },
	{ "ls_gaps = list", "compact", 0, SBFS_KAFKA_GAPS_LIST, 0, 0, 0 },
};

/* Random gaps in [0, n): single holes, runs (some longer than a fetch),
 * the first and the last offsets sometimes. */
static void make_gaps(ftopic *ft, int64_t n, int fetch_max)
{
	int kind = rand() % 3;
	int pct = (int[]){ 5, 50, 95 }[rand() % 3];
	for (int64_t o = 0; o < n; o++) {
		if (kind == 0 && rand() % 100 < pct) {
			fhole(ft, o);
		} else if (kind == 1 && rand() % 100 < 3) {
			int64_t run = 1 + lrand(3 * fetch_max);
			for (int64_t i = o; i < o + run && i < n; i++)
				fhole(ft, i);
			o += run;
		}
	}
	if (n && rand() % 3 == 0)
		fhole(ft, 0);
	if (n && rand() % 2 == 0)
		fhole(ft, n - 1); /* a transaction's commit marker */
}

static void check_case(unsigned seed)
{
	srand(seed);
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "g", 1);
	const gcase *gc = &gcases[rand() % (int)(sizeof gcases / sizeof *gcases)];
	snprintf(ft->policy, sizeof ft->policy, "%s", gc->policy);
	f->config_err = gc->config_err;
	int64_t n = lrand(2500);
	f->fetch_max = 1 + (int)lrand(150);
	int small = rand() % 4 == 0; /* a cache that evicts while ls runs */
	char v[64];
	for (int64_t o = 0; o < n; o++) {
		int len = snprintf(v, sizeof v, "%ld:%.*s|", (long)o, (int)lrand(30),
				   "abcdefghijklmnopqrstuvwxyz0123456789");
		fput(ft, NULL, 0, v, (size_t)len, 1700000000000 + o);
	}
	make_gaps(ft, n, f->fetch_max);
	ft->lo = n > 20 && rand() % 4 == 0 ? lrand(20) : 0; /* retention */
	/* the model: the names ls lists (skipping gaps or not), the payloads */
	uint64_t *want = calloc((size_t)n + 1, sizeof *want);
	uint64_t *present = calloc((size_t)n + 1, sizeof *present);
	size_t nwant = 0, npresent = 0, total = 0;
	char *all = malloc((size_t)n * 64 + 1);
	for (int64_t o = ft->lo; o < n; o++) {
		if (!gc->skip)
			want[nwant++] = (uint64_t)o;
		if (ft->recs[o].gone)
			continue;
		present[npresent++] = (uint64_t)o;
		memcpy(all + total, ft->recs[o].val, ft->recs[o].len);
		total += ft->recs[o].len;
	}
	if (gc->skip) {
		memcpy(want, present, npresent * sizeof *want);
		nwant = npresent;
	}
	int logs = fake_logs();
	sbfs_backend *b = open_gaps(f, small ? 16 << 10 : 64 << 20, gc->ls_gaps);
	sbfs_topic *t = topic(b, "g");
	uint64_t *got = calloc((size_t)n + 1, sizeof *got);
	int before = f->fetches;
	size_t ngot = ls(b, t, 1 + (size_t)lrand(300), got, (size_t)n + 1);
	int fetches = f->fetches - before;
	cr_assert_eq(ngot, nwant, "seed %u (%s): ls lists %zu names, want %zu (%zu records present, %ld offsets)",
		     seed, gc->what, ngot, nwant, npresent, (long)n);
	for (size_t i = 0; i < ngot; i++)
		cr_assert_eq(got[i], want[i], "seed %u (%s): name %zu is %lu, not %lu", seed, gc->what, i,
			     (unsigned long)got[i], (unsigned long)want[i]);
	if (!gc->skip) {
		/* from the watermarks: not one fetch, however many records */
		cr_assert_eq(fetches, 0, "seed %u (%s): ls of %zu offsets made %d fetches", seed,
			     gc->what, nwant, fetches);
		cr_assert_eq(ls(b, t, 1 + (size_t)lrand(300), got, (size_t)n + 1), nwant);
		cr_assert_eq(f->fetches, before, "seed %u (%s): a second ls fetches", seed, gc->what);
	} else if (!small) {
		/* a fetch per chunk of fetch_max records, and one at the end
		 * when gaps follow the last record */
		int chunks = (int)((nwant + (size_t)f->fetch_max - 1) / (size_t)f->fetch_max);
		cr_assert_leq(fetches, chunks + 1, "seed %u: ls of %zu records (fetches of %d) made %d fetches",
			      seed, nwant, f->fetch_max, fetches);
		before = f->fetches;
		cr_assert_eq(ls(b, t, 1 + (size_t)lrand(300), got, (size_t)n + 1), nwant);
		cr_assert_eq(f->fetches, before, "seed %u: a second ls fetches again", seed);
	}
	/* the config asked once at most (never again after an answer, nor
	 * right after no answer), by the topic's name; said once if unread */
	cr_assert_eq(f->config_queries, gc->asks, "seed %u (%s): %d DescribeConfigs", seed,
		     gc->what, f->config_queries);
	if (gc->asks)
		cr_assert_str_eq(f->config_topic, "g");
	cr_assert_eq(fake_logs() - logs, gc->says, "seed %u (%s): %d lines logged", seed, gc->what,
		     fake_logs() - logs);
	/* next_present from anywhere, below the start and past the end too */
	for (int i = 0; i < 200 && b->ops->next_present; i++) {
		uint64_t x = (uint64_t)lrand(n + 5), found = 0;
		size_t j = 0;
		while (j < nwant && want[j] < x)
			j++; /* (want: every offset from lo, or the present ones) */
		int rc = b->ops->next_present(t, x, &found);
		if (j == nwant)
			cr_assert_eq(rc, -ENOENT, "seed %u: next_present(%lu)", seed, (unsigned long)x);
		else
			cr_assert(rc == 0 && found == want[j], "seed %u: next_present(%lu): %d %lu, not %lu",
				  seed, (unsigned long)x, rc, (unsigned long)found, (unsigned long)want[j]);
	}
	/* a gap's file is ENOENT (listed or not); a record's is there */
	for (int64_t o = ft->lo, j = 0; o < n; o++) {
		sbfs_recinfo ri;
		int here = (size_t)j < npresent && present[j] == (uint64_t)o;
		cr_assert_eq(b->ops->stat_record(t, (uint64_t)o, 0, &ri), here ? 0 : -ENOENT,
			     "seed %u: stat of %ld", seed, (long)o);
		j += here;
	}
	/* .log: the present records' payloads, in offset order */
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.stream_end - bd.stream_start, total, "seed %u", seed);
	char *buf = malloc(total + 1);
	size_t at = 0, nr = 1;
	while (at < total && nr) {
		cr_assert_eq(b->ops->read_stream(t, bd.stream_start + at, buf + at, total - at, &nr), 0);
		at += nr;
	}
	cr_assert_eq(at, total);
	cr_assert(memcmp(buf, all, total) == 0, "seed %u: .log", seed);
	b->ops->close(b);
	free(buf);
	free(all);
	free(got);
	free(present);
	free(want);
}

/* Each case in a process of its own (the fake is one per process). */
#define CASES(from)                                                            \
	Test(kafka_gaps, ls_lists_the_present_offsets_##from)                  \
	{                                                                      \
		for (unsigned s = from; s < from + 20; s++)                    \
			check_case(s * 7919u + 1);                             \
	}
CASES(0)
CASES(20)
CASES(40)

Test(kafka_gaps, a_gap_at_the_end_is_fetched_once_and_what_follows_shows, .timeout = 20)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "tx", 1);
	for (int o = 0; o < 50; o++)
		fput(ft, NULL, 0, "r\n", 2, 1700000000000 + o);
	fhole(ft, 3);
	fhole(ft, 49); /* a transaction's commit marker */
	/* a transactional topic (cleanup.policy delete) whose markers the
	 * mount is told to skip */
	sbfs_backend *b = open_gaps(f, 8 << 20, SBFS_KAFKA_GAPS_SKIP);
	sbfs_topic *t = topic(b, "tx");
	uint64_t got[64];
	cr_assert_eq(ls(b, t, 1000, got, 64), 48);
	cr_assert_eq(got[3], 4);
	cr_assert_eq(got[47], 48);
	int fetches = f->fetches;
	sbfs_recinfo ri;
	cr_assert_eq(b->ops->stat_record(t, 49, 0, &ri), -ENOENT);
	cr_assert_eq(ls(b, t, 1000, got, 64), 48);
	cr_assert_eq(f->fetches, fetches, "the end's gap is remembered");
	/* another producer: a record, then its marker */
	pthread_mutex_lock(&f->m);
	fput(ft, NULL, 0, "s\n", 2, 1700000000100);
	fput(ft, NULL, 0, "", 0, 1700000000101);
	fhole(ft, 51);
	pthread_mutex_unlock(&f->m);
	sbfs_bounds bd = { 0 };
	for (int i = 0; i < 50 && bd.next < 52; i++) { /* the refresher: every 300 ms */
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
		cr_assert_eq(b->ops->bounds(t, 0, &bd), 0);
	}
	cr_assert_eq(bd.next, 52);
	cr_assert_eq(ls(b, t, 1000, got, 64), 49);
	cr_assert_eq(got[48], 50, "the record after the remembered gap");
	b->ops->close(b);
}

/* A topic of several partitions: its config asked once, by the topic's
 * name (not "m/1"), for all its partitions; each compacted partition
 * lists its present offsets. */
Test(kafka_gaps, a_compacted_topic_of_several_partitions_asks_once)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "m", 3);
	snprintf(ft->policy, sizeof ft->policy, "compact");
	for (int i = 0; i < 3; i++) {
		ftopic *pt = fpart_of(f, "m", i);
		for (int o = 0; o < 30; o++)
			fput(pt, NULL, 0, "r", 1, 1700000000000 + o);
		for (int o = i; o < 30; o += 4)
			fhole(pt, o);
	}
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *g = topic(b, "m");
	for (uint32_t i = 0; i < 3; i++) {
		sbfs_topic *pt;
		cr_assert_eq(b->ops->part_get(g, i, &pt), 0);
		uint64_t got[64];
		size_t n = ls(b, pt, 1000, got, 64);
		cr_assert_eq(n, 30 - (30 - i + 3) / 4, "partition %u lists %zu", i, n);
		for (size_t j = 0; j < n; j++)
			cr_assert_neq(got[j] % 4, i, "partition %u lists the gap %lu", i,
				      (unsigned long)got[j]);
	}
	cr_assert_eq(f->config_queries, 1);
	cr_assert_str_eq(f->config_topic, "m");
	b->ops->close(b);
}

/* A cluster that did not answer in time is asked again later (not at
 * every ls, nor for every other topic meanwhile); one that refused is
 * never asked again for that topic. */
Test(kafka_gaps, an_unanswered_config_is_asked_again_a_refused_one_is_not)
{
	for (int refuse = 0; refuse < 2; refuse++) {
		fake *f = fake_new();
		ftopic *ft = fake_topic(f, "c", 1), *ft2 = fake_topic(f, "c2", 1);
		for (int o = 0; o < 20; o++) {
			fput(ft, NULL, 0, "r", 1, 1700000000000 + o);
			fput(ft2, NULL, 0, "r", 1, 1700000000000 + o);
		}
		fhole(ft, 5);
		snprintf(ft->policy, sizeof ft->policy, "compact");
		f->config_err = refuse ? -EACCES : -ETIMEDOUT;
		int logs = fake_logs();
		sbfs_backend *b = open_backend(f, 8 << 20, 0);
		sbfs_topic *t = topic(b, "c");
		uint64_t got[32];
		cr_assert_eq(ls(b, t, 1000, got, 32), 20, "every offset, meanwhile");
		cr_assert_eq(ls(b, t, 1000, got, 32), 20);
		cr_assert_eq(f->config_queries, 1, "asked at every ls");
		cr_assert_eq(fake_logs() - logs, 1, "said once");
		/* another topic: not asked before the retry time if the cluster
		 * did not answer (asked and refused too, if it refused) */
		sbfs_topic *t2 = topic(b, "c2");
		cr_assert_eq(ls(b, t2, 1000, got, 32), 20);
		cr_assert_eq(f->config_queries, refuse ? 2 : 1, "refused %d: asked meanwhile", refuse);
		cr_assert_eq(fake_logs() - logs, refuse ? 2 : 1);
		logs += refuse;
		/* the retry time has come: no answer again, not said again */
		((kbackend *)b)->gaps_retry_ms = 0;
		cr_assert_eq(ls(b, t, 1000, got, 32), 20);
		cr_assert_eq(f->config_queries, 2); /* refused: c2 asked; else: c again */
		cr_assert_eq(fake_logs() - logs, 1, "said once");
		/* the cluster answers now; the retry time has come */
		f->config_err = 0;
		((kbackend *)b)->gaps_retry_ms = 0;
		size_t n = ls(b, t, 1000, got, 32);
		cr_assert_eq(f->config_queries, refuse ? 2 : 3);
		cr_assert_eq(n, refuse ? 20 : 19, "refused %d: %zu names", refuse, n);
		cr_assert_eq(fake_logs() - logs, 1, "said once");
		b->ops->close(b);
	}
}

/* A delete-policy topic lists from the watermarks while the cluster is
 * down (as before ls looked for gaps); so does one whose config was never
 * read, once the cluster does not answer (said in the log). */
Test(kafka_gaps, ls_answers_from_the_watermarks_while_the_cluster_is_down)
{
	fake *f = fake_new();
	ftopic *d = fake_topic(f, "d", 1), *u = fake_topic(f, "u", 1);
	snprintf(u->policy, sizeof u->policy, "compact");
	for (int o = 0; o < 40; o++) {
		fput(d, NULL, 0, "r", 1, 1700000000000 + o);
		fput(u, NULL, 0, "r", 1, 1700000000000 + o);
	}
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *td = topic(b, "d"), *tu = topic(b, "u");
	uint64_t got[64];
	sbfs_bounds bd;
	cr_assert_eq(ls(b, td, 7, got, 64), 40);
	cr_assert_eq(b->ops->bounds(tu, 0, &bd), 0); /* its watermarks known */
	pthread_mutex_lock(&f->m);
	f->down = 1;
	pthread_mutex_unlock(&f->m);
	int logs = fake_logs();
	cr_assert_eq(ls(b, td, 7, got, 64), 40);
	cr_assert_eq(ls(b, tu, 7, got, 64), 40);
	cr_assert_eq(fake_logs() - logs, 1, "the unread config said once");
	b->ops->close(b);
}
