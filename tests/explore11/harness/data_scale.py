#!/usr/bin/env python3
"""data_scale.py NTOPICS [KEYS] - thousands of small topics with keys: ls of the root,
ls .keys in each, remount time, verify time, daemon RssAnon."""
import os, sys, time, subprocess, shutil, random
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *

def rss(pid):
    with open('/proc/%d/status' % pid) as f:
        for l in f:
            if l.startswith('RssAnon'):
                return l.split()[1] + ' kB'

def fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))

n = int(sys.argv[1]); nk = int(sys.argv[2]) if len(sys.argv) > 2 else 3
base = ROOT + '/scale'
shutil.rmtree(base, ignore_errors=True); os.makedirs(base)
L, M = base + '/L', base + '/M'
write_ini(base + '/a.ini', L, M, {}, {})
m = Mount(base + '/a.ini', M, base + '/a.err')
errs = []
try:
    t0 = time.time(); m.start(); print('mount empty: %.2fs, RssAnon %s' % (time.time() - t0, rss(m.proc.pid)))
    t0 = time.time()
    for i in range(n):
        d = '%s/t%05d' % (M, i)
        os.mkdir(d)
        for k in range(nk):
            with open('%s/.keys/k%d' % (d, k), 'wb') as f:
                f.write(b'v%d-%d' % (i, k))
        with open(d + '/.log', 'ab') as f:
            f.write(b'line %d\n' % i)
    print('create %d topics x %d keys: %.1fs, RssAnon %s, fds %d' % (n, nk, time.time() - t0, rss(m.proc.pid), fds(m.proc.pid)))
    t0 = time.time(); names = os.listdir(M); print('ls root: %d names %.2fs' % (len(names), time.time() - t0))
    if len(names) != n: errs.append('ls root %d != %d' % (len(names), n))
    t0 = time.time(); bad = 0
    for i in range(n):
        ks = sorted(os.listdir('%s/t%05d/.keys' % (M, i)))
        if ks != ['k%d' % k for k in range(nk)]:
            bad += 1
    print('ls .keys of each: %.1fs, %d wrong, RssAnon %s' % (time.time() - t0, bad, rss(m.proc.pid)))
    if bad: errs.append('%d .keys listings wrong' % bad)
    t0 = time.time(); m.stop(); print('unmount %.2fs' % (time.time() - t0))
    t0 = time.time(); r = tool('verify', L, check=False); print('verify: rc %d %.1fs' % (r.returncode, time.time() - t0))
    if r.returncode: errs.append('verify rc %d: %s' % (r.returncode, r.stdout.decode()[-300:]))
    t0 = time.time(); r = tool('stat', L, check=False); print('stat: rc %d %.1fs lines %d' % (r.returncode, time.time() - t0, len(r.stdout.splitlines())))
    t0 = time.time(); m.start(); print('remount: %.2fs, RssAnon %s, fds %d' % (time.time() - t0, rss(m.proc.pid), fds(m.proc.pid)))
    t0 = time.time(); names = os.listdir(M); print('ls root after remount: %d names %.2fs' % (len(names), time.time() - t0))
    t0 = time.time(); bad = 0
    for i in random.Random(1).sample(range(n), min(n, 500)):
        d = '%s/t%05d' % (M, i)
        ks = sorted(os.listdir(d + '/.keys'))
        v = open(d + '/.keys/k0', 'rb').read()
        lg = open(d + '/.log', 'rb').read()
        if ks != ['k%d' % k for k in range(nk)] or v != b'v%d-0' % i or not lg.endswith(b'line %d\n' % i):
            bad += 1
    print('500 topics after remount: %.1fs, %d wrong, RssAnon %s' % (time.time() - t0, bad, rss(m.proc.pid)))
    if bad: errs.append('%d topics wrong after remount' % bad)
    t0 = time.time(); r = subprocess.run(['streambus' if False else TOOL, 'get', L, 't00007', 'k1'], capture_output=True); print('get while mounted: rc %d %r %.2fs' % (r.returncode, r.stdout, time.time() - t0))
    m.stop()
except Exception as e:
    import traceback; errs.append(traceback.format_exc()[-800:])
finally:
    m.cleanup()
print('errors:', errs)
