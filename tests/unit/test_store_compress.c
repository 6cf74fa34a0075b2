/*
 * test_store_compress.c - compressed sealed segments (format.h, "Compressed
 * segment"): round trips under each codec (by offset, keys, stats, stream,
 * offset_at, across a reopen), random reads and forward scans, damage inside
 * a compressed block (random flips: never served), recovery's cut, and
 * readers and appenders busy while segments are swapped.
 * SB_TEST_COMPRESS_CASES sets the number of damage cases (default 60).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "format.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "z"), 0);
	S = NULL;
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(compress, .init = setup, .fini = teardown);

static uint64_t seg_bytes = 64 * 1024;

static void open_store(enum sb_compression z)
{
	ut_cfg(&C, seg_bytes, SB_SYNC_NEVER);
	C.compression = z;
	C.compression_block_bytes = 4096;
	C.index_interval_bytes = 512;
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

static void reopen(void)
{
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	cr_assert_eq(sb_store_get(S, "t", &L), 0);
}

/* Record i: a key on every third, an empty payload on every 11th,
 * compressible text otherwise; its timestamp 1000 + i * 7 (writer-set). */
static size_t payload(uint64_t i, uint8_t *buf, size_t cap)
{
	if (i % 11 == 5)
		return 0;
	size_t n = (size_t)snprintf((char *)buf, cap, "line %llu of the log: the quick brown fox %llu\n",
				    (unsigned long long)i, (unsigned long long)(i * 2654435761u % 1000));
	if (i % 97 == 3) { /* now and then a long, less compressible one */
		for (size_t k = n; k < 3000 && k < cap; k++)
			buf[k] = (uint8_t)(i * 31 + k * k);
		n = 3000;
	}
	return n;
}

static void append_n(uint64_t n)
{
	uint8_t buf[4096];
	char key[32];

	for (uint64_t k = 0; k < n; k++) {
		uint64_t i = sb_log_next(L);
		size_t len = payload(i, buf, sizeof(buf));
		int kl = snprintf(key, sizeof(key), "k%llu", (unsigned long long)(i % 13));
		sb_record_in r = {.key = key, .key_len = i % 3 == 0 ? (uint32_t)kl : 0, .value = buf,
				  .value_len = (uint32_t)len, .timestamp_ns = 1000 + (int64_t)i * 7};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
	}
}

/* Record i as read: 0 if right, else what was wrong (an error, or 1). */
static int check_rec(uint64_t i)
{
	uint8_t want[4096], got[4096];
	char key[32], gk[32];
	size_t n = payload(i, want, sizeof(want)), nr = 0, kl = 0;
	sb_record_info info;
	int rc = sb_log_read(L, i, 0, got, sizeof(got), &nr, &info);

	if (rc)
		return rc;
	if (nr != n || memcmp(got, want, n) || info.offset != i || info.timestamp_ns != 1000 + (int64_t)i * 7 ||
	    info.value_len != n)
		return 1;
	int wl = snprintf(key, sizeof(key), "k%llu", (unsigned long long)(i % 13));
	if ((rc = sb_log_read_key(L, i, gk, sizeof(gk), &kl)))
		return rc;
	if (i % 3 == 0 ? (kl != (size_t)wl || memcmp(gk, key, kl)) : kl != 0)
		return 1;
	/* a part of it, from the middle */
	if (n > 4) {
		if ((rc = sb_log_read(L, i, 3, got, 2, &nr, NULL)))
			return rc;
		if (nr != 2 || memcmp(got, want + 3, 2))
			return 1;
	}
	return 0;
}

/* The whole stream, in reads of `chunk` bytes, against the payloads. */
static void check_stream(uint64_t from, uint64_t to, size_t chunk)
{
	size_t total = 0, cap = 0;
	uint8_t *want = NULL, *got;

	for (uint64_t i = from; i < to; i++) {
		if (total + 4096 > cap) {
			cap = cap ? cap * 2 : 1 << 20;
			want = realloc(want, cap);
		}
		total += payload(i, want + total, 4096);
	}
	got = malloc(total + 1);
	uint64_t pos = sb_log_stream_start(L);
	size_t done = 0;
	while (done < total) {
		size_t n = 0, want_n = chunk < total - done ? chunk : total - done;
		cr_assert_eq(sb_log_read_stream(L, pos + done, got + done, want_n, &n), 0);
		cr_assert_gt(n, 0);
		done += n;
	}
	cr_assert(!total || memcmp(got, want, total) == 0);
	cr_assert_eq(sb_log_stream_end(L) - sb_log_stream_start(L), total);
	free(want);
	free(got);
}

