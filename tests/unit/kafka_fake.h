/*
 * kafka_fake.h - a fake Kafka cluster at the client interface
 * (fs/kafka_client.h) for the Kafka backend's unit tests (test_kafka_*.c,
 * which CMakeLists.txt links with kafka_fake.c and the backend's sources).
 *
 * librdkafka 2.0.2's mock cluster has no CreateTopics, DeleteTopics,
 * DeleteRecords or DescribeConfigs; the fake records what the backend
 * asked for instead, and answers a topic's cleanup.policy. One
 * fake per test (Criterion runs each test in its own process): fake_new()
 * makes it, the backend's close frees it.
 */
#ifndef SB_TEST_KAFKA_FAKE_H
#define SB_TEST_KAFKA_FAKE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka.h"
#include "kafka_part.h"

typedef struct frec {
	int64_t ts;
	char *key;
	size_t key_len;
	char *val;
	size_t len;
	int tomb;               /* a null value */
	int gone;               /* no record at this offset (compacted away, a
				 * transaction marker): fetch and ListOffsets
				 * skip it, as Kafka does */
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
	char policy[32];        /* cleanup.policy (partition 0's is the
				 * topic's; "": Kafka's default, delete) */
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
	int config_queries;     /* DescribeConfigs calls */
	int config_err;         /* their answer when not 0 (-EACCES: no
				 * permission, -EOPNOTSUPP: librdkafka's mock) */
	char config_topic[64];  /* the topic last asked about */
	int created_parts, created_repl, deleted_topics;
	uint64_t headers_produced;
	int64_t deleted_before;
	char last_created[64];
} fake;

/* The fake behind a client handle. */
fake *F(kc *c);
/* Partition 0 of topic `name`, or partition `part` of it; NULL if none. */
ftopic *ftopic_of(fake *f, const char *name);
ftopic *fpart_of(fake *f, const char *name, int part);
/* Topic `name` of `parts` partitions; its partition 0. */
ftopic *fadd(fake *f, const char *name, int parts);
/* Append a record (key may be NULL) to one partition. */
void fput(ftopic *t, const void *key, size_t klen, const void *v, size_t len, int64_t ts);
/* Make offset off of t hold no record (fhole: a gap, as compaction or a
 * transaction marker leaves). */
void fhole(ftopic *t, int64_t off);
/* Lines the backend logged (sbfs_log) in this process. */
int fake_logs(void);
/* A new empty cluster, the one this test's partitions talk to. */
fake *fake_new(void);
ftopic *fake_topic(fake *f, const char *name, int parts);

/* The backend over the fake: cache bytes, rmdir allowed or not. */
sbfs_backend *open_backend(fake *f, size_t cache, int allow_delete);
/* Topic `name` of backend b (asserts it exists). */
sbfs_topic *topic(sbfs_backend *b, const char *name);
/* A stream of n records of random sizes (0..maxlen) into t, every third
 * without a key; returns their concatenated payloads (caller frees) and
 * their total length in *total. */
char *fill(ftopic *t, int n, int maxlen, unsigned seed, size_t *total);
/* `probes` reads of random ranges of t's .log from stream position `from`
 * give the bytes of `all` (the payloads from `from` on, `total` in all). */
void check_stream(sbfs_backend *b, sbfs_topic *t, const char *all, uint64_t from,
		  size_t total, int probes);

#endif
