#!/usr/bin/env python3
"""latency.py - N plain `tail -f TOPIC/.log` readers (GNU tail's defaults) over many
topics; a writer appends stamped lines, a bulk writer loads the daemon; every line
each reader prints is timed. SPEC §4: "tail -f ... prints records appended after it
started, within about a second, whoever appended them".

  nice -n 10 python3 tests/explore10/harness/latency.py --seed 1 --readers 200 --secs 40

Checks: every reader prints every stamped line of its topic appended after it
started, once, in order; reports latency percentiles; a line later than --limit
seconds (default 2.5) is a finding.
"""
import argparse, os, random, select, shutil, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'explore8', 'harness'))
import common as C  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--readers', type=int, default=200)
ap.add_argument('--topics', type=int, default=20)
ap.add_argument('--secs', type=float, default=40)
ap.add_argument('--limit', type=float, default=2.5)
ap.add_argument('--bulk', type=int, default=1, help='bulk writer threads')
ap.add_argument('--follow', default='-f', help='-f or -F')
ap.add_argument('--dir', default='/dev/shm/ex10lat')
a = ap.parse_args()
rnd = random.Random(a.seed)
OPTS = 'compression=%s,segment_bytes=%d' % (rnd.choice(['lz4', 'zstd', 'none']), rnd.choice([65536, 1048576]))
print('seed %d: %s, %d readers (tail %s), %d topics, %d s' % (a.seed, OPTS, a.readers, a.follow, a.topics, a.secs), flush=True)
shutil.rmtree(a.dir, ignore_errors=True)
LOG, MNT = a.dir + '/log', a.dir + '/mnt'
os.makedirs(LOG)
os.makedirs(MNT)
C.mount(LOG, MNT, OPTS, a.dir + '/daemon.log')
findings = []
procs = []
try:
    topics = ['l%02d' % i for i in range(a.topics)]
    for t in topics + ['bulk']:
        os.mkdir(MNT + '/' + t)
        with open(MNT + '/' + t + '/.log', 'ab') as f:
            f.write(b'start\n')
    readers = []
    for i in range(a.readers):
        t = topics[i % len(topics)]
        p = subprocess.Popen(['tail', a.follow, '-n', '0', MNT + '/' + t + '/.log'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, bufsize=0)
        procs.append(p)
        readers.append({'t': t, 'p': p, 'buf': b'', 'lines': []})
    time.sleep(3)   # every tail has opened and reached the end
    stop = threading.Event()
    sent = {t: [] for t in topics}

    def bulk(b):
        br = random.Random(b)
        fd = os.open(MNT + '/bulk/.log', os.O_WRONLY | os.O_APPEND)
        while not stop.is_set():
            os.write(fd, b''.join(b'bulk %d\n' % br.randrange(10 ** 9) for _ in range(br.randint(1, 500))))
        os.close(fd)

    def stamper():
        seq = 0
        while not stop.is_set():
            t = rnd.choice(topics)
            seq += 1
            line = b'%d %d\n' % (seq, time.time_ns())
            fd = os.open(MNT + '/' + t + '/.log', os.O_WRONLY | os.O_APPEND)
            os.write(fd, line)
            os.close(fd)
            sent[t].append(line)
            time.sleep(rnd.uniform(0.005, 0.05))

    ths = [threading.Thread(target=bulk, args=(b,)) for b in range(a.bulk)] + [threading.Thread(target=stamper)]
    for th in ths:
        th.start()
    fds = {r['p'].stdout.fileno(): r for r in readers}
    t0 = time.time()
    lat = []

    def drain(timeout):
        rl, _, _ = select.select(list(fds), [], [], timeout)
        now = time.time_ns()
        for fd in rl:
            r = fds[fd]
            data = os.read(fd, 1 << 20)
            r['buf'] += data
            *done, r['buf'] = r['buf'].split(b'\n')
            for l in done:
                r['lines'].append(l + b'\n')
                if l != b'start':
                    lat.append((now - int(l.split()[1])) / 1e9)

    while time.time() - t0 < a.secs:
        drain(0.05)
    stop.set()
    for th in ths:
        th.join()
    t1 = time.time()
    while time.time() - t1 < a.limit + 1:
        drain(0.05)
    nbad = 0
    for i, r in enumerate(readers):
        if r['lines'] != sent[r['t']]:
            nbad += 1
            if nbad <= 5:
                got, want = r['lines'], sent[r['t']]
                k = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
                findings.append('reader %d (%s): %d lines, %d sent; first difference at line %d: got %r want %r' % (
                    i, r['t'], len(got), len(want), k, got[k:k + 1], want[k:k + 1]))
    lat.sort()
    if lat:
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        print('latency over %d deliveries: p50 %.2f s, p99 %.2f s, max %.2f s' % (len(lat), q(.5), q(.99), lat[-1]), flush=True)
        late = sum(1 for x in lat if x > a.limit)
        if late:
            findings.append('%d of %d deliveries later than %.1f s (max %.2f s)' % (late, len(lat), a.limit, lat[-1]))
    bulkb = os.stat(MNT + '/bulk/.log').st_size
    print('seed %d: %d stamped lines, %d readers (%d bad), bulk %d MB' % (
        a.seed, sum(map(len, sent.values())), a.readers, nbad, bulkb >> 20), flush=True)
finally:
    for p in procs:
        p.kill()
        p.wait()
    C.force_umount(MNT, LOG)
for f in findings:
    print('FINDING: ' + f)
sys.exit(1 if findings else 0)
