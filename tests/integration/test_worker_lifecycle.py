# SPDX-License-Identifier: MIT
"""Worker lifecycle (src/supervisor/supervisor.c, spawn.c, src/worker/worker.c, src/common/options.c): the
per-worker watchdog, crash backoff, recycling after --max-requests, and exec workers (-- COMMAND) with the
socket-activation environment, including a real third-party program (lighttpd).

Exec workers run tests/integration/programs/activated_echo.py, a minimal socket-activated HTTP/1.0 server that
answers every request with a JSON description of itself (pid, environment, descriptors at start).

No assertion depends on how fast anything runs: waits are bounded polls, and what is asserted is what a user
sees (responses, log lines, notify messages, /proc)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from drover_test import (DROVER, EX_CONFIG, WAIT, DroverTestCase, HttpConnection, children_of, free_port,
                         listening_inodes, main, proc_alive, proc_cmdline, proc_environ, proc_environ_list,
                         proc_fds, proc_ppid, proc_read, proc_stat, socket_inode, status_of, tcp_table, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "programs", "activated_echo.py")
LIGHTTPD = "/usr/sbin/lighttpd"


def find_line(lines, pattern, start=0):
    """(index, match) of the first line at or after start matching pattern, or (None, None)."""
    rx = re.compile(pattern)
    for i in range(start, len(lines)):
        m = rx.search(lines[i])
        if m:
            return i, m
    return None, None


def connection_owner(conn, server_port, pids):
    """The process among pids that holds the server side of a client connection (after accept())."""
    client_port = conn.sock.getsockname()[1]

    def owner():
        inodes = {inode for local, remote, state, inode in tcp_table()
                  if local == server_port and remote == client_port and state == "01" and inode}
        for p in pids:
            if inodes & {socket_inode(link) for link in (proc_fds(p) or {}).values()}:
                return p
        return None

    return wait_until(owner, message=f"the worker that accepted the connection from port {client_port}")


def slot_of(d, pid):
    for slot, p in d.workers().items():
        if p == pid:
            return slot
    return None


def worker_pids(d):
    """{slot: [pids]} of the live built-in workers. Unlike Drover.workers(), a slot may hold two processes: a
    retiring worker that drains next to its replacement, or a killed one not reaped yet."""
    out = {}
    for p in children_of(d.pid):
        for a in (proc_cmdline(p) or [])[1:]:
            m = re.fullmatch(r"--worker=(\d+)", a)
            if m:
                out.setdefault(int(m.group(1)), []).append(p)
    return out


def settled(d, n):
    """({slot: pid}, log) once n slots have one ready worker each, and every worker that asked to retire (in
    that log) has exited; None before."""
    log = d.log()
    w = worker_pids(d)
    if len(w) != n or any(len(v) != 1 for v in w.values()):
        return None
    if not all(re.search(rf"process {v[0]} ready$", log, re.M) for v in w.values()):
        return None
    for pid in re.findall(r"^drover\[(\d+)\] worker \d+: reached --max-requests", log, re.M):
        if not re.search(rf"process {pid} exited with status \d+$", log, re.M):
            return None
    return {slot: v[0] for slot, v in w.items()}, log


def idle_in_event_loop(pid):
    """True while the process sleeps in epoll_wait() with nothing to do: everything it was handed before has
    been processed (used instead of waiting some time)."""
    st = proc_stat(pid)
    if not st or st[0] != "S":
        return False
    wchan = (proc_read(pid, "wchan") or b"").decode(errors="replace")
    call = (proc_read(pid, "syscall") or b"").decode(errors="replace").split()
    return "epoll" in wchan or (call and call[0] in EPOLL_WAIT_SYSCALLS.get(os.uname().machine, ()))


# epoll_wait, epoll_pwait, epoll_pwait2 by architecture, for kernels without wchan symbol names
EPOLL_WAIT_SYSCALLS = {"x86_64": ("232", "281", "441"), "aarch64": ("22", "441")}


# ---------------------------------------------------------------------------------------------------------------
# Per-worker watchdog


class WorkerWatchdogTest(DroverTestCase):

    def test_built_in_workers_get_their_own_watchdog(self):
        # The supervisor's own (systemd's) watchdog variables must not be what the workers see.
        cases = [([], "10000000"), (["--worker-watchdog=1500ms"], "1500000"), (["--worker-watchdog=2min"], "120000000")]
        for args, usec in cases:
            with self.subTest(args=args):
                d = self.start(workers=2, args=args, env={"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"})
                for slot, pid in d.wait_workers(2).items():
                    env = self.assertWorkerLooksSpawned(d, slot, pid)
                    envl = proc_environ_list(pid)
                    self.assertEqual(env.get("WATCHDOG_USEC"), usec, envl)
                    self.assertEqual(env.get("WATCHDOG_PID"), str(pid), envl)
                    for k in ("WATCHDOG_USEC", "WATCHDOG_PID"):
                        self.assertEqual(sum(1 for e in envl if e.startswith(k + "=")), 1, f"{k} once in {envl}")
                self.assertEqual(d.get("/plain.txt").status, 200)

    def test_watchdog_disabled_and_killed_worker_replaced(self):
        d = self.start(workers=2, args=["--worker-watchdog=0"])
        before = d.wait_workers(2)
        for slot, pid in before.items():
            env = self.assertWorkerLooksSpawned(d, slot, pid)
            self.assertNotIn("WATCHDOG_USEC", env)
            self.assertNotIn("WATCHDOG_PID", env)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        after = wait_until(lambda: (lambda w: w if len(w) == 2 and w[0] != victim else None)(d.workers()),
                           message="a new worker in slot 0")
        self.assertEqual(after[1], before[1], "the other slot is untouched")
        d.wait_log(rf"^drover\[{d.pid}\]: worker 0: process {victim} was killed by signal SIGKILL unexpectedly "
                   r"\(was ready, after \d+ ms\); replacing it$")
        d.wait_log(rf"worker 0: started as process {after[0]}$")
        env = self.assertWorkerLooksSpawned(d, 0, after[0])
        self.assertNotIn("WATCHDOG_USEC", env, "the replacement has no watchdog either")
        self.assertEqual(d.get("/plain.txt").status, 200)

    def test_stopped_worker_is_killed_and_replaced_while_the_other_serves(self):
        d = self.start(workers=2, args=["--worker-watchdog=2s"])
        before = d.wait_workers(2)
        seen = len(d.notify.drain())
        # A keep-alive connection held by one worker (the survivor); the other worker is the victim.
        keep = d.connect()
        self.assertEqual(keep.request("GET", "/plain.txt").status, 200)
        survivor = connection_owner(keep, d.port, before.values())
        victim = next(p for p in before.values() if p != survivor)
        vslot = slot_of(d, victim)
        sslot = slot_of(d, survivor)

        os.kill(victim, signal.SIGSTOP)
        served = 0

        def replaced():
            # The log first: until the victim is reaped, it and its replacement both hold slot vslot.
            return (re.search(rf"process {victim} was killed by signal SIGKILL", d.log())
                    and d.workers().get(vslot) not in (None, victim))

        deadline = time.monotonic() + 3 * WAIT
        while not replaced():
            # The survivor keeps serving, on its kept-alive connection and on new ones, the whole time.
            r = keep.request("GET", "/plain.txt")
            self.assertEqual((r.status, r.body), (200, b"plain text file\n"), r)
            self.assertIsNone(r.header("Connection"), "the survivor is not draining")
            r = d.get("/plain.txt")
            self.assertEqual((r.status, r.body), (200, b"plain text file\n"), r)
            served += 2
            self.assertLess(time.monotonic(), deadline, f"the stopped worker was not replaced; log:\n{d.log()}")
            time.sleep(0.05)
        self.assertGreater(served, 0)
        self.assertEqual(connection_owner(keep, d.port, [survivor]), survivor)

        after = d.wait_workers(2)
        new = after[vslot]
        self.assertNotEqual(new, victim)
        self.assertEqual(after[sslot], survivor, "the survivor was never replaced")
        self.assertFalse(proc_alive(victim))
        self.assertWorkerLooksSpawned(d, vslot, new)
        self.assertEqual(proc_environ(new).get("WATCHDOG_USEC"), "2000000")

        lines = d.log().splitlines()
        i_dog, m = find_line(lines, rf"^drover\[{d.pid}\]: worker {vslot}: process {victim} missed its liveness "
                                    r"deadline \(--worker-watchdog=2000ms: its event loop is stuck\)(.*); "
                                    r"sending SIGABRT, replacing it$")
        self.assertIsNotNone(i_dog, f"watchdog line naming slot {vslot} and process {victim}:\n{d.log()}")
        self.assertEqual(m.group(1), " while not handling any request")
        i_new, _ = find_line(lines, rf"worker {vslot}: started as process {new}$", i_dog)
        i_kill, _ = find_line(lines, rf"worker {vslot}: process {victim} still running after SIGABRT; "
                                     r"sending SIGKILL$", i_dog)
        i_dead, _ = find_line(lines, rf"worker {vslot}: process {victim} was killed by signal SIGKILL$", i_dog)
        self.assertIsNotNone(i_new, d.log())
        self.assertIsNotNone(i_kill, d.log())
        self.assertIsNotNone(i_dead, d.log())
        self.assertLess(i_new, i_kill, "the replacement starts at once, not after the stuck one is gone")
        self.assertLess(i_kill, i_dead)
        self.assertEqual(sum(1 for line in lines if "missed its liveness deadline" in line), 1,
                         "only the stopped worker missed its deadline")
        self.assertNotRegex(d.log(), rf"process {survivor} (missed|was killed|exited)")
        d.notify.wait_for(lambda m: re.match(r"^Ready: 2/2 workers, .*, 1 restarts$", status_of(m) or ""),
                          since=seen, what="STATUS=Ready: 2/2 workers, ..., 1 restarts")
        self.assertTrue(d.running())

    def test_worker_stopped_in_the_middle_of_a_response(self):
        # A worker stuck while it sends a large response: the client reads nothing, so the worker is in the
        # middle of sending /big.bin (it holds the file open) when it is stopped.
        d = self.start(workers=1, args=["--worker-watchdog=2s"])
        victim = d.wait_workers(1)[0]
        c = HttpConnection(("127.0.0.1", d.port), rcvbuf=4096)
        d.connections.append(c)
        c.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        big = os.path.join(os.path.realpath(self.root), "big.bin")
        wait_until(lambda: big in (proc_fds(victim) or {}).values(), message="the worker to be sending /big.bin")
        self.assertEqual(connection_owner(c, d.port, [victim]), victim)
        os.kill(victim, signal.SIGSTOP)
        m = d.wait_log(rf"^drover\[{d.pid}\]: worker 0: process {victim} missed its liveness deadline "
                       r"\(--worker-watchdog=2000ms: its event loop is stuck\)(.*); sending SIGABRT, replacing it$")
        # What drover says today: a worker is "handling" a request only while its handler runs, not while
        # the response is being sent, so a worker stuck mid-response is reported as idle.
        self.assertEqual(m.group(1), " while not handling any request")
        d.wait_log(rf"worker 0: process {victim} was killed by signal SIGKILL$")
        new = wait_until(lambda: d.workers().get(0) not in (None, victim) and d.workers()[0],
                         message="a new worker in slot 0")
        self.assertNotEqual(new, victim)
        self.assertEqual(d.get("/plain.txt").status, 200)


# ---------------------------------------------------------------------------------------------------------------
# Crash backoff


class CrashBackoffTest(DroverTestCase):

    def test_command_that_always_fails_backs_off_and_stops_on_sigterm(self):
        d = self.start(workers=1, root=False, args=["--", "/bin/false"])
        # Wait for the sixth delay: the supervisor is now waiting 3.2 s before the next attempt.
        d.wait_log(r"restarting it in 3200 ms \(7 failures in a row\)$", timeout=3 * WAIT)
        self.assertTrue(d.running(), "the supervisor keeps running while its worker keeps failing")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())

        lines = d.log().splitlines()
        starts = [int(m.group(1)) for m in (re.search(r"worker 0: started as process (\d+)$", l) for l in lines) if m]
        deaths = [m for m in (re.search(r"worker 0: process (\d+) exited with status 1 unexpectedly "
                                        r"\(was \w+, after \d+ ms\); (.*)$", l) for l in lines) if m]
        self.assertEqual([int(m.group(1)) for m in deaths], starts, "one line per death, for every start")
        self.assertEqual(len(set(starts)), len(starts))
        self.assertGreaterEqual(len(deaths), 7)
        self.assertEqual(deaths[0].group(2), "replacing it", "the first death is replaced at once")
        delays = []
        for k, m in enumerate(deaths[1:], start=2):
            dm = re.fullmatch(r"restarting it in (\d+) ms \((\d+) failures in a row\)", m.group(2))
            self.assertIsNotNone(dm, m.group(0))
            self.assertEqual(int(dm.group(2)), k, m.group(0))
            delays.append(int(dm.group(1)))
        self.assertEqual(delays[0], 100, delays)
        for a, b in zip(delays, delays[1:]):
            self.assertEqual(b, 2 * a, f"delays double: {delays}")
        self.assertEqual(sum(1 for l in lines if "backing off" in l), 1,
                         f"one summary line for entering backoff, not one per death:\n{d.log()}")
        i_summary, _ = find_line(lines, r"worker 0: failing repeatedly; backing off")
        i_second, _ = find_line(lines, r"restarting it in 100 ms \(2 failures in a row\)$")
        self.assertGreater(i_summary, i_second, "the summary comes with the first delayed restart")

        # SIGTERM arrived while the supervisor waited for the 3.2 s timer: it stopped without starting another.
        i_last, _ = find_line(lines, r"restarting it in 3200 ms")
        rest = lines[i_last + 1:]
        self.assertFalse([l for l in rest if "started as process" in l], f"nothing started after SIGTERM:\n{rest}")
        self.assertTrue(any(re.search(r"SIGTERM: stopping 0 workers$", l) for l in rest), rest)
        self.assertRegex(lines[-1], r"all workers stopped; exiting$")

        d.notify.drain()
        statuses = [status_of(m) for m in d.notify.messages if status_of(m)]
        self.assertTrue(any(re.match(r"^Ready: 0/1 workers, \d+ restarts, 1 backing off after failures$", s)
                            for s in statuses), statuses)
        self.assertTrue(any(m.has("STOPPING=1") for m in d.notify.messages))
        self.assertEqual(children_of(d.pid), [])
        self.assertNotListening(d.port)

    def test_command_that_can_no_longer_be_executed_is_reported_and_retried(self):
        # A copy of sleep under the test's directory (so that the harness's cleanup finds it): executable when
        # drover checks the command, not any more when the killed worker is replaced.
        prog = os.path.join(self.tmp, "worker-program")
        shutil.copy("/bin/sleep", prog)
        d = self.start(workers=1, root=False, args=["--", prog, "1000"])
        first = wait_until(lambda: (lambda c: c[0] if len(c) == 1 else None)(children_of(d.pid)),
                           message="the exec worker")
        os.chmod(prog, 0o644)
        os.kill(first, signal.SIGKILL)
        # Said twice: by the child that could not exec (on the shared stderr), and by the supervisor.
        d.wait_log(rf"^drover: worker: {re.escape(prog)}: Permission denied$")
        d.wait_log(rf"^drover\[{d.pid}\]: worker 0: cannot execute '{re.escape(prog)}': Permission denied$")
        lines = d.log().splitlines()
        i_failed, _ = find_line(lines, r"worker 0: cannot execute")
        i_started, started = find_line(lines, r"worker 0: started as process (?!%d$)(\d+)$" % first)
        self.assertLess(i_started, i_failed, "the start, then why it failed")
        failed = int(started.group(1))
        # Its exit (127) is a failed start like any other: retried with the slot's backoff.
        d.wait_log(rf"worker 0: process {failed} exited with status 127 unexpectedly \(was starting, after \d+ ms\); "
                   r"restarting it in 100 ms \(2 failures in a row\)$")
        os.chmod(prog, 0o755)
        d.wait_log(r"worker 0: process (?!%d\b|%d\b)\d+ ready$" % (first, failed))
        self.assertEqual(len(children_of(d.pid)), 1)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())


# ---------------------------------------------------------------------------------------------------------------
# Recycling (--max-requests)

RETIRE_SUP = r"^drover\[\d+\]: worker (\d+): process (\d+) reached --max-requests; starting its replacement$"
RETIRE_WORKER = r"^drover\[(\d+)\] worker (\d+): reached --max-requests \((\d+)\); asking for a replacement$"


def load(d, total, threads, path="/plain.txt", body=b"plain text file\n"):
    """total requests from several client threads over keep-alive connections, reconnecting when a response
    says Connection: close. Returns (ok, failures, closes)."""
    results = []
    lock = threading.Lock()

    def client(n):
        ok, failures, closes = 0, [], 0
        conn = None
        for i in range(n):
            try:
                if conn is None:
                    conn = HttpConnection(("127.0.0.1", d.port))
                r = conn.request("GET", path)
                if r.status == 200 and r.body == body:
                    ok += 1
                else:
                    failures.append(f"request {i}: {r!r}")
                if (r.header("Connection") or "").lower() == "close":
                    closes += 1
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure counts
                failures.append(f"request {i}: {e!r}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            results.append((ok, failures, closes))

    ts = [threading.Thread(target=client, args=(total // threads + (k < total % threads),)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return (sum(r[0] for r in results), [f for r in results for f in r[1]], sum(r[2] for r in results))


class RecyclingTest(DroverTestCase):

    def assertOrderlyRetirements(self, d, lines, max_requests=None):
        """Every retirement: the worker says it reached its limit, the supervisor starts the replacement, the
        replacement is ready, and only then the old one drains and exits 0. Returns the retired pids."""
        retired = []
        for i, line in enumerate(lines):
            m = re.search(RETIRE_SUP, line)
            if not m:
                continue
            slot, pid = m.group(1), m.group(2)
            retired.append(int(pid))
            with self.subTest(retired=pid):
                i_new, n = find_line(lines, rf"^drover\[{d.pid}\]: worker {slot}: started as process (\d+)$", i)
                self.assertIsNotNone(i_new, f"a replacement for {pid}")
                new = n.group(1)
                i_ready, _ = find_line(lines, rf"worker {slot}: process {new} ready$", i_new)
                i_drain, _ = find_line(lines, rf"^drover\[{pid}\] worker {slot}: stopping: no new connections", i)
                i_exit, _ = find_line(lines, rf"worker {slot}: process {pid} exited with status 0$", i)
                self.assertIsNotNone(i_ready, f"replacement {new} ready")
                self.assertIsNotNone(i_drain, f"{pid} drains")
                self.assertIsNotNone(i_exit, f"{pid} exits 0")
                self.assertLess(i_ready, i_drain, "the replacement is ready before the old one drains")
                self.assertLess(i_drain, i_exit)
        worker_lines = [m for m in (re.search(RETIRE_WORKER, l) for l in lines) if m]
        self.assertEqual(sorted(int(m.group(1)) for m in worker_lines), sorted(retired),
                         "each retiring worker asks once, and the supervisor acts once")
        if max_requests is not None:
            for m in worker_lines:
                self.assertEqual(int(m.group(3)), max_requests, m.group(0))
        log = "\n".join(lines)
        self.assertNotIn("unexpectedly", log)
        self.assertNotIn("SIGKILL", log)
        self.assertNotIn("graceful-timeout", log)
        return retired, worker_lines

    def test_worker_retires_after_exactly_max_requests(self):
        d = self.start(workers=1, args=["--max-requests=5"])
        old = d.wait_workers(1)[0]
        self.assertIn("--max-requests=5", proc_cmdline(old))
        c = d.connect()
        for i in range(1, 6):
            r = c.request("GET", "/plain.txt")
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Connection"), f"response {i} keeps the connection")
            if i == 4:
                # The worker counts a request once it has sent the response, before it waits for anything
                # else: once it sleeps in its event loop again, request 4 is counted. No retirement yet.
                wait_until(lambda: idle_in_event_loop(old), message="the worker to go idle after request 4")
                self.assertNotRegex(d.log(), "reached --max-requests", "retired before its 5th request")
        d.wait_log(rf"^drover\[{old}\] worker 0: reached --max-requests \(5\); asking for a replacement$")
        d.wait_log(rf"worker 0: process {old} reached --max-requests; starting its replacement$")
        d.wait_log(rf"worker 0: process {old} exited with status 0$")
        new = d.wait_workers(1)[0]
        self.assertNotEqual(new, old)
        self.assertWorkerLooksSpawned(d, 0, new)
        self.assertIn("--max-requests=5", proc_cmdline(new))
        self.assertOrderlyRetirements(d, d.log().splitlines(), max_requests=5)
        with d.connect() as c2:
            self.assertEqual(c2.request("GET", "/plain.txt").status, 200, "the replacement serves")

    def load_until_retired(self, d, retirements, per_round, threads, rounds=8):
        """Rounds of load until the log shows that many retirements (how many requests a worker serves
        beyond --max-requests while its replacement starts depends on the machine's speed)."""
        total, ok, failures, closes = 0, 0, [], 0
        for _ in range(rounds):
            o, f, c = load(d, per_round, threads)
            total, ok, failures, closes = total + per_round, ok + o, failures + f, closes + c
            if len(re.findall(RETIRE_SUP, d.log(), re.M)) >= retirements:
                break
        return total, ok, failures, closes

    def test_recycling_under_load_loses_no_request(self):
        n = 50
        d = self.start(workers=2, args=[f"--max-requests={n}"])
        d.wait_workers(2)
        total, ok, failures, closes = self.load_until_retired(d, 6, per_round=500, threads=4, rounds=20)
        self.assertEqual(failures, [], f"{len(failures)} failed requests; log:\n{d.log()}")
        self.assertEqual(ok, total)
        self.assertGreater(closes, 0, "draining workers closed kept-alive connections with Connection: close")
        # The last replacements may still be starting: wait for a complete pool before reading the log.
        workers, log = wait_until(lambda: settled(d, 2), message="two ready workers and none retiring")
        retired, _ = self.assertOrderlyRetirements(d, log.splitlines(), max_requests=n)
        self.assertGreaterEqual(len(retired), 6, f"workers were recycled many times in {total} requests")
        self.assertLessEqual(len(retired), total // n, "a worker serves at least --max-requests before retiring")
        started = set(re.findall(r"started as process (\d+)$", d.log(), re.M))
        self.assertGreaterEqual(len(started), 2 + len(retired))
        for p in workers.values():
            self.assertIn(f"--max-requests={n}", proc_cmdline(p))

    def test_jitter_spreads_the_limits(self):
        n, jitter = 20, 30
        d = self.start(workers=2, args=[f"--max-requests={n}", f"--max-requests-jitter={jitter}"])
        limits = []
        for p in d.wait_workers(2).values():
            arg = [a for a in proc_cmdline(p) if a.startswith("--max-requests=")]
            self.assertEqual(len(arg), 1, proc_cmdline(p))
            limits.append(int(arg[0].split("=")[1]))
        total, ok, failures, _ = self.load_until_retired(d, 4, per_round=300, threads=2, rounds=20)
        self.assertEqual(failures, [], f"log:\n{d.log()}")
        self.assertEqual(ok, total)
        workers, log = wait_until(lambda: settled(d, 2), message="two ready workers and none retiring")
        retired, worker_lines = self.assertOrderlyRetirements(d, log.splitlines())
        limits += [int(m.group(3)) for m in worker_lines]
        for p in workers.values():
            limits.append(int([a for a in proc_cmdline(p) if a.startswith("--max-requests=")][0].split("=")[1]))
        self.assertGreaterEqual(len(retired), 4)
        for v in limits:
            self.assertTrue(n <= v <= n + jitter, f"limit {v} outside {n}..{n + jitter}: {limits}")
        self.assertGreater(len(set(limits)), 1, f"the limits differ: {limits}")
        self.assertLessEqual(sum(int(m.group(3)) for m in worker_lines), total)

    def test_wrk_sees_no_errors_while_workers_recycle(self):
        wrk = shutil.which("wrk")
        if not wrk:
            self.skipTest("wrk is not installed")
        n = 200
        d = self.start(workers=2, args=[f"--max-requests={n}"])
        d.wait_workers(2)
        p = subprocess.run([wrk, "-t2", "-c16", "-d3s", f"http://127.0.0.1:{d.port}/plain.txt"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=6 * WAIT)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        m = re.search(r"(\d+) requests in ", out)
        self.assertIsNotNone(m, out)
        requests = int(m.group(1))
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)
        self.assertGreater(requests, 2 * n, f"enough load to recycle: {out}")
        workers, log = wait_until(lambda: settled(d, 2), message="two ready workers and none retiring")
        retired, _ = self.assertOrderlyRetirements(d, log.splitlines(), max_requests=n)
        self.assertGreaterEqual(len(retired), 1, out)
        # wrk counts the responses it read; up to one per connection may have been sent as it stopped.
        self.assertLessEqual(len(retired), (requests + 16) // n)


# ---------------------------------------------------------------------------------------------------------------
# Exec workers


class ExecWorkerTest(DroverTestCase):

    def program(self, *args):
        # --tag puts the test's directory on the command line: the harness's cleanup finds the processes.
        return ["--", sys.executable, PROGRAM, f"--tag={self.tmp}"] + list(args)

    def echo(self, d, index=0, unix_path=None):
        if unix_path:
            c = HttpConnection(unix_path, socket.AF_UNIX)
        else:
            c = HttpConnection(("127.0.0.1", d.ports[index]))
        with c:
            r = c.request("GET", "/whoami")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Server"), "activated_echo")
        info = json.loads(r.body)
        self.assertEqual(r.header("X-Pid"), str(info["pid"]))
        return info

    def exec_workers(self, d, n):
        return wait_until(lambda: (lambda c: c if len(c) == n else None)(children_of(d.pid)),
                          message=f"{n} exec workers")

    def assertActivationEnvironment(self, d, info, n_sockets, fdnames, watchdog_usec=None):
        pid = info["pid"]
        env = info["env"]
        self.assertEqual(info["ppid"], d.pid, "a direct child of the supervisor")
        self.assertEqual(env.get("LISTEN_PID"), str(pid))
        self.assertEqual(env.get("LISTEN_FDS"), str(n_sockets))
        self.assertEqual(env.get("LISTEN_FDNAMES"), fdnames)
        self.assertTrue(env.get("NOTIFY_SOCKET", "").startswith("@"), env)
        self.assertGreater(len(env["NOTIFY_SOCKET"]), 1)
        self.assertNotEqual(env["NOTIFY_SOCKET"], d.notify.path, "the supervisor's socket, not systemd's")
        if watchdog_usec is None:
            self.assertNotIn("WATCHDOG_USEC", env)
            self.assertNotIn("WATCHDOG_PID", env)
        else:
            self.assertEqual(env.get("WATCHDOG_USEC"), watchdog_usec)
            self.assertEqual(env.get("WATCHDOG_PID"), str(pid))
        envl = proc_environ_list(pid)
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
            self.assertEqual(sum(1 for e in envl if e.startswith(k + "=")), 1, f"{k} once in {envl}")
        self.assertFalse([e for e in envl if e.startswith("DROVER_STATS=")], "no built-in worker's stats fd")
        # Exactly 0, 1, 2 and the sockets: nothing else of the supervisor's reached the program.
        fds = {int(k): v for k, v in info["fds_at_start"].items()}
        self.assertEqual(sorted(fds), list(range(3 + n_sockets)), f"descriptors at start: {fds}")
        sup = proc_fds(d.pid)
        for fd in (0, 1, 2):
            self.assertEqual(fds[fd], sup.get(fd), f"fd {fd} is the supervisor's")
        for s in info["sockets"]:
            self.assertEqual(s.get("accepting"), 1, f"a listening socket: {s}")
        return fds

    def test_started_mode_serves_from_the_program(self):
        marker = "ACTIVATED-ECHO-MARKER-7f3a"
        d = self.start(workers=2, root=False, args=self.program(f"--marker={marker}"))
        ready = d.wait_ready()
        self.assertEqual(status_of(ready), "Ready: 2/2 workers, 0 restarts")
        pids = self.exec_workers(d, 2)
        for slot in (0, 1):
            d.wait_log(rf"^drover\[{d.pid}\]: worker {slot}: process ({'|'.join(map(str, pids))}) ready$")
        answered = set()
        for _ in range(6):
            info = self.echo(d)
            self.assertIn(info["pid"], pids)
            self.assertEqual(info["path"], "/whoami")
            self.assertActivationEnvironment(d, info, 1, "http")
            answered.add(info["pid"])
        self.assertTrue(answered)
        for p in pids:
            self.assertTrue(proc_alive(p))
            self.assertEqual(proc_ppid(p), d.pid)
            self.assertEqual(proc_cmdline(p)[1:3], [PROGRAM, f"--tag={self.tmp}"])
            # Their stdout and stderr are drover's.
            wait_until(lambda: f"{marker} stdout pid={p}" in d.stdout(), message=f"{p}'s line on drover's stdout")
            d.wait_log(rf"^activated_echo\[{p}\]: {marker} stderr pid={p}$")
        self.assertNotIn(marker, d.log().replace(f"{marker} stderr", ""), "stdout stays stdout")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        for p in pids:
            self.assertRegex(d.log(), rf"(?m)worker \d: process {p} exited with status 0$")
            self.assertFalse(proc_alive(p))
        self.assertNotRegex(d.log(), "unexpectedly")

    def test_environment_and_descriptors_with_several_sockets(self):
        path = os.path.join(self.tmp, "echo.sock")
        d = self.start(workers=2, root=False, listen=["127.0.0.1:{port}", "127.0.0.1:{port}", path],
                       args=self.program(), env={"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1",
                                                 "DROVER_IT_MARKER": "passed-through"})
        pids = self.exec_workers(d, 2)
        want = [listening_inodes(d.ports[0]), listening_inodes(d.ports[1])]
        for w in want:
            self.assertEqual(len(w), 1)
        with open("/proc/net/unix") as f:
            unix_inodes = {int(cols[6]) for cols in (line.split() for line in f.readlines()[1:])
                           if len(cols) >= 8 and cols[7] == path and cols[3] == "00010000"}
        self.assertEqual(len(unix_inodes), 1, unix_inodes)
        unix_inode = unix_inodes.pop()
        for index, unix in ((0, None), (1, None), (None, path)):
            with self.subTest(socket=index if unix is None else unix):
                info = self.echo(d, index or 0, unix_path=unix)
                self.assertIn(info["pid"], pids)
                self.assertEqual(info["served_by_fd"], 3 + (index if unix is None else 2))
                fds = self.assertActivationEnvironment(d, info, 3, "http:http:http")
                self.assertEqual({socket_inode(fds[3])}, want[0], "fd 3: the first --listen socket")
                self.assertEqual({socket_inode(fds[4])}, want[1], "fd 4: the second --listen socket")
                self.assertEqual(socket_inode(fds[5]), unix_inode, "fd 5: the unix socket")
                self.assertEqual(proc_environ(info["pid"]).get("DROVER_IT_MARKER"), "passed-through")
                self.assertEqual(info["sockets"][0]["name"], str(("127.0.0.1", d.ports[0])))
                self.assertEqual(info["sockets"][2]["name"], path)

    def test_socket_activation_names_reach_the_program(self):
        d = self.start_activated(ports=2, fdnames="web:admin", drover_argv=[DROVER, "--workers=1"] + self.program())
        first = self.echo(d, 1)
        d.wait_ready()
        self.assertEqual(proc_cmdline(d.pid)[0], DROVER)
        second = self.echo(d, 0)
        for info in (first, second):
            # What systemd would give the program itself: its sockets under the names of the socket unit.
            self.assertActivationEnvironment(d, info, 2, "web:admin")
        self.assertEqual(first["served_by_fd"], 4)
        self.assertEqual(second["served_by_fd"], 3)

    def test_watchdog_for_exec_workers_only_when_given(self):
        # 3 s: a Python program on a loaded machine (CI runs suites in parallel, under ASan) may take over a
        # second to start and send its first ping.
        d = self.start(workers=1, root=False, args=["--worker-watchdog=3s"] + self.program())
        pid = self.exec_workers(d, 1)[0]
        info = self.echo(d)
        self.assertEqual(info["pid"], pid)
        self.assertActivationEnvironment(d, info, 1, "http", watchdog_usec="3000000")
        # The program pings WATCHDOG=1 (at half the period) from its loop: it is not killed. Give it a few
        # periods.
        time.sleep(7)
        self.assertEqual(self.echo(d)["pid"], pid)
        self.assertNotIn("missed its liveness deadline", d.log())
        self.assertEqual(children_of(d.pid), [pid])

    def test_notify_mode_ready_only_after_the_program_says_so(self):
        trigger = os.path.join(self.tmp, "go-ready")
        d = self.start(workers=2, root=False, wait_ready=False,
                       args=["--exec-ready=notify"] + self.program(f"--ready=file:{trigger}"))
        pids = self.exec_workers(d, 2)
        # The programs run (and even serve), but have not said READY=1: neither has drover.
        info = self.echo(d)
        self.assertIn(info["pid"], pids)
        self.assertFalse(info["ready_sent"])
        d.notify.drain()
        self.assertFalse([m for m in d.notify.messages if m.has("READY=1")], d.notify.messages)
        self.assertNotRegex(d.log(), r"worker \d: process \d+ ready")
        statuses = [status_of(m) for m in d.notify.messages if status_of(m)]
        self.assertTrue(statuses and statuses[-1].startswith("Ready: 0/2 workers"), statuses)

        with open(trigger, "w"):
            pass
        ready = d.wait_ready()
        self.assertEqual(status_of(ready), "Ready: 2/2 workers, 0 restarts")
        d.wait_log(r"Ready: 2/2 workers")
        lines = d.log().splitlines()
        i_pool, _ = find_line(lines, r"Ready: 2/2 workers")
        for p in pids:
            i_sent, _ = find_line(lines, rf"^activated_echo\[{p}\]: sending READY=1$")
            i_ready, _ = find_line(lines, rf"worker \d: process {p} ready$")
            self.assertIsNotNone(i_sent, d.log())
            self.assertIsNotNone(i_ready, d.log())
            self.assertLess(i_sent, i_ready, "ready only once the program said so")
            self.assertLess(i_ready, i_pool)
        self.assertTrue(self.echo(d)["ready_sent"])

    def test_notify_mode_program_that_never_gets_ready_is_replaced(self):
        d = self.start(workers=1, root=False, wait_ready=False,
                       args=["--exec-ready=notify", "--worker-watchdog=1s"] + self.program("--ready=never"))
        first = self.exec_workers(d, 1)[0]
        d.wait_log(rf"^drover\[{d.pid}\]: worker 0: process {first} did not send READY=1 within 1000 ms "
                   r"\(--worker-watchdog\); killing and replacing it$")
        d.wait_log(rf"worker 0: process {first} was killed by signal SIGABRT")
        m = d.wait_log(rf"worker 0: started as process (?!{first}$)(\d+)$")
        second = int(m.group(1))
        self.assertNotEqual(second, first)
        d.notify.drain()
        self.assertFalse([msg for msg in d.notify.messages if msg.has("READY=1")], "never ready, never READY=1")
        self.assertTrue(d.running())
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        self.assertEqual(children_of(d.pid) if d.running() else [], [])

    def test_lighttpd_as_exec_worker(self):
        if not os.access(LIGHTTPD, os.X_OK):
            self.skipTest(f"{LIGHTTPD} is not installed")
        errorlog = os.path.join(self.tmp, "lighttpd-error.log")
        conf = os.path.join(self.tmp, "lighttpd.conf")
        for attempt in range(5):
            # lighttpd matches an inherited socket against server.bind/server.port; it needs the port first.
            port = free_port()
            with open(conf, "w") as f:
                f.write(f'server.document-root = "{self.root}"\n'
                        f'server.bind = "127.0.0.1"\n'
                        f'server.port = {port}\n'
                        f'server.systemd-socket-activation = "enable"\n'
                        f'server.errorlog = "{errorlog}"\n'
                        f'mimetype.assign = ( ".txt" => "text/plain" )\n')
            check = subprocess.run([LIGHTTPD, "-tt", "-f", conf], capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            d = self.start(workers=2, root=False, listen=[f"127.0.0.1:{port}"], wait_ready=False,
                           args=["--", LIGHTTPD, "-D", "-f", conf])
            d.ports.append(port)
            try:
                d.wait_ready()
                break
            except AssertionError:
                if d.proc.poll() == EX_CONFIG and "cannot bind" in d.log() and attempt < 4:
                    continue
                raise
        pids = self.exec_workers(d, 2)
        for p in pids:
            self.assertEqual(proc_ppid(p), d.pid, "lighttpd runs as drover's child")
            self.assertEqual(proc_cmdline(p)[0], LIGHTTPD)
            self.assertEqual(proc_environ(p).get("LISTEN_PID"), str(p))
        for _ in range(4):
            r = d.get("/plain.txt")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"plain text file\n")
            self.assertEqual(r.header("Content-Type"), "text/plain")
            self.assertRegex(r.header("Server") or "", r"^lighttpd")
        # Served through drover's socket: the one socket listening on the port is the supervisor's, which both
        # lighttpd processes hold; lighttpd listens on nothing of its own.
        inodes = listening_inodes(port)
        self.assertEqual(len(inodes), 1, inodes)
        sup_socket = socket_inode(proc_fds(d.pid).get(3))
        self.assertEqual(inodes, {sup_socket})
        for p in pids:
            held = {socket_inode(l) for l in proc_fds(p).values()} - {None}
            self.assertIn(sup_socket, held)
        def started_lines():
            try:
                with open(errorlog) as f:
                    return f.read().count("server started")
            except FileNotFoundError:
                return 0

        wait_until(lambda: started_lines() == 2, message="both lighttpd processes logged their start")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        for p in pids:
            self.assertRegex(d.log(), rf"(?m)process {p} exited with status 0$")
        self.assertNotListening(port)


# ---------------------------------------------------------------------------------------------------------------
# Command line


class LifecycleCommandLineTest(DroverTestCase):

    def test_invalid_lifecycle_values_are_config_errors(self):
        port = free_port()
        base = [f"--listen=127.0.0.1:{port}"]
        root = [f"--root={self.root}"]
        cases = [
            (root + ["--worker-watchdog=abc"], "--worker-watchdog", "'abc'"),
            (root + ["--worker-watchdog=5ms"], "--worker-watchdog", "'5ms'"),
            (root + ["--worker-watchdog=-1s"], "--worker-watchdog", "'-1s'"),
            (root + ["--max-requests=-1"], "--max-requests", "'-1'"),
            (root + ["--max-requests=lots"], "--max-requests", "'lots'"),
            (root + ["--max-requests-jitter=-5"], "--max-requests-jitter", "'-5'"),
            (["--exec-ready=sometimes", "--", "/bin/true"], "--exec-ready", "'sometimes'"),
            (root + ["--exec-ready=notify"], "--exec-ready", "notify"),
            (["--exit-idle-time=5s", "--", "/bin/true"], "--exit-idle-time", "5s"),
        ]
        for extra, option, value in cases:
            with self.subTest(args=extra):
                code, out, err = self.run_drover(base + extra)
                self.assertEqual(code, EX_CONFIG, err)
                lines = [line for line in err.splitlines() if line.strip()]
                self.assertEqual(len(lines), 1, f"exactly one line on stderr:\n{err}")
                self.assertIn(option, lines[0])
                self.assertIn(value, lines[0], "the line names the value")
                self.assertEqual(out, "")
        self.assertNotListening(port, "nothing listens after a configuration error")

    def test_watchdog_zero_is_accepted(self):
        d = self.start(workers=1, args=["--worker-watchdog=0"])
        self.assertEqual(d.get("/plain.txt").status, 200)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())


if __name__ == "__main__":
    main()
