/*
 * fs.h - the daemon's shared state and the seams between its modules.
 *
 * Inode numbers (stable across mounts, never reused for another record):
 *   1                                the root
 *   id << 40 | 0                     topic directory (id: 23 bits hashed from its name)
 *   id << 40 | 1                     the topic's .log
 *   id << 40 | (16 + offset)         the record at offset
 *   id << 40 | 2                     the topic's .since directory
 *   0 << 40 | n (n >= 2)             a file being created (transient)
 *   0 << 40 | (2^39 + n)             a .since/TIME file (transient: as long
 *                                    as the kernel holds it; since.c)
 *   id << 40 | 3                     the topic's .keys directory
 *   2^63 | id << 40 | (16 + offset)  TOPIC/.keys/K whose latest record is
 *                                    at offset (keys.c): a key's file is a
 *                                    new inode after each write to it
 */
#ifndef SBFS_FS_H
#define SBFS_FS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backend.h"
#include "config.h"

#define SBFS_ID_SHIFT 40
#define SBFS_LOCAL_MASK ((UINT64_C(1) << SBFS_ID_SHIFT) - 1)
#define SBFS_ID_MAX ((UINT32_C(1) << 23) - 1) /* inode numbers stay below 2^63 but keys' */
#define SBFS_KEY_BIT (UINT64_C(1) << 63)      /* TOPIC/.keys/K files */
#define SBFS_L_DIR 0
#define SBFS_L_LOG 1
#define SBFS_L_SINCE 2                    /* TOPIC/.since */
#define SBFS_L_SINCE0 (UINT64_C(1) << 39) /* TOPIC/.since/TIME files, in id 0 */
#define SBFS_L_KEYS 3                     /* TOPIC/.keys */
#define SBFS_L_REC0 16
#define SBFS_MAX_OFFSET (SBFS_LOCAL_MASK - SBFS_L_REC0)
_Static_assert(SBFS_MAX_OFFSET == SBFS_OFFSET_MAX, "backend.h's SBFS_OFFSET_MAX is the tree's");
#define SBFS_BLKSIZE (1u << 20)

/* On the functions that fill out-parameters: a caller that ignores the
 * result would use what the failure left unset (a .log lookup whose
 * stream failed once answered the stack's leftovers: another file). */
#define SBFS_MUST_CHECK __attribute__((warn_unused_result))

/* Kernel cache lifetimes, seconds. */
#define SBFS_TTL_DIR 1.0
#define SBFS_TTL_REC 10.0  /* a record never changes; retention invalidates */
#define SBFS_TTL_LOG 0.0   /* .log: every fstat asks (tail -f polls it) */

/* A file closed under a temporary name waits this long for its rename
 * before it is appended under that name (pending_hold.c). */
#define SBFS_HOLD_NS (INT64_C(10) * 1000000000)

enum sbfs_kind { K_BAD, K_ROOT, K_TOPIC, K_LOG, K_RECORD, K_PENDING, K_SINCEDIR, K_SINCE,
		 K_KEYSDIR, K_KEY };

/* A TOPIC/.since/TIME file the kernel holds (since.c). */
typedef struct sbfs_since {
	struct sbfs_since *next;  /* sbfs.since, guarded by sbfs.sincelock */
	uint64_t n;               /* immutable: inode 0 << 40 | SBFS_L_SINCE0 + n */
	struct sbfs_tentry *te;   /* immutable */
	int64_t ts;               /* immutable: TIME, ns since the epoch */
	int relative;             /* immutable: TIME was -15m and the like */
	uint64_t nlookup;         /* guarded by sbfs.sincelock: the kernel's count */
	/* guarded by sbfs.sincelock: the starts of its open files that have
	 * one (each in its own view's positions); its size is counted from
	 * the lowest, as .log's from its oldest reader's base */
	uint64_t *bases;
	size_t nbases, cbases;
} sbfs_since;

/*
 * One incarnation of a topic as the tree knows it. A topic removed and made
 * again gets a new entry (same name and id, next gen) in the table: open
 * files, pins and hidden records of the old one cannot leak into it, and the
 * kernel, told the new generation, drops its inodes of the old one (a dead
 * directory inode reused for the new topic lists nothing and finds nothing).
 * Replaced entries stay on sbfs.gone (files may still hold them); every
 * entry lives until the fs is freed.
 */
