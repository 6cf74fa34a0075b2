/*
 * kafka_admin.c - the admin requests over librdkafka: CreateTopics
 * (mkdir), DeleteTopics (rmdir), DeleteRecords (rm of the oldest record),
 * DescribeConfigs (a topic's cleanup.policy: does ls look for gaps).
 *
 * Each is one call of admin_call: options with the client's timeout (or a
 * shorter wait), a queue of its own, the request, its result event waited
 * for at most a little past it (-ETIMEDOUT without one), then the event's
 * error and the one item's error mapped to an errno (and the item's answer
 * taken out of the event). (librdkafka 2.0.2's mock cluster serves none of
 * them; DescribeConfigs, which librdkafka sends to the controller, waits
 * for the controller the mock names, broker 0, which it does not have, and
 * times out. The unit tests drive these paths through a fake client.)
 */
#include "kafka_rk.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* What differs between the requests: how to start one, and where its
 * one item's error is in the result event. */
typedef struct admin_req {
	rd_kafka_admin_op_t op;
	void (*start)(rd_kafka_t *rk, void *item, const rd_kafka_AdminOptions_t *o,
		      rd_kafka_queue_t *q);
	rd_kafka_resp_err_t (*item_err)(rd_kafka_event_t *ev, void *out);
} admin_req;

/* Run request r for `item` (the caller owns it), waiting at most wait_ms
 * (0: the client's timeout), and map its result; item_err takes the
 * answer into out (request r's type). */
static int admin_call(rk_client *c, const admin_req *r, void *item, int wait_ms, void *out)
{
	char err[256];
	int rc = -ENOMEM;
	int wait = wait_ms > 0 && wait_ms < c->timeout_ms ? wait_ms : c->timeout_ms;
	rd_kafka_queue_t *q = rd_kafka_queue_new(c->prod);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(c->prod, r->op);
	if (!q || !o)
		goto out_free;
	rd_kafka_AdminOptions_set_request_timeout(o, wait, err, sizeof err);
	r->start(c->prod, item, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, wait + 2000);
	rc = -ETIMEDOUT;
	if (ev) {
		rc = rk_map_err(rd_kafka_event_error(ev));
		if (rc == 0)
			rc = rk_map_err(r->item_err(ev, out));
		rd_kafka_event_destroy(ev);
	}
out_free:
	if (o)
		rd_kafka_AdminOptions_destroy(o);
	if (q)
		rd_kafka_queue_destroy(q);
	return rc;
}

