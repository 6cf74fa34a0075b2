/*
 * ops.c - the namespace: lookup, attributes, directories, deletion, statfs
 * and extended attributes. File I/O is in ops_write.c.
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XA_OFFSET "user.streambus.offset"
#define XA_TIMESTAMP "user.streambus.timestamp"
#define XA_KEY "user.streambus.key"

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

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* the kernel must keep asking us for sizes, and appends must stay ours */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* plain READDIR: a million records list far faster without attributes */
	conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
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
	default:
		return sbfs_reply_err(req, -ENOTDIR);
	}
	if (sbfs_topic_by_id(fs, id, &te, NULL))
		return sbfs_reply_err(req, -ENOENT);
	if (strcmp(name, ".log") == 0) {
		sbfs_attr_log(fs, te, &st);
		return reply_entry(req, &st, SBFS_TTL_LOG, te->gen);
	}
	if (sbfs_pending_lookup(fs, te, name, &st) == 0)
		return reply_entry(req, &st, 0, 0);
	uint64_t off;
	rc = sbfs_parse_offset(name, &off) ? -ENOENT : sbfs_attr_record(fs, te, off, &st);
	if (rc == 0)
		/* the notifier invalidates 20-digit names only: other spellings
		 * (orders/42) are cached briefly */
		return reply_entry(req, &st, strlen(name) == 20 ? SBFS_TTL_REC : 1.0, te->gen);
	/* no negative caching: the record may be appended any moment; a
	 * record that is there but damaged is EIO, not a missing name */
	sbfs_reply_err(req, rc);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	struct stat st;
	double ttl;
	int rc = sbfs_attr_any(fs, ino, &st, &ttl);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_fh *h = fi ? (sbfs_fh *)(uintptr_t)fi->fh : NULL;
	if (h && h->kind == K_LOG && sbfs_ino_kind(ino, NULL, NULL) == K_LOG) {
		/* asked through an open file (lseek SEEK_END): its own extent,
		 * so that tail -n reads the end whatever other readers pin */
		sbfs_bounds bd;
		sbfs_bounds_of(fs, h->te, sbfs_topic_handle(fs, h->te), &bd);
		uint64_t size = bd.stream_end > h->base ? bd.stream_end - h->base : 0;
		st.st_size = (off_t)size;
		st.st_blocks = (blkcnt_t)((size + 511) / 512);
	}
	fuse_reply_attr(req, &st, ttl);
}

/* Does setattr ask for what the record st already has? (records keep no
 * access time: atime is taken as set; a size is never "set") */
static int record_attr_same(const struct stat *st, const struct stat *attr, int to_set)
{
	if (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MTIME_NOW))
		return 0;
	if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (st->st_mode & 07777))
		return 0;
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != st->st_uid)
		return 0;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != st->st_gid)
		return 0;
	if ((to_set & FUSE_SET_ATTR_MTIME) &&
	    (attr->st_mtim.tv_sec != st->st_mtim.tv_sec ||
	     attr->st_mtim.tv_nsec != st->st_mtim.tv_nsec))
		return 0;
	return 1;
}

/* Pending files take what cp -a sets; directories pretend (their bits
 * come from the mount's settings); a record takes what it already has
 * (rsync -a, cp -a over a restored topic) and refuses anything else;
 * .log refuses. */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	sbfs *fs = FS(req);
	struct stat st;
	double ttl;
	int rc;
	switch (sbfs_ino_kind(ino, NULL, NULL)) {
	case K_PENDING:
		rc = sbfs_pending_setattr(fs, ino, attr, to_set);
		if (rc)
			return sbfs_reply_err(req, rc);
		break;
	case K_ROOT:
	case K_TOPIC:
		if (to_set & FUSE_SET_ATTR_SIZE)
			return sbfs_reply_err(req, -EISDIR);
		break;
	case K_RECORD:
		rc = sbfs_attr_any(fs, ino, &st, &ttl);
		if (rc)
			return sbfs_reply_err(req, rc);
		if (!record_attr_same(&st, attr, to_set))
			return sbfs_reply_err(req, -EPERM);
		return (void)fuse_reply_attr(req, &st, ttl);
	case K_LOG:
		rc = sbfs_attr_any(fs, ino, &st, &ttl);
		return sbfs_reply_err(req, rc ? rc : -EPERM);
	default:
		return sbfs_reply_err(req, -ENOENT);
	}
	rc = sbfs_attr_any(fs, ino, &st, &ttl);
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_attr(req, &st, ttl);
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

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	sbfs *fs = FS(req);
	uint32_t id;
	if (sbfs_ino_kind(parent, &id, NULL) != K_TOPIC)
		return sbfs_reply_err(req, -EPERM);
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return sbfs_reply_err(req, -ENOENT);
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
	else if (off != bd.start)
		rc = -EPERM; /* only the oldest record can go */
	else {
		/* gone at once; the notifier drops it from the store within
		 * milliseconds, so rm -r costs one persisted delete, not one
		 * per record (and unmount drops what is left) */
		atomic_store(&te->hide_before, off + 1);
		rc = 0;
	}
	pthread_mutex_unlock(&te->wlock);
	if (rc)
		return sbfs_reply_err(req, rc);
	sbfs_notify_kick(fs);
	fuse_reply_err(req, 0);
}

