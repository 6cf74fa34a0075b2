#!/usr/bin/env bash
# SPEC §8: when the cluster is unreachable, calls fail with EIO or
# ETIMEDOUT after [kafka] timeout_ms; nothing hangs, nothing acknowledged
# is lost, unmount works. A writer appends line after line through .log
# while the mock cluster's brokers are taken down and brought back; every
# write that returned success must be in the cluster (kcat), every failed
# one must have failed within the timeout (plus slack).
. "$(dirname "$0")/lib.sh"
. "$SB_TOP/tests/integration/lib_kafka.sh"

kafka_start -n 1 -t d:1
M=$SB_MNT
kafka_mount timeout_ms=1000

case_ "the cluster goes away mid-write: errors within the timeout, then appends resume"
t python3 - "$M/d/.log" "$SB_TMP/acked" "$SB_TMP/slow" <<'EOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
acked = open(sys.argv[2], 'w'); slow = open(sys.argv[3], 'w')
fails = oks_after = 0
deadline = time.time() + 12
for i in range(1000000):
    if time.time() > deadline:
        break
    t = time.time()
    try:
        os.write(fd, b'line %d\n' % i)
        acked.write('line %d\n' % i); acked.flush()
        if fails:
            oks_after += 1
            if oks_after >= 20:
                break
    except OSError as e:
        fails += 1
        if e.errno not in (5, 110):
            slow.write('line %d: unexpected errno %d\n' % (i, e.errno))
    if time.time() - t > 1.0 + 1.5:
        slow.write('line %d took %.1f s\n' % (i, time.time() - t))
    time.sleep(0.002)
print(fails, oks_after)
EOF
wp=$!
sleep 1
kafka_cmd down all
sleep 2.5 # two timeouts: writes fail
assert_true "t ls '$M/d' >/dev/null" "ls answers while the cluster is down"
assert_true "t stat '$M/d/.log' >/dev/null" "stat of .log answers"
kafka_cmd up all
wait $wp
assert_eq "" "$(cat "$SB_TMP/slow")" "writes slower than the timeout, or with another error"
assert_true "[ \$(wc -l <'$SB_TMP/acked') -gt 20 ]" "writes acknowledged"
kc -C -t d -e -q -f '%s' >"$SB_TMP/got"
lost=$(comm -23 <(sort "$SB_TMP/acked") <(sort -u "$SB_TMP/got") | wc -l)
assert_eq 0 "$lost" "acknowledged lines missing from the cluster"
assert_eq "$(sort "$SB_TMP/got" | uniq -d | wc -l)" 0 "lines written twice"

case_ "ls of the mount with the cluster down fails once, within one timeout, listing nothing"
kafka_cmd down all
sleep 0.5
t0=$(date +%s%N)
out=$(ls "$M" 2>&1); rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 2 "$rc" "ls fails ($out)"
assert_true '[ "$ms" -lt 1900 ]' "within one timeout_ms (1000 ms), not two (took $ms ms)"
kafka_cmd up all
sb_wait_until 't ls "$M" | grep -qx d' 20 || assert_fail_now "ls lists the topic again once the cluster is back"
pass_

case_ "unmount works while the cluster is down, and the daemon exits"
kafka_cmd down all
echo x >>"$M/d/.log" 2>/dev/null &
wait $!
p=$SB_PID
assert_ok fusermount3 -u "$M"
assert_true "sb_wait_exit $p 10" "the daemon exits within 10 s"
SB_PID=""

case_ "mounting an unreachable cluster fails within the timeout"
ini=$(sb_ini down.ini <<EOF
[mount]
backend = kafka
mountpoint = $M
[kafka]
bootstrap.servers = $KAFKA
timeout_ms = 1500
EOF
)
SECONDS=0
t "$SB_BIN" -c "$ini" >"$SB_TMP/m.out" 2>&1
rc=$?
assert_eq 1 "$rc" "exit status"
assert_le "$SECONDS" 10 "seconds to give up"
assert_true "! sb_is_mounted '$M'" "nothing mounted"
kafka_cmd up all

case_ "a write that times out (a broker answering late) fails, and the daemon says what became of it"
KAFKA_MOUNT_FG=1 kafka_mount timeout_ms=1000
dlog=$SB_TMP/daemon.$SB_MOUNT_SEQ.out
assert_sh_ok 'echo warm-up >> "$1"' "$M/d/.log"
kafka_cmd rtt all 2500
assert_sh_fail_with ETIMEDOUT 'echo late-one >> "$1"' "$M/d/.log"
assert_true 'grep -q "a write timed out after 1000 ms; its records may still be appended" "$dlog"' "said at once: it may be appended ($(tail -2 "$dlog"))"
kafka_cmd rtt all 0
sb_wait_until 'grep -Eq "a write that failed with ETIMEDOUT (was|may have been)" "$dlog"' 20 ||
	assert_fail_now "what became of it is never said ($(tail -3 "$dlog"))"
pass_
# whichever it says, the cluster agrees (it said "not appended" of a
# request that timed out in flight, which the broker appended later: on a
# loaded machine, both builds of one full run; now it says it may be)
n=$(kc -C -t d -e -q -f '%s\n' | grep -c '^late-one$')
# The request was in flight (the broker answers 2.5 s late): the client
# cannot know it was not appended, and must not say so. (Most runs get a
# late success report instead: this check is met then, and the mutation
# of the status check survives them; a loaded machine made the other.)
assert_true '! grep -q "was not appended" "$dlog"' "not said 'not appended' of a request in flight ($(tail -2 "$dlog"))"
if grep -q "was appended after all" "$dlog"; then
	assert_eq 1 "$n" "appended after all, as the daemon said"
else
	assert_true 'grep -q "may have been appended all the same" "$dlog"' "said what became of it ($(tail -2 "$dlog"))"
	assert_true '[ "$n" -le 1 ]' "at most once in the cluster ($n)"
fi
sb_umount
