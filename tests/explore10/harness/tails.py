#!/usr/bin/env python3
"""tails.py - many `tail -f TOPIC/.log` readers while writers append, with random
unmount+remount, compression and headers; then `.since/TIME` against a model.

  nice -n 10 python3 tests/explore10/harness/tails.py --seed 1 --secs 60

Properties checked (seed printed, reproducible in its choices):
  * every reader's output (across remounts: resumed with `tail -c +N -f`) is the
    final .log from where it started, byte for byte: nothing damaged, duplicated,
    missing or reordered;
  * every acknowledged line is in .log exactly once, each writer's in its order;
  * every record's headers (set as xattrs on a created file) are in dump --json;
  * `cat TOPIC/.since/TIME` equals the model (payloads from the first record whose
    running-maximum time is >= TIME) for random ISO / @epoch / relative TIMEs.
"""
import argparse, base64, datetime, json, os, random, shutil, signal, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'explore8', 'harness'))
import common as C  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--secs', type=float, default=60)
ap.add_argument('--topics', type=int, default=12)
ap.add_argument('--readers', type=int, default=100)
ap.add_argument('--writers', type=int, default=6)
ap.add_argument('--remounts', type=int, default=3)
ap.add_argument('--since', type=int, default=300)
ap.add_argument('--rm', type=float, default=0, help='rm of oldest records per second (with --remounts 0)')
ap.add_argument('--dir', default='/dev/shm/ex10tails')
a = ap.parse_args()
rnd = random.Random(a.seed)
comp = rnd.choice(['lz4', 'zstd', 'none', 'zstd'])
seg = rnd.choice([16384, 65536, 262144])
syncp = rnd.choice(['never', 'interval', 'always'])
OPTS = 'compression=%s,segment_bytes=%d,sync=%s,index_interval_bytes=%d' % (comp, seg, syncp, rnd.choice([256, 4096]))
print('seed %d: %s, %d topics, %d readers, %d writers, %d remounts' % (
    a.seed, OPTS, a.topics, a.readers, a.writers, a.remounts), flush=True)

shutil.rmtree(a.dir, ignore_errors=True)
LOG, MNT, OUT = a.dir + '/log', a.dir + '/mnt', a.dir + '/out'
for d in (LOG, MNT, OUT):
    os.makedirs(d)
ERR = a.dir + '/daemon.log'
topics = ['t%02d' % i for i in range(a.topics)]
findings = []


def finding(msg):
    print('FINDING: ' + msg, flush=True)
    findings.append(msg)


C.mount(LOG, MNT, OPTS, ERR)
for t in topics:
    os.mkdir(MNT + '/' + t)

# ---------------- readers ----------------
class Reader:
    def __init__(self, i):
        self.i = i
        self.topic = topics[i % len(topics)]
        self.out = '%s/r%03d' % (OUT, i)
        self.parts = 0
        self.p = None
        self.start = None          # .log position it started at (None: from 0)
        self.got = 0
        self.since = None          # (name, ns): follows TOPIC/.since/@name instead

    def run(self, frm):
        self.parts += 1
        f = open(self.out, 'ab')
        path = MNT + '/' + self.topic + ('/.since/' + self.since[0] if self.since else '/.log')
        self.p = subprocess.Popen(['tail', '-c', '+%d' % (frm + 1), '-f', '-s', '0.2', path], stdout=f, stderr=subprocess.DEVNULL)
        f.close()

    def stop(self):
        if self.p:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait()
            self.p = None
        return os.path.getsize(self.out)


readers = [Reader(i) for i in range(a.readers)]
T0 = time.time_ns()
for r in readers:            # a third follow .since/@EPOCH, a time up to the run's end
    if rnd.random() < 1 / 3:
        ns = T0 + rnd.randint(-10 ** 9, int(a.secs * 10 ** 9))
        s_, f_ = divmod(ns, 10 ** 9)
        r.since = ('@%d.%09d' % (s_, f_), ns)

