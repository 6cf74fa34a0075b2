/*
 * pending_empty.c - files closed unwritten, and what waits for them.
 *
 * A file created and closed by its opener without a byte written is not
 * appended at that close: the close may not be the file's end (bash's
 * `echo x > t/f` dup2s the file and closes the first descriptor before it
 * writes; a parent hands the file to a child and closes its own). It is
 * appended at its release, which the kernel sends after close(2) has
 * returned. Meanwhile it is counted in its topic's `empties`, in the order
 * of the closes, and what would pass it waits for that release: an append
 * to the topic (a file's close, a .log write) and a look at its keys. So
 * a close that returned has its record in the log before the next append
 * and before a reader asks for its key (SPEC §3), in close order.
 *
 * The release usually comes within microseconds. A file whose release
 * does not come within SBFS_EMPTY_WAIT_NS (another descriptor of it stays
 * open: a child writing it) is given up: nothing waits for it again, and
 * it is appended at its release, or becomes a file with bytes when one is
 * written, as before.
 */
#include "fs.h"
#include "pending_impl.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Long enough for a release on a loaded daemon (a release queued behind
 * others on 2 busy cores took over 100 ms: 1 key in 300 kept its empty
 * value, t_keys, 2026-12-02); a wait this long is paid only when another
 * descriptor of the file stays open, once a file. */
#define SBFS_EMPTY_WAIT_NS 2000000000LL /* 2 s */

void sbfs_pending_empty_mark_locked(sbfs *fs, sbfs_pending *p)
{
	if (atomic_load(&p->closed_empty))
		return;
	p->empty_seq = ++fs->empty_seq;
	atomic_store(&p->closed_empty, 1);
	atomic_fetch_add(&p->te->empties, 1);
}

void sbfs_pending_empty_unmark_locked(sbfs *fs, sbfs_pending *p)
{
	if (!atomic_load(&p->closed_empty))
		return;
	atomic_store(&p->closed_empty, 0);
	atomic_fetch_sub(&p->te->empties, 1);
	pthread_cond_broadcast(&fs->pcond);
}

/* Is a file of te closed unwritten before `before` waiting for its
 * release? (plock held) */
static int older_waits(sbfs *fs, sbfs_tentry *te, uint64_t before)
{
	if (!atomic_load(&te->empties))
		return 0;
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (p->te == te && atomic_load(&p->closed_empty) && p->empty_seq < before)
			return 1;
	return 0;
}

static void give_up_locked(sbfs *fs, sbfs_tentry *te, uint64_t before)
{
	for (sbfs_pending *p = fs->pending; p; p = p->next)
		if (p->te == te && atomic_load(&p->closed_empty) && p->empty_seq < before)
			sbfs_pending_empty_unmark_locked(fs, p);
}

void sbfs_pending_empty_wait_locked(sbfs *fs, sbfs_tentry *te, uint64_t before)
{
	struct timespec dl;

	if (!older_waits(fs, te, before))
		return;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	long long ns = dl.tv_nsec + SBFS_EMPTY_WAIT_NS;
	dl.tv_sec += ns / 1000000000LL;
	dl.tv_nsec = ns % 1000000000LL;
	while (older_waits(fs, te, before)) {
		if (pthread_cond_timedwait(&fs->pcond, &fs->plock, &dl) == ETIMEDOUT) {
			give_up_locked(fs, te, before);
			break;
		}
	}
}

int sbfs_pending_closed_unwritten(sbfs_pending *p)
{
	return atomic_load(&p->closed_empty);
}

void sbfs_pending_settle(sbfs *fs, sbfs_tentry *te)
{
	if (!atomic_load(&te->empties))
		return;
	pthread_mutex_lock(&fs->plock);
	sbfs_pending_empty_wait_locked(fs, te, UINT64_MAX);
	pthread_mutex_unlock(&fs->plock);
}
