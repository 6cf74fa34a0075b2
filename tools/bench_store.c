/*
 * bench_store.c - the storage engine's side of `streambus bench`: every
 * figure measured through the public API (sb_store.h), plus the store's
 * internal index lookup (index.h). Each workload gets its own store under
 * the scratch directory, removed when done. The fsync figures, which run
 * both sides in turn, are in bench_fsync.c.
 */
#define SB_BENCH_INTERNAL
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "sb_store.h"

#define PAYLOAD 100u  /* the payload of the read and fsync workloads */
#define OPEN_PAYLOAD 1024u

/* Open (creating) a store in c->dir/name with `sync` for every topic; the
 * index interval too if nonzero. */
static int open_store(const sb_bench_cfg *c, const char *name, enum sb_sync sync, uint32_t interval,
		      sb_store **s, char *path, size_t cap)
{
	sb_store_options o;

	if (snprintf(path, cap, "%s/%s", c->dir, name) >= (int)cap)
		return -ENAMETOOLONG;
	sb_store_options_default(&o);
	o.defaults.sync = sync;
	if (interval)
		o.defaults.index_interval_bytes = interval;
	o.no_flusher = sync != SB_SYNC_INTERVAL;
	return sb_store_open(path, &o, s);
}

static int topic(sb_store *s, const char *name, sb_log **l)
{
	int rc = sb_store_create(s, name);

	if (rc && rc != -EEXIST)
		return rc;
	return sb_store_get(s, name, l);
}

/* Append n records of `len` payload bytes, `batch` per call (records
 * numbered from sb_log_next, so payloads are predictable). */
static int fill(const sb_bench_cfg *c, sb_log *l, uint64_t n, uint32_t len, size_t batch)
{
	sb_record_in r[64];
	uint64_t first = sb_log_next(l);

	if (batch > 64)
		batch = 64;
	for (uint64_t i = 0; i < n;) {
		size_t k = n - i < batch ? (size_t)(n - i) : batch;
		for (size_t j = 0; j < k; j++)
			r[j] = (sb_record_in){.value = sb_bench_payload(c, first + i + j, len), .value_len = len};
		int rc = sb_log_append(l, r, k, NULL);
		if (rc)
			return rc;
		i += k;
	}
	return 0;
}

/* Index entries in a topic directory's .idx files (from their sizes). */
static long idx_entries(const char *store_dir, const char *name)
{
	char path[4096];
	long total = 0;
	struct dirent *d;
	DIR *dir;

	if (snprintf(path, sizeof(path), "%s/%s", store_dir, name) >= (int)sizeof(path))
		return -1;
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		size_t n = strlen(d->d_name);
		struct stat st;
		if (n < 4 || strcmp(d->d_name + n - 4, ".idx"))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s/%s", store_dir, name, d->d_name) < (int)sizeof(path) &&
		    stat(path, &st) == 0 && st.st_size >= 32)
			total += (long)(st.st_size - 32) / 12;
	}
	closedir(dir);
	return total;
}

/* Bytes one record of `len` payload bytes and no key takes in a segment. */
static uint32_t rec_bytes(uint32_t len)
{
	sb_record_in in = {.value_len = len};

	return (uint32_t)sb_record_size(&in);
}

/* ---- index lookup ---------------------------------------------------------- */

static void bench_index(const sb_bench_cfg *c, sb_bench_val *v)
{
	enum { N = 10000, STEP = 31 };
	sb_bench_index *ix;
	double r[16];
	uint64_t allocs = 0, acc = 0, rng = 0x1234567;
	int rc = sb_bench_index_new(N, STEP, &ix);

	if (rc) {
		sb_bench_fail_rc(v, "sb_bench_index_new", rc);
		return;
	}
	for (int rep = 0; rep < c->reps; rep++) {
		int bad = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t k = 0; k < c->lookups; k++) {
			uint32_t rel = (uint32_t)sb_bench_below(&rng, (uint64_t)N * STEP);
			uint32_t pos = 0;
			bad |= sb_bench_index_lookup(ix, rel, &pos);
			acc += pos;
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (bad) {
			sb_bench_fail(v, "sb_index_lookup", "a lookup failed");
			goto out_free;
		}
		r[rep] = (double)ns / (double)c->lookups;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, c->lookups, allocs);
	v->how = "random keys over 10,000 entries (the tail-first check then binary search); includes ~2 ns of RNG";
out_free:
	sb_bench_index_free(ix);
}

/* A get with a copy (sb_log_read into a caller buffer, as leveldb_get copies
 * the value out) over a log of 10,000 records whose index has an entry per
 * record (index_interval_bytes = the record size), after a clean reopen.
 * The header lookup alone (sb_log_stat) is an extra. */
