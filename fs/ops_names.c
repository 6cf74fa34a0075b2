/*
 * ops_names.c - the namespace: lookup, mkdir, rmdir, unlink (rm of the
 * oldest record), rename (of files being created), link and symlink
 * (refused). Listings are ops_dir.c's.
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

/* gen: the topic entry's generation (a topic made again has new inodes) */
static void reply_entry(fuse_req_t req, const struct stat *st, double ttl, uint64_t gen)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	e.ino = st->st_ino;
	e.generation = gen;
	e.attr = *st;
	e.attr_timeout = ttl;
	e.entry_timeout = ttl;
	fuse_reply_entry(req, &e);
}

/* How long the kernel may keep a record's name. The notifier invalidates
 * the 20-digit names of records retention or rm dropped from the start:
 * SBFS_TTL_REC; other spellings (orders/42) are cached briefly. Compaction
 * removes records from the middle, unannounced: in a compacted topic no
 * name is cached, so a removed record is ENOENT at once (stat, rsync). */
static double record_ttl(sbfs *fs, sbfs_topic *t, const char *name)
{
	if (fs->b->ops->compacts && fs->b->ops->compacts(t))
		return 0;
	return strlen(name) == 20 ? SBFS_TTL_REC : 1.0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	sbfs *fs = FS(req);
	uint32_t id;
	struct stat st;
	sbfs_tentry *te;
	int rc;
	switch (sbfs_ino_kind(parent, &id, NULL)) {
	case K_ROOT:
		rc = sbfs_topic_by_name(fs, name, &te);
		if (rc == 0)
			rc = sbfs_attr_topic(fs, te, &st);
		if (rc)
			return sbfs_reply_err(req, rc == -EINVAL ? -ENOENT : rc);
		return reply_entry(req, &st, SBFS_TTL_DIR, te->gen);
	case K_TOPIC:
		break;
	case K_SINCEDIR: { /* a time: since.c's node */
		struct fuse_entry_param e;
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return sbfs_reply_err(req, -ENOENT);
		rc = sbfs_since_lookup(fs, te, name, &e);
		return rc ? sbfs_reply_err(req, rc) : (void)fuse_reply_entry(req, &e);
	}
	case K_KEYSDIR: /* a key: ops_keys.c */
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return sbfs_reply_err(req, -ENOENT);
		return sbfs_keys_lookup(req, te, name);
	default:
		return sbfs_reply_err(req, -ENOTDIR);
	}
	sbfs_topic *t;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return sbfs_reply_err(req, -ENOENT);
	if (strcmp(name, ".log") == 0) {
		rc = sbfs_attr_log(fs, te, &st);
		return rc ? sbfs_reply_err(req, rc) : reply_entry(req, &st, SBFS_TTL_LOG, te->gen);
	}
	if (strcmp(name, ".since") == 0) {
		rc = sbfs_since_dir_attr(fs, te, &st);
		return rc ? sbfs_reply_err(req, rc) : reply_entry(req, &st, SBFS_TTL_DIR, te->gen);
	}
	if (strcmp(name, ".keys") == 0) {
		rc = sbfs_keys_dir_attr(fs, te, &st);
		return rc ? sbfs_reply_err(req, rc) : reply_entry(req, &st, SBFS_TTL_DIR, te->gen);
	}
	sbfs_tentry *pe; /* a partition of a topic of several */
	if (sbfs_part_by_name(fs, te, name, &pe) == 0) {
		rc = sbfs_attr_topic(fs, pe, &st);
		return rc ? sbfs_reply_err(req, rc) : reply_entry(req, &st, SBFS_TTL_DIR, pe->gen);
	}
	if (sbfs_pending_lookup(fs, te, name, &st) == 0)
		return reply_entry(req, &st, 0, 0);
	uint64_t off;
	rc = sbfs_parse_offset(name, &off) ? -ENOENT : 0;
	if (rc == 0 && strlen(name) == 20)
		sbfs_named(te, off); /* before the check: a pass after it sees it */
	if (rc == 0)
		rc = sbfs_attr_record(fs, te, off, &st);
	if (rc == 0)
		return reply_entry(req, &st, record_ttl(fs, t, name), te->gen);
	/* no negative caching: the record may be appended any moment; a
	 * record that is there but damaged is EIO, not a missing name */
	sbfs_reply_err(req, rc);
}

