#!/usr/bin/env bash
# kafka_close_timeout_dup.sh [N] - a file whose close fails with ETIMEDOUT is
# appended twice. The mock's brokers answer 4 s late (rtt all 4000; the mount's
# timeout_ms is 3000); `cp src MNT/t/kN` fails "failed to close: Connection
# timed out" after ~3.2 s, the daemon logs "appended after all, at offset X",
# and ~3.2 s later the file's last release appends the same bytes again
# (fs/pending_commit.c: the flush's commit failed, p->dirty stays set, the
# release commits again). Counts the copies of each of N files (default 3).
# MODE=partial: a python open/write/close of a line without newline to .log.
# MODE=echo: `echo -n V > MNT/t/.keys/kN` instead of cp (bash ignores the failed
# close: exit 0). SB_BUILD (default build). Cleans up after itself.
set -u
N=${1:-3}
. "$(dirname "$0")/lib_mock.sh"
kafka_up closedup t:1
timeout 10 ls "$M/t" >/dev/null
echo warm | timeout 10 tee -a "$M/t/.log" >/dev/null # the producer connected first
mock rtt all ${RTT:-4000}
fails=0
for i in $(seq "$N"); do
	head -c 1000 /dev/urandom | base64 -w0 >"$D/src$i"
	if [ "${MODE:-cp}" = partial ]; then # a line without its newline to .log: appended at the close
		timeout 30 python3 -c 'import os,sys; fd=os.open(sys.argv[2], os.O_WRONLY|os.O_APPEND); os.write(fd, open(sys.argv[1],"rb").read()); os.close(fd)' "$D/src$i" "$M/t/.log" || fails=$((fails + 1))
	elif [ "${MODE:-cp}" = echo ]; then # bash: echo v > t/.keys/kN (bash does not check close)
		timeout 30 bash -c 'echo -n "$(cat "$1")" > "$2"; echo "echo > .keys/k'$i': exit $?"' x "$D/src$i" "$M/t/.keys/k$i" || fails=$((fails + 1))
	else
		timeout 30 cp "$D/src$i" "$M/t/k$i" || fails=$((fails + 1))
	fi
done
sleep 8
mock rtt all 0
sleep 2
dups=0
for i in $(seq "$N"); do
	c=$(timeout 30 kcat -b "$K" -C -t t -e -q -f '%s\n' | grep -cxF -f "$D/src$i")
	echo "k$i: copies in the topic: $c"
	[ "$c" -gt 1 ] && dups=$((dups + 1))
done
echo "--- the daemon's log:"
grep -v "Connect to\|brokers are down\|Disconnected\|timed out: disconnect" "$D/daemon.out" | cut -c1-200
echo "RESULT: $N ${MODE:-cp}, $fails failed (ETIMEDOUT), $dups appended more than once"
[ "$dups" -eq 0 ]
