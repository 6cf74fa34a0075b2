/*
 * index.c - the sparse offset index of one segment: in memory and on disk
 * (format.h describes the file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grow.h"
#include "index.h"
#include "fsutil.h"
#include "sb_io.h"

/* A segment's entries: an array that grows without moving under a reader
 * (grow.h), the first SMALL_ENTRIES on the heap. */
#define SMALL_ENTRIES 32

struct sb_index {
	sb_grow g;         /* the entries */
	_Atomic size_t n;  /* published entries; written by the appender */
};

/* Entries in the last 8 KiB of an on-disk index: the "hot" tail. */
#define TAIL_ENTRIES (8192 / SB_IDX_ENTRY)

int sb_index_new(size_t cap, sb_index **out)
{
	sb_index *ix = calloc(1, sizeof(*ix));

	if (!ix)
		return -ENOMEM;
	if (sb_grow_init(&ix->g, sizeof(sb_idx_entry), cap, SMALL_ENTRIES)) {
		free(ix);
		return -ENOMEM;
	}
	atomic_init(&ix->n, 0);
	*out = ix;
	return 0;
}

/* Room for `need` entries (appender only). */
static int reserve(sb_index *ix, size_t need)
{
	return sb_grow_reserve(&ix->g, need, atomic_load_explicit(&ix->n, memory_order_relaxed));
}

static sb_idx_entry *entries(const sb_index *ix)
{
	return sb_grow_entries(&ix->g);
}

void sb_index_free(sb_index *ix)
{
	if (!ix)
		return;
	sb_grow_fini(&ix->g);
	free(ix);
}

size_t sb_index_count(const sb_index *ix)
{
	return atomic_load_explicit(&ix->n, memory_order_acquire);
}

int sb_index_add(sb_index *ix, const sb_idx_entry *e)
{
	size_t n = atomic_load_explicit(&ix->n, memory_order_relaxed);

	int rc = reserve(ix, n + 1);

	if (rc)
		return rc;
	entries(ix)[n] = *e;
	atomic_store_explicit(&ix->n, n + 1, memory_order_release);
	return 0;
}

void sb_index_truncate(sb_index *ix, size_t count)
{
	if (count < atomic_load_explicit(&ix->n, memory_order_relaxed))
		atomic_store_explicit(&ix->n, count, memory_order_release);
}

int sb_index_at(const sb_index *ix, size_t i, sb_idx_entry *e)
{
	if (i >= sb_index_count(ix))
		return -ENOENT;
	*e = entries(ix)[i];
	return 0;
}

int sb_index_last(const sb_index *ix, sb_idx_entry *e)
{
	size_t n = sb_index_count(ix);

	if (!n)
		return -ENOENT;
	*e = entries(ix)[n - 1];
	return 0;
}

static inline uint32_t key_of(const sb_idx_entry *e, int by_stream)
{
	return by_stream ? e->rel_stream : e->rel_offset;
}

int sb_index_lookup(const sb_index *ix, uint32_t rel, int by_stream, sb_idx_entry *e)
{
	size_t n = sb_index_count(ix);
	const sb_idx_entry *b = entries(ix);

	if (!n || key_of(&b[0], by_stream) > rel)
		return -ENOENT;
	if (n > TAIL_ENTRIES && key_of(&b[n - TAIL_ENTRIES], by_stream) <= rel) {
		b += n - TAIL_ENTRIES;
		n = TAIL_ENTRIES;
	}
	/* Branchless: keep key(b[0]) <= rel and the answer in [b, b + n). The
	 * compiler turns the select into a conditional move, so the search
	 * costs one load per step and no mispredicted branches. */
	while (n > 1) {
		size_t half = n / 2;
		/* both places the next step may look at, fetched now: the
		 * steps' misses overlap instead of following one another */
		__builtin_prefetch(&b[half / 2]);
		__builtin_prefetch(&b[half + half / 2]);
		b = key_of(&b[half], by_stream) <= rel ? b + half : b;
		n -= half;
	}
	*e = *b;
	return 0;
}

int sb_index_covered(const sb_io *io, const char *path, uint64_t base, uint32_t *seg_len)
{
	uint8_t hdr[SB_IDX_HDR];
	sb_idx_hdr h;
	int rc, fd = io->open(io->ctx, path, O_RDONLY, 0);

	if (fd < 0)
		return fd;
	rc = io->pread(io->ctx, fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) ? sb_idx_hdr_decode(hdr, &h)
										    : SB_ECORRUPT;
	if (rc == 0 && h.base_offset != base)
		rc = SB_ECORRUPT;
	if (rc == 0)
		*seg_len = h.seg_len;
	io->close(io->ctx, fd);
	return rc;
}

