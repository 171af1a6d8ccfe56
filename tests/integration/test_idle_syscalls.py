# SPDX-License-Identifier: MIT
"""An idle pool costs nothing but its watchdog: traced with strace for a few seconds while no client
connects, the supervisor wakes up only to pet its own watchdog (WATCHDOG=1 to $NOTIFY_SOCKET) or to take a
worker's WATCHDOG=1, and makes no other kind of system call. The worker side of the same promise (no
periodic wake-ups of the event loop) is in src/worker/loop.c; this checks the supervisor, whose sd-event
loop also runs the STATUS tick, the restart backoff and the idle-exit timers.
"""

import re
import shutil
import subprocess
import time

import drover_test as dt

STRACE = shutil.which("strace")
TRACE_SECONDS = 4
# What one watchdog pet costs: sd-event reads its timerfd and re-arms it; sd_notify() opens a datagram socket,
# sizes its buffer, sends and closes; a worker's ping is a recvmsg() (and one more that finds nothing).
PET_SYSCALLS = {"epoll_wait", "epoll_pwait", "read", "socket", "getsockopt", "setsockopt", "getuid", "geteuid",
                "getgid", "getegid", "gettid", "sendmsg", "close", "timerfd_settime", "recvmsg"}


class IdleSupervisor(dt.DroverTestCase):
    def test_idle_supervisor_only_pets_watchdogs(self):
        if not STRACE:
            self.skipTest("strace is not installed")
        inst = self.start(workers=2, env={"WATCHDOG_USEC": "1000000"})
        inst.wait_workers(2)
        # The pool is idle from the start: READY=1 went out; let whatever follows start-up (the first STATUS
        # tick) pass, then trace.
        inst.notify.wait_for(lambda m: m.has("WATCHDOG=1"), alive=inst.running, what="a first WATCHDOG=1")
        time.sleep(1.0)
        out = f"{self.tmp}/strace.out"
        tracer = subprocess.Popen([STRACE, "-p", str(inst.pid), "-o", out, "-s", "64", "-qq"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: tracer.poll() is None and tracer.kill())
        time.sleep(TRACE_SECONDS)
        tracer.terminate()
        _, err = tracer.communicate(timeout=dt.WAIT)
        try:
            with open(out) as f:
                lines = [l.rstrip("\n") for l in f if l.strip()]
        except FileNotFoundError:
            lines = []
        if not lines and ("Operation not permitted" in err or "ptrace" in err):
            self.skipTest(f"cannot trace: {err.strip()}")
        calls = [(m.group(1), l) for l in lines if (m := re.match(r"(\w+)\(", l))]
        self.assertTrue(calls, f"strace saw nothing: {err}")

        other = [l for name, l in calls if name not in PET_SYSCALLS]
        self.assertEqual(other, [], "system calls other than watchdog pets while idle")
        for name, l in calls:
            if name == "sendmsg":
                self.assertIn('"WATCHDOG=1"', l, "the only datagram an idle supervisor sends is a pet")
            if name == "recvmsg" and "EAGAIN" not in l:
                self.assertIn('"WATCHDOG=1"', l, "the only datagram an idle supervisor takes is a pet")

        # Every wake-up serves a pet: between two epoll_wait()s there is a WATCHDOG=1 sent or received.
        segments, cur = [], []
        for name, l in calls:
            if name in ("epoll_wait", "epoll_pwait"):
                segments.append(cur)
                cur = []
            else:
                cur.append(l)
        segments.append(cur)
        for seg in segments[1:-1]:  # the first and last may be cut by the attach and the detach
            self.assertTrue(any("WATCHDOG=1" in l for l in seg), f"a wake-up that pets no watchdog: {seg}")
        self.assertTrue(any('sendmsg' in l and "WATCHDOG=1" in l for _, l in calls),
                        "the supervisor pets its own watchdog while idle")


if __name__ == "__main__":
    dt.main()
