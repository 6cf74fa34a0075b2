/*
 * keyidx.c - a topic's key index: indexing the tail, runs, recovery of the
 * table set, the turns of the flusher and the indexer (keyidx.h; the
 * table writes are keyidx_write.c's).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsutil.h"
#include "keyidx_impl.h"

static void report(sb_kx *x, const char *fmt, const char *a, const char *b)
{
	char msg[512];

	if (!x->p.report)
		return;
	snprintf(msg, sizeof(msg), fmt, a, b);
	x->p.report(x->p.report_arg, x->topic, msg);
}

static long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
	report(x, x->p.read_only ? SB_REPORT_KEY_INDEX "%s is not used (%s); its offsets are replayed from the log"
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
	snprintf(x->topic, sizeof(x->topic), "%s", p->topic ? p->topic : "");
	if (!(x->dir = strdup(p->dir)))
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
	free(x->dir);
	free(x);
	return rc;
}

void sb_kx_set_background(sb_kx *x, int on)
{
	x->p.background = on;
	x->maint_kb = atomic_load(&x->noted_kbytes); /* the replay's keys came before */
	x->maint_ns = mono_ns();
}

void sb_kx_set_wake(sb_kx *x, void (*fn)(void *arg), void *arg)
{
	x->wake = fn;
	x->wake_arg = arg;
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

/* Keyed bytes noted and not yet read into the tail (an estimate: records
 * retention took before they were read count until the indexer next
 * reads up to the end), with_tail plus the tail's. [any thread] */
static uint64_t unindexed_bytes(sb_kx *x, int with_tail)
{
	uint64_t m = atomic_load_explicit(&x->kb_mark, memory_order_acquire);
	uint64_t k = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);

	/* With a flusher the tail is its own (filled and sorted in one turn
	 * under idx_mu): its counters, which it writes, are not read here. */
	return (with_tail ? sb_kp_bytes(x->tail) : 0) + (k > m ? k - m : 0);
}

/* ---- indexing the tail ---------------------------------------------------------- */

/*
 * Sort the tail's records below `below` into a run and put it in front
 * of act, merging it with the runs after it while they are no more than
 * twice its size (a binary counter: a few runs, each key copied a few
 * times). The run is in act before its records leave the tail, under one
 * exclusive hold of `lock`: a reader sees each record in one or the other.
 * will_freeze (maintain): 2, act is frozen next; 1, it is if due with
 * the new run (act_due); then its runs are not merged here, the table
 * write merges them. [idx_mu]
 */
static int index_batch(sb_kx *x, int will_freeze, uint64_t below, uint64_t bytes)
{
	sb_kr *r = NULL, *old[RUNS_MAX];
	sb_kp_pos pos;
	size_t k = 0;
	int rc;

	if (below <= x->idx_end) {
		sb_kp_trim(x->tail); /* idle: the spare chunks are not needed */
		return 0;
	}
	if ((rc = sb_kp_take(x->tail, below, x->pool, &r, &pos)))
		return rc;
	if (!r)
		sb_kp_trim(x->tail);
	/* Runs are changed only here, under idx_mu: reading act needs no lock.
	 * When act is frozen right after (maintain), its runs are merged as
	 * the table is written: no merge here. */
	if (r && will_freeze == 1)
		will_freeze = atomic_load(&x->act_bytes) + sb_kr_bytes(r) >= x->p.memtable_bytes ||
			      bytes - atomic_load(&x->act_mark) >= SB_KX_REPLAY_BYTES;
	while (r && k < x->nact &&
	       (x->nact == RUNS_MAX || (!will_freeze && sb_kr_bytes(x->act[k]) < sb_kx_batch_bytes(x) &&
					2 * sb_kr_bytes(r) >= sb_kr_bytes(x->act[k])))) {
		sb_kr *m;
		if (sb_kr_merge(r, x->act[k], &m)) {
			if (x->nact < RUNS_MAX)
				break; /* no memory for the merge: keep the runs apart */
			sb_kr_free(r);
			return -ENOMEM;
		}
		sb_kr_free(r); /* this call's (the batch or a merge): nobody saw it */
		r = m;
		old[k] = x->act[k];
		k++;
	}
	uint64_t ab = 0;
	pthread_rwlock_wrlock(&x->lock);
	if (r) {
		memmove(x->act + 1, x->act + k, (x->nact - k) * sizeof(*x->act));
		x->act[0] = r;
		x->nact = x->nact - k + 1;
	}
	sb_kp_release(x->tail, &pos);
	x->idx_end = below;
	for (size_t i = 0; i < x->nact; i++)
		ab += sb_kr_bytes(x->act[i]);
	pthread_rwlock_unlock(&x->lock);
	/* No reader is inside the merged runs now (they held the lock shared). */
	for (size_t i = 0; i < k; i++)
		sb_kr_free(old[i]);
	atomic_store(&x->act_bytes, ab);
	x->idx_bytes = bytes;
	return 0;
}

