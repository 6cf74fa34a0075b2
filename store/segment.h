/*
 * segment.h - one segment file of a log (internal to the store).
 *
 * A segment is a file of records from its base offset on (format.h), mapped
 * into memory for reading, with its sparse index (index.h) in memory. Only
 * the last segment of a log is appended to; the appender (the log, holding
 * its append lock) writes records, adds index entries and then publishes the
 * new length and next offset with release stores, so that readers that load
 * them with acquire see whole records only.
 */
#ifndef SB_SEGMENT_H
#define SB_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "index.h"
#include "sb_store.h"
#include "zseg.h"

/* What every segment of one log shares; owned by the log. */
typedef struct sb_seg_params {
	const sb_io *io;
	const char *dir;          /* the topic directory */
	const char *topic;        /* for reports */
	uint32_t index_interval;
	size_t capacity;          /* largest segment file, header included */
	size_t roll_at;           /* the log rolls before a segment passes this
				   * size (header included) unless one batch
				   * alone does: preallocation stops here */
	int read_only;
	/* recover (sb_store_options.full_check): every index rebuilt is
	 * reported, the newest segment's missing one too, and no room to
	 * save an index file is an error (it is what recover is for) */
	int full_check;
	sb_report_fn report;
	void *report_arg;
	/* The cache of blocks of compressed segments, the log's (its field
	 * sb_log.zc): made at the first compressed segment's open
	 * (sb_seg_zopen), so that a topic without one has none. Compressed
	 * segments are opened only by the open's recovery (the log not
	 * shared yet) or under the log's compress_mu (compression,
	 * compaction): *zc is written only there, and read by a segment's
	 * open under the same. NULL: each compressed segment gets its own
	 * cache (the tools' segments). */
	sb_zcache **zc;
} sb_seg_params;

typedef struct sb_segment sb_segment;

enum {
	SB_SEG_TRUST_INDEX = 1, /* use a valid index file; scan only past its end */
	SB_SEG_ACTIVE = 2,      /* the last segment: map its capacity, appendable */
	SB_SEG_QUIET = 4,       /* report nothing (a second look at a segment) */
	SB_SEG_CHECK_ALL = 8,   /* check every record, even where a valid index
				 * file vouches for them (a valid index is kept) */
};

/*
 * Create a new empty segment file (header written and synced; the caller
 * fsyncs the directory). *out is the caller's, released with
 * sb_segment_close(). -EOVERFLOW when base_stream is past SB_STREAM_MAX
 * (its header would read as damaged).
 */
int sb_segment_create(const sb_seg_params *p, uint64_t base, uint64_t base_stream, sb_segment **out);
/*
 * Open an existing segment, checking its records from where the index (if
 * trusted and valid) ends, or from the start. Nothing is cut here: whatever
 * follows the last whole record (preallocated zeros, a torn tail, damage) is
 * left for the log to judge with sb_segment_damage() and sb_segment_cut().
 * SB_ECORRUPT if the header itself is bad. *changed is set to 1 if the index
 * must be saved. *out on success.
 */
int sb_segment_open(const sb_seg_params *p, uint64_t base, int flags, int *changed, sb_segment **out);
/*
 * A compressed segment (format.h) opens as a sealed one whatever the flags
 * say, except that SB_SEG_ACTIVE read-write first writes it back plain
 * (temp file, fsync, rename) and opens that; a damaged block stops it, and
 * it opens compressed with the damage (sb_segment_damage) at that block.
 * SB_SEG_CHECK_ALL checks every block. A compressed segment counts as
 * synced (sb_segment_index_valid): it was made from a synced one and
 * synced before its rename.
 */
/* Unmap and close; with `clean` (active segments) cut the preallocated
 * space, sync and save the index first. Returns the first error. */
int sb_segment_close(sb_segment *s, int clean);
/*
 * After sb_segment_open: did the records stop before the end of the file?
 * 0 if not; else the SB_REC_* kind (SB_REC_END: only zeros follow, as in
 * preallocated space), *pos the end of the last whole record and *what a
 * few words for messages ("corrupt record", "zeros", ...).
 */
int sb_segment_damage(const sb_segment *s, uint64_t *pos, const char **what);
/* Was a valid index file found at open? One is written only after its
 * segment was synced, so it proves the records it covers were durable. */
