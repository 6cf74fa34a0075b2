#!/usr/bin/env python3
"""hostile.py - byte-level hostile inputs for t_hostile.sh (not a test itself).

hostile.py CASE MNT [ARGS...] runs one group of cases against a mounted
StreamBus FS and prints one line per check: "PASS what" or "FAIL what: why".
Names are bytes (non-UTF-8 allowed); every expected errno is SPEC's (§2, §3,
§5) or, where SPEC is silent, the one a filesystem user expects (kernel
errors such as ENAMETOOLONG come from the VFS before the daemon sees the
call). A seed (SB_HOSTILE_SEED) makes the random names reproducible.
"""
import errno
import os
import random
import stat
import sys

ALLOWED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
SEED = int(os.environ.get("SB_HOSTILE_SEED", "0")) or random.randrange(1 << 30)
rng = random.Random(SEED)


def out(ok, what, why=""):
    what = what.replace("\n", "\\n")
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + why), flush=True)


def call(f):
    """The errno name f raised, or OK."""
    try:
        f()
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def expect(what, exp, f):
    got = call(f)
    exps = exp.split("|")
    out(got in exps, what, "expected %s, got %s" % (exp, got))
    return got


def shown(b):
    return repr(b[:40]) + ("...(%d bytes)" % len(b) if len(b) > 40 else "")


def valid_topic(b):
    return 1 <= len(b) <= 249 and all(c in ALLOWED for c in b) and b[:1] != b"."


def random_name(lo=1, hi=255):
    """NUL-free, '/'-free random bytes; sometimes all from the allowed set."""
    n = rng.randint(lo, hi)
    kind = rng.random()
    if kind < 0.3:
        alpha = bytes(sorted(ALLOWED))
    elif kind < 0.6:
        alpha = bytes(range(128, 256))         # never UTF-8 alone
    else:
        alpha = bytes(b for b in range(1, 256) if b != 0x2F)
    return bytes(rng.choice(alpha) for _ in range(n))


def case_topics(mnt, n):
    n = int(n)
    """mkdir of hostile topic names: EINVAL (or the kernel's own errno)."""
    m = os.fsencode(mnt)
    before = set(os.listdir(m))
    fixed = [b".", b"..", b".hidden", b"..x", b"a\nb", b"\n", b"\xff", b"\xc3\x28",
             b"\xed\xa0\x80", b"caf\xc3\xa9", b" ", b"a b", b"-", b"_", b"9",
             b"x" * 249, b"x" * 250, b"x" * 255, b"y" * 256, b"z" * 4000,
             b"\x01", b"\x7f", b"%2F", b"a\\b", b"*", b"?"]
    names = list(dict.fromkeys(fixed + [random_name() for _ in range(n)]))
    made = []
    for b in names:
        p = m + b"/" + b
        if b in (b".", b".."):
            exp = "EEXIST"
        elif len(b) > 255:
            exp = "ENAMETOOLONG|EINVAL"
        elif valid_topic(b):
            exp = "OK|EEXIST" if b in before else "OK"
        else:
            exp = "EINVAL"
        got = expect("mkdir %s" % shown(b), exp, lambda: os.mkdir(p))
        if got == "OK":
            made.append(b)
            expect("stat of the new topic %s" % shown(b), "OK", lambda: os.stat(p))
        elif exp == "EINVAL":
            expect("stat of refused %s" % shown(b), "ENOENT|ENAMETOOLONG", lambda: os.stat(p))
            expect("rmdir of refused %s" % shown(b), "ENOENT|ENAMETOOLONG", lambda: os.rmdir(p))
    # a path through a name with '/' names a topic that does not exist
    expect("mkdir nosuch/x (a '/' in the name)", "ENOENT", lambda: os.mkdir(m + b"/nosuch/x"))
    expect("mkdir of a NUL name never reaches the daemon", "ValueError",
           lambda: _value_error(lambda: os.mkdir(m + b"/a\x00b")))
    now = set(os.listdir(m))
    out(now == before | set(made), "the root lists exactly the topics made",
        "extra %r, missing %r" % (sorted(now - before - set(made))[:5], sorted(before | set(made) - now)[:5]))
    for b in made:
        expect("rmdir %s" % shown(b), "OK", lambda: os.rmdir(m + b"/" + b))
    print("INFO seed %d" % SEED)


def _value_error(f):
    try:
        f()
    except ValueError:
        raise OSError(0, "ValueError")


