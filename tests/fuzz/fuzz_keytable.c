/*
 * fuzz_keytable - the key table loader and reader (store/keytable.c) and
 * the key index over it (keyidx*.c, log_keys.c, the position hint of
 * log_read.c), against a valid log of keyed records (fz_keyed_sample of
 * util.c) and a fuzzed table file beside it.
 *
 * Input: byte 0 mode, then the table file.
 *   bit 0     recompute the table's CRCs (blocks, index, Bloom filter,
 *             footer), so that what lies behind them is explored ("forged")
 *   bits 1-2  the table is named for the log's records [0, n): 0 all of
 *             them, 1 the first half, 2 the first quarter, 3 the first
 *             of SB_KX_MERGE_WIDTH parts with valid level-0 tables of the
 *             others after it (a merge of all of them)
 *   bit 3     open the store read-write (a damaged table dropped), close
 *             it (its maintenance merges), open it again read-only
 *
 * Properties: no crash, sanitizer report or hang. A table that sb_kt_open
 * accepts (forged or not) has its blocks inside the file, keys strictly
 * increasing, each found by a lookup (unless a forged Bloom filter lacks
 * it), as many entries as its footer says, and iterates without error. The
 * store (read-only and read-write) answers a get by key only with a
 * record of the log that carries that key (by offset, and through the
 * position hint), lists keys in strict order, and `verify`'s checks
 * (sb_verify_topic, sb_log_verify_keys) run. Unless the CRCs were forged:
 * an accepted table holds exactly each key's latest record of its range;
 * every get answers that key's latest record in the whole log (-ENOENT for
 * a tombstone or an absent key), the listing is the log's live keys,
 * verify finds no wrong entry and no damage, and a table the loader
 * refuses is reported through the store's report hook.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "keyidx.h"
#include "keytable.h"
#include "sb_store.h"
#include "util.h"
#include "util_keytable.h"

#define QUARTER (FZ_KEYED_RECORDS / 4)
#define PART (FZ_KEYED_RECORDS / SB_KX_MERGE_WIDTH)
_Static_assert(FZ_KEYED_RECORDS % SB_KX_MERGE_WIDTH == 0, "the sample splits into a merge's tables");

typedef struct run {
	const fz_keyed *s;
	int forged;
	unsigned cover;      /* records the table is named for */
	char table[64];      /* its file name */
	int heard;           /* the report hook named the table */
} run;

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (al > bl) - (al < bl);
}

static int key_index(const fz_keyed *s, const uint8_t *k, size_t kl)
{
	for (int i = 0; i < FZ_KEYED_KEYS; i++)
		if (s->klen[i] == kl && !memcmp(s->keys[i], k, kl))
			return i;
	return -1;
}

