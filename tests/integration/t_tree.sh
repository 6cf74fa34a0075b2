#!/usr/bin/env bash
# SPEC §2 The tree: topic names (mkdir), record names and lookups, listing
# order, .log hidden, stat of records and .log, stable inodes, xattrs, df.
. "$(dirname "$0")/lib.sh"
sb_mount

case_ "mkdir of good topic names"
long249=$(printf 'x%.0s' $(seq 1 249))
good=(orders a Z9 "A-Z.a_z-09" x.y _under -dash 0123 "$long249")
for n in "${good[@]}"; do
	assert_ok mkdir -- "$SB_MNT/$n"
	assert_eq directory "$(t stat -c %F -- "$SB_MNT/$n" 2>&1)" "stat of topic ${n:0:20}"
done
listed=$(t ls -a "$SB_MNT" | grep -v '^\.\.\?$' | sort)
assert_eq "$(printf '%s\n' "${good[@]}" | sort)" "$listed" "ls of the root lists exactly the topics"

case_ "mkdir of bad topic names: EINVAL"
long250=${long249}x
bad=(.hidden .. "has space" "caf$(printf '\xc3\xa9')" "a:b" "a*b" "a@b" "a+b" "tab$(printf '\t')x" "$long250" "new
line")
for n in "${bad[@]}"; do
	[ "$n" = .. ] && continue
	assert_fail_with EINVAL mkdir -- "$SB_MNT/$n"
done
assert_eq "$listed" "$(t ls -a "$SB_MNT" | grep -v '^\.\.\?$' | sort)" "no bad name was created"

case_ "no directories inside a topic"
assert_true '! t mkdir "$SB_MNT/orders/sub" 2>/dev/null' "mkdir inside a topic fails"
assert_true '! t ls -a "$SB_MNT/orders" | grep -q sub' "nothing made inside the topic"

case_ "no files at the root"
assert_true '! tsh "echo x > \"\$1/file\"" "$SB_MNT" 2>/dev/null' "creating a file at the root fails"
assert_true '! t ls -a "$SB_MNT" | grep -qx file' "no file at the root"

case_ "mkdir of an existing topic: EEXIST"
assert_fail_with EEXIST mkdir "$SB_MNT/orders"

case_ "records are files named by their offset in 20 digits, in offset order"
assert_sh_ok 'for i in $(seq 0 11); do echo "r$i"; done >> "$SB_MNT/orders/.log"'
exp=$(for i in $(seq 0 11); do rec "$i"; echo; done)
assert_eq "$exp" "$(t ls "$SB_MNT/orders")" "ls orders"
assert_eq "$exp" "$(cd "$SB_MNT/orders" && printf '%s\n' *)" "glob order"
assert_eq "$exp" "$(t ls -f "$SB_MNT/orders" | grep -v '^\.')" "ls -f (directory order) is offset order"
assert_eq "r5" "$(t cat "$SB_MNT/orders/00000000000000000005")" "cat of record 5"
assert_eq "r11" "$(t cat "$SB_MNT/orders/00000000000000000011")" "cat of record 11"

case_ "the same offset without padding finds the same file"
assert_eq "r5" "$(t cat "$SB_MNT/orders/5" 2>&1)" "cat orders/5"
assert_eq "r11" "$(t cat "$SB_MNT/orders/011" 2>&1)" "cat orders/011"
assert_eq "$(t stat -c %i "$SB_MNT/orders/00000000000000000005")" "$(t stat -c %i "$SB_MNT/orders/5" 2>&1)" "inode of orders/5"
assert_eq "r0" "$(t cat "$SB_MNT/orders/0" 2>&1)" "cat orders/0"

case_ "missing records and other names: ENOENT"
assert_fail_with ENOENT cat "$SB_MNT/orders/12"
assert_fail_with ENOENT cat "$SB_MNT/orders/00000000000000000012"
assert_fail_with ENOENT cat "$SB_MNT/orders/99999999999999999999"
assert_fail_with ENOENT cat "$SB_MNT/orders/123456789012345678901"
assert_fail_with ENOENT cat "$SB_MNT/orders/abc"
assert_fail_with ENOENT cat "$SB_MNT/orders/-1"
assert_fail_with ENOENT cat "$SB_MNT/orders/.index"
assert_fail_with ENOENT ls "$SB_MNT/nosuchtopic"

case_ ".log is left out of listings, but is there"
assert_true '! t ls -a "$SB_MNT/orders" | grep -q log' "ls -a does not list .log"
assert_eq 12 "$(t find "$SB_MNT/orders" -type f | wc -l)" "find sees the 12 records only"
assert_eq regular "$(t stat -c %F "$SB_MNT/orders/.log" | cut -d' ' -f1)" ".log is a regular file"
assert_eq "$(for i in $(seq 0 11); do echo "r$i"; done)" "$(t cat "$SB_MNT/orders/.log")" "cat .log"

case_ "stat of records: size, mode, nlink, st_blocks, times"
t0=$(date +%s)
for sz in 1 511 512 513 4097 100000; do
	head -c "$sz" /dev/urandom >"$SB_TMP/blob$sz"
	assert_ok cp "$SB_TMP/blob$sz" "$SB_MNT/orders/blob$sz"
done
t1=$(date +%s)
off=12
for sz in 1 511 512 513 4097 100000; do
	f=$SB_MNT/orders/$(rec $off)
	read -r s b B h a m c F < <(t stat -c '%s %b %B %h %a %Y %Z %F' "$f")
	assert_eq "$sz" "$s" "size of a $sz-byte record"
	assert_eq $(((sz + 511) / 512)) $((b * B / 512)) "st_blocks of a $sz-byte record (512-byte units)"
	assert_eq 1 "$h" "nlink of a record"
	assert_eq "regular file" "$F" "type of a record"
	assert_eq 0 "$(printf '%o' $((0$a & 0222)))" "no write bit on a record (mode $a)"
	assert_eq 444 "$(printf '%o' $((0$a & 0444)))" "record readable by all (mode $a)"
	assert_true '[ "$m" -ge $((t0 - 1)) ] && [ "$m" -le $((t1 + 1)) ]' "mtime $m of record $off is its append time ($t0..$t1)"
	assert_eq "$m" "$c" "ctime = mtime of a record"
	assert_true 't cmp -s "$SB_TMP/blob$sz" "$f"' "content of the $sz-byte record"
	off=$((off + 1))
done
# earlier records keep their own older times
sleep 1.1
assert_sh_ok 'echo later >> "$SB_MNT/orders/.log"'
m_old=$(t stat -c %Y "$SB_MNT/orders/00000000000000000000")
m_new=$(t stat -c %Y "$SB_MNT/orders/$(rec 18)")
assert_true '[ "$m_new" -gt "$m_old" ]' "a later record has a later mtime ($m_old, $m_new)"

case_ "stat of .log: size is the sum of payloads, mtime the last append"
sum=$(t cat "$SB_MNT"/orders/0* | wc -c)
assert_eq "$sum" "$(t stat -c %s "$SB_MNT/orders/.log")" "size of .log"
assert_eq 1 "$(t stat -c %h "$SB_MNT/orders/.log")" "nlink of .log"
m1=$(t stat -c %Y "$SB_MNT/orders/.log")
sleep 1.1
assert_sh_ok 'echo again >> "$SB_MNT/orders/.log"'
m2=$(t stat -c %Y "$SB_MNT/orders/.log")
assert_true '[ "$m2" -gt "$m1" ] && [ "$m2" -ge $(($(date +%s) - 2)) ]' ".log mtime moves with the append ($m1 -> $m2)"
assert_eq $((sum + 6)) "$(t stat -c %s "$SB_MNT/orders/.log")" "size of .log grew by the append"

case_ "inode numbers: distinct, and stable across remount"
ino1=$(cd "$SB_MNT" && t stat -c '%n %i' orders orders/.log orders/0* a Z9 x.y)
times1=$(cd "$SB_MNT" && t stat -c '%n %s %Y %Z' orders/0*)
xts1=$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$SB_MNT/orders/$(rec 12)")
assert_eq "$(echo "$ino1" | wc -l)" "$(echo "$ino1" | awk '{print $2}' | sort -u | wc -l)" "all inode numbers distinct"
sb_remount
ino2=$(cd "$SB_MNT" && t stat -c '%n %i' orders orders/.log orders/0* a Z9 x.y)
assert_eq "$ino1" "$ino2" "inode numbers after remount"
assert_eq "$times1" "$(cd "$SB_MNT" && t stat -c '%n %s %Y %Z' orders/0*)" "record sizes and times after remount"
assert_eq "$xts1" "$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$SB_MNT/orders/$(rec 12)")" "user.streambus.timestamp after remount"

