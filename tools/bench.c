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

/* What each figure is, its unit and target. */
static const struct fig_desc {
	const char *key;     /* JSON name */
	const char *title;
	const char *unit;
	int higher_better;
	const char *target_op; /* "<=" or ">=" or NULL */
	double target;
	const char *target_key; /* the target is on this extra figure, not on value */
	double seed;           /* the seed's (Go) figure in this unit, FIELD-NOTES; 0: none */
} figs[SB_FIG_COUNT] = {
	[SB_FIG_INDEX] = {"index_lookup", "index lookup, 10,000-entry index (store-internal sb_index_lookup)",
			  "ns/op", 0, NULL, 0, NULL, 72},
	[SB_FIG_STAT] = {"index_lookup_stat",
			 "index lookup via sb_log_stat, ~10,000-entry index (includes segment find + header decode)",
			 "ns/op", 0, NULL, 0},
	[SB_FIG_APPEND39] = {"append_39_nosync", "append, 39-byte payload, sync=never, 1 record per call",
			     "ns/op", 0, NULL, 0, NULL, 2330},
	[SB_FIG_APPEND100] = {"append_100_nosync", "append, 100-byte payload, sync=never, 1 record per call",
			      "ns/op", 0, NULL, 0},
	[SB_FIG_FSYNC1] = {"append_fsync_1w", "append with fsync (sync=always), 100-byte payload, 1 writer",
			   "us/op", 0, "<=", 1.2, "ratio_vs_bare", 2300},
	[SB_FIG_FSYNC8] = {"append_fsync_8w", "append with fsync (sync=always), 100-byte payload, 8 writer threads",
			   "records/s", 1, NULL, 0},
	[SB_FIG_READ] = {"read_random", "random read by offset, warm, sb_log_read into a caller buffer",
			 "ns/op", 0, "<=", 300, NULL, 6300},
	[SB_FIG_SCAN_STREAM] = {"scan_stream", "sequential scan via sb_log_read_stream, 1 MiB chunks",
				"MB/s", 1, ">=", 2000},
	[SB_FIG_SCAN_RECORD] = {"scan_per_record", "sequential scan via sb_log_read, one call per record",
				"MB/s", 1, ">=", 2000},
	[SB_FIG_STREAM4K] = {"read_stream_random_4k", "read 4 KiB of the stream at a random position (sb_log_read_stream)",
			     "ns/op", 0, NULL, 0},
	[SB_FIG_OPEN] = {"open_clean", "sb_store_open of a cleanly closed topic (warm page cache)",
			 "ms", 0, "<=", 50},
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
static double ratio(const struct fig_desc *d, const sb_bench_val *o, const sb_bench_val *l)
{
	if (o->state != 1 || l->state != 1 || o->value <= 0 || l->value <= 0)
		return 0;
	return d->higher_better ? o->value / l->value : l->value / o->value;
}

/* The value the target applies to; 0 if there is none. */
static int target_subject(const struct fig_desc *d, const sb_bench_val *o, double *x)
{
	if (!d->target_op || o->state != 1)
		return 0;
	if (!d->target_key) {
		*x = o->value;
		return 1;
	}
	for (int i = 0; i < o->nx; i++)
		if (!strcmp(o->x[i].key, d->target_key)) {
			*x = o->x[i].v;
			return 1;
		}
	return 0;
}

/* 1 met, 0 missed, -1 no target (or nothing to judge). */
static int target_met(const struct fig_desc *d, const sb_bench_val *o)
{
	double x;

	if (!target_subject(d, o, &x))
		return -1;
	return d->target_op[0] == '<' ? x <= d->target : x >= d->target;
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
	printf("StreamBus storage engine benchmark%s: %" PRIu64 " records, scratch dir %s (%s)\n",
	       c->quick ? " (--quick)" : "", c->records, c->dir, fs);
	printf("%d CPUs online; load average %.2f at start, %.2f at end (other work on the machine skews figures)\n",
	       (int)sysconf(_SC_NPROCESSORS_ONLN), c->load[0], c->load[1]);
	if (c->load[0] > sysconf(_SC_NPROCESSORS_ONLN) * 0.75 || c->load[1] > sysconf(_SC_NPROCESSORS_ONLN) * 0.75)
		printf("WARNING: the machine was busy with other work (load average near or above the CPU count):\n"
		       "         timings are inflated and noisy; rerun on an idle machine for figures to quote\n");
	printf("allocation counting: %s; MB = 10^6 bytes; \"vs LevelDB\" > 1 means ours is better\n\n",
	       sb_bench_alloc_available() ? "malloc/calloc/realloc calls, all threads" : "n/a (sanitizer build)");
	for (int f = 0; f < SB_FIG_COUNT; f++) {
		const struct fig_desc *d = &figs[f];
		double r = ratio(d, &ours[f], &ldb[f]);
		int t = target_met(d, &ours[f]);

		printf("%s [%s]\n", d->title, d->key);
		print_val("ours", d, &ours[f]);
		print_val("LevelDB", d, &ldb[f]);
		if (r > 0)
			printf("    ours vs LevelDB: %.2fx %s\n", r, r >= 1 ? "(ours better)" : "(LevelDB better)");
		if (t >= 0 && d->target_key)
			printf("    target %s %s %g: %s\n", d->target_key, d->target_op, d->target, t ? "met" : "MISSED");
		else if (t >= 0)
			printf("    target %s %g %s: %s\n", d->target_op, d->target, d->unit, t ? "met" : "MISSED");
		if (d->seed > 0 && ours[f].state == 1)
			printf("    seed's (Go) figure to beat: %g %s: %s\n", d->seed, d->unit,
			       ours[f].value < d->seed * 0.95 ? "beaten" : ours[f].value <= d->seed * 1.05 ? "about equal" : "NOT beaten");
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
	printf(", \"cpus\": %d, \"load_start\": ", (int)sysconf(_SC_NPROCESSORS_ONLN));
	json_num(c->load[0]);
	fputs(", \"load_end\": ", stdout);
	json_num(c->load[1]);
	printf(", \"alloc_counting\": %s, \"seconds\": ", sb_bench_alloc_available() ? "true" : "false");
	json_num((double)ns / 1e9);
	fputs(", \"ratio_meaning\": \"ours vs LevelDB, > 1 means ours is better\", \"figures\": {", stdout);
	for (int f = 0; f < SB_FIG_COUNT; f++) {
		const struct fig_desc *d = &figs[f];
		double r = ratio(d, &ours[f], &ldb[f]);
		int t = target_met(d, &ours[f]);

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
		if (r > 0)
			json_num(r);
		else
			fputs("null", stdout);
		if (d->target_op) {
			fputs(", \"target\": ", stdout);
			json_str(d->target_op);
			fputs(", \"target_value\": ", stdout);
			json_num(d->target);
			printf(", \"target_met\": %s", t < 0 ? "null" : t ? "true" : "false");
			if (d->target_key) {
				fputs(", \"target_on\": ", stdout);
				json_str(d->target_key);
			}
		}
		if (d->seed > 0) {
			fputs(", \"seed_figure\": ", stdout);
			json_num(d->seed);
		}
		fputs("}", stdout);
	}
	fputs("\n}}\n", stdout);
}

/* ---- main ---------------------------------------------------------------- */

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
		   "  --verbose      progress on stderr\n");
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
	uint64_t records = 0, open_mb = 0, t0;
	int json = 0, no_leveldb = 0, ch, status = 0;
	char dir[PATH_MAX];
	uint8_t *rnd;

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
		return 1;
	}
	c.dir = dir;
	rnd = malloc(SB_BENCH_RND_BYTES);
	if (!rnd) {
		fprintf(stderr, "streambus bench: out of memory\n");
		sb_bench_rmtree(dir);
		return 1;
	}
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < SB_BENCH_RND_BYTES; i += 8) {
		uint64_t x = sb_bench_rand(&seed);
		memcpy(rnd + i, &x, 8);
	}
	c.rnd = rnd;
	memset(ours, 0, sizeof(ours));
	memset(ldb, 0, sizeof(ldb));

	getloadavg(&c.load[0], 1);
	t0 = sb_bench_now();
	sb_bench_store(&c, ours);
	if (!no_leveldb)
		sb_bench_leveldb(&c, ldb);
	uint64_t ns = sb_bench_now() - t0;
	const char *fs = fs_name(dir);

	getloadavg(&c.load[1], 1);

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
