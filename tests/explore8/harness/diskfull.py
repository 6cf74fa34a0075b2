#!/usr/bin/env python3
"""diskfull.py - LOG_DIR on a small tmpfs; writers run into ENOSPC, space is
freed, unmount/remount while full, verify/recover/verify; checked against a
model of the acknowledged appends.

  diskfull.py SEED... [--size 8m] [--keep]

Topics (cleanup=compact,delete, compression lz4/zstd, small segments):
  keep  no retention: lines to .log, created files (unique keys), .keys/ writes
        on a few keys; every acknowledged append must be there once, exact,
        each writer's in order; each key's latest value the model's
  ret   retention_bytes: lines of 2-6 KiB; what is there must be a suffix of
        each writer's acknowledged lines (retention drops only the oldest)
  junk  2 MiB written at the start; rm -r through the mount frees the disk

Phases: fill with a filler file present until every writer saw ENOSPC; check;
rm the filler; writers must succeed again; fill again with data alone;
unmount while full; verify/recover/verify while full; mount while full;
rm -r junk through the mount; writers must succeed again; unmount; verify;
dump --json against the model; mount and check through the mount.
"""
import os, sys, random, time, errno, hashlib, json, shutil, subprocess, threading, base64
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import *


def sha(b):
    return hashlib.sha1(b).hexdigest()[:10]


def mk(tag, n, fill):
    body = ('%s.%d.' % (tag, n) + fill).encode()
    return sha(body).encode() + b'.' + body + b'\n'


def valid(d):
    if not d.endswith(b'\n') or len(d) < 12:
        return False
    return sha(d[11:-1]) == d[:10].decode(errors='replace')


class Writer(threading.Thread):
    def __init__(self, name, mnt, kind, rng, journal, lock):
        super().__init__(daemon=True)
        self.name_, self.mnt, self.kind, self.rng = name, mnt, kind, rng
        self.j, self.lock = journal, lock
        self.n = 0
        self.stop = False
        self.enospc = 0
        self.ok_since = 0       # successes since the last ENOSPC
        self.succ = 0           # successes in all
        self.errs = {}
        self.keys = ['key%d' % i for i in range(6)]

    def rec(self, **kw):
        with self.lock:
            self.j.append(kw)

    def one(self):
        self.n += 1
        r = self.rng.random()
        if self.kind == 'lines':
            d = b''.join(mk(self.name_, self.n * 10 + i, 'x' * self.rng.choice([10, 200, 3000])) for i in range(self.rng.choice([1, 3])))
            fd = os.open(self.mnt + '/keep/.log', os.O_WRONLY | os.O_APPEND)
            try:
                self.rec(t='B', w=self.name_, topic='keep', v=d.decode())
                k = os.write(fd, d)
                if k != len(d):
                    self.rec(t='SHORT', w=self.name_, k=k)
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
            self.rec(t='A', w=self.name_, topic='keep', v=d.decode())
        elif self.kind == 'ret':
            d = mk(self.name_, self.n, 'r' * self.rng.randint(2000, 6000))
            fd = os.open(self.mnt + '/ret/.log', os.O_WRONLY | os.O_APPEND)
            try:
                self.rec(t='B', w=self.name_, topic='ret', v=d.decode())
                os.write(fd, d)
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
            self.rec(t='A', w=self.name_, topic='ret', v=d.decode())
        else:
            if r < 0.5:
                key = '%s_f%d' % (self.name_, self.n)
                path = self.mnt + '/keep/' + key
            else:
                key = self.rng.choice(self.keys)
                path = self.mnt + '/keep/.keys/' + key
            d = mk(self.name_, self.n, 'k' * self.rng.choice([0, 100, 5000, 30000]))
            self.rec(t='BK', w=self.name_, key=key, v=d.decode())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, d)
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
            self.rec(t='AK', w=self.name_, key=key, v=d.decode())

    def run(self):
        while not self.stop:
            try:
                self.one()
                self.ok_since += 1
                self.succ += 1
            except OSError as e:
                en = errno.errorcode.get(e.errno, str(e.errno))
                self.errs[en] = self.errs.get(en, 0) + 1
                self.rec(t='ERR', w=self.name_, errno=en)
                if e.errno == errno.ENOSPC:
                    self.enospc += 1
                    self.ok_since = 0
                    time.sleep(0.05)
                elif e.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.ENOENT):
                    time.sleep(0.2)
                else:
                    time.sleep(0.05)


