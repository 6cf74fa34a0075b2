/*
 * zcache.c - the cache of decompressed, checked blocks of compressed
 * segments (zseg.h), and its read-ahead.
 *
 * A slot holds one block of one segment. A reader pins the slot of the block
 * it needs, loading it first if no slot has it (zseg.c's sb_zblock_load: the
 * CRCs of its stored and raw bytes are checked before the slot is READY).
 *
 * Read-ahead: a stream read that moves forward block after block (the block
 * after the previous stream pin of the segment) also asks for the next
 * ZC_AHEAD blocks: each gets a free slot, QUEUED. One worker thread per cache
 * (started at the first such request, ended after ZC_IDLE_MS without work and
 * at sb_zcache_free) loads queued slots oldest first, so that a reader copies
 * block N while block N + 1 decompresses. A reader that finds its block still
 * QUEUED loads it itself; one that finds it LOADING by the worker loads a
 * queued block of its window meanwhile, so that both cores decompress. A
 * slot the worker loads is READY only if the load succeeded (it is EMPTY
 * otherwise, and the reader that needs it loads it again and sees the
 * damage): what is served was checked. A QUEUED slot holds no pin: reusing
 * it for another block cancels it.
 *
 * Reading ahead pays only when another core is free (ahead_pays). On this
 * project's 2-core machine, given a fair share of it, a forward read went
 * from 1.1 to 1.3-1.5 GB/s with it; with the process sharing one core's
 * worth of time with other work it lost 20-35% (docs/BENCHMARKS.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "zseg_impl.h"

/* Blocks a sequential stream reader asks for beyond the one it reads. */
#define ZC_AHEAD 4
/* Forward stream pins between two looks at the load average. */
#define ZC_RECHECK 256
/* The worker ends after this long without work. */
#define ZC_IDLE_MS 200

int sb_zcache_new(sb_zcache **out)
{
	sb_zcache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wcv, &ca);
	pthread_condattr_destroy(&ca);
	c->ahead = -1;
	*out = c;
	return 0;
}

static void slot_release_mem(struct zslot *s)
{
	free(s->stored);
	free(s->raw);
	free(s->koff);
	free(s->voff);
	free(s->ts);
	free(s->flags);
	free(s->hoff);
	ZSTD_freeDCtx(s->dctx);
	memset(s, 0, sizeof(*s));
}

void sb_zcache_free(sb_zcache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_broadcast(&c->wcv);
	int join = c->worker_made;
	c->worker_made = 0;
	pthread_mutex_unlock(&c->mu);
	if (join)
		pthread_join(c->worker, NULL);
	for (int i = 0; i < ZC_SLOTS; i++)
		slot_release_mem(&c->slots[i]);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->wcv);
	free(c);
}

