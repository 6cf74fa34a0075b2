/*
 * bench_fsync.c - the fsync figures of `streambus bench`: appends under
 * sync=always with 1 and with 8 writer threads, ours against LevelDB's sync
 * puts and (1 writer) a bare pwrite+fdatasync of the same bytes.
 *
 * A disk's fsync latency drifts over seconds (other I/O, the journal, the
 * device's cache), so the two sides are not run one after the other: each
 * repetition runs ours and then LevelDB's, or LevelDB's and then ours (who
 * goes first alternates), and the ratio's range is over those pairs.
 */
#define SB_BENCH_INTERNAL
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "sb_store.h"

#define PAYLOAD 100u

/* n pwrite+fdatasync of rec (len bytes) at records [*next, *next + n) of
 * fd; *next moves on. */
static int bare_loop(int fd, const uint8_t *rec, size_t len, uint64_t n, uint64_t *next, uint64_t *ns)
{
	uint64_t t0 = sb_bench_now();

	for (uint64_t i = 0; i < n; i++, (*next)++) {
		if (pwrite(fd, rec, len, (off_t)(*next * len)) != (ssize_t)len)
			return errno ? -errno : -EIO;
		if (fdatasync(fd) < 0)
			return -errno;
	}
	*ns = sb_bench_now() - t0;
	return 0;
}

static int open_bare(const char *dir, const char *name, uint64_t prealloc, int *fd)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	*fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0)
		return -errno;
	if (prealloc && (fallocate(*fd, 0, 0, (off_t)prealloc) < 0 || fsync(*fd) < 0)) {
		int rc = -errno;
		close(*fd);
		return rc;
	}
	return 0;
}

/* Our side: a store with sync=always, a topic per figure, and the bare
 * files of the 1-writer figure. */
typedef struct ours {
	char path[4096];
	sb_store *s;
	sb_log *l1, *l8;
	int fd_grow, fd_pre;
	uint64_t next_grow, next_pre;
	uint8_t rec[PAYLOAD + 256]; /* a record as stored: rec_len bytes */
	size_t rec_len;
} ours;

static int ours_open(const sb_bench_cfg *c, ours *o)
{
	sb_store_options opt;
	sb_record_in in = {.value = sb_bench_payload(c, 0, PAYLOAD), .value_len = PAYLOAD};
	uint64_t per = c->fsync_ops / (uint64_t)c->reps;
	int rc;

	memset(o, 0, sizeof(*o));
	o->fd_grow = o->fd_pre = -1;
	if (snprintf(o->path, sizeof(o->path), "%s/sync", c->dir) >= (int)sizeof(o->path))
		return -ENAMETOOLONG;
	sb_store_options_default(&opt);
	opt.defaults.sync = SB_SYNC_ALWAYS;
	opt.no_flusher = 1;
	rc = sb_store_open(o->path, &opt, &o->s);
	if (rc)
		return rc;
	if ((rc = sb_store_create(o->s, "w1")) || (rc = sb_store_create(o->s, "w8")) ||
	    (rc = sb_store_get(o->s, "w1", &o->l1)) || (rc = sb_store_get(o->s, "w8", &o->l8)))
		return rc;
	o->rec_len = sb_record_encode(o->rec, sizeof(o->rec), 0, 1, &in);
	if (!o->rec_len)
		return -EOVERFLOW;
	rc = open_bare(o->path, "bare-grow", 0, &o->fd_grow);
	if (!rc)
		rc = open_bare(o->path, "bare-prealloc", per * (uint64_t)c->reps * o->rec_len, &o->fd_pre);
	for (int i = 0; i < 10 && !rc; i++) /* warm up: the first segment pages */
		rc = sb_log_append(o->l1, &in, 1, NULL);
	return rc;
}

static void ours_close(ours *o)
{
	if (o->fd_grow >= 0)
		close(o->fd_grow);
	if (o->fd_pre >= 0)
		close(o->fd_pre);
	if (o->s)
		sb_store_close(o->s);
	if (o->path[0])
		sb_bench_rmtree(o->path);
}

/* One round of the 1-writer figure: bare (growing), ours, bare
 * (preallocated), `per` appends each; us per append. */
