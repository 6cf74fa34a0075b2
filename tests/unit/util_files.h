/*
 * util_files.h - small file helpers for the storage engine's tests: make and
 * remove temp directories, damage files (flip a byte, cut short, remove),
 * count files by suffix. Each returns 0 or -errno unless it says otherwise.
 */
#ifndef UTIL_FILES_H
#define UTIL_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdtemp under $TMPDIR (or /tmp) with the given tag; returns a malloc'd
 * path the caller frees, or NULL. */
char *uf_mkdtemp(const char *tag);
/* rm -rf path (missing is fine). */
int uf_rmrf(const char *path);
/* XOR the byte at pos (pos < 0: from the end, -1 = last byte) with mask. */
int uf_flip_byte(const char *path, off_t pos, uint8_t mask);
/* Cut the file to len bytes. */
int uf_truncate(const char *path, off_t len);
/* Cut `n` bytes off the end of the file. */
int uf_cut_tail(const char *path, off_t n);
int uf_remove(const char *path);
/* Size of the file, or -errno. */
off_t uf_size(const char *path);
int uf_exists(const char *path);
/* Files in dir whose name ends in suffix ("" counts all, dot files too). */
int uf_count_suffix(const char *dir, const char *suffix);
/* Sum of the sizes of the files in dir ending in suffix, or -errno. */
off_t uf_sum_suffix(const char *dir, const char *suffix);
/* Remove every file in dir ending in suffix; returns how many, or -errno. */
int uf_remove_suffix(const char *dir, const char *suffix);
/* The name (not path) of the last file of dir ending in suffix in name
 * order, into buf; 0, -ENOENT. */
int uf_last_suffix(const char *dir, const char *suffix, char *buf, size_t cap);
/* The names in dir ending in suffix, sorted; *out a malloc'd array of
 * malloc'd names (free with uf_list_free). Returns the count or -errno. */
int uf_list_suffix(const char *dir, const char *suffix, char ***out);
void uf_list_free(char **names, int n);
/* Read the whole file into a malloc'd buffer (*len its size); 0 or -errno. */
int uf_read_all(const char *path, uint8_t **out, size_t *len);
/* Append/overwrite `n` bytes at pos (pos < 0: at the end). */
int uf_write_at(const char *path, off_t pos, const void *buf, size_t n);
/* Copy file src to dst (created or replaced); 0 or -errno. */
int uf_copy_file(const char *src, const char *dst);
/* Make dst (it must not exist) a copy of directory src: its files and,
 * recursively, its directories. No shell: a test that forks under
 * Criterion's parallel runner leaks at exit (ASan). 0 or -errno. */
int uf_copy_tree(const char *src, const char *dst);
/* Make the file hold exactly buf[0, n) (created or truncated). */
int uf_write_file(const char *path, const void *buf, size_t n);
/* snprintf into a static-free buffer: path join a/b into buf (cap >= 4096). */
char *uf_join(char *buf, size_t cap, const char *a, const char *b);

#endif
