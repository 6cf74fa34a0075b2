/*
 * config.h - the daemon's settings: command line, -o options and mount.ini
 * (SPEC §1), parsed into one struct with no FUSE in sight.
 *
 * Precedence, highest first: paths on the command line, -o key=value, the
 * file, built-in defaults. [mount] is the daemon's; every other section is
 * the backend's ([mount] backend, default store: see backend.h).
 */
#ifndef SBFS_CONFIG_H
#define SBFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "backend.h"

typedef struct sbfs_config {
	char *config_path;      /* the mount.ini read, or NULL */
	char *log_dir;          /* absolute */
	char *mountpoint;       /* absolute */
	int allow_other;
	uid_t owner;
	gid_t group;
	mode_t umask;
	int list_log;
	int create;             /* [mount] create: make log_dir if missing */
	int nonempty;           /* -o nonempty: mount over a non-empty mountpoint */
	int read_only;          /* -o ro */
	/* tests only (SBFS_TEST_RELEASE_DELAY_MS, read at start): each release
	 * of a file being created waits this long first, as a loaded daemon
	 * may (t_write: the order of files closed unwritten) */
	int test_release_delay_ms;
	/* tests only (SBFS_TEST_EMPTY_RELEASE_DELAY_MS): the same, for the
	 * release of a file closed unwritten alone (t_keys: a release later
	 * than the appends behind it would wait for) */
	int test_empty_release_delay_ms;
	/* [mount] backend: its class and its settings (every other section,
	 * and -o keys that are not [mount] keys) */
	const sbfs_backend_class *backend;
	int backend_line;       /* its line in config_path; 0: chosen by -o */
	void *bsettings;
	int foreground;         /* -f */
	int debug;              /* -d */
	int help, version;      /* --help, --version */
	/* Started by mount(8) (directly as mount.fuse.streambusfs, or through
	 * mount.fuse3): only a config= file is read, never ./mount.ini. */
	int under_mount;
	int fake;               /* mount -f: check the settings, mount nothing */
} sbfs_config;

/*
 * Fill *c from argv (the whole command line, argv[0] included). Called as
 * mount.* (mount(8)'s helper: "SOURCE TARGET [-snvf] [-o opts] [-t type]",
 * where -f means a fake mount), or with the dev|nodev and suid|nosuid
 * options that mount.fuse3 always adds, it is under mount(8). Returns 0,
 * or -1 after writing one message naming the file, line and key (or the
 * option) to *err (a malloc'ed string, the caller frees it). On failure *c
 * holds nothing to free. On success release with sbfs_config_free().
 */
int sbfs_config_load(sbfs_config *c, int argc, char **argv, char **err);
void sbfs_config_free(sbfs_config *c);

/* For backends' settings: write "FILE:LINE: key 'KEY': MSG" (or "-o KEY:
 * MSG") to *err (replacing what it held); returns -1. */
int sbfs_config_errf(char **err, const sbfs_src *s, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Value parsers: 0 or -EINVAL, *out untouched on failure. An integer may
 * carry a binary suffix (K, M, G, T, with an optional iB or B). */
int sbfs_parse_int(const char *v, int64_t min, int64_t max, int64_t *out);
int sbfs_parse_bool(const char *v, int *out);

/* The --help text. */
void sbfs_config_usage(FILE *out);

/* paths.c: before mounting; 0, or -errno after logging why. LOG_DIR exists
 * (made when create is set); MOUNTPOINT is a directory, and (check_empty)
 * an empty one unless nonempty. */
int sbfs_paths_log_dir(const sbfs_config *cfg);
int sbfs_paths_mountpoint(const sbfs_config *cfg, int check_empty);
/* Neither of LOG_DIR and MOUNTPOINT (an existing directory) is the other
 * or inside it: 0, or -EINVAL after logging why. Opens nothing. */
int sbfs_paths_apart(const sbfs_config *cfg);

#endif
