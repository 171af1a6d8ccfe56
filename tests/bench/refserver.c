/* SPDX-License-Identifier: MIT */
/*
 * refserver: the benchmark's floor. The least an HTTP/1.1 request can cost on this machine: N forked
 * processes share one listening socket; each builds its own epoll after the fork, waits on the listener with
 * EPOLLEXCLUSIVE, accepts in batches, and answers every request (every "\r\n\r\n" seen, so pipelined
 * requests work) with a fixed response: 100 KiB (head, then sendfile() of a memfd: no copy on our side) when
 * the request line asks for a path starting "/100k", else 1 KiB in one send(). A request carrying
 * "Connection: close" is answered and the connection closed. That is all it looks at: no parsing, no files,
 * no timeouts, no logging, no epoll_ctl() unless the interest really changes — nothing but the syscalls that
 * any server has to make, so that every workload of the benchmark has its floor.
 *
 * It looks at the bytes of one read() only: a request split across reads gets the 1 KiB keep-alive answer.
 * wrk never splits or mixes them.
 *
 *     refserver PORT WORKERS          (listens on 127.0.0.1:PORT; SIGTERM/SIGINT stop it, exit 0)
 *
 * Built by tests/bench/run with `cc -O2`; not part of drover.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BODY_SIZE 1024
#define BIG_SIZE (100 * 1024)
#define MAX_FD 65536
#define RBUF 4096

static char response[256 + BODY_SIZE], close_response[256 + BODY_SIZE]; /* keep-alive, "Connection: close" */
static size_t response_len, close_response_len;
static char big_head[256];
static size_t big_head_len;
static int big_fd = -1; /* memfd with the 100 KiB body */

typedef struct {
        size_t matched; /* how much of "\r\n\r\n" the bytes read so far end with */
        size_t pending; /* responses owed but not yet fully written */
        size_t offset;  /* bytes of the first owed response already written */
        bool big;       /* the owed responses are 100 KiB ones */
        bool close;     /* close once the owed responses are written */
        bool want_out;  /* EPOLLOUT is in the registered interest */
} Conn;

static Conn *conns;

static void die(const char *what)
{
        fprintf(stderr, "refserver: %s: %s\n", what, strerror(errno));
        exit(1);
}

static void conn_close(int ep, int fd)
{
        (void) ep; /* close() takes the fd out of the epoll set: it is never dup()ed */
        close(fd);
        memset(&conns[fd], 0, sizeof conns[fd]);
}

/* Write what is owed; 0 when done or blocked, -1 when the connection is gone. */
static int conn_flush(int ep, int fd)
{
        Conn *c = &conns[fd];
        const char *small = c->close ? close_response : response;
        size_t total = c->big ? big_head_len + BIG_SIZE : c->close ? close_response_len : response_len;
        while (c->pending > 0) {
                ssize_t n;
                if (!c->big)
                        n = send(fd, small + c->offset, total - c->offset, MSG_NOSIGNAL);
                else if (c->offset < big_head_len)
                        n = send(fd, big_head + c->offset, big_head_len - c->offset, MSG_NOSIGNAL | MSG_MORE);
                else {
                        off_t off = (off_t) (c->offset - big_head_len);
                        n = sendfile(fd, big_fd, &off, total - c->offset);
                }
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                c->offset += (size_t) n;
                if (c->offset == total) {
                        c->offset = 0;
                        c->pending--;
                }
        }
        if (c->pending == 0 && c->close)
                return -1;
        if (c->want_out != (c->pending > 0)) {
                c->want_out = c->pending > 0;
                struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.fd = fd };
                (void) epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
        return 0;
}

static void conn_read(int ep, int fd)
{
        static const char end[] = "\r\n\r\n";
        char buf[RBUF];
        Conn *c = &conns[fd];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, 0);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        conn_close(ep, fd);
                        return;
                }
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (c->pending == 0 && c->matched == 0) {
                        c->big = n > 9 && memcmp(buf + 4, "/100k", 5) == 0;
                        c->close = memmem(buf, (size_t) n, "Connection: close\r\n", 19) != NULL;
                }
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == end[c->matched])
                                c->matched++;
                        else
                                c->matched = buf[i] == '\r' ? 1 : 0;
                        if (c->matched == 4) {
                                c->matched = 0;
                                c->pending++;
                        }
                }
                if ((size_t) n < sizeof buf)
                        break;
        }
        if (conn_flush(ep, fd) < 0)
                conn_close(ep, fd);
}

