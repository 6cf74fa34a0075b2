/*
 * pending.c - files being created in a topic: the list of them, creating
 * (create, mknod, in .keys/), opening, the bytes written (buffered in
 * memory) and read back, lookups, listings, unlinks.
 *
 * A created file is buffered in memory and appended as one record, keyed by
 * its name (decoded as a name in .keys/ is: keys.c), when it is closed after being written or having its times set
 * (flush: the closer learns the outcome), or on release if neither happened
 * (a flush with nothing written is no end: `echo hi > t/f` in bash opens,
 * dup2s and closes the file before it writes). What is written after such a
 * close goes into a next record. A name of digits appends at that offset
 * instead (no key; cp -a restores the key through user.streambus.key and
 * the time through utimens). The name is visible (lookup, getattr) while
 * something of the file is not a record yet, not once all of it is,
 * although the kernel sends the RELEASE after close(2) has returned (SPEC
 * §3: gone once its record is appended). The appends, at the closes, are
 * pending_commit.c's.
 *
 * A temporary name (starting with '.', or ending in ".tmp") is not a record
 * at its close: the file is held until its rename (pending_hold.c).
 *
 * A file being created is its opener's: another process's open of its name
 * gets no share of its bytes (sbfs_pending_open): a reader EBUSY (ENOENT in
 * .keys/), a writer a nameless file of its own, keyed the same, appended
 * at its own close.
 *
 * A file written through TOPIC/.keys/NAME (keys.c) is one of these too,
 * keyed by NAME decoded: its name is in .keys/ only (a lookup in the topic
 * does not find it, nor the other way round), and opened over an existing
 * key it starts with that key's value. There only rsync's temporary name
 * (.NAME.XXXXXX) is held (pending_hold.c).
 *
 * Its attributes, set and read (setattr, user.streambus.* xattrs), are
 * pending_attr.c's; the files closed unwritten, and what waits for them,
 * pending_empty.c's.
 */
#include "fs.h"
#include "pending_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* What a name asks for in te: *digits and *at for a record name; -EPERM for
 * a digits name that cannot be the next record (only the next offset, or
 * any in an empty topic, or any past the next in a compacted one), -EEXIST
 * for .log, -ENAMETOOLONG. */
int sbfs_pending_name_check(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, const char *name,
			    int *digits, uint64_t *at)
{
	size_t nlen = strlen(name);
	if (strcmp(name, ".log") == 0 || strcmp(name, ".keys") == 0)
		return -EEXIST;
	if (nlen > 255)
		return -ENAMETOOLONG;
	*digits = 0;
	if (strspn(name, "0123456789") != nlen)
		return 0;
	if (sbfs_parse_offset(name, at) != 0)
		return -EPERM; /* digits, but no offset there can ever be */
	sbfs_bounds bd;
	int rc = sbfs_offsets_of(fs, te, t, &bd);
	if (rc)
		return rc;
	/* in a compacted topic any offset past the next (SPEC §3: a backup of
	 * one has gaps) */
	int gap = *at > bd.next && fs->b->ops->gaps_ok && fs->b->ops->gaps_ok(t);
	if (*at > SBFS_MAX_OFFSET || !(*at == bd.next || (bd.start == bd.next && *at >= bd.next) || gap))
		return -EPERM;
	*digits = 1;
	return 0;
}

/* ---- pending files ---------------------------------------------------------- */

void sbfs_pending_free(sbfs_pending *p)
{
	pthread_mutex_destroy(&p->lock);
	free(p->buf);
	free(p->key);
	sbfs_hdrs_free(p->hdrs);
	free(p->name);
	free(p);
}

/*
 * Ghosts. A lookup of a name another process is writing gives the kernel
 * that file's inode; when the writer closes it (its record appended, its
 * file let go) before the caller's open of that inode arrives, the open
 * finds nothing: open(O_CREAT) of a name others write failed ENOENT about
 * one time in five under contention (found by an exploratory tester). So
 * the last SBFS_GHOSTS named files let go keep their name and key (nothing
 * of their bytes), and a writer's open of one gets a file of its own keyed
 * the same (pending_twin), as if the file were still being written.
 */
