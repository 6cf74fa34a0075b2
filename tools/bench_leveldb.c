/*
 * bench_leveldb.c - the same workloads on LevelDB (Debian's libleveldb, C
 * API), in the same run, for the "ours vs LevelDB" column. Keys are 8-byte
 * big-endian sequence numbers, values the same payload bytes our store gets;
 * LevelDB's default options (its log on, 4 MB write buffer, 8 MB block
 * cache, snappy, which leaves our random payloads uncompressed).
 */
#define SB_BENCH_INTERNAL
#include "bench.h"

#ifdef SB_HAVE_LEVELDB
#include <errno.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD 100u
#define OPEN_PAYLOAD 1024u

static inline void key_of(uint64_t i, char k[8])
{
	for (int b = 7; b >= 0; b--, i >>= 8)
		k[b] = (char)(i & 0xff);
}

typedef struct ldb {
	leveldb_t *db;
	leveldb_options_t *o;
	leveldb_writeoptions_t *wo, *wo_sync;
	leveldb_readoptions_t *ro;
	char path[4096];
} ldb;

/* Record a LevelDB error (and free it); returns -1. */
static int ldb_fail(sb_bench_val *v, const char *what, char *err)
{
	sb_bench_fail(v, what, err ? err : "failed");
	if (err)
		leveldb_free(err);
	return -1;
}

static int ldb_open(const sb_bench_cfg *c, const char *name, ldb *d, sb_bench_val *v)
{
	char *err = NULL;

	memset(d, 0, sizeof(*d));
	if (snprintf(d->path, sizeof(d->path), "%s/%s", c->dir, name) >= (int)sizeof(d->path))
		return ldb_fail(v, "leveldb_open", NULL);
	d->o = leveldb_options_create();
	leveldb_options_set_create_if_missing(d->o, 1);
	d->wo = leveldb_writeoptions_create();
	d->wo_sync = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(d->wo_sync, 1);
	d->ro = leveldb_readoptions_create();
	d->db = leveldb_open(d->o, d->path, &err);
	if (err)
		return ldb_fail(v, "leveldb_open", err);
	return 0;
}

static int ldb_reopen(ldb *d, sb_bench_val *v)
{
	char *err = NULL;

	if (d->db)
		leveldb_close(d->db);
	d->db = leveldb_open(d->o, d->path, &err);
	if (err) {
		d->db = NULL;
		return ldb_fail(v, "leveldb_open", err);
	}
	return 0;
}

/* Close and delete. */
static void ldb_done(ldb *d)
{
	if (d->db)
		leveldb_close(d->db);
	if (d->o) {
		char *err = NULL;
		leveldb_destroy_db(d->o, d->path, &err);
		if (err)
			leveldb_free(err);
		leveldb_options_destroy(d->o);
	}
	if (d->wo)
		leveldb_writeoptions_destroy(d->wo);
	if (d->wo_sync)
		leveldb_writeoptions_destroy(d->wo_sync);
	if (d->ro)
		leveldb_readoptions_destroy(d->ro);
	sb_bench_rmtree(d->path);
	memset(d, 0, sizeof(*d));
}

/* Keys [0, n) with len-byte payloads, in write batches of 64. */
static int ldb_fill(const sb_bench_cfg *c, ldb *d, uint64_t n, size_t len, sb_bench_val *v)
{
	leveldb_writebatch_t *b = leveldb_writebatch_create();
	char k[8], *err = NULL;

	for (uint64_t i = 0; i < n && !err;) {
		leveldb_writebatch_clear(b);
		for (int j = 0; j < 64 && i < n; j++, i++) {
			key_of(i, k);
			leveldb_writebatch_put(b, k, 8, (const char *)sb_bench_payload(c, i, len), len);
		}
		leveldb_write(d->db, d->wo, b, &err);
	}
	leveldb_writebatch_destroy(b);
	return err ? ldb_fail(v, "leveldb_write", err) : 0;
}

/* Random Gets over keys [0, n): ns per Get. */
static void ldb_gets(const sb_bench_cfg *c, ldb *d, uint64_t n, sb_bench_val *v)
{
	uint64_t rng = 0x5151, allocs = 0, acc = 0;
	double r[16];
	char k[8], *err = NULL;

	for (int rep = 0; rep < c->reps; rep++) {
		uint64_t missing = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t i = 0; i < c->lookups && !err; i++) {
			size_t vl = 0;
			key_of(sb_bench_below(&rng, n), k);
			char *val = leveldb_get(d->db, d->ro, k, 8, &vl, &err);
			missing += !val;
			if (val) {
				acc += (uint8_t)val[0];
				leveldb_free(val);
			}
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (err || missing) {
			ldb_fail(v, "leveldb_get", err ? err : NULL);
			return;
		}
		r[rep] = (double)ns / (double)c->lookups;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, c->lookups, allocs);
}

