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
