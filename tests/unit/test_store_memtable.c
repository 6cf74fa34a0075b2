/*
 * test_store_memtable.c - the MemTable (store/memtable.h) against a
 * brute-force model: random puts, deletes, gets and ordered scans over
 * thousands of keys that share long prefixes (so the 8-byte prefix compare
 * and the byte compare after it both decide), then one writer beside
 * reader threads (run under TSan in tools/test) that check every value
 * they see is whole and every scan is in order, and a scan with puts and
 * deletes between its steps; a table cleared with its memory kept.
 * SB_MT_OPS: operations of the model test (default 200,000; 50,000 under
 * TSan).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "memtable.h"
#include "util_store.h"

#define NKEYS 4000
#define KMAX 40

typedef struct mkey {
	uint8_t k[KMAX];
	size_t len;
	int present;
	sb_mt_val v;
} mkey;

static mkey model[NKEYS];

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int mkey_cmp(const void *a, const void *b)
{
	const mkey *x = a, *y = b;
	return kcmp(x->k, x->len, y->k, y->len);
}

/* Distinct keys, many sharing their first 8..30 bytes, some of 1..8 bytes,
 * some with zero bytes inside (a prefix padded with zeros must not tie). */
static void make_keys(uint64_t *seed)
{
	size_t n = 0;
	while (n < NKEYS) {
		mkey *m = &model[n];
		size_t len = 1 + ut_rnd(seed) % KMAX;
		size_t shared = ut_rnd(seed) % 3 == 0 ? 0 : len > 12 ? 8 + ut_rnd(seed) % (len - 10) : 0;
		for (size_t i = 0; i < len; i++)
			m->k[i] = i < shared ? (uint8_t)('a' + i % 3) : (uint8_t)(ut_rnd(seed) % 4);
		m->len = len;
		m->present = 0;
		int dup = 0;
		for (size_t j = 0; j < n && !dup; j++)
			dup = kcmp(model[j].k, model[j].len, m->k, len) == 0;
		if (!dup)
			n++;
	}
	qsort(model, NKEYS, sizeof(mkey), mkey_cmp);
}

static void check_scan(sb_mt *m, size_t from)
{
	sb_mt_iter it;
	size_t i = from;

	sb_mt_seek(m, model[from].k, model[from].len, &it);
	for (; sb_mt_iter_valid(&it); sb_mt_iter_next(&it)) {
		while (i < NKEYS && !model[i].present)
			i++;
		cr_assert_lt(i, NKEYS, "scan found a key the model lacks");
		size_t kl;
		const uint8_t *k = sb_mt_iter_key(&it, &kl);
		cr_assert_eq(kcmp(k, kl, model[i].k, model[i].len), 0, "scan key %zu differs", i);
		sb_mt_val v;
		sb_mt_iter_val(&it, &v);
		cr_assert_eq(v.offset, model[i].v.offset);
		i++;
	}
	while (i < NKEYS && !model[i].present)
		i++;
	cr_assert_eq(i, NKEYS, "scan stopped early");
}

