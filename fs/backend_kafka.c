/*
 * backend_kafka.c - the backend interface over a Kafka cluster (SPEC §8).
 *
 * A topic of one partition is a backend topic of the same name (a kpart).
 * Records are read through a bounded cache of fetched chunks
 * (kafka_cache.c): reading record after record, or the whole .log, fetches
 * each chunk once; so does listing a partition of a compacted topic (ls
 * lists only offsets that hold a record: compaction leaves gaps, and Kafka
 * tells them only by a fetch; kpart_next_present). Other topics (their
 * cleanup.policy asked once: kpart_skips_gaps) are listed from their
 * watermarks, as is any partition's extent alone (rm, the notifier, stat
 * of the directory).
 *
 * The stream model. Kafka has offsets, no byte positions, so the backend
 * makes them: a partition's stream starts (position 0) at the low watermark
 * it first saw, and each record's payload follows the one before it. Sizes
 * are learnt by reading the partition through once (first bounds() of it,
 * at most timeout_ms; then as it grows): the index keeps one (offset,
 * position) entry every IX_STRIDE bytes and the end (ix_next, ix_end), so a
 * position is found by binary search and a walk of at most IX_STRIDE bytes
 * of records, cached like any read. `.log`'s size is ix_end minus the
 * position of the low watermark; `tail -n` and `dd skip=` read where they
 * ask. Records deleted by the cluster before they were indexed add nothing
 * (positions stay increasing).
 *
 * Appends wait for the cluster's acknowledgement (kc produce); when they
 * land right at the index's end, their sizes extend it without a fetch.
 * A refresher thread asks every partition's watermarks every REFRESH_MS
 * (so `tail -f` sees other producers' records within a second) and indexes
 * what arrived.
 *
 * Locks: kbackend.tlock (the topic table) before kpart.xlock (one indexer
 * or fetcher of stream positions) before kpart.lock (the fields); the
 * cache's own lock is innermost. No lock is held while waiting on the
 * cluster except xlock.
 */
#include "kafka.h"
#include "kafka_cache.h"
#include "kafka_part.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static kpart *P(sbfs_topic *t) { return (kpart *)t; }

/* ---- the interface ---- */

static int kb_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 249 || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int kb_get(sbfs_backend *base, const char *name, sbfs_topic **out)
{
	kbackend *b = (kbackend *)base;
	pthread_mutex_lock(&b->tlock);
	kpart *p = ktab_find(b, name);
	int stale = ktab_now_ms() - b->listed_ms >= LIST_MIN_MS;
	pthread_mutex_unlock(&b->tlock);
	if (!p && stale) {
		/* made by another client since we last looked? */
		int rc = ktab_refresh(b, NULL);
		if (rc)
			return rc;
		pthread_mutex_lock(&b->tlock);
		p = ktab_find(b, name);
		pthread_mutex_unlock(&b->tlock);
	}
	if (!p)
		return -ENOENT;
	*out = (sbfs_topic *)p;
	return 0;
}

static int kb_list(sbfs_backend *base, sbfs_topic_fn fn, void *arg)
{
	kbackend *b = (kbackend *)base;
	kseen s;
	int rc = ktab_refresh(b, &s);
	if (rc)
		return rc;
	for (size_t i = 0; i < s.n; i++) {
		pthread_mutex_lock(&b->tlock);
		kpart *p = ktab_find(b, s.names[i]);
		pthread_mutex_unlock(&b->tlock);
		if (p && rc == 0)
			rc = fn(arg, s.names[i], (sbfs_topic *)p);
	}
	ktab_seen_free(&s);
	return rc;
}

static int kb_list_refused(sbfs_backend *b, sbfs_refused_fn fn, void *arg)
{
	(void)b, (void)fn, (void)arg;
	return 0;
}

