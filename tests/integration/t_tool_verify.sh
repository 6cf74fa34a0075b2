#!/usr/bin/env bash
# streambus verify: exit 0 and a summary on clean logs; exit 1 and each
# problem named by file and byte on a flipped byte or a cut tail; a missing
# or stale index is a note, not damage; recover then verify passes again;
# verify changes nothing; a progress
# bar only on a terminal; exit 2 on usage and I/O errors.
. "$(dirname "$0")/lib_tool.sh"
gen_build
C=$T/clean
gen -s 4096 -i 256 -k key- "$C" orders 300
gen "$C" empty 0
gen -a 1000 "$C" late 5
nseg=$(ls "$C"/orders/*.seg | wc -l)
[ "$nseg" -ge 3 ] || fail "want several segments, got $nseg"
fresh() { rm -rf "$T/log"; cp -a "$C" "$T/log"; L=$T/log; O=$L/orders; }
snap() { (cd "$1" && find . -printf '%p %s\n' | sort && cat */* | md5sum); }

# clean
fresh
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "clean exit ($out)"
eq "$(printf '%s\n' "$out" | sed -n 1p)" "empty: ok (0 records, 1 segment, 32 bytes, 0 index entries)" "empty summary"
has "$(printf '%s\n' "$out" | sed -n 2p)" '^late: ok \(5 records, offsets 1000\.\.1004, 1 segment, ' "late summary"
has "$(printf '%s\n' "$out" | sed -n 3p)" "^orders: ok \\(300 records, offsets 0\\.\\.299, $nseg segments, $(cat "$O"/*.seg | wc -c) bytes, [0-9]+ index entries\\)$" "orders summary"
eq "$(printf '%s\n' "$out" | wc -l)" 3 "one line per topic"
run_rc rc "$SB" verify "$L" late
eq "$rc" 0 "one topic exit"; eq "$(printf '%s\n' "$out" | wc -l)" 1 "one topic only"

# a log directory without a topic (a daemon mounted it, nothing written):
# clean, exit 0 (it passed a NULL list to qsort: UBSan, found by t_faults)
mkdir "$T/notopics"
run_rc rc "$SB" verify "$T/notopics"
eq "$rc" 0 "verify of a log without topics ($out)"

# records before the log start (meta) that are still in a segment are fine
gen -s 4096 -i 256 -d 150 "$T/del" trimmed 300
run_rc rc "$SB" verify "$T/del"
eq "$rc" 0 "verify after delete_before ($out)"
has "$out" '^trimmed: ok \(' "trimmed ok"

# LOG_DIR/TOPIC is LOG_DIR TOPIC; a topic directory as the LOG_DIR of
# `LOG_DIR TOPIC` is an error
eq "$("$SB" verify "$O")" "$("$SB" verify "$L" orders)" "verify LOG_DIR/TOPIC"
run_rc rc "$SB" verify "$O" orders
eq "$rc" 2 "topic dir exit"; has "$out" "a topic directory, not a LOG_DIR" "topic dir message"

