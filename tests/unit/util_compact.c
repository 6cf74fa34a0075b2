/*
 * util_compact.c - see util_compact.h.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "format.h"
#include "log.h"
#include "util_compact.h"

uc_mrec uc_M[UC_MAXREC];
uint64_t uc_MN;
int uc_gone[UC_MAXREC];

size_t uc_mkey(int i, char *buf)
{
	return (size_t)sprintf(buf, "key-%03d", i);
}

sb_log_config uc_cfg(void)
{
	sb_log_config c;
	ut_cfg(&c, 4096, SB_SYNC_NEVER);
	c.cleanup = SB_CLEANUP_COMPACT;
	c.delete_retention_ms = UC_RET_MS;
	c.index_interval_bytes = 512;
	return c;
}

/* Append n random records: keyed (some tombstones) and unkeyed. */
void uc_workload(sb_log *l, uint64_t *seed, unsigned n, int nkeys)
{
	char k[32];
	uint8_t val[300];

	for (unsigned j = 0; j < n && uc_MN < UC_MAXREC; j++) {
		uint64_t off = sb_log_next(l);
		cr_assert_eq(off, uc_MN);
		unsigned r = (unsigned)(ut_rnd(seed) % 100);
		int key = r < 80 ? (int)(ut_rnd(seed) % (uint64_t)nkeys) : -1;
		int tomb = key >= 0 && r < 12;
		uint32_t len = tomb ? 0 : (uint32_t)ut_len(off, 7, 8, 200);
		ut_fill(val, len, off, 7);
		sb_record_in in = {.key = k, .key_len = key >= 0 ? (uint32_t)uc_mkey(key, k) : 0, .value = val,
				   .value_len = len, .flags = tomb ? SB_REC_TOMBSTONE : 0,
				   .timestamp_ns = UC_T0 + (int64_t)off * 1000000};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		uc_M[uc_MN] = (uc_mrec){key, tomb, len, in.timestamp_ns};
		uc_MN++;
	}
}

/* Append n unkeyed records: a segment or two of them after the keyed
 * ones puts those below the compaction's horizon (the newest segment). */
void uc_unkeyed(sb_log *l, unsigned n)
{
	uint8_t val[300];

	for (unsigned j = 0; j < n && uc_MN < UC_MAXREC; j++) {
		uint64_t off = sb_log_next(l);
		uint32_t len = (uint32_t)ut_len(off, 7, 8, 200);
		ut_fill(val, len, off, 7);
		sb_record_in in = {.value = val, .value_len = len, .timestamp_ns = UC_T0 + (int64_t)off * 1000000};
		cr_assert_eq(sb_log_append(l, &in, 1, NULL), 0);
		uc_M[uc_MN++] = (uc_mrec){-1, 0, len, in.timestamp_ns};
	}
}

/* The latest offset of each key in the model (-1: none). */
void uc_latest(int64_t *lat)
{
	for (int i = 0; i < UC_NKEYS; i++)
		lat[i] = -1;
	for (uint64_t o = 0; o < uc_MN; o++)
		if (uc_M[o].key >= 0)
			lat[uc_M[o].key] = (int64_t)o;
}

/* What a compaction at now_ns with that horizon removes (the rule of
 * log_compact.c): a keyed record below the horizon whose key has a later
 * record below the horizon too, or a tombstone, latest, older than the
 * retention. */
void uc_model_compact(const sb_compact_stats *st, int64_t now_ns)
{
	int64_t lat[UC_NKEYS];
	uint64_t horizon = st->horizon;

	uc_latest(lat);
	for (uint64_t o = 0; o < st->end && o < uc_MN; o++) {
		int k = uc_M[o].key;
		if (k < 0 || uc_gone[o])
			continue;
		if ((uint64_t)lat[k] != o && (uint64_t)lat[k] < horizon)
			uc_gone[o] = 1;
		if ((uint64_t)lat[k] == o && uc_M[o].tomb && uc_M[o].ts < now_ns - (int64_t)UC_RET_MS * 1000000)
			uc_gone[o] = 1;
	}
}

