/*
 * test_store_timeindex.c - the time index and the seek by time (issue 9
 * item 2): sb_log_seek_time against a brute-force scan of random timestamp
 * sequences (monotonic, jittered, stepping back, plateaus, negative), live,
 * after a reopen (the .tix files loaded), after their removal or damage
 * (rebuilt, byte for byte the same), read-only; crashes during the publish
 * of the index files (crash simulator); and the forms of sb_time_parse.
 *
 * SB_TIX_SEEDS (default 24) sets how many generated sequences.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "timeindex.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

#define T0 1700000000000000000LL

UT_ENV_FIXTURE("tix")

TestSuite(tix, .init = ut_env_setup, .fini = ut_env_teardown, .timeout = 300);

static unsigned env_uint(const char *name, unsigned def)
{
	const char *v = getenv(name);
	return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

/* What the store reported (counts of "time index rebuilt"). */
typedef struct reports {
	int tix_rebuilt, idx_rebuilt;
} reports;

static void on_report(void *arg, const char *topic, const char *msg)
{
	reports *r = arg;
	(void)topic;
	if (strstr(msg, "time index rebuilt"))
		__atomic_fetch_add(&r->tix_rebuilt, 1, __ATOMIC_RELAXED);
	else if (strstr(msg, "index rebuilt"))
		__atomic_fetch_add(&r->idx_rebuilt, 1, __ATOMIC_RELAXED);
}

static int no_sync(void *ctx, int fd)
{
	(void)ctx, (void)fd;
	return 0;
}

/* io NULL: the real calls without fdatasync (durability is the crash
 * test's business; the generated cases run 10x faster). */
static int open_store_full(const sb_log_config *cfg, const sb_io *io, int ro, int full, reports *rep,
			   sb_store **out);
static int open_store(const sb_log_config *cfg, const sb_io *io, int ro, reports *rep, sb_store **out)
{
	return open_store_full(cfg, io, ro, 0, rep, out);
}

static int open_store_full(const sb_log_config *cfg, const sb_io *io, int ro, int full, reports *rep,
			   sb_store **out)
{
	static sb_io quick;
	sb_store_options o;
	sb_store_options_default(&o);
	o.defaults = *cfg;
	o.no_flusher = 1;
	o.read_only = ro;
	o.full_check = full;
	quick = *sb_io_default();
	quick.fdatasync = no_sync;
	o.io = io ? io : &quick;
	if (rep) {
		o.report = on_report;
		o.report_arg = rep;
	}
	return sb_store_open(env.store, &o, out);
}

/* A timestamp sequence of n records in one of several shapes. */
static void gen_ts(int64_t *ts, size_t n, uint64_t *rng)
{
	int shape = (int)(ut_splitmix(rng) % 6);
	int64_t t = T0 + (int64_t)(ut_splitmix(rng) % 1000000);
	for (size_t i = 0; i < n; i++) {
		switch (shape) {
		case 0: t += 1 + (int64_t)(ut_splitmix(rng) % 1000); break;              /* growing */
		case 1: t += (int64_t)(ut_splitmix(rng) % 2000) - 800; break;            /* jitter */
		case 2: t = T0 + (int64_t)(ut_splitmix(rng) % 100000); break;            /* random */
		case 3: t += ut_splitmix(rng) % 50 == 0 ? -(int64_t)(ut_splitmix(rng) % 500000) /* steps back */
						: (int64_t)(ut_splitmix(rng) % 1000); break;
		case 4: t += ut_splitmix(rng) % 20 == 0 ? (int64_t)(ut_splitmix(rng) % 10000) : 0; break; /* plateaus */
		default: t = (int64_t)(ut_splitmix(rng) % 2000000) - 1000000; break;     /* around 0, negative */
		}
		ts[i] = t ? t : 1; /* 0 would mean "now" */
	}
}

