/*
 * memtable_impl.h - the MemTable's insides, shared by store/memtable.c (the
 * hash index, the arena, put, get, delete) and store/memtable_view.c (the
 * sorted view and iteration). memtable.c says how it works.
 */
#ifndef SB_MEMTABLE_IMPL_H
#define SB_MEMTABLE_IMPL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "memtable.h"

#define MT_GONE 0x8000u          /* flags: deleted */

/* A handle: the chunk's number (12 bits: 4,096 chunks, 16 GiB) and the
 * entry's byte offset in the chunk / 8 (20 bits: chunks up to 8 MiB). Never
 * 0: an entry lies after its chunk's header. */
#define MT_HOFF_BITS 20

typedef struct mt_ent {
	_Atomic uint32_t seq;          /* value seqlock: odd while written */
	_Atomic uint16_t flags;        /* SB_MT_* and MT_GONE */
	uint16_t klen;                 /* set before the entry is published */
	_Atomic uint32_t newer;        /* the entry made after this one: handle */
	_Atomic uint32_t size;
	_Atomic uint64_t offset;
	_Atomic int64_t ts;
	uint8_t key[];
} mt_ent;

/* A slot: 0 (empty: the end of a probe), or the key hash's top 32 bits
 * above its entry's handle. 8 bytes: eight slots a cache line. */
typedef _Atomic uint64_t mt_slot;

typedef struct mt_index {
	struct mt_index *older;        /* retired before it: freed at clear */
	size_t mask;                   /* slots - 1 */
	unsigned shift;                /* home = hash >> shift (32 - log2 slots) */
	mt_slot *slot;
	uint8_t *full;                 /* [writer] a bit a slot: full; NULL once retired */
} mt_index;

typedef struct mt_vent {
	uint64_t pfx;                  /* the key's first 8 bytes, big-endian */
	const mt_ent *e;
} mt_vent;

struct mt_chunk {
	uint32_t cap, used, id, pad_;
	_Alignas(16) unsigned char data[];
};

/* The chunk table: chunk number -> chunk. The writer fills entries past
 * those in use; a full one is copied into one twice its size, published
 * (release), the old one kept until clear. */
typedef struct mt_cvec {
	struct mt_cvec *older;
	uint32_t cap;
	struct mt_chunk *c[];
} mt_cvec;

/* A block of memory a cleared table kept (memtable.c: mem_get). */
typedef struct mt_spare {
	void *p;
	size_t n;
} mt_spare;

struct sb_mt {
	_Atomic(mt_index *) idx;       /* [writer; readers acquire] */
	_Atomic(mt_cvec *) cv;         /* [writer; readers after a slot or link] */
	size_t used;                   /* [writer] slots filled in idx */
	_Atomic size_t count;          /* keys present */
	_Atomic size_t bytes;          /* [writer] memory held, but the view's */
	_Atomic size_t vbytes;         /* [vlock] the view's */
	uint64_t seed;                 /* of the hash */
	struct mt_chunk *cur;          /* [writer] the chunk entries go to */
	uint32_t nchunks;              /* [writer] chunks in cv */
	size_t arena;                  /* [writer] chunk bytes mapped */
	_Atomic uint32_t first;        /* [writer; readers acquire] oldest entry */
	mt_ent *last;                  /* [writer] newest entry */
	_Atomic size_t nents;          /* [writer; readers acquire] entries made */
	size_t keep;                   /* [writer] bound of spare_bytes (sb_mt_keep) */
	mt_spare *spare;               /* [writer] blocks kept for the next fill */
	size_t nspare, spare_cap, spare_bytes; /* [writer] */
	uint64_t fresh;                /* [writer] blocks taken from the system */
	int no_view;                   /* tests: views cannot be built */
	int test_yield;                /* tests: grow yields the CPU as it goes */
	pthread_rwlock_t vlock;
	mt_vent *view;                 /* [vlock] entries up to vlast, sorted */
	size_t vn, vcap;               /* [vlock] */
	const mt_ent *vlast;           /* [vlock] the newest entry in the view */
	uint64_t vgen;                 /* [vlock] views built (from 1) */
};

static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The entry a handle names. Read the chunk table after the acquire that
 * gave the handle (a slot, a link, `first`): the table then names the
 * handle's chunk. Acquire: the table read may be a newer one than that
 * (published since), whole too. */
static inline mt_ent *ent_at(const sb_mt *m, uint32_t h)
{
	const mt_cvec *cv = atomic_load_explicit(&m->cv, memory_order_acquire);
	size_t at = (size_t)(h & ((1u << MT_HOFF_BITS) - 1)) << 3;

	return (mt_ent *)((unsigned char *)cv->c[h >> MT_HOFF_BITS] + at);
}

/* e's value as one write left it; its flags with MT_GONE. */
static inline uint32_t ent_get(const mt_ent *e, sb_mt_val *v)
{
	for (unsigned spins = 0;;) {
		uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire), f;
		if (s & 1) {
			if (++spins > 100)
				sched_yield(); /* the writer was preempted mid-write */
			continue;
		}
		/* acquire: the second read of seq comes after these (a field
		 * a write changed then shows it odd or moved on); no fence,
		 * and on x86 plain loads */
		v->offset = atomic_load_explicit(&e->offset, memory_order_acquire);
		v->ts = atomic_load_explicit(&e->ts, memory_order_acquire);
		v->size = atomic_load_explicit(&e->size, memory_order_acquire);
		f = atomic_load_explicit(&e->flags, memory_order_acquire);
		if (atomic_load_explicit(&e->seq, memory_order_relaxed) == s) {
			v->flags = (uint16_t)(f & ~MT_GONE);
			v->pos = 0; /* not kept here */
			return f;
		}
	}
}

/* The feed: the oldest entry, the one made after e; NULL at its end.
 * [readers: up to the entries made that they acquired] */
static inline const mt_ent *feed_first(const sb_mt *m)
{
	uint32_t h = atomic_load_explicit(&m->first, memory_order_acquire);
	return h ? ent_at(m, h) : NULL;
}

static inline const mt_ent *feed_next(const sb_mt *m, const mt_ent *e)
{
	uint32_t h = atomic_load_explicit(&e->newer, memory_order_acquire);
	return h ? ent_at(m, h) : NULL;
}

#endif
