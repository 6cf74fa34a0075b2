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
has "$out" "no such key" "no such key: said"
run_rc rc "$SB" get "$L" plain key-0
eq "$rc" 1 "a topic without keys"
run_rc rc "$SB" get "$L" nosuch key-0
eq "$rc" 2 "no such topic: exit 2"
run_rc rc "$SB" get "$L" orders
eq "$rc" 2 "no key: usage"

out=$("$SB" dump --keys "$L/orders")
eq "$(printf '%s\n' "$out" | wc -l)" 3000 "dump --keys: one line a key"
eq "$(printf '%s\n' "$out" | sed -n 1p | cut -d' ' -f1,3)" 'offset=0 key="key-0"' "first key in byte order"
eq "$(printf '%s\n' "$out" | sed -n 2p | cut -d' ' -f1,3)" 'offset=1 key="key-1"' "then key-1"
eq "$(printf '%s\n' "$out" | sed -n 3p | cut -d' ' -f1,3)" 'offset=10 key="key-10"' "then key-10 (bytes, not numbers)"
eq "$(printf '%s\n' "$out" | awk '{print $3}' | LC_ALL=C sort -c && echo sorted)" "sorted" "byte order"
eq "$("$SB" dump --keys --count 2 "$L/orders" | wc -l)" 2 "--keys --count"
eq "$("$SB" dump --keys "$L/plain")" "" "no keys: nothing"

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
