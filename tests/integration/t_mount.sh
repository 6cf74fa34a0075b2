#!/usr/bin/env bash
# SPEC §1 Mounting: --help/--version, detaching once ready, -f, -d, unmount
# by fusermount3/umount/SIGTERM/SIGINT keeping everything, remount, fstab.
. "$(dirname "$0")/lib.sh"

case_ "--help prints the usage and exits 0"
out=$(t "$SB_BIN" --help 2>&1); rc=$?
assert_eq 0 "$rc" "streambusfs --help exit status"
assert_true '[[ "$out" == *sage* ]]' "--help prints a usage line: $out"
for w in -c -f -d -o LOG_DIR MOUNTPOINT; do
	assert_true '[[ "$out" == *"$w"* ]]' "--help mentions $w"
done
assert_true '! sb_is_mounted' "--help mounts nothing"

case_ "--version prints the version and exits 0"
out=$(t "$SB_BIN" --version 2>&1); rc=$?
assert_eq 0 "$rc" "streambusfs --version exit status"
assert_true '[[ "$out" =~ [0-9]+\.[0-9]+\.[0-9]+ ]]' "--version prints x.y.z: [$out]"
assert_true '! sb_is_mounted' "--version mounts nothing"

case_ "without -f the daemon detaches once the mount is ready"
t "$SB_BIN" "$SB_LOG" "$SB_MNT" >"$SB_TMP/detach.out" 2>&1 </dev/null; rc=$?
assert_eq 0 "$rc" "streambusfs LOG MNT exit status ($(cat "$SB_TMP/detach.out"))"
# No waiting: the mount must be usable the moment the command returned.
assert_true 'sb_is_mounted' "mounted as soon as the command returned"
assert_sh_ok 'mkdir "$SB_MNT/first" && echo hello >> "$SB_MNT/first/.log" && cat "$SB_MNT/first/00000000000000000000"'
SB_PID=$(sb_daemon_pids | head -1)
assert_ne "" "$SB_PID" "a daemon process runs after the command returned"
if [ -n "$SB_PID" ]; then
	SB_PIDS+=("$SB_PID")
	ppid=$(ps -o ppid= -p "$SB_PID" | tr -d ' ')
	assert_ne "$$" "$ppid" "the daemon is not a child of the shell that started it"
	sid=$(ps -o sid= -p "$SB_PID" | tr -d ' ')
	assert_ne "$(ps -o sid= -p $$ | tr -d ' ')" "$sid" "the daemon left the caller's session"
fi
assert_file_eq "$SB_MNT/first/00000000000000000000" $'hello\n' "record 0 after detach"

case_ "fusermount3 -u unmounts and the daemon exits"
sb_umount
assert_true '! sb_is_mounted' "not mounted after fusermount3 -u"
assert_eq "" "$(sb_daemon_pids)" "no daemon left after fusermount3 -u"
assert_true '[ -d "$SB_LOG/first" ]' "the topic is a directory of the log dir"

case_ "a daemon that dies right after mounting: the start fails (exit 1) and leaves no dead mount"
# A shim, preloaded into the daemon only, that makes it exit where it would
# start serving (after the mount, before answering anything): a real early
# death, without a hook in the daemon.
cat >"$SB_TMP/die.c" <<'EOF'
#include <unistd.h>
int fuse_session_loop_mt_32(void *se, void *cfg) { (void)se; (void)cfg; _exit(3); }
int fuse_session_loop_mt_31(void *se, int clone_fd) { (void)se; (void)clone_fd; _exit(3); }
int fuse_session_loop_mt(void *se, void *cfg) { (void)se; (void)cfg; _exit(3); }
EOF
cc -shared -fPIC -o "$SB_TMP/die.so" "$SB_TMP/die.c" || sb_die "cannot build the shim"
for i in 1 2 3; do
	# (ASan wants to come first in the library list: let the shim first.)
	LD_PRELOAD=$SB_TMP/die.so ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		t "$SB_BIN" "$SB_LOG" "$SB_MNT" >"$SB_TMP/die.out" 2>&1 </dev/null
	rc=$?
	assert_eq 1 "$rc" "exit status of a start whose daemon died after mounting ($(cat "$SB_TMP/die.out"))"
	assert_true 'grep -q "did not serve" "$SB_TMP/die.out"' "the start says so: $(cat "$SB_TMP/die.out")"
	assert_true '! sb_is_mounted' "no dead mount left behind (try $i)"
	sb_is_mounted && { fusermount3 -u "$SB_MNT" || umount -l "$SB_MNT"; } 2>/dev/null
	assert_eq "" "$(sb_daemon_pids)" "no daemon left (try $i)"
