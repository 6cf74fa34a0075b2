/*
 * log_compress.c - swapping a log's sealed segments for their compressed
 * form (format.h, "Compressed segment"), in the background.
 *
 * The swap of segment NNNN.seg:
 *   1. build NNNN.zseg.tmp from the segment's file (its own descriptor and
 *      mapping: nothing of the log is held meanwhile), checking every
 *      record; fdatasync it;
 *   2. under append_mu (so that no retention or removal drops the segment
 *      meanwhile): rename it over NNNN.seg; then, with no lock held (the
 *      appender must not wait for a directory fsync), fsync the directory
 *      and open it; then under append_mu again, if retention or a removal
 *      has not dropped the segment meanwhile, put it in the segment's
 *      place in the array (seg_lock exclusive: readers finish with the old
 *      one first);
 *   3. remove NNNN.idx (a compressed segment carries its own block table)
 *      and close the old segment.
 * The background compressor (sb_log_compress_bg) builds in a thread of its
 * own at SCHED_IDLE: zstd's CPU goes to appenders first (within the process
 * a nice value only shares its CPU out by weight: at nice 10 an appender on
 * a busy machine lost ~10% of its share to the compressor). Only the build
 * holds no lock: the steps that take append_mu or seg_lock stay in the
 * compressor's own thread at its normal priority, so that no appender ever
 * waits on a lock held by a thread that others keep off the CPU.
 * A crash before the rename leaves a *.tmp that the next open removes; after
 * it, the compressed file (an index file left beside it is removed at open).
 * Readers that mapped the old file keep their mapping of the old inode.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "fsutil.h"
#include "log.h"
#include "log_impl.h"

static void note(sb_log *l, const char *fmt, const char *a, const char *b)
{
	char msg[768];

	if (!l->opt.report)
		return;
	snprintf(msg, sizeof(msg), fmt, a, b);
	l->opt.report(l->opt.report_arg, l->name, msg);
}

void sb_log_rewrite_failed(sb_log *l, const char *path, int rc)
{
	int none = 0;

	if (atomic_compare_exchange_strong(&l->rewrite_err, &none, rc))
		note(l, "%s: its rewritten file is in place but not in use (%s): segments are not compressed "
			"or compacted again until the topic is reopened", strrchr(path, '/') + 1, sb_strerror(rc));
}

/* The oldest sealed, synced, plain segment with records; *base, *len. */
static sb_segment *pick(sb_log *l, uint64_t *base, uint64_t *len)
{
	sb_segment *s = NULL;

	pthread_rwlock_rdlock(&l->seg_lock);
	for (size_t i = 0; i + 1 < l->nsegs && !s; i++) {
		sb_segment *t = l->segs[i];
		if (!sb_segment_zseg(t) && !sb_segment_unsynced(t) && !sb_segment_zskip(t) &&
		    !sb_segment_compacted(t) && /* compressed blocks have dense offsets */
		    sb_segment_len(t) > SB_SEG_HDR) {
			s = t;
			*base = sb_segment_base(t);
			*len = sb_segment_len(t);
		}
	}
	pthread_rwlock_unlock(&l->seg_lock);
	return s;
}

/* Step 1: the compressed file at tmp, synced. */
static int build(sb_log *l, const char *path, const char *tmp, uint64_t len, unsigned codec)
{
	const sb_io *io = l->io;
	char why[256] = "";
	uint64_t stored;
	int in, out, rc;

	in = io->open(io->ctx, path, O_RDONLY, 0);
	if (in < 0)
		return in == -ENOENT ? -ESTALE : in; /* dropped meanwhile */
	uint8_t *map = mmap(NULL, len, PROT_READ, MAP_SHARED, in, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_in;
	}
	out = io->open(io->ctx, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		rc = out;
		goto out_unmap;
	}
	rc = sb_zseg_build(io, out, map, len, codec, l->cfg.compression_block_bytes, &stored, why, sizeof(why));
	if (!rc)
		rc = io->fdatasync(io->ctx, out);
	int rc2 = io->close(io->ctx, out);
	if (!rc)
		rc = rc2;
	if (rc == SB_ECORRUPT)
		note(l, "%s: not compressed: %s", strrchr(path, '/') + 1, why);
	if (rc)
		io->unlink(io->ctx, tmp);
out_unmap:
	munmap(map, len);
out_in:
	io->close(io->ctx, in);
	return rc;
}

typedef struct build_job {
	sb_log *l;
	const char *path, *tmp;
	uint64_t len;
	unsigned codec;
	int rc;
} build_job;

static void *build_idle_main(void *arg)
{
	build_job *j = arg;
	struct sched_param sp = {0};

	/* best effort: where SCHED_IDLE is refused it builds at its parent's */
	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	j->rc = build(j->l, j->path, j->tmp, j->len, j->codec);
	return NULL;
}

/* build() in a thread of its own at SCHED_IDLE (in this one if none can be
 * made); this thread waits, holding no lock. */
static int build_idle(sb_log *l, const char *path, const char *tmp, uint64_t len, unsigned codec)
{
	build_job j = {.l = l, .path = path, .tmp = tmp, .len = len, .codec = codec};
	pthread_t t;

	if (pthread_create(&t, NULL, build_idle_main, &j) != 0)
		return build(l, path, tmp, len, codec);
	pthread_join(t, NULL);
	return j.rc;
}

/* Where s is in the array (not the newest), or -1: gone. Base too: the
 * memory of a dropped segment may hold a newer one. With seg_lock held. */
