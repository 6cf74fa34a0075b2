/*
 * config.c - command line, -o options and mount.ini into an sbfs_config.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Options mount(8) and fstab pass that mean nothing to us. */
static const char *const ignored_opts[] = {
	"rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "auto", "noauto",
	"user", "nouser", "users", "owner", "group", "defaults", "_netdev", "nofail",
	"async", "sync", "atime", "noatime", "relatime", "norelatime", "strictatime",
	"nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime", "silent",
	"loud", "mand", "nomand", "iversion", "noiversion", "dirsync", "default_permissions",
	NULL,
};

static const char usage_head[] =
	"usage: streambusfs [-c mount.ini] [-f] [-d] [-o opt[,opt...]] [LOG_DIR [MOUNTPOINT]]\n"
	       "\n"
	       "Mount the append-only logs in LOG_DIR on MOUNTPOINT: one directory per topic,\n"
	       "one read-only file per record, TOPIC/.log as the whole topic.\n"
	       "\n"
	       "  -c FILE        read settings from FILE (default: ./mount.ini if present;\n"
	       "                 under mount(8) only a config= file is read)\n"
	       "  -f             stay in the foreground\n"
	       "  -d             FUSE debug output (implies -f)\n"
	       "  -o opt,...     settings as key=value (override the file), plus\n"
	       "                 config=FILE (as -c), ro, nonempty (mount over a non-empty\n"
	       "                 MOUNTPOINT), create (as create = true), and generic mount options\n"
	       "                 (rw, dev, suid, exec, auto, nouser, defaults, _netdev, ...)\n"
	       "                 which are accepted and ignored\n"
	       "  -h, --help     this text\n"
	       "  -V, --version  the version\n"
	       "\n"
	       "Settings ([section] key, default):\n"
	       "  [mount] log_dir ./data, mountpoint ./mnt, allow_other false,\n"
	       "          owner (mounting user), group (its group), umask 022, list_log false,\n"
	       "          create false (create a missing log_dir),\n"
	       "          backend store (store: LOG_DIR on this machine; kafka: a Kafka cluster)\n";

void sbfs_config_usage(FILE *out)
{
	fputs(usage_head, out);
	for (size_t i = 0; sbfs_backend_at(i); i++)
		fputs(sbfs_backend_at(i)->usage, out);
	fputs("\nUnmount with: fusermount3 -u MOUNTPOINT\n", out);
}
/* ---- small parsers: 0 or -EINVAL, *out untouched on failure -------------- */

int sbfs_parse_bool(const char *v, int *out)
{
	static const char *const t[] = { "true", "yes", "on", "1", NULL };
	static const char *const f[] = { "false", "no", "off", "0", NULL };
	for (int i = 0; t[i]; i++)
		if (strcasecmp(v, t[i]) == 0) {
			*out = 1;
			return 0;
		}
	for (int i = 0; f[i]; i++)
		if (strcasecmp(v, f[i]) == 0) {
			*out = 0;
			return 0;
		}
	return -EINVAL;
}

/* A signed integer with an optional K/M/G/T (KiB.. too) binary suffix. */
int sbfs_parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (end == v || errno)
		return -EINVAL;
	int64_t mul = 1;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mul = 1LL << 10; break;
		case 'm': case 'M': mul = 1LL << 20; break;
		case 'g': case 'G': mul = 1LL << 30; break;
		case 't': case 'T': mul = 1LL << 40; break;
		default: return -EINVAL;
		}
		end++;
		if (strcmp(end, "") != 0 && strcmp(end, "iB") != 0 && strcmp(end, "B") != 0)
			return -EINVAL;
	}
	if (mul > 1 && (n > INT64_MAX / mul || n < INT64_MIN / mul))
		return -EINVAL;
	n *= mul;
	if (n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_umask(const char *v, mode_t *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 8);
	if (end == v || *end || errno || n > 0777 || v[0] == '-')
		return -EINVAL;
	*out = (mode_t)n;
	return 0;
}

static int parse_owner(const char *v, uid_t *out)
{
	int64_t n;
	if (sbfs_parse_int(v, 0, UINT32_MAX - 1, &n) == 0 && strspn(v, "0123456789") == strlen(v)) {
		*out = (uid_t)n;
		return 0;
	}
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(v, &pw, buf, sizeof buf, &res) != 0 || !res)
		return -EINVAL;
	*out = res->pw_uid;
	return 0;
}

