#!/usr/bin/env python3
"""kafka_fuzz.py SEED [SECONDS] [WORKERS] - the Kafka backend as a user uses it.

Starts streambus-kafka-mock (3 brokers; topics a:1, b:1, w:3), mounts it
(backend = kafka, timeout_ms 3000, daemon in the foreground so its death is
seen), then WORKERS threads run random shell commands against the mount for
SECONDS, every one under `timeout`: lines >> .log (one and three per write),
files created in the topic (keyed), writes and rm through .keys/, cp of random
files, kcat producing beside the mount, cat of records/.keys/.log, ls, and a
fault thread taking brokers down and up (down N / down all / up). A `tail -f`
of a/.log runs throughout. Then all brokers up, and the check, against what
kcat consumes: every acknowledged write there exactly once (unacknowledged:
at most once), every record file / .log / .keys/ through the mount byte-equal
to kcat's view, bytes read during the run equal to the final ones; again after
an unmount and a remount; rsync -a of the mount compared too.
Prints counts as JSON on the last line; exit 1 on any finding.
Env: SB_BUILD (default build), T9 (default /tmp/t9).
"""
import os, sys, json, random, subprocess, threading, time, shutil, signal, hashlib, collections

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

seed = int(sys.argv[1])
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 30
nworkers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
FAULTS = os.environ.get('FAULTS', '1') == '1'
RTT = os.environ.get('RTT', '1') == '1'
base = os.environ.get('T9', '/tmp/t9')
os.makedirs(base, exist_ok=True)
tmp = os.path.join(base, 'kf.%d.%d' % (seed, os.getpid()))
os.makedirs(tmp)
mnt = os.path.join(tmp, 'mnt')
os.makedirs(mnt)
R = random.Random(seed)
TOPICS = {'a': 1, 'b': 1, 'w': 3}
KEYS = ['k%02d' % i for i in range(20)] + ['sp ace', 'pct%25x', 'u\u00e9']

findings = []
stats = collections.Counter()
lock = threading.Lock()
ops = []          # dicts: kind, topic, key, payload(bytes or None), rc, err, dur
reads = []        # (topic, part, name, sha) of record reads during the run
keyreads = []     # (topic, key, bytes)
mock = None
daemon = None


def finding(s):
    with lock:
        findings.append(s)
    print('FINDING:', s, flush=True)


def sh(cmd, inp=None, to=40):
    t0 = time.time()
    r = subprocess.run(['timeout', str(to), 'bash', '-c', cmd], input=inp, capture_output=True)
    d = time.time() - t0
    return r.returncode, r.stdout, r.stderr.decode(errors='replace').strip(), d


def q(s):
    return "'" + s.replace("'", "'\\''") + "'"


def run_op(kind, topic, key, payload, cmd, inp=None):
    rc, out, err, d = sh(cmd, inp)
    with lock:
        ops.append(dict(kind=kind, topic=topic, key=key, payload=payload, rc=rc, err=err, dur=d))
        stats['op_' + kind] += 1
        stats['rc0' if rc == 0 else 'rc_fail'] += 1
        if rc != 0:
            stats['err:' + kind + ':' + err[-60:]] += 1
    if rc == 124:
        finding('hang: %s took %.1f s (killed by timeout): %s' % (kind, d, cmd[:120]))
    elif d > 15:
        finding('slow: %s took %.1f s rc=%d: %s' % (kind, d, rc, cmd[:120]))
    return rc, out, err


n_tok = [0]


def tok():
    with lock:
        n_tok[0] += 1
        return 's%d.%d' % (seed, n_tok[0])


