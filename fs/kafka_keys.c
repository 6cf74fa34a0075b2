/*
 * kafka_keys.c - TOPIC/.keys/ over Kafka (SPEC §2 "Keys", §8): the latest
 * record of every key of a partition (backend.h: get_key, list_keys).
 *
 * Kafka has no lookup by key, so the backend keeps, per partition, a map
 * key -> its latest record (offset, time, payload size, tombstone: a
 * null value). It is made at the first use of the partition's .keys/ by
 * reading the partition once from the low watermark to the high one
 * (through the cache, as a cat of .log reads it: a compacted topic holds
 * about one record per key), and kept up to date at each later call by
 * reading only what came since (the refresher follows the high watermark;
 * the mount's own appends move it at once). A record whose offset fell
 * below the low watermark (retention, DeleteRecords) is gone: its key has
 * no record then.
 *
 * Memory is bounded: every partition's map counts against [kafka]
 * keys_bytes (64 MiB for the mount; a key costs its length and about 80
 * bytes). A map that would pass it is dropped whole, and that partition's
 * .keys/ answers ENOBUFS until a remount with a larger keys_bytes (logged
 * once, naming the topic and the setting): never a wrong or partial
 * answer.
 *
 * Listing in key order sorts the map's entries (pointers) when keys were
 * added since the last sort; a listing resumed at a key is a binary search.
 *
 * A topic of several partitions: .keys/ is per partition (TOPIC/N/.keys/;
 * the topic's own answers ENOTSUP: fs/ reads a key's record by its offset
 * in the directory's topic, and the topic itself holds no records). A key
 * written through the topic lands in the partition its key picks.
 *
 * Locks: kkeys.lock (held across the fetches that fill the map, one filler
 * per partition) before kpart.lock and the cache's lock; never with xlock.
 */
#include "kafka_part.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { KEY_MAX = 65535 };

typedef struct kkey {
	struct kkey *next;      /* hash chain */
	int64_t off, ts_ms;
	uint32_t vlen, klen;
	int tomb;
	unsigned char key[];
} kkey;

typedef struct kkeys {
	pthread_mutex_t lock;   /* guards everything below */
	int full;               /* passed keys_bytes: ENOBUFS */
	int64_t next;           /* records below are in the map */
	kkey **tab;
	size_t nb, n;
	size_t bytes;           /* counted in kbackend.keys_used */
	kkey **sorted;          /* valid when nsorted == n (keys are never removed) */
	size_t nsorted;
} kkeys;

static uint64_t hash_of(const void *key, size_t len)
{
	const unsigned char *k = key;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}

static int keycmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int charge(kpart *p, kkeys *k, size_t cost)
{
	kbackend *b = p->b;
	size_t used = atomic_fetch_add(&b->keys_used, cost) + cost;
	if (used > b->cfg.keys_bytes) {
		atomic_fetch_sub(&b->keys_used, cost);
		return -ENOBUFS;
	}
	k->bytes += cost;
	return 0;
}

static void drop_all(kpart *p, kkeys *k)
{
	for (size_t i = 0; i < k->nb; i++)
		for (kkey *e = k->tab[i], *nx; e; e = nx) {
			nx = e->next;
			free(e);
		}
	free(k->tab);
	free(k->sorted);
	k->tab = k->sorted = NULL;
	k->nb = k->n = k->nsorted = 0;
	atomic_fetch_sub(&p->b->keys_used, k->bytes);
	k->bytes = 0;
}

void kkeys_free(kpart *p)
{
	kkeys *k = p->keys;
	if (!k)
		return;
	drop_all(p, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
	p->keys = NULL;
}

static kkeys *keys_of(kpart *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->keys && (p->keys = calloc(1, sizeof *p->keys)))
		pthread_mutex_init(&p->keys->lock, NULL);
	kkeys *k = p->keys;
	pthread_mutex_unlock(&p->lock);
	return k;
}

static kkey *lookup(const kkeys *k, const void *key, size_t len)
{
	if (!k->nb)
		return NULL;
	for (kkey *e = k->tab[hash_of(key, len) & (k->nb - 1)]; e; e = e->next)
		if (e->klen == len && !memcmp(e->key, key, len))
			return e;
	return NULL;
}

static int grow(kpart *p, kkeys *k)
{
	size_t nb = k->nb ? k->nb * 2 : 1024;
	int rc = charge(p, k, (nb - k->nb) * sizeof(kkey *));
	if (rc)
		return rc;
	kkey **tab = calloc(nb, sizeof *tab);
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < k->nb; i++)
		for (kkey *e = k->tab[i], *nx; e; e = nx) {
			nx = e->next;
			size_t h = hash_of(e->key, e->klen) & (nb - 1);
			e->next = tab[h];
			tab[h] = e;
		}
	free(k->tab);
	k->tab = tab;
	k->nb = nb;
	return 0;
}

/* Record r (keyed) is the latest of its key now. */
static int put(kpart *p, kkeys *k, const void *key, size_t len, const kcrec *r)
{
	kkey *e = lookup(k, key, len);
	int rc;
	if (!e) {
		if (k->n >= k->nb && (rc = grow(p, k)))
			return rc;
		/* the entry, and its place in `sorted` */
		if ((rc = charge(p, k, sizeof *e + len + sizeof(kkey *))))
			return rc;
		if (!(e = malloc(sizeof *e + len)))
			return -ENOMEM;
		e->klen = (uint32_t)len;
		memcpy(e->key, key, len);
		size_t h = hash_of(key, len) & (k->nb - 1);
		e->next = k->tab[h];
		k->tab[h] = e;
		k->n++;
	}
	e->off = r->offset;
	e->ts_ms = r->timestamp_ms;
	e->vlen = r->value_len;
	e->tomb = r->tombstone;
	return 0;
}

