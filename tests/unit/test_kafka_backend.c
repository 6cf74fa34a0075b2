/*
 * test_kafka_backend.c - the Kafka backend (fs/backend_kafka.c) against a
 * fake cluster at the client interface (fs/kafka_client.h).
 *
 * librdkafka 2.0.2's mock cluster has no CreateTopics, DeleteTopics or
 * DeleteRecords, so mkdir, rmdir and rm of the oldest record are tested
 * here: the fake records what the backend asked for. Also here, with
 * generated cases: the stream model (every .log position read at random
 * gives the bytes of the concatenated payloads, across index strides and
 * records deleted before and after they were indexed), the cache (reading
 * record after record fetches each chunk once; the cache stays within
 * cache_bytes), other producers' records showing up, and an unreachable
 * cluster failing calls within the timeout instead of hanging.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "kafka_part.h"

/* The daemon's log (errors.c), here: stderr. */
void sbfs_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the fake cluster ---- */

typedef struct frec {
	int64_t ts;
	char *key;
	size_t key_len;
	char *val;
	size_t len;
	int tomb;               /* a null value */
} frec;

/* One partition: a topic of n partitions is n of them, `part` 0..n-1,
 * each with the topic's name and partition count. */
typedef struct ftopic {
	char name[64];
	int parts;
	int part;
	int64_t lo, hi;
	frec *recs;             /* offset o at recs[o] */
	size_t cap;
} ftopic;

struct kc_part {
	ftopic *t;
};

typedef struct fake {
	kc base;
	pthread_mutex_t m;      /* guards everything below */
	ftopic topics[16];
	struct kc_part parts[16];
	int ntopics;
	int down;               /* unreachable: calls time out */
	int fetches;            /* fetch calls */
	int fetch_max;          /* records per fetch */
	int time_queries;
	int created_parts, created_repl, deleted_topics;
	uint64_t headers_produced;
	int64_t deleted_before;
	char last_created[64];
} fake;

static fake *F(kc *c) { return (fake *)c; }

static ftopic *ftopic_of(fake *f, const char *name)
{
	for (int i = 0; i < f->ntopics; i++)
		if (f->topics[i].parts && !f->topics[i].part && !strcmp(f->topics[i].name, name))
			return &f->topics[i];
	return NULL;
}

static ftopic *fpart_of(fake *f, const char *name, int part)
{
	for (int i = 0; i < f->ntopics; i++)
		if (f->topics[i].parts && f->topics[i].part == part &&
		    !strcmp(f->topics[i].name, name))
			return &f->topics[i];
	return NULL;
}

/* Topic `name` of `parts` partitions; its partition 0. */
static ftopic *fadd(fake *f, const char *name, int parts)
{
	ftopic *first = &f->topics[f->ntopics];
	for (int i = 0; i < parts; i++) {
		ftopic *t = &f->topics[f->ntopics++];
		memset(t, 0, sizeof *t);
		snprintf(t->name, sizeof t->name, "%s", name);
		t->parts = parts;
		t->part = i;
	}
	return first;
}

static void fput(ftopic *t, const void *key, size_t klen, const void *v, size_t len, int64_t ts)
{
	if ((size_t)t->hi == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->recs = realloc(t->recs, t->cap * sizeof *t->recs);
	}
	frec *r = &t->recs[t->hi++];
	r->key = key ? memcpy(malloc(klen + 1), key, klen) : NULL;
	r->key_len = klen;
	r->val = malloc(len + 1);
	if (len)
		memcpy(r->val, v, len);
	r->len = len;
	r->ts = ts;
	r->tomb = 0;
}

static int f_list(kc *c, kc_topic_fn fn, void *arg)
{
	fake *f = F(c);
	pthread_mutex_lock(&f->m);
	int rc = f->down ? -ETIMEDOUT : 0;
	for (int i = 0; rc == 0 && i < f->ntopics; i++)
		if (f->topics[i].parts && !f->topics[i].part)
			rc = fn(arg, f->topics[i].name, f->topics[i].parts);
	pthread_mutex_unlock(&f->m);
	return rc;
}

