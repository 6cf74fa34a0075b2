/*
 * ops_keys.c - the handlers' part for TOPIC/.keys/ (keys.c says what a
 * key's name and inode are): lookup, the listing, rm, and opening a key's
 * file. Called by ops_names.c, ops_dir.c and ops_open.c for a parent or an
 * inode of the .keys kinds.
 *
 * The listing streams: each reply is one list_keys call from the key
 * where the last one stopped, never a whole list. A cookie is an entry's
 * number in this open's listing (+ 4); the handle keeps the keys of its
 * last reply, so that the next readdir, which resumes after any entry of
 * that reply (the kernel may not have used them all), starts at a key.
 * Any other cookie (a seekdir far back) walks from the first key.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static sbfs *FS(fuse_req_t req) { return fuse_req_userdata(req); }

void sbfs_keys_lookup(fuse_req_t req, sbfs_tentry *te, const char *name)
{
	sbfs *fs = FS(req);
	struct fuse_entry_param e;
	sbfs_recinfo ri;
	int rc;

	memset(&e, 0, sizeof e);
	if (!fs->b->ops->get_key)
		return sbfs_reply_err(req, -ENOTSUP);
	if (sbfs_pending_lookup_key(fs, te, name, &e.attr) == 0) {
		e.ino = e.attr.st_ino; /* being written: uncached, as in the topic */
		return (void)fuse_reply_entry(req, &e);
	}
	rc = sbfs_key_find(fs, te, name, &ri);
	if (rc == 0)
		rc = sbfs_attr_key(fs, te, ri.offset, &e.attr);
	if (rc)
		return sbfs_reply_err(req, rc); /* no negative caching */
	e.ino = e.attr.st_ino;
	e.generation = te->gen;
	/* the name moves to a new inode at each write: never cached; the
	 * inode itself (one record) never changes */
	e.entry_timeout = 0;
	e.attr_timeout = 1.0;
	fuse_reply_entry(req, &e);
}

void sbfs_keys_unlink(fuse_req_t req, sbfs_tentry *te, const char *name)
{
	int rc = sbfs_key_remove(FS(req), te, name);
	if (rc)
		return sbfs_reply_err(req, rc);
	fuse_reply_err(req, 0);
}

/* ---- the listing ----------------------------------------------------------- */

typedef struct list_ctx {
	fuse_req_t req;
	sbfs_tentry *te;
	uint64_t hide;          /* rm'ed records below this: not listed */
	char *buf;
	size_t used, size;
	const unsigned char *after; /* resume after this key (the first one met, if equal) */
	size_t after_len;
	uint64_t skip;          /* entries still to pass over (a cookie not in the last reply) */
	uint64_t next;          /* the number of the next entry */
	/* the keys of this reply, as sbfs_fh.kbuf */
	unsigned char *kb;
	size_t klen, kcap;
	uint64_t kn;
} list_ctx;

static int keep_key(list_ctx *c, const void *key, size_t klen)
{
	if (c->klen + 2 + klen > c->kcap) {
		size_t cap = c->kcap ? c->kcap * 2 : 4096;
		while (cap < c->klen + 2 + klen)
			cap *= 2;
		unsigned char *nb = realloc(c->kb, cap);
		if (!nb)
			return -ENOMEM;
		c->kb = nb;
		c->kcap = cap;
	}
	c->kb[c->klen] = (unsigned char)(klen >> 8);
	c->kb[c->klen + 1] = (unsigned char)klen;
	memcpy(c->kb + c->klen + 2, key, klen);
	c->klen += 2 + klen;
	c->kn++;
	return 0;
}

static int list_one(void *arg, const void *key, size_t klen, const sbfs_recinfo *ri)
{
	list_ctx *c = arg;
	char name[SBFS_KEYNAME_MAX + 1];
	const unsigned char *after = c->after;

	c->after = NULL;
	if (after && klen == c->after_len && memcmp(key, after, klen) == 0)
		return 0; /* the last entry the kernel took */
	if (ri->offset < c->hide || ri->offset > SBFS_MAX_OFFSET || !sbfs_key_name(key, klen, name))
		return 0;
	if (c->skip) {
		c->skip--;
		c->next++;
		return 0;
	}
	struct stat st = { .st_ino = SBFS_KEY_BIT | sbfs_ino(c->te->id, SBFS_L_REC0 + ri->offset),
			   .st_mode = S_IFREG };
	size_t need = fuse_add_direntry(c->req, c->buf + c->used, c->size - c->used, name, &st,
					(off_t)(c->next + 4));
	if (need > c->size - c->used)
		return 1; /* full */
	int rc = keep_key(c, key, klen);
	if (rc)
		return rc;
	c->used += need;
	c->next++;
	return 0;
}

