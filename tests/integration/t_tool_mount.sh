#!/usr/bin/env bash
# With the daemon: an fstab-style mount (the mount.fuse3 call that mount(8)
# makes for a fuse.streambusfs line with config=FILE, as /etc/fstab and the
# systemd unit do, with the example mount.ini); while mounted, a second daemon on the same
# LOG_DIR is refused and `streambus recover` refuses (the lock), while stat and
# verify read; after unmount, verify passes and dump shows what was written.
. "$(dirname "$0")/lib_tool.sh"
if [ ! -x "$SB_BUILD/streambusfs" ]; then
	echo "FAIL: $SB_BUILD/streambusfs is not built; nothing to mount (never skipped)" >&2
	exit 1
fi
export PATH="$SB_BUILD:$PATH"      # mount.fuse3 finds streambusfs in PATH
L=$T/log M=$T/mnt M2=$T/mnt2
mkdir -p "$L" "$M" "$M2"
umount_all() {
	local m
	for m in "$M" "$M2"; do
		# /proc/mounts, not mountpoint(1): a dead daemon's mount still counts
		if grep -q " $m fuse" /proc/mounts; then
			timeout 20 fusermount3 -u "$m" 2>/dev/null || timeout 20 umount -l "$m" 2>/dev/null || true
		fi
	done
}
sb_cleanup_hooks+=(umount_all)

# the installed example settings, pointing at this test's directories
sed -e "s|^log_dir = .*|log_dir = $L|" -e "s|^mountpoint = .*|mountpoint = $M|" \
	"$SB_TOP/docs/examples/mount.ini" >"$T/mount.ini"
# For the fstab line "LOG_DIR MOUNTPOINT fuse.streambusfs config=FILE 0 0",
# mount(8) runs exactly this helper command (with PATH reset to the system's,
# where an installed streambusfs is found; here PATH has the build's).
run_rc rc timeout 30 mount.fuse3 "$L" "$M" -o "rw,config=$T/mount.ini" -t fuse.streambusfs
eq "$rc" 0 "mount.fuse3 -t fuse.streambusfs ($out)"
mountpoint -q "$M" || fail "$M is not a mount point after mount returned"
grep -q " $M fuse.streambusfs " /proc/mounts || fail "type is not fuse.streambusfs: $(grep " $M " /proc/mounts)"

timeout 20 mkdir "$M/orders" || fail "mkdir topic"
timeout 20 bash -c "printf 'hello\nworld\n' >>'$M/orders/.log'" || fail "append"
timeout 20 bash -c "printf 'x' >'$M/orders/msg'" || fail "create"
eq "$(timeout 20 cat "$M/orders/00000000000000000001")" "world" "read back"

# a second daemon on the same LOG_DIR is refused, and says why
run_rc rc timeout 30 streambusfs -f "$L" "$M2"
[ "$rc" -ne 0 ] || fail "a second daemon started on a mounted LOG_DIR"
[ "$rc" -ne 124 ] || fail "a second daemon hung instead of refusing"
has "$out" "in use by process [0-9]+, which has it mounted on $M" "second daemon message"
mountpoint -q "$M2" && fail "second daemon mounted $M2"

# recover refuses while mounted; stat and verify read
run_rc rc timeout 30 "$SB" recover "$L"
eq "$rc" 2 "recover while mounted"
pid=$(head -1 "$L/.lock")
eq "$out" "streambus recover: $L: in use by process $pid, which has it mounted on $M; unmount it first" "recover refusal"
timeout 30 "$SB" stat "$L" orders 2>"$T/stat.err" >/dev/null || fail "stat while mounted"
eq "$(cat "$T/stat.err")" "" "stat while mounted: no warnings"
run_rc rc timeout 30 "$SB" stat "$L" orders
eq "$rc" 0 "stat while mounted ($out)"
has "$out" '^orders +0 +3 +3 ' "stat while mounted"

# verify reads while mounted; the newest segment's index (written when the
# segment closes) may be stale then, which is noted but not counted
run_rc rc timeout 60 "$SB" verify "$L"
eq "$rc" 0 "verify while mounted ($out)"
has "$out" "^$L: in use \(mounted\?\)" "verify notes the mount"
has "$out" '^orders: ok \(3 records' "verify while mounted summary"

# unmount: everything acknowledged is on disk, indexes included
timeout 30 fusermount3 -u "$M" || fail "unmount"
for i in $(seq 50); do [ -e "$L/.lock" ] && flock -n "$L/.lock" true && break; sleep 0.1; done
run_rc rc timeout 60 "$SB" verify "$L"
eq "$rc" 0 "verify after unmount ($out)"
out=$("$SB" dump "$L/orders")
eq "$(printf '%s\n' "$out" | sed -e 's/ time=[^ ]*//')" 'offset=0 key=- size=6 value="hello\n"
offset=1 key=- size=6 value="world\n"
offset=2 key="msg" size=1 value="x"' "dump after unmount"
run_rc rc timeout 30 "$SB" recover "$L"
eq "$out" "nothing to recover" "clean unmount leaves nothing to recover"
echo "t_tool_mount: ok"
