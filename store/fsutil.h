/*
 * fsutil.h - small file helpers of the store, all through sb_io.
 */
#ifndef SB_FSUTIL_H
#define SB_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "sb_io.h"

/* fsync a directory (open O_RDONLY|O_DIRECTORY, fdatasync, close). */
int sb_fsync_dir(const sb_io *io, const char *dir);
/* fsync the directory holding path (its last component's parent). */
int sb_fsync_parent(const sb_io *io, const char *path);
/* Durable publish of dir/name: write dir/name.tmp, fdatasync, rename,
 * fsync the directory. */
int sb_publish_file(const sb_io *io, const char *dir, const char *name, const void *buf, size_t len);
/*
 * Rewrite dir/name in place (no temp file, no new block on a full disk):
 * write len bytes at 0 of the existing file, then fdatasync it when `sync`.
 * For a small file whose readers check a CRC and can do without it when it
 * is torn. -ENOENT when there is no such file.
 */
int sb_overwrite_file(const sb_io *io, const char *dir, const char *name, const void *buf, size_t len, int sync);
/* fdatasync dir/name (an existing file). 0 or -errno. */
int sb_fdatasync_file(const sb_io *io, const char *dir, const char *name);
/* Write n bytes at off: 0, -errno, or -ENOSPC for a short write (the one
 * rule of sb_io.h: the caller undoes what a failed write left). */
int sb_pwrite_full(const sb_io *io, int fd, const void *buf, size_t n, off_t off);
/* Is rc the lack of space (ENOSPC, EDQUOT)? */
int sb_no_space(int rc);
/* Read dir/name, which must be exactly len bytes long; -ENOENT, -EIO (not
 * len bytes long) or -errno. */
int sb_read_small(const sb_io *io, const char *dir, const char *name, void *buf, size_t len);
/* Current CLOCK_REALTIME in nanoseconds. */
long long sb_now_ns(void);

/* out = dir "/" name; -ENAMETOOLONG if it does not fit PATH_MAX. */
int sb_path(char *out, const char *dir, const char *name);

#endif
