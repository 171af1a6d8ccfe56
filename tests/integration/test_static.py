# SPDX-License-Identifier: MIT
"""The static handler's HTTP semantics over real connections (src/handlers/static.c, RFC 9110 13 and 14):
validators (ETag, Last-Modified), conditional requests (304, 412), byte ranges (206, 416, If-Range), the same
seen through curl, path traversal, and a large response that must not hold up other connections."""

import os
import re
import shutil
import subprocess
import time

from drover_test import (FIXED_MTIME, SECRET, WAIT, DroverTestCase, HttpConnection, build_request, http_date,
                         main, proc_fds, wait_until)

CURL = shutil.which("curl")
ETAG_RE = re.compile(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"')
FIXED_DATE = http_date(FIXED_MTIME)  # Thu, 04 Mar 2021 05:06:07 GMT


class StaticTestCase(DroverTestCase):
    """A pool of two workers over a fresh document root for every test."""

    workers = 2
    args = ()

    def setUp(self):
        super().setUp()
        self.d = self.start(workers=self.workers, args=self.args)

    def get(self, path, headers=None, method="GET"):
        return self.d.get(path, method, headers)

    def file(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def etag_of(self, rel):
        """The ETag drover documents: inode, size and mtime in nanoseconds, in hex."""
        st = os.stat(os.path.join(self.root, rel))
        return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'

    def assertWhole(self, r, rel):
        data = self.file(rel)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("Content-Length"), str(len(data)))
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertIsNone(r.header("Content-Range"))
        self.assertEqual(r.header("ETag"), self.etag_of(rel))

    def assertNotModified(self, r, rel):
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.body, b"")
        # RFC 9110 15.4.5: the validators, and no representation metadata nor a body length.
        self.assertEqual(r.header("ETag"), self.etag_of(rel))
        self.assertEqual(r.header("Last-Modified"), http_date(os.stat(os.path.join(self.root, rel)).st_mtime))
        self.assertIsNone(r.header("Content-Length"))
        self.assertIsNone(r.header("Content-Type"))
        self.assertIsNotNone(r.header("Date"))

    def assertPartial(self, r, rel, first, last):
        data = self.file(rel)
        self.assertEqual(r.status, 206, r)
        self.assertEqual(r.header("Content-Range"), f"bytes {first}-{last}/{len(data)}")
        self.assertEqual(r.header("Content-Length"), str(last - first + 1))
        self.assertTrue(r.body == data[first:last + 1], f"body of {rel} bytes {first}-{last} differs")
        self.assertEqual(r.header("ETag"), self.etag_of(rel))
        self.assertEqual(r.header("Last-Modified"), http_date(os.stat(os.path.join(self.root, rel)).st_mtime))
        self.assertIsNone(r.header("Accept-Ranges"))

    def assertUnsatisfiable(self, r, rel):
        self.assertEqual(r.status, 416, r)
        self.assertEqual(r.header("Content-Range"), f"bytes */{len(self.file(rel))}")
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))


class ValidatorsTest(StaticTestCase):
    # Files change between requests here: every request looks again (OpenFileCacheTest covers the window).
    args = ("--open-file-cache-valid=0",)

    def test_etag_and_last_modified_on_200(self):
        r = self.get("/plain.txt")
        self.assertWhole(r, "plain.txt")
        self.assertRegex(r.header("ETag"), ETAG_RE)
        self.assertEqual(r.header("Last-Modified"), FIXED_DATE)
        # The same on HEAD, and the same on every connection (whichever worker answers it).
        head = self.get("/plain.txt", method="HEAD")
        self.assertEqual((head.status, head.body), (200, b""))
        for h in ("ETag", "Last-Modified", "Accept-Ranges", "Content-Length"):
            self.assertEqual(head.header(h), r.header(h), h)
        for _ in range(6):
            self.assertEqual(self.get("/plain.txt").header("ETag"), r.header("ETag"))
        # Files differ, tags differ; a directory's index has its own.
        self.assertNotEqual(self.get("/style.css").header("ETag"), r.header("ETag"))
        self.assertEqual(self.get("/sub/").header("ETag"), self.etag_of("sub/index.html"))

    def test_etag_follows_changes(self):
        path = os.path.join(self.root, "plain.txt")
        old = self.get("/plain.txt").header("ETag")
        # Rewritten in place with the same size, a nanosecond later: another tag, and the old one no longer
        # validates the cached copy.
        with open(path, "r+b") as f:
            f.write(b"PLAIN")
        os.utime(path, ns=(FIXED_MTIME * 10**9 + 1, FIXED_MTIME * 10**9 + 1))
        r = self.get("/plain.txt", {"If-None-Match": old})
        self.assertWhole(r, "plain.txt")
        self.assertTrue(r.body.startswith(b"PLAIN"))
        self.assertNotEqual(r.header("ETag"), old)
        self.assertEqual(r.header("Last-Modified"), FIXED_DATE, "Last-Modified has seconds only")
        # Replaced by rename (a new inode), even with the same content and mtime.
        new = r.header("ETag")
        tmp = os.path.join(self.root, ".plain.tmp")
        with open(tmp, "wb") as f:
            f.write(self.file("plain.txt"))
        os.utime(tmp, ns=(FIXED_MTIME * 10**9 + 1, FIXED_MTIME * 10**9 + 1))
        os.rename(tmp, path)
        self.assertNotEqual(self.get("/plain.txt").header("ETag"), new)


