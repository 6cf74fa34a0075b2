#!/usr/bin/env python3
"""big.py - records of 1 MiB and at max_record_bytes with compression, keys
and compaction; .since/ on the compacted, compressed topic; tail -f across
compaction (and retention) checked against the appends.

  big.py SEED... [--keep]

Per seed: cleanup=compact(,delete), lz4 or zstd with a random block size,
small segments.  A writer appends a mix: unkeyed lines (some of
max_record_bytes exactly, newline included), keyed files of 0..max bytes
(random or compressible), .keys/ writes over a few keys, writes of max+1
(EFBIG, nothing appended).  `tail -c +1 -f .log` runs from the start (and
`streambus dump --follow`).  Then: wait for compaction and compression;
every record through the mount against the model (payload exact, keyed
records: the latest of each key present, older ones absent or exact), .log
equal to the records back to back, dd of .log at random offsets, .since/
at each record's time starting at that record or the first after it (by
running max), the tail output: every unkeyed line once, in order, every
chunk a whole record; unmount; verify; dump --json; get of each key;
remount; the same.
"""
import os, sys, random, time, errno, hashlib, json, shutil, subprocess, base64, signal
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import *


def sha(b):
    return hashlib.sha1(b).hexdigest()[:12]


def payload(rng, tag, n, size, line):
    head = ('%s.%d.' % (tag, n)).encode()
    if size <= len(head) + 14:
        size = len(head) + 14
    nbody = size - len(head) - 13 - (1 if line else 0)
    if rng.random() < 0.5:
        body = base64.b64encode(b''.join(os.urandom(65536) for _ in range(nbody // 49152 + 1)))[:nbody]
    else:
        body = (b'%d:' % n) * (nbody // 2 + 1)
        body = body[:nbody]
    if line:
        body = body.replace(b'\n', b'-')
    core = head + body
    d = sha(core).encode() + b'.' + core + (b'\n' if line else b'')
    assert len(d) == size, (len(d), size)
    return d


def run_seed(seed, keep):
    rng = random.Random(seed)
    base = '/tmp/t8/big-%s' % seed
    shutil.rmtree(base, ignore_errors=True)
    logdir, mnt = base + '/log', base + '/mnt'
    os.makedirs(logdir)
    os.makedirs(mnt)
    errlog = base + '/daemon.log'
    maxrec = rng.choice([1048576, 2 * 1048576, 300000])
    ret = rng.random() < 0.3
    opts = 'cleanup=%s,compression=%s,compression_block_bytes=%d,segment_bytes=%d,max_record_bytes=%d,sync=%s,delete_retention_ms=0' % (
        'compact,delete' if ret else 'compact', rng.choice(['lz4', 'zstd']), rng.choice([1024, 65536, 1 << 20, 4 << 20]),
        rng.choice([65536, 1 << 20, 4 << 20]), maxrec, rng.choice(['never', 'interval']))
    if ret:
        opts += ',retention_bytes=%d' % rng.choice([8 << 20, 20 << 20])
    print('seed %s: %s' % (seed, opts), flush=True)
    problems = []
    written = []   # (kind, key, bytes, time_ns_before)
    tails = []
    try:
        try:
            mount(logdir, mnt, opts, errlog)
        except Fail:
            # compression_block_bytes may not be the key's name: fall back without it
            opts = ','.join(o for o in opts.split(',') if not o.startswith('compression_block'))
            print('  (retrying without the block size) %s' % opts)
            mount(logdir, mnt, opts, errlog)
        os.mkdir(mnt + '/t')
        tf = open(base + '/tail.out', 'wb')
        tail = subprocess.Popen(['tail', '-c', '+1', '-f', mnt + '/t/.log'], stdout=tf, stderr=open(base + '/tail.err', 'wb'))
        df = open(base + '/follow.out', 'wb')
        follow = None
        keys = ['big%d' % i for i in range(4)]
        nops = rng.randint(40, 90)
        for n in range(nops):
            r = rng.random()
            size = min(maxrec, rng.choice([0, 1, 100, 1000, 65536, 1048576 - 1, 1048576, maxrec - 1, maxrec, rng.randint(1, maxrec)]))
            t0 = time.time_ns()
            if r < 0.35:
                d = payload(rng, 'L', n, max(size, 16), True)
                with open(mnt + '/t/.log', 'ab') as f:
                    f.write(d)
                written.append(('L', None, d, t0))
            elif r < 0.6:
                key = 'f%d' % n
                d = payload(rng, 'F', n, size, False) if size else b''
                with open(mnt + '/t/' + key, 'wb') as f:
                    f.write(d)
                written.append(('F', key, d, t0))
            elif r < 0.85:
                key = rng.choice(keys)
                d = payload(rng, 'K', n, size, False) if size else b''
                with open(mnt + '/t/.keys/' + key, 'wb') as f:
                    f.write(d)
                written.append(('K', key, d, t0))
            else:
                d = payload(rng, 'X', n, maxrec + 1, rng.random() < 0.5)
                try:
                    if d.endswith(b'\n'):
                        with open(mnt + '/t/.log', 'ab') as f:
                            f.write(d)
                    else:
                        with open(mnt + '/t/x%d' % n, 'wb') as f:
                            f.write(d)
                    problems.append('a record of max_record_bytes+1 (%d) was accepted' % len(d))
                except OSError as e:
                    if e.errno != errno.EFBIG:
                        problems.append('max+1: errno %s, want EFBIG' % errno.errorcode.get(e.errno))
            if n == 3:
                follow = subprocess.Popen([TOOL, 'dump', '--raw', '--follow', logdir, 't'], stdout=df, stderr=open(base + '/follow.err', 'wb'))
        # let compaction and compression run
        time.sleep(rng.uniform(3, 8))
        # let tail catch up: until its output holds the last line written, or 60 s
        lastl = [d for k, _, d, _ in written if k == 'L'][-1:]
        t0 = time.time()
        while lastl and time.time() - t0 < 60:
            tf.flush()
            with open(base + '/tail.out', 'rb') as f:
                f.seek(max(0, os.path.getsize(base + '/tail.out') - 3 * len(lastl[0]) - 4 * maxrec))
                if lastl[0] in f.read():
                    break
            time.sleep(1)
        tail.send_signal(signal.SIGTERM)
        tail.wait()
        tf.close()
        if follow:
            follow.send_signal(signal.SIGTERM)
            try:
                follow.wait(10)
            except subprocess.TimeoutExpired:
                problems.append('dump --follow did not end on SIGTERM')
                follow.kill()
        df.close()
        last_of = {}
        for i, (k, key, d, t) in enumerate(written):
            if key:
                last_of[key] = i

        def check_mount(tag):
            recs = []
            for nm in sorted(x for x in os.listdir(mnt + '/t') if x.isdigit()):
                p = mnt + '/t/' + nm
                try:
                    with open(p, 'rb') as f:
                        d = f.read()
                    try:
                        os.getxattr(p, 'user.streambus.tombstone')
                        continue
                    except OSError:
                        pass
                    try:
                        k = os.getxattr(p, 'user.streambus.key').decode()
                    except OSError:
                        k = None
                    ts = int(os.getxattr(p, 'user.streambus.timestamp'))
                except FileNotFoundError:
                    continue
                except OSError as e:
                    problems.append('%s: record %s: %s' % (tag, nm, e))
                    continue
                recs.append((int(nm), k, d, ts))
            have = {}
            for off, k, d, ts in recs:
                have.setdefault((k, d), []).append(off)
            order = []
            start_gone = False
            for i, (kind, key, d, t) in enumerate(written):
                offs = have.get((key, d), [])
                must = kind == 'L' or (key and last_of[key] == i)
                if len(offs) > 1 and kind != 'K':
                    problems.append('%s: %s %s (%d bytes) %d times' % (tag, kind, key, len(d), len(offs)))
                if must and not offs and not ret:
                    problems.append('%s: %s %s (%d bytes) missing' % (tag, kind, key, len(d)))
                if offs:
                    order.append(offs[0])
            known = set((key, d) for _, key, d, _ in written)
            for off, k, d, ts in recs:
                if (k, d) not in known:
                    problems.append('%s: record %d (key %s, %d bytes) not written by us: %r' % (tag, off, k, len(d), d[:40]))
            # .log: the records back to back
            with open(mnt + '/t/.log', 'rb') as f:
                log = f.read()
            want = b''.join(d for _, _, d, _ in recs)
            if log != want:
                problems.append('%s: .log (%d bytes) is not the records back to back (%d bytes)' % (tag, len(log), len(want)))
            for _ in range(20):
                if not log:
                    break
                off = rng.randint(0, len(log) - 1)
                n = rng.choice([1, 4096, 100000, 1 << 20])
                r = subprocess.run(['dd', 'if=' + mnt + '/t/.log', 'bs=65536', 'skip=%d' % off, 'count=%d' % n, 'iflag=skip_bytes,count_bytes', 'status=none'],
                                   capture_output=True)
                if r.stdout != log[off:off + n]:
                    problems.append('%s: dd of .log at %d n %d differs' % (tag, off, n))
            # .since/ at each record's time: starts at the first record whose running-max time >= T
            runmax, rm = [], 0
            for off, k, d, ts in recs:
                rm = max(rm, ts)
                runmax.append(rm)
            for j in rng.sample(range(len(recs)), min(8, len(recs))):
                T = recs[j][3]
                first = next(i for i in range(len(recs)) if runmax[i] >= T)
                exp = b''.join(d for _, _, d, _ in recs[first:])
                name = '@%d.%09d' % (T // 10 ** 9, T % 10 ** 9)
                try:
                    with open(mnt + '/t/.since/' + name, 'rb') as f:
                        got = f.read()
                except OSError as e:
                    problems.append('%s: .since/%s: %s' % (tag, name, e))
                    continue
                if got != exp:
                    problems.append('%s: .since/%s: %d bytes, want %d (from record %d)' % (tag, name, len(got), len(exp), recs[first][0]))
            return recs

        recs = check_mount('mount')
        # tail -f output: chunks of whole records; every L once, in order
        with open(base + '/tail.out', 'rb') as f:
            tout = f.read()
        tl = tout.split(b'\n')
        pos = 0
        seen = {}
        lines_written = [d for k, _, d, _ in written if k == 'L']
        for d in lines_written:
            i = tout.find(d)
            c = tout.count(d)
            if c == 0 and not ret:
                problems.append('tail -f missed a line of %d bytes' % len(d))
            elif c > 1:
                problems.append('tail -f printed a line of %d bytes %d times' % (len(d), c))
            if i >= 0:
                if i < pos:
                    problems.append('tail -f out of order')
                pos = i
        terr = open(base + '/tail.err', 'rb').read()
        if terr.strip():
            problems.append('tail -f said: %r' % terr[:200])
        # every byte of the tail output belongs to a written payload
        allp = b''.join(d for _, _, d, _ in written)
        with open(base + '/follow.out', 'rb') as f:
            fout = f.read()
        for d in lines_written[5:]:
            if fout.count(d) > 1:
                problems.append('dump --follow printed a line twice')
        ferr = open(base + '/follow.err', 'rb').read()
        if ferr.strip():
            problems.append('dump --follow said: %r' % ferr[:300])
        umount(mnt, logdir)
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('verify rc %d: %s' % (rc, err[-300:]))
        rc, drecs, err = dump_json(logdir, 't')
        if rc != 0:
            problems.append('dump rc %d: %s' % (rc, err[-300:]))
        dm = [(r['offset'], r.get('key'), r['value'].encode() if 'value' in r else base64.b64decode(r.get('value_base64', '')))
              for r in drecs if not r.get('tombstone')]
        if not set(dm) <= set((o, k, d) for o, k, d, _ in recs) and not ret:
            problems.append('dump --json has records the mount did not serve')
        for key, i in last_of.items():
            kind, _, d, _ = written[i]
            rc, out, err = tool('get', logdir, 't', key)
            if (rc, out) != (0, d) and not ret:
                problems.append('get %s: rc %d, %d bytes, want %d' % (key, rc, len(out), len(d)))
        mount(logdir, mnt, opts, errlog)
        time.sleep(1)
        check_mount('remount')
        umount(mnt, logdir)
        print('seed %s: %d appends (%d MB), %d records, tail %d bytes, %d problems' % (
            seed, len(written), sum(len(d) for _, _, d, _ in written) >> 20, len(recs), len(tout), len(problems)), flush=True)
    except Fail as e:
        problems.append('FAIL %s' % e)
    finally:
        if is_mounted(mnt):
            force_umount(mnt, logdir)
    for p in problems[:30]:
        print('  PROBLEM', p, flush=True)
    if not problems and not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def main():
    seeds = [a for a in sys.argv[1:] if not a.startswith('--')]
    keep = '--keep' in sys.argv
    os.makedirs('/tmp/t8', exist_ok=True)
    bad = sum(1 for s in seeds if run_seed(s, keep))
    print('%d of %d seeds with problems' % (bad, len(seeds)))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
