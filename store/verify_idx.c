/*
 * verify_idx.c - the verifier's check of an offset index file (see
 * verify_idx.h). Reads with pread; uses format.h and codec.h only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "verify.h"
#include "verify_idx.h"
#include "verify_list.h"

/* A note about this index file (verify_tix.h's sb_vtix_note). */
#define say(ix, io, pos, ...) sb_vtix_note((ix)->report, (ix)->arg, (io), (ix)->path, (pos), __VA_ARGS__)

int sb_vidx_pread(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		got += (size_t)r;
	}
	return 0;
}

/* Position of entry i in the index file. */
static uint64_t entry_pos(uint32_t i)
{
	return SB_IDX_HDR + (uint64_t)i * SB_IDX_ENTRY;
}

/* The header at fd (a file of fsize bytes): 1 if it decodes, with ix's
 * header fields set and its mismatches with the segment reported. */
static int load_header(sb_vidx *ix, int fd, uint64_t fsize, uint64_t base, uint64_t seg_size,
		       sb_idx_hdr *h)
{
	uint8_t hb[SB_IDX_HDR];
	int rc;

	if (fsize < SB_IDX_HDR) {
		say(ix, 0, 0, "index file too short for its header (%llu bytes)",
		    (unsigned long long)fsize);
		return 0;
	}
	rc = sb_vidx_pread(fd, hb, sizeof hb, 0);
	if (rc) {
		say(ix, 1, 0, "cannot read: %s", strerror(-rc));
		return 0;
	}
	rc = sb_idx_hdr_decode(hb, h);
	if (rc == SB_EVERSION) {
		say(ix, 0, SB_FH_VERSION, "unknown index format version %u",
		    (unsigned)sb_get16(hb + SB_FH_VERSION));
		return 0;
	}
	if (rc) {
		say(ix, 0, 0, "bad index header (magic, size or CRC)");
		return 0;
	}
	ix->hdr_ok = 1;
	ix->base_ok = h->base_offset == base;
	ix->seg_len = h->seg_len;
	if (h->base_offset != base)
		say(ix, 0, SB_IDX_AT_BASE, "index header says base offset %llu, its segment starts at %llu",
		    (unsigned long long)h->base_offset, (unsigned long long)base);
	if (h->seg_len > seg_size)
		say(ix, 0, SB_IDX_AT_SEG_LEN, "index covers %u bytes but the segment file has %llu",
		    h->seg_len, (unsigned long long)seg_size);
	return 1;
}

/* The entries after a good header: loaded into ix->entries, their count
 * and CRC checked. */
static void load_entries(sb_vidx *ix, int fd, uint64_t fsize, uint64_t base, uint64_t seg_size,
			 const sb_idx_hdr *h)
{
	uint64_t room = (fsize - SB_IDX_HDR) / SB_IDX_ENTRY, n;
	int rc;

	if (fsize != SB_IDX_HDR + (uint64_t)h->count * SB_IDX_ENTRY)
		say(ix, 0, SB_IDX_AT_COUNT,
		    "index header counts %u entries but the file holds %llu bytes (%llu entries)",
		    h->count, (unsigned long long)fsize, (unsigned long long)room);
	n = h->count < room ? h->count : room;
	if (n == 0)
		return;
	ix->entries = malloc(n * SB_IDX_ENTRY);
	if (!ix->entries) {
		say(ix, 1, SB_VERIFY_NOPOS, "out of memory");
		return;
	}
	rc = sb_vidx_pread(fd, ix->entries, n * SB_IDX_ENTRY, SB_IDX_HDR);
	if (rc) {
		say(ix, 1, SB_IDX_HDR, "cannot read: %s", strerror(-rc));
		free(ix->entries);
		ix->entries = NULL;
		return;
	}
	ix->n = (uint32_t)n;
	ix->ecrc_ok = n == h->count && sb_crc32c(0, ix->entries, n * SB_IDX_ENTRY) == h->entries_crc;
	if (n == h->count && !ix->ecrc_ok)
		say(ix, 0, SB_IDX_AT_ECRC, "index entries fail their CRC");
	else if (n == h->count && h->base_offset == base && h->seg_len == seg_size &&
		 fsize == SB_IDX_HDR + (uint64_t)h->count * SB_IDX_ENTRY)
		ix->valid = 1;
}

