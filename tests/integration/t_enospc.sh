#!/usr/bin/env bash
# SPEC §3: a full disk fails with ENOSPC and loses nothing already
# acknowledged; the daemon stays up, and the log is whole after a remount.
# The log dir is a small tmpfs.
. "$(dirname "$0")/lib.sh"
M=$SB_MNT
mkdir -p "$SB_TMP/small"
mount -t tmpfs -o size=8m tmpfs "$SB_TMP/small" || sb_die "cannot mount a tmpfs (root needed)"
SB_LOG=$SB_TMP/small/log
mkdir "$SB_LOG"

cat >"$SB_TMP/fill.py" <<'EOF2'
import errno, os, sys
kind, topic, ackpath, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ack = open(ackpath, "w", buffering=1)
log = os.path.join(topic, ".log")
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
i = 0
err = "none"
try:
    while i < limit:
        if kind == "line":
            line = b"%07d %s\n" % (i, b"L" * 990)
            if os.write(fd, line) != len(line):
                raise OSError(0, "short write")
        else:
            line = b"%07d %s\n" % (i, b"F" * 3000)
            f = os.open(os.path.join(topic, "f%d" % i), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.write(f, line)
            finally:
                os.close(f)
        ack.write(line.decode())
        i += 1
except OSError as e:
    err = errno.errorcode.get(e.errno, str(e.errno))
print(err, i)
EOF2

for kind in line file; do
	case_ "appending ($kind) to a full disk fails with ENOSPC; nothing acknowledged is lost"
	sb_mount -o segment_bytes=1048576,sync=always
	mkdir "$M/$kind" || sb_die mkdir
	out=$(SB_T=120 t python3 "$SB_TMP/fill.py" "$kind" "$M/$kind" "$SB_TMP/$kind.ack" 20000)
	assert_eq ENOSPC "${out%% *}" "the error of the write that did not fit ($out)"
	acked=$(wc -l <"$SB_TMP/$kind.ack")
	assert_true '[ "$acked" -gt 100 ]' "some records went in before the disk was full ($acked)"
	assert_true 'sb_daemon_alive' "the daemon survives a full disk"
	assert_true 't cmp "$SB_TMP/$kind.ack" "$M/$kind/.log"' "the log holds exactly the acknowledged records"
	assert_eq "$acked" "$(sb_count "$M/$kind")" "one record per acknowledged write"
	# bigger than the write that failed: a smaller one may still fit
	assert_sh_fail_with ENOSPC 'printf "%07999d\n" 1 >> "$1"' "$M/$kind/.log"
	assert_eq "$acked" "$(sb_count "$M/$kind")" "nothing appended by the refused write"
	sb_umount
	sb_mount -o segment_bytes=1048576
	assert_true 't cmp "$SB_TMP/$kind.ack" "$M/$kind/.log"' "after a remount the log still holds exactly the acknowledged records"
	# make room for the next round
	assert_ok rm -r "$M/$kind"
	sb_umount
done
