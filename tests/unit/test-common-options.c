/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/options.h"

#define DEFAULT_WORKERS 7U

typedef struct Run {
        int r;
        Options o;
        char err[256];
} Run;

/* argv is NULL-terminated; argc is counted. The error buffer starts out as a sentinel so a test can tell
 * whether options_parse() wrote to it. */
static Run run_argv(char **argv)
{
        Run run = {};
        int argc = 0;

        while (argv[argc])
                argc++;
        memset(&run.o, 0xa5, sizeof run.o);
        strcpy(run.err, "untouched");
        run.r = options_parse(argc, argv, DEFAULT_WORKERS, &run.o, run.err, sizeof run.err);
        return run;
}

#define RUN(...) run_argv((char *[]){ "drover", __VA_ARGS__, NULL })
#define RUN0() run_argv((char *[]){ "drover", NULL })

#define assert_str_contains(haystack, needle)                                                                   \
        do {                                                                                                    \
                const char *_h = (haystack), *_n = (needle);                                                    \
                if (!strstr(_h, _n))                                                                            \
                        fail_msg("\"%s\" does not contain \"%s\"", _h, _n);                                     \
        } while (0)

static void test_no_arguments_gives_defaults(void **state)
{
        Run run = RUN0();

        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, DEFAULT_WORKERS);
        assert_int_equal(run.o.n_listen, 0);
        assert_null(run.o.root);
        assert_false(run.o.help);
        assert_false(run.o.version);
        assert_false(run.o.worker_mode);
        assert_int_equal(run.o.worker_slot, 0);
        assert_null(run.o.exec_argv);
}

/* A default of 0: the online CPUs, looked up only when no workers option is given. */
static void test_default_workers_online_cpus(void **state)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        char *none[] = { "drover", NULL }, *given[] = { "drover", "-w", "3", NULL },
             *min_only[] = { "drover", "--min-workers=1", NULL };
        char err[256];
        Options o;

        assert_int_equal(options_parse(1, none, 0, &o, err, sizeof err), 0);
        assert_int_equal(o.workers, (unsigned) (cpus < 1 ? 1 : cpus > WORKERS_MAX ? WORKERS_MAX : cpus));
        assert_int_equal(o.min_workers, o.workers);
        assert_int_equal(o.max_workers, o.workers);
        options_done(&o);
        assert_int_equal(options_parse(3, given, 0, &o, err, sizeof err), 0);
        assert_int_equal(o.workers, 3);
        options_done(&o);
        /* A bound given alone takes the default as the other one. */
        assert_int_equal(options_parse(2, min_only, 0, &o, err, sizeof err), 0);
        assert_int_equal(o.min_workers, 1);
        assert_int_equal(o.max_workers, o.workers);
        assert_true(o.workers >= 1);
        options_done(&o);
}

static void test_workers_short_and_long(void **state)
{
        Run run;

        run = RUN("-w", "4");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 4);

        run = RUN("-w12");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 12);

        run = RUN("--workers", "3");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 3);

        run = RUN("--workers=9");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 9);

        /* The last one wins. */
        run = RUN("-w", "2", "--workers=5");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 5);
}

static void test_workers_bounds(void **state)
{
        Run run;

        run = RUN("--workers=1");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 1);

        run = RUN("--workers=1024");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, WORKERS_MAX);

        run = RUN("--workers=0");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--workers");
        assert_str_contains(run.err, "'0'");
        assert_str_contains(run.err, "1 to 1024");

        run = RUN("--workers=1025");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--workers");
        assert_str_contains(run.err, "'1025'");
        assert_str_contains(run.err, "1 to 1024");

        run = RUN("--workers=99999999999999999999999");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "'99999999999999999999999'");
}

static void test_workers_not_a_number(void **state)
{
        static const char *const bad[] = { "abc", "-5", "", "+5", " 5", "5 ", "5x", "0x10", "1.5" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char arg[64];
                Run run;

                snprintf(arg, sizeof arg, "--workers=%s", bad[i]);
                run = RUN(arg);
                assert_int_equal(run.r, -ERANGE);
                assert_str_contains(run.err, "--workers");
                char quoted[64];
                snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
                assert_str_contains(run.err, quoted);
                assert_str_contains(run.err, "1 to 1024");
        }

        /* A value starting with '-' is still taken as the value of a required argument. */
        Run run = RUN("-w", "-5");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "'-5'");
}

