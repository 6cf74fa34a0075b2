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
 * Memory (sb_mt_bytes): arena bytes used, index slots (retired ones too),
 * the current index's bitmap, the chunk table and the view. Beside it,
 * what clear kept for the next fill (sb_mt_keep): blocks of the sizes it
 * freed, taken again for a request of the same size (a fill asks for the
 * same sizes in the same order: chunks growing to MT_CHUNK_MAX, indexes
 * 4x each), zeroed where they must be (slots, bitmaps).
 *
 * Layout. Every key has one entry in the arena (a 32-byte header, then the
 * key bytes) from its first put until clear: a delete marks it MT_GONE, a
 * put again revives it. Arena chunks are named by a 32-bit handle (the
 * chunk's number in the chunk table, the entry's place in it / 8). The
 * index is an open-addressing table (linear probing, at most 3/4 full) of
 * 8-byte slots {the key hash's top 32 bits, the entry's handle}; a key's
 * home slot is the top bits of its hash, so the slots of a table are in
 * the order of their hashes, and growing reads the old table in order and
 * writes the new one (four times the size) nearly in order, from the
 * slots alone: no entry is read and no key hashed again, and the hardware
 * reads both tables ahead (a table that grew by re-hashing its keys cost a
 * cache miss per key and growth, about half of a put at 1,000,000 keys).
 * It grows 4x (MT_GROW): 2/3 as many keys moved as growing 2x, and a
 * table between 3/16 and 3/4 full finds a new key's free slot at the
 * first try more often (docs/BENCHMARKS.md has the figures); the slots
 * held, retired ones counted, are 1.8 to 7.1 a key (2.7 to 5.3 growing
 * 2x). The new table is published; the old one stays until clear, for
 * readers still inside it. A probe compares the slot's 32 hash bits
 * before it reads an entry. The writer keeps beside the current index a
 * bitmap of its full slots (1/64 of the slots' size: 512 KiB at 1M keys,
 * in the L2 cache where the slots are not), rebuilt by growth: a put of a
 * new key whose home slot is free only stores to the slots, where a load
 * would wait for a cache miss (wprobe). Entries are linked in the order they were
 * made (`newer`, a handle), the feed of the sorted view. Arrays and arena chunks from 2 MiB
 * on are mapped with huge pages (madvise), which saves a TLB miss per
 * random access.
 *
 * Threads: one writer (put, delete, clear: the caller serializes them),
 * readers lock-free for get: a slot is published (release) after its entry
 * is whole and its chunk is in the chunk table (a reader reads the table
 * after the slot, acquire: it holds the chunk; a grown chunk table is
 * published whole and the old one kept, as indexes are), and an entry's
 * value is read under its seqlock (`seq`, odd while the writer changes it;
 * every field an atomic). On x86 none of this costs a locked instruction
 * or a fence: a get is plain loads. The view is under `vlock` (rwlock): a
 * seek that finds new entries builds it (exclusive), steps read it
 * (shared). An iterator keeps its index in the view while the view's
 * generation holds, and otherwise finds its key again (binary search).
 * The view and iteration: memtable_view.c; the structs: memtable_impl.h.
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
#include "memtable_impl.h"
#include "sb_store.h"

#define MT_SLOTS0 16u            /* slots of a new table */
#define MT_SLOTS_MAX (1ull << 31) /* a home is 32 hash bits' top bits */
#define MT_GROW 2                /* a full index grows to 4x its slots */
#define MT_CHUNK0 4096u          /* the first arena chunk */
#define MT_CHUNK_MAX (4u << 20)  /* arena chunks grow to this */
#define MT_HUGE (2u << 20)       /* from this size on: mapped, huge pages */
#define MT_CVEC0 4u              /* chunk table entries, at first */

#define MT_CHUNKS_MAX (1u << (32 - MT_HOFF_BITS)) /* chunk numbers in a handle */

/* ---- keys ------------------------------------------------------------------- */

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

/* A 32-bit hash of the key (multiply-fold, as wyhash, its top half), with
 * the table's seed. */