static void roundtrip(enum sb_compression z, uint64_t n)
{
	sb_log_stats st;
	size_t done = 0;

	open_store(z);
	append_n(n);
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, &done), 0);
	cr_assert_gt(done, 2);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_assert_eq(st.compressed, done);
	cr_assert_lt(st.bytes * 2, st.logical_bytes, "stored %llu logical %llu", (unsigned long long)st.bytes,
		     (unsigned long long)st.logical_bytes);
	cr_assert_eq(st.oldest_ns, 1000);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(check_rec(i), 0, "record %llu", (unsigned long long)i);
		for (int k = 0; k < 3000; k++) { /* random reads */
			uint64_t i = (uint64_t)rand() % n;
			cr_assert_eq(check_rec(i), 0, "record %llu", (unsigned long long)i);
		}
		check_stream(0, sb_log_next(L), 65536);
		check_stream(0, sb_log_next(L), 777);
		/* offset_at of every 37th stream byte agrees with stat */
		for (uint64_t p = sb_log_stream_start(L); p < sb_log_stream_end(L); p += 37) {
			uint64_t off;
			sb_record_info info;
			cr_assert_eq(sb_log_offset_at(L, p, &off), 0);
			cr_assert_eq(sb_log_stat(L, off, &info), 0);
			cr_assert(info.stream_pos <= p && p < info.stream_pos + info.value_len);
		}
		append_n(10); /* appends after the swaps */
		for (uint64_t i = n; i < n + 10; i++)
			cr_assert_eq(check_rec(i), 0);
		reopen();
		cr_assert_eq(sb_log_next(L), n + 10 * (pass + 1));
	}
	/* Retention and delete_before still drop compressed segments. */
	cr_assert_eq(sb_log_delete_before(L, n / 2), 0);
	cr_assert_eq(sb_log_start(L), n / 2);
	cr_assert_eq(check_rec(n / 2), 0);
	check_stream(n / 2, sb_log_next(L), 4096);
}

Test(compress, roundtrip_lz4) { roundtrip(SB_COMPRESS_LZ4, 6000); }
Test(compress, roundtrip_zstd) { roundtrip(SB_COMPRESS_ZSTD, 6000); }


/* A topic configured `none` compresses nothing in the background, and
 * sb_log_compress still works (lz4). */
Test(compress, none_then_explicit)
{
	size_t done = 0;

	open_store(SB_COMPRESS_NONE);
	append_n(3000);
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, &done), 0);
	cr_assert_gt(done, 0);
	for (uint64_t i = 0; i < 3000; i++)
		cr_assert_eq(check_rec(i), 0);
}

/* ---- damage ------------------------------------------------------------- */

static int list_segs(char names[][32], int cap)
{
	char dir[4096];
	DIR *d = opendir(ut_topic_path(&env, "t", NULL, dir, sizeof(dir)));
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) && n < cap) {
		size_t l = strlen(de->d_name);
		if (l > 4 && l < 32 && strcmp(de->d_name + l - 4, ".seg") == 0)
			memcpy(names[n++], de->d_name, l + 1);
	}
	if (d)
		closedir(d);
	return n;
}

/* A compressed segment? *blocks_end: where its blocks end (its table). */
static int is_compressed(const char *name, uint64_t *blocks_end)
{
	char path[4096];
	uint8_t m[SB_ZSEG_HDR] = {0};
	int fd = open(ut_topic_path(&env, "t", name, path, sizeof(path)), O_RDONLY);

	if (fd < 0)
		return 0;
	if (read(fd, m, sizeof(m)) != (ssize_t)sizeof(m))
		m[0] = 0;
	close(fd);
	*blocks_end = sb_get64(m + 64);
	return sb_get32(m) == SB_ZSEG_MAGIC;
}

static void flip(const char *name, uint64_t pos, uint8_t mask)
{
	char path[4096];

	cr_assert_eq(uf_flip_byte(ut_topic_path(&env, "t", name, path, sizeof(path)), (off_t)pos, mask), 0);
}

static void quiet(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	(void)msg;
}

/*
 * Random flips inside the blocks of a compressed segment, in a store
 * whose segments are all compressed: every read gives the right record or
 * SB_ECORRUPT, never other bytes; the stream never serves a wrong byte;
 * then `recover --cut` (repair, full check) leaves a prefix that reads
 * whole.
 */
