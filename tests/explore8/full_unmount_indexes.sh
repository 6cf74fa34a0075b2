#!/bin/bash
# full_unmount_indexes.sh - a clean unmount on a full disk: which index files
# are left missing, and what the daemon says about it (its stderr: daemon.log).
# LOG_DIR on a 4 MiB tmpfs; lines until ENOSPC; rm of a filler frees 1 MiB; more
# lines until ENOSPC; unmount; verify; mount again.
B=${SB_BUILD:-build}; B=$(realpath $B)
T=/tmp/t8/fullidx; mkdir -p $T
fusermount3 -u $T/mnt 2>/dev/null; umount $T/fs 2>/dev/null; rm -rf $T/*
mkdir -p $T/fs $T/mnt && mount -t tmpfs -o size=4m tmpfs $T/fs && mkdir $T/fs/log || exit 1
$B/streambusfs -c /dev/null -o segment_bytes=16384,sync=never $T/fs/log $T/mnt 2>$T/daemon.log || exit 1
mkdir $T/mnt/t
dd if=/dev/zero of=$T/fs/filler bs=64k count=16 status=none
fill() { python3 -c "
import os
n=e=0
while e < 5:
    try:
        with open('$T/mnt/t/.log','ab') as f: f.write(os.urandom(700).hex().encode()+b'\n')
        n+=1
    except OSError as x: e+=1; err=x.strerror
print('  appended', n, 'then', e, 'x', err)"; }
fill; rm $T/fs/filler; echo "  freed: $(df -k --output=avail $T/fs | tail -1) KiB free"; sleep 2; fill
df -k $T/fs | tail -1
fusermount3 -u $T/mnt; sleep 1
echo "index files missing after the clean unmount: $(comm -23 <(ls $T/fs/log/t | grep '\.seg$' | sed 's/\.seg//' | sort) <(ls $T/fs/log/t | grep '\.idx$' | sed 's/\.idx//' | sort) | wc -l) of $(ls $T/fs/log/t/*.seg | wc -l) segments"
comm -23 <(ls $T/fs/log/t | grep "\.seg$" | sed "s/\.seg//" | sort) <(ls $T/fs/log/t | grep "\.idx$" | sed "s/\.idx//" | sort) | tr "\n" " "; echo
echo "daemon said:"; sed 's/^/  /' $T/daemon.log
$B/streambus verify $T/fs/log >$T/verify.out 2>&1; echo "verify exit $?: $(grep -c 'missing index' $T/verify.out) 'missing index' lines"
umount $T/fs
