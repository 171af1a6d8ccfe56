# SPDX-License-Identifier: MIT
"""
Harness for drover's integration tests: the real binary on loopback, a fake NOTIFY_SOCKET, raw HTTP over
sockets, and /proc inspection of the supervisor and its workers.

Everything a test starts is torn down by cleanups registered at start time (so also when the test fails):
the supervisor, its workers (found as children and, for orphans, by the test's unique temporary directory in
their command line), sockets, and the temporary directory. The test process makes itself a child subreaper,
so a worker orphaned by a killed supervisor is re-parented to it and can be reaped here rather than by PID 1.

Only the standard library. Waits are bounded polls (WAIT seconds); no assertion depends on how fast anything
runs.
"""

import ctypes
import email.utils
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DROVER = os.environ.get("DROVER_BIN") or os.path.join(HERE, "..", "..", "build", "drover")
# The built-in worker, which drover runs from next to itself when it is there (as in the build tree).
DROVER_WORKER = os.path.join(os.path.dirname(DROVER), "drover-worker")
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
MIME_TYPES = "/etc/mime.types"

WAIT = 10.0  # bound of every poll: generous, the machine is shared and noisy

# The accept model of the pools the tests start: "shared" (drover's default; no option added) or "dispatch"
# (--accept=dispatch added to every pool of built-in workers). meson runs the lifecycle tests once per model, so
# that every lifecycle behaviour (watchdogs, reload, recycling, graceful stop, idle exit) is checked in both.
ACCEPT = os.environ.get("DROVER_TEST_ACCEPT") or "shared"
EX_USAGE = 64
EX_CONFIG = 78

# Environment a test run may itself have inherited and that must not reach drover by accident.
_PRIVATE_ENV = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC",
                "JOURNAL_STREAM", "INVOCATION_ID")

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_become_subreaper()


# ---------------------------------------------------------------------------------------------------------------
# Polling


def wait_until(predicate, timeout=WAIT, interval=0.02, message="condition"):
    """Polls predicate() until it returns a true value, which is returned; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------------
# /proc


def proc_read(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_stat(pid):
    """(state, ppid) of a process, or None if it is gone."""
    data = proc_read(pid, "stat")
    if data is None:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[1])


def proc_starttime(pid):
    """Start time of a process in clock ticks since boot, or None if it is gone."""
    data = proc_read(pid, "stat")
    if data is None:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def proc_alive(pid):
    """True for a process that exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def proc_ppid(pid):
    st = proc_stat(pid)
    return st[1] if st else None


def proc_cmdline(pid):
    data = proc_read(pid, "cmdline")
    if not data:
        return None
    return [a.decode(errors="replace") for a in data.rstrip(b"\0").split(b"\0")]


def proc_environ_list(pid):
    """The initial environment as a list of 'KEY=VALUE' strings (what execve() passed)."""
    data = proc_read(pid, "environ")
    if data is None:
        return None
    return [e.decode(errors="replace") for e in data.split(b"\0") if e]


def proc_environ(pid):
    env = {}
    for e in proc_environ_list(pid) or []:
        k, _, v = e.partition("=")
        env.setdefault(k, v)
    return env


def proc_status(pid):
    data = proc_read(pid, "status")
    if data is None:
        return None
    out = {}
    for line in data.decode(errors="replace").splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def proc_fds(pid):
    """{fd: readlink target} of a process."""
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return None
    for n in names:
        try:
            out[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except FileNotFoundError:
            pass
    return out


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid):
    return sorted(p for p in all_pids() if proc_ppid(p) == pid and proc_alive(p))


def pids_mentioning(marker):
    """Live processes with marker in one of their command-line arguments (the test's temporary directory)."""
    me = os.getpid()
    out = []
    for p in all_pids():
        if p == me:
            continue
        cmd = proc_cmdline(p)
        if cmd and any(marker in a for a in cmd) and proc_alive(p):
            out.append(p)
    return sorted(out)


def signal_mask(names):
    m = 0
    for n in names:
        m |= 1 << (int(getattr(signal, n)) - 1)
    return m


def tcp_table(tables=("/proc/net/tcp", "/proc/net/tcp6")):
    """(local port, remote port, state, inode) of every TCP socket, from /proc/net/tcp and tcp6; state is the
    kernel's hex code ("0A": listening, "01": established)."""
    rows = []
    for f in tables:
        try:
            with open(f) as fh:
                lines = fh.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            rows.append((int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16), cols[3],
                         int(cols[9])))
    return rows