/* The tail is filled from the log up to a batch, then sorted (the batch
 * and its run in a core's cache; the tail's chunks go back to its spares). */
static uint64_t fill_bytes(const sb_kx *x)
{
	return sb_kx_batch_bytes(x);
}

typedef struct fill_ctx {
	sb_kx *x;
	uint64_t done;   /* every keyed record below is in the tail */
	uint64_t limit;  /* tail bytes to stop at */
	int full;
} fill_ctx;

static int fill_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v)
{
	fill_ctx *c = arg;
	int rc = sb_kp_put(c->x->tail, key, klen, v);

	if (rc)
		return rc;
	c->done = v->offset + 1;
	if (sb_kp_bytes(c->x->tail) >= c->limit) {
		c->full = 1;
		return 1;
	}
	return 0;
}

/* Read the keyed records of [walk_end, to) from the log into the tail,
 * up to fill_bytes: *more when it stopped there (walk_end is where).
 * Nothing is read when no keyed record was noted past walk_end. kb is
 * noted_kbytes loaded before `to`: all of its records are below `to`.
 * [idx_mu] */
static int fill(sb_kx *x, uint64_t to, uint64_t kb, int *more)
{
	uint64_t from = atomic_load_explicit(&x->walk_end, memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&x->last_keyed, memory_order_acquire);
	fill_ctx c = {x, from, fill_bytes(x), 0};
	int rc = 0;

	*more = 0;
	if (from >= to) { /* read to there already (a batch ended at it) */
		atomic_store_explicit(&x->kb_mark, kb, memory_order_release);
		return 0;
	}
	if (last > from && x->p.walk)
		rc = x->p.walk(x->p.walk_arg, from, to, fill_one, &c);
	if (c.full || rc) {
		/* how far it came (stored once: the appender's line is near) */
		atomic_store_explicit(&x->walk_end, c.done, memory_order_release);
		*more = c.full;
		return c.full ? 0 : rc; /* the rest next time */
	}
	atomic_store_explicit(&x->walk_end, to, memory_order_release);
	atomic_store_explicit(&x->kb_mark, kb, memory_order_release);
	return 0;
}

/* Read the keyed records below noted_end from the log and index them, a
 * batch (fill_bytes) at a time, stopping early (the rest waits in the log)
 * once the active runs hold act_cap bytes. [idx_mu] */
static int index_tail(sb_kx *x, int will_freeze, uint64_t act_cap)
{
	uint64_t kb = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);
	uint64_t below = atomic_load_explicit(&x->noted_end, memory_order_acquire);
	uint64_t bytes = atomic_load_explicit(&x->noted_bytes, memory_order_acquire);
	int rc, more;

	atomic_store(&x->woken, 0);
	do {
		if ((rc = fill(x, below, kb, &more)))
			return rc;
		rc = index_batch(x, will_freeze, more ? atomic_load(&x->walk_end) : below, bytes);
	} while (!rc && more && atomic_load(&x->act_bytes) < act_cap);
	return rc;
}

static int catch_up(sb_kx *x)
{
	pthread_mutex_lock(&x->idx_mu);
	int rc = index_tail(x, 0, UINT64_MAX);
	pthread_mutex_unlock(&x->idx_mu);
	return rc;
}

/* Tail entries a reader scans rather than catching up first. */
#define TAIL_SCAN_MAX 256
/* Records not yet read by the indexer that a get reads from the log for
 * its key rather than catching up first (a get right after an append
 * then indexes nothing: no run of one entry to merge). */
#define LOG_SCAN_MAX 16

typedef struct scan_ctx {
	const void *key;
	size_t klen;
	sb_mt_val v;
	int found;
} scan_ctx;