case_ "extended attributes of a record"
b0=$(python3 -c 'import time; print(time.time_ns())')
assert_sh_ok 'echo xattr-line >> "$SB_MNT/orders/.log"'
assert_ok cp "$SB_TMP/blob1" "$SB_MNT/orders/photo.jpg"
b1=$(python3 -c 'import time; print(time.time_ns())')
r20=$SB_MNT/orders/$(rec 20)
r21=$SB_MNT/orders/$(rec 21)
assert_eq "xattr-line" "$(t cat "$r20")" "record 20"
assert_eq 20 "$(t getfattr --absolute-names --only-values -n user.streambus.offset "$r20" 2>&1)" "user.streambus.offset of record 20"
assert_eq 7 "$(t getfattr --absolute-names --only-values -n user.streambus.offset "$SB_MNT/orders/$(rec 7)" 2>&1)" "user.streambus.offset of record 7"
ts=$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$r20" 2>&1)
assert_true '[[ "$ts" =~ ^[0-9]+$ ]] && [ "$ts" -ge $((b0 - 1000000000)) ] && [ "$ts" -le $((b1 + 1000000000)) ]' "user.streambus.timestamp is the append time in ns ($b0 <= $ts <= $b1)"
assert_eq "photo.jpg" "$(t getfattr --absolute-names --only-values -n user.streambus.key "$r21" 2>&1)" "user.streambus.key of a copied-in file"
assert_eq ENODATA "$(pyerr 'os.getxattr(sys.argv[2], "user.streambus.key")' "$r20")" "a record without a key has no user.streambus.key"
dump=$(t getfattr --absolute-names -d "$r21" 2>&1)
for k in offset timestamp key; do
	assert_true '[[ "$dump" == *user.streambus.$k* ]]' "getfattr -d lists user.streambus.$k: [$dump]"
done

case_ "df on the mount reports the log directory's filesystem"
read -r mb ms < <(t stat -f -c '%b %S' "$SB_MNT")
read -r lb ls_ < <(stat -f -c '%b %S' "$SB_LOG")
assert_eq $((lb * ls_)) $((mb * ms)) "total bytes of the filesystem (stat -f)"
read -r msize mavail < <(t df -B1 --output=size,avail "$SB_MNT" | tail -1)
read -r lsize lavail < <(df -B1 --output=size,avail "$SB_LOG" | tail -1)
assert_eq "$lsize" "$msize" "df size on the mount vs the log dir"
diff=$((mavail - lavail)); diff=${diff#-}
assert_true '[ "$diff" -le $((lsize / 100)) ]' "df avail on the mount ($mavail) close to the log dir's ($lavail)"
