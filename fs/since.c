/*
 * since.c - TOPIC/.since/ and its files (SPEC §2 "Seek by time").
 *
 * TOPIC/.since is a directory that lists nothing; TOPIC/.since/TIME is a
 * read-only file like .log that starts at the first record whose time
 * (taken as the running maximum) is at or after TIME, and grows as .log
 * does. TIME is any form sb_time_parse() takes; a relative one (-15m) is
 * relative to the lookup that precedes each open (its entry is never
 * cached, so every open looks it up again).
 *
 * Each name looked up becomes a node, numbered in inode space 0 above
 * SBFS_L_SINCE0 (fs.h) and kept while the kernel holds it (its lookups
 * count, forget uncounts); an absolute TIME seen again is the same node.
 * A node keeps its time only: where its file starts is found again (the
 * backend's seek_time: a binary search, never a scan) at each getattr and
 * open, because a compaction round moves stream positions (SPEC §2; the
 * offsets of records never move). Each open holds a view of the stream
 * (backend.h view_open, as .log's readers do) and its start in that view's
 * positions, so it reads the records from TIME on as they were when it
 * opened, then what was appended, whatever rounds run meanwhile. As a
 * .log reader does, an open with a start pins it (tree.c: rm drops no
 * record at or after it while the file is open; a start removed by
 * retention reads as ENODATA) and gives its node a base: the node's size
 * is counted from its open files' lowest start, not looked up again, so
 * `tail -f` sees no shrink when the head goes (by rm, retention or a
 * compaction round) under it. Until some record reaches TIME the file is
 * empty, and records appended later that reach TIME start it: found at a
 * read, in the open's view (if a compaction round moved positions since,
 * the first record appended after the open still starts where the stream
 * ended at the open; any other start takes a new view, and then what a
 * round dropped before that read is not served to it, as to a file
 * opened after the round).
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_time.h"

#define UNRESOLVED UINT64_MAX /* sbfs_since.spos before a record reaches its time */

/* What a name means: 0 and *ts, *relative; -ENOENT for any other name. */
static int parse_name(const char *name, int64_t *ts, int *relative)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (sb_time_parse(name, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, ts))
		return -ENOENT;
	*relative = name[0] == '-';
	return 0;
}

/* The node of inode ino, sincelock held; NULL if none. */
static sbfs_since *node_of(sbfs *fs, fuse_ino_t ino)
{
	for (sbfs_since *s = fs->since; s; s = s->next)
		if (sbfs_ino(0, SBFS_L_SINCE0 + s->n) == ino)
			return s;
	return NULL;
}

/*
 * The stream position, in the live stream, at which a file starting at
 * time ts starts now, and the offset of the record there: 0 and *spos,
 * *soff, or 0 and *spos = UNRESOLVED (*soff untouched) while no record
 * reaches ts.
 */
static int resolve(sbfs *fs, sbfs_tentry *te, int64_t ts, uint64_t *spos, uint64_t *soff)
{
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	sbfs_bounds bd;
	sbfs_recinfo ri;
	uint64_t off;
	int rc;

	if (!fs->b->ops->seek_time)
		return -ENOTSUP;
	if ((rc = sbfs_offsets_of(fs, te, t, &bd)) || (rc = fs->b->ops->seek_time(t, ts, &off)))
		return rc;
	if (off < bd.start)
		off = bd.start; /* rm'ed, not yet dropped: hidden */
	if (off < bd.next && fs->b->ops->next_present &&
	    (rc = fs->b->ops->next_present(t, off, &off)) == -ENOENT) /* compaction's gaps */
		off = bd.next, rc = 0;
	if (rc)
		return rc;
	if (off >= bd.next) {
		*spos = UNRESOLVED;
		return 0;
	}
	if ((rc = fs->b->ops->stat_record(t, off, SBFS_WANT_STREAM, &ri)))
		return rc;
	*spos = ri.stream_pos;
	*soff = off;
	return 0;
}

