#!/usr/bin/env bash
# kafka_half_lines.sh [SECONDS] - 3-line writes to the .log of a one-partition
# Kafka topic while the brokers' latency jumps around timeout_ms (mock
# `rtt all MS`, MS in 0 1500 2500 3500 4000, every 2 s; timeout_ms 3000). Counts
# the failed writes (ETIMEDOUT) that left some but not all of their lines.
# SPEC §3: "nothing is half-appended". SB_BUILD (default build).
set -u
S=${1:-40}
B=$(realpath "${SB_BUILD:-build}")
mkdir -p /tmp/t9
D=$(mktemp -d /tmp/t9/half.XXXX)
M=$D/mnt; mkdir -p "$M"
MOCK_PID= ; FS_PID=
cleanup() {
	fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null
	[ -n "$FS_PID" ] && { timeout 20 tail --pid="$FS_PID" -f /dev/null; kill "$FS_PID" 2>/dev/null; }
	exec 7>&- 2>/dev/null
	[ -n "$MOCK_PID" ] && { kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; }
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
mkfifo "$D/in"
"$B/streambus-kafka-mock" -n 3 -t t:1 -o "$D/addr" <"$D/in" >"$D/mock.out" 2>&1 &
MOCK_PID=$!
exec 7>"$D/in"
for i in $(seq 100); do [ -s "$D/addr" ] && break; sleep 0.1; done
K=$(cat "$D/addr")
printf '[mount]\nbackend = kafka\nmountpoint = %s\n[kafka]\nbootstrap.servers = %s\ntimeout_ms = 3000\n' "$M" "$K" >"$D/k.ini"
"$B/streambusfs" -f -c "$D/k.ini" >"$D/daemon.out" 2>&1 &
FS_PID=$!
for i in $(seq 100); do mountpoint -q "$M" && break; sleep 0.1; done
echo warm | timeout 10 tee -a "$M/t/.log" >/dev/null
end=$((SECONDS + S))
for w in 1 2; do
	( i=0; while [ $SECONDS -lt $end ]; do i=$((i + 1))
		if timeout 20 bash -c 'printf "W$1.$2.0\nW$1.$2.1\nW$1.$2.2\n" >> "$3/t/.log"' x $w $i "$M" 2>/dev/null
		then echo "W$w.$i ok"; else echo "W$w.$i fail"; fi
	done >"$D/w$w" ) &
done
while [ $SECONDS -lt $end ]; do
	for ms in 0 1500 2500 3500 4000; do echo "rtt all $ms" >&7; sleep 2; done
done
wait $(jobs -p | grep -v "^$MOCK_PID$" | grep -v "^$FS_PID$") 2>/dev/null
echo "rtt all 0" >&7; sleep 5
timeout 30 kcat -b "$K" -C -t t -e -q -f '%s\n' >"$D/all"
timeout 30 kcat -b "$K" -C -t t -e -q -f 'offset %o time %T: %s\n' >"$D/allts"
half=0 fails=0 oks=0 lost=0 dup=0
while read -r id st; do
	c=$(grep -c "^$id\.[012]$" "$D/all"); u=$(grep "^$id\.[012]$" "$D/all" | sort -u | wc -l)
	[ "$c" -ne "$u" ] && { dup=$((dup + 1)); echo "twice: $id ($st): $c lines, $u distinct:"; grep ": $id\.[012]$" "$D/allts"; }
	if [ "$st" = ok ]; then oks=$((oks + 1)); [ "$u" -ne 3 ] && lost=$((lost + 1))
	else fails=$((fails + 1)); if [ "$u" -ne 0 ] && [ "$u" -ne 3 ]; then half=$((half + 1)); echo "half: $id: $u of 3 lines"; fi; fi
done < <(cat "$D/w1" "$D/w2")
echo "RESULT: $oks acknowledged 3-line writes ($lost not whole), $fails failed, $half of them half appended, $dup with a line twice"
[ "$half" -eq 0 ] && [ "$lost" -eq 0 ]