/* Everything readable as the model says: records, the stream, keys. */
void uc_check_log(sb_log *l, const char *when)
{
	uint8_t buf[400];
	size_t n;
	sb_record_info info;

	cr_assert_eq(sb_log_next(l), uc_MN, "%s", when);
	for (uint64_t o = 0; o < uc_MN; o++) {
		int rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, &info);
		if (uc_gone[o]) {
			cr_assert_eq(rc, -ENOENT, "%s: offset %llu should be gone: %s", when, (unsigned long long)o,
				     sb_strerror(rc));
			continue;
		}
		cr_assert_eq(rc, 0, "%s: offset %llu: %s", when, (unsigned long long)o, sb_strerror(rc));
		cr_assert_eq(info.offset, o);
		cr_assert_eq(n, uc_M[o].len, "%s: offset %llu", when, (unsigned long long)o);
		cr_assert(ut_match(buf, n, o, 7), "%s: offset %llu", when, (unsigned long long)o);
	}
	/* what ls lists: the offsets that hold a record */
	uint64_t want_next = uc_MN;
	for (uint64_t o = uc_MN; o-- > 0;) {
		if (!uc_gone[o])
			want_next = o;
		uint64_t found = UINT64_MAX;
		int rc = sb_log_next_present(l, o, &found);
		if (want_next == uc_MN)
			cr_assert_eq(rc, -ENOENT, "%s: next_present(%llu)", when, (unsigned long long)o);
		else
			cr_assert(rc == 0 && found == want_next, "%s: next_present(%llu): %llu, want %llu", when,
				  (unsigned long long)o, (unsigned long long)found, (unsigned long long)want_next);
	}
	/* the stream: the kept payloads in offset order */
	static uint8_t want[UC_MAXREC * 200], got[UC_MAXREC * 200];
	size_t wl = 0;
	for (uint64_t o = 0; o < uc_MN; o++)
		if (!uc_gone[o]) {
			ut_fill(want + wl, uc_M[o].len, o, 7);
			wl += uc_M[o].len;
		}
	uint64_t pos = sb_log_stream_start(l), end = sb_log_stream_end(l);
	cr_assert_eq(end - pos, wl, "%s: stream of %llu bytes, %zu kept", when, (unsigned long long)(end - pos), wl);
	size_t gl = 0;
	while (pos < end) {
		size_t chunk = 777, nr = 0;
		int rc = sb_log_read_stream(l, pos, got + gl, chunk, &nr);
		cr_assert_eq(rc, 0, "%s: stream at %llu: %s", when, (unsigned long long)pos, sb_strerror(rc));
		cr_assert_gt(nr, 0);
		pos += nr;
		gl += nr;
	}
	cr_assert(!memcmp(want, got, wl), "%s: stream bytes", when);
	/* keys */
	int64_t lat[UC_NKEYS];
	uc_latest(lat);
	for (int i = 0; i < UC_NKEYS; i++) {
		char k[32];
		int rc = sb_log_get_key(l, k, uc_mkey(i, k), buf, sizeof(buf), &n, &info);
		if (lat[i] < 0 || uc_M[lat[i]].tomb) {
			cr_assert_eq(rc, -ENOENT, "%s: key %d", when, i);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: key %d: %s", when, i, sb_strerror(rc));
		cr_assert_eq(info.offset, (uint64_t)lat[i]);
		cr_assert(ut_match(buf, n, info.offset, 7));
	}
	uint64_t wrong = 1;
	cr_assert_eq(sb_log_verify_keys(l, NULL, &wrong, NULL, NULL), 0);
	cr_assert_eq(wrong, 0, "%s: key index disagrees with the log", when);
}

void uc_verify_clean(const char *dir, const char *when)
{
	sb_verify_result res;
	char td[4200];

	snprintf(td, sizeof(td), "%s/t", dir);
	cr_assert_eq(sb_verify_topic(td, NULL, NULL, NULL, &res), 0);
	cr_assert_eq(sb_verify_damage(&res) - res.problems[SB_VERIFY_INDEX], 0, "%s: verify finds damage (%llu)",
		     when, (unsigned long long)sb_verify_damage(&res));
}

fio *uc_quick_io(const char *stash)
{
	fio *f = fio_new(stash);
	cr_assert(f);
	fio_set_sync(f, 0, 0);
	return f;
}

void uc_model_reset(void)
{
	uc_MN = 0;
	memset(uc_gone, 0, sizeof(uc_gone));
}
