/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/parse.h"

#define WORKERS_MAX 1024U
#define LISTEN_MAX 64U

typedef enum ExecReady {
        EXEC_READY_STARTED, /* ready once exec'd, like Type=exec */
        EXEC_READY_NOTIFY,  /* ready on its READY=1, like Type=notify */
} ExecReady;

#define WORKER_WATCHDOG_DEFAULT_USEC (10 * USEC_PER_SEC)
#define GRACEFUL_TIMEOUT_DEFAULT_USEC (30 * USEC_PER_SEC)

/* The engine's limits and timeouts (built-in workers). Defaults follow nginx where it has one. */
#define HEADER_TIMEOUT_DEFAULT_USEC (30 * USEC_PER_SEC)    /* first byte (or accept) to the end of the header */
#define KEEPALIVE_TIMEOUT_DEFAULT_USEC (75 * USEC_PER_SEC) /* idle between requests */
#define BODY_TIMEOUT_DEFAULT_USEC (60 * USEC_PER_SEC)      /* no progress reading a request body */
#define WRITE_TIMEOUT_DEFAULT_USEC (60 * USEC_PER_SEC)     /* no progress writing a response */
#define MAX_REQUEST_LINE_DEFAULT 8192U
#define MAX_REQUEST_LINE_CAP 65536U
#define MAX_HEADER_SIZE_DEFAULT 16384U
#define MAX_HEADER_SIZE_CAP (1024U * 1024U)
#define MAX_HEADERS_DEFAULT 100U
#define MAX_HEADERS_CAP 10000U
#define MAX_BODY_SIZE_DEFAULT (1024ULL * 1024ULL)
#define MAX_BODY_SIZE_CAP (1ULL << 40)
#define MAX_CONNECTIONS_DEFAULT 4096U
#define MAX_CONNECTIONS_CAP 1000000U
#define KEEPALIVE_REQUESTS_DEFAULT 1000U
#define HANDLERS_MAX 32U
#define HANDLER_PREFIX_MAX 256U

typedef struct HandlerSpec {
        char prefix[HANDLER_PREFIX_MAX]; /* "" (every request) or "/app", without a trailing slash */
        const char *path;                /* the module's .so */
} HandlerSpec;

typedef struct Options {
        unsigned workers;
        unsigned ready_workers;  /* 0: all */
        uint64_t worker_watchdog_usec;
        bool worker_watchdog_set; /* given explicitly (exec workers default to none) */
        uint64_t graceful_timeout_usec;
        uint64_t exit_idle_usec; /* 0: never */
        uint64_t max_requests;   /* 0: never */
        uint64_t max_requests_jitter;
        ExecReady exec_ready;
        ListenAddress listen[LISTEN_MAX];
        size_t n_listen;
        const char *root; /* NULL: the installed default site */

        /* The engine: limits, timeouts, Server header, handler modules. */
        uint64_t header_timeout_usec, keepalive_timeout_usec, body_timeout_usec, write_timeout_usec;
        unsigned max_request_line, max_header_size, max_headers;
        uint64_t max_body_size;
        unsigned max_connections;   /* per worker */
        unsigned keepalive_requests; /* per connection; 0: no limit */
        const char *server_header;  /* "" : none */
        HandlerSpec handlers[HANDLERS_MAX];
        size_t n_handlers;

        bool help;
        bool version;

        /* Internal: set in the processes the supervisor execs. */
        bool worker_mode;
        unsigned worker_slot;

        char **exec_argv; /* after "--", NULL if none */
} Options;

/*
 * Parses the command line. Pure: no I/O; on failure the reason, one line naming the option, the value and what
 * is allowed, is written to err. Returns 0, -EINVAL for a malformed command line (unknown option, missing
 * value: exit 64, EX_USAGE) or -ERANGE for a well-formed option with an invalid value (exit 78, EX_CONFIG).
 */
int options_parse(int argc, char *argv[], unsigned default_workers, Options *ret, char *err, size_t errlen);

extern const char options_usage[];

/* The command line of a built-in worker: every engine option of o, as "--name=value" strings written to buf
 * (NUL-separated) and pointed to from ret_argv (at most n_argv entries, NULL-terminated). Returns the number of
 * arguments, or -ENOBUFS. Parsing them back gives the same engine options. */
int options_worker_args(const Options *o, char *buf, size_t size, char **ret_argv, size_t n_argv);
