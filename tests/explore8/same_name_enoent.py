#!/usr/bin/env python3
"""same_name_enoent.py [PROCS] [SECONDS] - several processes create, write and
close the same name in one topic (README: "another writer of the name writes a
record of its own"); counts the opens with O_CREAT that fail, by errno, and
checks that every close that succeeded is one record. SAME_NAME=.keys/k: the
same through the key view."""
import os, sys, time, errno, subprocess, shutil, multiprocessing as mp, collections
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'harness'))
from common import *

def w(p, mnt, secs, q):
    errs = collections.Counter(); acked = []
    t0 = time.time(); n = 0
    while time.time() - t0 < secs:
        n += 1
        v = b'%d.%d\n' % (p, n)
        try:
            fd = os.open(mnt + '/t/' + os.environ.get('SAME_NAME', 'same'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            errs['open ' + errno.errorcode[e.errno]] += 1
            continue
        try:
            os.write(fd, v)
            os.close(fd)
            acked.append(v)
        except OSError as e:
            errs['write/close ' + errno.errorcode[e.errno]] += 1
    q.put((dict(errs), acked))

if __name__ == '__main__':
    procs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    base = '/tmp/t8/same'
    if is_mounted(base + '/mnt'):
        force_umount(base + '/mnt')
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base + '/log'); os.makedirs(base + '/mnt')
    mount(base + '/log', base + '/mnt', 'segment_bytes=65536', base + '/daemon.log')
    try:
        os.mkdir(base + '/mnt/t')
        q = mp.Queue()
        ps = [mp.Process(target=w, args=(p, base + '/mnt', secs, q)) for p in range(procs)]
        [p.start() for p in ps]
        res = [q.get() for _ in ps]
        [p.join() for p in ps]
        errs = collections.Counter()
        acked = []
        for e, a in res:
            errs.update(e); acked += a
        recs = collections.Counter()
        for n in os.listdir(base + '/mnt/t'):
            if n.isdigit():
                with open(base + '/mnt/t/' + n, 'rb') as f:
                    recs[f.read()] += 1
        lost = [v for v in acked if recs[v] != 1]
        extra = sum(recs.values()) - len(acked)
        print('%d processes, %.0f s: %d closes acknowledged, %d records; errors %s; acknowledged not once: %d; records beyond the acknowledged: %d'
              % (procs, secs, len(acked), sum(recs.values()), dict(errs), len(lost), extra))
    finally:
        umount(base + '/mnt', base + '/log')