static int scan_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v)
{
	scan_ctx *c = arg;

	if (klen == c->klen && key[0] == *(const uint8_t *)c->key && !memcmp(key, c->key, klen)) {
		c->v = *v; /* offsets increase: the last one is the latest */
		c->found = 1;
	}
	return 0;
}

/* Read your writes: every record appended before this call is below
 * noted_end; once the indexer has read it (below walk_end), in the tail
 * or the runs. A few records past walk_end are searched in the log for
 * the key (1: found, *v; 0: not there); more are indexed first (if that
 * fails, what there is is searched), as is a long tail (the replay's, a
 * fill under way). Holds no lock (params.walk takes seg_lock). */
static int get_unread(sb_kx *x, const void *key, size_t klen, sb_mt_val *v)
{
	uint64_t last = atomic_load_explicit(&x->last_keyed, memory_order_acquire);
	uint64_t w = atomic_load_explicit(&x->walk_end, memory_order_acquire);

	if (last <= w) {
		if (sb_kp_count(x->tail) > TAIL_SCAN_MAX)
			catch_up(x);
		return 0;
	}
	uint64_t end = atomic_load_explicit(&x->noted_end, memory_order_acquire);
	scan_ctx c = {.key = key, .klen = klen};
	if (end - w <= LOG_SCAN_MAX && x->p.walk && x->p.walk(x->p.walk_arg, w, end, scan_one, &c) == 0) {
		if (c.found)
			*v = c.v;
		return c.found;
	}
	catch_up(x);
	return 0;
}

int sb_kx_get(sb_kx *x, const void *key, size_t klen, sb_mt_val *v)
{
	int rc;

	if (get_unread(x, key, klen, v))
		return 0; /* newer than anything indexed */
	pthread_rwlock_rdlock(&x->lock);
	/* The tables' Bloom filter lines: cache misses of their own, on their
	 * way together while the tail and the runs are looked at. */
	uint64_t h = x->nt ? sb_kt_hash(key, klen) : 0;
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_prefetch(x->t[i], h);
	rc = sb_kp_find(x->tail, key, klen, v);
	for (size_t i = 0; rc == -ENOENT && i < x->nact; i++)
		rc = sb_kr_get(x->act[i], key, klen, v);
	for (size_t i = 0; rc == -ENOENT && i < x->nimm; i++)
		rc = sb_kr_get(x->imm[i], key, klen, v);
	if (rc == -ENOENT && x->nt) {
		for (size_t i = 0; rc == -ENOENT && i < x->nt; i++)
			rc = sb_kt_get(x->t[i], key, klen, h, v);
	}
	pthread_rwlock_unlock(&x->lock);
	return rc;
}

/* Freeze act (the records [act_from, idx_end)) for flush_imm. [maint_mu, idx_mu] */
static void freeze(sb_kx *x)
{
	if (x->frozen || x->idx_end <= x->act_from)
		return;
	pthread_rwlock_wrlock(&x->lock);
	memcpy(x->imm, x->act, x->nact * sizeof(*x->act));
	x->nimm = x->nact;
	x->imm_from = x->act_from;
	x->imm_to = x->idx_end - 1;
	x->frozen = 1;
	x->nact = 0;
	x->act_from = x->idx_end;
	pthread_rwlock_unlock(&x->lock);
	atomic_store(&x->act_bytes, 0);
	atomic_store(&x->act_mark, x->idx_bytes);
}

/* Is act due to be written: past key_memtable_bytes, or SB_KX_REPLAY_BYTES
 * of records to replay? [idx_mu] */
static int act_due(sb_kx *x)
{
	return atomic_load(&x->act_bytes) >= x->p.memtable_bytes ||
	       x->idx_bytes - atomic_load(&x->act_mark) >= SB_KX_REPLAY_BYTES;
}

int sb_kx_write_runs_in_merge(sb_kx *x)
{
	pthread_mutex_lock(&x->idx_mu);
	if (act_due(x))
		freeze(x);
	pthread_mutex_unlock(&x->idx_mu);
	return sb_kx_flush_imm(x, 1);
}

/* Who calls maintain(): the flusher's turn, the appender stepping in
 * (behind: busy), the close (busy), compaction's cover. */
enum turn { TURN_FLUSHER, TURN_APPENDER, TURN_CLOSE, TURN_COVER };