/* The table as the loader accepted it, against its file. */
static void check_table(const run *r, const sb_kt *t, const uint8_t *file, size_t n)
{
	const fz_keyed *s = r->s;
	const uint8_t *f = file + n - SB_KT_FOOTER, *prev = NULL;
	uint64_t ipos = sb_get64(f + 32), nb = sb_get32(file + ipos), count = 0;
	size_t pl = 0, kl;
	int seen[FZ_KEYED_KEYS] = {0};
	sb_kt_iter it;
	sb_mt_val v, g;

	FZ_CHECK(sb_kt_first(t) == FZ_SAMPLE_BASE && sb_kt_last(t) == FZ_SAMPLE_BASE + r->cover - 1,
		 "accepted a table of another range");
	for (uint64_t i = 0; i < nb; i++) {
		const uint8_t *e = file + ipos + 4 + i * 16;
		uint64_t p = sb_get64(e), l = sb_get32(e + 8);
		FZ_CHECK(p + l <= ipos, "block %llu [%llu, +%llu) past the index at %llu", (unsigned long long)i,
			 (unsigned long long)p, (unsigned long long)l, (unsigned long long)ipos);
	}
	for (sb_kt_seek(t, NULL, 0, &it); sb_kt_iter_valid(&it); sb_kt_iter_next(&it)) {
		const uint8_t *k = sb_kt_iter_key(&it, &kl);
		sb_kt_iter_val(&it, &v);
		if (prev)
			FZ_CHECK(kcmp(prev, pl, k, kl) < 0, "entry %llu: keys not strictly increasing",
				 (unsigned long long)count);
		/* (a forged Bloom filter may lack a key: a miss, never another's entry) */
		int grc = sb_kt_get(t, k, kl, sb_kt_hash(k, kl), &g);
		FZ_CHECK(grc == 0 || (grc == -ENOENT && r->forged && !sb_kt_may_contain(t, sb_kt_hash(k, kl))),
			 "entry %llu: a lookup of its key fails: %d", (unsigned long long)count, grc);
		if (grc)
			g = v;
		FZ_CHECK(g.offset == v.offset && g.ts == v.ts && g.size == v.size && g.flags == v.flags &&
			 g.pos == v.pos, "entry %llu: a lookup of its key finds another", (unsigned long long)count);
		if (!r->forged) {
			int ki = key_index(s, k, kl);
			FZ_CHECK(ki >= 0, "a key the log does not have");
			int lr = fz_keyed_latest(s, ki, r->cover);
			FZ_CHECK(lr >= 0 && !seen[ki] && v.offset == FZ_SAMPLE_BASE + (unsigned)lr &&
				 v.ts == s->ts[lr] && v.size == s->vlen[lr] && v.pos == s->pos[lr] &&
				 !!(v.flags & SB_MT_TOMBSTONE) == !!s->flags[lr],
				 "key %d: the entry is not its latest record", ki);
			seen[ki] = 1;
		}
		prev = k;
		pl = kl;
		count++;
	}
	FZ_CHECK(!it.err, "iterating an accepted table fails after %llu entries", (unsigned long long)count);
	if (!r->forged) {
		for (int ki = 0; ki < FZ_KEYED_KEYS; ki++)
			FZ_CHECK(seen[ki] == (fz_keyed_latest(s, ki, r->cover) >= 0), "key %d missing", ki);
	}
	FZ_CHECK(count == sb_kt_count(t), "count %llu, the footer says %llu", (unsigned long long)count,
		 (unsigned long long)sb_kt_count(t));
}

/* A record of the log carrying key k whose value is buf[0, n), else -1. */
static int served_record(const fz_keyed *s, const uint8_t *k, size_t kl, const uint8_t *buf, size_t n)
{
	for (int i = 0; i < FZ_KEYED_RECORDS; i++) {
		int ki = s->key[i];
		if (ki >= 0 && s->klen[ki] == kl && !memcmp(s->keys[ki], k, kl) && !s->flags[i] &&
		    s->vlen[i] == n && !memcmp(s->val[i], buf, n))
			return i;
	}
	return -1;
}

/* Get key k both ways (the hint used without info, by offset with it). */
static void check_get(const run *r, sb_log *l, const uint8_t *k, size_t kl)
{
	static uint8_t buf[256];
	const fz_keyed *s = r->s;
	sb_record_info info;
	size_t n = 0;
	int ki = key_index(s, k, kl), lr = ki >= 0 ? fz_keyed_latest(s, ki, FZ_KEYED_RECORDS) : -1;

	for (int way = 0; way < 2; way++) {
		memset(buf, 0, sizeof buf);
		int rc = sb_log_get_key(l, k, kl, buf, sizeof buf, &n, way ? &info : NULL);
		FZ_CHECK(rc == 0 || rc == -ENOENT || rc == SB_ECORRUPT, "get: %d", rc);
		if (rc == 0) {
			int i = served_record(s, k, kl, buf, n);
			FZ_CHECK(i >= 0, "get (%s) of key %d served a record without that key",
				 way ? "by offset" : "hinted", ki);
			FZ_CHECK(!way || (info.offset == FZ_SAMPLE_BASE + (unsigned)i && info.key_len == kl),
				 "get by offset of key %d: info names offset %llu", ki,
				 (unsigned long long)info.offset);
		}
		if (!r->forged) {
			if (lr < 0 || s->flags[lr])
				FZ_CHECK(rc == -ENOENT, "get (%s) of key %d (none or deleted): %d",
					 way ? "by offset" : "hinted", ki, rc);
			else
				FZ_CHECK(rc == 0 && served_record(s, k, kl, buf, n) == lr,
					 "get (%s) of key %d: %d, not its latest record %d", way ? "by offset" : "hinted",
					 ki, rc, lr);
		}
	}
}

