/*
 * keytable.c - key tables (SSTables): the writer, the reader, the Bloom
 * filter. The format is in keytable.h.
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

#define WBUF (2u << 20)
#define BLOOM_LAG 16

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

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (al > bl) - (al < bl);
}


static inline uint32_t bloom_line(uint64_t h, uint32_t nlines)
{
	return (uint32_t)(((h >> 32) * (uint64_t)nlines) >> 32);
}

static inline void bloom_probe(uint64_t h, uint32_t nlines, uint32_t *line, uint32_t *g, uint32_t *d)
{
	*line = bloom_line(h, nlines);
	*g = (uint32_t)h;
	*d = *g >> 17 | *g << 15;
}

/* ---- writer ---------------------------------------------------------------- */

struct sb_kt_writer {
	const sb_io *io;
	int fd;
	char dir[PATH_MAX], name[48];
	uint64_t first, last, count, max;
	uint32_t level;
	uint64_t fpos;              /* file bytes written or buffered */
	uint8_t *wbuf;              /* pending file bytes */
	size_t wlen, wcap;
	uint8_t *blk;               /* entries of the current block */
	size_t blen, bcap;
	uint32_t *pos;              /* their positions */
	uint32_t npos, poscap;
	uint8_t *lastkey;           /* the last key of the last block ended */
	size_t lastlen, lastcap;
	uint8_t *idx, *ikeys;       /* index entries, key area */
	size_t idxlen, idxcap, iklen, ikcap;
	uint32_t nblocks;
	uint8_t *bloom;
	uint32_t nlines;
	uint64_t lag[BLOOM_LAG];    /* hashes of the last keys, not yet set */
};

static void bloom_set(sb_kt_writer *w, uint64_t h)
{
	uint32_t line, g, d;

	bloom_probe(h, w->nlines, &line, &g, &d);
	uint8_t *L = w->bloom + (size_t)line * 64;
	for (int i = 0; i < SB_KT_BLOOM_K; i++, g += d)
		L[(g & 511) >> 3] |= (uint8_t)(1u << (g & 7));
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	uint8_t *n = realloc(*p, c);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

static int wflush(sb_kt_writer *w)
{
	if (!w->wlen)
		return 0;
	int rc = sb_pwrite_full(w->io, w->fd, w->wbuf, w->wlen, (off_t)(w->fpos - w->wlen));
	w->wlen = 0;
	return rc;
}

/* The buffer is written when full: every write but the last is WBUF bytes
 * at a multiple of WBUF (2 MiB), which the page cache may keep as one huge
 * folio, mapped by readers with one TLB entry (sb_kt_open). */
static int wput(sb_kt_writer *w, const void *p, size_t n)
{
	const uint8_t *src = p;
	int rc;

	while (n) { /* (an empty table's empty parts: p may be NULL) */
		size_t c = w->wcap - w->wlen < n ? w->wcap - w->wlen : n;
		memcpy(w->wbuf + w->wlen, src, c);
		w->wlen += c;
		w->fpos += c;
		src += c;
		n -= c;
		if (w->wlen == w->wcap && (rc = wflush(w)))
			return rc;
	}
	return 0;
}

static void writer_free(sb_kt_writer *w)
{
	free(w->wbuf);
	free(w->blk);
	free(w->pos);
	free(w->lastkey);
	free(w->idx);
	free(w->ikeys);
	free(w->bloom);
	free(w);
}

int sb_kt_writer_new(const sb_io *io, const char *dir, uint64_t first, uint64_t last, uint64_t max_entries,
		     uint32_t level, sb_kt_writer **out)
{
	char tmp[PATH_MAX];
	sb_kt_writer *w = calloc(1, sizeof(*w));
	int rc = -ENOMEM;

	if (!w)
		return -ENOMEM;
	w->io = io;
	w->first = first;
	w->last = last;
	w->max = max_entries;
	w->level = level;
	w->fd = -1;
	sb_kt_name(w->name, first, last);
	uint64_t lines = (max_entries * SB_KT_BLOOM_BITS_PER_KEY + 511) / 512;
	w->nlines = lines ? (lines > UINT32_MAX ? UINT32_MAX : (uint32_t)lines) : 1;
	w->wcap = WBUF;
	if (!(w->wbuf = malloc(WBUF)) || !(w->bloom = calloc(w->nlines, 64)))
		goto out_free;
	if (snprintf(w->dir, sizeof(w->dir), "%s", dir) >= (int)sizeof(w->dir) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, w->name) >= (int)sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	w->fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (w->fd < 0) {
		rc = w->fd;
		goto out_free;
	}
	*out = w;
	return 0;
out_free:
	writer_free(w);
	return rc;
}

static int end_block(sb_kt_writer *w)
{
	int rc;

	if (!w->npos)
		return 0;
	/* The positions, the count and the CRC go after the entries in the
	 * block's buffer (sb_kt_writer_add keeps room): one CRC over the
	 * block, one copy to the file buffer. */
	uint64_t bpos = w->fpos;
	const uint8_t *le = w->blk + w->pos[w->npos - 1];
	size_t ll = sb_get16(le);
	if (grow(&w->lastkey, &w->lastcap, ll))
		return -ENOMEM;
	memcpy(w->lastkey, le + SB_KT_ENTRY, ll);
	w->lastlen = ll;
	uint8_t *t = w->blk + w->blen;
	for (uint32_t i = 0; i < w->npos; i++)
		sb_put32(t + 4 * (size_t)i, w->pos[i]);
	t += 4 * (size_t)w->npos;
	sb_put32(t, w->npos);
	size_t len = (size_t)(t + 4 - w->blk);
	sb_put32(t + 4, sb_crc32c(0, w->blk, len));
	if ((rc = wput(w, w->blk, len + 4)))
		return rc;
	/* index entry: position, length, last key */
	if (grow(&w->idx, &w->idxcap, w->idxlen + 16) || grow(&w->ikeys, &w->ikcap, w->iklen + 2 + w->lastlen))
		return -ENOMEM;
	sb_put64(w->idx + w->idxlen, bpos);
	sb_put32(w->idx + w->idxlen + 8, (uint32_t)(w->fpos - bpos));
	sb_put32(w->idx + w->idxlen + 12, (uint32_t)w->iklen);
	w->idxlen += 16;
	sb_put16(w->ikeys + w->iklen, (uint16_t)w->lastlen);
	memcpy(w->ikeys + w->iklen + 2, w->lastkey, w->lastlen);
	w->iklen += 2 + w->lastlen;
	w->nblocks++;
	w->blen = 0;
	w->npos = 0;
	return 0;
}

/* Does key b come after key a? Most keys differ in their first 8 bytes:
 * those are compared as one number first. */
static inline int key_after(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al >= 8 && bl >= 8) {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return __builtin_bswap64(x) < __builtin_bswap64(y);
	}
	return kcmp(a, al, b, bl) < 0;
}

