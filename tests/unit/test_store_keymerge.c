/*
 * test_store_keymerge.c - the key index's merge of sorted sources
 * (keymerge.c: a loser tree) against a model: generated sets of 1 to 100
 * sources (sorted runs and key tables, newest first) of keys that share
 * prefixes, end in zero bytes, are prefixes of one another, and repeat
 * across sources: every key once, in key order, the newest source's entry;
 * a callback's error and a damaged table's block stop the merge.
 * SB_KEYMERGE_ROUNDS: how many generated sets (default 60).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "keymerge.h"
#include "util_faultio.h"
#include "util_store.h"

static ut_env env;
static fio *io; /* syncs skipped: a table is written and read back, never crashed */

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "keymerge"), 0);
	cr_assert_not_null(io = fio_new(env.stash));
	fio_set_sync(io, 0, 0);
}

static void teardown(void)
{
	fio_free(io);
	ut_env_fini(&env);
}

TestSuite(keymerge, .init = setup, .fini = teardown);

#define POOL 600
#define KMAX 24

typedef struct mk {
	uint8_t k[KMAX];
	size_t kl;     /* 0: the pool has this key under a lower id: unused */
	uint64_t off;  /* of the newest source holding it */
	int src;       /* that source; -1: in none */
} mk;

static int mk_cmp(const void *a, const void *b)
{
	const mk *x = a, *y = b;
	size_t m = x->kl < y->kl ? x->kl : y->kl;
	int c = memcmp(x->k, y->k, m);
	return c ? c : (x->kl > y->kl) - (x->kl < y->kl);
}

/* The pool: keys of lengths 1..KMAX, few first bytes, long shared
 * prefixes, trailing zero bytes (a key and the same key with \0 added
 * share their 8-byte prefix), keys that are prefixes of one another, keys
 * of 0xff bytes. */
static void pool_fill(mk *m)
{
	for (unsigned id = 0; id < POOL; id++) {
		size_t kl = 1 + id % KMAX;
		uint8_t *k = m[id].k;
		for (size_t b = 0; b < kl; b++)
			k[b] = b < 6 ? (uint8_t)"prefix"[b] : (uint8_t)((id * 2654435761u) >> (b % 4 * 8));
		if (id % 5 == 0)
			k[0] = (uint8_t)('a' + id % 3);
		if (id % 7 == 0 && kl > 1)
			k[kl - 1] = 0;
		if (id % 11 == 0)
			memset(k, 'q', kl); /* q, qq, qqq...: prefixes of one another */
		if (id % 13 == 0) /* 8 bytes 0xff and more: the prefix the merge
				   * gives a source that ended */
			memset(k, 0xff, kl);
		m[id].kl = kl;
		m[id].src = -1;
		for (unsigned j = 0; j < id && m[id].kl; j++)
			if (!mk_cmp(&m[j], &m[id]))
				m[id].kl = 0;
	}
}

/* Does source s hold pool key id? Every 4th source many keys, the others
 * few: runs of keys repeated across sources, and stretches of one source. */
static int has(const mk *m, uint64_t seed, int s, unsigned id)
{
	uint64_t x = (seed ^ ((uint64_t)s << 32) ^ id) * 0x9e3779b97f4a7c15ull;
	return m[id].kl && (x >> 60) < (uint64_t)(s % 4 == 0 ? 12 : 3);
}

typedef struct got {
	const mk *want;   /* in key order */
	size_t n, i, emitted, stop_at;
	int bad;
} got;

static int take(void *arg, const uint8_t *k, size_t kl, const sb_mt_val *v)
{
	got *g = arg;

	if (g->emitted++ == g->stop_at)
		return 77;
	while (g->i < g->n && g->want[g->i].src < 0)
		g->i++;
	if (g->i == g->n) {
		g->bad = 1;
		return 0;
	}
	const mk *w = &g->want[g->i++];
	if (w->kl != kl || memcmp(w->k, k, kl) || w->off != v->offset)
		g->bad = 1;
	return 0;
}

/* One set: nsrc sources, newest first; a table where i % table_every is
 * 1 (0: runs only). The callback fails at its stop_at-th key; with
 * `damage`, a table's iterator reports a damaged block. */
