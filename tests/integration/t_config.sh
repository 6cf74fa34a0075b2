#!/usr/bin/env bash
# SPEC §1 Settings: mount.ini (paths relative to the file, ./mount.ini by
# default), precedence (command line > -o > file > defaults), every key as
# -o, [topic:NAME] overrides, and a bad mount.ini refusing to mount.
. "$(dirname "$0")/lib.sh"

# expect_refused WHAT NEEDLE... -- CMD...: CMD exits 1, names every NEEDLE
# in its message, and mounts nothing.
expect_refused() {
	local what=$1 needles=() n out rc
	shift
	while [ "$1" != -- ]; do needles+=("$1"); shift; done
	shift
	out=$(t "$@" 2>&1 </dev/null); rc=$?
	assert_eq 1 "$rc" "$what: exit status (output: $out)"
	for n in "${needles[@]}"; do
		case "$n" in
		@*)	# a line number: "FILE:N:" or "line N"
			re="(:|line )${n#@}([^0-9]|\$)"
			assert_true '[[ "$out" =~ $re ]]' "$what: the message names line ${n#@}: [$out]" ;;
		*)	assert_true '[[ "$out" == *"$n"* ]]' "$what: the message names '$n': [$out]" ;;
		esac
	done
	assert_true '! sb_is_mounted' "$what: nothing mounted"
	if sb_is_mounted; then sb_unmount_dir "$SB_MNT"; fi
	assert_eq "" "$(sb_daemon_pids)" "$what: no daemon left running"
	for p in $(sb_daemon_pids); do kill -KILL "$p"; done
}

case_ "mount.ini gives the paths, relative to the file"
mkdir -p "$SB_TMP/conf" "$SB_TMP/x/y/z"
sb_ini conf/mount.ini >/dev/null <<'EOF'
# the paths are relative to this file
[mount]
log_dir = ../log
mountpoint = ../mnt
EOF
SB_MOUNT_CWD=$SB_TMP/x/y/z SB_MOUNT_PATHS=0 sb_mount -c "$SB_TMP/conf/mount.ini"
assert_sh_ok 'mkdir "$SB_MNT/rel" && echo one >> "$SB_MNT/rel/.log"'
assert_true '[ -d "$SB_LOG/rel" ]' "the topic landed in conf/../log"
sb_umount

case_ "without -c, ./mount.ini is read"
mkdir -p "$SB_TMP/cwd"
sb_ini cwd/mount.ini >/dev/null <<EOF
[mount]
log_dir = $SB_LOG
mountpoint = $SB_MNT
list_log = true
EOF
SB_MOUNT_CWD=$SB_TMP/cwd SB_MOUNT_PATHS=0 sb_mount
assert_true 't ls -a "$SB_MNT/rel" | grep -qx .log' "./mount.ini read (list_log = true lists .log)"
sb_umount

case_ "the repository's mount.ini is a complete example that mounts ./data on ./mnt"
# a fresh checkout: no ./data yet (the example sets create = true)
mkdir -p "$SB_TMP/repo/mnt"
cp "$SB_TOP/mount.ini" "$SB_TMP/repo/mount.ini" || assert_fail_now "no mount.ini at the top of the repository"
assert_true 'grep -Eq "^create[[:space:]]*=[[:space:]]*true" "$SB_TMP/repo/mount.ini"' "the example mount.ini sets create = true"
for k in log_dir mountpoint create allow_other owner group umask list_log segment_bytes index_interval_bytes \
	max_record_bytes sync sync_interval_ms retention_bytes retention_ms '\[topic:' '\[mount\]' '\[log\]'; do
	assert_true 'grep -Eq "^[;#]?[[:space:]]*$k" "$SB_TMP/repo/mount.ini"' "the example mount.ini documents $k"
done
saved_mnt=$SB_MNT
SB_MNT=$SB_TMP/repo/mnt
SB_MOUNT_CWD=$SB_TMP/repo SB_MOUNT_PATHS=0 sb_mount
assert_sh_ok 'mkdir "$1/t" && echo x >> "$1/t/.log"' "$SB_MNT"
assert_true '[ -d "$SB_TMP/repo/data/t" ]' "the example keeps its logs in ./data"
sb_umount
SB_MNT=$saved_mnt

