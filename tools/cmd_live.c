/*
 * cmd_live.c - the tools beside a mounted daemon: look until a look is
 * quiet.
 *
 * stat, dump, get and verify read a LOG_DIR's files one after the other
 * while a mount changes them: retention, rm and compaction drop and replace
 * segments, appends write the newest one. One look is then no snapshot: a
 * segment dropped after the listing cannot be opened ("cannot open: No
 * such file or directory", the topic left out), a record being copied into
 * the newest segment reads as a corrupt one that a mount would cut, a
 * readdir that meets a rename may see neither name. Damage stays where it
 * is. So while LOG_DIR is in use (a process holds its lock), what a look
 * reports is kept, and a look that reported something is taken again, up
 * to LOOKS looks; the last look's reports are then said, in order, as if
 * they came from that one look.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cmd.h"

#define LOOKS 3

/* Does some process hold a lock on dir/.lock (a mounted daemon)? Looks in
 * /proc/locks rather than trying the lock, so as never to stand in the way of
 * a daemon starting. */
int sb_cmd_dir_in_use(const char *dir)
{
	char path[PATH_MAX + 16], line[256];
	struct stat st;
	FILE *f;
	int used = 0;

	snprintf(path, sizeof path, "%s/%s", dir, SB_STORE_LOCK_NAME);
	if (stat(path, &st) < 0)
		return 0;
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (!used && fgets(line, sizeof line, f)) {
		unsigned maj, min;
		unsigned long long ino;
		char *p = line;

		/* "1: FLOCK  ADVISORY  WRITE 1234 08:02:5678 0 EOF" */
		for (int field = 0; field < 5 && p; field++) {
			p = strchr(p, ' ');
			while (p && *p == ' ')
				p++;
		}
		if (p && sscanf(p, "%x:%x:%llu", &maj, &min, &ino) == 3)
			used = ino == (unsigned long long)st.st_ino &&
			       maj == major(st.st_dev) && min == minor(st.st_dev);
	}
	fclose(f);
	return used;
}

/* ---- what a look said ---- */

/* One report: a verify problem (p, its path and msg the copies here) or a
 * store open's report (topic, msg; topic may be NULL). */
typedef struct kept {
	sb_verify_problem p;
	char *topic, *path, *msg;
} kept;

typedef struct look {
	kept *v;
	size_t n, cap;
	int loud;  /* reports that count: the caller would say them */
	int nomem; /* a copy failed: this look cannot be replayed whole */
	sb_verify_progress_fn progress; /* verify's, passed on */
	void *arg;
} look;

static void look_clear(look *lk)
{
	for (size_t i = 0; i < lk->n; i++) {
		free(lk->v[i].topic);
		free(lk->v[i].path);
		free(lk->v[i].msg);
	}
	free(lk->v);
	lk->v = NULL;
	lk->n = lk->cap = 0;
	lk->loud = lk->nomem = 0;
}

static char *dup_or_null(const char *s, int *nomem)
{
	char *d = s ? strdup(s) : NULL;

	*nomem |= s && !d;
	return d;
}

/* Keep a copy of one report (p may be NULL); loud: does it count? */
static void look_keep(look *lk, const sb_verify_problem *p, const char *topic, const char *msg, int loud)
{
	kept *k;
	int nomem = 0;

	lk->loud += loud;
	if (lk->n == lk->cap) {
		size_t cap = lk->cap ? lk->cap * 2 : 16;
		kept *v = realloc(lk->v, cap * sizeof(*v));
		if (!v) {
			lk->nomem = 1;
			return;
		}
		lk->v = v;
		lk->cap = cap;
	}
	k = &lk->v[lk->n];
	memset(k, 0, sizeof(*k));
	if (p)
		k->p = *p;
	k->topic = dup_or_null(topic, &nomem);
	k->path = dup_or_null(p ? p->path : NULL, &nomem);
	k->msg = dup_or_null(msg, &nomem);
	if (nomem) {
		free(k->topic);
		free(k->path);
		free(k->msg);
		lk->nomem = 1;
		return;
	}
	k->p.path = k->path;
	k->p.msg = k->msg;
	lk->n++;
}

/* ---- verify: a topic's files ---- */

/* What the caller counts while in use (cmd_verify.c, on_problem): all but
 * index files and a newest segment's tail being written. */
static int counts(const sb_verify_problem *p)
{
	return p->kind == SB_VERIFY_IO || (p->kind != SB_VERIFY_INDEX && !p->tail);
}

static void keep_problem(void *arg, const sb_verify_problem *p)
{
	look_keep(arg, p, NULL, p->msg, counts(p));
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	look *lk = arg;

	if (lk->progress)
		lk->progress(lk->arg, done, total);
}

int sb_cmd_verify_live(const char *topic_dir, sb_verify_problem_fn on_problem,
		       sb_verify_progress_fn on_progress, void *arg, sb_verify_result *res)
{
	look lk = {.progress = on_progress, .arg = arg};
	sb_verify_result r;
	int rc = 0;

	for (int i = 0; i < LOOKS; i++) {
		look_clear(&lk);
		rc = sb_verify_topic(topic_dir, keep_problem, progress, &lk, &r);
		if (rc || lk.nomem || !lk.loud)
			break;
	}
	if (!rc && lk.nomem) /* said as it comes: one more look, unkept */
		rc = sb_verify_topic(topic_dir, on_problem, on_progress, arg, &r);
	else
		for (size_t i = 0; !rc && i < lk.n; i++)
			on_problem(arg, &lk.v[i].p);
	look_clear(&lk);
	if (!rc)
		*res = r;
	return rc;
}

/* ---- a read-only open ---- */

static void keep_report(void *arg, const char *topic, const char *msg)
{
	look_keep(arg, NULL, topic, msg, !sb_cmd_ro_quiet(msg));
}

int sb_cmd_open_ro_live(const char *dir, sb_store_options *o, sb_store **out)
{
	void (*report)(void *, const char *, const char *) = o->report;
	void *arg = o->report_arg;
	look lk = {0};
	sb_store *s = NULL;
	int rc = 0;

	o->report = keep_report;
	o->report_arg = &lk;
	for (int i = 0; i < LOOKS; i++) {
		if (s)
			sb_store_close(s);
		s = NULL;
		look_clear(&lk);
		rc = sb_store_open(dir, o, &s);
		if (rc || lk.nomem || !lk.loud)
			break;
	}
	o->report = report;
	o->report_arg = arg;
	if (!rc && lk.nomem) { /* said as it comes: one more look, unkept */
		sb_store_close(s);
		s = NULL;
		rc = sb_store_open(dir, o, &s);
	} else if (report) {
		for (size_t i = 0; i < lk.n; i++)
			report(arg, lk.v[i].topic, lk.v[i].msg);
	}
	look_clear(&lk);
	if (!rc)
		*out = s;
	return rc;
}
