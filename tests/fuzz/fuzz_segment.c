/*
 * fuzz_segment - segment recovery: the fuzz input becomes one or two
 * segment files (and optionally an index file and a clean marker) of a topic
 * in a scratch directory on tmpfs; the store opens it (read-write, with or
 * without `repair`, or read_only) and every offset and the whole stream are
 * read back.
 *
 * Input: byte 0 says what to build (bits below), then u16 lengths of the
 * parts that have one, then the parts: segment 1, its index, segment 2.
 *
 * Properties: no crash or sanitizer report; every record served is one the
 * input holds, with that offset and a good CRC (the payload, key and header
 * fields equal); up to the first record that cannot be read, stream
 * positions are consecutive; when every record reads, the stream read back
 * is the payloads in offset order;
 * a topic opened (not refused) with `repair` (read-write) over segments without an index
 * file, or with `full_check` too, passes sb_verify_topic after its close; with or without one, it
 * reopens without `repair` with the same offsets.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "codec.h"
#include "sb_store.h"
#include "util.h"
#include "verify.h"

enum {
	M_REPAIR = 1,     /* open with repair */
	M_RDONLY = 2,     /* open read_only */
	M_INDEX = 4,      /* an index file for segment 1 */
	M_SEG2 = 8,       /* a second segment, named by its header's base */
	M_CLEAN = 16,     /* a clean marker naming the last segment's length */
	M_NAME = 32,      /* segment 1 named by its header's base (else 0) */
	M_FIXCRC = 64,    /* recompute the CRCs of headers and records */
	M_FULL = 128,     /* open with full_check (what `streambus recover` does) */
};

#define MAX_READS 2048

typedef struct rec {
	uint64_t offset;
	const uint8_t *p;   /* the whole record in the input */
	sb_rec_hdr h;
} rec;

typedef struct oracle {
	rec *r;
	size_t n, cap;
} oracle;

/* Recompute every CRC the decoder checks, as far as sizes lead. */
static void fix_crcs(uint8_t *p, size_t n, int is_index)
{
	if (is_index) {
		if (n < SB_IDX_HDR)
			return;
		sb_put32(p + SB_IDX_AT_ECRC, sb_crc32c(0, p + SB_IDX_HDR, n - SB_IDX_HDR));
		sb_put32(p + SB_IDX_AT_CRC, sb_crc32c(0, p, SB_IDX_AT_CRC));
		return;
	}
	if (n < SB_SEG_HDR)
		return;
	sb_put32(p + SB_SEG_AT_CRC, sb_crc32c(0, p, SB_SEG_AT_CRC));
	for (size_t pos = SB_SEG_HDR; pos + SB_REC_HDR <= n;) {
		uint32_t size = sb_get32(p + pos + SB_REC_AT_SIZE);
		if (size < SB_REC_HDR || size > n - pos)
			break;
		sb_put32(p + pos + SB_REC_AT_CRC,
			 sb_crc32c(0, p + pos + SB_REC_AT_SIZE, size - SB_REC_AT_SIZE));
		pos += size;
	}
}

/* Every record of a segment image that decodes with a good CRC, wherever
 * it starts (an index may lead the store past a damaged one). */
static void oracle_add(oracle *o, const uint8_t *p, size_t n)
{
	for (size_t pos = SB_SEG_HDR; pos + SB_REC_HDR <= n; pos++) {
		rec r;
		if (sb_rec_decode(p + pos, n - pos, 1, &r.h) != SB_REC_OK)
			continue;
		r.p = p + pos;
		r.offset = r.h.offset;
		if (o->n == o->cap) {
			o->cap = o->cap ? 2 * o->cap : 64;
			o->r = realloc(o->r, o->cap * sizeof *o->r);
		}
		o->r[o->n++] = r;
	}
}

static const rec *oracle_find(const oracle *o, uint64_t off, const uint8_t *val, size_t len,
			      const sb_record_info *info)
{
	for (size_t i = 0; i < o->n; i++) {
		const rec *r = &o->r[i];
		if (r->offset == off && r->h.value_len == len && info->timestamp_ns == r->h.timestamp_ns &&
		    info->key_len == r->h.key_len && info->flags == r->h.flags &&
		    !memcmp(r->p + SB_REC_HDR + r->h.key_len, val, len))
			return r;
	}
	return NULL;
}

static int quiet_config(void *arg, const char *topic, sb_log_config *cfg)
{
	(void)arg;
	(void)topic;
	cfg->index_interval_bytes = 256;
	return 0;
}

