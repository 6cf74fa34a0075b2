/*
 * util.c - helpers shared by the fuzz targets.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char scratch[PATH_MAX];

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FUZZ PROPERTY FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fz_rmtree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[PATH_MAX];

	if (!d) {
		unlink(path);
		return;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR)
			fz_rmtree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

static void scratch_remove(void)
{
	if (scratch[0])
		fz_rmtree(scratch);
}

const char *fz_scratch(void)
{
	if (!scratch[0]) {
		struct stat st;
		const char *base = getenv("SB_FUZZ_SCRATCH");
		if (!base)
			base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : NULL;
		if (!base)
			base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(scratch, sizeof scratch, "%s/sbfuzz.XXXXXX", base);
		if (!mkdtemp(scratch))
			fz_fail("mkdtemp %s: %s", scratch, strerror(errno));
		atexit(scratch_remove);
	}
	return scratch;
}

void fz_clear(void)
{
	const char *s = fz_scratch();
	DIR *d = opendir(s);
	struct dirent *e;
	char sub[PATH_MAX];

	if (!d)
		fz_fail("opendir %s: %s", s, strerror(errno));
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", s, e->d_name);
		fz_rmtree(sub);
	}
	closedir(d);
}

void fz_write(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		fz_fail("open %s: %s", path, strerror(errno));
	if (n && write(fd, p, n) != (ssize_t)n)
		fz_fail("write %s: %s", path, strerror(errno));
	close(fd);
}

uint8_t *fz_read(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *b;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(b = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return NULL;
	}
	if (read(fd, b, (size_t)st.st_size) != st.st_size) {
		free(b);
		close(fd);
		return NULL;
	}
	close(fd);
	*n = (size_t)st.st_size;
	return b;
}

uint8_t fz_u8(fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

uint16_t fz_u16(fz_in *in)
{
	uint16_t lo = fz_u8(in);
	return (uint16_t)(lo | fz_u8(in) << 8);
}

uint32_t fz_u32(fz_in *in)
{
	uint32_t lo = fz_u16(in);
	return lo | (uint32_t)fz_u16(in) << 16;
}

uint64_t fz_u64(fz_in *in)
{
	uint64_t lo = fz_u32(in);
	return lo | (uint64_t)fz_u32(in) << 32;
}

const uint8_t *fz_bytes(fz_in *in, size_t max, size_t *len)
{
	const uint8_t *p = in->p;
	size_t n = max < in->n ? max : in->n;

	in->p += n;
	in->n -= n;
	*len = n;
	return p;
}

#include "codec.h"

static fz_sample sample;

const fz_sample *fz_sample_segment(void)
{
	if (sample.seg)
		return &sample;
	size_t cap = SB_SEG_HDR, pos = SB_SEG_HDR, stream = 0;
	/* every fifth record has headers (format v3): binary, empty values */
	static const sb_header hs[3] = {
		{.name = "trace-id", .name_len = 8, .value = "\x00\x01\xfe\xff", .value_len = 4},
		{.name = "empty", .name_len = 5, .value = "", .value_len = 0},
		{.name = "content-type", .name_len = 12, .value = "text/plain", .value_len = 10},
	};
	for (unsigned i = 0; i < FZ_SAMPLE_RECORDS; i++) {
		sb_record_in r = {.key_len = i % 3 ? 0 : 5, .value_len = (i * 37) % 301,
				  .headers = hs, .n_headers = i % 5 == 2 ? 1 + i % 3 : 0};
		cap += sb_rec_size_in(&r);
	}
	sample.seg = calloc(1, cap);
	sb_seg_hdr h = {.base_offset = FZ_SAMPLE_BASE, .base_stream = FZ_SAMPLE_STREAM};
	sb_seg_hdr_encode(sample.seg, &h);
	for (unsigned i = 0; i < FZ_SAMPLE_RECORDS; i++) {
		uint8_t val[301];
		uint32_t vlen = (i * 37) % 301;
		for (uint32_t k = 0; k < vlen; k++)
			val[k] = (uint8_t)('a' + (i + k) % 26);
		if (vlen)
			val[vlen - 1] = '\n';
		sb_record_in r = {.key = "key-k", .key_len = i % 3 ? 0 : 5, .value = val,
				  .value_len = vlen, .headers = hs, .n_headers = i % 5 == 2 ? 1 + i % 3 : 0};
		sample.pos[i] = (uint32_t)pos;
		sample.stream[i] = (uint32_t)stream;
		pos += sb_rec_encode(sample.seg + pos, FZ_SAMPLE_BASE + i,
				     1700000000000000000LL + i, &r);
		stream += vlen;
	}
	sample.len = pos;
	return &sample;
}

