/*
 * cmd_recover.c - `streambus recover [--cut] LOG_DIR [TOPIC]`: what mounting
 * does after a crash, checking every record (sb_store_options.full_check):
 * sb_store_open() cuts torn tails back to the last whole record, rebuilds
 * missing or stale indexes, rewrites a damaged meta, and refuses a topic
 * damaged where no torn write can be, unless --cut. It reports each change;
 * we print them, and how to repair what is left. Refuses while LOG_DIR is
 * mounted (the daemon holds LOG_DIR/.lock: SB_ELOCKED), naming the daemon;
 * waits a few seconds for a holder that is not a live mount (a daemon
 * finishing its unmount).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "sb_store.h"

static const char help[] =
	"usage: streambus recover [--cut] LOG_DIR [TOPIC]\n"
	"       streambus recover [--cut] LOG_DIR/TOPIC\n"
	"\n"
	"Repair LOG_DIR after a crash as mounting it would, but checking every\n"
	"record of every segment (what 'streambus verify' checks): cut torn tails\n"
	"back to the last whole record, rebuild missing or stale index files,\n"
	"rewrite a missing or damaged meta file (the log then starts at its first\n"
	"segment), rebuild a key index whose entries do not match the log (as\n"
	"'streambus verify' checks them). Prints each change, or 'nothing to\n"
	"recover'. Refuses to run while LOG_DIR is mounted (streambusfs holds\n"
	"LOG_DIR/.lock), naming the daemon; waits up to 10 s for a daemon that\n"
	"was just unmounted.\n"
	"The whole store is opened (and so recovered) even when TOPIC is given.\n"
	"\n"
	"Damage that cannot be a torn write (after a clean close, or in records\n"
	"that were synced: bit rot) is only reported, naming the file and byte:\n"
	"nothing synced is deleted unasked, and the mount refuses that topic.\n"
	"\n"
	"  --cut         repair such a log, dropping the damaged records: a gap\n"
	"                where later segments follow (they stay), a cut in the\n"
	"                newest segment (only TOPIC's log, when TOPIC is given)\n"
	"  -h, --help    this help\n"
	"\n"
	"Exit status: 0 done (changed or not), 1 damage left that only --cut\n"
	"repairs, 2 usage error, LOG_DIR in use, or an error that stopped the\n"
	"recovery.\n";

/* A change the store reported, printed once the open is done: of a
 * refused topic, the indexes rebuilt are not (they are made in memory and
 * saved only when the topic opens); what was done on disk is. */
typedef struct change {
	struct change *next;
	char *topic, *msg;
} change;

typedef struct rstate {
	unsigned long changes;
	const char *dir;
	unsigned long refused;
	change *first, **last;   /* reported, in order */
	char **gone;             /* the refused topics */
	int *gone_err;           /* and why */
	size_t ngone;
} rstate;

/* A daemon just unmounted (still closing) or another tool holds LOG_DIR. */
static void on_lock_wait(void *arg, const sb_store_holder *h)
{
	const char *dir = arg;

	if (h->pid > 0)
		sb_cmd_err("recover", "waiting (up to %u s) for process %ld to release %s ...",
			   SB_LOCK_WAIT_DEFAULT_MS / 1000, h->pid, dir);
	else
		sb_cmd_err("recover", "waiting (up to %u s) for another process to release %s ...",
			   SB_LOCK_WAIT_DEFAULT_MS / 1000, dir);
}

/* Refuse a LOG_DIR in use, naming who holds it. */
static void say_locked(const char *cmd, const char *dir)
{
	sb_store_holder *h = malloc(sizeof(*h));

	if (h && sb_store_holder_get(dir, h) == 0 && h->pid > 0 && h->mounted)
		sb_cmd_err(cmd, "%s: in use by process %ld, which has it mounted on %s; "
			   "unmount it first", dir, h->pid, h->mountpoint);
	else if (h && h->pid > 0)
		sb_cmd_err(cmd, "%s: still in use by process %ld after %u s (it holds %s/%s)",
			   dir, h->pid, SB_LOCK_WAIT_DEFAULT_MS / 1000, dir, SB_STORE_LOCK_NAME);
	else
		sb_cmd_err(cmd, "%s: in use (another process holds %s/%s)", dir, dir,
			   SB_STORE_LOCK_NAME);
	free(h);
}

static void say_refused(const rstate *st, const char *topic, int err)
{
	if (err == SB_ECORRUPT)
		printf("%s: damage left: 'streambus recover --cut %s %s' cuts the log there\n", topic,
		       st->dir, topic);
	else
		printf("%s: not opened: %s\n", topic, sb_strerror(err));
}

static int on_refused(void *arg, const char *topic, int err, const char *msg)
{
	rstate *st = arg;
	char **g = realloc(st->gone, (st->ngone + 1) * sizeof(*g));
	int *e = g ? realloc(st->gone_err, (st->ngone + 1) * sizeof(*e)) : NULL;

	(void)msg; /* its report said why */
	if (g)
		st->gone = g;
	if (e)
		st->gone_err = e;
	st->refused++;
	if (e && (g[st->ngone] = strdup(topic))) {
		e[st->ngone++] = err; /* said after its changes (print_changes) */
		return 0;
	}
	say_refused(st, topic, err); /* no memory to hold it */
	return 0;
}

