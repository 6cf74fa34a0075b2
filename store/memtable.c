/*
 * memtable.c - the MemTable: a hash index over entries kept in an arena,
 * for put and get, and a sorted view of the entries built when an ordered
 * iteration asks for it (memtable.h).
 *
 * Why: a random get or put in an ordered tree costs a cache (and TLB) miss
 * per level; the B+tree this table was (fanout 32, under a rwlock) measured
 * 450-2,600 ns a put or get at 100,000-1,000,000 random keys here, where a
 * hash index costs its slot and its entry. Ordered iteration is rarer (a
 * table flush, a `.keys/` listing): it sorts the keys put since the last
 * view and merges them into it, so a listing beside appends pays for the
 * new keys only (and a merge of the view).
 *
 * Memory (sb_mt_bytes): arena bytes used, index slots (retired ones too)
 * and the view.
 *
 * Layout. Every key has one entry in the arena (header, then the key
 * bytes) from its first put until clear: a delete marks it MT_GONE, a put
 * again revives it. The index is an open-addressing table (linear probing,
 * at most 3/4 full) of 8-byte slots {entry, the hash's top bits}; growing
 * builds a table twice the size (from the feed, keys hashed again) and
 * publishes it; the old one stays until clear, for readers still inside it. Entries are linked in the order they were made (`newer`), the
 * feed of the sorted view. Arrays and arena chunks from 2 MiB on are mapped
 * with huge pages (madvise), which saves a TLB miss per random access.
 *
 * Threads: one writer (put, delete, clear: the caller serializes them),
 * readers lock-free for get: a slot is published (release) after its entry
 * is whole, and an entry's value is read under its seqlock (`seq`, odd while
 * the writer changes it; every field an atomic). The view is under `vlock`
 * (rwlock): a seek that finds new entries builds it (exclusive), steps read
 * it (shared). An iterator keeps its index in the view while the view's
 * generation holds, and otherwise finds its key again (binary search).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "format.h"
#include "memtable.h"
#include "sb_store.h"

#define MT_GONE 0x8000u          /* flags: deleted */
#define MT_SLOTS0 16u            /* slots of a new table */
#define MT_CHUNK0 4096u          /* the first arena chunk */
#define MT_CHUNK_MAX (4u << 20)  /* arena chunks grow to this */
#define MT_HUGE (2u << 20)       /* from this size on: mapped, huge pages */

typedef struct mt_ent {
	_Atomic uint32_t seq;          /* value seqlock: odd while written */
	_Atomic uint16_t flags;        /* SB_MT_* and MT_GONE */
	uint16_t klen;                 /* set before the entry is published */
	_Atomic uint64_t offset;
	_Atomic int64_t ts;
	_Atomic uint32_t size;
	_Atomic(struct mt_ent *) newer; /* the entry made after this one */
	uint8_t key[];
} mt_ent;

/*
 * A slot: 0 (empty: the end of a probe), or an entry's address / 8 in the
 * low SLOT_PTR bits (arena memory lies below 2^47: arena_alloc checks) and
 * the top bits of its key's hash above, so that a probe rarely follows a
 * slot to another key's entry. 8 bytes: eight slots a cache line.
 */
typedef _Atomic uint64_t mt_slot;
#define SLOT_PTR 44

static inline uint64_t slot_of(const mt_ent *e, uint64_t h)
{
	return ((uint64_t)(uintptr_t)e >> 3) | (h >> SLOT_PTR << SLOT_PTR);
}

static inline mt_ent *slot_ent(uint64_t s)
{
	return (mt_ent *)(uintptr_t)((s & ((1ull << SLOT_PTR) - 1)) << 3);
}

typedef struct mt_index {
	struct mt_index *older;        /* retired before it: freed at clear */
	size_t mask;                   /* slots - 1 */
	mt_slot *slot;
} mt_index;

typedef struct mt_vent {
	uint64_t pfx;                  /* the key's first 8 bytes, big-endian */
	const mt_ent *e;
} mt_vent;

struct mt_chunk {
	struct mt_chunk *prev;
	size_t cap, used;
	_Alignas(16) unsigned char data[];
};