static void test_missing_value(void **state)
{
        Run run;

        run = RUN("-w");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "-w");
        assert_str_contains(run.err, "requires a value");

        run = RUN("--workers");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--workers");
        assert_str_contains(run.err, "requires a value");

        run = RUN("-l");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "-l");

        run = RUN("--listen");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--listen");

        run = RUN("-r");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "-r");

        run = RUN("--root");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--root");

        run = RUN("--worker");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--worker");
        assert_str_contains(run.err, "requires a value");

        /* After other, valid options. */
        run = RUN("-h", "--workers=2", "-w");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "requires a value");
}

static void test_unknown_option(void **state)
{
        Run run;

        run = RUN("-x");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "unknown option");
        assert_str_contains(run.err, "-x");

        run = RUN("--bogus");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "unknown option");
        assert_str_contains(run.err, "--bogus");

        run = RUN("--bogus=1");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--bogus");

        /* An unknown option in a group of short options. */
        run = RUN("-hq");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "-q");

        /* After valid options: the result is the error, not a partial parse. */
        run = RUN("-w", "3", "-Z");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "-Z");
}

/* An option that takes no value, given one: a usage error whose message names that option (getopt_long()
 * reports it as '?' with optopt set to the option's val, which is 'h' for --help and 0x100 for --version). */
static void test_help_given_a_value(void **state)
{
        Run run = RUN("--help=yes");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--help");
}

static void test_version_given_a_value(void **state)
{
        Run run = RUN("--version=1");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "--version");
}

static void test_help_and_version(void **state)
{
        Run run;

        run = RUN("-h");
        assert_int_equal(run.r, 0);
        assert_true(run.o.help);
        assert_false(run.o.version);

        run = RUN("--help");
        assert_int_equal(run.r, 0);
        assert_true(run.o.help);
        assert_false(run.o.version);

        run = RUN("--version");
        assert_int_equal(run.r, 0);
        assert_false(run.o.help);
        assert_true(run.o.version);

        run = RUN("--help", "--version");
        assert_int_equal(run.r, 0);
        assert_true(run.o.help);
        assert_true(run.o.version);

        /* The usage text documents every public option. */
        assert_str_contains(options_usage, "--workers=N");
        assert_str_contains(options_usage, "--listen=");
        assert_str_contains(options_usage, "--root=DIR");
        assert_str_contains(options_usage, "--help");
        assert_str_contains(options_usage, "--version");
}

static void test_root(void **state)
{
        Run run;

        run = RUN("-r", "/srv/www");
        assert_int_equal(run.r, 0);
        assert_non_null(run.o.root);
        assert_string_equal(run.o.root, "/srv/www");

        run = RUN("--root=relative/dir");
        assert_int_equal(run.r, 0);
        assert_string_equal(run.o.root, "relative/dir");

        run = RUN("--root", "/a", "-r", "/b");
        assert_int_equal(run.r, 0);
        assert_string_equal(run.o.root, "/b");

        run = RUN("--root=");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--root");
        assert_str_contains(run.err, "''");

        run = RUN("-r", "");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--root");
}

static void test_listen(void **state)
{
        Run run;

        run = RUN("-l", "127.0.0.1:8080");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.n_listen, 1);
        assert_int_equal(run.o.listen[0].protocol, PROTOCOL_HTTP);
        assert_int_equal(run.o.listen[0].sockaddr.sa.sa_family, AF_INET);
        assert_int_equal(ntohs(run.o.listen[0].sockaddr.in.sin_port), 8080);
        assert_int_equal(ntohl(run.o.listen[0].sockaddr.in.sin_addr.s_addr), 0x7f000001);

        run = RUN("--listen=scgi:[::1]:9000", "--listen", "/run/drover.sock", "-lhttp:0.0.0.0:80");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.n_listen, 3);
        assert_int_equal(run.o.listen[0].protocol, PROTOCOL_SCGI);
        assert_int_equal(run.o.listen[0].sockaddr.sa.sa_family, AF_INET6);
        assert_int_equal(ntohs(run.o.listen[0].sockaddr.in6.sin6_port), 9000);
        assert_true(IN6_IS_ADDR_LOOPBACK(&run.o.listen[0].sockaddr.in6.sin6_addr));
        assert_int_equal(run.o.listen[1].protocol, PROTOCOL_HTTP);
        assert_int_equal(run.o.listen[1].sockaddr.sa.sa_family, AF_UNIX);
        assert_string_equal(run.o.listen[1].sockaddr.un.sun_path, "/run/drover.sock");
        assert_int_equal(run.o.listen[2].protocol, PROTOCOL_HTTP);
        assert_int_equal(run.o.listen[2].sockaddr.sa.sa_family, AF_INET);
        assert_int_equal(ntohs(run.o.listen[2].sockaddr.in.sin_port), 80);

        run = RUN("--listen=nonsense");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--listen");
        assert_str_contains(run.err, "'nonsense'");
        assert_str_contains(run.err, "IPV4:PORT");

        run = RUN("-l", "127.0.0.1:0");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "'127.0.0.1:0'");
}

