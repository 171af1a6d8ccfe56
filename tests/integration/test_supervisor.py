# SPDX-License-Identifier: MIT
"""The supervisor (src/supervisor/, src/common/options.c, src/main.c): command line and exit codes, sockets,
the workers' spawn environment, sd_notify towards its $NOTIFY_SOCKET, replacement of dead workers, stop on
SIGTERM/SIGINT, and what happens when the supervisor itself is killed."""

import os
import re
import signal
import socket

from drover_test import (ACCEPT, EX_CONFIG, EX_USAGE, DroverTestCase, HttpConnection, free_port, listening_inodes, main,
                         proc_alive, proc_cmdline, proc_environ, proc_fds, proc_status, reap,
                         signal_mask, socket_inode, status_of, unbound_unix_dgram_inodes, wait_until)



class CommandLineTest(DroverTestCase):
    """Exit codes: 0 for --help/--version, 64 (EX_USAGE) for a malformed command line, 78 (EX_CONFIG) for a
    well-formed option with an invalid value or an unusable configuration, with one line saying why."""

    def assertOneLine(self, err, *needles):
        lines = [line for line in err.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, f"expected exactly one line on stderr, got:\n{err}")
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    def test_help(self):
        for arg in ("--help", "-h"):
            with self.subTest(arg=arg):
                code, out, err = self.run_drover([arg])
                self.assertEqual(code, 0, err)
                self.assertIn("Usage: drover", out)
                for opt in ("--workers", "--listen", "--root", "--help", "--version"):
                    self.assertIn(opt, out)
                self.assertEqual(err, "")

    def test_version(self):
        code, out, err = self.run_drover(["--version"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"^drover \d+\.\d+\.\d+\S*\n$")
        self.assertEqual(err, "")

    def test_malformed_command_line_is_usage_error(self):
        port = free_port()
        cases = [
            (["--bogus"], "--bogus"),
            (["--bogus=1"], "--bogus"),
            (["-x"], "-x"),
            (["--workers"], "--workers"),
            (["-w"], "-w"),
            (["--listen"], "--listen"),
            (["--root"], "--root"),
            (["--help=yes"], "--help"),
            ([f"--listen=127.0.0.1:{port}", f"--root={self.root}", "stray-argument"], "stray-argument"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                code, out, err = self.run_drover(args)
                self.assertEqual(code, EX_USAGE, err)
                self.assertIn(named, err.splitlines()[0], "the first line names what is wrong")
                self.assertIn("Usage: drover", err, "usage on stderr")
                self.assertEqual(out, "")
                self.assertNotRegex(err, r"Ready|started as process", "nothing was started")

    def test_exec_command_that_does_not_exist(self):
        port = free_port()
        for command in ["/nonexistent/program", "no-such-program-anywhere"]:
            with self.subTest(command=command):
                code, out, err = self.run_drover([f"--listen=127.0.0.1:{port}", "--", command])
                self.assertEqual(code, EX_CONFIG, err)
                self.assertOneLine(err, command)
                self.assertNotListening(port)

    def test_invalid_values_are_config_errors(self):
        port = free_port()
        base = [f"--listen=127.0.0.1:{port}", f"--root={self.root}"]
        cases = [
            (["--workers=0"], "--workers", "'0'"),
            (["--workers=abc"], "--workers", "'abc'"),
            (["--workers=-1"], "--workers", "'-1'"),
            (["--workers=1025"], "--workers", "'1025'"),
            (["-w", "99999999999999999999"], "--workers", "99999999999999999999"),
            (["--listen=nonsense"], "--listen", "'nonsense'"),
            (["--listen=127.0.0.1"], "--listen", "'127.0.0.1'"),
            (["--listen=127.0.0.1:0"], "--listen", "'127.0.0.1:0'"),
            (["--listen=127.0.0.1:65536"], "--listen", "'127.0.0.1:65536'"),
            (["--listen=[::1]"], "--listen", "'[::1]'"),
            (["--listen=ftp:127.0.0.1:21"], "--listen", "'ftp:127.0.0.1:21'"),
            (["--listen=relative/path"], "--listen", "'relative/path'"),
            (["--root=/does/not/exist"], "--root", "/does/not/exist"),
            (["--root="], "--root", "''"),
        ]
        for extra, option, value in cases:
            with self.subTest(args=extra):
                code, out, err = self.run_drover(base + extra)
                self.assertEqual(code, EX_CONFIG, err)
                self.assertOneLine(err, option, value)
                self.assertEqual(out, "")
        self.assertNotListening(port, "nothing listens after a configuration error")

    def test_no_sockets(self):
        code, out, err = self.run_drover([f"--root={self.root}"])
        self.assertEqual(code, EX_CONFIG, err)
        line = self.assertOneLine(err)
        self.assertIn("--listen", line, "says how to run it")
        self.assertIn("systemd-socket-activate", line, "says how to run it")

    def test_sockets_for_another_process_are_not_taken(self):
        # LISTEN_FDS meant for another PID: not ours (and nothing is open at fd 3 anyway).
        code, out, err = self.run_drover([f"--root={self.root}"],
                                         env={"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "http"})
        self.assertEqual(code, EX_CONFIG, err)
        self.assertIn("--listen", self.assertOneLine(err))

    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            code, out, err = self.run_drover([f"--listen=127.0.0.1:{port}", f"--root={self.root}"])
            self.assertEqual(code, EX_CONFIG, err)
            self.assertOneLine(err, "--listen", f"127.0.0.1:{port}")

            # The addresses bound before the failing one are released, unix socket files removed.
            path = os.path.join(self.tmp, "first.sock")
            code, out, err = self.run_drover([f"--listen={path}", f"--listen=127.0.0.1:{port}",
                                              f"--root={self.root}"])
            self.assertEqual(code, EX_CONFIG, err)
            self.assertOneLine(err, f"127.0.0.1:{port}")
            self.assertFalse(os.path.lexists(path))

    def test_unix_path_that_is_not_a_socket_is_left_alone(self):
        path = os.path.join(self.tmp, "not-a-socket")
        with open(path, "w") as f:
            f.write("precious\n")
        code, out, err = self.run_drover([f"--listen={path}", f"--root={self.root}"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertOneLine(err, path)
        with open(path) as f:
            self.assertEqual(f.read(), "precious\n")


class StartupTest(DroverTestCase):

    def test_ready_once_all_workers_are_ready(self):
        d = self.start(workers=3)
        ready = d.wait_ready()
        self.assertTrue(ready.has("READY=1"))
        self.assertRegex(status_of(ready) or "", r"^Ready: 3/3 workers, 0 conns, 0 req/s, 0 restarts$",
                         "STATUS= in the same datagram as READY=1")
        workers = d.wait_workers(3)
        self.assertEqual(sorted(workers), [0, 1, 2])
        d.wait_log(r"Ready: 3/3 workers")
        for slot in range(3):
            d.wait_log(rf"worker {slot}: process {workers[slot]} ready$")
        # Only the supervisor talks to its NOTIFY_SOCKET: nothing there comes from a worker.
        d.notify.drain()
        self.assertTrue(d.notify.messages)
        for m in d.notify.messages:
            self.assertEqual(m.pid, d.pid, f"{m!r} not sent by the supervisor")
        self.assertEqual(sum(m.has("READY=1") for m in d.notify.messages), 1)
        self.assertEqual(d.get("/plain.txt").status, 200)

    def test_worker_environment(self):
        d = self.start(workers=3, env={"DROVER_IT_MARKER": "passed-through",
                                       "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"})
        workers = d.wait_workers(3)
        notify_sockets = set()
        for slot, pid in workers.items():
            with self.subTest(slot=slot):
                env = self.assertWorkerLooksSpawned(d, slot, pid)
                self.assertEqual(env.get("DROVER_IT_MARKER"), "passed-through",
                                 "the rest of the environment is passed on")
                self.assertIn(f"--root={self.root}", proc_cmdline(pid))
                notify_sockets.add(env["NOTIFY_SOCKET"])
        self.assertEqual(len(notify_sockets), 1, "one private notify socket for the pool")
        # The private socket is the supervisor's: an abstract AF_UNIX datagram socket it holds.
        name = notify_sockets.pop()[1:]
        with open("/proc/net/unix") as f:
            inodes = {int(cols[6]) for cols in (line.split() for line in f.readlines()[1:])
                      if len(cols) >= 8 and cols[7] == "@" + name}
        self.assertTrue(inodes, f"abstract socket @{name} exists")
        sup_inodes = {socket_inode(link) for link in proc_fds(d.pid).values()}
        self.assertTrue(inodes & sup_inodes, "the supervisor holds the private notify socket")

    def test_worker_descriptors(self):
        leak_path = os.path.join(self.tmp, "leaked-file")
        # An inheritable descriptor above any the supervisor will use itself (so that dup2() to 3, 4 cannot
        # hide it): a careless parent's leak, which close_range() in the child must catch.
        fd = os.open(leak_path, os.O_RDWR | os.O_CREAT, 0o600)
        leak = os.dup2(fd, 60, inheritable=True)
        os.close(fd)
        self.addCleanup(os.close, leak)
        d = self.start(workers=2, listen=["127.0.0.1:{port}", "http:127.0.0.1:{port}"], pass_fds=(leak,))
        self.assertIn(leak_path, proc_fds(d.pid).values(), "test setup: the supervisor inherited a stray fd")
        want_inodes = []
        for port in d.ports:
            inodes = listening_inodes(port)
            self.assertEqual(len(inodes), 1, f"one listening socket on {port}")
            want_inodes.append(inodes.pop())
        sup_fds = proc_fds(d.pid)
        root = os.path.realpath(self.root)
        # Beyond 0-2 and the sockets, only what the worker opened itself after exec: its epoll, its signalfd,
        # its document root and the socket it notifies the supervisor through. Anything else (the stray fd, a
        # pidfd, the supervisor's notify socket, sd-event's fds) leaked from the supervisor. Polled: the worker
        # may still be starting.
        own = {"anon_inode:[eventpoll]", "anon_inode:[signalfd]", root}
        sup_inodes = {socket_inode(link) for link in sup_fds.values()} - {None}

        def own_notify_socket(link):
            # The one socket a worker keeps for $NOTIFY_SOCKET (daemon.h): a datagram AF_UNIX socket it made
            # itself, so unbound, and none of the supervisor's.
            inode = socket_inode(link)
            return inode is not None and inode not in sup_inodes and inode in unbound_unix_dgram_inodes()

        def unexpected(pid, own=own):
            fds = proc_fds(pid)
            rest = sorted(link for fd, link in fds.items() if fd > 4)
            notify = [link for link in rest if link not in own and own_notify_socket(link)]
            bad = [link for link in rest if link not in own and link not in notify[:1]]
            if len(rest) != len(set(rest)):
                bad.append(f"duplicates among {rest}")
            return fds, bad

        for slot, pid in d.wait_workers(2).items():
            with self.subTest(slot=slot):
                self.assertWorkerLooksSpawned(d, slot, pid, n_sockets=2, fdnames="http:http")
                fds = proc_fds(pid)
                for fd in (0, 1, 2):
                    self.assertEqual(fds.get(fd), sup_fds.get(fd), f"fd {fd} is the supervisor's")
                mine = own
                if ACCEPT == "dispatch":
                    # A dispatch worker never accepts: it closes the listening sockets it inherited (at 3 and 4,
                    # as any worker gets them) and is handed connections over its own pair with the supervisor,
                    # at the fd $DROVER_DISPATCH names: 3 + LISTEN_FDS + 1, after the stats memfd.
                    pair = int(proc_environ(pid)["DROVER_DISPATCH"])
                    self.assertEqual(pair, 6)
                    wait_until(lambda: not {3, 4} & set(proc_fds(pid)), message="the listening sockets closed")
                    self.assertIsNotNone(socket_inode(fds.get(pair)), f"fd {pair}: the dispatch pair")
                    self.assertNotIn(socket_inode(fds.get(pair)), want_inodes, "not a listening socket")
                    mine = own | {fds[pair]}
                else:
                    self.assertEqual(socket_inode(fds.get(3)), want_inodes[0], "fd 3: first --listen socket")
                    self.assertEqual(socket_inode(fds.get(4)), want_inodes[1], "fd 4: second --listen socket")
                try:
                    wait_until(lambda: not unexpected(pid, mine)[1], message="only the worker's own descriptors")
                except AssertionError:
                    fds, bad = unexpected(pid, mine)
                    self.fail(f"descriptors leaked into worker {pid}: {bad}; all: {fds}")

    def test_worker_signal_state(self):
        def dirty_signal_state():
            # What a careless parent might hand to the supervisor; none of it may reach a worker.
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGWINCH})

        d = self.start(workers=2, preexec_fn=dirty_signal_state)
        sup = proc_status(d.pid)
        self.assertTrue(int(sup["SigBlk"], 16) & signal_mask(["SIGCHLD"]),
                        "test setup: the supervisor blocks SIGCHLD, which a worker must not inherit")
        # A worker blocks SIGTERM and SIGINT itself, after exec, for its signalfd, and ignores SIGPIPE itself;
        # nothing else may be blocked or ignored.
        own_blocked = signal_mask(["SIGTERM", "SIGINT"])
        own_ignored = signal_mask(["SIGPIPE"])
        for slot, pid in d.wait_workers(2).items():
            with self.subTest(slot=slot):
                st = proc_status(pid)
                self.assertEqual(int(st["SigBlk"], 16) & ~own_blocked, 0, f"blocked: SigBlk {st['SigBlk']}")
                self.assertEqual(int(st["SigIgn"], 16) & ~own_ignored, 0, f"ignored: SigIgn {st['SigIgn']}")
                self.assertEqual(int(st["SigPnd"], 16), 0)

    def test_logs_go_to_stderr_outside_journald(self):
        # JOURNAL_STREAM names a stream that stderr is not (an operator redirected it): plain lines on stderr.
        d = self.start(workers=1, env={"JOURNAL_STREAM": "1:1"})
        pid = d.wait_workers(1)[0]
        d.wait_log(rf"^drover\[{d.pid}\]: worker 0: started as process {pid}$")
        d.wait_log(r"^drover\[\d+\]: Ready: 1/1 workers( \(\d+ busy\))?, ")  # "(N busy)": dispatch
        self.assertEqual(d.stdout(), "", "nothing on stdout")

    def test_foreign_notify_message_is_dropped(self):
        d = self.start(workers=2)
        d.wait_ready()
        pid = next(iter(d.wait_workers(2).values()))
        address = proc_environ(pid)["NOTIFY_SOCKET"]
        self.assertTrue(address.startswith("@"))
        seen = len(d.notify.drain())
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", "\0" + address[1:])
            s.sendto(b"STOPPING=1\nSTATUS=forged", "\0" + address[1:])
        me = os.getpid()
        d.wait_log(rf"dropping a message from process {me}\b.*not a worker")
        self.assertEqual(d.get("/plain.txt").status, 200, "the pool is unaffected")
        self.assertEqual(sorted(d.workers()), [0, 1])
        d.notify.drain()
        for m in d.notify.messages[seen:]:
            self.assertFalse(m.has("STOPPING=1"), m)
            self.assertNotIn("forged", m.text)

    def test_unix_socket_listener(self):
        path = os.path.join(self.tmp, "drover.sock")
        d = self.start(workers=2, listen=[path])
        r = d.get("/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain text file\n")
        for slot, pid in d.wait_workers(2).items():
            self.assertWorkerLooksSpawned(d, slot, pid)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        self.assertFalse(os.path.lexists(path), "the socket file drover created is removed on exit")

    def test_stale_unix_socket_file_is_replaced(self):
        path = os.path.join(self.tmp, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # leaves the socket file behind, as a crashed earlier run would
        d = self.start(workers=1, listen=[path])
        self.assertEqual(d.get("/plain.txt").status, 200)

    def test_ipv6_listener(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        d = self.start(workers=1, listen=["[::1]:{port}"])
        with HttpConnection(("::1", d.port), socket.AF_INET6) as c:
            r = c.request("GET", "/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertNotListening(d.port, "IPv6 only: not on 127.0.0.1", ipv4_only=True)

    def test_several_listeners_all_served(self):
        path = os.path.join(self.tmp, "third.sock")
        d = self.start(workers=2, listen=["127.0.0.1:{port}", "127.0.0.1:{port}", path])
        for i in range(2):
            self.assertEqual(d.get("/plain.txt", index=i).status, 200)
        with HttpConnection(path, socket.AF_UNIX) as c:
            self.assertEqual(c.request("GET", "/plain.txt").status, 200)
        for slot, pid in d.wait_workers(2).items():
            self.assertWorkerLooksSpawned(d, slot, pid, n_sockets=3, fdnames="http:http:http")


class ReplacementTest(DroverTestCase):

    def test_killed_worker_is_replaced_in_its_slot(self):
        d = self.start(workers=3)
        before = d.wait_workers(3)
        seen = len(d.notify.drain())
        victim = before[1]
        os.kill(victim, signal.SIGKILL)
        after = wait_until(lambda: (lambda w: w if len(w) == 3 and w[1] != victim else None)(d.workers()),
                           message="a new worker in slot 1")
        self.assertEqual(after[0], before[0], "other slots untouched")
        self.assertEqual(after[2], before[2], "other slots untouched")
        wait_until(lambda: not os.path.exists(f"/proc/{victim}"), message="the dead worker reaped")
        d.wait_log(rf"worker 1: process {victim} was killed by signal SIGKILL unexpectedly \(was ready, after \d+ ms\); "
                   r"replacing it$")
        # STATUS= follows: fewer than 3 ready, then 3/3 again (READY=1 itself is not repeated).
        d.notify.wait_for(lambda m: (status_of(m) or "").startswith("Ready: 2/3"), since=seen,
                          what="STATUS=Ready: 2/3 after the kill")
        d.notify.wait_for(lambda m: (status_of(m) or "").startswith("Ready: 3/3 workers, "), since=seen,
                          what="STATUS=Ready: 3/3 workers after the replacement")
        self.assertWorkerLooksSpawned(d, 1, after[1])
        self.assertEqual(d.get("/plain.txt").status, 200)

    def test_replacement_serves_and_backlog_waits(self):
        d = self.start(workers=1)
        old = d.wait_workers(1)[0]
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: not proc_alive(old), message="the worker to die")
        # The supervisor keeps the listening socket: a client arriving while no worker runs waits in the
        # backlog and is served by the replacement, which is the only worker.
        with d.connect() as c:
            r = c.request("GET", "/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain text file\n")
        new = d.wait_workers(1)[0]
        self.assertNotEqual(new, old)
        self.assertWorkerLooksSpawned(d, 0, new)

    def test_repeated_crashes_are_still_replaced(self):
        d = self.start(workers=2)
        for _ in range(4):
            pid = d.wait_workers(2)[0]
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: d.workers().get(0) not in (None, pid), message="a replacement in slot 0")
        d.wait_workers(2)

        def last_status():
            d.notify.drain()
            statuses = [status_of(m) for m in d.notify.messages if status_of(m)]
            return statuses[-1] if statuses else None

        # Whatever the STATUS= updates in between, the pool ends up complete, says so, and serves.
        wait_until(lambda: re.match(r"^Ready: 2/2 workers, \d+ conns, \S+ req/s, [4-9] restarts$", last_status() or ""),
                   message="STATUS=Ready: 2/2 workers, ... 4 restarts")
        self.assertEqual(d.get("/plain.txt").status, 200)
        self.assertTrue(d.running())

    def test_worker_stopped_with_sigterm_is_replaced(self):
        # Someone other than the supervisor (an operator's kill, a stray pkill) stops one worker: it drains
        # and exits 0 after saying STOPPING=1. The supervisor is not stopping, so the slot must be refilled;
        # a pool that silently shrinks ends up serving nothing.
        d = self.start(workers=2)
        before = d.wait_workers(2)
        victim = before[0]
        os.kill(victim, signal.SIGTERM)
        d.wait_log(rf"worker 0: process {victim} exited with status 0")
        after = wait_until(lambda: (lambda w: w if len(w) == 2 and w.get(0) not in (None, victim) else None)(
            d.workers()), message=f"a new worker in slot 0 after worker {victim} exited; log:\n{d.log()}")
        self.assertEqual(after[1], before[1])
        self.assertWorkerLooksSpawned(d, 0, after[0])

    def test_pool_recovers_when_workers_cannot_start(self):
        d = self.start(workers=2)
        before = d.wait_workers(2)
        seen = len(d.notify.drain())
        hidden = self.root + ".hidden"
        os.rename(self.root, hidden)  # running workers keep their root open; new ones cannot open it
        try:
            os.kill(before[0], signal.SIGKILL)
            d.wait_log(r"worker 0: process \d+ exited with status 78 unexpectedly .*restarting it in \d+ ms \(\d+ failures in a row\)")
            d.notify.wait_for(lambda m: "backing off" in (status_of(m) or ""), since=seen,
                              what="STATUS= saying a slot backs off")
            self.assertEqual(d.get("/plain.txt").status, 200, "the other worker still serves")
        finally:
            os.rename(hidden, self.root)
        # Backoff grows exponentially from 100 ms; restored quickly, the next attempts are well within this.
        d.notify.wait_for(lambda m: re.match(r"^Ready: 2/2 workers, [^,]+, [^,]+, \d+ restarts$", status_of(m) or ""),
                          since=seen, timeout=30,
                          what="STATUS=Ready: 2/2 workers after the root came back")
        self.assertEqual(sorted(d.workers()), [0, 1])
        self.assertTrue(d.running())


class StopTest(DroverTestCase):

    def test_sigterm_stops_everything(self):
        d = self.start(workers=3)
        workers = d.wait_workers(3)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        stopping = d.notify.wait_for(lambda m: m.has("STOPPING=1"), what="STOPPING=1")
        self.assertEqual(stopping.pid, d.pid)
        for pid in workers.values():
            self.assertFalse(proc_alive(pid), f"worker {pid} left behind")
        self.assertNotListening(d.port, "the port is released")
        self.assertIn("all workers stopped", d.log())
        d.notify.wait_for(lambda m: (status_of(m) or "").startswith("Stopping"), what="STATUS=Stopping...")
        for m in d.notify.messages:
            self.assertEqual(m.pid, d.pid, f"{m!r}: a worker's STOPPING=1 must never reach the supervisor's "
                                           "NOTIFY_SOCKET")
        for slot, pid in workers.items():
            self.assertRegex(d.log(), rf"worker {slot}: process {pid} exited with status 0")

    def test_sigint_stops_everything(self):
        d = self.start(workers=2)
        workers = d.wait_workers(2)
        d.signal(signal.SIGINT)
        self.assertEqual(d.wait_exit(), 0, d.log())
        d.notify.wait_for(lambda m: m.has("STOPPING=1"), what="STOPPING=1")
        for pid in workers.values():
            self.assertFalse(proc_alive(pid))
        self.assertNotListening(d.port)

    def test_sigterm_finishes_request_in_flight(self):
        d = self.start(workers=1)
        c = d.connect()
        c.send("GET /plain.txt HTTP/1.1\r\nHost: localhost\r\n")  # the request has started, not finished
        # The worker has read the start of the request once its header timer runs: wait for the worker to
        # have the connection (it holds one more socket).
        worker = d.wait_workers(1)[0]
        wait_until(lambda: sum(1 for l in (proc_fds(worker) or {}).values() if l.startswith("socket:")) >= 2,
                   message="the worker to accept the connection")
        d.signal(signal.SIGTERM)
        # The worker itself has begun to drain (the supervisor's STOPPING=1 comes before its SIGTERM to the
        # workers, so it says nothing about them).
        d.wait_log(r"worker 0: stopping: no new connections, finishing 1 open")
        c.send("Accept: */*\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain text file\n")
        self.assertEqual(r.header("Connection"), "close", "a draining worker closes after the response")
        self.assertTrue(c.closed_by_peer())
        self.assertEqual(d.wait_exit(), 0, d.log())

    def test_sigterm_closes_idle_keepalive_connection(self):
        d = self.start(workers=1)
        c = d.connect()
        r = c.request("GET", "/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Connection"), "keep-alive")
        d.signal(signal.SIGTERM)
        self.assertTrue(c.closed_by_peer(), "the idle keep-alive connection is closed by the draining worker")
        self.assertEqual(d.wait_exit(), 0, d.log())

    def test_sigterm_with_connection_that_never_sent_a_request(self):
        # A client that connected but has not sent a byte yet: per DESIGN.md a draining worker closes a
        # connection that "stayed idle past a short bound" (1 s); it must not hold the stop until the 30 s
        # header timeout / graceful timeout.
        d = self.start(workers=1)
        c = d.connect()
        worker = d.wait_workers(1)[0]
        wait_until(lambda: sum(1 for l in (proc_fds(worker) or {}).values() if l.startswith("socket:")) >= 2,
                   message="the worker to accept the connection")
        d.signal(signal.SIGTERM)
        self.assertTrue(c.closed_by_peer(), "the silent connection is closed within the drain bound")
        self.assertEqual(d.wait_exit(), 0, d.log())

    def test_sigterm_while_a_slot_backs_off(self):
        d = self.start(workers=1)
        old = d.wait_workers(1)[0]
        hidden = self.root + ".hidden"
        os.rename(self.root, hidden)
        self.addCleanup(os.rename, hidden, self.root)
        os.kill(old, signal.SIGKILL)
        d.wait_log(r"worker 0: process \d+ exited with status 78 unexpectedly .*restarting it in \d+ ms \(\d+ failures in a row\)")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        self.assertEqual(d.workers() if d.running() else {}, {})
        self.assertNotListening(d.port)

    def test_sigkill_of_supervisor_kills_workers(self):
        d = self.start(workers=3)
        workers = d.wait_workers(3)
        d.signal(signal.SIGKILL)
        d.wait_exit()
        for pid in workers.values():
            # Orphans are re-parented to this test process (a subreaper): dead means gone or a zombie.
            wait_until(lambda: not proc_alive(pid), message=f"worker {pid} to die with the supervisor")
            reap(pid)
        self.assertNotListening(d.port, "nothing listens any more")


if __name__ == "__main__":
    main()
