/*
 * util_keytable.h - key table files changed by hand (format.h, "Key
 * table"), for the unit tests (test_store_ktcheck.c) and the fuzz targets
 * (tests/fuzz/fuzz_keytable.c): what a table whose CRCs all agree, but
 * whose contents do not, does to a reader.
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

#endif