/* Key number i of h's last reply (i < h->kn). */
static const unsigned char *kept_key(const sbfs_fh *h, uint64_t i, size_t *len)
{
	size_t at = 0;
	for (;;) {
		size_t l = (size_t)h->kbuf[at] << 8 | h->kbuf[at + 1];
		if (i-- == 0) {
			*len = l;
			return h->kbuf + at + 2;
		}
		at += 2 + l;
	}
}

long sbfs_keys_readdir(fuse_req_t req, sbfs_fh *h, char *buf, size_t used, size_t size, off_t off)
{
	sbfs *fs = FS(req);
	sbfs_tentry *te = h->te;
	uint64_t first = off > 3 ? (uint64_t)off - 3 : 0; /* the entry to start at */
	list_ctx c = { .req = req, .te = te, .hide = atomic_load(&te->hide_before), .buf = buf,
		       .used = used, .size = size, .next = first };
	const unsigned char *from = NULL;
	size_t from_len = 0;

	if (!fs->b->ops->list_keys)
		return -ENOTSUP;
	sbfs_pending_settle(fs, te); /* files closed before have their keys */
	if (first > 0 && first - 1 >= h->kfirst && first - 1 < h->kfirst + h->kn) {
		from = kept_key(h, first - 1 - h->kfirst, &from_len);
		c.after = from;
		c.after_len = from_len;
	} else {
		c.skip = first; /* from the first key */
		c.next = 0;
	}
	int rc = fs->b->ops->list_keys(sbfs_topic_handle(fs, te), from, from_len, list_one, &c);
	if (rc < 0 && c.used == used) {
		free(c.kb);
		return rc;
	}
	if (c.kn) { /* else the end: the kernel may ask from the same place again */
		free(h->kbuf);
		h->kbuf = c.kb;
		h->klen = c.klen;
		h->kcap = c.kcap;
		h->kfirst = c.next - c.kn;
		h->kn = c.kn;
	} else {
		free(c.kb);
	}
	return (long)c.used;
}

/* ---- opening a key's file -------------------------------------------------- */

int sbfs_keys_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, sbfs_fh **out)
{
	sbfs *fs = FS(req);
	uint32_t id;
	uint64_t off = 0;
	sbfs_tentry *te;
	sbfs_topic *t;
	sbfs_fh *h;
	int rc;

	if (sbfs_ino_kind(ino, &id, &off) != K_KEY || sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) {
		sbfs_recinfo ri;
		if ((rc = sbfs_stat_visible(fs, te, t, off, &ri)))
			return rc;
		if (!(h = sbfs_fh_new(fs, K_RECORD, te)))
			return -ENOMEM;
		h->offset = off;
		/* The record never changes, but the kernel's idea of this inode
		 * does: a writer's open of it (O_TRUNC, then its writes) sets its
		 * size and page cache. So no page cache: every read asks. */
		fi->direct_io = 1;
		fi->noflush = 1;
		*out = h;
		return 0;
	}
	/* writing: a new record of this key at the close (pending.c) */
	sbfs_pending *p;
	if ((rc = sbfs_key_open_write(fs, te, off, !!(fi->flags & O_TRUNC), &p)))
		return rc;
	if (!(h = sbfs_fh_new(fs, K_PENDING, te))) {
		sbfs_pending_discard(fs, p);
		return -ENOMEM;
	}
	h->p = p;
	/* what the writer sets on K's inode is its file's (ops_attr.c, ops_xattr.c) */
	sbfs_fh_set_key_writer(fs, h, ino, sbfs_pending_ino(p), fuse_req_ctx(req)->pid);
	fi->direct_io = 1;
	*out = h;
	return 0;
}
