/*
 * pending_commit.c - a file being created becomes records: the commit
 * (what was written since the last one, appended as one record: keyed by
 * the name or user.streambus.key, or at the offset a name of digits or
 * user.streambus.offset asks for), and the ends of an open that commit:
 * the opener's close (flush) and the last release; the abandon at
 * shutdown appends nothing. A file closed unwritten is appended at its
 * release, after the files of its topic closed unwritten before it
 * (pending_empty.c). The files' life is pending.c's, holds and renames
 * pending_hold.c's.
 */
#include "fs.h"
#include "pending_impl.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

/* Append what was written since the last commit as one record (p->lock held). */
int sbfs_pending_commit(sbfs *fs, sbfs_pending *p)
{
	if (fs->cfg->read_only)
		return -EROFS;
	if (p->failed)
		return p->failed;
	if (p->want_set && p->digits && p->want != p->at)
		return -EPERM; /* renamed to another offset than its xattr says */
	int exact = p->digits || p->want_set;
	uint64_t at = p->digits ? p->at : p->want;
	unsigned char nkey[SBFS_KEYNAME_MAX];
	sbfs_rec r = { .value = p->buf, .value_len = (uint32_t)p->len,
		       .timestamp_ns = p->stamp_ns > 0 ? p->stamp_ns : 0,
		       .flags = p->tombstone ? SBFS_REC_TOMBSTONE : 0 };
	r.headers = sbfs_hdrs_array(p->hdrs, &r.n_headers);
	size_t klen;
	r.key = sbfs_pending_key(p, nkey, &klen);
	r.key_len = (uint32_t)klen;
	if (p->tombstone && (r.value_len || !r.key_len))
		return -EINVAL; /* a tombstone is a key and no payload */
	if (p->keyview && !r.key_len)
		return -EINVAL; /* a temporary name in .keys/ that is no key's */
	sbfs_tentry *te = p->te;
	int rc;
	sbfs_topic *t = sbfs_topic_handle(fs, te);
	if (exact && p->committed) {
		rc = -EPERM; /* that offset is taken now: by this file's first record */
	} else if (exact) {
		pthread_mutex_lock(&te->wlock);
		/* an emptied topic may start anew: the store must know it is empty */
		rc = sbfs_drop_hidden_locked(fs, te, t, 1);
		if (rc == 0) {
			pthread_rwlock_rdlock(&te->alock);
			rc = fs->b->ops->append_at(t, at, &r, 1);
			pthread_rwlock_unlock(&te->alock);
		}
		pthread_mutex_unlock(&te->wlock);
		if (rc == -EINVAL)
			rc = -EPERM;
	} else {
		pthread_rwlock_rdlock(&te->alock);
		rc = fs->b->ops->append(t, &r, 1, NULL);
		pthread_rwlock_unlock(&te->alock);
	}
	if (rc == 0) {
		p->base += p->len;
		p->len = 0;
		p->dirty = 0;
		p->committed = 1;
		/* the headers were that record's; a later one gets those set after */
		sbfs_hdrs_free(p->hdrs);
		p->hdrs = NULL;
		sbfs_notify_kick(fs);
	}
	return rc;
}

/*
 * The opener's close: append what was written, after the files of the
 * topic closed unwritten before (pending_empty.c). Closed unwritten
 * itself, the file is counted among those until its release appends it.
 */
int sbfs_pending_flush(sbfs *fs, sbfs_pending *p)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	int linked = p->linked, held = sbfs_pending_hold_locked(p, 1);
	if (linked && !held) {
		sbfs_pending_empty_wait_locked(fs, p->te, atomic_load(&p->closed_empty) ? p->empty_seq : UINT64_MAX);
		linked = p->linked; /* an rm or a rename may have come meanwhile */
	}
	pthread_mutex_lock(&p->lock);
	int commit = linked && !held && p->dirty;
	if (linked && !held && !p->dirty && !p->committed && !p->failed)
		sbfs_pending_empty_mark_locked(fs, p);
	pthread_mutex_unlock(&fs->plock);
	if (commit && (rc = sbfs_pending_commit(fs, p)))
		p->failed = rc; /* the caller is told: no try again at the release */
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void sbfs_pending_abandon(sbfs *fs, sbfs_pending *p)
{
	pthread_mutex_lock(&fs->plock);
	int last = --p->opens == 0;
	/* a held file was closed by its writer: unmount appends it */
	int keep = p->held && p->linked;
	if (last && p->linked && !keep)
		sbfs_pending_unlink_locked(fs, p);
	pthread_mutex_unlock(&fs->plock);
	if (last && !keep)
		sbfs_pending_free(p);
}

/*
 * The last release appends what its close did not: a file closed unwritten
 * (after those of the topic closed unwritten before it), or one closed by
 * others only. A file closed unwritten stays in the list, counted (what
 * waits for it comes after its record), and open (nothing else frees or
 * takes it) until its record is appended.
 */
int sbfs_pending_release(sbfs *fs, sbfs_pending *p)
{
	int rc = 0;
	pthread_mutex_lock(&fs->plock);
	int linked = p->linked, held = sbfs_pending_hold_locked(p, 0);
	int empty = p->opens == 1 && linked && !held && atomic_load(&p->closed_empty);
	if (empty) {
		sbfs_pending_empty_wait_locked(fs, p->te, p->empty_seq);
		linked = p->linked; /* an rm meanwhile: nothing to append */
	} else {
		p->opens--;
	}
	int last = empty || p->opens == 0;
	if (last && linked && !held && !empty)
		sbfs_pending_unlink_locked(fs, p); /* its record is the file now */
	if (last && !held)
		sbfs_pending_retiring_locked(fs, p); /* an open of it waits for its ghost */
	pthread_mutex_unlock(&fs->plock);
	if (held)
		return 0; /* it waits for its rename (or unlink) */
	pthread_mutex_lock(&p->lock);
	if (linked && !p->failed && (p->dirty || (last && !p->committed)))
		rc = sbfs_pending_commit(fs, p);
	pthread_mutex_unlock(&p->lock);
	if (empty) {
		pthread_mutex_lock(&fs->plock);
		p->opens--;
		if (p->linked)
			sbfs_pending_unlink_locked(fs, p); /* uncounts it */
		else
			sbfs_pending_empty_unmark_locked(fs, p);
		pthread_mutex_unlock(&fs->plock);
	}
	if (last)
		sbfs_pending_retire(fs, p);
	return rc;
}
