/*
 * config.h - the daemon's settings: command line, -o options and mount.ini
 * (SPEC §1), parsed into one struct with no FUSE in sight.
 *
 * Precedence, highest first: paths on the command line, -o key=value, the
 * file, built-in defaults. A [topic:NAME] section overrides [log] keys for one
 * topic (and wins over -o for that topic: it is the more specific setting).
 */
#ifndef SBFS_CONFIG_H
#define SBFS_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#include "sb_store.h"

/* Bits of sbfs_topic_cfg.set: which [log] keys a [topic:NAME] section set. */
enum {
	SBFS_K_SEGMENT_BYTES = 1u << 0,
	SBFS_K_INDEX_INTERVAL = 1u << 1,
	SBFS_K_MAX_RECORD = 1u << 2,
	SBFS_K_SYNC = 1u << 3,
	SBFS_K_SYNC_INTERVAL = 1u << 4,
	SBFS_K_RETENTION_BYTES = 1u << 5,
	SBFS_K_RETENTION_MS = 1u << 6,
};

typedef struct sbfs_topic_cfg {
	char *name;
	unsigned set;           /* SBFS_K_* bits */
	sb_log_config cfg;      /* only the fields named by `set` count */
} sbfs_topic_cfg;

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
	sb_log_config log;      /* [log] (after -o) */
	sbfs_topic_cfg *topics; /* [topic:NAME] sections */
	size_t ntopics;
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

/* The log config of topic `name`: *cfg is already the defaults; this applies
 * the [topic:NAME] overrides. Has the signature of sb_store_options.topic_config. */
int sbfs_config_topic(void *config, const char *name, sb_log_config *cfg);

/* The --help text. */
const char *sbfs_config_usage(void);

#endif
