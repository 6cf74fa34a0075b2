#!/usr/bin/env bash
# SPEC §3/§6: restoring a backup of a topic through the mount. A generated
# topic (lines, random binary records of random sizes from empty to 1 MiB,
# keyed files, times set with touch -d and cp -p; its oldest records
# removed, so it starts past 0) is backed up with rsync -a, rsync -aX, cp -a
# and tar (plain and --xattrs), removed with rm -r, and restored with rsync
# -a, rsync -aX, rsync -a --inplace, cp -a, cp -p, tar -x and tar --xattrs
# -x: offsets, payloads, keys and times as each tool carries them, no
# record under a temporary name, and a second rsync run changes nothing.
# Then the temp-file patterns of other tools (mv of a .tmp or dot name,
# editors' swap files, install, a rename before the close), attributes set
# on records, and a temporary file never renamed (appended under its name,
# but rsync's of a record, as a killed restore leaves it, is dropped).
# Knobs: SB_SEED (sizes and kinds), SB_RESTORE_N (records, default 40).
. "$(dirname "$0")/lib.sh"
SEED=${SB_SEED:-$RANDOM}
N=${SB_RESTORE_N:-40}
sb_msg "t_restore: SB_SEED=$SEED SB_RESTORE_N=$N"
sb_mount
M=$SB_MNT
T=$M/orders
mkdir "$T" || sb_die "mkdir"

# manifest DIR FIELDS: one line per file (sorted by name): name, then the
# fields asked for (size, sha: payload digest, key: user.streambus.key or
# "-", ts: user.streambus.timestamp, ns: mtime in ns, sec: mtime seconds)
manifest() {
	t python3 - "$@" <<'EOF'
import hashlib, os, sys
d, fields = sys.argv[1], sys.argv[2].split(",")
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    st = os.stat(p)
    out = [n]
    for f in fields:
        if f == "size":
            out.append(str(st.st_size))
        elif f == "sha":
            with open(p, "rb") as fh:
                out.append(hashlib.sha1(fh.read()).hexdigest())
        elif f == "key":
            try:
                out.append(os.getxattr(p, "user.streambus.key").hex())
            except OSError:
                out.append("-")
        elif f == "ts":
            try:
                out.append(os.getxattr(p, "user.streambus.timestamp").decode())
            except OSError:
                out.append("-")
        elif f == "ns":
            out.append(str(st.st_mtime_ns))
        elif f == "sec":
            out.append(str(st.st_mtime_ns // 10**9))
    print(" ".join(out))
EOF
}

# ---- a generated topic ---------------------------------------------------
mkdir "$SB_TMP/src"
python3 - "$SEED" "$N" "$SB_TMP/src" >"$SB_TMP/plan" <<'EOF' || sb_die "plan"
import os, random, sys
seed, n, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = random.Random(seed)
kinds = ["line", "bin", "bin", "key", "keytime", "touch"]
for i in range(n):
    k = r.choice(kinds)
    if i == 3:
        k = "big"           # exactly max_record_bytes (1 MiB)
    if i == 5:
        k = "empty"
    size = {"line": 0, "big": 1 << 20, "empty": 0, "touch": 0}.get(k, r.choice([0, 1, r.randrange(2, 5000), r.randrange(5000, 200000)]))
    with open(os.path.join(d, "f%d" % i), "wb") as f:
        f.write(r.randbytes(size) if k != "line" else b"")
    # a time in the past with nanoseconds (cp -p, touch -d)
    when = "2021-%02d-%02d %02d:%02d:%02d.%09d" % (r.randrange(1, 13), r.randrange(1, 29), r.randrange(24), r.randrange(60), r.randrange(60), r.randrange(10**9))
    print(i, "bin" if k in ("big", "empty") else k, when)
EOF
while read -r i kind d1 d2; do
	next=$(rec "$i")
	case $kind in
	line) printf 'line %d of seed %s\n' "$i" "$SEED" >>"$T/.log" ;;
	bin) t cp "$SB_TMP/src/f$i" "$T/$next" ;;
	key) t cp "$SB_TMP/src/f$i" "$T/key-$i" ;;
	keytime) touch -d "$d1 $d2" "$SB_TMP/src/f$i" && t cp -p "$SB_TMP/src/f$i" "$T/key-$i" ;;
	touch) t touch -d "$d1 $d2" "$T/key-$i" ;;
	esac || sb_die "writing record $i ($kind)"
