/*
 * backend_store.c - the backend interface over the StreamBus storage engine.
 */
#include "backend.h"
#include "config.h"
#include "fs.h"
#include "sb_store.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct store_backend {
	sbfs_backend base;
	sb_store *store;
} store_backend;

static sb_store *S(sbfs_backend *b) { return ((store_backend *)b)->store; }
static sb_log *L(sbfs_topic *t) { return (sb_log *)t; }

static int st_create(sbfs_backend *b, const char *name) { return sb_store_create(S(b), name); }
static int st_remove(sbfs_backend *b, const char *name) { return sb_store_remove(S(b), name); }

static int st_get(sbfs_backend *b, const char *name, sbfs_topic **out)
{
	sb_log *l;
	int rc = sb_store_get(S(b), name, &l);
	if (rc == 0)
		*out = (sbfs_topic *)l;
	return rc;
}

typedef struct list_ctx {
	sbfs_topic_fn fn;
	void *arg;
} list_ctx;

static int list_cb(void *arg, const char *name, sb_log *log)
{
	list_ctx *x = arg;
	return x->fn(x->arg, name, (sbfs_topic *)log);
}

static int st_list(sbfs_backend *b, sbfs_topic_fn fn, void *arg)
{
	list_ctx x = { fn, arg };
	return sb_store_list(S(b), list_cb, &x);
}

static int st_list_refused(sbfs_backend *b, sbfs_refused_fn fn, void *arg)
{
	return sb_store_list_refused(S(b), fn, arg);
}

static int st_name_valid(const char *name) { return sb_topic_name_valid(name); }

/* Small batches on the stack, large ones on the heap. */
static int to_recs(const sbfs_rec *in, size_t n, sb_record_in *stackbuf, size_t cap,
		   sb_record_in **out)
{
	if (n == 0)
		return -EINVAL; /* (also tells the compiler the buffer gets filled) */
	sb_record_in *r = n <= cap ? stackbuf : calloc(n, sizeof *r);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r[i] = (sb_record_in){ .key = in[i].key, .key_len = in[i].key_len,
				       .value = in[i].value, .value_len = in[i].value_len,
				       .timestamp_ns = in[i].timestamp_ns };
	}
	*out = r;
	return 0;
}

static int st_append(sbfs_topic *t, const sbfs_rec *recs, size_t n, uint64_t *first)
{
	sb_record_in sbuf[64], *r;
	int rc = to_recs(recs, n, sbuf, 64, &r);
	if (rc)
		return rc;
	rc = sb_log_append(L(t), r, n, first);
	if (r != sbuf)
		free(r);
	return rc;
}

static int st_append_at(sbfs_topic *t, uint64_t at, const sbfs_rec *recs, size_t n)
{
	sb_record_in sbuf[64], *r;
	int rc = to_recs(recs, n, sbuf, 64, &r);
	if (rc)
		return rc;
	rc = sb_log_append_at(L(t), at, r, n);
	if (r != sbuf)
		free(r);
	return rc;
}

static uint32_t st_record_max(sbfs_topic *t) { return sb_log_get_config(L(t))->max_record_bytes; }
static size_t st_batch_max(sbfs_topic *t) { return sb_log_batch_max(L(t)); }
static size_t st_overhead(sbfs_topic *t)
{
	sb_record_in empty = {0};

	(void)t;
	return sb_record_size(&empty);
}

static void st_bounds(sbfs_topic *t, sbfs_bounds *b)
{
	sb_log *l = L(t);
	/* start before next, stream_start before stream_end: a racing append or
	 * delete can only make the range look smaller, never inverted */
	b->start = sb_log_start(l);
	b->stream_start = sb_log_stream_start(l);
	b->next = sb_log_next(l);
	b->stream_end = sb_log_stream_end(l);
	if (b->next < b->start)
		b->next = b->start;
	if (b->stream_end < b->stream_start)
		b->stream_end = b->stream_start;
	b->mtime_ns = sb_log_mtime_ns(l);
}

static int st_stat(sbfs_topic *t, uint64_t off, sbfs_recinfo *info)
{
	sb_record_info ri;
	int rc = sb_log_stat(L(t), off, &ri);
	if (rc == 0)
		*info = (sbfs_recinfo){ .offset = ri.offset, .timestamp_ns = ri.timestamp_ns,
					.value_len = ri.value_len, .key_len = ri.key_len,
					.stream_pos = ri.stream_pos };
	return rc;
}

static int st_read(sbfs_topic *t, uint64_t off, uint64_t from, void *buf, size_t len,
		   size_t *nread)
{
	return sb_log_read(L(t), off, from, buf, len, nread, NULL);
}

