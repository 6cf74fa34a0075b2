/*
 * sb_store.h - the public API of the StreamBus storage engine.
 *
 * A store is a directory of topics; a topic is a log: a sequence of records
 * with dense offsets [start, next), split into segment files with a sparse
 * persistent index beside each (see store/format.h and docs/FORMAT.md).
 *
 * Every call that can fail returns 0 or a negative errno, or one of the
 * SB_E* store codes below; sb_strerror() names both. Out-parameters are left
 * untouched on failure.
 *
 * Threads: any number of threads may read a log while others append to it.
 * A record is readable by every reader as soon as sb_log_append() returns,
 * whatever the sync policy, and a reader never sees a partial record.
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sb_io.h"
#include "sb_time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Store codes of our own (below -4000, far from any errno). */
#define SB_ECORRUPT  (-4001) /* a record or file failed its checksum/format */
#define SB_EVERSION  (-4002) /* a file has an unknown format version */
#define SB_ELOCKED   (-4003) /* another process holds the store directory */

/* Name an error returned by any sb_* call (negative errno or SB_E*). */
const char *sb_strerror(int rc);

enum sb_sync {
	SB_SYNC_NEVER = 0,    /* at close, sb_log_sync() or segment roll */
	SB_SYNC_INTERVAL = 1, /* by the store's flusher, every sync_interval_ms */
	SB_SYNC_ALWAYS = 2,   /* before sb_log_append() returns (group commit) */
};

/* How sealed segments are kept on disk (SPEC §1 `compression`). */
enum sb_compression {
	SB_COMPRESS_NONE = 0, /* as written */
	SB_COMPRESS_LZ4 = 1,  /* compressed in blocks, in the background */
	SB_COMPRESS_ZSTD = 2,
};

typedef struct sb_log_config {
	uint64_t segment_bytes;        /* roll past this size (default 128 MiB) */
	uint32_t index_interval_bytes; /* bytes of records between index entries */
	uint32_t max_record_bytes;     /* largest payload (default 1 MiB) */
	enum sb_sync sync;
	uint32_t sync_interval_ms;
	int64_t retention_bytes;       /* -1: keep everything */
	int64_t retention_ms;          /* -1: keep everything */
	enum sb_compression compression; /* sealed segments (default none) */
	uint32_t compression_block_bytes; /* payload per compressed block */
	uint64_t key_memtable_bytes;   /* key index: MemTable bytes before it is
					* written as a table (0: 4 MiB) */
	unsigned cleanup;              /* SB_CLEANUP_* bits (default DELETE) */
	int64_t delete_retention_ms;   /* compaction keeps a tombstone this long */
} sb_log_config;

/* SPEC §1 `cleanup`: retention drops old segments (delete), compaction
 * keeps the latest record of each key (compact), or both. */
#define SB_CLEANUP_DELETE  1u
#define SB_CLEANUP_COMPACT 2u
/* Parse "delete" | "compact" | "compact,delete" (either order, and '+' for
 * the comma); 0 or -EINVAL, *out untouched on failure. */
int sb_cleanup_parse(const char *s, unsigned *out);
const char *sb_cleanup_name(unsigned c);

/* Fill *c with the defaults of SPEC §1. */
void sb_log_config_default(sb_log_config *c);
/* 0 if *c is usable, else -EINVAL (and *why, if given, says which field). */
int sb_log_config_check(const sb_log_config *c, const char **why);
/* Parse "never" | "interval" | "always"; 0 or -EINVAL, *out untouched on failure. */
int sb_sync_parse(const char *s, enum sb_sync *out);
const char *sb_sync_name(enum sb_sync s);
/* Parse "none" | "lz4" | "zstd"; 0 or -EINVAL, *out untouched on failure. */
int sb_compression_parse(const char *s, enum sb_compression *out);
const char *sb_compression_name(enum sb_compression c);

typedef struct sb_store sb_store;
typedef struct sb_log sb_log;

/* What the store found and changed while opening (recovery), and damage a
 * read met (the record's offset and segment file). Called from any thread
 * that reads, so it must be thread-safe. A message about the key index
 * (derived data, rebuilt from the log: a table removed or not used, a
 * table write that failed) starts with SB_REPORT_KEY_INDEX, so that a
 * caller can tell it from damage to records. */
typedef void (*sb_report_fn)(void *arg, const char *topic, const char *msg);
#define SB_REPORT_KEY_INDEX "key index: "