Test(memtable, model, .timeout = 120)
{
	uint64_t seed = 12345;
	const char *e = getenv("SB_MT_OPS");
#ifdef __SANITIZE_THREAD__
	long ops = e ? atol(e) : 50000; /* one thread: TSan checks nothing here */
#else
	long ops = e ? atol(e) : 200000;
#endif
	size_t count = 0;
	sb_mt *m;

	make_keys(&seed);
	cr_assert_eq(sb_mt_new(&m), 0);
	cr_assert_eq(sb_mt_put(m, "", 0, &model[0].v), -EINVAL);
	for (long op = 0; op < ops; op++) {
		size_t i = ut_rnd(&seed) % NKEYS;
		mkey *k = &model[i];
		unsigned r = ut_rnd(&seed) % 100;
		sb_mt_val v;
		if (r < 45) {
			v = (sb_mt_val){.offset = (uint64_t)op, .ts = -op, .size = (uint32_t)ut_rnd(&seed),
					.flags = (uint16_t)(op & 1)};
			cr_assert_eq(sb_mt_put(m, k->k, k->len, &v), 0);
			count += !k->present;
			k->present = 1;
			k->v = v;
		} else if (r < 60) {
			int rc = sb_mt_delete(m, k->k, k->len);
			cr_assert_eq(rc, k->present ? 0 : -ENOENT);
			count -= k->present;
			k->present = 0;
		} else if (r < 99) {
			memset(&v, 0xee, sizeof(v));
			int rc = sb_mt_get(m, k->k, k->len, &v);
			cr_assert_eq(rc, k->present ? 0 : -ENOENT, "get of key %zu at op %ld", i, op);
			if (k->present)
				cr_assert(v.offset == k->v.offset && v.ts == k->v.ts && v.size == k->v.size &&
					  v.flags == k->v.flags);
		} else {
			check_scan(m, i);
		}
		cr_assert_eq(sb_mt_count(m), count);
		if (op % 50000 == 49999) {
			check_scan(m, 0);
			if (op % 100000 == 99999) {
				/* every other clear keeps its memory */
				sb_mt_keep(m, op % 200000 == 99999 ? SIZE_MAX : 0);
				sb_mt_clear(m);
				for (size_t j = 0; j < NKEYS; j++)
					model[j].present = 0;
				count = 0;
				cr_assert_eq(sb_mt_count(m), 0);
			}
		}
	}
	cr_assert_gt(sb_mt_bytes(m), 0);
	sb_mt_free(m);
}

/*
 * A scan with puts, updates and deletes between its steps (one thread),
 * and seeks of another iterator that rebuild the sorted view under it: a
 * step goes on in its view while the view holds, and finds its place again
 * in a rebuilt one. Keys come in order, none twice; every key present from
 * the seek to the end of the scan is seen, with its value at the step that
 * saw it.
 */
Test(memtable, scan_beside_puts)
{
	uint64_t seed = 4242;
	sb_mt *m;

	make_keys(&seed);
	cr_assert_eq(sb_mt_new(&m), 0);
	for (int round = 0; round < 40; round++) {
		int stayed[NKEYS], seen[NKEYS];
		for (size_t i = 0; i < NKEYS; i++) {
			if (ut_rnd(&seed) % 4 == 0 && !model[i].present) {
				model[i].present = 1;
				model[i].v = (sb_mt_val){.offset = i};
				cr_assert_eq(sb_mt_put(m, model[i].k, model[i].len, &model[i].v), 0);
			}
			stayed[i] = model[i].present;
			seen[i] = 0;
		}
		size_t from = ut_rnd(&seed) % NKEYS, at = from;
		sb_mt_iter it;
		sb_mt_seek(m, model[from].k, model[from].len, &it);
		for (; sb_mt_iter_valid(&it); sb_mt_iter_next(&it)) {
			size_t kl;
			const uint8_t *k = sb_mt_iter_key(&it, &kl);
			while (at < NKEYS && kcmp(model[at].k, model[at].len, k, kl) < 0)
				at++;
			cr_assert_lt(at, NKEYS, "a key the model lacks");
			cr_assert_eq(kcmp(model[at].k, model[at].len, k, kl), 0, "a key the model lacks");
			cr_assert_not(seen[at], "key %zu seen twice", at);
			seen[at] = 1;
			sb_mt_val v;
			sb_mt_iter_val(&it, &v);
			cr_assert_eq(v.offset, model[at].v.offset, "key %zu: a stale value", at);
			/* between steps: now and then a seek of another
			 * iterator (it builds the view again, with the keys put
			 * since: the scan's place in it moves) */
			if (ut_rnd(&seed) % 8 == 0) {
				sb_mt_iter other;
				size_t o = ut_rnd(&seed) % NKEYS;
				sb_mt_seek(m, model[o].k, model[o].len, &other);
			}
			/* and a new key, an update, a delete (each anywhere,
			 * before or after the scan's place) */
			for (int op = 0; op < 3; op++) {
				size_t j = ut_rnd(&seed) % NKEYS;
				unsigned r = ut_rnd(&seed) % 3;
				if (r == 0 && !model[j].present) {
					model[j].present = 1;
					model[j].v = (sb_mt_val){.offset = j + 1000000 * (uint64_t)round};
					cr_assert_eq(sb_mt_put(m, model[j].k, model[j].len, &model[j].v), 0);
				} else if (r == 1 && model[j].present) {
					model[j].v.offset += 7;
					cr_assert_eq(sb_mt_put(m, model[j].k, model[j].len, &model[j].v), 0);
				} else if (r == 2 && model[j].present && ut_rnd(&seed) % 4 == 0) {
					model[j].present = 0;
					stayed[j] = 0;
					cr_assert_eq(sb_mt_delete(m, model[j].k, model[j].len), 0);
				}
			}
		}
		for (size_t i = from; i < NKEYS; i++)
			cr_assert(!stayed[i] || seen[i], "round %d: key %zu, present throughout, not seen", round, i);
		if (round % 10 == 9) {
			sb_mt_clear(m);
			for (size_t i = 0; i < NKEYS; i++)
				model[i].present = 0;
		}
	}
	sb_mt_free(m);
}