static int f_part_open(kc *c, const char *topic, int32_t part, kc_part **out)
{
	fake *f = F(c);
	pthread_mutex_lock(&f->m);
	ftopic *t = fpart_of(f, topic, part);
	int rc = t ? 0 : -ENOENT;
	if (rc == 0) {
		f->parts[t - f->topics].t = t;
		*out = &f->parts[t - f->topics];
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

static fake *fake_of(kc_part *p);

static int f_watermarks(kc_part *p, int wait_ms, int64_t *lo, int64_t *hi)
{
	(void)wait_ms;
	fake *f = fake_of(p);
	pthread_mutex_lock(&f->m);
	int rc = f->down ? -ETIMEDOUT : 0;
	if (rc == 0) {
		*lo = p->t->lo;
		*hi = p->t->hi;
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

static int f_fetch(kc_part *p, int64_t from, kc_rec_fn fn, void *arg)
{
	fake *f = fake_of(p);
	pthread_mutex_lock(&f->m);
	f->fetches++;
	int rc = 0;
	if (f->down)
		rc = -ETIMEDOUT;
	else if (from < p->t->lo)
		rc = -ERANGE;
	else if (from >= p->t->hi)
		rc = -ENODATA;
	for (int64_t o = from; rc == 0 && o < p->t->hi && o < from + f->fetch_max; o++) {
		frec *r = &p->t->recs[o];
		/* odd offsets carry two headers (Kafka's: ordered, names may repeat) */
		char hv[32];
		int hl = snprintf(hv, sizeof hv, "v%ld", (long)o);
		kc_header hs[2] = { { "trace", 5, hv, (size_t)hl }, { "trace", 5, "", 0 } };
		kc_rec k = { .offset = o, .timestamp_ms = r->ts, .key = r->key,
			     .key_len = r->key_len, .value = r->val, .value_len = r->len,
			     .headers = o % 2 ? hs : NULL, .nheaders = o % 2 ? 2 : 0,
			     .tombstone = r->tomb };
		rc = fn(arg, &k);
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

static int f_produce(kc_part *p, const kc_rec *recs, size_t n, int64_t *offs)
{
	fake *f = fake_of(p);
	pthread_mutex_lock(&f->m);
	int rc = f->down ? -ETIMEDOUT : 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		offs[i] = p->t->hi;
		f->headers_produced += recs[i].nheaders;
		fput(p->t, recs[i].key, recs[i].key_len, recs[i].value, recs[i].value_len,
		     recs[i].timestamp_ms ? recs[i].timestamp_ms : 1700000000000);
		p->t->recs[p->t->hi - 1].tomb = recs[i].tombstone;
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

static int f_create(kc *c, const char *topic, int parts, int repl)
{
	fake *f = F(c);
	pthread_mutex_lock(&f->m);
	int rc = f->down ? -ETIMEDOUT : ftopic_of(f, topic) ? -EEXIST : 0;
	if (rc == 0) {
		fadd(f, topic, parts);
		f->created_parts = parts;
		f->created_repl = repl;
		snprintf(f->last_created, sizeof f->last_created, "%s", topic);
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

static int f_delete_topic(kc *c, const char *topic)
{
	fake *f = F(c);
	pthread_mutex_lock(&f->m);
	ftopic *t = ftopic_of(f, topic);
	int rc = f->down ? -ETIMEDOUT : t ? 0 : -ENOENT;
	if (rc == 0) {
		for (int i = 0; i < f->ntopics; i++)
			if (!strcmp(f->topics[i].name, topic))
				f->topics[i].parts = 0;
		f->deleted_topics++;
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

static int f_delete_records(kc_part *p, int64_t before)
{
	fake *f = fake_of(p);
	pthread_mutex_lock(&f->m);
	int rc = f->down ? -ETIMEDOUT : before > p->t->hi ? -ERANGE : 0;
	if (rc == 0 && before > p->t->lo) {
		p->t->lo = before;
		f->deleted_before = before;
	}
	pthread_mutex_unlock(&f->m);
	return rc;
}

/* The first offset whose running-maximum time is >= ts_ms (Kafka's time
 * index), or -1. */
static int f_offset_for_time(kc_part *p, int64_t ts_ms, int64_t *off)
{
	fake *f = fake_of(p);
	pthread_mutex_lock(&f->m);
	int rc = f->down ? -ETIMEDOUT : 0;
	int64_t max = INT64_MIN, found = -1;
	for (int64_t o = p->t->lo; rc == 0 && o < p->t->hi && found < 0; o++) {
		if (p->t->recs[o].ts > max)
			max = p->t->recs[o].ts;
		if (max >= ts_ms)
			found = o;
	}
	if (rc == 0)
		*off = found;
	f->time_queries++;
	pthread_mutex_unlock(&f->m);
	return rc;
}

static size_t f_record_max(kc *c) { (void)c; return 1000000; }

static void f_close(kc *c)
{
	fake *f = F(c);
	for (int i = 0; i < f->ntopics; i++) {
		for (int64_t o = 0; o < f->topics[i].hi; o++) {
			free(f->topics[i].recs[o].key);
			free(f->topics[i].recs[o].val);
		}
		free(f->topics[i].recs);
	}
	pthread_mutex_destroy(&f->m);
	free(f);
}

static const kc_ops fake_ops = {
	.list = f_list, .part_open = f_part_open, .watermarks = f_watermarks,
	.fetch = f_fetch, .produce = f_produce, .create_topic = f_create,
	.delete_topic = f_delete_topic, .delete_records = f_delete_records,
	.offset_for_time = f_offset_for_time,
	.record_max = f_record_max, .close = f_close,
};

static fake *the_fake; /* one per test (tests run in their own processes) */
static fake *fake_of(kc_part *p) { (void)p; return the_fake; }

static fake *fake_new(void)
{
	fake *f = calloc(1, sizeof *f);
	f->base.ops = &fake_ops;
	pthread_mutex_init(&f->m, NULL);
	f->fetch_max = 100;
	the_fake = f;
	return f;
}

static ftopic *fake_topic(fake *f, const char *name, int parts)
{
	return fadd(f, name, parts);
}

/* ---- helpers ---- */

static sbfs_backend *open_backend(fake *f, size_t cache, int allow_delete)
{
	sbfs_kafka_config cfg;
	sbfs_kafka_config_init(&cfg);
	cfg.cache_bytes = cache;
	cfg.num_partitions = 1;
	cfg.replication = 3;
	cfg.allow_topic_delete = allow_delete;
	sbfs_backend *b = NULL;
	cr_assert_eq(sbfs_backend_kafka_open_client(&cfg, &f->base, &b), 0);
	return b;
}

static sbfs_topic *topic(sbfs_backend *b, const char *name)
{
	sbfs_topic *t = NULL;
	cr_assert_eq(b->ops->topic_get(b, name, &t), 0, "topic %s", name);
	return t;
}

/* A stream of n records of random sizes (0..maxlen), also as one buffer. */
static char *fill(ftopic *t, int n, int maxlen, unsigned seed, size_t *total)
{
	char *all = malloc((size_t)n * (size_t)maxlen + 1);
	size_t at = 0;
	srand(seed);
	for (int i = 0; i < n; i++) {
		size_t len = (size_t)(rand() % (maxlen + 1));
		char *v = all + at;
		for (size_t j = 0; j < len; j++)
			v[j] = (char)('a' + (i + (int)j) % 26);
		char key[16];
		int kl = snprintf(key, sizeof key, "k%d", i);
		fput(t, i % 3 ? key : NULL, i % 3 ? (size_t)kl : 0, v, len, 1700000000000 + i);
		at += len;
	}
	*total = at;
	return all;
}

static void check_stream(sbfs_backend *b, sbfs_topic *t, const char *all, uint64_t from,
			 size_t total, int probes)
{
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.stream_end - bd.stream_start, total - from);
	char *buf = malloc(70000);
	for (int i = 0; i < probes; i++) {
		uint64_t pos = from + (total > from ? (uint64_t)rand() % (total - from) : 0);
		size_t len = 1 + (size_t)(rand() % 70000);
		size_t n = 0, want = len < total - pos ? len : total - pos;
		cr_assert_eq(b->ops->read_stream(t, bd.stream_start + (pos - from), buf, len, &n), 0);
		cr_assert_eq(n, want, "pos %lu len %zu: %zu of %zu", (unsigned long)pos, len, n,
			     want);
		cr_assert(memcmp(buf, all + pos, n) == 0, "bytes at %lu", (unsigned long)pos);
	}
	free(buf);
}

/* ---- tests ---- */

Test(kafka_backend, lists_single_partition_topics_and_reads_records)
{
	fake *f = fake_new();
	size_t total;
	char *all = fill(fake_topic(f, "orders", 1), 500, 300, 1, &total);
	fake_topic(f, "wide", 4);
	sbfs_backend *b = open_backend(f, 64 << 20, 0);
	sbfs_topic *t = topic(b, "orders");
	sbfs_topic *w;
	cr_assert_eq(b->ops->topic_get(b, "nope", &w), -ENOENT);
	sbfs_bounds bd;
	/* offsets only (ls, rm, the notifier): the watermarks, no fetch */
	cr_assert_eq(b->ops->bounds(t, 0, &bd), 0);
	cr_assert_eq(bd.start, 0);
	cr_assert_eq(bd.next, 500);
	cr_assert_eq(f->fetches, 0);
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.start, 0);
	cr_assert_eq(bd.next, 500);
	size_t at = 0;
	char buf[400], key[32];
	for (uint64_t o = 0; o < 500; o++) {
		sbfs_recinfo ri;
		cr_assert_eq(b->ops->stat_record(t, o, SBFS_WANT_STREAM, &ri), 0);
		cr_assert_eq(ri.stream_pos, bd.stream_start + at);
		cr_assert_eq(ri.timestamp_ns, (1700000000000 + (int64_t)o) * 1000000);
		size_t n;
		cr_assert_eq(b->ops->read(t, o, 0, buf, sizeof buf, &n), 0);
		cr_assert_eq(n, ri.value_len);
		cr_assert(memcmp(buf, all + at, n) == 0);
		size_t kl;
		cr_assert_eq(b->ops->read_key(t, o, key, sizeof key, &kl), 0);
		cr_assert_eq(kl, o % 3 ? (size_t)snprintf(buf, sizeof buf, "k%d", (int)o) : 0);
		at += n;
	}
	cr_assert_eq(at, total);
	sbfs_recinfo ri;
	cr_assert_eq(b->ops->stat_record(t, 500, 0, &ri), -ENOENT);
	check_stream(b, t, all, 0, total, 300);
	/* a chunk per fetch of 100 records; the index walk and the reads and
	 * the 300 stream probes are served from the cache */
	cr_assert_leq(f->fetches, 5 + 2, "%d fetches", f->fetches);
	b->ops->close(b);
	free(all);
}

Test(kafka_backend, cache_stays_bounded_and_refetches)
{
	fake *f = fake_new();
	size_t total;
	char *all = fill(fake_topic(f, "big", 1), 20000, 400, 2, &total); /* ~4 MB */
	sbfs_backend *b = open_backend(f, 1 << 20, 0);
	sbfs_topic *t = topic(b, "big");
	check_stream(b, t, all, 0, total, 200);
	int before = f->fetches;
	char buf[512];
	for (uint64_t o = 0; o < 20000; o += 997) {
		size_t n;
		cr_assert_eq(b->ops->read(t, o, 0, buf, sizeof buf, &n), 0);
	}
	cr_assert_gt(f->fetches, before); /* evicted: fetched again */
	b->ops->close(b);
	free(all);
}

Test(kafka_backend, appends_are_acknowledged_and_extend_the_stream)
{
	fake *f = fake_new();
	fake_topic(f, "t", 1);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.stream_end, bd.stream_start);
	sbfs_rec r[3] = { { .value = "a\n", .value_len = 2 },
			  { .value = "bb\n", .value_len = 3, .key = "K", .key_len = 1 },
			  { .value = "ccc\n", .value_len = 4, .timestamp_ns = 5000000000 } };
	uint64_t first = 99;
	cr_assert_eq(b->ops->append(t, r, 3, &first), 0);
	cr_assert_eq(first, 0);
	int fetches = f->fetches;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.next, 3);
	cr_assert_eq(bd.stream_end - bd.stream_start, 9);
	cr_assert_eq(f->fetches, fetches, "own appends extend the index without a fetch");
	char buf[16];
	size_t n;
	cr_assert_eq(b->ops->read_stream(t, bd.stream_start, buf, sizeof buf, &n), 0);
	cr_assert_eq(n, 9);
	cr_assert(memcmp(buf, "a\nbb\nccc\n", 9) == 0);
	cr_assert_eq(f->topics[0].recs[2].ts, 5000);
	/* append_at: only at the next offset (Kafka chooses offsets) */
	cr_assert_eq(b->ops->append_at(t, 7, r, 1), -EINVAL);
	cr_assert_eq(b->ops->append_at(t, 3, r, 1), 0);
	b->ops->close(b);
}

Test(kafka_backend, other_producers_show_up)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	pthread_mutex_lock(&f->m);
	fput(ft, NULL, 0, "hello\n", 6, 1);
	pthread_mutex_unlock(&f->m);
	/* the refresher asks for watermarks every 300 ms */
	for (int i = 0; i < 50 && bd.next == 0; i++) {
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
		cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	}
	cr_assert_eq(bd.next, 1);
	cr_assert_eq(bd.stream_end - bd.stream_start, 6);
	/* a topic made by another client is found by name */
	pthread_mutex_lock(&f->m);
	fake_topic(f, "later", 1);
	pthread_mutex_unlock(&f->m);
	sbfs_topic *l = NULL;
	for (int i = 0; i < 20 && b->ops->topic_get(b, "later", &l) != 0; i++)
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	cr_assert_not_null(l);
	b->ops->close(b);
}

Test(kafka_backend, mkdir_creates_a_topic)
{
	fake *f = fake_new();
	fake_topic(f, "old", 1);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	cr_assert_eq(b->ops->topic_create(b, "new.topic_1"), 0);
	cr_assert_str_eq(f->last_created, "new.topic_1");
	cr_assert_eq(f->created_parts, 1);
	cr_assert_eq(f->created_repl, 3);
	topic(b, "new.topic_1");
	cr_assert_eq(b->ops->topic_create(b, "old"), -EEXIST);
	cr_assert_eq(b->ops->topic_create(b, "bad/name"), -EINVAL);
	cr_assert_eq(b->ops->topic_create(b, ".hidden"), -EINVAL);
	b->ops->close(b);
}

Test(kafka_backend, rmdir_only_when_allowed_and_empty)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	fput(ft, NULL, 0, "x", 1, 1);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	cr_assert_eq(b->ops->topic_remove(b, "t"), -ENOTEMPTY);
	ft->lo = 1; /* emptied */
	cr_assert_eq(b->ops->topic_remove(b, "t"), -EPERM);
	cr_assert_eq(f->deleted_topics, 0);
	b->ops->close(b);

	f = fake_new();
	ft = fake_topic(f, "t", 1);
	b = open_backend(f, 8 << 20, 1);
	sbfs_topic *t = topic(b, "t");
	cr_assert_eq(b->ops->topic_remove(b, "t"), 0);
	cr_assert_eq(f->deleted_topics, 1);
	sbfs_topic *g;
	cr_assert_eq(b->ops->topic_get(b, "t", &g), -ENOENT);
	sbfs_rec r = { .value = "x", .value_len = 1 };
	cr_assert_eq(b->ops->append(t, &r, 1, NULL), -ENOENT); /* the handle stays valid */
	b->ops->close(b);
}

Test(kafka_backend, rm_of_the_oldest_deletes_records)
{
	fake *f = fake_new();
	size_t total;
	char *all = fill(fake_topic(f, "t", 1), 3000, 200, 3, &total);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	sbfs_bounds bd0, bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd0), 0);
	sbfs_recinfo ri;
	cr_assert_eq(b->ops->stat_record(t, 1234, SBFS_WANT_STREAM, &ri), 0);
	cr_assert_eq(b->ops->delete_before(t, 1234), 0);
	cr_assert_eq(f->deleted_before, 1234);
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.start, 1234);
	cr_assert_eq(bd.stream_start, ri.stream_pos);
	cr_assert_eq(bd.stream_end, bd0.stream_end);
	char c;
	size_t n;
	cr_assert_eq(b->ops->read_stream(t, bd.stream_start - 1, &c, 1, &n), -ENOENT);
	cr_assert_eq(b->ops->stat_record(t, 1233, 0, &ri), -ENOENT);
	check_stream(b, t, all, ri.stream_pos - bd0.stream_start, total, 100);
	b->ops->close(b);
	free(all);
}

Test(kafka_backend, retention_by_the_cluster_moves_the_start)
{
	fake *f = fake_new();
	size_t total;
	ftopic *ft = fake_topic(f, "t", 1);
	char *all = fill(ft, 3000, 200, 4, &total);
	sbfs_backend *b = open_backend(f, 1 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	sbfs_bounds bd0, bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd0), 0);
	uint64_t pos = 0;
	for (int o = 0; o < 2001; o++)
		pos += ft->recs[o].len;
	pthread_mutex_lock(&f->m);
	ft->lo = 2001; /* gone by the cluster's retention, not through us */
	pthread_mutex_unlock(&f->m);
	for (int i = 0; i < 50; i++) {
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
		cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
		if (bd.start == 2001)
			break;
	}
	cr_assert_eq(bd.start, 2001);
	cr_assert_eq(bd.stream_start - bd0.stream_start, pos);
	check_stream(b, t, all, pos, total, 100);
	b->ops->close(b);
	free(all);
}

Test(kafka_backend, unreachable_cluster_fails_in_time, .timeout = 20)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	fput(ft, NULL, 0, "x", 1, 1);
	sbfs_backend *b = open_backend(f, 8 << 20, 1);
	sbfs_topic *t = topic(b, "t");
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0);
	pthread_mutex_lock(&f->m);
	f->down = 1;
	pthread_mutex_unlock(&f->m);
	sbfs_rec r = { .value = "y", .value_len = 1 };
	cr_assert_eq(b->ops->append(t, &r, 1, NULL), -ETIMEDOUT);
	cr_assert_eq(b->ops->topic_create(b, "n"), -ETIMEDOUT);
	cr_assert_eq(b->ops->delete_before(t, 1), -ETIMEDOUT);
	cr_assert_eq(b->ops->bounds(t, SBFS_WANT_STREAM, &bd), 0); /* what it knew */
	cr_assert_eq(bd.next, 1);
	char c;
	size_t n;
	cr_assert_eq(b->ops->read_stream(t, bd.stream_start, &c, 1, &n), 0); /* cached */
	pthread_mutex_lock(&f->m);
	f->down = 0;
	pthread_mutex_unlock(&f->m);
	cr_assert_eq(b->ops->append(t, &r, 1, NULL), 0);
	b->ops->close(b);
	sbfs_backend *b2 = NULL;
	f = fake_new();
	f->down = 1;
	sbfs_kafka_config cfg;
	sbfs_kafka_config_init(&cfg);
	cr_assert_eq(sbfs_backend_kafka_open_client(&cfg, &f->base, &b2), -ETIMEDOUT);
}

