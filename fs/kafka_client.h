/*
 * kafka_client.h - what the Kafka backend asks of a cluster, as a vtable.
 *
 * kafka_client.c (with kafka_produce.c, kafka_admin.c) implements it over
 * librdkafka; the unit tests implement it
 * in memory (a fake cluster), which is how the paths librdkafka's mock
 * cannot serve (CreateTopics, DeleteTopics, DeleteRecords, DescribeConfigs)
 * are tested.
 *
 * Every call returns 0 or a negative errno (the client maps Kafka's errors:
 * ETIMEDOUT when the cluster did not answer within its timeout, EIO when it
 * is unreachable, ENOENT for an unknown topic, EEXIST, EFBIG, EACCES,
 * EOPNOTSUPP for a request the cluster does not support). Calls are
 * thread-safe and never block longer than the client's timeout.
 */
#ifndef SBFS_KAFKA_CLIENT_H
#define SBFS_KAFKA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct kc kc;
/* One partition of a topic, as the client knows it: opened once, valid
 * until the client is closed. */
typedef struct kc_part kc_part;

typedef struct kc_header {
	const char *name;       /* name_len bytes (no NUL needed) */
	size_t name_len;
	const void *value;
	size_t value_len;
} kc_header;

typedef struct kc_rec {
	int64_t offset;         /* out of fetch; ignored by produce */
	int64_t timestamp_ms;   /* produce: 0 = now */
	const void *key;        /* NULL: no key */
	size_t key_len;
	const void *value;
	size_t value_len;
	const kc_header *headers;
	size_t nheaders;
	int tombstone;          /* Kafka's null value (value_len 0): a delete
				 * marker for its key (kcat -Z with an empty
				 * value; rm of .keys/K) */
} kc_rec;

/* fn for each topic: its name and partition count. fn returns 0 to go on. */
typedef int (*kc_topic_fn)(void *arg, const char *name, int partitions);
/* fn for each fetched record, in offset order; the record's memory is
 * valid during the call only. */
typedef int (*kc_rec_fn)(void *arg, const kc_rec *r);

typedef struct kc_ops {
	int (*list)(kc *c, kc_topic_fn fn, void *arg);
	int (*part_open)(kc *c, const char *topic, int32_t part, kc_part **out);
	/* First offset held and next offset to be written, waiting at most
	 * wait_ms (0: the client's timeout). */
	int (*watermarks)(kc_part *p, int wait_ms, int64_t *lo, int64_t *hi);
	/* Records from the first at or after `from` on (one fetch's worth,
	 * at least one record); -ENODATA when there is none below the high
	 * watermark yet, -ERANGE when `from` is below the low watermark. */
	int (*fetch)(kc_part *p, int64_t from, kc_rec_fn fn, void *arg);
	/* Produce n records and wait for the cluster's acknowledgement of
	 * every one; *offsets gets each record's offset. On failure some may
	 * have been written (Kafka has no all-or-nothing without
	 * transactions); none of them was acknowledged to the caller. */
	int (*produce)(kc_part *p, const kc_rec *recs, size_t n, int64_t *offsets);
	int (*create_topic)(kc *c, const char *topic, int partitions, int replication);
	int (*delete_topic)(kc *c, const char *topic);
	/* Kafka's ListOffsets by time: the first offset whose timestamp (as
	 * the running maximum, Kafka's time index) is >= ts_ms, or -1 when
	 * there is none. */
	int (*offset_for_time)(kc_part *p, int64_t ts_ms, int64_t *off);
	/* Kafka's DeleteRecords: every record below `before` goes. */
	int (*delete_records)(kc_part *p, int64_t before);
	/* Kafka's DescribeConfigs of one topic config (`name`, e.g.
	 * cleanup.policy) into value (NUL-terminated, cut to len), waiting at
	 * most wait_ms (0: the client's timeout); -ENOENT when the topic or
	 * the config is unknown. */
	int (*topic_config)(kc *c, const char *topic, const char *name, int wait_ms, char *value,
			    size_t len);
	/* Largest record the cluster takes (message.max.bytes). */
	size_t (*record_max)(kc *c);
	void (*close)(kc *c);
} kc_ops;

struct kc {
	const kc_ops *ops;
};

/* One property of librdkafka's (bootstrap.servers, security.protocol,
 * sasl.*, ssl.*, acks, compression.type, ...). */
typedef struct kc_prop {
	char *key, *value;
} kc_prop;

/* A client over librdkafka with these properties, every call bounded by
 * timeout_ms. Fails with -EINVAL (and a message in err) on a property
 * librdkafka refuses. */
int kc_rdkafka_open(const kc_prop *props, size_t nprops, int timeout_ms,
		    char *err, size_t errlen, kc **out);

#endif