void sb_zcache_forget(sb_zcache *c, const sb_zseg *z)
{
	pthread_mutex_lock(&c->mu);
	for (;;) {
		int busy = 0;
		for (int i = 0; i < ZC_SLOTS; i++) {
			struct zslot *s = &c->slots[i];
			if (s->gen != z->gen)
				continue;
			if (s->state == ZS_QUEUED) { /* cancelled */
				s->state = ZS_EMPTY;
				s->gen = 0;
				s->z = NULL;
			} else if (s->state == ZS_LOADING) {
				busy = 1; /* the worker's: it reads z */
			} else if (!s->refs) {
				/* a later segment must not take its blocks */
				s->gen = 0;
				s->z = NULL;
			}
		}
		if (!busy)
			break;
		pthread_cond_wait(&c->cv, &c->mu);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Whoever loaded slot s (not the caller's pin): READY if rc is 0, EMPTY
 * otherwise. With c->mu held. */
static void done_loading(sb_zcache *c, struct zslot *s, int rc)
{
	s->refs--;
	if (rc) {
		s->state = ZS_EMPTY;
		s->gen = 0;
		s->z = NULL;
	} else {
		s->state = ZS_READY;
	}
	pthread_cond_broadcast(&c->cv);
}

/* Load queued slot s (claimed: LOADING, one ref) with c->mu held; returns
 * with it held again. */
static void load_claimed(sb_zcache *c, struct zslot *s)
{
	sb_zseg *z = s->z;
	uint32_t i = s->block;

	pthread_mutex_unlock(&c->mu);
	int rc = sb_zblock_load(z, s, i, 0);
	pthread_mutex_lock(&c->mu);
	done_loading(c, s, rc);
}

static void claim(sb_zcache *c, struct zslot *s)
{
	s->state = ZS_LOADING;
	s->refs++;
	s->used = ++c->tick;
}

static void *worker_main(void *arg)
{
	sb_zcache *c = arg;

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		struct zslot *s = NULL;
		for (int k = 0; k < ZC_SLOTS; k++) {
			struct zslot *t = &c->slots[k];
			if (t->state == ZS_QUEUED && (!s || t->used < s->used))
				s = t;
		}
		if (s) {
			claim(c, s);
			load_claimed(c, s);
			c->ahead_loads++;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += ZC_IDLE_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (pthread_cond_timedwait(&c->wcv, &c->mu, &ts) == ETIMEDOUT && !c->stop) {
			int work = 0;
			for (int k = 0; k < ZC_SLOTS; k++)
				work |= c->slots[k].state == ZS_QUEUED;
			if (!work)
				break;
		}
	}
	c->worker_on = 0; /* joined by the next start or by sb_zcache_free */
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The worker runs (started if need be), with c->mu held. 0: no worker
 * (queued slots are then loaded by their readers). */
static int worker_up(sb_zcache *c)
{
	if (c->worker_on)
		return 1;
	if (c->stop)
		return 0;
	if (c->worker_made) {
		/* it has ended (worker_on is 0) or is about to: it needs no lock */
		pthread_join(c->worker, NULL);
		c->worker_made = 0;
	}
	if (pthread_create(&c->worker, NULL, worker_main, c) != 0)
		return 0;
	c->worker_made = c->worker_on = 1;
	return 1;
}

/*
 * Does reading ahead pay now? Only if another core is free to decompress:
 * when the process's threads share one core's worth of time (a busy
 * machine), the worker's blocks come out of the reader's own time, plus
 * the hand-over's cost, and a forward read gets slower (20-35% here).
 * Short timed trials with and without cannot tell: for a few milliseconds
 * two threads borrow a second core that the scheduler takes back later.
 * So: the 1-minute load average against the cores, looked at every
 * ZC_RECHECK forward pins (c->ahead: tests force it on or off). With c->mu
 * held.
 */
static int ahead_pays(sb_zcache *c)
{
	if (c->ahead >= 0)
		return c->ahead;
	if (c->steps++ % ZC_RECHECK == 0) {
		double load;
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		/* the reader itself counts about 1 */
		c->run_on = cores > 1 && getloadavg(&load, 1) == 1 && load + 0.5 < (double)cores;
	}
	return c->run_on;
}

void sb_zcache_set_ahead(sb_zcache *c, int mode)
{
	pthread_mutex_lock(&c->mu);
	c->ahead = mode;
	pthread_mutex_unlock(&c->mu);
}

/* The slot of block i of z, if any holds it (in any state but EMPTY). */
static struct zslot *find_slot(sb_zcache *c, const sb_zseg *z, uint32_t i)
{
	for (int k = 0; k < ZC_SLOTS; k++) {
		struct zslot *t = &c->slots[k];
		if (t->state && t->gen == z->gen && t->block == i)
			return t;
	}
	return NULL;
}

/* The least recently used slot no one pins, or NULL. */
static struct zslot *lru_slot(sb_zcache *c)
{
	struct zslot *lru = NULL;

	for (int k = 0; k < ZC_SLOTS; k++) {
		struct zslot *t = &c->slots[k];
		if (!t->refs && (!lru || t->used < lru->used))
			lru = t;
	}
	return lru;
}

/* Queue blocks (i, i + ZC_AHEAD] of z that no slot holds, with c->mu held. */
static void queue_ahead(sb_zcache *c, sb_zseg *z, uint32_t i)
{
	int queued = 0;

	for (uint32_t b = i + 1; b <= i + ZC_AHEAD && b < z->h.nblocks; b++) {
		if (find_slot(c, z, b))
			continue;
		struct zslot *s = lru_slot(c);
		if (!s)
			break;
		s->gen = z->gen;
		s->z = z;
		s->block = b;
		s->state = ZS_QUEUED;
		s->decoded = 0;
		s->used = ++c->tick;
		queued = 1;
	}
	if (!queued)
		return;
	if (worker_up(c))
		pthread_cond_signal(&c->wcv);
}

/* A reader waiting for block i (LOADING elsewhere) loads a queued block of
 * its window meanwhile. 1 if it did (c->mu held throughout). */
static int help(sb_zcache *c, const sb_zseg *z, uint32_t i)
{
	for (int k = 0; k < ZC_SLOTS; k++) {
		struct zslot *t = &c->slots[k];
		if (t->state == ZS_QUEUED && t->gen == z->gen && t->block > i && t->block <= i + ZC_AHEAD) {
			claim(c, t);
			load_claimed(c, t);
			return 1;
		}
	}
	return 0;
}

/* Pin slot s (READY) for the caller, with c->mu held. */
static void pin_ready(sb_zcache *c, struct zslot *s, uint32_t i, sb_zpin *pin)
{
	s->refs++;
	s->used = ++c->tick;
	pin->slot = s;
	pin->block = i;
}

int sb_zcache_pin(sb_zseg *z, uint32_t i, sb_zpin *pin, int decode, int stream)
{
	sb_zcache *c = z->c;
	struct zslot *s;
	int rc, ahead = 0;

	pthread_mutex_lock(&c->mu);
	if (stream) {
		/* moving forward: the block after the previous stream pin */
		ahead = i == z->seq_next;
		z->seq_next = i + 1;
		if (ahead)
			ahead = ahead_pays(c);
	}
	for (;;) {
		s = find_slot(c, z, i);
		if (s && s->state == ZS_LOADING) {
			if (!(ahead && help(c, z, i)))
				pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		if (s && s->state == ZS_READY) {
			if (decode && !s->decoded) {
				/* Loaded by a stream read: decode it now, once (its
				 * pinners read only its stream bytes, which this
				 * leaves as they are). */
				if ((rc = sb_zblock_decode(s, z->t[i].count, sb_zseg_block_stream_len(z, i),
							   z->h.features))) {
					pthread_mutex_unlock(&c->mu);
					return rc;
				}
			}
			pin_ready(c, s, i, pin);
			if (ahead)
				queue_ahead(c, z, i);
			pthread_mutex_unlock(&c->mu);
			return 0;
		}
		break; /* QUEUED (this reader takes it over) or none */
	}

	if (!s)
		s = lru_slot(c);
	if (s) {
		s->gen = z->gen;
		s->z = z;
		s->block = i;
		s->refs = 0;
		claim(c, s);
	}
	if (ahead) /* the worker starts on the next ones while this one loads */
		queue_ahead(c, z, i);
	pthread_mutex_unlock(&c->mu);
	if (!s) {
		/* every slot pinned: one of its own, freed at unpin */
		if (!(s = calloc(1, sizeof(*s))))
			return -ENOMEM;
		s->heap = 1;
		s->refs = 1;
		s->block = i;
		if ((rc = sb_zblock_load(z, s, i, decode))) {
			slot_release_mem(s);
			free(s);
			return rc;
		}
	} else {
		rc = sb_zblock_load(z, s, i, decode);
		pthread_mutex_lock(&c->mu);
		if (rc) {
			done_loading(c, s, rc);
		} else {
			s->state = ZS_READY; /* the caller keeps the ref as its pin */
			pthread_cond_broadcast(&c->cv);
		}
		pthread_mutex_unlock(&c->mu);
		if (rc)
			return rc;
	}
	pin->slot = s;
	pin->block = i;
	return 0;
}

/* The slot a direct load borrows: the most recently used empty one (the
 * last direct load's: its DCtx and buffers warm, no cached block evicted),
 * else the least recently used one no one pins, or NULL. */
static struct zslot *scratch_slot(sb_zcache *c)
{
	struct zslot *e = NULL;

	for (int k = 0; k < ZC_SLOTS; k++) {
		struct zslot *t = &c->slots[k];
		if (t->state == ZS_EMPTY && !t->refs && (!e || t->used > e->used))
			e = t;
	}
	return e ? e : lru_slot(c);
}

int sb_zcache_direct(sb_zseg *z, uint32_t i, uint8_t *dst)
{
	sb_zcache *c = z->c;
	struct zslot *s, own = {0};
	int rc;

	pthread_mutex_lock(&c->mu);
	s = find_slot(c, z, i);
	if (s && s->state != ZS_QUEUED) { /* READY or LOADING: served from it */
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	if (s) { /* queued by a read-ahead: this reader loads it, here */
		s->state = ZS_EMPTY;
		s->gen = 0;
		s->z = NULL;
	}
	int ahead = i == z->seq_next;
	z->seq_next = i + 1;
	if (ahead && ahead_pays(c))
		queue_ahead(c, z, i);
	/* a slot lends its stored buffer and DCtx, holding no block (gen 0) */
	if ((s = scratch_slot(c))) {
		s->gen = 0;
		s->z = NULL;
		s->refs = 0;
		claim(c, s);
	}
	c->direct_loads++;
	pthread_mutex_unlock(&c->mu);
	rc = sb_zblock_load_into(z, s ? s : &own, i, dst);
	if (!s) {
		slot_release_mem(&own);
	} else {
		pthread_mutex_lock(&c->mu);
		done_loading(c, s, 1); /* EMPTY: it holds no block */
		pthread_mutex_unlock(&c->mu);
	}
	return rc ? rc : 1;
}

uint64_t sb_zcache_direct_loads(sb_zcache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->direct_loads;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void sb_zseg_unpin(sb_zseg *z, sb_zpin *pin)
{
	struct zslot *s = pin->slot;

	if (!s)
		return;
	pin->slot = NULL;
	if (s->heap) {
		slot_release_mem(s);
		free(s);
		return;
	}
	pthread_mutex_lock(&z->c->mu);
	s->refs--;
	pthread_mutex_unlock(&z->c->mu);
}

void sb_zcache_ahead_wait(sb_zcache *c, uint64_t *loads)
{
	pthread_mutex_lock(&c->mu);
	for (;;) {
		int busy = 0;
		for (int k = 0; k < ZC_SLOTS; k++)
			busy |= c->slots[k].state == ZS_QUEUED || c->slots[k].state == ZS_LOADING;
		if (!busy || !c->worker_on)
			break;
		pthread_cond_wait(&c->cv, &c->mu);
	}
	if (loads)
		*loads = c->ahead_loads;
	pthread_mutex_unlock(&c->mu);
}