Test(kafka_backend, config_keys)
{
	sbfs_kafka_config c;
	char err[256];
	sbfs_kafka_config_init(&c);
	cr_assert_eq(sbfs_kafka_config_set(&c, "bootstrap.servers", "h:1", err, sizeof err), 0);
	cr_assert_eq(sbfs_kafka_config_set(&c, "bootstrap.servers", "h:2", err, sizeof err), 0);
	cr_assert_eq(sbfs_kafka_config_set(&c, "acks", "1", err, sizeof err), 0);
	cr_assert_eq(c.nprops, 2);
	cr_assert_str_eq(c.props[0].value, "h:2");
	cr_assert_eq(sbfs_kafka_config_set(&c, "cache_bytes", "12345678", err, sizeof err), 0);
	cr_assert_eq(c.cache_bytes, 12345678);
	cr_assert_eq(sbfs_kafka_config_set(&c, "timeout_ms", "x", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "timeout_ms") != NULL);
	cr_assert_eq(sbfs_kafka_config_set(&c, "allow_topic_delete", "true", err, sizeof err), 0);
	cr_assert_eq(c.allow_topic_delete, 1);
	sbfs_kafka_config_free(&c);
}

typedef struct hseen {
	char all[256];
	int n;
} hseen;

static int collect(void *arg, const char *name, size_t nl, const void *v, size_t vl)
{
	hseen *h = arg;
	size_t at = strlen(h->all);
	snprintf(h->all + at, sizeof h->all - at, "%.*s=%.*s;", (int)nl, name, (int)vl,
		 (const char *)v);
	h->n++;
	return 0;
}

