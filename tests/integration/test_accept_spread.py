# SPDX-License-Identifier: MIT
"""How the built-in workers share the connections of one listening socket (src/worker/worker.c, the accept
policy): a burst of keep-alive connections ends up spread over the workers, none is lost, and a worker that
stepped back from the listener comes back to it.

Evidence is real and needs no timing: which worker process holds each established connection, from the
workers' /proc/PID/fd socket inodes matched against /proc/net/tcp. Every connection is answered before it is
counted, so every one of them has been accepted by then.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import drover_test as dt

BURST = 40


def established_by_worker(inst, port):
    """{worker pid: number of established TCP connections on port it holds}."""
    established = {inode for local, _, state, inode in dt.tcp_table() if local == port and state == "01"}
    out = {}
    for pid in inst.workers().values():
        inodes = {dt.socket_inode(link) for link in (dt.proc_fds(pid) or {}).values()}
        out[pid] = len(inodes & established)
    return out


def epoll_registrations(pid):
    """{descriptor: event mask} of what the worker's epoll instances watch (from /proc/PID/fdinfo)."""
    out = {}
    for efd, link in (dt.proc_fds(pid) or {}).items():
        if link == "anon_inode:[eventpoll]":
            try:
                with open(f"/proc/{pid}/fdinfo/{efd}") as f:
                    for m in re.finditer(r"^tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)", f.read(), re.M):
                        out[int(m.group(1))] = int(m.group(2), 16)
            except OSError:
                pass
    return out


def epoll_events(pid, fd):
    """The event mask fd is registered with in the worker's epoll instance, or None."""
    return epoll_registrations(pid).get(fd)


def listener_mode(pid, fd):
    """How the worker watches its listening socket fd: "exclusive" (accepting), "doorbell" (stepped back:
    shared and edge-triggered) or None (not watched), from its epoll instance's /proc/PID/fdinfo."""
    events = epoll_events(pid, fd)
    if events is None:
        return None
    return "exclusive" if events & (1 << 28) else "doorbell" if events & (1 << 31) else "?"