/* A turn begins: is it busy (keyidx_write.c)? A flusher's turn is when a
 * batch of keys or more came since its last turn began; or, after a busy
 * turn, while they keep coming at a batch every BUSY_RATE_MS or faster.
 * Without the rate, a short turn (nothing due) made the next one quiet (a
 * few thousand keys in its 2 ms), and that one began a merge of 8 tables
 * (0.2 to 0.5 s at 5,000,000 keys) while the keys went on coming, past
 * the appender's bound: it waited for the merge (docs/BENCHMARKS.md,
 * "Sustained keyed appends"). A turn with no key since the last is quiet.
 * The appender's and the close's turns are busy, and theirs and
 * compaction's leave the flusher's measure alone; the flusher's turn after
 * the appender stepped in is busy: the appender, waiting in its turn,
 * appended nothing, which made the next turn look quiet.
 * [maint_mu] */
#define BUSY_RATE_MS 100
static void turn_begins(sb_kx *x, enum turn who)
{
	uint64_t kb = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);
	uint64_t d = kb - x->maint_kb, batch = sb_kx_batch_bytes(x);
	long long now = mono_ns(), dt = now - x->maint_ns;
	int fast = x->busy && d && (double)d * (BUSY_RATE_MS * 1000000.0) >= (double)batch * (double)dt;

	if (!x->p.background) {
		x->busy = 0;
	} else if (who == TURN_APPENDER || who == TURN_CLOSE) {
		x->busy = 1;
	} else if (who == TURN_COVER) {
		x->busy = x->busy || d >= batch;
	} else {
		uint64_t app = atomic_load(&x->app_sorts) + atomic_load(&x->app_writes);
		x->busy = d >= batch || fast || app != x->maint_app;
		x->maint_kb = kb;
		x->maint_ns = now;
		x->maint_app = app;
	}
}

/* Index the tail; past the limits, freeze the runs and write them as a
 * table; merge tables. With `all`, freeze whatever was indexed. With a
 * flusher, the close counts as busy (turn_begins): the frozen runs are
 * written alone and merges are left to the flusher after the next open (it
 * merges what is due within its first turn), unless the tables are at the
 * busy bound: a close does no more than it must. Without one (no_flusher:
 * the tools) the close merges what is due, as every maintain does. */
static int maintain(sb_kx *x, int all, enum turn who)
{
	size_t at, k;
	int rc, yielded = 0;

	if (x->p.read_only)
		return catch_up(x);
	pthread_mutex_lock(&x->maint_mu);
	turn_begins(x, who);
again:
	rc = sb_kx_flush_imm(x, 0); /* one left by a failure */
	if (!rc) {
		/* With a flusher, what is frozen is about key_memtable_bytes,
		 * and the keys past it go to fresh runs (up to INDEXER_CAP): a
		 * long write is not followed by a pile of runs frozen at once,
		 * over the appender's bound. */
		uint64_t cap = all || !x->p.background ? UINT64_MAX : x->p.memtable_bytes;
		pthread_mutex_lock(&x->idx_mu);
		rc = index_tail(x, 1 + all, cap);
		if (!rc && (all || act_due(x)))
			freeze(x);
		if (!rc && cap != UINT64_MAX)
			rc = index_tail(x, 0, INDEXER_CAP(x));
		pthread_mutex_unlock(&x->idx_mu);
	}
	if (!rc)
		rc = sb_kx_flush_imm(x, 0);
	while (!rc && sb_kx_merge_due(x, &at, &k))
		rc = sb_kx_merge_at(x, at, k);
	if (rc == -EAGAIN && !yielded) { /* a merge yielded (keyidx_write.c): the runs first */
		yielded = 1;
		x->busy = 1;
		goto again;
	}
	pthread_mutex_unlock(&x->maint_mu);
	if (rc == -ECANCELED) /* the store closes (sb_kx_stop_merges) */
		rc = 0;
	if (rc)
		report(x, SB_REPORT_KEY_INDEX "writing a table failed: %s%s", sb_strerror(rc), "");
	return rc;
}

int sb_kx_maintain(sb_kx *x)
{
	return maintain(x, 0, TURN_FLUSHER);
}

