#!/usr/bin/env bash
# streambus dump: one line per record (offset, ISO time with ns, key, size,
# escaped payload), --from/--count, --raw, --json (parsed back), a topic that
# starts past 0, corrupt records named, errors.
. "$(dirname "$0")/lib_tool.sh"
gen_build
L=$T/log
gen -s 4096 -i 256 -k key- "$L" orders 300
gen -x "$L" bin 2                               # rec 0, rec 1, then binary
gen -a 1000 "$L" late 3

# field by field
out=$("$SB" dump "$L/orders")
eq "$(printf '%s\n' "$out" | wc -l)" 300 "one line per record"
line=$(printf '%s\n' "$out" | sed -n 43p)
eq "$line" 'offset=42 time=2023-11-14T22:13:20.165456789Z key="key-42" size=7 value="rec 42\n"' "record 42"
eq "$(printf '%s\n' "$out" | awk '{sub("offset=","",$1); print $1}' | tr '\n' ' ')" "$(seq -s ' ' 0 299) " "offsets in order"
eq "$(printf '%s\n' "$out" | tail -1)" 'offset=299 time=2023-11-14T22:13:20.422456789Z key="key-299" size=8 value="rec 299\n"' "last record"

# --from / --count, trailing slash on the path
out=$("$SB" dump --from 297 "$L/orders/")
eq "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" "offset=297 offset=298 offset=299 " "--from"
out=$("$SB" dump "$L/orders" --from 10 --count 2)
eq "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" "offset=10 offset=11 " "--from --count"
eq "$("$SB" dump --count 0 "$L/orders")" "" "--count 0"
eq "$("$SB" dump --from 300 "$L/orders")" "" "--from next: nothing"

# escaping, no key
out=$("$SB" dump "$L/bin")
eq "$(printf '%s\n' "$out" | sed -n 3p)" 'offset=2 time=2023-11-14T22:13:20.125456789Z key=- size=14 value="\x00\x01\xff\"\\tab\there\n"' "escaped payload"
# --raw: the payload bytes as they are, nothing else
"$SB" dump --raw --from 2 "$L/bin" >"$T/raw"
printf '\x00\x01\xff"\\tab\there\n' >"$T/raw.want"
cmp "$T/raw" "$T/raw.want" || fail "--raw output differs: $(od -c "$T/raw" | head)"

# topic starting at 1000; --from below the start begins at the start
out=$("$SB" dump --from 0 "$L/late")
eq "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" "offset=1000 offset=1001 offset=1002 " "late offsets"

# --json: one object per line, UTF-8 payloads as "value", others base64
"$SB" dump --json "$L/bin" >"$T/d.json"
python3 - "$T/d.json" <<'PY' || fail "dump --json content"
import base64, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["offset"] for r in recs] == [0, 1, 2], recs
assert recs[0] == {"topic": "bin", "offset": 0, "timestamp_ns": 1700000000123456789,
                   "timestamp": "2023-11-14T22:13:20.123456789Z", "key": None,
                   "headers": [], "size": 6, "value": "rec 0\n"}, recs[0]
assert "value" not in recs[2]
assert base64.b64decode(recs[2]["value_base64"]) == b'\x00\x01\xff"\\tab\there\n', recs[2]
assert recs[2]["size"] == 14
PY
# ... and the docs say so: "headers" is on every line, [] without headers
man=$(MANWIDTH=1000 man -l "$SB_TOP/docs/streambus.1" 2>/dev/null | col -b | tr -s ' \n\t' '   ')
grep -Fq "headers (a list of {name, value}, in the record's order; an empty list, [], for a record without headers" <<<"$man" ||
	fail "streambus(1) does not say --json has headers on every line ([] without)"
"$SB" dump --help | tr -s ' \n' '  ' | grep -Fq "headers (a list of {name, value}, [] for a record without)" ||
	fail "dump --help does not say --json has headers on every line ([] without)"
"$SB" dump --json --from 5 --count 1 "$L/orders" >"$T/o.json"
eq "$(json '(j["offset"], j["key"], j["value"], j["size"])' <"$T/o.json")" "(5, 'key-5', 'rec 5\\n', 6)" "json keyed record"

