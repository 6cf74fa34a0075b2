/*
 * test_store_kill.c - real process crashes: a child appends from several
 * threads over the default io (shared mapping, group commit under
 * sync=always) and is killed with SIGKILL at a random moment; the reopened
 * log must hold every record whose append had returned, each once, exactly,
 * and nothing else. Several rounds over the same directory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util_files.h"
#include "util_store.h"

#define SEED 31
#define MAXREC (1u << 20)
#define LEN(id) ut_len((id), SEED, 8, 700)

static ut_env env;
static sb_log_config C;
/* offset -> id + 1 once its append returned; shared with the children */
static _Atomic uint64_t *ids;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "kill"), 0);
	ids = mmap(NULL, MAXREC * sizeof(*ids), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	cr_assert_neq(ids, MAP_FAILED);
	ut_cfg(&C, 32 * 1024, SB_SYNC_ALWAYS);
	C.index_interval_bytes = 1024;
}

static void teardown(void)
{
	munmap((void *)ids, MAXREC * sizeof(*ids));
	ut_env_fini(&env);
}

TestSuite(kill, .init = setup, .fini = teardown, .timeout = 120);

struct child_arg {
	sb_log *l;
	uint64_t tid;
};

static void *child_appender(void *arg)
{
	struct child_arg *a = arg;
	uint8_t buf[800];
	for (uint64_t s = 0;; s++) {
		uint64_t id = (a->tid << 40) | s, off;
		size_t len = LEN(id);
		ut_fill(buf, len, id, SEED);
		sb_record_in r = {.value = buf, .value_len = (uint32_t)len};
		if (sb_log_append(a->l, &r, 1, &off))
			_exit(3);
		if (off >= MAXREC)
			_exit(0);
		atomic_store(&ids[off], id + 1);
	}
	return NULL;
}

static void child_main(uint64_t round, enum sb_sync sync)
{
	sb_store *s;
	C.sync = sync;
	if (ut_open(env.store, &C, NULL, &s))
		_exit(2);
	sb_log *l = ut_topic(s, "t");
	if (!l)
		_exit(2);
	pthread_t t[3];
	struct child_arg a[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (struct child_arg){.l = l, .tid = round * 8 + (uint64_t)i + 1};
		pthread_create(&t[i], NULL, child_appender, &a[i]);
	}
	for (;;)
		pause();
}

/* Reopen and check against ids; returns next. */
static uint64_t check(int round, int durable)
{
	sb_store *s;
	sb_log *l;
	int rc = ut_open(env.store, &C, NULL, &s);
	cr_assert_eq(rc, 0, "round %d: reopen: %s", round, sb_strerror(rc));
	cr_assert_eq(sb_store_get(s, "t", &l), 0);
	uint64_t next = sb_log_next(l);
	for (uint64_t o = 0; o < MAXREC; o++) {
		uint64_t want = atomic_load(&ids[o]);
		if (o >= next) {
			if (durable)
				cr_assert_eq(want, 0, "round %d: offset %llu acknowledged, log ends at %llu",
					     round, (unsigned long long)o, (unsigned long long)next);
			else if (want)
				atomic_store(&ids[o], 0); /* lost, allowed; forget it */
			continue;
		}
		uint8_t buf[800];
		size_t n = 0;
		sb_record_info in;
		rc = sb_log_read(l, o, 0, buf, sizeof(buf), &n, &in);
		cr_assert_eq(rc, 0, "round %d: record %llu: %s", round, (unsigned long long)o,
			     sb_strerror(rc));
		uint64_t id;
		cr_assert_geq(n, 8);
		memcpy(&id, buf, 8);
		cr_assert(n == LEN(id) && ut_match(buf, n, id, SEED),
			  "round %d: record %llu is not a whole record (id %llx, %zu bytes)", round,
			  (unsigned long long)o, (unsigned long long)id, n);
		if (want)
			cr_assert_eq(want - 1, id, "round %d: record %llu is another record", round,
				     (unsigned long long)o);
		atomic_store(&ids[o], id + 1); /* now part of the log */
	}
	cr_assert_eq(sb_store_close(s), 0);
	return next;
}

static void rounds(enum sb_sync sync, int durable)
{
	uint64_t rng = 12345, prev = 0;
	for (int round = 0; round < 6; round++) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0)
			child_main((uint64_t)round, sync);
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		usleep(20000 + (useconds_t)((rng >> 33) % 60000));
		kill(pid, SIGKILL);
		int st = 0;
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st), "round %d: the child exited by itself (status %d)", round, st);
		uint64_t next = check(round, durable);
		cr_expect_geq(next, prev, "round %d: the log shrank", round);
		prev = next;
	}
	cr_expect_gt(prev, 0, "nothing was ever appended");
}

Test(kill, sigkill_during_group_commit_loses_no_acknowledged_record)
{
	rounds(SB_SYNC_ALWAYS, 1);
}

/* A process crash is not a power loss: under sync=never too, every append
 * that returned is in the page cache and must be recovered. */
Test(kill, sigkill_under_sync_never_loses_no_returned_append)
{
	rounds(SB_SYNC_NEVER, 1);
}
