/*
 * log_recover.c - opening a log after a clean close or a crash: find its
 * segments, check what might not have been synced (the last segment, and
 * sealed segments without a valid index), cut a torn or corrupt tail and
 * every segment after a break (with repair, damage in a sealed segment that
 * others follow drops only the damaged records: log_recover_gap.c), rebuild
 * indexes, and drop what lies below the persisted start.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
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

	if (l->read_only && l->damaged_tail)
		return; /* a mount refuses the log (refuse() said so): it removes nothing */
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
		sb_seg_name(name, bases[i], SB_TIX_SUFFIX);
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

/* Remove index files whose segment is gone (an interrupted removal). */
static void drop_orphan_indexes(sb_log *l, const uint64_t *bases, size_t n)
{
	DIR *d;
	struct dirent *de;
	uint64_t base;

	if (l->read_only || !(d = opendir(l->dir)))
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX], msg[320];
		if ((sb_seg_name_parse(de->d_name, SB_IDX_SUFFIX, &base) &&
		     sb_seg_name_parse(de->d_name, SB_TIX_SUFFIX, &base)) ||
		    (n && bsearch(&base, bases, n, sizeof(*bases), cmp_u64)))
			continue;
		if (sb_path(path, l->dir, de->d_name) || l->io->unlink(l->io->ctx, path))
			continue;
		snprintf(msg, sizeof(msg), "removed %s: an index file without its segment", de->d_name);
		report(l, msg);
	}
	closedir(d);
}

/* Does segment `base` have a valid index file (written only after the
 * segment was synced)? */
/* 1 when segment `base` has a valid index file, 2 when it is a compressed
 * segment (whose header is valid: it was synced before it took its name),
 * else 0. */
static int index_file_valid(sb_log *l, uint64_t base)
{
	char name[32], sp[PATH_MAX], ip[PATH_MAX];
	struct stat st;
	sb_index *ix;
	int64_t max_ts;

	sb_seg_name(name, base, SB_SEG_SUFFIX);
	if (sb_path(sp, l->dir, name) || stat(sp, &st) || st.st_size > UINT32_MAX)
		return 0;
	/* A compressed segment was synced before it took the name. */
	uint8_t zh[SB_ZSEG_HDR];
	if (!sb_log_seg_head(l, base, zh, sizeof(zh)) && sb_zseg_hdr_valid(zh))
		return 2;
	sb_seg_name(name, base, SB_IDX_SUFFIX);
	if (sb_path(ip, l->dir, name) || sb_index_load(l->io, ip, base, (uint32_t)st.st_size, -1, 1, &ix, &max_ts))
		return 0;
	sb_index_free(ix);
	return 1;
}

typedef struct recovery {
	uint64_t *bases;  /* segment files, sorted */
	size_t n;
	int clean_ok;     /* a clean marker matches the last segment */
} recovery;

/*
 * Is there proof that the records of segment i were synced, so that damage
 * in them cannot be a torn write? Its own valid index file (s, or the file
 * when s is NULL), a clean close, or a later segment with a valid index file
 * (segments are synced in order). NULL if none, else why.
 */
static const char *synced_proof(sb_log *l, const recovery *r, size_t i, const sb_segment *s)
{
	int v = s ? sb_segment_index_valid(s) : index_file_valid(l, r->bases[i]);
	if (v == 2)
		return "a compressed segment is synced before it takes its name";
	if (v)
		return "its index file shows it was synced";
	if (r->clean_ok)
		return "the log was closed cleanly";
	for (size_t j = i + 1; j < r->n; j++)
		if (index_file_valid(l, r->bases[j]))
			return "a later segment was synced";
	return NULL;
}

static int repairing(const sb_log *l)
{
	return l->opt.repair && (!l->opt.repair_topic || strcmp(l->opt.repair_topic, l->name) == 0);
}