static int parse_group(const char *v, gid_t *out)
{
	int64_t n;
	if (sbfs_parse_int(v, 0, UINT32_MAX - 1, &n) == 0 && strspn(v, "0123456789") == strlen(v)) {
		*out = (gid_t)n;
		return 0;
	}
	struct group gr, *res = NULL;
	char buf[4096];
	if (getgrnam_r(v, &gr, buf, sizeof buf, &res) != 0 || !res)
		return -EINVAL;
	*out = res->gr_gid;
	return 0;
}

/* base/rel, or rel itself when absolute. NULL when out of memory. */
static char *path_join(const char *base, const char *rel)
{
	if (rel[0] == '/')
		return strdup(rel);
	size_t bl = strlen(base);
	while (bl > 1 && base[bl - 1] == '/')
		bl--;
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	if (strcmp(rel, ".") == 0)
		return strndup(base, bl);
	char *p = malloc(bl + strlen(rel) + 2);
	if (p)
		sprintf(p, "%.*s/%s", (int)bl, base, rel);
	return p;
}

/* ---- setting one key ----------------------------------------------------- */

typedef sbfs_src src;
#define errf sbfs_config_errf

int sbfs_config_errf(char **err, const sbfs_src *s, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	free(*err);
	*err = NULL;
	int rc;
	if (s->file)
		rc = asprintf(err, "%s:%d: key '%s': %s", s->file, s->line, key, msg);
	else
		rc = asprintf(err, "-o %s: %s", key, msg);
	if (rc < 0)
		*err = NULL;
	return -1;
}

/* Set a [mount] key. Paths from a file are relative to its directory. */
static int set_mount_key(sbfs_config *c, const char *key, const char *v, const src *s,
			 char **err)
{
	if (strcmp(key, "log_dir") == 0 || strcmp(key, "mountpoint") == 0) {
		if (!*v)
			return errf(err, s, key, "empty path");
		char *p = path_join(s->dir, v);
		if (!p)
			return errf(err, s, key, "out of memory");
		char **slot = key[0] == 'l' ? &c->log_dir : &c->mountpoint;
		free(*slot);
		*slot = p;
		return 0;
	}
	int *flag = strcmp(key, "allow_other") == 0 ? &c->allow_other
		    : strcmp(key, "list_log") == 0  ? &c->list_log
		    : strcmp(key, "create") == 0    ? &c->create
						    : NULL;
	if (flag) {
		if (sbfs_parse_bool(v, flag))
			return errf(err, s, key, "bad value '%s' (true or false)", v);
		return 0;
	}
	if (strcmp(key, "owner") == 0) {
		if (parse_owner(v, &c->owner))
			return errf(err, s, key, "bad value '%s' (a user name or uid)", v);
		return 0;
	}
	if (strcmp(key, "group") == 0) {
		if (parse_group(v, &c->group))
			return errf(err, s, key, "bad value '%s' (a group name or gid)", v);
		return 0;
	}
	if (strcmp(key, "umask") == 0) {
		if (parse_umask(v, &c->umask))
			return errf(err, s, key, "bad value '%s' (octal, e.g. 022)", v);
		return 0;
	}
	if (strcmp(key, "backend") == 0) {
		/* the class was chosen before anything was read (pick_backend):
		 * here only its spelling is checked, where it was written */
		const char *why = NULL;
		if (!sbfs_backend_find(v, &why))
			return errf(err, s, key, "bad value '%s' (%s)", v, why);
		return 0;
	}
	return errf(err, s, key, "unknown key");
}

/* ---- mount.ini ----------------------------------------------------------- */

typedef struct file_ctx {
	sbfs_config *c;
	FILE *f;
	src s;
	char **err;
	int failed;             /* the line of the first error a handler met, or 0 */
	char *backend;          /* pick_backend's pass: the last [mount] backend */
	int backend_line;
	int nul_line;           /* line holding a NUL byte (the parse stopped), or 0 */
	int junk_line;          /* a section header with text after its ']', or 0 */
	int pick;               /* pick_backend's pass: no line is refused */
	int mid_line;           /* the reader is inside a long line */
} file_ctx;

/* "[log]xyz", "[log]]": inih takes the name and drops the rest, so a
 * typo would apply its keys to a section never meant. Whitespace and a
 * comment may follow the ']'. */
