/*
 * attr.c - the attributes of every kind of node (stat): the root, a topic
 * directory, .log, a record, a file being created (pending.c's).
 */
#include "fs.h"

#include <errno.h>
#include <string.h>

static void set_times(struct stat *st, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	st->st_mtim.tv_sec = ns / 1000000000;
	st->st_mtim.tv_nsec = ns % 1000000000;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

static void base_attr(sbfs *fs, struct stat *st, fuse_ino_t ino, mode_t mode)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_mode = (mode & S_IFMT) | ((mode & 07777) & ~fs->cfg->umask);
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = fs->cfg->owner;
	st->st_gid = fs->cfg->group;
	st->st_blksize = SBFS_BLKSIZE;
}

static void set_size(struct stat *st, uint64_t size)
{
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

void sbfs_attr_root(sbfs *fs, struct stat *st)
{
	base_attr(fs, st, FUSE_ROOT_ID, S_IFDIR | 0777);
	pthread_rwlock_rdlock(&fs->tlock);
	size_t live = 0;
	for (size_t i = 0; i < fs->cap; i++)
		if (fs->tab[i] && !fs->tab[i]->removed && !strchr(fs->tab[i]->name, '/'))
			live++; /* (not the partitions of a topic: "TOPIC/I") */
	pthread_rwlock_unlock(&fs->tlock);
	st->st_nlink = 2 + live;
	set_times(st, fs->mount_ns);
}

int sbfs_attr_topic(sbfs *fs, sbfs_tentry *te, struct stat *st)
{
	sbfs_bounds bd;
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	int rc = sbfs_offsets_of(fs, te, t, &bd);
	if (rc)
		return rc;
	base_attr(fs, st, sbfs_ino(te->id, SBFS_L_DIR), S_IFDIR | 0777);
	st->st_nlink = 2 + sbfs_topic_parts(fs, te); /* its partitions' ".." */
	/* the newest record's time, not the last append's (nor the mount's):
	 * a topic restored from a backup then has the backup's, so that
	 * rsync -a's next run finds nothing to change */
	sbfs_recinfo ri;
	if (bd.next > bd.start && fs->b->ops->stat_record(t, bd.next - 1, 0, &ri) == 0)
		set_times(st, ri.timestamp_ns);
	else
		set_times(st, bd.mtime_ns);
	int64_t born = te->born_ns;
	st->st_ctim.tv_sec = born / 1000000000;
	st->st_ctim.tv_nsec = born % 1000000000;
	return 0;
}

int sbfs_attr_log(sbfs *fs, sbfs_tentry *te, struct stat *st)
{
	sbfs_bounds bd;
	int rc = sbfs_bounds_of(fs, te, sbfs_topic_handle(fs, te), &bd);
	if (rc)
		return rc;
	base_attr(fs, st, sbfs_ino(te->id, SBFS_L_LOG), S_IFREG | 0666);
	set_size(st, bd.stream_end - sbfs_log_base(te, &bd));
	set_times(st, bd.mtime_ns);
	return 0;
}

int sbfs_attr_record(sbfs *fs, sbfs_tentry *te, uint64_t off, struct stat *st)
{
	if (off > SBFS_MAX_OFFSET)
		return -ENOENT;
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, sbfs_topic_handle(fs, te), off, &ri);
	if (rc)
		return rc;
	base_attr(fs, st, sbfs_ino(te->id, SBFS_L_REC0 + off), S_IFREG | 0444);
	set_size(st, ri.value_len);
	set_times(st, ri.timestamp_ns);
	return 0;
}

int sbfs_attr_any(sbfs *fs, fuse_ino_t ino, struct stat *st, double *ttl)
{
	uint32_t id;
	uint64_t off = 0;
	sbfs_tentry *te;
	enum sbfs_kind k = sbfs_ino_kind(ino, &id, &off);
	switch (k) {
	case K_ROOT:
		sbfs_attr_root(fs, st);
		*ttl = SBFS_TTL_DIR;
		return 0;
	case K_PENDING:
		*ttl = 0;
		return sbfs_pending_attr(fs, ino, st);
	case K_SINCE:
		*ttl = SBFS_TTL_LOG; /* grows as .log does */
		return sbfs_since_attr(fs, ino, st);
	case K_SINCEDIR:
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return -ENOENT;
		*ttl = SBFS_TTL_DIR;
		return sbfs_since_dir_attr(fs, te, st);
	case K_KEYSDIR:
	case K_KEY:
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return -ENOENT;
		*ttl = k == K_KEY ? 1.0 : SBFS_TTL_DIR;
		return k == K_KEY ? sbfs_attr_key(fs, te, off, st) : sbfs_keys_dir_attr(fs, te, st);
	case K_TOPIC:
	case K_LOG:
	case K_RECORD:
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return -ENOENT;
		if (k == K_TOPIC) {
			*ttl = SBFS_TTL_DIR;
			return sbfs_attr_topic(fs, te, st);
		}
		if (k == K_LOG) {
			*ttl = SBFS_TTL_LOG;
			return sbfs_attr_log(fs, te, st);
		}
		*ttl = SBFS_TTL_REC;
		return sbfs_attr_record(fs, te, off, st);
	default:
		return -ENOENT;
	}
}
