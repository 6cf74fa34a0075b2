/*
 * test_store_crashsim.c - crash simulation at scale (issue 8 item 2).
 *
 * Scripted workloads (seeded: appends of random sizes under each sync
 * policy, segment rolls with 4 KiB segments, retention by bytes and age,
 * delete_before of the oldest records, sb_log_sync, the swap of sealed
 * segments for their compressed form (sb_log_compress, lz4 in 1 KiB blocks)
 * or, in every fourth workload (keys repeating: "c" + offset % KMOD), their
 * compaction (sb_log_compact: a record may then read ENOENT only when a
 * later record with its key is in the log),
 * topics created, emptied and removed) run over util_faultio. Each scenario crashes the workload at
 * one point: every sync point (the kth fdatasync, for every k) under each
 * crash mode (unsynced writes kept, dropped, garbled, reordered, kept up to a
 * point, randomly), and random points between them (the kth call of another
 * kind: pwrite, open, close, rename, unlink, ftruncate, fallocate, mkdir,
 * rmdir). Every 16th scenario then crashes the recovery too, at each of its
 * syncs in turn (each such case counts as a scenario). After the crash the
 * store is opened with the real io and checked: every topic's log is a
 * prefix of what was appended to it (records read back exactly, keys too: no
 * garbage, no hole, nothing never written); it holds everything acknowledged
 * under `always`, and under `interval`/`never` everything sb_log_sync
 * covered; a delete_before acknowledged under `always` stays done (records
 * deleted otherwise or retained away may come back, as docs/FORMAT.md's
 * recovery rules allow) and the start never passes what was asked; a topic
 * whose create returned is there, one whose remove returned is not; and the
 * log takes a new record at its end. The key index, derived data rebuilt
 * from the log, agrees with the log read back: each key's get answers the
 * latest record with that key in [start, next), and a key whose records
 * are all below the start or past the end (lost by the crash) answers
 * ENOENT.
 *
 * SB_CRASHSIM_SCENARIOS (default 1500, 600 under ASan) sets how many; tools/crashsim
 * runs 100,000+. SB_CRASHSIM_FIRST (default 0) the first workload seed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SCENARIOS 600 /* ASan: several times slower */
#define DEFAULT_KEY_SCENARIOS 120
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_SCENARIOS 600
#define DEFAULT_KEY_SCENARIOS 120
#endif
#endif
#ifndef DEFAULT_SCENARIOS
#define DEFAULT_SCENARIOS 1500
#define DEFAULT_KEY_SCENARIOS 300
#endif

#define SEG 4096
#define MAXT 8
#define STEPS 48
#define T0 1700000000000000000LL
#define MS 1000000LL

static ut_env env;
static sb_io check_io; /* the real calls without fdatasync: the check's own
			* durability does not matter, and it is 10x faster */

static int no_sync(void *ctx, int fd)
{
	(void)ctx, (void)fd;
	return 0;
}

typedef struct topic {
	char name[8];
	enum sb_sync sync;
	uint64_t seed;
	int create_tried, created, remove_tried, removed;
	uint64_t acked_next, tried_next, synced_next;
	uint64_t del_done, start_bound; /* start_bound: no start past this */
	int compacting;                /* keys repeat (KMOD), t0 is compacted */
	sb_log *l;
} topic;

typedef struct run {
	enum sb_sync sync;
	uint64_t wseed, rng;
	topic t[MAXT];
	int nt;
	int opened;
	const char *fail_at;
	int fail_rc;
} run;

static size_t len_of(const topic *t, uint64_t o)
{
	return ut_len(o, t->seed, 1, 1500);
}

/* Keys of a compacting workload: "c" + offset % KMOD. */
#define KMOD 7
static int compacting_seed(uint64_t wseed)
{
	return wseed % 4 == 3;
}

