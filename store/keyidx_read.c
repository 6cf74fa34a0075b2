/*
 * keyidx_read.c - a topic's key index (keyidx.h): its readers. A get
 * (read your writes: the few records the indexer has not read yet are
 * searched in the log, more are indexed first, keyidx_turn.c), a listing
 * in key order (keymerge.h) and the statistics. Opening and closing are
 * keyidx.c's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keyidx_impl.h"

/* Tail entries a reader scans rather than catching up first. */
#define TAIL_SCAN_MAX 256
/* Records not yet read by the indexer that a get reads from the log for
 * its key rather than catching up first (a get right after an append
 * then indexes nothing: no run of one entry to merge). */
#define LOG_SCAN_MAX 16

typedef struct scan_ctx {
	const void *key;
	size_t klen;
	sb_mt_val v;
	int found;
} scan_ctx;

static int scan_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v)
{
	scan_ctx *c = arg;

	if (klen == c->klen && key[0] == *(const uint8_t *)c->key && !memcmp(key, c->key, klen)) {
		c->v = *v; /* offsets increase: the last one is the latest */
		c->found = 1;
	}
	return 0;
}

/* Read your writes: every record appended before this call is below
 * noted_end; once the indexer has read it (below walk_end), in the tail
 * or the runs. A few records past walk_end are searched in the log for
 * the key (1: found, *v; 0: not there); more are indexed first (if that
 * fails, what there is is searched), as is a long tail (the replay's, a
 * fill under way). Holds no lock (params.walk takes seg_lock). */
static int get_unread(sb_kx *x, const void *key, size_t klen, sb_mt_val *v)
{
	uint64_t last = atomic_load_explicit(&x->last_keyed, memory_order_acquire);
	uint64_t w = atomic_load_explicit(&x->walk_end, memory_order_acquire);

	if (last <= w) {
		if (sb_kp_count(x->tail) > TAIL_SCAN_MAX)
			sb_kx_catch_up(x);
		return 0;
	}
	uint64_t end = atomic_load_explicit(&x->noted_end, memory_order_acquire);
	scan_ctx c = {.key = key, .klen = klen};
	if (end - w <= LOG_SCAN_MAX && x->p.walk && x->p.walk(x->p.walk_arg, w, end, scan_one, &c) == 0) {
		if (c.found)
			*v = c.v;
		return c.found;
	}
	sb_kx_catch_up(x);
	return 0;
}

int sb_kx_get(sb_kx *x, const void *key, size_t klen, sb_mt_val *v)
{
	int rc;

	if (get_unread(x, key, klen, v))
		return 0; /* newer than anything indexed */
	pthread_rwlock_rdlock(&x->lock);
	/* The tables' Bloom filter lines: cache misses of their own, on their
	 * way together while the tail and the runs are looked at. */
	uint64_t h = x->nt ? sb_kt_hash(key, klen) : 0;
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_prefetch(x->t[i], h);
	rc = sb_kp_find(x->tail, key, klen, v);
	for (size_t i = 0; rc == -ENOENT && i < x->nact; i++)
		rc = sb_kr_get(x->act[i], key, klen, v);
	for (size_t i = 0; rc == -ENOENT && i < x->nimm; i++)
		rc = sb_kr_get(x->imm[i], key, klen, v);
	if (rc == -ENOENT && x->nt) {
		for (size_t i = 0; rc == -ENOENT && i < x->nt; i++)
			rc = sb_kt_get(x->t[i], key, klen, h, v);
	}
	pthread_rwlock_unlock(&x->lock);
	return rc;
}

void sb_kx_get_stats(sb_kx *x, sb_kx_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&x->lock);
	st->mt_keys = sb_kp_count(x->tail);
	st->mt_bytes = sb_kp_bytes(x->tail);
	for (size_t i = 0; i < x->nact; i++) {
		st->mt_keys += sb_kr_count(x->act[i]);
		st->mt_bytes += sb_kr_bytes(x->act[i]);
	}
	for (size_t i = 0; i < x->nimm; i++) {
		st->mt_keys += sb_kr_count(x->imm[i]);
		st->mt_bytes += sb_kr_bytes(x->imm[i]);
	}
	st->tables = (uint32_t)x->nt;
	for (size_t i = 0; i < x->nt; i++) {
		st->table_keys += sb_kt_count(x->t[i]);
		st->table_bytes += sb_kt_file_bytes(x->t[i]);
	}
	st->covered_to = x->covered;
	pthread_rwlock_unlock(&x->lock);
	st->appender_sorts = atomic_load_explicit(&x->app_sorts, memory_order_relaxed);
	st->appender_writes = atomic_load_explicit(&x->app_writes, memory_order_relaxed);
}

int sb_kx_scan(sb_kx *x, const void *from, size_t from_len, sb_kx_scan_fn fn, void *arg)
{
	src *s;
	size_t n = 0;
	int rc;

	/* Everything appended before this call, sorted (read your writes). */
	if ((rc = sb_kx_catch_up(x)))
		return rc;
	pthread_rwlock_rdlock(&x->lock);
	s = calloc(x->nt + x->nact + x->nimm + 1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	for (size_t i = 0; i < x->nact; i++) {
		s[n].is_run = 1;
		sb_kr_seek(x->act[i], from, from_len, &s[n++].ri);
	}
	for (size_t i = 0; i < x->nimm; i++) {
		s[n].is_run = 1;
		sb_kr_seek(x->imm[i], from, from_len, &s[n++].ri);
	}
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_seek(x->t[i], from, from_len, &s[n++].ki);
	rc = sb_km_merge(s, n, fn, arg);
	free(s);
out_unlock:
	pthread_rwlock_unlock(&x->lock);
	return rc;
}
