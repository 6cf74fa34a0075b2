/*
 * log_recover_gap.c - `streambus recover --cut` (sb_store_options.repair)
 * of damage that cannot be a torn write in a sealed segment that other
 * segments follow: only the damaged records go. The segment is rewritten
 * as a compacted one (format.h, "Compacted segment": its span covers every
 * offset up to the next segment's base) holding the records that are
 * intact: of a plain segment those before the damage and those from
 * where whole records resume after it (keep_plain), of a compressed one
 * those of every block that decodes with good CRCs. The dropped offsets
 * become a gap, served as in a compacted topic, and the later segments
 * stay: records appended and acknowledged after the damage are not lost
 * to it.
 *
 * Written as the compactor writes a segment (log_compact.c, build/swap;
 * segment.h, sb_segment_seal_file and sb_segment_replace_file):
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
#include <sys/stat.h>

#include "codec.h"
#include "fsutil.h"
#include "log.h"
#include "log_impl.h"

/* Dropped ranges of a plain segment at most: past them the rest of the
 * segment is dropped with the last. */
#define GAP_RANGES 64

/* One rewrite. */
typedef struct gap {
	sb_log *l;
	sb_segment *s;          /* the damaged segment as opened; NULL: its header is damaged */
	const char *path;       /* its file */
	const char *name;       /* NNNN.seg, for reports */
	unsigned version;       /* its records' format version */
	uint64_t base_stream;   /* where its stream begins (the open moves it) */
	uint64_t base, next;    /* next: the following segment's base (newest: the span's limit) */
	int newest;             /* the newest segment: nothing follows it */
	int dense;              /* its offsets follow each other (not compacted) */
	uint64_t kept_end;      /* one past the last offset kept */
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

/* One dropped range, said once the rewrite is in place. */
typedef struct dropped {
	uint64_t pos, first, end; /* file byte of the damage; offsets [first, end) */
	const char *what;         /* the damage */
} dropped;

/* The records of a plain segment in map[p, end), as its open checks them:
 * each whole with a good CRC, offsets rising from *low (the lowest one
 * allowed; then one past the last) and below the next segment's base.
 * Where the walk stopped (end when every byte was a record); *n and
 * *stream count the records and their payload bytes. */
static uint64_t walk_plain(const gap *g, const uint8_t *map, uint64_t p, uint64_t end, uint64_t *low,
			   uint64_t *n, uint64_t *stream)
{
	sb_rec_hdr h;

	while (p < end && sb_rec_decode_v(map + p, end - p, g->version, 1, &h) == SB_REC_OK &&
	       (g->dense ? h.offset == *low : h.offset >= *low) && h.offset < g->next) {
		*low = h.offset + 1;
		p += h.size;
		*n += 1;
		*stream += h.value_len;
	}
	return p;
}

/* Does a whole record of ours start at q, damage starting at p: its CRC
 * good, its offset at least low (the first one not kept) and below the
 * next segment's base; in a dense segment no more above low than records
 * (32 bytes at least) fit between p and q? */
static int ours_at(const gap *g, const uint8_t *map, uint64_t len, uint64_t p, uint64_t q, uint64_t low)
{
	uint64_t off;
	sb_rec_hdr h;

	if (q + SB_REC_HDR > len || sb_get32(map + q + SB_REC_AT_SIZE) < SB_REC_HDR ||
	    sb_get32(map + q + SB_REC_AT_SIZE) > len - q)
		return 0;
	off = sb_get64(map + q + SB_REC_AT_OFFSET);
	if (off < low || off >= g->next || (g->dense && off - low > (q - p) / SB_REC_HDR))
		return 0; /* the cheap test first */
	return sb_rec_decode_v(map + q, len - q, g->version, 1, &h) == SB_REC_OK;
}

/* Do the records from q on walk to the end, or to zeros up to it, or to
 * damage, rather than to a whole record whose offset does not rise? Only
 * then are they the log's: a record's bytes inside a damaged record's
 * payload (a copied segment file) walk to the record after it, which
 * carries an offset their own have passed. */
static int walks_on(const gap *g, const uint8_t *map, uint64_t len, uint64_t q)
{
	uint64_t low = sb_get64(map + q + SB_REC_AT_OFFSET), n = 0, st = 0, e;
	sb_rec_hdr h;

	e = walk_plain(g, map, q, len, &low, &n, &st);
	return e == len || sb_all_zero(map + e, len - e) ||
	       sb_rec_decode_v(map + e, len - e, g->version, 1, &h) != SB_REC_OK;
}

/* Where records resume after damage at byte p (low: the first offset not
 * kept), or 0 if nowhere:
 * - at p itself (a bad header before the first record; a record whose
 *   offset skips some: the skipped ones go);
 * - where the damaged record's own size says it ends: most damage leaves
 *   a record's size as it was, and that place is certain;
 * - else the first place past p where a record of ours starts and walks
 *   on (walks_on), found byte by byte. */
static uint64_t resync(const gap *g, const uint8_t *map, uint64_t len, uint64_t p, uint64_t low)
{
	uint64_t q;

	if (ours_at(g, map, len, p, p, low))
		return p;
	if (p + SB_REC_HDR <= len && (q = p + sb_get32(map + p + SB_REC_AT_SIZE)) >= p + SB_REC_HDR &&
	    ours_at(g, map, len, p, q, low))
		return q;
	for (q = p + 1; q + SB_REC_HDR <= len; q++)
		if (ours_at(g, map, len, p, q, low) && walks_on(g, map, len, q))
			return q;
	return 0;
}

/* The intact records of a plain segment in map (len bytes), checked again
 * on the file as it is now: those before the damage, at the same places in
 * the temp file, then each run of whole records after it (resync), back to
 * back. d (room for cap): each dropped range, the first from the damage
 * (d[0].first set); past cap - 1 of them, the rest of the segment goes
 * with the last. */
static int keep_runs(gap *g, const uint8_t *map, uint64_t len, dropped *d, size_t cap, size_t *nd)
{
	uint64_t low = g->base, p = g->pos, q;
	size_t k = 0;
	int rc;

	if (walk_plain(g, map, SB_SEG_HDR, g->pos, &low, &g->kept, &g->kept_stream) != g->pos)
		return SB_ECORRUPT; /* changed since the open checked it */
	if ((rc = sb_pwrite_full(g->l->io, g->fd, map + SB_SEG_HDR, g->pos - SB_SEG_HDR, SB_SEG_HDR)))
		return rc;
	g->at = g->pos;
	for (;;) {
		q = k + 1 < cap ? resync(g, map, len, p, low) : 0;
		if (!q && g->newest)
			break; /* the newest segment ends at its last damage: a cut there, no gap */
		d[k].end = q ? sb_get64(map + q + SB_REC_AT_OFFSET) : g->next;
		k++;
		if (!q)
			break; /* nothing whole after the damage */
		low = sb_get64(map + q + SB_REC_AT_OFFSET); /* a gap before it */
		p = walk_plain(g, map, q, len, &low, &g->kept, &g->kept_stream);
		if ((rc = sb_pwrite_full(g->l->io, g->fd, map + q, p - q, g->at)))
			return rc;
		g->at += p - q;
		if (p == len || sb_all_zero(map + p, len - p))
			break; /* the records reach the end */
		d[k] = (dropped){p, low, 0, "damaged record"};
	}
	g->kept_end = low;
	*nd = k;
	return 0;
}

/* keep_runs on the segment file, mapped whole. */
static int keep_plain(gap *g, dropped *d, size_t cap, size_t *nd)
{
	const sb_io *io = g->l->io;
	uint8_t *map;
	struct stat st;
	int in, rc;

	if ((in = io->open(io->ctx, g->path, O_RDONLY, 0)) < 0)
		return in;
	if (fstat(in, &st))
		rc = -errno;
	else if (!g->s && (uint64_t)st.st_size <= SB_SEG_HDR) {
		*nd = 1; /* a bad header and nothing after it: every offset goes (d[0]) */
		rc = 0;
	}
	else if ((uint64_t)st.st_size < g->pos || g->pos < SB_SEG_HDR)
		rc = SB_ECORRUPT; /* changed since the open checked it */
	else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, in, 0)) == MAP_FAILED)
		rc = -errno;
	else {
		rc = keep_runs(g, map, (uint64_t)st.st_size, d, cap, nd);
		munmap(map, (size_t)st.st_size);
	}
	io->close(io->ctx, in);
	return rc;
}

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
					     sb_zseg_block_offset(z, i + 1), "damaged compressed block"};
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

