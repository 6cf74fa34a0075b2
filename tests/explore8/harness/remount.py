#!/usr/bin/env python3
"""remount.py - unmount and remount at once, in a loop, while writers retry
through the gap; the streambus tools run right after each unmount.

  remount.py SEED [--cycles N] [--keep]

Writers (threads) append unique payloads (lines to .log, created files,
.keys/ writes), each retried until acknowledged (a user's retry loop).
Each cycle: a random pause (0-1.5 s), fusermount3 -u (retried while EBUSY;
sometimes -uz), then at once `streambus stat`, `verify`, `dump --raw`
(each must exit 0, say nothing of damage), then the mount again at once
(must succeed).  At the end: every acknowledged payload exactly once, every
attempt at most once, each writer's acknowledged payloads in order, and
where an attempt that failed was appended all the same (a retry then
duplicates it), the errno it failed with.
"""
import os, sys, random, time, errno, hashlib, json, shutil, subprocess, threading, base64
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import *


def sha(b):
    return hashlib.sha1(b).hexdigest()[:10]


class Writer(threading.Thread):
    def __init__(self, wid, mnt, kind, rng, log, lock):
        super().__init__(daemon=True)
        self.wid, self.mnt, self.kind, self.rng, self.log, self.lock = wid, mnt, kind, rng, log, lock
        self.stop = False
        self.n = 0
        self.errs = {}

    def attempt(self, payload, key):
        if self.kind == 'line':
            fd = os.open(self.mnt + '/t/.log', os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
        else:
            path = self.mnt + ('/t/' if self.kind == 'file' else '/t/.keys/') + key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)

    def run(self):
        while not self.stop:
            self.n += 1
            body = '%s.%d.%s' % (self.wid, self.n, 'p' * self.rng.choice([0, 50, 2000]))
            payload = (sha(body.encode()) + '.' + body + '\n').encode()
            key = '%s_%d' % (self.wid, self.n) if self.kind == 'file' else '%s_k%d' % (self.wid, self.n % 4)
            tries = 0
            while True:
                tries += 1
                try:
                    self.attempt(payload, key)
                    with self.lock:
                        self.log.append(dict(t='A', w=self.wid, n=self.n, key=None if self.kind == 'line' else key,
                                             v=payload.decode(), tries=tries))
                    time.sleep(self.rng.uniform(0, 0.02))
                    break
                except OSError as e:
                    en = errno.errorcode.get(e.errno, str(e.errno))
                    self.errs[en] = self.errs.get(en, 0) + 1
                    with self.lock:
                        self.log.append(dict(t='F', w=self.wid, n=self.n, errno=en, v=payload.decode()))
                    if self.stop:
                        break
                    time.sleep(0.01)


