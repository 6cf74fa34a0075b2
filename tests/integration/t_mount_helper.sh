#!/usr/bin/env bash
# SPEC §1 under mount(8): after `cmake --install` into a temporary prefix
# (on no PATH), `mount -t fuse.streambusfs` and an fstab line (mount -T FILE)
# start the daemon (mount(8) runs /sbin/mount.fuse.streambusfs, the link the
# install makes); `mount -f` mounts nothing; under mount(8), and through
# mount.fuse3, only the config= file is read, never a ./mount.ini of the
# directory mount was run in (a hostile one with umask = 077 changes nothing).
# The test replaces /sbin/mount.fuse.streambusfs while it runs (under a lock,
# so that two runs do not fight over it) and puts back what was there.
. "$(dirname "$0")/lib.sh"
for tool in mount umount cmake flock; do
	command -v "$tool" >/dev/null || sb_die "missing tool: $tool"
done
[ "$(id -u)" = 0 ] || sb_die "mount(8) of a FUSE type needs root here (never skipped)"
dir=$(sed -n 's/^SB_MOUNT_HELPER_DIR:[A-Z]*=//p' "$SB_BUILD/CMakeCache.txt")
[ "$(readlink -f "${dir:-/sbin}")" = "$(readlink -f /sbin)" ] ||
	sb_die "$SB_BUILD installs the helper into $dir, where mount(8) does not look"
helper=/sbin/mount.fuse.streambusfs

exec 8>"${TMPDIR:-/tmp}/streambusfs-mount-helper.lock"
flock -w 600 8 || sb_die "another run holds the mount helper for 600 s"
saved=""
if [ -L "$helper" ] && [ -e "$helper" ]; then
	saved=$(readlink "$helper")
elif [ -e "$helper" ] && [ ! -L "$helper" ]; then
	cp -a "$helper" "$SB_TMP/helper.saved"
fi
restore_helper() {
	rm -f "$helper"
	if [ -n "$saved" ]; then
		ln -s "$saved" "$helper"
	elif [ -e "$SB_TMP/helper.saved" ]; then
		cp -a "$SB_TMP/helper.saved" "$helper"
	fi
}
SB_CLEANUP_HOOKS+=(restore_helper)

# mount(8) as a boot script or a shell in another directory runs it: a
# plain PATH (the sanitizer settings kept for SB_INTEGRATION_ASAN).
sysmount() {
	t env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${ASAN_OPTIONS:+"ASAN_OPTIONS=$ASAN_OPTIONS"} \
		${UBSAN_OPTIONS:+"UBSAN_OPTIONS=$UBSAN_OPTIONS"} "$@"
}
# after a mount by mount(8): the daemon is the pid in the lock note
took_mount() {
	SB_PID=$(head -1 "$SB_LOG/.lock" 2>/dev/null | tr -dc 0-9)
	[ -n "$SB_PID" ] && SB_PIDS+=("$SB_PID")
	echo "$SB_PID case '$SB_CASE', by mount(8)" >>"$SB_TMP/daemons"
}
# umount(8), then the daemon is gone
sysumount() {
	local p=$SB_PID
	sysmount umount "$SB_MNT" || assert_fail_now "umount $SB_MNT failed"
	sb_wait_exit "$p" $((20 * SB_SLOW)) || assert_fail_now "daemon $p still there after umount"
	SB_PID=""
	sb_check_sanitizer
}

H=$SB_TMP/hostile
mkdir -p "$H"
cat >"$H/mount.ini" <<EOF
; must never be read by mount(8)'s daemon
[mount]
umask = 077
list_log = true
EOF
ini=$(sb_ini conf.ini <<'EOF'
[mount]
umask = 027
EOF
)

case_ "cmake --install into a prefix on no PATH makes mount(8)'s helper"
P=$SB_TMP/prefix
t cmake --install "$SB_BUILD" --prefix "$P" >"$SB_TMP/install.log" 2>&1
assert_eq 0 "$?" "cmake --install --prefix $P ($(tail -3 "$SB_TMP/install.log"))"
assert_eq "$P/bin/streambusfs" "$(readlink "$helper")" "$helper links to the installed daemon"
assert_true '! (PATH=/usr/sbin:/usr/bin:/sbin:/bin; type -P streambusfs | grep -q "^$P")' "the prefix is on no PATH"

