/*
 * crc32c.c - CRC32C (Castagnoli, reflected polynomial 0x82F63B78), with the
 * SSE4.2 crc32 instruction where the CPU has it and slicing-by-8 otherwise.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"

#define CRC_POLY 0x82F63B78u
/* Runs of 3 * CRC_LANE bytes take three independent crc32 chains (below). */
#define CRC_LANE 4096

static uint32_t crc_table[8][256];
static int crc_hw;
static uint32_t crc_x1, crc_x2; /* x^(8 * CRC_LANE), x^(16 * CRC_LANE) mod P */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* a * b modulo the polynomial, both reflected (x^0 is bit 31). */
static uint32_t crc_mulmod(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	for (; m; m >>= 1) {
		if (a & m)
			p ^= b;
		b = (b & 1) ? (b >> 1) ^ CRC_POLY : b >> 1;
	}
	return p;
}

/* x^(8 * n) modulo the polynomial. */
static uint32_t crc_xpow8n(uint64_t n)
{
	uint32_t r = 1u << 31, sq = 1u << 23; /* x^0; x^8 */

	for (; n; n >>= 1) {
		if (n & 1)
			r = crc_mulmod(r, sq);
		sq = crc_mulmod(sq, sq);
	}
	return r;
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
	crc_x1 = crc_xpow8n(CRC_LANE);
	crc_x2 = crc_xpow8n(2 * CRC_LANE);
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		v ^= crc;
		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw_run(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;
	/*
	 * The crc32 instruction takes 3 cycles but starts one a cycle: three
	 * lanes of CRC_LANE bytes run as three chains (c, the first lane's,
	 * continued; the others from 0), joined by linearity: the state after
	 * A|B|C is S(A) x^(16 L) + S0(B) x^(8 L) + S0(C) mod P.
	 */
	while (n >= 3 * CRC_LANE) {
		uint64_t b = 0, d = 0;
		for (size_t i = 0; i < CRC_LANE; i += 8) {
			uint64_t v0, v1, v2;
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + CRC_LANE + i, 8);
			memcpy(&v2, p + 2 * CRC_LANE + i, 8);
			c = __builtin_ia32_crc32di(c, v0);
			b = __builtin_ia32_crc32di(b, v1);
			d = __builtin_ia32_crc32di(d, v2);
		}
		c = crc_mulmod(crc_x2, (uint32_t)c) ^ crc_mulmod(crc_x1, (uint32_t)b) ^ (uint32_t)d;
		p += 3 * CRC_LANE;
		n -= 3 * CRC_LANE;
	}
	/* One dependency chain, 8 bytes a step (about 8 GB/s at 3 GHz). */
	while (n >= 32) {
		uint64_t a, b, d, e;
		memcpy(&a, p, 8);
		memcpy(&b, p + 8, 8);
		memcpy(&d, p + 16, 8);
		memcpy(&e, p + 24, 8);
		c = __builtin_ia32_crc32di(c, a);
		c = __builtin_ia32_crc32di(c, b);
		c = __builtin_ia32_crc32di(c, d);
		c = __builtin_ia32_crc32di(c, e);
		p += 32;
		n -= 32;
	}
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

uint32_t sb_crc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_hw_run(crc, buf, n);
#endif
	return ~crc_sw(crc, buf, n);
}

/* ---- copy and check records --------------------------------------------- */

/* One record: the CRC over the 28 header bytes, the key, the payload
 * before the part served, that part as copied, the payload after it. */
static int copy_check_sw(const sb_crc_copy *r)
{
	uint32_t c = sb_crc32c(0, r->hdr, SB_REC_HDR - SB_REC_AT_SIZE);

	c = sb_crc32c(c, r->key, r->key_len);
	c = sb_crc32c(c, r->pre, r->pre_len);
	if (r->len)
		memcpy(r->dst, r->src, r->len);
	c = sb_crc32c(c, r->dst, r->len);
	c = sb_crc32c(c, r->post, r->post_len);
	return c == r->crc;
}

#if defined(__x86_64__)
#define CRC_HW __attribute__((target("sse4.2")))

/* Copy n bytes src -> dst, continuing the (uninverted) crc c over the
 * values as they are stored. */