errno.errorcode.setdefault(0, "ValueError")


def case_records(mnt, topic, count, n):
    """Lookups of hostile record names in a topic of COUNT records 0..COUNT-1
    whose payloads are 'r<offset>\\n'."""
    t = os.fsencode(os.path.join(mnt, topic))
    count = int(count)
    n = int(n)
    absent = [b"-1", b"-0", b"+1", b"+0", b" 1", b"1 ", b"1\n", b"0x1", b"1e0", b"1.0",
              b"18446744073709551615", b"18446744073709551616", b"99999999999999999999",
              b"123456789012345678901", b"0" * 20 + b"1", b"0" * 40 + b"1",
              b"9" * 250, b"\xff1", b"1\xff", b"", b"%d" % count, b"%020d" % count,
              b"-%020d" % 1, b"\xd9\xa1", b"\xef\xbc\x91"]   # Arabic-Indic and fullwidth 1
    for _ in range(n):
        k = rng.random()
        if k < 0.25:
            absent.append(b"-%d" % rng.randint(1, 1 << 70))
        elif k < 0.5:
            absent.append(b"%d" % rng.randint(1 << 64, 1 << 80))
        elif k < 0.75:
            absent.append(b"%d" % rng.randint(count, (1 << 64) - 1))
        else:
            absent.append(random_name(1, 30))
    # "." and ".." are the topic and the root (the kernel's, never looked
    # up), and a topic's own entries (.log, .keys, .since) are no records:
    # a random name may be one of them
    special = {b".", b".."} | {e for e in os.listdir(t) if e.startswith(b".")}
    for b in (b".", b".."):
        try:
            out(stat.S_ISDIR(os.stat(t + b"/" + b).st_mode), "%s in a topic is a directory" % shown(b))
        except OSError as e:
            out(False, "%s in a topic" % shown(b), errno.errorcode.get(e.errno, str(e.errno)))
    for b in absent:
        if not b or b in special:
            continue
        if b.isdigit() and all(c in b"0123456789" for c in b) and int(b) < count and len(b) <= 20:
            continue   # a random name that happens to be a record
        expect("lookup of record name %s" % shown(b), "ENOENT|ENAMETOOLONG",
               lambda: os.stat(t + b"/" + b))
        expect("open of record name %s" % shown(b), "ENOENT|ENAMETOOLONG",
               lambda: os.close(os.open(t + b"/" + b, os.O_RDONLY)))
    # present: padded, unpadded and with fewer zeros all find the record
    for _ in range(n):
        o = rng.randrange(count)
        want = b"r%d\n" % o
        for b in (b"%020d" % o, b"%d" % o, b"%0*d" % (rng.randint(1, 20), o)):
            try:
                with open(t + b"/" + b, "rb") as f:
                    got = f.read()
                out(got == want, "read of record %s" % shown(b), "got %r" % got[:40])
            except OSError as e:
                out(False, "read of record %s" % shown(b), errno.errorcode.get(e.errno, str(e.errno)))


