/*
 * bench_compact.c - `streambus bench compact`: cleanup = compact on a topic
 * where each of N keys was written V times (default 10,000 keys x 100
 * versions of 100-byte values, round-robin, so every sealed segment holds
 * stale versions of many keys): the on-disk bytes before and after one
 * round of sb_log_compact, and its throughput in MB/s of input (segment
 * bytes read), with the key index answering "is this the latest?" for
 * every record. Segments of 4 MiB. sync = never while loading, then one sb_log_sync; the
 * round itself fdatasyncs each rewritten segment and the directory.
 */
#define SB_BENCH_INTERNAL
#include "bench.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_store.h"

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct copts {
	uint64_t keys, versions, value;
	const char *dir;
} copts;

static int load(sb_log *l, const copts *o)
{
	char key[32];
	uint8_t *val = malloc(o->value);
	int rc = 0;

	if (!val)
		return -1;
	for (uint64_t v = 0; v < o->versions && !rc; v++)
		for (uint64_t k = 0; k < o->keys && !rc; k++) {
			memset(val, (int)('a' + (k + v) % 26), o->value);
			sb_record_in r = {.key = key, .key_len = (uint32_t)snprintf(key, sizeof(key), "key-%08" PRIu64, k),
					  .value = val, .value_len = (uint32_t)o->value};
			rc = sb_log_append(l, &r, 1, NULL);
		}
	free(val);
	return rc ? rc : sb_log_sync(l);
}

static int run(const copts *o)
{
	sb_store_options so;
	sb_store *s;
	sb_log *l;
	sb_log_stats before, after;
	sb_compact_stats st;
	int rc;

	sb_store_options_default(&so);
	so.no_flusher = 1; /* no background round: the one measured is ours */
	so.defaults.sync = SB_SYNC_NEVER;
	so.defaults.cleanup = SB_CLEANUP_COMPACT;
	so.defaults.segment_bytes = 4u << 20; /* a sealed run of many segments */
	if ((rc = sb_store_open(o->dir, &so, &s)))
		goto out;
	if ((rc = sb_store_create(s, "t")) || (rc = sb_store_get(s, "t", &l)))
		goto out_close;
	uint64_t t0 = sb_bench_now();
	if ((rc = load(l, o)))
		goto out_close;
	double load_s = (double)(sb_bench_now() - t0) / 1e9;
	if ((rc = sb_log_get_stats(l, &before)))
		goto out_close;
	t0 = sb_bench_now();
	rc = sb_log_compact(l, realtime_ns(), &st);
	double secs = (double)(sb_bench_now() - t0) / 1e9;
	if (rc || (rc = sb_log_get_stats(l, &after)))
		goto out_close;
	printf("compaction: %" PRIu64 " keys x %" PRIu64 " versions of %" PRIu64 " B (%" PRIu64
	       " records, loaded in %.1f s)\n",
	       o->keys, o->versions, o->value, before.records, load_s);
	printf("  topic on disk: %" PRIu64 " bytes before, %" PRIu64 " after (%.1f%%), %" PRIu32 " segments\n",
	       before.bytes, after.bytes, 100.0 * (double)after.bytes / (double)before.bytes, after.segments);
	printf("  one round: %" PRIu32 " segments rewritten, %" PRIu64 " -> %" PRIu64 " bytes, %" PRIu64
	       " -> %" PRIu64 " records, %.3f s: %.1f MB/s of input\n",
	       st.segments, st.bytes_in, st.bytes_out, st.records_in, st.records_out, secs,
	       secs > 0 ? (double)st.bytes_in / secs / 1e6 : 0.0);
out_close:
	sb_store_close(s);
out:
	if (rc)
		fprintf(stderr, "streambus bench compact: %s\n", sb_strerror(rc));
	return rc ? 1 : 0;
}

int sb_bench_compact_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"quick", no_argument, NULL, 'q'}, {"keys", required_argument, NULL, 'k'},
		{"versions", required_argument, NULL, 'V'}, {"value", required_argument, NULL, 'b'},
		{"dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	copts o = {.keys = 10000, .versions = 100, .value = 100};
	char tmpl[4096];
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q': o.keys = 1000; break;
		case 'k': o.keys = strtoull(optarg, NULL, 10); break;
		case 'V': o.versions = strtoull(optarg, NULL, 10); break;
		case 'b': o.value = strtoull(optarg, NULL, 10); break;
		case 'd': o.dir = optarg; break;
		case 'h':
			printf("usage: streambus bench compact [--quick] [--keys N] [--versions V] [--value BYTES]\n"
			       "                               [--dir DIR]\n"
			       "  cleanup = compact on a topic of N keys (default 10,000; --quick 1,000) each\n"
			       "  written V times (default 100) with BYTES-byte values (default 100): bytes on\n"
			       "  disk before and after one round, and its MB/s of input.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!o.keys || !o.versions || !o.value || o.value > (1u << 20)) {
		fprintf(stderr, "streambus bench compact: --keys, --versions at least 1, --value 1..1048576\n");
		return 2;
	}
	const char *base = o.dir ? o.dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/sbbench-compact-XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		perror("streambus bench compact: mkdtemp");
		return 2;
	}
	o.dir = tmpl;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = run(&o);
	sb_bench_rmtree(tmpl);
	return rc;
}
