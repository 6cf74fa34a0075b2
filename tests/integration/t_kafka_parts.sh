#!/usr/bin/env bash
# SPEC §8 against librdkafka's mock cluster, cross-checked with kcat:
# record headers as user.streambus.header.NAME xattrs both ways (kcat -H
# on produce, -f '%h' on consume), and topics of several partitions as
# one directory per partition (orders/0/ ..), with appends to the
# topic's own .log and files created in it placed by key as kcat -K
# (librdkafka's default partitioner) places them; .keys/ of its partitions.
. "$(dirname "$0")/lib.sh"
. "$SB_TOP/tests/integration/lib_kafka.sh"

kafka_start -t hdr:1 -t orders:3 -t empty:2
M=$SB_MNT
P=user.streambus.header.

# kcat -H NAME=VALUE gives every message of its run those headers.
printf 'one\ntwo\n' | kc -P -t hdr -H trace=abc -H user=bob -H trace=again || sb_die "kcat -P -H"
printf 'three\n' | kc -P -t hdr || sb_die "kcat -P"
# 300 records with keys (kcat -K: librdkafka's default partitioner puts
# each key's records in one partition) and random payloads of printable
# bytes; what kcat then reads from each partition is what the mount must show.
python3 - "$SB_TMP" <<'PY'
import os, random, sys
r = random.Random(13)
with open(os.path.join(sys.argv[1], 'keyed'), 'w') as f:
    for i in range(300):
        f.write('cust%d\t%s\n' % (r.randrange(60), ''.join(r.choice('abcdef XYZ.,-') for _ in range(r.randrange(1, 300)))))
PY
kc -P -t orders -K $'\t' <"$SB_TMP/keyed" || sb_die "kcat -P -K"
# (one kcat run over every partition: %p says which; payloads hold no tab)
kc -C -t orders -e -q -f '%p\t%o\t%k\t%s\n' >"$SB_TMP/orders.all" || sb_die "kcat -C"
for p in 0 1 2; do : >"$SB_TMP/exp.$p"; : >"$SB_TMP/meta.$p"; done
awk -F'\t' -v d="$SB_TMP" '{ print $2 "\t" $3 "\t" $4 >(d "/meta." $1); printf "%s", $4 >(d "/exp." $1) }' "$SB_TMP/orders.all"
kafka_mount allow_topic_delete=true timeout_ms=1500

case_ "headers kcat produced are the records' user.streambus.header.NAME xattrs"
assert_eq abc "$(t getfattr --absolute-names --only-values -n ${P}trace "$M/hdr/$(rec 0)")" "a header's value (the first of its name)"
assert_eq bob "$(t getfattr --absolute-names --only-values -n ${P}user "$M/hdr/$(rec 1)")" "the second header"
assert_eq "${P}trace ${P}user" "$(t python3 -c 'import os,sys; print(" ".join(n for n in os.listxattr(sys.argv[1]) if n.startswith("user.streambus.header.")))' "$M/hdr/$(rec 1)")" "listed once each, in order"
assert_eq ENODATA "$(pyerr 'os.getxattr(sys.argv[2], "user.streambus.header.trace")' "$M/hdr/$(rec 2)")" "a record without headers"

case_ "a header set on a file being created goes to Kafka with its record"
assert_eq OK "$(pyerr '
fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY, 0o644)
os.setxattr(fd, "user.streambus.header.trace", b"t-1")
os.setxattr(fd, "user.streambus.header.bin", bytes(range(1, 8)) + b"\xff")
os.write(fd, b"with headers")
os.close(fd)' "$M/hdr/f1")" "create, setxattr, write, close"
kc -C -t hdr -o 3 -c 1 -e -q -f '%k|%s|%h\n' >"$SB_TMP/h.got"
assert_eq OK "$(pyerr 'assert open(sys.argv[2], "rb").read() == b"f1|with headers|trace=t-1,bin=" + bytes(range(1, 8)) + b"\xff\n"' "$SB_TMP/h.got")" "kcat sees the key, payload and headers byte for byte"
assert_eq t-1 "$(t getfattr --absolute-names --only-values -n ${P}trace "$M/hdr/$(rec 3)")" "and the mount shows them back"

