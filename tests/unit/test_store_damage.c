/*
 * test_store_damage.c - random damage in a log's segment (and index) files,
 * SPEC §6: damage that cannot be a torn write is never cut silently.
 *
 * Each case writes a topic of several segments with random record sizes and
 * a small healthy topic beside it, closes cleanly, or (second variant) makes
 * it look like a crash: no clean marker, no index of the newest segment,
 * maybe preallocated zeros after its records; earlier segments keep their
 * index files, which say they were synced. Then it flips bytes and zeroes
 * ranges at random places in random segment files (sometimes an index file
 * too), and checks:
 *
 *  - a plain open (a mount) either opens the topic with nothing missing,
 *    every record reading back intact or failing SB_ECORRUPT (damage the
 *    open does not look at: reads find it), or refuses it with SB_ECORRUPT
 *    and every file byte-identical. Records are cut only where no proof of
 *    a sync covers the damage (a crash: a torn write), and never below it;
 *  - the healthy topic opens and reads in every open;
 *  - a full check (what `streambus recover` does) opens the topic with every
 *    record intact, or refuses it with its segment files byte-identical;
 *  - a repair (`recover --cut`) opens the records, at least all of those
 *    before the damage, intact, with at most gaps (ENOENT) from a damaged
 *    record to its segment's end where later segments follow, and
 *    sb_verify_topic then finds no damage.
 *
 * SB_DAMAGE_CASES sets the number of cases (default 150); SB_DAMAGE_SEED the
 * first seed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"
#include "verify.h"

#define MAXF 64

typedef struct snap {
	int n;
	char *name[MAXF];
	uint8_t *data[MAXF];
	size_t len[MAXF];
} snap;

typedef struct dcase {
	uint64_t seed, rng;
	int crash;            /* the crash-like variant */
	uint64_t n;           /* records written to "t" */
	size_t lo, hi;        /* payload sizes */
	sb_log_config cfg;
	char root[2048], store[3072], tdir[4096];
	char why[512];
} dcase;

static sb_io fast_io;

static int no_sync(void *ctx, int fd)
{
	(void)ctx, (void)fd;
	return 0;
}

static uint64_t rnd(dcase *c)
{
	uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(dcase *c, uint64_t n)
{
	return n ? rnd(c) % n : 0;
}

static size_t len_of(const dcase *c, uint64_t off)
{
	return ut_len(off, c->seed, c->lo, c->hi);
}

static void snap_free(snap *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->name[i]);
		free(s->data[i]);
	}
	s->n = 0;
}

/* Every file of the topic directory, by name. */
static void snap_take(const char *dir, snap *s)
{
	char **names, p[4096];
	int n = uf_list_suffix(dir, "", &names);

	cr_assert_geq(n, 0);
	cr_assert_leq(n, MAXF);
	s->n = 0;
	for (int i = 0; i < n; i++) {
		s->name[s->n] = strdup(names[i]);
		cr_assert_eq(uf_read_all(uf_join(p, sizeof(p), dir, names[i]), &s->data[s->n], &s->len[s->n]), 0);
		s->n++;
	}
	uf_list_free(names, n);
}

static int is_seg(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, SB_SEG_SUFFIX) == 0;
}

/* Are the segment files of a and b the same (names and bytes)? */
static int same_segments(const snap *a, const snap *b, int all_files)
{
	int na = 0, nb = 0;

	for (int i = 0; i < b->n; i++)
		nb += all_files || is_seg(b->name[i]);
	for (int i = 0; i < a->n; i++) {
		if (!all_files && !is_seg(a->name[i]))
			continue;
		na++;
		int found = 0;
		for (int j = 0; j < b->n && !found; j++)
			found = strcmp(a->name[i], b->name[j]) == 0 && a->len[i] == b->len[j] &&
				memcmp(a->data[i], b->data[j], a->len[i]) == 0;
		if (!found)
			return 0;
	}
	return na == nb;
}