/*
 * Damage at byte `pos` of `file` (SB_NOPOS: the whole file) that cannot be a
 * torn write (`proof` says why). Returns SB_ECORRUPT to refuse the log
 * (l->why says where), or 0 when the caller is to cut the log there: the
 * caller repairs, or only looks (read-only; reported here).
 */
#define SB_NOPOS UINT64_MAX
static int refuse(sb_log *l, const char *file, uint64_t pos, const char *what, const char *proof)
{
	char msg[SB_LOG_WHY + 128];

	if (repairing(l))
		return 0; /* the cut reports itself */
	if (pos == SB_NOPOS)
		snprintf(l->why, SB_LOG_WHY, "%s: %s, which cannot be a torn write (%s)", file, what, proof);
	else
		snprintf(l->why, SB_LOG_WHY, "%s: byte %llu: %s, which cannot be a torn write (%s)", file,
			 (unsigned long long)pos, what, proof);
	snprintf(msg, sizeof(msg), "%s; %s", l->why,
		 l->read_only ? "a mount refuses this topic until `streambus recover --cut` cuts the log there"
			      : "topic refused, nothing cut (`streambus recover --cut` drops the damaged records)");
	report(l, msg);
	if (l->read_only) {
		if (!l->damaged_tail) {
			/* where the log as read ends (sb_log_damage) */
			if (pos == SB_NOPOS)
				snprintf(l->why, SB_LOG_WHY, "%s: %s", file, what);
			else
				snprintf(l->why, SB_LOG_WHY, "%s: byte %llu: %s", file,
					 (unsigned long long)pos, what);
			l->damage = strdup(l->why);
		}
		l->why[0] = '\0';
		l->damaged_tail = 1;
		return 0;
	}
	return SB_ECORRUPT;
}

/* Read meta: 0 (*start set), -ENOENT, SB_ECORRUPT (damaged) or -errno. */
static int read_meta(sb_log *l, uint64_t *start)
{
	uint8_t buf[SB_META_SIZE];
	int rc = sb_read_small(l->io, l->dir, SB_META_NAME, buf, SB_META_SIZE);

	if (rc == -EIO || (rc == 0 && sb_meta_decode(buf, start)))
		return SB_ECORRUPT;
	return rc;
}

/* Is file `path` all zeros from byte `from` on (0 if it cannot be read)? */
static int zeros_from(sb_log *l, const char *path, uint64_t from)
{
	uint8_t buf[4096];
	int fd = l->io->open(l->io->ctx, path, O_RDONLY, 0), zero = fd >= 0;
	ssize_t n;

	for (; zero && (n = l->io->pread(l->io->ctx, fd, buf, sizeof(buf), (off_t)from)) > 0; from += (uint64_t)n)
		for (ssize_t i = 0; i < n && zero; i++)
			zero = !buf[i];
	if (fd >= 0)
		l->io->close(l->io->ctx, fd);
	return zero;
}

/*
 * Does the clean marker match the last segment? 1: yes. 0: there is no
 * marker (*have 0), or it does not decode, or zeros follow the length it
 * says (they are the end, as after a crash). -1: it names another newest
 * segment or another length: the log changed after its clean close (the
 * marker's removal is synced before the next append: log_append.c), which
 * no torn write does; file and what say how.
 */