def worker(wid, stop):
    r = random.Random(seed * 100 + wid)
    while not stop.is_set():
        topic = r.choice(list(TOPICS))
        T = os.path.join(mnt, topic)
        x = r.random()
        if x < 0.22:
            p = ('L' + tok() + '\n').encode()
            run_op('line', topic, None, p, 'printf %%s %s >> %s/.log' % (q(p.decode()), q(T)))
        elif x < 0.30:
            t = tok()
            ps = [('M%s.%d\n' % (t, i)).encode() for i in range(3)]
            rc, _, _ = run_op('lines3', topic, None, b''.join(ps),
                              'printf %%s %s >> %s/.log' % (q(b''.join(ps).decode()), q(T)))
        elif x < 0.45:
            k = r.choice(KEYS)
            p = ('F' + tok()).encode()
            run_op('file', topic, k, p, 'printf %%s %s > %s' % (q(p.decode()), q(T + '/' + k.replace('%', '%25'))))
        elif x < 0.55 and TOPICS[topic] == 1:
            k = r.choice(KEYS)
            p = ('K' + tok()).encode()
            run_op('keyw', topic, k, p, 'printf %%s %s > %s/.keys/%s' % (q(p.decode()), q(T), q(k.replace('%', '%25'))))
        elif x < 0.60:
            k = r.choice(KEYS)
            t = tok()
            body = ('C' + t + ':' + ''.join(r.choice('abcdefghijklmnopqrstuvwxyz0123456789')
                                            for _ in range(r.randrange(0, 20000)))).encode()
            src = os.path.join(tmp, 'src.%d' % wid)
            with open(src, 'wb') as f:
                f.write(body)
            run_op('cp', topic, k, body, 'cp %s %s' % (q(src), q(T + '/' + k.replace('%', '%25'))))
        elif x < 0.64 and TOPICS[topic] == 1:
            k = r.choice(KEYS)
            run_op('rmkey', topic, k, None, 'rm %s/.keys/%s' % (q(T), q(k.replace('%', '%25'))))
        elif x < 0.72:
            k = r.choice(KEYS)
            p = ('P' + tok()).encode()
            # kcat beside the mount: a keyed record, acks=all
            run_op('kcat', topic, k, p, 'kcat -b %s -P -t %s -K "\t" -X acks=all -X message.timeout.ms=10000'
                   % (mock.addr, topic), inp=k.encode() + b'\t' + p + b'\n')
        elif x < 0.82:
            # read a random record file
            part = r.randrange(TOPICS[topic])
            d = T if TOPICS[topic] == 1 else T + '/%d' % part
            rc, out, err, dur = sh('ls %s | shuf -n 1 --random-source=<(yes %d)' % (q(d), r.randrange(1 << 30)))
            stats['ls'] += 1
            if rc == 124:
                finding('hang: ls %s' % d)
            name = out.decode().strip()
            if rc == 0 and name:
                rc, out, err, dur = sh('cat %s' % q(d + '/' + name))
                stats['cat_rec'] += 1
                if rc == 0:
                    with lock:
                        reads.append((topic, part, name, out))
                elif rc == 124:
                    finding('hang: cat %s/%s' % (d, name))
                else:
                    stats['cat_rec_fail:' + err[-50:]] += 1
        elif x < 0.88 and TOPICS[topic] == 1:
            k = r.choice(KEYS)
            rc, out, err, dur = sh('cat %s/.keys/%s' % (q(T), q(k.replace('%', '%25'))))
            stats['cat_key'] += 1
            if rc == 0:
                with lock:
                    keyreads.append((topic, k, out))
            elif rc == 124:
                finding('hang: cat .keys/%s' % k)
            else:
                stats['cat_key_fail:' + err[-50:]] += 1
        elif x < 0.92:
            part = r.randrange(TOPICS[topic])
            d = T if TOPICS[topic] == 1 else T + '/%d' % part
            rc, out, err, dur = sh('cat %s/.log | wc -c' % q(d))
            stats['cat_log'] += 1
            if rc == 124:
                finding('hang: cat %s/.log' % d)
        else:
            rc, out, err, dur = sh('ls %s; ls %s/.since/-1m >/dev/null; stat %s/.log >/dev/null' % (q(mnt), q(T if TOPICS[topic] == 1 else T + '/0'), q(T if TOPICS[topic] == 1 else T + '/0')))
            stats['ls_misc'] += 1
            if rc == 124:
                finding('hang: ls/stat %s' % T)


