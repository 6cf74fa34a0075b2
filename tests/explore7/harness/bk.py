#!/usr/bin/env python3
"""bk.py SEED... - backups and restores of a compacting, compressed topic,
by seed.

A topic T (cleanup compact, random compression and small segments) gets
keyed (files, .keys/) and unkeyed (.log) records and tombstones; then:
  1. rsync -aX mnt/T/ bkm/T/  (backup through the mount), tar --xattrs of it,
     and rsync -a LOG_DIR/ bkl/ (a live copy while a writer runs)
  2. more writes, rm of keys; compaction runs
  3. rsync -aX bkm/T/ mnt/T/  back into the live topic: nothing may change
     but EPERM for the records compaction removed (README)
  4. rsync -aX bkm/T/ mnt/R1/ (cleanup compact): R1 == the backup
     (offsets, payloads, keys, tombstones, times); .keys/ == latest per key
  5. tar --xattrs --skip-old-files -xf of the tar into R2 (renamed): same
  6. cp -a bkm/T/* mnt/R3/: same
  7. the live LOG_DIR copy bkl mounts, verifies, and serves a prefix of
     what was served (every record it has is the same as the original's)
  8. unmount; rsync -a --delete bkl/ LOG_DIR/ (restore LOG_DIR): it mounts,
     serves bkl's records, .keys/ consistent, verify clean; then appends
     continue at the right offsets
"""
import os, sys, random, subprocess, time, shutil, hashlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t7
from t7 import Fail, mount, umount, write_ini, tool, payload, parse


def recs_of(d):
    out = {}
    for x in sorted(os.listdir(d)):
        if not x.isdigit():
            continue
        p = d + '/' + x
        with open(p, 'rb') as f:
            data = f.read()
        xa = {a: os.getxattr(p, a) for a in os.listxattr(p)}
        st = os.stat(p)
        out[int(x)] = (data, xa.get('user.streambus.key'), 'user.streambus.tombstone' in xa, st.st_mtime_ns)
    return out


def recs_and_log(d):
    r = recs_of(d)
    with open(d + '/.log', 'rb') as f:
        lg = f.read()
    if recs_of(d) != r:
        return None
    return r, lg


def keys_of(d):
    out = {}
    for k in os.listdir(d + '/.keys'):
        with open(d + '/.keys/' + k, 'rb') as f:
            out[k] = (f.read(), int(os.getxattr(d + '/.keys/' + k, 'user.streambus.offset')))
    return out


def latest(recs):
    lat = {}
    for o in sorted(recs):
        data, key, tomb, _ = recs[o]
        if key is not None:
            lat[key.decode()] = None if tomb else (data, o)
    return {k: v for k, v in lat.items() if v is not None}


def stable(fn, *a):
    last = None
    for i in range(40):
        try:
            s = fn(*a)
        except FileNotFoundError:
            time.sleep(0.3)
            continue
        if s == last and s is not None:
            return s
        last = s
        time.sleep(0.3)
    raise Fail('no stable view of %s' % (a,))


def writes(rng, d, n, w, seq0, keys):
    seq = seq0
    for i in range(n):
        r = rng.random()
        if r < 0.3:
            with open(d + '/.log', 'a') as f:
                f.write(payload(rng, w, seq, None, 'L', 300))
        elif r < 0.85:
            k = rng.choice(keys)
            p = d + ('/.keys/' if rng.random() < 0.5 else '/') + k
            with open(p, 'w') as f:
                f.write(payload(rng, w, seq, k, 'K', 300))
        else:
            k = rng.choice(keys)
            try:
                os.unlink(d + '/.keys/' + k)
            except FileNotFoundError:
                pass
        seq += 1
    return seq


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)


def compare(errs, what, got, want, times=True, compacted=True):
    miss = set(want) - set(got)
    if compacted:
        # compaction may remove a record whose key has a later one, or a tombstone
        lastk = {}
        for o in sorted(want):
            if want[o][1] is not None:
                lastk[want[o][1]] = o
        miss = {o for o in miss if not (want[o][1] is not None and (want[o][2] or lastk[want[o][1]] > o))}
    if miss or set(got) - set(want):
        errs.append('%s: offsets differ: missing %s extra %s' % (what, sorted(miss)[:10], sorted(set(got) - set(want))[:10]))
    for o in sorted(set(got) & set(want)):
        g, w = got[o], want[o]
        if g[0] != w[0] or g[1] != w[1] or g[2] != w[2]:
            errs.append('%s: offset %d differs: %r vs %r' % (what, o, g[:3], w[:3]))
            break
        if times and g[3] != w[3]:
            errs.append('%s: offset %d mtime %d vs %d' % (what, o, g[3], w[3]))
            break


