/*
 * keymerge.c - merging a key index's sorted sources (keymerge.h): a loser
 * tree over the sources' current keys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keymerge.h"
#include "keyprefix.h"


/* Cache the current key (the merge compares it at each level of its tree). */
static void src_load(src *s)
{
	if (s->is_run)
		s->k = sb_kr_iter_valid(&s->ri) ? sb_kr_iter_key(&s->ri, &s->kl) : NULL;
	else
		s->k = sb_kt_iter_valid(&s->ki) ? sb_kt_iter_key(&s->ki, &s->kl) : NULL;
	if (s->k)
		s->pfx = sb_key_prefix(s->k, s->kl);
}
static void src_val(const src *s, sb_mt_val *v)
{
	if (s->is_run)
		sb_kr_iter_val(&s->ri, v);
	else
		sb_kt_iter_val(&s->ki, v);
}
static void src_next(src *s)
{
	if (s->is_run)
		sb_kr_iter_next(&s->ri);
	else
		sb_kt_iter_next(&s->ki);
	src_load(s);
}
static int src_err(const src *s)
{
	return s->is_run ? 0 : s->ki.err;
}

/* Key order: bytes, a shorter prefix first. Most keys differ in their
 * first 8 bytes: those are compared as one number. */
static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (m >= 8) {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
	}
#endif
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (al > bl) - (al < bl);
}

/* Does source i come before source j in the merge: the lesser key, of a
 * key the newer source (the lower index); ended sources (and the tree's
 * padding, i or j >= n) last. */
static inline int src_before(const src *s, size_t n, uint32_t i, uint32_t j)
{
	const src *a = i < n ? &s[i] : NULL, *b = j < n ? &s[j] : NULL;
	int ea = !a || !a->k, eb = !b || !b->k;

	if (ea || eb)
		return ea == eb ? i < j : eb;
	if (a->pfx != b->pfx)
		return a->pfx < b->pfx;
	int c = kcmp(a->k, a->kl, b->k, b->kl);
	return c ? c < 0 : i < j;
}

/* The merge's tournament (a loser tree): each inner node holds the source
 * that lost there; a source that moved on replays its path to the root,
 * one comparison a level (log2 n a key, where a scan of all heads takes n). */
typedef struct mtree {
	uint32_t *lose;  /* [1, m): the loser at each inner node */
	size_t m;        /* leaves: n rounded up to a power of 2 */
	uint32_t win;
} mtree;

static void mtree_replay(mtree *t, const src *s, size_t n, uint32_t i)
{
	for (size_t node = (i + t->m) >> 1; node; node >>= 1)
		if (src_before(s, n, t->lose[node], i)) {
			uint32_t w = t->lose[node];
			t->lose[node] = i;
			i = w;
		}
	t->win = i;
}

/* Fill the tree bottom up (w: 2 m places of scratch). */
static void mtree_build(mtree *t, const src *s, size_t n, uint32_t *w)
{
	for (size_t i = 0; i < t->m; i++)
		w[t->m + i] = (uint32_t)i;
	for (size_t node = t->m - 1; node; node--) {
		uint32_t a = w[2 * node], b = w[2 * node + 1];
		int ab = src_before(s, n, a, b);
		w[node] = ab ? a : b;
		t->lose[node] = ab ? b : a;
	}
	t->win = t->m > 1 ? w[1] : 0;
}

int sb_km_merge(src *s, size_t n, sb_kx_scan_fn fn, void *arg)
{
	uint32_t buf[3 * 64], *mem = buf;
	uint8_t kb[256], *last = kb;
	size_t lcap = sizeof(kb);
	mtree t = {.m = 1};
	int rc = 0;

	while (t.m < n)
		t.m <<= 1;
	if (3 * t.m > sizeof(buf) / sizeof(*buf) && !(mem = malloc(3 * t.m * sizeof(*mem))))
		return -ENOMEM;
	t.lose = mem; /* [1, m); then the build's scratch, 2 m */
	for (size_t i = 0; i < n && !rc; i++) {
		src_load(&s[i]);
		if (src_err(&s[i]))
			rc = SB_ECORRUPT;
	}
	if (!rc)
		mtree_build(&t, s, n, mem + t.m);
	while (!rc && t.win < n && s[t.win].k) {
		src *w = &s[t.win];
		size_t kl = w->kl;
		sb_mt_val v;
		src_val(w, &v);
		if ((rc = fn(arg, w->k, kl, &v)))
			break;
		/* The key, for the older sources at it: skipped. */
		if (kl > lcap) {
			uint8_t *nl = malloc(kl);
			if (!nl) {
				rc = -ENOMEM;
				break;
			}
			if (last != kb)
				free(last);
			last = nl;
			lcap = kl;
		}
		memcpy(last, w->k, kl);
		uint64_t lp = w->pfx;
		do {
			uint32_t i = t.win;
			src_next(&s[i]);
			if (src_err(&s[i])) {
				rc = SB_ECORRUPT;
				break;
			}
			mtree_replay(&t, s, n, i);
		} while (t.win < n && s[t.win].k && s[t.win].pfx == lp && s[t.win].kl == kl &&
			 !memcmp(s[t.win].k, last, kl));
	}
	if (last != kb)
		free(last);
	if (mem != buf)
		free(mem);
	return rc;
}
