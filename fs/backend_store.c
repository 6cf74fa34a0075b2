/*
 * backend_store.c - the backend interface over the StreamBus storage engine
 * (store/sb_store.h, its only public header).
 *
 * The store's codes stop here: every call returns what E() makes of them,
 * a negative errno, and what an errno cannot say goes to the daemon's log
 * (the store's own report of damage names the topic, the offset and the
 * segment file; E() adds the code's name).
 */
#include "backend_store.h"
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct store_backend {
	sbfs_backend base;
	sb_store *store;
	const char *log_dir;    /* the config's (outlives the backend) */
} store_backend;

static sb_store *S(sbfs_backend *b) { return ((store_backend *)b)->store; }
static sb_log *L(sbfs_topic *t) { return (sb_log *)t; }

/* A batch goes to the store as it is: sbfs_rec is laid out as sb_record_in. */
#define SAME_FIELD(f) \
	_Static_assert(offsetof(sbfs_rec, f) == offsetof(sb_record_in, f) && \
		       sizeof(((sbfs_rec *)0)->f) == sizeof(((sb_record_in *)0)->f), \
		       "sbfs_rec." #f " is not laid out as sb_record_in." #f)
SAME_FIELD(key);
SAME_FIELD(key_len);
SAME_FIELD(value);
SAME_FIELD(value_len);
SAME_FIELD(flags);
SAME_FIELD(timestamp_ns);
SAME_FIELD(headers);
SAME_FIELD(n_headers);
_Static_assert(sizeof(sbfs_rec) == sizeof(sb_record_in), "sbfs_rec is not sb_record_in");
#define SAME_HFIELD(f) \
	_Static_assert(offsetof(sbfs_header, f) == offsetof(sb_header, f) && \
		       sizeof(((sbfs_header *)0)->f) == sizeof(((sb_header *)0)->f), \
		       "sbfs_header." #f " is not laid out as sb_header." #f)
SAME_HFIELD(name);
SAME_HFIELD(name_len);
SAME_HFIELD(value);
SAME_HFIELD(value_len);
_Static_assert(sizeof(sbfs_header) == sizeof(sb_header), "sbfs_header is not sb_header");
_Static_assert(SBFS_REC_TOMBSTONE == 0x0001u, "SBFS_REC_TOMBSTONE is the store's tombstone flag");

static const sb_record_in *R(const sbfs_rec *r) { return (const sb_record_in *)(const void *)r; }

/* The store's code as an errno: its own codes are EIO (damage, an unknown
 * format) or EBUSY (held by another process), and are logged, as is EIO. */
static int E(int rc)
{
	if (rc >= 0)
		return rc;
	switch (rc) {
	case SB_ECORRUPT:
	case SB_EVERSION:
		sbfs_log("store error: %s", sb_strerror(rc));
		return -EIO;
	case SB_ELOCKED:
		return -EBUSY;
	case -EIO:
		sbfs_log("I/O error: %s", sb_strerror(rc));
		return rc;
	}
	return rc <= -4000 ? -EIO : rc;
}

static int st_create(sbfs_backend *b, const char *name) { return E(sb_store_create(S(b), name)); }
static int st_remove(sbfs_backend *b, const char *name) { return E(sb_store_remove(S(b), name)); }

static int st_get(sbfs_backend *b, const char *name, sbfs_topic **out)
{
	sb_log *l;
	int rc = sb_store_get(S(b), name, &l);
	if (rc == 0)
		*out = (sbfs_topic *)l;
	/* a refused topic: said once, with where and how to repair, at the
	 * start (topic_list_refused), not at every lookup and listing */
	return rc == SB_ECORRUPT || rc == SB_EVERSION ? -EIO : E(rc);
}

typedef struct list_ctx {
	sbfs_topic_fn fn;
	sbfs_refused_fn rfn;
	void *arg;
	const char *log_dir;
} list_ctx;

static int list_cb(void *arg, const char *name, sb_log *log)
{
	list_ctx *x = arg;
	return x->fn(x->arg, name, (sbfs_topic *)log);
}

static int st_list(sbfs_backend *b, sbfs_topic_fn fn, void *arg)
{
	list_ctx x = { .fn = fn, .arg = arg };
	return E(sb_store_list(S(b), list_cb, &x));
}

/* A refused topic: what is wrong, where, and the command that repairs it. */
static int refused_cb(void *arg, const char *name, int err, const char *msg)
{
	list_ctx *x = arg;
	char line[1024];
	snprintf(line, sizeof line, "%s: %s; it gives EIO until repaired with: "
		 "streambus recover --cut %s %s", sb_strerror(err), msg, x->log_dir, name);
	return x->rfn(x->arg, name, err <= -4000 ? -EIO : err, line);
}

static int st_list_refused(sbfs_backend *b, sbfs_refused_fn fn, void *arg)
{
	list_ctx x = { .rfn = fn, .arg = arg, .log_dir = ((store_backend *)b)->log_dir };
	return E(sb_store_list_refused(S(b), refused_cb, &x));
}

static int st_name_valid(const char *name) { return sb_topic_name_valid(name); }

static int st_append(sbfs_topic *t, const sbfs_rec *recs, size_t n, uint64_t *first)
{
	return E(sb_log_append(L(t), R(recs), n, first));
}

static int st_append_at(sbfs_topic *t, uint64_t at, const sbfs_rec *recs, size_t n)
{
	return E(sb_log_append_at(L(t), at, R(recs), n));
}

static uint32_t st_record_max(sbfs_topic *t) { return sb_log_get_config(L(t))->max_record_bytes; }
static size_t st_batch_max(sbfs_topic *t) { return sb_log_batch_max(L(t)); }

static size_t st_record_size(sbfs_topic *t, const sbfs_rec *r)
{
	(void)t;
	return sb_record_size(R(r));
}

static int st_bounds(sbfs_topic *t, unsigned want, sbfs_bounds *b)
{
	sb_log *l = L(t);
	(void)want; /* stream positions cost nothing here */
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
	return 0;
}

static int st_gaps_ok(sbfs_topic *t)
{
	return (sb_log_get_config(L(t))->cleanup & SB_CLEANUP_COMPACT) != 0;
}

static int st_next_present(sbfs_topic *t, uint64_t off, uint64_t *found)
{
	return E(sb_log_next_present(L(t), off, found));
}

static int st_stat(sbfs_topic *t, uint64_t off, unsigned want, sbfs_recinfo *info)
{
	sb_record_info ri;
	(void)want;
	int rc = sb_log_stat(L(t), off, &ri);
	if (rc == 0)
		*info = (sbfs_recinfo){ .offset = ri.offset, .timestamp_ns = ri.timestamp_ns,
					.value_len = ri.value_len, .key_len = ri.key_len,
					.flags = ri.flags, .stream_pos = ri.stream_pos };
	return E(rc);
}

static int st_read(sbfs_topic *t, uint64_t off, uint64_t from, void *buf, size_t len,
		   size_t *nread)
{
	return E(sb_log_read(L(t), off, from, buf, len, nread, NULL));
}

/* The whole header block is read (and its record checked) before fn hears
 * of any header. */
static int st_read_headers(sbfs_topic *t, uint64_t off, sbfs_header_fn fn, void *arg)
{
	uint8_t small[512], *buf = small;
	size_t len, pos = 0;
	sb_header h;
	int rc = sb_log_read_headers(L(t), off, small, sizeof small, &len), r;

	if (rc == 0 && len > sizeof small) {
		if (!(buf = malloc(len)))
			return -ENOMEM;
		rc = sb_log_read_headers(L(t), off, buf, len, &len);
	}
	while (rc == 0 && (r = sb_headers_next(buf, len, &pos, &h)) != 0)
		rc = r < 0 ? r : fn(arg, (const sbfs_header *)(const void *)&h);
	if (buf != small)
		free(buf);
	return E(rc);
}

static int st_read_key(sbfs_topic *t, uint64_t off, void *buf, size_t cap, size_t *key_len)
{
	return E(sb_log_read_key(L(t), off, buf, cap, key_len));
}

static int st_read_stream(sbfs_topic *t, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	return E(sb_log_read_stream(L(t), pos, buf, len, nread));
}

static int st_view_open(sbfs_topic *t, void **view)
{
	sb_log_view *v;
	int rc = sb_log_view_open(L(t), &v);

	if (!rc)
		*view = v;
	return E(rc);
}

static int st_view_current(sbfs_topic *t, void *view)
{
	return sb_log_view_current(L(t), view);
}

static int st_read_view(sbfs_topic *t, void *view, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	return E(sb_log_view_read(L(t), view, pos, buf, len, nread));
}

static void st_view_close(sbfs_topic *t, void *view)
{
	(void)t;
	sb_log_view_close(view);
}

static int st_memo_new(void **memo)
{
	sb_read_memo *m;
	int rc = sb_read_memo_new(&m);

	if (!rc)
		*memo = m;
	return E(rc);
}

static void st_memo_free(void *memo) { sb_read_memo_free(memo); }

static int st_read_m(sbfs_topic *t, void *memo, uint64_t off, uint64_t from, void *buf, size_t len,
		     size_t *nread)
{
	return E(sb_log_read_m(L(t), memo, off, from, buf, len, nread));
}

static int st_read_stream_m(sbfs_topic *t, void *memo, void *view, uint64_t pos, void *buf, size_t len,
			    size_t *nread)
{
	return E(view ? sb_log_view_read_m(L(t), view, memo, pos, buf, len, nread)
		      : sb_log_read_stream_m(L(t), memo, pos, buf, len, nread));
}

static int st_seek_time(sbfs_topic *t, int64_t ts, uint64_t *off)
{
	return E(sb_log_seek_time(L(t), ts, off));
}

static int st_get_key(sbfs_topic *t, const void *key, size_t key_len, sbfs_recinfo *info)
{
	sb_record_info ri;
	size_t n;
	char none;
	/* cap 0: nothing copied, the record (and that it carries key) checked */
	int rc = sb_log_get_key(L(t), key, key_len, &none, 0, &n, &ri);
	if (rc == 0)
		*info = (sbfs_recinfo){ .offset = ri.offset, .timestamp_ns = ri.timestamp_ns,
					.value_len = ri.value_len, .key_len = ri.key_len,
					.flags = ri.flags, .stream_pos = ri.stream_pos };
	return E(rc);
}

typedef struct keys_ctx {
	int (*fn)(void *arg, const void *key, size_t key_len, const sbfs_recinfo *info);
	void *arg;
} keys_ctx;

static int keys_cb(void *arg, const void *key, size_t key_len, const sb_record_info *ri)
{
	keys_ctx *c = arg;
	sbfs_recinfo info = { .offset = ri->offset, .timestamp_ns = ri->timestamp_ns,
			      .value_len = ri->value_len, .key_len = ri->key_len, .flags = ri->flags };
	return c->fn(c->arg, key, key_len, &info);
}

static int st_list_keys(sbfs_topic *t, const void *from, size_t from_len,
			int (*fn)(void *arg, const void *key, size_t key_len, const sbfs_recinfo *info),
			void *arg)
{
	keys_ctx c = { fn, arg };
	int rc = sb_log_list_keys(L(t), from, from_len, keys_cb, &c);
	return rc > 0 ? rc : E(rc);
}

static int st_delete_before(sbfs_topic *t, uint64_t off) { return E(sb_log_delete_before(L(t), off)); }
static int st_sync(sbfs_topic *t) { return E(sb_log_sync(L(t))); }
static int st_retain(sbfs_backend *b, int64_t now_ns) { return E(sb_store_retain(S(b), now_ns)); }

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
	int rc = E(sb_store_close(S(b)));
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
	.record_size = st_record_size,
	.bounds = st_bounds,
	.stat_record = st_stat,
	.read = st_read,
	.read_key = st_read_key,
	.read_headers = st_read_headers,
	.read_stream = st_read_stream,
	.view_open = st_view_open, /* compaction moves positions */
	.view_current = st_view_current,
	.read_view = st_read_view,
	.view_close = st_view_close,
	.memo_new = st_memo_new, /* a large record is checked once per open file */
	.memo_free = st_memo_free,
	.read_m = st_read_m,
	.read_stream_m = st_read_stream_m,
	.next_present = st_next_present, /* a compacted topic has gaps */
	.gaps_ok = st_gaps_ok,
	.compacts = st_gaps_ok, /* both: cleanup has compact */
	.seek_time = st_seek_time,
	.get_key = st_get_key,
	.list_keys = st_list_keys,
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

/* Before anything is opened: the mountpoint and LOG_DIR apart, and LOG_DIR
 * not served by a live mount (said at once, naming it: the mountpoint of
 * such a mount is not empty). A read-only mount reads beside one. */
static int st_check_paths(const sbfs_config *cfg)
{
	int rc = sbfs_paths_apart(cfg);
	if (rc || cfg->read_only)
		return rc;
	sb_store_holder *h = malloc(sizeof *h);
	if (h && sb_store_holder_get(cfg->log_dir, h) == 0 && h->held && h->mounted) {
		log_locked(cfg);
		rc = -EBUSY;
	}
	free(h);
	return rc;
}

/* What the store reports goes to the daemon's log: what its open recovered,
 * and damage a read met (topic, offset, segment file), which the read
 * answers with SB_ECORRUPT (EIO). */
static void st_report(void *arg, const char *topic, const char *msg)
{
	(void)arg;
	sbfs_log("%s: %s", topic ? topic : "(store)", msg);
}

/* LOG_DIR (made if `create`; a missing one refused, said by paths.c), the
 * store's lock (waiting for a daemon that is closing), its topics. */
static int st_open(const sbfs_config *cfg, sbfs_backend **out)
{
	int rc = sbfs_paths_log_dir(cfg);
	if (rc)
		return rc;
	store_backend *b = calloc(1, sizeof *b);
	if (!b) {
		sbfs_log("out of memory");
		return -ENOMEM;
	}
	sb_store_options o;
	sb_store_options_default(&o);
	o.defaults = *sbfs_store_log_config(cfg->bsettings);
	o.topic_config = sbfs_store_topic_config;
	o.topic_config_arg = cfg->bsettings;
	o.read_only = cfg->read_only;
	/* a record past this offset would have no file name (inode numbers) */
	o.max_offset = SBFS_OFFSET_MAX;
	/* the kernel's spelling of the mountpoint, as /proc/self/mountinfo has it */
	char *mp = realpath(cfg->mountpoint, NULL);
	o.mountpoint = mp ? mp : cfg->mountpoint;
	o.lock_wait_ms = SB_LOCK_WAIT_DEFAULT_MS;
	o.lock_waiting = on_lock_wait;
	o.lock_waiting_arg = (void *)cfg;
	o.report = st_report;
	rc = sb_store_open(cfg->log_dir, &o, &b->store);
	free(mp);
	if (rc) {
		if (rc == SB_ELOCKED)
			log_locked(cfg);
		else
			sbfs_log("cannot open the log directory %s: %s%s", cfg->log_dir, sb_strerror(rc),
				 rc == -EMFILE ? " (every segment file of every topic stays open, a descriptor "
						 "each: raise the limit of open files above their number, e.g. "
						 "ulimit -n or LimitNOFILE=)" : "");
		free(b);
		return rc <= -4000 ? (rc == SB_ELOCKED ? -EBUSY : -EIO) : rc;
	}
	b->base.ops = &store_ops;
	b->base.source = cfg->log_dir;
	b->log_dir = cfg->log_dir;
	*out = &b->base;
	return 0;
}

const sbfs_backend_class sbfs_backend_store = {
	.name = "store",
	.usage = sbfs_store_usage,
	.settings_new = sbfs_store_settings_new,
	.settings_free = sbfs_store_settings_free,
	.setting = sbfs_store_setting,
	.check = sbfs_store_settings_check,
	.open = st_open,
	.check_paths = st_check_paths,
};
