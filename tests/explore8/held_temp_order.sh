#!/bin/bash
# held_temp_order.sh - files closed under temporary names (.NAME.tmp) and never
# renamed are appended after 10 s, or at the unmount (README "At the edges"):
# in which order?  Five files closed in order 1..5, then wait 12 s; five more,
# then unmount at once.  Prints the offsets with their keys.
B=${SB_BUILD:-build}; B=$(realpath $B)
T=/tmp/t8/heldorder; fusermount3 -u $T/mnt 2>/dev/null; rm -rf $T; mkdir -p $T/log $T/mnt
$B/streambusfs -c /dev/null $T/log $T/mnt || exit 1
mkdir $T/mnt/t
for i in 1 2 3 4 5; do echo "closed $i" > $T/mnt/t/.f$i.tmp; done
sleep 12
for i in 6 7 8 9 10; do echo "closed $i" > $T/mnt/t/.f$i.tmp; done
fusermount3 -u $T/mnt; sleep 0.5
$B/streambus dump $T/log t | cut -c1-100
