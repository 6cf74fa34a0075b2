/*
 * kafka_stream.c - the Kafka backend's records through the cache, and its
 * stream model: the index of (offset, position) entries that turns .log
 * positions into offsets (see backend_kafka.c for the design).
 */
#include "kafka_part.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int kpart_update_wm_in(kpart *p, int wait_ms)
{
	int64_t lo, hi;
	int rc = p->b->c->ops->watermarks(p->cp, wait_ms, &lo, &hi);
	if (rc)
		return rc;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&p->lock);
	if (lo > p->lo)
		p->lo = lo;
	if (hi > p->hi) {
		if (p->wm_ok)
			p->seen_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		p->hi = hi;
	}
	p->wm_ok = 1;
	if (p->hi < p->lo)
		p->hi = p->lo;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int kpart_update_wm(kpart *p) { return kpart_update_wm_in(p, 0); }

/* ---- records through the cache ---- */

static int add_cb(void *arg, const kc_rec *r) { return kchunk_add(arg, r); }

/* The chunk holding off or the first record after it (a reference). */
static int chunk_at(kpart *p, int64_t off, kchunk **out)
{
	kbackend *b = p->b;
	kchunk *ch = kcache_get(b->cache, p, off);
	if (ch) {
		*out = ch;
		return 0;
	}
	int rc = kchunk_new(p, off, &ch);
	if (rc)
		return rc;
	rc = b->c->ops->fetch(p->cp, off, add_cb, ch);
	if (rc == 0 && kchunk_count(ch) == 0)
		rc = -ENODATA;
	if (rc) {
		kchunk_release(b->cache, ch); /* never put: freed */
		if (rc == -ERANGE)
			kpart_update_wm(p); /* deleted under us */
		return rc;
	}
	kcache_put(b->cache, ch);
	*out = ch;
	return 0;
}

typedef kpart_rec_fn rec_fn;

/* fn for each record with an offset in [from, to), in order; fn returns
 * 0 to go on, 1 to stop, or an error. */
static int each_rec(kpart *p, int64_t from, int64_t to, rec_fn fn, void *arg)
{
	int64_t off = from;
	while (off < to) {
		kchunk *ch;
		int rc = chunk_at(p, off, &ch);
		if (rc == -ENODATA)
			return 0;
		if (rc)
			return rc;
		size_t n = kchunk_count(ch);
		for (size_t i = kchunk_find(ch, off); rc == 0 && i < n; i++) {
			const kcrec *r = kchunk_rec(ch, i);
			if (r->offset >= to)
				break;
			rc = fn(arg, ch, r);
		}
		off = kchunk_next(ch);
		kchunk_release(p->b->cache, ch);
		if (rc)
			return rc > 0 ? 0 : rc;
	}
	return 0;
}

int kpart_each(kpart *p, int64_t from, int64_t to, kpart_rec_fn fn, void *arg)
{
	return each_rec(p, from, to, fn, arg);
}

/* ---- the stream index ---- */

static int ix_push(kpart *p, int64_t off, uint64_t pos)
{
	if (p->nix == p->capix) {
		size_t cap = p->capix ? p->capix * 2 : 64;
		ixe *v = realloc(p->ix, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		p->ix = v;
		p->capix = cap;
	}
	p->ix[p->nix++] = (ixe){ off, pos, p->mtime_ms };
	return 0;
}

/* One more record of the partition's end (lock held). */
int kpart_ix_note(kpart *p, int64_t off, uint32_t len, int64_t ts_ms)
{
	if (off < p->ix_next)
		return 0;
	if (p->nix == 0 || p->ix_end - p->ix[p->nix - 1].pos >= IX_STRIDE) {
		int rc = ix_push(p, off, p->ix_end);
		if (rc)
			return rc;
	}
	p->ix_end += len;
	p->ix_next = off + 1;
	if (ts_ms > p->mtime_ms)
		p->mtime_ms = ts_ms;
	return 0;
}

static int note_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	(void)ch;
	kpart *p = arg;
	pthread_mutex_lock(&p->lock);
	int rc = kpart_ix_note(p, r->offset, r->value_len, r->timestamp_ms);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* Index up to the high watermark (xlock held). */
static int ix_extend(kpart *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->ix_init) {
		p->ix_init = 1;
		p->ix_next = p->start_off = p->lo;
		p->mtime_ms = 0;
	}
	if (p->ix_next < p->lo)
		p->ix_next = p->lo; /* gone before we saw them: they add nothing */
	int64_t from = p->ix_next, to = p->hi;
	pthread_mutex_unlock(&p->lock);
	int rc = from < to ? each_rec(p, from, to, note_cb, p) : 0;
	pthread_mutex_lock(&p->lock);
	if (rc == 0 && p->ix_next < to)
		p->ix_next = to; /* offsets without records at the end */
	pthread_mutex_unlock(&p->lock);
	return rc;
}

