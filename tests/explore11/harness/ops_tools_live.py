#!/usr/bin/env python3
"""ops_tools_live.py SEED... - `streambus verify|dump|stat|get` run over and over on a
LOG_DIR that is mounted, written by 2 writers, and whose daemon gets SIGTERM (or
fusermount3 -u, or kill -9) at a random moment. The tools must never report damage
(verify exit 1) that is not there, never crash (signal / exit other than 0,2),
never print a record whose bytes are not the ones written (dump --raw lines are whole
lines written by a writer); `recover` must refuse while mounted. After the end:
verify exit 0 and all acknowledged records present (remount)."""
import os, sys, random, shutil, subprocess, time, signal, re, collections
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C

HERE = os.path.dirname(os.path.abspath(__file__))


def run(seed):
    rnd = random.Random(seed)
    d = '%s/tl%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    log, mnt = d + '/log', d + '/mnt'
    os.makedirs(log); os.makedirs(mnt)
    opts = 'sync=%s,segment_bytes=%d' % (rnd.choice(['never', 'interval', 'always']), rnd.choice([4096, 65536]))
    if rnd.random() < 0.4:
        opts += ',compression=' + rnd.choice(['lz4', 'zstd'])
    if rnd.random() < 0.3:
        opts += ',cleanup=compact,delete_retention_ms=0'
    end = rnd.choice(['TERM', 'umount', 'KILL'])
    tag = 'seed %d (%s, end %s)' % (seed, opts, end)
    f = []
    rc, out = C.start(['-o', opts, log, mnt])
    if rc:
        return ['%s: mount %s' % (tag, out)], 0
    for t in ('t1', 't2'):
        os.mkdir(mnt + '/' + t)
    pid = C.daemon_pids(mnt)[0]
    ws = []
    for w in range(2):
        fo = open('%s/w%d.out' % (d, w), 'w')
        ws.append((subprocess.Popen(['nice', '-n', '10', sys.executable, HERE + '/ops_writer.py', mnt, 't%d' % (w + 1), str(w), str(seed)],
                                    stdout=fo, stderr=subprocess.STDOUT), fo))
    runs = 0
    line_re = re.compile(rb'^w\d+-\d+\.\d+ x*$')
    t_end = time.time() + rnd.uniform(1.5, 4)
    stopped = False
    try:
        while True:
            if not stopped and time.time() > t_end:
                stopped = True
                if end == 'TERM':
                    os.kill(pid, signal.SIGTERM)
                elif end == 'KILL':
                    os.kill(pid, signal.SIGKILL)
                else:
                    subprocess.Popen(['fusermount3', '-u', '-z', mnt])
                t_stop = time.time()
            if stopped and time.time() - t_stop > 2:
                break
            cmd = rnd.choice(['verify', 'dump', 'stat', 'get', 'recover'])
            t = rnd.choice(['t1', 't2'])
            if cmd == 'verify':
                args = ['verify', log]
            elif cmd == 'dump':
                args = ['dump', '--raw', log, t]
            elif cmd == 'stat':
                args = ['stat', log]
            elif cmd == 'get':
                args = ['get', log, t, 'w0-5' if t == 't1' else 'w1-5']
            else:
                args = ['recover', log]
            r = subprocess.run(['nice', '-n', '10', C.TOOL] + args, capture_output=True, timeout=60)
            runs += 1
            o, e = r.stdout, r.stderr.decode('utf-8', 'replace')
            live = not stopped
            if r.returncode < 0 or r.returncode not in (0, 1, 2):
                f.append('%s: %s exit %s: %s' % (tag, cmd, r.returncode, e[-300:]))
            elif cmd == 'verify' and r.returncode == 1:
                f.append('%s: verify (%s) exit 1: %s | %s' % (tag, 'live' if live else 'during stop', o.decode('utf-8', 'replace')[-500:], e[-300:]))
            elif cmd == 'dump' and r.returncode == 0:
                for ln in o.split(b'\n'):
                    if ln and not line_re.match(ln) and b' file ' not in ln and not ln.endswith((b' key', b' tmp')) \
                            and not re.match(rb'^(w\d+-\d+ (file y*|key|tmp))+', ln):
                        f.append('%s: dump --raw printed an unknown line %r' % (tag, ln[:80]))
                        break
            elif cmd == 'recover' and r.returncode == 0 and live:
                f.append('%s: recover exit 0 while mounted: %s' % (tag, (o.decode() + e)[-200:]))
            elif r.returncode == 2 and cmd != 'recover' and 'in use' not in e:
                f.append('%s: %s exit 2: %s' % (tag, cmd, e.strip()[-300:]))
    finally:
        for p, fo in ws:
            p.terminate()
        for p, fo in ws:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
            fo.close()
        C.umount(mnt)
    t0 = time.time()
    while os.path.exists('/proc/%d' % pid) and time.time() - t0 < 15:
        time.sleep(0.05)
    rc, out = C.start([log, mnt])
    if rc:
        f.append('%s: remount %s %s' % (tag, rc, out))
        return f, runs
    try:
        present = collections.Counter()
        for t in ('t1', 't2'):
            for off, dd in C.records(mnt, t):
                for m in re.finditer(rb'(w\d+-\d+)(\.\d+)? ', dd):
                    present[(m.group(1) + (m.group(2) or b'')).decode()] += 1
        lost = 0
        for w in range(2):
            for line in open('%s/w%d.out' % (d, w)):
                if line.startswith('ACK '):
                    _, kind, name = line.split()
                    if kind != 'empty' and present[name] == 0:
                        lost += 1
        if lost:
            f.append('%s: %d acknowledged records missing' % (tag, lost))
    finally:
        C.umount(mnt)
    rc, o, e = C.tool('verify', log)
    if rc != 0:
        f.append('%s: final verify %s %s' % (tag, rc, o[-300:]))
    return f, runs


if __name__ == '__main__':
    nf = nr = 0
    for s in map(int, sys.argv[1:]):
        fs, r = run(s)
        nr += r
        for x in fs:
            print('FINDING', x); nf += 1
        print('seed', s, 'tool runs', r, 'findings', len(fs), flush=True)
    print('tool runs', nr, 'findings', nf)
