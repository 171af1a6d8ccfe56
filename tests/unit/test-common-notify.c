/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/notify.h"

static NotifyMessage poisoned(void)
{
        NotifyMessage m;
        memset(&m, 0x5a, sizeof m);
        return m;
}

/* Parses a string literal (its length, not its NUL). */
#define PARSE(lit, m) notify_parse((lit), STRLEN(lit), (m))

static void assert_empty_message(const NotifyMessage *m)
{
        assert_false(m->ready);
        assert_false(m->stopping);
        assert_false(m->watchdog);
        assert_false(m->watchdog_trigger);
        assert_false(m->has_status);
        assert_string_equal(m->status, "");
        assert_int_equal(m->errno_value, 0);
}

static void assert_rejected(const char *buf, size_t len)
{
        NotifyMessage m = poisoned(), p = poisoned();
        assert_int_equal(notify_parse(buf, len, &m), -EBADMSG);
        assert_memory_equal(&m, &p, sizeof m);
}

static void test_ready(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("READY=1", &m), 0);
        assert_true(m.ready);
        assert_false(m.stopping);
        assert_false(m.watchdog);
        assert_false(m.watchdog_trigger);
        assert_false(m.has_status);
        assert_int_equal(m.errno_value, 0);

        /* Trailing newline. */
        m = poisoned();
        assert_int_equal(PARSE("READY=1\n", &m), 0);
        assert_true(m.ready);
        assert_false(m.stopping);

        /* Other values are not READY=1. */
        m = poisoned();
        assert_int_equal(PARSE("READY=0", &m), 0);
        assert_empty_message(&m);
        m = poisoned();
        assert_int_equal(PARSE("READY=11", &m), 0);
        assert_empty_message(&m);
        m = poisoned();
        assert_int_equal(PARSE("READY=1 ", &m), 0);
        assert_empty_message(&m);
        m = poisoned();
        assert_int_equal(PARSE("ready=1", &m), 0);
        assert_empty_message(&m);
}

static void test_stopping(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("STOPPING=1\n", &m), 0);
        assert_true(m.stopping);
        assert_false(m.ready);
        assert_false(m.watchdog);
        assert_false(m.has_status);
}

static void test_watchdog(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("WATCHDOG=1", &m), 0);
        assert_true(m.watchdog);
        assert_false(m.watchdog_trigger);
        assert_false(m.ready);

        m = poisoned();
        assert_int_equal(PARSE("WATCHDOG=trigger", &m), 0);
        assert_true(m.watchdog_trigger);
        assert_false(m.watchdog);

        m = poisoned();
        assert_int_equal(PARSE("WATCHDOG=1\nWATCHDOG=trigger\n", &m), 0);
        assert_true(m.watchdog);
        assert_true(m.watchdog_trigger);

        m = poisoned();
        assert_int_equal(PARSE("WATCHDOG=triggered", &m), 0);
        assert_empty_message(&m);
}

static void test_several_assignments(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("READY=1\nSTATUS=Serving 4 workers\nERRNO=12\nWATCHDOG=1\nSTOPPING=1", &m), 0);
        assert_true(m.ready);
        assert_true(m.stopping);
        assert_true(m.watchdog);
        assert_false(m.watchdog_trigger);
        assert_true(m.has_status);
        assert_string_equal(m.status, "Serving 4 workers");
        assert_int_equal(m.errno_value, 12);
}

static void test_status(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("STATUS=hello world", &m), 0);
        assert_true(m.has_status);
        assert_string_equal(m.status, "hello world");
        assert_false(m.ready);

        /* An empty status is still a status. */
        m = poisoned();
        assert_int_equal(PARSE("STATUS=", &m), 0);
        assert_true(m.has_status);
        assert_string_equal(m.status, "");

        /* The value may contain '='; the last STATUS= wins. */
        m = poisoned();
        assert_int_equal(PARSE("STATUS=a=b\nSTATUS=second\n", &m), 0);
        assert_string_equal(m.status, "second");
        m = poisoned();
        assert_int_equal(PARSE("STATUS=x=y", &m), 0);
        assert_string_equal(m.status, "x=y");

        /* Not STATUS: a longer key, no '='. */
        m = poisoned();
        assert_int_equal(PARSE("STATUSX=1", &m), 0);
        assert_false(m.has_status);
        assert_string_equal(m.status, "");
}

