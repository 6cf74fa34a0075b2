/*
 * fsutil.c - directory fsync, durable publish, small reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
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
	close(fd);
	return rc;
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
	ssize_t w = io->pwrite(io->ctx, fd, buf, len, 0);
	rc = w < 0 ? (int)w : (size_t)w != len ? -ENOSPC : io->fdatasync(io->ctx, fd);
	close(fd);
	if (!rc)
		rc = io->rename(io->ctx, tmp, path);
	if (rc) {
		io->unlink(io->ctx, tmp);
		return rc;
	}
	return sb_fsync_dir(io, dir);
}

int sb_overwrite_file(const sb_io *io, const char *dir, const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, rc;

	if (sb_path(path, dir, name))
		return -ENAMETOOLONG;
	fd = io->open(io->ctx, path, O_WRONLY, 0);
	if (fd < 0)
		return fd;
	ssize_t w = io->pwrite(io->ctx, fd, buf, len, 0);
	rc = w < 0 ? (int)w : (size_t)w != len ? -ENOSPC : io->fdatasync(io->ctx, fd);
	close(fd);
	return rc;
}

int sb_no_space(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT;
}

int sb_read_small(const char *dir, const char *name, void *buf, size_t len)
{
	char path[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	ssize_t r = fstat(fd, &st) < 0 ? -1 : pread(fd, buf, len, 0);
	if (r < 0)
		rc = -errno;
	else if ((size_t)r != len || (uint64_t)st.st_size != len)
		rc = -EIO;
	close(fd);
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
