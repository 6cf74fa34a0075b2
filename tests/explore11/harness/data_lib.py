"""data_lib.py - mount helpers and a record model for the explore11 data tests."""
import os, sys, subprocess, time, signal, json, base64, errno, shutil

BUILD = os.path.realpath(os.environ.get('SB_BUILD', 'build'))
FS = BUILD + '/streambusfs'
TOOL = BUILD + '/streambus'
ROOT = '/tmp/e11data'


class Fail(Exception):
    pass


def is_mounted(mnt):
    mnt = os.path.realpath(mnt)
    with open('/proc/mounts') as f:
        return any(l.split()[1] == mnt for l in f)


def write_ini(path, logdir, mnt, glob, per, create=True):
    with open(path, 'w') as f:
        f.write('[mount]\nlog_dir = %s\nmountpoint = %s\ncreate = %s\n[log]\n' % (
            logdir, mnt, 'true' if create else 'false'))
        for k, v in glob.items():
            f.write('%s = %s\n' % (k, v))
        for t, d in per.items():
            f.write('[topic:%s]\n' % t)
            for k, v in d.items():
                f.write('%s = %s\n' % (k, v))


class Mount:
    def __init__(self, ini, mnt, errlog):
        self.ini, self.mnt, self.errlog = ini, os.path.realpath(mnt), errlog
        self.proc = None

    def start(self):
        os.makedirs(self.mnt, exist_ok=True)
        e = open(self.errlog, 'a')
        e.write('=== mount %s\n' % time.strftime('%T'))
        e.flush()
        self.proc = subprocess.Popen(['nice', '-n', '10', FS, '-f', '-c', self.ini], stdout=e, stderr=e)
        t0 = time.time()
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                raise Fail('mount failed rc=%s (see %s)' % (self.proc.returncode, self.errlog))
            if time.time() - t0 > 60:
                raise Fail('mount not ready in 60 s')
            time.sleep(0.02)
        return self

    def stop(self):
        if self.proc is None:
            return
        r = subprocess.run(['timeout', '60', 'fusermount3', '-u', self.mnt], capture_output=True, text=True)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Fail('daemon did not exit 60 s after unmount')
        finally:
            if is_mounted(self.mnt):
                subprocess.run(['umount', '-l', self.mnt], capture_output=True)
        rc = self.proc.returncode
        self.proc = None
        if r.returncode != 0:
            raise Fail('fusermount3 -u: %s' % r.stderr.strip())
        return rc

    def kill9(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        subprocess.run(['fusermount3', '-u', self.mnt], capture_output=True)
        if is_mounted(self.mnt):
            subprocess.run(['umount', '-l', self.mnt], capture_output=True)

    def cleanup(self):
        try:
            if self.proc is not None:
                self.stop()
        except Exception:
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if is_mounted(self.mnt):
            subprocess.run(['fusermount3', '-u', self.mnt], capture_output=True)
        if is_mounted(self.mnt):
            subprocess.run(['umount', '-l', self.mnt], capture_output=True)


def tool(*args, check=True):
    r = subprocess.run(['nice', '-n', '10', TOOL] + list(args), capture_output=True)
    if check and r.returncode != 0:
        raise Fail('streambus %s: rc=%d %s' % (' '.join(args), r.returncode, r.stderr.decode(errors='replace')[-2000:]))
    return r


def dump_json(logdir, topic):
    return dump_json_args(logdir, topic, [])


def dump_json_args(logdir, topic, extra):
    r = tool('dump', '--json', *extra, logdir, topic)
    out = {}
    for line in r.stdout.decode().splitlines():
        j = json.loads(line)
        if 'value' in j:
            v = j['value'].encode()
        elif 'value_base64' in j:
            v = base64.b64decode(j['value_base64'])
        else:
            v = b''
        hd = []
        for h in j.get('headers', []):
            hv = h.get('value')
            if hv is None and 'value_base64' in h:
                hv = base64.b64decode(h['value_base64'])
            elif isinstance(hv, str):
                hv = hv.encode()
            hd.append((h['name'], hv))
        k = j.get('key')
        kb = None
        if k is not None:
            kb = k.encode() if isinstance(k, str) else k
        if 'key_base64' in j:
            kb = base64.b64decode(j['key_base64'])
        out[j['offset']] = dict(value=v, key=kb, tomb=bool(j.get('tombstone')), headers=hd,
                                ts=j['timestamp_ns'], raw=j)
    return out


def enc_key(k):
    """the file name of key k (bytes) in .keys/ per README (short keys only)."""
    if k == b'.':
        return '%2E'
    if k == b'..':
        return '%2E%2E'
    out = b''
    for c in k:
        if c == ord('/'):
            out += b'%2F'
        elif c == ord('%'):
            out += b'%25'
        elif c == 0:
            out += b'%00'
        else:
            out += bytes([c])
    return os.fsdecode(out)


def rec_file_view(d):
    """records through the mount: offset -> dict(value,key,tomb,headers,ts)"""
    out = {}
    for x in sorted(os.listdir(d)):
        if not x.isdigit():
            continue
        p = d + '/' + x
        try:
            with open(p, 'rb') as f:
                data = f.read()
            xa = {a: os.getxattr(p, a) for a in os.listxattr(p)}
            st = os.stat(p)
        except FileNotFoundError:
            continue
        hd = sorted((a[len('user.streambus.header.'):], v) for a, v in xa.items()
                    if a.startswith('user.streambus.header.'))
        out[int(x)] = dict(value=data, key=xa.get('user.streambus.key'), tomb='user.streambus.tombstone' in xa,
                           headers=hd, ts=int(xa['user.streambus.timestamp']), mtime=st.st_mtime_ns,
                           size=st.st_size)
    return out
