/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "worker/worker.h"

/*
 * The worker's half of --accept=dispatch. The supervisor accepts; this worker never touches the listening
 * sockets (it closes its copies). Its only source of connections is its own SOCK_SEQPACKET socketpair with
 * the supervisor, inherited at the fd named by $DROVER_DISPATCH (3 + LISTEN_FDS + 1, right after the stats
 * memfd). The protocol, one message each:
 *
 *   supervisor -> worker   1 byte: the index of the listening socket it came from (its protocol), with the
 *                          connection as SCM_RIGHTS; or EOF: "you will get nothing more", sent to a worker
 *                          being stopped once it is free.
 *   worker -> supervisor   "B": busy, it has the connection (sent on receipt, before reading from it): the
 *                          supervisor closes its own copy, which it keeps until then so that a worker dying
 *                          before it took the connection does not lose it.
 *                          "F": free again; the connection it was given is closed.
 *
 * Invariant: a worker has at most one connection at a time, so a handler may block. It says "F" exactly once
 * per connection it was handed, when that connection closes (after its keep-alive requests), and the
 * supervisor hands it nothing between a hand-over and the "F". A draining worker keeps reading the pair
 * until EOF, so a connection handed over while its stop was on the way is served (with Connection: close),
 * never dropped in the socket's queue.
 */

#define DISPATCH_FREE 'F'
#define DISPATCH_BUSY 'B'

bool dispatch_enabled(const Worker *w)
{
        return w->dispatch.fd >= 0 || w->dispatch_eof;
}

static void dispatch_say(Worker *w, char msg)
{
        if (w->dispatch.fd < 0)
                return;
        if (send(w->dispatch.fd, &msg, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EPIPE &&
            errno != ECONNRESET)
                log_warning_errno(errno, "dispatch: cannot tell the supervisor this worker is %s: %m",
                                  msg == DISPATCH_FREE ? "free" : "busy");
}

static void dispatch_close(Worker *w)
{
        if (w->dispatch.fd < 0)
                return;
        (void) loop_del(&w->loop, &w->dispatch);
        w->dispatch.fd = safe_close(w->dispatch.fd);
        w->dispatch_eof = true;
}

/* Called with no connection left: quit if draining and the supervisor said it sends nothing more. */
void dispatch_connection_closed(Worker *w)
{
        if (w->n_conns > 0)
                return;
        if (w->draining && w->dispatch_eof) {
                w->loop.quit = true;
                return;
        }
        dispatch_say(w, DISPATCH_FREE);
}

static void dispatch_receive(Worker *w, int fd, unsigned index)
{
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        unsigned before = w->n_conns;

        dispatch_say(w, DISPATCH_BUSY);
        if (w->n_conns > 0)
                /* The supervisor broke the protocol: serve it anyway rather than drop a client. */
                log_warning("dispatch: given a connection while still serving one");
        if (getpeername(fd, (struct sockaddr *) &peer, &peer_len) < 0) {
                /* Already reset by the client: nothing to serve. */
                memset(&peer, 0, sizeof peer);
                peer.ss_family = AF_UNSPEC;
                peer_len = sizeof(sa_family_t);
        }
        conn_accept(w, fd, index < w->n_dispatch_protocols ? w->dispatch_protocols[index] : PROTOCOL_HTTP,
                    (struct sockaddr *) &peer, peer_len);
        if (w->n_conns == before) {
                /* conn_accept() failed and closed it: free again at once. */
                dispatch_connection_closed(w);
                return;
        }
        if (w->draining)
                conn_begin_drain(w->conns);
}

static void on_dispatch(Loop *l, IoWatch *watch, uint32_t events)
{
        Worker *w = container_of(l, Worker, loop);

        /* One message per wake-up is the normal case; loop for the ones queued while a handler blocked. */
        while (w->dispatch.fd >= 0) {
                unsigned char index = 0;
                union {
                        struct cmsghdr hdr;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control;
                struct iovec iov = { &index, 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof control };
                int fd = -EBADF;

                ssize_t n = recvmsg(w->dispatch.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return;
                        log_warning_errno(errno, "dispatch: %m");
                        n = 0; /* treat like EOF: nothing more can come */
                }
                if (n == 0) {
                        dispatch_close(w);
                        if (!w->draining)
                                worker_begin_drain(w); /* the supervisor is gone or done with us */
                        else if (w->n_conns == 0)
                                w->loop.quit = true;
                        return;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                                for (int *f = (int *) CMSG_DATA(c); (char *) (f + 1) <= (char *) c + c->cmsg_len;
                                     f++) {
                                        if (fd < 0)
                                                fd = *f;
                                        else
                                                safe_close(*f); /* one connection per message */
                                }
                if (fd < 0 || (mh.msg_flags & MSG_CTRUNC)) {
                        log_warning("dispatch: a message without a connection; ignoring it");
                        safe_close(fd);
                        continue;
                }
                /* The supervisor set O_NONBLOCK with accept4(); it lives on the open file description. */
                dispatch_receive(w, fd, index);
        }
}

int dispatch_setup(Worker *w)
{
        const char *e = getenv("DROVER_DISPATCH");
        unsigned fd;
        char *end;

        w->dispatch = (IoWatch){ .fd = -EBADF, .handler = on_dispatch };
        if (!e)
                return 0;
        errno = 0;
        unsigned long v = strtoul(e, &end, 10);
        if (errno || *end || end == e || v < 3 || v > INT32_MAX || fcntl((int) v, F_GETFD) < 0)
                return log_error_errno(EBADF, "$DROVER_DISPATCH: invalid value '%s': expected an open fd", e);
        fd = (unsigned) v;
        (void) unsetenv("DROVER_DISPATCH");
        (void) fcntl((int) fd, F_SETFD, FD_CLOEXEC);
        (void) fcntl((int) fd, F_SETFL, fcntl((int) fd, F_GETFL) | O_NONBLOCK);
        w->dispatch.fd = (int) fd;

        /* The listening sockets are the supervisor's to accept on: keep only their protocols, so that a
         * stopping worker cannot take a connection from the backlog either. */
        for (size_t i = 0; i < w->n_listeners; i++) {
                w->dispatch_protocols[i] = w->listeners[i].protocol;
                w->listeners[i].watch.fd = safe_close(w->listeners[i].watch.fd);
        }
        w->n_dispatch_protocols = w->n_listeners;
        w->n_listeners = 0;
        return loop_add(&w->loop, &w->dispatch, EPOLLIN);
}
