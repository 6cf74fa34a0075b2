/*
 * cmd_util.c - helpers shared by the streambus subcommands: messages,
 * number and time formatting, escaping for terminals and JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

void sb_cmd_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "streambus %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int sb_cmd_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "streambus %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'streambus %s --help')\n", cmd);
	return SB_EXIT_ERROR;
}

/* Is w a cluster of short options holding c ("-key" for 'k')? */
static int short_word_has(const char *w, int c)
{
	return w && w[0] == '-' && w[1] && w[1] != '-' && c && strchr(w + 1, c);
}

const char *sb_cmd_bad_option(int argc, char **argv)
{
	const char *before = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;
	const char *at = optind < argc ? argv[optind] : NULL;

	/* An unknown long option, or one given a value it does not take
	 * ("--help=x"), advanced optind past its word. So did a short option
	 * ending its cluster; one inside a cluster left optind at its word. */
	if (!optopt || (before && !strncmp(before, "--", 2) && strchr(before, '=')) ||
	    short_word_has(before, optopt))
		return before ? before : "?";
	return short_word_has(at, optopt) ? at : before ? before : "?";
}

/* Undo /proc/self/mountinfo's escapes (\\040 for a space), in place. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Is path in a streambusfs mount (of LOG_DIR src, /proc/self/mountinfo's
 * source field)? 1 and src, or 0 (src untouched). */
