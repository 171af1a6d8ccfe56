/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/journal.h"
#include "common/macro.h"

#define FIELD(lit) ((struct iovec){ (void *) (lit), STRLEN(lit) })

static void test_plain_fields(void **state)
{
        const struct iovec f[] = { FIELD("MESSAGE=hello world"), FIELD("PRIORITY=6"),
                                   FIELD("DROVER_EVENT=") };
        const char expected[] = "MESSAGE=hello world\nPRIORITY=6\nDROVER_EVENT=\n";
        char buf[256];

        assert_int_equal(journal_encode(f, ELEMENTSOF(f), buf, sizeof buf), STRLEN(expected));
        assert_memory_equal(buf, expected, STRLEN(expected));
        /* Only '=' ends the name: the value may hold more of them. */
        const struct iovec g[] = { FIELD("MESSAGE=a=b") };
        assert_int_equal(journal_encode(g, 1, buf, sizeof buf), STRLEN("MESSAGE=a=b\n"));
        assert_memory_equal(buf, "MESSAGE=a=b\n", STRLEN("MESSAGE=a=b\n"));
        assert_int_equal(journal_encode(f, 0, buf, sizeof buf), 0);
}

static void test_binary_field(void **state)
{
        /* A value with a newline: the name, '\n', the length in 64-bit little-endian, the value, '\n'. */
        const struct iovec f[] = { FIELD("PRIORITY=3"), FIELD("MESSAGE=line one\nline two"), FIELD("X=1") };
        const char expected[] = "PRIORITY=3\n"
                                "MESSAGE\n\x11\0\0\0\0\0\0\0line one\nline two\n"
                                "X=1\n";
        char buf[256];

        assert_int_equal(journal_encode(f, ELEMENTSOF(f), buf, sizeof buf), STRLEN(expected));
        assert_memory_equal(buf, expected, STRLEN(expected));

        /* A value that is only a newline. */
        const struct iovec g[] = { FIELD("MESSAGE=\n") };
        const char g_expected[] = "MESSAGE\n\x01\0\0\0\0\0\0\0\n\n";
        assert_int_equal(journal_encode(g, 1, buf, sizeof buf), STRLEN(g_expected));
        assert_memory_equal(buf, g_expected, STRLEN(g_expected));
}

static void test_errors(void **state)
{
        char buf[64];

        const struct iovec no_eq[] = { FIELD("MESSAGE=x"), FIELD("NOVALUE") };
        assert_int_equal(journal_encode(no_eq, 2, buf, sizeof buf), -EINVAL);
        const struct iovec no_name[] = { FIELD("=x") };
        assert_int_equal(journal_encode(no_name, 1, buf, sizeof buf), -EINVAL);

        /* Exactly fitting, then one byte short, in both forms. */
        const struct iovec f[] = { FIELD("MESSAGE=abc") };
        assert_int_equal(journal_encode(f, 1, buf, 12), 12);
        assert_int_equal(journal_encode(f, 1, buf, 11), -ENOBUFS);
        const struct iovec b[] = { FIELD("M=a\nb") };
        assert_int_equal(journal_encode(b, 1, buf, 2 + 8 + 3 + 1), 14);
        assert_int_equal(journal_encode(b, 1, buf, 13), -ENOBUFS);
}

/* journal_send() to a socket of the test's own, read back as journald would. */
static void test_send(void **state)
{
        char dir[] = "/tmp/drover-test-journal-XXXXXX", path[128], buf[256];
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        const struct iovec f[] = { FIELD("MESSAGE=two\nlines"), FIELD("SYSLOG_IDENTIFIER=drover") };
        const char expected[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\nSYSLOG_IDENTIFIER=drover\n";

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/socket", dir);
        strcpy(a.sun_path, path);
        int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(rx, (struct sockaddr *) &a, sizeof a), 0);

        assert_int_equal(journal_send(path, f, ELEMENTSOF(f)), 0);
        assert_int_equal(journal_send(path, f, 1), 0);
        ssize_t k = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
        assert_int_equal(k, STRLEN(expected));
        assert_memory_equal(buf, expected, STRLEN(expected));
        k = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
        assert_int_equal(k, STRLEN("MESSAGE\n") + 8 + STRLEN("two\nlines\n"));

        /* Nobody listening (journald gone): an error, for the caller to write to stderr instead. */
        close(rx);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(journal_send(path, f, 1), -ENOENT);
        assert_int_equal(rmdir(dir), 0);
        /* Fields that cannot be encoded are not sent. */
        const struct iovec bad[] = { FIELD("NOVALUE") };
        assert_int_equal(journal_send(path, bad, 1), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_fields),
                cmocka_unit_test(test_binary_field),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_send),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
