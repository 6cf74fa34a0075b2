/*
 * memtable.c - the MemTable: a skiplist in an arena, one writer and
 * lock-free readers (memtable.h).
 *
 * Why a skiplist: it changes only pointers, each published with one
 * release store, so readers beside the writer take no lock at all. A
 * B+tree (fanout 32, the same key compare; `streambus bench keys` measures
 * both) needs a lock or optimistic versioning of whole nodes for that,
 * since an insert shifts keys inside a node, but it was faster here: at
 * 100,000 random keys the skiplist's get and put cost several times the
 * B+tree's (a cache miss per level and node; see docs/BENCHMARKS or the
 * issue's note for the figures). Every node keeps the first 8 key bytes as
 * a big-endian integer: most compares are one integer compare.
 *
 * Publication: the writer fills a node, then links it bottom level first
 * with release stores; readers follow links with acquire loads. Nodes are
 * never freed or reused before clear, so a reader standing on a node that
 * a delete unlinked still finds the rest of the list through it. A value
 * replaced in place is guarded by the node's sequence counter (odd while
 * being written): readers retry until they read it between two equal even
 * counts. All shared fields are atomics, so ThreadSanitizer sees no race.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "memtable.h"
#include "sb_store.h"

#define MT_MAX_HEIGHT 20
#define MT_CHUNK (256u * 1024)

struct mt_node {
	uint64_t prefix;            /* key bytes [0,8) big-endian, zero padded */
	uint16_t klen;
	uint8_t height;
	_Atomic uint32_t seq;       /* odd while the value is being replaced */
	_Atomic uint64_t off;
	_Atomic int64_t ts;
	_Atomic uint32_t size;
	_Atomic uint32_t flags;
	_Atomic(struct mt_node *) next[]; /* height links, then the key bytes */
};

struct mt_chunk {
	struct mt_chunk *prev;
	size_t cap, used;
	_Alignas(16) unsigned char data[];
};

struct sb_mt {
	struct mt_node *head;       /* MT_MAX_HEIGHT links, no key */
	_Atomic int height;         /* levels in use, 1.. */
	_Atomic size_t count;       /* keys linked */
	_Atomic size_t bytes;       /* arena bytes used */
	struct mt_chunk *chunks;    /* [writer] newest first */
	uint64_t rng;               /* [writer] */
};

static inline const uint8_t *node_key(const struct mt_node *n)
{
	return (const uint8_t *)&n->next[n->height];
}

static inline uint64_t key_prefix(const uint8_t *k, size_t kl)
{
	uint8_t b[8] = {0};
	uint64_t v;

	memcpy(b, k, kl < 8 ? kl : 8);
	memcpy(&v, b, 8);
	return __builtin_bswap64(v);
}

/* <0, 0, >0 as node n's key is below, equal to, above (pfx, k, kl). */
static inline int node_cmp(const struct mt_node *n, uint64_t pfx, const uint8_t *k, size_t kl)
{
	if (n->prefix != pfx)
		return n->prefix < pfx ? -1 : 1;
	size_t nl = n->klen, m = nl < kl ? nl : kl;
	if (m > 8) {
		int c = memcmp(node_key(n) + 8, k + 8, m - 8);
		if (c)
			return c;
	}
	return (nl > kl) - (nl < kl);
}

