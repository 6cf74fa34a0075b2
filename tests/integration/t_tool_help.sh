#!/usr/bin/env bash
# streambus --help / --version, and --help on every subcommand: exit 0, the
# usage on stdout; unknown commands: one line on stderr, exit 2.
. "$(dirname "$0")/lib_tool.sh"
ver=$(sed -n 's/^project(streambus VERSION \([0-9.]*\).*/\1/p' "$SB_TOP/CMakeLists.txt")
eq "$("$SB" --version)" "streambus $ver" "--version"
eq "$("$SB" -V)" "streambus $ver" "-V"
out=$("$SB" --help)
for c in stat dump verify recover bench; do
	has "$out" "^  $c " "--help lists $c"
	o=$("$SB" $c --help) || fail "$c --help exit"
	has "$o" "^usage: streambus $c" "$c --help usage line"
	eq "$("$SB" help $c)" "$o" "help $c"
done
has "$("$SB" verify --help)" "Exit status: 0 no damage, 1 damage found, 2 usage or I/O error" "verify exit codes"
run_rc rc "$SB" frobnicate
eq "$rc" 2 "unknown command exit"
eq "$out" "streambus: unknown command 'frobnicate' (try 'streambus --help')" "unknown command"
run_rc rc "$SB"
eq "$rc" 2 "no command exit"; has "$out" "^usage: streambus COMMAND" "no command usage"
# a directory bench cannot work in is exit status 2, as for every command
# (1 is for a failed figure), with one line naming it
for b in "" "since" "--compression"; do
	run_rc rc "$SB" bench $b --dir "$T/nonexistent"
	eq "$rc" 2 "bench $b --dir missing exit"
	eq "$(printf '%s\n' "$out" | wc -l)" 1 "bench $b --dir missing: one line"
	has "$out" "^streambus bench.*: cannot make a directory in $T/nonexistent: No such file or directory$" "bench $b --dir missing message"
done
echo "t_tool_help: ok"