Test(kafka_backend, headers_come_through_the_cache_in_order)
{
	fake *f = fake_new();
	size_t total;
	char *all = fill(fake_topic(f, "t", 1), 50, 100, 6, &total);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	for (int64_t o = 0; o < 50; o++) {
		hseen h = { "", 0 };
		find_ctx x = { .hfn = collect, .harg = &h };
		cr_assert_eq(kpart_record((kpart *)t, o, &x), 0);
		if (o % 2) {
			char want[64];
			snprintf(want, sizeof want, "trace=v%ld;trace=;", (long)o);
			cr_assert_str_eq(h.all, want);
		} else {
			cr_assert_eq(h.n, 0);
		}
	}
	b->ops->close(b);
	free(all);
}

static int collect_h(void *arg, const sbfs_header *h)
{
	return collect(arg, h->name, h->name_len, h->value, h->value_len);
}

/* Through the interface (the xattrs): a name Kafka repeats is shown once,
 * with its first value; a record without headers has none. */
Test(kafka_backend, read_headers_gives_each_name_once)
{
	fake *f = fake_new();
	size_t total;
	char *all = fill(fake_topic(f, "t", 1), 10, 100, 6, &total);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	cr_assert_not_null(b->ops->read_headers);
	for (int64_t o = 0; o < 10; o++) {
		hseen h = { "", 0 };
		cr_assert_eq(b->ops->read_headers(t, (uint64_t)o, collect_h, &h), 0);
		char want[64] = "";
		if (o % 2)
			snprintf(want, sizeof want, "trace=v%ld;", (long)o);
		cr_assert_str_eq(h.all, want);
	}
	cr_assert_eq(b->ops->read_headers(t, 99, collect_h, &(hseen){ "", 0 }), -ENOENT);
	b->ops->close(b);
	free(all);
}