/* Only .since/TIME nodes are counted (since.c); every other inode number
 * is computed, never held. */
static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (sbfs_ino_kind(ino, NULL, NULL) == K_SINCE)
		sbfs_since_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	sbfs *fs = FS(req);
	if (sbfs_ino_kind(parent, NULL, NULL) != K_ROOT)
		return sbfs_reply_err(req, -EPERM);
	if (fs->cfg->read_only)
		return sbfs_reply_err(req, -EROFS);
	if (!fs->b->ops->topic_name_valid(name))
		return sbfs_reply_err(req, -EINVAL);
	sbfs_tentry *te;
	struct stat st;
	int rc = sbfs_topic_create(fs, name, &te);
	if (rc && rc != -EEXIST) /* (a cluster's refusal or silence: said) */
		sbfs_log("mkdir %s: %s", name, sbfs_strerror(rc));
	if (rc == 0)
		rc = sbfs_attr_topic(fs, te, &st);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_notify_kick(fs);
	reply_entry(req, &st, SBFS_TTL_DIR, te->gen);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	sbfs *fs = FS(req);
	uint32_t id;
	enum sbfs_kind k = sbfs_ino_kind(parent, &id, NULL);
	if (k == K_TOPIC) {
		sbfs_tentry *te;
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return sbfs_reply_err(req, -ENOENT);
		uint64_t off;
		if (strcmp(name, ".keys") == 0)
			return sbfs_reply_err(req, -EPERM);
		sbfs_tentry *pe;
		if (sbfs_part_by_name(fs, te, name, &pe) == 0)
			return sbfs_reply_err(req, -EPERM); /* the topic's, not ours */
		if (strcmp(name, ".log") == 0 || sbfs_parse_offset(name, &off) == 0 ||
		    sbfs_pending_lookup(fs, te, name, &(struct stat){ 0 }) == 0)
			return sbfs_reply_err(req, -ENOTDIR);
		return sbfs_reply_err(req, -ENOENT);
	}
	if (k != K_ROOT)
		return sbfs_reply_err(req, -ENOTDIR);
	if (fs->cfg->read_only)
		return sbfs_reply_err(req, -EROFS);
	sbfs_tentry *te;
	/* no mkdir or rmdir of any topic meanwhile: the entry stays the
	 * topic's until it is removed */
	sbfs_ns_lock(fs);
	int rc = sbfs_topic_by_name_locked(fs, name, &te);
	/* a file being created in it: not empty (checked before taking wlock,
	 * which a closing file takes inside its own lock) */
	if (rc == 0 && sbfs_pending_lookup(fs, te, "", NULL) == 0)
		rc = -ENOTEMPTY;
	if (rc == 0) {
		pthread_mutex_lock(&te->wlock);
		rc = sbfs_drop_hidden_locked(fs, te, sbfs_topic_handle(fs, te), 1);
		if (rc == 0)
			rc = sbfs_topic_remove_locked(fs, te);
		pthread_mutex_unlock(&te->wlock);
	}
	sbfs_ns_unlock(fs);
	if (rc)
		return sbfs_reply_err(req, rc == -EINVAL ? -ENOENT : rc);
	sbfs_notify_kick(fs);
	fuse_reply_err(req, 0);
}

/* 0 if off (in [bd->start, bd->next)) is the oldest record there is, the
 * offsets before it gaps (compaction's, a restored backup's: ls lists off
 * first); -EPERM if a record precedes it, -ENOENT if off is a gap itself. */
