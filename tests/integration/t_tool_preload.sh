#!/usr/bin/env bash
# The installed streambus does not replace the allocator (allocation counting
# lives in streambus-bench, which is not installed): it defines no malloc,
# calloc, realloc or free, and runs under an LD_PRELOAD allocator (jemalloc,
# Debian's libjemalloc2) with the same output as without. streambus-bench
# is not installed.
. "$(dirname "$0")/lib_tool.sh"
gen_build
L=$T/log
gen -s 4096 -i 256 -k key- "$L" orders 300
gen -x "$L" bin 2

defs=$(nm -D --defined-only "$SB" | awk '$3 ~ /^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign)$/ { print $3 }')
eq "$defs" "" "allocator functions defined by $SB"

if grep -q '^SB_SANITIZE:BOOL=ON' "$SB_BUILD/CMakeCache.txt" 2>/dev/null; then
	# ASan owns the allocator and must come first: only the symbol check.
	echo "t_tool_preload: ok (sanitizer build: LD_PRELOAD part not applicable)"
	exit 0
fi
je=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1)
[ -n "$je" ] || fail "libjemalloc.so.2 is missing (tools/packages.txt: libjemalloc2)"
for args in "stat $L" "stat --json $L orders" "dump $L/orders" "dump --json $L bin" \
	    "verify $L" "verify --json $L/orders"; do
	want=$("$SB" $args 2>&1) || fail "streambus $args: $want"
	set +e; got=$(LD_PRELOAD=$je "$SB" $args 2>&1); rc=$?; set -e
	eq "$rc" 0 "LD_PRELOAD=jemalloc streambus $args: exit ($got)"
	eq "$got" "$want" "LD_PRELOAD=jemalloc streambus $args: output"
done
# recover writes (and frees what the store allocated on open)
cp -a "$L" "$T/r"
LD_PRELOAD=$je "$SB" recover "$T/r" >"$T/o" 2>&1 || fail "LD_PRELOAD=jemalloc streambus recover: $(cat "$T/o")"

P=$T/prefix
cmake --install "$SB_BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"
[ -x "$P/bin/streambus" ] || fail "bin/streambus missing"
[ ! -e "$P/bin/streambus-bench" ] || fail "streambus-bench (it replaces malloc) is installed"
[ -x "$SB_BUILD/streambus-bench" ] || fail "streambus-bench is not built"
echo "t_tool_preload: ok"
