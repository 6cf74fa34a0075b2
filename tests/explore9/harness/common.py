"""common.py - round 9's harness helpers: round 8's mount helpers
(tests/explore8/harness/common.py, loaded from there, not copied) and the
Kafka mock cluster (run under nice)."""
import importlib.util
import os
import subprocess
import time

_r8_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'explore8', 'harness', 'common.py')
_spec = importlib.util.spec_from_file_location('explore8_common', _r8_path)
_r8 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_r8)
globals().update({k: v for k, v in vars(_r8).items() if not k.startswith('__')})


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
