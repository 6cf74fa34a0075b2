/*
 * log_recover_gap.c - `streambus recover --cut` (sb_store_options.repair)
 * of damage that cannot be a torn write in a sealed segment that other
 * segments follow: only the damaged records go. The segment is rewritten
 * as a compacted one (format.h, "Compacted segment": its span covers every
 * offset up to the next segment's base) holding the records that are
 * intact: of a plain segment those before the damage (past it nothing
 * frames the records), of a compressed one those of every block that
 * decodes with good CRCs. The dropped offsets become a gap, served as in a
 * compacted topic, and the later segments stay: records appended and
 * acknowledged after the damage are not lost to it.
 *
 * Written as the compactor writes a segment (log_compact.c, build/swap):
 * NNNN.gap.tmp, fdatasync, .idx and .tix removed and the directory synced
 * (an old index would cover records that are gone), rename over NNNN.seg,
 * directory fsync; then it is opened again (its indexes rebuilt). A crash
 * before the rename leaves a *.tmp file the next open removes, and the
 * damage, which the next recover meets again; after it, the compacted
 * segment, which opens as any other. Everything goes through l->io.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "codec.h"
#include "fsutil.h"
#include "log.h"
#include "log_impl.h"

/* One rewrite. */
typedef struct gap {
	sb_log *l;
	sb_segment *s;          /* the damaged segment, as opened */
	const char *name;       /* NNNN.seg, for reports */
	uint64_t base, next;    /* next: the following segment's base */
	uint64_t pos;           /* plain: where the damage starts */
	uint64_t at;            /* bytes of the new file written */
	uint64_t kept_stream;   /* payload bytes of the records kept */
	uint64_t kept;          /* records kept */
	char tmp[PATH_MAX];
	int fd;                 /* the temp file */
} gap;

static void report(sb_log *l, const char *msg)
{
	if (l->opt.report)
		l->opt.report(l->opt.report_arg, l->name, msg);
}

/* Where the stream of segment file `base` begins (its header; a
 * compressed one's too), so that the rewritten one ends there. 0 or
 * SB_ECORRUPT/-errno. */
static int stream_of_file(sb_log *l, uint64_t base, uint64_t *stream)
{
	char name[32], path[PATH_MAX];
	uint8_t h[SB_ZSEG_HDR];
	sb_seg_hdr sh;
	ssize_t n;
	int fd, rc;

	sb_seg_name(name, base, SB_SEG_SUFFIX);
	if ((rc = sb_path(path, l->dir, name)))
		return rc;
	if ((fd = l->io->open(l->io->ctx, path, O_RDONLY, 0)) < 0)
		return fd;
	n = l->io->pread(l->io->ctx, fd, h, sizeof(h), 0);
	l->io->close(l->io->ctx, fd);
	if (n >= (ssize_t)SB_SEG_HDR && sb_seg_hdr_decode(h, &sh) == 0) {
		*stream = sh.base_stream;
		return 0;
	}
	if (n == (ssize_t)sizeof(h) && sb_zseg_hdr_valid(h)) {
		*stream = sb_get64(h + SB_SEG_AT_STREAM); /* the same place in both headers */
		return 0;
	}
	return n < 0 ? (int)n : SB_ECORRUPT;
}

/* The records of a plain segment before the damage, each checked again
 * (CRC, offsets rising inside the span) on the file as it is now, copied
 * to the same places in the temp file. */
static int keep_plain(gap *g)
{
	const sb_io *io = g->l->io;
	unsigned version = sb_segment_version(g->s);
	uint64_t p = SB_SEG_HDR, prev = g->base, ks = 0, cnt = 0;
	sb_rec_hdr h;
	int in, rc = 0;

	if (g->pos <= SB_SEG_HDR)
		goto done; /* nothing before the damage */
	if ((in = io->open(io->ctx, sb_segment_path(g->s), O_RDONLY, 0)) < 0)
		return in;
	uint8_t *map = mmap(NULL, g->pos, PROT_READ, MAP_SHARED, in, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_in;
	}
	while (!rc && p < g->pos) {
		if (sb_rec_decode_v(map + p, g->pos - p, version, 1, &h) != SB_REC_OK || h.offset < prev ||
		    h.offset >= g->next) {
			rc = SB_ECORRUPT; /* changed since the open checked it */
			break;
		}
		prev = h.offset + 1;
		p += h.size;
		ks += h.value_len;
		cnt++;
	}
	if (!rc)
		rc = sb_pwrite_full(io, g->fd, map + SB_SEG_HDR, g->pos - SB_SEG_HDR, SB_SEG_HDR);
	munmap(map, g->pos);
out_in:
	io->close(io->ctx, in);
	if (rc)
		return rc;
done:
	g->at = g->pos > SB_SEG_HDR ? g->pos : SB_SEG_HDR;
	g->kept_stream = ks;
	g->kept = cnt;
	return 0;
}

