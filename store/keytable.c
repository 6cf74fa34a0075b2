/*
 * keytable.c - key tables (SSTables): the names, the hash, the reader and
 * its Bloom filter (the writer is keytable_write.c). The format is in
 * keytable.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "fsutil.h"
#include "keyprefix.h"
#include "keytable.h"

uint64_t sb_kt_hash(const void *key, size_t n)
{
	const uint8_t *k = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull), v;

	while (n >= 8) {
		memcpy(&v, k, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 29;
		k += 8;
		n -= 8;
	}
	v = 0;
	memcpy(&v, k, n);
	h = (h ^ v ^ ((uint64_t)n << 56)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

void sb_kt_name(char *buf, uint64_t first, uint64_t last)
{
	snprintf(buf, 48, "%020llu-%020llu%s", (unsigned long long)first, (unsigned long long)last, SB_KT_SUFFIX);
}

int sb_kt_name_parse(const char *name, uint64_t *first, uint64_t *last)
{
	uint64_t v[2] = {0, 0};

	if (strlen(name) != 41 + strlen(SB_KT_SUFFIX) || name[20] != '-' || strcmp(name + 41, SB_KT_SUFFIX))
		return -EINVAL;
	for (int j = 0; j < 2; j++) {
		for (int i = 0; i < 20; i++) {
			char c = name[j * 21 + i];
			if (c < '0' || c > '9' || v[j] > (UINT64_MAX - 9) / 10)
				return -EINVAL;
			v[j] = v[j] * 10 + (uint64_t)(c - '0');
		}
	}
	if (v[0] > v[1])
		return -EINVAL;
	*first = v[0];
	*last = v[1];
	return 0;
}

/* ---- reader ---------------------------------------------------------------- */

/* A block as a lookup needs it: its last key's first 8 bytes, big-endian
 * (block_find), and where it lies (pos << 24 | len), from the block index
 * as checked at open. */
struct kt_blk {
	uint64_t pfx, loc;
};
#define KT_LEN_BITS 24
/* Blocks a group of the search's top level: the prefix of every group's
 * last block in a dense array (a big table's is 1/32 of its kt_blk array:
 * in cache), searched first; then the group's KT_GROUP blocks, 4 lines,
 * fetched at once. */
#define KT_GROUP 16

struct sb_kt {
	const uint8_t *map;
	size_t len;
	uint64_t count, first, last;
	uint32_t level, nblocks, nlines, k;
	const uint8_t *idx;         /* nblocks x 16 */
	const uint8_t *ikeys;
	size_t iklen;
	const uint8_t *bloom;
	struct kt_blk *blk;         /* nblocks: the block index in memory */
	uint64_t *top;              /* ntop: its groups' last prefixes (in blk's allocation) */
	uint32_t ntop;
	char name[48];
	char path[PATH_MAX];
	int lazy;                   /* published unsynced (keyidx_turn.c
				     * knows when it was synced since) */
};

static int block_load_crc(const sb_kt *t, uint32_t i, sb_kt_iter *it, int crc);
static int block_check_keys(const sb_kt *t, uint32_t i, const sb_kt_iter *it, const uint8_t **prev, size_t *pl);

static int bad(char *why, size_t cap, const char *name, const char *what)
{
	if (why && cap)
		snprintf(why, cap, "%s: %s", name, what);
	return SB_ECORRUPT;
}

