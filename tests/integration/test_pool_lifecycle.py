#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
The pool's lifecycle as an operator sees it: graceful stop, zero-downtime reload, idle exit and starting
again on the next connection, systemd's watchdog, the live STATUS= line and the structured journal entries.

Where systemd's part matters (idle exit, journal), the test plays systemd: it owns the listening socket and
hands it to drover at fd 3 with LISTEN_FDS/LISTEN_PID, starts drover again when a connection waits after an
exit, or receives drover's journal entries on a journald socket of its own (in a private mount namespace).
"""

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from drover_test import (ACCEPT, DROVER, DROVER_WORKER, EX_CONFIG, WAIT, Drover, DroverTestCase, HttpConnection,
                         clean_environment, drover_has_accept_option, main, proc_environ, proc_read, proc_status,
                         status_of, wait_until)

WRK = shutil.which("wrk")
UNSHARE = shutil.which("unshare")

# Plays systemd's part of socket activation: the socket given (any fd number) becomes fd 3, LISTEN_PID is
# the process that execs drover, as it would be after systemd's fork.
LAUNCH = ("import os, sys\n"
          "fd = int(sys.argv[1])\n"
          "if fd != 3:\n"
          "    os.dup2(fd, 3)\n"
          "    os.close(fd)\n"
          "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='http')\n"
          "os.execv(sys.argv[2], sys.argv[2:])\n")

# A private /run with this test's journald socket at /run/systemd/journal/socket, then exec the rest.
JOURNAL_NS = ('mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
              'mount --bind "$0" /run/systemd/journal && exec "$@"')


STATUS_RX = re.compile(r"^(Ready|Reloading): (\d+)/(\d+) workers, (\d+) conns, ([0-9.]+[kM]?) req/s, "
                       r"(\d+) restarts(, \d+ backing off after failures)?$")


def parse_rate(text):
    mult = {"k": 1e3, "M": 1e6}.get(text[-1], 1)
    return float(text.rstrip("kM")) * mult


def run_wrk(port, seconds, connection_close=False):
    args = [WRK, "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s"]
    if connection_close:
        args += ["-H", "Connection: close"]
    return subprocess.Popen(args + [f"http://127.0.0.1:{port}/plain.txt"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


class Journal:
    """A journald socket: each datagram one entry in the native protocol (KEY=VALUE lines, or KEY, a
    little-endian 64-bit length and the raw value for values with newlines)."""

    def __init__(self, directory):
        self.dir = directory
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(os.path.join(directory, "socket"))
        self.entries = []

    def close(self):
        self.sock.close()

    @staticmethod
    def parse(data):
        fields, i = {}, 0
        while i < len(data):
            nl = data.index(b"\n", i)
            line = data[i:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                i = nl + 1
            else:
                k = line
                n = int.from_bytes(data[nl + 1:nl + 9], "little")
                v = data[nl + 9:nl + 9 + n]
                i = nl + 9 + n + 1
            fields.setdefault(k.decode(), v.decode(errors="replace"))
        return fields

    def drain(self):
        while select.select([self.sock], [], [], 0)[0]:
            self.entries.append(self.parse(self.sock.recv(1 << 20)))
        return self.entries

    def wait_for(self, what, **fields):
        def find():
            self.drain()
            for e in self.entries:
                if all(re.fullmatch(v, e.get(k, "")) for k, v in fields.items()):
                    return e
            return None
        try:
            return wait_until(find, message=f"journal entry {what}")
        except AssertionError:
            raise AssertionError(f"no journal entry {what} {fields}; entries:\n" +
                                 "\n".join(repr(e) for e in self.entries[-20:])) from None


class LifecycleTestCase(DroverTestCase):

    def start_with_socket(self, sock, workers=2, args=(), journal=None, env=None):
        """drover handed sock as systemd would hand it (fd 3, LISTEN_*); optionally logging to journal."""
        nsock = self.new_notify()
        inst = Drover(self.tmp, self.root, nsock)
        inst.ports = [sock.getsockname()[1]]
        argv = [sys.executable, "-c", LAUNCH, str(sock.fileno()), DROVER, f"--workers={workers}",
                f"--root={self.root}"] + self.pool_args(args)
        e = clean_environment(env)
        e["NOTIFY_SOCKET"] = nsock.path
        if journal:
            argv = [UNSHARE, "--mount", "--propagation", "private", "sh", "-c", JOURNAL_NS, journal.dir] + argv
            # stderr is the journal stream as far as drover can tell: it logs natively.
            open(inst.stderr_path, "wb").close()
            st = os.stat(inst.stderr_path)
            e["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        self._popen(inst, argv, e, pass_fds=(sock.fileno(),))
        self.addCleanup(inst.cleanup)
        return inst

    def listening_socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        self.addCleanup(s.close)
        return s

    def request_ok(self, port, path="/plain.txt"):
        with HttpConnection(("127.0.0.1", port)) as c:
            r = c.request("GET", path)
        self.assertEqual(r.status, 200, r)
        return r


# ---------------------------------------------------------------------------------------------------------------
# 4. Graceful stop


class GracefulStopTest(LifecycleTestCase):

    def test_slow_download_completes_across_sigterm(self):
        d = self.start(workers=1)
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            expected = hashlib.sha256(f.read()).hexdigest()
        c = HttpConnection(("127.0.0.1", d.port), rcvbuf=16384)
        c.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        got = c.sock.recv(16384)
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK"), got[:100])
        d.signal(signal.SIGTERM)
        d.notify.wait_for(lambda m: m.has("STOPPING=1"), what="STOPPING=1")
        d.wait_log(r"worker 0: stopping: no new connections, finishing 1 open")
        # Read the rest slowly: the worker must keep sending while it drains.
        while True:
            chunk = c.sock.recv(16384)
            if not chunk:
                break
            got += chunk
            time.sleep(0.002)
        head, body = got.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Length: 4194304", head)
        self.assertEqual(len(body), 4 << 20, "the whole file arrived")
        self.assertEqual(hashlib.sha256(body).hexdigest(), expected)
        c.close()
        self.assertEqual(d.wait_exit(), 0, d.log())
        self.assertNotRegex(d.log(), "graceful-timeout")

    def test_graceful_timeout_bounds_a_stalled_client(self):
        d = self.start(workers=1, args=["--graceful-timeout=1s"])
        c = HttpConnection(("127.0.0.1", d.port), rcvbuf=4096)
        c.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(c.sock.recv(100).startswith(b"HTTP/1.1 200 OK"))
        d.signal(signal.SIGTERM)  # the client never reads again: the response cannot finish
        d.wait_log(r"--graceful-timeout reached with 1 connections open; closing them")
        self.assertEqual(d.wait_exit(), 0, d.log())
        c.close()

    def test_request_sent_as_the_drain_begins_is_answered(self):
        # The race that loses requests elsewhere: the client sends its next request on a keep-alive
        # connection just as the server starts to drain. It is answered, with Connection: close.
        d = self.start(workers=1)
        c = d.connect()
        self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        d.signal(signal.SIGTERM)
        d.wait_log(r"worker 0: stopping: no new connections, finishing 1 open")
        r = c.request("GET", "/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(c.closed_by_peer())
        self.assertEqual(d.wait_exit(), 0, d.log())

    def test_bad_graceful_timeout(self):
        for value in ["abc", "-1s", "1x", "5parsecs", ""]:
            with self.subTest(value=value):
                code, out, err = self.run_drover(["--listen=127.0.0.1:1", f"--graceful-timeout={value}"])
                self.assertEqual(code, EX_CONFIG, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn("--graceful-timeout", err)
                self.assertIn(f"'{value}'", err)


# ---------------------------------------------------------------------------------------------------------------
# 5. Zero-downtime reload


class ReloadTest(LifecycleTestCase):

    def reload_under_load(self, connection_close):
        if not WRK:
            self.skipTest("wrk is not installed")
        d = self.start(workers=2)
        before = d.wait_workers(2)
        seen = len(d.notify.drain())
        wrk = run_wrk(d.port, 7, connection_close)
        self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
        time.sleep(1)
        for i in range(5):
            d.signal(signal.SIGHUP)
            wait_until(lambda: len(re.findall(r"reload: done", d.log())) == i + 1,
                       message=f"reload {i + 1} done; log:\n{d.log()}")
            time.sleep(1)
        out, _ = wrk.communicate(timeout=30)
        self.assertEqual(wrk.returncode, 0, out)
        m = re.search(r"(\d+) requests in", out)
        self.assertTrue(m and int(m.group(1)) > 0, out)
        self.assertNotIn("Socket errors", out, "no connect, read, write or timeout errors")
        self.assertNotIn("Non-2xx", out)
        self.assertEqual(len(re.findall(r"reload: replacing 2 workers", d.log())), 5)
        self.assertEqual(len(re.findall(r"reload: done, 2 workers replaced", d.log())), 5)
        after = d.wait_workers(2)
        self.assertFalse(set(before.values()) & set(after.values()), "every worker PID changed")
        # systemd's reload protocol: RELOADING=1 with MONOTONIC_USEC, then READY=1, five times.
        d.notify.drain()
        msgs = d.notify.messages[seen:]
        self.assertEqual(sum(1 for m in msgs if m.has("RELOADING=1") and "MONOTONIC_USEC" in m.fields), 5)
        self.assertEqual(sum(1 for m in msgs if m.has("READY=1")), 5)
        return out

    def test_five_reloads_under_keepalive_load(self):
        self.reload_under_load(connection_close=False)

    def test_five_reloads_under_connection_close_load(self):
        self.reload_under_load(connection_close=True)

    def test_idle_keepalive_connection_survives_reload(self):
        # The keep-alive connection belongs to an old worker; its next request, sent after the reload has
        # begun, is answered (with Connection: close) instead of being lost to an idle close.
        d = self.start(workers=1)
        c = d.connect()
        self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        old = d.wait_workers(1)[0]
        d.signal(signal.SIGHUP)
        d.wait_log(rf"worker 0: process {old} (is )?stopping|reload: done")
        r = c.request("GET", "/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Connection"), "close")
        d.wait_log(r"reload: done, 1 workers replaced")

    def test_reload_is_done_only_once_the_old_workers_accept_nothing_more(self):
        # READY=1 after a reload (what `systemctl reload` waits for) promises that every new connection gets
        # the new options. An old worker that has not yet acted on its SIGTERM still waits on the listeners,
        # so the reload is done only once it said STOPPING=1 (it closes its listeners first) or exited. A
        # stopped old worker makes the wait visible: it can say nothing, so only its SIGKILL ends the reload.
        d = self.start(workers=1, args=["--graceful-timeout=1s"])
        old = d.wait_workers(1)[0]
        os.kill(old, signal.SIGSTOP)
        self.addCleanup(lambda: os.path.exists(f"/proc/{old}") and os.kill(old, signal.SIGCONT))
        seen = len(d.notify.drain())
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: done, 1 workers replaced", timeout=30)
        log = d.log()
        killed = log.find(f"process {old} still running after the graceful timeout; sending SIGKILL")
        self.assertGreaterEqual(killed, 0, log)
        self.assertLess(killed, log.find("reload: done"), "the reload waited for the old worker")
        self.assertLess(log.find("worker 0: process"), killed)
        d.notify.wait_for(lambda m: m.has("READY=1"), since=seen, what="READY=1 after the reload")
        self.assertEqual(self.request_ok(d.port).body, b"plain text file\n")

    def test_reloads_asked_during_a_reload_are_queued_not_dropped(self):
        d = self.start(workers=2)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: replacing 2 workers")
        d.signal(signal.SIGHUP)
        wait_until(lambda: "reload: queued behind the one running (1 waiting)" in d.log() or
                   len(re.findall(r"reload: replacing", d.log())) == 2, message="the second reload")
        d.signal(signal.SIGHUP)
        wait_until(lambda: len(re.findall(r"reload: done, 2 workers replaced", d.log())) == 3,
                   message=f"three reloads done; log:\n{d.log()}")
        self.assertEqual(len(re.findall(r"reload: replacing 2 workers", d.log())), 3)
        self.assertEqual(self.request_ok(d.port).body, b"plain text file\n")

    def test_invalid_reload_keeps_the_running_pool(self):
        d = self.start(workers=2)
        before = d.wait_workers(2)
        hidden = self.root + ".hidden"
        os.rename(self.root, hidden)
        try:
            d.signal(signal.SIGHUP)
            d.wait_log(rf"reload: --root: invalid value '{re.escape(self.root)}': No such file or directory; "
                       r"expected a readable directory")
            d.wait_log(r"reload: the configuration is invalid; keeping the running pool and its options")
            d.wait_log(r"reload: failed; the workers not yet replaced keep serving")
            self.assertEqual(d.workers(), before, "the running pool is untouched")
        finally:
            os.rename(hidden, self.root)
        self.assertEqual(self.request_ok(d.port).body, b"plain text file\n")
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: done, 2 workers replaced")
        self.assertFalse(set(before.values()) & set(d.wait_workers(2).values()))

    def test_reload_runs_the_binary_on_disk(self):
        # A package upgrade replaces the binaries; the reloaded workers run the new file, the old ones the old.
        # The workers are drover-worker, found next to drover.
        exe = os.path.join(self.tmp, "drover")
        worker_exe = os.path.join(self.tmp, "drover-worker")
        shutil.copy2(DROVER, exe)
        shutil.copy2(DROVER_WORKER, worker_exe)
        sock = self.listening_socket()
        nsock = self.new_notify()
        d = Drover(self.tmp, self.root, nsock)
        d.ports = [sock.getsockname()[1]]
        env = clean_environment({"NOTIFY_SOCKET": nsock.path})
        self._popen(d, [sys.executable, "-c", LAUNCH, str(sock.fileno()), exe, "--workers=2",
                        f"--root={self.root}"] + self.pool_args([]), env, pass_fds=(sock.fileno(),))
        self.addCleanup(d.cleanup)
        d.wait_ready()
        before = d.wait_workers(2)
        old_ino = os.stat(worker_exe).st_ino
        for path, src in ((exe, DROVER), (worker_exe, DROVER_WORKER)):
            shutil.copy2(src, path + ".new")
            os.rename(path + ".new", path)  # as dpkg does
        new_ino = os.stat(worker_exe).st_ino
        for pid in before.values():
            self.assertEqual(os.stat(f"/proc/{pid}/exe").st_ino, old_ino)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: done, 2 workers replaced")
        after = d.wait_workers(2)
        for pid in after.values():
            self.assertNotIn(pid, before.values())
            self.assertEqual(os.stat(f"/proc/{pid}/exe").st_ino, new_ino, "the new workers run the new binary")
        self.assertEqual(self.request_ok(d.port).body, b"plain text file\n")


# ---------------------------------------------------------------------------------------------------------------
# 7. Idle exit


class IdleExitTest(LifecycleTestCase):

    def test_idle_exit_then_started_again_by_the_next_connection(self):
        sock = self.listening_socket()
        port = sock.getsockname()[1]
        d = self.start_with_socket(sock, args=["--exit-idle-time=1s"])
        d.wait_ready()
        self.request_ok(port)
        self.assertEqual(d.wait_exit(), 0, d.log())
        d.wait_log(r"no connection for 1000 ms \(--exit-idle-time\): exiting")
        d.notify.wait_for(lambda m: m.has("STOPPING=1"), what="STOPPING=1")
        # Nothing runs now; like systemd, the test still holds the socket: a client connects and waits in
        # the backlog, and the next instance, started because of it, serves it.
        c = HttpConnection(("127.0.0.1", port))
        c.send("GET /plain.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(select.select([sock], [], [], WAIT)[0], "the socket is readable: time to start drover")
        d2 = self.start_with_socket(sock, args=["--exit-idle-time=1s"])
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain text file\n")
        c.close()
        self.assertEqual(d2.wait_exit(), 0, d2.log())

    def test_open_connection_holds_off_idle_exit(self):
        sock = self.listening_socket()
        port = sock.getsockname()[1]
        d = self.start_with_socket(sock, workers=1, args=["--exit-idle-time=500ms"])
        d.wait_ready()
        c = HttpConnection(("127.0.0.1", port))
        self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        time.sleep(2)  # four idle periods, but a connection is open
        self.assertTrue(d.running(), "an open connection is not idle")
        self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        c.close()
        self.assertEqual(d.wait_exit(), 0, d.log())

    def test_connections_arriving_during_the_exit_are_served(self):
        # Play the race several times: as soon as drover says it exits, a client connects and sends a
        # request. Either the exiting instance serves it (it takes what is queued before it closes the
        # listener) or it waits in the backlog for the next instance, which the test starts as systemd would.
        sock = self.listening_socket()
        port = sock.getsockname()[1]
        served = 0
        for _ in range(4):
            d = self.start_with_socket(sock, args=["--exit-idle-time=300ms"])
            d.wait_ready()
            d.wait_log(r"no connection for 300 ms", timeout=WAIT)
            clients = []
            for _ in range(3):
                c = HttpConnection(("127.0.0.1", port))
                c.send("GET /plain.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                clients.append(c)
            self.assertEqual(d.wait_exit(), 0, d.log())
            if select.select([sock], [], [], 0.2)[0]:
                d2 = self.start_with_socket(sock, args=["--exit-idle-time=300ms"])
            else:
                d2 = None
            for c in clients:
                r = c.read_response()
                self.assertEqual(r.status, 200)
                served += 1
                c.close()
            if d2:
                self.assertEqual(d2.wait_exit(), 0, d2.log())
        self.assertEqual(served, 12)

    def test_idle_exit_needs_sockets_from_systemd(self):
        code, out, err = self.run_drover(["--listen=127.0.0.1:1", f"--root={self.root}", "--exit-idle-time=5s"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("--exit-idle-time", err)
        self.assertIn("--listen", err)


# ---------------------------------------------------------------------------------------------------------------
# 2. systemd's watchdog


class SystemdWatchdogTest(LifecycleTestCase):

    def pets(self, d, since):
        d.notify.drain()
        return [m for m in d.notify.messages[since:] if m.has("WATCHDOG=1")]

    def test_pets_only_while_the_pool_can_serve(self):
        d = self.start(workers=1, env={"WATCHDOG_USEC": "1000000"})
        d.notify.wait_for(lambda m: m.has("WATCHDOG=1"), what="a first WATCHDOG=1")
        worker = d.wait_workers(1)[0]
        env = proc_environ(worker)
        self.assertEqual(env.get("WATCHDOG_PID"), str(worker), "systemd's watchdog is not passed on as such")
        self.assertEqual(env.get("WATCHDOG_USEC"), "10000000", "the worker's own deadline (--worker-watchdog)")
        # The pool cannot recover: its root is gone, so no new worker can start.
        hidden = self.root + ".hidden"
        os.rename(self.root, hidden)
        restored = False
        try:
            os.kill(worker, signal.SIGKILL)
            d.wait_log(r"no worker has been ready for \d+ ms: the pool cannot recover by itself; no longer "
                       r"petting systemd's watchdog", timeout=WAIT + 5)
            since = len(d.notify.drain())
            time.sleep(1.5)  # three pet intervals
            self.assertEqual(self.pets(d, since), [], "no WATCHDOG=1 while the pool cannot serve")
            self.assertTrue(d.running(), "the supervisor leaves the restart to systemd")
            os.rename(hidden, self.root)
            restored = True
        finally:
            if not restored:
                os.rename(hidden, self.root)
        d.wait_log(r"the pool recovered; petting systemd's watchdog again", timeout=40)
        since = len(d.notify.messages)
        d.notify.wait_for(lambda m: m.has("WATCHDOG=1"), since=since, what="WATCHDOG=1 again")
        self.assertEqual(self.request_ok(d.port).body, b"plain text file\n")

    def test_no_watchdog_no_pets(self):
        d = self.start(workers=1)
        since = len(d.notify.drain())
        time.sleep(1)
        self.assertEqual(self.pets(d, 0), [])
        self.assertGreaterEqual(since, 1)


# ---------------------------------------------------------------------------------------------------------------
# 9. Live status


class StatusTest(LifecycleTestCase):

    def statuses(self, d, since=0):
        d.notify.drain()
        return [status_of(m) for m in d.notify.messages[since:] if status_of(m)]

    def test_status_counts_connections_rate_and_restarts(self):
        # A dispatch worker holds one connection at a time: the three held below and the busy one need four.
        w = 4 if ACCEPT == "dispatch" else 2
        d = self.start(workers=w, args=["--worker-watchdog=0"])
        ready = status_of(d.wait_ready())
        self.assertEqual(ready, f"Ready: {w}/{w} workers, 0 conns, 0 req/s, 0 restarts")
        # Traffic for about three seconds over keep-alive connections, with three idle connections held open.
        held = [d.connect() for _ in range(3)]
        for c in held:
            self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        stop = time.monotonic() + 3
        n = 0
        c = d.connect()
        while time.monotonic() < stop:
            r = c.request("GET", "/plain.txt")
            self.assertEqual(r.status, 200)
            n += 1
            if r.header("Connection") == "close":  # --keepalive-requests: a new connection
                c.close()
                c = d.connect()
        c.close()
        busy = [s for s in self.statuses(d) if STATUS_RX.match(s)]
        rates = [parse_rate(STATUS_RX.match(s).group(5)) for s in busy]
        self.assertTrue(any(r > 0 for r in rates), f"a request rate while busy: {busy}")
        self.assertTrue(any(int(STATUS_RX.match(s).group(4)) >= 3 for s in busy), busy)
        # Traffic stops: the line settles to the idle truth (the three held connections, no requests).
        wait_until(lambda: (self.statuses(d) or [""])[-1] == f"Ready: {w}/{w} workers, 3 conns, 0 req/s, 0 restarts",
                   message=f"the idle status; got {self.statuses(d)[-3:]}")
        for c in held:
            c.close()
        wait_until(lambda: (self.statuses(d) or [""])[-1] == f"Ready: {w}/{w} workers, 0 conns, 0 req/s, 0 restarts",
                   message=f"0 conns; got {self.statuses(d)[-3:]}")
        # Idle: not one more STATUS= (or anything else) while nothing happens, once the last one-second
        # refresh has found nothing changed.
        time.sleep(1.5)
        since = len(d.notify.drain())
        sup = d.pid
        switches = int(proc_status(sup)["voluntary_ctxt_switches"])
        time.sleep(2)
        self.assertEqual(self.statuses(d, since), [], "no STATUS= updates while idle")
        self.assertEqual(int(proc_status(sup)["voluntary_ctxt_switches"]), switches,
                         "the idle supervisor does not wake up at all (no worker watchdog, no systemd watchdog)")
        # A restart is counted.
        os.kill(d.wait_workers(w)[0], signal.SIGKILL)
        wait_until(lambda: (self.statuses(d) or [""])[-1] == f"Ready: {w}/{w} workers, 0 conns, 0 req/s, 1 restarts",
                   message=f"1 restarts; got {self.statuses(d)[-3:]}")
        self.assertGreater(n, 0)

    def test_idle_wakeups_are_only_the_worker_pings(self):
        # With the default watchdog (10 s, pings every 5 s) and two workers, an idle supervisor wakes for the
        # pings only: at most a handful in three seconds, not a periodic tick.
        d = self.start(workers=2)
        time.sleep(0.5)
        switches = int(proc_status(d.pid)["voluntary_ctxt_switches"])
        time.sleep(3)
        woke = int(proc_status(d.pid)["voluntary_ctxt_switches"]) - switches
        self.assertLessEqual(woke, 4, "two workers ping once per 5 s each; anything more is polling")


# ---------------------------------------------------------------------------------------------------------------
# DeferAcceptSec= for dispatch pools (drover(8), ACCEPT MODELS: why the docs recommend it)


class DeferAcceptTest(LifecycleTestCase):

    def setUp(self):
        super().setUp()
        if not drover_has_accept_option():
            self.skipTest("this drover has no --accept option")

    def dispatch_pool_of_one(self, defer_seconds):
        """A dispatch pool that cannot grow (one worker) on a socket as systemd makes it with
        DeferAcceptSec=defer_seconds (TCP_DEFER_ACCEPT; 0: not set), and a client that connects and says
        nothing."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.addCleanup(sock.close)
        if defer_seconds:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, defer_seconds)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        d = self.start_with_socket(sock, workers=1, args=["--accept=dispatch", "--max-workers=1"])
        d.wait_ready()
        silent = HttpConnection(("127.0.0.1", d.port))
        d.connections.append(silent)
        return d, silent

    def raw_statuses(self, d):
        d.notify.drain()
        return [m.fields["STATUS"] for m in d.notify.messages if "STATUS" in m.fields]

    def test_without_it_a_silent_client_holds_the_only_worker(self):
        d, silent = self.dispatch_pool_of_one(0)
        wait_until(lambda: any(re.match(r"Ready: 1/1 workers \(1 busy\), .*, backlog: waiting for a free worker$", s)
                               for s in self.raw_statuses(d)),
                   message=f"the silent connection handed to the worker; got {self.raw_statuses(d)[-3:]}")
        c = d.connect()
        c.send(b"GET /plain.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        silent.close()  # the worker is free again only now
        self.assertEqual(c.read_response().body, b"plain text file\n", "served once the silent client left")

    def test_with_it_the_worker_serves_others_while_a_client_is_silent(self):
        # 60 s: far longer than this test, after which the kernel would accept the silent connection anyway.
        d, silent = self.dispatch_pool_of_one(60)
        for _ in range(3):
            self.assertEqual(d.get("/plain.txt").body, b"plain text file\n")
        self.assertTrue(silent.still_open(), "the silent client is still connected, never handed to the worker")
        free = r"Ready: 1/1 workers \(0 busy\), .*, accepting$"
        wait_until(lambda: re.match(free, (self.raw_statuses(d) or [""])[-1]),
                   message=f"a free worker; got {self.raw_statuses(d)[-3:]}")
        silent.send(b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(silent.read_response().status, 200, "and served as soon as it speaks")


# ---------------------------------------------------------------------------------------------------------------
# 10. Structured journal entries


@__import__("unittest").skipUnless(os.geteuid() == 0 and UNSHARE, "needs root and unshare (a mount namespace)")
class JournalTest(LifecycleTestCase):

    def test_lifecycle_events_are_structured_journal_entries(self):
        jdir = os.path.join(self.tmp, "journal")
        os.mkdir(jdir)
        j = Journal(jdir)
        self.addCleanup(j.close)
        sock = self.listening_socket()
        port = sock.getsockname()[1]
        d = self.start_with_socket(sock, workers=2, journal=j,
                                   args=["--max-requests=3", "--worker-watchdog=1s", "--exit-idle-time=3s"])
        d.wait_ready()
        workers = d.wait_workers(2)
        for slot, pid in workers.items():
            j.wait_for("spawn", DROVER_EVENT="spawn", DROVER_WORKER_SLOT=str(slot), DROVER_WORKER_PID=str(pid),
                       PRIORITY="6", MESSAGE=rf"worker {slot}: started as process {pid}")
            j.wait_for("ready", DROVER_EVENT="ready", DROVER_WORKER_SLOT=str(slot), DROVER_WORKER_PID=str(pid))
        # Retire: one connection, three requests, one worker.
        with HttpConnection(("127.0.0.1", port)) as c:
            for _ in range(3):
                self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        retired = j.wait_for("retire", DROVER_EVENT="retire", MESSAGE_ID="[0-9a-f]{32}", DROVER_WORKER_SLOT="[01]",
                             DROVER_WORKER_PID=r"\d+")
        wait_until(lambda: not os.path.exists(f"/proc/{retired['DROVER_WORKER_PID']}"),
                   message="the retired worker to finish")
        # Watchdog kill.
        victim = d.wait_workers(2)[1]
        os.kill(victim, signal.SIGSTOP)
        e = j.wait_for("watchdog", DROVER_EVENT="watchdog", DROVER_WORKER_SLOT="1", DROVER_WORKER_PID=str(victim),
                       MESSAGE_ID="[0-9a-f]{32}", PRIORITY="4")
        self.assertIn(f"process {victim}", e["MESSAGE"])
        j.wait_for("exit", DROVER_EVENT="crash|exit", DROVER_WORKER_SLOT="1", DROVER_WORKER_PID=str(victim))
        # Reload start and finish.
        wait_until(lambda: len(d.workers()) == 2 and victim not in d.workers().values(), message="replacement")
        d.notify.wait_for(lambda m: (status_of(m) or "").startswith("Ready: 2/2"), since=0, what="2/2")
        os.kill(d.pid, signal.SIGHUP)
        j.wait_for("reload-start", DROVER_EVENT="reload-start", MESSAGE_ID="[0-9a-f]{32}")
        j.wait_for("reload-done", DROVER_EVENT="reload-done", MESSAGE_ID="[0-9a-f]{32}")
        # Idle exit.
        self.assertEqual(d.wait_exit(timeout=WAIT + 5), 0)
        j.wait_for("idle-exit", DROVER_EVENT="idle-exit", MESSAGE_ID="[0-9a-f]{32}")
        self.assertEqual(d.log(), "", "with the journal, nothing goes to stderr")
        # Every MESSAGE_ID used has an entry in the catalog shipped in units/.
        catalog = open(os.path.join(os.path.dirname(__file__), "..", "..", "units", "drover.catalog")).read()
        for e in j.drain():
            if "MESSAGE_ID" in e:
                self.assertRegex(catalog, rf"(?m)^-- {e['MESSAGE_ID']}$", f"catalog entry for {e}")
            if e.get("DROVER_WORKER_SLOT"):
                self.assertIn("DROVER_WORKER_PID", e)
            self.assertIn("DROVER_EVENT", e, f"every drover entry names its event: {e}")

    def test_backoff_is_one_summary_entry(self):
        jdir = os.path.join(self.tmp, "journal")
        os.mkdir(jdir)
        j = Journal(jdir)
        self.addCleanup(j.close)
        sock = self.listening_socket()
        d = self.start_with_socket(sock, workers=1, journal=j)
        d.wait_ready()
        hidden = self.root + ".hidden"
        os.rename(self.root, hidden)
        self.addCleanup(os.rename, hidden, self.root)
        os.kill(d.wait_workers(1)[0], signal.SIGKILL)
        wait_until(lambda: sum(1 for e in j.drain() if e.get("DROVER_EVENT") == "crash") >= 4,
                   message="four deaths")
        backoff = [e for e in j.drain() if e.get("DROVER_EVENT") == "backoff"]
        self.assertEqual(len(backoff), 1, "one summary while backing off, not one per death")
        self.assertRegex(backoff[0].get("MESSAGE_ID", ""), "^[0-9a-f]{32}$")
        self.assertEqual(backoff[0].get("DROVER_WORKER_SLOT"), "0")


if __name__ == "__main__":
    main()