/*
 * A view of te's stream (backend.h; NULL if the backend has none) and the
 * start of a file at time ts in its positions (or UNRESOLVED) and its
 * offset: taken again if a compaction round moved positions between the
 * two.
 */
static int bind(sbfs *fs, sbfs_tentry *te, int64_t ts, void **view, uint64_t *spos, uint64_t *soff)
{
	sbfs_topic *t = sbfs_topic_handle(fs, te);

	for (int tries = 0;; tries++) {
		void *v = NULL;
		uint64_t p, o = 0;
		int rc = fs->b->ops->view_open ? fs->b->ops->view_open(t, &v) : 0;
		if (rc)
			return rc;
		rc = resolve(fs, te, ts, &p, &o);
		if (!rc && v && !fs->b->ops->view_current(t, v) && tries < 100) {
			fs->b->ops->view_close(t, v);
			continue;
		}
		if (rc) {
			if (v)
				fs->b->ops->view_close(t, v);
			return rc;
		}
		*view = v;
		*spos = p;
		*soff = o;
		return 0;
	}
}

/* The lowest start of s's open files: 1 and *base, or 0 if none has one. */
static int open_base(sbfs *fs, sbfs_since *s, uint64_t *base)
{
	pthread_mutex_lock(&fs->sincelock);
	int any = s->nbases > 0;
	for (size_t i = 0; i < s->nbases; i++)
		if (i == 0 || s->bases[i] < *base)
			*base = s->bases[i];
	pthread_mutex_unlock(&fs->sincelock);
	return any;
}