static int check_layout(sb_kt *t, char *why, size_t whycap)
{
	const uint8_t *f = t->map + t->len - SB_KT_FOOTER;

	if (sb_get32(f) != SB_KT_MAGIC || sb_get16(f + 6) != SB_KT_FOOTER || sb_get32(f + 68) != sb_crc32c(0, f, 68))
		return bad(why, whycap, t->name, "bad footer");
	if (sb_get16(f + 4) != SB_KT_VERSION) {
		bad(why, whycap, t->name, "another table version (rebuilt)");
		return SB_EVERSION;
	}
	t->count = sb_get64(f + 8);
	t->first = sb_get64(f + 16);
	t->last = sb_get64(f + 24);
	t->level = sb_get32(f + 64);
	uint64_t ipos = sb_get64(f + 32), ilen = sb_get32(f + 40), bpos = sb_get64(f + 48), blen = sb_get32(f + 56);
	uint64_t body = t->len - SB_KT_FOOTER;
	if (ipos > body || ilen > body - ipos || bpos > body || blen > body - bpos || ilen < 4 || blen < 8 ||
	    bpos < ipos + ilen)
		return bad(why, whycap, t->name, "footer bounds");
	if (sb_crc32c(0, t->map + ipos, ilen) != sb_get32(f + 44))
		return bad(why, whycap, t->name, "block index CRC");
	if (sb_crc32c(0, t->map + bpos, blen) != sb_get32(f + 60))
		return bad(why, whycap, t->name, "Bloom filter CRC");
	t->nblocks = sb_get32(t->map + ipos);
	t->idx = t->map + ipos + 4;
	if ((uint64_t)t->nblocks * 16 > ilen - 4 || (t->count && !t->nblocks))
		return bad(why, whycap, t->name, "block index size");
	t->ikeys = t->idx + (size_t)t->nblocks * 16;
	t->iklen = ilen - 4 - (size_t)t->nblocks * 16;
	for (uint32_t i = 0; i < t->nblocks; i++) {
		const uint8_t *e = t->idx + (size_t)i * 16;
		uint64_t p = sb_get64(e), l = sb_get32(e + 8), ko = sb_get32(e + 12);
		if (p > ipos || l < 12 || l > ipos - p || ko + 2 > t->iklen || ko + 2 + sb_get16(t->ikeys + ko) > t->iklen)
			return bad(why, whycap, t->name, "block index entry");
	}
	t->nlines = sb_get32(t->map + bpos);
	t->k = sb_get32(t->map + bpos + 4);
	t->bloom = t->map + bpos + 8;
	if (!t->nlines || (uint64_t)t->nlines * 64 != blen - 8 || t->k == 0 || t->k > 32)
		return bad(why, whycap, t->name, "Bloom filter size");
	return 0;
}

static int kt_open(const sb_io *io, const char *dir, const char *name, int check_blocks, sb_kt **out, char *why,
		   size_t whycap);

int sb_kt_open(const sb_io *io, const char *dir, const char *name, sb_kt **out, char *why, size_t whycap)
{
	return kt_open(io, dir, name, 1, out, why, whycap);
}

int sb_kt_open_written(const sb_io *io, const char *dir, const char *name, int durable, sb_kt **out)
{
	int rc = kt_open(io, dir, name, 0, out, NULL, 0);

	if (!rc)
		(*out)->lazy = !durable;
	return rc;
}