static sb_store *open_store(dcase *c, int full_check, int repair)
{
	sb_store_options o;
	sb_store *s = NULL;

	sb_store_options_default(&o);
	o.defaults = c->cfg;
	o.io = &fast_io;
	o.no_flusher = 1;
	o.full_check = full_check;
	o.repair = repair;
	int rc = sb_store_open(c->store, &o, &s);
	cr_assert_eq(rc, 0, "seed %llu: the store does not open: %s", (unsigned long long)c->seed,
		     sb_strerror(rc));
	return s;
}

static int refused_msg(void *arg, const char *name, int err, const char *msg)
{
	dcase *c = arg;
	if (strcmp(name, "t") == 0 && err == SB_ECORRUPT)
		snprintf(c->why, sizeof(c->why), "%s", msg);
	return 0;
}

/* The healthy topic is there and whole. */
static void check_other(dcase *c, sb_store *s)
{
	sb_log *u;
	cr_assert_eq(sb_store_get(s, "u", &u), 0, "seed %llu: the healthy topic is not open",
		     (unsigned long long)c->seed);
	cr_assert_eq(sb_log_next(u), 20);
	for (uint64_t i = 0; i < 20; i++)
		cr_assert_eq(ut_check(u, i, 50, 9), 0);
}

static void write_log(dcase *c)
{
	sb_store *s = open_store(c, 0, 0);
	sb_log *t = ut_topic(s, "t"), *u = ut_topic(s, "u");
	cr_assert(t && u);
	for (uint64_t i = 0; i < c->n; i++)
		cr_assert_eq(ut_append1(t, i, len_of(c, i), c->seed, NULL), 0);
	for (uint64_t i = 0; i < 20; i++)
		cr_assert_eq(ut_append1(u, i, 50, 9, NULL), 0);
	cr_assert_eq(sb_store_close(s), 0);
}

/* Make the clean close look like a crash of a log whose older segments were
 * synced: no clean marker, no index of the newest segment, maybe zeros. */
static void as_crash(dcase *c)
{
	char name[256], p[4096];
	static const uint8_t zeros[3000];

	cr_assert_eq(uf_last_suffix(c->tdir, SB_SEG_SUFFIX, name, sizeof(name)), 0);
	if (below(c, 2))
		cr_assert_eq(uf_write_at(uf_join(p, sizeof(p), c->tdir, name), -1, zeros,
					 1 + below(c, sizeof(zeros))), 0);
	memcpy(name + strlen(name) - 4, SB_IDX_SUFFIX, 5);
	uf_remove(uf_join(p, sizeof(p), c->tdir, name));
	uf_remove(uf_join(p, sizeof(p), c->tdir, SB_CLEAN_NAME));
}

/* Flip bytes / zero ranges in random segment files, sometimes an index. */
static void damage(dcase *c, const snap *s)
{
	int k = 1 + (int)below(c, 3), segs[MAXF], idxs[MAXF], ns = 0, ni = 0;
	char p[4096];

	for (int i = 0; i < s->n; i++) {
		if (is_seg(s->name[i]))
			segs[ns++] = i;
		else if (strstr(s->name[i], SB_IDX_SUFFIX))
			idxs[ni++] = i;
	}
	cr_assert_gt(ns, 0);
	for (int d = 0; d < k; d++) {
		int f = segs[below(c, (uint64_t)ns)];
		uf_join(p, sizeof(p), c->tdir, s->name[f]);
		off_t at = (off_t)below(c, s->len[f]);
		if (below(c, 2)) {
			cr_assert_eq(uf_flip_byte(p, at, (uint8_t)(1 + below(c, 255))), 0);
		} else {
			static const uint8_t zeros[512];
			size_t n = 1 + below(c, sizeof(zeros));
			if ((size_t)at + n > s->len[f])
				n = s->len[f] - (size_t)at;
			cr_assert_eq(uf_write_at(p, at, zeros, n), 0);
		}
	}
	if (ni && below(c, 4) == 0)
		cr_assert_eq(uf_flip_byte(uf_join(p, sizeof(p), c->tdir, s->name[idxs[below(c, (uint64_t)ni)]]),
					  (off_t)below(c, SB_IDX_HDR), 0x10), 0);
}

