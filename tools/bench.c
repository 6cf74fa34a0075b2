/*
 * bench.c - `streambus bench`: options, the scratch directory, and the
 * report (text or --json). The measurements are in bench_store.c (ours) and
 * bench_leveldb.c (LevelDB, same operations, same run); allocation counting
 * in bench_alloc.c.
 */
#define SB_BENCH_INTERNAL
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "sb_store.h"

/* What each figure is and its unit. (The project's targets for them are in
 * docs/BENCHMARKS.md, not in the report.) */
static const struct fig_desc {
	const char *key;     /* JSON name */
	const char *title;
	const char *unit;
	int higher_better;
} figs[SB_FIG_COUNT] = {
	[SB_FIG_INDEX] = {"index_lookup", "index lookup, 10,000-entry index (store-internal sb_index_lookup)",
			  "ns/op", 0},
	[SB_FIG_STAT] = {"index_lookup_stat",
			 "random get of a 100-byte value, copied out, from 10,000 records (ours: sb_log_read; "
			 "LevelDB: leveldb_get)",
			 "ns/op", 0},
	[SB_FIG_APPEND39] = {"append_39_nosync", "append, 39-byte payload, sync=never, 1 record per call",
			     "ns/op", 0},
	[SB_FIG_APPEND100] = {"append_100_nosync", "append, 100-byte payload, sync=never, 1 record per call",
			      "ns/op", 0},
	[SB_FIG_FSYNC1] = {"append_fsync_1w", "append with fsync (sync=always), 100-byte payload, 1 writer",
			   "us/op", 0},
	[SB_FIG_FSYNC8] = {"append_fsync_8w", "append with fsync (sync=always), 100-byte payload, 8 writer threads",
			   "records/s", 1},
	[SB_FIG_READ] = {"read_random", "random read by offset/key, warm, the value copied into a caller buffer",
			 "ns/op", 0},
	[SB_FIG_SCAN_STREAM] = {"scan_stream",
				"stream scan: every payload byte in order, in 1 MiB chunks (ours: sb_log_read_stream; "
				"LevelDB has no stream: an iterator copying values into 1 MiB chunks)",
				"MB/s", 1},
	[SB_FIG_SCAN_RECORD] = {"scan_per_record", "record scan: one record at a time in order, each value "
				"copied out (ours: sb_log_read; LevelDB: an iterator)",
				"MB/s", 1},
	[SB_FIG_STREAM4K] = {"read_stream_random_4k", "read 4 KiB of the stream at a random position "
			     "(ours: sb_log_read_stream; LevelDB: seek + next until 4 KiB)",
			     "ns/op", 0},
	[SB_FIG_OPEN] = {"open_clean", "open of a cleanly closed store of the same bytes (warm page cache)",
			 "ms", 0},
};

void sb_bench_fail(sb_bench_val *v, const char *what, const char *why)
{
	v->state = -1;
	snprintf(v->err, sizeof(v->err), "%s: %s", what, why ? why : "failed");
}

