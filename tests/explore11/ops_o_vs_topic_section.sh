#!/bin/bash
# ops_o_vs_topic_section.sh - does `-o key=value` override a [topic:NAME] key of
# mount.ini? SPEC 1: "paths given on the command line win, then -o key=value, then
# the file"; mount.ini: "-o key=value,... overrides a key of the file". Here the
# file sets segment_bytes = 1M in [log] and in [topic:a]; the mount adds
# -o segment_bytes=4096. Topic b gets 4096 (several segments), topic a keeps the
# file's 1M (one segment): the file's [topic:a] beats -o. Same with sync, retention...
# Run from /work/main as root; SB_BUILD (default build).
set -u
B=${SB_BUILD:-build}; case $B in /*) ;; *) B=$PWD/$B;; esac
D=/tmp/e11ops/o_vs_topic; rm -rf $D; mkdir -p $D/log $D/mnt
trap 'fusermount3 -u $D/mnt 2>/dev/null || umount -l $D/mnt 2>/dev/null' EXIT
printf '[log]\nsegment_bytes = 1M\n[topic:a]\nsegment_bytes = 1M\n' > $D/m.ini
nice -n 10 $B/streambusfs -c $D/m.ini -o segment_bytes=4096 $D/log $D/mnt || exit 2
mkdir $D/mnt/a $D/mnt/b
for t in a b; do seq -f "line %g ........................................" 1 1000 >> $D/mnt/$t/.log; done
fusermount3 -u $D/mnt
na=$(ls $D/log/a/*.seg | wc -l); nb=$(ls $D/log/b/*.seg | wc -l)
echo "topic a ([topic:a] segment_bytes = 1M in the file, -o segment_bytes=4096): $na segment(s)"
echo "topic b (only [log] in the file, -o segment_bytes=4096): $nb segment(s)"
[ "$na" -gt 1 ] && echo "-o won for a too" || echo "the file's [topic:a] won over -o for topic a"
