#!/usr/bin/env bash
# SPEC §2/§6 with the real backup tools: tar and tar --sparse round trips
# (each record once, .log not listed by default, listed under list_log),
# rsync -a twice (the second run transfers nothing), find, and copying a
# backup's records back restoring the same offsets.
. "$(dirname "$0")/lib.sh"
sb_mount
M=$SB_MNT
mkdir "$M/orders" "$M/other" || sb_die "mkdir"
assert_sh_ok 'seq -f "order-%g" 1 250 >> "$1"' "$M/orders/.log"
# whole files of assorted sizes, zeros included (tar --sparse must keep them)
for sz in 1 512 4096 8192 65536; do
	head -c "$sz" /dev/urandom >"$SB_TMP/rand$sz"
	head -c "$sz" /dev/zero >"$SB_TMP/zero$sz"
	t cp "$SB_TMP/rand$sz" "$SB_TMP/zero$sz" "$M/orders/" || assert_fail_now "cp in of $sz-byte files"
done
assert_sh_ok 'seq -f "tail-%g" 1 40 >> "$1"' "$M/orders/.log"
assert_sh_ok 'seq -f "other-%g" 1 20 >> "$1"' "$M/other/.log"
# the head moved: the backup starts at offset 2
assert_ok rm "$M/orders/$(rec 0)" "$M/orders/$(rec 1)"
N=$(sb_count "$M/orders")
assert_eq 298 "$N" "records in orders"
names=$(t ls "$M/orders")

case_ "tar of a topic: each record once, no .log, restores the same bytes"
assert_ok tar -C "$M" -cf "$SB_TMP/b.tar" orders
list=$(tar -tf "$SB_TMP/b.tar")
assert_eq "$N" "$(grep -c '^orders/[0-9]\{20\}$' <<<"$list")" "records in the tar"
assert_eq "$N" "$(grep '^orders/[0-9]' <<<"$list" | sort -u | wc -l)" "each record once in the tar"
assert_true '! grep -q "\.log" <<<"$list"' "no .log in the tar"
assert_eq $((N + 1)) "$(wc -l <<<"$list")" "nothing else in the tar (orders/ and the records)"
mkdir "$SB_TMP/x"
assert_ok tar -C "$SB_TMP/x" -xf "$SB_TMP/b.tar"
assert_true 't diff -r "$M/orders" "$SB_TMP/x/orders" >/dev/null' "diff -r of the topic and the extracted tar"
assert_eq "$names" "$(ls "$SB_TMP/x/orders")" "names in the extracted tar"

