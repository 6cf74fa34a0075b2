#!/usr/bin/env python3
"""ops_config.py - generated mount.ini files and -o lists (seeded), each start
checked: either exit 1 with a message naming file:line and key (or '-o key'),
nothing mounted, no daemon left; or it mounts and a small workload keeps every
acknowledged record exactly once with its bytes, across a remount with another
generated configuration, and `streambus verify` exits 0 after each unmount.

  cd /work/main && nice -n 10 python3 tests/explore11/harness/ops_config.py SEED [SEED...]
"""
import os, sys, random, shutil, subprocess, time, errno, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C

LOGKEYS = ['segment_bytes', 'index_interval_bytes', 'max_record_bytes', 'sync', 'sync_interval_ms',
           'retention_bytes', 'retention_ms', 'compression', 'compression_block_bytes',
           'key_memtable_bytes', 'cleanup', 'delete_retention_ms']
GOOD = {
    'segment_bytes': ['4096', '4K', '5000', '65536', '1M', '134217728'],
    'index_interval_bytes': ['1', '2', '100', '4096', '1M', '4294967295'],
    'max_record_bytes': ['1', '10', '100', '4096', '1048576', '512M'],
    'sync': ['never', 'interval', 'always'],
    'sync_interval_ms': ['1', '5', '1000', '4294967295'],
    'retention_bytes': ['-1'],          # see below: dropping makes the oracle loose
    'retention_ms': ['-1'],
    'compression': ['none', 'lz4', 'zstd'],
    'compression_block_bytes': ['1024', '1K', '65536', '16M'],
    'key_memtable_bytes': ['4096', '8192', '4194304'],
    'cleanup': ['delete', 'compact', 'compact,delete', 'compact+delete'],
    'delete_retention_ms': ['0', '1', '86400000'],
}
DROPPING = {'retention_bytes': ['0', '1', '4096', '100000'], 'retention_ms': ['0', '1', '1000']}
BAD = {
    'segment_bytes': ['0', '-1', '4095', '3G', 'abc', '', '99999999999999999999', '1X', '1.5', '0x100', ' 5 5'],
    'index_interval_bytes': ['0', '-1', '4294967296', 'x', '', '99999999999999999999'],
    'max_record_bytes': ['0', '-3', '513M', '', 'one'],
    'sync': ['', 'Always', 'sometimes', '1'],
    'sync_interval_ms': ['0', '-1', '', '4294967296', 'soon'],
    'retention_bytes': ['-2', '', 'x', '99999999999999999999'],
    'retention_ms': ['-2', '', '1h', '99999999999999999999'],
    'compression': ['', 'gzip', 'LZ4', 'zstd,lz4'],
    'compression_block_bytes': ['1023', '17M', '0', ''],
    'key_memtable_bytes': ['4095', '0', '5G', ''],
    'cleanup': ['', 'compact,compact,x', 'none', 'delete,'],
    'delete_retention_ms': ['-1', '', '9223372036854775807', 'x'],
}
MOUNT_GOOD = {'umask': ['022', '0', '077', '777', '0022'], 'list_log': ['true', 'false', 'yes', '0'],
              'allow_other': ['false', 'true'], 'owner': ['0', 'root', '1000'], 'group': ['0', 'root', '1000']}
MOUNT_BAD = {'umask': ['1000', '8', '-1', '', 'abc'], 'list_log': ['', 'maybe', '2'],
             'allow_other': ['', 'y'], 'owner': ['', 'nosuchuser_e11', '-1', '4294967295'],
             'group': ['', 'nosuchgroup_e11', '-5']}
TOPICS = ['a', 'b', 'c.d']


