/*
 * bench_open.c - `streambus bench open`: the time of sb_store_open (and
 * close) of a store of N topics without keys (default 1,000 of 2 MiB of
 * 100-byte records each), after a clean close, warm page cache:
 *
 *   with the key index's tables as a clean close leaves them (since issue
 *   10: an empty table records that nothing keyed came, so the open replays
 *   nothing), and
 *   without them (every *.keys file removed: what every open did before, a
 *   replay of each topic's records up to 64 MiB, as for a topic whose
 *   records the index has not seen).
 */
#define SB_BENCH_INTERNAL
#include "bench.h"

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sb_store.h"

static int opts_of(sb_store_options *so)
{
	sb_store_options_default(so);
	so->no_flusher = 1;
	so->defaults.sync = SB_SYNC_NEVER;
	return 0;
}

static int load(const char *dir, unsigned topics, uint64_t bytes)
{
	sb_store_options so;
	sb_store *s;
	uint8_t val[100];
	sb_record_in r[64];
	int rc;

	opts_of(&so);
	memset(val, 'x', sizeof(val));
	for (int i = 0; i < 64; i++)
		r[i] = (sb_record_in){.value = val, .value_len = sizeof(val)};
	if ((rc = sb_store_open(dir, &so, &s)))
		return rc;
	for (unsigned t = 0; t < topics && !rc; t++) {
		char name[32];
		sb_log *l;
		snprintf(name, sizeof(name), "t%05u", t);
		if ((rc = sb_store_create(s, name)) || (rc = sb_store_get(s, name, &l)))
			break;
		for (uint64_t done = 0; done < bytes && !rc; done += 64 * sizeof(val))
			rc = sb_log_append(l, r, 64, NULL);
	}
	int rc2 = sb_store_close(s);
	return rc ? rc : rc2;
}

static int timed_open(const char *dir, double *secs)
{
	sb_store_options so;
	sb_store *s;
	int rc;

	opts_of(&so);
	uint64_t t0 = sb_bench_now();
	if ((rc = sb_store_open(dir, &so, &s)))
		return rc;
	*secs = (double)(sb_bench_now() - t0) / 1e9;
	return sb_store_close(s);
}

/* Remove every key table (NNNN-NNNN.keys) of every topic. */
static unsigned drop_tables(const char *dir)
{
	DIR *d = opendir(dir), *td;
	struct dirent *de, *te;
	unsigned n = 0;
	char path[8192];

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!(td = opendir(path)))
			continue;
		while ((te = readdir(td))) {
			size_t nl = strlen(te->d_name);
			if (nl > 5 && !strcmp(te->d_name + nl - 5, ".keys")) {
				char f[8448];
				snprintf(f, sizeof(f), "%s/%s", path, te->d_name);
				n += unlink(f) == 0;
			}
		}
		closedir(td);
	}
	closedir(d);
	return n;
}

int sb_bench_open_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"topics", required_argument, NULL, 't'}, {"mb", required_argument, NULL, 'm'},
		{"dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned topics = 1000;
	uint64_t mb = 2;
	const char *dir = NULL;
	char tmpl[4096];
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 't': topics = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': mb = strtoull(optarg, NULL, 10); break;
		case 'd': dir = optarg; break;
		case 'h':
			printf("usage: streambus bench open [--topics N] [--mb M] [--dir DIR]\n"
			       "  open (and close) of N topics (default 1,000) of M MiB (default 2) of records\n"
			       "  without keys after a clean close, with the key tables it leaves and without\n"
			       "  them (a replay of every topic, as every open did before).\n");
			return 0;
		default:
			return 2;
		}
	}
	const char *base = dir ? dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/sbbench-open-XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		perror("streambus bench open: mkdtemp");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	double with = 0, without = 0;
	unsigned dropped = 0;
	if (!(rc = load(tmpl, topics, mb << 20)) && !(rc = timed_open(tmpl, &with)) &&
	    !(rc = timed_open(tmpl, &with))) { /* the second: both warm */
		dropped = drop_tables(tmpl);
		rc = timed_open(tmpl, &without);
	}
	if (rc)
		fprintf(stderr, "streambus bench open: %s\n", sb_strerror(rc));
	else
		printf("open of %u topics without keys, %" PRIu64 " MiB each, after a clean close (warm): "
		       "%.3f s with the key tables a clean close leaves; %.3f s without them "
		       "(%u removed: each topic replayed)\n",
		       topics, mb, with, without, dropped);
	sb_bench_rmtree(tmpl);
	return rc ? 1 : 0;
}
