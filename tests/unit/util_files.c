/*
 * util_files.c - see util_files.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util_files.h"

char *uf_mkdtemp(const char *tag)
{
	const char *t = getenv("TMPDIR");
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s/sbtest-%s-XXXXXX", t && *t ? t : "/tmp", tag ? tag : "x");
	if (!mkdtemp(buf))
		return NULL;
	return strdup(buf);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

int uf_rmrf(const char *path)
{
	if (!path)
		return 0;
	if (access(path, F_OK) < 0)
		return 0;
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) ? -errno : 0;
}

int uf_flip_byte(const char *path, off_t pos, uint8_t mask)
{
	int fd = open(path, O_RDWR), rc = 0;
	struct stat st;
	uint8_t b;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (pos < 0)
		pos += st.st_size;
	if (pos < 0 || pos >= st.st_size) {
		rc = -ERANGE;
		goto out;
	}
	if (pread(fd, &b, 1, pos) != 1) {
		rc = -EIO;
		goto out;
	}
	b ^= mask;
	if (pwrite(fd, &b, 1, pos) != 1)
		rc = -EIO;
out:
	close(fd);
	return rc;
}

int uf_truncate(const char *path, off_t len)
{
	return truncate(path, len) < 0 ? -errno : 0;
}

int uf_cut_tail(const char *path, off_t n)
{
	off_t s = uf_size(path);
	if (s < 0)
		return (int)s;
	return uf_truncate(path, s > n ? s - n : 0);
}

int uf_remove(const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}

off_t uf_size(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 ? -errno : st.st_size;
}

int uf_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* Visit regular entries of dir ending in suffix; fn returns nonzero to stop. */
static int each_suffix(const char *dir, const char *suffix,
		       int (*fn)(void *arg, const char *dir, const char *name), void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!ends_with(e->d_name, suffix))
			continue;
		if ((rc = fn(arg, dir, e->d_name)))
			break;
	}
	closedir(d);
	return rc < 0 ? rc : 0;
}

static int count_fn(void *arg, const char *dir, const char *name)
{
	(void)dir;
	(void)name;
	++*(int *)arg;
	return 0;
}

int uf_count_suffix(const char *dir, const char *suffix)
{
	int n = 0, rc = each_suffix(dir, suffix, count_fn, &n);
	return rc ? rc : n;
}

static int sum_fn(void *arg, const char *dir, const char *name)
{
	char p[4096];
	off_t s = uf_size(uf_join(p, sizeof(p), dir, name));
	if (s > 0)
		*(off_t *)arg += s;
	return 0;
}

off_t uf_sum_suffix(const char *dir, const char *suffix)
{
	off_t n = 0;
	int rc = each_suffix(dir, suffix, sum_fn, &n);
	return rc ? rc : n;
}

static int rm_fn(void *arg, const char *dir, const char *name)
{
	char p[4096];
	if (unlink(uf_join(p, sizeof(p), dir, name)) == 0)
		++*(int *)arg;
	return 0;
}

int uf_remove_suffix(const char *dir, const char *suffix)
{
	int n = 0, rc = each_suffix(dir, suffix, rm_fn, &n);
	return rc ? rc : n;
}

struct last_arg {
	char best[256];
};

static int last_fn(void *arg, const char *dir, const char *name)
{
	struct last_arg *a = arg;
	(void)dir;
	if (strlen(name) < sizeof(a->best) && strcmp(name, a->best) > 0)
		strcpy(a->best, name);
	return 0;
}

int uf_last_suffix(const char *dir, const char *suffix, char *buf, size_t cap)
{
	struct last_arg a = {.best = ""};
	int rc = each_suffix(dir, suffix, last_fn, &a);
	if (rc)
		return rc;
	if (!a.best[0])
		return -ENOENT;
	if (strlen(a.best) >= cap)
		return -ERANGE;
	strcpy(buf, a.best);
	return 0;
}

struct list_arg {
	char **v;
	int n, cap;
};

static int list_fn(void *arg, const char *dir, const char *name)
{
	struct list_arg *a = arg;
	(void)dir;
	if (a->n == a->cap) {
		int c = a->cap ? a->cap * 2 : 16;
		char **v = realloc(a->v, (size_t)c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = c;
	}
	if (!(a->v[a->n] = strdup(name)))
		return -ENOMEM;
	a->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int uf_list_suffix(const char *dir, const char *suffix, char ***out)
{
	struct list_arg a = {0};
	int rc = each_suffix(dir, suffix, list_fn, &a);
	if (rc) {
		uf_list_free(a.v, a.n);
		return rc;
	}
	if (a.n)
		qsort(a.v, (size_t)a.n, sizeof(*a.v), cmp_str);
	*out = a.v;
	return a.n;
}

void uf_list_free(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int uf_read_all(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY), rc = 0;
	struct stat st;
	uint8_t *b;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	if (pread(fd, b, (size_t)st.st_size, 0) != st.st_size) {
		free(b);
		rc = -EIO;
		goto out;
	}
	*out = b;
	*len = (size_t)st.st_size;
out:
	close(fd);
	return rc;
}

int uf_write_at(const char *path, off_t pos, const void *buf, size_t n)
{
	int fd = open(path, O_RDWR), rc = 0;
	struct stat st;

	if (fd < 0)
		return -errno;
	if (pos < 0) {
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto out;
		}
		pos = st.st_size;
	}
	if (pwrite(fd, buf, n, pos) != (ssize_t)n)
		rc = -EIO;
out:
	close(fd);
	return rc;
}

int uf_copy_file(const char *src, const char *dst)
{
	uint8_t *b = NULL;
	size_t n = 0;
	int rc = uf_read_all(src, &b, &n), fd;

	if (rc)
		return rc;
	fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		rc = -errno;
	} else {
		if (n && write(fd, b, n) != (ssize_t)n)
			rc = -EIO;
		close(fd);
	}
	free(b);
	return rc;
}

int uf_copy_tree(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *de;
	char a[8192], b[8192];
	struct stat st;
	int rc = 0;

	if (!d)
		return -errno;
	if (mkdir(dst, 0755) < 0)
		rc = -errno;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(a, sizeof(a), "%s/%s", src, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", dst, de->d_name);
		if (stat(a, &st) < 0)
			rc = -errno;
		else if (S_ISDIR(st.st_mode))
			rc = uf_copy_tree(a, b);
		else
			rc = uf_copy_file(a, b);
	}
	closedir(d);
	return rc;
}

int uf_write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), rc = 0;

	if (fd < 0)
		return -errno;
	if (n && write(fd, buf, n) != (ssize_t)n)
		rc = -EIO;
	close(fd);
	return rc;
}

char *uf_join(char *buf, size_t cap, const char *a, const char *b)
{
	snprintf(buf, cap, "%s/%s", a, b);
	return buf;
}
