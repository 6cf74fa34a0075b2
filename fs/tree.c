/*
 * tree.c - the topic table: names, ids and inode numbers, each topic's
 * visible extent (hidden records, open readers' pins), and the signal that
 * something changed (for the notifier). The ground floor of fs/: it calls
 * only the backend. Attributes are attr.c's; start and stop are main.c's.
 *
 * A topic's id is a hash of its name (23 bits, never 0), so that inode
 * numbers are the same at every mount; two names with the same hash probe
 * to the next free id in the order they are first seen (at start-up: name
 * order), which keeps them stable as long as the set of topics is.
 *
 * A topic removed and made again keeps its name's id, so its inode numbers;
 * its new entry has the next generation, which tells the kernel that these
 * are new inodes (see sbfs_tentry).
 */
#include "fs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

fuse_ino_t sbfs_ino(uint32_t id, uint64_t local)
{
	return ((fuse_ino_t)id << SBFS_ID_SHIFT) | (local & SBFS_LOCAL_MASK);
}

enum sbfs_kind sbfs_ino_kind(fuse_ino_t ino, uint32_t *id, uint64_t *offset)
{
	int key = !!(ino & SBFS_KEY_BIT);
	uint32_t i = (uint32_t)((ino & ~SBFS_KEY_BIT) >> SBFS_ID_SHIFT);
	uint64_t local = ino & SBFS_LOCAL_MASK;
	if (id)
		*id = i;
	if (key) { /* TOPIC/.keys/K: its latest record's offset */
		if (i == 0 || local < SBFS_L_REC0)
			return K_BAD;
		if (offset)
			*offset = local - SBFS_L_REC0;
		return K_KEY;
	}
	if (i == 0) {
		if (local == FUSE_ROOT_ID)
			return K_ROOT;
		if (local >= SBFS_L_SINCE0)
			return K_SINCE;
		return local >= 2 ? K_PENDING : K_BAD;
	}
	if (local == SBFS_L_DIR)
		return K_TOPIC;
	if (local == SBFS_L_LOG)
		return K_LOG;
	if (local == SBFS_L_SINCE)
		return K_SINCEDIR;
	if (local == SBFS_L_KEYS)
		return K_KEYSDIR;
	if (local < SBFS_L_REC0)
		return K_BAD;
	if (offset)
		*offset = local - SBFS_L_REC0;
	return K_RECORD;
}

static uint32_t name_id(const char *name)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	uint32_t id = (uint32_t)((h >> 24) ^ h) & SBFS_ID_MAX;
	return id ? id : 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t next_id(uint32_t id)
{
	return id == SBFS_ID_MAX ? 1 : id + 1;
}

/* ---- the table (open addressing on id); callers hold tlock ---------------- */

/* The slot holding id, or the free one where it would go (cap > 0). */
static sbfs_tentry **tab_slot(const sbfs *fs, uint32_t id)
{
	for (size_t i = id & (fs->cap - 1);; i = (i + 1) & (fs->cap - 1)) {
		sbfs_tentry *e = fs->tab[i];
		if (!e || e->id == id)
			return &fs->tab[i];
	}
}

static sbfs_tentry *tab_get(const sbfs *fs, uint32_t id)
{
	return fs->cap ? *tab_slot(fs, id) : NULL;
}

static int tab_put(sbfs *fs, sbfs_tentry *e)
{
	if ((fs->n + 1) * 2 > fs->cap) {
		size_t ncap = fs->cap ? fs->cap * 2 : 64;
		sbfs_tentry **nt = calloc(ncap, sizeof *nt);
		if (!nt)
			return -ENOMEM;
		for (size_t i = 0; i < fs->cap; i++) {
			sbfs_tentry *o = fs->tab[i];
			if (!o)
				continue;
			size_t j = o->id & (ncap - 1);
			while (nt[j])
				j = (j + 1) & (ncap - 1);
			nt[j] = o;
		}
		free(fs->tab);
		fs->tab = nt;
		fs->cap = ncap;
	}
	size_t j = e->id & (fs->cap - 1);
	while (fs->tab[j])
		j = (j + 1) & (fs->cap - 1);
	fs->tab[j] = e;
	fs->n++;
	return 0;
}

