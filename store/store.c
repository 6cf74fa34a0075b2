/*
 * store.c - a store: a directory of topics, its lock, and its threads: the
 * flusher (syncs under the `interval` policy, seals, key tables), the
 * indexer (reads appended keys into the key indexes' runs) and the
 * compressor.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "fsutil.h"
#include "lock.h"
#include "log.h"
#include "sb_store.h"

/* Lock order: a store's mu, then a topic's locks (log.c); sb_store_remove
 * lets go of mu before sb_log_remove takes the topic's compress_mu and
 * append_mu (the key index's open, then the removal: they wait for a
 * compaction round); kick_threads, called by appenders under append_mu,
 * only tries mu. */
struct sb_store {
	char dir[PATH_MAX];
	sb_store_options opt;
	int lock_fd;                 /* flock'ed LOG_DIR/.lock, -1 read-only */
	char *mountpoint;            /* opt.mountpoint's copy (the lock note's), or NULL */
	pthread_mutex_t mu;
	pthread_cond_t cv;           /* wakes the flusher to stop */
	sb_log **topics;             /* [mu] sorted by name */
	size_t ntopics, cap;         /* [mu] */
	sb_log **dead;               /* [mu] removed topics, freed at close */
	size_t ndead, deadcap;       /* [mu] */
	struct refused *refused;     /* refused at open, sorted by name; then immutable */
	size_t nrefused;
	int stopping;                /* [mu] */
	_Atomic int kick;            /* a key index asks the key writer for a turn now */
	_Atomic int ikick;           /* and the indexer */
	_Atomic int ipoll;           /* the indexer looks again within
				      * INDEX_POLL_MS: no kick needs to wake it */
	int flusher_on;
	pthread_t flusher;
	int keywriter_on;
	pthread_t keywriter;
	int indexer_on;
	pthread_t indexer;
	int compressor_on;
	pthread_t compressor;        /* compresses sealed segments (log_compress.c) */
};

/* A topic the open refused: damaged beyond what recovery may cut. */
struct refused {
	char *name;
	int err;
	char *msg;
};

void sb_store_options_default(sb_store_options *o)
{
	memset(o, 0, sizeof(*o));
	sb_log_config_default(&o->defaults);
}

const char *sb_store_dir(const sb_store *s)
{
	return s->dir;
}

