/*
 * bench_alloc.c - count allocations for the benchmarks.
 *
 * Built with SB_BENCH_COUNT_ALLOCS (the benchmark binary streambus-bench
 * only, which is not installed), this file replaces malloc, calloc and
 * realloc in that binary (glibc lets a program interpose them). Each replacement forwards to
 * glibc's own allocator (__libc_malloc etc.), so every pointer still comes
 * from the one glibc heap and glibc's free, posix_memalign, aligned_alloc,
 * memalign and malloc_usable_size, which are not replaced, stay correct for
 * it. Those are not counted, nor are allocations glibc makes internally
 * without going through malloc.
 *
 * Cost outside a benchmark: one relaxed atomic load per call.
 *
 * State: the only process-wide mutable state is `counter` below, the flag
 * that turns counting on and the count itself, both relaxed atomics. A
 * benchmark turns counting on, runs, joins its threads (which orders their
 * increments before the read) and turns it off; allocations of any thread
 * made while it is on are counted, whoever makes them.
 *
 * Because free is not replaced, the binary must run on glibc's allocator:
 * under an LD_PRELOAD allocator free would get pointers it did not make.
 * That is why the installed `streambus` is built without this (its bench
 * reports allocations as not counted).
 *
 * Under AddressSanitizer the sanitizer owns malloc: nothing is replaced and
 * allocations are reported as not counted.
 */
#define SB_BENCH_INTERNAL
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

#if !defined(SB_BENCH_COUNT_ALLOCS)
#define SB_ALLOC_COUNTING 0
#elif defined(__SANITIZE_ADDRESS__)
#define SB_ALLOC_COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define SB_ALLOC_COUNTING 0
#endif
#endif
#ifndef SB_ALLOC_COUNTING
#define SB_ALLOC_COUNTING 1
#endif

static struct {
	atomic_int on;          /* counting enabled */
	atomic_uint_fast64_t n; /* calls counted since the last start */
} counter;

#if SB_ALLOC_COUNTING
#include <stdlib.h>

/* glibc's allocator under its own names. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);

static inline void count_one(void)
{
	if (atomic_load_explicit(&counter.on, memory_order_relaxed))
		atomic_fetch_add_explicit(&counter.n, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
	count_one();
	return __libc_malloc(n);
}

/* glibc checks k * n for overflow (NULL, ENOMEM). */
void *calloc(size_t k, size_t n)
{
	count_one();
	return __libc_calloc(k, n);
}

/* realloc(NULL, n) is a malloc; realloc(p, 0) frees and is not counted. */
void *realloc(void *p, size_t n)
{
	if (!p || n)
		count_one();
	return __libc_realloc(p, n);
}

int sb_bench_alloc_available(void)
{
	return 1;
}
#else
int sb_bench_alloc_available(void)
{
	return 0;
}
#endif

void sb_bench_alloc_start(void)
{
	atomic_store_explicit(&counter.n, 0, memory_order_relaxed);
	atomic_store_explicit(&counter.on, 1, memory_order_relaxed);
}

uint64_t sb_bench_alloc_stop(void)
{
	atomic_store_explicit(&counter.on, 0, memory_order_relaxed);
	return atomic_load_explicit(&counter.n, memory_order_relaxed);
}