/* What the damage hit, segment by segment. */
typedef struct verdict {
	int nseg;
	uint64_t base[MAXF];  /* each segment's base offset */
	uint64_t bad[MAXF];   /* first offset whose record (or header) changed, or UINT64_MAX */
	int proven[MAXF];     /* a proof of a sync covers the segment */
	uint64_t first_bad;   /* the smallest bad[], or c->n */
	int first_proven;     /* proven[] of that segment (1 if none) */
} verdict;

/* Is file `name` the same in a and b? */
static int same_file(const snap *a, const snap *b, const char *name)
{
	for (int j = 0; j < a->n; j++)
		for (int k = 0; k < b->n; k++)
			if (!strcmp(a->name[j], name) && !strcmp(b->name[k], name))
				return a->len[j] == b->len[k] && !memcmp(a->data[j], b->data[k], a->len[j]);
	return 0;
}

/*
 * From the files before and after the damage: per segment, the first offset
 * whose record (or segment header) changed, and whether a proof of a sync
 * covers it (its own index file intact, a later one's, or the clean marker):
 * only where none does may an open cut.
 */
static void judge(const dcase *c, const snap *pre, const snap *post, verdict *v)
{
	int idx_ok[MAXF] = {0};

	memset(v, 0, sizeof(*v));
	v->first_bad = c->n;
	v->first_proven = 1;
	for (int i = 0; i < pre->n; i++) {
		if (!is_seg(pre->name[i]))
			continue;
		uint64_t base, bad = UINT64_MAX;
		const uint8_t *a = pre->data[i], *b = NULL;
		size_t len = pre->len[i];
		char iname[64];
		cr_assert_eq(sb_seg_name_parse(pre->name[i], SB_SEG_SUFFIX, &base), 0);
		for (int j = 0; j < post->n; j++)
			if (strcmp(post->name[j], pre->name[i]) == 0)
				b = post->data[j];
		cr_assert_not_null(b);
		sb_seg_name(iname, base, SB_IDX_SUFFIX);
		idx_ok[v->nseg] = same_file(pre, post, iname);
		if (memcmp(a, b, SB_SEG_HDR) != 0) {
			bad = base;
		} else {
			size_t pos = SB_SEG_HDR;
			sb_rec_hdr h;
			while (pos < len && sb_rec_decode(a + pos, len - pos, 0, &h) == SB_REC_OK) {
				if (memcmp(a + pos, b + pos, h.size) != 0) {
					bad = h.offset;
					break;
				}
				pos += h.size;
			}
		}
		v->base[v->nseg] = base;
		v->bad[v->nseg++] = bad;
	}
	for (int i = v->nseg - 1, later = 0; i >= 0; i--) {
		later |= idx_ok[i];
		v->proven[i] = !c->crash || later;
	}
	for (int i = 0; i < v->nseg; i++)
		if (v->bad[i] < v->first_bad) {
			v->first_bad = v->bad[i];
			v->first_proven = v->proven[i];
		}
}

/* May an open that does not look everywhere end the log at `next`? At the
 * end, or at the damage in a segment no proof of a sync covers. */
static int cut_ok(const dcase *c, const verdict *v, uint64_t next)
{
	if (next == c->n)
		return 1;
	for (int i = 0; i < v->nseg; i++)
		if (v->bad[i] == next && !v->proven[i])
			return 1;
	return 0;
}

static void check_records(dcase *c, sb_log *t, uint64_t next, int allow_corrupt, const char *when)
{
	for (uint64_t i = 0; i < next; i++) {
		int rc = ut_check(t, i, len_of(c, i), c->seed);
		if (rc == SB_ECORRUPT && allow_corrupt)
			continue;
		cr_assert_eq(rc, 0, "seed %llu (%s, %s): record %llu of %llu reads %d (%s)",
			     (unsigned long long)c->seed, c->crash ? "crash" : "clean", when,
			     (unsigned long long)i, (unsigned long long)next, rc,
			     rc < 0 ? sb_strerror(rc) : "wrong bytes");
	}
}

/* After a repair: records [0, next) read back intact, but those dropped
 * (ENOENT: a gap where the damage was in a sealed segment that others
 * follow), which are only from a damaged record of their segment on. */
