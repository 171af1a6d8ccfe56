#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Handler modules through the real binary: the example modules hello, echo and sleep, routing by prefix, what a module
sees of a request (over HTTP), load errors (exit 78 naming the path and the reason), a failing init, a failing
handle(), a handle() that hangs (the watchdog names the request), a module built out of tree with
pkg-config --cflags drover-handler against an installed drover, and a reload that loads a new module file.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time

from drover_test import EX_CONFIG, WAIT, DroverTestCase, HttpConnection, main, wait_until

BUILD = os.environ.get("DROVER_BUILD_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SRC = os.environ.get("DROVER_SRC_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
HELLO = os.path.join(BUILD, "examples", "hello.so")
ECHO = os.path.join(BUILD, "examples", "echo.so")
SLEEP = os.path.join(BUILD, "examples", "sleep.so")
CC = shutil.which("cc") or shutil.which("gcc")
INCLUDE = os.path.join(SRC, "include")

MODULE_TEMPLATE = """
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <drover/handler.h>

static int init(void **state, const char *prefix) {{ {init} }}

static int handle(void *state, const drover_request *req, drover_response *resp)
{{
        size_t n;
        const char *path = drover_request_path(req, &n);
        (void) path;
        {handle}
}}

const drover_handler drover_module = {{
        .abi_version = {abi},
        .name = "test",
        .init = init,
        .handle = {handle_fn},
}};
"""


class ModuleTestCase(DroverTestCase):

    def build_module(self, name, handle="return drover_response_write(resp, \"ok\\n\", 3);", init="return 0;",
                     abi="DROVER_HANDLER_ABI_VERSION", handle_fn="handle", cflags=None):
        if not CC:
            self.skipTest("no C compiler")
        src = os.path.join(self.tmp, name + ".c")
        out = os.path.join(self.tmp, name + ".so")
        with open(src, "w") as f:
            f.write(MODULE_TEMPLATE.format(init=init, handle=handle, abi=abi, handle_fn=handle_fn))
        subprocess.run([CC, "-shared", "-fPIC", "-O1", "-o", out, src] + (cflags or [f"-I{INCLUDE}"]), check=True)
        return out

    def json_get(self, d, method, path, headers=None, body=b""):
        with d.connect() as c:
            r = c.request(method, path, headers, body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        return json.loads(r.body)


class ExampleModulesTest(ModuleTestCase):

    def test_hello_under_its_prefix_static_elsewhere(self):
        d = self.start(workers=2, args=[f"--handler=/hello={HELLO}"])
        for path in ["/hello", "/hello/", "/hello/deeper/path?x=1"]:
            with self.subTest(path=path):
                r = d.get(path)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, b"Hello, world!\n")
                self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
                self.assertEqual(r.header("Content-Length"), "14")
                self.assertEqual(r.header("Server"), "drover")
                self.assertIsNotNone(r.header("Date"))
        self.assertEqual(d.get("/helloworld").status, 404, "/hello does not claim /helloworld")
        self.assertEqual(d.get("/plain.txt").body, b"plain text file\n", "the static handler serves the rest")
        r = d.get("/hello", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "14")
        self.assertEqual(r.body, b"")

    def test_keep_alive_and_pipelining_through_a_module(self):
        d = self.start(workers=1, args=[f"--handler=/hello={HELLO}"])
        with d.connect() as c:
            c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /plain.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /hello/2 HTTP/1.1\r\nHost: x\r\n\r\n")
            bodies = [c.read_response().body for _ in range(3)]
            self.assertEqual(bodies, [b"Hello, world!\n", b"plain text file\n", b"Hello, world!\n"])
            self.assertTrue(c.still_open())

    def test_echo_reflects_the_request(self):
        d = self.start(workers=1, args=[f"--handler=/echo={ECHO}"])
        j = self.json_get(d, "POST", "/echo/a%20b?x=1&y=%41", {"X-Test": "v1", "Content-Type": "text/plain"},
                          b"some\nbody")
        self.assertEqual(j["method"], "POST")
        self.assertEqual(j["path"], "/echo/a b")
        self.assertEqual(j["query"], "x=1&y=%41")
        self.assertEqual(j["prefix"], "/echo")
        self.assertEqual(j["protocol"], "HTTP/1.1")
        self.assertEqual(j["remote_address"], "127.0.0.1")
        self.assertEqual(j["body"], "some\nbody")
        self.assertIn(["X-Test", "v1"], j["headers"])
        self.assertIn(["Host", "localhost"], j["headers"])
        self.assertEqual(j["headers"][0][0], "Host", "in the order sent")

        j = self.json_get(d, "GET", "/echo")
        self.assertIsNone(j["query"])
        self.assertEqual(j["body"], "")

    def test_echo_chunked_body_is_reassembled(self):
        d = self.start(workers=1, args=[f"--handler=/echo={ECHO}"])
        with d.connect() as c:
            c.send(b"PUT /echo/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["body"], "hello world!")

    def test_expect_100_continue(self):
        d = self.start(workers=1, args=[f"--handler=/echo={ECHO}"])
        with d.connect() as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            interim = c.read_response()
            self.assertEqual(interim.status, 100, "the client is told to go on before it sends the body")
            c.send(b"data")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["body"], "data")

    def test_body_over_the_limit_is_413_before_it_is_sent(self):
        d = self.start(workers=1, args=[f"--handler=/echo={ECHO}", "--max-body-size=10"])
        with d.connect() as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())
        self.assertEqual(self.json_get(d, "POST", "/echo", body=b"0123456789")["body"], "0123456789")

    def test_catch_all_module_and_longest_prefix(self):
        d = self.start(workers=1, args=[f"--handler={ECHO}", f"--handler=/echo/hello={HELLO}"])
        j = self.json_get(d, "GET", "/plain.txt")
        self.assertEqual(j["prefix"], "", "the catch-all module serves what no longer prefix claims")
        self.assertEqual(d.get("/echo/hello/x").body, b"Hello, world!\n")
        self.assertEqual(self.json_get(d, "GET", "/echo/hell")["path"], "/echo/hell")