typedef struct sbfs_tentry {
	char *name;             /* immutable */
	uint32_t id;            /* immutable */
	uint64_t gen;           /* immutable: FUSE generation of its inodes */
	sbfs_topic *t;          /* immutable */
	int removed;            /* guarded by sbfs.tlock */
	struct sbfs_tentry *gone_next; /* guarded by sbfs.tlock: sbfs.gone */
	/* when this mount first saw the topic (or it was re-created): the
	 * directory's ctime, which appends do not move, so that tar does not
	 * see "file changed" through attributes cached a moment too long */
	int64_t born_ns;        /* immutable */
	pthread_mutex_t wlock;  /* serializes deletes (rm, rmdir, drops) and restores */
	/* appends: shared for one append call (the store orders those itself and
	 * commits them in groups), exclusive for a write() split into several */
	pthread_rwlock_t alock;
	/* rm'ed records [start, hide_before) are hidden at once and dropped from
	 * the store by the notifier (one persisted delete for a whole rm -r);
	 * written under wlock, read anywhere */
	_Atomic uint64_t hide_before;
	/* files of the topic their openers closed unwritten, awaiting their
	 * release (pending_empty.c): changed under sbfs.plock, read anywhere */
	_Atomic int empties;
	/* Open .log readers: each reads relative to where the log started when
	 * it opened (its base); the size fstat sees is counted from the oldest
	 * open reader's base, so `tail -f` sees no shrink when the head goes;
	 * and rm'ed records are not dropped below the oldest reader's offset
	 * (nor below an open .since/TIME file's start: since.c). */
	pthread_mutex_t pinlock; /* guards the readers' bases below */
	uint64_t *rbase, *roff;
	size_t nreaders, rcap;
	/* records whose 20-digit names lookups gave the kernel to cache
	 * (SBFS_TTL_REC): [named_lo, named_hi], empty while named_lo >
	 * named_hi. Lookups widen it before they check the record; the
	 * notifier invalidates only the names in it that went below the
	 * start, then raises named_lo to the start (a 100 MB append that
	 * the cluster's retention trims as it goes was invalidating up to
	 * INVAL_MAX names per pass that no lookup had given the kernel) */
	_Atomic uint64_t named_lo, named_hi;
	/* the notifier thread's alone: offsets it last told the kernel of
	 * (the .log base, next, start) */
	uint64_t seen_base, seen_next, seen_off;
	int seen_removed;
} sbfs_tentry;

typedef struct sbfs_pending sbfs_pending;
#define SBFS_GHOSTS 256 /* files let go that keep their name (pending.c) */

typedef struct sbfs {
	sbfs_config *cfg;       /* borrowed, immutable */
	sbfs_backend *b;
	struct fuse_session *se;
	int64_t mount_ns;       /* the root's times */

	/* serializes the store's topic creates and removes with the table's
	 * view of them (mkdir, rmdir, registering a name); taken before an
	 * entry's wlock and before tlock */
	pthread_mutex_t nslock;
	pthread_rwlock_t tlock; /* guards tab, cap, n, gone and every entry's removed */
	sbfs_tentry **tab;      /* open addressing by id: the newest entry of each */
	size_t cap, n;
	sbfs_tentry *gone;      /* entries replaced by a newer one of their name */

	pthread_mutex_t plock;  /* guards the pending list and next_pending */
	sbfs_pending *pending;
	uint64_t next_pending;
	/* guarded by plock: the last SBFS_GHOSTS named files appended and let
	 * go (pending.c, ghosts), a ring: ghost_at is the slot of the next,
	 * which holds the oldest (NULL: none yet) */
	sbfs_pending *ghosts[SBFS_GHOSTS];
	unsigned ghost_at;      /* guarded by plock */
	sbfs_pending *retiring; /* guarded by plock: files let go by their last
				 * release, not yet ghosts, linked by their
				 * rnext (pending.c; pcond: one became) */
	pthread_cond_t pcond;   /* with plock: a file closed unwritten was
				 * appended (pending_empty.c) */
	uint64_t empty_seq;     /* guarded by plock: closes of files unwritten */

	pthread_mutex_t sincelock; /* guards since, next_since, each node's nlookup and bases */
	sbfs_since *since;      /* .since/TIME nodes the kernel holds */
	uint64_t next_since;

	pthread_mutex_t nlock;  /* guards stop, kick */
	pthread_cond_t ncond;
	int stop, kick;
	pthread_t notifier;
	int notifier_started;

	pthread_mutex_t hlock;  /* guards handles */
	struct sbfs_fh *handles; /* every open file and directory (for shutdown) */
	pthread_mutex_t slock;  /* guards closed, close_rc */
	int closed;             /* sbfs_shutdown done: b is gone */
	int close_rc;
} sbfs;

