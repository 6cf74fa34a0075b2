/*
 * cmd_verify.c - `streambus verify LOG_DIR [TOPIC]` (or LOG_DIR/TOPIC): check every record's
 * CRC, the offsets' order and every index entry (store/verify.c), print each
 * problem with its file and byte position, and exit 0 (clean), 1 (damage) or
 * 2 (usage or I/O error). A progress bar on stderr when it is a terminal;
 * --json prints the same as one JSON object.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "sb_store.h"

static const char help[] =
	"usage: streambus verify [--json] [--progress | --no-progress] [-q] LOG_DIR [TOPIC]\n"
	"       streambus verify [OPTIONS] LOG_DIR/TOPIC\n"
	"\n"
	"Check every topic of LOG_DIR (or just TOPIC) without changing anything:\n"
	"every record's CRC; offsets dense and increasing within and across\n"
	"segments, matching segment names and headers; every index file (header\n"
	"and entry CRCs, count, covered length) and entry (it must point at the\n"
	"record with its offset and stream position); every time index file (its\n"
	"entries against the records' running maximum time); the meta and clean\n"
	"files.\n"
	"Each problem is printed as 'TOPIC: offset O: FILE: byte N: what', without\n"
	"'offset O: ' when it is not about one record (O: the offset of the record\n"
	"concerned, or expected there) and without 'byte N: ' when it is about the\n"
	"whole file.\n"
	"Problems of index files are notes, not damage: they are derived data that\n"
	"the next mount or 'streambus recover' rebuilds. Records are counted from\n"
	"the log start (meta): removed records still on disk are not.\n"
	"When the records are sound, the key index of each\n"
	"topic (its *.keys tables and the records after them) is checked against\n"
	"the records: an entry naming a record without its key, or with another\n"
	"size, time or tombstone flag, is damage: 'streambus recover' rebuilds the\n"
	"topic's key index from the log. A table not used (damaged, or after one)\n"
	"is a note: its offsets are replayed from the log.\n"
	"\n"
	"  --json          one JSON object on stdout: {\"log_dir\", \"in_use\",\n"
	"                  \"topics\": [{\"topic\", \"ok\", \"problems\": [{\"kind\",\n"
	"                  \"file\", \"pos\", \"offset\", \"message\", \"counted\"}],\n"
	"                  \"records\", ...}],\n"
	"                  \"key_index\": [{\"topic\", \"notes\", \"problems\" (the first\n"
	"                  10 wrong entries), \"checked\", \"wrong\"}] (when the records\n"
	"                  are sound), \"damage\", \"io_errors\", \"exit_status\"}\n"
	"  --progress      show the progress bar even if stderr is not a terminal\n"
	"  --no-progress   never show it (default: only on a terminal)\n"
	"  -q, --quiet     print problems only, no per-topic summary\n"
	"  -h, --help      this help\n"
	"\n"
	"Exit status: 0 no damage, 1 damage found, 2 usage or I/O error.\n"
	"'streambus recover LOG_DIR' repairs what loses no record (indexes, meta);\n"
	"'streambus recover --cut LOG_DIR TOPIC' cuts a log at its damage.\n";

typedef struct vstate {
	int bar;                 /* show the progress bar */
	int bar_shown;           /* a bar is on the line now */
	int quiet;
	uint64_t base, total;    /* bytes of earlier topics, of all topics */
	struct timespec t0, last;
	const char *topic;
	uint64_t io_errors;
	uint64_t damage;         /* problems that count */
	uint64_t in_flight;      /* newest-segment index problems while in use */
	int in_use;              /* a process holds LOG_DIR/.lock (mounted) */
	int json;                /* --json: problems as JSON objects */
	uint64_t nproblems;      /* problems of the current topic (JSON commas) */
} vstate;

static const char *const kind_name[SB_VERIFY_NKINDS] = {
	[SB_VERIFY_RECORD] = "record", [SB_VERIFY_ORDER] = "order", [SB_VERIFY_INDEX] = "index",
	[SB_VERIFY_FILE] = "file", [SB_VERIFY_IO] = "io",
};