def run_seed(seed, cycles, keep):
    rng = random.Random(seed)
    base = '/tmp/t8/rm-%s' % seed
    shutil.rmtree(base, ignore_errors=True)
    logdir, mnt = base + '/log', base + '/mnt'
    os.makedirs(logdir)
    os.makedirs(mnt)
    errlog = base + '/daemon.log'
    opts = 'segment_bytes=%d,sync=%s,compression=%s,cleanup=%s' % (
        rng.choice([4096, 65536, 1 << 20]), rng.choice(['never', 'interval', 'always']),
        rng.choice(['none', 'lz4', 'zstd']), rng.choice(['delete', 'compact']))
    print('seed %s: %d cycles, opts %s' % (seed, cycles, opts), flush=True)
    problems = []
    log, lock = [], threading.Lock()
    ws = []
    tool_runs = 0
    try:
        mount(logdir, mnt, opts, errlog)
        os.mkdir(mnt + '/t')
        ws = [Writer('L%d' % i, mnt, 'line', random.Random('%s-L%d' % (seed, i)), log, lock) for i in range(2)] + \
             [Writer('F0', mnt, 'file', random.Random('%s-F' % seed), log, lock),
              Writer('K0', mnt, 'key', random.Random('%s-K' % seed), log, lock)]
        for w in ws:
            w.start()
        for c in range(cycles):
            time.sleep(rng.uniform(0, 1.5))
            lazy = rng.random() < 0.2
            t0 = time.time()
            pid = daemon_pid(logdir)
            while True:
                r = subprocess.run(['fusermount3', '-uz' if lazy else '-u', mnt], capture_output=True, text=True)
                if r.returncode == 0:
                    break
                if 'busy' not in r.stderr or time.time() - t0 > 30:
                    problems.append('cycle %d: fusermount3 -u: %s' % (c, r.stderr.strip()))
                    break
                time.sleep(0.01)
            # the tools at once, while the daemon may still be letting go
            for args in (['stat', logdir], ['verify', logdir], ['dump', '--raw', logdir, 't']):
                rc, out, err = tool(*args)
                tool_runs += 1
                if rc != 0 or 'damage' in err.lower() or 'corrupt' in err.lower():
                    problems.append('cycle %d (%s unmount): streambus %s rc %d: %s' % (c, 'lazy' if lazy else 'plain', args[0], rc, err.strip()[-300:]))
            try:
                mount(logdir, mnt, opts, errlog)
            except Fail as e:
                problems.append('cycle %d: %s' % (c, e))
                time.sleep(3)
                mount(logdir, mnt, opts, errlog)
        for w in ws:
            w.stop = True
        for w in ws:
            w.join(60)
            if w.is_alive():
                problems.append('HANG: writer %s' % w.wid)
        # through the mount and by dump
        recs = []
        for n in sorted(x for x in os.listdir(mnt + '/t') if x.isdigit()):
            p = mnt + '/t/' + n
            try:
                os.getxattr(p, 'user.streambus.tombstone')
                continue
            except OSError:
                pass
            try:
                k = os.getxattr(p, 'user.streambus.key').decode()
            except OSError:
                k = None
            with open(p, 'rb') as f:
                recs.append((int(n), k, f.read().decode()))
        umount(mnt, logdir)
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('final verify rc %d: %s' % (rc, err[-300:]))
        compact = 'compact' in opts
        where = {}
        for off, k, v in recs:
            where.setdefault((k, v), []).append(off)
        last = {}
        errs_of = {}
        for j in log:
            if j['t'] == 'F':
                errs_of.setdefault((j['w'], j['n']), []).append(j['errno'])
        nack = 0
        for j in log:
            if j['t'] != 'A':
                continue
            nack += 1
            offs = where.get((j['key'], j['v']), [])
            keyed_over = j['key'] is not None and j['w'].startswith('K')
            if not offs:
                if compact and keyed_over:
                    continue
                problems.append('lost: acknowledged %s n=%d (%d tries, errors %s)' % (j['w'], j['n'], j['tries'], errs_of.get((j['w'], j['n']))))
                continue
            if len(offs) > 1:
                problems.append('duplicated: %s n=%d at offsets %s (the failed tries said %s)' % (j['w'], j['n'], offs, errs_of.get((j['w'], j['n']))))
            if offs[0] < last.get(j['w'], -1):
                problems.append('order: %s n=%d at %d' % (j['w'], j['n'], offs[0]))
            last[j['w']] = offs[0]
        errs = {}
        for w in ws:
            for k, v in w.errs.items():
                errs[k] = errs.get(k, 0) + v
        print('seed %s: %d cycles, %d acknowledged, %d records, %d tool runs, writer errors %s, %d problems'
              % (seed, cycles, nack, len(recs), tool_runs, errs, len(problems)), flush=True)
    except Fail as e:
        problems.append('FAIL %s' % e)
    finally:
        for w in ws:
            w.stop = True
        if is_mounted(mnt):
            force_umount(mnt, logdir)
        with open(base + '/journal.json', 'w') as f:
            json.dump(log, f)
    for p in problems[:30]:
        print('  PROBLEM', p, flush=True)
    if not problems and not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def main():
    a = sys.argv[1:]
    cycles, keep, seeds = 20, False, []
    i = 0
    while i < len(a):
        if a[i] == '--cycles':
            cycles = int(a[i + 1]); i += 2
        elif a[i] == '--keep':
            keep = True; i += 1
        else:
            seeds.append(a[i]); i += 1
    os.makedirs('/tmp/t8', exist_ok=True)
    bad = sum(1 for s in seeds if run_seed(s, cycles, keep))
    print('%d of %d seeds with problems' % (bad, len(seeds)))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