static int read_clean(sb_log *l, const recovery *r, int *have, char file[32], char *what, size_t wn)
{
	uint8_t buf[SB_CLEAN_SIZE];
	sb_clean_rec clean = {UINT64_MAX, 0};
	char path[PATH_MAX];
	struct stat st;

	*have = sb_read_small(l->io, l->dir, SB_CLEAN_NAME, buf, SB_CLEAN_SIZE) != -ENOENT;
	if (!*have || sb_clean_decode(buf, &clean))
		return 0;
	sb_seg_name(file, clean.last_base, SB_SEG_SUFFIX);
	if (!r->n) {
		/* No segment file at all: the topic's files were removed by
		 * hand, and the marker written back after them (an `rm -rf`
		 * racing the daemon's close, which outlives `fusermount3 -u`).
		 * No record is left to keep: an empty log starts. */
		char msg[160];
		snprintf(msg, sizeof(msg), "no segment file, the clean marker names %s (%llu bytes): "
			 "the topic's files were removed; an empty log starts", file, (unsigned long long)clean.last_len);
		report(l, msg);
		return 0;
	}
	if (clean.last_base > r->bases[r->n - 1]) {
		snprintf(what, wn, "missing, the newest segment (%llu bytes) at the clean close: records lost",
			 (unsigned long long)clean.last_len);
		return -1;
	}
	if (clean.last_base < r->bases[r->n - 1]) {
		sb_seg_name(file, r->bases[r->n - 1], SB_SEG_SUFFIX);
		snprintf(what, wn, "newer than the newest segment at the clean close");
		return -1;
	}
	if (sb_path(path, l->dir, file) || stat(path, &st))
		return 0;
	if ((uint64_t)st.st_size == clean.last_len)
		return 1;
	if ((uint64_t)st.st_size > clean.last_len && zeros_from(l, path, clean.last_len))
		return 0; /* zeros end a segment (format.h): nothing was written, none is cut */
	if ((uint64_t)st.st_size < clean.last_len)
		snprintf(what, wn, "cut to %llu bytes after the clean close (%llu then): records lost",
			 (unsigned long long)st.st_size, (unsigned long long)clean.last_len);
	else
		snprintf(what, wn, "%llu bytes long, %llu at the clean close: bytes added after it",
			 (unsigned long long)st.st_size, (unsigned long long)clean.last_len);
	return -1;
}

/* Does prev's compacted span cover s, compacted to nothing? Nothing after
 * its header: a segment whose first record is damaged has no whole record
 * either, and is no removal to finish (it is damage). */
static int absorbed(sb_segment *prev, sb_segment *s)
{
	uint64_t pos;
	const char *what;

	return sb_segment_compacted(prev) && sb_segment_compacted(s) && !sb_segment_zseg(s) &&
	       sb_segment_len(s) == SB_SEG_HDR && !sb_segment_damage(s, &pos, &what) &&
	       sb_segment_next(s) <= sb_segment_next(prev);
}

/*
 * Repair damage that is no torn write in segment i (*s): the damaged
 * records become a gap (log_recover_gap.c). In the newest segment, which
 * then takes no appends, a new segment follows it: the rewritten one is
 * pushed here and *s is the new one. 0, 1 (it cannot be: the caller cuts
 * there as before), or -errno (*s still the caller's).
 */
static int repair(sb_log *l, recovery *r, size_t i, sb_segment **s, int *changed)
{
	sb_segment *as = NULL;
	int rc;

	if (i + 1 < r->n)
		return sb_log_recover_gap(l, s, r->bases[i + 1], changed);
	if ((rc = sb_log_recover_newest(l, s, changed, &as)))
		return rc;
	if ((rc = sb_log_segs_push(l, *s))) {
		sb_segment_close(as, 0);
		return rc;
	}
	*s = as;
	return 0;
}

/*
 * Segment i does not open: its header is bad (a compressed one's block
 * table or dictionary). Refused as damage, unless repairing: then a plain
 * segment that later ones follow is written anew with its records (0, *s
 * opened), else the log ends before it (1, the later segments removed).
 * Else the refusal or failure, l->why saying it.
 */
static int bad_header(sb_log *l, recovery *r, size_t i, uint64_t *start, int *changed, sb_segment **s)
{
	/* (a compressed segment's header is good: the damage is in its
	 * block table or dictionary, past its blocks) */
	int z = index_file_valid(l, r->bases[i]) == 2, rc;
	const char *proof = synced_proof(l, r, i, NULL);
	char name[32];

	sb_seg_name(name, r->bases[i], SB_SEG_SUFFIX);
	if (proof && (rc = refuse(l, name, z ? SB_NOPOS : 0,
				  z ? "its block table or dictionary fails its check" : "bad segment header", proof)))
		return rc;
	if (proof && !l->read_only && i + 1 < r->n &&
	    (rc = sb_log_recover_header(l, r->bases[i], r->bases[i + 1], changed, s)) != 1)
		return rc;
	if (i == 0 && *start < r->bases[0])
		*start = r->bases[0];
	cut_after(l, r->bases, i, r->n);
	r->n = i;
	return 1;
}