case_ "a topic of 3 partitions is a directory of 3 partition directories"
assert_eq "empty hdr orders" "$(t ls "$M" | tr '\n' ' ' | sed 's/ $//')" "topics"
assert_eq "0 1 2" "$(t ls "$M/orders" | tr '\n' ' ' | sed 's/ $//')" "partitions"
assert_eq directory "$(stat -c %F "$M/orders/1")" "a partition is a directory"
assert_eq "5 2" "$(stat -c %h "$M/orders" "$M/orders/2" | tr "\n" " " | sed "s/ $//")" "links: the topic's 3 partitions, a partition's none"
assert_eq ENOENT "$(pyerr 'os.stat(sys.argv[2])' "$M/orders/3")" "no partition 3"
assert_eq ENOENT "$(pyerr 'os.stat(sys.argv[2])' "$M/orders/01")" "a partition has one name"
assert_eq 0 "$(stat -c %s "$M/orders/.log")" "the topic's own .log reads nothing"

case_ "kcat's keyed records read back byte for byte per partition (.log, record files, keys)"
total=0
for p in 0 1 2; do
	n=$(wc -l <"$SB_TMP/meta.$p")
	total=$((total + n))
	assert_true "[ $n -gt 0 ]" "partition $p holds records ($n)"
	assert_eq "$n" "$(sb_count "$M/orders/$p")" "partition $p: records listed"
	assert_ok cmp "$SB_TMP/exp.$p" "$M/orders/$p/.log"
	bad=$(t python3 - "$SB_TMP/meta.$p" "$M/orders/$p" <<'PY'
import os, sys
bad = 0
for line in open(sys.argv[1], 'rb'):
    o, k, v = line.rstrip(b'\n').split(b'\t', 2)
    f = os.path.join(sys.argv[2], '%020d' % int(o))
    bad += open(f, 'rb').read() != v
    bad += os.getxattr(f, 'user.streambus.key') != k
print(bad)
PY
)
	assert_eq 0 "$bad" "partition $p: record files or keys that differ from kcat's"
done
assert_eq 300 "$total" "every record in one partition"
assert_ok tar -C "$M" -cf "$SB_TMP/orders.tar" orders
assert_eq 300 "$(tar -tf "$SB_TMP/orders.tar" | grep -c '^orders/[012]/[0-9]\{20\}$')" "tar of the topic holds every partition's records"
assert_eq 5 "$(stat -c %h "$M")" "the root's links: its 3 topics (not the partitions, looked up by now)"

case_ ".keys/ of each partition: each key's latest value (60 keys repeated over 300 kcat -K records); the topic's own: ENOTSUP"
bad=$(t python3 - "$SB_TMP/orders.all" "$M/orders" <<'EOF'
import os, sys
latest, part = {}, {}
for line in open(sys.argv[1], 'rb'):
    p, o, k, v = line.rstrip(b'\n').split(b'\t', 3)
    latest[k] = v; part.setdefault(k, set()).add(p.decode())
d = sys.argv[2]
bad = sum(len(s) != 1 for s in part.values())
for p in '012':
    want = sorted(k for k in latest if p in part[k])
    if [os.fsencode(n) for n in os.listdir(os.path.join(d, p, '.keys'))] != want: bad += 1
    for k in want:
        if open(os.path.join(d, p, '.keys', os.fsdecode(k)), 'rb').read() != latest[k]: bad += 1
print(bad)
EOF
)
assert_eq 0 "$bad" "keys listed (in byte order) or read wrong"
assert_eq ENOTSUP "$(pyerr 'os.listdir(sys.argv[2])' "$M/orders/.keys")" "the topic's own .keys (per partition)"

case_ "files created in the topic go to the partition of their name (the key), where kcat -K puts it"
tsh 'for round in 1 2; do for i in $(seq 0 29); do printf "m$round-$i" > "$1/key$i" || exit 1; done; done' "$M/orders" ||
	assert_fail_now "creating files in orders/"
