#!/usr/bin/env python3
"""empty_same_name.py [SECONDS] - process A creates and closes a name without
writing a byte (an empty record, appended at its release: README "At the
edges"), process B at the same time creates, writes and closes the same name.
A_WRITE=1: A writes a line too; A_TRUNC=1: A opens with O_TRUNC.
Every close that succeeded should be one record (README: "another writer of
the name writes a record of its own"): counts A's empty records and B's."""
import os, sys, time, errno, shutil, multiprocessing as mp, collections
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'harness'))
from common import *

def a(mnt, secs, q):
    n = e = 0; t0 = time.time(); errs = collections.Counter()
    while time.time() - t0 < secs:
        try:
            fd = os.open(mnt + "/t/e", os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if os.environ.get("A_TRUNC") else 0), 0o644)
            if os.environ.get('A_WRITE'):
                os.write(fd, b'A%d\n' % n)
            os.close(fd); n += 1
        except OSError as x:
            errs[errno.errorcode[x.errno]] += 1
    q.put(('A', n, dict(errs)))

def b(mnt, secs, q):
    n = 0; t0 = time.time(); errs = collections.Counter()
    while time.time() - t0 < secs:
        try:
            fd = os.open(mnt + '/t/e', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b'B%d\n' % n); os.close(fd); n += 1
        except OSError as x:
            errs[errno.errorcode[x.errno]] += 1
    q.put(('B', n, dict(errs)))

if __name__ == '__main__':
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    base = '/tmp/t8/emptysame'
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
        time.sleep(2.5)   # the last releases
        empty = full = arecs = 0
        for nm in os.listdir(base + '/mnt/t'):
            if nm.isdigit():
                with open(base + '/mnt/t/' + nm, 'rb') as f:
                    d = f.read()
                if not d:
                    empty += 1
                elif d.startswith(b'A'):
                    arecs += 1
                else:
                    full += 1
        print('A (%s, O_TRUNC %s): %d closes acknowledged, errors %s -> %d empty records, %d records of A\'s bytes'
              % ('writes' if os.environ.get('A_WRITE') else 'no write', 'yes' if os.environ.get('A_TRUNC') else 'no',
                 res['A'][0], res['A'][1], empty, arecs))
        print('B (writes):   %d closes acknowledged, errors %s -> %d records with bytes' % (res['B'][0], res['B'][1], full))
    finally:
        umount(base + '/mnt', base + '/log')