def listening_inodes(port, tables=("/proc/net/tcp", "/proc/net/tcp6")):
    """Inodes of TCP sockets listening on port (any address)."""
    return {inode for local, _, state, inode in tcp_table(tables) if state == "0A" and local == port}


def socket_inode(link):
    m = re.fullmatch(r"socket:\[(\d+)\]", link or "")
    return int(m.group(1)) if m else None


def unbound_unix_dgram_inodes():
    """Inodes of the AF_UNIX datagram sockets without an address (/proc/net/unix: Type 0002, no Path). A
    worker keeps one such socket to notify its supervisor (src/common/daemon.h); the supervisor's own notify
    socket is bound, so a leaked one is not among these."""
    inodes = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) == 7 and cols[4] == "0002":
                inodes.add(int(cols[6]))
    return inodes


def reap(pid):
    """Reaps pid if it is a (zombie) child of ours: orphaned workers are re-parented to this subreaper."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_and_reap(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + WAIT
    for p in pids:
        while True:
            reap(p)
            if not proc_alive(p) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        reap(p)


# ---------------------------------------------------------------------------------------------------------------
# Ports and addresses


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that was free a moment ago. Callers retry on the (rare) race with another test."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_refuses(port, host="127.0.0.1", family=socket.AF_INET):
    """True if nothing listens on port."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(WAIT)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return True
        return False


# ---------------------------------------------------------------------------------------------------------------
# Document root


SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT"
FIXED_MTIME = 1614834367  # Thu, 04 Mar 2021 05:06:07 GMT

DOC_FILES = {
    "index.html": b"<html><body>root index</body></html>\n",
    "plain.txt": b"plain text file\n",
    "UPPER.TXT": b"upper-case extension\n",
    "style.css": b"body { color: black }\n",
    "app.js": b"console.log('drover');\n",
    "data.json": b'{"drover": true}\n',
    "image.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "vector.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
    "archive.tar.gz": b"\x1f\x8b\x08\x00" + b"\0" * 60,
    "noextension": b"no extension at all\n",
    "unknown.zzqx": b"unknown extension\n",
    "empty.txt": b"",
    "with space.txt": b"a name with a space\n",
    "sub/index.html": b"<html><body>sub index</body></html>\n",
    "sub/page.html": b"<html><body>sub page</body></html>\n",
    "noindex/file.txt": b"a file in a directory without index\n",
    "dir with space/index.html": b"<html>dir with space</html>\n",
}


def mime_expected(filename, path=MIME_TYPES):
    """The type drover should send for filename: the extension after the last dot, looked up without regard
    to case in /etc/mime.types, the first mapping in the file winning; application/octet-stream otherwise."""
    base = filename.rsplit("/", 1)[-1]
    if "." not in base or base.endswith("."):
        return "application/octet-stream"
    ext = base.rsplit(".", 1)[1].lower()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                if len(words) >= 2 and "/" in words[0] and ext in (w.lower() for w in words[1:]):
                    return words[0]
    except FileNotFoundError:
        pass
    return "application/octet-stream"