int sb_segment_index_valid(const sb_segment *s);
/* Cut the file at its last whole record (reported unless quiet; read-only:
 * nothing changes on disk). 0 or -errno. */
int sb_segment_cut(sb_segment *s, int quiet);
/* Close and delete the segment's files. */
int sb_segment_remove(sb_segment *s);
/*
 * A segment file rewritten beside its own (compaction, a repair): finish
 * the temp file fd with header h at byte 0, fdatasync it and close it (also
 * on failure). 0 or -errno; the temp file is the caller's to remove.
 */
int sb_segment_seal_file(const sb_io *io, int fd, const sb_seg_hdr *h);
/*
 * Then put temp file tmp in place of segment file path, in directory dir:
 * its .idx and .tix go first, synced (they index the old records: beside
 * the new file they would name records that are gone), then the rename
 * and the directory fsync. *renamed: tmp took the name (from then on the
 * new file is in place, whatever fails after). 0 or -errno.
 */
int sb_segment_replace_file(const sb_io *io, const char *dir, const char *path, const char *tmp, int *renamed);

uint64_t sb_segment_base(const sb_segment *s);
uint64_t sb_segment_base_stream(const sb_segment *s);
uint64_t sb_segment_len(const sb_segment *s);        /* acquire; the file's
						      * length when compressed */
uint64_t sb_segment_plain_len(const sb_segment *s);  /* length uncompressed */
/* The compressed view of a compressed segment, else NULL. */
sb_zseg *sb_segment_zseg(const sb_segment *s);
/* Opened as the active (appendable) segment? */
int sb_segment_active(const sb_segment *s);
/* A sealed segment compression gave up on (damage): not tried again. */
int sb_segment_zskip(const sb_segment *s);
/* Compacted (format.h): its span, next - base; 0 when offsets are dense. */
uint32_t sb_segment_compacted(const sb_segment *s);
/* The first offset >= offset (inside the segment) that holds a record:
 * offset itself unless compacted; -ENOENT when none is left in it. */
int sb_segment_next_present(sb_segment *s, uint64_t offset, uint64_t *found);
void sb_segment_set_zskip(sb_segment *s);
const char *sb_segment_path(const sb_segment *s);
uint64_t sb_segment_next(const sb_segment *s);       /* acquire */
uint64_t sb_segment_stream_end(const sb_segment *s); /* acquire */
int64_t sb_segment_first_ts(const sb_segment *s);
unsigned sb_segment_version(const sb_segment *s); /* its format version */
int64_t sb_segment_max_ts(const sb_segment *s);   /* largest record timestamp (time index) */
/* The largest timestamp of the segments before it when it joined the log
 * (the log sets it; it may count segments removed since): a lower bound
 * for the seek by time's binary search over the segments. */
int64_t sb_segment_prior_max(const sb_segment *s);
void sb_segment_set_prior_max(sb_segment *s, int64_t ts);
/* Its time index (timeindex.h), for tests and verify. */
const struct sb_tindex *sb_segment_tindex(const sb_segment *s);
/*
 * The first record of this segment whose timestamp is >= ts, found through
 * the time index and a forward scan of at most one interval, each record
 * scanned checked whole (CRC). -ENOENT if none (yet); SB_ECORRUPT
 * (reported) on damage.
 */
int sb_segment_find_time(sb_segment *s, int64_t ts, uint64_t *offset);
int sb_segment_fd(const sb_segment *s);

/* Are its index files up to date (1), or still to be saved (0: no room
 * for them when sb_segment_save_index last tried)? */
int sb_segment_index_saved(const sb_segment *s);
/* Was its file unlinked under us (rm of the topic's files while it was
 * open: no name is left)? 1 or 0. */
int sb_segment_gone(const sb_segment *s);

/*
 * Append n records (bytes: their encoded size, which fits the capacity)
 * at offsets first .. first + n - 1, with timestamp `now` where a record
 * has none. `first` is the segment's next offset, or past it inside the
 * span sb_segment_reach made (-EINVAL otherwise, as for any record past
 * the span of a segment that has one). All or nothing: on failure the
 * file is as before (pwrite path: cut back) and nothing is published.
 */