static void test_listen_limit(void **state)
{
        char args[LISTEN_MAX + 1][32];
        char *argv[LISTEN_MAX + 3];
        Run run;

        argv[0] = (char *) "drover";
        for (unsigned i = 0; i < LISTEN_MAX + 1; i++) {
                snprintf(args[i], sizeof args[i], "--listen=127.0.0.1:%u", 1000 + i);
                argv[i + 1] = args[i];
        }

        /* Exactly LISTEN_MAX is fine, in order. */
        argv[LISTEN_MAX + 1] = NULL;
        run = run_argv(argv);
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.n_listen, LISTEN_MAX);
        for (unsigned i = 0; i < LISTEN_MAX; i++) {
                assert_int_equal(run.o.listen[i].sockaddr.sa.sa_family, AF_INET);
                assert_int_equal(ntohs(run.o.listen[i].sockaddr.in.sin_port), 1000 + i);
        }

        /* One more is a value error naming the option and the limit. */
        argv[LISTEN_MAX + 1] = args[LISTEN_MAX];
        argv[LISTEN_MAX + 2] = NULL;
        run = run_argv(argv);
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--listen");
        assert_str_contains(run.err, "64");
}

static void test_worker_internal(void **state)
{
        Run run;

        run = RUN("--worker=0");
        assert_int_equal(run.r, 0);
        assert_true(run.o.worker_mode);
        assert_int_equal(run.o.worker_slot, 0);

        run = RUN("--worker", "1023");
        assert_int_equal(run.r, 0);
        assert_true(run.o.worker_mode);
        assert_int_equal(run.o.worker_slot, 1023);

        run = RUN("--worker=1024");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--worker");
        assert_str_contains(run.err, "'1024'");
        assert_str_contains(run.err, "0 to 1023");

        run = RUN("--worker=x");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "'x'");
}

static void test_exec_argv(void **state)
{
        Run run;

        run = RUN("-w", "2", "--", "/bin/cmd", "arg1", "--arg2");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 2);
        assert_non_null(run.o.exec_argv);
        assert_string_equal(run.o.exec_argv[0], "/bin/cmd");
        assert_string_equal(run.o.exec_argv[1], "arg1");
        assert_string_equal(run.o.exec_argv[2], "--arg2");
        assert_null(run.o.exec_argv[3]);

        /* Options after "--" belong to the command. */
        run = RUN("--", "cmd", "-w", "9", "--bogus");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, DEFAULT_WORKERS);
        assert_non_null(run.o.exec_argv);
        assert_string_equal(run.o.exec_argv[0], "cmd");
        assert_string_equal(run.o.exec_argv[1], "-w");
        assert_string_equal(run.o.exec_argv[2], "9");
        assert_string_equal(run.o.exec_argv[3], "--bogus");
        assert_null(run.o.exec_argv[4]);

        /* "--" with nothing after it: no command. */
        run = RUN("-h", "--");
        assert_int_equal(run.r, 0);
        assert_true(run.o.help);
        assert_null(run.o.exec_argv);
}

static void test_stray_argument(void **state)
{
        Run run;

        run = RUN("cmd");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "'cmd'");
        assert_str_contains(run.err, "--");

        run = RUN("-w", "2", "cmd", "arg");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "'cmd'");

        /* Options after a positional argument are not parsed ("+": POSIX order). */
        run = RUN("cmd", "-w", "2");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "'cmd'");

        run = RUN("--workers=3", "-");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "'-'");
}