void sb_bench_fail_rc(sb_bench_val *v, const char *what, int rc)
{
	sb_bench_fail(v, what, sb_strerror(rc));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double sb_bench_median(double *a, int n)
{
	if (n <= 0)
		return 0;
	qsort(a, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
}

void sb_bench_set(sb_bench_val *v, const double *vals, int reps, uint64_t ops, uint64_t allocs)
{
	double s[16];
	int n = reps < 16 ? reps : 16;

	memcpy(s, vals, (size_t)n * sizeof(double));
	memcpy(v->rep, vals, (size_t)n * sizeof(double));
	v->nrep = n;
	v->state = 1;
	v->value = sb_bench_median(s, n); /* sorts s */
	v->lo = s[0];
	v->hi = s[n - 1];
	v->ops = ops;
	v->reps = reps;
	if (allocs == UINT64_MAX || !sb_bench_alloc_available() || !ops || !reps)
		v->allocs = -1;
	else
		v->allocs = (double)allocs / ((double)ops * reps);
}

void sb_bench_extra(sb_bench_val *v, const char *key, double x)
{
	if (v->nx < SB_BENCH_MAX_EXTRA) {
		v->x[v->nx].key = key;
		v->x[v->nx].v = x;
		v->nx++;
	}
}

void sb_bench_progress(const sb_bench_cfg *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->verbose)
		return;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int sb_bench_mkdir(const char *path)
{
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -errno : 0;
}

int sb_bench_rmtree(const char *path)
{
	int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc < 0 ? -errno : rc;
}

/* ---- report ------------------------------------------------------------ */

/* ours vs LevelDB as "how many times better ours is": > 1 means ours is
 * better, whichever way the unit goes. 0 when either is missing. */
static double ratio_of(const struct fig_desc *d, double o, double l)
{
	if (o <= 0 || l <= 0)
		return 0;
	return d->higher_better ? o / l : l / o;
}

typedef struct ratio {
	double med, lo, hi; /* med 0: none */
	int n;              /* repetitions paired */
} ratio;

/* Each rep of ours against the LevelDB rep with the same number: the
 * median of those ratios, the smallest and the largest. */
static ratio ratio_range(const struct fig_desc *d, const sb_bench_val *o, const sb_bench_val *l)
{
	ratio r = {0};
	double x[16];

	if (o->state != 1 || l->state != 1)
		return r;
	r.n = o->nrep < l->nrep ? o->nrep : l->nrep;
	for (int i = 0; i < r.n; i++)
		if ((x[i] = ratio_of(d, o->rep[i], l->rep[i])) <= 0)
			return (ratio){0};
	if (r.n == 0)
		return r;
	r.med = sb_bench_median(x, r.n); /* sorts x */
	r.lo = x[0];
	r.hi = x[r.n - 1];
	return r;
}

static void fmt_value(char *buf, size_t cap, double v)
{
	if (v >= 100000 || (v == (double)(int64_t)v && v < 1e15 && v > -1e15))
		snprintf(buf, cap, "%.0f", v);
	else if (v >= 100)
		snprintf(buf, cap, "%.1f", v);
	else
		snprintf(buf, cap, "%.2f", v);
}

static void print_val(const char *who, const struct fig_desc *d, const sb_bench_val *v)
{
	char num[32];

	if (v->state == 0) {
		printf("    %-8s n/a%s%s\n", who, v->how ? ": " : "", v->how ? v->how : "");
		return;
	}
	if (v->state < 0) {
		printf("    %-8s FAILED: %s\n", who, v->err);
		return;
	}
	fmt_value(num, sizeof(num), v->value);
	printf("    %-8s %12s %-9s", who, num, d->unit);
	if (v->allocs >= 0)
		printf("  %8.2f allocs/op", v->allocs);
	else
		printf("  %8s allocs/op", "n/a");
	if (v->reps > 1) {
		char lo[32], hi[32];
		fmt_value(lo, sizeof(lo), v->lo);
		fmt_value(hi, sizeof(hi), v->hi);
		printf("  (%" PRIu64 " ops x %d, median; range %s..%s)\n", v->ops, v->reps, lo, hi);
	} else {
		printf("  (%" PRIu64 " ops, one run)\n", v->ops);
	}
	if (v->how)
		printf("             %s\n", v->how);
	for (int i = 0; i < v->nx; i++) {
		fmt_value(num, sizeof(num), v->x[i].v);
		printf("             %s = %s\n", v->x[i].key, num);
	}
}

static void print_text(const sb_bench_cfg *c, const char *fs, const sb_bench_val *ours,
		       const sb_bench_val *ldb, uint64_t ns)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	printf("StreamBus storage engine benchmark%s: %" PRIu64 " records, scratch dir %s (%s)\n",
	       c->quick ? " (--quick)" : "", c->records, c->dir, fs);
	printf("%ld CPUs online; other processes used %.2f CPUs on average during the run "
	       "(this benchmark's own threads not counted)\n", cpus, c->other_cpu);
	if (c->other_cpu > cpus * 0.25)
		printf("WARNING: the machine was busy with other work: timings are inflated and noisy;\n"
		       "         rerun on an idle machine for figures to quote\n");
	printf("allocation counting: %s; MB = 10^6 bytes; \"vs LevelDB\" > 1 means ours is better\n\n",
	       sb_bench_alloc_available() ? "malloc/calloc/realloc calls, all threads"
					  : "off (build/streambus-bench counts them)");
	for (int f = 0; f < SB_FIG_COUNT; f++) {
		const struct fig_desc *d = &figs[f];
		ratio r = ratio_range(d, &ours[f], &ldb[f]);

		printf("%s [%s]\n", d->title, d->key);
		print_val("ours", d, &ours[f]);
		print_val("LevelDB", d, &ldb[f]);
		if (r.med > 0 && r.n > 1)
			printf("    ours vs LevelDB: %.2fx %s; range %.2fx..%.2fx over %d reps\n", r.med,
			       r.med >= 1 ? "(ours better)" : "(LevelDB better)", r.lo, r.hi, r.n);
		else if (r.med > 0)
			printf("    ours vs LevelDB: %.2fx %s; one rep\n", r.med,
			       r.med >= 1 ? "(ours better)" : "(LevelDB better)");
		printf("\n");
	}
	printf("total time %.1f s\n", (double)ns / 1e9);
}

static void json_num(double v)
{
	char b[40];
	snprintf(b, sizeof(b), "%.6g", v);
	fputs(b, stdout);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_val(const sb_bench_val *v)
{
	if (v->state == 0) {
		if (v->how) {
			fputs("{\"ok\": false, \"na\": ", stdout);
			json_str(v->how);
			fputs("}", stdout);
		} else {
			fputs("null", stdout);
		}
		return;
	}
	fputs("{\"ok\": ", stdout);
	fputs(v->state == 1 ? "true" : "false", stdout);
	if (v->state < 0) {
		fputs(", \"error\": ", stdout);
		json_str(v->err);
		fputs("}", stdout);
		return;
	}
	fputs(", \"value\": ", stdout);
	json_num(v->value);
	fputs(", \"allocs_per_op\": ", stdout);
	if (v->allocs >= 0)
		json_num(v->allocs);
	else
		fputs("null", stdout);
	printf(", \"ops\": %" PRIu64 ", \"reps\": %d, \"min\": ", v->ops, v->reps);
	json_num(v->lo);
	fputs(", \"max\": ", stdout);
	json_num(v->hi);
	if (v->how) {
		fputs(", \"how\": ", stdout);
		json_str(v->how);
	}
	for (int i = 0; i < v->nx; i++) {
		fputs(", ", stdout);
		json_str(v->x[i].key);
		fputs(": ", stdout);
		json_num(v->x[i].v);
	}
	fputs("}", stdout);
}

static void print_json(const sb_bench_cfg *c, const char *fs, const sb_bench_val *ours,
		       const sb_bench_val *ldb, uint64_t ns)
{
	printf("{\"quick\": %s, \"records\": %" PRIu64 ", \"dir_fs\": ", c->quick ? "true" : "false", c->records);
	json_str(fs);
	printf(", \"cpus\": %d, \"other_cpu\": ", (int)sysconf(_SC_NPROCESSORS_ONLN));
	json_num(c->other_cpu);
	printf(", \"alloc_counting\": %s, \"seconds\": ", sb_bench_alloc_available() ? "true" : "false");
	json_num((double)ns / 1e9);
	fputs(", \"ratio_meaning\": \"ours vs LevelDB, > 1 means ours is better\", \"figures\": {", stdout);
	for (int f = 0; f < SB_FIG_COUNT; f++) {
		const struct fig_desc *d = &figs[f];
		ratio r = ratio_range(d, &ours[f], &ldb[f]);

		printf("%s\n  ", f ? "," : "");
		json_str(d->key);
		fputs(": {\"title\": ", stdout);
		json_str(d->title);
		fputs(", \"unit\": ", stdout);
		json_str(d->unit);
		printf(", \"higher_is_better\": %s, \"ours\": ", d->higher_better ? "true" : "false");
		json_val(&ours[f]);
		fputs(", \"leveldb\": ", stdout);
		json_val(&ldb[f]);
		fputs(", \"ours_vs_leveldb\": ", stdout);
		if (r.med > 0) {
			json_num(r.med);
			fputs(", \"ours_vs_leveldb_min\": ", stdout);
			json_num(r.lo);
			fputs(", \"ours_vs_leveldb_max\": ", stdout);
			json_num(r.hi);
			printf(", \"ratio_reps\": %d", r.n);
		} else {
			fputs("null", stdout);
		}
		fputs("}", stdout);
	}
	fputs("\n}}\n", stdout);
}

/* ---- main ---------------------------------------------------------------- */

/* Clock ticks the machine's CPUs were busy (/proc/stat) and this process's
 * threads ran (/proc/self/stat: user + system, all threads). */
typedef struct cpu_ticks {
	uint64_t busy, self;
} cpu_ticks;

static int cpu_sample(cpu_ticks *t)
{
	unsigned long long v[8] = {0}, ut = 0, st = 0;
	char buf[1024], *p;
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8)
		return -EIO;
	f = fopen("/proc/self/stat", "re");
	if (!f)
		return -errno;
	n = fgets(buf, sizeof buf, f) != NULL;
	fclose(f);
	/* "pid (comm) state ..." : utime and stime are fields 14 and 15, the
	 * 12th and 13th after the ')' that ends comm. */
	p = n ? strrchr(buf, ')') : NULL;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EIO;
	/* user nice system [idle iowait] irq softirq steal */
	t->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	t->self = ut + st;
	return 0;
}

/* CPUs' worth of busy time not spent in this process between a and b. */
static double other_cpus(const cpu_ticks *a, const cpu_ticks *b, uint64_t ns)
{
	double hz = (double)sysconf(_SC_CLK_TCK), busy = (double)(b->busy - a->busy),
	       self = (double)(b->self - a->self), secs = (double)ns / 1e9;

	if (secs <= 0 || hz <= 0 || busy < self)
		return 0;
	return (busy - self) / hz / secs;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: streambus bench [--quick] [--json] [--dir DIR] [--records N] [--open-mb N]\n"
		   "                       [--no-leveldb] [--verbose]\n"
		   "  --quick        small sizes (a few seconds; used by the tests)\n"
		   "  --json         one JSON object on stdout instead of the text report\n"
		   "  --dir DIR      make the scratch directory inside DIR (default /tmp)\n"
		   "  --records N    records appended and then read (default 1000000, quick 100000)\n"
		   "  --open-mb N    size of the topic whose open is timed (default 1024, quick 16)\n"
		   "  --no-leveldb   skip the LevelDB side\n"
		   "  --verbose      progress on stderr\n"
		   "  since          instead: seek by time (.since/TIME) on 10M records against a\n"
		   "                 scan: streambus bench since --help\n"
		   "  compact        instead: cleanup = compact, each key written 100 times: bytes\n"
		   "                 before/after, MB/s of input: streambus bench compact --help\n"
		   "  open           instead: open of 1,000 topics without keys (the key index's\n"
		   "                 replay): streambus bench open --help\n"
		   "  --compression  instead: compressed segments on a text corpus (ratio beside\n"
		   "                 zstd -3, lz4, gzip -6; append speed; reads): see\n"
		   "                 tools/bench_compress.c; --corpus FILE, --corpus-mb N\n"
		   "Allocations per op are counted by the build's streambus-bench (the same\n"
		   "benchmarks; it replaces malloc, so it is not installed). Each ratio is\n"
		   "printed with its range over the repetitions; docs/BENCHMARKS.md has what\n"
		   "each figure compares and the project's targets.\n");
}