/*
 * Open segment i and judge what follows its last whole record: preallocated
 * zeros are cut silently, a torn tail is cut (reported) with every later
 * segment, damage that cannot be a torn write refuses the log. *s is NULL
 * when the log ends before segment i; *stop when it ends with it.
 */
static int open_one(sb_log *l, recovery *r, size_t i, uint64_t *start, int *changed, int *stop,
		    int *active, sb_segment **out)
{
	int last = i + 1 == r->n, ch = 0, rc, kind;
	int flags = last ? SB_SEG_ACTIVE | (r->clean_ok ? SB_SEG_TRUST_INDEX : 0) : SB_SEG_TRUST_INDEX;
	char name[32];
	const char *what, *proof;
	uint64_t pos;
	sb_segment *s = NULL;

	*out = NULL;
	if (l->opt.full_check)
		flags |= SB_SEG_CHECK_ALL;
	sb_seg_name(name, r->bases[i], SB_SEG_SUFFIX);
	rc = sb_segment_open(&l->sp, r->bases[i], flags, &ch, &s);
	if ((rc == SB_ECORRUPT || rc == SB_EVERSION) && !l->read_only) {
		/* a header rewritten in place, torn by a crash: written anew */
		sb_segment *prev = l->nsegs ? l->segs[l->nsegs - 1] : NULL;
		uint64_t pend = prev && !sb_segment_compacted(prev) ? sb_segment_stream_end(prev) : UINT64_MAX;
		int t = sb_log_recover_torn_header(l, r->bases[i], last ? UINT64_MAX : r->bases[i + 1], pend,
						   changed);
		if (t < 0) {
			snprintf(l->why, SB_LOG_WHY, "%s: %s", name, sb_strerror(t));
			return t;
		}
		if (t == 0)
			rc = sb_segment_open(&l->sp, r->bases[i], flags, &ch, &s);
	}
	if (rc == SB_ECORRUPT) {
		if ((rc = bad_header(l, r, i, start, changed, &s)) == 1) {
			*stop = 1;
			return 0;
		}
		if (rc)
			return rc; /* refused, or the repair failed: l->why says */
	}
	if (rc) {
		snprintf(l->why, SB_LOG_WHY, "%s: %s", name, sb_strerror(rc)); /* which file */
		return rc;
	}
	*changed |= ch;
	if (l->nsegs && i + 1 < r->n && absorbed(l->segs[l->nsegs - 1], s)) {
		/* Compacted to nothing, inside the previous segment's span: a
		 * removal (log_compact.c, drop_empty) interrupted after that
		 * span was synced. Finish it. */
		char msg[128];
		snprintf(msg, sizeof(msg), "removed segment %s: compacted to nothing, inside the previous one's span",
			 name);
		report(l, msg);
		if (l->read_only)
			sb_segment_close(s, 0);
		else
			sb_segment_remove(s);
		return 0;
	}
	if (l->nsegs) {
		sb_segment *prev = l->segs[l->nsegs - 1];
		/* A stream gap before a compacted segment (a crash between two
		 * swaps of a compaction, log_compact.c), or an overlap (a copy
		 * of the directory taken during a round: a newer segment before
		 * an older one): compacted segments' stream positions are
		 * derived, put right below (restream). */
		uint64_t pend = sb_segment_stream_end(prev), sbase = sb_segment_base_stream(s);
		if (sb_segment_next(prev) != sb_segment_base(s) ||
		    (pend != sbase && !sb_segment_compacted(s) && !sb_segment_compacted(prev))) {
			if (r->bases[i] <= *start) {
				/* A break below the start: what precedes it
				 * are stale files of an interrupted removal. */
				drop_opened(l);
			} else if (sb_segment_next(prev) < sb_segment_base(s) && repairing(l) && !l->read_only &&
				   (rc = sb_log_recover_span_gap(l, prev, sb_segment_base(s), changed)) != 1) {
				/* repaired: the missing offsets are a gap, the
				 * later segments stay (a live copy's removed
				 * empty segment, a lost file) */
				if (rc) {
					sb_segment_close(s, 0);
					snprintf(l->why, SB_LOG_WHY, "%s: %s", name, sb_strerror(rc));
					return rc;
				}
			} else {
				char what_gap[224];
				snprintf(what_gap, sizeof(what_gap),
					 "a gap: the previous segment ends at offset %llu (a segment file missing: lost, "
					 "or removed by a compaction round while this directory was copied)",
					 (unsigned long long)sb_segment_next(prev));
				sb_segment_close(s, 0);
				if ((proof = synced_proof(l, r, i - 1, prev)) &&
				    (rc = refuse(l, name, 8, what_gap, proof)))
					return rc;
				cut_after(l, r->bases, i, r->n);
				r->n = i;
				*stop = 1;
				return 0;
			}
		}
	}
	kind = sb_segment_damage(s, &pos, &what);
	if (kind) {
		proof = synced_proof(l, r, i, s);
		if (kind == SB_REC_END && !proof) {
			/* Preallocated space of a segment being written. */
			rc = sb_segment_cut(s, 1);
		} else {
			if (proof && (rc = refuse(l, name, pos, what, proof))) {
				sb_segment_close(s, 0);
				return rc;
			}
			/* Repairing damage that is no torn write: only the
			 * damaged records go (a gap), unless the segment cannot
			 * hold one (rc 1). */
			rc = proof && !l->read_only ? repair(l, r, i, &s, changed) : 1;
			if (rc == 1) {
				/* read-only, a cut a mount would not make (it refuses
				 * the log: refuse() said so) is not reported */
				rc = sb_segment_cut(s, (proof || l->damaged_tail) && l->read_only);
				cut_after(l, r->bases, i + 1, r->n);
				r->n = i + 1;
				*stop = 1;
			}
		}
		if (rc) {
			sb_segment_close(s, 0);
			return rc;
		}
		*changed = 1;
	}
	*stop |= last;
	*active = (flags & SB_SEG_ACTIVE) && sb_segment_active(s);
	*out = s;
	return 0;
}