/* "--" consumed as the value of an option is not the end of the options: what follows is a stray argument,
 * not a command. */
static void test_double_dash_as_option_value(void **state)
{
        Run run;

        run = RUN("-r", "--", "cmd");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "'cmd'");

        run = RUN("--root", "--", "cmd");
        assert_int_equal(run.r, -EINVAL);
        assert_str_contains(run.err, "'cmd'");
}

static void test_reparse(void **state)
{
        /* getopt state is reset on each call: a failed parse leaves nothing behind for the next one. */
        Run run;

        run = RUN("-hw");
        assert_int_equal(run.r, -EINVAL);

        run = RUN("-w", "6", "-l", "/run/a.sock");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 6);
        assert_int_equal(run.o.n_listen, 1);
        assert_false(run.o.help);

        run = RUN("-w", "6", "-l", "/run/a.sock");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.workers, 6);
        assert_int_equal(run.o.n_listen, 1);
}

static void test_error_text_written_only_on_failure(void **state)
{
        Run run;

        run = RUN("-w", "4");
        assert_int_equal(run.r, 0);
        assert_string_equal(run.err, "untouched");

        /* On failure ret is left alone. */
        run = RUN("-w", "0");
        assert_int_equal(run.r, -ERANGE);
        assert_int_equal(run.o.workers, 0xa5a5a5a5U);

        /* A small error buffer is truncated and terminated, not overrun. */
        char err[12];
        memset(err, 'X', sizeof err);
        Options o;
        char *argv[] = { (char *) "drover", (char *) "--workers=0", NULL };
        assert_int_equal(options_parse(2, argv, 1, &o, err, sizeof err), -ERANGE);
        assert_int_equal(strlen(err), sizeof err - 1);
        assert_memory_equal(err, "--workers: ", sizeof err - 1);
}

static void test_lifecycle_defaults(void **state)
{
        Run run = RUN0();
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.worker_watchdog_usec, 10 * USEC_PER_SEC);
        assert_int_equal(run.o.graceful_timeout_usec, 30 * USEC_PER_SEC);
        assert_int_equal(run.o.exit_idle_usec, 0);
        assert_int_equal(run.o.max_requests, 0);
        assert_int_equal(run.o.max_requests_jitter, 0);
        assert_int_equal(run.o.ready_workers, 0);
        assert_int_equal(run.o.exec_ready, EXEC_READY_STARTED);
}

static void test_lifecycle_values(void **state)
{
        Run run = RUN("--worker-watchdog=500ms", "--graceful-timeout=2min", "--exit-idle-time=90",
                      "--max-requests=1000", "--max-requests-jitter=50", "-w", "4", "--ready-workers=3");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.worker_watchdog_usec, 500 * USEC_PER_MSEC);
        assert_int_equal(run.o.graceful_timeout_usec, 120 * USEC_PER_SEC);
        assert_int_equal(run.o.exit_idle_usec, 90 * USEC_PER_SEC);
        assert_int_equal(run.o.max_requests, 1000);
        assert_int_equal(run.o.max_requests_jitter, 50);
        assert_int_equal(run.o.ready_workers, 3);

        run = RUN("--worker-watchdog=0");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.worker_watchdog_usec, 0);
}

static void test_lifecycle_bad_values(void **state)
{
        static const struct {
                const char *arg, *names;
        } cases[] = {
                { "--worker-watchdog=soon", "--worker-watchdog" },
                { "--worker-watchdog=5ms", "--worker-watchdog" },
                { "--graceful-timeout=-1s", "--graceful-timeout" },
                { "--graceful-timeout=10 parsecs", "--graceful-timeout" },
                { "--exit-idle-time=", "--exit-idle-time" },
                { "--max-requests=-5", "--max-requests" },
                { "--max-requests=1e6", "--max-requests" },
                { "--max-requests-jitter=x", "--max-requests-jitter" },
                { "--ready-workers=0", "--ready-workers" },
                { "--exec-ready=sometimes", "--exec-ready" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Run run = RUN((char *) cases[i].arg);
                if (run.r != -ERANGE)
                        fail_msg("%s: returned %d, expected -ERANGE", cases[i].arg, run.r);
                assert_str_contains(run.err, cases[i].names);
        }
}

static void test_ready_workers_above_workers(void **state)
{
        Run run = RUN("-w", "2", "--ready-workers=3");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--ready-workers");
        assert_str_contains(run.err, "'3'");
        assert_str_contains(run.err, "(2)");
}

static void test_exec_workers(void **state)
{
        Run run = RUN("--exec-ready=notify", "--", "/usr/bin/env", "-i");
        assert_int_equal(run.r, 0);
        assert_string_equal(run.o.exec_argv[0], "/usr/bin/env");
        assert_int_equal(run.o.exec_ready, EXEC_READY_NOTIFY);
        /* Most programs never ping: no watchdog unless asked for. */
        assert_int_equal(run.o.worker_watchdog_usec, 0);

        run = RUN("--worker-watchdog=3s", "--", "prog");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.worker_watchdog_usec, 3 * USEC_PER_SEC);

        run = RUN("--exec-ready=notify");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--exec-ready");

        run = RUN("--exit-idle-time=5s", "--", "prog");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--exit-idle-time");
}