/*
 * Many keys (the index grows many times; the sorted view is built from
 * scratch and then merged with new keys): random keys of 8 and 32 bytes and
 * of random lengths up to 300 against a sorted array; every key found, as
 * many absent ones not found, a full scan in order; then with no view
 * (the walk iteration falls back to when memory for a view runs out).
 * SB_MT_BIG: keys (default 100,000; 20,000 under a sanitizer).
 */
typedef struct bkey {
	uint8_t *k;
	size_t len;
	uint64_t off;
} bkey;

static int bkey_cmp(const void *a, const void *b)
{
	const bkey *x = a, *y = b;
	return kcmp(x->k, x->len, y->k, y->len);
}

static void check_full_scan(sb_mt *m, const bkey *keys, size_t n, size_t from)
{
	sb_mt_iter it;
	size_t i = from;

	sb_mt_seek(m, keys[from].k, keys[from].len, &it);
	for (; sb_mt_iter_valid(&it); sb_mt_iter_next(&it), i++) {
		size_t kl;
		const uint8_t *k = sb_mt_iter_key(&it, &kl);
		sb_mt_val v;
		sb_mt_iter_val(&it, &v);
		cr_assert_lt(i, n, "scan: a key too many");
		cr_assert_eq(kcmp(k, kl, keys[i].k, keys[i].len), 0, "scan: key %zu differs", i);
		cr_assert_eq(v.offset, keys[i].off, "scan: key %zu's value", i);
	}
	cr_assert_eq(i, n, "scan stopped at %zu of %zu", i, n);
}

