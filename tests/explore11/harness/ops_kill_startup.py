#!/usr/bin/env python3
"""ops_kill_startup.py SEED... - kill -9 at random moments of the daemon's start
(recovery after a crash, index rebuilds) and of `streambus recover`, repeatedly;
then a clean mount must show every record written before the first crash
(sync=always), and verify must exit 0.

Per seed: mount (sync=always, small segments, maybe compression/compaction), write
N records in a few topics, kill -9 the daemon, remove some index files (missing
indexes are rebuilt, SPEC 6), then K times: start the daemon or `streambus recover`
and kill -9 it after a random delay (0-300 ms); finally mount and check.
"""
import os, sys, random, shutil, subprocess, time, signal, glob
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C


def run(seed):
    rnd = random.Random(seed)
    d = '%s/ks%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    log, mnt = d + '/log', d + '/mnt'
    os.makedirs(log); os.makedirs(mnt)
    opts = 'sync=always,segment_bytes=%d,index_interval_bytes=%d' % (rnd.choice([4096, 8192, 65536]), rnd.choice([1, 100, 4096]))
    if rnd.random() < 0.4:
        opts += ',compression=' + rnd.choice(['lz4', 'zstd'])
    if rnd.random() < 0.3:
        opts += ',cleanup=compact'
    f = []
    tag = 'seed %d (%s)' % (seed, opts)
    rc, out = C.start(['-o', opts, log, mnt])
    if rc != 0:
        return ['%s: mount %s %s' % (tag, rc, out)], 0
    exp = {}
    try:
        for t in ['t%d' % i for i in range(rnd.randint(1, 3))]:
            os.mkdir(mnt + '/' + t)
            n = rnd.randint(100, 3000)
            recs = [b'%s-%d %s\n' % (t.encode(), i, b'q' * rnd.randint(0, 200)) for i in range(n)]
            fd = os.open(mnt + '/' + t + '/.log', os.O_WRONLY | os.O_APPEND)
            for i in range(0, n, 50):
                os.write(fd, b''.join(recs[i:i + 50]))
            os.close(fd)
            exp[t] = recs
        time.sleep(rnd.uniform(0, 1.5))   # let compression / compaction start
        for p in C.daemon_pids(mnt):
            os.kill(p, signal.SIGKILL)
    finally:
        time.sleep(0.2)
        C.umount(mnt)
    for p in glob.glob(log + '/*/*.idx') + glob.glob(log + '/*/*.tix'):
        if rnd.random() < 0.5:
            os.unlink(p)
    kills = 0
    for k in range(rnd.randint(3, 8)):
        who = rnd.choice(['mount', 'mount', 'recover'])
        delay = rnd.uniform(0, 0.3)
        if who == 'mount':
            p = subprocess.Popen(['nice', '-n', '10', C.FS, '-f', '-o', opts, log, mnt],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        else:
            p = subprocess.Popen(['nice', '-n', '10', C.TOOL, 'recover', log],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if p.poll() is None:
            p.kill()
            kills += 1
        err = p.communicate()[1].decode('utf-8', 'replace')
        if p.returncode not in (0, -9):
            f.append('%s: %s after earlier kills exit %s: %s' % (tag, who, p.returncode, err.strip()[-400:]))
        C.umount(mnt)
    rc, out = C.start(['-o', opts, log, mnt])
    if rc != 0:
        f.append('%s: final mount rc %s: %s' % (tag, rc, out.strip()[-500:]))
        C.umount(mnt)
        rc, o, e = C.tool('verify', log)
        f.append('%s: verify %s %s %s' % (tag, rc, o[-300:], e[-300:]))
        return f, kills
    try:
        for t, recs in exp.items():
            got = [dd for (o, dd) in C.records(mnt, t)]
            if got != recs:
                miss = len(set(recs) - set(got))
                f.append('%s: %s: %d records, %d written (sync=always, acknowledged), %d missing' % (tag, t, len(got), len(recs), miss))
            lg = open(mnt + '/' + t + '/.log', 'rb').read()
            if lg != b''.join(recs):
                f.append('%s: %s: .log differs (%d bytes, %d written)' % (tag, t, len(lg), len(b''.join(recs))))
    finally:
        C.umount(mnt)
    rc, o, e = C.tool('verify', log)
    if rc != 0:
        f.append('%s: verify rc %s: %s %s' % (tag, rc, o[-300:], e[-300:]))
    return f, kills


if __name__ == '__main__':
    nf = nk = 0
    for s in map(int, sys.argv[1:]):
        fs, k = run(s)
        nk += k
        for x in fs:
            print('FINDING', x); nf += 1
        print('seed', s, 'kills', k, 'findings', len(fs), flush=True)
    print('kills', nk, 'findings', nf)