def gen_config(rnd, d, mnt, logdir):
    """-> (ini bytes, -o list, expected: 'ok'|'bad', bad_key, per-topic effective cfg, flags)"""
    log = {}
    topics = {}
    mnt_keys = {}
    bad = None   # (where, key)
    badline = None
    lines = []   # (section, key, value)
    for k in LOGKEYS:
        if rnd.random() < 0.5:
            log[k] = rnd.choice(GOOD[k])
    if rnd.random() < 0.15:
        k = rnd.choice(list(DROPPING))
        log[k] = rnd.choice(DROPPING[k])
    for t in TOPICS:
        if rnd.random() < 0.4:
            topics[t] = {}
            for k in LOGKEYS:
                if rnd.random() < 0.25:
                    topics[t][k] = rnd.choice(GOOD[k])
    for k in MOUNT_GOOD:
        if rnd.random() < 0.3:
            mnt_keys[k] = rnd.choice(MOUNT_GOOD[k])
    body = []
    body.append(('mount', 'log_dir', logdir))
    body.append(('mount', 'mountpoint', mnt))
    for k, v in mnt_keys.items():
        body.append(('mount', k, v))
    for k, v in log.items():
        body.append(('log', k, v))
    for t, kv in topics.items():
        for k, v in kv.items():
            body.append(('topic:' + t, k, v))
    # duplicates: the same key twice in one section (the last wins, as in inih)
    if rnd.random() < 0.2 and log:
        k = rnd.choice(list(log))
        v = rnd.choice(GOOD[k])
        body.append(('log', k, v))
        log[k] = v
    # an error, sometimes
    r = rnd.random()
    if r < 0.15:
        k = rnd.choice(LOGKEYS)
        v = rnd.choice(BAD[k])
        sec = rnd.choice(['log'] + ['topic:' + t for t in TOPICS])
        body.insert(rnd.randint(2, len(body)), (sec, k, v))
        bad = ('file', k)
        badline = (sec, k, v)
    elif r < 0.19:
        k = rnd.choice(list(MOUNT_BAD))
        v = rnd.choice(MOUNT_BAD[k])
        body.insert(rnd.randint(2, len(body)), ('mount', k, v))
        bad = ('file', k)
        badline = ('mount', k, v)
    elif r < 0.22:
        k = rnd.choice(['segment_byte', 'Sync', 'retention', 'foo', 'log-dir'])
        sec = rnd.choice(['log', 'mount', 'topic:a'])
        body.insert(rnd.randint(2, len(body)), (sec, k, '1'))
        bad = ('file', k)
        badline = (sec, k, '1')
    # write the file, grouped in sections in a random order, sections maybe repeated
    order = []
    for s, k, v in body:
        order.append(s)
    secs = list(dict.fromkeys(order))
    rnd.shuffle(secs)
    secs.remove('mount')
    secs.insert(0, 'mount') if rnd.random() < 0.7 else secs.insert(rnd.randint(0, len(secs)), 'mount')
    eol = rnd.choice(['\n', '\n', '\r\n'])
    out = []
    if rnd.random() < 0.15:
        out.append('\ufeff')
    out.append('; generated' + eol)
    split = rnd.random() < 0.2
    for s in secs:
        items = [(k, v) for (ss, k, v) in body if ss == s]
        if split and len(items) > 1:   # the section twice
            h = len(items) // 2
            chunks = [items[:h], items[h:]]
        else:
            chunks = [items]
        for ch in chunks:
            out.append('[%s]%s' % (s, eol))
            for k, v in ch:
                sp = rnd.choice([' = ', '=', '  =  ', '\t=\t'])
                c = rnd.choice(['', '', '   ; comment', ' # x'])
                if (s, k, v) == badline:
                    c = ' ; BADLINE'
                out.append('%s%s%s%s%s' % (k, sp, v, c, eol))
            if rnd.random() < 0.3:
                out.append(eol)
    ini = ''.join(out).encode()
    # -o overrides: valid [log] keys (global) sometimes, a bad one sometimes
    opts = []
    if rnd.random() < 0.3:
        k = rnd.choice(LOGKEYS)
        v = rnd.choice(GOOD[k])
        opts.append('%s=%s' % (k, v))
        log[k] = v
    if not bad and rnd.random() < 0.1:
        k = rnd.choice(LOGKEYS)
        opts.append('%s=%s' % (k, rnd.choice(BAD[k])))
        bad = ('opt', k)
    eff = {}
    for t in TOPICS:
        e = dict(log)
        e.update(topics.get(t, {}))
        eff[t] = e
    return ini, opts, bad, eff, mnt_keys


def nbytes(v):
    m = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
    if v[-1] in m:
        return int(v[:-1]) * m[v[-1]]
    return int(v)