# a flipped byte in the payload of record 133 (second segment)
fresh
seg=$(grep -l 'key-133rec 133' "$O"/*.seg)
pos=$(grep -abo 'key-133rec 133' "$seg" | cut -d: -f1)
rpos=$((pos - 32))                      # the record starts 32 bytes before its key
printf 'X' | dd of="$seg" bs=1 seek=$((pos + 8)) conv=notrunc status=none
before=$(snap "$L")
set +e; "$SB" verify "$L" >"$T/o" 2>"$T/e"; rc=$?; set -e
eq "$rc" 1 "flipped byte exit"
eq "$(cat "$T/e")" "" "nothing on stderr when piped (no progress bar)"
eq "$(sed -n 3p "$T/o")" "orders: offset 133: $seg: byte $rpos: record 133 fails its CRC (47 bytes)" "flipped byte message"
has "$(cat "$T/o")" '^orders: 1 problem \(299 records, ' "flipped byte summary"
eq "$(tail -1 "$T/o")" "damage found: 1 problem" "damage line"
eq "$(snap "$L")" "$before" "verify changed files"
run_rc rc "$SB" verify -q "$L"
eq "$rc" 1 "quiet exit"; eq "$out" "orders: offset 133: $seg: byte $rpos: record 133 fails its CRC (47 bytes)" "quiet: problems only"

# a cut tail: the last record is torn, the index covers bytes that are gone
fresh
last=$(ls "$O"/*.seg | tail -1)
size=$(stat -c %s "$last")
truncate -s $((size - 5)) "$last"
run_rc rc "$SB" verify "$L" orders
eq "$rc" 1 "cut tail exit"
has "$out" "^orders: offset 299: $last: byte $((size - 47)): torn record: it claims 47 bytes, the file has 42 left$" "torn message"
has "$out" "^orders: ${last%.seg}.idx: byte 20: index covers $size bytes but the segment file has $((size - 5)) \\(will be rebuilt: not counted\\)$" "stale index message"
has "$out" '^orders: 1 problem \(299 records, offsets 0\.\.298,' "cut tail summary"
run_rc rc "$SB" recover "$L"
eq "$rc" 1 "recover refuses a cut after a clean close (SPEC §6: never cut silently)"
run_rc rc "$SB" recover --cut "$L"
eq "$rc" 0 "recover --cut after cut"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "verify after recover ($out)"
has "$out" '^orders: ok \(299 records, offsets 0\.\.298,' "recovered summary"

# a missing index: derived data (a full disk can leave it missing), noted
# as such, not counted as damage; recover rebuilds it
fresh
idx=$(ls "$O"/*.idx | sed -n 2p)
rm "$idx"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "missing index exit"
has "$out" "^orders: $idx: missing index \\(rebuildable from its segment\\) \\(will be rebuilt: not counted\\)$" "missing index message"
has "$out" '^orders: ok \(300 records' "missing index summary"
"$SB" recover "$L" >/dev/null
[ -f "$idx" ] || fail "recover did not rebuild $idx"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "verify after index rebuild ($out)"

# hold_as_mount: take LOG_DIR's lock and look like a mounted daemon (a
# note naming the lock's taker and a mount of LOG_DIR, here a tmpfs with
# LOG_DIR as its source), as streambusfs does; release: let go of both.
# (A holder that is not a mount is waited for, 10 s, by the key check.)
MP=$T/mp
mkdir "$MP"
hold_as_mount() {
	local ino pid
	exec 9>>"$L/.lock"; flock -n 9 || fail "cannot take the lock"
	ino=$(stat -c %i "$L/.lock")
	pid=$(awk -v i=":$ino" '$2 == "FLOCK" && index($6, i) && substr($6, length($6) - length(i) + 1) == i { print $5 }' /proc/locks | head -1)
	[ -n "$pid" ] || fail "the lock is not in /proc/locks"
	mount -t tmpfs -o size=1m "$L" "$MP" || fail "cannot mount a tmpfs (root needed) to stand for the mount"
	printf '%s\n%s\n%s\n' "$pid" "$MP" "$L" >"$L/.lock"
}
release() { umount "$MP" || fail "umount $MP"; exec 9>&-; }
sb_cleanup_hooks+=('mountpoint -q "$MP" && umount "$MP"')

# while LOG_DIR is locked (mounted), a missing or stale index of the newest
# segment is expected (indexes are written when a segment closes): noted as
# such; an older segment's missing index is noted as one to rebuild
fresh
newest=$(ls "$O"/*.idx | tail -1)
rm "$newest"
hold_as_mount
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "newest index missing while in use ($out)"
has "$out" "^$L: in use \\(mounted\\?\\)" "in-use note"
has "$out" "^orders: $newest: missing index \\(rebuildable from its segment\\) \\(in use: not counted\\)$" "not counted"
rm "$idx"
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "older index missing while in use"
has "$out" "^orders: $idx: missing index \\(rebuildable from its segment\\) \\(will be rebuilt: not counted\\)$" "older index noted"
release
run_rc rc "$SB" verify "$L"
eq "$rc" 0 "newest index missing when not in use"

# garbage after zeros at the end of a segment is damage; zeros alone are not
fresh
head -c 300 /dev/zero >>"$last"
run_rc rc "$SB" verify "$L" orders
eq "$rc" 0 "zeros at the end ($out)"
printf 'junk' >>"$last"
run_rc rc "$SB" verify "$L" orders
eq "$rc" 1 "garbage tail exit"
has "$out" "^orders: offset 300: $last: byte $((size + 300)): garbled tail: nonzero bytes after the end of the records at byte $size$" "garbage message"
# ... but not while the log is mounted: there, in the newest segment, it is a
# record being written (a reader can see its later bytes before its header)
hold_as_mount
run_rc rc "$SB" verify "$L" orders
eq "$rc" 0 "garbage tail of the newest segment while in use ($out)"
has "$out" "^orders: offset 300: $last: byte $((size + 300)): garbled tail: nonzero bytes after the end of the records at byte $size \\(in use: being written: not counted\\)$" "in-use garbage message"
release

# a lost segment: offsets jump
fresh
mid=$(ls "$O"/*.seg | sed -n 2p); next=$(ls "$O"/*.seg | sed -n 3p)
rm "$mid" "${mid%.seg}.idx"
run_rc rc "$SB" verify "$L"
eq "$rc" 1 "lost segment exit"
has "$out" "^orders: $next: segment starts at offset $((10#$(basename "$next" .seg))), the previous segment ends before $((10#$(basename "$mid" .seg))) \\(records missing\\)$" "gap message"

# progress bar: on a terminal only, with percent, rate and time left
fresh
script -qec "$SB verify $L >/dev/null" /dev/null >"$T/tty" || fail "verify on a tty"
grep -q '%' "$T/tty" && grep -q '/s' "$T/tty" && grep -q 'left' "$T/tty" || fail "no progress bar on a terminal: $(cat -v "$T/tty")"
script -qec "$SB verify --no-progress $L >/dev/null" /dev/null >"$T/tty2" || true
[ ! -s "$T/tty2" ] || fail "--no-progress still drew: $(cat -v "$T/tty2")"
"$SB" verify --progress "$L" 2>"$T/e" >/dev/null
grep -q 'left' "$T/e" || fail "--progress draws even when piped"

# usage and I/O errors: exit 2, one line naming the file
run_rc rc "$SB" verify "$T/none"
eq "$rc" 2 "missing dir exit"; eq "$out" "streambus verify: $T/none: No such file or directory" "missing dir"
run_rc rc "$SB" verify "$L" nosuch
eq "$rc" 2 "missing topic exit"; eq "$out" "streambus verify: $L/nosuch: no such topic" "missing topic"
run_rc rc "$SB" verify
eq "$rc" 2 "no args exit"
run_rc rc "$SB" verify -x "$L"
eq "$rc" 2 "bad option exit"
if [ "$(id -u)" -ne 0 ]; then
	chmod 000 "$last"
	run_rc rc "$SB" verify "$L"
	eq "$rc" 2 "unreadable segment exit"; has "$out" "orders: $last: cannot open" "unreadable"
	chmod 644 "$last"
fi
# a directory where a segment should be: cannot be read -> 2
fresh
mkdir "$O/00000000000099999990.seg"
run_rc rc "$SB" verify "$L" orders
eq "$rc" 2 "unreadable segment exit ($out)"
has "$out" "^streambus verify: orders: $O/00000000000099999990.seg: " "unreadable segment named"
# more segments than open files allowed: the key check cannot open the log,
# an I/O error (exit 2), not a clean exit (it said the error and exited 0)
gen -s 4096 "$T/manysegs" m 10000
[ "$(ls "$T/manysegs/m"/*.seg | wc -l)" -ge 80 ] || fail "want 80 segments or more"
run_rc rc bash -c 'ulimit -n 40 && exec "$0" verify "$1"' "$SB" "$T/manysegs"
eq "$rc" 2 "verify under too low a limit of open files ($out)"
has "$out" "Too many open files" "the error said"
run_rc rc "$SB" verify "$T/manysegs"
eq "$rc" 0 "the same log under the usual limit ($out)"
echo "t_tool_verify: ok"
