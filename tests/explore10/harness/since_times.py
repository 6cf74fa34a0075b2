#!/usr/bin/env python3
"""since_times.py - records with chosen times (utime on a file being created: past,
future, equal, stepping back) mixed with .log lines, small compressed segments and
remounts; then TOPIC/.since/TIME and `streambus dump --since TIME` against a model.

  nice -n 10 python3 tests/explore10/harness/since_times.py --seed 1

Model (SPEC §2): .since/TIME starts at the first record whose running-maximum time
is >= TIME and holds every record after it. Checks also that every record's
timestamp (dump --json) is the one set, and that tail -c +1 of .since equals cat.
"""
import argparse, base64, datetime, json, os, random, shutil, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'explore8', 'harness'))
import common as C  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--records', type=int, default=3000)
ap.add_argument('--remounts', type=int, default=4)
ap.add_argument('--checks', type=int, default=400)
ap.add_argument('--dir', default='/dev/shm/ex10since_t')
a = ap.parse_args()
rnd = random.Random(a.seed)
OPTS = 'compression=%s,segment_bytes=%d,index_interval_bytes=%d,sync=%s' % (
    rnd.choice(['lz4', 'zstd', 'none']), rnd.choice([4096, 8192, 65536]), rnd.choice([64, 512, 4096]),
    rnd.choice(['never', 'interval']))
print('seed %d: %s, %d records, %d remounts' % (a.seed, OPTS, a.records, a.remounts), flush=True)
shutil.rmtree(a.dir, ignore_errors=True)
LOG, MNT = a.dir + '/log', a.dir + '/mnt'
os.makedirs(LOG)
os.makedirs(MNT)
ERR = a.dir + '/daemon.log'
findings = []


def finding(m):
    print('FINDING: ' + m, flush=True)
    findings.append(m)


NOW = time.time_ns()
set_times = {}        # payload -> ns set
remount_at = set(rnd.sample(range(1, a.records), a.remounts))
C.mount(LOG, MNT, OPTS, ERR)
try:
    T = MNT + '/t'
    os.mkdir(T)
    for i in range(a.records):
        if i in remount_at:
            C.umount(MNT, LOG)
            C.mount(LOG, MNT, OPTS, ERR)
        r = rnd.random()
        if r < 0.5:
            pay = ('L%d %s\n' % (i, 'z' * rnd.randint(0, 100))).encode()
            fd = os.open(T + '/.log', os.O_WRONLY | os.O_APPEND)
            os.write(fd, pay)
            os.close(fd)
        else:
            pay = ('F%d %s\n' % (i, 'q' * rnd.randint(0, 300))).encode()
            k = rnd.random()
            if k < 0.3:
                ns = NOW - rnd.randint(0, 10 ** 6) * 10 ** 9 - rnd.randint(0, 10 ** 9)    # past
            elif k < 0.5:
                ns = NOW + rnd.randint(0, 10 ** 5) * 10 ** 9 + rnd.randint(0, 10 ** 9)    # future
            elif k < 0.7 and set_times:
                ns = rnd.choice(list(set_times.values()))                                  # equal to another
            else:
                ns = None                                                                  # now
            fd = os.open(T + '/f%d' % i, os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, pay)
            if ns is not None:
                os.utime(fd, ns=(ns, ns))
                set_times[pay] = ns
            os.close(fd)
    C.umount(MNT, LOG)
    C.mount(LOG, MNT, OPTS, ERR)
    rc, recs, err = C.dump_json(LOG, 't')
    if rc != 0:
        finding('dump rc=%d %s' % (rc, err[-300:]))
    rows, mx = [], None
    for rec in recs:
        v = rec['value'].encode() if 'value' in rec else base64.b64decode(rec['value_base64'])
        ts = rec['timestamp_ns']
        if v in set_times and set_times[v] != ts:
            finding('offset %d: timestamp %d, set %d' % (rec['offset'], ts, set_times[v]))
        mx = ts if mx is None else max(mx, ts)
        rows.append((mx, v, ts))
    log = open(T + '/.log', 'rb').read()
    if log != b''.join(v for _, v, _ in rows):
        finding('.log differs from the dump')
    if len(rows) != a.records:
        finding('%d records, %d appended' % (len(rows), a.records))
    times = [ts for _, _, ts in rows]
    nchk = 0
    for c in range(a.checks):
        p = rnd.random()
        if p < 0.5:
            ns = rnd.choice(times) + rnd.choice([-1, 0, 0, 1])
        else:
            ns = rnd.randint(min(times) - 10 ** 9, max(times) + 10 ** 9)
        s, f = divmod(ns, 10 ** 9)
        if rnd.random() < 0.5:
            name = '@%d.%09d' % (s, f)
        else:
            name = datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S') + '.%09dZ' % f
        want = b''.join(v for m, v, _ in rows if m >= ns)
        try:
            got = open(T + '/.since/' + name, 'rb').read()
        except OSError as e:
            finding('.since/%s: %r' % (name, e))
            continue
        nchk += 1
        if got != want:
            finding('.since/%s: %d bytes, model %d' % (name, len(got), len(want)))
        if c % 10 == 0:
            tc = subprocess.run(['tail', '-c', '+1', T + '/.since/' + name], capture_output=True).stdout
            st = os.stat(T + '/.since/' + name).st_size
            if tc != want or st != len(want):
                finding('.since/%s: tail -c +1 %d bytes, stat %d, model %d' % (name, len(tc), st, len(want)))
        if c % 4 == 0:
            rc, out, err = C.tool('dump', '--raw', '--since', name, LOG, 't')
            if rc != 0 or out != want:
                finding('dump --raw --since %s: rc=%d, %d bytes, model %d %s' % (name, rc, len(out), len(want), err[-200:]))
    print('seed %d: %d records (%d with set times), %d .since checks, %d findings' % (
        a.seed, len(rows), len(set_times), nchk, len(findings)), flush=True)
finally:
    C.force_umount(MNT, LOG)
sys.exit(1 if findings else 0)