static int st_read_key(sbfs_topic *t, uint64_t off, void *buf, size_t cap, size_t *key_len)
{
	return sb_log_read_key(L(t), off, buf, cap, key_len);
}

static int st_read_stream(sbfs_topic *t, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	return sb_log_read_stream(L(t), pos, buf, len, nread);
}

static int st_delete_before(sbfs_topic *t, uint64_t off) { return sb_log_delete_before(L(t), off); }
static int st_sync(sbfs_topic *t) { return sb_log_sync(L(t)); }
static int st_retain(sbfs_backend *b, int64_t now_ns) { return sb_store_retain(S(b), now_ns); }

static int st_statfs(sbfs_backend *b, struct statvfs *st)
{
	struct statvfs v;
	if (statvfs(sb_store_dir(S(b)), &v) != 0)
		return -errno;
	*st = v;
	return 0;
}

static int st_close(sbfs_backend *b)
{
	int rc = sb_store_close(S(b));
	free(b);
	return rc;
}

static const sbfs_backend_ops store_ops = {
	.topic_create = st_create,
	.topic_remove = st_remove,
	.topic_get = st_get,
	.topic_list = st_list,
	.topic_list_refused = st_list_refused,
	.topic_name_valid = st_name_valid,
	.append = st_append,
	.append_at = st_append_at,
	.record_max = st_record_max,
	.batch_max = st_batch_max,
	.record_overhead = st_overhead,
	.bounds = st_bounds,
	.stat_record = st_stat,
	.read = st_read,
	.read_key = st_read_key,
	.read_stream = st_read_stream,
	.delete_before = st_delete_before,
	.sync = st_sync,
	.retain = st_retain,
	.statfs = st_statfs,
	.close = st_close,
};

/* The previous daemon (just unmounted) or a tool still holds LOG_DIR. */
static void on_lock_wait(void *arg, const sb_store_holder *h)
{
	const sbfs_config *cfg = arg;
	if (h->pid > 0)
		sbfs_log("waiting (up to %u s) for process %ld to release %s ...",
			 SB_LOCK_WAIT_DEFAULT_MS / 1000, h->pid, cfg->log_dir);
	else
		sbfs_log("waiting (up to %u s) for another process to release %s ...",
			 SB_LOCK_WAIT_DEFAULT_MS / 1000, cfg->log_dir);
}

/* Say who holds LOG_DIR (after SB_ELOCKED). */
static void log_locked(const sbfs_config *cfg)
{
	sb_store_holder *h = malloc(sizeof *h);
	if (h && sb_store_holder_get(cfg->log_dir, h) == 0 && h->pid > 0) {
		if (h->mounted)
			sbfs_log("%s: in use by process %ld, which has it mounted on %s",
				 cfg->log_dir, h->pid, h->mountpoint);
		else
			sbfs_log("%s: still in use by process %ld after %u s (the store is locked)",
				 cfg->log_dir, h->pid, SB_LOCK_WAIT_DEFAULT_MS / 1000);
	} else {
		sbfs_log("%s: in use by another process (the store is locked)", cfg->log_dir);
	}
	free(h);
}

/* What the store reports goes to the daemon's log: what its open recovered,
 * and damage a read met (topic, offset, segment file), which the read
 * answers with SB_ECORRUPT (EIO). */
static void st_report(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	sbfs_log("%s: %s", topic ? topic : "(store)", msg);
}

int sbfs_backend_store_open(const sbfs_config *cfg, sbfs_backend **out)
{
	store_backend *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	sb_store_options o;
	sb_store_options_default(&o);
	o.defaults = cfg->log;
	o.topic_config = sbfs_config_topic;
	o.topic_config_arg = (void *)cfg;
	o.read_only = cfg->read_only;
	/* a record past this offset would have no file name (inode numbers) */
	o.max_offset = SBFS_MAX_OFFSET;
	/* the kernel's spelling of the mountpoint, as /proc/self/mountinfo has it */
	char *mp = realpath(cfg->mountpoint, NULL);
	o.mountpoint = mp ? mp : cfg->mountpoint;
	o.lock_wait_ms = SB_LOCK_WAIT_DEFAULT_MS;
	o.lock_waiting = on_lock_wait;
	o.lock_waiting_arg = (void *)cfg;
	o.report = st_report;
	int rc = sb_store_open(cfg->log_dir, &o, &b->store);
	free(mp);
	if (rc) {
		if (rc == SB_ELOCKED)
			log_locked(cfg);
		free(b);
		return rc;
	}
	b->base.ops = &store_ops;
	*out = &b->base;
	return 0;
}
