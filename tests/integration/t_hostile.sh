#!/usr/bin/env bash
# Hostile input through the mount (issue 8 item 7): random byte strings as
# topic names (non-UTF-8, newline, '.', '..', leading dot, 249/250/255/256
# bytes) and as keys of created files; random and malformed record names
# (negative, 2^64, 21+ digits, '+', spaces); symlink, mknod, rename, link,
# truncate, chmod, chown, utime, fallocate, setxattr and removexattr of
# records, .log, topics and the root; a line of SB_HOSTILE_MB MiB (default
# 10) without a newline, the same as one write and as a created file;
# SB_HOSTILE_HANDLES (default 3000) handles open at once; an unprivileged
# user under allow_other with umask=077 and with owner=. Each case checks
# the exact errno (hostile.py), that the daemon is still alive, and at the
# end that `streambus verify` passes on the log directory.
# Covered elsewhere, not repeated: 10,000 topics, mkdir/rmdir races and rm -r
# under tail -f (t_topics.sh, SB_TOPICS=10000); EFBIG at the 1 KiB edge,
# rename/link/truncate of records (t_write.sh); attributes of records
# (t_restore.sh). SB_HOSTILE_N (default 200) random names per case;
# SB_HOSTILE_SEED fixes the random names (the seed is printed).
. "$(dirname "$0")/lib.sh"

N=${SB_HOSTILE_N:-200}
MB=${SB_HOSTILE_MB:-10}
HANDLES=${SB_HOSTILE_HANDLES:-3000}
export SB_HOSTILE_SEED=${SB_HOSTILE_SEED:-$RANDOM$RANDOM}
sb_msg "$SB_SCRIPT: seed $SB_HOSTILE_SEED (SB_HOSTILE_SEED=$SB_HOSTILE_SEED to repeat)"
PY=$SB_TOP/tests/integration/hostile.py
SB=$SB_BUILD/streambus
[ -x "$SB" ] || sb_die "no tool at $SB (build it first)"
OTHER=4242

# hostile CASE ARGS...: run one group of hostile.py under a deadline; every
# PASS line is a passed check, every FAIL line a failed one.
hostile() {
	local line outp rc
	outp=$(timeout -k 5 $((120 * SB_SLOW)) python3 "$PY" "$@" 2>&1); rc=$?
	while IFS= read -r line; do
		case "$line" in
		PASS*) pass_ ;;
		FAIL*) assert_fail_now "${line#FAIL }" ;;
		INFO*) sb_msg "  ${line#INFO }" ;;
		"") ;;
		*) sb_msg "  hostile.py: $line" ;;
		esac
	done <<<"$outp"
	assert_eq 0 "$rc" "hostile.py $1 exit status"
	assert_true 'sb_daemon_alive' "the daemon is alive after hostile.py $1"
	assert_true 't mountpoint -q "$SB_MNT"' "the mount answers after hostile.py $1"
}

# 20 records r0..r19 in topic h
sb_mount -o max_record_bytes=1048576
mkdir "$SB_MNT/h" || sb_die "mkdir h"
tsh 'for i in $(seq 0 19); do echo "r$i"; done >> "$1/h/.log"' "$SB_MNT" || sb_die "appending to h"

case_ "mkdir of $N random and hostile topic names"
hostile topics "$SB_MNT" "$N"

case_ "lookups of $N random and malformed record names"
hostile records "$SB_MNT" h 20 "$N"

case_ "symlink, mknod, rename, link, unlink, truncate, chmod, chown, utime, fallocate, xattrs"
hostile ops "$SB_MNT" h

case_ "files created under $N random byte names: one record each, keyed by the bytes (decoded as .keys/ names)"
mkdir "$SB_MNT/k" || sb_die "mkdir k"
hostile keys "$SB_MNT" k "$N"

case_ "a $MB MiB line without a newline, one write of $MB MiB, a $MB MiB file: EFBIG, nothing appended"
hostile bigline "$SB_MNT" h "$MB"

case_ "digits names in an empty topic that do not fit an offset"
mkdir "$SB_MNT/e" || sb_die "mkdir e"
for n in 18446744073709551616 99999999999999999999 123456789012345678901; do
	assert_sh_fail_with 'EPERM|EINVAL|ENAMETOOLONG' 'echo x > "$1"' "$SB_MNT/e/$n"
done
assert_eq "" "$(t ls "$SB_MNT/e")" "nothing appended to the empty topic"
# the mount names offsets below 2^40 - 16 (inode numbers; fs/fs.h
# SBFS_MAX_OFFSET): one past is refused, the last one may start a topic,
# and an append after it has no offset to take
max=$(((1 << 40) - 17))
assert_sh_fail_with 'EPERM' 'echo x > "$1"' "$SB_MNT/e/$((max + 1))"
assert_sh_ok 'echo last > "$1"' "$SB_MNT/e/$max"
assert_eq "$(rec $max)" "$(t ls "$SB_MNT/e")" "the first offset set to the last one the mount names"
assert_sh_fail_with EOVERFLOW 'echo past >> "$1"' "$SB_MNT/e/.log"
assert_sh_fail_with EPERM 'echo past > "$1"' "$SB_MNT/e/$((max + 1))"
# (the error comes at the close, which a shell's redirection ignores)
assert_eq EOVERFLOW "$(pyerr 'fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY); os.write(fd, b"past\n"); os.close(fd)' "$SB_MNT/e/key")" "a created file past the last offset, at its close"
assert_fail_with ENOENT stat "$SB_MNT/e/key"
assert_eq "$(rec $max)" "$(t ls "$SB_MNT/e")" "nothing past the last offset"
assert_file_eq "$SB_MNT/e/.log" $'last\n' ".log of the topic at the end of the offsets"
assert_file_eq "$SB_MNT/e/$max" $'last\n' "the last record, unpadded"
assert_true 'sb_daemon_alive' "the daemon is alive"

case_ "$HANDLES handles open at once on records, .log and the topic"
ulimit -n $((HANDLES + 200)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
hostile handles "$SB_MNT" h 20 "$HANDLES"
sb_umount

case_ "an unprivileged user under allow_other,umask=077: EACCES everywhere"
chmod 755 "$SB_TMP"   # mktemp -d made it 0700: let the other user reach the mount
sb_mount -o allow_other=true,umask=077
hostile perm "$SB_MNT" h "$OTHER" other
assert_eq 700 "$(t stat -c %a "$SB_MNT/h")" "topic mode under umask 077"
assert_eq r0 "$(t head -n 1 "$SB_MNT/h/.log")" "root (the owner) still reads"
sb_umount

case_ "the owner= user under allow_other,umask=077: what the owner bits allow"
sb_mount -o allow_other=true,umask=077,owner=$OTHER,group=$OTHER
hostile perm "$SB_MNT" h "$OTHER" owner
assert_eq 1 "$(t grep -c '^by-owner$' "$SB_MNT/h/.log")" "the owner's append is in .log"
sb_umount

case_ "streambus verify passes after all of it"
out=$(t "$SB" verify "$SB_LOG" 2>&1); rc=$?
assert_eq 0 "$rc" "streambus verify exit status: $(printf '%s' "$out" | tail -5)"