def burst(port, n):
    """n connections opened at once (non-blocking connects, then a request on each, then every response):
    the burst lands in the listen backlog together, as wrk's does. Returns the open sockets."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    for s in socks:
        s.setblocking(True)
        s.settimeout(dt.WAIT)
    conns = socks
    req = f"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    for s in conns:
        s.sendall(req)
    for s in conns:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("a connection of the burst was closed unanswered")
            buf += chunk
        assert buf.startswith(b"HTTP/1.1 200 "), buf[:80]
        head, _, body = buf.partition(b"\r\n\r\n")
        length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("a connection of the burst was closed mid-response")
            body += chunk
    return conns


class AcceptSpread(dt.DroverTestCase):
    def check_spread(self, workers):
        inst = self.start(workers=workers)
        inst.wait_workers(workers)
        conns = burst(inst.port, BURST)
        try:
            counts = dt.wait_until(lambda: (lambda c: c if sum(c.values()) == BURST else None)(
                established_by_worker(inst, inst.port)), message=f"{BURST} connections held by the workers")
            share = -(-BURST // workers)
            # The policy keeps each worker within its share, ceil(total / workers), give or take the connection
            # that puts it above and the ones it takes back when the others are slow to get a CPU. A plain
            # EPOLLEXCLUSIVE loop with accept batches goes far beyond (the worker that runs takes batches of
            # 16) and often leaves a worker with nothing.
            bound = share + share // 4 + 1
            self.assertLessEqual(max(counts.values()), bound, f"connections per worker: {counts}")
            self.assertGreater(min(counts.values()), 0, f"connections per worker: {counts}")
            print(f"{workers} workers: connections per worker {sorted(counts.values())}", flush=True)
        finally:
            for s in conns:
                s.close()
        # All closed: each worker is back on the listener (it was within its share again), so a new burst is
        # served and spread as well.
        dt.wait_until(lambda: sum(established_by_worker(inst, inst.port).values()) == 0,
                      message="the burst's connections to close")
        conns = burst(inst.port, BURST)
        try:
            counts = dt.wait_until(lambda: (lambda c: c if sum(c.values()) == BURST else None)(
                established_by_worker(inst, inst.port)), message=f"{BURST} connections held by the workers")
            self.assertGreater(min(counts.values()), 0, f"second burst, connections per worker: {counts}")
        finally:
            for s in conns:
                s.close()

    def test_burst_spreads_over_two_workers(self):
        self.check_spread(2)

    def test_burst_spreads_over_four_workers(self):
        self.check_spread(4)

    def test_stepped_back_worker_returns_when_its_connections_close(self):
        """A worker that stepped back is back on the listener as soon as closes bring it within its share,
        without waiting for a new connection to ring its doorbell."""
        if dt.ACCEPT != "shared":
            self.skipTest("in dispatch mode the supervisor accepts")
        inst = self.start(workers=2)
        a, b = inst.wait_workers(2).values()
        listener = min(fd for fd, link in dt.proc_fds(a).items() if dt.socket_inode(link) in
                       dt.listening_inodes(inst.port))
        conns = []
        os.kill(b, signal.SIGSTOP)  # b takes nothing meanwhile, but counts as accepting
        try:
            dt.wait_until(lambda: (dt.proc_status(b) or {}).get("State", "").startswith("T"), message="b to stop")
            # a takes them all and steps back above its share: at its 2nd (its 3rd if it had closed one
            # recently, see STEP_BACK_MARGIN). It may answer a connection before it steps back (when the
            # request is there at the accept), so give it a moment to show the doorbell.
            while True:
                self.assertLess(len(conns), 4, "a never stepped back")
                c = inst.connect()
                self.assertEqual(c.request("GET", "/index.html").status, 200)
                conns.append(c)
                try:
                    dt.wait_until(lambda: listener_mode(a, listener) == "doorbell", timeout=2,
                                  message="a to step back")
                    break
                except AssertionError:
                    pass
            self.assertEqual(established_by_worker(inst, inst.port)[a], len(conns))
            time.sleep(0.1)  # past its recheck timer: only a close or a doorbell can bring it back now
            for c in conns[1:]:
                c.close()
            dt.wait_until(lambda: established_by_worker(inst, inst.port)[a] == 1, message="the closes")
            dt.wait_until(lambda: listener_mode(a, listener) == "exclusive", message="a back on the listener")
        finally:
            os.kill(b, signal.SIGCONT)
            for c in conns:
                c.close()


# ---------------------------------------------------------------------------------------------------------------
# The first read right after accept (src/worker/conn.c, conn_read_first()): tried while it finds the request,
# given up for registering and waiting while it finds nothing, taken up again when probes find requests.

STRACE = shutil.which("strace")
EARLY0 = 8   # connections whose request is queued before the worker accepts them, first
LATE = 12    # then connections whose request comes only once the worker has registered them
EARLY = 120  # then queued requests again


def server_fd(pid, port, client_port):
    """The worker's descriptor of the connection from client_port, or None while it has not accepted it."""
    inodes = {inode for local, remote, state, inode in dt.tcp_table() if local == port and remote == client_port}
    return next((int(fd) for fd, link in (dt.proc_fds(pid) or {}).items() if dt.socket_inode(link) in inodes),
                None)


def after_accepts(lines):
    """For each accept4() that returned a connection, in order: the worker's next call on that connection,
    "read" (read() or recv(), which strace shows as recvfrom()) or "epoll_ctl" (its registration)."""
    out, waiting = [], {}
    for line in lines:
        m = re.match(r"accept4\(.*\) = (\d+)$", line)
        if m:
            waiting[m.group(1)] = len(out)
            out.append(None)
            continue
        m = re.match(r"(?:read|recvfrom)\((\d+),|epoll_ctl\(\d+, EPOLL_CTL_ADD, (\d+),", line)
        if m and (m.group(1) or m.group(2)) in waiting:
            out[waiting.pop(m.group(1) or m.group(2))] = "read" if m.group(1) else "epoll_ctl"
    return out


