#!/usr/bin/env bash
# SPEC §6: damage that cannot be a torn write is never cut silently.
# Two topics, one damaged after a clean unmount: the mount succeeds, names
# the file and byte of the damage and how to repair it, serves the good
# topic (reads, appends) and gives EIO for the damaged one (still listed);
# streambus verify exits 1, recover leaves it and says so (exit 1), recover
# --cut drops the damaged record alone (its offset a gap; the records after
# it, in the newest segment too, kept: a new segment takes the appends),
# verify then exits 0 and a remount serves the rest.
# Damage the mount does not look at (before the last index entry) is found
# by verify and recover the same way, and reads of it fail with EIO. A
# deleted or damaged meta after rm: verify exits 1, recover repairs it.
. "$(dirname "$0")/lib.sh"
SB=$SB_BUILD/streambus
[ -x "$SB" ] || sb_die "no tool at $SB (build it first)"
M=$SB_MNT
SEG=00000000000000000000.seg

# flip PATH POS: xor the byte at POS with 0x5a
flip() {
	python3 -c 'import sys
p, at = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0x5a]))' "$1" "$2"
}
# each record of "bad": a 32-byte header and a 32-byte payload
payload() { printf 'bad-%03d-xxxxxxxxxxxxxxxxxxxxxxx\n' "$1"; }
recpos() { echo $((32 + 64 * $1)); }
# run_tool VAR CMD...: stdout+stderr into $out, exit status into VAR
run_tool() { local __v=$1; shift; out=$(t "$@" 2>&1); printf -v "$__v" '%s' $?; }

fill() {
	mkdir "$M/good" "$M/bad" || sb_die "mkdir"
	assert_sh_ok 'for i in $(seq 0 99); do echo "good-$i"; done >>"$1"' "$M/good/.log"
	assert_sh_ok 'for i in $(seq 0 99); do printf "bad-%03d-xxxxxxxxxxxxxxxxxxxxxxx\n" $i; done >>"$1"' "$M/bad/.log"
}

case_ "a clean log, then a flipped byte in record 80 of the only segment of one topic"
sb_mount
fill
sb_umount
assert_eq $((32 + 64 * 100)) "$(stat -c %s "$SB_LOG/bad/$SEG")" "segment size (64-byte records)"
cp -a "$SB_LOG" "$SB_TMP/pristine"
flip "$SB_LOG/bad/$SEG" $(($(recpos 80) + 40))
before=$(cd "$SB_LOG/bad" && md5sum * | sort)

case_ "the mount succeeds, names file and byte, refuses only that topic"
sb_mount
dout=$(cat "$SB_TMP/daemon.$SB_MOUNT_SEQ.out")
assert_true 'printf "%s\n" "$dout" | grep -q "topic bad refused.*$SEG: byte $(recpos 80): corrupt record"' \
	"daemon names topic, file and byte: [$dout]"
assert_true 'printf "%s\n" "$dout" | grep -qF "streambus recover --cut $SB_LOG bad"' "daemon gives the repair command"
assert_eq "bad good" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')" "both topics listed"
assert_fail_with EIO ls "$M/bad"
assert_fail_with EIO cat "$M/bad/.log"
assert_fail_with EIO stat "$M/bad"
assert_fail_with EIO rmdir "$M/bad"
assert_fail_with "EEXIST|EIO" mkdir "$M/bad"
assert_fail_with EIO touch "$M/bad/new"
assert_eq 100 "$(sb_count "$M/good")" "good topic records"
assert_eq "good-42" "$(t cat "$M/good/$(rec 42)")" "good topic reads"
assert_sh_ok 'echo good-100 >>"$1"' "$M/good/.log"
assert_eq "good-100" "$(t cat "$M/good/$(rec 100)")" "good topic appends"
sb_umount
assert_eq "$before" "$(cd "$SB_LOG/bad" && md5sum * | sort)" "the refused topic's files are unchanged"