#define FUSE_SUPER_MAGIC 0x65735546
static int in_mount(const char *path, char *src, size_t cap)
{
	char real[PATH_MAX], line[3 * PATH_MAX], best[PATH_MAX] = "";
	struct statfs sf;
	size_t bestlen = 0;
	FILE *f;

	if (statfs(path, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC || !realpath(path, real) ||
	    !(f = fopen("/proc/self/mountinfo", "re")))
		return 0;
	while (fgets(line, sizeof line, f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE SOURCE SUPEROPTS */
		char mp[PATH_MAX], type[64], from[PATH_MAX];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%63s %4095s", type, from) != 2 || strcmp(type, "fuse.streambusfs"))
			continue;
		unescape_octal(mp);
		size_t n = strlen(mp);
		int under = !strncmp(real, mp, n) && (real[n] == '\0' || real[n] == '/' || n == 1);
		if (under && n >= bestlen) {
			bestlen = n;
			unescape_octal(from);
			snprintf(best, sizeof best, "%s", from);
		}
	}
	fclose(f);
	if (!bestlen)
		return 0;
	snprintf(src, cap, "%s", best);
	return 1;
}

/* Split the path p (trailing slashes dropped) into its parent and last part.
 * 0, or -EINVAL when there is no last part or it does not fit. */
static int split_last(const char *p, sb_cmd_where *w)
{
	char tmp[PATH_MAX], *slash;
	size_t n = strlen(p);

	if (n >= sizeof tmp)
		return -EINVAL;
	memcpy(tmp, p, n + 1);
	while (n > 1 && tmp[n - 1] == '/')
		tmp[--n] = '\0';
	slash = strrchr(tmp, '/');
	if (!slash) {
		snprintf(w->dir, sizeof w->dir, ".");
		slash = tmp - 1;
	} else if (slash == tmp) {
		snprintf(w->dir, sizeof w->dir, "/");
	} else {
		*slash = '\0';
		snprintf(w->dir, sizeof w->dir, "%s", tmp);
	}
	if (!slash[1] || strlen(slash + 1) >= sizeof w->topic)
		return -EINVAL;
	snprintf(w->topic, sizeof w->topic, "%s", slash + 1);
	w->has_topic = 1;
	return 0;
}

/* path is no directory: say so, and when it is a file of a topic (a
 * segment, its index...), which LOG_DIR and topic to give instead. */
static void not_a_dir(const char *cmd, const char *path)
{
	sb_cmd_where f, t;
	char real[PATH_MAX];

	int in_topic = !split_last(path, &f) && sb_store_is_topic_dir(f.dir) && !split_last(f.dir, &t);
	/* "00000000000000000000.seg" from inside the topic: its real path */
	if (in_topic && (!strcmp(t.topic, ".") || !strcmp(t.topic, "..")))
		in_topic = realpath(f.dir, real) && !split_last(real, &t);
	if (in_topic)
		sb_cmd_err(cmd, "%s: %s: a file of topic %s; give its LOG_DIR and topic: streambus %s %s %s", path,
			   strerror(ENOTDIR), t.topic, cmd, t.dir, t.topic);
	else
		sb_cmd_err(cmd, "%s: %s", path, strerror(ENOTDIR));
}

int sb_cmd_check_dir(const char *cmd, const char *path)
{
	char src[PATH_MAX];
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = errno;
		sb_cmd_err(cmd, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		not_a_dir(cmd, path);
		return -ENOTDIR;
	}
	if (access(path, R_OK | X_OK) < 0) {
		int e = errno;
		sb_cmd_err(cmd, "%s: %s", path, strerror(e));
		return -e;
	}
	if (in_mount(path, src, sizeof src)) {
		/* what the daemon serves is no log directory: the tool reads
		 * LOG_DIR's files (it works while mounted) */
		if (src[0] == '/')
			sb_cmd_err(cmd, "%s: in a streambusfs mount: give the LOG_DIR it mounts, %s "
				   "(the tool reads the log files, also while mounted)", path, src);
		else
			sb_cmd_err(cmd, "%s: in a streambusfs mount of %s, not a LOG_DIR", path, src);
		return -EINVAL;
	}
	return 0;
}

/* Does dir look like a LOG_DIR: a lock file, or a topic directory in it? */
int sb_cmd_is_log_dir(const char *dir)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;
	int found;

	if (snprintf(path, sizeof path, "%s/%s", dir, SB_STORE_LOCK_NAME) < (int)sizeof path &&
	    access(path, F_OK) == 0)
		return 1;
	d = opendir(dir);
	if (!d)
		return 0;
	found = 0;
	while (!found && (e = readdir(d)) != NULL)
		found = sb_topic_name_valid(e->d_name) &&
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
			sb_store_is_topic_dir(path);
	closedir(d);
	return found;
}

/* A single path: LOG_DIR, or LOG_DIR/TOPIC when it names a topic directory
 * (or a missing one in a LOG_DIR, which then is "no such topic"). */
static int one_path(const char *cmd, const char *p, sb_cmd_where *w)
{
	sb_cmd_where t;
	struct stat st;

	int rc = stat(p, &st) == 0 ? 0 : -errno;

	memset(&t, 0, sizeof t);
	if (!rc && S_ISDIR(st.st_mode) && !sb_store_is_topic_dir(p)) {
		if (strlen(p) >= sizeof w->dir)
			return sb_cmd_usage_error(cmd, "'%s' is too long", p);
		if (sb_cmd_check_dir(cmd, p))
			return SB_EXIT_ERROR;
		snprintf(w->dir, sizeof w->dir, "%s", p);
		return 0;
	}
	/* a link to a topic directory: LOG_DIR is where the topic is, not
	 * where the link is */
	char real[PATH_MAX];
	struct stat lst;
	if (!rc && S_ISDIR(st.st_mode) && lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode) &&
	    realpath(p, real))
		p = real;
	if (split_last(p, &t) == 0 && sb_topic_name_valid(t.topic) &&
	    ((!rc && S_ISDIR(st.st_mode)) || (rc == -ENOENT && sb_cmd_is_log_dir(t.dir)))) {
		if (sb_cmd_check_dir(cmd, t.dir))
			return SB_EXIT_ERROR;
		*w = t;
		return 0;
	}
	return sb_cmd_check_dir(cmd, p) ? SB_EXIT_ERROR
		: sb_cmd_usage_error(cmd, "%s: neither a LOG_DIR nor a LOG_DIR/TOPIC", p);
}

int sb_cmd_holds_no_log(const char *dir)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;
	struct stat st;
	int subdir = 0;

	if (sb_cmd_is_log_dir(dir) || !(d = opendir(dir)))
		return 0;
	while (!subdir && (e = readdir(d)) != NULL)
		subdir = sb_topic_name_valid(e->d_name) &&
			 snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
			 stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	closedir(d);
	return subdir;
}