struct sb_mt {
	_Atomic(mt_index *) idx;       /* [writer; readers acquire] */
	size_t used;                   /* [writer] slots filled in idx */
	_Atomic size_t count;          /* keys present */
	_Atomic size_t bytes;          /* [writer] memory held, but the view's */
	_Atomic size_t vbytes;         /* [vlock] the view's */
	uint64_t seed;                 /* of the hash */
	struct mt_chunk *chunks;       /* [writer] newest first */
	_Atomic(mt_ent *) first;       /* [writer; readers acquire] oldest entry */
	mt_ent *last;                  /* [writer] newest entry */
	_Atomic size_t nents;          /* [writer; readers acquire] entries made */
	int no_view;                   /* tests: views cannot be built */
	pthread_rwlock_t vlock;
	mt_vent *view;                 /* [vlock] entries up to vlast, sorted */
	size_t vn, vcap;               /* [vlock] */
	const mt_ent *vlast;           /* [vlock] the newest entry in the view */
	uint64_t vgen;                 /* [vlock] views built (from 1) */
};

/* ---- keys ------------------------------------------------------------------- */

static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define H1 0xa0761d6478bd642full
#define H2 0xe7037ed1a0b428dbull
#define H3 0x8ebc6af09c88c6e3ull

/* A 64-bit hash of the key (multiply-fold, as wyhash), with the table's seed. */
static inline uint64_t key_hash(uint64_t seed, const uint8_t *k, size_t n)
{
	uint64_t a, b, s = seed ^ (n * H3);

	if (n <= 16) {
		if (n >= 8) {
			a = ld64(k);
			b = ld64(k + n - 8);
		} else if (n >= 4) {
			a = ld32(k);
			b = ld32(k + n - 4);
		} else {
			a = ((uint64_t)k[0] << 16) | ((uint64_t)k[n >> 1] << 8) | k[n - 1];
			b = 0;
		}
	} else {
		const uint8_t *p = k;
		size_t i = n;
		for (; i > 16; i -= 16, p += 16)
			s = mix(ld64(p) ^ H1, ld64(p + 8) ^ s);
		a = ld64(k + n - 16);
		b = ld64(k + n - 8);
	}
	return mix(H1 ^ n, mix(a ^ H2, b ^ s));
}

static inline int key_eq(const mt_ent *e, const uint8_t *k, size_t n)
{
	if (e->klen != n)
		return 0;
	if (n >= 8 && n <= 16)
		return ld64(e->key) == ld64(k) && ld64(e->key + n - 8) == ld64(k + n - 8);
	return memcmp(e->key, k, n) == 0;
}

static inline uint64_t key_prefix(const uint8_t *k, size_t kl)
{
	uint8_t b[8] = {0};

	memcpy(b, k, kl < 8 ? kl : 8);
	return __builtin_bswap64(ld64(b));
}

/* Keys compare as bytes, a shorter prefix first. */
static int key_cmp(uint64_t pa, const uint8_t *a, size_t al, uint64_t pb, const uint8_t *b, size_t bl)
{
	if (pa != pb)
		return pa < pb ? -1 : 1;
	size_t m = al < bl ? al : bl;
	if (m > 8) {
		int c = memcmp(a + 8, b + 8, m - 8);
		if (c)
			return c;
	}
	return (al > bl) - (al < bl);
}

static int vent_cmp(const void *x, const void *y)
{
	const mt_vent *a = x, *b = y;
	return key_cmp(a->pfx, a->e->key, a->e->klen, b->pfx, b->e->key, b->e->klen);
}

/* ---- memory ------------------------------------------------------------------ */

/* Add d to a counter only the writer changes: a load and a store, no
 * locked instruction on the put path (one would stop the next put's loads
 * from starting before it completes). */
static inline void wadd(_Atomic size_t *c, size_t d, memory_order mo)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d, mo);
}

static size_t big_len(size_t n)
{
	return (n + MT_HUGE - 1) & ~(size_t)(MT_HUGE - 1);
}

/* n zeroed bytes; from MT_HUGE on, mapped at a 2 MiB boundary with huge
 * pages asked for. Free with big_free(p, n). */
