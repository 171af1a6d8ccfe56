/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "worker/worker.h"

/*
 * One connection: read → parse → answer → (keep-alive) read ... Sockets are registered once, edge-triggered, for
 * both directions, so the state machine never calls epoll_ctl; `readable`/`writable` remember readiness the
 * kernel reported and we have not used up yet. While a response is being written nothing more is read, which
 * answers pipelined requests in order and bounds what one client can make us buffer.
 */

static void conn_run(Conn *c);
static void conn_io(Loop *l, IoWatch *watch, uint32_t events);

const char *worker_date(Worker *w)
{
        time_t now = time(NULL);
        if (now != w->date_time) {
                w->date_time = now;
                http_format_date(now, w->date);
        }
        return w->date;
}

static Conn *conn_get(Worker *w)
{
        Conn *c = w->free_conns;
        if (c) {
                w->free_conns = c->next;
                return c;
        }
        return malloc(sizeof(Conn));
}

void conn_accept(Worker *w, int fd, Protocol protocol)
{
        static const int one = 1;
        Conn *c = conn_get(w);
        if (!c) {
                log_error_errno(ENOMEM, "cannot allocate a connection: %m");
                safe_close(fd);
                return;
        }

        c->watch = (IoWatch){ .fd = fd, .handler = NULL };
        c->timer = (TimerEntry){};
        c->worker = w;
        c->state = CONN_READ;
        c->readable = c->writable = false;
        c->fresh = true;
        c->peer_closed = false;
        c->close_after = false;
        c->rpos = c->rlen = 0;
        c->head_len = c->head_off = 0;
        c->file_fd = -EBADF;
        c->file_off = c->file_end = 0;
        http_request_init(&c->req);
        (void) protocol; /* only HTTP so far; SCGI is rejected at start-up */

        /* Responses go out as whole writes or sendfile runs; Nagle would only delay the last segment. */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

        c->watch.handler = conn_io;
        if (loop_add(&w->loop, &c->watch, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) {
                log_warning_errno(errno, "cannot watch a new connection: %m");
                safe_close(fd);
                c->next = w->free_conns;
                w->free_conns = c;
                return;
        }

        c->prev = NULL;
        c->next = w->conns;
        if (w->conns)
                w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
        stats_add(w->stats->accepted, 1);
        stats_store(w->stats->connections, w->n_conns);
        timer_arm(&w->loop, &w->q_header, &c->timer);
}

void conn_close(Conn *c)
{
        Worker *w = c->worker;

        if (c->watch.fd < 0)
                return;
        timer_disarm(&c->timer);
        c->file_fd = safe_close(c->file_fd);
        c->watch.fd = safe_close(c->watch.fd); /* closing removes it from the epoll set */

        if (c->prev)
                c->prev->next = c->next;
        else
                w->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = NULL;
        c->next = w->closed_conns;
        w->closed_conns = c;
        w->n_conns--;
        stats_store(w->stats->connections, w->n_conns);
        worker_connection_closed(w);
}

void conns_release_closed(Worker *w)
{
        while (w->closed_conns) {
                Conn *c = w->closed_conns;
                w->closed_conns = c->next;
                c->next = w->free_conns;
                w->free_conns = c;
        }
}

static bool conn_idle(const Conn *c)
{
        return c->state == CONN_READ && !c->req.started && c->rpos == c->rlen;
}

void conn_begin_drain(Conn *c)
{
        /* An idle keep-alive connection is not closed at once: the client may be sending its next request
         * right now, and closing would lose it. It gets a short grace; a request that arrives is answered with
         * "Connection: close". A connection that has not sent its first byte yet gets the same bound rather
         * than the header timeout, so that a silent client cannot hold the stop for long. */
        if (conn_idle(c))
                timer_arm(&c->worker->loop, &c->worker->q_drain, &c->timer);
}

/* The response head plus, for errors, a small body, all in c->head so that it leaves in one write. */
static void conn_respond_page(Conn *c, unsigned status, bool keep_alive, const char *location, const char *allow,
                              const char *content_range)
{
        Worker *w = c->worker;
        bool head_only = http_request_method(&c->req) == HTTP_HEAD && c->req.state == HTTP_PARSE_COMPLETE;
        char body[256];
        int blen;

        blen = snprintf(body, sizeof body,
                        "<html><head><title>%u %s</title></head><body><h1>%u %s</h1></body></html>\n",
                        status, http_status_reason(status), status, http_status_reason(status));

        HttpResponseHead h = {
                .status = status,
                .minor_version = c->req.parser.http_minor == 0 && c->req.parser.http_major == 1 ? 0 : 1,
                .keep_alive = keep_alive,
                .has_body_length = true,
                .content_length = (uint64_t) blen,
                .content_type = "text/html",
                .date = worker_date(w),
                .server = "drover",
                .location = location,
                .allow = allow,
                .content_range = content_range,
        };
        int n = http_format_head(&h, c->head, sizeof c->head);
        if (n < 0) {
                /* Only an absurd Location could overflow; fail safe. */
                h.location = NULL;
                h.status = 500;
                h.keep_alive = false;
                n = http_format_head(&h, c->head, sizeof c->head);
        }
        c->head_len = (size_t) n;
        if (!head_only && (size_t) blen <= sizeof c->head - c->head_len) {
                memcpy(c->head + c->head_len, body, (size_t) blen);
                c->head_len += (size_t) blen;
        }
        c->head_off = 0;
        c->close_after = !keep_alive;
        c->state = CONN_WRITE;
}

static void conn_respond_simple(Conn *c, unsigned status, bool keep_alive, const char *location,
                                const char *allow)
{
        conn_respond_page(c, status, keep_alive, location, allow, NULL);
}

/* Names the request in the shared record while it is handled: if the loop gets stuck in it, the supervisor's
 * watchdog message says which request it was. */
static void conn_mark_busy(Conn *c, const char *url, size_t url_len)
{
        WorkerStats *st = c->worker->stats;
        const char *m = http_method_str(http_request_method(&c->req));
        size_t ml = strlen(m), ul = MIN(url_len, sizeof st->current - ml - 2);

        memcpy(st->current, m, ml);
        st->current[ml] = ' ';
        memcpy(st->current + ml + 1, url, ul);
        st->current[ml + 1 + ul] = '\0';
        stats_store(st->busy, 1);
}

static void conn_handle_request_inner(Conn *c);

static void conn_handle_request(Conn *c)
{
        size_t url_len;
        const char *url = http_request_url(&c->req, &url_len);

        conn_mark_busy(c, url, url_len);
        conn_handle_request_inner(c);
        stats_store(c->worker->stats->busy, 0);
}

static void conn_handle_request_inner(Conn *c)
{
        Worker *w = c->worker;
        enum http_method method = http_request_method(&c->req);
        bool keep_alive = c->req.keep_alive && !w->draining;
        char path[HTTP_URL_MAX + 1];
        const char *url;
        size_t url_len;
        StaticResult res;
        StaticConditions cond;
        StaticDecision d;
        int r;

        if (method != HTTP_GET && method != HTTP_HEAD)
                return conn_respond_simple(c, 405, keep_alive, NULL, "GET, HEAD");

        url = http_request_url(&c->req, &url_len);
        r = http_target_decode_path(url, url_len, path, sizeof path, NULL);
        if (r < 0)
                return conn_respond_simple(c, r == -ENAMETOOLONG ? 414 : 400, false, NULL, NULL);

        static_handler_resolve(&w->static_handler, path, (size_t) r, &res);
        if (res.status == 301)
                return conn_respond_simple(c, 301, keep_alive, res.location, NULL);
        if (res.status != 200)
                return conn_respond_simple(c, res.status, keep_alive, NULL, NULL);

        const char *date = worker_date(w);
        static_conditions_from_request(&c->req, &cond);
        static_decide(&cond, &res, w->date_time, &d);
        if (d.status == 412 || d.status == 416) {
                safe_close(res.fd);
                return conn_respond_page(c, d.status, keep_alive, NULL, NULL,
                                         d.content_range[0] ? d.content_range : NULL);
        }

        HttpResponseHead h = {
                .status = d.status,
                .minor_version = c->req.parser.http_minor ? 1 : 0,
                .keep_alive = keep_alive,
                .has_body_length = d.status != 304, /* a 304: no body, no Content-Length (RFC 9110 15.4.5) */
                .content_length = d.length,
                .content_type = d.status != 304 ? res.content_type : NULL,
                .date = date,
                .server = "drover",
                .last_modified = d.last_modified,
                .etag = d.etag,
                .content_range = d.status == 206 ? d.content_range : NULL,
                .accept_ranges = d.accept_ranges,
        };
        r = http_format_head(&h, c->head, sizeof c->head);
        if (r < 0) {
                safe_close(res.fd);
                return conn_respond_simple(c, 500, false, NULL, NULL);
        }
        c->head_len = (size_t) r;
        c->head_off = 0;
        if (method == HTTP_HEAD || d.length == 0) {
                safe_close(res.fd);
        } else {
                c->file_fd = res.fd;
                c->file_off = d.offset;
                c->file_end = d.offset + d.length;
        }
        c->close_after = !keep_alive;
        c->state = CONN_WRITE;
}

/* Returns 1 when the response is out, 0 when the socket is full, -errno on failure. */
static int conn_flush(Conn *c)
{
        while (c->head_off < c->head_len) {
                ssize_t n = send(c->watch.fd, c->head + c->head_off, c->head_len - c->head_off,
                                 MSG_NOSIGNAL | (c->file_fd >= 0 ? MSG_MORE : 0));
                if (n < 0)
                        return errno == EAGAIN ? 0 : negative_errno();
                c->head_off += (size_t) n;
        }
        while (c->file_off < c->file_end) {
                off_t off = (off_t) c->file_off;
                size_t chunk = (size_t) MIN(c->file_end - c->file_off, (uint64_t) 0x7ffff000);
                ssize_t n = sendfile(c->watch.fd, c->file_fd, &off, chunk);
                if (n < 0)
                        return errno == EAGAIN ? 0 : negative_errno();
                if (n == 0)
                        return -EIO; /* the file shrank under us: the promised length cannot be kept */
                c->file_off = (uint64_t) off;
        }
        c->file_fd = safe_close(c->file_fd);
        return 1;
}

static void conn_response_done(Conn *c)
{
        c->fresh = false;
        worker_request_done(c->worker);
        if (c->close_after) {
                /* Half-close first so the client reads the whole response before it sees the end. */
                (void) shutdown(c->watch.fd, SHUT_WR);
                conn_close(c);
                return;
        }
        c->state = CONN_READ;
        http_request_next(&c->req);
}

static void conn_arm_read_timer(Conn *c)
{
        Worker *w = c->worker;
        TimerQueue *q;

        /* A request's header deadline runs from its first byte (or the accept), and is not extended by
         * further bytes: a client trickling a header one byte at a time cannot hold the connection. */
        if (c->req.started || (c->fresh && !w->draining))
                q = &w->q_header;
        else
                q = w->draining ? &w->q_drain : &w->q_idle;
        if (c->timer.queue != q || q != &w->q_header)
                timer_arm(&w->loop, q, &c->timer);
}

static void conn_run(Conn *c)
{
        Worker *w = c->worker;

        for (;;) {
                if (c->watch.fd < 0)
                        return;

                if (c->state == CONN_WRITE) {
                        if (!c->writable)
                                return;
                        int r = conn_flush(c);
                        if (r < 0) {
                                conn_close(c);
                                return;
                        }
                        if (r == 0) {
                                c->writable = false;
                                timer_arm(&w->loop, &w->q_write, &c->timer);
                                return;
                        }
                        conn_response_done(c);
                        continue;
                }

                if (c->rpos < c->rlen) {
                        c->rpos += http_request_feed(&c->req, c->rbuf + c->rpos, c->rlen - c->rpos);
                        if (c->req.state == HTTP_PARSE_COMPLETE) {
                                conn_handle_request(c);
                                continue;
                        }
                        if (c->req.state == HTTP_PARSE_ERROR) {
                                conn_respond_simple(c, c->req.error_status, false, NULL, NULL);
                                continue;
                        }
                }
                c->rpos = c->rlen = 0;

                if (!c->readable) {
                        conn_arm_read_timer(c);
                        return;
                }
                ssize_t n = read(c->watch.fd, c->rbuf, sizeof c->rbuf);
                if (n > 0) {
                        c->rlen = (size_t) n;
                        /* A short read drained the socket: the next edge will tell us about more, except the
                         * end of the stream when its edge came with this data. */
                        if ((size_t) n < sizeof c->rbuf && !c->peer_closed)
                                c->readable = false;
                        continue;
                }
                if (n < 0 && errno == EAGAIN) {
                        c->readable = false;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                conn_close(c); /* EOF or error: nothing more can be answered */
                return;
        }
}

static void conn_io(Loop *l, IoWatch *watch, uint32_t events)
{
        Conn *c = container_of(watch, Conn, watch);

        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->readable = true;
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                c->peer_closed = true;
        if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                c->writable = true;
        conn_run(c);
}

void conn_timeout(Loop *l, TimerEntry *e)
{
        Conn *c = container_of(e, Conn, timer);
        Worker *w = c->worker;

        if (c->state == CONN_READ && c->req.started) {
                /* The header deadline passed mid-request: say so, then close. The reply gets one write
                 * timeout to leave. */
                conn_respond_simple(c, 408, false, NULL, NULL);
                c->writable = true;
                timer_arm(&w->loop, &w->q_write, &c->timer);
                conn_run(c);
                return;
        }
        conn_close(c);
}
