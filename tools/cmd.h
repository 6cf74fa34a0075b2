/*
 * cmd.h - the subcommands of the `streambus` tool (tools/cmd_*.c) and the
 * helpers they share (tools/cmd_util.c).
 *
 * Exit status of every subcommand: 0 success, 1 damage found (verify) or left
 * (recover, without --cut),
 * 2 usage error or an error opening/reading the log directory.
 */
#ifndef SB_CMD_H
#define SB_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "sb_store.h"

#define SB_EXIT_OK 0
#define SB_EXIT_DAMAGE 1
#define SB_EXIT_ERROR 2

/* Each takes argv[0] = its own name; returns the exit status. */
int sb_cmd_stat(int argc, char **argv);
int sb_cmd_dump(int argc, char **argv);
int sb_cmd_verify(int argc, char **argv);
int sb_cmd_recover(int argc, char **argv);
int sb_cmd_get(int argc, char **argv);

/* Beside a mount (tools/cmd_live.c). sb_cmd_dir_in_use: does a process
 * hold dir/.lock (1 or 0)? sb_cmd_verify_live: sb_verify_topic() of a
 * topic of a LOG_DIR in use; sb_cmd_open_ro_live: sb_store_open() of one
 * (o is used, and its report hook given back). In both a look that reports
 * something counted (damage, an I/O error; a report sb_cmd_ro_quiet does
 * not keep quiet) is taken again, up to 3 looks, and only the last look's
 * reports reach the caller's hook. */
int sb_cmd_dir_in_use(const char *dir);
/* Wait (saying so on stderr, as "streambus CMD: waiting ...") for a daemon
 * that holds dir's lock and is closing after its unmount, before deciding
 * with sb_cmd_dir_in_use whether dir is in use. */
void sb_cmd_wait_finishing(const char *cmd, const char *dir);
int sb_cmd_open_ro_live(const char *dir, sb_store_options *o, sb_store **out);
int sb_cmd_verify_live(const char *topic_dir, sb_verify_problem_fn on_problem,
		       sb_verify_progress_fn on_progress, void *arg, sb_verify_result *res);

/* "streambus CMD: " + message + "\n" on stderr. */
void sb_cmd_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The usage hint after a bad option or argument; returns SB_EXIT_ERROR. */
int sb_cmd_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The word of argv that getopt_long() just refused (it returned '?'): an
 * unknown long option, or the word holding an unknown short option (in a
 * cluster such as "-key", where argv[optind - 1] is still the word before).
 */
const char *sb_cmd_bad_option(int argc, char **argv);

/* Check that path is a readable directory, not in a streambusfs mount
 * (the tool was given the mountpoint for LOG_DIR: named, -EINVAL); else
 * print why and return -errno. */
int sb_cmd_check_dir(const char *cmd, const char *path);
/* Does dir look like a LOG_DIR (a lock file, or a topic directory with a
 * segment file in it)? Does it hold directories that could be topics but
 * none that is one, and no lock (the parent of a LOG_DIR, a home
 * directory: what recover must not write segments into)? */
int sb_cmd_is_log_dir(const char *dir);
int sb_cmd_holds_no_log(const char *dir);

/* Where a command works: LOG_DIR and, if one was named, TOPIC. */
typedef struct sb_cmd_where {
	char dir[4096];
	char topic[256];
	int has_topic;
} sb_cmd_where;

/*
 * The positional arguments after getopt, the same for every command:
 * `LOG_DIR [TOPIC]` or `LOG_DIR/TOPIC` (a single path naming a topic
 * directory: one holding segment files or a meta file, or a missing one
 * inside a LOG_DIR). Checks the count, that LOG_DIR is a readable directory
 * and that it is not itself a topic directory, and that TOPIC is a valid
 * name. 0, or (after printing why) SB_EXIT_ERROR.
 */
int sb_cmd_log_dir_args(const char *cmd, int argc, char **argv, sb_cmd_where *w);

/* "LOG_DIR/TOPIC" (or LOG_DIR without a topic) for messages; buf >= 4352. */
const char *sb_cmd_where_str(const sb_cmd_where *w, char *buf, size_t cap);

/*
 * sb_store_options.report for read-only opens (stat, dump); arg is the
 * command's name. A read-only open changes nothing but reports what recovery
 * would do; warn on stderr about that (records it would cut or segments it
 * would drop are not shown), except index rebuilds, which lose nothing and
 * are usual while the directory is mounted.
 */
void sb_cmd_ro_report(void *arg, const char *topic, const char *msg);
/* Is msg one sb_cmd_ro_report keeps quiet (1 or 0)? */
int sb_cmd_ro_quiet(const char *msg);
/* How sb_cmd_open_ro_with opens: its report hook (arg its; usually
 * sb_cmd_ro_report), no_keys (sb_store_options.no_keys: for commands that
 * read records only) and topic (only_topic). */
typedef struct sb_cmd_ro {
	void (*report)(void *arg, const char *topic, const char *msg);
	void *arg;
	int no_keys;
	const char *topic; /* open this topic alone (NULL: every topic) */
} sb_cmd_ro;
/* Open dir read-only (no lock, no writes) as ro says; on failure print the
 * error and return nonzero. *out is the caller's, to sb_store_close(). */
int sb_cmd_open_ro_with(const char *cmd, const char *dir, const sb_cmd_ro *ro, sb_store **out);
/* Where a read-only open ended `log` at damage a mount refuses
 * (sb_log_damaged_tail): "offset N (FILE: byte B: what)", into buf. */
const char *sb_cmd_damage_where(sb_log *log, char *buf, size_t cap);

/* Parse a decimal u64 (all of s); 0 or -EINVAL. */
int sb_cmd_parse_u64(const char *s, uint64_t *out);

/* ns since the epoch as "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (UTC); buf >= 40.
 * With ns_digits = 0 the fraction is left out. */
void sb_cmd_fmt_time(char *buf, size_t cap, int64_t ns, int ns_digits);

/* Write bytes escaped for a terminal line: printable ASCII as is, \\ \" \n \t
 * \r and \xHH for the rest. */
void sb_cmd_put_escaped(FILE *f, const void *p, size_t n);
/* Write bytes as a JSON string literal (with quotes); bytes must be UTF-8. */
void sb_cmd_put_json_str(FILE *f, const void *p, size_t n);
/* Is p[0..n) valid UTF-8? */
int sb_cmd_utf8_valid(const void *p, size_t n);
/* Write bytes as a base64 JSON string literal (with quotes). */
void sb_cmd_put_json_base64(FILE *f, const void *p, size_t n);

/* Flush stdout; on failure say so and return SB_EXIT_ERROR, else `rc`. */
int sb_cmd_finish_stdout(const char *cmd, int rc);

#endif
