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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_arguments_gives_defaults),
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
                cmocka_unit_test(test_error_text_written_only_on_failure),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