/* One problem as a JSON object (in the current topic's "problems" list). */
static void json_problem(vstate *st, const sb_verify_problem *p, int counted)
{
	printf("%s\n    {\"kind\": \"%s\", \"file\": ", st->nproblems++ ? "," : "",
	       (unsigned)p->kind < SB_VERIFY_NKINDS ? kind_name[p->kind] : "?");
	sb_cmd_put_json_str(stdout, p->path, strlen(p->path));
	if (p->pos == SB_VERIFY_NOPOS)
		printf(", \"pos\": null");
	else
		printf(", \"pos\": %" PRIu64, p->pos);
	if (p->offset == SB_VERIFY_NOOFF)
		printf(", \"offset\": null");
	else
		printf(", \"offset\": %" PRIu64, p->offset);
	printf(", \"message\": ");
	sb_cmd_put_json_str(stdout, p->msg, strlen(p->msg));
	printf(", \"counted\": %s}", counted ? "true" : "false");
}

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void bar_clear(vstate *st)
{
	if (st->bar_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		st->bar_shown = 0;
	}
}

static void fmt_rate(char *b, size_t cap, double bps)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (bps >= 1024 && u < 4) {
		bps /= 1024;
		u++;
	}
	snprintf(b, cap, "%.1f %s/s", bps, unit[u]);
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	vstate *st = arg;
	struct timespec now;
	uint64_t all = st->base + done;
	double el, rate, frac;
	char rb[32], eta[32];
	int fill, width = 30;

	(void)total;
	if (!st->bar)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (st->bar_shown && secs(&st->last, &now) < 0.1 && all < st->total)
		return;
	st->last = now;
	el = secs(&st->t0, &now);
	frac = st->total ? (double)all / (double)st->total : 1.0;
	if (frac > 1)
		frac = 1;
	rate = el > 0 ? (double)all / el : 0;
	fmt_rate(rb, sizeof rb, rate);
	if (rate > 0 && st->total >= all) {
		uint64_t left = (uint64_t)((double)(st->total - all) / rate + 0.5);
		snprintf(eta, sizeof eta, "%" PRIu64 ":%02" PRIu64 " left", left / 60, left % 60);
	} else {
		snprintf(eta, sizeof eta, "-:-- left");
	}
	fill = (int)(frac * width);
	fputs("\r\033[K[", stderr);
	for (int i = 0; i < width; i++)
		fputc(i < fill ? '#' : ' ', stderr);
	fprintf(stderr, "] %3d%%  %s  %s  %s", (int)(frac * 100), rb, eta, st->topic);
	fflush(stderr);
	st->bar_shown = 1;
}

/* "TOPIC: [offset N: ]FILE: [byte B: ]" for a problem's line. */
static void problem_where(char *buf, size_t cap, const char *topic, const sb_verify_problem *p)
{
	size_t n = (size_t)snprintf(buf, cap, "%s: ", topic);

	if (n < cap && p->offset != SB_VERIFY_NOOFF)
		n += (size_t)snprintf(buf + n, cap - n, "offset %" PRIu64 ": ", p->offset);
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n, "%s: ", p->path);
	if (n < cap && p->pos != SB_VERIFY_NOPOS)
		snprintf(buf + n, cap - n, "byte %" PRIu64 ": ", p->pos);
}

static void on_problem(void *arg, const sb_verify_problem *p)
{
	vstate *st = arg;
	char where[PATH_MAX + 512];
	int note;
	const char *what;

	bar_clear(st);
	problem_where(where, sizeof where, st->topic, p);
	if (p->kind == SB_VERIFY_IO) {
		st->io_errors++;
		if (st->json)
			json_problem(st, p, 0);
		fflush(stdout);
		fprintf(stderr, "streambus verify: %s%s\n", where, p->msg);
		return;
	}
	/* Index files are derived data that the next mount or `streambus
	 * recover` rebuilds from their segments (a full disk can leave one
	 * missing): noted, not counted. While mounted, the newest segment's
	 * index is written only when the segment is closed, and its very end
	 * (p->tail) may be a record or the segment being written. */
	note = p->kind == SB_VERIFY_INDEX || (st->in_use && p->tail);
	if (st->in_use && p->tail)
		what = " (in use: being written: not counted)";
	else if (st->in_use && p->newest)
		what = " (in use: not counted)";
	else
		what = " (will be rebuilt: not counted)";
	if (note)
		st->in_flight++;
	else
		st->damage++;
	if (st->json)
		json_problem(st, p, !note);
	else
		printf("%s%s%s\n", where, p->msg, note ? what : "");
	fflush(stdout);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The topic directories of dir, sorted; *out (and its strings) the caller's. */
static int list_topics(const char *dir, char ***out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL, path[PATH_MAX + 256];
	size_t cnt = 0, cap = 0;
	int rc = 0;

	if (!d)
		return -errno;
	while ((errno = 0, e = readdir(d)) != NULL) {
		struct stat st;

		if (!sb_topic_name_valid(e->d_name))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (cnt == cap) {
			char **t = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *t);
			if (!t) {
				rc = -ENOMEM;
				break;
			}
			v = t;
		}
		if (!(v[cnt] = strdup(e->d_name))) {
			rc = -ENOMEM;
			break;
		}
		cnt++;
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	if (rc) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_str); /* v is NULL with no topic */
	*out = v;
	*n = cnt;
	return 0;
}

