/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
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
        ARG_HANDLER,
        ARG_SERVER_HEADER,
        ARG_HEADER_TIMEOUT,
        ARG_KEEPALIVE_TIMEOUT,
        ARG_BODY_TIMEOUT,
        ARG_WRITE_TIMEOUT,
        ARG_MAX_REQUEST_LINE,
        ARG_MAX_HEADER_SIZE,
        ARG_MAX_HEADERS,
        ARG_MAX_BODY_SIZE,
        ARG_MAX_CONNECTIONS,
        ARG_KEEPALIVE_REQUESTS,
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
        { "handler", required_argument, NULL, ARG_HANDLER },
        { "server-header", required_argument, NULL, ARG_SERVER_HEADER },
        { "header-timeout", required_argument, NULL, ARG_HEADER_TIMEOUT },
        { "keepalive-timeout", required_argument, NULL, ARG_KEEPALIVE_TIMEOUT },
        { "body-timeout", required_argument, NULL, ARG_BODY_TIMEOUT },
        { "write-timeout", required_argument, NULL, ARG_WRITE_TIMEOUT },
        { "max-request-line", required_argument, NULL, ARG_MAX_REQUEST_LINE },
        { "max-header-size", required_argument, NULL, ARG_MAX_HEADER_SIZE },
        { "max-headers", required_argument, NULL, ARG_MAX_HEADERS },
        { "max-body-size", required_argument, NULL, ARG_MAX_BODY_SIZE },
        { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
        { "keepalive-requests", required_argument, NULL, ARG_KEEPALIVE_REQUESTS },
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
        "      --handler=[/PREFIX=]MODULE.so  serve requests (under /PREFIX) with a handler module;\n"
        "                             repeatable, the longest prefix wins, the static handler serves the rest\n"
        "      --server-header=NAME   the Server: header (default drover; '' to send none)\n"
        "      --header-timeout=TIME  a request's header must arrive within TIME (default 30s; then 408)\n"
        "      --keepalive-timeout=TIME  close a keep-alive connection idle for TIME (default 75s)\n"
        "      --body-timeout=TIME    close when a request body makes no progress for TIME (default 60s)\n"
        "      --write-timeout=TIME   close when a response makes no progress for TIME (default 60s)\n"
        "      --max-request-line=SIZE  longest request target (default 8K; then 414)\n"
        "      --max-header-size=SIZE largest header block (default 16K; then 431)\n"
        "      --max-headers=N        most header fields (default 100; then 431)\n"
        "      --max-body-size=SIZE   largest request body (default 1M; then 413)\n"
        "      --max-connections=N    connections per worker before it stops accepting (default 4096)\n"
        "      --keepalive-requests=N requests per connection before Connection: close (default 1000; 0: no limit)\n"
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
                .header_timeout_usec = HEADER_TIMEOUT_DEFAULT_USEC,
                .keepalive_timeout_usec = KEEPALIVE_TIMEOUT_DEFAULT_USEC,
                .body_timeout_usec = BODY_TIMEOUT_DEFAULT_USEC,
                .write_timeout_usec = WRITE_TIMEOUT_DEFAULT_USEC,
                .max_request_line = MAX_REQUEST_LINE_DEFAULT,
                .max_header_size = MAX_HEADER_SIZE_DEFAULT,
                .max_headers = MAX_HEADERS_DEFAULT,
                .max_body_size = MAX_BODY_SIZE_DEFAULT,
                .max_connections = MAX_CONNECTIONS_DEFAULT,
                .keepalive_requests = KEEPALIVE_REQUESTS_DEFAULT,
                .server_header = "drover",
        };
        unsigned u;
        uint64_t v;
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
                        unsigned long long n;
                        char *end;
                        errno = 0;
                        n = strtoull(optarg, &end, 10);
                        if (*optarg < '0' || *optarg > '9' || *end || errno || n > (1ULL << 48))
                                FAIL(-ERANGE, "%s: invalid value '%s': expected a whole number from 0 to %llu", name,
                                     optarg, 1ULL << 48);
                        *(c == ARG_MAX_REQUESTS ? &o.max_requests : &o.max_requests_jitter) = n;
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
                case ARG_HANDLER: {
                        HandlerSpec *h = &o.handlers[o.n_handlers];
                        const char *path = optarg;
                        if (o.n_handlers >= HANDLERS_MAX)
                                FAIL(-ERANGE, "--handler: too many modules: at most %u are allowed", HANDLERS_MAX);
                        *h = (HandlerSpec){};
                        if (optarg[0] == '/' && strchr(optarg, '=')) {
                                size_t n = (size_t) (strchr(optarg, '=') - optarg);
                                while (n > 1 && optarg[n - 1] == '/')
                                        n--; /* "/app/" means "/app" */
                                if (n >= sizeof h->prefix || memchr(optarg, '?', n) || memchr(optarg, '%', n))
                                        FAIL(-ERANGE, "--handler: invalid value '%s': expected [/PREFIX=]MODULE.so "
                                             "with a plain path of at most %u bytes as PREFIX", optarg,
                                             HANDLER_PREFIX_MAX - 1);
                                if (!(n == 1 && optarg[0] == '/')) /* "/" is every request: "" */
                                        memcpy(h->prefix, optarg, n);
                                path = strchr(optarg, '=') + 1;
                        }
                        if (!*path)
                                FAIL(-ERANGE, "--handler: invalid value '%s': expected [/PREFIX=]MODULE.so", optarg);
                        for (size_t i = 0; i < o.n_handlers; i++)
                                if (streq(o.handlers[i].prefix, h->prefix))
                                        FAIL(-ERANGE, "--handler: invalid value '%s': prefix '%s' already has a "
                                             "module ('%s'); expected one module per prefix", optarg,
                                             h->prefix[0] ? h->prefix : "/", o.handlers[i].path);
                        h->path = path;
                        o.n_handlers++;
                        break;
                }
                case ARG_SERVER_HEADER:
                        for (const char *p = optarg; *p; p++)
                                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                        FAIL(-ERANGE, "--server-header: invalid value '%s': expected printable text, "
                                             "or '' for no Server header", optarg);
                        if (strlen(optarg) > 128)
                                FAIL(-ERANGE, "--server-header: invalid value '%s': expected at most 128 bytes",
                                     optarg);
                        o.server_header = optarg;
                        break;
                case ARG_HEADER_TIMEOUT:
                case ARG_KEEPALIVE_TIMEOUT:
                case ARG_BODY_TIMEOUT:
                case ARG_WRITE_TIMEOUT: {
                        const char *name = c == ARG_HEADER_TIMEOUT      ? "--header-timeout"
                                           : c == ARG_KEEPALIVE_TIMEOUT ? "--keepalive-timeout"
                                           : c == ARG_BODY_TIMEOUT      ? "--body-timeout"
                                                                        : "--write-timeout";
                        if (parse_duration(optarg, &v) < 0 || v < USEC_PER_MSEC)
                                FAIL(-ERANGE, "%s: invalid value '%s': expected a duration of at least 1ms such as "
                                     "500ms, 10s or 2min (a bare number is seconds)", name, optarg);
                        *(c == ARG_HEADER_TIMEOUT      ? &o.header_timeout_usec
                          : c == ARG_KEEPALIVE_TIMEOUT ? &o.keepalive_timeout_usec
                          : c == ARG_BODY_TIMEOUT      ? &o.body_timeout_usec
                                                       : &o.write_timeout_usec) = v;
                        break;
                }
                case ARG_MAX_REQUEST_LINE:
                        if (parse_size(optarg, MAX_REQUEST_LINE_CAP, &v) < 0 || v < 16)
                                FAIL(-ERANGE, "--max-request-line: invalid value '%s': expected a size from 16 to %uK",
                                     optarg, MAX_REQUEST_LINE_CAP / 1024);
                        o.max_request_line = (unsigned) v;
                        break;
                case ARG_MAX_HEADER_SIZE:
                        if (parse_size(optarg, MAX_HEADER_SIZE_CAP, &v) < 0 || v < 256)
                                FAIL(-ERANGE, "--max-header-size: invalid value '%s': expected a size from 256 to %uM",
                                     optarg, MAX_HEADER_SIZE_CAP / (1024 * 1024));
                        o.max_header_size = (unsigned) v;
                        break;
                case ARG_MAX_HEADERS:
                        if (parse_unsigned(optarg, 1, MAX_HEADERS_CAP, &o.max_headers) < 0)
                                FAIL(-ERANGE, "--max-headers: invalid value '%s': expected a whole number from 1 to %u",
                                     optarg, MAX_HEADERS_CAP);
                        break;
                case ARG_MAX_BODY_SIZE:
                        if (parse_size(optarg, MAX_BODY_SIZE_CAP, &o.max_body_size) < 0)
                                FAIL(-ERANGE, "--max-body-size: invalid value '%s': expected a size from 0 to 1T, "
                                     "such as 512K or 10M", optarg);
                        break;
                case ARG_MAX_CONNECTIONS:
                        if (parse_unsigned(optarg, 1, MAX_CONNECTIONS_CAP, &o.max_connections) < 0)
                                FAIL(-ERANGE, "--max-connections: invalid value '%s': expected a whole number from 1 "
                                     "to %u", optarg, MAX_CONNECTIONS_CAP);
                        break;
                case ARG_KEEPALIVE_REQUESTS:
                        if (parse_unsigned(optarg, 0, UINT_MAX, &o.keepalive_requests) < 0)
                                FAIL(-ERANGE, "--keepalive-requests: invalid value '%s': expected a whole number (0: "
                                     "no limit)", optarg);
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
        if (o.exec_argv && o.n_handlers > 0)
                FAIL(-ERANGE, "--handler: invalid value '%s' with exec workers ('-- %s'): modules run in built-in "
                     "workers only", o.handlers[0].path, o.exec_argv[0]);
        if (o.exec_argv && !o.worker_watchdog_set)
                o.worker_watchdog_usec = 0; /* most programs never send WATCHDOG=1 */

        *ret = o;
        return 0;
}