/* After a cut the last segment was opened as a sealed one: reopen it as the
 * active one (mapped for appending). It was checked (and reported) once. */
static int reopen_last_active(sb_log *l, int *changed)
{
	sb_segment *s = l->segs[l->nsegs - 1], *r = NULL;
	uint64_t base = sb_segment_base(s);
	int ch = 0, rc;

	sb_segment_close(s, 0);
	l->nsegs--;
	rc = sb_segment_open(&l->sp, base, SB_SEG_ACTIVE | SB_SEG_TRUST_INDEX | SB_SEG_QUIET, &ch, &r);
	if (rc)
		return rc;
	if (!sb_segment_active(r) && !l->read_only) {
		/* A compressed segment with a damaged block cannot take appends. */
		snprintf(l->why, SB_LOG_WHY, "%s: a damaged compressed block (`streambus recover --cut` "
			 "cuts the log there)", strrchr(sb_segment_path(r), '/') + 1);
		report(l, l->why);
		sb_segment_close(r, 0);
		return SB_ECORRUPT;
	}
	*changed |= ch;
	rc = sb_log_segs_push(l, r);
	if (rc)
		sb_segment_close(r, 0);
	return rc;
}

/*
 * The log start: from meta, at least the first segment's base, at most the
 * end. Rewrites a missing (records were removed), damaged or wrong meta
 * file, reporting it. [read-write]
 */
