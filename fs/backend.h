/*
 * backend.h - the one interface the filesystem talks to for its data.
 *
 * fs/ never calls a storage engine: it sees topics, records and one byte
 * stream per topic through this vtable, so that another log (a Kafka
 * cluster) can sit behind the same tree. backend_store.c implements it over
 * the StreamBus store (store/sb_store.h); a backend_kafka.c would over
 * librdkafka. Nothing else in fs/ includes a backend's own headers.
 *
 * A backend owns
 *   - its settings: every mount.ini section but [mount], and every -o
 *     key=value that is not a [mount] key, go to its class's `setting`
 *     (sbfs_backend_class below; [mount] backend = NAME picks the class);
 *   - its errors: every call returns 0 or a negative errno, nothing else.
 *     The backend maps its own codes (the store's SB_E*, librdkafka's
 *     rd_kafka_resp_err_t) to errnos, and logs (sbfs_log) what the errno
 *     cannot say: the damage it met (topic, offset, file), the broker that
 *     did not answer. Damage is -EIO; a cluster that does not answer within
 *     its timeout -ETIMEDOUT or -EIO, never a hang;
 *   - its limits: record_max, batch_max, record_size per topic.
 *
 * Out-parameters are left untouched on failure. Every call is thread-safe
 * (fs/ calls from many FUSE worker threads and its notifier thread at
 * once); fs/ serializes only what fs.h's lock order says (appends to one
 * topic against each other's batches, deletes against restores).
 *
 * THE STREAM MODEL (TOPIC/.log, SPEC §2)
 * A topic is records at offsets [start, next) (offsets a record was never
 * given, or lost to compaction, may hold none: see next_present). `.log` is
 * the concatenation of the retained records' payloads in offset order. Its
 * bytes are addressed by *stream positions*: record r's payload occupies
 * [stream_pos(r), stream_pos(r) + value_len), the next record's payload
 * starts where r's ends, and positions never move: a record keeps its
 * position while older ones are deleted (stream_start grows) and newer ones
 * appended (stream_end grows). Only differences of positions are ever shown
 * to users (a .log open remembers stream_start as its base: file position =
 * stream position - base), so a backend may choose its origin freely.
 *
 * The store keeps positions on disk (each record header holds its stream
 * position): all of it is cheap. A log that knows only offsets (Kafka) must
 * build positions itself, and fs/ asks for them only where it needs them:
 *   - bounds and stat_record take `want`: without SBFS_WANT_STREAM the
 *     stream fields may be left 0, so ls, lookup, stat of a record, rm and
 *     the notifier (which compares offsets) never need positions;
 *   - .log's getattr (fstat, tail -f's poll, lseek SEEK_END for tail -n),
 *     its open (the base) and its writes (the end: a write must land at
 *     the end) ask for stream_start/stream_end; its reads ask read_stream
 *     for bytes at a position (dd skip=N, tail -c, tail -n after SEEK_END,
 *     a plain cat from 0).
 * A Kafka backend can serve that with a position map per partition, in
 * memory (optionally persisted in a local cache directory): the payload
 * size of every record it has fetched, kept sparse (one (offset, position)
 * checkpoint per fetched batch, ~16 bytes per batch). The origin is the
 * partition's start offset when the mount first needed positions (position
 * 0); the map is filled forward by the fetches that serve reads, and the
 * first call that needs stream_end walks the partition from the last
 * checkpoint to the high watermark once (a fetch of every record not yet
 * seen: the price of an exact size, paid once per partition and mount;
 * afterwards each new record is counted as tail -f or the poller fetches
 * it). read_stream(pos) then finds the checkpoint at or below pos (binary
 * search), fetches from its offset and skips to pos: `dd skip=` and
 * `tail -n` cost one fetch, not a scan. Records deleted before the origin
 * (retention, DeleteRecords) raise stream_start to the position of the new
 * start offset; positions below it give -ENOENT, as in the store.
 * Per-record stream_pos from stat_record (asked for only to find where the
 * first visible record starts after an rm) is the same map.
 *
 * HOW TO GROW THIS INTERFACE
 * New operations are added as new members, optional where they can be:
 * NULL means "not supported" and fs/ answers for it (ENOTSUP, or as said at
 * the member), so that a backend that does not know of them still builds.
 */