/* The first offset the topic holds: the log start (meta) when past the
 * first record still in a segment. */
static uint64_t first_offset(const sb_verify_result *r)
{
	return r->start > r->first && r->start <= r->next ? r->start : r->first;
}

/* nio: the topic's files that could not be read (it is not ok then either) */
static void summary(const char *topic, const sb_verify_result *r, uint64_t dmg, uint64_t nio)
{
	uint64_t first = first_offset(r);

	printf("%s: ", topic);
	if (dmg)
		printf("%" PRIu64 " problem%s", dmg, dmg == 1 ? "" : "s");
	if (nio)
		printf("%s%" PRIu64 " file%s not read", dmg ? ", " : "", nio, nio == 1 ? "" : "s");
	if (!dmg && !nio)
		printf("ok");
	printf(" (%" PRIu64 " records", r->records);
	if (r->next > first)
		printf(", offsets %" PRIu64 "..%" PRIu64, first, r->next - 1);
	printf(", %" PRIu64 " segment%s, %" PRIu64 " bytes, %" PRIu64 " index entries)\n",
	       r->segments, r->segments == 1 ? "" : "s", r->bytes, r->index_entries);
}

/* Open a topic's JSON object (its problems follow as they are found). */
static void json_topic_start(vstate *st, const char *topic, int i)
{
	printf("%s\n  {\"topic\": ", i ? "," : "");
	sb_cmd_put_json_str(stdout, topic, strlen(topic));
	printf(", \"problems\": [");
	st->nproblems = 0;
}

/* Close it: the counts, or the error that kept the check from running. */
static void json_topic_end(const vstate *st, const sb_verify_result *r, uint64_t dmg, uint64_t nio, int rc)
{
	printf("%s]", st->nproblems ? "\n  " : "");
	if (rc) {
		printf(", \"ok\": false, \"error\": ");
		sb_cmd_put_json_str(stdout, strerror(-rc), strlen(strerror(-rc)));
		printf("}");
		return;
	}
	printf(", \"ok\": %s, \"damage\": %" PRIu64 ", \"records\": %" PRIu64
	       ", \"first\": %" PRIu64 ", \"next\": %" PRIu64 ", \"segments\": %" PRIu64
	       ", \"bytes\": %" PRIu64 ", \"index_entries\": %" PRIu64 "}",
	       dmg || nio ? "false" : "true", dmg, r->records, first_offset(r), r->next, r->segments,
	       r->bytes, r->index_entries);
}

/* The key check (verify_keys): its open's notes about key tables, and the
 * wrong entries of the topic being checked, the first KEYS_SHOWN named
 * and the rest counted in the topic's summary line (a table of another
 * log's keys made a line for each of 753 keys). With --json the notes wait
 * for their topic's object (the open makes them before any is printed). */
#define KEYS_SHOWN 10
typedef struct kcheck {
	const char *cmd;
	int json;
	const char *topic;  /* being checked */
	uint64_t n;         /* its wrong entries said */
	char **notes;       /* json: "TOPIC\0MESSAGE" of the open's notes */
	size_t nnotes;
} kcheck;

static void key_json_msg(kcheck *k, const char *msg)
{
	printf("%s", k->n++ ? ", " : "");
	sb_cmd_put_json_str(stdout, msg, strlen(msg));
}

static void key_problem(void *arg, const char *msg)
{
	kcheck *k = arg;

	if (k->json && k->n < KEYS_SHOWN)
		key_json_msg(k, msg);
	else if (k->n++ < KEYS_SHOWN)
		printf("%s: %s\n", k->topic, msg);
}

/* What the open reports: about a key table (not used: derived data,
 * rebuilt from the log) a note, as for an index file; the rest as the
 * other tools say it (sb_cmd_ro_report). */