class ReadFirst(dt.DroverTestCase):
    def request(self, port):
        return f"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()

    def response_ok(self, s):
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
        self.assertTrue(buf.startswith(b"HTTP/1.1 200 "), buf[:80])

    def queued(self, worker, port, n):
        """n connections whose request is queued before the stopped worker accepts them; all answered."""
        socks = []
        os.kill(worker, signal.SIGSTOP)
        try:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", port), timeout=dt.WAIT)
                s.sendall(self.request(port))
                socks.append(s)
        finally:
            os.kill(worker, signal.SIGCONT)
        for s in socks:
            with s:
                self.response_ok(s)

    def test_watched_for_writing_only_once_the_socket_is_full(self):
        """A connection is registered for reading only; EPOLLOUT joins once a write finds its socket full."""
        if dt.ACCEPT != "shared":
            self.skipTest("in dispatch mode the supervisor accepts")
        EPOLLIN, EPOLLOUT = 0x1, 0x4
        inst = self.start(workers=1)
        (worker,) = inst.wait_workers(1).values()
        small = inst.connect()
        self.assertEqual(small.request("GET", "/index.html").status, 200)
        fd = dt.wait_until(lambda: server_fd(worker, inst.port, small.sock.getsockname()[1]), message="accept")
        events = dt.wait_until(lambda: epoll_events(worker, fd), message="the registration")
        self.assertEqual(events & (EPOLLIN | EPOLLOUT), EPOLLIN, f"{events:#x}")
        # A 4 MiB download to a client that does not read: the worker's write finds the socket full.
        big = dt.HttpConnection(("127.0.0.1", inst.port), rcvbuf=4096)
        inst.connections.append(big)
        big.send(dt.build_request("GET", "/big.bin"))
        fd = dt.wait_until(lambda: server_fd(worker, inst.port, big.sock.getsockname()[1]), message="accept")
        dt.wait_until(lambda: (epoll_events(worker, fd) or 0) & EPOLLOUT, message="EPOLLOUT")
        resp = big.read_response()
        self.assertEqual((resp.status, len(resp.body)), (200, 4 << 20))
        # The first connection is still served, and still not watched for writing.
        self.assertEqual(small.request("GET", "/index.html").status, 200)
        self.assertEqual(epoll_events(worker, server_fd(worker, inst.port, small.sock.getsockname()[1])) & EPOLLOUT,
                         0)

    def test_first_read_follows_the_clients(self):
        if not STRACE:
            self.skipTest("strace is not installed")
        if dt.ACCEPT != "shared":
            self.skipTest("in dispatch mode the supervisor accepts")
        inst = self.start(workers=1)
        (worker,) = inst.wait_workers(1).values()
        out = f"{self.tmp}/strace.out"
        tracer = subprocess.Popen([STRACE, "-p", str(worker), "-o", out, "-qq", "-e",
                                   "trace=accept4,read,recvfrom,epoll_ctl"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: tracer.poll() is None and tracer.kill())
        dt.wait_until(lambda: (dt.proc_status(worker) or {}).get("TracerPid") == str(tracer.pid),
                      message="strace to attach")

        # Requests already there when the worker accepts: it reads them at once.
        self.queued(worker, inst.port, EARLY0)
        # A client that speaks only once the worker has registered its connection: a read at once finds
        # nothing, and the worker soon stops trying.
        for _ in range(LATE):
            with socket.create_connection(("127.0.0.1", inst.port), timeout=dt.WAIT) as s:
                client_port = s.getsockname()[1]
                fd = dt.wait_until(lambda: server_fd(worker, inst.port, client_port), message="the accept")
                dt.wait_until(lambda: fd in epoll_registrations(worker), message="the registration")
                s.sendall(self.request(inst.port))
                self.response_ok(s)
        # Queued requests again: the probes find them, and the worker reads at once again.
        self.queued(worker, inst.port, EARLY)

        tracer.terminate()
        tracer.communicate(timeout=dt.WAIT)
        with open(out) as f:
            lines = [l.rstrip("\n") for l in f]
        nexts = after_accepts(lines)
        # One accept per report of the level-triggered listener (ACCEPT_BATCH): a lone worker never finds the
        # backlog empty.
        self.assertEqual([l for l in lines if l.startswith("accept4(") and "EAGAIN" in l], [])
        self.assertEqual(len(nexts), EARLY0 + LATE + EARLY, nexts)
        early0, late, early = nexts[:EARLY0], nexts[EARLY0:EARLY0 + LATE], nexts[EARLY0 + LATE:]
        self.assertEqual(early0, ["read"] * EARLY0)
        # Late clients: tried while at least half of the last eight attempts found the request (the first
        # five), then only a probe reads at once (one connection in 16).
        self.assertEqual(late[:4], ["read"] * 4, late)
        self.assertLessEqual(late[5:].count("read"), 1, late)
        # Queued requests: skipped at first, then read at once again once four probes found their request.
        self.assertIn("epoll_ctl", early[:16], early)
        self.assertEqual(early[-20:], ["read"] * 20, early)

if __name__ == "__main__":
    dt.main()
