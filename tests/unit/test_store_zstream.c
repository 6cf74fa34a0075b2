/*
 * test_store_zstream.c - stream reads over compressed segments and their
 * read-ahead (store/zcache.c): a block the read-ahead worker loaded is served
 * only if its checks passed (random damage, the worker made to load the
 * damaged block before the reader reaches it); a segment freed while its
 * blocks are queued or loading; the worker ends when idle and at close (no
 * thread left behind); readers at once over the same topic; whole blocks
 * decompressed straight into a stream reader's buffer (and damage there).
 * SB_TEST_ZSTREAM_CASES sets the number of damage cases (default 40).
 */
#include <criterion/criterion.h>
#include <dirent.h>
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
#include "log_impl.h"
#include "util_store.h"
#include "zseg_impl.h"

static ut_env env;
static sb_store *S;
static sb_log *L;
static sb_log_config C;
static uint8_t *want;     /* the topic's stream */
static size_t want_len;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "zs"), 0);
	S = NULL;
	want = NULL;
	want_len = 0;
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	free(want);
	ut_env_fini(&env);
}

TestSuite(zstream, .init = setup, .fini = teardown);

/* Record i: a line of text, now and then a longer one. */
static size_t payload(uint64_t i, uint8_t *buf, size_t cap)
{
	size_t n = (size_t)snprintf((char *)buf, cap, "%llu: the quick brown fox jumps over dog %llu\n",
				    (unsigned long long)i, (unsigned long long)(i * 2654435761u % 977));
	if (i % 53 == 7)
		for (; n < 700 && n < cap; n++)
			buf[n] = (uint8_t)('a' + (i * 7 + n * n) % 26);
	return n;
}

static void open_store(void)
{
	ut_cfg(&C, 256 * 1024, SB_SYNC_NEVER);
	C.compression = SB_COMPRESS_ZSTD;
	C.compression_block_bytes = 4096;
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
	L = ut_topic(S, "t");
	cr_assert_not_null(L);
}

/* A topic of n records, its sealed segments compressed; want: its stream. */
static void make_topic(uint64_t n)
{
	size_t cap = 0;

	open_store();
	for (uint64_t i = 0; i < n; i++) {
		uint8_t buf[1024];
		size_t len = payload(i, buf, sizeof(buf));
		sb_record_in r = {.value = buf, .value_len = (uint32_t)len};
		cr_assert_eq(sb_log_append(L, &r, 1, NULL), 0);
		if (want_len + len > cap) {
			cap = cap ? cap * 2 : 1 << 20;
			want = realloc(want, cap);
		}
		memcpy(want + want_len, buf, len);
		want_len += len;
	}
	cr_assert_eq(sb_log_sync(L), 0);
	cr_assert_eq(sb_log_compress(L, NULL), 0);
	/* the log's block cache, made with its first compressed segment:
	 * read ahead whatever the machine's load (by default it does only
	 * while a core is free) */
	cr_assert_not_null(L->zc);
	sb_zcache_set_ahead(L->zc, 1);
}

/* The first compressed segment file of the topic: its path and base. */
static void first_zseg(char *path, size_t cap, uint64_t *base)
{
	char dir[4096], best[48] = "";
	DIR *d = opendir(ut_topic_path(&env, "t", NULL, dir, sizeof(dir)));
	struct dirent *de;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || l > 40 || strcmp(de->d_name + l - 4, ".seg"))
			continue;
		char p[4400];
		uint8_t m[4] = {0};
		snprintf(p, sizeof(p), "%s/%.40s", dir, de->d_name);
		int fd = open(p, O_RDONLY);
		if (fd >= 0 && read(fd, m, 4) == 4 && sb_get32(m) == SB_ZSEG_MAGIC && (!*best || strcmp(de->d_name, best) < 0))
			memcpy(best, de->d_name, l + 1);
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	cr_assert(*best, "no compressed segment");
	snprintf(path, cap, "%s/%.47s", dir, best);
	*base = strtoull(best, NULL, 10);
}

