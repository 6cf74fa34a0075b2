/*
 * sb_io.h - the seam between the store and the system calls that touch data.
 *
 * Every open, pwrite, fdatasync, ftruncate, fallocate, rename and unlink the
 * store makes on its files goes through one of these tables, so that tests
 * can inject EIO, ENOSPC, short writes and crashes (tests/unit/faultio.[ch]).
 * Each function returns what the system call would, but as -errno on failure.
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
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
	int (*fdatasync)(void *ctx, int fd);  /* also used on directories */
	int (*ftruncate)(void *ctx, int fd, off_t len);
	int (*fallocate)(void *ctx, int fd, off_t off, off_t len);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int mmap_writes;
} sb_io;

/* The real system calls, with mmap_writes on. Static; never freed. */
const sb_io *sb_io_default(void);

#endif