int sb_cmd_log_dir_args(const char *cmd, int argc, char **argv, sb_cmd_where *w)
{
	const char *dir, *topic;

	memset(w, 0, sizeof *w);
	if (argc - optind < 1 || argc - optind > 2)
		return sb_cmd_usage_error(cmd, "expects LOG_DIR [TOPIC] or LOG_DIR/TOPIC");
	if (argc - optind == 1)
		return one_path(cmd, argv[optind], w);
	dir = argv[optind];
	topic = argv[optind + 1];
	if (sb_cmd_check_dir(cmd, dir))
		return SB_EXIT_ERROR;
	if (sb_store_is_topic_dir(dir)) {
		sb_cmd_err(cmd, "%s: holds segment files: a topic directory, not a LOG_DIR "
			   "(try 'streambus %s LOG_DIR TOPIC' or 'streambus %s LOG_DIR/TOPIC')",
			   dir, cmd, cmd);
		return SB_EXIT_ERROR;
	}
	if (strlen(dir) >= sizeof w->dir)
		return sb_cmd_usage_error(cmd, "'%s' is too long", dir);
	/* TOPIC/ as a shell completes it: the topic */
	char tbuf[sizeof w->topic];
	size_t tn = strlen(topic);
	while (tn > 1 && topic[tn - 1] == '/')
		tn--;
	if (tn < sizeof tbuf && tn < strlen(topic)) {
		memcpy(tbuf, topic, tn);
		tbuf[tn] = '\0';
		topic = tbuf;
	}
	if (!sb_topic_name_valid(topic)) {
		sb_cmd_err(cmd, "%s/%s: no such topic ('%s' is not a topic name)", dir, topic, topic);
		return SB_EXIT_ERROR;
	}
	snprintf(w->dir, sizeof w->dir, "%s", dir);
	snprintf(w->topic, sizeof w->topic, "%s", topic);
	w->has_topic = 1;
	return 0;
}

const char *sb_cmd_where_str(const sb_cmd_where *w, char *buf, size_t cap)
{
	if (w->has_topic)
		snprintf(buf, cap, "%s%s%s", w->dir,
			 w->dir[strlen(w->dir) - 1] == '/' ? "" : "/", w->topic);
	else
		snprintf(buf, cap, "%s", w->dir);
	return buf;
}

int sb_cmd_ro_quiet(const char *msg)
{
	/* Not what a mount would change: an index it rebuilds in memory, and
	 * damage a read met (the command says which record failed itself). */
	return strstr(msg, "index rebuilt") || strstr(msg, "damaged record");
}

void sb_cmd_ro_report(void *arg, const char *topic, const char *msg)
{
	if (sb_cmd_ro_quiet(msg))
		return;
	if (strncmp(msg, "cannot open: ", 13) == 0) {
		/* read-only, a topic that cannot be read is refused alone */
		sb_cmd_err(arg, "warning: %s: %s (the topic is left out)", topic ? topic : "?", msg);
		return;
	}
	if (strstr(msg, "names a record of another key")) {
		/* found by a read: a mount does not rebuild the index for it */
		sb_cmd_err(arg, "warning: %s: damaged: %s (the key index is derived data: 'streambus recover' "
			   "rebuilds it from the log)", topic ? topic : "?", msg);
		return;
	}
	if (strstr(msg, "cannot be a torn write")) {
		sb_cmd_err(arg, "warning: %s: damaged: %s", topic ? topic : "?", msg);
		return;
	}
	sb_cmd_err(arg, "warning: %s: a mount would recover: %s (nothing changed; "
		   "see 'streambus verify')", topic ? topic : "?", msg);
}

const char *sb_cmd_damage_where(sb_log *log, char *buf, size_t cap)
{
	const char *d = sb_log_damage(log);

	snprintf(buf, cap, "offset %llu%s%s%s", (unsigned long long)sb_log_next(log), d ? " (" : "",
		 d ? d : "", d ? ")" : "");
	return buf;
}

typedef struct ro_wait {
	const char *cmd, *dir;
} ro_wait;