static void copy_file(const char *from, const char *to)
{
	struct stat st;
	int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(a >= 0 && b >= 0 && fstat(a, &st) == 0);
	uint8_t *buf = malloc((size_t)st.st_size);
	cr_assert_eq(read(a, buf, (size_t)st.st_size), st.st_size);
	cr_assert_eq(write(b, buf, (size_t)st.st_size), st.st_size);
	free(buf);
	close(a);
	close(b);
}

static sb_zseg *zopen(const char *path, uint64_t base, sb_zcache *c, int *fd)
{
	struct stat st;
	sb_zseg *z = NULL;

	*fd = open(path, O_RDONLY);
	cr_assert(*fd >= 0 && fstat(*fd, &st) == 0);
	cr_assert_eq(sb_zseg_open(sb_io_default(), *fd, (uint64_t)st.st_size, base, c, &z), 0);
	return z;
}

/*
 * Stream-read z from its start block by block, each pin followed (with
 * settle) by a wait for the read-ahead it asked for, so that the worker, not
 * the reader, loads the blocks ahead. Every byte served must be want's.
 * Returns 0 at the end, else the error and *at its stream position.
 */
static int stream_z(sb_zseg *z, sb_zcache *c, int settle, uint64_t *at)
{
	uint64_t pos = sb_zseg_base_stream(z), end = sb_zseg_stream_end(z);

	while (pos < end) {
		sb_zpin pin;
		const uint8_t *p;
		uint64_t avail, bad;
		int rc = sb_zseg_stream(z, pos, &pin, &p, &avail, &bad);
		if (rc) {
			*at = pos;
			return rc;
		}
		cr_assert(avail > 0 && pos + avail <= end && pos + avail <= want_len);
		cr_assert(memcmp(p, want + pos, avail) == 0, "bytes at %llu served wrong", (unsigned long long)pos);
		sb_zseg_unpin(z, &pin);
		pos += avail;
		if (settle)
			sb_zcache_ahead_wait(c, NULL);
	}
	return 0;
}

/* Flip one random bit in a random block of z but its first (the file at
 * path, which z reads): its block; *pos the byte's position in the file. */
static uint32_t flip_a_bit(sb_zseg *z, const char *path, uint64_t *seed, uint64_t *pos)
{
	uint32_t nb = sb_zseg_blocks(z);
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	uint32_t b = 1 + (uint32_t)((*seed >> 33) % (nb - 1));
	uint64_t from = sb_zseg_block_pos(z, b), len = sb_zseg_block_pos(z, b + 1) - from;
	uint8_t byte, mask = (uint8_t)(1u << ((*seed >> 7) % 8));
	int wfd = open(path, O_RDWR);

	*pos = from + (*seed >> 13) % len;
	cr_assert(wfd >= 0 && pread(wfd, &byte, 1, (off_t)*pos) == 1);
	byte ^= mask;
	cr_assert_eq(pwrite(wfd, &byte, 1, (off_t)*pos), 1);
	close(wfd);
	return b;
}

static int cases(void)
{
	const char *e = getenv("SB_TEST_ZSTREAM_CASES");
	return e ? atoi(e) : 40;
}

/*
 * Random damage inside a random block's stored bytes of a copy of a
 * compressed segment: the worker loads the damaged block (the reader settles
 * after each block), the reader then needs it: SB_ECORRUPT exactly there,
 * never a byte of it, and every byte before it right.
 */
