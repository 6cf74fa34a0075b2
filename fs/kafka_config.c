/*
 * kafka_config.c - the [kafka] section (SPEC §8): our own keys, and every
 * other key passed to librdkafka as a property.
 */
#include "kafka.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbfs_kafka_config_init(sbfs_kafka_config *c)
{
	*c = (sbfs_kafka_config){ .cache_bytes = 64u << 20, .timeout_ms = 30000,
				  .keys_bytes = 64u << 20,
				  .num_partitions = 1, .replication = -1 };
}

static int num(const char *key, const char *v, long long lo, long long hi, long long *out,
	       char *err, size_t errlen)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi) {
		snprintf(err, errlen, "[kafka] %s: '%s' is not a number from %lld to %lld", key, v,
			 lo, hi);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int boolean(const char *key, const char *v, int *out, char *err, size_t errlen)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = 0;
	else {
		snprintf(err, errlen, "[kafka] %s: '%s' is not true or false", key, v);
		return -EINVAL;
	}
	return 0;
}

int sbfs_kafka_config_set(sbfs_kafka_config *c, const char *key, const char *value,
			  char *err, size_t errlen)
{
	long long x;
	int rc;
	if (!strcmp(key, "cache_bytes")) {
		if ((rc = num(key, value, 1 << 20, (long long)1 << 40, &x, err, errlen)) == 0)
			c->cache_bytes = (size_t)x;
		return rc;
	}
	if (!strcmp(key, "keys_bytes")) {
		if ((rc = num(key, value, 4096, (long long)1 << 40, &x, err, errlen)) == 0)
			c->keys_bytes = (size_t)x;
		return rc;
	}
	if (!strcmp(key, "timeout_ms")) {
		if ((rc = num(key, value, 100, INT_MAX / 2, &x, err, errlen)) == 0)
			c->timeout_ms = (int)x;
		return rc;
	}
	if (!strcmp(key, "num.partitions")) {
		if ((rc = num(key, value, 1, 100000, &x, err, errlen)) == 0)
			c->num_partitions = (int)x;
		return rc;
	}
	if (!strcmp(key, "replication.factor")) {
		if ((rc = num(key, value, -1, 1000, &x, err, errlen)) == 0)
			c->replication = (int)x;
		return rc;
	}
	if (!strcmp(key, "allow_topic_delete"))
		return boolean(key, value, &c->allow_topic_delete, err, errlen);
	if (!strcmp(key, "ls_gaps")) {
		static const char *const modes[] = { [SBFS_KAFKA_GAPS_AUTO] = "auto",
						     [SBFS_KAFKA_GAPS_SKIP] = "skip",
						     [SBFS_KAFKA_GAPS_LIST] = "list" };
		for (int i = 0; i < 3; i++) {
			if (!strcmp(value, modes[i])) {
				c->ls_gaps = i;
				return 0;
			}
		}
		snprintf(err, errlen, "[kafka] %s: '%s' is not auto, skip or list", key, value);
		return -EINVAL;
	}
	/* a librdkafka property: a later one replaces an earlier one */
	for (size_t i = 0; i < c->nprops; i++) {
		if (!strcmp(c->props[i].key, key)) {
			char *v = strdup(value);
			if (!v)
				return -ENOMEM;
			free(c->props[i].value);
			c->props[i].value = v;
			return 0;
		}
	}
	kc_prop *v = realloc(c->props, (c->nprops + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	c->props = v;
	char *k = strdup(key), *val = strdup(value);
	if (!k || !val) {
		free(k);
		free(val);
		return -ENOMEM;
	}
	c->props[c->nprops++] = (kc_prop){ k, val };
	return 0;
}

void sbfs_kafka_config_free(sbfs_kafka_config *c)
{
	for (size_t i = 0; i < c->nprops; i++) {
		free(c->props[i].key);
		free(c->props[i].value);
	}
	free(c->props);
	c->props = NULL;
	c->nprops = 0;
}

const char sbfs_kafka_usage[] =
	"  With [mount] backend = kafka the topics of a Kafka cluster are mounted\n"
	"  (LOG_DIR is not used; a topic of one partition is a directory):\n"
	"  [kafka] bootstrap.servers HOST:PORT,... (required), timeout_ms 30000 (calls\n"
	"          fail with EIO or ETIMEDOUT after it), cache_bytes 67108864 (fetched\n"
	"          records kept in memory), keys_bytes 67108864 (the key maps of .keys/:\n"
	"          past it .keys/ fails with ENOBUFS), num.partitions 1 and\n"
	"          replication.factor -1\n"
	"          (the broker's) of a topic made by mkdir, allow_topic_delete false\n"
	"          (rmdir of an empty topic deletes it), ls_gaps auto (skip the offsets\n"
	"          without a record, reading the partition, in topics whose\n"
	"          cleanup.policy has compact; skip: in every topic; list: in none);\n"
	"          any other key is a librdkafka\n"
	"          property (security.protocol, sasl.*, ssl.*, acks (default all),\n"
	"          compression.type, ...). As -o: kafka.KEY=VALUE.\n";
