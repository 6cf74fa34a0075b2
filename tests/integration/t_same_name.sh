#!/usr/bin/env bash
# Several processes and one name (README: "another writer of the name writes
# a record of its own"; SPEC §3: a close that returns success has its record
# in the log). Found by an exploratory tester (tests/explore8/):
#   - a rename (mv, rsync's and editors' temp files) onto a name another
#     process is writing dropped that writer's acknowledged record;
#   - an open of a name without a write (touch) beside a writer of the name
#     left no record about half the time;
#   - fstat of a file opened while another process wrote its name failed
#     ENOENT once that one's record was in (cp: "cannot fstat", and its
#     close appended an empty record all the same);
#   - open(O_CREAT) of a name others write failed ENOENT about one time in
#     five (the kernel's lookup found another's file, a record by the open);
#   - files held under temporary names were appended, at their hold's end
#     or at the unmount, in the reverse order of their closes.
# And a review's: a GETATTR of a stale inode of a file being created waited
# (up to 1 s) while any other file's last append was under way.
# SB_SAME_NAME_SECONDS (default 3): how long the generated case runs.
SB_TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
SB_TOOL=$SB_BUILD/streambus

sb_mount -o sync=never
M=$SB_MNT
mkdir "$M/t" "$M/e" "$M/c" "$M/g" || sb_die "mkdir"

