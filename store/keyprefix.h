/*
 * keyprefix.h - a key's first 8 bytes as a number that orders as the key
 * does: big-endian, zeros after a shorter key. Where two keys' prefixes
 * differ they compare as their prefixes; where they tie, the whole keys
 * decide. Used by the key runs, tables, merges and MemTable views.
 */
#ifndef SB_KEYPREFIX_H
#define SB_KEYPREFIX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t sb_key_prefix(const uint8_t *k, size_t kl)
{
	uint64_t x = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (kl >= 8) {
		memcpy(&x, k, 8);
		return __builtin_bswap64(x);
	}
#endif
	for (size_t i = 0; i < kl && i < 8; i++)
		x |= (uint64_t)k[i] << (56 - 8 * i);
	return x;
}

#endif