static int settle_start(sb_log *l, int meta_rc, uint64_t start)
{
	uint64_t first = sb_segment_base(l->segs[0]);
	char msg[224];
	int fix = 0;

	if (meta_rc == SB_ECORRUPT) {
		snprintf(msg, sizeof(msg), "meta: damaged; the log start is taken from the first segment: %llu "
			 "(records removed after that are back)", (unsigned long long)first);
		start = first;
		fix = 1;
	} else if (meta_rc == -ENOENT && first > 0) {
		snprintf(msg, sizeof(msg), "meta: missing; the log starts at its first segment: %llu",
			 (unsigned long long)first);
		fix = 1;
	}
	if (start < first)
		start = first;
	if (start > atomic_load(&l->next)) {
		/* The start is past the data: a copy of the directory that took
		 * a newer `meta` than its segments, or unsynced records lost.
		 * Keep the records there are rather than none. */
		snprintf(msg, sizeof(msg), "start %llu is past the last record; the log starts at %llu",
			 (unsigned long long)start, (unsigned long long)first);
		start = first;
		fix = 1;
	}
	if (fix)
		report(l, msg);
	atomic_store(&l->start, start);
	atomic_store(&l->stream_start, sb_log_stream_pos_of(l, start));
	if (fix && !l->read_only) {
		/* Without room for it now, it is saved by the next removal
		 * or the close (meta_dirty), as after any full-disk removal. */
		uint8_t buf[SB_META_SIZE];
		int rc;
		sb_meta_encode(buf, start);
		rc = sb_publish_file(l->io, l->dir, SB_META_NAME, buf, sizeof(buf));
		if (sb_no_space(rc)) {
			l->meta_dirty = 1;
			rc = 0;
		}
		return rc;
	}
	return 0;
}

/* A segment's stream position below the payload bytes of the one before
 * it, compacted (a header whose stream field was damaged and its CRC made
 * right: no valid log has it, the stream only grows): no position fits
 * the older segments below it, and left so the log's stream started past
 * its end (fuzz_segment). The oldest segment anchors instead: each later
 * one begins where the one before it ends. */
static void restream_up(sb_log *l)
{
	for (size_t i = 1; i < l->nsegs; i++) {
		uint64_t end = sb_segment_stream_end(l->segs[i - 1]);
		if (sb_segment_base_stream(l->segs[i]) != end)
			sb_segment_rebase_stream(l->segs[i], end);
	}
}

/* Each segment's stream made to end where the next segment's begins,
 * newest first. Only a compacted segment's neighbours can disagree here
 * (open_one refuses a stream gap between two others): after a crash or in
 * a copy taken during a round, or where `recover --cut` dropped damaged
 * records (log_recover_gap.c) whose payload bytes left the stream. The
 * segments below such a gap move up with it, so that the stream (what
 * `.log` reads) has no hole: a hole read as damage (EIO) from its first
 * byte on. The newest segment never moves: it anchors the positions, so
 * every open derives the same ones. Only the positions in memory move (an
 * index holds positions relative to its segment's); a compaction round
 * writes its segments' headers. */
static void restream(sb_log *l)
{
	for (size_t i = l->nsegs; i-- > 1;) {
		sb_segment *prev = l->segs[i - 1], *s = l->segs[i];
		uint64_t len = sb_segment_stream_end(prev) - sb_segment_base_stream(prev);
		if (sb_segment_stream_end(prev) == sb_segment_base_stream(s))
			continue;
		if (sb_segment_base_stream(s) < len) {
			restream_up(l);
			return;
		}
		sb_segment_rebase_stream(prev, sb_segment_base_stream(s) - len);
	}
}