int sb_segment_append(sb_segment *s, uint64_t first, const sb_record_in *r, size_t n, size_t bytes, int64_t now);
/*
 * A compacted topic takes records past its next offset (a backup with gaps
 * copied back, SPEC §3): let the active segment take offsets first ..
 * first + n - 1, first at or past its next. Its compacted span (format.h
 * "Compacted segment") is raised, when it does not reach them, to reach
 * SB_SPAN_SPARE offsets past them: the header rewritten in place (one
 * sector), not synced alone (any sync of the records covers it). Once a
 * segment has a span every append to it must be inside it: the appender
 * calls this before each. -EINVAL if they do not fit a span (2^32 offsets
 * from the base: roll first), else 0 or -errno (the header write's).
 * Appender only.
 */
int sb_segment_reach(sb_segment *s, uint64_t first, size_t n);
#define SB_SPAN_SPARE 4096
/*
 * Make an empty segment of an older format version (a record with headers
 * needs version 3) one of this version: its header rewritten in place (one
 * sector: old or new after a crash, both valid) and synced. Appender only;
 * -EINVAL if the segment holds records.
 */
int sb_segment_upgrade(sb_segment *s);
/*
 * Mark this sealed, synced segment as covering offsets up to `next`
 * (format.h "Compacted segment": its header's span, rewritten in place,
 * one sector, and synced), so that the next segment may start there (a
 * round giving it the offsets of a segment compacted to nothing). write_span does the file; set_span the segment in
 * memory, with readers kept out (the log's seg_lock).
 */
int sb_segment_write_span(sb_segment *s, uint64_t next);
/* Recovery, before the log is shared: the stream positions of a compacted
 * segment are derived data (format.h); put its payloads at base_stream on. */
void sb_segment_rebase_stream(sb_segment *s, uint64_t base_stream);
void sb_segment_set_span(sb_segment *s, uint64_t next);
/*
 * Make the segment final: an active segment's span cut back to its next
 * offset (synced), the preallocated space cut, leaving it marked unsynced. Its index file is not written yet: a segment
 * with a valid index file is always one whose records were synced, which is
 * what lets recovery skip it.
 */
int sb_segment_finish(sb_segment *s);
/* A finished segment: fdatasync it and then save its index. */
int sb_segment_make_durable(sb_segment *s);
/* Its records synced (the first step of sb_segment_make_durable, done once
 * for a sealed segment): 0 or -errno. */
int sb_segment_sync_data(sb_segment *s);
/* Finished but not yet durable? */
int sb_segment_unsynced(const sb_segment *s);
/* Finished, its records synced (its index files maybe not yet saved)? */
int sb_segment_data_synced(const sb_segment *s);
/* finish + make_durable. */
int sb_segment_seal(sb_segment *s);
/* Save the index file if it is not up to date (read-write only), after an
 * fdatasync of the segment: a valid index file says the segment was synced.
 * No room on the disk for it is not an error: it is saved by a later call,
 * or rebuilt at the next open. */
int sb_segment_save_index(sb_segment *s);

/*
 * Find record `offset` (base <= offset < next): its file position, the
 * stream position of its payload, and its header (sane and carrying that
 * offset; its CRC is the caller's to check). SB_ECORRUPT (reported) if the
 * records do not lead there.
 */
int sb_segment_locate(sb_segment *s, uint64_t offset, uint64_t *pos, uint64_t *stream, sb_rec_hdr *h);
/*
 * The same from a hint (the key index's: record `offset` was written at
 * file position `at`), without the stream position: 0 and *h when the
 * segment is uncompressed and was never compacted (its records never
 * moved) and a sane header carrying that offset starts at `at`; 1 when the
 * hint cannot be used (the caller locates by offset). Nothing reported.
 */
int sb_segment_locate_at(sb_segment *s, uint64_t offset, uint64_t at, sb_rec_hdr *h);
/* Does the record at pos (header h, from sb_segment_locate*()) carry key
 * [key, key + klen)? 1 or 0; the caller's copy checks the CRC, which covers
 * the key. */
int sb_segment_key_is(const sb_segment *s, uint64_t pos, const sb_rec_hdr *h, const void *key, size_t klen);
/* Find the record whose payload holds stream byte spos (base_stream <= spos
 * < stream_end), as above. */
int sb_segment_locate_stream(sb_segment *s, uint64_t spos, uint64_t *pos, uint64_t *stream,
			     sb_rec_hdr *h);
