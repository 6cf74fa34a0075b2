#!/usr/bin/env bash
# streambus stat: the table and --json, field by field, on logs written with
# the store API; one topic; errors; it reads only (no lock, no changes) and
# works while another process holds the directory's lock.
. "$(dirname "$0")/lib_tool.sh"
gen_build
L=$T/log
gen -s 4096 -i 256 -k key- "$L" orders 300      # 4 segments
gen "$L" empty 0
gen -a 1000 -t 1800000000000000000 "$L" late 5  # starts at offset 1000
rm -f "$L/.lock"
snap() { (cd "$L" && find . -printf '%p %s %T@\n' | sort && cat */* | md5sum); }
before=$(snap)

out=$("$SB" stat "$L")
# header, then one line per topic in name order
eq "$(printf '%s\n' "$out" | head -1 | tr -s ' ')" "TOPIC FIRST NEXT RECORDS BYTES LOGICAL SEGMENTS OLDEST NEWEST" "header"
eq "$(printf '%s\n' "$out" | awk 'NR>1{print $1}' | tr '\n' ' ')" "empty late orders " "topics"
orders=$(printf '%s\n' "$out" | awk '$1=="orders"')
read -r name first next recs bytes logical segs oldest newest <<<"$orders"
eq "$first" 0 "orders first"; eq "$next" 300 "orders next"; eq "$recs" 300 "orders records"
eq "$bytes" "$(cat "$L"/orders/*.seg | wc -c)" "orders bytes = segment bytes on disk"
eq "$segs" "$(ls "$L"/orders/*.seg | wc -l)" "orders segments"
[ "$segs" -ge 3 ] || fail "expected several segments, got $segs"
eq "$oldest" "2023-11-14T22:13:20Z" "orders oldest"
eq "$newest" "2023-11-14T22:13:20Z" "orders newest"
read -r name first next recs bytes logical segs oldest newest <<<"$(printf '%s\n' "$out" | awk '$1=="late"')"
eq "$first $next $recs $oldest $newest" "1000 1005 5 2027-01-15T08:00:01Z 2027-01-15T08:00:01Z" "late"
read -r name first next recs bytes logical segs oldest newest <<<"$(printf '%s\n' "$out" | awk '$1=="empty"')"
eq "$first $next $recs $oldest $newest" "0 0 0 - -" "empty"
# aligned: every line has its NEXT column ending at the same character
# aligned: the numbers end (right-aligned) and the times start in the same
# character columns on every line
cols=$(printf '%s\n' "$out" | python3 -c '
import re, sys
shapes = set()
for line in sys.stdin:
    spans = [m.span() for m in re.finditer(r"\S+", line)]
    shapes.add(tuple([e for s, e in spans[1:7]] + [s for s, e in spans[7:9]]))
print(len(shapes))')
eq "$cols" 1 "columns aligned"

# one topic
out=$("$SB" stat "$L" late)
eq "$(printf '%s\n' "$out" | wc -l)" 2 "stat LOG_DIR TOPIC: header and one line"
has "$out" '^late +1000 +1005 +5 ' "stat late"

# --json (before or after the arguments)
"$SB" stat --json "$L" >"$T/s.json"
eq "$(json 'len(j["topics"])' <"$T/s.json")" 3 "json topics"
eq "$(json 'j["log_dir"]' <"$T/s.json")" "$L" "json log_dir"
eq "$(json '[t["topic"] for t in j["topics"]]' <"$T/s.json")" "['empty', 'late', 'orders']" "json names"
eq "$(json '[(t["first"],t["next"],t["records"]) for t in j["topics"] if t["topic"]=="orders"][0]' <"$T/s.json")" "(0, 300, 300)" "json orders offsets"
eq "$(json '[t["oldest_ns"] for t in j["topics"] if t["topic"]=="orders"][0]' <"$T/s.json")" 1700000000123456789 "json oldest_ns"
eq "$(json '[t["newest_ns"] for t in j["topics"] if t["topic"]=="orders"][0]' <"$T/s.json")" $((1700000000123456789 + 299000000)) "json newest_ns"
eq "$(json '[t["newest"] for t in j["topics"] if t["topic"]=="orders"][0]' <"$T/s.json")" "2023-11-14T22:13:20.422456789Z" "json newest"
eq "$(json '[t["stream_bytes"] for t in j["topics"] if t["topic"]=="orders"][0]' <"$T/s.json")" "$(for i in $(seq 0 299); do echo "rec $i"; done | wc -c)" "json stream_bytes"
eq "$(json '[t["bytes"] for t in j["topics"] if t["topic"]=="orders"][0]' <"$T/s.json")" "$(cat "$L"/orders/*.seg | wc -c)" "json bytes"
eq "$(json '[(t["records"],t["oldest"],t["newest_ns"]) for t in j["topics"] if t["topic"]=="empty"][0]' <"$T/s.json")" "(0, None, None)" "json empty"
"$SB" stat "$L" late --json >"$T/l.json"
eq "$(json '[t["topic"] for t in j["topics"]]' <"$T/l.json")" "['late']" "json one topic"

# read-only: nothing changed, no lock file made
eq "$(snap)" "$before" "stat changed the log directory"
[ ! -e "$L/.lock" ] || fail "stat created $L/.lock"

# a holder of the lock that is no mount (a daemon still closing after its
# unmount) is waited for, saying so, then stat reads (t_tool_mount.sh: stat
# beside a live mount, at once)
flock -x -o "$L/.lock" sleep 1 &
holder=$!
for i in $(seq 50); do grep -q "FLOCK.* $holder " /proc/locks && break; sleep 0.1; done
out=$("$SB" stat "$L" orders 2>"$T/stat.err") || fail "stat while locked: $out"
has "$out" '^orders +0 +300 +300 ' "stat while locked"
eq "$(cat "$T/stat.err")" "streambus stat: waiting (up to 10 s) for process $holder to release $L ..." "stat says whom it waits for"
wait "$holder"

# errors: one line naming the file, exit 2
run_rc rc "$SB" stat "$L" nosuch
eq "$rc" 2 "missing topic exit"; eq "$(printf '%s\n' "$out" | wc -l)" 1 "one line"
has "$out" "^streambus stat: $L/nosuch: no such topic$" "missing topic message"
run_rc rc "$SB" stat "$T/none"
eq "$rc" 2 "missing dir exit"; has "$out" "^streambus stat: $T/none: No such file or directory$" "missing dir message"
[ ! -e "$T/none" ] || fail "stat created the missing directory"
run_rc rc "$SB" stat
eq "$rc" 2 "no args exit"; has "$out" "stat --help" "usage hint"
run_rc rc "$SB" stat --bogus "$L"
eq "$rc" 2 "bad option exit"; has "$out" "unknown option '--bogus'" "bad option named"
# a log whose head was deleted: FIRST is the log start (from meta), not the
# first segment's base
gen -s 4096 -i 256 -d 150 "$T/del" trimmed 300
base=$((10#$(basename "$(ls "$T/del/trimmed/"*.seg | head -1)" .seg)))
[ "$base" -gt 0 ] && [ "$base" -lt 150 ] || fail "want the first segment to start below 150, got $base"
has "$("$SB" stat "$T/del")" '^trimmed +150 +300 +150 ' "stat after delete_before"

# damage a mount would repair is not hidden: a warning on stderr, nothing
# changed, the table shows what a mount would serve
# (a torn write: no clean marker, no index file of the last segment; with
# either a mount refuses the topic, below)
cp -a "$L" "$T/torn"
lastseg=$(ls "$T/torn/orders/"*.seg | tail -1)
truncate -s -5 "$lastseg"
cp -a "$T/torn" "$T/cutclean"
rm -f "$T/torn/orders/clean" "${lastseg%.seg}.idx"
before=$(cd "$T/torn" && find . -printf '%p %s\n' | sort)
set +e; "$SB" stat "$T/torn" orders >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 0 "stat of a torn log"
has "$(cat "$T/o")" '^orders +0 +299 +299 ' "torn log: what a mount would serve"
has "$(cat "$T/e")" "^streambus stat: warning: orders: a mount would recover: .*torn record.*\(nothing changed; see 'streambus verify'\)$" "torn warning"
eq "$(cd "$T/torn" && find . -printf '%p %s\n' | sort)" "$before" "stat changed a torn log"
# cut after a clean close: no torn write; a mount refuses the topic, and so
# does the table (no recovery it would not make)
set +e; "$SB" stat "$T/cutclean" >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 0 "stat of a log cut after its clean close"
has "$(cat "$T/o")" '^orders +refused: damaged at offset 299 \([0-9]{20}\.seg: cut to [0-9]+ bytes after the clean close' "cut log: refused"
has "$(cat "$T/o")" '^late +1000 +1005 ' "cut log: the other topics shown"
hasnt "$(cat "$T/e")" "a mount would recover" "cut log: no recovery a mount would not make"
set +e; "$SB" stat --json "$T/cutclean" orders >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$(json '[(t["topic"], t["refused"][:30], "records" in t) for t in j["topics"]]' <"$T/o")" \
	"[('orders', 'damaged at offset 299 (0000000', False)]" "cut log: --json refused"
set +e; "$SB" stat "$L" >/dev/null 2>"$T/e"; set -e
eq "$(cat "$T/e")" "" "no warning on a clean log"

# LOG_DIR/TOPIC is LOG_DIR TOPIC; a topic directory given as the LOG_DIR
# of `LOG_DIR TOPIC` is an error
eq "$("$SB" stat "$L/orders")" "$("$SB" stat "$L" orders)" "stat LOG_DIR/TOPIC"
run_rc rc "$SB" stat "$L/orders" orders
eq "$rc" 2 "topic dir exit"
has "$out" "^streambus stat: $L/orders: holds segment files: a topic directory, not a LOG_DIR" "topic dir message"
# more segments than open files allowed: the open failed, said as such (it
# read "a mount would recover: cannot open: ...", like damage), exit 2
gen -s 4096 "$T/manysegs" m 10000
run_rc rc bash -c 'ulimit -n 40 && exec "$0" stat "$1"' "$SB" "$T/manysegs"
eq "$rc" 2 "stat under too low a limit of open files ($out)"
has "$out" "^streambus stat: warning: m: cannot open: [0-9]+\.seg: Too many open files \(the topic is left out\)$" "the failed open named"
hasnt "$out" "would recover" "the failed open not said as damage"
hasnt "$out" "a mount would recover" "not taken for something a mount recovers"
# (LeakSanitizer cannot run under strace: off for this run.)
# stat shows no key index: it does not read the key tables (a tenth of a
# second on 3M keys in 41 tables, each time)
gen -m 4096 -k k- "$T/kt" t 2000
[ -n "$(find "$T/kt/t" -name '*.keys')" ] || fail "no key tables to leave alone"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat -o "$T/strace.out" "$SB" stat "$T/kt" t >/dev/null
eq "$(grep -c '[.]keys"' "$T/strace.out")" 0 "stat opened no key table"
# more segment files than the soft limit of open files (a user's 1024):
# the tool raises it to the hard limit as the daemon does, and reads them
gen -s 4096 "$T/nf" t 20000
nseg=$(ls "$T/nf/t/"*.seg | wc -l)
[ "$nseg" -gt 128 ] || fail "only $nseg segments"
for c in stat verify dump; do
	run_rc rc prlimit --nofile=64:8192 "$SB" $c "$T/nf"
	eq "$rc" 0 "$c of $nseg segments under a soft limit of 64 open files: exit ($(tail -2 <<<"$out"))"
	hasnt "$out" "Too many open files" "$c: no EMFILE"
done
echo "t_tool_stat: ok"