static void key_open_report(void *arg, const char *topic, const char *msg)
{
	kcheck *k = arg;
	size_t tl = topic ? strlen(topic) : 0, ml = strlen(msg);
	char **nn, *e;

	if (strncmp(msg, SB_REPORT_KEY_INDEX, strlen(SB_REPORT_KEY_INDEX))) {
		sb_cmd_ro_report((void *)k->cmd, topic, msg);
		return;
	}
	if (!k->json) {
		printf("%s: %s (derived data: not counted; a mount or 'streambus recover' rebuilds it)\n",
		       topic ? topic : "?", msg);
		return;
	}
	if (!(nn = realloc(k->notes, (k->nnotes + 1) * sizeof(*nn))))
		return;
	k->notes = nn;
	if (!(e = malloc(tl + ml + 2)))
		return;
	memcpy(e, topic ? topic : "", tl + 1);
	memcpy(e + tl + 1, msg, ml + 1);
	k->notes[k->nnotes++] = e;
}

/* The key index of topic l against its records: its wrong entries. */
static uint64_t key_check_one(kcheck *k, const char *dir, const char *topic, sb_log *l)
{
	uint64_t checked = 0, wrong = 0;
	int rc;

	k->topic = topic;
	k->n = 0;
	if (k->json) {
		printf("%s\n  {\"topic\": ", "");
		sb_cmd_put_json_str(stdout, topic, strlen(topic));
		printf(", \"notes\": [");
		for (size_t j = 0, m = 0; j < k->nnotes; j++)
			if (!strcmp(k->notes[j], topic)) {
				const char *msg = k->notes[j] + strlen(topic) + 1;
				printf("%s", m++ ? ", " : "");
				sb_cmd_put_json_str(stdout, msg, strlen(msg));
			}
		printf("], \"problems\": [");
	}
	rc = sb_log_verify_keys(l, &checked, &wrong, key_problem, k);
	if (k->json)
		printf("], \"checked\": %" PRIu64 ", \"wrong\": %" PRIu64 "%s}", checked, wrong,
		       rc ? ", \"error\": true" : "");
	if (rc)
		sb_cmd_err(k->cmd, "%s/%s: key index: %s", dir, topic, sb_strerror(rc));
	else if (wrong && !k->json) /* a problem: with -q too */
		printf("%s: key index: %" PRIu64 " of %" PRIu64 " keys name the wrong record%s "
		       "(derived data: 'streambus recover' rebuilds it from the log)\n",
		       topic, wrong, checked, k->n > KEYS_SHOWN ? " (the first 10 named)" : "");
	return rc ? 0 : wrong;
}

/* The key index of each topic against its records (the store opened
 * read-only, as `streambus get` does): the count of wrong entries. With
 * --json, `, "key_index": [...]` (one object a topic checked). A check
 * that could not run (the store not opened: said why) counts in
 * *io_errors. */
static uint64_t verify_keys(const char *cmd, const char *dir, char **topics, size_t n, int json,
			    uint64_t *io_errors)
{
	kcheck k = {.cmd = cmd, .json = json};
	/* one topic (verify LOG_DIR TOPIC): that topic opened alone */
	sb_cmd_ro ro = {.report = key_open_report, .arg = &k, .topic = n == 1 ? topics[0] : NULL};
	uint64_t bad = 0;
	sb_store *s;

	if (sb_cmd_open_ro_with(cmd, dir, &ro, &s)) {
		(*io_errors)++;
		return 0;
	}
	if (json)
		printf(", \"key_index\": [");
	for (size_t i = 0, out = 0; i < n; i++) {
		sb_log *l;
		if (sb_store_get(s, topics[i], &l)) {
			/* refused by the open, said why (no damage: verify found
			 * none): the check could not run */
			sb_cmd_err(cmd, "%s/%s: key index not checked: the topic could not be opened", dir,
				   topics[i]);
			(*io_errors)++;
			continue;
		}
		if (json && out++)
			printf(",");
		bad += key_check_one(&k, dir, topics[i], l);
	}
	if (json)
		printf("%s]", n ? "\n  " : "");
	sb_store_close(s);
	for (size_t j = 0; j < k.nnotes; j++)
		free(k.notes[j]);
	free(k.notes);
	return bad;
}

/* The topics to check: w's one, or every topic directory of LOG_DIR. */
static int pick_topics(const char *cmd, const sb_cmd_where *w, char ***topics, size_t *n)
{
	char path[PATH_MAX + 256];
	int rc;

	if (w->has_topic) {
		struct stat sst;

		snprintf(path, sizeof path, "%s/%s", w->dir, w->topic);
		if (stat(path, &sst) < 0 || !S_ISDIR(sst.st_mode)) {
			sb_cmd_err(cmd, "%s: no such topic", path);
			return SB_EXIT_ERROR;
		}
		*topics = malloc(sizeof **topics);
		if (!*topics || !((*topics)[0] = strdup(w->topic))) {
			free(*topics);
			sb_cmd_err(cmd, "%s", strerror(ENOMEM));
			return SB_EXIT_ERROR;
		}
		*n = 1;
		return 0;
	}
	if ((rc = list_topics(w->dir, topics, n))) {
		sb_cmd_err(cmd, "%s: %s", w->dir, strerror(-rc));
		return SB_EXIT_ERROR;
	}
	return 0;
}

