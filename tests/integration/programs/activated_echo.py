#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
A minimal socket-activated HTTP/1.0 server for drover's exec-worker tests: what a third-party program written
for systemd socket activation does, and nothing drover-specific.

It takes its listening sockets from fd 3 on (LISTEN_FDS, refusing ones meant for another process by
LISTEN_PID), answers every request on any of them with a JSON body describing itself — its pid and parent, the
socket-activation variables it was started with, the descriptors it had at start, and which socket took the
request — and talks sd_notify to $NOTIFY_SOCKET: READY=1 when --ready says so, WATCHDOG=1 at half of
WATCHDOG_USEC when that watchdog is its own (WATCHDOG_PID), STOPPING=1 on SIGTERM before it exits 0.

  activated_echo.py [--ready=MODE] [--marker=TEXT] [--tag=ANY]

MODE: none (never says READY=1; for --exec-ready=started), delay:SECONDS, file:PATH (READY=1 once PATH exists),
never (never, although it is expected to). --marker prints TEXT with the pid on stdout and stderr at start.
--tag is ignored (lets a test find its processes by command line).

Standard library only.
"""

import json
import os
import resource
import selectors
import signal
import socket
import sys
import time

VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def fds_now():
    """{fd: readlink} of this process, without the descriptor that listing the directory opens."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue  # the directory listing's own descriptor, closed again by now
        if target.startswith(f"/proc/{os.getpid()}/fd") or target == "/proc/self/fd":
            continue
        out[int(name)] = target
    return out


# Before anything opens a descriptor of its own: what it was given.
FDS_AT_START = fds_now()
ENV_AT_START = {k: os.environ[k] for k in VARIABLES if k in os.environ}


def log(text):
    sys.stderr.write(f"activated_echo[{os.getpid()}]: {text}\n")
    sys.stderr.flush()


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(address)
        s.sendall(message.encode())
    return True


def main():
    ready_mode = "none"
    marker = None
    for arg in sys.argv[1:]:
        if arg.startswith("--ready="):
            ready_mode = arg.split("=", 1)[1]
        elif arg.startswith("--marker="):
            marker = arg.split("=", 1)[1]
        elif arg.startswith("--tag="):
            pass
        else:
            log(f"unknown argument {arg!r}")
            return 64

    # A worker killed with SIGABRT by drover's watchdog must not leave a core file in the test's directory.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    pid = os.getpid()
    if os.environ.get("LISTEN_PID") != str(pid):
        log(f"LISTEN_PID={os.environ.get('LISTEN_PID')!r} is not my pid {pid}: the sockets are not mine")
        return 3
    n = int(os.environ.get("LISTEN_FDS", "0"))
    if n < 1:
        log("no sockets (LISTEN_FDS)")
        return 3
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")

    if marker:
        sys.stdout.write(f"{marker} stdout pid={pid}\n")
        sys.stdout.flush()
        log(f"{marker} stderr pid={pid}")

    stopping = False

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)

    sel = selectors.DefaultSelector()
    listeners = []
    for i in range(n):
        s = socket.socket(fileno=3 + i)
        s.setblocking(False)
        listeners.append(s)
        sel.register(s, selectors.EVENT_READ, ("listen", i))

    ready_sent = False
    started = time.monotonic()
    watchdog_interval = None
    if os.environ.get("WATCHDOG_PID") == str(pid) and os.environ.get("WATCHDOG_USEC", "").isdigit():
        watchdog_interval = int(os.environ["WATCHDOG_USEC"]) / 2e6
    last_ping = time.monotonic()

    def maybe_ready():
        nonlocal ready_sent
        if ready_sent:
            return
        due = False
        if ready_mode.startswith("delay:"):
            due = time.monotonic() - started >= float(ready_mode.split(":", 1)[1])
        elif ready_mode.startswith("file:"):
            due = os.path.exists(ready_mode.split(":", 1)[1])
        if due:
            log("sending READY=1")
            notify("READY=1\nSTATUS=activated_echo serving")
            ready_sent = True

    def serve(conn, index):
        conn.setblocking(True)
        conn.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        path = parts[1] if len(parts) >= 2 else ""
        sockets = []
        for s in listeners:
            try:
                sockets.append({"fd": s.fileno(), "family": int(s.family), "type": int(s.type),
                                "name": str(s.getsockname()),
                                "accepting": s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)})
            except OSError as e:
                sockets.append({"fd": s.fileno(), "error": str(e)})
        body = json.dumps({
            "pid": pid,
            "ppid": os.getppid(),
            "path": path,
            "env": ENV_AT_START,
            "fds_at_start": {str(k): v for k, v in sorted(FDS_AT_START.items())},
            "fd_names": names,
            "served_by_fd": 3 + index,
            "served_by_name": names[index] if index < len(names) else None,
            "sockets": sockets,
            "ready_sent": ready_sent,
        }, sort_keys=True).encode() + b"\n"
        head = (f"HTTP/1.0 200 OK\r\nServer: activated_echo\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nX-Pid: {pid}\r\nConnection: close\r\n\r\n").encode()
        try:
            conn.sendall(head + body)
        except OSError:
            pass

    while not stopping:
        maybe_ready()
        if watchdog_interval and time.monotonic() - last_ping >= watchdog_interval:
            notify("WATCHDOG=1")
            last_ping = time.monotonic()
        for key, _ in sel.select(timeout=0.05):
            kind, index = key.data
            try:
                conn, _ = key.fileobj.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            with conn:
                serve(conn, index)
    notify("STOPPING=1")
    log("stopping on SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