/*
 * The stream position of record `offset`'s payload, from the records before
 * it alone (its own header may be damaged). On SB_ECORRUPT (a record before
 * it is damaged) *stream is untouched and *lower is still set, to the
 * position of the nearest index entry before it.
 */
int sb_segment_stream_of(sb_segment *s, uint64_t offset, uint64_t *stream, uint64_t *lower);
/*
 * Walk the records from offset `from` to the end, each checked whole (its
 * CRC), in order: fn gets its header, its key (h->key_len bytes, valid
 * during the call) and where it starts in the file. Stops at the first record that fails (SB_ECORRUPT, not
 * reported: the reader that meets it reports it) or when fn returns
 * nonzero (that value); -ENOTSUP for a compressed segment (read it by
 * offset instead). For the key index's replay (log_keys.c).
 */
typedef int (*sb_seg_walk_fn)(void *arg, const sb_rec_hdr *h, const uint8_t *key, uint64_t pos);
int sb_segment_walk(sb_segment *s, uint64_t from, sb_seg_walk_fn fn, void *arg);
/* The same for the records of [from, to) (to: at most the segment's next),
 * the pages left mapped, and the records' CRCs not checked (their headers
 * are, against the segment's length): the key index's indexer reads what
 * this process just appended (the active segment, which the appender may
 * write through the mapping), a batch at a time; a get checks the record
 * it serves, whose CRC covers its key, so an entry read from a record
 * damaged since is never served as another key's. */
int sb_segment_walk_range(sb_segment *s, uint64_t from, uint64_t to, sb_seg_walk_fn fn, void *arg);
/* What sb_segment_copy copies. */
enum {
	SB_COPY_VALUE = 0,  /* one record's payload */
	SB_COPY_KEY = 1,    /* one record's key */
	SB_COPY_STREAM = 2, /* payloads, from one record on through the next */
	SB_COPY_HEADERS = 3, /* one record's header block (v3) */
};
/*
 * The one place that copies record bytes out of a segment (readers never
 * walk its mapping themselves). From the record at file position pos (its
 * header h as sb_segment_locate*() decoded it), copy bytes [from, from +
 * len) of its `part`, cut at the part's end, into dst; SB_COPY_STREAM goes
 * on through the payloads of the records after it until len bytes or the
 * segment's end. Every record that gives bytes (and with len 0, the record
 * at pos) has its CRC checked whole over exactly what is used: the header
 * as decoded and the bytes as copied into dst, so what is served is what
 * was checked even if the file changes meanwhile. *done gets the bytes
 * copied (with SB_COPY_STREAM: those of good records, also on failure).
 * 0 or SB_ECORRUPT (reported).
 */
int sb_segment_copy(sb_segment *s, uint64_t pos, const sb_rec_hdr *h, int part, uint64_t from, void *dst,
		    size_t len, size_t *done);
/*
 * sb_segment_copy through reader memo m (segment_memo.c; NULL: as
 * sb_segment_copy): a payload of at least SB_MEMO_MIN bytes (SB_COPY_VALUE,
 * and with SB_COPY_STREAM one that this copy serves only part of) is
 * checked whole once per memo, and each later slice of it only over the
 * SB_MEMO_CHUNK-byte chunks it touches, its header and key, and its header
 * block.
 */
#define SB_MEMO_CHUNK (64u * 1024u)
#define SB_MEMO_MIN (256u * 1024u)
int sb_segment_copy_m(sb_segment *s, sb_read_memo *m, uint64_t pos, const sb_rec_hdr *h, int part,
		      uint64_t from, void *dst, size_t len, size_t *done);
/* The memo's copy of payload bytes [from, from + len) of the record at pos
 * (header h; cut at its end). 0 or SB_ECORRUPT (reported). */
int sb_segment_copy_memo(sb_segment *s, sb_read_memo *m, uint64_t pos, const sb_rec_hdr *h, uint64_t from,
			 void *dst, size_t len, size_t *done);
/*
 * Report (through the log's report callback) damage a read met: the
 * record's offset, the segment file and the byte position. A repeat of the
 * last report of this segment is not reported again.
 */
void sb_segment_report_damage(sb_segment *s, uint64_t offset, uint64_t pos, const char *what);

#endif