Test(compress, damage_never_served)
{
	const char *e = getenv("SB_TEST_COMPRESS_CASES");
	int cases = e ? atoi(e) : 60;
	const uint64_t n = 3000;
	char names[64][32];
	char copy[4096 + 16];

	open_store(SB_COMPRESS_ZSTD);
	append_n(n);
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, NULL), 0);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	snprintf(copy, sizeof(copy), "%s.orig", env.store);
	cr_assert_eq(uf_copy_tree(env.store, copy), 0, "%s", copy);
	srand(12345);
	for (int c = 0; c < cases; c++) {
		cr_assert_eq(uf_rmrf(env.store), 0);
		cr_assert_eq(uf_copy_tree(copy, env.store), 0, "%s", env.store);
		int ns = list_segs(names, 64), zs[64], nz = 0;
		uint64_t size = 0, sizes[64];
		for (int i = 0; i < ns; i++)
			if (is_compressed(names[i], &size)) {
				sizes[nz] = size;
				zs[nz++] = i;
			}
		cr_assert_gt(nz, 0);
		int k = rand() % nz;
		/* inside the blocks: past the header, before the table */
		uint64_t pos = SB_ZSEG_HDR + (uint64_t)rand() % (sizes[k] - SB_ZSEG_HDR - 9);
		int flips = 1 + rand() % 3;
		for (int f = 0; f < flips; f++)
			flip(names[zs[k]], pos + (uint64_t)f * 3 + (uint64_t)(rand() % 3),
			     (uint8_t)(1u << (rand() % 8))); /* distinct bytes: flips never cancel */

		sb_store_options o;
		sb_store_options_default(&o);
		o.defaults = C;
		o.no_flusher = 1;
		o.report = quiet;
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		int grc = sb_store_get(S, "t", &L);
		cr_assert_eq(grc, 0, "case %d: %s", c, sb_strerror(grc));
		int bad = 0;
		for (uint64_t i = 0; i < n; i++) {
			int rc = check_rec(i);
			cr_assert(rc == 0 || rc == SB_ECORRUPT, "case %d record %llu: %d", c,
				  (unsigned long long)i, rc);
			bad += rc != 0;
		}
		cr_assert_gt(bad, 0, "case %d: a flip at %llu of %s went unseen", c, (unsigned long long)pos,
			     names[zs[k]]);
		cr_assert_eq(sb_store_close(S), 0);
		S = NULL;

		/* recover --cut: the log is cut before the damaged block */
		o.repair = 1;
		o.full_check = 1;
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		cr_assert_eq(sb_store_get(S, "t", &L), 0);
		uint64_t next = sb_log_next(L);
		cr_assert_lt(next, n, "case %d", c);
		for (uint64_t i = 0; i < next; i++)
			cr_assert_eq(check_rec(i), 0, "case %d record %llu after the cut", c, (unsigned long long)i);
		check_stream(0, next, 65536);
		cr_assert_eq(sb_store_close(S), 0);
		S = NULL;
	}
	cr_assert_eq(uf_rmrf(copy), 0);
}

/* ---- busy readers and appenders during swaps ---------------------------- */

static atomic_int stop;
static atomic_ulong reads;

