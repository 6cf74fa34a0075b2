/*
 * pending_hold.c - files being created under a temporary name: held at
 * their close, and renamed (pending.c has the files' life).
 *
 * A temporary name (starting with '.', or ending in ".tmp") is not a record
 * at its close: the file is held, its attributes still settable, until it
 * is renamed within the topic (then it is appended under the final name:
 * rsync closes its temp file, sets its times, mode and xattrs, then renames
 * it), unlinked (nothing is appended), or left alone for SBFS_HOLD_NS after
 * its last close, or the daemon unmounts (then it is appended under its own
 * name: a close that succeeded never loses data; but rsync's temporary
 * file of a record, .DIGITS.XXXXXX, is what a killed restore left, cut
 * short, and is dropped, logged, so that the rerun can restore that
 * offset: restore_temp()).
 *
 * In TOPIC/.keys/ only rsync's temporary name (.NAME.XXXXXX) is held; were
 * it no key's name, such a file would get its key from its rename, and be
 * dropped, logged, if its hold ended first.
 *
 * The holds' ends are here too: after SBFS_HOLD_NS (sbfs_pending_expire,
 * the notifier) and at unmount (sbfs_pending_free_all, which also appends
 * a file made by mknod and never opened).
 */
#include "fs.h"
#include "pending_impl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A temporary name: its file becomes a record when renamed, not at close. */
static int temp_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' || (n > 4 && strcmp(name + n - 4, ".tmp") == 0);
}

/* In .keys/ a name is a key, and a key may start with '.': only rsync's
 * temporary name (.NAME.XXXXXX, X alphanumeric) waits for its rename. */
int sbfs_pending_temp_key_name(const char *name)
{
	size_t n = strlen(name);
	if (n < 9 || name[0] != '.' || name[n - 7] != '.')
		return 0;
	for (size_t i = n - 6; i < n; i++)
		if (!isalnum((unsigned char)name[i]))
			return 0;
	return 1;
}

static int temp_in(const sbfs_pending *p, const char *name)
{
	return p->keyview ? sbfs_pending_temp_key_name(name) : temp_name(name);
}

/* rsync's temporary file of a record (.DIGITS.XXXXXX, DIGITS an offset
 * the tree names): held at its hold's end or at unmount, it is what a
 * killed restore left, cut short. Appended, it would take that offset and
 * no rerun could put the record there: it is dropped instead. */
static int restore_temp(const sbfs_pending *p)
{
	size_t n = strlen(p->name);
	char digits[32];
	uint64_t off;
	if (p->keyview || !sbfs_pending_temp_key_name(p->name) || n - 8 >= sizeof digits)
		return 0;
	memcpy(digits, p->name + 1, n - 8);
	digits[n - 8] = '\0';
	return sbfs_parse_offset(digits, &off) == 0;
}

/* A held file whose hold ends (after SBFS_HOLD_NS, or at unmount, `when`
 * saying which): appended under its own name (a close that succeeded never
 * loses data), unless restore_temp(), or in .keys/ its name is no key's
 * (then dropped); logged either way.
 * p is out of the list, nobody has it open. */
static void hold_end(sbfs *fs, sbfs_pending *p, const char *when)
{
	pthread_mutex_lock(&p->lock);
	if (restore_temp(p)) {
		sbfs_log("%s: %s/%s, rsync's temporary file of record %.*s, was never renamed: "
			 "an interrupted restore; its %zu bytes dropped, rerun the restore",
			 when, p->te->name, p->name, (int)strlen(p->name) - 8, p->name + 1, p->len);
	} else if (p->keyview && !p->key_len) {
		sbfs_log("%s: %s/.keys/%s was never renamed, and that name is no key's: "
			 "its %zu bytes dropped", when, p->te->name, p->name, p->len);
	} else {
		if (!p->stamp_ns) /* the time of its writes, not of the hold's end */
			p->stamp_ns = p->mtime_ns;
		int rc = sbfs_pending_commit(fs, p);
		sbfs_log("%s: %s/%s was never renamed: %s under that name", when, p->te->name,
			 p->name, rc ? sbfs_strerror(rc) : "appended");
	}
	pthread_mutex_unlock(&p->lock);
}