/* The first offset whose timestamp is >= q, or n. */
static uint64_t brute(const int64_t *ts, size_t n, int64_t q)
{
	for (size_t i = 0; i < n; i++)
		if (ts[i] >= q)
			return i;
	return n;
}

static int append_ts(sb_log *l, const int64_t *ts, size_t from, size_t n, uint64_t *rng)
{
	for (size_t i = from; i < from + n;) {
		sb_record_in r[4];
		uint8_t buf[4][300];
		size_t k = 1 + ut_splitmix(rng) % 4;
		if (k > from + n - i)
			k = from + n - i;
		for (size_t j = 0; j < k; j++) {
			size_t len = ut_len(i + j, 7, 1, sizeof buf[j]);
			ut_fill(buf[j], len, i + j, 7);
			r[j] = (sb_record_in){.value = buf[j], .value_len = (uint32_t)len, .timestamp_ns = ts[i + j]};
		}
		int rc = sb_log_append(l, r, k, NULL);
		if (rc)
			return rc;
		i += k;
	}
	return 0;
}

/* Check many moments against the brute force; the failing one is named. */
static void check_seeks(sb_log *l, const int64_t *ts, size_t n, uint64_t *rng, const char *when)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		lo = ts[i] < lo ? ts[i] : lo;
		hi = ts[i] > hi ? ts[i] : hi;
	}
	cr_assert_eq(sb_log_next(l), n);
	cr_assert_eq(sb_log_start(l), 0);
	for (int q = 0; q < 400; q++) {
		int64_t t;
		switch (q) {
		case 0: t = INT64_MIN; break;
		case 1: t = lo; break;
		case 2: t = hi; break;
		case 3: t = hi + 1; break;
		case 4: t = INT64_MAX; break;
		default:
			t = n ? ts[ut_splitmix(rng) % n] + (int64_t)(ut_splitmix(rng) % 3) - 1 : 0;
			if (q % 5 == 0 && n)
				t = lo + (int64_t)(ut_splitmix(rng) % ((uint64_t)hi - (uint64_t)lo + 2));
		}
		uint64_t got = UINT64_MAX, want = brute(ts, n, t);
		int rc = sb_log_seek_time(l, t, &got);
		cr_assert_eq(rc, 0, "%s: seek %lld: %s", when, (long long)t, sb_strerror(rc));
		cr_assert_eq(got, want, "%s: seek %lld found offset %llu, the first record at or after it is %llu",
			     when, (long long)t, (unsigned long long)got, (unsigned long long)want);
	}
}

static char *tdir(char *buf)
{
	return ut_topic_path(&env, "t", NULL, buf, 4096);
}

Test(tix, non_monotonic)
{
	/* A clock step back cannot hide records: the running maximum. */
	static const int64_t ts[] = {10, 50, 20, 30, 60, 5, 60, 70};
	static const struct { int64_t t; uint64_t want; } q[] = {
		{0, 0}, {10, 0}, {11, 1}, {25, 1}, {50, 1}, {51, 4}, {60, 4}, {61, 7}, {70, 7}, {71, 8},
	};
	sb_log_config cfg;
	sb_store *s;
	uint64_t rng = 1, got;
	ut_cfg(&cfg, 0, SB_SYNC_NEVER);
	cfg.index_interval_bytes = 1; /* an interval per record */
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(open_store(&cfg, NULL, 0, NULL, &s), 0);
		sb_log *l = ut_topic(s, "t");
		cr_assert_not_null(l);
		if (round == 0)
			cr_assert_eq(append_ts(l, ts, 0, 8, &rng), 0);
		for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
			cr_assert_eq(sb_log_seek_time(l, q[i].t, &got), 0);
			cr_assert_eq(got, q[i].want, "round %d: %lld gives %llu, not %llu", round,
				     (long long)q[i].t, (unsigned long long)got, (unsigned long long)q[i].want);
		}
		cr_assert_eq(sb_store_close(s), 0);
		cfg.index_interval_bytes = 100; /* another interval at the reopen */
	}
}