/* One dropped range, said once the rewrite is in place. */
typedef struct dropped {
	uint64_t pos, first, end; /* file byte of the damage; offsets [first, end) */
} dropped;

/* The records of every block of a compressed segment that decodes with
 * good CRCs; the damaged blocks' ranges into *out (n, at most one per
 * block). */
static int keep_blocks(gap *g, dropped *out, size_t *n)
{
	sb_zseg *z = sb_segment_zseg(g->s);
	uint32_t nb = sb_zseg_blocks(z);
	size_t k = 0;

	g->at = SB_SEG_HDR;
	for (uint32_t i = 0; i < nb; i++) {
		uint64_t bytes = 0;
		int rc = sb_zseg_write_block(z, i, g->l->io, g->fd, g->at, &bytes);
		if (rc == SB_ECORRUPT) {
			out[k++] = (dropped){sb_zseg_block_pos(z, i), sb_zseg_block_offset(z, i),
					     sb_zseg_block_offset(z, i + 1)};
			continue;
		}
		if (rc)
			return rc;
		g->at += bytes;
		g->kept_stream += sb_zseg_block_stream(z, i + 1) - sb_zseg_block_stream(z, i);
		g->kept += sb_zseg_block_offset(z, i + 1) - sb_zseg_block_offset(z, i);
	}
	*n = k;
	return 0;
}

/* The header (compacted: span to the next segment; its stream ending
 * where the next segment's begins), then fdatasync and close. */
static int seal_tmp(gap *g)
{
	const sb_io *io = g->l->io;
	uint8_t hb[SB_SEG_HDR];
	uint64_t end = 0;
	sb_seg_hdr sh = {.base_offset = g->base, .base_stream = sb_segment_base_stream(g->s),
			 .version = SB_FORMAT_VERSION, .span = (uint32_t)(g->next - g->base)};
	int rc;

	/* Without the next header (damaged too), the stream stays where it
	 * was: recovery derives a compacted segment's positions from the
	 * next one's (log_recover.c, restream_compacted). */
	if (stream_of_file(g->l, g->next, &end) == 0 && end >= g->kept_stream &&
	    end - g->kept_stream <= SB_STREAM_MAX)
		sh.base_stream = end - g->kept_stream;
	sb_seg_hdr_encode(hb, &sh);
	rc = sb_pwrite_full(io, g->fd, hb, sizeof(hb), 0);
	if (!rc)
		rc = io->fdatasync(io->ctx, g->fd);
	int rc2 = io->close(io->ctx, g->fd);
	g->fd = -1;
	return rc ? rc : rc2;
}

/* The old index files go (synced) before the new file takes the name. */
static int drop_indexes(gap *g)
{
	const sb_io *io = g->l->io;
	const char *sfx[] = {SB_IDX_SUFFIX, SB_TIX_SUFFIX};
	char name[32], path[PATH_MAX];
	int rc;

	for (size_t i = 0; i < 2; i++) {
		sb_seg_name(name, g->base, sfx[i]);
		if ((rc = sb_path(path, g->l->dir, name)))
			return rc;
		if ((rc = io->unlink(io->ctx, path)) && rc != -ENOENT)
			return rc;
	}
	return sb_fsync_dir(io, g->l->dir);
}

/* Write the temp file: 0 and the damaged ranges, or an error (temp file
 * removed). */
