/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "common/options.h"
#include "common/parse.h"
#include "common/stats.h"
#include "handlers/module.h"
#include "handlers/request.h"
#include "handlers/static.h"
#include "proto/http.h"
#include "proto/scgi.h"
#include "worker/loop.h"

#define DRAIN_IDLE_MS 1000U /* a draining worker closes a keep-alive connection idle this long */
/* Connections accepted per report of a listener (worker.c). One, as nginx's multi_accept off: the listener
 * is level-triggered, so the next epoll_wait() reports it again while connections wait, and no accept4() ends
 * in EAGAIN. Accepting until EAGAIN cost a failed accept4() per report, 0.6–0.7 per connection on close-1k
 * with two workers, for 0.25 fewer epoll_wait() per connection (and ~5 % more CPU per connection). */
#define ACCEPT_BATCH 1
#define STEP_BACK_RECHECK_MS 2U /* a worker that stepped back while connections wait looks again after this */
#define STEP_BACK_MARGIN 1      /* connections beyond its share a worker with churn takes (worker.c) */
#define STEP_BACK_CHURN_MS 10U  /* a worker that closed a connection this recently has churn */
#define STATS_SCAN_MARGIN 16    /* records scanned past the highest one seen in use (worker.c) */
#define CONN_READ_BUFFER 4096
#define CONN_HEAD_INITIAL 1024
#define CONN_BODY_IN_HEAD_MAX 2048 /* a body from memory up to this is sent in one buffer with its head */
#define CONN_FREE_KEEP 16 /* closed connection objects (with their buffers) kept for reuse */
#define IDLE_TRIM_MS 1000U /* a worker without connections this long gives its free memory back */

typedef struct Worker Worker;

/* How a worker's listening sockets sit in its epoll set (the accept policy, worker.c). */
typedef enum ListenMode {
        LISTEN_OFF,      /* not in the epoll set: draining, or at a limit */
        LISTEN_DOORBELL, /* stepped back above its share: shared and edge-triggered, to hear of new connections */
        LISTEN_ON,       /* exclusive and level-triggered: accepting */
} ListenMode;

typedef struct Listener {
        IoWatch watch;
        Protocol protocol;
        bool registered;
} Listener;

typedef enum ConnState {
        CONN_READ,  /* reading (and parsing) a request */
        CONN_WRITE, /* writing a response; nothing more is read meanwhile */
} ConnState;

/*
 * One client connection. Its parser (HTTP or SCGI, by the listener it came from) and buffers stay allocated
 * when the Conn is closed and reused for a later connection: accepting costs no allocation in the steady
 * state. It has no read buffer of its own (see conn_keep_input()), and the parser's arena starts small.
 */
typedef struct Conn {
        IoWatch watch; /* first: the loop hands us &watch */
        TimerEntry timer;
        Worker *worker;
        struct Conn *prev, *next;

        Protocol protocol;
        Protocol parser_protocol; /* which parser below is allocated; _PROTOCOL_INVALID: none */
        ConnState state;
        bool readable, writable; /* edge-triggered readiness not yet consumed */
        bool registered;         /* in the epoll set */
        bool watch_out;          /* EPOLLOUT in its interest: a write found the socket full (conn.c) */
        bool fresh;              /* accepted, no request answered yet */
        bool nodelay;            /* TCP_NODELAY set (see conn_flush()) */
        bool peer_closed;        /* EPOLLRDHUP seen: reads end in EOF, which no later edge would announce */
        bool close_after;        /* close once the current response is sent */
        bool continue_sent;      /* "100 Continue" sent for the current request */
        bool head_only;          /* the current response has no body on the wire (HEAD, 304) */
        bool body_in_head;       /* the current response's body was copied behind its head */
        StaticHeadCache *head_cache; /* the current response is a plain 200 of this cache entry (see
                                      * conn_frame_response()); NULL otherwise */
        unsigned requests;       /* answered on this connection */

        union {
                HttpRequest http;
                ScgiRequest scgi;
        } req;
        char *rbuf;     /* the worker's rbuf, or rbuf_own (see conn_keep_input()) */
        char *rbuf_own; /* pipelined input kept while the connection waits, or NULL */
        size_t rpos, rlen;

        /* The response being written: head, then the body from memory or from a file. */
        drover_response resp;
        char *head;
        size_t head_cap, head_len, head_off;
        size_t body_off;
        uint64_t file_off, file_end;

        struct sockaddr_storage peer;
        socklen_t peer_len;
} Conn;

