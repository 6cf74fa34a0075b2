/*
 * cmd_stat.c - `streambus stat LOG_DIR [TOPIC]`: one line per topic with its
 * offsets, record count, bytes, segments and oldest/newest timestamps, as an
 * aligned table or (--json) a JSON object. Opens the store read-only: no
 * lock, no writes, safe while the directory is mounted.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "sb_store.h"

static const char help[] =
	"usage: streambus stat [--json] LOG_DIR [TOPIC]\n"
	"       streambus stat [--json] LOG_DIR/TOPIC\n"
	"\n"
	"Show each topic of LOG_DIR (or just TOPIC): first and next offset, record\n"
	"count, bytes on disk (BYTES) and the same uncompressed (LOGICAL: more than\n"
	"BYTES once sealed segments are compressed, see `compression`), segments,\n"
	"and the times (UTC) of the first and the last record (records may carry\n"
	"any time: restored or set ones).\n"
	"Reads only; works while LOG_DIR is mounted.\n"
	"\n"
	"  --json        one JSON object: {\"log_dir\": ..., \"topics\": [...]}\n"
	"  -h, --help    this help\n";

typedef struct row {
	char *name;
	sb_log_stats st;
	char *refused;  /* a topic a mount refuses (or that cannot be read): why */
} row;

typedef struct rows {
	row *v;
	size_t n, cap;
	int err;
	int unreadable; /* a topic could not be read (not damage) */
	const char *only; /* the topic asked for, or NULL */
} rows;

static int add_row(rows *r, const char *name, sb_log *log, const char *refused)
{
	row x;
	int rc;

	memset(&x, 0, sizeof x);
	if (log && (rc = sb_log_get_stats(log, &x.st)))
		return r->err = rc;
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 16;
		row *t = realloc(r->v, nc * sizeof *t);
		if (!t)
			return r->err = -ENOMEM;
		r->v = t;
		r->cap = nc;
	}
	x.name = strdup(name);
	if (refused)
		x.refused = strdup(refused);
	if (!x.name || (refused && !x.refused)) {
		free(x.name);
		free(x.refused);
		return r->err = -ENOMEM;
	}
	if (x.st.unreadable && !refused)
		sb_cmd_err("stat", "warning: %s: damaged: the %s record cannot be read; its time "
			   "is not shown (see 'streambus verify')", name,
			   x.st.unreadable == 3 ? "oldest and the newest" : x.st.unreadable & 1 ? "oldest" : "newest");
	r->v[r->n++] = x;
	return 0;
}

/* A log the read-only open ended at damage: a mount refuses it. */
static int add_log(rows *r, const char *name, sb_log *log)
{
	char dw[640], why[800];

	if (!sb_log_damaged_tail(log))
		return add_row(r, name, log, NULL);
	snprintf(why, sizeof why, "damaged at %s", sb_cmd_damage_where(log, dw, sizeof dw));
	return add_row(r, name, NULL, why);
}

static int list_cb(void *arg, const char *name, sb_log *log)
{
	return add_log(arg, name, log);
}

/* The topics the read-only open refused: damage, or a file it could not read. */
static int refused_cb(void *arg, const char *name, int err, const char *msg)
{
	rows *r = arg;

	if (r->only && strcmp(r->only, name))
		return 0;
	if (err != SB_ECORRUPT && err != SB_EVERSION)
		r->unreadable = 1;
	return add_row(r, name, NULL, msg && *msg ? msg : sb_strerror(err));
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const row *)a)->name, ((const row *)b)->name);
}

static void put_time_json(const char *field, int64_t ns, int have)
{
	char t[64];

	if (!have) {
		printf("\"%s_ns\": null, \"%s\": null", field, field);
		return;
	}
	sb_cmd_fmt_time(t, sizeof t, ns, 1);
	printf("\"%s_ns\": %lld, \"%s\": \"%s\"", field, (long long)ns, field, t);
}

static void print_json(const char *dir, const rows *r)
{
	printf("{\"log_dir\": ");
	sb_cmd_put_json_str(stdout, dir, strlen(dir));
	printf(", \"topics\": [");
	for (size_t i = 0; i < r->n; i++) {
		const sb_log_stats *s = &r->v[i].st;
		int have = s->records > 0;

		printf("%s\n  {\"topic\": ", i ? "," : "");
		sb_cmd_put_json_str(stdout, r->v[i].name, strlen(r->v[i].name));
		printf(", \"refused\": ");
		if (r->v[i].refused) {
			/* a mount serves nothing of it: no numbers */
			sb_cmd_put_json_str(stdout, r->v[i].refused, strlen(r->v[i].refused));
			printf("}");
			continue;
		}
		printf("null");
		printf(", \"start\": %" PRIu64 ", \"first\": %" PRIu64 ", \"next\": %" PRIu64 ", \"records\": %" PRIu64
		       ", \"bytes\": %" PRIu64 ", \"logical_bytes\": %" PRIu64 ", \"stream_bytes\": %" PRIu64
		       ", \"segments\": %" PRIu32 ", \"compressed_segments\": %" PRIu32 ", ",
		       s->start, s->first, s->next, s->records, s->bytes, s->logical_bytes, s->stream_bytes, s->segments,
		       s->compressed);
		put_time_json("oldest", s->oldest_ns, have && !(s->unreadable & 1));
		printf(", ");
		put_time_json("newest", s->newest_ns, have && !(s->unreadable & 2));
		printf("}");
	}
	printf("%s]}\n", r->n ? "\n" : "");
}