static int kt_open(const sb_io *io, const char *dir, const char *name, int check_blocks, sb_kt **out, char *why,
		   size_t whycap)
{
	struct stat st;
	sb_kt *t = calloc(1, sizeof(*t));
	int fd, rc;

	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", name);
	if (sb_path(t->path, dir, name)) {
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	fd = io->open(io->ctx, t->path, O_RDONLY, 0);
	if (fd < 0) {
		rc = fd;
		goto out_free;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		io->close(io->ctx, fd);
		goto out_free;
	}
	t->len = (size_t)st.st_size;
	if (t->len < SB_KT_FOOTER + 12) {
		io->close(io->ctx, fd);
		rc = bad(why, whycap, name, "too short");
		goto out_free;
	}
	void *m = mmap(NULL, t->len, PROT_READ, MAP_SHARED, fd, 0);
	io->close(io->ctx, fd);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto out_free;
	}
	t->map = m;
	/* Lookups touch a random block: with huge folios in the page cache
	 * (the writer's 2 MiB writes; or read in so from here on) one TLB
	 * entry maps 2 MiB of the table. Only a hint. */
	(void)madvise(m, t->len, MADV_HUGEPAGE);
	rc = check_layout(t, why, whycap);
	if (rc)
		goto out_unmap;
	/* Every block, once: damage found now is rebuilt from the log at
	 * open, rather than met by a lookup later. */
	const uint8_t *prev = NULL;
	size_t pl = 0;
	uint64_t entries = 0;
	for (uint32_t i = 0; check_blocks && i < t->nblocks; i++) {
		sb_kt_iter it;
		if (block_load_crc(t, i, &it, 1)) {
			rc = bad(why, whycap, name, "block CRC");
			goto out_unmap;
		}
		if (block_check_keys(t, i, &it, &prev, &pl)) {
			rc = bad(why, whycap, name, "block entries out of bounds or order");
			goto out_unmap;
		}
		entries += it.n;
	}
	if (check_blocks && entries != t->count) {
		rc = bad(why, whycap, name, "entry count");
		goto out_unmap;
	}
	uint64_t first, last;
	if (sb_kt_name_parse(name, &first, &last) || first != t->first || last != t->last) {
		rc = bad(why, whycap, name, "name and footer disagree");
		goto out_unmap;
	}
	t->ntop = (t->nblocks + KT_GROUP - 1) / KT_GROUP;
	/* lines: a group's blocks are 4 whole ones */
	size_t asz = ((size_t)t->nblocks + 1) * sizeof(*t->blk) + ((size_t)t->ntop + 1) * 8;
	if (!(t->blk = aligned_alloc(64, (asz + 63) & ~(size_t)63))) {
		rc = -ENOMEM;
		goto out_unmap;
	}
	t->top = (uint64_t *)(t->blk + t->nblocks + 1);
	for (uint32_t i = 0; i < t->nblocks; i++) {
		const uint8_t *e = t->idx + (size_t)i * 16, *ik = t->ikeys + sb_get32(e + 12);
		uint64_t pos = sb_get64(e), len = sb_get32(e + 8);
		if (len >> KT_LEN_BITS || pos >> (64 - KT_LEN_BITS)) {
			free(t->blk);
			rc = bad(why, whycap, name, "block index entry");
			goto out_unmap;
		}
		t->blk[i] = (struct kt_blk){sb_key_prefix(ik + 2, sb_get16(ik)), pos << KT_LEN_BITS | len};
	}
	for (uint32_t g = 0; g < t->ntop; g++) {
		uint32_t last = (g + 1) * KT_GROUP - 1;
		t->top[g] = t->blk[last < t->nblocks ? last : t->nblocks - 1].pfx;
	}
	*out = t;
	return 0;
out_unmap:
	munmap((void *)t->map, t->len);
out_free:
	free(t);
	return rc;
}

void sb_kt_close(sb_kt *t)
{
	if (!t)
		return;
	munmap((void *)t->map, t->len);
	free(t->blk);
	free(t);
}

int sb_kt_remove(const sb_io *io, sb_kt *t)
{
	int rc = io->unlink(io->ctx, t->path);

	sb_kt_close(t);
	return rc;
}

int sb_kt_durable(const sb_kt *t)
{
	return !t->lazy;
}

uint64_t sb_kt_first(const sb_kt *t) { return t->first; }
uint64_t sb_kt_last(const sb_kt *t) { return t->last; }
uint64_t sb_kt_count(const sb_kt *t) { return t->count; }
uint32_t sb_kt_level(const sb_kt *t) { return t->level; }
uint64_t sb_kt_file_bytes(const sb_kt *t) { return t->len; }
const char *sb_kt_filename(const sb_kt *t) { return t->name; }

void sb_kt_prefetch(const sb_kt *t, uint64_t h)
{
	uint32_t line, g, d;

	sb_kt_bloom_probe(h, t->nlines, &line, &g, &d);
	__builtin_prefetch(t->bloom + (size_t)line * 64);
}

int sb_kt_may_contain(const sb_kt *t, uint64_t h)
{
	uint32_t line, g, d;

	sb_kt_bloom_probe(h, t->nlines, &line, &g, &d);
	const uint8_t *L = t->bloom + (size_t)line * 64;
	for (uint32_t i = 0; i < t->k; i++, g += d)
		if (!(L[(g & 511) >> 3] & (1u << (g & 7))))
			return 0;
	return 1;
}

/* The block at b, len bytes: 0 and *it's b, pos, n, area; or SB_ECORRUPT.
 * Its CRC is checked with `crc` (at open, for every block): lookups check
 * bounds only (a lookup's answer is checked against the record it names,
 * whose CRC covers the key). */
