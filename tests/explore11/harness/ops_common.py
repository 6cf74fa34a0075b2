"""ops_common.py - shared helpers of the explore11 ops harness (mount, unmount,
daemon pid, workload, checks). Run from /work/main; SB_BUILD (default build)."""
import os, subprocess, time, signal, errno, shutil, random

SB = os.environ.get('SB_BUILD', 'build')
if not SB.startswith('/'):
    SB = os.path.join(os.getcwd(), SB)
FS = SB + '/streambusfs'
TOOL = SB + '/streambus'
ROOT = '/tmp/e11ops'


def mounted(mnt):
    mnt = os.path.realpath(mnt)
    with open('/proc/mounts') as f:
        return any(l.split()[1] == mnt for l in f)


def daemon_pids(mnt):
    """pids of streambusfs processes whose command line names mnt (ours only)."""
    out = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            cl = open('/proc/%s/cmdline' % p, 'rb').read().split(b'\0')
        except OSError:
            continue
        if cl and cl[0].endswith(b'streambusfs') and any(mnt.encode() in a for a in cl):
            out.append(int(p))
    return out


def start(args, cwd=None, timeout=30):
    """run streambusfs ARGS (detaching); returns (rc, stdout+stderr)."""
    try:
        r = subprocess.run(['nice', '-n', '10', FS] + args, cwd=cwd, capture_output=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return r.returncode, (r.stdout + r.stderr).decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        return 'TIMEOUT', ((e.stdout or b'') + (e.stderr or b'')).decode('utf-8', 'replace')


def umount(mnt, wait=True):
    """fusermount3 -u, then umount -l; kill leftover daemons of mnt. True if clean."""
    clean = True
    pids = daemon_pids(mnt)
    if mounted(mnt):
        r = subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
        if r.returncode != 0:
            clean = False
            time.sleep(0.5)
            r = subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
            if r.returncode != 0:
                subprocess.run(['umount', '-l', mnt], capture_output=True)
    if wait:
        t0 = time.time()
        while time.time() - t0 < 20 and any(os.path.exists('/proc/%d' % p) for p in pids):
            time.sleep(0.05)
    for p in pids:
        if os.path.exists('/proc/%d' % p):
            clean = False
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    return clean


def tool(*args, timeout=60):
    try:
        r = subprocess.run(['nice', '-n', '10', TOOL] + list(args), capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout.decode('utf-8', 'replace'), r.stderr.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired:
        return 'TIMEOUT', '', ''


def records(mnt, topic, skip_gone=False):
    """[(offset, bytes)] of the topic's records through the mount, in ls order.
    skip_gone: a record removed between ls and read (ENOENT) is left out."""
    d = os.path.join(mnt, topic)
    out = []
    for n in sorted(os.listdir(d)):
        if n.isdigit() and len(n) == 20:
            try:
                with open(os.path.join(d, n), 'rb') as f:
                    out.append((int(n), f.read()))
            except FileNotFoundError:
                if not skip_gone:
                    raise
    return out


def write_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def append_log(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        n = os.write(fd, data)
        assert n == len(data), (n, len(data))
    finally:
        os.close(fd)