/* An open file or directory (fuse_file_info.fh). */
typedef struct sbfs_fh {
	struct sbfs_fh *prev, *next; /* sbfs.handles, guarded by sbfs.hlock */
	enum sbfs_kind kind;
	sbfs_tentry *te;
	uint64_t offset;        /* K_RECORD */
	uint64_t base;          /* K_LOG: stream_start at open; positions are relative.
				 * K_SINCE [lock]: its start in view (UINT64_MAX: none yet) */
	void *view;             /* K_LOG readers, K_SINCE [lock]: the backend's view
				 * (backend.h), or NULL */
	/* K_RECORD, K_LOG readers: the backend's reader memo (backend.h), or
	 * NULL; set once, by its first read (compare-and-swap) */
	void *_Atomic memo;
	/* set last by sbfs_fh_publish (release), read first by sbfs_fh_of
	 * (acquire): the kernel carries fi->fh from the opening thread to the
	 * next, a hand-over ThreadSanitizer cannot see; this one it can */
	_Atomic int published;
	pid_t opener;           /* the thread that opened it: its process's close is the end */
	/* K_LOG writers */
	pthread_mutex_t lock;   /* guards everything below */
	int writer, append;
	int broken;             /* dropping the rest of a too-long line */
	int lost;               /* a too-long line was dropped after an earlier write
				 * had accepted some of it (one write(2) the kernel
				 * split): the close fails with EFBIG */
	int dead;               /* its opener's close could not append its partial
				 * line (that error, -errno): the line dropped, and
				 * nothing more is appended through it */
	int pinned;             /* a .log reader, a .since file [lock] with a start:
				 * holds a pin (see sbfs_tentry) at pin_off */
	uint64_t pin_off;
	uint64_t wpos;          /* where the next non-O_APPEND write must land */
	char *part;             /* a trailing partial line */
	size_t plen, pcap;
	/* K_PENDING */
	sbfs_pending *p;
	/* K_PENDING opened over a key's file .keys/K (sbfs_fh_set_key_writer):
	 * K's inode, the file's own, its opener [sbfs.hlock]; 0: none */
	fuse_ino_t key_ino, key_pino;
	pid_t key_pid;
	/* K_SINCE: its node (alive while the kernel holds the open inode);
	 * opened before any record reached its time [lock]: the stream's end
	 * and next offset then, in its view's positions (UINT64_MAX: not
	 * known), where the first record appended after the open starts */
	sbfs_since *since;
	uint64_t open_end, open_next;
	/* K_ROOT listing: a snapshot of the topic names; a topic's: of the
	 * names of its files being created, with their inode numbers */
	char **names;
	fuse_ino_t *name_inos;
	size_t nnames;
	/* K_KEYSDIR listing (ops_keys.c): the keys of its last reply, each a
	 * u16 length and its bytes, the first one entry number kfirst */
	unsigned char *kbuf;
	size_t klen, kcap;
	uint64_t kfirst, kn;
} sbfs_fh;

/*
 * ======== Layers (one way: a file calls only its own layer and those below;
 * tools/check-fs-layers checks it) ========
 *   4 main.c                      start and stop
 *   3 ops_*.c, notify.c           request handlers, the notifier thread
 *   2 pending*.c, headers.c, attr.c  files being created, attributes
 *   1 tree.c, handles.c           the topic table, open handles
 *   0 backend.h (backend_*.c), config.c, paths.c, errors.c
 *
 * ======== Lock order (take left before right; never the reverse) ========
 *   sbfs.slock (unmount)
 *   > sbfs.nslock (mkdir, rmdir, registering a name)
 *   > sbfs.plock (the pending list) > sbfs_pending.lock (one created file)
 *   > sbfs_fh.lock (one .log writer, one .since/TIME file)
 *   > sbfs_tentry.wlock (deletes, restores) > sbfs_tentry.alock (appends)
 *   > sbfs.tlock (the table)
 *   > sbfs_tentry.pinlock, sbfs.hlock, sbfs.nlock, sbfs.sincelock (leaves:
 *     nothing is taken under them)
 *   > the backend's own locks (it never calls back into fs/ but sbfs_log
 *     and list callbacks, which must not call the backend).
 * A created file's lock and a .log writer's lock are never held together.
 * No lock is held across a FUSE reply or a kernel notification (the
 * notifier sends those holding nothing).
 */

/* ======== 1: tree.c - the topic table ======== */
SBFS_MUST_CHECK int sbfs_init(sbfs *fs, sbfs_config *cfg, sbfs_backend *b);
void sbfs_fini(sbfs *fs);
fuse_ino_t sbfs_ino(uint32_t id, uint64_t local);
enum sbfs_kind sbfs_ino_kind(fuse_ino_t ino, uint32_t *id, uint64_t *offset);
/* The live entry of topic `name` (registering it), or -ENOENT / -EINVAL, or
 * the error of a topic the backend refused (damaged: an EIO kind). */