static void test_pool_bounds(void **state)
{
        Run run = RUN0();
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.min_workers, DEFAULT_WORKERS); /* -w's default: a fixed pool */
        assert_int_equal(run.o.max_workers, DEFAULT_WORKERS);
        assert_int_equal(run.o.accept, ACCEPT_SHARED);
        assert_int_equal(run.o.worker_idle_timeout_usec, WORKER_IDLE_TIMEOUT_DEFAULT_USEC);

        run = RUN("-w", "3");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.min_workers, 3);
        assert_int_equal(run.o.max_workers, 3);

        run = RUN("--min-workers=1", "--max-workers=6", "--worker-idle-timeout=2s", "--accept=dispatch");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.min_workers, 1);
        assert_int_equal(run.o.max_workers, 6);
        assert_int_equal(run.o.worker_idle_timeout_usec, 2 * USEC_PER_SEC);
        assert_int_equal(run.o.accept, ACCEPT_DISPATCH);

        /* A bound alone: the other one from -w (or its default) where consistent with it. */
        run = RUN("--max-workers=12");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.min_workers, DEFAULT_WORKERS);
        assert_int_equal(run.o.max_workers, 12);
        run = RUN("--max-workers=2");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.min_workers, 2);
        assert_int_equal(run.o.max_workers, 2);
        run = RUN("-w", "2", "--min-workers=5");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.min_workers, 5);
        assert_int_equal(run.o.max_workers, 5);
        run = RUN("--worker-idle-timeout=0");
        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.worker_idle_timeout_usec, 0);
}

