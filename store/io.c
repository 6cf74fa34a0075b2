/*
 * io.c - the default sb_io table: the real system calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sb_io.h"

static int io_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx;
	int fd = open(path, flags | O_CLOEXEC, mode);
	return fd < 0 ? -errno : fd;
}

static ssize_t io_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	(void)ctx;
	ssize_t w = pwrite(fd, buf, n, off);
	return w < 0 ? -errno : w;
}

static ssize_t io_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
	(void)ctx;
	ssize_t r = pread(fd, buf, n, off);
	return r < 0 ? -errno : r;
}

static int io_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return fdatasync(fd) < 0 ? -errno : 0;
}

static int io_ftruncate(void *ctx, int fd, off_t len)
{
	(void)ctx;
	return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int io_fallocate(void *ctx, int fd, off_t off, off_t len)
{
	(void)ctx;
	return fallocate(fd, 0, off, len) < 0 ? -errno : 0;
}

static int io_rename(void *ctx, const char *from, const char *to)
{
	(void)ctx;
	return rename(from, to) < 0 ? -errno : 0;
}

static int io_unlink(void *ctx, const char *path)
{
	(void)ctx;
	return unlink(path) < 0 ? -errno : 0;
}

static int io_mkdir(void *ctx, const char *path, mode_t mode)
{
	(void)ctx;
	return mkdir(path, mode) < 0 ? -errno : 0;
}

static int io_rmdir(void *ctx, const char *path)
{
	(void)ctx;
	return rmdir(path) < 0 ? -errno : 0;
}

static int io_close(void *ctx, int fd)
{
	(void)ctx;
	return close(fd) < 0 ? -errno : 0;
}

static const sb_io default_io = {
	.ctx = NULL,
	.open = io_open,
	.pread = io_pread,
	.pwrite = io_pwrite,
	.fdatasync = io_fdatasync,
	.ftruncate = io_ftruncate,
	.fallocate = io_fallocate,
	.rename = io_rename,
	.unlink = io_unlink,
	.mkdir = io_mkdir,
	.rmdir = io_rmdir,
	.close = io_close,
	.mmap_writes = 1,
};

const sb_io *sb_io_default(void)
{
	return &default_io;
}