def workload(rnd, mnt, eff, exp, seed):
    """appends through .log, created files and .keys; records acknowledged ones in exp."""
    errs = []
    for t in TOPICS:
        p = os.path.join(mnt, t)
        if not os.path.isdir(p):
            os.mkdir(p)
        maxrec = nbytes(eff[t].get('max_record_bytes', '1048576'))
        for i in range(rnd.randint(5, 40)):
            kind = rnd.random()
            if kind < 0.4:
                n = rnd.randint(1, 5)
                recs = [b'L%d.%d.%d.%s\n' % (seed, i, j, os.urandom(rnd.randint(0, 20)).hex().encode())
                        for j in range(n)]
                try:
                    C.append_log(p + '/.log', b''.join(recs))
                    for r in recs:
                        exp[t].append((None, r))
                except OSError as e:
                    if e.errno == errno.EFBIG and any(len(r) > maxrec for r in recs):
                        continue
                    errs.append('%s .log append: %s' % (t, e))
            elif kind < 0.75:
                k = 'k%d' % rnd.randint(0, 6)
                data = os.urandom(rnd.choice([0, 1, 10, 300, 5000]))
                sub = rnd.choice(['', '.keys/'])
                try:
                    C.write_file(p + '/' + sub + k, data)
                    exp[t].append((k, data))
                except OSError as e:
                    if e.errno == errno.EFBIG and len(data) > maxrec:
                        continue
                    errs.append('%s create %s%s (%d bytes): %s' % (t, sub, k, len(data), e))
            else:
                try:
                    os.listdir(p)
                    os.listdir(p + '/.keys')
                except OSError as e:
                    errs.append('%s ls: %s' % (t, e))
    return errs


def check(mnt, eff, exp, tag):
    errs = []
    for t in TOPICS:
        e = eff[t]
        dropping = e.get('retention_bytes', '-1') != '-1' or e.get('retention_ms', '-1') != '-1'
        compact = 'compact' in e.get('cleanup', 'delete')
        if not exp[t] and not os.path.isdir(os.path.join(mnt, t)):
            continue
        try:
            got = C.records(mnt, t, skip_gone=dropping or compact)
        except OSError as ex:
            errs.append('%s %s: cannot read records: %s' % (tag, t, ex))
            continue
        want = [d for (k, d) in exp[t]]
        gotd = [d for (o, d) in got]
        if not dropping and not compact:
            if gotd != want:
                # describe
                missing = len([w for w in want if w not in gotd])
                extra = len(gotd) - len(want)
                errs.append('%s %s: records differ: %d expected, %d present, %d expected ones missing'
                            % (tag, t, len(want), len(gotd), missing))
        else:
            # an ordered subsequence of what was written
            it = iter(want)
            if not all(any(g == w for w in it) for g in gotd):
                errs.append('%s %s: records not a subsequence of the appended ones (%d present, %d appended)'
                            % (tag, t, len(gotd), len(want)))
        if not dropping:
            latest = {}
            for k, d in exp[t]:
                if k is not None:
                    latest[k] = d
            for k, d in latest.items():
                try:
                    v = open(os.path.join(mnt, t, '.keys', k), 'rb').read()
                    if v != d:
                        errs.append('%s %s: .keys/%s has %d bytes, latest written %d' % (tag, t, k, len(v), len(d)))
                except OSError as ex:
                    if not (len(d) == 0 and ex.errno == errno.ENOENT):
                        errs.append('%s %s: .keys/%s: %s' % (tag, t, k, ex))
            try:
                lg = open(os.path.join(mnt, t, '.log'), 'rb').read()
                stable = not compact or [d for (o, d) in C.records(mnt, t, skip_gone=True)] == gotd
                if stable and lg != b''.join(gotd):
                    errs.append('%s %s: .log (%d bytes) is not the records (%d bytes)' % (tag, t, len(lg), sum(map(len, gotd))))
            except OSError as ex:
                errs.append('%s %s: .log: %s' % (tag, t, ex))
    return errs