/*
 * Who holds a store's lock (or held it last), as the holder wrote it into
 * dir/.lock (see store/format.h): a daemon names the mountpoint it serves
 * the store on. The pid of a holder that wrote nothing (yet) comes from
 * /proc/locks, with no mountpoint.
 */
typedef struct sb_store_holder {
	long pid;                /* 0: not known */
	char mountpoint[4096];   /* "" when the holder serves no mount */
	char dir[4096];          /* the store directory as the holder named it */
	int held;                /* some process holds the lock right now */
	int mounted;             /* a mount of `dir` is at `mountpoint` right now */
	uint64_t closing_done;   /* the holder is closing: topics closed so far */
	uint64_t closing_total;  /* ... of these (0: not closing, or not said) */
	uint64_t closing_steps;  /* steps inside the topics' closes so far (a
				  * sealed segment synced, its index saved) */
} sb_store_holder;

/* How long the daemon and the tools wait for a finishing holder (ms). */
#define SB_LOCK_WAIT_DEFAULT_MS 10000u

typedef struct sb_store_options {
	const sb_io *io;             /* NULL: the real system calls */
	sb_log_config defaults;      /* config of every topic ... */
	/* ... unless this hook rewrites *cfg (already holding the defaults) for
	 * one topic; return 0 or -errno. NULL: no per-topic configuration. */
	int (*topic_config)(void *arg, const char *topic, sb_log_config *cfg);
	void *topic_config_arg;
	sb_report_fn report;         /* NULL: silent */
	void *report_arg;
	int read_only;               /* no lock, no writes, no recovery on disk */
	/* Damage that cannot be a torn write (in records that were synced:
	 * after a clean close, in a segment with a valid index file or followed
	 * by one) makes the store refuse that topic
	 * (sb_store_list_refused), so that nothing synced is deleted behind the
	 * user's back; with `repair` the log is cut at the damage instead, as
	 * after a torn write. */
	int repair;
	const char *repair_topic;    /* with repair: only this topic (NULL: all) */
	/* What `streambus recover` does: check every record of every segment,
	 * ignoring the shortcuts valid index files and the clean marker allow
	 * (so that whatever sb_verify finds is found), keeping an index file
	 * only if every entry matches. (Every open rebuilds bad indexes and
	 * rewrites a missing or damaged meta: the log then starts at its first
	 * segment, and removed records still in it come back.) */
	int full_check;
	int no_flusher;              /* no background threads: interval syncs,
				      * compression (sb_log_compress) */
	/* With read_only: the topics' key indexes are not opened (their
	 * tables not read, the log not replayed for keys): what reads records
	 * alone (streambus dump, and its --follow that opens again every
	 * 200 ms) skips that cost; the key functions then fail with -ENOENT. */
	int no_keys;
	/* With read_only: open this topic alone (NULL: every topic); the
	 * others are neither opened nor listed, as if absent (streambus get:
	 * its cost is the topic's, not LOG_DIR's). */
	const char *only_topic;
	/* The largest offset an append may take (0: no limit but the offset
	 * space's own): an append that would go past it fails with -EOVERFLOW
	 * and appends nothing. The mount sets the last offset it can name. */
	uint64_t max_offset;
	/* The lock (not read_only). `mountpoint` (NULL: none) is where the
	 * opener will mount the store, with `dir` as the mount's source; it is
	 * written into dir/.lock beside the pid, for later openers. A later
	 * opener that finds the lock held refuses at once (SB_ELOCKED) when
	 * the holder's mountpoint is mounted (a live mount); otherwise the
	 * holder is finishing (a daemon just unmounted, a tool) and the opener
	 * waits for it, polling, up to lock_wait_ms (0: SB_ELOCKED at once)
	 * and then on as long as the holder's note shows its close progress
	 * within each lock_wait_ms (thousands of topics take longer to close
	 * than a few seconds: each syncs its files), calling lock_waiting (may
	 * be NULL) once when it starts waiting.
	 * A read_only open takes no lock but waits the same way for such a
	 * holder (a closing daemon trims segments under a reader), then reads
	 * whoever holds the lock. These four are used during sb_store_open()
	 * only. */
	const char *mountpoint;
	unsigned lock_wait_ms;
	void (*lock_waiting)(void *arg, const sb_store_holder *holder);
	void *lock_waiting_arg;
} sb_store_options;

/* Fill *o with defaults (real io, default log config, read-write). */
void sb_store_options_default(sb_store_options *o);

