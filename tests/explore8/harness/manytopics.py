#!/usr/bin/env python3
"""manytopics.py SEED [TOPICS] - many topics with keys, compaction and zstd;
random key writes/removals in all of them from 3 processes; the latest value per
(topic, key) checked through .keys/ (listing and cat), after an unmount by
`streambus get` and `dump --keys`, and after a remount."""
import os, sys, random, time, shutil, json, subprocess, multiprocessing as mp
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import *

def w(p, mnt, topics, seed, n, q):
    rng = random.Random('%s-%d' % (seed, p))
    model = {}
    for i in range(n):
        t = rng.choice(topics)
        k = 'k%d_%d' % (p, rng.randint(0, 9))
        if rng.random() < 0.15:
            try:
                os.unlink('%s/%s/.keys/%s' % (mnt, t, k))
                model[(t, k)] = None
            except FileNotFoundError:
                pass
        else:
            v = ('%d.%d.%s' % (p, i, 'v' * rng.choice([0, 10, 500]))).encode()
            with open('%s/%s/.keys/%s' % (mnt, t, k), 'wb') as f:
                f.write(v)
            model[(t, k)] = v.decode()
    q.put(model)

def main():
    seed = sys.argv[1]; ntop = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rng = random.Random(seed)
    base = '/tmp/t8/mt-%s' % seed
    shutil.rmtree(base, ignore_errors=True)
    logdir, mnt = base + '/log', base + '/mnt'
    os.makedirs(logdir); os.makedirs(mnt)
    opts = 'cleanup=compact,compression=zstd,segment_bytes=%d,delete_retention_ms=%d,sync=never' % (
        rng.choice([2048, 8192]), rng.choice([0, 86400000]))
    print('seed %s: %d topics, %s' % (seed, ntop, opts), flush=True)
    problems = []
    mount(logdir, mnt, opts, base + '/daemon.log')
    try:
        topics = ['t%03d' % i for i in range(ntop)]
        for t in topics:
            os.mkdir(mnt + '/' + t)
        q = mp.Queue()
        ps = [mp.Process(target=w, args=(p, mnt, topics, seed, 1500, q)) for p in range(3)]
        [p.start() for p in ps]
        model = {}
        for _ in ps:
            model.update(q.get())
        [p.join() for p in ps]
        def check(tag):
            for t in topics:
                names = set(x for x in os.listdir('%s/%s/.keys' % (mnt, t)))
                for (tt, k), v in model.items():
                    if tt != t:
                        continue
                    if v is None:
                        if k in names:
                            problems.append('%s: %s/%s removed but listed' % (tag, t, k))
                    else:
                        if k not in names:
                            problems.append('%s: %s/%s not listed' % (tag, t, k))
                        try:
                            got = open('%s/%s/.keys/%s' % (mnt, t, k)).read()
                        except OSError as e:
                            got = str(e)
                        if got != v:
                            problems.append('%s: %s/%s = %r want %r' % (tag, t, k, got[:30], v[:30]))
        time.sleep(rng.uniform(0, 3))
        check('mount')
        umount(mnt, logdir)
        rc, out, err = tool('verify', logdir)
        if rc:
            problems.append('verify rc %d %s' % (rc, err[-200:]))
        for (t, k), v in rng.sample(sorted(model.items(), key=str), min(200, len(model))):
            rc, out, err = tool('get', logdir, t, k)
            if v is None and rc != 1:
                problems.append('get %s %s: rc %d for a removed key' % (t, k, rc))
            if v is not None and (rc, out.decode()) != (0, v):
                problems.append('get %s %s: rc %d %r want %r' % (t, k, rc, out[:20], v[:20]))
        mount(logdir, mnt, opts, base + '/daemon.log')
        check('remount')
        umount(mnt, logdir)
        print('seed %s: %d keys in %d topics checked twice, 200 gets, %d problems' % (seed, len(model), ntop, len(problems)))
    finally:
        if is_mounted(mnt):
            force_umount(mnt, logdir)
    for p in problems[:20]:
        print('  PROBLEM', p)
    if not problems:
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(1 if problems else 0)

main()
