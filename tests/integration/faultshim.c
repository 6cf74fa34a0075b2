/*
 * faultshim.c - libsbfaultshim.so, an LD_PRELOAD library that makes the
 * Nth system call of one kind under a directory fail, for tools/faults (the
 * fault campaign of issue 8 item 4 through the mounted daemon, SQLite's
 * method: every call failed in turn).
 *
 * It wraps the libc entry points the store's sb_io table calls (store/io.c):
 * open, pread, pwrite, fdatasync/fsync, ftruncate, fallocate, rename,
 * unlink, mkdir, rmdir, close. A call counts when its path is under
 * SB_FAULT_DIR, or its fd was opened under it; every other call (the FUSE
 * channel, /proc, the daemon's own log) passes through untouched and
 * uncounted. glibc's calls to itself (opendir, stdio) are not interposed.
 *
 * Environment (nothing set: the library does nothing):
 *   SB_FAULT_STATE  a file shared by every process of the run (the daemon
 *                   forks to detach): per kind, how many calls were made;
 *                   and the first failure injected (kind, number, errno,
 *                   path, and the file's size for a call on an fd). Created zeroed if missing. Layout: struct state.
 *   SB_FAULT_DIR    absolute path of the log directory
 *   SB_FAULT_OP     the kind to fail (a name of kind_names), or unset to
 *                   count only
 *   SB_FAULT_NTH    the call of that kind to fail, from 1
 *   SB_FAULT_ERRNO  EIO (default) or ENOSPC
 *   SB_FAULT_STICKY 1: that call and every later one of its kind fail (a
 *                   disk that stays broken); default only that one
 *   SB_FAULT_HOLD   a path: while that file exists, a call of the kind
 *                   waits (at most 60 s) before it goes on, having made
 *                   PATH.held to say so (t_same_name: a last append held)
 * A failed call does nothing (open opens nothing, rename renames nothing),
 * except close, which closes the fd and then says EIO, as Linux may.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum kind { K_OPEN, K_PREAD, K_PWRITE, K_SYNC, K_TRUNCATE, K_FALLOCATE, K_RENAME,
	    K_UNLINK, K_MKDIR, K_RMDIR, K_CLOSE, K_COUNT };

static const char *const kind_names[K_COUNT] = {
	"open", "pread", "pwrite", "fdatasync", "ftruncate", "fallocate",
	"rename", "unlink", "mkdir", "rmdir", "close",
};

/* The shared state file (read by tools/faults with struct.unpack: keep the
 * two in step). */
#define STATE_MAGIC 0x53424649u /* "SBFI" */
struct state {
	uint32_t magic;
	uint32_t fired;            /* 1 once a failure was injected */
	uint64_t count[K_COUNT];   /* calls made, per kind */
	int32_t fired_kind;
	int32_t fired_errno;
	uint64_t fired_n;
	int64_t fired_size;        /* the file's size at the failed call, or -1 */
	char fired_path[1024];
};

#define MAX_FD 65536

/* The library's own settings and fd table: set once by init (a
 * constructor, before any thread), then only fds[] changes, under fd_mu. */
static struct {
	struct state *st;
	char dir[PATH_MAX];
	size_t dirlen;
	int kind;         /* K_COUNT: count only */
	uint64_t nth;
	int err;
	int sticky;
	char hold[PATH_MAX];
} cfg = {.kind = K_COUNT};
static pthread_mutex_t fd_mu = PTHREAD_MUTEX_INITIALIZER;
static char *fds[MAX_FD]; /* [fd_mu] the path an fd under dir was opened with */

static int kind_of(const char *s)
{
	for (int k = 0; s && k < K_COUNT; k++)
		if (!strcmp(s, kind_names[k]))
			return k;
	return K_COUNT;
}