static void ldb_stat(const sb_bench_cfg *c, sb_bench_val *v)
{
	ldb d;

	if (!ldb_open(c, "ldb-stat", &d, v) && !ldb_fill(c, &d, 10000, PAYLOAD, v) && !ldb_reopen(&d, v)) {
		ldb_gets(c, &d, 10000, v);
		v->how = "leveldb_get of random keys in a 10,000-key DB, reopened (copies the value into a "
			 "malloc'd buffer, freed after)";
	}
	ldb_done(&d);
}

/* One put per call, no sync: c->reps runs of records/reps puts, keys
 * continuing from run to run. */
static int ldb_append(const sb_bench_cfg *c, ldb *d, size_t len, uint64_t *n, sb_bench_val *v)
{
	uint64_t per = c->records / (uint64_t)c->reps, allocs = 0, key = 0;
	double r[16];
	char k[8], *err = NULL;

	for (int rep = 0; rep < c->reps; rep++) {
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t i = 0; i < per && !err; i++, key++) {
			key_of(key, k);
			leveldb_put(d->db, d->wo, k, 8, (const char *)sb_bench_payload(c, key, len), len, &err);
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (err)
			return ldb_fail(v, "leveldb_put", err);
		r[rep] = (double)ns / (double)per;
	}
	sb_bench_set(v, r, c->reps, per, allocs);
	v->how = "leveldb_put, sync=false, fresh DB, 8-byte big-endian sequential keys";
	*n = key;
	return 0;
}

/* Iterate everything, copying each value out (chunk 0: into a record
 * buffer, one value at a time; else packed into chunk-byte buffers, as a
 * stream read would hand them over): MB/s of value bytes. */
static void ldb_scan(const sb_bench_cfg *c, ldb *d, uint64_t n, size_t chunk, sb_bench_val *v)
{
	size_t cap = chunk ? chunk : PAYLOAD + 28;
	char *buf = malloc(cap);
	uint64_t allocs = 0, acc = 0, chunks = 0;
	double r[16];

	if (!buf) {
		sb_bench_fail(v, "malloc", "out of memory");
		return;
	}
	for (int rep = 0; rep < c->reps; rep++) {
		uint64_t bytes = 0, cnt = 0;
		size_t fill = 0;
		chunks = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->ro);
		for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
			size_t vl;
			const char *val = leveldb_iter_value(it, &vl);
			bytes += vl;
			cnt++;
			if (!chunk) {
				memcpy(buf, val, vl < cap ? vl : cap);
				continue;
			}
			while (vl) { /* a value may straddle two chunks */
				size_t k = vl < cap - fill ? vl : cap - fill;
				memcpy(buf + fill, val, k);
				fill += k;
				val += k;
				vl -= k;
				if (fill == cap) {
					acc += (uint8_t)buf[cap - 1];
					fill = 0;
					chunks++;
				}
			}
		}
		chunks += fill > 0;
		char *err = NULL;
		leveldb_iter_get_error(it, &err);
		leveldb_iter_destroy(it);
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (err || cnt != n) {
			ldb_fail(v, "leveldb iterator", err);
			goto out_free;
		}
		acc += (uint8_t)buf[0];
		r[rep] = sb_bench_mbps(bytes, ns);
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, chunk ? chunks : n, allocs);
	v->how = chunk ? "one iterator over all keys, the values packed into 1 MiB buffers (the stream's bytes); "
			 "allocs per 1 MiB chunk"
		       : "one iterator over all keys, each value copied out";
out_free:
	free(buf);
}

