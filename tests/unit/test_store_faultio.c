/*
 * test_store_faultio.c - the fault-injection table itself (util_faultio.c):
 * the crash tests are only as good as its undo, so it is tested directly on
 * plain files, without the engine.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static fio *F;
static const sb_io *io;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "fio"), 0);
	F = fio_new(env.stash);
	cr_assert_not_null(F);
	io = fio_io(F);
}

static void teardown(void)
{
	fio_free(F);
	ut_env_fini(&env);
}

TestSuite(faultio, .init = setup, .fini = teardown);

static char *path(const char *name, char *buf)
{
	return uf_join(buf, 4096, env.root, name);
}

/* fdatasync the test's root directory through the table. */
static void dsync(const sb_io *t)
{
	int d = t->open(t->ctx, env.root, O_RDONLY | O_DIRECTORY, 0);
	cr_assert_geq(d, 0);
	cr_assert_eq(t->fdatasync(t->ctx, d), 0);
	close(d);
}

static void put(int fd, const char *s, off_t off)
{
	cr_assert_eq(io->pwrite(io->ctx, fd, s, strlen(s), off), (ssize_t)strlen(s));
}

static void expect_content(const char *p, const char *want)
{
	uint8_t *b = NULL;
	size_t n = 0;
	cr_assert_eq(uf_read_all(p, &b, &n), 0);
	cr_expect_eq(n, strlen(want), "size %zu, want %zu", n, strlen(want));
	cr_expect(n == strlen(want) && !memcmp(b, want, n), "content of %s: got '%.*s' want '%s'", p,
		  (int)n, b, want);
	free(b);
}

