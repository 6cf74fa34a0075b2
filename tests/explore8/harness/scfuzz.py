#!/usr/bin/env python3
"""scfuzz.py - a random system-call fuzzer through a real StreamBus FS mount,
checked against a model of the acknowledged appends.

  scfuzz.py SEED... [--procs N] [--ops N] [--keep] [--opts EXTRA]

Per seed: a fresh LOG_DIR (/tmp/t8/fz-SEED), a mount with random settings
(segment size, index interval, sync, compression, cleanup delete or compact,
max_record_bytes), N processes doing random system calls at once:

  topic a   appends only (lines through .log in pieces, created files with
            pwrite/ftruncate/copy_file_range/sendfile/rename/xattrs/utimens,
            .keys/ writes and rm), plus read-only and refused noise
  topic b   the same, and rm of the oldest record (its bytes read first)
  topic z   anything: O_CREAT on digits, mkdir/rmdir, link, symlink, mknod,
            rm, rename, writes to .keys/ without O_TRUNC...  (not modelled,
            only that the daemon lives and verify passes)

Every call is timed (a hang past 20 s is a finding, with the call).  Every
errno is counted per (op, target kind); EIO, ENOTCONN, ECONNABORTED, EFAULT,
ENOMEM are findings.  After the run: through the mount, every record of a and
b against the model (acknowledged once, bytes exact, each process's appends in
order, no stray record, the keys' latest values, headers); unmount; verify;
dump --json equal to what the mount served; remount; the same again.
"""
import os, sys, random, time, errno, hashlib, json, mmap, shutil, signal, stat
import multiprocessing as mp
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import *

BAD = {errno.EIO, errno.ENOTCONN, errno.ECONNABORTED, errno.EFAULT, errno.ENOMEM,
       errno.EDEADLK, errno.ETIMEDOUT, errno.ENXIO if False else -1}
HANG_S = 20


def sha(b):
    return hashlib.sha1(b).hexdigest()[:16]


