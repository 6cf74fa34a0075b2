/*
 * notify.c - tell the kernel what changed behind its back, and retention.
 *
 * Appends (by anyone), deletions and retention change a topic's .log size and
 * its directory. Handlers only kick this thread; it compares each topic's
 * extent with what it last told the kernel and invalidates the attributes of
 * the .log and the directory that changed. Notifications never come from a
 * request handler (that can deadlock in the kernel), and a burst of appends
 * costs one notification. Every second it also runs retention.
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define COALESCE_NS (10 * 1000 * 1000)
#define PERIOD_NS (1000LL * 1000 * 1000)
#define INVAL_MAX 100000 /* names invalidated per topic and pass; older ones time out */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Records below start are gone (retention, or rm, whose dentries the
 * kernel dropped already): no name a lookup gave the kernel may outlive
 * them. Only those are told; the kernel caches no other record name. */
static void inval_gone(sbfs *fs, sbfs_tentry *te, uint64_t start)
{
	uint64_t from = te->seen_off;
	if (start - from > INVAL_MAX)
		from = start - INVAL_MAX;
	uint64_t lo = atomic_load(&te->named_lo);
	uint64_t hi = atomic_load(&te->named_hi);
	uint64_t to = hi < start ? hi + 1 : start;
	if (lo > from)
		from = lo;
	char name[21];
	for (uint64_t o = from; o < to; o++) {
		sbfs_fmt_offset(name, o);
		fuse_lowlevel_notify_inval_entry(fs->se, sbfs_ino(te->id, SBFS_L_DIR), name, 20);
	}
	/* what is below start is told (or timed out); a lookup that lowers
	 * named_lo meanwhile keeps its lower value */
	while (lo < start && !atomic_compare_exchange_weak(&te->named_lo, &lo, start))
		;
}

static void scan(sbfs *fs)
{
	sbfs_tentry **v;
	size_t n;
	if (sbfs_topic_snapshot(fs, &v, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		sbfs_tentry *te = v[i];
		sbfs_tentry *live;
		sbfs_topic *t;
		int removed = sbfs_topic_by_id(fs, te->id, &live, &t) != 0;
		sbfs_bounds bd = { 0 };
		uint64_t base = 0;
		if (!removed) {
			int rc = sbfs_drop_hidden(fs, te, 0);
			if (rc)
				sbfs_log("%s: removing records: %s", te->name, sbfs_strerror(rc));
			/* offsets only (.log's size moves with them): a backend
			 * need not compute stream positions for this */
			if (sbfs_offsets_of(fs, te, t, &bd))
				continue; /* cannot tell now: next pass */
			base = sbfs_log_base_offset(te, &bd);
		}
		if (removed == te->seen_removed && base == te->seen_base &&
		    bd.next == te->seen_next && (removed || bd.start == te->seen_off))
			continue;
		if (!removed && bd.start > te->seen_off)
			inval_gone(fs, te, bd.start);
		if (!removed)
			te->seen_off = bd.start;
		te->seen_removed = removed;
		te->seen_base = base;
		te->seen_next = bd.next;
		/* -ENOENT: the kernel does not know the inode; fine */
		fuse_lowlevel_notify_inval_inode(fs->se, sbfs_ino(te->id, SBFS_L_LOG), -1, 0);
		fuse_lowlevel_notify_inval_inode(fs->se, sbfs_ino(te->id, SBFS_L_DIR), -1, 0);
	}
	free(v);
}

static void *run(void *arg)
{
	sbfs *fs = arg;
	int64_t last_retain = mono_ns();
	pthread_mutex_lock(&fs->nlock);
	while (!fs->stop) {
		if (!fs->kick) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += 1;
			pthread_cond_timedwait(&fs->ncond, &fs->nlock, &dl);
		}
		if (fs->stop)
			break;
		int kicked = fs->kick;
		fs->kick = 0;
		pthread_mutex_unlock(&fs->nlock);
		if (kicked) {
			/* let a burst of appends finish: one notification for it */
			struct timespec ts = { 0, COALESCE_NS };
			nanosleep(&ts, NULL);
		}
		if (mono_ns() - last_retain >= PERIOD_NS) {
			int rc = fs->b->ops->retain(fs->b, real_ns());
			if (rc)
				sbfs_log("retention: %s", sbfs_strerror(rc));
			last_retain = mono_ns();
		}
		sbfs_pending_expire(fs);
		scan(fs);
		pthread_mutex_lock(&fs->nlock);
	}
	pthread_mutex_unlock(&fs->nlock);
	return NULL;
}

int sbfs_notify_start(sbfs *fs)
{
	/* what the kernel was told at mount: the current extents */
	sbfs_tentry **v;
	size_t n;
	if (sbfs_topic_snapshot(fs, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			sbfs_tentry *live;
			sbfs_topic *t;
			sbfs_bounds bd = { 0 };
			v[i]->seen_removed = sbfs_topic_by_id(fs, v[i]->id, &live, &t) != 0;
			if (!v[i]->seen_removed && sbfs_offsets_of(fs, v[i], t, &bd))
				bd = (sbfs_bounds){ 0 }; /* not known: nothing seen yet */
			v[i]->seen_base = bd.start; /* no reader yet */
			v[i]->seen_off = bd.start;
			v[i]->seen_next = bd.next;
		}
		free(v);
	}
	fs->stop = 0;
	int rc = pthread_create(&fs->notifier, NULL, run, fs);
	if (rc)
		return -rc;
	fs->notifier_started = 1;
	return 0;
}

void sbfs_notify_stop(sbfs *fs)
{
	if (!fs->notifier_started)
		return;
	pthread_mutex_lock(&fs->nlock);
	fs->stop = 1;
	pthread_cond_signal(&fs->ncond);
	pthread_mutex_unlock(&fs->nlock);
	pthread_join(fs->notifier, NULL);
	fs->notifier_started = 0;
}

void sbfs_drop_all_hidden(sbfs *fs)
{
	sbfs_tentry **v;
	size_t n;
	if (sbfs_topic_snapshot(fs, &v, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		sbfs_tentry *live;
		if (sbfs_topic_by_id(fs, v[i]->id, &live, NULL) != 0)
			continue;
		int rc = sbfs_drop_hidden(fs, v[i], 1);
		if (rc)
			sbfs_log("%s: removing records: %s", v[i]->name, sbfs_strerror(rc));
	}
	free(v);
}
