/*
 * timeindex.c - the sparse time index of one segment: in memory and on
 * disk (timeindex.h says what an entry means, format.h the file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "fsutil.h"
#include "grow.h"
#include "timeindex.h"

/* As in index.c: an array that grows without moving under a reader
 * (grow.h), a few entries on the heap (most segments of most topics need
 * no more). */
#define SMALL_ENTRIES 8

struct sb_tindex {
	sb_grow g;                   /* the entries */
	_Atomic size_t n;            /* published entries */
	_Atomic int64_t max_ts;      /* largest timestamp fed, INT64_MIN: none */
	_Atomic uint32_t open_start; /* first record of the open interval */
	int64_t last_ts;             /* appender: the last entry's ts */
	int fed;                     /* appender: a record was fed */
};

int sb_tindex_new(size_t cap, sb_tindex **out)
{
	sb_tindex *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (sb_grow_init(&t->g, sizeof(sb_tix_entry), cap, SMALL_ENTRIES)) {
		free(t);
		return -ENOMEM;
	}
	atomic_init(&t->n, 0);
	atomic_init(&t->max_ts, INT64_MIN);
	atomic_init(&t->open_start, 0);
	t->last_ts = INT64_MIN;
	*out = t;
	return 0;
}

void sb_tindex_free(sb_tindex *t)
{
	if (!t)
		return;
	sb_grow_fini(&t->g);
	free(t);
}

static sb_tix_entry *entries(const sb_tindex *t)
{
	return sb_grow_entries(&t->g);
}

/* Room for `need` entries (appender only). */
static int reserve(sb_tindex *t, size_t need)
{
	return sb_grow_reserve(&t->g, need, atomic_load_explicit(&t->n, memory_order_relaxed));
}

size_t sb_tindex_count(const sb_tindex *t)
{
	return atomic_load_explicit(&t->n, memory_order_acquire);
}

int sb_tindex_at(const sb_tindex *t, size_t i, sb_tix_entry *e)
{
	if (i >= sb_tindex_count(t))
		return -ENOENT;
	*e = entries(t)[i];
	return 0;
}

int64_t sb_tindex_max(const sb_tindex *t)
{
	return atomic_load_explicit(&t->max_ts, memory_order_acquire);
}

uint32_t sb_tindex_open_start(const sb_tindex *t)
{
	return atomic_load_explicit(&t->open_start, memory_order_acquire);
}

int sb_tindex_feed(sb_tindex *t, uint32_t rel, int64_t ts, int point)
{
	int64_t max = atomic_load_explicit(&t->max_ts, memory_order_relaxed);
	int rc = 0;

	if (point && t->fed) {
		/* The open interval closes: an entry if it raised the maximum. */
		if (max > t->last_ts) {
			size_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
			rc = reserve(t, n + 1);
			if (!rc) {
				entries(t)[n] = (sb_tix_entry){max, atomic_load_explicit(&t->open_start,
											    memory_order_relaxed)};
				atomic_store_explicit(&t->n, n + 1, memory_order_release);
				t->last_ts = max;
			}
		}
		/* Without room the interval stays open (longer scans, same
		 * answers): its start moves only once it has its entry. */
		if (!rc)
			atomic_store_explicit(&t->open_start, rel, memory_order_release);
	}
	if (!t->fed)
		atomic_store_explicit(&t->open_start, rel, memory_order_release);
	t->fed = 1;
	if (ts > max)
		atomic_store_explicit(&t->max_ts, ts, memory_order_release);
	return rc;
}