/*
 * Open (creating if missing) the store directory `dir`. Takes an exclusive
 * lock (dir/.lock) unless read_only: a second opener gets SB_ELOCKED, at
 * once or after waiting as the lock_* options say (sb_store_holder_get()
 * then names the holder). Recovers every topic (cuts torn tails, rebuilds
 * indexes). A topic damaged beyond that (SB_ECORRUPT: see `repair`;
 * SB_EVERSION) is refused, not opened, and the store opens without it: see
 * sb_store_list_refused(). Any other error opening a topic fails the whole
 * open, except read_only, where the topic is refused with that error (its
 * message naming the file that could not be read) and the rest open. On success *out is the caller's, to be released with
 * sb_store_close(), which releases the lock last.
 */
int sb_store_open(const char *dir, const sb_store_options *opt, sb_store **out);
/* Read who holds (or last held) the lock of store directory `dir`: 0, or
 * -errno (-ENOENT: no lock file); *out untouched on failure. Never takes
 * the lock (safe beside a daemon starting). */
int sb_store_holder_get(const char *dir, sb_store_holder *out);
/* Wait, as a read-only sb_store_open() does (opt's lock_* fields), for a
 * holder of dir's lock that is no live mount (a daemon closing after its
 * unmount) to let go; then return, whoever holds it. For a tool that
 * decides from the lock whether LOG_DIR is in use before it opens. */
void sb_store_wait_finishing(const char *dir, const sb_store_options *opt);
/* Sync everything, write indexes and clean markers, release the lock, free. */
int sb_store_close(sb_store *s);

/* Valid topic name? (1..249 of [A-Za-z0-9._-], not starting with '.') */
int sb_topic_name_valid(const char *name);

/* -EINVAL for a bad name, -EEXIST if present (or refused), -EROFS if read_only. */
int sb_store_create(sb_store *s, const char *name);
/* Remove a topic with no retained records: -ENOTEMPTY otherwise, -ENOENT;
 * a refused topic gives its error. Waits for a compaction round or a
 * compression pass of the topic in progress. 0 only once the removal is
 * durable: when syncing LOG_DIR fails, or its directory cannot be removed
 * (a file not the store's in it), that error (the topic is gone from this
 * store all the same, and may come back, empty, at the next open). */
int sb_store_remove(sb_store *s, const char *name);
/*
 * Find a topic. *out is borrowed: it stays valid until sb_store_close(), even
 * after the topic is removed (then every call on it fails with -ENOENT).
 * A refused topic gives its error (SB_ECORRUPT, SB_EVERSION).
 */
int sb_store_get(sb_store *s, const char *name, sb_log **out);
/*
 * The topics sb_store_open() refused, in name order: fn gets the name, the
 * error and one line naming the file and byte where the damage is (without
 * the topic). A refused topic is not in sb_store_list(); sb_store_get() and
 * sb_store_remove() give its error, sb_store_create() -EEXIST; its files
 * are left as they were (`streambus recover --cut` repairs them). Stops
 * early when fn returns nonzero (that value is returned). fn must not call
 * back into this store.
 */
typedef int (*sb_refused_fn)(void *arg, const char *name, int err, const char *msg);
int sb_store_list_refused(sb_store *s, sb_refused_fn fn, void *arg);
/* Call fn for each topic in name order; stops early when fn returns nonzero
 * (that value is returned). fn must not call back into this store. */
int sb_store_list(sb_store *s, int (*fn)(void *arg, const char *name, sb_log *log),
		  void *arg);
/* The store's directory (owned by the store). */
const char *sb_store_dir(const sb_store *s);
/* Run retention on every topic (the daemon calls this periodically). */
int sb_store_retain(sb_store *s, int64_t now_ns);

/* ---- one topic's log ---------------------------------------------------- */

/*
 * A record header (Kafka's record headers): a name and bytes. Names are
 * 1..SB_HEADER_NAME_MAX bytes without a NUL, distinct within a record;
 * values 0..SB_HEADER_VALUE_MAX bytes, anything. A record has at most
 * SB_HEADERS_MAX_COUNT headers taking at most SB_HEADERS_MAX_BYTES encoded
 * (3 bytes + name + value each, plus 2).
 */
#define SB_HEADER_NAME_MAX 255u
#define SB_HEADER_VALUE_MAX 65535u
#define SB_HEADERS_MAX_BYTES 65536u
#define SB_HEADERS_MAX_COUNT 1024u
typedef struct sb_header {
	const char *name;
	uint32_t name_len;
	const void *value;
	uint32_t value_len;
} sb_header;

