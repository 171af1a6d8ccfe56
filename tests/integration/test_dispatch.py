#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
The dispatch accept model (--accept=dispatch: the supervisor accepts and hands each connection to a free worker)
and the dynamic pool (--min-workers, --max-workers, --worker-idle-timeout) in both accept models, through the
real binary.

Blocking handlers are a module compiled here: it sleeps ?ms=N and answers with its PID and CLOCK_MONOTONIC
stamps taken when the handler started and ended, so that the tests can see which requests ran at the same time
without any timing threshold.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from drover_test import (DROVER, EX_CONFIG, EX_USAGE, WAIT, DroverTestCase, HttpConnection, clean_environment,
                         main, proc_environ, proc_fds, proc_read, socket_inode, unbound_unix_dgram_inodes,
                         wait_until)

BUILD = os.environ.get("DROVER_BUILD_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SRC = os.environ.get("DROVER_SRC_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
HELLO = os.path.join(BUILD, "examples", "hello.so")
SLEEP = os.path.join(BUILD, "examples", "sleep.so")
CC = shutil.which("cc") or shutil.which("gcc")
INCLUDE = os.path.join(SRC, "include")

STAMP_MODULE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <drover/handler.h>

static unsigned long long now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000000ULL + (unsigned long long) ts.tv_nsec;
}

static int handle(void *state, const drover_request *req, drover_response *resp)
{
        size_t len = 0;
        const char *q = drover_request_query(req, &len);
        char text[128];
        unsigned long long start = now_ns();
        long ms = 0;
        /* The query is len bytes, not a C string: no atol(). */
        if (q && len > 3 && memcmp(q, "ms=", 3) == 0)
                for (size_t i = 3; i < len && q[i] >= '0' && q[i] <= '9' && ms < 100000; i++)
                        ms = ms * 10 + (q[i] - '0');
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0)
                ;
        int n = snprintf(text, sizeof text, "%d %llu %llu\n", (int) getpid(), start, now_ns());
        return drover_response_write(resp, text, (size_t) n);
}

const drover_handler drover_module = {
        .abi_version = DROVER_HANDLER_ABI_VERSION,
        .name = "stamp",
        .handle = handle,
};
"""


def status_messages(d):
    return [m.fields["STATUS"] for m in d.notify.drain() if "STATUS" in m.fields]


def last_status(d):
    s = status_messages(d)
    return s[-1] if s else ""


def socket_fds(pid):
    """The sockets of pid, but for a worker's own notify socket (an unbound datagram socket, daemon.h)."""
    own = unbound_unix_dgram_inodes()
    return {fd for fd, target in (proc_fds(pid) or {}).items()
            if target.startswith("socket:") and socket_inode(target) not in own}


class DispatchTestCase(DroverTestCase):

    def stamp_module(self):
        if not CC:
            self.skipTest("no C compiler")
        src = os.path.join(self.tmp, "stamp.c")
        out = os.path.join(self.tmp, "stamp.so")
        with open(src, "w") as f:
            f.write(STAMP_MODULE)
        subprocess.run([CC, "-shared", "-fPIC", "-O1", "-o", out, src, f"-I{INCLUDE}"], check=True)
        return out

    def start_stamp_pool(self, lo, hi, *extra):
        """A dispatch pool of lo..hi workers serving the stamp module under /s."""
        return self.start(workers=None, args=["--accept=dispatch", f"--min-workers={lo}", f"--max-workers={hi}",
                                              *extra, f"--handler=/s={self.stamp_module()}"])

    def concurrent(self, d, paths, results, index_base=0):
        """Starts one thread per path, each one request on its own connection; results[i] = Response or the
        exception."""
        def one(i, path):
            try:
                with HttpConnection(("127.0.0.1", d.port), timeout=3 * WAIT) as c:
                    results[index_base + i] = c.request("GET", path, {"Connection": "close"})
            except Exception as e:  # noqa: BLE001 - recorded for the assertion
                results[index_base + i] = e
        threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
        for t in threads:
            t.start()
        return threads

    def wait_busy_workers(self, d, n):
        """{slot: pid} once n workers are inside the stamp handler's nanosleep (from /proc, no timing)."""
        def busy():
            w = d.workers()
            sleeping = {s: p for s, p in w.items()
                        if b"nanosleep" in (proc_read(p, "wchan") or b"") or
                        (proc_read(p, "syscall") or b"").startswith(b"230 ")}  # clock_nanosleep
            return sleeping if len(sleeping) >= n else None
        return wait_until(busy, message=f"{n} workers blocked in the handler")


