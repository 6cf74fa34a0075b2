/*
 * test_kafka_gaps.c - a Kafka partition with offsets that hold no record
 * (compaction, transaction markers: SPEC §2 "a compacted topic has gaps"),
 * against the fake cluster (kafka_fake.c, fhole). Generated cases: random
 * partitions with random gap patterns (single holes, runs longer than a
 * fetch, holes at the start and at the end), random fetch sizes and cache
 * sizes, each checked against a model: ls lists exactly the present
 * offsets, in order, whatever the size of readdir's replies; ls fetches
 * each chunk once (never once per name or per gap) and a second ls
 * fetches nothing; a gap's stat is ENOENT; .log is the present records'
 * payloads. And the end: a gap after the last record (a transaction's
 * commit marker) is fetched once, and a record that comes after it shows.
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
	/* the model */
	uint64_t *want = calloc((size_t)n + 1, sizeof *want);
	size_t nwant = 0, total = 0;
	char *all = malloc((size_t)n * 64 + 1);
	for (int64_t o = ft->lo; o < n; o++) {
		if (ft->recs[o].gone)
			continue;
		want[nwant++] = (uint64_t)o;
		memcpy(all + total, ft->recs[o].val, ft->recs[o].len);
		total += ft->recs[o].len;
	}
	sbfs_backend *b = open_backend(f, small ? 16 << 10 : 64 << 20, 0);
	sbfs_topic *t = topic(b, "g");
	uint64_t *got = calloc((size_t)n + 1, sizeof *got);
	int before = f->fetches;
	size_t ngot = ls(b, t, 1 + (size_t)lrand(300), got, (size_t)n + 1);
	int fetches = f->fetches - before;
	cr_assert_eq(ngot, nwant, "seed %u: ls lists %zu names, %zu records present (%ld offsets)",
		     seed, ngot, nwant, (long)n);
	for (size_t i = 0; i < ngot; i++)
		cr_assert_eq(got[i], want[i], "seed %u: name %zu is %lu, not %lu", seed, i,
			     (unsigned long)got[i], (unsigned long)want[i]);
	if (!small) {
		/* a fetch per chunk of fetch_max records, and one at the end
		 * when gaps follow the last record */
		int chunks = (int)((nwant + (size_t)f->fetch_max - 1) / (size_t)f->fetch_max);
		cr_assert_leq(fetches, chunks + 1, "seed %u: ls of %zu records (fetches of %d) made %d fetches",
			      seed, nwant, f->fetch_max, fetches);
		before = f->fetches;
		cr_assert_eq(ls(b, t, 1 + (size_t)lrand(300), got, (size_t)n + 1), nwant);
		cr_assert_eq(f->fetches, before, "seed %u: a second ls fetches again", seed);
	}
	/* next_present from anywhere, below the start and past the end too */
	for (int i = 0; i < 200 && b->ops->next_present; i++) {
		uint64_t x = (uint64_t)lrand(n + 5), found = 0;
		size_t j = 0;
		while (j < nwant && want[j] < x)
			j++;
		int rc = b->ops->next_present(t, x, &found);
		if (j == nwant)
			cr_assert_eq(rc, -ENOENT, "seed %u: next_present(%lu)", seed, (unsigned long)x);
		else
			cr_assert(rc == 0 && found == want[j], "seed %u: next_present(%lu): %d %lu, not %lu",
				  seed, (unsigned long)x, rc, (unsigned long)found, (unsigned long)want[j]);
	}
	/* a gap's file is ENOENT; a record's is there */
	for (int64_t o = ft->lo, j = 0; o < n; o++) {
		sbfs_recinfo ri;
		int present = (size_t)j < nwant && want[j] == (uint64_t)o;
		cr_assert_eq(b->ops->stat_record(t, (uint64_t)o, 0, &ri), present ? 0 : -ENOENT,
			     "seed %u: stat of %ld", seed, (long)o);
		j += present;
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
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
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