static void *big_alloc(size_t n)
{
	if (n < MT_HUGE)
		return calloc(1, n);
	size_t len = big_len(n);
	uint8_t *p = mmap(NULL, len + MT_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint8_t *a = (uint8_t *)(((uintptr_t)p + MT_HUGE - 1) & ~(uintptr_t)(MT_HUGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + len < p + len + MT_HUGE)
		munmap(a + len, (size_t)(p + len + MT_HUGE - (a + len)));
	madvise(a, len, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
	return a;
}

static void big_free(void *p, size_t n)
{
	if (!p)
		return;
	if (n < MT_HUGE)
		free(p);
	else
		munmap(p, big_len(n));
}

static void *arena_alloc(sb_mt *m, size_t n)
{
	struct mt_chunk *c = m->chunks;

	n = (n + 7) & ~(size_t)7;
	if (!c || c->cap - c->used < n) {
		/* Chunks grow from 4 KiB to MT_CHUNK_MAX (sizes with their
		 * header): thousands of topics with few keys each cost a page or
		 * two each. */
		size_t last = c ? sizeof(*c) + c->cap : 0;
		size_t grown = !c ? MT_CHUNK0 : last < MT_CHUNK_MAX ? 2 * last : MT_CHUNK_MAX;
		size_t cap = n > grown / 4 ? n : grown - sizeof(*c);
		struct mt_chunk *nc = big_alloc(sizeof(*nc) + cap);
		if (nc && ((uintptr_t)nc + sizeof(*nc) + cap) >> (SLOT_PTR + 3)) {
			big_free(nc, sizeof(*nc) + cap); /* a slot could not name it */
			nc = NULL;
		}
		if (!nc)
			return NULL;
		nc->cap = cap;
		if (c && cap == n) {
			/* A big key gets a chunk of its own, kept behind the
			 * current one so that its free space stays in use. */
			nc->prev = c->prev;
			c->prev = nc;
			nc->used = n;
			wadd(&m->bytes, n, memory_order_relaxed);
			return nc->data;
		}
		nc->prev = c;
		m->chunks = c = nc;
	}
	void *p = c->data + c->used;
	c->used += n;
	wadd(&m->bytes, n, memory_order_relaxed);
	return p;
}

static mt_index *index_new(sb_mt *m, size_t slots)
{
	mt_index *x = malloc(sizeof(*x));

	if (!x)
		return NULL;
	if (!(x->slot = big_alloc(slots * sizeof(mt_slot)))) {
		free(x);
		return NULL;
	}
	x->mask = slots - 1;
	x->older = NULL;
	wadd(&m->bytes, sizeof(*x) + slots * sizeof(mt_slot), memory_order_relaxed);
	return x;
}

/* Everything but the struct and its lock: the table is empty and holds
 * nothing (idx NULL). No reader may be inside. */
static void release_all(sb_mt *m)
{
	struct mt_chunk *c = m->chunks;
	mt_index *x = atomic_load_explicit(&m->idx, memory_order_relaxed);

	while (c) {
		struct mt_chunk *p = c->prev;
		big_free(c, sizeof(*c) + c->cap);
		c = p;
	}
	while (x) {
		mt_index *o = x->older;
		big_free(x->slot, (x->mask + 1) * sizeof(mt_slot));
		free(x);
		x = o;
	}
	free(m->view);
	m->chunks = NULL;
	atomic_store_explicit(&m->idx, NULL, memory_order_relaxed);
	m->used = 0;
	atomic_store_explicit(&m->first, NULL, memory_order_relaxed);
	m->last = NULL;
	atomic_store_explicit(&m->nents, 0, memory_order_relaxed);
	atomic_store_explicit(&m->count, 0, memory_order_relaxed);
	atomic_store_explicit(&m->bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&m->vbytes, 0, memory_order_relaxed);
	m->view = NULL;
	m->vn = m->vcap = 0;
	m->vlast = NULL;
	m->vgen++;
}

int sb_mt_new(sb_mt **out)
{
	pthread_rwlockattr_t ra;
	struct timespec ts;
	sb_mt *m = calloc(1, sizeof(*m));
	mt_index *x;

	if (!m)
		return -ENOMEM;
	if (!(x = index_new(m, MT_SLOTS0))) {
		free(m);
		return -ENOMEM;
	}
	atomic_store_explicit(&m->idx, x, memory_order_relaxed);
	/* A seed of its own: keys chosen to collide in one table do not in
	 * another. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	m->seed = mix((uint64_t)(uintptr_t)m ^ H3, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ H1);
	m->vgen = 1;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&m->vlock, &ra);
	pthread_rwlockattr_destroy(&ra);
	*out = m;
	return 0;
}

void sb_mt_free(sb_mt *m)
{
	if (!m)
		return;
	release_all(m);
	pthread_rwlock_destroy(&m->vlock);
	free(m);
}

void sb_mt_clear(sb_mt *m)
{
	pthread_rwlock_wrlock(&m->vlock);
	release_all(m);
	/* NULL: the next put tries again, or says -ENOMEM */
	atomic_store_explicit(&m->idx, index_new(m, MT_SLOTS0), memory_order_release);
	pthread_rwlock_unlock(&m->vlock);
}

size_t sb_mt_count(const sb_mt *m)
{
	return atomic_load_explicit(&m->count, memory_order_relaxed);
}

size_t sb_mt_bytes(const sb_mt *m)
{
	return atomic_load_explicit(&m->bytes, memory_order_relaxed) +
	       atomic_load_explicit(&m->vbytes, memory_order_relaxed);
}

void sb_mt_test_no_views(sb_mt *m)
{
	m->no_view = 1;
}

/* ---- values ------------------------------------------------------------------ */

/* Set e's value (and its flags: gone or not). [writer] */
static void ent_set(mt_ent *e, const sb_mt_val *v, uint32_t flags)
{
	uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);

	atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&e->offset, v->offset, memory_order_relaxed);
	atomic_store_explicit(&e->ts, v->ts, memory_order_relaxed);
	atomic_store_explicit(&e->size, v->size, memory_order_relaxed);
	atomic_store_explicit(&e->flags, (uint16_t)flags, memory_order_relaxed);
	atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}

/* e's value as one write left it; its flags with MT_GONE. */
static uint32_t ent_get(const mt_ent *e, sb_mt_val *v)
{
	for (unsigned spins = 0;;) {
		uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire), f;
		if (s & 1) {
			if (++spins > 100)
				sched_yield(); /* the writer was preempted mid-write */
			continue;
		}
		v->offset = atomic_load_explicit(&e->offset, memory_order_relaxed);
		v->ts = atomic_load_explicit(&e->ts, memory_order_relaxed);
		v->size = atomic_load_explicit(&e->size, memory_order_relaxed);
		f = atomic_load_explicit(&e->flags, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->seq, memory_order_relaxed) == s) {
			v->flags = (uint16_t)(f & ~MT_GONE);
			return f;
		}
	}
}

