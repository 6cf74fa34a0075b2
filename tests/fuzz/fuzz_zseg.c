/*
 * fuzz_zseg - compressed segments (store/zseg.c, zbuild.c): the builder, the
 * header/table checks and the block parser.
 *
 * Input: byte 0 is the mode (bits below), bytes 1-2 a u16 block size (+64),
 * bytes 3-10 a u64 that places a mutation; then records, each a u8 (bit 0:
 * keyed, bit 1: tombstone, bit 2: headers), a u16 length and that many bytes
 * (key: its first quarter; headers: 1..4 of them, "h0".., their values cut
 * from the record's bytes, one of them empty). Those records make a plain segment, compressed with the mode's
 * codec; the mutation then changes the compressed file: one bit flipped, or
 * a run of the input's bytes written over it (M_RAW: the rest of the input
 * is the file, and with M_FIXCRC its header, table and stored-block CRCs are
 * recomputed so that the parser behind them is reached).
 *
 * Properties: no crash or sanitizer report; unmutated, every record reads
 * back equal (by offset and by every stream byte) and the file writes back
 * plain byte for byte as the plain segment it was built from; mutated, every
 * record served is the one built (bytes, key, time, flags, offset, stream
 * position, headers), the rest fail with SB_ECORRUPT: damage is never
 * served.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "util.h"
#include "zseg_impl.h"

enum {
	M_ZSTD = 1,     /* zstd, else lz4 */
	M_FLIP = 2,     /* flip one bit */
	M_OVER = 4,     /* overwrite up to 16 bytes with the input's */
	M_RAW = 8,      /* the rest of the input is the compressed file */
	M_FIXCRC = 16,  /* with M_RAW: recompute the CRCs in front of the parser */
};

#define MAX_RECS 4096

typedef struct orec {
	sb_rec_hdr h;
	const uint8_t *key, *val;
	uint64_t stream;
	size_t hpos;            /* its header block in oseg (h.hdrs_len bytes) */
} orec;

static const uint8_t *oseg; /* the plain segment the oracle's headers are in */

static void fix_crcs(uint8_t *f, size_t n)
{
	if (n < SB_ZSEG_HDR)
		return;
	uint64_t tp = sb_get64(f + 64);
	uint32_t nb = sb_get32(f + 72);
	if (tp <= n && (n - tp) / SB_ZSEG_ENTRY >= nb) {
		uint8_t *t = f + tp;
		for (uint32_t i = 0; i < nb; i++) {
			uint8_t *e = t + (size_t)i * SB_ZSEG_ENTRY;
			uint64_t pos = sb_get32(e + 8), len = sb_get32(e + 12);
			if (pos <= n && len <= n - pos)
				sb_put32(e + 24, sb_crc32c(0, f + pos, len));
		}
		sb_put32(f + 80, sb_crc32c(0, t, (size_t)nb * SB_ZSEG_ENTRY));
	}
	sb_put32(f + 92, sb_crc32c(0, f, 92));
}

/* Open the file and read everything; check against the oracle (n records,
 * NULL: none known). Returns how many records read. */
