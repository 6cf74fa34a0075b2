/*
 * kafka_part.h - the Kafka backend's own structures, shared by
 * backend_kafka.c (the interface, the refresher), kafka_topics.c (the
 * topic table),
 * kafka_stream.c (records through the cache, the stream index) and
 * kafka_route.c (topics of several partitions). Only those include it
 * (and the unit tests). Lock order: kbackend.tlock, kpart.xlock, kpart.lock, the
 * cache's lock; kafka_keys.c's kkeys.lock (never with xlock) before
 * kpart.lock.
 */
#ifndef SBFS_KAFKA_PART_H
#define SBFS_KAFKA_PART_H

#include <pthread.h>
#include <stdint.h>

#include "kafka.h"
#include "kafka_cache.h"

enum { IX_STRIDE = 64 * 1024, REFRESH_MS = 300, REFRESH_WAIT_MS = 1000, LIST_MIN_MS = 1000 };
/* kpart.gaps: does ls skip offsets without a record (fetching the
 * partition) or list every offset from the watermarks; not known yet (the
 * topic's cleanup.policy asked for at most CONFIG_WAIT_MS; when the
 * cluster did not answer, no topic's is asked before CONFIG_RETRY_MS). */
enum { KG_UNKNOWN, KG_LIST, KG_SKIP };
enum { CONFIG_WAIT_MS = 5000, CONFIG_RETRY_MS = 60000 };

typedef struct ixe {
	int64_t off;
	uint64_t pos;
	int64_t maxts;          /* the running maximum of the times of the
				 * records indexed before off (ms) */
} ixe;

typedef struct kbackend kbackend;

typedef struct kpart {
	kbackend *b;
	char *name;             /* the topic's; a partition of a topic of
				 * several: "TOPIC/N" */
	kc_part *cp;            /* NULL for a topic of several partitions */
	uint32_t nparts;        /* a topic of several partitions: its parts */
	struct kpart **parts;   /* (each also in kbackend.topics) */
	struct kpart *group;    /* a partition of a topic of several: the
				 * topic's kpart (which keeps `gaps`) */
	pthread_mutex_t xlock;  /* one indexer at a time (held across fetches) */
	pthread_mutex_t lock;   /* guards everything below */
	int removed;
	int active;             /* asked about: the refresher follows it */
	int wm_ok;              /* lo, hi came from the cluster once */
	int64_t lo, hi;         /* watermarks, last known */
	int64_t seen_ms;        /* when hi was last seen to grow */
	int ix_init;
	int ix_done;            /* indexed up to hi once */
	int64_t ix_next;        /* records below are indexed */
	uint64_t ix_end;        /* position of ix_next */
	ixe *ix;                /* entries, increasing */
	size_t nix, capix;
	int64_t start_off;      /* start_pos is the position of start_off */
	uint64_t start_pos;
	int64_t mtime_ms;       /* newest indexed record's time (the running
				 * maximum of the indexed records' times) */
	int64_t hint_off;       /* where the last stream read ended */
	uint64_t hint_pos;
	int64_t none_from;      /* no record in [none_from, none_hi): a fetch
				 * from none_from found none below the high
				 * watermark when it was none_hi (trusted
				 * while hi is none_hi: kpart_next_present) */
	int64_t none_hi;
	int gaps;               /* ls_gaps auto: KG_* (kpart_skips_gaps); a
				 * topic of several partitions: for all */
	int gaps_said;          /* the log said it could not tell */
	struct kkeys *keys;     /* .keys/: made at first use (kafka_keys.c) */
} kpart;

struct kbackend {
	sbfs_backend base;
	kc *c;
	kcache *cache;
	sbfs_kafka_config cfg;  /* scalars only (props are the client's) */
	char *source;           /* "kafka:" and the bootstrap servers (the fsname) */
	pthread_mutex_t tlock;  /* guards topics, ntopics, listed_ms */
	kpart **topics;
	size_t ntopics;
	int64_t listed_ms;
	_Atomic unsigned next_part; /* keyless appends to a topic of several
				     * partitions: one partition each, in turn */
	_Atomic int64_t gaps_retry_ms; /* no topic's cleanup.policy asked before
				    * (the cluster did not answer one:
				    * kpart_skips_gaps) */
	_Atomic size_t keys_used;   /* bytes of every partition's key map
				     * (kafka_keys.c), at most cfg.keys_bytes */
	pthread_t refresher;
	pthread_mutex_t slock;  /* guards stop */
	pthread_cond_t scond;
	int stop;
};