static void cfg_of(sb_log_config *c, enum sb_sync sync)
{
	ut_cfg(c, SEG, sync);
	c->index_interval_bytes = 512;
	c->retention_bytes = 6 * SEG;
	c->retention_ms = 60;
	c->compression = SB_COMPRESS_LZ4;
	c->compression_block_bytes = 1024;
}

static int append_batch(topic *t, int k)
{
	uint8_t *bufs[4];
	char keys[4][32];
	sb_record_in r[4];
	uint64_t first = UINT64_MAX, next = t->acked_next;
	int rc;

	for (int j = 0; j < k; j++) {
		uint64_t o = next + (uint64_t)j;
		size_t len = len_of(t, o);
		bufs[j] = malloc(len);
		ut_fill(bufs[j], len, o, t->seed);
		if (t->compacting)
			snprintf(keys[j], sizeof(keys[j]), "c%llu", (unsigned long long)(o % KMOD));
		else
			snprintf(keys[j], sizeof(keys[j]), "k%llu", (unsigned long long)o);
		r[j] = (sb_record_in){.key = keys[j], .key_len = (uint32_t)strlen(keys[j]),
				      .value = bufs[j], .value_len = (uint32_t)len,
				      .timestamp_ns = T0 + (int64_t)o * MS};
	}
	t->tried_next = next + (uint64_t)k;
	rc = sb_log_append(t->l, r, (size_t)k, &first);
	if (!rc && first != next)
		rc = -EPROTO;
	for (int j = 0; j < k; j++)
		free(bufs[j]);
	if (!rc) {
		t->acked_next = next + (uint64_t)k;
		if (t->sync == SB_SYNC_ALWAYS)
			t->synced_next = t->acked_next;
	}
	return rc;
}

static topic *new_topic(run *w, sb_store *s)
{
	if (w->nt == MAXT)
		return NULL;
	topic *t = &w->t[w->nt];
	snprintf(t->name, sizeof(t->name), "t%d", w->nt);
	t->seed = 1000 + (uint64_t)w->nt;
	t->compacting = compacting_seed(w->wseed);
	t->sync = w->sync;
	t->create_tried = 1;
	w->nt++;
	int rc = sb_store_create(s, t->name);
	if (!rc)
		rc = sb_store_get(s, t->name, &t->l);
	if (rc) {
		w->fail_rc = rc;
		w->fail_at = "create";
		return NULL;
	}
	t->created = 1;
	return t;
}

#define STOP(what)                        \
	do {                              \
		w->fail_rc = rc;          \
		w->fail_at = (what);      \
		goto out_close;           \
	} while (0)

/* One step on the main topic (t0) or the current side topic. */
static int step(run *w, sb_store *s, topic **side)
{
	topic *a = &w->t[0];
	unsigned r = (unsigned)(ut_splitmix(&w->rng) % 100);
	int rc = 0;

	if (r < 55)
		return append_batch(a, 1 + (int)(ut_splitmix(&w->rng) % 4));
	if (r < 65) {
		if (*side)
			return append_batch(*side, 1 + (int)(ut_splitmix(&w->rng) % 2));
		*side = new_topic(w, s);
		return *side || w->nt == MAXT ? 0 : w->fail_rc;
	}
	if (r < 72) { /* rm the oldest records */
		uint64_t st = sb_log_start(a->l), x = st + ut_splitmix(&w->rng) % (a->acked_next - st + 1) / 2;
		if (x > a->start_bound)
			a->start_bound = x;
		rc = sb_log_delete_before(a->l, x);
		if (!rc && w->sync == SB_SYNC_ALWAYS && x > a->del_done)
			a->del_done = x;
		return rc;
	}
	if (r < 80) { /* retention by bytes and age */
		if (a->acked_next > a->start_bound)
			a->start_bound = a->acked_next;
		return sb_log_retain(a->l, T0 + (int64_t)a->acked_next * MS, NULL);
	}
	if (r < 86) { /* empty the side topic and remove it */
		topic *t = *side;
		if (!t)
			return 0;
		t->start_bound = t->tried_next;
		if ((rc = sb_log_delete_before(t->l, t->acked_next)))
			return rc;
		t->remove_tried = 1;
		t->l = NULL;
		*side = NULL;
		if ((rc = sb_store_remove(s, t->name)))
			return rc;
		t->removed = 1;
		return 0;
	}
	if (r < 92) {
		topic *t = ut_splitmix(&w->rng) % 3 == 0 && *side ? *side : a;
		uint64_t n = t->acked_next;
		if (!(rc = sb_log_sync(t->l)))
			t->synced_next = n;
		return rc;
	}
	if (r < 96) { /* sealed segments swapped for their compressed form */
		uint64_t n = a->acked_next;
		if ((rc = sb_log_sync(a->l)))
			return rc;
		a->synced_next = n;
		if (a->compacting) /* now: tombstones (none here) never expire */
			return sb_log_compact(a->l, T0 + (int64_t)a->acked_next * MS, NULL);
		return sb_log_compress(a->l, NULL);
	}
	return append_batch(a, 1);
}

