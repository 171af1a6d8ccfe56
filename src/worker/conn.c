/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "worker/worker.h"

/*
 * One connection: read → parse → handle → write → (keep-alive) read ... Sockets are registered once,
 * edge-triggered, for reading; writing is added (one EPOLL_CTL_MOD, kept for the rest of the connection)
 * only when a write finds the socket full, as nginx does: registered for both at once, a new socket reports
 * itself writable at the next epoll_wait(), an event per connection with nothing to do. `readable` and
 * `writable` remember readiness the kernel reported and we have not used up yet. While a response is being
 * written nothing more is read, which answers pipelined requests in order and bounds what one client can
 * make us buffer.
 *
 * Both protocols end in the same place: the request is translated into a drover_request, a handler (a module
 * by prefix, else the static handler) answers into the connection's drover_response, and the protocol frames
 * it — an HTTP/1.x status line and header block, or SCGI's CGI-style "Status:" head. Every response after
 * which drover closes says so (HTTP: "Connection: close"); a client never learns of a close by a failed read.
 */

static void conn_run(Conn *c);
static void conn_io(Loop *l, IoWatch *watch, uint32_t events);

const char *worker_date(Worker *w)
{
        time_t now = time(NULL);
        if (now != w->date_time) {
                w->date_time = now;
                http_format_date(now, w->date);
                /* Checked once a second rather than in every response head (see server_date_checked). */
                w->date_checked = http_check_field_value(w->date) >= 0;
        }
        return w->date;
}

/* ---- parsers ----------------------------------------------------------------------------------------- */

static void conn_parser_free(Conn *c)
{
        if (c->parser_protocol == PROTOCOL_HTTP)
                http_request_free(&c->req.http);
        else if (c->parser_protocol == PROTOCOL_SCGI)
                scgi_request_free(&c->req.scgi);
        c->parser_protocol = _PROTOCOL_INVALID;
}

/* A parser of the connection's protocol, ready for a first request. Allocated once per Conn; a Conn reused for
 * the same protocol only resets it. */
static int conn_parser_start(Conn *c)
{
        Worker *w = c->worker;

        if (c->parser_protocol != c->protocol)
                conn_parser_free(c);
        if (c->protocol == PROTOCOL_HTTP) {
                if (c->parser_protocol == PROTOCOL_HTTP) {
                        http_request_reset(&c->req.http);
                        return 0;
                }
                int r = http_request_init(&c->req.http, &w->limits);
                if (r < 0)
                        return r;
        } else {
                if (c->parser_protocol == PROTOCOL_SCGI)
                        scgi_request_free(&c->req.scgi);
                int r = scgi_request_init(&c->req.scgi, &w->limits);
                if (r < 0)
                        return r;
        }
        c->parser_protocol = c->protocol;
        return 0;
}

static HttpParseState conn_parse_state(const Conn *c)
{
        return c->protocol == PROTOCOL_HTTP ? c->req.http.state : c->req.scgi.state;
}

static bool conn_request_started(const Conn *c)
{
        return c->protocol == PROTOCOL_HTTP ? c->req.http.started : c->req.scgi.started;
}

static size_t conn_feed(Conn *c, const char *data, size_t len)
{
        return c->protocol == PROTOCOL_HTTP ? http_request_feed(&c->req.http, data, len)
                                            : scgi_request_feed(&c->req.scgi, data, len);
}

/* ---- accept and close -------------------------------------------------------------------------------- */

static Conn *conn_get(Worker *w)
{
        Conn *c = w->free_conns;
        if (c) {
                w->free_conns = c->next;
                w->n_free_conns--;
                return c;
        }
        c = malloc(sizeof(Conn));
        if (!c)
                return NULL;
        c->parser_protocol = _PROTOCOL_INVALID;
        c->head = NULL;
        c->head_cap = 0;
        c->rbuf_own = NULL;
        response_init(&c->resp);
        return c;
}

static void conn_put(Worker *w, Conn *c)
{
        c->next = w->free_conns;
        w->free_conns = c;
        w->n_free_conns++;
}

void conn_free(Conn *c)
{
        free(c->rbuf_own);
        conn_parser_free(c);
        response_free(&c->resp);
        free(c->head);
        free(c);
}