def faults(stop):
    r = random.Random(seed * 7)
    while not stop.is_set():
        time.sleep(r.uniform(1, 4))
        if stop.is_set():
            break
        which = r.choice(['1', '2', '3', 'all', 'all'])
        try:
            if RTT and r.random() < 0.5:
                ms = r.choice([300, 1500, 2500, 4000])
                mock.cmd('rtt %s %d' % (which, ms))
                stats['rtt_%s_%d' % (which, ms)] += 1
                time.sleep(r.uniform(0.5, 6))
                mock.cmd('rtt %s 0' % which)
                continue
            mock.cmd('down ' + which)
            stats['down_' + which] += 1
            time.sleep(r.uniform(0.5, 5))
            mock.cmd('up ' + which)
        except C.Fail as e:
            finding('mock: %s' % e)


def kcat_view():
    """-> {(topic, part): [(offset, key bytes|None, payload bytes|None)]}"""
    v = {}
    for t, n in TOPICS.items():
        for p in range(n):
            r = subprocess.run(['timeout', '60', 'kcat', '-b', mock.addr, '-C', '-t', t, '-p', str(p),
                                '-o', 'beginning', '-e', '-J', '-q'], capture_output=True)
            if r.returncode != 0:
                raise C.Fail('kcat -C %s/%d: rc %d %s' % (t, p, r.returncode, r.stderr[-200:]))
            recs = []
            for l in r.stdout.decode().splitlines():
                if not l.strip():
                    continue
                j = json.loads(l)
                k = j.get('key')
                pl = j.get('payload')
                recs.append((j['offset'], None if k is None else k.encode(), None if pl is None else pl.encode()))
            v[(t, p)] = recs
    return v


def check_mount(view, label):
    bad = 0
    for (t, p), recs in view.items():
        d = os.path.join(mnt, t) if TOPICS[t] == 1 else os.path.join(mnt, t, str(p))
        rc, out, err, dur = sh('ls %s' % q(d), to=60)
        names = out.decode().split()
        want = ['%020d' % o for o, k, pl in recs]
        if names != want:
            finding('%s: ls %s: %d names, kcat %d records (first diff %s)' % (
                label, d, len(names), len(want),
                next(((a, b) for a, b in zip(names, want) if a != b), None)))
            bad += 1
        for o, k, pl in recs:
            rc, out, err, dur = sh('cat %s/%020d' % (q(d), o))
            stats[label + '_rec_checked'] += 1
            if rc == 124:
                finding('%s: hang cat %s/%d' % (label, d, o))
            elif pl is None:
                if rc != 0 or out != b'':
                    stats[label + '_tombstone_cat_rc%d' % rc] += 1
            elif rc != 0 or out != pl:
                finding('%s: %s/%d: rc %d %s, %d bytes vs kcat %d' % (label, d, o, rc, err, len(out), len(pl)))
                bad += 1
        rc, out, err, dur = sh('cat %s/.log' % q(d), to=60)
        exp = b''.join(pl for o, k, pl in recs if pl)
        stats[label + '_log_bytes'] += len(out)
        if rc != 0 or out != exp:
            finding('%s: %s/.log rc %d %s: %d bytes vs %d expected' % (label, d, rc, err, len(out), len(exp)))
            bad += 1
        # keys
        latest = {}
        for o, k, pl in recs:
            if k is not None:
                latest[k] = pl
        live = {k: v for k, v in latest.items() if v is not None}
        rc, out, err, dur = sh('ls %s/.keys' % q(d), to=60)
        got = sorted(out.split(b'\n')[:-1]) if out else []

        def enc(k):
            return k.replace(b'%', b'%25').replace(b'/', b'%2F')
        wantk = sorted(enc(k) for k in live)
        if rc != 0 or got != wantk:
            finding('%s: ls %s/.keys rc %d %s: %d keys vs %d (missing %s, extra %s)' % (
                label, d, rc, err, len(got), len(wantk), sorted(set(wantk) - set(got))[:5],
                sorted(set(got) - set(wantk))[:5]))
            bad += 1
        for k, v in live.items():
            rc, out, err, dur = sh('cat %s/.keys/%s' % (q(d), q(enc(k).decode())))
            stats[label + '_keys_checked'] += 1
            if rc != 0 or out != v:
                finding('%s: %s/.keys/%s rc %d %s: %r vs %r' % (label, d, k, rc, err, out[:40], v[:40]))
                bad += 1
    return bad


