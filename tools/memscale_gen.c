/*
 * memscale_gen.c - fill a LOG_DIR fast through the store API (no FUSE), for
 * tools/memscale (which compiles it against BUILD/libsbstore.a).
 *
 *   memscale_gen LOG_DIR TOPICS RECORDS [KEY_EVERY]
 *   memscale_gen --reopen LOG_DIR TOPIC KEY
 *
 * The first form makes TOPICS topics (one: "big"; more: t00000, t00001, ...)
 * of RECORDS records each, appended in batches of up to 1,000 with sync =
 * never, and closes the store cleanly. The payload of offset o is "rec o\n";
 * every KEY_EVERY-th record (default 10; 1: every record, all keys distinct)
 * has a key "k<o>".
 *
 * --reopen opens LOG_DIR as the daemon does (background threads on), times
 * the store open, the topic's open (sb_store_get) and one get of KEY, and
 * prints "reopen: store S ms, topic T ms, get G ms"; exit 1 unless the get
 * finds KEY.
 */
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_store.h"

#define BATCH 1000

static int fill(sb_log *l, unsigned long long count, unsigned long long key_every)
{
	static sb_record_in r[BATCH];
	static char val[BATCH][32], key[BATCH][32];
	unsigned long long done = 0;
	while (done < count) {
		size_t n = count - done < BATCH ? (size_t)(count - done) : BATCH;
		uint64_t base = sb_log_next(l);
		for (size_t i = 0; i < n; i++) {
			unsigned long long o = base + i;
			r[i] = (sb_record_in){ 0 };
			r[i].value = val[i];
			r[i].value_len = (uint32_t)snprintf(val[i], sizeof val[i], "rec %llu\n", o);
			r[i].timestamp_ns = 1700000000000000000LL + (long long)o * 1000;
			if (o % key_every == 0) {
				r[i].key = key[i];
				r[i].key_len = (uint32_t)snprintf(key[i], sizeof key[i], "k%llu", o);
			}
		}
		int rc = sb_log_append(l, r, n, NULL);
		if (rc) {
			fprintf(stderr, "memscale_gen: append: %s\n", sb_strerror(rc));
			return 1;
		}
		done += n;
	}
	return 0;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* --reopen LOG_DIR TOPIC KEY: time a reopen after a clean close. */
static int reopen(const char *dir, const char *topic, const char *key)
{
	sb_store_options o;
	sb_store *s;
	sb_log *l;
	sb_record_info info;
	char buf[64];
	size_t n = 0;
	sb_store_options_default(&o);
	double t0 = now_ms();
	int rc = sb_store_open(dir, &o, &s);
	if (rc) {
		fprintf(stderr, "memscale_gen: open %s: %s\n", dir, sb_strerror(rc));
		return 1;
	}
	double t1 = now_ms();
	if ((rc = sb_store_get(s, topic, &l)))
		fprintf(stderr, "memscale_gen: get %s: %s\n", topic, sb_strerror(rc));
	double t2 = now_ms();
	if (!rc && (rc = sb_log_get_key(l, key, strlen(key), buf, sizeof buf, &n, &info)))
		fprintf(stderr, "memscale_gen: key %s: %s\n", key, sb_strerror(rc));
	double t3 = now_ms();
	printf("reopen: store %.1f ms, topic %.1f ms, get %.3f ms\n", t1 - t0, t2 - t1, t3 - t2);
	int crc = sb_store_close(s);
	if (crc)
		fprintf(stderr, "memscale_gen: close: %s\n", sb_strerror(crc));
	return rc || crc;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--reopen"))
		return reopen(argv[2], argv[3], argv[4]);
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: memscale_gen LOG_DIR TOPICS RECORDS [KEY_EVERY]\n"
				"       memscale_gen --reopen LOG_DIR TOPIC KEY\n");
		return 2;
	}
	long topics = atol(argv[2]);
	unsigned long long records = strtoull(argv[3], NULL, 10);
	unsigned long long key_every = argc == 5 ? strtoull(argv[4], NULL, 10) : 10;
	if (!key_every) {
		fprintf(stderr, "memscale_gen: KEY_EVERY must be at least 1\n");
		return 2;
	}
	sb_store_options o;
	sb_store *s;
	sb_store_options_default(&o);
	o.no_flusher = 1;
	o.defaults.sync = SB_SYNC_NEVER;
	int rc = sb_store_open(argv[1], &o, &s);
	if (rc) {
		fprintf(stderr, "memscale_gen: open %s: %s\n", argv[1], sb_strerror(rc));
		return 1;
	}
	int bad = 0;
	for (long t = 0; t < topics && !bad; t++) {
		char name[32];
		sb_log *l;
		if (topics == 1)
			snprintf(name, sizeof name, "big");
		else
			snprintf(name, sizeof name, "t%05ld", t);
		if ((rc = sb_store_create(s, name)) && rc != -EEXIST) {
			fprintf(stderr, "memscale_gen: create %s: %s\n", name, sb_strerror(rc));
			bad = 1;
			break;
		}
		if ((rc = sb_store_get(s, name, &l))) {
			fprintf(stderr, "memscale_gen: get %s: %s\n", name, sb_strerror(rc));
			bad = 1;
			break;
		}
		bad = fill(l, records, key_every);
	}
	if ((rc = sb_store_close(s))) {
		fprintf(stderr, "memscale_gen: close: %s\n", sb_strerror(rc));
		bad = 1;
	}
	return bad;
}
