# tests/integration/lib.sh - shared helpers of the FUSE integration tests.
#
# Each t_*.sh sources this file. It then has:
#   $SB_TMP  a private temp dir (the cwd), removed at exit
#   $SB_LOG  the log directory ($SB_TMP/log), $SB_MNT the mountpoint ($SB_TMP/mnt)
#   $SB_BIN  the daemon ($SB_BUILD/streambusfs)
#   sb_mount [args]      start the daemon detached (the default way) on
#                        $SB_LOG $SB_MNT and wait until the mount is ready
#   sb_mount_fg [args]   the same with -f, in the background ($SB_PID is $!)
#   sb_umount            unmount, wait for the daemon to exit
#   t CMD...             run CMD under timeout ($SB_T seconds, default 20)
#   tsh 'SCRIPT' [args]  run a bash script under timeout (for redirections)
#   case_ NAME           start a test case (printed)
#   assert_* ...         non-fatal checks; the script exits 1 at the end if
#                        any failed. sb_die is fatal.
# On EXIT/INT/TERM everything is unmounted (fusermount3 -u, then umount -l),
# leftover daemons are killed, the temp dir is removed. With
# SB_INTEGRATION_ASAN=1 the daemon's sanitizer reports go to $SB_TMP/asan.*
# and any report fails the test; SB_INTEGRATION_TSAN=1 (against build-tsan)
# does the same with ThreadSanitizer's reports ($SB_TMP/tsan.*).

set -u
export LC_ALL=C

SB_SCRIPT=$(basename "$0" .sh)
SB_T=${SB_T:-20}
SB_FAILS=0
SB_CHECKS=0
SB_CASE=""
SB_PID=""
SB_PIDS=()
SB_CLEANUP_HOOKS=()
SB_MOUNT_SEQ=0
SB_ASAN=${SB_INTEGRATION_ASAN:-}
SB_TSAN=${SB_INTEGRATION_TSAN:-}
[ -n "$SB_TSAN" ] && SB_ASAN=1
# A sanitizer build is several times slower: stretch the deadlines.
SB_SLOW=1
[ -n "$SB_ASAN" ] && SB_SLOW=3

sb_msg() { printf '%s\n' "$*" >&2; }
sb_die() {
	sb_msg "FATAL [$SB_SCRIPT${SB_CASE:+: $SB_CASE}]: $*"
	SB_FAILS=$((SB_FAILS + 1))
	exit 1
}

if [ -z "${SB_BUILD:-}" ]; then
	sb_die "SB_BUILD is not set (run through tools/test, or SB_BUILD=build bash $0)"
fi
SB_BUILD=$(cd "$SB_BUILD" 2>/dev/null && pwd) || sb_die "SB_BUILD=$SB_BUILD is not a directory"
SB_BIN=$SB_BUILD/streambusfs
SB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Never skip silently: without /dev/fuse nothing here can be tested.
if [ ! -c /dev/fuse ]; then
	sb_msg "!!! /dev/fuse is missing: the FUSE integration test $SB_SCRIPT CANNOT run !!!"
	exit 1
fi
[ -x "$SB_BIN" ] || sb_die "no daemon at $SB_BIN (build it first)"
for _sb_tool in fusermount3 timeout python3 getfattr mountpoint pgrep; do
	command -v "$_sb_tool" >/dev/null || sb_die "missing tool: $_sb_tool (see tools/packages.txt)"
done

SB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sbit.$SB_SCRIPT.XXXXXX") || sb_die "mktemp failed"
SB_LOG=$SB_TMP/log
SB_MNT=$SB_TMP/mnt
mkdir -p "$SB_LOG" "$SB_MNT"
export SB_TMP SB_LOG SB_MNT SB_BIN
cd "$SB_TMP" || sb_die "cd $SB_TMP"

# python3 is Debian's (tools/packages.txt). A pyenv shim ahead of it on PATH
# (as on the CI machines) is a bash script running pyenv: 0.4 s of CPU a
# start against 0.04 s, and the tests start python3 thousands of times
# (t_headers took 27 s with the shim, 6 s without, 2026-12-02).
if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ]; then
	mkdir "$SB_TMP/.python" && ln -s /usr/bin/python3 "$SB_TMP/.python/python3" || sb_die "python3 link"
	PATH=$SB_TMP/.python:$PATH
fi