/* Read every offset and the stream of topic t; check them against o.
 * 0, or -1 when the store refused the topic (damage it must not cut, an
 * unknown format version): then there is nothing to read. */
static int read_all(sb_store *s, const oracle *o, uint64_t *next_out)
{
	static uint8_t buf[1 << 16], key[1 << 16];
	sb_log *l;
	sb_record_info info, prev;
	size_t n, klen;
	int have_prev = 0, all_ok = 1;
	uint64_t total = 0;

	if (sb_store_get(s, "t", &l))
		return -1;
	uint64_t start = sb_log_start(l), next = sb_log_next(l);
	*next_out = next;
	FZ_CHECK(start <= next, "start %llu > next %llu", (unsigned long long)start,
		 (unsigned long long)next);
	FZ_CHECK(sb_log_stream_start(l) <= sb_log_stream_end(l), "stream start > end");
	for (uint64_t off = start; off < next && off - start < MAX_READS; off++) {
		int rc = sb_log_read(l, off, 0, buf, sizeof buf, &n, &info);
		if (rc) {
			all_ok = 0;
			have_prev = 0;
			continue;
		}
		if (getenv("SB_FUZZ_DEBUG"))
			fprintf(stderr, "offset %llu: stream %llu len %u\n", (unsigned long long)off,
				(unsigned long long)info.stream_pos, info.value_len);
		FZ_CHECK(info.offset == off, "read %llu gave record %llu", (unsigned long long)off,
			 (unsigned long long)info.offset);
		FZ_CHECK(n == info.value_len || n == sizeof buf, "short read");
		if (info.value_len > sizeof buf)
			continue;
		const rec *r = oracle_find(o, off, buf, n, &info);
		FZ_CHECK(r, "offset %llu served %zu bytes that no good record of the input holds",
			 (unsigned long long)off, n);
		if (!sb_log_read_key(l, off, key, sizeof key, &klen))
			FZ_CHECK(klen == r->h.key_len && !memcmp(key, r->p + SB_REC_HDR, klen),
				 "key of %llu differs", (unsigned long long)off);
		if (!sb_log_read_headers(l, off, key, sizeof key, &klen))
			FZ_CHECK(klen == r->h.hdrs_len && !memcmp(key, r->p + sb_rec_hdrs_at(&r->h), klen) &&
				 klen == info.headers_len,
				 "headers of %llu differ", (unsigned long long)off);
		/* Stream positions count the value lengths of the records
		 * before; after a damaged one (a read failed) they are only as
		 * good as that record's header: a self-consistent forged header
		 * moves them, which nothing short of a CRC check of every
		 * record walked over could see (docs/RELIABILITY.md). */
		if (have_prev && all_ok)
			FZ_CHECK(info.stream_pos == prev.stream_pos + prev.value_len,
				 "stream pos of %llu not after its predecessor", (unsigned long long)off);
		prev = info;
		have_prev = 1;
		total += info.value_len;
	}
	/* the stream: the payloads in order, when every record read */
	uint64_t ss = sb_log_stream_start(l), se = sb_log_stream_end(l);
	if (!all_ok || next - start > MAX_READS || se - ss > (1u << 20))
		return 0;
	FZ_CHECK(se - ss == total, "stream holds %llu bytes, records %llu",
		 (unsigned long long)(se - ss), (unsigned long long)total);
	uint64_t pos = ss, off = start, from = 0;
	while (pos < se) {
		int rc = sb_log_read_stream(l, pos, buf, 4096, &n);
		if (rc)
			return 0;
		FZ_CHECK(n > 0, "stream read of 0 bytes before its end");
		/* compare with the records' payloads from (off, from) */
		for (size_t i = 0; i < n;) {
			size_t vl;
			sb_record_info ri;
			FZ_CHECK(off < next, "stream longer than the records");
			FZ_CHECK(!sb_log_read(l, off, from, key, n - i, &vl, &ri), "record read again");
			if (ri.value_len == from) {
				off++;
				from = 0;
				continue;
			}
			FZ_CHECK(vl > 0 && !memcmp(key, buf + i, vl), "stream byte %llu differs",
				 (unsigned long long)(pos + i));
			i += vl;
			from += vl;
		}
		pos += n;
	}
	return 0;
}

static void print_problem(void *arg, const sb_verify_problem *p)
{
	(void)arg;
	fprintf(stderr, "verify: kind %d %s @%lld: %s%s\n", p->kind, p->path, (long long)p->pos, p->msg,
		p->newest ? " (newest)" : "");
}