Test(kafka_backend, since_by_time_from_the_index_then_the_cluster)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	/* times 1000, 3000, 2000 (a clock step back), 4000, 5000 ms */
	int64_t ts[] = { 1000, 3000, 2000, 4000, 5000 };
	for (int i = 0; i < 5; i++)
		fput(ft, NULL, 0, "x", 1, ts[i]);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	uint64_t off = 99;
	cr_assert_eq(b->ops->seek_time(t, 0, &off), 0);
	cr_assert_eq(off, 0, "a time before the first record: the first");
	cr_assert_eq(b->ops->seek_time(t, 2000 * 1000000LL, &off), 0);
	cr_assert_eq(off, 1, "the running maximum: 3000 at offset 1 is the first >= 2000");
	cr_assert_eq(b->ops->seek_time(t, 3500 * 1000000LL + 1, &off), 0);
	cr_assert_eq(off, 3);
	cr_assert_eq(b->ops->seek_time(t, 4000 * 1000000LL + 1, &off), 0);
	cr_assert_eq(off, 4, "a time between milliseconds rounds up");
	cr_assert_eq(f->time_queries, 0, "indexed records answer: no round trip");
	cr_assert_eq(b->ops->seek_time(t, 9000 * 1000000LL, &off), 0);
	cr_assert_eq(off, 5, "after the last: the cluster says none, the next offset");
	cr_assert_eq(f->time_queries, 1);
	/* a record the index has not seen yet: the cluster's answer */
	pthread_mutex_lock(&f->m);
	fput(ft, NULL, 0, "y", 1, 9500);
	pthread_mutex_unlock(&f->m);
	uint64_t got = 0;
	for (int i = 0; i < 300; i++) { /* (the refresher moves the high watermark) */
		cr_assert_eq(b->ops->seek_time(t, 9000 * 1000000LL, &got), 0);
		if (got == 5) {
			sbfs_bounds bd;
			cr_assert_eq(b->ops->bounds(t, 0, &bd), 0);
			if (bd.next == 6)
				break;
		}
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	cr_assert_eq(got, 5);
	pthread_mutex_lock(&f->m);
	f->down = 1;
	pthread_mutex_unlock(&f->m);
	cr_assert_eq(b->ops->seek_time(t, 0, &off), 0);
	cr_assert_eq(off, 0, "the index answers without the cluster");
	cr_assert_eq(b->ops->seek_time(t, 99000 * 1000000LL, &off), -ETIMEDOUT,
		     "what only the cluster can answer fails with its error, in time");
	b->ops->close(b);
}

/* Generated: 3000 records of up to 2000 bytes (about 45 index entries)
 * with times that step back often; every answer is the first retained
 * record whose time reaches T (the running maximum's answer), also after
 * records were deleted (DeleteRecords), whose times no longer count. */