/* The entry named `name`, or where its id would go (*free_id). */
static sbfs_tentry *tab_find_name(const sbfs *fs, const char *name, uint32_t *free_id)
{
	uint32_t id = name_id(name);
	for (;;) {
		sbfs_tentry *e = tab_get(fs, id);
		if (!e) {
			*free_id = id;
			return NULL;
		}
		if (strcmp(e->name, name) == 0)
			return e;
		id = next_id(id);
	}
}

static sbfs_tentry *entry_new(const char *name, uint32_t id, uint64_t gen, sbfs_topic *t)
{
	sbfs_tentry *e = calloc(1, sizeof *e);
	if (!e || !(e->name = strdup(name))) {
		free(e);
		return NULL;
	}
	e->id = id;
	e->gen = gen;
	e->t = t;
	e->born_ns = now_ns();
	atomic_init(&e->named_lo, UINT64_MAX); /* nothing named yet */
	atomic_init(&e->named_hi, 0);
	pthread_mutex_init(&e->wlock, NULL);
	pthread_rwlock_init(&e->alock, NULL);
	pthread_mutex_init(&e->pinlock, NULL);
	return e;
}

static void entry_free(sbfs_tentry *e)
{
	pthread_mutex_destroy(&e->wlock);
	pthread_rwlock_destroy(&e->alock);
	pthread_mutex_destroy(&e->pinlock);
	free(e->rbase);
	free(e->roff);
	free(e->name);
	free(e);
}

/*
 * Register name -> t (nslock and the write lock held, or at start-up). A
 * topic handle other than the entry's is a new topic of that name: a new
 * entry replaces the old one, which goes to fs->gone. A removed topic's own
 * handle is not registered again (-ENOENT).
 */
static int tab_register(sbfs *fs, const char *name, sbfs_topic *t, sbfs_tentry **out)
{
	uint32_t id;
	sbfs_tentry *e = tab_find_name(fs, name, &id);
	if (e && e->t == t) {
		if (e->removed)
			return -ENOENT;
		*out = e;
		return 0;
	}
	sbfs_tentry *ne = entry_new(name, e ? e->id : id, e ? e->gen + 1 : 0, t);
	if (!ne)
		return -ENOMEM;
	if (e) {
		*tab_slot(fs, e->id) = ne;
		e->removed = 1;
		e->gone_next = fs->gone;
		fs->gone = e;
	} else {
		int rc = tab_put(fs, ne);
		if (rc) {
			entry_free(ne);
			return rc;
		}
	}
	*out = ne;
	return 0;
}

/* ---- the public side ------------------------------------------------------ */

typedef struct reg_ctx {
	sbfs *fs;
	int rc;
} reg_ctx;

static int reg_cb(void *arg, const char *name, sbfs_topic *t)
{
	reg_ctx *x = arg;
	sbfs_tentry *e;
	x->rc = tab_register(x->fs, name, t, &e);
	return x->rc ? 1 : 0;
}

