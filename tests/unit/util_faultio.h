/*
 * util_faultio.h - an sb_io table over real files for fault injection and
 * crash simulation (the SQLite way).
 *
 * Faults: fail the Nth matching call of a kind with an errno (once or from
 * then on), or run out of disk space after a byte budget (the pwrite that
 * crosses it is short, later ones get -ENOSPC).
 *
 * Crashes: every pwrite/ftruncate/fallocate (and O_TRUNC open) not covered
 * by a successful fdatasync of its file is recorded with what it overwrote,
 * and every create/rename/unlink/mkdir/rmdir not yet covered by an fdatasync
 * of its parent directory is recorded with a way back (an undone mkdir takes
 * everything made inside the directory with it; an undone rmdir brings the
 * empty directory back). pread and close change nothing: they can only be
 * made to fail (a failed close still closes). An fdatasync covers only what was
 * done before it began: what other threads do while it runs (during its
 * delay, see fio_set_sync) stays unsynced. fio_crash_at() freezes the table at the Nth
 * call of a kind (that call and every later one fail with -EIO and change
 * nothing); fio_crash_apply() then keeps, drops or garbles each unsynced
 * write and undoes a random suffix of the unsynced namespace operations
 * (a journaled filesystem applies them in order), chosen by a seeded RNG,
 * so the files look like after a power loss. Garbling only touches bytes a
 * write changed ("powersafe overwrite", as SQLite assumes).
 *
 * fio_new(): mmap_writes is 0, every append reaches us as a pwrite.
 * fio_new_mmap(): the store's default path, tracked by snapshots (below).
 * All calls are serialized by one mutex (an fdatasync delay is slept
 * outside it); the table is safe to use from many threads. The store's
 * close() of its fds is not seen: files are tracked by inode.
 * FIO_DEBUG=1 in the environment lists what a crash found unsynced.
 */
#ifndef UTIL_FAULTIO_H
#define UTIL_FAULTIO_H

#include <stddef.h>
#include <stdint.h>

#include "sb_io.h"

typedef enum fio_kind {
	FIO_OPEN,
	FIO_PWRITE,
	FIO_FDATASYNC,
	FIO_FTRUNCATE,
	FIO_FALLOCATE,
	FIO_RENAME,
	FIO_UNLINK,
	FIO_PREAD,
	FIO_MKDIR,
	FIO_RMDIR,
	FIO_CLOSE,
	FIO_NKINDS
} fio_kind;

typedef struct fio fio;

/*
 * A new table. stash_dir: an existing directory on the same filesystem as
 * the store (hard links of renamed-over and unlinked files live there until
 * their directory is synced). NULL on failure. Free with fio_free().
 */
fio *fio_new(const char *stash_dir);
/*
 * The same with mmap_writes = 1 (the store's real write path: records are
 * copied into a shared mapping, invisible to this table). Data is then
 * tracked by snapshots instead of per write: every file opened for writing
 * is snapshotted at open and again when each fdatasync begins (the snapshot
 * becomes the synced content if that fdatasync succeeds); a crash
 * keeps, drops (back to the snapshot) or garbles each 512-byte block that
 * differs from the snapshot, and keeps either the current or the snapshot
 * size. Faults (fio_fail, budgets) work as in the pwrite table.
 */
fio *fio_new_mmap(const char *stash_dir);
/* Closes its descriptors; does not touch the files. */
void fio_free(fio *f);
const sb_io *fio_io(fio *f);

#define FIO_STICKY 1u /* keep failing every later matching call too */
/*
 * Fail the nth (1 = the next) call of `kind` from now whose path contains
 * `match` (NULL: any; for fd calls the fd's current path) with -err.
 * Up to 16 rules; returns 0 or -ENOSPC.
 */
int fio_fail(fio *f, fio_kind kind, unsigned nth, int err, unsigned flags, const char *match);
/* Drop every rule. */
void fio_fail_clear(fio *f);
/*
 * Disk full after `bytes` more bytes of pwrite (the crossing pwrite writes
 * what fits and returns a short count; later pwrites and growing fallocates
 * get -ENOSPC). bytes < 0: unlimited again.
 */
void fio_disk_budget(fio *f, int64_t bytes);
/* Make the nth pwrite (1 = the next) from now short: it writes and returns
 * only `keep` bytes (fewer than asked). Once. */
void fio_short_write(fio *f, unsigned nth, size_t keep);

/*
 * fdatasync behaviour: real = 0 skips the system call (crash simulation does
 * not need the disk to be durable, and it is much faster); delay_us sleeps
 * that long in every fdatasync (outside the table's lock), so that group
 * commit has something to group. Defaults: real, no delay.
 */
void fio_set_sync(fio *f, int real, unsigned delay_us);

/*
 * From now on every pwrite or fdatasync (kind) whose path contains `match`
 * (NULL: any) first sleeps delay_us, outside the table's lock (0: no
 * more); one setting a kind. A thread writing such a file stalls there
 * while the others go on. FIO_HOLD: it waits until the setting of its
 * kind changes (another thread's fio_slow: a test releases it when it has
 * done what it wanted done meanwhile, with no timing to guess).
 */
#define FIO_HOLD 0xffffffffu
void fio_slow(fio *f, fio_kind kind, unsigned delay_us, const char *match);
/* Calls that began such a sleep so far. */
unsigned fio_slowed(fio *f);

/* Calls of each kind seen so far (failed ones included). */
unsigned fio_calls(fio *f, fio_kind kind);
/* Calls that were made to fail (rules, budget, crash). */
unsigned fio_failed(fio *f);

/* Freeze at the nth call of kind from now (1 = the next): it and every later
 * call fail with -EIO without effect. */
void fio_crash_at(fio *f, fio_kind kind, unsigned nth);
/* Freeze now. */
void fio_crash_now(fio *f);
int fio_crashed(fio *f);

typedef struct fio_crash_stats {
	unsigned kept, dropped, garbled; /* unsynced data operations */
	unsigned ns_kept, ns_undone;     /* unsynced create/rename/unlink */
	unsigned lost_linked;            /* dropped or garbled ops (blocks) of files
					  * still linked at the crash */
} fio_crash_stats;
/*
 * Simulate the power loss (call after fio_crash_at/now fired and the store
 * was closed or abandoned): each unsynced data operation is kept, dropped or
 * garbled, and a random suffix of the unsynced namespace operations is
 * undone, as chosen by `seed`. mode FIO_CRASH_RANDOM does that; KEEP_ALL
 * keeps everything (a process crash), DROP_ALL drops every unsynced data op
 * and undoes every unsynced namespace op. The others choose per file, with
 * a random suffix of namespace ops undone as in RANDOM: GARBAGE replaces
 * every unsynced write (snapshot mode: every changed block) by garbage of
 * the same length; REORDER keeps a random subset, the newest op always and
 * the oldest never when there are two or more (later writes reached the
 * disk, earlier ones did not); PREFIX keeps the ops up to a random point, in
 * order, and drops the rest. st may be NULL. 0 or -errno.
 */
enum {
	FIO_CRASH_RANDOM = 0,
	FIO_CRASH_KEEP_ALL = 1,
	FIO_CRASH_DROP_ALL = 2,
	FIO_CRASH_GARBAGE = 3,
	FIO_CRASH_REORDER = 4,
	FIO_CRASH_PREFIX = 5,
	FIO_CRASH_NMODES
};
int fio_crash_apply(fio *f, uint64_t seed, int mode, fio_crash_stats *st);

/* Number of unsynced data ops / namespace ops recorded right now. */
unsigned fio_pending_data(fio *f);
unsigned fio_pending_ns(fio *f);

#endif