static void run_workload(const char *dir, const sb_io *io, enum sb_sync sync, uint64_t wseed, run *w)
{
	sb_log_config c;
	sb_store *s = NULL;
	topic *side = NULL;
	int rc;

	memset(w, 0, sizeof(*w));
	w->sync = sync;
	w->wseed = wseed;
	w->rng = wseed * 7919 + 13;
	cfg_of(&c, sync);
	if (wseed % 2)
		c.key_memtable_bytes = 1; /* a key table per append, merged as it runs */
	if ((rc = ut_open(dir, &c, io, &s))) {
		w->fail_rc = rc;
		w->fail_at = "open";
		return;
	}
	w->opened = 1;
	if (!new_topic(w, s))
		goto out_close;
	for (int i = 0; i < STEPS; i++) {
		if ((rc = step(w, s, &side)))
			STOP("step");
		if (w->fail_rc)
			goto out_close;
	}
out_close:
	rc = sb_store_close(s);
	if (!w->fail_rc && rc) {
		w->fail_rc = rc;
		w->fail_at = "close";
	}
	if (!w->fail_rc) /* a clean close makes everything durable (SPEC §1) */
		for (int i = 0; i < w->nt; i++)
			w->t[i].synced_next = w->t[i].acked_next;
}

/* ---- the check after a crash ------------------------------------------------ */

static int fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

static int refused_msg(void *arg, const char *name, int err, const char *msg)
{
	(void)err;
	if (!strcmp(name, ((char **)arg)[0]))
		snprintf(((char **)arg)[1], 256, "%s", msg);
	return 0;
}

/* The offset a get of key "k<o>" / "c<m>" must answer after recovery, or
 * UINT64_MAX for ENOENT: the latest record of that key in [start, next). */
static uint64_t key_expect(const topic *t, uint64_t o, uint64_t start, uint64_t next)
{
	if (!t->compacting)
		return o >= start && o < next ? o : UINT64_MAX;
	if (next == 0 || next - 1 < o)
		return UINT64_MAX;
	uint64_t last = next - 1 - ((next - 1 - o) % KMOD + KMOD) % KMOD;
	return last >= start ? last : UINT64_MAX;
}

/* Every key of [lo, hi) (for a compacting topic: its KMOD keys) answered by
 * sb_log_get_key as key_expect says, the record's bytes and length right. */
