/*
 * main.c - streambusfs: settings, mount, detach, serve, unmount.
 *
 * The daemon forks before opening anything (threads do not survive a fork);
 * the parent waits until the child has opened the store and mounted, then
 * until the mount answers a stat of its root (served by the child's loop),
 * and exits 0 only then. Otherwise 1, with the child's message on stderr;
 * a child that died after mounting leaves a dead mount, which the parent
 * unmounts (fusermount3 -u) and says so.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SB_VERSION
#define SB_VERSION "0"
#endif

/* Tell the waiting parent how the start went (once). */
static void report(int *fd, unsigned char status)
{
	if (*fd < 0)
		return;
	ssize_t n = write(*fd, &status, 1);
	(void)n;
	close(*fd);
	*fd = -1;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* "a,b" -> "a\,b" for a -o value. */
static char *escape_commas(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 1), *w = out;
	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s == ',' || *s == '\\')
			*w++ = '\\';
		*w++ = *s;
	}
	*w = '\0';
	return out;
}

/* One line per topic the store refused (damaged): the mount serves the
 * others; this one is listed but gives EIO until repaired. */
static int log_refused(void *arg, const char *name, int err, const char *msg)
{

	(void)arg, (void)err;
	sbfs_log("topic %s refused: %s", name, msg);
	return 0;
}

/* ---- stop ---------------------------------------------------------------- */

/* The files never released (the kernel sends no RELEASE after an unmount):
 * each .log writer's partial line is appended (a close would have), then
 * every handle is freed. */
static void release_open_files(sbfs *fs)
{
	sbfs_fh *h;
	while ((h = sbfs_fh_any(fs))) {
		if (h->kind == K_LOG && h->writer) {
			int rc = sbfs_log_flush_partial(fs, h);
			if (rc)
				sbfs_log("unmount: partial line in %s lost: %s", h->te->name, sbfs_strerror(rc));
		}
		/* Created files that were never closed are not appended: their
		 * writer never saw a close succeed. */
		if (h->kind == K_PENDING)
			sbfs_pending_abandon(fs, h->p);
		sbfs_fh_free(fs, h);
	}
}

int sbfs_shutdown(sbfs *fs)
{
	pthread_mutex_lock(&fs->slock);
	if (!fs->closed) {
		sbfs_notify_stop(fs);
		release_open_files(fs);
		sbfs_pending_free_all(fs);
		sbfs_pending_ghosts_free(fs);
		sbfs_drop_all_hidden(fs);
		fs->close_rc = fs->b->ops->close(fs->b);
		fs->b = NULL;
		fs->closed = 1;
		if (fs->close_rc)
			sbfs_log("closing the store: %s", sbfs_strerror(fs->close_rc));
	}
	int rc = fs->close_rc;
	pthread_mutex_unlock(&fs->slock);
	return rc;
}

/* ---- start and serve -------------------------------------------------------- */

/* The session's start: what the daemon asks of the kernel. */
static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* the kernel must keep asking us for sizes, and appends must stay ours */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* plain READDIR: a million records list far faster without attributes */
	conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

/* Every request handler (ops_*.c), and the session's start. */
static void fill_ops(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof *ops);
	ops->init = op_init;
	sbfs_ops_names_fill(ops);
	sbfs_ops_dir_fill(ops);
	sbfs_ops_attr_fill(ops);
	sbfs_ops_xattr_fill(ops);
	sbfs_ops_open_fill(ops);
	sbfs_ops_read_fill(ops);
	sbfs_ops_write_fill(ops);
}