/* ---- put, get, delete -------------------------------------------------------- */

/* The slot of the key in x, or of the empty slot where it would go. */
static inline mt_slot *probe(const mt_index *x, uint64_t h, const uint8_t *k, size_t kl, mt_ent **found)
{
	for (size_t i = h & x->mask;; i = (i + 1) & x->mask) {
		mt_slot *s = &x->slot[i];
		uint64_t v = atomic_load_explicit(s, memory_order_acquire);
		if (!v || ((v ^ h) >> SLOT_PTR == 0 && key_eq(slot_ent(v), k, kl))) {
			*found = slot_ent(v);
			return s;
		}
	}
}

/* Twice the slots, published; the old index retired. Entries go in as
 * they were made (the feed: in arena order, which the hardware reads
 * ahead), their keys hashed again. [writer] */
static int grow(sb_mt *m, mt_index *x)
{
	mt_index *y = index_new(m, 2 * (x->mask + 1));

	if (!y)
		return -ENOMEM;
	for (mt_ent *e = atomic_load_explicit(&m->first, memory_order_relaxed); e;
	     e = atomic_load_explicit(&e->newer, memory_order_relaxed)) {
		uint64_t h = key_hash(m->seed, e->key, e->klen);
		size_t j = h & y->mask;
		while (atomic_load_explicit(&y->slot[j], memory_order_relaxed))
			j = (j + 1) & y->mask;
		atomic_store_explicit(&y->slot[j], slot_of(e, h), memory_order_relaxed);
	}
	y->older = x;
	atomic_store_explicit(&m->idx, y, memory_order_release);
	return 0;
}

