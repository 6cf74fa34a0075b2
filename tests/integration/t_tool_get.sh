#!/usr/bin/env bash
# streambus get (the latest value of a key) and dump --keys (the latest
# record of every key, in byte order of the key), on a log written with the
# store API, then reopened (the key index comes back from its tables and
# the log), with a lost key table, and with a damaged one.
. "$(dirname "$0")/lib_tool.sh"
gen_build
L=$T/log
gen -s 4096 -i 256 -k key- "$L" orders 3000
gen -x "$L" plain 2                      # no keys at all

eq "$("$SB" get "$L" orders key-42)" "rec 42" "get key-42"
eq "$("$SB" get "$L/orders" key-2999)" "rec 2999" "get LOG_DIR/TOPIC KEY"
run_rc rc "$SB" get "$L" orders key-3000
eq "$rc" 1 "no such key: exit 1"
has "$out" "orders: no such key: key-3000$" "no such key: said, naming the key"
run_rc rc "$SB" get "$L" plain key-0
eq "$rc" 1 "a topic without keys"
run_rc rc "$SB" get "$L" nosuch key-0
eq "$rc" 2 "no such topic: exit 2"
run_rc rc "$SB" get "$L" orders
eq "$rc" 2 "no key: usage"

# get, dump and dump --follow of one topic open that topic alone: their
# cost is its own, not LOG_DIR's (they opened every topic: 30,052 openat
# for one get among 5,000 topics, tests/explore9/get_opens_all_topics.sh).
# (LeakSanitizer cannot run under strace: off for these runs.)
for i in 1 2 3 4 5 6; do gen -x "$L" other$i 2; done
st() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat,open -o "$T/st" "$@"; }
st "$SB" get "$L" orders key-42 >/dev/null
eq "$(grep -c '/other' "$T/st")" 0 "get opened no file of another topic: $(grep -m2 '/other' "$T/st")"
has "$(cat "$T/st")" "/orders/" "get opened its topic (strace saw the opens)"
st "$SB" dump "$L" orders >/dev/null
eq "$(grep -c '/other' "$T/st")" 0 "dump TOPIC opened no file of another topic"
st timeout -s INT 1 "$SB" dump --follow "$L" orders >/dev/null || true
eq "$(grep -c '/other' "$T/st")" 0 "dump --follow TOPIC opened no file of another topic"
# and so do stat and verify of one topic (they opened every topic too)
st "$SB" stat "$L" orders >/dev/null
eq "$(grep -c '/other' "$T/st")" 0 "stat TOPIC opened no file of another topic: $(grep -m2 '/other' "$T/st")"
st "$SB" verify "$L" orders >/dev/null
eq "$(grep -c '/other' "$T/st")" 0 "verify TOPIC opened no file of another topic: $(grep -m2 '/other' "$T/st")"
has "$(cat "$T/st")" "/orders/" "verify opened its topic (strace saw the opens)"

out=$("$SB" dump --keys "$L/orders")
eq "$(printf '%s\n' "$out" | wc -l)" 3000 "dump --keys: one line a key"
eq "$(printf '%s\n' "$out" | sed -n 1p | cut -d' ' -f1,3)" 'offset=0 key="key-0"' "first key in byte order"
eq "$(printf '%s\n' "$out" | sed -n 2p | cut -d' ' -f1,3)" 'offset=1 key="key-1"' "then key-1"
eq "$(printf '%s\n' "$out" | sed -n 3p | cut -d' ' -f1,3)" 'offset=10 key="key-10"' "then key-10 (bytes, not numbers)"
eq "$(printf '%s\n' "$out" | awk '{print $3}' | LC_ALL=C sort -c && echo sorted)" "sorted" "byte order"
eq "$("$SB" dump --keys --count 2 "$L/orders" | wc -l)" 2 "--keys --count"
eq "$("$SB" dump --keys "$L/plain")" "" "no keys: nothing"

