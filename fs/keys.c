/*
 * keys.c - TOPIC/.keys/ (SPEC §2 "Keys: a topic as a table"): the latest
 * record of every key, as a file named by the key. The handlers' part
 * (lookup, listing, open, rm) is ops_keys.c's; this is what they stand on:
 * names, attributes, the latest record of a key, tombstones, and the files
 * written there (pending.c's, keyed by the name decoded).
 *
 * Names. A key is its own name where it can be one; '/', '%' and NUL are
 * percent-encoded (%2F, %25, %00), and a key "." or ".." is %2E or %2E%2E:
 * that is how a listing spells it (upper-case hex, nothing else encoded).
 * A name is decoded leniently, the same way here and for a file created in
 * the topic (pending.c), so that a copy of .keys/ into a topic keeps its
 * keys: only the escapes the encoder writes are decoded (%2F, %25, %00, a
 * whole name %2E or %2E%2E; hex digits in either case), and any other '%'
 * is itself: "50%off" is the key 50%off (listed as 50%25off; both names
 * find it), "%41" the key %41. A key whose name would pass NAME_MAX is not
 * listed (it cannot be looked up: `streambus get` reads it).
 *
 * Inodes. TOPIC/.keys/K is inode SBFS_KEY_BIT | the inode of K's latest
 * record (fs.h): its attributes are that record's (size, time), its xattrs
 * too (user.streambus.offset names it), and it never changes. A write to K
 * appends a new record, so K's next lookup (key entries are never cached)
 * is a new inode, as after a rename over the file. The inode tells which
 * key it is (the record's key), so an open for writing needs no table;
 * until that file's close, K is its old record to everyone else (a new
 * key, created in .keys/, is visible while open, as in the topic).
 *
 * Rename. A file still being written is renamed as in the topic (pending.c:
 * one record under the final name). A key whose record is appended (sed -i
 * closes its temporary file before renaming it onto K; mv) is renamed by
 * appending its record again under the new key (payload, headers, time:
 * a rename keeps mtime), then a tombstone for the old key, in one append
 * where both fit a batch.
 */
#include "fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char HEX[] = "0123456789ABCDEF";

static int must_encode(unsigned char c)
{
	return c == '/' || c == '%' || c == '\0';
}

size_t sbfs_key_name(const void *key, size_t klen, char name[SBFS_KEYNAME_MAX + 1])
{
	const unsigned char *k = key;
	size_t n = 0;

	if (klen == 0)
		return 0;
	if ((klen == 1 || klen == 2) && k[0] == '.' && k[klen - 1] == '.') {
		strcpy(name, klen == 1 ? "%2E" : "%2E%2E");
		return klen * 3;
	}
	for (size_t i = 0; i < klen; i++) {
		if (!must_encode(k[i])) {
			if (n + 1 > SBFS_KEYNAME_MAX)
				return 0;
			name[n++] = (char)k[i];
			continue;
		}
		if (n + 3 > SBFS_KEYNAME_MAX)
			return 0;
		name[n++] = '%';
		name[n++] = HEX[k[i] >> 4];
		name[n++] = HEX[k[i] & 15];
	}
	name[n] = '\0';
	return n;
}

static int hexval(char c)
{
	const char *p = c ? strchr(HEX, toupper((unsigned char)c)) : NULL;
	return p ? (int)(p - HEX) : -1;
}

/* The byte the escape at s ('%') stands for, if sbfs_key_name writes it
 * (%2F, %25, %00: hex in either case); else -1, and the '%' is itself. */
static int escape_at(const char *s)
{
	int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
	int c = lo < 0 ? -1 : hi << 4 | lo;

	return c >= 0 && must_encode((unsigned char)c) ? c : -1;
}

size_t sbfs_key_of_name(const char *name, unsigned char *key)
{
	size_t n = 0, len = strlen(name);

	if (len == 0 || len > SBFS_KEYNAME_MAX)
		return 0;
	if (strcasecmp(name, "%2E") == 0 || strcasecmp(name, "%2E%2E") == 0) {
		memset(key, '.', len / 3);
		return len / 3;
	}
	for (size_t i = 0; i < len; i++) {
		int c = name[i] == '%' ? escape_at(name + i) : -1;

		key[n++] = (unsigned char)(c < 0 ? name[i] : c);
		if (c >= 0)
			i += 2;
	}
	return n;
}

int sbfs_keys_dir_attr(sbfs *fs, sbfs_tentry *te, struct stat *st)
{
	int rc = sbfs_attr_topic(fs, te, st);

	if (rc)
		return rc;
	st->st_ino = sbfs_ino(te->id, SBFS_L_KEYS);
	st->st_nlink = 2;
	return 0;
}