int options_worker_args(const Options *o, char *buf, size_t size, char **ret_argv, size_t n_argv)
{
        size_t used = 0, n = 0;

#define ARG(...)                                                                                                \
        do {                                                                                                    \
                int _k = snprintf(buf + used, size - used, __VA_ARGS__);                                       \
                if (_k < 0 || (size_t) _k >= size - used || n + 1 >= n_argv)                                   \
                        return -ENOBUFS;                                                                        \
                ret_argv[n++] = buf + used;                                                                     \
                used += (size_t) _k + 1;                                                                        \
        } while (0)

        ARG("--header-timeout=%lluus", (unsigned long long) o->header_timeout_usec);
        ARG("--keepalive-timeout=%lluus", (unsigned long long) o->keepalive_timeout_usec);
        ARG("--body-timeout=%lluus", (unsigned long long) o->body_timeout_usec);
        ARG("--write-timeout=%lluus", (unsigned long long) o->write_timeout_usec);
        ARG("--max-request-line=%u", o->max_request_line);
        ARG("--max-header-size=%u", o->max_header_size);
        ARG("--max-headers=%u", o->max_headers);
        ARG("--max-body-size=%llu", (unsigned long long) o->max_body_size);
        ARG("--max-connections=%u", o->max_connections);
        ARG("--keepalive-requests=%u", o->keepalive_requests);
        ARG("--server-header=%s", o->server_header);
        for (size_t i = 0; i < o->n_handlers; i++) {
                if (o->handlers[i].prefix[0])
                        ARG("--handler=%s=%s", o->handlers[i].prefix, o->handlers[i].path);
                else
                        ARG("--handler=%s", o->handlers[i].path);
        }
#undef ARG
        ret_argv[n] = NULL;
        return (int) n;
}
