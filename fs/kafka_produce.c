/*
 * kafka_produce.c - kc_ops.produce over librdkafka: a produce call waits
 * for the delivery reports of its own messages only (the client's poller
 * thread serves them), so writers never wait for each other's
 * acknowledgements; the wait is bounded (a little past message.timeout.ms,
 * the client's timeout), never a hang.
 */
#include "backend.h" /* sbfs_log */
#include "kafka_rk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One produce call's messages: freed by whoever drops the last reference
 * (the caller, or the last delivery report after a caller gave up). */
typedef struct waiter {
	pthread_mutex_t m;
	pthread_cond_t cv;
	size_t left;            /* reports still to come */
	int refs;
	rd_kafka_resp_err_t err;
	int maybe;              /* a failed message may be in the log all the
				 * same (RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED:
				 * its request timed out in flight) */
	int gave_up;            /* the caller failed with ETIMEDOUT: the
				 * last report says what became of it */
	char where[96];         /* "TOPIC [PARTITION]", for that message */
	int64_t *offs;
	struct slot { struct waiter *w; size_t i, at; } *slots;
	char *data;             /* the payloads, one copy: librdkafka points
				 * into it until the last report (no copy per
				 * message, and valid after a caller gave up) */
} waiter;

static void waiter_put(waiter *w)
{
	pthread_mutex_lock(&w->m);
	int last = --w->refs == 0;
	pthread_mutex_unlock(&w->m);
	if (!last)
		return;
	pthread_mutex_destroy(&w->m);
	pthread_cond_destroy(&w->cv);
	free(w->offs);
	free(w->slots);
	free(w->data);
	free(w);
}

void rk_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	struct slot *s = m->_private;
	waiter *w = s->w;
	pthread_mutex_lock(&w->m);
	if (m->err && !w->err)
		w->err = m->err;
	if (m->err && rd_kafka_message_status(m) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
		w->maybe = 1;
	w->offs[s->i] = m->offset;
	int done = --w->left == 0;
	if (done)
		pthread_cond_broadcast(&w->cv);
	int late = done && w->gave_up;
	pthread_mutex_unlock(&w->m);
	/* A write that failed with ETIMEDOUT may be in the log all the same
	 * (Kafka's producer cannot take back what a broker may have): say
	 * what became of it, so that a retry's duplicate can be found. */
	if (late && !w->err)
		sbfs_log("kafka: %s: a write that failed with ETIMEDOUT was appended after all, at offset %lld",
			 w->where, (long long)w->offs[0]);
	else if (late && w->maybe) /* the client cannot know: never say "not" */
		sbfs_log("kafka: %s: a write that failed with ETIMEDOUT may have been appended all the same (%s, "
			 "its request timed out in flight: look for its records before writing them again)",
			 w->where, rd_kafka_err2str(w->err));
	else if (late)
		sbfs_log("kafka: %s: a write that failed with ETIMEDOUT was not appended (%s)", w->where,
			 rd_kafka_err2str(w->err));
	if (done)
		waiter_put(w);
}

static waiter *waiter_new(size_t n)
{
	waiter *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->offs = calloc(n, sizeof *w->offs);
	w->slots = calloc(n, sizeof *w->slots);
	if (!w->offs || !w->slots) {
		free(w->offs);
		free(w->slots);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->m, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->refs = 2; /* the caller, and the last report */
	w->left = n;
	for (size_t i = 0; i < n; i++)
		w->slots[i] = (struct slot){ w, i, 0 };
	return w;
}

static rd_kafka_resp_err_t produce_one(kc_part *p, const kc_rec *r, const char *value,
				       struct slot *s)
{
	rd_kafka_headers_t *hs = NULL;
	if (r->nheaders) {
		hs = rd_kafka_headers_new(r->nheaders);
		for (size_t i = 0; i < r->nheaders; i++)
			rd_kafka_header_add(hs, r->headers[i].name, (ssize_t)r->headers[i].name_len,
					    r->headers[i].value,
					    (ssize_t)r->headers[i].value_len);
	}
	rd_kafka_resp_err_t e = rd_kafka_producev(
		p->c->prod, RD_KAFKA_V_RKT(p->prkt), RD_KAFKA_V_PARTITION(p->part),
		RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_VALUE((r->tombstone ? NULL : (void *)value),
					  (r->tombstone ? 0 : r->value_len)),
		RD_KAFKA_V_KEY(r->key, r->key ? r->key_len : 0),
		RD_KAFKA_V_TIMESTAMP(r->timestamp_ms), RD_KAFKA_V_HEADERS(hs),
		RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
	if (e && hs)
		rd_kafka_headers_destroy(hs);
	return e;
}

int rk_produce(kc_part *p, const kc_rec *recs, size_t n, int64_t *offsets)
{
	rk_client *c = p->c;
	if (n == 0)
		return 0;
	waiter *w = waiter_new(n);
	if (!w)
		return -ENOMEM;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += recs[i].value_len;
	if (!(w->data = malloc(total ? total : 1))) {
		w->refs = 1;
		waiter_put(w);
		return -ENOMEM;
	}
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].value_len)
			memcpy(w->data + at, recs[i].value, recs[i].value_len);
		w->slots[i].at = at;
		at += recs[i].value_len;
	}
	int64_t deadline = rk_now_ms() + c->timeout_ms;
	size_t sent = 0;
	rd_kafka_resp_err_t e = 0;
	while (sent < n) {
		e = produce_one(p, &recs[sent], w->data + w->slots[sent].at, &w->slots[sent]);
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && rk_now_ms() < deadline) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL); /* the poller drains the queue */
			continue;
		}
		if (e)
			break;
		sent++;
	}
	pthread_mutex_lock(&w->m);
	if (e && !w->err)
		w->err = e;
	w->left -= n - sent; /* never sent: no report comes */
	if (w->left == 0 && sent < n)
		w->refs--; /* nobody else will drop the reports' reference */
	/* every sent message gets its report within message.timeout.ms, but
	 * one in flight to a broker that went away may take longer (the
	 * idempotent producer does not time out what it has sent): the call
	 * fails after the timeout anyway (a report that comes later frees
	 * the waiter; such a record was not acknowledged, and may or may not
	 * be in the log) */
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	int64_t wait = c->timeout_ms + 200;
	dl.tv_sec += wait / 1000;
	dl.tv_nsec += (wait % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	while (w->left > 0)
		if (pthread_cond_timedwait(&w->cv, &w->m, &dl) == ETIMEDOUT)
			break;
	int rc = w->left > 0 ? -ETIMEDOUT : rk_map_err(w->err);
	if (w->left > 0) {
		w->gave_up = 1;
		snprintf(w->where, sizeof w->where, "%s [%d]", p->topic, (int)p->part);
		sbfs_log("kafka: %s: a write timed out after %d ms; its records may still be appended "
			 "(the producer cannot take them back): check before writing them again",
			 w->where, c->timeout_ms);
	}
	if (rc == 0)
		memcpy(offsets, w->offs, n * sizeof *offsets);
	pthread_mutex_unlock(&w->m);
	waiter_put(w);
	return rc;
}
