# SPDX-License-Identifier: MIT
"""drover started the way systemd starts it: by systemd-socket-activate, which listens, and on the first
connection execs drover with the socket at fd 3 and LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES
(src/supervisor/sockets.c, spawn.c)."""

import os
import signal
import socket

from drover_test import (EX_CONFIG, DroverTestCase, HttpConnection, build_request, listening_inodes, main,
                         proc_alive, proc_cmdline, proc_environ, proc_fds, socket_inode, wait_until,
                         free_port)


class SocketActivationTest(DroverTestCase):

    def first_request(self, d, index=0, path="/plain.txt"):
        """The connection that starts drover; it must be served, not dropped."""
        c = HttpConnection(("127.0.0.1", d.ports[index]))
        d.connections.append(c)
        c.send(build_request("GET", path))
        return c, c.read_response()

    def test_first_connection_is_served(self):
        d = self.start_activated(workers=2)
        cmd = proc_cmdline(d.pid)
        self.assertIn("systemd-socket-activate", cmd[0], "test setup: nothing of drover runs yet")
        self.assertEqual(d.workers(), {})
        c, r = self.first_request(d)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"plain text file\n")
        self.assertEqual(c.request("GET", "/style.css").status, 200, "and the connection is kept")
        ready = d.wait_ready()
        self.assertTrue(ready.fields.get("STATUS", "").startswith("Ready: 2/2 workers, "), ready)
        self.assertEqual(ready.pid, d.pid, "drover runs in place of systemd-socket-activate")
        self.assertIn("--workers=2", proc_cmdline(d.pid))
        # The supervisor binds nothing itself: the only listening socket on the port is systemd's.
        self.assertEqual(len(listening_inodes(d.port)), 1)

    def test_workers_get_their_own_listen_pid(self):
        d = self.start_activated(workers=3)
        self.first_request(d)
        d.wait_ready()
        sup_fd3 = socket_inode(proc_fds(d.pid).get(3))
        self.assertIn(sup_fd3, listening_inodes(d.port), "test setup: the supervisor got the socket at fd 3")
        workers = d.wait_workers(3)
        self.assertEqual(sorted(workers), [0, 1, 2])
        for slot, pid in workers.items():
            with self.subTest(slot=slot):
                self.assertWorkerLooksSpawned(d, slot, pid, n_sockets=1, fdnames="http")
                self.assertEqual(socket_inode(proc_fds(pid).get(3)), sup_fd3, "the same socket at fd 3")
        self.assertEqual(len({proc_environ(p)["LISTEN_PID"] for p in workers.values()}), 3)
        for _ in range(6):
            self.assertEqual(d.get("/plain.txt").status, 200)

    def test_two_sockets(self):
        d = self.start_activated(workers=2, ports=2, fdnames="http:http")
        self.first_request(d, index=1)
        d.wait_ready()
        for slot, pid in d.wait_workers(2).items():
            with self.subTest(slot=slot):
                self.assertWorkerLooksSpawned(d, slot, pid, n_sockets=2, fdnames="http:http")
                fds = proc_fds(pid)
                self.assertIn(socket_inode(fds.get(3)), listening_inodes(d.ports[0]))
                self.assertIn(socket_inode(fds.get(4)), listening_inodes(d.ports[1]))
        for i in range(2):
            self.assertEqual(d.get("/plain.txt", index=i).status, 200)

    def test_unnamed_socket_defaults_to_http(self):
        d = self.start_activated(workers=1, fdnames=None)
        c, r = self.first_request(d)
        self.assertEqual(r.status, 200)
        d.wait_ready()
        pid = d.wait_workers(1)[0]
        # Passed on as systemd's library reports it; the worker takes an unknown name to mean http.
        self.assertWorkerLooksSpawned(d, 0, pid, n_sockets=1, fdnames="unknown")

    def test_listen_option_is_ignored_under_activation(self):
        other = free_port()
        d = self.start_activated(workers=1, args=[f"--listen=127.0.0.1:{other}"])
        c, r = self.first_request(d)
        self.assertEqual(r.status, 200)
        d.wait_ready()
        self.assertNotListening(other, "--listen is not bound when systemd passed sockets")
        d.wait_log(r"ignoring --listen")

    def test_socket_named_scgi_speaks_scgi(self):
        d = self.start_activated(workers=1, fdnames="scgi")
        block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_METHOD\x00GET\x00REQUEST_URI\x00/plain.txt\x00"
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            s.sendall(str(len(block)).encode() + b":" + block + b",")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        self.assertTrue(data.startswith(b"Status: 200 OK\r\n"), data[:80])
        self.assertTrue(data.endswith(b"\r\n\r\nplain text file\n"), data)
        pid = d.wait_workers(1)[0]
        self.assertWorkerLooksSpawned(d, 0, pid, n_sockets=1, fdnames="scgi")

    def test_datagram_socket_is_rejected(self):
        d = self.start_activated(workers=1, datagram=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"hello", ("127.0.0.1", d.port))
            self.assertEqual(d.wait_exit(), EX_CONFIG, d.log())
        self.assertRegex(d.log(), r"not a listening stream socket")

    def test_sigterm_under_activation(self):
        d = self.start_activated(workers=2)
        self.first_request(d)
        d.wait_ready()
        workers = d.wait_workers(2)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0, d.log())
        d.notify.wait_for(lambda m: m.has("STOPPING=1"), what="STOPPING=1")
        for pid in workers.values():
            wait_until(lambda: not proc_alive(pid), message=f"worker {pid} to be gone")
        self.assertNotListening(d.port, "the socket went with the process that held it")

    def test_killed_worker_is_replaced_under_activation(self):
        d = self.start_activated(workers=1)
        self.first_request(d)
        d.wait_ready()
        old = d.wait_workers(1)[0]
        os.kill(old, signal.SIGKILL)
        new = wait_until(lambda: (lambda w: w.get(0) if w.get(0) not in (None, old) else None)(d.workers()),
                         message="a replacement worker")
        self.assertWorkerLooksSpawned(d, 0, new)
        self.assertEqual(d.get("/plain.txt").status, 200)


if __name__ == "__main__":
    main()
