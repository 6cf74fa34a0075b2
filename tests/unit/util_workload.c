/*
 * util_workload.c - see util_workload.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_store.h"
#include "util_workload.h"

#define UW_SEED 21
#define UW_LEN(o) ut_len((o), UW_SEED, 1, 900)

static void uw_cfg(sb_log_config *c, enum sb_sync sync)
{
	ut_cfg(c, 4096, sync);
	c->index_interval_bytes = 256;
}

/* Append records [next, next + k) as one call. */
static int append_batch(sb_log *l, uint64_t next, int k)
{
	uint8_t *bufs[5];
	char keys[5][32];
	sb_record_in r[5];
	uint64_t first = UINT64_MAX;
	int rc;

	for (int j = 0; j < k; j++) {
		uint64_t o = next + (uint64_t)j;
		size_t len = UW_LEN(o);
		bufs[j] = malloc(len);
		ut_fill(bufs[j], len, o, UW_SEED);
		snprintf(keys[j], sizeof(keys[j]), "k%llu", (unsigned long long)o);
		r[j] = (sb_record_in){.key = keys[j], .key_len = (uint32_t)strlen(keys[j]),
				      .value = bufs[j], .value_len = (uint32_t)len,
				      .timestamp_ns = 1700000000000000000LL + (int64_t)o};
	}
	rc = sb_log_append(l, r, (size_t)k, &first);
	if (!rc && first != next)
		rc = -EPROTO;
	for (int j = 0; j < k; j++)
		free(bufs[j]);
	return rc;
}

void uw_run(const char *dir, const sb_io *io, enum sb_sync sync, uw_result *r)
{
	sb_log_config c;
	sb_store *s = NULL;
	sb_log *l = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	uw_cfg(&c, sync);
	if ((rc = ut_open(dir, &c, io, &s))) {
		r->fail_rc = rc;
		r->fail_at = "open";
		return;
	}
	r->opened = 1;
	if ((rc = sb_store_create(s, "t"))) {
		r->fail_rc = rc;
		r->fail_at = "create";
		goto out_close;
	}
	r->created = 1;
	if ((rc = sb_store_get(s, "t", &l))) {
		r->fail_rc = rc;
		r->fail_at = "get";
		goto out_close;
	}
	for (int i = 0; i < 80; i++) {
		uint64_t next = r->acked_next;
		if (i == 40) {
			r->del_tried = next / 2;
			if ((rc = sb_log_delete_before(l, next / 2))) {
				r->fail_rc = rc;
				r->fail_at = "delete_before";
				goto out_close;
			}
			r->del_done = next / 2;
		}
		int k = i % 7 == 3 ? i % 4 + 2 : 1;
		r->tried_next = next + (uint64_t)k;
		if ((rc = append_batch(l, next, k))) {
			r->fail_rc = rc;
			r->fail_at = "append";
			goto out_close;
		}
		r->acked_next = next + (uint64_t)k;
	}
out_close:
	r->close_rc = sb_store_close(s);
	if (!r->fail_rc && r->close_rc) {
		r->fail_rc = r->close_rc;
		r->fail_at = "close";
	}
}

static int fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static int check_open(const char *dir, const uw_result *r, int pass, char *why, size_t cap,
		      sb_store **out, sb_log **lout)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	int rc;

	uw_cfg(&c, SB_SYNC_NEVER);
	if ((rc = ut_open(dir, &c, NULL, &s)))
		return fail(why, cap, "pass %d: reopen failed: %s", pass, sb_strerror(rc));
	*out = s;
	*lout = NULL;
	if ((rc = sb_store_get(s, "t", &l))) {
		if (r->acked_next || r->del_done)
			return fail(why, cap, "pass %d: topic lost (%s) with %llu records acknowledged",
				    pass, sb_strerror(rc), (unsigned long long)r->acked_next);
		return 0;
	}
	*lout = l;
	uint64_t start = sb_log_start(l), next = sb_log_next(l);
	if (next < r->acked_next)
		return fail(why, cap, "pass %d: next %llu < %llu acknowledged", pass,
			    (unsigned long long)next, (unsigned long long)r->acked_next);
	if (next > r->tried_next)
		return fail(why, cap, "pass %d: next %llu > %llu ever appended", pass,
			    (unsigned long long)next, (unsigned long long)r->tried_next);
	if (start < r->del_done)
		return fail(why, cap, "pass %d: start %llu < %llu of a done delete_before", pass,
			    (unsigned long long)start, (unsigned long long)r->del_done);
	if (start > r->del_tried && start != 0)
		return fail(why, cap, "pass %d: start %llu but delete_before(%llu) at most", pass,
			    (unsigned long long)start, (unsigned long long)r->del_tried);
	if (start > next)
		return fail(why, cap, "pass %d: start %llu > next %llu", pass,
			    (unsigned long long)start, (unsigned long long)next);
	for (uint64_t o = start; o < next; o++) {
		char key[32] = {0};
		size_t kl = 0;
		if ((rc = ut_check(l, o, UW_LEN(o), UW_SEED)))
			return fail(why, cap, "pass %d: record %llu (of [%llu, %llu)): %s", pass,
				    (unsigned long long)o, (unsigned long long)start,
				    (unsigned long long)next,
				    rc == 1 ? "wrong length" : rc == 2 ? "wrong bytes" : sb_strerror(rc));
		if ((rc = sb_log_read_key(l, o, key, sizeof(key) - 1, &kl)) || kl < 2 ||
		    strtoull(key + 1, NULL, 10) != o)
			return fail(why, cap, "pass %d: key of %llu wrong", pass, (unsigned long long)o);
	}
	return 0;
}

int uw_check(const char *dir, const uw_result *r, char *why, size_t cap)
{
	sb_store *s = NULL;
	sb_log *l = NULL;
	int rc;

	for (int pass = 1; pass <= 2; pass++) {
		rc = check_open(dir, r, pass, why, cap, &s, &l);
		if (rc)
			goto out;
		if (pass == 2 && l) {
			uint64_t next = sb_log_next(l), got = UINT64_MAX;
			if ((rc = ut_append1(l, next, 10, 99, &got)) || got != next) {
				rc = fail(why, cap, "append after recovery: %s, offset %llu want %llu",
					  sb_strerror(rc), (unsigned long long)got,
					  (unsigned long long)next);
				goto out;
			}
		}
		rc = sb_store_close(s);
		s = NULL;
		if (rc)
			return fail(why, cap, "pass %d: close after recovery: %s", pass, sb_strerror(rc));
	}
	return 0;
out:
	if (s)
		sb_store_close(s);
	return rc;
}

int uw_reopen(const char *dir, const sb_io *io)
{
	sb_log_config c;
	sb_store *s;
	int rc;

	uw_cfg(&c, SB_SYNC_NEVER);
	if ((rc = ut_open(dir, &c, io, &s)))
		return rc;
	return sb_store_close(s);
}
