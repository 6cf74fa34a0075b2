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
 * find it), "%41" the key %41.
 *
 * Long keys. A key whose name would pass NAME_MAX (255 bytes) is listed
 * under a long name: its name cut to a prefix of at most 237 bytes (at an
 * escape's boundary), "%~" and the key's FNV-1a hash in 16 upper-case hex
 * digits: 253 to 255 bytes. "%~" is in no encoded name (a '%' there starts
 * an escape), so a listing never shows a key's name and a long name alike;
 * a name of that form is a long name in .keys/ (a key spelled so must be
 * written %25~...). A lookup of one walks the keys from its prefix decoded
 * (list_keys from a key) to the prefix's end for the one with that long
 * name; two keys of that name (a crafted hash collision) make it
 * ENOTUNIQ, so that neither's value is served under the other's name.
 * A long name spells no key: creating one is EINVAL (write such a key
 * through user.streambus.key, as cp -a restores it, or over its file).
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
 * Rename. A file still being written is renamed as in the topic
 * (pending_hold.c: one record under the final name). A key whose record is
 * appended (sed -i closes its temporary file before renaming it onto K;
 * mv) is renamed by appending its record again under the new key (payload,
 * headers, time: a rename keeps mtime), then a tombstone for the old key,
 * in one append where both fit a batch.
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

/* A long key's name: its encoded name cut to a prefix, LONG_MARK (in no
 * encoded name: a '%' there starts %2F, %25, %00 or %2E) and its hash in
 * LONG_HASH upper-case hex digits. The prefix is cut at LONG_CUT bytes, or
 * 1 or 2 less where an escape would be split: the whole name has 253 to
 * 255 bytes, and no shorter name is taken for one. */
#define LONG_MARK "%~"
#define LONG_HASH 16
#define LONG_TAIL (sizeof LONG_MARK - 1 + LONG_HASH)
#define LONG_CUT (SBFS_KEYNAME_MAX - LONG_TAIL)

static int must_encode(unsigned char c)
{
	return c == '/' || c == '%' || c == '\0';
}

/* k encoded into name while it fits in max bytes, escapes whole: the bytes
 * written; *used, the bytes of k they encode. */
static size_t encode(const unsigned char *k, size_t klen, char *name, size_t max, size_t *used)
{
	size_t n = 0, i;

	for (i = 0; i < klen; i++) {
		if (!must_encode(k[i]) && n + 1 <= max) {
			name[n++] = (char)k[i];
		} else if (must_encode(k[i]) && n + 3 <= max) {
			name[n++] = '%';
			name[n++] = HEX[k[i] >> 4];
			name[n++] = HEX[k[i] & 15];
		} else {
			break;
		}
	}
	*used = i;
	return n;
}

/* FNV-1a: tells apart the long keys of one prefix (a lookup compares the
 * whole name, so only keys of the same prefix and hash could share one). */
static uint64_t key_hash(const unsigned char *k, size_t klen)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ k[i]) * 1099511628211ULL;
	return h;
}

/* The long form of the name of k (see LONG_MARK) in name: its length. */
static size_t long_name(const unsigned char *k, size_t klen, char *name)
{
	size_t used, n = encode(k, klen, name, LONG_CUT, &used);
	uint64_t h = key_hash(k, klen);

	memcpy(name + n, LONG_MARK, sizeof LONG_MARK - 1);
	n += sizeof LONG_MARK - 1;
	for (int i = LONG_HASH - 1; i >= 0; i--, h >>= 4)
		name[n + (size_t)i] = HEX[h & 15];
	return n + LONG_HASH;
}

size_t sbfs_key_name(const void *key, size_t klen, char name[SBFS_KEYNAME_MAX + 1])
{
	const unsigned char *k = key;
	size_t used, n;

	if (klen == 0)
		return 0;
	if ((klen == 1 || klen == 2) && k[0] == '.' && k[klen - 1] == '.') {
		strcpy(name, klen == 1 ? "%2E" : "%2E%2E");
		return klen * 3;
	}
	n = encode(k, klen, name, SBFS_KEYNAME_MAX, &used);
	if (used < klen)
		n = long_name(k, klen, name); /* past NAME_MAX */
	name[n] = '\0';
	return n;
}

static int hexval(char c)
{
	const char *p = c ? strchr(HEX, toupper((unsigned char)c)) : NULL;
	return p ? (int)(p - HEX) : -1;
}

/* The byte the escape at s ('%', rem bytes left) stands for, if
 * sbfs_key_name writes it (%2F, %25, %00: hex in either case); else -1,
 * and the '%' is itself. */
static int escape_at(const char *s, size_t rem)
{
	int hi = rem < 3 ? -1 : hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
	int c = lo < 0 ? -1 : hi << 4 | lo;

	return c >= 0 && must_encode((unsigned char)c) ? c : -1;
}

/* The first len bytes of name decoded leniently into key: its length. */
static size_t decode(const char *name, size_t len, unsigned char *key)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int c = name[i] == '%' ? escape_at(name + i, len - i) : -1;

		key[n++] = (unsigned char)(c < 0 ? name[i] : c);
		if (c >= 0)
			i += 2;
	}
	return n;
}

