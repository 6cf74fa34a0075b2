/*
 * test_store_ktcheck.c - what opening a key table trusts (found by
 * tests/fuzz/fuzz_keytable.c): a table whose CRCs are all valid but whose
 * entries are out of order, outside their block, not ending at the block
 * index's last key, or not as many as its footer says, is refused; a table
 * refused by a read-only store (streambus verify, get, dump) is reported
 * through the report hook, as a read-write open reports removing it. A
 * table of several MiB is written in 2 MiB pieces at multiples of 2 MiB.
 * Keys of every length up to SB_KEY_MAX round-trip through a table.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "keytable.h"
#include "util_files.h"
#include "util_keytable.h"
#include "util_store.h"

UT_ENV_FIXTURE("ktcheck")

TestSuite(ktcheck, .init = ut_env_setup, .fini = ut_env_teardown);

#define NKEYS 1000

static size_t key_of(uint32_t i, uint8_t *k)
{
	return (size_t)sprintf((char *)k, "key-%06u%s", i * 2, i % 7 ? "" : "-with-a-longer-tail");
}

/* A table of NKEYS keys (several blocks) for offsets [0, 9999]. */
static uint8_t *good_table(const char *dir, char *name, size_t *n)
{
	sb_kt_writer *w;
	uint8_t k[64];
	char path[8192];

	cr_assert_eq(sb_kt_writer_new(sb_io_default(), dir, 0, 9999, NKEYS, 0, &w), 0);
	for (uint32_t i = 0; i < NKEYS; i++) {
		sb_mt_val v = {.offset = i * 5, .ts = i, .size = i % 300, .pos = 32 + i};
		cr_assert_eq(sb_kt_writer_add(w, k, key_of(i, k), &v), 0);
	}
	cr_assert_eq(sb_kt_writer_finish(w), 0);
	sb_kt_name(name, 0, 9999);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	uint8_t *b;
	cr_assert_eq(uf_read_all(path, &b, n), 0, "%s", path);
	return b;
}

/* An accepted table iterates in strict key order, as many entries as it
 * says, each found by a lookup (or missed by the Bloom filter). */
static void check_accepted(sb_kt *t)
{
	sb_kt_iter it;
	uint8_t prev[65536];
	size_t pl = 0, kl;
	uint64_t count = 0;

	for (sb_kt_seek(t, NULL, 0, &it); sb_kt_iter_valid(&it); sb_kt_iter_next(&it), count++) {
		const uint8_t *k = sb_kt_iter_key(&it, &kl);
		size_t m = kl < pl ? kl : pl;
		int c = memcmp(prev, k, m);
		cr_assert(count == 0 || c < 0 || (c == 0 && pl < kl), "entry %llu out of order",
			  (unsigned long long)count);
		sb_mt_val v, g;
		sb_kt_iter_val(&it, &v);
		uint64_t h = sb_kt_hash(k, kl);
		int rc = sb_kt_get(t, k, kl, h, &g);
		cr_assert(rc == 0 || (rc == -ENOENT && !sb_kt_may_contain(t, h)), "entry %llu: lookup %d",
			  (unsigned long long)count, rc);
		cr_assert(rc || g.offset == v.offset, "entry %llu: a lookup finds another", (unsigned long long)count);
		memcpy(prev, k, kl);
		pl = kl;
	}
	cr_assert_eq(it.err, 0);
	cr_assert_eq(count, sb_kt_count(t));
}

/* Swap the position slots of two entries of the first block; bump the
 * footer's count; each forged: refused. Then random bytes changed in the
 * blocks and the index, forged: refused, or accepted and sound. */