static int serve(sbfs_config *cfg, int *ready_fd)
{
	int ret = 1;
	sbfs_backend *b = NULL;
	struct fuse_session *se = NULL;
	char *fsname = NULL, *opts = NULL;
	sbfs fs;
	int fs_inited = 0, mounted = 0, handlers = 0;

	int rc;
	/* every check of the paths before anything is opened: a start they
	 * refuse changes nothing in LOG_DIR (no recovery, no topic made of a
	 * mountpoint inside it) */
	if (sbfs_paths_mountpoint(cfg, 0))
		goto out;
	/* before the emptiness: a second mount on a live one's mountpoint is
	 * told who has it, not that the directory is not empty */
	if (cfg->backend->check_paths && cfg->backend->check_paths(cfg))
		goto out;
	if (sbfs_paths_mountpoint(cfg, 1))
		goto out;
	/* on failure it said why (and who holds a store in use) */
	if (cfg->backend->open(cfg, &b))
		goto out;
	/* on stderr now, in the log (syslog) once detached, below */
	b->ops->topic_list_refused(b, log_refused, cfg);
	rc = sbfs_init(&fs, cfg, b);
	fs_inited = 1;
	if (rc) {
		sbfs_log("cannot list the topics of %s: %s", b->source, sbfs_strerror(rc));
		goto out;
	}

	fsname = escape_commas(b->source);
	if (!fsname || asprintf(&opts, "fsname=%s,subtype=streambusfs,default_permissions%s%s",
				fsname, cfg->allow_other ? ",allow_other" : "",
				cfg->read_only ? ",ro" : "") < 0) {
		opts = NULL;
		sbfs_log("out of memory");
		goto out;
	}
	char *fargv[] = { "streambusfs", "-o", opts, cfg->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(cfg->debug ? 4 : 3, fargv);
	struct fuse_lowlevel_ops ops;
	fill_ops(&ops);
	se = fuse_session_new(&args, &ops, sizeof ops, &fs);
	fuse_opt_free_args(&args);
	if (!se) {
		sbfs_log("cannot start a FUSE session");
		goto out;
	}
	fs.se = se;
	/* a shell starts background jobs with SIGINT ignored, and libfuse only
	 * replaces default dispositions: SIGINT must unmount all the same */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (fuse_set_signal_handlers(se) != 0) {
		sbfs_log("cannot set signal handlers");
		goto out;
	}
	handlers = 1;
	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		sbfs_log("cannot mount on %s", cfg->mountpoint);
		goto out;
	}
	mounted = 1;
	rc = sbfs_notify_start(&fs);
	if (rc) {
		sbfs_log("cannot start the notifier: %s", strerror(-rc));
		goto out;
	}

	if (*ready_fd >= 0) {
		if (chdir("/") != 0) {
			/* nothing depends on the working directory: paths are absolute */
		}
		detach_stdio();
		sbfs_log_to_syslog(1);
		fs.b->ops->topic_list_refused(fs.b, log_refused, cfg);
		report(ready_fd, 0);
	}
	struct fuse_loop_config lc = { .clone_fd = 1, .max_idle_threads = 10 };
	rc = fuse_session_loop_mt(se, &lc);
	ret = rc < 0 ? 1 : 0;
out:
	/* no request is being served now; after a signal the mount is still
	 * there: close the store first, so that once the mount is gone the
	 * log directory is free (the kernel sends no DESTROY to wait for) */
	if (fs_inited && sbfs_shutdown(&fs))
		ret = 1;
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	if (!fs_inited && b)
		b->ops->close(b);
	if (fs_inited)
		sbfs_fini(&fs);
	free(fsname);
	free(opts);
	return ret;
}

