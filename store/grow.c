/*
 * grow.c - an array that grows without moving under a reader (grow.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "grow.h"

int sb_grow_init(sb_grow *g, size_t esize, size_t cap, size_t small_max)
{
	memset(g, 0, sizeof(*g));
	g->esize = esize;
	g->cap = cap < 1 ? 1 : cap;
	g->small_cap = g->cap < small_max ? g->cap : small_max;
	g->small = calloc(g->small_cap, esize);
	if (!g->small)
		return -ENOMEM;
	atomic_init(&g->e, g->small);
	return 0;
}

int sb_grow_reserve(sb_grow *g, size_t need, size_t n)
{
	if (need > g->cap)
		return -ENOSPC;
	if (need <= g->small_cap || g->map)
		return 0;
	size_t bytes = (g->cap * g->esize + 4095) & ~(size_t)4095;
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	memcpy(m, g->small, n * g->esize);
	g->map = m;
	g->map_bytes = bytes;
	atomic_store_explicit(&g->e, m, memory_order_release);
	return 0;
}

void sb_grow_fini(sb_grow *g)
{
	if (g->map)
		munmap(g->map, g->map_bytes);
	free(g->small);
	g->map = g->small = NULL;
}
