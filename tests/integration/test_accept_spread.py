# SPDX-License-Identifier: MIT
"""How the built-in workers share the connections of one listening socket (src/worker/worker.c, the accept
policy): a burst of keep-alive connections ends up spread over the workers, none is lost, and a worker that
stepped back from the listener comes back to it.

Evidence is real and needs no timing: which worker process holds each established connection, from the
workers' /proc/PID/fd socket inodes matched against /proc/net/tcp. Every connection is answered before it is
counted, so every one of them has been accepted by then.
"""

import os
import socket

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


if __name__ == "__main__":
    dt.main()
