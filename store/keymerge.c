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
	if (s->is_run) {
		if (!sb_kr_iter_load(&s->ri, &s->k, &s->kl, &s->pfx))
			s->k = NULL;
		return;
	}
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

/* The merge's tournament (a loser tree): each inner node holds the source
 * that lost there; a source that moved on replays its path to the root,
 * one comparison a level (log2 n a key, where a scan of all heads takes n).
 * pfx[i] is source i's current prefix, UINT64_MAX once it ended and for
 * the tree's padding (i >= n): the comparison of two prefixes decides
 * almost every match, without a branch; a tie (equal prefixes, or an
 * ended source) is settled by src_tie. */
typedef struct mtree {
	uint32_t *lose;  /* [1, m): the loser at each inner node */
	uint64_t *pfx;   /* [0, m) */
	size_t m;        /* leaves: n rounded up to a power of 2 */
	uint32_t win;
} mtree;

/* Does source i come before source j, whose prefixes are equal: the
 * lesser key, of a key the newer source (the lower index); ended sources
 * (and the padding) last. */
static int src_tie(const src *s, size_t n, uint32_t i, uint32_t j)
{
	const src *a = i < n ? &s[i] : NULL, *b = j < n ? &s[j] : NULL;
	int ea = !a || !a->k, eb = !b || !b->k;

	if (ea || eb)
		return ea == eb ? i < j : eb;
	int c = kcmp(a->k, a->kl, b->k, b->kl);
	return c ? c < 0 : i < j;
}

static inline int src_before(const mtree *t, const src *s, size_t n, uint32_t i, uint32_t j)
{
	uint64_t a = t->pfx[i], b = t->pfx[j];

	if (__builtin_expect(a != b, 1))
		return a < b;
	return src_tie(s, n, i, j);
}

static inline void mtree_set(mtree *t, const src *s, uint32_t i)
{
	t->pfx[i] = s[i].k ? s[i].pfx : UINT64_MAX;
}

static void mtree_replay(mtree *t, const src *s, size_t n, uint32_t i)
{
	for (size_t node = (i + t->m) >> 1; node; node >>= 1) {
		uint32_t l = t->lose[node];
		/* masks, not a branch: which one wins is a coin toss */
		uint32_t b = -(uint32_t)src_before(t, s, n, l, i);
		t->lose[node] = (i & b) | (l & ~b);
		i = (l & b) | (i & ~b);
	}
	t->win = i;
}

/* Fill the tree bottom up (w: 2 m places of scratch). */
static void mtree_build(mtree *t, const src *s, size_t n, uint32_t *w)
{
	for (size_t i = 0; i < t->m; i++) {
		w[t->m + i] = (uint32_t)i;
		t->pfx[i] = UINT64_MAX;
		if (i < n)
			mtree_set(t, s, (uint32_t)i);
	}
	for (size_t node = t->m - 1; node; node--) {
		uint32_t a = w[2 * node], b = w[2 * node + 1];
		int ab = src_before(t, s, n, a, b);
		w[node] = ab ? a : b;
		t->lose[node] = ab ? b : a;
	}
	t->win = t->m > 1 ? w[1] : 0;
}

int sb_km_merge(src *s, size_t n, sb_kx_scan_fn fn, void *arg)
{
	uint32_t buf[3 * 64], *mem = buf;
	uint64_t pbuf[64], *pfx = pbuf;
	uint8_t kb[256], *last = kb;
	size_t lcap = sizeof(kb);
	mtree t = {.m = 1};
	int rc = 0;

	while (t.m < n)
		t.m <<= 1;
	if (t.m > sizeof(pbuf) / sizeof(*pbuf) &&
	    (!(mem = malloc(3 * t.m * sizeof(*mem))) || !(pfx = malloc(t.m * sizeof(*pfx))))) {
		free(mem);
		return -ENOMEM;
	}
	t.lose = mem; /* [1, m); then the build's scratch, 2 m */
	t.pfx = pfx;
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
			mtree_set(&t, s, i);
			mtree_replay(&t, s, n, i);
		} while (t.win < n && s[t.win].k && s[t.win].pfx == lp && s[t.win].kl == kl &&
			 !memcmp(s[t.win].k, last, kl));
	}
	if (last != kb)
		free(last);
	if (mem != buf) {
		free(mem);
		free(pfx);
	}
	return rc;
}