case_ "the daemon in the foreground says so on its stderr (its log) too"
sb_mount_fg
sb_wait_until 'grep -q "topic bad refused" "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"' 5
assert_true 'grep -q "topic bad refused.*byte $(recpos 80)" "$SB_TMP/daemon.$SB_MOUNT_SEQ.out"' "foreground log line"
sb_umount

case_ "verify exits 1; recover refuses to cut it (exit 1); recover --cut drops the damaged record alone"
run_tool rc "$SB" verify "$SB_LOG"
assert_eq 1 "$rc" "verify exit on damage: $out"
assert_true 'printf "%s\n" "$out" | grep -q "bad/$SEG: byte $(recpos 80): "' "verify names file and byte"
run_tool rc "$SB" recover "$SB_LOG"
assert_eq 1 "$rc" "recover exit with damage left: $out"
assert_true 'printf "%s\n" "$out" | grep -qF "streambus recover --cut $SB_LOG bad"' "recover names the repair"
assert_eq "$before" "$(cd "$SB_LOG/bad" && md5sum * | sort)" "recover without --cut changed nothing"
run_tool rc "$SB" recover --cut "$SB_LOG" bad
assert_eq 0 "$rc" "recover --cut exit: $out"
assert_true 'printf "%s\n" "$out" | grep -q "corrupt record at byte $(recpos 80): offsets 80 to 80 (1 record) dropped"' "the drop is reported: $out"
run_tool rc "$SB" verify "$SB_LOG"
assert_eq 0 "$rc" "verify after recover --cut: $out"

case_ "a remount serves the records around the damaged one and appends after them"
sb_mount
assert_eq 99 "$(sb_count "$M/bad")" "records left: all but the damaged one"
assert_eq "$(for i in $(seq 0 99); do [ "$i" = 80 ] || payload "$i"; done)" "$(t cat "$M/bad/.log")" "the rest, intact"
assert_fail_with ENOENT cat "$M/bad/$(rec 80)"
assert_sh_ok 'echo after >>"$1"' "$M/bad/.log"
assert_eq "after" "$(t cat "$M/bad/$(rec 100)")" "append after them"
assert_eq 101 "$(sb_count "$M/good")" "good topic intact"
sb_umount

case_ "damage before the last index entry: reads give EIO; verify and recover find it"
rm -rf "$SB_LOG"
cp -a "$SB_TMP/pristine" "$SB_LOG"
flip "$SB_LOG/bad/$SEG" $(($(recpos 20) + 40))
sb_mount
assert_fail_with EIO cat "$M/bad/$(rec 20)"
assert_eq "$(payload 21)" "$(t cat "$M/bad/$(rec 21)")" "the next record reads"
assert_eq "$(payload 99)" "$(t cat "$M/bad/$(rec 99)")" "the last record reads"
assert_eq 100 "$(sb_count "$M/bad")" "nothing cut"
sb_umount
run_tool rc "$SB" verify "$SB_LOG"
assert_eq 1 "$rc" "verify exit: $out"
run_tool rc "$SB" stat "$SB_LOG"
assert_eq 0 "$rc" "stat exit: $out"
assert_true '! printf "%s\n" "$out" | grep -q 1970' "stat shows no bogus time: $out"
run_tool rc "$SB" recover "$SB_LOG"
assert_eq 1 "$rc" "recover (no --cut) sees what verify sees: $out"
assert_true 'printf "%s\n" "$out" | grep -q "bad: $SEG: byte $(recpos 20): corrupt record"' "recover names it: $out"
run_tool rc "$SB" recover --cut "$SB_LOG"
assert_eq 0 "$rc" "recover --cut exit: $out"
run_tool rc "$SB" verify "$SB_LOG"
assert_eq 0 "$rc" "verify after the cut: $out"
sb_mount
assert_eq 99 "$(sb_count "$M/bad")" "the records before and after the damaged one"
assert_fail_with ENOENT cat "$M/bad/$(rec 20)"
assert_eq "$(payload 21)" "$(t cat "$M/bad/$(rec 21)")" "the next record reads"
sb_umount

