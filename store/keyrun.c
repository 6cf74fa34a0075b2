/*
 * keyrun.c - the unindexed tail of a key index and its sorted runs
 * (keyrun.h).
 *
 * The tail is a list of chunks the appender fills with entries (value, key
 * length, key) and publishes with a release store of the chunk's `used`;
 * readers and the indexer walk it with acquire loads. Chunks grow from 4 KiB
 * (a topic with few keys holds little) to 256 KiB. Only the indexer releases
 * chunks (release), those before the one it stopped in, which the appender
 * has left. A released chunk of the largest size goes to one of a few spare
 * slots (atomic exchanges: the chunk belongs to whoever took it out), from
 * which the appender takes its next chunk: a steady stream of keys writes
 * into memory already mapped instead of faulting in and zeroing fresh pages
 * (a 256 KiB chunk every ~5,000 16-byte keys). The indexer empties the
 * slots when the tail was idle for a turn (sb_kp_trim).
 *
 * A run is one allocation: the entries in key order, an array of pointers
 * to them and an array of their first 8 key bytes (big-endian, zero-padded:
 * that order agrees with the keys' order), which a binary search compares
 * first, and a Bloom filter (10 bits a key, 6 probes in one 64-byte line)
 * over a cheap hash of the key's first and last 8 bytes and its length, so
 * that a get of a key the run lacks costs one cache line, not a binary
 * search (keys differing only in their middle bytes share a hash: the
 * filter then lets them through, and the search answers). The filter is
 * made at the run's first get, not as the run is filled: most runs of a
 * stream of keyed appends are merged into a table before anyone asks them
 * for a key, and the filter's hash and its scattered stores were a tenth
 * of the indexing's CPU. Its memory comes
 * from the key index's pool of freed runs when one of the size is kept
 * there (sb_kr_pool): a steady flow of batches reuses the same pages.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keyprefix.h"
#include "keyrun.h"

typedef struct ent {
	uint64_t offset;
	int64_t ts;
	uint32_t size;
	uint32_t pos;
	uint16_t flags;
	uint16_t klen;
	uint8_t key[];
} ent;

#define ENT_SIZE(kl) ((sizeof(ent) + (size_t)(kl) + 7) & ~(size_t)7)
/* The tail's chunks double from CHUNK_FIRST to CHUNK_MAX: a topic with a
 * few keys holds a small one (its last chunk stays; thousands of topics). */
#define CHUNK_FIRST 256u
#define CHUNK_MAX (256u << 10)

/* The key's 8 bytes from `at` (keyprefix.h), 0 past its end. */
static uint64_t chunk8(const uint8_t *key, size_t klen, size_t at)
{
	return klen > at ? sb_key_prefix(key + at, klen - at) : 0;
}

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;

	if (m >= 8) { /* most keys differ in their first 8 bytes */
		uint64_t x = chunk8(a, al, 0), y = chunk8(b, bl, 0);
		if (x != y)
			return x < y ? -1 : 1;
	}
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (al > bl) - (al < bl);
}

static int ent_cmp(const ent *a, const ent *b)
{
	return kcmp(a->key, a->klen, b->key, b->klen);
}

static void ent_val(const ent *e, sb_mt_val *v)
{
	v->offset = e->offset;
	v->pos = e->pos;
	v->ts = e->ts;
	v->size = e->size;
	v->flags = e->flags;
}

/* ---- runs ------------------------------------------------------------------- */

struct sb_kr {
	sb_kr_pool *pool;  /* where its memory goes back (NULL: free) */
	size_t n, bytes;   /* bytes: of its allocation */
	uint8_t *bloom;   /* nlines lines of 64 bytes, made at the first get */
	uint32_t nlines;
	_Atomic int bloom_made; /* [release by the maker, under bloom_mu] */
	pthread_mutex_t bloom_mu; /* one maker of the filter */
	const ent **e;    /* in key order, one per key */
	uint64_t *pfx;    /* chunk8(key, 0) of each */
	uint8_t *arena;   /* the entries */
};