int sb_mt_put(sb_mt *m, const void *key, size_t klen, const sb_mt_val *v)
{
	mt_index *x = atomic_load_explicit(&m->idx, memory_order_relaxed);
	mt_ent *e;

	if (!klen || klen > SB_KEY_MAX)
		return -EINVAL;
	if (!x) {
		if (!(x = index_new(m, MT_SLOTS0)))
			return -ENOMEM;
		atomic_store_explicit(&m->idx, x, memory_order_release);
	}
	uint64_t h = key_hash(m->seed, key, klen);
	mt_slot *s = probe(x, h, key, klen, &e);
	if (e) {
		uint32_t f = atomic_load_explicit(&e->flags, memory_order_relaxed);
		if (f & MT_GONE)
			wadd(&m->count, 1, memory_order_relaxed);
		ent_set(e, v, v->flags & ~MT_GONE);
		return 0;
	}
	if (4 * (m->used + 1) > 3 * (x->mask + 1)) {
		if (grow(m, x))
			return -ENOMEM;
		x = atomic_load_explicit(&m->idx, memory_order_relaxed);
		s = probe(x, h, key, klen, &e);
	}
	if (!(e = arena_alloc(m, sizeof(*e) + klen)))
		return -ENOMEM;
	atomic_init(&e->seq, 0);
	atomic_init(&e->flags, (uint16_t)(v->flags & ~MT_GONE));
	atomic_init(&e->offset, v->offset);
	atomic_init(&e->ts, v->ts);
	atomic_init(&e->size, v->size);
	e->klen = (uint16_t)klen;
	atomic_init(&e->newer, NULL);
	memcpy(e->key, key, klen);
	/* the feed, then the index (both publish the whole entry) */
	if (m->last)
		atomic_store_explicit(&m->last->newer, e, memory_order_release);
	else
		atomic_store_explicit(&m->first, e, memory_order_release);
	m->last = e;
	wadd(&m->nents, 1, memory_order_release);
	atomic_store_explicit(s, slot_of(e, h), memory_order_release);
	m->used++;
	wadd(&m->count, 1, memory_order_relaxed);
	return 0;
}

/* The key's entry, present or gone, or NULL. */
static mt_ent *lookup(const sb_mt *m, const void *key, size_t klen)
{
	const mt_index *x = atomic_load_explicit(&m->idx, memory_order_acquire);
	mt_ent *e;

	if (!x || !klen || klen > SB_KEY_MAX)
		return NULL;
	probe(x, key_hash(m->seed, key, klen), key, klen, &e);
	return e;
}

int sb_mt_delete(sb_mt *m, const void *key, size_t klen)
{
	mt_ent *e = lookup(m, key, klen);
	sb_mt_val v;

	if (!e || (ent_get(e, &v) & MT_GONE))
		return -ENOENT;
	ent_set(e, &v, v.flags | MT_GONE);
	wadd(&m->count, (size_t)-1, memory_order_relaxed);
	return 0;
}

int sb_mt_get(const sb_mt *m, const void *key, size_t klen, sb_mt_val *v)
{
	const mt_ent *e = lookup(m, key, klen);
	sb_mt_val r;

	if (!e || (ent_get(e, &r) & MT_GONE))
		return -ENOENT;
	*v = r;
	return 0;
}

/* ---- the sorted view and iteration ------------------------------------------- */

/* Add the entries made since the view was built: sort them, merge them in
 * from the back. 0, or -ENOMEM (the view stays as it was). [vlock excl.] */
static int view_refresh(sb_mt *m)
{
	size_t n = atomic_load_explicit(&m->nents, memory_order_acquire), k = n - m->vn;

	if (!k)
		return 0;
	if (m->no_view)
		return -ENOMEM;
	mt_vent *add = malloc(k * sizeof(*add));
	if (!add)
		return -ENOMEM;
	if (n > m->vcap) {
		size_t cap = n + n / 2;
		mt_vent *nv = realloc(m->view, cap * sizeof(*nv));
		if (!nv) {
			free(add);
			return -ENOMEM;
		}
		atomic_store_explicit(&m->vbytes, cap * sizeof(*nv), memory_order_relaxed);
		m->view = nv;
		m->vcap = cap;
	}
	const mt_ent *e = m->vlast ? atomic_load_explicit(&m->vlast->newer, memory_order_acquire)
				   : atomic_load_explicit(&m->first, memory_order_acquire);
	for (size_t i = 0; i < k; i++) {
		add[i] = (mt_vent){key_prefix(e->key, e->klen), e};
		m->vlast = e;
		if (i + 1 < k)
			e = atomic_load_explicit(&e->newer, memory_order_acquire);
	}
	qsort(add, k, sizeof(*add), vent_cmp);
	size_t i = m->vn, j = k, w = n;
	while (j) {
		if (i && vent_cmp(&m->view[i - 1], &add[j - 1]) > 0)
			m->view[--w] = m->view[--i];
		else
			m->view[--w] = add[--j];
	}
	free(add);
	m->vn = n;
	m->vgen++;
	return 0;
}

