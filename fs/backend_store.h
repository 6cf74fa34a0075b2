/*
 * backend_store.h - the store backend's own parts: its settings ([log] and
 * [topic:NAME] of mount.ini, and their -o keys), shared by backend_store.c
 * and backend_store_settings.c (and the fuzzers that check them). Only the
 * store backend's files include this, and with it sb_store.h.
 */
#ifndef SBFS_BACKEND_STORE_H
#define SBFS_BACKEND_STORE_H

#include "backend.h"
#include "sb_store.h"

struct sbfs_config;

extern const char sbfs_store_usage[];
int sbfs_store_settings_new(void **out);
void sbfs_store_settings_free(void *s);
int sbfs_store_setting(void *s, const char *section, const char *key, const char *value,
		       const sbfs_src *src, char **err);
int sbfs_store_settings_check(void *s, const struct sbfs_config *cfg, char **err);

/* The [log] settings (every topic's defaults). */
sb_log_config *sbfs_store_log_config(void *s);
/* Topic `name`'s config: *cfg is already the defaults; this applies the
 * [topic:NAME] overrides. Has the signature of sb_store_options.topic_config. */
int sbfs_store_topic_config(void *s, const char *name, sb_log_config *cfg);
/* The number of [topic:NAME] sections, and the name of the i-th. */
size_t sbfs_store_topics(const void *s);
const char *sbfs_store_topic_name(const void *s, size_t i);

#endif
