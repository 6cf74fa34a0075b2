#!/bin/bash
# data_keys_long_copy.sh - a key whose escaped name passes 255 bytes (listed in
# .keys/ under its long hashed name) is left out when .keys/ is copied to another
# topic, with cp -a or rsync -aX, although the copy carries user.streambus.key:
# README: "cp TOPIC/.keys/* OTHER/.keys/ gives OTHER the same keys" and a copy
# (rsync -aX of a copy of .keys/) "restores keys, values, headers and times".
# Run from /work/main as root.  SB_BUILD (default build).
set -u
B=$(realpath "${SB_BUILD:-build}")
FS=$B/streambusfs; SB=$B/streambus
W=/tmp/e11data/repro-longkey
cleanup() { fusermount3 -u "$W/M" 2>/dev/null || umount -l "$W/M" 2>/dev/null; }
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/L" "$W/M"
nice -n 10 "$FS" "$W/L" "$W/M" || exit 2
mkdir "$W/M/src" "$W/M/dst" "$W/M/dst2"
echo short > "$W/M/src/.keys/short"
python3 - "$W/M/src" <<'PY'
import os, sys
d = sys.argv[1]
p = d + '/t.tmp'
f = open(p, 'wb'); f.write(b'long value\n'); f.flush()
os.setxattr(p, 'user.streambus.key', b'%' * 255)     # README: set a long key through user.streambus.key
f.close()
os.rename(p, d + '/final')
PY
sleep 0.3
echo "src/.keys: $(ls "$W/M/src/.keys" | cut -c1-40 | tr '\n' ' ')"
echo "--- cp -a src/.keys/* dst/.keys/"
cp -a "$W/M/src/.keys/"* "$W/M/dst/.keys/" 2>&1 | cut -c1-160; echo "cp exit ${PIPESTATUS[0]}"
echo "--- rsync -aX src/.keys/ backup/ ; rsync -aX backup/ dst2/.keys/"
rsync -aX "$W/M/src/.keys/" "$W/bk/"
rsync -aX "$W/bk/" "$W/M/dst2/.keys/" 2>&1 | cut -c1-160; echo "rsync exit ${PIPESTATUS[0]}"
for t in src dst dst2; do echo "$t keys: $(ls "$W/M/$t/.keys" | wc -l)"; done
fusermount3 -u "$W/M"; sleep 1
for t in src dst dst2; do echo "dump --keys $t:"; "$SB" dump --keys "$W/L" $t | cut -c1-100; done