/* How the child ended, in a few words, if it did: "" while it runs. */
static void child_end(pid_t pid, char *buf, size_t cap)
{
	int st;

	buf[0] = '\0';
	for (int i = 0; i < 50; i++) { /* it may be exiting right now: 0.5 s */
		if (waitpid(pid, &st, WNOHANG) == pid) {
			if (WIFSIGNALED(st))
				snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
			else
				snprintf(buf, cap, "exit status %d", WEXITSTATUS(st));
			return;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* fusermount3 -u MNT (lazily if busy); 0 when it worked. */
static int unmount_dead(const char *mnt)
{
	const char *modes[] = { "-u", "-uz" };

	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		int st;
		if (pid < 0)
			return -1;
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);
			if (fd >= 0)
				dup2(fd, 2);
			execlp("fusermount3", "fusermount3", modes[i], "--", mnt, (char *)NULL);
			_exit(127);
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			return 0;
	}
	return -1;
}

/*
 * The child said it mounted: does the mount answer? A stat of its root
 * waits for the kernel's INIT and a GETATTR, both served by the child's
 * loop; a dead child's mount gives ENOTCONN, one that unmounted again shows
 * the directory below (the device before the fork). 0 if it answers; else
 * the dead mount is gone, the child too, and a message said so.
 */
static int check_mount(pid_t child, const char *mnt, int have_dev, dev_t dev_before)
{
	struct stat st;
	char how[96];

	int found = stat(mnt, &st) == 0;
	if (found && (!have_dev || st.st_dev != dev_before))
		return 0;
	const char *why = found ? "not mounted any more" : strerror(errno);
	child_end(child, how, sizeof(how));
	if (!how[0]) {
		/* alive, yet the mount does not answer: it is no use */
		kill(child, SIGTERM);
		child_end(child, how, sizeof(how));
		if (!how[0])
			snprintf(how, sizeof(how), "still running, stopped");
	}
	int gone = unmount_dead(mnt) == 0;
	fprintf(stderr, "streambusfs: the daemon mounted %s but did not serve it (%s; %s)%s\n", mnt,
		why, how, gone ? "; the dead mount was unmounted" : "");
	return 1;
}

/* Every segment file of every topic stays open (a descriptor each): a log
 * of thousands of segments needs more than the usual soft limit of 1,024
 * open files. Up to the hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	sbfs_config cfg;
	char *err = NULL;
	const char *delay = getenv("SBFS_TEST_RELEASE_DELAY_MS");
	const char *edelay = getenv("SBFS_TEST_EMPTY_RELEASE_DELAY_MS");
	if (sbfs_config_load(&cfg, argc, argv, &err) != 0) {
		fprintf(stderr, "streambusfs: %s\n", err ? err : "bad configuration");
		free(err);
		return 1;
	}
	cfg.test_release_delay_ms = delay ? atoi(delay) : 0;
	cfg.test_empty_release_delay_ms = edelay ? atoi(edelay) : 0;
	if (cfg.help) {
		sbfs_config_usage(stdout);
		sbfs_config_free(&cfg);
		return 0;
	}
	if (cfg.version) {
		printf("streambusfs %s (libfuse %s)\n", SB_VERSION, fuse_pkgversion());
		sbfs_config_free(&cfg);
		return 0;
	}
	if (cfg.fake) { /* mount -f: the settings are good, nothing to mount */
		sbfs_config_free(&cfg);
		return 0;
	}

	raise_nofile();
	int ready[2] = { -1, -1 };
	if (!cfg.foreground) {
		if (pipe(ready) != 0) {
			perror("streambusfs: pipe");
			return 1;
		}
		struct stat before;
		int have_dev = stat(cfg.mountpoint, &before) == 0;
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("streambusfs: fork");
			return 1;
		}
		if (pid > 0) {
			close(ready[1]);
			unsigned char status = 1;
			ssize_t n;
			do
				n = read(ready[0], &status, 1);
			while (n < 0 && errno == EINTR);
			if (n != 1)
				status = 1; /* the child died before mounting */
			if (status == 0)
				status = (unsigned char)check_mount(pid, cfg.mountpoint, have_dev, before.st_dev);
			sbfs_config_free(&cfg);
			return status;
		}
		close(ready[0]);
		setsid();
	}
	int fd = ready[1];
	int ret = serve(&cfg, &fd);
	report(&fd, (unsigned char)(ret ? 1 : 0));
	sbfs_config_free(&cfg);
	return ret;
}