static void check_repaired(dcase *c, const verdict *v, sb_log *t, uint64_t next)
{
	for (uint64_t i = 0; i < next; i++) {
		int rc = ut_check(t, i, len_of(c, i), c->seed), k = v->nseg - 1;
		while (k > 0 && v->base[k] > i)
			k--;
		if (rc == -ENOENT && v->bad[k] <= i)
			continue;
		cr_assert_eq(rc, 0, "seed %llu (%s, repair): record %llu of %llu reads %d (%s; damage at %llu)",
			     (unsigned long long)c->seed, c->crash ? "crash" : "clean", (unsigned long long)i,
			     (unsigned long long)next, rc, rc < 0 ? sb_strerror(rc) : "wrong bytes",
			     (unsigned long long)v->bad[k]);
	}
}

static void one_case(uint64_t seed)
{
	dcase c;
	snap pre = {0}, post = {0}, now = {0};
	verdict v;
	char *root;

	memset(&c, 0, sizeof(c));
	c.seed = c.rng = seed;
	c.crash = (int)(seed & 1);
	c.n = 30 + below(&c, 90);
	c.lo = 1 + below(&c, 40);
	c.hi = c.lo + below(&c, 700);
	ut_cfg(&c.cfg, 4096, SB_SYNC_NEVER);
	c.cfg.index_interval_bytes = 64u << below(&c, 7);
	root = uf_mkdtemp("damage");
	cr_assert_not_null(root);
	snprintf(c.root, sizeof(c.root), "%s", root);
	snprintf(c.store, sizeof(c.store), "%s/store", root);
	snprintf(c.tdir, sizeof(c.tdir), "%s/t", c.store);

	write_log(&c);
	if (c.crash)
		as_crash(&c);
	snap_take(c.tdir, &pre);
	damage(&c, &pre);
	snap_take(c.tdir, &post);
	judge(&c, &pre, &post, &v);
	const char *mode = c.crash ? "crash" : "clean";

	/* a mount */
	sb_store *s = open_store(&c, 0, 0);
	sb_log *t;
	int rc = sb_store_get(s, "t", &t);
	check_other(&c, s);
	if (rc == 0) {
		uint64_t next = sb_log_next(t);
		cr_assert_leq(next, c.n);
		cr_assert_geq(next, v.first_bad, "seed %llu (%s): cut at %llu below the damage at %llu",
			      (unsigned long long)seed, mode, (unsigned long long)next,
			      (unsigned long long)v.first_bad);
		cr_assert(cut_ok(&c, &v, next), "seed %llu (%s): %llu of %llu records left after damage at "
			  "%llu that no torn write explains", (unsigned long long)seed, mode,
			  (unsigned long long)next, (unsigned long long)c.n, (unsigned long long)v.first_bad);
		check_records(&c, t, next, 1, "mount");
	} else {
		cr_assert_eq(rc, SB_ECORRUPT, "seed %llu: %s", (unsigned long long)seed, sb_strerror(rc));
		c.why[0] = '\0';
		sb_store_list_refused(s, refused_msg, &c);
		cr_assert(strstr(c.why, ".seg: byte ") || strstr(c.why, "meta"), "seed %llu: refused without "
			  "naming file and byte: '%s'", (unsigned long long)seed, c.why);
	}
	cr_assert_eq(sb_store_close(s), 0);
	if (rc) {
		snap_take(c.tdir, &now);
		cr_assert(same_segments(&post, &now, 1), "seed %llu (%s): the refused topic's files changed",
			  (unsigned long long)seed, mode);
		snap_free(&now);
	}

	/* streambus recover */
	snap_free(&post);
	snap_take(c.tdir, &post);
	s = open_store(&c, 1, 0);
	check_other(&c, s);
	rc = sb_store_get(s, "t", &t);
	if (rc == 0) {
		uint64_t next = sb_log_next(t);
		cr_assert(next == c.n ? v.first_bad == c.n : next == v.first_bad && !v.first_proven,
			  "seed %llu (%s): full check opened %llu of %llu records, damage at %llu",
			  (unsigned long long)seed, mode, (unsigned long long)next, (unsigned long long)c.n,
			  (unsigned long long)v.first_bad);
		check_records(&c, t, next, 0, "full check");
	} else {
		cr_assert_eq(rc, SB_ECORRUPT);
	}
	cr_assert_eq(sb_store_close(s), 0);
	if (rc) {
		snap_take(c.tdir, &now);
		cr_assert(same_segments(&post, &now, 0), "seed %llu (%s): full check changed the segments "
			  "of a topic it refused", (unsigned long long)seed, mode);
		snap_free(&now);
	}

	/* streambus recover --cut */
	s = open_store(&c, 1, 1);
	check_other(&c, s);
	cr_assert_eq(sb_store_get(s, "t", &t), 0, "seed %llu: repair does not open the topic",
		     (unsigned long long)seed);
	uint64_t next = sb_log_next(t);
	cr_assert_geq(next, v.first_bad, "seed %llu (%s): repair cut at %llu, damage at %llu",
		      (unsigned long long)seed, mode, (unsigned long long)next, (unsigned long long)v.first_bad);
	check_repaired(&c, &v, t, next);
	cr_assert_eq(sb_store_close(s), 0);
	sb_verify_result vr;
	cr_assert_eq(sb_verify_topic(c.tdir, NULL, NULL, NULL, &vr), 0);
	cr_assert_eq(sb_verify_damage(&vr), 0, "seed %llu (%s): verify after repair: %llu problems",
		     (unsigned long long)seed, mode, (unsigned long long)sb_verify_damage(&vr));
	cr_assert_eq(vr.next, next);

	snap_free(&pre);
	snap_free(&post);
	uf_rmrf(root);
	free(root);
}