static void test_status_truncation(void **state)
{
        NotifyMessage m;
        char buf[600];
        char expected[sizeof m.status];

        /* Exactly sizeof status - 1 bytes fit. */
        memcpy(buf, "STATUS=", 7);
        for (size_t i = 0; i < sizeof m.status - 1; i++)
                buf[7 + i] = (char) ('a' + i % 26);
        m = poisoned();
        assert_int_equal(notify_parse(buf, 7 + sizeof m.status - 1, &m), 0);
        assert_true(m.has_status);
        assert_int_equal(strlen(m.status), sizeof m.status - 1);
        assert_memory_equal(m.status, buf + 7, sizeof m.status - 1);

        /* A longer value is cut there, and the assignment after it is still parsed. */
        for (size_t i = 0; i < 400; i++)
                buf[7 + i] = (char) ('A' + i % 26);
        memcpy(buf + 7 + 400, "\nREADY=1", 8);
        m = poisoned();
        assert_int_equal(notify_parse(buf, 7 + 400 + 8, &m), 0);
        assert_true(m.has_status);
        assert_true(m.ready);
        memcpy(expected, buf + 7, sizeof expected - 1);
        expected[sizeof expected - 1] = '\0';
        assert_int_equal(strlen(m.status), 255);
        assert_string_equal(m.status, expected);
}

static void test_errno(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("ERRNO=2", &m), 0);
        assert_int_equal(m.errno_value, 2);
        assert_false(m.ready);

        m = poisoned();
        assert_int_equal(PARSE("ERRNO=0", &m), 0);
        assert_int_equal(m.errno_value, 0);

        m = poisoned();
        assert_int_equal(PARSE("ERRNO=4095", &m), 0);
        assert_int_equal(m.errno_value, 4095);

        /* Invalid values are ignored, the message is still valid. */
        static const char *const bad[] = {
                "ERRNO=4096", "ERRNO=-1", "ERRNO=abc", "ERRNO=", "ERRNO= 5", "ERRNO=5x",
                "ERRNO=123456789012345678901234567890",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                m = poisoned();
                assert_int_equal(notify_parse(bad[i], strlen(bad[i]), &m), 0);
                if (m.errno_value != 0)
                        fail_msg("\"%s\" gave errno_value %d", bad[i], m.errno_value);
                assert_false(m.ready);
        }

        /* A later invalid ERRNO= does not clear an earlier valid one. */
        m = poisoned();
        assert_int_equal(PARSE("ERRNO=13\nERRNO=x", &m), 0);
        assert_int_equal(m.errno_value, 13);
}

static void test_unknown_lines_ignored(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("X_DROVER_FOO=bar", &m), 0);
        assert_empty_message(&m);

        m = poisoned();
        assert_int_equal(PARSE("MAINPID=42\nno-equals-sign\n\nREADY=1\nFDSTORE=1\n", &m), 0);
        assert_true(m.ready);
        assert_false(m.stopping);
        assert_false(m.has_status);
        assert_int_equal(m.errno_value, 0);

        /* An "=" alone is an assignment (of nothing to nothing), which systemd ignores. */
        m = poisoned();
        assert_int_equal(PARSE("=", &m), 0);
        assert_empty_message(&m);
}

static void test_rejected(void **state)
{
        /* Empty. */
        assert_rejected("", 0);
        assert_rejected("READY=1", 0);

        /* Nothing that is an assignment. */
        assert_rejected("\n", 1);
        assert_rejected("\n\n\n", 3);
        assert_rejected("READY", 5);
        assert_rejected("hello\nworld\n", 12);

        /* A NUL byte anywhere. */
        assert_rejected("\0", 1);
        assert_rejected("READY=1\0", 8);
        assert_rejected("READY=1\0STOPPING=1", 18);
        assert_rejected("\0READY=1", 8);
        assert_rejected("STATUS=a\0b", 10);
}

static void test_length_is_respected(void **state)
{
        NotifyMessage m = poisoned();

        /* Only the first len bytes count: "READY=1" cut to "READY=". */
        assert_int_equal(notify_parse("READY=1", 6, &m), 0);
        assert_false(m.ready);

        m = poisoned();
        assert_int_equal(notify_parse("READY=1\nSTOPPING=1", 7, &m), 0);
        assert_true(m.ready);
        assert_false(m.stopping);
}

static void test_retire(void **state)
{
        NotifyMessage m = poisoned();

        assert_int_equal(PARSE("X_DROVER_RETIRE=1", &m), 0);
        assert_true(m.retire);
        assert_false(m.ready);
        assert_false(m.stopping);

        m = poisoned();
        assert_int_equal(PARSE("WATCHDOG=1\nX_DROVER_RETIRE=1\n", &m), 0);
        assert_true(m.retire);
        assert_true(m.watchdog);

        /* Only the exact assignment counts. */
        m = poisoned();
        assert_int_equal(PARSE("X_DROVER_RETIRE=0\nX_DROVER_RETIRE=yes", &m), 0);
        assert_false(m.retire);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ready),
                cmocka_unit_test(test_stopping),
                cmocka_unit_test(test_watchdog),
                cmocka_unit_test(test_retire),
                cmocka_unit_test(test_several_assignments),
                cmocka_unit_test(test_status),
                cmocka_unit_test(test_status_truncation),
                cmocka_unit_test(test_errno),
                cmocka_unit_test(test_unknown_lines_ignored),
                cmocka_unit_test(test_rejected),
                cmocka_unit_test(test_length_is_respected),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