static int block_at(const uint8_t *b, uint32_t len, sb_kt_iter *it, int crc)
{
	uint32_t cnt = sb_get32(b + len - 8);

	if ((crc && sb_crc32c(0, b, len - 4) != sb_get32(b + len - 4)) || !cnt ||
	    cnt > (len - 8) / (4 + SB_KT_ENTRY))
		return SB_ECORRUPT;
	it->b = b;
	it->n = cnt;
	it->area = len - 8 - 4 * cnt;
	it->pos = b + it->area;
	return 0;
}

static int block_load_crc(const sb_kt *t, uint32_t i, sb_kt_iter *it, int crc)
{
	const uint8_t *e = t->idx + (size_t)i * 16;

	return block_at(t->map + sb_get64(e), sb_get32(e + 8), it, crc);
}

static int block_load(const sb_kt *t, uint32_t i, sb_kt_iter *it)
{
	return block_load_crc(t, i, it, 0);
}

/* Entry j of the loaded block, or NULL if it does not lie inside. */
static inline const uint8_t *entry_at(const sb_kt_iter *it, uint32_t j, size_t *klen)
{
	uint32_t p = sb_get32(it->pos + 4 * (size_t)j);

	if (p > it->area - SB_KT_ENTRY)
		return NULL;
	const uint8_t *e = it->b + p;
	size_t kl = sb_get16(e);
	if (!kl || p + SB_KT_ENTRY + kl > it->area)
		return NULL;
	*klen = kl;
	return e;
}

/* Block i (loaded in it) as the writer leaves it: every entry inside, the
 * keys strictly after *prev (the table's previous key, NULL: none) and
 * the last one the block index's; *prev, *pl its last key. Checked at
 * open (a forged or buggy table with valid CRCs is not trusted either). */
static int block_check_keys(const sb_kt *t, uint32_t i, const sb_kt_iter *it, const uint8_t **prev, size_t *pl)
{
	const uint8_t *ik = t->ikeys + sb_get32(t->idx + (size_t)i * 16 + 12), *e;
	size_t kl;

	for (uint32_t j = 0; j < it->n; j++) {
		if (!(e = entry_at(it, j, &kl)) || (*prev && sb_kt_keycmp(*prev, *pl, e + SB_KT_ENTRY, kl) >= 0))
			return SB_ECORRUPT;
		*prev = e + SB_KT_ENTRY;
		*pl = kl;
	}
	return sb_kt_keycmp(*prev, *pl, ik + 2, sb_get16(ik)) ? SB_ECORRUPT : 0;
}

static void entry_val(const uint8_t *e, sb_mt_val *v)
{
	v->flags = sb_get16(e + 2);
	v->size = sb_get32(e + 4);
	v->offset = sb_get64(e + 8);
	v->ts = (int64_t)sb_get64(e + 16);
	v->pos = sb_get32(e + 24);
}

/* The first block whose prefix is >= p (nblocks if none): the first group
 * whose last prefix is >= p (a branchless search of the dense top level,
 * fetching both places its next step can look), then the first such block
 * of that group (there is one: its last). */
static uint32_t pfx_lower(const sb_kt *t, uint64_t p)
{
	const uint64_t *a = t->top, *b = a;
	uint32_t n = t->ntop;

	if (!n)
		return 0;
	while (n > 1) {
		uint32_t half = n / 2;
		__builtin_prefetch(b + half / 2);
		__builtin_prefetch(b + half + half / 2);
		b = *(b + half) < p ? b + half : b;
		n -= half;
	}
	uint32_t g = (uint32_t)(b - a) + (*b < p);
	if (g == t->ntop)
		return t->nblocks;
	const struct kt_blk *k = t->blk + (size_t)g * KT_GROUP;
	for (uint32_t i = 0; i < KT_GROUP * sizeof(*k); i += 64)
		__builtin_prefetch((const uint8_t *)k + i);
	uint32_t i = 0;
	while (k[i].pfx < p)
		i++;
	return g * KT_GROUP + i;
}

/* The first block whose last key is >= key (nblocks if none). The search
 * goes over the blocks' key prefixes in memory (no cache miss into the
 * mapped index per step), then compares whole keys among the blocks whose
 * prefix ties with the key's. */