static int parse_u64(const char *s, uint64_t min, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min)
		return -EINVAL;
	*out = v;
	return 0;
}

static const char *fs_name(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st) < 0)
		return "unknown";
	switch ((unsigned long)st.f_type) {
	case 0xEF53: return "ext4";
	case 0x01021994: return "tmpfs: fsync is free here, the fsync figures mean nothing";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x794c7630: return "overlayfs";
	default: return "other filesystem";
	}
}

int sb_bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"quick", no_argument, NULL, 'q'},   {"json", no_argument, NULL, 'j'},
		{"dir", required_argument, NULL, 'd'}, {"records", required_argument, NULL, 'r'},
		{"open-mb", required_argument, NULL, 'o'}, {"no-leveldb", no_argument, NULL, 'L'},
		{"verbose", no_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	sb_bench_cfg c = {0};
	sb_bench_val ours[SB_FIG_COUNT], ldb[SB_FIG_COUNT];
	const char *parent = "/tmp";

	if (argc > 1 && strcmp(argv[1], "keys") == 0)
		return sb_bench_keys_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "since") == 0)
		return sb_bench_since_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "compact") == 0)
		return sb_bench_compact_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "open") == 0)
		return sb_bench_open_main(argc - 1, argv + 1);
	uint64_t records = 0, open_mb = 0, t0;
	int json = 0, no_leveldb = 0, ch, status = 0;
	char dir[PATH_MAX];
	uint8_t *rnd;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--compression"))
			return sb_bench_compress(argc, argv);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q': c.quick = 1; break;
		case 'j': json = 1; break;
		case 'd': parent = optarg; break;
		case 'r':
			if (parse_u64(optarg, 1000, &records)) {
				fprintf(stderr, "streambus bench: --records wants a number >= 1000\n");
				return 2;
			}
			break;
		case 'o':
			if (parse_u64(optarg, 1, &open_mb) || open_mb > (1u << 20)) {
				fprintf(stderr, "streambus bench: --open-mb wants a number of MB >= 1\n");
				return 2;
			}
			break;
		case 'L': no_leveldb = 1; break;
		case 'v': c.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "streambus bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	c.records = records ? records : c.quick ? 100000 : 1000000;
	c.lookups = c.quick ? 200000 : 2000000;
	c.fsync_ops = c.quick ? 200 : 3000;
	c.threads = 8;
	c.fsync_ops_mt = c.quick ? 50 : 1000;
	c.open_bytes = (open_mb ? open_mb : c.quick ? 16 : 1024) << 20;
	c.reps = 3;

	if (snprintf(dir, sizeof(dir), "%s/sb-bench-XXXXXX", parent) >= (int)sizeof(dir) || !mkdtemp(dir)) {
		fprintf(stderr, "streambus bench: cannot make a directory in %s: %s\n", parent, strerror(errno));
		return 2;
	}
	c.dir = dir;
	rnd = malloc(SB_BENCH_RND_BYTES);
	if (!rnd) {
		fprintf(stderr, "streambus bench: out of memory\n");
		sb_bench_rmtree(dir);
		return 2;
	}
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < SB_BENCH_RND_BYTES; i += 8) {
		uint64_t x = sb_bench_rand(&seed);
		memcpy(rnd + i, &x, 8);
	}
	c.rnd = rnd;
	memset(ours, 0, sizeof(ours));
	memset(ldb, 0, sizeof(ldb));

	c.leveldb = !no_leveldb;
	cpu_ticks cpu0, cpu1;
	int have_cpu = cpu_sample(&cpu0) == 0;
	t0 = sb_bench_now();
	sb_bench_store(&c, ours);
	if (!no_leveldb)
		sb_bench_leveldb(&c, ldb);
	sb_bench_fsync(&c, ours, ldb);
	uint64_t ns = sb_bench_now() - t0;
	const char *fs = fs_name(dir);

	if (have_cpu && cpu_sample(&cpu1) == 0)
		c.other_cpu = other_cpus(&cpu0, &cpu1, ns);

	for (int f = 0; f < SB_FIG_COUNT; f++)
		if (ours[f].state != 1 || (!no_leveldb && ldb[f].state < 0))
			status = 1;
	if (json)
		print_json(&c, fs, ours, ldb, ns);
	else
		print_text(&c, fs, ours, ldb, ns);
	fflush(stdout);
	int rc = sb_bench_rmtree(dir);
	if (rc) {
		fprintf(stderr, "streambus bench: could not remove %s: %s\n", dir, strerror(-rc));
		status = 1;
	}
	free(rnd);
	return status;
}