/* Index of the first topic with name >= name ([mu]); see find_exact. */
static size_t find_pos(const sb_store *s, const char *name)
{
	size_t lo = 0, hi = s->ntopics;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(sb_log_name(s->topics[mid]), name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of topic `name`, or s->ntopics if there is none ([mu]). */
static size_t find_exact(const sb_store *s, const char *name)
{
	size_t at = find_pos(s, name);

	return at < s->ntopics && strcmp(sb_log_name(s->topics[at]), name) == 0 ? at : s->ntopics;
}

/* Make room for at least n + 1 entries: the capacity doubles until it
 * holds them, however far n jumped (a snapshot can grow by thousands). */
static int grow(sb_log ***arr, size_t *cap, size_t n)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap : 16;
	while (nc <= n) {
		if (nc > SIZE_MAX / 2 / sizeof(**arr))
			return -ENOMEM;
		nc *= 2;
	}
	sb_log **a = realloc(*arr, nc * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = nc;
	return 0;
}

/* A topic's key index has a long unindexed tail, or runs due to be
 * written: the indexer and the flusher take their turns now rather than at
 * their next period. Called by an appender: never waits
 * for mu (remove holds mu and then a topic's compress and append locks). */
static void kick_threads(void *arg)
{
	sb_store *s = arg;

	atomic_store(&s->ikick, 1);
	atomic_store(&s->kick, 1);
	/* While keys are coming the indexer polls (and wakes the flusher
	 * when a table is due): an appender waking them (a futex call) would
	 * have them run on the appender's CPU, ahead of the appender. ikick
	 * before ipoll here, ipoll before ikick in the indexer: one of them
	 * sees the other's store. */
	if (atomic_load(&s->ipoll))
		return;
	if (pthread_mutex_trylock(&s->mu) == 0) {
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
}

static int insert_topic(sb_store *s, sb_log *l)
{
	size_t at = find_pos(s, sb_log_name(l));
	int rc = grow(&s->topics, &s->cap, s->ntopics);

	if (rc)
		return rc;
	memmove(s->topics + at + 1, s->topics + at, (s->ntopics - at) * sizeof(*s->topics));
	s->topics[at] = l;
	s->ntopics++;
	sb_log_set_wake(l, kick_threads, s);
	return 0;
}

/* The refused topic `name`, or NULL. */
static const struct refused *find_refused(const sb_store *s, const char *name)
{
	size_t lo = 0, hi = s->nrefused;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->refused[mid].name, name);
		if (c == 0)
			return &s->refused[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int add_refused(sb_store *s, const char *name, int err, const char *msg)
{
	struct refused *v = realloc(s->refused, (s->nrefused + 1) * sizeof(*v)), r;
	size_t at = 0;

	if (!v)
		return -ENOMEM;
	s->refused = v;
	r.name = strdup(name);
	r.msg = strdup(msg);
	r.err = err;
	if (!r.name || !r.msg) {
		free(r.name);
		free(r.msg);
		return -ENOMEM;
	}
	while (at < s->nrefused && strcmp(v[at].name, name) < 0)
		at++;
	memmove(v + at + 1, v + at, (s->nrefused - at) * sizeof(*v));
	v[at] = r;
	s->nrefused++;
	return 0;
}

static int topic_config(const sb_store *s, const char *name, sb_log_config *cfg)
{
	const char *why = NULL;
	int rc;

	*cfg = s->opt.defaults;
	if (s->opt.topic_config && (rc = s->opt.topic_config(s->opt.topic_config_arg, name, cfg)))
		return rc;
	rc = sb_log_config_check(cfg, &why);
	if (rc && s->opt.report)
		s->opt.report(s->opt.report_arg, name, why);
	return rc;
}

/* Read-only, beside a writer (a mount), a file listed may be gone before it
 * is opened: retention or rm dropped the oldest segments, compaction or
 * compression replaced one. Each such miss lists the directory anew; a
 * topic that misses every time is refused as any other unreadable one. */
#define RO_OPEN_TRIES 100

static int open_log(sb_store *s, const char *name, const sb_log_config *cfg, sb_log **l, char *why,
		    size_t whycap)
{
	int rc, tries = 0;

	do
		rc = sb_log_open_dir(s->dir, name, cfg, &s->opt, 0, l, why, whycap);
	while (rc == -ENOENT && s->opt.read_only && ++tries < RO_OPEN_TRIES);
	return rc;
}

static int open_topics(sb_store *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat st;
		char p[PATH_MAX], why[512] = "";
		sb_log_config cfg;
		sb_log *l;

		if (!sb_topic_name_valid(de->d_name))
			continue;
		if (s->opt.read_only && s->opt.only_topic && strcmp(de->d_name, s->opt.only_topic))
			continue;
		if (sb_path(p, s->dir, de->d_name) || stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		rc = topic_config(s, de->d_name, &cfg);
		if (!rc)
			rc = open_log(s, de->d_name, &cfg, &l, why, sizeof(why));
		if (!rc && (rc = insert_topic(s, l)))
			sb_log_close(l);
		if (rc == SB_ECORRUPT || rc == SB_EVERSION || (s->opt.read_only && rc && rc != -ENOMEM)) {
			/* Damage: the other topics open all the same. (Recovery
			 * has reported SB_ECORRUPT's details itself.) Read-only,
			 * so does a topic that cannot be read (a file the
			 * reader may not open): the reader asked for another. */
			if (rc != SB_ECORRUPT && s->opt.report) {
				char msg[600];
				snprintf(msg, sizeof(msg), "%s: %s", rc == SB_EVERSION ? "refused" : "cannot open", why);
				s->opt.report(s->opt.report_arg, de->d_name, msg);
			}
			rc = add_refused(s, de->d_name, rc, why);
		}
		if (rc) {
			if (s->opt.report) {
				char msg[256];
				snprintf(msg, sizeof(msg), "cannot open: %s", sb_strerror(rc));
				s->opt.report(s->opt.report_arg, de->d_name, msg);
			}
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Snapshot every topic into *snap (cap *cap): how many, 0 on failure. [mu] */
static size_t snapshot(sb_store *s, sb_log ***snap, size_t *cap)
{
	size_t n = s->ntopics;

	if (!n || grow(snap, cap, n))
		return 0;
	memcpy(*snap, s->topics, n * sizeof(**snap));
	return n;
}

/* A background thread's wait: ms, or until cv is signalled. [mu] */
static void wait_ms(sb_store *s, long long ms)
{
	long long until = sb_now_ns() + ms * 1000000LL;
	struct timespec ts = {until / 1000000000LL, until % 1000000000LL};

	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Compress the sealed segments of topics whose `compression` is set, at a
 * lower CPU priority than the appenders (nice 10, best effort; each
 * segment's build at SCHED_IDLE: log_compress.c). */
static void *compressor_main(void *arg)
{
	sb_store *s = arg;
	sb_log **snap = NULL;
	size_t snapcap = 0;

	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		size_t n = snapshot(s, &snap, &snapcap);
		pthread_mutex_unlock(&s->mu);
		for (size_t i = 0; i < n; i++) {
			const sb_log_config *lc = sb_log_get_config(snap[i]);
			if (!(lc->cleanup & SB_CLEANUP_COMPACT) && lc->compression == SB_COMPRESS_NONE)
				continue;
			pthread_mutex_lock(&s->mu);
			int stop = s->stopping;
			pthread_mutex_unlock(&s->mu);
			if (stop)
				break;
			/* Failures (a full disk) are tried again next time. A
			 * compacted topic is not compressed (compressed blocks
			 * have dense offsets; format.h). */
			if (lc->cleanup & SB_CLEANUP_COMPACT) {
				int64_t now = sb_now_ns();
				if (sb_log_compact_due(snap[i], now))
					sb_log_compact(snap[i], now, NULL);
			} else {
				sb_log_compress_bg(snap[i], NULL);
			}
		}
		pthread_mutex_lock(&s->mu);
		if (s->stopping)
			break;
		wait_ms(s, 200);
	}
	pthread_mutex_unlock(&s->mu);
	free(snap);
	return NULL;
}

static void *flusher_main(void *arg)
{
	sb_store *s = arg;
	sb_log **snap = NULL;
	size_t snapcap = 0;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		long long period = 100;
		size_t n = snapshot(s, &snap, &snapcap);
		for (size_t i = 0; i < n; i++) {
			const sb_log_config *c = sb_log_get_config(snap[i]);
			if (c->sync == SB_SYNC_INTERVAL && c->sync_interval_ms < period)
				period = c->sync_interval_ms;
		}
		pthread_mutex_unlock(&s->mu);
		long long now = sb_now_ns();
		for (size_t i = 0; i < n; i++) {
			/* stopping: the close syncs what is left, topic by topic,
			 * saying how far it got (a pass over a backlog of sealed
			 * segments in every topic took 20 s before the close
			 * began, and a waiting opener gave up: found by a tester) */
			pthread_mutex_lock(&s->mu);
			int stop = s->stopping;
			pthread_mutex_unlock(&s->mu);
			if (stop)
				break;
			sb_log_flush_due(snap[i], now);
		}
		pthread_mutex_lock(&s->mu);
		if (s->stopping)
			break;
		wait_ms(s, period);
	}
	pthread_mutex_unlock(&s->mu);
	free(snap);
	return NULL;
}

/* The key writer: writes the key indexes' tables and merges them
 * (sb_log_keys_maintain) when the indexer finds one due (kick) and every
 * KEYS_PERIOD_MS. Apart from the flusher: its syncs of sealed segments
 * (128 MiB each: a few hundred ms) held the tables back while the keys
 * kept coming, up to the appender's bound, and the appender wrote them
 * itself (docs/BENCHMARKS.md, "Sustained keyed appends"). */
#define KEYS_PERIOD_MS 100
static void *keywriter_main(void *arg)
{
	sb_store *s = arg;
	sb_log **snap = NULL;
	size_t snapcap = 0;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		size_t n = snapshot(s, &snap, &snapcap);
		pthread_mutex_unlock(&s->mu);
		for (size_t i = 0; i < n; i++)
			sb_log_keys_maintain(snap[i]);
		pthread_mutex_lock(&s->mu);
		if (s->stopping)
			break;
		if (!atomic_exchange(&s->kick, 0))
			wait_ms(s, KEYS_PERIOD_MS);
	}
	pthread_mutex_unlock(&s->mu);
	free(snap);
	return NULL;
}

/* The indexer: keeps the key indexes' runs up with the appends (a batch
 * at a time, as they come), apart from the flusher, whose table writes and
 * syncs take long: no get waits to index a long tail, no appender indexes
 * for a flusher busy writing. While keys come it looks again every
 * INDEX_POLL_MS at the topics that had some (unwoken: an appender's wake-up,
 * a futex call, would have it run on the appender's CPU, ahead of the
 * appender), and at all of them when kicked (at most every INDEX_FULL_MS
 * while polling: a pass over thousands of topics costs) or every
 * INDEX_IDLE_MS. At nice 5 (best effort): where it and the appenders
 * share the CPUs, the appenders come first, and when they outrun it they
 * sort the keys themselves (keyidx.h). Figures: docs/BENCHMARKS.md,
 * "Sustained keyed appends". */
#define INDEX_POLL_MS 1
#define INDEX_FULL_MS 10
#define INDEX_IDLE_MS 100

/* Index logs l[0..n); those that had keys to read stay in l (in place).
 * Returns how many; *due: a key table is due in one of them. */
static size_t index_pass(sb_log **l, size_t n, int *due)
{
	size_t hot = 0;

	for (size_t i = 0; i < n; i++) {
		int r = sb_log_index_keys(l[i]);
		*due |= r == 2;
		if (r)
			l[hot++] = l[i];
	}
	return hot;
}

static void *indexer_main(void *arg)
{
	sb_store *s = arg;
	sb_log **snap = NULL;
	size_t snapcap = 0, n = 0;
	long long full_at = 0; /* when the last pass over every topic began */

	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5);

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		long long now = sb_now_ns(), since = now - full_at;
		/* A kick lost to a held mu (kick_threads only tries it) waits
		 * INDEX_FULL_MS at most. */
		if (since >= INDEX_IDLE_MS * 1000000LL ||
		    (atomic_load(&s->ikick) && (!n || since >= INDEX_FULL_MS * 1000000LL))) {
			atomic_store(&s->ikick, 0);
			n = snapshot(s, &snap, &snapcap);
			full_at = now;
		}
		int due = 0;
		if (n) {
			pthread_mutex_unlock(&s->mu);
			n = index_pass(snap, n, &due);
			/* ipoll cleared before ikick is looked at (kick_threads) */
			atomic_store(&s->ipoll, n > 0);
			pthread_mutex_lock(&s->mu);
		}
		if (s->stopping)
			break;
		if (due) { /* the flusher's turn */
			atomic_store(&s->kick, 1);
			pthread_cond_broadcast(&s->cv);
		}
		if (n || !atomic_load(&s->ikick))
			wait_ms(s, n ? INDEX_POLL_MS : INDEX_FULL_MS);
	}
	pthread_mutex_unlock(&s->mu);
	free(snap);
	return NULL;
}

/* Closing topics in parallel: each close syncs and publishes its own files,
 * so thousands of topics close in the time of a few hundred. */
#define CLOSE_THREADS 8
#define CLOSE_PER_THREAD 64
/* The lock note says how far the close got, at most this often: an opener
 * waiting for this store waits on while it moves (lock.c). */
#define CLOSE_NOTE_MS 100

typedef struct closer {
	sb_store *s;
	_Atomic size_t next;         /* the next topic to close */
	_Atomic size_t done;         /* topics closed */
	_Atomic uint64_t steps;      /* steps of their closes (sb_log_set_close_step) */
	_Atomic int rc;              /* the first error */
	pthread_mutex_t note_mu;     /* one writer of the note at a time */
	long long noted_ms;          /* [note_mu] when the note was last written */
} closer;

/* Write `done` into the lock note, if CLOSE_NOTE_MS passed since the last
 * time (or `now`); a thread writing it meanwhile tells for this one. */
static void note_progress(closer *c, size_t done, int now)
{
	sb_store *s = c->s;

	if (s->lock_fd < 0 || pthread_mutex_trylock(&c->note_mu))
		return;
	long long t = sb_mono_ms();
	if (now || t - c->noted_ms >= CLOSE_NOTE_MS) {
		sb_lock_note_closing(s->lock_fd, s->dir, s->mountpoint, done, s->ntopics, atomic_load(&c->steps));
		c->noted_ms = t;
	}
	pthread_mutex_unlock(&c->note_mu);
}

/* A step inside one topic's close (a sealed segment synced, or its index
 * files saved): a topic with a backlog of thousands takes seconds, and
 * the note says it moves. */
static void close_step(void *arg)
{
	closer *c = arg;

	atomic_fetch_add(&c->steps, 1);
	note_progress(c, atomic_load(&c->done), 0);
}

static void *close_some(void *arg)
{
	closer *c = arg;
	size_t i;

	while ((i = atomic_fetch_add(&c->next, 1)) < c->s->ntopics) {
		sb_log_set_close_step(c->s->topics[i], close_step, c);
		int r = sb_log_close(c->s->topics[i]);
		int none = 0;
		if (r)
			atomic_compare_exchange_strong(&c->rc, &none, r);
		note_progress(c, atomic_fetch_add(&c->done, 1) + 1, 0);
	}
	return NULL;
}

/* Close every topic (the first error is returned), release the lock, free. */
static int store_free(sb_store *s)
{
	closer c = {.s = s, .note_mu = PTHREAD_MUTEX_INITIALIZER};
	pthread_t th[CLOSE_THREADS];
	size_t n = 0, want = s->ntopics / CLOSE_PER_THREAD;

	note_progress(&c, 0, 1);
	for (; n < want && n < CLOSE_THREADS; n++)
		if (pthread_create(&th[n], NULL, close_some, &c) != 0)
			break;
	close_some(&c);
	while (n)
		pthread_join(th[--n], NULL);
	int rc = atomic_load(&c.rc);
	for (size_t i = 0; i < s->ndead; i++)
		sb_log_close(s->dead[i]);
	for (size_t i = 0; i < s->nrefused; i++) {
		free(s->refused[i].name);
		free(s->refused[i].msg);
	}
	free(s->refused);
	free(s->topics);
	free(s->dead);
	if (s->lock_fd >= 0)
		s->opt.io->close(s->opt.io->ctx, s->lock_fd);
	free(s->mountpoint);
	pthread_mutex_destroy(&c.note_mu);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	return rc;
}

/* Stop and join the background threads (those started). */
static void stop_threads(sb_store *s)
{
	if (s->flusher_on) {
		pthread_mutex_lock(&s->mu);
		s->stopping = 1;
		/* a round of compaction in progress (thousands of segments, a
		 * sync each) would hold the close, and the unmount, for long */
		for (size_t i = 0; i < s->ntopics; i++)
			sb_log_stop_rewrites(s->topics[i]);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->flusher, NULL);
		if (s->keywriter_on)
			pthread_join(s->keywriter, NULL);
		if (s->indexer_on)
			pthread_join(s->indexer, NULL);
		if (s->compressor_on)
			pthread_join(s->compressor, NULL);
	}
}

int sb_store_open(const char *dir, const sb_store_options *opt, sb_store **out)
{
	sb_store_options dflt;
	sb_store *s;
	int rc;

	if (!opt) {
		sb_store_options_default(&dflt);
		opt = &dflt;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opt = *opt;
	if (!s->opt.io)
		s->opt.io = sb_io_default();
	s->lock_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (snprintf(s->dir, sizeof(s->dir), "%s", dir) >= (int)sizeof(s->dir)) {
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	rc = sb_log_config_check(&s->opt.defaults, NULL);
	if (rc)
		goto out_free;
	if (!s->opt.read_only) {
		/* LOG_DIR's own name must be durable before anything in it is
		 * acknowledged: fsync its parent, also when it exists (a process
		 * crash may have left its creation unsynced; best effort then). */
		rc = s->opt.io->mkdir(s->opt.io->ctx, dir, 0755);
		if (rc && rc != -EEXIST)
			goto out_free;
		int made = rc == 0;
		rc = sb_fsync_parent(s->opt.io, dir);
		if (rc && made)
			goto out_free;
		if ((rc = sb_lock_take(s->dir, &s->opt, &s->lock_fd)))
			goto out_free;
		if (s->opt.mountpoint && !(s->mountpoint = strdup(s->opt.mountpoint))) {
			rc = -ENOMEM;
			goto out_free;
		}
	} else {
		sb_lock_wait_finishing(s->dir, &s->opt);
	}
	rc = open_topics(s);
	if (rc)
		goto out_free;
	if (!s->opt.read_only && !s->opt.no_flusher) {
		if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0) {
			rc = -EAGAIN;
			goto out_free;
		}
		s->flusher_on = 1;
		if (pthread_create(&s->keywriter, NULL, keywriter_main, s) != 0) {
			rc = -EAGAIN;
			goto out_stop;
		}
		s->keywriter_on = 1;
		/* Without it the key writer indexes on its turns. */
		if (pthread_create(&s->indexer, NULL, indexer_main, s) == 0)
			s->indexer_on = 1;
		if (pthread_create(&s->compressor, NULL, compressor_main, s) == 0)
			s->compressor_on = 1;
	}
	*out = s;
	return 0;
out_stop:
	stop_threads(s);
out_free:
	store_free(s);
	return rc;
}

int sb_store_close(sb_store *s)
{
	if (!s)
		return 0;
	stop_threads(s);
	return store_free(s);
}

int sb_store_create(sb_store *s, const char *name)
{
	sb_log_config cfg;
	sb_log *l;
	int rc;

	if (!sb_topic_name_valid(name))
		return -EINVAL;
	if (s->opt.read_only)
		return -EROFS;
	pthread_mutex_lock(&s->mu);
	if (find_exact(s, name) < s->ntopics || find_refused(s, name)) {
		rc = -EEXIST;
		goto out_unlock;
	}
	rc = topic_config(s, name, &cfg);
	if (rc)
		goto out_unlock;
	rc = sb_log_open_dir(s->dir, name, &cfg, &s->opt, 1, &l, NULL, 0);
	if (rc)
		goto out_unlock;
	rc = insert_topic(s, l);
	if (rc)
		sb_log_close(l);
out_unlock:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Where l is in s->topics (s->ntopics if not there). [mu] */
static size_t find_log(const sb_store *s, const sb_log *l)
{
	size_t i = 0;

	while (i < s->ntopics && s->topics[i] != l)
		i++;
	return i;
}

/*
 * The topic's removal runs without mu: it waits for a compaction round or
 * compression pass of that topic, which must not hold up every other
 * topic's calls meanwhile. Whoever removed it takes it out of the table
 * (another removal at once gets -ENOENT from sb_log_remove).
 */
int sb_store_remove(sb_store *s, const char *name)
{
	int rc;

	if (s->opt.read_only)
		return -EROFS;
	pthread_mutex_lock(&s->mu);
	size_t at = find_exact(s, name);
	if (at == s->ntopics) {
		const struct refused *r = find_refused(s, name);
		rc = r ? r->err : -ENOENT;
		goto out_unlock;
	}
	sb_log *l = s->topics[at];
	pthread_mutex_unlock(&s->mu);
	rc = sb_log_remove(l);
	if ((rc && !sb_log_removed(l)) || rc == -ENOENT)
		return rc; /* refused (records in it): nothing changed; or not ours */
	/* Removed, or its files were and its directory could not be (a file
	 * of someone else's in it): gone from this store either way, never
	 * half there; its error is the caller's. */
	pthread_mutex_lock(&s->mu);
	at = find_log(s, l);
	int more = grow(&s->dead, &s->deadcap, s->ndead);
	if (!more && at < s->ntopics) {
		s->dead[s->ndead++] = l;
		memmove(s->topics + at, s->topics + at + 1, (s->ntopics - at - 1) * sizeof(*s->topics));
		s->ntopics--;
	} else if (!rc) {
		rc = more; /* listed, removed: every call on it -ENOENT */
	}
	/* the removal is durable only once LOG_DIR is synced: its error is
	 * the caller's (the topic is gone from this store either way) */
	int sync_rc = sb_fsync_dir(s->opt.io, s->dir);
	if (!rc)
		rc = sync_rc;
out_unlock:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int sb_store_get(sb_store *s, const char *name, sb_log **out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&s->mu);
	size_t at = find_exact(s, name);
	if (at < s->ntopics) {
		*out = s->topics[at];
		rc = 0;
	} else {
		const struct refused *r = find_refused(s, name);
		if (r)
			rc = r->err;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int sb_store_list_refused(sb_store *s, sb_refused_fn fn, void *arg)
{
	int rc = 0;

	for (size_t i = 0; i < s->nrefused && !rc; i++)
		rc = fn(arg, s->refused[i].name, s->refused[i].err, s->refused[i].msg);
	return rc;
}

int sb_store_list(sb_store *s, int (*fn)(void *arg, const char *name, sb_log *log), void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->ntopics && !rc; i++)
		rc = fn(arg, sb_log_name(s->topics[i]), s->topics[i]);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int sb_store_retain(sb_store *s, int64_t now_ns)
{
	int rc = 0;

	/* Topics are only ever removed to the graveyard, so the pointers
	 * stay valid; retention itself runs without the store lock. */
	pthread_mutex_lock(&s->mu);
	size_t n = s->ntopics;
	sb_log **snap = malloc((n ? n : 1) * sizeof(*snap));
	if (snap && n)
		memcpy(snap, s->topics, n * sizeof(*snap));
	pthread_mutex_unlock(&s->mu);
	if (!snap)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = sb_log_retain(snap[i], now_ns, NULL);
		if (r && !rc && r != -ENOENT)
			rc = r;
	}
	free(snap);
	return rc;
}

int sb_store_is_topic_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t base;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d)) != NULL)
		found = sb_seg_name_parse(e->d_name, SB_SEG_SUFFIX, &base) == 0 ||
			strcmp(e->d_name, SB_META_NAME) == 0;
	closedir(d);
	return found;
}