static uint64_t bloom_hash(const uint8_t *key, size_t klen)
{
	uint64_t a = chunk8(key, klen, 0), b = klen > 8 ? chunk8(key, klen, klen - 8) : 0;
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull) ^ klen) * 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 31);
}

#define BLOOM_K 6

/* The line of h and the first bit and step of its probes in it. */
static const uint8_t *bloom_line(const sb_kr *r, uint64_t h, uint32_t *g, uint32_t *d)
{
	uint32_t line = (uint32_t)(((h >> 32) * (uint64_t)r->nlines) >> 32);
	*g = (uint32_t)h;
	*d = ((uint32_t)h >> 17) | 1;
	return r->bloom + (size_t)line * 64;
}

static int bloom_may(const sb_kr *r, const uint8_t *key, size_t klen)
{
	uint32_t g, d;
	const uint8_t *L = bloom_line(r, bloom_hash(key, klen), &g, &d);

	for (int i = 0; i < BLOOM_K; i++, g += d)
		if (!(L[(g & 511) >> 3] & (1u << (g & 7))))
			return 0;
	return 1;
}

static void bloom_add(sb_kr *r, const uint8_t *key, size_t klen)
{
	uint32_t g, d;
	uint8_t *L = (uint8_t *)bloom_line(r, bloom_hash(key, klen), &g, &d);

	for (int i = 0; i < BLOOM_K; i++, g += d)
		L[(g & 511) >> 3] |= (uint8_t)(1u << (g & 7));
}

/* ---- the pool of run memory -------------------------------------------------- */

#define POOL_SLOTS 32

struct sb_kr_pool {
	pthread_mutex_t mu;
	size_t keep, held;        /* [mu] */
	size_t nfree;             /* [mu] */
	sb_kr *free[POOL_SLOTS];  /* [mu] freed runs (their memory) */
	void *scratch;            /* [indexer] a sort's items */
	size_t scratch_cap;
};

int sb_kr_pool_new(size_t keep, sb_kr_pool **out)
{
	sb_kr_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->mu, NULL);
	pool->keep = keep;
	*out = pool;
	return 0;
}

void sb_kr_pool_free(sb_kr_pool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; i < pool->nfree; i++)
		free(pool->free[i]);
	free(pool->scratch);
	pthread_mutex_destroy(&pool->mu);
	free(pool);
}

size_t sb_kr_pool_held(sb_kr_pool *pool)
{
	pthread_mutex_lock(&pool->mu);
	size_t h = pool->held;
	pthread_mutex_unlock(&pool->mu);
	return h;
}

/* A kept allocation of at least `bytes` and at most a quarter more (the
 * smallest such), or NULL. */
static sb_kr *pool_take(sb_kr_pool *pool, size_t bytes)
{
	sb_kr *r = NULL;
	size_t best = 0;

	if (!pool)
		return NULL;
	pthread_mutex_lock(&pool->mu);
	for (size_t i = 0; i < pool->nfree; i++) {
		size_t b = pool->free[i]->bytes;
		if (b >= bytes && b - bytes <= bytes / 4 && (!r || b < pool->free[best]->bytes)) {
			r = pool->free[i];
			best = i;
		}
	}
	if (r) {
		pool->free[best] = pool->free[--pool->nfree];
		pool->held -= r->bytes;
	}
	pthread_mutex_unlock(&pool->mu);
	return r;
}

/* Keep r's memory in its pool: 1, or 0 (the pool is full: free it). */
static int pool_put(sb_kr *r)
{
	sb_kr_pool *pool = r->pool;
	int kept = 0;

	if (!pool)
		return 0;
	pthread_mutex_lock(&pool->mu);
	if (pool->nfree < POOL_SLOTS && pool->held + r->bytes <= pool->keep) {
		pool->free[pool->nfree++] = r;
		pool->held += r->bytes;
		kept = 1;
	}
	pthread_mutex_unlock(&pool->mu);
	return kept;
}

/* The pool's scratch of at least `bytes`, or a fresh allocation (NULL
 * pool, or more than a quarter of what the pool keeps: a big catch-up's
 * is not kept); the caller hands it back with scratch_done. [indexer] */