class ConditionalTest(StaticTestCase):

    def test_if_none_match_304_keeps_the_connection(self):
        etag = self.etag_of("plain.txt")
        for value in (etag, f'"nope", {etag}', f'"a",{etag} , "b"', "*", f"W/{etag}", f'W/"x", W/{etag}'):
            with self.subTest(value=value):
                with self.d.connect() as c:
                    self.assertNotModified(c.request("GET", "/plain.txt", {"If-None-Match": value}), "plain.txt")
                    # No body followed the 304: the next response on the connection starts right away.
                    self.assertWhole(c.request("GET", "/plain.txt"), "plain.txt")
                    self.assertNotModified(c.request("HEAD", "/plain.txt", {"If-None-Match": value}),
                                           "plain.txt")
                    self.assertWhole(c.request("GET", "/plain.txt"), "plain.txt")

    def test_if_none_match_pipelined(self):
        etag = self.etag_of("style.css")
        with self.d.connect() as c:
            c.send(build_request("GET", "/style.css", {"If-None-Match": etag}) +
                   build_request("GET", "/plain.txt") +
                   build_request("GET", "/style.css", {"If-None-Match": etag, "Connection": "close"}))
            self.assertNotModified(c.read_response(), "style.css")
            self.assertWhole(c.read_response(), "plain.txt")
            r = c.read_response()
            self.assertNotModified(r, "style.css")
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_if_none_match_not_matching_is_200(self):
        for value in ('"other"', self.etag_of("style.css"), self.etag_of("plain.txt").strip('"'), "junk"):
            with self.subTest(value=value):
                self.assertWhole(self.get("/plain.txt", {"If-None-Match": value}), "plain.txt")

    def test_if_modified_since(self):
        for value in (FIXED_DATE, "Thu, 04 Mar 2021 05:06:08 GMT", "Thursday, 04-Mar-21 05:06:07 GMT",
                      "Thu Mar  4 05:06:07 2021", http_date(FIXED_MTIME + 86400 * 365)):
            with self.subTest(value=value):
                with self.d.connect() as c:
                    self.assertNotModified(c.request("GET", "/plain.txt", {"If-Modified-Since": value}),
                                           "plain.txt")
                    self.assertWhole(c.request("GET", "/plain.txt"), "plain.txt")
        for value in ("Thu, 04 Mar 2021 05:06:06 GMT", "Thu Mar  4 05:06:06 2021", "garbage",
                      "thu, 04 mar 2021 05:06:07 gmt", f"{FIXED_DATE}, {FIXED_DATE}", str(FIXED_MTIME)):
            with self.subTest(value=value):
                self.assertWhole(self.get("/plain.txt", {"If-Modified-Since": value}), "plain.txt")

    def test_if_none_match_wins_over_if_modified_since(self):
        r = self.get("/plain.txt", {"If-None-Match": '"other"', "If-Modified-Since": FIXED_DATE})
        self.assertWhole(r, "plain.txt")

    def test_if_match_and_if_unmodified_since_412(self):
        etag = self.etag_of("plain.txt")
        self.assertWhole(self.get("/plain.txt", {"If-Match": etag}), "plain.txt")
        self.assertWhole(self.get("/plain.txt", {"If-Match": "*"}), "plain.txt")
        self.assertWhole(self.get("/plain.txt", {"If-Unmodified-Since": FIXED_DATE}), "plain.txt")
        with self.d.connect() as c:
            for headers in ({"If-Match": '"other"'}, {"If-Match": f"W/{etag}"},
                            {"If-Unmodified-Since": "Thu, 04 Mar 2021 05:06:06 GMT"}):
                with self.subTest(headers=headers):
                    r = c.request("GET", "/plain.txt", headers)
                    self.assertEqual(r.status, 412, r)
                    self.assertEqual(r.header("Content-Length"), str(len(r.body)))
                    self.assertNotIn(self.file("plain.txt"), r.body)
            self.assertWhole(c.request("GET", "/plain.txt"), "plain.txt")

    def test_conditions_do_not_apply_to_errors(self):
        # RFC 9110 13.2.1: preconditions are ignored when the answer would not be 2xx anyway.
        for path, status in (("/missing", 404), ("/noindex/", 403), ("/sub", 301), ("/escape.txt", 403)):
            with self.subTest(path=path):
                r = self.get(path, {"If-None-Match": "*", "If-Match": '"x"', "Range": "bytes=0-1"})
                self.assertEqual(r.status, status)
                self.assertNotIn(SECRET.encode(), r.body)