static int header_has_junk(const char *line, int first)
{
	if (first && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3; /* a UTF-8 BOM, which inih skips */
	line += strspn(line, " \t\r\n\f\v");
	const char *close = line[0] == '[' ? strchr(line, ']') : NULL;
	if (!close)
		return 0;
	close += 1 + strspn(close + 1, " \t\r\n\f\v");
	return *close && *close != ';' && *close != '#';
}

/* inih's line reader: fgets, but a NUL byte stops the parse (strlen would
 * hide the rest of its line and the line count would drift, so a later
 * message would name the wrong line or none). */
static char *reader(char *str, int num, void *stream)
{
	file_ctx *x = stream;
	int n = 0, ch = EOF;
	while (n < num - 1 && (ch = getc(x->f)) != EOF) {
		if (ch == '\0') {
			x->nul_line = x->s.line + 1;
			return NULL;
		}
		str[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	str[n] = '\0';
	int starts = !x->mid_line;
	/* a line longer than num arrives in pieces: count it once */
	x->mid_line = !(str[n - 1] == '\n' || ch == EOF);
	if (!x->mid_line)
		x->s.line++;
	if (starts && !x->pick && header_has_junk(str, x->s.line <= 1)) {
		x->junk_line = x->s.line + x->mid_line;
		return NULL;
	}
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	file_ctx *x = user;
	if (x->failed)
		return 1; /* report only the first error */
	src s = x->s; /* the reader has counted the current line */
	int rc;
	if (strcmp(section, "mount") == 0) {
		rc = set_mount_key(x->c, name, value, &s, x->err);
	} else if (section[0] == '\0') {
		rc = errf(x->err, &s, name, "key outside of any section");
	} else {
		const sbfs_backend_class *bc = x->c->backend;
		rc = bc->setting(x->c->bsettings, section, name, value, &s, x->err);
		const char *why = NULL;
		if (rc > 0 && sbfs_backend_find(section, &why) && strcmp(section, bc->name) != 0)
			rc = errf(x->err, &s, name, "section [%s] is read only with [mount] backend = %s "
				  "(the backend is %s)", section, section, bc->name);
		else if (rc > 0)
			rc = errf(x->err, &s, name, "unknown section [%s]", section);
	}
	if (rc) {
		x->failed = s.line ? s.line : 1;
		return 0;
	}
	return 1;
}

/* pick_backend's pass over the file: only [mount] backend counts. */
static int backend_handler(void *user, const char *section, const char *name, const char *value)
{
	file_ctx *x = user;
	if (strcmp(section, "mount") == 0 && strcmp(name, "backend") == 0) {
		free(x->backend);
		x->backend = strdup(value);
		x->backend_line = x->s.line;
	}
	return 1;
}

/* Read the file: its settings (pick: only its [mount] backend, into
 * *backend and *bline; nothing else is checked). */
static int load_file(sbfs_config *c, const char *path, const char *cwd, char **err, int pick,
		     char **backend, int *bline)
{
	if (!*path) {
		*err = strdup("the configuration file's name is empty (-c FILE, -o config=FILE)");
		return -1;
	}
	char *abs = path_join(cwd, path);
	if (!abs) {
		*err = strdup("out of memory");
		return -1;
	}
	free(c->config_path);
	c->config_path = abs;
	char *dir = strdup(abs);
	if (!dir) {
		*err = strdup("out of memory");
		return -1;
	}
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';

	int ret = -1;
	FILE *f = NULL;
	struct stat st;
	/* O_NONBLOCK: a FIFO is refused below, not waited on for ever */
	int fd = open(abs, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (asprintf(err, "%s: cannot read: %s", path, strerror(errno)) < 0)
			*err = NULL;
		goto out_close;
	}
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
		ret = 0; /* /dev/null: no settings (and no ./mount.ini either) */
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		if (asprintf(err, "%s: cannot read: %s", path,
			     S_ISDIR(st.st_mode) ? "Is a directory" : "not a regular file") < 0)
			*err = NULL;
		goto out_close;
	}
	if (fcntl(fd, F_SETFL, O_RDONLY) != 0 || !(f = fdopen(fd, "r"))) {
		if (asprintf(err, "%s: cannot read: %s", path, strerror(errno)) < 0)
			*err = NULL;
		goto out_close;
	}
	fd = -1; /* f's now */
	ini_allow_multiline = false; /* an indented key is a key, not a continuation */
	ini_inline_comment_prefixes = (char *)";#"; /* key = 1  # why */
	ini_max_line = PATH_MAX + 64;  /* a long path on one line */
	file_ctx x = { .c = c, .f = f, .s = { .file = path, .dir = dir, .line = 0 },
		       .err = err, .pick = pick };
	int rc = ini_parse_stream(reader, &x, pick ? backend_handler : handler, &x);
	if (pick) {
		*backend = x.backend;
		*bline = x.backend_line;
		rc = 0;
	}
	if (ferror(f)) {
		if (asprintf(err, "%s: cannot read: %s", path, strerror(errno ? errno : EIO)) < 0)
			*err = NULL;
		goto out_close;
	}
	if (x.failed && rc > 0 && rc < x.failed) {
		/* a line the parser could not read came first (an unclosed
		 * "[log"): the key after it is in the wrong section because of
		 * it, so that line is the error */
		free(*err);
		*err = NULL;
		x.failed = 0;
	}
	if (x.failed)
		goto out_close;
	if (x.nul_line) {
		if (asprintf(err, "%s:%d: a NUL byte (mount.ini is a text file)", path, x.nul_line) < 0)
			*err = NULL;
		goto out_close;
	}
	if (x.junk_line) {
		if (asprintf(err, "%s:%d: text after the section header's ']' (expected [section])",
			     path, x.junk_line) < 0)
			*err = NULL;
		goto out_close;
	}
	if (rc != 0) {
		if (asprintf(err, "%s:%d: syntax error (expected [section] or key = value)",
			     path, rc) < 0)
			*err = NULL;
		goto out_close;
	}
	ret = 0;
out_close:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/* ---- -o options ---------------------------------------------------------- */

static int is_ignored(const char *opt)
{
	for (int i = 0; ignored_opts[i]; i++)
		if (strcmp(opt, ignored_opts[i]) == 0)
			return 1;
	return strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0 ||
	       strncmp(opt, "fsname=", 7) == 0 || strncmp(opt, "subtype=", 8) == 0;
}

/* An option of its own without '=' (the empty one too). */
static int is_word_opt(const char *opt)
{
	static const char *const words[] = { "ro", "nonempty", "allow_other", "list_log", "create",
					     NULL };
	if (!*opt || is_ignored(opt))
		return 1;
	for (int i = 0; words[i]; i++)
		if (strcmp(opt, words[i]) == 0)
			return 1;
	return 0;
}

static int is_mount_key(const char *key)
{
	static const char *const keys[] = { "log_dir", "mountpoint", "allow_other", "list_log",
					    "create", "owner", "group", "umask", "backend", NULL };
	for (int i = 0; keys[i]; i++)
		if (strcmp(key, keys[i]) == 0)
			return 1;
	return 0;
}

static int apply_opt(sbfs_config *c, char *opt, const char *cwd, char **err)
{
	src s = { .file = NULL, .dir = cwd, .line = 0 };
	if (!*opt || is_ignored(opt))
		return 0;
	char *eq = strchr(opt, '=');
	if (!eq) {
		if (strcmp(opt, "ro") == 0) {
			c->read_only = 1;
			return 0;
		}
		if (strcmp(opt, "nonempty") == 0) {
			c->nonempty = 1;
			return 0;
		}
		if (strcmp(opt, "allow_other") == 0 || strcmp(opt, "list_log") == 0 ||
		    strcmp(opt, "create") == 0)
			return set_mount_key(c, opt, "true", &s, err);
		return errf(err, &s, opt, "unknown option");
	}
	*eq = '\0';
	const char *key = opt, *v = eq + 1;
	int rc;
	if (strcmp(key, "config") == 0)
		rc = 0; /* read before everything else */
	else if (is_mount_key(key))
		rc = set_mount_key(c, key, v, &s, err);
	else if ((rc = c->backend->setting(c->bsettings, NULL, key, v, &s, err)) > 0)
		rc = errf(err, &s, key, "unknown key");
	*eq = '=';
	return rc;
}

/*
 * Split "a,b\,c" in place into options; calls fn on each. A word that is
 * neither key=value nor an option of its own continues the value before it,
 * its comma kept, so that a value that is a list is written as in mount.ini
 * (-o cleanup=compact,delete, -o kafka.bootstrap.servers=h1:9092,h2:9092),
 * although -o is split at every comma.
 */
static int each_opt(char *list, int (*fn)(sbfs_config *, char *, const char *, char **),
		    sbfs_config *c, const char *cwd, char **err)
{
	char *p = list, *w = list;
	size_t n = 1;
	while (*p) { /* the pieces, one after the other, each ending in NUL */
		if (*p == '\\' && p[1]) {
			*w++ = p[1];
			p += 2;
		} else if (*p == ',') {
			*w++ = '\0';
			p++;
			n++;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	char *o = list;
	for (size_t i = 0; i < n; i++) {
		char *next = o + strlen(o) + 1;
		while (strchr(o, '=') && i + 1 < n && !strchr(next, '=') && !is_word_opt(next)) {
			next[-1] = ','; /* joined to o */
			next += strlen(next) + 1;
			i++;
		}
		if (fn(c, o, cwd, err))
			return -1;
		o = next;
	}
	return 0;
}

/* config=FILE and backend=NAME: known before anything else is read. */
static int find_config_opt(sbfs_config *c, char *opt, const char *cwd, char **err)
{
	if (strncmp(opt, "config=", 7) == 0) {
		free(c->config_path);
		c->config_path = strdup(opt + 7);
	} else if (strncmp(opt, "backend=", 8) == 0) {
		src s = { .file = NULL, .dir = cwd, .line = 0 };
		const char *why = NULL;
		if (!(c->backend = sbfs_backend_find(opt + 8, &why)))
			return errf(err, &s, "backend", "bad value '%s' (%s)", opt + 8, why);
	}
	return 0;
}

/*
 * The backend is chosen before any setting is read, since every section
 * but [mount] is its own: -o backend=, else the file's last [mount]
 * backend, else store. Then its settings start from its defaults.
 */
static int pick_backend(sbfs_config *c, const char *cwd, char **err)
{
	if (!c->backend && c->config_path) {
		char *name = NULL, *path = strdup(c->config_path);
		int line = 0, rc = path ? load_file(c, path, cwd, err, 1, &name, &line) : -1;
		const char *why = NULL;
		c->backend_line = name ? line : 0;
		if (rc == 0 && name && !(c->backend = sbfs_backend_find(name, &why))) {
			char *dir = strdup(c->config_path), *slash = dir ? strrchr(dir, '/') : NULL;
			if (slash)
				*slash = '\0';
			src s = { .file = path, .dir = dir, .line = line };
			rc = errf(err, &s, "backend", "bad value '%s' (%s)", name, why);
			free(dir);
		}
		free(c->config_path);
		c->config_path = path; /* as given: load_file reads it again */
		free(name);
		if (rc)
			return -1;
	}
	if (!c->backend)
		c->backend = &sbfs_backend_store;
	if (c->backend->settings_new(&c->bsettings)) {
		free(*err);
		*err = strdup("out of memory");
		return -1;
	}
	return 0;
}

/* Is one of the words a or b among the -o options? */
static int opt_listed(char *const *opts, int nopts, const char *a, const char *b)
{
	int found = 0;
	for (int i = 0; i < nopts && !found; i++) {
		char *copy = strdup(opts[i]), *save = NULL;
		for (char *w = copy ? strtok_r(copy, ",", &save) : NULL; w && !found;
		     w = strtok_r(NULL, ",", &save))
			found = strcmp(w, a) == 0 || strcmp(w, b) == 0;
		free(copy);
	}
	return found;
}

/* Called as mount(8)'s helper program (mount.fuse.streambusfs)? */
static int called_as_helper(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	return strncmp(base ? base + 1 : argv0, "mount.", 6) == 0;
}

/* One of mount(8)'s helper flags (-s -n -v -f -N ns -t type): 1 if it was
 * one (*i moved past its argument), 0 if not, -1 on error. */
static int helper_flag(sbfs_config *c, int argc, char **argv, int *i, char **err)
{
	const char *a = argv[*i];
	if (strcmp(a, "-s") == 0 || strcmp(a, "-n") == 0 || strcmp(a, "-v") == 0)
		return 1; /* sloppy, no mtab, verbose: nothing to do */
	if (strcmp(a, "-f") == 0) {
		c->fake = 1;
		return 1;
	}
	if (strcmp(a, "-t") != 0 && strcmp(a, "-N") != 0)
		return 0;
	if (*i + 1 >= argc) {
		if (asprintf(err, "option %s needs an argument", a) < 0)
			*err = NULL;
		return -1;
	}
	if (a[1] == 'N') {
		if (asprintf(err, "mount -N (another mount namespace) is not supported") < 0)
			*err = NULL;
		return -1;
	}
	++*i; /* -t fuse.streambusfs: we know */
	return 1;
}

/* ---- the whole -------------------------------------------------------------- */

void sbfs_config_free(sbfs_config *c)
{
	free(c->config_path);
	free(c->log_dir);
	free(c->mountpoint);
	if (c->backend && c->bsettings)
		c->backend->settings_free(c->bsettings);
	memset(c, 0, sizeof *c);
}

int sbfs_config_load(sbfs_config *c, int argc, char **argv, char **err)
{
	char cwd[PATH_MAX];
	const char *pos[2] = { NULL, NULL };
	int npos = 0, only_pos = 0;
	char **opts = calloc((size_t)argc + 1, sizeof *opts);
	int nopts = 0;

	*err = NULL;
	memset(c, 0, sizeof *c);
	if (!opts || !getcwd(cwd, sizeof cwd)) {
		*err = strdup("cannot find the current directory");
		goto fail;
	}
	c->under_mount = called_as_helper(argv[0]);
	c->owner = getuid();
	c->group = getgid();
	c->umask = 022;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		int hf = c->under_mount && !only_pos ? helper_flag(c, argc, argv, &i, err) : 0;
		if (hf < 0)
			goto fail;
		if (hf > 0)
			continue;
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (npos == 2) {
				if (asprintf(err, "unexpected argument '%s'", a) < 0)
					*err = NULL;
				goto fail;
			}
			pos[npos++] = a;
		} else if (strcmp(a, "--") == 0) {
			only_pos = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			c->help = 1;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			c->version = 1;
		} else if (strcmp(a, "-f") == 0) {
			c->foreground = 1;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "-df") == 0 || strcmp(a, "-fd") == 0) {
			c->debug = c->foreground = 1;
		} else if (strcmp(a, "-s") == 0) {
			/* single-threaded: accepted for compatibility, ignored */
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
			   strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				if (asprintf(err, "option %s needs an argument", a) < 0)
					*err = NULL;
				goto fail;
			}
			if (a[1] == 'o')
				opts[nopts++] = argv[++i];
			else {
				free(c->config_path);
				c->config_path = strdup(argv[++i]);
			}
		} else if (strncmp(a, "-o", 2) == 0) {
			opts[nopts++] = a + 2;
		} else if (strncmp(a, "-c", 2) == 0 || strncmp(a, "--config=", 9) == 0) {
			free(c->config_path);
			c->config_path = strdup(a[1] == 'c' ? a + 2 : a + 9);
		} else {
			if (asprintf(err, "unknown option '%s' (try --help)", a) < 0)
				*err = NULL;
			goto fail;
		}
	}
	if (c->help || c->version)
		goto out;

	/* mount.fuse3 always passes dev|nodev and suid|nosuid: mount(8) ran it */
	if (opt_listed(opts, nopts, "dev", "nodev") && opt_listed(opts, nopts, "suid", "nosuid"))
		c->under_mount = 1;
	/* config=FILE among the -o options counts as -c */
	for (int i = 0; i < nopts; i++) {
		char *copy = strdup(opts[i]);
		if (!copy)
			goto oom;
		int rc = each_opt(copy, find_config_opt, c, cwd, err);
		free(copy);
		if (rc)
			goto fail;
	}
	if (!c->config_path && !c->under_mount && access("mount.ini", F_OK) == 0 &&
	    !(c->config_path = strdup("mount.ini")))
		goto oom;
	if (pick_backend(c, cwd, err))
		goto fail;
	if (c->config_path) {
		char *p = c->config_path;
		c->config_path = NULL;
		int rc = load_file(c, p, cwd, err, 0, NULL, NULL);
		free(p);
		if (rc)
			goto fail;
	}
	for (int i = 0; i < nopts; i++) {
		char *copy = strdup(opts[i]);
		if (!copy)
			goto oom;
		int rc = each_opt(copy, apply_opt, c, cwd, err);
		free(copy);
		if (rc)
			goto fail;
	}
	if (c->backend->check(c->bsettings, c, err))
		goto fail;
	for (int i = 0; i < 2; i++) {
		const char *p = pos[i] ? pos[i] : NULL;
		char **slot = i == 0 ? &c->log_dir : &c->mountpoint;
		if (p) {
			free(*slot);
			*slot = path_join(cwd, p);
		} else if (!*slot) {
			*slot = path_join(cwd, i == 0 ? "data" : "mnt");
		}
		if (!*slot)
			goto oom;
	}
out:
	free(opts);
	return 0;
oom:
	free(*err);
	*err = strdup("out of memory");
fail:
	if (!*err)
		*err = strdup("bad configuration");
	free(opts);
	sbfs_config_free(c);
	return -1;
}