static void *reader(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	uint8_t buf[8192];

	while (!atomic_load(&stop)) {
		uint64_t next = sb_log_next(L);
		if (!next)
			continue;
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t i = (seed >> 33) % next;
		if (seed & 1) {
			int rc = check_rec(i);
			if (rc) {
				fprintf(stderr, "reader: record %llu: %d\n", (unsigned long long)i, rc);
				abort();
			}
		} else {
			size_t nr;
			uint64_t p = sb_log_stream_start(L) + (seed >> 20) % (sb_log_stream_end(L) - sb_log_stream_start(L) + 1);
			if (sb_log_read_stream(L, p, buf, sizeof(buf), &nr)) {
				fprintf(stderr, "reader: stream at %llu failed\n", (unsigned long long)p);
				abort();
			}
		}
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

Test(compress, busy_swaps)
{
	pthread_t th[3];

	open_store(SB_COMPRESS_LZ4);
	append_n(500);
	atomic_store(&stop, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, reader, (void *)(uintptr_t)(i + 1)), 0);
	for (int round = 0; round < 20; round++) {
		append_n(400);
		cr_assert_eq(sb_log_sync(L), 0);
		cr_assert_eq(sb_log_compress(L, NULL), 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_assert_gt(st.compressed, 5);
	cr_assert_gt(atomic_load(&reads), 100);
	for (uint64_t i = 0; i < sb_log_next(L); i++)
		cr_assert_eq(check_rec(i), 0);
}

/* ---- a crash at each step of the swap ----------------------------------- */

#include "util_faultio.h"

static void crash_cfg(sb_log_config *c)
{
	ut_cfg(c, 16 * 1024, SB_SYNC_NEVER);
	c->compression = SB_COMPRESS_ZSTD;
	c->compression_block_bytes = 4096;
	c->index_interval_bytes = 512;
}

/*
 * A store whose records were all synced, then sb_log_compress over
 * util_faultio crashing at the kth call of each kind it makes (open,
 * pwrite, fdatasync, rename, unlink, close: every step of every swap), the
 * power loss applied in each crash mode in turn: every record is still
 * there and reads right, the stream too, and the log takes appends.
 */
Test(compress, crash_at_each_step)
{
	static const fio_kind kinds[] = {FIO_OPEN, FIO_PWRITE, FIO_FDATASYNC, FIO_RENAME, FIO_UNLINK, FIO_CLOSE};
	char tmpl[4096 + 16];
	const uint64_t n = 800;
	unsigned scenarios = 0, crashed = 0;

	crash_cfg(&C);
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	L = ut_topic(S, "t");
	append_n(n);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	snprintf(tmpl, sizeof(tmpl), "%s.tmpl", env.store);
	cr_assert_eq(uf_copy_tree(env.store, tmpl), 0, "%s", tmpl);
	for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
		for (unsigned k = 1;; k++) {
			cr_assert_eq(uf_rmrf(env.store), 0);
			cr_assert_eq(uf_rmrf(env.stash), 0);
			cr_assert_eq(uf_copy_tree(tmpl, env.store), 0, "%s", env.store);
			cr_assert_eq(mkdir(env.stash, 0755), 0);
			fio *f = fio_new(env.stash);
			cr_assert_not_null(f);
			fio_set_sync(f, 0, 0);
			cr_assert_eq(ut_open(env.store, &C, fio_io(f), &S), 0);
			cr_assert_eq(sb_store_get(S, "t", &L), 0);
			fio_crash_at(f, kinds[ki], k);
			size_t done = 0;
			int rc = sb_log_compress(L, &done);
			int hit = fio_crashed(f);
			sb_store_close(S); /* fails after the crash: it is abandoned */
			S = NULL;
			int mode = (int)((k + ki) % FIO_CRASH_NMODES);
			cr_assert_eq(fio_crash_apply(f, k * 31 + ki, mode, NULL), 0);
			fio_free(f);
			scenarios++;
			crashed += hit;
			cr_assert(hit || (rc == 0 && done > 2), "kind %zu k %u: %s", ki, k, sb_strerror(rc));

			sb_store_options o;
			sb_store_options_default(&o);
			o.defaults = C;
			o.no_flusher = 1;
			o.report = quiet;
			cr_assert_eq(sb_store_open(env.store, &o, &S), 0, "kind %zu k %u mode %d", ki, k, mode);
			cr_assert_eq(sb_store_get(S, "t", &L), 0, "kind %zu k %u mode %d: topic refused", ki, k, mode);
			cr_assert_eq(sb_log_next(L), n, "kind %zu k %u mode %d", ki, k, mode);
			for (uint64_t i = 0; i < n; i++)
				cr_assert_eq(check_rec(i), 0, "kind %zu k %u mode %d: record %llu", ki, k, mode,
					     (unsigned long long)i);
			check_stream(0, n, 65536);
			append_n(1);
			cr_assert_eq(check_rec(n), 0);
			cr_assert_eq(sb_store_close(S), 0);
			S = NULL;
			if (!hit)
				break; /* no kth call of this kind: the next kind */
		}
	}
	cr_assert_gt(crashed, 30, "%u of %u scenarios crashed", crashed, scenarios);
	fprintf(stderr, "crash_at_each_step: %u scenarios, %u crashed the swap\n", scenarios, crashed);
	cr_assert_eq(uf_rmrf(tmpl), 0);
}

/* Segments big enough for a zstd dictionary (1/64 of the segment): it is
 * there, and everything reads. */
Test(compress, roundtrip_zstd_dict)
{
	char names[64][32];
	int with_dict = 0;

	seg_bytes = 1u << 20;
	roundtrip(SB_COMPRESS_ZSTD, 40000);
	int ns = list_segs(names, 64);
	for (int i = 0; i < ns; i++) {
		char path[4096];
		uint8_t h[SB_ZSEG_HDR];
		int fd = open(ut_topic_path(&env, "t", names[i], path, sizeof(path)), O_RDONLY);
		if (fd >= 0 && read(fd, h, sizeof(h)) == (ssize_t)sizeof(h) && sb_get32(h) == SB_ZSEG_MAGIC &&
		    sb_get32(h + 84) > 0)
			with_dict++;
		if (fd >= 0)
			close(fd);
	}
	cr_assert_gt(with_dict, 1, "%d compressed segments with a dictionary", with_dict);
}

/* ---- records with headers in compressed blocks -------------------------- */

#include <lz4.h>

#include "codec.h"

/* The headers of record i (deterministic): none on most, one binary value
 * (NULs in it), an empty value, hundreds of headers, a long value; none at
 * all in [HNONE_FROM, HNONE_TO) (whole segments without headers). */
#define HNONE_FROM 1000
#define HNONE_TO 2200
typedef struct hgen {
	sb_header h[SB_HEADERS_MAX_COUNT];
	char names[SB_HEADERS_MAX_COUNT][16];
	uint8_t vals[SB_HEADERS_MAX_COUNT][16];
	uint8_t big[1200];
	uint32_t n;
} hgen;

static hgen *HG;

static void hgen_make(uint64_t i)
{
	hgen *g = HG;
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 7;
	uint32_t kind = (uint32_t)(i % 6);

	g->n = 0;
	if ((i >= HNONE_FROM && i < HNONE_TO) || kind == 0 || kind == 4)
		return;
	uint32_t n = kind == 3 ? 20 + (uint32_t)(i % 300) : kind == 2 ? 2 : 1;
	for (uint32_t k = 0; k < n; k++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		snprintf(g->names[k], sizeof(g->names[k]), "m%04u", k);
		uint32_t vl = (uint32_t)(x >> 60); /* 0..15, binary bytes */
		for (uint32_t j = 0; j < sizeof(g->vals[k]); j++) /* all: kind 1 takes more */
			g->vals[k][j] = (uint8_t)(x >> (j * 3 % 56));
		g->h[k] = (sb_header){.name = g->names[k], .name_len = (uint32_t)strlen(g->names[k]),
				      .value = g->vals[k], .value_len = vl};
	}
	if (kind == 1) { /* one binary value with NULs in it */
		g->vals[0][0] = 0;
		g->vals[0][1] = 0xff;
		g->h[0].name = "bin";
		g->h[0].name_len = 3;
		g->h[0].value_len = 2 + (uint32_t)(i % 14);
	} else if (kind == 2) { /* an empty value */
		g->h[0].name = "empty";
		g->h[0].name_len = 5;
		g->h[0].value_len = 0;
	} else if (kind == 5) { /* a long value */
		for (size_t j = 0; j < sizeof(g->big); j++)
			g->big[j] = (uint8_t)(i + j * 7);
		g->h[0].value = g->big;
		g->h[0].value_len = (uint32_t)(i % sizeof(g->big));
	}
	g->n = n;
}

static void append_h(uint64_t n)
{
	uint8_t buf[4096];
	char key[32];

	for (uint64_t k = 0; k < n; k++) {
		uint64_t i = sb_log_next(L);
		size_t len = payload(i, buf, sizeof(buf));
		int kl = snprintf(key, sizeof(key), "k%llu", (unsigned long long)(i % 13));
		hgen_make(i);
		sb_record_in r = {.key = key, .key_len = i % 3 == 0 ? (uint32_t)kl : 0, .value = buf,
				  .value_len = (uint32_t)len, .timestamp_ns = 1000 + (int64_t)i * 7,
				  .headers = HG->h, .n_headers = HG->n};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
	}
}

/* Record i's headers as read: 0 if right, else an error or 1. */
static int check_hdrs(uint64_t i)
{
	static uint8_t buf[SB_HEADERS_MAX_BYTES];
	size_t len = 0, pos = 0;
	uint32_t k = 0;
	sb_header h;
	sb_record_info info;
	int rc = sb_log_read_headers(L, i, buf, sizeof(buf), &len), r;

	if (rc)
		return rc;
	hgen_make(i);
	if ((rc = sb_log_stat(L, i, &info)))
		return rc;
	if (info.headers_len != len || !!(info.flags & SB_REC_HEADERS) != !!HG->n)
		return 1;
	while ((r = sb_headers_next(buf, len, &pos, &h)) == 1) {
		if (k >= HG->n || h.name_len != HG->h[k].name_len || memcmp(h.name, HG->h[k].name, h.name_len) ||
		    h.value_len != HG->h[k].value_len ||
		    (h.value_len && memcmp(h.value, HG->h[k].value, h.value_len)))
			return 1;
		k++;
	}
	return r == 0 && k == HG->n ? 0 : 1;
}

static int check_rec_h(uint64_t i)
{
	int rc = check_rec(i);

	return rc ? rc : check_hdrs(i);
}

/* The features field of compressed segment `name` (-1: not compressed). */
static int zfeatures(const char *name)
{
	uint64_t end;

	if (!is_compressed(name, &end))
		return -1;
	char path[4096];
	uint8_t h[SB_ZSEG_HDR];
	int fd = open(ut_topic_path(&env, "t", name, path, sizeof(path)), O_RDONLY);
	cr_assert_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	return sb_get16(h + SB_ZSEG_AT_FEATURES);
}

/*
 * Records with headers (binary, empty and hundreds of them), in segments
 * mixing them with records without and in segments without any: every
 * sealed segment compresses and every header reads back equal, from the
 * blocks, after a reopen; a file without headers has no feature bit.
 */
static void headers_roundtrip(enum sb_compression z)
{
	const uint64_t n = 3000;
	char names[64][32];
	sb_log_stats st;
	size_t done = 0;
	int with = 0, without = 0;

	HG = malloc(sizeof(*HG));
	cr_assert_not_null(HG);
	open_store(z);
	append_h(n);
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, &done), 0);
	cr_assert_eq(sb_log_get_stats(L, &st), 0);
	cr_assert_gt(st.segments, 4);
	cr_assert_eq(st.compressed, st.segments - 1, "%u of %u segments compressed", st.compressed, st.segments);
	int ns = list_segs(names, 64);
	for (int k = 0; k < ns; k++) {
		int f = zfeatures(names[k]);
		with += f == SB_ZSEG_F_HEADERS;
		without += f == 0;
	}
	cr_assert(with > 1 && without > 0, "%d compressed with headers, %d without", with, without);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(check_rec_h(i), 0, "record %llu", (unsigned long long)i);
		for (int k = 0; k < 2000; k++) {
			uint64_t i = (uint64_t)rand() % n;
			cr_assert_eq(check_rec_h(i), 0, "record %llu", (unsigned long long)i);
		}
		check_stream(0, n, 65536);
		reopen();
	}
	free(HG);
}