size_t sbfs_key_of_file_name(const char *name, unsigned char *key)
{
	size_t len = strlen(name);

	if (len == 0 || len > SBFS_KEYNAME_MAX)
		return 0;
	if (strcasecmp(name, "%2E") == 0 || strcasecmp(name, "%2E%2E") == 0) {
		memset(key, '.', len / 3);
		return len / 3;
	}
	return decode(name, len, key);
}

/* The length of the prefix of name if it is a long key's name (LONG_MARK),
 * else 0. */
static size_t long_prefix(const char *name)
{
	size_t len = strlen(name), plen = len - LONG_TAIL;

	if (len > SBFS_KEYNAME_MAX || len < LONG_CUT - 2 + LONG_TAIL ||
	    memcmp(name + plen, LONG_MARK, sizeof LONG_MARK - 1) != 0)
		return 0;
	for (size_t i = plen + sizeof LONG_MARK - 1; i < len; i++)
		if (!strchr(HEX, name[i]))
			return 0;
	return plen;
}

size_t sbfs_key_of_name(const char *name, unsigned char *key)
{
	return long_prefix(name) ? 0 : sbfs_key_of_file_name(name, key);
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

/* A walk of the keys from a long name's prefix for the key of that name. */
typedef struct long_walk {
	const char *name;
	const unsigned char *prefix;
	size_t plen;
	sbfs_recinfo ri;
	int found;
} long_walk;

static int long_one(void *arg, const void *key, size_t klen, const sbfs_recinfo *ri)
{
	long_walk *w = arg;
	char name[SBFS_KEYNAME_MAX + 1];

	if (klen < w->plen || memcmp(key, w->prefix, w->plen) != 0)
		return 1; /* past the keys of that prefix */
	if (sbfs_key_name(key, klen, name) && strcmp(name, w->name) == 0) {
		w->ri = *ri;
		return ++w->found > 1; /* on to the prefix's end: a second key of that name? */
	}
	return 0;
}

/* The latest record of the key whose long name is name (plen: its prefix):
 * the keys from the prefix decoded on, to the prefix's end, for the one
 * with that name. Two keys of one prefix whose hashes collide (crafted:
 * FNV-1a is no cryptographic hash) share a name, and it names neither:
 * -ENOTUNIQ, rather than one key's value under a name that may be the
 * other's. */
static int find_long(sbfs *fs, sbfs_tentry *te, const char *name, size_t plen, sbfs_recinfo *ri)
{
	unsigned char prefix[SBFS_KEYNAME_MAX];
	long_walk w = { .name = name, .prefix = prefix, .plen = decode(name, plen, prefix) };
	int rc;

	if (!fs->b->ops->list_keys)
		return -ENOTSUP;
	sbfs_pending_settle(fs, te); /* files closed before have their keys */
	rc = fs->b->ops->list_keys(sbfs_topic_handle(fs, te), prefix, w.plen, long_one, &w);
	if (rc < 0)
		return rc;
	if (w.found > 1) {
		sbfs_log("%s/.keys/%s: two keys have that name (their hashes collide): it names neither; read each "
			 "by its record", te->name, name);
		return -ENOTUNIQ;
	}
	/* rm'ed (hidden until dropped), or past what the tree can name */
	if (!w.found || w.ri.offset < atomic_load(&te->hide_before) || w.ri.offset > SBFS_MAX_OFFSET)
		return -ENOENT;
	*ri = w.ri;
	return 0;
}

int sbfs_key_find(sbfs *fs, sbfs_tentry *te, const char *name, sbfs_recinfo *ri)
{
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t klen = sbfs_key_of_name(name, key), plen = long_prefix(name);

	if (plen)
		return find_long(fs, te, name, plen, ri);
	return klen ? sbfs_key_latest(fs, te, key, klen, ri) : -ENOENT;
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

int sbfs_key_remove(sbfs *fs, sbfs_tentry *te, const char *name)
{
	unsigned char *key;
	char *val;
	size_t klen, vlen;
	sbfs_recinfo ri;
	int rc;

	if (!fs->b->ops->get_key)
		return -ENOTSUP;
	if (sbfs_pending_unlink_key(fs, te, name) == 0)
		return 0; /* a file being written: dropped, as in the topic */
	if ((rc = sbfs_key_find(fs, te, name, &ri)))
		return rc;
	if (fs->cfg->read_only)
		return -EROFS;
	/* the key as its record has it (a long key's name does not spell it) */
	if ((rc = read_record(fs, te, ri.offset, 1, &key, &klen, &val, &vlen)))
		return rc;
	/* a keyed record without payload, marked: the key leaves .keys/ */
	sbfs_rec r = { .key = key, .key_len = (uint32_t)klen, .flags = SBFS_REC_TOMBSTONE };
	pthread_rwlock_rdlock(&te->alock);
	rc = fs->b->ops->append(sbfs_topic_handle(fs, te), &r, 1, NULL);
	pthread_rwlock_unlock(&te->alock);
	if (rc == 0)
		sbfs_notify_kick(fs);
	free(key);
	free(val);
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