Test(zstream, readahead_damage_never_served)
{
	char path[4300], copy[4400];
	uint64_t base, seed = 0x9e3779b97f4a7c15ull, loads = 0;

	make_topic(12000);
	first_zseg(path, sizeof(path), &base);
	snprintf(copy, sizeof(copy), "%s/copy.seg", env.root);
	{ /* undamaged: served whole, the worker loading most of it */
		sb_zcache *c;
		int fd;
		uint64_t at = 0;
		cr_assert_eq(sb_zcache_new(&c), 0);
		sb_zcache_set_ahead(c, 1);
		sb_zseg *z = zopen(path, base, c, &fd);
		cr_assert_gt(sb_zseg_blocks(z), 8);
		cr_assert_eq(stream_z(z, c, 1, &at), 0);
		sb_zcache_ahead_wait(c, &loads);
		cr_assert_geq(loads, sb_zseg_blocks(z) - 2, "the worker loaded %llu blocks of %u",
			      (unsigned long long)loads, sb_zseg_blocks(z));
		sb_zseg_free(z);
		close(fd);
		sb_zcache_free(c);
	}
	for (int k = 0; k < cases(); k++) {
		sb_zcache *c;
		int fd;
		uint64_t at = 0;
		copy_file(path, copy);
		cr_assert_eq(sb_zcache_new(&c), 0);
		sb_zcache_set_ahead(c, 1);
		sb_zseg *z = zopen(copy, base, c, &fd);
		uint64_t pos;
		uint32_t b = flip_a_bit(z, copy, &seed, &pos);
		int rc = stream_z(z, c, 1, &at);
		cr_assert_eq(rc, SB_ECORRUPT, "case %d: block %u byte %llu: %d", k, b, (unsigned long long)pos, rc);
		cr_assert_eq(at, sb_zseg_block_stream(z, b), "case %d: failed at %llu, the damage is in block %u", k,
			     (unsigned long long)at, b);
		sb_zseg_free(z);
		close(fd);
		sb_zcache_free(c);
	}
}

/* A segment freed (as a compaction or a close does) right after a stream
 * read asked for blocks ahead: its queued blocks are cancelled and its
 * loading ones waited for (ASan, TSan: nothing reads a freed segment). */
Test(zstream, free_while_reading_ahead)
{
	char path[4300];
	uint64_t base;
	sb_zcache *c;

	make_topic(6000);
	first_zseg(path, sizeof(path), &base);
	cr_assert_eq(sb_zcache_new(&c), 0);
	sb_zcache_set_ahead(c, 1);
	for (int k = 0; k < 200; k++) {
		int fd;
		sb_zseg *z = zopen(path, base, c, &fd);
		uint32_t b = (uint32_t)(k % 3);
		for (uint32_t i = 0; i <= b; i++) {
			sb_zpin pin;
			const uint8_t *p;
			uint64_t avail, bad;
			cr_assert_eq(sb_zseg_stream(z, sb_zseg_block_stream(z, i), &pin, &p, &avail, &bad), 0);
			cr_assert(memcmp(p, want + sb_zseg_block_stream(z, i), avail) == 0);
			sb_zseg_unpin(z, &pin);
		}
		sb_zseg_free(z);
		close(fd);
	}
	sb_zcache_free(c);
}

static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void read_all(size_t chunk)
{
	uint8_t *got = malloc(want_len + 1);
	uint64_t pos = sb_log_stream_start(L);
	size_t done = 0;

	while (done < want_len) {
		size_t n = 0, w = chunk < want_len - done ? chunk : want_len - done;
		cr_assert_eq(sb_log_read_stream(L, pos + done, got + done, w, &n), 0);
		cr_assert_gt(n, 0);
		done += n;
	}
	cr_assert(memcmp(got, want, want_len) == 0);
	free(got);
}

/* The worker starts with a forward stream read, ends when idle, starts
 * again, and ends at close: no thread is left behind. */
Test(zstream, worker_ends_idle_and_at_close)
{
	int before = threads_now();

	make_topic(12000);
	int open_n = threads_now();
	read_all(1 << 20);
	cr_assert_eq(threads_now(), open_n + 1, "the read-ahead worker runs");
	int idle = 0;
	for (int k = 0; k < 100 && !idle; k++) {
		usleep(20000);
		idle = threads_now() == open_n;
	}
	cr_assert(idle, "the worker ended when idle");
	read_all(65536);
	cr_assert_eq(threads_now(), open_n + 1, "the worker started again");
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	cr_assert_eq(threads_now(), before, "no thread left after close");
}

static atomic_int stop;

static void *stream_reader(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 7919 + 1;
	uint8_t *buf = malloc(256 * 1024);

	while (!atomic_load(&stop)) {
		uint64_t pos = sb_log_stream_start(L), end = sb_log_stream_end(L);
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		pos += (seed >> 20) % (end - pos) / 2;
		while (pos < end && !atomic_load(&stop)) {
			size_t n = 0;
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			size_t w = 1 + (size_t)((seed >> 30) % (256 * 1024));
			cr_assert_eq(sb_log_read_stream(L, pos, buf, w, &n), 0);
			cr_assert(n > 0 && memcmp(buf, want + pos, n) == 0);
			pos += n;
		}
	}
	free(buf);
	return NULL;
}

