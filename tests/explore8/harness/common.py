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
