/*
 * log_view.c - a reader's view of a log's stream (sb_store.h; SPEC §2:
 * compaction never disturbs a reader).
 *
 * Stream positions move in one way only: a compaction round (log_compact.c)
 * rewrites a run of sealed segments at the head of the log, the removed
 * payloads leave the stream, and the records it keeps are packed against
 * the first segment after the run, whose stream position (`end`) stays. So
 * a position at or past `end` names the same byte before and after the
 * round; below it, a position in a segment the round replaced named a
 * byte of that segment's old file, and one in a segment it left alone
 * (unchanged, dropped meanwhile or damaged) names the same byte after it.
 *
 * The stream's generations are a chain: the log holds the current one; a
 * round that replaces segments while a view may read them ends it, giving
 * it those old segments (open: their mappings of the old, unlinked files)
 * and its `end`, and starts the next. A view is a counted reference to the
 * generation it was taken in, and every generation holds one on its
 * successor, so a view keeps alive exactly the old segments it may read.
 * Reading position p through a view walks the chain from its generation:
 * p below a generation's `end` and inside one of its old segments is
 * served from that segment (as it was); otherwise p means the same in the
 * next generation; past the last ended one, the live segments serve it.
 * A round with no view taken in the current generation closes what it
 * replaced at once, as before views existed.
 *
 * Locks: a generation's next, old, nold and end are written once, with
 * seg_lock held exclusive (the round's publish), and read with it held
 * shared; refs are atomic. The log's reference (l->view) is replaced
 * with seg_lock exclusive and set from NULL (the first view) with it
 * shared, by compare-and-swap. A generation whose count drops to 0 is
 * reachable from nothing: it closes its old segments and drops its
 * successor, without any lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "log_impl.h"

struct sb_log_view {
	_Atomic size_t refs;        /* the log's (while current), its predecessor's, views' */
	struct sb_log_view *next;   /* [seg_lock] the generation after it; NULL while current */
	sb_segment **old;           /* [seg_lock] what the round that ended it replaced,
				     * oldest first, with this generation's positions */
	size_t nold;                /* [seg_lock] */
	uint64_t end;               /* [seg_lock] positions >= end: the same in next */
};

void sb_log_view_close(sb_log_view *v)
{
	while (v && atomic_fetch_sub(&v->refs, 1) == 1) {
		sb_log_view *next = v->next;
		for (size_t i = 0; i < v->nold; i++)
			sb_segment_close(v->old[i], 0);
		free(v->old);
		free(v);
		v = next;
	}
}

int sb_log_view_open(sb_log *l, sb_log_view **out)
{
	int rc = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	sb_log_view *g = atomic_load(&l->view);
	if (!g) {
		sb_log_view *fresh = calloc(1, sizeof(*fresh));
		if (!fresh) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		atomic_init(&fresh->refs, 1); /* the log's */
		if (!atomic_compare_exchange_strong(&l->view, &g, fresh))
			free(fresh); /* another first view won: g is its */
		else
			g = fresh;
	}
	atomic_fetch_add(&g->refs, 1);
	*out = g;
out_unlock:
	pthread_rwlock_unlock(&l->seg_lock);
	return rc;
}

int sb_log_view_current(sb_log *l, const sb_log_view *v)
{
	pthread_rwlock_rdlock(&l->seg_lock);
	int cur = !v->next;
	pthread_rwlock_unlock(&l->seg_lock);
	return cur;
}

int sb_log_views_open(sb_log *l)
{
	/* every view holds the current generation: its own, or through its
	 * generation's successors */
	sb_log_view *g = atomic_load(&l->view);
	return g && atomic_load(&g->refs) > 1;
}

int sb_log_views_prep(sb_view_prep *p, size_t n)
{
	p->next = calloc(1, sizeof(*p->next));
	p->old = calloc(n ? n : 1, sizeof(*p->old));
	if (!p->next || !p->old) {
		sb_log_views_unprep(p);
		return -ENOMEM;
	}
	return 0;
}

void sb_log_views_unprep(sb_view_prep *p)
{
	free(p->next);
	free(p->old);
	p->next = NULL;
	p->old = NULL;
}

int sb_log_views_advance(sb_log *l, sb_view_prep *p, size_t k, uint64_t end, sb_log_view **put)
{
	sb_log_view *g = atomic_load(&l->view);

	*put = NULL;
	/* No view may read the old segments: a view taken in g holds a
	 * reference besides the log's; one taken earlier holds g through
	 * its generation's successor. (Views are taken with seg_lock shared:
	 * none is added now; one that goes now leaves g more than it needs.) */
	if (!k || !g || atomic_load(&g->refs) == 1)
		return 0;
	g->old = p->old;
	g->nold = k;
	g->end = end;
	atomic_init(&p->next->refs, 2); /* the log's and g's */
	g->next = p->next;
	atomic_store(&l->view, p->next);
	p->next = NULL;
	p->old = NULL;
	*put = g; /* the log's reference to g */
	return 1;
}

/* The old segment of the generations from v on that serves position p,
 * seg_lock held; NULL when the live segments do. */
static sb_segment *old_seg(const sb_log_view *v, uint64_t p)
{
	for (const sb_log_view *g = v; g->next; g = g->next) {
		if (p >= g->end)
			continue;
		for (size_t i = 0; i < g->nold; i++) {
			sb_segment *s = g->old[i];
			if (p >= sb_segment_base_stream(s) && p < sb_segment_stream_end(s))
				return s;
		}
	}
	return NULL;
}

/* Serve from an old segment s what it holds of [p, p + len - *done). A
 * record removed since (retention, sb_log_delete_before) is -ENOENT, as
 * in the live log; its CRC is checked as every byte served is. */
static int from_old(sb_log *l, sb_segment *s, sb_read_memo *m, uint64_t p, uint8_t *dst, size_t len,
		    size_t *done)
{
	uint64_t at, st;
	sb_rec_hdr h;
	int rc = sb_segment_locate_stream(s, p, &at, &st, &h);

	if (!rc && h.offset < sb_log_start(l))
		rc = -ENOENT;
	uint64_t room = sb_segment_stream_end(s) - p;
	if (!rc && len - *done > room)
		len = *done + (size_t)room;
	size_t before = *done;
	if (!rc)
		rc = sb_log_seg_stream(s, m, p, dst, len, done);
	if (!rc && *done == before)
		rc = SB_ECORRUPT; /* no progress: never a silent end */
	return rc;
}

int sb_log_view_read(sb_log *l, sb_log_view *v, uint64_t pos, void *buf, size_t len, size_t *nread)
{
	return sb_log_view_read_m(l, v, NULL, pos, buf, len, nread);
}

int sb_log_view_read_m(sb_log *l, sb_log_view *v, sb_read_memo *m, uint64_t pos, void *buf, size_t len,
		       size_t *nread)
{
	uint8_t *dst = buf;
	size_t done = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&l->seg_lock);
	if (atomic_load(&l->removed))
		rc = -ENOENT;
	while (!rc && done < len) {
		uint64_t p = pos + done;
		sb_segment *s = old_seg(v, p);
		if (!s) {
			size_t n = 0;
			rc = sb_log_stream_locked(l, m, p, dst + done, len - done, &n);
			done += n;
			break;
		}
		rc = from_old(l, s, m, p, dst, len, &done);
	}
	/* Damage, or a removed record, after some good bytes: serve those (a
	 * short read); the next read starts there and fails. */
	if (rc && done && (rc == SB_ECORRUPT || rc == -ENOENT))
		rc = 0;
	pthread_rwlock_unlock(&l->seg_lock);
	if (!rc)
		*nread = done;
	return rc;
}