if [ -n "$SB_ASAN" ]; then
	# The detached daemon's stderr is /dev/null: send reports to files.
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$SB_TMP/asan"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:log_path=$SB_TMP/ubsan"
	export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}:log_path=$SB_TMP/tsan"
	export LSAN_OPTIONS="suppressions=$SB_TOP/tests/integration/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi

# ---- mounts and cleanup ------------------------------------------------

# sb_is_mounted [DIR]: is DIR a mount right now (read from /proc, never
# touches the mount itself, so it cannot hang).
sb_is_mounted() {
	local d=${1:-$SB_MNT}
	awk -v d="$d" '$2 == d { found = 1 } END { exit !found }' /proc/self/mounts
}

# sb_alive PID: the process exists and is not a zombie (here pid 1 may not
# reap the orphans of a detached daemon).
sb_alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# All daemons whose command line names our temp dir, plus those we started.
sb_daemon_pids() {
	{
		local p
		for p in $(pgrep -f "streambusfs.*$SB_TMP"); do
			case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
			*/streambusfs) sb_alive "$p" && echo "$p" ;;
			esac
		done
		for p in "${SB_PIDS[@]}"; do
			sb_alive "$p" && echo "$p"
		done
	} | sort -u
}

# sb_newest_pid PID...: the one started last.
sb_newest_pid() {
	[ $# -gt 0 ] || return 0
	ps -o pid= --sort=start_time -p "$(IFS=,; echo "$*")" 2>/dev/null | tail -1 | tr -d ' '
}

sb_unmount_dir() {
	local d=$1 i
	sb_is_mounted "$d" || return 0
	for i in 1 2 3 4 5; do
		timeout 10 fusermount3 -u "$d" 2>/dev/null || timeout 10 umount "$d" 2>/dev/null
		sb_is_mounted "$d" || return 0
		sleep 0.5
	done
	sb_msg "cleanup: $d would not unmount cleanly; umount -l"
	umount -l "$d" 2>/dev/null
	sb_is_mounted "$d" && return 1
	return 0
}

# sb_check_sanitizer: with SB_INTEGRATION_ASAN, fail on every sanitizer
# report the daemons wrote since the last look (named with the case and the
# daemon's mount arguments).
sb_check_sanitizer() {
	local f pid what
	[ -n "$SB_ASAN" ] || return 0
	for f in "$SB_TMP"/asan.* "$SB_TMP"/ubsan.* "$SB_TMP"/tsan.*; do
		[ -s "$f" ] || continue
		case "$f" in *.seen) continue ;; esac
		# a file with no report in it (a summary of suppressed leaks)
		grep -qE 'ERROR|WARNING|runtime error' "$f" || { mv "$f" "$f.seen"; continue; }
		pid=${f##*.}
		what=$(awk -v p="$pid" '$1 == p { $1 = ""; print }' "$SB_TMP/daemons" 2>/dev/null)
		assert_fail_now "SANITIZER REPORT from daemon $pid (started in:${what:- ?}), $f:"
		head -60 "$f" >&2
		mv "$f" "$f.seen"
	done
}

# Every mount under $SB_TMP, the last mounted first.
sb_mounts_under_tmp() {
	awk -v d="$SB_TMP/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | tac
}
sb_unmount_all() {
	local d
	for d in $(sb_mounts_under_tmp); do sb_unmount_dir "$d"; done
}

sb_cleanup() {
	local rc=$? p h i f
	trap - EXIT INT TERM
	set +e
	# our background jobs (writers, tail -f) first
	for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
	for h in "${SB_CLEANUP_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1; done
	sb_unmount_all
	for p in $(sb_daemon_pids); do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 50); do [ -z "$(sb_daemon_pids)" ] && break; sleep 0.1; done
	for p in $(sb_daemon_pids); do
		sb_msg "cleanup: daemon $p still alive after SIGTERM; SIGKILL"
		kill -KILL "$p" 2>/dev/null
	done
	sb_unmount_all
	sb_check_sanitizer
	if grep -q "$SB_TMP" /proc/self/mounts; then
		sb_msg "cleanup: something is still mounted under $SB_TMP; not removing it"
		grep "$SB_TMP" /proc/self/mounts >&2
		SB_FAILS=$((SB_FAILS + 1))
	else
		chmod -R u+w "$SB_TMP" 2>/dev/null
		rm -rf "$SB_TMP"
	fi
	if [ "$SB_FAILS" -gt 0 ]; then
		sb_msg "$SB_SCRIPT: FAILED ($SB_FAILS of $SB_CHECKS checks failed)"
		exit 1
	fi
	if [ "$rc" -ne 0 ]; then
		sb_msg "$SB_SCRIPT: FAILED (exit $rc)"
		exit "$rc"
	fi
	sb_msg "$SB_SCRIPT: ok ($SB_CHECKS checks)"
	exit 0
}
trap sb_cleanup EXIT
trap 'sb_msg "interrupted"; exit 130' INT TERM

