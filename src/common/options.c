/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/options.h"

enum {
        ARG_VERSION = 0x100,
        ARG_WORKER,
        ARG_WORKER_WATCHDOG,
        ARG_GRACEFUL_TIMEOUT,
        ARG_MAX_REQUESTS,
        ARG_MAX_REQUESTS_JITTER,
        ARG_EXIT_IDLE_TIME,
        ARG_READY_WORKERS,
        ARG_EXEC_READY,
};

static const struct option long_options[] = {
        { "workers", required_argument, NULL, 'w' },
        { "listen", required_argument, NULL, 'l' },
        { "root", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "worker-watchdog", required_argument, NULL, ARG_WORKER_WATCHDOG },
        { "graceful-timeout", required_argument, NULL, ARG_GRACEFUL_TIMEOUT },
        { "max-requests", required_argument, NULL, ARG_MAX_REQUESTS },
        { "max-requests-jitter", required_argument, NULL, ARG_MAX_REQUESTS_JITTER },
        { "exit-idle-time", required_argument, NULL, ARG_EXIT_IDLE_TIME },
        { "ready-workers", required_argument, NULL, ARG_READY_WORKERS },
        { "exec-ready", required_argument, NULL, ARG_EXEC_READY },
        { "worker", required_argument, NULL, ARG_WORKER },
        {},
};

const char options_usage[] =
        "Usage: drover [OPTIONS] [-- COMMAND [ARG...]]\n"
        "\n"
        "A socket-activated prefork worker pool: built-in HTTP workers, or N copies of COMMAND started\n"
        "with the socket-activation environment systemd would give it.\n"
        "\n"
        "  -w, --workers=N            number of workers (1..1024; default: online CPUs)\n"
        "  -l, --listen=[PROTO:]ADDR  listen on ADDR when systemd passed no sockets; repeatable.\n"
        "                             ADDR is IPV4:PORT, [IPV6]:PORT or /path; PROTO is http (default)\n"
        "  -r, --root=DIR             document root of the static handler\n"
        "      --worker-watchdog=TIME liveness deadline per worker (default 10s; 0 disables;\n"
        "                             exec workers: none unless given)\n"
        "      --graceful-timeout=TIME how long stopping workers may finish in-flight work (default 30s)\n"
        "      --max-requests=N       recycle a worker after N requests (default 0: never)\n"
        "      --max-requests-jitter=N  add 0..N to each worker's --max-requests\n"
        "      --exit-idle-time=TIME  exit when no connection arrived for TIME (default 0: never)\n"
        "      --ready-workers=N      workers that must be ready before READY=1 (default: all)\n"
        "      --exec-ready=started|notify  when an exec worker counts as ready (default: started)\n"
        "  -h, --help                 show this help\n"
        "      --version              show the version\n";

#define DURATION_ALLOWED "expected a duration such as 500ms, 10s, 2min or 1h (a bare number is seconds)"

#define FAIL(code, ...)                                                                                         \
        do {                                                                                                    \
                snprintf(err, errlen, __VA_ARGS__);                                                             \
                return (code);                                                                                  \
        } while (0)

