/*
 * segwin.c - a pread window over a segment file (see segwin.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "format.h"
#include "segwin.h"

#define WIN_CHUNK (128u << 10)

struct sb_segwin {
	int fd;
	uint64_t size;       /* the file's size, as far as we know */
	uint64_t at;         /* file position of buf[0] */
	size_t len, cap;     /* bytes held, allocated */
	uint8_t *buf;
	int err;
};

int sb_segwin_new(int fd, uint64_t size, sb_segwin **out)
{
	sb_segwin *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->size = size;
	*out = w;
	return 0;
}

void sb_segwin_free(sb_segwin *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

uint64_t sb_segwin_size(const sb_segwin *w) { return w->size; }
int sb_segwin_error(const sb_segwin *w) { return w->err; }

const uint8_t *sb_segwin_at(sb_segwin *w, uint64_t pos, size_t want, size_t *n)
{
	if (pos >= w->size) {
		*n = 0;
		return w->buf ? w->buf : (const uint8_t *)"";
	}
	if (want > w->size - pos)
		want = (size_t)(w->size - pos);
	if (pos >= w->at && pos + want <= w->at + w->len) {
		*n = want;
		return w->buf + (pos - w->at);
	}
	size_t get = want > WIN_CHUNK ? want : WIN_CHUNK;
	if (get > w->size - pos)
		get = (size_t)(w->size - pos);
	if (get > w->cap) {
		uint8_t *b = realloc(w->buf, get);
		if (!b) {
			w->err = w->err ? w->err : -ENOMEM;
			return NULL;
		}
		w->buf = b;
		w->cap = get;
	}
	w->at = pos;
	w->len = 0;
	while (w->len < get) {
		ssize_t r = pread(w->fd, w->buf + w->len, get - w->len, (off_t)(pos + w->len));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			w->err = w->err ? w->err : -errno;
			w->len = 0;
			return NULL;
		}
		if (r == 0) {
			w->size = pos + w->len; /* trimmed since: it ends here now */
			break;
		}
		w->len += (size_t)r;
	}
	*n = want < w->len ? want : w->len;
	return w->buf;
}

int sb_segwin_decode(sb_segwin *w, uint64_t pos, unsigned version, int check_crc, sb_rec_hdr *h,
		     const uint8_t **p, size_t *avail)
{
	size_t n;
	const uint8_t *b = sb_segwin_at(w, pos, SB_REC_HDR, &n);
	int r;

	if (!b)
		return SB_REC_TORN;
	if (n == SB_REC_HDR)
		n = (size_t)(w->at + w->len - pos); /* all that is buffered from pos */
	r = sb_rec_decode_v(b, n, version, check_crc, h);
	if (r == SB_REC_TORN && n >= SB_REC_HDR && pos + n < w->size) {
		/* The header is whole: read the rest of the record. */
		b = sb_segwin_at(w, pos, sb_get32(b + SB_REC_AT_SIZE), &n);
		if (!b)
			return SB_REC_TORN;
		r = sb_rec_decode_v(b, n, version, check_crc, h);
	}
	if (p)
		*p = b;
	if (avail)
		*avail = n;
	return r;
}

int sb_segwin_zeros(sb_segwin *w, uint64_t pos, uint64_t *nz)
{
	while (pos < w->size) {
		size_t n;
		const uint8_t *b = sb_segwin_at(w, pos, WIN_CHUNK, &n);
		if (!b)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (b[i]) {
				if (nz)
					*nz = pos + i;
				return 0;
			}
		pos += n;
		if (!n)
			break;
	}
	return 1;
}
