/*
 * test_store_compress.c - compressed sealed segments (format.h, "Compressed
 * segment"): round trips under each codec (by offset, keys, stats, stream,
 * offset_at, across a reopen), random reads and forward scans, damage inside
 * a compressed block (random flips: never served), recovery's cut, damage
 * in a plain segment before its compression (never compressed: never
 * laundered under a block CRC), readers and appenders busy while segments
 * are swapped, a crash at each step of a swap and of the write-back of a
 * newest segment found compressed, zstd dictionaries. What a block holds (headers, value lengths, its
 * CRC): test_store_compress_blocks.c; the store both use: util_zstore.h.
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

#include "format.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_zstore.h"

UZ_FIXTURE("z")

TestSuite(compress, .init = uz_setup, .fini = uz_teardown);

static void roundtrip(enum sb_compression z, uint64_t n)
{
	sb_log_stats st;
	size_t done = 0;

	uz_open(&Z, z);
	uz_append(&Z, n, NULL);
	cr_assert_eq(sb_log_sync(Z.L), 0);
	cr_assert_eq(sb_log_compress(Z.L, &done), 0);
	cr_assert_gt(done, 2);
	cr_assert_eq(sb_log_get_stats(Z.L, &st), 0);
	cr_assert_eq(st.compressed, done);
	cr_assert_lt(st.bytes * 2, st.logical_bytes, "stored %llu logical %llu", (unsigned long long)st.bytes,
		     (unsigned long long)st.logical_bytes);
	cr_assert_eq(st.oldest_ns, 1000);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < n; i++)
			cr_assert_eq(uz_check_rec(&Z, i), 0, "record %llu", (unsigned long long)i);
		for (int k = 0; k < 3000; k++) { /* random reads */
			uint64_t i = (uint64_t)rand() % n;
			cr_assert_eq(uz_check_rec(&Z, i), 0, "record %llu", (unsigned long long)i);
		}
		uz_check_stream(&Z, 0, sb_log_next(Z.L), 65536);
		uz_check_stream(&Z, 0, sb_log_next(Z.L), 777);
		/* offset_at of every 37th stream byte agrees with stat */
		for (uint64_t p = sb_log_stream_start(Z.L); p < sb_log_stream_end(Z.L); p += 37) {
			uint64_t off;
			sb_record_info info;
			cr_assert_eq(sb_log_offset_at(Z.L, p, &off), 0);
			cr_assert_eq(sb_log_stat(Z.L, off, &info), 0);
			cr_assert(info.stream_pos <= p && p < info.stream_pos + info.value_len);
		}
		uz_append(&Z, 10, NULL); /* appends after the swaps */
		for (uint64_t i = n; i < n + 10; i++)
			cr_assert_eq(uz_check_rec(&Z, i), 0);
		uz_reopen(&Z);
		cr_assert_eq(sb_log_next(Z.L), n + 10 * (pass + 1));
	}
	/* Retention and delete_before still drop compressed segments. */
	cr_assert_eq(sb_log_delete_before(Z.L, n / 2), 0);
	cr_assert_eq(sb_log_start(Z.L), n / 2);
	cr_assert_eq(uz_check_rec(&Z, n / 2), 0);
	uz_check_stream(&Z, n / 2, sb_log_next(Z.L), 4096);
}

Test(compress, roundtrip_lz4) { roundtrip(SB_COMPRESS_LZ4, 6000); }
Test(compress, roundtrip_zstd) { roundtrip(SB_COMPRESS_ZSTD, 6000); }


/* A topic configured `none` compresses nothing in the background, and
 * sb_log_compress still works (lz4). */
Test(compress, none_then_explicit)
{
	size_t done = 0;

	uz_open(&Z, SB_COMPRESS_NONE);
	uz_append(&Z, 3000, NULL);
	cr_assert_eq(sb_log_sync(Z.L), 0);
	cr_assert_eq(sb_log_compress(Z.L, &done), 0);
	cr_assert_gt(done, 0);
	for (uint64_t i = 0; i < 3000; i++)
		cr_assert_eq(uz_check_rec(&Z, i), 0);
}

/* ---- damage ------------------------------------------------------------- */

static void flip(const char *name, uint64_t pos, uint8_t mask)
{
	char path[4096];

	cr_assert_eq(uf_flip_byte(ut_topic_path(&Z.env, "t", name, path, sizeof(path)), (off_t)pos, mask), 0);
}

/*
 * Random flips inside the blocks of a compressed segment, in a store
 * whose segments are all compressed: every read gives the right record or
 * SB_ECORRUPT, never other bytes; the stream never serves a wrong byte;
 * then `recover --cut` (repair, full check) drops the damaged block's
 * records alone: a gap where later segments follow (log_recover_gap.c),
 * else a cut; every other record and the stream read whole.
 */