static inline uint32_t key_hash(uint64_t seed, const uint8_t *k, size_t n)
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
	return (uint32_t)(mix(H1 ^ n, mix(a ^ H2, b ^ s)) >> 32);
}

static inline int key_eq(const mt_ent *e, const uint8_t *k, size_t n)
{
	if (e->klen != n)
		return 0;
	if (n < 8 || n > 64)
		return memcmp(e->key, k, n) == 0;
	/* 8..64 bytes: 8-byte words, the last one ending at the key's end */
	uint64_t d = ld64(e->key + n - 8) ^ ld64(k + n - 8);
	for (size_t i = 0; i + 8 < n; i += 8)
		d |= ld64(e->key + i) ^ ld64(k + i);
	return d == 0;
}

static inline void st64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* key_eq's words: 8..64 bytes in 8-byte words, the last one ending at the
 * key's end (no call to memcpy for the usual key). */
static inline void key_copy(uint8_t *d, const uint8_t *k, size_t n)
{
	if (n < 8 || n > 64) {
		memcpy(d, k, n);
		return;
	}
	for (size_t i = 0; i + 8 < n; i += 8)
		st64(d + i, ld64(k + i));
	st64(d + n - 8, ld64(k + n - 8));
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

/* n bytes, zeroed if `zero` (else as their last use left them): a block of
 * exactly n bytes the table kept (mem_put), or new ones (big_alloc). Give
 * them back with mem_put(m, p, n). [writer] */
static void *mem_get(sb_mt *m, size_t n, int zero)
{
	for (size_t i = m->nspare; i-- > 0;) {
		if (m->spare[i].n != n)
			continue;
		void *p = m->spare[i].p;
		m->spare[i] = m->spare[--m->nspare];
		m->spare_bytes -= n;
		if (zero)
			memset(p, 0, n);
		return p;
	}
	m->fresh++;
	return big_alloc(n);
}

/* p (n bytes, from mem_get) kept for the next fill while the kept bytes
 * stay within m->keep, freed otherwise. [writer] */
static void mem_put(sb_mt *m, void *p, size_t n)
{
	if (!p)
		return;
	if (m->spare_bytes + n <= m->keep && m->nspare == m->spare_cap) {
		size_t cap = m->spare_cap ? 2 * m->spare_cap : 32;
		mt_spare *ns = realloc(m->spare, cap * sizeof(*ns));
		if (ns) {
			m->spare = ns;
			m->spare_cap = cap;
		}
	}
	if (m->spare_bytes + n <= m->keep && m->nspare < m->spare_cap) {
		m->spare[m->nspare++] = (mt_spare){p, n};
		m->spare_bytes += n;
		return;
	}
	big_free(p, n);
}

static inline uint32_t ent_handle(const struct mt_chunk *c, const void *e)
{
	return (c->id << MT_HOFF_BITS) | (uint32_t)(((const unsigned char *)e - (const unsigned char *)c) >> 3);
}

/* Number a new chunk: its place in the chunk table (grown and published
 * when full). 0 or -ENOMEM. [writer] */
static int chunk_add(sb_mt *m, struct mt_chunk *nc)
{
	mt_cvec *cv = atomic_load_explicit(&m->cv, memory_order_relaxed);

	if (m->nchunks == MT_CHUNKS_MAX)
		return -ENOMEM;
	if (!cv || m->nchunks == cv->cap) {
		uint32_t cap = cv ? 2 * cv->cap : MT_CVEC0;
		mt_cvec *nv = malloc(sizeof(*nv) + cap * sizeof(nv->c[0]));
		if (!nv)
			return -ENOMEM;
		nv->cap = cap;
		nv->older = cv;
		if (cv)
			memcpy(nv->c, cv->c, m->nchunks * sizeof(nv->c[0]));
		wadd(&m->bytes, sizeof(*nv) + cap * sizeof(nv->c[0]), memory_order_relaxed);
		atomic_store_explicit(&m->cv, nv, memory_order_release);
		cv = nv;
	}
	nc->id = m->nchunks;
	cv->c[m->nchunks++] = nc;
	return 0;
}

/* n bytes (8-aligned) in the arena and their handle. [writer] */
static void *arena_alloc(sb_mt *m, size_t n, uint32_t *hd)
{
	struct mt_chunk *c = m->cur;

	n = (n + 7) & ~(size_t)7;
	if (!c || c->cap - c->used < n) {
		/* Chunks grow from 4 KiB to MT_CHUNK_MAX (sizes with their
		 * header) as the arena does: thousands of topics with few keys
		 * each cost a page or two each. */
		size_t grown = m->arena < MT_CHUNK0 ? MT_CHUNK0 : m->arena < MT_CHUNK_MAX ? m->arena : MT_CHUNK_MAX;
		size_t cap = n > grown / 4 ? n : grown - sizeof(*c);
		struct mt_chunk *nc = mem_get(m, sizeof(*nc) + cap, 0);
		if (!nc)
			return NULL;
		if (chunk_add(m, nc)) {
			mem_put(m, nc, sizeof(*nc) + cap);
			return NULL;
		}
		nc->cap = (uint32_t)cap;
		nc->used = 0;
		m->arena += sizeof(*nc) + cap;
		if (c && cap == n) {
			/* A big key gets a chunk of its own; the current one
			 * stays, its free space in use. */
			nc->used = (uint32_t)n;
			wadd(&m->bytes, n, memory_order_relaxed);
			*hd = ent_handle(nc, nc->data);
			return nc->data;
		}
		m->cur = c = nc;
	}
	void *p = c->data + c->used;
	c->used += (uint32_t)n;
	wadd(&m->bytes, n, memory_order_relaxed);
	*hd = ent_handle(c, p);
	return p;
}

/* The bytes of an index's bitmap of full slots (mt_index.full). */
static inline size_t full_bytes(size_t slots)
{
	return (slots + 7) / 8;
}

static inline int is_full(const uint8_t *f, size_t i)
{
	return (f[i / 8] >> (i % 8)) & 1;
}

/* x's bitmap freed (a retired index keeps its slots only). [writer] */
static void index_retire(sb_mt *m, mt_index *x)
{
	mem_put(m, x->full, full_bytes(x->mask + 1));
	wadd(&m->bytes, (size_t)0 - full_bytes(x->mask + 1), memory_order_relaxed);
	x->full = NULL;
}

static mt_index *index_new(sb_mt *m, size_t slots)
{
	mt_index *x = malloc(sizeof(*x));

	if (!x)
		return NULL;
	if (!(x->slot = mem_get(m, slots * sizeof(mt_slot), 1))) {
		free(x);
		return NULL;
	}
	if (!(x->full = mem_get(m, full_bytes(slots), 1))) {
		mem_put(m, x->slot, slots * sizeof(mt_slot));
		free(x);
		return NULL;
	}
	x->mask = slots - 1;
	x->shift = 32 - (unsigned)__builtin_ctzll(slots);
	x->older = NULL;
	wadd(&m->bytes, sizeof(*x) + slots * sizeof(mt_slot) + full_bytes(slots), memory_order_relaxed);
	return x;
}

/* Everything but the struct, its lock and the memory it keeps (mem_put:
 * up to m->keep bytes): the table is empty (idx NULL). No reader may be
 * inside. */
static void release_all(sb_mt *m)
{
	mt_cvec *cv = atomic_load_explicit(&m->cv, memory_order_relaxed);
	mt_index *x = atomic_load_explicit(&m->idx, memory_order_relaxed);

	for (uint32_t i = 0; i < m->nchunks; i++)
		mem_put(m, cv->c[i], sizeof(*cv->c[i]) + cv->c[i]->cap);
	while (cv) {
		mt_cvec *o = cv->older;
		free(cv);
		cv = o;
	}
	while (x) {
		mt_index *o = x->older;
		mem_put(m, x->full, full_bytes(x->mask + 1));
		mem_put(m, x->slot, (x->mask + 1) * sizeof(mt_slot));
		free(x);
		x = o;
	}
	free(m->view);
	m->cur = NULL;
	m->nchunks = 0;
	m->arena = 0;
	atomic_store_explicit(&m->cv, NULL, memory_order_relaxed);
	atomic_store_explicit(&m->idx, NULL, memory_order_relaxed);
	m->used = 0;
	atomic_store_explicit(&m->first, 0, memory_order_relaxed);
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
	m->keep = 0;
	release_all(m);
	for (size_t i = 0; i < m->nspare; i++)
		big_free(m->spare[i].p, m->spare[i].n);
	free(m->spare);
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

void sb_mt_keep(sb_mt *m, size_t bytes)
{
	m->keep = bytes;
	while (m->spare_bytes > bytes) {
		mt_spare *b = &m->spare[--m->nspare];
		m->spare_bytes -= b->n;
		big_free(b->p, b->n);
	}
}

uint64_t sb_mt_test_fresh(const sb_mt *m)
{
	return m->fresh;
}

void sb_mt_test_no_views(sb_mt *m)
{
	m->no_view = 1;
}

void sb_mt_test_yield_in_grow(sb_mt *m)
{
	m->test_yield = 1;
}

/* ---- values ------------------------------------------------------------------ */

/* Set e's value (and its flags: gone or not). [writer] */
static void ent_set(mt_ent *e, const sb_mt_val *v, uint32_t flags)
{
	uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);

	/* release: seq odd before each field (a reader that reads a
	 * field of this write reads seq odd or moved on after it); on x86
	 * plain stores */
	atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
	atomic_store_explicit(&e->offset, v->offset, memory_order_release);
	atomic_store_explicit(&e->ts, v->ts, memory_order_release);
	atomic_store_explicit(&e->size, v->size, memory_order_release);
	atomic_store_explicit(&e->flags, (uint16_t)flags, memory_order_release);
	atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}

/* ---- put, get, delete -------------------------------------------------------- */

/* The slot of the key in x, or of the empty slot where it would go. */
static inline mt_slot *probe(const sb_mt *m, const mt_index *x, uint32_t h, const uint8_t *k, size_t kl,
			     mt_ent **found)
{
	for (size_t i = h >> x->shift;; i = (i + 1) & x->mask) {
		mt_slot *s = &x->slot[i];
		uint64_t v = atomic_load_explicit(s, memory_order_acquire);
		if (!v) {
			*found = NULL;
			return s;
		}
		if ((uint32_t)(v >> 32) == h) {
			mt_ent *e = ent_at(m, (uint32_t)v);
			if (key_eq(e, k, kl)) {
				*found = e;
				return s;
			}
		}
	}
}

/* The writer's probe: as probe, but the bitmap says which slots are
 * empty, so that a new key whose home is free finds it without a load from
 * the slots (a cache miss from ~100,000 keys on: 95-150 ns here, where the
 * bitmap, 1/64 of the slots, stays in the L2 cache): the put only stores
 * to it. A full slot is read and compared. *at: the slot's number. [writer] */
static inline mt_slot *wprobe(const sb_mt *m, const mt_index *x, uint32_t h, const uint8_t *k, size_t kl,
			      mt_ent **found, size_t *at)
{
	for (size_t i = h >> x->shift;; i = (i + 1) & x->mask) {
		if (!is_full(x->full, i)) {
			*found = NULL;
			*at = i;
			return &x->slot[i];
		}
		uint64_t v = atomic_load_explicit(&x->slot[i], memory_order_relaxed);
		if ((uint32_t)(v >> 32) == h) {
			mt_ent *e = ent_at(m, (uint32_t)v);
			if (key_eq(e, k, kl)) {
				*found = e;
				*at = i;
				return &x->slot[i];
			}
		}
	}
}

/* Four times the slots (MT_GROW), published; the old index retired. The
 * old slots are read in order and land in the new table in order (a home
 * is the hash's top bits): the slots alone say where, no entry is read.
 * [writer] */
static int grow(sb_mt *m, mt_index *x)
{
	size_t n = x->mask + 1;

	if ((n << MT_GROW) > MT_SLOTS_MAX)
		return -ENOMEM;
	mt_index *y = index_new(m, n << MT_GROW);
	if (!y)
		return -ENOMEM;
	/* An empty old slot (0) goes to `sink`, never full: no branch on
	 * whether a slot is empty, which the CPU could not guess (a quarter
	 * to most of them are); in the new table, at most 3/16 full, the
	 * home slot is nearly always free. */
	mt_slot sink = 0, *xs = x->slot, *ys = y->slot;
	uint8_t fsink = 0, *yf = y->full;
	size_t ymask = y->mask;
	unsigned ysh = y->shift;
	int yield = m->test_yield;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = atomic_load_explicit(&xs[i], memory_order_relaxed);
		if (yield && i % 256 == 0)
			sched_yield();
		size_t j = (uint32_t)(v >> 32) >> ysh;
		uintptr_t full = (uintptr_t)0 - (v != 0);
		mt_slot *d = (mt_slot *)(((uintptr_t)&ys[j] & full) | ((uintptr_t)&sink & ~full));
		while (atomic_load_explicit(d, memory_order_relaxed)) {
			j = (j + 1) & ymask;
			d = &ys[j];
		}
		atomic_store_explicit(d, v, memory_order_relaxed);
		uint8_t *fp = (uint8_t *)(((uintptr_t)&yf[j / 8] & full) | ((uintptr_t)&fsink & ~full));
		*fp |= (uint8_t)(1u << (j % 8));
	}
	index_retire(m, x);
	y->older = x;
	atomic_store_explicit(&m->idx, y, memory_order_release);
	return 0;
}

