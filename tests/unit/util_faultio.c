/*
 * util_faultio.c - see util_faultio.h.
 *
 * Data operations are tracked per inode (fstat of the caller's fd) with a
 * descriptor of our own (reopened through /proc/self/fd), so undoing works
 * whatever the file is called by then and after the store closed its fds.
 * Namespace operations are one ordered list; each remembers the parent
 * directories that must be fdatasynced for it to be durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_faultio_impl.h"

/* ---- helpers ------------------------------------------------------------ */

static void fd_path(int fd, char *buf, size_t cap)
{
	char p[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, buf, cap - 1);
	buf[n < 0 ? 0 : n] = 0;
}

static int parent_of(const char *path, dev_t *dev, ino_t *ino)
{
	char d[PATH_MAX];
	struct stat st;
	const char *s = strrchr(path, '/');

	if (!s)
		strcpy(d, ".");
	else if (s == path)
		strcpy(d, "/");
	else
		snprintf(d, sizeof(d), "%.*s", (int)(s - path), path);
	if (stat(d, &st) < 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* Should this call fail? Returns 0 or -errno. Called with mu held. */
static int check(fio *f, fio_kind kind, const char *path, int fd)
{
	char buf[PATH_MAX];
	int rc = 0;

	f->calls[kind]++;
	if (f->crashed)
		goto fail_eio;
	if (f->crash_left && f->crash_kind == (int)kind && --f->crash_left == 0) {
		f->crashed = 1;
		goto fail_eio;
	}
	buf[0] = 0;
	for (int i = 0; i < 16; i++) {
		struct rule *r = &f->rules[i];
		if (!r->active || r->kind != kind)
			continue;
		if (r->match) {
			if (!path) {
				if (!buf[0])
					fd_path(fd, buf, sizeof(buf));
				path = buf;
			}
			if (!strstr(path, r->match))
				continue;
		}
		if (r->fired) {
			if (r->flags & FIO_STICKY)
				rc = -r->err;
			continue;
		}
		if (--r->left == 0) {
			r->fired = 1;
			rc = -r->err;
		}
	}
	if (rc)
		f->failed++;
	if (rc && getenv("FIO_DEBUG_FAIL"))
		fprintf(stderr, "fio: failed kind %d on %s\n", (int)kind, path ? path : "(fd)");
	return rc;
fail_eio:
	f->failed++;
	return -EIO;
}

static struct ffile *file_find(fio *f, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < f->nfiles; i++)
		if (f->files[i].dev == dev && f->files[i].ino == ino)
			return &f->files[i];
	return NULL;
}

/* The tracked file behind fd (created on first use), NULL if untrackable. */
static struct ffile *file_for(fio *f, int fd)
{
	struct stat st;
	struct ffile *ff;
	char p[64];

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	if ((ff = file_find(f, st.st_dev, st.st_ino)))
		return ff;
	if (f->nfiles == f->capf) {
		size_t c = f->capf ? f->capf * 2 : 16;
		struct ffile *nf = realloc(f->files, c * sizeof(*nf));
		if (!nf)
			return NULL;
		f->files = nf;
		f->capf = c;
	}
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	int our = open(p, O_RDWR | O_CLOEXEC);
	if (our < 0)
		return NULL;
	ff = &f->files[f->nfiles++];
	memset(ff, 0, sizeof(*ff));
	ff->dev = st.st_dev;
	ff->ino = st.st_ino;
	ff->fd = our;
	if (f->snap_mode)
		ff->snap = fio__read_fd_all(our, &ff->snap_len);
	return ff;
}

static void file_drop(fio *f, struct ffile *ff)
{
	for (size_t i = 0; i < ff->nops; i++)
		free(ff->ops[i].saved);
	free(ff->ops);
	free(ff->snap);
	close(ff->fd);
	*ff = f->files[--f->nfiles];
}

static int add_op(fio *f, struct ffile *ff, struct dop *d)
{
	d->seq = ++f->op_seq;
	if (ff->snap) { /* snapshot mode: the snapshot covers it */
		free(d->saved);
		return 0;
	}
	if (ff->nops == ff->cap) {
		size_t c = ff->cap ? ff->cap * 2 : 8;
		struct dop *n = realloc(ff->ops, c * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ff->ops = n;
		ff->cap = c;
	}
	ff->ops[ff->nops++] = *d;
	return 0;
}

/* Save bytes [from, to) of our fd (clipped to size) into d->saved. */
static void save_range(struct ffile *ff, struct dop *d, off_t from, off_t to, off_t size)
{
	if (to > size)
		to = size;
	d->saved_off = from;
	d->saved = NULL;
	d->saved_n = 0;
	if (to <= from)
		return;
	d->saved = malloc((size_t)(to - from));
	if (!d->saved)
		return;
	ssize_t r = pread(ff->fd, d->saved, (size_t)(to - from), from);
	d->saved_n = r > 0 ? (size_t)r : 0;
}

static struct nsop *ns_add(fio *f, int kind, const char *a, const char *b)
{
	if (f->nns == f->capns) {
		size_t c = f->capns ? f->capns * 2 : 16;
		struct nsop *n = realloc(f->ns, c * sizeof(*n));
		if (!n)
			return NULL;
		f->ns = n;
		f->capns = c;
	}
	struct nsop *o = &f->ns[f->nns++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->seq = ++f->op_seq;
	o->a = strdup(a);
	o->b = b ? strdup(b) : NULL;
	if (parent_of(a, &o->d1, &o->i1))
		o->ok1 = 1; /* cannot tell: treat as durable */
	if (parent_of(b ? b : a, &o->d2, &o->i2))
		o->ok2 = 1;
	return o;
}

/* A hard link of path in the stash dir (malloc'd name), or NULL. */
static char *stash_link(fio *f, const char *path)
{
	char p[PATH_MAX];

	if (!f->stash_dir)
		return NULL;
	snprintf(p, sizeof(p), "%s/stash-%u", f->stash_dir, f->stash_seq++);
	if (link(path, p) < 0)
		return NULL;
	return strdup(p);
}

/* ---- the sb_io table ------------------------------------------------------ */

static int f_open(void *ctx, const char *path, int flags, mode_t mode)
{
	fio *f = ctx;
	struct stat st;
	uint8_t *old = NULL;
	off_t old_size = 0;
	int rc, existed, fd;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_OPEN, path, -1);
	if (rc)
		goto out;
	existed = lstat(path, &st) == 0;
	if (existed && S_ISREG(st.st_mode) && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY &&
	    st.st_size > 0) {
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		old_size = st.st_size;
		old = malloc((size_t)old_size);
		if (rfd >= 0 && old && pread(rfd, old, (size_t)old_size, 0) != old_size) {
			free(old);
			old = NULL;
		}
		if (rfd >= 0)
			close(rfd);
	}
	fd = open(path, flags | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = -errno;
		free(old);
		goto out;
	}
	rc = fd;
	if ((flags & O_CREAT) && !existed)
		ns_add(f, NS_CREATE, path, NULL);
	if (f->snap_mode && (flags & O_ACCMODE) != O_RDONLY) {
		struct ffile *ff = file_for(f, fd);
		if (ff && old && !ff->nops && ff->snap_len == 0) { /* O_TRUNC'ed */
			free(ff->snap);
			ff->snap = old;
			ff->snap_len = (size_t)old_size;
			old = NULL;
		}
	}
	if (old) {
		struct ffile *ff = file_for(f, fd);
		struct dop d = {.is_write = 0, .old_size = old_size, .post_size = 0, .saved_off = 0,
				.saved = old, .saved_n = (size_t)old_size};
		if (!ff || add_op(f, ff, &d))
			free(old);
	}
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* fio_slow's sleep for a call of kind on fd, if it matches. */
static void slow_down(fio *f, fio_kind kind, int fd)
{
	char match[64], path[PATH_MAX];

	pthread_mutex_lock(&f->mu);
	unsigned us = f->slow_us[kind];
	memcpy(match, f->slow_match[kind], sizeof(match));
	pthread_mutex_unlock(&f->mu);
	if (!us)
		return;
	fd_path(fd, path, sizeof(path));
	if (match[0] && !strstr(path, match))
		return;
	pthread_mutex_lock(&f->mu);
	f->slowed++;
	if (us == FIO_HOLD) {
		while (f->slow_us[kind] == FIO_HOLD)
			pthread_cond_wait(&f->slow_cv, &f->mu);
		pthread_mutex_unlock(&f->mu);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	usleep(us);
}

unsigned fio_slowed(fio *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->slowed;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fio_slow(fio *f, fio_kind kind, unsigned delay_us, const char *match)
{
	pthread_mutex_lock(&f->mu);
	f->slow_us[kind] = delay_us;
	snprintf(f->slow_match[kind], sizeof(f->slow_match[kind]), "%s", match ? match : "");
	pthread_cond_broadcast(&f->slow_cv);
	pthread_mutex_unlock(&f->mu);
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	fio *f = ctx;
	struct stat st;
	struct dop d = {.is_write = 1, .off = off};
	struct ffile *ff;
	ssize_t w;
	int rc;

	slow_down(f, FIO_PWRITE, fd);
	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_PWRITE, NULL, fd);
	if (rc) {
		w = rc;
		goto out;
	}
	if (f->budget >= 0) {
		if (f->budget == 0 && n > 0) {
			f->failed++;
			w = -ENOSPC;
			goto out;
		}
		if ((int64_t)n > f->budget)
			n = (size_t)f->budget;
	}
	if (f->short_nth && --f->short_nth == 0 && f->short_keep < n)
		n = f->short_keep;
	ff = file_for(f, fd);
	if (ff && fstat(fd, &st) == 0) {
		d.old_size = st.st_size;
		save_range(ff, &d, off, off + (off_t)n, st.st_size);
	} else {
		ff = NULL;
	}
	w = pwrite(fd, buf, n, off);
	if (w < 0) {
		w = -errno;
		free(d.saved);
		goto out;
	}
	if (f->budget >= 0)
		f->budget -= w;
	if (ff) {
		d.n = (size_t)w;
		if (d.saved_n > (size_t)w)
			d.saved_n = (size_t)w;
		d.post_size = off + w > d.old_size ? off + w : d.old_size;
		if (add_op(f, ff, &d))
			free(d.saved);
	}
out:
	pthread_mutex_unlock(&f->mu);
	return w;
}

/*
 * An fdatasync covers what was written before it began, not what other
 * threads write while it runs (the kernel may or may not write those out):
 * the ops and content at entry are what becomes durable at a successful
 * exit. Otherwise a group-commit leader that acknowledges appends made
 * during its sync would look correct.
 */
static int f_fdatasync(void *ctx, int fd)
{
	fio *f = ctx;
	struct stat st;
	uint8_t *entry_snap = NULL;
	size_t entry_len = 0;
	uint64_t seq0;
	int rc, is_dir;

	slow_down(f, FIO_FDATASYNC, fd);
	pthread_mutex_lock(&f->mu);
	unsigned delay = f->sync_delay_us;
	seq0 = ++f->op_seq; /* ops numbered below this one are covered */
	is_dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	if (f->snap_mode && !is_dir) {
		struct ffile *ff = file_find(f, st.st_dev, st.st_ino);
		if (ff) /* through our fd: the caller's may be write-only */
			entry_snap = fio__read_fd_all(ff->fd, &entry_len);
	}
	pthread_mutex_unlock(&f->mu);
	if (delay)
		usleep(delay);
	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_FDATASYNC, NULL, fd);
	if (rc)
		goto out;
	if (!f->fake_sync && fdatasync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		for (size_t i = 0; i < f->nns; i++) {
			struct nsop *o = &f->ns[i];
			if (o->seq > seq0)
				continue;
			if (o->d1 == st.st_dev && o->i1 == st.st_ino)
				o->ok1 = 1;
			if (o->d2 == st.st_dev && o->i2 == st.st_ino)
				o->ok2 = 1;
		}
	} else {
		struct ffile *ff = file_find(f, st.st_dev, st.st_ino);
		if (ff && f->snap_mode) {
			if (entry_snap && seq0 > ff->snap_seq) {
				free(ff->snap);
				ff->snap = entry_snap;
				ff->snap_len = entry_len;
				ff->snap_seq = seq0;
				entry_snap = NULL;
			}
		} else if (ff) {
			size_t k = 0;
			for (size_t i = 0; i < ff->nops; i++) {
				if (ff->ops[i].seq < seq0)
					free(ff->ops[i].saved);
				else
					ff->ops[k++] = ff->ops[i];
			}
			ff->nops = k;
			if (!k)
				file_drop(f, ff);
		}
	}
out:
	pthread_mutex_unlock(&f->mu);
	free(entry_snap);
	return rc;
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
	fio *f = ctx;
	struct stat st;
	struct dop d = {.is_write = 0, .post_size = len};
	struct ffile *ff;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_FTRUNCATE, NULL, fd);
	if (rc)
		goto out;
	ff = file_for(f, fd);
	if (ff && fstat(fd, &st) == 0) {
		d.old_size = st.st_size;
		save_range(ff, &d, len, st.st_size, st.st_size);
	} else {
		ff = NULL;
	}
	if (ftruncate(fd, len) < 0) {
		rc = -errno;
		free(d.saved);
		goto out;
	}
	if (ff && add_op(f, ff, &d))
		free(d.saved);
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int f_fallocate(void *ctx, int fd, off_t off, off_t len)
{
	fio *f = ctx;
	struct stat st;
	struct ffile *ff;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_FALLOCATE, NULL, fd);
	if (rc)
		goto out;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (f->budget >= 0 && off + len > st.st_size && off + len - st.st_size > f->budget) {
		f->failed++;
		rc = -ENOSPC;
		goto out;
	}
	ff = file_for(f, fd);
	if (fallocate(fd, 0, off, len) < 0) {
		rc = -errno;
		goto out;
	}
	if (ff && off + len > st.st_size) {
		struct dop d = {.is_write = 0, .old_size = st.st_size, .post_size = off + len};
		add_op(f, ff, &d);
	}
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int f_rename(void *ctx, const char *from, const char *to)
{
	fio *f = ctx;
	struct stat st;
	char *stash = NULL;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_RENAME, from, -1);
	if (rc)
		goto out;
	if (lstat(to, &st) == 0 && !S_ISDIR(st.st_mode))
		stash = stash_link(f, to);
	if (rename(from, to) < 0) {
		rc = -errno;
		if (stash) {
			unlink(stash);
			free(stash);
		}
		goto out;
	}
	struct nsop *o = ns_add(f, NS_RENAME, from, to);
	if (o)
		o->stash = stash;
	else
		free(stash);
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int f_unlink(void *ctx, const char *path)
{
	fio *f = ctx;
	char *stash;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_UNLINK, path, -1);
	if (rc)
		goto out;
	stash = stash_link(f, path);
	if (unlink(path) < 0) {
		rc = -errno;
		if (stash) {
			unlink(stash);
			free(stash);
		}
		goto out;
	}
	struct nsop *o = ns_add(f, NS_UNLINK, path, NULL);
	if (o)
		o->stash = stash;
	else
		free(stash);
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static ssize_t f_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
	fio *f = ctx;
	ssize_t r;

	pthread_mutex_lock(&f->mu);
	r = check(f, FIO_PREAD, NULL, fd);
	pthread_mutex_unlock(&f->mu);
	if (r)
		return r;
	r = pread(fd, buf, n, off); /* outside the lock: reads change nothing */
	return r < 0 ? -errno : r;
}

static int f_mkdir(void *ctx, const char *path, mode_t mode)
{
	fio *f = ctx;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_MKDIR, path, -1);
	if (!rc && mkdir(path, mode) < 0)
		rc = -errno;
	if (!rc)
		ns_add(f, NS_MKDIR, path, NULL);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int f_rmdir(void *ctx, const char *path)
{
	fio *f = ctx;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_RMDIR, path, -1);
	if (!rc && rmdir(path) < 0)
		rc = -errno;
	if (!rc)
		ns_add(f, NS_RMDIR, path, NULL);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* A failed close still closes (as close(2) on Linux). */
static int f_close(void *ctx, int fd)
{
	fio *f = ctx;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = check(f, FIO_CLOSE, NULL, fd);
	pthread_mutex_unlock(&f->mu);
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* ---- control ------------------------------------------------------------ */

fio *fio_new(const char *stash_dir)
{
	fio *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->slow_cv, NULL);
	f->budget = -1;
	f->stash_dir = stash_dir ? strdup(stash_dir) : NULL;
	f->io = (sb_io){.ctx = f, .open = f_open, .pwrite = f_pwrite, .fdatasync = f_fdatasync,
			.ftruncate = f_ftruncate, .fallocate = f_fallocate, .rename = f_rename,
			.unlink = f_unlink, .pread = f_pread, .mkdir = f_mkdir, .rmdir = f_rmdir,
			.close = f_close, .mmap_writes = 0};
	return f;
}

void fio__reset_state(fio *f)
{
	while (f->nfiles)
		file_drop(f, &f->files[f->nfiles - 1]);
	for (size_t i = 0; i < f->nns; i++) {
		if (f->ns[i].stash)
			unlink(f->ns[i].stash);
		free(f->ns[i].a);
		free(f->ns[i].b);
		free(f->ns[i].stash);
	}
	f->nns = 0;
}

void fio_free(fio *f)
{
	if (!f)
		return;
	fio__reset_state(f);
	fio_fail_clear(f);
	free(f->files);
	free(f->ns);
	free(f->stash_dir);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->slow_cv);
	free(f);
}

fio *fio_new_mmap(const char *stash_dir)
{
	fio *f = fio_new(stash_dir);
	if (f) {
		f->snap_mode = 1;
		f->io.mmap_writes = 1;
	}
	return f;
}

const sb_io *fio_io(fio *f)
{
	return &f->io;
}

int fio_fail(fio *f, fio_kind kind, unsigned nth, int err, unsigned flags, const char *match)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < 16; i++) {
		struct rule *r = &f->rules[i];
		if (r->active)
			continue;
		*r = (struct rule){.active = 1, .kind = kind, .left = nth ? nth : 1, .err = err,
				   .flags = flags, .match = match ? strdup(match) : NULL};
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void fio_fail_clear(fio *f)
{
	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < 16; i++) {
		free(f->rules[i].match);
		memset(&f->rules[i], 0, sizeof(f->rules[i]));
	}
	pthread_mutex_unlock(&f->mu);
}