int sb_kt_writer_add(sb_kt_writer *w, const void *key, size_t klen, const sb_mt_val *v)
{
	size_t esz = SB_KT_ENTRY + klen;
	int rc;

	/* The previous key: the block's last entry's, or the last block's. */
	const uint8_t *pk = w->lastkey;
	size_t pl = w->lastlen;
	if (w->npos) {
		pk = w->blk + w->pos[w->npos - 1];
		pl = sb_get16(pk);
		pk += SB_KT_ENTRY;
	}
	if (!klen || klen > SB_KEY_MAX || w->count >= w->max || (w->count && !key_after(pk, pl, key, klen)))
		return -EINVAL;
	if (w->npos && w->blen + esz + 4 * (w->npos + 1) + 8 > SB_KT_BLOCK && (rc = end_block(w)))
		return rc;
	/* room for the block's tail too (end_block): positions, count, CRC */
	if (grow(&w->blk, &w->bcap, w->blen + esz + 4 * ((size_t)w->npos + 1) + 8))
		return -ENOMEM;
	if (w->npos == w->poscap) {
		uint32_t c = w->poscap ? w->poscap * 2 : 256;
		uint32_t *p = realloc(w->pos, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		w->pos = p;
		w->poscap = c;
	}
	uint8_t *e = w->blk + w->blen;
	sb_put16(e, (uint16_t)klen);
	sb_put16(e + 2, v->flags);
	sb_put32(e + 4, v->size);
	sb_put64(e + 8, v->offset);
	sb_put64(e + 16, (uint64_t)v->ts);
	sb_put32(e + 24, v->pos);
	memcpy(e + SB_KT_ENTRY, key, klen);
	w->pos[w->npos++] = (uint32_t)w->blen;
	w->blen += esz;
	/* Bloom: the line is fetched now, its bits set BLOOM_LAG keys later
	 * (a filter of a big table is out of cache: a miss a key otherwise) */
	uint64_t h = sb_kt_hash(key, klen);
	__builtin_prefetch(w->bloom + (size_t)bloom_line(h, w->nlines) * 64, 1);
	if (w->count >= BLOOM_LAG)
		bloom_set(w, w->lag[w->count % BLOOM_LAG]);
	w->lag[w->count % BLOOM_LAG] = h;
	w->count++;
	return 0;
}

void sb_kt_writer_abort(sb_kt_writer *w)
{
	char tmp[PATH_MAX];

	if (!w)
		return;
	if (w->fd >= 0)
		w->io->close(w->io->ctx, w->fd);
	if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", w->dir, w->name) < (int)sizeof(tmp))
		w->io->unlink(w->io->ctx, tmp);
	writer_free(w);
}

int sb_kt_writer_finish(sb_kt_writer *w)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	uint8_t hdr[8], f[SB_KT_FOOTER];
	int rc;

	if ((rc = end_block(w)))
		goto out_abort;
	for (uint64_t i = w->count > BLOOM_LAG ? w->count - BLOOM_LAG : 0; i < w->count; i++)
		bloom_set(w, w->lag[i % BLOOM_LAG]);
	/* index */
	uint64_t ipos = w->fpos;
	sb_put32(hdr, w->nblocks);
	uint32_t icrc = sb_crc32c(0, hdr, 4);
	icrc = sb_crc32c(icrc, w->idx, w->idxlen);
	icrc = sb_crc32c(icrc, w->ikeys, w->iklen);
	if ((rc = wput(w, hdr, 4)) || (rc = wput(w, w->idx, w->idxlen)) || (rc = wput(w, w->ikeys, w->iklen)))
		goto out_abort;
	uint64_t ilen = w->fpos - ipos;
	/* Bloom */
	uint64_t bpos = w->fpos;
	sb_put32(hdr, w->nlines);
	sb_put32(hdr + 4, SB_KT_BLOOM_K);
	uint32_t bcrc = sb_crc32c(sb_crc32c(0, hdr, 8), w->bloom, (size_t)w->nlines * 64);
	if ((rc = wput(w, hdr, 8)) || (rc = wput(w, w->bloom, (size_t)w->nlines * 64)))
		goto out_abort;
	uint64_t blen = w->fpos - bpos;
	if (ilen > UINT32_MAX || blen > UINT32_MAX) {
		rc = -EFBIG;
		goto out_abort;
	}
	memset(f, 0, sizeof(f));
	sb_put32(f, SB_KT_MAGIC);
	sb_put16(f + 4, SB_KT_VERSION);
	sb_put16(f + 6, SB_KT_FOOTER);
	sb_put64(f + 8, w->count);
	sb_put64(f + 16, w->first);
	sb_put64(f + 24, w->last);
	sb_put64(f + 32, ipos);
	sb_put32(f + 40, (uint32_t)ilen);
	sb_put32(f + 44, icrc);
	sb_put64(f + 48, bpos);
	sb_put32(f + 56, (uint32_t)blen);
	sb_put32(f + 60, bcrc);
	sb_put32(f + 64, w->level);
	sb_put32(f + 68, sb_crc32c(0, f, 68));
	if ((rc = wput(w, f, sizeof(f))) || (rc = wflush(w)))
		goto out_abort;
	if ((rc = w->io->fdatasync(w->io->ctx, w->fd)))
		goto out_abort;
	rc = w->io->close(w->io->ctx, w->fd);
	w->fd = -1;
	if (rc)
		goto out_abort;
	if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", w->dir, w->name) >= (int)sizeof(tmp) ||
	    sb_path(path, w->dir, w->name)) {
		rc = -ENAMETOOLONG;
		goto out_abort;
	}
	if ((rc = w->io->rename(w->io->ctx, tmp, path)))
		goto out_abort;
	rc = sb_fsync_dir(w->io, w->dir);
	writer_free(w);
	return rc;