int sb_kx_index(sb_kx *x)
{
	int rc, due;

	if (x->p.read_only || !x->p.background)
		return 0;
	uint64_t kb = atomic_load_explicit(&x->noted_kbytes, memory_order_acquire);
	uint64_t tb = unindexed_bytes(x, 0), seen = x->idx_seen;

	x->idx_seen = kb;
	if (!tb)
		return 0;
	/* Keys coming (more since the last look) but not a batch yet, or no
	 * room until the flusher freezes the runs: look again soon. A few
	 * keys that stopped coming are read at once. */
	if ((tb < sb_kx_batch_bytes(x) && kb != seen) || atomic_load(&x->act_bytes) >= INDEXER_CAP(x))
		return 1;
	pthread_mutex_lock(&x->idx_mu);
	rc = index_tail(x, 0, INDEXER_CAP(x));
	due = !rc && act_due(x);
	pthread_mutex_unlock(&x->idx_mu);
	return rc ? rc : due ? 2 : 1;
}

int sb_kx_note_end(sb_kx *x, uint64_t next, uint64_t bytes, uint64_t kbytes, uint64_t last_keyed)
{
	uint64_t nb = atomic_load_explicit(&x->noted_bytes, memory_order_relaxed) + bytes;
	uint64_t mt = x->p.memtable_bytes;

	/* last_keyed and noted_end before noted_kbytes: the indexer loads
	 * noted_kbytes first, then noted_end (fill). */
	if (last_keyed)
		atomic_store_explicit(&x->last_keyed, last_keyed, memory_order_release);
	atomic_store_explicit(&x->noted_bytes, nb, memory_order_release);
	atomic_store_explicit(&x->noted_end, next, memory_order_release);
	if (kbytes)
		atomic_store_explicit(&x->noted_kbytes,
				      atomic_load_explicit(&x->noted_kbytes, memory_order_relaxed) + kbytes,
				      memory_order_release);
	if (x->p.read_only) { /* index the replay at open; never write */
		if (sb_kp_bytes(x->tail) >= mt / 2)
			catch_up(x);
		return 0;
	}
	/* Without a flusher (the replay at open, no_flusher) the appender
	 * indexes in batches of half key_memtable_bytes; with one, only when
	 * the flusher is far behind, bounding the reads a get may wait for. */
	uint64_t tb = unindexed_bytes(x, !x->p.background);
	if (x->p.background && x->wake && tb >= sb_kx_batch_bytes(x) &&
	    !atomic_load_explicit(&x->woken, memory_order_relaxed)) {
		atomic_store(&x->woken, 1);
		x->wake(x->wake_arg);
	}
	/* With a flusher (and the indexer), past 4x key_memtable_bytes of
	 * unindexed keys the appender sorts them itself while the runs are
	 * under INDEXER_CAP (the indexer starved of CPU); when they are at it
	 * (the indexer waits for the flusher's freeze), or past it by 2x
	 * key_memtable_bytes (readers' catch-ups), it waits for the flusher
	 * and writes the next table itself. */
	uint64_t lim = x->p.background ? 4 * mt : mt / 2;
	uint64_t rlim = x->p.background ? 2 * (uint64_t)SB_KX_REPLAY_BYTES : SB_KX_REPLAY_BYTES;
	uint64_t ab = atomic_load(&x->act_bytes);
	int act_over = ab >= (x->p.background ? INDEXER_CAP(x) + lim / 2 : mt) ||
		       (x->p.background && tb >= lim && ab >= INDEXER_CAP(x)) ||
		       nb - atomic_load(&x->act_mark) >= rlim;
	if (tb < lim && !act_over)
		return 0;
	/* counted first: the flusher's next turn sees it (turn_begins) */
	if (x->p.background && !act_over) {
		atomic_fetch_add_explicit(&x->app_sorts, 1, memory_order_relaxed);
		catch_up(x); /* only sort: table writes stay the flusher's */
	} else {
		if (x->p.background)
			atomic_fetch_add_explicit(&x->app_writes, 1, memory_order_relaxed);
		maintain(x, 0, TURN_APPENDER); /* a failed write is retried later */
	}
	return 0;
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
		rc = maintain(x, note, TURN_CLOSE);
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
	free(x->dir);
	free(x);
	return rc;
}