SBFS_MUST_CHECK int sbfs_topic_by_name(sbfs *fs, const char *name, sbfs_tentry **out);
/* The same, nslock held (rmdir holds it until the topic is gone). */
SBFS_MUST_CHECK int sbfs_topic_by_name_locked(sbfs *fs, const char *name, sbfs_tentry **out);
void sbfs_ns_lock(sbfs *fs);
void sbfs_ns_unlock(sbfs *fs);
/* mkdir: create topic `name` in the backend and register a new entry. */
SBFS_MUST_CHECK int sbfs_topic_create(sbfs *fs, const char *name, sbfs_tentry **out);
/* rmdir, nslock and te->wlock held: remove te's topic from the backend and
 * mark te removed. */
SBFS_MUST_CHECK int sbfs_topic_remove_locked(sbfs *fs, sbfs_tentry *te);
/* Topics of several partitions (backend.h: parts): how many (0: the
 * topic holds its records itself); partition i's entry (named "TOPIC/I",
 * registered as a topic is); the entry of a name in the topic's directory
 * that is one of its partitions ("0".."n-1"), else -ENOENT. */
#define SBFS_PART_NAME_MAX 300
uint32_t sbfs_topic_parts(sbfs *fs, sbfs_tentry *te);
SBFS_MUST_CHECK int sbfs_part_by_index(sbfs *fs, sbfs_tentry *te, uint32_t i, sbfs_tentry **out);
SBFS_MUST_CHECK int sbfs_part_by_name(sbfs *fs, sbfs_tentry *te, const char *name, sbfs_tentry **out);
/* The inode number a directory listing shows for a refused topic (never
 * looked up: its lookup fails). */
fuse_ino_t sbfs_name_ino(const char *name);
/* The entry of topic id and its backend handle: -ENOENT if removed. */
SBFS_MUST_CHECK int sbfs_topic_by_id(sbfs *fs, uint32_t id, sbfs_tentry **out, sbfs_topic **t);
sbfs_topic *sbfs_topic_handle(sbfs *fs, sbfs_tentry *te);
/* Snapshot of all entries (for the notifier); caller frees the array. */
SBFS_MUST_CHECK int sbfs_topic_snapshot(sbfs *fs, sbfs_tentry ***out, size_t *n);
/* Parse a record name: 1..20 digits. 0 or -ENOENT. */
SBFS_MUST_CHECK int sbfs_parse_offset(const char *name, uint64_t *off);
void sbfs_fmt_offset(char buf[21], uint64_t off);
/* The topic's extent as users see it: the backend's, less hidden records
 * (all of it / offsets only: the stream fields 0). 0 or -errno (*bd then
 * all 0). */
SBFS_MUST_CHECK int sbfs_bounds_of(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, sbfs_bounds *bd);
SBFS_MUST_CHECK int sbfs_offsets_of(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, sbfs_bounds *bd);
/* Where the .log size fstat sees is counted from (see pinlock): its stream
 * position, and the offset of its record (bd: sbfs_offsets_of is enough). */
uint64_t sbfs_log_base(sbfs_tentry *te, const sbfs_bounds *bd);
uint64_t sbfs_log_base_offset(sbfs_tentry *te, const sbfs_bounds *bd);
/* A reader opens .log at stream position base, the start of record off
 * (0 or -ENOMEM) / closes it. A .since/TIME reader pins its start's
 * offset only (base SBFS_PIN_NO_BASE: .log's size is not counted from it). */
#define SBFS_PIN_NO_BASE UINT64_MAX
int sbfs_log_pin(sbfs_tentry *te, uint64_t base, uint64_t off);
void sbfs_log_unpin(sbfs_tentry *te, uint64_t base, uint64_t off);
/* A visible record's header: -ENOENT if hidden or absent. */
SBFS_MUST_CHECK int sbfs_stat_visible(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, uint64_t off, sbfs_recinfo *ri);
/* Drop hidden records from the store (te->wlock held / not held); unless
 * force, not those an open reader's positions still cover. */
SBFS_MUST_CHECK int sbfs_drop_hidden_locked(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, int force);
SBFS_MUST_CHECK int sbfs_drop_hidden(sbfs *fs, sbfs_tentry *te, int force);
/* Something changed (an append, a delete, a topic made or removed): the
 * notifier looks soon (cheap, coalesced, any thread). */
