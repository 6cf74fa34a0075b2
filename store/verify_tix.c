/*
 * verify_tix.c - streambus verify's check of time index files (see
 * verify_tix.h; the format is in format.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "format.h"
#include "verify_tix.h"

void sb_vtix_note(sb_vtix_report_fn report, void *arg, int io, const char *path, uint64_t pos, const char *fmt,
		  ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	report(arg, io, path, pos, msg);
}

/* A note about this time index file. */
#define say(t, io, pos, ...) sb_vtix_note((t)->report, (t)->arg, (io), (t)->path, (pos), __VA_ARGS__)

static uint64_t entry_pos(uint32_t i)
{
	return SB_TIX_HDR + (uint64_t)i * SB_TIX_ENTRY;
}

static int64_t ets(const sb_vtix *t, uint32_t i)
{
	return (int64_t)sb_get64(t->e + (size_t)i * SB_TIX_ENTRY + SB_TE_AT_TS);
}

static uint32_t erel(const sb_vtix *t, uint32_t i)
{
	return sb_get32(t->e + (size_t)i * SB_TIX_ENTRY + SB_TE_AT_REL);
}

/* Read the whole file at fd (size bytes) into *buf: 0 or -errno. */
static int read_whole(int fd, uint64_t size, uint8_t **buf)
{
	uint8_t *b = malloc(size ? size : 1);
	size_t got = 0;

	if (!b)
		return -ENOMEM;
	while (got < size) {
		ssize_t r = pread(fd, b + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(b);
			return r < 0 ? -errno : -ENODATA;
		}
		got += (size_t)r;
	}
	*buf = b;
	return 0;
}

/* The file on its own: header, CRCs, size, order. 1 if it holds. */
static int check_file(sb_vtix *t, const uint8_t *b, uint64_t size)
{
	if (size < SB_TIX_HDR) {
		say(t, 0, 0, "time index file too short for its header (%llu bytes)", (unsigned long long)size);
		return 0;
	}
	if (sb_get32(b + SB_FH_MAGIC) != SB_TIX_MAGIC || sb_get16(b + SB_FH_SIZE) != SB_TIX_HDR ||
	    sb_crc32c(0, b, SB_TIX_AT_CRC) != sb_get32(b + SB_TIX_AT_CRC)) {
		say(t, 0, 0, "bad time index header (magic, size or CRC)");
		return 0;
	}
	if (sb_get16(b + SB_FH_VERSION) != SB_FORMAT_VERSION) {
		say(t, 0, SB_FH_VERSION, "unknown time index format version %u", (unsigned)sb_get16(b + SB_FH_VERSION));
		return 0;
	}
	t->n = sb_get32(b + SB_TIX_AT_COUNT);
	t->open = sb_get32(b + SB_TIX_AT_OPEN);
	t->seg_len = sb_get32(b + SB_TIX_AT_SEG_LEN);
	t->max_ts = (int64_t)sb_get64(b + SB_TIX_AT_MAX_TS);
	if (sb_get64(b + SB_TIX_AT_BASE) != t->base) {
		say(t, 0, SB_TIX_AT_BASE, "time index header says base offset %llu, its segment starts at %llu",
		    (unsigned long long)sb_get64(b + SB_TIX_AT_BASE), (unsigned long long)t->base);
		return 0;
	}
	if (size != entry_pos(t->n)) {
		say(t, 0, SB_TIX_AT_COUNT, "time index header counts %u entries but the file holds %llu bytes",
		    t->n, (unsigned long long)size);
		return 0;
	}
	if (sb_crc32c(0, b + SB_TIX_HDR, size - SB_TIX_HDR) != sb_get32(b + SB_TIX_AT_ECRC)) {
		say(t, 0, SB_TIX_AT_ECRC, "time index entries fail their CRC");
		return 0;
	}
	t->e = (uint8_t *)b + SB_TIX_HDR;
	for (uint32_t i = 0; i < t->n; i++) {
		if ((i && (ets(t, i) <= ets(t, i - 1) || erel(t, i) <= erel(t, i - 1))) || erel(t, i) >= t->open ||
		    ets(t, i) > t->max_ts) {
			say(t, 0, entry_pos(i), "time index entry %u is out of order (timestamps and offsets must "
			    "increase, below the open interval and the largest timestamp)", i);
			return 0;
		}
	}
	return 1;
}