static void *scratch_get(sb_kr_pool *pool, size_t bytes)
{
	if (!pool || bytes > pool->keep / 4)
		return malloc(bytes);
	if (pool->scratch_cap < bytes) {
		void *n = malloc(bytes);
		if (!n)
			return NULL;
		free(pool->scratch);
		pool->scratch = n;
		pool->scratch_cap = bytes;
	}
	return pool->scratch;
}

static void scratch_done(sb_kr_pool *pool, void *p)
{
	if (!pool || p != pool->scratch)
		free(p);
}

/* ---- runs, continued ---------------------------------------------------------- */

/* A run of n entries whose sizes add to `arena` bytes, to be filled; its
 * memory from pool (may be NULL) if it keeps some of the size. */
static sb_kr *run_alloc(sb_kr_pool *pool, size_t n, size_t arena)
{
	size_t hdr = (sizeof(sb_kr) + 7) & ~(size_t)7;
	uint32_t nlines = (uint32_t)((n * 10 + 511) / 512);
	nlines = nlines ? nlines : 1;
	size_t bytes = hdr + (size_t)nlines * 64 + n * (sizeof(ent *) + sizeof(uint64_t)) + arena;
	sb_kr *r = pool_take(pool, bytes);

	if (!r) {
		if (!(r = malloc(bytes)))
			return NULL;
		r->bytes = bytes;
	}
	r->pool = pool;
	r->n = 0;
	r->nlines = nlines;
	r->bloom = (uint8_t *)r + hdr;
	atomic_init(&r->bloom_made, 0);
	pthread_mutex_init(&r->bloom_mu, NULL);
	r->e = (const ent **)(r->bloom + (size_t)nlines * 64);
	r->pfx = (uint64_t *)(r->e + n);
	r->arena = (uint8_t *)(r->pfx + n);
	return r;
}

/* Append a copy of e at *at of the arena. The key's prefix and hash are
 * read from e, not from the copy just stored (a load spanning the copy's
 * stores waits for them). */
static void run_add(sb_kr *r, const ent *e, size_t *at)
{
	size_t kl = e->klen, sz = ENT_SIZE(kl);
	ent *d = (ent *)(r->arena + *at);

	*d = *e;
	/* Fixed-size copies for short keys (no call); ENT_SIZE rounds the
	 * key's room to 8 bytes in both entries. */
	if (kl <= 8)
		memcpy(d->key, e->key, 8);
	else if (kl <= 16)
		memcpy(d->key, e->key, 16);
	else
		memcpy(d->key, e->key, kl);
	*at += sz;
	r->e[r->n] = d;
	r->pfx[r->n] = chunk8(e->key, kl, 0);
	r->n++;
}

void sb_kr_free(sb_kr *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->bloom_mu);
	if (!pool_put(r))
		free(r);
}

size_t sb_kr_count(const sb_kr *r)
{
	return r->n;
}

size_t sb_kr_bytes(const sb_kr *r)
{
	return r->bytes;
}