class SleepModuleTest(ModuleTestCase):

    def sleep_get(self, c, query):
        r = c.request("GET", "/sleep" + query)
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8", r)
        return r

    def test_answers_after_the_time_asked(self):
        d = self.start(workers=1, args=[f"--handler=/sleep={SLEEP}"])
        with d.connect() as c:
            r = self.sleep_get(c, "?ms=0")
            self.assertEqual((r.status, r.body), (200, b"slept 0 ms\n"))
            for query, ms in [("?ms=250", 250), ("?x=1&ms=120&ms=9999", 120), ("?ms=0007", 7)]:
                with self.subTest(query=query):
                    t0 = time.monotonic()
                    r = self.sleep_get(c, query)
                    elapsed = time.monotonic() - t0
                    self.assertEqual((r.status, r.body), (200, f"slept {ms} ms\n".encode()))
                    # A lower bound only: the sleep cannot end early (an upper bound would be a timing test).
                    self.assertGreaterEqual(elapsed, ms / 1000)
            self.assertTrue(c.still_open(), "keep-alive goes on")

    def test_bad_values_are_400_with_the_reason(self):
        d = self.start(workers=1, args=[f"--handler=/sleep={SLEEP}"])
        cases = [
            ("", "missing ?ms=N"),
            ("?", "missing ?ms=N"),
            ("?xms=5&msx=5&ms", "missing ?ms=N"),
            ("?ms=", "invalid value '' for ms: expected whole milliseconds, from 0 to 5000"),
            ("?ms=abc", "invalid value 'abc' for ms: expected whole milliseconds"),
            ("?ms=-1", "invalid value '-1' for ms: expected whole milliseconds"),
            ("?ms=+5", "invalid value '+5' for ms: expected whole milliseconds"),
            ("?ms=1.5", "invalid value '1.5' for ms: expected whole milliseconds"),
            ("?ms=0x10", "invalid value '0x10' for ms: expected whole milliseconds"),
            ("?ms=%2010", "invalid value '%2010' for ms: expected whole milliseconds"),
            ("?ms=5001", "invalid value '5001' for ms: over the cap, from 0 to 5000"),
            ("?ms=" + "9" * 40, "invalid value '" + "9" * 32 + "' for ms: over the cap"),
        ]
        with d.connect() as c:
            for query, needle in cases:
                with self.subTest(query=query):
                    r = self.sleep_get(c, query)
                    self.assertEqual(r.status, 400, r)
                    self.assertIn(needle, r.body.decode())
                    self.assertEqual(r.body.count(b"\n"), 1, "one line")
            self.assertEqual(self.sleep_get(c, "?ms=1").status, 200, "the connection goes on")