Test(ktcheck, forged_tables_refused_or_sound)
{
	char name[64], path[8192];
	size_t n;
	uint8_t *good = good_table(env.stash, name, &n), *b = malloc(n);
	sb_kt *t;
	const uint8_t *f = good + n - SB_KT_FOOTER;
	uint64_t ipos = sb_get64(f + 32);
	uint64_t b0 = sb_get64(good + ipos + 4), l0 = sb_get32(good + ipos + 4 + 8);
	uint32_t cnt0 = sb_get32(good + b0 + l0 - 8);
	uint8_t *slots = good + b0 + l0 - 8 - 4 * (size_t)cnt0;
	char why[256];

	snprintf(path, sizeof(path), "%s/%s", env.stash, name);
	cr_assert_gt(sb_get32(good + ipos), 1, "several blocks");
	cr_assert_eq(sb_kt_open(sb_io_default(), env.stash, name, &t, NULL, 0), 0);
	check_accepted(t);
	sb_kt_close(t);

	uint64_t seed = 0x6b74;
	for (int trial = 0; trial < 40; trial++) {
		/* two entries of the first block swapped (keys out of order) */
		uint32_t i = (uint32_t)(ut_rnd(&seed) % (cnt0 - 1)), j = i + 1 + (uint32_t)(ut_rnd(&seed) % (cnt0 - 1 - i));
		memcpy(b, good, n);
		uint8_t *a = b + (slots - good) + 4 * (size_t)i, *c = b + (slots - good) + 4 * (size_t)j, tmp[4];
		memcpy(tmp, a, 4);
		memcpy(a, c, 4);
		memcpy(c, tmp, 4);
		ut_kt_forge(b, n);
		cr_assert_eq(uf_write_file(path, b, n), 0, "%s", path);
		int rc = sb_kt_open(sb_io_default(), env.stash, name, &t, why, sizeof(why));
		cr_assert_eq(rc, SB_ECORRUPT, "entries %u and %u swapped: open %d", i, j, rc);
	}
	for (int d = -2; d <= 2; d++) {
		if (!d)
			continue;
		memcpy(b, good, n);
		sb_put64(b + n - SB_KT_FOOTER + 8, (uint64_t)((int64_t)NKEYS + d));
		ut_kt_forge(b, n);
		cr_assert_eq(uf_write_file(path, b, n), 0, "%s", path);
		cr_assert_eq(sb_kt_open(sb_io_default(), env.stash, name, &t, NULL, 0), SB_ECORRUPT,
			     "count %d off accepted", d);
	}
	int accepted = 0;
	for (int trial = 0; trial < 150; trial++) {
		memcpy(b, good, n);
		for (int m = 1 + (int)(ut_rnd(&seed) % 3); m > 0; m--)
			b[ut_rnd(&seed) % (ipos + 4 + 16 * (uint64_t)sb_get32(good + ipos))] ^=
				(uint8_t)(1 + ut_rnd(&seed) % 255);
		ut_kt_forge(b, n);
		cr_assert_eq(uf_write_file(path, b, n), 0, "%s", path);
		int rc = sb_kt_open(sb_io_default(), env.stash, name, &t, NULL, 0);
		if (rc == 0) {
			accepted++;
			check_accepted(t);
			sb_kt_close(t);
		} else {
			cr_assert(rc == SB_ECORRUPT, "open: %d", rc);
		}
	}
	cr_log_info("forged tables accepted (a value or a key changed in place, order kept): %d of 150", accepted);
	free(b);
	free(good);
}

typedef struct heard {
	char table[64];
	int n;
} heard;

static void hear(void *arg, const char *topic, const char *msg)
{
	heard *h = arg;

	(void)topic;
	if (strstr(msg, h->table))
		h->n++;
}

/* Topic t's key index opens at the first use of its keys (log_keys.c),
 * which is when its tables are checked and reported: used here (its
 * statistics) right after the store's open. */
static int open_keys_of_t(const sb_store_options *o, sb_store **s)
{
	sb_log *l;
	sb_log_key_stats ks;
	int rc = sb_store_open(env.store, o, s);

	if (rc || sb_store_get(*s, "t", &l))
		return rc;
	return sb_log_get_key_stats(l, &ks);
}

static int open_heard(int ro, heard *h, sb_store **s)
{
	sb_store_options o;

	sb_store_options_default(&o);
	o.read_only = ro;
	o.no_flusher = 1;
	o.report = hear;
	o.report_arg = h;
	return open_keys_of_t(&o, s);
}

