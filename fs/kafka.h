/*
 * kafka.h - the Kafka backend (SPEC §8): its settings, the [kafka] section,
 * and its opening. Everything Kafka-specific lives behind this header and
 * backend.h; see backend_kafka.c for how offsets become .log positions.
 */
#ifndef SBFS_KAFKA_H
#define SBFS_KAFKA_H

#include <stddef.h>

#include "backend.h"
#include "kafka_client.h"

typedef struct sbfs_kafka_config {
	kc_prop *props;         /* librdkafka properties, passed through */
	size_t nprops;
	size_t cache_bytes;     /* cache_bytes: fetched records kept (64 MiB) */
	int timeout_ms;         /* timeout_ms: every cluster call (30000) */
	int num_partitions;     /* num.partitions: of a topic made by mkdir (1) */
	int replication;        /* replication.factor: (-1: the broker's) */
	int allow_topic_delete; /* allow_topic_delete: rmdir deletes a topic */
	size_t keys_bytes;      /* keys_bytes: memory of the .keys/ maps (64 MiB) */
	int ls_gaps;            /* ls_gaps: SBFS_KAFKA_GAPS_* (auto) */
} sbfs_kafka_config;

/* ls_gaps: how ls finds offsets without a record (compaction, transaction
 * markers). Kafka tells them only by a fetch, so skipping them reads the
 * whole partition. */
enum {
	SBFS_KAFKA_GAPS_AUTO,   /* skip them in topics whose cleanup.policy has
				 * compact (asked once per topic), list them
				 * elsewhere */
	SBFS_KAFKA_GAPS_SKIP,   /* skip them everywhere */
	SBFS_KAFKA_GAPS_LIST,   /* list every offset from the watermarks */
};

void sbfs_kafka_config_init(sbfs_kafka_config *c);
/* One key of [kafka] (or -o kafka.KEY=VALUE): ours, or a librdkafka
 * property (checked when the client starts). -EINVAL with a message. */
int sbfs_kafka_config_set(sbfs_kafka_config *c, const char *key, const char *value,
			  char *err, size_t errlen);
void sbfs_kafka_config_free(sbfs_kafka_config *c);
/* The --help lines of the [kafka] section. */
extern const char sbfs_kafka_usage[];

/* The backend over a librdkafka client made from cfg. The cluster must
 * answer (its topic list) within timeout_ms. (The class, [mount] backend =
 * kafka, is sbfs_backend_kafka in kafka_class.c.) */
int sbfs_backend_kafka_open(const sbfs_kafka_config *cfg, char *err, size_t errlen,
			    sbfs_backend **out);
/* The same over a given client (the unit tests' fake); takes it over,
 * also on failure. */
int sbfs_backend_kafka_open_client(const sbfs_kafka_config *cfg, kc *client,
				   sbfs_backend **out);

#endif