Test(damage, random_damage_is_refused_or_harmless_and_repairable, .timeout = 600)
{
	const char *e = getenv("SB_DAMAGE_CASES"), *f = getenv("SB_DAMAGE_SEED");
	uint64_t n = e ? strtoull(e, NULL, 10) : 150, first = f ? strtoull(f, NULL, 10) : 1;

	fast_io = *sb_io_default();
	fast_io.fdatasync = no_sync;
	for (uint64_t seed = first; seed < first + n; seed++)
		one_case(seed);
}

/*
 * A valid index file is the proof that its segment was synced, so one is
 * never written before its segment's fdatasync succeeded, also when
 * recovery rebuilds it (after a crash the records may be in the page cache
 * only): with that fdatasync failing, no index file appears.
 */
Test(damage, no_index_file_before_its_segment_is_synced)
{
	ut_env env;
	sb_log_config cfg;
	sb_store *s;
	sb_log *t;
	char tdir[4096], name[64], p[4096];
	char **segs;

	cr_assert_eq(ut_env_init(&env, "idxsync"), 0);
	ut_cfg(&cfg, 4096, SB_SYNC_NEVER);
	cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
	t = ut_topic(s, "t");
	cr_assert_not_null(t);
	cr_assert_eq(ut_append_n(t, 200, 3, 20, 200), 0);
	cr_assert_eq(sb_store_close(s), 0);
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	int n = uf_list_suffix(tdir, SB_SEG_SUFFIX, &segs);
	cr_assert_gt(n, 2);
	/* the second segment's index never made it (a crash before its sync) */
	snprintf(name, sizeof(name), "%s", segs[1]);
	memcpy(name + strlen(name) - 4, SB_IDX_SUFFIX, 5);
	uf_join(p, sizeof(p), tdir, name);
	cr_assert_eq(uf_remove(p), 0);

	fio *f = fio_new(env.stash);
	cr_assert_not_null(f);
	cr_assert_eq(fio_fail(f, FIO_FDATASYNC, 1, EIO, FIO_STICKY, segs[1]), 0);
	int rc = ut_open(env.store, &cfg, fio_io(f), &s);
	if (rc == 0)
		sb_store_close(s);
	cr_expect(!uf_exists(p), "recovery wrote %s although its segment's fdatasync failed (open: %s)", name,
		  sb_strerror(rc));
	fio_free(f);
	uf_list_free(segs, n);
	ut_env_fini(&env);
}