enum { C_TOPIC, C_FIRST, C_NEXT, C_RECORDS, C_BYTES, C_LOGICAL, C_SEGS, C_OLDEST, C_NEWEST, NCOL };

static void cells(const row *x, char c[NCOL][64])
{
	const sb_log_stats *s = &x->st;

	snprintf(c[C_TOPIC], 64, "%s", "");
	snprintf(c[C_FIRST], 64, "%" PRIu64, s->first);
	snprintf(c[C_NEXT], 64, "%" PRIu64, s->next);
	snprintf(c[C_RECORDS], 64, "%" PRIu64, s->records);
	snprintf(c[C_BYTES], 64, "%" PRIu64, s->bytes);
	snprintf(c[C_LOGICAL], 64, "%" PRIu64, s->logical_bytes);
	snprintf(c[C_SEGS], 64, "%" PRIu32, s->segments);
	/* "-": no records, or (damage: warned about) the record is unreadable */
	strcpy(c[C_OLDEST], "-");
	strcpy(c[C_NEWEST], "-");
	if (s->records > 0 && !(s->unreadable & 1))
		sb_cmd_fmt_time(c[C_OLDEST], 64, s->oldest_ns, 0);
	if (s->records > 0 && !(s->unreadable & 2))
		sb_cmd_fmt_time(c[C_NEWEST], 64, s->newest_ns, 0);
}

static void print_table(const rows *r)
{
	static const char *head[NCOL] = {"TOPIC", "FIRST", "NEXT", "RECORDS", "BYTES", "LOGICAL",
					 "SEGMENTS", "OLDEST", "NEWEST"};
	/* numbers right-aligned, text left-aligned */
	static const int right[NCOL] = {0, 1, 1, 1, 1, 1, 1, 0, 0};
	size_t w[NCOL];
	char c[NCOL][64];

	for (int k = 0; k < NCOL; k++)
		w[k] = strlen(head[k]);
	for (size_t i = 0; i < r->n; i++) {
		cells(&r->v[i], c);
		if (strlen(r->v[i].name) > w[C_TOPIC])
			w[C_TOPIC] = strlen(r->v[i].name);
		for (int k = 1; k < NCOL && !r->v[i].refused; k++)
			if (strlen(c[k]) > w[k])
				w[k] = strlen(c[k]);
	}
	for (int k = 0; k < NCOL - 1; k++)
		printf(right[k] ? "%*s  " : "%-*s  ", (int)w[k], head[k]);
	printf("%s\n", head[NCOL - 1]);
	for (size_t i = 0; i < r->n; i++) {
		cells(&r->v[i], c);
		printf("%-*s  ", (int)w[C_TOPIC], r->v[i].name);
		if (r->v[i].refused) {
			printf("refused: %s\n", r->v[i].refused);
			continue;
		}
		for (int k = 1; k < NCOL - 1; k++)
			printf(right[k] ? "%*s  " : "%-*s  ", (int)w[k], c[k]);
		printf("%s\n", c[NCOL - 1]);
	}
}

int sb_cmd_stat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = "stat";
	char where[4400];
	sb_cmd_where w;
	sb_store *s = NULL;
	rows r = {0};
	int json = 0, opt, rc, status = SB_EXIT_ERROR;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = 1; break;
		case 'h':
			fputs(help, stdout);
			return sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
		default:
			return sb_cmd_usage_error(cmd, "unknown option '%s'", sb_cmd_bad_option(argc, argv));
		}
	}
	if (sb_cmd_log_dir_args(cmd, argc, argv, &w))
		return SB_EXIT_ERROR;
	sb_cmd_ro ro = {.report = sb_cmd_ro_report, .arg = (void *)cmd,
			.no_keys = 1, /* no key index: not shown */
			.topic = w.has_topic ? w.topic : NULL};
	if (sb_cmd_open_ro_with(cmd, w.dir, &ro, &s))
		return SB_EXIT_ERROR;
	if (w.has_topic) {
		sb_log *log;

		rc = sb_store_get(s, w.topic, &log);
		if (rc == -ENOENT) {
			sb_cmd_err(cmd, "%s: no such topic", sb_cmd_where_str(&w, where, sizeof where));
			goto out_close_store;
		}
		r.only = w.topic;
		if (rc)
			sb_store_list_refused(s, refused_cb, &r);
		else
			add_log(&r, w.topic, log);
	} else {
		sb_store_list(s, list_cb, &r);
		sb_store_list_refused(s, refused_cb, &r);
		if (r.n > 1)
			qsort(r.v, r.n, sizeof *r.v, by_name);
	}
	if (r.err) {
		sb_cmd_err(cmd, "%s: %s", w.dir, sb_strerror(r.err));
		goto out_free_rows;
	}
	if (json)
		print_json(w.dir, &r);
	else
		print_table(&r);
	/* a topic that could not be read is an error reading the logs */
	status = sb_cmd_finish_stdout(cmd, r.unreadable ? SB_EXIT_ERROR : SB_EXIT_OK);
out_free_rows:
	for (size_t i = 0; i < r.n; i++) {
		free(r.v[i].name);
		free(r.v[i].refused);
	}
	free(r.v);
out_close_store:
	sb_store_close(s);
	return status;
}