/*
 * The first read right after accept(). Over a network the request usually arrives with or right behind the
 * handshake's last ACK, before the worker runs: reading at once then answers (and, for a one-request
 * connection, closes) it within the accept, without an epoll_ctl() or another pass through epoll_wait().
 * On loopback, with a client that writes only once its own event loop has seen the connect complete (wrk),
 * the worker gets there first nearly every time, and the read is a wasted syscall (EAGAIN) on top of the
 * registration it needs anyway: 0.9–1.0 per connection on close-1k. So each worker keeps the outcome of
 * its last READ_FIRST_HISTORY attempts and reads at once only while at least half of them found the
 * request; otherwise it registers and waits, as nginx does, and reads at once on one connection in
 * READ_FIRST_PROBE to notice when that changes.
 */
#define READ_FIRST_HISTORY 8
#define READ_FIRST_PROBE 16

static bool conn_read_first(Worker *w)
{
        return __builtin_popcount(w->read_first_hits) * 2 >= READ_FIRST_HISTORY ||
               ++w->read_first_skipped % READ_FIRST_PROBE == 0;
}

static void conn_read_first_learn(Worker *w, bool hit)
{
        w->read_first_hits = (uint8_t) (w->read_first_hits << 1 | hit);
}

void conn_accept(Worker *w, int fd, Protocol protocol, const struct sockaddr *peer, socklen_t peer_len)
{
        Conn *c = conn_get(w);
        int r;

        if (!c) {
                log_error_errno(ENOMEM, "cannot allocate a connection: %m");
                safe_close(fd);
                return;
        }

        c->watch = (IoWatch){ .fd = fd, .handler = NULL };
        c->timer = (TimerEntry){};
        c->worker = w;
        c->protocol = protocol;
        c->state = CONN_READ;
        c->readable = c->writable = false;
        c->registered = c->watch_out = false;
        c->fresh = true;
        c->nodelay = false;
        c->peer_closed = false;
        c->close_after = false;
        c->continue_sent = false;
        c->head_only = false;
        c->body_in_head = false;
        c->head_cache = NULL;
        c->requests = 0;
        c->rpos = c->rlen = 0;
        c->rbuf = w->rbuf;
        c->head_len = c->head_off = 0;
        c->body_off = 0;
        c->file_off = c->file_end = 0;
        c->peer_len = MIN(peer_len, (socklen_t) sizeof c->peer);
        memcpy(&c->peer, peer, c->peer_len);
        if (c->peer_len < sizeof(sa_family_t))
                c->peer.ss_family = AF_UNSPEC;
        response_reset(&c->resp);

        r = conn_parser_start(c);
        if (r < 0) {
                log_error_errno(r, "cannot allocate a request parser: %m");
                safe_close(fd);
                conn_put(w, c);
                return;
        }

        c->watch.handler = conn_io;
        c->prev = NULL;
        c->next = w->conns;
        if (w->conns)
                w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
        stats_add(w->stats->accepted, 1);
        stats_store(w->stats->connections, w->n_conns);
        timer_arm(&w->loop, &w->q_header, &c->timer);

        /* A new socket is writable. Whether its request is already there depends on the clients and the
         * network: see conn_read_first(). Registering afterwards loses nothing, since an edge-triggered
         * watch reports at once whatever is already pending when it is added. */
        c->writable = true;
        if (conn_read_first(w)) {
                c->readable = true;
                conn_run(c);
                conn_read_first_learn(w, c->watch.fd < 0 || c->requests > 0 || c->state == CONN_WRITE ||
                                                 conn_request_started(c));
                if (c->watch.fd < 0)
                        return;
        }
        r = loop_add(&w->loop, &c->watch, EPOLLIN | EPOLLRDHUP | EPOLLET | (c->watch_out ? EPOLLOUT : 0));
        if (r < 0) {
                log_warning_errno(r, "cannot watch a new connection: %m");
                conn_close(c);
                return;
        }
        c->registered = true;
}