done <"$SB_TMP/plan"
assert_eq "$N" "$(sb_count "$T")" "records written"
# the head removed: the backup starts at offset 3
assert_ok rm "$T/$(rec 0)" "$T/$(rec 1)" "$T/$(rec 2)"
names=$(t ls "$T")
assert_eq "$(rec 3)" "$(head -1 <<<"$names")" "the topic starts at 3"
full=$(manifest "$T" size,sha,key,ts,ns)
assert_eq $((N - 3)) "$(wc -l <<<"$full")" "records in the manifest"
assert_true 'grep -q " 1048576 " <<<"$full"' "a 1 MiB record is in the topic"
assert_true 'awk "\$4 != \"-\"" <<<"$full" | grep -q .' "some records have keys"
assert_true 'grep -q " 16[0-9]\{17\}$" <<<"$full"' "some records have 2021 times"

case_ "backups: rsync -a, rsync -aX, cp -a, tar, tar --xattrs"
assert_ok rsync -a "$T/" "$SB_TMP/b_rsync/"
assert_ok rsync -aX "$T/" "$SB_TMP/b_rsyncx/"
mkdir "$SB_TMP/b_cp" && assert_ok cp -a "$T" "$SB_TMP/b_cp/"
assert_ok tar -C "$M" -cf "$SB_TMP/b.tar" orders
assert_ok tar -C "$M" --xattrs -cf "$SB_TMP/bx.tar" orders
assert_eq "$full" "$(manifest "$SB_TMP/b_rsyncx" size,sha,key,ts,ns)" "the rsync -aX backup carries everything"