/* The order files left at unmount are appended in: those made by mknod
 * and never opened as they were made, then the held ones as they were
 * closed (the list is newest first: held files went in reverse). */
static int unmount_order(const void *a, const void *b)
{
	const sbfs_pending *x = *(sbfs_pending *const *)a, *y = *(sbfs_pending *const *)b;
	if (x->held != y->held)
		return x->held - y->held;
	if (x->held)
		return (x->held_ns > y->held_ns) - (x->held_ns < y->held_ns);
	return (x->ino > y->ino) - (x->ino < y->ino);
}

void sbfs_pending_free_all(sbfs *fs)
{
	pthread_mutex_lock(&fs->plock);
	sbfs_pending *p = fs->pending;
	fs->pending = NULL;
	pthread_mutex_unlock(&fs->plock);
	size_t n = 0, i = 0;
	for (sbfs_pending *q = p; q; q = q->next)
		n++;
	sbfs_pending **v = n ? malloc(n * sizeof(*v)) : NULL;
	if (v) { /* else (no memory) newest first */
		for (sbfs_pending *q = p; q; q = q->next)
			v[i++] = q;
		qsort(v, n, sizeof(*v), unmount_order);
		for (i = 0; i + 1 < n; i++)
			v[i]->next = v[i + 1];
		v[n - 1]->next = NULL;
		p = v[0];
		free(v);
	}
	while (p) {
		sbfs_pending *n = p->next;
		/* made by mknod and never opened: it counts as created and closed;
		 * held under a temporary name: its close succeeded, keep it */
		if (p->opens == 0 && !p->committed && p->held) {
			hold_end(fs, p, "unmount");
		} else if (p->opens == 0 && !p->committed) {
			pthread_mutex_lock(&p->lock);
			int rc = sbfs_pending_commit(fs, p);
			if (rc)
				sbfs_log("unmount: %s/%s, made and never opened, was not appended: %s",
					 p->te->name, p->name, sbfs_strerror(rc));
			pthread_mutex_unlock(&p->lock);
		}
		if (p->opens == 0)
			sbfs_pending_free(p);
		/* else an open file still points at it: the kernel releases it
		 * only if the session is still there, so let it go with the fh */
		p = n;
	}
}

void sbfs_pending_expire(sbfs *fs)
{
	int64_t now = mono_ns();
	for (;;) {
		sbfs_pending *p = NULL;
		pthread_mutex_lock(&fs->plock);
		/* the one closed first (the list is newest first) */
		for (sbfs_pending *q = fs->pending; q; q = q->next)
			if (q->held && q->opens == 0 && now - q->held_ns >= SBFS_HOLD_NS &&
			    (!p || q->held_ns <= p->held_ns))
				p = q;
		if (p)
			sbfs_pending_unlink_locked(fs, p);
		pthread_mutex_unlock(&fs->plock);
		if (!p)
			return;
		char when[48];
		snprintf(when, sizeof when, "%d s after its close",
			 (int)(SBFS_HOLD_NS / 1000000000));
		hold_end(fs, p, when);
		sbfs_pending_free(p);
	}
}

/* The writer closed a file under a temporary name (plock held): hold it.
 * Its hold dates from the close (at_flush), the order the unmount
 * appends held files in: a release comes after its close, when the kernel
 * gets to it, maybe after the next file's close, and only dates a hold
 * its close did not start. */
int sbfs_pending_hold_locked(sbfs_pending *p, int at_flush)
{
	if (!p->linked || !*p->name || !temp_in(p, p->name))
		return 0;
	if (at_flush || !p->held)
		p->held_ns = mono_ns();
	p->held = 1;
	return 1;
}

/*
 * rename within a topic. The source must be a file being created; a file
 * being created under the new name is replaced (unless RENAME_NOREPLACE):
 * dropped when closed (made by mknod, held under a temporary name), but
 * one another process is writing keeps its bytes, nameless, and is
 * appended at its close, as the README says of another writer of a name
 * (the rename of rsync's or an editor's temp file onto a name someone
 * writes lost that writer's acknowledged record).
 * A file already closed (held under a temporary name, or made by mknod)
 * that gets a final name is appended now, and the rename fails, leaving it
 * as it was, if that append does; one still open is appended at its close.
 */