/* The header (compacted: span to the next segment), then fdatasync and
 * close. The stream keeps its base: the open moves every segment below a
 * stream gap up to meet the next one (log_recover.c, restream), so the
 * payload bytes dropped leave no hole in what `.log` reads. */
static int seal_tmp(gap *g)
{
	uint64_t end = g->newest ? g->kept_end : g->next;
	sb_seg_hdr sh = {.base_offset = g->base, .base_stream = g->base_stream,
			 .version = SB_FORMAT_VERSION, .span = (uint32_t)(end - g->base)};
	int rc = sb_segment_seal_file(g->l->io, g->fd, &sh);

	g->fd = -1;
	return rc;
}

/* Write the temp file: 0 and the damaged ranges (room for cap; a plain
 * segment's first one set, from g->pos), or an error (temp file
 * removed). */
static int build(gap *g, dropped *d, size_t cap, size_t *nd)
{
	const sb_io *io = g->l->io;
	int rc;

	if ((size_t)snprintf(g->tmp, sizeof(g->tmp), "%.*s.gap.tmp", (int)(strlen(g->path) - strlen(SB_SEG_SUFFIX)),
			     g->path) >= sizeof(g->tmp))
		return -ENAMETOOLONG;
	if ((g->fd = io->open(io->ctx, g->tmp, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0)
		return g->fd;
	rc = g->s && sb_segment_zseg(g->s) ? keep_blocks(g, d, nd) : keep_plain(g, d, cap, nd);
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
	char msg[320];

	for (size_t i = 0; i < nd; i++) {
		if (d[i].end <= d[i].first)
			continue;
		uint64_t n = d[i].end - d[i].first;
		/* a compacted segment's range holds offsets compaction had
		 * removed: how many records were there, nobody can tell */
		snprintf(msg, sizeof(msg), "%s: %s at byte %llu: offsets %llu to %llu (%s%llu record%s) dropped, "
			 "the records after them kept", g->name, d[i].what, (unsigned long long)d[i].pos,
			 (unsigned long long)d[i].first, (unsigned long long)(d[i].end - 1),
			 g->dense ? "" : "at most ", (unsigned long long)n, n == 1 ? "" : "s");
		report(g->l, msg);
	}
}

/* Put g's temp file (built: nd ranges in d) in place of its segment and
 * open it in *out: 0, or -errno with l->why saying it: nothing changed if
 * the new file is not in place (a full disk: the damage stays, for a
 * recover run again; the temp file removed), else the open's failure (a
 * recover run again finds that file and no damage). */
static int put_in_place(gap *g, const dropped *d, size_t nd, int rc, int *changed, sb_segment **out)
{
	sb_log *l = g->l;
	int ch = 0, renamed = 0;

	if (!rc)
		rc = sb_segment_replace_file(l->io, l->dir, g->path, g->tmp, &renamed);
	if (rc && !renamed) {
		l->io->unlink(l->io->ctx, g->tmp);
		snprintf(l->why, SB_LOG_WHY, "%s: rewriting it without the damaged records failed (%s): "
			 "nothing changed", g->name, sb_strerror(rc));
		report(l, l->why);
		return rc;
	}
	*changed = 1;
	if (!rc)
		rc = sb_segment_open(&l->sp, g->base, SB_SEG_TRUST_INDEX | SB_SEG_QUIET, &ch, out);
	if (rc) {
		snprintf(l->why, SB_LOG_WHY, "%s: rewritten without the damaged records, then: %s", g->name,
			 sb_strerror(rc));
		return rc;
	}
	report_dropped(g, d, nd);
	return 0;
}

/* Write g's segment again without its damage and open it in *out
 * (put_in_place). d: room for cap ranges. */
static int rewrite(gap *g, dropped *d, size_t cap, int *changed, sb_segment **out)
{
	size_t nd = 0;
	int rc = build(g, d, cap, &nd);

	return put_in_place(g, d, nd, rc, changed, out);
}

/* The damage of g's plain segment, as its open found it: where it starts,
 * and d[0], the first dropped range, from its first offset. */
static void first_range(gap *g, dropped *d)
{
	sb_segment_damage(g->s, &g->pos, &d[0].what);
	d[0].pos = g->pos;
	d[0].first = sb_segment_next(g->s);
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
	gap g = {.l = l, .s = s, .path = sb_segment_path(s), .version = sb_segment_version(s),
		 .base_stream = sb_segment_base_stream(s), .base = sb_segment_base(s), .next = next_base,
		 .dense = !sb_segment_compacted(s), .fd = -1};
	const char *no = why_not(s, next_base);
	size_t nb = sb_segment_zseg(s) ? sb_zseg_blocks(sb_segment_zseg(s)) : GAP_RANGES;
	dropped *d;
	char msg[320];
	int rc;

	g.name = strrchr(g.path, '/') + 1;
	if (no) {
		snprintf(msg, sizeof(msg), "%s: the damaged records cannot become a gap (%s): the log is cut there",
			 g.name, no);
		report(l, msg);
		return 1;
	}
	if (!(d = calloc(nb ? nb : 1, sizeof(*d)))) {
		snprintf(l->why, SB_LOG_WHY, "%s: %s", g.name, sb_strerror(-ENOMEM));
		return -ENOMEM;
	}
	if (!sb_segment_zseg(s))
		first_range(&g, d);
	if (!(rc = rewrite(&g, d, nb ? nb : 1, changed, &ns))) {
		sb_segment_close(s, 0);
		*sp = ns;
	}
	free(d);
	return rc;
}

/* Does the file at path start with a compressed segment's magic? */
static int compressed(const sb_io *io, const char *path)
{
	uint8_t h[4];
	int fd = io->open(io->ctx, path, O_RDONLY, 0);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = io->pread(io->ctx, fd, h, sizeof(h), 0);
	io->close(io->ctx, fd);
	return n == (ssize_t)sizeof(h) && sb_get32(h) == SB_ZSEG_MAGIC;
}

int sb_log_recover_header(sb_log *l, uint64_t base, uint64_t next_base, int *changed, sb_segment **out)
{
	char path[PATH_MAX], name[32], msg[256];
	gap g = {.l = l, .path = path, .name = name, .version = SB_FORMAT_VERSION, .base = base,
		 .next = next_base, .pos = SB_SEG_HDR, .fd = -1};
	dropped *d = NULL;
	int rc, z;

	sb_seg_name(name, base, SB_SEG_SUFFIX);
	if (!(rc = sb_path(path, l->dir, name)) && !(d = calloc(GAP_RANGES, sizeof(*d))))
		rc = -ENOMEM;
	if (rc) {
		snprintf(l->why, SB_LOG_WHY, "%s: %s", name, sb_strerror(rc));
		return rc;
	}
	if (next_base <= base || next_base - base > UINT32_MAX) {
		free(d);
		return 1;
	}
	/* A compressed one's blocks have no CRC but in its block table: they
	 * cannot be told good without it and its header (nor decoded without
	 * its dictionary). No plain record is found in it: its offsets go. */
	z = compressed(l->io, path);
	d[0] = (dropped){0, base, next_base,
			 z ? "compressed segment whose header, block table or dictionary fails its check"
			   : "bad segment header"};
	if (!(rc = rewrite(&g, d, GAP_RANGES, changed, out)) && g.kept) {
		snprintf(msg, sizeof(msg), "%s: bad segment header: written anew, the whole records after it kept",
			 name);
		report(l, msg);
	}
	free(d);
	return rc;
}

int sb_log_recover_newest(sb_log *l, sb_segment **sp, int *changed, sb_segment **active)
{
	sb_segment *s = *sp, *ns = NULL, *as = NULL;
	gap g = {.l = l, .s = s, .path = sb_segment_path(s), .version = sb_segment_version(s),
		 .base_stream = sb_segment_base_stream(s), .base = sb_segment_base(s),
		 .next = sb_segment_base(s) + UINT32_MAX, .newest = 1, .dense = !sb_segment_compacted(s), .fd = -1};
	dropped *d;
	size_t nd = 0;
	int placed = 0, rc;

	g.name = strrchr(g.path, '/') + 1;
	if (sb_segment_zseg(s) || sb_segment_version(s) < 3)
		return 1;
	if (!(d = calloc(GAP_RANGES, sizeof(*d)))) {
		snprintf(l->why, SB_LOG_WHY, "%s: %s", g.name, sb_strerror(-ENOMEM));
		return -ENOMEM;
	}
	first_range(&g, d);
	if ((rc = build(&g, d, GAP_RANGES, &nd)) == 0 && !nd) {
		/* nothing whole after the damage: a cut, as before */
		l->io->unlink(l->io->ctx, g.tmp);
		rc = 1;
		goto out_free;
	}
	/* The next appends go to a new segment after the kept records (a
	 * compacted one takes none): made first, so that a crash before the
	 * rename leaves the damaged segment sealed below it, which the next
	 * repair makes a gap the same way. */
	if (!rc && !(rc = sb_segment_create(&l->sp, g.kept_end, g.base_stream + g.kept_stream, &as)))
		rc = sb_fsync_dir(l->io, l->dir);
	if (rc && as) {
		sb_segment_remove(as);
		as = NULL;
	}
	rc = put_in_place(&g, d, nd, rc, &placed, &ns);
	*changed |= placed;
	if (rc && as && !placed)
		sb_segment_remove(as); /* nothing changed */
	else if (rc && as)
		sb_segment_close(as, 0); /* in place: the next open finds both */
	if (rc)
		goto out_free;
	sb_segment_close(s, 0);
	*sp = ns;
	*active = as;
out_free:
	free(d);
	return rc;
}
