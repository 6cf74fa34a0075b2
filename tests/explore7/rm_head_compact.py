#!/usr/bin/env python3
"""rm of the oldest records of a compacted topic while its compaction runs
(no other writer): the listing, .log, and what comes back after a clean
unmount and a remount.  usage: [WRITER=0|1] rm_head_compact.py [SEED] [N_RECORDS] [N_RM]
(WRITER=1, the default: a writer appends 800 more records meanwhile)
Property (SPEC 5, 2): rm of the oldest record removes it for good (after a
clean unmount too); .log = the records; verify clean; the remount serves
what was served before the unmount."""
import os, sys, random, subprocess, time, shutil, tempfile
B = os.path.realpath(os.environ.get('SB_BUILD', 'build'))
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
nrm = int(sys.argv[3]) if len(sys.argv) > 3 else 600
opts = os.environ.get('OPTS', 'segment_bytes=4096,cleanup=compact')
rng = random.Random(seed)
D = tempfile.mkdtemp(prefix='rhc.', dir='/tmp/t7')
L, M = D + '/log', D + '/mnt'
os.mkdir(L); os.mkdir(M)
def mount():
    subprocess.run([B + '/streambusfs', '-c', '/dev/null', '-o', opts, L, M], check=True)
def umount():
    pid = int(open(L + '/.lock').read().split()[0])
    subprocess.run(['fusermount3', '-u', M], check=True)
    while os.path.exists('/proc/%d' % pid):
        time.sleep(0.05)
def view():
    names = sorted(x for x in os.listdir(M + '/T') if x.isdigit())
    try:
        log = open(M + '/T/.log', 'rb').read()
        logerr = None
    except OSError as e:
        log, logerr = None, e
    return names, log, logerr
bad = 0
try:
    mount()
    os.mkdir(M + '/T')
    pad = 'x' * 200
    for i in range(n):
        if rng.random() < 0.3:
            with open(M + '/T/.log', 'a') as f:
                f.write('line %d %s\n' % (i, pad))
        else:
            with open(M + '/T/.keys/k%d' % rng.randint(0, 4), 'w') as f:
                f.write('value %d %s\n' % (i, pad))
    errs = {}
    removed = 0
    conc = os.environ.get('WRITER', '1') == '1'
    if conc:
        # a writer appends on while the oldest records are removed
        wpid = os.fork()
        if wpid == 0:
            try:
                r2 = random.Random(seed + 1)
                for i in range(n, n + 800):
                    if r2.random() < 0.3:
                        with open(M + '/T/.log', 'a') as f:
                            f.write('line %d %s\n' % (i, pad))
                    else:
                        with open(M + '/T/.keys/k%d' % r2.randint(0, 4), 'w') as f:
                            f.write('value %d %s\n' % (i, pad))
            finally:
                os._exit(0)
    for j in range(nrm):
        names = sorted(x for x in os.listdir(M + '/T') if x.isdigit())
        if not names:
            break
        try:
            os.unlink(M + '/T/' + names[0])
            removed += 1
        except OSError as e:
            errs[e.strerror] = errs.get(e.strerror, 0) + 1
        if os.environ.get('RMDIR') == '1':
            # as rm -r does at its end: rmdir of the topic (ENOTEMPTY while records are left)
            try:
                os.rmdir(M + '/T')
                errs['rmdir succeeded'] = errs.get('rmdir succeeded', 0) + 1
                break
            except OSError as e:
                errs['rmdir ' + e.strerror] = errs.get('rmdir ' + e.strerror, 0) + 1
    if conc:
        os.waitpid(wpid, 0)
    for i in range(30):
        time.sleep(0.5)
        try:
            v1 = view()
            cat = b''.join(open(M + '/T/' + x, 'rb').read() for x in v1[0])
        except FileNotFoundError:
            continue
        if view() == v1:
            break
    names, log, logerr = view()
    print('seed %d: %d records written, %d rm succeeded, rm errors %s' % (seed, n, removed, errs))
    print('  served: %d records from %s; .log %s' % (len(names), names[0] if names else '-', 'EIO/err: %s' % logerr if logerr else '%d bytes' % len(log)))
    if logerr:
        bad += 1
    else:
        cat = b''.join(open(M + '/T/' + x, 'rb').read() for x in names)
        if cat != log:
            print('  .log differs from the records'); bad += 1
    umount()
    r = subprocess.run([B + '/streambus', 'verify', '--no-progress', '-q', L], capture_output=True, text=True)
    print('  verify after a clean unmount: exit %d %s' % (r.returncode, (r.stdout + r.stderr).strip()[:600]))
    bad += r.returncode != 0
    r = subprocess.run([B + '/streambusfs', '-c', '/dev/null', '-o', opts, L, M], capture_output=True, text=True)
    if r.stderr.strip():
        print('  remount says: %s' % r.stderr.strip()[:600])
    names2, log2, logerr2 = view()
    print('  after the remount: %d records from %s' % (len(names2), names2[0] if names2 else '-'))
    if names2 != names:
        back = sorted(set(names2) - set(names))
        lost = sorted(set(names) - set(names2))
        print('  DIFFERS: %d removed records back (%s..%s), %d served records gone' % (len(back), back[:1], back[-1:], len(lost)))
        bad += 1
    umount()
finally:
    if subprocess.run(['mountpoint', '-q', M]).returncode == 0:
        subprocess.run(['fusermount3', '-u', M])
        time.sleep(1)
    if not os.environ.get('KEEP'):
        shutil.rmtree(D, ignore_errors=True)
print('FAIL' if bad else 'ok')
sys.exit(1 if bad else 0)
