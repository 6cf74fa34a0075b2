/*
 * lock.c - LOG_DIR/.lock: take the store's flock (waiting, bounded, for a
 * holder that is finishing), write and read the holder note, and tell
 * whether the holder's mount is live (from /proc/self/mountinfo).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "fsutil.h"
#include "lock.h"

/* Poll period while waiting for the holder to let go. */
#define LOCK_POLL_MS 10

long long sb_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Undo mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* Is there a mount at `mountpoint` whose source is `source`? A mountinfo
 * line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - TYPE SOURCE SUPER". */
static int mounted_at(const char *mountpoint, const char *source)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *mp = NULL, *src = NULL, *tok;
		int field = 0, after_dash = -1;

		for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
			field++;
			if (field == 5)
				mp = tok;
			else if (field > 6 && after_dash < 0 && strcmp(tok, "-") == 0)
				after_dash = 0;
			else if (after_dash >= 0 && ++after_dash == 2)
				src = tok;
		}
		if (!mp || !src)
			continue;
		unescape(mp);
		unescape(src);
		found = strcmp(mp, mountpoint) == 0 && strcmp(src, source) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* The process holding an flock on file (dev, ino), from /proc/locks (pids
 * as this process's namespace sees them), or 0. A line: "1: FLOCK ADVISORY
 * WRITE 1234 fe:00:5678 0 EOF"; a waiter's has "->" after the number. */
static long flock_pid(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256];
	long pid = 0;

	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		char type[16];
		long p;
		unsigned maj, min;
		unsigned long long in;

		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", type, &p, &maj, &min, &in) == 5 &&
		    strcmp(type, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
		    in == (unsigned long long)ino)
			pid = p;
	}
	fclose(f);
	return pid;
}

/* Line n (0-based) of the note in buf into out ("" when absent). */
static void note_line(const char *buf, int n, char *out, size_t cap)
{
	const char *p = buf, *nl;

	for (; n > 0 && (nl = strchr(p, '\n')); n--)
		p = nl + 1;
	nl = n == 0 ? strchr(p, '\n') : NULL;
	size_t len = nl ? (size_t)(nl - p) : 0;
	if (len >= cap)
		len = 0;
	memcpy(out, p, len);
	out[len] = '\0';
}

int sb_store_holder_get(const char *dir, sb_store_holder *out)
{
	char p[PATH_MAX];
	char buf[2 * PATH_MAX + 64];
	int rc = sb_path(p, dir, SB_LOCK_NAME);

	if (rc)
		return rc;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	rc = n < 0 || fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (rc)
		return rc;
	buf[n] = '\0';

	sb_store_holder *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	char pid[32];
	note_line(buf, 0, pid, sizeof(pid));
	h->pid = strtol(pid, NULL, 10);
	if (h->pid < 0)
		h->pid = 0;
	note_line(buf, 1, h->mountpoint, sizeof(h->mountpoint));
	note_line(buf, 2, h->dir, sizeof(h->dir));
	char closing[96];
	unsigned long long done = 0, total = 0, steps = 0;
	note_line(buf, 3, closing, sizeof(closing));
	int got = sscanf(closing, "closing %llu %llu %llu", &done, &total, &steps);
	if (got < 2)
		done = total = 0;
	if (got < 3) /* (an older note: topics only) */
		steps = 0;
	h->closing_done = done;
	h->closing_total = total;
	h->closing_steps = steps;
	long locker = flock_pid(st.st_dev, st.st_ino);
	h->held = locker > 0;
	if (h->held && locker != h->pid) {
		/* a holder that wrote no note (yet): the note is its predecessor's */
		h->pid = locker;
		h->mountpoint[0] = h->dir[0] = '\0';
		h->closing_done = h->closing_total = h->closing_steps = 0;
	}
	h->mounted = h->mountpoint[0] && h->dir[0] && mounted_at(h->mountpoint, h->dir);
	*out = *h;
	free(h);
	return 0;
}

/* The note: "PID\nMOUNTPOINT\nDIR\n", and "closing DONE TOTAL STEPS\n"
 * while closing (total > 0). Written over the old one, then cut to length,
 * so that a reader never sees an empty file once written. */
