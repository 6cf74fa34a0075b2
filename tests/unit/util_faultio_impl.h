/*
 * util_faultio_impl.h - the insides of util_faultio, shared by the table
 * (util_faultio.c) and the crash simulation (util_faultio_crash.c).
 */
#ifndef UTIL_FAULTIO_IMPL_H
#define UTIL_FAULTIO_IMPL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "util_faultio.h"

struct dop {
	int is_write;
	off_t off;        /* written range (writes) */
	size_t n;
	off_t old_size;   /* file size before, and right after */
	off_t post_size;
	off_t saved_off;  /* bytes this op overwrote or cut off */
	uint8_t *saved;
	size_t saved_n;
	uint64_t seq;     /* order among all recorded ops (fio.op_seq) */
};

struct ffile {
	dev_t dev;
	ino_t ino;
	int fd; /* ours, O_RDWR */
	struct dop *ops;
	size_t nops, cap;
	uint8_t *snap; /* snapshot mode: the content at the last sync */
	size_t snap_len;
	uint64_t snap_seq; /* op_seq when that content was read */
};

enum { NS_CREATE, NS_RENAME, NS_UNLINK, NS_MKDIR, NS_RMDIR };

struct nsop {
	int kind;
	char *a, *b;    /* path; rename: from, to */
	char *stash;    /* hard link of the unlinked / renamed-over file */
	dev_t d1, d2;   /* parent directories */
	ino_t i1, i2;
	int ok1, ok2;   /* parent synced since */
	uint64_t seq;   /* order among all recorded ops (fio.op_seq) */
};

struct rule {
	int active;
	fio_kind kind;
	unsigned left;
	int err;
	unsigned flags;
	int fired;
	char *match;
};

struct fio {
	sb_io io;
	pthread_mutex_t mu; /* guards everything below */
	struct ffile *files;
	size_t nfiles, capf;
	struct nsop *ns;
	size_t nns, capns;
	struct rule rules[16];
	unsigned calls[FIO_NKINDS];
	unsigned failed;
	int64_t budget;
	unsigned short_nth;
	size_t short_keep;
	int crash_kind;
	unsigned crash_left;
	int crashed;
	char *stash_dir;
	unsigned stash_seq;
	int fake_sync;
	unsigned sync_delay_us;
	unsigned slow_us[FIO_NKINDS];      /* fio_slow */
	char slow_match[FIO_NKINDS][64];
	unsigned slowed;
	pthread_cond_t slow_cv;            /* a FIO_HOLD setting changed */
	int snap_mode;
	uint64_t op_seq; /* ops recorded so far: an fdatasync covers those
			  * recorded before it began, not those made while it ran */
};

/* The whole content of fd (malloc'd, *len bytes), or NULL. */
uint8_t *fio__read_fd_all(int fd, size_t *len);
/* Forget every tracked file and namespace operation (mu held). */
void fio__reset_state(fio *f);

#endif