static void one_set(uint64_t seed, int nsrc, int table_every, size_t stop_at, int damage)
{
	static mk m[POOL], sorted[POOL];
	src *s = calloc((size_t)nsrc, sizeof(*s));
	sb_kr **runs = calloc((size_t)nsrc, sizeof(*runs));
	sb_kt **tabs = calloc((size_t)nsrc, sizeof(*tabs));
	size_t ns = 0;
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", env.stash);
	pool_fill(m);
	memcpy(sorted, m, sizeof(m));
	for (unsigned id = 0; id < POOL; id++)
		sorted[id].off = id; /* the id, through the sort */
	qsort(sorted, POOL, sizeof(*sorted), mk_cmp);
	for (int i = nsrc - 1; i >= 0; i--) { /* the oldest first: newer overwrite */
		uint64_t off = (uint64_t)(nsrc - i) * 1000000;
		size_t cnt = 0;
		for (unsigned id = 0; id < POOL; id++)
			cnt += has(m, seed, i, id);
		if (!cnt)
			continue; /* a source without keys: none */
		if (table_every && i % table_every == 1) {
			sb_kt_writer *w;
			cr_assert_eq(sb_kt_writer_new(fio_io(io), dir, off, off + POOL, cnt, 0, &w), 0);
			for (unsigned j = 0; j < POOL; j++) {
				unsigned id = (unsigned)sorted[j].off;
				sb_mt_val v = {.offset = off + id};
				if (has(m, seed, i, id))
					cr_assert_eq(sb_kt_writer_add(w, m[id].k, m[id].kl, &v), 0);
			}
			cr_assert_eq(sb_kt_writer_finish(w), 0);
			char name[48];
			sb_kt_name(name, off, off + POOL);
			cr_assert_eq(sb_kt_open(fio_io(io), dir, name, &tabs[i], NULL, 0), 0);
		} else { /* a run: through the tail, in offset order */
			sb_kp *p;
			sb_kp_pos pos;
			cr_assert_eq(sb_kp_new(&p), 0);
			for (unsigned id = 0; id < POOL; id++) {
				sb_mt_val v = {.offset = off + id};
				if (has(m, seed, i, id))
					cr_assert_eq(sb_kp_put(p, m[id].k, m[id].kl, &v), 0);
			}
			cr_assert_eq(sb_kp_take(p, UINT64_MAX, NULL, &runs[i], &pos), 0);
			sb_kp_release(p, &pos);
			sb_kp_free(p);
		}
		for (unsigned id = 0; id < POOL; id++)
			if (has(m, seed, i, id)) {
				m[id].off = off + id;
				m[id].src = i;
			}
	}
	for (int i = 0; i < nsrc; i++) { /* newest first */
		if (runs[i]) {
			s[ns].is_run = 1;
			sb_kr_seek(runs[i], NULL, 0, &s[ns++].ri);
		} else if (tabs[i]) {
			sb_kt_seek(tabs[i], NULL, 0, &s[ns].ki);
			if (damage && ns % 2) {
				s[ns].ki.err = SB_ECORRUPT;
				damage = 2;
			}
			ns++;
		}
	}
	qsort(m, POOL, sizeof(*m), mk_cmp);
	got g = {.want = m, .n = POOL, .stop_at = stop_at};
	int rc = sb_km_merge(s, ns, take, &g);
	if (stop_at != SIZE_MAX) {
		cr_assert_eq(rc, 77, "the callback's error stops the merge: %d", rc);
		cr_assert_eq(g.emitted, stop_at + 1);
	} else if (damage == 2) {
		cr_assert_eq(rc, SB_ECORRUPT, "a damaged table: %d", rc);
	} else {
		cr_assert_eq(rc, 0, "%d sources: %d", nsrc, rc);
		cr_assert_not(g.bad, "%d sources (tables every %d), seed %llu: a key out of order, missing, twice "
			      "or not the newest (key %zu)", nsrc, table_every, (unsigned long long)seed, g.i);
		while (g.i < POOL && m[g.i].src < 0)
			g.i++;
		cr_assert_eq(g.i, (size_t)POOL, "%d sources: the merge ended at key %zu", nsrc, g.i);
	}
	for (int i = 0; i < nsrc; i++) {
		sb_kr_free(runs[i]);
		if (tabs[i])
			sb_kt_remove(fio_io(io), tabs[i]);
	}
	free(runs);
	free(tabs);
	free(s);
}

Test(keymerge, generated_sources_against_the_model)
{
	const char *e = getenv("SB_KEYMERGE_ROUNDS");
	int rounds = e ? atoi(e) : 60;
	static const int fixed[] = {1, 2, 3, 4, 5, 63, 64, 65, 100};
	uint64_t seed = 20261130;

	for (int r = 0; r < rounds; r++) {
		int nsrc = r < (int)(sizeof(fixed) / sizeof(*fixed)) ? fixed[r] : 1 + (int)(ut_rnd(&seed) % 100);
		one_set(seed + (uint64_t)r, nsrc, r % 3 ? 1 + r % 5 : 0, SIZE_MAX, 0);
	}
}

Test(keymerge, errors_stop_the_merge)
{
	one_set(5, 9, 0, 40, 0);
	one_set(6, 9, 2, SIZE_MAX, 1);
	one_set(7, 70, 3, SIZE_MAX, 1);
	one_set(8, 0, 0, SIZE_MAX, 0); /* no source */
}
