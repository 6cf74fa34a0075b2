/*
 * sb_time.h - the moments users write (SPEC §2 "Seek by time"), for
 * TOPIC/.since/TIME and `streambus dump --since/--until`. A utility of the
 * store's library with no store in it: the daemon's tree includes it
 * without reaching into the store (which it uses only through a backend).
 */
#ifndef SB_TIME_H
#define SB_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse a moment: ISO 8601 (2026-11-29T10:00:00Z, with a fraction of a
 * second, a numeric zone +01:00 / +0100 / +01, or no zone meaning UTC;
 * 2026-11-29 alone is midnight UTC), @EPOCH seconds with an optional
 * fraction, or a time before now_ns: -90s, -15m, -2h, -7d (a fraction
 * allowed: -1.5h). 0 and *out ns since the epoch, -EINVAL for anything
 * else; *out untouched on failure. A moment outside what ns in an int64
 * hold (the years 1678..2262) is INT64_MIN or INT64_MAX: a bound no
 * record time passes.
 */
int sb_time_parse(const char *s, int64_t now_ns, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