int sbfs_init(sbfs *fs, sbfs_config *cfg, sbfs_backend *b)
{
	memset(fs, 0, sizeof *fs);
	fs->cfg = cfg;
	fs->b = b;
	fs->mount_ns = now_ns();
	pthread_mutex_init(&fs->nslock, NULL);
	pthread_rwlock_init(&fs->tlock, NULL);
	pthread_mutex_init(&fs->plock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* pending_empty.c's waits */
	pthread_cond_init(&fs->pcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&fs->sincelock, NULL);
	pthread_mutex_init(&fs->nlock, NULL);
	pthread_cond_init(&fs->ncond, NULL);
	pthread_mutex_init(&fs->slock, NULL);
	pthread_mutex_init(&fs->hlock, NULL);
	fs->handles = NULL;
	fs->next_pending = 2;
	/* in name order, so colliding ids probe the same way at every mount */
	reg_ctx x = { fs, 0 };
	int rc = b->ops->topic_list(b, reg_cb, &x);
	if (rc == 0)
		rc = x.rc;
	return rc;
}

void sbfs_fini(sbfs *fs)
{
	while (fs->since) { /* .since/TIME nodes the kernel never forgot */
		sbfs_since *s = fs->since;
		fs->since = s->next;
		free(s->bases);
		free(s);
	}
	pthread_mutex_destroy(&fs->sincelock);
	for (size_t i = 0; i < fs->cap; i++)
		if (fs->tab[i])
			entry_free(fs->tab[i]);
	while (fs->gone) {
		sbfs_tentry *e = fs->gone;
		fs->gone = e->gone_next;
		entry_free(e);
	}
	free(fs->tab);
	fs->tab = NULL;
	fs->cap = fs->n = 0;
	pthread_mutex_destroy(&fs->nslock);
	pthread_rwlock_destroy(&fs->tlock);
	pthread_mutex_destroy(&fs->plock);
	pthread_cond_destroy(&fs->pcond);
	pthread_mutex_destroy(&fs->nlock);
	pthread_cond_destroy(&fs->ncond);
	pthread_mutex_destroy(&fs->slock);
	pthread_mutex_destroy(&fs->hlock);
}

void sbfs_ns_lock(sbfs *fs)
{
	pthread_mutex_lock(&fs->nslock);
}

void sbfs_ns_unlock(sbfs *fs)
{
	pthread_mutex_unlock(&fs->nslock);
}

/* The backend's topic `name` registered (nslock held: the backend's topics
 * change only under it, so t is the current one). */
static int lookup_register(sbfs *fs, const char *name, sbfs_tentry **out)
{
	sbfs_topic *t;
	int rc = fs->b->ops->topic_get(fs->b, name, &t);
	if (rc)
		return rc;
	sbfs_tentry *e;
	pthread_rwlock_wrlock(&fs->tlock);
	rc = tab_register(fs, name, t, &e);
	pthread_rwlock_unlock(&fs->tlock);
	if (rc == 0)
		*out = e;
	return rc;
}

int sbfs_topic_by_name_locked(sbfs *fs, const char *name, sbfs_tentry **out)
{
	if (!fs->b->ops->topic_name_valid(name))
		return -ENOENT;
	return lookup_register(fs, name, out);
}

int sbfs_topic_by_name(sbfs *fs, const char *name, sbfs_tentry **out)
{
	if (!fs->b->ops->topic_name_valid(name))
		return -ENOENT;
	sbfs_topic *t;
	int rc = fs->b->ops->topic_get(fs->b, name, &t);
	if (rc)
		return rc;
	uint32_t id;
	pthread_rwlock_rdlock(&fs->tlock);
	sbfs_tentry *e = tab_find_name(fs, name, &id);
	int fresh = e && e->t == t && !e->removed;
	pthread_rwlock_unlock(&fs->tlock);
	if (fresh) {
		*out = e;
		return 0;
	}
	/* new to this mount, or made again: registered under nslock */
	sbfs_ns_lock(fs);
	rc = lookup_register(fs, name, out);
	sbfs_ns_unlock(fs);
	return rc;
}

/* ---- topics of several partitions (backend.h: parts) ---- */

uint32_t sbfs_topic_parts(sbfs *fs, sbfs_tentry *te)
{
	uint32_t n = 0;
	if (!fs->b->ops->parts || fs->b->ops->parts(te->t, &n))
		return 0;
	return n;
}

/* A partition is an entry of its own, named "TOPIC/I" (no topic's name
 * can hold a '/'): its own id, inode numbers and generation, made again
 * with its topic. */
int sbfs_part_by_index(sbfs *fs, sbfs_tentry *te, uint32_t i, sbfs_tentry **out)
{
	char name[SBFS_PART_NAME_MAX];
	if (!fs->b->ops->part_get ||
	    (size_t)snprintf(name, sizeof name, "%s/%" PRIu32, te->name, i) >= sizeof name)
		return -ENOENT;
	sbfs_topic *t;
	int rc = fs->b->ops->part_get(te->t, i, &t);
	if (rc)
		return rc;
	uint32_t id;
	pthread_rwlock_rdlock(&fs->tlock);
	sbfs_tentry *e = tab_find_name(fs, name, &id);
	int fresh = e && e->t == t && !e->removed && !te->removed;
	pthread_rwlock_unlock(&fs->tlock);
	if (fresh) {
		*out = e;
		return 0;
	}
	sbfs_ns_lock(fs);
	pthread_rwlock_wrlock(&fs->tlock);
	rc = te->removed ? -ENOENT : tab_register(fs, name, t, out);
	pthread_rwlock_unlock(&fs->tlock);
	sbfs_ns_unlock(fs);
	return rc;
}

int sbfs_part_by_name(sbfs *fs, sbfs_tentry *te, const char *name, sbfs_tentry **out)
{
	uint32_t n = sbfs_topic_parts(fs, te), i = 0;
	size_t len = strlen(name);
	if (n == 0 || len == 0 || len > 9 || (name[0] == '0' && len > 1))
		return -ENOENT;
	for (size_t k = 0; k < len; k++) {
		if (name[k] < '0' || name[k] > '9')
			return -ENOENT;
		i = i * 10 + (uint32_t)(name[k] - '0');
	}
	return i < n ? sbfs_part_by_index(fs, te, i, out) : -ENOENT;
}

int sbfs_topic_create(sbfs *fs, const char *name, sbfs_tentry **out)
{
	sbfs_ns_lock(fs);
	int rc = fs->b->ops->topic_create(fs->b, name);
	if (rc == 0)
		rc = lookup_register(fs, name, out);
	sbfs_ns_unlock(fs);
	return rc;
}

int sbfs_topic_remove_locked(sbfs *fs, sbfs_tentry *te)
{
	int rc = fs->b->ops->topic_remove(fs->b, te->name);
	if (rc == 0) {
		size_t len = strlen(te->name);
		pthread_rwlock_wrlock(&fs->tlock);
		te->removed = 1;
		/* and its partitions' entries ("NAME/I") */
		for (size_t i = 0; i < fs->cap; i++) {
			sbfs_tentry *e = fs->tab[i];
			if (e && strncmp(e->name, te->name, len) == 0 && e->name[len] == '/')
				e->removed = 1;
		}
		pthread_rwlock_unlock(&fs->tlock);
	}
	return rc;
}

fuse_ino_t sbfs_name_ino(const char *name)
{
	return sbfs_ino(name_id(name), SBFS_L_DIR);
}

int sbfs_topic_by_id(sbfs *fs, uint32_t id, sbfs_tentry **out, sbfs_topic **t)
{
	int rc = -ENOENT;
	pthread_rwlock_rdlock(&fs->tlock);
	sbfs_tentry *e = tab_get(fs, id);
	if (e && !e->removed) {
		*out = e;
		if (t)
			*t = e->t;
		rc = 0;
	}
	pthread_rwlock_unlock(&fs->tlock);
	return rc;
}

sbfs_topic *sbfs_topic_handle(sbfs *fs, sbfs_tentry *te)
{
	(void)fs;
	return te->t; /* an entry's topic never changes */
}

int sbfs_topic_snapshot(sbfs *fs, sbfs_tentry ***out, size_t *n)
{
	pthread_rwlock_rdlock(&fs->tlock);
	sbfs_tentry **v = malloc((fs->n ? fs->n : 1) * sizeof *v);
	size_t k = 0;
	if (v)
		for (size_t i = 0; i < fs->cap; i++)
			if (fs->tab[i])
				v[k++] = fs->tab[i];
	pthread_rwlock_unlock(&fs->tlock);
	if (!v)
		return -ENOMEM;
	*out = v;
	*n = k;
	return 0;
}

int sbfs_parse_offset(const char *name, uint64_t *off)
{
	size_t n = strlen(name);
	if (n == 0 || n > 20 || strspn(name, "0123456789") != n)
		return -ENOENT;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ENOENT;
		v = v * 10 + d;
	}
	*off = v;
	return 0;
}