/* p, let go, is on its way to being a ghost (or freed): the lookups of
 * its inode wait (plock held). */
void sbfs_pending_retiring_locked(sbfs *fs, sbfs_pending *p)
{
	p->rnext = fs->retiring;
	fs->retiring = p;
}

/* Take p out of fs->retiring: a walk over the files let go whose last
 * appends are under way, no more than the threads releasing (plock held). */
static void retired_locked(sbfs *fs, sbfs_pending *p)
{
	for (sbfs_pending **pp = &fs->retiring; *pp; pp = &(*pp)->rnext)
		if (*pp == p) {
			*pp = p->rnext;
			break;
		}
}

void sbfs_pending_retire(sbfs *fs, sbfs_pending *p)
{
	sbfs_pending *drop = p;

	pthread_mutex_lock(&p->lock);
	int ghost = p->name[0] && !p->digits;
	if (ghost) { /* its name and key stay, not its bytes */
		free(p->buf);
		p->buf = NULL;
		p->len = p->cap = 0;
		sbfs_hdrs_free(p->hdrs);
		p->hdrs = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_lock(&fs->plock);
	if (ghost) { /* in the oldest's slot, which goes */
		drop = fs->ghosts[fs->ghost_at];
		fs->ghosts[fs->ghost_at] = p;
		fs->ghost_at = (fs->ghost_at + 1) % SBFS_GHOSTS;
	}
	retired_locked(fs, p);
	pthread_cond_broadcast(&fs->pcond);
	pthread_mutex_unlock(&fs->plock);
	if (drop)
		sbfs_pending_free(drop);
}

/* The newest first (plock held). */
static sbfs_pending *ghost_by_ino(sbfs *fs, fuse_ino_t ino)
{
	for (unsigned i = 1; i <= SBFS_GHOSTS; i++) {
		sbfs_pending *g = fs->ghosts[(fs->ghost_at + SBFS_GHOSTS - i) % SBFS_GHOSTS];
		if (!g)
			break; /* the ring is not full yet */
		if (g->ino == ino)
			return g;
	}
	return NULL;
}

/* Is the file of ino let go, not yet a ghost? (plock held) */
static int retiring(sbfs *fs, fuse_ino_t ino)
{
	for (sbfs_pending *p = fs->retiring; p; p = p->rnext)
		if (p->ino == ino)
			return 1;
	return 0;
}

/* The ghost of ino, waiting (at most GHOST_WAIT_NS) while that file, let
 * go, is on its way to being one: it leaves the list before its last
 * append and becomes a ghost after it. Others let go meanwhile are not
 * waited for: a stat of a stale inode under a stream of creates would
 * wait for them all. NULL: no such file. (plock held) */
#define GHOST_WAIT_NS (1000LL * 1000 * 1000)

sbfs_pending *sbfs_pending_ghost_locked(sbfs *fs, fuse_ino_t ino)
{
	sbfs_pending *g;
	struct timespec dl;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	long long ns = dl.tv_nsec + GHOST_WAIT_NS;
	dl.tv_sec += ns / 1000000000LL;
	dl.tv_nsec = ns % 1000000000LL;
	while (!(g = ghost_by_ino(fs, ino)) && retiring(fs, ino))
		if (pthread_cond_timedwait(&fs->pcond, &fs->plock, &dl) == ETIMEDOUT)
			break;
	return g;
}

void sbfs_pending_ghosts_free(sbfs *fs)
{
	pthread_mutex_lock(&fs->plock);
	for (unsigned i = 0; i < SBFS_GHOSTS; i++) {
		if (fs->ghosts[i])
			sbfs_pending_free(fs->ghosts[i]);
		fs->ghosts[i] = NULL;
	}
	fs->ghost_at = 0;
	pthread_mutex_unlock(&fs->plock);
}

/* Find by ino (plock held). */
sbfs_pending *sbfs_pending_by_ino(sbfs *fs, fuse_ino_t ino)
{
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (p->ino == ino)
			return p;
	return NULL;
}

void sbfs_pending_unlink_locked(sbfs *fs, sbfs_pending *p)
{
	for (sbfs_pending **pp = &fs->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->linked = 0;
	sbfs_pending_empty_unmark_locked(fs, p); /* appended, or never will be */
}

/* p's key: the one set (user.streambus.key, a name in .keys/, a twin's),
 * else its name's, decoded as a name in .keys/ is (keys.c), in buf; a name
 * of digits has none (NULL, 0). (p->lock held) */
const void *sbfs_pending_key(const sbfs_pending *p, unsigned char buf[SBFS_KEYNAME_MAX], size_t *len)
{
	if (p->key_set) {
		*len = p->key_len;
		return p->key;
	}
	*len = p->digits ? 0 : sbfs_key_of_file_name(p->name, buf);
	return p->digits ? NULL : buf;
}

/* Set p's key to a copy of key (n bytes): 0 or -ENOMEM. (p->lock held, or
 * p in nobody else's hands) */
static int set_key(sbfs_pending *p, const void *key, size_t n)
{
	char *k = malloc(n ? n : 1);
	if (!k)
		return -ENOMEM;
	if (n) /* a name of digits: no key (NULL) */
		memcpy(k, key, n);
	p->key = k;
	p->key_len = n;
	p->key_set = 1;
	return 0;
}

int sbfs_pending_unname_locked(sbfs_pending *q)
{
	char *none = strdup("");
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&q->lock);
	if (!none) {
		rc = -ENOMEM;
	} else if (!q->key_set && !q->digits) { /* the key its name gave it */
		const void *k = sbfs_pending_key(q, key, &n);
		rc = set_key(q, k, n);
	}
	if (rc == 0) {
		free(q->name);
		q->name = none;
		none = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	free(none);
	return rc;
}

/* Is p file `name` of te (in .keys/: keyview)? "" is any file of te. */
static int named(const sbfs_pending *p, sbfs_tentry *te, const char *name, int keyview)
{
	return p->te == te && (!*name || (p->keyview == keyview && strcmp(p->name, name) == 0));
}

/* Is all of p a record already (closed, its release not yet here)? Then
 * its name is gone: `echo v > t/f; stat t/f` must not find the file, and
 * `echo v > .keys/K; cat .keys/K` must find the record, not the file
 * (whose bytes are the record's now). */
static int appended(sbfs_pending *p)
{
	pthread_mutex_lock(&p->lock);
	int done = p->committed && !p->dirty;
	pthread_mutex_unlock(&p->lock);
	return done;
}

/* named(), but not a file all of which is a record already. */
int sbfs_pending_named_live(sbfs_pending *p, sbfs_tentry *te, const char *name, int keyview)
{
	return named(p, te, name, keyview) && !(*name && appended(p));
}

static int lookup_in(sbfs *fs, sbfs_tentry *te, const char *name, int keyview, struct stat *st)
{
	int rc = -ENOENT;
	/* a file closed unwritten is a record by now, not a name to open
	 * (its release would take it from under the open: ENOENT); not for
	 * rmdir's look for any file (""), which holds nslock */
	if (*name)
		sbfs_pending_settle(fs, te);
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (sbfs_pending_named_live(p, te, name, keyview)) {
			if (st)
				sbfs_pending_stat(fs, p, st);
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&fs->plock);
	return rc;
}

/* name "" matches any pending file of the topic; st may be NULL. */
int sbfs_pending_lookup(sbfs *fs, sbfs_tentry *te, const char *name, struct stat *st)
{
	return lookup_in(fs, te, name, 0, st);
}

int sbfs_pending_lookup_key(sbfs *fs, sbfs_tentry *te, const char *name, struct stat *st)
{
	return *name ? lookup_in(fs, te, name, 1, st) : -ENOENT;
}

int sbfs_pending_names(sbfs *fs, sbfs_tentry *te, char ***names, fuse_ino_t **inos, size_t *n)
{
	char **v = NULL;
	fuse_ino_t *in = NULL;
	size_t k = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *p = fs->pending; p && !rc; p = p->next) {
		/* a writer's own file under a taken name (pending_twin) is
		 * nameless: the name is listed once */
		if (p->te != te || p->keyview || !p->name[0] || appended(p))
			continue;
		if (k == cap) {
			size_t nc = cap ? cap * 2 : 8;
			char **nv = realloc(v, nc * sizeof *nv);
			fuse_ino_t *ni = nv ? realloc(in, nc * sizeof *ni) : NULL;
			if (nv)
				v = nv;
			if (ni)
				in = ni;
			if (!nv || !ni) {
				rc = -ENOMEM;
				break;
			}
			cap = nc;
		}
		if (!(v[k] = strdup(p->name))) {
			rc = -ENOMEM;
			break;
		}
		in[k++] = p->ino;
	}
	pthread_mutex_unlock(&fs->plock);
	if (rc) {
		while (k)
			free(v[--k]);
		free(v);
		free(in);
		return rc;
	}
	*names = v;
	*inos = in;
	*n = k;
	return 0;
}

/* rm of a file being created: it is dropped, nothing is appended. */
static int unlink_in(sbfs *fs, sbfs_tentry *te, const char *name, int keyview)
{
	int rc = -ENOENT;
	sbfs_pending *dead = NULL;
	if (!*name)
		return -ENOENT;
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (sbfs_pending_named_live(p, te, name, keyview)) {
			sbfs_pending_unlink_locked(fs, p);
			if (p->opens == 0)
				dead = p;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&fs->plock);
	if (dead)
		sbfs_pending_free(dead);
	return rc;
}

int sbfs_pending_unlink(sbfs *fs, sbfs_tentry *te, const char *name)
{
	return unlink_in(fs, te, name, 0);
}

int sbfs_pending_unlink_key(sbfs *fs, sbfs_tentry *te, const char *name)
{
	return unlink_in(fs, te, name, 1);
}

/* A new pending file `name` in te (create and mknod). */
static void fill_entry(sbfs *fs, sbfs_pending *p, struct fuse_entry_param *e);
static sbfs_pending *pending_alloc(sbfs_tentry *te, const char *name, mode_t mode, int opens);
static int pending_link(sbfs *fs, sbfs_pending *p, int unique, struct fuse_entry_param *e,
			sbfs_pending **out);

static int pending_new(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int opens,
		       struct fuse_entry_param *e, sbfs_pending **out)
{
	uint32_t id;
	sbfs_tentry *te;
	sbfs_topic *t;
	if (sbfs_ino_kind(parent, &id, NULL) != K_TOPIC)
		return -EPERM;
	if (sbfs_topic_by_id(fs, id, &te, &t))
		return -ENOENT;
	if (fs->cfg->read_only)
		return -EROFS;
	int digits;
	uint64_t at = 0;
	int rc = sbfs_pending_name_check(fs, te, t, name, &digits, &at);
	if (rc)
		return rc;
	sbfs_pending *p = pending_alloc(te, name, mode, opens);
	if (!p)
		return -ENOMEM;
	p->digits = digits;
	p->at = at;
	return pending_link(fs, p, 1, e, out);
}

static sbfs_pending *pending_alloc(sbfs_tentry *te, const char *name, mode_t mode, int opens)
{
	sbfs_pending *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(name))) {
		free(p);
		return NULL;
	}
	p->te = te;
	p->mode = mode;
	p->opens = opens;
	p->mtime_ns = now_ns();
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

