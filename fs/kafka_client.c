/*
 * kafka_client.c - kafka_client.h over librdkafka (Debian's 2.0.2).
 *
 * Two handles: a producer (produce, metadata, the admin requests) and a
 * consumer used through the legacy per-partition API (consume_start, seek,
 * consume), which reads any partition from any offset without a group. A
 * poller thread serves the producer's delivery reports (kafka_produce.c);
 * the admin requests are kafka_admin.c's. Every call is bounded by the
 * client's timeout, never a hang.
 */
#include "kafka.h"
#include "kafka_rk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rk_map_err(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_NO_ERROR: return 0;
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
		return -ETIMEDOUT;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		return -ENOENT;
	case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: return -EEXIST;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
		return -EFBIG;
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return -EINVAL;
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_DELETION_DISABLED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
		return -EACCES;
	case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
		return -ERANGE;
	case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
	case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
	case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

int64_t rk_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 3) /* errors only: retries are normal life */
		sbfs_log("kafka: %s: %s", fac, buf);
}

static void *poll_run(void *arg)
{
	rk_client *c = arg;
	while (!atomic_load(&c->stop))
		rd_kafka_poll(c->prod, 100);
	return NULL;
}

static int rk_list(kc *base, kc_topic_fn fn, void *arg)
{
	rk_client *c = (rk_client *)base;
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t e = rd_kafka_metadata(c->prod, 1, NULL, &md, c->timeout_ms);
	if (e)
		return rk_map_err(e);
	int rc = 0;
	for (int i = 0; i < md->topic_cnt && rc == 0; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (t->err || strncmp(t->topic, "__", 2) == 0)
			continue;
		rc = fn(arg, t->topic, t->partition_cnt);
	}
	rd_kafka_metadata_destroy(md);
	return rc;
}

static int rk_part_open(kc *base, const char *topic, int32_t part, kc_part **out)
{
	rk_client *c = (rk_client *)base;
	int rc = 0;
	pthread_mutex_lock(&c->plock);
	for (size_t i = 0; i < c->nparts; i++) {
		if (c->parts[i]->part == part && strcmp(c->parts[i]->topic, topic) == 0) {
			*out = c->parts[i];
			goto out_unlock;
		}
	}
	kc_part **v = realloc(c->parts, (c->nparts + 1) * sizeof *v);
	kc_part *p = calloc(1, sizeof *p);
	if (v)
		c->parts = v;
	if (!v || !p || !(p->topic = strdup(topic))) {
		rc = -ENOMEM;
		goto out_free;
	}
	p->c = c;
	p->part = part;
	p->prkt = rd_kafka_topic_new(c->prod, topic, NULL);
	p->crkt = rd_kafka_topic_new(c->cons, topic, NULL);
	if (!p->prkt || !p->crkt) {
		rc = rk_map_err(rd_kafka_last_error());
		goto out_topics;
	}
	pthread_mutex_init(&p->flock, NULL);
	c->parts[c->nparts++] = p;
	*out = p;
	goto out_unlock;
out_topics:
	if (p->prkt)
		rd_kafka_topic_destroy(p->prkt);
	if (p->crkt)
		rd_kafka_topic_destroy(p->crkt);
out_free:
	if (p)
		free(p->topic);
	free(p);
out_unlock:
	pthread_mutex_unlock(&c->plock);
	return rc;
}

/*
 * rd_kafka_query_watermark_offsets does not return while the partition's
 * leader is unreachable, whatever its timeout says (librdkafka 2.0.2, seen
 * with the mock's brokers down). So it runs in a thread of its own and
 * the caller waits for it at most timeout_ms; one such thread per
 * partition at a time (a second caller meanwhile waits for its turn,
 * within its own timeout).
 */
typedef struct wmjob {
	kc_part *p;
	int64_t ts;             /* >= 0: offsets for this time (ms), not watermarks */
	pthread_mutex_t m;      /* guards done, refs, lo, hi, err */
	pthread_cond_t cv;
	int done, refs;
	int64_t lo, hi;
	rd_kafka_resp_err_t err;
} wmjob;

static void wmjob_put(wmjob *j)
{
	pthread_mutex_lock(&j->m);
	int last = --j->refs == 0;
	pthread_mutex_unlock(&j->m);
	if (!last)
		return;
	pthread_mutex_destroy(&j->m);
	pthread_cond_destroy(&j->cv);
	free(j);
}