/* Only a file being created can be renamed, within its topic (rsync's and
 * editors' temporary files); records, .log and topics cannot. */
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	sbfs *fs = FS(req);
	uint32_t id;
	sbfs_tentry *te;
	if (parent != newparent || sbfs_ino_kind(parent, &id, NULL) != K_TOPIC)
		return sbfs_reply_err(req, -EPERM);
	if (sbfs_topic_by_id(fs, id, &te, NULL))
		return sbfs_reply_err(req, -ENOENT);
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

/* ---- directories ---------------------------------------------------------- */

typedef struct name_list {
	char **v;
	size_t n, cap;
} name_list;

/* Thousands of topics: the list grows geometrically. */
static int snap_cb(void *arg, const char *name, sbfs_topic *t)
{
	(void)t;
	name_list *x = arg;
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 64;
		char **v = realloc(x->v, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		x->v = v;
		x->cap = nc;
	}
	if (!(x->v[x->n] = strdup(name)))
		return -ENOMEM;
	x->n++;
	return 0;
}

static int snap_refused_cb(void *arg, const char *name, int err, const char *msg)
{
	(void)err, (void)msg;
	return snap_cb(arg, name, NULL);
}

static void free_names(sbfs_fh *h)
{
	for (size_t i = 0; i < h->nnames; i++)
		free(h->names[i]);
	free(h->names);
	h->names = NULL;
	h->nnames = 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	uint32_t id;
	enum sbfs_kind k = sbfs_ino_kind(ino, &id, NULL);
	sbfs_tentry *te = NULL;
	if (k == K_TOPIC) {
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return sbfs_reply_err(req, -ENOENT);
	} else if (k != K_ROOT) {
		return sbfs_reply_err(req, -ENOTDIR);
	}
	sbfs_fh *h = sbfs_fh_new(fs, k, te);
	if (!h)
		return sbfs_reply_err(req, -ENOMEM);
	fi->fh = (uint64_t)(uintptr_t)h;
	fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	sbfs_fh *h = (sbfs_fh *)(uintptr_t)fi->fh;
	sbfs_fh_free(FS(req), h);
	fuse_reply_err(req, 0);
}

/* Add one entry; 0 when it did not fit. */
static size_t add(fuse_req_t req, char *buf, size_t used, size_t size, const char *name,
		  fuse_ino_t ino, mode_t type, off_t next)
{
	struct stat st = { .st_ino = ino, .st_mode = type };
	size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, next);
	return need > size - used ? 0 : need;
}

/*
 * Cookies: 1 after ".", 2 after "..", then for the root 3 + i after topic i
 * of the opendir-time snapshot; for a topic 3 after ".log" and offset + 4
 * after the record at offset, so a listing resumes by offset however the
 * topic changed meanwhile.
 */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	sbfs_fh *h = (sbfs_fh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, n;
	if (!buf)
		return sbfs_reply_err(req, -ENOMEM);
	fuse_ino_t self = ino, up = FUSE_ROOT_ID;
	if (off == 0) {
		if (!(n = add(req, buf, used, size, ".", self, S_IFDIR, 1)))
			goto out;
		used += n;
		off = 1;
	}
	if (off == 1) {
		if (!(n = add(req, buf, used, size, "..", up, S_IFDIR, 2)))
			goto out;
		used += n;
		off = 2;
	}
	if (h->kind == K_ROOT) {
		if (off == 2 || !h->names) {
			free_names(h);
			name_list tmp = { 0 };
			int rc = fs->b->ops->topic_list(fs->b, snap_cb, &tmp);
			/* refused (damaged) topics are listed too: a lookup of
			 * one gives EIO, and the daemon said why at start */
			if (!rc)
				rc = fs->b->ops->topic_list_refused(fs->b, snap_refused_cb, &tmp);
			h->names = tmp.v;
			h->nnames = tmp.n;
			if (rc && !used) {
				free(buf);
				return sbfs_reply_err(req, rc);
			}
		}
		for (size_t i = (size_t)off - 2; i < h->nnames; i++) {
			sbfs_tentry *te;
			fuse_ino_t tino;
			int trc = sbfs_topic_by_name(fs, h->names[i], &te);
			if (trc == 0)
				tino = sbfs_ino(te->id, SBFS_L_DIR);
			else if (sbfs_errno(trc) == EIO)
				tino = sbfs_name_ino(h->names[i]); /* refused */
			else
				continue;
			if (!(n = add(req, buf, used, size, h->names[i], tino, S_IFDIR, (off_t)(i + 3))))
				goto out;
			used += n;
		}
		goto out;
	}
	/* a topic */
	sbfs_tentry *te = h->te;
	if (off == 2) {
		if (fs->cfg->list_log) {
			if (!(n = add(req, buf, used, size, ".log", sbfs_ino(te->id, SBFS_L_LOG),
				      S_IFREG, 3)))
				goto out;
			used += n;
		}
		off = 3;
	}
	sbfs_bounds bd;
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	int rc = sbfs_offsets_of(fs, te, t, &bd);
	if (rc && !used) {
		free(buf);
		return sbfs_reply_err(req, rc);
	}
	uint64_t o = (uint64_t)off - 3;
	if (o < bd.start)
		o = bd.start;
	if (bd.next > SBFS_MAX_OFFSET)
		bd.next = SBFS_MAX_OFFSET + 1;
	char name[21];
	for (; o < bd.next; o++) {
		/* a log with gaps (Kafka: compaction, transaction markers) */
		if (fs->b->ops->next_present && fs->b->ops->next_present(t, o, &o))
			break;
		if (o >= bd.next)
			break;
		sbfs_fmt_offset(name, o);
		if (!(n = add(req, buf, used, size, name, sbfs_ino(te->id, SBFS_L_REC0 + o),
			      S_IFREG, (off_t)(o + 4))))
			break;
		used += n;
	}
out:
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync, (void)fi;
	sbfs *fs = FS(req);
	uint32_t id;
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_ino_kind(ino, &id, NULL) != K_TOPIC || sbfs_topic_by_id(fs, id, &te, &t))
		return (void)fuse_reply_err(req, 0);
	int rc = sbfs_drop_hidden(fs, te, 0);
	if (rc == 0)
		rc = fs->b->ops->sync(t);
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	sbfs *fs = FS(req);
	struct statvfs st;
	int rc = fs->b->ops->statfs(fs->b, &st);
	if (rc)
		return sbfs_reply_err(req, rc);
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