/* Number p and put it in the list. (plock held) */
static void link_locked(sbfs *fs, sbfs_pending *p)
{
	p->ino = sbfs_ino(0, fs->next_pending++);
	p->linked = 1;
	p->next = fs->pending;
	fs->pending = p;
}

/* Number p and put it in the list (unless unique and its name is taken:
 * then -EEXIST and p is freed). */
static int pending_link(sbfs *fs, sbfs_pending *p, int unique, struct fuse_entry_param *e,
			sbfs_pending **out)
{
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *q = fs->pending; unique && q; q = q->next)
		if (sbfs_pending_named_live(q, p->te, p->name, p->keyview)) {
			pthread_mutex_unlock(&fs->plock);
			sbfs_pending_free(p);
			return -EEXIST;
		}
	link_locked(fs, p);
	if (e)
		fill_entry(fs, p, e); /* before anyone else can unlink and free it */
	pthread_mutex_unlock(&fs->plock);
	*out = p;
	return 0;
}

int sbfs_pending_create_key(sbfs *fs, sbfs_tentry *te, const char *name, const void *key,
			    size_t klen, const void *init, size_t init_len, int fresh, mode_t mode,
			    int opens, struct fuse_entry_param *e, sbfs_pending **out)
{
	if (fs->cfg->read_only)
		return -EROFS;
	/* a created temporary name need be no key's: its rename gives it
	 * one, else it is never appended */
	if ((!klen && !(e && sbfs_pending_temp_key_name(name))) || klen > 65535)
		return -EINVAL;
	sbfs_pending *p = pending_alloc(te, name, mode, opens);
	if (!p)
		return -ENOMEM;
	p->keyview = 1;
	p->key_set = 1;
	p->key_len = klen;
	if (!(p->key = malloc(klen ? klen : 1)) || (init_len && !(p->buf = malloc(init_len)))) {
		sbfs_pending_free(p);
		return -ENOMEM;
	}
	memcpy(p->key, key, klen);
	if (init_len)
		memcpy(p->buf, init, init_len);
	p->len = p->cap = init_len;
	p->committed = !fresh; /* a close without a write appends nothing */
	p->as_record = !fresh;
	/* a created name is unique in .keys/ as in the topic; a key file
	 * may be opened for writing twice */
	return pending_link(fs, p, e != NULL, e, out);
}

