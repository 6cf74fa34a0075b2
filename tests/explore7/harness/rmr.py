#!/usr/bin/env python3
"""rmr.py SEED... - rm -r of a busy topic (writers, compaction,
compression, a reader), mkdir of the same name at once, new writes:
the new topic holds only records written after its mkdir, its .keys/ only
their keys; the same after a remount (or a kill -9 and remount).
A kill -9 during rm -r: after the remount the topic holds a suffix of its
records (rm removes the oldest first) and verify is clean."""
import os, sys, random, subprocess, time, shutil, errno
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t7, bk
from t7 import Fail, mount, umount, write_ini, tool, payload, parse


def loose(d):
    out = {}
    for x in sorted(os.listdir(d)):
        if x.isdigit():
            try:
                with open(d + '/' + x, 'rb') as f:
                    data = f.read()
                xa = {a: os.getxattr(d + '/' + x, a) for a in os.listxattr(d + '/' + x)}
            except FileNotFoundError:
                continue
            out[int(x)] = (data, xa.get('user.streambus.key'), 'user.streambus.tombstone' in xa, 0)
    return out


def writer(mnt, w, stop, seed):
    rng = random.Random(seed)
    seq = 0
    while time.time() < stop:
        k = 'k%d' % rng.randint(0, 5)
        try:
            if rng.random() < 0.5:
                with open(mnt + '/T/.log', 'a') as f:
                    f.write(payload(rng, w, seq, None, 'L', 300))
            else:
                with open(mnt + '/T/.keys/' + k, 'w') as f:
                    f.write(payload(rng, w, seq, k, 'K', 300))
        except OSError as e:
            if e.errno in (errno.ENOTCONN, errno.ECONNABORTED):
                return
            time.sleep(0.01)
        seq += 1


def run(seed, base):
    rng = random.Random(seed)
    root = '%s/rm%d' % (base, seed)
    shutil.rmtree(root, ignore_errors=True)
    log, mnt = root + '/log', root + '/mnt'
    os.makedirs(log)
    os.makedirs(mnt)
    errs = []
    g = {'segment_bytes': rng.choice([4096, 8192]),
         'compression': rng.choice(['none', 'lz4', 'zstd']),
         'cleanup': rng.choice(['compact', 'delete', 'compact,delete']),
         'key_memtable_bytes': rng.choice([4096, 4194304]),
         'sync': rng.choice(['always', 'interval', 'never'])}
    ini = root + '/mount.ini'
    write_ini(ini, log, mnt, g, {})
    try:
        mount(ini, log, mnt, root + '/daemon.err')
        os.mkdir(mnt + '/T')
        for rnd in range(3):
            stop = time.time() + rng.uniform(1, 3)
            kids = []
            for w in range(2):
                pid = os.fork()
                if pid == 0:
                    try:
                        writer(mnt, rnd * 10 + w, stop, seed * 100 + rnd * 10 + w)
                    finally:
                        os._exit(0)
                kids.append(pid)
            time.sleep(rng.uniform(0.5, 1.5))
            crash = rng.random() < 0.4
            if crash:
                before = loose(mnt + '/T')
                p = subprocess.Popen(['rm', '-rf', mnt + '/T'], stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.01, 0.3))
                t7.kill9(mnt, log)
                p.wait()
                for k in kids:
                    os.waitpid(k, 0)
                t7.force_umount(mnt)
                mount(ini, log, mnt, root + '/daemon.err')
                if os.path.isdir(mnt + '/T'):
                    after, lg = bk.stable(bk.recs_and_log, mnt + '/T')
                    for o in after:
                        if o in before and after[o][:3] != before[o][:3]:
                            errs.append('round %d: offset %d changed across the killed rm -r' % (rnd, o))
                            break
                    # records written after `before` may be there too (writers ran on); the removed ones a prefix
                    gone = sorted(set(before) - set(after))
                    kept = sorted(set(before) & set(after))
                    if gone and kept and gone[-1] > kept[0] and g['cleanup'] == 'delete':
                        errs.append('round %d: rm -r killed: removed %s.. but kept %s.. below' % (rnd, gone[-3:], kept[:3]))
                    if lg != b''.join(after[o][0] for o in sorted(after)):
                        errs.append('round %d: .log != records after the killed rm -r' % rnd)
                    r = subprocess.run(['rm', '-rf', mnt + '/T'], capture_output=True, text=True)
                    if r.returncode:
                        errs.append('round %d: rm -r after remount: %s' % (rnd, r.stderr[-300:]))
            else:
                r = subprocess.run(['rm', '-rf', mnt + '/T'], capture_output=True, text=True)
                for ln in r.stderr.splitlines():
                    # writers keep writing: rmdir may meet new records (ENOTEMPTY)
                    if 'Directory not empty' not in ln and 'No such file' not in ln:
                        errs.append('round %d: rm -r: %s' % (rnd, ln))
                for k in kids:
                    os.waitpid(k, 0)
                r2 = subprocess.run(['rm', '-rf', mnt + '/T'], capture_output=True, text=True)
            if os.path.exists(mnt + '/T'):
                errs.append('round %d: T still there after rm -r: %s .keys %s; %s; LOG_DIR/T %s' % (rnd, os.listdir(mnt + '/T')[:5], os.listdir(mnt + '/T/.keys')[:5], r2.stderr.strip()[-300:], sorted(os.listdir(log + '/T'))[:8]))
                break
            os.mkdir(mnt + '/T')
            marker = payload(rng, 99, rnd, 'mark', 'K', 10)
            with open(mnt + '/T/.keys/mark', 'w') as f:
                f.write(marker)
            with open(mnt + '/T/.log', 'a') as f:
                f.write(payload(rng, 99, 1000 + rnd, None, 'L', 10))
            for phase in ('now', 'remount'):
                if phase == 'remount':
                    if rng.random() < 0.5:
                        umount(mnt, log)
                    else:
                        t7.kill9(mnt, log)
                        t7.force_umount(mnt)
                    mount(ini, log, mnt, root + '/daemon.err')
                recs, lg = bk.stable(bk.recs_and_log, mnt + '/T')
                ks = bk.stable(bk.keys_of, mnt + '/T')
                vals = [parse(v[0].decode()) for v in recs.values() if v[0]]
                old = [v for v in vals if v is None or v[0] != 99]
                if old or len(recs) != 2 or set(ks) != {'mark'}:
                    errs.append('round %d %s: new topic holds %d records (%d not its own: %s), keys %s' % (
                        rnd, phase, len(recs), len(old), old[:3], sorted(ks)[:8]))
            if errs:
                break
        umount(mnt, log)
        r = tool(['verify', '-q', '--no-progress', log])
        if r.returncode != 0:
            errs.append('verify: %s' % r.stdout[-1000:])
    except Fail as e:
        errs.append('FAIL %s' % e)
    finally:
        if t7.is_mounted(mnt):
            try:
                umount(mnt, log)
            except Fail:
                t7.kill9(mnt, log)
                t7.force_umount(mnt)
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
        print('rmr seed %d: %s (%.0f s) %s%s' % (s, 'FAIL' if errs else 'ok', time.time() - t0, g, ''.join('\n   ' + e[:500] for e in errs[:8])), flush=True)
    print('rmr failing seeds', nb)