case_ "no mount.ini and no paths: the defaults ./data on ./mnt"
mkdir -p "$SB_TMP/bare/data" "$SB_TMP/bare/mnt"
saved_mnt=$SB_MNT
SB_MNT=$SB_TMP/bare/mnt
SB_MOUNT_CWD=$SB_TMP/bare SB_MOUNT_PATHS=0 sb_mount
assert_sh_ok 'mkdir "$1/dflt" && echo d >> "$1/dflt/.log"' "$SB_MNT"
assert_true '[ -d "$SB_TMP/bare/data/dflt" ]' "the default log dir is ./data"
sb_umount
SB_MNT=$saved_mnt

case_ "paths on the command line win over mount.ini"
mkdir -p "$SB_TMP/otherlog" "$SB_TMP/othermnt"
ini=$(sb_ini paths.ini <<EOF
[mount]
log_dir = $SB_TMP/otherlog
mountpoint = $SB_TMP/othermnt
EOF
)
sb_mount -c "$ini"
assert_true '! sb_is_mounted "$SB_TMP/othermnt"' "the file's mountpoint is not used"
assert_eq "one" "$(t cat "$SB_MNT/rel/.log")" "the command line's log dir is used"
sb_umount

case_ "-o key=value wins over the file"
ini=$(sb_ini prec.ini <<'EOF'
[mount]
list_log = false
[log]
max_record_bytes = 100
EOF
)
sb_mount -c "$ini" -o list_log=true,max_record_bytes=2000
assert_true 't ls -a "$SB_MNT/rel" | grep -qx .log' "-o list_log=true over the file's false"
line=$(printf '%01000d' 7)
assert_sh_ok 'echo "$1" >> "$SB_MNT/rel/.log"' "$line"
assert_eq 1001 "$(t stat -c %s "$SB_MNT/rel/00000000000000000001")" "a 1001-byte record under -o max_record_bytes=2000 (file said 100)"
sb_umount
# and the file alone applies
sb_mount -c "$ini"
assert_sh_fail_with EFBIG 'echo "$1" >> "$SB_MNT/rel/.log"' "$line"
assert_true '! t ls -a "$SB_MNT/rel" | grep -qx .log' "the file's list_log = false"
sb_umount

