# A 9P2000 client made of the standard library only (struct, socket, select), for the tests
# of `ksock export`: every message is built and parsed here, so a test can send what a
# library would hide (several tags at once, Tflush, malformed messages) and see each reply
# in the order it arrives.
#
# The tests run it with `python3 -c`, this file first and the test's script after it; it
# reads the environment variables SOCK (the server's Unix socket) and KSOCK (the binary).

import errno
import faulthandler
import os
import select
import socket
import struct
import sys
import time

SOCK = os.environ.get("SOCK", "")
KSOCK = os.environ.get("KSOCK", "ksock")

# How long one reply may take before the script gives up (protection against hangs), and
# how long the whole script may run: then it prints where each thread is, and exits (before
# the test's own patience kills it without a word).
PATIENCE = 30.0
faulthandler.dump_traceback_later(50, exit=True)

Tversion, Rversion = 100, 101
Tauth, Rauth = 102, 103
Tattach, Rattach = 104, 105
Rerror = 107
Tflush, Rflush = 108, 109
Twalk, Rwalk = 110, 111
Topen, Ropen = 112, 113
Tcreate, Rcreate = 114, 115
Tread, Rread = 116, 117
Twrite, Rwrite = 118, 119
Tclunk, Rclunk = 120, 121
Tremove, Rremove = 122, 123
Tstat, Rstat = 124, 125
Twstat, Rwstat = 126, 127

NAMES = {v: k for k, v in dict(globals()).items() if k[:1] in "TR" and isinstance(v, int)}

NOTAG = 0xFFFF
NOFID = 0xFFFFFFFF
OREAD, OWRITE, ORDWR = 0, 1, 2
QTDIR = 0x80
DMDIR = 0x80000000


class P9Error(Exception):
    """An Rerror: `ename` is its text."""

    def __init__(self, ename):
        super().__init__(ename)
        self.ename = ename


class Closed(Exception):
    """The server closed the connection (end of file or ECONNRESET)."""


def S(x):
    if isinstance(x, str):
        x = x.encode()
    return struct.pack("<H", len(x)) + x


def qid(b, off=0):
    ty, vers, path = struct.unpack_from("<BIQ", b, off)
    return {"type": ty, "vers": vers, "path": path}


def gets(b, off):
    (n,) = struct.unpack_from("<H", b, off)
    s = b[off + 2 : off + 2 + n]
    if len(s) != n:
        raise ValueError("a string runs past the end of the message")
    return s.decode(), off + 2 + n


def parse_stat(b, off=0):
    """One stat(5) entry at `off`: (dict, offset after it)."""
    (size,) = struct.unpack_from("<H", b, off)
    end = off + 2 + size
    ty, dev = struct.unpack_from("<HI", b, off + 2)
    q = qid(b, off + 8)
    mode, atime, mtime, length = struct.unpack_from("<IIIQ", b, off + 21)
    o = off + 41
    name, o = gets(b, o)
    uid, o = gets(b, o)
    gid, o = gets(b, o)
    muid, o = gets(b, o)
    if o != end:
        raise ValueError(f"stat entry of size {size} holds {o - off - 2} bytes")
    return {
        "type": ty, "dev": dev, "qid": q, "mode": mode, "atime": atime, "mtime": mtime,
        "length": length, "name": name, "uid": uid, "gid": gid, "muid": muid,
    }, end


def enc_stat(ty=0xFFFF, dev=0xFFFFFFFF, qty=0xFF, qvers=0xFFFFFFFF, qpath=0xFFFFFFFFFFFFFFFF,
             mode=0xFFFFFFFF, atime=0xFFFFFFFF, mtime=0xFFFFFFFF, length=0xFFFFFFFFFFFFFFFF,
             name="", uid="", gid="", muid=""):
    """A stat entry for Twstat; the defaults are "don't touch" (wstat(5))."""
    body = struct.pack("<HIBIQIIIQ", ty, dev, qty, qvers, qpath, mode, atime, mtime, length)
    body += S(name) + S(uid) + S(gid) + S(muid)
    return struct.pack("<H", len(body)) + body