/* Map the state file with the raw system calls (not our wrappers). */
static struct state *map_state(const char *path)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return NULL;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || (sb.st_size < (off_t)sizeof(struct state) &&
				   syscall(SYS_ftruncate, fd, (off_t)sizeof(struct state)) < 0)) {
		syscall(SYS_close, fd);
		return NULL;
	}
	void *p = mmap(NULL, sizeof(struct state), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	syscall(SYS_close, fd);
	if (p == MAP_FAILED)
		return NULL;
	struct state *st = p;
	uint32_t zero = 0;
	__atomic_compare_exchange_n(&st->magic, &zero, STATE_MAGIC, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return st;
}

__attribute__((constructor)) static void init(void)
{
	const char *state = getenv("SB_FAULT_STATE"), *dir = getenv("SB_FAULT_DIR");
	if (!state || !dir || dir[0] != '/' || strlen(dir) >= sizeof(cfg.dir))
		return;
	strcpy(cfg.dir, dir);
	cfg.dirlen = strlen(dir);
	while (cfg.dirlen > 1 && cfg.dir[cfg.dirlen - 1] == '/')
		cfg.dir[--cfg.dirlen] = '\0';
	cfg.kind = kind_of(getenv("SB_FAULT_OP"));
	const char *n = getenv("SB_FAULT_NTH"), *e = getenv("SB_FAULT_ERRNO"), *s = getenv("SB_FAULT_STICKY");
	cfg.nth = n ? strtoull(n, NULL, 10) : 0;
	cfg.err = e && !strcmp(e, "ENOSPC") ? ENOSPC : EIO;
	cfg.sticky = s && !strcmp(s, "1");
	const char *h = getenv("SB_FAULT_HOLD");
	if (h && strlen(h) + sizeof ".held" <= sizeof cfg.hold)
		strcpy(cfg.hold, h);
	cfg.st = map_state(state);
}

/* Is path (absolute, or relative to the cwd or dirfd) under cfg.dir? */
static int under(int dirfd, const char *path)
{
	char buf[PATH_MAX];
	if (!cfg.st || !path)
		return 0;
	if (path[0] != '/') {
		char base[PATH_MAX];
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof base))
				return 0;
		} else {
			char link[64];
			snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
			ssize_t r = readlink(link, base, sizeof base - 1);
			if (r < 0)
				return 0;
			base[r] = '\0';
		}
		if (snprintf(buf, sizeof buf, "%s/%s", base, path) >= (int)sizeof buf)
			return 0;
		path = buf;
	}
	return !strncmp(path, cfg.dir, cfg.dirlen) && (path[cfg.dirlen] == '/' || !path[cfg.dirlen]);
}

static int fd_tracked(int fd, char *path, size_t cap)
{
	int yes = 0;
	if (!cfg.st || fd < 0 || fd >= MAX_FD)
		return 0;
	pthread_mutex_lock(&fd_mu);
	if (fds[fd]) {
		yes = 1;
		if (path)
			snprintf(path, cap, "%s", fds[fd]);
	}
	pthread_mutex_unlock(&fd_mu);
	return yes;
}

static void fd_set_path(int fd, const char *path)
{
	if (fd < 0 || fd >= MAX_FD)
		return;
	char *dup = path ? strdup(path) : NULL;
	pthread_mutex_lock(&fd_mu);
	free(fds[fd]);
	fds[fd] = dup;
	pthread_mutex_unlock(&fd_mu);
}

/* SB_FAULT_HOLD: wait while that file exists (the raw system calls). */
static void hold(void)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	char held[PATH_MAX + sizeof ".held"];
	if (!cfg.hold[0] || syscall(SYS_faccessat, AT_FDCWD, cfg.hold, F_OK) != 0)
		return;
	snprintf(held, sizeof held, "%s.held", cfg.hold);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, held, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		syscall(SYS_close, fd);
	for (int i = 0; i < 6000 && syscall(SYS_faccessat, AT_FDCWD, cfg.hold, F_OK) == 0; i++)
		nanosleep(&tick, NULL);
}

/* Count a call of kind k on path (fd, or -1); nonzero (errno set) when it
 * must fail. */