/* The flag of a tombstone (sb_record_in.flags, sb_record_info.flags;
 * SB_REC_TOMBSTONE in format.h): a delete marker for its key, a keyed
 * record without payload. A key whose latest record is one has no value
 * (sb_log_get_key, sb_log_list_keys). */
#define SB_RECORD_TOMBSTONE 0x0001u

typedef struct sb_record_in {
	const void *key;
	uint32_t key_len;       /* 0: no key */
	const void *value;
	uint32_t value_len;
	uint16_t flags;         /* SB_REC_* (format.h); 0 for plain records */
	int64_t timestamp_ns;   /* 0: now (CLOCK_REALTIME) */
	const sb_header *headers; /* n_headers of them (NULL when 0) */
	uint32_t n_headers;
} sb_record_in;

typedef struct sb_record_info {
	uint64_t offset;
	int64_t timestamp_ns;
	uint64_t stream_pos;    /* where its payload starts in the stream */
	uint32_t value_len;
	uint16_t key_len;
	uint16_t flags;
	uint32_t headers_len;   /* bytes of its encoded headers (0: none) */
} sb_record_info;

/* 0 if the headers h[0..n) may go into one record, else -EINVAL (an empty
 * or too long name, a NUL in one, a repeated name) or -E2BIG (a value, all
 * of them, or their number too large). */
int sb_headers_check(const sb_header *h, size_t n);
/*
 * Walk an encoded header block as sb_log_read_headers() copies it: start
 * with *pos = 0. 1 with *h pointing into block for each header, 0 after the
 * last, SB_ECORRUPT when the block does not parse (a block the store served
 * whole always parses).
 */
int sb_headers_next(const void *block, size_t len, size_t *pos, sb_header *h);

const char *sb_log_name(const sb_log *l);
const sb_log_config *sb_log_get_config(const sb_log *l);

/*
 * Append n records, all or nothing: a payload over max_record_bytes gives
 * -EFBIG, headers that sb_headers_check() refuses its error, a full disk
 * -ENOSPC, offsets or stream positions that would run out (near 2^64;
 * max_offset) -EOVERFLOW, and in each case nothing is appended. After
 * a failed sync, or a failed roll or seal, the log refuses appends with
 * that error until reopened. Under SB_SYNC_ALWAYS returns only once an
 * fdatasync covers the records, written before any such failure or not,
 * unless a sync of records failed: then that error (the records may be
 * there after a reopen, as after a crash).
 * *first_offset (may be NULL) gets the offset of the first record.
 */
int sb_log_append(sb_log *l, const sb_record_in *recs, size_t n, uint64_t *first_offset);
/*
 * As sb_log_append, but only if the first record gets offset `at`: at must
 * equal the next offset, or the log must be empty and at >= next offset (the
 * log then starts at `at`), or the log's cleanup has compact and at > next
 * (a backup of a compacted topic has gaps: the offsets between are a gap).
 * Otherwise -EINVAL.
 */
int sb_log_append_at(sb_log *l, uint64_t at, const sb_record_in *recs, size_t n);
/* Largest n*record overhead + payload accepted by one append call. */
size_t sb_log_batch_max(const sb_log *l);

uint64_t sb_log_start(const sb_log *l);        /* first retained offset */
uint64_t sb_log_next(const sb_log *l);         /* offset the next append gets */
/* A read-only open ended the log at `next` on damage that is no torn write
 * (a mount refuses it; recover --cut cuts it there): the records from next
 * on cannot be read here. 0 otherwise. */
int sb_log_damaged_tail(const sb_log *l);
/* With sb_log_damaged_tail(): where the damage is, one line naming the
 * segment file and byte ("00000000000000000084.seg: byte 1965: corrupt
 * record"), owned by the log; NULL otherwise (or when not known). */
const char *sb_log_damage(const sb_log *l);
uint64_t sb_log_stream_start(const sb_log *l); /* stream pos of record `start` */
uint64_t sb_log_stream_end(const sb_log *l);   /* stream bytes ever appended */
int64_t sb_log_mtime_ns(const sb_log *l);      /* last append (or open) time */

/*
 * Reads never return a damaged byte: every record whose bytes (or header
 * values) a call returns has its CRC checked whole in that call, whatever
 * part of it is read, so damage made to a segment file while it is open is
 * caught too. A record that fails, or a damaged header met on the way to
 * it, gives SB_ECORRUPT (reported through the report callback: topic,
 * offset, segment file), never -ENOENT, inside [start, next).
 */