void fio_disk_budget(fio *f, int64_t bytes)
{
	pthread_mutex_lock(&f->mu);
	f->budget = bytes < 0 ? -1 : bytes;
	pthread_mutex_unlock(&f->mu);
}

void fio_short_write(fio *f, unsigned nth, size_t keep)
{
	pthread_mutex_lock(&f->mu);
	f->short_nth = nth ? nth : 1;
	f->short_keep = keep;
	pthread_mutex_unlock(&f->mu);
}

void fio_set_sync(fio *f, int real, unsigned delay_us)
{
	pthread_mutex_lock(&f->mu);
	f->fake_sync = !real;
	f->sync_delay_us = delay_us;
	pthread_mutex_unlock(&f->mu);
}

unsigned fio_calls(fio *f, fio_kind kind)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->calls[kind];
	pthread_mutex_unlock(&f->mu);
	return n;
}

unsigned fio_failed(fio *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned n = f->failed;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fio_crash_at(fio *f, fio_kind kind, unsigned nth)
{
	pthread_mutex_lock(&f->mu);
	f->crash_kind = (int)kind;
	f->crash_left = nth ? nth : 1;
	pthread_mutex_unlock(&f->mu);
}

void fio_crash_now(fio *f)
{
	pthread_mutex_lock(&f->mu);
	f->crashed = 1;
	pthread_mutex_unlock(&f->mu);
}

int fio_crashed(fio *f)
{
	pthread_mutex_lock(&f->mu);
	int c = f->crashed;
	pthread_mutex_unlock(&f->mu);
	return c;
}

unsigned fio_pending_data(fio *f)
{
	unsigned n = 0;
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->nfiles; i++)
		n += (unsigned)f->files[i].nops;
	pthread_mutex_unlock(&f->mu);
	return n;
}

unsigned fio_pending_ns(fio *f)
{
	unsigned n = 0;
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->nns; i++)
		n += !(f->ns[i].ok1 && f->ns[i].ok2);
	pthread_mutex_unlock(&f->mu);
	return n;
}

uint8_t *fio__read_fd_all(int fd, size_t *len)
{
	struct stat st;
	uint8_t *b;

	*len = 0;
	if (fstat(fd, &st) < 0)
		return NULL;
	b = malloc((size_t)st.st_size + 1);
	if (!b)
		return NULL;
	ssize_t r = st.st_size ? pread(fd, b, (size_t)st.st_size, 0) : 0;
	*len = r > 0 ? (size_t)r : 0;
	return b;
}