Test(faultio, mmap_writes_off_and_plain_calls_work)
{
	char p[4096];
	cr_assert_eq(io->mmap_writes, 0);
	int fd = io->open(io->ctx, path("a", p), O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	put(fd, "hello", 0);
	cr_assert_eq(io->ftruncate(io->ctx, fd, 3), 0);
	cr_assert_eq(io->fdatasync(io->ctx, fd), 0);
	close(fd);
	expect_content(p, "hel");
	cr_expect_eq(fio_calls(F, FIO_PWRITE), 1);
	cr_expect_eq(fio_pending_data(F), 0);
}

Test(faultio, fails_the_nth_matching_call_once_or_sticky)
{
	char p[4096], q[4096];
	int fd = io->open(io->ctx, path("x.seg", p), O_RDWR | O_CREAT, 0644);
	int fd2 = io->open(io->ctx, path("x.idx", q), O_RDWR | O_CREAT, 0644);
	cr_assert(fd >= 0 && fd2 >= 0);
	fio_fail(F, FIO_PWRITE, 2, EIO, 0, ".seg");
	cr_expect_eq(io->pwrite(io->ctx, fd2, "a", 1, 0), 1); /* not matching */
	cr_expect_eq(io->pwrite(io->ctx, fd, "a", 1, 0), 1);
	cr_expect_eq(io->pwrite(io->ctx, fd, "a", 1, 1), -EIO);
	cr_expect_eq(io->pwrite(io->ctx, fd, "a", 1, 1), 1);
	fio_fail(F, FIO_FDATASYNC, 1, EIO, FIO_STICKY, NULL);
	cr_expect_eq(io->fdatasync(io->ctx, fd), -EIO);
	cr_expect_eq(io->fdatasync(io->ctx, fd2), -EIO);
	fio_fail_clear(F);
	cr_expect_eq(io->fdatasync(io->ctx, fd), 0);
	fio_fail(F, FIO_OPEN, 1, ENOSPC, 0, NULL);
	cr_expect_eq(io->open(io->ctx, path("y", p), O_RDWR | O_CREAT, 0644), -ENOSPC);
	cr_expect(!uf_exists(p));
	close(fd);
	close(fd2);
}

Test(faultio, disk_budget_gives_short_write_then_enospc)
{
	char p[4096];
	int fd = io->open(io->ctx, path("b", p), O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	fio_disk_budget(F, 6);
	cr_expect_eq(io->pwrite(io->ctx, fd, "abcd", 4, 0), 4);
	cr_expect_eq(io->pwrite(io->ctx, fd, "efgh", 4, 4), 2);
	cr_expect_eq(io->pwrite(io->ctx, fd, "ij", 2, 6), -ENOSPC);
	cr_expect_eq(io->fallocate(io->ctx, fd, 0, 1 << 20), -ENOSPC);
	fio_disk_budget(F, -1);
	cr_expect_eq(io->pwrite(io->ctx, fd, "ij", 2, 6), 2);
	fio_short_write(F, 1, 1);
	cr_expect_eq(io->pwrite(io->ctx, fd, "kl", 2, 8), 1);
	close(fd);
	expect_content(p, "abcdefijk");
}

Test(faultio, crash_drop_all_restores_the_last_synced_state)
{
	char p[4096];
	int fd = io->open(io->ctx, path("c", p), O_RDWR | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	put(fd, "0123456789", 0);
	cr_assert_eq(io->fdatasync(io->ctx, fd), 0);
	dsync(io);
	put(fd, "AB", 2);       /* overwrite */
	put(fd, "XYZ", 10);     /* extend */
	cr_assert_eq(io->ftruncate(io->ctx, fd, 5), 0); /* shrink */
	put(fd, "Q", 7);
	cr_expect_eq(fio_pending_data(F), 4);
	fio_crash_now(F);
	cr_expect_eq(io->pwrite(io->ctx, fd, "zz", 2, 0), -EIO, "frozen after the crash");
	close(fd);
	fio_crash_stats st;
	cr_assert_eq(fio_crash_apply(F, 1, FIO_CRASH_DROP_ALL, &st), 0);
	cr_expect_eq(st.dropped, 4);
	expect_content(p, "0123456789");
}

Test(faultio, crash_keep_all_keeps_everything)
{
	char p[4096];
	int fd = io->open(io->ctx, path("d", p), O_RDWR | O_CREAT, 0644);
	put(fd, "0123456789", 0);
	put(fd, "AB", 2);
	put(fd, "XYZ", 10);
	close(fd);
	fio_crash_now(F);
	cr_assert_eq(fio_crash_apply(F, 1, FIO_CRASH_KEEP_ALL, NULL), 0);
	expect_content(p, "01AB456789XYZ");
}

Test(faultio, random_crash_never_touches_synced_bytes)
{
	for (uint64_t seed = 1; seed <= 40; seed++) {
		char p[4096];
		uint8_t *b;
		size_t n;
		fio *g = fio_new(env.stash);
		const sb_io *gi = fio_io(g);
		int fd = gi->open(gi->ctx, path("e", p), O_RDWR | O_CREAT | O_TRUNC, 0644);
		cr_assert_geq(fd, 0);
		cr_assert_eq(gi->pwrite(gi->ctx, fd, "SYNCED--", 8, 0), 8);
		cr_assert_eq(gi->fdatasync(gi->ctx, fd), 0);
		dsync(gi);
		for (int i = 0; i < 6; i++)
			cr_assert_eq(gi->pwrite(gi->ctx, fd, "uuuu", 4, 8 + 4 * i), 4);
		close(fd);
		fio_crash_now(g);
		fio_crash_stats st;
		fio_crash_apply(g, seed, FIO_CRASH_RANDOM, &st);
		cr_assert_eq(st.kept + st.dropped + st.garbled, 6);
		cr_assert_eq(uf_read_all(p, &b, &n), 0);
		cr_expect(n >= 8 && !memcmp(b, "SYNCED--", 8), "seed %llu: synced bytes lost",
			  (unsigned long long)seed);
		cr_expect_leq(n, 32);
		free(b);
		fio_free(g);
	}
}

Test(faultio, namespace_ops_undone_until_dir_synced)
{
	char a[4096], b[4096], c[4096];
	int fd = io->open(io->ctx, path("old", a), O_RDWR | O_CREAT, 0644);
	put(fd, "old", 0);
	cr_assert_eq(io->fdatasync(io->ctx, fd), 0);
	close(fd);
	int dfd = io->open(io->ctx, env.root, O_RDONLY | O_DIRECTORY, 0);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(io->fdatasync(io->ctx, dfd), 0); /* "old" durable */
	fd = io->open(io->ctx, path("tmp", b), O_RDWR | O_CREAT, 0644);
	put(fd, "new", 0);
	cr_assert_eq(io->fdatasync(io->ctx, fd), 0);
	close(fd);
	cr_assert_eq(io->rename(io->ctx, b, a), 0); /* replaces "old" */
	fd = io->open(io->ctx, path("gone", c), O_RDWR | O_CREAT, 0644);
	close(fd);
	cr_assert_eq(io->unlink(io->ctx, c), 0);
	cr_expect_eq(fio_pending_ns(F), 4);
	fio_crash_now(F);
	cr_assert_eq(fio_crash_apply(F, 7, FIO_CRASH_DROP_ALL, NULL), 0);
	expect_content(a, "old");
	cr_expect(!uf_exists(b) && !uf_exists(c));
	cr_expect_eq(uf_count_suffix(env.stash, ""), 0, "stash emptied");
	close(dfd);
}

Test(faultio, dir_sync_makes_rename_durable)
{
	char a[4096], b[4096];
	int fd = io->open(io->ctx, path("t2", b), O_RDWR | O_CREAT, 0644);
	put(fd, "v2", 0);
	cr_assert_eq(io->fdatasync(io->ctx, fd), 0);
	close(fd);
	cr_assert_eq(io->rename(io->ctx, b, path("f2", a)), 0);
	int dfd = io->open(io->ctx, env.root, O_RDONLY | O_DIRECTORY, 0);
	cr_assert_eq(io->fdatasync(io->ctx, dfd), 0);
	close(dfd);
	cr_expect_eq(fio_pending_ns(F), 0);
	fio_crash_now(F);
	fio_crash_apply(F, 3, FIO_CRASH_DROP_ALL, NULL);
	expect_content(a, "v2");
}

Test(faultio, crash_at_nth_sync_freezes)
{
	char p[4096];
	int fd = io->open(io->ctx, path("g", p), O_RDWR | O_CREAT, 0644);
	dsync(io);
	fio_crash_at(F, FIO_FDATASYNC, 2); /* counted from now */
	put(fd, "a", 0);
	cr_expect_eq(io->fdatasync(io->ctx, fd), 0);
	put(fd, "b", 1);
	cr_expect_eq(io->fdatasync(io->ctx, fd), -EIO);
	cr_expect(fio_crashed(F));
	cr_expect_eq(io->pwrite(io->ctx, fd, "c", 1, 2), -EIO);
	cr_expect_lt(io->open(io->ctx, p, O_RDONLY, 0), 0);
	close(fd);
	fio_crash_apply(F, 1, FIO_CRASH_DROP_ALL, NULL);
	expect_content(p, "a");
}

Test(faultio, snapshot_mode_restores_mmap_writes_to_the_last_sync)
{
	for (int mode = FIO_CRASH_KEEP_ALL; mode <= FIO_CRASH_DROP_ALL; mode++) {
		char p[4096];
		fio *g = fio_new_mmap(env.stash);
		const sb_io *gi = fio_io(g);
		cr_assert_eq(gi->mmap_writes, 1);
		uf_remove(path("m", p));
		int fd = gi->open(gi->ctx, p, O_RDWR | O_CREAT, 0644);
		cr_assert_geq(fd, 0);
		dsync(gi);
		cr_assert_eq(gi->fallocate(gi->ctx, fd, 0, 8192), 0);
		char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		cr_assert_neq(m, MAP_FAILED);
		memcpy(m, "durable", 7);
		cr_assert_eq(gi->fdatasync(gi->ctx, fd), 0);
		memcpy(m + 4000, "volatile", 8);
		cr_assert_eq(gi->ftruncate(gi->ctx, fd, 4096), 0);
		munmap(m, 8192);
		close(fd);
		fio_crash_now(g);
		fio_crash_stats st;
		cr_assert_eq(fio_crash_apply(g, 9, mode, &st), 0);
		fio_free(g);
		uint8_t *b;
		size_t n;
		cr_assert_eq(uf_read_all(p, &b, &n), 0);
		cr_expect(n >= 7 && !memcmp(b, "durable", 7));
		if (mode == FIO_CRASH_KEEP_ALL) {
			cr_expect_eq(n, 4096);
			cr_expect(!memcmp(b + 4000, "volatile", 8));
		} else {
			cr_expect_eq(n, 8192);
			cr_expect(memcmp(b + 4000, "volatile", 8) != 0);
		}
		free(b);
	}
}
