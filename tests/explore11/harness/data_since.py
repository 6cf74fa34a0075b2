#!/usr/bin/env python3
"""data_since.py LOG_DIR... - streambus dump --since/--until/--from/--raw against
the full dump --json of each topic (running maximum of times), on unmounted
LOG_DIRs left by data_gen.py (compressed, compacted, with gaps)."""
import os, sys, random, subprocess
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *

def iso(ns):
    import datetime
    s = datetime.datetime.utcfromtimestamp(ns // 10**9).strftime('%Y-%m-%dT%H:%M:%S')
    return s + '.%09dZ' % (ns % 10**9)

errs = []; checks = 0
for L in sys.argv[1:]:
    for t in sorted(os.listdir(L)):
        if not os.path.isdir(L + '/' + t):
            continue
        full = dump_json(L, t)
        offs = sorted(full)
        if not offs:
            continue
        rmax, mx = [], 0
        for o in offs:
            mx = max(mx, full[o]['ts']); rmax.append(mx)
        rng = random.Random(hash((L, t)) & 0xffff)
        raw = tool('dump', '--raw', L, t).stdout
        if raw != b''.join(full[o]['value'] for o in offs if not full[o]['tomb']):
            errs.append('%s %s: --raw != payloads' % (L, t))
        for _ in range(8):
            a = full[rng.choice(offs)]['ts'] + rng.choice([-1, 0, 1])
            b = full[rng.choice(offs)]['ts'] + rng.choice([-1, 0, 1])
            fmt = rng.choice(['@', 'iso'])
            ta = '@%d.%09d' % (a // 10**9, a % 10**9) if fmt == '@' else iso(a)
            tb = '@%d.%09d' % (b // 10**9, b % 10**9) if fmt == '@' else iso(b)
            exp = [o for o, m in zip(offs, rmax) if m >= a and m < b]
            got = sorted(dump_json_args(L, t, ['--since', ta, '--until', tb]))
            checks += 1
            if got != exp:
                errs.append('%s %s: --since %s --until %s: %s vs expected %s' % (L, t, ta, tb, got[:5], exp[:5]))
            fr = rng.choice(offs) + rng.choice([-1, 0, 1])
            exp2 = [o for o, m in zip(offs, rmax) if m >= a and o >= fr]
            got2 = sorted(dump_json_args(L, t, ['--since', ta, '--from', str(max(fr, 0))]))
            checks += 1
            if got2 != exp2:
                errs.append('%s %s: --since %s --from %d: %s vs %s' % (L, t, ta, fr, got2[:5], exp2[:5]))
print('%d checks, %d errors' % (checks, len(errs)))
for e in errs[:20]:
    print('   ', e)