int sb_index_load(const sb_io *io, const char *path, uint64_t base, uint32_t seg_len, int compacted, size_t cap,
		  sb_index **out, int64_t *max_ts)
{
	uint8_t hdr[SB_IDX_HDR];
	sb_idx_hdr h;
	sb_index *ix = NULL;
	struct stat st;
	int rc, fd = io->open(io->ctx, path, O_RDONLY, 0);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close_fd;
	}
	if (io->pread(io->ctx, fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		rc = SB_ECORRUPT;
		goto out_close_fd;
	}
	rc = sb_idx_hdr_decode(hdr, &h);
	if (rc)
		goto out_close_fd;
	if (h.base_offset != base || h.seg_len != seg_len ||
	    (uint64_t)st.st_size != SB_IDX_HDR + (uint64_t)h.count * SB_IDX_ENTRY) {
		rc = SB_ECORRUPT;
		goto out_close_fd;
	}
	rc = sb_index_new(cap > h.count ? cap : h.count, &ix);
	if (rc)
		goto out_close_fd;
	rc = reserve(ix, h.count);
	if (rc)
		goto out_free;
	sb_idx_entry *ents = entries(ix);
	size_t bytes = (size_t)h.count * SB_IDX_ENTRY;
	if (bytes && io->pread(io->ctx, fd, ents, bytes, SB_IDX_HDR) != (ssize_t)bytes) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	if (sb_crc32c(0, ents, bytes) != h.entries_crc) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	/* The file's entry layout is the struct's (three LE u32, no padding).
	 * Check they are sorted and inside the segment. The first is the
	 * segment's first record, whose offset may be past the base in a
	 * compacted segment (format.h "Compacted segment"). */
	if (h.count && ((ents[0].rel_offset && !compacted) || ents[0].rel_stream || ents[0].pos != SB_SEG_HDR)) {
		rc = SB_ECORRUPT;
		goto out_free;
	}
	for (uint32_t i = 0; i < h.count; i++) {
		const sb_idx_entry *c = &ents[i];
		if (c->pos < SB_SEG_HDR || c->pos >= seg_len ||
		    (i && (c->rel_offset <= ents[i - 1].rel_offset || c->pos <= ents[i - 1].pos ||
			   c->rel_stream < ents[i - 1].rel_stream))) {
			rc = SB_ECORRUPT;
			goto out_free;
		}
	}
	atomic_store_explicit(&ix->n, h.count, memory_order_release);
	*out = ix;
	*max_ts = h.max_ts;
	io->close(io->ctx, fd);
	return 0;
out_free:
	sb_index_free(ix);
out_close_fd:
	io->close(io->ctx, fd);
	return rc;
}

_Static_assert(sizeof(sb_idx_entry) == SB_IDX_ENTRY, "index entry layout is the file's");

int sb_index_save(const sb_index *ix, const sb_io *io, const char *path, uint64_t base, uint32_t seg_len,
		  int64_t max_ts)
{
	char tmp[4096];
	uint8_t hdr[SB_IDX_HDR];
	size_t n = sb_index_count(ix);
	size_t bytes = n * SB_IDX_ENTRY;
	sb_idx_hdr h = {.base_offset = base, .count = (uint32_t)n, .seg_len = seg_len, .max_ts = max_ts,
			.entries_crc = sb_crc32c(0, entries(ix), bytes)};
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	sb_idx_hdr_encode(hdr, &h);
	fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return fd;
	rc = sb_pwrite_full(io, fd, hdr, sizeof(hdr), 0);
	if (!rc && bytes)
		rc = sb_pwrite_full(io, fd, entries(ix), bytes, SB_IDX_HDR);
	if (!rc)
		rc = io->fdatasync(io->ctx, fd);
	io->close(io->ctx, fd);
	if (!rc)
		rc = io->rename(io->ctx, tmp, path);
	if (rc)
		io->unlink(io->ctx, tmp);
	return rc;
}

/* ---- the benchmark's view (sb_store.h) ---------------------------------- */

struct sb_bench_index {
	sb_index *ix;
};

int sb_bench_index_new(uint32_t entries, uint32_t step, sb_bench_index **out)
{
	sb_bench_index *b = malloc(sizeof(*b));
	int rc;

	if (!b)
		return -ENOMEM;
	rc = sb_index_new(entries, &b->ix);
	if (rc)
		goto out_free;
	for (uint32_t i = 0; i < entries && !rc; i++) {
		sb_idx_entry e = {.rel_offset = i * step, .pos = SB_SEG_HDR + i * 4096u, .rel_stream = i * 3968u};
		rc = sb_index_add(b->ix, &e);
	}
	if (rc)
		goto out_index;
	*out = b;
	return 0;
out_index:
	sb_index_free(b->ix);
out_free:
	free(b);
	return rc;
}

int sb_bench_index_lookup(const sb_bench_index *b, uint32_t rel, uint32_t *pos)
{
	sb_idx_entry e;
	int rc = sb_index_lookup(b->ix, rel, 0, &e);

	if (!rc)
		*pos = e.pos;
	return rc;
}

void sb_bench_index_free(sb_bench_index *b)
{
	if (!b)
		return;
	sb_index_free(b->ix);
	free(b);
}
