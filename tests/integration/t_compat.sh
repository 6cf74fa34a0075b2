#!/usr/bin/env bash
# A log directory written by an earlier release (format version 2, from commit
# 46c959a: tests/fixtures/v2/) verifies, dumps exactly what that release wrote,
# mounts, serves every record byte for byte (keys and times included), takes
# new appends, and stays verifiable across a remount (SPEC §6).
. "$(dirname "$0")/lib.sh"
FX=$SB_TOP/tests/fixtures/v2
SB_TOOL=$SB_BUILD/streambus
[ -x "$SB_TOOL" ] || sb_die "no streambus at $SB_TOOL"

rm -rf "$SB_LOG"
tar -C "$SB_TMP" -xzf "$FX/logdir.tar.gz" || sb_die "cannot unpack the fixture"
mv "$SB_TMP/log" "$SB_LOG" 2>/dev/null || true
[ -d "$SB_LOG/lines" ] || sb_die "fixture has no topic lines"

# same_dump TOPIC: `streambus dump --json` equals the release's own dump.
same_dump() {
	"$SB_TOOL" dump --json "$SB_LOG" "$1" >"$SB_TMP/dump.$1" 2>"$SB_TMP/dump.$1.err"
	assert_eq 0 "$?" "dump $1 exits 0"
	python3 - "$FX/$1.jsonl" "$SB_TMP/dump.$1" <<'PY' >"$SB_TMP/cmp.$1" 2>&1
import json, sys
keys = ("offset", "timestamp_ns", "key", "size", "value", "value_base64")
def load(p):
    return [{k: r.get(k) for k in keys} for r in map(json.loads, open(p))]
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b:
    print("expected", len(a), "records, got", len(b))
    for x, y in zip(a, b):
        if x != y:
            print("first difference:", x, y); break
    sys.exit(1)
PY
	assert_eq 0 "$?" "dump of $1 equals the release's ($(head -c 300 "$SB_TMP/cmp.$1"))"
}

case_ "verify and dump without mounting"
t "$SB_TOOL" verify "$SB_LOG" >"$SB_TMP/verify.out" 2>&1
assert_eq 0 "$?" "verify of the v2 directory ($(tail -3 "$SB_TMP/verify.out"))"
for topic in lines files empty; do same_dump "$topic"; done

# check_served: every record of the release's dump is served by the mount.
cat >"$SB_TMP/served.py" <<'PY'
import base64, json, os, sys
fx, mnt = sys.argv[1], sys.argv[2]
bad = 0
for topic in ("lines", "files"):
    stream = b""
    for r in map(json.loads, open(os.path.join(fx, topic + ".jsonl"))):
        want = base64.b64decode(r["value_base64"]) if "value_base64" in r else r["value"].encode()
        p = os.path.join(mnt, topic, "%020d" % r["offset"])
        got = open(p, "rb").read()
        if got != want:
            print("payload differs:", p); bad += 1
        if r.get("key"):
            k = os.getxattr(p, "user.streambus.key").decode()
            if k != r["key"]:
                print("key differs:", p, k); bad += 1
        ts = int(os.getxattr(p, "user.streambus.timestamp"))
        if ts != r["timestamp_ns"]:
            print("timestamp differs:", p, ts); bad += 1
        stream += want
    log = open(os.path.join(mnt, topic, ".log"), "rb").read()
    if not log.startswith(stream):
        print(".log differs from the records:", topic); bad += 1
sys.exit(1 if bad else 0)
PY
check_served() { t python3 "$SB_TMP/served.py" "$FX" "$SB_MNT"; }

case_ "mount the v2 directory and read every record"
sb_mount
check_served >"$SB_TMP/served.out" 2>&1
assert_eq 0 "$?" "records served as the release wrote them ($(head -5 "$SB_TMP/served.out"))"
assert_eq "$(ls "$SB_MNT/lines" | head -1)" "$(rec 5)" "lines starts at 5 (the release's rm)"
assert_eq "$(ls "$SB_MNT/lines" | wc -l)" 295 "lines has 295 records"

case_ "append to the v2 directory, remount, verify"
tsh 'echo "appended after the upgrade" >> "$SB_MNT/lines/.log"'
assert_eq 0 "$?" "append"
tsh 'printf new > "$SB_MNT/empty/first"'
assert_eq 0 "$?" "append to the empty topic"
sb_remount
assert_eq "$(cat "$SB_MNT/lines/$(rec 300)")" "appended after the upgrade" "new record after remount"
assert_eq "$(cat "$SB_MNT/empty/$(rec 0)")" "new" "new record in the empty topic"
check_served >"$SB_TMP/served2.out" 2>&1
assert_eq 0 "$?" "old records still served after the upgrade ($(head -5 "$SB_TMP/served2.out"))"
sb_umount
t "$SB_TOOL" verify "$SB_LOG" >"$SB_TMP/verify2.out" 2>&1
assert_eq 0 "$?" "verify after appending ($(tail -3 "$SB_TMP/verify2.out"))"
