/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/parse.h"

#define WORKERS_MAX 1024U
#define LISTEN_MAX 64U

typedef struct Options {
        unsigned workers;
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