static void write_note(int fd, const char *dir, const char *mountpoint, uint64_t done, uint64_t total,
		       uint64_t steps)
{
	char *note = NULL, closing[96] = "";
	if (total)
		snprintf(closing, sizeof(closing), "closing %llu %llu %llu\n", (unsigned long long)done,
			 (unsigned long long)total, (unsigned long long)steps);
	int n = asprintf(&note, "%ld\n%s\n%s\n%s", (long)getpid(), mountpoint ? mountpoint : "",
			 dir, closing);

	if (n < 0)
		return; /* the note is informative only */
	if (pwrite(fd, note, (size_t)n, 0) == n && ftruncate(fd, n) == 0)
		(void)0;
	free(note);
}

/* The wait's deadline: lock_wait_ms from its start, and again from each
 * step of the holder's close (its note's count of topics closed, or of
 * steps inside them, moved). */
typedef struct waiting {
	long long deadline;
	long pid;
	uint64_t done, steps;
} waiting;

static void wait_begin(waiting *w, const sb_store_options *opt)
{
	*w = (waiting){.deadline = sb_mono_ms() + opt->lock_wait_ms, .pid = -1};
}

/* Past the deadline, given what the holder's note says now? */
static int wait_over(waiting *w, const sb_store_holder *h, const sb_store_options *opt)
{
	if (h->closing_total &&
	    (h->pid != w->pid || h->closing_done != w->done || h->closing_steps != w->steps)) {
		if (w->pid >= 0) /* progress seen (not the first look) */
			w->deadline = sb_mono_ms() + opt->lock_wait_ms;
		w->pid = h->pid;
		w->done = h->closing_done;
		w->steps = h->closing_steps;
	}
	return sb_mono_ms() >= w->deadline;
}

/* flock fd, waiting for a holder that is not a live mount (see sb_store.h). */
static int wait_flock(int fd, const char *dir, const sb_store_options *opt)
{
	sb_store_holder *h = calloc(1, sizeof(*h));
	int told = 0, rc;
	waiting w;

	wait_begin(&w, opt);
	if (!h)
		return -ENOMEM;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			rc = 0;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			rc = -errno;
			break;
		}
		if (sb_store_holder_get(dir, h) != 0)
			memset(h, 0, sizeof(*h));
		if (h->mounted || wait_over(&w, h, opt)) {
			rc = SB_ELOCKED;
			break;
		}
		if (!told && opt->lock_waiting)
			opt->lock_waiting(opt->lock_waiting_arg, h);
		told = 1;
		struct timespec ts = {0, LOCK_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	free(h);
	return rc;
}

void sb_lock_note_closing(int fd, const char *dir, const char *mountpoint, uint64_t done, uint64_t total,
			  uint64_t steps)
{
	write_note(fd, dir, mountpoint, done, total, steps);
}

void sb_store_wait_finishing(const char *dir, const sb_store_options *opt)
{
	sb_lock_wait_finishing(dir, opt);
}

void sb_lock_wait_finishing(const char *dir, const sb_store_options *opt)
{
	sb_store_holder *h;
	int told = 0;
	waiting w;

	if (!opt->lock_wait_ms || !(h = malloc(sizeof(*h))))
		return;
	wait_begin(&w, opt);
	while (sb_store_holder_get(dir, h) == 0 && h->held && !h->mounted && !wait_over(&w, h, opt)) {
		if (!told && opt->lock_waiting)
			opt->lock_waiting(opt->lock_waiting_arg, h);
		told = 1;
		struct timespec ts = {0, LOCK_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	free(h);
}

int sb_lock_take(const char *dir, const sb_store_options *opt, int *fd)
{
	char p[PATH_MAX];
	int rc = sb_path(p, dir, SB_LOCK_NAME);

	if (rc)
		return rc;
	const sb_io *io = opt->io ? opt->io : sb_io_default();
	int lfd = io->open(io->ctx, p, O_RDWR | O_CREAT, 0644);
	if (lfd < 0)
		return lfd;
	rc = wait_flock(lfd, dir, opt);
	if (rc) {
		io->close(io->ctx, lfd);
		return rc;
	}
	write_note(lfd, dir, opt->mountpoint, 0, 0, 0);
	*fd = lfd;
	return 0;
}
