/*
 * log_keys.c - a topic as a table: the log's side of its key index
 * (keyidx.h). Keyed appends hand their keys to the index under the append
 * lock (a copy to its unindexed tail: the flusher sorts them); the index is
 * rebuilt when it opens (at the first use of the topic's keys:
 * sb_log_keys_open) by replaying the records it lacks; a lookup by
 * key reads the record the index names and checks that it carries that key
 * (its CRC covers the key), so a stale or damaged index never serves
 * another key's value.
 *
 * A replay that meets a damaged record cannot know its key: that record
 * may be any key's latest (a newer value, a tombstone, a new key). Rather
 * than answer from what it read around it (an older value as the latest,
 * or no such key), the topic's lookups and listings by key fail with
 * SB_ECORRUPT (EIO) until the log is repaired (`streambus recover --cut`);
 * its records are served as before. The index is not used (only to remove
 * its tables with the topic), and writes no table past the damage, so
 * every open meets the damage again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "keyidx.h"
#include "log.h"
#include "log_impl.h"

#define KEY_MEMTABLE_DEFAULT (4u << 20)

static sb_mt_val val_of(uint64_t off, int64_t ts, uint32_t size, uint16_t flags, uint64_t pos)
{
	return (sb_mt_val){.offset = off, .ts = ts, .size = size,
			   .flags = (flags & SB_REC_TOMBSTONE) ? SB_MT_TOMBSTONE : 0, .pos = sb_log_pos_hint(pos)};
}

typedef struct replay_ctx {
	sb_kx *x;
	uint64_t next; /* the offset after the last record replayed */
} replay_ctx;

/* Put one keyed record of the replay (the replay is the indexer at the
 * index's open: the index is not shared yet). */
static int replay_one(void *arg, const sb_rec_hdr *h, const uint8_t *key, uint64_t pos)
{
	replay_ctx *c = arg;
	int rc;

	c->next = h->offset + 1;
	if (h->key_len) {
		sb_mt_val v = val_of(h->offset, h->timestamp_ns, h->value_len, h->flags, pos);
		if ((rc = sb_kx_put(c->x, key, h->key_len, &v)))
			return rc;
	}
	return sb_kx_note_end(c->x, h->offset + 1, h->size, 0, 0);
}

/* The records of a compressed segment, [from, end), record by record
 * through the readers (they take seg_lock: call without it), to fn as
 * sb_segment_walk gives them (no position: a compressed segment has
 * none). Records that cannot be read are skipped, except that with
 * `strict` damage (SB_ECORRUPT) ends the walk with it. */
static int walk_z(sb_log *l, uint64_t from, uint64_t end, int strict, sb_seg_walk_fn fn, void *arg)
{
	for (uint64_t off = from; off < end; off++) {
		sb_record_info info;
		uint8_t kb[256], *k = kb;
		size_t kl = 0;
		int r = sb_log_stat(l, off, &info);
		if (!r && info.key_len > sizeof(kb) && !(k = malloc(info.key_len)))
			return -ENOMEM;
		if (!r && info.key_len)
			r = sb_log_read_key(l, off, k, info.key_len, &kl);
		if (!r) {
			sb_rec_hdr h = {.offset = off, .timestamp_ns = info.timestamp_ns, .flags = info.flags,
					.key_len = (uint16_t)kl, .value_len = info.value_len,
					.size = (uint32_t)sb_rec_size((uint32_t)kl, info.value_len)};
			r = fn(arg, &h, k, 0);
		} else if (!strict || r != SB_ECORRUPT) {
			r = 0; /* skipped */
		}
		if (k != kb)
			free(k);
		if (r)
			return r;
	}
	return 0;
}

/* The replay met damage at offset `at` of segment file `path`: no answer
 * by key (sb_log_keys_open's comment at the top). */
static void keys_damaged(sb_log *l, const char *path, uint64_t at)
{
	/* Said by the daemon; a read-only open (the tools) says SB_ECORRUPT
	 * where it asks by key, and `verify` names the damage. */
	if (l->opt.report && !l->read_only) {
		char msg[4352];
		snprintf(msg, sizeof(msg),
			 "%s: record %" PRIu64 " cannot be read (damaged) and may be any key's latest: "
			 ".keys/ answers EIO until the log is repaired (streambus recover --cut)",
			 path, at);
		l->opt.report(l->opt.report_arg, l->name, msg);
	}
}

