/*
 * keyidx_impl.h - the inside of a topic's key index (keyidx.h), shared by
 * keyidx.c (open with recovery, close), keyidx_turn.c (indexing, the turns
 * of the flusher and the indexer), keyidx_read.c (lookups, listings) and
 * keyidx_write.c (table writes: flushes and merges). Nothing else
 * includes it.
 */
#ifndef SB_KEYIDX_IMPL_H
#define SB_KEYIDX_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keyidx.h"
#include "keymerge.h"
#include "keyrun.h"
#include "keytable.h"

/* The active runs the indexer fills, and the flusher past a freeze, up to
 * this (they hold the keys appended while a table is written); the keys
 * past it wait in the log, up to as much again before the appender waits
 * for the flusher (sb_kx_note_end). */
#define INDEXER_CAP(x) (4 * (uint64_t)(x)->p.memtable_bytes)
#define RUNS_MAX 48   /* sorted runs a side; merged before there are more */

struct sb_kx {
	sb_kx_params p;
	char *dir;
	char *topic;              /* heap (thousands of topics) */
	pthread_rwlock_t lock;
	sb_kp *tail;              /* keyed records read, not yet in a run [idx_mu
				   * puts (or the replay); released under idx_mu
				   * and lock] */
	sb_kr_pool *pool;         /* the runs' memory, reused (keyrun.h) */
	/* The appender's fields, padded apart from the indexer's and the
	 * rest (no false sharing with the flusher's stores). */
	char pad_a[64];
	_Atomic uint64_t noted_end; /* [appender] every record below is in the log */
	_Atomic uint64_t noted_bytes; /* [appender] record bytes noted since open */
	_Atomic uint64_t noted_kbytes;/* [appender] SB_KX_KEY_BYTES noted since open */
	_Atomic uint64_t last_keyed;  /* [appender] the last keyed record noted is
				       * below it */
	char pad_b[64];
	_Atomic uint64_t walk_end; /* [idx_mu] every keyed record below is in
				       * the tail or the runs */
	_Atomic uint64_t kb_mark;     /* [idx_mu] noted_kbytes all of whose
				       * records are below walk_end */
	char pad_c[64];
	uint64_t replay_from; /* where the replay at open started */
	uint64_t idx_seen;    /* [the indexer] noted_kbytes at its last look */
	uint64_t maint_kb;    /* [maint_mu] noted_kbytes when maintain last began */
	long long maint_ns;   /* [maint_mu] and when (CLOCK_MONOTONIC) */
	uint64_t maint_app;   /* [maint_mu] and app_sorts + app_writes then */
	int busy;             /* [maint_mu] keys came fast since then, or
			       * closing (busy()) */
	pthread_mutex_t idx_mu;   /* one indexer (tail -> runs) at a time */
	sb_kr *act[RUNS_MAX];     /* [lock; changed under idx_mu] runs, newest first */
	size_t nact;
	uint64_t act_from;        /* [lock; idx_mu] first offset of act's range */
	uint64_t idx_end;         /* [lock; idx_mu] first offset not in act: the tail's */
	_Atomic uint64_t act_bytes;   /* [idx_mu] memory of act */
	_Atomic uint64_t act_mark;    /* [idx_mu] noted_bytes at act_from */
	uint64_t idx_bytes;       /* [idx_mu] noted_bytes at idx_end */
	sb_kr *imm[RUNS_MAX];     /* [lock] frozen runs, written out by maintain */
	size_t nimm;
	int frozen;               /* [lock] imm is waiting to be written */
	uint64_t imm_from, imm_to;/* [lock] its offsets */
	sb_kt **t;                /* [lock] newest first; tile [.., covered) */
	size_t nt, tcap;          /* [lock] */
	uint64_t covered;         /* [lock] first offset no table covers */
	pthread_mutex_t maint_mu; /* one flush or merge at a time */
	void (*wake)(void *arg);  /* the flusher's wake-up (sb_kx_set_wake) */
	void *wake_arg;
	_Atomic int woken;        /* wake called since the last index_tail */
	_Atomic int stop_merges;  /* the store is closing: a merge in progress
				   * is abandoned (the next open's flusher
				   * merges what is due) */
	_Atomic int lazy_new;     /* a table was published lazily since the
				   * last sb_kx_sync_tables began */
	_Atomic uint64_t durable_to; /* every lazily published table below
				      * it is synced (sb_kx_sync_tables) */
	_Atomic uint64_t app_sorts, app_writes; /* [appender] times it indexed
						 * the tail / wrote runs itself
						 * for a lagging flusher */
};

/* The tail is indexed in batches of this many bytes (the flusher is woken
 * when it is that long): a batch, its sort and its run fit in a core's
 * cache. Runs of a batch's size are kept apart in act (the table write
 * merges them); smaller ones (a reader catching up) are merged with the
 * next. */
static inline uint64_t sb_kx_batch_bytes(const sb_kx *x)
{
	return x->p.memtable_bytes / 8;
}

/* Room for n tables in x->t. 0 or -ENOMEM. [maint_mu or the open] */
int sb_kx_tables_reserve(sb_kx *x, size_t n);
/* Say a message (fmt with a and b) through params.report (keyidx.c). */
void sb_kx_report(sb_kx *x, const char *fmt, const char *a, const char *b);

/* keyidx_turn.c. Who calls sb_kx_maintain_as(): the flusher's turn, the
 * appender stepping in (behind: busy), the close (busy), compaction's
 * cover. */
enum sb_kx_turn { TURN_FLUSHER, TURN_APPENDER, TURN_CLOSE, TURN_COVER };
/* Index the tail; past the limits, freeze the runs and write them as a
 * table; merge tables; as `who` (the close's turn: keyidx.c). With `all`,
 * freeze whatever was indexed. 0 or -errno (reported). Takes maint_mu. */
int sb_kx_maintain_as(sb_kx *x, int all, enum sb_kx_turn who);
/* Index every keyed record noted so far (a reader catching up: read your
 * writes). 0 or -errno. Takes idx_mu. */
int sb_kx_catch_up(sb_kx *x);

/* keyidx_write.c. [maint_mu] */
/* Write the frozen runs (with the tables the carry takes in, unless
 * `alone`) as the newest table, if there are frozen runs. 0 or -errno
 * (the runs stay frozen). */
int sb_kx_flush_imm(sb_kx *x, int alone);
/* In a merge (keyidx_write.c, every 256 entries): when the runs are due
 * (key_memtable_bytes of them), freeze them and write them as a table of
 * their own, the newest, now. 0 or -errno. [maint_mu] */
int sb_kx_write_runs_in_merge(sb_kx *x);
/* A group of tables to merge: 1 and *at, *k, or 0 (none, or busy). */
int sb_kx_merge_due(sb_kx *x, size_t *at, size_t *k);
/* Merge tables t[at, at + k) into one in their place. 0 or -errno. */
int sb_kx_merge_at(sb_kx *x, size_t at, size_t k);

#endif
