#!/usr/bin/env python3
"""t7.py - generated cases of StreamBus FS features combined, under
concurrency and crashes, checked against a model.

  t7.py SEED [--phases N] [--ops N] [--keep]

One case: a LOG_DIR with three topics, mounted again and again with random
settings (segment sizes, index intervals, sync, compression, cleanup,
retention, tombstone retention, key memtable), each mount a phase of
writers (lines to .log, files created in the topic, keyed writes to
.keys/K, rm .keys/K) and readers (tail -f .log, cat of records, ls .keys,
cat .since/) at once, ended by a clean unmount or a kill -9 of the daemon.
After each phase: remount at once and check through the mount against the
model; unmount; streambus verify; sometimes recover + verify.

Topics:
  kv    cleanup compact or compact,delete (no retention): keys owned by one
        writer each; the latest record of each key must be its writer's last
        acknowledged (or the in-flight) op.
  plain cleanup delete or compact (switches between mounts).
  ret   cleanup delete or compact,delete with retention_bytes/ms.
Every record: "w:seq:key:kind:filler:hash\n" (hash over the rest).
"""
import os, sys, random, subprocess, time, json, hashlib, signal, errno, shutil

BUILD = os.path.realpath(os.environ.get('SB_BUILD', 'build'))
FS = BUILD + '/streambusfs'
TOOL = BUILD + '/streambus'
TOPICS = ['kv', 'plain', 'ret']
DEADERR = (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO, errno.ENODEV, errno.EBADF)


class Fail(Exception):
    pass


def h(s):
    return hashlib.sha1(s.encode()).hexdigest()[:12]


def payload(rng, w, seq, key, kind, maxfill):
    n = rng.choice([0, 1, 5, 30, 100, 400, maxfill])
    fill = ''.join(rng.choice('abcdefghij') for _ in range(rng.randint(0, n)))
    body = '%d:%d:%s:%s:%s' % (w, seq, key or '-', kind, fill)
    return body + ':' + h(body) + '\n'


def parse(line):
    """-> (w, seq, key, kind) or None if not valid"""
    if not line.endswith('\n'):
        return None
    body, _, hh = line[:-1].rpartition(':')
    if h(body) != hh:
        return None
    p = body.split(':')
    if len(p) != 5:
        return None
    return int(p[0]), int(p[1]), (None if p[2] == '-' else p[2]), p[3]


# ---------------------------------------------------------------- mounts
def write_ini(path, logdir, mnt, glob, per):
    with open(path, 'w') as f:
        f.write('[mount]\nlog_dir = %s\nmountpoint = %s\n[log]\n' % (logdir, mnt))
        for k, v in glob.items():
            f.write('%s = %s\n' % (k, v))
        for t, d in per.items():
            f.write('[topic:%s]\n' % t)
            for k, v in d.items():
                f.write('%s = %s\n' % (k, v))


def daemon_pid(logdir):
    try:
        with open(os.path.join(logdir, '.lock')) as f:
            return int(f.readline().split()[0])
    except Exception:
        return None


def is_mounted(mnt):
    return subprocess.run(['mountpoint', '-q', mnt]).returncode == 0