void sbfs_fmt_offset(char buf[21], uint64_t off)
{
	for (int i = 19; i >= 0; i--) {
		buf[i] = (char)('0' + off % 10);
		off /= 10;
	}
	buf[20] = '\0';
}

/* The backend's extent less hidden (rm'ed) records. */
static int visible_bounds(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, unsigned want,
			  sbfs_bounds *out)
{
	sbfs_bounds bd = { 0 };
	int rc = fs->b->ops->bounds(t, want, &bd);
	if (rc)
		return rc;
	uint64_t hide = atomic_load(&te->hide_before);
	sbfs_recinfo ri;
	if (hide <= bd.start) {
		/* all visible */
	} else if (hide >= bd.next) {
		bd.start = bd.next;
		bd.stream_start = bd.stream_end;
	} else if (!(want & SBFS_WANT_STREAM)) {
		bd.start = hide;
	} else if (fs->b->ops->stat_record(t, hide, want, &ri) == 0) {
		bd.start = hide;
		bd.stream_start = ri.stream_pos;
	}
	*out = bd;
	return 0;
}

int sbfs_bounds_of(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, sbfs_bounds *bd)
{
	int rc = visible_bounds(fs, te, t, SBFS_WANT_STREAM, bd);
	if (rc)
		memset(bd, 0, sizeof *bd);
	return rc;
}