static int rename_in(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
		     unsigned int flags, int keyview)
{
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	if (fs->cfg->read_only)
		return -EROFS;
	int digits = 0, rc = 0;
	uint64_t at = 0;
	unsigned char key[SBFS_KEYNAME_MAX];
	size_t klen = 0;
	char *nk = NULL;
	if (keyview) { /* in .keys/: the new name is the record's key */
		klen = *name ? sbfs_key_of_name(newname, key) : 0;
		if (!*name || (!klen && !sbfs_pending_temp_key_name(newname)))
			return -EINVAL; /* a temporary name may be no key's (create) */
		if (!(nk = malloc(klen ? klen : 1)))
			return -ENOMEM;
		memcpy(nk, key, klen);
	} else if ((rc = sbfs_pending_name_check(fs, te, sbfs_topic_handle(fs, te), newname, &digits,
						 &at))) {
		return rc == -EEXIST ? -EPERM : rc;
	}
	char *nn = strdup(newname);
	if (!nn) {
		free(nk);
		return -ENOMEM;
	}
	sbfs_pending *p = NULL, *q = NULL, *pdead = NULL, *qdead = NULL;
	pthread_mutex_lock(&fs->plock);
	for (sbfs_pending *x = fs->pending; x; x = x->next)
		if (sbfs_pending_named_live(x, te, name, keyview))
			p = x;
		else if (sbfs_pending_named_live(x, te, newname, keyview))
			q = x;
	if (!p) {
		rc = -ENOENT;
	} else if (q && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
	} else if (strcmp(name, newname) == 0) {
		rc = 0;
	} else if (q && q->opens > 0 && !q->held && (rc = sbfs_pending_unname_locked(q))) {
		; /* -ENOMEM: nothing changed */
	} else {
		int closed = p->held || p->opens == 0;
		int commit = closed && !temp_in(p, newname);
		pthread_mutex_lock(&p->lock);
		char *old = p->name, *okey = p->key;
		int odigits = p->digits;
		uint64_t oat = p->at;
		size_t oklen = p->key_len;
		p->name = nn;
		p->digits = digits;
		p->at = at;
		nn = NULL;
		if (keyview) {
			p->key = nk;
			p->key_len = klen;
			nk = NULL;
		}
		if (commit) {
			rc = sbfs_pending_commit(fs, p);
			if (rc) { /* as it was */
				nn = p->name;
				p->name = old;
				p->digits = odigits;
				p->at = oat;
				old = NULL;
				if (keyview) {
					nk = p->key;
					p->key = okey;
					p->key_len = oklen;
				}
			}
		}
		pthread_mutex_unlock(&p->lock);
		free(old);
		if (keyview && !nk)
			free(okey); /* replaced */
		if (rc == 0 && q && q->name[0]) { /* replaced (closed: mknod, held) */
			sbfs_pending_unlink_locked(fs, q);
			if (q->opens == 0)
				qdead = q;
		}
		if (rc == 0 && commit) {
			sbfs_pending_unlink_locked(fs, p); /* its record is the file now */
			if (p->opens == 0)
				pdead = p;
		} else if (rc == 0 && closed && temp_in(p, p->name)) {
			p->held = 1;
			p->held_ns = mono_ns();
		}
	}
	pthread_mutex_unlock(&fs->plock);
	if (qdead)
		sbfs_pending_free(qdead);
	if (pdead)
		sbfs_pending_free(pdead);
	free(nn);
	free(nk);
	return rc;
}

int sbfs_pending_rename(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
			unsigned int flags)
{
	return rename_in(fs, te, name, newname, flags, 0);
}

int sbfs_pending_rename_key(sbfs *fs, sbfs_tentry *te, const char *name, const char *newname,
			    unsigned int flags)
{
	return rename_in(fs, te, name, newname, flags, 1);
}
