/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/options.h"
#include "common/parse.h"
#include "common/stats.h"
#include "handlers/static.h"
#include "proto/http.h"
#include "worker/loop.h"

/* Timeouts of the first HTTP path; the engine issue turns them into options. */
#define HEADER_TIMEOUT_MS (30U * 1000U)    /* first byte of a request (or accept) to its last header byte */
#define KEEPALIVE_TIMEOUT_MS (75U * 1000U) /* idle between requests; nginx's keepalive_timeout */
#define WRITE_TIMEOUT_MS (60U * 1000U)     /* no progress writing a response */
#define DRAIN_IDLE_MS 1000U                /* a draining worker closes a keep-alive connection idle this long */
#define WORKER_CONNECTIONS_MAX 4096U
#define ACCEPT_BATCH 16
#define CONN_READ_BUFFER 4096
#define CONN_HEAD_BUFFER 1024

typedef struct Worker Worker;

typedef struct Listener {
        IoWatch watch;
        Protocol protocol;
        bool registered;
} Listener;

typedef enum ConnState {
        CONN_READ,
        CONN_WRITE,
} ConnState;

typedef struct Conn {
        IoWatch watch; /* first: the loop hands us &watch */
        TimerEntry timer;
        Worker *worker;
        struct Conn *prev, *next;

        ConnState state;
        bool readable, writable; /* edge-triggered readiness not yet consumed */
        bool fresh;              /* accepted, no request answered yet */
        bool peer_closed;        /* EPOLLRDHUP seen: reads end in EOF, which no later edge would announce */
        bool close_after;        /* close once the current response is sent */

        HttpRequest req;
        size_t rpos, rlen;

        size_t head_len, head_off;
        int file_fd;
        uint64_t file_off, file_end;

        char head[CONN_HEAD_BUFFER];
        char rbuf[CONN_READ_BUFFER];
} Conn;

struct Worker {
        Loop loop;
        unsigned slot;
        Listener listeners[LISTEN_MAX];
        size_t n_listeners;
        bool listening;
        IoWatch signal_watch;

        StaticHandler static_handler;

        TimerQueue q_header, q_idle, q_write, q_drain;
        TimerQueue q_ping, q_graceful; /* one entry each */
        TimerEntry ping_timer, graceful_timer;

        WorkerStats *stats; /* the supervisor's shared record, or a private one */
        WorkerStats private_stats;
        uint64_t watchdog_usec;
        uint64_t last_ping_ms;
        uint64_t requests_at_ping;
        unsigned conns_at_ping;
        uint64_t max_requests; /* 0: never retire */
        bool retire_sent;
        uint64_t graceful_timeout_ms;

        Conn *conns;        /* every open connection */
        Conn *free_conns;   /* released, reusable */
        Conn *closed_conns; /* closed in this batch; released after it */
        unsigned n_conns;
        bool draining;

        time_t date_time;
        char date[30];
};

int worker_main(const Options *o);

/* conn.c */
void conn_accept(Worker *w, int fd, Protocol protocol);
void conn_close(Conn *c);
void conn_begin_drain(Conn *c);
void conns_release_closed(Worker *w);
void conn_timeout(Loop *l, TimerEntry *e);
const char *worker_date(Worker *w);
void worker_request_done(Worker *w);
void worker_connection_closed(Worker *w);