/* Header of the record at `offset`: -ENOENT outside [start, next). */
int sb_log_stat(sb_log *l, uint64_t offset, sb_record_info *info);
/*
 * Copy up to len payload bytes of record `offset`, from byte `from` of its
 * payload, into buf; *nread gets the count (0 at or past its end). info may
 * be NULL.
 */
int sb_log_read(sb_log *l, uint64_t offset, uint64_t from, void *buf, size_t len,
		size_t *nread, sb_record_info *info);
/* Copy the key of record `offset` (up to cap bytes); *key_len gets its length. */
int sb_log_read_key(sb_log *l, uint64_t offset, void *buf, size_t cap, size_t *key_len);
/* Copy the encoded headers of record `offset` (up to cap bytes: walk them
 * with sb_headers_next()); *len gets their whole length, 0 when the record
 * has none. A block that does not parse is damage (SB_ECORRUPT). */
int sb_log_read_headers(sb_log *l, uint64_t offset, void *buf, size_t cap, size_t *len);
/*
 * Copy up to len bytes of the stream (the payloads in offset order) from
 * absolute stream position pos. -ENOENT if pos < sb_log_stream_start();
 * *nread = 0 at the end. A damaged record after some good bytes makes a
 * short read (those bytes); the read that starts at it fails with
 * SB_ECORRUPT. *nread < len before the end is never the end.
 */
int sb_log_read_stream(sb_log *l, uint64_t pos, void *buf, size_t len, size_t *nread);
/*
 * A reader's view of the stream (SPEC §2: compaction never disturbs a
 * reader). A compaction round moves the stream positions of the records
 * it keeps in the segments it rewrites; a view keeps the positions of the
 * moment it was taken: sb_log_view_read(pos) serves the bytes that
 * sb_log_read_stream(pos) served then (and, past them, what was appended
 * since), whatever rounds ran meanwhile. The segments a round replaces
 * stay open (their files unlinked, their space held) until the last view
 * taken before it is closed. Records removed since by retention or
 * sb_log_delete_before read as they do through sb_log_read_stream
 * (-ENOENT). sb_log_view_current: no round since the view was taken (its
 * positions are sb_log_stream_start()'s and the records' stream_pos).
 * Close every view before the store. A view is one pointer: any thread.
 */
typedef struct sb_log_view sb_log_view;
int sb_log_view_open(sb_log *l, sb_log_view **out);
int sb_log_view_current(sb_log *l, const sb_log_view *v);
int sb_log_view_read(sb_log *l, sb_log_view *v, uint64_t pos, void *buf, size_t len, size_t *nread);
void sb_log_view_close(sb_log_view *v);
/*
 * A reader's memo: what one reader (an open file) keeps between its reads
 * so that a large record read a slice at a time is checked whole once, not
 * at every slice (SPEC §4; reading a record of N bytes costs O(N)). The
 * *_m reads are the reads above through memo m: a payload of 256 KiB or
 * more (segment.h: SB_MEMO_MIN) has its CRC checked whole at the memo's
 * first read of it, which keeps 4 bytes per 64 KiB of it (at most 32 KiB,
 * for one record at a time); each later read checks the 64 KiB chunks it
 * serves, the header and key, and the header block against those values,
 * so a byte served is still a byte checked, and damage made after the
 * first read fails the first read that reaches it. m may be NULL (the
 * plain read). A memo is used by one reader, from any thread (it has its
 * own lock); free it after its last read.
 */
typedef struct sb_read_memo sb_read_memo;
int sb_read_memo_new(sb_read_memo **out);
void sb_read_memo_free(sb_read_memo *m);
int sb_log_read_m(sb_log *l, sb_read_memo *m, uint64_t offset, uint64_t from, void *buf, size_t len,
		  size_t *nread);
int sb_log_read_stream_m(sb_log *l, sb_read_memo *m, uint64_t pos, void *buf, size_t len, size_t *nread);
int sb_log_view_read_m(sb_log *l, sb_log_view *v, sb_read_memo *m, uint64_t pos, void *buf, size_t len,
		       size_t *nread);
/* The offset of the record holding stream byte pos (-ENOENT outside); the
 * records' framing is checked on the way, not that record's CRC. */
int sb_log_offset_at(sb_log *l, uint64_t pos, uint64_t *offset);