def main():
    global mock, daemon
    mock = C.Mock(tmp, 3, ['%s:%d' % kv for kv in TOPICS.items()])
    daemon, dlog = C.kafka_mount_fg(mnt, mock.addr, tmp)
    tailout = open(os.path.join(tmp, 'tail.out'), 'wb')
    tailp = subprocess.Popen(['tail', '-c', '+1', '-F', os.path.join(mnt, 'a', '.log')], stdout=tailout,
                             stderr=subprocess.DEVNULL)
    stop = threading.Event()
    ths = [threading.Thread(target=worker, args=(i, stop)) for i in range(nworkers)]
    if FAULTS:
        ths.append(threading.Thread(target=faults, args=(stop,)))
    for t in ths:
        t.start()
    t0 = time.time()
    while time.time() - t0 < secs:
        time.sleep(0.5)
        if daemon.poll() is not None:
            finding('daemon died rc=%s during the run (log %s)' % (daemon.returncode, dlog))
            break
    stop.set()
    for t in ths:
        t.join(120)
    mock.cmd('up all')
    mock.cmd('rtt all 0')
    time.sleep(3)
    if daemon.poll() is not None:
        raise C.Fail('daemon dead: rc %s' % daemon.returncode)
    view = kcat_view()
    # every acknowledged write exactly once
    counts = collections.Counter()
    for recs in view.values():
        for o, k, pl in recs:
            if pl is not None:
                counts[pl] += 1
                if pl.startswith(b'M') and b'\n' in pl:
                    pass
    for op in ops:
        if op['kind'] == 'rmkey' or op['payload'] is None:
            continue
        pls = [op['payload']]
        if op['kind'] == 'lines3':
            pls = [l + b'\n' for l in op['payload'].split(b'\n')[:-1]]
        for pl in pls:
            n = counts.get(pl, 0)
            if op['rc'] == 0:
                stats['acked_records'] += 1
                if n == 0:
                    finding('LOST acknowledged %s to %s key %r: %r' % (op['kind'], op['topic'], op['key'], pl[:40]))
                elif n > 1:
                    finding('DUPLICATED acknowledged %s to %s (%d copies): %r' % (op['kind'], op['topic'], n, pl[:40]))
            else:
                stats['unacked_records'] += 1
                if n == 1:
                    stats['unacked_but_there'] += 1
                elif n > 1:
                    finding('DUPLICATED unacknowledged %s (%d copies, rc %d %s): %r' % (op['kind'], n, op['rc'], op['err'], pl[:40]))
        # a multi-line write: all or nothing
        if op['kind'] == 'lines3':
            ns = [counts.get(l + b'\n', 0) for l in op['payload'].split(b'\n')[:-1]]
            if len(set(min(x, 1) for x in ns)) > 1:
                finding('lines3 half there: %s rc %d %s' % (ns, op['rc'], op['err']))
    # key writes: the key of every keyed record is the one written
    bykey = {}
    for (t, p), recs in view.items():
        for o, k, pl in recs:
            if pl is not None:
                bykey[pl] = k
    for op in ops:
        if op['key'] is not None and op['payload'] is not None and op['payload'] in bykey:
            if bykey[op['payload']] != op['key'].encode():
                finding('key wrong: %s %r stored with key %r' % (op['kind'], op['key'], bykey[op['payload']]))
    # reads during the run equal the final bytes
    final = {}
    for (t, p), recs in view.items():
        for o, k, pl in recs:
            final[(t, p, '%020d' % o)] = pl if pl is not None else b''
    for t, p, name, data in reads:
        stats['reads_during'] += 1
        if (t, p, name) in final and final[(t, p, name)] != data:
            finding('read during the run differs: %s/%d/%s: %r vs final %r' % (t, p, name, data[:40], final[(t, p, name)][:40]))
    allvals = collections.defaultdict(set)
    for (t, p), recs in view.items():
        for o, k, pl in recs:
            if k is not None and pl is not None:
                allvals[(t, k)].add(pl)
    for t, k, data in keyreads:
        stats['keyreads_during'] += 1
        if data not in allvals[(t, k.encode())]:
            finding('.keys/%s read %r: never a value of that key' % (k, data[:40]))
    # tail -F saw a/.log
    time.sleep(2)
    tailp.terminate()
    tailp.wait()
    tailout.close()
    tl = open(os.path.join(tmp, 'tail.out'), 'rb').read()
    exp = b''.join(pl for o, k, pl in view[('a', 0)] if pl)
    stats['tail_bytes'] = len(tl)
    if tl != exp:
        finding('tail -F a/.log: %d bytes vs %d in .log (common prefix %d)' % (
            len(tl), len(exp), len(os.path.commonprefix([tl, exp]))))
    check_mount(view, 'live')
    # rsync out
    out = os.path.join(tmp, 'rsync')
    rc, o_, err, dur = sh('rsync -a %s/ %s/' % (q(mnt), q(out)), to=120)
    stats['rsync_rc'] = rc
    if rc != 0:
        finding('rsync -a rc %d: %s' % (rc, err[-200:]))
    else:
        for (t, p), recs in view.items():
            d = os.path.join(out, t) if TOPICS[t] == 1 else os.path.join(out, t, str(p))
            names = sorted(n for n in os.listdir(d))
            if names != ['%020d' % o for o, k, pl in recs]:
                finding('rsync copy of %s/%d: %d files vs %d records' % (t, p, len(names), len(recs)))
            for o, k, pl in recs:
                fn = os.path.join(d, '%020d' % o)
                if os.path.exists(fn) and open(fn, 'rb').read() != (pl or b''):
                    finding('rsync copy %s differs' % fn)
    rc, err, drc = C.kafka_umount(mnt, daemon)
    stats['umount_rc'] = rc
    if drc != 0:
        finding('daemon exit status %s after unmount' % drc)
    daemon, dlog = C.kafka_mount_fg(mnt, mock.addr, tmp)
    check_mount(view, 'remount')
    C.kafka_umount(mnt, daemon)
    daemon = None
    mx = max((o['dur'] for o in ops), default=0)
    stats['max_op_s'] = round(mx, 1)
    stats['ops'] = len(ops)


rc = 0
try:
    main()
except Exception as e:
    import traceback
    traceback.print_exc()
    findings.append('harness: %r' % e)
finally:
    if daemon is not None and daemon.poll() is None:
        subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
        if C.is_mounted(mnt):
            subprocess.run(['fusermount3', '-uz', mnt], capture_output=True)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
    if C.is_mounted(mnt):
        subprocess.run(['fusermount3', '-uz', mnt], capture_output=True)
    if mock:
        mock.stop()
print(json.dumps(dict(seed=seed, findings=len(findings), tmp=tmp, **{k: v for k, v in sorted(stats.items())})))
sys.exit(1 if findings else 0)