Test(memtable, many_keys)
{
	const char *env = getenv("SB_MT_BIG");
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	size_t n = env ? (size_t)atol(env) : 20000, total = 0;
#else
	size_t n = env ? (size_t)atol(env) : 100000, total = 0;
#endif
	uint64_t seed = 777;
	bkey *keys = calloc(n, sizeof(*keys));
	uint8_t *buf, *p;
	sb_mt *m;

	cr_assert(keys);
	for (size_t i = 0; i < n; i++)
		total += i % 3 == 0 ? 8 : i % 3 == 1 ? 32 : 1 + i % 300;
	cr_assert((buf = malloc(total + 8)));
	p = buf;
	for (size_t i = 0; i < n; i++) {
		keys[i].len = i % 3 == 0 ? 8 : i % 3 == 1 ? 32 : 1 + i % 300;
		keys[i].k = p;
		for (size_t b = 0; b < keys[i].len; b += 8) {
			uint64_t r = ut_rnd(&seed);
			memcpy(p + b, &r, keys[i].len - b < 8 ? keys[i].len - b : 8);
		}
		p += keys[i].len;
		keys[i].off = i;
	}
	/* drop the (unlikely) duplicates: sort, keep the first of equal keys */
	qsort(keys, n, sizeof(*keys), bkey_cmp);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (!u || bkey_cmp(&keys[u - 1], &keys[i]))
			keys[u++] = keys[i];
	n = u;
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(sb_mt_new(&m), 0);
		if (pass)
			sb_mt_test_no_views(m);
		/* put in a random order, half of them first, a scan between */
		for (size_t j = 0; j < n; j++) {
			size_t i = (j * 7919 + 13) % n;
			sb_mt_val v = {.offset = keys[i].off, .ts = (int64_t)i, .size = (uint32_t)keys[i].len};
			cr_assert_eq(sb_mt_put(m, keys[i].k, keys[i].len, &v), 0);
			if (j == n / 2 && !pass) {
				sb_mt_iter it;
				sb_mt_seek(m, NULL, 0, &it);
				cr_assert(sb_mt_iter_valid(&it));
			}
		}
		cr_assert_eq(sb_mt_count(m), n);
		for (size_t i = 0; i < n; i++) {
			sb_mt_val v;
			cr_assert_eq(sb_mt_get(m, keys[i].k, keys[i].len, &v), 0, "key %zu not found", i);
			cr_assert(v.offset == keys[i].off && v.size == keys[i].len);
			/* absent: the key with its last byte changed, or cut short */
			uint8_t k2[300];
			memcpy(k2, keys[i].k, keys[i].len);
			k2[keys[i].len - 1] ^= 0x80;
			bkey probe = {k2, keys[i].len, 0};
			if (!bsearch(&probe, keys, n, sizeof(*keys), bkey_cmp))
				cr_assert_eq(sb_mt_get(m, k2, keys[i].len, &v), -ENOENT);
		}
		if (!pass) {
			check_full_scan(m, keys, n, 0);
			check_full_scan(m, keys, n, n / 3);
		} else {
			/* a walk per step: a short scan from near the end */
			check_full_scan(m, keys, n, n - 20);
		}
		sb_mt_free(m);
	}
	free(buf);
	free(keys);
}

/* n random keys of 8, 32 and 1..300 bytes in turn (the same lengths for
 * any seed), into keys[] (their bytes in *buf, the caller's); offsets
 * base + i. */
static void random_bkeys(uint64_t seed, size_t n, uint64_t base, bkey *keys, uint8_t **buf)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += i % 3 == 0 ? 8 : i % 3 == 1 ? 32 : 1 + i % 300;
	cr_assert((*buf = malloc(total + 8)));
	uint8_t *p = *buf;
	for (size_t i = 0; i < n; i++) {
		keys[i] = (bkey){p, i % 3 == 0 ? 8 : i % 3 == 1 ? 32 : 1 + i % 300, base + i};
		for (size_t b = 0; b < keys[i].len; b += 8) {
			uint64_t r = ut_rnd(&seed);
			memcpy(p + b, &r, keys[i].len - b < 8 ? keys[i].len - b : 8);
		}
		p += keys[i].len;
	}
}

/* Put keys[0..n) in order; then each is found with its value. */
static void put_all(sb_mt *m, const bkey *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sb_mt_val v = {.offset = keys[i].off, .size = (uint32_t)keys[i].len};
		cr_assert_eq(sb_mt_put(m, keys[i].k, keys[i].len, &v), 0);
	}
	for (size_t i = 0; i < n; i++) {
		sb_mt_val v;
		cr_assert_eq(sb_mt_get(m, keys[i].k, keys[i].len, &v), 0, "key %zu not found", i);
		cr_assert_eq(v.offset, keys[i].off, "key %zu: another key's value", i);
	}
}

/*
 * A table cleared with its memory kept (sb_mt_keep) and filled again with
 * other keys of the same lengths takes no new memory, and holds exactly the
 * new keys: none of the old ones is found, and a scan lists the new ones
 * in order (kept index arrays come back empty). With nothing kept, the next
 * fill takes new memory again.
 */
Test(memtable, clear_keeps_memory, .timeout = 120)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	size_t n = 10000;
#else
	size_t n = 40000;