typedef struct sum_ctx {
	uint64_t sum;
} sum_ctx;

static int sum_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	(void)ch;
	((sum_ctx *)arg)->sum += r->value_len;
	return 0;
}

/* The stream position of offset off, lo <= off <= ix_next (xlock held). */
int kpart_pos_of(kpart *p, int64_t off, uint64_t *out)
{
	pthread_mutex_lock(&p->lock);
	if (off >= p->ix_next) {
		*out = p->ix_end;
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	/* the last entry at or below off, and the first above it */
	size_t lo = 0, hi = p->nix;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->ix[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	ixe below = lo ? p->ix[lo - 1] : (ixe){ INT64_MIN, 0, 0 };
	ixe above = lo < p->nix ? p->ix[lo] : (ixe){ p->ix_next, p->ix_end, 0 };
	int64_t first = p->lo;
	pthread_mutex_unlock(&p->lock);
	sum_ctx s = { 0 };
	int rc;
	if (below.off >= first) {
		rc = each_rec(p, below.off, off, sum_cb, &s);
		if (rc == 0)
			*out = below.pos + s.sum;
	} else {
		/* the records before off are gone: count back from above */
		rc = each_rec(p, off, above.off, sum_cb, &s);
		if (rc == 0)
			*out = above.pos - s.sum;
	}
	return rc;
}

/* Index what is new and bring start_pos to the low watermark (xlock held). */
typedef struct time_ctx {
	int64_t ts_ms, found;
} time_ctx;

static int time_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	(void)ch;
	time_ctx *c = arg;
	if (r->timestamp_ms < c->ts_ms)
		return 0;
	c->found = r->offset;
	return 1;
}

/*
 * Each index entry keeps the running maximum of the times before it, so
 * the entries are in order of it: a binary search finds the last one whose
 * records before it are all older than ts_ms; the first record at or after
 * it with a time >= ts_ms is the answer (the first whose running maximum
 * reaches ts_ms), found by a walk of at most one stride of records through
 * the cache. (When records below the low watermark were deleted, the walk
 * starts at the low watermark: the first retained record that reaches
 * ts_ms, as Kafka answers.)
 */
int kpart_seek_indexed(kpart *p, int64_t ts_ms, int64_t *off)
{
	pthread_mutex_lock(&p->lock);
	size_t lo = 0, hi = p->nix;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->ix[mid].maxts < ts_ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	int64_t from = lo ? p->ix[lo - 1].off : p->start_off, to = p->ix_next;
	if (from < p->lo)
		from = p->lo;
	pthread_mutex_unlock(&p->lock);
	time_ctx c = { ts_ms, -1 };
	int rc = from < to ? each_rec(p, from, to, time_cb, &c) : 0;
	if (rc == 0 && c.found < 0)
		rc = -ENOENT;
	if (rc == 0)
		*off = c.found;
	return rc;
}

int kpart_catch_up(kpart *p)
{
	int rc = ix_extend(p);
	pthread_mutex_lock(&p->lock);
	int64_t lo = p->lo, so = p->start_off;
	pthread_mutex_unlock(&p->lock);
	if (rc == 0 && lo != so) {
		uint64_t pos;
		rc = kpart_pos_of(p, lo, &pos);
		if (rc == 0) {
			pthread_mutex_lock(&p->lock);
			p->start_off = lo;
			p->start_pos = pos;
			pthread_mutex_unlock(&p->lock);
		}
	}
	return rc;
}


/* Watermarks known, asking the cluster the first time (then the
 * refresher keeps them). */
int kpart_known(kpart *p)
{
	pthread_mutex_lock(&p->lock);
	int ok = p->wm_ok;
	p->active = 1;
	pthread_mutex_unlock(&p->lock);
	return ok ? 0 : kpart_update_wm(p);
}



static int find_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	find_ctx *x = arg;
	if (r->offset != x->off)
		return 1;
	x->rec = *r;
	x->found = 1;
	if (x->hfn) {
		const char *h = kchunk_data(ch) + r->headers;
		for (uint16_t i = 0; i < r->nheaders && x->hrc == 0; i++) {
			uint16_t nl;
			uint32_t vl;
			memcpy(&nl, h, 2);
			memcpy(&vl, h + 2 + nl, 4);
			x->hrc = x->hfn(x->harg, h + 2, nl, h + 6 + nl, vl);
			h += 6 + nl + vl;
		}
	} else if (x->key) {
		size_t n = r->key_len < x->len ? r->key_len : x->len;
		memcpy(x->buf, kchunk_data(ch) + r->key, n);
	} else if (x->buf && x->from < r->value_len) {
		size_t n = r->value_len - x->from;
		if (n > x->len)
			n = x->len;
		memcpy(x->buf, kchunk_data(ch) + r->value + x->from, n);
		x->n = n;
	}
	return 1;
}