class DispatchTest(DispatchTestCase):

    def test_blocking_requests_run_side_by_side_the_pool_grows_then_shrinks(self):
        d = self.start_stamp_pool(1, 6, "--worker-idle-timeout=1s")
        self.assertEqual(len(d.wait_workers(1)), 1)
        self.assertRegex(last_status(d), r"^Ready: 1/6 workers \(0 busy\), .*, accepting$")

        # Six blocking requests at once: one worker each. 1.5 s each leaves the pool time to start five workers
        # on a loaded machine; what is asserted is that all six handlers were running at one same moment.
        results = [None] * 6
        for t in self.concurrent(d, ["/s?ms=1500"] * 6, results):
            t.join()
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200, r)
        stamps = [tuple(int(x) for x in r.body.split()) for r in results]
        self.assertEqual(len({pid for pid, _, _ in stamps}), 6, f"six workers served them: {stamps}")
        self.assertLess(max(s for _, s, _ in stamps), min(e for _, _, e in stamps),
                        f"the six handlers ran at the same time: {stamps}")
        self.assertEqual(len(re.findall(r"pool: a connection waits and no worker is free; starting worker",
                                        d.log())), 5, d.log())

        # Idle for --worker-idle-timeout: back to --min-workers, the lowest slot kept.
        workers = wait_until(lambda: (lambda w: w if len(w) == 1 else None)(d.workers()),
                             message="the pool back to one worker")
        self.assertEqual(list(workers), [0])
        self.assertEqual(len(re.findall(r"pool: worker \d was idle for --worker-idle-timeout", d.log())), 5)
        d.notify.wait_for(lambda m: re.match(r"Ready: 1/6 workers \(0 busy\)", m.fields.get("STATUS", "")),
                          what="STATUS with one worker")
        self.assertEqual(d.get("/s?ms=0").status, 200)

    def test_no_descriptor_leaks_over_5000_connections(self):
        d = self.start(workers=None, args=["--accept=dispatch", "--min-workers=2", "--max-workers=2",
                                           f"--handler=/hello={HELLO}"])
        workers = d.wait_workers(2)
        for slot, pid in workers.items():
            # The worker's end of its pair at the documented fd, after the socket (3) and the stats memfd (4);
            # the listening socket closed (the supervisor accepts); no other worker's pair.
            env = proc_environ(pid)
            self.assertEqual(env.get("DROVER_DISPATCH"), "5", env)
            # Polled: the worker may still be starting.
            wait_until(lambda: socket_fds(pid) == {5}, message=f"only fd 5 a socket in worker {pid}: "
                       f"{proc_fds(pid)}")
        def settled_fds(pid):
            # Two reads alike and, in a worker, only the pair a socket (its notify socket aside).
            a = proc_fds(pid)
            time.sleep(0.05)
            b = proc_fds(pid)
            return a if a == b and (pid == d.pid or socket_fds(pid) == {5}) else None
        before = {pid: wait_until(lambda: settled_fds(pid), message=f"settled fds of {pid}")
                  for pid in [d.pid] + list(workers.values())}

        def client(n):
            for _ in range(n):
                with HttpConnection(("127.0.0.1", d.port)) as c:
                    r = c.request("GET", "/hello", {"Connection": "close"})
                    assert r.status == 200, r
        threads = [threading.Thread(target=client, args=(1250,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(d.workers(), workers, "no worker was replaced")
        # Every connection closed on both sides: the fds are those of before, in every process.
        for pid, fds in before.items():
            wait_until(lambda: proc_fds(pid) == fds, message=f"process {pid}'s fds as before "
                       f"({sorted(fds)}, now {sorted(proc_fds(pid) or {})})")

    def test_kill_of_a_busy_worker_fails_only_its_connection(self):
        d = self.start_stamp_pool(3, 3)
        d.wait_workers(3)
        results = [None] * 3
        threads = self.concurrent(d, ["/s?ms=2000"] * 3, results)
        busy = self.wait_busy_workers(d, 3)
        victim = busy[1]
        os.kill(victim, signal.SIGKILL)
        for t in threads:
            t.join()
        failed = [r for r in results if isinstance(r, Exception)]
        served = [r for r in results if not isinstance(r, Exception)]
        self.assertEqual(len(failed), 1, results)
        self.assertEqual(len(served), 2, results)
        for r in served:
            self.assertEqual(r.status, 200)
            self.assertNotEqual(int(r.body.split()[0]), victim)
        # The slot is refilled, and the pool serves every connection again.
        wait_until(lambda: len(d.workers()) == 3 and victim not in d.workers().values(), message="a replacement")
        results = [None] * 3
        for t in self.concurrent(d, ["/s?ms=10"] * 3, results):
            t.join()
        self.assertTrue(all(not isinstance(r, Exception) and r.status == 200 for r in results), results)

    def test_a_connection_handed_to_a_worker_that_never_takes_it_is_not_lost(self):
        # Slot 0 is free (so the next connection goes to it) but stopped: it never takes the connection. Its
        # watchdog kills it; the supervisor still holds the connection (no "B" came) and gives it to slot 1.
        d = self.start(workers=None, args=["--accept=dispatch", "--min-workers=2", "--max-workers=2",
                                           "--worker-watchdog=1s", f"--handler=/hello={HELLO}"])
        workers = d.wait_workers(2)
        os.kill(workers[0], signal.SIGSTOP)
        try:
            r = d.get("/hello")
        finally:
            try:
                os.kill(workers[0], signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"Hello, world!\n")
        self.assertRegex(d.log(), rf"worker 0: process {workers[0]} ended before taking the connection handed "
                                  r"to it; it goes to another worker")

    def test_every_worker_busy_at_max_connections_wait_and_none_is_refused(self):
        d = self.start_stamp_pool(1, 2)
        d.wait_workers(1)
        results = [None] * 8
        threads = self.concurrent(d, ["/s?ms=700"] * 8, results)
        self.wait_busy_workers(d, 2)
        for t in threads:
            t.join()
        for r in results:
            self.assertNotIsInstance(r, Exception)
            self.assertEqual(r.status, 200, r)
        stamps = sorted(tuple(int(x) for x in r.body.split()) for r in results)
        self.assertEqual(len({pid for pid, _, _ in stamps}), 2, "never more than --max-workers")
        # One connection at a time per worker: each worker's handler runs never overlap.
        for pid in {pid for pid, _, _ in stamps}:
            runs = sorted((s, e) for p, s, e in stamps if p == pid)
            for (s1, e1), (s2, e2) in zip(runs, runs[1:]):
                self.assertLessEqual(e1, s2, f"worker {pid} ran two at once: {runs}")
        self.assertTrue(any("backlog: waiting for a free worker" in s for s in status_messages(d)),
                        status_messages(d))

    def test_graceful_stop_finishes_the_connection_in_flight(self):
        d = self.start_stamp_pool(2, 2)
        d.wait_workers(2)
        results = [None]
        threads = self.concurrent(d, ["/s?ms=1000"], results)
        self.wait_busy_workers(d, 1)
        d.signal(signal.SIGTERM)
        threads[0].join()
        self.assertNotIsInstance(results[0], Exception)
        self.assertEqual(results[0].status, 200)
        self.assertEqual(d.wait_exit(), 0)


class DispatchReloadTest(DispatchTestCase):

    def test_reload_applies_new_bounds_and_keeps_the_accept_model(self):
        stamp = self.stamp_module()
        conf = os.path.join(self.tmp, "pool.conf")
        with open(conf, "w") as f:
            f.write(f"accept = dispatch\nmin-workers = 1\nmax-workers = 2\nhandler = /s={stamp}\n")
        d = self.start(workers=None, args=[f"--config={conf}"])
        old = d.wait_workers(1)
        # A blocking request in flight across the reload: its worker finishes it before it goes.
        results = [None]
        threads = self.concurrent(d, ["/s?ms=1500"], results)
        self.wait_busy_workers(d, 1)
        with open(conf, "w") as f:
            f.write(f"accept = shared\nmin-workers = 3\nmax-workers = 3\nhandler = /s={stamp}\n")
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: done")
        self.assertIn("reload: accept: a change needs a restart; keeping 'dispatch'", d.log())
        threads[0].join()
        self.assertNotIsInstance(results[0], Exception)
        self.assertEqual(results[0].status, 200)
        self.assertEqual(int(results[0].body.split()[0]), old[0], "served by the worker it was handed to")
        new = d.wait_workers(3)
        self.assertNotIn(old[0], new.values())
        # Still dispatch: three blocking requests side by side on the three workers.
        results = [None] * 3
        for t in self.concurrent(d, ["/s?ms=800"] * 3, results):
            t.join()
        self.assertEqual(len({int(r.body.split()[0]) for r in results}), 3, results)
        d.notify.wait_for(lambda m: re.match(r"Ready: 3/3 workers \(0 busy\)", m.fields.get("STATUS", "")),
                          what="STATUS of a dispatch pool of three")


class SharedGrowthTest(DispatchTestCase):

    def test_shared_pool_grows_when_every_worker_is_saturated_and_shrinks_when_spare(self):
        d = self.start(workers=None, args=["--accept=shared", "--min-workers=1", "--max-workers=3",
                                           "--worker-idle-timeout=1s", "--worker-watchdog=3s",
                                           f"--handler=/sleep={SLEEP}"])
        d.wait_workers(1)
        stop = threading.Event()
        errors = []

        def load():
            # Blocking requests back to back: the worker's loop is busy all the time (load ~1000 permille).
            while not stop.is_set():
                try:
                    with HttpConnection(("127.0.0.1", d.port), timeout=3 * WAIT) as c:
                        r = c.request("GET", "/sleep?ms=100", {"Connection": "close"})
                        if r.status != 200:
                            errors.append(r)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            d.wait_log(r"pool: every worker is saturated; starting worker 1")
            wait_until(lambda: len(d.workers()) >= 2, message="a second worker")
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        d.wait_log(r"pool: worker [12] was spare for --worker-idle-timeout")
        wait_until(lambda: list(d.workers()) == [0], message="back to one worker")


class OptionsTest(DispatchTestCase):

    def run_drover(self, *args, config=None):
        argv = [DROVER] + list(args)
        if config is not None:
            path = os.path.join(self.tmp, "drover.conf")
            with open(path, "w") as f:
                f.write(config)
            argv.append(f"--config={path}")
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=WAIT,
                              env=clean_environment())

    def assert_config_error(self, p, pattern):
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertRegex(p.stderr, pattern)

    def test_bad_values(self):
        cases = [
            (["--accept=both"], r"--accept: invalid value 'both': expected 'shared' or 'dispatch'"),
            (["--min-workers=0"], r"--min-workers: invalid value '0': expected a whole number from 1 to 1024"),
            (["--max-workers=1025"], r"--max-workers: invalid value '1025': expected a whole number from 1 to"),
            (["--min-workers=3", "--max-workers=2"], r"--min-workers: invalid value '3': expected at most "
                                                      r"--max-workers \(2\)"),
            (["--worker-idle-timeout=5ms"], r"--worker-idle-timeout: invalid value '5ms': expected 0 \(never\) or"),
            (["--worker-idle-timeout=soon"], r"--worker-idle-timeout: invalid value 'soon'"),
            (["--accept=dispatch", "--", "/bin/true"], r"--accept: invalid value 'dispatch' with exec workers "
                                                        r"\('/bin/true'\).*expected 'shared'"),
            (["--min-workers=1", "--max-workers=3", "--", "/bin/true"],
             r"--max-workers: invalid value '3' with exec workers"),
            (["--min-workers=2", "--max-workers=4", "--ready-workers=3"],
             r"--ready-workers: invalid value '3': expected at most the number of workers \(2\)"),
        ]
        for args, pattern in cases:
            with self.subTest(args=args):
                self.assert_config_error(self.run_drover("--check-config", *args), pattern)
                # Not only --check-config: starting refuses too, with the same line.
                self.assert_config_error(self.run_drover("--listen=127.0.0.1:1", *args), pattern)

    def test_usage_errors(self):
        p = self.run_drover("--accept")
        self.assertEqual(p.returncode, EX_USAGE, p.stderr)
        self.assertIn("option '--accept' requires a value", p.stderr)

    def test_configuration_file_keys(self):
        p = self.run_drover("--check-config", config="[drover]\naccept = dispatch\nmin-workers = 1\n"
                            "max-workers = 4\nworker-idle-timeout = 10s\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_drover("--check-config", config="[drover]\naccept = maybe\nmin-workers = 5\nmax-workers = 4\n")
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertRegex(p.stderr, r"drover.conf:2: accept: invalid value 'maybe'")
        self.assertRegex(p.stderr, r"drover.conf:3: min-workers: invalid value '5': expected at most "
                                   r"--max-workers \(4\)")
        # The command line wins over the file.
        p = self.run_drover("--check-config", "--max-workers=8", config="[drover]\nmin-workers = 5\nmax-workers = 4\n")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_help_lists_the_options(self):
        p = self.run_drover("--help")
        for opt in ["--accept=shared|dispatch", "--min-workers=N", "--max-workers=N", "--worker-idle-timeout=TIME"]:
            self.assertIn(opt, p.stdout)

    def test_bounds_default_from_workers(self):
        # -w alone is a fixed pool; a bound alone takes -w as the other one where consistent.
        d = self.start(workers=3, args=["--max-workers=5", "--accept=dispatch"])
        d.wait_workers(3)
        self.assertRegex(last_status(d), r"^Ready: 3/5 workers")


if __name__ == "__main__":
    main()