void sbfs_pending_discard(sbfs *fs, sbfs_pending *p)
{
	pthread_mutex_lock(&fs->plock);
	if (p->linked)
		sbfs_pending_unlink_locked(fs, p);
	pthread_mutex_unlock(&fs->plock);
	sbfs_pending_release(fs, p);
}

static void fill_entry(sbfs *fs, sbfs_pending *p, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = p->ino;
	sbfs_pending_stat(fs, p, &e->attr);
	e->attr_timeout = 0;
	e->entry_timeout = 0;
}

int sbfs_pending_write(sbfs *fs, sbfs_pending *p, const char *buf, size_t size, off_t off)
{
	uint32_t max = fs->b->ops->record_max(sbfs_topic_handle(fs, p->te));
	int rc = 0;
	if (atomic_load(&p->closed_empty)) { /* written after all: its end is to come */
		pthread_mutex_lock(&fs->plock);
		sbfs_pending_empty_unmark_locked(fs, p);
		pthread_mutex_unlock(&fs->plock);
	}
	pthread_mutex_lock(&p->lock);
	if ((uint64_t)off < p->base || (p->digits && p->committed)) {
		rc = -EPERM; /* that part is a record already */
		goto out;
	}
	uint64_t at = p->append ? p->len : (uint64_t)off - p->base;
	if (at + size > max) {
		p->failed = -EFBIG; /* a cut-off file must not become a record */
		rc = -EFBIG;
		goto out;
	}
	if (at + size > p->cap) {
		size_t ncap = p->cap ? p->cap : 4096;
		while (ncap < at + size)
			ncap *= 2;
		if (ncap > max)
			ncap = max;
		char *nb = realloc(p->buf, ncap);
		if (!nb) {
			rc = -ENOMEM;
			goto out;
		}
		p->buf = nb;
		p->cap = ncap;
	}
	if (at > p->len)
		memset(p->buf + p->len, 0, at - p->len);
	if (size) /* a write of nothing to an empty file: p->buf is NULL */
		memcpy(p->buf + at, buf, size);
	if (at + size > p->len)
		p->len = at + size;
	p->dirty = 1;
	p->as_record = 0;
	if (!p->stamp_ns)
		p->mtime_ns = now_ns();
out:
	pthread_mutex_unlock(&p->lock);
	return rc;
}


