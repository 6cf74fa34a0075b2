/*
 * lock.h - the store directory's lock file, LOG_DIR/.lock: an exclusive
 * flock held while the store is open read-write, and a note of who holds it
 * (format in store/format.h) so that a later opener can tell a live mount
 * (refused at once) from a holder that is finishing (waited for).
 */
#ifndef SB_LOCK_H
#define SB_LOCK_H

#include "sb_store.h"

/*
 * Lock store directory `dir` as opt's lock_* fields say (sb_store.h) and
 * write the holder note (our pid, opt->mountpoint, dir). 0 and *fd (the
 * locked file: closing it releases the lock), or SB_ELOCKED, or -errno;
 * *fd untouched on failure.
 */
int sb_lock_take(const char *dir, const sb_store_options *opt, int *fd);
/*
 * For a read-only open, which takes no lock: wait, as sb_lock_take would,
 * for a holder that is not a live mount (a daemon still closing after its
 * unmount rewrites indexes and trims segments under a reader), up to
 * opt->lock_wait_ms; then return, whoever holds the lock.
 */
void sb_lock_wait_finishing(const char *dir, const sb_store_options *opt);
/* Rewrite the holder note of the lock held in fd with the close's progress:
 * `done` topics closed of `total`, `steps` steps inside their closes (a
 * waiting opener waits on while either moves). */
/* The monotonic clock the waits run on, in ms (the close's notes too). */
long long sb_mono_ms(void);
void sb_lock_note_closing(int fd, const char *dir, const char *mountpoint, uint64_t done, uint64_t total,
			  uint64_t steps);

#endif
