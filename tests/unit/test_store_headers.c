/*
 * test_store_headers.c - bit rot in the length fields of a record header in
 * a sealed segment (found by tests/fuzz/fuzz_segment): a read that walks
 * over that record from an index entry must not take the damaged lengths on
 * trust. Every record is served with its own stream position or an error,
 * and every stream byte served is the byte of the stream written.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "util_files.h"
#include "util_store.h"

#define NREC 300
#define SEED 11

static ut_env env;
static uint64_t spos[NREC + 1]; /* stream pos of each record; [NREC]: the end */
static uint8_t *stream;         /* the stream written */

static void setup(void)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;

	cr_assert_eq(ut_env_init(&env, "hdr"), 0);
	ut_cfg(&c, 8192, SB_SYNC_NEVER);
	c.index_interval_bytes = 1024;
	cr_assert_eq(ut_open(env.store, &c, NULL, &s), 0);
	cr_assert_not_null(l = ut_topic(s, "t"));
	cr_assert_eq(ut_append_n(l, NREC, SEED, 1, 200), 0);
	stream = malloc(NREC * 200);
	for (uint64_t o = 0; o < NREC; o++) {
		size_t len = ut_len(o, SEED, 1, 200);
		spos[o + 1] = spos[o] + len;
		ut_fill(stream + spos[o], len, o, SEED);
	}
	cr_assert_eq(sb_store_close(s), 0);
}

static void teardown(void)
{
	free(stream);
	ut_env_fini(&env);
}

TestSuite(headers, .init = setup, .fini = teardown);

/* Every record and the whole stream, read back: right or an error. */
static void check_reads(void)
{
	sb_log_config c;
	sb_store *s;
	sb_log *l;
	sb_record_info info;
	uint8_t buf[4096];
	size_t n;

	ut_cfg(&c, 8192, SB_SYNC_NEVER);
	cr_assert_eq(ut_open_ro(env.store, &c, &s), 0);
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	for (uint64_t o = 0; o < NREC; o++)
		if (sb_log_stat(l, o, &info) == 0)
			cr_assert_eq(info.stream_pos, spos[o], "record %llu at stream pos %llu, written at %llu",
				     (unsigned long long)o, (unsigned long long)info.stream_pos,
				     (unsigned long long)spos[o]);
	for (uint64_t pos = 0; pos < spos[NREC]; pos += 97) {
		uint64_t off;
		if (sb_log_read_stream(l, pos, buf, sizeof buf, &n) == 0)
			cr_assert(n <= spos[NREC] - pos && !memcmp(buf, stream + pos, n),
				  "stream bytes at %llu differ from those written", (unsigned long long)pos);
		if (sb_log_offset_at(l, pos, &off) == 0)
			cr_assert(spos[off] <= pos && pos < spos[off + 1], "stream byte %llu is not in record %llu",
				  (unsigned long long)pos, (unsigned long long)off);
	}
	sb_store_close(s);
}

Test(headers, damaged_lengths_of_a_skipped_record_are_not_trusted)
{
	char tdir[4096], path[8192], **names;
	int nseg = uf_list_suffix(ut_topic_path(&env, "t", NULL, tdir, sizeof tdir), SB_SEG_SUFFIX, &names);
	uint64_t r = 0x9e3779b97f4a7c15u;
	int trials = 0;

	cr_assert_gt(nseg, 3);
	/* In each sealed segment, damage the value_len (then the key_len) of
	 * records one at a time, with random bits; put it back after. */
	for (int i = 0; i + 1 < nseg; i++) {
		snprintf(path, sizeof path, "%s/%s", tdir, names[i]);
		int fd = open(path, O_RDWR);
		cr_assert_geq(fd, 0);
		off_t size = lseek(fd, 0, SEEK_END);
		uint8_t *seg = malloc((size_t)size);
		cr_assert_eq(pread(fd, seg, (size_t)size, 0), size);
		for (uint64_t pos = SB_SEG_HDR, k = 0; pos < (uint64_t)size; pos += sb_get32(seg + pos + 4), k++) {
			for (int field = 0; field < 2; field++) {
				off_t at = (off_t)pos + (field ? 26 : 28);
				uint8_t old[4], bad[4];
				size_t w = field ? 2 : 4;
				r ^= r << 13, r ^= r >> 7, r ^= r << 17;
				memcpy(old, seg + at, w);
				memcpy(bad, old, w);
				bad[r % w] ^= (uint8_t)(r >> 8 | 1);
				cr_assert_eq(pwrite(fd, bad, w, at), (ssize_t)w);
				check_reads();
				cr_assert_eq(pwrite(fd, old, w, at), (ssize_t)w);
				trials++;
			}
		}
		free(seg);
		close(fd);
	}
	uf_list_free(names, nseg);
	cr_assert_gt(trials, 100);
}
