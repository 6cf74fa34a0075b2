/*
 * segwin.h - a window of pread bytes over a segment file that another
 * process may trim (internal to the store).
 *
 * A writer preallocates its active segment and trims the zeros past its
 * records with ftruncate when it seals it (a roll, a close). A mapping of
 * the bytes past the records is then a SIGBUS for whoever touches them:
 * readers that do not hold the store lock (read-only opens, verify) read
 * what they have not yet seen to be records through this window instead,
 * and map at most what they found to hold records (never trimmed).
 */
#ifndef SB_SEGWIN_H
#define SB_SEGWIN_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct sb_segwin sb_segwin;

/* A window over fd, a file of `size` bytes (its size at open). 0 or -ENOMEM. */
int sb_segwin_new(int fd, uint64_t size, sb_segwin **out);
void sb_segwin_free(sb_segwin *w);
/* The file's size: at most the one given, less once a read met its end
 * earlier (the file was trimmed since). */
uint64_t sb_segwin_size(const sb_segwin *w);
/*
 * Bytes [pos, pos + *n) of the file, *n = want unless the file ends first.
 * Valid until the next call. NULL on a read error (-errno in *n's stead:
 * sb_segwin_error()).
 */
const uint8_t *sb_segwin_at(sb_segwin *w, uint64_t pos, size_t want, size_t *n);
/* The first read error met (-errno), or 0. */
int sb_segwin_error(const sb_segwin *w);
/*
 * sb_rec_decode_v() of the record at pos (in a segment of format `version`),
 * with the bytes up to the end of the file available, reading only what the
 * record needs. *p (may be NULL) gets its bytes, *avail how many of them
 * there are.
 */
int sb_segwin_decode(sb_segwin *w, uint64_t pos, unsigned version, int check_crc, sb_rec_hdr *h,
		     const uint8_t **p, size_t *avail);
/* Are the bytes [pos, end of file) all zeros? Else *nz gets the first
 * nonzero one's position (may be NULL). */
int sb_segwin_zeros(sb_segwin *w, uint64_t pos, uint64_t *nz);

#endif