static int oldest_present(sbfs *fs, sbfs_topic *t, const sbfs_bounds *bd, uint64_t off)
{
	uint64_t first = bd->start;
	if (fs->b->ops->next_present) {
		int rc = fs->b->ops->next_present(t, bd->start, &first);
		if (rc)
			return rc;
	}
	return off == first ? 0 : off < first ? -ENOENT : -EPERM;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	sbfs *fs = FS(req);
	uint32_t id;
	enum sbfs_kind k = sbfs_ino_kind(parent, &id, NULL);
	if (k != K_TOPIC && k != K_KEYSDIR)
		return sbfs_reply_err(req, -EPERM);
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return sbfs_reply_err(req, -ENOENT);
	if (k == K_KEYSDIR) /* a tombstone for the key: ops_keys.c */
		return sbfs_keys_unlink(req, te, name);
	if (strcmp(name, ".log") == 0)
		return sbfs_reply_err(req, -EPERM);
	if (sbfs_pending_unlink(fs, te, name) == 0)
		return (void)fuse_reply_err(req, 0);
	uint64_t off;
	if (sbfs_parse_offset(name, &off))
		return sbfs_reply_err(req, -ENOENT);
	if (fs->cfg->read_only)
		return sbfs_reply_err(req, -EROFS);
	sbfs_bounds bd;
	int rc;
	pthread_mutex_lock(&te->wlock);
	rc = sbfs_offsets_of(fs, te, t, &bd);
	if (rc)
		; /* the backend cannot tell */
	else if (off < bd.start || off >= bd.next)
		rc = -ENOENT;
	else if (off != bd.start && (rc = oldest_present(fs, t, &bd, off)))
		; /* only the oldest record can go */
	else {
		/* Removed now (the store: a write; Kafka: DeleteRecords), so
		 * that a crash of the daemon keeps it removed and a failure is
		 * the caller's, the record still there. While a reader of .log
		 * covers it, it is only hidden: the notifier removes it once
		 * that reader has gone (and unmount what is left). */
		uint64_t was = atomic_load(&te->hide_before);
		atomic_store(&te->hide_before, off + 1);
		rc = sbfs_drop_hidden_locked(fs, te, t, 0);
		if (rc) /* rm's and the notifier's drops hold wlock */
			atomic_store(&te->hide_before, was);
	}
	pthread_mutex_unlock(&te->wlock);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_notify_kick(fs);
	fuse_reply_err(req, 0);
}

/* Only a file being created can be renamed, within its topic (rsync's and
 * editors' temporary files); records, .log and topics cannot. In .keys/ a
 * key whose record is appended can too: a new record under the new key. */
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	sbfs *fs = FS(req);
	uint32_t id;
	sbfs_tentry *te;
	enum sbfs_kind k = sbfs_ino_kind(parent, &id, NULL);
	if (parent != newparent || (k != K_TOPIC && k != K_KEYSDIR))
		return sbfs_reply_err(req, -EPERM);
	if (sbfs_topic_by_id(fs, id, &te, NULL))
		return sbfs_reply_err(req, -ENOENT);
	if (k == K_KEYSDIR) { /* a file being written there: its key becomes newname's */
		int rc = sbfs_pending_rename_key(fs, te, name, newname, flags);
		/* else a key's record (sed -i's temporary file, closed before
		 * its rename; mv): copied under newname, name removed (keys.c) */
		if (rc == -ENOENT)
			rc = sbfs_key_rename(fs, te, name, newname, flags);
		if (rc)
			return sbfs_reply_err(req, rc);
		return (void)fuse_reply_err(req, 0);
	}
	int rc = sbfs_pending_rename(fs, te, name, newname, flags);
	uint64_t off;
	struct stat st;
	if (rc == -ENOENT && (strcmp(name, ".log") == 0 ||
			      (sbfs_parse_offset(name, &off) == 0 &&
			       sbfs_attr_record(fs, te, off, &st) == 0)))
		rc = -EPERM;
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_err(req, 0);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	sbfs_reply_err(req, -EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	sbfs_reply_err(req, -EPERM);
}

void sbfs_ops_names_fill(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->mkdir = op_mkdir;
	ops->rmdir = op_rmdir;
	ops->unlink = op_unlink;
	ops->rename = op_rename;
	ops->link = op_link;
	ops->symlink = op_symlink;
}
