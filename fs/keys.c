/*
 * keys.c - TOPIC/.keys/ (SPEC §2 "Keys: a topic as a table"): the latest
 * record of every key, as a file named by the key. The handlers' part
 * (lookup, listing, open, rm) is ops_keys.c's; this is what they stand on:
 * names, attributes, the latest record of a key, tombstones, and the files
 * written there (pending.c's, keyed by the name decoded).
 *
 * Names. A key is its own name where it can be one; '/', '%' and NUL are
 * percent-encoded (%2F, %25, %00), and a key "." or ".." is %2E or %2E%2E.
 * A name stands for a key only as sbfs_key_name spells it (upper-case hex,
 * nothing else encoded), so that a key has exactly one name: "%41" is no
 * key's name. A key whose name would pass NAME_MAX is not listed (it cannot
 * be looked up: `streambus get` reads it).
 *
 * Inodes. TOPIC/.keys/K is inode SBFS_KEY_BIT | the inode of K's latest
 * record (fs.h): its attributes are that record's (size, time), its xattrs
 * too (user.streambus.offset names it), and it never changes. A write to K
 * appends a new record, so K's next lookup (key entries are never cached)
 * is a new inode, as after a rename over the file. The inode tells which
 * key it is (the record's key), so an open for writing needs no table;
 * until that file's close, K is its old record to everyone else (a new
 * key, created in .keys/, is visible while open, as in the topic).
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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
	const char *p = c ? strchr(HEX, c) : NULL;
	return p ? (int)(p - HEX) : -1;
}

size_t sbfs_key_of_name(const char *name, unsigned char *key)
{
	size_t n = 0, len = strlen(name);
	char again[SBFS_KEYNAME_MAX + 1];

	if (len == 0 || len > SBFS_KEYNAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '%') {
			key[n++] = (unsigned char)name[i];
			continue;
		}
		int hi = hexval(name[i + 1]), lo = hi < 0 ? -1 : hexval(name[i + 2]);
		if (lo < 0)
			return 0;
		key[n++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	/* one name per key: "%41", "%2Ea" and the like are no key's name */
	if (sbfs_key_name(key, n, again) != len || memcmp(again, name, len) != 0)
		return 0;
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
	/* not a key's spelling ("50%", "%41"): EINVAL, unless a temporary
	 * name, which is no key until its rename (pending.c) */
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