static void bench_stat(const sb_bench_cfg *c, sb_bench_val *v)
{
	const uint32_t recsz = rec_bytes(PAYLOAD);
	const uint64_t n = 10000;
	char path[4096];
	sb_store *s;
	sb_log *l;
	double r[16];
	uint64_t allocs = 0, rng = 0xabcdef, acc = 0;
	int rc = open_store(c, "stat", SB_SYNC_NEVER, recsz, &s, path, sizeof(path));

	if (rc) {
		sb_bench_fail_rc(v, "sb_store_open", rc);
		return;
	}
	rc = topic(s, "t", &l);
	if (!rc)
		rc = fill(c, l, n, PAYLOAD, 64);
	int rc2 = sb_store_close(s);
	if (rc || rc2) {
		sb_bench_fail_rc(v, "building the log", rc ? rc : rc2);
		goto out_rm;
	}
	long entries = idx_entries(path, "t");
	rc = open_store(c, "stat", SB_SYNC_NEVER, recsz, &s, path, sizeof(path));
	if (rc) {
		sb_bench_fail_rc(v, "reopen", rc);
		goto out_rm;
	}
	rc = sb_store_get(s, "t", &l);
	if (rc) {
		sb_bench_fail_rc(v, "reopen", rc);
		goto out_close;
	}
	uint64_t start = sb_log_start(l), cnt = sb_log_next(l) - start;
	if (cnt != n) {
		sb_bench_fail(v, "reopen", "the reopened log does not hold the records appended");
		goto out_close;
	}
	for (int rep = 0; rep < c->reps; rep++) {
		uint8_t buf[PAYLOAD + 28];
		uint64_t wrong = 0;
		size_t got;

		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t k = 0; k < c->lookups; k++) {
			uint64_t off = start + sb_bench_below(&rng, n);
			rc = sb_log_read(l, off, 0, buf, sizeof(buf), &got, NULL);
			if (rc)
				break;
			wrong += got != PAYLOAD;
			acc += buf[0];
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (rc) {
			sb_bench_fail_rc(v, "sb_log_read", rc);
			goto out_close;
		}
		if (wrong) {
			sb_bench_fail(v, "sb_log_read", "returned a value of the wrong size");
			goto out_close;
		}
		r[rep] = (double)ns / (double)c->lookups;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, c->lookups, allocs);
	sb_bench_extra(v, "index_entries", (double)entries);
	/* The header lookup alone (no LevelDB equivalent: a get always copies). */
	uint64_t wrong = 0, t0 = sb_bench_now();
	for (uint64_t k = 0; k < c->lookups && !rc; k++) {
		uint64_t off = start + sb_bench_below(&rng, n);
		sb_record_info info;
		rc = sb_log_stat(l, off, &info);
		wrong += info.offset != off;
		acc += info.stream_pos;
	}
	if (!rc && !wrong)
		sb_bench_extra(v, "header_only_sb_log_stat_ns", (double)(sb_bench_now() - t0) / (double)c->lookups);
	sb_bench_keep(acc);
	v->how = "random offsets, one record per index entry, reopened; sb_log_read checks the CRC and copies "
		 "the 100-byte value into a caller buffer";
out_close:
	sb_store_close(s);
out_rm:
	sb_bench_rmtree(path);
}

/* ---- appends and reads --------------------------------------------------- */

/* One record per call, sync never: c->reps runs of records/reps appends
 * into the same topic; ns per append. */
static int append_loop(const sb_bench_cfg *c, sb_log *l, uint32_t len, sb_bench_val *v)
{
	uint64_t per = c->records / (uint64_t)c->reps, allocs = 0;
	double r[16];
	int rc = 0;

	for (int rep = 0; rep < c->reps; rep++) {
		uint64_t first = sb_log_next(l);
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t i = 0; i < per && !rc; i++) {
			sb_record_in in = {.value = sb_bench_payload(c, first + i, len), .value_len = len};
			rc = sb_log_append(l, &in, 1, NULL);
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (rc) {
			sb_bench_fail_rc(v, "sb_log_append", rc);
			return rc;
		}
		r[rep] = (double)ns / (double)per;
	}
	sb_bench_set(v, r, c->reps, per, allocs);
	v->how = "runs one after another into one fresh topic (default 128 MiB segments), timestamp 0 = now";
	return 0;
}

#define HOT_WINDOW 100000u

/* ns per dependent load (pointer chase over a random cycle of the cache
 * lines) in a buffer of `bytes` bytes; 0 if out of memory. */