static int lost_msg(void *arg, const char *name, int err, const char *msg)
{
	if (strcmp(name, "t") == 0 && err == SB_ECORRUPT)
		snprintf(arg, 512, "%s", msg);
	return 0;
}

/* A repairing open (what `streambus recover --cut` does) of dir. */
static sb_store *open_repairing(const char *dir, const sb_log_config *cfg)
{
	sb_store_options o;
	sb_store *s = NULL;

	sb_store_options_default(&o);
	o.defaults = *cfg;
	o.repair = 1;
	cr_assert_eq(sb_store_open(dir, &o, &s), 0);
	return s;
}

/*
 * The last segment cut exactly at a record boundary, short of what its index
 * file covers (an index is written only once its segment was synced): synced
 * records are gone. The open refuses the topic rather than serve the rest and
 * hand the lost offsets to new appends; a repairing open (recover --cut) cuts
 * there and the log goes on from the cut. (Found by tools/damage: the mount
 * served 5 records and gave the next append offset 5, a synced record's.)
 */
Test(damage, cut_at_a_record_boundary_short_of_the_index_is_refused)
{
	ut_env env;
	sb_log_config cfg;
	sb_store *s;
	sb_log *t;
	char tdir[4096], p[4096], why[512] = "";
	char **segs;
	struct stat st;

	cr_assert_eq(ut_env_init(&env, "lost"), 0);
	ut_cfg(&cfg, 1u << 20, SB_SYNC_NEVER);
	for (int round = 0; round < 2; round++) { /* two clean closes */
		cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
		t = ut_topic(s, "t");
		cr_assert_not_null(t);
		cr_assert_eq(ut_append_n(t, round ? 5 : 50, 3 + round, 20, 200), 0);
		cr_assert_eq(sb_store_close(s), 0);
		ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
		int n = uf_list_suffix(tdir, SB_SEG_SUFFIX, &segs);
		cr_assert_eq(n, 1);
		uf_join(p, sizeof(p), tdir, segs[0]);
		uf_list_free(segs, n);
		if (round == 0)
			cr_assert_eq(stat(p, &st), 0); /* the length after 50 records */
	}
	cr_assert_eq(uf_truncate(p, (uint64_t)st.st_size), 0); /* the 5 later records cut away */
	/* and no clean marker (a crash after the sync): only the index tells */
	uf_join(p, sizeof(p), tdir, SB_CLEAN_NAME);
	cr_assert_eq(unlink(p), 0);

	cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
	cr_expect_neq(sb_store_get(s, "t", &t), 0, "the topic opened with synced records lost");
	sb_store_list_refused(s, lost_msg, why);
	cr_expect(strstr(why, "records lost"), "refused without saying records were lost: '%s'", why);
	cr_assert_eq(sb_store_close(s), 0);

	s = open_repairing(env.store, &cfg);
	cr_assert_eq(sb_store_get(s, "t", &t), 0);
	cr_assert_eq(sb_log_next(t), 50);
	cr_assert_eq(sb_store_close(s), 0);
	ut_env_fini(&env);
}

/*
 * The newest segment changed after a clean close: cut short anywhere (at a
 * record boundary or inside a record), made longer by garbage, or removed.
 * None of it is a torn write, so a plain open (a mount) refuses the topic,
 * saying the log was closed cleanly, with every file as it was (zeros
 * added open as they are: zeros end a segment);
 * a repairing open (recover --cut) opens the records before the change,
 * intact. Generated: SB_DAMAGE_CASES / 5 cases (at least 30). (Found by
 * exploratory testing: a mount cut the records past a truncation of the
 * newest segment of a cleanly closed log, saying so only on stderr.)
 */