/* Keyed records and a table of them; each trial damages one random byte
 * of the table: a read-only open reports it (and answers from the log),
 * and so does a read-write open (removing it: the last trial), whose keys
 * are replayed from the log; the sound table is not reported. */
Test(ktcheck, refused_table_reported_read_only)
{
	sb_store *s;
	sb_log *l;
	char k[32], tdir[4096], path[8192], name[64];
	heard h = {0};

	cr_assert_eq(ut_open(env.store, NULL, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (int i = 0; i < 300; i++) {
		sb_record_in r = {.key = k, .key_len = (uint32_t)sprintf(k, "k%d", i % 100), .value = k, .value_len = 4,
				  .timestamp_ns = 1000 + i};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	/* the only table: [0, 299], written here (each key's latest record) */
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	DIR *d = opendir(tdir);
	struct dirent *de;
	uint64_t fa, la;
	cr_assert(d);
	while ((de = readdir(d)))
		if (!sb_kt_name_parse(de->d_name, &fa, &la)) {
			snprintf(path, sizeof(path), "%s/%s", tdir, de->d_name);
			cr_assert_eq(unlink(path), 0);
		}
	closedir(d);
	sb_kt_writer *w;
	cr_assert_eq(sb_kt_writer_new(sb_io_default(), tdir, 0, 299, 100, 0, &w), 0);
	char keys[100][8];
	for (int i = 0; i < 100; i++)
		sprintf(keys[i], "k%d", i);
	qsort(keys, 100, sizeof(keys[0]), (int (*)(const void *, const void *))strcmp);
	for (int i = 0; i < 100; i++) {
		int ki = atoi(keys[i] + 1);
		sb_mt_val v = {.offset = (uint64_t)(200 + ki), .size = 4, .ts = 1200 + ki};
		cr_assert_eq(sb_kt_writer_add(w, keys[i], strlen(keys[i]), &v), 0);
	}
	cr_assert_eq(sb_kt_writer_finish(w), 0);
	sb_kt_name(name, 0, 299);
	snprintf(h.table, sizeof(h.table), "%s", name);
	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	size_t n;
	uint8_t *good, *b;
	cr_assert_eq(uf_read_all(path, &good, &n), 0, "%s", path);
	b = malloc(n);

	cr_assert_eq(open_heard(1, &h, &s), 0);
	cr_assert_eq(h.n, 0, "the sound table is reported");
	cr_assert_eq(sb_store_close(s), 0);
	uint64_t seed = 0x7265;
	for (int trial = 0; trial < 12; trial++) {
		memcpy(b, good, n);
		b[ut_rnd(&seed) % n] ^= (uint8_t)(1 + ut_rnd(&seed) % 255);
		cr_assert_eq(uf_write_file(path, b, n), 0, "%s", path);
		for (int ro = 1; ro >= (trial == 11 ? 0 : 1); ro--) {
			h.n = 0;
			cr_assert_eq(open_heard(ro, &h, &s), 0);
			cr_assert_geq(h.n, 1, "trial %d: a damaged table not reported (%s)", trial,
				      ro ? "read-only" : "read-write");
			cr_assert_eq(sb_store_get(s, "t", &l), 0);
			for (int i = 0; i < 100; i++) {
				uint8_t buf[8];
				size_t nr;
				sb_record_info info;
				int kl = sprintf(k, "k%d", i);
				cr_assert_eq(sb_log_get_key(l, k, (size_t)kl, buf, sizeof(buf), &nr, &info), 0);
				cr_assert_eq(info.offset, (uint64_t)(200 + i));
			}
			cr_assert_eq(sb_store_close(s), 0);
		}
	}
	h.n = 0;
	cr_assert_eq(open_heard(1, &h, &s), 0);
	cr_assert_eq(h.n, 0, "the table the read-write open removed is reported");
	cr_assert_eq(sb_store_close(s), 0);
	free(b);
	free(good);
}

/* The io of write_chunks: the default one, each pwrite noted. */
typedef struct rec_io {
	sb_io io;
	const sb_io *real;
	off_t off[64];
	size_t len[64];
	int n;
} rec_io;

static ssize_t rec_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	rec_io *r = ctx;

	if (r->n < 64) {
		r->off[r->n] = off;
		r->len[r->n] = n;
	}
	r->n++;
	return r->real->pwrite(r->real->ctx, fd, buf, n, off);
}

static int rec_open(void *ctx, const char *path, int flags, mode_t mode)
{
	rec_io *r = ctx;
	return r->real->open(r->real->ctx, path, flags, mode);
}

static int rec_fdatasync(void *ctx, int fd)
{
	rec_io *r = ctx;
	return r->real->fdatasync(r->real->ctx, fd);
}

static int rec_rename(void *ctx, const char *from, const char *to)
{
	rec_io *r = ctx;
	return r->real->rename(r->real->ctx, from, to);
}

static int rec_unlink(void *ctx, const char *path)
{
	rec_io *r = ctx;
	return r->real->unlink(r->real->ctx, path);
}

static int rec_close(void *ctx, int fd)
{
	rec_io *r = ctx;
	return r->real->close(r->real->ctx, fd);
}

/* A table of several MiB is written in whole 2 MiB pieces at multiples of
 * 2 MiB (the page cache can then hold it as huge folios, which readers map
 * with one TLB entry each), the last piece what is left; and it reads back
 * whole: every entry, across the pieces' seams. */
Test(ktcheck, big_table_written_in_aligned_chunks)
{
	const uint32_t N = 150000, MIB2 = 2u << 20;
	rec_io r = {.real = sb_io_default()};
	sb_kt_writer *w;
	sb_kt *t;
	uint8_t k[64];
	char name[48];

	r.io = *r.real;
	r.io.ctx = &r;
	r.io.pwrite = rec_pwrite;
	r.io.open = rec_open;
	r.io.fdatasync = rec_fdatasync;
	r.io.rename = rec_rename;
	r.io.unlink = rec_unlink;
	r.io.close = rec_close;
	cr_assert_eq(sb_kt_writer_new(&r.io, env.stash, 0, 99999, N, 0, &w), 0);
	for (uint32_t i = 0; i < N; i++) {
		sb_mt_val v = {.offset = i * 5, .ts = i, .size = i % 300, .pos = 32 + i};
		cr_assert_eq(sb_kt_writer_add(w, k, key_of(i, k), &v), 0);
	}
	cr_assert_eq(sb_kt_writer_finish(w), 0);
	cr_assert(r.n >= 3 && r.n <= 64, "%d writes", r.n);
	for (int i = 0; i < r.n; i++) {
		cr_assert_eq(r.off[i], (off_t)i * MIB2, "write %d at %lld", i, (long long)r.off[i]);
		cr_assert(i == r.n - 1 ? r.len[i] > 0 && r.len[i] <= MIB2 : r.len[i] == MIB2, "write %d: %zu bytes", i,
			  r.len[i]);
	}
	sb_kt_name(name, 0, 99999);
	cr_assert_eq(sb_kt_open(sb_io_default(), env.stash, name, &t, NULL, 0), 0);
	cr_assert_eq(sb_kt_file_bytes(t), (uint64_t)(r.n - 1) * MIB2 + r.len[r.n - 1]);
	check_accepted(t);
	for (uint32_t i = 0; i < N; i++) {
		sb_mt_val v;
		size_t kl = key_of(i, k);
		cr_assert_eq(sb_kt_get(t, k, kl, sb_kt_hash(k, kl), &v), 0, "key %u", i);
		cr_assert(v.offset == (uint64_t)i * 5 && v.ts == (int64_t)i && v.pos == 32 + i, "key %u", i);
	}
	sb_kt_close(t);
}

/* What a store open said about the key index: the messages, and how many
 * named `table` (kept for the assertion's text). */
typedef struct said {
	const char *table;
	int n, naming;
	char last[1024];
} said;

static void say_all(void *arg, const char *topic, const char *msg)
{
	said *s = arg;

	(void)topic;
	if (strncmp(msg, "key index", 9))
		return;
	s->n++;
	s->naming += strstr(msg, s->table) != NULL;
	snprintf(s->last, sizeof(s->last), "%s", msg);
}

static int open_said(int ro, const sb_log_config *cfg, said *h, sb_store **s)
{
	sb_store_options o;

	sb_store_options_default(&o);
	o.defaults = *cfg;
	o.read_only = ro;
	o.no_flusher = 1;
	o.report = say_all;
	o.report_arg = h;
	return open_keys_of_t(&o, s);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The topic's table names, oldest first (names sort by first offset). */
static size_t table_names(const char *dir, char **names, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t a, b;
	size_t n = 0;

	cr_assert(d);
	while ((de = readdir(d)))
		if (!sb_kt_name_parse(de->d_name, &a, &b) && n < cap)
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	return n;
}

/* A damaged table early in the chain: the tables after it are not used
 * either (their offsets are replayed from the log), and the open says so
 * in one message naming the damaged table and how many follow it, read-only
 * (streambus get and verify printed a warning for every later table, 40
 * lines for one get) and read-write alike. Every key is still answered. */
Test(ktcheck, a_dropped_chain_is_reported_once)
{
	sb_log_config cfg;
	sb_store *s;
	sb_log *l;
	char k[32], dir[4400], path[8800], *names[256], want[64];
	const int nkeys = 3000;
	said h = {0};

	ut_cfg(&cfg, 0, SB_SYNC_NEVER);
	cfg.key_memtable_bytes = 4096;
	cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (int i = 0; i < nkeys; i++) {
		sb_record_in r = {.key = k, .key_len = (uint32_t)sprintf(k, "k%05d", i), .value = k, .value_len = 6};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	ut_topic_path(&env, "t", NULL, dir, sizeof(dir));
	size_t nt = table_names(dir, names, 256);
	cr_assert_geq(nt, 6, "%zu tables: too few for a chain after the damaged one", nt);
	/* damage the second oldest: nt - 2 tables follow it */
	snprintf(path, sizeof(path), "%s/%s", dir, names[1]);
	uint8_t *b;
	size_t n;
	cr_assert_eq(uf_read_all(path, &b, &n), 0);
	b[n / 3] ^= 0x5a;
	cr_assert_eq(uf_write_file(path, b, n), 0);
	free(b);
	h.table = names[1];
	snprintf(want, sizeof(want), "the %zu tables after it", nt - 2);
	for (int ro = 1; ro >= 0; ro--) {
		h.n = h.naming = 0;
		cr_assert_eq(open_said(ro, &cfg, &h, &s), 0);
		cr_assert_eq(h.n, 1, "%s: %d messages about the key index, the last: %s", ro ? "read-only" : "read-write",
			     h.n, h.last);
		cr_assert_eq(h.naming, 1, "the damaged table not named: %s", h.last);
		cr_assert(strstr(h.last, want), "'%s' not said: %s", want, h.last);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
		for (int i = 0; i < nkeys; i++) {
			uint8_t buf[8];
			size_t nr;
			sb_record_info info;
			int kl = sprintf(k, "k%05d", i);
			cr_assert_eq(sb_log_get_key(l, k, (size_t)kl, buf, sizeof(buf), &nr, &info), 0, "%s", k);
			cr_assert_eq(info.offset, (uint64_t)i, "%s", k);
		}
		cr_assert_eq(sb_store_close(s), 0);
	}
	/* the read-write open removed them: nothing more to say */
	h.n = 0;
	cr_assert_eq(open_said(1, &cfg, &h, &s), 0);
	cr_assert_eq(h.n, 0, "after the read-write open: %s", h.last);
	cr_assert_eq(sb_store_close(s), 0);
	for (size_t i = 0; i < nt; i++)
		free(names[i]);
}

/* A read-only open with no_keys (streambus dump, and its --follow, which
 * opened again every 200 ms and read every table each time) does not
 * open the key index: a damaged table is not even read, and a get by key
 * says -ENOENT; the records are all there. Without it the same open reads
 * the tables (and says the damaged one is not used). */
Test(ktcheck, no_keys_leaves_the_key_index_closed)
{
	sb_log_config cfg;
	sb_store *s;
	sb_log *l;
	char k[32], dir[4400], path[8800], *names[256];
	said h = {0};

	ut_cfg(&cfg, 0, SB_SYNC_NEVER);
	cfg.key_memtable_bytes = 4096;
	cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
	l = ut_topic(s, "t");
	for (int i = 0; i < 1000; i++) {
		sb_record_in r = {.key = k, .key_len = (uint32_t)sprintf(k, "k%05d", i), .value = k, .value_len = 6};
		cr_assert_eq(sb_log_append(l, &r, 1, NULL), 0);
	}
	cr_assert_eq(sb_store_close(s), 0);
	ut_topic_path(&env, "t", NULL, dir, sizeof(dir));
	size_t nt = table_names(dir, names, 256);
	cr_assert_geq(nt, 1, "no key table written");
	snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
	cr_assert_eq(truncate(path, 10), 0);
	h.table = names[0];
	for (int no_keys = 1; no_keys >= 0; no_keys--) {
		sb_store_options o;
		sb_store_options_default(&o);
		o.defaults = cfg;
		o.read_only = 1;
		o.no_flusher = 1;
		o.no_keys = no_keys;
		o.report = say_all;
		o.report_arg = &h;
		h.n = h.naming = 0;
		cr_assert_eq(sb_store_open(env.store, &o, &s), 0);
		cr_assert_eq(sb_store_get(s, "t", &l), 0);
		uint8_t buf[8];
		size_t nr;
		cr_assert_eq(sb_log_get_key(l, "k00007", 6, buf, sizeof(buf), &nr, NULL), no_keys ? -ENOENT : 0);
		cr_assert_eq(h.naming, no_keys ? 0 : 1, "no_keys %d: %d messages naming the table: %s", no_keys,
			     h.naming, h.last);
		cr_assert_eq(sb_log_next(l), 1000);
		cr_assert_eq(sb_store_close(s), 0);
	}
	for (size_t i = 0; i < nt; i++)
		free(names[i]);
}

/* A generated key: a length from short to SB_KEY_MAX (keys bigger than a
 * block, SB_KT_BLOCK, make blocks of one entry), bytes from a small
 * alphabet, so that many keys share their first 8 bytes (the search's
 * prefix ties) and some are prefixes of others. *len out; caller frees. */
static uint8_t *gen_key(uint64_t *seed, size_t *len)
{
	uint64_t r = ut_rnd(seed) % 20;
	size_t n = r < 12 ? 1 + ut_rnd(seed) % 40 : r < 18 ? SB_KT_BLOCK / 2 + ut_rnd(seed) % (3 * SB_KT_BLOCK)
							: SB_KEY_MAX - ut_rnd(seed) % 3;
	uint8_t *k = malloc(n);
	cr_assert(k);
	for (size_t i = 0; i < n; i++)
		k[i] = (uint8_t)("ab\0\xff"[ut_rnd(seed) % 4]);
	*len = n;
	return k;
}

typedef struct gkey {
	uint8_t *k;
	size_t n;
} gkey;

static int gkey_cmp(const void *a, const void *b)
{
	const gkey *x = a, *y = b;
	return sb_kt_keycmp(x->k, x->n, y->k, y->n);
}

/* Keys of every length, from 1 byte to SB_KEY_MAX, among short ones, in
 * tables written and read back: every key found with its value, keys
 * absent from the table (each present key with a byte more) not found, a
 * scan from the start and a seek to each absent key in key order. */
Test(ktcheck, keys_of_every_length_round_trip)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		uint64_t s = seed;
		size_t n = 200 + ut_rnd(&s) % 400, m = 0;
		gkey *g = calloc(n, sizeof(*g));
		char name[48], dir[4200];
		sb_kt_writer *w;
		sb_kt *t;

		cr_assert(g);
		for (size_t i = 0; i < n; i++)
			g[i].k = gen_key(&s, &g[i].n);
		qsort(g, n, sizeof(*g), gkey_cmp);
		for (size_t i = 0; i < n; i++) { /* drop repeats */
			if (m && !gkey_cmp(&g[m - 1], &g[i]))
				free(g[i].k);
			else
				g[m++] = g[i];
		}
		snprintf(dir, sizeof(dir), "%s/t%llu", env.stash, (unsigned long long)seed);
		cr_assert_eq(mkdir(dir, 0755), 0);
		cr_assert_eq(sb_kt_writer_new(sb_io_default(), dir, 0, 9999, m, 0, &w), 0);
		for (size_t i = 0; i < m; i++) {
			sb_mt_val v = {.offset = i, .ts = (int64_t)g[i].n, .size = (uint32_t)i * 3, .pos = 32};
			cr_assert_eq(sb_kt_writer_add(w, g[i].k, g[i].n, &v), 0, "key %zu (%zu bytes)", i, g[i].n);
		}
		cr_assert_eq(sb_kt_writer_finish(w), 0);
		sb_kt_name(name, 0, 9999);
		cr_assert_eq(sb_kt_open(sb_io_default(), dir, name, &t, NULL, 0), 0, "seed %llu",
			     (unsigned long long)seed);
		check_accepted(t);
		sb_kt_iter it;
		size_t i = 0, kl;
		for (sb_kt_seek(t, NULL, 0, &it); sb_kt_iter_valid(&it); sb_kt_iter_next(&it), i++) {
			const uint8_t *k = sb_kt_iter_key(&it, &kl);
			cr_assert(i < m && kl == g[i].n && !memcmp(k, g[i].k, kl), "seed %llu: entry %zu",
				  (unsigned long long)seed, i);
		}
		cr_assert_eq(i, m, "seed %llu: %zu entries scanned of %zu", (unsigned long long)seed, i, m);
		uint8_t *x = malloc(SB_KEY_MAX + 1);
		cr_assert(x);
		for (i = 0; i < m; i++) {
			sb_mt_val v;
			uint64_t h = sb_kt_hash(g[i].k, g[i].n);
			cr_assert_eq(sb_kt_get(t, g[i].k, g[i].n, h, &v), 0, "seed %llu: key %zu (%zu bytes)",
				     (unsigned long long)seed, i, g[i].n);
			cr_assert(v.offset == i && v.ts == (int64_t)g[i].n && v.size == i * 3, "key %zu: its value", i);
			if (g[i].n == SB_KEY_MAX)
				continue;
			/* k + "\x01": absent (no key has that byte), sorts
			 * after k and before every key k is a prefix of */
			memcpy(x, g[i].k, g[i].n);
			x[g[i].n] = 1;
			h = sb_kt_hash(x, g[i].n + 1);
			cr_assert_eq(sb_kt_get(t, x, g[i].n + 1, h, &v), -ENOENT, "key %zu + 1 byte", i);
			size_t j = i + 1; /* the model's first key >= x (k + "\0..." sort before it) */
			while (j < m && sb_kt_keycmp(g[j].k, g[j].n, x, g[i].n + 1) < 0)
				j++;
			sb_kt_seek(t, x, g[i].n + 1, &it);
			if (j == m) {
				cr_assert(!sb_kt_iter_valid(&it) && !it.err, "a seek past the last key");
				continue;
			}
			cr_assert(sb_kt_iter_valid(&it), "seed %llu: a seek after key %zu", (unsigned long long)seed, i);
			const uint8_t *k = sb_kt_iter_key(&it, &kl);
			cr_assert(kl == g[j].n && !memcmp(k, g[j].k, kl), "seed %llu: a seek after key %zu finds key %zu",
				  (unsigned long long)seed, i, j);
		}
		free(x);
		sb_kt_close(t);
		for (i = 0; i < m; i++)
			free(g[i].k);
		free(g);
	}
}