def mount(ini, logdir, mnt, errlog):
    with open(errlog, 'a') as e:
        e.write('=== mount %s\n' % time.strftime('%T'))
        e.flush()
        r = subprocess.run(['timeout', '60', FS, '-c', ini], stdout=e, stderr=e)
    if r.returncode != 0 or not is_mounted(mnt):
        raise Fail('mount failed rc=%d (see %s)' % (r.returncode, errlog))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def umount(mnt, logdir):
    pid = daemon_pid(logdir)
    r = subprocess.run(['timeout', '60', 'fusermount3', '-u', mnt], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail('fusermount3 -u failed: %s' % r.stderr.strip())
    t0 = time.time()
    while pid and pid_alive(pid) and time.time() - t0 < 60:
        time.sleep(0.05)
    if pid and pid_alive(pid):
        raise Fail('daemon %d still alive 60 s after unmount' % pid)


def kill9(mnt, logdir):
    pid = daemon_pid(logdir)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while pid_alive(pid):
            time.sleep(0.01)
    return pid


def force_umount(mnt):
    subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
    if is_mounted(mnt):
        subprocess.run(['fusermount3', '-uz', mnt], capture_output=True)


# ---------------------------------------------------------------- workers
def writer(w, mnt, keys, nops, seed, jpath, maxfill, stop_at):
    rng = random.Random(seed)
    j = open(jpath, 'w', buffering=1)
    seq = 0
    live = {}  # key -> True if value (writer's own view)
    for i in range(nops):
        if time.time() > stop_at:
            break
        topic = rng.choice(TOPICS)
        r = rng.random()
        if os.environ.get('T7_PLANT') == 'lost' and i == 5:
            j.write('B plain L %d -\nA\n' % seq)
            seq += 1
            continue
        if os.environ.get('T7_PLANT') == 'key' and i == 5:
            j.write('B kv K %d %s\nA\n' % (seq, keys[0]))
            seq += 1
            continue
        try:
            if r < 0.06 and topic == 'ret':
                # rm of the oldest record (retention by hand)
                names = sorted(x for x in os.listdir('%s/ret' % mnt) if x.isdigit())
                if names:
                    j.write('B ret H %d %s\n' % (seq, names[0]))
                    seq += 1
                    try:
                        os.unlink('%s/ret/%s' % (mnt, names[0]))
                        j.write('A\n')
                    except OSError as e:
                        if e.errno not in (errno.ENOENT, errno.EPERM):
                            raise
                        j.write('N\n')
                continue
            if r < 0.12:
                # one line written in pieces, appended at the close
                s_ = seq
                seq += 1
                data = payload(rng, w, s_, None, 'L', maxfill).encode()
                j.write('B %s L %d -\n' % (topic, s_))
                fd = os.open('%s/%s/.log' % (mnt, topic), os.O_WRONLY | os.O_APPEND)
                try:
                    pos = 0
                    while pos < len(data):
                        c = rng.randint(1, max(1, len(data) // 2))
                        pos += os.write(fd, data[pos:pos + c])
                        if rng.random() < 0.2:
                            time.sleep(0.01)
                finally:
                    os.close(fd)
                j.write('A\n')
            elif r < 0.35:
                # lines to .log: one write of 1..4 lines
                n = rng.choice([1, 1, 1, 2, 4])
                seqs = list(range(seq, seq + n))
                seq += n
                data = ''.join(payload(rng, w, s, None, 'L', maxfill) for s in seqs)
                j.write('B %s L %s -\n' % (topic, ','.join(map(str, seqs))))
                fd = os.open('%s/%s/.log' % (mnt, topic), os.O_WRONLY | os.O_APPEND)
                try:
                    b = data.encode()
                    k = os.write(fd, b)
                    if k != len(b):
                        j.write('X short write %d of %d\n' % (k, len(b)))
                finally:
                    os.close(fd)
                j.write('A\n')
            elif r < 0.85 or not live:
                key = rng.choice(keys)
                s = seq
                seq += 1
                via = rng.choice(['F', 'K', 'T'])  # topic file, .keys/, temp+rename
                data = payload(rng, w, s, key, via, maxfill).encode()
                j.write('B %s %s %d %s\n' % (topic, via, s, key))
                if via == 'K':
                    path = '%s/%s/.keys/%s' % (mnt, topic, key)
                else:
                    path = '%s/%s/%s' % (mnt, topic, key)
                if via == 'T':
                    tmp = '%s/%s/.%s.%d.tmp' % (mnt, topic, key, s)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                else:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    if via in ('F', 'T') and s % 2 == 0:
                        os.setxattr(tmp if via == 'T' else path, 'user.streambus.header.src', ('%d:%d' % (w, s)).encode())
                    pos = 0
                    while pos < len(data):
                        c = rng.randint(1, len(data))
                        pos += os.write(fd, data[pos:pos + c])
                    if via == 'T':
                        os.rename(tmp, path)
                finally:
                    os.close(fd)
                live[key] = True
                j.write('A\n')
            else:
                key = rng.choice(sorted(live))
                s = seq
                seq += 1
                j.write('B %s R %d %s\n' % (topic, s, key))
                try:
                    os.unlink('%s/%s/.keys/%s' % (mnt, topic, key))
                    j.write('A\n')
                except FileNotFoundError:
                    j.write('N\n')   # key absent (in that topic): nothing appended
                live.pop(key, None) if rng.random() < 0.3 else None
        except OSError as e:
            j.write('E %d %s\n' % (e.errno, e.strerror))
            if e.errno in DEADERR:
                break
    j.write('END\n')
    j.close()


def reader(mnt, seed, rpath, stop_at):
    """random reads; every byte served must be whole valid records"""
    rng = random.Random(seed)
    out = open(rpath, 'w', buffering=1)
    n = 0
    while time.time() < stop_at:
        topic = rng.choice(TOPICS)
        d = '%s/%s' % (mnt, topic)
        what = rng.choice(['log', 'rec', 'keys', 'since', 'slow'])
        try:
            if what == 'slow':
                # .log read in small pieces over a while (compaction, retention meanwhile)
                p = d + '/.log'
                buf = b''
                with open(p, 'rb', buffering=0) as f:
                    if rng.random() < 0.5:
                        # start at a record boundary near the end
                        data = f.read()
                        cut = data.rfind(b'\n', 0, max(0, len(data) - rng.randint(0, 20000)))
                        f.seek(cut + 1)
                    t_end = time.time() + rng.uniform(0.3, 2)
                    while time.time() < t_end:
                        c = f.read(rng.choice([1, 7, 100, 4096]))
                        buf += c
                        if not c:
                            time.sleep(0.05)
                cut = buf.rfind(b'\n')
                chk_stream(buf[:cut + 1], p + ' (slow)', out)
                seen = set()
                for ln in buf[:cut + 1].decode(errors='replace').splitlines():
                    pp = parse(ln + '\n')
                    if pp and (pp[0], pp[1]) in seen:
                        out.write('BAD %s (slow): record %s twice\n' % (p, pp[:2]))
                    if pp:
                        seen.add((pp[0], pp[1]))
            elif what == 'log' or what == 'since':
                p = d + ('/.log' if what == 'log' else '/.since/' + rng.choice(['-1s', '-5s', '-1h', '@0', '2020-01-01']))
                with open(p, 'rb') as f:
                    data = f.read()
                chk_stream(data, p, out)
            elif what == 'rec':
                names = sorted(os.listdir(d))
                recs = [x for x in names if x.isdigit()]
                for x in rng.sample(recs, min(5, len(recs))):
                    try:
                        with open(d + '/' + x, 'rb') as f:
                            data = f.read()
                    except FileNotFoundError:
                        continue
                    if data:
                        chk_stream(data, d + '/' + x, out, one=True)
            else:
                names = os.listdir(d + '/.keys')
                for x in rng.sample(names, min(5, len(names))):
                    try:
                        with open(d + '/.keys/' + x, 'rb') as f:
                            data = f.read()
                    except FileNotFoundError:
                        continue
                    p = chk_stream(data, d + '/.keys/' + x, out, one=True)
                    if p and p[2] != x:
                        out.write('BAD key %s served record of key %s\n' % (x, p[2]))
            n += 1
        except OSError as e:
            if e.errno in DEADERR and e.errno != errno.EIO:
                break
            if e.errno in (errno.ENOENT, errno.ENODATA):
                continue
            out.write('ERR %s %s %s\n' % (what, e.errno, e.strerror))
            if e.errno in DEADERR:
                break
    out.write('READS %d\n' % n)
    out.close()


def chk_stream(data, p, out, one=False):
    try:
        s = data.decode()
    except UnicodeDecodeError:
        out.write('BAD non-utf8 from %s\n' % p)
        return None
    lines = s.splitlines(keepends=True)
    if one and len(lines) != 1:
        out.write('BAD %s: %d lines\n' % (p, len(lines)))
    last = None
    for ln in lines:
        pr = parse(ln)
        if pr is None:
            out.write('BAD line from %s: %r\n' % (p, ln[:200]))
        last = pr
    return last


def tailer(mnt, topic, tpath, stop_at):
    """tail -f .log during the phase; the check: every line valid"""
    with open(tpath, 'wb') as f:
        pr = subprocess.Popen(['tail', '-c', '+1', '-f', '%s/%s/.log' % (mnt, topic)], stdout=f, stderr=subprocess.DEVNULL)
        while time.time() < stop_at and pr.poll() is None:
            time.sleep(0.1)
        time.sleep(1.2)
        pr.kill()
        pr.wait()


# ---------------------------------------------------------------- the model
class Model:
    def __init__(self):
        self.lines = {t: {} for t in TOPICS}  # topic -> w -> [seq...] committed in order
        self.keys = {t: {} for t in TOPICS}   # topic -> key -> (seq, w, kind, payload-hash) latest, kind R = tombstone
        self.keyrecs = {t: {} for t in TOPICS}  # topic -> key -> [ (w,seq) ] committed keyed ops in order
        self.seen = {t: {} for t in TOPICS}   # offset -> payload sha (never changes)
        self.next = {t: 0 for t in TOPICS}    # next offset seen


def read_journal(jpath):
    """-> list of (topic, kind, seqs, key, status) status A/N/E/F(inflight)"""
    ops = []
    cur = None
    for ln in open(jpath):
        ln = ln.rstrip('\n')
        if ln.startswith('B '):
            _, t, kind, seqs, key = ln.split(' ', 4)
            cur = [t, kind, [int(x) for x in seqs.split(',')], None if key == '-' else key, 'F']
            ops.append(cur)
        elif ln == 'A' or ln == 'N':
            cur[4] = ln
            cur = None
        elif ln.startswith('E '):
            if cur is not None:
                cur[4] = 'E'
                cur.append(ln)
                cur = None
            else:
                ops.append([None, 'E', [], None, 'E', ln])
        elif ln.startswith('X '):
            ops.append([None, 'X', [], None, 'X', ln])
    return ops


# ---------------------------------------------------------------- checks
def snapshot(mnt, topic):
    """a consistent view: retried while background compaction/retention changes it"""
    last = None
    for i in range(40):
        try:
            s = snapshot1(mnt, topic)
        except FileNotFoundError:
            time.sleep(0.5)
            continue
        recs, log, keys = s
        if last is not None and [r[0] for r in recs] == [r[0] for r in last[0]] and log == last[1] and keys == last[2]:
            return s
        last = s
        time.sleep(0.3)
    raise Fail('%s: no stable snapshot in 40 tries' % topic)


def snapshot1(mnt, topic):
    d = '%s/%s' % (mnt, topic)
    names = os.listdir(d)
    recs = []
    for x in sorted(names):
        if not x.isdigit():
            if not x.startswith('.'):
                raise Fail('%s: non-record name %r listed at rest' % (topic, x))
            continue
        p = d + '/' + x
        with open(p, 'rb') as f:
            data = f.read()
        xa = {}
        for a in os.listxattr(p):
            xa[a] = os.getxattr(p, a)
        recs.append((int(x), data, xa))
    with open(d + '/.log', 'rb') as f:
        log = f.read()
    keys = {}
    for k in os.listdir(d + '/.keys'):
        with open(d + '/.keys/' + k, 'rb') as f:
            keys[k] = (f.read(), os.getxattr(d + '/.keys/' + k, 'user.streambus.offset'))
    return recs, log, keys


def check_topic(topic, model, recs, log, keys, resolve, errs, retention, settings):
    """resolve: w -> list of ops from this phase's journal. Updates model."""
    # offsets, payload validity, .log
    offs = [o for o, _, _ in recs]
    if offs != sorted(set(offs)):
        errs.append('%s: listing not sorted/unique' % topic)
    cat = b''.join(d for _, d, _ in recs)
    if cat != log:
        errs.append('%s: .log (%d bytes) != concatenation of records (%d bytes)' % (topic, len(log), len(cat)))
    parsed = []
    for o, d, xa in recs:
        if int(xa.get('user.streambus.offset', b'-1')) != o:
            errs.append('%s: offset xattr of %d is %r' % (topic, o, xa.get('user.streambus.offset')))
        tomb = 'user.streambus.tombstone' in xa
        xkey = xa.get('user.streambus.key')
        xkey = xkey.decode() if xkey is not None else None
        sha = hashlib.sha1(d + (b'T' if tomb else b'')).hexdigest()
        old = model.seen[topic].get(o)
        if old is not None and old != sha:
            errs.append('%s: offset %d changed content' % (topic, o))
        if old is None and o < model.next[topic]:
            errs.append('%s: offset %d appeared below the earlier next offset %d (reused?)' % (topic, o, model.next[topic]))
        if tomb:
            if d:
                errs.append('%s: tombstone %d has payload' % (topic, o))
            parsed.append((o, None, xkey))
            continue
        p = parse(d.decode(errors='replace'))
        if p is None:
            errs.append('%s: record %d invalid: %r' % (topic, o, d[:100]))
            continue
        if p[2] != xkey:
            errs.append('%s: record %d key xattr %r, payload says %r' % (topic, o, xkey, p[2]))
        hd = xa.get('user.streambus.header.src')
        if p[3] in ('F', 'T') and p[1] % 2 == 0:
            if hd != ('%d:%d' % (p[0], p[1])).encode():
                errs.append('%s: record %d (%s) header %r, want %d:%d' % (topic, o, p[3], hd, p[0], p[1]))
        elif hd is not None:
            errs.append('%s: record %d (%s) has header %r, none set' % (topic, o, p[3], hd))
        parsed.append((o, p, xkey))
    # per writer lines / keyed ops
    bywl = {}
    bykey = {}
    for o, p, xkey in parsed:
        if p is not None and p[3] == 'L':
            bywl.setdefault(p[0], []).append(p[1])
        if xkey is not None:
            bykey.setdefault(xkey, []).append((o, p))
    # the in-flight ops of this phase, and acked
    for w in sorted(set(model.lines[topic]) | set(resolve) | set(bywl)):
        ops = resolve.get(w, [])
        mine = [op for op in ops if op[0] == topic]
        acked_lines = [s for op in mine if op[1] == 'L' and op[4] == 'A' for s in op[2]]
        infl_lines = [s for op in mine if op[1] == 'L' and op[4] in ('F', 'E') for s in op[2]]
        prev = model.lines[topic].get(w, [])
        got = bywl.get(w, [])
        want = prev + acked_lines
        if retention:
            # a contiguous slice of want + in-flight reaching at least to the end of want
            full = want + infl_lines
            extra = []
            if got:
                i = full.index(got[0]) if got[0] in full else -1
                if i < 0 or full[i:i + len(got)] != got or i + len(got) < len(want):
                    errs.append('%s: writer %d lines %s..%s not a slice of the acknowledged reaching their end (%d acked, last %s)' % (
                        topic, w, got[:3], got[-3:], len(want), want[-3:]))
                else:
                    extra = got[max(0, len(want) - i):]
        else:
            if got[:len(want)] != want:
                missing = sorted(set(want) - set(got))
                errs.append('%s: writer %d lines: %d acknowledged missing (%s), got %d lines, want %d; dups %d' % (
                    topic, w, len(missing), missing[:8], len(got), len(want), len(got) - len(set(got))))
            extra = got[len(want):]
        if extra and extra != infl_lines[:len(extra)]:
            errs.append('%s: writer %d lines: unexpected extra %s (in flight %s)' % (topic, w, extra[:8], infl_lines))
        if extra and extra != infl_lines:
            errs.append('NOTE %s: writer %d: in-flight multi-line write half-appended: %s of %s' % (topic, w, extra, infl_lines))
        model.lines[topic][w] = want + extra
        if retention:
            model.lines[topic][w] = got
    # keyed: per key the latest record must be the last committed op or an in-flight one
    for w, ops in resolve.items():
        for op in ops:
            if op[0] != topic or op[1] not in ('F', 'K', 'T', 'R'):
                continue
            key = op[3]
            if op[4] == 'A':
                model.keys[topic][key] = (w, op[2][0], op[1])
            elif op[4] in ('F', 'E'):
                # in flight: applied if the log's latest for key is this op
                lst = bykey.get(key)
                if lst:
                    o, p = lst[-1]
                    if op[1] == 'R' and p is None and model.keys[topic].get(key, (0, 0, 'R'))[2] != 'R':
                        model.keys[topic][key] = (w, op[2][0], 'R')
                    elif p is not None and p[0] == w and p[1] == op[2][0]:
                        model.keys[topic][key] = (w, op[2][0], op[1])
    for key, m in model.keys[topic].items():
        lst = bykey.get(key)
        if not lst:
            if m[2] != 'R' and not retention:
                errs.append('%s: key %s: no record at all, model %s' % (topic, key, m))
            continue
        o, p = lst[-1]
        if m[2] == 'R':
            if p is not None:
                errs.append('%s: key %s: latest record %d is %s, model says tombstone %s' % (topic, key, o, p[:2], m))
        else:
            if p is None or (p[0], p[1]) != (m[0], m[1]):
                if not (retention and p is not None and p[0] == m[0] and p[1] < m[1] and False):
                    errs.append('%s: key %s: latest record %d is %s, model %s' % (topic, key, o, p[:2] if p else 'tombstone', m))
        # per key order by offset: (w,seq) increasing
        ws = [(p[0], p[1]) for o, p in lst if p is not None]
        for a, b in zip(ws, ws[1:]):
            if a[0] == b[0] and a[1] >= b[1]:
                errs.append('%s: key %s: records out of order or duplicated %s %s' % (topic, key, a, b))
    for key in bykey:
        if key not in model.keys[topic]:
            errs.append('%s: key %s in the log but never written' % (topic, key))
    # keys table vs the log's latest
    want_keys = {}
    for key, lst in bykey.items():
        o, p = lst[-1]
        if p is not None:
            want_keys[key] = o
    for k, (data, xo) in keys.items():
        if k not in want_keys:
            errs.append('%s: .keys lists %s, the log latest is %s' % (topic, k, bykey.get(k, [(None, 'nothing')])[-1]))
            continue
        if int(xo) != want_keys[k]:
            errs.append('%s: .keys/%s offset %s, the log latest is %d' % (topic, k, xo, want_keys[k]))
        p = parse(data.decode(errors='replace'))
        if p is None or p[2] != k:
            errs.append('%s: .keys/%s serves %r' % (topic, k, data[:80]))
    for k in want_keys:
        if k not in keys:
            errs.append('%s: key %s (latest record %d) missing from .keys' % (topic, k, want_keys[k]))
    # .since/@T: from the first record whose running-max time reaches T
    rng = random.Random(len(recs))
    runmax = []
    m = 0
    for o, d, xa in recs:
        m = max(m, int(xa.get('user.streambus.timestamp', b'0')))
        runmax.append(m)
    for i in rng.sample(range(len(recs)), min(3, len(recs))):
        ts = int(recs[i][2].get('user.streambus.timestamp', b'0'))
        j = next(k for k in range(len(recs)) if runmax[k] >= ts)
        want = b''.join(d for _, d, _ in recs[j:])
        p = '%s/.since/@%d.%09d' % (settings['_mnt'] + '/' + topic, ts // 10**9, ts % 10**9)
        try:
            with open(p, 'rb') as f:
                got = f.read()
        except OSError as e:
            got = ('error %s' % e).encode()
        if got != want and not retention:
            errs.append('%s: %s serves %d bytes, want %d (from record %d, time %d)' % (topic, p, len(got), len(want), recs[j][0], ts))
    # offsets seen
    newseen = {}
    for o, d, xa in recs:
        newseen[o] = hashlib.sha1(d + (b'T' if 'user.streambus.tombstone' in xa else b'')).hexdigest()
    model.seen[topic].update(newseen)
    if offs:
        model.next[topic] = max(model.next[topic], offs[-1] + 1)


def tool(args, timeout=120):
    return subprocess.run(['timeout', str(timeout), TOOL] + args, capture_output=True, text=True)


def rand_settings(rng, crash):
    g = {
        'segment_bytes': rng.choice([4096, 4096, 8192, 16384, 65536]),
        'index_interval_bytes': rng.choice([1, 64, 512, 4096, 65536]),
        'sync': 'always' if crash and rng.random() < 0.7 else rng.choice(['always', 'interval', 'never']),
        'sync_interval_ms': rng.choice([1, 50, 1000]),
        'compression': rng.choice(['none', 'lz4', 'zstd']),
        'compression_block_bytes': rng.choice([1024, 4096, 65536]),
        'key_memtable_bytes': rng.choice([4096, 8192, 4194304]),
        'delete_retention_ms': rng.choice([0, 200, 86400000]),
    }
    per = {
        'kv': {'cleanup': rng.choice(['compact', 'compact,delete'])},
        'plain': {'cleanup': rng.choice(['delete', 'compact']),
                  'compression': rng.choice(['none', 'lz4', 'zstd'])},
        'ret': {'cleanup': rng.choice(['delete', 'compact,delete']),
                'retention_bytes': rng.choice([20000, 60000, -1]),
                'retention_ms': rng.choice([-1, 2000, 600000]),
                'segment_bytes': rng.choice([4096, 8192])},
    }
    if rng.random() < 0.3:
        per['kv']['sync'] = rng.choice(['always', 'never'])
    return g, per


def run_case(seed, phases, nops, base, keep):
    rng = random.Random(seed)
    root = '%s/c%d' % (base, seed)
    shutil.rmtree(root, ignore_errors=True)
    logdir, mnt = root + '/log', root + '/mnt'
    os.makedirs(logdir)
    os.makedirs(mnt)
    errlog = root + '/daemon.err'
    model = Model()
    nw = rng.randint(2, 4)
    nkeys = rng.choice([3, 8, 30])
    maxfill = rng.choice([50, 500, 3000])
    log = open(root + '/case.log', 'w', buffering=1)
    errs = []
    stats = {'phases': 0, 'kills': 0, 'acked': 0, 'records': 0}
    wid = 0
    try:
        for ph in range(phases):
            crash = rng.random() < 0.5
            g, per = rand_settings(rng, crash)
            write_ini(root + '/mount.ini', logdir, mnt, g, per)
            log.write('phase %d crash=%s %s %s\n' % (ph, crash, g, per))
            mount(root + '/mount.ini', logdir, mnt, errlog)
            for t in TOPICS:
                if not os.path.isdir(mnt + '/' + t):
                    os.mkdir(mnt + '/' + t)
            dur = rng.uniform(1.0, 4.0)
            stop_at = time.time() + dur + 30
            kids = []
            resolve = {}
            for i in range(nw):
                w = wid
                wid += 1
                keys = ['k%d_%d' % (i, j) for j in range(nkeys)]
                jp = '%s/j%d' % (root, w)
                pid = os.fork()
                if pid == 0:
                    try:
                        os.nice(5)
                        writer(w, mnt, keys, nops, seed * 1000 + w, jp, maxfill, stop_at)
                    finally:
                        os._exit(0)
                kids.append(pid)
                resolve[w] = jp
            rp = []
            for i in range(rng.randint(0, 2)):
                p = '%s/r%d_%d' % (root, ph, i)
                rp.append(p)
                pid = os.fork()
                if pid == 0:
                    try:
                        reader(mnt, seed * 7 + ph * 3 + i, p, time.time() + dur)
                    finally:
                        os._exit(0)
                kids.append(pid)
            tp = []
            if rng.random() < 0.7:
                t = rng.choice(TOPICS)
                p = '%s/tail%d_%s' % (root, ph, t)
                tp.append(p)
                pid = os.fork()
                if pid == 0:
                    try:
                        tailer(mnt, t, p, time.time() + dur)
                    finally:
                        os._exit(0)
                kids.append(pid)
            if crash:
                time.sleep(rng.uniform(0.05, dur))
                kill9(mnt, logdir)
                stats['kills'] += 1
                for k in kids:
                    os.waitpid(k, 0)
                force_umount(mnt)
            else:
                for k in kids:
                    os.waitpid(k, 0)
                umount(mnt, logdir)
            # remount at once (maybe other settings)
            if rng.random() < 0.5:
                g, per = rand_settings(rng, False)
                write_ini(root + '/mount.ini', logdir, mnt, g, per)
                log.write('  remount with %s %s\n' % (g, per))
            mount(root + '/mount.ini', logdir, mnt, errlog)
            if rng.random() < 0.3:
                # a kill -9 while the new mount's background work runs (compression of a backlog, compaction, retention)
                g, per = rand_settings(rng, False)
                write_ini(root + '/mount.ini', logdir, mnt, g, per)
                log.write('  bg kill; then remount with %s %s\n' % (g, per))
                kill9(mnt, logdir)
                force_umount(mnt)
                mount(root + '/mount.ini', logdir, mnt, errlog)
                time.sleep(rng.uniform(0, 0.6))
                kill9(mnt, logdir)
                force_umount(mnt)
                stats['kills'] += 2
                mount(root + '/mount.ini', logdir, mnt, errlog)
            ops = {w: read_journal(jp) for w, jp in resolve.items()}
            for w, o in ops.items():
                for op in o:
                    if op[4] == 'A':
                        stats['acked'] += len(op[2])
                    if op[4] in ('E', 'X') and not crash:
                        errs.append('phase %d writer %d error on a live mount: %s' % (ph, w, op))
                    if op[4] == 'X':
                        errs.append('phase %d writer %d: %s' % (ph, w, op))
            for p in rp:
                for ln in open(p):
                    if ln.startswith('BAD') or (ln.startswith('ERR') and not crash):
                        errs.append('phase %d reader: %s' % (ph, ln.strip()))
            for p in tp:
                data = open(p, 'rb').read()
                s = data.decode(errors='replace')
                seenws = set()
                lastl = {}
                for ln in s.splitlines(keepends=True):
                    pp = parse(ln)
                    if pp is None and ln.endswith('\n'):
                        errs.append('phase %d tail -f %s: invalid line %r' % (ph, p, ln[:100]))
                    if pp is None:
                        continue
                    if (pp[0], pp[1]) in seenws:
                        errs.append('phase %d tail -f %s: record %s served twice' % (ph, p, pp[:2]))
                    seenws.add((pp[0], pp[1]))
                    if pp[3] == 'L':
                        if lastl.get(pp[0], -1) >= pp[1]:
                            errs.append('phase %d tail -f %s: writer %d line %d after %d' % (ph, p, pp[0], pp[1], lastl[pp[0]]))
                        lastl[pp[0]] = pp[1]
            snaps = {}
            for t in TOPICS:
                recs, lg, keys = snapshot(mnt, t)
                stats['records'] += len(recs)
                retention = per['ret'] is not None and t == 'ret'
                per['_mnt'] = mnt
                check_topic(t, model, recs, lg, keys, ops, errs, t == 'ret', per)
                snaps[t] = (recs, keys)
            log.write('  checked: %d errs\n' % len(errs))
            umount(mnt, logdir)
            r = tool(['verify', '-q', '--no-progress', logdir])
            if r.returncode != 0:
                errs.append('phase %d: verify exit %d: %s %s' % (ph, r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
            for t in ('kv', 'plain'):
                recs, keys = snaps[t]
                r = tool(['dump', '--json', logdir, t])
                byoff = {o: (d, xa) for o, d, xa in recs}
                dumped = [json.loads(x) for x in r.stdout.splitlines()]
                if r.returncode != 0:
                    errs.append('phase %d: dump %s exit %d %s' % (ph, t, r.returncode, r.stderr[-500:]))
                for x in dumped:
                    o = x['offset']
                    if o not in byoff:
                        if o >= (recs[-1][0] if recs else 0):
                            errs.append('phase %d: dump %s offset %d not served by the mount' % (ph, t, o))
                        continue
                    v = x.get('value', '').encode() if 'value' in x else None
                    if v is not None and v != byoff[o][0]:
                        errs.append('phase %d: dump %s offset %d value differs' % (ph, t, o))
                r = tool(['dump', '--keys', '--json', logdir, t])
                dk = {x['key']: x['offset'] for x in map(json.loads, r.stdout.splitlines())}
                mk = {k: int(v[1]) for k, v in keys.items()}
                if dk != mk:
                    errs.append('phase %d: dump --keys %s != .keys: %s' % (ph, t, sorted(set(dk.items()) ^ set(mk.items()))[:6]))
                for k in list(mk)[:3]:
                    r = tool(['get', logdir, t, k])
                    if r.stdout.encode() != keys[k][0]:
                        errs.append('phase %d: get %s %s != .keys' % (ph, t, k))
            if rng.random() < 0.3:
                r = tool(['recover', logdir])
                log.write('  recover: %s\n' % r.stdout.strip())
                if r.returncode != 0:
                    errs.append('phase %d: recover exit %d: %s' % (ph, r.returncode, r.stderr))
                r = tool(['verify', '-q', '--no-progress', logdir])
                if r.returncode != 0:
                    errs.append('phase %d: verify after recover exit %d: %s' % (ph, r.returncode, r.stdout[-2000:]))
            stats['phases'] += 1
            if [e for e in errs if not e.startswith('NOTE')]:
                break
    except Fail as e:
        errs.append('FAIL: %s' % e)
    finally:
        if is_mounted(mnt):
            try:
                umount(mnt, logdir)
            except Fail:
                kill9(mnt, logdir)
                force_umount(mnt)
    for e in errs:
        log.write('ERR ' + e + '\n')
    log.close()
    bad = [e for e in errs if not e.startswith('NOTE')]
    if not bad and not keep:
        shutil.rmtree(root, ignore_errors=True)
    return errs, stats


if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('seeds', type=int, nargs='+')
    ap.add_argument('--phases', type=int, default=6)
    ap.add_argument('--ops', type=int, default=150)
    ap.add_argument('--base', default='/tmp/t7/runs')
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    os.makedirs(a.base, exist_ok=True)
    tot = {}
    nbad = 0
    for s in a.seeds:
        t0 = time.time()
        errs, st = run_case(s, a.phases, a.ops, a.base, a.keep)
        for k, v in st.items():
            tot[k] = tot.get(k, 0) + v
        bad = [e for e in errs if not e.startswith('NOTE')]
        nbad += bool(bad)
        print('seed %d: %s %s (%.0f s)%s' % (s, 'FAIL' if bad else 'ok', st, time.time() - t0,
              ''.join('\n   ' + e for e in errs[:12])), flush=True)
    print('total', tot, 'failing seeds', nbad)
