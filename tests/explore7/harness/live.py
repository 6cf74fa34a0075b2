#!/usr/bin/env python3
"""live.py SEED... - streambus verify / dump / stat / get run while the
directory is mounted and busy: writers (keyed and not), compaction,
compression, retention. README: stat, dump and verify only read and may
run while mounted; verify counts no damage of a live newest segment.
Property: verify exits 0, dump exits 0 and every payload it prints is a
whole valid record, get prints a valid record of the key or exits 1."""
import os, sys, random, subprocess, time, shutil, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t7
from t7 import Fail, mount, umount, write_ini, tool, payload, parse


def run(seed, base, secs):
    rng = random.Random(seed)
    root = '%s/l%d' % (base, seed)
    shutil.rmtree(root, ignore_errors=True)
    log, mnt = root + '/log', root + '/mnt'
    os.makedirs(log)
    os.makedirs(mnt)
    g = {'segment_bytes': rng.choice([4096, 8192]),
         'index_interval_bytes': rng.choice([64, 4096]),
         'compression': rng.choice(['none', 'lz4', 'zstd']),
         'compression_block_bytes': rng.choice([1024, 65536]),
         'delete_retention_ms': rng.choice([0, 86400000]),
         'key_memtable_bytes': rng.choice([4096, 4194304]),
         'sync': rng.choice(['always', 'interval', 'never'])}
    per = {'kv': {'cleanup': 'compact'},
           'ret': {'cleanup': rng.choice(['delete', 'compact,delete']), 'retention_bytes': 30000, 'retention_ms': rng.choice([-1, 1000])}}
    ini = root + '/mount.ini'
    write_ini(ini, log, mnt, g, per)
    errs = []
    counts = {'verify': 0, 'dump': 0, 'get': 0, 'stat': 0}
    try:
        mount(ini, log, mnt, root + '/daemon.err')
        for t in ('kv', 'ret'):
            os.mkdir(mnt + '/' + t)
        stop = time.time() + secs
        kids = []
        for w in range(2):
            pid = os.fork()
            if pid == 0:
                try:
                    r2 = random.Random(seed * 10 + w)
                    seq = 0
                    while time.time() < stop:
                        t = r2.choice(['kv', 'ret'])
                        k = 'k%d' % r2.randint(0, 9)
                        x = r2.random()
                        try:
                            if x < 0.3:
                                with open('%s/%s/.log' % (mnt, t), 'a') as f:
                                    f.write(payload(r2, w, seq, None, 'L', 500))
                            elif x < 0.9:
                                with open('%s/%s/.keys/%s' % (mnt, t, k), 'w') as f:
                                    f.write(payload(r2, w, seq, k, 'K', 500))
                            else:
                                os.unlink('%s/%s/.keys/%s' % (mnt, t, k))
                        except FileNotFoundError:
                            pass
                        seq += 1
                finally:
                    os._exit(0)
            kids.append(pid)
        while time.time() < stop:
            c = rng.choice(['verify', 'dump', 'get', 'stat'])
            t = rng.choice(['kv', 'ret'])
            counts[c] += 1
            if c == 'verify':
                r = tool(['verify', '--no-progress', log])
                if r.returncode != 0:
                    errs.append('verify exit %d: %s' % (r.returncode, (r.stdout + r.stderr)[-1500:]))
            elif c == 'dump':
                r = tool(['dump', '--json', log, t])
                if r.returncode != 0:
                    errs.append('dump %s exit %d: %s' % (t, r.returncode, r.stderr[-1500:]))
                for ln in r.stdout.splitlines():
                    x = json.loads(ln)
                    if 'value' in x and not x.get('tombstone') and parse(x['value']) is None:
                        errs.append('dump %s: offset %d invalid value %r' % (t, x['offset'], x['value'][:80]))
                    if 'value_base64' in x:
                        errs.append('dump %s: offset %d binary value' % (t, x['offset']))
            elif c == 'get':
                k = 'k%d' % rng.randint(0, 9)
                r = subprocess.run([t7.TOOL, 'get', log, t, k], capture_output=True)
                if r.returncode == 0:
                    p = parse(r.stdout.decode(errors='replace'))
                    if p is None or p[2] != k:
                        errs.append('get %s %s: %r' % (t, k, r.stdout[:80]))
                elif r.returncode != 1:
                    errs.append('get %s %s exit %d: %s' % (t, k, r.returncode, r.stderr[-500:]))
            else:
                r = tool(['stat', log])
                if r.returncode != 0 or r.stderr.strip():
                    errs.append('stat exit %d: %s' % (r.returncode, r.stderr[-500:]))
            if len(errs) > 20:
                break
        for k in kids:
            os.waitpid(k, 0)
        umount(mnt, log)
        r = tool(['verify', '--no-progress', log])
        if r.returncode != 0:
            errs.append('verify after unmount exit %d: %s' % (r.returncode, r.stdout[-1500:]))
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
    return errs, g, per, counts


if __name__ == '__main__':
    secs = float(os.environ.get('LIVE_SECS', '20'))
    os.makedirs(os.environ.get('T7_BASE', '/tmp/t7/runs'), exist_ok=True)
    nb = 0
    for s in map(int, sys.argv[1:]):
        errs, g, per, counts = run(s, os.environ.get('T7_BASE', '/tmp/t7/runs'), secs)
        nb += bool(errs)
        print('live seed %d: %s %s %s %s%s' % (s, 'FAIL' if errs else 'ok', counts, g, per, ''.join('\n   ' + e[:600] for e in errs[:8])), flush=True)
    print('live failing seeds', nb)
