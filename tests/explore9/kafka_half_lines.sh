#!/usr/bin/env bash
# kafka_half_lines.sh [SECONDS] - 3-line writes to the .log of a one-partition
# Kafka topic while the brokers' latency jumps around timeout_ms (mock
# `rtt all MS`, MS in 0 1500 2500 3500 4000, every 2 s; timeout_ms 3000). Counts
# the failed writes (ETIMEDOUT) that left some but not all of their lines.
# SPEC §3: "nothing is half-appended". SB_BUILD (default build).
set -u
S=${1:-40}
. "$(dirname "$0")/lib_mock.sh"
kafka_up half t:1
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
