#!/usr/bin/env python3
"""data_livecopy.py SEED... - copy LOG_DIR itself (cp -a, rsync -a, tar) while the
mount is busy writing (keyed, unkeyed, tombstones) into compacting, compressed
topics with small segments; every copy must recover (mount), pass verify, and hold
a prefix of the log: each record it has equals the model's at that offset, no
unkeyed record below its end missing, .keys/ == the model's latest per key of
that prefix.
"""
import os, sys, random, subprocess, time, threading, shutil, traceback
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *


def run(seed):
    rng = random.Random(seed)
    base = '%s/live%d' % (ROOT, seed)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    L, M = base + '/L', base + '/M'
    topics = ['a', 'b']
    cfg = {}
    for t in topics:
        cfg[t] = dict(cleanup=rng.choice(['compact', 'compact,delete']), compression=rng.choice(['none', 'lz4', 'zstd']),
                      segment_bytes=4096, delete_retention_ms=rng.choice([0, 100, 1000]),
                      sync=rng.choice(['never', 'interval', 'always']))
    write_ini(base + '/a.ini', L, M, {}, cfg)
    m = Mount(base + '/a.ini', M, base + '/a.err')
    model = {t: [] for t in topics}  # list of (value, key, tomb)
    lock = threading.Lock()
    stop = threading.Event()
    errs = []
    keys = ['k%d' % i for i in range(12)] + ['odd%2Fk', 'sp ace']

    def writer():
        wr = random.Random(seed * 7 + 1)
        try:
            while not stop.is_set():
                t = wr.choice(topics)
                d = M + '/' + t
                x = wr.random()
                if x < 0.3:
                    v = ('u%d:' % len(model[t])).encode() + b'x' * wr.randint(0, 3000) + b'\n'
                    with lock:
                        with open(d + '/.log', 'ab') as f:
                            f.write(v)
                        model[t].append((v, None, False))
                elif x < 0.85:
                    k = wr.choice(keys)
                    v = ('%s=%d:' % (k, len(model[t]))).encode() + bytes([wr.randint(65, 90)]) * wr.randint(0, 2000)
                    with lock:
                        with open(d + '/.keys/' + k, 'wb') as f:
                            f.write(v)
                        model[t].append((v, k.replace('%2F', '/').encode(), False))
                else:
                    k = wr.choice(keys)
                    with lock:
                        try:
                            os.unlink(d + '/.keys/' + k)
                            model[t].append((b'', k.replace('%2F', '/').encode(), True))
                        except FileNotFoundError:
                            pass
        except Exception:
            errs.append('writer: ' + traceback.format_exc()[-800:])

    copies = []
    try:
        m.start()
        for t in topics:
            os.mkdir(M + '/' + t)
        th = threading.Thread(target=writer)
        th.start()
        for i in range(rng.randint(3, 5)):
            time.sleep(rng.uniform(0.3, 1.5))
            how = rng.choice(['cp', 'rsync', 'tar'])
            c = '%s/copy%d' % (base, i)
            if how == 'cp':
                r = subprocess.run(['cp', '-a', L, c], capture_output=True, text=True)
            elif how == 'rsync':
                r = subprocess.run(['rsync', '-a', L + '/', c + '/'], capture_output=True, text=True)
            else:
                os.makedirs(c)
                r = subprocess.run('tar -C %s -cf - . | tar -C %s -xf -' % (L, c), shell=True, capture_output=True, text=True)
            copies.append((c, how, r.returncode, r.stderr[-300:]))
        stop.set()
        th.join()
        m.stop()
    except Exception:
        errs.append(traceback.format_exc()[-1500:])
    finally:
        stop.set()
        m.cleanup()
    # check each copy
    for c, how, rc, err in copies:
        try:
            if os.path.exists(c + '/.lock'):
                os.unlink(c + '/.lock')
            r = tool('recover', c, check=False)
            rcv = r.returncode
            if rcv != 0:
                errs.append('%s (%s rc=%d): recover rc=%d: %s' % (c, how, rc, rcv, r.stderr.decode()[-400:] + r.stdout.decode()[-400:]))
            r = tool('verify', c, check=False)
            if r.returncode != 0 and rcv == 0:
                errs.append('%s (%s rc=%d): verify after recover rc=%d: %s' % (c, how, rc, r.returncode, r.stdout.decode()[-600:]))
            write_ini(c + '.ini', c, c + '.mnt', {}, cfg, create=False)
            mc = Mount(c + '.ini', c + '.mnt', c + '.err')
            try:
                mc.start()
                for t in topics:
                    d = c + '.mnt/' + t
                    if not os.path.isdir(d):
                        errs.append('%s (%s): topic %s not in the mounted copy' % (c, how, t))
                        continue
                    view = rec_file_view(d)
                    mod = model[t]
                    if not view:
                        continue
                    end = max(view) + 1
                    for o, v in view.items():
                        if o >= len(mod) or (v['value'], v['key'], v['tomb']) != mod[o]:
                            errs.append('%s (%s): %s offset %d differs from model: %r' % (c, how, t, o, (v['value'][:30], v['key'], v['tomb'])))
                    for o in range(end):
                        if mod[o][1] is None and o not in view:
                            errs.append('%s (%s): %s unkeyed offset %d missing (end %d)' % (c, how, t, o, end))
                    lat = {}
                    for o in range(end):
                        if mod[o][1] is not None:
                            lat[mod[o][1]] = o
                    exp = sorted(enc_key(k) for k, o in lat.items() if not mod[o][2])
                    got = sorted(os.listdir(d + '/.keys'))
                    if exp != got:
                        errs.append('%s (%s): %s .keys %r vs model-prefix %r' % (c, how, t, got, exp))
                    for k, o in lat.items():
                        if mod[o][2] or o >= end:
                            continue
                        try:
                            off = int(os.getxattr(d + '/.keys/' + enc_key(k), 'user.streambus.offset'))
                            if off != o:
                                errs.append('%s (%s): %s .keys/%s at %d, model %d' % (c, how, t, enc_key(k), off, o))
                        except OSError as e:
                            errs.append('%s: .keys/%s: %s' % (c, enc_key(k), e))
            finally:
                mc.cleanup()
        except Exception:
            errs.append('%s: %s' % (c, traceback.format_exc()[-1000:]))
    print('seed %d: %s, records %s, %d copies (%s), %d errors' % (seed, cfg, {t: len(model[t]) for t in topics},
          len(copies), ','.join(h for _, h, _, _ in copies), len(errs)))
    for x in errs[:20]:
        print('   ', x)
    return not errs


if __name__ == '__main__':
    seeds = [int(x) for x in sys.argv[1:]]
    ok = sum(run(s) for s in seeds)
    print('%d of %d seeds clean' % (ok, len(seeds)))
