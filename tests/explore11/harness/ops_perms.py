#!/usr/bin/env python3
"""ops_perms.py SEED... - generated owner/group/umask/list_log: modes and owners shown
match the settings; cp -r, tar, rsync -a of the mount (list_log true or false) work:
exit 0, each record once, .log copied only when listed, and its bytes are the records'."""
import os, sys, random, shutil, subprocess, stat
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_common as C


def run(seed):
    rnd = random.Random(seed)
    d = '%s/perm%d' % (C.ROOT, seed)
    shutil.rmtree(d, ignore_errors=True)
    log, mnt = d + '/log', d + '/mnt'
    os.makedirs(log); os.makedirs(mnt)
    um = rnd.choice([0, 0o22, 0o77, 0o27, 0o777, 0o700, 0o7, 0o222])
    own = rnd.choice([0, 1, 1000, 65534, 4294967294])
    grp = rnd.choice([0, 1, 1000, 65534])
    ll = rnd.choice([True, False])
    rc, out = C.start(['-o', 'umask=%o,owner=%d,group=%d,list_log=%s' % (um, own, grp, 'true' if ll else 'false'), log, mnt])
    f = []
    tag = 'seed %d umask %03o owner %d group %d list_log %s' % (seed, um, own, grp, ll)
    if rc != 0:
        return ['%s: mount rc %s %s' % (tag, rc, out)]
    try:
        os.mkdir(mnt + '/t')
        n = rnd.randint(1, 300)
        C.append_log(mnt + '/t/.log', b''.join(b'rec %d\n' % i for i in range(n)))
        C.write_file(mnt + '/t/.keys/k', b'kv')
        n += 1
        exp = {'dir': 0o777 & ~um, 'log': 0o666 & ~um, 'rec': 0o444 & ~um}
        for what, p in (('dir', mnt + '/t'), ('log', mnt + '/t/.log'), ('rec', mnt + '/t/%020d' % 0),
                        ('dir', mnt + '/t/.keys'), ('log', mnt + '/t/.keys/k'), ('dir', mnt)):
            st = os.stat(p)
            if stat.S_IMODE(st.st_mode) != exp[what] or st.st_uid != own or st.st_gid != grp:
                f.append('%s: %s mode %o uid %d gid %d' % (tag, p, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
        names = os.listdir(mnt + '/t')
        if ('.log' in names) != ll:
            f.append('%s: ls shows .log: %s' % (tag, '.log' in names))
        for tool, cmd in (('cp', ['cp', '-r', mnt + '/t', d + '/cp']),
                          ('tar', ['tar', '-C', mnt, '-cf', d + '/b.tar', 't']),
                          ('rsync', ['rsync', '-a', mnt + '/t/', d + '/rs/'])):
            r = subprocess.run(['timeout', '60'] + cmd, capture_output=True)
            if r.returncode != 0:
                f.append('%s: %s exit %d: %s' % (tag, tool, r.returncode, r.stderr.decode()[-300:]))
                continue
            if tool == 'tar':
                os.makedirs(d + '/tx'); subprocess.run(['tar', '-C', d + '/tx', '-xf', d + '/b.tar'])
                dst = d + '/tx/t'
            else:
                dst = d + '/' + ('cp' if tool == 'cp' else 'rs')
            got = sorted(os.listdir(dst))
            recs = [x for x in got if x.isdigit()]
            if len(recs) != n or ('.log' in got) != ll or set(got) - set(recs) - {'.log'}:
                f.append('%s: %s copied %d records (of %d), names %s' % (tag, tool, len(recs), n, [x for x in got if not x.isdigit()]))
            if '.log' in got:
                lg = open(dst + '/.log', 'rb').read()
                if lg != b''.join(open(dst + '/' + x, 'rb').read() for x in recs):
                    f.append('%s: %s .log copy (%d bytes) is not the records' % (tag, tool, len(lg)))
        r = subprocess.run(['rsync', '-ai', mnt + '/t/', d + '/rs/'], capture_output=True)
        if r.returncode != 0 or r.stdout.strip():
            f.append('%s: second rsync -a: exit %d, changes %r' % (tag, r.returncode, r.stdout.decode()[:300]))
    finally:
        C.umount(mnt)
    rc, o, e = C.tool('verify', log)
    if rc != 0:
        f.append('%s: verify %s' % (tag, rc))
    return f


if __name__ == '__main__':
    nf = 0
    for s in map(int, sys.argv[1:]):
        for x in run(s):
            print('FINDING', x); nf += 1
    print('seeds', len(sys.argv) - 1, 'findings', nf)