# restored WHAT FIELDS: the restored topic against the original
restored() {
	local what=$1 fields=$2 got
	assert_eq "$names" "$(t ls "$T")" "$what: offsets"
	got=$(manifest "$T" "$fields")
	assert_eq "$(manifest_of_full "$fields")" "$got" "$what: $fields"
	# nothing under rsync's or anyone's temporary name (keys in hex: '.' is 2e)
	assert_eq "" "$(manifest "$T" key | awk '$2 ~ /^2e/')" "$what: no record keyed by a temporary name"
}
# the original's manifest with only FIELDS
manifest_of_full() {
	python3 - "$1" "$full" <<'EOF'
import sys
want = sys.argv[1].split(",")
allf = ["size", "sha", "key", "ts", "ns"]
for line in sys.argv[2].splitlines():
    v = line.split(" ")
    rec = dict(zip(allf, v[1:]))
    out = [v[0]]
    for f in want:
        out.append(rec[f] if f != "sec" else str(int(rec["ns"]) // 10**9))
    print(" ".join(out))
EOF
}
nokeys() {
	assert_eq "" "$(manifest "$T" key | awk '$2 != "-"')" "$1: no keys (the backup carries none)"
}
second_rsync() {
	local out rc n
	for n in -n ""; do # rsync's quick check, with --dry-run and for real
		out=$(t rsync -ai $n "$@" 2>&1); rc=$?
		assert_eq 0 "$rc" "second rsync ${n:+$n }$*: exit status"
		assert_eq "" "$out" "second rsync ${n:+$n }$*: nothing to do"
	done
}
wipe() {
	assert_ok rm -r "$T"
	assert_true '[ ! -e "$T" ]' "rm -r removed the topic"
}

case_ "restore with rsync -a"
wipe
out=$(t rsync -a "$SB_TMP/b_rsync/" "$T/" 2>&1); rc=$?
assert_eq 0 "$rc" "rsync -a restore exit status ($out)"
restored "rsync -a" size,sha,ts,ns
nokeys "rsync -a"
second_rsync "$SB_TMP/b_rsync/" "$T/"

case_ "restore with rsync -aX"
wipe
out=$(t rsync -aX "$SB_TMP/b_rsyncx/" "$T/" 2>&1); rc=$?
assert_eq 0 "$rc" "rsync -aX restore exit status ($out)"
restored "rsync -aX" size,sha,key,ts,ns
second_rsync -X "$SB_TMP/b_rsyncx/" "$T/"
second_rsync "$SB_TMP/b_rsyncx/" "$T/"
assert_sh_ok 'echo after-restore >> "$1"' "$T/.log"
assert_eq "$(rec "$N")" "$(t ls "$T" | tail -1)" "appends go on after the restored offsets"

case_ "restore with rsync -a --inplace: one record per file, offsets and payloads"
wipe
t rsync -a --inplace "$SB_TMP/b_rsync/" "$T/" >/dev/null 2>&1
restored "rsync -a --inplace" size,sha
nokeys "rsync -a --inplace"

case_ "restore with cp -a (keys and times through its xattrs and utimens)"
wipe
mkdir "$T" && assert_ok cp -a "$SB_TMP/b_cp/orders"/* "$T/"
restored "cp -a" size,sha,key,ts,ns
second_rsync -X "$SB_TMP/b_rsyncx/" "$T/"

case_ "restore with cp -p"
wipe
mkdir "$T" && assert_ok cp -p "$SB_TMP/b_rsync"/* "$T/"
restored "cp -p" size,sha,ts,ns
nokeys "cp -p"
second_rsync "$SB_TMP/b_rsync/" "$T/"

# (README: --skip-old-files, else tar unlinks an existing record to
# replace it, rm of the oldest is allowed, and its create then fails: a
# second run would lose every record)
case_ "restore with tar -x (times in whole seconds)"
wipe
assert_ok tar -C "$M" --skip-old-files -xf "$SB_TMP/b.tar"
restored "tar -x" size,sha,sec

case_ "restore with tar --xattrs -x, the README's command, run twice: the second loses nothing"
wipe
assert_ok tar -C "$M" --xattrs --skip-old-files -xf "$SB_TMP/bx.tar"
restored "tar --xattrs -x" size,sha,key,ts,ns
assert_ok tar -C "$M" --xattrs --skip-old-files -xf "$SB_TMP/bx.tar"
restored "tar --xattrs -x again" size,sha,key,ts,ns

case_ "restore into a topic that starts past 0 (rsync -aX of a backup that starts at 3)"
mkdir "$M/fresh" || sb_die "mkdir fresh"
out=$(t rsync -aX "$SB_TMP/b_rsyncx/" "$M/fresh/" 2>&1); rc=$?
assert_eq 0 "$rc" "rsync -aX into an empty topic ($out)"
assert_eq "$names" "$(t ls "$M/fresh")" "offsets from 3 on"
assert_eq "$full" "$(manifest "$M/fresh" size,sha,key,ts,ns)" "everything restored"

# ---- other tools' temporary files -----------------------------------------
mkdir "$M/w" || sb_die "mkdir w"
W=$M/w
count_w() { sb_count "$W"; }
key_of() { t getfattr --absolute-names --only-values -n user.streambus.key "$W/$(rec "$1")" 2>&1; }

case_ "a file never renamed: appended under its own name after the hold (started now, checked at the end)"
# in a directory of its own: the counts of w below do not depend on when
# its hold (10 s) ends (on a loaded machine the cases below took longer,
# and it was appended among them: 7 checks failed, the code right)
mkdir "$M/orph" || sb_die "mkdir orph"
assert_sh_ok 'printf orphan > "$1"' "$M/orph/.orphan.tmp"
orphan_t0=$SECONDS

case_ "rsync killed mid-file (started now, checked at the end): its temporary file is dropped, not record 0"
mkdir "$SB_TMP/b_cut" "$M/cut" || sb_die "mkdir cut"
head -c 1048576 /dev/urandom >"$SB_TMP/b_cut/$(rec 0)"
printf second >"$SB_TMP/b_cut/$(rec 1)"
setsid rsync --bwlimit=200 -a "$SB_TMP/b_cut/" "$M/cut/" >/dev/null 2>&1 &
cut_pid=$!
cut_temp() { ls -A "$M/cut" | grep -q "^\.$(rec 0)\."; }
assert_true 'sb_wait_until cut_temp 10' "rsync writes its temporary file"
sleep 1
kill -9 -- -$cut_pid
wait $cut_pid 2>/dev/null
cut_t0=$SECONDS
assert_eq 0 "$(sb_count "$M/cut")" "no record while the temporary file is held"

case_ "write then mv of a .tmp name: one record, keyed by the final name"
assert_sh_ok 'printf one > "$1/f.tmp" && mv "$1/f.tmp" "$1/final-1"' "$W"
assert_eq 1 "$(count_w)" "records"
assert_eq final-1 "$(key_of 0)" "key"
assert_file_eq "$W/$(rec 0)" one "payload"
assert_true '[ ! -e "$W/f.tmp" ] && [ ! -e "$W/final-1" ]' "neither name stays"

case_ "write then mv of a dot name onto the next offset: no key, that offset"
assert_sh_ok 'printf two > "$1/.x.y" && touch -d "2020-02-02 02:02:02.5" "$1/.x.y" && mv "$1/.x.y" "$1/00000000000000000001"' "$W"
assert_eq 2 "$(count_w)" "records"
assert_eq ENODATA "$(pyerr 'os.getxattr(sys.argv[2], "user.streambus.key")' "$W/$(rec 1)")" "no key"
assert_eq "$(date -d '2020-02-02 02:02:02.5' +%s)500000000" "$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$W/$(rec 1)")" "the time set before the rename"

case_ "times at or before the epoch on a file being created: EINVAL, never the close's time instead"
TM=$M/times
mkdir "$TM" || sb_die "mkdir"
# one open file: a time refused, then one taken, then the close appends
out=$(pyerr '
f = os.open(sys.argv[2] + "/old", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(f, b"x")
res = []
for t in (0, -100, -14182940, 0.5):
    try:
        os.utime(f, (t, t)); res.append("ok")
    except OSError as e:
        res.append(errno.errorcode[e.errno])
os.close(f)
print(" ".join(res), end=" ")' "$TM")
assert_eq "EINVAL EINVAL EINVAL ok OK" "$out" "utime 0, -100, 1969, 0.5 on a file being created"
assert_eq 500000000 "$(t getfattr --absolute-names --only-values -n user.streambus.timestamp "$TM/$(rec 0)")" "the time taken (0.5 s), not the close's"

case_ "a rename before the close: appended at the close under the new name"
assert_eq OK "$(pyerr 'f = open(sys.argv[2] + "/draft", "wb"); f.write(b"three"); os.rename(sys.argv[2] + "/draft", sys.argv[2] + "/final-3"); f.close()' "$W")" "open, write, rename, close"
assert_eq 3 "$(count_w)" "records"
assert_eq final-3 "$(key_of 2)" "key"

case_ "an editor's swap file (.name.swp) written, closed and removed: no record"
assert_eq OK "$(pyerr 'p = sys.argv[2] + "/.note.swp"
f = open(p, "wb"); f.write(b"swap"); f.flush(); f.close()
f = open(p, "r+b"); f.write(b"SWAP"); f.close()
os.unlink(p)' "$W")" "write, close, reopen, unlink"
assert_eq 3 "$(count_w)" "records"
assert_true '[ ! -e "$W/.note.swp" ]' "the swap file is gone"

case_ "vim writes a new file: one record, no swap file left as a record"
if command -v vim >/dev/null; then
	assert_sh_ok 'cd "$1" && HOME=$2 vim -u NONE -i NONE -N -es -c "call setline(1, \"hello\")" -c wq note' "$W" "$SB_TMP"
	assert_eq 4 "$(count_w)" "records"
	assert_eq note "$(key_of 3)" "key"
	assert_file_eq "$W/$(rec 3)" $'hello\n' "payload"
else
	assert_fail_now "vim is missing (tools/packages.txt)"
fi

case_ "install: one record per file"
printf inst >"$SB_TMP/inst"
# (GNU install sets the mode after its close, when the name is a record
# already: it exits 1 saying so, with the record appended; README)
t install -m 444 "$SB_TMP/inst" "$W/installed" >/dev/null 2>&1
assert_eq 5 "$(count_w)" "records"
assert_eq installed "$(key_of 4)" "key"

case_ "mv of a temporary file onto a name another process is creating: each is its record"
assert_eq OK "$(pyerr 'a = open(sys.argv[2] + "/target", "wb"); a.write(b"its own")
b = open(sys.argv[2] + "/.t.tmp", "wb"); b.write(b"kept"); b.close()
os.rename(sys.argv[2] + "/.t.tmp", sys.argv[2] + "/target")
a.close()' "$W")" "rename over an open file being created"
assert_eq 7 "$(count_w)" "records: the renamed file, then the one open under the name at its close"
assert_file_eq "$W/$(rec 5)" kept "the renamed file is the record"
assert_file_eq "$W/$(rec 6)" "its own" "the file open under the name when it was renamed over: its own record at its close"

case_ "mv -n (RENAME_NOREPLACE) onto a file being created: EEXIST; RENAME_EXCHANGE: EINVAL"
assert_eq EEXIST "$(pyerr 'import ctypes
libc = ctypes.CDLL(None, use_errno=True)
a = open(sys.argv[2] + "/.a.tmp", "wb"); a.close()
b = open(sys.argv[2] + "/.b.tmp", "wb"); b.close()
if libc.renameat2(-100, (sys.argv[2] + "/.a.tmp").encode(), -100, (sys.argv[2] + "/.b.tmp").encode(), 1):
    e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
' "$W")" "renameat2 NOREPLACE"
assert_eq EINVAL "$(pyerr 'import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, (sys.argv[2] + "/.a.tmp").encode(), -100, (sys.argv[2] + "/.b.tmp").encode(), 2):
    e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
' "$W")" "renameat2 EXCHANGE"
assert_ok rm "$W/.a.tmp" "$W/.b.tmp"
assert_eq 7 "$(count_w)" "records"

case_ "renames that cannot be: EPERM, and the file stays held"
assert_sh_ok 'printf x > "$1/.bad.tmp"' "$W"
assert_fail_with EPERM mv "$W/.bad.tmp" "$W/$(rec 100)"
assert_fail_with EPERM mv "$W/.bad.tmp" "$W/$(rec 1)"
assert_fail_with EPERM mv "$W/.bad.tmp" "$W/.log"
assert_fail_with EPERM mv "$W/.bad.tmp" "$M/orders/x"
assert_fail_with EPERM mv "$W/$(rec 1)" "$W/y"
assert_true '[ -e "$W/.bad.tmp" ]' "the held file is still there"
assert_ok rm "$W/.bad.tmp"
assert_eq 7 "$(count_w)" "records"

case_ "a header set on a held temporary file goes with it (rm: nothing appended; t_headers has the rest)"
assert_eq OK "$(pyerr 'f = open(sys.argv[2], "wb"); f.write(b"h")
try:
    os.setxattr(f.fileno(), "user.streambus.header.trace", b"1")
finally:
    f.close()' "$W/.h.tmp")" "setxattr of a header on a file being created"
assert_ok rm "$W/.h.tmp"
assert_eq EINVAL "$(pyerr 'f = open(sys.argv[2], "wb")
try:
    os.setxattr(f.fileno(), "user.streambus.offset", b"8")
finally:
    f.close()' "$W/$(rec 7)")" "an offset xattr that disagrees with the name"
assert_eq 8 "$(count_w)" "records (the digits file was closed)"

case_ "attributes of a record: what it has succeeds, anything else EPERM"
r=$W/$(rec 1)
ns=$(stat -c %.9Y "$r")
assert_ok touch -m -d "@$ns" "$r"
assert_fail_with EPERM touch -m -d "@1" "$r"
assert_ok chmod "$(stat -c %a "$r")" "$r"
assert_fail_with EPERM chmod 644 "$r"
assert_ok chown "$(stat -c %u:%g "$r")" "$r"
assert_fail_with EPERM truncate -s 1 "$r"
assert_eq "$ns" "$(stat -c %.9Y "$r")" "the time is unchanged"

case_ "the file never renamed is appended under its own name"
left=$((12 - (SECONDS - orphan_t0)))
[ $left -gt 0 ] && sleep "$left"
assert_true 'sb_wait_until "[ \"\$(sb_count "$M/orph")\" = 1 ]" 5' "appended after the hold"
assert_eq .orphan.tmp "$(t getfattr --absolute-names --only-values -n user.streambus.key "$M/orph/$(rec 0)" 2>&1)" \
	"keyed by its own name"
assert_file_eq "$M/orph/$(rec 0)" orphan "payload"
left=$((12 - (SECONDS - cut_t0)))
[ $left -gt 0 ] && sleep "$left"
assert_eq "" "$(t ls -A "$M/cut")" "the killed rsync's temporary file: dropped, no record 0"
out=$(t rsync -a "$SB_TMP/b_cut/" "$M/cut/" 2>&1); rc=$?
assert_eq 0 "$rc" "a rerun of the restore ($out)"
assert_eq "$(rec 0) $(rec 1)" "$(t ls "$M/cut" | tr '\n' ' ' | sed 's/ $//')" "the rerun restores records 0 and 1"
assert_true 't cmp "$SB_TMP/b_cut/$(rec 0)" "$M/cut/$(rec 0)"' "record 0 whole"

case_ "a temporary file held at unmount is appended, not lost; rsync's of a record is dropped, saying so"
sb_umount
sb_mount_fg
mkdir "$M/cut2" || sb_die "mkdir cut2"
assert_sh_ok 'printf late > "$1"' "$W/.late"
assert_sh_ok 'printf cut > "$1"' "$M/cut2/.$(rec 0).AbC123"
assert_sh_ok 'printf cut > "$1"' "$M/cut2/.7.xYz789"
assert_sh_ok 'printf kept > "$1"' "$M/cut2/.$(rec 0).tmp"
sb_umount
log=$(cat "$SB_TMP/daemon.$SB_MOUNT_SEQ.out")
assert_true 'grep -q "cut2/\.$(rec 0)\.AbC123.*interrupted restore.*3 bytes dropped, rerun the restore" <<<"$log"' "the drop is logged ($log)"
sb_mount
assert_eq 9 "$(count_w)" "records after the remount"
assert_eq .late "$(key_of 8)" "keyed by its own name"
assert_eq "$(rec 0)" "$(t ls "$M/cut2")" "in cut2 only the .tmp name is appended (other temporary names keep the rule)"
assert_eq ".$(rec 0).tmp" "$(t getfattr --absolute-names --only-values -n user.streambus.key "$M/cut2/$(rec 0)")" "keyed by its name"
sb_umount
