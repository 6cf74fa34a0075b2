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
 * A node's start is found once (the backend's seek_time: a binary search,
 * never a scan) as soon as some record reaches TIME: until then the file
 * is empty, and records appended later that reach TIME start it. The
 * start, once found, never moves (positions stay valid for readers, as
 * .log's do; a start removed by retention or rm reads as ENODATA).
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
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
 * The stream position the node's file starts at: 0 and *spos, or 0 and
 * *spos = UNRESOLVED while no record reaches its time. Found once, then
 * kept (records never change; a later call would find the same one, or a
 * later one after an rm).
 */
static int resolve(sbfs *fs, sbfs_since *s, uint64_t *spos)
{
	uint64_t p = atomic_load_explicit(&s->spos, memory_order_acquire);
	sbfs_topic *t = sbfs_topic_handle(fs, s->te);
	sbfs_bounds bd;
	sbfs_recinfo ri;
	uint64_t off;
	int rc;

	if (p != UNRESOLVED) {
		*spos = p;
		return 0;
	}
	if (!fs->b->ops->seek_time)
		return -ENOTSUP;
	if ((rc = sbfs_offsets_of(fs, s->te, t, &bd)) || (rc = fs->b->ops->seek_time(t, s->ts, &off)))
		return rc;
	if (off < bd.start)
		off = bd.start; /* rm'ed, not yet dropped: hidden */
	if (off >= bd.next) {
		*spos = UNRESOLVED;
		return 0;
	}
	if ((rc = fs->b->ops->stat_record(t, off, SBFS_WANT_STREAM, &ri)))
		return rc;
	p = UNRESOLVED;
	/* Two racing resolvers find the same record: either store is right. */
	atomic_compare_exchange_strong(&s->spos, &p, ri.stream_pos);
	*spos = atomic_load(&s->spos);
	return 0;
}

/* Attributes of a node: .log's, but its own inode, size and mode. */
static int node_attr(sbfs *fs, sbfs_since *s, struct stat *st)
{
	sbfs_bounds bd;
	uint64_t spos, size = 0;
	int rc = resolve(fs, s, &spos);

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
		atomic_init(&s->spos, UNRESOLVED);
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

int sbfs_since_open(sbfs *fs, fuse_ino_t ino, sbfs_since **out)
{
	sbfs_since *s = node_get(fs, ino);
	sbfs_tentry *te;

	if (!s || sbfs_topic_by_id(fs, s->te->id, &te, NULL) || te != s->te)
		return -ENOENT;
	*out = s;
	return 0;
}

int sbfs_since_read(sbfs *fs, sbfs_since *s, uint64_t off, void *buf, size_t size, size_t *n)
{
	uint64_t spos;
	int rc = resolve(fs, s, &spos);

	if (rc)
		return rc;
	if (spos == UNRESOLVED) {
		*n = 0; /* nothing reaches its time yet */
		return 0;
	}
	rc = fs->b->ops->read_stream(sbfs_topic_handle(fs, s->te), spos + off, buf, size, n);
	return rc == -ENOENT ? -ENODATA : rc; /* removed meanwhile, as .log */
}
