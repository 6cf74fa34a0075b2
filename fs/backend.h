/*
 * backend.h - the one interface the filesystem talks to for its data.
 *
 * The filesystem never calls the storage engine directly: it goes through
 * this vtable, so that another log (a Kafka cluster, say) can sit behind the
 * same tree. backend_store.c implements it over sb_store.
 *
 * Every call returns 0 or a negative errno (or a backend code such as the
 * store's SB_E*, which errors.c turns into an errno). Out-parameters are
 * left untouched on failure. All calls are thread-safe.
 */
#ifndef SBFS_BACKEND_H
#define SBFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

struct sbfs_config;

typedef struct sbfs_backend sbfs_backend;
/* A topic handle: borrowed, valid until the backend is closed, even after
 * the topic is removed (then calls on it fail with -ENOENT). */
typedef struct sbfs_topic sbfs_topic;

typedef struct sbfs_rec {
	const void *key;
	uint32_t key_len;       /* 0: no key */
	const void *value;
	uint32_t value_len;
	int64_t timestamp_ns;   /* 0: now */
} sbfs_rec;

typedef struct sbfs_recinfo {
	uint64_t offset;
	int64_t timestamp_ns;
	uint32_t value_len;
	uint32_t key_len;
	uint64_t stream_pos;    /* where its payload starts in the stream */
} sbfs_recinfo;

/* A topic's extent: offsets [start, next), stream bytes [stream_start, stream_end). */
typedef struct sbfs_bounds {
	uint64_t start, next;
	uint64_t stream_start, stream_end;
	int64_t mtime_ns;       /* last append */
} sbfs_bounds;

typedef int (*sbfs_topic_fn)(void *arg, const char *name, sbfs_topic *t);
/* A topic the backend refused to open (damaged): its error and one line
 * saying where the damage is (file and byte). */
typedef int (*sbfs_refused_fn)(void *arg, const char *name, int err, const char *msg);

typedef struct sbfs_backend_ops {
	int (*topic_create)(sbfs_backend *b, const char *name);  /* -EINVAL, -EEXIST */
	int (*topic_remove)(sbfs_backend *b, const char *name);  /* -ENOTEMPTY, -ENOENT */
	int (*topic_get)(sbfs_backend *b, const char *name, sbfs_topic **out);
	/* fn for each topic in name order; fn must not call the backend. */
	int (*topic_list)(sbfs_backend *b, sbfs_topic_fn fn, void *arg);
	/* fn for each topic refused at open, in name order. Such a topic is not
	 * in topic_list; topic_get and topic_remove give its error (an EIO
	 * kind), topic_create -EEXIST. fn must not call the backend. */
	int (*topic_list_refused)(sbfs_backend *b, sbfs_refused_fn fn, void *arg);
	int (*topic_name_valid)(const char *name);

	/* Append n records, all or nothing; -EFBIG, -ENOSPC. */
	int (*append)(sbfs_topic *t, const sbfs_rec *recs, size_t n, uint64_t *first);
	/* Append at offset `at` (= next, or >= next in an empty topic); -EINVAL. */
	int (*append_at)(sbfs_topic *t, uint64_t at, const sbfs_rec *recs, size_t n);
	uint32_t (*record_max)(sbfs_topic *t);  /* largest payload */
	size_t (*batch_max)(sbfs_topic *t);     /* largest batch (overhead included) */
	size_t (*record_overhead)(sbfs_topic *t); /* per-record bytes counted by batch_max */

	void (*bounds)(sbfs_topic *t, sbfs_bounds *out);
	int (*stat_record)(sbfs_topic *t, uint64_t off, sbfs_recinfo *info); /* -ENOENT */
	int (*read)(sbfs_topic *t, uint64_t off, uint64_t from, void *buf, size_t len,
		    size_t *nread);
	int (*read_key)(sbfs_topic *t, uint64_t off, void *buf, size_t cap, size_t *key_len);
	/* Stream bytes from absolute position pos; -ENOENT below stream_start. */
	int (*read_stream)(sbfs_topic *t, uint64_t pos, void *buf, size_t len, size_t *nread);

	int (*delete_before)(sbfs_topic *t, uint64_t off);
	int (*sync)(sbfs_topic *t);
	int (*retain)(sbfs_backend *b, int64_t now_ns);
	int (*statfs)(sbfs_backend *b, struct statvfs *st);
	/* Make everything durable and free the backend. */
	int (*close)(sbfs_backend *b);
} sbfs_backend_ops;

/* Every backend starts with this. */
struct sbfs_backend {
	const sbfs_backend_ops *ops;
};

/* The sb_store backend over cfg->log_dir with cfg's log settings. A
 * LOG_DIR held by a process that is not a live mount (the daemon of a mount
 * just unmounted, still closing; a tool) is waited for, saying so, up to
 * SB_LOCK_WAIT_DEFAULT_MS; SB_ELOCKED is logged naming the holder. */
int sbfs_backend_store_open(const struct sbfs_config *cfg, sbfs_backend **out);

#endif