int sb_cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"progress", no_argument, NULL, 'p'},
		{"no-progress", no_argument, NULL, 'P'},
		{"quiet", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd = "verify", *dir;
	char **topics = NULL, path[PATH_MAX + 256];
	size_t ntopics = 0;
	sb_cmd_where w;
	vstate st;
	uint64_t damage = 0;
	int opt, rc, bar = -1, status = SB_EXIT_ERROR;

	memset(&st, 0, sizeof st);
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":hq", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': bar = 1; break;
		case 'P': bar = 0; break;
		case 'q': st.quiet = 1; break;
		case 'j': st.json = 1; break;
		case 'h':
			fputs(help, stdout);
			return sb_cmd_finish_stdout(cmd, SB_EXIT_OK);
		default:
			return sb_cmd_usage_error(cmd, "unknown option '%s'", sb_cmd_bad_option(argc, argv));
		}
	}
	if (sb_cmd_log_dir_args(cmd, argc, argv, &w) || pick_topics(cmd, &w, &topics, &ntopics))
		return SB_EXIT_ERROR;
	dir = w.dir;
	st.bar = bar >= 0 ? bar : isatty(STDERR_FILENO);
	sb_cmd_wait_finishing(cmd, dir); /* a daemon just unmounted: its indexes first */
	st.in_use = sb_cmd_dir_in_use(dir);
	if (st.json) {
		printf("{\"log_dir\": ");
		sb_cmd_put_json_str(stdout, dir, strlen(dir));
		printf(", \"in_use\": %s, \"topics\": [", st.in_use ? "true" : "false");
	} else if (st.in_use && !st.quiet) {
		printf("%s: in use (mounted?): the newest segment of a topic being written "
		       "may have a stale index; that is not counted as damage\n", dir);
	}
	for (size_t i = 0; i < ntopics; i++) {
		uint64_t b = 0;

		snprintf(path, sizeof path, "%s/%s", dir, topics[i]);
		if (sb_verify_topic_bytes(path, &b) == 0)
			st.total += b;
	}
	clock_gettime(CLOCK_MONOTONIC, &st.t0);
	for (size_t i = 0; i < ntopics; i++) {
		sb_verify_result r;
		uint64_t io0 = st.io_errors;

		snprintf(path, sizeof path, "%s/%s", dir, topics[i]);
		st.topic = topics[i];
		if (st.json)
			json_topic_start(&st, topics[i], (int)i);
		rc = st.in_use ? sb_cmd_verify_live(path, on_problem, on_progress, &st, &r)
			       : sb_verify_topic(path, on_problem, on_progress, &st, &r);
		bar_clear(&st);
		if (rc) {
			if (st.json)
				json_topic_end(&st, NULL, 0, 0, rc);
			fflush(stdout);
			sb_cmd_err(cmd, "%s: %s", path, strerror(-rc));
			st.io_errors++;
			continue;
		}
		st.base += r.bytes;
		if (st.json)
			json_topic_end(&st, &r, st.damage - damage, st.io_errors - io0, 0);
		else if (!st.quiet)
			summary(topics[i], &r, st.damage - damage, st.io_errors - io0);
		damage = st.damage;
	}
	bar_clear(&st);
	if (st.json)
		printf("%s]", ntopics ? "\n" : "");
	if (!damage && !st.io_errors && ntopics)
		damage += verify_keys(cmd, dir, topics, ntopics, st.json, &st.io_errors);
	if (st.io_errors)
		status = SB_EXIT_ERROR;
	else if (damage)
		status = SB_EXIT_DAMAGE;
	else
		status = SB_EXIT_OK;
	if (st.json)
		printf(", \"damage\": %" PRIu64 ", \"io_errors\": %" PRIu64 ", \"exit_status\": %d}\n", damage,
		       st.io_errors, status);
	else if (!st.quiet && ntopics == 0)
		printf("%s: no topics\n", dir);
	if (damage && !st.quiet && !st.json)
		printf("damage found: %" PRIu64 " problem%s\n", damage, damage == 1 ? "" : "s");
	for (size_t i = 0; i < ntopics; i++)
		free(topics[i]);
	free(topics);
	return sb_cmd_finish_stdout(cmd, status);
}
