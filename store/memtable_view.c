/*
 * memtable_view.c - the MemTable's sorted view and ordered iteration
 * (memtable.h; how the table works: memtable.c). The view holds the
 * entries up to the newest one it took from the feed, sorted by key; a
 * seek that finds newer entries sorts them and merges them in.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyprefix.h"
#include "memtable_impl.h"

/* ---- key order --------------------------------------------------------------- */


/* Keys compare as bytes, a shorter prefix first. */
static int key_cmp(uint64_t pa, const uint8_t *a, size_t al, uint64_t pb, const uint8_t *b, size_t bl)
{
	if (pa != pb)
		return pa < pb ? -1 : 1;
	size_t m = al < bl ? al : bl;
	if (m > 8) {
		int c = memcmp(a + 8, b + 8, m - 8);
		if (c)
			return c;
	}
	return (al > bl) - (al < bl);
}

static int vent_cmp(const void *x, const void *y)
{
	const mt_vent *a = x, *b = y;
	return key_cmp(a->pfx, a->e->key, a->e->klen, b->pfx, b->e->key, b->e->klen);
}

/* ---- the sorted view and iteration ------------------------------------------- */

/* Add the entries made since the view was built: sort them, merge them in
 * from the back. 0, or -ENOMEM (the view stays as it was). [vlock excl.] */
static int view_refresh(sb_mt *m)
{
	size_t n = atomic_load_explicit(&m->nents, memory_order_acquire), k = n - m->vn;

	if (!k)
		return 0;
	if (m->no_view)
		return -ENOMEM;
	mt_vent *add = malloc(k * sizeof(*add));
	if (!add)
		return -ENOMEM;
	if (n > m->vcap) {
		size_t cap = n + n / 2;
		mt_vent *nv = realloc(m->view, cap * sizeof(*nv));
		if (!nv) {
			free(add);
			return -ENOMEM;
		}
		atomic_store_explicit(&m->vbytes, cap * sizeof(*nv), memory_order_relaxed);
		m->view = nv;
		m->vcap = cap;
	}
	const mt_ent *e = m->vlast ? feed_next(m, m->vlast) : feed_first(m);
	for (size_t i = 0; i < k; i++) {
		add[i] = (mt_vent){sb_key_prefix(e->key, e->klen), e};
		m->vlast = e;
		if (i + 1 < k)
			e = feed_next(m, e);
	}
	qsort(add, k, sizeof(*add), vent_cmp);
	size_t i = m->vn, j = k, w = n;
	while (j) {
		if (i && vent_cmp(&m->view[i - 1], &add[j - 1]) > 0)
			m->view[--w] = m->view[--i];
		else
			m->view[--w] = add[--j];
	}
	free(add);
	m->vn = n;
	m->vgen++;
	return 0;
}

/* The first index of the view whose key is >= key (> key: after). [vlock] */
static size_t view_lower(const sb_mt *m, const uint8_t *k, size_t kl, int after)
{
	uint64_t pfx = sb_key_prefix(k, kl);
	size_t lo = 0, hi = m->vn;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const mt_vent *v = &m->view[mid];
		int c = key_cmp(v->pfx, v->e->key, v->e->klen, pfx, k, kl);
		if (c < 0 || (after && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void iter_at(sb_mt_iter *it, const mt_ent *e, const sb_mt_val *v)
{
	it->key = e->key;
	it->klen = e->klen;
	it->val = *v;
	it->valid = 1;
}

/* From view index i on: the first present entry. [vlock] */
static void view_settle(const sb_mt *m, size_t i, sb_mt_iter *it)
{
	sb_mt_val v;

	for (; i < m->vn; i++) {
		const mt_ent *e = m->view[i].e;
		if (!(ent_get(e, &v) & MT_GONE)) {
			iter_at(it, e, &v);
			it->at = i;
			it->gen = m->vgen;
			return;
		}
	}
	it->valid = 0;
}

/* Without a view (no memory for one): the least present key >= key (>:
 * after), by a walk over every entry. */
static void scan_settle(const sb_mt *m, const uint8_t *k, size_t kl, int after, sb_mt_iter *it)
{
	uint64_t pfx = kl ? sb_key_prefix(k, kl) : 0, bp = 0;
	const mt_ent *best = NULL;
	sb_mt_val v, bv = {0};

	for (const mt_ent *e = feed_first(m); e; e = feed_next(m, e)) {
		uint64_t ep = sb_key_prefix(e->key, e->klen);
		int c = kl ? key_cmp(ep, e->key, e->klen, pfx, k, kl) : 1;
		if (c < 0 || (after && c == 0) || (best && key_cmp(ep, e->key, e->klen, bp, best->key, best->klen) >= 0))
			continue;
		if (!(ent_get(e, &v) & MT_GONE))
			best = e, bp = ep, bv = v;
	}
	it->valid = 0;
	if (best)
		iter_at(it, best, &bv);
	it->gen = 0;
}

void sb_mt_seek(const sb_mt *m, const void *key, size_t klen, sb_mt_iter *it)
{
	sb_mt *w = (sb_mt *)m; /* the view is built on demand */
	int fresh = 1;

	it->m = m;
	pthread_rwlock_rdlock(&w->vlock);
	if (atomic_load_explicit(&m->nents, memory_order_acquire) != m->vn) {
		pthread_rwlock_unlock(&w->vlock);
		pthread_rwlock_wrlock(&w->vlock);
		fresh = view_refresh(w) == 0;
	}
	if (fresh)
		view_settle(m, klen ? view_lower(m, key, klen, 0) : 0, it);
	else
		scan_settle(m, key, klen, 0, it);
	pthread_rwlock_unlock(&w->vlock);
}

int sb_mt_iter_valid(const sb_mt_iter *it)
{
	return it->valid;
}

void sb_mt_iter_next(sb_mt_iter *it)
{
	sb_mt *w = (sb_mt *)it->m;

	if (!it->valid)
		return;
	pthread_rwlock_rdlock(&w->vlock);
	if (!it->gen)
		scan_settle(w, it->key, it->klen, 1, it);
	else if (it->gen == w->vgen)
		view_settle(w, it->at + 1, it);
	else /* the view was rebuilt: find its place again */
		view_settle(w, view_lower(w, it->key, it->klen, 1), it);
	pthread_rwlock_unlock(&w->vlock);
}

const uint8_t *sb_mt_iter_key(const sb_mt_iter *it, size_t *klen)
{
	*klen = it->klen;
	return it->key;
}

void sb_mt_iter_val(const sb_mt_iter *it, sb_mt_val *v)
{
	*v = it->val;
}

