/*
 * keyidx.c - a topic's key index: MemTables, key tables, flush, merge,
 * recovery of the table set (keyidx.h).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "keyidx.h"
#include "keytable.h"

#define MERGE_WIDTH 4

struct sb_kx {
	sb_kx_params p;
	char *dir;
	char topic[256];
	pthread_rwlock_t lock;
	sb_mt *active;            /* [appender; swapped under lock] */
	sb_mt *imm;               /* [lock] written out by maintain */
	uint64_t imm_from, imm_to;/* [lock] its offsets */
	uint64_t mt_from;         /* [appender] first offset of active's range */
	uint64_t mt_bytes;        /* [appender] record bytes appended since */
	uint64_t mt_end;          /* [appender] offset after the last noted record */
	sb_kt **t;                /* [lock] newest first; tile [.., covered) */
	size_t nt, tcap;          /* [lock] */
	uint64_t covered;         /* [lock] first offset no table covers */
	pthread_mutex_t maint_mu; /* one flush or merge at a time */
};

static void report(sb_kx *x, const char *fmt, const char *a, const char *b)
{
	char msg[512];

	if (!x->p.report)
		return;
	snprintf(msg, sizeof(msg), fmt, a, b);
	x->p.report(x->p.report_arg, x->topic, msg);
}

/* ---- merging sources (MemTables and tables) --------------------------------- */

typedef struct src {
	int is_mt;
	sb_mt_iter mi;
	sb_kt_iter ki;
} src;

static int src_valid(const src *s)
{
	return s->is_mt ? sb_mt_iter_valid(&s->mi) : sb_kt_iter_valid(&s->ki);
}
static const uint8_t *src_key(const src *s, size_t *kl)
{
	return s->is_mt ? sb_mt_iter_key(&s->mi, kl) : sb_kt_iter_key(&s->ki, kl);
}
static void src_val(const src *s, sb_mt_val *v)
{
	if (s->is_mt)
		sb_mt_iter_val(&s->mi, v);
	else
		sb_kt_iter_val(&s->ki, v);
}
static void src_next(src *s)
{
	if (s->is_mt)
		sb_mt_iter_next(&s->mi);
	else
		sb_kt_iter_next(&s->ki);
}
static int src_err(const src *s)
{
	return s->is_mt ? 0 : s->ki.err;
}

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (al > bl) - (al < bl);
}

/*
 * Merge sources s[0..n) (newest first) in key order, the newest entry of a
 * key winning: fn gets each. 0, fn's nonzero value, or SB_ECORRUPT.
 */
static int merge_run(src *s, size_t n, sb_kx_scan_fn fn, void *arg)
{
	for (;;) {
		size_t best = n, bl = 0, kl;
		const uint8_t *bk = NULL;
		for (size_t i = 0; i < n; i++) {
			if (src_err(&s[i]))
				return SB_ECORRUPT;
			if (!src_valid(&s[i]))
				continue;
			const uint8_t *k = src_key(&s[i], &kl);
			if (best == n || kcmp(k, kl, bk, bl) < 0) {
				best = i;
				bk = k;
				bl = kl;
			}
		}
		if (best == n)
			return 0;
		sb_mt_val v;
		uint8_t kbuf[256], *kc = kbuf;
		src_val(&s[best], &v);
		int rc = fn(arg, bk, bl, &v);
		if (rc)
			return rc;
		/* Advance every source at this key (copy it: advancing may
		 * move the memory under bk for no source, but be plain). */
		if (bl > sizeof(kbuf) && !(kc = malloc(bl)))
			return -ENOMEM;
		memcpy(kc, bk, bl);
		for (size_t i = 0; i < n; i++) {
			if (src_valid(&s[i])) {
				const uint8_t *k = src_key(&s[i], &kl);
				if (kcmp(k, kl, kc, bl) == 0)
					src_next(&s[i]);
			}
		}
		if (kc != kbuf)
			free(kc);
	}
}

/* ---- the table array -------------------------------------------------------- */

static int tables_reserve(sb_kx *x, size_t n)
{
	if (n <= x->tcap)
		return 0;
	size_t c = x->tcap ? x->tcap * 2 : 16;
	while (c < n)
		c *= 2;
	sb_kt **a = realloc(x->t, c * sizeof(*a));
	if (!a)
		return -ENOMEM;
	x->t = a;
	x->tcap = c;
	return 0;
}

typedef struct found {
	char name[256];
	uint64_t first, last;
} found;

static int found_cmp(const void *a, const void *b)
{
	const found *x = a, *y = b;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->last > y->last ? -1 : x->last < y->last;
}