/*
 * Seek by time: the first record at or after moment ts (ns since the
 * epoch). Timestamps need not grow with offsets (a writer sets them, a
 * clock steps back): the answer is the first record whose running maximum
 * timestamp (the largest of the records before it and its own) is >= ts,
 * which is the first record whose own timestamp is >= ts; the records
 * after it follow whatever their times. The maximum counts the records of
 * every retained segment, also those below sb_log_start() in the first
 * one: when such a removed record reaches ts, the answer is the start.
 * *offset is sb_log_next() when no record reaches ts (yet). A binary search
 * of the segments and of a segment's time index, then a forward scan of at
 * most index_interval_bytes of records, each checked whole (SB_ECORRUPT on
 * damage, reported). -ENOENT for a removed topic.
 */
int sb_log_seek_time(sb_log *l, int64_t ts, uint64_t *offset);

/* Make offsets below `offset` unreadable; drops whole segments. The new
 * start is kept by a crash of the process at once (one write, no sync:
 * rm -r removes a record at a time), and by a power loss once synced
 * (sb_log_sync, the flusher's pass within a second, the close); a power
 * loss before may bring removed records back, never loses a kept one.
 * offset may not pass next; -EINVAL otherwise. */
int sb_log_delete_before(sb_log *l, uint64_t offset);
/* Drop old segments past retention_bytes / retention_ms; *dropped may be NULL. */
int sb_log_retain(sb_log *l, int64_t now_ns, size_t *dropped);
/* Make everything appended so far durable. After a failure that refuses
 * appends (sticky until the reopen) it still syncs what was appended,
 * unless the failure was a sync of records: then it returns that error,
 * as every later call does (a retried fdatasync may succeed with the
 * pages gone). */
int sb_log_sync(sb_log *l);
/*
 * Compress the sealed, synced segments that are not yet compressed (the
 * store does this in the background for topics whose `compression` is not
 * none; this does it now, with the log's codec, or lz4 when it has none).
 * Each is swapped for its compressed form durably (temp file, fsync,
 * rename, directory fsync), unseen by readers and appenders. *done (may
 * be NULL) gets the number of segments compressed. A segment whose records
 * fail their checks is left as it is (reported), not an error.
 */
int sb_log_compress(sb_log *l, size_t *done);

/*
 * Compact the sealed plain segments (SPEC §2 "Keys", format.h "Compacted
 * segment"): each is rewritten keeping only the latest record of each key
 * (tombstones while their time + delete_retention_ms is after now_ns),
 * every record without a key, and offsets as they were; the newest
 * segment and compressed ones are never touched. The store does this in
 * the background for topics whose `cleanup` has compact; this does it now,
 * whatever the config. Each swap is durable (temp file, fsync, rename,
 * directory fsync) and unseen by readers and appenders. *st (may be NULL)
 * gets what it did.
 */
typedef struct sb_compact_stats {
	uint32_t segments;          /* segments rewritten */
	uint64_t bytes_in, bytes_out; /* their file bytes before and after */
	uint64_t records_in, records_out;
	uint64_t tombstones_dropped;
	uint64_t horizon;           /* only records below this offset superseded
				     * others (synced ones: the first unsynced
				     * segment, or how far the newest was synced) */
	uint64_t end;               /* the segments rewritten end before this
				     * offset (the newest is never touched) */
	uint32_t segments_removed;  /* compacted to nothing, their files removed */
} sb_compact_stats;
int sb_log_compact(sb_log *l, int64_t now_ns, sb_compact_stats *st);

/* The first offset >= offset in [start, next) that holds a record (a
 * compacted topic has gaps): 0 and *found, or -ENOENT when none does. */
int sb_log_next_present(sb_log *l, uint64_t offset, uint64_t *found);

/* ---- a topic as a table: the latest record of each key ---------------- */

/*
 * The latest record appended with this key (SPEC §2 "Keys"): copies up to
 * cap bytes of its payload into buf, *nread the count, info (may be NULL)
 * its header. -ENOENT when the key has no record, its latest record is a
 * tombstone, or retention removed it; SB_ECORRUPT when the record (or the
 * key index entry naming it) is damaged, or when the index could not read
 * a record it needed at open (damage: that record may be any key's latest;
 * until the log is repaired, every lookup and listing by key of the topic
 * says so, and its reports name the record); -EINVAL for an empty key.
 */
int sb_log_get_key(sb_log *l, const void *key, size_t key_len, void *buf, size_t cap, size_t *nread,
		   sb_record_info *info);