/* ---- extended attributes -------------------------------------------------- */

static int xattr_names(sbfs *fs, fuse_ino_t ino, char *buf, size_t *len)
{
	uint32_t id;
	uint64_t off;
	sbfs_tentry *te;
	sbfs_topic *t;
	*len = 0;
	if (sbfs_ino_kind(ino, &id, &off) != K_RECORD)
		return 0;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);
	if (rc)
		return rc;
	size_t n = 0;
	memcpy(buf + n, XA_OFFSET, sizeof XA_OFFSET);
	n += sizeof XA_OFFSET;
	memcpy(buf + n, XA_TIMESTAMP, sizeof XA_TIMESTAMP);
	n += sizeof XA_TIMESTAMP;
	if (ri.key_len) {
		memcpy(buf + n, XA_KEY, sizeof XA_KEY);
		n += sizeof XA_KEY;
	}
	*len = n;
	return 0;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[128];
	size_t len;
	int rc = xattr_names(FS(req), ino, buf, &len);
	if (rc)
		return sbfs_reply_err(req, rc);
	if (size == 0)
		return (void)fuse_reply_xattr(req, len);
	if (size < len)
		return sbfs_reply_err(req, -ERANGE);
	fuse_reply_buf(req, buf, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	sbfs *fs = FS(req);
	uint32_t id;
	uint64_t off;
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_ino_kind(ino, &id, &off) != K_RECORD || strncmp(name, "user.streambus.", 15))
		return sbfs_reply_err(req, -ENODATA);
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return sbfs_reply_err(req, -ENOENT);
	sbfs_recinfo ri;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);
	if (rc)
		return sbfs_reply_err(req, rc);
	char small[32];
	char *val = small;
	size_t len;
	if (strcmp(name, XA_OFFSET) == 0) {
		len = (size_t)snprintf(small, sizeof small, "%" PRIu64, off);
	} else if (strcmp(name, XA_TIMESTAMP) == 0) {
		len = (size_t)snprintf(small, sizeof small, "%" PRId64, ri.timestamp_ns);
	} else if (strcmp(name, XA_KEY) == 0 && ri.key_len) {
		val = malloc(ri.key_len);
		if (!val)
			return sbfs_reply_err(req, -ENOMEM);
		rc = fs->b->ops->read_key(t, off, val, ri.key_len, &len);
		if (rc) {
			free(val);
			return sbfs_reply_err(req, rc);
		}
	} else {
		return sbfs_reply_err(req, -ENODATA);
	}
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		sbfs_reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, val, len);
	if (val != small)
		free(val);
}


static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)flags;
	if (sbfs_ino_kind(ino, NULL, NULL) == K_PENDING) {
		int rc = sbfs_pending_setxattr(FS(req), ino, name, value, size);
		return rc ? sbfs_reply_err(req, rc) : (void)fuse_reply_err(req, 0);
	}
	sbfs_reply_err(req, -ENOTSUP);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	sbfs_reply_err(req, -ENOTSUP);
}

void sbfs_ops_fill(struct fuse_lowlevel_ops *ops)
{
	ops->init = op_init;
	ops->lookup = op_lookup;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->mkdir = op_mkdir;
	ops->rmdir = op_rmdir;
	ops->unlink = op_unlink;
	ops->rename = op_rename;
	ops->link = op_link;
	ops->symlink = op_symlink;
	ops->opendir = op_opendir;
	ops->readdir = op_readdir;
	ops->releasedir = op_releasedir;
	ops->fsyncdir = op_fsyncdir;
	ops->statfs = op_statfs;
	ops->listxattr = op_listxattr;
	ops->getxattr = op_getxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
}