int sb_mt_put(sb_mt *m, const void *key, size_t klen, const sb_mt_val *v)
{
	mt_index *x = atomic_load_explicit(&m->idx, memory_order_relaxed);
	mt_ent *e;
	uint32_t hd;
	size_t at;

	if (!klen || klen > SB_KEY_MAX)
		return -EINVAL;
	if (!x) {
		if (!(x = index_new(m, MT_SLOTS0)))
			return -ENOMEM;
		atomic_store_explicit(&m->idx, x, memory_order_release);
	}
	uint32_t h = key_hash(m->seed, key, klen);
	mt_slot *s = wprobe(m, x, h, key, klen, &e, &at);
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
		s = wprobe(m, x, h, key, klen, &e, &at);
	}
	if (!(e = arena_alloc(m, sizeof(*e) + klen, &hd)))
		return -ENOMEM;
	atomic_init(&e->seq, 0);
	atomic_init(&e->flags, (uint16_t)(v->flags & ~MT_GONE));
	atomic_init(&e->offset, v->offset);
	atomic_init(&e->ts, v->ts);
	atomic_init(&e->size, v->size);
	e->klen = (uint16_t)klen;
	atomic_init(&e->newer, 0);
	key_copy(e->key, key, klen);
	/* the feed, then the index (both publish the whole entry) */
	if (m->last)
		atomic_store_explicit(&m->last->newer, hd, memory_order_release);
	else
		atomic_store_explicit(&m->first, hd, memory_order_release);
	m->last = e;
	wadd(&m->nents, 1, memory_order_release);
	atomic_store_explicit(s, (uint64_t)h << 32 | hd, memory_order_release);
	x->full[at / 8] |= (uint8_t)(1u << (at % 8));
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
	probe(m, x, key_hash(m->seed, key, klen), key, klen, &e);
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

void sb_bench_memtable_clear(sb_bench_memtable *m, size_t keep)
{
	sb_mt_keep((sb_mt *)m, keep);
	sb_mt_clear((sb_mt *)m);
}

void sb_bench_memtable_free(sb_bench_memtable *m)
{
	sb_mt_free((sb_mt *)m);
}