/* The first index whose key is >= key. */
static size_t lower_bound(const sb_kr *r, const void *key, size_t klen)
{
	uint64_t q = chunk8(key, klen, 0);
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = r->pfx[mid] < q ? -1 : r->pfx[mid] > q ? 1 : kcmp(r->e[mid]->key, r->e[mid]->klen, key, klen);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Make the run's filter if no get has yet: the run is immutable but for
 * it (gets of readers sharing the run run at once: one makes it). */
static void bloom_make(const sb_kr *run)
{
	sb_kr *r = (sb_kr *)run; /* the filter is a cache of the entries */

	if (atomic_load_explicit(&r->bloom_made, memory_order_acquire))
		return;
	pthread_mutex_lock(&r->bloom_mu);
	if (!atomic_load_explicit(&r->bloom_made, memory_order_relaxed)) {
		memset(r->bloom, 0, (size_t)r->nlines * 64);
		for (size_t i = 0; i < r->n; i++)
			bloom_add(r, r->e[i]->key, r->e[i]->klen);
		atomic_store_explicit(&r->bloom_made, 1, memory_order_release);
	}
	pthread_mutex_unlock(&r->bloom_mu);
}

int sb_kr_get(const sb_kr *r, const void *key, size_t klen, sb_mt_val *v)
{
	bloom_make(r);
	if (!bloom_may(r, key, klen))
		return -ENOENT;
	size_t i = lower_bound(r, key, klen);

	if (i == r->n || r->e[i]->klen != klen || memcmp(r->e[i]->key, key, klen))
		return -ENOENT;
	ent_val(r->e[i], v);
	return 0;
}

int sb_kr_merge(const sb_kr *a, const sb_kr *b, sb_kr **out)
{
	size_t arena = 0, at = 0, i = 0, j = 0;

	for (size_t k = 0; k < a->n; k++)
		arena += ENT_SIZE(a->e[k]->klen);
	for (size_t k = 0; k < b->n; k++)
		arena += ENT_SIZE(b->e[k]->klen);
	sb_kr *r = run_alloc(a->pool, a->n + b->n, arena);
	if (!r)
		return -ENOMEM;
	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 : j == b->n ? -1
			: a->pfx[i] < b->pfx[j] ? -1 : a->pfx[i] > b->pfx[j] ? 1 : ent_cmp(a->e[i], b->e[j]);
		if (c <= 0) {
			run_add(r, a->e[i++], &at);
			if (c == 0)
				j++; /* the newer entry of the key wins */
		} else {
			run_add(r, b->e[j++], &at);
		}
	}
	*out = r;
	return 0;
}

void sb_kr_seek(const sb_kr *r, const void *key, size_t klen, sb_kr_iter *it)
{
	it->r = r;
	it->i = klen ? lower_bound(r, key, klen) : 0;
}

int sb_kr_iter_valid(const sb_kr_iter *it)
{
	return it->i < it->r->n;
}

void sb_kr_iter_next(sb_kr_iter *it)
{
	it->i++;
}

const uint8_t *sb_kr_iter_key(const sb_kr_iter *it, size_t *klen)
{
	*klen = it->r->e[it->i]->klen;
	return it->r->e[it->i]->key;
}

void sb_kr_iter_val(const sb_kr_iter *it, sb_mt_val *v)
{
	ent_val(it->r->e[it->i], v);
}

/* Entries ahead of a merge's current one whose lines are fetched: a run
 * merged in a flush was built long before and is out of cache, and the
 * hardware's stream prefetch stops at each page's end. */
#define LOAD_AHEAD 24

int sb_kr_iter_load(const sb_kr_iter *it, const uint8_t **key, size_t *klen, uint64_t *pfx)
{
	if (it->i >= it->r->n)
		return 0;
	if (it->i + LOAD_AHEAD < it->r->n)
		__builtin_prefetch(it->r->e[it->i + LOAD_AHEAD]);
	const ent *e = it->r->e[it->i];
	*key = e->key;
	*klen = e->klen;
	*pfx = it->r->pfx[it->i];
	return 1;
}

/* ---- sorting a batch ------------------------------------------------------------ */

typedef struct item {
	uint64_t k;
	const ent *e;
} item;

static void insertion_by_k(item *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		item x = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1].k > x.k; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

#define INSERTION_MAX 16 /* items a part is sorted by insertion below */

/*
 * Stable sort of a[0..n) by k, whose bytes above `shift + 8` the items
 * share: most significant byte first (split into 256 parts through t,
 * a counting pass and a scatter), each part of more than INSERTION_MAX
 * items split again by the next byte, smaller ones sorted by insertion.
 * Keys of one batch are spread: 11,000 of them are split once into parts
 * of ~43, in cache, instead of the 8 passes over the batch (and a 16 KiB
 * count table each part) of a least-significant-first radix sort.
 */