case_ "stat of a topic whose oldest record is unreadable: no bogus time, a warning"
rm -rf "$SB_LOG"
cp -a "$SB_TMP/pristine" "$SB_LOG"
flip "$SB_LOG/bad/$SEG" $(($(recpos 0) + 5))
out=$(t "$SB" stat "$SB_LOG" 2>"$SB_TMP/stat.err"); rc=$?
assert_eq 0 "$rc" "stat exit: $out"
assert_true '! printf "%s
" "$out" | grep -q 1970' "stat shows no 1970: $out"
assert_true 'printf "%s
" "$out" | grep -Eq "^bad +0 +100 +100 .* - +"' "stat shows - for the oldest time: $out"
assert_true 'grep -q "warning: bad: damaged" "$SB_TMP/stat.err"' "stat warns: $(cat "$SB_TMP/stat.err")"

case_ "a deleted or damaged meta after rm of whole segments"
rm -rf "$SB_LOG"
mkdir "$SB_LOG"
sb_mount -o segment_bytes=4096
mkdir "$M/m" || sb_die "mkdir m"
assert_sh_ok 'for i in $(seq 0 399); do echo "m-$i"; done >>"$1"' "$M/m/.log"
assert_sh_ok 'for i in $(seq 0 199); do rm "$1/$(printf %020d $i)" || exit 1; done' "$M/m"
sb_umount
assert_true '[ -f "$SB_LOG/m/meta" ]' "meta written by rm"
first=$(ls "$SB_LOG/m" | grep '\.seg$' | head -1)
assert_true '[ "$first" != "$SEG" ]' "whole segments removed"
cp "$SB_LOG/m/meta" "$SB_TMP/meta.saved"
run_tool rc "$SB" verify "$SB_LOG" m
assert_eq 0 "$rc" "verify before: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^m: ok (200 records, offsets 200\.\.399"' "verify counts from the log start: $out"
rm "$SB_LOG/m/meta"
run_tool rc "$SB" verify "$SB_LOG" m
assert_eq 1 "$rc" "verify with meta deleted: $out"
assert_true 'printf "%s\n" "$out" | grep -q "m/meta: missing"' "verify names meta: $out"
run_tool rc "$SB" recover "$SB_LOG"
assert_eq 0 "$rc" "recover writes meta: $out"
run_tool rc "$SB" verify "$SB_LOG" m
assert_eq 0 "$rc" "verify after recover: $out"
cp "$SB_TMP/meta.saved" "$SB_LOG/m/meta"
flip "$SB_LOG/m/meta" 10
run_tool rc "$SB" verify "$SB_LOG" m
assert_eq 1 "$rc" "verify with meta damaged: $out"
run_tool rc "$SB" recover "$SB_LOG"
assert_eq 0 "$rc" "recover rewrites meta: $out"
run_tool rc "$SB" verify "$SB_LOG" m
assert_eq 0 "$rc" "verify after recover: $out"
# a damaged meta can be a crash's (rewritten in place on a full disk): the
# mount serves the topic from its first segment and rewrites meta
flip "$SB_LOG/m/meta" 10
sb_mount
assert_eq "m-399" "$(t cat "$M/m/$(rec 399)")" "the topic serves"
sb_umount
run_tool rc "$SB" verify "$SB_LOG" m
assert_eq 0 "$rc" "verify after the mount rewrote meta: $out"

case_ "bit rot in a sealed middle segment: the tools do not serve an older value as the latest"
rm -rf "$SB_LOG"
mkdir "$SB_LOG"
sb_mount -o segment_bytes=4096
mkdir "$M/t" || sb_die "mkdir t"
assert_sh_ok 'echo OLD >"$1/k"' "$M/t"
assert_sh_ok 'for i in $(seq 0 300); do echo "record number $i"; done >>"$1"' "$M/t/.log"
assert_sh_ok 'echo NEW >"$1/k" && echo LATE >"$1/late"' "$M/t"
sb_umount
mid=$(ls "$SB_LOG/t" | grep '\.seg$' | sed -n 2p)
assert_eq 00000000000000000084.seg "$mid" "the second segment"
flip "$SB_LOG/t/$mid" 2000
out=$(t "$SB" get "$SB_LOG" t k 2>"$SB_TMP/get.err"); rc=$?
assert_eq 2 "$rc" "get of a key rewritten past the damage: exit 2 [$out]"
assert_eq "" "$out" "get prints no older value as the latest"
assert_true 'grep -q "t: key k: latest value unknown: the log is damaged at offset 123 ($mid: byte 1965" "$SB_TMP/get.err"' \
	"get names the damage: $(cat "$SB_TMP/get.err")"