static int ours_round1(const sb_bench_cfg *c, ours *o, uint64_t per, double *us, double *grow,
		       double *pre, uint64_t *allocs, sb_bench_val *v)
{
	sb_record_in in = {.value = sb_bench_payload(c, 0, PAYLOAD), .value_len = PAYLOAD};
	uint64_t ns;
	int rc = bare_loop(o->fd_grow, o->rec, o->rec_len, per, &o->next_grow, &ns);

	if (rc) {
		sb_bench_fail_rc(v, "bare pwrite+fdatasync", rc);
		return rc;
	}
	*grow = (double)ns / (double)per / 1e3;
	sb_bench_alloc_start();
	uint64_t t0 = sb_bench_now();
	for (uint64_t i = 0; i < per && !rc; i++)
		rc = sb_log_append(o->l1, &in, 1, NULL);
	ns = sb_bench_now() - t0;
	*allocs += sb_bench_alloc_stop();
	if (rc) {
		sb_bench_fail_rc(v, "sb_log_append", rc);
		return rc;
	}
	*us = (double)ns / (double)per / 1e3;
	rc = bare_loop(o->fd_pre, o->rec, o->rec_len, per, &o->next_pre, &ns);
	if (rc) {
		sb_bench_fail_rc(v, "bare pwrite+fdatasync (preallocated)", rc);
		return rc;
	}
	*pre = (double)ns / (double)per / 1e3;
	return 0;
}

struct writer {
	const sb_bench_cfg *c;
	sb_log *l;
	pthread_barrier_t *go;
	uint64_t n, ns;
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	sb_record_in in = {.value = sb_bench_payload(w->c, 1, PAYLOAD), .value_len = PAYLOAD};

	pthread_barrier_wait(w->go);
	uint64_t t0 = sb_bench_now();
	for (uint64_t i = 0; i < w->n && !w->rc; i++)
		w->rc = sb_log_append(w->l, &in, 1, NULL);
	w->ns = sb_bench_now() - t0;
	return NULL;
}

/* One round of the 8-writer figure: c->threads writers of n appends each. */
static int ours_round_mt(const sb_bench_cfg *c, ours *o, uint64_t n, uint64_t *ns, uint64_t *sum_ns,
			 uint64_t *allocs, sb_bench_val *v)
{
	struct writer w[64];
	pthread_t th[64];
	pthread_barrier_t go;
	int nt = c->threads < 64 ? c->threads : 64, rc = 0;

	pthread_barrier_init(&go, NULL, (unsigned)nt + 1);
	for (int i = 0; i < nt; i++) {
		w[i] = (struct writer){.c = c, .l = o->l8, .go = &go, .n = n};
		if (pthread_create(&th[i], NULL, writer_main, &w[i])) {
			/* Cannot wait on the barrier: it needs every thread. */
			fprintf(stderr, "streambus bench: cannot start writer threads\n");
			abort();
		}
	}
	sb_bench_alloc_start();
	pthread_barrier_wait(&go);
	uint64_t t0 = sb_bench_now();
	*sum_ns = 0;
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		if (w[i].rc && !rc)
			rc = w[i].rc;
		*sum_ns += w[i].ns;
	}
	*ns = sb_bench_now() - t0;
	*allocs += sb_bench_alloc_stop();
	pthread_barrier_destroy(&go);
	if (rc)
		sb_bench_fail_rc(v, "sb_log_append", rc);
	return rc;
}

static double per_fsync(const sb_log_stats *a, const sb_log_stats *b)
{
	return b->syncs > a->syncs ? (double)(b->synced_appends - a->synced_appends) / (double)(b->syncs - a->syncs)
				   : 0;
}

/* The 1-writer figure: c->reps rounds, ours and LevelDB's in turn. */
static void fsync1(const sb_bench_cfg *c, ours *o, sb_bench_ldb_sync *d, sb_bench_val *vo, sb_bench_val *vl)
{
	uint64_t per = c->fsync_ops / (uint64_t)c->reps, allocs = 0, lallocs = 0;
	double us[16], grow[16], pre[16], lus[16];
	sb_log_stats a, b;
	int ldb_ok = d != NULL;

	if (sb_log_get_stats(o->l1, &a)) {
		sb_bench_fail(vo, "sb_log_get_stats", NULL);
		return;
	}
	for (int rep = 0; rep < c->reps; rep++) {
		for (int turn = 0; turn < 2; turn++) {
			if ((turn == 0) == (rep % 2 == 0)) {
				if (ours_round1(c, o, per, &us[rep], &grow[rep], &pre[rep], &allocs, vo))
					return;
			} else if (ldb_ok) {
				uint64_t ns, sum;
				ldb_ok = !sb_bench_ldb_sync_rep(d, 1, per, &ns, &sum, &lallocs, vl);
				lus[rep] = (double)ns / (double)per / 1e3;
			}
		}
	}
	if (sb_log_get_stats(o->l1, &b)) {
		sb_bench_fail(vo, "sb_log_get_stats", NULL);
		return;
	}
	sb_bench_set(vo, us, c->reps, per, allocs);
	double g = sb_bench_median(grow, c->reps), p = sb_bench_median(pre, c->reps);
	sb_bench_extra(vo, "records_per_s", 1e6 / vo->value);
	sb_bench_extra(vo, "records_per_fsync", per_fsync(&a, &b));
	sb_bench_extra(vo, "bare_pwrite_fdatasync_us", g);
	sb_bench_extra(vo, "ratio_vs_bare", vo->value / g);
	sb_bench_extra(vo, "bare_prealloc_pwrite_fdatasync_us", p);
	sb_bench_extra(vo, "ratio_vs_bare_prealloc", vo->value / p);
	vo->how = "latency per append; bare = pwrite of the same 132 record bytes + fdatasync to a plain file "
		  "(growing; and preallocated), in the same rounds as ours";
	if (ldb_ok) {
		sb_bench_set(vl, lus, c->reps, per, lallocs);
		sb_bench_extra(vl, "records_per_s", 1e6 / vl->value);
		vl->how = "leveldb_put with sync=true, one writer";
	}
}

