/*
 * fuzz_timeindex - the time index loader's parser (store/timeindex.c
 * sb_tindex_parse) and the parser of moments (sb_time_parse).
 *
 * Input: byte 0 mode. Bit 1 set: the rest is a moment (as .since/TIME and
 * dump --since take it), parsed against a fixed now. Else: u64 moment to
 * seek, then a .tix file, parsed with the base and covered length its own
 * header names; bit 0 sets its version to this one's and recomputes its
 * header and entries CRCs first, so that
 * what lies behind them is explored.
 *
 * Properties: no crash or sanitizer report. A time index the parser
 * accepts has strictly increasing entries, each before the open interval
 * and not above the largest timestamp, and sb_tindex_find agrees with a
 * scan of its entries. A moment parsed is untouched on failure; a relative
 * one is never after now.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "sb_store.h"
#include "timeindex.h"
#include "util.h"

#define NOW 1795946400000000000LL

static void check_time(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);
	int64_t t = 42;

	if (!s)
		return;
	memcpy(s, d, n);
	s[n] = 0;
	int rc = sb_time_parse(s, NOW, &t);
	FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE, "time parse gave %d", rc);
	if (rc)
		FZ_CHECK(t == 42, "out-parameter touched on failure");
	else if (s[0] == '-')
		FZ_CHECK(t <= NOW, "a relative moment after now");
	free(s);
}

static void check_tix(int forge, uint64_t q64, const uint8_t *d, size_t n)
{
	uint8_t *f = malloc(n ? n : 1);
	sb_tindex *t = NULL;

	if (!f)
		return;
	memcpy(f, d, n);
	uint64_t base = n >= SB_TIX_AT_BASE + 8 ? sb_get64(f + SB_TIX_AT_BASE) : 0;
	uint32_t seg_len = n >= SB_TIX_AT_SEG_LEN + 4 ? sb_get32(f + SB_TIX_AT_SEG_LEN) : 0;
	if (forge && n >= SB_TIX_HDR) {
		sb_put16(f + SB_FH_VERSION, SB_FORMAT_VERSION);
		sb_put32(f + SB_TIX_AT_ECRC, sb_crc32c(0, f + SB_TIX_HDR, n - SB_TIX_HDR));
		sb_put32(f + SB_TIX_AT_CRC, sb_crc32c(0, f, SB_TIX_AT_CRC));
	}
	if (sb_tindex_parse(f, n, base, seg_len, 64, &t) == 0) {
		size_t cnt = sb_tindex_count(t);
		int64_t max = sb_tindex_max(t), q = (int64_t)q64;
		uint32_t open = sb_tindex_open_start(t), rel = 0;
		sb_tix_entry e, prev = {0};
		size_t first = cnt;
		for (size_t i = 0; i < cnt; i++) {
			FZ_CHECK(sb_tindex_at(t, i, &e) == 0, "entry %zu missing", i);
			FZ_CHECK(!i || (e.ts > prev.ts && e.rel > prev.rel), "entries not increasing");
			FZ_CHECK(e.rel < open && e.ts <= max, "entry %zu past the open interval or the max", i);
			if (first == cnt && e.ts >= q)
				first = i;
			prev = e;
		}
		int rc = sb_tindex_find(t, q, &rel);
		if (max < q) {
			FZ_CHECK(rc == -ENOENT, "found a moment above the largest timestamp");
		} else {
			FZ_CHECK(rc == 0, "did not find a moment at or below the largest timestamp");
			if (first < cnt)
				FZ_CHECK(sb_tindex_at(t, first, &e) == 0 && rel == e.rel, "find disagrees with a scan");
			else
				FZ_CHECK(rel == open, "find did not give the open interval");
		}
		sb_tindex_free(t);
	}
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 1)
		return 0;
	if (d[0] & 2) {
		check_time(d + 1, n - 1);
		return 0;
	}
	if (n < 9)
		return 0;
	check_tix(d[0] & 1, sb_get64(d + 1), d + 9, n - 9);
	return 0;
}