static int kb_create(sbfs_backend *base, const char *name)
{
	kbackend *b = (kbackend *)base;
	if (!kb_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&b->tlock);
	int exists = ktab_find(b, name) != NULL;
	pthread_mutex_unlock(&b->tlock);
	if (exists)
		return -EEXIST;
	int rc = b->c->ops->create_topic(b->c, name, b->cfg.num_partitions, b->cfg.replication);
	if (rc)
		return rc;
	return ktab_refresh(b, NULL);
}

static int kb_remove(sbfs_backend *base, const char *name)
{
	kbackend *b = (kbackend *)base;
	pthread_mutex_lock(&b->tlock);
	kpart *p = ktab_find(b, name);
	pthread_mutex_unlock(&b->tlock);
	if (!p)
		return -ENOENT;
	/* a topic of several partitions: every one must be empty */
	kpart *const *v = p->nparts ? p->parts : &p;
	size_t n = p->nparts ? p->nparts : 1;
	for (size_t i = 0; i < n; i++) {
		int rc = kpart_update_wm(v[i]);
		if (rc)
			return rc;
		pthread_mutex_lock(&v[i]->lock);
		int empty = v[i]->lo >= v[i]->hi;
		pthread_mutex_unlock(&v[i]->lock);
		if (!empty)
			return -ENOTEMPTY;
	}
	if (!b->cfg.allow_topic_delete)
		return -EPERM;
	int rc = b->c->ops->delete_topic(b->c, name);
	if (rc)
		return rc;
	pthread_mutex_lock(&b->tlock);
	for (size_t i = 0; i <= n; i++) {
		kpart *q = i < n ? v[i] : p;
		pthread_mutex_lock(&q->lock);
		q->removed = 1;
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_unlock(&b->tlock);
	for (size_t i = 0; i < n; i++)
		kcache_drop(b->cache, v[i]);
	return 0;
}

/* ---- a topic of several partitions (backend.h: parts) ---- */

static int kb_parts(sbfs_topic *t, uint32_t *n)
{
	*n = P(t)->nparts;
	return 0;
}

static int kb_part_get(sbfs_topic *t, uint32_t i, sbfs_topic **out)
{
	kpart *g = P(t);
	if (i >= g->nparts)
		return -ENOENT;
	*out = (sbfs_topic *)g->parts[i];
	return 0;
}


static int removed(kpart *p)
{
	pthread_mutex_lock(&p->lock);
	int r = p->removed;
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* Appended records at offs[] (timestamps as produced): the high watermark
 * moves; when they follow each other they go into the cache (a reader of
 * what was just written, and the directory's mtime, need no fetch), and
 * when they continue the index, their sizes extend it. */
enum { CACHE_TAIL = 64 }; /* own records cached after an append */

static void appended(kpart *p, const kc_rec *recs, size_t n, const int64_t *offs)
{
	int64_t last = offs[n - 1];
	int contiguous = last - offs[0] == (int64_t)n - 1;
	/* the newest few only: what a stat of the directory (its newest
	 * record's time) or a look at what was just written asks for; a
	 * bulk append does not copy itself into the cache */
	size_t tail = n > CACHE_TAIL ? n - CACHE_TAIL : 0;
	kchunk *ch = NULL;
	if (contiguous && kchunk_new(p, offs[tail], &ch) == 0) {
		for (size_t i = tail; ch && i < n; i++) {
			kc_rec r = recs[i];
			r.offset = offs[i];
			if (kchunk_add(ch, &r)) {
				kchunk_release(p->b->cache, ch);
				ch = NULL;
			}
		}
		if (ch) {
			kcache_put(p->b->cache, ch);
			kchunk_release(p->b->cache, ch);
		}
	}
	pthread_mutex_lock(&p->lock);
	if (last + 1 > p->hi)
		p->hi = last + 1;
	if (recs[n - 1].timestamp_ms > p->seen_ms)
		p->seen_ms = recs[n - 1].timestamp_ms;
	int follows = contiguous && p->ix_init && offs[0] == p->ix_next;
	for (size_t i = 0; follows && i < n; i++)
		if (kpart_ix_note(p, offs[i], (uint32_t)recs[i].value_len, recs[i].timestamp_ms))
			break;
	pthread_mutex_unlock(&p->lock);
}

enum { STACK_RECS = 64 };

/* The records as Kafka's, each with its time (now if it has none: so
 * that the cached copy has the time the cluster keeps, CreateTime) and
 * its headers (in *hs, one array for all; NULL when none has any). */
static kc_rec *to_kc(const sbfs_rec *recs, size_t n, kc_rec *sb, kc_header **hs)
{
	size_t nh = 0;
	for (size_t i = 0; i < n; i++)
		nh += recs[i].n_headers;
	kc_rec *r = n <= STACK_RECS ? sb : calloc(n, sizeof *r);
	kc_header *h = nh ? calloc(nh, sizeof *h) : NULL;
	if (!r || (nh && !h)) {
		if (r != sb)
			free(r);
		free(h);
		return NULL;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		r[i] = (kc_rec){ .timestamp_ms = recs[i].timestamp_ns ? recs[i].timestamp_ns / 1000000
								       : now,
				 .key = recs[i].key_len ? recs[i].key : NULL,
				 .key_len = recs[i].key_len, .value = recs[i].value,
				 .value_len = recs[i].value_len,
				 .headers = recs[i].n_headers ? h + at : NULL,
				 .nheaders = recs[i].n_headers,
				 .tombstone = (recs[i].flags & SBFS_REC_TOMBSTONE) != 0 };
		for (uint32_t j = 0; j < recs[i].n_headers; j++, at++) {
			const sbfs_header *x = &recs[i].headers[j];
			h[at] = (kc_header){ x->name, x->name_len, x->value, x->value_len };
		}
	}
	*hs = h;
	return r;
}

int kpart_append(kpart *p, const sbfs_rec *recs, size_t n, uint64_t *first)
{
	if (n == 0)
		return -EINVAL;
	if (removed(p))
		return -ENOENT;
	if (p->nparts)
		return kgroup_append(p, recs, n, first);
	kc_rec sb[STACK_RECS];
	int64_t osb[STACK_RECS];
	kc_header *hs = NULL;
	kc_rec *r = to_kc(recs, n, sb, &hs);
	int64_t *offs = n <= STACK_RECS ? osb : malloc(n * sizeof *offs);
	int rc = -ENOMEM;
	if (r && offs)
		rc = p->b->c->ops->produce(p->cp, r, n, offs);
	if (rc == 0) {
		appended(p, r, n, offs);
		if (first)
			*first = (uint64_t)offs[0];
	}
	if (r && r != sb)
		free(r);
	free(hs);
	if (offs && offs != osb)
		free(offs);
	return rc;
}

static int kb_append(sbfs_topic *t, const sbfs_rec *recs, size_t n, uint64_t *first)
{
	return kpart_append(P(t), recs, n, first);
}

/* Kafka gives the offset: a record can only go where the next one goes. */
static int kb_append_at(sbfs_topic *t, uint64_t at, const sbfs_rec *recs, size_t n)
{
	kpart *p = P(t);
	if (p->nparts)
		return -EINVAL; /* which partition's offset? */
	int rc = kpart_update_wm(p);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	int here = (int64_t)at == p->hi;
	pthread_mutex_unlock(&p->lock);
	if (!here)
		return -EINVAL;
	uint64_t first;
	rc = kb_append(t, recs, n, &first);
	if (rc == 0 && first != at)
		return -EIO; /* another producer came between */
	return rc;
}

static uint32_t kb_record_max(sbfs_topic *t)
{
	size_t m = P(t)->b->c->ops->record_max(P(t)->b->c);
	return m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
}

static size_t kb_batch_max(sbfs_topic *t) { (void)t; return 64u << 20; }

static size_t kb_record_size(sbfs_topic *t, const sbfs_rec *r)
{
	(void)t;
	size_t n = r->value_len + r->key_len + 64;
	for (uint32_t i = 0; i < r->n_headers; i++)
		n += r->headers[i].name_len + r->headers[i].value_len + 8;
	return n;
}

static int kb_bounds(sbfs_topic *t, unsigned want, sbfs_bounds *out)
{
	kpart *p = P(t);
	if (p->nparts)
		return removed(p) ? -ENOENT : kgroup_bounds(p, out);
	int rc = kpart_known(p);
	if (rc)
		return rc;
	if (!(want & SBFS_WANT_STREAM)) {
		/* offsets only: no positions, no fetch (ls, rm, the notifier) */
		pthread_mutex_lock(&p->lock);
		*out = (sbfs_bounds){ .start = (uint64_t)p->lo, .next = (uint64_t)p->hi,
				      .mtime_ns = (p->mtime_ms > p->seen_ms ? p->mtime_ms
									    : p->seen_ms) * 1000000 };
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	/* the first time, index it all (each fetch bounded by timeout_ms);
	 * later, what is new, unless someone is at it already */
	pthread_mutex_lock(&p->lock);
	int first = !p->ix_init || !p->ix_done;
	int behind = p->ix_next < p->hi || p->start_off != p->lo;
	pthread_mutex_unlock(&p->lock);
	if (first) {
		pthread_mutex_lock(&p->xlock);
		rc = kpart_catch_up(p);
		pthread_mutex_unlock(&p->xlock);
		if (rc)
			return rc;
		pthread_mutex_lock(&p->lock);
		p->ix_done = 1;
		pthread_mutex_unlock(&p->lock);
	} else if (behind && pthread_mutex_trylock(&p->xlock) == 0) {
		kpart_catch_up(p); /* (what fails now is tried again) */
		pthread_mutex_unlock(&p->xlock);
	}
	pthread_mutex_lock(&p->lock);
	*out = (sbfs_bounds){ .start = (uint64_t)p->start_off, .next = (uint64_t)p->ix_next,
			      .stream_start = p->start_pos, .stream_end = p->ix_end,
			      .mtime_ns = p->mtime_ms * 1000000 };
	if (out->next < out->start)
		out->next = out->start;
	if (out->stream_end < out->stream_start)
		out->stream_end = out->stream_start;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int kb_stat(sbfs_topic *t, uint64_t off, unsigned want, sbfs_recinfo *info)
{
	kpart *p = P(t);
	if (p->nparts)
		return -ENOENT;
	find_ctx x = { 0 };
	int rc = kpart_record(p, (int64_t)off, &x);
	if (rc)
		return rc;
	uint64_t pos = 0;
	if (want & SBFS_WANT_STREAM) {
		pthread_mutex_lock(&p->xlock);
		rc = kpart_catch_up(p);
		if (rc == 0)
			rc = kpart_pos_of(p, (int64_t)off, &pos);
		pthread_mutex_unlock(&p->xlock);
		if (rc)
			return rc;
	}
	*info = (sbfs_recinfo){ .offset = off, .timestamp_ns = x.rec.timestamp_ms * 1000000,
				.value_len = x.rec.value_len, .key_len = x.rec.key_len,
				.flags = x.rec.tombstone ? SBFS_REC_TOMBSTONE : 0,
				.stream_pos = pos };
	return 0;
}

static int kb_read(sbfs_topic *t, uint64_t off, uint64_t from, void *buf, size_t len,
		   size_t *nread)
{
	find_ctx x = { .buf = buf, .from = from, .len = len };
	int rc = P(t)->nparts ? -ENOENT : kpart_record(P(t), (int64_t)off, &x);
	if (rc == 0)
		*nread = x.n;
	return rc;
}

static int kb_read_key(sbfs_topic *t, uint64_t off, void *buf, size_t cap, size_t *key_len)
{
	find_ctx x = { .buf = buf, .len = cap, .key = 1 };
	int rc = P(t)->nparts ? -ENOENT : kpart_record(P(t), (int64_t)off, &x);
	if (rc == 0)
		*key_len = x.rec.key_len;
	return rc;
}

static int kb_read_headers(sbfs_topic *t, uint64_t off, sbfs_header_fn fn, void *arg)
{
	return P(t)->nparts ? -ENOENT : kpart_headers(P(t), (int64_t)off, fn, arg);
}

static int kb_read_stream(sbfs_topic *t, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	if (P(t)->nparts) { /* an empty stream */
		if (pos)
			return -ENOENT;
		*nread = 0;
		return 0;
	}
	return kpart_read_stream(P(t), pos, buf, len, nread);
}

/* ls lists only offsets that hold a record (compaction and transaction
 * markers leave gaps): kafka_stream.c, through the cache, in the topics
 * where gaps are expected (kpart_skips_gaps: a compacted topic); elsewhere
 * every offset from the watermarks, without a fetch. */
static int kb_next_present(sbfs_topic *t, uint64_t off, uint64_t *found)
{
	int64_t f;
	if (P(t)->nparts || off > INT64_MAX)
		return -ENOENT;
	int rc = kpart_skips_gaps(P(t)) ? kpart_next_present(P(t), (int64_t)off, &f)
					: kpart_next_offset(P(t), (int64_t)off, &f);
	if (rc == 0)
		*found = (uint64_t)f;
	return rc;
}

/* A compacted topic's records go from the middle (the cluster compacts) */
static int kb_compacts(sbfs_topic *t)
{
	return !P(t)->nparts && kpart_skips_gaps(P(t));
}

static int kb_delete_before(sbfs_topic *t, uint64_t off)
{
	kpart *p = P(t);
	if (p->nparts)
		return off ? -EINVAL : 0;
	pthread_mutex_lock(&p->lock);
	int nothing = (int64_t)off <= p->lo;
	pthread_mutex_unlock(&p->lock);
	if (nothing)
		return 0;
	int rc = p->b->c->ops->delete_records(p->cp, (int64_t)off);
	if (rc)
		return rc;
	/* their positions are known: the stream start moves to off's */
	pthread_mutex_lock(&p->xlock);
	pthread_mutex_lock(&p->lock);
	if ((int64_t)off > p->lo)
		p->lo = (int64_t)off;
	if (p->hi < p->lo)
		p->hi = p->lo;
	pthread_mutex_unlock(&p->lock);
	rc = kpart_catch_up(p);
	pthread_mutex_unlock(&p->xlock);
	return rc;
}

/*
 * .since/TIME: the first record whose time is >= ts. Kafka's answer to it
 * (ListOffsets by time: the first record whose own time reaches ts) is
 * the running maximum's answer SPEC §2 asks for (the first record whose
 * time reaches ts is the first where the maximum does). How it is found:
 * since.c asks for the stream position of the start right after, which
 * indexes the partition anyway (THE STREAM MODEL), so the index is caught
 * up first, and when an indexed record reaches ts the index answers
 * exactly (kpart_seek_indexed: a binary search of the entries' running
 * maxima, then at most a stride of cached records), without a round trip.
 * Only when no indexed record reaches ts is the cluster asked (records
 * newer than the index may), and its "none" (-1) is the next offset.
 * (librdkafka 2.0.2's mock answers -1 to every time: through it a time
 * later than every record reads as "none yet".)
 */
static int kb_seek_time(sbfs_topic *t, int64_t ts, uint64_t *off)
{
	kpart *p = P(t);
	if (p->nparts)
		return -ENOTSUP; /* per partition */
	int rc = kpart_known(p);
	int64_t o = -1, ms = ts <= 0 ? 0 : ts / 1000000 + (ts % 1000000 != 0);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->xlock);
	rc = kpart_catch_up(p);
	if (rc == 0)
		rc = kpart_seek_indexed(p, ms, &o);
	pthread_mutex_unlock(&p->xlock);
	if (rc == -ENOENT)
		rc = p->b->c->ops->offset_for_time(p->cp, ms, &o);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	if (o < 0 || o > p->hi)
		o = p->hi;
	if (o < p->lo)
		o = p->lo;
	pthread_mutex_unlock(&p->lock);
	*off = (uint64_t)o;
	return 0;
}

/* .keys/: kafka_keys.c */
static int kb_get_key(sbfs_topic *t, const void *key, size_t len, sbfs_recinfo *info)
{
	return kpart_get_key(P(t), key, len, info);
}

static int kb_list_keys(sbfs_topic *t, const void *from, size_t from_len,
			int (*fn)(void *arg, const void *key, size_t key_len,
				  const sbfs_recinfo *info),
			void *arg)
{
	return kpart_list_keys(P(t), from, from_len, fn, arg);
}

static int kb_sync(sbfs_topic *t) { (void)t; return 0; } /* acknowledged = in the cluster */
static int kb_retain(sbfs_backend *b, int64_t now_ns) { (void)b, (void)now_ns; return 0; }

static int kb_statfs(sbfs_backend *base, struct statvfs *st)
{
	kbackend *b = (kbackend *)base;
	uint64_t used = 0;
	pthread_mutex_lock(&b->tlock);
	for (size_t i = 0; i < b->ntopics; i++) {
		kpart *p = b->topics[i];
		pthread_mutex_lock(&p->lock);
		if (!p->removed)
			used += p->ix_end - p->start_pos;
		pthread_mutex_unlock(&p->lock);
	}
	size_t files = b->ntopics;
	pthread_mutex_unlock(&b->tlock);
	/* a cluster's free space is not Kafka's to tell: show what we hold,
	 * and room (df must not say full) */
	const uint64_t bs = 4096, room = (uint64_t)1 << 40;
	*st = (struct statvfs){ .f_bsize = bs, .f_frsize = bs,
				.f_blocks = (used + room) / bs, .f_bfree = room / bs,
				.f_bavail = room / bs, .f_files = files + 1000000,
				.f_ffree = 1000000, .f_favail = 1000000, .f_namemax = 255 };
	return 0;
}

static int stopping(kbackend *b)
{
	pthread_mutex_lock(&b->slock);
	int s = b->stop;
	pthread_mutex_unlock(&b->slock);
	return s;
}

static void *refresh_run(void *arg)
{
	kbackend *b = arg;
	pthread_mutex_lock(&b->slock);
	while (!b->stop) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += REFRESH_MS * 1000000L;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&b->scond, &b->slock, &dl);
		if (b->stop)
			break;
		pthread_mutex_unlock(&b->slock);
		pthread_mutex_lock(&b->tlock);
		size_t n = b->ntopics;
		pthread_mutex_unlock(&b->tlock);
		for (size_t i = 0; i < n && !stopping(b); i++) {
			pthread_mutex_lock(&b->tlock);
			kpart *p = b->topics[i];
			pthread_mutex_unlock(&b->tlock);
			pthread_mutex_lock(&p->lock);
			int idle = p->removed || !p->active, indexed = p->ix_init;
			pthread_mutex_unlock(&p->lock);
			if (idle || kpart_update_wm_in(p, REFRESH_WAIT_MS) || !indexed)
				continue;
			if (pthread_mutex_trylock(&p->xlock) == 0) {
				kpart_catch_up(p);
				pthread_mutex_unlock(&p->xlock);
			}
		}
		pthread_mutex_lock(&b->slock);
	}
	pthread_mutex_unlock(&b->slock);
	return NULL;
}

static int kb_close(sbfs_backend *base)
{
	kbackend *b = (kbackend *)base;
	pthread_mutex_lock(&b->slock);
	b->stop = 1;
	pthread_cond_signal(&b->scond);
	pthread_mutex_unlock(&b->slock);
	pthread_join(b->refresher, NULL);
	b->c->ops->close(b->c);
	for (size_t i = 0; i < b->ntopics; i++) {
		kpart *p = b->topics[i];
		kkeys_free(p);
		pthread_mutex_destroy(&p->lock);
		pthread_mutex_destroy(&p->xlock);
		free(p->ix);
		free(p->parts);
		free(p->name);
		free(p);
	}
	free(b->topics);
	kcache_free(b->cache);
	pthread_mutex_destroy(&b->tlock);
	pthread_mutex_destroy(&b->slock);
	pthread_cond_destroy(&b->scond);
	free(b->source);
	free(b);
	return 0;
}

static const sbfs_backend_ops kafka_ops = {
	.topic_create = kb_create,
	.topic_remove = kb_remove,
	.topic_get = kb_get,
	.topic_list = kb_list,
	.topic_list_refused = kb_list_refused,
	.topic_name_valid = kb_name_valid,
	.parts = kb_parts,
	.part_get = kb_part_get,
	.append = kb_append,
	.append_at = kb_append_at,
	.record_max = kb_record_max,
	.batch_max = kb_batch_max,
	.record_size = kb_record_size,
	.bounds = kb_bounds,
	.stat_record = kb_stat,
	.read = kb_read,
	.read_key = kb_read_key,
	.read_headers = kb_read_headers,
	.read_stream = kb_read_stream,
	.next_present = kb_next_present,
	.compacts = kb_compacts,
	.seek_time = kb_seek_time,
	.get_key = kb_get_key,
	.list_keys = kb_list_keys,
	.delete_before = kb_delete_before,
	.sync = kb_sync,
	.retain = kb_retain,
	.statfs = kb_statfs,
	.close = kb_close,
};

int sbfs_backend_kafka_open_client(const sbfs_kafka_config *cfg, kc *client,
				   sbfs_backend **out)
{
	kbackend *b = calloc(1, sizeof *b);
	if (!b) {
		client->ops->close(client);
		return -ENOMEM;
	}
	b->base.ops = &kafka_ops;
	const char *servers = "?";
	for (size_t i = 0; i < cfg->nprops; i++)
		if (!strcmp(cfg->props[i].key, "bootstrap.servers"))
			servers = cfg->props[i].value;
	b->source = malloc(strlen(servers) + 7);
	if (!b->source) {
		client->ops->close(client);
		free(b);
		return -ENOMEM;
	}
	strcpy(b->source, "kafka:");
	strcat(b->source, servers);
	b->base.source = b->source;
	b->c = client;
	b->cfg = *cfg;
	b->cfg.props = NULL;
	b->cfg.nprops = 0;
	pthread_mutex_init(&b->tlock, NULL);
	pthread_mutex_init(&b->slock, NULL);
	pthread_cond_init(&b->scond, NULL);
	int rc = kcache_new(cfg->cache_bytes, &b->cache);
	if (rc == 0)
		rc = ktab_refresh(b, NULL); /* the cluster must answer */
	if (rc == 0 && pthread_create(&b->refresher, NULL, refresh_run, b) != 0)
		rc = -EAGAIN;
	if (rc) {
		b->refresher = pthread_self();
		pthread_mutex_lock(&b->slock);
		b->stop = 1;
		pthread_mutex_unlock(&b->slock);
		/* (kb_close joins the refresher: there is none) */
		client->ops->close(client);
		for (size_t i = 0; i < b->ntopics; i++) {
			free(b->topics[i]->parts);
			free(b->topics[i]->name);
			free(b->topics[i]);
		}
		free(b->topics);
		kcache_free(b->cache);
		free(b->source);
		free(b);
		return rc;
	}
	*out = &b->base;
	return 0;
}