/* Readers at once: forward streams from random places in random chunks, and
 * random reads by offset, over one topic (its cache and worker). */
Test(zstream, readers_at_once)
{
	pthread_t th[3];
	uint8_t buf[1024], exp[1024];

	make_topic(20000);
	atomic_store(&stop, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, stream_reader, (void *)(uintptr_t)i), 0);
	uint64_t seed = 5, next = sb_log_next(L), t0 = ut_now_ms();
	for (int k = 0; k < 4000 && ut_now_ms() - t0 < 1500; k++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off = (seed >> 20) % next;
		size_t nr = 0, n = payload(off, exp, sizeof(exp));
		cr_assert_eq(sb_log_read(L, off, 0, buf, sizeof(buf), &nr, NULL), 0);
		cr_assert(nr == n && memcmp(buf, exp, n) == 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
}

/*
 * Stream-read z from its start with sb_zseg_stream_copy in chunks of random
 * sizes up to max (1 MiB chunks take most blocks whole, straight into the
 * buffer): every byte served must be want's. 0 at the end, else the error
 * and *at its stream position.
 */
static int copy_z(sb_zseg *z, size_t max, uint64_t *seed, uint64_t *at)
{
	uint64_t pos = sb_zseg_base_stream(z), end = sb_zseg_stream_end(z);
	uint8_t *buf = malloc(max);

	cr_assert_not_null(buf);
	while (pos < end) {
		size_t n = 0, w = 1 + (size_t)((*seed >> 24) % max), done = 0;
		uint64_t bad;
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		if (*seed % 3 == 0)
			w = max;
		while (done < w && pos + done < end) { /* as zstream_from does */
			int rc = sb_zseg_stream_copy(z, pos + done, buf + done, w - done, &n, &bad);
			if (rc) {
				cr_assert(memcmp(buf, want + pos, done) == 0, "bytes at %llu served wrong",
					  (unsigned long long)pos);
				*at = pos + done;
				free(buf);
				return rc;
			}
			cr_assert(n > 0 && n <= w - done);
			done += n;
		}
		cr_assert(pos + done <= want_len && memcmp(buf, want + pos, done) == 0, "bytes at %llu served wrong",
			  (unsigned long long)pos);
		pos += done;
	}
	free(buf);
	return 0;
}

/* Whole blocks of a stream read are decompressed straight into the reader's
 * buffer (no copy out of a cache slot), in reads of random sizes, with the
 * read-ahead off and on (the worker's blocks then come from its slots):
 * every byte right. */
Test(zstream, whole_blocks_straight_into_the_buffer)
{
	char path[4300];
	uint64_t base, seed = 11;

	make_topic(12000);
	first_zseg(path, sizeof(path), &base);
	for (int ahead = 0; ahead < 2; ahead++) {
		for (int round = 0; round < 3; round++) {
			sb_zcache *c;
			int fd;
			uint64_t at = 0;
			cr_assert_eq(sb_zcache_new(&c), 0);
			sb_zcache_set_ahead(c, ahead);
			sb_zseg *z = zopen(path, base, c, &fd);
			uint32_t nb = sb_zseg_blocks(z);
			cr_assert_eq(copy_z(z, round ? 64 * 1024 : 1 << 20, &seed, &at), 0);
			/* no read-ahead: all but a block at each read's end (the
			 * worker's blocks are copied from their slots) */
			if (!ahead)
				cr_assert_geq(sb_zcache_direct_loads(c), nb / 2, "%llu of %u blocks straight into the buffer",
					      (unsigned long long)sb_zcache_direct_loads(c), nb);
			sb_zcache_ahead_wait(c, NULL);
			sb_zseg_free(z);
			close(fd);
			sb_zcache_free(c);
		}
	}
	/* through the log: the whole stream in 1 MiB reads */
	uint8_t *buf = malloc(1 << 20);
	uint64_t pos = sb_log_stream_start(L), d0 = sb_zcache_direct_loads(L->zc);
	while (pos < sb_log_stream_end(L)) {
		size_t n = 0;
		cr_assert_eq(sb_log_read_stream(L, pos, buf, 1 << 20, &n), 0);
		cr_assert(n > 0 && memcmp(buf, want + pos, n) == 0);
		pos += n;
	}
	free(buf);
	cr_assert_gt(sb_zcache_direct_loads(L->zc), d0);
}

/* Random damage in a block's stored bytes, the block read straight into the
 * buffer: SB_ECORRUPT exactly at its start, none of its bytes served. */
Test(zstream, straight_into_the_buffer_damage_never_served)
{
	char path[4300], copy[4400];
	uint64_t base, seed = 0x2545f4914f6cdd1dull;

	make_topic(12000);
	first_zseg(path, sizeof(path), &base);
	snprintf(copy, sizeof(copy), "%s/copy.seg", env.root);
	for (int k = 0; k < cases() / 2; k++) {
		sb_zcache *c;
		int fd;
		uint64_t at = 0;
		copy_file(path, copy);
		cr_assert_eq(sb_zcache_new(&c), 0);
		sb_zcache_set_ahead(c, k % 2);
		sb_zseg *z = zopen(copy, base, c, &fd);
		uint64_t pos;
		uint32_t b = flip_a_bit(z, copy, &seed, &pos);
		int rc = copy_z(z, 1 << 20, &seed, &at);
		cr_assert_eq(rc, SB_ECORRUPT, "case %d: block %u byte %llu: %d", k, b, (unsigned long long)pos, rc);
		cr_assert_eq(at, sb_zseg_block_stream(z, b), "case %d: failed at %llu, the damage is in block %u", k,
			     (unsigned long long)at, b);
		sb_zcache_ahead_wait(c, NULL);
		sb_zseg_free(z);
		close(fd);
		sb_zcache_free(c);
	}
}

/* Is block i of z in a slot of c, ready? */
static int cached(sb_zcache *c, sb_zseg *z, uint32_t i)
{
	for (int k = 0; k < ZC_SLOTS; k++)
		if (c->slots[k].state == ZS_READY && c->slots[k].gen == z->gen && c->slots[k].block == i)
			return 1;
	return 0;
}

/* Direct loads borrow an empty slot (the same one each time): a forward
 * read of a whole segment straight into the buffer evicts no cached block
 * (here: the one a random read by offset just used). */
Test(zstream, straight_into_the_buffer_keeps_the_cache)
{
	char path[4300];
	uint64_t base, seed = 3, at = 0;
	sb_zcache *c;
	int fd;

	make_topic(12000);
	first_zseg(path, sizeof(path), &base);
	cr_assert_eq(sb_zcache_new(&c), 0);
	sb_zcache_set_ahead(c, 0);
	sb_zseg *z = zopen(path, base, c, &fd);
	uint32_t nb = sb_zseg_blocks(z), b = nb / 2;
	sb_zpin pin;
	sb_zrec r;
	cr_assert_eq(sb_zseg_get(z, sb_zseg_block_offset(z, b), 0, &pin, &r, NULL), 0);
	sb_zseg_unpin(z, &pin);
	cr_assert(cached(c, z, b));
	for (int k = 0; k < 3; k++) {
		uint64_t d0 = sb_zcache_direct_loads(c);
		cr_assert_eq(copy_z(z, 1 << 20, &seed, &at), 0);
		cr_assert_gt(sb_zcache_direct_loads(c), d0 + nb / 2);
		cr_assert(cached(c, z, b), "pass %d: a direct load evicted block %u", k, b);
	}
	int ctxs = 0;
	for (int k = 0; k < ZC_SLOTS; k++)
		ctxs += c->slots[k].dctx != NULL;
	cr_assert_leq(ctxs, 2, "%d slots made a DCtx", ctxs); /* the random read's and the direct loads' */
	sb_zseg_free(z);
	close(fd);
	sb_zcache_free(c);
}
