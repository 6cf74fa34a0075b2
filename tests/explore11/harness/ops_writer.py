#!/usr/bin/env python3
"""ops_writer.py MNT TOPIC WID SEED - append until killed or the mount fails; print
'ACK kind name payload-hex-id' after each write+close that returned 0 (flushed)."""
import os, sys, random, errno, time
mnt, topic, wid, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed * 1000 + wid)
d = os.path.join(mnt, topic)
out = sys.stdout
fails = 0
i = 0
while fails < 20:
    i += 1
    tag = 'w%d-%d' % (wid, i)
    k = rnd.random()
    try:
        if k < 0.45:       # lines through .log
            n = rnd.randint(1, 4)
            data = b''.join(b'%s.%d %s\n' % (tag.encode(), j, b'x' * rnd.randint(0, 40)) for j in range(n))
            fd = os.open(d + '/.log', os.O_WRONLY | os.O_APPEND)
            try:
                w = os.write(fd, data)
            finally:
                os.close(fd)
            if w == len(data):
                for j in range(n):
                    out.write('ACK line %s.%d\n' % (tag, j))
        elif k < 0.75:     # a whole file, keyed by its name
            data = b'%s file %s' % (tag.encode(), b'y' * rnd.choice([0, 10, 3000]))
            fd = os.open(d + '/' + tag, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            out.write('ACK file %s\n' % tag)
        elif k < 0.85:     # into .keys/
            data = b'%s key' % tag.encode()
            fd = os.open(d + '/.keys/' + tag, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            out.write('ACK key %s\n' % tag)
        elif k < 0.93:     # temp name then rename (editor / rsync pattern)
            data = b'%s tmp' % tag.encode()
            fd = os.open(d + '/.' + tag + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.rename(d + '/.' + tag + '.tmp', d + '/' + tag)
            out.write('ACK file %s\n' % tag)
        else:              # empty file (appended at its release)
            fd = os.open(d + '/' + tag, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.close(fd)
            out.write('ACK empty %s\n' % tag)
        out.flush()
    except OSError as e:
        out.write('ERR %s %s\n' % (tag, errno.errorcode.get(e.errno, e.errno)))
        out.flush()
        fails += 1
        time.sleep(0.05)
