/*
 * kafka_class.c - the class of [mount] backend = kafka (backend.h): its
 * settings (kafka_config.c's [kafka] section) and its open, a librdkafka
 * client (kafka_client.c) under the backend (backend_kafka.c). Here, not
 * in backend_kafka.c: the unit tests link that without librdkafka.
 */
#include "config.h"
#include "kafka.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sbfs_backend_kafka_open(const sbfs_kafka_config *cfg, char *err, size_t errlen,
			    sbfs_backend **out)
{
	kc *c;
	int rc = kc_rdkafka_open(cfg->props, cfg->nprops, cfg->timeout_ms, err, errlen, &c);
	if (rc)
		return rc;
	rc = sbfs_backend_kafka_open_client(cfg, c, out);
	if (rc)
		snprintf(err, errlen, "kafka: the cluster did not answer: %s", strerror(-rc));
	return rc;
}

/* ---- the class: [mount] backend = kafka ---- */

static int kafka_settings_new(void **out)
{
	sbfs_kafka_config *c = malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	sbfs_kafka_config_init(c);
	*out = c;
	return 0;
}

static void kafka_settings_free(void *s)
{
	if (!s)
		return;
	sbfs_kafka_config_free(s);
	free(s);
}

/* [kafka] KEY = VALUE, or -o kafka.KEY=VALUE. */
static int kafka_setting(void *s, const char *section, const char *key, const char *value,
			 const sbfs_src *src, char **err)
{
	char msg[256];
	if (section ? strcmp(section, "kafka") != 0 : strncmp(key, "kafka.", 6) != 0)
		return 1;
	if (sbfs_kafka_config_set(s, section ? key : key + 6, value, msg, sizeof msg))
		return sbfs_config_errf(err, src, key, "%s", msg);
	return 0;
}

static int kafka_check(void *s, const struct sbfs_config *cfg, char **err)
{
	const sbfs_kafka_config *c = s;
	for (size_t i = 0; i < c->nprops; i++)
		if (!strcmp(c->props[i].key, "bootstrap.servers") && c->props[i].value[0])
			return 0;
	/* named where the backend was chosen: its line, or -o backend= */
	sbfs_src src = { .file = cfg->backend_line ? cfg->config_path : NULL, .dir = NULL,
			 .line = cfg->backend_line };
	return sbfs_config_errf(err, &src, "backend",
				"kafka needs [kafka] bootstrap.servers (or -o "
				"kafka.bootstrap.servers=HOST:PORT)");
}

static int kafka_open(const struct sbfs_config *cfg, sbfs_backend **out)
{
	char err[512] = "";
	const sbfs_kafka_config *c = cfg->bsettings;
	int rc = sbfs_backend_kafka_open(c, err, sizeof err, out);
	if (rc)
		sbfs_log("%s", err[0] ? err : "kafka: cannot start the client");
	return rc;
}

const sbfs_backend_class sbfs_backend_kafka = {
	.name = "kafka",
	.usage = sbfs_kafka_usage,
	.settings_new = kafka_settings_new,
	.settings_free = kafka_settings_free,
	.setting = kafka_setting,
	.check = kafka_check,
	.open = kafka_open,
};