/* Seek to a random key and copy values until 4 KiB. */
static void ldb_range4k(const sb_bench_cfg *c, ldb *d, uint64_t n, sb_bench_val *v)
{
	char buf[4096 + PAYLOAD], k[8];
	uint64_t rng = 0x777, allocs = 0, acc = 0, ops = c->lookups / 4;
	double r[16];
	leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->ro);

	for (int rep = 0; rep < c->reps; rep++) {
		uint64_t shorts = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t i = 0; i < ops; i++) {
			size_t got = 0;
			key_of(sb_bench_below(&rng, n - 4096 / PAYLOAD - 1), k);
			for (leveldb_iter_seek(it, k, 8); got < 4096 && leveldb_iter_valid(it); leveldb_iter_next(it)) {
				size_t vl;
				const char *val = leveldb_iter_value(it, &vl);
				if (vl > 4096 - got)
					vl = 4096 - got;
				memcpy(buf + got, val, vl);
				got += vl;
			}
			shorts += got != 4096;
			acc += (uint8_t)buf[100];
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (shorts) {
			ldb_fail(v, "leveldb iterator", NULL);
			goto out;
		}
		r[rep] = (double)ns / (double)ops;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, ops, allocs);
	sb_bench_extra(v, "MB_per_s", 4096.0 * 1e3 / v->value);
	v->how = "iterator seek to a random key, then next until 4 KiB of values are copied (one iterator reused)";
out:
	leveldb_iter_destroy(it);
}

static void ldb_append_read(const sb_bench_cfg *c, sb_bench_val *v)
{
	ldb d;

	uint64_t n;

	sb_bench_progress(c, "leveldb put 39");
	if (!ldb_open(c, "ldb-p39", &d, &v[SB_FIG_APPEND39]))
		ldb_append(c, &d, 39, &n, &v[SB_FIG_APPEND39]);
	ldb_done(&d);
	sb_bench_progress(c, "leveldb put 100");
	if (ldb_open(c, "ldb-p100", &d, &v[SB_FIG_APPEND100]) ||
	    ldb_append(c, &d, PAYLOAD, &n, &v[SB_FIG_APPEND100])) {
		for (int f = SB_FIG_READ; f <= SB_FIG_STREAM4K; f++)
			sb_bench_fail(&v[f], "setup", "the puts of the records to read failed");
		goto out;
	}
	/* Warm: the scan reads every table once (and the first rep is thrown
	 * away by the median like ours). */
	sb_bench_progress(c, "leveldb scan");
	ldb_scan(c, &d, n, 1u << 20, &v[SB_FIG_SCAN_STREAM]);
	ldb_scan(c, &d, n, 0, &v[SB_FIG_SCAN_RECORD]);
	sb_bench_progress(c, "leveldb get");
	ldb_gets(c, &d, n, &v[SB_FIG_READ]);
	v[SB_FIG_READ].how = "leveldb_get of uniform random keys (returns a malloc'd value copy)";
	sb_bench_progress(c, "leveldb seek+next 4k");
	ldb_range4k(c, &d, n, &v[SB_FIG_STREAM4K]);
out:
	ldb_done(&d);
}

struct writer {
	ldb *d;
	const sb_bench_cfg *c;
	pthread_barrier_t *go;
	uint64_t first, n, ns;
	char *err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char k[8];

	pthread_barrier_wait(w->go);
	uint64_t t0 = sb_bench_now();
	for (uint64_t i = 0; i < w->n && !w->err; i++) {
		key_of(w->first + i, k);
		leveldb_put(w->d->db, w->d->wo_sync, k, 8, (const char *)sb_bench_payload(w->c, w->first + i, PAYLOAD),
			    PAYLOAD, &w->err);
	}
	w->ns = sb_bench_now() - t0;
	return NULL;
}

/* nt writers of n sync puts each; fills *ns (wall) and *sum_ns (their own). */
static int ldb_sync_writers(const sb_bench_cfg *c, ldb *d, int nt, uint64_t n, uint64_t first, uint64_t *ns,
			    uint64_t *sum_ns, uint64_t *allocs, sb_bench_val *v)
{
	struct writer w[64];
	pthread_t th[64];
	pthread_barrier_t go;
	char *err = NULL;

	if (nt > 64)
		nt = 64;
	pthread_barrier_init(&go, NULL, (unsigned)nt + 1);
	for (int i = 0; i < nt; i++) {
		w[i] = (struct writer){.d = d, .c = c, .go = &go, .first = first + (uint64_t)i * n, .n = n};
		if (pthread_create(&th[i], NULL, writer_main, &w[i])) {
			fprintf(stderr, "streambus bench: cannot start writer threads\n");
			abort(); /* the barrier needs every thread */
		}
	}
	sb_bench_alloc_start();
	pthread_barrier_wait(&go);
	uint64_t t0 = sb_bench_now();
	*sum_ns = 0;
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		*sum_ns += w[i].ns;
		if (w[i].err && !err)
			err = w[i].err;
		else if (w[i].err)
			leveldb_free(w[i].err);
	}
	*ns = sb_bench_now() - t0;
	*allocs += sb_bench_alloc_stop();
	pthread_barrier_destroy(&go);
	return err ? ldb_fail(v, "leveldb_put (sync)", err) : 0;
}