struct Worker {
        Loop loop;
        unsigned slot;
        Listener listeners[LISTEN_MAX];
        size_t n_listeners;
        ListenMode listen_mode;
        IoWatch signal_watch;

        StaticHandler static_handler;
        Module modules[HANDLERS_MAX];
        size_t n_modules;
        HttpLimits limits;
        unsigned max_connections;
        unsigned keepalive_requests; /* 0: no limit */
        const char *server;          /* the Server header, NULL: none */
        size_t server_len;
        bool server_checked; /* server passed http_check_field_value() */

        /* Scratch for the one request being handled (handling is synchronous): the decoded path, the
         * request's headers as the handlers see them, and SCGI's header names translated to HTTP's. */
        char *path_buf;
        drover_header *header_buf;
        char *name_buf;

        TimerQueue q_header, q_idle, q_body, q_write, q_drain;
        TimerQueue q_ping, q_graceful, q_trim; /* one entry each */
        TimerEntry ping_timer, graceful_timer, trim_timer;

        WorkerStats *stats; /* the supervisor's shared record, or a private one */
        WorkerStats private_stats;
        WorkerStats *pool_stats; /* every worker's record (NULL: no shared memory) */
        size_t n_pool_stats, pool_scan_end;
        TimerQueue q_step_back;
        TimerEntry step_back_timer;
        uint64_t watchdog_usec;
        uint64_t last_ping_ms;
        uint64_t busy_ms; /* spent handling events since the last ping: the load it reports */
        uint64_t requests_at_ping;
        unsigned conns_at_ping;
        uint64_t max_requests; /* 0: never retire */
        bool retire_sent;
        uint64_t graceful_timeout_ms;
        uint64_t last_close_ms; /* when a connection last closed: churn (worker.c, the accept policy) */

        /* --accept=dispatch (dispatch.c): the socketpair with the supervisor, -EBADF in shared mode or once
         * the supervisor closed it (dispatch_eof). */
        IoWatch dispatch;
        bool dispatch_eof;
        Protocol dispatch_protocols[LISTEN_MAX];
        size_t n_dispatch_protocols;

        Conn *conns;        /* every open connection */
        Conn *free_conns;   /* released, reusable */
        unsigned n_free_conns;
        Conn *closed_conns; /* closed in this batch; released after it */
        unsigned n_conns;
        bool draining;
        uint8_t read_first_hits;     /* the last reads right after accept, 1: it found data (conn.c) */
        unsigned read_first_skipped; /* connections registered without that read, to probe now and then */

        time_t date_time;
        char date[30];
        bool date_checked; /* date passed http_check_field_value() when it was formatted */

        char rbuf[CONN_READ_BUFFER]; /* every connection reads here (see conn_keep_input()) */
};

int worker_main(const Options *o);
void worker_begin_drain(Worker *w);

/* dispatch.c */
int dispatch_setup(Worker *w);
bool dispatch_enabled(const Worker *w);
void dispatch_connection_closed(Worker *w);

/* conn.c */
void conn_accept(Worker *w, int fd, Protocol protocol, const struct sockaddr *peer, socklen_t peer_len);
void conn_free(Conn *c);
void conn_close(Conn *c);
void conn_begin_drain(Conn *c);
void conns_release_closed(Worker *w);
void conn_timeout(Loop *l, TimerEntry *e);
const char *worker_date(Worker *w);
void worker_request_done(Worker *w);
void worker_connection_closed(Worker *w);