# ---------------- writers ----------------
lock = threading.Lock()
pause = threading.Event()       # set: writers must stop at the next step
paused = threading.Semaphore(0)
stop = threading.Event()
acked = {t: [] for t in topics}  # topic -> list of (writer, seq, line bytes)
hdrs = {}                        # (topic, line) -> headers dict
nops = [0]


def writer(w):
    wr = random.Random(a.seed * 1000 + w)
    seq = 0
    while not stop.is_set():
        if pause.is_set():
            paused.release()
            while pause.is_set() and not stop.is_set():
                time.sleep(0.01)
            continue
        t = wr.choice(topics)
        mode = wr.random()
        try:
            if mode < 0.6:      # lines through .log, one write
                k = wr.randint(1, 20)
                lines = []
                for _ in range(k):
                    seq += 1
                    lines.append(('w%d s%d %s %s\n' % (w, seq, t, 'x' * wr.randint(0, 200))).encode())
                fd = os.open(MNT + '/' + t + '/.log', os.O_WRONLY | os.O_APPEND)
                try:
                    n = os.write(fd, b''.join(lines))
                    assert n == sum(map(len, lines)), 'short write %d' % n
                    with lock:
                        acked[t].extend((w, int(l.split()[1][1:]), l) for l in lines)
                finally:
                    os.close(fd)
            else:               # a created file, keyed, maybe with headers
                seq += 1
                line = ('w%d s%d %s file %s\n' % (w, seq, t, 'y' * wr.randint(0, 3000))).encode()
                name = 'k%d_%d' % (w, wr.randint(0, 30))
                h = {}
                for j in range(wr.choice([0, 0, 1, 3])):
                    h['h%d' % j] = bytes(wr.randrange(256) for _ in range(wr.randint(0, 40)))
                fd = os.open(MNT + '/' + t + '/' + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    for hn, hv in h.items():
                        os.setxattr(fd, 'user.streambus.header.' + hn, hv)
                    os.write(fd, line)
                finally:
                    os.close(fd)
                with lock:
                    acked[t].append((w, seq, line))
                    hdrs[(t, line)] = h
            nops[0] += 1
            time.sleep(wr.uniform(0, 0.004))
        except Exception as e:
            if stop.is_set():
                break
            finding('writer %d topic %s: %r' % (w, t, e))
            time.sleep(0.5)


nrm = [0]


def deleter():
    dr = random.Random(a.seed * 7 + 3)
    while not stop.is_set():
        if pause.is_set():
            time.sleep(0.05)
            continue
        t = dr.choice(topics)
        try:
            names = sorted(n for n in os.listdir(MNT + '/' + t) if n.isdigit())
            if len(names) > 50:
                for n in names[:dr.randint(1, 20)]:
                    os.unlink(MNT + '/' + t + '/' + n)
                    nrm[0] += 1
        except OSError as e:
            if not stop.is_set() and not pause.is_set():
                finding('rm oldest in %s: %r' % (t, e))
        time.sleep(dr.expovariate(a.rm))


def pause_writers():
    pause.set()
    for _ in range(a.writers):
        paused.acquire()


ws = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(a.writers)]
for th in ws:
    th.start()

# readers start at random moments in the first part of the run
order = list(range(a.readers))
rnd.shuffle(order)
t0 = time.time()
remount_at = sorted(rnd.uniform(0.2, 0.9) * a.secs for _ in range(a.remounts))
started = 0
rm_started = False
for r in readers:
    r.pos_done = 0
