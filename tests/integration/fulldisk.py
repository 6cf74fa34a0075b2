# fulldisk.py - the workload of t_fulldisk.sh: fill a mount until the disk is
# full, remove old records, append again, and check the log against what was
# acknowledged. State (every acknowledged payload per topic, and how many of
# the oldest were removed) lives in a pickle between the steps.
#
#   fulldisk.py fill STATE MNT SEED TOPIC...  append random records (lines
#        through .log, whole files by creating them, random sizes) round
#        robin until ENOSPC; prints "ERRNAME acked"; then checks that a few
#        more appends of each kind fail with ENOSPC too ("extra ERRNAME...")
#   fulldisk.py check STATE MNT TOPIC         .log is exactly the acknowledged
#        records from the start on, one file per record: prints OK or why not
#   fulldisk.py rmold STATE MNT TOPIC         rm the oldest records, a few at a
#        time, until the filesystem has more room: prints "removed N freed B"
#   fulldisk.py append STATE MNT TOPIC        one line and one file: OK or ERR
#   fulldisk.py avail MNT                     bytes free (statvfs)
#   fulldisk.py drop STATE TOPIC              forget a removed topic
import errno
import os
import pickle
import random
import sys
import time


def load(path):
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    return {}


def save(path, st):
    with open(path + ".new", "wb") as f:
        pickle.dump(st, f)
    os.replace(path + ".new", path)


def topic(st, name):
    return st.setdefault(name, {"recs": [], "removed": 0, "files": 0})


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def append_line(mnt, name, payload):
    fd = os.open(os.path.join(mnt, name, ".log"), os.O_WRONLY | os.O_APPEND)
    try:
        if os.write(fd, payload) != len(payload):
            raise OSError(errno.EIO, "short write")
    finally:
        os.close(fd)


def append_file(mnt, name, t, payload):
    t["files"] += 1
    path = os.path.join(mnt, name, "k%d" % t["files"])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if os.write(fd, payload) != len(payload):
            raise OSError(errno.EIO, "short write")
    finally:
        os.close(fd)  # the record is appended here: ENOSPC shows up here


def payload(rng, i, line, n=None):
    if n is None:
        n = rng.randint(1, 12000)
    body = b"%d:" % i + bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(16)) * (n // 16 + 1)
    body = body[:n]
    return body + b"\n" if line else body


def one(mnt, name, t, rng, i, n=None):
    line = rng.random() < 0.5
    p = payload(rng, i, line, n)
    if line:
        append_line(mnt, name, p)
    else:
        append_file(mnt, name, t, p)
    t["recs"].append(p)


def fill(state, mnt, seed, names):
    """Random sizes until the first ENOSPC, then smaller and smaller records
    until even a record of one byte does not fit: the disk is full."""
    st = load(state)
    rng = random.Random(seed)
    err = "none"
    i = 0
    for size in (None, 4096, 512, 64, 1):
        # round robin until every topic failed three times in a row
        fails = dict((name, 0) for name in names)
        while i < 200000 and min(fails.values()) < 3:
            name = names[i % len(names)]
            i += 1
            try:
                one(mnt, name, topic(st, name), rng, i, size)
                fails[name] = 0
            except OSError as e:
                if err == "none" or e.errno != errno.ENOSPC:
                    err = errname(e)
                fails[name] += 1
    # a new topic takes a segment file: make topics until that does not fit
    # either (the daemon preallocates in chunks; this takes what is left)
    z = 0
    while z < 1000:
        try:
            os.mkdir(os.path.join(mnt, "z%d-%d" % (seed, z)))
            z += 1
        except OSError as e:
            if e.errno != errno.ENOSPC:
                err = "mkdir:" + errname(e)
            break
    st.setdefault("-empty", []).extend("z%d-%d" % (seed, k) for k in range(z))
    save(state, st)
    extra = []
    try:
        os.mkdir(os.path.join(mnt, "y%d" % seed))
        os.rmdir(os.path.join(mnt, "y%d" % seed))
        extra.append("OK")
    except OSError as e:
        extra.append(errname(e))
    for name in names:
        t = topic(st, name)
        for line in (True, False):
            try:
                p = payload(rng, i, line, 1)
                if line:
                    append_line(mnt, name, p)
                else:
                    append_file(mnt, name, t, p)
                t["recs"].append(p)  # it went in after all: keep the model right
                save(state, st)
                extra.append("OK")
            except OSError as e:
                extra.append(errname(e))
    print(err, i, avail(mnt), " ".join(extra))


def check(state, mnt, name):
    t = topic(load(state), name)
    recs = t["recs"][t["removed"]:]
    want = b"".join(recs)
    with open(os.path.join(mnt, name, ".log"), "rb") as f:
        got = f.read()
    if got != want:
        n = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        return print("%s/.log: %d bytes, want %d; first difference at byte %d" % (name, len(got), len(want), n))
    ls = sorted(os.listdir(os.path.join(mnt, name)))
    names = ["%020d" % (t["removed"] + k) for k in range(len(recs))]
    if ls != names:
        return print("%s: %d files listed (%s..), want %d (%s..)" % (
            name, len(ls), ls[:1], len(names), names[:1]))
    # every record file, spot-checked at random places, and the first and last
    rng = random.Random(len(recs))
    for k in sorted(set([0, len(recs) - 1] + [rng.randrange(len(recs)) for _ in range(50)])) if recs else []:
        with open(os.path.join(mnt, name, names[k]), "rb") as f:
            if f.read() != recs[k]:
                return print("%s/%s: payload differs" % (name, names[k]))
    print("OK")


def avail(mnt):
    s = os.statvfs(mnt)
    return s.f_bavail * s.f_frsize


def rmold(state, mnt, name):
    st = load(state)
    t = topic(st, name)
    before = avail(mnt)
    removed = 0
    deadline = time.time() + 60
    # at most all but 10 records; a few at a time, then give the daemon a
    # moment to drop them from the store
    while t["removed"] < len(t["recs"]) - 10 and time.time() < deadline:
        for _ in range(25):
            if t["removed"] >= len(t["recs"]) - 10:
                break
            os.unlink(os.path.join(mnt, name, "%020d" % t["removed"]))
            t["removed"] += 1
            removed += 1
        save(state, st)
        for _ in range(10):
            if avail(mnt) > before:
                break
            time.sleep(0.05)
        if avail(mnt) > before:
            break
    print("removed", removed, "freed", avail(mnt) - before)


def append(state, mnt, name):
    st = load(state)
    t = topic(st, name)
    rng = random.Random(len(t["recs"]))
    for line in (True, False):
        p = payload(rng, len(t["recs"]), line)
        try:
            if line:
                append_line(mnt, name, p)
            else:
                append_file(mnt, name, t, p)
        except OSError as e:
            save(state, st)
            return print(("line" if line else "file"), errname(e))
        t["recs"].append(p)
        save(state, st)
    print("OK")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "empty":
        for name in load(args[0]).get("-empty", []):
            if os.listdir(os.path.join(args[1], name)):
                return print(name, "is not empty")
        print("OK")
    elif cmd == "fill":
        fill(args[0], args[1], int(args[2]), args[3:])
    elif cmd == "check":
        check(*args)
    elif cmd == "rmold":
        rmold(*args)
    elif cmd == "append":
        append(*args)
    elif cmd == "avail":
        print(avail(args[0]))
    elif cmd == "drop":
        st = load(args[0])
        st.pop(args[1], None)
        save(args[0], st)
    else:
        sys.exit("fulldisk.py: unknown command " + cmd)


main()