static int check_keys(sb_log *l, const topic *t, uint64_t start, uint64_t next, char *why, size_t cap)
{
	uint64_t lo = start > 8 ? start - 8 : 0, hi = next + 8;
	if (t->compacting)
		lo = 0, hi = KMOD;
	for (uint64_t o = lo; o < hi; o++) {
		char key[32];
		uint8_t buf[1600];
		size_t n = 0;
		sb_record_info info;
		uint64_t want = key_expect(t, o, start, next);
		snprintf(key, sizeof(key), "%c%llu", t->compacting ? 'c' : 'k', (unsigned long long)o);
		int rc = sb_log_get_key(l, key, strlen(key), buf, sizeof(buf), &n, &info);
		if (want == UINT64_MAX && rc != -ENOENT)
			return fail(why, cap, "%s: get of key %s: %s at %llu, want ENOENT ([%llu, %llu))", t->name,
				    key, sb_strerror(rc), rc ? 0ull : (unsigned long long)info.offset,
				    (unsigned long long)start, (unsigned long long)next);
		if (want == UINT64_MAX)
			continue;
		if (rc || info.offset != want || n != len_of(t, want))
			return fail(why, cap, "%s: get of key %s: %s, offset %llu length %zu, want %llu", t->name,
				    key, sb_strerror(rc), rc ? 0ull : (unsigned long long)info.offset, n,
				    (unsigned long long)want);
		uint8_t *exp = malloc(n);
		ut_fill(exp, n, want, t->seed);
		int same = memcmp(exp, buf, n) == 0;
		free(exp);
		if (!same)
			return fail(why, cap, "%s: get of key %s: wrong bytes", t->name, key);
	}
	return 0;
}

static int check_topic(sb_store *s, const topic *t, char *why, size_t cap)
{
	sb_log *l;
	int rc = sb_store_get(s, t->name, &l);

	if (rc) {
		char msg[256] = "";
		const char *arg[2] = {t->name, msg};
		sb_store_list_refused(s, refused_msg, arg);
		if (t->created && !t->remove_tried)
			return fail(why, cap, "%s: lost (%s: %s) though its create returned", t->name,
				    sb_strerror(rc), msg);
		return 0;
	}
	if (t->removed)
		return fail(why, cap, "%s: back though its remove returned", t->name);
	if (!t->create_tried)
		return fail(why, cap, "%s: never created", t->name);
	uint64_t start = sb_log_start(l), next = sb_log_next(l);
	if (t->remove_tried && start == next)
		return 0; /* a remove that did not return may leave it empty, from 0 */
	if (next < t->synced_next)
		return fail(why, cap, "%s: next %llu < %llu durable", t->name, (unsigned long long)next,
			    (unsigned long long)t->synced_next);
	if (next > t->tried_next)
		return fail(why, cap, "%s: next %llu > %llu ever appended", t->name,
			    (unsigned long long)next, (unsigned long long)t->tried_next);
	if (start > next)
		return fail(why, cap, "%s: start %llu > next %llu", t->name, (unsigned long long)start,
			    (unsigned long long)next);
	if (start < t->del_done && next >= t->del_done)
		return fail(why, cap, "%s: start %llu < %llu of a delete_before acknowledged", t->name,
			    (unsigned long long)start, (unsigned long long)t->del_done);
	/* Compaction moves the start past head segments it emptied: only if
	 * every record of [start_bound, start) has a later one of its key
	 * (o + KMOD < next), which the loop below finds there. */
	if (start > t->start_bound && start != next && !(t->compacting && start + KMOD <= next))
		return fail(why, cap, "%s: start %llu past anything removed (%llu), next %llu", t->name,
			    (unsigned long long)start, (unsigned long long)t->start_bound,
			    (unsigned long long)next);
	for (uint64_t o = start; o < next; o++) {
		char key[32] = {0};
		size_t kl = 0;
		rc = ut_check(l, o, len_of(t, o), t->seed);
		if (rc == -ENOENT && t->compacting && o + KMOD < next)
			continue; /* compacted away: a later record of its key is there */
		if (rc)
			return fail(why, cap, "%s: record %llu of [%llu, %llu): %s", t->name,
				    (unsigned long long)o, (unsigned long long)start, (unsigned long long)next,
				    rc == 1 ? "wrong length" : rc == 2 ? "wrong bytes" : sb_strerror(rc));
		if ((rc = sb_log_read_key(l, o, key, sizeof(key) - 1, &kl)) || kl < 2 ||
		    strtoull(key + 1, NULL, 10) != (t->compacting ? o % KMOD : o))
			return fail(why, cap, "%s: key of %llu wrong", t->name, (unsigned long long)o);
	}
	return check_keys(l, t, start, next, why, cap);
}