int sbfs_attr_key(sbfs *fs, sbfs_tentry *te, uint64_t off, struct stat *st)
{
	int rc = sbfs_attr_record(fs, te, off, st);

	if (rc)
		return rc;
	st->st_ino = SBFS_KEY_BIT | sbfs_ino(te->id, SBFS_L_REC0 + off);
	st->st_mode = S_IFREG | (0666 & ~fs->cfg->umask);
	return 0;
}

int sbfs_key_latest(sbfs *fs, sbfs_tentry *te, const void *key, size_t klen, sbfs_recinfo *ri)
{
	sbfs_recinfo r;
	int rc;

	if (!fs->b->ops->get_key)
		return -ENOTSUP;
	sbfs_pending_settle(fs, te); /* files closed before have their keys */
	if ((rc = fs->b->ops->get_key(sbfs_topic_handle(fs, te), key, klen, &r)))
		return rc;
	/* rm'ed (hidden until dropped), or past what the tree can name */
	if (r.offset < atomic_load(&te->hide_before) || r.offset > SBFS_MAX_OFFSET)
		return -ENOENT;
	*ri = r;
	return 0;
}

int sbfs_key_find(sbfs *fs, sbfs_tentry *te, const char *name, sbfs_recinfo *ri)
{
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t klen = sbfs_key_of_name(name, key);

	return klen ? sbfs_key_latest(fs, te, key, klen, ri) : -ENOENT;
}

int sbfs_key_remove(sbfs *fs, sbfs_tentry *te, const char *name)
{
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t klen = sbfs_key_of_name(name, key);
	sbfs_recinfo ri;
	int rc;

	if (!fs->b->ops->get_key)
		return -ENOTSUP;
	if (sbfs_pending_unlink_key(fs, te, name) == 0)
		return 0; /* a file being written: dropped, as in the topic */
	if (!klen)
		return -ENOENT;
	if ((rc = sbfs_key_latest(fs, te, key, klen, &ri)))
		return rc;
	if (fs->cfg->read_only)
		return -EROFS;
	/* a keyed record without payload, marked: the key leaves .keys/ */
	sbfs_rec r = { .key = key, .key_len = (uint32_t)klen, .flags = SBFS_REC_TOMBSTONE };
	pthread_rwlock_rdlock(&te->alock);
	rc = fs->b->ops->append(sbfs_topic_handle(fs, te), &r, 1, NULL);
	pthread_rwlock_unlock(&te->alock);
	if (rc == 0)
		sbfs_notify_kick(fs);
	return rc;
}

int sbfs_key_create(sbfs *fs, sbfs_tentry *te, const char *name, mode_t mode, int open,
		    struct fuse_entry_param *e, sbfs_pending **out)
{
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t klen;

	if (!fs->b->ops->get_key)
		return -ENOTSUP;
	if (strlen(name) > SBFS_KEYNAME_MAX)
		return -ENAMETOOLONG;
	klen = sbfs_key_of_name(name, key);
	return sbfs_pending_create_key(fs, te, name, key, klen, NULL, 0, 1, mode, open ? 1 : 0, e, out);
}

/* The key and (unless trunc) the payload of the record at off. */
static int read_record(sbfs *fs, sbfs_tentry *te, uint64_t off, int trunc, unsigned char **key,
		       size_t *klen, char **val, size_t *vlen)
{
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	sbfs_recinfo ri;
	size_t n = 0, got;
	int rc = sbfs_stat_visible(fs, te, t, off, &ri);

	if (rc)
		return rc;
	if (!ri.key_len)
		return -EPERM; /* not a key's record: no key file names it */
	*key = malloc(ri.key_len);
	*val = malloc(trunc || !ri.value_len ? 1 : ri.value_len);
	if (!*key || !*val) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = fs->b->ops->read_key(t, off, *key, ri.key_len, klen)))
		goto fail;
	while (!trunc && n < ri.value_len) {
		if ((rc = fs->b->ops->read(t, off, n, *val + n, ri.value_len - n, &got)))
			goto fail;
		if (!got)
			break;
		n += got;
	}
	*vlen = n;
	return 0;
fail:
	free(*key);
	free(*val);
	return rc;
}

