#!/usr/bin/env python3
"""connect-at.py - open HTTP connections at precise moments (for system tests).

    connect-at.py PORT AT_USEC [--start-ms 0.5] [--step-ms 0.5] [--count 60] [--timeout 30]

At CLOCK_MONOTONIC time AT_USEC + start-ms (microseconds, the clock of the
journal's __MONOTONIC_TIMESTAMP; containers without a time namespace share
it), connects to 127.0.0.1:PORT, and again every step-ms, count times in
all; on each connection sends `GET / HTTP/1.1` with `Connection: close` and
reads the whole response.  Prints one line per connection, in order:

    SEND_USEC STATUS       e.g. "123456789 200", or
    SEND_USEC ERR:WHAT     e.g. "123456789 ERR:ECONNREFUSED" (refused, reset, closed early, timeout)

SEND_USEC is the monotonic time connect() was called.  Exits 0 when it
could carry out its plan (whatever the responses), 2 when AT_USEC was
already past.
"""
import argparse
import errno
import selectors
import socket
import sys
import time


def now_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("at_usec", type=int)
    ap.add_argument("--start-ms", type=float, default=0.5)
    ap.add_argument("--step-ms", type=float, default=0.5)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    first = a.at_usec + int(a.start_ms * 1000)
    if now_usec() > first - 20000:
        print(f"connect-at: the moment is past or too close (now {now_usec()}, first {first})", file=sys.stderr)
        return 2
    # Sleep until shortly before, then spin: sleep() alone is late by up to a few ms.
    time.sleep((first - now_usec() - 10000) / 1e6)

    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    sel = selectors.DefaultSelector()
    conns = []  # [send_usec, sock, state, data, result]

    def finish(c, result):
        c[4] = result
        try:
            sel.unregister(c[1])
        except (KeyError, ValueError):
            pass
        c[1].close()

    def on_event(c, mask):
        s = c[1]
        if c[2] == "connecting":
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return finish(c, "ERR:" + errno.errorcode.get(err, str(err)))
            try:
                s.sendall(request)
            except OSError as e:
                return finish(c, "ERR:send-" + errno.errorcode.get(e.errno, str(e.errno)))
            c[2] = "reading"
            sel.modify(s, selectors.EVENT_READ, c)
            return
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            return finish(c, "ERR:recv-" + errno.errorcode.get(e.errno, str(e.errno)))
        if chunk:
            c[3] += chunk
            return
        # EOF: the server closed; a complete response has a status line and headers.
        head = bytes(c[3]).split(b"\r\n", 1)[0].split()
        if len(head) >= 2 and head[0].startswith(b"HTTP/") and b"\r\n\r\n" in c[3]:
            finish(c, head[1].decode())
        else:
            finish(c, "ERR:closed-without-response(%d bytes)" % len(c[3]))

    def poll(timeout):
        for key, mask in sel.select(timeout):
            on_event(key.data, mask)

    for i in range(a.count):
        t = first + int(i * a.step_ms * 1000)
        while now_usec() < t:
            poll(0)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        c = [now_usec(), s, "connecting", bytearray(), None]
        conns.append(c)
        r = s.connect_ex(("127.0.0.1", a.port))
        if r not in (0, errno.EINPROGRESS):
            finish(c, "ERR:" + errno.errorcode.get(r, str(r)))
            continue
        sel.register(s, selectors.EVENT_WRITE, c)

    deadline = time.monotonic() + a.timeout
    while any(c[4] is None for c in conns) and time.monotonic() < deadline:
        poll(0.1)
    for c in conns:
        if c[4] is None:
            finish(c, "ERR:timeout")
        print(c[0], c[4])
    return 0


if __name__ == "__main__":
    sys.exit(main())