int sbfs_pending_create(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int open,
			struct fuse_entry_param *e, sbfs_pending **out)
{
	sbfs_pending *p;
	int rc = pending_new(fs, parent, name, mode, open ? 1 : 0, e, &p);
	if (rc)
		return rc;
	*out = p;
	return 0;
}

void sbfs_pending_set_append(sbfs_pending *p)
{
	pthread_mutex_lock(&p->lock);
	p->append = 1;
	pthread_mutex_unlock(&p->lock);
}

sbfs_tentry *sbfs_pending_topic(const sbfs_pending *p)
{
	return p->te;
}

fuse_ino_t sbfs_pending_ino(const sbfs_pending *p)
{
	return p->ino;
}

/* A file of its own for another writer of p's name (open flags `flags`):
 * nameless (only its opener has it, as a write of an existing key's file),
 * keyed as p is, empty. In the topic its close appends, written or not,
 * as the caller's create of the name would have if p had been appended a
 * moment before (touch beside a writer of the name lost its record half
 * the time). In .keys/ the name is a key's, as if it had its record: only
 * a write or O_TRUNC appends, as there. NULL: no memory. (plock held) */
static sbfs_pending *pending_twin(sbfs *fs, sbfs_pending *p, int flags)
{
	sbfs_pending *t = pending_alloc(p->te, "", p->mode, 1);
	if (!t)
		return NULL;
	t->keyview = p->keyview;
	t->append = !!(flags & O_APPEND);
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t n;
	pthread_mutex_lock(&p->lock);
	const void *k = sbfs_pending_key(p, key, &n);
	int rc = set_key(t, k, n);
	pthread_mutex_unlock(&p->lock);
	if (rc) {
		sbfs_pending_free(t);
		return NULL;
	}
	t->committed = p->keyview && !(flags & O_TRUNC);
	link_locked(fs, t);
	return t;
}