#ifndef SBFS_BACKEND_H
#define SBFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

struct sbfs_config;

/* The largest offset the tree can name (inode numbers: see fs.h). A
 * backend refuses an append that would go past it with -EOVERFLOW and
 * appends nothing (a record without a file name would be acknowledged yet
 * unreadable by name). */
#define SBFS_OFFSET_MAX ((UINT64_C(1) << 40) - 1 - 16)

typedef struct sbfs_backend sbfs_backend;
/* A topic (one log: for Kafka, one partition; or a topic of several
 * partitions, see parts) handle: borrowed, valid
 * until the backend is closed, even after the topic is removed (then calls
 * on it fail with -ENOENT). */
typedef struct sbfs_topic sbfs_topic;

/* Bits of sbfs_rec.flags and sbfs_recinfo.flags. */
#define SBFS_REC_TOMBSTONE 0x0001u /* a delete marker for its key (no payload) */

/* One record header (SPEC §2: user.streambus.header.NAME): a name of 1..255
 * bytes without a NUL and bytes. Layout-compatible with the store's
 * sb_header (checked in backend_store.c). */
typedef struct sbfs_header {
	const char *name;
	uint32_t name_len;
	const void *value;
	uint32_t value_len;
} sbfs_header;
/* What every backend that keeps headers takes in one record (the store's
 * format, and within Kafka's): values up to 65535 bytes, at most 1024
 * headers, 64 KiB encoded as 2 + (3 + name + value) per header. A record's
 * header names listed as xattrs must also fit one listxattr reply (64 KiB,
 * with the record's other names). */
#define SBFS_HEADER_NAME_MAX 255u
#define SBFS_HEADER_VALUE_MAX 65535u
#define SBFS_HEADERS_MAX_COUNT 1024u
#define SBFS_HEADERS_MAX_BYTES 65536u
#define SBFS_HEADERS_LIST_MAX (65536u - 128u)
typedef int (*sbfs_header_fn)(void *arg, const sbfs_header *h);

/*
 * One record to append. Layout-compatible with the store's sb_record_in
 * (backend_store.c checks it at compile time and passes batches through
 * without a copy): a field added there is added here, at the same place.
 */
typedef struct sbfs_rec {
	const void *key;
	uint32_t key_len;       /* 0: no key */
	const void *value;
	uint32_t value_len;
	uint16_t flags;         /* SBFS_REC_*; 0 for plain records */
	int64_t timestamp_ns;   /* 0: now */
	const sbfs_header *headers; /* n_headers of them, names distinct */
	uint32_t n_headers;
} sbfs_rec;

typedef struct sbfs_recinfo {
	uint64_t offset;
	int64_t timestamp_ns;
	uint32_t value_len;
	uint32_t key_len;
	uint16_t flags;         /* SBFS_REC_* */
	uint64_t stream_pos;    /* with SBFS_WANT_STREAM: where its payload starts */
} sbfs_recinfo;

/* A topic's extent: offsets [start, next), stream positions
 * [stream_start, stream_end) (with SBFS_WANT_STREAM; else 0). */
typedef struct sbfs_bounds {
	uint64_t start, next;
	uint64_t stream_start, stream_end;
	int64_t mtime_ns;       /* last append (or when the backend last saw one) */
} sbfs_bounds;

/* `want` bits of bounds and stat_record. */
#define SBFS_WANT_STREAM 1u

typedef int (*sbfs_topic_fn)(void *arg, const char *name, sbfs_topic *t);
/* A topic the backend refused to open (damaged): its error (-EIO, ...)
 * and one line saying what is wrong, where (file and byte) and how to
 * repair it. */
typedef int (*sbfs_refused_fn)(void *arg, const char *name, int err, const char *msg);