void sb_vtix_load(sb_vtix *t, const char *dir, uint64_t base, int required, sb_vtix_report_fn report, void *arg)
{
	char name[32];
	struct stat st;
	uint8_t *b = NULL;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	t->report = report;
	t->arg = arg;
	t->base = base;
	t->run = INT64_MIN;
	sb_seg_name(name, base, SB_TIX_SUFFIX);
	snprintf(t->path, sizeof(t->path), "%s/%s", dir, name);
	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			say(t, 1, UINT64_MAX, "cannot open: %s", strerror(errno));
		else if (required)
			say(t, 0, UINT64_MAX, "missing time index (rebuildable from its segment)");
		return;
	}
	rc = fstat(fd, &st) < 0 ? -errno : read_whole(fd, (uint64_t)st.st_size, &b);
	if (rc) {
		say(t, 1, UINT64_MAX, "cannot read: %s", strerror(-rc));
		close(fd);
		return;
	}
	close(fd);
	/* t->e points into b (past the header): freed at the end */
	if (check_file(t, b, (uint64_t)st.st_size))
		t->ok = 1;
	else
		free(b);
}

void sb_vtix_record(sb_vtix *t, uint64_t rel, int64_t ts)
{
	if (t->ok && !t->bad && t->j < t->n) {
		/* boundary j: entry j + 1's interval, or the open one after the last */
		uint32_t at = t->j + 1 < t->n ? erel(t, t->j + 1) : t->open;
		if (rel == at) {
			if (t->run != ets(t, t->j)) { /* said at the end, if the records hold */
				t->bad = 1;
				t->bad_entry = t->j;
				t->bad_rel = rel;
				t->bad_run = t->run;
			}
			t->j++;
		}
	}
	if (ts > t->run)
		t->run = ts;
	if (!t->nrec++)
		t->first_rel = rel;
	t->last_rel = rel;
}

void sb_vtix_end(sb_vtix *t, uint64_t seg_len, int records_ok)
{
	if (!t->ok)
		return;
	if (!records_ok)
		goto out_free;
	if (t->seg_len != seg_len) {
		say(t, 0, SB_TIX_AT_SEG_LEN, "time index covers %u bytes of the segment, its records end at byte %llu "
		    "(stale time index)", t->seg_len, (unsigned long long)seg_len);
	} else if (t->bad) {
		say(t, 0, entry_pos(t->bad_entry), "time index entry %u says the running maximum timestamp is %lld "
		    "before offset %llu, the records' is %lld", t->bad_entry, (long long)ets(t, t->bad_entry),
		    (unsigned long long)(t->base + t->bad_rel), (long long)t->bad_run);
	} else if (!t->nrec) {
		if (t->n || t->open || t->max_ts != INT64_MIN)
			say(t, 0, SB_TIX_AT_COUNT, "time index of a segment without records has entries or a timestamp");
	} else if (t->n ? erel(t, 0) != t->first_rel : t->open != t->first_rel) {
		say(t, 0, SB_TIX_HDR, "time index has no entry for the segment's first record");
	} else if (t->j < t->n || t->open > t->last_rel) {
		say(t, 0, t->j + 1 < t->n ? entry_pos(t->j + 1) : SB_TIX_AT_OPEN,
		    "time index names offset %llu, not a record of the segment (the last is %llu)",
		    (unsigned long long)(t->base + (t->j + 1 < t->n ? erel(t, t->j + 1) : t->open)),
		    (unsigned long long)(t->base + t->last_rel));
	} else if (t->run != t->max_ts) {
		say(t, 0, SB_TIX_AT_MAX_TS, "time index says the largest timestamp is %lld, the records' is %lld",
		    (long long)t->max_ts, (long long)t->run);
	}
out_free:
	free(t->e - SB_TIX_HDR);
	t->e = NULL;
	t->ok = 0;
}