typedef struct find_ctx {
	int64_t off;
	const kchunk *ch;
	kcrec rec;
	int found;
	void *buf;              /* copy_cb: the value's bytes from `from` */
	uint64_t from;
	size_t len, n;
	int key;                /* copy the key instead */
	/* or: hfn for each of its headers, in order, until it returns
	 * nonzero (kept in hrc); the bytes are valid during the call only */
	int (*hfn)(void *harg, const char *name, size_t name_len, const void *value,
		   size_t value_len);
	void *harg;
	int hrc;
} find_ctx;

/* kafka_topics.c: the topic table. */
typedef struct kseen {
	char **names;           /* in name order */
	int *parts;             /* (internal) */
	size_t n;
} kseen;
int64_t ktab_now_ms(void);
/* The live kpart named `name` (tlock held), or NULL. */
kpart *ktab_find(kbackend *b, const char *name);
/* Ask the cluster for its topics and add the new ones to the table; *out
 * (may be NULL) gets their names (ktab_seen_free). */
int ktab_refresh(kbackend *b, kseen *out);
void ktab_seen_free(kseen *s);

/* kafka_stream.c. All return 0 or -errno. */
/* Ask the cluster for the watermarks (wait_ms: 0 = the client's timeout). */
int kpart_update_wm_in(kpart *p, int wait_ms);
int kpart_update_wm(kpart *p);
/* The watermarks, asked once; marks the partition followed by the refresher. */
int kpart_known(kpart *p);
/* fn for each record with an offset in [from, to), in order (fetched
 * through the cache); fn returns 0 to go on, 1 to stop, or an error. */
typedef int (*kpart_rec_fn)(void *arg, const kchunk *ch, const kcrec *r);
int kpart_each(kpart *p, int64_t from, int64_t to, kpart_rec_fn fn, void *arg);
/* The record at off into x (its bytes as x asks); -ENOENT if none. */
int kpart_record(kpart *p, int64_t off, find_ctx *x);
/* One more record at the index's end (lock held). */
int kpart_ix_note(kpart *p, int64_t off, uint32_t len, int64_t ts_ms);
/* Index what is new and move start_pos to the low watermark (xlock held). */
int kpart_catch_up(kpart *p);
/* The stream position of off, lo <= off <= ix_next (xlock held). */
int kpart_pos_of(kpart *p, int64_t off, uint64_t *out);
/* .since/TIME from the index (xlock held, indexed): the first offset at or
 * after the low watermark whose record's time is >= ts_ms, or -ENOENT when
 * no indexed record reaches it. */
int kpart_seek_indexed(kpart *p, int64_t ts_ms, int64_t *off);
/* The first offset >= off (and >= lo) that holds a record, below hi;
 * -ENOENT if none (backend.h next_present). */
int kpart_next_present(kpart *p, int64_t off, int64_t *found);
/* The same without a fetch: max(off, lo) if below hi (every offset listed). */
int kpart_next_offset(kpart *p, int64_t off, int64_t *found);
/* Does ls skip p's gaps (kpart_next_present) rather than list every offset
 * (kpart_next_offset)? [kafka] ls_gaps; auto: the topic's cleanup.policy
 * has compact (asked once; if the cluster cannot tell: no, logged once). */
int kpart_skips_gaps(kpart *p);
/* .log bytes at stream position pos. */
int kpart_read_stream(kpart *p, uint64_t pos, void *buf, size_t len, size_t *nread);
/* The headers of record off as backend.h's read_headers gives them (each
 * name once: its first value). */
int kpart_headers(kpart *p, int64_t off, sbfs_header_fn fn, void *arg);

/* backend_kafka.c: backend.h's append on a kpart (a partition, or a
 * topic of several: then routed). */
int kpart_append(kpart *p, const sbfs_rec *recs, size_t n, uint64_t *first);

/* kafka_route.c: a topic of several partitions (nparts > 0): each record
 * to the partition its key picks, one append per partition; its extent
 * (no records; its partitions' newest time). */
int kgroup_append(kpart *g, const sbfs_rec *recs, size_t n, uint64_t *first);
int kgroup_bounds(kpart *g, sbfs_bounds *out);

/* kafka_keys.c: backend.h's get_key and list_keys on a partition (a
 * topic of several: -ENOTSUP); kkeys_free at close. */
int kpart_get_key(kpart *p, const void *key, size_t len, sbfs_recinfo *info);
int kpart_list_keys(kpart *p, const void *from, size_t from_len,
		    int (*fn)(void *arg, const void *key, size_t key_len, const sbfs_recinfo *info),
		    void *arg);
void kkeys_free(kpart *p);

#endif