#endif
	bkey *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	uint8_t *abuf, *bbuf;
	sb_mt *m;

	cr_assert(a && b);
	random_bkeys(1, n, 0, a, &abuf);
	random_bkeys(2, n, n, b, &bbuf);
	cr_assert_eq(sb_mt_new(&m), 0);
	sb_mt_keep(m, SIZE_MAX);
	put_all(m, a, n);
	uint64_t fresh = sb_mt_test_fresh(m);
	sb_mt_clear(m);
	cr_assert_eq(sb_mt_count(m), 0);
	put_all(m, b, n);
	cr_assert_eq(sb_mt_test_fresh(m), fresh, "the refill took %llu new blocks",
		     (unsigned long long)(sb_mt_test_fresh(m) - fresh));
	qsort(b, n, sizeof(*b), bkey_cmp);
	size_t u = 0; /* the (unlikely) equal short keys: the later one's value */
	for (size_t i = 0; i < n; i++) {
		if (u && !bkey_cmp(&b[u - 1], &b[i]))
			b[u - 1].off = b[i].off > b[u - 1].off ? b[i].off : b[u - 1].off;
		else
			b[u++] = b[i];
	}
	cr_assert_eq(sb_mt_count(m), u);
	for (size_t i = 0; i < n; i++) {
		sb_mt_val v;
		if (!bsearch(&a[i], b, u, sizeof(*b), bkey_cmp))
			cr_assert_eq(sb_mt_get(m, a[i].k, a[i].len, &v), -ENOENT, "old key %zu found", i);
	}
	check_full_scan(m, b, u, 0);
	sb_mt_keep(m, 0);
	sb_mt_clear(m);
	put_all(m, a, n);
	cr_assert_gt(sb_mt_test_fresh(m), fresh, "nothing kept, yet no new memory");
	sb_mt_free(m);
	free(abuf);
	free(bbuf);
	free(a);
	free(b);
}

/*
 * Keys of every length up to SB_KEY_MAX among short ones, against a model:
 * a key bigger than a quarter of the arena's next chunk gets a chunk of its
 * own (the chunk table grows with them); puts, updates, deletes and gets at
 * random, then a full scan in order. A key of SB_KEY_MAX + 1 bytes is
 * refused. SB_MT_HUGE: keys (default 300).
 */
Test(memtable, big_keys)
{
	const char *env = getenv("SB_MT_HUGE");
	size_t n = env ? (size_t)atol(env) : 300;
	uint64_t seed = 31337;
	bkey *keys = calloc(n, sizeof(*keys));
	int *in = calloc(n, sizeof(*in));
	sb_mt *m;

	cr_assert(keys && in);
	for (size_t i = 0; i < n; i++) {
		uint64_t r = ut_rnd(&seed) % 8;
		size_t len = r < 4 ? 1 + ut_rnd(&seed) % 40 : r < 7 ? 1000 + ut_rnd(&seed) % 9000 : SB_KEY_MAX - ut_rnd(&seed) % 3;
		cr_assert((keys[i].k = malloc(len)));
		keys[i].len = len;
		for (size_t b = 0; b < len; b++)
			keys[i].k[b] = (uint8_t)ut_rnd(&seed);
		memcpy(keys[i].k, &i, len < sizeof(i) ? len : sizeof(i)); /* distinct */
		if (len < sizeof(i) && i >> (8 * len))
			keys[i].len = 0; /* i does not fit: not used */
	}
	cr_assert_eq(sb_mt_new(&m), 0);
	uint8_t *over = calloc(1, SB_KEY_MAX + 1);
	cr_assert(over);
	cr_assert_eq(sb_mt_put(m, over, SB_KEY_MAX + 1, &(sb_mt_val){0}), -EINVAL);
	free(over);
	size_t count = 0;
	for (size_t op = 0; op < 20 * n; op++) {
		size_t i = ut_rnd(&seed) % n;
		unsigned r = ut_rnd(&seed) % 10;
		sb_mt_val v;
		if (!keys[i].len)
			continue;
		if (r < 5) {
			keys[i].off = op;
			v = (sb_mt_val){.offset = op, .size = (uint32_t)keys[i].len};
			cr_assert_eq(sb_mt_put(m, keys[i].k, keys[i].len, &v), 0);
			count += !in[i];
			in[i] = 1;
		} else if (r < 6) {
			cr_assert_eq(sb_mt_delete(m, keys[i].k, keys[i].len), in[i] ? 0 : -ENOENT);
			count -= in[i];
			in[i] = 0;
		} else {
			int rc = sb_mt_get(m, keys[i].k, keys[i].len, &v);
			cr_assert_eq(rc, in[i] ? 0 : -ENOENT, "get of key %zu (%zu bytes) at op %zu", i, keys[i].len, op);
			if (in[i])
				cr_assert(v.offset == keys[i].off && v.size == keys[i].len);
		}
		cr_assert_eq(sb_mt_count(m), count);
	}
	/* the keys present, sorted: a full scan sees them in order */
	bkey *live = calloc(count + 1, sizeof(*live));
	size_t nl = 0;
	cr_assert(live);
	for (size_t i = 0; i < n; i++)
		if (in[i])
			live[nl++] = keys[i];
	qsort(live, nl, sizeof(*live), bkey_cmp);
	if (nl)
		check_full_scan(m, live, nl, 0);
	sb_mt_free(m);
	free(live);
	for (size_t i = 0; i < n; i++)
		free(keys[i].k);
	free(keys);
	free(in);
}

