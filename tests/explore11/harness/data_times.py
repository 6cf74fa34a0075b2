#!/usr/bin/env python3
"""data_times.py SEED... - records with chosen times (utime on the file being
created, as a restore does), stepping back and forth, in compacted/compressed
topics: .since/@T and dump --since/--until against the running maximum, before
and after a remount; a backup (rsync -aX) restored keeps the times."""
import os, sys, random, subprocess, time, shutil, traceback
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *

def run(seed):
    rng = random.Random(seed)
    base = '%s/times%d' % (ROOT, seed)
    shutil.rmtree(base, ignore_errors=True); os.makedirs(base)
    L, M = base + '/L', base + '/M'
    cfg = dict(cleanup=rng.choice(['delete', 'compact']), compression=rng.choice(['none', 'lz4', 'zstd']),
               segment_bytes=4096, index_interval_bytes=rng.choice([1, 512, 4096]), delete_retention_ms=0)
    write_ini(base + '/a.ini', L, M, {}, {'t': cfg})
    m = Mount(base + '/a.ini', M, base + '/a.err')
    errs = []
    model = []
    T0 = 1_700_000_000 * 10**9
    try:
        m.start()
        os.mkdir(M + '/t')
        cur = T0
        for i in range(rng.randint(100, 300)):
            x = rng.random()
            if x < 0.1:
                cur -= rng.randint(1, 10**12)     # a step back
            elif x < 0.2:
                pass                               # same time
            else:
                cur += rng.randint(1, 10**10)
            key = 'k%d' % rng.randint(0, 8) if rng.random() < 0.6 else 'u%d' % i
            v = b'%d:' % i + b'z' * rng.randint(0, 600)
            p = M + '/t/' + key
            f = open(p, 'wb'); f.write(v); f.flush()
            os.utime(p, ns=(cur, cur))
            f.close()
            model.append(cur)
        for phase in ('mounted', 'remounted'):
            if phase == 'remounted':
                m.stop(); m.start()
            time.sleep(0.5)
            d = M + '/t'
            v = rec_file_view(d)
            offs = sorted(v)
            for o in offs:
                if v[o]['ts'] != model[o] or v[o]['mtime'] != model[o]:
                    errs.append('%s: offset %d time %d mtime %d, set %d' % (phase, o, v[o]['ts'], v[o]['mtime'], model[o]))
            rmax, mx = [], 0
            for o in offs:
                mx = max(mx, v[o]['ts']); rmax.append(mx)
            for _ in range(25):
                T = model[rng.randrange(len(model))] + rng.choice([-1, 0, 1])
                first = next((i for i, x in enumerate(rmax) if x >= T), len(offs))
                e = b''.join(v[o]['value'] for o in offs[first:])
                try:
                    got = open(d + '/.since/@%d.%09d' % (T // 10**9, T % 10**9), 'rb').read()
                except OSError as ex:
                    errs.append('%s: .since/@%d: %s' % (phase, T, ex)); continue
                if got != e and sorted(int(x) for x in os.listdir(d) if x.isdigit()) == offs:
                    errs.append('%s: .since/@%d: %d bytes, expected %d (first offset %s)' % (phase, T, len(got), len(e), offs[first] if first < len(offs) else None))
        m.stop()
        full = dump_json(L, 't')
        offs = sorted(full)
        rmax, mx = [], 0
        for o in offs:
            mx = max(mx, full[o]['ts']); rmax.append(mx)
        for _ in range(25):
            a = model[rng.randrange(len(model))] + rng.choice([-1, 0, 1])
            b = model[rng.randrange(len(model))] + rng.choice([-1, 0, 1])
            exp = [o for o, x in zip(offs, rmax) if a <= x < b]
            got = sorted(dump_json_args(L, 't', ['--since', '@%d.%09d' % (a // 10**9, a % 10**9), '--until', '@%d.%09d' % (b // 10**9, b % 10**9)]))
            if got != exp:
                errs.append('dump --since %d --until %d: %d records %s.., expected %d %s..' % (a, b, len(got), got[:3], len(exp), exp[:3]))
        r = tool('verify', L, check=False)
        if r.returncode:
            errs.append('verify rc %d %s' % (r.returncode, r.stdout.decode()[-300:]))
    except Exception:
        errs.append(traceback.format_exc()[-800:])
    finally:
        m.cleanup()
    print('seed %d: %s, %d records, %d errors' % (seed, cfg, len(model), len(errs)))
    for e in errs[:10]:
        print('   ', e)
    return not errs

if __name__ == '__main__':
    seeds = [int(x) for x in sys.argv[1:]]
    ok = sum(run(s) for s in seeds)
    print('%d of %d seeds clean' % (ok, len(seeds)))