# sb_wait_mounted DIR SECONDS: wait until DIR is a mount.
sb_wait_mounted() {
	local d=$1 deadline=$((SECONDS + $2))
	while ! sb_is_mounted "$d"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
	# the root must answer too
	timeout 10 mountpoint -q "$d"
}

# sb_mount [args...]: start the daemon the default way (detached) on
# $SB_LOG $SB_MNT with args (e.g. -o sync=always) before the paths. The
# command must return only once the mount is ready. Sets $SB_PID.
# SB_MOUNT_PATHS=0 leaves the paths out (they then come from mount.ini).
sb_mount() {
	local out rc paths=("$SB_LOG" "$SB_MNT")
	[ "${SB_MOUNT_PATHS:-1}" = 0 ] && paths=()
	SB_MOUNT_SEQ=$((SB_MOUNT_SEQ + 1))
	out=$SB_TMP/daemon.$SB_MOUNT_SEQ.out
	sb_is_mounted "$SB_MNT" && sb_die "sb_mount: $SB_MNT is already mounted"
	# a tag in the daemon's environment names it among the daemons of
	# other tests (which come and go while this one mounts)
	local tag=$SB_TMP.$SB_MOUNT_SEQ
	(cd "${SB_MOUNT_CWD:-$SB_TMP}" && SB_MOUNT_TAG=$tag exec timeout $((30 * SB_SLOW)) "$SB_BIN" "$@" "${paths[@]}") >"$out" 2>&1 </dev/null
	rc=$?
	if [ $rc -eq 124 ]; then
		sb_die "sb_mount: '$SB_BIN $* ${paths[*]}' did not return within $((30 * SB_SLOW)) s (does it detach?)"
	fi
	if [ $rc -ne 0 ]; then
		sb_msg "daemon output:"; cat "$out" >&2
		sb_die "sb_mount: '$SB_BIN $* ${paths[*]}' exited $rc"
	fi
	sb_wait_mounted "$SB_MNT" $((10 * SB_SLOW)) || {
		cat "$out" >&2
		sb_die "sb_mount: $SB_MNT is not mounted after the command returned"
	}
	# the newest: the previous daemon may still be finishing its unmount
	SB_PID=$(sb_newest_pid $(sb_daemon_pids))
	[ -n "$SB_PID" ] || SB_PID=$(head -1 "$SB_LOG/.lock" 2>/dev/null | tr -dc 0-9)
	if [ -z "$SB_PID" ] || ! sb_alive "$SB_PID"; then
		# no path on its command line: the daemon with our tag
		local p
		SB_PID=""
		for p in $(pgrep streambusfs); do
			if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "SB_MOUNT_TAG=$tag"; then
				SB_PID=$p
				break
			fi
		done
	fi
	[ -n "$SB_PID" ] && sb_alive "$SB_PID" || sb_die "sb_mount: mounted, but no daemon process found"
	SB_PIDS+=("$SB_PID")
	echo "$SB_PID case '$SB_CASE', args: $*" >>"$SB_TMP/daemons"
}