/* Attributes of a node: .log's, but its own inode, size and mode. */
static int node_attr(sbfs *fs, sbfs_since *s, struct stat *st)
{
	sbfs_bounds bd;
	uint64_t spos, soff, size = 0;
	int rc = open_base(fs, s, &spos) ? 0 : resolve(fs, s->te, s->ts, &spos, &soff);

	if (rc)
		return rc;
	if ((rc = sbfs_attr_log(fs, s->te, st)))
		return rc;
	if (spos != UNRESOLVED &&
	    (rc = sbfs_bounds_of(fs, s->te, sbfs_topic_handle(fs, s->te), &bd)) == 0 && bd.stream_end > spos)
		size = bd.stream_end - spos;
	if (rc)
		return rc;
	st->st_ino = sbfs_ino(0, SBFS_L_SINCE0 + s->n);
	st->st_mode = S_IFREG | (0444 & ~fs->cfg->umask);
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

int sbfs_since_dir_attr(sbfs *fs, sbfs_tentry *te, struct stat *st)
{
	int rc = sbfs_attr_topic(fs, te, st);

	if (rc)
		return rc;
	st->st_ino = sbfs_ino(te->id, SBFS_L_SINCE);
	st->st_mode = S_IFDIR | (0555 & ~fs->cfg->umask);
	st->st_nlink = 2;
	return 0;
}

int sbfs_since_lookup(sbfs *fs, sbfs_tentry *te, const char *name, struct fuse_entry_param *e)
{
	int64_t ts;
	int relative, rc = parse_name(name, &ts, &relative);
	sbfs_since *s = NULL;

	if (rc)
		return rc;
	pthread_mutex_lock(&fs->sincelock);
	for (s = relative ? NULL : fs->since; s; s = s->next)
		if (s->te == te && !s->relative && s->ts == ts)
			break;
	if (!s && (s = calloc(1, sizeof *s))) {
		s->te = te;
		s->ts = ts;
		s->relative = relative;
		s->n = fs->next_since++;
		s->next = fs->since;
		fs->since = s;
	}
	if (s)
		s->nlookup++; /* counted now: a failing attr below is forgotten by the caller */
	pthread_mutex_unlock(&fs->sincelock);
	if (!s)
		return -ENOMEM;
	memset(e, 0, sizeof *e);
	rc = node_attr(fs, s, &e->attr);
	if (rc) {
		sbfs_since_forget(fs, sbfs_ino(0, SBFS_L_SINCE0 + s->n), 1);
		return rc;
	}
	e->ino = e->attr.st_ino;
	/* A relative name means another moment at every open; the size
	 * grows as .log's does (tail -f asks at every poll). */
	e->entry_timeout = relative ? 0.0 : SBFS_TTL_DIR;
	e->attr_timeout = SBFS_TTL_LOG;
	return 0;
}

void sbfs_since_forget(sbfs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	pthread_mutex_lock(&fs->sincelock);
	for (sbfs_since **p = &fs->since; *p; p = &(*p)->next) {
		sbfs_since *s = *p;
		if (sbfs_ino(0, SBFS_L_SINCE0 + s->n) != ino)
			continue;
		s->nlookup = s->nlookup > nlookup ? s->nlookup - nlookup : 0;
		if (!s->nlookup) {
			*p = s->next;
			free(s->bases);
			free(s);
		}
		break;
	}
	pthread_mutex_unlock(&fs->sincelock);
}

/* A node the kernel holds (its inode is referenced while a file is open on
 * it, so a node outlives every open of it). */
static sbfs_since *node_get(sbfs *fs, fuse_ino_t ino)
{
	pthread_mutex_lock(&fs->sincelock);
	sbfs_since *s = node_of(fs, ino);
	pthread_mutex_unlock(&fs->sincelock);
	return s;
}

int sbfs_since_attr(sbfs *fs, fuse_ino_t ino, struct stat *st)
{
	sbfs_since *s = node_get(fs, ino);

	return s ? node_attr(fs, s, st) : -ENOENT;
}

/* h starts at spos (its view's), the start of record soff: pinned, and
 * its node's base. 0 or -ENOMEM (h as it was). */
static int hold(sbfs *fs, sbfs_fh *h, uint64_t spos, uint64_t soff)
{
	sbfs_since *s = h->since;
	int rc = sbfs_log_pin(h->te, SBFS_PIN_NO_BASE, soff);

	if (rc)
		return rc;
	pthread_mutex_lock(&fs->sincelock);
	if (s->nbases == s->cbases) {
		size_t ncap = s->cbases ? s->cbases * 2 : 2;
		uint64_t *b = realloc(s->bases, ncap * sizeof *b);
		if (b) {
			s->bases = b;
			s->cbases = ncap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc)
		s->bases[s->nbases++] = spos;
	pthread_mutex_unlock(&fs->sincelock);
	if (rc) {
		sbfs_log_unpin(h->te, SBFS_PIN_NO_BASE, soff);
		return rc;
	}
	h->base = spos;
	h->pin_off = soff;
	h->pinned = 1;
	return 0;
}

void sbfs_since_release(sbfs *fs, sbfs_fh *h)
{
	sbfs_since *s = h->since;

	/* its start may have come with a read in another thread: taken
	 * under the lock that read held */
	pthread_mutex_lock(&h->lock);
	int pinned = h->pinned;
	uint64_t base = h->base, off = h->pin_off;
	h->pinned = 0;
	pthread_mutex_unlock(&h->lock);
	if (!pinned)
		return;
	pthread_mutex_lock(&fs->sincelock);
	for (size_t i = 0; i < s->nbases; i++)
		if (s->bases[i] == base) {
			s->bases[i] = s->bases[--s->nbases];
			break;
		}
	pthread_mutex_unlock(&fs->sincelock);
	sbfs_log_unpin(h->te, SBFS_PIN_NO_BASE, off);
	sbfs_notify_kick(fs); /* rm'ed records it kept may go now */
}

/* h opened before any record reached its time: where the stream ended
 * then in its view (h->open_end, h->open_next; left unknown if a round
 * moved positions meanwhile, or the backend has no views). */
static void mark_open_end(sbfs *fs, sbfs_fh *h)
{
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	sbfs_bounds bd;

	if (h->view && !sbfs_bounds_of(fs, h->te, t, &bd) && fs->b->ops->view_current(t, h->view)) {
		h->open_end = bd.stream_end;
		h->open_next = bd.next;
	}
}

/*
 * Where h, opened before any record reached its time, starts now, in
 * its own view: 1 and *spos, *soff (UNRESOLVED: no record reaches it
 * yet); 0 if its view cannot tell (a compaction round moved positions
 * since the open, and the first record reaching its time is not the
 * first appended after the open): a new view is wanted. -errno on error.
 */
static int start_in_view(sbfs *fs, sbfs_fh *h, uint64_t *spos, uint64_t *soff)
{
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	uint64_t p, o = 0;
	int rc;

	if (!h->view)
		return 0;
	if ((rc = resolve(fs, h->te, h->since->ts, &p, &o)))
		return rc;
	if (p != UNRESOLVED && !fs->b->ops->view_current(t, h->view)) {
		/* positions moved; but the first record appended after the
		 * open starts where the stream ended then, in any case */
		if (o != h->open_next || h->open_next == UNRESOLVED)
			return 0;
		p = h->open_end;
	}
	*spos = p;
	*soff = o;
	return 1;
}

int sbfs_since_open(sbfs *fs, fuse_ino_t ino, sbfs_fh **out)
{
	sbfs_since *s = node_get(fs, ino);
	sbfs_tentry *te;
	sbfs_fh *h;
	void *view = NULL;
	uint64_t spos, soff;
	int rc;

	if (!s || sbfs_topic_by_id(fs, s->te->id, &te, NULL) || te != s->te)
		return -ENOENT;
	if ((rc = bind(fs, s->te, s->ts, &view, &spos, &soff)))
		return rc;
	if (!(h = sbfs_fh_new(fs, K_SINCE, s->te))) {
		rc = -ENOMEM;
		goto out_view;
	}
	h->since = s;
	h->view = view; /* closed with the handle (handles.c) */
	view = NULL;
	h->base = UNRESOLVED;
	h->open_end = h->open_next = UNRESOLVED;
	if (spos == UNRESOLVED)
		mark_open_end(fs, h);
	else if ((rc = hold(fs, h, spos, soff))) {
		sbfs_fh_free(fs, h);
		goto out_view;
	}
	*out = h;
out_view:
	if (view)
		fs->b->ops->view_close(sbfs_topic_handle(fs, s->te), view);
	return rc;
}

/* h has served nothing yet (h->base UNRESOLVED): its start, in its own
 * view if that can tell, else in a new one; held once found. */
static int settle_start(sbfs *fs, sbfs_fh *h)
{
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	void *v = NULL;
	uint64_t p = UNRESOLVED, o = 0;
	int rc = start_in_view(fs, h, &p, &o);

	if (rc < 0)
		return rc;
	if (rc)
		return p == UNRESOLVED ? 0 : hold(fs, h, p, o);
	if ((rc = bind(fs, h->te, h->since->ts, &v, &p, &o)))
		return rc;
	if (p != UNRESOLVED && (rc = hold(fs, h, p, o))) {
		if (v)
			fs->b->ops->view_close(t, v);
		return rc;
	}
	if (h->view)
		fs->b->ops->view_close(t, h->view);
	h->view = v;
	h->open_end = h->open_next = UNRESOLVED;
	if (p == UNRESOLVED)
		mark_open_end(fs, h);
	return 0;
}

int sbfs_since_read(sbfs *fs, sbfs_fh *h, uint64_t off, void *buf, size_t size, size_t *n)
{
	sbfs_topic *t = sbfs_topic_handle(fs, h->te);
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	if (h->base == UNRESOLVED && (rc = settle_start(fs, h)))
		goto out_unlock;
	if (h->base == UNRESOLVED)
		*n = 0; /* nothing reaches its time yet */
	else if (h->view)
		rc = fs->b->ops->read_view(t, h->view, h->base + off, buf, size, n);
	else
		rc = fs->b->ops->read_stream(t, h->base + off, buf, size, n);
	if (rc == -ENOENT)
		rc = -ENODATA; /* removed meanwhile, as .log */
out_unlock:
	pthread_mutex_unlock(&h->lock);
	return rc;
}
