# SPDX-License-Identifier: MIT
"""drover-worker, the built-in worker's own executable (src/worker/main.c): it links neither libsystemd nor
libinih, so a worker process maps neither; drover finds it next to itself (the build tree) or at the installed
path; neither program runs the other's role. Checked on /proc and exit statuses, not on timing."""

import os
import shutil
import subprocess

import drover_test as dt

WORKER = dt.DROVER_WORKER
EX_OSERR = 71


def mapped_files(pid):
    with open(f"/proc/{pid}/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


class WorkerBinary(dt.DroverTestCase):
    def run_worker(self, args, env=None, shell_pid_var=None):
        """Runs drover-worker to completion; shell_pid_var names variables set to its own pid (through a
        shell that execs it, so that the pid is known before the exec)."""
        argv = [WORKER] + list(args)
        if shell_pid_var:
            argv = ["sh", "-c", " ".join(f"{v}=$$" for v in shell_pid_var) + ' exec "$0" "$@"'] + argv
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=dt.clean_environment(env),
                           timeout=dt.WAIT)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def test_worker_maps_no_libsystemd(self):
        inst = self.start(workers=1)
        pid = inst.wait_workers(1)[0]
        self.assertEqual(inst.get("/plain.txt").status, 200)
        self.assertEqual(os.path.realpath(f"/proc/{pid}/exe"), os.path.realpath(WORKER),
                         "the worker is the drover-worker next to drover")
        self.assertEqual(dt.proc_cmdline(pid)[0], "drover-worker")
        worker_maps = mapped_files(pid)
        for lib in ("libsystemd", "libinih", "libgcrypt", "liblzma", "libzstd"):
            self.assertFalse([m for m in worker_maps if lib in os.path.basename(m)],
                             f"worker {pid} maps {lib}: {sorted(worker_maps)}")
        # The supervisor does map it (sd-event): the check above looks at the right thing.
        self.assertTrue([m for m in mapped_files(inst.pid) if "libsystemd" in os.path.basename(m)],
                        "the supervisor maps libsystemd")

    def test_drover_has_no_worker_mode(self):
        status, out, err = self.run_drover(["--worker=0"])
        self.assertEqual(status, dt.EX_USAGE, err)
        self.assertIn("'--worker' is internal to drover-worker", err)

    def test_worker_usage(self):
        status, out, err = self.run_worker(["--version"])
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith("drover-worker "), out)
        # Without its slot, or without sockets: started by hand, not by drover.
        status, out, err = self.run_worker([])
        self.assertEqual(status, dt.EX_USAGE, err)
        self.assertIn("started by drover", err)
        status, out, err = self.run_worker(["--worker=0", f"--root={self.root}"])
        self.assertEqual(status, dt.EX_USAGE, err)
        self.assertIn("started without sockets", err)
        status, out, err = self.run_worker(["--worker=0", "--max-headers=0"])
        self.assertEqual(status, dt.EX_CONFIG, err)
        self.assertIn("--max-headers", err)

    def test_worker_listen_env_checks(self):
        # Sockets named for another process are not taken (sd_listen_fds() semantics): as good as none.
        status, out, err = self.run_worker(["--worker=0", f"--root={self.root}"],
                                           env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
        self.assertEqual(status, dt.EX_USAGE, err)
        self.assertIn("started without sockets", err)
        # For us, but malformed: two fds, one name.
        status, out, err = self.run_worker(["--worker=0", f"--root={self.root}"],
                                           env={"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http"},
                                           shell_pid_var=["LISTEN_PID"])
        self.assertEqual(status, EX_OSERR, err)
        self.assertIn("cannot take the sockets passed in: Invalid argument", err)
        # For us, but fd 3 is not open.
        status, out, err = self.run_worker(["--worker=0", f"--root={self.root}"], env={"LISTEN_FDS": "1"},
                                           shell_pid_var=["LISTEN_PID"])
        self.assertEqual(status, EX_OSERR, err)
        self.assertIn("cannot take the sockets passed in: Bad file descriptor", err)

    def test_worker_executable_lookup(self):
        # A drover without drover-worker next to it uses the installed path; when that is missing too,
        # --check-config (and start-up, and reload) says so rather than a worker failing to exec again and again.
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        lone = os.path.join(bindir, "drover")
        shutil.copy2(dt.DROVER, lone)
        p = subprocess.run([lone, f"--root={self.root}", "--config=/dev/null", "--check-config"],
                           stdin=subprocess.DEVNULL, capture_output=True, env=dt.clean_environment(), timeout=dt.WAIT)
        err = p.stderr.decode(errors="replace")
        if p.returncode == 0:
            self.skipTest("a drover-worker is installed at the configured path: the lookup falls back to it")
        self.assertEqual(p.returncode, dt.EX_CONFIG, err)
        self.assertRegex(err, r"the worker program '/\S+/drover/drover-worker' is not executable: No such file")
        # With drover-worker beside it, that one is used.
        os.symlink(os.path.realpath(WORKER), os.path.join(bindir, "drover-worker"))
        p = subprocess.run([lone, f"--root={self.root}", "--config=/dev/null", "--check-config"],
                           stdin=subprocess.DEVNULL, capture_output=True, env=dt.clean_environment(), timeout=dt.WAIT)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(p.stdout.decode(), "ok\n")


if __name__ == "__main__":
    dt.main()
