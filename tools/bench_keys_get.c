/*
 * bench_keys_get.c - `streambus bench keys`, its get part: get by key with
 * the value (100 bytes) copied out, N random 16-byte keys, warm, after a
 * clean close and reopen: ours (sb_log_get_key) against LevelDB, RocksDB
 * and LMDB loaded with the same keys and values (defaults; LMDB: one read
 * transaction per 1,000 gets, reset and renewed). See bench_keys.c.
 */
#define SB_BENCH_INTERNAL
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench_keys.h"
#include "sb_store.h"

#ifdef SB_HAVE_LEVELDB
#include <leveldb/c.h>
#endif
#ifdef SB_HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif
#ifdef SB_HAVE_LMDB
#include <lmdb.h>
#endif

/* ---- get by key: ours and the peers ---------------------------------------- */

/* One get of a table: key k's value copied into buf (VAL bytes); 0 or an
 * error (the table's own code). */
typedef int (*get_fn)(void *db, const uint8_t *k, uint8_t *buf);

/* The figure of every table, the same loop: o->lookups random gets, twice
 * (the first warms the cache); ns a get of the second pass, wall and this
 * thread's CPU (the machine is shared). 0, or the first get's error. */
static int time_gets(const kopts *o, get_fn get, void *db, double *ns, double *cpu)
{
	uint64_t seed = 7, sum = 0;
	uint8_t k[GKEY], buf[VAL];
	int rc;

	for (int pass = 0; pass < 2; pass++) {
		uint64_t t0 = sb_bench_now(), c0 = kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		for (uint64_t i = 0; i < o->lookups; i++) {
			kb_gkey(sb_bench_below(&seed, o->keys), k);
			if ((rc = get(db, k, buf)))
				return rc;
			sum += buf[0];
		}
		*cpu = (double)(kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)o->lookups;
		*ns = kb_ns_per(t0, o->lookups);
	}
	sb_bench_keep(sum);
	return 0;
}

static int ours_get(void *l, const uint8_t *k, uint8_t *buf)
{
	size_t got;
	return sb_log_get_key(l, k, GKEY, buf, VAL, &got, NULL);
}

static double get_ours(const kopts *o, const char *dir, double *cpu)
{
	sb_store_options so;
	sb_store *s = NULL;
	sb_log *l;
	double r = -1;
	int rc;

	sb_store_options_default(&so);
	so.defaults.sync = SB_SYNC_NEVER;
	so.no_flusher = 1;
	if ((rc = sb_store_open(dir, &so, &s)) || (rc = sb_store_create(s, "t")) || (rc = sb_store_get(s, "t", &l)))
		goto out_err;
	sb_record_in batch[64];
	uint8_t kb[64][GKEY], vb[64][VAL];
	for (uint64_t i = 0; i < o->keys;) {
		size_t nb = 0;
		for (; nb < 64 && i < o->keys; nb++, i++) {
			kb_gkey(i, kb[nb]);
			kb_gval(i, vb[nb]);
			batch[nb] = (sb_record_in){.key = kb[nb], .key_len = GKEY, .value = vb[nb], .value_len = VAL};
		}
		if ((rc = sb_log_append(l, batch, nb, NULL)))
			goto out_err;
	}
	if ((rc = sb_store_close(s)))
		goto out_err;
	s = NULL;
	uint64_t t0 = sb_bench_now();
	if ((rc = sb_store_open(dir, &so, &s)) || (rc = sb_store_get(s, "t", &l)))
		goto out_err;
	double open_ms = (double)(sb_bench_now() - t0) / 1e6;
	sb_log_key_stats ks;
	sb_log_get_key_stats(l, &ks);
	if ((rc = time_gets(o, ours_get, l, &r, cpu)))
		goto out_err;
	printf("get    ours (sb_log_get_key)  %8.1f ns  CPU %8.1f ns  (%u tables, %llu keys in MemTable, open %.1f ms)\n", r, *cpu,
	       ks.tables, (unsigned long long)ks.memtable_keys, open_ms);
	sb_store_close(s);
	return r;
out_err:
	printf("get    ours: %s\n", sb_strerror(rc));
	if (s)
		sb_store_close(s);
	return -1;
}

#ifdef SB_HAVE_LEVELDB
typedef struct ldb_ctx {
	leveldb_t *db;
	leveldb_readoptions_t *ro;
	char *err;
} ldb_ctx;

static int ldb_get(void *arg, const uint8_t *k, uint8_t *buf)
{
	ldb_ctx *x = arg;
	size_t vl;
	char *p = leveldb_get(x->db, x->ro, (const char *)k, GKEY, &vl, &x->err);

	if (!p || x->err)
		return -1;
	memcpy(buf, p, vl < VAL ? vl : VAL);
	leveldb_free(p);
	return 0;
}

