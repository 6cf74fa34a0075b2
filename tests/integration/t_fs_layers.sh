#!/usr/bin/env bash
# fs/ layers one way (fs/DESIGN.md): tools/check-fs-layers passes on fs/,
# and fails on copies of fs/ broken the ways it guards against (the tree
# calling up into files being created, the store backend including a store
# internal, a handler file without a layer, a file of 1,000 lines). No
# mount: about a second.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
check=$top/tools/check-fs-layers
tmp=$(mktemp -d /tmp/t_fs_layers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0

expect() { # expect 0|1 WHAT DIR [NEEDLE]
	local want=$1 what=$2 dir=$3 needle=${4:-} out rc
	out=$("$check" "$dir" 2>&1) && rc=0 || rc=$?
	checks=$((checks + 1))
	if [ "$rc" -ne "$want" ] || { [ -n "$needle" ] && [[ "$out" != *"$needle"* ]]; }; then
		echo "FAIL: $what: exit $rc (want $want${needle:+, naming '$needle'}): $out"
		fails=$((fails + 1))
	fi
}

expect 0 "fs/ as it is" "$top/fs"

broken() { rm -rf "$tmp/fs"; cp -r "$top/fs" "$tmp/fs"; }
broken
printf '\nint sbfs_layer_probe(sbfs *fs, fuse_ino_t ino, struct stat *st) { return sbfs_pending_attr(fs, ino, st); }\n' >> "$tmp/fs/tree.c"
expect 1 "tree.c calling pending.c" "$tmp/fs" "tree.c:"
broken
printf '\nvoid sbfs_layer_probe(sbfs *fs) { sbfs_notify_stop(fs); }\n' >> "$tmp/fs/handles.c"
expect 1 "handles.c calling notify.c" "$tmp/fs" "sbfs_notify_stop"
broken
sed -i '0,/#include "config.h"/s//#include "config.h"\n#include "format.h"/' "$tmp/fs/backend_store.c"
expect 1 "backend_store.c including format.h" "$tmp/fs" "format.h"
broken
sed -i '0,/#include "fs.h"/s//#include "fs.h"\n#include "sb_store.h"/' "$tmp/fs/ops_read.c"
expect 1 "a handler including sb_store.h" "$tmp/fs" "sb_store.h"
broken
printf '#include "fs.h"\nint sbfs_layer_probe(void) { return 0; }\n' > "$tmp/fs/misc.c"
expect 1 "a file without a layer" "$tmp/fs" "misc.c"
broken
seq 1000 | sed 's,.*,/* & */,' >> "$tmp/fs/attr.c"
expect 1 "a file of 1,000 lines" "$tmp/fs" "attr.c"

if [ "$fails" -ne 0 ]; then
	echo "t_fs_layers: $fails of $checks checks failed"
	exit 1
fi
echo "t_fs_layers: ok ($checks checks)"