Test(damage, newest_segment_changed_after_a_clean_close_is_refused, .timeout = 300)
{
	const char *e = getenv("SB_DAMAGE_CASES");
	int cases = (e ? atoi(e) : 150) / 5;
	uint64_t rng = 0x5eed;

	if (cases < 30)
		cases = 30;
	for (int c = 0; c < cases; c++) {
		ut_env env;
		sb_log_config cfg;
		sb_store *s;
		sb_log *t;
		char tdir[4096], p[4096], why[512] = "";
		char **segs;
		uint64_t seed = 100 + (uint64_t)c;
		size_t n = 20 + ut_splitmix(&rng) % 300, hi = 16 + ut_splitmix(&rng) % 400;
		int kind = (int)(ut_splitmix(&rng) % 4);

		cr_assert_eq(ut_env_init(&env, "changed"), 0);
		ut_cfg(&cfg, 4096 + ut_splitmix(&rng) % 16384, SB_SYNC_NEVER);
		cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
		cr_assert_not_null(t = ut_topic(s, "t"));
		cr_assert_eq(ut_append_n(t, n, seed, 1, hi), 0);
		cr_assert_eq(sb_store_close(s), 0);
		ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
		int ns = uf_list_suffix(tdir, SB_SEG_SUFFIX, &segs);
		cr_assert_gt(ns, 0);
		uf_join(p, sizeof(p), tdir, segs[ns - 1]);
		uint64_t first = strtoull(segs[ns - 1], NULL, 10); /* records before it stay */
		off_t len = uf_size(p);
		if (kind == 3 && ns < 2)
			kind = 0;
		if (kind == 0 || len <= SB_SEG_HDR + 1) { /* shorter, by 1 byte up to all its records */
			kind = 0;
			cr_assert_eq(uf_truncate(p, len - 1 - (off_t)(ut_splitmix(&rng) % (uint64_t)(len - SB_SEG_HDR))), 0);
		} else if (kind == 1) { /* longer: zeros */
			cr_assert_eq(uf_truncate(p, len + 1 + (off_t)(ut_splitmix(&rng) % 8192)), 0);
		} else if (kind == 2) { /* longer: garbage */
			uint8_t g[64];
			for (size_t i = 0; i < sizeof(g); i++)
				g[i] = (uint8_t)ut_splitmix(&rng);
			cr_assert_eq(uf_write_at(p, len, g, 1 + ut_splitmix(&rng) % sizeof(g)), 0);
		} else { /* removed */
			cr_assert_eq(uf_remove(p), 0);
		}
		uf_list_free(segs, ns);
		snap before;
		snap_take(tdir, &before);

		cr_assert_eq(ut_open(env.store, &cfg, NULL, &s), 0);
		if (kind == 1) { /* zeros end a segment (format.h): nothing to refuse */
			sb_store_list_refused(s, lost_msg, why);
			cr_assert_eq(sb_store_get(s, "t", &t), 0, "case %d: zeros after a clean close refused: %s", c, why);
			cr_expect_eq(sb_log_next(t), n);
			for (uint64_t off = 0; off < n; off++)
				cr_expect_eq(ut_check(t, off, ut_len(off, seed, 1, hi), seed), 0);
			cr_assert_eq(sb_store_close(s), 0);
			snap_free(&before);
			ut_env_fini(&env);
			continue;
		}
		cr_expect_neq(sb_store_get(s, "t", &t), 0, "case %d (kind %d): the topic opened", c, kind);
		sb_store_list_refused(s, lost_msg, why);
		cr_expect(strstr(why, "closed cleanly"), "case %d (kind %d): refused without saying why: '%s'", c, kind,
			  why);
		cr_assert_eq(sb_store_close(s), 0);
		snap after;
		snap_take(tdir, &after);
		cr_expect(same_segments(&before, &after, 1), "case %d (kind %d): files changed by a refusing open", c, kind);
		snap_free(&before);
		snap_free(&after);

		s = open_repairing(env.store, &cfg);
		cr_assert_eq(sb_store_get(s, "t", &t), 0, "case %d (kind %d): recover --cut", c, kind);
		cr_expect_geq(sb_log_next(t), first, "case %d (kind %d): records before the newest segment lost", c,
			      kind);
		for (uint64_t off = 0; off < sb_log_next(t); off++)
			cr_expect_eq(ut_check(t, off, ut_len(off, seed, 1, hi), seed), 0, "case %d: record %llu", c,
				     (unsigned long long)off);
		cr_assert_eq(sb_store_close(s), 0);
		ut_env_fini(&env);
	}
}