/*
 * An open(2) of a file being created, by its name. Nobody has it open
 * (made by mknod, or held after its close under a temporary name): this
 * open goes on with it. Otherwise it is its opener's, and another open
 * must not share its bytes: a reader would read a record not yet written
 * (SPEC §4) and its close would append the opener's bytes early, cut in
 * two; a writer's O_TRUNC or writes would replace bytes whose close then
 * succeeds, and its own close find them gone. So a reader gets -ENOENT in
 * .keys/ (no record of the key yet) and -EBUSY in the topic; a writer gets
 * a file of its own under the same key, whose close appends its own record
 * (a name of digits, one offset: -EBUSY).
 */
int sbfs_pending_open(sbfs *fs, fuse_ino_t ino, int flags, sbfs_pending **out)
{
	int acc = flags & O_ACCMODE;
	sbfs_pending *twin = NULL;
	int rc = 0;

	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = sbfs_pending_by_ino(fs, ino), *g = NULL;
	if (!p)
		g = sbfs_pending_ghost_locked(fs, ino);
	if (!p && acc != O_RDONLY && g)
		/* another's file, a record since: as if it were still being
		 * written (a reader: ENOENT, its name is gone) */
		rc = (twin = pending_twin(fs, g, flags)) ? 0 : -ENOMEM;
	else if (!p)
		rc = -ENOENT;
	else if (p->opens == 0)
		p->opens++;
	else if (acc == O_RDONLY)
		rc = p->keyview ? -ENOENT : -EBUSY;
	else if (p->digits)
		rc = -EBUSY;
	else if (!(twin = pending_twin(fs, p, flags)))
		rc = -ENOMEM;
	pthread_mutex_unlock(&fs->plock);
	if (!rc)
		*out = twin ? twin : p;
	return rc;
}

int sbfs_pending_read(sbfs_pending *p, off_t off, char *buf, size_t size, size_t *n)
{
	int rc = 0;
	*n = 0;
	pthread_mutex_lock(&p->lock);
	if ((uint64_t)off < p->base) {
		rc = -EPERM; /* already appended: read the record */
	} else if ((uint64_t)off - p->base < p->len) {
		size_t k = p->len - (size_t)((uint64_t)off - p->base);
		if (k > size)
			k = size;
		memcpy(buf, p->buf + ((uint64_t)off - p->base), k);
		*n = k;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}
