#!/bin/bash
# data_livecopy_index_ahead.sh - a copy of LOG_DIR taken while mounted (SPEC §6:
# "copy LOG_DIR itself while mounted (rsync -a, cp -a, tar): a copy taken at any
# moment mounts and recovers to a prefix of the log") is refused by recover and by
# the mount when the copy tool copied a segment before its index file and the
# segment grew (and was synced / sealed) in between - which is what cp -a, rsync -a
# and tar do: one file after the other, in directory order.
#
# Part 1 (deterministic): the copy is made in two steps, as a copy tool that reaches a
#   segment's .idx before compaction rewrites the segment and its .seg after does.
# Part 2 (natural): cp -a / rsync -a / tar of LOG_DIR while a shell writer appends, N
#   tries (this slow writer seldom hits it; the python generator does every few
#   copies: python3 tests/explore11/harness/data_livecopy.py 1 2 3 4 5).
# Run from /work/main as root.  SB_BUILD (default build), TRIES (default 8).
set -u
B=$(realpath "${SB_BUILD:-build}")
FS=$B/streambusfs; SB=$B/streambus
W=/tmp/e11data/repro-livecopy
TRIES=${TRIES:-8}
cleanup() {
  for m in "$W/M" "$W"/c*.mnt; do
    [ -d "$m" ] || continue
    fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  [ -n "${WPID:-}" ] && kill "$WPID" 2>/dev/null
  for p in $(pgrep -f "streambusfs.*$W" || true); do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/L" "$W/M"

nice -n 10 "$FS" -o segment_bytes=4096,cleanup=compact "$W/L" "$W/M" || { echo "mount failed"; exit 2; }
mkdir "$W/M/t"
big() { printf "%s-%01000d\n" "$1" 0; }
big u0 >> "$W/M/t/.log"; big v1 > "$W/M/t/.keys/k"; big u1 >> "$W/M/t/.log"; big u2 >> "$W/M/t/.log"
big u3 >> "$W/M/t/.log"                      # segment 0 (u0 k=v1 u1 u2) is sealed, u3 starts the next
sleep 2
echo "--- LOG_DIR at T1:"; ls -l "$W/L/t" | grep -E 'seg|idx'
cp -a "$W/L" "$W/c1"                            # the copy tool has copied the .idx files by now ...
big v2 > "$W/M/t/.keys/k"; for i in 4 5 6 7; do big u$i >> "$W/M/t/.log"; done
sleep 3                                         # compaction drops k=v1 from segment 0
echo "--- LOG_DIR at T2:"; ls -l "$W/L/t" | grep -E 'seg|idx'
cp -a "$W/L/t/"*.seg "$W/c1/t/"                 # ... and reaches the .seg files only now
fusermount3 -u "$W/M"; sleep 1
echo "--- the original after unmount:"
"$SB" verify "$W/L" | tail -1
echo "--- the copy:"
rm -f "$W/c1/.lock"
"$SB" recover "$W/c1"; echo "recover exit status $?"
"$SB" verify "$W/c1" 2>&1 | grep -v 'not counted'; echo "verify exit status ${PIPESTATUS[0]}"
mkdir -p "$W/c1.mnt"
nice -n 10 "$FS" "$W/c1" "$W/c1.mnt" 2>"$W/c1.err"; echo "mount of the copy: exit status $?"; cat "$W/c1.err"
echo "ls c1.mnt: $(ls "$W/c1.mnt" 2>&1 | tr '\n' ' ')   records of t: $(ls "$W/c1.mnt/t" 2>&1 | wc -l)"
fusermount3 -u "$W/c1.mnt" 2>/dev/null; sleep 1

echo
echo "=== part 2: $TRIES live copies of LOG_DIR while a writer appends"
rm -rf "$W/L2"; mkdir -p "$W/L2"
nice -n 10 "$FS" -o segment_bytes=4096,sync=interval,compression=zstd,cleanup=compact "$W/L2" "$W/M" || exit 2
mkdir "$W/M/t"
( i=0; while :; do printf 'k%d' $((i % 7)) > /dev/null; echo "v$i-$(head -c $((RANDOM % 900)) /dev/zero | tr '\0' x)" > "$W/M/t/.keys/k$((i % 7))" 2>/dev/null; echo "u$i" >> "$W/M/t/.log" 2>/dev/null || break; i=$((i+1)); done ) &
WPID=$!
bad=0
for n in $(seq 1 "$TRIES"); do
  sleep 0.$((RANDOM % 9 + 1))
  c=$W/c2-$n
  case $((n % 3)) in
    0) cp -a "$W/L2" "$c"; how="cp -a";;
    1) rsync -a "$W/L2/" "$c/"; how="rsync -a";;
    2) mkdir -p "$c"; tar -C "$W/L2" -cf - . | tar -C "$c" -xf -; how="tar";;
  esac
  rm -f "$c/.lock"
  out=$("$SB" recover "$c" 2>&1); rc=$?
  if [ $rc -ne 0 ]; then bad=$((bad+1)); echo "copy $n ($how): recover exit $rc: $(echo "$out" | grep -v '^$' | head -2)"; else echo "copy $n ($how): recovers"; fi
done
kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; WPID=
fusermount3 -u "$W/M"; sleep 1
echo "$bad of $TRIES live copies refused by recover (expected 0: SPEC §6)"