static void test_pool_bounds_bad_values(void **state)
{
        static const struct {
                const char *args[4];
                const char *err;
        } cases[] = {
                { { "--min-workers=0" }, "--min-workers: invalid value '0': expected a whole number from 1 to 1024" },
                { { "--max-workers=x" }, "--max-workers: invalid value 'x': expected a whole number from 1 to 1024" },
                { { "--min-workers=4", "--max-workers=3" },
                  "--min-workers: invalid value '4': expected at most --max-workers (3)" },
                { { "--worker-idle-timeout=1ms" }, "--worker-idle-timeout: invalid value '1ms': expected 0 (never)" },
                { { "--accept=all" }, "--accept: invalid value 'all': expected 'shared' or 'dispatch'" },
                { { "--accept=dispatch", "--", "/bin/cat" },
                  "--accept: invalid value 'dispatch' with exec workers ('/bin/cat')" },
                { { "--min-workers=1", "--max-workers=4", "--", "/bin/cat" },
                  "--max-workers: invalid value '4' with exec workers" },
                { { "--min-workers=2", "--ready-workers=3" },
                  "--ready-workers: invalid value '3': expected at most the number of workers (2)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *argv[6] = { (char *) "drover" };
                for (size_t k = 0; k < ELEMENTSOF(cases[i].args) && cases[i].args[k]; k++)
                        argv[k + 1] = (char *) cases[i].args[k];
                Run run = run_argv(argv);
                assert_int_equal(run.r, -ERANGE);
                assert_str_contains(run.err, cases[i].err);
        }
}

static void test_engine_defaults(void **state)
{
        Run run = RUN0();

        assert_int_equal(run.r, 0);
        assert_true(run.o.header_timeout_usec == 30 * USEC_PER_SEC);
        assert_true(run.o.keepalive_timeout_usec == 75 * USEC_PER_SEC);
        assert_true(run.o.body_timeout_usec == 60 * USEC_PER_SEC);
        assert_true(run.o.write_timeout_usec == 60 * USEC_PER_SEC);
        assert_int_equal(run.o.max_request_line, 8192);
        assert_int_equal(run.o.max_header_size, 16384);
        assert_int_equal(run.o.max_headers, 100);
        assert_true(run.o.max_body_size == 1024 * 1024);
        assert_int_equal(run.o.max_connections, 4096);
        assert_int_equal(run.o.keepalive_requests, 1000);
        assert_string_equal(run.o.server_header, "drover");
        assert_int_equal(run.o.n_handlers, 0);
}

static void test_engine_values(void **state)
{
        Run run = RUN("--header-timeout=5s", "--keepalive-timeout=2min", "--body-timeout=750ms", "--write-timeout=1",
                      "--max-request-line=2K", "--max-header-size=1M", "--max-headers=7", "--max-body-size=0",
                      "--max-connections=3", "--keepalive-requests=0", "--server-header=");

        assert_int_equal(run.r, 0);
        assert_true(run.o.header_timeout_usec == 5 * USEC_PER_SEC);
        assert_true(run.o.keepalive_timeout_usec == 120 * USEC_PER_SEC);
        assert_true(run.o.body_timeout_usec == 750 * USEC_PER_MSEC);
        assert_true(run.o.write_timeout_usec == USEC_PER_SEC);
        assert_int_equal(run.o.max_request_line, 2048);
        assert_int_equal(run.o.max_header_size, 1024 * 1024);
        assert_int_equal(run.o.max_headers, 7);
        assert_true(run.o.max_body_size == 0);
        assert_int_equal(run.o.max_connections, 3);
        assert_int_equal(run.o.keepalive_requests, 0);
        assert_string_equal(run.o.server_header, "");
}

static void test_engine_bad_values(void **state)
{
        static const struct {
                const char *arg, *named;
        } cases[] = {
                { "--header-timeout=0", "--header-timeout" },     { "--keepalive-timeout=soon", "--keepalive-timeout" },
                { "--body-timeout=-1", "--body-timeout" },        { "--write-timeout=", "--write-timeout" },
                { "--max-request-line=8", "--max-request-line" }, { "--max-request-line=1M", "--max-request-line" },
                { "--max-header-size=2M", "--max-header-size" },  { "--max-header-size=12Q", "--max-header-size" },
                { "--max-headers=0", "--max-headers" },           { "--max-body-size=2T", "--max-body-size" },
                { "--max-body-size=-5", "--max-body-size" },      { "--max-connections=0", "--max-connections" },
                { "--keepalive-requests=x", "--keepalive-requests" },
                { "--handler=", "--handler" },                    { "--handler=/app=", "--handler" },
                { "--handler=/a?b=x.so", "--handler" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Run run = run_argv((char *[]){ "drover", (char *) cases[i].arg, NULL });
                if (run.r != -ERANGE)
                        fail_msg("%s: %d", cases[i].arg, run.r);
                assert_str_contains(run.err, cases[i].named);
                assert_str_contains(run.err, strchr(cases[i].arg, '=') + 1);
        }

        /* A message is one line: a control character in the value is escaped. */
        Run run = RUN("--server-header=a\nb");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--server-header: invalid value 'a\\nb'");
}

static void test_handlers(void **state)
{
        Run run = RUN("--handler=/srv/all.so", "--handler=/app/=/srv/app.so", "--handler=/api/v1=/srv/v1.so");

        assert_int_equal(run.r, 0);
        assert_int_equal(run.o.n_handlers, 3);
        assert_string_equal(run.o.handlers[0].prefix, "");
        assert_string_equal(run.o.handlers[0].path, "/srv/all.so");
        assert_string_equal(run.o.handlers[1].prefix, "/app");
        assert_string_equal(run.o.handlers[1].path, "/srv/app.so");
        assert_string_equal(run.o.handlers[2].prefix, "/api/v1");

        run = RUN("--handler=/=/srv/all.so");
        assert_int_equal(run.r, 0);
        assert_string_equal(run.o.handlers[0].prefix, "");

        run = RUN("--handler=./rel.so");
        assert_int_equal(run.r, 0);
        assert_string_equal(run.o.handlers[0].path, "./rel.so");

        /* One module per prefix. */
        run = RUN("--handler=/app=/a.so", "--handler=/app/=/b.so");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "/app");
        assert_str_contains(run.err, "/a.so");

        run = RUN("--handler=/a.so", "--", "prog");
        assert_int_equal(run.r, -ERANGE);
        assert_str_contains(run.err, "--handler");
}

/* What the supervisor passes to a worker parses back to the same engine options. */
static void test_worker_args_round_trip(void **state)
{
        Run a = RUN("--header-timeout=1500ms", "--keepalive-timeout=3", "--max-body-size=10M", "--max-headers=9",
                    "--server-header=My Server/1.0", "--handler=/x.so", "--handler=/app=/y.so",
                    "--keepalive-requests=5", "--max-connections=77");
        char buf[4096], *argv[64] = { (char *) "drover" };
        int n;

        assert_int_equal(a.r, 0);
        n = options_worker_args(&a.o, buf, sizeof buf, argv + 1, ELEMENTSOF(argv) - 1);
        assert_true(n > 0);
        assert_null(argv[n + 1]);

        Run b = run_argv(argv);
        assert_int_equal(b.r, 0);
        assert_true(b.o.header_timeout_usec == a.o.header_timeout_usec);
        assert_true(b.o.keepalive_timeout_usec == a.o.keepalive_timeout_usec);
        assert_true(b.o.body_timeout_usec == a.o.body_timeout_usec);
        assert_true(b.o.write_timeout_usec == a.o.write_timeout_usec);
        assert_true(b.o.max_body_size == a.o.max_body_size);
        assert_int_equal(b.o.max_request_line, a.o.max_request_line);
        assert_int_equal(b.o.max_header_size, a.o.max_header_size);
        assert_int_equal(b.o.max_headers, a.o.max_headers);
        assert_int_equal(b.o.max_connections, a.o.max_connections);
        assert_int_equal(b.o.keepalive_requests, a.o.keepalive_requests);
        assert_string_equal(b.o.server_header, "My Server/1.0");
        assert_int_equal(b.o.n_handlers, 2);
        assert_string_equal(b.o.handlers[0].prefix, "");
        assert_string_equal(b.o.handlers[0].path, "/x.so");
        assert_string_equal(b.o.handlers[1].prefix, "/app");
        assert_string_equal(b.o.handlers[1].path, "/y.so");

        /* Too small a buffer is an error, not a truncation. */
        assert_int_equal(options_worker_args(&a.o, buf, 40, argv + 1, ELEMENTSOF(argv) - 1), -ENOBUFS);
        assert_int_equal(options_worker_args(&a.o, buf, sizeof buf, argv + 1, 3), -ENOBUFS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_arguments_gives_defaults),
                cmocka_unit_test(test_default_workers_online_cpus),
                cmocka_unit_test(test_workers_short_and_long),
                cmocka_unit_test(test_workers_bounds),
                cmocka_unit_test(test_workers_not_a_number),
                cmocka_unit_test(test_missing_value),
                cmocka_unit_test(test_unknown_option),
                cmocka_unit_test(test_help_given_a_value),
                cmocka_unit_test(test_version_given_a_value),
                cmocka_unit_test(test_help_and_version),
                cmocka_unit_test(test_root),
                cmocka_unit_test(test_listen),
                cmocka_unit_test(test_listen_limit),
                cmocka_unit_test(test_worker_internal),
                cmocka_unit_test(test_exec_argv),
                cmocka_unit_test(test_stray_argument),
                cmocka_unit_test(test_double_dash_as_option_value),
                cmocka_unit_test(test_reparse),
                cmocka_unit_test(test_lifecycle_defaults),
                cmocka_unit_test(test_lifecycle_values),
                cmocka_unit_test(test_lifecycle_bad_values),
                cmocka_unit_test(test_ready_workers_above_workers),
                cmocka_unit_test(test_exec_workers),
                cmocka_unit_test(test_pool_bounds),
                cmocka_unit_test(test_pool_bounds_bad_values),
                cmocka_unit_test(test_error_text_written_only_on_failure),
                cmocka_unit_test(test_engine_defaults),
                cmocka_unit_test(test_engine_values),
                cmocka_unit_test(test_engine_bad_values),
                cmocka_unit_test(test_handlers),
                cmocka_unit_test(test_worker_args_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
