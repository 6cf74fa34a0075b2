/*
 * keyidx.c - a topic's key index (keyidx.h): opening it with the recovery
 * of the table set, the replay's puts, closing it, removing its files.
 * Indexing the tail and the turns of the flusher and the indexer are
 * keyidx_turn.c's, lookups and listings keyidx_read.c's, the table writes
 * keyidx_write.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "keyidx_impl.h"

/* Say a message (fmt with a and b) through params.report. */
void sb_kx_report(sb_kx *x, const char *fmt, const char *a, const char *b)
{
	char msg[512];

	if (!x->p.report)
		return;
	snprintf(msg, sizeof(msg), fmt, a, b);
	x->p.report(x->p.report_arg, x->topic, msg);
}

/* ---- the table array -------------------------------------------------------- */

int sb_kx_tables_reserve(sb_kx *x, size_t n)
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

/* Unused table `name`: removed (read-write; 1 if it was) or left (a
 * read-only store: 1, for it is not used all the same). */
static int drop_table(sb_kx *x, const char *name)
{
	char path[PATH_MAX];

	if (x->p.read_only)
		return 1;
	if (sb_path(path, x->dir, name))
		return 0;
	return x->p.io->unlink(x->p.io->ctx, path) == 0;
}

/* Read-only, said all the same, so that verify shows it. */
static void say_dropped(sb_kx *x, const char *name, const char *why)
{
	sb_kx_report(x,
		     x->p.read_only ? SB_REPORT_KEY_INDEX "%s is not used (%s); its offsets are replayed from the log"
				    : SB_REPORT_KEY_INDEX "removed %s (%s); its offsets are replayed from the log",
		     name, why);
}

static void drop_file(sb_kx *x, const char *name, const char *why)
{
	if (drop_table(x, name))
		say_dropped(x, name, why);
}

/* The tables from a broken one on: `first` (why) and `after` tables after
 * it up to `last`, dropped; said once (a damaged table early in a long
 * chain made a message a table, 40 for one `streambus get`). */
typedef struct chain {
	char first[256], last[256], why[256];
	size_t after;
} chain;

static void drop_chain(sb_kx *x, const found *f, const char *why, chain *c)
{
	if (!c->first[0]) {
		if (drop_table(x, f->name)) {
			snprintf(c->first, sizeof(c->first), "%s", f->name);
			snprintf(c->why, sizeof(c->why), "%s", why[0] ? why : "after a dropped table");
		}
		return;
	}
	if (drop_table(x, f->name)) {
		c->after++;
		snprintf(c->last, sizeof(c->last), "%s", f->name);
	}
}

static void report_chain(sb_kx *x, const chain *c)
{
	char msg[1024];

	if (!c->first[0] || !x->p.report)
		return;
	if (!c->after) {
		say_dropped(x, c->first, c->why);
		return;
	}
	snprintf(msg, sizeof(msg),
		 x->p.read_only ? SB_REPORT_KEY_INDEX "%s is not used (%s), nor are the %zu tables after it (up to %s); "
				  "their offsets are replayed from the log"
				: SB_REPORT_KEY_INDEX "removed %s (%s) and the %zu tables after it (up to %s); their offsets "
				  "are replayed from the log",
		 c->first, c->why, c->after, c->last);
	x->p.report(x->p.report_arg, x->topic, msg);
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
	chain c = {0};

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
			drop_chain(x, &f[i], why, &c);
			continue;
		}
		if ((rc = sb_kx_tables_reserve(x, x->nt + 1))) {
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
	report_chain(x, &c);
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
	if (!(x->topic = strdup(p->topic ? p->topic : "")) || !(x->dir = strdup(p->dir)))
		goto out_free;
	x->p.dir = x->dir;
	x->p.topic = x->topic;
	/* Freed runs kept: the next key_memtable_bytes of runs reuse them. */
	if ((rc = sb_kp_new(&x->tail)) || (rc = sb_kr_pool_new(p->memtable_bytes, &x->pool))) {
		sb_kp_free(x->tail);
		goto out_free;
	}
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&x->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&x->maint_mu, NULL);
	pthread_mutex_init(&x->idx_mu, NULL);
	if ((rc = load_tables(x, start, next))) {
		sb_kx_close(x, 0);
		return rc;
	}
	x->replay_from = x->act_from = x->idx_end = x->covered;
	atomic_store(&x->noted_end, x->covered);
	atomic_store(&x->walk_end, x->covered);
	*out = x;
	return 0;
out_free:
	free(x->topic);
	free(x->dir);
	free(x);
	return rc;
}

uint64_t sb_kx_replay_from(const sb_kx *x)
{
	return x->replay_from;
}

int sb_kx_put(sb_kx *x, const void *key, size_t klen, const sb_mt_val *v)
{
	int rc = sb_kp_put(x->tail, key, klen, v);

	if (!rc)
		atomic_store_explicit(&x->walk_end, v->offset + 1, memory_order_release);
	return rc;
}

int sb_kx_close(sb_kx *x, int finish)
{
	int rc = 0;

	if (!x)
		return 0;
	/* The flusher is joined: the close's own writes go to the end. */
	atomic_store(&x->stop_merges, 0);
	if (finish && !x->p.read_only) {
		/* Write the frozen runs; the rest is replayed from the log at the
		 * next open (at most a few key_memtable_bytes of keys). But with
		 * no key since the last table and records enough, an empty table
		 * says how far the index is complete, so that the next open
		 * replays none of them (a topic without keys is never read at
		 * open). */
		int note = !sb_kp_count(x->tail) && !x->nact &&
			   atomic_load(&x->last_keyed) <= atomic_load(&x->walk_end) &&
			   atomic_load(&x->noted_bytes) - atomic_load(&x->act_mark) >= SB_KX_CLOSE_NOTE_BYTES &&
			   atomic_load(&x->noted_end) > x->act_from;
		rc = sb_kx_maintain_as(x, note, TURN_CLOSE);
		int src = sb_kx_sync_tables(x);
		rc = rc ? rc : src;
	}
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_close(x->t[i]);
	free(x->t);
	for (size_t i = 0; i < x->nact; i++)
		sb_kr_free(x->act[i]);
	for (size_t i = 0; i < x->nimm; i++)
		sb_kr_free(x->imm[i]);
	sb_kp_free(x->tail);
	sb_kr_pool_free(x->pool);
	pthread_rwlock_destroy(&x->lock);
	pthread_mutex_destroy(&x->maint_mu);
	pthread_mutex_destroy(&x->idx_mu);
	free(x->topic);
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
