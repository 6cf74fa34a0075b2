/*
 * handles.c - open files and directories (fuse_file_info.fh): every one is
 * on sbfs.handles, so that the daemon can end them at unmount (the kernel
 * sends no RELEASE after it).
 */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The process of thread tid (FUSE tells thread ids), or tid if unknown. */
static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	pid_t tgid = tid;
	if (!f)
		return tid;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "Tgid:", 5) == 0) {
			tgid = (pid_t)atoi(line + 5);
			break;
		}
	fclose(f);
	return tgid > 0 ? tgid : tid;
}

/* Are threads a and b of one process? 0: not in our pid namespace, cannot
 * tell: yes. (If a thread is gone, this says no.) */
static int same_process(pid_t a, pid_t b)
{
	return a == 0 || b == 0 || a == b || tgid_of(a) == tgid_of(b);
}

int sbfs_fh_is_opener(const sbfs_fh *h, pid_t pid)
{
	/* another thread of the opener's process? (if the opening thread is
	 * gone, this says no, and the release appends instead) */
	return same_process(pid, h->opener);
}

void sbfs_fh_set_key_writer(sbfs *fs, sbfs_fh *h, fuse_ino_t ino, fuse_ino_t pino, pid_t pid)
{
	pthread_mutex_lock(&fs->hlock);
	h->key_ino = ino;
	h->key_pino = pino;
	h->key_pid = pid;
	pthread_mutex_unlock(&fs->hlock);
}

int sbfs_fh_key_writer(sbfs *fs, fuse_ino_t ino, pid_t pid, fuse_ino_t *pino)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&fs->hlock);
	for (sbfs_fh *h = fs->handles; h; h = h->next)
		if (h->kind == K_PENDING && h->key_ino == ino && same_process(pid, h->key_pid)) {
			*pino = h->key_pino;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&fs->hlock);
	return rc;
}

sbfs_fh *sbfs_fh_new(sbfs *fs, enum sbfs_kind k, sbfs_tentry *te)
{
	sbfs_fh *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->kind = k;
	h->te = te;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&fs->hlock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->hlock);
	return h;
}

void sbfs_fh_free(sbfs *fs, sbfs_fh *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&fs->hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->hlock);
	if (h->view && fs->b) /* a .log reader's view of the stream (backend.h) */
		fs->b->ops->view_close(sbfs_topic_handle(fs, h->te), h->view);
	if (atomic_load(&h->memo) && fs->b)
		fs->b->ops->memo_free(atomic_load(&h->memo));
	for (size_t i = 0; i < h->nnames; i++)
		free(h->names[i]);
	free(h->names);
	free(h->name_inos);
	pthread_mutex_destroy(&h->lock);
	free(h->part);
	free(h->kbuf);
	free(h);
}

void sbfs_fh_publish(struct fuse_file_info *fi, sbfs_fh *h)
{
	atomic_store_explicit(&h->published, 1, memory_order_release);
	fi->fh = (uint64_t)(uintptr_t)h;
}

sbfs_fh *sbfs_fh_of(const struct fuse_file_info *fi)
{
	sbfs_fh *h = fi ? (sbfs_fh *)(uintptr_t)fi->fh : NULL;
	if (h)
		(void)atomic_load_explicit(&h->published, memory_order_acquire);
	return h;
}

sbfs_fh *sbfs_fh_any(sbfs *fs)
{
	pthread_mutex_lock(&fs->hlock);
	sbfs_fh *h = fs->handles;
	pthread_mutex_unlock(&fs->hlock);
	return h;
}
