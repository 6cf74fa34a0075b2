/*
 * util_keytable.h - key table files for the tests: changed by hand
 * (format.h, "Key table"), for the unit tests (test_store_ktcheck.c) and
 * the fuzz targets (tests/fuzz/fuzz_keytable.c): what a table whose CRCs
 * all agree, but whose contents do not, does to a reader; and the table
 * set of a topic directory (test_store_keys.c, util_flog.c,
 * test_store_keyflush_faults.c).
 */
#ifndef UTIL_KEYTABLE_H
#define UTIL_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>

/* Recompute every CRC of the key table file b[0, n) (blocks as its block
 * index names them, where they lie inside the file; the index; the Bloom
 * filter; the footer): a "forged" table. A file too short, or an index or
 * Bloom filter out of bounds, keeps those CRCs as they are. */
void ut_kt_forge(uint8_t *b, size_t n);

/* A key table of a directory: the offsets it covers and its level. */
typedef struct ut_kt_info {
	uint64_t first, last;
	uint32_t level;
} ut_kt_info;
/* The key tables of dir (each opened to read its level), newest (highest
 * offsets) first, up to cap of them into out: their count, or -1 when dir,
 * a table, or more than cap of them, could not be read. */
int ut_kt_list(const char *dir, ut_kt_info *out, int cap);
/* Remove every key table of dir (the next open indexes the log alone):
 * 0, or -1 when dir or a table could not be read or removed. */
int ut_kt_remove_all(const char *dir);

#endif