static void sort_by_k_at(item *a, item *t, size_t n, int shift)
{
	size_t cnt[256], at[256];

	for (; n > INSERTION_MAX && shift >= 0; shift -= 8) {
		memset(cnt, 0, sizeof(cnt));
		for (size_t i = 0; i < n; i++)
			cnt[(a[i].k >> shift) & 255]++;
		if (cnt[(a[0].k >> shift) & 255] == n)
			continue; /* one value of this byte: the next one */
		for (size_t v = 0, sum = 0; v < 256; v++) {
			at[v] = sum;
			sum += cnt[v];
		}
		for (size_t i = 0; i < n; i++)
			t[at[(a[i].k >> shift) & 255]++] = a[i];
		memcpy(a, t, n * sizeof(*a));
		for (size_t v = 0, off = 0; v < 256; off += cnt[v], v++)
			if (cnt[v] > 1)
				sort_by_k_at(a + off, t + off, cnt[v], shift - 8);
		return;
	}
	if (shift >= 0) /* else k is the same for all */
		insertion_by_k(a, n);
}

static void sort_by_k(item *a, item *t, size_t n)
{
	sort_by_k_at(a, t, n, 56);
}

/* Stable merge sort by the whole key. */
static void msort(item *a, item *t, size_t n)
{
	if (n <= 16) {
		for (size_t i = 1; i < n; i++) {
			item x = a[i];
			size_t j = i;
			for (; j > 0 && ent_cmp(a[j - 1].e, x.e) > 0; j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
		return;
	}
	size_t h = n / 2, i = 0, j = h, k = 0;
	msort(a, t, h);
	msort(a + h, t, n - h);
	while (i < h && j < n)
		t[k++] = ent_cmp(a[j].e, a[i].e) < 0 ? a[j++] : a[i++];
	while (i < h)
		t[k++] = a[i++];
	while (j < n)
		t[k++] = a[j++];
	memcpy(a, t, n * sizeof(*a));
}

#define RADIX_DEPTH 4 /* chunks of 8 bytes sorted by radix; then merge sort */

/* Stable sort of a[0..n) by key, the items agreeing on the key's first
 * depth * 8 bytes. */
static void sort_items(item *a, item *t, size_t n, size_t depth)
{
	if (n < 2)
		return;
	if (depth == RADIX_DEPTH) {
		msort(a, t, n);
		return;
	}
	if (depth) /* the caller set depth 0's */
		for (size_t i = 0; i < n; i++)
			a[i].k = chunk8(a[i].e->key, a[i].e->klen, depth * 8);
	sort_by_k(a, t, n);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && a[j].k == a[i].k; j++)
			;
		if (j - i < 2)
			continue;
		size_t maxl = 0;
		for (size_t m = i; m < j; m++)
			if (a[m].e->klen > maxl)
				maxl = a[m].e->klen;
		if (maxl > (depth + 1) * 8) {
			sort_items(a + i, t, j - i, depth + 1);
		} else { /* equal but for length: the shorter key first */
			for (size_t m = i; m < j; m++)
				a[m].k = a[m].e->klen;
			sort_by_k(a + i, t, j - i);
		}
	}
}

/* Entries ahead of the one copied whose lines are fetched (key order is
 * scattered over the tail: each is a cache miss). */
#define GATHER_AHEAD 16

/* A run of the n entries (in offset order, k their first 8 key bytes,
 * `bytes` their ENT_SIZEs' sum), the latest of each key. */
static int run_of(sb_kr_pool *pool, item *a, item *t, size_t n, uint64_t bytes, sb_kr **out)
{
	size_t m = 0, arena = (size_t)bytes, at = 0;

	sort_items(a, t, n, 0);
	/* Equal keys have equal k at every depth of the sort: only equal k
	 * need a look at the keys (the others are not read here: the arena is
	 * the batch's bytes less the records dropped). */
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && a[i + 1].k == a[i].k && a[i + 1].e->klen == a[i].e->klen &&
		    !memcmp(a[i + 1].e->key, a[i].e->key, a[i].e->klen)) {
			arena -= ENT_SIZE(a[i].e->klen);
			continue; /* a later record of the same key follows */
		}
		a[m++] = a[i];
	}
	sb_kr *r = run_alloc(pool, m, arena);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < m; i++) {
		if (i + GATHER_AHEAD < m) { /* an entry may span two lines */
			const uint8_t *p = (const uint8_t *)a[i + GATHER_AHEAD].e;
			__builtin_prefetch(p);
			__builtin_prefetch(p + sizeof(ent) + 15);
		}
		run_add(r, a[i].e, &at);
	}
	*out = r;
	return 0;
}