/*
 * Every key whose latest record is not a tombstone, from the first key >=
 * from (from_len 0: all), in byte order of the key: fn gets the key and
 * that record's offset, timestamp_ns, value_len and key_len (stream_pos
 * and flags 0). Stops when fn returns nonzero (that value is returned).
 * fn must not append to this log. SB_ECORRUPT, calling fn for none, when
 * the index met damage at open (sb_log_get_key).
 */
typedef int (*sb_key_fn)(void *arg, const void *key, size_t key_len, const sb_record_info *info);
int sb_log_list_keys(sb_log *l, const void *from, size_t from_len, sb_key_fn fn, void *arg);

typedef struct sb_log_key_stats {
	uint64_t memtable_keys, memtable_bytes;
	uint32_t tables;
	uint64_t table_keys, table_bytes;
	/* Since the open: times the appending thread indexed the unindexed
	 * keys itself, or wrote them as a table, because the background
	 * flusher was far behind (0 when it keeps up). */
	uint64_t appender_sorts, appender_writes;
} sb_log_key_stats;
int sb_log_get_key_stats(sb_log *l, sb_log_key_stats *st);
/*
 * Check the key index against the log (what `streambus verify` does for
 * keys): the latest entry of every key must name a record that carries
 * that key, with the payload size, time and tombstone flag the entry says
 * (or one below the log start: retention removed it). *checked and *wrong
 * (may be NULL) get the counts; fn (may be NULL) gets a line for each
 * wrong entry. 0, or an error that stopped the check.
 */
int sb_log_verify_keys(sb_log *l, uint64_t *checked, uint64_t *wrong,
		       void (*fn)(void *arg, const char *msg), void *arg);

typedef struct sb_log_stats {
	uint64_t start, next;      /* offsets */
	uint64_t first;            /* the first record there: start, or past it in
				    * a compacted topic (gaps); next when none */
	uint64_t records;          /* records there: next - start, less a compacted
				    * topic's gaps (counted in its compacted
				    * segments: a read of their records) */
	uint64_t bytes;            /* segment bytes on disk (stored) */
	uint64_t logical_bytes;    /* the same segments uncompressed */
	uint32_t compressed;       /* segments kept compressed */
	uint64_t stream_bytes;     /* retained payload bytes */
	uint32_t segments;
	int64_t oldest_ns, newest_ns; /* timestamps; 0 when empty or unreadable */
	int unreadable;            /* bit 0: the oldest record, bit 1: the newest
				    * cannot be read (damage: see streambus verify) */
	uint64_t syncs;            /* fdatasyncs done since open */
	uint64_t synced_appends;   /* append calls covered by those syncs */
} sb_log_stats;
int sb_log_get_stats(sb_log *l, sb_log_stats *st);

/* ---- checking a topic directory on disk (streambus verify) --------------
 *
 * Check a topic directory against the on-disk format, without the store:
 * every record's CRC, the order of offsets and stream positions (within and
 * across segments, against the segment names and headers), every index file
 * (header CRC, entries CRC, count, covered length, and each entry against
 * the record it points at), every time index file (against the records'
 * running maximum times), the meta and clean files.
 *
 * It only reads (open O_RDONLY, pread); it never takes the store lock and
 * never changes a file. Running it while a daemon appends to the same
 * directory may report the active segment's index as stale; a segment the
 * daemon trims meanwhile (a roll cuts its preallocated tail) is checked up to
 * where it ends now.
 */

enum sb_verify_kind {
	SB_VERIFY_RECORD = 0, /* a record: CRC, header, torn or garbled tail */
	SB_VERIFY_ORDER = 1,  /* offsets/stream positions not dense and in order */
	SB_VERIFY_INDEX = 2,  /* an index file (rebuildable from its segment:
			       * streambus verify notes these, not damage) */
	SB_VERIFY_FILE = 3,   /* a segment header, meta, clean or a file name */
	SB_VERIFY_IO = 4,     /* a file could not be read (not damage as such) */
};
#define SB_VERIFY_NKINDS 5

/* No byte position: the problem is about the whole file. */
#define SB_VERIFY_NOPOS UINT64_MAX
/* No record offset: the problem is not about one record. */
#define SB_VERIFY_NOOFF UINT64_MAX