def run_seed(seed):
    rnd = random.Random(seed)
    d = '%s/cfg%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    logdir, mnt = d + '/log', d + '/mnt'
    os.makedirs(logdir)
    os.makedirs(mnt)
    exp = {t: [] for t in TOPICS}
    findings = []
    stats = {'refused': 0, 'mounted': 0, 'records': 0}
    effs = []
    for m in range(3):
        ini, opts, bad, eff, mk = gen_config(rnd, d, 'mnt' if rnd.random() < 0.5 else mnt,
                                             'log' if rnd.random() < 0.5 else logdir)
        cfgp = '%s/m%d.ini' % (d, m)
        open(cfgp, 'wb').write(ini)
        args = ['-c', cfgp]
        for o in opts:
            args += ['-o', o]
        before = sorted(os.listdir(logdir))
        rc, out = C.start(args, cwd='/')
        tag = 'seed %d mount %d' % (seed, m)
        ismnt = C.mounted(mnt)
        if bad:
            if rc == 0 or ismnt:
                findings.append('%s: bad %s %s accepted (rc %s): %s' % (tag, bad[0], bad[1], rc, open(cfgp).read() if True else ''))
            elif rc != 1:
                findings.append('%s: refused with rc %s: %s' % (tag, rc, out.strip()))
            else:
                stats['refused'] += 1
                if bad[0] == 'file' and not (cfgp in out or 'm%d.ini' % m in out):
                    findings.append('%s: message does not name the file: %s' % (tag, out.strip()))
                lines = ini.decode('utf-8', 'replace').replace('\r\n', '\n').split('\n')
                bl = [i + 1 for i, l in enumerate(lines) if 'BADLINE' in l]
                if bad[0] == 'file' and bl and ':%d:' % bl[0] not in out:
                    findings.append('%s: message does not name line %d: %s' % (tag, bl[0], out.strip()))
                if bad[0] == 'file' and bad[1] not in out:
                    findings.append('%s: message does not name key %s: %s' % (tag, bad[1], out.strip()))
                if bad[0] == 'opt' and '-o' not in out:
                    findings.append('%s: message does not name -o: %s' % (tag, out.strip()))
            if C.daemon_pids(mnt):
                findings.append('%s: a daemon is left after a refused start' % tag)
            if sorted(os.listdir(logdir)) != before:
                findings.append('%s: refused start changed LOG_DIR' % tag)
            C.umount(mnt)
            continue
        if rc != 0 or not ismnt:
            findings.append('%s: valid config refused (rc %s, mounted %s): %s\n%s' % (tag, rc, ismnt, out.strip(), ini.decode('utf-8', 'replace')))
            C.umount(mnt)
            continue
        stats['mounted'] += 1
        effs.append(eff)
        try:
            # settings visible? umask on records / dirs
            if 'umask' in mk:
                um = int(mk['umask'], 8)
                st = os.stat(mnt + '/' + TOPICS[0]) if os.path.isdir(mnt + '/' + TOPICS[0]) else None
                if st and (st.st_mode & 0o777) != (0o777 & ~um):
                    findings.append('%s: topic dir mode %o with umask %s' % (tag, st.st_mode & 0o777, mk['umask']))
            # check what the previous mounts left, with the loosest of the configs seen
            loose = {t: dict(eff[t]) for t in TOPICS}
            for e in effs:
                for t in TOPICS:
                    for k in ('retention_bytes', 'retention_ms', 'cleanup'):
                        if e[t].get(k) not in (None, '-1', 'delete'):
                            loose[t][k] = e[t][k]
            findings += check(mnt, loose, exp, tag + ' (after remount)')
            findings += workload(rnd, mnt, eff, exp, seed)
            findings += check(mnt, loose, exp, tag)
        finally:
            if not C.umount(mnt):
                findings.append('%s: unclean unmount' % tag)
        rc, o, e = C.tool('verify', logdir)
        if rc != 0:
            findings.append('%s: verify rc %s after unmount: %s %s' % (tag, rc, o[-500:], e[-500:]))
    stats['records'] = sum(len(v) for v in exp.values())
    return findings, stats


if __name__ == '__main__':
    tot = {'refused': 0, 'mounted': 0, 'records': 0}
    nf = 0
    for s in [int(x) for x in sys.argv[1:]]:
        f, st = run_seed(s)
        for k in tot:
            tot[k] += st[k]
        for x in f:
            print('FINDING', x)
        nf += len(f)
        print('seed', s, st, 'findings', len(f), flush=True)
    print('TOTAL', tot, 'findings', nf)
