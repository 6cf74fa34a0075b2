/*
 * test_kafka_parts.c - the Kafka backend (fs/backend_kafka.c) against the
 * fake cluster (kafka_fake.c): topics of several partitions (one topic
 * each, appends routed by key as librdkafka's default partitioner does,
 * mkdir/rmdir of them) and the .keys/ view (fs/kafka_keys.c) checked
 * against a model over generated records.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_fake.h"

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