run_tool rc "$SB" get "$SB_LOG" t late
assert_eq 2 "$rc" "get of a key written only past the damage: damage, not 'no such key': $out"
assert_true '! printf "%s\n" "$out" | grep -q "no such key"' "not 'no such key': $out"
out=$(t "$SB" dump --keys "$SB_LOG" t 2>"$SB_TMP/dump.err"); rc=$?
assert_eq 2 "$rc" "dump --keys: exit 2"
assert_eq "" "$out" "dump --keys prints no older record as the latest"
assert_true 'grep -q "keys not dumped: the log is damaged at offset 123 ($mid: byte 1965" "$SB_TMP/dump.err"' \
	"dump --keys names the damage: $(cat "$SB_TMP/dump.err")"
out=$(t "$SB" stat "$SB_LOG" 2>"$SB_TMP/stat.err"); rc=$?
assert_eq 0 "$rc" "stat exit: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^t  *refused: damaged at offset 123 ($mid: byte 1965: corrupt record)"' \
	"stat shows the topic refused, as a mount would: $out"
assert_true '! grep -q "a mount would recover" "$SB_TMP/stat.err"' "no recovery a mount would not make: $(cat "$SB_TMP/stat.err")"
out=$(t "$SB" stat --json "$SB_LOG" 2>/dev/null) || sb_die "stat --json"
assert_eq "damaged at offset 123 ($mid: byte 1965: corrupt record) None" \
	"$(printf '%s' "$out" | python3 -c 'import json,sys; t=json.load(sys.stdin)["topics"][0]; print(t["refused"], t.get("records"))')" \
	"stat --json: refused, no numbers: $out"

case_ "a topic the reader may not read: the others are shown, the file is named"
rm -rf "$SB_TMP/perm"
cp -a "$SB_TMP/pristine" "$SB_TMP/perm"
chmod -R a+rX "$SB_TMP/perm"
chmod 711 "$SB_TMP"
chmod 000 "$SB_TMP/perm/bad"
# another user runs a copy of the tool (the build directory may be closed to it)
NSB=$SB_TMP/streambus.nobody
cp "$SB" "$NSB" && chmod 755 "$NSB"
run_tool rc su nobody -s /bin/sh -c "$NSB stat $SB_TMP/perm good"
assert_eq 0 "$rc" "stat of the readable topic: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^good  *0  *100 "' "good shown: $out"
run_tool rc su nobody -s /bin/sh -c "$NSB stat $SB_TMP/perm"
assert_eq 2 "$rc" "stat of all: exit 2: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^good  *0  *100 "' "good shown: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^bad  *refused: the topic directory: Permission denied"' "bad named: $out"
chmod 755 "$SB_TMP/perm/bad"
chmod 000 "$SB_TMP/perm/bad/$SEG"
run_tool rc su nobody -s /bin/sh -c "$NSB stat $SB_TMP/perm"
assert_eq 2 "$rc" "stat, a segment unreadable: exit 2: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^bad  *refused: $SEG: Permission denied"' "the segment is named: $out"
assert_true 'printf "%s\n" "$out" | grep -q "^good  *0  *100 "' "good shown: $out"
run_tool rc su nobody -s /bin/sh -c "$NSB verify $SB_TMP/perm"
assert_eq 2 "$rc" "verify, a segment unreadable: exit 2: $out"
assert_true 'printf "%s\n" "$out" | grep -q "$SEG.*Permission denied"' "verify names the segment: $out"
assert_true '! printf "%s\n" "$out" | grep -q "^bad: ok"' "verify does not call it ok: $out"