static size_t read_all(const char *path, uint64_t base, const orec *o, size_t n, int pristine)
{
	int fd = open(path, O_RDONLY);
	off_t size = lseek(fd, 0, SEEK_END);
	sb_zseg *z;
	size_t good = 0;

	FZ_CHECK(fd >= 0, "open");
	int rc = sb_zseg_open(sb_io_default(), fd, (uint64_t)size, base, NULL, &z);
	FZ_CHECK(!pristine || rc == 0, "a built file does not open: %d", rc);
	if (rc) {
		close(fd);
		return 0;
	}
	uint64_t next = sb_zseg_next(z), bs = sb_zseg_base_stream(z);
	FZ_CHECK(!o || next - base == n || !pristine, "record count");
	for (uint64_t off = base; off < next && off - base < MAX_RECS; off++) {
		sb_zpin pin;
		sb_zrec r;
		uint64_t bad;
		rc = sb_zseg_get(z, off, 0, &pin, &r, &bad);
		FZ_CHECK(rc == 0 || rc == SB_ECORRUPT, "get %llu: %d", (unsigned long long)off, rc);
		FZ_CHECK(rc == 0 || !pristine, "a pristine record fails");
		if (rc)
			continue;
		FZ_CHECK(r.offset == off && r.stream >= bs && r.stream + r.value_len <= r.block_stream_end,
			 "record %llu framing", (unsigned long long)off);
		FZ_CHECK(!r.hdrs_len || sb_hdrs_valid(r.hdrs, r.hdrs_len), "record %llu: a malformed header block served",
			 (unsigned long long)off);
		if (o && off - base < n) {
			const orec *w = &o[off - base];
			FZ_CHECK(r.value_len == w->h.value_len && r.key_len == w->h.key_len &&
				 r.timestamp_ns == w->h.timestamp_ns && r.flags == w->h.flags &&
				 r.stream == w->stream && !memcmp(r.value, w->val, r.value_len) &&
				 !memcmp(r.key, w->key, r.key_len) && r.hdrs_len == w->h.hdrs_len &&
				 (!r.hdrs_len || !memcmp(r.hdrs, oseg + w->hpos, r.hdrs_len)),
				 "record %llu served wrong", (unsigned long long)off);
		}
		/* by stream: each byte of it leads back to it */
		for (uint64_t p = r.stream; p < r.stream + r.value_len; p += 1 + r.value_len / 3) {
			sb_zpin p2;
			sb_zrec r2;
			if (sb_zseg_get(z, p, 1, &p2, &r2, &bad) == 0) {
				FZ_CHECK(r2.offset == off, "stream byte %llu: offset %llu, not %llu",
					 (unsigned long long)p, (unsigned long long)r2.offset, (unsigned long long)off);
				sb_zseg_unpin(z, &p2);
			}
		}
		sb_zseg_unpin(z, &pin);
		good++;
	}
	sb_zseg_free(z);
	close(fd);
	return good;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	uint8_t mode = fz_u8(&in);
	uint32_t block = 64u + fz_u16(&in);
	uint64_t where = fz_u64(&in);
	char path[4096], plain[4096];
	static orec o[MAX_RECS];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/z.seg", fz_scratch());
	snprintf(plain, sizeof(plain), "%s/p.seg", fz_scratch());
	if (mode & M_RAW) {
		size_t len;
		const uint8_t *p = fz_bytes(&in, 1 << 20, &len);
		uint8_t *f = malloc(len + 1);
		memcpy(f, p, len);
		if (mode & M_FIXCRC)
			fix_crcs(f, len);
		fz_write(path, f, len);
		free(f);
		read_all(path, len >= 16 ? sb_get64(data + 11 + 8) : 0, NULL, 0, 0);
		return 0;
	}
	/* The plain segment. */
	size_t cap = SB_SEG_HDR, len = SB_SEG_HDR;
	uint8_t *seg = malloc(cap);
	sb_seg_hdr sh = {.base_offset = 100, .base_stream = 7};
	sb_seg_hdr_encode(seg, &sh);
	uint64_t stream = sh.base_stream;
	while (in.n && n < MAX_RECS) {
		uint8_t bits = fz_u8(&in);
		size_t vl;
		const uint8_t *v = fz_bytes(&in, fz_u16(&in), &vl);
		/* a tombstone (bits & 2): a key and no payload */
		size_t kl = bits & 2 ? (vl < 1024 ? vl : 1024) : bits & 1 ? vl / 4 : 0;
		int tomb = (bits & 2) && kl;
		sb_header hd[4];
		static const char *hn[4] = {"h0", "h1", "h2", "h3"};
		uint32_t nh = bits & 4 ? 1u + (bits >> 3) % 4u : 0;
		for (uint32_t k = 0; k < nh; k++) /* slices of the bytes; h1 empty */
			hd[k] = (sb_header){.name = hn[k], .name_len = 2, .value = v + vl * k / 4,
					    .value_len = k == 1 ? 0 : (uint32_t)(vl / 4)};
		sb_record_in r = {.key = v, .key_len = (uint32_t)kl, .value = v + kl,
				  .value_len = bits & 2 ? 0 : (uint32_t)(vl - kl), .flags = tomb ? SB_REC_TOMBSTONE : 0,
				  .headers = hd, .n_headers = nh};
		size_t need = sb_rec_size_in(&r);
		seg = realloc(seg, len + need);
		sb_rec_encode(seg + len, sh.base_offset + n, (int64_t)(n * 1000003u) - 5000, &r);
		o[n].h.hdrs_len = (uint32_t)sb_hdrs_size(&r);
		o[n].hpos = len + sb_rec_size(r.key_len, r.value_len);
		o[n].h.value_len = r.value_len;
		o[n].h.key_len = (uint16_t)kl;
		o[n].h.timestamp_ns = (int64_t)(n * 1000003u) - 5000;
		o[n].h.flags = (uint16_t)(r.flags | (nh ? SB_REC_HEADERS : 0));
		o[n].key = v;
		o[n].val = v + kl;
		o[n].stream = stream;
		stream += r.value_len;
		len += need;
		n++;
	}
	oseg = seg;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint64_t stored = 0;
	char why[128];
	FZ_CHECK(fd >= 0, "create");
	int rc = sb_zseg_build(sb_io_default(), fd, seg, len, mode & M_ZSTD ? SB_CODEC_ZSTD : SB_CODEC_LZ4, block,
			       &stored, why, sizeof(why));
	close(fd);
	FZ_CHECK(rc == 0, "build: %d", rc);
	int mutated = (mode & (M_FLIP | M_OVER)) && stored > 0;
	if (!mutated) {
		FZ_CHECK(read_all(path, sh.base_offset, o, n, 1) == n, "not every record reads");
		/* write back plain: the same bytes */
		int zfd = open(path, O_RDONLY), pfd = open(plain, O_RDWR | O_CREAT | O_TRUNC, 0644);
		sb_zseg *z;
		uint64_t plen = 0;
		FZ_CHECK(sb_zseg_open(sb_io_default(), zfd, stored, sh.base_offset, NULL, &z) == 0, "reopen");
		FZ_CHECK(sb_zseg_write_plain(z, sb_zseg_blocks(z), sb_io_default(), pfd, &plen, NULL) == 0,
			 "write plain");
		sb_zseg_free(z);
		close(zfd);
		close(pfd);
		size_t got_n;
		uint8_t *got = fz_read(plain, &got_n);
		FZ_CHECK(got && got_n == len && plen == len && !memcmp(got, seg, len), "plain again differs");
		free(got);
	} else {
		size_t fn;
		uint8_t *f = fz_read(path, &fn);
		uint64_t at = where % fn;
		if (mode & M_FLIP) {
			f[at] ^= (uint8_t)(1u << (where >> 61));
		} else {
			for (size_t k = 0; k < 16 && at + k < fn; k++)
				f[at + k] = data[(where >> 8) % size] + (uint8_t)k;
		}
		fz_write(path, f, fn);
		free(f);
		read_all(path, sh.base_offset, o, n, 0);
	}
	free(seg);
	return 0;
}