/* Open dir with the real io (recovery), check every topic, append one. */
static int check_store(const char *dir, const run *w, char *why, size_t cap)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	int rc;

	if (!w->opened && !uf_exists(dir))
		return 0;
	cfg_of(&c, SB_SYNC_NEVER);
	c.retention_bytes = -1;
	c.retention_ms = -1;
	if ((rc = ut_open(dir, &c, &check_io, &s)))
		return fail(why, cap, "reopen: %s", sb_strerror(rc));
	for (int i = 0; i < w->nt && !rc; i++)
		rc = check_topic(s, &w->t[i], why, cap);
	if (!rc && w->nt && sb_store_get(s, w->t[0].name, &l) == 0) {
		uint64_t next = sb_log_next(l), got = UINT64_MAX;
		if ((rc = ut_append1(l, next, 10, 99, &got)) || got != next)
			rc = fail(why, cap, "append after recovery: %s at %llu, want %llu", sb_strerror(rc),
				  (unsigned long long)got, (unsigned long long)next);
	}
	int crc = sb_store_close(s);
	if (!rc && crc)
		rc = fail(why, cap, "close after recovery: %s", sb_strerror(crc));
	return rc;
}

/* ---- the campaign -------------------------------------------------------------- */

typedef struct campaign {
	unsigned long scenarios, failures, crashed, target;
	unsigned long first_crashes; /* scenarios that crashed the workload (not its recovery) */
	unsigned only_j;             /* SB_CRASHSIM_REPRO: only this recovery crash */
	unsigned long by_mode[FIO_CRASH_NMODES];
} campaign;

static const char *const mode_name[] = {"random", "keep", "drop", "garbage", "reorder", "prefix"};
static const char *const kind_name[] = {"open",  "pwrite", "fdatasync", "ftruncate", "fallocate", "rename",
					"unlink", "pread", "mkdir",     "rmdir",     "close"};

static void fresh(void)
{
	cr_assert_eq(uf_rmrf(env.store), 0);
	cr_assert_eq(uf_rmrf(env.stash), 0);
	cr_assert_eq(mkdir(env.stash, 0755), 0);
}

static fio *mk(int mm)
{
	fio *f = mm ? fio_new_mmap(env.stash) : fio_new(env.stash);
	cr_assert_not_null(f);
	fio_set_sync(f, 0, 0);
	return f;
}

static void report(campaign *c, const run *w, int mm, fio_kind kind, unsigned k, int mode, uint64_t seed,
		   int rk, const char *why)
{
	c->failures++;
	if (c->failures <= 10)
		cr_log_error("crashsim: workload %llu sync %d %s: crash at %s #%u, mode %s seed %llu, "
			     "recovery crash at sync %d (stopped at %s: %s): %s",
			     (unsigned long long)w->wseed, (int)w->sync, mm ? "mmap" : "pwrite", kind_name[kind], k,
			     mode_name[mode], (unsigned long long)seed, rk, w->fail_at ? w->fail_at : "-",
			     sb_strerror(w->fail_rc), why);
}