int sb_tindex_find(const sb_tindex *t, int64_t ts, uint32_t *rel)
{
	if (sb_tindex_max(t) < ts)
		return -ENOENT;
	uint32_t open = sb_tindex_open_start(t);
	size_t n = sb_tindex_count(t);
	const sb_tix_entry *b = entries(t);
	size_t lo = 0, hi = n;

	while (lo < hi) { /* the first entry with ts >= the wanted one */
		size_t mid = lo + (hi - lo) / 2;
		if (b[mid].ts < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	*rel = lo < n ? b[lo].rel : open;
	return 0;
}

int sb_tindex_equal(const sb_tindex *a, const sb_tindex *b)
{
	size_t n = sb_tindex_count(a);

	if (n != sb_tindex_count(b) || sb_tindex_max(a) != sb_tindex_max(b) ||
	    sb_tindex_open_start(a) != sb_tindex_open_start(b))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (entries(a)[i].ts != entries(b)[i].ts || entries(a)[i].rel != entries(b)[i].rel)
			return 0;
	return 1;
}

void sb_tindex_check_begin(sb_tindex_check *c, const sb_tindex *t)
{
	*c = (sb_tindex_check){.t = t, .run = INT64_MIN};
}

/* Boundary j: entry j + 1's start, or the open interval's after the last. */
static uint32_t boundary(const sb_tindex *t, size_t j)
{
	return j + 1 < sb_tindex_count(t) ? entries(t)[j + 1].rel : sb_tindex_open_start(t);
}

void sb_tindex_check_record(sb_tindex_check *c, uint32_t rel, int64_t ts)
{
	size_t n = sb_tindex_count(c->t);

	if (!c->seen) {
		/* A first interval always raises the maximum: it has the first
		 * entry, at the first record (not always rel 0: a compacted
		 * segment's first offset may be gone); none at all: the open
		 * interval starts there. */
		c->seen = 1;
		if (n ? entries(c->t)[0].rel != rel : sb_tindex_open_start(c->t) != rel)
			c->bad = 1;
	}
	if (c->j < n && rel == boundary(c->t, c->j)) {
		if (c->run != entries(c->t)[c->j].ts)
			c->bad = 1;
		c->j++;
	}
	if (ts > c->run)
		c->run = ts;
}

int sb_tindex_check_end(sb_tindex_check *c, uint64_t nrec)
{
	return !c->bad && c->j == sb_tindex_count(c->t) && c->run == sb_tindex_max(c->t) &&
	       (nrec ? sb_tindex_open_start(c->t) < nrec : sb_tindex_open_start(c->t) == 0);
}

/* ---- the file ------------------------------------------------------------ */

static void hdr_encode(uint8_t h[SB_TIX_HDR], const sb_tindex *t, uint64_t base, uint32_t seg_len,
		       uint32_t entries_crc)
{
	memset(h, 0, SB_TIX_HDR);
	sb_put32(h + SB_FH_MAGIC, SB_TIX_MAGIC);
	sb_put16(h + SB_FH_VERSION, SB_FORMAT_VERSION);
	sb_put16(h + SB_FH_SIZE, SB_TIX_HDR);
	sb_put64(h + SB_TIX_AT_BASE, base);
	sb_put32(h + SB_TIX_AT_COUNT, (uint32_t)sb_tindex_count(t));
	sb_put32(h + SB_TIX_AT_SEG_LEN, seg_len);
	sb_put64(h + SB_TIX_AT_MAX_TS, (uint64_t)sb_tindex_max(t));
	sb_put32(h + SB_TIX_AT_OPEN, sb_tindex_open_start(t));
	sb_put32(h + SB_TIX_AT_ECRC, entries_crc);
	sb_put32(h + SB_TIX_AT_CRC, sb_crc32c(0, h, SB_TIX_AT_CRC));
}

int sb_tindex_parse(const uint8_t *buf, size_t len, uint64_t base, uint32_t seg_len, size_t cap,
		    sb_tindex **out)
{
	sb_tindex *t = NULL;
	int rc;

	if (len < SB_TIX_HDR || sb_get32(buf + SB_FH_MAGIC) != SB_TIX_MAGIC ||
	    sb_get16(buf + SB_FH_SIZE) != SB_TIX_HDR ||
	    sb_crc32c(0, buf, SB_TIX_AT_CRC) != sb_get32(buf + SB_TIX_AT_CRC))
		return SB_ECORRUPT;
	if (sb_get16(buf + SB_FH_VERSION) != SB_FORMAT_VERSION)
		return SB_EVERSION;
	uint32_t count = sb_get32(buf + SB_TIX_AT_COUNT), open = sb_get32(buf + SB_TIX_AT_OPEN);
	int64_t max = (int64_t)sb_get64(buf + SB_TIX_AT_MAX_TS);
	if (sb_get64(buf + SB_TIX_AT_BASE) != base || sb_get32(buf + SB_TIX_AT_SEG_LEN) != seg_len ||
	    len != SB_TIX_HDR + (uint64_t)count * SB_TIX_ENTRY ||
	    sb_crc32c(0, buf + SB_TIX_HDR, len - SB_TIX_HDR) != sb_get32(buf + SB_TIX_AT_ECRC) ||
	    (seg_len <= SB_SEG_HDR && (count || open || max != INT64_MIN)))
		return SB_ECORRUPT;
	rc = sb_tindex_new(cap > count ? cap : count, &t);
	if (rc)
		return rc;
	rc = reserve(t, count);
	if (rc)
		goto out_free;
	sb_tix_entry *e = entries(t);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *p = buf + SB_TIX_HDR + (size_t)i * SB_TIX_ENTRY;
		e[i].ts = (int64_t)sb_get64(p + SB_TE_AT_TS);
		e[i].rel = sb_get32(p + SB_TE_AT_REL);
		/* Strictly increasing, the last one's interval before the open
		 * one, nothing above the segment's largest timestamp. */
		if ((i && (e[i].ts <= e[i - 1].ts || e[i].rel <= e[i - 1].rel)) || e[i].rel >= open ||
		    e[i].ts > max) {
			rc = SB_ECORRUPT;
			goto out_free;
		}
	}
	atomic_store_explicit(&t->n, count, memory_order_release);
	atomic_store_explicit(&t->max_ts, max, memory_order_release);
	atomic_store_explicit(&t->open_start, open, memory_order_release);
	t->last_ts = count ? e[count - 1].ts : INT64_MIN;
	t->fed = seg_len > SB_SEG_HDR;
	*out = t;
	return 0;
out_free:
	sb_tindex_free(t);
	return rc;
}

int sb_tindex_load(const sb_io *io, const char *path, uint64_t base, uint32_t seg_len, size_t cap,
		   sb_tindex **out)
{
	struct stat st;
	uint8_t *buf = NULL;
	int rc, fd = io->open(io->ctx, path, O_RDONLY, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close_fd;
	}
	/* No more entries than the segment has intervals. */
	if (st.st_size < (off_t)SB_TIX_HDR || (uint64_t)st.st_size > SB_TIX_HDR + (uint64_t)cap * SB_TIX_ENTRY) {
		rc = SB_ECORRUPT;
		goto out_close_fd;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close_fd;
	}
	if (io->pread(io->ctx, fd, buf, (size_t)st.st_size, 0) != (ssize_t)st.st_size) {
		rc = SB_ECORRUPT;
		goto out_free_buf;
	}
	rc = sb_tindex_parse(buf, (size_t)st.st_size, base, seg_len, cap, out);
out_free_buf:
	free(buf);
out_close_fd:
	io->close(io->ctx, fd);
	return rc;
}

int sb_tindex_save(const sb_tindex *t, const sb_io *io, const char *path, uint64_t base, uint32_t seg_len)
{
	char tmp[4096];
	size_t n = sb_tindex_count(t), bytes = SB_TIX_HDR + n * SB_TIX_ENTRY;
	uint8_t *buf = malloc(bytes);
	int fd, rc;

	if (!buf)
		return -ENOMEM;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = buf + SB_TIX_HDR + i * SB_TIX_ENTRY;
		sb_put64(p + SB_TE_AT_TS, (uint64_t)entries(t)[i].ts);
		sb_put32(p + SB_TE_AT_REL, entries(t)[i].rel);
	}
	hdr_encode(buf, t, base, seg_len, sb_crc32c(0, buf + SB_TIX_HDR, bytes - SB_TIX_HDR));
	fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		rc = fd;
		goto out_free;
	}
	rc = sb_pwrite_full(io, fd, buf, bytes, 0);
	if (!rc)
		rc = io->fdatasync(io->ctx, fd);
	io->close(io->ctx, fd);
	if (!rc)
		rc = io->rename(io->ctx, tmp, path);
	if (rc)
		io->unlink(io->ctx, tmp);
out_free:
	free(buf);
	return rc;
}
