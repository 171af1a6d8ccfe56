/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "common/options.h"

enum {
        ARG_VERSION = 0x100,
        ARG_WORKER,
};

static const struct option long_options[] = {
        { "workers", required_argument, NULL, 'w' },
        { "listen", required_argument, NULL, 'l' },
        { "root", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "worker", required_argument, NULL, ARG_WORKER },
        {},
};

const char options_usage[] =
        "Usage: drover [OPTIONS] [-- COMMAND [ARG...]]\n"
        "\n"
        "A socket-activated prefork worker pool.\n"
        "\n"
        "  -w, --workers=N            number of workers (1..1024; default: online CPUs)\n"
        "  -l, --listen=[PROTO:]ADDR  listen on ADDR when systemd passed no sockets; repeatable.\n"
        "                             ADDR is IPV4:PORT, [IPV6]:PORT or /path; PROTO is http (default)\n"
        "  -r, --root=DIR             document root of the static handler\n"
        "  -h, --help                 show this help\n"
        "      --version              show the version\n";

#define FAIL(code, ...)                                                                                         \
        do {                                                                                                    \
                snprintf(err, errlen, __VA_ARGS__);                                                             \
                return (code);                                                                                  \
        } while (0)

int options_parse(int argc, char *argv[], unsigned default_workers, Options *ret, char *err, size_t errlen)
{
        Options o = { .workers = default_workers };
        int c;

        const char *last_value = NULL;

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

        *ret = o;
        return 0;
}
