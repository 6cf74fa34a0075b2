#!/usr/bin/env python3
"""data_gen.py SEED... - generated workload over several topics with random
per-topic settings, checked against a model through the mount, .log, .keys/,
dump --json; then backup (rsync -aX) and restore into a fresh LOG_DIR.

env: DG_OPS (ops per seed, default 120), DG_BIG (allow 1 MiB records, default 1)
"""
import os, sys, random, subprocess, time, json, errno, shutil, traceback
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *

KEYPOOL = [b'plain', b'a/b', b'%', b'50%off', b'.', b'..', b'sp ace', 'ünï-cödé'.encode(), b'%41',
           b'k%2Fx', b'-dash', b'a\nb', b'\x01ctl', b'42', b'x' * 200, b'a%2Eb', b'%2E', b'~', b'A', b'a',
           b'\xff\xfebin', b'.hidden.not', b'dir/sub/leaf', b'  ', b'#']
# keys whose file name would be a temp name or digits are only used through .keys/
def name_ok_in_topic(k):
    n = enc_key(k)
    return not (n.startswith('.') or n.endswith('.tmp') or n.isdigit() or n.startswith('%2E'))

def name_ok_in_keys(k):
    n = enc_key(k)
    return not (n.startswith('.') or n.endswith('.tmp'))


def rbytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n)) if n < 4096 else os.urandom(n) if False else \
        (rng.randbytes(n))


class Topic:
    def __init__(self, name, cfg):
        self.name, self.cfg = name, cfg
        self.recs = []  # list of dict(off,value,key,tomb,headers)
        self.next = 0

    def add(self, value, key, tomb=False, headers=()):
        self.recs.append(dict(off=self.next, value=value, key=key, tomb=tomb, headers=sorted(headers)))
        self.next += 1

    def latest(self):
        lat = {}
        for r in self.recs:
            if r['key'] is not None:
                lat[r['key']] = r
        return {k: r for k, r in lat.items() if not r['tomb']}

    def compacting(self):
        return 'compact' in self.cfg.get('cleanup', 'delete')


def gen_cfg(rng):
    c = {}
    c['cleanup'] = rng.choice(['delete', 'compact', 'compact,delete', 'compact'])
    c['compression'] = rng.choice(['none', 'lz4', 'zstd'])
    c['segment_bytes'] = rng.choice([4096, 4096, 16384, 65536])
    c['delete_retention_ms'] = rng.choice([0, 200, 2000, 86400000])
    if c['compression'] != 'none':
        c['compression_block_bytes'] = rng.choice([1024, 4096, 65536])
    c['index_interval_bytes'] = rng.choice([1, 100, 4096])
    return c


