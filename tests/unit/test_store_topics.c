/*
 * test_store_topics.c - the store: topics (create, list, remove, names), the
 * directory lock, read-only opens, per-topic config, error names.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util_faultio.h"
#include "util_files.h"
#include "util_store.h"

static ut_env env;
static sb_store *S;
static sb_log_config C;

static void setup(void)
{
	cr_assert_eq(ut_env_init(&env, "top"), 0);
	S = NULL;
	ut_cfg(&C, 8192, SB_SYNC_NEVER);
}

static void teardown(void)
{
	if (S)
		sb_store_close(S);
	ut_env_fini(&env);
}

TestSuite(topics, .init = setup, .fini = teardown);

static void open_store(void)
{
	cr_assert_eq(ut_open(env.store, &C, NULL, &S), 0);
}

static void reopen(void)
{
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	open_store();
}

struct names {
	char v[16][64];
	int n, stop_at;
};

static int collect(void *arg, const char *name, sb_log *log)
{
	struct names *a = arg;
	cr_assert_not_null(log);
	cr_assert_str_eq(sb_log_name(log), name);
	if (a->n < 16)
		snprintf(a->v[a->n], 64, "%s", name);
	a->n++;
	return a->stop_at && a->n == a->stop_at ? 77 : 0;
}

Test(topics, create_list_remove)
{
	open_store();
	cr_expect_str_eq(sb_store_dir(S), env.store);
	cr_assert_eq(sb_store_create(S, "orders"), 0);
	cr_assert_eq(sb_store_create(S, "Alpha-1"), 0);
	cr_assert_eq(sb_store_create(S, "b.c_d"), 0);
	cr_expect_eq(sb_store_create(S, "orders"), -EEXIST);
	struct names a = {0};
	cr_assert_eq(sb_store_list(S, collect, &a), 0);
	cr_assert_eq(a.n, 3);
	cr_expect_str_eq(a.v[0], "Alpha-1");
	cr_expect_str_eq(a.v[1], "b.c_d");
	cr_expect_str_eq(a.v[2], "orders");
	struct names b = {.stop_at = 2};
	cr_expect_eq(sb_store_list(S, collect, &b), 77, "list returns what stopped it");
	cr_expect_eq(b.n, 2);
	char p[4096];
	cr_expect(uf_exists(ut_topic_path(&env, "orders", NULL, p, sizeof(p))));
	reopen();
	struct names c = {0};
	cr_assert_eq(sb_store_list(S, collect, &c), 0);
	cr_expect_eq(c.n, 3, "topics survive reopen");
	cr_assert_eq(sb_store_remove(S, "b.c_d"), 0);
	cr_expect_eq(sb_store_remove(S, "b.c_d"), -ENOENT);
	cr_expect_eq(sb_store_remove(S, "nope"), -ENOENT);
	sb_log *l = (sb_log *)0x1;
	cr_expect_eq(sb_store_get(S, "b.c_d", &l), -ENOENT);
	cr_expect_eq(l, (sb_log *)0x1, "out-parameter untouched");
	cr_expect(!uf_exists(ut_topic_path(&env, "b.c_d", NULL, p, sizeof(p))));
	reopen();
	struct names d = {0};
	cr_assert_eq(sb_store_list(S, collect, &d), 0);
	cr_expect_eq(d.n, 2);
	cr_expect_eq(sb_store_create(S, "b.c_d"), 0, "a removed name can be created again");
	sb_log *l2;
	cr_assert_eq(sb_store_get(S, "b.c_d", &l2), 0);
	cr_expect_eq(sb_log_next(l2), 0);
}

Test(topics, name_rules)
{
	char n249[251], n250[251];
	memset(n249, 'a', 249);
	n249[249] = 0;
	memset(n250, 'b', 250);
	n250[250] = 0;
	cr_expect(sb_topic_name_valid("a"));
	cr_expect(sb_topic_name_valid("A-z_0.9"));
	cr_expect(sb_topic_name_valid("a.."));
	cr_expect(sb_topic_name_valid(n249), "249 chars is allowed");
	cr_expect(!sb_topic_name_valid(n250), "250 chars is too long");
	const char *bad[] = {"", ".", "..", ".hidden", "a/b", "/a", "a b", "a\n", "caf\xc3\xa9",
			     "a:b", "a*", "tab\t", "-ok?"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect(!sb_topic_name_valid(bad[i]), "'%s' accepted", bad[i]);
	cr_expect(sb_topic_name_valid("-ok"), "a leading '-' is in the set");
	open_store();
	cr_expect_eq(sb_store_create(S, n249), 0);
	cr_expect_eq(sb_store_create(S, n250), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_expect_eq(sb_store_create(S, bad[i]), -EINVAL, "create '%s'", bad[i]);
	reopen();
	sb_log *l;
	cr_expect_eq(sb_store_get(S, n249, &l), 0);
}

Test(topics, remove_non_empty_is_enotempty)
{
	open_store();
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	cr_assert_eq(ut_append_n(l, 10, 1, 10, 20), 0);
	cr_expect_eq(sb_store_remove(S, "t"), -ENOTEMPTY);
	cr_assert_eq(ut_check(l, 9, ut_len(9, 1, 10, 20), 1), 0, "still usable");
	cr_assert_eq(sb_log_delete_before(l, 10), 0);
	cr_expect_eq(sb_store_remove(S, "t"), 0, "no retained records: removable");
	/* the borrowed handle stays valid but every call fails with -ENOENT */
	cr_expect_eq(ut_append1(l, 10, 5, 1, NULL), -ENOENT);
	cr_expect_eq(sb_log_read(l, 9, 0, (char[8]){0}, 8, &(size_t){0}, NULL), -ENOENT);
	sb_log_stats st;
	cr_expect_eq(sb_log_get_stats(l, &st), -ENOENT);
	cr_expect_eq(sb_log_sync(l), -ENOENT);
	cr_expect_eq(sb_log_delete_before(l, 10), -ENOENT);
	cr_expect_eq(sb_log_retain(l, 0, NULL), -ENOENT);
	char p[4096];
	cr_expect(!uf_exists(ut_topic_path(&env, "t", NULL, p, sizeof(p))));
	reopen();
	cr_expect_eq(sb_store_get(S, "t", &l), -ENOENT);
}

