/*
 * test_store_keyrun.c - the key index's in-memory parts (store/keyrun.h):
 * a batch of the unindexed tail sorted into a run (the latest record of a
 * key wins), the tail's chunks reused, and the pool runs take their memory
 * from, each against a model over generated cases; a run's first gets
 * from several readers at once. The key index over a
 * log (tables, reopen, crashes) is test_store_keys.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyrun.h"
#include "util_store.h"

TestSuite(keyrun, .timeout = 240);

/* ---- sorting a batch of the unindexed tail into a run ------------------------ */

typedef struct rk {
	uint8_t k[40];
	size_t kl;
	uint64_t off;
} rk;

static int rk_cmp(const void *a, const void *b)
{
	const rk *x = a, *y = b;
	size_t m = x->kl < y->kl ? x->kl : y->kl;
	int c = memcmp(x->k, y->k, m);
	if (c)
		return c;
	if (x->kl != y->kl)
		return x->kl < y->kl ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Batches of random sizes (small ones, and ones that keyrun.c's sort
 * splits by byte once or more) of keys of random lengths, with shared
 * prefixes, one top byte for all or many, few values of every byte, and
 * repeats: the run holds each key once, with its latest offset,
 * in key order (bytes, a shorter prefix first). */
Test(keyrun, tail_batch_sorted_latest_wins)
{
	uint64_t seed = 99;
	static const size_t sizes[] = {1, 17, 300, 5000, 9000, 40000};

	for (size_t si = 0; si < sizeof(sizes) / sizeof(*sizes); si++) {
		for (int shape = 0; shape < 4; shape++) {
			size_t n = sizes[si];
			rk *m = calloc(n, sizeof(*m));
			sb_kp *p;
			cr_assert_eq(sb_kp_new(&p), 0);
			for (size_t i = 0; i < n; i++) {
				uint64_t r = ut_rnd(&seed);
				/* keys from a pool a third the size: repeats */
				uint64_t id = r % (n / 3 + 1);
				size_t kl = 1 + (size_t)(id % 39);
				for (size_t b = 0; b < kl; b++)
					m[i].k[b] = (uint8_t)((id * 0x9e3779b97f4a7c15ull) >> (8 * (b % 8))) ^ (uint8_t)b;
				if (shape == 1) /* one top byte, a long shared prefix */
					memcpy(m[i].k, "key-0000", kl < 8 ? kl : 8);
				if (shape == 2) /* few top bytes */
					m[i].k[0] = (uint8_t)('a' + id % 3);
				if (shape == 3) /* each of the first 8 bytes one of 3: parts
						 * of every size at every byte of the sort */
					for (size_t b = 0; b < kl && b < 8; b++)
						m[i].k[b] = (uint8_t)((id >> (2 * b)) % 3);
				m[i].kl = kl;
				m[i].off = i;
				sb_mt_val v = {.offset = i, .ts = (int64_t)i, .size = (uint32_t)kl};
				cr_assert_eq(sb_kp_put(p, m[i].k, kl, &v), 0);
			}
			sb_kr *r = NULL;
			sb_kp_pos pos;
			cr_assert_eq(sb_kp_take(p, n, NULL, &r, &pos), 0);
			cr_assert_eq(pos.n, n);
			qsort(m, n, sizeof(*m), rk_cmp);
			size_t want = 0;
			sb_kr_iter it;
			sb_kr_seek(r, NULL, 0, &it);
			for (size_t i = 0; i < n; i++) {
				if (i + 1 < n && m[i + 1].kl == m[i].kl && !memcmp(m[i + 1].k, m[i].k, m[i].kl))
					continue; /* a later record of the key follows */
				cr_assert(sb_kr_iter_valid(&it), "size %zu shape %d: run ends early", n, shape);
				size_t kl;
				const uint8_t *k = sb_kr_iter_key(&it, &kl);
				sb_mt_val v;
				sb_kr_iter_val(&it, &v);
				cr_assert(kl == m[i].kl && !memcmp(k, m[i].k, kl), "size %zu shape %d: key %zu", n,
					  shape, want);
				cr_assert_eq(v.offset, m[i].off, "size %zu shape %d: not the latest", n, shape);
				sb_mt_val g;
				cr_assert_eq(sb_kr_get(r, m[i].k, m[i].kl, &g), 0);
				cr_assert_eq(g.offset, m[i].off);
				sb_kr_iter_next(&it);
				want++;
			}
			cr_assert(!sb_kr_iter_valid(&it));
			cr_assert_eq(sb_kr_count(r), want);
			/* The run holds the latest records alone: as much memory as a
			 * run of a batch of just those (the repeats' bytes are not kept). */
			sb_kp *p2;
			sb_kr *r2 = NULL;
			sb_kp_pos pos2;
			cr_assert_eq(sb_kp_new(&p2), 0);
			for (size_t i = 0; i < n; i++) {
				if (i + 1 < n && m[i + 1].kl == m[i].kl && !memcmp(m[i + 1].k, m[i].k, m[i].kl))
					continue;
				sb_mt_val v = {.offset = m[i].off, .size = (uint32_t)m[i].kl};
				cr_assert_eq(sb_kp_put(p2, m[i].k, m[i].kl, &v), 0);
			}
			cr_assert_eq(sb_kp_take(p2, UINT64_MAX, NULL, &r2, &pos2), 0);
			cr_assert_eq(sb_kr_count(r2), want);
			cr_assert_eq(sb_kr_bytes(r), sb_kr_bytes(r2), "size %zu shape %d: run of %zu bytes, %zu without repeats",
				     n, shape, sb_kr_bytes(r), sb_kr_bytes(r2));
			sb_kp_release(p2, &pos2);
			sb_kr_free(r2);
			sb_kp_free(p2);
			sb_kp_release(p, &pos);
			sb_kr_free(r);
			sb_kp_free(p);
			free(m);
		}
	}
}

/* The tail's chunks are released to spare slots and written again: rounds
 * of random batches (some many 256 KiB chunks long; keys of 8 to 2,000
 * bytes), taken in part or in full and released, the spares sometimes
 * trimmed: each take holds exactly the entries put since the last one up
 * to its offset, once each, and a find sees the latest key put (a reused
 * chunk starts empty and leads nowhere until the appender links another). */
Test(keyrun, tail_chunks_reused)
{
	uint64_t seed = 4242, off = 0, lo = 0;
	static uint8_t k[2000];
	static uint8_t seen[200000];
	sb_kp *p;

	cr_assert_eq(sb_kp_new(&p), 0);
	for (int round = 0; round < 60; round++) {
		size_t n = 1 + (size_t)(ut_rnd(&seed) % (round % 4 == 0 ? 20000 : 3000)), kl = 0;
		for (size_t i = 0; i < n; i++, off++) {
			kl = ut_rnd(&seed) % 16 == 0 ? 8 + (size_t)(ut_rnd(&seed) % (sizeof(k) - 8)) : 16;
			memset(k, 'a', kl);
			memcpy(k, &off, 8); /* distinct keys, naming their offset */
			sb_mt_val v = {.offset = off, .size = (uint32_t)kl};
			cr_assert_eq(sb_kp_put(p, k, kl, &v), 0);
		}
		sb_mt_val g;
		cr_assert_eq(sb_kp_find(p, k, kl, &g), 0);
		cr_assert_eq(g.offset, off - 1);
		uint64_t below = ut_rnd(&seed) % 3 ? off : lo + ut_rnd(&seed) % (off - lo + 1);
		sb_kr *r = NULL;
		sb_kp_pos pos;
		cr_assert_eq(sb_kp_take(p, below, NULL, &r, &pos), 0);
		cr_assert_eq(pos.n, below - lo, "round %d: took %llu of %llu", round, (unsigned long long)pos.n,
			     (unsigned long long)(below - lo));
		cr_assert_lt(below - lo, sizeof(seen));
		memset(seen, 0, (size_t)(below - lo));
		sb_kr_iter it;
		size_t cnt = 0;
		for (r ? sb_kr_seek(r, NULL, 0, &it) : (void)0; r && sb_kr_iter_valid(&it); sb_kr_iter_next(&it), cnt++) {
			size_t l;
			const uint8_t *key = sb_kr_iter_key(&it, &l);
			sb_mt_val v;
			sb_kr_iter_val(&it, &v);
			cr_assert(v.offset >= lo && v.offset < below, "round %d: offset %llu not taken", round,
				  (unsigned long long)v.offset);
			cr_assert(l == v.size && !memcmp(key, &v.offset, 8), "round %d: entry %llu damaged", round,
				  (unsigned long long)v.offset);
			cr_assert_not(seen[v.offset - lo]++, "round %d: offset %llu twice", round,
				      (unsigned long long)v.offset);
		}
		cr_assert_eq(cnt, below - lo);
		sb_kp_release(p, &pos);
		sb_kr_free(r);
		lo = below;
		cr_assert_eq(sb_kp_count(p), off - lo);
		if (ut_rnd(&seed) % 5 == 0)
			sb_kp_trim(p);
	}
	sb_kp_free(p);
}

/* Runs whose memory comes from a pool and goes back to it: rounds of
 * batches of random sizes (similar ones in a row, as the flusher's; keys
 * repeated across and within batches), runs merged and freed in random
 * order, pools of random bounds. Each run holds exactly its batch's latest
 * entries (a reused allocation carries nothing of the run before), the
 * pool never keeps more than its bound, and a freed run's memory is taken
 * again by a batch of the same size. */
Test(keyrun, run_pool_reuse_model)
{
	uint64_t seed = 777, off = 0;
	enum { LIVE = 6 };

	for (int pr = 0; pr < 4; pr++) {
		size_t keep = (size_t)(16u << 10) << (ut_rnd(&seed) % 8); /* 16 KiB .. 2 MiB */
		sb_kr_pool *pool;
		sb_kr *live[LIVE] = {NULL};
		rk *mods[LIVE] = {NULL};
		size_t nmod[LIVE] = {0};
		uint64_t lo[LIVE] = {0}, hi[LIVE] = {0}; /* each live run's offsets */
		sb_kp *p;
		cr_assert_eq(sb_kr_pool_new(keep, &pool), 0);
		cr_assert_eq(sb_kp_new(&p), 0);
		size_t n = 1 + (size_t)(ut_rnd(&seed) % 4000);
		for (int round = 0; round < 40; round++) {
			if (ut_rnd(&seed) % 4 == 0)
				n = 1 + (size_t)(ut_rnd(&seed) % 4000);
			int slot = (int)(ut_rnd(&seed) % LIVE);
			if (live[slot]) { /* free the run there, or merge another in */
				int o = (int)(ut_rnd(&seed) % LIVE);
				/* merged: o's records all after slot's (o newer) */
				if (o != slot && live[o] && lo[o] >= hi[slot] && ut_rnd(&seed) % 2) {
					sb_kr *m;
					cr_assert_eq(sb_kr_merge(live[o], live[slot], &m), 0);
					sb_kr_free(live[o]);
					sb_kr_free(live[slot]);
					live[o] = NULL;
					live[slot] = m;
					/* the model: the union, o's (newer) entries winning */
					rk *u = malloc((nmod[o] + nmod[slot]) * sizeof(*u));
					memcpy(u, mods[slot], nmod[slot] * sizeof(*u));
					memcpy(u + nmod[slot], mods[o], nmod[o] * sizeof(*u));
					free(mods[slot]);
					free(mods[o]);
					mods[o] = NULL;
					mods[slot] = u;
					nmod[slot] += nmod[o];
					nmod[o] = 0;
					hi[slot] = hi[o];
				} else {
					size_t held = sb_kr_pool_held(pool);
					sb_kr_free(live[slot]);
					live[slot] = NULL;
					free(mods[slot]);
					mods[slot] = NULL;
					nmod[slot] = 0;
					cr_assert_leq(sb_kr_pool_held(pool), keep);
					cr_assert_geq(sb_kr_pool_held(pool), held);
				}
				continue;
			}
			rk *m = calloc(n, sizeof(*m));
			for (size_t i = 0; i < n; i++, off++) {
				uint64_t id = ut_rnd(&seed) % (2 * n + 1);
				size_t kl = 1 + (size_t)(id % 24);
				for (size_t b = 0; b < kl; b++)
					m[i].k[b] = (uint8_t)((id * 0x9e3779b97f4a7c15ull) >> (8 * (b % 8))) ^ (uint8_t)b;
				m[i].kl = kl;
				m[i].off = off;
				sb_mt_val v = {.offset = off, .ts = (int64_t)off, .size = (uint32_t)kl};
				cr_assert_eq(sb_kp_put(p, m[i].k, kl, &v), 0);
			}
			sb_kp_pos pos;
			cr_assert_eq(sb_kp_take(p, off, pool, &live[slot], &pos), 0);
			cr_assert_eq(pos.n, n);
			sb_kp_release(p, &pos);
			mods[slot] = m;
			nmod[slot] = n;
			lo[slot] = off - n;
			hi[slot] = off;
			if (round == 0) { /* the same keys again: the memory is reused */
				size_t bytes = sb_kr_bytes(live[slot]);
				sb_kr_free(live[slot]);
				cr_assert_eq(sb_kr_pool_held(pool), bytes <= keep ? bytes : 0);
				for (size_t i = 0; i < n; i++, off++) {
					sb_mt_val v = {.offset = off, .ts = (int64_t)off, .size = (uint32_t)m[i].kl};
					m[i].off = off;
					cr_assert_eq(sb_kp_put(p, m[i].k, m[i].kl, &v), 0);
				}
				cr_assert_eq(sb_kp_take(p, off, pool, &live[slot], &pos), 0);
				sb_kp_release(p, &pos);
				cr_assert_eq(sb_kr_pool_held(pool), 0);
				cr_assert_eq(sb_kr_bytes(live[slot]), bytes);
				lo[slot] = off - n;
				hi[slot] = off;
			}
		}
		/* every live run against its model */
		for (int sl = 0; sl < LIVE; sl++) {
			if (!live[sl])
				continue;
			rk *m = mods[sl];
			size_t nm = nmod[sl], want = 0;
			qsort(m, nm, sizeof(*m), rk_cmp);
			sb_kr_iter it;
			sb_kr_seek(live[sl], NULL, 0, &it);
			for (size_t i = 0; i < nm; i++) {
				if (i + 1 < nm && m[i + 1].kl == m[i].kl && !memcmp(m[i + 1].k, m[i].k, m[i].kl))
					continue;
				cr_assert(sb_kr_iter_valid(&it), "pool %d slot %d: run ends early", pr, sl);
				size_t kl;
				const uint8_t *k = sb_kr_iter_key(&it, &kl);
				sb_mt_val v;
				sb_kr_iter_val(&it, &v);
				cr_assert(kl == m[i].kl && !memcmp(k, m[i].k, kl), "pool %d slot %d: key %zu", pr, sl,
					  want);
				cr_assert_eq(v.offset, m[i].off, "pool %d slot %d: not the latest", pr, sl);
				sb_mt_val g;
				cr_assert_eq(sb_kr_get(live[sl], m[i].k, m[i].kl, &g), 0);
				cr_assert_eq(g.offset, m[i].off);
				sb_kr_iter_next(&it);
				want++;
			}
			cr_assert_not(sb_kr_iter_valid(&it), "pool %d slot %d: entries past the model", pr, sl);
			cr_assert_eq(sb_kr_count(live[sl]), want);
			sb_kr_free(live[sl]);
			free(m);
		}
		cr_assert_leq(sb_kr_pool_held(pool), keep);
		sb_kp_free(p);
		sb_kr_pool_free(pool);
	}
}

/* ---- a run's first gets, at once ----------------------------------------- */

typedef struct getter {
	sb_kr *r;
	size_t n;
	int found, wrong;
} getter;

static void *get_all(void *arg)
{
	getter *g = arg;

	/* keys 0, 2, 4, ... are in the run; the odd ones are not */
	for (size_t i = 0; i < 2 * g->n; i++) {
		uint64_t k = i * 0x9e3779b97f4a7c15ull;
		sb_mt_val v;
		int rc = sb_kr_get(g->r, &k, sizeof(k), &v);
		if (rc == 0 && i % 2 == 0 && v.offset == i)
			g->found++;
		else if (rc != -ENOENT || i % 2 == 0)
			g->wrong++;
	}
	return NULL;
}

/* The Bloom filter of a run is made at its first get: readers sharing a
 * run (the key index's lock held shared) may all come first at once. Each
 * finds every key of the run and none other (TSan: one of them makes it). */
Test(keyrun, first_gets_at_once)
{
	enum { N = 20000, T = 4 };
	sb_kp *p;
	sb_kr *r = NULL;
	sb_kp_pos pos;
	pthread_t th[T];
	getter g[T];

	cr_assert_eq(sb_kp_new(&p), 0);
	for (size_t i = 0; i < 2 * N; i += 2) {
		uint64_t k = i * 0x9e3779b97f4a7c15ull;
		sb_mt_val v = {.offset = i, .size = 1};
		cr_assert_eq(sb_kp_put(p, &k, sizeof(k), &v), 0);
	}
	cr_assert_eq(sb_kp_take(p, UINT64_MAX, NULL, &r, &pos), 0);
	for (int t = 0; t < T; t++) {
		g[t] = (getter){.r = r, .n = N};
		cr_assert_eq(pthread_create(&th[t], NULL, get_all, &g[t]), 0);
	}
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		cr_assert_eq(g[t].found, N, "reader %d found %d of %d keys", t, g[t].found, N);
		cr_assert_eq(g[t].wrong, 0, "reader %d: %d wrong answers", t, g[t].wrong);
	}
	sb_kp_release(p, &pos);
	sb_kr_free(r);
	sb_kp_free(p);
}