static void drop_file(sb_kx *x, const char *name, const char *why)
{
	char path[PATH_MAX];

	if (x->p.read_only || sb_path(path, x->dir, name))
		return;
	if (x->p.io->unlink(x->p.io->ctx, path) == 0)
		report(x, "key index: removed %s (%s); its offsets are replayed from the log", name, why);
}

/* The table files of dir, sorted. */
static int list_tables(sb_kx *x, found **out, size_t *n)
{
	found *f = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(x->dir);

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint64_t a, b;
		if (sb_kt_name_parse(de->d_name, &a, &b))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			found *nf = realloc(f, cap * sizeof(*nf));
			if (!nf) {
				free(f);
				closedir(d);
				return -ENOMEM;
			}
			f = nf;
		}
		snprintf(f[cnt].name, sizeof(f[cnt].name), "%s", de->d_name);
		f[cnt].first = a;
		f[cnt].last = b;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(f, cnt, sizeof(*f), found_cmp);
	*out = f;
	*n = cnt;
	return 0;
}

/* Keep the chain of tables that tiles [<= start, ...) contiguously within
 * [.., next); drop subsumed ones (merge leftovers) and everything from a
 * gap, a damaged table or one past the log's end on. */
static int load_tables(sb_kx *x, uint64_t start, uint64_t next)
{
	found *f = NULL;
	size_t n = 0;
	int rc = list_tables(x, &f, &n), broken = 0;

	if (rc)
		return rc;
	x->covered = start;
	for (size_t i = 0; i < n; i++) {
		char why[256] = "";
		sb_kt *t = NULL;
		if (x->nt && f[i].last <= sb_kt_last(x->t[0])) {
			drop_file(x, f[i].name, "covered by a merged table");
			continue;
		}
		if (!broken) {
			if (x->nt ? f[i].first != x->covered : f[i].first > start)
				broken = 1, snprintf(why, sizeof(why), "a gap before it");
			else if (f[i].last >= next)
				broken = 1, snprintf(why, sizeof(why), "it covers offsets the log does not have");
			else if ((rc = sb_kt_open(x->p.io, x->dir, f[i].name, &t, why, sizeof(why)))) {
				if (rc == -ENOMEM)
					goto out_free;
				broken = 1;
				if (!why[0])
					snprintf(why, sizeof(why), "%s", sb_strerror(rc));
				rc = 0;
			}
		}
		if (broken) {
			drop_file(x, f[i].name, why[0] ? why : "after a dropped table");
			continue;
		}
		if ((rc = tables_reserve(x, x->nt + 1))) {
			sb_kt_close(t);
			goto out_free;
		}
		memmove(x->t + 1, x->t, x->nt * sizeof(*x->t));
		x->t[0] = t;
		x->nt++;
		x->covered = f[i].last + 1;
	}
	if (!x->nt)
		x->covered = start;
out_free:
	free(f);
	return rc;
}

int sb_kx_open(const sb_kx_params *p, uint64_t start, uint64_t next, sb_kx **out)
{
	sb_kx *x = calloc(1, sizeof(*x));
	int rc = -ENOMEM;

	if (!x)
		return -ENOMEM;
	x->p = *p;
	snprintf(x->topic, sizeof(x->topic), "%s", p->topic ? p->topic : "");
	if (!(x->dir = strdup(p->dir)))
		goto out_free;
	x->p.dir = x->dir;
	x->p.topic = x->topic;
	if ((rc = sb_mt_new(&x->active)))
		goto out_free;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&x->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&x->maint_mu, NULL);
	if ((rc = load_tables(x, start, next))) {
		sb_kx_close(x, 0);
		return rc;
	}
	x->mt_from = x->mt_end = x->covered;
	*out = x;
	return 0;
out_free:
	free(x->dir);
	free(x);
	return rc;
}

void sb_kx_set_background(sb_kx *x, int on)
{
	x->p.background = on;
}

uint64_t sb_kx_replay_from(const sb_kx *x)
{
	return x->mt_from;
}

int sb_kx_put(sb_kx *x, const void *key, size_t klen, const sb_mt_val *v)
{
	return sb_mt_put(x->active, key, klen, v);
}

int sb_kx_get(sb_kx *x, const void *key, size_t klen, sb_mt_val *v)
{
	int rc;

	pthread_rwlock_rdlock(&x->lock);
	rc = sb_mt_get(x->active, key, klen, v);
	if (rc && x->imm)
		rc = sb_mt_get(x->imm, key, klen, v);
	if (rc && x->nt) {
		uint64_t h = sb_kt_hash(key, klen);
		for (size_t i = 0; rc == -ENOENT && i < x->nt; i++)
			rc = sb_kt_get(x->t[i], key, klen, h, v);
	}
	pthread_rwlock_unlock(&x->lock);
	return rc;
}