# One damaged table early in a chain of them: the tables after it are not
# used either, and get says so in one warning (it said it once a table),
# verify in one note on stdout (derived data: exit 0; not the warning that
# points at verify itself).
M=$T/many
gen -k k- -m 4096 "$M" t 4000
chain=$(find "$M/t" -name '*.keys' | sort)
n=$(printf '%s\n' $chain | wc -l)
[ "$n" -ge 6 ] || fail "only $n key tables: too few for a chain"
printf 'XXXXXXXX' | dd of="$(printf '%s\n' $chain | sed -n 2p)" bs=1 seek=200 conv=notrunc status=none
out=$("$SB" get "$M" t k-3999 2>"$T/get.err") || fail "get with a damaged table in a chain"
eq "$out" "rec 3999" "the latest value, from the log"
eq "$(wc -l <"$T/get.err")" 1 "one warning: $(cat "$T/get.err")"
has "$(cat "$T/get.err")" "nor are the $((n - 2)) tables after it" "the tables after it counted"
out=$("$SB" verify "$M" 2>"$T/verify.err") || fail "verify: a damaged key table is not damage to the records"
eq "$(printf '%s\n' "$out" | grep -c 'key index:.*derived data')" 1 "verify: one note: $out"
hasnt "$(cat "$T/verify.err")" "see 'streambus verify'" "verify does not point at itself"

# Key tables that name records of other keys (sound CRCs: another log's
# tables with the same offsets): dump --keys printed the other keys'
# records under these keys with exit 0. Now each is an error, nothing
# wrong is printed (exit 2), and get and dump say what rebuilds the index.
gen -m 4096 -k a- "$T/fa" t 600
gen -m 4096 -k b- "$T/fb" t 600
rm -f "$T"/fb/t/*.keys
cp "$T"/fa/t/*.keys "$T/fb/t/"
[ -n "$(find "$T/fb/t" -name '*.keys')" ] || fail "no foreign key tables"
run_rc rc "$SB" dump --keys "$T/fb" t
eq "$rc" 2 "dump --keys over foreign tables: exit 2 ($(printf '%s\n' "$out" | head -2))"
hasnt "$out" '^offset=' "dump --keys printed a record under another key's name"
has "$out" "names a record of another key" "dump --keys says why"
has "$out" "streambus recover" "dump --keys says what rebuilds the key index"
run_rc rc "$SB" get "$T/fb" t a-7
eq "$rc" 2 "get over foreign tables: exit 2"
hasnt "$out" "a mount would recover" "get: not said as something a mount recovers: $out"
has "$out" "streambus recover" "get says what rebuilds the key index"
run_rc rc "$SB" verify -q "$T/fb"
eq "$rc" 1 "verify: wrong key entries are damage"
eq "$(printf '%s\n' "$out" | grep -c 'key index')" 11 "verify: 10 wrong keys named, then one summary: $(printf '%s\n' "$out" | tail -1)"
has "$out" "600 of 600 keys name the wrong record \(the first 10 named\)" "verify: the count"
run_rc rc "$SB" verify --json "$T/fb"
eq "$rc" 1 "verify --json: wrong key entries are damage (it skipped the key check: exit 0)"
eq "$(printf '%s\n' "$out" | json '[k["wrong"] for k in j["key_index"]], j["damage"], len(j["key_index"][0]["problems"])')" \
   "([600], 600, 10)" "verify --json: the key check's counts"
"$SB" recover "$T/fb" >/dev/null || fail "recover of foreign key tables"
eq "$("$SB" get "$T/fb" t b-7)" "rec 7" "after recover: the log's own keys"
eq "$("$SB" dump --keys "$T/fb" t | wc -l)" 600 "after recover: every key"

# The key index is derived data: lose or damage its tables, get still works.
tables=$(find "$L/orders" -name '*.keys' | sort)
# (gen has no flusher: the tables are written as the MemTable fills, if at all)
for f in $tables; do
	printf 'XXXXXXXX' | dd of="$f" bs=1 seek=10 conv=notrunc status=none
done
eq "$("$SB" get "$L" orders key-1234)" "rec 1234" "get with damaged tables"
rm -f $tables
eq "$("$SB" get "$L" orders key-7)" "rec 7" "get with lost tables"
"$SB" verify "$L" >/dev/null || fail "verify after the key tables were damaged and lost"
echo "t_tool_get: ok"