static int build(gap *g, dropped *d, size_t *nd)
{
	const sb_io *io = g->l->io;
	int rc;

	if ((size_t)snprintf(g->tmp, sizeof(g->tmp), "%.*s.gap.tmp",
			     (int)(strlen(sb_segment_path(g->s)) - strlen(SB_SEG_SUFFIX)),
			     sb_segment_path(g->s)) >= sizeof(g->tmp))
		return -ENAMETOOLONG;
	if ((g->fd = io->open(io->ctx, g->tmp, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0)
		return g->fd;
	if (sb_segment_zseg(g->s)) {
		rc = keep_blocks(g, d, nd);
	} else {
		uint64_t pos;
		const char *what;
		sb_segment_damage(g->s, &pos, &what);
		g->pos = pos;
		d[0] = (dropped){pos, sb_segment_next(g->s), g->next};
		*nd = 1;
		rc = keep_plain(g);
	}
	if (!rc)
		rc = seal_tmp(g);
	else
		io->close(io->ctx, g->fd);
	if (rc)
		io->unlink(io->ctx, g->tmp);
	return rc;
}

static void report_dropped(gap *g, const dropped *d, size_t nd)
{
	const char *what = sb_segment_zseg(g->s) ? "damaged compressed block" : NULL;
	uint64_t pos;
	char msg[320];

	if (!what)
		sb_segment_damage(g->s, &pos, &what);
	for (size_t i = 0; i < nd; i++) {
		if (d[i].end <= d[i].first)
			continue;
		snprintf(msg, sizeof(msg), "%s: %s at byte %llu: offsets %llu to %llu (%llu records) dropped, "
			 "the records after them kept", g->name, what, (unsigned long long)d[i].pos,
			 (unsigned long long)d[i].first, (unsigned long long)(d[i].end - 1),
			 (unsigned long long)(d[i].end - d[i].first));
		report(g->l, msg);
	}
}

/* Can segment s, followed by the segment at next_base, hold a gap? NULL
 * if so, else why not (said in the fallback's report). */
static const char *why_not(const sb_segment *s, uint64_t next_base)
{
	if (sb_segment_version(s) < 3 && !sb_segment_zseg(s))
		return "its format version has no compacted span";
	if (next_base <= sb_segment_base(s) || next_base - sb_segment_base(s) > UINT32_MAX)
		return "its offsets do not fit a compacted span";
	return NULL;
}

int sb_log_recover_gap(sb_log *l, sb_segment **sp, uint64_t next_base, int *changed)
{
	sb_segment *s = *sp, *ns = NULL;
	gap g = {.l = l, .s = s, .base = sb_segment_base(s), .next = next_base, .fd = -1};
	const char *no = why_not(s, next_base);
	uint32_t nb = sb_segment_zseg(s) ? sb_zseg_blocks(sb_segment_zseg(s)) : 1;
	dropped *d;
	size_t nd = 0;
	char msg[256];
	int ch = 0, rc;

	g.name = strrchr(sb_segment_path(s), '/') + 1;
	if (no) {
		snprintf(msg, sizeof(msg), "%s: the damaged records cannot become a gap (%s): the log is cut there",
			 g.name, no);
		report(l, msg);
		return 1;
	}
	if (!(d = calloc(nb ? nb : 1, sizeof(*d))))
		return -ENOMEM;
	if ((rc = build(&g, d, &nd)) || (rc = drop_indexes(&g)) || (rc = l->io->rename(l->io->ctx, g.tmp,
										       sb_segment_path(s)))) {
		l->io->unlink(l->io->ctx, g.tmp);
		snprintf(msg, sizeof(msg), "%s: rewriting it without the damaged records failed (%s): the log is "
			 "cut there", g.name, sb_strerror(rc));
		report(l, msg);
		rc = 1; /* the old file is in place: the caller cuts */
		goto out_free;
	}
	/* From here the compacted file is in place: a failure is the open's
	 * (a recover run again finds that file and no damage). */
	*changed = 1;
	if ((rc = sb_fsync_dir(l->io, l->dir)) ||
	    (rc = sb_segment_open(&l->sp, g.base, SB_SEG_TRUST_INDEX | SB_SEG_QUIET, &ch, &ns)))
		goto out_free;
	report_dropped(&g, d, nd);
	sb_segment_close(s, 0);
	*sp = ns;
out_free:
	free(d);
	return rc;
}