for i in $(seq 0 29); do printf 'key%d\tk-%d\n' $i $i; done | kc -P -t orders -K $'\t' || sb_die "kcat -P -K"
kc -C -t orders -e -q -f '%p\t%k\t%s\n' >"$SB_TMP/placed"
out=$(t python3 - "$SB_TMP/placed" <<'PY'
import sys
where, n = {}, {}
for line in open(sys.argv[1]):
    p, k, v = line.rstrip('\n').split('\t', 2)
    if k.startswith('key'):
        where.setdefault(k, set()).add(p)
        n[k] = n.get(k, 0) + 1
bad = sum(len(s) != 1 for s in where.values()) + sum(c != 3 for c in n.values())
print(bad, len(where), len(set().union(*where.values())))
PY
)
assert_eq "0 30 3" "$out" "keys in more than one partition (or not 3 records: 2 files + kcat's), keys seen, partitions used"
assert_eq "" "$(t ls "$M/orders" | grep -v '^[012]$')" "the created files went into partitions"

case_ "lines appended to the topic's .log: each write to one partition, every line once"
# (cat: one write() of both lines; bash's printf writes line by line)
tsh 'for i in $(seq 1 6); do printf "dot-%d-a\ndot-%d-b\n" $i $i >"$2"; cat "$2" >> "$1" || exit 1; done' "$M/orders/.log" "$SB_TMP/two" ||
	assert_fail_now "appending to orders/.log"
kc -C -t orders -e -q -f '%p %s\n' | grep ' dot-' >"$SB_TMP/dots"
assert_eq 12 "$(wc -l <"$SB_TMP/dots")" "lines kcat sees"
assert_eq 3 "$(cut -d' ' -f1 "$SB_TMP/dots" | sort -u | wc -l)" "partitions the 6 writes went to"
assert_eq 6 "$(cut -d- -f2 "$SB_TMP/dots" | sort -u | wc -l)" "writes"
assert_eq 0 "$(awk '{split($2, a, "-"); w[a[2]] = w[a[2]] " " $1} END {for (k in w) {split(w[k], b, " "); if (b[1] != b[2]) print k}}' "$SB_TMP/dots" | wc -l)" "a write's lines split across partitions"

case_ "tail -f follows a partition's .log"
tail -n 0 -f "$M/orders/1/.log" >"$SB_TMP/tailed" 2>&1 &
tp=$!
sleep 1
printf 'p1-a\np1-b\n' | kc -P -t orders -p 1
printf 'p2-a\n' | kc -P -t orders -p 2
assert_true "sb_wait_until 'grep -q p1-b \"$SB_TMP/tailed\"' 5" "tail -f saw kcat's records within 5 s"
kill $tp 2>/dev/null; wait $tp 2>/dev/null
assert_eq "p1-ap1-b" "$(cat "$SB_TMP/tailed")" "that partition's records only"
assert_eq "p2-a" "$(t tail -c 4 "$M/orders/2/.log")" "the other partition's"

case_ "partitions are the topic's: no rmdir, no mkdir inside it"
assert_eq EPERM "$(pyerr 'os.rmdir(sys.argv[2])' "$M/orders/0")" "rmdir of a partition"
assert_eq EPERM "$(pyerr 'os.mkdir(sys.argv[2])' "$M/orders/9")" "mkdir in a topic"
# rmdir asks each partition's watermarks while the refresher asks them too
# (its partitions are followed: they were read): an answer, never a
# query refused because another is out
assert_eq "ENOTEMPTY ENOTEMPTY ENOTEMPTY ENOTEMPTY ENOTEMPTY ENOTEMPTY" "$(pyerr '
r = []
for i in range(6):
    try:
        os.rmdir(sys.argv[2]); r.append("OK")
    except OSError as e:
        r.append(errno.errorcode[e.errno])
print(" ".join(r), end="")' "$M/orders" | sed 's/OK$//')" "rmdir of a topic with records in a partition, 6 times"
# every partition empty: DeleteTopics (through kafka_admin.c), which the
# 2.0.2 mock does not answer: ETIMEDOUT after timeout_ms (1.5 s here), no hang (the
# unit tests' fake deletes)
assert_eq ETIMEDOUT "$(pyerr 'os.rmdir(sys.argv[2])' "$M/empty")" "rmdir of a topic of empty partitions asks the cluster"
sb_umount
