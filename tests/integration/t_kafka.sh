#!/usr/bin/env bash
# SPEC §8 against librdkafka's mock cluster (3 brokers), cross-checked with
# kcat: records kcat produced read back byte for byte through the mount
# (payloads, keys, timestamps; .log, record files, random positions),
# lines and created files appended through the mount consumed by kcat,
# tail -f following kcat's records, concurrent writers, a broker
# restart, .since/TIME (answered from the partition's index), .keys/ (kcat's keyed records by key, its -Z tombstones; writes
# and rm through .keys/K as kcat sees them). What the mock of librdkafka
# 2.0.2 cannot serve (CreateTopics, DeleteRecords, offsets for times) is
# tested in tests/unit/test_kafka_backend.c and test_kafka_parts.c; the cluster
# going away mid-write is t_kafka_down.sh.
. "$(dirname "$0")/lib.sh"
. "$SB_TOP/tests/integration/lib_kafka.sh"

kafka_start -n 3 -t prod:1 -t app:1 -t conc:1 -t wide:4 -t trim:1
M=$SB_MNT

# Records from kcat: 300 lines with keys (random lengths; kcat -P sends
# each line without its newline), then 20 binary files (one message each,
# all 256 byte values, up to 100 KB).
python3 - "$SB_TMP" <<'EOF'
import os, random, sys
d = sys.argv[1]
r = random.Random(11)
with open(os.path.join(d, 'lines'), 'w') as f:
    for i in range(300):
        n = r.randrange(0, 200)
        f.write('key%d\t%s\n' % (i, ''.join(r.choice('abcdefghij KLMNOP') for _ in range(n))))
os.makedirs(os.path.join(d, 'bin'))
for i in range(20):
    with open(os.path.join(d, 'bin', '%02d' % i), 'wb') as f:
        f.write(r.randbytes(r.randrange(1, 100000)))
