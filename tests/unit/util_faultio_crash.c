/*
 * util_faultio_crash.c - the power loss of util_faultio: fio_crash_apply()
 * keeps, drops or garbles what was not synced (see util_faultio.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_faultio_impl.h"
#include "util_store.h"

/*
 * What becomes of unsynced op (or changed block) j of n of one file, oldest
 * first: 0 kept, 1 dropped, 2 garbled (only when can_garble). cut: the
 * file's random point for PREFIX.
 */
static unsigned choose(int mode, uint64_t *rng, size_t j, size_t n, size_t cut, int can_garble)
{
	switch (mode) {
	case FIO_CRASH_KEEP_ALL:
		return 0;
	case FIO_CRASH_DROP_ALL:
		return 1;
	case FIO_CRASH_GARBAGE:
		return can_garble ? 2 : 0;
	case FIO_CRASH_REORDER:
		if (n >= 2 && (j == 0 || j == n - 1))
			return j == 0 ? 1 : 0;
		return (unsigned)(ut_splitmix(rng) & 1);
	case FIO_CRASH_PREFIX:
		return j < cut ? 0 : 1;
	default:
		return (unsigned)(ut_splitmix(rng) % (can_garble ? 3 : 2));
	}
}

static off_t cur_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) < 0 ? 0 : st.st_size;
}

static void undo_data(struct ffile *ff, const struct dop *d)
{
	static const uint8_t zeros[4096];
	off_t sz = cur_size(ff->fd);

	if (d->saved_n && pwrite(ff->fd, d->saved, d->saved_n, d->saved_off) < 0)
		return;
	if (d->post_size > d->old_size) { /* it grew the file */
		if (sz <= d->post_size) {
			if (ftruncate(ff->fd, d->old_size) < 0)
				return;
		} else if (d->is_write) { /* a later kept op lies beyond: zero ours */
			off_t s = d->off > d->old_size ? d->off : d->old_size;
			for (off_t p = s; p < d->off + (off_t)d->n; p += sizeof(zeros)) {
				size_t k = (size_t)(d->off + (off_t)d->n - p);
				if (pwrite(ff->fd, zeros, k < sizeof(zeros) ? k : sizeof(zeros), p) < 0)
					return;
			}
		}
	} else if (d->post_size < d->old_size && sz < d->old_size) { /* it shrank it */
		if (ftruncate(ff->fd, d->old_size) < 0)
			return;
		if (d->saved_n && pwrite(ff->fd, d->saved, d->saved_n, d->saved_off) < 0)
			return;
	}
}

