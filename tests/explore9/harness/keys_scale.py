#!/usr/bin/env python3
"""keys_scale.py topics SEED NTOPICS [PROCS]   |   keys_scale.py big SEED NKEYS [PROCS]

Keys at scale on the store backend, every acknowledged key checked.

topics: NTOPICS topics, each with a few keys (k0-k3 and keys that must be
  percent-encoded: 'a/b', '.', '..', 'p%q'), written by PROCS processes at
  once in random order (each key owned by one process, so its latest value
  is known): files created in the topic, writes to .keys/K, cp through
  .keys/, rm .keys/K (tombstones). Then: ls and cat of every .keys/, record
  counts (every acknowledged write one record), unmount, `streambus verify`,
  `dump --keys --json`, `get` of a sample, remount, and the mount check again.
big: one topic (cleanup = compact, segment_bytes 1 MiB so that compaction
  runs), NKEYS keys written through .keys/ by PROCS processes (python
  open/write/close and bash `echo >` loops), then a random quarter
  overwritten and a random tenth removed (tombstones), `ls .keys | wc -l`,
  every value read; unmount, verify, dump --keys, remount (compaction runs
  in the background), wait, the check again.
Env: SB_BUILD (default build), T9 (default /tmp/t9). Last line: JSON counts.
"""
import os, sys, json, random, subprocess, time, collections, errno, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

findings = []
stats = collections.Counter()


def finding(s):
    findings.append(s)
    print('FINDING:', s, flush=True)


def enc(k):
    if k in ('.', '..'):
        return '%2E' * len(k)
    return k.replace('%', '%25').replace('/', '%2F')


