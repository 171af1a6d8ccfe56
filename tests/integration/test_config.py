#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
The configuration file as an operator meets it: drover started with --config=FILE, the command line over the
file, drover --check-config (ok, or every problem with FILE:LINE, exit 78, nothing served), and SIGHUP after
editing the file: the new values in the responses after "reload: done", a broken file logged with FILE:LINE
while the running pool keeps serving.
"""

import os
import re
import signal

from drover_test import (EX_CONFIG, DroverTestCase, children_of, free_port, main, port_refuses, proc_cmdline,
                         wait_until)


class ConfigTestCase(DroverTestCase):
    def write_config(self, text, name="drover.conf"):
        path = os.path.join(self.tmp, name)
        with open(path + ".new", "w") as f:
            f.write(text)
        os.rename(path + ".new", path)  # as an editor saves: never half a file
        return path

    def start_config(self, text, workers=None, args=(), root=False, **kw):
        """drover with --config=FILE (written from text) and, by default, neither --workers nor --root: those
        come from the file."""
        path = self.write_config(text)
        return path, self.start(workers=workers, root=root, args=[f"--config={path}"] + list(args), **kw)

    def reload(self, d):
        n = len(re.findall(r"reload: (done|failed)", d.log()))
        d.signal(signal.SIGHUP)
        wait_until(lambda: len(re.findall(r"reload: (done|failed)", d.log())) > n,
                   message=f"the reload to end; log:\n{d.log()}")
        return d.log()


class StartTest(ConfigTestCase):
    def test_values_come_from_the_file(self):
        _, d = self.start_config(f"# served by drover\n[drover]\nworkers = 3\nroot = {self.root}\n"
                                 "server-header = FromFile/1.0\n")
        self.assertEqual(len(d.wait_workers(3)), 3)
        r = d.get("/plain.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain text file\n")
        self.assertEqual(r.header("Server"), "FromFile/1.0")

    def test_the_command_line_overrides_the_file(self):
        other = os.path.join(self.tmp, "other")
        os.makedirs(other)
        with open(os.path.join(other, "plain.txt"), "w") as f:
            f.write("other root\n")
        _, d = self.start_config(f"workers = 3\nroot = {other}\nserver-header = FromFile/1.0\n"
                                 "max-body-size = 10\n",
                                 workers=1, args=["--server-header=FromFlag/2.0", f"--root={self.root}"])
        self.assertEqual(len(d.wait_workers(1)), 1)
        r = d.get("/plain.txt")
        self.assertEqual(r.header("Server"), "FromFlag/2.0")
        self.assertEqual(r.body, b"plain text file\n")
        # What the command line does not name still comes from the file: a body over 10 bytes is refused.
        self.assertEqual(d.get("/plain.txt", method="POST", body=b"x" * 11).status, 413)

    def test_listen_on_the_command_line_replaces_the_files(self):
        file_port = free_port()
        _, d = self.start_config(f"listen = 127.0.0.1:{file_port}\nroot = {self.root}\n", workers=1)
        self.assertEqual(d.get("/plain.txt").status, 200)  # d.port: the command line's --listen
        self.assertTrue(port_refuses(file_port), "the file's listen= is replaced, not added to")

    def test_listen_from_the_file(self):
        port = free_port()
        path = self.write_config(f"listen = 127.0.0.1:{port}\nroot = {self.root}\nworkers = 1\n")
        d = self.start(workers=None, listen=[], root=False, args=[f"--config={path}"])
        d.ports.append(port)
        self.assertEqual(d.get("/plain.txt").body, b"plain text file\n")

    def test_invalid_value_exits_78_naming_file_line_key(self):
        port = free_port()
        path = self.write_config(f"[drover]\nroot = {self.root}\nlisten = 127.0.0.1:{port}\nworkers = abc\n")
        code, out, err = self.run_drover([f"--config={path}"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertIn(f"{path}:4: workers: invalid value 'abc': expected a whole number from 1 to 1024", err)
        self.assertEqual(out, "")
        self.assertTrue(port_refuses(port))

    def test_unknown_key_exits_78(self):
        path = self.write_config(f"root = {self.root}\n\nwrokers = 2\n")
        code, _, err = self.run_drover([f"--config={path}", "--listen=127.0.0.1:1"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertIn(f"{path}:3: unknown key 'wrokers'", err)

    def test_missing_config_given_explicitly_exits_78(self):
        path = os.path.join(self.tmp, "nonexistent.conf")
        code, _, err = self.run_drover([f"--config={path}", f"--root={self.root}", "--listen=127.0.0.1:1"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertIn(f"--config: invalid value '{path}': No such file or directory", err)

    def test_exec_workers_from_the_file(self):
        port = free_port()
        path = self.write_config(f"exec = /bin/sleep 1000\nworkers = 2\n")
        d = self.start(workers=None, root=False, args=[f"--config={path}"], listen=[f"127.0.0.1:{port}"])
        d.ports.append(port)
        wait_until(lambda: len([p for p in children_of(d.pid) if proc_cmdline(p) == ["/bin/sleep", "1000"]]) == 2,
                   message="two exec workers running /bin/sleep 1000")


class CheckConfigTest(ConfigTestCase):
    def test_ok(self):
        port = free_port()
        path = self.write_config(f"[drover]\nworkers = 2\nroot = {self.root}\nlisten = 127.0.0.1:{port}\n"
                                 "handler = /echo=" + os.path.join(os.environ.get("DROVER_BUILD_ROOT", ""),
                                                                   "examples", "echo.so") + "\n")
        code, out, err = self.run_drover(["--check-config", f"--config={path}"])
        self.assertEqual((code, out, err), (0, "ok\n", ""))
        self.assertTrue(port_refuses(port), "--check-config serves nothing")

    def test_every_problem_is_listed(self):
        port = free_port()
        path = self.write_config("[drover]\n"                                    # 1
                                 "workers = 0\n"                                 # 2
                                 f"listen = 127.0.0.1:{port}\n"                  # 3
                                 "root = " + os.path.join(self.tmp, "nope") + "\n"  # 4
                                 "handler = /x=/nonexistent/mod.so\n"            # 5
                                 "colour = blue\n"                               # 6
                                 "max-body-size = lots\n")                       # 7
        code, out, err = self.run_drover(["--check-config", f"--config={path}", "--header-timeout=never"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertEqual(out, "")
        for expected in (f"{path}:2: workers: invalid value '0': expected a whole number from 1 to 1024",
                         f"{path}:4: root: invalid value '{self.tmp}/nope': No such file or directory",
                         f"{path}:5: handler: invalid value '/nonexistent/mod.so': cannot load it",
                         f"{path}:6: unknown key 'colour'",
                         f"{path}:7: max-body-size: invalid value 'lots'",
                         "--header-timeout: invalid value 'never'"):
            self.assertIn(expected, err)
        self.assertEqual(len(err.strip().splitlines()), 6, err)
        self.assertTrue(port_refuses(port), "--check-config serves nothing")

    def test_exec_command_must_resolve(self):
        path = self.write_config("exec = no-such-program-anywhere --flag\n")
        code, out, err = self.run_drover(["--check-config", f"--config={path}"])
        self.assertEqual(code, EX_CONFIG, err)
        self.assertIn(f"{path}:1: exec: invalid value 'no-such-program-anywhere': No such file or directory", err)

    def test_command_line_only(self):
        code, out, err = self.run_drover(["--check-config", f"--root={self.root}", "--workers=2",
                                          f"--config={self.write_config('')}"])
        self.assertEqual((code, out, err), (0, "ok\n", ""))


class ReloadTest(ConfigTestCase):
    def test_edited_file_is_applied_by_sighup(self):
        other = os.path.join(self.tmp, "other")
        os.makedirs(other)
        with open(os.path.join(other, "plain.txt"), "w") as f:
            f.write("new root\n")
        path, d = self.start_config(f"workers = 2\nroot = {self.root}\nserver-header = Before/1\n")
        self.assertEqual(d.get("/plain.txt").header("Server"), "Before/1")

        self.write_config(f"workers = 2\nroot = {other}\nserver-header = After/2\n")
        log = self.reload(d)
        self.assertIn("reload: done, 2 workers replaced", log)
        r = d.get("/plain.txt")
        self.assertEqual(r.header("Server"), "After/2")
        self.assertEqual(r.body, b"new root\n")

    def test_broken_file_keeps_the_pool_serving(self):
        path, d = self.start_config(f"workers = 2\nroot = {self.root}\nserver-header = Before/1\n")
        before = d.wait_workers(2)
        self.write_config(f"workers = 2\nroot = {self.root}\nserver-header = After/2\nmax-headers = many\n"
                          "typo = 1\n")
        log = self.reload(d)
        self.assertIn(f"reload: {path}:4: max-headers: invalid value 'many'", log)
        self.assertIn(f"reload: {path}:5: unknown key 'typo'", log)
        self.assertIn("reload: the configuration is invalid; keeping the running pool and its options", log)
        self.assertIn("reload: failed", log)
        self.assertEqual(d.wait_workers(2), before, "the running workers are untouched")
        self.assertEqual(d.get("/plain.txt").header("Server"), "Before/1")

        # The old options are still the ones in force: a later reload of a fixed file starts from them.
        self.write_config(f"workers = 2\nroot = {self.root}\nserver-header = Fixed/3\n")
        log = self.reload(d)
        self.assertIn("reload: done", log.split("reload: failed")[-1])
        self.assertEqual(d.get("/plain.txt").header("Server"), "Fixed/3")

    def test_deleted_explicit_file_keeps_the_pool(self):
        path, d = self.start_config(f"root = {self.root}\nserver-header = Before/1\n", workers=1)
        os.unlink(path)
        log = self.reload(d)
        self.assertIn(f"reload: --config: invalid value '{path}': No such file or directory", log)
        self.assertEqual(d.get("/plain.txt").header("Server"), "Before/1")

    def test_command_line_still_wins_after_reload(self):
        path, d = self.start_config(f"root = {self.root}\nserver-header = File/1\n", workers=1,
                                    args=["--server-header=Flag/1"])
        self.write_config(f"root = {self.root}\nserver-header = File/2\n")
        self.assertIn("reload: done", self.reload(d))
        self.assertEqual(d.get("/plain.txt").header("Server"), "Flag/1")

    def test_workers_change_grows_and_shrinks_the_pool(self):
        path, d = self.start_config(f"workers = 2\nroot = {self.root}\n")
        d.wait_workers(2)
        self.write_config(f"workers = 4\nroot = {self.root}\n")
        log = self.reload(d)
        self.assertIn("reload: workers: 2 -> 4: starting 2", log)
        self.assertIn("reload: done", log)
        self.assertEqual(sorted(d.wait_workers(4)), [0, 1, 2, 3])
        self.assertEqual(d.get("/plain.txt").status, 200)

        self.write_config(f"workers = 1\nroot = {self.root}\n")
        log = self.reload(d)
        self.assertIn("reload: workers: 4 -> 1: stopping 3", log)
        self.assertEqual(sorted(d.wait_workers(1)), [0])
        self.assertEqual(d.get("/plain.txt").status, 200)
        d.notify.wait_for(lambda m: m.has("READY=1") and (m.fields.get("STATUS") or "").startswith(
            "Ready: 1/1 workers"), what="STATUS= with 1/1 workers")

    def test_listen_change_needs_a_restart(self):
        port = free_port()
        path, d = self.start_config(f"root = {self.root}\nlisten = 127.0.0.1:{port}\n", workers=1, listen=[])
        d.ports.append(port)
        other = free_port()
        self.write_config(f"root = {self.root}\nlisten = 127.0.0.1:{other}\nserver-header = New/1\n")
        log = self.reload(d)
        self.assertIn("reload: listen: changed addresses need a restart", log)
        self.assertIn("reload: done", log)
        self.assertEqual(d.get("/plain.txt").header("Server"), "New/1")  # the rest is applied
        self.assertTrue(port_refuses(other))


if __name__ == "__main__":
    main()
