/*
 * backend_store_settings.c - the store backend's settings: [log], and
 * [topic:NAME] overriding any [log] key for one topic (it wins over -o for
 * that topic: it is the more specific setting); an -o key=value that is
 * not a [mount] key is a [log] key.
 */
#include "backend_store.h"
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NLOGKEYS 12

static const char *const log_keys[NLOGKEYS] = {
	"segment_bytes", "index_interval_bytes", "max_record_bytes", "sync",
	"sync_interval_ms", "retention_bytes", "retention_ms", "compression",
	"compression_block_bytes", "key_memtable_bytes", "cleanup", "delete_retention_ms",
};

const char sbfs_store_usage[] =
	"  [log]   segment_bytes 134217728, index_interval_bytes 4096,\n"
	"          max_record_bytes 1048576, sync interval (never|interval|always),\n"
	"          sync_interval_ms 1000, retention_bytes -1, retention_ms -1,\n"
	"          compression none (none|lz4|zstd: sealed segments, in the\n"
	"          background), compression_block_bytes 65536,\n"
	"          key_memtable_bytes 4194304 (the key index's keys in memory),\n"
	"          cleanup delete (delete|compact|compact,delete; compact+delete too),\n"
	"          delete_retention_ms 86400000 (how long compaction keeps a tombstone)\n"
	"  [topic:NAME] any [log] key, for one topic\n";

typedef struct topic_cfg {
	char *name;
	unsigned set;           /* bit k: log_keys[k] was set */
	int line[NLOGKEYS];     /* line of each key set */
	sb_log_config cfg;      /* only the fields named by `set` count */
} topic_cfg;

typedef struct store_settings {
	sb_log_config log;      /* [log] (after -o) */
	/* line of each [log] key (-1: from -o), for errors found when
	 * checking the whole */
	int log_line[NLOGKEYS];
	topic_cfg *topics;      /* [topic:NAME] sections */
	size_t ntopics;
} store_settings;

int sbfs_store_settings_new(void **out)
{
	store_settings *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	sb_log_config_default(&s->log);
	*out = s;
	return 0;
}

void sbfs_store_settings_free(void *p)
{
	store_settings *s = p;
	for (size_t i = 0; i < s->ntopics; i++)
		free(s->topics[i].name);
	free(s->topics);
	free(s);
}

sb_log_config *sbfs_store_log_config(void *p)
{
	return &((store_settings *)p)->log;
}

size_t sbfs_store_topics(const void *p)
{
	return ((const store_settings *)p)->ntopics;
}

const char *sbfs_store_topic_name(const void *p, size_t i)
{
	return ((const store_settings *)p)->topics[i].name;
}

static int log_key_index(const char *key)
{
	for (int i = 0; i < NLOGKEYS; i++)
		if (strcmp(key, log_keys[i]) == 0)
			return i;
	return -1;
}