try:
    while time.time() - t0 < a.secs:
        el = time.time() - t0
        want = min(a.readers, int(a.readers * el / (a.secs * 0.3)) + 1)
        while started < want:
            readers[order[started]].run(0)
            started += 1
        if a.rm and not rm_started and el > a.secs * 0.35:
            rm_started = True
            threading.Thread(target=deleter, daemon=True).start()
        if remount_at and el >= remount_at[0]:
            remount_at.pop(0)
            pause_writers()
            sizes = {}
            for r in readers:
                if r.p:
                    sizes[r.i] = r.stop()
            C.umount(MNT, LOG)
            rc, out, err = C.tool('verify', LOG)
            if rc != 0:
                finding('verify after unmount rc=%d: %s %s' % (rc, out[-500:], err[-500:]))
            C.mount(LOG, MNT, OPTS, ERR)
            for i, s in sizes.items():
                readers[i].run(s)
            print('  remounted at %.1fs (%d ops so far)' % (el, nops[0]), flush=True)
            pause.clear()
        time.sleep(0.1)
    pause_writers()
    # let readers catch up
    logs = {t: open(MNT + '/' + t + '/.log', 'rb').read() for t in topics}
    deadline = time.time() + 20
    while time.time() < deadline:
        if all(os.path.getsize(r.out) >= len(logs[r.topic]) for r in readers if r.p and not r.since):
            break
        time.sleep(0.2)
    time.sleep(2)
    for r in readers:
        r.stop()

    # ---- reader property ----
    nbad = 0
    full = {}
    if a.rm:
        for r in readers:
            if not r.since and r.topic not in full:
                full[r.topic] = open(r.out, 'rb').read()
        for t in topics:
            if t not in full:
                continue  # no .log reader drew this topic (few readers, many topics)
            if not full[t].endswith(logs[t]):
                finding('%s: the first reader\'s output (%d bytes) does not end with the final .log (%d bytes)' % (t, len(full[t]), len(logs[t])))
            logs[t] = full[t]     # the whole history, for the checks below
    for r in readers:
        if r.since:
            continue
        got = open(r.out, 'rb').read()
        L = logs[r.topic]
        if got != L:
            nbad += 1
            i = next((k for k in range(min(len(got), len(L))) if got[k] != L[k]), min(len(got), len(L)))
            finding('reader %d (%s, %d parts): %d bytes read, .log %d; first difference at byte %d: got %r want %r' % (
                r.i, r.topic, r.parts, len(got), len(L), i, got[i:i + 60], L[i:i + 60]))
    # ---- log property ----
    for t in topics:
        lines = logs[t].split(b'\n')
        assert lines[-1] == b''
        lines = [l + b'\n' for l in lines[:-1]]
        want = [x[2] for x in acked[t]]
        if sorted(lines) != sorted(want):
            finding('%s: .log has %d lines, %d acknowledged; missing %d, extra %d' % (
                t, len(lines), len(want), len(set(want) - set(lines)), len(set(lines) - set(want))))
        last = {}
        for l in lines:
            w, s = l.split()[0], int(l.split()[1][1:])
            if s <= last.get(w, 0):
                finding('%s: writer %s line s%d after s%d' % (t, w, s, last[w]))
            last[w] = s
    # ---- headers and the .since model ----
    nsince = 0
    model = {}
    for t in topics:
        rc, recs, err = C.dump_json(LOG, t)
        if rc != 0:
            finding('dump %s rc=%d %s' % (t, rc, err[-300:]))
        rows = []
        mx = None
        for rec in recs:
            v = rec['value'].encode() if 'value' in rec else base64.b64decode(rec['value_base64'])
            if rec.get('tombstone'):
                v = b''
            mx = rec['timestamp_ns'] if mx is None else max(mx, rec['timestamp_ns'])
            rows.append((mx, v))
            if (t, v) in hdrs:
                hv = {h['name']: (h['value'].encode() if 'value' in h else base64.b64decode(h['value_base64']))
                      for h in rec['headers']} if rec['headers'] else {}
                want = hdrs[(t, v)]
                # compare names and lengths exactly; values where dump gives bytes
                if hv != want:
                    finding('%s offset %d: headers %r, set %r' % (t, rec['offset'], hv, want))
        if not logs[t].endswith(b''.join(v for _, v in rows)):
            finding('%s: dump --raw model differs from .log' % t)
        model[t] = rows

    def expect(t, ns):
        rows = model[t]
        return b''.join(v for m, v in rows if m >= ns)  # running max is monotone

    def iso(ns, digits, zone):
        s, frac = divmod(ns, 10 ** 9)
        off = {'Z': 0, '+01:00': 3600, '-05:30': -19800, '+00:00': 0}[zone]
        d = datetime.datetime.fromtimestamp(s + off, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')
        f = ('%09d' % frac)[:digits]
        trunc = int(('%09d' % frac)[:digits].ljust(9, '0')) if digits else 0
        return d + ('.' + f if digits else '') + zone, s * 10 ** 9 + trunc

    for k in range(a.since):
        t = rnd.choice(topics)
        rows = model[t]
        if not rows:
            continue
        lo, hi = rows[0][0] - 2 * 10 ** 9, rows[-1][0] + 2 * 10 ** 9
        pick = rnd.random()
        if pick < 0.3:      # exactly a record's time
            ns = rnd.choice(rows)[0] + rnd.choice([-1, 0, 1])
        else:
            ns = rnd.randint(lo, hi)
        form = rnd.choice(['iso', 'iso', 'epoch', 'rel'])
        if form == 'iso':
            name, ns = iso(ns, rnd.choice([0, 3, 6, 9]), rnd.choice(['Z', '+01:00', '-05:30', '+00:00']))
        elif form == 'epoch':
            digits = rnd.choice([0, 3, 9])
            s, frac = divmod(ns, 10 ** 9)
            f = ('%09d' % frac)[:digits]
            name = '@%d' % s + ('.' + f if digits else '')
            ns = s * 10 ** 9 + (int(f.ljust(9, '0')) if digits else 0)
        else:
            unit, mul = rnd.choice([('s', 1), ('m', 60)])
            n = rnd.randint(0, int(a.secs * 2 / mul) + 2)
            name = '-%d%s' % (n, unit)
            now = time.time_ns()
            ns = now - n * mul * 10 ** 9
            # skip when a record time is within 1 s of the boundary (open time unknown exactly)
            if any(abs(m - ns) < 10 ** 9 for m, _ in rows):
                continue
        try:
            got = open(MNT + '/' + t + '/.since/' + name, 'rb').read()
        except OSError as e:
            finding('.since/%s on %s: %r' % (name, t, e))
            continue
        want = expect(t, ns)
        nsince += 1
        if got != want:
            finding('%s/.since/%s: %d bytes, model %d (ns %d)' % (t, name, len(got), len(want), ns))
    nsr = 0
    for r in readers:
        if not r.since:
            continue
        nsr += 1
        got = open(r.out, 'rb').read()
        L = expect(r.topic, r.since[1])
        if (got != L) if not a.rm else (not got.endswith(L) or not logs[r.topic].endswith(got)):
            nbad += 1
            i = next((k for k in range(min(len(got), len(L))) if got[k] != L[k]), min(len(got), len(L)))
            finding('since-reader %d (%s/.since/%s, %d parts): %d bytes read, model %d; first difference at byte %d: got %r want %r' % (
                r.i, r.topic, r.since[0], r.parts, len(got), len(L), i, got[i:i + 60], L[i:i + 60]))
            H = logs[r.topic]
            print('  history %d bytes; model at %d, read bytes at %d (first 40 read: %r; first 40 model: %r)' % (
                len(H), H.rfind(L) if L else -1, H.find(got) if got else -1, got[:40], L[:40]), flush=True)
    print('  %d .since followers checked, %d records removed by rm' % (nsr, nrm[0]))
    total = sum(len(v) for v in acked.values())
    print('seed %d: %d ops, %d lines acknowledged, %d readers (%d bad), %d .since checks, %d findings' % (
        a.seed, nops[0], total, a.readers, nbad, nsince, len(findings)), flush=True)
finally:
    stop.set()
    pause.clear()
    for r in readers:
        try:
            r.stop()
        except Exception:
            pass
    C.force_umount(MNT, LOG)
sys.exit(1 if findings else 0)
