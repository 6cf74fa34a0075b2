#!/usr/bin/env python3
"""data_remount_check.py GENDIR... - mount again the LOG_DIRs data_gen.py left
(a.ini), and check through the mount against `streambus dump --json` and
`dump --keys --json`: record files, .log, dd, .since/@T, .keys/ (after the
remount: indexes, time indexes, key tables read back)."""
import os, sys, random, subprocess, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *

errs = []; n = 0
for g in sys.argv[1:]:
    L, M = g + '/L', g + '/M'
    dumps = {t: dump_json(L, t) for t in os.listdir(L) if os.path.isdir(L + '/' + t)}
    keys = {}
    for t in dumps:
        r = tool('dump', '--keys', '--json', L, t)
        import json, base64
        ks = []
        for line in r.stdout.decode().splitlines():
            j = json.loads(line)
            ks.append(j['key'].encode() if 'key' in j else base64.b64decode(j['key_base64']))
        keys[t] = ks
    m = Mount(g + '/a.ini', M, g + '/c.err')
    try:
        m.start()
        for t, dj in dumps.items():
            d = M + '/' + t
            v = rec_file_view(d)
            n += 1
            if sorted(v) != sorted(dj):
                errs.append('%s %s: offsets differ from dump (%d vs %d)' % (g, t, len(v), len(dj)))
                continue
            for o in v:
                if (v[o]['value'], v[o]['tomb'], v[o]['ts'], sorted(v[o]['headers'])) != (dj[o]['value'], dj[o]['tomb'], dj[o]['ts'], sorted(dj[o]['headers'])):
                    errs.append('%s %s: offset %d differs from dump' % (g, t, o))
            offs = sorted(v)
            exp = b''.join(v[o]['value'] for o in offs if not v[o]['tomb'])
            lg = open(d + '/.log', 'rb').read()
            if lg != exp:
                errs.append('%s %s: .log differs' % (g, t))
            rng = random.Random(n)
            rmax, mx = [], 0
            for o in offs:
                mx = max(mx, v[o]['ts']); rmax.append(mx)
            for _ in range(6):
                if not offs: break
                T = v[rng.choice(offs)]['ts'] + rng.choice([-1, 0, 1])
                first = next((i for i, x in enumerate(rmax) if x >= T), len(offs))
                e = b''.join(v[o]['value'] for o in offs[first:] if not v[o]['tomb'])
                got = open(d + '/.since/@%d.%09d' % (T // 10**9, T % 10**9), 'rb').read()
                if got != e:
                    errs.append('%s %s: .since/@%d differs (%d vs %d bytes)' % (g, t, T, len(got), len(e)))
                bs = rng.choice([1, 100, 4096]); skip = rng.randint(0, max(0, len(exp) // bs))
                out = subprocess.run(['dd', 'if=' + d + '/.log', 'bs=%d' % bs, 'skip=%d' % skip, 'count=3', 'status=none'], capture_output=True).stdout
                if out != exp[skip * bs: skip * bs + 3 * bs]:
                    errs.append('%s %s: dd bs=%d skip=%d differs' % (g, t, bs, skip))
            kn = sorted(os.listdir(d + '/.keys'))
            exp_kn = sorted(enc_key(k) for k in keys[t])
            if kn != exp_kn:
                errs.append('%s %s: .keys %r vs dump --keys %r' % (g, t, sorted(set(kn) ^ set(exp_kn))[:5], len(exp_kn)))
        m.stop()
    except Exception as e:
        import traceback; errs.append('%s: %s' % (g, traceback.format_exc()[-600:]))
    finally:
        m.cleanup()
print('%d topics checked, %d errors' % (n, len(errs)))
for e in errs[:20]:
    print('   ', e)