def model_check(journal, recs_keep, recs_ret, keysview, problems, tag, after=None):
    """recs_*: [(off, key, bytes)]; keysview: key -> bytes or None; journal: as
    before the reads; after: as after them (what began meanwhile may be there)"""
    after = journal if after is None else after
    # keep: every A once, exact, per writer in order; B without A may be there (0 or 1 times)
    seen = {}
    for off, key, d in recs_keep:
        if not valid(d) and d:
            # a .log write of several lines: each line a record
            problems.append('%s: keep record %d not a valid payload: %r' % (tag, off, d[:60]))
        seen.setdefault((key, d), []).append(off)
    acked, begun = [], set()
    for j in after:
        if j['t'] == 'B' and j['topic'] == 'keep':
            for l in j['v'].encode().splitlines(keepends=True):
                begun.add((None, l))
        elif j['t'] == 'BK':
            begun.add((j['key'], j['v'].encode()))
    for j in journal:
        if j['t'] == 'A' and j['topic'] == 'keep':
            for l in j['v'].encode().splitlines(keepends=True):
                acked.append((j['w'], None, l))
        elif j['t'] == 'B' and j['topic'] == 'keep':
            for l in j['v'].encode().splitlines(keepends=True):
                begun.add((None, l))
        elif j['t'] == 'AK':
            acked.append((j['w'], j['key'], j['v'].encode()))
        elif j['t'] == 'BK':
            begun.add((j['key'], j['v'].encode()))
    used = set()
    last = {}
    for w, key, d in acked:
        offs = seen.get((key, d), [])
        if not offs:
            if key and not key.startswith(w + '_f'):
                continue   # a .keys/ key's older value: compaction may drop it
            problems.append('%s: keep: acknowledged %s %r lost' % (tag, key or 'line', d[:40]))
            continue
        if len(offs) > 1:
            problems.append('%s: keep: %s %r %d times (offsets %s)' % (tag, key or 'line', d[:40], len(offs), offs))
        o = offs[0]
        used.add(o)
        if o < last.get(w, -1):
            problems.append('%s: keep: writer %s out of order at %d' % (tag, w, o))
        last[w] = o
    for off, key, d in recs_keep:
        if off not in used and (key, d) not in begun:
            problems.append('%s: keep: stray record %d key %s %r' % (tag, off, key, d[:40]))
    # a write that failed (begun, never acknowledged): none of its lines or all (SPEC 3: nothing half-appended)
    acked_v = set(j['v'] for j in journal if j['t'] == 'A' and j['topic'] == 'keep')
    present = set(d for _, k, d in recs_keep if k is None)
    for j in journal:
        if j['t'] == 'B' and j['topic'] == 'keep' and j['v'] not in acked_v:
            ls = j['v'].encode().splitlines(keepends=True)
            n = sum(1 for l in ls if l in present)
            if 0 < n < len(ls):
                problems.append('%s: keep: a failed write of %d lines is half there (%d lines)' % (tag, len(ls), n))
    # keys: latest acknowledged value (or begun-not-acked after it)
    latest = {}
    for i, j in enumerate(after):
        if j['t'] == 'AK' and not j['key'].startswith(j['w'] + '_f') and i < len(journal):
            latest[j['key']] = {j['v']}
        elif j['t'] == 'BK' and not j['key'].startswith(j['w'] + '_f'):
            latest.setdefault(j['key'], set()).add(j['v'])
    ackd = set(j['key'] for j in journal if j['t'] == 'AK')
    for k, vs in latest.items():
        if k not in ackd:
            continue
        got = keysview.get(k)
        if got is None or got.decode() not in vs:
            problems.append('%s: key %s: .keys/ shows %r, want one of %d (last acked or in flight)' % (tag, k, (got or b'')[:30], len(vs)))
    # ret: a suffix of each writer's acknowledged lines, exact
    present = set()
    for off, key, d in recs_ret:
        if not valid(d):
            problems.append('%s: ret record %d not valid: %r' % (tag, off, d[:40]))
        present.add(d)
    per = {}
    for j in journal:
        if j['t'] == 'A' and j['topic'] == 'ret':
            per.setdefault(j['w'], []).append(j['v'].encode())
    for w, ls in per.items():
        flags = [l in present for l in ls]
        if True in flags:
            first = flags.index(True)
            missing = [i for i in range(first, len(ls)) if not flags[i]]
            if missing:
                problems.append('%s: ret: writer %s: %d acknowledged lines missing after the retention head (first at %d of %d)'
                                % (tag, w, len(missing), missing[0], len(ls)))


