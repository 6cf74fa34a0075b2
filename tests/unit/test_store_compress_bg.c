/*
 * test_store_compress_bg.c - the store's background compressor and the
 * appender (store/log_compress.c): a segment is built at SCHED_IDLE, in a
 * thread other than the one that swaps it in (which takes append_mu and
 * must never be kept off the CPU); an append goes through while the swap
 * waits for its directory fsync (append_mu is not held across it).
 * Each waits for the compressor (a few hundred ms), never for a fixed time.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_io tio;                   /* the default table with hooks */
static const sb_io *real;
static atomic_int build_policy, swap_policy; /* -1: not seen */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int hold, held, release;     /* [mu] the swap's directory fsync */
static pthread_t swapper;           /* [mu] the thread that renamed a .zseg.tmp */
static int renamed;                 /* [mu] */

static int ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);
	return a >= b && !strcmp(s + a - b, tail);
}

static int t_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx;
	if ((flags & O_CREAT) && ends_with(path, ".zseg.tmp"))
		atomic_store(&build_policy, sched_getscheduler(0));
	return real->open(real->ctx, path, flags, mode);
}

static int t_rename(void *ctx, const char *from, const char *to)
{
	(void)ctx;
	if (ends_with(from, ".zseg.tmp")) {
		atomic_store(&swap_policy, sched_getscheduler(0));
		pthread_mutex_lock(&mu);
		swapper = pthread_self();
		renamed = 1;
		pthread_mutex_unlock(&mu);
	}
	return real->rename(real->ctx, from, to);
}

/* The swap's directory fsync waits (while `hold`) until released, at most
 * 5 s. */
static int t_fdatasync(void *ctx, int fd)
{
	struct stat st;

	(void)ctx;
	pthread_mutex_lock(&mu);
	if (hold && renamed && pthread_equal(swapper, pthread_self()) && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		held = 1;
		hold = 0;
		pthread_cond_broadcast(&cv);
		while (!release && pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT)
			;
		held = 0;
	}
	pthread_mutex_unlock(&mu);
	return real->fdatasync(real->ctx, fd);
}

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "zbg"), 0);
	S = NULL;
	real = sb_io_default();
	tio = *real;
	tio.open = t_open;
	tio.rename = t_rename;
	tio.fdatasync = t_fdatasync;
	atomic_store(&build_policy, -1);
	atomic_store(&swap_policy, -1);
	hold = held = release = renamed = 0;
}

static void teardown(void)
{
	pthread_mutex_lock(&mu);
	release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(compress_bg, .init = setup, .fini = teardown);

/* A store with its background threads, zstd, 256 KiB segments. */
static sb_log *open_bg(void)
{
	sb_store_options o;
	sb_log *l;

	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 256 * 1024, SB_SYNC_INTERVAL);
	o.defaults.compression = SB_COMPRESS_ZSTD;
	o.defaults.compression_block_bytes = 4096;
	o.io = &tio;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	cr_assert_eq(sb_store_create(S, "t"), 0);
	cr_assert_eq(sb_store_get(S, "t", &l), 0);
	return l;
}

static uint32_t compressed(sb_log *l)
{
	sb_log_stats st;
	cr_assert_eq(sb_log_get_stats(l, &st), 0);
	return st.compressed;
}

static void wait_compressed(sb_log *l, uint32_t n)
{
	long long t0 = ut_now_ms();
	while (compressed(l) < n) {
		cr_assert_lt(ut_now_ms() - t0, 60000, "the compressor did not compress %u segments", n);
		usleep(10000);
	}
}

Test(compress_bg, build_idle_swap_not)
{
	sb_log *l = open_bg();

	cr_assert_eq(ut_append_n(l, 6000, 3, 50, 300), 0);
	cr_assert_eq(sb_log_sync(l), 0);
	wait_compressed(l, 2);
	cr_assert_eq(atomic_load(&build_policy), SCHED_IDLE, "built at policy %d", atomic_load(&build_policy));
	cr_assert_eq(atomic_load(&swap_policy), SCHED_OTHER, "swapped in at policy %d", atomic_load(&swap_policy));
	for (uint64_t off = 0; off < 6000; off += 7)
		cr_assert_eq(ut_check(l, off, ut_len(off, 3, 50, 300), 3), 0);
}

Test(compress_bg, append_while_the_swap_syncs)
{
	sb_log *l = open_bg();
	uint64_t got;

	pthread_mutex_lock(&mu);
	hold = 1;
	pthread_mutex_unlock(&mu);
	cr_assert_eq(ut_append_n(l, 3000, 5, 50, 300), 0);
	cr_assert_eq(sb_log_sync(l), 0);
	long long t0 = ut_now_ms();
	pthread_mutex_lock(&mu);
	while (!held) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&cv, &mu, &until);
		cr_assert_lt(ut_now_ms() - t0, 60000, "no swap reached its directory fsync");
	}
	pthread_mutex_unlock(&mu);
	/* the swap waits in its directory fsync: appends go on meanwhile */
	uint64_t next = sb_log_next(l);
	for (int k = 0; k < 20; k++)
		cr_assert_eq(ut_append1(l, next + (uint64_t)k, ut_len(next + (uint64_t)k, 5, 50, 300), 5, &got), 0);
	pthread_mutex_lock(&mu);
	int still = held;
	release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	cr_assert(still, "the appends waited for the compressor's directory fsync");
	wait_compressed(l, 1);
	for (uint64_t off = 0; off < next + 20; off += 5)
		cr_assert_eq(ut_check(l, off, ut_len(off, 5, 50, 300), 5), 0);
}
