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
