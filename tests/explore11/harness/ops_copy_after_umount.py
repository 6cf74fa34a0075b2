#!/usr/bin/env python3
"""ops_copy_after_umount.py SEED... - the backup a sysadmin takes right after the
unmount: `fusermount3 -u MNT && cp -a LOG_DIR COPY` (or rsync -a, tar). SPEC 1:
after the unmount "everything already acknowledged is on disk afterwards, indexes
included"; SPEC 6: a copy of LOG_DIR "taken at any moment mounts and recovers to a
prefix of the log". Checks: the copy mounts, no topic refused, every record there
(at least a prefix), verify of the copy after its unmount exits 0.
"""
import os, sys, random, shutil, subprocess, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C


def run(seed):
    rnd = random.Random(seed)
    d = '%s/cp%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    log, mnt = d + '/log', d + '/mnt'
    os.makedirs(log); os.makedirs(mnt)
    opts = 'sync=%s,segment_bytes=%d' % (rnd.choice(['never', 'interval', 'always']), rnd.choice([4096, 65536, 1 << 20]))
    if rnd.random() < 0.3:
        opts += ',compression=' + rnd.choice(['lz4', 'zstd'])
    how = rnd.choice(['cp', 'rsync', 'tar'])
    tag = 'seed %d (%s, %s)' % (seed, opts, how)
    f = []
    rc, out = C.start(['-o', opts, log, mnt])
    if rc:
        return ['%s: mount %s' % (tag, out)]
    exp = {}
    try:
        for t in ['t%d' % i for i in range(rnd.randint(1, 4))]:
            os.mkdir(mnt + '/' + t)
            n = rnd.randint(1, 3000)
            recs = [b'%s-%d %s\n' % (t.encode(), i, b'q' * rnd.randint(0, 100)) for i in range(n)]
            C.append_log(mnt + '/' + t + '/.log', b''.join(recs))
            exp[t] = recs
    finally:
        subprocess.run(['fusermount3', '-u', mnt])
    cp = d + '/copy'
    if how == 'cp':
        r = subprocess.run(['cp', '-a', log, cp], capture_output=True)
    elif how == 'rsync':
        r = subprocess.run(['rsync', '-a', log + '/', cp + '/'], capture_output=True)
    else:
        os.makedirs(cp)
        r = subprocess.run('tar -C %s -cf - . | tar -C %s -xf -' % (log, cp), shell=True, capture_output=True)
    copy_err = r.stderr.decode()[-300:] if r.returncode else ''
    C.umount(mnt)  # settle the original
    mnt2 = d + '/mnt2'
    os.makedirs(mnt2)
    rc, out = C.start([cp, mnt2])
    if rc:
        f.append('%s: the copy does not mount: %s %s' % (tag, rc, out.strip()[-400:]))
        return f
    try:
        if 'refused' in out or 'damage' in out:
            f.append('%s: mounting the copy: %s' % (tag, out.strip()[-600:]))
        for t, recs in exp.items():
            try:
                got = [x for (o, x) in C.records(mnt2, t)]
            except OSError as e:
                f.append('%s: copy %s: %s (copy tool: %s)' % (tag, t, e, copy_err))
                continue
            if got != recs:
                pre = got == recs[:len(got)]
                f.append('%s: copy %s: %d of %d records (%s)' % (tag, t, len(got), len(recs), 'a prefix' if pre else 'NOT a prefix'))
    finally:
        C.umount(mnt2)
    rc, o, e = C.tool('verify', cp)
    if rc != 0:
        f.append('%s: verify of the copy rc %s: %s' % (tag, rc, (o + e)[-300:]))
    return f


if __name__ == '__main__':
    nf = 0
    for s in map(int, sys.argv[1:]):
        fs = run(s)
        for x in fs:
            print('FINDING', x); nf += 1
        print('seed', s, 'findings', len(fs), flush=True)
    print('seeds', len(sys.argv) - 1, 'findings', nf)