/* ---- writing tables ----------------------------------------------------------- */

static int add_entry(void *arg, const uint8_t *k, size_t kl, const sb_mt_val *v)
{
	return sb_kt_writer_add(arg, k, kl, v);
}

static int add_live(void *arg, const uint8_t *k, size_t kl, const sb_mt_val *v)
{
	if (v->flags & SB_MT_TOMBSTONE)
		return 0;
	return sb_kt_writer_add(arg, k, kl, v);
}

/* Write sources s[0..n) as the table [first, last] and open it. */
static int write_table(sb_kx *x, src *s, size_t n, uint64_t first, uint64_t last, uint64_t max, uint32_t level,
		       int drop_tombstones, sb_kt **out)
{
	sb_kt_writer *w;
	char name[48];
	int rc = sb_kt_writer_new(x->p.io, x->dir, first, last, max, level, &w);

	if (rc)
		return rc;
	rc = merge_run(s, n, drop_tombstones ? add_live : add_entry, w);
	if (rc) {
		sb_kt_writer_abort(w);
		return rc;
	}
	if ((rc = sb_kt_writer_finish(w)))
		return rc;
	sb_kt_name(name, first, last);
	return sb_kt_open(x->p.io, x->dir, name, out, NULL, 0);
}

/* Write the immutable MemTable as the newest table. [maint_mu] */
static int flush_imm(sb_kx *x)
{
	sb_mt *m;
	uint64_t from, to;
	sb_kt *t;
	src s = {.is_mt = 1};
	int rc;

	pthread_rwlock_rdlock(&x->lock);
	m = x->imm;
	from = x->imm_from;
	to = x->imm_to;
	pthread_rwlock_unlock(&x->lock);
	if (!m)
		return 0;
	sb_mt_seek(m, NULL, 0, &s.mi);
	rc = write_table(x, &s, 1, from, to, sb_mt_count(m), 0, 0, &t);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&x->lock);
	rc = tables_reserve(x, x->nt + 1);
	if (!rc) {
		memmove(x->t + 1, x->t, x->nt * sizeof(*x->t));
		x->t[0] = t;
		x->nt++;
		x->imm = NULL;
		x->covered = to + 1;
	}
	pthread_rwlock_unlock(&x->lock);
	if (rc) {
		sb_kt_close(t);
		return rc;
	}
	sb_mt_free(m);
	return 0;
}

/* Merge the k newest tables into one. [maint_mu] */
static int merge_newest(sb_kx *x, size_t k)
{
	src s[MERGE_WIDTH * 2];
	sb_kt *in[MERGE_WIDTH * 2], *out;
	uint64_t max = 0;
	int rc, all;

	pthread_rwlock_rdlock(&x->lock);
	memcpy(in, x->t, k * sizeof(*in));
	all = k == x->nt;
	pthread_rwlock_unlock(&x->lock);
	for (size_t i = 0; i < k; i++) {
		s[i].is_mt = 0;
		sb_kt_seek(in[i], NULL, 0, &s[i].ki);
		max += sb_kt_count(in[i]);
	}
	/* Tables are only removed here, under maint_mu: `in` stays valid. */
	rc = write_table(x, s, k, sb_kt_first(in[k - 1]), sb_kt_last(in[0]), max, sb_kt_level(in[0]) + 1, all, &out);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&x->lock);
	x->t[0] = out;
	memmove(x->t + 1, x->t + k, (x->nt - k) * sizeof(*x->t));
	x->nt -= k - 1;
	pthread_rwlock_unlock(&x->lock);
	/* No reader is inside the inputs now (they held the lock shared). */
	for (size_t i = 0; i < k; i++) {
		if (x->p.read_only)
			sb_kt_close(in[i]);
		else
			sb_kt_remove(x->p.io, in[i]);
	}
	return sb_fsync_dir(x->p.io, x->dir);
}

static int merge_due(sb_kx *x)
{
	size_t k = 0;

	pthread_rwlock_rdlock(&x->lock);
	if (x->nt >= MERGE_WIDTH) {
		uint32_t lv = sb_kt_level(x->t[0]);
		k = 1;
		while (k < x->nt && k < MERGE_WIDTH && sb_kt_level(x->t[k]) == lv)
			k++;
		if (k < MERGE_WIDTH)
			k = 0;
	}
	pthread_rwlock_unlock(&x->lock);
	return (int)k;
}