Test(compress, headers_roundtrip_lz4) { headers_roundtrip(SB_COMPRESS_LZ4); }
Test(compress, headers_roundtrip_zstd) { headers_roundtrip(SB_COMPRESS_ZSTD); }

/* Read (lz4) block `b` of compressed segment file f: its table entry at
 * *e (32 bytes), its raw bytes (malloc'ed). */
static uint8_t *zblock_raw(const uint8_t *f, uint32_t b, const uint8_t **e)
{
	const uint8_t *t = f + sb_get64(f + 64) + (size_t)b * SB_ZSEG_ENTRY;
	uint32_t pos = sb_get32(t + 8), stored = sb_get32(t + 12), raw = sb_get32(t + 16);
	uint8_t *r = malloc(raw);

	cr_assert_not_null(r);
	cr_assert_eq(LZ4_decompress_safe((const char *)f + pos, (char *)r, (int)stored, (int)raw), (int)raw);
	*e = t;
	return r;
}

/* Put raw back into block b of f (recompressed; the block may change size:
 * the blocks after it move, the table and header are rewritten); fix_raw:
 * the raw CRC is recomputed too. The new file's length. */
static size_t zblock_put(uint8_t **fp, size_t flen, uint32_t b, const uint8_t *raw, int fix_raw)
{
	uint8_t *f = *fp;
	uint64_t tpos = sb_get64(f + 64);
	uint32_t nb = sb_get32(f + 72);
	uint8_t *t = f + tpos + (size_t)b * SB_ZSEG_ENTRY;
	uint32_t pos = sb_get32(t + 8), stored = sb_get32(t + 12), rl = sb_get32(t + 16);
	int bound = LZ4_compressBound((int)rl);
	uint8_t *c = malloc((size_t)bound);
	int cl = LZ4_compress_default((const char *)raw, (char *)c, (int)rl, bound);
	cr_assert_gt(cl, 0);
	size_t nlen = flen - stored + (size_t)cl;
	uint8_t *g = malloc(nlen);
	memcpy(g, f, pos);
	memcpy(g + pos, c, (size_t)cl);
	memcpy(g + pos + cl, f + pos + stored, flen - pos - stored);
	int64_t d = (int64_t)cl - (int64_t)stored;
	sb_put64(g + 64, (uint64_t)((int64_t)tpos + d));
	uint8_t *nt = g + (size_t)((int64_t)tpos + d);
	for (uint32_t k = 0; k < nb; k++) {
		uint8_t *ek = nt + (size_t)k * SB_ZSEG_ENTRY;
		if (k > b)
			sb_put32(ek + 8, (uint32_t)((int64_t)sb_get32(ek + 8) + d));
	}
	uint8_t *eb = nt + (size_t)b * SB_ZSEG_ENTRY;
	sb_put32(eb + 12, (uint32_t)cl);
	sb_put32(eb + 24, sb_crc32c(0, c, (size_t)cl));
	if (fix_raw)
		sb_put32(eb + 28, sb_crc32c(0, raw, rl));
	sb_put32(g + 80, sb_crc32c(0, nt, (size_t)nb * SB_ZSEG_ENTRY));
	sb_put32(g + 92, sb_crc32c(0, g, 92));
	free(c);
	free(f);
	*fp = g;
	return nlen;
}

