/*
 * grow.h - an array of fixed-size entries that grows without moving under
 * a reader (the sparse indexes: index.c, timeindex.c). Lookups, save and
 * load want it contiguous. The first `small_cap` entries live on the heap,
 * so that an index of a few entries (most topics, most sealed segments)
 * costs a few hundred bytes rather than a page of anonymous memory; when
 * that fills up, the appender copies them into an anonymous mapping
 * reserved for `cap` entries (pages are touched only as entries are added)
 * and publishes it before the next count. A reader loads the owner's
 * count, then the array: either array holds the entries below that count.
 * The heap array stays until sb_grow_fini (a reader may still use it).
 */
#ifndef SB_GROW_H
#define SB_GROW_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct sb_grow {
	_Atomic(void *) e;  /* small or map; set by the appender */
	void *small;        /* small_cap entries, heap */
	void *map;          /* NULL until small is full */
	size_t esize, cap, small_cap, map_bytes;
} sb_grow;

/* Room for `cap` (at least 1) entries of esize bytes, the first
 * min(cap, small_max) on the heap: 0 or -ENOMEM. */
int sb_grow_init(sb_grow *g, size_t esize, size_t cap, size_t small_max);
/* Room for `need` entries, the first n of them in use (appender only):
 * 0, -ENOSPC past cap, -ENOMEM. */
int sb_grow_reserve(sb_grow *g, size_t need, size_t n);
void sb_grow_fini(sb_grow *g);

static inline void *sb_grow_entries(const sb_grow *g)
{
	return atomic_load_explicit(&((sb_grow *)g)->e, memory_order_acquire);
}

#endif
