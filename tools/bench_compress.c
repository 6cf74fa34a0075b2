/*
 * bench_compress.c - `streambus bench --compression`: compressed sealed
 * segments (issue 9 item 1) beside their peers in the same run.
 *
 * The corpus: the system's man pages (zcat of /usr/share/man/SECTION/NAME.gz) and
 * /usr/share/common-licenses, up to --corpus-mb MiB, or --corpus FILE. Its
 * lines are appended one record each, in batches of up to 128 KiB of lines
 * (what `cat FILE >> TOPIC/.log` makes through the mount).
 *   1. Ratio: for each codec and block size, the stream bytes of the
 *      compressed segments over their bytes on disk, beside `zstd -3`,
 *      `lz4` and `gzip -6` of the whole corpus file (their CLIs, run here);
 *      "vs zstd -3" is our ratio over zstd's (the target: at least 0.7).
 *   2. Append throughput with compression = zstd (the store's background
 *      compressor running) over the same with none (target at least 0.95),
 *      alternated, medians, each run timed on a second pass of the corpus
 *      (the first one leaves the compressor sealed segments to work on);
 *      beside, records per CPU second of the appending thread (what the
 *      append path itself costs, whatever share of the machine the process
 *      gets) and where that thread's time went (getrusage).
 *   3. Random sb_log_read by offset in the compressed segments of the zstd
 *      topic with the default block size (--block BYTES: another of those
 *      of step 1): a block not in the cache (decompressed by that read), and
 *      the same record again (its block cached).
 *   4. sb_log_read_stream in 1 MiB reads over the whole topic (a sequential
 *      cat of .log without FUSE), 5 passes: median and range.
 * --only ratio|append|reads runs one of them (reads: 3. and 4., on a topic of
 * the one block size they use); --pairs N: append pairs (default 3).
 * Latencies are printed as median, mean and 99th percentile: on a loaded
 * machine the mean is mostly the scheduler's (a read preempted for a time
 * slice counts milliseconds), the median is the read's own cost.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SB_BENCH_INTERNAL
#include "bench.h"
#include "sb_store.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process (its threads: the read-ahead's too). */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread (the appender's own). */
static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The calling thread's user and system seconds, minor faults, voluntary
 * (blocked) and involuntary (preempted) context switches: where the
 * appender's CPU goes. */
enum { RU_USER, RU_SYS, RU_MINFLT, RU_NVCSW, RU_NIVCSW, RU_N };

static void thread_rusage(double v[RU_N])
{
	struct rusage ru;

	memset(v, 0, RU_N * sizeof(*v));
	if (getrusage(RUSAGE_THREAD, &ru))
		return;
	v[RU_USER] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	v[RU_SYS] = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	v[RU_MINFLT] = (double)ru.ru_minflt;
	v[RU_NVCSW] = (double)ru.ru_nvcsw;
	v[RU_NIVCSW] = (double)ru.ru_nivcsw;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Sort v[0, n) and return its median. */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct corpus {
	char *p;
	size_t n;
	size_t *line;   /* starts; line[nlines] = n */
	size_t nlines;
} corpus;

static int load_corpus(corpus *c, const char *file, size_t cap, const char *path_out)
{
	FILE *f;
	size_t got = 0;

	if (file)
		f = fopen(file, "rb");
	else
		f = popen("sh -c 'zcat /usr/share/man/*/*.gz 2>/dev/null; cat /usr/share/common-licenses/* 2>/dev/null'",
			  "r");
	if (!f)
		return -errno;
	c->p = malloc(cap);
	if (!c->p)
		return -ENOMEM;
	while (got < cap) {
		size_t r = fread(c->p + got, 1, cap - got, f);
		if (!r)
			break;
		got += r;
	}
	if (file)
		fclose(f);
	else
		pclose(f); /* the rest: zcat stops on SIGPIPE */
	while (got && c->p[got - 1] != '\n') /* whole lines only */
		got--;
	c->n = got;
	size_t cap_l = 1 << 20;
	c->line = malloc(cap_l * sizeof(*c->line));
	c->nlines = 0;
	for (size_t i = 0; i < got;) {
		if (c->nlines + 1 >= cap_l) {
			cap_l *= 2;
			c->line = realloc(c->line, cap_l * sizeof(*c->line));
		}
		c->line[c->nlines++] = i;
		char *nl = memchr(c->p + i, '\n', got - i);
		i = nl ? (size_t)(nl - c->p) + 1 : got;
	}
	c->line[c->nlines] = got;
	FILE *o = fopen(path_out, "wb");
	if (!o || fwrite(c->p, 1, got, o) != got)
		return -EIO;
	fclose(o);
	return 0;
}

/* Seconds `zstd -d` / `lz4 -d` take to decompress the whole corpus (best
 * of 3, their CLIs): how fast this machine decompresses right now. */
static double peer_decompress_s(const char *comp, const char *decomp, const char *file)
{
	char sh[2 * PATH_MAX + 128];
	double best = 1e9;

	snprintf(sh, sizeof(sh), "%s < '%s' > '%s.peer'", comp, file, file);
	if (system(sh))
		return -1;
	snprintf(sh, sizeof(sh), "%s < '%s.peer' > /dev/null", decomp, file);
	for (int i = 0; i < 3; i++) {
		double t0 = now_s();
		if (system(sh))
			return -1;
		double t = now_s() - t0;
		if (t < best)
			best = t;
	}
	snprintf(sh, sizeof(sh), "%s.peer", file);
	unlink(sh);
	return best;
}

/* Bytes `cmd < file` writes. */
static long long peer_bytes(const char *cmd, const char *file)
{
	char sh[PATH_MAX + 128];
	long long n = -1;

	snprintf(sh, sizeof(sh), "%s < '%s' | wc -c", cmd, file);
	FILE *f = popen(sh, "r");
	if (f && fscanf(f, "%lld", &n) != 1)
		n = -1;
	if (f)
		pclose(f);
	return n;
}

static int open_store(const char *dir, enum sb_compression z, uint32_t block, int background, sb_store **s,
		      sb_log **l)
{
	sb_store_options o;
	int rc;

	sb_store_options_default(&o);
	o.defaults.segment_bytes = 8u << 20;
	o.defaults.sync = SB_SYNC_INTERVAL;
	o.defaults.compression = z;
	o.defaults.compression_block_bytes = block;
	o.no_flusher = !background;
	if ((rc = sb_store_open(dir, &o, s)))
		return rc;
	rc = sb_store_create(*s, "t");
	if (rc && rc != -EEXIST)
		return rc;
	return sb_store_get(*s, "t", l);
}

/* Append the corpus, one record a line, in batches of up to 128 KiB. */
static int append_corpus(sb_log *l, const corpus *c)
{
	static sb_record_in r[8192];
	size_t i = 0;

	while (i < c->nlines) {
		size_t k = 0, bytes = 0;
		while (i + k < c->nlines && k < 8192 && bytes < (128u << 10)) {
			size_t a = c->line[i + k], b = c->line[i + k + 1];
			r[k] = (sb_record_in){.value = c->p + a, .value_len = (uint32_t)(b - a)};
			bytes += b - a;
			k++;
		}
		int rc = sb_log_append(l, r, k, NULL);
		if (rc)
			return rc;
		i += k;
	}
	return 0;
}

typedef struct zsize {
	uint64_t stored, logical_stream; /* over the compressed segments */
	uint64_t disk;                   /* every segment file */
} zsize;

/* Sizes of the topic's segment files: the compressed ones' stored bytes
 * and the stream bytes they hold (from their headers, format.h). */
static void measure(const char *tdir, zsize *z)
{
	char cmd[PATH_MAX + 64], path[PATH_MAX + 320];
	memset(z, 0, sizeof(*z));
	snprintf(cmd, sizeof(cmd), "ls '%s'", tdir);
	FILE *f = popen(cmd, "r");
	char name[256];
	while (f && fgets(name, sizeof(name), f)) {
		name[strcspn(name, "\n")] = 0;
		size_t nl = strlen(name);
		if (nl < 4 || strcmp(name + nl - 4, ".seg"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", tdir, name);
		struct stat st;
		unsigned char h[96];
		FILE *s = fopen(path, "rb");
		if (!s || stat(path, &st)) {
			if (s)
				fclose(s);
			continue;
		}
		z->disk += (uint64_t)st.st_size;
		if (fread(h, 1, sizeof(h), s) == sizeof(h) && !memcmp(h, "SBZS", 4)) {
			uint64_t bs, se;
			memcpy(&bs, h + 16, 8);
			memcpy(&se, h + 32, 8);
			z->stored += (uint64_t)st.st_size;
			z->logical_stream += se - bs;
		}
		fclose(s);
	}
	if (f)
		pclose(f);
}

int sb_bench_compress(int argc, char **argv)
{
	const char *file = NULL, *parent = "/tmp";
	size_t mb = 48;
	int quick = 0, pairs = 3;
	const char *only = NULL;
	sb_store_options dflt;

	sb_store_options_default(&dflt);
	uint32_t rblock = dflt.defaults.compression_block_bytes; /* figures 2..4 */

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--corpus") && i + 1 < argc)
			file = argv[++i];
		else if (!strcmp(argv[i], "--corpus-mb") && i + 1 < argc)
			mb = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			parent = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--block") && i + 1 < argc)
			rblock = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
			pairs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--compression"))
			continue;
		else {
			fprintf(stderr, "usage: streambus bench --compression [--quick] [--corpus FILE] "
					"[--corpus-mb N (48)] [--dir DIR] [--block 16384|32768|65536|131072|262144] "
					"[--only ratio|append|reads] [--pairs N (3)]\n");
			return 2;
		}
	}
	if (quick)
		mb = 4;
	if (pairs < 1 || pairs > 100 ||
	    (only && strcmp(only, "ratio") && strcmp(only, "append") && strcmp(only, "reads"))) {
		fprintf(stderr, "bench: --pairs 1..100, --only ratio|append|reads\n");
		return 2;
	}
	int do_ratio = !only || !strcmp(only, "ratio"), do_append = !only || !strcmp(only, "append"),
	    do_reads = !only || !strcmp(only, "reads");
	char dir[PATH_MAX], cfile[PATH_MAX + 16], sdir[PATH_MAX + 32], tdir[PATH_MAX + 48];
	snprintf(dir, sizeof(dir), "%s/sb-bench-z.XXXXXX", parent);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "streambus bench --compression: cannot make a directory in %s: %s\n", parent, strerror(errno));
		return 2;
	}
	snprintf(cfile, sizeof(cfile), "%s/corpus", dir);
	corpus c = {0};
	int rc = load_corpus(&c, file, mb << 20, cfile), status = 0;
	if (rc || c.nlines < 1000) {
		fprintf(stderr, "bench: no corpus (%s)\n", sb_strerror(rc));
		sb_bench_rmtree(dir);
		return 1;
	}
	printf("corpus: %zu bytes, %zu lines (%s), one record a line, batches of up to 128 KiB\n", c.n, c.nlines,
	       file ? file : "man pages and common-licenses");
	long long zb = 0, lb = 0, gb = 0;
	double zr = 0;
	if (do_ratio) {
		zb = peer_bytes("zstd -3 -c", cfile);
		lb = peer_bytes("lz4 -c", cfile);
		gb = peer_bytes("gzip -6 -c", cfile);
		zr = zb > 0 ? (double)c.n / (double)zb : 0;
		printf("peers on the whole file: zstd -3 %lld bytes (%.2fx), lz4 %lld (%.2fx), gzip -6 %lld (%.2fx)\n", zb,
		       zr, lb, lb > 0 ? (double)c.n / (double)lb : 0, gb, gb > 0 ? (double)c.n / (double)gb : 0);
		double zd = peer_decompress_s("zstd -3 -c", "zstd -d -c", cfile),
		       ld = peer_decompress_s("lz4 -c", "lz4 -d -c", cfile);
		printf("peers decompressing the whole file (their CLIs, best of 3): zstd -d %.2f GB/s, lz4 -d %.2f GB/s\n",
		       zd > 0 ? (double)c.n / zd / 1e9 : 0, ld > 0 ? (double)c.n / ld / 1e9 : 0);
		printf("\n%-6s %8s %12s %12s %8s %10s %14s %12s\n", "codec", "block", "stream", "stored", "ratio",
		       "vs zstd-3", "topic on disk", "compress s");
	}

	/* 1. ratio by codec and block size */
	static const uint32_t blocks[] = {16384, 32768, 65536, 131072, 262144};
	if (rblock != 16384 && rblock != 32768 && rblock != 65536 && rblock != 131072 && rblock != 262144) {
		fprintf(stderr, "bench: --block must be one of the sizes measured\n");
		return 2;
	}
	for (int zi = 0; zi < 2 && (do_ratio || do_reads); zi++) {
		enum sb_compression z = zi ? SB_COMPRESS_ZSTD : SB_COMPRESS_LZ4;
		for (size_t bi = 0; bi < sizeof(blocks) / sizeof(blocks[0]); bi++) {
			if (!do_ratio && (zi != 1 || blocks[bi] != rblock))
				continue;
			sb_store *s;
			sb_log *l;
			zsize m;
			snprintf(sdir, sizeof(sdir), "%s/r%d-%u", dir, zi, blocks[bi]);
			if ((rc = open_store(sdir, z, blocks[bi], 0, &s, &l)) || (rc = append_corpus(l, &c)) ||
			    (rc = sb_log_sync(l))) {
				fprintf(stderr, "bench: %s\n", sb_strerror(rc));
				return 1;
			}
			double t0 = now_s();
			rc = sb_log_compress(l, NULL);
			double t1 = now_s();
			sb_store_close(s);
			snprintf(tdir, sizeof(tdir), "%s/t", sdir);
			measure(tdir, &m);
			double r = m.stored ? (double)m.logical_stream / (double)m.stored : 0;
			if (do_ratio)
				printf("%-6s %7uK %12" PRIu64 " %12" PRIu64 " %7.2fx %9.2fx %14" PRIu64 " %12.2f\n",
				       sb_compression_name(z), blocks[bi] >> 10, m.logical_stream, m.stored, r,
				       zr > 0 ? r / zr : 0, m.disk, t1 - t0);
			if (blocks[bi] != rblock || zi != 1)
				sb_bench_rmtree(sdir);
		}
	}

	/* 2. append throughput, none vs zstd (background compressor on): pairs
	 * back to back, which goes first alternating. Each run appends the
	 * corpus once untimed and waits WARM_MS, then appends it again, timed:
	 * the compressor starts on a segment only once it is sealed, synced
	 * (the flusher, every 100 ms) and its 200 ms poll comes round, so a
	 * window from the store's start had it idle for 0.2-0.35 s of 0.5-1
	 * s (a random part of it) and measured little of its work. After the
	 * warm-up the zstd run has a dozen sealed segments waiting, so the
	 * compressor works through the whole timed window; none does the same
	 * appends and waits as long. Then its records are deleted (whole
	 * segments dropped), which leaves the compressor nothing to do after
	 * the segment in hand (the rest would be thrown away with the
	 * directory: the close used to compress two dozen of them, 5-8 s a
	 * run), and the store closed, joining the compressor: none of one
	 * run's work spills into the next one's. */
	enum { WARM_MS = 400 };
	double tn[100], tz[100], tr[100], cn[100], cz[100], cr[100];
	double ru[2][RU_N][100];  /* [none, zstd][what][pair] */
	double zdone[100], zwait[100]; /* zstd: compressed during the window; sealed, plain at its start */
	for (int rep = 0; rep < pairs && do_append; rep++) {
		for (int k = 0; k < 2; k++) {
			int zi = rep % 2 ? 1 - k : k;
			sb_store *s;
			sb_log *l;
			sb_log_stats st0 = {0}, st1 = {0};
			double r0[RU_N], r1[RU_N];
			snprintf(sdir, sizeof(sdir), "%s/a%d", dir, zi);
			if ((rc = open_store(sdir, zi ? SB_COMPRESS_ZSTD : SB_COMPRESS_NONE, rblock, 1, &s, &l)) ||
			    (rc = append_corpus(l, &c)))
				return 1;
			struct timespec warm = {0, WARM_MS * 1000000L};
			nanosleep(&warm, NULL);
			(void)sb_log_get_stats(l, &st0);
			thread_rusage(r0);
			double t0 = now_s(), c0 = thread_cpu_s();
			rc = append_corpus(l, &c);
			double t1 = now_s(), c1 = thread_cpu_s();
			thread_rusage(r1);
			(void)sb_log_get_stats(l, &st1);
			if (rc)
				return 1;
			for (int w = 0; w < RU_N; w++)
				ru[zi][w][rep] = r1[w] - r0[w];
			if (zi) {
				zdone[rep] = (double)st1.compressed - st0.compressed;
				zwait[rep] = (double)st0.segments - 1 - st0.compressed;
			}
			(zi ? tz : tn)[rep] = (double)c.nlines / (t1 - t0);
			(zi ? cz : cn)[rep] = (double)c.nlines / (c1 - c0);
			(void)sb_log_delete_before(l, sb_log_next(l));
			sb_store_close(s);
			sb_bench_rmtree(sdir);
		}
	}
	if (do_append) {
		for (int rep = 0; rep < pairs; rep++) {
			tr[rep] = tz[rep] / tn[rep];
			cr[rep] = cz[rep] / cn[rep];
		}
		double mr = median(tr, (size_t)pairs), mc = median(cr, (size_t)pairs);
		size_t np = (size_t)pairs;
		printf("\nappend (records/s, %d pairs back to back, alternated, each after an untimed pass of the same "
		       "records): none median %.0f, zstd median %.0f (background compressor on); zstd/none per pair: "
		       "median %.3fx, range %.3f..%.3f\n",
		       pairs, median(tn, np), median(tz, np), mr, tr[0], tr[pairs - 1]);
		printf("append per CPU second of the appending thread (records): none median %.0f, zstd median %.0f; "
		       "zstd/none per pair: median %.3fx, range %.3f..%.3f\n",
		       median(cn, np), median(cz, np), mc, cr[0], cr[pairs - 1]);
		printf("the appending thread, none / zstd (medians): user %.3f / %.3f s, system %.3f / %.3f s, minor "
		       "faults %.0f / %.0f, blocked %.0f / %.0f times, preempted %.0f / %.0f\n",
		       median(ru[0][RU_USER], np), median(ru[1][RU_USER], np), median(ru[0][RU_SYS], np),
		       median(ru[1][RU_SYS], np), median(ru[0][RU_MINFLT], np), median(ru[1][RU_MINFLT], np),
		       median(ru[0][RU_NVCSW], np), median(ru[1][RU_NVCSW], np), median(ru[0][RU_NIVCSW], np),
		       median(ru[1][RU_NIVCSW], np));
		printf("zstd: sealed segments waiting for the compressor when the window opened (median) %.0f; "
		       "compressed during the window %.0f\n",
		       median(zwait, np), median(zdone, np));
	}

	/* 3. random reads by offset in the compressed segments (zstd, rblock) */
	if (do_reads) {
		sb_store *s;
		sb_log *l;
		sb_log_stats st;
		snprintf(sdir, sizeof(sdir), "%s/r1-%u", dir, rblock);
		if ((rc = open_store(sdir, SB_COMPRESS_ZSTD, rblock, 0, &s, &l)) || (rc = sb_log_get_stats(l, &st)))
			return 1;
		/* records in the compressed segments: all but the last ~8 MiB */
		uint64_t n = sb_log_next(l), lim = n * 3 / 4;
		static char buf[1 << 20];
		size_t nr;
		uint64_t seed = 42;
		int reads = quick ? 2000 : 20000;
		double cold = 0, warm = 0, *cs = malloc((size_t)reads * sizeof(double)),
		       *ws = malloc((size_t)reads * sizeof(double));
		if (!cs || !ws)
			return 1;
		for (int i = 0; i < reads; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t off = (seed >> 20) % lim;
			double t0 = now_s();
			rc = sb_log_read(l, off, 0, buf, sizeof(buf), &nr, NULL);
			double t1 = now_s();
			rc |= sb_log_read(l, off, 0, buf, sizeof(buf), &nr, NULL);
			double t2 = now_s();
			if (rc)
				return 1;
			cold += t1 - t0;
			warm += t2 - t1;
			cs[i] = t1 - t0;
			ws[i] = t2 - t1;
		}
		double cm = median(cs, (size_t)reads), wm = median(ws, (size_t)reads);
		printf("random sb_log_read by offset, topic of %" PRIu64 " records (%u of %u segments compressed, "
		       "zstd, %u KiB blocks), %d reads: its block decompressed by it: median %.1f us (mean %.1f, "
		       "p99 %.1f); cached: median %.2f us (mean %.2f, p99 %.2f)\n",
		       n, st.compressed, st.segments, rblock >> 10, reads, cm * 1e6, cold / reads * 1e6,
		       cs[reads * 99 / 100] * 1e6, wm * 1e6, warm / reads * 1e6, ws[reads * 99 / 100] * 1e6);
		free(cs);
		free(ws);
		/* 4. the whole stream, 1 MiB reads */
		double gv[5], cv[5];
		for (int rep = 0; rep < 5; rep++) {
			uint64_t pos = sb_log_stream_start(l), end = sb_log_stream_end(l);
			double t0 = now_s(), c0 = cpu_s();
			while (pos < end) {
				if ((rc = sb_log_read_stream(l, pos, buf, sizeof(buf), &nr)) || !nr)
					return 1;
				pos += nr;
			}
			gv[rep] = (double)(end - sb_log_stream_start(l)) / (now_s() - t0) / 1e9;
			cv[rep] = (double)(end - sb_log_stream_start(l)) / (cpu_s() - c0) / 1e9;
		}
		double gm = median(gv, 5), cm5 = median(cv, 5);
		printf("sb_log_read_stream, 1 MiB reads over the whole topic (%" PRIu64 " bytes), 5 passes: median "
		       "%.2f GB/s, range %.2f..%.2f; per CPU second of the process (every thread): %.2f GB/s\n",
		       sb_log_stream_end(l) - sb_log_stream_start(l), gm, gv[0], gv[4], cm5);
		sb_store_close(s);
	}
	sb_bench_rmtree(dir);
	free(c.p);
	free(c.line);
	return status;
}
