/*
 * log_recover_hdr.c - segment headers recovery rewrites in place: a gap
 * repaired by a span (sb_log_recover_span_gap), and a header torn by a
 * crash while it was rewritten in place (format.h: the newest segment's
 * compacted span raised or cut back, a version upgrade; a sealed one's
 * span given the offsets of the empty segments after it by a compaction
 * round, or a gap's by a repair): the bytes that write changed (version,
 * span, CRC) may be garbage after a power loss, the others are as they
 * were (a write changes only the bytes it writes: "powersafe overwrite",
 * as SQLite assumes). Such a header is written anew from what is left of
 * it, from the records after it and from where the next segment starts,
 * instead of the segment being cut as a torn tail (every record in it
 * lost, acknowledged ones too) or the topic refused. The open that calls
 * this is in log_recover.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "codec.h"
#include "fsutil.h"
#include "log.h"
#include "log_impl.h"
#include "segment.h"

/* The bytes an in-place rewrite leaves alone say so (sb_seg_hdr_torn), and
 * the stream position is stream_end when the previous segment is a plain
 * one, whose stream this one continues (UINT64_MAX: not known). */
static int torn_rewrite(const uint8_t *h, uint64_t base, uint64_t stream_end)
{
	return sb_seg_hdr_torn(h, base) && (stream_end == UINT64_MAX || sb_get64(h + SB_SEG_AT_STREAM) == stream_end);
}

/*
 * The span the header of the segment at `base` needs, its records in
 * map[SB_SEG_HDR, size) (the first that does not decode ends them: the
 * open that follows judges it as ever), *payload their payload bytes:
 *   - the newest one (next_base UINT64_MAX): 0 when their offsets follow
 *     each other from base (or there is none), else past the last one with
 *     the spare an active segment keeps (SB_SPAN_SPARE: the offsets a
 *     raised span may have reached, never given again);
 *   - a sealed one: 0 when they fill every offset below next_base, the next
 *     segment's base, else up to it (a compacted segment's span).
 * UINT64_MAX: no span says it (records past next_base, or too far).
 */
static uint64_t span_needed(const uint8_t *map, uint64_t size, uint64_t base, uint64_t next_base, uint64_t *payload)
{
	uint64_t pos = SB_SEG_HDR, next = base, bytes = 0;
	int dense = 1;
	sb_rec_hdr h;

	while (pos < size && sb_rec_decode_v(map + pos, size - pos, SB_FORMAT_VERSION, 1, &h) == SB_REC_OK &&
	       h.offset >= next && h.offset - base < UINT32_MAX) {
		dense &= h.offset == next;
		next = h.offset + 1;
		bytes += h.value_len;
		pos += h.size;
	}
	*payload = bytes;
	if (next_base == UINT64_MAX) {
		if (dense)
			return 0;
		return next - base + SB_SPAN_SPARE > UINT32_MAX ? UINT32_MAX : next - base + SB_SPAN_SPARE;
	}
	if (next > next_base || next_base - base > UINT32_MAX)
		return UINT64_MAX;
	return dense && next == next_base ? 0 : next_base - base;
}

/* Segment `base`'s file opened with `flags` (name: its name, 32 bytes):
 * the descriptor, or -errno. */
static int seg_open(sb_log *l, uint64_t base, int flags, char *name)
{
	char path[PATH_MAX];
	int rc;

	sb_seg_name(name, base, SB_SEG_SUFFIX);
	if ((rc = sb_path(path, l->dir, name)))
		return rc;
	return l->io->open(l->io->ctx, path, flags, 0);
}

int sb_log_seg_head(sb_log *l, uint64_t base, void *buf, size_t n)
{
	const sb_io *io = l->io;
	char name[32];
	int fd = seg_open(l, base, O_RDONLY, name);

	if (fd < 0)
		return fd;
	ssize_t got = io->pread(io->ctx, fd, buf, n, 0);
	io->close(io->ctx, fd);
	return got == (ssize_t)n ? 0 : got < 0 ? (int)got : -EIO;
}

/* Does the stream of a sealed segment whose header says it starts at
 * `stream`, `payload` bytes long, end where the next segment's (at
 * next_base) begins, as its header, whole, says? A rewrite in place leaves
 * them so (a round wrote both files' positions); a header whose stream
 * position is damaged too is not such a rewrite. */
static int meets_next(sb_log *l, uint64_t next_base, uint64_t stream, uint64_t payload)
{
	uint8_t hb[SB_SEG_HDR];
	sb_seg_hdr nh;

	return !sb_log_seg_head(l, next_base, hb, sizeof(hb)) && !sb_seg_hdr_decode(hb, &nh) &&
	       nh.base_offset == next_base && nh.base_stream >= stream && nh.base_stream - stream == payload;
}

int sb_log_recover_torn_header(sb_log *l, uint64_t base, uint64_t next_base, uint64_t stream_end, int *changed)
{
	const sb_io *io = l->io;
	char name[32], msg[200];
	uint8_t old[SB_SEG_HDR], hdr[SB_SEG_HDR];
	struct stat st;
	void *map = MAP_FAILED;
	int fd = seg_open(l, base, O_RDWR, name), rc = 1;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || st.st_size < (off_t)SB_SEG_HDR ||
	    io->pread(io->ctx, fd, old, sizeof(old), 0) != (ssize_t)sizeof(old) ||
	    !torn_rewrite(old, base, stream_end))
		goto out_close;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	uint64_t payload, stream = sb_get64(old + SB_SEG_AT_STREAM);
	uint64_t span = span_needed(map, (uint64_t)st.st_size, base, next_base, &payload);
	if (span == UINT64_MAX || (next_base != UINT64_MAX && !meets_next(l, next_base, stream, payload))) {
		rc = 1; /* not what a rewrite in place leaves: judged as damage */
		goto out_unmap;
	}
	sb_seg_hdr h = {.base_offset = base, .base_stream = stream, .span = (uint32_t)span};
	sb_seg_hdr_encode(hdr, &h);
	if ((rc = sb_pwrite_full(io, fd, hdr, sizeof(hdr), 0)) || (rc = io->fdatasync(io->ctx, fd)))
		goto out_unmap;
	*changed = 1;
	snprintf(msg, sizeof(msg), "%s: header torn while it was rewritten (a crash): written anew (span %u)", name,
		 h.span);
	if (l->opt.report)
		l->opt.report(l->opt.report_arg, l->name, msg);
out_unmap:
	munmap(map, (size_t)st.st_size);
out_close:
	io->close(io->ctx, fd);
	return rc;
}

int sb_log_recover_span_gap(sb_log *l, sb_segment *prev, uint64_t next_base, int *changed)
{
	uint64_t base = sb_segment_base(prev), from = sb_segment_next(prev);
	char msg[256];
	int rc;

	if (sb_segment_zseg(prev) || next_base <= from || next_base - base > UINT32_MAX)
		return 1;
	if ((rc = sb_segment_write_span(prev, next_base)))
		return rc;
	sb_segment_set_span(prev, next_base);
	*changed = 1;
	snprintf(msg, sizeof(msg),
		 "%s: offsets %llu to %llu missing after it (no segment holds them): its span now reaches "
		 "the next segment; they read as compacted away, every later segment kept",
		 strrchr(sb_segment_path(prev), '/') + 1, (unsigned long long)from, (unsigned long long)next_base - 1);
	if (l->opt.report)
		l->opt.report(l->opt.report_arg, l->name, msg);
	return 0;
}