case_ "mount -t fuse.streambusfs -o config=FILE, run in a directory with a hostile ./mount.ini"
out=$(cd "$H" && sysmount mount -t fuse.streambusfs "$SB_LOG" "$SB_MNT" -o "config=$ini" 2>&1); rc=$?
assert_eq 0 "$rc" "mount -t fuse.streambusfs: exit status ($out)"
assert_true 'sb_is_mounted' "mounted as soon as mount(8) returned"
took_mount
assert_eq "fuse.streambusfs" "$(awk -v d="$SB_MNT" '$2 == d { print $3 }' /proc/self/mounts)" "the mount type"
assert_sh_ok 'mkdir "$1/t" && printf "a\nb\n" >> "$1/t/.log"' "$SB_MNT"
assert_eq 750 "$(t stat -c %a "$SB_MNT/t")" "the config= file is read (umask 027), not ./mount.ini (077)"
assert_eq $'a\nb' "$(t cat "$SB_MNT/t/.log")" "records through the mount(8) mount"
sysumount
assert_true '! sb_is_mounted' "umount(8) unmounted"

case_ "mount -t fuse.streambusfs without config=: the defaults, not ./mount.ini (right after the umount)"
out=$(cd "$H" && sysmount mount -t fuse.streambusfs "$SB_LOG" "$SB_MNT" 2>&1); rc=$?
assert_eq 0 "$rc" "mount right after umount: exit status ($out)"
took_mount
assert_eq 755 "$(t stat -c %a "$SB_MNT/t")" "default umask 022, not ./mount.ini's 077"
assert_true '! t ls -a "$SB_MNT/t" | grep -qx .log' "./mount.ini's list_log is not read"
assert_eq $'a\nb' "$(t cat "$SB_MNT/t/.log")" "records kept"
sysumount

case_ "an /etc/fstab line (mount -T FILE MOUNTPOINT), with cleanup=compact,delete among its options"
printf '%s %s fuse.streambusfs config=%s,cleanup=compact,delete,noatime 0 0\n' "$SB_LOG" "$SB_MNT" "$ini" >"$SB_TMP/fstab"
out=$(cd "$H" && sysmount mount -T "$SB_TMP/fstab" "$SB_MNT" 2>&1); rc=$?
assert_eq 0 "$rc" "mount -T fstab MOUNTPOINT: exit status ($out)"
took_mount
assert_eq 750 "$(t stat -c %a "$SB_MNT/t")" "the fstab line's config= file is read"
# compact: a digits name past the next offset is taken (a compacted topic has gaps)
assert_sh_ok 'mkdir "$1/c" && echo gap > "$1/c/00000000000000000007"' "$SB_MNT"
sysumount

case_ "mount -f (fake) mounts nothing"
out=$(cd "$H" && sysmount mount -f -t fuse.streambusfs "$SB_LOG" "$SB_MNT" 2>&1); rc=$?
assert_eq 0 "$rc" "mount -f: exit status ($out)"
sleep 0.2
assert_true '! sb_is_mounted' "mount -f mounted nothing"
assert_eq "" "$(sb_daemon_pids)" "mount -f started no daemon"

case_ "mount(8) with a LOG_DIR that does not exist fails, naming it, creating nothing"
out=$(cd "$H" && sysmount mount -t fuse.streambusfs "$SB_TMP/typo" "$SB_MNT" 2>&1); rc=$?
assert_ne 0 "$rc" "mount of a missing LOG_DIR: exit status"
assert_true '[[ "$out" == *"$SB_TMP/typo"* ]]' "the message names the LOG_DIR: [$out]"
assert_true '[ ! -e "$SB_TMP/typo" ]' "nothing created"
assert_true '! sb_is_mounted' "nothing mounted"

case_ "through mount.fuse3 (mount(8) without the link): ./mount.ini is not read either"
m3=$(command -v mount.fuse3 || echo /sbin/mount.fuse3)
out=$(cd "$H" && PATH="$SB_BUILD:/usr/sbin:/usr/bin:/sbin:/bin" t "$m3" "$SB_LOG" "$SB_MNT" -t fuse.streambusfs -o cleanup=compact,delete 2>&1); rc=$?
assert_eq 0 "$rc" "mount.fuse3 LOG_DIR MOUNTPOINT -t fuse.streambusfs -o cleanup=compact,delete: exit status ($out)"
took_mount
assert_eq 755 "$(t stat -c %a "$SB_MNT/t")" "mount.fuse3: default umask, not ./mount.ini's"
assert_sh_ok 'echo gap > "$1/c/00000000000000000009"' "$SB_MNT"
sb_umount