def run(seed, base):
    rng = random.Random(seed)
    root = '%s/b%d' % (base, seed)
    shutil.rmtree(root, ignore_errors=True)
    log, mnt = root + '/log', root + '/mnt'
    os.makedirs(log)
    os.makedirs(mnt)
    errs = []
    g = {'segment_bytes': rng.choice([4096, 8192, 32768]),
         'index_interval_bytes': rng.choice([64, 4096]),
         'compression': rng.choice(['none', 'lz4', 'zstd']),
         'compression_block_bytes': rng.choice([1024, 65536]),
         'cleanup': 'compact',
         'delete_retention_ms': rng.choice([0, 86400000]),
         'key_memtable_bytes': rng.choice([4096, 4194304]),
         'sync': rng.choice(['always', 'interval', 'never'])}
    ini = root + '/mount.ini'
    write_ini(ini, log, mnt, g, {})
    keys = ['key%d' % i for i in range(rng.choice([3, 10, 40]))]
    try:
        mount(ini, log, mnt, root + '/daemon.err')
        T = mnt + '/T'
        os.mkdir(T)
        seq = writes(rng, T, rng.randint(50, 400), 1, 0, keys)
        time.sleep(rng.uniform(0, 2))
        # 1. backups
        os.makedirs(root + '/bkm', exist_ok=True)
        r = sh('rsync -aX %s/ %s/bkm/T/' % (T, root))
        if r.returncode not in (0, 23, 24):
            errs.append('rsync backup exit %d %s' % (r.returncode, r.stderr[-500:]))
        r = sh('tar -C %s --xattrs --xattrs-include="user.*" -cf %s/bk.tar T' % (mnt, root))
        if r.returncode not in (0, 1):
            errs.append('tar backup exit %d %s' % (r.returncode, r.stderr[-500:]))
        # a live copy of LOG_DIR while a writer runs
        pid = os.fork()
        if pid == 0:
            try:
                writes(random.Random(seed + 1), T, 150, 2, 0, keys)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 0.5))
        r = sh('rsync -a %s/ %s/bkl/' % (log, root))
        os.waitpid(pid, 0)
        served_before = stable(recs_of, T)
        # 2. more writes
        seq = writes(rng, T, rng.randint(50, 300), 1, seq, keys)
        time.sleep(rng.uniform(0.5, 3))
        now = stable(recs_of, T)
        bkm = recs_of(root + '/bkm/T')
        # 3. rsync back in
        r = sh('rsync -aX %s/bkm/T/ %s/' % (root, T))
        after = stable(recs_of, T)
        if r.returncode not in (0, 23):
            errs.append('rsync into the live topic exit %d %s' % (r.returncode, r.stderr[-500:]))
        for ln in r.stderr.splitlines():
            if 'Operation not permitted' not in ln and 'some files' not in ln and 'llistxattr' not in ln and ln.strip():
                errs.append('rsync back in: %s' % ln)
        # compaction may run meanwhile: compare offsets present in both
        extra = set(after) - set(now)
        new_ok = [o for o in extra if o >= max(now or [0])]
        if set(after) - set(now):
            errs.append('rsync back into the live topic added offsets %s' % sorted(extra)[:10])
        for o in set(after) & set(now):
            if after[o][:3] != now[o][:3]:
                errs.append('rsync back in changed offset %d' % o)
                break
        # 4. restore into a new compacted topic
        for name, cmd in [('R1', 'rsync -aX {bk}/ {mnt}/R1/'),
                          ('R2', 'cd {root} && mkdir -p tx && tar -C tx --xattrs --xattrs-include="user.*" -xf bk.tar && tar -C {mnt} --xattrs --xattrs-include="user.*" --skip-old-files --transform s,^T,R2, -xf bk.tar'),
                          ('R3', 'cp -a {bk}/* {mnt}/R3/')]:
            if name != 'R1':
                os.mkdir(mnt + '/' + name)
            else:
                os.mkdir(mnt + '/R1')
            r = sh(cmd.format(bk=root + '/bkm/T', mnt=mnt, root=root))
            if r.returncode != 0:
                errs.append('%s restore exit %d: %s' % (name, r.returncode, r.stderr[-800:]))
            got, lg = stable(recs_and_log, mnt + '/' + name)
            want = bkm
            if name == 'R2':
                want = recs_of(root + '/tx/T')
            compare(errs, name, got, want, times=(name != 'R2'))
            k = stable(keys_of, mnt + '/' + name)
            lat = latest(got)
            if {a: b[1] for a, b in k.items()} != {a: b[1] for a, b in lat.items()}:
                errs.append('%s: .keys %s != latest per key %s' % (name, sorted(k.items())[:5], sorted(lat.items())[:5]))
            if lg != b''.join(got[o][0] for o in sorted(got)):
                errs.append('%s: .log != records' % name)
        umount(mnt, log)
        r = tool(['verify', '-q', '--no-progress', log])
        if r.returncode != 0:
            errs.append('verify: %s' % r.stdout[-1000:])
        # 7. the live copy
        shutil.rmtree(root + '/bkl/.lock', ignore_errors=True)
        try:
            os.unlink(root + '/bkl/.lock')
        except OSError:
            pass
        m2 = root + '/mnt2'
        os.mkdir(m2)
        write_ini(root + '/m2.ini', root + '/bkl', m2, g, {})
        mount(root + '/m2.ini', root + '/bkl', m2, root + '/daemon2.err')
        try:
            cp = stable(recs_of, m2 + '/T')
            for o in cp:
                if o in served_before and cp[o][:3] != served_before[o][:3]:
                    errs.append('live copy: offset %d differs from what was served' % o)
                    break
            ck = stable(keys_of, m2 + '/T')
            if {a: b[1] for a, b in ck.items()} != {a: b[1] for a, b in latest(cp).items()}:
                errs.append('live copy: .keys != latest per key of its records')
        finally:
            umount(m2, root + '/bkl')
        r = tool(['verify', '-q', '--no-progress', root + '/bkl'])
        if r.returncode != 0:
            errs.append('verify of live copy: %s' % r.stdout[-1000:])
        # 8. restore LOG_DIR from that copy with rsync -a --delete, then mount and append
        r = sh('rsync -a --delete %s/bkl/ %s/' % (root, log))
        mount(ini, log, mnt, root + '/daemon.err')
        try:
            rs = stable(recs_of, mnt + '/T')
            compare(errs, 'LOG_DIR restored', rs, cp, times=True)
            rk = stable(keys_of, mnt + '/T')
            if {a: b[1] for a, b in rk.items()} != {a: b[1] for a, b in latest(rs).items()}:
                errs.append('restored LOG_DIR: .keys != latest per key')
            nxt = max(rs) + 1 if rs else 0
            with open(mnt + '/T/.log', 'a') as f:
                f.write(payload(rng, 9, 0, None, 'L', 10))
            rs2 = stable(recs_of, mnt + '/T')
            newo = sorted(set(rs2) - set(rs))
            if not newo or newo[0] < nxt:
                errs.append('append after LOG_DIR restore at %s, next was %d' % (newo, nxt))
        finally:
            umount(mnt, log)
        r = tool(['verify', '-q', '--no-progress', log])
        if r.returncode != 0:
            errs.append('verify after LOG_DIR restore: %s' % r.stdout[-1000:])
    except Fail as e:
        errs.append('FAIL %s' % e)
    finally:
        for m, l in ((mnt, log), (root + '/mnt2', root + '/bkl')):
            if os.path.isdir(m) and t7.is_mounted(m):
                try:
                    umount(m, l)
                except Fail:
                    t7.kill9(m, l)
                    t7.force_umount(m)
    if not errs:
        shutil.rmtree(root, ignore_errors=True)
    return errs, g


if __name__ == '__main__':
    os.makedirs(os.environ.get('T7_BASE', '/tmp/t7/runs'), exist_ok=True)
    nb = 0
    for s in map(int, sys.argv[1:]):
        t0 = time.time()
        errs, g = run(s, os.environ.get('T7_BASE', '/tmp/t7/runs'))
        nb += bool(errs)
        print('bk seed %d: %s (%.0f s) %s%s' % (s, 'FAIL' if errs else 'ok', time.time() - t0, g, ''.join('\n   ' + e for e in errs[:10])), flush=True)
    print('bk failing seeds', nb)
