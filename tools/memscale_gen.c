/*
 * memscale_gen.c - fill a LOG_DIR fast through the store API (no FUSE), for
 * tools/memscale (which compiles it against BUILD/libsbstore.a).
 *
 *   memscale_gen LOG_DIR TOPICS RECORDS
 *
 * makes TOPICS topics (one: "big"; more: t00000, t00001, ...) of RECORDS
 * records each, appended in batches of up to 1,000 with sync = never.
 * The payload of offset o is "rec o\n"; every 10th record has a key "k<o>".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_store.h"

#define BATCH 1000

static int fill(sb_log *l, unsigned long long count)
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
			if (o % 10 == 0) {
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

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: memscale_gen LOG_DIR TOPICS RECORDS\n");
		return 2;
	}
	long topics = atol(argv[2]);
	unsigned long long records = strtoull(argv[3], NULL, 10);
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
		bad = fill(l, records);
	}
	if ((rc = sb_store_close(s))) {
		fprintf(stderr, "memscale_gen: close: %s\n", sb_strerror(rc));
		bad = 1;
	}
	return bad;
}