/* The first index of the view whose key is >= key (> key: after). [vlock] */
static size_t view_lower(const sb_mt *m, const uint8_t *k, size_t kl, int after)
{
	uint64_t pfx = key_prefix(k, kl);
	size_t lo = 0, hi = m->vn;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const mt_vent *v = &m->view[mid];
		int c = key_cmp(v->pfx, v->e->key, v->e->klen, pfx, k, kl);
		if (c < 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void iter_at(sb_mt_iter *it, const mt_ent *e, const sb_mt_val *v)
{
	it->key = e->key;
	it->klen = e->klen;
	it->val = *v;
	it->valid = 1;
}

/* From view index i on: the first present entry. [vlock] */
static void view_settle(const sb_mt *m, size_t i, sb_mt_iter *it)
{
	sb_mt_val v;

	for (; i < m->vn; i++) {
		const mt_ent *e = m->view[i].e;
		if (!(ent_get(e, &v) & MT_GONE)) {
			iter_at(it, e, &v);
			it->at = i;
			it->gen = m->vgen;
			return;
		}
	}
	it->valid = 0;
}

/* Without a view (no memory for one): the least present key >= key (>:
 * after), by a walk over every entry. */
static void scan_settle(const sb_mt *m, const uint8_t *k, size_t kl, int after, sb_mt_iter *it)
{
	uint64_t pfx = kl ? key_prefix(k, kl) : 0, bp = 0;
	const mt_ent *best = NULL;
	sb_mt_val v, bv = {0};

	for (const mt_ent *e = atomic_load_explicit(&m->first, memory_order_acquire); e;
	     e = atomic_load_explicit(&e->newer, memory_order_acquire)) {
		uint64_t ep = key_prefix(e->key, e->klen);
		int c = kl ? key_cmp(ep, e->key, e->klen, pfx, k, kl) : 1;
		if (c < 0 || (after && c == 0) || (best && key_cmp(ep, e->key, e->klen, bp, best->key, best->klen) >= 0))
			continue;
		if (!(ent_get(e, &v) & MT_GONE))
			best = e, bp = ep, bv = v;
	}
	it->valid = 0;
	if (best)
		iter_at(it, best, &bv);
	it->gen = 0;
}

void sb_mt_seek(const sb_mt *m, const void *key, size_t klen, sb_mt_iter *it)
{
	sb_mt *w = (sb_mt *)m; /* the view is built on demand */
	int fresh = 1;

	it->m = m;
	pthread_rwlock_rdlock(&w->vlock);
	if (atomic_load_explicit(&m->nents, memory_order_acquire) != m->vn) {
		pthread_rwlock_unlock(&w->vlock);
		pthread_rwlock_wrlock(&w->vlock);
		fresh = view_refresh(w) == 0;
	}
	if (fresh)
		view_settle(m, klen ? view_lower(m, key, klen, 0) : 0, it);
	else
		scan_settle(m, key, klen, 0, it);
	pthread_rwlock_unlock(&w->vlock);
}

int sb_mt_iter_valid(const sb_mt_iter *it)
{
	return it->valid;
}

void sb_mt_iter_next(sb_mt_iter *it)
{
	sb_mt *w = (sb_mt *)it->m;

	if (!it->valid)
		return;
	pthread_rwlock_rdlock(&w->vlock);
	if (!it->gen)
		scan_settle(w, it->key, it->klen, 1, it);
	else if (it->gen == w->vgen)
		view_settle(w, it->at + 1, it);
	else /* the view was rebuilt: find its place again */
		view_settle(w, view_lower(w, it->key, it->klen, 1), it);
	pthread_rwlock_unlock(&w->vlock);
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