# --follow: one topic; --count and --until end it (a log nobody appends to);
# t_tool_live follows a mount's appends
run_rc rc "$SB" dump --follow "$L"
eq "$rc:$out" "2:streambus dump: --follow follows one topic: name it (LOG_DIR TOPIC or LOG_DIR/TOPIC), not '$L' alone (try 'streambus dump --help')" \
   "dump --follow LOG_DIR"
run_rc rc "$SB" dump --follow --keys "$L/orders"
eq "$rc:$out" "2:streambus dump: --follow and --keys exclude each other (try 'streambus dump --help')" "dump --follow --keys"
out=$(timeout 10 "$SB" dump --follow --from 5 --count 3 "$L/orders") || fail "dump --follow --count: exit $?"
eq "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" "offset=5 offset=6 offset=7 " "dump --follow --count ends at the count"
out=$(timeout 10 "$SB" dump --follow --from 5 --until 2023-11-14T22:13:20.132Z "$L" orders) || fail "dump --follow --until: exit $?"
eq "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" "offset=5 offset=6 offset=7 offset=8 " "dump --follow --until ends at the first record at TIME"
run_rc rc timeout 10 "$SB" dump --follow "$L" nosuch
eq "$rc:$out" "2:streambus dump: $L/nosuch: no such topic" "dump --follow of a missing topic"