void sbfs_notify_kick(sbfs *fs);
/* A lookup is about to give the kernel record off's name to cache. */
void sbfs_named(sbfs_tentry *te, uint64_t off);

/* ======== 1: handles.c - open files and directories ======== */
/* A new handle of kind k on te, registered in fs->handles; NULL on ENOMEM. */
sbfs_fh *sbfs_fh_new(sbfs *fs, enum sbfs_kind k, sbfs_tentry *te);
/* Unregister and free a handle (its listing and partial line too). */
void sbfs_fh_free(sbfs *fs, sbfs_fh *h);
/* Any handle still registered (at unmount), or NULL. */
sbfs_fh *sbfs_fh_any(sbfs *fs);
/* Give h, filled in, to the kernel as fi->fh: the last write to h by the
 * opening request before its reply. */
void sbfs_fh_publish(struct fuse_file_info *fi, sbfs_fh *h);
/* The handle of a later request's fi (published), or NULL for no fi. */
sbfs_fh *sbfs_fh_of(const struct fuse_file_info *fi);
/* Is pid (a request's caller) the process that opened h? */
int sbfs_fh_is_opener(const sbfs_fh *h, pid_t pid);
/* h is file pino, written by thread pid over the key file of inode ino
 * (.keys/K opened for writing). The file a thread of pid's process writes
 * over ino: 0 and *pino, or -ENOENT (*pino untouched). So that what is set
 * on K's inode (utimensat, fsetxattr: the kernel names no handle) while
 * that process writes it is set on its file, as on a created one. */
void sbfs_fh_set_key_writer(sbfs *fs, sbfs_fh *h, fuse_ino_t ino, fuse_ino_t pino, pid_t pid);
SBFS_MUST_CHECK int sbfs_fh_key_writer(sbfs *fs, fuse_ino_t ino, pid_t pid, fuse_ino_t *pino);

/* ======== 0: errors.c - replies and messages ======== */
/* -rc: backends give negative errnos only; sbfs_log is in backend.h. */
int sbfs_errno(int rc);
const char *sbfs_strerror(int rc);
void sbfs_reply_err(fuse_req_t req, int rc);
void sbfs_log_to_syslog(int on);

/* ======== 2: headers.c - the headers of a file being created ======== */
#define SBFS_XA_HEADER "user.streambus.header."
typedef struct sbfs_hdrs sbfs_hdrs;
/* Set header `name` (a NUL-terminated name: 1..SBFS_HEADER_NAME_MAX bytes)
 * in *hs (NULL: none yet; made here), as setxattr would with `flags`:
 * -EEXIST, -ENODATA, -EINVAL, -E2BIG past backend.h's limits, -ENOMEM. */
int sbfs_hdrs_set(sbfs_hdrs **hs, const char *name, const void *value, size_t len, int flags);
int sbfs_hdrs_remove(sbfs_hdrs *hs, const char *name); /* -ENODATA */
/* The headers in the order first set; *n 0 for NULL. Valid until the next change. */
const sbfs_header *sbfs_hdrs_array(const sbfs_hdrs *hs, uint32_t *n);
void sbfs_hdrs_free(sbfs_hdrs *hs);

/* ======== 2: pending.c - files being created ======== */
/* A new file `name` in topic `parent`, open (create) or not (mknod). */
SBFS_MUST_CHECK int sbfs_pending_create(sbfs *fs, fuse_ino_t parent, const char *name, mode_t mode, int open,
			struct fuse_entry_param *e, sbfs_pending **out);
/* Opened O_APPEND: every write goes to the file's end. */
void sbfs_pending_set_append(sbfs_pending *p);
sbfs_tentry *sbfs_pending_topic(const sbfs_pending *p);
fuse_ino_t sbfs_pending_ino(const sbfs_pending *p);
/* open(2) of file ino by its name (flags: the open's): *out is ino's file,
 * or one of this open's own (pending.c). */
SBFS_MUST_CHECK int sbfs_pending_open(sbfs *fs, fuse_ino_t ino, int flags, sbfs_pending **out);
/* At unmount: the names of files let go, kept for late opens (pending.c). */
void sbfs_pending_ghosts_free(sbfs *fs);
SBFS_MUST_CHECK int sbfs_pending_read(sbfs_pending *p, off_t off, char *buf, size_t size, size_t *n);
SBFS_MUST_CHECK int sbfs_pending_write(sbfs *fs, sbfs_pending *p, const char *buf, size_t size, off_t off);
/* close (flush): append what was written; release: the last close frees it */
SBFS_MUST_CHECK int sbfs_pending_flush(sbfs *fs, sbfs_pending *p);
int sbfs_pending_release(sbfs *fs, sbfs_pending *p);
/* Before an append to te or a look at its keys: wait until the files of
 * te closed unwritten are appended (at their release, which the kernel
 * sends after close(2) returned), at most SBFS_EMPTY_WAIT_NS, 2 s
 * (pending_empty.c). Takes sbfs.plock: call it holding no lock. */