class RangeTest(StaticTestCase):

    def test_single_ranges(self):
        size = len(self.file("image.png"))
        with self.d.connect() as c:
            for value, first, last in (("bytes=0-9", 0, 9), ("bytes=100-199", 100, 199), ("bytes=1000-", 1000,
                                       size - 1), ("bytes=-10", size - 10, size - 1), ("bytes=0-0", 0, 0),
                                       ("bytes=0-", 0, size - 1), ("bytes=1030-99999", 1030, size - 1),
                                       ("bytes=-99999", 0, size - 1), ("BYTES=5-6", 5, 6)):
                with self.subTest(range=value):
                    r = c.request("GET", "/image.png", {"Range": value})
                    self.assertPartial(r, "image.png", first, last)
                    self.assertEqual(r.header("Content-Type"), "image/png")
            self.assertWhole(c.request("GET", "/image.png"), "image.png")

    def test_unsatisfiable_is_416(self):
        size = len(self.file("plain.txt"))
        with self.d.connect() as c:
            for value in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0",
                          "bytes=99999999999999999999999-"):
                with self.subTest(range=value):
                    r = c.request("GET", "/plain.txt", {"Range": value})
                    self.assertUnsatisfiable(r, "plain.txt")
                    self.assertNotIn(self.file("plain.txt"), r.body)
            # Still usable.
            self.assertPartial(c.request("GET", "/plain.txt", {"Range": "bytes=0-4"}), "plain.txt", 0, 4)

    def test_empty_file(self):
        r = self.get("/empty.txt", {"Range": "bytes=0-"})
        self.assertUnsatisfiable(r, "empty.txt")
        self.assertEqual(r.header("Content-Range"), "bytes */0")
        # A suffix of an empty file cannot be described by a Content-Range: the whole, empty, file.
        r = self.get("/empty.txt", {"Range": "bytes=-5"})
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", "0"))

    def test_several_or_invalid_ranges_get_the_whole_file(self):
        for value in ("bytes=0-1,5-6", "bytes=0-1, 3-4", "bytes=-1,0-0", "bytes=5-2", "bytes=abc", "bytes=",
                      "items=0-1", "bytes 0-1", "bytes=1-2-3", "0-5"):
            with self.subTest(range=value):
                self.assertWhole(self.get("/plain.txt", {"Range": value}), "plain.txt")

    def test_if_range(self):
        etag = self.etag_of("plain.txt")
        for value in (etag, FIXED_DATE):
            with self.subTest(if_range=value):
                r = self.get("/plain.txt", {"Range": "bytes=2-5", "If-Range": value})
                self.assertPartial(r, "plain.txt", 2, 5)
        for value in ('"other"', f"W/{etag}", "Thu, 04 Mar 2021 05:06:08 GMT", "Thu, 04 Mar 2021 05:06:06 GMT",
                      "garbage"):
            with self.subTest(if_range=value):
                self.assertWhole(self.get("/plain.txt", {"Range": "bytes=2-5", "If-Range": value}), "plain.txt")
                # A range that would not be satisfiable is not even looked at.
                self.assertWhole(self.get("/plain.txt", {"Range": "bytes=9999-", "If-Range": value}),
                                 "plain.txt")

    def test_conditional_before_range(self):
        r = self.get("/plain.txt", {"Range": "bytes=0-1", "If-None-Match": self.etag_of("plain.txt")})
        self.assertNotModified(r, "plain.txt")

    def test_head_with_range(self):
        # RFC 9110 14.2: range handling is defined for GET only; HEAD answers as to a GET without Range.
        with self.d.connect() as c:
            r = c.request("HEAD", "/plain.txt", {"Range": "bytes=0-4"})
            self.assertEqual((r.status, r.body), (200, b""))
            self.assertEqual(r.header("Content-Length"), str(len(self.file("plain.txt"))))
            self.assertEqual(r.header("Accept-Ranges"), "bytes")
            self.assertIsNone(r.header("Content-Range"))
            r = c.request("HEAD", "/plain.txt", {"Range": "bytes=9999-"})
            self.assertEqual((r.status, r.body), (200, b""))
            self.assertPartial(c.request("GET", "/plain.txt", {"Range": "bytes=0-4"}), "plain.txt", 0, 4)

    def test_big_file_ranged_in_the_middle(self):
        size = len(self.file("big.bin"))
        with self.d.connect() as c:
            first, last = 1_000_003, 3_123_456
            self.assertPartial(c.request("GET", "/big.bin", {"Range": f"bytes={first}-{last}"}), "big.bin",
                               first, last)
            self.assertPartial(c.request("GET", "/big.bin", {"Range": "bytes=-1"}), "big.bin", size - 1, size - 1)
            self.assertPartial(c.request("GET", "/big.bin", {"Range": f"bytes={size // 2}-"}), "big.bin",
                               size // 2, size - 1)

    def test_http10_range(self):
        with self.d.connect() as c:
            r = c.request("GET", "/plain.txt", {"Range": "bytes=1-3"}, version="HTTP/1.0")
            self.assertPartial(r, "plain.txt", 1, 3)
            self.assertTrue(c.closed_by_peer())


class CurlTest(StaticTestCase):
    args = ("--open-file-cache-valid=0",)

    def setUp(self):
        if not CURL:
            self.skipTest("curl is not installed")
        super().setUp()

    def url(self, path):
        return f"http://127.0.0.1:{self.d.port}{path}"

    def curl(self, *args):
        """(HTTP status, body) of one curl run."""
        out = os.path.join(self.tmp, "curl.out")
        if os.path.exists(out):
            os.unlink(out)
        p = subprocess.run([CURL, "--silent", "--show-error", "--max-time", str(int(WAIT)), "-o", out,
                            "-w", "%{http_code}"] + list(args), capture_output=True, timeout=WAIT * 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
        return int(p.stdout), body

    def test_range(self):
        data = self.file("big.bin")
        self.assertEqual(self.curl("--range", "10-20", self.url("/plain.txt")), (206, self.file("plain.txt")[10:21]))
        status, body = self.curl("--range", "2000000-2999999", self.url("/big.bin"))
        self.assertEqual(status, 206)
        self.assertTrue(body == data[2000000:3000000])

    def test_resume(self):
        # curl -C -: the download continues where the partial file ends (Range: bytes=N-).
        data = self.file("big.bin")
        part = os.path.join(self.tmp, "big.part")
        with open(part, "wb") as f:
            f.write(data[:1234567])
        p = subprocess.run([CURL, "--silent", "--show-error", "--max-time", str(int(WAIT)), "-C", "-", "-o", part,
                            "-w", "%{http_code}", self.url("/big.bin")], capture_output=True, timeout=WAIT * 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"206")
        with open(part, "rb") as f:
            self.assertTrue(f.read() == data, "the resumed file differs")

    def test_if_modified_since(self):
        self.assertEqual(self.curl("-z", FIXED_DATE, self.url("/plain.txt")), (304, b""))
        self.assertEqual(self.curl("-z", "Thu, 04 Mar 2021 05:06:06 GMT", self.url("/plain.txt")),
                         (200, self.file("plain.txt")))
        # -z -DATE is If-Unmodified-Since.
        self.assertEqual(self.curl("-z", "-Thu, 04 Mar 2021 05:06:06 GMT", self.url("/plain.txt"))[0], 412)

    def test_etag_save_and_compare(self):
        saved = os.path.join(self.tmp, "etag")
        self.assertEqual(self.curl("--etag-save", saved, self.url("/style.css")), (200, self.file("style.css")))
        with open(saved) as f:
            self.assertEqual(f.read().strip(), self.etag_of("style.css"))
        self.assertEqual(self.curl("--etag-compare", saved, self.url("/style.css")), (304, b""))
        # Once the file changes, the saved tag no longer matches.
        path = os.path.join(self.root, "style.css")
        os.utime(path, ns=(FIXED_MTIME * 10**9 + 5, FIXED_MTIME * 10**9 + 5))
        self.assertEqual(self.curl("--etag-compare", saved, self.url("/style.css")), (200, self.file("style.css")))


class TraversalTest(StaticTestCase):

    def setUp(self):
        super().setUp()
        base = os.path.dirname(self.root)
        # More ways out, besides make_docroot()'s escape.txt, abs-escape.txt, passwd and outdir.
        os.symlink(os.path.join(base, "outside"), os.path.join(self.root, "absdir"))       # absolute, a directory
        os.symlink("../../secret.txt", os.path.join(self.root, "sub", "up.txt"))            # relative, from below
        os.symlink("/proc/self/root", os.path.join(self.root, "proc-root"))                  # to a magic link
        os.symlink("/proc/self/cwd", os.path.join(self.root, "proc-cwd"))
        os.symlink("..", os.path.join(self.root, "parent"))

    def assertRefused(self, path, headers=None):
        with self.d.connect() as c:
            c.send(build_request("GET", path, headers))
            r = c.read_response()
            self.assertIn(r.status, (400, 403, 404), f"{path}: {r}")
            self.assertNotIn(SECRET.encode(), r.body)
            self.assertNotIn(b"root:", r.body)

    def test_traversal_never_serves_the_secret(self):
        paths = [
            "/../secret.txt", "/../../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/%2e./secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
            "/sub/%2e%2e/%2e%2e/secret.txt", "/sub%2f..%2f..%2fsecret.txt",
            "/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt", "/..%252fsecret.txt",  # decoded once only
            "/..%5csecret.txt", "/..\\secret.txt", "/%2e%2e%5c%2e%2e%5csecret.txt",
            "/../outside/secret.txt", "/%2e%2e/outside/secret.txt",
            "/escape.txt", "/abs-escape.txt", "/passwd", "/outdir/secret.txt", "/outdir/", "/outdir",
            "/absdir/secret.txt", "/absdir/", "/sub/up.txt", "/parent/secret.txt", "/parent/outside/secret.txt",
            "/parent/", "/proc-root/etc/passwd", "/proc-root/", "/proc-cwd/", "/proc-cwd/secret.txt",
            "/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "http://localhost/../secret.txt", "http://localhost/%2e%2e/secret.txt",
        ]
        for path in paths:
            with self.subTest(path=path):
                self.assertRefused(path)
                # Conditionals and ranges take no other way.
                self.assertRefused(path, {"Range": "bytes=0-", "If-None-Match": "*"})
                self.assertRefused(path, {"Range": "bytes=-100", "If-Range": FIXED_DATE})
        # Inside the root, all the same spellings work.
        self.assertWhole(self.get("/sub/%2e%2e/plain.txt"), "plain.txt")
        self.assertWhole(self.get("/%70lain.txt"), "plain.txt")
        self.assertWhole(self.get("/link.txt"), "plain.txt")

    def test_double_encoding_names_a_literal_file(self):
        # %25 decodes to "%" once and no more: "/%252e%252e" names a file called "%2e%2e".
        os.mkdir(os.path.join(self.root, "%2e%2e"))
        with open(os.path.join(self.root, "%2e%2e", "f.txt"), "wb") as f:
            f.write(b"literal\n")
        r = self.get("/%252e%252e/f.txt")
        self.assertEqual((r.status, r.body), (200, b"literal\n"))


class MagicLinksTest(DroverTestCase):

    def test_magic_links_are_not_followed(self):
        # A root where /proc's magic links are reachable: each worker's own /proc/PID. RESOLVE_NO_MAGICLINKS
        # refuses them, and RESOLVE_BENEATH what they point to.
        d = self.start(workers=1, root=False, args=["--root=/proc/self"])
        for path in ("/root/etc/passwd", "/root/", "/cwd/", "/exe", "/fd/0", "/fd/1", "/fd/3", "/map_files/",
                     "/task/"):
            with self.subTest(path=path):
                r = d.get(path, headers={"Range": "bytes=0-"})
                self.assertIn(r.status, (403, 404), f"{path}: {r}")
                self.assertNotIn(b"root:", r.body)
                self.assertNotIn(b"ELF", r.body)


class LargeResponseTest(StaticTestCase):

    workers = 1  # both connections on the same worker: otherwise the test proves nothing

    def test_a_stalled_download_does_not_block_other_connections(self):
        data = self.file("big.bin")
        for headers, expected in ((None, data), ({"Range": "bytes=100000-"}, data[100000:])):
            with self.subTest(headers=headers):
                # A client that asks for 4 MiB with a tiny receive window and does not read.
                slow = HttpConnection(("127.0.0.1", self.d.port), rcvbuf=4096)
                self.d.connections.append(slow)
                slow.send(build_request("GET", "/big.bin", headers))
                worker = list(self.d.wait_workers(1).values())[0]
                big = os.path.join(self.root, "big.bin")
                wait_until(lambda: big in (proc_fds(worker) or {}).values(), message="the worker to open big.bin")

                # Meanwhile another connection is served, whole and more than once.
                with self.d.connect() as c:
                    self.assertWhole(c.request("GET", "/plain.txt"), "plain.txt")
                    self.assertPartial(c.request("GET", "/plain.txt", {"Range": "bytes=1-2"}), "plain.txt", 1, 2)
                still_sending = big in (proc_fds(worker) or {}).values()
                if not still_sending:
                    self.skipTest("the socket buffers took the whole response: nothing was stalled")

                # The stalled download then completes, intact, and its connection goes on.
                r = slow.read_response()
                self.assertIn(r.status, (200, 206))
                self.assertEqual(len(r.body), len(expected))
                self.assertTrue(r.body == expected, "the large body differs")
                self.assertWhole(slow.request("GET", "/plain.txt"), "plain.txt")
                slow.close()

    def test_pipelined_requests_behind_a_stalled_response_survive_other_reads(self):
        # Requests read but not yet parsed while their connection waits on a full socket are its own: other
        # connections reading meanwhile (into the worker's one read buffer) must not touch them.
        data = self.file("big.bin")
        slow = HttpConnection(("127.0.0.1", self.d.port), rcvbuf=4096)
        self.d.connections.append(slow)
        slow.send(build_request("GET", "/big.bin") + build_request("GET", "/plain.txt") +
                  build_request("GET", "/style.css", {"Range": "bytes=0-3"}))
        worker = list(self.d.wait_workers(1).values())[0]
        big = os.path.join(self.root, "big.bin")
        wait_until(lambda: big in (proc_fds(worker) or {}).values(), message="the worker to open big.bin")
        for i in range(5):
            with self.d.connect() as c:
                c.send(build_request("GET", "/sub/") + build_request("GET", "/plain.txt", {"X-Filler": "z" * 3000}))
                self.assertEqual(c.read_response().status, 200)
                self.assertWhole(c.read_response(), "plain.txt")
        r = slow.read_response()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body == data, "the large body differs")
        self.assertWhole(slow.read_response(), "plain.txt")
        self.assertPartial(slow.read_response(), "style.css", 0, 3)
        slow.close()


class OpenFileCacheTest(DroverTestCase):
    """--open-file-cache-valid: within the window a file found is served as it was; after it, as it is now —
    changed, deleted or swapped for a symlink that leaves the root. One worker, so every request meets the
    same cache."""

    WINDOW = 0.2  # seconds; the tests wait longer than this, never assert anything about less

    def start_cached(self, window="200ms"):
        return self.start(workers=1, args=[f"--open-file-cache-valid={window}"])

    def replace(self, rel, data):
        """Replaces a file by rename, as editors and rsync do (a new inode)."""
        path = os.path.join(self.root, rel)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)

    def assertConsistent(self, r, expected_bodies):
        """A cached answer is one whole version of the file: its body, length and tag belong together."""
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.body, expected_bodies)
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))

    def test_changed_file_is_served_after_the_window(self):
        d = self.start_cached()
        old = self.file_data("plain.txt")
        for _ in range(3):  # the second and third come from the cache
            r = d.get("/plain.txt")
            self.assertEqual((r.status, r.body), (200, old))
        old_tag = r.header("ETag")
        new = b"a new version, longer than the old one\n" * 3
        self.replace("plain.txt", new)
        self.assertConsistent(d.get("/plain.txt"), (old, new))
        time.sleep(self.WINDOW * 2)
        r = d.get("/plain.txt")
        self.assertEqual((r.status, r.body), (200, new))
        self.assertEqual(r.header("Content-Length"), str(len(new)))
        self.assertNotEqual(r.header("ETag"), old_tag)
        # The old tag no longer validates anything; the new one does.
        self.assertEqual(d.get("/plain.txt", headers={"If-None-Match": old_tag}).status, 200)
        self.assertEqual(d.get("/plain.txt", headers={"If-None-Match": r.header("ETag")}).status, 304)

    def test_cached_heads_are_the_formatted_ones(self):
        # A plain 200 on a keep-alive HTTP/1.1 connection reuses the head formatted for its cache entry within
        # the second of its Date. A HEAD is always formatted afresh: within one second the two heads must be
        # the same bytes, and the next second must bring a new Date.
        d = self.start_cached(window="1h")
        body = self.file_data("plain.txt")
        c = d.connect()

        def same_second():
            for _ in range(20):  # each try takes far less than a second; a try that straddles one is retried
                first, cached, fresh = (c.request("GET", "/plain.txt"), c.request("GET", "/plain.txt"),
                                        c.request("HEAD", "/plain.txt"))
                if first.header("Date") == cached.header("Date") == fresh.header("Date"):
                    return first, cached, fresh
            self.fail("20 tries, each across a second boundary")

        first, cached, fresh = same_second()
        self.assertEqual((cached.status, cached.body, first.body), (200, body, body))
        self.assertEqual(cached.headers, fresh.headers)
        self.assertEqual(first.headers, fresh.headers)
        self.assertIsNone(cached.header("Connection"))
        date = cached.header("Date")
        time.sleep(1.1)
        first, cached, fresh = same_second()
        self.assertNotEqual(cached.header("Date"), date)
        self.assertEqual(cached.headers, fresh.headers)
        self.assertEqual(cached.body, body)
        # Not from that head: HTTP/1.0 keep-alive, and a request that closes.
        r = c.request("GET", "/plain.txt", headers={"Connection": "keep-alive"}, version="HTTP/1.0")
        self.assertEqual((r.version, r.header("Connection"), r.body), ("HTTP/1.0", "keep-alive", body))
        r = c.request("GET", "/plain.txt", headers={"Connection": "close"})
        self.assertEqual((r.header("Connection"), r.body), ("close", body))
        self.assertTrue(c.closed_by_peer())

    def test_in_place_rewrite_is_seen_after_the_window(self):
        # Same inode, same size: only the mtime (and ctime) tell.
        d = self.start_cached()
        path = os.path.join(self.root, "plain.txt")
        old = self.file_data("plain.txt")
        self.assertEqual(d.get("/plain.txt").body, old)
        with open(path, "r+b") as f:
            f.write(b"XXXXX")
        os.utime(path, ns=(FIXED_MTIME * 10**9 + 7, FIXED_MTIME * 10**9 + 7))
        time.sleep(self.WINDOW * 2)
        r = d.get("/plain.txt")
        self.assertEqual(r.body, b"XXXXX" + old[5:])

    def test_large_file_from_the_cached_fd(self):
        # Beyond the in-memory size: served from the cached descriptor, whole, ranged and after a change.
        d = self.start_cached()
        data = os.urandom(100 * 1024)
        self.replace("large.bin", data)
        for _ in range(2):
            r = d.get("/large.bin")
            self.assertTrue((r.status, r.body) == (200, data))
        r = d.get("/large.bin", headers={"Range": "bytes=50000-50009"})
        self.assertEqual((r.status, r.body), (206, data[50000:50010]))
        data2 = os.urandom(70 * 1024)
        self.replace("large.bin", data2)
        time.sleep(self.WINDOW * 2)
        r = d.get("/large.bin")
        self.assertTrue((r.status, r.body) == (200, data2))

    def test_cached_answers_match_uncached_ones(self):
        d = self.start_cached("1h")
        first = d.get("/style.css")
        for method, headers, status in (("GET", None, 200), ("HEAD", None, 200),
                                        ("GET", {"If-None-Match": first.header("ETag")}, 304),
                                        ("GET", {"Range": "bytes=2-5"}, 206)):
            with self.subTest(method=method, headers=headers):
                r = d.get("/style.css", method, headers)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.header("ETag"), first.header("ETag"))
                self.assertEqual(r.header("Last-Modified"), first.header("Last-Modified"))
                if status == 200:
                    self.assertEqual(r.header("Content-Type"), first.header("Content-Type"))
                    self.assertEqual(r.header("Accept-Ranges"), "bytes")
                    self.assertEqual(r.header("Content-Length"), first.header("Content-Length"))
                    self.assertEqual(r.body, first.body if method == "GET" else b"")
                if status == 206:
                    self.assertEqual(r.body, first.body[2:6])

    def test_deleted_file_is_404_after_the_window(self):
        d = self.start_cached()
        self.assertEqual(d.get("/plain.txt").status, 200)
        os.unlink(os.path.join(self.root, "plain.txt"))
        time.sleep(self.WINDOW * 2)
        self.assertEqual(d.get("/plain.txt").status, 404)

    def test_zero_looks_up_every_request(self):
        d = self.start(workers=1, args=["--open-file-cache-valid=0"])
        self.assertEqual(d.get("/plain.txt").body, self.file_data("plain.txt"))
        self.replace("plain.txt", b"changed\n")
        self.assertEqual(d.get("/plain.txt").body, b"changed\n")
        os.unlink(os.path.join(self.root, "plain.txt"))
        self.assertEqual(d.get("/plain.txt").status, 404)

    def test_symlink_swapped_in_to_escape_is_refused(self):
        d = self.start_cached()
        base = os.path.dirname(self.root)
        path = os.path.join(self.root, "swap.txt")
        with open(path, "wb") as f:
            f.write(b"inside\n")
        self.assertEqual(d.get("/swap.txt").body, b"inside\n")
        tmp = path + ".lnk"
        os.symlink(os.path.join(base, "secret.txt"), tmp)
        os.rename(tmp, path)
        # Within the window: the old file or a refusal, never what the link leads to.
        r = d.get("/swap.txt")
        self.assertNotIn(SECRET.encode(), r.body)
        time.sleep(self.WINDOW * 2)
        for _ in range(2):
            r = d.get("/swap.txt")
            self.assertEqual(r.status, 403, r)
            self.assertNotIn(SECRET.encode(), r.body)

    def test_option_errors(self):
        for value in ("-1", "abc", "500us", "2h"):
            with self.subTest(value=value):
                code, out, err = self.run_drover([f"--open-file-cache-valid={value}", f"--root={self.root}",
                                                  "--listen=127.0.0.1:1"])
                self.assertEqual(code, 78, err)  # EX_CONFIG, as for every invalid value
                self.assertIn(f"--open-file-cache-valid: invalid value '{value}': expected 0 (no cache) or a "
                              "duration from 1ms to 1h", err)
        conf = os.path.join(self.tmp, "cache.conf")
        with open(conf, "w") as f:
            f.write("open-file-cache-valid = soon\n")
        code, out, err = self.run_drover(["--check-config", f"--config={conf}", f"--root={self.root}"])
        self.assertEqual(code, 78, err)  # EX_CONFIG
        self.assertIn(f"{conf}:1: open-file-cache-valid: invalid value 'soon'", err)
        with open(conf, "w") as f:
            f.write("open-file-cache-valid = 250ms\n")
        self.assertEqual(self.run_drover(["--check-config", f"--config={conf}", f"--root={self.root}"])[:2],
                         (0, "ok\n"))

    def file_data(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def file(self, rel):
        return self.file_data(rel)


if __name__ == "__main__":
    main()