/* The record at off into x (and its bytes as x asks); -ENOENT if none. */
int kpart_record(kpart *p, int64_t off, find_ctx *x)
{
	int rc = kpart_known(p);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	int in = off >= p->lo && off < p->hi && !p->removed &&
		 !(p->hi == p->none_hi && off >= p->none_from); /* a gap at the end */
	pthread_mutex_unlock(&p->lock);
	if (!in)
		return -ENOENT;
	x->off = off;
	rc = each_rec(p, off, off + 1, find_cb, x);
	if (rc == -ERANGE)
		rc = -ENOENT;
	if (rc == 0 && !x->found)
		rc = -ENOENT;
	return rc;
}


/* ---- offsets that hold a record (backend.h next_present) ---- */

static int first_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	(void)ch;
	*(int64_t *)arg = r->offset;
	return 1;
}

/*
 * Kafka's fetch from off gives the first record at or after it, so the
 * answer is the first record of the chunk holding off (each_rec: from the
 * cache, else one fetch, which starts its chunk at off and so covers the
 * gap before its first record). ls asks for every name it lists, in order:
 * each answer is a lookup of the chunk already cached, and a fetch is made
 * once per chunk (as a read of every record makes), never per name or per
 * gap. Past the last record, the fetch waits at the partition's end (the
 * client's grace for a record on its way), so that "none" is remembered
 * (none_from, none_hi) while the high watermark stays where it was: a
 * record that shows up later (another producer, a transaction committed)
 * moves it. A damaged batch (-EIO) is listed at off: its lookup says EIO,
 * never "No such file" (as the store lists damage).
 */
int kpart_next_present(kpart *p, int64_t off, int64_t *found)
{
	int rc = kpart_known(p);
	for (int tries = 0; rc == 0; tries++) {
		pthread_mutex_lock(&p->lock);
		int64_t from = off < p->lo ? p->lo : off, hi = p->hi;
		int none = p->removed || from >= hi || (hi == p->none_hi && from >= p->none_from);
		pthread_mutex_unlock(&p->lock);
		if (none)
			return -ENOENT;
		int64_t f = -1;
		rc = each_rec(p, from, hi, first_cb, &f);
		if (rc == -ERANGE && tries < 3) {
			rc = 0; /* deleted under us: from the new start (chunk_at asked) */
			continue;
		}
		if (rc == -EIO) {
			*found = from;
			return 0;
		}
		if (rc)
			break;
		if (f >= 0) {
			*found = f;
			return 0;
		}
		pthread_mutex_lock(&p->lock);
		if (p->none_hi != hi || from < p->none_from)
			p->none_from = from;
		p->none_hi = hi;
		pthread_mutex_unlock(&p->lock);
		return -ENOENT;
	}
	return rc == -ERANGE ? -EIO : rc;
}

int kpart_next_offset(kpart *p, int64_t off, int64_t *found)
{
	int rc = kpart_known(p);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	int64_t from = off < p->lo ? p->lo : off;
	int none = p->removed || from >= p->hi;
	pthread_mutex_unlock(&p->lock);
	if (none)
		return -ENOENT;
	*found = from;
	return 0;
}

