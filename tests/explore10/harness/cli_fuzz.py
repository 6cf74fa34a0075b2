#!/usr/bin/env python3
"""cli_fuzz.py - random argument lists for `streambus` (commands, options, values,
odd paths and topic names), on a clean log directory written through a mount.

  nice -n 10 python3 tests/explore10/harness/cli_fuzz.py --seed 1 --cases 2000

Each case checks: the command ends within 20 s, by exit (no signal but SIGPIPE);
exit status is 0, 1 or 2; a non-zero status (but verify's 1 and get's 1) comes with
a line on stderr starting 'streambus'; no stderr line looks like a crash (Assertion,
Segmentation, AddressSanitizer, runtime error, abort); the log directory's files
are unchanged (recover on a clean directory changes nothing but may write .lock).
"""
import argparse, hashlib, os, random, shutil, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'explore8', 'harness'))
import common as C  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--cases', type=int, default=1000)
ap.add_argument('--dir', default='/dev/shm/ex10cli_fuzz')
a = ap.parse_args()
rnd = random.Random(a.seed)
shutil.rmtree(a.dir, ignore_errors=True)
LOG, MNT = a.dir + '/log', a.dir + '/mnt'
os.makedirs(LOG)
os.makedirs(MNT)
C.mount(LOG, MNT, 'segment_bytes=4096,compression=zstd', a.dir + '/daemon.log')
try:
    for t in ['orders', '-x', 'a.b', 'T_1', 'z' * 249]:
        os.mkdir(MNT + '/' + t)
        with open(MNT + '/' + t + '/.log', 'ab') as f:
            for i in range(rnd.randint(1, 300)):
                f.write(b'rec %d\n' % i)
        for k in ['alice', 'a/b', '50%off', 'sp ace', '\u00fcn\u00ef']:
            with open(MNT + '/' + t + '/.keys/' + k.replace('/', '%2F'), 'wb') as f:
                f.write(k.encode() + b'\n')
finally:
    C.umount(MNT, LOG)


def snapshot():
    h = {}
    for root, dirs, files in os.walk(LOG):
        for f in files:
            p = os.path.join(root, f)
            if os.path.basename(p) == '.lock':
                continue
            h[p] = hashlib.md5(open(p, 'rb').read()).hexdigest()
    return h


base = snapshot()
os.chdir(a.dir)
cmds = ['stat', 'dump', 'verify', 'recover', 'get', '--version', '--help', 'bogus', '']
opts = ['--json', '--raw', '--keys', '--from', '--count', '--since', '--until', '--cut', '-q', '--progress',
        '--no-progress', '--help', '--', '-', '--from=', '--count=3', '--since=@0', '-x', '--follow']
vals = ['0', '1', '-1', '18446744073709551615', '18446744073709551616', '9' * 30, 'abc', '', ' ', '@0', '@-1',
        '-15m', '-0s', '2026-12-02', '2026-02-30T00:00:00Z', '1e9', '0x10', '+3', '3 ', '\t']
paths = ['log', 'log/', './log', 'log//', LOG, LOG + '/', 'log/orders', 'log/orders/', 'log/-x', 'log/nosuch',
         'nosuch', '/etc/hostname', '/dev/null', '/', '', '.', '..', 'log/orders/meta', 'log/' + 'z' * 249,
         'log/' + 'z' * 300, 'log/a.b/', 'log/../log', '/proc/self', 'log\x01']
topics = ['orders', 'orders/', '-x', 'a.b', 'T_1', 'nosuch', '', '.', '..', '../log', 'or ders', '\u00f6rders',
          'z' * 249, 'z' * 250, 'z' * 5000, 'orders/meta', '%2F', 'a\nb']
keys = ['alice', 'a/b', 'a%2Fb', '50%off', 'sp ace', '\u00fcn\u00ef', '', '-k', 'x' * 5000, '\xff']
crash = ('Assertion', 'Segmentation', 'AddressSanitizer', 'runtime error', 'Aborted', 'core dumped', 'panic')
nfind = 0
seen = set()
counts = {}
for c in range(a.cases):
    cmd = rnd.choice(cmds)
    argv = [cmd] if cmd else []
    shape = [rnd.choice(['opt', 'path', 'topic', 'key', 'val', 'dd']) for _ in range(rnd.randint(0, 5))]
    if rnd.random() < 0.6:      # mostly well formed: LOG_DIR [TOPIC] [KEY] after options
        shape = [rnd.choice(['opt', 'opt', 'val']) for _ in range(rnd.randint(0, 3))] + ['path'] + \
            (['topic'] if rnd.random() < 0.6 else []) + (['key'] if cmd == 'get' else [])
    for s in shape:
        argv.append({'opt': lambda: rnd.choice(opts), 'path': lambda: rnd.choice(paths),
                     'topic': lambda: rnd.choice(topics), 'key': lambda: rnd.choice(keys),
                     'val': lambda: rnd.choice(vals), 'dd': lambda: '--'}[s]())
    if '--follow' in argv:
        argv.remove('--follow')     # follows until a signal; checked by hand
    if '--progress' in argv and rnd.random() < 0.5:
        pass
    try:
        r = subprocess.run([C.TOOL] + argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        msg = 'timeout: %r' % argv
        rc, out, err = None, b'', ''
    else:
        rc, out, err = r.returncode, r.stdout, r.stderr.decode(errors='replace')
        msg = None
        if rc < 0 and rc != -13:
            msg = 'signal %d' % -rc
        elif rc not in (0, 1, 2):
            msg = 'exit status %d' % rc
        elif any(k in err for k in crash):
            msg = 'crash text on stderr'
        elif rc == 2 and not err.strip():
            msg = 'exit 2 with nothing on stderr'
        elif rc != 0 and cmd not in ('verify', 'get') and err.strip() and not any(
                l.startswith(('streambus', 'usage')) for l in err.splitlines()):
            msg = 'stderr does not say who speaks'
    counts[rc] = counts.get(rc, 0) + 1
    now = snapshot()
    if now != base:
        changed = sorted(set(now) ^ set(base) | {k for k in now if k in base and now[k] != base[k]})
        msg = (msg + '; ' if msg else '') + 'log dir changed: %s' % changed[:5]
        base = now
    if msg:
        key = msg.split(':')[0] + ' ' + cmd
        if key not in seen:
            seen.add(key)
            nfind += 1
            print('FINDING case %d: %s\n  argv %r\n  rc=%s stdout %r\n  stderr %r' % (
                c, msg, argv, rc, out[:200], err[:400]), flush=True)
print('seed %d: %d cases, exit statuses %s, %d distinct findings' % (a.seed, a.cases, counts, nfind))
sys.exit(1 if nfind else 0)