uint8_t *fz_sample_index(unsigned every, size_t *n)
{
	const fz_sample *s = fz_sample_segment();
	unsigned count = 0;
	uint8_t *b = calloc(1, SB_IDX_HDR + FZ_SAMPLE_RECORDS * SB_IDX_ENTRY);

	for (unsigned i = 0; i < FZ_SAMPLE_RECORDS; i += every) {
		sb_idx_entry e = {i, s->pos[i], s->stream[i]};
		sb_idx_entry_encode(b + SB_IDX_HDR + count++ * SB_IDX_ENTRY, &e);
	}
	sb_idx_hdr h = {.base_offset = FZ_SAMPLE_BASE, .count = count, .seg_len = (uint32_t)s->len,
			.max_ts = 1700000000000000000LL + FZ_SAMPLE_RECORDS - 1,
			.entries_crc = sb_crc32c(0, b + SB_IDX_HDR, count * SB_IDX_ENTRY)};
	sb_idx_hdr_encode(b, &h);
	*n = SB_IDX_HDR + count * SB_IDX_ENTRY;
	return b;
}

#include "keytable.h"

static fz_keyed keyed;
static uint8_t keyed_long[2][2600];

static void keyed_keys(fz_keyed *s)
{
	static const struct { const char *k; size_t n; } ks[FZ_KEYED_KEYS - 2] = {
		{"a", 1}, {"ab", 2}, {"abc", 3}, {"b", 1}, {"key-00", 6}, {"key-01", 6},
		{"\x00\xff", 2}, {"\x00", 1}, {"k\x00", 2}, {"\xff\xff\xff\xff\xff\xff\xff\xff\x01", 9},
	};
	for (int i = 0; i < FZ_KEYED_KEYS - 2; i++) {
		s->keys[i] = (const uint8_t *)ks[i].k;
		s->klen[i] = ks[i].n;
	}
	/* two long keys sharing a 2,499-byte prefix: blocks of their own */
	memset(keyed_long[0], 'L', sizeof keyed_long[0]);
	memset(keyed_long[1], 'L', sizeof keyed_long[1]);
	keyed_long[1][2499] = 'M';
	s->keys[FZ_KEYED_KEYS - 2] = keyed_long[0];
	s->klen[FZ_KEYED_KEYS - 2] = 2500;
	s->keys[FZ_KEYED_KEYS - 1] = keyed_long[1];
	s->klen[FZ_KEYED_KEYS - 1] = 2600;
}