# sb_bg CMD...: exec CMD with SIGINT/SIGQUIT back to default (bash starts
# background jobs with them ignored, and a daemon keeps an ignored signal).
# Run it with & : $! is then CMD's pid.
sb_bg() {
	exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# sb_mount_fg [args...]: the daemon with -f in the background; $SB_PID is it;
# its output (its log) in $SB_TMP/daemon.$SB_MOUNT_SEQ.out. SB_MOUNT_PATHS=0:
# no log directory and mountpoint on its command line (as sb_mount).
sb_mount_fg() {
	local out
	SB_MOUNT_SEQ=$((SB_MOUNT_SEQ + 1))
	out=$SB_TMP/daemon.$SB_MOUNT_SEQ.out
	sb_is_mounted "$SB_MNT" && sb_die "sb_mount_fg: $SB_MNT is already mounted"
	local paths=("$SB_LOG" "$SB_MNT")
	[ "${SB_MOUNT_PATHS:-1}" = 0 ] && paths=()
	sb_bg "$SB_BIN" -f "$@" "${paths[@]}" >"$out" 2>&1 </dev/null &
	SB_PID=$!
	SB_PIDS+=("$SB_PID")
	echo "$SB_PID case '$SB_CASE', args: -f $*" >>"$SB_TMP/daemons"
	local deadline=$((SECONDS + 10 * SB_SLOW))
	while ! sb_is_mounted "$SB_MNT"; do
		if ! sb_alive "$SB_PID"; then
			cat "$out" >&2
			sb_die "sb_mount_fg: the daemon exited before mounting"
		fi
		[ $SECONDS -ge $deadline ] && { cat "$out" >&2; sb_die "sb_mount_fg: no mount after $((10 * SB_SLOW)) s"; }
		sleep 0.05
	done
	timeout 10 mountpoint -q "$SB_MNT" || sb_die "sb_mount_fg: the mount does not answer"
}

# sb_wait_exit PID SECONDS: wait for a process (not necessarily our child).
sb_wait_exit() {
	local p=$1 deadline=$((SECONDS + $2))
	while sb_alive "$p"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
	return 0
}

# sb_umount: unmount $SB_MNT with fusermount3 -u and wait for the daemon.
sb_umount() {
	local p=$SB_PID
	if ! timeout 20 fusermount3 -u "$SB_MNT"; then
		assert_fail_now "fusermount3 -u $SB_MNT failed"
		sb_unmount_dir "$SB_MNT"
	fi
	if [ -n "$p" ] && ! sb_wait_exit "$p" $((20 * SB_SLOW)); then
		assert_fail_now "daemon $p did not exit within $((20 * SB_SLOW)) s of the unmount"
		kill -KILL "$p" 2>/dev/null
	fi
	[ -n "$p" ] && wait "$p" 2>/dev/null
	SB_PID=""
	sb_check_sanitizer
}

# sb_remount [args...]: unmount and mount again.
sb_remount() { sb_umount; sb_mount "$@"; }

sb_daemon_alive() { [ -n "$SB_PID" ] && sb_alive "$SB_PID"; }

# ---- running things ----------------------------------------------------

# t CMD...: CMD under a deadline, so that a hung mount cannot hang the test.
t() {
	local rc
	timeout -k 5 $((SB_T * SB_SLOW)) "$@"
	rc=$?
	[ $rc -eq 124 ] || [ $rc -eq 137 ] && sb_msg "TIMEOUT ($((SB_T * SB_SLOW)) s): $*"
	return $rc
}
# tsh 'SCRIPT' [ARGS]: a bash script under a deadline ($1.. are ARGS).
tsh() {
	local s=$1; shift
	t bash -c "$s" tsh "$@"
}

# The text strerror gives an errno name (EPERM -> "Operation not permitted").
sb_strerror() {
	python3 -c 'import errno,os,sys; print(os.strerror(getattr(errno, sys.argv[1])))' "$1"
}

# pyerr 'PYTHON' [ARGS]: run python (os, sys, errno imported; ARGS in
# sys.argv[1:]); prints OK, or the errno name of the OSError it raised.
pyerr() {
	local code=$1; shift
	t python3 -c '
import os, sys, errno
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
' "$code" "$@"
}

# ---- checks ------------------------------------------------------------

# Each case's line says when it started (seconds since the script began):
# where a script's time goes.
SB_T0=${EPOCHREALTIME/[.,]/}
case_() {
	local now=${EPOCHREALTIME/[.,]/}
	SB_CASE=$*
	sb_msg "== $SB_SCRIPT: $* [at $(((now - SB_T0) / 1000000)).$(((now - SB_T0) / 100000 % 10)) s]"
}

assert_fail_now() {
	SB_CHECKS=$((SB_CHECKS + 1))
	SB_FAILS=$((SB_FAILS + 1))
	sb_msg "FAIL [$SB_CASE]: $*"
}
pass_() { SB_CHECKS=$((SB_CHECKS + 1)); }

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	if [ "$1" == "$2" ]; then pass_; return 0; fi
	local e=$1 a=$2
	[ ${#e} -gt 300 ] && e="${e:0:300}... (${#1} chars)"
	[ ${#a} -gt 300 ] && a="${a:0:300}... (${#2} chars)"
	assert_fail_now "$3: expected [$e], got [$a]"
	return 1
}
assert_ne() {
	if [ "$1" != "$2" ]; then pass_; return 0; fi
	assert_fail_now "$3: expected something other than [$1]"
	return 1
}
# assert_true 'bash condition' WHAT
assert_true() {
	if eval "$1"; then pass_; return 0; fi
	assert_fail_now "$2 (condition: $1)"
	return 1
}
# assert_le A B WHAT (numbers, floats allowed)
assert_le() {
	if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$1" "$2"; then
		pass_; return 0
	fi
	assert_fail_now "$3: expected $1 <= $2"
	return 1
}

# assert_ok CMD...: CMD (under t) exits 0.
assert_ok() {
	local out rc
	out=$(t "$@" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then pass_; return 0; fi
	assert_fail_now "expected success of [$*], got exit $rc: $(printf '%s' "$out" | head -c 600)"
	return 1
}
# assert_sh_ok 'SCRIPT' [ARGS]: a bash script (under t) exits 0.
assert_sh_ok() {
	local out rc
	out=$(tsh "$@" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then pass_; return 0; fi
	assert_fail_now "expected success of [$1], got exit $rc: $(printf '%s' "$out" | head -c 600)"
	return 1
}

# assert_fail_with ERRNO[|ERRNO...] CMD...: CMD (under t) fails, and what it
# prints names the error (the strerror text, e.g. "Operation not permitted").
assert_fail_with() {
	local names=$1 out rc n txt ok=0 texts=()
	shift
	out=$(t "$@" 2>&1); rc=$?
	if [ $rc -eq 0 ]; then
		assert_fail_now "expected [$*] to fail with $names, but it succeeded${out:+: $(printf '%s' "$out" | head -c 300)}"
		return 1
	fi
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		assert_fail_now "expected [$*] to fail with $names, but it timed out"
		return 1
	fi
	for n in ${names//|/ }; do
		txt=$(sb_strerror "$n")
		texts+=("$txt")
		case "$out" in *"$txt"*) ok=1 ;; esac
	done
	if [ $ok -eq 1 ]; then pass_; return 0; fi
	assert_fail_now "expected [$*] to fail with $names (${texts[*]}), got exit $rc: $(printf '%s' "$out" | head -c 600)"
	return 1
}
# assert_sh_fail_with ERRNO 'SCRIPT' [ARGS]: the same for a bash script.
assert_sh_fail_with() {
	local names=$1; shift
	assert_fail_with "$names" bash -c "$1" tsh "${@:2}"
}

# assert_file_eq FILE EXPECTED-CONTENT WHAT (byte exact; content may end in \n)
assert_file_eq() {
	local f=$1 exp=$2 what=$3 tmp
	tmp=$(mktemp "$SB_TMP/exp.XXXXXX")
	printf '%s' "$exp" >"$tmp"
	if t cmp -s "$tmp" "$f"; then pass_; rm -f "$tmp"; return 0; fi
	assert_fail_now "$what: $f differs from the expected [$(printf '%q' "$exp" | head -c 200)]; it holds [$(t head -c 200 "$f" 2>&1 | od -c | head -5)]"
	rm -f "$tmp"
	return 1
}

# The number of directory entries (records) in a topic (ls, no dot files).
sb_count() { t ls "$1" | wc -l; }

# Record file name of an offset.
rec() { printf '%020d' "$1"; }

# sb_wait_until 'CONDITION' SECONDS: poll a bash condition (SECONDS may
# have a fraction). The clock is bash's own: no process per poll.
sb_wait_until() {
	local s=$2 frac=0 deadline
	[[ $s == *.* ]] && frac=${s#*.}
	frac=${frac}000000
	deadline=$((${EPOCHREALTIME/[.,]/} + ${s%%.*} * 1000000 + 10#${frac:0:6}))
	while ! eval "$1"; do
		[ "${EPOCHREALTIME/[.,]/}" -lt "$deadline" ] || return 1
		sleep 0.1
	done
	return 0
}

# A mount.ini in the temp dir from stdin; prints its path.
sb_ini() {
	local f=$SB_TMP/${1:-mount.ini}
	cat >"$f"
	printf '%s\n' "$f"
}

# A second mountpoint dir (also cleaned up).
sb_mkmnt() {
	local d=$SB_TMP/mnt.$1
	mkdir -p "$d"
	printf '%s\n' "$d"
}
