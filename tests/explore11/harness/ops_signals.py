#!/usr/bin/env python3
"""ops_signals.py - signals to the daemon under concurrent writers (seeded).

  cd /work/main && nice -n 10 python3 tests/explore11/harness/ops_signals.py [--sig NAME] SEED...

Per seed: mount (detached) with a generated sync policy and segment size, start
3-4 writers (ops_writer.py: lines to .log, files, .keys/, temp+rename, empty files),
send SIG at a random moment (STOP: CONT after a second), let the writers run on a
little, stop them, unmount (fusermount3 -u; umount -l if dead), remount and check:
every acknowledged record is there exactly once with its bytes, verify exits 0.
"""
import os, sys, random, shutil, subprocess, time, signal, errno, collections
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C

HERE = os.path.dirname(os.path.abspath(__file__))
SIGS = ['TERM', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2', 'PIPE', 'STOP', 'KILL', 'ALRM']


def records_with_keys(mnt, t):
    out = []
    d = os.path.join(mnt, t)
    for n in sorted(os.listdir(d)):
        if len(n) == 20 and n.isdigit():
            p = d + '/' + n
            data = open(p, 'rb').read()
            try:
                key = os.getxattr(p, 'user.streambus.key').decode('utf-8', 'replace')
            except OSError:
                key = None
            out.append((int(n), key, data))
    return out


def run(seed, signame):
    rnd = random.Random(seed)
    if not signame:
        signame = rnd.choice(SIGS)
    d = '%s/sig%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    log, mnt = d + '/log', d + '/mnt'
    os.makedirs(log)
    os.makedirs(mnt)
    opts = 'sync=%s,segment_bytes=%d' % (rnd.choice(['never', 'interval', 'always']),
                                         rnd.choice([4096, 20000, 1 << 20]))
    if rnd.random() < 0.3 or os.environ.get('COMPRESS'):
        opts += ',compression=' + rnd.choice(['lz4', 'zstd'])
    if os.environ.get('COMPACT'):
        opts += ',cleanup=compact,delete_retention_ms=0,segment_bytes=4096'
    rc, out = C.start(['-o', opts, log, mnt])
    if rc != 0:
        return ['seed %d: mount failed %s %s' % (seed, rc, out)], {}
    findings = []
    tag = 'seed %d SIG%s (%s)' % (seed, signame, opts)
    topics = ['t1', 't2']
    for t in topics:
        os.mkdir(mnt + '/' + t)
    pid = C.daemon_pids(mnt)
    if len(pid) != 1:
        findings.append('%s: daemon pids %s' % (tag, pid))
    pid = pid[0]
    nw = rnd.randint(3, 4)
    ws = []
    for w in range(nw):
        f = open('%s/w%d.out' % (d, w), 'w')
        p = subprocess.Popen(['nice', '-n', '10', sys.executable, HERE + '/ops_writer.py', mnt, topics[w % 2],
                              str(w), str(seed)], stdout=f, stderr=subprocess.STDOUT)
        ws.append((p, f, topics[w % 2]))
    stats = {}
    try:
        time.sleep(rnd.uniform(0.3, 1.5))
        sig = getattr(signal, 'SIG' + signame)
        os.kill(pid, sig)
        t0 = time.time()
        if signame == 'STOP':
            time.sleep(1.0)
            os.kill(pid, signal.SIGCONT)
        time.sleep(1.0)
        alive = os.path.exists('/proc/%d' % pid) and open('/proc/%d/stat' % pid).read().split()[2] != 'Z'
        ismnt = C.mounted(mnt)
        stats['alive_after'] = alive
        stats['mounted_after'] = ismnt
        try:
            os.stat(mnt + '/t1')
            stats['serves'] = True
        except OSError as e:
            stats['serves'] = errno.errorcode.get(e.errno)
        for p, f, t in ws:
            p.terminate()
        for p, f, t in ws:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                findings.append('%s: a writer hangs 20 s after SIGTERM to it (state %s)' % (
                    tag, open('/proc/%d/stat' % p.pid).read().split()[2]))
                p.kill()
                p.wait()
            f.close()
    finally:
        for p, f, t in ws:
            if p.poll() is None:
                p.kill()
        C.umount(mnt)
    # daemon's ends
    t0 = time.time()
    while os.path.exists('/proc/%d' % pid) and time.time() - t0 < 10:
        time.sleep(0.1)
    if os.path.exists('/proc/%d' % pid):
        findings.append('%s: daemon still there 10 s after unmount' % tag)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    # remount, check
    rc, out = C.start([log, mnt])
    if rc != 0:
        findings.append('%s: remount failed rc %s: %s' % (tag, rc, out.strip()))
        return findings, stats
    acked = collections.Counter()
    nacks = 0
    try:
        for w in range(nw):
            t = topics[w % 2]
            for line in open('%s/w%d.out' % (d, w)):
                if line.startswith('ACK '):
                    _, kind, name = line.split()
                    acked[(t, kind, name)] += 1
                    nacks += 1
        seen = collections.Counter()
        for t in topics:
            for off, key, data in records_with_keys(mnt, t):
                if not data:
                    seen[(t, 'empty', key)] += 1
                    continue
                first = data.split(b' ')[0].decode('utf-8', 'replace')
                if b' file ' in data or data.endswith(b' tmp'):
                    seen[(t, 'file', first)] += 1
                    if key == '.%s.tmp' % first and not acked[(t, 'file', first)]:
                        pass  # closed, never renamed (the writer stopped): held, appended at unmount
                    elif key != first:
                        findings.append('%s: %s@%d key %r, payload %s' % (tag, t, off, key, first))
                elif data.endswith(b' key'):
                    seen[(t, 'key', first)] += 1
                else:
                    seen[(t, 'line', first)] += 1
        lost = [k for k in acked if seen[k] == 0]
        dup = [k for k in seen if seen[k] > 1]
        stats.update(acked=nacks, present=sum(seen.values()))
        if lost:
            findings.append('%s: %d acknowledged records lost, e.g. %s' % (tag, len(lost), lost[:5]))
        if dup:
            findings.append('%s: %d records present more than once, e.g. %s' % (tag, len(dup), [(k, seen[k]) for k in dup[:5]]))
    finally:
        if not C.umount(mnt):
            findings.append('%s: unclean final unmount' % tag)
    rc, o, e = C.tool('verify', log)
    if rc != 0:
        findings.append('%s: verify rc %s: %s %s' % (tag, rc, o[-400:], e[-400:]))
    return findings, stats


if __name__ == '__main__':
    args = sys.argv[1:]
    sig = None
    if args and args[0] == '--sig':
        sig = args[1]
        args = args[2:]
    nf = 0
    for s in map(int, args):
        f, st = run(s, sig)
        for x in f:
            print('FINDING', x)
        nf += len(f)
        print('seed', s, sig, st, flush=True)
    print('findings', nf)
