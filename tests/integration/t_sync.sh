#!/usr/bin/env bash
# SPEC §1 Settings, sync: the daemon applies what it parses. A SIGKILL keeps
# the page cache, so `always` and `never` look alike after a crash of the
# daemon: count the daemon's fdatasync/fsync calls with strace instead.
# Under sync=always every acknowledged append waits for one (N appends from
# one writer: at least N); under never, appends make none. The same with
# [log] sync in mount.ini, and with a [topic:NAME] sync override.
. "$(dirname "$0")/lib.sh"

N=${SB_SYNC_APPENDS:-30}
command -v strace >/dev/null || sb_die "strace is missing (tools/packages.txt)"

# syncs_during TOPIC: append N records to TOPIC (one write each) with strace
# attached to every thread of the daemon; prints the fdatasync/fsync count.
syncs_during() {
	local topic=$1 out=$SB_TMP/strace.$1.out spid i
	: >"$out"
	strace -f -qq -e trace=fdatasync,fsync -o "$out" -p "$SB_PID" 2>"$out.err" &
	spid=$!
	# attached: the daemon's main thread names strace as its tracer
	sb_wait_until '[ "$(awk "/^TracerPid:/ { print \$2 }" /proc/$SB_PID/status)" = "$spid" ]' $((10 * SB_SLOW)) ||
		{ cat "$out.err" >&2; kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; sb_die "strace did not attach to $SB_PID"; }
	sleep 0.2 # every thread attached (strace -p attaches them in turn)
	for i in $(seq "$N"); do
		echo "record $i" >>"$SB_MNT/$topic/.log" || assert_fail_now "append $i to $topic failed"
	done
	kill -INT "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	grep -cE '(^|[[:space:]])f(data)?sync\(' "$out"
}

check_policy() { # WHAT TOPIC POLICY
	local what=$1 topic=$2 policy=$3 n
	assert_sh_ok 'mkdir -p "$1"' "$SB_MNT/$topic"
	n=$(syncs_during "$topic")
	sb_msg "   $topic: $n fdatasync/fsync calls during $N appends"
	case $policy in
	always) assert_true "[ $n -ge $N ]" "$what: $n fdatasyncs for $N appends to $topic under sync=always" ;;
	never)  assert_true "[ $n -le 2 ]" "$what: $n fdatasyncs for $N appends to $topic under sync=never" ;;
	esac
	assert_eq "$N" "$(sb_count "$SB_MNT/$topic")" "$what: records in $topic"
}

case_ "-o sync=always: every append is synced"
sb_mount -o sync=always
check_policy "-o sync=always" a1 always
sb_umount

case_ "-o sync=never: appends are not synced"
sb_mount -o sync=never
check_policy "-o sync=never" n1 never
sb_umount

case_ "[log] sync = always in mount.ini"
ini=$(printf '[log]\nsync = always\n' | sb_ini sync_always.ini)
sb_mount -c "$ini"
check_policy "mount.ini sync=always" a2 always
sb_umount

case_ "[topic:NAME] sync overrides the default for that topic only"
ini=$(printf '[log]\nsync = never\n[topic:hot]\nsync = always\n[topic:cold]\nsync = never\n' | sb_ini sync_topic.ini)
sb_mount -c "$ini"
check_policy "[topic:hot] sync=always" hot always
check_policy "[topic:cold] sync=never" cold never
check_policy "default sync=never" other never
sb_umount

case_ "-o sync=never wins over [log] sync = always; [topic:hot2] still always"
ini=$(printf '[log]\nsync = always\n[topic:hot2]\nsync = always\n' | sb_ini sync_cmd.ini)
sb_mount -c "$ini" -o sync=never
check_policy "-o sync=never over the file" plain never
check_policy "[topic:hot2] over -o" hot2 always
sb_umount
