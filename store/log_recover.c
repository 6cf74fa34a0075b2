/*
 * log_recover.c - opening a log after a clean close or a crash: find its
 * segments, check what might not have been synced (the last segment, and
 * sealed segments without a valid index), cut a torn or corrupt tail and
 * every segment after a break, rebuild indexes, and drop what lies below the
 * persisted start.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "fsutil.h"
#include "log.h"
#include "log_impl.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(sb_log *l, const char *msg)
{
	if (l->opt.report)
		l->opt.report(l->opt.report_arg, l->name, msg);
}

/* List the segment bases in l->dir, sorted; remove *.tmp leftovers. */
static int list_segments(sb_log *l, uint64_t **out, size_t *n)
{
	DIR *d = opendir(l->dir);
	struct dirent *de;
	uint64_t *v = NULL, base;
	size_t cnt = 0, cap = 0;
	int rc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0 && !l->read_only) {
			char p[PATH_MAX];
			if (sb_path(p, l->dir, de->d_name) == 0)
				l->io->unlink(l->io->ctx, p);
			continue;
		}
		if (sb_seg_name_parse(de->d_name, SB_SEG_SUFFIX, &base))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				goto out_close;
			}
			v = nv;
		}
		v[cnt++] = base;
	}
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*out = v;
	*n = cnt;
	v = NULL;
out_close:
	free(v);
	closedir(d);
	return rc;
}

/* Remove segment files bases[from..n) (they follow a break in the log). */
static void cut_after(sb_log *l, const uint64_t *bases, size_t from, size_t n)
{
	char name[32], path[PATH_MAX], msg[256];

	for (size_t i = from; i < n; i++) {
		snprintf(msg, sizeof(msg), "removed segment %020llu: it follows a break in the log",
			 (unsigned long long)bases[i]);
		report(l, msg);
		if (l->read_only)
			continue;
		sb_seg_name(name, bases[i], SB_SEG_SUFFIX);
		if (sb_path(path, l->dir, name) == 0)
			l->io->unlink(l->io->ctx, path);
		sb_seg_name(name, bases[i], SB_IDX_SUFFIX);
		if (sb_path(path, l->dir, name) == 0)
			l->io->unlink(l->io->ctx, path);
	}
}

/* Forget (and, read-write, delete) every segment opened so far. */
static void drop_opened(sb_log *l)
{
	for (size_t i = 0; i < l->nsegs; i++) {
		if (l->read_only)
			sb_segment_close(l->segs[i], 0);
		else
			sb_segment_remove(l->segs[i]);
	}
	l->nsegs = 0;
}

/*
 * Is there proof that records after segment i were synced? A clean close,
 * or a later segment with a valid index file (written only after its sync,
 * and segments are synced in order).
 */
static int later_durable(sb_log *l, const uint64_t *bases, size_t i, size_t n, int clean_ok)
{
	if (clean_ok)
		return 1;
	for (size_t j = i + 1; j < n; j++) {
		char name[32], sp[PATH_MAX], ip[PATH_MAX];
		struct stat st;
		sb_index *ix;
		int64_t max_ts;
		sb_seg_name(name, bases[j], SB_SEG_SUFFIX);
		if (sb_path(sp, l->dir, name) || stat(sp, &st) || st.st_size > UINT32_MAX)
			continue;
		sb_seg_name(name, bases[j], SB_IDX_SUFFIX);
		if (sb_path(ip, l->dir, name) == 0 &&
		    sb_index_load(ip, bases[j], (uint32_t)st.st_size, 1, &ix, &max_ts) == 0) {
			sb_index_free(ix);
			return 1;
		}
	}
	return 0;
}

/*
 * Damage in segment i, before the tail. Returns 0 to cut the log there (what
 * follows may never have been synced: a torn write; or the caller asked to
 * repair), or SB_ECORRUPT to refuse, when synced records follow.
 */
static int on_damage(sb_log *l, const uint64_t *bases, size_t i, size_t n, int clean_ok, const char *what)
{
	char msg[512];

	if (l->opt.repair || l->read_only || !later_durable(l, bases, i, n, clean_ok))
		return 0;
	snprintf(msg, sizeof(msg),
		 "segment %020llu: %s, but later segments hold synced records: not cutting the log "
		 "(streambus verify shows the damage; streambus recover --cut cuts the log there)",
		 (unsigned long long)bases[i], what);
	report(l, msg);
	return SB_ECORRUPT;
}

