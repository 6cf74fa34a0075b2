#!/usr/bin/env python3
"""ops_after_umount.py - a user of LOG_DIR started right after `fusermount3 -u`
returns (SPEC 1: "it waits ... for the previous daemon to let go instead of
failing"): a new mount, recover, verify, dump, stat, get. Seeded.

  cd /work/main && nice -n 10 python3 tests/explore11/harness/ops_after_umount.py SEED...
"""
import os, sys, random, shutil, subprocess, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C

USERS = ['mount', 'recover', 'verify', 'dump', 'stat', 'get']


def run(seed):
    rnd = random.Random(seed)
    d = '%s/au%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    log, mnt = d + '/log', d + '/mnt'
    os.makedirs(log)
    os.makedirs(mnt)
    opts = 'segment_bytes=%d,sync=%s' % (rnd.choice([4096, 65536, 1 << 20]), rnd.choice(['never', 'interval', 'always']))
    if rnd.random() < 0.3:
        opts += ',compression=zstd'
    total = 0
    findings = []
    counts = {}
    for r in range(rnd.randint(3, 6)):
        rc, out = C.start(['-o', opts, log, mnt])
        if rc != 0:
            findings.append('seed %d round %d: mount rc %s: %s' % (seed, r, rc, out.strip()))
            C.umount(mnt)
            break
        try:
            if not os.path.isdir(mnt + '/t'):
                os.mkdir(mnt + '/t')
            n = rnd.randint(1, 3000)
            data = b''.join(b'r%d.%d %s\n' % (r, i, b'z' * rnd.randint(0, 100)) for i in range(n))
            C.append_log(mnt + '/t/.log', data)
            total += n
            val = b'v%d' % r
            C.write_file(mnt + '/t/.keys/k', val)
            total += 1
        except OSError as e:
            findings.append('seed %d round %d: write: %s' % (seed, r, e))
        rr = subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
        user = rnd.choice(USERS)
        counts[user] = counts.get(user, 0) + 1
        tag = 'seed %d round %d (%s, %d records) %s right after fusermount3 -u' % (seed, r, opts, total, user)
        if user == 'mount':
            rc, out = C.start(['-o', opts, log, mnt])
            if rc != 0:
                findings.append('%s: rc %s: %s' % (tag, rc, out.strip()))
            else:
                got = len(C.records(mnt, 't'))
                if got != total:
                    findings.append('%s: %d records through the mount, %d appended' % (tag, got, total))
            C.umount(mnt)
        elif user in ('recover', 'verify', 'stat'):
            rc, o, e = C.tool(user, log)
            if rc != 0 or 'missing' in o + e or 'stale' in o + e or 'damage' in o + e or 'in use' in o:
                findings.append('%s: rc %s: %s | %s' % (tag, rc, o.strip()[-300:], e.strip()[-300:]))
        elif user == 'dump':
            rc, o, e = C.tool('dump', '--raw', log, 't')
            import re
            ln = len(re.findall(r'r\d+\.\d+ ', o))
            if rc != 0 or ln != total - (r + 1):
                findings.append('%s: rc %s, %d lines dumped, %d appended: %s' % (tag, rc, ln, total - (r + 1), e.strip()[-300:]))
        elif user == 'get':
            rc, o, e = C.tool('get', log, 't', 'k')
            if rc != 0 or o.strip() != val.decode():
                findings.append('%s: rc %s out %r: %s' % (tag, rc, o[:50], e.strip()[-300:]))
        time.sleep(0.05)
        # settle before the next round
        t0 = time.time()
        while C.daemon_pids(mnt) and time.time() - t0 < 15:
            time.sleep(0.05)
    C.umount(mnt)
    rc, o, e = C.tool('verify', log)
    if rc != 0 or 'missing' in o:
        findings.append('seed %d: final verify rc %s: %s' % (seed, rc, o[-300:]))
    return findings, counts


if __name__ == '__main__':
    nf = 0
    tot = {}
    for s in map(int, sys.argv[1:]):
        f, c = run(s)
        for x in f:
            print('FINDING', x)
        for k, v in c.items():
            tot[k] = tot.get(k, 0) + v
        nf += len(f)
        print('seed', s, c, len(f), flush=True)
    print('TOTAL', tot, 'findings', nf)
