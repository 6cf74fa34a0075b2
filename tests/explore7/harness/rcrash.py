#!/usr/bin/env python3
"""rcrash.py SEED... - kill -9 of the daemon during a restore
(rsync -aX backup/T/ mnt/R/, R compacted and compressed), remount at once,
rerun the restore: R must end equal to the backup (offsets, payloads, keys,
tombstones, times), modulo what R's own compaction removes; nothing
twice, no foreign offset; verify clean."""
import os, sys, random, subprocess, time, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t7, bk
from t7 import Fail, mount, umount, write_ini, tool


def run(seed, base):
    rng = random.Random(seed)
    root = '%s/rc%d' % (base, seed)
    shutil.rmtree(root, ignore_errors=True)
    log, mnt = root + '/log', root + '/mnt'
    os.makedirs(log)
    os.makedirs(mnt)
    errs = []
    g = {'segment_bytes': rng.choice([4096, 8192]),
         'compression': rng.choice(['none', 'lz4', 'zstd']),
         'cleanup': 'compact',
         'delete_retention_ms': rng.choice([0, 86400000]),
         'key_memtable_bytes': rng.choice([4096, 4194304]),
         'sync': rng.choice(['always', 'interval', 'never'])}
    ini = root + '/mount.ini'
    write_ini(ini, log, mnt, g, {})
    keys = ['key%d' % i for i in range(rng.choice([3, 10, 40]))]
    try:
        mount(ini, log, mnt, root + '/daemon.err')
        os.mkdir(mnt + '/T')
        bk.writes(rng, mnt + '/T', rng.randint(100, 500), 1, 0, keys)
        time.sleep(1)
        os.makedirs(root + '/bkm')
        r = bk.sh('rsync -aX %s/T/ %s/bkm/T/' % (mnt, root))
        want = bk.recs_of(root + '/bkm/T')
        os.mkdir(mnt + '/R')
        kills = rng.randint(1, 3)
        for k in range(kills):
            p = subprocess.Popen(['rsync', '-aX', root + '/bkm/T/', mnt + '/R/'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 1.5))
            t7.kill9(mnt, log)
            p.wait()
            t7.force_umount(mnt)
            mount(ini, log, mnt, root + '/daemon.err')
        for i in range(2):
            r = bk.sh('rsync -aX %s/bkm/T/ %s/R/' % (root, mnt))
            if r.returncode not in (0, 23):
                errs.append('rerun %d exit %d: %s' % (i, r.returncode, r.stderr[-600:]))
            bad = [ln for ln in r.stderr.splitlines() if ln.strip() and 'Operation not permitted' not in ln and 'some files' not in ln and 'llistxattr' not in ln]
            if bad:
                errs.append('rerun %d: %s' % (i, bad[:4]))
        got, lg = bk.stable(bk.recs_and_log, mnt + '/R')
        bk.compare(errs, 'R', got, want, times=True)
        if lg != b''.join(got[o][0] for o in sorted(got)):
            errs.append('R: .log != records')
        kk = bk.stable(bk.keys_of, mnt + '/R')
        if {a: b[1] for a, b in kk.items()} != {a: b[1] for a, b in bk.latest(got).items()}:
            errs.append('R: .keys != latest per key')
        lw = bk.latest(want)
        if {a: b[0] for a, b in kk.items()} != {a: b[0] for a, b in lw.items()}:
            errs.append('R: .keys values != the backup latest per key')
        umount(mnt, log)
        r = tool(['verify', '-q', '--no-progress', log])
        if r.returncode != 0:
            errs.append('verify: %s' % r.stdout[-1000:])
    except Fail as e:
        errs.append('FAIL %s' % e)
    finally:
        if t7.is_mounted(mnt):
            try:
                umount(mnt, log)
            except Fail:
                t7.kill9(mnt, log)
                t7.force_umount(mnt)
    if not errs:
        shutil.rmtree(root, ignore_errors=True)
    return errs, g


if __name__ == '__main__':
    os.makedirs(os.environ.get('T7_BASE', '/tmp/t7/runs'), exist_ok=True)
    nb = 0
    for s in map(int, sys.argv[1:]):
        t0 = time.time()
        errs, g = run(s, os.environ.get('T7_BASE', '/tmp/t7/runs'))
        nb += bool(errs)
        print('rcrash seed %d: %s (%.0f s) %s%s' % (s, 'FAIL' if errs else 'ok', time.time() - t0, g, ''.join('\n   ' + e[:500] for e in errs[:8])), flush=True)
    print('rcrash failing seeds', nb)