def case_ops(mnt, topic):
    """Calls that change a record or .log: EPERM (SPEC §3) or the errno a
    filesystem gives for that kind of file."""
    m = os.fsencode(mnt)
    t = m + b"/" + os.fsencode(topic)
    r = t + b"/" + b"%020d" % 1
    log = t + b"/.log"
    before = open(log, "rb").read()
    recs = sorted(os.listdir(t))
    E = expect
    E("symlink in a topic", "EPERM", lambda: os.symlink(b"x", t + b"/sl"))
    E("symlink named like the next record", "EPERM", lambda: os.symlink(b"x", t + b"/%020d" % len(recs)))
    E("symlink at the root", "EPERM", lambda: os.symlink(b"x", m + b"/sl"))
    E("mkfifo in a topic", "EPERM", lambda: os.mkfifo(t + b"/ff"))
    E("mknod at the root", "EPERM", lambda: os.mkfifo(m + b"/ff"))
    E("create a file at the root", "EPERM", lambda: os.close(os.open(m + b"/f", os.O_CREAT | os.O_WRONLY)))
    E("mkdir inside a topic", "EPERM", lambda: os.mkdir(t + b"/sub"))
    E("rename of a topic", "EPERM", lambda: os.rename(t, m + b"/renamed"))
    E("rename of a record to the root", "EPERM", lambda: os.rename(r, m + b"/x"))
    E("rename of a record onto .log", "EPERM", lambda: os.rename(r, log))
    E("rename of .log onto a record", "EPERM", lambda: os.rename(log, r))
    E("link of .log to the root", "EPERM", lambda: os.link(log, m + b"/x"))
    E("link of a record onto a record", "EEXIST|EPERM", lambda: os.link(r, t + b"/%020d" % 0))
    E("unlink of .log", "EPERM", lambda: os.unlink(log))
    E("unlink of a topic", "EISDIR", lambda: os.unlink(t))
    E("rmdir of a record", "ENOTDIR", lambda: os.rmdir(r))
    E("rmdir of .log", "ENOTDIR", lambda: os.rmdir(log))
    E("opendir of a record", "ENOTDIR", lambda: os.listdir(r))
    E("opendir of .log", "ENOTDIR", lambda: os.listdir(log))
    E("lookup under a record", "ENOTDIR", lambda: os.stat(r + b"/x"))
    E("readlink of a record", "EINVAL", lambda: os.readlink(r))
    E("open O_TRUNC of a record", "EPERM|EACCES", lambda: os.open(r, os.O_WRONLY | os.O_TRUNC))
    E("open O_CREAT|O_EXCL of a record", "EEXIST", lambda: os.open(r, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    E("open O_CREAT|O_EXCL of .log", "EEXIST", lambda: os.open(log, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    E("chmod of a record", "EPERM", lambda: os.chmod(r, 0o666))
    E("chmod of .log", "EPERM", lambda: os.chmod(log, 0o600))
    E("chown of a record", "EPERM", lambda: os.chown(r, 4321, 4321))
    E("utime of .log", "EPERM", lambda: os.utime(log, (1, 1)))
    E("utime of a record to another time", "EPERM", lambda: os.utime(r, (1, 1)))

    def ftrunc(p, flags, size):
        fd = os.open(p, flags)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
    E("ftruncate of an open .log to 0", "EPERM", lambda: ftrunc(log, os.O_WRONLY | os.O_APPEND, 0))
    E("ftruncate of an open .log beyond its end", "EPERM", lambda: ftrunc(log, os.O_WRONLY | os.O_APPEND, 1 << 40))

    def falloc(p):
        fd = os.open(p, os.O_WRONLY)
        try:
            os.posix_fallocate(fd, 0, 1 << 20)
        finally:
            os.close(fd)
    E("fallocate of .log", "EPERM|EOPNOTSUPP", lambda: falloc(log))
    for name, p in ((b"record", r), (b".log", log), (b"topic", t), (b"root", m)):
        for xa in ("user.foo", "user.streambus.offset", "user.streambus.key", "trusted.x", "security.x"):
            # another value than the record's (its own succeeds: rsync -aX)
            E("setxattr %s on a %s" % (xa, name.decode()), "ENOTSUP|EPERM",
              lambda: os.setxattr(p, xa, b"not-its-value"))
        E("removexattr user.streambus.offset of a %s" % name.decode(), "ENOTSUP|EPERM|ENODATA",
          lambda: os.removexattr(p, "user.streambus.offset"))
    E("getxattr of a name a record lacks", "ENODATA", lambda: os.getxattr(r, "user.nope"))
    E("getxattr of a 255-byte name", "ENODATA|ERANGE", lambda: os.getxattr(r, "user." + "x" * 250))
    E("getxattr of a 256-byte name", "ERANGE", lambda: os.getxattr(r, "user." + "x" * 251))

    def rd(p):
        fd = os.open(p, os.O_RDONLY)
        try:
            for pos in (1 << 40, 1 << 62, (1 << 63) - 8192):
                if os.pread(fd, 4096, pos) != b"":
                    raise OSError(errno.EIO, "data past the end")
        finally:
            os.close(fd)
    E("pread far past the end of .log: empty", "OK", lambda: rd(log))
    E("pread far past the end of a record: empty", "OK", lambda: rd(r))
    out(open(log, "rb").read() == before, ".log unchanged by the refused calls", "it changed")
    out(sorted(os.listdir(t)) == recs, "the records unchanged by the refused calls",
        "now %r" % sorted(os.listdir(t))[-3:])


def key_of_name(b):
    """The key a created file's name stands for (SPEC §2, fs/keys.c): only
    the escapes of .keys/ names decoded (%2F, %25, %00, a whole name %2E or
    %2E%2E; hex in either case), any other '%' itself."""
    if b.upper() in (b"%2E", b"%2E%2E"):
        return b"." * (len(b) // 3)
    out, i = bytearray(), 0
    while i < len(b):
        esc = b[i + 1:i + 3].upper()
        if b[i:i + 1] == b"%" and esc in (b"2F", b"25", b"00"):
            out.append(int(esc, 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def case_keys(mnt, topic, n):
    """Files created under random byte names: one record each, keyed by the
    name's bytes decoded as .keys/ names are (names that SPEC gives a
    meaning, digits and temporary names, left out)."""
    t = os.fsencode(os.path.join(mnt, topic))
    n = int(n)
    start = len(os.listdir(t))
    names = [b"\xff", b"\xc3\x28", b"a\nb", b"-1", b"+5", b" 7", b"x" * 255, b"%2F", b"%00"]
    while len(names) < n + 9:
        b = random_name(1, 255)
        if b.isdigit() or b[:1] == b"." or b.endswith(b".tmp") or b in names:
            continue
        names.append(b)
    for i, b in enumerate(names):
        p = t + b"/" + b
        expect("create key %s" % shown(b), "OK", lambda: _write(p, b"v%d" % i))
    recs = sorted(os.listdir(t))
    out(len(recs) == start + len(names), "one record per created name",
        "%d records, expected %d" % (len(recs), start + len(names)))
    for i, b in enumerate(names):
        if start + i >= len(recs):
            break
        p = t + b"/" + recs[start + i]
        try:
            key = os.getxattr(p, "user.streambus.key")
            data = open(p, "rb").read()
            out(key == key_of_name(b) and data == b"v%d" % i, "record of key %s" % shown(b),
                "key %s, payload %r" % (shown(key), data[:20]))
        except OSError as e:
            out(False, "record of key %s" % shown(b), errno.errorcode.get(e.errno, str(e.errno)))
    expect("create a 256-byte name", "ENAMETOOLONG", lambda: _write(t + b"/" + b"k" * 256, b"x"))


def _write(p, data):
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def case_bigline(mnt, topic, mb):
    """A line of MB MiB without a newline, written to .log in 64 KiB pieces:
    EFBIG (at a write or at the close), nothing appended; then a normal
    line still appends."""
    t = os.path.join(mnt, topic)
    log = os.path.join(t, ".log")
    size0 = os.stat(log).st_size
    n0 = len(os.listdir(t))
    chunk = b"L" * 65536
    got = "OK"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        for _ in range(int(mb) * 16):
            os.write(fd, chunk)
    except OSError as e:
        got = errno.errorcode.get(e.errno, str(e.errno))
    try:
        os.close(fd)
    except OSError as e:
        got = got if got != "OK" else errno.errorcode.get(e.errno, str(e.errno))
    out(got == "EFBIG", "a %s MiB line without a newline" % mb, "got %s" % got)
    out(os.stat(log).st_size == size0 and len(os.listdir(t)) == n0,
        "nothing appended by the %s MiB line" % mb, "size %d -> %d" % (size0, os.stat(log).st_size))
    # the same as one write(2) of the whole line, and with a newline at the end
    for tail in (b"", b"\n"):
        data = b"M" * (int(mb) << 20) + tail
        expect("one write of %s MiB%s" % (mb, " ending in a newline" if tail else ""), "EFBIG",
               lambda: _append(log, data))
    big = os.path.join(os.environ["SB_TMP"], "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(int(mb) << 20))
    expect("a %s MiB file created in the topic" % mb, "EFBIG",
           lambda: _copy(big, os.path.join(t, "big.bin")))
    expect("the refused file's name is gone", "ENOENT", lambda: os.stat(os.path.join(t, "big.bin")))
    out(os.stat(log).st_size == size0 and len(os.listdir(t)) == n0,
        "nothing appended by the refused writes", "size %d -> %d" % (size0, os.stat(log).st_size))
    expect("a normal line after them", "OK", lambda: _append(log, b"after-big\n"))
    with open(log, "rb") as f:
        f.seek(size0)
        rest = f.read()
    out(rest == b"after-big\n", "only the normal line was appended", "got %r" % rest[:60])


def _append(p, data):
    """Like cat and echo: write(2) again after a short count."""
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        v = memoryview(data)
        while v:
            v = v[os.write(fd, v):]
    finally:
        os.close(fd)


def _copy(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    fd = os.open(dst, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        v = memoryview(data)
        while v:
            k = os.write(fd, v[:131072])
            v = v[k:]
    finally:
        os.close(fd)


def case_handles(mnt, topic, count, n):
    """N handles open at once on records 0..COUNT-1, .log and the topic directory, each
    read while all are open, then closed; one appender among them."""
    t = os.path.join(mnt, topic)
    recs = ["%020d" % o for o in range(int(count))]
    fds = []
    n = int(n)
    try:
        for i in range(n):
            k = i % 4
            if k == 0:
                p = os.path.join(t, ".log")
            elif k == 3:
                p = t
            else:
                p = os.path.join(t, recs[rng.randrange(len(recs))])
            fds.append((p, os.open(p, os.O_RDONLY | (os.O_DIRECTORY if k == 3 else 0))))
        out(True, "%d handles open at once" % n)
        afd = os.open(os.path.join(t, ".log"), os.O_WRONLY | os.O_APPEND)
        os.write(afd, b"while-open\n")
        os.close(afd)
        bad = 0
        for p, fd in fds:
            if p == t:
                continue
            data = os.pread(fd, 64, 0)
            if p.endswith(".log"):
                ok = data.startswith(b"r0\n")
            else:
                ok = data == b"r%d\n" % int(os.path.basename(p))
            bad += not ok
        out(bad == 0, "every handle reads its file", "%d wrong" % bad)
    except OSError as e:
        out(False, "%d handles open at once" % n, "%s after %d opens" % (errno.errorcode.get(e.errno), len(fds)))
    finally:
        for _, fd in fds:
            os.close(fd)
    out(True, "%d handles closed" % len(fds))


def case_perm(mnt, topic, uid, mode):
    """Run as uid (in a child: setgid, setuid): what the permission bits say.
    mode 'owner': uid owns the tree (owner=uid, umask 022) -> may read,
    append, mkdir, create; never write a record. mode 'other': uid is not
    the owner, umask 077 -> EACCES for everything."""
    uid = int(uid)
    pid = os.fork()
    if pid == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        _perm_child(mnt, topic, mode)
        sys.stdout.flush()
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    out(st == 0, "the user %d child exited" % uid, "status %d" % st)


def _perm_child(mnt, topic, mode):
    t = os.path.join(mnt, topic)
    r = os.path.join(t, "%020d" % 0)
    log = os.path.join(t, ".log")
    E = expect
    if mode == "owner":
        E("owner: read a record", "OK", lambda: open(r, "rb").read())
        E("owner: ls the topic", "OK", lambda: os.listdir(t))
        E("owner: append to .log", "OK", lambda: _append(log, b"by-owner\n"))
        E("owner: create a file", "OK", lambda: _write(os.path.join(t, "owned"), b"o"))
        E("owner: mkdir a topic", "OK", lambda: os.mkdir(os.path.join(mnt, "ownertopic")))
        E("owner: rmdir it", "OK", lambda: os.rmdir(os.path.join(mnt, "ownertopic")))
        E("owner: write to a record", "EACCES|EPERM", lambda: os.open(r, os.O_WRONLY))
        E("owner: chmod a record", "EPERM", lambda: os.chmod(r, 0o644))
        E("owner: bad topic name", "EINVAL", lambda: os.mkdir(os.path.join(mnt, "bad name")))
    else:
        E("other: stat through a 0700 topic", "EACCES", lambda: os.stat(r))
        E("other: ls a 0700 topic", "EACCES", lambda: os.listdir(t))
        E("other: read .log", "EACCES", lambda: open(log, "rb").read())
        E("other: append to .log", "EACCES", lambda: _append(log, b"by-other\n"))
        E("other: create a file", "EACCES", lambda: _write(os.path.join(t, "x"), b"x"))
        E("other: mkdir a topic", "EACCES", lambda: os.mkdir(os.path.join(mnt, "othertopic")))
        E("other: rmdir a topic", "EACCES", lambda: os.rmdir(t))
        E("other: rm of the oldest record", "EACCES", lambda: os.unlink(r))
        E("other: ls the 0700 root", "EACCES", lambda: os.listdir(mnt))


CASES = {"topics": case_topics, "records": case_records, "ops": case_ops, "keys": case_keys,
         "bigline": case_bigline, "handles": case_handles, "perm": case_perm}

if __name__ == "__main__":
    CASES[sys.argv[1]](*sys.argv[2:])
