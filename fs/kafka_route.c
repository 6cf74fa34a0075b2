/*
 * kafka_route.c - a Kafka topic of several partitions (backend.h: parts):
 * where each record appended to the topic itself goes, and the topic's
 * own (empty) extent. Its partitions are kparts of their own
 * (backend_kafka.c's add_topic); this file only routes.
 */
#include "kafka_part.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

/* CRC-32 (IEEE, reflected; zlib's and librdkafka's rd_crc32) */
static uint32_t crc32_of(const void *data, size_t len)
{
	const unsigned char *d = data;
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		c ^= d[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

/* The partition of a record with a key: librdkafka's default partitioner
 * (consistent_random: CRC-32 of the key modulo the partition count), so
 * that a record lands where kcat -K or any librdkafka producer puts the
 * same key. Without a key librdkafka picks at random: here one partition
 * per append call (`rr`), in turn. */
static uint32_t part_for(const sbfs_rec *r, uint32_t n, uint32_t rr)
{
	return r->key_len ? crc32_of(r->key, r->key_len) % n : rr;
}

/* Each record to its partition, one append per partition (in partition
 * order; *first: the first record's offset, in its partition). */
int kgroup_append(kpart *g, const sbfs_rec *recs, size_t n, uint64_t *first)
{
	uint32_t np = g->nparts;
	uint32_t rr = atomic_fetch_add(&g->b->next_part, 1) % np;
	uint32_t p0 = part_for(&recs[0], np, rr);
	size_t same = 1;
	while (same < n && part_for(&recs[same], np, rr) == p0)
		same++;
	if (same == n) /* the usual case (lines of .log, a created file) */
		return kpart_append(g->parts[p0], recs, n, first);
	sbfs_rec *sub = malloc(n * sizeof *sub);
	if (!sub)
		return -ENOMEM;
	int rc = 0;
	for (uint32_t k = 0; rc == 0 && k < np; k++) {
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (part_for(&recs[i], np, rr) == k)
				sub[m++] = recs[i];
		if (m)
			rc = kpart_append(g->parts[k], sub, m, k == p0 ? first : NULL);
	}
	free(sub);
	return rc;
}

/* Its extent: no records of its own; the time of its partitions' newest
 * (as far as known: no call to the cluster). */
int kgroup_bounds(kpart *g, sbfs_bounds *out)
{
	int64_t ms = 0;
	for (uint32_t i = 0; i < g->nparts; i++) {
		kpart *p = g->parts[i];
		pthread_mutex_lock(&p->lock);
		if (p->mtime_ms > ms)
			ms = p->mtime_ms;
		if (p->seen_ms > ms)
			ms = p->seen_ms;
		pthread_mutex_unlock(&p->lock);
	}
	*out = (sbfs_bounds){ .mtime_ns = ms * 1000000 };
	return 0;
}