def read_mount(mnt, topic):
    out = []
    for n in sorted(x for x in os.listdir('%s/%s' % (mnt, topic)) if x.isdigit()):
        p = '%s/%s/%s' % (mnt, topic, n)
        try:
            with open(p, 'rb') as f:
                d = f.read()
        except FileNotFoundError:
            continue
        try:
            os.getxattr(p, 'user.streambus.tombstone')
            continue
        except OSError:
            pass
        try:
            k = os.getxattr(p, 'user.streambus.key').decode()
        except OSError:
            k = None
        out.append((int(n), k, d))
    return out


def keys_mount(mnt):
    out = {}
    for k in os.listdir(mnt + '/keep/.keys'):
        if k.startswith('key'):
            with open(mnt + '/keep/.keys/' + k, 'rb') as f:
                out[k] = f.read()
    return out


def read_dump(logdir, topic, problems, tag):
    rc, recs, err = dump_json(logdir, topic)
    if rc != 0:
        problems.append('%s: dump %s rc %d: %s' % (tag, topic, rc, err[-300:]))
    out = []
    for r in recs:
        if r.get('tombstone'):
            continue
        v = r['value'].encode() if 'value' in r else base64.b64decode(r.get('value_base64', ''))
        out.append((r['offset'], r.get('key'), v))
    return out