static void worker(int lfd)
{
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
                die("epoll_create1");
        struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = lfd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
                die("epoll_ctl(listener)");

        struct epoll_event events[256];
        for (;;) {
                int n = epoll_wait(ep, events, 256, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("epoll_wait");
                }
                for (int i = 0; i < n; i++) {
                        int fd = events[i].data.fd;
                        if (fd == lfd) {
                                for (int k = 0; k < 64; k++) {
                                        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                                        if (cfd < 0)
                                                break;
                                        if (cfd >= MAX_FD) {
                                                close(cfd);
                                                continue;
                                        }
                                        int one = 1;
                                        (void) setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                                        memset(&conns[cfd], 0, sizeof conns[cfd]);
                                        struct epoll_event cev = { .events = EPOLLIN, .data.fd = cfd };
                                        if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0)
                                                close(cfd);
                                }
                                continue;
                        }
                        if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) {
                                conn_close(ep, fd);
                                continue;
                        }
                        if (events[i].events & EPOLLIN)
                                conn_read(ep, fd);
                        else if (events[i].events & EPOLLOUT && conn_flush(ep, fd) < 0)
                                conn_close(ep, fd);
                }
        }
}

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
        (void) sig;
        stop = 1;
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: refserver PORT WORKERS\n");
                return 2;
        }
        int port = atoi(argv[1]), nworkers = atoi(argv[2]);
        if (port <= 0 || port > 65535 || nworkers <= 0 || nworkers > 256) {
                fprintf(stderr, "refserver: bad PORT or WORKERS\n");
                return 2;
        }

        int hl = snprintf(response, sizeof response,
                          "HTTP/1.1 200 OK\r\nServer: refserver\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: %d\r\n\r\n",
                          BODY_SIZE);
        memset(response + hl, 'x', BODY_SIZE);
        response_len = (size_t) hl + BODY_SIZE;
        hl = snprintf(close_response, sizeof close_response,
                      "HTTP/1.1 200 OK\r\nServer: refserver\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n",
                      BODY_SIZE);
        memset(close_response + hl, 'x', BODY_SIZE);
        close_response_len = (size_t) hl + BODY_SIZE;
        big_head_len = (size_t) snprintf(big_head, sizeof big_head,
                                         "HTTP/1.1 200 OK\r\nServer: refserver\r\n"
                                         "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
                                         BIG_SIZE);
        big_fd = memfd_create("refserver-body", MFD_CLOEXEC);
        if (big_fd < 0 || ftruncate(big_fd, BIG_SIZE) < 0)
                die("memfd");
        for (size_t done = 0; done < BIG_SIZE; done += BODY_SIZE)
                if (pwrite(big_fd, response + response_len - BODY_SIZE, BODY_SIZE, (off_t) done) != BODY_SIZE)
                        die("pwrite");

        conns = calloc(MAX_FD, sizeof *conns);
        if (!conns)
                die("calloc");

        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                die("socket");
        int one = 1;
        (void) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0)
                die("bind");
        if (listen(lfd, 4096) < 0)
                die("listen");

        struct sigaction act = { .sa_handler = on_stop };
        sigaction(SIGTERM, &act, NULL);
        sigaction(SIGINT, &act, NULL);
        signal(SIGPIPE, SIG_IGN);

        pid_t parent = getpid();
        pid_t *kids = calloc((size_t) nworkers, sizeof *kids);
        for (int i = 0; i < nworkers; i++) {
                pid_t pid = fork();
                if (pid < 0)
                        die("fork");
                if (pid == 0) {
                        signal(SIGTERM, SIG_DFL);
                        signal(SIGINT, SIG_DFL);
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(0);
                        worker(lfd);
                        _exit(0);
                }
                kids[i] = pid;
        }
        close(lfd);

        /* The parent only waits: a stop signal is passed on to the workers, a dead worker ends the run. */
        int status = 0;
        while (!stop) {
                pid_t p = waitpid(-1, &status, 0);
                if (p < 0 && errno == EINTR)
                        continue;
                if (p > 0) {
                        fprintf(stderr, "refserver: worker %d exited unexpectedly\n", (int) p);
                        stop = 2;
                }
                if (p < 0)
                        break;
        }
        for (int i = 0; i < nworkers; i++)
                (void) kill(kids[i], SIGTERM);
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                ;
        return stop == 2 ? 1 : 0;
}