void sbfs_pending_settle(sbfs *fs, sbfs_tentry *te);
/* Was p closed unwritten, its release awaited? (tests' release delay) */
int sbfs_pending_closed_unwritten(sbfs_pending *p);
/* At shutdown, for an open the kernel will never release: drop it, and the
 * file with its last open, without appending anything. */
void sbfs_pending_abandon(sbfs *fs, sbfs_pending *p);
SBFS_MUST_CHECK int sbfs_pending_setattr(sbfs *fs, fuse_ino_t ino, struct stat *attr, int to_set);
/* user.streambus.header.NAME on a file being created: its record's header
 * NAME (SPEC §2); flags as setxattr's (XATTR_CREATE, XATTR_REPLACE). */
int sbfs_pending_removexattr(sbfs *fs, fuse_ino_t ino, const char *name);
int sbfs_pending_setxattr(sbfs *fs, fuse_ino_t ino, int flags, const char *name, const char *value,
			  size_t size);
SBFS_MUST_CHECK int sbfs_pending_attr(sbfs *fs, fuse_ino_t ino, struct stat *st);
/* Is file ino an open of an existing key's file (.keys/K, no O_TRUNC)
 * that nothing was written to yet? Then K's attributes are its record's
 * still: a setattr other than a size is judged as on the record (touch
 * of an existing key appends nothing). 1 or 0. */
int sbfs_pending_as_record(sbfs *fs, fuse_ino_t ino);
SBFS_MUST_CHECK int sbfs_pending_lookup(sbfs *fs, sbfs_tentry *te, const char *name, struct stat *st);
SBFS_MUST_CHECK int sbfs_pending_unlink(sbfs *fs, sbfs_tentry *te, const char *name);
/* rename within te of a file being created: -ENOENT if name is none */
SBFS_MUST_CHECK int sbfs_pending_rename(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
			unsigned int flags);
/* The same within TOPIC/.keys/: the file's key becomes newname's (rsync's
 * temporary file renamed into place appends one record keyed by it). */
SBFS_MUST_CHECK int sbfs_pending_rename_key(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
			    unsigned int flags);
/* A file written through TOPIC/.keys/NAME: keyed by key (klen bytes; 0
 * only for a created temporary name that is no key's, else -EINVAL), held
 * at its close only under rsync's temporary name (.NAME.XXXXXX: its rename
 * follows), never a name in the topic itself (only ..._key calls find it by
 * NAME). It holds init (init_len bytes; NULL: nothing) at first; fresh: its
 * last close appends even if nothing was written (create, O_TRUNC), else
 * only a write makes a record. e: a create (NAME must be free; its entry
 * is filled); NULL: an open of an existing key's file. */
SBFS_MUST_CHECK int sbfs_pending_create_key(sbfs *fs, sbfs_tentry *te, const char *name, const void *key,
			    size_t klen, const void *init, size_t init_len, int fresh, mode_t mode,
			    int opens, struct fuse_entry_param *e, sbfs_pending **out);
SBFS_MUST_CHECK int sbfs_pending_lookup_key(sbfs *fs, sbfs_tentry *te, const char *name, struct stat *st);
/* The names of topic te's files being created (SPEC §3: a name is visible
 * while its file is open), each with its inode number, for a listing:
 * *names (n strings, each malloc'd, and the array) and *inos (malloc'd),
 * the caller's to free; 0 or -ENOMEM (outputs untouched). */
SBFS_MUST_CHECK int sbfs_pending_names(sbfs *fs, sbfs_tentry *te, char ***names, fuse_ino_t **inos, size_t *n);
int sbfs_pending_unlink_key(sbfs *fs, sbfs_tentry *te, const char *name);
/* Undo a create whose open failed: nothing appended, p freed. */
void sbfs_pending_discard(sbfs *fs, sbfs_pending *p);
/* Append the files held too long under a temporary name (the notifier). */
void sbfs_pending_expire(sbfs *fs);
void sbfs_pending_free_all(sbfs *fs);

/* ======== 2: since.c - TOPIC/.since/ and its files ======== */
/* .since's attributes; a lookup in it (-ENOENT for a name that is no
 * time), counted until forgotten; attributes of a node; a forget. */
