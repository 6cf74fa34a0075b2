/*
 * kafka_topics.c - the Kafka backend's topic table: the cluster's topic
 * list made into kparts (a topic of one partition: one kpart of its name;
 * of several: a kpart for the topic and one per partition, "NAME/I").
 * kbackend.tlock guards the table.
 */
#include "kafka_part.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ktab_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kpart *ktab_find(kbackend *b, const char *name)
{
	for (size_t i = 0; i < b->ntopics; i++)
		if (!b->topics[i]->removed && strcmp(b->topics[i]->name, name) == 0)
			return b->topics[i];
	return NULL;
}

/* Add partition `part` of Kafka topic `topic` to the table as `name`
 * (tlock held); part < 0: a topic of several partitions (no partition of
 * its own: its parts are added after it). */
static int add(kbackend *b, const char *name, const char *topic, int32_t part, kpart **out)
{
	kpart **v = realloc(b->topics, (b->ntopics + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	b->topics = v;
	kpart *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(name))) {
		free(p);
		return -ENOMEM;
	}
	int rc = part < 0 ? 0 : b->c->ops->part_open(b->c, topic, part, &p->cp);
	if (rc) {
		free(p->name);
		free(p);
		return rc;
	}
	p->b = b;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->xlock, NULL);
	p->hint_off = -1;
	p->none_hi = -1;
	b->topics[b->ntopics++] = p;
	*out = p;
	return 0;
}

/* Add topic `name` of `n` partitions (tlock held): one partition, a
 * kpart of that name; several, a kpart holding one per partition, named
 * "NAME/I" (not valid topic names: never asked for by topic_get). */
static int add_topic(kbackend *b, const char *name, int n)
{
	kpart *g, *p;
	if (n == 1)
		return add(b, name, name, 0, &p);
	kpart **parts = calloc((size_t)n, sizeof *parts);
	if (!parts)
		return -ENOMEM;
	char pn[300];
	int rc = 0;
	for (int i = 0; rc == 0 && i < n; i++) {
		snprintf(pn, sizeof pn, "%s/%d", name, i);
		rc = add(b, pn, name, i, &parts[i]);
	}
	if (rc == 0)
		rc = add(b, name, name, -1, &g);
	if (rc) {
		/* the parts added stay in the table, unnamed by any topic */
		free(parts);
		return rc;
	}
	g->nparts = (uint32_t)n;
	g->parts = parts;
	for (int i = 0; i < n; i++)
		parts[i]->group = g;
	return 0;
}

static int seen_cb(void *arg, const char *name, int partitions)
{
	kseen *s = arg;
	if (partitions < 1)
		return 0;
	char **v = realloc(s->names, (s->n + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	s->names = v;
	int *pv = realloc(s->parts, (s->n + 1) * sizeof *pv);
	if (!pv)
		return -ENOMEM;
	s->parts = pv;
	if (!(v[s->n] = strdup(name)))
		return -ENOMEM;
	pv[s->n++] = partitions;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void ktab_seen_free(kseen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->parts);
}

/* Ask the cluster for its topics and add the new ones to the table (a
 * topic's partitions as first seen: partitions added later are not
 * shown until the next mount). */
int ktab_refresh(kbackend *b, kseen *out)
{
	kseen s = { 0 };
	int rc = b->c->ops->list(b->c, seen_cb, &s);
	pthread_mutex_lock(&b->tlock);
	for (size_t i = 0; rc == 0 && i < s.n; i++)
		if (!ktab_find(b, s.names[i]))
			rc = add_topic(b, s.names[i], s.parts[i]);
	b->listed_ms = ktab_now_ms();
	pthread_mutex_unlock(&b->tlock);
	if (rc == 0 && out) {
		free(s.parts);
		s.parts = NULL;
		qsort(s.names, s.n, sizeof *s.names, by_name);
		*out = s;
		return 0;
	}
	ktab_seen_free(&s);
	return rc;
}