void sb_vidx_load(sb_vidx *ix, const char *dir, uint64_t base, uint64_t seg_size,
		  sb_vtix_report_fn report, void *arg)
{
	struct stat st;
	sb_idx_hdr h;
	int fd;

	memset(ix, 0, sizeof *ix);
	ix->report = report;
	ix->arg = arg;
	sb_vlist_path(ix->path, dir, base, SB_IDX_SUFFIX);
	fd = open(ix->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			say(ix, 0, SB_VERIFY_NOPOS, "missing index (rebuildable from its segment)");
		else
			say(ix, 1, SB_VERIFY_NOPOS, "cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0)
		say(ix, 1, SB_VERIFY_NOPOS, "cannot stat: %s", strerror(errno));
	else if (load_header(ix, fd, (uint64_t)st.st_size, base, seg_size, &h))
		load_entries(ix, fd, (uint64_t)st.st_size, base, seg_size, &h);
	close(fd);
}

/* Does entry i (at pos) point at or past entry i + 1: out of order, where
 * the walk would wait for a record at pos and leave every later entry
 * unmatched. */
static int ahead_of_next(const sb_vidx *ix, uint32_t i, uint32_t pos)
{
	sb_idx_entry n;

	if (i + 1 >= ix->n)
		return 0;
	sb_idx_entry_decode(ix->entries + (size_t)(i + 1) * SB_IDX_ENTRY, &n);
	return pos >= n.pos;
}

void sb_vidx_record(sb_vidx *ix, uint64_t pos, uint64_t base, uint64_t off,
		    uint64_t base_stream, uint64_t stream, int have_stream)
{
	sb_idx_entry e;
	uint32_t i;

	for (; ix->entries && ix->next < ix->n; ix->next++) {
		i = ix->next;
		sb_idx_entry_decode(ix->entries + (size_t)i * SB_IDX_ENTRY, &e);
		if (e.pos > pos && !ahead_of_next(ix, i, e.pos))
			return; /* a later record's */
		ix->checked++;
		if (e.pos > pos) {
			ix->wrong = 1;
			say(ix, 0, entry_pos(i),
			    "index entry %u points at byte %u, not before entry %u's (entries ascend)", i, e.pos,
			    i + 1);
			continue;
		}
		if (e.pos < pos) {
			ix->wrong = 1;
			say(ix, 0, entry_pos(i),
			    "index entry %u points at byte %u of the segment, which is not the start of a record",
			    i, e.pos);
			continue;
		}
		ix->wrong |= base + e.rel_offset != off;
		if (base + e.rel_offset != off)
			say(ix, 0, entry_pos(i), "index entry %u says offset %llu, the record at byte %u has offset %llu",
			    i, (unsigned long long)(base + e.rel_offset), e.pos, (unsigned long long)off);
		if (have_stream && base_stream + e.rel_stream != stream)
			say(ix, 0, entry_pos(i) + SB_IE_AT_STREAM,
			    "index entry %u says stream position %llu, the record at byte %u is at %llu",
			    i, (unsigned long long)(base_stream + e.rel_stream), e.pos,
			    (unsigned long long)stream);
	}
}

#define PAST_SHOWN 3

void sb_vidx_end(sb_vidx *ix, uint64_t records, uint64_t end, uint64_t seg_size)
{
	sb_idx_entry e;

	/* Entries past the last whole record point at nothing: the first
	 * PAST_SHOWN named, the rest in one note (a segment cut short by
	 * damage had a note for each of its 19,978 later entries). */
	uint32_t first = ix->next;
	for (; ix->entries && ix->next < ix->n; ix->next++) {
		sb_idx_entry_decode(ix->entries + (size_t)ix->next * SB_IDX_ENTRY, &e);
		ix->checked++;
		if (ix->next - first < PAST_SHOWN)
			say(ix, 0, entry_pos(ix->next),
			    "index entry %u points at byte %u, past the last record (which ends at byte %llu)",
			    ix->next, e.pos, (unsigned long long)end);
	}
	if (ix->entries && ix->n - first > PAST_SHOWN)
		say(ix, 0, entry_pos(first + PAST_SHOWN), "index entries %u..%u (%u more) point past the last record too",
		    first + PAST_SHOWN, ix->n - 1, ix->n - first - PAST_SHOWN);
	if (!ix->hdr_ok)
		return;
	if (records > 0) {
		sb_idx_entry e0 = {0, 0, 0};
		if (ix->n)
			sb_idx_entry_decode(ix->entries, &e0);
		if (!ix->n || e0.pos != SB_SEG_HDR)
			say(ix, 0, SB_IDX_HDR, "index has no entry for the segment's first record");
	}
	if (ix->seg_len != end && ix->seg_len <= seg_size)
		say(ix, 0, SB_IDX_AT_SEG_LEN,
		    "index covers %u bytes of the segment, its records end at byte %llu (stale index)",
		    ix->seg_len, (unsigned long long)end);
}

void sb_vidx_free(sb_vidx *ix)
{
	free(ix->entries);
	ix->entries = NULL;
}