SBFS_MUST_CHECK int sbfs_since_dir_attr(sbfs *fs, sbfs_tentry *te, struct stat *st);
SBFS_MUST_CHECK int sbfs_since_lookup(sbfs *fs, sbfs_tentry *te, const char *name, struct fuse_entry_param *e);
SBFS_MUST_CHECK int sbfs_since_attr(sbfs *fs, fuse_ino_t ino, struct stat *st);
void sbfs_since_forget(sbfs *fs, fuse_ino_t ino, uint64_t nlookup);
/* open: a new handle (*out, the caller's, freed by sbfs_since_release
 * then sbfs_fh_free) on the node of ino (-ENOENT), with a view of its
 * topic's stream (NULL if the backend has none) and where the file starts
 * in it (UINT64_MAX: no record reaches its time yet); read: bytes from
 * off of the file an open handle h reads (sbfs_fh's base and view);
 * release: h lets go of its start (its pin and its node's base). */
SBFS_MUST_CHECK int sbfs_since_open(sbfs *fs, fuse_ino_t ino, sbfs_fh **out);
SBFS_MUST_CHECK int sbfs_since_read(sbfs *fs, sbfs_fh *h, uint64_t off, void *buf, size_t size, size_t *n);
void sbfs_since_release(sbfs *fs, sbfs_fh *h);
/* (sbfs_fini frees the nodes left at unmount.) */

/* ======== 2: keys.c - TOPIC/.keys/ (SPEC §2 "Keys: a topic as a table") ======== */
#define SBFS_KEYNAME_MAX 255 /* NAME_MAX: the longest name in .keys/ */
/* The name of key in .keys/ ('/', '%' and NUL percent-encoded, a key "."
 * or ".." as %2E, %2E%2E) in name (NUL-terminated): its length (0 only
 * for an empty key). A key whose name would be longer than
 * SBFS_KEYNAME_MAX gets a long name (keys.c): a prefix of it, "%~" and a
 * hash of the key, which sbfs_key_find maps back. */
size_t sbfs_key_name(const void *key, size_t klen, char name[SBFS_KEYNAME_MAX + 1]);
/* The key name stands for in key (at most strlen(name) bytes), decoded
 * leniently: only the escapes sbfs_key_name writes (%2F, %25, %00, a whole
 * name %2E or %2E%2E; hex in either case), any other '%' is itself. Its
 * length, or 0 for a name that is empty or longer than SBFS_KEYNAME_MAX.
 * _file_name: a file created in the topic (pending.c: its key); _name: in
 * .keys/, where a long key's name stands for no key by its spelling (0:
 * sbfs_key_find finds it, a create of it is EINVAL). */
size_t sbfs_key_of_file_name(const char *name, unsigned char *key);
size_t sbfs_key_of_name(const char *name, unsigned char *key);
/* .keys's attributes; a key file's (the record at off: its key inode,
 * writable). */
SBFS_MUST_CHECK int sbfs_keys_dir_attr(sbfs *fs, sbfs_tentry *te, struct stat *st);
SBFS_MUST_CHECK int sbfs_attr_key(sbfs *fs, sbfs_tentry *te, uint64_t off, struct stat *st);
/* The latest visible record of key: 0 and *ri, -ENOENT (none, a
 * tombstone, rm'ed), -ENOTSUP (the backend keeps no keys). */
SBFS_MUST_CHECK int sbfs_key_latest(sbfs *fs, sbfs_tentry *te, const void *key, size_t klen, sbfs_recinfo *ri);
/* The latest visible record of the key NAME stands for: 0 and *ri, or
 * -ENOENT as sbfs_key_latest (also for a name that stands for no key). */
SBFS_MUST_CHECK int sbfs_key_find(sbfs *fs, sbfs_tentry *te, const char *name, sbfs_recinfo *ri);
/* rename within TOPIC/.keys/ of a key whose record is appended (a file
 * still being written there is pending.c's): a record keyed NEWNAME with
 * NAME's payload, headers and time, then a tombstone for NAME. -ENOENT (no
 * such key), -EINVAL (NEWNAME stands for no key, or flags other than
 * RENAME_NOREPLACE), -EEXIST (RENAME_NOREPLACE and NEWNAME is there). */
SBFS_MUST_CHECK int sbfs_key_rename(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
		    unsigned int flags);
/* rm of TOPIC/.keys/NAME: a file being written there is dropped, else a
 * tombstone for its key is appended (-ENOENT if it has no live record). */
