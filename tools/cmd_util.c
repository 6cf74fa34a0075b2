/*
 * cmd_util.c - helpers shared by the streambus subcommands: messages,
 * number and time formatting, escaping for terminals and JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "codec.h"

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

int sb_cmd_check_dir(const char *cmd, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = errno;
		sb_cmd_err(cmd, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		sb_cmd_err(cmd, "%s: %s", path, strerror(ENOTDIR));
		return -ENOTDIR;
	}
	if (access(path, R_OK | X_OK) < 0) {
		int e = errno;
		sb_cmd_err(cmd, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

int sb_cmd_log_dir_args(const char *cmd, int argc, char **argv, const char **dir, const char **topic)
{
	if (argc - optind < 1 || argc - optind > 2)
		return sb_cmd_usage_error(cmd, "expects LOG_DIR [TOPIC]");
	if (sb_cmd_check_dir(cmd, argv[optind]) || sb_cmd_not_topic_dir(cmd, argv[optind]))
		return SB_EXIT_ERROR;
	*dir = argv[optind];
	*topic = argc - optind == 2 ? argv[optind + 1] : NULL;
	return 0;
}

int sb_cmd_not_topic_dir(const char *cmd, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t base;
	int found = 0;

	if (!d)
		return 0; /* the caller's own open reports it */
	while (!found && (e = readdir(d)) != NULL)
		found = sb_seg_name_parse(e->d_name, SB_SEG_SUFFIX, &base) == 0;
	closedir(d);
	if (!found)
		return 0;
	sb_cmd_err(cmd, "%s: holds segment files: a topic directory, not a LOG_DIR "
		   "(try 'streambus %s LOG_DIR TOPIC')", dir, cmd);
	return -EINVAL;
}

void sb_cmd_ro_report(void *arg, const char *topic, const char *msg)
{
	if (strstr(msg, "index rebuilt"))
		return;
	sb_cmd_err(arg, "warning: %s: a mount would recover: %s (nothing changed; "
		   "see 'streambus verify')", topic ? topic : "?", msg);
}

int sb_cmd_open_ro(const char *cmd, const char *dir, sb_store **out)
{
	sb_store_options o;
	int rc;

	sb_store_options_default(&o);
	o.read_only = 1;
	o.no_flusher = 1;
	o.report = sb_cmd_ro_report;
	o.report_arg = (void *)cmd;
	rc = sb_store_open(dir, &o, out);
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

void sb_cmd_put_escaped(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		switch (c) {
		case '\\': fputs("\\\\", f); break;
		case '"': fputs("\\\"", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (c >= 0x20 && c < 0x7f)
				fputc(c, f);
			else
				fprintf(f, "\\x%02x", c);
		}
	}
}

void sb_cmd_put_json_str(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;

	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		switch (c) {
		case '\\': fputs("\\\\", f); break;
		case '"': fputs("\\\"", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
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
	size_t i = 0;

	fputc('"', f);
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc(tab[v & 63], f);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputs("==", f);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		fputc(tab[v >> 18], f);
		fputc(tab[(v >> 12) & 63], f);
		fputc(tab[(v >> 6) & 63], f);
		fputc('=', f);
	}
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