static rd_kafka_resp_err_t topic_err(const rd_kafka_topic_result_t **v, size_t n)
{
	return v && n >= 1 ? rd_kafka_topic_result_error(v[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* ---- CreateTopics ---- */

static void create_start(rd_kafka_t *rk, void *item, const rd_kafka_AdminOptions_t *o,
			 rd_kafka_queue_t *q)
{
	rd_kafka_NewTopic_t *nt = item;
	rd_kafka_CreateTopics(rk, &nt, 1, o, q);
}

static rd_kafka_resp_err_t create_err(rd_kafka_event_t *ev, void *out)
{
	(void)out;
	size_t n = 0;
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	return topic_err(res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL, n);
}

static const admin_req create_req = { RD_KAFKA_ADMIN_OP_CREATETOPICS, create_start, create_err };

int rk_create_topic(kc *base, const char *topic, int parts, int repl)
{
	char err[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, repl, err, sizeof err);
	if (!nt)
		return -EINVAL;
	int rc = admin_call((rk_client *)base, &create_req, nt, 0, NULL);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

/* ---- DeleteTopics ---- */

static void delete_start(rd_kafka_t *rk, void *item, const rd_kafka_AdminOptions_t *o,
			 rd_kafka_queue_t *q)
{
	rd_kafka_DeleteTopic_t *dt = item;
	rd_kafka_DeleteTopics(rk, &dt, 1, o, q);
}

static rd_kafka_resp_err_t delete_err(rd_kafka_event_t *ev, void *out)
{
	(void)out;
	size_t n = 0;
	const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
	return topic_err(res ? rd_kafka_DeleteTopics_result_topics(res, &n) : NULL, n);
}

static const admin_req delete_req = { RD_KAFKA_ADMIN_OP_DELETETOPICS, delete_start, delete_err };

int rk_delete_topic(kc *base, const char *topic)
{
	rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
	if (!dt)
		return -ENOMEM;
	int rc = admin_call((rk_client *)base, &delete_req, dt, 0, NULL);
	rd_kafka_DeleteTopic_destroy(dt);
	return rc;
}

/* ---- DeleteRecords ---- */

static void records_start(rd_kafka_t *rk, void *item, const rd_kafka_AdminOptions_t *o,
			  rd_kafka_queue_t *q)
{
	rd_kafka_DeleteRecords_t *dr = item;
	rd_kafka_DeleteRecords(rk, &dr, 1, o, q);
}

static rd_kafka_resp_err_t records_err(rd_kafka_event_t *ev, void *out)
{
	(void)out;
	const rd_kafka_DeleteRecords_result_t *res = rd_kafka_event_DeleteRecords_result(ev);
	const rd_kafka_topic_partition_list_t *offs =
		res ? rd_kafka_DeleteRecords_result_offsets(res) : NULL;
	return offs && offs->cnt >= 1 ? offs->elems[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
}

static const admin_req records_req = { RD_KAFKA_ADMIN_OP_DELETERECORDS, records_start,
				       records_err };

int rk_delete_records(kc_part *p, int64_t before)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	if (!l)
		return -ENOMEM;
	rd_kafka_topic_partition_list_add(l, p->topic, p->part)->offset = before;
	rd_kafka_DeleteRecords_t *dr = rd_kafka_DeleteRecords_new(l);
	rd_kafka_topic_partition_list_destroy(l);
	if (!dr)
		return -ENOMEM;
	int rc = admin_call(p->c, &records_req, dr, 0, NULL);
	rd_kafka_DeleteRecords_destroy(dr);
	return rc;
}

/* ---- DescribeConfigs ---- */

typedef struct config_out {
	const char *name;
	char *value;
	size_t len;
	int found;
} config_out;

static void config_start(rd_kafka_t *rk, void *item, const rd_kafka_AdminOptions_t *o,
			 rd_kafka_queue_t *q)
{
	rd_kafka_ConfigResource_t *cr = item;
	rd_kafka_DescribeConfigs(rk, &cr, 1, o, q);
}

/* The resource's error, else its entry named out->name into out. */
static rd_kafka_resp_err_t config_err(rd_kafka_event_t *ev, void *out)
{
	config_out *x = out;
	size_t n = 0, ne = 0;
	const rd_kafka_DescribeConfigs_result_t *res = rd_kafka_event_DescribeConfigs_result(ev);
	const rd_kafka_ConfigResource_t **v =
		res ? rd_kafka_DescribeConfigs_result_resources(res, &n) : NULL;
	if (!v || n < 1)
		return RD_KAFKA_RESP_ERR__BAD_MSG;
	rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(v[0]);
	if (e)
		return e;
	const rd_kafka_ConfigEntry_t **es = rd_kafka_ConfigResource_configs(v[0], &ne);
	for (size_t i = 0; i < ne && !x->found; i++) {
		const char *val = rd_kafka_ConfigEntry_value(es[i]);
		if (strcmp(rd_kafka_ConfigEntry_name(es[i]), x->name) || !val)
			continue;
		snprintf(x->value, x->len, "%s", val);
		x->found = 1;
	}
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static const admin_req config_req = { RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, config_start,
				      config_err };

int rk_topic_config(kc *base, const char *topic, const char *name, int wait_ms, char *value,
		    size_t len)
{
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	if (!cr)
		return -ENOMEM;
	/* only this one config in the answer (the value is not sent) */
	int rc = -ENOMEM;
	if (rd_kafka_ConfigResource_set_config(cr, name, "") == RD_KAFKA_RESP_ERR_NO_ERROR) {
		char buf[256];
		config_out x = { name, buf, sizeof buf, 0 };
		rc = admin_call((rk_client *)base, &config_req, cr, wait_ms, &x);
		if (rc == 0 && !x.found)
			rc = -ENOENT;
		if (rc == 0 && len)
			snprintf(value, len, "%s", buf);
	}
	rd_kafka_ConfigResource_destroy(cr);
	return rc;
}
