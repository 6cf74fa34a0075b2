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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_fake.h"

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
	cr_assert_eq(c.ls_gaps, SBFS_KAFKA_GAPS_AUTO);
	cr_assert_eq(sbfs_kafka_config_set(&c, "ls_gaps", "skip", err, sizeof err), 0);
	cr_assert_eq(c.ls_gaps, SBFS_KAFKA_GAPS_SKIP);
	cr_assert_eq(sbfs_kafka_config_set(&c, "ls_gaps", "list", err, sizeof err), 0);
	cr_assert_eq(c.ls_gaps, SBFS_KAFKA_GAPS_LIST);
	cr_assert_eq(sbfs_kafka_config_set(&c, "ls_gaps", "compact", err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "ls_gaps") != NULL);
	cr_assert_eq(c.ls_gaps, SBFS_KAFKA_GAPS_LIST);
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