int sbfs_key_open_write(sbfs *fs, sbfs_tentry *te, uint64_t off, int trunc, sbfs_pending **out)
{
	unsigned char *key;
	char *val;
	size_t klen, vlen;
	int rc;

	if (fs->cfg->read_only)
		return -EROFS;
	if ((rc = read_record(fs, te, off, trunc, &key, &klen, &val, &vlen)))
		return rc;
	/* no name: until its close, K is still its record to every other
	 * reader (a value is replaced whole, as by a rename), and rm of K
	 * meanwhile appends a tombstone before it, not drop it */
	rc = sbfs_pending_create_key(fs, te, "", key, klen, val, vlen, trunc, 0644, 1, NULL, out);
	free(key);
	free(val);
	return rc;
}

/* ---- rename of a key -------------------------------------------------------- */

/* One header of the renamed record, for its copy (arg: sbfs_hdrs **). */
static int keep_header(void *arg, const sbfs_header *h)
{
	char name[SBFS_HEADER_NAME_MAX + 1];

	if (h->name_len > SBFS_HEADER_NAME_MAX)
		return -EINVAL;
	memcpy(name, h->name, h->name_len);
	name[h->name_len] = '\0';
	return sbfs_hdrs_set(arg, name, h->value, h->value_len, 0);
}

/* recs[0] then recs[1]: in one append (all or nothing) where they fit one
 * batch, else one after the other (a value near the batch limit). */
static int append_pair(sbfs *fs, sbfs_tentry *te, const sbfs_rec recs[2])
{
	const sbfs_backend_ops *o = fs->b->ops;
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	int one = o->record_size(t, &recs[0]) + o->record_size(t, &recs[1]) <= o->batch_max(t);
	int rc;

	pthread_rwlock_rdlock(&te->alock);
	rc = o->append(t, recs, one ? 2 : 1, NULL);
	if (rc == 0 && !one)
		rc = o->append(t, recs + 1, 1, NULL);
	pthread_rwlock_unlock(&te->alock);
	sbfs_notify_kick(fs);
	return rc;
}

/* Is the key `to` (named newname) in .keys/: a record, or a file being
 * written under that name? */
static int key_taken(sbfs *fs, sbfs_tentry *te, const char *newname, const void *to, size_t tolen)
{
	sbfs_recinfo ri;

	return sbfs_pending_lookup_key(fs, te, newname, NULL) == 0 ||
	       sbfs_key_latest(fs, te, to, tolen, &ri) == 0;
}

/* recs[0], the record at off again under another key, gets that record's
 * headers; then recs[0] and recs[1] are appended. */
static int append_copy(sbfs *fs, sbfs_tentry *te, uint64_t off, sbfs_rec recs[2])
{
	sbfs_hdrs *hs = NULL;
	int rc = 0;

	if (fs->b->ops->read_headers)
		rc = fs->b->ops->read_headers(sbfs_topic_handle(fs, te), off, keep_header, &hs);
	if (rc == 0) {
		recs[0].headers = sbfs_hdrs_array(hs, &recs[0].n_headers);
		rc = append_pair(fs, te, recs);
	}
	sbfs_hdrs_free(hs);
	return rc;
}

int sbfs_key_rename(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
		    unsigned int flags)
{
	unsigned char to[SBFS_KEYNAME_MAX], *key = NULL;
	size_t tolen = sbfs_key_of_name(newname, to), klen, vlen;
	char *val = NULL;
	sbfs_recinfo ri;
	int rc;

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if ((rc = sbfs_key_find(fs, te, name, &ri)))
		return rc;
	if (!tolen)
		return -EINVAL;
	if (fs->cfg->read_only)
		return -EROFS;
	if ((rc = read_record(fs, te, ri.offset, 0, &key, &klen, &val, &vlen)))
		return rc;
	/* newname gets the value as it was, time included (a rename keeps
	 * mtime); then name leaves .keys/ */
	sbfs_rec recs[2] = {
		{ .key = to, .key_len = (uint32_t)tolen, .value = val, .value_len = (uint32_t)vlen,
		  .timestamp_ns = ri.timestamp_ns },
		{ .key = key, .key_len = (uint32_t)klen, .flags = SBFS_REC_TOMBSTONE },
	};
	if (klen == tolen && memcmp(key, to, klen) == 0)
		; /* another spelling of the same key: nothing to do */
	else if ((flags & RENAME_NOREPLACE) && key_taken(fs, te, newname, to, tolen))
		rc = -EEXIST;
	else if ((rc = append_copy(fs, te, ri.offset, recs)) == 0)
		sbfs_pending_unlink_key(fs, te, newname); /* a file being written there: replaced */
	free(key);
	free(val);
	return rc;
}