typedef struct sb_verify_problem {
	enum sb_verify_kind kind;
	const char *path;   /* the file (or the topic directory) */
	uint64_t pos;       /* byte position in it, or SB_VERIFY_NOPOS */
	const char *msg;    /* what is wrong, one line without the path */
	uint64_t offset;    /* the offset of the record concerned (the one
			     * expected at pos, for a damaged or torn one), or
			     * SB_VERIFY_NOOFF */
	int newest;         /* about the topic's newest segment or its index:
			     * while a daemon appends to it, its index is
			     * stale or missing until the segment is closed */
	int tail;           /* newest, and at its very end (a torn last record,
			     * a last record failing its CRC with only zeros
			     * after it, a file shorter than its header): what
			     * a write in progress looks like while a daemon
			     * appends */
} sb_verify_problem;

/* Called once per problem; the strings are valid only during the call. */
typedef void (*sb_verify_problem_fn)(void *arg, const sb_verify_problem *p);
/* Called now and then with segment bytes checked so far and the total. */
typedef void (*sb_verify_progress_fn)(void *arg, uint64_t done, uint64_t total);

typedef struct sb_verify_result {
	uint64_t segments;       /* segment files found */
	uint64_t records;        /* records with a good CRC, from the log start on */
	uint64_t bytes;          /* segment bytes checked (file sizes) */
	uint64_t index_entries;  /* index entries checked */
	uint64_t first, next;    /* offsets [first, next) seen; both 0 if none */
	uint64_t start;          /* log start: from meta if past first, else first */
	uint64_t problems[SB_VERIFY_NKINDS]; /* count per kind */
} sb_verify_result;

/* Sum of the sizes of the segment files in topic_dir: the progress total.
 * 0 or -errno; *bytes untouched on failure. */
int sb_verify_topic_bytes(const char *topic_dir, uint64_t *bytes);

/*
 * Check the topic directory `topic_dir`. Each problem found goes to
 * `problem` (may be NULL); `progress` (may be NULL) hears how far it got.
 * Returns 0 when the check ran (damage or not: see res->problems), or -errno
 * when the directory itself cannot be listed (then nothing is reported and
 * *res is untouched). Files that cannot be read count as SB_VERIFY_IO.
 */
int sb_verify_topic(const char *topic_dir, sb_verify_problem_fn problem,
		    sb_verify_progress_fn progress, void *arg, sb_verify_result *res);

/* Total of res->problems[] except SB_VERIFY_IO. */
uint64_t sb_verify_damage(const sb_verify_result *res);

/* ---- files and records as stored (for tools) ------------------------------ */

/* The lock file's name in a store directory (see sb_store_open). */
#define SB_STORE_LOCK_NAME ".lock"

/* 1 if dir holds segment files or a meta file (looks like a topic
 * directory of a store), else 0. */
int sb_store_is_topic_dir(const char *dir);

/* Bytes record r takes in a segment (its framing included). */
size_t sb_record_size(const sb_record_in *r);
/* The bytes record r is stored as, with this offset and timestamp, into dst
 * (cap bytes): its size, or 0 when it does not fit in cap (dst untouched). */
size_t sb_record_encode(void *dst, size_t cap, uint64_t offset, int64_t ts_ns,
			const sb_record_in *r);

/* For benchmarks only (streambus bench's index_lookup figure): the sparse
 * index of one segment in memory, `entries` entries `step` offsets apart. */
typedef struct sb_bench_index sb_bench_index;
int sb_bench_index_new(uint32_t entries, uint32_t step, sb_bench_index **out);
/* The file position of the last entry at or before relative offset rel, as
 * the reader looks it up; -ENOENT below the first. */
int sb_bench_index_lookup(const sb_bench_index *b, uint32_t rel, uint32_t *pos);
void sb_bench_index_free(sb_bench_index *b);

/* For benchmarks only (streambus bench keys): a key index's MemTable
 * (store/memtable.h), keys mapped to offsets. */
typedef struct sb_bench_memtable sb_bench_memtable;
int sb_bench_memtable_new(sb_bench_memtable **out);
int sb_bench_memtable_put(sb_bench_memtable *m, const void *key, size_t klen, uint64_t offset);
int sb_bench_memtable_get(const sb_bench_memtable *m, const void *key, size_t klen, uint64_t *offset);
size_t sb_bench_memtable_bytes(const sb_bench_memtable *m);
/* Empty it, keeping up to `keep` bytes of its memory for the next fill. */
void sb_bench_memtable_clear(sb_bench_memtable *m, size_t keep);
void sb_bench_memtable_free(sb_bench_memtable *m);

#ifdef __cplusplus
}
#endif
#endif