static void on_report(void *arg, const char *topic, const char *msg)
{
	rstate *st = arg;
	change *c = calloc(1, sizeof(*c));

	if (!c || !(c->topic = strdup(topic ? topic : "")) || !(c->msg = strdup(msg))) {
		if (c)
			free(c->topic);
		free(c);
		st->changes++; /* no memory to hold it: said at once */
		printf("%s%s%s\n", topic ? topic : "", topic && *topic ? ": " : "", msg);
		return;
	}
	*st->last = c;
	st->last = &c->next;
}

static int refused(const rstate *st, const char *topic)
{
	for (size_t i = 0; i < st->ngone; i++)
		if (!strcmp(st->gone[i], topic))
			return 1;
	return 0;
}

/* Print the changes (of a refused topic, not the indexes rebuilt), then
 * what is left refused; free them all. */
static void print_changes(rstate *st)
{
	for (change *c = st->first, *n; c; c = n) {
		n = c->next;
		if (!*c->topic || !refused(st, c->topic) || !strstr(c->msg, "index rebuilt")) {
			st->changes++;
			if (*c->topic)
				printf("%s: %s\n", c->topic, c->msg);
			else
				printf("%s\n", c->msg);
		}
		free(c->topic);
		free(c->msg);
		free(c);
	}
	st->first = NULL;
	st->last = &st->first;
	for (size_t i = 0; i < st->ngone; i++) {
		say_refused(st, st->gone[i], st->gone_err[i]);
		free(st->gone[i]);
	}
	free(st->gone);
	free(st->gone_err);
	st->gone = NULL;
	st->gone_err = NULL;
	st->ngone = 0;
}

/* Refuse a directory that holds no log, naming a LOG_DIR in it if any
 * (recover run one level too high). */
static void no_log(const char *cmd, const char *dir)
{
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	while (d && !found && (e = readdir(d)) != NULL)
		found = e->d_name[0] != '.' &&
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
			sb_cmd_is_log_dir(path);
	if (d)
		closedir(d);
	sb_cmd_err(cmd, "%s: holds no log: none of its directories has a segment file "
		   "(a LOG_DIR holds TOPIC/NNN.seg files)%s%s%s; nothing done", dir,
		   found ? ": did you mean " : "", found ? path : "", found ? "?" : "");
}

int sb_cmd_recover(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"cut", no_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = "recover", *dir;
	sb_cmd_where w;
	sb_store_options o;
	sb_store *s = NULL;
	rstate st = {0};
	int opt, rc, cut = 0, status = SB_EXIT_ERROR;

	st.last = &st.first;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(help, stdout);
			return sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
		case 'c':
			cut = 1;
			break;
		default:
			return sb_cmd_usage_error(cmd, "unknown option '%s'", sb_cmd_bad_option(argc, argv));
		}
	}
	/* sb_store_open creates a missing directory; recover must not. */
	if (sb_cmd_log_dir_args(cmd, argc, argv, &w))
		return SB_EXIT_ERROR;
	dir = w.dir;
	if (!w.has_topic && sb_cmd_holds_no_log(dir)) {
		no_log(cmd, dir);
		return SB_EXIT_ERROR;
	}
	if (w.has_topic) {
		char path[PATH_MAX + 256];
		struct stat sst;

		snprintf(path, sizeof path, "%s/%s", dir, w.topic);
		if (stat(path, &sst) < 0 || !S_ISDIR(sst.st_mode)) {
			sb_cmd_err(cmd, "%s: no such topic", path);
			return SB_EXIT_ERROR;
		}
	}
	sb_store_options_default(&o);
	o.no_flusher = 1;
	o.repair = cut;
	o.repair_topic = w.has_topic ? w.topic : NULL;
	o.full_check = 1;
	o.report = on_report;
	o.report_arg = &st;
	o.lock_wait_ms = SB_LOCK_WAIT_DEFAULT_MS;
	o.lock_waiting = on_lock_wait;
	o.lock_waiting_arg = (void *)dir;
	rc = sb_store_open(dir, &o, &s);
	if (rc == SB_ELOCKED) {
		say_locked(cmd, dir);
		return SB_EXIT_ERROR;
	}
	if (rc) {
		print_changes(&st); /* what was done before the error */
		sb_cmd_err(cmd, "%s: %s", dir, sb_strerror(rc));
		return SB_EXIT_ERROR;
	}
	st.dir = dir;
	/* the refused topics first (collected, printed after their
	 * changes were dropped) */
	sb_store_list_refused(s, on_refused, &st);
	print_changes(&st);
	rc = sb_store_close(s);
	if (rc) {
		sb_cmd_err(cmd, "%s: closing: %s", dir, sb_strerror(rc));
		return sb_cmd_finish_stdout(cmd, SB_EXIT_ERROR);
	}
	if (st.changes == 0 && !st.refused)
		printf("nothing to recover\n");
	status = st.refused ? SB_EXIT_DAMAGE : SB_EXIT_OK;
	return sb_cmd_finish_stdout(cmd, status);
}