CRC_HW static uint64_t copy_crc_hw(uint64_t c, uint8_t *dst, const uint8_t *src, size_t n)
{
	uint64_t v;

	for (; n >= 8; n -= 8, src += 8, dst += 8) {
		memcpy(&v, src, 8);
		memcpy(dst, &v, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c, w;
	uint16_t h;
	if (n & 4) {
		memcpy(&w, src, 4);
		memcpy(dst, &w, 4);
		c32 = __builtin_ia32_crc32si(c32, w);
		src += 4;
		dst += 4;
	}
	if (n & 2) {
		memcpy(&h, src, 2);
		memcpy(dst, &h, 2);
		c32 = __builtin_ia32_crc32hi(c32, h);
		src += 2;
		dst += 2;
	}
	if (n & 1) {
		*dst = *src;
		c32 = __builtin_ia32_crc32qi(c32, *src);
	}
	return c32;
}

/* The 28 header bytes [4, 32): three 8-byte steps and one 4-byte step. */
CRC_HW static inline uint64_t hdr_crc_hw(const uint8_t *h)
{
	uint64_t a, b, d;
	uint32_t e;

	memcpy(&a, h, 8);
	memcpy(&b, h + 8, 8);
	memcpy(&d, h + 16, 8);
	memcpy(&e, h + 24, 4);
	uint64_t c = __builtin_ia32_crc32di(0xffffffffu, a);
	c = __builtin_ia32_crc32di(c, b);
	c = __builtin_ia32_crc32di(c, d);
	return __builtin_ia32_crc32si((uint32_t)c, e);
}

CRC_HW static int copy_check_hw(const sb_crc_copy *r)
{
	uint64_t c = hdr_crc_hw(r->hdr);

	c = crc_hw_run((uint32_t)c, r->key, r->key_len);
	c = crc_hw_run((uint32_t)c, r->pre, r->pre_len);
	c = copy_crc_hw(c, r->dst, r->src, r->len);
	c = crc_hw_run((uint32_t)c, r->post, r->post_len);
	return ~(uint32_t)c == r->crc;
}

/*
 * Three whole records with no key at once: the crc32 instruction takes 3 cycles
 * but starts one a cycle, so three independent chains run at the speed of
 * one (records of ~100 bytes are far too short to split one CRC).
 */
CRC_HW static unsigned copy_check3_hw(const sb_crc_copy *r)
{
	uint64_t c0 = hdr_crc_hw(r[0].hdr), c1 = hdr_crc_hw(r[1].hdr), c2 = hdr_crc_hw(r[2].hdr);
	const uint8_t *s0 = r[0].src, *s1 = r[1].src, *s2 = r[2].src;
	uint8_t *d0 = r[0].dst, *d1 = r[1].dst, *d2 = r[2].dst;
	size_t m = r[0].len < r[1].len ? r[0].len : r[1].len;

	if (r[2].len < m)
		m = r[2].len;
	m &= ~(size_t)7;
	for (size_t i = 0; i < m; i += 8) {
		uint64_t v0, v1, v2;
		memcpy(&v0, s0 + i, 8);
		memcpy(&v1, s1 + i, 8);
		memcpy(&v2, s2 + i, 8);
		memcpy(d0 + i, &v0, 8);
		memcpy(d1 + i, &v1, 8);
		memcpy(d2 + i, &v2, 8);
		c0 = __builtin_ia32_crc32di(c0, v0);
		c1 = __builtin_ia32_crc32di(c1, v1);
		c2 = __builtin_ia32_crc32di(c2, v2);
	}
	c0 = copy_crc_hw(c0, d0 + m, s0 + m, r[0].len - m);
	c1 = copy_crc_hw(c1, d1 + m, s1 + m, r[1].len - m);
	c2 = copy_crc_hw(c2, d2 + m, s2 + m, r[2].len - m);
	return (~(uint32_t)c0 == r[0].crc) | (~(uint32_t)c1 == r[1].crc) << 1 | (~(uint32_t)c2 == r[2].crc) << 2;
}
#endif

static int plain(const sb_crc_copy *r)
{
	return !(r->key_len | r->pre_len | r->post_len);
}

size_t sb_crc32c_copy_check(const sb_crc_copy *r, size_t n)
{
	size_t i = 0;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw) {
		while (i < n) {
			if (i + 3 <= n && plain(&r[i]) && plain(&r[i + 1]) && plain(&r[i + 2])) {
				unsigned ok = copy_check3_hw(r + i);
				if (ok != 7)
					return i + (size_t)__builtin_ctz(~ok);
				i += 3;
			} else {
				if (!copy_check_hw(&r[i]))
					return i;
				i++;
			}
		}
		return n;
	}
#endif
	for (; i < n; i++)
		if (!copy_check_sw(&r[i]))
			return i;
	return n;
}