/* One scenario (plus, when asked, the recovery crashes after it). */
static void scenario(campaign *c, int mm, enum sb_sync sync, uint64_t wseed, fio_kind kind, unsigned k, int mode,
		     uint64_t seed, int recovery_too)
{
	char why[512];
	run w;
	fresh();
	fio *f = mk(mm);
	fio_crash_at(f, kind, k);
	run_workload(env.store, fio_io(f), sync, wseed, &w);
	int crashed = fio_crashed(f);
	fio_crash_apply(f, seed, mode, NULL);
	fio_free(f);
	c->scenarios++;
	c->first_crashes++;
	c->crashed += crashed;
	c->by_mode[mode]++;
	if (!recovery_too || !uf_exists(env.store)) {
		if (check_store(env.store, &w, why, sizeof(why)))
			report(c, &w, mm, kind, k, mode, seed, 0, why);
		return;
	}
	/* keep the crashed state, crash its recovery at each sync in turn */
	char saved[8192];
	snprintf(saved, sizeof(saved), "%s.saved", env.store);
	uf_rmrf(saved);
	char cmd[20000];
	snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", env.store, saved);
	cr_assert_eq(system(cmd), 0);
	for (unsigned j = 1; j < 40 && c->scenarios < c->target; j++) {
		if (c->only_j && j != c->only_j)
			continue;
		if (j > 1) {
			uf_rmrf(env.store);
			snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", saved, env.store);
			cr_assert_eq(system(cmd), 0);
		}
		cr_assert_eq(uf_rmrf(env.stash), 0);
		cr_assert_eq(mkdir(env.stash, 0755), 0);
		f = mk(mm);
		fio_crash_at(f, FIO_FDATASYNC, j);
		sb_log_config cc;
		sb_store *s;
		cfg_of(&cc, SB_SYNC_NEVER);
		cc.retention_bytes = -1;
		cc.retention_ms = -1;
		if (ut_open(env.store, &cc, fio_io(f), &s) == 0)
			sb_store_close(s);
		int again = fio_crashed(f);
		fio_crash_apply(f, seed + j, (int)((seed + j) % FIO_CRASH_NMODES), NULL);
		fio_free(f);
		c->scenarios++;
		if (check_store(env.store, &w, why, sizeof(why)))
			report(c, &w, mm, kind, k, mode, seed, (int)j, why);
		if (!again)
			break; /* recovery needed fewer than j syncs */
	}
	uf_rmrf(saved);
}

static unsigned long env_ul(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoul(v, NULL, 10) : dflt;
}

/* Every sync point x every mode, then as many random points between them. */
static void one_workload(campaign *c, uint64_t wi)
{
	static const enum sb_sync syncs[] = {SB_SYNC_ALWAYS, SB_SYNC_INTERVAL, SB_SYNC_NEVER};
	enum sb_sync sync = syncs[wi % 3];
	int mm = (int)(wi / 3 % 2);
	uint64_t wseed = wi, rng = wi * 31 + 7;
	unsigned calls[FIO_NKINDS];
	run w;

	fresh();
	fio *f = mk(mm);
	run_workload(env.store, fio_io(f), sync, wseed, &w);
	for (int k = 0; k < FIO_NKINDS; k++)
		calls[k] = fio_calls(f, (fio_kind)k);
	fio_free(f);
	cr_assert_eq(w.fail_rc, 0, "workload %llu failed without a crash at %s: %s", (unsigned long long)wseed,
		     w.fail_at, sb_strerror(w.fail_rc));
	char why[512];
	if (check_store(env.store, &w, why, sizeof(why)))
		report(c, &w, mm, FIO_FDATASYNC, 0, 0, 0, 0, why);
	for (unsigned k = 1; k <= calls[FIO_FDATASYNC] && c->scenarios < c->target; k++)
		for (int mode = 0; mode < FIO_CRASH_NMODES && c->scenarios < c->target; mode++)
			scenario(c, mm, sync, wseed, FIO_FDATASYNC, k, mode, ut_splitmix(&rng),
				 (k + (unsigned)mode) % 48 == 0);
	for (unsigned i = 0; i < calls[FIO_FDATASYNC] * 2 && c->scenarios < c->target; i++) {
		fio_kind kind = (fio_kind)(ut_splitmix(&rng) % FIO_NKINDS);
		if (kind == FIO_FDATASYNC || kind == FIO_PREAD || !calls[kind])
			continue;
		unsigned k = 1 + (unsigned)(ut_splitmix(&rng) % calls[kind]);
		scenario(c, mm, sync, wseed, kind, k, (int)(ut_splitmix(&rng) % FIO_CRASH_NMODES), ut_splitmix(&rng), 0);
	}
}