/* Set [log] key number k in *lc from v. */
static int set_log_key(sb_log_config *lc, int k, const char *v, const sbfs_src *s, char **err)
{
	int64_t n;
	const char *key = log_keys[k];
	switch (k) {
	case 0:
		if (sbfs_parse_int(v, 1, INT64_MAX, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (a positive byte count)", v);
		lc->segment_bytes = (uint64_t)n;
		return 0;
	case 1:
		if (sbfs_parse_int(v, 1, UINT32_MAX, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (a positive byte count)", v);
		lc->index_interval_bytes = (uint32_t)n;
		return 0;
	case 2:
		if (sbfs_parse_int(v, 1, UINT32_MAX, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (a positive byte count)", v);
		lc->max_record_bytes = (uint32_t)n;
		return 0;
	case 3:
		if (sb_sync_parse(v, &lc->sync))
			return sbfs_config_errf(err, s, key, "bad value '%s' (never, interval or always)", v);
		return 0;
	case 4:
		if (sbfs_parse_int(v, 1, UINT32_MAX, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (positive milliseconds)", v);
		lc->sync_interval_ms = (uint32_t)n;
		return 0;
	case 5:
	case 6:
		if (sbfs_parse_int(v, -1, INT64_MAX, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (-1 or a count)", v);
		if (k == 5)
			lc->retention_bytes = n;
		else
			lc->retention_ms = n;
		return 0;
	case 7:
		if (sb_compression_parse(v, &lc->compression))
			return sbfs_config_errf(err, s, key, "bad value '%s' (none, lz4 or zstd)", v);
		return 0;
	case 8:
		if (sbfs_parse_int(v, 1024, 16 << 20, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (a byte count, 1024 to 16 MiB)", v);
		lc->compression_block_bytes = (uint32_t)n;
		return 0;
	case 9:
		if (sbfs_parse_int(v, 4096, (int64_t)1 << 32, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (a byte count, 4096 to 4 GiB)", v);
		lc->key_memtable_bytes = (uint64_t)n;
		return 0;
	case 10:
		if (sb_cleanup_parse(v, &lc->cleanup))
			return sbfs_config_errf(err, s, key, "bad value '%s' (delete, compact or compact,delete)", v);
		return 0;
	case 11:
		if (sbfs_parse_int(v, 0, INT64_MAX / 1000000, &n))
			return sbfs_config_errf(err, s, key, "bad value '%s' (milliseconds)", v);
		lc->delete_retention_ms = n;
		return 0;
	}
	return sbfs_config_errf(err, s, key, "unknown key");
}

static topic_cfg *topic_slot(store_settings *c, const char *name)
{
	for (size_t i = 0; i < c->ntopics; i++)
		if (strcmp(c->topics[i].name, name) == 0)
			return &c->topics[i];
	topic_cfg *t = realloc(c->topics, (c->ntopics + 1) * sizeof *t);
	if (!t)
		return NULL;
	c->topics = t;
	t = &c->topics[c->ntopics];
	memset(t, 0, sizeof *t);
	t->name = strdup(name);
	if (!t->name)
		return NULL;
	c->ntopics++;
	return t;
}

int sbfs_store_setting(void *p, const char *section, const char *key, const char *value,
		       const sbfs_src *src, char **err)
{
	store_settings *c = p;
	int k = log_key_index(key);
	if (!section) { /* -o key=value */
		if (k < 0)
			return 1;
		int rc = set_log_key(&c->log, k, value, src, err);
		if (rc == 0) /* a bad combination is -o's, not the file's */
			c->log_line[k] = -1;
		return rc;
	}
	if (strcmp(section, "log") == 0) {
		if (k < 0)
			return sbfs_config_errf(err, src, key, "unknown key in [log]");
		int rc = set_log_key(&c->log, k, value, src, err);
		if (rc == 0)
			c->log_line[k] = src->line;
		return rc;
	}
	if (strncmp(section, "topic:", 6) == 0) {
		const char *tn = section + 6;
		topic_cfg *t;
		if (!sb_topic_name_valid(tn))
			return sbfs_config_errf(err, src, key, "section [%s]: bad topic name", section);
		if (k < 0)
			return sbfs_config_errf(err, src, key, "unknown key in [%s]", section);
		if (!(t = topic_slot(c, tn)))
			return sbfs_config_errf(err, src, key, "out of memory");
		int rc = set_log_key(&t->cfg, k, value, src, err);
		if (rc == 0) {
			t->set |= 1u << k;
			t->line[k] = src->line;
		}
		return rc;
	}
	return 1;
}

int sbfs_store_topic_config(void *p, const char *name, sb_log_config *cfg)
{
	const store_settings *c = p;
	for (size_t i = 0; i < c->ntopics; i++) {
		const topic_cfg *t = &c->topics[i];
		if (strcmp(t->name, name) != 0)
			continue;
		if (t->set & (1u << 0)) cfg->segment_bytes = t->cfg.segment_bytes;
		if (t->set & (1u << 1)) cfg->index_interval_bytes = t->cfg.index_interval_bytes;
		if (t->set & (1u << 2)) cfg->max_record_bytes = t->cfg.max_record_bytes;
		if (t->set & (1u << 3)) cfg->sync = t->cfg.sync;
		if (t->set & (1u << 4)) cfg->sync_interval_ms = t->cfg.sync_interval_ms;
		if (t->set & (1u << 5)) cfg->retention_bytes = t->cfg.retention_bytes;
		if (t->set & (1u << 6)) cfg->retention_ms = t->cfg.retention_ms;
		if (t->set & (1u << 7)) cfg->compression = t->cfg.compression;
		if (t->set & (1u << 8)) cfg->compression_block_bytes = t->cfg.compression_block_bytes;
		if (t->set & (1u << 9)) cfg->key_memtable_bytes = t->cfg.key_memtable_bytes;
		if (t->set & (1u << 10)) cfg->cleanup = t->cfg.cleanup;
		if (t->set & (1u << 11)) cfg->delete_retention_ms = t->cfg.delete_retention_ms;
	}
	return 0;
}

/* The [log] key a check failure names (by its text), or -1. */
static int key_in(const char *why)
{
	for (int i = 0; why && i < NLOGKEYS; i++)
		if (strstr(why, log_keys[i]) && !(i == 3 && strstr(why, "sync_interval_ms")) &&
		    !(i == 7 && strstr(why, "compression_block_bytes")) &&
		    !(i == 6 && strstr(why, "delete_retention_ms")))
			return i;
	return -1;
}

/* The message of a failed check of the settings of `section` ("log", or
 * "topic:NAME"), naming the key it names and where that key was set:
 * line > 0 in the file, -1 by -o, 0 unknown. -1 (*err NULL if no memory). */
static int check_failed(const struct sbfs_config *cfg, const char *section, int k, int line,
			const char *why, char **err)
{
	const char *file = cfg->config_path ? cfg->config_path : "mount.ini";
	int rc;
	why = why ? why : "invalid";
	int topic = strcmp(section, "log") != 0;
	if (k >= 0 && line > 0)
		rc = asprintf(err, "%s:%d: %s%s%skey '%s': bad value: %s", file, line, topic ? "[" : "",
			      topic ? section : "", topic ? "] " : "", log_keys[k], why);
	else if (k >= 0 && line < 0)
		rc = asprintf(err, "-o %s: bad value: %s", log_keys[k], why);
	else
		rc = asprintf(err, "%s%s[%s] %s%s: bad value: %s", cfg->config_path ? file : "",
			      cfg->config_path ? ": " : "", section, k >= 0 ? "key " : "settings",
			      k >= 0 ? log_keys[k] : "", why);
	if (rc < 0)
		*err = NULL;
	return -1;
}

int sbfs_store_settings_check(void *p, const struct sbfs_config *cfg, char **err)
{
	store_settings *c = p;
	const char *why = NULL;
	free(*err);
	*err = NULL;
	if (sb_log_config_check(&c->log, &why)) {
		int k = key_in(why);
		return check_failed(cfg, "log", k, k >= 0 ? c->log_line[k] : 0, why, err);
	}
	for (size_t i = 0; i < c->ntopics; i++) {
		const topic_cfg *tc = &c->topics[i];
		sb_log_config t = c->log;
		sbfs_store_topic_config(c, tc->name, &t);
		why = NULL;
		if (sb_log_config_check(&t, &why)) {
			char sec[300];
			int k = key_in(why);
			/* the topic's own line, else the [log] (or -o) one it inherits */
			int line = k < 0 ? 0 : tc->set & (1u << k) ? tc->line[k] : c->log_line[k];
			snprintf(sec, sizeof sec, "topic:%s", tc->name);
			return check_failed(cfg, sec, k, line, why, err);
		}
	}
	return 0;
}