static double get_leveldb(const kopts *o, const char *dir, double *cpu)
{
	leveldb_options_t *opt = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	ldb_ctx x = {.ro = leveldb_readoptions_create()};
	uint8_t k[GKEY], v[VAL];
	double r = -1;

	leveldb_options_set_create_if_missing(opt, 1);
	x.db = leveldb_open(opt, dir, &x.err);
	if (x.err)
		goto out;
	leveldb_writebatch_t *wb = leveldb_writebatch_create();
	for (uint64_t i = 0; i < o->keys && !x.err; i++) {
		kb_gkey(i, k);
		kb_gval(i, v);
		leveldb_writebatch_put(wb, (char *)k, GKEY, (char *)v, VAL);
		if (i % 64 == 63 || i + 1 == o->keys) {
			leveldb_write(x.db, wo, wb, &x.err);
			leveldb_writebatch_clear(wb);
		}
	}
	leveldb_writebatch_destroy(wb);
	leveldb_close(x.db);
	if (x.err)
		goto out;
	x.db = leveldb_open(opt, dir, &x.err);
	if (x.err)
		goto out;
	if (time_gets(o, ldb_get, &x, &r, cpu))
		r = -1;
	leveldb_close(x.db);
out:
	if (x.err)
		printf("get    LevelDB: %s\n", x.err);
	else if (r < 0)
		printf("get    LevelDB: a key was not found\n");
	else
		printf("get    LevelDB (leveldb_get)  %8.1f ns  CPU %8.1f ns\n", r, *cpu);
	if (x.err)
		r = -1;
	leveldb_free(x.err);
	leveldb_readoptions_destroy(x.ro);
	leveldb_writeoptions_destroy(wo);
	leveldb_options_destroy(opt);
	return r;
}
#endif

#ifdef SB_HAVE_ROCKSDB
typedef struct rdb_ctx {
	rocksdb_t *db;
	rocksdb_readoptions_t *ro;
	char *err;
} rdb_ctx;

static int rdb_get(void *arg, const uint8_t *k, uint8_t *buf)
{
	rdb_ctx *x = arg;
	size_t vl;
	rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(x->db, x->ro, (const char *)k, GKEY, &x->err);

	if (!ps || x->err)
		return -1;
	const char *p = rocksdb_pinnableslice_value(ps, &vl);
	memcpy(buf, p, vl < VAL ? vl : VAL);
	rocksdb_pinnableslice_destroy(ps);
	return 0;
}

static double get_rocksdb(const kopts *o, const char *dir, double *cpu)
{
	rocksdb_options_t *opt = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rdb_ctx x = {.ro = rocksdb_readoptions_create()};
	uint8_t k[GKEY], v[VAL];
	double r = -1;

	rocksdb_options_set_create_if_missing(opt, 1);
	x.db = rocksdb_open(opt, dir, &x.err);
	if (x.err)
		goto out;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	for (uint64_t i = 0; i < o->keys && !x.err; i++) {
		kb_gkey(i, k);
		kb_gval(i, v);
		rocksdb_writebatch_put(wb, (char *)k, GKEY, (char *)v, VAL);
		if (i % 64 == 63 || i + 1 == o->keys) {
			rocksdb_write(x.db, wo, wb, &x.err);
			rocksdb_writebatch_clear(wb);
		}
	}
	rocksdb_writebatch_destroy(wb);
	rocksdb_close(x.db);
	if (x.err)
		goto out;
	x.db = rocksdb_open(opt, dir, &x.err);
	if (x.err)
		goto out;
	if (time_gets(o, rdb_get, &x, &r, cpu))
		r = -1;
	rocksdb_close(x.db);
out:
	if (x.err)
		printf("get    RocksDB: %s\n", x.err);
	else if (r < 0)
		printf("get    RocksDB: a key was not found\n");
	else
		printf("get    RocksDB (get_pinned)   %8.1f ns  CPU %8.1f ns\n", r, *cpu);
	if (x.err)
		r = -1;
	rocksdb_free(x.err);
	rocksdb_readoptions_destroy(x.ro);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_options_destroy(opt);
	return r;
}
#endif

#ifdef SB_HAVE_LMDB
typedef struct lmdb_ctx {
	MDB_txn *txn;
	MDB_dbi dbi;
	uint64_t gets;
} lmdb_ctx;