typedef struct sbfs_backend_ops {
	/* ---- topics ---- */
	int (*topic_create)(sbfs_backend *b, const char *name);  /* -EINVAL, -EEXIST */
	int (*topic_remove)(sbfs_backend *b, const char *name);  /* -ENOTEMPTY, -ENOENT, -EPERM */
	int (*topic_get)(sbfs_backend *b, const char *name, sbfs_topic **out); /* -ENOENT */
	/* fn for each topic in name order (a nonzero return stops the walk);
	 * fn must not call the backend. */
	int (*topic_list)(sbfs_backend *b, sbfs_topic_fn fn, void *arg);
	/* fn for each topic refused at open, in name order. Such a topic is not
	 * in topic_list; topic_get and topic_remove give its error (-EIO),
	 * topic_create -EEXIST. fn must not call the backend. */
	int (*topic_list_refused)(sbfs_backend *b, sbfs_refused_fn fn, void *arg);
	int (*topic_name_valid)(const char *name);  /* 1 or 0 */
	/* Optional (NULL: every topic holds its records itself, as the
	 * store's do): topics of several partitions (Kafka). *n is 0 for a
	 * topic that holds its records itself, n >= 2 for one of n
	 * partitions: its directory holds one directory per partition, named
	 * "0".."n-1", each a topic of its own (part_get: borrowed, as
	 * topic_get's) that fs/ shows exactly as a topic at the root. The
	 * topic itself then holds no records (bounds empty, stat_record and
	 * read -ENOENT, read_stream nothing) and its append puts each record
	 * in the partition its key chooses (the same key always the same
	 * partition; records without a key: one partition per append call,
	 * which the backend picks); append_at gives -EINVAL, seek_time,
	 * get_key and list_keys -ENOTSUP, topic_remove removes every
	 * partition. */
	int (*parts)(sbfs_topic *t, uint32_t *n);
	int (*part_get)(sbfs_topic *t, uint32_t i, sbfs_topic **out); /* -ENOENT */

	/* ---- appending ----
	 * Returns once the records are as durable as the backend promises
	 * (the store: its sync setting; Kafka: acknowledged by the cluster). */
	/* n >= 1 records, all or nothing; -EFBIG (a payload over record_max, or
	 * a batch over batch_max), -ENOSPC, -EOVERFLOW (past SBFS_OFFSET_MAX).
	 * *first (may be NULL) gets the first record's offset. */
	int (*append)(sbfs_topic *t, const sbfs_rec *recs, size_t n, uint64_t *first);
	/* Append at offset `at` (= next, or >= next in an empty topic); -EINVAL
	 * otherwise. A backend that cannot choose offsets gives -EINVAL unless
	 * at is its next offset. */
	int (*append_at)(sbfs_topic *t, uint64_t at, const sbfs_rec *recs, size_t n);
	uint32_t (*record_max)(sbfs_topic *t);  /* largest payload */
	size_t (*batch_max)(sbfs_topic *t);     /* largest sum of record_size of one append */
	size_t (*record_size)(sbfs_topic *t, const sbfs_rec *r); /* what r counts against it */

	/* ---- reading ---- */
	/* The extent now (want: SBFS_WANT_*). start <= next and stream_start <=
	 * stream_end always (a racing append or delete only makes it look
	 * smaller). -EIO/-ETIMEDOUT when a remote log cannot tell. */
	int (*bounds)(sbfs_topic *t, unsigned want, sbfs_bounds *out);
	/* The record at off: -ENOENT if there is none (deleted, never given,
	 * compacted away), -EIO if damaged. */
	int (*stat_record)(sbfs_topic *t, uint64_t off, unsigned want, sbfs_recinfo *info);
	/* Payload bytes [from, from + len) of record off; *nread < len only at
	 * its end. */
	int (*read)(sbfs_topic *t, uint64_t off, uint64_t from, void *buf, size_t len,
		    size_t *nread);
	int (*read_key)(sbfs_topic *t, uint64_t off, void *buf, size_t cap, size_t *key_len);
	/* Optional (NULL: no record has headers, and fs/ refuses to set them,
	 * ENOTSUP): fn for each header of record off, in order, until fn
	 * returns nonzero (then that value); a header's bytes are valid during
	 * its call only. -ENOENT as stat_record, -EIO if damaged (nothing of a
	 * damaged record reaches fn). */
	int (*read_headers)(sbfs_topic *t, uint64_t off, sbfs_header_fn fn, void *arg);
	/* Stream bytes from position pos (see THE STREAM MODEL); -ENOENT below
	 * stream_start; *nread 0 at stream_end. A read that reaches damage
	 * returns the good bytes before it (a short read, never 0) and the
	 * next read, which starts at it, -EIO. */
	int (*read_stream)(sbfs_topic *t, uint64_t pos, void *buf, size_t len, size_t *nread);
	/* Optional (NULL: positions move only by retention, and read_stream
	 * serves every reader): a reader's view of the stream, whose positions
	 * stay those of the moment it was taken whatever the log does meanwhile
	 * (a compaction round moves them: SPEC §2, readers never disturbed).
	 * view_current: no such move since it was taken (bounds asked after
	 * view_open give its positions); read_view: read_stream through it. */
	int (*view_open)(sbfs_topic *t, void **view);
	int (*view_current)(sbfs_topic *t, void *view);
	int (*read_view)(sbfs_topic *t, void *view, uint64_t pos, void *buf, size_t len, size_t *nread);
	void (*view_close)(sbfs_topic *t, void *view);
	/* Optional, all four or none (NULL: each read checks what it serves
	 * itself): a reader's memo, one per open record file or .log reader
	 * (the store: sb_read_memo, sb_store.h), so that a large record read
	 * a slice at a time is checked whole once, not at every slice (SPEC
	 * §4: reading a record of N bytes costs O(N)). read_m is read, and
	 * read_stream_m read_view (view NULL: read_stream), through memo,
	 * which only one open file uses (from any thread). */
	int (*memo_new)(void **memo);
	void (*memo_free)(void *memo);
	int (*read_m)(sbfs_topic *t, void *memo, uint64_t off, uint64_t from, void *buf, size_t len,
		      size_t *nread);
	int (*read_stream_m)(sbfs_topic *t, void *memo, void *view, uint64_t pos, void *buf, size_t len,
			     size_t *nread);
	/* Optional (NULL: every offset in [start, next) holds a record): the
	 * first offset >= off that holds one, or -ENOENT if none below next.
	 * ls lists only those. */
	int (*next_present)(sbfs_topic *t, uint64_t off, uint64_t *found);
	/* Optional (NULL: no): may append_at take an offset past next (the
	 * offsets between left a gap: a compacted topic restored from a
	 * backup, SPEC §3)? */
	int (*gaps_ok)(sbfs_topic *t);
	/* Optional (NULL: no): may records go from the middle of the log
	 * (compaction), not only from its start? The kernel then caches no
	 * record name of the topic: a record gone is ENOENT at once. */
	int (*compacts)(sbfs_topic *t);

	/* Optional (NULL: TOPIC/.since/ is ENOTSUP): seek by time (SPEC §2):
	 * the first offset whose record time, taken as the running maximum of
	 * the times before it, is >= ts (ns since the epoch); next when none
	 * (yet). A search, not a scan (the store: its time index; Kafka:
	 * ListOffsets by timestamp, which answers the same, or its
	 * own index of the records it has read). */
	int (*seek_time)(sbfs_topic *t, int64_t ts, uint64_t *off);

	/* ---- a topic as a table (SPEC §2 "Keys": TOPIC/.keys/) ----
	 * Optional, both or neither (NULL: TOPIC/.keys/ is ENOTSUP). Keys are
	 * 1..65535 bytes, anything. */
	/* The latest record of key: *info (offset, timestamp_ns, value_len,
	 * key_len; stream_pos and flags may be 0), its record checked.
	 * -ENOENT when the key has no record, its latest record is a
	 * tombstone, or that record was deleted; -EIO if damaged. */
	int (*get_key)(sbfs_topic *t, const void *key, size_t key_len, sbfs_recinfo *info);
	/* fn for each key whose latest record is not a tombstone, from the
	 * first key >= from (from_len 0: all), in byte order of the key (a
	 * prefix first), with that record as get_key gives it, until fn
	 * returns nonzero (then that value). fn must not call the backend; a
	 * key's bytes are valid during its call only. Cheap to start at any
	 * key (a listing resumes with one call per reply). */
	int (*list_keys)(sbfs_topic *t, const void *from, size_t from_len,
			 int (*fn)(void *arg, const void *key, size_t key_len, const sbfs_recinfo *info),
			 void *arg);

	/* ---- deleting, durability, housekeeping ---- */
	/* Records before off go (rm of the oldest record; Kafka: DeleteRecords). */
	int (*delete_before)(sbfs_topic *t, uint64_t off);
	int (*sync)(sbfs_topic *t);  /* fsync: what was appended is durable */
	/* Periodic (about every second, from the notifier): retention and any
	 * other housekeeping (a remote backend: refresh its metadata). */
	int (*retain)(sbfs_backend *b, int64_t now_ns);
	int (*statfs)(sbfs_backend *b, struct statvfs *st);
	/* Make everything durable and free the backend (also after a failed
	 * open of the mount: nothing was served). */
	int (*close)(sbfs_backend *b);
} sbfs_backend_ops;