out_abort:
	sb_kt_writer_abort(w);
	return rc;
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

int sb_kt_open_written(const sb_io *io, const char *dir, const char *name, sb_kt **out)
{
	return kt_open(io, dir, name, 0, out, NULL, 0);
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

uint64_t sb_kt_first(const sb_kt *t) { return t->first; }
uint64_t sb_kt_last(const sb_kt *t) { return t->last; }
uint64_t sb_kt_count(const sb_kt *t) { return t->count; }
uint32_t sb_kt_level(const sb_kt *t) { return t->level; }
uint64_t sb_kt_file_bytes(const sb_kt *t) { return t->len; }
const char *sb_kt_filename(const sb_kt *t) { return t->name; }

void sb_kt_prefetch(const sb_kt *t, uint64_t h)
{
	uint32_t line, g, d;

	bloom_probe(h, t->nlines, &line, &g, &d);
	__builtin_prefetch(t->bloom + (size_t)line * 64);
}

int sb_kt_may_contain(const sb_kt *t, uint64_t h)
{
	uint32_t line, g, d;

	bloom_probe(h, t->nlines, &line, &g, &d);
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
		if (!(e = entry_at(it, j, &kl)) || (*prev && kcmp(*prev, *pl, e + SB_KT_ENTRY, kl) >= 0))
			return SB_ECORRUPT;
		*prev = e + SB_KT_ENTRY;
		*pl = kl;
	}
	return kcmp(*prev, *pl, ik + 2, sb_get16(ik)) ? SB_ECORRUPT : 0;
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
		if (kcmp(ik + 2, sb_get16(ik), k, kl) < 0)
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
		int c = ep != p ? (ep < p ? -1 : 1) : kcmp(e + SB_KT_ENTRY, ml, k, kl);
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