class Conn:
    """One 9P connection. Replies that arrive for other tags than the one waited for are
    kept, in arrival order, in `pending` (and each arrival is appended to `log`)."""

    def __init__(self, rfd, wfd=None, sock=None):
        self.rfd = rfd
        self.wfd = rfd if wfd is None else wfd
        self.socket = sock
        self.pending = []
        self.log = []
        self.next_tag = 1
        self.next_fid = 1
        self.msize = 8192
        self.root = None

    @classmethod
    def unix(cls, path=None, patience=PATIENCE):
        """Connects to the server's Unix socket, waiting for it to appear."""
        path = path or SOCK
        deadline = time.monotonic() + patience
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return cls(s.fileno(), sock=s)
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @classmethod
    def tcp(cls, host, port):
        s = socket.create_connection((host, port), timeout=PATIENCE)
        s.settimeout(None)
        return cls(s.fileno(), sock=s)

    def close(self):
        if self.socket is not None:
            self.socket.close()
        else:
            os.close(self.rfd)
            if self.wfd != self.rfd:
                os.close(self.wfd)

    # Framing.

    def tag(self):
        t = self.next_tag
        self.next_tag = 1 if t >= 0xFFFE else t + 1
        return t

    def fid(self):
        f = self.next_fid
        self.next_fid += 1
        return f

    def send_raw(self, b):
        view = memoryview(b)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def send(self, mtype, tag, body=b""):
        self.send_raw(frame(mtype, tag, body))

    def _read_exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply within {PATIENCE}s (got {len(buf)} of {n} bytes)")
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                continue
            try:
                b = os.read(self.rfd, n - len(buf))
            except ConnectionResetError:
                b = b""
            if not b:
                raise Closed(f"end of file after {len(buf)} of {n} bytes")
            buf += b
        return buf

    def recv(self, patience=PATIENCE):
        """The next message from the server: (type, tag, body)."""
        deadline = time.monotonic() + patience
        (size,) = struct.unpack("<I", self._read_exact(4, deadline))
        if size < 7:
            raise ValueError(f"the server sent a message of size {size}")
        rest = self._read_exact(size - 4, deadline)
        mtype, tag = struct.unpack_from("<BH", rest)
        msg = (mtype, tag, rest[3:])
        self.log.append(msg)
        return msg

    def wait(self, tag, patience=PATIENCE):
        """The reply to `tag`: (type, body)."""
        for i, (mt, t, body) in enumerate(self.pending):
            if t == tag:
                del self.pending[i]
                return mt, body
        while True:
            mt, t, body = self.recv(patience)
            if t == tag:
                return mt, body
            self.pending.append((mt, t, body))

    def start(self, mtype, body=b""):
        """Sends a request without waiting: its tag."""
        t = self.tag()
        self.send(mtype, t, body)
        return t

    def result(self, tag, want, patience=PATIENCE):
        """Waits for the reply to `tag`, which must be of type `want` (or an Rerror, raised
        as P9Error): its body."""
        mt, body = self.wait(tag, patience)
        return check(mt, body, want)

    def rpc(self, mtype, body=b"", tag=None):
        t = self.tag() if tag is None else tag
        self.send(mtype, t, body)
        return self.result(t, mtype + 1)

    # Requests.

    def version(self, msize=65536, version="9P2000"):
        body = self.rpc(Tversion, struct.pack("<I", msize) + S(version), tag=NOTAG)
        (m,) = struct.unpack_from("<I", body)
        v, _ = gets(body, 4)
        self.msize = m
        return m, v

    def auth(self, afid, uname="glenda", aname=""):
        return qid(self.rpc(Tauth, struct.pack("<I", afid) + S(uname) + S(aname)))

    def attach(self, uname="glenda", aname=""):
        fid = self.fid()
        q = qid(self.rpc(Tattach, struct.pack("<II", fid, NOFID) + S(uname) + S(aname)))
        if self.root is None:
            self.root = fid
        return fid, q

    def hello(self, msize=65536):
        """Tversion and Tattach: the root fid."""
        self.version(msize)
        return self.attach()[0]

    @staticmethod
    def walk_body(fid, newfid, names):
        return struct.pack("<IIH", fid, newfid, len(names)) + b"".join(S(n) for n in names)

    def twalk(self, fid, newfid, names):
        """Twalk as it is: the qids of the Rwalk (fewer than the names if it stopped)."""
        body = self.rpc(Twalk, self.walk_body(fid, newfid, names))
        (n,) = struct.unpack_from("<H", body)
        return [qid(body, 2 + 13 * i) for i in range(n)]

    def walk(self, path, fid=None):
        """Walks from `fid` (the root) along the names of `path`: a new fid, and the qids.
        A walk that stops early raises the Rerror of the name it stopped at."""
        names = [n for n in path.split("/") if n] if isinstance(path, str) else list(path)
        start = self.root if fid is None else fid
        newfid = self.fid()
        qids = self.twalk(start, newfid, names)
        if len(qids) != len(names):
            # The walk stopped at names[len(qids)] (and made no fid): walk there, then that
            # one name alone, for the error that stopped it.
            part = self.fid()
            self.twalk(start, part, names[: len(qids)])
            try:
                self.twalk(part, self.fid(), names[len(qids) : len(qids) + 1])
            finally:
                self.clunk(part)
            raise P9Error("incomplete walk")
        return newfid, qids

    def topen(self, fid, mode=ORDWR):
        body = self.rpc(Topen, struct.pack("<IB", fid, mode))
        (iounit,) = struct.unpack_from("<I", body, 13)
        return qid(body), iounit

    def open(self, path, mode=ORDWR, fid=None):
        """Walks to `path` and opens it: the fid. If the open fails the fid is clunked."""
        f, _ = self.walk(path, fid)
        try:
            self.topen(f, mode)
        except P9Error:
            self.clunk(f)
            raise
        return f

    def read(self, fid, count=None, offset=0):
        count = self.msize - 24 if count is None else count
        body = self.rpc(Tread, struct.pack("<IQI", fid, offset, count))
        return read_data(body)

    def readall(self, fid):
        """Reads from offset 0 until a read returns nothing."""
        out, off = b"", 0
        while True:
            b = self.read(fid, offset=off)
            if not b:
                return out
            out += b
            off += len(b)

    def write(self, fid, data, offset=0):
        if isinstance(data, str):
            data = data.encode()
        (n,) = struct.unpack("<I", self.rpc(Twrite, struct.pack("<IQI", fid, offset, len(data)) + data))
        return n

    def clunk(self, fid):
        self.rpc(Tclunk, struct.pack("<I", fid))

    def stat(self, fid):
        body = self.rpc(Tstat, struct.pack("<I", fid))
        (n,) = struct.unpack_from("<H", body)
        st, end = parse_stat(body, 2)
        if end != len(body) or n != len(body) - 2:
            raise ValueError("Rstat: sizes disagree")
        return st

    def wstat(self, fid, **fields):
        """Twstat of the fields given (the others "don't touch")."""
        st = enc_stat(**fields)
        self.rpc(Twstat, struct.pack("<IH", fid, len(st)) + st)

    def flush(self, oldtag):
        """Sends Tflush for `oldtag`: the flush's own tag (wait for Rflush with `wait`)."""
        return self.start(Tflush, struct.pack("<H", oldtag))

    # Files of the tree.

    def text(self, path):
        f = self.open(path, OREAD)
        try:
            return self.readall(f).decode()
        finally:
            self.clunk(f)

    def ls(self, path):
        """The names in directory `path`, as its stat entries give them, in order."""
        return [s["name"] for s in self.lsdir(path)]

    def lsdir(self, path):
        f = self.open(path, OREAD)
        try:
            b = self.readall(f)
        finally:
            self.clunk(f)
        out, off = [], 0
        while off < len(b):
            st, off = parse_stat(b, off)
            out.append(st)
        return out

    def exists(self, path):
        try:
            f, _ = self.walk(path)
        except P9Error:
            return False
        self.clunk(f)
        return True

    def sock(self, ty="seqpacket", family="local"):
        """Opens a factory: the fid (the socket's ctl) and the socket's id."""
        f = self.open(f"{family}/{ty}")
        return f, self.readall(f).decode()

    def status(self, sid, family="local"):
        return dict(l.split(" ", 1) for l in self.text(f"{family}/{sid}/status").splitlines())

    def ids(self, family="local"):
        return sorted(int(n) for n in self.ls(family) if n.isdigit())

    def pair(self, name, ty="seqpacket"):
        """A listener bound to `name`, a client connected to it and the accepted connection:
        ((listener fid, id), (client fid, id, data fid), accepted data fid)."""
        lf, lid = self.sock(ty)
        self.write(lf, f"bind {name} && listen")
        cf, cid = self.sock(ty)
        self.write(cf, f"connect {name}")
        cd = self.open(f"local/{cid}/data")
        ad = self.open(f"local/{lid}/accept")
        return (lf, lid), (cf, cid, cd), ad

    def closed_within(self, patience=PATIENCE):
        """Waits for the server to close the connection: the bytes it sent before (b"" if
        none). Raises TimeoutError if the connection stays open."""
        deadline = time.monotonic() + patience
        got = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the connection stayed open (received {got!r})")
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                continue
            try:
                b = os.read(self.rfd, 65536)
            except ConnectionResetError:
                return got
            if not b:
                return got
            got += b


def check(mt, body, want):
    if mt == Rerror:
        raise P9Error(gets(body, 0)[0])
    if mt != want:
        raise ValueError(f"expected {NAMES.get(want, want)}, got {NAMES.get(mt, mt)}")
    return body


def frame(mtype, tag, body=b""):
    """One whole message."""
    return struct.pack("<IBH", 7 + len(body), mtype, tag) + body


def read_data(body):
    (n,) = struct.unpack_from("<I", body)
    data = body[4 : 4 + n]
    if len(data) != n:
        raise ValueError("Rread: count runs past the end")
    return data


def ename(fn, *args, **kw):
    """The Rerror text of a call, or "OK"."""
    try:
        fn(*args, **kw)
    except P9Error as e:
        return e.ename
    return "OK"


def until(what, cond, patience=PATIENCE):
    """Polls `cond` until it holds; fails after the patience."""
    deadline = time.monotonic() + patience
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting: {what}")
        time.sleep(0.005)