/* Seek to keys that are absent: the first key at or after them. */
Test(memtable, seek_between)
{
	sb_mt *m;
	sb_mt_val v = {0};
	const char *keys[] = {"a", "ab", "abcdefgh", "abcdefgh\x01", "abcdefghi", "b"};

	cr_assert_eq(sb_mt_new(&m), 0);
	for (size_t i = 0; i < 6; i++) {
		v.offset = i;
		size_t len = strlen(keys[i]) + (i == 3);
		cr_assert_eq(sb_mt_put(m, keys[i], len, &v), 0);
	}
	sb_mt_iter it;
	sb_mt_seek(m, "abcdefgh\0", 9, &it);
	cr_assert(sb_mt_iter_valid(&it));
	sb_mt_iter_val(&it, &v);
	cr_assert_eq(v.offset, 3);
	sb_mt_seek(m, "aa", 2, &it);
	sb_mt_iter_val(&it, &v);
	cr_assert_eq(v.offset, 1);
	sb_mt_seek(m, "c", 1, &it);
	cr_assert_not(sb_mt_iter_valid(&it));
	cr_assert_eq(sb_mt_get(m, "abcdefgh\0", 9, &v), -ENOENT);
	sb_mt_free(m);
}

/* ---- one writer, many readers ------------------------------------------ */

#define CKEYS 20000
#define READERS 3
static sb_mt *CM;
static atomic_int cdone;
static _Atomic uint64_t cstable; /* keys below this were put and never deleted */
static atomic_ulong cbad, creads;

static size_t ckey(uint64_t i, uint8_t *buf)
{
	/* 8..24 bytes, a shared 6-byte prefix, order = order of i */
	memcpy(buf, "key-\x01\x02", 6);
	for (int b = 0; b < 8; b++)
		buf[6 + b] = (uint8_t)(i >> (56 - 8 * b));
	size_t extra = i % 11;
	memset(buf + 14, 'x', extra);
	return 14 + extra;
}

/* Every value names its key and version: size and ts follow from offset. */
static sb_mt_val cval(uint64_t i, uint64_t version)
{
	uint64_t off = i * 1000003 + version;
	return (sb_mt_val){.offset = off, .ts = (int64_t)(off * 7), .size = (uint32_t)(off ^ 0x5a5a),
			   .flags = (uint16_t)(off & 1)};
}

static int val_whole(uint64_t i, const sb_mt_val *v)
{
	uint64_t version = v->offset - i * 1000003;
	sb_mt_val w = cval(i, version);
	return version < 1000000 && w.ts == v->ts && w.size == v->size && w.flags == v->flags;
}