# ---------- a worker: executes ops from a JSON file, journals each result ----------
def worker(opsfile, journal):
    ops = json.load(open(opsfile))
    with open(journal, 'w') as j:
        for topic_dir, k, act, v in ops:
            err = 0
            try:
                if act == 'create':
                    p = os.path.join(topic_dir, k)
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.write(fd, v.encode())
                    os.close(fd)
                elif act == 'keyw':
                    fd = os.open(os.path.join(topic_dir, '.keys', enc(k)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.write(fd, v.encode())
                    os.close(fd)
                elif act == 'echo':
                    r = subprocess.run(['timeout', '30', 'bash', '-c', 'set -e; echo -n "$1" > "$2"', 'x', v,
                                        os.path.join(topic_dir, '.keys', enc(k))], capture_output=True)
                    if r.returncode:
                        err = -r.returncode
                elif act == 'cp':
                    src = journal + '.src'
                    open(src, 'w').write(v)
                    r = subprocess.run(['timeout', '30', 'cp', src, os.path.join(topic_dir, '.keys', enc(k))],
                                       capture_output=True)
                    if r.returncode:
                        err = -r.returncode
                elif act == 'rm':
                    os.unlink(os.path.join(topic_dir, '.keys', enc(k)))
            except OSError as e:
                err = e.errno
            j.write(json.dumps([topic_dir, k, act, v, err]) + '\n')
            j.flush()


if len(sys.argv) > 1 and sys.argv[1] == 'worker':
    worker(sys.argv[2], sys.argv[3])
    sys.exit(0)

mode, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
procs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
R = random.Random(seed)
base = os.environ.get('T9', '/tmp/t9')
tmp = os.path.join(base, 'ks.%s.%d.%d' % (mode, seed, os.getpid()))
logd, mnt = tmp + '/log', tmp + '/mnt'
os.makedirs(logd)
os.makedirs(mnt)
errlog = tmp + '/daemon.log'
OPTS = 'create=true'
if mode == 'big':
    OPTS += ',cleanup=compact,segment_bytes=1048576,delete_retention_ms=%d' % (
        int(os.environ.get('DRM', '86400000')))


def run_workers(opsets, tag):
    ps = []
    for i, ops in enumerate(opsets):
        f = '%s/ops.%s.%d.json' % (tmp, tag, i)
        json.dump(ops, open(f, 'w'))
        ps.append(subprocess.Popen(['timeout', '3000', sys.executable, os.path.abspath(__file__), 'worker', f,
                                    '%s/journal.%s.%d' % (tmp, tag, i)]))
    for p in ps:
        p.wait()
        if p.returncode:
            finding('worker %s exit %d (timeout 3000 s?)' % (tag, p.returncode))
    out = []
    for i in range(len(opsets)):
        out.append([json.loads(l) for l in open('%s/journal.%s.%d' % (tmp, tag, i))])
        if len(out[-1]) != len(opsets[i]):
            finding('worker %s.%d journaled %d of %d ops' % (tag, i, len(out[-1]), len(opsets[i])))
    return out


def apply(journals, state, nrec):
    """state[(topic_dir,k)] = value or None; nrec[topic_dir] += records acknowledged."""
    for jl in journals:
        for td, k, act, v, err in jl:
            stats['ack_' + act if err == 0 else 'err_%s_%s' % (act, errno.errorcode.get(err, err))] += 1
            if err == 0:
                nrec[td] += 1
                state[(td, k)] = None if act == 'rm' else v
            elif act == 'rm' and err == errno.ENOENT:
                if state.get((td, k)) is not None:
                    finding('rm .keys/%s in %s: ENOENT, but the key is live (%r)' % (k, td, state[(td, k)]))
            else:
                finding('%s %s/%s failed: %s' % (act, td, k, err))


def check_mount(state, nrec, label, topics, count_records=True, sample=None):
    live = collections.defaultdict(dict)
    for (td, k), v in state.items():
        if v is not None:
            live[td][k] = v
    t0 = time.time()
    bad = 0
    for td in topics:
        d = os.path.join(mnt, td)
        try:
            got = os.listdir(d + '/.keys')
        except OSError as e:
            finding('%s: listdir %s/.keys: %s' % (label, td, e))
            bad += 1
            continue
        want = [enc(k) for k in live[td]]
        stats[label + '_keys_listed'] += len(got)
        if len(got) != len(set(got)):
            finding('%s: %s/.keys lists %d names, %d distinct' % (label, td, len(got), len(set(got))))
            bad += 1
        if sorted(got) != sorted(want):
            m, x = set(want) - set(got), set(got) - set(want)
            finding('%s: %s/.keys: %d listed vs %d expected; missing %d %s, extra %d %s' % (
                label, td, len(got), len(want), len(m), sorted(m)[:4], len(x), sorted(x)[:4]))
            bad += 1
        if [n.encode() for n in got] != sorted(n.encode() for n in got):
            stats[label + '_keys_not_byte_order'] += 1
        ks = list(live[td].items())
        if sample:
            ks = R.sample(ks, min(sample, len(ks)))
        for k, v in ks:
            try:
                with open(os.path.join(d, '.keys', enc(k)), 'rb') as f:
                    data = f.read()
            except OSError as e:
                data = 'error %s' % e
            stats[label + '_values_read'] += 1
            if data != v.encode():
                bad += 1
                if bad < 20:
                    finding('%s: %s/.keys/%s = %r, expected %r' % (label, td, enc(k), data[:40], v[:40]))
        if count_records and mode != "big":
            names = [x for x in os.listdir(d) if not x.startswith('.')]
            if len(names) != nrec[td]:
                finding('%s: %s holds %d records, %d acknowledged' % (label, td, len(names), nrec[td]))
                bad += 1
    stats[label + '_bad'] = bad
    stats[label + '_secs'] = round(time.time() - t0, 1)
    return bad


def tool_checks(state, topics, label, sample_get=300):
    rc, out, err = C.tool('verify', logd, timeout=1800)
    stats[label + '_verify_rc'] = rc
    if rc != 0:
        finding('%s: streambus verify rc %d: %s' % (label, rc, err[-300:]))
    live = collections.defaultdict(dict)
    for (td, k), v in state.items():
        if v is not None:
            live[td][k] = v
    # dump --keys --json of every topic at once
    rc, out, err = C.tool('dump', '--keys', '--json', logd, timeout=1800)
    stats[label + '_dumpkeys_rc'] = rc
    got = collections.defaultdict(dict)
    for l in out.decode(errors='replace').splitlines():
        if not l.strip():
            continue
        j = json.loads(l)
        got[j.get('topic', topics[0] if len(topics) == 1 else None)][j.get('key')] = j
    if not hasattr(tool_checks, 'shown'):
        tool_checks.shown = 1
        print('dump --keys --json sample:', out.decode(errors='replace').splitlines()[:1])
    nd = 0
    for td in topics:
        g = got.get(td, {})
        if set(g) != set(live[td]):
            nd += 1
            if nd < 10:
                finding('%s: dump --keys %s: %d keys vs %d (missing %s extra %s)' % (
                    label, td, len(g), len(live[td]), sorted(set(live[td]) - set(g))[:3], sorted(set(g) - set(live[td]))[:3]))
        stats[label + '_dumpkeys_keys'] += len(g)
    pairs = [(td, k, v) for td in topics for k, v in live[td].items()]
    for td, k, v in R.sample(pairs, min(sample_get, len(pairs))):
        r = subprocess.run(['timeout', '60', C.TOOL, 'get', logd, td, k], capture_output=True)
        stats[label + '_get'] += 1
        if r.returncode != 0 or r.stdout != v.encode():
            finding('%s: streambus get %s %r: rc %d %r vs %r' % (label, td, k, r.returncode, r.stdout[:30], v[:30]))
    deads = [(td, k) for (td, k), v in state.items() if v is None]
    for td, k in R.sample(deads, min(50, len(deads))):
        r = subprocess.run(['timeout', '60', C.TOOL, 'get', logd, td, k], capture_output=True)
        stats[label + '_get_dead'] += 1
        if r.returncode != 1:
            finding('%s: streambus get of removed key %s %r: rc %d %r' % (label, td, k, r.returncode, r.stdout[:30]))


def mode_topics():
    topics = ['t%05d' % i for i in range(n)]
    C.mount(logd, mnt, OPTS, errlog)
    t0 = time.time()
    for t in topics:
        os.mkdir(os.path.join(mnt, t))
    stats['mkdir_secs'] = round(time.time() - t0, 1)
    keys = ['k0', 'k1', 'k2', 'k3', 'a/b', '.', '..', 'p%q', 'sp ace']
    opsets = [[] for _ in range(procs)]
    vn = 0
    for t in topics:
        ks = R.sample(keys, R.randrange(1, 5))
        for k in ks:
            owner = R.randrange(procs)
            for _ in range(R.randrange(1, 4)):
                vn += 1
                act = R.choices(['create', 'keyw', 'echo', 'cp', 'rm'], [4, 4, 1, 1, 2])[0]
                if act == 'create' and ('/' in k or k in ('.', '..') or '%' in k):
                    act = 'keyw'
                opsets[owner].append([t, k, act, 'v%d.%d' % (seed, vn)])
    # random interleaving, keeping each owner's per-key order
    for i, ops in enumerate(opsets):
        per = collections.defaultdict(list)
        for o in ops:
            per[(o[0], o[1])].append(o)
        order = [kk for kk in per for _ in per[kk]]
        R.shuffle(order)
        its = {kk: iter(v) for kk, v in per.items()}
        opsets[i] = [[os.path.join(mnt, o[0])] + o[1:] for o in (next(its[kk]) for kk in order)]
    stats['ops'] = sum(map(len, opsets))
    t0 = time.time()
    js = run_workers(opsets, 'a')
    stats['write_secs'] = round(time.time() - t0, 1)
    state, nrec = {}, collections.Counter()
    for jl in js:
        for row in jl:
            row[0] = os.path.basename(row[0])
    apply(js, state, nrec)
    check_mount(state, nrec, 'live', topics)
    C.umount(mnt, logd)
    tool_checks(state, topics, 'offline')
    C.mount(logd, mnt, OPTS, errlog)
    check_mount(state, nrec, 'remount', topics)
    C.umount(mnt, logd)


def mode_big():
    C.mount(logd, mnt, OPTS, errlog)
    td = 'big'
    os.mkdir(os.path.join(mnt, td))
    tdir = os.path.join(mnt, td)
    keys = ['key%07d' % i for i in range(n)]
    R.shuffle(keys)
    state, nrec = {}, collections.Counter()

    def phase(tag, pick, acts, weights):
        opsets = [[] for _ in range(procs)]
        for i, k in enumerate(pick):
            owner = hash(k) % procs
            act = R.choices(acts, weights)[0]
            opsets[owner].append([tdir, k, act, '%s.%s.%d' % (tag, k, R.randrange(1 << 30))])
        # bulk echo runs for speed: shell loops for a slice of the keys
        t0 = time.time()
        js = run_workers(opsets, tag)
        stats[tag + '_secs'] = round(time.time() - t0, 1)
        for jl in js:
            for row in jl:
                row[0] = td
        apply(js, state, nrec)

    # phase 1: every key once (python open/write/close via .keys/), plus shell echo loops
    shell_keys = keys[:n // 10]
    py_keys = keys[n // 10:]
    # shell loops: `echo v > .keys/K`, each process a slice, acks journaled by the shell
    t0 = time.time()
    ps = []
    for i in range(procs):
        sl = shell_keys[i::procs]
        f = '%s/shell.%d' % (tmp, i)
        open(f + '.in', 'w').write('\n'.join(sl) + '\n')
        ps.append(subprocess.Popen(['timeout', '3000', 'bash', '-c',
                                    'while read -r k; do if (echo -n "sh.$k" > "$1/.keys/$k") 2>/dev/null; then echo "$k 0"; else echo "$k 1"; fi; done <"$2.in" >"$2.out"',
                                    'x', tdir, f]))
    phase('p1', py_keys, ['keyw'], [1])
    for p in ps:
        p.wait()
    for i in range(procs):
        for l in open('%s/shell.%d.out' % (tmp, i)):
            k, rc = l.split()
            if rc == '0':
                state[(td, k)] = 'sh.' + k
                nrec[td] += 1
                stats['ack_shell_echo'] += 1
            else:
                finding('shell echo > .keys/%s failed' % k)
    stats['p1_shell_secs'] = round(time.time() - t0, 1)
    # phase 2: a quarter overwritten (keyw/create/cp), a tenth removed
    over = R.sample(keys, n // 4)
    phase('p2', over, ['keyw', 'create', 'cp'], [20, 20, 1])
    rmk = R.sample(keys, n // 10)
    phase('p3', rmk, ['rm'], [1])
    t0 = time.time()
    r = subprocess.run(['timeout', '600', 'bash', '-c', 'ls "$1/.keys" | wc -l', 'x', tdir], capture_output=True)
    nlive = sum(1 for v in state.values() if v is not None)
    stats['ls_wc'] = int(r.stdout or -1)
    stats['ls_wc_secs'] = round(time.time() - t0, 1)
    stats['expected_live'] = nlive
    if stats['ls_wc'] != nlive:
        finding('ls .keys | wc -l = %s, expected %d' % (stats['ls_wc'], nlive))
    check_mount(state, nrec, 'live', [td], count_records=True, sample=int(os.environ.get('SAMPLE', '20000')))
    C.umount(mnt, logd)
    tool_checks(state, [td], 'offline')
    C.mount(logd, mnt, OPTS, errlog)
    check_mount(state, nrec, 'remount', [td], count_records=False, sample=int(os.environ.get('SAMPLE', '20000')))
    # let compaction run, then check again (offsets never change: count records vs the ones kept)
    time.sleep(int(os.environ.get('COMPACT_WAIT', '20')))
    st = C.tool('stat', logd, td)
    print(st[1].decode(errors='replace')[:600])
    check_mount(state, nrec, 'compacted', [td], count_records=False, sample=int(os.environ.get('SAMPLE', '20000')))
    names = [x for x in os.listdir(tdir) if not x.startswith('.')]
    stats['records_after_compaction'] = len(names)
    stats['records_acked'] = nrec[td]
    C.umount(mnt, logd)
    tool_checks(state, [td], 'offline2')


try:
    if mode == 'topics':
        mode_topics()
    else:
        mode_big()
except Exception as e:
    import traceback
    traceback.print_exc()
    findings.append('harness: %r' % e)
finally:
    if C.is_mounted(mnt):
        C.force_umount(mnt, logd)
print(json.dumps(dict(mode=mode, seed=seed, n=n, findings=len(findings), tmp=tmp, **dict(sorted(stats.items())))))
sys.exit(1 if findings else 0)
