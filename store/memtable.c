/*
 * memtable.c - the MemTable: a B+tree in an arena under a reader-writer
 * lock (memtable.h).
 *
 * Why a B+tree: measured against a skiplist with lock-free readers (the
 * first version of this file; `streambus bench keys` keeps a B+tree beside
 * this table for the comparison), the skiplist's get and put cost several
 * times the B+tree's at 100,000 random keys and more (a cache miss per
 * level and node visited), more than the lock costs the B+tree's readers.
 * Fanout 32; every key keeps its first 8 bytes as a big-endian integer in
 * the node, so most compares are one integer compare inside one array.
 *
 * Threads: `lock` (a writer-preferring rwlock) guards the tree: put and
 * delete take it exclusive, readers shared. Keys and nodes live in the
 * arena until clear, so an iterator keeps a pointer to its current key and
 * its place (leaf, index); a step goes on along the leaves (linked) while
 * no new key was put since (`gen`: only a new key moves entries), and
 * otherwise finds its place again (the first key after it) from the root.
 * A put of a new key into a leaf with room descends once; only a full leaf
 * takes the second descent that splits full nodes on its way down.
 * A deleted key stays in its leaf marked MT_GONE (the key index deletes
 * nothing in practice: a tombstone is a value); count and iteration skip it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "memtable.h"
#include "sb_store.h"

#define MT_FAN 32
#define MT_CHUNK (256u * 1024)
#define MT_GONE 0x8000u /* flags: deleted */

typedef struct mt_node {
	int leaf, n;
	struct mt_node *next;       /* a leaf: the leaf after it, or NULL */
	uint64_t pfx[MT_FAN];
	const uint8_t *key[MT_FAN];
	uint16_t klen[MT_FAN];
	union {
		struct mt_node *kid[MT_FAN + 1];
		sb_mt_val val[MT_FAN];
	} u;
} mt_node;

struct mt_chunk {
	struct mt_chunk *prev;
	size_t cap, used;
	_Alignas(16) unsigned char data[];
};

struct sb_mt {
	pthread_rwlock_t lock;
	mt_node *root;              /* [lock] */
	_Atomic size_t count;       /* keys present */
	_Atomic size_t bytes;       /* arena bytes used */
	struct mt_chunk *chunks;    /* [lock] newest first */
	uint64_t gen;               /* [lock] new keys put: entries moved */
};

static inline uint64_t key_prefix(const uint8_t *k, size_t kl)
{
	uint8_t b[8] = {0};
	uint64_t v;

	memcpy(b, k, kl < 8 ? kl : 8);
	memcpy(&v, b, 8);
	return __builtin_bswap64(v);
}

/* <0, 0, >0 as key i of n is below, equal to, above (pfx, k, kl). */
static inline int key_cmp(const mt_node *n, int i, uint64_t pfx, const uint8_t *k, size_t kl)
{
	if (n->pfx[i] != pfx)
		return n->pfx[i] < pfx ? -1 : 1;
	size_t nl = n->klen[i], m = nl < kl ? nl : kl;
	if (m > 8) {
		int c = memcmp(n->key[i] + 8, k + 8, m - 8);
		if (c)
			return c;
	}
	return (nl > kl) - (nl < kl);
}

