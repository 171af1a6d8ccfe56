# SPDX-License-Identifier: MIT
"""The workers' HTTP/1.1 path (src/worker/, src/proto/http.c, src/handlers/): the static handler over a
document root, status codes, headers, keep-alive, pipelining and malformed input, all over raw sockets."""

import email.utils
import os
import socket
import threading
import time

from drover_test import (DOC_FILES, HTTP_DATE_RE, SECRET, DroverTestCase, HttpConnection, build_request,
                         http_date, main, mime_expected)


class HttpTestCase(DroverTestCase):
    """A pool of two workers over a fresh document root for every test."""

    def setUp(self):
        super().setUp()
        self.d = self.start(workers=2)

    def get(self, path, method="GET", headers=None, body=b""):
        return self.d.get(path, method, headers, body)

    def file(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def assertServesFile(self, r, rel, content_type=None):
        data = self.file(rel)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("Content-Length"), str(len(data)))
        self.assertEqual(r.header("Content-Type"), content_type or mime_expected(rel))
        self.assertEqual(r.header("Last-Modified"), http_date(os.stat(os.path.join(self.root, rel)).st_mtime))
        self.assertRegex(r.header("Date") or "", HTTP_DATE_RE)

    def assertErrorResponse(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))
        self.assertRegex(r.header("Date") or "", HTTP_DATE_RE)
        self.assertNotIn(SECRET.encode(), r.body)