/* ---- the tail ---------------------------------------------------------------------- */

typedef struct chunk {
	_Atomic(struct chunk *) next;
	_Atomic size_t used;      /* bytes of entries published */
	size_t cap;
	uint8_t data[];
} chunk;

#define SPARES 2 /* released chunks kept for the appender: 512 KiB at most */

struct sb_kp {
	_Atomic(chunk *) head;    /* [indexer; readers excluded] first unreleased
				   * entry; the appender sets the first (a topic
				   * without keys holds no chunk) */
	size_t head_at;
	chunk *tail;              /* [appender] */
	size_t next_cap;          /* [appender] */
	_Atomic uint64_t put_n, put_bytes;  /* [appender] */
	_Atomic uint64_t rel_n, rel_bytes;  /* [indexer] */
	_Atomic(chunk *) spare[SPARES];     /* [exchange: whoever takes one owns it]
					     * released CHUNK_MAX chunks */
};

static chunk *chunk_new(size_t cap)
{
	chunk *c = malloc(sizeof(chunk) + cap);

	if (!c)
		return NULL;
	atomic_init(&c->next, NULL);
	atomic_init(&c->used, 0);
	c->cap = cap;
	return c;
}

int sb_kp_new(sb_kp **out)
{
	sb_kp *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->next_cap = CHUNK_FIRST;
	*out = p;
	return 0;
}

/* A chunk of CHUNK_MAX bytes from the spare slots, reset, or NULL.
 * [appender] */
static chunk *spare_take(sb_kp *p)
{
	for (int i = 0; i < SPARES; i++) {
		if (!atomic_load_explicit(&p->spare[i], memory_order_relaxed))
			continue;
		chunk *c = atomic_exchange_explicit(&p->spare[i], NULL, memory_order_acquire);
		if (!c)
			continue;
		atomic_store_explicit(&c->next, NULL, memory_order_relaxed);
		atomic_store_explicit(&c->used, 0, memory_order_relaxed);
		return c;
	}
	return NULL;
}

/* Keep released chunk c for the appender, or free it. [indexer] */
static void spare_put(sb_kp *p, chunk *c)
{
	if (c->cap == CHUNK_MAX)
		for (int i = 0; i < SPARES; i++) {
			chunk *none = NULL;
			if (atomic_compare_exchange_strong_explicit(&p->spare[i], &none, c, memory_order_release,
								    memory_order_relaxed))
				return;
		}
	free(c);
}

void sb_kp_trim(sb_kp *p)
{
	for (int i = 0; i < SPARES; i++)
		free(atomic_exchange_explicit(&p->spare[i], NULL, memory_order_acquire));
}

void sb_kp_free(sb_kp *p)
{
	if (!p)
		return;
	sb_kp_trim(p);
	for (chunk *c = atomic_load(&p->head), *n; c; c = n) {
		n = atomic_load(&c->next);
		free(c);
	}
	free(p);
}