static void *wm_run(void *arg)
{
	wmjob *j = arg;
	kc_part *p = j->p;
	int64_t lo = -1, hi = -1;
	rd_kafka_resp_err_t e;
	if (j->ts >= 0) {
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(l, p->topic, p->part)->offset = j->ts;
		e = rd_kafka_offsets_for_times(p->c->cons, l, p->c->timeout_ms);
		if (!e)
			e = l->elems[0].err;
		lo = l->elems[0].offset;
		rd_kafka_topic_partition_list_destroy(l);
	} else {
		e = rd_kafka_query_watermark_offsets(p->c->cons, p->topic, p->part, &lo, &hi,
						     p->c->timeout_ms);
	}
	pthread_mutex_lock(&j->m);
	j->lo = lo;
	j->hi = hi;
	j->err = e;
	j->done = 1;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->m);
	atomic_store(j->ts >= 0 ? &p->tm_busy : &p->wm_busy, 0);
	atomic_fetch_sub(&p->c->jobs, 1);
	wmjob_put(j);
	return NULL;
}

static int run_job(kc_part *p, int64_t ts, int wait_ms, int64_t *lo, int64_t *hi)
{
	rk_client *c = p->c;
	atomic_int *busy = ts >= 0 ? &p->tm_busy : &p->wm_busy;
	int tmo = wait_ms > 0 && wait_ms < c->timeout_ms ? wait_ms : c->timeout_ms;
	/* another caller's query (the refresher's, every 300 ms) is out: wait
	 * for it to come back, within this call's own bound (one that never
	 * comes back, a leader unreachable, ends the wait at the timeout) */
	int64_t end = rk_now_ms() + tmo;
	while (atomic_exchange(busy, 1)) {
		if (rk_now_ms() >= end)
			return -ETIMEDOUT; /* the last one has not come back */
		nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
	}
	tmo = (int)(end - rk_now_ms());
	if (tmo < 1)
		tmo = 1;
	wmjob *j = calloc(1, sizeof *j);
	if (!j) {
		atomic_store(busy, 0);
		return -ENOMEM;
	}
	j->p = p;
	j->ts = ts;
	j->refs = 2;
	pthread_mutex_init(&j->m, NULL);
	pthread_cond_init(&j->cv, NULL);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_t th;
	atomic_fetch_add(&c->jobs, 1);
	if (pthread_create(&th, &a, wm_run, j) != 0) {
		pthread_attr_destroy(&a);
		atomic_fetch_sub(&c->jobs, 1);
		atomic_store(busy, 0);
		pthread_mutex_destroy(&j->m);
		pthread_cond_destroy(&j->cv);
		free(j);
		return -EAGAIN;
	}
	pthread_attr_destroy(&a);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += tmo / 1000;
	dl.tv_nsec += (tmo % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&j->m);
	while (!j->done)
		if (pthread_cond_timedwait(&j->cv, &j->m, &dl) == ETIMEDOUT)
			break;
	int rc = !j->done ? -ETIMEDOUT : rk_map_err(j->err);
	if (rc == 0) {
		*lo = j->lo;
		if (hi)
			*hi = j->hi;
	}
	pthread_mutex_unlock(&j->m);
	wmjob_put(j);
	return rc;
}

static int rk_watermarks(kc_part *p, int wait_ms, int64_t *lo, int64_t *hi)
{
	return run_job(p, -1, wait_ms, lo, hi);
}

static int rk_offset_for_time(kc_part *p, int64_t ts_ms, int64_t *off)
{
	return run_job(p, ts_ms < 0 ? 0 : ts_ms, 0, off, NULL);
}

/* Position the consumer at `from` (flock held). */
static int position(kc_part *p, int64_t from)
{
	if (!p->started) {
		if (rd_kafka_consume_start(p->crkt, p->part, from) != 0)
			return rk_map_err(rd_kafka_last_error());
		p->started = 1;
	} else if (p->pos != from) {
		rd_kafka_resp_err_t e = rd_kafka_seek(p->crkt, p->part, from, p->c->timeout_ms);
		if (e)
			return rk_map_err(e);
	}
	p->pos = from;
	return 0;
}

/* Up to this much per fetch call: a cache chunk's worth. */
enum { FETCH_BYTES = 1 << 20, FETCH_RECS = 8192, EOF_GRACE_MS = 500 };

static void stop_consumer(kc_part *p)
{
	rd_kafka_consume_stop(p->crkt, p->part);
	p->started = 0;
}