Test(topics, second_open_is_locked_out, .timeout = 60)
{
	open_store();
	sb_store *s2 = (sb_store *)0x1;
	cr_expect_eq(ut_open(env.store, &C, NULL, &s2), SB_ELOCKED);
	cr_expect_eq(s2, (sb_store *)0x1);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		sb_store *s3;
		_exit(ut_open(env.store, &C, NULL, &s3) == SB_ELOCKED ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process got in");
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	cr_expect_eq(ut_open(env.store, &C, NULL, &S), 0, "the lock is released at close");
}

typedef struct waited {
	int calls;
	long pid;
} waited;

static void on_wait(void *arg, const sb_store_holder *h)
{
	waited *w = arg;
	w->calls++;
	w->pid = h->pid;
}

/*
 * The children of the tests below are forked from a process that has
 * threads (Criterion's own, and TSan's): they start none themselves (no
 * flusher), as ThreadSanitizer does not support that after such a fork (the
 * child dies at its first pthread_create: "starting new threads after
 * multi-threaded fork is not supported", or with die_after_fork=0 "dup
 * thread with used id"). The parent closes its end of the pipe first, so
 * that a child that dies before it writes fails the test at the read; it
 * kept the write end open and blocked in read() forever, which is why this
 * program never finished under TSan. Each test has a timeout besides.
 */
static pid_t fork_holder(int go[2])
{
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		close(go[0]);
	else
		close(go[1]);
	return pid;
}

/* Options that wait ms for a finishing holder, counting in w. */
static void waiting_options(sb_store_options *o, waited *w, unsigned ms)
{
	sb_store_options_default(o);
	o->defaults = C;
	o->lock_wait_ms = ms;
	o->lock_waiting = on_wait;
	o->lock_waiting_arg = w;
}

/* The holder is open: its child said so (or died: 0 bytes). */
static void holder_ready(int go[2])
{
	char c;
	cr_assert_eq(read(go[0], &c, 1), 1, "the holder died before it opened the store");
	close(go[0]);
}

/* A holder that is no live mount (a daemon finishing its unmount) is waited
 * for, once announced; the lock note names it. */
Test(topics, a_finishing_holder_is_waited_for, .timeout = 60)
{
	int go[2];
	pid_t pid = fork_holder(go);
	if (pid == 0) {
		sb_store_options o;
		sb_store *s;
		sb_store_options_default(&o);
		o.defaults = C;
		o.no_flusher = 1;
		o.mountpoint = "/nonexistent/mnt";
		if (sb_store_open(env.store, &o, &s) != 0)
			_exit(1);
		char c = 1;
		if (write(go[1], &c, 1) != 1)
			_exit(1);
		usleep(300 * 1000);
		_exit(sb_store_close(s) == 0 ? 0 : 1);
	}
	holder_ready(go);
	sb_store_holder *h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	cr_assert_eq(sb_store_holder_get(env.store, h), 0);
	cr_expect_eq(h->pid, (long)pid);
	cr_expect_str_eq(h->mountpoint, "/nonexistent/mnt");
	cr_expect_str_eq(h->dir, env.store);
	cr_expect(h->held);
	cr_expect(!h->mounted);
	free(h);

	sb_store_options o;
	waited w = {0, 0};
	waiting_options(&o, &w, 10000);
	cr_expect_eq(sb_store_open(env.store, &o, &S), 0, "waited for the holder to close");
	cr_expect_eq(w.calls, 1, "the wait is announced once");
	cr_expect_eq(w.pid, (long)pid, "naming the holder");
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A read-only open takes no lock but waits the same way for a holder that
 * is finishing (it trims segments under a reader while it closes). */
Test(topics, a_read_only_open_waits_for_a_finishing_holder, .timeout = 60)
{
	int go[2];
	pid_t pid = fork_holder(go);
	if (pid == 0) {
		sb_store *s;
		if (ut_open(env.store, &C, NULL, &s) != 0)
			_exit(1);
		char c = 1;
		if (write(go[1], &c, 1) != 1)
			_exit(1);
		usleep(300 * 1000);
		_exit(sb_store_close(s) == 0 ? 0 : 1);
	}
	holder_ready(go);
	sb_store_options o;
	waited w = {0, 0};
	waiting_options(&o, &w, 10000);
	o.read_only = 1;
	cr_expect_eq(sb_store_open(env.store, &o, &S), 0);
	cr_expect_eq(w.calls, 1, "the wait is announced once");
	cr_expect_eq(w.pid, (long)pid, "naming the holder");
	char lp[4096 + 16];
	snprintf(lp, sizeof(lp), "%s/.lock", env.store);
	int lfd = open(lp, O_RDONLY);
	cr_assert_geq(lfd, 0);
	cr_expect_eq(flock(lfd, LOCK_EX | LOCK_NB), 0, "opened only once the holder let go");
	close(lfd);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The wait is bounded. */
Test(topics, a_holder_that_stays_is_refused_after_the_wait, .timeout = 60)
{
	open_store();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		sb_store_options o;
		sb_store *s;
		waited w = {0, 0};
		waiting_options(&o, &w, 200);
		o.no_flusher = 1; /* see fork_holder */
		int rc = sb_store_open(env.store, &o, &s);
		_exit(rc == SB_ELOCKED && w.calls == 1 && w.pid == (long)getppid() ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "refused after the wait, naming us");
}

/*
 * A holder whose close takes longer than the wait (thousands of topics,
 * each syncing its files: 16-18 s for 10,000 here, found by a tester) is
 * waited for as long as its close progresses (the lock note counts the
 * topics closed), each step within the wait: here 60 topics whose
 * fdatasyncs take 5 ms each close in ~2 s against a wait of 300 ms. The
 * note says "closing" while it goes.
 */
Test(topics, a_holder_closing_slowly_is_waited_for_while_it_progresses, .timeout = 60)
{
	int go[2];
	pid_t pid = fork_holder(go);
	if (pid == 0) {
		sb_store *s;
		fio *f = fio_new(env.stash);
		if (!f || ut_open(env.store, &C, fio_io(f), &s) != 0)
			_exit(1);
		/* under 64 topics: the close makes no thread (see fork_holder) */
		for (int i = 0; i < 60; i++) {
			char name[16];
			sb_log *l;
			snprintf(name, sizeof(name), "t%03d", i);
			if (sb_store_create(s, name) || sb_store_get(s, name, &l) || ut_append_n(l, 3, 1, 10, 20))
				_exit(1);
		}
		fio_slow(f, FIO_FDATASYNC, 5000, NULL);
		char c = 1;
		if (write(go[1], &c, 1) != 1)
			_exit(1);
		_exit(sb_store_close(s) == 0 ? 0 : 1);
	}
	holder_ready(go);
	sb_store_options o;
	waited w = {0, 0};
	waiting_options(&o, &w, 300);
	usleep(100 * 1000); /* its close has begun */
	sb_store_holder *h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	cr_assert_eq(sb_store_holder_get(env.store, h), 0);
	cr_expect(h->held && h->closing_total == 60 && h->closing_done < 60, "the note: closing %llu of %llu",
		  (unsigned long long)h->closing_done, (unsigned long long)h->closing_total);
	free(h);
	int rc = sb_store_open(env.store, &o, &S);
	cr_expect_eq(rc, 0, "refused while the holder closed, making progress: %s", sb_strerror(rc));
	cr_expect_eq(w.calls, 1, "the wait is announced once");
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * One topic whose own close takes longer than the wait: a backlog of ~60
 * sealed 4 KiB segments, none synced yet (no flusher), fdatasyncs slowed
 * to 5 ms: its close syncs each segment and saves its index files, ~2 s,
 * against a wait of 400 ms. The note counts the steps inside the close
 * too, and the waiter gets in. (Counted by topics alone, the note stayed
 * at 0 of 1 and the waiter gave up: a tester's 16 topics of 4 KiB
 * segments, one of which took more than 10 s to close.)
 */
Test(topics, a_holder_closing_one_long_topic_is_waited_for_while_it_progresses, .timeout = 60)
{
	int go[2];
	pid_t pid = fork_holder(go);
	if (pid == 0) {
		sb_store *s;
		sb_log_config c;
		sb_log *l;
		fio *f = fio_new(env.stash);
		ut_cfg(&c, 4096, SB_SYNC_NEVER);
		if (!f || ut_open(env.store, &c, fio_io(f), &s) != 0 || sb_store_create(s, "long") ||
		    sb_store_get(s, "long", &l) || ut_append_n(l, 2000, 1, 90, 110))
			_exit(1);
		fio_slow(f, FIO_FDATASYNC, 5000, NULL);
		char ch = 1;
		if (write(go[1], &ch, 1) != 1)
			_exit(1);
		_exit(sb_store_close(s) == 0 ? 0 : 1);
	}
	holder_ready(go);
	sb_store_options o;
	waited w = {0, 0};
	waiting_options(&o, &w, 400);
	usleep(100 * 1000); /* its close has begun */
	sb_store_holder *h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	cr_assert_eq(sb_store_holder_get(env.store, h), 0);
	cr_expect(h->held && h->closing_total == 1 && h->closing_done == 0, "the note: closing %llu of %llu",
		  (unsigned long long)h->closing_done, (unsigned long long)h->closing_total);
	free(h);
	long long t0 = (long long)ut_now_ms();
	int rc = sb_store_open(env.store, &o, &S);
	cr_expect_eq(rc, 0, "refused after %lld ms while the holder closed its one topic, making progress: %s",
		     (long long)ut_now_ms() - t0, sb_strerror(rc));
	cr_expect_gt((long long)ut_now_ms() - t0, 400, "the close took longer than the wait (else this proves nothing)");
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * The same with the flusher running, as in the daemon: its pass over a
 * backlog of sealed segments in every topic stops at the close, which
 * syncs what is left topic by topic, saying how far it got. (The flusher
 * finished its whole pass first, 20 s for 16 topics of 4 KiB segments,
 * before the close wrote a word, and the waiter gave up: found by a
 * tester.) Here the flusher is held at its first index file while 11
 * more topics pile up ~20 sealed segments each, then let go with 10 ms a
 * index file: ~0.4 s a topic, ~4.5 s in all, against a wait of 3 s. In one
 * process (a forked child may make no thread under TSan): the lock is a
 * flock, per open file, so the second open waits as another process's.
 */
static void *close_store(void *arg)
{
	return (void *)(intptr_t)sb_store_close(arg);
}

Test(topics, a_holder_whose_flusher_is_busy_is_waited_for_while_it_closes, .timeout = 60)
{
	fio *f = fio_new(env.stash);
	cr_assert_not_null(f);
	sb_store_options o;
	sb_store_options_default(&o);
	ut_cfg(&o.defaults, 4096, SB_SYNC_INTERVAL);
	o.io = fio_io(f);
	sb_store *h;
	cr_assert_eq(sb_store_open(env.store, &o, &h), 0);
	sb_log *l[12];
	for (int i = 0; i < 12; i++) {
		char name[16];
		snprintf(name, sizeof(name), "b%02d", i);
		cr_assert_eq(sb_store_create(h, name), 0);
		cr_assert_eq(sb_store_get(h, name, &l[i]), 0);
	}
	usleep(300 * 1000); /* the flusher's passes take every topic now */
	/* the flusher stops at its first index file (topic b00's), and the
	 * other topics' sealed segments pile up behind it, in its pass */
	fio_slow(f, FIO_FDATASYNC, FIO_HOLD, ".tmp");
	cr_assert_eq(ut_append_n(l[0], 40, 1, 150, 250), 0);
	for (int k = 0; !fio_slowed(f) && k < 5000; k++)
		usleep(1000);
	for (int i = 1; i < 12; i++)
		cr_assert_eq(ut_append_n(l[i], 400, 1, 150, 250), 0); /* ~80 KB: ~20 segments */
	cr_assert_gt(fio_slowed(f), 0, "the flusher never reached an index file");
	fio_slow(f, FIO_FDATASYNC, 10000, ".tmp"); /* let go: 10 ms an index file from now on */
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, close_store, h), 0);
	usleep(50 * 1000); /* its close has begun */
	sb_store_options w_o;
	waited w = {0, 0};
	waiting_options(&w_o, &w, 3000);
	int rc = sb_store_open(env.store, &w_o, &S);
	void *crc;
	pthread_join(t, &crc);
	cr_expect_eq(rc, 0, "refused while the holder closed, making progress: %s", sb_strerror(rc));
	cr_expect_eq((int)(intptr_t)crc, 0, "the holder's close");
	fio_free(f);
}

Test(topics, read_only_open_sees_data_without_the_lock)
{
	open_store();
	sb_log *l = ut_topic(S, "t");
	cr_assert_not_null(l);
	cr_assert_eq(ut_append_n(l, 300, 3, 10, 200), 0); /* unsynced, store still open */
	sb_store *ro;
	cr_assert_eq(ut_open_ro(env.store, &C, &ro), 0, "read-only open while locked");
	sb_log *rl;
	cr_assert_eq(sb_store_get(ro, "t", &rl), 0);
	cr_expect_eq(sb_log_next(rl), 300);
	for (uint64_t i = 0; i < 300; i++)
		cr_assert_eq(ut_check(rl, i, ut_len(i, 3, 10, 200), 3), 0, "ro read of %llu",
			     (unsigned long long)i);
	cr_expect_eq(sb_store_create(ro, "x"), -EROFS);
	cr_expect_lt(sb_log_delete_before(rl, 10), 0, "delete_before on a read-only store");
	cr_expect_eq(sb_log_start(rl), 0);
	cr_expect_lt(sb_store_remove(ro, "t"), 0);
	cr_expect_lt(ut_append1(rl, 300, 10, 3, NULL), 0, "append on a read-only store");
	cr_expect_eq(sb_log_next(rl), 300);
	cr_assert_eq(sb_store_close(ro), 0);
	cr_expect_eq(sb_log_next(l), 300);
	cr_assert_eq(ut_append_n(l, 10, 3, 10, 200), 0);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	/* and with the writer gone: no lock taken, a writer can come in */
	cr_assert_eq(ut_open_ro(env.store, &C, &ro), 0);
	open_store();
	cr_assert_eq(sb_store_get(ro, "t", &rl), 0);
	cr_expect_eq(sb_log_next(rl), 310);
	cr_assert_eq(sb_store_close(ro), 0);
}

Test(topics, read_only_open_of_a_missing_dir_fails_and_creates_nothing)
{
	sb_store *ro = (sb_store *)0x1;
	char p[4096];
	snprintf(p, sizeof(p), "%s/none", env.root);
	cr_expect_lt(ut_open_ro(p, &C, &ro), 0);
	cr_expect_eq(ro, (sb_store *)0x1);
	cr_expect(!uf_exists(p));
}

Test(topics, read_only_open_changes_no_file)
{
	char p[4096], name[256];
	open_store();
	sb_log *l = ut_topic(S, "t");
	cr_assert_eq(ut_append_n(l, 50, 4, 10, 100), 0);
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	char tdir[4096];
	ut_topic_path(&env, "t", NULL, tdir, sizeof(tdir));
	cr_assert_eq(uf_last_suffix(tdir, ".seg", name, sizeof(name)), 0);
	uf_join(p, sizeof(p), tdir, name);
	cr_assert_eq(uf_cut_tail(p, 3), 0); /* a torn tail */
	uf_remove_suffix(tdir, ".idx");     /* and no index */
	off_t size = uf_size(p);
	int nfiles = uf_count_suffix(tdir, "");
	sb_store *ro;
	cr_assert_eq(ut_open_ro(env.store, &C, &ro), 0);
	sb_log *rl;
	cr_assert_eq(sb_store_get(ro, "t", &rl), 0);
	cr_expect_eq(sb_log_next(rl), 49, "read-only sees up to the last whole record");
	cr_expect_eq(ut_check(rl, 48, ut_len(48, 4, 10, 100), 4), 0);
	cr_assert_eq(sb_store_close(ro), 0);
	cr_expect_eq(uf_size(p), size, "read-only open cut the file");
	cr_expect_eq(uf_count_suffix(tdir, ""), nfiles, "read-only open wrote files");
}

static int per_topic(void *arg, const char *topic, sb_log_config *cfg)
{
	(void)arg;
	if (!strcmp(topic, "big"))
		cfg->max_record_bytes = 5000;
	if (!strcmp(topic, "bad"))
		return -EINVAL;
	return 0;
}

Test(topics, per_topic_config_hook)
{
	sb_store_options o;
	sb_store_options_default(&o);
	o.defaults = C;
	o.defaults.max_record_bytes = 100;
	o.topic_config = per_topic;
	o.no_flusher = 1;
	cr_assert_eq(sb_store_open(env.store, &o, &S), 0);
	sb_log *big = ut_topic(S, "big"), *small = ut_topic(S, "small");
	cr_assert(big && small);
	cr_expect_eq(sb_log_get_config(big)->max_record_bytes, 5000);
	cr_expect_eq(sb_log_get_config(small)->max_record_bytes, 100);
	cr_expect_eq(ut_append1(big, 0, 4000, 1, NULL), 0);
	cr_expect_eq(ut_append1(small, 0, 4000, 1, NULL), -EFBIG);
	cr_expect_lt(sb_store_create(S, "bad"), 0, "the hook's error is returned");
}

Test(topics, error_names_and_config_checks)
{
	const int codes[] = {SB_ECORRUPT, SB_EVERSION, SB_ELOCKED, -ENOENT, -ENOSPC, -EIO};
	for (size_t i = 0; i < 6; i++) {
		const char *s = sb_strerror(codes[i]);
		cr_assert(s && *s, "no name for %d", codes[i]);
		for (size_t j = 0; j < i; j++)
			cr_expect_str_neq(s, sb_strerror(codes[j]), "%d and %d named alike", codes[i],
					  codes[j]);
	}
	cr_expect(strstr(sb_strerror(-ENOENT), strerror(ENOENT)) || strstr(sb_strerror(-ENOENT), "ENOENT"),
		  "-ENOENT named '%s'", sb_strerror(-ENOENT));
	enum sb_sync y = SB_SYNC_NEVER;
	cr_expect_eq(sb_sync_parse("always", &y), 0);
	cr_expect_eq(y, SB_SYNC_ALWAYS);
	cr_expect_eq(sb_sync_parse("sometimes", &y), -EINVAL);
	cr_expect_eq(y, SB_SYNC_ALWAYS);
	cr_expect_str_eq(sb_sync_name(SB_SYNC_INTERVAL), "interval");
	sb_log_config c;
	sb_log_config_default(&c);
	cr_expect_eq(c.segment_bytes, 134217728);
	cr_expect_eq(c.index_interval_bytes, 4096);
	cr_expect_eq(c.max_record_bytes, 1048576);
	cr_expect_eq(c.sync, SB_SYNC_INTERVAL);
	cr_expect_eq(c.sync_interval_ms, 1000);
	cr_expect_eq(c.retention_bytes, -1);
	cr_expect_eq(c.retention_ms, -1);
	cr_expect_eq(sb_log_config_check(&c, NULL), 0);
	const char *why = NULL;
	c.segment_bytes = 10;
	cr_expect_eq(sb_log_config_check(&c, &why), -EINVAL);
	cr_expect(why && *why);
	sb_log_config_default(&c);
	c.max_record_bytes = 0;
	cr_expect_eq(sb_log_config_check(&c, NULL), -EINVAL);
	/* a record limit past the segment's room names the record limit */
	c.max_record_bytes = 3u << 30;
	why = NULL;
	cr_expect_eq(sb_log_config_check(&c, &why), -EINVAL);
	cr_expect(why && strstr(why, "max_record_bytes"), "why: %s", why ? why : "(none)");
	sb_store_options o;
	sb_store_options_default(&o);
	o.defaults.segment_bytes = 1;
	cr_expect_eq(sb_store_open(env.store, &o, &S), -EINVAL);
	cr_expect_null(S);
}

Test(topics, stray_files_in_the_store_dir_are_not_topics)
{
	char p[8192];
	open_store();
	cr_assert_not_null(ut_topic(S, "real"));
	cr_assert_eq(sb_store_close(S), 0);
	S = NULL;
	snprintf(p, sizeof(p), "%s/README", env.store);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs("notes\n", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/.trash", env.store);
	cr_assert_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/real/00000000000000000000.idx.tmp", env.store);
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fclose(f);
	open_store();
	struct names a = {0};
	cr_assert_eq(sb_store_list(S, collect, &a), 0);
	cr_expect_eq(a.n, 1, "%d topics listed", a.n);
	cr_expect_str_eq(a.v[0], "real");
	sb_log *l;
	cr_assert_eq(sb_store_get(S, "real", &l), 0);
	cr_expect_eq(ut_append1(l, 0, 10, 1, NULL), 0);
	cr_expect_lt(sb_store_create(S, "README"), 0, "a topic over a stray file");
	snprintf(p, sizeof(p), "%s/README", env.store);
	cr_expect_eq(uf_size(p), 6, "the stray file was changed");
}