Test(compress, damage_never_served)
{
	const char *e = getenv("SB_TEST_COMPRESS_CASES");
	int cases = e ? atoi(e) : 60;
	const uint64_t n = 3000;
	char names[64][32];
	char copy[4096 + 16];

	uz_open(&Z, SB_COMPRESS_ZSTD);
	uz_append(&Z, n, NULL);
	uz_compress_keep(&Z, copy, sizeof(copy));
	srand(12345);
	for (int c = 0; c < cases; c++) {
		uz_restore(&Z, copy);
		int ns = uz_list_segs(&Z, names, 64), zs[64], nz = 0;
		uint64_t size = 0, sizes[64];
		for (int i = 0; i < ns; i++)
			if (uz_is_compressed(&Z, names[i], &size)) {
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

		int grc = uz_open_quiet(&Z, 0);
		cr_assert_eq(grc, 0, "case %d: %s", c, sb_strerror(grc));
		int bad = 0;
		for (uint64_t i = 0; i < n; i++) {
			int rc = uz_check_rec(&Z, i);
			cr_assert(rc == 0 || rc == SB_ECORRUPT, "case %d record %llu: %d", c,
				  (unsigned long long)i, rc);
			bad += rc != 0;
		}
		cr_assert_gt(bad, 0, "case %d: a flip at %llu of %s went unseen", c, (unsigned long long)pos,
			     names[zs[k]]);
		cr_assert_eq(sb_store_close(Z.S), 0);
		Z.S = NULL;

		/* recover --cut: the damaged block's records go, one run of
		 * them; the rest stay, and the stream is theirs */
		cr_assert_eq(uz_open_quiet(&Z, 1), 0);
		uint64_t next = sb_log_next(Z.L), lo = n, hi = n;
		for (uint64_t i = 0; i < n; i++) {
			int rc = i < next ? uz_check_rec(&Z, i) : -ENOENT;
			cr_assert(rc == 0 || rc == -ENOENT, "case %d record %llu after the repair: %d", c,
				  (unsigned long long)i, rc);
			if (rc && lo == n)
				lo = i;
			if (rc)
				hi = i + 1;
		}
		cr_assert_lt(lo, n, "case %d: nothing dropped", c);
		for (uint64_t i = lo; i < hi; i++)
			cr_assert_eq(i < next ? uz_check_rec(&Z, i) : -ENOENT, -ENOENT,
				     "case %d: record %llu kept inside the dropped run", c, (unsigned long long)i);
		cr_assert(next == n || next == lo, "case %d: next %llu after a drop of [%llu, %llu)", c,
			  (unsigned long long)next, (unsigned long long)lo, (unsigned long long)hi);
		uz_check_stream_gap(&Z, 0, next, lo, hi, 65536);
		cr_assert_eq(sb_store_close(Z.S), 0);
		Z.S = NULL;
	}
	cr_assert_eq(uf_rmrf(copy), 0);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Topic t's segment files in offset order; their count. */
static int sorted_segs(char names[][32], int cap)
{
	int ns = uz_list_segs(&Z, names, cap);
	qsort(names, (size_t)ns, 32, name_cmp);
	return ns;
}

static uint64_t file_size(const char *name)
{
	char path[4096];
	struct stat st;

	cr_assert_eq(stat(ut_topic_path(&Z.env, "t", name, path, sizeof(path)), &st), 0, "%s", path);
	return (uint64_t)st.st_size;
}

/*
 * Damage in a sealed plain segment before it is compressed (a flip on the
 * disk between the seal and the background compression): compression
 * checks every record's CRC as it copies it, so damage never goes into a
 * block under a fresh CRC. The damaged segment stays plain; every record
 * reads right or SB_ECORRUPT, the same ones before the compression, after
 * it and after a reopen; the others compress. Random flips, lz4 and zstd
 * in turn.
 */
Test(compress, damage_before_compression_kept_out)
{
	const char *e = getenv("SB_TEST_COMPRESS_CASES");
	int cases = e ? atoi(e) / 2 : 30;
	const uint64_t n = 3000;
	char names[64][32], copy[4096 + 16];
	uint8_t bad_before[3000];

	uz_open(&Z, SB_COMPRESS_NONE);
	uz_append(&Z, n, NULL);
	cr_assert_eq(sb_log_sync(Z.L), 0);
	cr_assert_eq(sb_store_close(Z.S), 0);
	Z.S = NULL;
	snprintf(copy, sizeof(copy), "%s.orig", Z.env.store);
	cr_assert_eq(uf_copy_tree(Z.env.store, copy), 0, "%s", copy);
	srand(4242);
	for (int c = 0; c < cases; c++) {
		uz_restore(&Z, copy);
		int ns = sorted_segs(names, 64);
		cr_assert_gt(ns, 3);
		int k = rand() % (ns - 1); /* sealed: not the newest */
		uint64_t size = file_size(names[k]);
		uint64_t pos = SB_SEG_HDR + (uint64_t)rand() % (size - SB_SEG_HDR);
		flip(names[k], pos, (uint8_t)(1u << (rand() % 8)));

		Z.C.compression = c % 2 ? SB_COMPRESS_ZSTD : SB_COMPRESS_LZ4;
		cr_assert_eq(uz_open_quiet(&Z, 0), 0, "case %d", c);
		int bad = 0;
		for (uint64_t i = 0; i < n; i++) {
			int rc = uz_check_rec(&Z, i);
			cr_assert(rc == 0 || rc == SB_ECORRUPT, "case %d record %llu: %d", c, (unsigned long long)i, rc);
			bad_before[i] = rc != 0;
			bad += rc != 0;
		}
		cr_assert_gt(bad, 0, "case %d: a flip at %llu of %s went unseen", c, (unsigned long long)pos, names[k]);
		size_t done = 0;
		cr_assert_eq(sb_log_compress(Z.L, &done), 0, "case %d", c);
		for (int pass = 0; pass < 2; pass++) {
			for (uint64_t i = 0; i < n; i++) {
				int rc = uz_check_rec(&Z, i);
				cr_assert_eq(rc != 0, bad_before[i],
					     "case %d (flip at %llu of %s)%s: record %llu reads %d, before the "
					     "compression %s", c, (unsigned long long)pos, names[k],
					     pass ? " after a reopen" : "", (unsigned long long)i, rc,
					     bad_before[i] ? "damaged" : "right");
			}
			if (!pass) {
				cr_assert_eq(sb_store_close(Z.S), 0);
				Z.S = NULL;
				cr_assert_eq(uz_open_quiet(&Z, 0), 0, "case %d", c);
			}
		}
		cr_assert_eq(sb_store_close(Z.S), 0);
		Z.S = NULL;
		uint64_t end;
		cr_assert_not(uz_is_compressed(&Z, names[k], &end), "case %d: the damaged %s was compressed", c,
			      names[k]);
		int others = 0;
		for (int i = 0; i + 1 < ns; i++)
			others += i != k && uz_is_compressed(&Z, names[i], &end);
		cr_assert_eq(others, ns - 2, "case %d: %d of the %d other sealed segments compressed", c, others,
			     ns - 2);
	}
	Z.C.compression = SB_COMPRESS_NONE;
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
		uint64_t next = sb_log_next(Z.L);
		if (!next)
			continue;
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t i = (seed >> 33) % next;
		if (seed & 1) {
			int rc = uz_check_rec(&Z, i);
			if (rc) {
				fprintf(stderr, "reader: record %llu: %d\n", (unsigned long long)i, rc);
				abort();
			}
		} else {
			size_t nr;
			uint64_t p = sb_log_stream_start(Z.L) + (seed >> 20) % (sb_log_stream_end(Z.L) - sb_log_stream_start(Z.L) + 1);
			if (sb_log_read_stream(Z.L, p, buf, sizeof(buf), &nr)) {
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

	uz_open(&Z, SB_COMPRESS_LZ4);
	uz_append(&Z, 500, NULL);
	atomic_store(&stop, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, reader, (void *)(uintptr_t)(i + 1)), 0);
	for (int round = 0; round < 20; round++) {
		uz_append(&Z, 400, NULL);
		cr_assert_eq(sb_log_sync(Z.L), 0);
		cr_assert_eq(sb_log_compress(Z.L, NULL), 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(Z.L, &st), 0);
	cr_assert_gt(st.compressed, 5);
	cr_assert_gt(atomic_load(&reads), 100);
	for (uint64_t i = 0; i < sb_log_next(Z.L); i++)
		cr_assert_eq(uz_check_rec(&Z, i), 0);
}

/* ---- a crash at each step of the swap ----------------------------------- */

static void crash_cfg(sb_log_config *c)
{
	ut_cfg(c, 16 * 1024, SB_SYNC_NEVER);
	c->compression = SB_COMPRESS_ZSTD;
	c->compression_block_bytes = 4096;
	c->index_interval_bytes = 512;
}

/* The store as in tmpl again, and a crash simulator over its files (the
 * caller's: fio_free). */
static fio *crash_scenario(const char *tmpl)
{
	cr_assert_eq(uf_rmrf(Z.env.store), 0);
	cr_assert_eq(uf_rmrf(Z.env.stash), 0);
	cr_assert_eq(uf_copy_tree(tmpl, Z.env.store), 0, "%s", Z.env.store);
	cr_assert_eq(mkdir(Z.env.stash, 0755), 0);
	fio *f = fio_new(Z.env.stash);
	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	return f;
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

	crash_cfg(&Z.C);
	cr_assert_eq(ut_open(Z.env.store, &Z.C, NULL, &Z.S), 0);
	Z.L = ut_topic(Z.S, "t");
	uz_append(&Z, n, NULL);
	cr_assert_eq(sb_store_close(Z.S), 0);
	Z.S = NULL;
	snprintf(tmpl, sizeof(tmpl), "%s.tmpl", Z.env.store);
	cr_assert_eq(uf_copy_tree(Z.env.store, tmpl), 0, "%s", tmpl);
	for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
		for (unsigned k = 1;; k++) {
			fio *f = crash_scenario(tmpl);
			cr_assert_eq(ut_open(Z.env.store, &Z.C, fio_io(f), &Z.S), 0);
			cr_assert_eq(sb_store_get(Z.S, "t", &Z.L), 0);
			fio_crash_at(f, kinds[ki], k);
			size_t done = 0;
			int rc = sb_log_compress(Z.L, &done);
			int hit = fio_crashed(f);
			sb_store_close(Z.S); /* fails after the crash: it is abandoned */
			Z.S = NULL;
			int mode = (int)((k + ki) % FIO_CRASH_NMODES);
			cr_assert_eq(fio_crash_apply(f, k * 31 + ki, mode, NULL), 0);
			fio_free(f);
			scenarios++;
			crashed += hit;
			cr_assert(hit || (rc == 0 && done > 2), "kind %zu k %u: %s", ki, k, sb_strerror(rc));

			rc = uz_open_quiet(&Z, 0);
			cr_assert_eq(rc, 0, "kind %zu k %u mode %d: %s", ki, k, mode, sb_strerror(rc));
			cr_assert_eq(sb_log_next(Z.L), n, "kind %zu k %u mode %d", ki, k, mode);
			for (uint64_t i = 0; i < n; i++)
				cr_assert_eq(uz_check_rec(&Z, i), 0, "kind %zu k %u mode %d: record %llu", ki, k, mode,
					     (unsigned long long)i);
			uz_check_stream(&Z, 0, n, 65536);
			uz_append(&Z, 1, NULL);
			cr_assert_eq(uz_check_rec(&Z, n), 0);
			cr_assert_eq(sb_store_close(Z.S), 0);
			Z.S = NULL;
			if (!hit)
				break; /* no kth call of this kind: the next kind */
		}
	}
	cr_assert_gt(crashed, 30, "%u of %u scenarios crashed", crashed, scenarios);
	fprintf(stderr, "crash_at_each_step: %u scenarios, %u crashed the swap\n", scenarios, crashed);
	cr_assert_eq(uf_rmrf(tmpl), 0);
}

/*
 * A topic whose newest segment is compressed (the plain ones after it
 * gone: here removed by hand) takes appends again: the open writes that
 * segment back as a plain file (temp file, fdatasync, rename, directory
 * fsync). A crash at the kth call of each kind during that open, or after
 * it at the sync of one more append, in each crash mode: every record is
 * still there and reads right, and the appended one too once its sync
 * returned.
 */
Test(compress, crash_writing_back_plain)
{
	static const fio_kind kinds[] = {FIO_OPEN, FIO_PWRITE, FIO_FDATASYNC, FIO_RENAME, FIO_UNLINK, FIO_CLOSE};
	char tmpl[4096 + 16], names[64][32], path[4096];
	unsigned scenarios = 0, crashed = 0;

	crash_cfg(&Z.C);
	cr_assert_eq(ut_open(Z.env.store, &Z.C, NULL, &Z.S), 0);
	Z.L = ut_topic(Z.S, "t");
	uz_append(&Z, 800, NULL);
	cr_assert_eq(sb_log_sync(Z.L), 0);
	cr_assert_eq(sb_log_compress(Z.L, NULL), 0);
	cr_assert_eq(sb_store_close(Z.S), 0);
	Z.S = NULL;
	/* the newest segment and its index files go: the one before it, compressed, is the newest */
	int ns = sorted_segs(names, 64);
	cr_assert_gt(ns, 2);
	uint64_t end, n = strtoull(names[ns - 1], NULL, 10);
	cr_assert(uz_is_compressed(&Z, names[ns - 2], &end));
	cr_assert_eq(unlink(ut_topic_path(&Z.env, "t", names[ns - 1], path, sizeof(path))), 0);
	static const char *const suffixes[] = {".idx", ".tix"};
	for (int i = 0; i < 2; i++) {
		char name[40];
		snprintf(name, sizeof(name), "%.20s%s", names[ns - 1], suffixes[i]);
		unlink(ut_topic_path(&Z.env, "t", name, path, sizeof(path)));
	}
	unlink(ut_topic_path(&Z.env, "t", "clean", path, sizeof(path)));
	snprintf(tmpl, sizeof(tmpl), "%s.tmpl", Z.env.store);
	cr_assert_eq(uf_copy_tree(Z.env.store, tmpl), 0, "%s", tmpl);
	/* without a crash: the open writes it back plain, and it reads */
	cr_assert_eq(uz_open_quiet(&Z, 0), 0);
	cr_assert_eq(sb_log_next(Z.L), n);
	cr_assert_eq(sb_store_close(Z.S), 0);
	Z.S = NULL;
	cr_assert_not(uz_is_compressed(&Z, names[ns - 2], &end), "%s still compressed", names[ns - 2]);
	for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
		for (unsigned k = 1;; k++) {
			fio *f = crash_scenario(tmpl);
			fio_crash_at(f, kinds[ki], k);
			int acked = 0, rc = ut_open(Z.env.store, &Z.C, fio_io(f), &Z.S);
			if (!rc && !fio_crashed(f)) {
				rc = sb_store_get(Z.S, "t", &Z.L);
				cr_assert(rc == 0 || fio_crashed(f), "kind %zu k %u: %s", ki, k, sb_strerror(rc));
				if (!rc)
					acked = uz_try_append(&Z, NULL) == 0 && sb_log_sync(Z.L) == 0;
			}
			int hit = fio_crashed(f);
			fio_crash_now(f);
			if (Z.S)
				sb_store_close(Z.S); /* abandoned: the power goes */
			Z.S = NULL;
			int mode = (int)((k + ki) % FIO_CRASH_NMODES);
			cr_assert_eq(fio_crash_apply(f, k * 37 + ki, mode, NULL), 0);
			fio_free(f);
			scenarios++;
			crashed += hit;

			rc = uz_open_quiet(&Z, 0);
			cr_assert_eq(rc, 0, "kind %zu k %u mode %d: %s", ki, k, mode, sb_strerror(rc));
			uint64_t next = sb_log_next(Z.L);
			cr_assert(next == n || next == n + 1, "kind %zu k %u mode %d: next %llu", ki, k, mode,
				  (unsigned long long)next);
			cr_assert(next == n + 1 || !acked, "kind %zu k %u mode %d: the synced append is lost", ki, k,
				  mode);
			for (uint64_t i = 0; i < next; i++)
				cr_assert_eq(uz_check_rec(&Z, i), 0, "kind %zu k %u mode %d: record %llu", ki, k, mode,
					     (unsigned long long)i);
			cr_assert_eq(sb_store_close(Z.S), 0);
			Z.S = NULL;
			if (!hit)
				break; /* no kth call of this kind: the next kind */
		}
	}
	cr_assert_gt(crashed, 5, "%u of %u scenarios crashed", crashed, scenarios);
	fprintf(stderr, "crash_writing_back_plain: %u scenarios, %u crashed\n", scenarios, crashed);
	cr_assert_eq(uf_rmrf(tmpl), 0);
}

/* Segments big enough for a zstd dictionary (1/64 of the segment): it is
 * there, and everything reads. */
Test(compress, roundtrip_zstd_dict)
{
	char names[64][32];
	int with_dict = 0;

	Z.seg_bytes = 1u << 20;
	roundtrip(SB_COMPRESS_ZSTD, 40000);
	int ns = uz_list_segs(&Z, names, 64);
	for (int i = 0; i < ns; i++) {
		char path[4096];
		uint8_t h[SB_ZSEG_HDR];
		int fd = open(ut_topic_path(&Z.env, "t", names[i], path, sizeof(path)), O_RDONLY);
		if (fd >= 0 && read(fd, h, sizeof(h)) == (ssize_t)sizeof(h) && sb_get32(h) == SB_ZSEG_MAGIC &&
		    sb_get32(h + 84) > 0)
			with_dict++;
		if (fd >= 0)
			close(fd);
	}
	cr_assert_gt(with_dict, 1, "%d compressed segments with a dictionary", with_dict);
}