int sb_log_recover(sb_log *l)
{
	recovery r = {0};
	uint64_t start = 0;
	size_t nfiles;
	int rc, meta_rc, changed = 0, have_clean = 0, last_active = 0;

	rc = list_segments(l, &r.bases, &r.n);
	if (rc) {
		snprintf(l->why, SB_LOG_WHY, "the topic directory: %s", sb_strerror(rc));
		return rc;
	}
	nfiles = r.n;
	char cfile[32], cwhat[128];
	int cl = read_clean(l, &r, &have_clean, cfile, cwhat, sizeof(cwhat));
	r.clean_ok = cl == 1;
	if (cl < 0 && (rc = refuse(l, cfile, SB_NOPOS, cwhat, "the log was closed cleanly")))
		goto out_free; /* before anything is removed */
	drop_orphan_indexes(l, r.bases, r.n);
	meta_rc = read_meta(l, &start);
	if (meta_rc && meta_rc != -ENOENT && meta_rc != SB_ECORRUPT) {
		snprintf(l->why, SB_LOG_WHY, "%s: %s", SB_META_NAME, sb_strerror(meta_rc));
		rc = meta_rc;
		goto out_free;
	}
	/* A missing or damaged meta is no reason to refuse the log: a crash
	 * between removing segments and saving the start, or one while meta was
	 * rewritten in place on a full disk, leaves one (log.c,
	 * sb_log_save_start). The start then falls back to the first segment
	 * (removed records come back, no kept one is lost); settle_start()
	 * rewrites it, and `streambus verify` reports it until then. */

	for (size_t i = 0; i < r.n; i++) {
		sb_segment *s;
		int stop = 0, active = 0;
		rc = open_one(l, &r, i, &start, &changed, &stop, &active, &s);
		if (rc)
			goto out_free;
		if (!s && stop)
			break;
		if (!s)
			continue; /* removed: an empty segment in the previous one's span */
		rc = sb_log_segs_push(l, s);
		if (rc) {
			sb_segment_close(s, 0);
			goto out_free;
		}
		last_active = active;
		if (stop)
			break;
	}
	/* (A compacted newest segment, the segments after it cut, or a
	 * restore's, takes the appends: each raises its span first,
	 * sb_segment_reach.) */
	if (l->nsegs && !last_active && (rc = reopen_last_active(l, &changed)))
		goto out_free;
	if (!l->nsegs) {
		sb_segment *s;
		if (l->read_only) {
			/* Nothing to read (no segment file, or damage from the
			 * first segment's header on) and nothing may be created:
			 * refuse this log alone, as damage, so that the other
			 * topics open all the same (a mount starts it anew or
			 * refuses it too). */
			snprintf(l->why, SB_LOG_WHY, "%s",
				 nfiles ? "no segment left to read: the log is damaged from its first segment"
					: "no segment file");
			report(l, l->why);
			rc = SB_ECORRUPT;
			goto out_free;
		}
		rc = sb_segment_create(&l->sp, start, 0, &s);
		if (rc)
			goto out_free;
		if (!nfiles) /* a mkdir cut short; said, so a stray directory is seen */
			report(l, "no segment file: an empty log started");
		rc = sb_log_segs_push(l, s);
		if (rc) {
			sb_segment_close(s, 0);
			goto out_free;
		}
		changed = 1;
	}
	restream(l);
	for (size_t i = 0; i < l->nsegs && !r.clean_ok && !l->keys_check; i++)
		l->keys_check = sb_segment_compacted(l->segs[i]);
	sb_segment *last = sb_log_active(l);
	atomic_store(&l->next, sb_segment_next(last));
	atomic_store(&l->stream_end, sb_segment_stream_end(last));
	rc = settle_start(l, meta_rc, start);
	if (rc || l->read_only)
		goto out_free;
	start = atomic_load(&l->start);
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
		/* The marker must go before anything is appended: a stale one
		 * would vouch for a length the segment no longer has. Its
		 * removal is synced with the directory below, or before the
		 * first append (log_append.c, append_locked). */
		char path[PATH_MAX];
		if ((rc = sb_path(path, l->dir, SB_CLEAN_NAME)) ||
		    ((rc = l->io->unlink(l->io->ctx, path)) && rc != -ENOENT))
			goto out_free;
		rc = 0;
		l->clean_unsynced = !changed;
	}
	if (changed)
		rc = sb_fsync_dir(l->io, l->dir);
out_free:
	free(r.bases);
	return rc;
}
