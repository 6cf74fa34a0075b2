#!/usr/bin/env bash
# kafka_lines_spread.sh [N] - one write of three lines to the .log of a Kafka
# topic of 3 partitions puts its lines in different partitions (README: "lines
# have no key: each write to one partition, in turn"). N writes (default 10)
# of `printf 'X.0\nX.1\nX.2\n' >> MNT/w/.log`, then where each line is (kcat).
# SB_BUILD (default build). Cleans up after itself.
set -u
N=${1:-10}
. "$(dirname "$0")/lib_mock.sh"
kafka_up spread w:3
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
