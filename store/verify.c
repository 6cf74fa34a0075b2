/*
 * verify.c - check a topic directory against store/format.h (see verify.h).
 *
 * Reads only, with pread: segments (through segwin.h: a daemon may trim the
 * one it appends to meanwhile), index, meta and clean files. Uses nothing of
 * the store but format.h, codec.h and segwin.h,
 * so that it checks the bytes, not the writer's idea of them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "segwin.h"
#include "verify.h"
#include "verify_compact.h"
#include "verify_idx.h"
#include "verify_list.h"
#include "verify_tix.h"
#include "zseg.h"

/* Report progress about this often (bytes of segment checked). */
#define PROGRESS_STEP (8u << 20)

typedef struct vctx {
	const char *dir;
	sb_verify_problem_fn problem;
	sb_verify_progress_fn progress;
	void *arg;
	sb_verify_result res;
	uint64_t done, total, last_progress;
	int cur_newest;       /* checking the newest segment now */
	int cur_tail;         /* the problem is at the very end of it */
	uint64_t cur_off;     /* the record being checked, or SB_VERIFY_NOOFF */
	uint64_t start;       /* the log start: records below it are not counted */
	int have_clean;       /* a valid clean marker: */
	sb_clean_rec clean;   /* what it says */
	unsigned seg_version; /* the format version of the segment walked */
	uint32_t seg_span;    /* its compacted span (format.h); 0: dense offsets */
} vctx;

/* What the walk of one segment found; carried to the next segment. */
typedef struct seg_walk {
	uint64_t next_off;     /* offset after the last record */
	uint64_t next_stream;  /* stream pos after the last record */
	int have_stream;       /* next_stream is known */
	int complete;          /* walked to a clean end (zeros or EOF) */
	uint64_t records;      /* records walked (good or with a bad CRC) */
	uint64_t zeros_from;   /* the records end in zeros from this byte; 0 if not */
	uint64_t size;         /* the file's size */
	int idx_valid;         /* its index file is valid: the segment was synced */
	int compacted;         /* its header has a compacted span (format.h) */
} seg_walk;

