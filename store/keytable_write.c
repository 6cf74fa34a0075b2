/*
 * keytable_write.c - the key table writer (SSTables: keytable.h has the
 * format): entries into blocks of about SB_KT_BLOCK bytes, the block index,
 * the Bloom filter and the footer, buffered into 2 MiB writes, published
 * durably (NAME.tmp, fdatasync, rename, fsync of the directory), or
 * lazily (the rename alone: sb_kt_writer_lazy).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fsutil.h"
#include "keytable.h"

#define WBUF (2u << 20)
#define BLOOM_LAG 16

/* ---- writer ---------------------------------------------------------------- */

struct sb_kt_writer {
	const sb_io *io;
	int fd;
	int lazy;                   /* sb_kt_writer_lazy */
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

	sb_kt_bloom_probe(h, w->nlines, &line, &g, &d);
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
	return sb_kt_keycmp(a, al, b, bl) < 0;
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
	__builtin_prefetch(w->bloom + (size_t)sb_kt_bloom_line(h, w->nlines) * 64, 1);
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

void sb_kt_writer_lazy(sb_kt_writer *w)
{
	w->lazy = 1;
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
	if (!w->lazy && (rc = w->io->fdatasync(w->io->ctx, w->fd)))
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
	rc = w->lazy ? 0 : sb_fsync_dir(w->io, w->dir);
	writer_free(w);
	return rc;
out_abort:
	sb_kt_writer_abort(w);
	return rc;
}