static void garble(struct ffile *ff, const struct dop *d, int whole, uint64_t *rng)
{
	uint8_t buf[4096];
	size_t s, e;

	if (!d->n)
		return;
	s = whole ? 0 : (size_t)(ut_splitmix(rng) % d->n);
	e = whole ? d->n : s + 1 + (size_t)(ut_splitmix(rng) % (d->n - s));
	for (size_t p = s; p < e; p += sizeof(buf)) {
		size_t k = e - p < sizeof(buf) ? e - p : sizeof(buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = (uint8_t)ut_splitmix(rng);
		if (pwrite(ff->fd, buf, k, d->off + (off_t)p) < 0)
			return;
	}
}

/* Snapshot mode: blocks that differ from the snapshot are kept, dropped or
 * garbled; the size is the current or the snapshot one. */
static void crash_snap(struct ffile *ff, int mode, uint64_t *rng, fio_crash_stats *s)
{
	enum { BLK = 512 };
	size_t cur_len;
	uint8_t *cur = fio__read_fd_all(ff->fd, &cur_len);
	if (!cur)
		return;
	size_t snap_len = ff->snap ? ff->snap_len : 0;
	size_t len = cur_len > snap_len ? cur_len : snap_len;
	uint8_t *out = calloc(1, len + 1);
	if (!out) {
		free(cur);
		return;
	}
	memcpy(out, cur, cur_len);
	size_t nchanged = 0, j = 0;
	for (size_t b = 0; b < len; b += BLK) {
		size_t e = b + BLK < len ? b + BLK : len;
		nchanged += !(e <= cur_len && e <= snap_len && !memcmp(cur + b, ff->snap + b, e - b));
	}
	size_t cut = (size_t)(ut_splitmix(rng) % (nchanged + 1));
	for (size_t b = 0; b < len; b += BLK) {
		size_t e = b + BLK < len ? b + BLK : len;
		int same = e <= cur_len && e <= snap_len && !memcmp(cur + b, ff->snap + b, e - b);
		if (same)
			continue;
		unsigned c = choose(mode, rng, j++, nchanged, cut, 1);
		if (c == 0) {
			s->kept++;
			continue;
		}
		if (c == 1) {
			s->dropped++;
			for (size_t i = b; i < e; i++)
				out[i] = i < snap_len ? ff->snap[i] : 0;
		} else {
			s->garbled++;
			int whole = mode == FIO_CRASH_GARBAGE;
			size_t gs = whole ? b : b + (size_t)(ut_splitmix(rng) % (e - b));
			size_t ge = whole ? e : gs + 1 + (size_t)(ut_splitmix(rng) % (e - gs));
			/* powersafe overwrite: bytes the crash did not rewrite stay */
			for (size_t i = gs; i < ge; i++)
				if (i >= snap_len || i >= cur_len || cur[i] != ff->snap[i])
					out[i] = (uint8_t)ut_splitmix(rng);
		}
	}
	size_t final = mode == FIO_CRASH_KEEP_ALL || mode == FIO_CRASH_GARBAGE ? cur_len
		: mode == FIO_CRASH_DROP_ALL ? snap_len
		: (ut_splitmix(rng) & 1) ? cur_len : snap_len;
	if (ftruncate(ff->fd, (off_t)final) == 0 && final)
		(void)!pwrite(ff->fd, out, final, 0);
	free(out);
	free(cur);
}

int fio_crash_apply(fio *f, uint64_t seed, int mode, fio_crash_stats *st)
{
	fio_crash_stats s = {0};
	uint64_t rng = seed * 0x2545f4914f6cdd1dull + 1;

	pthread_mutex_lock(&f->mu);
	f->crashed = 1;
	for (size_t i = 0; i < f->nfiles; i++) {
		struct ffile *ff = &f->files[i];
		struct stat fst;
		unsigned before = s.dropped + s.garbled;
		/* linked under its own name (a stash link does not count) */
		char p[64], name[4096];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", ff->fd);
		ssize_t k = readlink(p, name, sizeof(name) - 1);
		name[k < 0 ? 0 : k] = 0;
		size_t nl = strlen(name);
		/* LOG_DIR/.lock's holder note is advisory, never synced: not data */
		int linked = fstat(ff->fd, &fst) == 0 && k > 0 &&
			     !(nl > 10 && !strcmp(name + nl - 10, " (deleted)")) &&
			     !(nl > 6 && !strcmp(name + nl - 6, "/.lock"));
		if (getenv("FIO_DEBUG")) /* which files had what pending */
			fprintf(stderr, "fio: %s: %zu unsynced ops, size %lld, snapshot %zu\n", name,
				ff->nops, (long long)fst.st_size, ff->snap_len);
		if (f->snap_mode) {
			crash_snap(ff, mode, &rng, &s);
			if (linked)
				s.lost_linked += s.dropped + s.garbled - before;
			continue;
		}
		size_t cut = (size_t)(ut_splitmix(&rng) % (ff->nops + 1));
		for (size_t j = ff->nops; j-- > 0;) {
			const struct dop *d = &ff->ops[j];
			unsigned c = choose(mode, &rng, j, ff->nops, cut, d->is_write);
			if (c == 0) {
				s.kept++;
			} else if (c == 1) {
				undo_data(ff, d);
				s.dropped++;
			} else {
				garble(ff, d, mode == FIO_CRASH_GARBAGE, &rng);
				s.garbled++;
			}
		}
		if (linked)
			s.lost_linked += s.dropped + s.garbled - before;
	}
	size_t nscut = mode == FIO_CRASH_KEEP_ALL ? f->nns : mode == FIO_CRASH_DROP_ALL ? 0
		: (size_t)(ut_splitmix(&rng) % (f->nns + 1));
	for (size_t i = f->nns; i-- > 0;) {
		struct nsop *o = &f->ns[i];
		if (i < nscut || (o->ok1 && o->ok2)) {
			s.ns_kept += !(o->ok1 && o->ok2);
			continue;
		}
		s.ns_undone++;
		switch (o->kind) {
		case NS_CREATE:
			unlink(o->a);
			break;
		case NS_RENAME:
			if (rename(o->b, o->a) == 0 && o->stash && rename(o->stash, o->b) == 0) {
				free(o->stash);
				o->stash = NULL;
			}
			break;
		case NS_UNLINK:
			if (o->stash && rename(o->stash, o->a) == 0) {
				free(o->stash);
				o->stash = NULL;
			}
			break;
		case NS_MKDIR: /* with whatever was made inside */
			uf_rmrf(o->a);
			break;
		case NS_RMDIR:
			(void)!mkdir(o->a, 0755);
			break;
		}
	}
	fio__reset_state(f);
	pthread_mutex_unlock(&f->mu);
	if (st)
		*st = s;
	return 0;
}