# (LeakSanitizer cannot run under strace: off for these runs.)
# Records alone need no key index: dump and dump --follow (which opens the
# log again every 200 ms) do not read the key tables (before, each look of
# --follow read them all: 50 ms a look for 3M keys in 41 tables); --keys does.
gen -m 4096 -k k- "$T/kt" t 2000
[ -n "$(find "$T/kt/t" -name '*.keys')" ] || fail "no key tables to leave alone"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat -o "$T/strace.out" timeout -s INT 1 "$SB" dump --follow "$T/kt" t >/dev/null || true
eq "$(grep -c '[.]keys"' "$T/strace.out")" 0 "dump --follow opened no key table: $(grep -m3 '[.]keys"' "$T/strace.out")"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat -o "$T/strace.out" "$SB" dump "$T/kt" t >/dev/null
eq "$(grep -c '[.]keys"' "$T/strace.out")" 0 "dump opened no key table"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat -o "$T/strace.out" "$SB" dump --keys "$T/kt" t >/dev/null
[ "$(grep -c '[.]keys"' "$T/strace.out")" -gt 0 ] || fail "dump --keys opened no key table (the check cannot see opens)"

# a corrupt record is named, the others still printed, exit 2
cp -a "$L" "$T/bad"
seg=$T/bad/orders/00000000000000000000.seg
pos=$(( $(grep -abo 'key-7rec 7' "$seg" | cut -d: -f1) + 5 ))
printf 'X' | dd of="$seg" bs=1 seek="$pos" conv=notrunc status=none
set +e; "$SB" dump "$T/bad/orders" --from 5 --count 5 >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 2 "corrupt record exit"
eq "$(cut -d' ' -f1 "$T/o" | tr '\n' ' ')" "offset=5 offset=6 offset=8 offset=9 " "records around the corrupt one"
eq "$(cat "$T/e")" "streambus dump: $T/bad/orders: record 7: corrupt data (checksum or format mismatch)" "corrupt record message"

# a damaged compressed block: its records said in two lines (the first,
# then the rest of the run), every record after it printed (a line each
# made 100 lines, then the dump stopped, silently, before the intact
# blocks after it)
gen -z -s 262144 -k z- "$T/zl" z 20000
zseg=$(ls "$T/zl/z/"*.seg | head -1)
printf 'XXXX' | dd of="$zseg" bs=1 seek=$(($(stat -c %s "$zseg") / 3)) conv=notrunc status=none
set +e; "$SB" dump "$T/zl/z" >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 2 "a damaged compressed block: exit 2"
eq "$(wc -l <"$T/e")" 2 "two lines for the block's records: $(head -3 "$T/e")"
more=$(sed -n 's/.*: the same (\([0-9]*\) more)$/\1/p' "$T/e")
[ -n "$more" ] || fail "the run not summed up: $(cat "$T/e")"
eq "$(( $(wc -l <"$T/o") + more + 1 ))" 20000 "every other record printed"
eq "$(tail -1 "$T/o" | cut -d' ' -f1)" "offset=19999" "the records after the block printed"

# damage the open itself meets (the last record of a sealed segment, which
# a mount refuses): the records before it printed, the rest named as not
# dumped, exit 2 (a backup by dump --raw must not look whole)
cp -a "$L" "$T/cut"
seg=$(ls "$T/cut/orders/"*.seg | sed -n 2p)
first=$(basename "$seg" .seg); first=$((10#$first))
printf 'X' | dd of="$seg" bs=1 seek=$(($(stat -c %s "$seg") - 3)) conv=notrunc status=none
set +e; "$SB" dump --raw "$T/cut/orders" >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 2 "a dump cut short by damage exits 2"
has "$(cat "$T/e")" "records from offset [0-9]+ on not dumped: the log is damaged at offset [0-9]+ \\([0-9]{20}\\.seg: byte [0-9]+: " "the rest is named"
n=$("$SB" dump "$T/cut/orders" 2>/dev/null | wc -l || true)
[ "$n" -gt "$first" ] && [ "$n" -lt 300 ] || fail "records before the damage: $n (segment from $first)"

# every topic, one of them refused (its first segment's header damaged):
# the others printed, the one left out named, exit 2 (as stat and verify)
cp -a "$L" "$T/left"
gen "$T/left" zz 3
printf 'XXXX' | dd of="$(ls "$T/left/zz/"*.seg | head -1)" bs=1 conv=notrunc status=none
set +e; "$SB" dump "$T/left" >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 2 "dump of every topic, one left out: exit 2 ($(cat "$T/e"))"
has "$(cat "$T/e")" "warning: zz: .*\\(the topic is left out\\)|warning: zz: a mount would recover" "the topic left out warned about"
has "$(cat "$T/e")" "$T/left: 1 topic left out" "and counted at the end"
eq "$(grep -c '^topic=orders ' "$T/o")" "$("$SB" dump "$L/orders" | wc -l)" "the other topics printed whole"
hasnt "$(cat "$T/o")" "^topic=zz " "nothing of the topic left out"

# errors: one line, naming the file, exit 2
run_rc rc "$SB" dump "$L/nosuch"
eq "$rc" 2 "missing topic exit"; eq "$out" "streambus dump: $L/nosuch: no such topic" "missing topic"
run_rc rc "$SB" dump "$T/none/orders"
eq "$rc" 2 "missing dir exit"; eq "$out" "streambus dump: $T/none/orders: No such file or directory" "missing dir"
run_rc rc "$SB" dump orders
eq "$rc" 2 "no LOG_DIR exit"; eq "$out" "streambus dump: orders: No such file or directory" "bare topic"
run_rc rc "$SB" dump --from x "$L/orders"
eq "$rc" 2 "bad --from exit"; has "$out" "--from wants an offset, not 'x'" "bad --from"
run_rc rc "$SB" dump --from
eq "$rc" 2 "--from without value"; has "$out" "needs a value" "--from without value"
run_rc rc "$SB" dump --raw --json "$L/orders"
eq "$rc" 2 "--raw --json exit"
# after delete_before, dump starts at the log start even though older
# records are still in the first segment
gen -s 4096 -i 256 -d 150 "$T/del" trimmed 300
eq "$("$SB" dump --count 2 "$T/del/trimmed" | cut -d' ' -f1 | tr '\n' ' ')" "offset=150 offset=151 " "dump after delete_before"
eq "$("$SB" dump --from 10 --count 1 "$T/del/trimmed" | cut -d' ' -f1)" "offset=150" "--from below the start"

# --since / --until: record o's time is 2023-11-14T22:13:20.123456789Z + o ms
offs() { cut -d' ' -f1 | sed 's/offset=//' | tr '\n' ' '; }
eq "$("$SB" dump --since 2023-11-14T22:13:20.165456789Z --count 2 "$L/orders" | offs)" "42 43 " "--since an exact time"
eq "$("$SB" dump --since 2023-11-14T22:13:20.165456790Z --count 1 "$L/orders" | offs)" "43 " "--since 1 ns after"
eq "$("$SB" dump --since @1700000000.2 --count 1 "$L/orders" | offs)" "77 " "--since @EPOCH.frac"
eq "$("$SB" dump --since 2023-11-14T23:13:20.165+01:00 --until 2023-11-14T22:13:20.170Z "$L/orders" | offs)" \
	"42 43 44 45 46 " "--since with a zone, --until"
eq "$("$SB" dump --since 2023-11-14 "$L/orders" | wc -l)" 300 "--since a date: midnight UTC"
eq "$("$SB" dump --since -1d "$L/orders")" "" "--since relative: nothing that recent"
eq "$("$SB" dump --until 2023-11-14 "$L/orders")" "" "--until before the first"
eq "$("$SB" dump --until @1800000000 "$L/orders" | wc -l)" 300 "--until after the last"
eq "$("$SB" dump --from 50 --since @1700000000.15 --count 1 "$L/orders" | offs)" "50 " "--from after --since wins"
eq "$("$SB" dump --since @1700000000.2 --until @1700000000.2 "$L/orders")" "" "--since = --until: empty"
# every topic: each its own start
out=$("$SB" dump --since 2023-11-14T22:13:20.420456789Z "$L")
eq "$(printf '%s\n' "$out" | cut -d' ' -f1,2 | tr '\n' ' ')" \
	"topic=late offset=1000 topic=late offset=1001 topic=late offset=1002 topic=orders offset=297 topic=orders offset=298 topic=orders offset=299 " \
	"--since over every topic (late's times are 1 s on)"
run_rc rc "$SB" dump --since yesterday "$L/orders"
eq "$rc" 2 "bad --since exit"; has "$out" "--since wants a time .*not 'yesterday'" "bad --since"
# a far date (past 2262, what ns in an int64 hold) is a bound like any
eq "$("$SB" dump --until 9999-12-31 "$L/orders" | wc -l)" 300 "--until 9999-12-31: every record"
eq "$("$SB" dump --since 9999-12-31 "$L/orders")" "" "--since 9999-12-31: none"
eq "$("$SB" dump --since 1600-01-01 "$L/orders" | wc -l)" 300 "--since 1600-01-01: every record"
# a clock step back: the running maximum (records 0..9 at 10, 50, 20, ...)
cat >"$T/steps.c" <<'CEOF'
#include <stdlib.h>
#include "sb_store.h"
int main(int argc, char **argv)
{
	static const long long ts[] = {10, 50, 20, 30, 60, 5, 60, 70, 65, 80};
	sb_store_options o;
	sb_store *s;
	sb_log *l;
	(void)argc;
	sb_store_options_default(&o);
	o.no_flusher = 1;
	if (sb_store_open(argv[1], &o, &s) || sb_store_create(s, "steps") || sb_store_get(s, "steps", &l))
		return 1;
	for (int i = 0; i < 10; i++) {
		sb_record_in r = {.value = "x\n", .value_len = 2, .timestamp_ns = ts[i] * 1000000000LL};
		if (sb_log_append(l, &r, 1, NULL))
			return 1;
	}
	return sb_store_close(s) ? 1 : 0;
}
CEOF
cc -std=c11 -D_GNU_SOURCE -O1 -g $(grep -q '^SB_SANITIZE:BOOL=ON' "$SB_BUILD/CMakeCache.txt" 2>/dev/null &&
	echo -fsanitize=address,undefined) -I"$SB_TOP/store/include" "$T/steps.c" "$SB_BUILD/libsbstore.a" -llz4 -lzstd \
	-lpthread -lm -o "$T/steps" || fail "cannot build the steps generator"
"$T/steps" "$T/st" || fail "steps generator"
eq "$("$SB" dump --since @25 "$T/st/steps" | offs)" "1 2 3 4 5 6 7 8 9 " "--since after a step back"
eq "$("$SB" dump --since @55 --until @66 "$T/st/steps" | offs)" "4 5 6 " "--until at the running maximum"
eq "$("$SB" dump --since @61 "$T/st/steps" | offs)" "7 8 9 " "--since: a later equal time is no start"
echo "t_tool_dump: ok"
