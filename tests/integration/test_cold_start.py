# SPDX-License-Identifier: MIT
"""Start-up order (src/supervisor/supervisor.c, slots_start_rest): the first worker starts alone and the
others once it is ready, so that under socket activation the client that started the service is served
without the other workers' start competing for the CPU; and a worker says READY=1 only after one pass over
the connections already waiting (src/worker/worker.c, worker_main), so that this client is answered before
the rest of the pool starts. Checked by the order of the lines in the shared log, not by any timing."""

import re

import drover_test as dt
import test_modules
import test_pool_lifecycle


class ColdStart(test_pool_lifecycle.LifecycleTestCase, test_modules.ModuleTestCase):
    def check_order(self, inst, workers):
        inst.wait_workers(workers)
        log = inst.wait_log(rf"worker {workers - 1}: process \d+ ready").string
        first_ready = re.search(r"worker 0: process \d+ ready", log)
        self.assertIsNotNone(first_ready, log)
        for slot in range(1, workers):
            started = re.search(rf"worker {slot}: started as process \d+", log)
            self.assertIsNotNone(started, log)
            self.assertLess(first_ready.start(), started.start(),
                            f"worker {slot} started before worker 0 was ready:\n{log}")

    def test_first_worker_starts_alone(self):
        self.check_order(self.start(workers=3), 3)

    def test_socket_activated_first_connection_is_served_by_the_first_worker(self):
        inst = self.start_activated(workers=2)
        response = inst.get("/plain.txt")
        self.assertEqual(response.status, 200)
        self.check_order(inst, 2)

    def test_connection_waiting_at_start_is_served_before_ready(self):
        if dt.ACCEPT == "dispatch":
            self.skipTest("a dispatch worker is handed connections once it is ready")
        # The handler says on the shared stderr that it served, after a pause that lets a worker that had said
        # READY=1 first (the regression) be overtaken by the supervisor's "ready" line.
        module = self.build_module("served", handle='usleep(100000); dprintf(2, "test module: served %.*s\\n", '
                                                    '(int) n, path); return drover_response_write(resp, "ok\\n", 3);')
        sock = self.listening_socket()
        # Connected and the request sent before drover starts: waiting in the backlog, as under socket activation.
        with dt.HttpConnection(sock.getsockname()) as c:
            c.send(dt.build_request("GET", "/served/first", {"Connection": "close"}))
            inst = self.start_with_socket(sock, workers=2, args=[f"--handler=/served={module}"])
            response = c.read_response()
        self.assertEqual((response.status, response.body), (200, b"ok\n"))
        log = inst.wait_log(r"worker 1: process \d+ ready").string
        served = log.find("test module: served /served/first")
        first_ready = re.search(r"worker 0: process \d+ ready", log)
        self.assertGreaterEqual(served, 0, log)
        self.assertLess(served, first_ready.start(), f"served after the worker said READY=1:\n{log}")
        self.check_order(inst, 2)


if __name__ == "__main__":
    dt.main()
