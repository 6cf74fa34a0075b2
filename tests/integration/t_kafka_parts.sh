#!/usr/bin/env bash
# SPEC §8 against librdkafka's mock cluster, cross-checked with kcat:
# record headers as user.streambus.header.NAME xattrs both ways (kcat -H
# on produce, -f '%h' on consume), and topics of several partitions as
# one directory per partition (orders/0/ ..), with appends to the
# topic's own .log and files created in it placed by key as kcat -K
# (librdkafka's default partitioner) places them.
. "$(dirname "$0")/lib.sh"
. "$SB_TOP/tests/integration/lib_kafka.sh"

kafka_start -t hdr:1 -t orders:3
M=$SB_MNT
P=user.streambus.header.

# kcat -H NAME=VALUE gives every message of its run those headers.
printf 'one\ntwo\n' | kc -P -t hdr -H trace=abc -H user=bob -H trace=again || sb_die "kcat -P -H"
printf 'three\n' | kc -P -t hdr || sb_die "kcat -P"
kafka_mount

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