/* The 8-writer figure, likewise. */
static void fsync_mt(const sb_bench_cfg *c, ours *o, sb_bench_ldb_sync *d, sb_bench_val *vo, sb_bench_val *vl)
{
	uint64_t n = c->fsync_ops_mt / (uint64_t)c->reps, allocs = 0, lallocs = 0, osum = 0, lsum = 0;
	uint64_t total = n * (uint64_t)c->threads;
	double r[16], lr[16];
	sb_log_stats a, b;
	int ldb_ok = d != NULL;

	if (sb_log_get_stats(o->l8, &a)) {
		sb_bench_fail(vo, "sb_log_get_stats", NULL);
		return;
	}
	for (int rep = 0; rep < c->reps; rep++) {
		for (int turn = 0; turn < 2; turn++) {
			uint64_t ns, sum;
			if ((turn == 0) == (rep % 2 == 0)) {
				if (ours_round_mt(c, o, n, &ns, &sum, &allocs, vo))
					return;
				r[rep] = (double)total * 1e9 / (double)ns;
				osum += sum;
			} else if (ldb_ok) {
				ldb_ok = !sb_bench_ldb_sync_rep(d, c->threads, n, &ns, &sum, &lallocs, vl);
				lr[rep] = (double)total * 1e9 / (double)ns;
				lsum += sum;
			}
		}
	}
	if (sb_log_get_stats(o->l8, &b)) {
		sb_bench_fail(vo, "sb_log_get_stats", NULL);
		return;
	}
	sb_bench_set(vo, r, c->reps, total, allocs);
	sb_bench_extra(vo, "records_per_fsync", per_fsync(&a, &b));
	sb_bench_extra(vo, "fsyncs", (double)(b.syncs - a.syncs));
	sb_bench_extra(vo, "mean_append_latency_us", (double)osum / (double)(total * (uint64_t)c->reps) / 1e3);
	vo->how = "records/s over all writers, one record per call; records_per_fsync from sb_log_get_stats";
	if (ldb_ok) {
		sb_bench_set(vl, lr, c->reps, total, lallocs);
		sb_bench_extra(vl, "mean_append_latency_us", (double)lsum / (double)(total * (uint64_t)c->reps) / 1e3);
		vl->how = "leveldb_put with sync=true from each writer thread (LevelDB groups them)";
	}
}

void sb_bench_fsync(const sb_bench_cfg *c, sb_bench_val vo[SB_FIG_COUNT], sb_bench_val vl[SB_FIG_COUNT])
{
	sb_bench_ldb_sync *d = NULL;
	ours o;
	int rc = ours_open(c, &o);

	if (rc) {
		sb_bench_fail_rc(&vo[SB_FIG_FSYNC1], "opening the store", rc);
		sb_bench_fail_rc(&vo[SB_FIG_FSYNC8], "opening the store", rc);
		goto out_close;
	}
	if (c->leveldb) {
		d = sb_bench_ldb_sync_open(c, &vl[SB_FIG_FSYNC1]);
		if (!d)
			sb_bench_fail(&vl[SB_FIG_FSYNC8], "leveldb", vl[SB_FIG_FSYNC1].err);
	}
	sb_bench_progress(c, "fsync, 1 writer (ours and LevelDB in turn)");
	fsync1(c, &o, d, &vo[SB_FIG_FSYNC1], &vl[SB_FIG_FSYNC1]);
	sb_bench_progress(c, "fsync, %d writers (ours and LevelDB in turn)", c->threads);
	fsync_mt(c, &o, d, &vo[SB_FIG_FSYNC8], &vl[SB_FIG_FSYNC8]);
	if (d)
		sb_bench_ldb_sync_close(d);
out_close:
	ours_close(&o);
}
