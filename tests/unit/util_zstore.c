/*
 * util_zstore.c - see util_zstore.h.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "util_files.h"
#include "util_zstore.h"

void uz_init(uz_store *z, const char *tag)
{
	cr_assert_eq(ut_env_init(&z->env, tag), 0);
	z->S = NULL;
	z->seg_bytes = 64 * 1024;
}

void uz_fini(uz_store *z)
{
	if (z->S)
		sb_store_close(z->S);
	ut_env_fini(&z->env);
}

void uz_open(uz_store *z, enum sb_compression c)
{
	ut_cfg(&z->C, z->seg_bytes, SB_SYNC_NEVER);
	z->C.compression = c;
	z->C.compression_block_bytes = 4096;
	z->C.index_interval_bytes = 512;
	cr_assert_eq(ut_open(z->env.store, &z->C, NULL, &z->S), 0);
	z->L = ut_topic(z->S, "t");
	cr_assert_not_null(z->L);
}

void uz_reopen(uz_store *z)
{
	cr_assert_eq(sb_store_close(z->S), 0);
	z->S = NULL;
	cr_assert_eq(ut_open(z->env.store, &z->C, NULL, &z->S), 0);
	cr_assert_eq(sb_store_get(z->S, "t", &z->L), 0);
}

static void quiet(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	(void)topic;
	(void)msg;
}

int uz_open_quiet(uz_store *z, int repair)
{
	sb_store_options o;
	int rc;

	sb_store_options_default(&o);
	o.defaults = z->C;
	o.no_flusher = 1;
	o.report = quiet;
	if (repair) {
		o.repair = 1;
		o.full_check = 1;
	}
	if ((rc = sb_store_open(z->env.store, &o, &z->S)))
		return rc;
	return sb_store_get(z->S, "t", &z->L);
}

void uz_compress_keep(uz_store *z, char *copy, size_t cap)
{
	cr_assert_eq(sb_log_sync(z->L), 0);
	cr_assert_eq(sb_log_compress(z->L, NULL), 0);
	cr_assert_eq(sb_store_close(z->S), 0);
	z->S = NULL;
	snprintf(copy, cap, "%s.orig", z->env.store);
	cr_assert_eq(uf_copy_tree(z->env.store, copy), 0, "%s", copy);
}

void uz_restore(const uz_store *z, const char *copy)
{
	cr_assert_eq(uf_rmrf(z->env.store), 0);
	cr_assert_eq(uf_copy_tree(copy, z->env.store), 0, "%s", z->env.store);
}

size_t uz_payload(uint64_t i, uint8_t *buf, size_t cap)
{
	if (i % 11 == 5)
		return 0;
	size_t n = (size_t)snprintf((char *)buf, cap, "line %llu of the log: the quick brown fox %llu\n",
				    (unsigned long long)i, (unsigned long long)(i * 2654435761u % 1000));
	if (i % 97 == 3) { /* now and then a long, less compressible one */
		for (size_t k = n; k < 3000 && k < cap; k++)
			buf[k] = (uint8_t)(i * 31 + k * k);
		n = 3000;
	}
	return n;
}

int uz_try_append(uz_store *z, uz_headers_fn *hdrs)
{
	uint8_t buf[4096];
	char key[32];
	uint64_t i = sb_log_next(z->L);
	size_t len = uz_payload(i, buf, sizeof(buf));
	int kl = snprintf(key, sizeof(key), "k%llu", (unsigned long long)(i % 13));
	sb_record_in r = {.key = key, .key_len = i % 3 == 0 ? (uint32_t)kl : 0, .value = buf,
			  .value_len = (uint32_t)len, .timestamp_ns = 1000 + (int64_t)i * 7};

	if (hdrs)
		hdrs(i, &r.headers, &r.n_headers);
	return sb_log_append(z->L, &r, 1, NULL);
}

void uz_append(uz_store *z, uint64_t n, uz_headers_fn *hdrs)
{
	for (uint64_t k = 0; k < n; k++)
		cr_assert_eq(uz_try_append(z, hdrs), 0);
}

int uz_check_rec(const uz_store *z, uint64_t i)
{
	uint8_t want[4096], got[4096];
	char key[32], gk[32];
	size_t n = uz_payload(i, want, sizeof(want)), nr = 0, kl = 0;
	sb_record_info info;
	int rc = sb_log_read(z->L, i, 0, got, sizeof(got), &nr, &info);

	if (rc)
		return rc;
	if (nr != n || memcmp(got, want, n) || info.offset != i || info.timestamp_ns != 1000 + (int64_t)i * 7 ||
	    info.value_len != n)
		return 1;
	int wl = snprintf(key, sizeof(key), "k%llu", (unsigned long long)(i % 13));
	if ((rc = sb_log_read_key(z->L, i, gk, sizeof(gk), &kl)))
		return rc;
	if (i % 3 == 0 ? (kl != (size_t)wl || memcmp(gk, key, kl)) : kl != 0)
		return 1;
	/* a part of it, from the middle */
	if (n > 4) {
		if ((rc = sb_log_read(z->L, i, 3, got, 2, &nr, NULL)))
			return rc;
		if (nr != 2 || memcmp(got, want + 3, 2))
			return 1;
	}
	return 0;
}

void uz_check_stream(const uz_store *z, uint64_t from, uint64_t to, size_t chunk)
{
	uz_check_stream_gap(z, from, to, to, to, chunk);
}

void uz_check_stream_gap(const uz_store *z, uint64_t from, uint64_t to, uint64_t skip_lo, uint64_t skip_hi,
			 size_t chunk)
{
	size_t total = 0, cap = 0;
	uint8_t *want = NULL, *got;

	for (uint64_t i = from; i < to; i++) {
		if (i >= skip_lo && i < skip_hi)
			continue;
		if (total + 4096 > cap) {
			cap = cap ? cap * 2 : 1 << 20;
			want = realloc(want, cap);
		}
		total += uz_payload(i, want + total, 4096);
	}
	got = malloc(total + 1);
	uint64_t pos = sb_log_stream_start(z->L);
	size_t done = 0;
	while (done < total) {
		size_t n = 0, want_n = chunk < total - done ? chunk : total - done;
		cr_assert_eq(sb_log_read_stream(z->L, pos + done, got + done, want_n, &n), 0);
		cr_assert_gt(n, 0);
		done += n;
	}
	cr_assert(!total || memcmp(got, want, total) == 0);
	cr_assert_eq(sb_log_stream_end(z->L) - sb_log_stream_start(z->L), total);
	free(want);
	free(got);
}

int uz_list_segs(const uz_store *z, char names[][32], int cap)
{
	char dir[4096];
	DIR *d = opendir(ut_topic_path(&z->env, "t", NULL, dir, sizeof(dir)));
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) && n < cap) {
		size_t l = strlen(de->d_name);
		if (l > 4 && l < 32 && strcmp(de->d_name + l - 4, ".seg") == 0)
			memcpy(names[n++], de->d_name, l + 1);
	}
	if (d)
		closedir(d);
	return n;
}

int uz_is_compressed(const uz_store *z, const char *name, uint64_t *blocks_end)
{
	char path[4096];
	uint8_t m[SB_ZSEG_HDR] = {0};
	int fd = open(ut_topic_path(&z->env, "t", name, path, sizeof(path)), O_RDONLY);

	if (fd < 0)
		return 0;
	if (read(fd, m, sizeof(m)) != (ssize_t)sizeof(m))
		m[0] = 0;
	close(fd);
	*blocks_end = sb_get64(m + 64);
	return sb_get32(m) == SB_ZSEG_MAGIC;
}
