# SPDX-License-Identifier: MIT
"""Start-up order (src/supervisor/supervisor.c, slots_start_rest): the first worker starts alone and the
others once it is ready, so that under socket activation the client that started the service is served
without the other workers' start competing for the CPU. Checked by the order of the supervisor's own log
lines, not by any timing."""

import re

import drover_test as dt


class ColdStart(dt.DroverTestCase):
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


if __name__ == "__main__":
    dt.main()
