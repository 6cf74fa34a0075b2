/*
 * verify_compact.c - the verifier's checks about compaction and keys (see
 * verify_compact.h).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "verify_compact.h"

int sb_vc_absorbed(const char *path, uint64_t base, uint64_t prev_next)
{
	uint8_t hb[SB_SEG_HDR];
	struct stat st;
	sb_seg_hdr h;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && st.st_size == SB_SEG_HDR && pread(fd, hb, sizeof(hb), 0) == (ssize_t)sizeof(hb) &&
	    !sb_seg_hdr_decode(hb, &h))
		ok = h.base_offset == base && h.span && base + h.span <= prev_next;
	close(fd);
	return ok;
}

const char *sb_vc_bad_tombstone(const sb_rec_hdr *h, const uint8_t *rec)
{
	if (sb_rec_tombstone_valid(h) || sb_crc32c(0, rec + SB_REC_AT_SIZE, h->size - SB_REC_AT_SIZE) != h->crc)
		return NULL;
	if (!h->key_len)
		return h->value_len ? "no key, and a payload" : "no key";
	return "a payload";
}
