#!/usr/bin/env python3
"""rm of the oldest records of a compacted topic whose compaction is busy,
then kill -9 of the daemon at once, remount: SPEC/README: a removal is kept
through a crash of the daemon at once. usage: rm_kill_compact.py [CASES]"""
import os, sys, random, subprocess, time, shutil, tempfile, signal
B = os.path.realpath(os.environ.get('SB_BUILD', 'build'))
cases = int(sys.argv[1]) if len(sys.argv) > 1 else 10
fails = 0
for c in range(cases):
    rng = random.Random(c)
    opts = 'segment_bytes=4096,cleanup=compact,sync=%s%s' % (rng.choice(['always', 'interval', 'never']), rng.choice(['', ',compression=zstd']))
    D = tempfile.mkdtemp(prefix='rkc.', dir='/tmp/t7')
    L, M = D + '/log', D + '/mnt'
    os.mkdir(L); os.mkdir(M)
    try:
        subprocess.run([B + '/streambusfs', '-c', '/dev/null', '-o', opts, L, M], check=True)
        os.mkdir(M + '/T')
        for i in range(rng.randint(300, 1500)):
            p = M + ('/T/.keys/k%d' % rng.randint(0, 6) if rng.random() < 0.7 else '/T/.log')
            with open(p, 'a' if p.endswith('.log') else 'w') as f:
                f.write('r%d %s\n' % (i, 'x' * 150))
        last = None
        for j in range(rng.randint(1, 200)):
            names = sorted(x for x in os.listdir(M + '/T') if x.isdigit())
            try:
                os.unlink(M + '/T/' + names[0]); last = int(names[0])
            except OSError as e:
                pass
        pid = int(open(L + '/.lock').read().split()[0])
        os.kill(pid, signal.SIGKILL)
        while os.path.exists('/proc/%d' % pid): time.sleep(0.01)
        subprocess.run(['fusermount3', '-u', M])
        r = subprocess.run([B + '/streambusfs', '-c', '/dev/null', '-o', opts, L, M], capture_output=True, text=True)
        names = sorted(int(x) for x in os.listdir(M + '/T') if x.isdigit())
        ok = last is None or not names or names[0] > last
        print('case %d (%s): last removed %s, first after kill -9 + remount %s: %s' % (c, opts, last, names[0] if names else None, 'ok' if ok else 'FAIL: removed records back'))
        fails += not ok
        pid = int(open(L + '/.lock').read().split()[0])
        subprocess.run(['fusermount3', '-u', M])
        while os.path.exists('/proc/%d' % pid): time.sleep(0.05)
        r = subprocess.run([B + '/streambus', 'verify', '-q', '--no-progress', L], capture_output=True, text=True)
        if r.returncode:
            print('   verify exit %d: %s' % (r.returncode, r.stdout[-400:])); fails += 1
    finally:
        if subprocess.run(['mountpoint', '-q', M]).returncode == 0:
            subprocess.run(['fusermount3', '-u', M]); time.sleep(0.5)
        shutil.rmtree(D, ignore_errors=True)
print('%d of %d cases failed' % (fails, cases))
