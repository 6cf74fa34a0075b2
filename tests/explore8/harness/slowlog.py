#!/usr/bin/env python3
"""slowlog.py SEED - a slow reader of .log (small reads, pauses) while a
compacted topic's rounds remove records ahead of and behind its position
(and optionally zstd compresses the sealed segments).  Property: what the
reader got is whole records, in offset order, none twice, and every unkeyed
record (never compacted) appended before the reader reached it."""
import os, sys, random, time, shutil, hashlib, threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import *

def sha(b): return hashlib.sha1(b).hexdigest()[:10]

def main():
    seed = sys.argv[1]
    rng = random.Random(seed)
    base = '/tmp/t8/sl-%s' % seed
    shutil.rmtree(base, ignore_errors=True)
    logdir, mnt = base + '/log', base + '/mnt'
    os.makedirs(logdir); os.makedirs(mnt)
    opts = 'cleanup=compact,segment_bytes=%d,compression=%s,delete_retention_ms=0,sync=never' % (
        rng.choice([1024, 4096, 16384]), rng.choice(['none', 'lz4', 'zstd']))
    print('seed %s: %s' % (seed, opts), flush=True)
    mount(logdir, mnt, opts, base + '/daemon.log')
    problems = []
    try:
        os.mkdir(mnt + '/t')
        written = []
        stop = [False]
        def writer():
            n = 0
            while not stop[0]:
                n += 1
                if rng.random() < 0.7:
                    k = 'k%d' % rng.randint(0, 5)
                    body = 'K.%d.%s.%s' % (n, k, 'x' * rng.randint(0, 300))
                    d = (sha(body.encode()) + '.' + body + '\n').encode()
                    with open(mnt + '/t/.keys/' + k, 'wb') as f:
                        f.write(d)
                    written.append(('K', d))
                else:
                    body = 'L.%d.%s' % (n, 'y' * rng.randint(0, 300))
                    d = (sha(body.encode()) + '.' + body + '\n').encode()
                    with open(mnt + '/t/.log', 'ab') as f:
                        f.write(d)
                    written.append(('L', d))
                time.sleep(rng.uniform(0, 0.003))
        wt = threading.Thread(target=writer); wt.start()
        time.sleep(1)
        got = b''
        fd = os.open(mnt + '/t/.log', os.O_RDONLY)
        t0 = time.time()
        errs = []
        while time.time() - t0 < 12:
            try:
                d = os.read(fd, rng.choice([7, 100, 1000, 5000]))
            except OSError as e:
                errs.append(e.errno)
                time.sleep(0.1)
                continue
            got += d
            time.sleep(rng.uniform(0, 0.01))
        stop[0] = True; wt.join()
        # drain what is left
        while True:
            d = os.read(fd, 65536)
            if not d:
                break
            got += d
        os.close(fd)
        lines = got.split(b'\n')
        tail = lines.pop()
        seen = set()
        order = {d: i for i, (_, d) in enumerate(written)}
        last = -1
        bad = 0
        for l in lines:
            d = l + b'\n'
            if d[:10].decode(errors='replace') != sha(d[11:-1]):
                bad += 1
                if bad < 4:
                    problems.append('a partial or mixed record in what the reader got: %r' % d[:60])
                continue
            if d in seen:
                problems.append('a record twice: %r' % d[:40])
            seen.add(d)
            i = order.get(d, -1)
            if i < last:
                problems.append('out of order: %r' % d[:40])
            last = max(last, i)
        if bad:
            problems.append('%d bad lines of %d' % (bad, len(lines)))
        Ls = [d for k, d in written if k == 'L']
        missing = [d for d in Ls if d not in seen]
        if missing:
            problems.append('%d of %d unkeyed records never read (first %r)' % (len(missing), len(Ls), missing[0][:40]))
        if errs:
            problems.append('read errors: %s' % errs[:5])
        print('seed %s: %d appends, reader got %d bytes, %d records, %d problems' % (seed, len(written), len(got), len(lines), len(problems)), flush=True)
        umount(mnt, logdir)
    finally:
        if is_mounted(mnt):
            force_umount(mnt, logdir)
    for p in problems[:10]:
        print('  PROBLEM', p)
    if not problems:
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(1 if problems else 0)
main()