# values: the records of topic $1 as "key=value" lines, offset order
values() { "$SB_TOOL" dump --json "$SB_LOG" "$1" |
	python3 -c 'import json, sys
for l in sys.stdin:
    j = json.loads(l); print("%s=%s" % (j["key"], j["value"].rstrip("\n")))'; }

case_ "a rename onto a name another process is writing keeps that writer's record"
t python3 - "$M/t" <<'EOF' || assert_fail_now "the writers"
import os, sys
m = sys.argv[1]
fb = os.open(m + "/dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fb, b"B first half, ")
with open(m + "/.dst.tmp", "wb") as f:
    f.write(b"A whole\n")
os.rename(m + "/.dst.tmp", m + "/dst")
os.write(fb, b"second half\n")
os.close(fb)
# the rename before the temp file's close too
fb = os.open(m + "/dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fb, b"D first, ")
fa = os.open(m + "/.dst2.tmp", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fa, b"C whole\n")
os.rename(m + "/.dst2.tmp", m + "/dst")
os.write(fb, b"then the rest\n")
os.close(fa)
os.close(fb)
EOF
sb_umount
assert_eq "dst=A whole
dst=B first half, second half
dst=C whole
dst=D first, then the rest" "$(values t | sort)" "every writer's record, once"
sb_mount -o sync=never

case_ "touch of a name another process is writing appends its own (empty) record"
t python3 - "$M/e" <<'EOF' || assert_fail_now "the writers"
import os, sys
m = sys.argv[1]
fb = os.open(m + "/f", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fb, b"B")
fa = os.open(m + "/f", os.O_WRONLY | os.O_CREAT, 0o644)  # touch: no O_TRUNC, no write
os.close(fa)
os.close(fb)
EOF
sb_umount
assert_eq "f=
f=B" "$(values e | sort)" "the touch's record and the writer's"
sb_mount -o sync=never

case_ "fstat of a file opened while another wrote its name, after that one's close"
t python3 - "$M/c" <<'EOF' || assert_fail_now "the writers (see above)"
import os, sys
m = sys.argv[1]
fb = os.open(m + "/f", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fb, b"B")
fa = os.open(m + "/f", os.O_WRONLY | os.O_TRUNC)  # cp over an existing name
os.close(fb)  # B's record is in, its file let go
os.fstat(fa)  # cp: "cannot fstat: No such file or directory"
os.write(fa, b"A")
os.close(fa)
EOF
sb_umount
assert_eq "f=A
f=B" "$(values c | sort)" "both records"
sb_mount -o sync=never

case_ "open(O_CREAT) of a name others write never fails; every close is one record"
out=$(SB_T=120 t python3 - "$M/g" "${SB_SAME_NAME_SECONDS:-3}" <<'EOF'
import os, sys, time, errno, collections, multiprocessing as mp
m, secs = sys.argv[1], float(sys.argv[2])
def w(p):
    errs, acked, n, t0 = collections.Counter(), 0, 0, time.time()
    while time.time() - t0 < secs:
        n += 1
        try:
            fd = os.open(m + "/same", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            errs[errno.errorcode[e.errno]] += 1
            continue
        os.write(fd, b"%d.%d\n" % (p, n))
        os.close(fd)
        acked += 1
    return acked, dict(errs)
with mp.Pool(4) as pool:
    r = pool.map(w, range(4))
print(sum(a for a, _ in r), sum(sum(e.values()) for _, e in r), [e for _, e in r if e])
EOF
)
read -r acked errors _ <<<"$out"
sb_msg "   $out (closes acknowledged, opens failed)"
assert_eq 0 "$errors" "opens that failed ($out)"
sb_umount
assert_eq "$acked" "$(values g | wc -l)" "one record for each acknowledged close"
sb_mount -o sync=never

case_ "files held under temporary names are appended in the order of their closes"
mkdir "$M/h" || assert_fail_now "mkdir"
for i in 1 2 3 4 5; do echo "closed $i" >"$M/h/.f$i.tmp" || assert_fail_now "write $i"; done
sb_umount
assert_eq ".f1.tmp=closed 1
.f2.tmp=closed 2
.f3.tmp=closed 3
.f4.tmp=closed 4
.f5.tmp=closed 5" "$(values h)" "the unmount appended them in order"

case_ "a held file whose release comes after the next file's close keeps its place"
# The kernel sends a close's RELEASE after its FLUSH, when it gets to it:
# under load (TSan) .f4.tmp's came after .f5.tmp's close, and the release
# dated the hold anew: the unmount appended .f5.tmp first. Here the
# release is held back for certain: the open file rides in a message on a
# socket, unreceived, until after .f5.tmp's close.
sb_mount -o sync=never
mkdir "$M/h2" || assert_fail_now "mkdir"
t python3 - "$M/h2" <<'EOF' || assert_fail_now "the writers"
import os, socket, sys, time
m = sys.argv[1]
fd = os.open(m + "/.f4.tmp", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"closed 4\n")
a, b = socket.socketpair()
socket.send_fds(a, [b"x"], [fd])  # in flight: holds the open file, no descriptor
os.close(fd)                       # the close (FLUSH); its RELEASE waits for the message
with open(m + "/.f5.tmp", "w") as f:
    f.write("closed 5\n")
time.sleep(0.1)
a.close()                          # the message dropped: .f4.tmp's RELEASE now
b.close()
time.sleep(0.1)
EOF
sb_umount
assert_eq ".f4.tmp=closed 4
.f5.tmp=closed 5" "$(values h2)" "the unmount appended them in the order of their closes"

case_ "a stat of a stale inode waits for no other file's last append"
# fa's inode is dst's first file, renamed over while open: nameless, freed
# at its release, no ghost. Then e's last append (a file closed unwritten
# appends at its release) is held in its fdatasync (the fault shim's
# SB_FAULT_HOLD, under sync=always) while fstat(fa) asks for that inode:
# ENOENT at once, not after the wait for a ghost (1 s).
SHIM=$SB_BUILD/libsbfaultshim.so
[ -e "$SHIM" ] || sb_die "no $SHIM (build target sbfaultshim)"
HOLD=$SB_TMP/hold
LD_PRELOAD=$SHIM SB_FAULT_STATE=$SB_TMP/faultstate SB_FAULT_DIR=$SB_LOG SB_FAULT_OP=fdatasync \
	SB_FAULT_HOLD=$HOLD ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	sb_mount -o sync=always
M=$SB_MNT
mkdir "$M/s" || assert_fail_now "mkdir"
out=$(t python3 - "$M/s" "$HOLD" <<'EOF2'
import errno, os, sys, time
m, hold = sys.argv[1], sys.argv[2]
def gone(fd):
    try:
        os.fstat(fd)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return True
        raise
    return False
def until(what, cond):
    for _ in range(1000):
        if cond():
            return
        time.sleep(0.01)
    sys.exit("never: " + what)
fb = os.open(m + "/dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fb, b"B\n")
fa = os.open(m + "/dst", os.O_WRONLY)  # a file of its own on fb's inode
with open(m + "/.dst.tmp", "wb") as f:
    f.write(b"C\n")
os.rename(m + "/.dst.tmp", m + "/dst")  # fb's file goes on nameless
os.close(fb)
until("fb's file freed", lambda: gone(fa))
open(hold, "w").close()
os.close(os.open(m + "/e", os.O_WRONLY | os.O_CREAT, 0o644))  # appended at its release
until("e's last append held", lambda: os.path.exists(hold + ".held"))
slow = 0
for _ in range(3):
    t0 = time.monotonic()
    if not gone(fa):
        sys.exit("fstat of the stale inode succeeded")
    slow += time.monotonic() - t0 > 0.5
os.unlink(hold)
os.write(fa, b"A\n")
os.close(fa)
print(slow)
EOF2
) || { rm -f "$HOLD"; assert_fail_now "the writers"; }
assert_eq 0 "$out" "fstats of the stale inode that waited past 0.5 s (of 3) during e's held append"
sb_umount
assert_eq "dst=A
dst=B
dst=C
e=" "$(values s | sort)" "every record"