def make_docroot(base):
    """Creates base/root (returned) with files of several types, a subdirectory with and one without
    index.html, a FIFO, symlinks inside and leading out of the root, and base/outside with a secret."""
    root = os.path.join(base, "root")
    os.makedirs(root)
    for rel, data in DOC_FILES.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (FIXED_MTIME, FIXED_MTIME))
    big = os.path.join(root, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 16) * 64)  # 4 MiB: several sendfile() rounds
    outside = os.path.join(base, "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write(SECRET + "\n")
    with open(os.path.join(base, "secret.txt"), "w") as f:
        f.write(SECRET + "\n")
    os.symlink("plain.txt", os.path.join(root, "link.txt"))              # stays inside: served
    os.symlink("../secret.txt", os.path.join(root, "escape.txt"))        # relative, leads out
    os.symlink(os.path.join(base, "secret.txt"), os.path.join(root, "abs-escape.txt"))  # absolute, leads out
    os.symlink("/etc/passwd", os.path.join(root, "passwd"))              # absolute, leads out
    os.symlink("../outside", os.path.join(root, "outdir"))               # a directory outside
    os.mkfifo(os.path.join(root, "fifo"))
    return root


# ---------------------------------------------------------------------------------------------------------------
# Fake NOTIFY_SOCKET


class NotifyMessage:
    def __init__(self, data, pid):
        self.raw = data
        self.pid = pid
        self.text = data.decode(errors="replace")
        self.lines = self.text.split("\n")
        self.fields = {}
        for line in self.lines:
            k, sep, v = line.partition("=")
            if sep:
                self.fields.setdefault(k, v)

    def has(self, assignment):
        return assignment in self.lines

    def __repr__(self):
        return f"<notify from {self.pid}: {self.text!r}>"


class FakeNotifySocket:
    """What systemd listens on for sd_notify(): an AF_UNIX datagram socket, here bound to a path in the test's
    temporary directory, with SO_PASSCRED so that every datagram says who sent it. Like systemd, it reads
    continuously (a thread): sd_notify() blocks once the receive queue is full, and a test that is busy
    elsewhere must not stall the supervisor that way."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []  # every datagram received so far, in order
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self):
        self._closed = True
        self._thread.join()
        self.sock.close()

    def _read_pending(self):
        """Reads what is queued now; call with self._cond held."""
        while select.select([self.sock], [], [], 0)[0]:
            data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS and len(cdata) >= 12:
                    pid = int.from_bytes(cdata[0:4], "little", signed=True)
            self.messages.append(NotifyMessage(data, pid))
            self._cond.notify_all()

    def _run(self):
        while not self._closed:
            if select.select([self.sock], [], [], 0.1)[0]:
                with self._cond:
                    self._read_pending()

    def drain(self):
        with self._cond:
            self._read_pending()
            return self.messages

    def wait_for(self, predicate, timeout=WAIT, alive=None, what="a notify message", since=0):
        """The first message (already received, from index since on, or arriving within timeout) for which
        predicate holds. alive(): optional check that the sender still runs, to fail early."""
        deadline = time.monotonic() + timeout
        checked = since
        with self._cond:
            while True:
                self._read_pending()
                for m in self.messages[checked:]:
                    if predicate(m):
                        return m
                checked = max(checked, len(self.messages))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; received ({len(self.messages)}, last 8 "
                                         f"shown): {self.messages[-8:]!r}")
                if alive is not None and not alive():
                    self._read_pending()
                    for m in self.messages[checked:]:
                        if predicate(m):
                            return m
                    raise AssertionError(f"process gone while waiting for {what}; received "
                                         f"({len(self.messages)}, last 8 shown): {self.messages[-8:]!r}")
                self._cond.wait(min(left, 0.2))


# ---------------------------------------------------------------------------------------------------------------
# HTTP over raw sockets


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as sent
        self.body = body

    def header(self, name):
        """The value of a header sent exactly once (asserted), or None."""
        values = self.header_all(name)
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {self.headers}"
        return values[0] if values else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<{self.version} {self.status} {self.reason} {self.headers} body={len(self.body)} bytes>"


class HttpConnection:
    """One client connection; raw bytes out, responses parsed from a buffer (so pipelined responses that
    arrive together are separated correctly)."""

    def __init__(self, address, family=socket.AF_INET, timeout=WAIT, rcvbuf=None):
        self.sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if family in (socket.AF_INET, socket.AF_INET6):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect(address)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, head=False):
        """The next response. head=True for a response to HEAD (no body whatever the headers say)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError(f"connection closed before a complete response head; got {self.buf!r}")
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        m = re.fullmatch(r"(HTTP/\d\.\d) (\d{3}) ?(.*)", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            assert sep and k and k == k.strip(), f"bad header line {line!r}"
            headers.append((k, v.strip()))
        resp = Response(m.group(1), int(m.group(2)), m.group(3), headers, b"")
        status = resp.status
        if head or status in (204, 304) or 100 <= status < 200:
            return resp
        cl = resp.header("Content-Length")
        if cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                if not self._fill():
                    raise AssertionError(f"connection closed after {len(self.buf)} of {n} body bytes")
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method, path, headers=None, body=b"", version="HTTP/1.1"):
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(head=(method == "HEAD"))

    def closed_by_peer(self, timeout=WAIT):
        """True once the server closed the connection (EOF or reset), with nothing more sent; False if it is
        still open after timeout. Bytes received meanwhile make it fail."""
        if self.buf:
            raise AssertionError(f"unexpected bytes after the response: {self.buf!r}")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            raise AssertionError(f"unexpected bytes instead of a close: {chunk!r}")

    def read_until_close(self, timeout=WAIT):
        """(closed, data): whatever the server sends until it closes, or until timeout passes."""
        data, self.buf = self.buf, b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, data
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False, data
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True, data
            if not chunk:
                return True, data
            data += chunk

    def still_open(self, quiet=0.2):
        """True if, within a short quiet period, the server neither closed nor sent anything. Used only to
        confirm keep-alive after the fact, with a request on the same connection as the real check."""
        r, _, _ = select.select([self.sock], [], [], quiet)
        return not r


def build_request(method, path, headers=None, body=b"", version="HTTP/1.1"):
    hdrs = [("Host", "localhost")]
    if headers:
        if isinstance(headers, dict):
            headers = list(headers.items())
        names = {k.lower() for k, _ in headers}
        if "host" in names:
            hdrs = []
        hdrs += list(headers)
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    text = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    data = text.encode("latin-1")
    return data + (body.encode() if isinstance(body, str) else body)


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


HTTP_DATE_RE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                          r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT")


# ---------------------------------------------------------------------------------------------------------------
# drover under test


def accept_args(args):
    """The options that put a pool started with args into the accept model under test (see ACCEPT); None when
    the pool cannot run in that model: exec workers (-- COMMAND) know nothing of dispatch, they accept."""
    if ACCEPT == "shared":
        return []
    if "--" in args:
        return None
    return [f"--accept={ACCEPT}"]


def drover_has_accept_option():
    p = subprocess.run([DROVER, "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return "--accept" in p.stdout


_DISPATCH_STATUS = re.compile(r"^(\w+: \d+/\d+ workers) \(\d+ busy\)(, .*?), "
                              r"(accepting|backlog: waiting for a free worker)$")


def status_of(m):
    """The STATUS= of a notify message, as the shared accept model words it: in dispatch mode the supervisor
    adds the busy workers and whether it accepts ("Ready: 2/2 workers (1 busy), ..., accepting"), which the
    lifecycle tests, run in both models, leave to test_dispatch; a dispatch STATUS= without them is returned
    as it is, so that it fails their comparisons."""
    status = m.fields.get("STATUS")
    if status is None or ACCEPT != "dispatch":
        return status
    match = _DISPATCH_STATUS.match(status)
    return match.group(1) + match.group(2) if match else status


def clean_environment(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    if extra:
        env.update(extra)
    return env


class Drover:
    """One supervisor (with its workers) started by a test. Use DroverTestCase.start_*() to get one."""

    def __init__(self, tmp, root, notify):
        self.tmp = tmp
        self.root = root
        self.notify = notify
        self.proc = None
        self.ports = []
        self.unix_paths = []
        self.stdout_path = os.path.join(tmp, f"stdout.{id(self)}")
        self.stderr_path = os.path.join(tmp, f"stderr.{id(self)}")
        self.connections = []

    # -- process

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        return self.ports[0]

    def running(self):
        return self.proc.poll() is None

    def log(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=WAIT):
        """Waits for a line of stderr matching the regular expression; returns the match."""
        rx = re.compile(pattern, re.M)
        try:
            return wait_until(lambda: rx.search(self.log()), timeout, message=f"log line /{pattern}/")
        except AssertionError as e:
            raise AssertionError(f"{e}; log so far:\n{self.log()}") from None

    def wait_ready(self, timeout=WAIT):
        """The READY=1 datagram the supervisor sends to its $NOTIFY_SOCKET."""
        try:
            return self.notify.wait_for(lambda m: m.has("READY=1"), timeout, alive=self.running,
                                        what="READY=1")
        except AssertionError as e:
            raise AssertionError(f"{e}\nexit status: {self.proc.poll()}\nlog:\n{self.log()}") from None

    def wait_exit(self, timeout=WAIT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"drover still running after {timeout:.0f} s; log:\n{self.log()}") from None

    def signal(self, sig):
        self.proc.send_signal(sig)

    # -- workers

    def all_workers(self):
        """{slot: [pid, ...]} of the live worker processes (direct children with --worker=SLOT on their
        command line), oldest first: during a reload or a recycling a slot briefly has two."""
        out = {}
        for p in children_of(self.pid):
            cmd = proc_cmdline(p) or []
            start = proc_starttime(p)
            for a in cmd[1:]:
                m = re.fullmatch(r"--worker=(\d+)", a)
                if m and start is not None:
                    out.setdefault(int(m.group(1)), []).append((start, p))
        return {slot: [p for _, p in sorted(v)] for slot, v in out.items()}

    def workers(self):
        """{slot: pid}: the newest worker of each slot."""
        return {slot: pids[-1] for slot, pids in self.all_workers().items()}

    def wait_workers(self, n, timeout=WAIT):
        """{slot: pid} once n slots have exactly one worker each (no replacement or draining one besides)."""
        def settled():
            w = self.all_workers()
            return {s: p[0] for s, p in w.items()} if len(w) == n and all(len(p) == 1 for p in w.values()) \
                else None
        return wait_until(settled, timeout, message=f"{n} workers")

    # -- HTTP

    def connect(self, index=0):
        if self.unix_paths and not self.ports:
            c = HttpConnection(self.unix_paths[index], socket.AF_UNIX)
        else:
            c = HttpConnection(("127.0.0.1", self.ports[index]))
        self.connections.append(c)
        return c

    def get(self, path, method="GET", headers=None, body=b"", index=0):
        """One request on a fresh connection."""
        with self.connect(index) as c:
            return c.request(method, path, headers, body)

    # -- teardown

    def cleanup(self):
        for c in self.connections:
            c.close()
        pids = set()
        if self.proc is not None:
            if self.proc.poll() is None:
                pids.update(children_of(self.proc.pid))
            pids.update(pids_mentioning(self.tmp))
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                pass
        pids.discard(os.getpid())
        kill_and_reap(sorted(pids))


class DroverTestCase(unittest.TestCase):
    """Gives every test a temporary directory with a document root, and starts drover with cleanups that run
    whatever happens."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="drover-it-")
        self.addCleanup(self._remove_tmp)
        self.root = make_docroot(self.tmp)

    def _remove_tmp(self):
        leftovers = pids_mentioning(self.tmp)
        kill_and_reap(leftovers)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(leftovers, [], "processes left behind")

    # -- starting

    def _popen(self, inst, argv, env, pass_fds=(), preexec_fn=None):
        with open(inst.stdout_path, "wb") as out, open(inst.stderr_path, "wb") as err:
            inst.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                         pass_fds=pass_fds, preexec_fn=preexec_fn, close_fds=True)

    def pool_args(self, args):
        """args with the options of the accept model under test (ACCEPT) in front; skips the test when the pool
        cannot run in that model."""
        extra = accept_args(list(args))
        if extra is None:
            self.skipTest(f"exec workers have no {ACCEPT} accept model: tested with shared accept")
        return extra + list(args)

    def new_notify(self):
        d = tempfile.mkdtemp(prefix="n", dir=self.tmp)
        n = FakeNotifySocket(d)
        self.addCleanup(n.close)
        return n

    def start(self, workers=2, listen=None, args=(), root=True, env=None, wait_ready=True, notify=True,
              pass_fds=(), preexec_fn=None):
        """drover with --listen addresses. listen: a list of address strings, where "{port}" is replaced by
        a free port (retried if another test grabs it first); default one TCP port on 127.0.0.1."""
        if listen is None:
            listen = ["127.0.0.1:{port}"]
        for attempt in range(5):
            nsock = self.new_notify() if notify else None
            inst = Drover(self.tmp, self.root, nsock)
            argv = [DROVER] + ([f"--workers={workers}"] if workers is not None else [])  # None: not given
            for a in listen:
                if "{port}" in a:
                    p = free_port(socket.AF_INET6 if a.startswith("[") else socket.AF_INET,
                                  "::1" if a.startswith("[") else "127.0.0.1")
                    inst.ports.append(p)
                    a = a.replace("{port}", str(p))
                elif a.startswith("/") or a.startswith("http:/"):
                    inst.unix_paths.append(a[len("http:"):] if a.startswith("http:") else a)
                argv.append(f"--listen={a}")
            if root:
                argv.append(f"--root={self.root}")
            argv += self.pool_args(args)
            e = clean_environment(env)
            if nsock:
                e["NOTIFY_SOCKET"] = nsock.path
            self._popen(inst, argv, e, pass_fds, preexec_fn)
            self.addCleanup(inst.cleanup)
            if not wait_ready:
                return inst
            try:
                inst.wait_ready()
            except AssertionError:
                if inst.proc.poll() == EX_CONFIG and "cannot bind" in inst.log() and attempt < 4:
                    continue  # a port race with a concurrent test: try other ports
                raise
            return inst
        raise AssertionError("unreachable")

    def start_activated(self, workers=2, ports=1, fdnames="http", args=(), extra_activate_args=(), env=None,
                        datagram=False, drover_argv=None):
        """drover under systemd-socket-activate: listening, but not started before the first connection."""
        if not SOCKET_ACTIVATE:
            self.skipTest("systemd-socket-activate is not installed")
        for attempt in range(5):
            nsock = self.new_notify()
            inst = Drover(self.tmp, self.root, nsock)
            argv = [SOCKET_ACTIVATE]
            for _ in range(ports):
                p = free_port()
                inst.ports.append(p)
                argv += [f"--listen=127.0.0.1:{p}"]
            if datagram:
                argv.append("--datagram")
            if fdnames is not None:
                argv.append(f"--fdname={fdnames}")
            e = clean_environment(env)
            e["NOTIFY_SOCKET"] = nsock.path
            # systemd-socket-activate passes only a few variables on: name the ones drover must see.
            argv += ["-E", f"NOTIFY_SOCKET={nsock.path}"]
            for k in sorted(env or {}):
                argv += ["-E", f"{k}={env[k]}"]
            argv += list(extra_activate_args)
            if drover_argv is None:
                argv += [DROVER, f"--workers={workers}", f"--root={self.root}"] + self.pool_args(args)
            else:
                argv += [drover_argv[0]] + self.pool_args(drover_argv[1:])
            self._popen(inst, argv, e)
            self.addCleanup(inst.cleanup)
            try:
                wait_until(lambda: inst.proc.poll() is not None or
                           inst.log().count("Listening on ") == len(inst.ports),
                           message="systemd-socket-activate to listen")
            except AssertionError:
                raise AssertionError(f"systemd-socket-activate did not listen; log:\n{inst.log()}") from None
            if inst.proc.poll() is not None:
                if attempt < 4 and "ddress already in use" in inst.log():
                    continue
                raise AssertionError(f"systemd-socket-activate exited with {inst.proc.returncode}:\n"
                                     f"{inst.log()}")
            return inst
        raise AssertionError("unreachable")

    def run_drover(self, args, env=None, timeout=WAIT):
        """Runs drover to completion (for command-line errors); returns (status, stdout, stderr)."""
        try:
            p = subprocess.run([DROVER] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                               env=clean_environment(env), timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"drover {args} did not exit within {timeout:.0f} s") from e
        finally:
            kill_and_reap(pids_mentioning(self.tmp))
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    # -- common assertions

    def assertNotListening(self, port, msg=None, ipv4_only=False):
        """Nothing of this test listens on port: a connection is refused, or whoever does listen there is not
        one of this test's processes (a concurrent test may have been given the port since)."""
        if port_refuses(port):
            return
        ours = set()
        for p in pids_mentioning(self.tmp):
            for link in (proc_fds(p) or {}).values():
                if socket_inode(link):
                    ours.add(socket_inode(link))
        tables = ("/proc/net/tcp",) if ipv4_only else ("/proc/net/tcp", "/proc/net/tcp6")
        held = listening_inodes(port, tables) & ours
        self.assertFalse(held, msg or f"port {port} still listened on by this test's processes")

    def assertWorkerLooksSpawned(self, inst, slot, pid, n_sockets=1, fdnames="http"):
        """The environment, descriptors and signal state a worker must start with."""
        self.assertEqual(proc_ppid(pid), inst.pid, "a worker is a direct child of the supervisor")
        cmd = proc_cmdline(pid)
        self.assertIn(f"--worker={slot}", cmd)
        envl = proc_environ_list(pid)
        env = proc_environ(pid)
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
            self.assertEqual(sum(1 for e in envl if e.startswith(k + "=")), 1, f"{k} once in {envl}")
        self.assertEqual(env["LISTEN_PID"], str(pid))
        self.assertEqual(env["LISTEN_FDS"], str(n_sockets))
        self.assertEqual(env["LISTEN_FDNAMES"], fdnames)
        self.assertTrue(env["NOTIFY_SOCKET"].startswith("@"), env["NOTIFY_SOCKET"])
        self.assertGreater(len(env["NOTIFY_SOCKET"]), 1)
        self.assertNotEqual(env["NOTIFY_SOCKET"], inst.notify.path)
        # A watchdog handed to the supervisor is not the worker's; if a worker gets one, it is its own.
        if "WATCHDOG_PID" in env:
            self.assertEqual(env["WATCHDOG_PID"], str(pid))
        return env


EXIT_SKIP = 77  # meson's "skipped"


def main():
    if ACCEPT != "shared" and not drover_has_accept_option():
        # This build predates --accept: nothing to run in another model, which meson reports as skipped.
        print(f"{DROVER} has no --accept option: skipping the {ACCEPT} accept model")
        raise SystemExit(EXIT_SKIP)
    if ACCEPT != "shared":
        print(f"accept model under test: {ACCEPT}")
    unittest.main(verbosity=2)
