/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/options.h"

/* The configuration file: options_load() reads it, then the command line on top. Each test writes its file
 * to a temporary path and removes it. */

#define DEFAULT_WORKERS 7U

typedef struct Load {
        int r;
        Options o;
        OptionsErrors errors;
        char path[64];
} Load;

static Load *load_new(const char *text)
{
        Load *l = calloc(1, sizeof *l);
        assert_non_null(l);
        strcpy(l->path, "/tmp/drover-test-config-XXXXXX");
        int fd = mkstemp(l->path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return l;
}

/* argv after "drover"; "%s" in an argument is replaced by the file's path. */
static void load_run(Load *l, const char *default_config, char **args)
{
        static char bufs[8][256];
        char *argv[16] = { (char *) "drover" };
        int argc = 1;

        for (; args && *args; args++, argc++) {
                const char *at = strstr(*args, "%s");
                if (at)
                        snprintf(bufs[argc % 8], sizeof bufs[0], "%.*s%s%s", (int) (at - *args), *args, l->path,
                                 at + 2);
                else
                        snprintf(bufs[argc % 8], sizeof bufs[0], "%s", *args);
                argv[argc] = bufs[argc % 8];
        }
        argv[argc] = NULL;
        OptionsSource src = { .argc = argc, .argv = argv, .default_workers = DEFAULT_WORKERS,
                              .default_config = default_config };
        l->r = options_load(&src, &l->o, &l->errors);
}

/* The file, given with --config=, and the command line args. */
#define LOAD(l, ...) load_run((l), NULL, (char *[]){ "--config=%s", __VA_ARGS__ })

static void load_free(Load *l)
{
        unlink(l->path);
        options_done(&l->o);
        free(l);
}

#define assert_str_contains(haystack, needle)                                                                   \
        do {                                                                                                    \
                const char *_h = (haystack), *_n = (needle);                                                    \
                if (!strstr(_h, _n))                                                                            \
                        fail_msg("\"%s\" does not contain \"%s\"", _h, _n);                                     \
        } while (0)

/* The error text contains "PATH:LINE: rest". */
static void assert_error_at(const Load *l, unsigned line, const char *rest)
{
        char want[512];
        snprintf(want, sizeof want, "%s:%u: %s", l->path, line, rest);
        assert_str_contains(l->errors.text, want);
}

static void test_valid_file(void **state)
{
        Load *l = load_new("# a comment\n"
                           "; another\n"
                           "\n"
                           "[drover]\n"
                           "workers = 4\n"
                           "worker-watchdog = 2s\n"
                           "graceful-timeout=1min\n"
                           "root = /srv/www\n"
                           "listen = 127.0.0.1:8080\n"
                           "listen = scgi:/run/x.sock\n"
                           "handler = /app=/m/app.so\n"
                           "handler = /m/all.so\n"
                           "max-requests = 100\n"
                           "max-requests-jitter = 10\n"
                           "ready-workers = 3\n"
                           "server-header = my server\n"
                           "header-timeout = 5s\n"
                           "keepalive-timeout = 6s\n"
                           "body-timeout = 7s\n"
                           "write-timeout = 8s\n"
                           "max-request-line = 1K\n"
                           "max-header-size = 2K\n"
                           "max-headers = 20\n"
                           "max-body-size = 3M\n"
                           "max-connections = 50\n"
                           "keepalive-requests = 0\n");
        LOAD(l, NULL);
        if (l->r != 0)
                fail_msg("%s", l->errors.text);
        assert_int_equal(l->errors.n, 0);
        assert_int_equal(l->o.workers, 4);
        assert_int_equal(l->o.worker_watchdog_usec, 2 * USEC_PER_SEC);
        assert_int_equal(l->o.graceful_timeout_usec, 60 * USEC_PER_SEC);
        assert_string_equal(l->o.root, "/srv/www");
        assert_int_equal(l->o.n_listen, 2);
        assert_int_equal(l->o.listen[0].protocol, PROTOCOL_HTTP);
        assert_int_equal(l->o.listen[1].protocol, PROTOCOL_SCGI);
        assert_int_equal(l->o.n_handlers, 2);
        assert_string_equal(l->o.handlers[0].prefix, "/app");
        assert_string_equal(l->o.handlers[0].path, "/m/app.so");
        assert_string_equal(l->o.handlers[1].prefix, "");
        assert_int_equal(l->o.max_requests, 100);
        assert_int_equal(l->o.max_requests_jitter, 10);
        assert_int_equal(l->o.ready_workers, 3);
        assert_string_equal(l->o.server_header, "my server");
        assert_int_equal(l->o.header_timeout_usec, 5 * USEC_PER_SEC);
        assert_int_equal(l->o.keepalive_timeout_usec, 6 * USEC_PER_SEC);
        assert_int_equal(l->o.body_timeout_usec, 7 * USEC_PER_SEC);
        assert_int_equal(l->o.write_timeout_usec, 8 * USEC_PER_SEC);
        assert_int_equal(l->o.max_request_line, 1024);
        assert_int_equal(l->o.max_header_size, 2048);
        assert_int_equal(l->o.max_headers, 20);
        assert_int_equal(l->o.max_body_size, 3 * 1024 * 1024);
        assert_int_equal(l->o.max_connections, 50);
        assert_int_equal(l->o.keepalive_requests, 0);
        assert_null(l->o.exec_argv);

        /* Where root came from, for later messages (the supervisor's checks). */
        char want[128];
        snprintf(want, sizeof want, "%s:8: root", l->path);
        assert_string_equal(l->o.root_origin, want);
        load_free(l);
}

static void test_keys_before_any_section(void **state)
{
        Load *l = load_new("workers = 3\n[drover]\nmax-headers = 9\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.workers, 3);
        assert_int_equal(l->o.max_headers, 9);
        load_free(l);
}

static void test_empty_value_and_inline_comment(void **state)
{
        Load *l = load_new("server-header =\nworkers = 5 ; five\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, 0);
        assert_string_equal(l->o.server_header, "");
        assert_int_equal(l->o.workers, 5);
        load_free(l);
}

static void test_invalid_value_names_file_line_key_value(void **state)
{
        Load *l = load_new("[drover]\n\nworkers = abc\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_int_equal(l->errors.n, 1);
        assert_error_at(l, 3, "workers: invalid value 'abc': expected a whole number from 1 to 1024");
        /* The same check as the command line, so the same allowed values and words. */
        assert_int_equal(l->o.workers, DEFAULT_WORKERS);
        load_free(l);
}

static void test_every_value_error_form(void **state)
{
        static const struct {
                const char *line, *expect;
        } cases[] = {
                { "listen = nonsense", "listen: invalid value 'nonsense': expected [http:|scgi:]IPV4:PORT" },
                { "root =", "root: invalid value '': expected a directory" },
                { "worker-watchdog = 5ms", "worker-watchdog: invalid value '5ms': expected 0 (off) or at least 10ms" },
                { "graceful-timeout = soon", "graceful-timeout: invalid value 'soon': expected a duration" },
                { "exit-idle-time = x", "exit-idle-time: invalid value 'x': expected a duration" },
                { "max-requests = -1", "max-requests: invalid value '-1': expected a whole number from 0" },
                { "max-requests-jitter = y", "max-requests-jitter: invalid value 'y'" },
                { "ready-workers = 0", "ready-workers: invalid value '0'" },
                { "exec-ready = sometimes", "exec-ready: invalid value 'sometimes': expected 'started' or 'notify'" },
                { "handler = /app=", "handler: invalid value '/app=': expected [/PREFIX=]MODULE.so" },
                { "header-timeout = 0", "header-timeout: invalid value '0': expected a duration of at least 1ms" },
                { "keepalive-timeout = z", "keepalive-timeout: invalid value 'z'" },
                { "body-timeout = z", "body-timeout: invalid value 'z'" },
                { "write-timeout = z", "write-timeout: invalid value 'z'" },
                { "max-request-line = 8", "max-request-line: invalid value '8': expected a size from 16 to 64K" },
                { "max-header-size = 2M", "max-header-size: invalid value '2M': expected a size from 256 to 1M" },
                { "max-headers = 0", "max-headers: invalid value '0': expected a whole number from 1 to 10000" },
                { "max-body-size = 2T", "max-body-size: invalid value '2T': expected a size from 0 to 1T" },
                { "max-connections = 0", "max-connections: invalid value '0'" },
                { "keepalive-requests = x", "keepalive-requests: invalid value 'x'" },
                { "exec =", "exec: invalid value '': expected a command and its arguments" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[256];
                snprintf(text, sizeof text, "# line 1\n%s\n", cases[i].line);
                Load *l = load_new(text);
                LOAD(l, NULL);
                if (l->r != -ERANGE)
                        fail_msg("%s: %d", cases[i].line, l->r);
                assert_error_at(l, 2, cases[i].expect);
                load_free(l);
        }
}

static void test_every_problem_is_reported(void **state)
{
        Load *l = load_new("workers = abc\n"          /* 1 */
                           "bogus = 1\n"              /* 2 */
                           "this is not ini\n"        /* 3 */
                           "max-headers = 0\n"        /* 4 */
                           "  continued\n"            /* 5 */
                           "[elsewhere]\n"            /* 6 */
                           "root = /x\n");            /* 7 */
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_int_equal(l->errors.n, 6);
        assert_error_at(l, 1, "workers: invalid value 'abc'");
        assert_error_at(l, 2, "unknown key 'bogus'");
        assert_error_at(l, 3, "syntax error: expected 'key = value'");
        assert_error_at(l, 4, "max-headers: invalid value '0'");
        assert_error_at(l, 5, "indented line: continuation lines are not supported");
        assert_error_at(l, 7, "unknown section [elsewhere]: expected [drover]");
        /* In the order of the file, one line each. */
        assert_true(strstr(l->errors.text, ":1: ") < strstr(l->errors.text, ":2: "));
        assert_true(strstr(l->errors.text, ":5: ") < strstr(l->errors.text, ":7: "));
        load_free(l);
}

static void test_unknown_keys(void **state)
{
        /* Command-line-only options are not keys either. */
        static const char *const keys[] = { "wrokers", "worker", "config", "help", "check-config", "version", "w" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char text[128], want[128];
                snprintf(text, sizeof text, "[drover]\n%s = 1\n", keys[i]);
                Load *l = load_new(text);
                LOAD(l, NULL);
                assert_int_equal(l->r, -ERANGE);
                snprintf(want, sizeof want, "unknown key '%s'", keys[i]);
                assert_error_at(l, 2, want);
                load_free(l);
        }
}

static void test_line_too_long(void **state)
{
        char text[1024] = "server-header = ";
        memset(text + strlen(text), 'x', 500);
        strcat(text, "\nworkers = 2\n");
        Load *l = load_new(text);
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_int_equal(l->errors.n, 1);
        assert_error_at(l, 1, "line too long");
        /* The rest of the long line is not taken for a line of its own; the next line is read. */
        assert_int_equal(l->o.workers, 2);
        load_free(l);
}

static void test_missing_files(void **state)
{
        Load *l = load_new("");
        unlink(l->path);

        /* Given explicitly: an error. */
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_str_contains(l->errors.text, "--config: invalid value '");
        assert_str_contains(l->errors.text, "No such file or directory");
        options_done(&l->o);

        /* The default file: fine when missing. */
        load_run(l, l->path, NULL);
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.workers, DEFAULT_WORKERS);
        load_free(l);
}

static void test_default_file_is_read(void **state)
{
        Load *l = load_new("workers = 3\n");
        load_run(l, l->path, NULL);
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.workers, 3);
        options_done(&l->o);

        /* --config= wins over the default. */
        Load *other = load_new("workers = 9\n");
        load_run(other, l->path, (char *[]){ "--config=%s", NULL });
        assert_int_equal(other->r, 0);
        assert_int_equal(other->o.workers, 9);
        load_free(other);
        load_free(l);
}

static void test_command_line_overrides_file(void **state)
{
        Load *l = load_new("workers = 4\nroot = /from/file\nmax-headers = 10\n");
        LOAD(l, "-w", "2", "--max-headers=11", NULL);
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.workers, 2);
        assert_int_equal(l->o.max_headers, 11);
        assert_string_equal(l->o.root, "/from/file"); /* not given on the command line: the file's */
        load_free(l);

        /* Also when --config comes after the options. */
        l = load_new("workers = 4\n");
        load_run(l, NULL, (char *[]){ "--workers=6", "--config=%s", NULL });
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.workers, 6);
        load_free(l);
}

static void test_repeatable_keys(void **state)
{
        Load *l = load_new("listen = 127.0.0.1:1\nlisten = 127.0.0.1:2\nhandler = /a=/a.so\nhandler = /b.so\n");

        /* In the file they add up. */
        LOAD(l, NULL);
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.n_listen, 2);
        assert_int_equal(l->o.n_handlers, 2);
        options_done(&l->o);

        /* On the command line they replace the file's list (and add up among themselves). */
        LOAD(l, "--listen=127.0.0.1:3", "--handler=/c.so", "--handler=/d=/d.so", NULL);
        assert_int_equal(l->r, 0);
        assert_int_equal(l->o.n_listen, 1);
        assert_int_equal(ntohs(l->o.listen[0].sockaddr.in.sin_port), 3);
        assert_int_equal(l->o.n_handlers, 2);
        assert_string_equal(l->o.handlers[0].path, "/c.so");
        assert_string_equal(l->o.handlers[1].prefix, "/d");
        load_free(l);

        /* A prefix given twice in the file is an error, as on the command line. */
        l = load_new("handler = /a=/a.so\nhandler = /a=/b.so\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_error_at(l, 2, "handler: invalid value '/a=/b.so': prefix '/a' already has a module");
        load_free(l);
}

static void test_exec(void **state)
{
        Load *l = load_new("exec =   /usr/bin/prog  -a\tb   c \nexec-ready = notify\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, 0);
        assert_non_null(l->o.exec_argv);
        assert_string_equal(l->o.exec_argv[0], "/usr/bin/prog");
        assert_string_equal(l->o.exec_argv[1], "-a");
        assert_string_equal(l->o.exec_argv[2], "b");
        assert_string_equal(l->o.exec_argv[3], "c");
        assert_null(l->o.exec_argv[4]);
        assert_int_equal(l->o.exec_ready, EXEC_READY_NOTIFY);
        assert_int_equal(l->o.worker_watchdog_usec, 0); /* as with -- COMMAND */
        options_done(&l->o);

        /* "-- COMMAND" on the command line replaces it. */
        LOAD(l, "--", "/bin/other", "x", NULL);
        assert_int_equal(l->r, 0);
        assert_string_equal(l->o.exec_argv[0], "/bin/other");
        assert_string_equal(l->o.exec_argv[1], "x");
        assert_null(l->o.exec_argv[2]);
        assert_null(l->o.exec_origin);
        load_free(l);
}

static void test_checks_across_options_name_the_file(void **state)
{
        Load *l = load_new("workers = 2\nready-workers = 5\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_error_at(l, 2, "ready-workers: invalid value '5': expected at most the number of workers (2)");
        options_done(&l->o);

        /* The command line's workers count. */
        LOAD(l, "--workers=8", NULL);
        assert_int_equal(l->r, 0);
        load_free(l);

        l = load_new("exec = /bin/true\nhandler = /m.so\nexit-idle-time = 5s\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_error_at(l, 2, "handler: invalid value '/m.so' with exec workers");
        assert_error_at(l, 3, "exit-idle-time: invalid value '5s' with exec workers");
        load_free(l);

        l = load_new("exec-ready = notify\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_error_at(l, 1, "exec-ready: invalid value 'notify' without a COMMAND");
        load_free(l);
}

static void test_command_line_errors_are_collected_too(void **state)
{
        Load *l = load_new("workers = x\n");
        LOAD(l, "--max-headers=0", "--root=", NULL);
        assert_int_equal(l->r, -ERANGE);
        assert_int_equal(l->errors.n, 3);
        assert_error_at(l, 1, "workers: invalid value 'x'");
        assert_str_contains(l->errors.text, "\n--max-headers: invalid value '0'");
        assert_str_contains(l->errors.text, "\n--root: invalid value ''");
        options_done(&l->o);

        /* A malformed command line stops at once: exit 64, not a list. */
        LOAD(l, "--no-such-option", NULL);
        assert_int_equal(l->r, -EINVAL);
        assert_string_equal(l->errors.text, "unknown option '--no-such-option'\n");
        load_free(l);
}

static void test_workers_and_help_read_no_file(void **state)
{
        Load *l = load_new("this is broken\n");
        load_run(l, l->path, (char *[]){ "--worker=0", NULL });
        assert_int_equal(l->r, 0);
        assert_true(l->o.worker_mode);
        options_done(&l->o);

        load_run(l, l->path, (char *[]){ "--help", NULL });
        assert_int_equal(l->r, 0);
        assert_true(l->o.help);
        options_done(&l->o);

        load_run(l, l->path, (char *[]){ "--check-config", NULL });
        assert_int_equal(l->r, -ERANGE);
        assert_true(l->o.check_config);
        assert_error_at(l, 1, "syntax error");
        load_free(l);
}

static void test_reload_reads_the_file_again(void **state)
{
        Load *l = load_new("server-header = one\n");
        LOAD(l, NULL);
        assert_int_equal(l->r, 0);
        assert_string_equal(l->o.server_header, "one");
        options_done(&l->o);

        FILE *f = fopen(l->path, "w");
        assert_non_null(f);
        fputs("server-header = two\n", f);
        fclose(f);
        LOAD(l, NULL);
        assert_int_equal(l->r, 0);
        assert_string_equal(l->o.server_header, "two");
        load_free(l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_file),
                cmocka_unit_test(test_keys_before_any_section),
                cmocka_unit_test(test_empty_value_and_inline_comment),
                cmocka_unit_test(test_invalid_value_names_file_line_key_value),
                cmocka_unit_test(test_every_value_error_form),
                cmocka_unit_test(test_every_problem_is_reported),
                cmocka_unit_test(test_unknown_keys),
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_missing_files),
                cmocka_unit_test(test_default_file_is_read),
                cmocka_unit_test(test_command_line_overrides_file),
                cmocka_unit_test(test_repeatable_keys),
                cmocka_unit_test(test_exec),
                cmocka_unit_test(test_checks_across_options_name_the_file),
                cmocka_unit_test(test_command_line_errors_are_collected_too),
                cmocka_unit_test(test_workers_and_help_read_no_file),
                cmocka_unit_test(test_reload_reads_the_file_again),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
