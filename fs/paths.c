/*
 * paths.c - the two directories of a mount, checked before mounting (SPEC
 * §1): LOG_DIR must exist unless create = true (a typo never silently makes
 * an empty log), and MOUNTPOINT must be an empty directory unless -o
 * nonempty. Each check logs why it refuses.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p: 0 or -errno. */
static int make_dirs(const char *path)
{
	char p[PATH_MAX];
	if (strlen(path) >= sizeof p)
		return -ENAMETOOLONG;
	strcpy(p, path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = c;
		if (c == '\0')
			return 0;
	}
}

int sbfs_paths_log_dir(const sbfs_config *cfg)
{
	struct stat st;
	if (stat(cfg->log_dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		sbfs_log("log directory %s: not a directory", cfg->log_dir);
		return -ENOTDIR;
	}
	int rc = -errno;
	if (rc != -ENOENT || !cfg->create || cfg->read_only) {
		if (rc == -ENOENT)
			sbfs_log("log directory %s does not exist (create it, or set create = true "
				 "in mount.ini or -o create to have it created)", cfg->log_dir);
		else
			sbfs_log("log directory %s: %s", cfg->log_dir, strerror(-rc));
		return rc;
	}
	rc = make_dirs(cfg->log_dir);
	if (rc)
		sbfs_log("cannot create the log directory %s: %s", cfg->log_dir, strerror(-rc));
	return rc;
}

int sbfs_paths_mountpoint(const sbfs_config *cfg, int check_empty)
{
	struct stat st;
	if (stat(cfg->mountpoint, &st) != 0) {
		int rc = -errno;
		sbfs_log("mountpoint %s: %s", cfg->mountpoint, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		sbfs_log("mountpoint %s: not a directory", cfg->mountpoint);
		return -ENOTDIR;
	}
	if (!check_empty || cfg->nonempty)
		return 0;
	DIR *d = opendir(cfg->mountpoint);
	if (!d) {
		int rc = -errno;
		sbfs_log("mountpoint %s: %s", cfg->mountpoint, strerror(-rc));
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = -ENOTEMPTY;
	closedir(d);
	if (rc)
		sbfs_log("mountpoint %s is not empty (-o nonempty mounts over it)", cfg->mountpoint);
	return rc;
}

/* Is path a the directory b or inside it (both canonical)? */
static int within(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strcmp(b, "/") == 0)
		return 1;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

int sbfs_paths_apart(const sbfs_config *cfg)
{
	char *mp = realpath(cfg->mountpoint, NULL);
	/* a LOG_DIR still to be made (create) is compared as written */
	char *ld = realpath(cfg->log_dir, NULL);
	const char *m = mp ? mp : cfg->mountpoint, *l = ld ? ld : cfg->log_dir;
	int rc = 0;
	if (within(m, l)) {
		sbfs_log("mountpoint %s is %sthe log directory %s (it would be taken for a topic): "
			 "mount outside it", cfg->mountpoint, strcmp(m, l) == 0 ? "" : "inside ",
			 cfg->log_dir);
		rc = -EINVAL;
	} else if (within(l, m)) {
		sbfs_log("log directory %s is inside the mountpoint %s (the mount would hide it): "
			 "mount elsewhere", cfg->log_dir, cfg->mountpoint);
		rc = -EINVAL;
	}
	free(mp);
	free(ld);
	return rc;
}
