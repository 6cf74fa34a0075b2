/*
 * fsutil.c - directory fsync, durable publish, small reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"

int sb_fsync_dir(const sb_io *io, const char *dir)
{
	int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY, 0);
	int rc;

	if (fd < 0)
		return fd;
	rc = io->fdatasync(io->ctx, fd);
	io->close(io->ctx, fd);
	return rc;
}

int sb_fsync_parent(const sb_io *io, const char *path)
{
	char parent[PATH_MAX];
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		n--;
	while (n > 0 && path[n - 1] != '/')
		n--;
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	if (n == 0)
		strcpy(parent, ".");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)n, path);
	return sb_fsync_dir(io, parent);
}

int sb_pwrite_full(const sb_io *io, int fd, const void *buf, size_t n, off_t off)
{
	ssize_t w = io->pwrite(io->ctx, fd, buf, n, off);

	return w < 0 ? (int)w : (size_t)w != n ? -ENOSPC : 0;
}

int sb_publish_file(const sb_io *io, const char *dir, const char *name, const void *buf, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fd;
	rc = sb_pwrite_full(io, fd, buf, len, 0);
	if (!rc)
		rc = io->fdatasync(io->ctx, fd);
	io->close(io->ctx, fd);
	if (!rc)
		rc = io->rename(io->ctx, tmp, path);
	if (rc) {
		io->unlink(io->ctx, tmp);
		return rc;
	}
	return sb_fsync_dir(io, dir);
}

/* dir/name (an existing file) opened for writing: its fd or -errno. */
static int open_existing(const sb_io *io, const char *dir, const char *name)
{
	char path[PATH_MAX];

	if (sb_path(path, dir, name))
		return -ENAMETOOLONG;
	return io->open(io->ctx, path, O_WRONLY, 0);
}

int sb_overwrite_file(const sb_io *io, const char *dir, const char *name, const void *buf, size_t len, int sync)
{
	int rc, fd = open_existing(io, dir, name);

	if (fd < 0)
		return fd;
	rc = sb_pwrite_full(io, fd, buf, len, 0);
	if (!rc && sync)
		rc = io->fdatasync(io->ctx, fd);
	io->close(io->ctx, fd);
	return rc;
}

int sb_fdatasync_file(const sb_io *io, const char *dir, const char *name)
{
	int rc, fd = open_existing(io, dir, name);

	if (fd < 0)
		return fd;
	rc = io->fdatasync(io->ctx, fd);
	io->close(io->ctx, fd);
	return rc;
}

int sb_no_space(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT;
}

int sb_read_small(const sb_io *io, const char *dir, const char *name, void *buf, size_t len)
{
	char path[PATH_MAX];
	uint8_t extra[1];
	int fd, rc = 0;

	if (sb_path(path, dir, name))
		return -ENAMETOOLONG;
	fd = io->open(io->ctx, path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	ssize_t r = io->pread(io->ctx, fd, buf, len, 0);
	if (r < 0)
		rc = (int)r;
	else if ((size_t)r != len)
		rc = -EIO;
	else if ((r = io->pread(io->ctx, fd, extra, 1, (off_t)len)) != 0) /* longer */
		rc = r < 0 ? (int)r : -EIO;
	io->close(io->ctx, fd);
	return rc;
}

long long sb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int sb_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}