static uint32_t block_find(const sb_kt *t, const uint8_t *k, size_t kl)
{
	uint64_t p = sb_key_prefix(k, kl);
	uint32_t lo = pfx_lower(t, p), hi = lo;

	while (hi < t->nblocks && t->blk[hi].pfx == p) /* ties: few (next to lo) */
		hi++;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const uint8_t *ik = t->ikeys + sb_get32(t->idx + (size_t)mid * 16 + 12);
		if (sb_kt_keycmp(ik + 2, sb_get16(ik), k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* In the loaded block: the first entry >= key (n if none); -1 on damage. */
static int64_t entry_find(const sb_kt_iter *it, const uint8_t *k, size_t kl, int *eq)
{
	uint32_t lo = 0, hi = it->n;
	uint64_t p = sb_key_prefix(k, kl);

	*eq = 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		size_t ml;
		const uint8_t *e = entry_at(it, mid, &ml);
		if (!e)
			return -1;
		/* the prefixes decide where they differ (sb_key_prefix) */
		uint64_t ep = sb_key_prefix(e + SB_KT_ENTRY, ml);
		int c = ep != p ? (ep < p ? -1 : 1) : sb_kt_keycmp(e + SB_KT_ENTRY, ml, k, kl);
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
			if (c == 0)
				*eq = 1;
		}
	}
	return lo;
}

int sb_kt_get(const sb_kt *t, const void *key, size_t klen, uint64_t h, sb_mt_val *v)
{
	sb_kt_iter it;
	int eq;

	if (!sb_kt_may_contain(t, h))
		return -ENOENT;
	uint32_t bi = block_find(t, key, klen);
	if (bi >= t->nblocks)
		return -ENOENT;
	/* the block's lines at once: the binary search's steps are
	 * dependent loads (fetching only where its first steps land measured
	 * slower) */
	const uint8_t *b = t->map + (t->blk[bi].loc >> KT_LEN_BITS);
	uint32_t len = (uint32_t)(t->blk[bi].loc & ((1u << KT_LEN_BITS) - 1));
	for (uint32_t a = 0; a < len; a += 64)
		__builtin_prefetch(b + a);
	if (block_at(b, len, &it, 0))
		return SB_ECORRUPT;
	int64_t j = entry_find(&it, key, klen, &eq);
	if (j < 0)
		return SB_ECORRUPT;
	if (!eq)
		return -ENOENT;
	size_t kl;
	entry_val(entry_at(&it, (uint32_t)j, &kl), v);
	return 0;
}

static void iter_settle(sb_kt_iter *it)
{
	size_t kl;

	while (!it->err && it->block < it->t->nblocks && it->i >= it->n) {
		if (++it->block >= it->t->nblocks)
			break;
		it->i = 0;
		if (block_load(it->t, it->block, it))
			it->err = SB_ECORRUPT;
	}
	if (!it->err && sb_kt_iter_valid(it) && !entry_at(it, it->i, &kl))
		it->err = SB_ECORRUPT;
}

void sb_kt_seek(const sb_kt *t, const void *key, size_t klen, sb_kt_iter *it)
{
	int eq;

	memset(it, 0, sizeof(*it));
	it->t = t;
	it->block = klen ? block_find(t, key, klen) : 0;
	if (it->block >= t->nblocks)
		return;
	if (block_load(t, it->block, it)) {
		it->err = SB_ECORRUPT;
		return;
	}
	if (klen) {
		int64_t j = entry_find(it, key, klen, &eq);
		if (j < 0) {
			it->err = SB_ECORRUPT;
			return;
		}
		it->i = (uint32_t)j;
	}
	iter_settle(it);
}

int sb_kt_iter_valid(const sb_kt_iter *it)
{
	return !it->err && it->block < it->t->nblocks && it->i < it->n;
}

void sb_kt_iter_next(sb_kt_iter *it)
{
	it->i++;
	iter_settle(it);
}

const uint8_t *sb_kt_iter_key(const sb_kt_iter *it, size_t *klen)
{
	return entry_at(it, it->i, klen) + SB_KT_ENTRY;
}

void sb_kt_iter_val(const sb_kt_iter *it, sb_mt_val *v)
{
	size_t kl;
	entry_val(entry_at(it, it->i, &kl), v);
}