class StaticFilesTest(HttpTestCase):

    def test_files_of_several_types(self):
        for rel in sorted(DOC_FILES):
            if "/" in rel:
                continue
            with self.subTest(file=rel):
                r = self.get("/" + rel.replace(" ", "%20"))
                self.assertServesFile(r, rel)
                self.assertEqual(r.header("Last-Modified"), "Thu, 04 Mar 2021 05:06:07 GMT")

    def test_content_types(self):
        # Spelled out for the common cases, so that a broken /etc/mime.types lookup cannot hide behind the
        # test's own reading of the same file.
        expected = {
            "/plain.txt": "text/plain",
            "/UPPER.TXT": "text/plain",
            "/index.html": "text/html",
            "/style.css": "text/css",
            "/data.json": "application/json",
            "/image.png": "image/png",
            "/vector.svg": "image/svg+xml",
            "/noextension": "application/octet-stream",
            "/unknown.zzqx": "application/octet-stream",
            "/": "text/html",
        }
        for path, ctype in expected.items():
            with self.subTest(path=path):
                self.assertEqual(mime_expected(path.strip("/") or "index.html"), ctype,
                                 "test setup: /etc/mime.types agrees")
                self.assertEqual(self.get(path).header("Content-Type"), ctype)

    def test_empty_file(self):
        r = self.get("/empty.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "0")
        self.assertEqual(r.body, b"")

    def test_large_file(self):
        r = self.get("/big.bin")
        self.assertServesFile(r, "big.bin")

    def test_large_file_to_a_slow_reader(self):
        # A small receive buffer and a late start: the worker's sendfile() runs into a full socket and must
        # resume on EPOLLOUT, then go on with the connection.
        data = self.file("big.bin")
        c = HttpConnection(("127.0.0.1", self.d.port), rcvbuf=65536)
        self.d.connections.append(c)
        c.send(build_request("GET", "/big.bin"))
        time.sleep(0.3)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), len(data))
        self.assertTrue(r.body == data, "body differs")
        self.assertServesFile(c.request("GET", "/plain.txt"), "plain.txt")

    def test_head(self):
        with self.d.connect() as c:
            get = c.request("GET", "/style.css")
            head = c.request("HEAD", "/style.css")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")
            for h in ("Content-Type", "Content-Length", "Last-Modified"):
                self.assertEqual(head.header(h), get.header(h), h)
            self.assertRegex(head.header("Date"), HTTP_DATE_RE)
            # No body followed the HEAD response: the next response starts right away.
            self.assertServesFile(c.request("GET", "/plain.txt"), "plain.txt")

    def test_head_of_errors_has_no_body(self):
        with self.d.connect() as c:
            for path, status in (("/missing", 404), ("/noindex/", 403), ("/sub", 301)):
                with self.subTest(path=path):
                    r = c.request("HEAD", path)
                    self.assertEqual(r.status, status)
                    self.assertEqual(r.body, b"")
            self.assertServesFile(c.request("GET", "/plain.txt"), "plain.txt")

    def test_query_string_and_fragment_are_not_part_of_the_path(self):
        self.assertServesFile(self.get("/plain.txt?x=1&y=/../../etc/passwd"), "plain.txt")

    def test_percent_encoded_path(self):
        self.assertServesFile(self.get("/with%20space.txt"), "with space.txt")
        self.assertServesFile(self.get("/%70lain.txt"), "plain.txt")

    def test_absolute_form_target(self):
        self.assertServesFile(self.get("http://localhost/plain.txt"), "plain.txt")

    def test_symlink_inside_the_root_is_served(self):
        r = self.get("/link.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.file("plain.txt"))

    def test_date_is_current(self):
        r1 = self.get("/plain.txt")
        before = email.utils.parsedate_to_datetime(r1.header("Date")).timestamp()
        time.sleep(1.1)
        r2 = self.get("/plain.txt")
        after = email.utils.parsedate_to_datetime(r2.header("Date")).timestamp()
        self.assertGreater(after, before, "the Date header advances")


class StatusCodesTest(HttpTestCase):

    def test_missing_is_404(self):
        for path in ("/missing", "/missing.html", "/sub/missing", "/plain.txt/extra", "/missing/"):
            with self.subTest(path=path):
                self.assertErrorResponse(self.get(path), 404)

    def test_other_methods_are_405(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                r = self.get("/plain.txt", method=method, body=b"x=1" if method in ("POST", "PUT") else b"")
                self.assertErrorResponse(r, 405)
                self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_405_keeps_the_connection_and_skips_the_body(self):
        with self.d.connect() as c:
            r = c.request("POST", "/plain.txt", body=b"GET /evil HTTP/1.1\r\n\r\n")
            self.assertEqual(r.status, 405)
            chunked = (b"POST /plain.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\n\r\n")
            c.send(chunked)
            self.assertEqual(c.read_response().status, 405)
            self.assertServesFile(c.request("GET", "/plain.txt"), "plain.txt")

    def test_directory_without_slash_redirects(self):
        for path, location in (("/sub", "/sub/"), ("/noindex", "/noindex/"),
                               ("/dir%20with%20space", "/dir%20with%20space/")):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertErrorResponse(r, 301)
                self.assertEqual(r.header("Location"), location)

    def test_directory_index(self):
        self.assertServesFile(self.get("/"), "index.html", "text/html")
        self.assertServesFile(self.get("/sub/"), "sub/index.html", "text/html")
        self.assertServesFile(self.get("/dir%20with%20space/"), "dir with space/index.html", "text/html")

    def test_directory_without_index_is_403(self):
        self.assertErrorResponse(self.get("/noindex/"), 403)
        self.assertServesFile(self.get("/noindex/file.txt"), "noindex/file.txt")

    def test_fifo_is_403_without_blocking(self):
        self.assertErrorResponse(self.get("/fifo"), 403)
        self.assertEqual(self.get("/plain.txt").status, 200)

    def test_traversal_is_403(self):
        for path in ("/../etc/passwd", "/%2e%2e/etc/passwd", "/%2E%2E%2Fetc%2Fpasswd", "/sub/../../etc/passwd",
                     "/..%2f..%2f..%2fetc/passwd", "/../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
                     "http://localhost/../secret.txt"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertErrorResponse(r, 403)
                self.assertNotIn(b"root:", r.body)

    def test_symlinks_leading_out_of_the_root_are_403(self):
        for path in ("/escape.txt", "/abs-escape.txt", "/passwd", "/outdir/secret.txt", "/outdir/"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertErrorResponse(r, 403)
                self.assertNotIn(b"root:", r.body)

    def test_double_slash_stays_in_the_root(self):
        r = self.get("//etc/passwd")
        self.assertErrorResponse(r, 404)
        self.assertNotIn(b"root:", r.body)

    def test_nul_and_bad_escapes_are_400(self):
        for path in ("/plain.txt%00.html", "/%zz", "/plain.txt%2"):
            with self.subTest(path=path):
                with self.d.connect() as c:
                    r = c.request("GET", path)
                    self.assertErrorResponse(r, 400)
                    self.assertEqual(r.header("Connection"), "close")
                    self.assertTrue(c.closed_by_peer())


class ConnectionTest(HttpTestCase):

    def test_http11_keeps_alive_by_default(self):
        with self.d.connect() as c:
            for _ in range(3):
                r = c.request("GET", "/plain.txt")
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.header("Connection"))
            self.assertTrue(c.still_open())
            self.assertEqual(c.request("GET", "/missing").status, 404, "errors keep the connection too")
            self.assertEqual(c.request("GET", "/plain.txt").status, 200)

    def test_connection_close_is_honoured_and_echoed(self):
        for value in ("close", "Close"):
            with self.subTest(value=value):
                with self.d.connect() as c:
                    r = c.request("GET", "/plain.txt", headers={"Connection": value})
                    self.assertServesFile(r, "plain.txt")
                    self.assertEqual(r.header("Connection"), "close")
                    self.assertTrue(c.closed_by_peer())

    def test_host_header_is_required_once_in_http11(self):
        # RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, or with more than one.
        for name, raw in (("no Host", b"GET /plain.txt HTTP/1.1\r\nAccept: */*\r\n\r\n"),
                          ("two Hosts", b"GET /plain.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")):
            with self.subTest(case=name):
                with self.d.connect() as c:
                    c.send(raw)
                    r = c.read_response()
                    self.assertErrorResponse(r, 400)
                    self.assertEqual(r.header("Connection"), "close")
                    self.assertTrue(c.closed_by_peer())
        # HTTP/1.0 has no such requirement.
        with self.d.connect() as c:
            c.send(b"GET /plain.txt HTTP/1.0\r\n\r\n")
            self.assertServesFile(c.read_response(), "plain.txt")

    def test_http10_closes_by_default(self):
        with self.d.connect() as c:
            r = c.request("GET", "/plain.txt", version="HTTP/1.0")
            self.assertEqual(r.version, "HTTP/1.0")
            self.assertServesFile(r, "plain.txt")
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_http10_keep_alive(self):
        with self.d.connect() as c:
            for _ in range(2):
                r = c.request("GET", "/plain.txt", headers={"Connection": "keep-alive"}, version="HTTP/1.0")
                self.assertServesFile(r, "plain.txt")
                self.assertEqual(r.header("Connection"), "keep-alive")
            r = c.request("GET", "/plain.txt", version="HTTP/1.0")
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_pipelined_requests_are_answered_in_order(self):
        with self.d.connect() as c:
            c.send(build_request("GET", "/plain.txt") + build_request("HEAD", "/style.css") +
                   build_request("GET", "/missing") + build_request("GET", "/data.json") +
                   build_request("POST", "/plain.txt", body=b"abc") + build_request("GET", "/sub") +
                   build_request("GET", "/sub/", headers={"Connection": "close"}))
            self.assertServesFile(c.read_response(), "plain.txt")
            r = c.read_response(head=True)
            self.assertEqual((r.status, r.header("Content-Type")), (200, "text/css"))
            self.assertEqual(c.read_response().status, 404)
            self.assertServesFile(c.read_response(), "data.json")
            self.assertEqual(c.read_response().status, 405)
            self.assertEqual(c.read_response().header("Location"), "/sub/")
            r = c.read_response()
            self.assertServesFile(r, "sub/index.html", "text/html")
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_many_pipelined_requests_beyond_one_read_buffer(self):
        names = ["plain.txt", "style.css", "app.js", "data.json", "vector.svg"]
        reqs = [build_request("GET", "/" + names[i % len(names)], headers={"X-Pad": "p" * (i % 37)})
                for i in range(200)]
        with self.d.connect() as c:
            c.send(b"".join(reqs))
            for i in range(200):
                self.assertServesFile(c.read_response(), names[i % len(names)])
            self.assertTrue(c.still_open())

    def test_request_split_into_single_bytes(self):
        with self.d.connect() as c:
            for b in build_request("GET", "/plain.txt", headers={"Accept": "*/*"}):
                c.send(bytes([b]))
            self.assertServesFile(c.read_response(), "plain.txt")

    def test_body_of_a_get_is_not_taken_for_a_request(self):
        with self.d.connect() as c:
            r = c.request("GET", "/plain.txt", body=b"GET /missing HTTP/1.1\r\n\r\n")
            self.assertServesFile(r, "plain.txt")
            self.assertServesFile(c.request("GET", "/style.css"), "style.css")

    def test_concurrent_connections(self):
        n = 32
        results = [None] * n
        errors = []

        def client(i):
            try:
                with HttpConnection(("127.0.0.1", self.d.port)) as c:
                    results[i] = [c.request("GET", p).status for p in ("/plain.txt", "/big.bin", "/missing")]
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(results, [[200, 200, 404]] * n)


class MalformedRequestTest(HttpTestCase):

    def assertRejected(self, raw, status=400):
        with self.d.connect() as c:
            c.send(raw + build_request("GET", "/plain.txt"))  # a request after it must not be answered
            r = c.read_response()
            self.assertErrorResponse(r, status)
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer(), "the connection is closed after the error")
        self.assertEqual(self.get("/plain.txt").status, 200, "the worker carries on")

    def test_malformed_requests_are_400(self):
        cases = {
            "header without colon": b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
            "space before colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "bad version": b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
            "two content lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "content length and chunked": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            "bad content length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            "bad chunk size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "control character in target": b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for name, raw in cases.items():
            with self.subTest(case=name):
                self.assertRejected(raw, 400)

    def test_unknown_method_is_rejected(self):
        with self.d.connect() as c:
            c.send(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            self.assertIn(r.status, (400, 405, 501))
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_binary_garbage_is_rejected(self):
        with self.d.connect() as c:
            c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)) + b"\r\n\r\n")
            r = c.read_response()
            self.assertGreaterEqual(r.status, 400)
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_request_line_without_version_is_rejected(self):
        # HTTP/0.9-style: the parser reads it as version 0.9, which is not supported (505); 400 would do too.
        with self.d.connect() as c:
            c.send(b"GET /plain.txt\r\n\r\n")
            r = c.read_response()
            self.assertIn(r.status, (400, 505))
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_http2_version_is_505(self):
        self.assertRejected(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505)

    def test_too_long_target_is_414(self):
        self.assertRejected(build_request("GET", "/" + "a" * 9000), 414)

    def test_too_large_header_is_431(self):
        self.assertRejected(build_request("GET", "/plain.txt", headers={"X-Big": "b" * 20000}), 431)

    def test_too_many_headers_is_431(self):
        self.assertRejected(build_request("GET", "/plain.txt", headers=[(f"X-H{i}", "v") for i in range(150)]),
                            431)

    def test_error_after_a_good_request_on_the_same_connection(self):
        with self.d.connect() as c:
            self.assertEqual(c.request("GET", "/plain.txt").status, 200)
            c.send(b"GET / HTTP/1.1\r\nBroken Header\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())

    def test_request_then_half_close(self):
        # A client that sends its request and shuts down its side (nc -N, some HTTP/1.0 clients, health
        # checks) gets the response and then the end of the connection: the server has seen the EOF.
        with self.d.connect() as c:
            c.send(build_request("GET", "/plain.txt"))
            c.sock.shutdown(socket.SHUT_WR)
            self.assertServesFile(c.read_response(), "plain.txt")
            self.assertTrue(c.closed_by_peer(), "closed once the response is out: the client has gone")

    def test_half_a_request_then_half_close(self):
        with self.d.connect() as c:
            c.send(b"GET /plain.txt HTTP/1.1\r\nHost: x\r\n")
            c.sock.shutdown(socket.SHUT_WR)
            # Nothing can be answered: the server closes (after a 400 at most) instead of holding on.
            closed, data = c.read_until_close()
            if data:
                self.assertRegex(data, rb"^HTTP/1\.1 400 ", "at most a 400")
            self.assertTrue(closed, "closed: the request can never be completed")
        self.assertEqual(self.get("/plain.txt").status, 200)

    # A request stalled mid-header gets 408 after HEADER_TIMEOUT_MS (30 s): too slow for this suite.


if __name__ == "__main__":
    main()