static int deliver(const rd_kafka_message_t *m, kc_rec_fn fn, void *arg)
{
	kc_header sb[16], *hb = sb;
	size_t nh = 0, cnt = 0;
	rd_kafka_headers_t *hs = NULL;
	if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		cnt = rd_kafka_header_cnt(hs);
	if (cnt > 16 && !(hb = malloc(cnt * sizeof *hb)))
		return -ENOMEM;
	for (; nh < cnt; nh++) {
		const char *name;
		const void *val;
		size_t len;
		if (rd_kafka_header_get_all(hs, nh, &name, &val, &len) != 0)
			break;
		hb[nh] = (kc_header){ name, strlen(name), val, len };
	}
	rd_kafka_timestamp_type_t tt;
	kc_rec r = { .offset = m->offset, .timestamp_ms = rd_kafka_message_timestamp(m, &tt),
		     .key = m->key, .key_len = m->key_len, .value = m->payload,
		     .value_len = m->len, .headers = hb, .nheaders = nh,
		     .tombstone = m->payload == NULL };
	if (!r.value)
		r.value = "";
	int rc = fn(arg, &r);
	if (hb != sb)
		free(hb);
	return rc;
}

static int rk_fetch(kc_part *p, int64_t from, kc_rec_fn fn, void *arg)
{
	rk_client *c = p->c;
	pthread_mutex_lock(&p->flock);
	int rc = position(p, from);
	if (rc)
		goto out_unlock;
	int64_t deadline = rk_now_ms() + c->timeout_ms, eof_deadline = 0;
	size_t count = 0, bytes = 0;
	while (count < FETCH_RECS && bytes < FETCH_BYTES) {
		int64_t left = deadline - rk_now_ms();
		if (count == 0 && left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		rd_kafka_message_t *m = rd_kafka_consume(p->crkt, p->part,
							 count ? 0 : (int)(left < 100 ? left : 100));
		if (!m) {
			if (count || (eof_deadline && rk_now_ms() >= eof_deadline)) {
				if (!count)
					rc = -ENODATA;
				break;
			}
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			if (count)
				break;
			/* the end as it was when the consumer got there: the
			 * caller saw a record at `from` in the watermarks, so
			 * one may be on its way; wait a little for it */
			if (eof_deadline == 0)
				eof_deadline = rk_now_ms() + EOF_GRACE_MS;
			if (rk_now_ms() >= eof_deadline) {
				rc = -ENODATA;
				break;
			}
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__BAD_MSG) {
			/* A batch failed its CRC (check.crcs): the consumer
			 * skipped it. Its records are not served, nor left out
			 * as if there were none: EIO, each time they are read
			 * (the consumer starts afresh at the next fetch). */
			sbfs_log("kafka: %s [%d]: the records from offset %lld on are damaged (%s): EIO",
				 rd_kafka_topic_name(p->crkt), (int)p->part, (long long)m->offset,
				 rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			stop_consumer(p);
			if (count == 0)
				rc = -EIO;
			break;
		}
		if (m->err) {
			int e = rk_map_err(m->err);
			rd_kafka_message_destroy(m);
			if (e == -ERANGE) {
				/* the consumer stops there: start afresh next time */
				stop_consumer(p);
				if (count == 0)
					rc = e;
				break;
			}
			continue; /* a broker down: librdkafka retries, we wait */
		}
		if (m->offset >= from) {
			rc = deliver(m, fn, arg);
			p->pos = m->offset + 1;
			count++;
			bytes += m->len + m->key_len + 64;
		}
		rd_kafka_message_destroy(m);
		if (rc)
			break;
	}
out_unlock:
	pthread_mutex_unlock(&p->flock);
	return rc;
}

static size_t rk_record_max(kc *base) { return ((rk_client *)base)->msg_max; }

static void rk_close(kc *base)
{
	rk_client *c = (rk_client *)base;
	/* whatever is still queued was never acknowledged to anyone: drop it
	 * rather than wait for an unreachable cluster */
	rd_kafka_purge(c->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	atomic_store(&c->stop, 1);
	pthread_join(c->poller, NULL);
	rd_kafka_poll(c->prod, 0); /* the purged messages' reports */
	/* a query stuck on an unreachable leader holds the consumer: give it
	 * a moment, then leave the handles to the exiting process rather than
	 * hang the unmount */
	for (int i = 0; i < 100 && atomic_load(&c->jobs) > 0; i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	if (atomic_load(&c->jobs) > 0) {
		sbfs_log("kafka: the cluster did not answer; not waiting for it");
		return;
	}
	for (size_t i = 0; i < c->nparts; i++) {
		kc_part *p = c->parts[i];
		if (p->started)
			rd_kafka_consume_stop(p->crkt, p->part);
		rd_kafka_topic_destroy(p->prkt);
		rd_kafka_topic_destroy(p->crkt);
		pthread_mutex_destroy(&p->flock);
		free(p->topic);
		free(p);
	}
	free(c->parts);
	rd_kafka_destroy(c->cons);
	rd_kafka_destroy(c->prod);
	pthread_mutex_destroy(&c->plock);
	free(c);
}

static const kc_ops rk_ops = {
	.list = rk_list,
	.part_open = rk_part_open,
	.watermarks = rk_watermarks,
	.fetch = rk_fetch,
	.produce = rk_produce,
	.create_topic = rk_create_topic,
	.delete_topic = rk_delete_topic,
	.offset_for_time = rk_offset_for_time,
	.delete_records = rk_delete_records,
	.topic_config = rk_topic_config,
	.record_max = rk_record_max,
	.close = rk_close,
};

static int has_prop(const kc_prop *props, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(props[i].key, key) == 0)
			return 1;
	return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err,
		    size_t errlen)
{
	char e[256];
	if (rd_kafka_conf_set(conf, k, v, e, sizeof e) == RD_KAFKA_CONF_OK)
		return 0;
	snprintf(err, errlen, "[kafka] %s: %s", k, e);
	return -EINVAL;
}

/* Our defaults (a user's property wins), then the user's properties. */
static rd_kafka_conf_t *make_conf(const kc_prop *props, size_t n, int producer,
				  int timeout_ms, char *err, size_t errlen)
{
	char tmo[32];
	snprintf(tmo, sizeof tmo, "%d", timeout_ms);
	const char *defs[][2] = {
		{ "acks", producer ? "all" : NULL },
		{ "enable.idempotence", producer ? "true" : NULL },
		{ "linger.ms", producer ? "1" : NULL },
		{ "message.timeout.ms", producer ? tmo : NULL },
		{ "queue.buffering.max.kbytes", producer ? "262144" : NULL },
		{ "enable.partition.eof", producer ? NULL : "true" },
		{ "auto.offset.reset", producer ? NULL : "error" },
		{ "queued.max.messages.kbytes", producer ? NULL : "16384" },
		{ "fetch.wait.max.ms", producer ? NULL : "100" },
		/* SPEC §4: nothing served that fails its checksum (librdkafka
		 * does not check consumed batches by default) */
		{ "check.crcs", producer ? NULL : "true" },
		{ "socket.timeout.ms", tmo },
		/* back within a second of the cluster (default: up to 10 s) */
		{ "reconnect.backoff.max.ms", "1000" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < sizeof defs / sizeof *defs; i++) {
		if (!defs[i][1] || has_prop(props, n, defs[i][0]))
			continue;
		if (conf_set(conf, defs[i][0], defs[i][1], err, errlen))
			goto out_destroy;
	}
	for (size_t i = 0; i < n; i++)
		if (conf_set(conf, props[i].key, props[i].value, err, errlen))
			goto out_destroy;
	rd_kafka_conf_set_log_cb(conf, on_log);
	if (producer)
		rd_kafka_conf_set_dr_msg_cb(conf, rk_on_delivery);
	return conf;
out_destroy:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

int kc_rdkafka_open(const kc_prop *props, size_t nprops, int timeout_ms, char *err,
		    size_t errlen, kc **out)
{
	rk_client *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->timeout_ms = timeout_ms;
	pthread_mutex_init(&c->plock, NULL);
	char e[512];
	int rc = -EINVAL;
	rd_kafka_conf_t *pc = make_conf(props, nprops, 1, timeout_ms, err, errlen);
	rd_kafka_conf_t *cc = pc ? make_conf(props, nprops, 0, timeout_ms, err, errlen) : NULL;
	if (!cc)
		goto out_confs;
	char mm[32];
	size_t mml = sizeof mm;
	c->msg_max = rd_kafka_conf_get(pc, "message.max.bytes", mm, &mml) == RD_KAFKA_CONF_OK
			     ? (size_t)strtoull(mm, NULL, 10) : 1000000;
	/* room for the record batch's and the record's own headers */
	c->msg_max = c->msg_max > 4096 ? c->msg_max - 4096 : c->msg_max;
	c->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
	if (!c->prod) {
		snprintf(err, errlen, "[kafka]: %s", e);
		goto out_confs;
	}
	pc = NULL; /* the handle owns it */
	c->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
	if (!c->cons) {
		snprintf(err, errlen, "[kafka]: %s", e);
		goto out_prod;
	}
	cc = NULL;
	if (pthread_create(&c->poller, NULL, poll_run, c) != 0) {
		rc = -EAGAIN;
		goto out_cons;
	}
	c->base.ops = &rk_ops;
	*out = &c->base;
	return 0;
out_cons:
	rd_kafka_destroy(c->cons);
out_prod:
	rd_kafka_destroy(c->prod);
out_confs:
	if (pc)
		rd_kafka_conf_destroy(pc);
	if (cc)
		rd_kafka_conf_destroy(cc);
	pthread_mutex_destroy(&c->plock);
	free(c);
	return rc;
}