/*
 * Damage in the header column of a compressed block, in the headers' bytes
 * (the raw CRC left as it was: it catches it) and in a header block's count
 * with every CRC made to agree (the block's decoding catches it: a block
 * that does not parse): the block's records fail with SB_ECORRUPT, never
 * other headers; the other blocks read; recover --cut keeps the blocks
 * before it, headers included. SB_TEST_COMPRESS_CASES cases (default 60).
 */
Test(compress, header_damage_never_served)
{
	const char *ev = getenv("SB_TEST_COMPRESS_CASES");
	int cases = ev ? atoi(ev) : 60;
	const uint64_t n = 1200;
	char names[64][32], copy[4096 + 16], path[4096];

	HG = malloc(sizeof(*HG));
	cr_assert_not_null(HG);
	open_store(SB_COMPRESS_LZ4);
	append_h(n);
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, NULL), 0);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	snprintf(copy, sizeof(copy), "%s.orig", env.store);
	cr_assert_eq(uf_copy_tree(env.store, copy), 0, "%s", copy);
	srand(4242);
	for (int c = 0; c < cases; c++) {
		cr_assert_eq(uf_rmrf(env.store), 0);
		cr_assert_eq(uf_copy_tree(copy, env.store), 0, "%s", env.store);
		int ns = list_segs(names, 64), zs[64], nz = 0;
		for (int i = 0; i < ns; i++)
			if (zfeatures(names[i]) == SB_ZSEG_F_HEADERS)
				zs[nz++] = i;
		cr_assert_gt(nz, 0);
		const char *name = names[zs[rand() % nz]];
		uint8_t *f;
		size_t flen;
		ut_topic_path(&env, "t", name, path, sizeof(path));
		cr_assert_eq(uf_read_all(path, &f, &flen), 0);
		uint64_t base = sb_get64(f + 8);
		uint32_t b = (uint32_t)rand() % sb_get32(f + 72);
		const uint8_t *e;
		uint8_t *raw = zblock_raw(f, b, &e);
		uint32_t rl = sb_get32(e + 16), cnt = sb_get32(e + 20);
		uint64_t first = base + sb_get32(e);
		/* the block's header blocks end it: their lengths from the oracle */
		uint32_t htotal = 0, nh = 0, hlen[4096];
		for (uint32_t k = 0; k < cnt; k++) {
			hgen_make(first + k);
			if (HG->n) {
				sb_record_in in = {.headers = HG->h, .n_headers = HG->n};
				hlen[nh] = (uint32_t)sb_hdrs_size(&in);
				nh++;
				htotal += hlen[nh - 1];
			}
		}
		if (!nh) {
			free(raw);
			free(f);
			c--;
			continue; /* a block without headers: pick again */
		}
		int fix = c % 2;
		if (!fix) { /* a bit of the header bytes; the raw CRC as it was */
			uint32_t at = rl - htotal + (uint32_t)rand() % htotal;
			raw[at] ^= (uint8_t)(1u << (rand() % 8));
		} else { /* a header block's count; all CRCs agree */
			uint32_t h = (uint32_t)rand() % nh, at = rl - htotal;
			for (uint32_t k = 0; k < h; k++)
				at += hlen[k];
			raw[at + (uint32_t)(rand() % 2)] ^= (uint8_t)(1u << (rand() % 8));
		}
		flen = zblock_put(&f, flen, b, raw, fix);
		cr_assert_eq(uf_write_file(path, f, flen), 0, "%s", path);
		free(raw);
		free(f);

		sb_store_options o;
		sb_store_options_default(&o);
		o.defaults = C;
		o.no_flusher = 1;
		o.report = quiet;
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		cr_assert_eq(sb_store_get(S, "t", &L), 0, "case %d", c);
		for (uint64_t i = 0; i < n; i++) {
			int rc = check_rec_h(i);
			int inside = i >= first && i < first + cnt;
			cr_assert(inside ? rc == SB_ECORRUPT : rc == 0, "case %d (fix %d) record %llu: %d", c, fix,
				  (unsigned long long)i, rc);
		}
		cr_assert_eq(sb_store_close(S), 0);
		S = NULL;
		o.repair = 1;
		o.full_check = 1;
		cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
		cr_assert_eq(sb_store_get(S, "t", &L), 0);
		cr_assert_eq(sb_log_next(L), first, "case %d: cut at the damaged block", c);
		for (uint64_t i = 0; i < first; i++)
			cr_assert_eq(check_rec_h(i), 0, "case %d record %llu after the cut", c, (unsigned long long)i);
		cr_assert_eq(sb_store_close(S), 0);
		S = NULL;
	}
	cr_assert_eq(uf_rmrf(copy), 0);
	free(HG);
}

