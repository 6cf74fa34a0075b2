#!/usr/bin/env bash
# SPEC §4 and §8: over Kafka, too, no byte is served from a record whose
# checksum fails. A batch damaged between the broker and the daemon (the
# daemon runs under libsbflipshim.so, which flips the first byte of a marker
# in whatever it receives from a socket) is EIO: its record file, .log when
# it reaches it, .keys/, and again at each read; the records around it read as
# written, and the daemon's log names the offset. librdkafka checks no CRC
# of consumed batches by default, and skips a batch that fails one when it
# does: the record was served damaged, then left out as if it were not there.
. "$(dirname "$0")/lib.sh"
. "$SB_TOP/tests/integration/lib_kafka.sh"

SHIM=$SB_BUILD/libsbflipshim.so
[ -e "$SHIM" ] || sb_die "no $SHIM (build target sbflipshim)"
kafka_start -t crc:1
M=$SB_MNT

# three batches (one kcat each): the middle one holds the marker
printf 'first record' | kc -P -t crc || sb_die "kcat -P"
printf 'a record with DAMAGEME in it' | kc -P -t crc || sb_die "kcat -P"
printf 'third record' | kc -P -t crc || sb_die "kcat -P"
assert_eq 3 "$(kc -C -t crc -e -q -f '%o\n' | wc -l)" "kcat consumes the 3 records (the shim is not in kcat)"

# (ASan wants to come first in the library list: let the shim first.)
export SB_FLIP_MARKER=DAMAGEME
LD_PRELOAD=$SHIM ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" KAFKA_MOUNT_FG=1 kafka_mount
unset SB_FLIP_MARKER

case_ "a batch that fails its CRC is EIO, never its bytes, never left out"
assert_eq "0 1 2" "$(t ls "$M/crc" | sed 's/^0*\(.\)/\1/' | tr '\n' ' ' | sed 's/ $//')" "the three records listed"
assert_eq "first record" "$(t cat "$M/crc/$(rec 0)")" "the record before it"
assert_eq EIO "$(pyerr 'open(sys.argv[2], "rb").read()' "$M/crc/$(rec 1)")" "the damaged record"
assert_eq EIO "$(pyerr 'open(sys.argv[2], "rb").read()' "$M/crc/$(rec 1)")" "the damaged record, read again"
assert_eq "third record" "$(t cat "$M/crc/$(rec 2)")" "the record after it"
got=$(t cat "$M/crc/.log" 2>/dev/null)
rc=$?
assert_true '[ $rc -ne 0 ]' ".log fails when it reaches the damaged record"
assert_true '[[ "first record" == "$got"* ]]' ".log serves a prefix of the records before it (got '$got')"
assert_eq EIO "$(pyerr 'os.listdir(sys.argv[2])' "$M/crc/.keys")" ".keys/ (its key map reads every record)"

case_ ".log whose stream cannot be read is EIO at each lookup, never another file"
# .log is looked up afresh at each stat (its entry lives 0 s). A lookup that
# failed once answered the stack's leftovers: often the last record looked
# up by that worker thread, so `cat .log` served that record, with exit 0.
# Each round looks a record up under a new spelling (a new name, so a new
# lookup on some worker), then .log, with its lookup and its open.
bad=$(t python3 - "$M/crc" <<'EOF'
import errno, os, sys
d, bad = sys.argv[1], []
for i in range(12):
    for name in ("0" * i + "2", "0" * i + "0"):
        os.stat(os.path.join(d, name))
    for what, f in (("stat", os.stat), ("open", lambda p: open(p, "rb").read())):
        try:
            r = f(os.path.join(d, ".log"))
            bad.append("%s %d: no error (%r)" % (what, i, r))
        except OSError as e:
            if e.errno != errno.EIO:
                bad.append("%s %d: %s" % (what, i, errno.errorcode.get(e.errno)))
print("; ".join(bad[:4]) or "none")
EOF
)
assert_eq none "$bad" "12 rounds of a record's lookup, then .log's stat and open"
assert_true 'grep -q "offset 1 on are damaged" "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"' \
	"the daemon's log names the offset ($(grep -m1 kafka "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"))"
sb_umount