/* "compact", "compact,delete", "delete, compact": a list of policies. */
static int has_compact(const char *policy)
{
	for (const char *s = policy; (s = strstr(s, "compact")); s += 7) {
		char after = s[7];
		int start = s == policy || s[-1] == ',' || s[-1] == ' ' || s[-1] == '[';
		if (start && (after == '\0' || after == ',' || after == ' ' || after == ']'))
			return 1;
	}
	return 0;
}

/*
 * Most topics have no gaps: Kafka's retention (cleanup.policy=delete)
 * removes whole segments from the start, so every offset in [lo, hi)
 * holds a record but for transaction markers (one offset per
 * transaction). Compaction leaves gaps in bulk. Skipping gaps costs a
 * fetch of every record (payloads too: Kafka has no offsets-only fetch),
 * so ls pays it only in compacted topics; elsewhere a marker's name is
 * listed and its lookup is ENOENT. The topic's cleanup.policy is asked
 * once (DescribeConfigs; one answer for all its partitions), without a
 * lock held. A cluster that does not answer (down, slow past
 * CONFIG_WAIT_MS; librdkafka 2.0.2's mock, which names a controller it
 * does not have) is asked again after CONFIG_RETRY_MS, for any topic
 * (DescribeConfigs goes to the controller: one topic's timeout is every
 * topic's, and `ls -R` must not wait once per topic); one that refuses
 * (no permission, no DescribeConfigs) is not asked again for that topic.
 * Both list every offset meanwhile, said once per topic.
 */
int kpart_skips_gaps(kpart *p)
{
	kbackend *b = p->b;
	if (b->cfg.ls_gaps != SBFS_KAFKA_GAPS_AUTO)
		return b->cfg.ls_gaps == SBFS_KAFKA_GAPS_SKIP;
	kpart *q = p->group ? p->group : p; /* keeps the topic's answer */
	int64_t now = ktab_now_ms();
	pthread_mutex_lock(&q->lock);
	int g = q->gaps;
	int ask = g == KG_UNKNOWN && now >= atomic_load(&b->gaps_retry_ms);
	pthread_mutex_unlock(&q->lock);
	if (!ask)
		return g == KG_SKIP;
	char policy[256] = "";
	int rc = b->c->ops->topic_config
			 ? b->c->ops->topic_config(b->c, q->name, "cleanup.policy", CONFIG_WAIT_MS,
						   policy, sizeof policy)
			 : -EOPNOTSUPP;
	int say = 0;
	pthread_mutex_lock(&q->lock);
	if (rc == 0)
		q->gaps = has_compact(policy) ? KG_SKIP : KG_LIST;
	else if (rc == -ETIMEDOUT || rc == -EIO)
		atomic_store(&b->gaps_retry_ms, now + CONFIG_RETRY_MS);
	else
		q->gaps = KG_LIST;
	if (rc && !q->gaps_said)
		say = q->gaps_said = 1;
	g = q->gaps;
	pthread_mutex_unlock(&q->lock);
	if (say)
		sbfs_log("kafka: %s: cannot read its cleanup.policy (%s): ls lists every offset "
			 "from the watermarks, the gaps compaction leaves included (their "
			 "names are ENOENT; [kafka] ls_gaps = skip skips them)%s",
			 q->name, strerror(-rc),
			 g == KG_UNKNOWN ? "; no topic's is asked again for a minute" : "");
	return g == KG_SKIP;
}


typedef struct stream_ctx {
	uint64_t pos;           /* of the record being visited */
	uint64_t want;          /* the next byte to copy */
	char *buf;
	size_t len, n;
	int64_t end_off;        /* after the last record copied from */
} stream_ctx;

static int stream_cb(void *arg, const kchunk *ch, const kcrec *r)
{
	stream_ctx *x = arg;
	uint64_t end = x->pos + r->value_len;
	if (end > x->want) {
		uint64_t in = x->want - x->pos;
		size_t n = r->value_len - in;
		if (n > x->len - x->n)
			n = x->len - x->n;
		memcpy(x->buf + x->n, kchunk_data(ch) + r->value + in, n);
		x->n += n;
		x->want += n;
	}
	x->pos = end;
	x->end_off = r->offset + 1;
	return x->n == x->len ? 1 : 0;
}