EOF
kc -P -t prod -K $'\t' <"$SB_TMP/lines" || sb_die "kcat -P lines"
kc -P -t prod "$SB_TMP"/bin/* || sb_die "kcat -P files"
# expected bytes: each line's payload is the line without key and newline
python3 - "$SB_TMP" <<'EOF'
import os, sys
d = sys.argv[1]
out = open(os.path.join(d, 'expect.log'), 'wb')
os.makedirs(os.path.join(d, 'exp'))
o = 0
for line in open(os.path.join(d, 'lines'), 'rb'):
    v = line.rstrip(b'\n').split(b'\t', 1)[1]
    open(os.path.join(d, 'exp', '%020d' % o), 'wb').write(v); out.write(v); o += 1
for n in sorted(os.listdir(os.path.join(d, 'bin'))):
    v = open(os.path.join(d, 'bin', n), 'rb').read()
    open(os.path.join(d, 'exp', '%020d' % o), 'wb').write(v); out.write(v); o += 1
EOF

kafka_mount

case_ "a topic of one partition is a directory of records by offset"
assert_eq "app conc prod trim wide" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')" "topics (wide: 4 partitions, see t_kafka_parts.sh)"
assert_eq 320 "$(sb_count "$M/prod")" "records kcat produced"
assert_eq "$(rec 0)" "$(t ls "$M/prod" | head -1)" "first name"
assert_eq "$(rec 319)" "$(t ls "$M/prod" | tail -1)" "last name"

case_ "kcat's records read back byte for byte: record files and .log"
bad=0
for f in "$SB_TMP"/exp/*; do
	cmp -s "$f" "$M/prod/$(basename "$f")" || { bad=$((bad + 1)); [ $bad -le 3 ] && sb_msg "differs: $(basename "$f")"; }
done
assert_eq 0 "$bad" "record files that differ from what kcat produced"
assert_ok cmp "$SB_TMP/expect.log" "$M/prod/.log"
assert_eq "$(stat -c %s "$SB_TMP/expect.log")" "$(stat -c %s "$M/prod/.log")" ".log size"
assert_eq "$(stat -c %s "$SB_TMP/exp/$(rec 305)")" "$(stat -c %s "$M/prod/$(rec 305)")" "record size"
assert_file_eq "$M/prod/42" "$(cat "$SB_TMP/exp/$(rec 42)")" "unpadded name"

case_ ".log at random positions (dd skip=, tail -c) gives the same bytes"
bad=$(t python3 - "$SB_TMP/expect.log" "$M/prod/.log" <<'EOF'
import os, random, sys
want = open(sys.argv[1], 'rb').read()
fd = os.open(sys.argv[2], os.O_RDONLY)
r = random.Random(5)
bad = 0
for i in range(200):
    pos = r.randrange(len(want)); n = r.randrange(1, 200000)
    bad += os.pread(fd, n, pos) != want[pos:pos + n]
# a read to the end in odd-sized pieces from a random start, as dd does
pos = r.randrange(len(want)); got = b''
while True:
    b = os.pread(fd, 4099, pos + len(got))
    if not b:
        break
    got += b
bad += got != want[pos:]
print(bad)
EOF
)
assert_eq 0 "$bad" "random reads of .log that differ"
assert_eq "$(tail -c 1000 "$SB_TMP/expect.log" | md5sum)" "$(t tail -c 1000 "$M/prod/.log" | md5sum)" "tail -c"

case_ "keys and timestamps are the records' extended attributes"
kc -C -t prod -e -q -f '%o|%k|%T\n' >"$SB_TMP/meta" || sb_die "kcat -C"
assert_eq 320 "$(wc -l <"$SB_TMP/meta")" "kcat sees 320 records"
bad=$(t python3 - "$SB_TMP/meta" "$M/prod" <<'EOF'
import os, sys
bad = 0
for line in open(sys.argv[1]):
    o, k, ts = line.rstrip('\n').split('|')
    f = os.path.join(sys.argv[2], '%020d' % int(o))
    bad += os.getxattr(f, 'user.streambus.timestamp') != (ts + '000000').encode()
    if k:
        bad += os.getxattr(f, 'user.streambus.key') != k.encode()
print(bad)
EOF
)
assert_eq 0 "$bad" "keys/timestamps that differ from kcat's"
assert_eq ENODATA "$(pyerr 'os.getxattr(sys.argv[2], "user.streambus.key")' "$M/prod/$(rec 310)")" "a record without a key has no user.streambus.key"

case_ "lines appended through .log are acknowledged records kcat consumes"
seq -f 'line %g' 1 2000 >"$SB_TMP/app.txt"
assert_sh_ok 'cat "$1" >> "$2"' "$SB_TMP/app.txt" "$M/app/.log"
kc -C -t app -e -q -f '%s' >"$SB_TMP/app.got"
assert_ok cmp "$SB_TMP/app.txt" "$SB_TMP/app.got"
assert_eq 2000 "$(sb_count "$M/app")" "records listed"
assert_ok cmp "$SB_TMP/app.txt" "$M/app/.log"

case_ "a created file is one record keyed by its name"
head -c 300000 /dev/urandom >"$SB_TMP/blob"
assert_ok cp "$SB_TMP/blob" "$M/app/photo.jpg"
kc -C -t app -o 2000 -c 1 -e -q -f '%k' >"$SB_TMP/k"
assert_eq photo.jpg "$(cat "$SB_TMP/k")" "key kcat sees"
kc -C -t app -o 2000 -c 1 -e -q -f '%s' >"$SB_TMP/v"
assert_ok cmp "$SB_TMP/blob" "$SB_TMP/v"
assert_ok cmp "$SB_TMP/blob" "$M/app/$(rec 2000)"

case_ "tail -f follows what kcat produces"
tail -n 0 -f "$M/app/.log" >"$SB_TMP/tailed" 2>&1 &
tp=$!
sleep 1
printf 'from-kcat-1\nfrom-kcat-2\n' | kc -P -t app
assert_true "sb_wait_until 'grep -q from-kcat-2 \"$SB_TMP/tailed\"' 5" "tail -f saw kcat's records within 5 s"
printf 'from-kcat-3\n' | kc -P -t app
assert_true "sb_wait_until 'grep -q from-kcat-3 \"$SB_TMP/tailed\"' 5" "and the next one"
kill $tp 2>/dev/null; wait $tp 2>/dev/null
assert_eq "from-kcat-1from-kcat-2from-kcat-3" "$(cat "$SB_TMP/tailed")" "exactly kcat's records (kcat sends lines without their newline)"

case_ "concurrent writers: every acknowledged line once"
pids=()
for w in 1 2 3 4; do
	tsh 'for i in $(seq 100); do echo "w$1-$i" >> "$2" || exit 1; done' $w "$M/conc/.log" &
	pids+=($!)
done
tsh 'for i in $(seq 20); do echo "f$i" > "$1/file$i" || exit 1; done' "$M/conc" &
pids+=($!)
fails=0
for j in "${pids[@]}"; do wait "$j" || fails=$((fails + 1)); done
assert_eq 0 "$fails" "writers that saw an error"
kc -C -t conc -e -q -f '%s' | sort >"$SB_TMP/conc.got"
{ for w in 1 2 3 4; do seq -f "w$w-%g" 1 100; done; seq -f 'f%g' 1 20; } | sort >"$SB_TMP/conc.want"
assert_ok cmp "$SB_TMP/conc.want" "$SB_TMP/conc.got"
assert_eq 420 "$(sb_count "$M/conc")" "records listed"

case_ "the brokers restart: appends and reads go on"
kafka_cmd down all
sleep 0.5
kafka_cmd up all
seq -f 'after %g' 1 100 >"$SB_TMP/after"
sleep 1 # (librdkafka reconnects)
assert_sh_ok 'cat "$1" >> "$2"' "$SB_TMP/after" "$M/conc/.log"
kc -C -t conc -o 420 -e -q -f '%s' >"$SB_TMP/after.got"
assert_ok cmp "$SB_TMP/after" "$SB_TMP/after.got"
assert_eq "$(cat "$SB_TMP/after")" "$(t tail -n 100 "$M/conc/.log")" "tail -n 100 of .log"

case_ ".since/TIME over the mock: from the index (the 2.0.2 mock answers every time with none): the first record whose time reaches TIME, none yet until one does"
assert_ok cmp "$SB_TMP/expect.log" "$M/prod/.since/@0"
assert_eq ENOENT "$(pyerr 'open(sys.argv[2])' "$M/prod/.since/yesterday")" "a bad TIME"
# times from the records' xattrs (kcat's CreateTime, ms): each asked TIME
# starts at the first record whose time reaches it
bad=$(t python3 - "$M/prod" <<'EOF'
import os, random, sys
d = sys.argv[1]
names = sorted(n for n in os.listdir(d))
ts = [int(os.getxattr(os.path.join(d, n), 'user.streambus.timestamp')) for n in names]
r = random.Random(5)
bad = 0
for T in [ts[305], ts[0] + 1, ts[-1], max(ts)] + [r.randrange(min(ts) - 10**6, max(ts) + 10**6) for _ in range(6)]:
    first = next((i for i, x in enumerate(ts) if x >= T), len(ts))
    want = b''.join(open(os.path.join(d, n), 'rb').read() for n in names[first:])
    got = open(os.path.join(d, '.since', '@%d.%09d' % (T // 10**9, T % 10**9)), 'rb').read()
    if got != want:
        bad += 1
        print('T %d: %d bytes, want %d (from %d)' % (T, len(got), len(want), first), file=sys.stderr)
print(bad)
EOF
)
assert_eq 0 "$bad" ".since/TIME files that start at the wrong record"
# a time after every record: empty, until a record reaches it
fut=$(python3 -c 'import time; print("@%.3f" % (time.time() + 0.5))')
exec {sf}<"$M/prod/.since/$fut"
assert_eq "" "$(cat <&$sf)" "nothing reaches it yet"
sleep 0.6
printf 'later\n' | kc -P -t prod || sb_die "kcat -P later"
got=
for _ in $(seq 50); do got=$(cat <&$sf); [ -n "$got" ] && break; sleep 0.1; done
exec {sf}<&-
assert_eq "later" "$got" "the record kcat produced after it, read through the open file"

case_ ".keys/ over Kafka: kcat's keyed records by key, a newer value wins, a kcat tombstone (-Z: a null value) removes the key"
# kcat -K gave key0..key299 one record each (the 20 files have no key)
python3 - "$SB_TMP" <<'EOF'
import os, sys
d = sys.argv[1]
keys = {}
for line in open(os.path.join(d, 'lines'), 'rb'):
    k, v = line.rstrip(b'\n').split(b'\t', 1)
    keys[k] = v
open(os.path.join(d, 'key42.want'), 'wb').write(keys[b'key42'])
keys[b'key5'] = b'newer five'
del keys[b'key7']
open(os.path.join(d, 'keys.want'), 'wb').write(b''.join(k + b'\n' for k in sorted(keys)))
EOF
base=$(sb_count "$M/prod")
printf 'key5\tnewer five\nkey7\t\n' | kc -P -t prod -K $'\t' -Z || sb_die "kcat -P -Z"
# the mount follows the partition within about a second
for _ in $(seq 50); do [ "$(cat "$M/prod/.keys/key5" 2>/dev/null)" = "newer five" ] && break; sleep 0.1; done
assert_eq "newer five" "$(cat "$M/prod/.keys/key5")" "a newer value wins"
assert_eq ENOENT "$(pyerr 'open(sys.argv[2])' "$M/prod/.keys/key7")" "a kcat tombstone removes the key"
t ls "$M/prod/.keys" >"$SB_TMP/keys.got"
assert_ok cmp "$SB_TMP/keys.want" "$SB_TMP/keys.got"
assert_ok cmp "$SB_TMP/key42.want" "$M/prod/.keys/key42"
assert_eq "$base" "$(getfattr --only-values -n user.streambus.offset "$M/prod/.keys/key5" 2>/dev/null)" "its record's offset"

case_ "writes through .keys/K append a keyed record, rm a tombstone (a null value kcat sees)"
assert_sh_ok 'printf "via mount" > "$1"' "$M/prod/.keys/new-key"
assert_eq "via mount" "$(cat "$M/prod/.keys/new-key")" "read back"
assert_ok rm "$M/prod/.keys/key42"
assert_eq ENOENT "$(pyerr 'open(sys.argv[2])' "$M/prod/.keys/key42")" "rm'ed"
assert_eq "key7:-1|new-key:9|key42:-1|" "$(kc -C -t prod -o $((base + 1)) -e -q -Z -f '%k:%S|')" "kcat sees the records (%S -1: a null value)"

case_ "the cluster's retention: a looked-up record's name goes with it, the names nobody looked up cost no notification"
# librdkafka 2.0.2's mock keeps at most 5 MiB of message sets per
# partition: 12 MB of 100-byte lines move the start past ~70,000 records.
# The kernel caches only names lookups gave it (record 0's here): the
# notifier invalidated every trimmed record's name (up to 100,000 a pass,
# one write(2) to /dev/fuse each, beside the append)
python3 -c '
import sys
line = b"%08d " + b"x" * 90 + b"\n"
sys.stdout.buffer.write(b"".join(line % j for j in range(120000)))' >"$SB_TMP/trim.lines"
assert_sh_ok 'echo first >>"$1"' "$M/trim/.log"
assert_ok stat "$M/trim/$(rec 0)"
syscw() { awk '/^syscw/ { print $2 }' "/proc/$SB_PID/io"; }
w0=$(syscw)
assert_sh_ok 'cat "$1" >>"$2"' "$SB_TMP/trim.lines" "$M/trim/.log"
# the refresher sees the new start within a second, the notifier's pass follows
sb_wait_until "[ ! -e '$M/trim/$(rec 0)' ]" 10
assert_eq ENOENT "$(pyerr 'os.stat(sys.argv[2])' "$M/trim/$(rec 0)")" "record 0's cached name went with it"
sleep 1.2 # one more pass
w1=$(syscw)
assert_le $((w1 - w0)) 5000 "the daemon's write(2)s over the append and its trim (was one per trimmed record)"

case_ "statfs answers; rm and mkdir are what the mock cannot do (see the unit test)"
assert_ok df "$M"
# rm of the oldest record is a DeleteRecords now: its failure is rm's, and
# the record stays (before: rm returned 0, the record was hidden until the
# next mount, and the failure went to the daemon's log only)
first=$(t ls "$M/prod" | head -1)
assert_fail_with ENOTSUP rm "$M/prod/$first"
assert_eq "$first" "$(t ls "$M/prod" | head -1)" "the record is still listed after the failed rm"
assert_true 't cat "$M/prod/$first" >/dev/null' "and still read"
sb_umount
