/*
 * sb_io.h - the seam between the store and the system calls that touch data.
 *
 * Every open, pread, pwrite, fdatasync, ftruncate, fallocate, close, rename,
 * unlink, mkdir and rmdir the store makes on its files and directories
 * (including LOG_DIR/.lock's open and close) goes through one of these
 * tables, so that tests can inject EIO, ENOSPC, short writes and crashes
 * (tests/unit/util_faultio.[ch]). Each function returns what the system call
 * would, but as -errno on failure. Not routed: mmap/munmap of segments (the
 * mapping reads and, with mmap_writes, writes; a test sees those through
 * snapshots), stat/fstat, flock and the lock file's note, listing
 * directories (opendir/readdir), and the read-only verifier (verify.c).
 *
 * One rule for short writes: a pwrite that returns fewer bytes than asked
 * (a regular file: the disk is full) is a failure, -ENOSPC, never retried.
 * Every caller writes through sb_pwrite_full() (fsutil.h), which says so,
 * and undoes what the short write left (the append path cuts the segment
 * back to its length; a publish unlinks its temp file). A short pread (the
 * file is shorter than its header says) is the reader's to judge: the
 * store's loaders call it damage.
 *
 * mmap_writes: when nonzero the store appends by copying into a shared
 * mapping of a preallocated segment (no system call per record; the bytes
 * are in the page cache at once and survive a crash of the process). A
 * table that wants to see every write sets it to 0: the store then appends
 * with pwrite.
 */
#ifndef SB_IO_H
#define SB_IO_H

#include <sys/types.h>

typedef struct sb_io {
	void *ctx;
	int (*open)(void *ctx, const char *path, int flags, mode_t mode); /* fd */
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
	int (*fdatasync)(void *ctx, int fd);  /* also used on directories */
	int (*ftruncate)(void *ctx, int fd, off_t len);
	int (*fallocate)(void *ctx, int fd, off_t off, off_t len);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int (*mkdir)(void *ctx, const char *path, mode_t mode);
	int (*rmdir)(void *ctx, const char *path);
	int (*close)(void *ctx, int fd); /* the fd is gone even on failure */
	int mmap_writes;
} sb_io;

/* The real system calls, with mmap_writes on. Static; never freed. */
const sb_io *sb_io_default(void);

#endif