static long seg_index(sb_log *l, const sb_segment *s, uint64_t base)
{
	for (size_t i = 0; i + 1 < l->nsegs; i++)
		if (l->segs[i] == s && sb_segment_base(s) == base)
			return (long)i;
	return -1;
}

/* Is s still in the log (append_mu held)? */
static int still_here(sb_log *l, const sb_segment *s, uint64_t base)
{
	pthread_rwlock_rdlock(&l->seg_lock);
	int here = !atomic_load(&l->removed) && seg_index(l, s, base) >= 0;
	pthread_rwlock_unlock(&l->seg_lock);
	return here;
}

/* Step 2: 0, or -ESTALE when s is gone (dropped before the rename, or
 * after it: retention then removed the compressed file in its place). */
static int swap(sb_log *l, sb_segment *s, uint64_t base, const char *path, const char *tmp)
{
	const sb_io *io = l->io;
	sb_segment *ns = NULL;
	int ch = 0, rc;

	pthread_mutex_lock(&l->append_mu);
	rc = still_here(l, s, base) ? io->rename(io->ctx, tmp, path) : -ESTALE;
	pthread_mutex_unlock(&l->append_mu);
	if (rc)
		return rc;
	/* The file is compressed now, whatever happens next: on failure the
	 * old segment (its mapping of the old file) serves until reopened,
	 * and nothing rewrites from its path meanwhile. */
	rc = sb_fsync_dir(io, l->dir);
	if (!rc)
		rc = sb_segment_open(&l->sp, base, SB_SEG_QUIET, &ch, &ns);
	pthread_mutex_lock(&l->append_mu);
	pthread_rwlock_wrlock(&l->seg_lock);
	long i = atomic_load(&l->removed) ? -1 : seg_index(l, s, base);
	if (i >= 0 && !rc) {
		sb_segment_set_prior_max(ns, sb_segment_prior_max(s)); /* for the seek by time */
		/* its stream where the old one's was: moved up in memory at the
		 * open when a stream gap is above it (log_recover.c, restream),
		 * which the file's header, written from the old file's, is not */
		if (sb_segment_base_stream(ns) != sb_segment_base_stream(s))
			sb_segment_rebase_stream(ns, sb_segment_base_stream(s));
		l->segs[i] = ns;
		ns = NULL;
	}
	pthread_rwlock_unlock(&l->seg_lock);
	pthread_mutex_unlock(&l->append_mu);
	if (ns)
		sb_segment_close(ns, 0);
	if (i < 0)
		return -ESTALE;
	if (rc) /* the new file is in place, not in use */
		sb_log_rewrite_failed(l, path, rc);
	return rc;
}

/* Compress one segment (idle: build at SCHED_IDLE); *did: one was tried. */
static int compress_one(sb_log *l, unsigned codec, int idle, int *did)
{
	char tmp[PATH_MAX + 16], path[PATH_MAX];
	uint64_t base = 0, len = 0;
	sb_segment *s;
	int rc;

	*did = 0;
	if (!(s = pick(l, &base, &len)))
		return 0;
	*did = 1;
	/* s may be dropped (retention) from here on: `build` and `swap` check. */
	char name[32];
	sb_seg_name(name, base, SB_SEG_SUFFIX);
	if ((rc = sb_path(path, l->dir, name)))
		return rc;
	snprintf(tmp, sizeof(tmp), "%.*s.zseg.tmp", (int)(strlen(path) - strlen(SB_SEG_SUFFIX)), path);
	rc = idle ? build_idle(l, path, tmp, len, codec) : build(l, path, tmp, len, codec);
	if (rc == SB_ECORRUPT) { /* damage: stays plain */
		pthread_rwlock_rdlock(&l->seg_lock);
		for (size_t i = 0; i + 1 < l->nsegs; i++)
			if (l->segs[i] == s)
				sb_segment_set_zskip(s);
		pthread_rwlock_unlock(&l->seg_lock);
		return 0;
	}
	if (rc)
		return rc == -ESTALE ? 0 : rc;
	if ((rc = swap(l, s, base, path, tmp))) {
		l->io->unlink(l->io->ctx, tmp);
		return rc == -ESTALE ? 0 : rc;
	}
	/* Step 3. */
	char idx[PATH_MAX + 16];
	snprintf(idx, sizeof(idx), "%.*s%s", (int)(strlen(path) - strlen(SB_SEG_SUFFIX)), path, SB_IDX_SUFFIX);
	l->io->unlink(l->io->ctx, idx);
	sb_segment_close(s, 0);
	return 0;
}

static int compress(sb_log *l, int idle, size_t *done)
{
	unsigned codec = l->cfg.compression == SB_COMPRESS_ZSTD ? SB_CODEC_ZSTD : SB_CODEC_LZ4;
	size_t n = 0;
	int rc = 0, did = 1;

	if (l->read_only)
		return -EROFS;
	if ((rc = atomic_load(&l->rewrite_err)))
		return rc;
	pthread_mutex_lock(&l->compress_mu);
	while (did && !atomic_load(&l->stop_rewrites) && !(rc = compress_one(l, codec, idle, &did)) &&
	       !atomic_load(&l->removed))
		n += did;
	pthread_mutex_unlock(&l->compress_mu);
	if (done)
		*done = n;
	return rc;
}

int sb_log_compress(sb_log *l, size_t *done)
{
	return compress(l, 0, done);
}

int sb_log_compress_bg(sb_log *l, size_t *done)
{
	return compress(l, 1, done);
}
