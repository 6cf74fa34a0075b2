#!/usr/bin/env bash
# SPEC §3, §5: a full disk fails every append with ENOSPC and loses nothing
# acknowledged; on a full disk `rm` of the oldest records and `rm -r` of a
# topic still work and free their space, so that appends succeed again
# without help from outside the mount; afterwards `streambus verify` passes
# and a remount holds every acknowledged record exactly once. For each sync
# policy, on a small tmpfs that the test mounts (lib.sh unmounts it at exit).
#   SB_FULLDISK_SEED=N     the random workload (default: random, printed)
#   SB_FULLDISK_ROUNDS=N   fill/rm rounds per policy (default 1)
#   SB_FULLDISK_POLICIES   default "never interval always"
. "$(dirname "$0")/lib.sh"
M=$SB_MNT
PY=$SB_TOP/tests/integration/fulldisk.py
SEED=${SB_FULLDISK_SEED:-$RANDOM}
ROUNDS=${SB_FULLDISK_ROUNDS:-1}
sb_msg "t_fulldisk: seed $SEED (SB_FULLDISK_SEED=$SEED reproduces it)"
SMALL=$SB_TMP/small
mkdir -p "$SMALL"
export SB_T=120

fd() { t python3 "$PY" "$@"; }

# fill STATE MNT SEED TOPIC...: fill until not even one byte fits; every
# error is ENOSPC.
fill() {
	local out f
	out=$(fd fill "$@")
	[ -n "${SB_FULLDISK_VERBOSE:-}" ] && sb_msg "fill: $out"
	read -r -a f <<<"$out"
	assert_eq ENOSPC "${f[0]}" "the append that did not fit fails with ENOSPC ($out)"
	assert_true "[ '${f[1]:-0}' -gt 50 ]" "records went in before the disk was full ($out)"
	assert_true "[ '${f[2]:-1}' -lt 262144 ]" "the disk is full ($out)"
	# (a small one may fit: a failed roll cuts the preallocated tail)
	assert_eq "" "$(printf '%s\n' "${f[@]:3}" | grep -vxE 'ENOSPC|OK')" "later small appends (lines, files) and mkdir fit or fail with ENOSPC ($out)"
}

# check STATE TOPIC WHEN: the topic holds exactly the acknowledged records.
check() {
	assert_eq OK "$(fd check "$1" "$M" "$2")" "$3: $2 holds every acknowledged record, once"
}

for pol in ${SB_FULLDISK_POLICIES:-never interval always}; do
	mount -t tmpfs -o size=16m tmpfs "$SMALL" || sb_die "cannot mount a tmpfs (root needed)"
	SB_LOG=$SMALL/log
	mkdir "$SB_LOG"
	ST=$SB_TMP/state.$pol
	opts=segment_bytes=1048576,sync=$pol,sync_interval_ms=200
	case_ "sync=$pol: fill the disk, rm the oldest records, append again"
	sb_mount -o "$opts"
	mkdir "$M/a" "$M/b" || sb_die mkdir
	for r in $(seq "$ROUNDS"); do
		fill "$ST" "$M" "$((SEED + r))" a b
		check "$ST" a "full disk"
		check "$ST" b "full disk"
		if [ "$r" = 1 ]; then
			# unmount and mount again on the full disk: nothing lost, no
			# error (the indexes that do not fit are rebuilt in memory)
			sb_umount
			sb_mount -o "$opts"
			check "$ST" a "remounted on a full disk"
			check "$ST" b "remounted on a full disk"
			# (closing cut the preallocated tails: a small record may fit)
			out=$(fd append "$ST" "$M" a)
			assert_true '[[ "$out" =~ ^(OK|line\ ENOSPC|file\ ENOSPC)$ ]]' \
				"an append on the remounted full disk fits or fails with ENOSPC ($out)"
		fi
		read -r -a f <<<"$(fd rmold "$ST" "$M" a)"
		[ -n "${SB_FULLDISK_VERBOSE:-}" ] && sb_msg "rmold: ${f[*]}"
		assert_true "[ '${f[3]:-0}' -gt 0 ]" "rm of the oldest records frees space (${f[*]})"
		assert_eq OK "$(fd append "$ST" "$M" a)" "appends succeed again after rm"
		assert_eq OK "$(fd append "$ST" "$M" b)" "appends to another topic succeed again after rm"
		check "$ST" a "after rm"
	done

	case_ "sync=$pol: rm -r of a topic on a full disk"
	fill "$ST" "$M" "$((SEED + 1000))" a b
	before=$(fd avail "$M")
	assert_ok rm -r "$M/b"
	fd drop "$ST" b
	assert_true '[ ! -e "$M/b" ]' "the topic is gone"
	after=$(fd avail "$M")
	assert_true '[ "$after" -gt $((before + 1048576)) ]' "rm -r frees the topic's space ($before -> $after)"
	assert_eq OK "$(fd append "$ST" "$M" a)" "appends succeed again after rm -r"
	assert_ok mkdir "$M/c"
	assert_eq OK "$(fd append "$ST" "$M" c)" "a new topic takes appends"
	check "$ST" a "after rm -r"
	assert_true 'sb_daemon_alive' "the daemon survives a full disk"
	sb_umount
	assert_true '! grep -q "removing records" "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"' \
		"no failed removal in the daemon's log ($(grep -m1 'removing records' "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"))"

	case_ "sync=$pol: verify, remount: every acknowledged record exactly once"
	out=$(t "$SB_BUILD/streambus" verify "$SB_LOG" 2>&1)
	assert_eq 0 $? "streambus verify passes after a full disk: $(printf '%s' "$out" | tail -5)"
	sb_mount -o "$opts"
	for x in a c; do check "$ST" $x "after a remount"; done
	assert_eq OK "$(fd empty "$ST" "$M")" "the topics made on the almost full disk are there, empty"
	assert_true '[ ! -e "$M/y$((SEED + 1))" ]' "a topic whose mkdir failed does not appear"
	assert_true '[ ! -e "$M/b" ]' "the removed topic stays removed"
	sb_umount
	umount "$SMALL" || sb_die "cannot unmount the tmpfs"
done
