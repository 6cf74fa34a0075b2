/*
 * cmd_get.c - `streambus get LOG_DIR TOPIC KEY` (or LOG_DIR/TOPIC KEY): the
 * payload of KEY's latest record, as it is, on stdout. Opens the store
 * read-only: no lock, no writes, safe while mounted.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "sb_store.h"

static const char help[] =
	"usage: streambus get LOG_DIR TOPIC KEY\n"
	"       streambus get LOG_DIR/TOPIC KEY\n"
	"\n"
	"Write the payload of KEY's latest record in TOPIC to stdout, as it is\n"
	"(what `cat MOUNTPOINT/TOPIC/.keys/KEY` prints). A key is the name a\n"
	"record was appended under (the file created in the topic).\n"
	"Reads only; works while LOG_DIR is mounted.\n"
	"\n"
	"Exit status: 0 printed, 1 no such key (never written, or its latest\n"
	"record is a tombstone), 2 usage or I/O error, or damage.\n"
	"\n"
	"  -h, --help    this help\n";

int sb_cmd_get(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = "get", *key;
	char where[4400];
	sb_cmd_where w;
	sb_store *s = NULL;
	sb_log *log;
	int opt, rc, status = SB_EXIT_ERROR;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(help, stdout);
			return sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
		}
		const char *bad = sb_cmd_bad_option(argc, argv);
		return sb_cmd_usage_error(cmd, "unknown option '%s'%s", bad, bad[1] == '-' ? ""
					  : " (a TOPIC or KEY starting with '-' goes after '--')");
	}
	if (argc - optind < 2)
		return sb_cmd_usage_error(cmd, "wants LOG_DIR TOPIC KEY");
	if (argc - optind > 3)
		return sb_cmd_usage_error(cmd, "unexpected argument '%s' (wants LOG_DIR TOPIC KEY "
					  "or LOG_DIR/TOPIC KEY)", argv[optind + 3]);
	key = argv[argc - 1];
	if (!*key)
		return sb_cmd_usage_error(cmd, "a key is not empty");
	if (sb_cmd_log_dir_args(cmd, argc - 1, argv, &w))
		return SB_EXIT_ERROR;
	if (!w.has_topic)
		return sb_cmd_usage_error(cmd, "wants LOG_DIR TOPIC KEY");
	/* that topic alone: a get costs what its topic does, not LOG_DIR */
	sb_cmd_ro ro = {.report = sb_cmd_ro_report, .arg = (void *)cmd, .topic = w.topic};
	if (sb_cmd_open_ro_with(cmd, w.dir, &ro, &s))
		return SB_EXIT_ERROR;
	sb_cmd_where_str(&w, where, sizeof where);
	rc = sb_store_get(s, w.topic, &log);
	if (rc) {
		sb_cmd_err(cmd, "%s: %s", where, rc == -ENOENT ? "no such topic" : sb_strerror(rc));
		goto out_close;
	}
	if (sb_log_damaged_tail(log)) {
		/* the log as read ends at damage: a later record may hold the
		 * key, so its latest value is not known (nothing printed) */
		char dw[640];
		sb_cmd_err(cmd, "%s: key %s: latest value unknown: the log is damaged at %s and its records "
			   "from there on cannot be read (streambus verify names the damage; streambus recover "
			   "--cut drops the damaged records)", where, key, sb_cmd_damage_where(log, dw, sizeof dw));
		goto out_close;
	}
	size_t cap = 64 * 1024, got = 0;
	sb_record_info info;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		sb_cmd_err(cmd, "%s", sb_strerror(-ENOMEM));
		goto out_close;
	}
	rc = sb_log_get_key(log, key, strlen(key), buf, cap, &got, &info);
	if (rc == 0 && info.value_len > cap) {
		uint8_t *b = realloc(buf, info.value_len);
		if (!b) {
			rc = -ENOMEM;
		} else {
			buf = b;
			cap = info.value_len;
			rc = sb_log_get_key(log, key, strlen(key), buf, cap, &got, &info);
		}
	}
	if (rc == -ENOENT) {
		sb_cmd_err(cmd, "%s: no such key: %s", where, key);
		status = 1;
	} else if (rc) {
		sb_cmd_err(cmd, "%s: key %s: %s", where, key, sb_strerror(rc));
	} else {
		fwrite(buf, 1, got, stdout);
		status = sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
	}
	free(buf);
out_close:
	sb_store_close(s);
	return status;
}