def pay(rng, n):
    if n == 0:
        return b''
    c = rng.random()
    if c < 0.4:
        return rng.randbytes(n)
    unit = rng.randbytes(rng.randint(1, 40))
    return (unit * (n // len(unit) + 1))[:n]


def do_op(rng, mnt, t, log, big):
    d = mnt + '/' + t.name
    r = rng.random()
    size = rng.choice([0, 0, 1, 10, 100, 1000, 5000, 70000] + ([1048576, 300000] if big else []))
    if r < 0.25:
        n = rng.choice([1, 1, 2, 5])
        lines = []
        for _ in range(n):
            l = rng.randbytes(rng.choice([0, 1, 20, 300, 3000])).replace(b'\n', b'N') + b'\n'
            lines.append(l)
        with open(d + '/.log', 'ab') as f:
            f.write(b''.join(lines))
        for l in lines:
            t.add(l, None)
        log.append(('lines', t.name, n))
    elif r < 0.45:
        keys = [k for k in KEYPOOL if name_ok_in_topic(k)]
        k = rng.choice(keys)
        v = pay(rng, size)
        hd = []
        if rng.random() < 0.5:
            for i in range(rng.randint(1, 3)):
                hd.append(('h%d' % i, rng.choice([b'', b'v', rng.randbytes(20), 'ü'.encode()])))
        p = d + '/' + enc_key(k)
        f = open(p, 'wb')
        f.write(v)
        f.flush()
        for hn, hv in hd:
            os.setxattr(p, 'user.streambus.header.' + hn, hv)
        f.close()
        t.add(v, k, headers=hd)
        log.append(('create', t.name, k, len(v), len(hd)))
    elif r < 0.65:
        keys = [k for k in KEYPOOL if name_ok_in_keys(k)]
        k = rng.choice(keys)
        v = pay(rng, size)
        with open(d + '/.keys/' + enc_key(k), 'wb') as f:
            f.write(v)
        t.add(v, k)
        log.append(('keys-write', t.name, k, len(v)))
    elif r < 0.75:
        keys = [k for k in KEYPOOL if name_ok_in_keys(k)]
        k = rng.choice(keys)
        src = ROOT + '/src.bin'
        v = pay(rng, size)
        with open(src, 'wb') as f:
            f.write(v)
        rr = subprocess.run(['cp', src, d + '/.keys/' + enc_key(k)], capture_output=True, text=True)
        if rr.returncode != 0:
            raise Fail('cp into .keys/%s: %s' % (enc_key(k), rr.stderr))
        t.add(v, k)
        log.append(('keys-cp', t.name, k, len(v)))
    else:
        lat = t.latest()
        if not lat or rng.random() < 0.1:
            k = rng.choice([k for k in KEYPOOL if name_ok_in_keys(k)])
        else:
            k = rng.choice(sorted(lat))
        try:
            os.unlink(d + '/.keys/' + enc_key(k))
            if k not in lat:
                raise Fail('rm .keys/%r succeeded but key not live in model' % k)
            t.add(b'', k, tomb=True)
            log.append(('rm', t.name, k))
        except FileNotFoundError:
            if k in lat:
                raise Fail('rm .keys/%r ENOENT but key is live in model' % k)
            log.append(('rm-enoent', t.name, k))


def check_mount(mnt, t, tag, strict_compact=True):
    """compare the mount view of topic t with the model; returns the view."""
    d = mnt + '/' + t.name
    errs = []
    time.sleep(0.2)  # an empty file is appended at its release (README, At the edges)
    view = rec_file_view(d)
    model = {r['off']: r for r in t.recs}
    lat = t.latest()
    latest_off = {}
    for r in t.recs:
        if r['key'] is not None:
            latest_off[r['key']] = r['off']
    for o, v in view.items():
        m = model.get(o)
        if m is None:
            errs.append('%s: offset %d listed, not in model' % (t.name, o))
            continue
        if v['value'] != m['value']:
            errs.append('%s: offset %d value differs (%d vs model %d bytes)' % (t.name, o, len(v['value']), len(m['value'])))
        if v['key'] != m['key']:
            errs.append('%s: offset %d key %r vs model %r' % (t.name, o, v['key'], m['key']))
        if v['tomb'] != m['tomb']:
            errs.append('%s: offset %d tomb %r vs model %r' % (t.name, o, v['tomb'], m['tomb']))
        if v['headers'] != m['headers']:
            errs.append('%s: offset %d headers %r vs model %r' % (t.name, o, v['headers'], m['headers']))
        if v['size'] != len(m['value']):
            errs.append('%s: offset %d st_size %d vs %d' % (t.name, o, v['size'], len(m['value'])))
    for o, m in model.items():
        if o in view:
            continue
        if not t.compacting():
            errs.append('%s: offset %d missing (no compaction)' % (t.name, o))
        elif m['key'] is None:
            errs.append('%s: unkeyed offset %d missing' % (t.name, o))
        elif latest_off[m['key']] == o and not m['tomb']:
            errs.append('%s: latest record of key %r at %d missing' % (t.name, m['key'], o))
    # .log
    with open(d + '/.log', 'rb') as f:
        lg = f.read()
    view2 = rec_file_view(d)
    if set(view2) == set(view):
        exp = b''.join(view[o]['value'] for o in sorted(view) if not view[o]['tomb'])
        if lg != exp:
            errs.append('%s: .log (%d bytes) != concatenation of listed records (%d bytes)' % (t.name, len(lg), len(exp)))
    # dd at random positions
    if set(view2) == set(view):
        rr = random.Random(len(lg))
        for _ in range(6):
            if not lg:
                break
            bs = rr.choice([1, 7, 512, 4096, 65536])
            skip = rr.randint(0, max(0, (len(lg) - 1) // bs))
            cnt = rr.randint(1, 4)
            out = subprocess.run(['dd', 'if=' + d + '/.log', 'bs=%d' % bs, 'skip=%d' % skip, 'count=%d' % cnt, 'status=none'],
                                 capture_output=True).stdout
            now = sorted(int(x) for x in os.listdir(d) if x.isdigit())
            if out != exp[skip * bs: skip * bs + bs * cnt] and now == sorted(view):
                errs.append('%s: dd bs=%d skip=%d count=%d differs' % (t.name, bs, skip, cnt))
        # .since/@TIME against the running maximum of the listed records' times
        offs = sorted(view)
        if offs:
            rmax = []
            mx = 0
            for o in offs:
                mx = max(mx, view[o]['ts'])
                rmax.append(mx)
            for _ in range(4):
                o = rr.choice(offs)
                T = view[o]['ts'] + rr.choice([-1, 0, 1])
                first = next((i for i, m_ in enumerate(rmax) if m_ >= T), len(offs))
                exps = b''.join(view[x]['value'] for x in offs[first:] if not view[x]['tomb'])
                tn = '@%d.%09d' % (T // 10**9, T % 10**9)
                try:
                    with open(d + '/.since/' + tn, 'rb') as f:
                        got = f.read()
                except OSError as e:
                    errs.append('%s: .since/%s: %s' % (t.name, tn, e))
                    continue
                now = sorted(int(x) for x in os.listdir(d) if x.isdigit())
                if got != exps and now == offs:
                    errs.append('%s: .since/%s: %d bytes, expected %d (from offset %s)' % (t.name, tn, len(got), len(exps),
                                offs[first] if first < len(offs) else None))
    # .keys
    names = sorted(os.listdir(d + '/.keys'))
    expn = sorted(enc_key(k) for k in lat)
    if names != expn:
        errs.append('%s: .keys lists %r, model %r' % (t.name, sorted(set(names) ^ set(expn)), len(expn)))
    bkeys = sorted(os.fsencode(n) for n in names)
    for k, r in lat.items():
        p = d + '/.keys/' + enc_key(k)
        try:
            with open(p, 'rb') as f:
                v = f.read()
            off = int(os.getxattr(p, 'user.streambus.offset'))
            hd = sorted((a[len('user.streambus.header.'):], os.getxattr(p, a)) for a in os.listxattr(p)
                        if a.startswith('user.streambus.header.'))
        except OSError as e:
            errs.append('%s: .keys/%s: %s' % (t.name, enc_key(k), e))
            continue
        if v != r['value'] or off != r['off'] or hd != r['headers']:
            errs.append('%s: .keys/%s: off %d vs %d, value eq %s, headers %r vs %r' % (
                t.name, enc_key(k), off, r['off'], v == r['value'], hd, r['headers']))
    return view, errs


def cmp_views(a, b, what, ts=True):
    errs = []
    for o in sorted(set(a) | set(b)):
        if o not in a or o not in b:
            errs.append('%s: offset %d only in %s' % (what, o, 'first' if o in a else 'second'))
            continue
        x, y = a[o], b[o]
        for f in ('value', 'key', 'tomb', 'headers') + (('ts',) if ts else ()):
            xv, yv = x[f], y[f]
            if f == 'headers':
                xv, yv = sorted(xv), sorted(yv)
            if xv != yv:
                errs.append('%s: offset %d %s differs: %r vs %r' % (what, o, f,
                            xv if f != 'value' else len(xv), yv if f != 'value' else len(yv)))
    return errs


def run(seed):
    rng = random.Random(seed)
    base = '%s/gen%d' % (ROOT, seed)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    L, M, L2, M2, BK = [base + x for x in ('/L', '/M', '/L2', '/M2', '/bk')]
    ntop = rng.randint(2, 4)
    topics = [Topic('t%d' % i, gen_cfg(rng)) for i in range(ntop)]
    write_ini(base + '/a.ini', L, M, {}, {t.name: t.cfg for t in topics})
    m = Mount(base + '/a.ini', M, base + '/a.err')
    m2 = None
    errs = []
    oplog = []
    big = os.environ.get('DG_BIG', '1') == '1'
    try:
        m.start()
        for t in topics:
            os.mkdir(M + '/' + t.name)
        nops = int(os.environ.get('DG_OPS', '120'))
        for i in range(nops):
            t = rng.choice(topics)
            do_op(rng, M, t, oplog, big)
            if i % 40 == 39:
                for t in topics:
                    _, e = check_mount(M, t, 'mid')
                    errs += ['mid@%d: %s' % (i, x) for x in e]
        views = {}
        for t in topics:
            views[t.name], e = check_mount(M, t, 'end')
            errs += ['end: ' + x for x in e]
        # backup through the mount
        for t in topics:
            os.makedirs(BK + '/' + t.name, exist_ok=True)
            r = subprocess.run(['rsync', '-aX', M + '/' + t.name + '/', BK + '/' + t.name + '/'], capture_output=True, text=True)
            if r.returncode not in (0, 24, 23):
                errs.append('backup rsync %s rc=%d %s' % (t.name, r.returncode, r.stderr[-500:]))
        time.sleep(rng.choice([0.5, 2.5]))
        # roll segments so that what was written seals and compacts, past tombstone retention
        for t in topics:
            for _ in range(3):
                l = b'F' * (t.cfg['segment_bytes'] // 2) + b'\n'
                with open(M + '/' + t.name + '/.log', 'ab') as f:
                    f.write(l)
                t.add(l, None)
        time.sleep(rng.choice([0.5, 2.5]))
        for t in topics:
            views[t.name], e = check_mount(M, t, 'late')
            errs += ['late: ' + x for x in e]
        m.stop()
        r = tool('verify', L, check=False)
        if r.returncode != 0:
            errs.append('verify after unmount rc=%d: %s' % (r.returncode, r.stdout.decode()[-1000:]))
        for t in topics:
            dj = dump_json(L, t.name)
            errs += cmp_views(views[t.name], dj, 'dump-vs-mount ' + t.name) if set(dj) == set(views[t.name]) or not t.compacting() else \
                [x for x in cmp_views({o: views[t.name][o] for o in dj if o in views[t.name]}, {o: dj[o] for o in dj if o in views[t.name]}, 'dump-vs-mount ' + t.name)]
            for o in dj:
                if o not in {r['off'] for r in t.recs}:
                    errs.append('dump %s: offset %d not in model' % (t.name, o))
        # restore into a fresh LOG_DIR
        bkview = {t.name: rec_file_view_plain(BK + '/' + t.name) for t in topics}
        per2 = {t.name: dict(t.cfg, cleanup='compact' if t.compacting() else 'delete') for t in topics}
        write_ini(base + '/b.ini', L2, M2, {}, per2)
        m2 = Mount(base + '/b.ini', M2, base + '/b.err').start()
        for t in topics:
            how = rng.choice(['rsync', 'rsync-kill', 'rsync-kill9', 'tar', 'cpa'])
            errs += restore(rng, how, t, BK, M2, m2)
        rv = {t.name: rec_file_view(M2 + '/' + t.name) for t in topics}
        m2.stop()
        m2 = None
        for t in topics:
            dj = dump_json(L2, t.name)
            bv = bkview[t.name]
            # compaction may remove records in the restored topic too
            lastk = {}
            for o in sorted(bv):
                if bv[o]['key'] is not None:
                    lastk[bv[o]['key']] = o
            def may_go(o):
                return t.compacting() and bv[o]['key'] is not None and (lastk[bv[o]['key']] != o or bv[o]['tomb'])
            errs += ['restore: ' + x for x in cmp_views({o: bv[o] for o in bv if o in dj or not may_go(o)}, dj, 'backup-vs-restored ' + t.name)]
            # .keys of restored == latest of backup
    except Exception as e:
        errs.append('EXC: %s' % traceback.format_exc()[-1500:])
    finally:
        m.cleanup()
        if m2:
            m2.cleanup()
    with open(base + '/oplog.json', 'w') as f:
        f.write(repr(oplog))
    cfgs = {t.name: t.cfg for t in topics}
    print('seed %d: %d topics %s, %d records, %d errors' % (seed, ntop, cfgs, sum(len(t.recs) for t in topics), len(errs)))
    for x in errs[:30]:
        print('   ', x)
    return not errs


def restore(rng, how, t, BK, M2, m2):
    errs = []
    src = BK + '/' + t.name + '/'
    dst = M2 + '/' + t.name + '/'
    if how == 'tar':
        r = subprocess.run(['tar', '-C', BK, '--sort=name', '--xattrs', '-cf', BK + '/../' + t.name + '.tar', t.name], capture_output=True, text=True)
        r = subprocess.run(['tar', '-C', M2, '--xattrs', '--skip-old-files', '-xf', BK + '/../' + t.name + '.tar'], capture_output=True, text=True)
        if r.returncode != 0:
            errs.append('restore tar %s rc=%d %s' % (t.name, r.returncode, r.stderr[-800:]))
        return errs
    os.mkdir(dst)
    if how == 'cpa':
        names = sorted(x for x in os.listdir(src) if x.isdigit())
        if names:
            r = subprocess.run(['cp', '-a'] + [src + x for x in names] + [dst], capture_output=True, text=True)
            if r.returncode != 0:
                errs.append('restore cp -a %s rc=%d %s' % (t.name, r.returncode, r.stderr[-800:]))
        return errs
    if how in ('rsync-kill', 'rsync-kill9'):
        p = subprocess.Popen(['rsync', '-aX', src, dst], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.choice([0.02, 0.1, 0.3, 0.6]))
        if how == 'rsync-kill':
            import signal as _s
            try:
                os.killpg(p.pid, _s.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            while subprocess.run(['pgrep', '-g', str(p.pid)], capture_output=True).returncode == 0:
                time.sleep(0.05)
        else:
            m2.kill9()
            p.wait()
            m2.start()
        errs_note = 'after %s' % how
    r = subprocess.run(['rsync', '-aX', src, dst], capture_output=True, text=True)
    with open(BK + '/../restore-%s.log' % t.name, 'w') as f:
        f.write(how + '\n' + r.stdout + r.stderr)
    only_eperm = all(('Operation not permitted' in l and 'rename' in l) or l.startswith('rsync error') for l in r.stderr.splitlines())
    if r.returncode != 0 and not (t.compacting() and r.returncode == 23 and only_eperm and how != 'rsync'):
        errs.append('restore rsync (%s) %s rc=%d %s' % (how, t.name, r.returncode, r.stderr[-800:]))
    r = subprocess.run(['rsync', '-aXi', src, dst], capture_output=True, text=True)
    if r.stdout.strip() or r.returncode != 0:
        present = set(x for x in os.listdir(dst) if x.isdigit())
        items = [l.split()[-1] for l in r.stdout.splitlines() if l.strip()]
        if not (t.compacting() and r.returncode == 23 and all(i not in present for i in items)):
            errs.append('second restore rsync (%s) %s rc=%d: %s %s' % (how, t.name, r.returncode, r.stdout[-800:], r.stderr[-300:]))
    return errs


def rec_file_view_plain(d):
    out = {}
    for x in sorted(os.listdir(d)):
        if not x.isdigit():
            continue
        p = d + '/' + x
        with open(p, 'rb') as f:
            data = f.read()
        xa = {a: os.getxattr(p, a) for a in os.listxattr(p)}
        hd = sorted((a[len('user.streambus.header.'):], v) for a, v in xa.items()
                    if a.startswith('user.streambus.header.'))
        out[int(x)] = dict(value=data, key=xa.get('user.streambus.key'), tomb='user.streambus.tombstone' in xa,
                           headers=hd, ts=int(xa['user.streambus.timestamp']) if 'user.streambus.timestamp' in xa else None)
    return out


if __name__ == '__main__':
    ok = 0
    seeds = [int(x) for x in sys.argv[1:]]
    for s in seeds:
        ok += run(s)
    print('%d of %d seeds clean' % (ok, len(seeds)))
