/*
 * kafka_rk.h - what the files of the librdkafka client (kafka_client.c:
 * the client, metadata, watermarks, fetches; kafka_produce.c: produce and
 * its delivery reports; kafka_admin.c: CreateTopics, DeleteTopics,
 * DeleteRecords, DescribeConfigs) share. Only they include it.
 */
#ifndef SBFS_KAFKA_RK_H
#define SBFS_KAFKA_RK_H

#include <librdkafka/rdkafka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_client.h"

typedef struct rk_client {
	kc base;
	rd_kafka_t *prod, *cons;
	int timeout_ms;
	size_t msg_max;
	pthread_t poller;
	atomic_int stop;
	atomic_int jobs;        /* watermark queries out (wm_run threads) */
	pthread_mutex_t plock;  /* guards parts, nparts */
	kc_part **parts;
	size_t nparts;
} rk_client;

struct kc_part {
	rk_client *c;
	char *topic;
	int32_t part;
	rd_kafka_topic_t *prkt, *crkt;
	pthread_mutex_t flock;  /* guards started, pos: one fetch at a time */
	int started;
	int64_t pos;            /* where the consumer stands */
	atomic_int wm_busy;     /* a watermark query is out */
	atomic_int tm_busy;     /* an offsets-for-times query is out */
};

/* kafka_client.c: Kafka's error as a negative errno (kafka_client.h's);
 * a monotonic clock in ms. */
int rk_map_err(rd_kafka_resp_err_t e);
int64_t rk_now_ms(void);

/* kafka_produce.c: kc_ops.produce, and the producer's delivery report
 * callback (set in its configuration). */
int rk_produce(kc_part *p, const kc_rec *recs, size_t n, int64_t *offsets);
void rk_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* kafka_admin.c: kc_ops.create_topic, delete_topic, delete_records. */
int rk_create_topic(kc *base, const char *topic, int parts, int repl);
int rk_delete_topic(kc *base, const char *topic);
int rk_delete_records(kc_part *p, int64_t before);
/* kafka_admin.c: kc_ops.topic_config (DescribeConfigs). */
int rk_topic_config(kc *base, const char *topic, const char *name, int wait_ms, char *value,
		    size_t len);

#endif