class ModuleErrorTest(ModuleTestCase):

    def assertConfigError(self, args, *needles):
        code, out, err = self.run_drover(["--listen=127.0.0.1:1", f"--root={self.root}"] + args)
        self.assertEqual(code, EX_CONFIG, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for n in needles:
            self.assertIn(n, err)

    def test_load_errors_name_the_path_and_the_reason(self):
        missing = os.path.join(self.tmp, "missing.so")
        self.assertConfigError([f"--handler={missing}"], missing, "No such file")
        text = os.path.join(self.tmp, "text.so")
        with open(text, "w") as f:
            f.write("not an ELF file\n")
        self.assertConfigError([f"--handler=/x={text}"], text)
        nosym = self.build_module("nosym", handle_fn="handle") if CC else None
        if nosym:
            # Rebuild without the descriptor: a shared object that is no drover module.
            src = os.path.join(self.tmp, "plain.c")
            with open(src, "w") as f:
                f.write("int nothing_here(void) { return 0; }\n")
            subprocess.run([CC, "-shared", "-fPIC", "-o", nosym, src], check=True)
            self.assertConfigError([f"--handler={nosym}"], nosym, "drover_module")
        wrong_abi = self.build_module("abi", abi="999")
        self.assertConfigError([f"--handler={wrong_abi}"], wrong_abi, "999", "version")
        no_handle = self.build_module("nohandle", handle_fn="NULL")
        self.assertConfigError([f"--handler={no_handle}"], no_handle, "handle()")
        self.assertConfigError([f"--handler=/a={HELLO}", f"--handler=/a/={ECHO}"], "/a", "one module per prefix")

    def test_init_failure_stops_the_worker_and_backs_off(self):
        failing = self.build_module("initfail", init="return -EIO;")
        d = self.start(workers=1, args=[f"--handler=/x={failing}"], wait_ready=False)
        d.wait_log(r"--handler: module 'test' \(.*initfail\.so\): init failed: Input/output error")
        d.wait_log(r"worker 0: process \d+ exited with status 78 unexpectedly .*restarting it in \d+ ms")
        self.assertTrue(d.running(), "the supervisor keeps running, backing off")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)

    def test_failing_handle_is_500_and_the_worker_serves_on(self):
        failing = self.build_module("fails", handle="return -EIO;")
        d = self.start(workers=1, args=[f"--handler=/x={failing}"])
        with d.connect() as c:
            r = c.request("GET", "/x/y")
            self.assertEqual(r.status, 500)
            self.assertIn(b"500 Internal Server Error", r.body)
            self.assertEqual(c.request("GET", "/plain.txt").status, 200, "the connection goes on")
        d.wait_log(r"module test: GET /x/y failed: Input/output error")
        self.assertEqual(len(d.workers()), 1)

    def test_bad_response_headers_are_refused(self):
        mod = self.build_module("badhdr", handle=(
            "int a = drover_response_add_header(resp, \"X-Evil\", \"a\\r\\nSet-Cookie: x\");\n"
            "int b = drover_response_add_header(resp, \"Content-Length\", \"99\");\n"
            "char buf[64]; int k = snprintf(buf, sizeof buf, \"%d %d\\n\", a, b);\n"
            "drover_response_add_header(resp, \"Content-Type\", \"text/plain\");\n"
            "return drover_response_write(resp, buf, (size_t) k);"))
        d = self.start(workers=1, args=[f"--handler={mod}"])
        r = d.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.decode().split(), [str(-22), str(-1)], "-EINVAL, -EPERM")
        self.assertIsNone(r.header("Set-Cookie"))

    def test_hanging_handler_is_named_by_the_watchdog(self):
        mod = self.build_module("hang", handle=(
            "if (n == 5 && memcmp(path, \"/hang\", 5) == 0) for (;;) pause();\n"
            "return drover_response_write(resp, \"ok\\n\", 3);"))
        d = self.start(workers=2, args=[f"--handler={mod}", "--worker-watchdog=1s"])
        victim_conn = d.connect()
        victim_conn.send(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        m = d.wait_log(r"worker (\d): process (\d+) .*GET /hang", timeout=WAIT + 5)
        self.assertRegex(m.group(0), r"watchdog|WATCHDOG|deadline")
        d.wait_log(rf"worker {m.group(1)}: process {m.group(2)} was killed by signal")
        self.assertEqual(d.get("/ok").body, b"ok\n", "the other worker serves meanwhile")


class ModuleBuildTest(ModuleTestCase):

    def test_out_of_tree_module_with_pkg_config(self):
        if not (CC and shutil.which("pkg-config") and shutil.which("meson")):
            self.skipTest("needs cc, pkg-config and meson")
        dest = os.path.join(self.tmp, "destdir")
        subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        pcs = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs if f == "drover-handler.pc"]
        self.assertEqual(len(pcs), 1, "drover-handler.pc is installed")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=dest)
        cflags = subprocess.run(["pkg-config", "--cflags", "drover-handler"], env=env, check=True,
                                capture_output=True, text=True).stdout.split()
        self.assertTrue(any(f.startswith("-I" + dest) for f in cflags), cflags)
        out = os.path.join(self.tmp, "oot-hello.so")
        subprocess.run([CC, "-shared", "-fPIC", "-Wall", "-Werror", "-o", out,
                        os.path.join(SRC, "examples", "hello.c")] + cflags, check=True)
        d = self.start(workers=1, args=[f"--handler=/hi={out}"])
        self.assertEqual(d.get("/hi").body, b"Hello, world!\n")

    def test_reload_loads_the_new_module_file(self):
        v1 = self.build_module("v1", handle="return drover_response_write(resp, \"one\\n\", 4);")
        v2 = self.build_module("v2", handle="return drover_response_write(resp, \"two\\n\", 4);")
        live = os.path.join(self.tmp, "live.so")
        shutil.copy(v1, live)
        d = self.start(workers=2, args=[f"--handler={live}"])
        self.assertEqual(d.get("/").body, b"one\n")
        shutil.copy(v2, live + ".new")
        os.rename(live + ".new", live)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: done, 2 workers replaced")
        for _ in range(4):
            self.assertEqual(d.get("/").body, b"two\n")
        # A module broken on disk: the reload is refused and the running pool keeps serving.
        with open(live + ".new", "w") as f:
            f.write("garbage")
        os.rename(live + ".new", live)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: --handler: invalid value '.*live\.so': cannot load it: ")
        d.wait_log(r"reload: the configuration is invalid; keeping the running pool and its options")
        self.assertEqual(d.get("/").body, b"two\n")


if __name__ == "__main__":
    main()
