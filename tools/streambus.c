/*
 * streambus.c - the `streambus` command: work on a LOG_DIR without mounting
 * it. Dispatches to the subcommands of tools/cmd_*.c and to the benchmarks
 * (tools/bench.c).
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "cmd.h"

#ifndef SB_VERSION
#define SB_VERSION "unknown"
#endif

static const char usage[] =
	"usage: streambus COMMAND [OPTIONS] ARGS...\n"
	"\n"
	"Work on a StreamBus log directory without mounting it.\n"
	"\n"
	"commands:\n"
	"  stat LOG_DIR [TOPIC]             topics: offsets, records, bytes, segments, times\n"
	"  dump LOG_DIR [TOPIC]             print records (offset, time, key, payload)\n"
	"  get LOG_DIR TOPIC KEY            the payload of KEY's latest record\n"
	"  verify LOG_DIR [TOPIC]           check every CRC, offset and index entry\n"
	"  recover [--cut] LOG_DIR [TOPIC]  repair after a crash, as mounting does\n"
	"  bench [OPTIONS]                  the storage engine's benchmarks\n"
	"\n"
	"LOG_DIR TOPIC may also be given as LOG_DIR/TOPIC.\n"
	"\n"
	"options:\n"
	"  -h, --help                       this help ('streambus COMMAND --help' for one command)\n"
	"  -V, --version                    the version\n"
	"\n"
	"Exit status: 0 success, 1 damage found (verify), 2 usage or I/O error.\n"
	"See streambus(1).\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{"stat", sb_cmd_stat},
	{"dump", sb_cmd_dump},
	{"get", sb_cmd_get},
	{"verify", sb_cmd_verify},
	{"recover", sb_cmd_recover},
	{"bench", sb_bench_main},
};

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		fputs(usage, stderr);
		return SB_EXIT_ERROR;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		if (argc > 2 && strcmp(cmd, "help") == 0) {
			/* "streambus help dump" = "streambus dump --help" */
			char *sub[] = {argv[2], "--help", NULL};
			for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
				if (!strcmp(commands[i].name, argv[2]))
					return commands[i].fn(2, sub);
			fprintf(stderr, "streambus: unknown command '%s' (try 'streambus --help')\n",
				argv[2]);
			return SB_EXIT_ERROR;
		}
		fputs(usage, stdout);
		return sb_cmd_finish_stdout("help", SB_EXIT_OK);
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("streambus %s\n", SB_VERSION);
		return sb_cmd_finish_stdout("version", SB_EXIT_OK);
	}
	/* every segment of every topic is open at once (mapped, its index
	 * read), as in the daemon: the soft limit of open files raised to the
	 * hard one, as streambusfs does, so that the tool reads what the
	 * daemon mounts (a user's soft limit is 1024) */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(commands[i].name, cmd))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "streambus: unknown command '%s' (try 'streambus --help')\n", cmd);
	return SB_EXIT_ERROR;
}
