#!/usr/bin/env python3
"""data_view.py SEED... - readers of .log and .since/ held open across compaction
(and compression) while a writer appends keyed records and tombstones: every byte
a reader gets, read sequentially from its open, must parse as whole records in
increasing offset order, each equal to the model's record at that offset; every
unkeyed record past the reader's start must be there; nothing twice."""
import os, sys, random, time, threading, shutil, hashlib, traceback, re
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_lib import *

def rec(off, key, n, rng):
    body = b'o=%d:k=%s:' % (off, key or b'-') + bytes([rng.randint(97, 122)]) * n
    return body + b':' + hashlib.sha1(body).hexdigest()[:10].encode() + b'\n'

def parse(stream):
    out = []
    for line in stream.split(b'\n')[:-1]:
        body, _, h = line.rpartition(b':')
        if hashlib.sha1(body).hexdigest()[:10].encode() != h:
            out.append(('BAD', line[:60]))
            continue
        m = re.match(rb'o=(\d+):k=([^:]*):', body)
        out.append((int(m.group(1)), line + b'\n'))
    return out, stream.endswith(b'\n') or not stream

def run(seed):
    rng = random.Random(seed)
    base = '%s/view%d' % (ROOT, seed)
    shutil.rmtree(base, ignore_errors=True); os.makedirs(base)
    L, M = base + '/L', base + '/M'
    cfg = dict(cleanup=rng.choice(['compact', 'compact,delete']), compression=rng.choice(['none', 'lz4', 'zstd']),
               segment_bytes=4096, delete_retention_ms=rng.choice([0, 100]), compression_block_bytes=1024)
    write_ini(base + '/a.ini', L, M, {}, {'t': cfg})
    m = Mount(base + '/a.ini', M, base + '/a.err')
    model = []
    stop = threading.Event()
    errs = []
    lock = threading.Lock()

    def writer():
        wr = random.Random(seed + 1000)
        try:
            while not stop.is_set():
                x = wr.random()
                with lock:
                    off = len(model)
                    if x < 0.25:
                        v = rec(off, None, wr.randint(0, 400), wr)
                        with open(M + '/t/.log', 'ab') as f:
                            f.write(v)
                        model.append((v, None))
                    elif x < 0.9:
                        k = b'k%d' % wr.randint(0, 5)
                        v = rec(off, k, wr.randint(0, 400), wr)
                        with open(M + '/t/.keys/' + k.decode(), 'wb') as f:
                            f.write(v)
                        model.append((v, k))
                    else:
                        k = b'k%d' % wr.randint(0, 5)
                        try:
                            os.unlink(M + '/t/.keys/' + k.decode())
                            model.append((b'', k))
                        except FileNotFoundError:
                            pass
                time.sleep(0.002)
        except Exception:
            errs.append('writer: ' + traceback.format_exc()[-600:])

    def reader(i, path):
        rr = random.Random(seed * 10 + i)
        try:
            time.sleep(rr.uniform(0.2, 1.5))
            with lock:
                at_open = len(model)
                listed = sorted(int(x) for x in os.listdir(M + '/t') if x.isdigit())
            fd = os.open(path, os.O_RDONLY)
            data = b''
            t_end = time.time() + rr.uniform(2, 4)
            while time.time() < t_end:
                b = os.read(fd, rr.choice([1, 100, 4096]))
                data += b
                time.sleep(0.01 if b else 0.1)
            # drain
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                data += b
            os.close(fd)
            recs, whole = parse(data)
            last = -1
            seen = set()
            for o, line in recs:
                if o == 'BAD':
                    errs.append('reader %d (%s): damaged line %r' % (i, path[-20:], line))
                    continue
                if o <= last:
                    errs.append('reader %d (%s): offset %d after %d' % (i, path[-20:], o, last))
                last = o
                if model[o][0] != line:
                    errs.append('reader %d: offset %d differs from model' % (i, o))
            got = set(o for o, _ in recs if o != 'BAD')
            first = min(got) if got else None
            if first is not None and path.endswith('.log'):
                for o in range(first, last + 1):
                    if model[o][1] is None and o not in got:
                        errs.append('reader %d (%s): unkeyed offset %d missing (read %d..%d, opened at %d)' % (i, path[-20:], o, first, last, at_open))
                # the records listed at open, from the first read on, must all be there
                miss = [o for o in listed if o >= first and o not in got and model[o][0]]
                if miss:
                    errs.append('reader %d (%s): %d records listed at its open not read: %s' % (i, path[-20:], len(miss), miss[:10]))
            if not whole:
                errs.append('reader %d: partial record at the end' % i)
            return len(recs)
        except Exception:
            errs.append('reader %d: %s' % (i, traceback.format_exc()[-600:]))

    nread = []
    try:
        m.start()
        os.mkdir(M + '/t')
        th = threading.Thread(target=writer); th.start()
        time.sleep(0.5)
        rs = []
        for i in range(4):
            if i % 2 == 0:
                p = M + '/t/.log'
            else:
                p = M + '/t/.since/-%ds' % rng.randint(0, 2)
            rt = threading.Thread(target=lambda i=i, p=p: nread.append(reader(i, p)))
            rt.start(); rs.append(rt)
        for rt in rs:
            rt.join()
        stop.set(); th.join()
        m.stop()
    except Exception:
        errs.append(traceback.format_exc()[-800:])
    finally:
        stop.set()
        m.cleanup()
    print('seed %d: %s, %d records, readers read %s, %d errors' % (seed, cfg, len(model), nread, len(errs)))
    for e in errs[:12]:
        print('   ', e)
    return not errs

if __name__ == '__main__':
    seeds = [int(x) for x in sys.argv[1:]]
    ok = sum(run(s) for s in seeds)
    print('%d of %d seeds clean' % (ok, len(seeds)))