int kpart_read_stream(kpart *p, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	int rc = kpart_known(p);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->xlock);
	pthread_mutex_lock(&p->lock);
	int more = !p->ix_init || pos + len > p->ix_end;
	pthread_mutex_unlock(&p->lock);
	if (more)
		rc = kpart_catch_up(p);
	pthread_mutex_lock(&p->lock);
	uint64_t start = p->start_pos, end = p->ix_end;
	int64_t limit = p->ix_next, from = -1;
	uint64_t at = 0;
	if (p->hint_off >= 0 && p->hint_pos == pos && p->hint_off >= p->lo) {
		from = p->hint_off;
		at = pos;
	} else if (pos >= start && pos < end) {
		size_t lo = 0, hi = p->nix;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (p->ix[mid].pos <= pos)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo && p->ix[lo - 1].off >= p->start_off) {
			from = p->ix[lo - 1].off;
			at = p->ix[lo - 1].pos;
		} else {
			from = p->start_off;
			at = start;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (pos < start) {
		rc = -ENOENT;
		goto out_unlock;
	}
	if (pos >= end || len == 0) {
		*nread = 0; /* the end, for now */
		rc = 0;
		goto out_unlock;
	}
	stream_ctx x = { .pos = at, .want = pos, .buf = buf,
			 .len = len < end - pos ? len : (size_t)(end - pos), .end_off = from };
	rc = each_rec(p, from, limit, stream_cb, &x);
	if (rc == -ERANGE)
		rc = -ENOENT; /* deleted under us: below the start now */
	if (rc == 0 || x.n > 0) {
		pthread_mutex_lock(&p->lock);
		if (x.want == x.pos) { /* ended on a record boundary */
			p->hint_off = x.end_off;
			p->hint_pos = x.pos;
		}
		pthread_mutex_unlock(&p->lock);
		*nread = x.n; /* a short read before a failure serves the good bytes */
		rc = 0;
	}
out_unlock:
	pthread_mutex_unlock(&p->xlock);
	return rc;
}

/* A record's headers as SPEC §2's xattrs: Kafka allows a name more than
 * once (and names no xattr can carry); an xattr has one value, so the
 * first header of each name is shown and names that cannot be one
 * (empty, a NUL in them, over SBFS_HEADER_NAME_MAX bytes) are left out. */
typedef struct hdr_ctx {
	sbfs_header_fn fn;
	void *arg;
	const char **seen;      /* names given so far (chunk bytes: valid
				 * while the record is being walked) */
	size_t *seen_len, nseen, cap;
	int err;
} hdr_ctx;

static int hdr_cb(void *arg, const char *name, size_t nl, const void *v, size_t vl)
{
	hdr_ctx *x = arg;
	if (nl == 0 || nl > SBFS_HEADER_NAME_MAX || memchr(name, '\0', nl) ||
	    vl > SBFS_HEADER_VALUE_MAX)
		return 0;
	for (size_t i = 0; i < x->nseen; i++)
		if (x->seen_len[i] == nl && memcmp(x->seen[i], name, nl) == 0)
			return 0;
	if (x->nseen == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		const char **s = realloc(x->seen, cap * sizeof *s);
		if (s)
			x->seen = s;
		size_t *l = s ? realloc(x->seen_len, cap * sizeof *l) : NULL;
		if (!l)
			return x->err = -ENOMEM;
		x->seen_len = l;
		x->cap = cap;
	}
	x->seen[x->nseen] = name;
	x->seen_len[x->nseen++] = nl;
	sbfs_header h = { name, (uint32_t)nl, v, (uint32_t)vl };
	return x->fn(x->arg, &h);
}

int kpart_headers(kpart *p, int64_t off, sbfs_header_fn fn, void *arg)
{
	hdr_ctx h = { .fn = fn, .arg = arg };
	find_ctx x = { .hfn = hdr_cb, .harg = &h };
	int rc = kpart_record(p, off, &x);
	free(h.seen);
	free(h.seen_len);
	if (rc)
		return rc;
	return h.err ? h.err : x.hrc;
}