typedef struct listing {
	const run *r;
	sb_log *l;
	uint8_t *prev; /* SB_KEY_MAX bytes */
	size_t pl, n;
	int first, seen[FZ_KEYED_KEYS];
	const uint8_t *from;
	size_t from_len;
} listing;

static int list_one(void *arg, const void *key, size_t kl, const sb_record_info *info)
{
	listing *c = arg;
	const fz_keyed *s = c->r->s;

	FZ_CHECK(kl && kl <= SB_KEY_MAX, "listed a key of %zu bytes", kl);
	FZ_CHECK(c->first || kcmp(c->prev, c->pl, key, kl) < 0, "listing not in strict key order at %zu", c->n);
	FZ_CHECK(kcmp(key, kl, c->from, c->from_len) >= 0, "listed a key before the one asked from");
	if (!c->r->forged) {
		int ki = key_index(s, key, kl), lr = ki >= 0 ? fz_keyed_latest(s, ki, FZ_KEYED_RECORDS) : -1;
		FZ_CHECK(lr >= 0 && !s->flags[lr] && info->offset == FZ_SAMPLE_BASE + (unsigned)lr &&
			 info->value_len == s->vlen[lr] && info->timestamp_ns == s->ts[lr],
			 "listed key %d at offset %llu, not its latest live record", ki,
			 (unsigned long long)info->offset);
		c->seen[ki] = 1;
	}
	check_get(c->r, c->l, key, kl);
	memcpy(c->prev, key, kl);
	c->pl = kl;
	c->first = 0;
	return ++c->n >= 64;
}

static void check_list(const run *r, sb_log *l, const uint8_t *from, size_t from_len)
{
	static uint8_t prev[SB_KEY_MAX];
	listing c = {.r = r, .l = l, .prev = prev, .first = 1, .from = from, .from_len = from_len};
	const fz_keyed *s = r->s;
	int rc = sb_log_list_keys(l, from, from_len, list_one, &c);

	FZ_CHECK(rc == 0 || rc == 1 || rc == SB_ECORRUPT, "list: %d", rc);
	if (r->forged)
		return;
	FZ_CHECK(rc == 0, "list: %d", rc);
	for (int ki = 0; ki < FZ_KEYED_KEYS; ki++) {
		int lr = fz_keyed_latest(s, ki, FZ_KEYED_RECORDS);
		int want = lr >= 0 && !s->flags[lr] && kcmp(s->keys[ki], s->klen[ki], from, from_len) >= 0;
		FZ_CHECK(c.seen[ki] == want, "key %d %s the listing", ki, want ? "missing from" : "in");
	}
}

static void check_log(const run *r, sb_log *l)
{
	static const struct { const char *k; size_t n; } absent[] = {
		{"aa", 2}, {"abcd", 4}, {"key-0", 5}, {"c", 1}, {"\x00\x00", 2}, {"\xff", 1}, {"LLLL", 4},
	};
	const fz_keyed *s = r->s;
	uint64_t checked = 0, wrong = 0;

	for (int ki = 0; ki < FZ_KEYED_KEYS; ki++)
		check_get(r, l, s->keys[ki], s->klen[ki]);
	for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
		check_get(r, l, (const uint8_t *)absent[i].k, absent[i].n);
	check_list(r, l, NULL, 0);
	check_list(r, l, (const uint8_t *)"ab", 2);
	int rc = sb_log_verify_keys(l, &checked, &wrong, NULL, NULL);
	FZ_CHECK(rc == 0 || rc == SB_ECORRUPT, "verify keys: %d", rc);
	if (!r->forged)
		FZ_CHECK(rc == 0 && wrong == 0, "verify keys: %d, %llu of %llu wrong", rc, (unsigned long long)wrong,
			 (unsigned long long)checked);
}

static void hear(void *arg, const char *topic, const char *msg)
{
	run *r = arg;

	(void)topic;
	if (strstr(msg, r->table))
		r->heard = 1;
}