typedef struct fill_ctx {
	kpart *p;
	kkeys *k;
} fill_ctx;

static int fill_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	fill_ctx *c = arg;
	int rc = 0;
	/* a key no file can name (empty, or too long) is not in .keys/ */
	if (r->has_key && r->key_len >= 1 && r->key_len <= KEY_MAX)
		rc = put(c->p, c->k, kchunk_data(ch) + r->key, r->key_len, r);
	if (rc == 0)
		c->k->next = r->offset + 1;
	return rc;
}

/* Read what is new into the map (k->lock held). */
static int catch_up(kpart *p, kkeys *k)
{
	if (k->full)
		return -ENOBUFS;
	int rc = kpart_known(p);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	int64_t lo = p->lo, hi = p->hi;
	pthread_mutex_unlock(&p->lock);
	if (k->next < lo)
		k->next = lo; /* gone before we saw them */
	fill_ctx c = { p, k };
	rc = k->next < hi ? kpart_each(p, k->next, hi, fill_cb, &c) : 0;
	if (rc == 0 && k->next < hi)
		k->next = hi; /* offsets without records at the end */
	if (rc == -ENOBUFS) {
		drop_all(p, k);
		k->full = 1;
		sbfs_log("kafka: %s: its keys need more than [kafka] keys_bytes = %zu bytes "
			 "(every partition's key map together): its .keys/ answers ENOBUFS; "
			 "remount with a larger keys_bytes",
			 p->name, p->b->cfg.keys_bytes);
	}
	return rc;
}

static int by_key(const void *a, const void *b)
{
	const kkey *x = *(kkey *const *)a, *y = *(kkey *const *)b;
	return keycmp(x->key, x->klen, y->key, y->klen);
}

static int sort(kkeys *k)
{
	if (k->nsorted == k->n)
		return 0;
	kkey **v = realloc(k->sorted, (k->n ? k->n : 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	k->sorted = v;
	size_t at = 0;
	for (size_t i = 0; i < k->nb; i++)
		for (kkey *e = k->tab[i]; e; e = e->next)
			v[at++] = e;
	qsort(v, at, sizeof *v, by_key);
	k->nsorted = at;
	return 0;
}

static size_t lower_bound(const kkeys *k, const void *from, size_t len)
{
	size_t lo = 0, hi = k->nsorted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keycmp(k->sorted[mid]->key, k->sorted[mid]->klen, from, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* p's map, locked and caught up (sorted too if `sorted`); unlock after. */
static int lock_keys(kpart *p, int sorted, kkeys **out)
{
	pthread_mutex_lock(&p->lock);
	int gone = p->removed;
	pthread_mutex_unlock(&p->lock);
	if (gone)
		return -ENOENT;
	kkeys *k = keys_of(p);
	if (!k)
		return -ENOMEM;
	pthread_mutex_lock(&k->lock);
	int rc = catch_up(p, k);
	if (rc == 0 && sorted)
		rc = sort(k);
	if (rc) {
		pthread_mutex_unlock(&k->lock);
		return rc;
	}
	*out = k;
	return 0;
}

/* e of partition p is a record one can read: not a tombstone, not deleted. */
static int visible(kpart *p, const kkey *e)
{
	pthread_mutex_lock(&p->lock);
	int64_t lo = p->lo;
	pthread_mutex_unlock(&p->lock);
	return !e->tomb && e->off >= lo;
}

static sbfs_recinfo info_of(const kkey *e)
{
	return (sbfs_recinfo){ .offset = (uint64_t)e->off, .timestamp_ns = e->ts_ms * 1000000,
			       .value_len = e->vlen, .key_len = e->klen };
}

int kpart_get_key(kpart *p, const void *key, size_t len, sbfs_recinfo *info)
{
	if (p->nparts)
		return -ENOTSUP; /* per partition (fs/ reads a key's record by its offset) */
	if (len < 1 || len > KEY_MAX)
		return -ENOENT;
	kkeys *k;
	int rc = lock_keys(p, 0, &k);
	if (rc)
		return rc;
	kkey *e = lookup(k, key, len);
	rc = e && visible(p, e) ? 0 : -ENOENT;
	if (rc == 0)
		*info = info_of(e);
	pthread_mutex_unlock(&k->lock);
	return rc;
}

int kpart_list_keys(kpart *p, const void *from, size_t from_len,
		    int (*fn)(void *arg, const void *key, size_t key_len, const sbfs_recinfo *info),
		    void *arg)
{
	if (p->nparts)
		return -ENOTSUP;
	kkeys *k;
	int rc = lock_keys(p, 1, &k);
	if (rc)
		return rc;
	for (size_t i = from_len ? lower_bound(k, from, from_len) : 0; rc == 0 && i < k->nsorted;
	     i++) {
		kkey *e = k->sorted[i];
		if (!visible(p, e))
			continue;
		sbfs_recinfo ri = info_of(e);
		rc = fn(arg, e->key, e->klen, &ri);
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}