static void report(vctx *v, enum sb_verify_kind kind, const char *path, uint64_t pos,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(vctx *v, enum sb_verify_kind kind, const char *path, uint64_t pos,
		   const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	sb_verify_problem p;

	v->res.problems[kind]++;
	int tail = v->cur_tail;
	v->cur_tail = 0;
	if (!v->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p.kind = kind;
	p.path = path;
	p.pos = pos;
	p.msg = msg;
	p.newest = v->cur_newest;
	p.tail = v->cur_newest && tail;
	p.offset = v->cur_off;
	v->problem(v->arg, &p);
}

static void progress(vctx *v, int force)
{
	if (!v->progress)
		return;
	if (!force && v->done - v->last_progress < PROGRESS_STEP)
		return;
	v->last_progress = v->done;
	v->progress(v->arg, v->done, v->total);
}

/*
 * Walk the records of a segment (read through pread: a daemon may trim the
 * file meanwhile, see segwin.h) from byte SB_SEG_HDR, checking each
 * against the expected offset and stream position, and the index beside it.
 * Returns the end of the last whole record (where recovery would cut).
 */
static uint64_t walk_records(vctx *v, const char *path, sb_segwin *m,
			     uint64_t base, uint64_t base_stream, int have_stream,
			     sb_vidx *ix, sb_vtix *tx, seg_walk *w)
{
	uint64_t pos = SB_SEG_HDR, off = base, stream = base_stream;
	uint64_t step_from = v->done, alt = 0;
	int have_alt = 0;

	w->complete = 0;
	while (pos < sb_segwin_size(m)) {
		const uint8_t *rec;
		size_t avail;
		sb_rec_hdr h;
		uint64_t nz;
		const char *bad_tomb;
		int r;

		memset(&h, 0, sizeof h);
		v->cur_off = off;
		r = sb_segwin_decode(m, pos, v->seg_version, 1, &h, &rec, &avail);
		if (sb_segwin_error(m))
			break;
		if (r == SB_REC_END) {
			if (!sb_segwin_zeros(m, pos, &nz)) {
				/* in the newest segment of a mounted log this is a
				 * record being written: its bytes land in the shared
				 * mapping while this reader copies them, so a later
				 * byte can be seen new and an earlier one still zero */
				v->cur_tail = 1;
				report(v, SB_VERIFY_RECORD, path, nz,
				       "garbled tail: nonzero bytes after the end of the records "
				       "at byte %llu", (unsigned long long)pos);
			} else {
				w->complete = 1;
				w->zeros_from = pos;
			}
			break;
		}
		if (r == SB_REC_TORN) {
			v->cur_tail = 1;
			report(v, SB_VERIFY_RECORD, path, pos,
			       "torn record: it claims %u bytes, the file has %llu left",
			       avail >= SB_REC_AT_OFFSET ? (unsigned)sb_get32(rec + SB_REC_AT_SIZE) : 0,
			       (unsigned long long)(sb_segwin_size(m) - pos));
			break;
		}
		if (r == SB_REC_BAD && h.size == 0) {
			report(v, SB_VERIFY_RECORD, path, pos,
			       "garbled record header (expected offset %llu)",
			       (unsigned long long)off);
			break;
		}
		sb_vidx_record(ix, pos, base, r == SB_REC_OK ? h.offset : off,
			       base_stream, stream, have_stream);
		if (r == SB_REC_BAD) {
			/* the last record, nothing but zeros after it */
			v->cur_tail = sb_segwin_zeros(m, pos + h.size, NULL);
			if (h.flags & ~(v->seg_version >= 3 ? SB_REC_KNOWN_FLAGS : SB_REC_KNOWN_FLAGS_V2))
				report(v, SB_VERIFY_RECORD, path, pos + SB_REC_AT_FLAGS,
				       "record %llu has unknown flags 0x%04x",
				       (unsigned long long)h.offset, h.flags);
			else if (h.size <= avail && (bad_tomb = sb_vc_bad_tombstone(&h, rec)) != NULL)
				report(v, SB_VERIFY_RECORD, path, pos + SB_REC_AT_FLAGS,
				       "record %llu is a malformed tombstone (%s)", (unsigned long long)h.offset,
				       bad_tomb);
			else if (h.hdrs_len && h.size <= avail &&
				 sb_crc32c(0, rec + SB_REC_AT_SIZE, h.size - SB_REC_AT_SIZE) == h.crc)
				report(v, SB_VERIFY_RECORD, path, pos + sb_rec_hdrs_at(&h),
				       "record %llu has a malformed header block (%u bytes)",
				       (unsigned long long)h.offset, h.hdrs_len);
			else if (h.offset == off)
				report(v, SB_VERIFY_RECORD, path, pos,
				       "record %llu fails its CRC (%u bytes)",
				       (unsigned long long)off, h.size);
			else
				report(v, SB_VERIFY_RECORD, path, pos,
				       "record fails its CRC (expected offset %llu, its header "
				       "says %llu, %u bytes)", (unsigned long long)off,
				       (unsigned long long)h.offset, h.size);
			off++;
			alt++;
		} else {
			/* After one wrong offset, either sequence may go on: the
			 * old one (one bad record) or the new one (a jump). */
			/* A compacted segment: offsets grow with gaps inside
			 * its span (format.h); anywhere else a gap is damage. */
			int gap_ok = v->seg_span && h.offset > off && h.offset - base < v->seg_span;
			if (v->seg_span && h.offset - base >= v->seg_span)
				report(v, SB_VERIFY_ORDER, path, pos + SB_REC_AT_OFFSET,
				       "record has offset %llu, past its compacted segment's span (%u)",
				       (unsigned long long)h.offset, v->seg_span);
			else if (h.offset != off && !gap_ok && !(have_alt && h.offset == alt))
				report(v, SB_VERIFY_ORDER, path, pos + SB_REC_AT_OFFSET,
				       "record has offset %llu, expected %llu",
				       (unsigned long long)h.offset, (unsigned long long)off);
			have_alt = h.offset != off && !gap_ok && !(have_alt && h.offset == alt);
			sb_vtix_record(tx, h.offset - base, h.timestamp_ns);
			alt = off + 1;
			off = h.offset + 1;
			if (h.offset >= v->start)
				v->res.records++;
		}
		stream += h.value_len;
		w->records++;
		pos += h.size;
		v->done = step_from + pos;
		progress(v, 0);
	}
	v->cur_off = SB_VERIFY_NOOFF;
	if (pos >= sb_segwin_size(m))
		w->complete = 1;
	sb_vidx_end(ix, w->records, pos, sb_segwin_size(m));
	/* The segment ends cleanly after a whole record, short of what its
	 * own index covers: the index is written only once the segment was
	 * synced, so whole records that were synced are gone (a cut at a
	 * record boundary: nothing else shows it). Not when the entries (CRC
	 * good) name other records, nor in a compacted segment: the index
	 * of what a compacted segment was before its round (a copy taken
	 * meanwhile), as the store says (segment_open.c, seg_check_lost). */
	if (!v->seg_span && ix->hdr_ok && ix->base_ok && ix->seg_len > pos && pos >= sb_segwin_size(m) &&
	    !(ix->ecrc_ok && ix->wrong)) {
		v->cur_off = off;
		report(v, SB_VERIFY_RECORD, path, pos,
		       "the segment ends after its last whole record at byte %llu, but its "
		       "index (written once the segment was synced) covers %u bytes: "
		       "records lost", (unsigned long long)pos, ix->seg_len);
		v->cur_off = SB_VERIFY_NOOFF;
	}
	if (v->seg_span && w->complete && off <= base + v->seg_span)
		off = base + v->seg_span; /* records compacted away after the last one */
	w->next_off = off;
	w->next_stream = stream;
	w->have_stream = have_stream;
	return pos;
}

/* A problem of an offset or time index file (verify_idx.h, verify_tix.h):
 * a note about derived data. */
static void index_report(void *arg, int io, const char *path, uint64_t pos, const char *msg)
{
	report(arg, io ? SB_VERIFY_IO : SB_VERIFY_INDEX, path, pos, "%s", msg);
}

/* Record, order and file problems so far (what makes a time index
 * unchecked: the records it would be checked against do not hold). */
static uint64_t rec_problems(const vctx *v)
{
	return v->res.problems[SB_VERIFY_RECORD] + v->res.problems[SB_VERIFY_ORDER] +
	       v->res.problems[SB_VERIFY_FILE] + v->res.problems[SB_VERIFY_IO];
}

/* Check block i of compressed segment z (as sb_zseg_check_block) and give
 * its records' times to the time index check. */
static int zblock_check(sb_zseg *z, uint32_t i, uint64_t base, sb_vtix *tx)
{
	sb_zpin pin;
	sb_zrec r;
	uint64_t bad;
	int rc = sb_zseg_get(z, sb_zseg_block_offset(z, i), 0, &pin, &r, &bad);

	if (rc)
		return rc == -ENOENT ? SB_ECORRUPT : rc;
	for (uint32_t k = 0; k < sb_zpin_count(&pin); k++) {
		sb_zpin_rec(z, &pin, k, &r);
		sb_vtix_record(tx, r.offset - base, r.timestamp_ns);
	}
	sb_zseg_unpin(z, &pin);
	return 0;
}

/*
 * A compressed segment (format.h): its header and block table, then every
 * block (stored and raw CRCs, columns). Records are counted block by block;
 * an index file beside it is stale (the store removes it): a note.
 */
static void check_zsegment(vctx *v, const char *path, int fd, uint64_t size, uint64_t base,
			   const seg_walk *prev, int have_prev, seg_walk *w)
{
	sb_zseg *z;
	int rc = sb_zseg_open(sb_io_default(), fd, size, base, NULL, &z), bad = 0;
	char ipath[PATH_MAX];
	struct stat st;
	sb_vtix tx;

	if (rc == SB_EVERSION) {
		report(v, SB_VERIFY_FILE, path, 4, "unknown compressed segment version; records not checked");
		return;
	}
	if (rc) {
		uint8_t zh[SB_ZSEG_HDR];
		if (rc == SB_ECORRUPT && pread(fd, zh, sizeof(zh), 0) == (ssize_t)sizeof(zh) && sb_zseg_hdr_valid(zh))
			report(v, SB_VERIFY_FILE, path, SB_VERIFY_NOPOS,
			       "compressed segment: its block table or dictionary fails its check");
		else if (rc == SB_ECORRUPT)
			report(v, SB_VERIFY_FILE, path, 0, "bad compressed segment header");
		else
			report(v, SB_VERIFY_IO, path, SB_VERIFY_NOPOS, "cannot read: %s", strerror(-rc));
		return;
	}
	uint64_t bs = sb_zseg_base_stream(z);
	/* after a compacted segment a stream gap is not damage (below) */
	if (have_prev && prev->complete && prev->have_stream && bs != prev->next_stream && !prev->compacted)
		report(v, SB_VERIFY_ORDER, path, 16, "base stream position %llu, the previous segment ends at %llu",
		       (unsigned long long)bs, (unsigned long long)prev->next_stream);
	sb_vtix_load(&tx, v->dir, base, 1, index_report, v);
	for (uint32_t i = 0; i < sb_zseg_blocks(z); i++) {
		uint64_t from = sb_zseg_block_offset(z, i), to = sb_zseg_block_offset(z, i + 1);
		rc = zblock_check(z, i, base, &tx);
		if (rc == SB_ECORRUPT) {
			v->cur_off = from;
			report(v, SB_VERIFY_RECORD, path, sb_zseg_block_pos(z, i),
			       "damaged compressed block %u (offsets %llu to %llu): CRC or contents", i,
			       (unsigned long long)from, (unsigned long long)(to - 1));
			v->cur_off = SB_VERIFY_NOOFF;
			bad = 1;
		} else if (rc) {
			report(v, SB_VERIFY_IO, path, sb_zseg_block_pos(z, i), "cannot read: %s", strerror(-rc));
			bad = 1;
		} else {
			for (uint64_t o = from; o < to; o++)
				v->res.records += o >= v->start;
		}
		v->done += sb_zseg_block_pos(z, i + 1) - sb_zseg_block_pos(z, i);
		progress(v, 0);
	}
	w->next_off = sb_zseg_next(z);
	w->next_stream = sb_zseg_stream_end(z);
	w->have_stream = 1;
	w->complete = !bad;
	w->records = sb_zseg_next(z) - base;
	w->size = size;
	w->idx_valid = 1; /* made from a synced segment, synced before its rename */
	sb_vtix_end(&tx, sb_zseg_plain_len(z), !bad);
	sb_zseg_free(z);
	sb_vlist_path(ipath, v->dir, base, SB_IDX_SUFFIX);
	if (stat(ipath, &st) == 0)
		report(v, SB_VERIFY_INDEX, ipath, SB_VERIFY_NOPOS,
		       "index file beside a compressed segment (stale: removed at the next open)");
}

/* Check one segment (and its index); prev: what the previous one ended at. */
static void check_segment(vctx *v, uint64_t base, const seg_walk *prev, int have_prev,
			  seg_walk *w)
{
	char path[PATH_MAX];
	sb_segwin *m = NULL;
	const uint8_t *hb;
	size_t hn;
	struct stat st;
	sb_seg_hdr h;
	sb_vidx ix;
	sb_vtix tx;
	uint64_t size, base_stream = 0, end, probs = rec_problems(v);
	int fd, rc, have_stream = 0;

	memset(w, 0, sizeof *w);
	memset(&ix, 0, sizeof ix);
	w->next_off = base;
	sb_vlist_path(path, v->dir, base, SB_SEG_SUFFIX);
	v->res.segments++;
	if (have_prev && prev->complete && prev->compacted && base < prev->next_off &&
	    sb_vc_absorbed(path, base, prev->next_off)) {
		*w = *prev; /* an interrupted removal of an empty segment: the next open ends it */
		return;
	}
	/* A break at or below the start: what precedes are stale files of an
	 * interrupted removal or of an empty log's first offset being set
	 * (log.c, log_append.c); the next open removes them (log_recover.c). */
	int below_start = have_prev && base > prev->next_off && base <= v->start;
	if (have_prev && prev->complete && base != prev->next_off && !below_start)
		report(v, SB_VERIFY_ORDER, path, SB_VERIFY_NOPOS,
		       "segment starts at offset %llu, the previous segment ends before %llu%s",
		       (unsigned long long)base, (unsigned long long)prev->next_off,
		       base > prev->next_off ? " (records missing)" : " (overlap)");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report(v, SB_VERIFY_IO, path, SB_VERIFY_NOPOS, "cannot open: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0) {
		report(v, SB_VERIFY_IO, path, SB_VERIFY_NOPOS, "cannot stat: %s", strerror(errno));
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		report(v, SB_VERIFY_IO, path, SB_VERIFY_NOPOS, "not a regular file");
		goto out_close_fd;
	}
	size = (uint64_t)st.st_size;
	v->res.bytes += size;
	if (size < SB_SEG_HDR) {
		v->cur_tail = 1;
		report(v, SB_VERIFY_FILE, path, 0,
		       "segment file too short for its header (%llu bytes)",
		       (unsigned long long)size);
		goto out_done;
	}
	if (size > SB_SEG_MAX_BYTES)
		report(v, SB_VERIFY_FILE, path, SB_SEG_MAX_BYTES,
		       "segment file is larger than the format allows (%llu bytes)",
		       (unsigned long long)size);
	rc = sb_segwin_new(fd, size, &m);
	if (rc || !(hb = sb_segwin_at(m, 0, SB_SEG_HDR, &hn)) || hn < SB_SEG_HDR) {
		rc = rc ? rc : m && sb_segwin_error(m) ? sb_segwin_error(m) : -ENODATA;
		report(v, SB_VERIFY_IO, path, SB_VERIFY_NOPOS, "cannot read: %s", strerror(-rc));
		goto out_done;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (sb_zseg_is(hb)) {
		check_zsegment(v, path, fd, size, base, prev, have_prev, w);
		goto out_free;
	}
	rc = sb_seg_hdr_decode(hb, &h);
	int torn = rc && sb_seg_hdr_torn(hb, base);
	if (rc == SB_EVERSION && !torn) {
		report(v, SB_VERIFY_FILE, path, SB_FH_VERSION,
		       "unknown segment format version %u; records not checked",
		       (unsigned)sb_get16(hb + SB_FH_VERSION));
		goto out_done;
	}
	if (rc) {
		report(v, SB_VERIFY_FILE, path, 0,
		       torn ? "bad segment header: its version, span or CRC (torn while it was rewritten in place? "
			      "the next writable open writes it anew)"
			    : "bad segment header (magic, size, CRC or base stream position)");
		if (have_prev && prev->have_stream && prev->complete) {
			base_stream = prev->next_stream;
			have_stream = 1;
		}
	} else {
		base_stream = h.base_stream;
		have_stream = 1;
		if (h.base_offset != base)
			report(v, SB_VERIFY_FILE, path, SB_SEG_AT_BASE,
			       "header says base offset %llu, the file is named for %llu",
			       (unsigned long long)h.base_offset, (unsigned long long)base);
		/* around a compacted segment, a stream gap (a crash between
		 * two swaps of a compaction) or overlap (a copy taken during
		 * one) is not damage: its positions are derived (format.h) */
		if (have_prev && prev->complete && prev->have_stream &&
		    h.base_stream != prev->next_stream && !h.span && !prev->compacted)
			report(v, SB_VERIFY_ORDER, path, SB_SEG_AT_STREAM,
			       "base stream position %llu, the previous segment ends at %llu",
			       (unsigned long long)h.base_stream,
			       (unsigned long long)prev->next_stream);
	}
	sb_vidx_load(&ix, v->dir, base, size, index_report, v);
	sb_vtix_load(&tx, v->dir, base, !rc && h.version >= 3, index_report, v);
	v->seg_version = rc ? SB_FORMAT_VERSION : h.version;
	v->seg_span = rc ? 0 : h.span;
	end = walk_records(v, path, m, base, base_stream, have_stream, &ix, &tx, w);
	if ((rc = sb_segwin_error(m)))
		report(v, SB_VERIFY_IO, path, SB_VERIFY_NOPOS, "cannot read: %s", strerror(-rc));
	sb_vtix_end(&tx, end, w->complete && rec_problems(v) == probs);
	w->idx_valid = ix.valid;
	w->compacted = v->seg_span != 0;
	w->size = sb_segwin_size(m);
	goto out_free;
out_done:
	sb_vidx_load(&ix, v->dir, base, size, index_report, v);
out_free:
	sb_segwin_free(m);
out_close_fd:
	v->res.index_entries += ix.checked;
	sb_vidx_free(&ix);
	close(fd);
}

/* Read a small fixed-size file whole: 0, -errno, or -EMSGSIZE if not `size` long. */
static int read_small(const char *path, void *buf, size_t size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if ((uint64_t)st.st_size != size)
		rc = -EMSGSIZE;
	else
		rc = sb_vidx_pread(fd, buf, size, 0);
	close(fd);
	return rc;
}

static void check_meta(vctx *v, const sb_vlisting *l, int *have_start, uint64_t *start)
{
	char path[PATH_MAX];
	uint8_t b[SB_META_SIZE > SB_CLEAN_SIZE ? SB_META_SIZE : SB_CLEAN_SIZE];
	int rc;

	if (l->has_meta) {
		snprintf(path, sizeof path, "%s/%s", v->dir, SB_META_NAME);
		rc = read_small(path, b, SB_META_SIZE);
		if (rc == -EMSGSIZE)
			report(v, SB_VERIFY_FILE, path, 0, "meta file is not %u bytes long",
			       SB_META_SIZE);
		else if (rc)
			report(v, SB_VERIFY_IO, path, 0, "cannot read: %s", strerror(-rc));
		else if (sb_meta_decode(b, start) != 0)
			report(v, SB_VERIFY_FILE, path, 0, "bad meta file (magic, version or CRC)");
		else
			*have_start = 1;
	}
	if (l->has_clean) {
		sb_clean_rec c;

		snprintf(path, sizeof path, "%s/%s", v->dir, SB_CLEAN_NAME);
		rc = read_small(path, b, SB_CLEAN_SIZE);
		if (rc == -EMSGSIZE)
			report(v, SB_VERIFY_FILE, path, 0, "clean marker is not %u bytes long",
			       SB_CLEAN_SIZE);
		else if (rc)
			report(v, SB_VERIFY_IO, path, 0, "cannot read: %s", strerror(-rc));
		else if (sb_clean_decode(b, &c) != 0)
			report(v, SB_VERIFY_FILE, path, 0,
			       "bad clean marker (magic, version or CRC)");
		else {
			v->have_clean = 1;
			v->clean = c;
		}
	}
}

/*
 * A segment that was synced (its own valid index file, a later segment's, or
 * a clean close matching the newest segment) had its preallocated space cut
 * before the sync: zeros at its end are records lost, not free space. The
 * store refuses such a log.
 */
static void check_zero_tails(vctx *v, const sb_vlisting *l, const seg_walk *walks)
{
	char path[PATH_MAX];
	int later = 0, clean = 0;

	if (l->nseg && v->have_clean && v->clean.last_base == l->segs[l->nseg - 1] &&
	    v->clean.last_len == walks[l->nseg - 1].size)
		clean = 1;
	for (size_t i = l->nseg; i-- > 0;) {
		const seg_walk *w = &walks[i];
		const char *proof = w->idx_valid ? "its index file shows it was synced"
				    : clean ? "the log was closed cleanly"
				    : later ? "a later segment was synced" : NULL;
		if (w->zeros_from && w->zeros_from < w->size && proof) {
			sb_vlist_path(path, v->dir, l->segs[i], SB_SEG_SUFFIX);
			v->cur_newest = i + 1 == l->nseg;
			report(v, SB_VERIFY_RECORD, path, w->zeros_from,
			       "zeros where records should be, to the end of the file (%s): "
			       "records lost", proof);
			v->cur_newest = 0;
		}
		later |= w->idx_valid;
	}
}

int sb_verify_topic(const char *topic_dir, sb_verify_problem_fn problem,
		    sb_verify_progress_fn progress_fn, void *arg, sb_verify_result *res)
{
	vctx v;
	sb_vlisting l;
	seg_walk prev, cur, *walks;
	uint64_t start = 0;
	int have_start = 0, rc;
	char path[PATH_MAX];
	size_t j = 0;

	rc = sb_vlist_topic(topic_dir, &l);
	if (rc)
		return rc;
	memset(&v, 0, sizeof v);
	v.cur_off = SB_VERIFY_NOOFF;
	memset(&prev, 0, sizeof prev);
	v.dir = topic_dir;
	v.problem = problem;
	v.progress = progress_fn;
	v.arg = arg;
	for (size_t i = 0; i < l.nseg; i++) {
		struct stat st;

		sb_vlist_path(path, topic_dir, l.segs[i], SB_SEG_SUFFIX);
		if (stat(path, &st) == 0)
			v.total += (uint64_t)st.st_size;
	}
	progress(&v, 1);
	check_meta(&v, &l, &have_start, &start);
	v.start = have_start ? start : 0;
	walks = calloc(l.nseg ? l.nseg : 1, sizeof *walks);
	if (!walks) {
		sb_vlist_free(&l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l.nseg; i++) {
		uint64_t before = v.done;
		struct stat st;

		v.cur_newest = i + 1 == l.nseg;
		check_segment(&v, l.segs[i], &prev, i > 0, &cur);
		walks[i] = cur;
		v.cur_newest = 0;
		sb_vlist_path(path, topic_dir, l.segs[i], SB_SEG_SUFFIX);
		v.done = before + (stat(path, &st) == 0 ? (uint64_t)st.st_size : 0);
		progress(&v, 1);
		if (i == 0)
			v.res.first = l.segs[i];
		v.res.next = cur.next_off;
		prev = cur;
	}
	/* Index files whose segment is gone. */
	for (size_t i = 0; i < l.nidx; i++) {
		while (j < l.nseg && l.segs[j] < l.idxs[i])
			j++;
		if (j < l.nseg && l.segs[j] == l.idxs[i])
			continue;
		sb_vlist_path(path, topic_dir, l.idxs[i], SB_IDX_SUFFIX);
		report(&v, SB_VERIFY_INDEX, path, SB_VERIFY_NOPOS, "index file without a segment");
	}
	for (size_t i = 0, k = 0; i < l.ntix; i++) { /* time index files too */
		while (k < l.nseg && l.segs[k] < l.tixs[i])
			k++;
		if (k < l.nseg && l.segs[k] == l.tixs[i])
			continue;
		sb_vlist_path(path, topic_dir, l.tixs[i], SB_TIX_SUFFIX);
		report(&v, SB_VERIFY_INDEX, path, SB_VERIFY_NOPOS, "time index file without a segment");
	}
	check_zero_tails(&v, &l, walks);
	free(walks);
	v.res.start = have_start && start > v.res.first ? start : v.res.first;
	snprintf(path, sizeof path, "%s/%s", topic_dir, SB_META_NAME);
	if (have_start && l.nseg > 0 && start > v.res.next)
		report(&v, SB_VERIFY_ORDER, path, SB_META_AT_START,
		       "log start %llu is past the last record (next offset %llu)",
		       (unsigned long long)start, (unsigned long long)v.res.next);
	/* meta is written whenever the start moves, before any segment goes:
	 * without it, a log that does not start at 0 had records removed and
	 * the start within its first segment is lost. */
	if (!l.has_meta && l.nseg > 0 && l.segs[0] > 0)
		report(&v, SB_VERIFY_FILE, path, SB_VERIFY_NOPOS,
		       "missing: records were removed (the first segment starts at offset %llu) "
		       "and the log start is unknown", (unsigned long long)l.segs[0]);
	sb_vlist_free(&l);
	*res = v.res;
	return 0;
}

uint64_t sb_verify_damage(const sb_verify_result *res)
{
	uint64_t n = 0;

	for (int k = 0; k < SB_VERIFY_NKINDS; k++)
		if (k != SB_VERIFY_IO)
			n += res->problems[k];
	return n;
}