int sb_log_recover(sb_log *l)
{
	uint64_t *bases = NULL, start = 0, meta_start;
	size_t n = 0;
	sb_clean_rec clean = {UINT64_MAX, 0};
	uint8_t buf[SB_CLEAN_SIZE > SB_META_SIZE ? SB_CLEAN_SIZE : SB_META_SIZE];
	int rc, changed = 0, have_clean = 0, clean_ok = 0, last_active = 0;

	rc = list_segments(l, &bases, &n);
	if (rc)
		return rc;
	if (sb_read_small(l->dir, SB_META_NAME, buf, SB_META_SIZE) == 0 && sb_meta_decode(buf, &meta_start) == 0)
		start = meta_start;
	if (sb_read_small(l->dir, SB_CLEAN_NAME, buf, SB_CLEAN_SIZE) == 0 && sb_clean_decode(buf, &clean) == 0)
		have_clean = 1;
	if (have_clean && n && clean.last_base == bases[n - 1]) {
		char path[PATH_MAX], name[32];
		struct stat st;
		sb_seg_name(name, bases[n - 1], SB_SEG_SUFFIX);
		clean_ok = sb_path(path, l->dir, name) == 0 && stat(path, &st) == 0 &&
			   (uint64_t)st.st_size == clean.last_len;
	}

	for (size_t i = 0; i < n; i++) {
		int last = i + 1 == n, flags = 0, ch = 0;
		sb_segment *s = NULL;

		if (!last)
			flags = SB_SEG_TRUST_INDEX;
		else {
			flags = SB_SEG_ACTIVE;
			if (clean_ok)
				flags |= SB_SEG_TRUST_INDEX;
		}
		rc = sb_segment_open(&l->sp, bases[i], flags, &ch, &s);
		if (rc == SB_ECORRUPT) {
			/* A bad header: the log ends before this segment. */
			if ((rc = on_damage(l, bases, i, n, clean_ok, "bad segment header")))
				goto out_free;
			if (i == 0 && start < bases[0])
				start = bases[0];
			cut_after(l, bases, i, n);
			n = i;
			break;
		}
		if (rc)
			goto out_free;
		changed |= ch;
		if (l->nsegs) {
			sb_segment *prev = l->segs[l->nsegs - 1];
			if (sb_segment_next(prev) != sb_segment_base(s) ||
			    sb_segment_stream_end(prev) != sb_segment_base_stream(s)) {
				if (bases[i] <= start) {
					/* A break below the start: what precedes it
					 * are stale files of an interrupted removal. */
					drop_opened(l);
				} else {
					sb_segment_close(s, 0);
					if ((rc = on_damage(l, bases, i - 1, n, clean_ok, "a gap in the offsets after it")))
						goto out_free;
					cut_after(l, bases, i, n);
					n = i;
					break;
				}
			}
		}
		if (sb_segment_damaged(s)) {
			if ((rc = on_damage(l, bases, i, n, clean_ok, "a torn or corrupt record")) ||
			    (rc = sb_segment_cut(s))) {
				sb_segment_close(s, 0);
				goto out_free;
			}
			changed = 1;
			cut_after(l, bases, i + 1, n);
			n = i + 1;
			last = 1; /* opened as a sealed one: reopened below */
		}
		rc = sb_log_segs_push(l, s);
		if (rc) {
			sb_segment_close(s, 0);
			goto out_free;
		}
		last_active = last && (flags & SB_SEG_ACTIVE);
		if (last)
			break;
	}
	/* After a cut the last segment was opened as a sealed one: reopen it
	 * as the active one (mapped for appending). */
	if (l->nsegs && !last_active) {
		sb_segment *s = l->segs[l->nsegs - 1], *r = NULL;
		uint64_t base = sb_segment_base(s);
		int ch = 0;
		sb_segment_close(s, 0);
		l->nsegs--;
		/* It was checked (and reported) once already. */
		rc = sb_segment_open(&l->sp, base, SB_SEG_ACTIVE | SB_SEG_TRUST_INDEX | SB_SEG_QUIET, &ch, &r);
		if (rc)
			goto out_free;
		changed |= ch;
		rc = sb_log_segs_push(l, r);
		if (rc) {
			sb_segment_close(r, 0);
			goto out_free;
		}
	}
	if (!l->nsegs) {
		sb_segment *s;
		if (l->read_only) {
			rc = -ENOENT;
			goto out_free;
		}
		rc = sb_segment_create(&l->sp, start, 0, &s);
		if (rc)
			goto out_free;
		rc = sb_log_segs_push(l, s);
		if (rc) {
			sb_segment_close(s, 0);
			goto out_free;
		}
		changed = 1;
		last_active = 1;
	}
	sb_segment *last = sb_log_active(l);
	atomic_store(&l->next, sb_segment_next(last));
	atomic_store(&l->stream_end, sb_segment_stream_end(last));
	if (start < sb_segment_base(l->segs[0]))
		start = sb_segment_base(l->segs[0]);
	if (start > atomic_load(&l->next)) {
		/* The start is past the data: a copy of the directory that took
		 * a newer `meta` than its segments, or unsynced records lost.
		 * Keep the records there are rather than none. */
		char msg[160];
		snprintf(msg, sizeof(msg), "start %llu is past the last record; the log starts at %llu",
			 (unsigned long long)start, (unsigned long long)sb_segment_base(l->segs[0]));
		report(l, msg);
		start = sb_segment_base(l->segs[0]);
	}
	atomic_store(&l->start, start);
	atomic_store(&l->stream_start, sb_log_stream_pos_of(l, start));
	if (!l->read_only) {
		for (size_t i = 0; i + 1 < l->nsegs; i++) {
			rc = sb_segment_save_index(l->segs[i]);
			if (rc)
				goto out_free;
		}
		size_t k = 0;
		while (k + 1 < l->nsegs && sb_segment_next(l->segs[k]) <= start)
			k++;
		rc = sb_log_drop_front(l, k);
		if (rc)
			goto out_free;
		if (have_clean) {
			char path[PATH_MAX];
			if (sb_path(path, l->dir, SB_CLEAN_NAME) == 0)
				l->io->unlink(l->io->ctx, path);
		}
		if (changed)
			rc = sb_fsync_dir(l->io, l->dir);
	}
out_free:
	free(bases);
	return rc;
}

