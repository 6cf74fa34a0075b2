/*
 * kafka_fake.c - a fake Kafka cluster for the Kafka backend's unit tests
 * (see kafka_fake.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_fake.h"

static int logged;
int fake_logs(void) { return logged; }

/* The daemon's log (errors.c), here: stderr (and counted). */
void sbfs_log(const char *fmt, ...)
{
	logged++;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the fake cluster ---- */

fake *F(kc *c) { return (fake *)c; }

ftopic *ftopic_of(fake *f, const char *name)
{
	for (int i = 0; i < f->ntopics; i++)
		if (f->topics[i].parts && !f->topics[i].part && !strcmp(f->topics[i].name, name))
			return &f->topics[i];
	return NULL;
}

ftopic *fpart_of(fake *f, const char *name, int part)
{
	for (int i = 0; i < f->ntopics; i++)
		if (f->topics[i].parts && f->topics[i].part == part &&
		    !strcmp(f->topics[i].name, name))
			return &f->topics[i];
	return NULL;
}

/* Topic `name` of `parts` partitions; its partition 0. */
ftopic *fadd(fake *f, const char *name, int parts)
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

void fput(ftopic *t, const void *key, size_t klen, const void *v, size_t len, int64_t ts)
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
	r->gone = 0;
}

void fhole(ftopic *t, int64_t off)
{
	cr_assert(off >= 0 && off < t->hi);
	t->recs[off].gone = 1;
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
	int rc = 0, delivered = 0;
	if (f->down)
		rc = -ETIMEDOUT;
	else if (from < p->t->lo)
		rc = -ERANGE;
	else if (from >= p->t->hi)
		rc = -ENODATA;
	/* fetch_max records (gaps hold none: skipped), at least one */
	for (int64_t o = from, n = 0; rc == 0 && o < p->t->hi && n < f->fetch_max; o++) {
		frec *r = &p->t->recs[o];
		if (r->gone)
			continue;
		n++;
		/* odd offsets carry two headers (Kafka's: ordered, names may repeat) */
		char hv[32];
		int hl = snprintf(hv, sizeof hv, "v%ld", (long)o);
		kc_header hs[2] = { { "trace", 5, hv, (size_t)hl }, { "trace", 5, "", 0 } };
		kc_rec k = { .offset = o, .timestamp_ms = r->ts, .key = r->key,
			     .key_len = r->key_len, .value = r->val, .value_len = r->len,
			     .headers = o % 2 ? hs : NULL, .nheaders = o % 2 ? 2 : 0,
			     .tombstone = r->tomb };
		rc = fn(arg, &k);
		delivered = 1;
	}
	if (rc == 0 && !delivered)
		rc = -ENODATA; /* only gaps up to the high watermark */
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
		if (p->t->recs[o].gone)
			continue;
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

/* DescribeConfigs of cleanup.policy (the only config the fake has). */
static int f_topic_config(kc *c, const char *topic, const char *name, int wait_ms, char *value,
			  size_t len)
{
	(void)wait_ms;
	fake *f = F(c);
	pthread_mutex_lock(&f->m);
	f->config_queries++;
	snprintf(f->config_topic, sizeof f->config_topic, "%s", topic);
	ftopic *t = ftopic_of(f, topic);
	int rc = f->down ? -ETIMEDOUT : f->config_err ? f->config_err : t ? 0 : -ENOENT;
	if (rc == 0 && strcmp(name, "cleanup.policy"))
		rc = -ENOENT;
	if (rc == 0)
		snprintf(value, len, "%s", t->policy[0] ? t->policy : "delete");
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
	.offset_for_time = f_offset_for_time, .topic_config = f_topic_config,
	.record_max = f_record_max, .close = f_close,
};

static fake *the_fake; /* one per test (tests run in their own processes) */
static fake *fake_of(kc_part *p) { (void)p; return the_fake; }

fake *fake_new(void)
{
	fake *f = calloc(1, sizeof *f);
	f->base.ops = &fake_ops;
	pthread_mutex_init(&f->m, NULL);
	f->fetch_max = 100;
	the_fake = f;
	return f;
}

ftopic *fake_topic(fake *f, const char *name, int parts)
{
	return fadd(f, name, parts);
}

/* ---- helpers ---- */

sbfs_backend *open_backend(fake *f, size_t cache, int allow_delete)
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

sbfs_topic *topic(sbfs_backend *b, const char *name)
{
	sbfs_topic *t = NULL;
	cr_assert_eq(b->ops->topic_get(b, name, &t), 0, "topic %s", name);
	return t;
}

/* A stream of n records of random sizes (0..maxlen), also as one buffer. */
char *fill(ftopic *t, int n, int maxlen, unsigned seed, size_t *total)
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

void check_stream(sbfs_backend *b, sbfs_topic *t, const char *all, uint64_t from,
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