/* ---- the indexer's source: the keyed records of the log ------------------ */

typedef struct src_ctx {
	sb_kx_walk_fn fn;
	void *arg;
} src_ctx;

static int src_one(void *arg, const sb_rec_hdr *h, const uint8_t *key, uint64_t pos)
{
	src_ctx *c = arg;

	if (!h->key_len)
		return 0;
	sb_mt_val v = val_of(h->offset, h->timestamp_ns, h->value_len, h->flags, pos);
	return c->fn(c->arg, key, h->key_len, &v);
}

/* The first segment with a record at or past `from` and its range, with
 * seg_lock held; NULL if none. */
static sb_segment *seg_from(sb_log *l, uint64_t from)
{
	size_t lo = 0, hi = l->nsegs;

	while (lo < hi) { /* the first segment whose next is past from */
		size_t mid = lo + (hi - lo) / 2;
		if (sb_segment_next(l->segs[mid]) <= from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->nsegs ? l->segs[lo] : NULL;
}

/* The replay: the records of the log from `from` on into index x (its
 * keyed records put, every record noted), each segment's CRCs checked (a
 * compressed one's record by record through the readers, which take
 * seg_lock). Damage ends it with SB_ECORRUPT, said (keys_damaged).
 * [compress_mu and append_mu, or the open: the segments do not change] */
static int replay(sb_log *l, sb_kx *x, uint64_t from)
{
	replay_ctx c = {x, from};
	int rc = 0;

	for (size_t i = 0; !rc && i < l->nsegs; i++) {
		sb_segment *s = l->segs[i];
		uint64_t at = from > sb_segment_base(s) ? from : sb_segment_base(s);
		if (sb_segment_next(s) <= from)
			continue;
		c.next = at;
		rc = sb_segment_walk(s, at, replay_one, &c);
		if (rc == -ENOTSUP)
			rc = walk_z(l, at, sb_segment_next(s), 1, replay_one, &c);
		if (rc == SB_ECORRUPT)
			keys_damaged(l, sb_segment_path(s), c.next);
	}
	return rc;
}

/*
 * sb_kx_params.walk: the keyed records of [from, to) to fn, in offset
 * order, a segment at a time under seg_lock shared (a compressed one
 * record by record, without it). Called by the indexer holding the
 * index's idx_mu: lock order idx_mu, then seg_lock (keyidx.h). Records
 * the log no longer has (retention) are not there to give; damage ends
 * the walk of its segment, as at the replay.
 */
static int walk_source(void *arg, uint64_t from, uint64_t to, sb_kx_walk_fn fn, void *fnarg)
{
	sb_log *l = arg;
	src_ctx c = {fn, fnarg};
	int rc = 0;

	while (!rc && from < to) {
		pthread_rwlock_rdlock(&l->seg_lock);
		sb_segment *s = seg_from(l, from);
		uint64_t base = s ? sb_segment_base(s) : 0, end = s ? sb_segment_next(s) : 0;
		if (s && from < base)
			from = base; /* below the start, or a gap between segments */
		if (s && from < to)
			rc = sb_segment_walk_range(s, from, to, src_one, &c);
		pthread_rwlock_unlock(&l->seg_lock);
		if (!s || from >= to)
			break;
		if (rc == -ENOTSUP)
			rc = walk_z(l, from, end < to ? end : to, 0, src_one, &c);
		if (rc == SB_ECORRUPT)
			rc = 0;
		from = end;
	}
	return rc;
}

static int open_keys(sb_log *l);

/*
 * The key index is opened (its tables, the replay of the log past them)
 * at the topic's open only for `streambus recover` (full_check: it checks
 * the index against the log). Else at the first use of the topic's keys
 * (sb_log_keys_ready): a keyed append, a lookup or listing by key, the
 * key statistics, a compaction round, the topic's removal. A topic whose
 * keys nobody uses holds no index (thousands of topics: docs/RELIABILITY.md
 * "Daemon memory at scale"); its appends without a key note nothing, and
 * the replay at the first use reads them.
 */
int sb_log_keys_open(sb_log *l)
{
	if (!l->opt.full_check || l->read_only)
		return 0;
	return open_keys(l);
}

/* The index opens with compress_mu and append_mu held: no segment is
 * rewritten, appended, added or dropped meanwhile, so the replay reads
 * them as at the log's open. */
int sb_log_keys_ready(sb_log *l)
{
	int rc = 0;

	if (atomic_load_explicit(&l->keys_open, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&l->compress_mu);
	pthread_mutex_lock(&l->append_mu);
	if (!atomic_load_explicit(&l->keys_open, memory_order_relaxed))
		rc = open_keys(l);
	pthread_mutex_unlock(&l->append_mu);
	pthread_mutex_unlock(&l->compress_mu);
	return rc;
}

/* The index's tables, and the replay of the log past what they cover:
 * into *kx, or into *damaged when the replay met damage (said).
 * [compress_mu and append_mu, or the open] */
static int open_index(sb_log *l, sb_kx **kx, sb_kx **damaged)
{
	uint64_t start = atomic_load(&l->start), next = atomic_load(&l->next);
	sb_kx_params p = {
		.io = l->io,
		.dir = l->dir,
		.topic = l->name,
		.memtable_bytes = l->cfg.key_memtable_bytes ? l->cfg.key_memtable_bytes : KEY_MEMTABLE_DEFAULT,
		.read_only = l->read_only,
		.background = 0, /* no flusher during the replay */
		.report = l->opt.report,
		.report_arg = l->opt.report_arg,
		.walk = walk_source,
		.walk_arg = l,
	};
	sb_kx *x;
	int rc = sb_kx_open(&p, start, next, &x);

	if (rc)
		return rc;
	rc = replay(l, x, sb_kx_replay_from(x));
	if (rc == SB_ECORRUPT) {
		*damaged = x; /* its tables go with the topic (sb_log_keys_remove) */
		return 0;
	}
	if (rc) {
		sb_kx_close(x, 0);
		return rc;
	}
	*kx = x;
	return 0;
}

typedef struct vk_ctx {
	sb_log *l;
	uint64_t start, checked, wrong;
	void (*fn)(void *arg, const char *msg);
	void *arg;
} vk_ctx;

static int verify_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v);

/*
 * The index *x just opened (not yet published: no background work on it)
 * checked against the log: when entries name records the log does not
 * have, or disagree with them (what verify reports), its tables are
 * removed and it is opened again, the whole log replayed (the tables are
 * derived data, keyidx.h). Done for recover (full_check: a table older
 * stores wrote, a tombstone compaction dropped before a table held it),
 * and at the first open of a compacted log's index after an open without
 * a clean close (keys_check): a copy of LOG_DIR taken while mounted may
 * hold a table copied after the segments, or a segment compacted after
 * the tables were copied, whose latest record of a key a round removed
 * for a record past the copy's end. The index then named records the
 * copy's log lacks: `.keys/` listed keys that `cat` said ENOENT for, and
 * verify reported them after every later mount. On failure *x is closed
 * and NULL. [compress_mu and append_mu, or the open]
 */
static int rebuild_if_wrong(sb_log *l, sb_kx **x, sb_kx **damaged)
{
	vk_ctx c = {.l = l, .start = atomic_load(&l->start)};
	int rc = sb_kx_scan(*x, NULL, 0, verify_one, &c);

	if (!rc && !c.wrong)
		return 0;
	if (!rc && l->opt.report) {
		char msg[256];
		snprintf(msg, sizeof(msg),
			 SB_REPORT_KEY_INDEX "%" PRIu64 " of %" PRIu64 " entries did not match the log: its tables removed, "
			 "rebuilt from the log", c.wrong, c.checked);
		l->opt.report(l->opt.report_arg, l->name, msg);
	}
	if (!rc)
		sb_kx_remove_files(*x);
	sb_kx_close(*x, 0);
	*x = NULL;
	return rc ? rc : open_index(l, x, damaged);
}

/* Open the key index (none with no_keys read-only: keys_usable says
 * -ENOENT), checked against the log where it may not match it
 * (rebuild_if_wrong), then publish it: keys_open set. [compress_mu and
 * append_mu, or the open] */
static int open_keys(sb_log *l)
{
	sb_kx *x = NULL, *bad = NULL;
	int rc;

	if (!(l->read_only && l->opt.no_keys) && (rc = open_index(l, &x, &bad)))
		return rc;
	if (x && !l->read_only && (l->opt.full_check || l->keys_check) && (rc = rebuild_if_wrong(l, &x, &bad)))
		return rc;
	if (x) {
		sb_kx_set_background(x, !l->read_only && !l->opt.no_flusher);
		if (l->wake)
			sb_kx_set_wake(x, l->wake, l->wake_arg);
	}
	l->kx = x;
	l->kx_damaged = bad;
	atomic_store_explicit(&l->keys_open, 1, memory_order_release);
	return 0;
}

void sb_log_keys_added(sb_log *l, const sb_record_in *r, size_t n, uint64_t first, size_t bytes)
{
	uint64_t kb = 0, last = 0;

	if (!l->kx)
		return;
	/* The records hold their keys: the indexer reads them from the log
	 * (walk_source). Here only how far the log goes and how much of it is
	 * keyed. */
	for (size_t i = 0; i < n; i++)
		if (r[i].key_len) {
			kb += SB_KX_KEY_BYTES(r[i].key_len);
			last = first + i + 1;
		}
	sb_kx_note_end(l->kx, first + n, bytes, kb, last);
}

int sb_log_keys_close(sb_log *l, int clean)
{
	int rc = sb_kx_close(l->kx, clean);

	sb_kx_close(l->kx_damaged, 0);
	l->kx = l->kx_damaged = NULL;
	atomic_store(&l->keys_open, 0);
	return rc;
}

/* Before the log is shared (the store's insert_topic): the wake-up goes
 * to the index when it opens. */
void sb_log_set_wake(sb_log *l, void (*fn)(void *arg), void *arg)
{
	l->wake = fn;
	l->wake_arg = arg;
	if (l->kx)
		sb_kx_set_wake(l->kx, fn, arg);
}

/* The flusher's and the indexer's hooks: nothing before the index opens. */
void sb_log_keys_maintain(sb_log *l)
{
	sb_kx *x = sb_log_kx(l);

	if (x && !l->read_only && !atomic_load(&l->removed) && !atomic_load(&l->err))
		sb_kx_maintain(x);
}

void sb_log_keys_sync(sb_log *l)
{
	sb_kx *x = sb_log_kx(l);

	if (x && !l->read_only && !atomic_load(&l->removed))
		sb_kx_sync_tables(x);
}

int sb_log_index_keys(sb_log *l)
{
	sb_kx *x = sb_log_kx(l);

	if (!x || l->read_only || atomic_load(&l->removed) || atomic_load(&l->err))
		return 0;
	int rc = sb_kx_index(x);

	return rc > 0 ? rc : 0;
}

/* [append] the index open (sb_log_remove opens it first: its tables go) */
void sb_log_keys_remove(sb_log *l)
{
	if (l->kx)
		sb_kx_remove_files(l->kx);
	if (l->kx_damaged)
		sb_kx_remove_files(l->kx_damaged);
}

/* 0 when l's key index can answer (opened now if not yet); -ENOENT (the
 * topic removed, or no index), SB_ECORRUPT (its replay met damage:
 * kx_damaged), or the open's failure. */
static int keys_usable(sb_log *l)
{
	int rc;

	if (atomic_load(&l->removed))
		return -ENOENT;
	if ((rc = sb_log_keys_ready(l)))
		return rc;
	if (l->kx_damaged)
		return SB_ECORRUPT;
	return l->kx ? 0 : -ENOENT;
}

int sb_log_get_key(sb_log *l, const void *key, size_t key_len, void *buf, size_t cap, size_t *nread,
		   sb_record_info *info)
{
	sb_mt_val v;
	size_t n = 0;
	sb_record_info ri;
	int rc;

	if (!key_len || key_len > SB_KEY_MAX)
		return -EINVAL;
	if ((rc = keys_usable(l)))
		return rc;
	rc = sb_kx_get(l->kx, key, key_len, &v);
	if (rc)
		return rc;
	if (v.flags & SB_MT_TOMBSTONE)
		return -ENOENT;
	rc = sb_log_read_keyed(l, v.offset, v.pos, key, key_len, buf, cap, &n, info ? &ri : NULL);
	if (rc == -ESTALE) {
		if (l->opt.report)
			l->opt.report(l->opt.report_arg, l->name, SB_REPORT_KEY_INDEX "an entry names a record of another key");
		return SB_ECORRUPT;
	}
	if (rc)
		return rc; /* -ENOENT: below the start (retention took it) */
	*nread = n;
	if (info)
		*info = ri;
	return 0;
}

typedef struct list_ctx {
	sb_log *l;
	uint64_t start;
	sb_key_fn fn;
	void *arg;
} list_ctx;

static int list_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v)
{
	list_ctx *c = arg;
	sb_record_info info;

	if ((v->flags & SB_MT_TOMBSTONE) || v->offset < c->start)
		return 0;
	memset(&info, 0, sizeof(info));
	info.offset = v->offset;
	info.timestamp_ns = v->ts;
	info.value_len = v->size;
	info.key_len = (uint16_t)klen;
	return c->fn(c->arg, key, klen, &info);
}

int sb_log_list_keys(sb_log *l, const void *from, size_t from_len, sb_key_fn fn, void *arg)
{
	list_ctx c = {l, atomic_load(&l->start), fn, arg};
	int rc = keys_usable(l);

	return rc ? rc : sb_kx_scan(l->kx, from, from_len, list_one, &c);
}

int sb_log_get_key_stats(sb_log *l, sb_log_key_stats *st)
{
	sb_kx_stats ks;
	int rc = sb_log_keys_ready(l);

	if (rc)
		return rc;
	if (!l->kx)
		return -ENOENT;
	sb_kx_get_stats(l->kx, &ks);
	st->memtable_keys = ks.mt_keys;
	st->memtable_bytes = ks.mt_bytes;
	st->tables = ks.tables;
	st->table_keys = ks.table_keys;
	st->table_bytes = ks.table_bytes;
	st->appender_sorts = ks.appender_sorts;
	st->appender_writes = ks.appender_writes;
	return 0;
}

static int verify_one(void *arg, const uint8_t *key, size_t klen, const sb_mt_val *v)
{
	vk_ctx *c = arg;
	sb_record_info ri;
	size_t n;
	uint8_t one;
	const char *why = NULL;

	c->checked++;
	if (v->offset < c->start)
		return 0;
	/* by offset (the position is checked apart) */
	int rc = sb_log_read_keyed(c->l, v->offset, 0, key, klen, &one, 0, &n, &ri);
	if (rc == -ENOENT && (v->flags & SB_MT_TOMBSTONE) && sb_log_in_compacted(c->l, v->offset))
		return 0; /* compaction dropped the tombstone after delete_retention_ms */
	if (rc == -ESTALE)
		why = "names a record with another key";
	else if (rc == -ENOENT)
		why = "names a record the log does not have";
	else if (rc)
		why = sb_strerror(rc);
	else if (ri.value_len != v->size || ri.timestamp_ns != v->ts ||
		 !!(ri.flags & SB_REC_TOMBSTONE) != !!(v->flags & SB_MT_TOMBSTONE))
		why = "disagrees with the record's size, time or tombstone flag";
	else if (sb_log_check_hint(c->l, v->offset, v->pos))
		why = "names a wrong position of its record";
	if (why) {
		c->wrong++;
		if (c->fn) {
			char msg[512];
			snprintf(msg, sizeof(msg), SB_REPORT_KEY_INDEX "the entry of key \"%.*s\" (offset %" PRIu64 ") %s",
				 (int)(klen < 64 ? klen : 64), (const char *)key, v->offset, why);
			c->fn(c->arg, msg);
		}
	}
	return 0;
}

int sb_log_verify_keys(sb_log *l, uint64_t *checked, uint64_t *wrong,
		       void (*fn)(void *arg, const char *msg), void *arg)
{
	vk_ctx c = {.l = l, .start = atomic_load(&l->start), .fn = fn, .arg = arg};
	int rc;

	if ((rc = keys_usable(l)))
		return rc;
	rc = sb_kx_scan(l->kx, NULL, 0, verify_one, &c);
	if (checked)
		*checked = c.checked;
	if (wrong)
		*wrong = c.wrong;
	return rc;
}