int sbfs_offsets_of(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, sbfs_bounds *bd)
{
	int rc = visible_bounds(fs, te, t, 0, bd);
	if (rc)
		memset(bd, 0, sizeof *bd);
	return rc;
}

uint64_t sbfs_log_base(sbfs_tentry *te, const sbfs_bounds *bd)
{
	uint64_t base = bd->stream_start;
	pthread_mutex_lock(&te->pinlock);
	for (size_t i = 0; i < te->nreaders; i++)
		if (te->rbase[i] < base) /* SBFS_PIN_NO_BASE never is */
			base = te->rbase[i];
	pthread_mutex_unlock(&te->pinlock);
	return base;
}

uint64_t sbfs_log_base_offset(sbfs_tentry *te, const sbfs_bounds *bd)
{
	uint64_t base = bd->start;
	pthread_mutex_lock(&te->pinlock);
	for (size_t i = 0; i < te->nreaders; i++)
		if (te->rbase[i] != SBFS_PIN_NO_BASE && te->roff[i] < base)
			base = te->roff[i];
	pthread_mutex_unlock(&te->pinlock);
	return base;
}

int sbfs_log_pin(sbfs_tentry *te, uint64_t base, uint64_t off)
{
	int rc = 0;
	pthread_mutex_lock(&te->pinlock);
	if (te->nreaders == te->rcap) {
		size_t ncap = te->rcap ? te->rcap * 2 : 4;
		uint64_t *b = realloc(te->rbase, ncap * sizeof *b);
		if (b)
			te->rbase = b;
		uint64_t *o = b ? realloc(te->roff, ncap * sizeof *o) : NULL;
		if (o) {
			te->roff = o;
			te->rcap = ncap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		te->rbase[te->nreaders] = base;
		te->roff[te->nreaders] = off;
		te->nreaders++;
	}
	pthread_mutex_unlock(&te->pinlock);
	return rc;
}

void sbfs_log_unpin(sbfs_tentry *te, uint64_t base, uint64_t off)
{
	pthread_mutex_lock(&te->pinlock);
	for (size_t i = 0; i < te->nreaders; i++)
		if (te->rbase[i] == base && te->roff[i] == off) {
			te->nreaders--;
			te->rbase[i] = te->rbase[te->nreaders];
			te->roff[i] = te->roff[te->nreaders];
			break;
		}
	pthread_mutex_unlock(&te->pinlock);
}

int sbfs_stat_visible(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, uint64_t off, sbfs_recinfo *ri)
{
	if (off < atomic_load(&te->hide_before))
		return -ENOENT;
	return fs->b->ops->stat_record(t, off, 0, ri);
}

int sbfs_drop_hidden_locked(sbfs *fs, sbfs_tentry *te, sbfs_topic *t, int force)
{
	sbfs_bounds bd;
	int rc = fs->b->ops->bounds(t, 0, &bd);
	if (rc)
		return rc;
	uint64_t hide = atomic_load(&te->hide_before);
	pthread_mutex_lock(&te->pinlock);
	for (size_t i = 0; !force && i < te->nreaders; i++)
		if (te->roff[i] < hide)
			hide = te->roff[i]; /* a reader's positions still cover those */
	pthread_mutex_unlock(&te->pinlock);
	if (hide <= bd.start)
		return 0;
	return fs->b->ops->delete_before(t, hide < bd.next ? hide : bd.next);
}

int sbfs_drop_hidden(sbfs *fs, sbfs_tentry *te, int force)
{
	pthread_mutex_lock(&te->wlock);
	int rc = sbfs_drop_hidden_locked(fs, te, sbfs_topic_handle(fs, te), force);
	pthread_mutex_unlock(&te->wlock);
	return rc;
}

/* ---- changes ---------------------------------------------------------------- */

void sbfs_named(sbfs_tentry *te, uint64_t off)
{
	uint64_t lo = atomic_load(&te->named_lo);
	while (off < lo && !atomic_compare_exchange_weak(&te->named_lo, &lo, off))
		;
	uint64_t hi = atomic_load(&te->named_hi);
	while (off > hi && !atomic_compare_exchange_weak(&te->named_hi, &hi, off))
		;
}

/* The notifier (notify.c) waits for this. */
void sbfs_notify_kick(sbfs *fs)
{
	pthread_mutex_lock(&fs->nlock);
	if (!fs->kick) {
		fs->kick = 1;
		pthread_cond_signal(&fs->ncond);
	}
	pthread_mutex_unlock(&fs->nlock);
}