/*
 * SB_CRASHSIM_REPRO="WORKLOAD KIND K MODE SEED [RECOVERY_SYNC]" (as a
 * failure prints them; KIND by name): run that one scenario, FIO_DEBUG=1
 * lists what the crash found unsynced.
 */
Test(crashsim, repro)
{
	const char *v = getenv("SB_CRASHSIM_REPRO");
	char kname[32];
	unsigned long long wi, seed;
	unsigned k, j = 0;
	int mode, kind = -1;
	static const enum sb_sync syncs[] = {SB_SYNC_ALWAYS, SB_SYNC_INTERVAL, SB_SYNC_NEVER};

	if (!v || !*v)
		return;
	cr_assert_geq(sscanf(v, "%llu %31s %u %d %llu %u", &wi, kname, &k, &mode, &seed, &j), 5);
	for (int i = 0; i < FIO_NKINDS; i++)
		if (!strcmp(kname, kind_name[i]))
			kind = i;
	cr_assert_geq(kind, 0);
	campaign c = {.target = 1000, .only_j = j};
	scenario(&c, (int)(wi / 3 % 2), syncs[wi % 3], wi, (fio_kind)kind, k, mode, seed, j != 0);
	cr_expect_eq(c.failures, 0);
}

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "crashsim"), 0);
	check_io = *sb_io_default();
	check_io.fdatasync = no_sync;
}

static void teardown(void)
{
	ut_env_fini(&env);
}

TestSuite(crashsim, .init = setup, .fini = teardown, .timeout = 86400);

Test(crashsim, every_sync_point_and_points_between_under_every_crash_mode)
{
	campaign c = {.target = env_ul("SB_CRASHSIM_SCENARIOS", DEFAULT_SCENARIOS)};
	uint64_t first = env_ul("SB_CRASHSIM_FIRST", 0), wi = first;
	uint64_t t0 = ut_now_ms();

	while (c.scenarios < c.target)
		one_workload(&c, wi++);
	double secs = (double)(ut_now_ms() - t0) / 1000.0;
	fprintf(stderr, "crashsim: %lu scenarios (%lu crashed the workload; workloads %llu..%llu; modes",
		c.scenarios, c.crashed, (unsigned long long)first, (unsigned long long)(wi - 1));
	for (int m = 0; m < FIO_CRASH_NMODES; m++)
		fprintf(stderr, " %s %lu", mode_name[m], c.by_mode[m]);
	fprintf(stderr, "), %lu failures, %.1f s\n", c.failures, secs);
	cr_expect_geq(c.crashed * 10, c.first_crashes * 9,
		      "only %lu of %lu workloads crashed (the others checked less)", c.crashed, c.first_crashes);
	cr_expect_eq(c.failures, 0, "%lu of %lu scenarios failed", c.failures, c.scenarios);
}

/*
 * The key index under crashes: workloads 3, 7, 11, ... (keys repeating and
 * compacted, a key table written per append and merged as they run, under
 * sync always, interval and never in turn), SB_CRASHSIM_KEYS_SCENARIOS
 * (default 300, 120 under ASan) scenarios of each of SB_CRASHSIM_KEYS_WORKLOADS
 * (default 4).
 * The long campaign (tools/crashsim) covers them among all workloads.
 */
Test(crashsim, key_tables_and_compaction)
{
	unsigned long per = env_ul("SB_CRASHSIM_KEYS_SCENARIOS", DEFAULT_KEY_SCENARIOS);
	uint64_t n = env_ul("SB_CRASHSIM_KEYS_WORKLOADS", 4);
	campaign c = {0};

	for (uint64_t i = 0; i < n; i++) {
		c.target = c.scenarios + per;
		one_workload(&c, 3 + 4 * i);
	}
	fprintf(stderr, "crashsim: keys: %lu scenarios of %llu workloads, %lu failures\n", c.scenarios,
		(unsigned long long)n, c.failures);
	cr_expect_eq(c.failures, 0, "%lu of %lu scenarios failed", c.failures, c.scenarios);
}
