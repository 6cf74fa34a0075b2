/*
 * util_store.c - see util_store.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util_files.h"
#include "util_store.h"

int ut_env_init(ut_env *e, const char *tag)
{
	memset(e, 0, sizeof(*e));
	e->root = uf_mkdtemp(tag);
	if (!e->root)
		return -errno;
	snprintf(e->store, sizeof(e->store), "%s/store", e->root);
	snprintf(e->stash, sizeof(e->stash), "%s/stash", e->root);
	if (mkdir(e->stash, 0755) < 0)
		return -errno;
	return 0;
}

void ut_env_fini(ut_env *e)
{
	if (e->root) {
		uf_rmrf(e->root);
		free(e->root);
		e->root = NULL;
	}
}

char *ut_topic_path(const ut_env *e, const char *topic, const char *name, char *buf, size_t cap)
{
	if (name)
		snprintf(buf, cap, "%s/%s/%s", e->store, topic, name);
	else
		snprintf(buf, cap, "%s/%s", e->store, topic);
	return buf;
}

void ut_cfg(sb_log_config *c, uint64_t seg_bytes, enum sb_sync sync)
{
	sb_log_config_default(c);
	if (seg_bytes)
		c->segment_bytes = seg_bytes;
	c->sync = sync;
}

static int open_opts(const char *dir, const sb_log_config *cfg, const sb_io *io, int ro,
		     sb_store **out)
{
	sb_store_options o;

	sb_store_options_default(&o);
	if (cfg)
		o.defaults = *cfg;
	o.io = io;
	o.read_only = ro;
	o.no_flusher = 1;
	return sb_store_open(dir, &o, out);
}

int ut_open(const char *dir, const sb_log_config *cfg, const sb_io *io, sb_store **out)
{
	return open_opts(dir, cfg, io, 0, out);
}

int ut_open_ro(const char *dir, const sb_log_config *cfg, sb_store **out)
{
	return open_opts(dir, cfg, NULL, 1, out);
}

sb_log *ut_topic(sb_store *s, const char *name)
{
	sb_log *l = NULL;
	int rc = sb_store_create(s, name);

	if (rc && rc != -EEXIST)
		return NULL;
	if (sb_store_get(s, name, &l))
		return NULL;
	return l;
}

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

size_t ut_len(uint64_t off, uint64_t seed, size_t lo, size_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (size_t)(mix(off * 31 + seed * 7 + 3) % (hi - lo + 1));
}

void ut_fill(uint8_t *buf, size_t len, uint64_t off, uint64_t seed)
{
	uint64_t s = mix(off ^ (seed << 32) ^ 0x5a5a);
	size_t i = 0;

	if (len >= 8) {
		memcpy(buf, &off, 8);
		i = 8;
	}
	for (; i < len; i++) {
		if ((i & 7) == 0)
			s = mix(s);
		buf[i] = (uint8_t)(s >> ((i & 7) * 8));
	}
}

int ut_match(const uint8_t *buf, size_t len, uint64_t off, uint64_t seed)
{
	uint8_t stack[4096];
	uint8_t *want = len <= sizeof(stack) ? stack : malloc(len);
	int ok;

	if (!want)
		return 0;
	ut_fill(want, len, off, seed);
	ok = !memcmp(want, buf, len);
	if (want != stack)
		free(want);
	return ok;
}

int ut_append1(sb_log *l, uint64_t off, size_t len, uint64_t seed, uint64_t *got)
{
	uint8_t *buf = malloc(len ? len : 1);
	char key[32];
	int rc;

	if (!buf)
		return -ENOMEM;
	ut_fill(buf, len, off, seed);
	snprintf(key, sizeof(key), "k%llu", (unsigned long long)off);
	sb_record_in r = {.key = key, .key_len = (uint32_t)strlen(key), .value = buf,
			  .value_len = (uint32_t)len};
	rc = sb_log_append(l, &r, 1, got);
	free(buf);
	return rc;
}

int ut_append_n(sb_log *l, size_t n, uint64_t seed, size_t lo, size_t hi)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t off = sb_log_next(l), got = UINT64_MAX;
		int rc = ut_append1(l, off, ut_len(off, seed, lo, hi), seed, &got);
		if (rc)
			return rc;
		if (got != off)
			return -EPROTO;
	}
	return 0;
}

int ut_check(sb_log *l, uint64_t off, size_t len, uint64_t seed)
{
	sb_record_info info;
	size_t cap = len == SIZE_MAX ? (1u << 21) : len + 16, n = 0;
	uint8_t *buf = malloc(cap);
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = sb_log_read(l, off, 0, buf, cap, &n, &info);
	if (rc)
		goto out;
	if ((len != SIZE_MAX && (n != len || info.value_len != len)) || info.offset != off) {
		rc = 1;
		goto out;
	}
	rc = ut_match(buf, n, off, seed) ? 0 : 2;
out:
	free(buf);
	return rc;
}

uint64_t ut_rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint64_t ut_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t ut_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

uint64_t ut_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
