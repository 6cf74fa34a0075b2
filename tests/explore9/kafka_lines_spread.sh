#!/usr/bin/env bash
# kafka_lines_spread.sh [N] - one write of three lines to the .log of a Kafka
# topic of 3 partitions puts its lines in different partitions (README: "lines
# have no key: each write to one partition, in turn"). N writes (default 10)
# of `printf 'X.0\nX.1\nX.2\n' >> MNT/w/.log`, then where each line is (kcat).
# SB_BUILD (default build). Cleans up after itself.
set -u
N=${1:-10}
B=$(realpath "${SB_BUILD:-build}")
mkdir -p /tmp/t9
D=$(mktemp -d /tmp/t9/spread.XXXX)
M=$D/mnt; mkdir -p "$M"
MOCK_PID= ; FS_PID=
cleanup() {
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null
	[ -n "$FS_PID" ] && { timeout 20 tail --pid="$FS_PID" -f /dev/null; kill "$FS_PID" 2>/dev/null; }
	[ -n "$MOCK_PID" ] && { kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; }
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
"$B/streambus-kafka-mock" -n 3 -t w:3 -o "$D/addr" </dev/null >"$D/mock.out" 2>&1 &
MOCK_PID=$!
for i in $(seq 100); do [ -s "$D/addr" ] && break; sleep 0.1; done
K=$(cat "$D/addr")
printf '[mount]\nbackend = kafka\nmountpoint = %s\n[kafka]\nbootstrap.servers = %s\ntimeout_ms = 3000\n' "$M" "$K" >"$D/k.ini"
"$B/streambusfs" -f -c "$D/k.ini" >"$D/daemon.out" 2>&1 &
FS_PID=$!
for i in $(seq 100); do mountpoint -q "$M" && break; sleep 0.1; done
for i in $(seq "$N"); do
	timeout 20 bash -c 'printf "X$1.0\nX$1.1\nX$1.2\n" >> "$2/w/.log"' x "$i" "$M" || echo "write $i failed"
done
spread=0
for i in $(seq "$N"); do
	ps=""
	for p in 0 1 2; do
		c=$(timeout 20 kcat -b "$K" -C -t w -p $p -e -q -f '%s\n' | grep -c "^X$i\.")
		ps="$ps p$p:$c"
	done
	echo "write $i ($N writes of 3 lines):$ps"
	echo "$ps" | grep -q ":3" || spread=$((spread + 1))
done
echo "RESULT: $N writes of 3 lines, $spread spread over several partitions"
[ "$spread" -eq 0 ]