case_ "every setting is accepted as -o key=value"
sb_mount -o segment_bytes=65536,index_interval_bytes=1024,max_record_bytes=4096,sync=always,sync_interval_ms=50,retention_bytes=-1,retention_ms=-1,list_log=true,allow_other=true,umask=027,owner=1234,group=2345
assert_sh_ok 'seq -f "setting-line-%05g" 1 5000 >> "$SB_MNT/rel/.log"'
assert_eq 5002 "$(sb_count "$SB_MNT/rel")" "records after 5000 appends"
r=$SB_MNT/rel/00000000000000000002
assert_eq "1234 2345" "$(t stat -c '%u %g' "$r")" "owner/group of a record"
assert_eq "1234 2345" "$(t stat -c '%u %g' "$SB_MNT/rel")" "owner/group of a topic"
assert_eq 440 "$(t stat -c %a "$r")" "mode of a record under umask 027 (read-only)"
assert_eq 750 "$(t stat -c %a "$SB_MNT/rel")" "mode of a topic under umask 027"
assert_true 'grep -q "allow_other" <(awk -v d="$SB_MNT" "\$2 == d { print \$4 }" /proc/self/mounts)' "allow_other=true in the mount options"
segs=$(ls "$SB_LOG/rel"/*.seg | wc -l)
assert_true '[ "$segs" -ge 2 ]' "segment_bytes=65536: 100 KB of records roll segments ($segs segments)"
sb_umount

case_ "cleanup = compact,delete: as -o with its comma, or compact+delete; in mount.ini and [topic:NAME]"
# -o is split at every comma: a word that is no option of its own continues
# the value before it. Seen through the mount: compact takes a digits name
# past the next offset (a compacted topic has gaps, SPEC §3), delete lets
# retention drop old segments (every second). A LOG_DIR of its own: the
# others' topics keep their records.
mkdir -p "$SB_TMP/cleanlog"
ini=$(sb_ini cleanup.ini <<'EOF'
[log]
segment_bytes = 4096
retention_bytes = 4096
[topic:plus]
cleanup = compact+delete
[topic:comma]
cleanup = delete,compact
[topic:compact]
cleanup = compact
[topic:del]
cleanup = delete
EOF
)
SB_MOUNT_PATHS=0 sb_mount -c "$ini" -o sync=never,cleanup=compact,delete,list_log "$SB_TMP/cleanlog" "$SB_MNT"
line=$(printf '%099d' 0)
for tp in opt plus comma compact del; do
	# one write per line: segments roll between appends
	assert_sh_ok 'mkdir "$1" && exec 3>>"$1/.log" && for i in $(seq 100); do echo "$2" >&3; done' "$SB_MNT/$tp" "$line"
done
assert_true 't ls -a "$SB_MNT/opt" | grep -qx .log' "-o cleanup=compact,delete,list_log: list_log is an option of its own"
for tp in opt plus comma compact; do
	assert_sh_ok 'echo gap > "$1/$2"' "$SB_MNT/$tp" "$(rec 1000)"
done
assert_sh_fail_with EPERM 'echo gap > "$1/$2"' "$SB_MNT/del" "$(rec 1000)"
gone0() { for tp in "$@"; do [ ! -e "$SB_MNT/$tp/$(rec 0)" ] || return 1; done; }
assert_true 'sb_wait_until "gone0 opt plus comma del" $((10 * SB_SLOW))' "retention dropped record 0 of opt, plus, comma, del"
assert_true '[ -e "$SB_MNT/compact/$(rec 0)" ]' "cleanup = compact alone keeps record 0 (no retention)"
sb_umount
# the topic that kept everything under compact alone, now under both
SB_MOUNT_PATHS=0 sb_mount -o segment_bytes=4096,cleanup=compact+delete,retention_bytes=4096 "$SB_TMP/cleanlog" "$SB_MNT"
assert_sh_ok 'echo gap > "$1/$2"' "$SB_MNT/compact" "$(rec 2000)"
assert_true 'sb_wait_until "gone0 compact" $((10 * SB_SLOW))' "-o cleanup=compact+delete: retention drops record 0 too"
sb_umount
expect_refused "-o cleanup=compact,bogus" cleanup "compact,bogus" -- "$SB_BIN" -o cleanup=compact,bogus "$SB_LOG" "$SB_MNT"
expect_refused "-o cleanup=compact+bogus" cleanup "compact+bogus" -- "$SB_BIN" -o cleanup=compact+bogus "$SB_LOG" "$SB_MNT"
expect_refused "-o bogus,cleanup=compact (a word first continues nothing)" bogus -- "$SB_BIN" -o bogus,cleanup=compact "$SB_LOG" "$SB_MNT"
expect_refused "-o ro,bogus (nor after an option of its own)" bogus -- "$SB_BIN" -o ro,bogus "$SB_LOG" "$SB_MNT"

case_ "owner and group by name; allow_other lets other users read, permission bits still apply"
chmod 755 "$SB_TMP"   # mktemp -d made it 0700: let the other user reach the mount
sb_mount -o owner=nobody,group=nogroup,allow_other=true
r=$SB_MNT/rel/00000000000000000000
assert_eq "65534 65534" "$(t stat -c '%u %g' "$r")" "owner=nobody,group=nogroup"
as_other() { t setpriv --reuid=4242 --regid=4242 --clear-groups "$@"; }
assert_eq one "$(as_other cat "$r" 2>&1)" "another user reads a record under allow_other"
assert_sh_fail_with EACCES 'exec setpriv --reuid=4242 --regid=4242 --clear-groups sh -c "echo x >> \"\$1\"" sh "$1"' "$SB_MNT/rel/.log"
assert_sh_fail_with EACCES 'exec setpriv --reuid=4242 --regid=4242 --clear-groups mkdir "$1"' "$SB_MNT/notmine"
sb_umount
sb_mount
assert_fail_with EACCES setpriv --reuid=4242 --regid=4242 --clear-groups ls "$SB_MNT/rel"
sb_umount

case_ "LOG_DIR on the command line, the mountpoint from mount.ini"
ini=$(sb_ini mp.ini <<EOF
[mount]
log_dir = $SB_TMP/otherlog
mountpoint = $SB_MNT
EOF
)
SB_MOUNT_PATHS=0 sb_mount -c "$ini" "$SB_LOG"
assert_eq "one" "$(t head -n 1 "$SB_MNT/rel/.log")" "the command line's LOG_DIR with the file's mountpoint"
sb_umount

case_ "defaults: owner is the mounting user, umask 022"
sb_mount
assert_eq "0 0" "$(t stat -c '%u %g' "$SB_MNT/rel/00000000000000000000")" "owner/group of a record (mounted by root)"
assert_eq 444 "$(t stat -c %a "$SB_MNT/rel/00000000000000000000")" "mode of a record under the default umask"
assert_eq 755 "$(t stat -c %a "$SB_MNT/rel")" "mode of a topic under the default umask"
sb_umount

case_ "[topic:NAME] overrides a [log] key for one topic"
ini=$(sb_ini topic.ini <<'EOF'
[log]
segment_bytes = 1048576

[topic:small]
segment_bytes = 4096
EOF
)
sb_mount -c "$ini"
payload=$SB_TMP/lines
for i in $(seq 1 400); do printf 'line %05d %080d\n' "$i" 0; done >"$payload"
# one write per line: a segment rolls between appends
append_lines='exec 3>>"$2"; while IFS= read -r l; do printf "%s\n" "$l" >&3; done < "$1"'
assert_sh_ok 'mkdir "$SB_MNT/small" "$SB_MNT/big"'
assert_sh_ok "$append_lines" "$payload" "$SB_MNT/small/.log"
assert_sh_ok "$append_lines" "$payload" "$SB_MNT/big/.log"
small=$(ls "$SB_LOG/small"/*.seg 2>/dev/null | wc -l)
big=$(ls "$SB_LOG/big"/*.seg 2>/dev/null | wc -l)
assert_true '[ "$small" -ge 8 ]' "[topic:small] segment_bytes = 4096: 40 KB in >= 8 segments (got $small)"
assert_eq 1 "$big" "the other topic keeps one 1 MiB segment"
assert_true 't cmp "$payload" "$SB_MNT/small/.log"' "small/.log reads back across segments"
assert_eq 400 "$(sb_count "$SB_MNT/small")" "400 records in small"
assert_true 't cmp "$payload" "$SB_MNT/big/.log"' "big/.log reads back"
assert_eq $'line 00200 '"$(printf '%080d' 0)" "$(t cat "$SB_MNT/small/00000000000000000199")" "record 199 of small"
sb_umount
# the override still applies after a remount
sb_mount -c "$ini"
assert_sh_ok "$append_lines" "$payload" "$SB_MNT/small/.log"
small2=$(ls "$SB_LOG/small"/*.seg | wc -l)
assert_true '[ "$small2" -ge $((small + 8)) ]' "override applies after remount ($small -> $small2 segments)"
sb_umount

case_ "bad mount.ini: unknown key"
ini=$(sb_ini bad1.ini <<'EOF'
[mount]
list_log = false
[log]
bogus_key = 1
EOF
)
expect_refused "unknown key" "$ini" @4 bogus_key -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"

case_ "bad mount.ini: an unclosed section header is the error, not the key after it"
ini=$(printf '[log\nsegment_bytes = 1M\n' | sb_ini badsec1.ini)
expect_refused "[log without ]" "$ini" @1 "syntax error" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '; c\n[log]\nsync = always\n[mount\nlist_log = true\n' | sb_ini badsec2.ini)
expect_refused "[mount without ]" "$ini" @4 "syntax error" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '[log]\nbogus = 1\n[mount\n' | sb_ini badsec3.ini)
expect_refused "a bad key before a bad header" "$ini" @2 bogus -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"

# text after the ']' was dropped, and the keys applied (a typo or a stray ']')
for h in '[log]xyz' '[log]]' '[log] x'; do
	ini=$(printf '; c\n%s\nsegment_bytes = 4096\n' "$h" | sb_ini badsec-junk.ini)
	expect_refused "header $h" "$ini" @2 "section header" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
done
ini=$(printf '[log] ; a comment\nsync = always\n[mount]\t# another\n' | sb_ini sec-comment.ini)
sb_mount -c "$ini"
assert_true 'sb_is_mounted' "a comment after a section header is fine"
sb_umount

case_ "bad mount.ini: unknown key in [mount]"
ini=$(sb_ini bad2.ini <<'EOF'
[mount]
mountpoint_typo = /x
EOF
)
expect_refused "unknown [mount] key" "$ini" @2 mountpoint_typo -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"

case_ "bad mount.ini: bad values"
i=0
for kv in "segment_bytes = lots" "sync = sometimes" "max_record_bytes = -5" "sync_interval_ms = 1x" "index_interval_bytes = " "retention_bytes = 12abc"; do
	i=$((i + 1))
	key=${kv%% =*}
	ini=$(printf '# comment\n\n[log]\n%s\n' "$kv" | sb_ini "badval$i.ini")
	expect_refused "bad value '$kv'" "$ini" @4 "$key" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
done
# a record limit too big for any segment names itself, its line and its
# range (it named segment_bytes, with no line, past 3 GiB with a segment)
for v in 3G 4095M; do
	ini=$(printf '# comment\n\n[log]\nmax_record_bytes = %s\n' "$v" | sb_ini "badrec-$v.ini")
	expect_refused "max_record_bytes = $v" "$ini" @4 "'max_record_bytes'" "512 MiB" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
done
expect_refused "-o max_record_bytes=3G" "-o max_record_bytes" "512 MiB" -- "$SB_BIN" -o max_record_bytes=3G "$SB_LOG" "$SB_MNT"
# a [topic:NAME] key out of range names its line and section (it named no line)
ini=$(printf '[log]\nsegment_bytes = 1M\n\n[topic:audit]\n# small\nsegment_bytes = 1K\n' | sb_ini badtopic.ini)
expect_refused "[topic:audit] segment_bytes = 1K" "$ini" @6 "[topic:audit]" "'segment_bytes'" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '[mount]\nlist_log = maybe\n' | sb_ini badval-bool.ini)
expect_refused "bad value 'list_log = maybe'" "$ini" @2 list_log -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"

case_ "bad mount.ini: a NUL byte is refused, naming its line (fuzz_config finding)"
# Before: the line reader's strlen stopped at the NUL, the line count
# drifted, and a later bad value was reported with no file and no line.
ini=$(printf '[log]\nsync = always\0junk\n\nsegment_bytes = 5\n' | sb_ini nul.ini)
expect_refused "NUL byte on line 2" "$ini" @2 "NUL byte" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"

case_ "bad mount.ini: a bad key in a [topic:NAME] section"
ini=$(printf '[log]\nsync = always\n[topic:orders]\nsegment_bytes = huge\n' | sb_ini badtopic.ini)
expect_refused "bad [topic:orders] value" "$ini" @4 segment_bytes -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '[topic:orders]\nsync = always\nno_such = 1\n' | sb_ini badtopic2.ini)
expect_refused "unknown [topic:orders] key" "$ini" @3 no_such -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"

case_ "bad mount.ini: unreadable file"
expect_refused "missing -c file" "$SB_TMP/no-such.ini" -- "$SB_BIN" -c "$SB_TMP/no-such.ini" "$SB_LOG" "$SB_MNT"
mkdir -p "$SB_TMP/dir.ini"
expect_refused "-c of a directory" "$SB_TMP/dir.ini" -- "$SB_BIN" -c "$SB_TMP/dir.ini" "$SB_LOG" "$SB_MNT"
# not a regular file: refused as such (/dev/zero said "Is a directory"),
# and a FIFO at once (its open waited for a writer for ever)
expect_refused "-c /dev/zero" "/dev/zero" "not a regular file" -- "$SB_BIN" -c /dev/zero "$SB_LOG" "$SB_MNT"
mkfifo "$SB_TMP/fifo.ini"
expect_refused "-c of a FIFO" "$SB_TMP/fifo.ini" "not a regular file" -- "$SB_BIN" -f -c "$SB_TMP/fifo.ini" "$SB_LOG" "$SB_MNT"
expect_refused "-c ''" "name is empty" -- "$SB_BIN" -c "" "$SB_LOG" "$SB_MNT"
expect_refused "-o config=" "name is empty" -- "$SB_BIN" -o config= "$SB_LOG" "$SB_MNT"
# -c /dev/null: no settings at all, not even a ./mount.ini of the directory
mkdir -p "$SB_TMP/devnull"
printf '[log]\nbogus = 1\n' >"$SB_TMP/devnull/mount.ini"
SB_MOUNT_CWD=$SB_TMP/devnull sb_mount -c /dev/null
assert_true 'sb_is_mounted' "-c /dev/null mounts with the defaults, ./mount.ini unread"
sb_umount

case_ "bad -o option: unknown key, bad value"
expect_refused "-o no_such_key=1" no_such_key -- "$SB_BIN" -o no_such_key=1 "$SB_LOG" "$SB_MNT"
expect_refused "-o sync=sometimes" sync -- "$SB_BIN" -o sync=sometimes "$SB_LOG" "$SB_MNT"
expect_refused "-o segment_bytes=abc" segment_bytes -- "$SB_BIN" -o segment_bytes=abc "$SB_LOG" "$SB_MNT"

case_ "[mount] backend: store is the default; kafka's settings are checked (t_kafka*.sh mount one)"
ini=$(printf '[mount]\nlist_log = true\nbackend = kafka\n[kafka]\ntimeout_ms = 1000\n' | sb_ini kafka.ini)
# named at the line that chose the backend (it said line 0), or as -o's
expect_refused "backend = kafka without bootstrap.servers" "$ini" @3 "'backend'" bootstrap.servers -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
expect_refused "-o backend=kafka without bootstrap.servers" "-o backend" bootstrap.servers -- "$SB_BIN" -o backend=kafka "$SB_LOG" "$SB_MNT"
ini=$(printf '[mount]\nbackend = kafka\n[kafka]\nbootstrap.servers = 127.0.0.1:9\ntimeout_ms = soon\n' | sb_ini kafka-bad.ini)
expect_refused "bad [kafka] timeout_ms" "$ini" @5 timeout_ms -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '[mount]\nbackend = kafka\n[kafka]\nbootstrap.servers = 127.0.0.1:9\ntimeout_ms = 1000\n' | sb_ini kafka-none.ini)
expect_refused "backend = kafka, nobody listening" "127.0.0.1:9" "did not answer" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
# a list in -o keeps its commas: librdkafka tries both brokers
expect_refused "-o kafka.bootstrap.servers=H1,H2, nobody listening" "127.0.0.1:9" "127.0.0.1:10" "did not answer" -- \
	"$SB_BIN" -o backend=kafka,kafka.bootstrap.servers=127.0.0.1:9,127.0.0.1:10,kafka.timeout_ms=1000 "$SB_LOG" "$SB_MNT"
ini=$(printf '[mount]\nbackend = tape\n' | sb_ini tape.ini)
expect_refused "backend = tape" "$ini" @2 backend "tape" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '[kafka]\nbootstrap.servers = localhost:9092\n' | sb_ini kafka-section.ini)
expect_refused "[kafka] under backend = store" "$ini" @2 "section [kafka] is read only with [mount] backend = kafka" -- "$SB_BIN" -c "$ini" "$SB_LOG" "$SB_MNT"
ini=$(printf '[mount]\nbackend = store\n[log]\nmax_record_bytes = 100\n' | sb_ini store.ini)
sb_mount -c "$ini"
assert_sh_ok 'mkdir "$SB_MNT/be" && echo short >> "$SB_MNT/be/.log"'
assert_sh_fail_with EFBIG 'printf "%0200d\\n" 0 >> "$SB_MNT/be/.log"'
sb_umount

case_ "a missing LOG_DIR is refused, naming it, and nothing is created"
for fg in "" -f; do
	expect_refused "missing LOG_DIR ${fg:-(detached)}" "$SB_TMP/typo/log" "does not exist" -- \
		"$SB_BIN" $fg "$SB_TMP/typo/log" "$SB_MNT"
	assert_true '[ ! -e "$SB_TMP/typo" ]' "a missing LOG_DIR ${fg:-(detached)} is not created"
done
ini=$(printf '[mount]\nlog_dir = ./logz\nmountpoint = %s\n' "$SB_MNT" | sb_ini typo.ini)
expect_refused "missing log_dir of a mount.ini" "$SB_TMP/logz" "does not exist" -- "$SB_BIN" -c "$ini"
assert_true '[ ! -e "$SB_TMP/logz" ]' "the mount.ini's missing log_dir is not created"
expect_refused "-o create=false" "$SB_TMP/typo/log" "does not exist" -- \
	"$SB_BIN" -o create=false "$SB_TMP/typo/log" "$SB_MNT"
assert_true '[ ! -e "$SB_TMP/typo" ]' "create=false creates nothing"
expect_refused "-o ro on a missing LOG_DIR" "$SB_TMP/typo/log" -- "$SB_BIN" -o ro,create "$SB_TMP/typo/log" "$SB_MNT"
assert_true '[ ! -e "$SB_TMP/typo" ]' "a read-only mount creates nothing"

case_ "create = true (in mount.ini, or -o create) creates LOG_DIR and its parents"
saved_log=$SB_LOG
ini=$(printf '[mount]\ncreate = true\n' | sb_ini create.ini)
for how in ini opt; do
	SB_LOG=$SB_TMP/made/by/$how
	if [ $how = ini ]; then sb_mount -c "$ini"; else sb_mount -o create; fi
	assert_true '[ -d "$SB_LOG" ]' "create ($how) made $SB_LOG"
	assert_sh_ok 'mkdir "$1/t" && echo x >> "$1/t/.log"' "$SB_MNT"
	assert_true '[ -d "$SB_LOG/t" ]' "create ($how): the topic is in the new LOG_DIR"
	sb_umount
done
SB_LOG=$saved_log

case_ "a non-empty MOUNTPOINT is refused unless -o nonempty, before LOG_DIR is touched"
echo stray >"$SB_MNT/stray"
# a torn tail in LOG_DIR (a crash): the refused starts must not recover it
# (they did: cut the tail, rebuilt the indexes, before refusing)
seg=$(ls "$SB_LOG/rel"/*.seg | tail -n 1)
printf 'torn' >>"$seg"
rm -f "$SB_LOG/rel/clean"
logdir_state() { (cd "$1" && find . -printf '%p %s %T@\n' | sort); }
before=$(logdir_state "$SB_LOG")
expect_refused "non-empty mountpoint" "$SB_MNT" "not empty" "nonempty" -- "$SB_BIN" "$SB_LOG" "$SB_MNT"
expect_refused "non-empty mountpoint, -f" "$SB_MNT" "not empty" -- "$SB_BIN" -f "$SB_LOG" "$SB_MNT"
assert_eq "$before" "$(logdir_state "$SB_LOG")" "refused starts left LOG_DIR as it was (torn tail, indexes, lock)"
sb_mount -o nonempty
assert_eq "one" "$(t head -n 1 "$SB_MNT/rel/.log")" "-o nonempty mounts over it"
assert_true '[ ! -e "$SB_MNT/stray" ]' "the mount hides what was there"
sb_umount
assert_eq "stray" "$(cat "$SB_MNT/stray")" "what was there is there again"
rm -f "$SB_MNT/stray"

case_ "a MOUNTPOINT inside LOG_DIR (or LOG_DIR inside it) is refused, and nothing is made"
mkdir -p "$SB_TMP/nest/d/m"
for fg in "" -f; do
	expect_refused "mountpoint inside LOG_DIR ${fg:-(detached)}" "$SB_TMP/nest/d/m" "inside the log directory" -- \
		"$SB_BIN" $fg "$SB_TMP/nest/d" "$SB_TMP/nest/d/m"
	assert_eq "./m" "$(cd "$SB_TMP/nest/d" && find . -mindepth 1)" "LOG_DIR holds only the empty mountpoint (it became a topic)"
done
expect_refused "mountpoint is LOG_DIR" "$SB_TMP/nest/d/m" "is the log directory" -- \
	"$SB_BIN" "$SB_TMP/nest/d/m" "$SB_TMP/nest/d/m"
assert_eq "" "$(ls -A "$SB_TMP/nest/d/m")" "the mountpoint that is LOG_DIR stays empty"
expect_refused "LOG_DIR inside the mountpoint (create)" "$SB_TMP/nest/d/m/log" "inside the mountpoint" -- \
	"$SB_BIN" -o create "$SB_TMP/nest/d/m/log" "$SB_TMP/nest/d/m"
assert_eq "" "$(ls -A "$SB_TMP/nest/d/m")" "LOG_DIR inside the mountpoint is not created"

case_ "a good configuration after all that still mounts the same data"
sb_mount
assert_eq "one" "$(t head -n 1 "$SB_MNT/rel/.log")" "data intact"
sb_umount