Test(kafka_backend, since_is_the_running_maximum_over_generated_times)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	enum { N = 3000 };
	static int64_t ts[N];
	static char val[2001];
	memset(val, 'v', sizeof val);
	srand(23);
	int64_t now = 1700000000000;
	for (int i = 0; i < N; i++) {
		now += rand() % 20;
		ts[i] = rand() % 7 ? now : now - rand() % 5000; /* a clock step back */
		if (rand() % 97 == 0)
			ts[i] = now + 3000; /* one from the future */
		fput(ft, NULL, 0, val, (size_t)(rand() % 2001), ts[i]);
	}
	sbfs_backend *b = open_backend(f, 64 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	for (int round = 0; round < 2; round++) {
		int64_t lo = round ? 1234 : 0;
		if (round)
			cr_assert_eq(b->ops->delete_before(t, (uint64_t)lo), 0);
		for (int q = 0; q < 400; q++) {
			int64_t T = q % 4 ? ts[0] - 100 + rand() % (now - ts[0] + 3300)
					  : ts[rand() % N];
			int64_t want = N;
			for (int64_t o = lo; o < N; o++)
				if (ts[o] >= T) {
					want = o;
					break;
				}
			uint64_t off;
			cr_assert_eq(b->ops->seek_time(t, T * 1000000, &off), 0);
			cr_assert_eq(off, (uint64_t)want, "round %d, T %ld: %lu, want %ld", round,
				     (long)T, (unsigned long)off, (long)want);
		}
	}
	b->ops->close(b);
}

/* ---- topics of several partitions ---- */

/* CRC-32 as librdkafka's rd_crc32 (and zlib's): the partitioner's hash */
static uint32_t crc32_ref(const char *s)
{
	uint32_t c = 0xffffffffu;
	for (; *s; s++) {
		c ^= (unsigned char)*s;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
	}
	return ~c;
}

Test(kafka_backend, a_topic_of_several_partitions_holds_one_topic_each)
{
	fake *f = fake_new();
	ftopic *w = fake_topic(f, "wide", 4);
	size_t total[4];
	char *all[4];
	for (int i = 0; i < 4; i++)
		all[i] = fill(&w[i], 50 + 10 * i, 100, (unsigned)(7 + i), &total[i]);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *g = topic(b, "wide"), *p;
	uint32_t n = 0;
	cr_assert_eq(b->ops->parts(g, &n), 0);
	cr_assert_eq(n, 4);
	/* the topic itself holds nothing */
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(g, SBFS_WANT_STREAM, &bd), 0);
	cr_assert_eq(bd.next, 0);
	cr_assert_eq(bd.stream_end, 0);
	sbfs_recinfo ri;
	cr_assert_eq(b->ops->stat_record(g, 0, 0, &ri), -ENOENT);
	size_t nr = 1;
	char c;
	cr_assert_eq(b->ops->read_stream(g, 0, &c, 1, &nr), 0);
	cr_assert_eq(nr, 0);
	cr_assert_eq(b->ops->part_get(g, 4, &p), -ENOENT);
	/* each partition is a topic of its own: its records, its stream */
	for (uint32_t i = 0; i < 4; i++) {
		cr_assert_eq(b->ops->part_get(g, i, &p), 0);
		cr_assert_eq(b->ops->parts(p, &n), 0);
		cr_assert_eq(n, 0);
		cr_assert_eq(b->ops->bounds(p, 0, &bd), 0);
		cr_assert_eq(bd.next, 50 + 10 * i);
		check_stream(b, p, all[i], 0, total[i], 50);
	}
	b->ops->close(b);
	for (int i = 0; i < 4; i++)
		free(all[i]);
}

/* Records with a key go where librdkafka's default partitioner puts
 * them (CRC-32 of the key modulo the count: where kcat -K puts them);
 * without a key, one partition per append, in turn. */