SBFS_MUST_CHECK int sbfs_key_remove(sbfs *fs, sbfs_tentry *te, const char *name);
/* create/mknod of TOPIC/.keys/NAME (pending.c's file, keyed by NAME decoded). */
SBFS_MUST_CHECK int sbfs_key_create(sbfs *fs, sbfs_tentry *te, const char *name, mode_t mode, int open,
		    struct fuse_entry_param *e, sbfs_pending **out);
/* open for writing of a key file (inode of the record at off): a file
 * being created, keyed as that record, holding its payload unless trunc. */
SBFS_MUST_CHECK int sbfs_key_open_write(sbfs *fs, sbfs_tentry *te, uint64_t off, int trunc, sbfs_pending **out);

/* ======== 2: attr.c - attributes ======== */
/* Attributes of each kind of node. */
void sbfs_attr_root(sbfs *fs, struct stat *st);
SBFS_MUST_CHECK int sbfs_attr_topic(sbfs *fs, sbfs_tentry *te, struct stat *st);
SBFS_MUST_CHECK int sbfs_attr_log(sbfs *fs, sbfs_tentry *te, struct stat *st);
SBFS_MUST_CHECK int sbfs_attr_record(sbfs *fs, sbfs_tentry *te, uint64_t off, struct stat *st);
/* Attributes of any inode (pending files included), and its cache lifetime. */
SBFS_MUST_CHECK int sbfs_attr_any(sbfs *fs, fuse_ino_t ino, struct stat *st, double *ttl);


/* ======== 3: ops_*.c - the request handlers, each file's into ops ======== */
void sbfs_ops_names_fill(struct fuse_lowlevel_ops *ops);
void sbfs_ops_dir_fill(struct fuse_lowlevel_ops *ops);
void sbfs_ops_attr_fill(struct fuse_lowlevel_ops *ops);
void sbfs_ops_xattr_fill(struct fuse_lowlevel_ops *ops);
void sbfs_ops_open_fill(struct fuse_lowlevel_ops *ops);
void sbfs_ops_read_fill(struct fuse_lowlevel_ops *ops);
void sbfs_ops_write_fill(struct fuse_lowlevel_ops *ops);
/* ops_write.c: append a .log writer's partial line (its close); write() on
 * an open file (op_write without its request; tests/fuzz drives it
 * directly): *took, the bytes taken (fewer than size: a short count). 0 or
 * -errno. */
SBFS_MUST_CHECK int sbfs_log_flush_partial(sbfs *fs, sbfs_fh *h);
/* The opener's close of a .log writer: sbfs_log_flush_partial, and when
 * its append fails, the handle dead (h->lock held). */
SBFS_MUST_CHECK int sbfs_log_close(sbfs *fs, sbfs_fh *h);
SBFS_MUST_CHECK int sbfs_fh_write(sbfs *fs, sbfs_fh *h, const char *buf, size_t size, off_t off, size_t *took);
/* ops_xattr.c: listxattr's names (NUL-terminated back to back, malloc'ed;
 * NULL and 0 for an inode without) and getxattr's value (malloc'ed) of an
 * inode, without the request (tests/fuzz drives them). 0 or -errno. */
SBFS_MUST_CHECK int sbfs_xattr_list(sbfs *fs, fuse_ino_t ino, char **names, size_t *len);
SBFS_MUST_CHECK int sbfs_xattr_get(sbfs *fs, fuse_ino_t ino, const char *name, char **value, size_t *len);

/* ======== 3: ops_keys.c - the handlers' part for TOPIC/.keys/ ======== */
void sbfs_keys_lookup(fuse_req_t req, sbfs_tentry *te, const char *name);
void sbfs_keys_unlink(fuse_req_t req, sbfs_tentry *te, const char *name);
/* The entries of a .keys listing from cookie off (>= 2) into buf (used
 * bytes of size already taken): the bytes used, or -errno with none added. */
long sbfs_keys_readdir(fuse_req_t req, sbfs_fh *h, char *buf, size_t used, size_t size, off_t off);
/* open of a key file (ino K_KEY): 0 and *out, fi's flags set. */
SBFS_MUST_CHECK int sbfs_keys_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, sbfs_fh **out);

/* ======== 3: notify.c - the notifier thread ======== */
int sbfs_notify_start(sbfs *fs);
void sbfs_notify_stop(sbfs *fs);
/* Drop every topic's hidden (rm'ed) records from the store: at unmount. */
void sbfs_drop_all_hidden(sbfs *fs);

/* ======== 4: main.c - start and stop ======== */
/* Stop the notifier, append or drop what is pending, drop rm'ed records and
 * close the backend (releasing its lock). Once; returns the close's result.
 * Only while no request is being served (after the loop). */
int sbfs_shutdown(sbfs *fs);

#endif