static void *reader(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 7919 + 1;
	uint8_t k[32];

	while (!atomic_load(&cdone)) {
		uint64_t stable = atomic_load(&cstable);
		uint64_t i = ut_rnd(&seed) % CKEYS;
		sb_mt_val v;
		int rc = sb_mt_get(CM, k, ckey(i, k), &v);
		if (rc == 0 && !val_whole(i, &v))
			atomic_fetch_add(&cbad, 1);
		if (rc != 0 && i < stable && i % 7 != 0)
			atomic_fetch_add(&cbad, 1);
		if (ut_rnd(&seed) % 64 == 0) {
			sb_mt_iter it;
			uint8_t prev[32];
			size_t prevl = 0;
			int n = 0;
			sb_mt_seek(CM, k, ckey(i, k), &it);
			for (; sb_mt_iter_valid(&it) && n < 200; sb_mt_iter_next(&it), n++) {
				size_t kl;
				const uint8_t *kk = sb_mt_iter_key(&it, &kl);
				if (prevl && kcmp(prev, prevl, kk, kl) >= 0)
					atomic_fetch_add(&cbad, 1);
				memcpy(prev, kk, kl);
				prevl = kl;
			}
		}
		atomic_fetch_add(&creads, 1);
	}
	return NULL;
}

Test(memtable, one_writer_many_readers, .timeout = 120)
{
	pthread_t th[READERS];
	uint64_t seed = 99;
	uint8_t k[32];

	cr_assert_eq(sb_mt_new(&CM), 0);
	atomic_store(&cdone, 0);
	atomic_store(&cstable, 0);
	for (int t = 0; t < READERS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, reader, (void *)(uintptr_t)t), 0);
	/* Insert in a shuffled order (a permutation by a multiplier prime to
	 * CKEYS), publishing the prefix of keys that are surely in; keys
	 * i % 7 == 0 are deleted and put back meanwhile. */
	for (uint64_t j = 0; j < CKEYS; j++) {
		uint64_t i = (j * 7919) % CKEYS;
		sb_mt_val v = cval(i, 0);
		cr_assert_eq(sb_mt_put(CM, k, ckey(i, k), &v), 0);
	}
	atomic_store(&cstable, CKEYS);
	for (uint64_t round = 1; round < 30; round++) {
		for (uint64_t n = 0; n < 3000; n++) {
			uint64_t i = ut_rnd(&seed) % CKEYS;
			size_t kl = ckey(i, k);
			if (i % 7 == 0 && ut_rnd(&seed) % 2)
				sb_mt_delete(CM, k, kl);
			sb_mt_val v = cval(i, round);
			cr_assert_eq(sb_mt_put(CM, k, kl, &v), 0);
		}
	}
	/* On a loaded machine the writer may finish before a reader ran:
	 * let them read beside the table (10 s at most) before stopping. */
	for (int w = 0; w < 10000 && atomic_load(&creads) < 1000; w++)
		usleep(1000);
	atomic_store(&cdone, 1);
	for (int t = 0; t < READERS; t++)
		pthread_join(th[t], NULL);
	cr_assert_eq(atomic_load(&cbad), 0, "%lu bad reads of %lu", atomic_load(&cbad), atomic_load(&creads));
	cr_assert_gt(atomic_load(&creads), 0);
	cr_assert_eq(sb_mt_count(CM), CKEYS);
	sb_mt_free(CM);
}

/*
 * Readers beside a writer that puts new keys (8, 32 and 1..40 bytes) into
 * a table growing from empty: the index grows (twice the slots, published)
 * and so does the chunk table, many times while the readers are inside.
 * Every key put before a reader read the watermark is found, whole; keys
 * never put are not; seeks come in order. Then updates and deletes beside
 * them. SB_MT_GROW: keys (default 40,000; 15,000 under a sanitizer).
 */
static _Atomic uint64_t gmark; /* keys below this were put (and not deleted) */
static uint64_t gkeys;

static size_t gkey(uint64_t i, uint8_t *buf)
{
	size_t len = i % 3 == 0 ? 8 : i % 3 == 1 ? 32 : 1 + i % 40;
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull; /* distinct for distinct i */

	for (size_t b = 0; b < len; b++)
		buf[b] = len < 8 ? (uint8_t)(i >> (8 * b)) : (uint8_t)((x >> (8 * (b % 8))) ^ (b / 8));
	return len;
}

/* Keys of 1..7 bytes hold i's low bytes: distinct only while i fits. */
static int gkey_used(uint64_t i)
{
	size_t len = i % 3 == 2 ? 1 + i % 40 : 8;
	return len >= 8 || i < (1ull << (8 * len));
}

