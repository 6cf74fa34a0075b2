/*
 * fuzz_config - mount.ini parsing and -o options (fs/config.c
 * sbfs_config_load), as `streambusfs -c FILE [-o OPTS]... LOG_DIR MNT`.
 *
 * Input: byte 0: how many -o options (low 2 bits); each is a length byte and
 * that many bytes (cut at a NUL; "config" in them is defused, so that no
 * option makes the parser read a file other than the fuzzed one); the rest
 * is the file's content.
 *
 * Properties: no crash, no leak (LeakSanitizer); a refusal comes with one
 * message naming the file (its path; one line) or the -o option; an accepted configuration passes the
 * store's check for [log] and for every [topic:NAME] (its overrides applied),
 * with absolute paths, and topic names the store accepts.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_store.h"
#include "config.h"
#include "util.h"

/* No config=FILE in an option, escaped ("c\\onfig") or not. */
static void defuse(char *o)
{
	char plain[257], *w = plain;

	for (const char *q = o; *q; q++)
		if (*q != '\\')
			*w++ = *q;
	*w = '\0';
	if (!strstr(plain, "config"))
		return;
	for (char *q = o; *q; q++)
		if (*q == '\\')
			*q = '_';
	for (char *q = o; (q = strstr(q, "config"));)
		memcpy(q, "cOnfig", 6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	unsigned nopts = fz_u8(&in) & 3;
	char opts[3][257], path[PATH_MAX + 16];
	char *argv[16];
	int argc = 0;
	size_t n;
	sbfs_config c;
	char *err = NULL;

	snprintf(path, sizeof path, "%s/mount.ini", fz_scratch());
	argv[argc++] = "streambusfs";
	argv[argc++] = "-c";
	argv[argc++] = path;
	for (unsigned i = 0; i < nopts; i++) {
		const uint8_t *p = fz_bytes(&in, fz_u8(&in), &n);
		memcpy(opts[i], p, n);
		opts[i][n] = '\0';
		defuse(opts[i]);
		argv[argc++] = "-o";
		argv[argc++] = opts[i];
	}
	argv[argc++] = "data";
	argv[argc++] = "mnt";
	argv[argc] = NULL;
	const uint8_t *file = fz_bytes(&in, in.n, &n);
	fz_write(path, file, n);

	if (sbfs_config_load(&c, argc, argv, &err) != 0) {
		FZ_CHECK(err && *err, "refused without a message");
		/* (an -o option is echoed as given, newlines included) */
		FZ_CHECK(!strncmp(err, "-o ", 3) || !strchr(err, '\n'),
			 "message of more than one line: %s", err);
		FZ_CHECK(strstr(err, path) || !strncmp(err, "-o ", 3),
			 "message names neither the file nor the option: %s", err);
		free(err);
		return 0;
	}
	FZ_CHECK(!err, "accepted with a message: %s", err);
	FZ_CHECK(c.backend == &sbfs_backend_store, "a backend other than store");
	const char *why = NULL;
	const sb_log_config *lc = sbfs_store_log_config(c.bsettings);
	FZ_CHECK(sb_log_config_check(lc, &why) == 0, "accepted [log] fails its check: %s", why);
	FZ_CHECK(c.log_dir && c.log_dir[0] == '/' && c.mountpoint && c.mountpoint[0] == '/',
		 "paths not absolute");
	for (size_t i = 0; i < sbfs_store_topics(c.bsettings); i++) {
		const char *name = sbfs_store_topic_name(c.bsettings, i);
		sb_log_config t = *lc;
		FZ_CHECK(sb_topic_name_valid(name), "topic name %s", name);
		FZ_CHECK(sbfs_store_topic_config(c.bsettings, name, &t) == 0, "topic config");
		FZ_CHECK(sb_log_config_check(&t, &why) == 0, "accepted [topic:%s] fails its check: %s",
			 name, why);
	}
	sbfs_config_free(&c);
	return 0;
}