/* Every backend starts with this. */
struct sbfs_backend {
	const sbfs_backend_ops *ops;
	const char *source;     /* what the mount table shows as its source (fsname) */
};

/*
 * Where a setting comes from, for messages: a line of a file, or -o.
 * Messages name them as sbfs_config_errf (config.h) does.
 */
typedef struct sbfs_src {
	const char *file;       /* NULL: an -o option */
	const char *dir;        /* relative paths are relative to this */
	int line;
} sbfs_src;

/*
 * A kind of backend: [mount] backend = NAME. Its settings are an opaque
 * object made before the first setting and kept in sbfs_config.bsettings.
 */
typedef struct sbfs_backend_class {
	const char *name;
	const char *usage;      /* its lines of --help (its sections and keys) */
	int (*settings_new)(void **out);  /* the defaults; 0 or -ENOMEM */
	void (*settings_free)(void *s);
	/*
	 * One setting: `section` is the mount.ini section ("log",
	 * "topic:orders", "kafka", ...), or NULL for an -o key=value that is
	 * not a [mount] key. 0; or 1 if the backend has no such section or key
	 * (config.c then says "unknown key"/"unknown section"); or -1 after
	 * writing the message (sbfs_config_errf) to *err.
	 */
	int (*setting)(void *s, const char *section, const char *key, const char *value,
		       const sbfs_src *src, char **err);
	/* After everything was read: do the settings go together? 0, or -1
	 * with the message (naming file, line and key) in *err. */
	int (*check)(void *s, const struct sbfs_config *cfg, char **err);
	/*
	 * Open the data the mount serves (the store: cfg->log_dir, which must
	 * exist unless cfg->create; Kafka: connect). On failure it has logged
	 * (sbfs_log) one message saying why, naming what holds a store that is
	 * in use, and returns -errno (-EBUSY for a store in use).
	 */
	int (*open)(const struct sbfs_config *cfg, sbfs_backend **out);
	/*
	 * Before open, once the mountpoint is known to be a directory and
	 * before it is checked to be empty: checks that open and change
	 * nothing (the store: the mountpoint and LOG_DIR apart, LOG_DIR not
	 * served by a live mount). 0, or -errno after logging why. May be NULL.
	 */
	int (*check_paths)(const struct sbfs_config *cfg);
} sbfs_backend_class;

/* The i-th class this daemon was built with (the default first), or NULL
 * past the last. */
const sbfs_backend_class *sbfs_backend_at(size_t i);
/* The class named `name`, or NULL with *why ("not built yet", "unknown"). */
const sbfs_backend_class *sbfs_backend_find(const char *name, const char **why);
/* The class of backend = store (the default). */
extern const sbfs_backend_class sbfs_backend_store;
/* The class of backend = kafka (SPEC §8: kafka_class.c, backend_kafka.c). */
extern const sbfs_backend_class sbfs_backend_kafka;

/* The daemon's messages (stderr, or syslog once detached): errors.c. */
void sbfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