static void *grow_reader(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 131 + 7;
	uint8_t k[48];

	while (!atomic_load(&cdone)) {
		uint64_t mark = atomic_load_explicit(&gmark, memory_order_acquire);
		uint64_t i = ut_rnd(&seed) % gkeys;
		sb_mt_val v;
		if (i < mark && gkey_used(i) && i % 5 != 0 &&
		    (sb_mt_get(CM, k, gkey(i, k), &v) != 0 || !val_whole(i, &v)))
			atomic_fetch_add(&cbad, 1);
		if (i < mark && gkey_used(i) && sb_mt_get(CM, k, gkey(i, k), &v) == 0 && !val_whole(i, &v))
			atomic_fetch_add(&cbad, 1);
		/* never put: 41..48 bytes */
		memset(k, (int)(i & 0xff), sizeof(k));
		if (sb_mt_get(CM, k, 41 + i % 8, &v) != -ENOENT)
			atomic_fetch_add(&cbad, 1);
		if (ut_rnd(&seed) % 256 == 0) {
			sb_mt_iter it;
			uint8_t prev[40];
			size_t prevl = 0;
			int n = 0;
			sb_mt_seek(CM, k, gkey(i, k), &it);
			for (; sb_mt_iter_valid(&it) && n < 100; sb_mt_iter_next(&it), n++) {
				size_t kl;
				const uint8_t *kk = sb_mt_iter_key(&it, &kl);
				if (kl > sizeof(prev) || (prevl && kcmp(prev, prevl, kk, kl) >= 0))
					atomic_fetch_add(&cbad, 1);
				memcpy(prev, kk, kl < sizeof(prev) ? kl : sizeof(prev));
				prevl = kl;
			}
		}
		atomic_fetch_add(&creads, 1);
	}
	return NULL;
}

Test(memtable, readers_beside_growth)
{
	const char *env = getenv("SB_MT_GROW");
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	gkeys = env ? (uint64_t)atol(env) : 15000;
#else
	gkeys = env ? (uint64_t)atol(env) : 40000;
#endif
	pthread_t th[READERS];
	uint64_t seed = 5;
	uint8_t k[40];

	cr_assert_eq(sb_mt_new(&CM), 0);
	sb_mt_test_yield_in_grow(CM);
	atomic_store(&cdone, 0);
	atomic_store(&gmark, 0);
	atomic_store(&cbad, 0);
	atomic_store(&creads, 0);
	for (int t = 0; t < READERS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, grow_reader, (void *)(uintptr_t)t), 0);
	size_t count = 0;
	for (uint64_t i = 0; i < gkeys; i++) {
		if (!gkey_used(i))
			continue;
		sb_mt_val v = cval(i, 0);
		cr_assert_eq(sb_mt_put(CM, k, gkey(i, k), &v), 0);
		count++;
		atomic_store_explicit(&gmark, i + 1, memory_order_release);
		if (i % 1024 == 0)
			sched_yield(); /* let the readers in between growths */
	}
	/* updates, and keys i % 5 == 0 deleted and put back */
	for (uint64_t n = 0; n < 4 * gkeys; n++) {
		uint64_t i = ut_rnd(&seed) % gkeys;
		if (!gkey_used(i))
			continue;
		size_t kl = gkey(i, k);
		if (i % 5 == 0 && ut_rnd(&seed) % 2)
			cr_assert_eq(sb_mt_delete(CM, k, kl), 0);
		sb_mt_val v = cval(i, 1 + n % 1000);
		cr_assert_eq(sb_mt_put(CM, k, kl, &v), 0);
	}
	atomic_store(&cdone, 1);
	for (int t = 0; t < READERS; t++)
		pthread_join(th[t], NULL);
	cr_assert_eq(atomic_load(&cbad), 0, "%lu bad reads of %lu", atomic_load(&cbad), atomic_load(&creads));
	cr_assert_gt(atomic_load(&creads), 0);
	cr_assert_eq(sb_mt_count(CM), count);
	sb_mt_free(CM);
}
