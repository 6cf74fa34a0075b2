#!/bin/bash
# A key made of digits (written through .keys/) is copied as an offset:
# README says `cp TOPIC/.keys/* OTHER/` gives OTHER the same keys.
# usage: SB_BUILD=build bash tests/explore7/ digit_key_copy.sh
B=$(realpath "${SB_BUILD:-build}")
D=$(mktemp -d /tmp/t7/dk.XXXXXX); mkdir $D/log $D/mnt
trap 'cd /; fusermount3 -u $D/mnt && sleep 0.5 && rm -rf $D' EXIT
$B/streambusfs -c /dev/null $D/log $D/mnt || exit 1
cd $D/mnt && mkdir T T2 T3
echo v42 > T/.keys/42; echo vx > T/.keys/x; echo v7 > T/.keys/7
echo "T/.keys: $(ls T/.keys | tr '\n' ' ')"
cp T/.keys/* T2/; echo "cp into an empty topic: exit $?"
echo "T2 records: $(ls T2 | tr '\n' ' ')  T2/.keys: $(ls T2/.keys | tr '\n' ' ') (want: 42 7 x)"
echo a >> T3/.log
cp T/.keys/* T3/; echo "cp into a topic of 1 record: exit $?"
echo "T3/.keys: $(ls T3/.keys | tr '\n' ' ') (want: 42 7 x)"
