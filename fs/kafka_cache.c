/*
 * kafka_cache.c - the bounded cache of fetched records (kafka_cache.h).
 *
 * Chunks sit on one list, most recently used first; a lookup walks it
 * (a cache of 64 MiB holds some dozens of fetches of 1 MiB, and a
 * sequential reader finds its chunk first). One lock, `lock`, guards the
 * list, the byte count and every chunk's refs and linked flag.
 */
#include "kafka_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct kchunk {
	const void *owner;
	int64_t first, next;
	kcrec *recs;
	size_t n, cap;
	char *data;
	size_t len, dcap;
	int refs;               /* under kcache.lock once put */
	int linked;             /* on the list (under kcache.lock) */
	kchunk *prev, *nextc;   /* the list (under kcache.lock) */
};

struct kcache {
	pthread_mutex_t lock;
	kchunk *head, *tail;
	size_t bytes, cap;
};

int kcache_new(size_t cap, kcache **out)
{
	kcache *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->cap = cap;
	*out = c;
	return 0;
}

static size_t chunk_bytes(const kchunk *ch)
{
	return ch->dcap + ch->cap * sizeof *ch->recs + sizeof *ch;
}

static void chunk_free(kchunk *ch)
{
	free(ch->recs);
	free(ch->data);
	free(ch);
}

void kcache_free(kcache *c)
{
	if (!c)
		return;
	for (kchunk *ch = c->head, *nx; ch; ch = nx) {
		nx = ch->nextc;
		chunk_free(ch);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int kchunk_new(const void *owner, int64_t first, kchunk **out)
{
	kchunk *ch = calloc(1, sizeof *ch);
	if (!ch)
		return -ENOMEM;
	ch->owner = owner;
	ch->first = ch->next = first;
	ch->refs = 1;
	*out = ch;
	return 0;
}

static int grow(kchunk *ch, size_t more)
{
	if (ch->len + more <= ch->dcap)
		return 0;
	size_t cap = ch->dcap ? ch->dcap : 4096;
	while (cap < ch->len + more)
		cap *= 2;
	char *d = realloc(ch->data, cap);
	if (!d)
		return -ENOMEM;
	ch->data = d;
	ch->dcap = cap;
	return 0;
}

static size_t put_bytes(kchunk *ch, const void *p, size_t n)
{
	size_t at = ch->len;
	if (n)
		memcpy(ch->data + at, p, n);
	ch->len += n;
	return at;
}

int kchunk_add(kchunk *ch, const kc_rec *r)
{
	if (ch->n == ch->cap) {
		size_t cap = ch->cap ? ch->cap * 2 : 64;
		kcrec *v = realloc(ch->recs, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		ch->recs = v;
		ch->cap = cap;
	}
	size_t hlen = 0;
	for (size_t i = 0; i < r->nheaders; i++)
		hlen += 6 + (r->headers[i].name_len & 0xffff) + r->headers[i].value_len;
	size_t klen = r->key ? r->key_len : 0;
	if (r->value_len > UINT32_MAX || klen > UINT32_MAX || hlen > UINT32_MAX ||
	    grow(ch, r->value_len + klen + hlen))
		return -ENOMEM;
	kcrec *o = &ch->recs[ch->n];
	*o = (kcrec){ .offset = r->offset, .timestamp_ms = r->timestamp_ms,
		      .value_len = (uint32_t)r->value_len, .key_len = (uint32_t)klen,
		      .has_key = r->key != NULL, .headers_len = (uint32_t)hlen,
		      .nheaders = (uint16_t)r->nheaders, .tombstone = r->tombstone != 0 };
	o->value = put_bytes(ch, r->value, r->value_len);
	o->key = put_bytes(ch, r->key, klen);
	o->headers = ch->len;
	for (size_t i = 0; i < r->nheaders; i++) {
		uint16_t nl = (uint16_t)r->headers[i].name_len;
		uint32_t vl = (uint32_t)r->headers[i].value_len;
		put_bytes(ch, &nl, 2);
		put_bytes(ch, r->headers[i].name, nl);
		put_bytes(ch, &vl, 4);
		put_bytes(ch, r->headers[i].value, vl);
	}
	ch->n++;
	ch->next = r->offset + 1;
	return 0;
}

void kchunk_seal(kchunk *ch, int64_t next)
{
	if (next > ch->next)
		ch->next = next;
}

static void unlink_chunk(kcache *c, kchunk *ch)
{
	if (ch->prev)
		ch->prev->nextc = ch->nextc;
	else
		c->head = ch->nextc;
	if (ch->nextc)
		ch->nextc->prev = ch->prev;
	else
		c->tail = ch->prev;
	ch->prev = ch->nextc = NULL;
	ch->linked = 0;
	c->bytes -= chunk_bytes(ch);
}

static void push_front(kcache *c, kchunk *ch)
{
	ch->prev = NULL;
	ch->nextc = c->head;
	if (c->head)
		c->head->prev = ch;
	else
		c->tail = ch;
	c->head = ch;
	ch->linked = 1;
	c->bytes += chunk_bytes(ch);
}

/* Drop one list reference (lock held); the chunk is freed with its last. */
static void unref(kchunk *ch)
{
	if (--ch->refs == 0)
		chunk_free(ch);
}

void kcache_put(kcache *c, kchunk *ch)
{
	pthread_mutex_lock(&c->lock);
	/* a chunk overlapping the new one's range is older: the new wins */
	for (kchunk *o = c->head, *nx; o; o = nx) {
		nx = o->nextc;
		if (o->owner == ch->owner && o->first < ch->next && ch->first < o->next) {
			unlink_chunk(c, o);
			unref(o);
		}
	}
	ch->refs++; /* the list's */
	push_front(c, ch);
	while (c->bytes > c->cap && c->tail && c->tail != ch) {
		kchunk *old = c->tail;
		unlink_chunk(c, old);
		unref(old);
	}
	pthread_mutex_unlock(&c->lock);
}

kchunk *kcache_get(kcache *c, const void *owner, int64_t off)
{
	kchunk *hit = NULL;
	pthread_mutex_lock(&c->lock);
	for (kchunk *ch = c->head; ch; ch = ch->nextc) {
		if (ch->owner == owner && ch->first <= off && off < ch->next) {
			hit = ch;
			break;
		}
	}
	if (hit) {
		hit->refs++;
		if (hit != c->head) {
			unlink_chunk(c, hit);
			push_front(c, hit);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void kchunk_release(kcache *c, kchunk *ch)
{
	pthread_mutex_lock(&c->lock);
	unref(ch);
	pthread_mutex_unlock(&c->lock);
}

void kcache_drop(kcache *c, const void *owner)
{
	pthread_mutex_lock(&c->lock);
	for (kchunk *o = c->head, *nx; o; o = nx) {
		nx = o->nextc;
		if (o->owner == owner) {
			unlink_chunk(c, o);
			unref(o);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

size_t kcache_bytes(kcache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t b = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return b;
}

int64_t kchunk_first(const kchunk *ch) { return ch->first; }
int64_t kchunk_next(const kchunk *ch) { return ch->next; }
size_t kchunk_count(const kchunk *ch) { return ch->n; }
const kcrec *kchunk_rec(const kchunk *ch, size_t i) { return &ch->recs[i]; }
const char *kchunk_data(const kchunk *ch) { return ch->data; }

size_t kchunk_find(const kchunk *ch, int64_t off)
{
	size_t lo = 0, hi = ch->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ch->recs[mid].offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