done
# and a start without the shim works as before
sb_mount
assert_sh_ok 'cat "$SB_MNT/first/00000000000000000000" >/dev/null'
sb_umount

case_ "unmount and remount keep everything"
sb_mount
assert_sh_ok 'mkdir "$SB_MNT/second" && printf "a\nb\nc\n" >> "$SB_MNT/second/.log" && echo d >> "$SB_MNT/first/.log"'
before=$(cd "$SB_MNT" && t cat first/.log second/.log; t ls -R)
ino_before=$(t stat -c '%n %i %s' "$SB_MNT"/first/* "$SB_MNT"/second/*)
sb_remount
after=$(cd "$SB_MNT" && t cat first/.log second/.log; t ls -R)
assert_eq "$before" "$after" "listing and content after remount"
assert_eq "$ino_before" "$(t stat -c '%n %i %s' "$SB_MNT"/first/* "$SB_MNT"/second/*)" "names, inodes, sizes after remount"
assert_sh_ok 'echo e >> "$SB_MNT/second/.log"'
assert_file_eq "$SB_MNT/second/00000000000000000003" $'e\n' "an append after remount continues the offsets"

case_ "SIGTERM unmounts and everything acknowledged is on disk"
assert_sh_ok 'for i in $(seq 1 200); do echo "term-$i"; done >> "$SB_MNT/second/.log"'
exp=$(t cat "$SB_MNT/second/.log")
kill -TERM "$SB_PID"
sb_wait_exit "$SB_PID" $((20 * SB_SLOW)) || assert_fail_now "daemon did not exit after SIGTERM"
assert_true '! sb_is_mounted' "SIGTERM unmounted $SB_MNT"
segs=$(ls "$SB_LOG/second"/*.seg 2>/dev/null | wc -l)
idxs=$(ls "$SB_LOG/second"/*.idx 2>/dev/null | wc -l)
assert_true '[ "$segs" -ge 1 ] && [ "$idxs" -eq "$segs" ]' "segments and their indexes on disk after SIGTERM (seg $segs, idx $idxs)"
SB_PID=""
sb_mount
assert_eq "$exp" "$(t cat "$SB_MNT/second/.log")" ".log after SIGTERM and remount"
assert_eq 204 "$(sb_count "$SB_MNT/second")" "records after SIGTERM and remount"

case_ "umount(8) unmounts too"
t umount "$SB_MNT"; rc=$?
assert_eq 0 "$rc" "umount exit status"
sb_wait_exit "$SB_PID" $((20 * SB_SLOW)) || assert_fail_now "daemon did not exit after umount"
assert_true '! sb_is_mounted' "not mounted after umount"
SB_PID=""

case_ "-f stays in the foreground; SIGINT unmounts, exit status 0"
sb_mount_fg
assert_true 'kill -0 $SB_PID' "the -f daemon is our background job"
assert_sh_ok 'echo fg >> "$SB_MNT/first/.log"'
kill -INT "$SB_PID"
sb_wait_exit "$SB_PID" $((20 * SB_SLOW)) || assert_fail_now "-f daemon did not exit after SIGINT"
wait "$SB_PID"; rc=$?
assert_eq 0 "$rc" "exit status of the -f daemon after SIGINT"
assert_true '! sb_is_mounted' "SIGINT unmounted"
SB_PID=""

case_ "-f with fusermount3 -u: the daemon exits 0"
sb_mount_fg
pid=$SB_PID
sb_umount
wait "$pid"; rc=$?
assert_eq 0 "$rc" "exit status of the -f daemon after fusermount3 -u"
sb_mount
assert_eq $'hello\nd\nfg' "$(t cat "$SB_MNT/first/.log")" "append made under -f is kept"
sb_umount

case_ "-d adds FUSE debug output"
sb_bg "$SB_BIN" -d "$SB_LOG" "$SB_MNT" >"$SB_TMP/debug.out" 2>&1 </dev/null &
SB_PID=$!; SB_PIDS+=("$SB_PID")
sb_wait_mounted "$SB_MNT" $((10 * SB_SLOW)) || assert_fail_now "-d: no mount"
t ls "$SB_MNT" >/dev/null
sleep 0.3
assert_true 'kill -0 $SB_PID' "-d stays in the foreground"
assert_true 'grep -Eqi "unique|opcode|INIT|LOOKUP|GETATTR" "$SB_TMP/debug.out"' "-d prints FUSE requests ($(head -c 300 "$SB_TMP/debug.out"))"
sb_umount

case_ "fstab: mount.fuse3 LOG MNT -t streambusfs -o config=INI (what mount -t fuse.streambusfs runs)"
ini=$(sb_ini fstab.ini <<'EOF'
[mount]
list_log = true
EOF
)
# mount(8) runs mount.fuse3 with a sanitized PATH, where an uninstalled
# build is not found; call the helper mount(8) would call, as mount does.
out=$(PATH="$SB_BUILD:$PATH" t mount.fuse3 "$SB_LOG" "$SB_MNT" -t streambusfs -o "rw,nodev,config=$ini" 2>&1); rc=$?
assert_eq 0 "$rc" "mount.fuse3 LOG MNT -t streambusfs -o config=INI exit status ($out)"
if sb_is_mounted; then
	SB_PID=$(sb_daemon_pids | head -1)
	[ -n "$SB_PID" ] && SB_PIDS+=("$SB_PID")
	assert_eq "fuse.streambusfs" "$(awk -v d="$SB_MNT" '$2 == d { print $3 }' /proc/self/mounts)" "the mount type in /proc/mounts"
	assert_true 't ls -a "$SB_MNT/first" | grep -qx .log' "the config= file was read (list_log = true lists .log)"
	assert_eq $'hello\nd\nfg' "$(t cat "$SB_MNT/first/.log")" "content through the fstab-style mount"
	sb_umount
fi

case_ "more topics than open files allowed: refused with a hint, nothing mounted"
# Every segment file of every topic stays open (an empty topic has one).
for i in $(seq 1 300); do mkdir -p "$SB_LOG/many$i"; done
out=$(ulimit -n 128; t "$SB_BIN" "$SB_LOG" "$SB_MNT" 2>&1 </dev/null); rc=$?
assert_ne 0 "$rc" "the mount fails"
assert_true 'grep -q "raise the limit of open files" <<<"$out"' "the message says what to do: $(tail -1 <<<"$out")"
assert_true '! sb_is_mounted "$SB_MNT"' "nothing is mounted"
for i in $(seq 1 300); do rmdir "$SB_LOG/many$i" 2>/dev/null || rm -rf "$SB_LOG/many$i"; done

case_ "one topic of more segments than open files allowed: the hint says a descriptor per segment"
sb_mount -o segment_bytes=4096
mkdir "$SB_MNT/segs" || assert_fail_now "mkdir segs"
tsh 'for i in $(seq 150); do printf "%04000d\n" "$i" >> "$1/segs/.log" || exit 1; done' "$SB_MNT" ||
	assert_fail_now "the appends"
sb_umount
assert_true '[ "$(ls "$SB_LOG/segs" | grep -c "\.seg$")" -ge 140 ]' "150 segments ($(ls "$SB_LOG/segs" | grep -c "\.seg$"))"
out=$(ulimit -n 128; t "$SB_BIN" "$SB_LOG" "$SB_MNT" 2>&1 </dev/null); rc=$?
assert_ne 0 "$rc" "the mount fails"
assert_true 'grep -q "every segment file of every topic stays open, a descriptor each: raise the limit of open files" <<<"$out"' \
	"the message says why and what to do: $(tail -1 <<<"$out")"
assert_true '! sb_is_mounted "$SB_MNT"' "nothing is mounted"
rm -rf "$SB_LOG/segs"
