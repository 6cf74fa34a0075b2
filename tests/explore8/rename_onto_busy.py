#!/usr/bin/env python3
"""rename_onto_busy.py [SECONDS] - process A writes a temp name and renames it
onto `dst` (before its close with RENAME_BEFORE_CLOSE=1, else after), process B
creates, writes and closes `dst` at the same time. Each acknowledged
(write+close+rename all succeeded) file of A and every acknowledged close of
B should be one record (SPEC 3: temp+rename appends exactly one record).
SUBDIR=.keys/: the same in the key view."""
import os, sys, time, errno, shutil, multiprocessing as mp, collections
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'harness'))
from common import *

def a(mnt, secs, q):
    n = 0; t0 = time.time(); errs = collections.Counter(); acked = []
    before = bool(os.environ.get('RENAME_BEFORE_CLOSE'))
    while time.time() - t0 < secs:
        n += 1
        tmp = mnt + '/t/' + os.environ.get('SUBDIR', '') + '.dst.%d.tmp' % n
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b'A%d\n' % n)
            if before:
                os.rename(tmp, mnt + '/t/' + os.environ.get('SUBDIR', '') + 'dst')
                os.close(fd)
            else:
                os.close(fd)
                os.rename(tmp, mnt + '/t/' + os.environ.get('SUBDIR', '') + 'dst')
            acked.append(b'A%d\n' % n)
        except OSError as x:
            errs[errno.errorcode[x.errno]] += 1
    q.put(('A', acked, dict(errs)))

def b(mnt, secs, q):
    n = 0; t0 = time.time(); errs = collections.Counter(); acked = []
    while time.time() - t0 < secs:
        n += 1
        try:
            fd = os.open(mnt + '/t/' + os.environ.get('SUBDIR', '') + 'dst', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b'B%d\n' % n); os.close(fd); acked.append(b'B%d\n' % n)
        except OSError as x:
            errs[errno.errorcode[x.errno]] += 1
    q.put(('B', acked, dict(errs)))

if __name__ == '__main__':
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    base = '/tmp/t8/renbusy'
    if is_mounted(base + '/mnt'):
        force_umount(base + '/mnt')
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base + '/log'); os.makedirs(base + '/mnt')
    mount(base + '/log', base + '/mnt', 'segment_bytes=1048576', base + '/daemon.log')
    try:
        os.mkdir(base + '/mnt/t')
        q = mp.Queue()
        ps = [mp.Process(target=f, args=(base + '/mnt', secs, q)) for f in (a, b)]
        [p.start() for p in ps]
        res = {r[0]: r[1:] for r in (q.get(), q.get())}
        [p.join() for p in ps]
        time.sleep(11)   # held temp names
        recs = collections.Counter(); keys = collections.Counter()
        for nm in os.listdir(base + '/mnt/t'):
            if nm.isdigit():
                p = base + '/mnt/t/' + nm
                with open(p, 'rb') as f:
                    recs[f.read()] += 1
                keys[os.getxattr(p, 'user.streambus.key').decode()[:5]] += 1
        for w in 'AB':
            acked, errs = res[w]
            lost = sum(1 for v in acked if recs[v] == 0)
            dup = sum(1 for v in acked if recs[v] > 1)
            print('%s: %d acknowledged, errors %s; lost %d, more than once %d' % (w, len(acked), errs, lost, dup))
        print('records: %d; keys %s' % (sum(recs.values()), dict(keys)))
    finally:
        umount(base + '/mnt', base + '/log')