/* Bit by bit, the definition: the reference for the store's CRC32C. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* The CRC of a block (and of every large run) goes three lanes at once and
 * joins them: the same as one chain and as the definition, at every length
 * and alignment, whole or continued in pieces. */
Test(compress, crc_lanes_match_one_chain)
{
	enum { MAX = 3 * 65536 + 77 };
	uint8_t *buf = malloc(MAX + 8);
	uint64_t seed = 9;

	cr_assert(buf);
	for (size_t i = 0; i < MAX + 8; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(seed >> 33);
	}
	cr_assert_eq(sb_crc32c(0, "123456789", 9), 0xE3069283u);
	for (int t = 0; t < 200; t++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t n = t < 8 ? (size_t)(3 * 4096 * (t + 1) - 1 + (t & 1) * 2) : (size_t)(seed >> 20) % MAX;
		const uint8_t *p = buf + (seed >> 8) % 8;
		uint32_t whole = sb_crc32c(7, p, n), pieces = 7;
		for (size_t at = 0; at < n;) { /* pieces below one 3-lane run */
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			size_t k = 1 + (size_t)(seed >> 40) % 12000;
			if (k > n - at)
				k = n - at;
			pieces = sb_crc32c(pieces, p + at, k);
			at += k;
		}
		cr_assert_eq(whole, pieces, "length %zu", n);
		if (t < 20)
			cr_assert_eq(whole, crc_ref(7, p, n), "length %zu", n);
	}
	free(buf);
}