struct sb_bench_ldb_sync {
	ldb d;
	const sb_bench_cfg *c;
	uint64_t next_key;
};

sb_bench_ldb_sync *sb_bench_ldb_sync_open(const sb_bench_cfg *c, sb_bench_val *v)
{
	sb_bench_ldb_sync *x = calloc(1, sizeof(*x));

	if (!x) {
		sb_bench_fail(v, "leveldb", "out of memory");
		return NULL;
	}
	x->c = c;
	if (ldb_open(c, "ldb-sync", &x->d, v)) {
		ldb_done(&x->d);
		free(x);
		return NULL;
	}
	return x;
}

int sb_bench_ldb_sync_rep(sb_bench_ldb_sync *x, int writers, uint64_t n, uint64_t *ns, uint64_t *sum_ns,
			  uint64_t *allocs, sb_bench_val *v)
{
	int rc = ldb_sync_writers(x->c, &x->d, writers, n, x->next_key, ns, sum_ns, allocs, v);

	x->next_key += (uint64_t)writers * n;
	return rc;
}

void sb_bench_ldb_sync_close(sb_bench_ldb_sync *x)
{
	ldb_done(&x->d);
	free(x);
}

static void ldb_open_bench(const sb_bench_cfg *c, sb_bench_val *v)
{
	enum { REPS = 5 };
	uint64_t n = c->open_bytes / (32 + OPEN_PAYLOAD), allocs = 0; /* as many as ours */
	double r[REPS];
	ldb d;

	sb_bench_progress(c, "leveldb open: writing %llu MB", (unsigned long long)(c->open_bytes >> 20));
	if (ldb_open(c, "ldb-open", &d, v) || ldb_fill(c, &d, n, OPEN_PAYLOAD, v))
		goto out;
	leveldb_close(d.db);
	d.db = NULL;
	for (int rep = 0; rep < REPS; rep++) {
		char *err = NULL;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		d.db = leveldb_open(d.o, d.path, &err);
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (err) {
			d.db = NULL;
			ldb_fail(v, "leveldb_open", err);
			goto out;
		}
		r[rep] = (double)ns / 1e6;
		leveldb_close(d.db);
		d.db = NULL;
	}
	sb_bench_set(v, r, REPS, 1, allocs);
	sb_bench_extra(v, "records", (double)n);
	v->how = "leveldb_open of a DB of the same payload bytes (1 KiB values), closed after writing";
out:
	ldb_done(&d);
}

void sb_bench_leveldb(const sb_bench_cfg *c, sb_bench_val v[SB_FIG_COUNT])
{
	v[SB_FIG_INDEX].how = "no equivalent (LevelDB's block index is not exposed); index_lookup_stat compares gets";
	sb_bench_progress(c, "leveldb 10,000-key get");
	ldb_stat(c, &v[SB_FIG_STAT]);
	ldb_append_read(c, v);
	ldb_open_bench(c, &v[SB_FIG_OPEN]);
}

#else
#include <stddef.h>

sb_bench_ldb_sync *sb_bench_ldb_sync_open(const sb_bench_cfg *c, sb_bench_val *v)
{
	(void)c;
	sb_bench_fail(v, "leveldb", "not built in (libleveldb-dev was missing at build time)");
	return NULL;
}

int sb_bench_ldb_sync_rep(sb_bench_ldb_sync *x, int writers, uint64_t n, uint64_t *ns, uint64_t *sum_ns,
			  uint64_t *allocs, sb_bench_val *v)
{
	(void)x, (void)writers, (void)n, (void)ns, (void)sum_ns, (void)allocs;
	sb_bench_fail(v, "leveldb", "not built in");
	return -1;
}

void sb_bench_ldb_sync_close(sb_bench_ldb_sync *x)
{
	(void)x;
}

void sb_bench_leveldb(const sb_bench_cfg *c, sb_bench_val v[SB_FIG_COUNT])
{
	(void)c;
	for (int f = 0; f < SB_FIG_COUNT; f++)
		sb_bench_fail(&v[f], "leveldb", "not built in (libleveldb-dev was missing at build time)");
}
#endif