static void open_and_read(const char *dir, const char *topic, const oracle *o, int mode)
{
	sb_store_options opt;
	sb_store *s;
	uint64_t next = 0, next2 = 0;

	sb_store_options_default(&opt);
	opt.topic_config = quiet_config;
	opt.no_flusher = 1;
	opt.lock_wait_ms = 0;
	opt.repair = !!(mode & M_REPAIR);
	opt.read_only = !!(mode & M_RDONLY);
	opt.full_check = !!(mode & M_FULL);
	if (sb_store_open(dir, &opt, &s))
		return;
	int opened = read_all(s, o, &next) == 0;
	sb_store_close(s);
	if (!opt.repair || opt.read_only || !opened)
		return;
	/* repaired: clean on disk when the open checked every record (no
	 * index file, or full_check: a sealed segment with a good index is
	 * trusted by a plain open, by design, and bit rot in it is found by
	 * reads and by verify, not by the open), and it opens as it was */
	sb_verify_result res;
	FZ_CHECK(sb_verify_topic(topic, print_problem, NULL, NULL, &res) == 0, "verify could not run");
	FZ_CHECK(((mode & M_INDEX) && !(mode & M_FULL)) || sb_verify_damage(&res) == 0, "a repaired topic has %llu problems",
		 (unsigned long long)sb_verify_damage(&res));
	opt.repair = 0;
	FZ_CHECK(sb_store_open(dir, &opt, &s) == 0, "a repaired store does not reopen");
	FZ_CHECK(read_all(s, o, &next2) == 0, "a repaired topic is refused on reopen");
	FZ_CHECK(next == next2, "next %llu after repair, %llu on reopen", (unsigned long long)next,
		 (unsigned long long)next2);
	sb_store_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	int mode = fz_u8(&in);
	size_t l1 = fz_u16(&in), li = mode & M_INDEX ? fz_u16(&in) : 0;
	size_t n1, ni, n2 = 0;
	const uint8_t *s1 = fz_bytes(&in, l1, &n1), *ix = fz_bytes(&in, li, &ni), *s2 = NULL;
	char dir[PATH_MAX], topic[PATH_MAX], path[PATH_MAX + 64], name[32];
	oracle o = {0};

	if (mode & M_SEG2)
		s2 = fz_bytes(&in, in.n, &n2);
	/* own copies: CRCs may be fixed up; the oracle reads these */
	uint8_t *c1 = malloc(n1 + 1), *ci = malloc(ni + 1), *c2 = malloc(n2 + 1);
	memcpy(c1, s1, n1);
	memcpy(ci, ix, ni);
	if (n2)
		memcpy(c2, s2, n2);
	if (mode & M_FIXCRC) {
		fix_crcs(c1, n1, 0);
		fix_crcs(ci, ni, 1);
		fix_crcs(c2, n2, 0);
	}
	uint64_t base1 = (mode & M_NAME) && n1 >= 16 ? sb_get64(c1 + 8) : 0;
	uint64_t base2 = n2 >= 16 ? sb_get64(c2 + 8) : 1;

	fz_clear();
	snprintf(dir, sizeof dir, "%s/store", fz_scratch());
	snprintf(topic, sizeof topic, "%s/t", dir);
	fz_rmtree(dir);
	FZ_CHECK(mkdir(dir, 0755) == 0 && mkdir(topic, 0755) == 0, "mkdir");
	sb_seg_name(name, base1, SB_SEG_SUFFIX);
	snprintf(path, sizeof path, "%s/%s", topic, name);
	fz_write(path, c1, n1);
	if (mode & M_INDEX) {
		sb_seg_name(name, base1, SB_IDX_SUFFIX);
		snprintf(path, sizeof path, "%s/%s", topic, name);
		fz_write(path, ci, ni);
	}
	if ((mode & M_SEG2) && base2 != base1) {
		sb_seg_name(name, base2, SB_SEG_SUFFIX);
		snprintf(path, sizeof path, "%s/%s", topic, name);
		fz_write(path, c2, n2);
	}
	if (mode & M_CLEAN) {
		uint8_t cl[SB_CLEAN_SIZE];
		int two = (mode & M_SEG2) && base2 > base1;
		sb_clean_rec c = {two ? base2 : base1, two ? n2 : n1};
		sb_clean_encode(cl, &c);
		snprintf(path, sizeof path, "%s/%s", topic, SB_CLEAN_NAME);
		fz_write(path, cl, sizeof cl);
	}
	oracle_add(&o, c1, n1);
	if (n2)
		oracle_add(&o, c2, n2);
	open_and_read(dir, topic, &o, mode);
	fz_rmtree(dir);
	free(o.r);
	free(c1);
	free(ci);
	free(c2);
	return 0;
}
