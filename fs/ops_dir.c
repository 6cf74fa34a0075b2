/*
 * ops_dir.c - directory listings (the root: a snapshot of the topic names
 * at opendir; a topic: its records by offset, streaming), and fsyncdir.
 */
#include "fs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

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
	free(h->name_inos);
	h->names = NULL;
	h->name_inos = NULL;
	h->nnames = 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	uint32_t id;
	enum sbfs_kind k = sbfs_ino_kind(ino, &id, NULL);
	sbfs_tentry *te = NULL;
	if (k == K_TOPIC || k == K_SINCEDIR || k == K_KEYSDIR) {
		if (sbfs_topic_by_id(fs, id, &te, NULL))
			return sbfs_reply_err(req, -ENOENT);
	} else if (k != K_ROOT) {
		return sbfs_reply_err(req, -ENOTDIR);
	}
	sbfs_fh *h = sbfs_fh_new(fs, k, te);
	if (!h)
		return sbfs_reply_err(req, -ENOMEM);
	sbfs_fh_publish(fi, h);
	fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	sbfs_fh *h = sbfs_fh_of(fi);
	sbfs_fh_free(FS(req), h);
	fuse_reply_err(req, 0);
}

/* The root's listing: a snapshot of the topic names, refused (damaged)
 * ones too (a lookup of one gives EIO; the daemon said why at start).
 * 0 or the backend's error (then none). */
static int root_snapshot(sbfs *fs, sbfs_fh *h)
{
	name_list tmp = { 0 };
	int rc = fs->b->ops->topic_list(fs->b, snap_cb, &tmp);

	if (!rc)
		rc = fs->b->ops->topic_list_refused(fs->b, snap_refused_cb, &tmp);
	free_names(h);
	if (rc) {
		for (size_t i = 0; i < tmp.n; i++)
			free(tmp.v[i]);
		free(tmp.v);
		return rc;
	}
	h->names = tmp.v;
	h->nnames = tmp.n;
	return 0;
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
 * after the record at offset (a topic of several partitions: i + 4 after
 * partition i), so a listing resumes by offset however the
 * topic changed meanwhile; then PENDING_COOKIE + i + 1 after the ith file
 * being created of the snapshot taken when the records were listed.
 */
#define PENDING_COOKIE ((off_t)SBFS_MAX_OFFSET + 5)

/* The names of te's files being created (SPEC §3: visible while open), from
 * entry `from` of the handle's snapshot (taken at from 0). The new `used`. */
static size_t add_pending(fuse_req_t req, sbfs *fs, sbfs_fh *h, sbfs_tentry *te, char *buf, size_t used,
			  size_t size, size_t from)
{
	size_t n;

	if (from == 0) {
		free_names(h);
		if (sbfs_pending_names(fs, te, &h->names, &h->name_inos, &h->nnames))
			return used; /* no memory: listed without them */
	}
	for (size_t i = from; i < h->nnames; i++) {
		if (!(n = add(req, buf, used, size, h->names[i], h->name_inos[i], S_IFREG,
			      PENDING_COOKIE + (off_t)i + 1)))
			break;
		used += n;
	}
	return used;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	sbfs *fs = FS(req);
	sbfs_fh *h = sbfs_fh_of(fi);
	char *buf = malloc(size);
	size_t used = 0, n;
	if (!buf)
		return sbfs_reply_err(req, -ENOMEM);
	fuse_ino_t self = ino, up = FUSE_ROOT_ID;
	/* The root's topics first: a backend that cannot list them (a cluster
	 * down) fails the listing at once, not after "." and "..". */
	if (h->kind == K_ROOT && (off == 0 || !h->names)) {
		int rc = root_snapshot(fs, h);
		if (rc) {
			free(buf);
			return sbfs_reply_err(req, rc);
		}
	}
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
	if (h->kind == K_SINCEDIR)
		goto out; /* .since lists nothing: any time is a name in it */
	if (h->kind == K_KEYSDIR) { /* the keys, streamed: ops_keys.c */
		long r = sbfs_keys_readdir(req, h, buf, used, size, off);
		if (r < 0 && !used) {
			free(buf);
			return sbfs_reply_err(req, (int)r);
		}
		used = r < 0 ? used : (size_t)r;
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
	char name[21];
	uint32_t np = sbfs_topic_parts(fs, te);
	for (uint32_t i = (uint32_t)off - 3; np && i < np; i++) {
		/* a topic of several partitions: a directory for each */
		sbfs_tentry *pe;
		if (sbfs_part_by_index(fs, te, i, &pe))
			continue;
		snprintf(name, sizeof name, "%" PRIu32, i);
		if (!(n = add(req, buf, used, size, name, sbfs_ino(pe->id, SBFS_L_DIR), S_IFDIR,
			      (off_t)(i + 4))))
			goto out;
		used += n;
	}
	if (np)
		goto out;
	sbfs_bounds bd;
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	int rc = sbfs_offsets_of(fs, te, t, &bd);
	if (rc && !used) {
		free(buf);
		return sbfs_reply_err(req, rc);
	}
	if (off >= PENDING_COOKIE) {
		used = add_pending(req, fs, h, te, buf, used, size, (size_t)(off - PENDING_COOKIE));
		goto out;
	}
	uint64_t o = (uint64_t)off - 3;
	if (o < bd.start)
		o = bd.start;
	if (bd.next > SBFS_MAX_OFFSET)
		bd.next = SBFS_MAX_OFFSET + 1;
	int full = 0;
	for (; o < bd.next; o++) {
		/* a log with gaps (Kafka: compaction, transaction markers);
		 * a backend that cannot tell (a cluster down) fails the
		 * listing here, after what this reply holds, never ends it
		 * as if nothing followed */
		if (fs->b->ops->next_present && (rc = fs->b->ops->next_present(t, o, &o))) {
			if (rc == -ENOENT)
				break;
			if (used)
				goto out; /* the next readdir, from o, says why */
			free(buf);
			return sbfs_reply_err(req, rc);
		}
		if (o >= bd.next)
			break;
		sbfs_fmt_offset(name, o);
		if (!(n = add(req, buf, used, size, name, sbfs_ino(te->id, SBFS_L_REC0 + o),
			      S_IFREG, (off_t)(o + 4)))) {
			full = 1;
			break;
		}
		used += n;
	}
	if (!full)
		used = add_pending(req, fs, h, te, buf, used, size, 0);
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

void sbfs_ops_dir_fill(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->readdir = op_readdir;
	ops->releasedir = op_releasedir;
	ops->fsyncdir = op_fsyncdir;
}