class W:
    """one fuzzing process"""

    def __init__(self, p, seed, mnt, nops, jpath, hb, maxrec):
        self.p, self.mnt, self.nops = p, mnt, nops
        self.rng = random.Random('%s-%d' % (seed, p))
        self.j = open(jpath, 'w', buffering=1)
        self.hb = hb
        self.maxrec = maxrec
        self.nline = 0
        self.nfile = 0
        self.fds = []           # open entries
        self.cache = {}         # (topic, name) -> bytes of a record
        self.stats = {}
        self.keys = ['kp%d_%d' % (p, i) for i in range(5)]

    # --------------------------------------------------------- plumbing
    def jw(self, **kw):
        self.j.write(json.dumps(kw) + '\n')

    def call(self, op, kind, fn, *a):
        """run one call, time it, count its errno; returns (ok, value|errno)"""
        self.hb[self.p * 2] = time.time()
        self.hb[self.p * 2 + 1] = 1.0
        t0 = time.time()
        try:
            v = fn(*a)
            r = (True, v)
            e = 0
        except OSError as ex:
            e = ex.errno or 0
            r = (False, e)
        except ValueError as ex:   # python-side (e.g. mmap of size 0)
            e = -2
            r = (False, -2)
        dt = time.time() - t0
        self.hb[self.p * 2 + 1] = 0.0
        k = '%s %s %s' % (op, kind, errno.errorcode.get(e, str(e)) if e else 'ok')
        self.stats[k] = self.stats.get(k, 0) + 1
        if e in BAD:
            self.jw(t='E', op=op, kind=kind, errno=errno.errorcode.get(e, e), args=repr(a)[:200])
        if dt > 5:
            self.jw(t='SLOW', op=op, kind=kind, dt=dt, args=repr(a)[:200])
        return r

    def line(self, topic):
        self.nline += 1
        fill = ''.join(self.rng.choice('abcdefghijklmnop') for _ in range(self.rng.choice([0, 3, 20, 100, 700, 3000])))
        body = 'L%d.%d.%s.%s' % (self.p, self.nline, topic, fill)
        return (sha(body.encode())[:10] + '.' + body + '\n').encode()

    def fbytes(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n)) if n < 64 else \
            (os.urandom(n) if self.rng.random() < 0.5 else (b'%d-' % self.p) * (n // 3) + b'x' * (n % 3))

    def records(self, topic):
        ok, v = self.call('readdir', 'topic', os.listdir, '%s/%s' % (self.mnt, topic))
        return sorted(x for x in v if x.isdigit()) if ok else []

    # --------------------------------------------------------- .log appends
    def log_session(self, topic):
        flags = self.rng.choice([os.O_WRONLY | os.O_APPEND, os.O_WRONLY, os.O_RDWR | os.O_APPEND,
                                 os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                 os.O_WRONLY | os.O_APPEND | os.O_DIRECT])
        path = '%s/%s/.log' % (self.mnt, topic)
        ok, fd = self.call('open.log', 'w%o' % flags, os.open, path, flags)
        if not ok:
            if fd not in (errno.EINVAL,):
                self.jw(t='E', op='open .log for append', kind='log', errno=errno.errorcode.get(fd, fd), args=oct(flags))
            return
        acked = []     # lines acknowledged by a write
        pend = b''     # bytes of the current line written so far
        nline = self.rng.randint(1, 6)
        for _ in range(nline):
            data = b''.join(self.line(topic) for _ in range(self.rng.choice([1, 1, 2, 5])))
            if self.rng.random() < 0.3:
                data = data[:self.rng.randint(12, len(data))]   # stop mid-line sometimes (a unique prefix)
            pos = 0
            while pos < len(data):
                c = self.rng.randint(1, len(data) - pos)
                if self.rng.random() < 0.1 and not flags & (os.O_APPEND | os.O_TRUNC) and \
                        os.fstat(fd).st_size > 20:
                    # a pwrite into the middle (must be refused) on the same fd
                    ok2, v2 = self.call('pwrite-mid', 'log', os.pwrite, fd, b'ZZ\n', self.rng.randint(0, 10))
                    if ok2:
                        self.jw(t='E', op='pwrite into the middle of .log succeeded', kind='log', errno='ok', args='')
                ok, k = self.call('write', 'log', os.write, fd, data[pos:pos + c])
                if not ok and k == errno.EPERM and not flags & (os.O_APPEND | os.O_TRUNC) and pos == 0:
                    break   # a write at 0 of a plain open: the middle of a non-empty .log (SPEC 3)
                if not ok:
                    self.jw(t='E', op='write .log', kind='log', errno=errno.errorcode.get(k, k), args='flags %o n %d pos %d written %d' % (flags, len(data), pos, len(pend)))
                    break
                chunk = data[pos:pos + k]
                pos += k
                pend += chunk
                while b'\n' in pend:
                    i = pend.index(b'\n')
                    acked.append(pend[:i + 1])
                    pend = pend[i + 1:]
                if self.rng.random() < 0.05:
                    self.call('fsync', 'log', os.fsync, fd)
            if pend and self.rng.random() < 0.5:
                break
        for l in acked:
            self.jw(t='L', topic=topic, v=l.decode())
        ok, e = self.call('close', 'log', os.close, fd)
        if pend:
            if ok:
                self.jw(t='L', topic=topic, v=pend.decode())
            else:
                self.jw(t='U', topic=topic, v=pend.decode(), errno=e)

    def big_line(self, topic):
        """a line over max_record_bytes: EFBIG, nothing of it appended"""
        path = '%s/%s/.log' % (self.mnt, topic)
        ok, fd = self.call('open.log', 'big', os.open, path, os.O_WRONLY | os.O_APPEND)
        if not ok:
            return
        good = self.line(topic)
        bad = b'BIG%d.%d.' % (self.p, self.nline) + b'y' * (self.maxrec + 10) + b'\n'
        data = good + bad if self.rng.random() < 0.5 else bad
        ok, k = self.call('write', 'log-big', os.write, fd, data)
        ok2, e2 = self.call('close', 'log-big', os.close, fd)
        # the good line may or may not be taken (a short count or EFBIG for the write)
        if data.startswith(good):
            if ok and k >= len(good):
                self.jw(t='L', topic=topic, v=good.decode())
            else:
                self.jw(t='U', topic=topic, v=good.decode(), errno=str(k))
        if ok and k == len(data) and ok2:
            self.jw(t='E', op='over-limit line fully acknowledged', kind='log-big', errno='ok', args=len(bad))
        self.jw(t='X', topic=topic, prefix=bad[:20].decode())

    # --------------------------------------------------------- created files
    def new_file(self, topic):
        self.nfile += 1
        final = 'p%d_%d' % (self.p, self.nfile)
        if os.environ.get('FZ_SHARED') and self.rng.random() < 0.2:
            final = 'shared%d' % self.rng.randint(0, 2)   # several processes write one name at once
        tmp = self.rng.random() < 0.3
        name = ('.%s.tmp' % final) if tmp else final
        path = '%s/%s/%s' % (self.mnt, topic, name)
        flags = os.O_CREAT | self.rng.choice([os.O_WRONLY, os.O_RDWR]) | \
            self.rng.choice([0, os.O_EXCL, os.O_TRUNC, os.O_APPEND, os.O_EXCL | os.O_TRUNC])
        ok, fd = self.call('open-create', 'new', os.open, path, flags, 0o644)
        if not ok:
            if not (final.startswith('shared') and fd == errno.EEXIST and flags & os.O_EXCL):
                self.jw(t='E', op='create', kind='new', errno=errno.errorcode.get(fd, fd), args=path)
            return
        buf = bytearray()
        pos = 0
        hdrs = {}
        uncertain = None
        trace = ['open %s flags %o' % (name, flags)]
        for _ in range(self.rng.randint(0, 8)):
            r = self.rng.random()
            trace.append('r=%.3f pos=%d len=%d' % (r, pos, len(buf)))
            if r < 0.35:
                d = self.fbytes(self.rng.choice([1, 10, 100, 1000, 5000]))
                ok, k = self.call('write', 'new', os.write, fd, d)
                if ok:
                    at = len(buf) if flags & os.O_APPEND else pos
                    if len(buf) < at:
                        buf.extend(b'\0' * (at - len(buf)))
                    buf[at:at + k] = d[:k]
                    pos = at + k
                else:
                    uncertain = 'write %s' % k
            elif r < 0.5:
                off = self.rng.randint(0, len(buf) + 50)
                d = self.fbytes(self.rng.choice([1, 10, 300]))
                ok, k = self.call('pwrite', 'new', os.pwrite, fd, d, off)
                if ok:
                    at = len(buf) if flags & os.O_APPEND else off   # linux: O_APPEND pwrite appends
                    if len(buf) < at:
                        buf.extend(b'\0' * (at - len(buf)))
                    buf[at:at + k] = d[:k]
                else:
                    uncertain = 'pwrite %s' % k
            elif r < 0.58:
                n = self.rng.randint(0, len(buf) + 100)
                ok, k = self.call('ftruncate', 'new', os.ftruncate, fd, n)
                if ok:
                    if n < len(buf):
                        del buf[n:]
                    else:
                        buf.extend(b'\0' * (n - len(buf)))
                else:
                    uncertain = 'ftruncate %s' % k
            elif r < 0.64:
                ok, st = self.call('fstat', 'new', os.fstat, fd)
                if ok and st.st_size != len(buf):
                    self.jw(t='E', op='fstat size of a file being written', kind='new', errno='ok',
                            args='%d != model %d; %s' % (st.st_size, len(buf), trace))
            elif r < 0.7 and flags & os.O_RDWR:
                off = self.rng.randint(0, len(buf) + 5)
                ok, d = self.call('pread', 'new', os.pread, fd, 4096, off)
                if ok and d != bytes(buf[off:off + 4096]):
                    self.jw(t='E', op='pread of a file being written served other bytes', kind='new',
                            errno='ok', args='off %d got %d model %d; %s' % (off, len(d), len(buf[off:off + 4096]), trace))
            elif r < 0.76:
                hn = 'h%d' % self.rng.randint(0, 3)
                hv = self.fbytes(self.rng.choice([0, 5, 50]))
                ok, _ = self.call('fsetxattr', 'new', os.setxattr, fd, 'user.streambus.header.' + hn, hv)
                if ok:
                    hdrs[hn] = hv.hex()
            elif r < 0.82:
                # copy bytes of a record into this file
                recs = self.records(topic)
                if recs:
                    rn = self.rng.choice(recs)
                    ok, sfd = self.call('open', 'rec', os.open, '%s/%s/%s' % (self.mnt, topic, rn), os.O_RDONLY)
                    if ok:
                        okr, src = self.call('pread', 'rec', os.pread, sfd, 1 << 20, 0)
                        soff = self.rng.randint(0, max(0, len(src) - 1)) if okr and src else 0
                        cnt = self.rng.randint(1, 3000)
                        at = len(buf) if flags & os.O_APPEND else pos
                        if self.rng.random() < 0.5:
                            ok, k = self.call('copy_file_range', 'rec->new', os.copy_file_range, sfd, fd, cnt, soff)
                        else:
                            os.lseek(sfd, soff, 0)
                            ok, k = self.call('sendfile', 'rec->new', os.sendfile, fd, sfd, None, cnt)
                        if ok and okr:
                            d = src[soff:soff + k]
                            if len(d) != k:
                                self.jw(t='E', op='copy returned more than the record holds', kind='new', errno='ok', args='')
                            if k > 0:
                                if len(buf) < at:
                                    buf.extend(b'\0' * (at - len(buf)))
                                buf[at:at + k] = d
                                pos = at + k
                        elif ok and not okr:
                            uncertain = 'copied unknown bytes'
                        elif not ok and k not in (errno.EXDEV, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                            uncertain = 'copy %s' % k
                        self.call('close', 'rec', os.close, sfd)
            elif r < 0.86:
                n = self.rng.randint(1, 200)
                ok, k = self.call('fallocate', 'new', os.posix_fallocate, fd, 0, n)
                if ok and flags & os.O_APPEND:
                    uncertain = 'fallocate (glibc emulation appends zeros under O_APPEND)'
                elif ok and n > len(buf):
                    buf.extend(b'\0' * (n - len(buf)))
            elif r < 0.9:
                self.call('fsync', 'new', os.fsync, fd)
            elif r < 0.94:
                wh = self.rng.choice([os.SEEK_SET, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE])
                ok, v = self.call('lseek', 'new', os.lseek, fd, 0, wh)
                if ok:
                    pos = v
            elif r < 0.97:
                self.call('fchmod', 'new', os.fchmod, fd, 0o600)
            elif r < 0.985:
                # a rename of the file being written onto something odd: must be refused
                tgt = self.rng.choice(['.log', '.keys', '.since/-1h', '00000000000000000000', '..', 'q/x',
                                       '../%s/%s' % ('b' if topic == 'a' else 'a', final), '../zz_%d' % self.p,
                                       '.keys/%s' % final])
                ok, e = self.call('rename-odd', 'new->' + tgt.split('/')[0], os.rename, path,
                                  os.path.normpath('%s/%s/%s' % (self.mnt, topic, tgt)))
                if ok:
                    self.jw(t='E', op='rename of a file being written onto %s succeeded' % tgt, kind='new', errno='ok', args=path)
                    uncertain = 'odd rename succeeded'
            else:
                # rename before the close
                self.nfile += 1
                nf = 'p%d_%d' % (self.p, self.nfile)
                ok, _ = self.call('rename', 'new->new', os.rename, path, '%s/%s/%s' % (self.mnt, topic, nf))
                if ok:
                    name, final, tmp, path = nf, nf, False, '%s/%s/%s' % (self.mnt, topic, nf)
        ok, e = self.call('close', 'new', os.close, fd)
        if tmp and ok:
            ok2, e2 = self.call('rename', 'tmp->final', os.rename, path, '%s/%s/%s' % (self.mnt, topic, final))
            if not ok2:
                self.jw(t='E', op='rename of a closed temp file', kind='new', errno=errno.errorcode.get(e2, e2), args=path)
                final = name
        rec = dict(topic=topic, key=final, sha=sha(bytes(buf)), n=len(buf), hdrs=hdrs, trace=trace)
        if ok and not uncertain:
            self.jw(t='F', **rec)
        else:
            rec['why'] = uncertain or ('close %s' % e)
            self.jw(t='UF', **rec)

    def key_write(self, topic):
        k = self.rng.choice(self.keys)
        path = '%s/%s/.keys/%s' % (self.mnt, topic, k)
        if self.rng.random() < 0.2:
            ok, e = self.call('unlink', 'key', os.unlink, path)
            if ok:
                self.jw(t='KT', topic=topic, key=k)
            elif e != errno.ENOENT:
                self.jw(t='UK', topic=topic, key=k, why='rm %s' % e)
            return
        v = self.fbytes(self.rng.choice([0, 1, 20, 2000]))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        ok, fd = self.call('open-create', 'key', os.open, path, flags, 0o644)
        if not ok:
            self.jw(t='UK', topic=topic, key=k, why='open %s' % fd)
            return
        ok, n = self.call('write', 'key', os.write, fd, v) if v else (True, 0)
        ok2, e = self.call('close', 'key', os.close, fd)
        if ok and n == len(v) and ok2:
            self.jw(t='K', topic=topic, key=k, sha=sha(v), n=len(v))
        else:
            self.jw(t='UK', topic=topic, key=k, why='write/close', sha=sha(v[:n] if ok else b''))

    def rm_oldest(self, topic):
        recs = self.records(topic)
        if not recs:
            return
        rn = recs[0]
        p = '%s/%s/%s' % (self.mnt, topic, rn)
        ok, fd = self.call('open', 'rec', os.open, p, os.O_RDONLY)
        if not ok:
            return
        ok, d = self.call('pread', 'rec', os.pread, fd, 2 << 20, 0)
        self.call('close', 'rec', os.close, fd)
        if not ok:
            return
        ok, e = self.call('unlink', 'oldest', os.unlink, p)
        if ok:
            self.jw(t='R', topic=topic, off=int(rn), sha=sha(d), n=len(d))

    # --------------------------------------------------------- noise
    def target(self, topic):
        r = self.rng.random()
        recs = self.records(topic) if r < 0.45 else []
        if recs:
            return 'rec', '%s/%s/%s' % (self.mnt, topic, self.rng.choice(recs))
        c = self.rng.choice(['log', 'since', 'since-bad', 'key', 'nokey', 'keysdir', 'topicdir',
                             'unpadded', 'root', 'sincedir', 'missing-rec'])
        t = '%s/%s' % (self.mnt, topic)
        return c, {'log': t + '/.log', 'since': t + '/.since/' + self.rng.choice(['-1h', '-2s', '@0', '2026-01-01', '@9999999999.5', '-0s']),
                   'since-bad': t + '/.since/' + self.rng.choice(['yesterday', '@', '-1x', '']),
                   'key': t + '/.keys/' + self.rng.choice(self.keys), 'nokey': t + '/.keys/nope%d' % self.p,
                   'keysdir': t + '/.keys', 'topicdir': t, 'unpadded': t + '/' + str(self.rng.randint(0, 40)),
                   'root': self.mnt, 'sincedir': t + '/.since', 'missing-rec': t + '/%020d' % 99999999}[c]

    def noise(self, topic, scratch):
        kind, path = self.target(topic)
        op = self.rng.choice(['read', 'pread', 'mmap', 'lseek', 'stat', 'xattr', 'listxattr', 'setxattr',
                              'removexattr', 'write', 'truncate', 'ftruncate', 'rename', 'link', 'symlink',
                              'mknod', 'mkdir', 'rmdir', 'chmod', 'utime', 'fallocate', 'readdir', 'odirect',
                              'copyout', 'unlink-any'])
        fresh = '%s/%s/q%d_%d' % (self.mnt, topic, self.p, self.rng.randint(0, 9))
        if op in ('read', 'pread', 'mmap', 'lseek', 'odirect', 'copyout'):
            fl = os.O_RDONLY | (os.O_DIRECT if op == 'odirect' else 0) | \
                (os.O_NONBLOCK if self.rng.random() < 0.2 else 0)
            ok, fd = self.call('open', kind, os.open, path, fl)
            if not ok:
                return
            try:
                if op in ('read', 'odirect'):
                    ok, d = self.call('read', kind, os.read, fd, self.rng.choice([1, 4096, 100000]))
                    if ok and kind == 'rec':
                        self.check_rec(path, 0, d)
                elif op == 'pread':
                    off = self.rng.choice([0, 1, 4095, 4096, 131072, 10 ** 6, 2 ** 40, self.rng.randint(0, 50000)])
                    ok, d = self.call('pread', kind, os.pread, fd, self.rng.choice([1, 100, 8192, 200000]), off)
                    if ok and kind == 'rec':
                        self.check_rec(path, off, d)
                    if ok and kind in ('log', 'since') and d and not scratch:
                        self.jw(t='G', kind=kind, path=path[len(self.mnt) + 1:], off=off, sha=sha(d), n=len(d))
                elif op == 'mmap':
                    ok, st = self.call('fstat', kind, os.fstat, fd)
                    if ok and st.st_size > 0:
                        ok, m = self.call('mmap', kind, mmap.mmap, fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ)
                        if ok:
                            d = m[:]
                            m.close()
                            if kind == 'rec':
                                self.check_rec(path, 0, d)
                elif op == 'lseek':
                    wh = self.rng.choice([os.SEEK_DATA, os.SEEK_HOLE, os.SEEK_END, os.SEEK_CUR])
                    ok, v = self.call('lseek', kind + str(wh), os.lseek, fd, self.rng.choice([0, 1, 100, 10 ** 7]), wh)
                elif op == 'copyout':
                    ofd = os.open('/tmp/t8/cpout.%d' % os.getpid(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    ok, k = self.call('copy_file_range', kind + '->tmp', os.copy_file_range, fd, ofd, 10000, 0)
                    os.close(ofd)
                    if ok and kind == 'rec':
                        with open('/tmp/t8/cpout.%d' % os.getpid(), 'rb') as f:
                            self.check_rec(path, 0, f.read())
            finally:
                self.call('close', kind, os.close, fd)
        elif op == 'stat':
            self.call('stat', kind, os.stat, path)
        elif op == 'xattr':
            self.call('getxattr', kind, os.getxattr, path, self.rng.choice(
                ['user.streambus.offset', 'user.streambus.key', 'user.streambus.timestamp',
                 'user.streambus.header.h0', 'user.x', 'security.selinux', 'system.posix_acl_access']))
        elif op == 'listxattr':
            self.call('listxattr', kind, os.listxattr, path)
        elif op == 'setxattr':
            ok, _ = self.call('setxattr', kind, os.setxattr, path, self.rng.choice(
                ['user.streambus.header.h9', 'user.streambus.timestamp', 'user.foo', 'user.streambus.key']), b'1')
            if ok and not scratch and kind == 'rec':
                self.jw(t='NOTE', op='setxattr on a record succeeded', path=path)
        elif op == 'removexattr':
            self.call('removexattr', kind, os.removexattr, path, 'user.streambus.key')
        elif op == 'write':
            fl = self.rng.choice([os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND])
            if not scratch and kind in ('key', 'nokey', 'missing-rec', 'unpadded'):
                return   # would append: not modelled
            if not scratch and kind == 'log' and fl & (os.O_APPEND | os.O_TRUNC):
                return
            ok, fd = self.call('open', kind + '-w', os.open, path, fl)
            if ok:
                if kind == 'log':
                    # a pwrite into the middle only
                    ok2, _ = self.call('pwrite', 'log-mid', os.pwrite, fd, b'Q\n', self.rng.randint(0, 3))
                    if ok2 and not scratch:
                        self.jw(t='E', op='pwrite into the middle of .log succeeded', kind='log', errno='ok', args=path)
                else:
                    ok2, _ = self.call('write', kind + '-w', os.write, fd, b'Q\n')
                    if ok2 and not scratch and kind in ('rec', 'since'):
                        self.jw(t='E', op='write to a %s succeeded' % kind, kind=kind, errno='ok', args=path)
                self.call('close', kind + '-w', os.close, fd)
        elif op in ('truncate', 'ftruncate', 'fallocate', 'utime') and not scratch and kind in ('key', 'nokey'):
            return   # these change a key's value (a write): not modelled here
        elif op == 'truncate':
            n = self.rng.choice([0, 1, 10 ** 6])
            ok, _ = self.call('truncate', kind, os.truncate, path, n)
        elif op == 'ftruncate':
            ok, fd = self.call('open', kind + '-w', os.open, path, os.O_WRONLY)
            if ok:
                self.call('ftruncate', kind, os.ftruncate, fd, 0)
                self.call('close', kind + '-w', os.close, fd)
        elif op == 'rename':
            ok, _ = self.call('rename', kind, os.rename, path, fresh)
            if ok and not scratch:
                self.jw(t='E', op='rename of a %s succeeded' % kind, kind=kind, errno='ok', args=path)
        elif op == 'link':
            ok, _ = self.call('link', kind, os.link, path, fresh)
            if ok and not scratch:
                self.jw(t='E', op='link of a %s succeeded' % kind, kind=kind, errno='ok', args=path)
        elif op == 'symlink':
            ok, _ = self.call('symlink', 'fresh', os.symlink, path, fresh)
            if ok and not scratch:
                self.jw(t='E', op='symlink in a topic succeeded', kind=kind, errno='ok', args=fresh)
        elif op == 'mknod':
            if scratch or self.rng.random() < 0.5:
                mode = self.rng.choice([stat.S_IFIFO | 0o644, stat.S_IFREG | 0o644, stat.S_IFSOCK | 0o644])
                if not scratch and mode & stat.S_IFREG == stat.S_IFREG and not mode & stat.S_IFSOCK == stat.S_IFSOCK:
                    return
                ok, _ = self.call('mknod', 'fresh', os.mknod, fresh, mode)
                if ok and not scratch:
                    self.jw(t='E', op='mknod (fifo/sock) in a topic succeeded', kind=kind, errno='ok', args=fresh)
        elif op == 'mkdir':
            tgt = self.rng.choice([fresh, '%s/z%d' % (self.mnt, self.rng.randint(0, 3)), '%s/.bad' % self.mnt,
                                   path + '/sub'])
            if not scratch and tgt.startswith('%s/z' % self.mnt):
                pass
            self.call('mkdir', 'x', os.mkdir, tgt)
        elif op == 'rmdir':
            tgt = self.rng.choice(['%s/z%d' % (self.mnt, self.rng.randint(0, 3)), path])
            if not scratch and tgt == '%s/%s' % (self.mnt, topic):
                return
            if tgt == self.mnt:
                return
            self.call('rmdir', kind, os.rmdir, tgt)
        elif op == 'chmod':
            self.call('chmod', kind, os.chmod, path, self.rng.choice([0o444, 0o644, 0o755, 0o000]))
        elif op == 'utime':
            t = self.rng.choice([None, (1, 1), (2e9, 2e9)])
            self.call('utime', kind, os.utime, path, t)
        elif op == 'fallocate':
            ok, fd = self.call('open', kind + '-w', os.open, path, os.O_WRONLY)
            if ok:
                okf, _ = self.call('fallocate', kind, os.posix_fallocate, fd, 0, 100)
                self.call('close', kind + '-w', os.close, fd)
        elif op == 'readdir':
            ok, names = self.call('readdir', kind, os.listdir, path)
            if ok and kind == 'topicdir':
                d = [x for x in names if x.isdigit()]
                if d != sorted(d) or len(set(names)) != len(names):
                    self.jw(t='E', op='readdir order/dup', kind=kind, errno='ok', args=path)
        elif op == 'unlink-any':
            if not scratch and kind not in ('nokey', 'missing-rec', 'unpadded'):
                return
            if not scratch and kind == 'unpadded':
                return
            self.call('unlink', kind, os.unlink, path)

    def check_rec(self, path, off, d):
        full = self.cache.get(path)
        if full is None:
            try:
                with open(path, 'rb') as f:
                    full = f.read()
            except OSError:
                return
            self.cache[path] = full
        if d != full[off:off + len(d)]:
            self.jw(t='E', op='record bytes differ between two reads', kind='rec', errno='ok',
                    args='%s off %d n %d' % (path, off, len(d)))

    def scratch_op(self):
        # topic z: anything, including creates of digits names, .keys/ writes without O_TRUNC
        t = self.rng.choice(['z', 'z0', 'z1'])
        p = '%s/%s' % (self.mnt, t)
        r = self.rng.random()
        if r < 0.15:
            self.call('mkdir', 'z', os.mkdir, p)
        elif r < 0.3:
            name = self.rng.choice(['%020d' % self.rng.randint(0, 30), str(self.rng.randint(0, 30)), 'k', '.keys/k',
                                    '.keys/k%2Fx', '.keys/%2E', 'x.tmp', '.log', '.since/-1h'])
            fl = os.O_WRONLY | os.O_CREAT | self.rng.choice([0, os.O_TRUNC, os.O_EXCL, os.O_APPEND])
            ok, fd = self.call('open-create', 'z', os.open, p + '/' + name, fl, 0o644)
            if ok:
                self.call('write', 'z', os.write, fd, b'zz%d\n' % self.p)
                if self.rng.random() < 0.3:
                    self.call('ftruncate', 'z', os.ftruncate, fd, self.rng.randint(0, 10))
                self.call('close', 'z', os.close, fd)
        elif r < 0.4:
            recs = self.records(t) if os.path.isdir(p) else []
            if recs:
                self.call('unlink', 'z', os.unlink, p + '/' + recs[0])
        elif r < 0.45:
            # rm -r
            try:
                for n in os.listdir(p):
                    self.call('unlink', 'z-rmr', os.unlink, p + '/' + n)
            except OSError:
                pass
            self.call('rmdir', 'z', os.rmdir, p)
        else:
            self.noise(t, True) if os.path.isdir(p) else None

    def run(self):
        for i in range(self.nops):
            r = self.rng.random()
            topic = self.rng.choice(['a', 'b'])
            try:
                if r < 0.18:
                    self.log_session(topic)
                elif r < 0.35:
                    self.new_file(topic)
                elif r < 0.45:
                    self.key_write(topic)
                elif r < 0.47 and topic == 'b':
                    self.rm_oldest('b')
                elif r < 0.475:
                    self.big_line(topic)
                elif r < 0.85:
                    self.noise(topic, False)
                else:
                    self.scratch_op()
            except OSError as ex:
                self.jw(t='PYERR', err=repr(ex))
        self.jw(t='STATS', stats=self.stats)
        self.j.close()


def worker(p, seed, mnt, nops, jpath, hb, maxrec):
    W(p, seed, mnt, nops, jpath, hb, maxrec).run()


# ------------------------------------------------------------- checking
def read_topic_mount(mnt, topic):
    out = []
    for n in sorted(x for x in os.listdir('%s/%s' % (mnt, topic)) if x.isdigit()):
        p = '%s/%s/%s' % (mnt, topic, n)
        try:
            with open(p, 'rb') as f:
                d = f.read()
        except FileNotFoundError:
            continue   # a compaction round removed it since the listing
        try:
            k = os.getxattr(p, 'user.streambus.key').decode()
        except OSError:
            k = None
        try:
            os.getxattr(p, 'user.streambus.tombstone')
            continue
        except OSError:
            pass
        out.append((int(n), k, d))
    return out


def check(journal, actual, keysview, compact, problems, tag):
    """actual: topic -> [(off, key, bytes)] (non-tombstone records)"""
    for topic in ('a', 'b'):
        recs = actual[topic]
        by_sha = {}
        for off, k, d in recs:
            by_sha.setdefault((k, sha(d)), []).append(off)
        used = set()
        last_off = {}
        removed = {j['off']: j for j in journal if j['t'] == 'R' and j['topic'] == topic}
        start = min([o for o, _, _ in recs], default=None)
        for j in journal:
            if j.get('topic') != topic:
                continue
            if j['t'] == 'L':
                key = (None, sha(j['v'].encode()))
            elif j['t'] == 'F':
                key = (j['key'], j['sha'])
            else:
                continue
            offs = [o for o in by_sha.get(key, []) if o not in used]
            if not offs:
                # removed by rm of the oldest?
                rm = [o for o, r in removed.items() if r['sha'] == key[1]]
                if rm:
                    continue
                if compact and j['t'] == 'F' and j['key'].startswith('shared'):
                    continue   # a later record of the shared name may have compacted it away
                problems.append('%s: %s acknowledged %s missing: %s' % (tag, topic, j['t'], (j.get('key'), j.get('v', '')[:60], j.get('n'), j.get('trace'))))
                continue
            wp = (j['_p'],)
            later = [x for x in offs if x > last_off.get(wp, -1)]
            o = min(later) if later else offs[0]   # identical payloads (empty files) of several writers
            used.add(o)
            if j['t'] == 'F' and j['key'].startswith('shared') and compact:
                pass
            if len(by_sha.get(key, [])) > 1 and j['t'] == 'L':
                problems.append('%s: %s line appears %d times: %r' % (tag, topic, len(by_sha[key]), j['v'][:60]))
            if j['t'] == 'F' and j['key'].startswith('shared'):
                continue   # identical (key, payload) pairs of several writers (empty files): no order to tell
            if wp in last_off and o < last_off[wp]:
                problems.append('%s: %s out of order for process %d at offset %d' % (tag, topic, j['_p'], o))
            last_off[wp] = o
        # strays: records no acknowledged op explains
        unc = set()
        for j in journal:
            if j.get('topic') != topic:
                continue
            if j['t'] == 'U':
                unc.add((None, sha(j['v'].encode())))
            elif j['t'] == 'UF':
                unc.add((j['key'], j['sha']))
                unc.add(('UF', j['key']))
            elif j['t'] in ('UK',):
                unc.add(('K', j['key']))
        keyed_writes = {}
        for j in journal:
            if j.get('topic') == topic and j['t'] in ('K', 'UK'):
                keyed_writes.setdefault(j['key'], set()).add(j.get('sha'))
        xs = [j['prefix'] for j in journal if j['t'] == 'X' and j['topic'] == topic]
        for off, k, d in recs:
            if off in used:
                continue
            if any(d.startswith(x.encode()) or x.encode()[3:] in d[:40] for x in xs):
                problems.append('%s: %s over-limit line (part) appended at %d: %r' % (tag, topic, off, d[:50]))
                continue
            if (k, sha(d)) in unc or ('UF', k) in unc:
                continue
            if k in keyed_writes:
                if sha(d) in keyed_writes[k] or None in keyed_writes[k]:
                    continue
                if ('K', k) in unc:
                    continue
            problems.append('%s: %s stray record %d key=%r n=%d %r' % (tag, topic, off, k, len(d), d[:60]))
        # keys: the latest state of each kp key (single writer each)
        state = {}
        for j in journal:
            if j.get('topic') != topic:
                continue
            if j['t'] == 'K':
                state[j['key']] = j['sha']
            elif j['t'] == 'KT':
                state[j['key']] = None
            elif j['t'] == 'UK':
                state[j['key']] = '?'
            elif j['t'] in ('F', 'UF') and j['key'] in state:
                state[j['key']] = '?'
        for k, v in state.items():
            if topic == 'b':
                break   # rm of the oldest record may take a key's latest record
            got = keysview[topic].get(k, None)
            if v == '?':
                continue
            if v is None and got is not None:
                problems.append('%s: %s key %s removed but .keys/ shows %s' % (tag, topic, k, got))
            elif v is not None and got != v:
                problems.append('%s: %s key %s latest %s, .keys/ shows %s' % (tag, topic, k, v, got))


def keys_view(mnt, topic):
    out = {}
    for k in os.listdir('%s/%s/.keys' % (mnt, topic)):
        if k.startswith('kp'):
            with open('%s/%s/.keys/%s' % (mnt, topic, k), 'rb') as f:
                out[k] = sha(f.read())
    return out


def run_seed(seed, nprocs, nops, keep, extra):
    rng = random.Random(seed)
    base = '/tmp/t8/fz-%s' % seed
    shutil.rmtree(base, ignore_errors=True)
    logdir, mnt = base + '/log', base + '/mnt'
    os.makedirs(logdir)
    os.makedirs(mnt)
    errlog = base + '/daemon.log'
    compact = rng.random() < 0.5
    maxrec = rng.choice([65536, 200000, 1048576])
    opts = ['segment_bytes=%d' % rng.choice([4096, 16384, 65536, 1 << 20]),
            'index_interval_bytes=%d' % rng.choice([1, 512, 4096, 65536]),
            'sync=%s' % rng.choice(['never', 'interval', 'always']),
            'compression=%s' % rng.choice(['none', 'lz4', 'zstd']),
            'max_record_bytes=%d' % maxrec]
    if compact:
        opts.append('cleanup=compact')
        opts.append('delete_retention_ms=%d' % rng.choice([0, 1000, 86400000]))
    if extra:
        opts.append(extra)
    opts = ','.join(opts)
    print('seed %s: procs %d ops %d opts %s' % (seed, nprocs, nops, opts), flush=True)
    problems = []
    pid = mount(logdir, mnt, opts, errlog)
    try:
        for t in ('a', 'b', 'z'):
            os.mkdir('%s/%s' % (mnt, t))
        hb = mp.Array('d', 2 * nprocs)
        procs = []
        for p in range(nprocs):
            pr = mp.Process(target=worker, args=(p, seed, mnt, nops, '%s/j%d' % (base, p), hb, maxrec))
            pr.start()
            procs.append(pr)
        t0 = time.time()
        hung = False
        while any(pr.is_alive() for pr in procs):
            time.sleep(0.5)
            now = time.time()
            for p in range(nprocs):
                if hb[2 * p + 1] and now - hb[2 * p] > HANG_S:
                    problems.append('HANG: process %d in a call for %.0f s (see its journal)' % (p, now - hb[2 * p]))
                    hung = True
            if not pid_alive(pid):
                problems.append('DAEMON DIED (pid %d) at %.1f s' % (pid, now - t0))
                break
            if hung:
                break
        if hung or not pid_alive(pid):
            subprocess.run(['bash', '-c', 'cat /proc/%d/task/*/stack > %s/stacks.txt 2>&1; '
                            'gdb -p %d -batch -ex "thread apply all bt" > %s/gdb.txt 2>&1' % (pid, base, pid, base)],
                           timeout=60)
            for pr in procs:
                pr.kill()
            raise Fail('; '.join(problems))
        dt = time.time() - t0
        journal = []
        stats = {}
        for p in range(nprocs):
            with open('%s/j%d' % (base, p)) as f:
                for l in f:
                    j = json.loads(l)
                    j['_p'] = p
                    if j['t'] == 'STATS':
                        for k, v in j['stats'].items():
                            stats[k] = stats.get(k, 0) + v
                    else:
                        journal.append(j)
        nops_done = sum(stats.values())
        for j in journal:
            if j['t'] in ('E', 'PYERR', 'SLOW'):
                problems.append('call: %s' % {k: v for k, v in j.items() if k != '_p'})
        # .log position reads of topic a without compaction and without removals
        actual = {t: read_topic_mount(mnt, t) for t in ('a', 'b')}
        kv = {t: keys_view(mnt, t) for t in ('a', 'b')}
        check(journal, actual, kv, compact, problems, 'mount')
        if not compact:
            loga = b''.join(d for _, _, d in actual['a'])
            with open('%s/a/.log' % mnt, 'rb') as f:
                if f.read() != loga:
                    problems.append('mount: a/.log is not its records back to back')
            for j in journal:
                if j['t'] == 'G' and j['path'] == 'a/.log':
                    if sha(loga[j['off']:j['off'] + j['n']]) != j['sha']:
                        problems.append('mount: a/.log read at %d (n %d) during the run differs from the final .log' % (j['off'], j['n']))
                if j['t'] == 'G' and j['path'].startswith('a/.since/'):
                    pass
        umount(mnt, logdir)
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('verify after clean unmount: rc %d %s' % (rc, (out.decode(errors="replace") + err)[-600:]))
        for t in ('a', 'b'):
            rc, recs, err = dump_json(logdir, t)
            if rc != 0:
                problems.append('dump %s rc %d: %s' % (t, rc, err[-300:]))
            dm = [(r['offset'], r.get('key'), r.get('value').encode() if 'value' in r else __import__('base64').b64decode(r['value_base64']))
                  for r in recs if not r.get('tombstone')]
            if (dm != actual[t]) if not compact else not set(dm) <= set(actual[t]):
                problems.append('dump %s differs from the mount (%d vs %d records)' % (t, len(dm), len(actual[t])))
            def val(r):
                return r['value'].encode() if 'value' in r else __import__('base64').b64decode(r.get('value_base64', ''))
            hdr = {(r.get('key'), sha(val(r))): {h['name']: h for h in r.get('headers', [])} for r in recs}
            for j in journal:
                if j['t'] == 'F' and j['topic'] == t and j['hdrs'] and (j['key'], j['sha']) in hdr and not j['key'].startswith('shared'):
                    got = hdr[(j['key'], j['sha'])]
                    for hn, hv in j['hdrs'].items():
                        g = got.get(hn)
                        gv = None if g is None else (g['value'].encode() if 'value' in g else __import__('base64').b64decode(g.get('value_base64', ''))).hex()
                        if gv != hv:
                            problems.append('header %s of %s/%s: %s want %s' % (hn, t, j['key'], gv, hv[:20]))
        mount(logdir, mnt, opts, errlog)
        actual2 = {t: read_topic_mount(mnt, t) for t in ('a', 'b')}
        for t in ('a', 'b'):
            if not compact and actual2[t] != actual[t]:
                problems.append('remount: %s differs (%d vs %d records)' % (t, len(actual2[t]), len(actual[t])))
        kv2 = {t: keys_view(mnt, t) for t in ('a', 'b')}
        check(journal, actual2, kv2, compact, problems, 'remount')
        umount(mnt, logdir)
        rc, out, err = tool('verify', logdir)
        if rc != 0:
            problems.append('verify after the second unmount: rc %d' % rc)
        nacks = sum(1 for j in journal if j['t'] in ('L', 'F', 'K', 'KT', 'R'))
        print('seed %s: %d calls in %.0f s, %d acknowledged appends/removals, %d records checked, %d problems'
              % (seed, nops_done, dt, nacks, len(actual['a']) + len(actual['b']), len(problems)), flush=True)
        with open(base + '/stats.json', 'w') as f:
            json.dump(stats, f, indent=1, sort_keys=True)
    finally:
        if is_mounted(mnt):
            force_umount(mnt, logdir)
    for p in problems[:40]:
        print('  PROBLEM', p, flush=True)
    if not problems and not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def main():
    a = sys.argv[1:]
    nprocs, nops, keep, extra = 4, 300, False, ''
    seeds = []
    i = 0
    while i < len(a):
        if a[i] == '--procs':
            nprocs = int(a[i + 1]); i += 2
        elif a[i] == '--ops':
            nops = int(a[i + 1]); i += 2
        elif a[i] == '--keep':
            keep = True; i += 1
        elif a[i] == '--opts':
            extra = a[i + 1]; i += 2
        else:
            seeds.append(a[i]); i += 1
    os.makedirs('/tmp/t8', exist_ok=True)
    bad = 0
    for s in seeds:
        try:
            if run_seed(s, nprocs, nops, keep, extra):
                bad += 1
        except Fail as e:
            print('seed %s: FAIL %s' % (s, e), flush=True)
            bad += 1
    print('%d of %d seeds with problems' % (bad, len(seeds)))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