int sb_kx_maintain(sb_kx *x)
{
	int rc, k;

	if (x->p.read_only)
		return 0;
	pthread_mutex_lock(&x->maint_mu);
	rc = flush_imm(x);
	while (!rc && (k = merge_due(x)))
		rc = merge_newest(x, (size_t)k);
	pthread_mutex_unlock(&x->maint_mu);
	if (rc)
		report(x, "key index: writing a table failed: %s%s", sb_strerror(rc), "");
	return rc;
}

/* Make the active MemTable immutable for offsets up to next - 1. [appender] */
static int swap(sb_kx *x, uint64_t next)
{
	sb_mt *m;
	int rc = sb_mt_new(&m);

	if (rc)
		return rc;
	pthread_rwlock_wrlock(&x->lock);
	x->imm = x->active;
	x->imm_from = x->mt_from;
	x->imm_to = next - 1;
	x->active = m;
	pthread_rwlock_unlock(&x->lock);
	x->mt_from = next;
	x->mt_bytes = 0;
	return 0;
}

int sb_kx_note_end(sb_kx *x, uint64_t next, uint64_t bytes)
{
	int pending;

	x->mt_bytes += bytes;
	x->mt_end = next;
	if (x->p.read_only ||
	    (sb_mt_bytes(x->active) < x->p.memtable_bytes && x->mt_bytes < SB_KX_REPLAY_BYTES))
		return 0;
	pthread_rwlock_rdlock(&x->lock);
	pending = x->imm != NULL;
	pthread_rwlock_unlock(&x->lock);
	if (pending) {
		/* The flusher is behind: wait for it, or give up on it and let
		 * the MemTable grow (a failed write is retried later). */
		if (sb_mt_bytes(x->active) < 2 * x->p.memtable_bytes &&
		    x->mt_bytes < 2 * (uint64_t)SB_KX_REPLAY_BYTES)
			return 0;
		if (sb_kx_maintain(x))
			return 0;
	}
	int rc = swap(x, next);
	if (!rc && !x->p.background)
		sb_kx_maintain(x);
	return rc;
}

int sb_kx_close(sb_kx *x, int finish)
{
	int rc = 0;

	if (!x)
		return 0;
	if (finish && !x->p.read_only) {
		/* No key since the last table, but records: an empty table
		 * says how far the index is complete, so that the next open
		 * replays none of them (a topic without keys is never read
		 * at open). */
		if (!x->imm && !sb_mt_count(x->active) && x->mt_bytes >= SB_KX_CLOSE_NOTE_BYTES &&
		    x->mt_end > x->mt_from)
			(void)swap(x, x->mt_end);
		rc = sb_kx_maintain(x);
	}
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_close(x->t[i]);
	free(x->t);
	sb_mt_free(x->active);
	sb_mt_free(x->imm);
	pthread_rwlock_destroy(&x->lock);
	pthread_mutex_destroy(&x->maint_mu);
	free(x->dir);
	free(x);
	return rc;
}

void sb_kx_remove_files(sb_kx *x)
{
	pthread_mutex_lock(&x->maint_mu);
	pthread_rwlock_wrlock(&x->lock);
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_remove(x->p.io, x->t[i]);
	x->nt = 0;
	pthread_rwlock_unlock(&x->lock);
	pthread_mutex_unlock(&x->maint_mu);
}

void sb_kx_get_stats(sb_kx *x, sb_kx_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&x->lock);
	st->mt_keys = sb_mt_count(x->active) + (x->imm ? sb_mt_count(x->imm) : 0);
	st->mt_bytes = sb_mt_bytes(x->active) + (x->imm ? sb_mt_bytes(x->imm) : 0);
	st->tables = (uint32_t)x->nt;
	for (size_t i = 0; i < x->nt; i++) {
		st->table_keys += sb_kt_count(x->t[i]);
		st->table_bytes += sb_kt_file_bytes(x->t[i]);
	}
	st->covered_to = x->covered;
	pthread_rwlock_unlock(&x->lock);
}

int sb_kx_scan(sb_kx *x, const void *from, size_t from_len, sb_kx_scan_fn fn, void *arg)
{
	src *s;
	size_t n = 0;
	int rc;

	pthread_rwlock_rdlock(&x->lock);
	s = calloc(x->nt + 2, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	s[n].is_mt = 1;
	sb_mt_seek(x->active, from, from_len, &s[n++].mi);
	if (x->imm) {
		s[n].is_mt = 1;
		sb_mt_seek(x->imm, from, from_len, &s[n++].mi);
	}
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_seek(x->t[i], from, from_len, &s[n++].ki);
	rc = merge_run(s, n, fn, arg);
	free(s);
out_unlock:
	pthread_rwlock_unlock(&x->lock);
	return rc;
}