/* The first index of n whose key is >= key. */
static inline int lower(const mt_node *n, uint64_t pfx, const uint8_t *k, size_t kl)
{
	int lo = 0, hi = n->n;

	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (key_cmp(n, mid, pfx, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void *arena_alloc(sb_mt *m, size_t n)
{
	struct mt_chunk *c = m->chunks;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		/* Chunks grow from 4 KiB to MT_CHUNK: thousands of topics with
		 * few keys each cost a page or two each. */
		size_t grown = c ? (c->cap < MT_CHUNK ? c->cap * 2 : MT_CHUNK) : 4096;
		size_t cap = n > grown / 4 ? n : grown;
		struct mt_chunk *nc = malloc(sizeof(*nc) + cap);
		if (!nc)
			return NULL;
		nc->cap = cap;
		nc->used = 0;
		if (c && cap != grown) {
			/* A big key gets a chunk of its own, kept behind the
			 * current one so that its free space stays in use. */
			nc->prev = c->prev;
			c->prev = nc;
			nc->used = n;
			atomic_fetch_add_explicit(&m->bytes, n, memory_order_relaxed);
			return nc->data;
		}
		nc->prev = c;
		m->chunks = c = nc;
	}
	void *p = c->data + c->used;
	c->used += n;
	atomic_fetch_add_explicit(&m->bytes, n, memory_order_relaxed);
	return p;
}

static void arena_free(sb_mt *m)
{
	struct mt_chunk *c = m->chunks;

	while (c) {
		struct mt_chunk *p = c->prev;
		free(c);
		c = p;
	}
	m->chunks = NULL;
}

static mt_node *node_new(sb_mt *m, int leaf)
{
	mt_node *n = arena_alloc(m, sizeof(mt_node));
	if (n) {
		n->leaf = leaf;
		n->n = 0;
		n->next = NULL;
	}
	return n;
}

int sb_mt_new(sb_mt **out)
{
	pthread_rwlockattr_t ra;
	sb_mt *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	if (!(m->root = node_new(m, 1))) {
		free(m);
		return -ENOMEM;
	}
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&m->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	*out = m;
	return 0;
}

void sb_mt_free(sb_mt *m)
{
	if (!m)
		return;
	arena_free(m);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

void sb_mt_clear(sb_mt *m)
{
	pthread_rwlock_wrlock(&m->lock);
	arena_free(m);
	atomic_store_explicit(&m->bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&m->count, 0, memory_order_relaxed);
	m->root = node_new(m, 1); /* NULL: put says -ENOMEM */
	m->gen++;
	pthread_rwlock_unlock(&m->lock);
}

size_t sb_mt_count(const sb_mt *m)
{
	return atomic_load_explicit(&m->count, memory_order_relaxed);
}

size_t sb_mt_bytes(const sb_mt *m)
{
	return atomic_load_explicit(&m->bytes, memory_order_relaxed);
}

/* Split the full child x->u.kid[i] in two (x is not full). */
static int split(sb_mt *m, mt_node *x, int i)
{
	mt_node *y = x->u.kid[i], *z = node_new(m, y->leaf);
	int h = MT_FAN / 2;
	uint64_t sp;
	const uint8_t *sk;
	uint16_t sl;

	if (!z)
		return -ENOMEM;
	if (y->leaf) {
		z->n = MT_FAN - h;
		memcpy(z->pfx, y->pfx + h, z->n * sizeof(uint64_t));
		memcpy(z->key, y->key + h, z->n * sizeof(void *));
		memcpy(z->klen, y->klen + h, z->n * sizeof(uint16_t));
		memcpy(z->u.val, y->u.val + h, z->n * sizeof(sb_mt_val));
		sp = z->pfx[0], sk = z->key[0], sl = z->klen[0];
		z->next = y->next;
		y->next = z;
	} else {
		z->n = MT_FAN - h - 1;
		memcpy(z->pfx, y->pfx + h + 1, z->n * sizeof(uint64_t));
		memcpy(z->key, y->key + h + 1, z->n * sizeof(void *));
		memcpy(z->klen, y->klen + h + 1, z->n * sizeof(uint16_t));
		memcpy(z->u.kid, y->u.kid + h + 1, (z->n + 1) * sizeof(void *));
		sp = y->pfx[h], sk = y->key[h], sl = y->klen[h];
	}
	y->n = h;
	memmove(x->pfx + i + 1, x->pfx + i, (x->n - i) * sizeof(uint64_t));
	memmove(x->key + i + 1, x->key + i, (x->n - i) * sizeof(void *));
	memmove(x->klen + i + 1, x->klen + i, (x->n - i) * sizeof(uint16_t));
	memmove(x->u.kid + i + 2, x->u.kid + i + 1, (x->n - i) * sizeof(void *));
	x->pfx[i] = sp;
	x->key[i] = sk;
	x->klen[i] = sl;
	x->u.kid[i + 1] = z;
	x->n++;
	return 0;
}

/* The leaf that holds (or would hold) the key, and its index there. */
static mt_node *find_leaf(const sb_mt *m, uint64_t pfx, const uint8_t *k, size_t kl, int *at)
{
	const mt_node *x = m->root;

	while (!x->leaf) {
		int i = lower(x, pfx, k, kl);
		if (i < x->n && key_cmp(x, i, pfx, k, kl) == 0)
			i++;
		x = x->u.kid[i];
	}
	*at = lower(x, pfx, k, kl);
	return (mt_node *)x;
}

/* Insert the new key kc at index i of leaf x, which has room. */
static void leaf_insert(sb_mt *m, mt_node *x, int i, uint64_t pfx, const uint8_t *kc, size_t klen,
			const sb_mt_val *v)
{
	memmove(x->pfx + i + 1, x->pfx + i, (x->n - i) * sizeof(uint64_t));
	memmove(x->key + i + 1, x->key + i, (x->n - i) * sizeof(void *));
	memmove(x->klen + i + 1, x->klen + i, (x->n - i) * sizeof(uint16_t));
	memmove(x->u.val + i + 1, x->u.val + i, (x->n - i) * sizeof(sb_mt_val));
	x->pfx[i] = pfx;
	x->key[i] = kc;
	x->klen[i] = (uint16_t)klen;
	x->u.val[i] = *v;
	x->u.val[i].flags &= (uint16_t)~MT_GONE;
	x->n++;
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
}

static int put_locked(sb_mt *m, const uint8_t *k, size_t klen, const sb_mt_val *v)
{
	uint64_t pfx = key_prefix(k, klen);
	mt_node *x = m->root;
	int i;

	if (!x)
		return -ENOMEM;
	/* An existing key first: no split, no allocation. */
	mt_node *l = find_leaf(m, pfx, k, klen, &i);
	if (i < l->n && key_cmp(l, i, pfx, k, klen) == 0) {
		if (l->u.val[i].flags & MT_GONE)
			atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
		l->u.val[i] = *v;
		l->u.val[i].flags &= (uint16_t)~MT_GONE;
		return 0;
	}
	uint8_t *kc = arena_alloc(m, klen);
	if (!kc)
		return -ENOMEM;
	memcpy(kc, k, klen);
	m->gen++;
	/* Room in its leaf (15 puts of 16): insert there, no second descent.
	 * Only a full leaf needs the descent below, which splits full nodes
	 * on its way down. */
	if (l->n < MT_FAN) {
		leaf_insert(m, l, i, pfx, kc, klen, v);
		return 0;
	}
	if (x->n == MT_FAN) {
		mt_node *r = node_new(m, 0);
		if (!r)
			return -ENOMEM;
		r->u.kid[0] = x;
		if (split(m, r, 0))
			return -ENOMEM;
		m->root = x = r;
	}
	while (!x->leaf) {
		i = lower(x, pfx, k, klen);
		if (i < x->n && key_cmp(x, i, pfx, k, klen) == 0)
			i++;
		if (x->u.kid[i]->n == MT_FAN) {
			if (split(m, x, i))
				return -ENOMEM;
			if (key_cmp(x, i, pfx, k, klen) <= 0)
				i++;
		}
		x = x->u.kid[i];
	}
	leaf_insert(m, x, lower(x, pfx, k, klen), pfx, kc, klen, v);
	return 0;
}

int sb_mt_put(sb_mt *m, const void *key, size_t klen, const sb_mt_val *v)
{
	int rc;

	if (!klen || klen > SB_KEY_MAX)
		return -EINVAL;
	pthread_rwlock_wrlock(&m->lock);
	rc = put_locked(m, key, klen, v);
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

int sb_mt_delete(sb_mt *m, const void *key, size_t klen)
{
	int rc = -ENOENT, i;

	if (!klen || klen > SB_KEY_MAX)
		return -ENOENT;
	pthread_rwlock_wrlock(&m->lock);
	if (m->root) {
		uint64_t pfx = key_prefix(key, klen);
		mt_node *l = find_leaf(m, pfx, key, klen, &i);
		if (i < l->n && key_cmp(l, i, pfx, key, klen) == 0 && !(l->u.val[i].flags & MT_GONE)) {
			l->u.val[i].flags |= MT_GONE;
			atomic_fetch_sub_explicit(&m->count, 1, memory_order_relaxed);
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

int sb_mt_get(const sb_mt *m, const void *key, size_t klen, sb_mt_val *v)
{
	sb_mt *w = (sb_mt *)m; /* the lock only */
	int rc = -ENOENT, i;

	if (!klen || klen > SB_KEY_MAX)
		return -ENOENT;
	pthread_rwlock_rdlock(&w->lock);
	if (m->root) {
		uint64_t pfx = key_prefix(key, klen);
		const mt_node *l = find_leaf(m, pfx, key, klen, &i);
		if (i < l->n && key_cmp(l, i, pfx, key, klen) == 0 && !(l->u.val[i].flags & MT_GONE)) {
			*v = l->u.val[i];
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&w->lock);
	return rc;
}

/*
 * Position it at the first present key >= key (after: > key). Descends
 * remembering, at each level, the separator just above the path, so that
 * the end of a leaf continues from there.
 */
static void seek_locked(const sb_mt *m, const uint8_t *k, size_t kl, int after, sb_mt_iter *it)
{
	uint64_t pfx = kl ? key_prefix(k, kl) : 0;

	it->valid = 0;
	for (;;) {
		const mt_node *x = m->root, *bound = NULL;
		int bi = 0, i;
		if (!x)
			return;
		while (!x->leaf) {
			i = kl ? lower(x, pfx, k, kl) : 0;
			if (kl && i < x->n && key_cmp(x, i, pfx, k, kl) == 0)
				i++;
			if (i < x->n)
				bound = x, bi = i;
			x = x->u.kid[i];
		}
		i = kl ? lower(x, pfx, k, kl) : 0;
		if (after && kl && i < x->n && key_cmp(x, i, pfx, k, kl) == 0)
			i++;
		for (; i < x->n; i++) {
			if (!(x->u.val[i].flags & MT_GONE)) {
				it->key = x->key[i];
				it->klen = x->klen[i];
				it->val = x->u.val[i];
				it->valid = 1;
				it->leaf = x;
				it->at = i;
				it->gen = m->gen;
				return;
			}
		}
		if (!bound)
			return;
		/* Past this leaf: from the separator above it on (the first
		 * key of the next leaf, inclusive). */
		k = bound->key[bi];
		kl = bound->klen[bi];
		pfx = bound->pfx[bi];
		after = 0;
	}
}

void sb_mt_seek(const sb_mt *m, const void *key, size_t klen, sb_mt_iter *it)
{
	sb_mt *w = (sb_mt *)m;

	it->m = m;
	pthread_rwlock_rdlock(&w->lock);
	seek_locked(m, key, klen, 0, it);
	pthread_rwlock_unlock(&w->lock);
}

int sb_mt_iter_valid(const sb_mt_iter *it)
{
	return it->valid;
}

/* The next present entry after the iterator's, along the leaves: no entry
 * moved since it got there (no new key put). */
static void step_locked(sb_mt_iter *it)
{
	const mt_node *x = it->leaf;
	int i = it->at + 1;

	for (; x; x = x->next, i = 0) {
		for (; i < x->n; i++) {
			if (!(x->u.val[i].flags & MT_GONE)) {
				it->key = x->key[i];
				it->klen = x->klen[i];
				it->val = x->u.val[i];
				it->leaf = x;
				it->at = i;
				return;
			}
		}
	}
	it->valid = 0;
}

void sb_mt_iter_next(sb_mt_iter *it)
{
	sb_mt *w = (sb_mt *)it->m;

	pthread_rwlock_rdlock(&w->lock);
	if (it->valid && it->gen == w->gen)
		step_locked(it);
	else
		seek_locked(it->m, it->key, it->klen, 1, it);
	pthread_rwlock_unlock(&w->lock);
}

const uint8_t *sb_mt_iter_key(const sb_mt_iter *it, size_t *klen)
{
	*klen = it->klen;
	return it->key;
}

void sb_mt_iter_val(const sb_mt_iter *it, sb_mt_val *v)
{
	*v = it->val;
}

/* ---- streambus bench keys (sb_store.h) ------------------------------------ */

int sb_bench_memtable_new(sb_bench_memtable **out)
{
	return sb_mt_new((sb_mt **)out);
}

int sb_bench_memtable_put(sb_bench_memtable *m, const void *key, size_t klen, uint64_t offset)
{
	sb_mt_val v = {.offset = offset};
	return sb_mt_put((sb_mt *)m, key, klen, &v);
}

int sb_bench_memtable_get(const sb_bench_memtable *m, const void *key, size_t klen, uint64_t *offset)
{
	sb_mt_val v;
	int rc = sb_mt_get((const sb_mt *)m, key, klen, &v);
	if (!rc)
		*offset = v.offset;
	return rc;
}

size_t sb_bench_memtable_bytes(const sb_bench_memtable *m)
{
	return sb_mt_bytes((const sb_mt *)m);
}

void sb_bench_memtable_free(sb_bench_memtable *m)
{
	sb_mt_free((sb_mt *)m);
}