/* Value i of value_lengths_any_newlines: 0..299 bytes of 'x' and '\n', the
 * newlines from none to all, by a density drawn per run of 50 records. */
static size_t nl_value(uint64_t i, uint8_t *buf)
{
	uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull, d = ((i / 50) * 0xD1B54A32D192ED03ull) >> 61;
	size_t n = (size_t)((h >> 40) % 300);

	for (size_t k = 0; k < n; k++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		buf[k] = d == 0 ? 'x' : d == 7 ? '\n' : ((h >> 33) % (1u << d) == 0 ? '\n' : 'x');
	}
	return n;
}

/* A block codes each value's length against the next newline in the
 * values (the decoder finds them 64 bytes at a time): values with no,
 * some, many and only newlines, short and long, across block edges, read
 * back exactly by offset and in the stream. */
Test(compress, value_lengths_any_newlines)
{
	enum { N = 4000 };
	uint8_t buf[512], got[512];
	size_t total = 0, done = 0, nr;

	open_store(SB_COMPRESS_ZSTD);
	for (uint64_t i = 0; i < N; i++) {
		size_t n = nl_value(i, buf);
		sb_record_in r = {.value = buf, .value_len = (uint32_t)n, .timestamp_ns = 5};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
		total += n;
	}
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, &done), 0);
	cr_assert_gt(done, 2);
	uint8_t *all = malloc(total), *st = malloc(total);
	cr_assert(all && st);
	for (uint64_t i = 0, at = 0; i < N; i++) {
		size_t n = nl_value(i, buf);
		cr_assert_eq(sb_log_read(L, i, 0, got, sizeof(got), &nr, NULL), 0);
		cr_assert(nr == n && !memcmp(got, buf, n), "record %llu", (unsigned long long)i);
		memcpy(all + at, buf, n);
		at += n;
	}
	for (size_t at = 0; at < total;) {
		cr_assert_eq(sb_log_read_stream(L, at, st + at, total - at < 999 ? total - at : 999, &nr), 0);
		cr_assert_gt(nr, 0);
		at += nr;
	}
	cr_assert(!memcmp(all, st, total));
	free(all);
	free(st);
}