/* one read transaction per 1,000 gets, reset and renewed */
static int lmdb_get(void *arg, const uint8_t *k, uint8_t *buf)
{
	lmdb_ctx *x = arg;
	MDB_val mk = {GKEY, (void *)k}, mv;
	int rc;

	if (++x->gets % 1000 == 0) {
		mdb_txn_reset(x->txn);
		if ((rc = mdb_txn_renew(x->txn)))
			return rc;
	}
	if ((rc = mdb_get(x->txn, x->dbi, &mk, &mv)))
		return rc;
	memcpy(buf, mv.mv_data, mv.mv_size < VAL ? mv.mv_size : VAL);
	return 0;
}

static double get_lmdb(const kopts *o, const char *dir, double *cpu)
{
	MDB_env *env = NULL;
	lmdb_ctx x = {0};
	uint8_t k[GKEY], v[VAL];
	double r = -1;
	int rc;

	if ((rc = sb_bench_mkdir(dir)) && rc != -EEXIST)
		goto out;
	if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_mapsize(env, (size_t)64 << 30)) ||
	    (rc = mdb_env_open(env, dir, MDB_NOSYNC, 0644)))
		goto out;
	if ((rc = mdb_txn_begin(env, NULL, 0, &x.txn)) || (rc = mdb_dbi_open(x.txn, NULL, 0, &x.dbi)))
		goto out;
	for (uint64_t i = 0; i < o->keys; i++) {
		kb_gkey(i, k);
		kb_gval(i, v);
		MDB_val mk = {GKEY, k}, mv = {VAL, v};
		if ((rc = mdb_put(x.txn, x.dbi, &mk, &mv, 0)))
			goto out;
		if (i % 100000 == 99999) {
			if ((rc = mdb_txn_commit(x.txn)) || (rc = mdb_txn_begin(env, NULL, 0, &x.txn)))
				goto out;
		}
	}
	rc = mdb_txn_commit(x.txn);
	x.txn = NULL;
	if (rc || (rc = mdb_env_sync(env, 1)) || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &x.txn)))
		goto out;
	rc = time_gets(o, lmdb_get, &x, &r, cpu);
out:
	if (x.txn)
		mdb_txn_abort(x.txn);
	if (env)
		mdb_env_close(env);
	if (rc) {
		printf("get    LMDB: %s\n", rc < 0 ? strerror(-rc) : mdb_strerror(rc));
		return -1;
	}
	printf("get    LMDB (mdb_get)         %8.1f ns  CPU %8.1f ns\n", r, *cpu);
	return r;
}
#endif

/* The peers of the get figure, each in its own directory. */
static const struct peer {
	const char *name;
	double (*get)(const kopts *o, const char *dir, double *cpu);
} peers[] = {
#ifdef SB_HAVE_LEVELDB
	{"LevelDB", get_leveldb},
#endif
#ifdef SB_HAVE_ROCKSDB
	{"RocksDB", get_rocksdb},
#endif
#ifdef SB_HAVE_LMDB
	{"LMDB", get_lmdb},
#endif
	{NULL, NULL},
};

/* Is peer `name` in o->peers (a comma-separated list, any case; NULL: all)? */
static int peer_wanted(const kopts *o, const char *name)
{
	size_t n = strlen(name);

	if (!o->peers)
		return 1;
	for (const char *p = o->peers; *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && !strncasecmp(p, name, n))
			return 1;
		p += l + (p[l] == ',');
	}
	return 0;
}

void kb_bench_get(const kopts *o)
{
	char d[4200];
	double ours, best = -1, ours_cpu = -1, best_cpu = -1;
	const char *who = "";

	printf("get by key: %llu keys of %u bytes, %u-byte values, %llu random gets, value copied, warm\n",
	       (unsigned long long)o->keys, GKEY, VAL, (unsigned long long)o->lookups);
	snprintf(d, sizeof(d), "%s/ours", o->dir);
	ours = get_ours(o, d, &ours_cpu);
	sb_bench_rmtree(d);
	for (const struct peer *p = peers; p->name; p++) {
		if (!peer_wanted(o, p->name))
			continue;
		snprintf(d, sizeof(d), "%s/%s", o->dir, p->name);
		double cpu = -1, x = p->get(o, d, &cpu);
		if (x > 0 && (best < 0 || x < best))
			best = x, best_cpu = cpu, who = p->name;
		sb_bench_rmtree(d);
	}
	if (ours > 0 && best > 0)
		printf("get    ours vs the fastest peer%s (%s): %.2fx (> 1: ours is faster), CPU %.2fx\n", o->peers ? " measured" : "", who, best / ours,
		       best_cpu / ours_cpu);
}