Test(tix, empty_and_removed)
{
	sb_log_config cfg;
	sb_store *s;
	uint64_t got = 7;
	ut_cfg(&cfg, 0, SB_SYNC_NEVER);
	cr_assert_eq(open_store(&cfg, NULL, 0, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_eq(sb_log_seek_time(l, 5, &got), 0);
	cr_assert_eq(got, 0);
	cr_assert_eq(sb_store_remove(s, "t"), 0);
	got = 7;
	cr_assert_eq(sb_log_seek_time(l, 5, &got), -ENOENT);
	cr_assert_eq(got, 7, "out-parameter untouched on failure");
	cr_assert_eq(sb_store_close(s), 0);
}

/* Copies of every .tix file of the topic (name, bytes). */
typedef struct tix_files {
	char **names;
	int n;
	uint8_t **data;
	size_t *len;
} tix_files;

static void tix_snapshot(tix_files *f)
{
	char d[4096], p[8192];
	f->n = uf_list_suffix(tdir(d), SB_TIX_SUFFIX, &f->names);
	cr_assert_geq(f->n, 0);
	f->data = calloc((size_t)f->n + 1, sizeof *f->data);
	f->len = calloc((size_t)f->n + 1, sizeof *f->len);
	for (int i = 0; i < f->n; i++)
		cr_assert_eq(uf_read_all(uf_join(p, sizeof p, d, f->names[i]), &f->data[i], &f->len[i]), 0);
}

static void tix_free(tix_files *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->data[i]);
	free(f->data);
	free(f->len);
	uf_list_free(f->names, f->n);
}

static void tix_same(const tix_files *a, const tix_files *b, const char *when)
{
	cr_assert_eq(a->n, b->n, "%s: %d time index files, were %d", when, b->n, a->n);
	for (int i = 0; i < a->n; i++) {
		cr_assert_str_eq(a->names[i], b->names[i]);
		cr_assert(a->len[i] == b->len[i] && !memcmp(a->data[i], b->data[i], a->len[i]),
			  "%s: %s differs from the one written at close", when, a->names[i]);
	}
}

/* One generated sequence through every way a time index comes to be. */
static void one_seed(uint64_t seed)
{
	uint64_t rng = seed * 7919 + 1;
	size_t n = 100 + ut_splitmix(&rng) % 1500;
	int64_t *ts = malloc(n * sizeof *ts);
	char when[64], d[4096], p[8192];
	sb_log_config cfg;
	sb_store *s;
	reports rep = {0};
	tix_files before, after;

	gen_ts(ts, n, &rng);
	ut_cfg(&cfg, 4096 + ut_splitmix(&rng) % 8192, SB_SYNC_NEVER);
	cfg.index_interval_bytes = (uint32_t)(1 + ut_splitmix(&rng) % 2048);
	cr_assert_eq(uf_rmrf(env.store), 0);

	/* Live: appended in two runs, the second after a reopen. */
	size_t half = n / 2;
	cr_assert_eq(open_store(&cfg, NULL, 0, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_eq(append_ts(l, ts, 0, half, &rng), 0);
	snprintf(when, sizeof when, "seed %llu live", (unsigned long long)seed);
	check_seeks(l, ts, half, &rng, when);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(open_store(&cfg, NULL, 0, &rep, &s), 0);
	l = ut_topic(s, "t");
	cr_assert_eq(append_ts(l, ts, half, n - half, &rng), 0);
	snprintf(when, sizeof when, "seed %llu reopened", (unsigned long long)seed);
	check_seeks(l, ts, n, &rng, when);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(rep.tix_rebuilt + rep.idx_rebuilt, 0, "a clean reopen rebuilt an index");
	int nseg = uf_count_suffix(tdir(d), SB_SEG_SUFFIX);
	cr_assert_eq(uf_count_suffix(d, SB_TIX_SUFFIX), nseg, "one time index per segment");
	tix_snapshot(&before);

	/* Loaded from the files, read-write and read-only. */
	cr_assert_eq(open_store(&cfg, NULL, 1, &rep, &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	snprintf(when, sizeof when, "seed %llu read-only", (unsigned long long)seed);
	check_seeks(l, ts, n, &rng, when);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(rep.tix_rebuilt + rep.idx_rebuilt, 0);

	/* What `streambus recover` does, knowing another index interval:
	 * every record checked against the files, which are kept. */
	sb_log_config other = cfg;
	other.index_interval_bytes = cfg.index_interval_bytes * 3 + 7;
	memset(&rep, 0, sizeof rep);
	cr_assert_eq(open_store_full(&other, NULL, 0, 1, &rep, &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	snprintf(when, sizeof when, "seed %llu full check", (unsigned long long)seed);
	check_seeks(l, ts, n, &rng, when);
	cr_assert_eq(sb_store_close(s), 0);
	cr_assert_eq(rep.tix_rebuilt + rep.idx_rebuilt, 0, "%s: a right index rebuilt", when);
	tix_snapshot(&after);
	tix_same(&before, &after, when);
	tix_free(&after);

	/* Removed, or damaged at a random byte, or another segment's: rebuilt
	 * (reported for sealed segments), the same bytes as before. */
	for (int how = 0; how < 3; how++) {
		if (how == 0)
			cr_assert_eq(uf_remove_suffix(d, SB_TIX_SUFFIX), before.n);
		for (int i = 0; how && i < before.n; i++) {
			uf_join(p, sizeof p, d, before.names[i]);
			if (how == 1)
				cr_assert_eq(uf_flip_byte(p, (off_t)(ut_splitmix(&rng) % before.len[i]),
							  (uint8_t)(1u << ut_splitmix(&rng) % 8)), 0);
			else if (before.n > 1)
				cr_assert_eq(uf_write_at(p, 0, before.data[(i + 1) % before.n],
							 before.len[(i + 1) % before.n]), 0);
		}
		memset(&rep, 0, sizeof rep);
		cr_assert_eq(open_store(&cfg, NULL, 0, &rep, &s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
		snprintf(when, sizeof when, "seed %llu rebuilt (%d)", (unsigned long long)seed, how);
		check_seeks(l, ts, n, &rng, when);
		cr_assert_eq(sb_store_close(s), 0);
		cr_assert_eq(rep.idx_rebuilt, 0, "%s: the offset index was rebuilt too", when);
		if (how == 0)
			cr_assert_geq(rep.tix_rebuilt, nseg - 1, "%s: rebuilt %d, %d segments", when,
				      rep.tix_rebuilt, nseg);
		tix_snapshot(&after);
		tix_same(&before, &after, when);
		tix_free(&after);
	}
	tix_free(&before);

	/* Compressed (every other seed): the .tix written while plain serves
	 * the blocks; without it, it is rebuilt from them, then saved. */
	if (seed % 2 == 0) {
		size_t done = 0;
		cfg.compression_block_bytes = (uint32_t)(1024 + ut_splitmix(&rng) % 2048);
		cr_assert_eq(open_store(&cfg, NULL, 0, NULL, &s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
		cr_assert_eq(sb_log_compress(l, &done), 0);
		cr_assert_eq(done, (size_t)nseg - 1, "compressed %zu of %d segments", done, nseg - 1);
		snprintf(when, sizeof when, "seed %llu compressed", (unsigned long long)seed);
		check_seeks(l, ts, n, &rng, when);
		cr_assert_eq(sb_store_close(s), 0);
		for (int round = 0; round < 3; round++) {
			if (round == 1)
				cr_assert_eq(uf_remove_suffix(d, SB_TIX_SUFFIX), nseg);
			memset(&rep, 0, sizeof rep);
			cr_assert_eq(open_store(&cfg, NULL, 0, &rep, &s), 0);
			cr_assert_eq(sb_store_get(s, "t", &l), 0);
			snprintf(when, sizeof when, "seed %llu compressed, round %d", (unsigned long long)seed, round);
			check_seeks(l, ts, n, &rng, when);
			cr_assert_eq(sb_store_close(s), 0);
			cr_assert_eq(rep.tix_rebuilt, round == 1 ? nseg - 1 : 0, "%s: %d rebuilt", when, rep.tix_rebuilt);
			cr_assert_eq(uf_count_suffix(d, SB_TIX_SUFFIX), nseg, "%s", when);
		}
	}
	free(ts);
}

Test(tix, generated)
{
	unsigned seeds = env_uint("SB_TIX_SEEDS", 24);
	for (unsigned i = 0; i < seeds; i++)
		one_seed(i);
}

/* Crash at each call of the close that publishes the index files (and
 * power loss in each mode): the reopened log finds every moment right and
 * its time index files are whole. */
Test(tix, crash_during_publish)
{
	sb_log_config cfg;
	const size_t n = 300;
	int64_t ts[300];
	uint64_t rng = 99;
	int crashed = 0;
	static const fio_kind kinds[] = {FIO_FDATASYNC, FIO_RENAME, FIO_PWRITE, FIO_UNLINK};

	gen_ts(ts, n, &rng);
	ut_cfg(&cfg, 4096, SB_SYNC_NEVER);
	cfg.index_interval_bytes = 256;
	for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
		for (unsigned k = 1; k < 400; k += 1 + (k > 16) * 4) {
			char d[4096];
			sb_store *s;
			cr_assert_eq(uf_rmrf(env.store), 0);
			cr_assert_eq(uf_rmrf(env.stash), 0);
			cr_assert_eq(mkdir(env.stash, 0755), 0);
			fio *f = (k & 1) ? fio_new_mmap(env.stash) : fio_new(env.stash);
			cr_assert_not_null(f);
			fio_set_sync(f, 0, 0);
			cr_assert_eq(open_store(&cfg, fio_io(f), 0, NULL, &s), 0);
			sb_log *l = ut_topic(s, "t");
			cr_assert_eq(append_ts(l, ts, 0, n, &rng), 0);
			/* The sync publishes the sealed segments' index files, the
			 * close the last one's. */
			fio_crash_at(f, kinds[ki], k);
			sb_log_sync(l);
			sb_store_close(s);
			if (!fio_crashed(f)) {
				fio_free(f);
				break; /* past the close's last call of this kind */
			}
			crashed++;
			cr_assert_eq(fio_crash_apply(f, k * 31 + ki, (int)(k % FIO_CRASH_NMODES), NULL), 0);
			fio_free(f);
			/* A prefix of the records survives (nothing was acknowledged
			 * durable before the sync returned). */
			cr_assert_eq(open_store(&cfg, NULL, 0, NULL, &s), 0);
			cr_assert_eq(sb_store_get(s, "t", &l), 0);
			char when[64];
			snprintf(when, sizeof when, "crash at call %u of kind %d", k, (int)kinds[ki]);
			check_seeks(l, ts, sb_log_next(l), &rng, when);
			cr_assert_eq(sb_store_close(s), 0);
			/* Whatever the crash left, the files are whole now. */
			char **names;
			int m = uf_list_suffix(tdir(d), SB_TIX_SUFFIX, &names);
			cr_assert_eq(m, uf_count_suffix(d, SB_SEG_SUFFIX), "%s", when);
			cr_assert_eq(uf_count_suffix(d, ".tmp"), 0, "%s: a temp file left", when);
			uf_list_free(names, m);
		}
	}
	cr_log_info("%d crashes", crashed);
	cr_assert_gt(crashed, 20);
}

Test(tix, loader_rejects)
{
	/* The parser refuses what does not hold together, whatever the CRCs. */
	uint8_t buf[SB_TIX_HDR + 3 * SB_TIX_ENTRY];
	sb_tindex *t = NULL, *u = NULL;
	cr_assert_eq(sb_tindex_new(16, &t), 0);
	sb_tindex_feed(t, 0, 100, 1);
	sb_tindex_feed(t, 1, 50, 1);
	sb_tindex_feed(t, 2, 200, 1);
	sb_tindex_feed(t, 3, 150, 1);
	sb_tindex_feed(t, 4, 300, 1);
	cr_assert_eq(sb_tindex_count(t), 2); /* (100, 0)... (200, 2); [4 open */
	uint32_t rel;
	cr_assert_eq(sb_tindex_find(t, 150, &rel), 0);
	cr_assert_eq(rel, 2);
	cr_assert_eq(sb_tindex_find(t, 250, &rel), 0);
	cr_assert_eq(rel, 4);
	cr_assert_eq(sb_tindex_find(t, 301, &rel), -ENOENT);
	char path[8192];
	uf_join(path, sizeof path, env.root, "x.tix");
	cr_assert_eq(sb_tindex_save(t, sb_io_default(), path, 1000, 4096), 0);
	size_t len;
	uint8_t *file;
	cr_assert_eq(uf_read_all(path, &file, &len), 0);
	cr_assert_eq(len, SB_TIX_HDR + 2 * SB_TIX_ENTRY);
	cr_assert_eq(sb_tindex_parse(file, len, 1000, 4096, 16, &u), 0);
	cr_assert(sb_tindex_equal(t, u));
	sb_tindex_free(u);
	cr_assert_eq(sb_tindex_parse(file, len, 1001, 4096, 16, &u), SB_ECORRUPT, "another base");
	cr_assert_eq(sb_tindex_parse(file, len, 1000, 4097, 16, &u), SB_ECORRUPT, "another length");
	cr_assert_eq(sb_tindex_parse(file, len - 1, 1000, 4096, 16, &u), SB_ECORRUPT, "short");
	/* Out of order under good CRCs. */
	memcpy(buf, file, len);
	sb_put64(buf + SB_TIX_HDR + SB_TIX_ENTRY, 90);
	sb_put32(buf + SB_TIX_AT_ECRC, sb_crc32c(0, buf + SB_TIX_HDR, len - SB_TIX_HDR));
	sb_put32(buf + SB_TIX_AT_CRC, sb_crc32c(0, buf, SB_TIX_AT_CRC));
	cr_assert_eq(sb_tindex_parse(buf, len, 1000, 4096, 16, &u), SB_ECORRUPT, "unsorted");
	/* An entry at or past the open interval. */
	memcpy(buf, file, len);
	sb_put32(buf + SB_TIX_AT_OPEN, 2);
	sb_put32(buf + SB_TIX_AT_CRC, sb_crc32c(0, buf, SB_TIX_AT_CRC));
	cr_assert_eq(sb_tindex_parse(buf, len, 1000, 4096, 16, &u), SB_ECORRUPT, "entry in the open interval");
	free(file);
	sb_tindex_free(t);
}

Test(tix, time_forms)
{
	static const struct { const char *s; int rc; int64_t want; } c[] = {
		{"2026-11-29T10:00:00Z", 0, 1795946400LL * 1000000000},
		{"2026-11-29t10:00:00z", 0, 1795946400LL * 1000000000},
		{"2026-11-29T10:00:00.5Z", 0, 1795946400LL * 1000000000 + 500000000},
		{"2026-11-29T10:00:00.123456789123Z", 0, 1795946400LL * 1000000000 + 123456789},
		{"2026-11-29T11:00:00+01:00", 0, 1795946400LL * 1000000000},
		{"2026-11-29T09:30:00-0030", 0, 1795946400LL * 1000000000},
		{"2026-11-29T12:00+02", 0, 1795946400LL * 1000000000},
		{"2026-11-29T10:00:00", 0, 1795946400LL * 1000000000},
		{"2026-11-29", 0, 1795910400LL * 1000000000},
		{"2024-02-29", 0, 1709164800LL * 1000000000},
		{"1970-01-01", 0, 0},
		{"@1795946400", 0, 1795946400LL * 1000000000},
		{"@1795946400.25", 0, 1795946400LL * 1000000000 + 250000000},
		{"@-1.5", 0, -1500000000},
		{"-90s", 0, 1000LL * 1000000000 - 90LL * 1000000000},
		{"-15m", 0, 1000LL * 1000000000 - 900LL * 1000000000},
		{"-2h", 0, 1000LL * 1000000000 - 7200LL * 1000000000},
		{"-7d", 0, 1000LL * 1000000000 - 604800LL * 1000000000},
		{"-1.5h", 0, 1000LL * 1000000000 - 5400LL * 1000000000},
		{"-0s", 0, 1000LL * 1000000000},
		{"2025-02-29", -EINVAL, 0}, {"2026-13-01", -EINVAL, 0}, {"2026-11-29T24:00:00Z", -EINVAL, 0},
		{"2026-11-29T10:00:00Q", -EINVAL, 0}, {"2026-11-29T10", -EINVAL, 0}, {"26-11-29", -EINVAL, 0},
		{"", -EINVAL, 0}, {"now", -EINVAL, 0}, {"-5", -EINVAL, 0}, {"-5y", -EINVAL, 0}, {"@", -EINVAL, 0},
		{"@1.", -EINVAL, 0}, {"-s", -EINVAL, 0}, {"@12x", -EINVAL, 0}, {"2026-11-29Z", -EINVAL, 0},
		/* past what ns in an int64 hold: clamped, a bound no record passes */
		{"9999-01-01", 0, INT64_MAX}, {"2262-04-12", 0, INT64_MAX}, {"1600-01-01", 0, INT64_MIN},
		{"@99999999999", 0, INT64_MAX}, {"@-99999999999", 0, INT64_MIN}, {"-999999999d", 0, INT64_MIN},
		{"2262-04-11T23:47:16Z", 0, INT64_C(9223372036000000000)},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int64_t got = 42;
		int rc = sb_time_parse(c[i].s, 1000LL * 1000000000, &got);
		cr_expect_eq(rc, c[i].rc, "'%s': %d, not %d", c[i].s, rc, c[i].rc);
		if (!c[i].rc)
			cr_expect_eq(got, c[i].want, "'%s' is %lld, not %lld", c[i].s, (long long)got,
				     (long long)c[i].want);
		else
			cr_expect_eq(got, 42, "'%s': out-parameter touched", c[i].s);
	}
}

Test(tix, start_inside_the_first_segment)
{
	/* Records removed below the start still count in the running maximum
	 * (they are in the first segment): a moment they reach answers the
	 * start, never an offset below it. */
	static const int64_t ts[] = {10, 90, 20, 30, 40, 50, 95, 60};
	sb_log_config cfg;
	sb_store *s;
	uint64_t rng = 3, got;
	ut_cfg(&cfg, 0, SB_SYNC_NEVER);
	cfg.index_interval_bytes = 1;
	cr_assert_eq(open_store(&cfg, NULL, 0, NULL, &s), 0);
	sb_log *l = ut_topic(s, "t");
	cr_assert_eq(append_ts(l, ts, 0, 8, &rng), 0);
	cr_assert_eq(sb_log_delete_before(l, 3), 0);
	cr_assert_eq(sb_log_start(l), 3);
	cr_assert_eq(sb_log_seek_time(l, 15, &got), 0);
	cr_assert_eq(got, 3, "below the start: %llu", (unsigned long long)got);
	cr_assert_eq(sb_log_seek_time(l, 91, &got), 0);
	cr_assert_eq(got, 6);
	cr_assert_eq(sb_log_seek_time(l, 96, &got), 0);
	cr_assert_eq(got, 8);
	cr_assert_eq(sb_store_close(s), 0);
}
