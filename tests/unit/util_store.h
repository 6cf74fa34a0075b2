/*
 * util_store.h - helpers for the storage engine's tests: open a store in a
 * temp dir with a given log config and io, and deterministic payloads that
 * encode their own offset, so any read can be checked on its own.
 */
#ifndef UTIL_STORE_H
#define UTIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sb_store.h"

/* A test's directories: root (removed by ut_env_fini), root/store, root/stash. */
typedef struct ut_env {
	char *root;
	char store[4096];
	char stash[4096];
} ut_env;

/* 0 or -errno. */
int ut_env_init(ut_env *e, const char *tag);
void ut_env_fini(ut_env *e);
/*
 * The fixture of a suite whose tests start from their directories alone:
 * a file-scope `env`, made (ut_env_init(&env, tag)) before each test and
 * removed after it. Stands where `env` is declared; the suite names it:
 *   UT_ENV_FIXTURE("tag")
 *   TestSuite(name, .init = ut_env_setup, .fini = ut_env_teardown);
 * (For Criterion test programs: it asserts.)
 */
#define UT_ENV_FIXTURE(tag)                                  \
	static ut_env env;                                   \
	static void ut_env_setup(void)                       \
	{                                                    \
		cr_assert_eq(ut_env_init(&env, (tag)), 0);   \
	}                                                    \
	static void ut_env_teardown(void)                    \
	{                                                    \
		ut_env_fini(&env);                           \
	}

/* path of store/TOPIC (or store/TOPIC/NAME when name != NULL) into buf. */
char *ut_topic_path(const ut_env *e, const char *topic, const char *name, char *buf, size_t cap);

/* Defaults with sync=never; small segments if seg_bytes != 0. */
void ut_cfg(sb_log_config *c, uint64_t seg_bytes, enum sb_sync sync);
/* sb_store_open with cfg as every topic's config, io (NULL: real), no flusher. */
int ut_open(const char *dir, const sb_log_config *cfg, const sb_io *io, sb_store **out);
/* Same, read-only. */
int ut_open_ro(const char *dir, const sb_log_config *cfg, sb_store **out);
/* Create (if missing) and get topic `name`; NULL on failure. */
sb_log *ut_topic(sb_store *s, const char *name);

/* Payload length for record `off` under `seed`: between lo and hi. */
size_t ut_len(uint64_t off, uint64_t seed, size_t lo, size_t hi);
/* Fill buf with the payload of record `off` (its first 8 bytes are off, if
 * len >= 8; the rest depends on off and seed). */
void ut_fill(uint8_t *buf, size_t len, uint64_t off, uint64_t seed);
/* Does buf hold exactly that payload? */
int ut_match(const uint8_t *buf, size_t len, uint64_t off, uint64_t seed);

/* Append one record with the payload for offset `off` (which must be
 * sb_log_next) of len bytes; *got (may be NULL) gets the offset. rc. */
int ut_append1(sb_log *l, uint64_t off, size_t len, uint64_t seed, uint64_t *got);
/* Append n records of lengths ut_len(o, seed, lo, hi) from offset next. */
int ut_append_n(sb_log *l, size_t n, uint64_t seed, size_t lo, size_t hi);
/*
 * Read record `off` and compare with the payload of length len (len ==
 * SIZE_MAX: any length accepted, content checked). 0 when it matches, the
 * read's error, or 1 (wrong length) / 2 (wrong bytes).
 */
int ut_check(sb_log *l, uint64_t off, size_t len, uint64_t seed);

/* xorshift64: the next pseudo-random number of the sequence *s (never 0)
 * starts; the same seed gives the same sequence. */
uint64_t ut_rnd(uint64_t *s);
/* splitmix64: the next number of another sequence, from any seed (0 too). */
uint64_t ut_splitmix(uint64_t *s);
/* x's bits mixed (MurmurHash3's 64-bit finalizer): a value that looks
 * random for each x, 0 for 0. */
uint64_t ut_mix(uint64_t x);

/* Monotonic ms, for test loops that bound their own work (never asserted). */
uint64_t ut_now_ms(void);

#endif
