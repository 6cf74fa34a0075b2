/*
 * bench_keys.c - `streambus bench keys`: a topic as a table, against its
 * peers in the same run.
 *
 *   memtable   put and get of N random 8- and 32-byte keys in the MemTable
 *              (store/memtable.c: a hash index over entries in an arena,
 *              lock-free gets, keys copied) and in a bare reference B+tree
 *              (fanout 32, the MemTable until 2026-11-30, no lock, keys not
 *              copied), N = 10,000 (the seed's get figure's fill level),
 *              100,000 and 1,000,000, at least 1,000,000 puts (into
 *              fresh tables again) and gets (cycling over the keys in a
 *              random order other than the puts'), then the same puts
 *              into the last table cleared with its memory kept (as a
 *              MemTable refilled after its flush, without the page
 *              faults of fresh memory); --runs runs each (median and
 *              spread), wall and CPU.
 *   get        (in bench_keys_get.c) get by key with the value (100 bytes)
 *              copied out, N random 16-byte keys, warm, after a clean
 *              close and reopen: ours
 *              (sb_log_get_key) against LevelDB, RocksDB and LMDB loaded
 *              with the same keys and values (defaults; LMDB: one read
 *              transaction per 1,000 gets, reset and renewed).
 *   append     keyed vs unkeyed append of 100-byte payloads, sync=never,
 *              one record per call.
 *   memory     (--mem N) N distinct keys appended to one topic: RssAnon
 *              of this process, the open after a clean close.
 */
#define SB_BENCH_INTERNAL
#include "bench.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_keys.h"
#include "sb_store.h"

/* ---- the reference B+tree (bench only) ------------------------------------- */

/*
 * The baseline of the memtable figure: store/memtable.c's B+tree as it was
 * when the MemTable became one (57c0700: fanout 32, the first 8 key bytes
 * as a big-endian integer in the node, key_prefix and key_cmp here as
 * ref_prefix and ref_cmp), without its lock and its arena (keys not
 * copied). A copy on purpose, and kept apart from the store: the figure
 * shows what the lock and the arena cost next to the bare tree, so the
 * baseline must not move when memtable.c changes (a change there shows up
 * as a change of the ratio), and tools see the store only through
 * sb_store.h, which has no business exporting a lock-free tree for a bench.
 */

#define REF_FAN 32
typedef struct ref_node {
	int leaf, n;
	uint64_t pfx[REF_FAN];
	const uint8_t *key[REF_FAN];
	uint16_t klen[REF_FAN];
	union {
		struct ref_node *kid[REF_FAN + 1];
		uint64_t val[REF_FAN];
	} u;
} ref_node;

static inline uint64_t ref_prefix(const uint8_t *k, size_t kl)
{
	uint8_t b[8] = {0};
	uint64_t v;
	memcpy(b, k, kl < 8 ? kl : 8);
	memcpy(&v, b, 8);
	return __builtin_bswap64(v);
}

static inline int ref_cmp(const ref_node *n, int i, uint64_t pfx, const uint8_t *k, size_t kl)
{
	if (n->pfx[i] != pfx)
		return n->pfx[i] < pfx ? -1 : 1;
	size_t nl = n->klen[i], m = nl < kl ? nl : kl;
	if (m > 8) {
		int c = memcmp(n->key[i] + 8, k + 8, m - 8);
		if (c)
			return c;
	}
	return (nl > kl) - (nl < kl);
}