const fz_keyed *fz_keyed_sample(void)
{
	fz_keyed *s = &keyed;
	size_t cap = SB_SEG_HDR, pos = SB_SEG_HDR;

	if (s->seg)
		return s;
	keyed_keys(s);
	for (unsigned i = 0; i < FZ_KEYED_RECORDS; i++) {
		int k = (int)((i * 7 + i / 5) % (FZ_KEYED_KEYS + 3));
		s->key[i] = k < FZ_KEYED_KEYS ? k : -1;
		s->flags[i] = s->key[i] >= 0 && i % 11 == 6 ? SB_REC_TOMBSTONE : 0;
		s->vlen[i] = s->flags[i] ? 0 : 6 + (i * 29) % 90;
		s->ts[i] = 1700000000000000000LL + (int64_t)i * 1000;
		s->val[i] = malloc(s->vlen[i] + 1);
		for (uint32_t j = 0; j < s->vlen[i]; j++)
			s->val[i][j] = (uint8_t)(j < 4 ? "val-"[j] : j == 4 ? 'A' + i % 26 : j == 5 ? 'a' + i / 26 : 'a' + (i + j) % 26);
		sb_record_in r = {.key = k >= 0 && k < FZ_KEYED_KEYS ? s->keys[k] : NULL,
				  .key_len = s->key[i] >= 0 ? (uint32_t)s->klen[k] : 0,
				  .value = s->val[i], .value_len = s->vlen[i], .flags = s->flags[i]};
		cap += sb_rec_size_in(&r);
	}
	s->seg = calloc(1, cap);
	sb_seg_hdr h = {.base_offset = FZ_SAMPLE_BASE, .base_stream = FZ_SAMPLE_STREAM};
	sb_seg_hdr_encode(s->seg, &h);
	for (unsigned i = 0; i < FZ_KEYED_RECORDS; i++) {
		int k = s->key[i];
		sb_record_in r = {.key = k >= 0 ? s->keys[k] : NULL, .key_len = k >= 0 ? (uint32_t)s->klen[k] : 0,
				  .value = s->val[i], .value_len = s->vlen[i], .flags = s->flags[i]};
		s->pos[i] = (uint32_t)pos;
		pos += sb_rec_encode(s->seg + pos, FZ_SAMPLE_BASE + i, s->ts[i], &r);
	}
	s->len = pos;
	return s;
}

int fz_keyed_latest_in(const fz_keyed *s, int k, unsigned from, unsigned to)
{
	int last = -1;

	for (unsigned i = from; i < to && i < FZ_KEYED_RECORDS; i++)
		if (s->key[i] == k)
			last = (int)i;
	return last;
}

int fz_keyed_latest(const fz_keyed *s, int k, unsigned n)
{
	return fz_keyed_latest_in(s, k, 0, n);
}

static int keyed_cmp(const fz_keyed *s, int a, int b)
{
	size_t m = s->klen[a] < s->klen[b] ? s->klen[a] : s->klen[b];
	int c = memcmp(s->keys[a], s->keys[b], m);
	return c ? c : (s->klen[a] > s->klen[b]) - (s->klen[a] < s->klen[b]);
}

uint8_t *fz_keyed_table(unsigned from, unsigned n, size_t *len)
{
	const fz_keyed *s = fz_keyed_sample();
	int order[FZ_KEYED_KEYS];
	char dir[PATH_MAX], name[64], path[PATH_MAX + 64];
	sb_kt_writer *w;
	uint8_t *b;

	for (int i = 0; i < FZ_KEYED_KEYS; i++)
		order[i] = i;
	for (int i = 1; i < FZ_KEYED_KEYS; i++) /* insertion sort by key */
		for (int j = i; j > 0 && keyed_cmp(s, order[j - 1], order[j]) > 0; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	snprintf(dir, sizeof dir, "%s/ktw", fz_scratch());
	fz_rmtree(dir);
	if (mkdir(dir, 0755))
		fz_fail("mkdir %s: %s", dir, strerror(errno));
	if (sb_kt_writer_new(sb_io_default(), dir, FZ_SAMPLE_BASE + from, FZ_SAMPLE_BASE + from + n - 1, FZ_KEYED_KEYS,
			     0, &w))
		fz_fail("sb_kt_writer_new");
	for (int i = 0; i < FZ_KEYED_KEYS; i++) {
		int r = fz_keyed_latest_in(s, order[i], from, from + n);
		if (r < 0)
			continue;
		sb_mt_val v = {.offset = FZ_SAMPLE_BASE + (uint64_t)r, .ts = s->ts[r], .size = s->vlen[r],
			       .flags = s->flags[r] ? SB_MT_TOMBSTONE : 0, .pos = s->pos[r]};
		if (sb_kt_writer_add(w, s->keys[order[i]], s->klen[order[i]], &v))
			fz_fail("sb_kt_writer_add");
	}
	if (sb_kt_writer_finish(w))
		fz_fail("sb_kt_writer_finish");
	sb_kt_name(name, FZ_SAMPLE_BASE + from, FZ_SAMPLE_BASE + from + n - 1);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	b = fz_read(path, len);
	if (!b)
		fz_fail("read %s", path);
	fz_rmtree(dir);
	return b;
}