static void check_store(run *r, const char *dir, int read_only)
{
	sb_store_options opt;
	sb_store *st;
	sb_log *l;

	sb_store_options_default(&opt);
	opt.no_flusher = 1;
	opt.read_only = read_only;
	opt.report = hear;
	opt.report_arg = r;
	FZ_CHECK(sb_store_open(dir, &opt, &st) == 0, "the store does not open");
	FZ_CHECK(sb_store_get(st, "t", &l) == 0, "the topic does not open");
	check_log(r, l);
	sb_store_close(st); /* read-write, no flusher: its close merges a level's SB_KX_MERGE_WIDTH tables */
}

static void problem(void *arg, const sb_verify_problem *p)
{
	if (p->kind != SB_VERIFY_INDEX)
		snprintf(arg, 512, "%s: %s", p->path, p->msg);
}

static void verify_topic(const run *r, const char *topic)
{
	sb_verify_result res;
	char last[512] = "";

	FZ_CHECK(sb_verify_topic(topic, problem, NULL, last, &res) == 0, "verify does not run");
	/* (the segment has no index file: a note of kind SB_VERIFY_INDEX) */
	if (!r->forged)
		FZ_CHECK(!res.problems[SB_VERIFY_RECORD] && !res.problems[SB_VERIFY_ORDER] &&
			 !res.problems[SB_VERIFY_FILE] && res.records == FZ_KEYED_RECORDS,
			 "verify finds damage in a sound log: %s", last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run r = {.s = fz_keyed_sample()};
	fz_in in = {data, size};
	int mode = fz_u8(&in), rc;
	size_t n;
	const uint8_t *tb = fz_bytes(&in, in.n, &n);
	uint8_t *copy = malloc(n + 1);
	char dir[PATH_MAX], topic[PATH_MAX + 8], path[PATH_MAX + 80], name[64], why[256];
	uint8_t meta[SB_META_SIZE];
	sb_kt *t;

	memcpy(copy, tb, n);
	r.forged = mode & 1;
	if (r.forged)
		ut_kt_forge(copy, n);
	static const unsigned cover[4] = {FZ_KEYED_RECORDS, 2 * QUARTER, QUARTER, PART};
	r.cover = cover[mode >> 1 & 3];
	sb_kt_name(r.table, FZ_SAMPLE_BASE, FZ_SAMPLE_BASE + r.cover - 1);
	snprintf(dir, sizeof dir, "%s/store", fz_scratch());
	snprintf(topic, sizeof topic, "%s/t", dir);
	fz_rmtree(dir);
	FZ_CHECK(mkdir(dir, 0755) == 0 && mkdir(topic, 0755) == 0, "mkdir");
	sb_seg_name(name, FZ_SAMPLE_BASE, SB_SEG_SUFFIX);
	snprintf(path, sizeof path, "%s/%s", topic, name);
	fz_write(path, r.s->seg, r.s->len);
	sb_meta_encode(meta, FZ_SAMPLE_BASE);
	snprintf(path, sizeof path, "%s/%s", topic, SB_META_NAME);
	fz_write(path, meta, sizeof meta);
	for (unsigned q = 1; (mode >> 1 & 3) == 3 && q < SB_KX_MERGE_WIDTH; q++) {
		size_t qn;
		uint8_t *qt = fz_keyed_table(q * PART, PART, &qn);
		sb_kt_name(name, FZ_SAMPLE_BASE + q * PART, FZ_SAMPLE_BASE + (q + 1) * PART - 1);
		snprintf(path, sizeof path, "%s/%s", topic, name);
		fz_write(path, qt, qn);
		free(qt);
	}
	snprintf(path, sizeof path, "%s/%s", topic, r.table);
	fz_write(path, copy, n);

	rc = sb_kt_open(sb_io_default(), topic, r.table, &t, why, sizeof why);
	FZ_CHECK(rc == 0 || rc == SB_ECORRUPT || rc == SB_EVERSION, "sb_kt_open: %d", rc);
	if (rc == 0) {
		check_table(&r, t, copy, n);
		sb_kt_close(t);
	}
	check_store(&r, dir, !(mode & 8));
	if (!r.forged && rc)
		FZ_CHECK(r.heard, "a refused table (%s) is not reported", why);
	if (mode & 8)
		check_store(&r, dir, 1);
	verify_topic(&r, topic);
	fz_rmtree(dir);
	free(copy);
	return 0;
}