/* first index with key >= k */
static inline int ref_lower(const ref_node *n, uint64_t pfx, const uint8_t *k, size_t kl)
{
	int lo = 0, hi = n->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (ref_cmp(n, mid, pfx, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int ref_get(const ref_node *n, const uint8_t *k, size_t kl, uint64_t *v)
{
	uint64_t pfx = ref_prefix(k, kl);
	while (!n->leaf) {
		int i = ref_lower(n, pfx, k, kl);
		if (i < n->n && ref_cmp(n, i, pfx, k, kl) == 0)
			i++;
		n = n->u.kid[i];
	}
	int i = ref_lower(n, pfx, k, kl);
	if (i < n->n && ref_cmp(n, i, pfx, k, kl) == 0) {
		*v = n->u.val[i];
		return 0;
	}
	return -ENOENT;
}

/* Split the full child x->kid[i] in two (x is not full). */
static int ref_split(ref_node *x, int i)
{
	ref_node *y = x->u.kid[i], *z = calloc(1, sizeof(*z));
	int h = REF_FAN / 2;
	uint64_t sp;
	const uint8_t *sk;
	uint16_t sl;

	if (!z)
		return -1;
	z->leaf = y->leaf;
	if (y->leaf) {
		z->n = REF_FAN - h;
		memcpy(z->pfx, y->pfx + h, z->n * sizeof(uint64_t));
		memcpy(z->key, y->key + h, z->n * sizeof(void *));
		memcpy(z->klen, y->klen + h, z->n * sizeof(uint16_t));
		memcpy(z->u.val, y->u.val + h, z->n * sizeof(uint64_t));
		sp = z->pfx[0], sk = z->key[0], sl = z->klen[0];
	} else {
		z->n = REF_FAN - h - 1;
		memcpy(z->pfx, y->pfx + h + 1, z->n * sizeof(uint64_t));
		memcpy(z->key, y->key + h + 1, z->n * sizeof(void *));
		memcpy(z->klen, y->klen + h + 1, z->n * sizeof(uint16_t));
		memcpy(z->u.kid, y->u.kid + h + 1, (z->n + 1) * sizeof(void *));
		sp = y->pfx[h], sk = y->key[h], sl = y->klen[h];
	}
	y->n = h;
	memmove(x->pfx + i + 1, x->pfx + i, (x->n - i) * sizeof(uint64_t));
	memmove(x->key + i + 1, x->key + i, (x->n - i) * sizeof(void *));
	memmove(x->klen + i + 1, x->klen + i, (x->n - i) * sizeof(uint16_t));
	memmove(x->u.kid + i + 2, x->u.kid + i + 1, (x->n - i) * sizeof(void *));
	x->pfx[i] = sp;
	x->key[i] = sk;
	x->klen[i] = sl;
	x->u.kid[i + 1] = z;
	x->n++;
	return 0;
}

/* Insert or replace (k must stay valid: the tree keeps the pointer). */
static int ref_put(ref_node **root, const uint8_t *k, size_t kl, uint64_t v)
{
	uint64_t pfx = ref_prefix(k, kl);
	ref_node *x = *root;

	if (x->n == REF_FAN) {
		ref_node *r = calloc(1, sizeof(*r));
		if (!r)
			return -1;
		r->u.kid[0] = x;
		if (ref_split(r, 0))
			return -1;
		*root = x = r;
	}
	while (!x->leaf) {
		int i = ref_lower(x, pfx, k, kl);
		if (i < x->n && ref_cmp(x, i, pfx, k, kl) == 0)
			i++;
		if (x->u.kid[i]->n == REF_FAN) {
			if (ref_split(x, i))
				return -1;
			if (ref_cmp(x, i, pfx, k, kl) <= 0)
				i++;
		}
		x = x->u.kid[i];
	}
	int i = ref_lower(x, pfx, k, kl);
	if (i < x->n && ref_cmp(x, i, pfx, k, kl) == 0) {
		x->u.val[i] = v;
		return 0;
	}
	memmove(x->pfx + i + 1, x->pfx + i, (x->n - i) * sizeof(uint64_t));
	memmove(x->key + i + 1, x->key + i, (x->n - i) * sizeof(void *));
	memmove(x->klen + i + 1, x->klen + i, (x->n - i) * sizeof(uint16_t));
	memmove(x->u.val + i + 1, x->u.val + i, (x->n - i) * sizeof(uint64_t));
	x->pfx[i] = pfx;
	x->key[i] = k;
	x->klen[i] = (uint16_t)kl;
	x->u.val[i] = v;
	x->n++;
	return 0;
}

static void ref_free(ref_node *n)
{
	if (!n)
		return;
	if (!n->leaf)
		for (int i = 0; i <= n->n; i++)
			ref_free(n->u.kid[i]);
	free(n);
}

/* ---- helpers shared with bench_keys_get.c (bench_keys.h) ---------------------- */

void kb_gkey(uint64_t i, uint8_t k[GKEY])
{
	/* distinct, random order: an odd multiplier is a bijection */
	uint64_t x = i * 0x9e3779b97f4a7c15ull;
	static const char hex[] = "0123456789abcdef";
	for (int b = 0; b < 16; b++)
		k[b] = (uint8_t)hex[(x >> (60 - 4 * b)) & 15];
}

void kb_gval(uint64_t i, uint8_t v[VAL])
{
	uint64_t x = i * 0xbf58476d1ce4e5b9ull + 1;
	for (unsigned b = 0; b < VAL; b += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(v + b, &x, VAL - b < 8 ? VAL - b : 8);
	}
}

double kb_ns_per(uint64_t t0, uint64_t n)
{
	return n ? (double)(sb_bench_now() - t0) / (double)n : 0;
}

uint64_t kb_cpu_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long rss_anon_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---- MemTable vs B+tree ---------------------------------------------------- */

/* One run at one size: ns per put and per get, wall and this thread's CPU. */
typedef struct mt_fig {
	double put, put_cpu, get, get_cpu; /* the MemTable */
	double put_sys, put_flt;           /* of put_cpu: in the kernel; page faults a 1,000 puts */
	double kput, kput_cpu, kput_sys;   /* put into a cleared table, its memory kept */
	double rput, rget;                 /* the bare B+tree (wall) */
	double mib;                        /* the MemTable's bytes */
	double touch;                      /* fresh memory of the table's size, touched alone */
} mt_fig;

/* This thread's time in the kernel (ns) and its page faults (minor and
 * major) so far. */
static void mt_kernel(uint64_t *sys_ns, uint64_t *faults)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru)) {
		*sys_ns = *faults = 0;
		return;
	}
	*sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
	*faults = (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

/* Time taken by puts: wall and this thread's CPU, of which in the kernel,
 * ns; its page faults. */
typedef struct mt_acc {
	uint64_t wall, cpu, sys, flt;
} mt_acc;

/* Put the n keys into m (offsets 0..n-1), the time added to *a. */
static void mt_fill(sb_bench_memtable *m, const uint8_t *keys, uint64_t n, size_t klen, mt_acc *a)
{
	uint64_t s0, f0, s1, f1;

	mt_kernel(&s0, &f0);
	uint64_t t0 = sb_bench_now(), c0 = kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	for (uint64_t i = 0; i < n; i++)
		sb_bench_memtable_put(m, keys + i * klen, klen, i);
	a->cpu += kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	a->wall += sb_bench_now() - t0;
	mt_kernel(&s1, &f1);
	a->sys += s1 - s0;
	a->flt += f1 - f0;
}

/* The same puts into the table m again, cleared before each round with
 * its memory kept (sb_mt_keep), as a MemTable is refilled after each
 * flush: what a put costs without its first touch of fresh memory. */
static void mt_refill(sb_bench_memtable *m, const uint8_t *keys, uint64_t n, size_t klen, uint64_t rounds,
		      mt_fig *f)
{
	mt_acc a = {0};

	for (uint64_t r = 0; r < rounds; r++) {
		sb_bench_memtable_clear(m, SIZE_MAX);
		mt_fill(m, keys, n, klen, &a);
	}
	f->kput = (double)a.wall / (double)(rounds * n);
	f->kput_cpu = (double)a.cpu / (double)(rounds * n);
	f->kput_sys = (double)a.sys / (double)(rounds * n);
}

/*
 * The control of the new-table put, in the same run: ns to touch `bytes`
 * of fresh memory (mapped as the table maps its big blocks: 2 MiB aligned,
 * huge pages asked for), a byte a 4 KiB page, then unmapped. On a KVM
 * guest whose virtio-balloon reports free memory to the host (the
 * kernel's page_reporting, blocks of 2 MiB and up), memory freed seconds
 * before costs the host's fault on its first touch: 108 MiB took 12 ms
 * touched again at once and 200-250 ms after a 3 s pause here (2026-12-03,
 * docs/BENCHMARKS.md). The table's fill pays that too, for what it takes
 * of such memory: the control says what fresh memory costs the guest at
 * that moment, beside the put's time in the kernel. 0 when the mapping
 * fails.
 */
static uint64_t mt_touch(size_t bytes)
{
	size_t huge = 2u << 20, len = (bytes + huge - 1) & ~(huge - 1);
	uint8_t *p = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	uint8_t *a = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
	madvise(a, len, MADV_HUGEPAGE);
	uint64_t t0 = sb_bench_now();
	for (size_t i = 0; i < len; i += 4096)
		a[i] = 1;
	uint64_t ns = sb_bench_now() - t0;
	munmap(p, len + huge);
	return ns;
}

/* n keys put into an empty table, `rounds` times (a new table each, the
 * times summed: at least 1,000,000 puts, so that one preemption does not
 * make the figure), then `gets` gets cycling over the keys in `order` (a
 * random order other than the puts') in the last table. The puts' kernel
 * time is their first touch of the memory they take (page faults: 15 us
 * a page on a guest whose host takes back freed memory, 2026-12-01). */
static int mt_run(const uint8_t *keys, const uint64_t *order, uint64_t n, size_t klen, uint64_t gets, mt_fig *f)
{
	uint64_t sum = 0, v = 0, rounds = n < 1000000 ? 1000000 / n : 1, wall = 0;
	sb_bench_memtable *m = NULL;
	mt_acc a = {0};

	for (uint64_t r = 0; r < rounds; r++) {
		sb_bench_memtable_free(m);
		if (sb_bench_memtable_new(&m))
			return -1;
		mt_fill(m, keys, n, klen, &a);
	}
	f->put_cpu = (double)a.cpu / (double)(rounds * n);
	f->put_sys = (double)a.sys / (double)(rounds * n);
	f->put_flt = 1000.0 * (double)a.flt / (double)(rounds * n);
	f->put = (double)a.wall / (double)(rounds * n);
	uint64_t touch = 0;
	for (uint64_t r = 0; r < rounds; r++)
		touch += mt_touch(sb_bench_memtable_bytes(m));
	f->touch = (double)touch / (double)(rounds * n);
	uint64_t t0 = sb_bench_now(), c0 = kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	for (uint64_t i = 0, j = 0; i < gets; i++, j = j + 1 == n ? 0 : j + 1) {
		sb_bench_memtable_get(m, keys + order[j] * klen, klen, &v);
		sum += v;
	}
	f->get_cpu = (double)(kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)gets;
	f->get = kb_ns_per(t0, gets);
	sb_bench_keep(sum);
	f->mib = (double)sb_bench_memtable_bytes(m) / (1 << 20);
	mt_refill(m, keys, n, klen, rounds, f);
	sb_bench_memtable_free(m);

	ref_node *root = NULL;
	f->rput = f->rget = -1;
	wall = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		ref_free(root);
		if (!(root = calloc(1, sizeof(*root))))
			return 0;
		root->leaf = 1;
		t0 = sb_bench_now();
		for (uint64_t i = 0; i < n; i++)
			ref_put(&root, keys + i * klen, klen, i);
		wall += sb_bench_now() - t0;
	}
	f->rput = (double)wall / (double)(rounds * n);
	sum = 0;
	t0 = sb_bench_now();
	for (uint64_t i = 0, j = 0; i < gets; i++, j = j + 1 == n ? 0 : j + 1) {
		if (ref_get(root, keys + order[j] * klen, klen, &v) == 0)
			sum += v;
	}
	f->rget = kb_ns_per(t0, gets);
	sb_bench_keep(sum);
	ref_free(root);
	return 0;
}

static int mt_dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* "median [min-max]" of the runs' field at byte offset `at` of mt_fig. */
static const char *mt_spread(const mt_fig *f, int runs, size_t at, char *buf, size_t len)
{
	double v[16];

	for (int r = 0; r < runs; r++)
		memcpy(&v[r], (const char *)&f[r] + at, sizeof(double));
	qsort(v, (size_t)runs, sizeof(double), mt_dcmp);
	snprintf(buf, len, "%6.1f [%.1f-%.1f]", runs % 2 ? v[runs / 2] : (v[runs / 2 - 1] + v[runs / 2]) / 2, v[0],
		 v[runs - 1]);
	return buf;
}

/*
 * The seed's MemTable figures (put 1,024 ns, get 366 ns here) are Go
 * benchmarks: put of b.N fresh keys ("key%d", with the key and value
 * formatted per put) into a table growing from empty, and get of 10,000
 * keys put beforehand, cycled. Here: put of n random keys into an empty
 * table, then at least 1,000,000 gets cycling over the n keys in a random
 * order, n = 10,000 (the seed's get fill level) to mt_keys; puts into
 * fresh tables again up to 1,000,000 in all; medians and spread of mt_runs
 * runs, wall and CPU.
 */
static void bench_memtable(const kopts *o, size_t klen)
{
	uint64_t n = o->mt_keys, seed = 88172645463325252ull, gets = n < 1000000 ? 1000000 : n;
	uint8_t *keys = malloc(n * klen);
	uint64_t *order = malloc(n * sizeof(*order));
	mt_fig f[16];
	int runs = o->mt_runs < 1 ? 1 : o->mt_runs > 16 ? 16 : o->mt_runs;
	char a[64], b[64], c[64], d[64];

	if (!keys || !order) {
		printf("memtable: no memory\n");
		goto out;
	}
	for (uint64_t i = 0; i < n * klen; i += 8) {
		uint64_t r = sb_bench_rand(&seed);
		memcpy(keys + i, &r, n * klen - i < 8 ? n * klen - i : 8);
	}
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = sb_bench_below(&seed, i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int r = 0; r < runs; r++) {
		if (mt_run(keys, order, n, klen, gets, &f[r])) {
			printf("memtable: no memory\n");
			goto out;
		}
	}
	printf("memtable %2zu-byte keys, %8llu keys, %llu gets, %d runs, median [min-max], ns/op:\n", klen,
	       (unsigned long long)n, (unsigned long long)gets, runs);
	printf("  MemTable put %s CPU %s  get %s CPU %s  (%.1f MiB)\n", mt_spread(f, runs, offsetof(mt_fig, put), a, 64),
	       mt_spread(f, runs, offsetof(mt_fig, put_cpu), b, 64), mt_spread(f, runs, offsetof(mt_fig, get), c, 64),
	       mt_spread(f, runs, offsetof(mt_fig, get_cpu), d, 64), f[0].mib);
	printf("  of the put's CPU, in the kernel %s (page faults a 1,000 puts %s)\n",
	       mt_spread(f, runs, offsetof(mt_fig, put_sys), a, 64), mt_spread(f, runs, offsetof(mt_fig, put_flt), b, 64));
	printf("  control: fresh memory of the table's size touched alone %s a put\n",
	       mt_spread(f, runs, offsetof(mt_fig, touch), a, 64));
	printf("  MemTable put into the table cleared, its memory kept %s CPU %s (in the kernel %s)\n",
	       mt_spread(f, runs, offsetof(mt_fig, kput), a, 64), mt_spread(f, runs, offsetof(mt_fig, kput_cpu), b, 64),
	       mt_spread(f, runs, offsetof(mt_fig, kput_sys), c, 64));
	printf("  bare B+tree put %s  get %s\n", mt_spread(f, runs, offsetof(mt_fig, rput), a, 64),
	       mt_spread(f, runs, offsetof(mt_fig, rget), b, 64));
out:
	free(keys);
	free(order);
}

/* ---- keyed vs unkeyed append ----------------------------------------------- */

/* One append run's figures, ns per append. */
typedef struct arun {
	double wall;        /* the appends (keyed: and a get of the last key:
			     * the index has caught up with them) */
	double cpu;         /* CPU of the whole process (the flusher's table
			     * writes included), which a loaded machine moves
			     * less */
	double wall_close;  /* the same with the store's close (the flusher
			     * joined: its table writes and merges in progress
			     * finish; the close's own work; the sorted runs not
			     * yet due, at most key_memtable_bytes, are left to
			     * the next open's replay) */
	double cpu_close;
	double cpu_thr;     /* the appending thread's own CPU before the close
			     * (what bounds the throughput when the flusher has
			     * a core of its own) */
	double cpu_bg;      /* with the close, the process's CPU less the
			     * appending thread's: the flusher's (and any other
			     * background thread's) */
	uint64_t sorts, writes; /* times the appending thread indexed the tail
				 * or wrote a table for a lagging flusher */
} arun;

static int append_run(const kopts *o, const char *dir, int keyed, arun *f)
{
	sb_store_options so;
	sb_store *s = NULL;
	sb_log *l;
	uint8_t k[GKEY], v[VAL];
	int rc;

	sb_store_options_default(&so);
	so.defaults.sync = SB_SYNC_NEVER;
	if (o->memtable)
		so.defaults.key_memtable_bytes = o->memtable;
	if (o->segment)
		so.defaults.segment_bytes = o->segment;
	if ((rc = sb_store_open(dir, &so, &s)) || (rc = sb_store_create(s, "t")) || (rc = sb_store_get(s, "t", &l)))
		goto out;
	kb_gval(1, v);
	uint64_t c0 = kb_cpu_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = sb_bench_now(), h0 = kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	for (uint64_t i = 0; i < o->appends; i++) {
		kb_gkey(i, k);
		sb_record_in rec = {.key = keyed ? k : NULL, .key_len = keyed ? GKEY : 0, .value = v, .value_len = VAL};
		if ((rc = sb_log_append(l, &rec, 1, NULL)))
			goto out;
	}
	f->sorts = f->writes = 0;
	if (keyed) {
		uint8_t vb[VAL];
		size_t n;
		sb_log_key_stats ks;
		if ((rc = sb_log_get_key_stats(l, &ks)))
			goto out;
		f->sorts = ks.appender_sorts;
		f->writes = ks.appender_writes;
		if ((rc = sb_log_get_key(l, k, GKEY, vb, sizeof(vb), &n, NULL)))
			goto out;
	}
	double n = (double)o->appends;
	f->wall = kb_ns_per(t0, o->appends);
	f->cpu = (double)(kb_cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / n;
	f->cpu_thr = (double)(kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - h0) / n;
	rc = sb_store_close(s);
	s = NULL;
	f->cpu_close = (double)(kb_cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / n;
	f->cpu_bg = f->cpu_close - (double)(kb_cpu_ns(CLOCK_THREAD_CPUTIME_ID) - h0) / n;
	f->wall_close = kb_ns_per(t0, o->appends);
out:
	if (s)
		sb_store_close(s);
	if (rc)
		printf("append: %s\n", sb_strerror(rc));
	sb_bench_rmtree(dir);
	return rc ? -1 : 0;
}

#define PAIRS_MAX 100

/* The median of field `at` (offsetof) of runs r[0..n). */
static double arun_median(const arun *r, int n, size_t at)
{
	double v[PAIRS_MAX];

	for (int i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&r[i] + at, sizeof(double));
	return sb_bench_median(v, n);
}

#define AMED(r, n, field) arun_median(r, n, offsetof(arun, field))

static void bench_append(const kopts *o)
{
	char d[4200];
	arun un[PAIRS_MAX], ke[PAIRS_MAX];
	int np = o->pairs < 1 ? 1 : o->pairs > PAIRS_MAX ? PAIRS_MAX : o->pairs, sorted = 0, wrote = 0;
	uint64_t sorts = 0, writes = 0;

	snprintf(d, sizeof(d), "%s/append", o->dir);
	for (int rep = 0; rep < np; rep++) { /* alternate, medians */
		if (append_run(o, d, 0, &un[rep]) || append_run(o, d, 1, &ke[rep]))
			return;
		sorted += ke[rep].sorts > 0;
		wrote += ke[rep].writes > 0;
		sorts += ke[rep].sorts;
		writes += ke[rep].writes;
		if (o->verbose)
			printf("  pair %d: wall %.1f/%.1f ns; CPU %.1f/%.1f; thread %.1f/%.1f; background %.1f/%.1f; "
					"appender sorted %llu, wrote %llu\n",
				rep + 1, ke[rep].wall, un[rep].wall, ke[rep].cpu, un[rep].cpu, ke[rep].cpu_thr,
				un[rep].cpu_thr, ke[rep].cpu_bg, un[rep].cpu_bg, (unsigned long long)ke[rep].sorts,
				(unsigned long long)ke[rep].writes);
	}
	double u = AMED(un, np, wall), k = AMED(ke, np, wall);
	double ucpu = AMED(un, np, cpu), kcpu = AMED(ke, np, cpu);
	printf("append %llu x %u bytes, sync=never, 1 per call (median of %d): unkeyed %.1f ns, keyed %.1f ns "
	       "(16-byte distinct keys): keyed/unkeyed throughput %.2f; CPU (process) per append: unkeyed %.1f ns, "
	       "keyed %.1f ns: %.2f\n",
	       (unsigned long long)o->appends, VAL, np, u, k, k > 0 ? u / k : 0, ucpu, kcpu, kcpu > 0 ? ucpu / kcpu : 0);
	double ucc_m = AMED(un, np, cpu_close), kcc_m = AMED(ke, np, cpu_close);
	double uwc_m = AMED(un, np, wall_close), kwc_m = AMED(ke, np, wall_close);
	printf("append with the close (the flusher joined: its table writes and merges done, and the close's "
	       "own): wall unkeyed %.1f ns, keyed %.1f ns: %.2f; CPU unkeyed %.1f ns, keyed %.1f ns: %.2f\n",
	       uwc_m, kwc_m, kwc_m > 0 ? uwc_m / kwc_m : 0, ucc_m, kcc_m, kcc_m > 0 ? ucc_m / kcc_m : 0);
	double uct_m = AMED(un, np, cpu_thr), kct_m = AMED(ke, np, cpu_thr);
	printf("append CPU per append of the appending thread alone: unkeyed %.1f ns, keyed %.1f ns: %.2f\n", uct_m,
	       kct_m, kct_m > 0 ? uct_m / kct_m : 0);
	double ubg = AMED(un, np, cpu_bg), kbg = AMED(ke, np, cpu_bg);
	printf("append CPU per append of the other threads (the flusher; with the close): unkeyed %.1f ns, keyed "
	       "%.1f ns, the flusher's per key %.1f ns; the appending thread indexed for the flusher in %d of %d "
	       "keyed runs (%llu times), wrote a table in %d (%llu times)\n",
	       ubg, kbg, kbg - ubg, sorted, np, (unsigned long long)sorts, wrote, (unsigned long long)writes);
}

/* ---- bounded memory ---------------------------------------------------------- */

static void bench_memory(const kopts *o)
{
	char d[4200];
	sb_store_options so;
	sb_store *s = NULL;
	sb_log *l;
	uint8_t kb[64][GKEY], vb[VAL];
	sb_record_in batch[64];
	int rc;

	snprintf(d, sizeof(d), "%s/mem", o->dir);
	sb_store_options_default(&so);
	so.defaults.sync = SB_SYNC_NEVER;
	if (o->memtable)
		so.defaults.key_memtable_bytes = o->memtable;
	long before = rss_anon_kb(), peak = before;
	if ((rc = sb_store_open(d, &so, &s)) || (rc = sb_store_create(s, "t")) || (rc = sb_store_get(s, "t", &l)))
		goto out;
	kb_gval(3, vb);
	uint64_t t0 = sb_bench_now();
	for (uint64_t i = 0; i < o->mem_keys;) {
		size_t nb = 0;
		for (; nb < 64 && i < o->mem_keys; nb++, i++) {
			kb_gkey(i, kb[nb]);
			batch[nb] = (sb_record_in){.key = kb[nb], .key_len = GKEY, .value = vb, .value_len = VAL};
		}
		if ((rc = sb_log_append(l, batch, nb, NULL)))
			goto out;
		if (i % (1u << 20) < 64) {
			long r = rss_anon_kb();
			if (r > peak)
				peak = r;
			if (o->verbose)
				fprintf(stderr, "  %llu keys, RssAnon %ld kB\n", (unsigned long long)i, r);
		}
	}
	double load_s = (double)(sb_bench_now() - t0) / 1e9;
	long loaded = rss_anon_kb();
	sb_log_key_stats ks;
	sb_log_get_key_stats(l, &ks);
	if ((rc = sb_store_close(s)))
		goto out;
	s = NULL;
	t0 = sb_bench_now();
	if ((rc = sb_store_open(d, &so, &s)) || (rc = sb_store_get(s, "t", &l)))
		goto out;
	double open_ms = (double)(sb_bench_now() - t0) / 1e6;
	long opened = rss_anon_kb();
	uint8_t k[GKEY], buf[VAL];
	size_t got;
	kb_gkey(o->mem_keys / 2, k);
	rc = sb_log_get_key(l, k, GKEY, buf, sizeof(buf), &got, NULL);
	printf("memory %llu distinct keys in one topic: loaded in %.1f s; RssAnon before %ld kB, peak %ld kB, "
	       "after loading %ld kB; %u tables (%.0f MiB); open after clean close %.1f ms, RssAnon then %ld kB; "
	       "a get: %s\n",
	       (unsigned long long)o->mem_keys, load_s, before, peak > loaded ? peak : loaded, loaded, ks.tables,
	       (double)ks.table_bytes / (1 << 20), open_ms, opened, rc ? sb_strerror(rc) : "ok");
	rc = 0;
out:
	if (rc)
		printf("memory: %s\n", sb_strerror(rc));
	if (s)
		sb_store_close(s);
	sb_bench_rmtree(d);
}

int sb_bench_keys_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"quick", no_argument, NULL, 'q'}, {"keys", required_argument, NULL, 'k'},
		{"mem", required_argument, NULL, 'm'}, {"dir", required_argument, NULL, 'd'},
		{"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
		{"only", required_argument, NULL, 'o'}, {"runs", required_argument, NULL, 'r'},
		{"peers", required_argument, NULL, 'p'}, {"pairs", required_argument, NULL, 'P'},
		{"memtable", required_argument, NULL, 'M'}, {"appends", required_argument, NULL, 'A'},
		{"segment-bytes", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	kopts o = {.mt_keys = 1000000, .keys = 1000000, .lookups = 1000000, .appends = 1000000, .dir = NULL,
		  .mt_runs = 3, .pairs = 5};
	char tmpl[4096];
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q': o.mt_keys = o.keys = o.lookups = o.appends = 100000; break;
		case 'k': o.keys = strtoull(optarg, NULL, 10); break;
		case 'm': o.mem_keys = strtoull(optarg, NULL, 10); break;
		case 'd': o.dir = optarg; break;
		case 'v': o.verbose = 1; break;
		case 'o': o.only = optarg; break;
		case 'r': o.mt_runs = atoi(optarg); break;
		case 'p': o.peers = optarg; break;
		case 'P': o.pairs = atoi(optarg); break;
		case 'M': o.memtable = strtoull(optarg, NULL, 10); break;
		case 'A': o.appends = strtoull(optarg, NULL, 10); break;
		case 'S': o.segment = strtoull(optarg, NULL, 10); break;
		case 'h':
			printf("usage: streambus bench keys [--quick] [--keys N] [--mem N] [--dir DIR] [--verbose]\n"
			       "                            [--only memtable|get|append] [--runs N] [--peers LIST]\n"
			       "                            [--pairs N] [--memtable BYTES] [--appends N]\n"
			       "                            [--segment-bytes BYTES]\n"
			       "  MemTable put/get (8- and 32-byte keys, 10,000 keys and up, N runs: median\n"
			       "  and spread, wall and CPU; a bare B+tree beside it), get by key with the\n"
			       "  value against LevelDB, RocksDB and LMDB (N keys, default 1,000,000), keyed vs\n"
			       "  unkeyed append; --mem N: only the memory of N distinct keys in one topic;\n"
			       "  --peers: the get's peers measured (e.g. LMDB,LevelDB; default all);\n"
			       "  --pairs: unkeyed/keyed append pairs (default 5; medians; --verbose: each);\n"
			       "  --memtable: key_memtable_bytes of the append and --mem runs (default: the store's);\n"
			       "  --appends: appends a run (default 1,000,000); --segment-bytes: segment_bytes of\n"
			       "  the append runs (default: the store's).\n");
			return 0;
		default:
			return 2;
		}
	}
	const char *base = o.dir ? o.dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/sbbench-keys-XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		perror("streambus bench keys: mkdtemp");
		return 2;
	}
	o.dir = tmpl;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.mem_keys) {
		bench_memory(&o);
	} else {
		for (uint64_t n = 10000; n <= o.mt_keys && (!o.only || !strcmp(o.only, "memtable")); n *= 10) {
			kopts m = o;
			m.mt_keys = n;
			bench_memtable(&m, 8);
			bench_memtable(&m, 32);
		}
		if (!o.only || !strcmp(o.only, "get"))
			kb_bench_get(&o);
		if (!o.only || !strcmp(o.only, "append"))
			bench_append(&o);
	}
	sb_bench_rmtree(tmpl);
	return 0;
}