static void *arena_alloc(sb_mt *m, size_t n)
{
	struct mt_chunk *c = m->chunks;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		/* Chunks grow from 4 KiB to MT_CHUNK: thousands of topics with
		 * few keys each cost a page each. */
		size_t grown = c ? (c->cap < MT_CHUNK ? c->cap * 2 : MT_CHUNK) : 4096;
		size_t cap = n > grown / 4 ? n : grown;
		struct mt_chunk *nc = malloc(sizeof(*nc) + cap);
		if (!nc)
			return NULL;
		nc->cap = cap;
		nc->used = 0;
		if (c && cap != grown) {
			/* A big node gets a chunk of its own, kept behind the
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

static int init_head(sb_mt *m)
{
	m->head = arena_alloc(m, sizeof(struct mt_node) + MT_MAX_HEIGHT * sizeof(m->head->next[0]));
	if (!m->head)
		return -ENOMEM;
	memset(m->head, 0, sizeof(struct mt_node));
	m->head->height = MT_MAX_HEIGHT;
	for (int i = 0; i < MT_MAX_HEIGHT; i++)
		atomic_init(&m->head->next[i], NULL);
	atomic_store_explicit(&m->height, 1, memory_order_relaxed);
	atomic_store_explicit(&m->count, 0, memory_order_relaxed);
	return 0;
}

int sb_mt_new(sb_mt **out)
{
	sb_mt *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->rng = 0x9e3779b97f4a7c15ull ^ (uintptr_t)m;
	if (init_head(m)) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void sb_mt_free(sb_mt *m)
{
	if (!m)
		return;
	arena_free(m);
	free(m);
}

void sb_mt_clear(sb_mt *m)
{
	arena_free(m);
	atomic_store_explicit(&m->bytes, 0, memory_order_relaxed);
	/* The first chunk is small enough to come from anywhere; a failure
	 * here leaves head NULL, which put reports as -ENOMEM. */
	if (init_head(m))
		m->head = NULL;
}

size_t sb_mt_count(const sb_mt *m)
{
	return atomic_load_explicit(&m->count, memory_order_relaxed);
}

size_t sb_mt_bytes(const sb_mt *m)
{
	return atomic_load_explicit(&m->bytes, memory_order_relaxed);
}

static int random_height(sb_mt *m)
{
	uint64_t x = m->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->rng = x;
	int h = 1;
	while (h < MT_MAX_HEIGHT && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

/* The first node >= key; preds (if given) gets the last node < key at
 * every level. */
static struct mt_node *find_ge(const sb_mt *m, uint64_t pfx, const uint8_t *k, size_t kl,
			       struct mt_node **preds)
{
	struct mt_node *x = m->head, *nx = NULL;

	for (int lvl = atomic_load_explicit(&m->height, memory_order_relaxed) - 1; lvl >= 0; lvl--) {
		for (;;) {
			nx = atomic_load_explicit(&x->next[lvl], memory_order_acquire);
			if (!nx || node_cmp(nx, pfx, k, kl) >= 0)
				break;
			x = nx;
		}
		if (preds)
			preds[lvl] = x;
	}
	return nx;
}

static void val_read(const struct mt_node *n, sb_mt_val *v)
{
	struct mt_node *w = (struct mt_node *)n; /* atomics are read only */
	uint32_t s1, s2;

	do {
		s1 = atomic_load_explicit(&w->seq, memory_order_acquire);
		v->offset = atomic_load_explicit(&w->off, memory_order_relaxed);
		v->ts = atomic_load_explicit(&w->ts, memory_order_relaxed);
		v->size = atomic_load_explicit(&w->size, memory_order_relaxed);
		v->flags = (uint16_t)atomic_load_explicit(&w->flags, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&w->seq, memory_order_relaxed);
	} while ((s1 & 1) || s1 != s2);
}

static void val_store(struct mt_node *n, const sb_mt_val *v)
{
	atomic_store_explicit(&n->off, v->offset, memory_order_relaxed);
	atomic_store_explicit(&n->ts, v->ts, memory_order_relaxed);
	atomic_store_explicit(&n->size, v->size, memory_order_relaxed);
	atomic_store_explicit(&n->flags, v->flags, memory_order_relaxed);
}

int sb_mt_put(sb_mt *m, const void *key, size_t klen, const sb_mt_val *v)
{
	struct mt_node *preds[MT_MAX_HEIGHT], *n;
	const uint8_t *k = key;
	uint64_t pfx;

	if (!klen || klen > SB_KEY_MAX)
		return -EINVAL;
	if (!m->head)
		return -ENOMEM;
	pfx = key_prefix(k, klen);
	n = find_ge(m, pfx, k, klen, preds);
	if (n && node_cmp(n, pfx, k, klen) == 0) {
		uint32_t s = atomic_load_explicit(&n->seq, memory_order_relaxed);
		atomic_store_explicit(&n->seq, s + 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
		val_store(n, v);
		atomic_store_explicit(&n->seq, s + 2, memory_order_release);
		return 0;
	}
	int h = random_height(m), cur = atomic_load_explicit(&m->height, memory_order_relaxed);
	n = arena_alloc(m, sizeof(*n) + (size_t)h * sizeof(n->next[0]) + klen);
	if (!n)
		return -ENOMEM;
	n->prefix = pfx;
	n->klen = (uint16_t)klen;
	n->height = (uint8_t)h;
	atomic_init(&n->seq, 0);
	atomic_init(&n->off, v->offset);
	atomic_init(&n->ts, v->ts);
	atomic_init(&n->size, v->size);
	atomic_init(&n->flags, v->flags);
	memcpy((uint8_t *)node_key(n), k, klen);
	for (int i = cur; i < h; i++)
		preds[i] = m->head;
	for (int i = 0; i < h; i++)
		atomic_init(&n->next[i], atomic_load_explicit(&preds[i]->next[i], memory_order_relaxed));
	for (int i = 0; i < h; i++)
		atomic_store_explicit(&preds[i]->next[i], n, memory_order_release);
	if (h > cur)
		atomic_store_explicit(&m->height, h, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
	return 0;
}

int sb_mt_delete(sb_mt *m, const void *key, size_t klen)
{
	struct mt_node *preds[MT_MAX_HEIGHT], *n;
	const uint8_t *k = key;

	if (!klen || klen > SB_KEY_MAX || !m->head)
		return -ENOENT;
	uint64_t pfx = key_prefix(k, klen);
	n = find_ge(m, pfx, k, klen, preds);
	if (!n || node_cmp(n, pfx, k, klen) != 0)
		return -ENOENT;
	for (int i = n->height - 1; i >= 0; i--) {
		struct mt_node *nx = atomic_load_explicit(&n->next[i], memory_order_relaxed);
		if (atomic_load_explicit(&preds[i]->next[i], memory_order_relaxed) == n)
			atomic_store_explicit(&preds[i]->next[i], nx, memory_order_release);
	}
	atomic_fetch_sub_explicit(&m->count, 1, memory_order_relaxed);
	return 0;
}

int sb_mt_get(const sb_mt *m, const void *key, size_t klen, sb_mt_val *v)
{
	const uint8_t *k = key;
	struct mt_node *x = m->head;

	if (!klen || klen > SB_KEY_MAX || !x)
		return -ENOENT;
	uint64_t pfx = key_prefix(k, klen);
	for (int lvl = atomic_load_explicit(&m->height, memory_order_relaxed) - 1; lvl >= 0; lvl--) {
		for (;;) {
			struct mt_node *nx = atomic_load_explicit(&x->next[lvl], memory_order_acquire);
			if (!nx)
				break;
			int c = node_cmp(nx, pfx, k, klen);
			if (c == 0) {
				val_read(nx, v);
				return 0;
			}
			if (c > 0)
				break;
			x = nx;
		}
	}
	return -ENOENT;
}

void sb_mt_seek(const sb_mt *m, const void *key, size_t klen, sb_mt_iter *it)
{
	if (!m->head) {
		it->node = NULL;
	} else if (!klen) {
		it->node = atomic_load_explicit(&m->head->next[0], memory_order_acquire);
	} else {
		const uint8_t *k = key;
		it->node = find_ge(m, key_prefix(k, klen), k, klen, NULL);
	}
}

int sb_mt_iter_valid(const sb_mt_iter *it)
{
	return it->node != NULL;
}

void sb_mt_iter_next(sb_mt_iter *it)
{
	struct mt_node *n = (struct mt_node *)it->node;

	it->node = atomic_load_explicit(&n->next[0], memory_order_acquire);
}

const uint8_t *sb_mt_iter_key(const sb_mt_iter *it, size_t *klen)
{
	const struct mt_node *n = it->node;

	*klen = n->klen;
	return node_key(n);
}

void sb_mt_iter_val(const sb_mt_iter *it, sb_mt_val *v)
{
	val_read(it->node, v);
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