static double dependent_load_ns(uint64_t bytes)
{
	uint64_t lines = bytes / 64, rng = 4242, p = 0, steps = 1000000;
	uint64_t *m = lines > 1 ? malloc(lines * 64) : NULL;
	uint32_t *perm = m ? malloc(lines * sizeof(uint32_t)) : NULL;

	if (!perm) {
		free(m);
		return 0;
	}
	for (uint64_t i = 0; i < lines; i++)
		perm[i] = (uint32_t)i;
	for (uint64_t i = lines - 1; i > 0; i--) { /* Sattolo: one cycle */
		uint64_t j = sb_bench_below(&rng, i);
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (uint64_t i = 0; i < lines; i++)
		m[(uint64_t)perm[i] * 8] = (uint64_t)perm[(i + 1) % lines] * 8;
	free(perm);
	for (uint64_t k = 0; k < steps / 4; k++) /* warm the TLB and caches alike */
		p = m[p];
	uint64_t t0 = sb_bench_now();
	for (uint64_t k = 0; k < steps; k++)
		p = m[p];
	double ns = (double)(sb_bench_now() - t0) / (double)steps;
	sb_bench_keep(p);
	free(m);
	return ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Latency of single appends (each timed on its own, so the clock's cost is
 * in them): percentiles and the worst, as extras of v. */
static void append_latency(const sb_bench_cfg *c, sb_log *l, uint32_t len, sb_bench_val *v)
{
	uint64_t n = c->records / (uint64_t)c->reps, first = sb_log_next(l);
	uint32_t *lat = malloc(n * sizeof(uint32_t));
	int rc = 0;

	if (!lat)
		return;
	for (uint64_t i = 0; i < n && !rc; i++) {
		sb_record_in in = {.value = sb_bench_payload(c, first + i, len), .value_len = len};
		uint64_t t0 = sb_bench_now();
		rc = sb_log_append(l, &in, 1, NULL);
		uint64_t d = sb_bench_now() - t0;
		lat[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
	if (!rc) {
		qsort(lat, n, sizeof(uint32_t), cmp_u32);
		sb_bench_extra(v, "p50_ns", lat[n / 2]);
		sb_bench_extra(v, "p99_ns", lat[n * 99 / 100]);
		sb_bench_extra(v, "p99.99_ns", lat[n * 9999 / 10000]);
		sb_bench_extra(v, "max_ns", lat[n - 1]);
	}
	free(lat);
}

/* Random sb_log_read of whole records; the log holds records [start, next)
 * with PAYLOAD-byte payloads. */
static void bench_read(const sb_bench_cfg *c, sb_log *l, sb_bench_val *v)
{
	uint8_t buf[PAYLOAD + 28];
	uint64_t start = sb_log_start(l), n = sb_log_next(l) - start, allocs = 0, rng = 77, acc = 0;
	double r[16];
	size_t got;
	int rc = 0;

	/* Warm: read everything once and check it. */
	for (uint64_t i = 0; i < n; i++) {
		rc = sb_log_read(l, start + i, 0, buf, sizeof(buf), &got, NULL);
		if (rc) {
			sb_bench_fail_rc(v, "sb_log_read (warm-up)", rc);
			return;
		}
		if (got != PAYLOAD || memcmp(buf, sb_bench_payload(c, start + i, PAYLOAD), PAYLOAD)) {
			sb_bench_fail(v, "sb_log_read (warm-up)", "returned the wrong payload");
			return;
		}
	}
	for (int rep = 0; rep < c->reps; rep++) {
		size_t short_reads = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t k = 0; k < c->lookups; k++) {
			rc = sb_log_read(l, start + sb_bench_below(&rng, n), 0, buf, sizeof(buf), &got, NULL);
			if (rc)
				break;
			short_reads += got != PAYLOAD;
			acc += buf[0];
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (rc || short_reads) {
			sb_bench_fail_rc(v, "sb_log_read", rc ? rc : -EIO);
			return;
		}
		r[rep] = (double)ns / (double)c->lookups;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, c->lookups, allocs);
	v->how = "100-byte payloads, CRC checked by each read, uniform random offsets over the whole log";
	/* The same over the last 100,000 records only (13 MB: a hot set). */
	if (n > HOT_WINDOW) {
		uint64_t t0 = sb_bench_now();
		for (uint64_t k = 0; k < c->lookups && !rc; k++)
			rc = sb_log_read(l, start + n - HOT_WINDOW + sb_bench_below(&rng, HOT_WINDOW), 0, buf, sizeof(buf),
					 &got, NULL);
		if (!rc)
			sb_bench_extra(v, "hot_100k_records_ns", (double)(sb_bench_now() - t0) / (double)c->lookups);
	}
	/* The machine's floor: one dependent random load in a buffer the size
	 * of the log (a read needs at least one: the record itself). */
	double floor_ns = dependent_load_ns(n * rec_bytes(PAYLOAD));
	if (floor_ns > 0)
		sb_bench_extra(v, "dependent_load_floor_ns", floor_ns);
}

static void bench_scan_stream(const sb_bench_cfg *c, sb_log *l, sb_bench_val *v)
{
	const size_t chunk = 1u << 20;
	uint8_t *buf = malloc(chunk);
	uint64_t allocs = 0, total = 0, acc = 0;
	double r[16];
	int rc = 0;

	if (!buf) {
		sb_bench_fail_rc(v, "malloc", -ENOMEM);
		return;
	}
	for (int rep = 0; rep < c->reps; rep++) {
		uint64_t pos = sb_log_stream_start(l), calls = 0;
		size_t got = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (;;) {
			rc = sb_log_read_stream(l, pos, buf, chunk, &got);
			if (rc || !got)
				break;
			acc += buf[got - 1];
			pos += got;
			calls++;
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		total = pos - sb_log_stream_start(l);
		if (rc || pos != sb_log_stream_end(l)) {
			sb_bench_fail_rc(v, "sb_log_read_stream", rc ? rc : -EIO);
			goto out_free;
		}
		r[rep] = sb_bench_mbps(total, ns);
		if (!rep)
			v->ops = calls;
	}
	sb_bench_keep(acc);
	uint64_t calls = v->ops;
	sb_bench_set(v, r, c->reps, calls, allocs);
	sb_bench_extra(v, "bytes_per_pass", (double)total);
	v->how = "whole stream start to end, payload bytes only; allocs per 1 MiB call";
out_free:
	free(buf);
}

static void bench_scan_records(const sb_bench_cfg *c, sb_log *l, sb_bench_val *v)
{
	uint8_t buf[PAYLOAD + 28];
	uint64_t start = sb_log_start(l), n = sb_log_next(l) - start, allocs = 0, acc = 0, bytes = 0;
	double r[16], per[16];
	size_t got;
	int rc = 0;

	for (int rep = 0; rep < c->reps; rep++) {
		bytes = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t i = 0; i < n; i++) {
			rc = sb_log_read(l, start + i, 0, buf, sizeof(buf), &got, NULL);
			if (rc)
				break;
			bytes += got;
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (rc) {
			sb_bench_fail_rc(v, "sb_log_read", rc);
			return;
		}
		acc += buf[0];
		r[rep] = sb_bench_mbps(bytes, ns);
		per[rep] = (double)ns / (double)n;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, n, allocs);
	sb_bench_extra(v, "ns_per_record", sb_bench_median(per, c->reps));
	v->how = "every record in offset order, 100-byte payloads, CRC checked per record";
}

static void bench_stream4k(const sb_bench_cfg *c, sb_log *l, sb_bench_val *v)
{
	uint8_t buf[4096];
	uint64_t s0 = sb_log_stream_start(l), span = sb_log_stream_end(l) - s0 - sizeof(buf) + 1;
	uint64_t allocs = 0, rng = 99, acc = 0, ops = c->lookups / 4;
	double r[16];
	size_t got = 0;
	int rc = 0;

	for (int rep = 0; rep < c->reps; rep++) {
		uint64_t shorts = 0;
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		for (uint64_t k = 0; k < ops; k++) {
			rc = sb_log_read_stream(l, s0 + sb_bench_below(&rng, span), buf, sizeof(buf), &got);
			if (rc)
				break;
			shorts += got != sizeof(buf);
			acc += buf[100];
		}
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (rc || shorts) {
			sb_bench_fail_rc(v, "sb_log_read_stream", rc ? rc : -EIO);
			return;
		}
		r[rep] = (double)ns / (double)ops;
	}
	sb_bench_keep(acc);
	sb_bench_set(v, r, c->reps, ops, allocs);
	sb_bench_extra(v, "MB_per_s", 4096.0 * 1e3 / v->value);
	v->how = "uniform random stream positions, 100-byte records (about 41 per read)";
}

/* Appends of 39- and 100-byte payloads, then the reads on the 100-byte log. */
static void bench_append_read(const sb_bench_cfg *c, sb_bench_val *o)
{
	char path[4096];
	sb_store *s = NULL;
	sb_log *l39, *l100;
	int rc = open_store(c, "append", SB_SYNC_NEVER, 0, &s, path, sizeof(path));

	if (!rc)
		rc = topic(s, "p39", &l39);
	if (!rc)
		rc = topic(s, "p100", &l100);
	if (rc) {
		sb_bench_fail_rc(&o[SB_FIG_APPEND39], "opening the store", rc);
		sb_bench_fail_rc(&o[SB_FIG_APPEND100], "opening the store", rc);
		goto out_close;
	}
	sb_bench_progress(c, "append 39");
	if (!append_loop(c, l39, 39, &o[SB_FIG_APPEND39]))
		append_latency(c, l39, 39, &o[SB_FIG_APPEND39]);
	sb_bench_progress(c, "append 100");
	if (append_loop(c, l100, PAYLOAD, &o[SB_FIG_APPEND100])) {
		for (int f = SB_FIG_READ; f <= SB_FIG_STREAM4K; f++)
			sb_bench_fail(&o[f], "setup", "the append of the records to read failed");
		goto out_close;
	}
	sb_bench_progress(c, "read");
	bench_read(c, l100, &o[SB_FIG_READ]);
	sb_bench_progress(c, "scan");
	bench_scan_stream(c, l100, &o[SB_FIG_SCAN_STREAM]);
	bench_scan_records(c, l100, &o[SB_FIG_SCAN_RECORD]);
	sb_bench_progress(c, "stream 4k");
	bench_stream4k(c, l100, &o[SB_FIG_STREAM4K]);
out_close:
	if (s)
		sb_store_close(s);
	sb_bench_rmtree(path);
}

/* ---- open ------------------------------------------------------------------ */

static void bench_open(const sb_bench_cfg *c, sb_bench_val *v)
{
	enum { REPS = 5 };
	char path[4096];
	sb_store *s = NULL;
	sb_log *l;
	sb_log_stats st = {0};
	uint64_t n = c->open_bytes / rec_bytes(OPEN_PAYLOAD), allocs = 0;
	double r[REPS], cl[REPS];
	int rc = open_store(c, "open", SB_SYNC_INTERVAL, 0, &s, path, sizeof(path));

	if (!rc)
		rc = topic(s, "big", &l);
	if (rc) {
		sb_bench_fail_rc(v, "opening the store", rc);
		goto out_close;
	}
	sb_bench_progress(c, "open: writing %llu MB", (unsigned long long)(c->open_bytes >> 20));
	rc = fill(c, l, n, OPEN_PAYLOAD, 64);
	if (!rc)
		rc = sb_log_get_stats(l, &st);
	int rc2 = sb_store_close(s);
	s = NULL;
	if (rc || rc2) {
		sb_bench_fail_rc(v, "building the topic", rc ? rc : rc2);
		goto out_close;
	}
	for (int rep = 0; rep < REPS; rep++) {
		sb_store_options o;
		sb_store_options_default(&o);
		sb_bench_alloc_start();
		uint64_t t0 = sb_bench_now();
		rc = sb_store_open(path, &o, &s);
		uint64_t ns = sb_bench_now() - t0;
		allocs += sb_bench_alloc_stop();
		if (rc) {
			sb_bench_fail_rc(v, "sb_store_open", rc);
			goto out_close;
		}
		r[rep] = (double)ns / 1e6;
		rc = sb_store_get(s, "big", &l);
		if (rc || sb_log_next(l) - sb_log_start(l) != n) {
			sb_bench_fail(v, "sb_store_open", "the reopened topic does not hold the records appended");
			goto out_close;
		}
		t0 = sb_bench_now();
		rc = sb_store_close(s);
		cl[rep] = (double)(sb_bench_now() - t0) / 1e6;
		s = NULL;
		if (rc) {
			sb_bench_fail_rc(v, "sb_store_close", rc);
			goto out_close;
		}
	}
	sb_bench_set(v, r, REPS, 1, allocs);
	sb_bench_extra(v, "topic_MB", (double)st.bytes / 1e6);
	sb_bench_extra(v, "segments", st.segments);
	sb_bench_extra(v, "records", (double)n);
	sb_bench_extra(v, "close_ms", sb_bench_median(cl, REPS));
	v->how = "1 KiB payloads, default config (128 MiB segments, interval sync: the flusher starts too)";
out_close:
	if (s)
		sb_store_close(s);
	sb_bench_rmtree(path);
}

void sb_bench_store(const sb_bench_cfg *c, sb_bench_val o[SB_FIG_COUNT])
{
	sb_bench_progress(c, "index lookup");
	bench_index(c, &o[SB_FIG_INDEX]);
	sb_bench_progress(c, "sb_log_stat");
	bench_stat(c, &o[SB_FIG_STAT]);
	bench_append_read(c, o);
	bench_open(c, &o[SB_FIG_OPEN]);
}
