"""common.py - mount helpers shared by the round-8 harness (run under nice)."""
import os, subprocess, time, signal, json

BUILD = os.path.realpath(os.environ.get('SB_BUILD', 'build'))
FS = BUILD + '/streambusfs'
TOOL = BUILD + '/streambus'


class Fail(Exception):
    pass


def is_mounted(mnt):
    mnt = os.path.realpath(mnt)
    with open('/proc/mounts') as f:
        return any(l.split()[1] == mnt for l in f)


def daemon_pid(logdir):
    try:
        with open(os.path.join(logdir, '.lock')) as f:
            return int(f.readline().split()[0])
    except Exception:
        return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def mount(logdir, mnt, opts, errlog, timeout=60):
    with open(errlog, 'a') as e:
        e.write('=== mount %s -o %s\n' % (time.strftime('%T'), opts))
        e.flush()
        r = subprocess.run(['timeout', str(timeout), FS, '-c', '/dev/null', '-o', opts, logdir, mnt],
                           stdout=e, stderr=e)
    if r.returncode != 0 or not is_mounted(mnt):
        raise Fail('mount failed rc=%d (see %s)' % (r.returncode, errlog))
    return daemon_pid(logdir)


def umount(mnt, logdir, wait=True):
    pid = daemon_pid(logdir)
    r = subprocess.run(['timeout', '60', 'fusermount3', '-u', mnt], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail('fusermount3 -u failed: %s' % r.stderr.strip())
    if wait:
        t0 = time.time()
        while pid and pid_alive(pid) and time.time() - t0 < 60:
            time.sleep(0.02)
        if pid and pid_alive(pid):
            raise Fail('daemon %d still alive 60 s after unmount' % pid)
    return pid


def force_umount(mnt, logdir=None):
    pid = daemon_pid(logdir) if logdir else None
    subprocess.run(['fusermount3', '-u', mnt], capture_output=True)
    if is_mounted(mnt):
        subprocess.run(['fusermount3', '-uz', mnt], capture_output=True)
    if pid and pid_alive(pid):
        time.sleep(2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def tool(*args, timeout=120):
    r = subprocess.run(['timeout', str(timeout), TOOL] + list(args), capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors='replace')


def dump_json(logdir, topic):
    """-> list of dicts from streambus dump --json (one per line)."""
    rc, out, err = tool('dump', '--json', logdir, topic)
    recs = []
    for l in out.decode(errors='replace').split('\n'):
        l = l.strip()
        if l:
            recs.append(json.loads(l))
    return rc, recs, err


# ---- round 9: the Kafka backend against librdkafka's mock cluster ----
MOCK = BUILD + '/streambus-kafka-mock'


class Mock:
    """streambus-kafka-mock in a process of its own; commands on its stdin."""

    def __init__(self, tmp, brokers=3, topics=()):
        self.addrfile = os.path.join(tmp, 'kafka.addr')
        self.outpath = os.path.join(tmp, 'kafka.out')
        self.out = open(self.outpath, 'w')
        args = [MOCK, '-n', str(brokers), '-o', self.addrfile]
        for t in topics:
            args += ['-t', t]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=self.out,
                                  stderr=subprocess.STDOUT, text=True)
        t0 = time.time()
        while not os.path.exists(self.addrfile):
            if time.time() - t0 > 10 or self.p.poll() is not None:
                raise Fail('mock did not start')
            time.sleep(0.05)
        self.addr = open(self.addrfile).read().strip()

    def cmd(self, c):
        n = len(open(self.outpath).read().splitlines())
        self.p.stdin.write(c + '\n')
        self.p.stdin.flush()
        t0 = time.time()
        while time.time() - t0 < 10:
            lines = open(self.outpath).read().splitlines()
            if len(lines) > n:
                if not lines[-1].startswith('ok'):
                    raise Fail('mock %r: %s' % (c, lines[-1]))
                return
            time.sleep(0.02)
        raise Fail('mock: no answer to %r' % c)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


def kafka_mount_fg(mnt, addr, tmp, extra=(), timeout_ms=3000, seq=[0]):
    """Mount the cluster with -f in the background: -> (Popen, log path)."""
    seq[0] += 1
    ini = os.path.join(tmp, 'kafka.%d.ini' % seq[0])
    with open(ini, 'w') as f:
        f.write('[mount]\nbackend = kafka\nmountpoint = %s\n[kafka]\nbootstrap.servers = %s\n'
                'timeout_ms = %d\n' % (mnt, addr, timeout_ms))
        for kv in extra:
            f.write('%s = %s\n' % kv)
    log = os.path.join(tmp, 'daemon.%d.out' % seq[0])
    p = subprocess.Popen([FS, '-f', '-c', ini], stdout=open(log, 'w'), stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    t0 = time.time()
    while not is_mounted(mnt):
        if p.poll() is not None:
            raise Fail('kafka daemon exited before mounting (%s)' % log)
        if time.time() - t0 > 20:
            raise Fail('no mount after 20 s')
        time.sleep(0.05)
    return p, log


def kafka_umount(mnt, p):
    r = subprocess.run(['timeout', '60', 'fusermount3', '-u', mnt], capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(['fusermount3', '-uz', mnt], capture_output=True)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Fail('kafka daemon still alive 60 s after unmount')
    return r.returncode, r.stderr.strip(), p.returncode