case_ "tar --sparse round trip (st_blocks honest: no record stored as a hole)"
assert_ok tar -C "$M" --sparse -cf "$SB_TMP/s.tar" orders
mkdir "$SB_TMP/xs"
assert_ok tar -C "$SB_TMP/xs" -xf "$SB_TMP/s.tar"
assert_true 't diff -r "$M/orders" "$SB_TMP/xs/orders" >/dev/null' "diff -r after tar --sparse"
bad=0
for f in "$SB_TMP/xs/orders"/*; do
	n=$(basename "$f")
	[ "$(stat -c %s "$f")" = "$(t stat -c %s "$M/orders/$n")" ] || bad=$((bad + 1))
done
assert_eq 0 "$bad" "sizes after tar --sparse"
assert_true 'cmp -s "$SB_TMP/rand65536" "$SB_TMP/xs/orders/$(rec 258)" && cmp -s "$SB_TMP/zero65536" "$SB_TMP/xs/orders/$(rec 259)"' "random and zero 64 KiB records intact after tar --sparse"

case_ "tar of the whole mount"
assert_ok tar -C "$M" -cf "$SB_TMP/all.tar" .
all=$(tar -tf "$SB_TMP/all.tar")
assert_eq $((N + 20)) "$(grep -c '/[0-9]\{20\}$' <<<"$all")" "records of both topics in the tar"
assert_true '! grep -q "\.log" <<<"$all"' "no .log in the tar of the mount"

case_ "find sees each record once"
assert_eq $((N + 20)) "$(t find "$M" -type f | wc -l)" "find -type f"
assert_eq $((N + 20)) "$(t find "$M" -type f | sort -u | wc -l)" "find lists no file twice"

case_ "rsync -a twice: the second run transfers nothing"
mkdir "$SB_TMP/bk"
assert_ok rsync -a "$M/" "$SB_TMP/bk/"
assert_eq "$N" "$(ls -A "$SB_TMP/bk/orders" | wc -l)" "records in the rsync copy"
assert_true '[ ! -e "$SB_TMP/bk/orders/.log" ]' "rsync did not copy .log"
assert_true 't diff -r "$M" "$SB_TMP/bk" >/dev/null' "diff -r of the mount and the rsync copy"
out=$(t rsync -a -i --stats "$M/" "$SB_TMP/bk/" 2>&1); rc=$?
assert_eq 0 "$rc" "second rsync exit status"
assert_eq "0" "$(sed -n 's/^Number of regular files transferred: \([0-9,]*\).*/\1/p' <<<"$out")" "second rsync: regular files transferred"
assert_eq "" "$(grep '^>f' <<<"$out")" "second rsync: no file itemized as transferred"
sb_remount
out=$(t rsync -a -i --stats "$M/" "$SB_TMP/bk/" 2>&1)
assert_eq "0" "$(sed -n 's/^Number of regular files transferred: \([0-9,]*\).*/\1/p' <<<"$out")" "rsync after a remount: regular files transferred (mtimes and sizes kept)"
assert_sh_ok 'echo one-more >> "$1"' "$M/orders/.log"
out=$(t rsync -a -i --stats "$M/" "$SB_TMP/bk/" 2>&1)
assert_eq "1" "$(sed -n 's/^Number of regular files transferred: \([0-9,]*\).*/\1/p' <<<"$out")" "rsync after one append transfers one file"
assert_eq ">f+++++++++ orders/$(rec 300)" "$(grep '^>f' <<<"$out")" "rsync itemizes the new record only"

case_ "copying a backup's records back, in order, restores the same offsets"
mkdir "$M/restored"
assert_ok cp "$SB_TMP/x/orders"/* "$M/restored/"
assert_eq "$names" "$(t ls "$M/restored")" "restored offsets"
assert_true 't diff -r "$SB_TMP/x/orders" "$M/restored" >/dev/null' "restored contents"
assert_true 't cmp <(t cat "$SB_TMP/x/orders"/*) "$M/restored/.log"' "restored .log"
assert_sh_ok 'echo after-restore >> "$1"' "$M/restored/.log"
assert_eq "$(rec 300)" "$(t ls "$M/restored" | tail -1)" "appends go on after the restored offsets"

case_ "list_log = true lists .log, and tar then takes it"
sb_remount -o list_log=true
assert_true 't ls -a "$M/orders" | grep -qx .log' "ls -a lists .log"
assert_ok tar -C "$M" -cf "$SB_TMP/l.tar" orders
assert_true 'tar -tf "$SB_TMP/l.tar" | grep -qx orders/.log' "tar takes orders/.log"
mkdir "$SB_TMP/xl"
tar -C "$SB_TMP/xl" -xf "$SB_TMP/l.tar"
assert_true 't cmp "$M/orders/.log" "$SB_TMP/xl/orders/.log"' ".log in the tar equals .log"
assert_eq $((N + 2)) "$(t find "$M/orders" -type f | wc -l)" "find sees the records and .log"
assert_ok tar -C "$M" --sparse -cf "$SB_TMP/ls.tar" orders
mkdir "$SB_TMP/xls"
tar -C "$SB_TMP/xls" -xf "$SB_TMP/ls.tar"
assert_true 't cmp "$M/orders/.log" "$SB_TMP/xls/orders/.log"' ".log through tar --sparse equals .log (its st_blocks honest too)"
sb_umount