static void ro_lock_wait(void *arg, const sb_store_holder *h)
{
	const ro_wait *w = arg;

	if (h->pid > 0)
		sb_cmd_err(w->cmd, "waiting (up to %u s) for process %ld to release %s ...",
			   SB_LOCK_WAIT_DEFAULT_MS / 1000, h->pid, w->dir);
	else
		sb_cmd_err(w->cmd, "waiting (up to %u s) for another process to release %s ...",
			   SB_LOCK_WAIT_DEFAULT_MS / 1000, w->dir);
}

void sb_cmd_wait_finishing(const char *cmd, const char *dir)
{
	sb_store_options o;
	ro_wait w = {cmd, dir};

	sb_store_options_default(&o);
	o.lock_wait_ms = SB_LOCK_WAIT_DEFAULT_MS;
	o.lock_waiting = ro_lock_wait;
	o.lock_waiting_arg = &w;
	sb_store_wait_finishing(dir, &o);
}

int sb_cmd_open_ro_with(const char *cmd, const char *dir, const sb_cmd_ro *ro, sb_store **out)
{
	sb_store_options o;
	ro_wait w = {cmd, dir};
	int rc;

	sb_store_options_default(&o);
	o.read_only = 1;
	o.no_flusher = 1;
	o.no_keys = ro->no_keys;
	o.only_topic = ro->topic;
	o.report = ro->report;
	o.report_arg = ro->arg;
	/* a daemon just unmounted may still be closing the logs: wait for it */
	o.lock_wait_ms = SB_LOCK_WAIT_DEFAULT_MS;
	o.lock_waiting = ro_lock_wait;
	o.lock_waiting_arg = &w;
	rc = sb_cmd_dir_in_use(dir) ? sb_cmd_open_ro_live(dir, &o, out) : sb_store_open(dir, &o, out);
	if (rc)
		sb_cmd_err(cmd, "%s: %s", dir, sb_strerror(rc));
	return rc;
}

int sb_cmd_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

void sb_cmd_fmt_time(char *buf, size_t cap, int64_t ns, int ns_digits)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;
	size_t n;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, cap, "%lld", (long long)ns);
		return;
	}
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ns_digits)
		snprintf(buf + n, cap - n, ".%09lldZ", (long long)frac);
	else
		snprintf(buf + n, cap - n, "Z");
}

/*
 * The escapers build their output in a buffer written with one fwrite a few
 * KiB (a stdio call per byte made `dump` of big payloads CPU-bound).
 * json: JSON string escapes (\\uXXXX, bytes >= 0x80 as they are), else the
 * text form (\\xHH for anything not printable ASCII).
 */
static void put_escapes(FILE *f, const unsigned char *s, size_t n, int json)
{
	static const char hex[] = "0123456789abcdef";
	char out[4096 + 8];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		char e = 0;

		switch (c) {
		case '\\': e = '\\'; break;
		case '"': e = '"'; break;
		case '\n': e = 'n'; break;
		case '\t': e = 't'; break;
		case '\r': e = 'r'; break;
		}
		if (e) {
			out[o++] = '\\';
			out[o++] = e;
		} else if (c >= 0x20 && c != 0x7f && (json || c < 0x7f)) {
			out[o++] = (char)c;
		} else if (json) {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
		if (o >= 4096) {
			fwrite(out, 1, o, f);
			o = 0;
		}
	}
	fwrite(out, 1, o, f);
}

void sb_cmd_put_escaped(FILE *f, const void *p, size_t n)
{
	put_escapes(f, p, n, 0);
}

void sb_cmd_put_json_str(FILE *f, const void *p, size_t n)
{
	fputc('"', f);
	put_escapes(f, p, n, 1);
	fputc('"', f);
}

int sb_cmd_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, past U+10FFFF */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

void sb_cmd_put_json_base64(FILE *f, const void *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	char out[4096 + 4];
	size_t i = 0, o = 0;

	fputc('"', f);
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
		if (o >= 4096) {
			fwrite(out, 1, o, f);
			o = 0;
		}
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	fwrite(out, 1, o, f);
	fputc('"', f);
}

int sb_cmd_finish_stdout(const char *cmd, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		sb_cmd_err(cmd, "writing the output: %s", strerror(errno ? errno : EIO));
		return SB_EXIT_ERROR;
	}
	return rc;
}
