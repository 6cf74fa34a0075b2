/*
 * segment_impl.h - the inside of a segment, shared by segment.c (create,
 * append, seal), segment_read.c (locate, copy, walk) and segment_open.c
 * (open and check), and by segment_tix.c and segment_z.c. Internal to the
 * segment files.
 */
#ifndef SB_SEGMENT_IMPL_H
#define SB_SEGMENT_IMPL_H

#include <stdatomic.h>

#include "segment.h"
#include "segwin.h"
#include "timeindex.h"

struct sb_segment {
	const sb_seg_params *p;
	uint64_t base;                /* immutable */
	uint64_t base_stream;         /* moved in memory alone by the open
				       * (log_recover.c, restream) and a
				       * compression's swap, before readers
				       * see the segment (sb_segment_rebase_stream) */
	uint64_t file_stream;         /* the one its header holds: the CRC of
				       * a header rewritten in place covers it
				       * (seg_write_span). Immutable */
	_Atomic uint32_t span;        /* compacted: offsets may skip inside
				       * [base, base + span) (format.h); 0:
				       * offsets are dense. Sealed: next - base,
				       * immutable. Active (a gap taken): the
				       * appender raises it before it publishes
				       * the records past it (sb_segment_reach) */
	_Atomic unsigned version;     /* its format version (format.h); set by
				       * the appender when it upgrades an empty one */
	char *seg_path;               /* heap, exact size: thousands of topics */
	char *idx_path;
	char *tix_path;
	int fd;
	uint8_t *map;                 /* map_len bytes of the file, MAP_SHARED */
	size_t map_len;
	int writable;                 /* mapped for writing (mmap_writes) */
	sb_index *ix;
	sb_tindex *tix;               /* the time index (timeindex.h) */
	/* Published by the appender (release), read by readers (acquire). */
	_Atomic uint64_t len;         /* bytes of whole records + header */
	_Atomic uint64_t next;        /* offset after the last record */
	_Atomic uint64_t stream_end;  /* stream pos after the last payload */
	_Atomic int64_t first_ts, max_ts; /* max_ts: the largest timestamp */
	/* Guarded by the log's append lock. */
	uint64_t alloc;               /* file size (preallocated) */
	uint64_t last_idx_pos;        /* position of the last index entry */
	int idx_dirty;                /* the index file is not up to date */
	int tix_dirty;                /* the time index file is not up to date */
	_Atomic int64_t prior_max;    /* the largest timestamp of the segments
				       * before it when it joined the log */
	_Atomic int unsynced;         /* finished (sealed) but not yet synced */
	_Atomic int data_synced;      /* sealed and its records synced, its
				       * index files maybe not yet */
	int damage;                   /* SB_REC_* that stopped the check before the
				       * end of the file, 0 if none; left for the log */
	int zeros;                    /* only zeros past len (preallocated space?) */
	int idx_valid;                /* a valid index file was found at open */
	uint32_t lost;                /* the segment ends after a whole record
				       * short of the length its index file
				       * covers: synced records are gone (0: no) */
	char lost_what[160];          /* how sb_segment_damage says so */
	_Atomic uint64_t damage_seen; /* the last damage a read reported (pos << 1 | 1) */
	uint64_t file_size;           /* at open */
	sb_segwin *win;               /* read-only, while checking at open: the
				       * file through pread (see segwin.h) */
	uint8_t *scratch;             /* pwrite path: encode buffer */
	size_t scratch_cap;
	sb_zseg *z;                   /* compressed: its blocks (no map, no index) */
	uint32_t zbad;                /* compressed and damaged: the first bad block */
	int active;                   /* opened or created as the active segment */
	_Atomic int zskip;            /* compression gave up on it */
};

void sb_seg_report(const sb_seg_params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Index entries a segment of p's capacity can need. */
size_t sb_seg_index_cap(const sb_seg_params *p);
/* A segment with its paths, nothing open (fd -1, no mapping). */
int sb_seg_alloc(const sb_seg_params *p, uint64_t base, sb_segment **out);
/* Unmap, close, free everything. */
void sb_seg_free(sb_segment *s);
/* Map the file: the whole capacity for the active segment (so the mapping
 * never moves as the file grows), else file_size bytes. */
int sb_seg_map(sb_segment *s, uint64_t file_size, int active);
/* segment_tix.c: a compressed segment's time index, loaded or rebuilt from
 * its blocks; the seek's scan from offset off through its blocks. */
int sb_seg_ztix(sb_segment *s, int flags, int *changed);
int sb_seg_zfind_time(sb_segment *s, uint64_t off, int64_t ts, uint64_t *offset);

/* Compressed segments (segment_z.c). Open the one in s->fd (size bytes):
 * 0, 1 when it was written back plain (to be opened again), or an error. */
int sb_seg_zopen(sb_segment *s, uint64_t size, int flags, int *changed);
/* sb_segment_cut of a compressed segment. */
int sb_seg_zcut(sb_segment *s, int quiet);
/* sb_segment_stream_of of a compressed segment. */
int sb_seg_zstream_of(sb_segment *s, uint64_t offset, uint64_t *stream, uint64_t *lower);

#endif
