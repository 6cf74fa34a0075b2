/*
 * pending_impl.h - a file being created, shared by pending.c (its life:
 * create, open, write, unlink), pending_commit.c (its records: commit,
 * close, release), pending_hold.c (temporary names: hold, rename),
 * pending_empty.c (files closed unwritten) and pending_attr.c (its
 * attributes). Nothing else includes this.
 */
#ifndef SBFS_PENDING_IMPL_H
#define SBFS_PENDING_IMPL_H

#include "fs.h"

struct sbfs_pending {
	struct sbfs_pending *next;   /* guarded by sbfs.plock */
	int linked;                  /* guarded by sbfs.plock: in the list */
	sbfs_pending *rnext;         /* guarded by sbfs.plock: in sbfs.retiring */
	int opens;                   /* guarded by sbfs.plock */
	int held;                    /* guarded by sbfs.plock: a temporary name, closed */
	int64_t held_ns;             /* guarded by sbfs.plock: its last close (monotonic) */
	/* closed by its opener unwritten, its release not here yet: counted
	 * in te->empties (pending_empty.c) [written under sbfs.plock] */
	_Atomic int closed_empty;
	uint64_t empty_seq;          /* guarded by sbfs.plock: its close's place */
	fuse_ino_t ino;
	sbfs_tentry *te;
	/* name, digits, at: written under sbfs.plock and lock both, read under either */
	char *name;
	int digits;
	uint64_t at;                 /* digits: the offset asked for */
	mode_t mode;
	int keyview;                 /* immutable: written through TOPIC/.keys/ (name: there) */
	pthread_mutex_t lock;        /* guards everything below */
	int append;                  /* opened O_APPEND: its writes go to its end (the
				      * kernel places them at the end of the inode, which
				      * another writer's file of the name shares) */
	char *buf;
	size_t len, cap;
	uint64_t base;               /* bytes already appended as earlier records */
	int dirty, committed;
	int as_record;               /* opened over a key's record, not truncated, not
				      * written yet: its attributes are still that
				      * record's (touch appends nothing) */
	int failed;                  /* never append it: -EFBIG, a write past the
				      * limit; or the error of its close's append
				      * (a try again at its release would append
				      * what the close said failed) */
	char *key;                   /* from setxattr user.streambus.key */
	sbfs_hdrs *hdrs;             /* from setxattr user.streambus.header.NAME */
	size_t key_len;
	int key_set;
	int tombstone;               /* from setxattr user.streambus.tombstone (a backup's) */
	int64_t mtime_ns;
	int64_t stamp_ns;            /* set by utimens (cp -p): the record's time */
	int stamp_xattr;             /* stamp_ns came from user.streambus.timestamp */
	int want_set;                /* user.streambus.offset was set: */
	uint64_t want;               /* the record must land at this offset */
};

/* pending_empty.c, sbfs.plock held: count p as closed unwritten (no-op
 * if it is); uncount it (no-op if it is not) and wake the waiters; wait
 * until no file of te closed unwritten before `before` (an empty_seq;
 * UINT64_MAX: any) awaits its release, plock released meanwhile, at most
 * SBFS_EMPTY_WAIT_NS: those still waiting then are uncounted. */
void sbfs_pending_empty_mark_locked(sbfs *fs, sbfs_pending *p);
void sbfs_pending_empty_unmark_locked(sbfs *fs, sbfs_pending *p);
void sbfs_pending_empty_wait_locked(sbfs *fs, sbfs_tentry *te, uint64_t before);

/* The file of inode ino, or NULL (sbfs.plock held). */
sbfs_pending *sbfs_pending_by_ino(sbfs *fs, fuse_ino_t ino);
/* pending.c. The list, sbfs.plock held: take p out of it (uncounted if it
 * was closed unwritten: appended, or never will be); is p file `name` of
 * te (in .keys/: keyview; "" any file of te), and not a file all of which
 * is a record already? Free p (out of the list, nobody has it open). */
void sbfs_pending_unlink_locked(sbfs *fs, sbfs_pending *p);
/* A rename put another file at q's name, which another process has open:
 * q goes on nameless, keyed by that name, and is appended at its close (a
 * record of its own, as pending_twin's), never dropped. 0 or -ENOMEM.
 * (plock held) */
int sbfs_pending_unname_locked(sbfs_pending *q);
/* p's key: the one set, else its name's, decoded (in buf); a name of
 * digits has none (NULL, 0). (p->lock held) */
const void *sbfs_pending_key(const sbfs_pending *p, unsigned char buf[SBFS_KEYNAME_MAX], size_t *len);
int sbfs_pending_named_live(sbfs_pending *p, sbfs_tentry *te, const char *name, int keyview);
void sbfs_pending_free(sbfs_pending *p);
/* p is let go by its last release (not held): until sbfs_pending_retire,
 * an open or GETATTR of its inode waits for its ghost (plock held). Free
 * p (out of the list, released by its last opener), keeping a named
 * file's name and key a while for an open that its lookup sent to it
 * (sbfs_pending_open). Takes plock. */
void sbfs_pending_retiring_locked(sbfs *fs, sbfs_pending *p);
void sbfs_pending_retire(sbfs *fs, sbfs_pending *p);
/* The ghost of inode ino (a file retired), waiting a moment while that
 * file, let go, is on its way to being one; NULL: none. (plock held, let
 * go while it waits) */
sbfs_pending *sbfs_pending_ghost_locked(sbfs *fs, fuse_ino_t ino);
/* What a name asks for in te: *digits and *at for a record name; -EPERM for
 * a digits name that cannot be the next record, -EEXIST for .log,
 * -ENAMETOOLONG. */
int sbfs_pending_name_check(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, const char *name,
			    int *digits, uint64_t *at);
/* pending_commit.c: append what was written since the last commit as one
 * record (p->lock held). */
int sbfs_pending_commit(sbfs *fs, sbfs_pending *p);
/* pending_hold.c: is name rsync's temporary name in .keys/ (.NAME.XXXXXX,
 * X alphanumeric)? The writer closed p: if under a temporary name, hold it
 * (1), else 0 (sbfs.plock held). */
int sbfs_pending_temp_key_name(const char *name);
int sbfs_pending_hold_locked(sbfs_pending *p, int at_flush);
/* Its attributes (takes p->lock). */
void sbfs_pending_stat(sbfs *fs, sbfs_pending *p, struct stat *st);

#endif
