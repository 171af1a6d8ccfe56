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
#define OPEN_FILE_CACHE_VALID_DEFAULT_USEC (1 * USEC_PER_SEC) /* a found file is served unchecked this long */
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

typedef enum AcceptMode {
        ACCEPT_SHARED,   /* every worker accepts on the inherited sockets (EPOLLEXCLUSIVE) */
        ACCEPT_DISPATCH, /* the supervisor accepts and passes each connection to a free worker */
} AcceptMode;

#define WORKER_IDLE_TIMEOUT_DEFAULT_USEC (30 * USEC_PER_SEC)

typedef struct HandlerSpec {
        char prefix[HANDLER_PREFIX_MAX]; /* "" (every request) or "/app", without a trailing slash */
        const char *path;                /* the module's .so */
} HandlerSpec;

typedef struct Options {
        unsigned workers;        /* -w: the fixed-size shorthand, min_workers = max_workers = workers */
        unsigned min_workers;    /* the pool's bounds, resolved by options_load() from these and -w */
        unsigned max_workers;
        uint64_t worker_idle_timeout_usec; /* retire a worker above min idle this long; 0: never */
        AcceptMode accept;
        unsigned ready_workers;  /* 0: min_workers */
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
        uint64_t open_file_cache_valid_usec; /* 0: every request opens its file */
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

        char **exec_argv; /* after "--" or from the file's exec=, NULL if none */

        const char *config; /* --config=FILE, NULL: the default file (if it exists) */
        bool check_config;  /* --check-config */

        /* Where a value came from, for messages: "FILE:LINE: root", or NULL for the command line ("--root"). */
        const char *root_origin;
        const char *exec_origin;
        const char *handler_origin[HANDLERS_MAX];
        const char *listen_origin; /* of the first --listen/listen= in effect */

        /* Strings from the configuration file (values, exec's argv, origins): owned, freed by options_done().
         * Values from the command line point into argv, which lives as long as the process. */
        char **owned;
        size_t n_owned, n_owned_allocated;
} Options;

/* Every problem found while loading options, one line each, so that --check-config can list them all. */
typedef struct OptionsErrors {
        unsigned n;
        bool truncated;
        size_t len;
        char text[16384];
} OptionsErrors;

/* What options_load() reads; kept by the supervisor to read it again on SIGHUP. */
typedef struct OptionsSource {
        int argc;
        char **argv;
        unsigned default_workers;   /* 0: the online CPUs, looked up only if no workers option is given */
        const char *default_config; /* used if it exists and no --config was given; NULL: none */
} OptionsSource;

/*
 * Parses the command line. Pure: no I/O; on failure the reason, one line naming the option, the value and what
 * is allowed, is written to err. Returns 0, -EINVAL for a malformed command line (unknown option, missing
 * value: exit 64, EX_USAGE) or -ERANGE for a well-formed option with an invalid value (exit 78, EX_CONFIG).
 */
int options_parse(int argc, char *argv[], unsigned default_workers, Options *ret, char *err, size_t errlen);

/*
 * The configuration file (INI, one [drover] section, keys are the long option names), then the command line
 * on top of it: a value given on the command line wins, and a repeatable option given there (--listen,
 * --handler, -- COMMAND) replaces the file's list. The file is --config=FILE, else src->default_config if it
 * exists; workers (--worker) and --help/--version read none. Every problem goes to errors, one line each
 * naming where (FILE:LINE: key, or --option), the value and what is allowed; loading carries on past invalid
 * values so that all are found. *ret is always set and must be released with options_done(). Returns 0,
 * -EINVAL for a malformed command line (exit 64; loading stops there) or -ERANGE if any value was invalid
 * (exit 78).
 */
int options_load(const OptionsSource *src, Options *ret, OptionsErrors *errors);
void options_done(Options *o);

/* Empty again (without touching the text's pages). */
void options_errors_reset(OptionsErrors *e);
void options_error(OptionsErrors *e, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The name of a value in messages: its origin ("FILE:LINE: root") or "--" plus the option name. */
const char *options_label(const char *origin, const char *option, char *buf, size_t size);

extern const char options_usage[];

/* The command line of a built-in worker: every engine option of o, as "--name=value" strings written to buf
 * (NUL-separated) and pointed to from ret_argv (at most n_argv entries, NULL-terminated). Returns the number of
 * arguments, or -ENOBUFS. Parsing them back gives the same engine options. */
int options_worker_args(const Options *o, char *buf, size_t size, char **ret_argv, size_t n_argv);