static int hit(int k, const char *path, int fd)
{
	uint64_t n = __atomic_add_fetch(&cfg.st->count[k], 1, __ATOMIC_SEQ_CST);
	if (k == cfg.kind)
		hold();
	if (k != cfg.kind || !cfg.nth || n < cfg.nth || (n > cfg.nth && !cfg.sticky))
		return 0;
	uint32_t zero = 0;
	if (__atomic_compare_exchange_n(&cfg.st->fired, &zero, 2, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		cfg.st->fired_kind = k;
		cfg.st->fired_errno = cfg.err;
		cfg.st->fired_n = n;
		struct stat sb;
		cfg.st->fired_size = fd >= 0 && fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : -1;
		snprintf(cfg.st->fired_path, sizeof cfg.st->fired_path, "%s", path ? path : "");
		__atomic_store_n(&cfg.st->fired, 1, __ATOMIC_SEQ_CST);
	}
	errno = cfg.err;
	return 1;
}

static int hit_fd(int k, int fd)
{
	char path[1024];
	return fd_tracked(fd, path, sizeof path) && hit(k, path, fd);
}

static int hit_path(int k, int dirfd, const char *path)
{
	return under(dirfd, path) && hit(k, path, -1);
}

#define COMMA ,
#define REAL(name) \
	static __typeof__(&name) real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static int do_open(int dirfd, const char *path, int flags, mode_t mode,
		   int (*real)(int, const char *, int, ...))
{
	if (hit_path(K_OPEN, dirfd, path))
		return -1;
	int fd = real(dirfd, path, flags, mode);
	if (fd >= 0 && under(dirfd, path))
		fd_set_path(fd, path);
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

/* open(2) and openat(2), and their 64 names: the mode is there only with
 * O_CREAT or O_TMPFILE. */
#define WRAP_OPEN(fn, realfn, dirfd_param, dirfd_arg) \
	int fn(dirfd_param const char *path, int flags, ...) \
	{ \
		REAL(realfn); \
		va_list ap; \
		va_start(ap, flags); \
		mode_t mode = mode_arg(flags, ap); \
		va_end(ap); \
		return do_open(dirfd_arg, path, flags, mode, real_##realfn); \
	}
WRAP_OPEN(openat, openat, int dirfd COMMA, dirfd)
WRAP_OPEN(openat64, openat64, int dirfd COMMA, dirfd)
WRAP_OPEN(open, openat, , AT_FDCWD)
WRAP_OPEN(open64, openat64, , AT_FDCWD)

int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

int __open64_2(const char *path, int flags)
{
	return open64(path, flags);
}

/* A call on an fd: fails when the fd was opened under the directory and
 * this is the call to fail. */
#define WRAP_FD(ret, fn, kind, params, args) \
	ret fn params \
	{ \
		REAL(fn); \
		return hit_fd(kind, fd) ? -1 : real_##fn args; \
	}
WRAP_FD(ssize_t, pread, K_PREAD, (int fd, void *buf, size_t n, off_t off), (fd, buf, n, off))
WRAP_FD(ssize_t, pread64, K_PREAD, (int fd, void *buf, size_t n, off_t off), (fd, buf, n, off))
WRAP_FD(ssize_t, pwrite, K_PWRITE, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off))
WRAP_FD(ssize_t, pwrite64, K_PWRITE, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off))
WRAP_FD(int, fdatasync, K_SYNC, (int fd), (fd))
WRAP_FD(int, fsync, K_SYNC, (int fd), (fd))
WRAP_FD(int, ftruncate, K_TRUNCATE, (int fd, off_t len), (fd, len))
WRAP_FD(int, ftruncate64, K_TRUNCATE, (int fd, off_t len), (fd, len))
WRAP_FD(int, fallocate, K_FALLOCATE, (int fd, int mode, off_t off, off_t len), (fd, mode, off, len))
WRAP_FD(int, fallocate64, K_FALLOCATE, (int fd, int mode, off_t off, off_t len), (fd, mode, off, len))

int rename(const char *from, const char *to)
{
	REAL(rename);
	return hit_path(K_RENAME, AT_FDCWD, from) ? -1 : real_rename(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(renameat);
	return hit_path(K_RENAME, fromfd, from) ? -1 : real_renameat(fromfd, from, tofd, to);
}

int unlink(const char *path)
{
	REAL(unlink);
	return hit_path(K_UNLINK, AT_FDCWD, path) ? -1 : real_unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);
	int k = flags & AT_REMOVEDIR ? K_RMDIR : K_UNLINK;
	return hit_path(k, dirfd, path) ? -1 : real_unlinkat(dirfd, path, flags);
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	return hit_path(K_MKDIR, AT_FDCWD, path) ? -1 : real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkdirat);
	return hit_path(K_MKDIR, dirfd, path) ? -1 : real_mkdirat(dirfd, path, mode);
}

int rmdir(const char *path)
{
	REAL(rmdir);
	return hit_path(K_RMDIR, AT_FDCWD, path) ? -1 : real_rmdir(path);
}

int close(int fd)
{
	REAL(close);
	char path[1024];
	int tracked = fd_tracked(fd, path, sizeof path);
	if (tracked)
		fd_set_path(fd, NULL);
	int fail = tracked && hit(K_CLOSE, path, fd);
	int rc = real_close(fd);
	return fail ? (errno = cfg.err, -1) : rc;
}
