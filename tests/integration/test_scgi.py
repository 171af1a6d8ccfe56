#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
SCGI: drover behind a real frontend (Debian's nginx, started by the test with scgi_pass to drover's SCGI
socket), serving a static file and a module response end to end; and raw SCGI requests, well-formed and not.
"""

import json
import os
import shutil
import socket
import subprocess
import time

from drover_test import WAIT, DroverTestCase, HttpConnection, free_port, main, wait_until

BUILD = os.environ.get("DROVER_BUILD_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
ECHO = os.path.join(BUILD, "examples", "echo.so")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
SCGI_PARAMS = "/etc/nginx/scgi_params"


def netstring_request(headers, body=b""):
    """An SCGI request: headers is a list of (name, value); CONTENT_LENGTH is added first unless present."""
    if not any(k == "CONTENT_LENGTH" for k, _ in headers):
        headers = [("CONTENT_LENGTH", str(len(body)))] + list(headers)
    block = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in headers)
    return str(len(block)).encode() + b":" + block + b"," + body


def parse_cgi_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers, body


class ScgiTestCase(DroverTestCase):

    def start_scgi(self, args=()):
        sock = os.path.join(self.tmp, "scgi.sock")
        d = self.start(workers=2, listen=["127.0.0.1:{port}", f"scgi:{sock}"], args=list(args))
        d.scgi_path = sock
        return d

    def scgi(self, d, request):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(WAIT)
            s.connect(d.scgi_path)
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk


class RawScgiTest(ScgiTestCase):

    def test_static_file_over_scgi(self):
        d = self.start_scgi()
        data = self.scgi(d, netstring_request([("SCGI", "1"), ("REQUEST_METHOD", "GET"),
                                               ("REQUEST_URI", "/plain.txt"), ("REMOTE_ADDR", "10.1.2.3")]))
        headers, body = parse_cgi_response(data)
        self.assertEqual(headers["status"], "200 OK")
        self.assertEqual(headers["content-length"], "16")
        self.assertEqual(body, b"plain text file\n")
        self.assertTrue(data.startswith(b"Status: 200 OK\r\n"), data[:60])

    def test_module_over_scgi(self):
        d = self.start_scgi([f"--handler=/echo={ECHO}"])
        data = self.scgi(d, netstring_request(
            [("SCGI", "1"), ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo/a%20b?q=1"),
             ("QUERY_STRING", "q=1"), ("REMOTE_ADDR", "192.0.2.7"), ("CONTENT_TYPE", "text/plain"),
             ("HTTP_USER_AGENT", "test/1.0"), ("HTTP_X_MULTI_WORD", "yes"), ("SERVER_NAME", "example")],
            b"payload"))
        headers, body = parse_cgi_response(data)
        self.assertEqual(headers["status"], "200 OK")
        j = json.loads(body)
        self.assertEqual(j["protocol"], "SCGI")
        self.assertEqual(j["method"], "POST")
        self.assertEqual(j["path"], "/echo/a b")
        self.assertEqual(j["query"], "q=1")
        self.assertEqual(j["remote_address"], "192.0.2.7")
        self.assertEqual(j["body"], "payload")
        names = {k: v for k, v in j["headers"]}
        self.assertEqual(names.get("user-agent"), "test/1.0")
        self.assertEqual(names.get("x-multi-word"), "yes")
        self.assertEqual(names.get("content-type"), "text/plain")
        self.assertEqual(names.get("content-length"), "7")
        self.assertNotIn("server-name", names, "frontend variables are not client headers")

    def test_not_found_and_method(self):
        d = self.start_scgi()
        base = [("SCGI", "1"), ("REQUEST_METHOD", "GET")]
        headers, _ = parse_cgi_response(self.scgi(d, netstring_request(base + [("REQUEST_URI", "/nope")])))
        self.assertEqual(headers["status"], "404 Not Found")
        headers, _ = parse_cgi_response(self.scgi(d, netstring_request(
            [("SCGI", "1"), ("REQUEST_METHOD", "DELETE"), ("REQUEST_URI", "/plain.txt")])))
        self.assertEqual(headers["status"], "405 Method Not Allowed")
        headers, body = parse_cgi_response(self.scgi(d, netstring_request(
            [("SCGI", "1"), ("REQUEST_METHOD", "HEAD"), ("REQUEST_URI", "/plain.txt")])))
        self.assertEqual(headers["status"], "200 OK")
        self.assertEqual(headers["content-length"], "16")
        self.assertEqual(body, b"")

    def test_malformed_requests_get_400_and_the_worker_serves_on(self):
        d = self.start_scgi([f"--max-body-size=8"])
        cases = [
            (b"abc:xyz,", "400"),                                            # length not a number
            (b"5:CONTE,", "400"),                                            # truncated block
            (netstring_request([("SCGI", "1")]).replace(b",", b";", 1), "400"),  # no comma
            (b"24:SCGI\x001\x00CONTENT_LENGTH\x000\x00,", "400"),            # CONTENT_LENGTH not first
            (netstring_request([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")]), "400"),  # no SCGI=1
            (netstring_request([("SCGI", "2"), ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")]), "400"),
            (netstring_request([("SCGI", "1"), ("SCGI", "1"), ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")]),
             "400"),                                                          # duplicate name
            (netstring_request([("SCGI", "1"), ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/")], b"x" * 9),
             "413"),                                                          # body over --max-body-size
            (b"99999999999999999999:", "4"),                                 # absurd length
        ]
        for req, status in cases:
            with self.subTest(req=req[:40]):
                data = self.scgi(d, req)
                self.assertTrue(data.startswith(b"Status: " + status.encode()), data[:80])
        # Still serving.
        headers, body = parse_cgi_response(self.scgi(d, netstring_request(
            [("SCGI", "1"), ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/plain.txt")])))
        self.assertEqual(body, b"plain text file\n")
        self.assertEqual(len(d.workers()), 2)

    def test_http_and_scgi_side_by_side(self):
        d = self.start_scgi()
        self.assertEqual(d.get("/plain.txt").body, b"plain text file\n")
        _, body = parse_cgi_response(self.scgi(d, netstring_request(
            [("SCGI", "1"), ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/plain.txt")])))
        self.assertEqual(body, b"plain text file\n")


class NginxFrontendTest(ScgiTestCase):

    def setUp(self):
        super().setUp()
        if not NGINX or not os.path.exists(SCGI_PARAMS):
            self.skipTest("nginx is not installed")

    def start_nginx(self, scgi_sock):
        port = free_port()
        prefix = os.path.join(self.tmp, "nginx")
        os.makedirs(os.path.join(prefix, "logs"))
        conf = os.path.join(prefix, "nginx.conf")
        user = "user root;" if os.geteuid() == 0 else ""
        with open(conf, "w") as f:
            f.write(f"""
{user}
worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {SCGI_PARAMS};
            scgi_pass unix:{scgi_sock};
        }}
    }}
}}
""")
        p = subprocess.Popen([NGINX, "-p", prefix, "-c", conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            p.terminate()
            try:
                p.wait(WAIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        wait_until(lambda: p.poll() is not None or self.port_open(port), message="nginx to listen")
        if p.poll() is not None:
            with open(os.path.join(prefix, "logs", "error.log")) as f:
                raise AssertionError(f"nginx exited with {p.returncode}:\n{f.read()}")
        return port

    @staticmethod
    def port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def test_nginx_serves_static_files_and_modules_through_drover(self):
        d = self.start_scgi([f"--handler=/echo={ECHO}"])
        port = self.start_nginx(d.scgi_path)
        with HttpConnection(("127.0.0.1", port)) as c:
            r = c.request("GET", "/plain.txt")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"plain text file\n")
            self.assertEqual(r.header("Content-Type"), "text/plain")

            r = c.request("POST", "/echo/p%20q?x=1", {"X-Client": "abc", "Content-Type": "application/x-test"},
                          b"body bytes")
            self.assertEqual(r.status, 200, r)
            j = json.loads(r.body)
            self.assertEqual(j["protocol"], "SCGI")
            self.assertEqual(j["method"], "POST")
            self.assertEqual(j["path"], "/echo/p q")
            self.assertEqual(j["query"], "x=1")
            self.assertEqual(j["body"], "body bytes")
            self.assertEqual(j["remote_address"], "127.0.0.1")
            names = {k: v for k, v in j["headers"]}
            self.assertEqual(names.get("x-client"), "abc")
            self.assertEqual(names.get("content-type"), "application/x-test")

            r = c.request("GET", "/missing.txt")
            self.assertEqual(r.status, 404)

            big = c.request("GET", "/big.bin")
            self.assertEqual(big.status, 200)
            with open(os.path.join(self.root, "big.bin"), "rb") as f:
                self.assertEqual(big.body, f.read())


if __name__ == "__main__":
    main()