int sb_kp_put(sb_kp *p, const void *key, size_t klen, const sb_mt_val *v)
{
	size_t sz = ENT_SIZE(klen);
	chunk *c = p->tail;
	size_t u = c ? atomic_load_explicit(&c->used, memory_order_relaxed) : 0;

	if (!klen || klen > UINT16_MAX)
		return -EINVAL;
	if (!c || u + sz > c->cap) {
		size_t cap = p->next_cap > sz ? p->next_cap : sz;
		chunk *n = cap == CHUNK_MAX ? spare_take(p) : NULL;
		if (!n && !(n = chunk_new(cap)))
			return -ENOMEM;
		if (p->next_cap < CHUNK_MAX)
			p->next_cap *= 2;
		if (c)
			atomic_store_explicit(&c->next, n, memory_order_release);
		else /* the first chunk: nothing was taken, nobody releases */
			atomic_store_explicit(&p->head, n, memory_order_release);
		p->tail = c = n;
		u = 0;
	}
	ent *e = (ent *)(c->data + u);
	e->offset = v->offset;
	e->pos = v->pos;
	e->ts = v->ts;
	e->size = v->size;
	e->flags = v->flags;
	e->klen = (uint16_t)klen;
	memcpy(e->key, key, klen);
	atomic_store_explicit(&c->used, u + sz, memory_order_release);
	atomic_store_explicit(&p->put_bytes, atomic_load_explicit(&p->put_bytes, memory_order_relaxed) + sz,
			      memory_order_relaxed);
	atomic_store_explicit(&p->put_n, atomic_load_explicit(&p->put_n, memory_order_relaxed) + 1,
			      memory_order_release);
	return 0;
}

uint64_t sb_kp_count(const sb_kp *p)
{
	uint64_t r = atomic_load(&p->rel_n);
	return atomic_load(&p->put_n) - r;
}

uint64_t sb_kp_bytes(const sb_kp *p)
{
	uint64_t r = atomic_load(&p->rel_bytes);
	return atomic_load(&p->put_bytes) - r;
}

int sb_kp_find(const sb_kp *p, const void *key, size_t klen, sb_mt_val *v)
{
	const ent *hit = NULL;
	size_t at = p->head_at;

	for (const chunk *c = atomic_load_explicit(&p->head, memory_order_acquire); c; at = 0) {
		size_t u = atomic_load_explicit(&c->used, memory_order_acquire);
		for (size_t i = at; i < u;) {
			const ent *e = (const ent *)(c->data + i);
			if (e->klen == klen && !memcmp(e->key, key, klen))
				hit = e;
			i += ENT_SIZE(e->klen);
		}
		c = atomic_load_explicit(&c->next, memory_order_acquire);
	}
	if (!hit)
		return -ENOENT;
	ent_val(hit, v);
	return 0;
}

int sb_kp_take(sb_kp *p, uint64_t below, sb_kr_pool *pool, sb_kr **out, sb_kp_pos *pos)
{
	uint64_t avail = sb_kp_count(p), n = 0, bytes = 0;
	/* the items and the sort's scratch */
	item *a = avail ? scratch_get(pool, 2 * avail * sizeof(*a)) : NULL;
	chunk *c = atomic_load_explicit(&p->head, memory_order_acquire);
	size_t at = p->head_at;
	int rc = 0;

	if (avail && !a)
		return -ENOMEM;
	for (; c;) {
		/* `next` first: once it is set, `used` is final. */
		chunk *nc = atomic_load_explicit(&c->next, memory_order_acquire);
		size_t u = atomic_load_explicit(&c->used, memory_order_acquire);
		int stop = 0;
		while (at < u && n < avail) {
			const ent *e = (const ent *)(c->data + at);
			if (e->offset >= below) {
				stop = 1;
				break;
			}
			a[n++] = (item){chunk8(e->key, e->klen, 0), e};
			at += ENT_SIZE(e->klen);
			bytes += ENT_SIZE(e->klen);
		}
		if (stop || at < u || n == avail || !nc)
			break;
		c = nc;
		at = 0;
	}
	*out = NULL;
	if (n)
		rc = run_of(pool, a, a + avail, n, bytes, out);
	if (a)
		scratch_done(pool, a);
	if (rc)
		return rc;
	pos->chunk = c;
	pos->at = at;
	pos->n = n;
	pos->bytes = bytes;
	return 0;
}

void sb_kp_release(sb_kp *p, const sb_kp_pos *pos)
{
	if (!pos->n)
		return;
	chunk *h = atomic_load(&p->head);
	while (h != pos->chunk) {
		chunk *n = atomic_load(&h->next);
		spare_put(p, h);
		h = n;
	}
	atomic_store(&p->head, h);
	p->head_at = pos->at;
	atomic_fetch_add(&p->rel_bytes, pos->bytes);
	atomic_fetch_add(&p->rel_n, pos->n);
}