Test(kafka_backend, appends_to_the_topic_go_to_a_partition_by_key)
{
	fake *f = fake_new();
	ftopic *w = fake_topic(f, "orders", 3);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *g = topic(b, "orders");
	int64_t want[3] = { 0 };
	for (int i = 0; i < 300; i++) {
		char key[32];
		int kl = snprintf(key, sizeof key, "customer-%d", i * 7919);
		sbfs_header h = { "trace", 5, "x", 1 };
		sbfs_rec r = { .key = key, .key_len = (uint32_t)kl, .value = "v", .value_len = 1,
			       .headers = &h, .n_headers = 1 };
		uint64_t first = 99999;
		cr_assert_eq(b->ops->append(g, &r, 1, &first), 0);
		uint32_t to = crc32_ref(key) % 3;
		cr_assert_eq(first, (uint64_t)want[to], "key %s", key);
		want[to]++;
		/* the same key again: the same partition */
		cr_assert_eq(b->ops->append(g, &r, 1, &first), 0);
		cr_assert_eq(first, (uint64_t)want[to]++);
	}
	cr_assert_eq(f->headers_produced, 600);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(w[i].hi, want[i]);
		cr_assert_geq(want[i], 100, "partition %d got %ld", i, (long)want[i]);
		cr_assert(w[i].recs[0].len == 1 && w[i].recs[0].val[0] == 'v');
	}
	/* a batch of keyless records: all of it to one partition, the next
	 * batch to the next */
	sbfs_rec lines[5];
	for (int i = 0; i < 5; i++)
		lines[i] = (sbfs_rec){ .value = "line", .value_len = 4 };
	int64_t before[3] = { w[0].hi, w[1].hi, w[2].hi };
	for (int k = 0; k < 3; k++)
		cr_assert_eq(b->ops->append(g, lines, 5, NULL), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(w[i].hi - before[i], 5, "partition %d", i);
	/* a batch of several keys is split by partition */
	sbfs_rec mixed[6];
	char keys[6][16];
	int64_t mw[3] = { w[0].hi, w[1].hi, w[2].hi };
	for (int i = 0; i < 6; i++) {
		int kl = snprintf(keys[i], sizeof keys[i], "m%d", i);
		mixed[i] = (sbfs_rec){ .key = keys[i], .key_len = (uint32_t)kl, .value = "m",
				       .value_len = 1 };
		mw[crc32_ref(keys[i]) % 3]++;
	}
	cr_assert_eq(b->ops->append(g, mixed, 6, NULL), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(w[i].hi, mw[i]);
	cr_assert_eq(b->ops->append_at(g, 0, lines, 1), -EINVAL);
	uint64_t off;
	cr_assert_eq(b->ops->seek_time(g, 0, &off), -ENOTSUP);
	b->ops->close(b);
}

/* mkdir with num.partitions > 1 (CreateTopics: not in the 2.0.2 mock)
 * makes a topic of partitions; rmdir deletes it only when every
 * partition is empty. */
Test(kafka_backend, mkdir_and_rmdir_of_a_topic_of_several_partitions)
{
	fake *f = fake_new();
	sbfs_kafka_config cfg;
	sbfs_kafka_config_init(&cfg);
	cfg.num_partitions = 3;
	cfg.allow_topic_delete = 1;
	sbfs_backend *b = NULL;
	cr_assert_eq(sbfs_backend_kafka_open_client(&cfg, &f->base, &b), 0);
	cr_assert_eq(b->ops->topic_create(b, "made"), 0);
	cr_assert_eq(f->created_parts, 3);
	sbfs_topic *g = topic(b, "made"), *p;
	uint32_t n = 0;
	cr_assert_eq(b->ops->parts(g, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(b->ops->part_get(g, 2, &p), 0);
	sbfs_rec r = { .value = "x", .value_len = 1 };
	cr_assert_eq(b->ops->append(p, &r, 1, NULL), 0);
	cr_assert_eq(b->ops->topic_remove(b, "made"), -ENOTEMPTY);
	pthread_mutex_lock(&f->m);
	fpart_of(f, "made", 2)->lo = 1; /* emptied by retention */
	pthread_mutex_unlock(&f->m);
	cr_assert_eq(b->ops->topic_remove(b, "made"), 0);
	cr_assert_eq(f->deleted_topics, 1);
	cr_assert_eq(b->ops->append(p, &r, 1, NULL), -ENOENT);
	cr_assert_eq(b->ops->append(g, &r, 1, NULL), -ENOENT);
	sbfs_bounds bd;
	cr_assert_eq(b->ops->bounds(g, 0, &bd), -ENOENT);
	b->ops->close(b);
}

/* ---- .keys/ (kafka_keys.c) ---- */

typedef struct kmodel {
	int64_t off[200];       /* the latest record of key k%03d, or -1 */
	int tomb[200];
	uint32_t len[200];
} kmodel;

typedef struct klist {
	char keys[400][16];
	sbfs_recinfo ri[400];
	int n;
} klist;

static int klist_cb(void *arg, const void *key, size_t len, const sbfs_recinfo *ri)
{
	klist *l = arg;
	cr_assert_lt(len, 16);
	memcpy(l->keys[l->n], key, len);
	l->keys[l->n][len] = 0;
	l->ri[l->n++] = *ri;
	return 0;
}

/* What list_keys and get_key answer is the model: every key whose latest
 * record (not below lo) is not a tombstone, in byte order, with that
 * record; a listing resumed at a key gives the rest. */
static void check_keys(sbfs_backend *b, sbfs_topic *t, const kmodel *m, int64_t lo)
{
	klist l = { .n = 0 };
	cr_assert_eq(b->ops->list_keys(t, NULL, 0, klist_cb, &l), 0);
	int at = 0;
	for (int k = 0; k < 200; k++) {
		char key[16];
		int kl = snprintf(key, sizeof key, "k%03d", k);
		sbfs_recinfo ri;
		int rc = b->ops->get_key(t, key, (size_t)kl, &ri);
		if (m->off[k] < lo || m->tomb[k]) {
			cr_assert_eq(rc, -ENOENT, "%s: %d", key, rc);
			continue;
		}
		cr_assert_eq(rc, 0, "%s", key);
		cr_assert_eq(ri.offset, (uint64_t)m->off[k], "%s", key);
		cr_assert_eq(ri.value_len, m->len[k]);
		cr_assert_eq(ri.key_len, (uint32_t)kl);
		cr_assert_lt(at, l.n, "%s not listed", key);
		cr_assert_str_eq(l.keys[at], key);
		cr_assert_eq(l.ri[at].offset, (uint64_t)m->off[k]);
		at++;
	}
	cr_assert_eq(at, l.n, "listed keys the model does not have");
	if (l.n > 2) {
		klist r = { .n = 0 };
		const char *from = l.keys[l.n / 2];
		cr_assert_eq(b->ops->list_keys(t, from, strlen(from), klist_cb, &r), 0);
		cr_assert_eq(r.n, l.n - l.n / 2);
		cr_assert_str_eq(r.keys[0], from);
	}
}

Test(kafka_backend, keys_are_each_keys_latest_record)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	kmodel m;
	for (int k = 0; k < 200; k++)
		m.off[k] = -1;
	srand(11);
	/* 3000 records of 200 keys (some without a key, some tombstones),
	 * in fetches of 100: the map is made across many chunks */
	for (int64_t o = 0; o < 3000; o++) {
		int k = rand() % 200, keyed = rand() % 8, tomb = keyed && rand() % 10 == 0;
		char key[16], val[64];
		int kl = snprintf(key, sizeof key, "k%03d", k);
		int vl = tomb ? 0 : snprintf(val, sizeof val, "v%ld-%d", (long)o, rand() % 1000);
		fput(ft, keyed ? key : NULL, keyed ? (size_t)kl : 0, val, (size_t)vl,
		     1700000000000 + o);
		ft->recs[o].tomb = tomb;
		if (keyed) {
			m.off[k] = o;
			m.tomb[k] = tomb;
			m.len[k] = (uint32_t)vl;
		}
	}
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "t");
	check_keys(b, t, &m, 0);
	int fetches = f->fetches;
	check_keys(b, t, &m, 0);
	cr_assert_eq(f->fetches, fetches, "the map is made once: no fetch the second time");
	/* appends through the backend: a newer value wins, a tombstone
	 * removes the key (a Kafka null value), a new key shows */
	sbfs_rec recs[3] = {
		{ .key = "k005", .key_len = 4, .value = "newer", .value_len = 5 },
		{ .key = "k006", .key_len = 4, .flags = SBFS_REC_TOMBSTONE },
		{ .key = "k199", .key_len = 4, .value = "last", .value_len = 4 },
	};
	uint64_t first;
	cr_assert_eq(b->ops->append(t, recs, 3, &first), 0);
	cr_assert_eq(first, 3000);
	cr_assert(ft->recs[3001].tomb, "the tombstone went to the cluster as a null value");
	m.off[5] = 3000, m.tomb[5] = 0, m.len[5] = 5;
	m.off[6] = 3001, m.tomb[6] = 1;
	m.off[199] = 3002, m.tomb[199] = 0, m.len[199] = 4;
	check_keys(b, t, &m, 0);
	sbfs_recinfo ri;
	cr_assert_eq(b->ops->stat_record(t, 3001, 0, &ri), 0);
	cr_assert(ri.flags & SBFS_REC_TOMBSTONE);
	cr_assert_eq(b->ops->stat_record(t, 3000, 0, &ri), 0);
	cr_assert_eq(ri.flags, 0);
	/* records deleted (DeleteRecords): keys whose latest record went
	 * have none */
	cr_assert_eq(b->ops->delete_before(t, 1500), 0);
	check_keys(b, t, &m, 1500);
	/* another producer's record shows once the refresher sees it */
	pthread_mutex_lock(&f->m);
	fput(ft, "k007", 4, "other", 5, 1800000000000);
	pthread_mutex_unlock(&f->m);
	m.off[7] = 3003, m.tomb[7] = 0, m.len[7] = 5;
	for (int i = 0; i < 300; i++) {
		if (b->ops->get_key(t, "k007", 4, &ri) == 0 && ri.offset == 3003)
			break;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	check_keys(b, t, &m, 1500);
	b->ops->close(b);
}

Test(kafka_backend, keys_past_keys_bytes_fail_with_enobufs)
{
	fake *f = fake_new();
	ftopic *ft = fake_topic(f, "t", 1);
	ftopic *small = fake_topic(f, "s", 1);
	for (int i = 0; i < 5000; i++) {
		char key[16];
		int kl = snprintf(key, sizeof key, "key-%d", i);
		fput(ft, key, (size_t)kl, "v", 1, 1700000000000 + i);
	}
	fput(small, "a", 1, "x", 1, 1700000000000);
	sbfs_kafka_config cfg;
	sbfs_kafka_config_init(&cfg);
	cfg.cache_bytes = 8 << 20;
	cfg.keys_bytes = 64 << 10; /* 5000 keys need ~400 KiB */
	sbfs_backend *b = NULL;
	cr_assert_eq(sbfs_backend_kafka_open_client(&cfg, &f->base, &b), 0);
	sbfs_topic *t = topic(b, "t");
	sbfs_recinfo ri;
	klist l = { .n = 0 };
	cr_assert_eq(b->ops->get_key(t, "key-1", 5, &ri), -ENOBUFS);
	cr_assert_eq(b->ops->get_key(t, "key-1", 5, &ri), -ENOBUFS, "stays refused");
	cr_assert_eq(b->ops->list_keys(t, NULL, 0, klist_cb, &l), -ENOBUFS);
	cr_assert_eq(l.n, 0, "nothing partial");
	/* the refused map gave its memory back: another topic's fits */
	cr_assert_eq(b->ops->get_key(topic(b, "s"), "a", 1, &ri), 0);
	cr_assert_eq(ri.offset, 0);
	cr_assert_eq(sbfs_kafka_config_set(&cfg, "keys_bytes", "12", (char[128]){ 0 }, 128),
		     -EINVAL);
	b->ops->close(b);
}

Test(kafka_backend, keys_of_a_topic_of_several_partitions_are_per_partition)
{
	fake *f = fake_new();
	fake_topic(f, "wide", 3);
	sbfs_backend *b = open_backend(f, 8 << 20, 0);
	sbfs_topic *t = topic(b, "wide");
	sbfs_rec recs[60];
	char keys[60][8];
	for (int i = 0; i < 60; i++) {
		snprintf(keys[i], sizeof keys[i], "g%02d", i);
		recs[i] = (sbfs_rec){ .key = keys[i], .key_len = 3, .value = keys[i],
				      .value_len = 3 };
	}
	cr_assert_eq(b->ops->append(t, recs, 60, NULL), 0);
	sbfs_recinfo ri;
	klist l = { .n = 0 };
	cr_assert_eq(b->ops->get_key(t, "g01", 3, &ri), -ENOTSUP);
	cr_assert_eq(b->ops->list_keys(t, NULL, 0, klist_cb, &l), -ENOTSUP);
	/* each key in the partition its key picks, listed there in order */
	int listed = 0;
	for (uint32_t p = 0; p < 3; p++) {
		sbfs_topic *pt;
		cr_assert_eq(b->ops->part_get(t, p, &pt), 0);
		klist pl = { .n = 0 };
		cr_assert_eq(b->ops->list_keys(pt, NULL, 0, klist_cb, &pl), 0);
		for (int i = 0; i < pl.n; i++) {
			cr_assert_eq(crc32_ref(pl.keys[i]) % 3, p, "%s in %u", pl.keys[i], p);
			cr_assert(i == 0 || strcmp(pl.keys[i - 1], pl.keys[i]) < 0);
			cr_assert_eq(b->ops->get_key(pt, pl.keys[i], 3, &ri), 0);
			cr_assert_eq(ri.offset, pl.ri[i].offset);
		}
		listed += pl.n;
	}
	cr_assert_eq(listed, 60);
	/* a tombstone through the topic removes the key from its partition */
	sbfs_rec tomb = { .key = "g07", .key_len = 3, .flags = SBFS_REC_TOMBSTONE };
	cr_assert_eq(b->ops->append(t, &tomb, 1, NULL), 0);
	sbfs_topic *pt;
	cr_assert_eq(b->ops->part_get(t, crc32_ref("g07") % 3, &pt), 0);
	cr_assert_eq(b->ops->get_key(pt, "g07", 3, &ri), -ENOENT);
	b->ops->close(b);
}