def run_seed(seed, size, keep):
    rng = random.Random(seed)
    base = '/tmp/t8/df-%s' % seed
    if is_mounted(base + '/fs/mnt'):
        force_umount(base + '/fs/mnt')
    if is_mounted(base + '/fs'):
        subprocess.run(['umount', base + '/fs'])
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base + '/fs')
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size, 'tmpfs', base + '/fs'], check=True)
    logdir, mnt = base + '/fs/log', base + '/mnt'
    os.makedirs(logdir)
    os.makedirs(mnt)
    errlog = base + '/daemon.log'
    comp = rng.choice(['lz4', 'zstd'])
    opts = 'cleanup=compact,delete,compression=%s,segment_bytes=%d,sync=%s,index_interval_bytes=%d,delete_retention_ms=%d' % (
        comp, rng.choice([16384, 65536, 262144]), rng.choice(['never', 'interval', 'always']),
        rng.choice([512, 4096]), rng.choice([0, 86400000]))
    print('seed %s: size %s opts %s' % (seed, size, opts), flush=True)
    problems = []
    journal = []
    lock = threading.Lock()
    ws = []
    try:
        # retention for ret only: a [topic:ret] section through a config file
        ini = base + '/m.ini'
        with open(ini, 'w') as f:
            f.write('[log]\n')
            for kv in opts.replace('compact,delete', 'compact+delete').split(','):
                k, v = kv.split('=')
                f.write('%s = %s\n' % (k, v))
            f.write('[topic:ret]\nretention_bytes = %d\ncleanup = delete\n' % rng.choice([300000, 1000000]))
        def do_mount():
            with open(errlog, 'a') as e:
                e.write('=== mount %s\n' % time.strftime('%T'))
                e.flush()
                r = subprocess.run(['timeout', '60', FS, '-c', ini, logdir, mnt], stdout=e, stderr=e)
            if r.returncode != 0 or not is_mounted(mnt):
                raise Fail('mount failed rc=%d (see %s)' % (r.returncode, errlog))
        do_mount()
        for t in ('keep', 'ret', 'junk'):
            os.mkdir(mnt + '/' + t)
        with open(mnt + '/junk/.log', 'ab') as f:
            for i in range(2048):
                f.write(mk('junk', i, base64.b64encode(os.urandom(750)).decode()))
        # the filler: most of what is left
        st = os.statvfs(base + '/fs')
        free = st.f_bavail * st.f_frsize
        subprocess.run(['dd', 'if=/dev/zero', 'of=%s/fs/filler' % base, 'bs=64k',
                        'count=%d' % max(1, (free - 1500000) // 65536)], capture_output=True)
        ws = [Writer('L%d' % i, mnt, 'lines', random.Random('%s-L%d' % (seed, i)), journal, lock) for i in range(2)] + \
             [Writer('F0', mnt, 'files', random.Random('%s-F' % seed), journal, lock),
              Writer('R0', mnt, 'ret', random.Random('%s-R' % seed), journal, lock)]
        for w in ws:
            w.start()

        def wait_enospc(what, limit=60):
            t0 = time.time()
            while time.time() - t0 < limit:
                if all(w.enospc >= 3 for w in ws if w.kind != 'ret'):
                    return True
                time.sleep(0.2)
            problems.append('%s: not every writer saw ENOSPC in %d s (%s)' % (what, limit, [(w.name_, w.enospc, w.errs) for w in ws]))
            return False

        def wait_ok(what, limit=30):
            t0 = time.time()
            s0 = {w.name_: w.succ for w in ws}
            while time.time() - t0 < limit:
                if all(w.succ >= s0[w.name_] + 3 for w in ws):
                    return True
                time.sleep(0.2)
            problems.append('%s: writers did not recover in %d s: %s' % (what, limit,
                            [(w.name_, w.succ - s0[w.name_], w.errs) for w in ws]))
            st = os.statvfs(base + '/fs')
            print('  %s: writers still failing, free %d bytes; du: %s' % (what, st.f_bavail * st.f_frsize,
                  subprocess.run(['du', '-sk'] + [logdir + '/' + t for t in os.listdir(logdir)], capture_output=True, text=True).stdout.replace('\n', ' ')), flush=True)
            if os.environ.get('DF_HOLD'):
                for w in ws:
                    w.stop = True
                print('  holding: mount %s, LOG_DIR %s; touch %s/go to go on' % (mnt, logdir, base), flush=True)
                while not os.path.exists(base + '/go'):
                    time.sleep(1)
            return False

        def quiesce():
            for w in ws:
                w.stop = True
            for w in ws:
                w.join(120)
                if w.is_alive():
                    problems.append('HANG: writer %s still in a call after 120 s' % w.name_)

        def restart():
            nonlocal ws
            nws = []
            for w in ws:
                nw = Writer(w.name_, mnt, w.kind, w.rng, journal, lock)
                nw.n = w.n + 1000
                nws.append(nw)
            ws = nws
            for w in ws:
                w.start()

        wait_enospc('phase 1 (filler)')
        # check while full
        j0 = list(journal)
        rk, rr, kv = read_mount(mnt, 'keep'), read_mount(mnt, 'ret'), keys_mount(mnt)
        model_check(j0, rk, rr, kv, problems, 'full-1', list(journal))
        os.unlink(base + '/fs/filler')
        wait_ok('after rm of the filler')
        time.sleep(rng.uniform(1, 4))
        # phase 2: fill with data alone
        wait_enospc('phase 2 (data)', 90)
        quiesce()
        pid = daemon_pid(logdir)
        umount(mnt, logdir)
        st = os.statvfs(base + '/fs')
        print('  unmounted while full (free %d bytes)' % (st.f_bavail * st.f_frsize), flush=True)
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('verify while full after a clean unmount: rc %d: %s' % (rc, (out.decode(errors='replace') + err)[-500:]))
        rc, out, err = tool('recover', logdir)
        print('  recover while full: rc %d %s' % (rc, (out.decode(errors='replace') + err).strip()[-200:]), flush=True)
        if rc == 2 and 'No space left on device' in err:
            pass   # README: recover on a full disk says "index not saved: No space left on device", exit 2
        elif rc not in (0,):
            problems.append('recover while full: rc %d: %s' % (rc, (out.decode(errors='replace') + err)[-500:]))
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('verify after recover while full: rc %d: %s' % (rc, (out.decode(errors='replace') + err)[-500:]))
        d_keep = read_dump(logdir, 'keep', problems, 'full-dump')
        d_ret = read_dump(logdir, 'ret', problems, 'full-dump')
        model_check(list(journal), d_keep, d_ret, {}, [], 'x')
        p2 = []
        model_check(list(journal), d_keep, d_ret, {k: None for k in []}, p2, 'dump-while-full')
        problems.extend(x for x in p2 if ': key ' not in x)
        do_mount()
        model_check(list(journal), read_mount(mnt, 'keep'), read_mount(mnt, 'ret'), keys_mount(mnt), problems, 'remount-full')
        # writes while still full must fail with ENOSPC, not anything else
        restart()
        time.sleep(2)
        # rm -r junk through the mount
        t0 = time.time()
        r = subprocess.run(['timeout', '60', 'rm', '-r', mnt + '/junk'], capture_output=True, text=True)
        st = os.statvfs(base + '/fs')
        print('  rm -r junk: rc %d in %.1f s, free now %d bytes' % (r.returncode, time.time() - t0, st.f_bavail * st.f_frsize), flush=True)
        if r.returncode != 0:
            problems.append('rm -r junk on a full disk: rc %d %s' % (r.returncode, r.stderr[-300:]))
        wait_ok('after rm -r junk')
        time.sleep(rng.uniform(1, 3))
        quiesce()
        errs = {}
        for w in ws:
            for k, v in w.errs.items():
                errs[k] = errs.get(k, 0) + v
        odd = {k: v for k, v in errs.items() if k not in ('ENOSPC',)}
        if odd:
            problems.append('writers saw errors other than ENOSPC: %s' % odd)
        m_keep, m_ret, m_keys = read_mount(mnt, 'keep'), read_mount(mnt, 'ret'), keys_mount(mnt)
        model_check(list(journal), m_keep, m_ret, m_keys, problems, 'end-mount')
        umount(mnt, logdir)
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('final verify: rc %d: %s' % (rc, (out.decode(errors='replace') + err)[-500:]))
        d_keep = read_dump(logdir, 'keep', problems, 'final-dump')
        if not set(d_keep) <= set(m_keep):
            problems.append('final dump of keep has records the mount did not serve')
        do_mount()
        model_check(list(journal), read_mount(mnt, 'keep'), read_mount(mnt, 'ret'), keys_mount(mnt), problems, 'final-remount')
        umount(mnt, logdir)
        na = sum(1 for j in journal if j['t'] in ('A', 'AK'))
        ne = sum(1 for j in journal if j['t'] == 'ERR')
        print('seed %s: %d acknowledged appends, %d errors %s, %d records in keep, %d problems'
              % (seed, na, ne, errs, len(m_keep), len(problems)), flush=True)
    except Fail as e:
        problems.append('FAIL %s' % e)
    finally:
        for w in ws:
            w.stop = True
        if is_mounted(mnt):
            force_umount(mnt, logdir)
        with open(base + '/journal.json', 'w') as f:
            json.dump(journal, f)
        subprocess.run(['umount', base + '/fs'], capture_output=True)
    for p in problems[:30]:
        print('  PROBLEM', p, flush=True)
    if not problems and not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def main():
    a = sys.argv[1:]
    size, keep, seeds = '8m', False, []
    i = 0
    while i < len(a):
        if a[i] == '--size':
            size = a[i + 1]; i += 2
        elif a[i] == '--keep':
            keep = True; i += 1
        else:
            seeds.append(a[i]); i += 1
    os.makedirs('/tmp/t8', exist_ok=True)
    bad = sum(1 for s in seeds if run_seed(s, size, keep))
    print('%d of %d seeds with problems' % (bad, len(seeds)))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
