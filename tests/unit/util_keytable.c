/*
 * util_keytable.c - see util_keytable.h.
 */
#include "codec.h"
#include "format.h"
#include "keytable.h"
#include "util_keytable.h"

void ut_kt_forge(uint8_t *b, size_t n)
{
	if (n < SB_KT_FOOTER + 12)
		return;
	uint8_t *f = b + n - SB_KT_FOOTER;
	uint64_t body = n - SB_KT_FOOTER, ipos = sb_get64(f + 32), ilen = sb_get32(f + 40);
	uint64_t bpos = sb_get64(f + 48), blen = sb_get32(f + 56);
	if (ipos <= body && ilen <= body - ipos && ilen >= 4) {
		uint64_t nb = sb_get32(b + ipos);
		for (uint64_t i = 0; i < nb && 4 + (i + 1) * 16 <= ilen; i++) {
			const uint8_t *e = b + ipos + 4 + i * 16;
			uint64_t p = sb_get64(e), l = sb_get32(e + 8);
			if (l >= 12 && p <= body && l <= body - p)
				sb_put32(b + p + l - 4, sb_crc32c(0, b + p, l - 4));
		}
		/* the blocks may overlap the index: its CRC after theirs */
		sb_put32(f + 44, sb_crc32c(0, b + ipos, ilen));
	}
	if (bpos <= body && blen <= body - bpos)
		sb_put32(f + 60, sb_crc32c(0, b + bpos, blen));
	sb_put32(f + 68, sb_crc32c(0, f, 68));
}