int sb_kx_sync_tables(sb_kx *x)
{
	char (*names)[48] = NULL;
	size_t n = 0;
	uint64_t to = 0;
	int rc = 0;

	if (!atomic_exchange(&x->lazy_new, 0))
		return 0;
	pthread_rwlock_rdlock(&x->lock);
	uint64_t dt = atomic_load(&x->durable_to);
	if (x->nt && !(names = malloc(x->nt * sizeof(*names))))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < x->nt; i++) {
		if (sb_kt_durable(x->t[i]) || sb_kt_last(x->t[i]) < dt)
			continue;
		snprintf(names[n++], sizeof(*names), "%s", sb_kt_filename(x->t[i]));
		to = sb_kt_last(x->t[i]) + 1 > to ? sb_kt_last(x->t[i]) + 1 : to;
	}
	pthread_rwlock_unlock(&x->lock);
	/* A table merged meanwhile is gone: its merge's table was synced. */
	for (size_t i = 0; !rc && i < n; i++)
		if ((rc = sb_fdatasync_file(x->p.io, x->dir, names[i])) == -ENOENT)
			rc = 0;
	if (!rc && n)
		rc = sb_fsync_dir(x->p.io, x->dir);
	if (rc) {
		atomic_store(&x->lazy_new, 1); /* tried again */
		report(x, SB_REPORT_KEY_INDEX "syncing a table failed: %s%s", sb_strerror(rc), "");
	} else {
		uint64_t cur = atomic_load(&x->durable_to);
		while (cur < to && !atomic_compare_exchange_weak(&x->durable_to, &cur, to))
			;
	}
	free(names);
	return rc;
}

/* The first offset the synced tables do not cover: a table published
 * lazily and not synced since covers nothing a crash may not take. */
static uint64_t durably_covered(sb_kx *x)
{
	pthread_rwlock_rdlock(&x->lock);
	uint64_t covered = x->covered, dt = atomic_load(&x->durable_to);
	for (size_t i = 0; i < x->nt; i++)
		if (!sb_kt_durable(x->t[i]) && sb_kt_last(x->t[i]) >= dt && sb_kt_first(x->t[i]) < covered)
			covered = sb_kt_first(x->t[i]);
	pthread_rwlock_unlock(&x->lock);
	return covered;
}

uint64_t sb_kx_cover(sb_kx *x, uint64_t below)
{
	uint64_t covered = durably_covered(x);

	if (covered >= below || x->p.read_only)
		return covered;
	maintain(x, 1, TURN_COVER); /* a failure is reported; what is covered is said */
	sb_kx_sync_tables(x);
	return durably_covered(x);
}

void sb_kx_stop_merges(sb_kx *x)
{
	atomic_store(&x->stop_merges, 1);
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
	st->mt_keys = sb_kp_count(x->tail);
	st->mt_bytes = sb_kp_bytes(x->tail);
	for (size_t i = 0; i < x->nact; i++) {
		st->mt_keys += sb_kr_count(x->act[i]);
		st->mt_bytes += sb_kr_bytes(x->act[i]);
	}
	for (size_t i = 0; i < x->nimm; i++) {
		st->mt_keys += sb_kr_count(x->imm[i]);
		st->mt_bytes += sb_kr_bytes(x->imm[i]);
	}
	st->tables = (uint32_t)x->nt;
	for (size_t i = 0; i < x->nt; i++) {
		st->table_keys += sb_kt_count(x->t[i]);
		st->table_bytes += sb_kt_file_bytes(x->t[i]);
	}
	st->covered_to = x->covered;
	pthread_rwlock_unlock(&x->lock);
	st->appender_sorts = atomic_load_explicit(&x->app_sorts, memory_order_relaxed);
	st->appender_writes = atomic_load_explicit(&x->app_writes, memory_order_relaxed);
}

int sb_kx_scan(sb_kx *x, const void *from, size_t from_len, sb_kx_scan_fn fn, void *arg)
{
	src *s;
	size_t n = 0;
	int rc;

	/* Everything appended before this call, sorted (read your writes). */
	if ((rc = catch_up(x)))
		return rc;
	pthread_rwlock_rdlock(&x->lock);
	s = calloc(x->nt + x->nact + x->nimm + 1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	for (size_t i = 0; i < x->nact; i++) {
		s[n].is_run = 1;
		sb_kr_seek(x->act[i], from, from_len, &s[n++].ri);
	}
	for (size_t i = 0; i < x->nimm; i++) {
		s[n].is_run = 1;
		sb_kr_seek(x->imm[i], from, from_len, &s[n++].ri);
	}
	for (size_t i = 0; i < x->nt; i++)
		sb_kt_seek(x->t[i], from, from_len, &s[n++].ki);
	rc = sb_km_merge(s, n, fn, arg);
	free(s);
out_unlock:
	pthread_rwlock_unlock(&x->lock);
	return rc;
}