/* The socket is full: from now on, tell us when it is writable again (see the top of this file). */
static int conn_watch_out(Conn *c)
{
        if (c->watch_out)
                return 0;
        c->watch_out = true;
        if (!c->registered)
                return 0; /* conn_accept() registers it with EPOLLOUT */
        return loop_mod(&c->worker->loop, &c->watch, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

void conn_close(Conn *c)
{
        Worker *w = c->worker;

        if (c->watch.fd < 0)
                return;
        timer_disarm(&c->timer);
        response_reset(&c->resp);
        c->watch.fd = safe_close(c->watch.fd); /* closing removes it from the epoll set */
        free(c->rbuf_own);
        c->rbuf_own = NULL;
        c->rbuf = w->rbuf;
        c->rpos = c->rlen = 0;

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
                /* Keep enough for the next burst of connections; give back what a peak left over. */
                if (w->n_free_conns >= CONN_FREE_KEEP) {
                        conn_free(c);
                        continue;
                }
                conn_put(w, c);
        }
}

static bool conn_idle(const Conn *c)
{
        return c->state == CONN_READ && !conn_request_started(c) && c->rpos == c->rlen;
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

/* ---- building the response head ---------------------------------------------------------------------- */

static int conn_head_reserve(Conn *c, size_t need)
{
        if (need <= c->head_cap)
                return 0;
        size_t cap = MAX(need, (size_t) CONN_HEAD_INITIAL);
        char *p = realloc(c->head, cap);
        if (!p)
                return -ENOMEM;
        c->head = p;
        c->head_cap = cap;
        return 0;
}

/* Frames c->resp for the wire: an HTTP head or an SCGI (CGI-style) head in c->head, then the body. */
static int conn_frame_response(Conn *c, bool keep_alive)
{
        Worker *w = c->worker;
        drover_response *resp = &c->resp;
        uint64_t body_len = response_body_length(resp);
        bool no_body = resp->status == 304 || resp->status == 204;
        /* A small body from memory is copied behind the head (see conn_flush()): room for it too. */
        bool body_in_head = !no_body && !c->head_only && resp->fd < 0 && body_len > 0 &&
                            body_len <= CONN_BODY_IN_HEAD_MAX;
        size_t need = resp->headers_len + 512 + w->server_len + (body_in_head ? (size_t) body_len : 0);
        int n, r;

        r = conn_head_reserve(c, need);
        if (r < 0)
                return r;

        StaticHeadCache *hc = c->head_cache;
        c->head_cache = NULL;
        if (c->protocol == PROTOCOL_HTTP) {
                const HttpRequest *req = &c->req.http;
                /* Before the initializer, whose order of evaluation is unspecified: it sets date_checked. */
                const char *date = worker_date(w);
                unsigned minor_version = req->parser.http_major == 1 && req->parser.http_minor == 0 ? 0 : 1;
                /* A plain 200 of a cached file on a keep-alive HTTP/1.1 connection: its head is a function of
                 * the entry (its header lines and size), this worker's Server and the second of the Date - the
                 * same bytes for every such response within a second, formatted once and kept with the entry.
                 * Built from checked fields only, as any head is. */
                bool cacheable = hc && resp->status == 200 && keep_alive && minor_version == 1 && !c->head_only &&
                                 w->server_checked && w->date_checked;
                if (cacheable && hc->head && hc->date == w->date_time &&
                    hc->len + (body_in_head ? (size_t) body_len : 0) <= c->head_cap) {
                        memcpy(c->head, hc->head, hc->len);
                        n = (int) hc->len;
                        goto framed;
                }
                HttpResponseHead h = {
                        .status = resp->status,
                        .minor_version = minor_version,
                        .keep_alive = keep_alive,
                        .has_body_length = !no_body,
                        .content_length = body_len,
                        .content_type = response_default_content_type(resp),
                        .date = date,
                        .server = w->server,
                        .server_len = w->server_len,
                        .extra_headers = resp->headers && resp->headers_len ? resp->headers : NULL,
                        .extra_headers_len = resp->headers_len,
                        .extra_headers_checked = true, /* see drover_response.headers */
                        .server_date_checked = w->server_checked && w->date_checked,
                };
                n = http_format_head(&h, c->head, c->head_cap);
                if (cacheable && n > 0) {
                        char *p = realloc(hc->head, (size_t) n);
                        if (p) {
                                memcpy(p, c->head, (size_t) n);
                                hc->head = p;
                                hc->len = (size_t) n;
                                hc->date = w->date_time;
                        }
                }
        } else
                n = scgi_format_response_head(resp->status, response_default_content_type(resp),
                                              no_body ? UINT64_MAX : body_len,
                                              resp->headers && resp->headers_len ? resp->headers : NULL, c->head,
                                              c->head_cap);
        if (n < 0)
                return n;

framed:
        c->head_len = (size_t) n;
        c->head_off = 0;
        c->head_only = c->head_only || no_body;
        if (c->head_only)
                /* HEAD and 304: the head announces what GET would send; nothing of it goes out. */
                response_drop_body(resp);
        c->body_in_head = body_in_head;
        if (body_in_head) {
                /* The formatted head plus the body fit what was reserved: need counts the body in full, and
                 * the head never takes more than the rest (http_format_head() fails with -ENOBUFS first). */
                memcpy(c->head + c->head_len, resp->ext ? resp->ext : resp->body, (size_t) body_len);
                c->head_len += (size_t) body_len;
        }
        c->body_off = 0;
        c->file_off = resp->fd >= 0 ? resp->fd_offset : 0;
        c->file_end = resp->fd >= 0 ? resp->fd_offset + resp->fd_length : 0;
        c->close_after = !keep_alive;
        c->state = CONN_WRITE;
        return 0;
}

/* A small HTML error page for status, after the headers already in the response (a handler's Content-Range
 * on a 416, say); the connection closes after it unless keep_alive. */
static void conn_respond_page(Conn *c, unsigned status, bool keep_alive)
{
        drover_response *resp = &c->resp;
        char body[256];
        int n;

        resp->status = status;
        n = snprintf(body, sizeof body,
                     "<html><head><title>%u %s</title></head><body><h1>%u %s</h1></body></html>\n", status,
                     http_status_reason(status), status, http_status_reason(status));
        (void) drover_response_add_header(resp, "Content-Type", "text/html");
        if (status == 405)
                (void) drover_response_add_header(resp, "Allow", "GET, HEAD");
        (void) drover_response_write(resp, body, (size_t) n);
        if (c->protocol == PROTOCOL_SCGI)
                keep_alive = false;
        if (conn_frame_response(c, keep_alive) < 0) {
                /* Only an allocation can fail here: there is nothing left to say. */
                conn_close(c);
        }
}

/* An error page and nothing else of what the response held. */
static void conn_respond_error(Conn *c, unsigned status, bool keep_alive)
{
        response_reset(&c->resp);
        conn_respond_page(c, status, keep_alive);
}

/* ---- the request model ------------------------------------------------------------------------------- */

/* SCGI's "HTTP_ACCEPT_LANGUAGE" is the client's "accept-language"; CONTENT_TYPE and CONTENT_LENGTH, which CGI
 * keeps without the prefix, are headers too. Other variables are the frontend's, not the client's. */
static bool scgi_header_name(const char *var, size_t len, char *out, size_t *ret_len)
{
        const char *s = var;
        size_t n = len;

        if (len > 5 && memcmp(var, "HTTP_", 5) == 0) {
                s = var + 5;
                n = len - 5;
        } else if (!(len == 12 && memcmp(var, "CONTENT_TYPE", 12) == 0) &&
                   !(len == 14 && memcmp(var, "CONTENT_LENGTH", 14) == 0))
                return false;
        for (size_t i = 0; i < n; i++)
                out[i] = s[i] == '_' ? '-' : (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        *ret_len = n;
        return true;
}

/* Fills req from the parsed request. Returns 0, or an HTTP status to answer with instead. */
static unsigned conn_build_request(Conn *c, drover_request *req, char *addr_buf)
{
        Worker *w = c->worker;
        const char *target;
        size_t target_len, query_off = SIZE_MAX;
        int r;

        addr_buf[0] = '\0';
        *req = (drover_request){ .headers = w->header_buf, .peer = (const struct sockaddr *) &c->peer,
                                 .remote_buf = addr_buf };

        if (c->protocol == PROTOCOL_HTTP) {
                HttpRequest *h = &c->req.http;
                req->method = http_method_str(http_request_method(h));
                req->protocol = h->parser.http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
                target = http_request_url(h, &target_len);
                for (unsigned i = 0; i < h->n_headers; i++) {
                        drover_header *d = &w->header_buf[i];
                        (void) http_request_header_at(h, i, &d->name, &d->name_len, &d->value, &d->value_len);
                }
                req->n_headers = h->n_headers;
                req->body = h->body;
                req->body_len = h->body ? h->body_len : 0;
                req->remote_address = NULL; /* formatted from req->peer if a module asks */
        } else {
                ScgiRequest *s = &c->req.scgi;
                size_t used = 0, ml;
                req->method = scgi_request_header(s, "REQUEST_METHOD", &ml);
                if (!req->method || ml == 0)
                        return 400;
                req->protocol = "SCGI";
                target = scgi_request_header(s, "REQUEST_URI", &target_len);
                if (!target) {
                        /* No REQUEST_URI: the path CGI-style, the query apart. */
                        target = scgi_request_header(s, "PATH_INFO", &target_len);
                        if (!target)
                                return 400;
                }
                for (unsigned i = 0; i < s->n_headers && req->n_headers < w->limits.headers_max; i++) {
                        const char *name, *value;
                        size_t nl, vl, hl;
                        if (scgi_request_header_at(s, i, &name, &value, &vl) < 0)
                                break;
                        nl = strlen(name);
                        if (used + nl > w->limits.header_bytes_max ||
                            !scgi_header_name(name, nl, w->name_buf + used, &hl))
                                continue;
                        w->header_buf[req->n_headers++] = (drover_header){ .name = w->name_buf + used,
                                                                           .name_len = hl, .value = value,
                                                                           .value_len = vl };
                        used += hl;
                }
                req->body = s->body;
                req->body_len = s->body ? s->body_len : 0;
                req->remote_address = scgi_request_header(s, "REMOTE_ADDR", NULL);
        }

        r = http_target_decode_path(target, target_len, w->path_buf, w->limits.url_max + 1, &query_off);
        if (r < 0)
                return r == -ENAMETOOLONG ? 414 : 400;
        req->path = w->path_buf;
        req->path_len = (size_t) r;
        if (query_off < target_len) {
                req->query = target + query_off + 1; /* after the '?' */
                req->query_len = target_len - query_off - 1;
        } else if (c->protocol == PROTOCOL_SCGI && !memchr(target, '?', target_len)) {
                size_t ql;
                const char *q = scgi_request_header(&c->req.scgi, "QUERY_STRING", &ql);
                if (q && ql > 0 && target == scgi_request_header(&c->req.scgi, "PATH_INFO", NULL)) {
                        req->query = q;
                        req->query_len = ql;
                }
        }
        req->head = c->protocol == PROTOCOL_HTTP ? http_request_method(&c->req.http) == HTTP_HEAD
                                                 : strcmp(req->method, "HEAD") == 0;
        return 0;
}

/* ---- handlers ---------------------------------------------------------------------------------------- */

/* Names the request in the shared record while it is handled: if the loop gets stuck in it, the supervisor's
 * watchdog message says which request it was. */
static void conn_mark_busy(Conn *c, const drover_request *req)
{
        WorkerStats *st = c->worker->stats;
        size_t ml = strlen(req->method), ul = MIN(req->path_len, sizeof st->current - MIN(ml, 16) - 2);

        ml = MIN(ml, (size_t) 16);
        memcpy(st->current, req->method, ml);
        st->current[ml] = ' ';
        memcpy(st->current + ml + 1, req->path, ul);
        st->current[ml + 1 + ul] = '\0';
        stats_store(st->busy, 1);
}

static void conn_release_cache_entry(void *data)
{
        static_cache_entry_unref(data);
}

static void conn_serve_static(Conn *c, const drover_request *req)
{
        Worker *w = c->worker;
        drover_response *resp = &c->resp;
        StaticResult res;
        StaticConditions cond;
        StaticDecision d;
        char date[30];
        bool plain_200 = false;

        if (!req->head && strcmp(req->method, "GET") != 0) {
                resp->status = 405;
                return;
        }
        static_handler_open(&w->static_handler, req->path, req->path_len, loop_now(&w->loop), &res);
        if (res.status == 301) {
                resp->status = 301;
                (void) drover_response_add_header(resp, "Location", res.location);
                return;
        }
        if (res.status != 200) {
                resp->status = res.status;
                return;
        }
        /* Conditional and range requests (RFC 9110 13, 14): the pure decision, then its headers. */
        static_conditions_from_request(req, &cond);
        (void) worker_date(w);
        static_decide(&cond, &res, w->date_time, &d);
        resp->status = d.status;
        if (d.status == 412 || d.status == 416) {
                if (d.content_range[0])
                        (void) drover_response_add_header(resp, "Content-Range", d.content_range);
                return static_result_release(&res);
        }
        if (d.status == 200 && res.headers_200 && d.last_modified == res.mtime) {
                /* The cache entry's lines, checked when it was made: the same as those below. */
                plain_200 = response_add_checked_headers(resp, res.headers_200, res.headers_200_len, true) >= 0 &&
                            resp->headers_len == res.headers_200_len;
        } else {
                if (d.status != 304)
                        (void) drover_response_add_header(resp, "Content-Type", res.content_type);
                if (d.last_modified > 0) {
                        if (res.last_modified && d.last_modified == res.mtime)
                                memcpy(date, res.last_modified, sizeof date);
                        else
                                http_format_date(d.last_modified, date);
                        (void) drover_response_add_header(resp, "Last-Modified", date);
                }
                (void) drover_response_add_header(resp, "ETag", d.etag);
                if (d.status == 206)
                        (void) drover_response_add_header(resp, "Content-Range", d.content_range);
                if (d.accept_ranges)
                        (void) drover_response_add_header(resp, "Accept-Ranges", "bytes");
        }
        if (d.length == 0 || d.status == 304)
                return static_result_release(&res);
        if (!res.entry) {
                (void) drover_response_send_fd(resp, TAKE_FD(res.fd), d.offset, d.length);
                return;
        }
        /* Borrowed from the cache: the response keeps the entry pinned until it is reset. */
        if (res.content) {
                resp->ext = res.content + d.offset;
                resp->ext_len = (size_t) d.length;
        } else {
                resp->fd = res.fd;
                resp->fd_borrowed = true;
                resp->fd_offset = d.offset;
                resp->fd_length = d.length;
        }
        resp->release = conn_release_cache_entry;
        /* The entry's head slot, with the entry pinned until the response is framed and sent. */
        c->head_cache = plain_200 ? res.head_cache : NULL;
        resp->release_data = TAKE_PTR(res.entry);
}

static void conn_handle(Conn *c)
{
        Worker *w = c->worker;
        drover_request req;
        char addr[INET6_ADDRSTRLEN];
        bool keep_alive;
        unsigned status;
        Module *m;

        c->requests++;
        if (c->protocol == PROTOCOL_HTTP)
                keep_alive = c->req.http.keep_alive && !w->draining &&
                             (w->keepalive_requests == 0 || c->requests < w->keepalive_requests);
        else
                keep_alive = false; /* SCGI: one request per connection */

        /* c->resp is empty here, with no reset of our own: a connection reads only after conn_accept() or
         * conn_response_done(), and both reset it. */
        c->head_cache = NULL;
        status = conn_build_request(c, &req, addr);
        if (status != 0)
                return conn_respond_error(c, status, false);
        c->head_only = req.head;

        m = modules_route(w->modules, w->n_modules, req.path, req.path_len);
        conn_mark_busy(c, &req);
        if (m) {
                req.prefix = m->prefix;
                req.prefix_len = m->prefix_len;
                int r = m->handler->handle(m->state, &req, &c->resp);
                if (r < 0) {
                        log_worker_event(LOG_ERR, r, "handler-failed", (int) w->slot, getpid(),
                                         "module %s: %s %.*s failed: %m", m->handler->name ?: m->path, req.method,
                                         (int) MIN(req.path_len, (size_t) 256), req.path);
                        stats_store(w->stats->busy, 0);
                        return conn_respond_error(c, 500, keep_alive);
                }
        } else
                conn_serve_static(c, &req);
        stats_store(w->stats->busy, 0);

        /* A status without a body of its own (the static handler's 403, 404, 405): the standard page. */
        if (c->resp.status >= 400 && response_body_length(&c->resp) == 0 && !c->resp.has_content_type)
                return conn_respond_page(c, c->resp.status, keep_alive);
        if (conn_frame_response(c, keep_alive) < 0) {
                /* A handler's header block we cannot frame (too large for any buffer we will allocate). */
                log_worker_event(LOG_ERR, 0, "handler-failed", (int) w->slot, getpid(),
                                 "%s %.*s: the response cannot be framed", req.method,
                                 (int) MIN(req.path_len, (size_t) 256), req.path);
                conn_respond_error(c, 500, false);
        }
}

/* ---- writing ----------------------------------------------------------------------------------------- */

/* Nagle's algorithm holds back a segment shorter than the MSS while data is unacknowledged. A response that
 * leaves in one write of at most this (below any Ethernet MSS) as the connection's first is never held
 * (nothing is in flight yet); anything else — a second response on a keep-alive connection, a body sent with
 * sendfile() after the head, a response in several segments — gets TCP_NODELAY, once per connection. A
 * connection that answers one small request and closes thus costs no setsockopt(). */
#define CONN_NAGLE_SAFE 1400U

static void conn_nodelay(Conn *c)
{
        static const int one = 1;

        if (c->nodelay)
                return;
        c->nodelay = true;
        if (c->peer.ss_family != AF_UNIX)
                (void) setsockopt(c->watch.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The response is the last thing on a connection the client itself asked to close (so it sends nothing
 * more: RFC 9112 9.6), and nothing it sent is left unread. Then the response may be held back (MSG_MORE)
 * for close() to send it in one segment with the FIN — a segment, and the client's ACK of it, fewer per
 * connection. Never with unread input: close() would then reset the connection and drop what is held. */
static bool conn_fin_with_response(const Conn *c)
{
        return c->close_after && c->protocol == PROTOCOL_HTTP && !c->req.http.keep_alive && !c->readable &&
               c->rpos == c->rlen && c->resp.fd < 0;
}

/* Returns 1 when the response is out, 0 when the socket is full, -errno on failure. */
static int conn_flush(Conn *c)
{
        drover_response *resp = &c->resp;
        const char *body = resp->ext ? resp->ext : resp->body;
        size_t body_len = c->body_in_head ? 0 : resp->ext ? resp->ext_len : resp->body_len;
        int more = resp->fd >= 0 || conn_fin_with_response(c) ? MSG_MORE : 0;

        if (!c->nodelay && (c->requests > 1 || resp->fd >= 0 || c->head_off > 0 || c->body_off > 0 ||
                            c->head_len - c->head_off + body_len > CONN_NAGLE_SAFE))
                conn_nodelay(c);
        while (c->head_off < c->head_len || c->body_off < body_len) {
                struct iovec iov[2];
                int n_iov = 0;
                if (c->head_off < c->head_len)
                        iov[n_iov++] = (struct iovec){ c->head + c->head_off, c->head_len - c->head_off };
                if (c->body_off < body_len)
                        iov[n_iov++] = (struct iovec){ (char *) body + c->body_off, body_len - c->body_off };
                struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t) n_iov };
                /* One buffer (a head, with a small body behind it): send(), for which the kernel copies in
                 * no msghdr and no iovec array. */
                ssize_t n = n_iov == 1 ? send(c->watch.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | more)
                                       : sendmsg(c->watch.fd, &mh, MSG_NOSIGNAL | more);
                if (n < 0)
                        return errno == EAGAIN ? 0 : negative_errno();
                size_t k = (size_t) n, h = MIN(k, c->head_len - c->head_off);
                c->head_off += h;
                c->body_off += k - h;
        }
        while (resp->fd >= 0 && c->file_off < c->file_end) {
                off_t off = (off_t) c->file_off;
                size_t chunk = (size_t) MIN(c->file_end - c->file_off, (uint64_t) 0x7ffff000);
                ssize_t n = sendfile(c->watch.fd, resp->fd, &off, chunk);
                if (n < 0)
                        return errno == EAGAIN ? 0 : negative_errno();
                if (n == 0)
                        return -EIO; /* the file shrank under us: the promised length cannot be kept */
                c->file_off = (uint64_t) off;
        }
        return 1;
}

static void conn_response_done(Conn *c)
{
        Worker *w = c->worker;

        c->fresh = false;
        c->continue_sent = false;
        c->head_only = false;
        response_reset(&c->resp);
        worker_request_done(w);
        if (c->close_after) {
                /* close() queues the FIN after the response, which the client reads in full. (A
                 * shutdown(SHUT_WR) first would add nothing: unread input makes close() reset the connection
                 * either way.) */
                conn_close(c);
                return;
        }
        c->state = CONN_READ;
        if (c->protocol == PROTOCOL_HTTP)
                http_request_next(&c->req.http);
}

/* ---- reading ----------------------------------------------------------------------------------------- */

static void conn_arm_read_timer(Conn *c)
{
        Worker *w = c->worker;
        TimerQueue *q;
        bool started = conn_request_started(c);
        bool in_body = c->protocol == PROTOCOL_HTTP ? c->req.http.headers_done : c->req.scgi.headers_done;

        /* A request's header deadline runs from its first byte (or the accept), and is not extended by
         * further bytes: a client trickling a header one byte at a time cannot hold the connection. A body
         * must make progress: its timer restarts with every read. */
        if (in_body)
                q = &w->q_body;
        else if (started || (c->fresh && !w->draining))
                q = &w->q_header;
        else
                q = w->draining ? &w->q_drain : &w->q_idle;
        if (c->timer.queue != q || q != &w->q_header)
                timer_arm(&w->loop, q, &c->timer);
}

/* HTTP/1.1 "Expect: 100-continue": the client waits for this before it sends the body. */
static void conn_maybe_continue(Conn *c)
{
        static const char cont[] = HTTP_CONTINUE_RESPONSE;

        if (c->protocol != PROTOCOL_HTTP || c->continue_sent || !c->req.http.headers_done ||
            !c->req.http.expect_continue || c->req.http.state != HTTP_PARSE_INCOMPLETE)
                return;
        c->continue_sent = true;
        /* The socket has nothing else queued at this point; should even this not fit, the client sends the body
         * after its own timeout anyway (RFC 9110 10.1.1). */
        (void) send(c->watch.fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Reads land in the worker's one read buffer, shared by every connection: the parser copies what it keeps,
 * so an idle connection holds no read buffer. Only bytes read but not yet parsed when the connection must
 * wait — pipelined requests behind a response that does not fit the socket — are moved to a buffer of its
 * own before another connection's read could overwrite them. */
static void conn_keep_input(Conn *c)
{
        if (c->rpos == c->rlen || c->rbuf != c->worker->rbuf)
                return;
        if (!c->rbuf_own) {
                c->rbuf_own = malloc(CONN_READ_BUFFER);
                if (!c->rbuf_own) {
                        log_error_errno(ENOMEM, "cannot keep a connection's pipelined input: %m");
                        conn_close(c);
                        return;
                }
        }
        c->rlen -= c->rpos;
        memcpy(c->rbuf_own, c->rbuf + c->rpos, c->rlen);
        c->rpos = 0;
        c->rbuf = c->rbuf_own;
}

static void conn_run(Conn *c)
{
        Worker *w = c->worker;

        for (;;) {
                if (c->watch.fd < 0)
                        return;

                if (c->state == CONN_WRITE) {
                        if (!c->writable)
                                return conn_keep_input(c);
                        int r = conn_flush(c);
                        if (r < 0) {
                                conn_close(c);
                                return;
                        }
                        if (r == 0) {
                                /* The socket is full: a large file goes out as the client reads, one socket
                                 * buffer at a time, between the other connections' events. The write timeout
                                 * measures progress: it restarts with every partial write. */
                                c->writable = false;
                                r = conn_watch_out(c);
                                if (r < 0) {
                                        log_warning_errno(r, "cannot watch a connection for writing: %m");
                                        conn_close(c);
                                        return;
                                }
                                timer_arm(&w->loop, &w->q_write, &c->timer);
                                return conn_keep_input(c);
                        }
                        conn_response_done(c);
                        continue;
                }

                if (c->rpos < c->rlen) {
                        c->rpos += conn_feed(c, c->rbuf + c->rpos, c->rlen - c->rpos);
                        HttpParseState st = conn_parse_state(c);
                        if (st == HTTP_PARSE_COMPLETE) {
                                conn_handle(c);
                                continue;
                        }
                        if (st == HTTP_PARSE_ERROR) {
                                unsigned status = c->protocol == PROTOCOL_HTTP ? c->req.http.error_status
                                                                               : c->req.scgi.error_status;
                                conn_respond_error(c, status ?: 400, false);
                                continue;
                        }
                        conn_maybe_continue(c);
                }
                c->rpos = c->rlen = 0;
                if (c->rbuf != w->rbuf) {
                        free(c->rbuf_own);
                        c->rbuf_own = NULL;
                        c->rbuf = w->rbuf;
                }

                if (!c->readable) {
                        conn_arm_read_timer(c);
                        return;
                }
                /* recv() rather than read(): the same on a socket, without the VFS layers read() goes
                 * through first (file permission hooks, fsnotify). */
                ssize_t n = recv(c->watch.fd, c->rbuf, CONN_READ_BUFFER, 0);
                if (n > 0) {
                        c->rlen = (size_t) n;
                        /* A short read drained the socket: the next edge will tell us about more, except the
                         * end of the stream when its edge came with this data. */
                        if ((size_t) n < CONN_READ_BUFFER && !c->peer_closed)
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

        if (c->state == CONN_READ && conn_request_started(c)) {
                /* The header or body deadline passed mid-request: say so, then close. The reply gets one write
                 * timeout to leave. */
                conn_respond_error(c, 408, false);
                if (c->watch.fd < 0)
                        return;
                c->writable = true;
                timer_arm(&w->loop, &w->q_write, &c->timer);
                conn_run(c);
                return;
        }
        conn_close(c);
}