int options_parse(int argc, char *argv[], unsigned default_workers, Options *ret, char *err, size_t errlen)
{
        Options o = {
                .workers = default_workers,
                .worker_watchdog_usec = WORKER_WATCHDOG_DEFAULT_USEC,
                .graceful_timeout_usec = GRACEFUL_TIMEOUT_DEFAULT_USEC,
        };
        unsigned u;
        int c;

        const char *last_value = NULL, *exit_idle_arg = NULL, *exec_ready_arg = NULL;

        optind = 0; /* full re-initialisation, so the parser can run more than once (tests) */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:w:l:r:h", long_options, NULL)) >= 0) {
                last_value = optarg;
                switch (c) {
                case 'w':
                        if (parse_unsigned(optarg, 1, WORKERS_MAX, &o.workers) < 0)
                                FAIL(-ERANGE, "--workers: invalid value '%s': expected a whole number from 1 to %u",
                                     optarg, WORKERS_MAX);
                        break;
                case 'l':
                        if (o.n_listen >= LISTEN_MAX)
                                FAIL(-ERANGE, "--listen: too many addresses: at most %u are allowed", LISTEN_MAX);
                        if (parse_listen_address(optarg, &o.listen[o.n_listen]) < 0)
                                FAIL(-ERANGE,
                                     "--listen: invalid value '%s': expected [http:|scgi:]IPV4:PORT, "
                                     "[http:|scgi:][IPV6]:PORT or [http:|scgi:]/absolute/path",
                                     optarg);
                        o.n_listen++;
                        break;
                case 'r':
                        if (!*optarg)
                                FAIL(-ERANGE, "--root: invalid value '': expected a directory");
                        o.root = optarg;
                        break;
                case 'h':
                        o.help = true;
                        break;
                case ARG_VERSION:
                        o.version = true;
                        break;
                case ARG_WORKER_WATCHDOG:
                        if (parse_duration(optarg, &o.worker_watchdog_usec) < 0)
                                FAIL(-ERANGE, "--worker-watchdog: invalid value '%s': " DURATION_ALLOWED, optarg);
                        if (o.worker_watchdog_usec > 0 && o.worker_watchdog_usec < 10 * USEC_PER_MSEC)
                                FAIL(-ERANGE, "--worker-watchdog: invalid value '%s': expected 0 (off) or at least 10ms",
                                     optarg);
                        o.worker_watchdog_set = true;
                        break;
                case ARG_GRACEFUL_TIMEOUT:
                        if (parse_duration(optarg, &o.graceful_timeout_usec) < 0)
                                FAIL(-ERANGE, "--graceful-timeout: invalid value '%s': " DURATION_ALLOWED, optarg);
                        break;
                case ARG_EXIT_IDLE_TIME:
                        if (parse_duration(optarg, &o.exit_idle_usec) < 0)
                                FAIL(-ERANGE, "--exit-idle-time: invalid value '%s': " DURATION_ALLOWED, optarg);
                        exit_idle_arg = optarg;
                        break;
                case ARG_MAX_REQUESTS:
                case ARG_MAX_REQUESTS_JITTER: {
                        const char *name = c == ARG_MAX_REQUESTS ? "--max-requests" : "--max-requests-jitter";
                        unsigned long long v;
                        char *end;
                        errno = 0;
                        v = strtoull(optarg, &end, 10);
                        if (*optarg < '0' || *optarg > '9' || *end || errno || v > (1ULL << 48))
                                FAIL(-ERANGE, "%s: invalid value '%s': expected a whole number from 0 to %llu", name,
                                     optarg, 1ULL << 48);
                        *(c == ARG_MAX_REQUESTS ? &o.max_requests : &o.max_requests_jitter) = v;
                        break;
                }
                case ARG_READY_WORKERS:
                        if (parse_unsigned(optarg, 1, WORKERS_MAX, &u) < 0)
                                FAIL(-ERANGE, "--ready-workers: invalid value '%s': expected a whole number from 1 to "
                                     "the number of workers", optarg);
                        o.ready_workers = u;
                        break;
                case ARG_EXEC_READY:
                        if (streq(optarg, "started"))
                                o.exec_ready = EXEC_READY_STARTED;
                        else if (streq(optarg, "notify"))
                                o.exec_ready = EXEC_READY_NOTIFY;
                        else
                                FAIL(-ERANGE, "--exec-ready: invalid value '%s': expected 'started' or 'notify'",
                                     optarg);
                        exec_ready_arg = optarg;
                        break;
                case ARG_WORKER:
                        if (parse_unsigned(optarg, 0, WORKERS_MAX - 1, &o.worker_slot) < 0)
                                FAIL(-ERANGE, "--worker: invalid value '%s': expected a slot from 0 to %u", optarg,
                                     WORKERS_MAX - 1);
                        o.worker_mode = true;
                        break;
                case ':':
                        FAIL(-EINVAL, "option '%s' requires a value", argv[optind - 1]);
                case '?':
                default: {
                        const char *arg = argv[optind - 1];
                        if (strneq(arg, "--", 2)) {
                                /* A long option: unknown, or a flag given a value ("--help=yes"). */
                                size_t n = strcspn(arg + 2, "=");
                                for (const struct option *lo = long_options; lo->name; lo++)
                                        if (strlen(lo->name) == n && strneq(arg + 2, lo->name, n))
                                                FAIL(-EINVAL, "option '--%s' does not take a value", lo->name);
                                FAIL(-EINVAL, "unknown option '%.*s'", (int) (n + 2), arg);
                        }
                        if (optopt > 0 && optopt < 0x80)
                                FAIL(-EINVAL, "unknown option '-%c'", optopt);
                        FAIL(-EINVAL, "unknown option '%s'", arg);
                }
                }
        }

        if (optind < argc) {
                /* getopt_long stops at "--" (consumed) or at the first non-option ("+" in optstring). A "--"
                 * that was the value of the option before it ("-r --") is not the separator. */
                if (!streq(argv[optind - 1], "--") || argv[optind - 1] == last_value)
                        FAIL(-EINVAL, "unexpected argument '%s' (a COMMAND goes after '--')", argv[optind]);
                o.exec_argv = &argv[optind];
        }

        /* Checks across options. */
        if (o.ready_workers > o.workers)
                FAIL(-ERANGE, "--ready-workers: invalid value '%u': expected at most --workers (%u)", o.ready_workers,
                     o.workers);
        if (o.exit_idle_usec > 0 && o.exec_argv)
                FAIL(-ERANGE, "--exit-idle-time: invalid value '%s' with exec workers ('-- %s'): drover cannot see "
                     "their connections; expected 0 (the default) or built-in workers", exit_idle_arg,
                     o.exec_argv[0]);
        if (!o.exec_argv && exec_ready_arg && o.exec_ready != EXEC_READY_STARTED)
                FAIL(-ERANGE, "--exec-ready: invalid value '%s' without a COMMAND: only exec workers (-- COMMAND) "
                     "have it", exec_ready_arg);
        if (o.exec_argv && !o.worker_watchdog_set)
                o.worker_watchdog_usec = 0; /* most programs never send WATCHDOG=1 */

        *ret = o;
        return 0;
}
