/*
 * bench_main.c - streambus-bench: `streambus bench` with allocation
 * counting (bench_alloc.c built with SB_BENCH_COUNT_ALLOCS replaces malloc,
 * calloc and realloc). A build artifact for measuring, never installed:
 * the installed `streambus` must not interpose the allocator.
 */
#include "bench.h"

int main(int argc, char **argv)
{
	return sb_bench_main(argc, argv);
}
