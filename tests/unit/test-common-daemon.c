/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/macro.h"

#define SELF 4242

static char **poison_names(void)
{
        return (char **) (uintptr_t) 0x5a5a;
}

static void assert_listen_rejected(const char *pid, const char *fds, const char *names, int expected)
{
        char **l = poison_names();
        assert_int_equal(listen_fds_parse(pid, fds, names, SELF, &l), expected);
        assert_ptr_equal(l, poison_names()); /* untouched */
}

static void test_listen_not_for_us(void **state)
{
        /* Not an error: the fds (if any) belong to someone else, as sd_listen_fds() says with 0. */
        assert_listen_rejected(NULL, "2", NULL, 0);
        assert_listen_rejected("4243", "2", "a:b", 0);
        assert_listen_rejected("4242", NULL, NULL, 0);
        assert_listen_rejected(NULL, NULL, NULL, 0);
}

static void test_listen_malformed(void **state)
{
        /* A LISTEN_PID that is no pid is an error even before we know whether it is ours. */
        assert_listen_rejected("", "1", NULL, -EINVAL);
        assert_listen_rejected("0", "1", NULL, -EINVAL);
        assert_listen_rejected("-4242", "1", NULL, -EINVAL);
        assert_listen_rejected(" 4242", "1", NULL, -EINVAL);
        assert_listen_rejected("4242x", "1", NULL, -EINVAL);
        assert_listen_rejected("99999999999999999999", "1", NULL, -EINVAL);
        /* Bad counts. */
        assert_listen_rejected("4242", "0", NULL, -EINVAL);
        assert_listen_rejected("4242", "", NULL, -EINVAL);
        assert_listen_rejected("4242", "-1", NULL, -EINVAL);
        assert_listen_rejected("4242", "1x", NULL, -EINVAL);
        assert_listen_rejected("4242", "+1", NULL, -EINVAL);
        assert_listen_rejected("4242", "2147483645", NULL, -EINVAL); /* 3 + n must stay an int */
        /* As many names as fds, no more, no fewer. */
        assert_listen_rejected("4242", "2", "http", -EINVAL);
        assert_listen_rejected("4242", "1", "http:scgi", -EINVAL);
        assert_listen_rejected("4242", "2", "a:b:", -EINVAL);
}

/* LISTEN_FDS=fds (our pid) with LISTEN_FDNAMES=names gives the NULL-terminated list expected. */
static void assert_listen_names(const char *fds, const char *names, const char *const *expected)
{
        char **l = NULL;
        size_t n = 0;

        while (expected[n])
                n++;
        assert_int_equal(listen_fds_parse("4242", fds, names, SELF, &l), n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(l[i], expected[i]);
        assert_null(l[n]);
        strv_free(l);
}

static void test_listen_names(void **state)
{
        assert_listen_names("3", "http:scgi:x", (const char *const[]){ "http", "scgi", "x", NULL });
        /* Empty names are names: "a::" is three fds, two of them unnamed. */
        assert_listen_names("3", "a::", (const char *const[]){ "a", "", "", NULL });
        /* No names (unset or empty): each fd is "unknown", as systemd names them. */
        assert_listen_names("2", NULL, (const char *const[]){ "unknown", "unknown", NULL });
        assert_listen_names("1", "", (const char *const[]){ "unknown", NULL });
}

/* The environment form: variables unset whatever the outcome, fds made close-on-exec. */
static void test_listen_take(void **state)
{
        char pid[32], **l = NULL;
        int fd3 = -EBADF, fd4 = -EBADF;

        /* 3 and 4: a pipe's ends, moved there (from above 10, in case the pipe got 3 and 4 itself); dup2()
         * leaves them without FD_CLOEXEC, as a socket-activated process gets them. */
        int p[2];
        assert_int_equal(pipe(p), 0);
        int a = fcntl(p[0], F_DUPFD, 10), b = fcntl(p[1], F_DUPFD, 10);
        assert_true(a >= 10 && b >= 10);
        close(p[0]);
        close(p[1]);
        assert_int_equal(dup2(a, 3), 3);
        assert_int_equal(dup2(b, 4), 4);
        close(a);
        close(b);
        fd3 = 3;
        fd4 = 4;
        assert_int_equal(fcntl(fd3, F_GETFD) & FD_CLOEXEC, 0);
        assert_int_equal(fcntl(fd4, F_GETFD) & FD_CLOEXEC, 0);

        snprintf(pid, sizeof pid, "%i", (int) getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "http:scgi", 1);
        assert_int_equal(listen_fds_take(&l), 2);
        assert_string_equal(l[0], "http");
        assert_string_equal(l[1], "scgi");
        l = strv_free(l);
        assert_null(getenv("LISTEN_PID"));
        assert_null(getenv("LISTEN_FDS"));
        assert_null(getenv("LISTEN_FDNAMES"));
        assert_int_equal(fcntl(fd3, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        assert_int_equal(fcntl(fd4, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

        /* Another process's fds: 0, and the variables go all the same. */
        setenv("LISTEN_PID", "1", 1);
        setenv("LISTEN_FDS", "2", 1);
        assert_int_equal(listen_fds_take(&l), 0);
        assert_null(l);
        assert_null(getenv("LISTEN_PID"));
        assert_null(getenv("LISTEN_FDS"));

        /* A count beyond the open fds: -EBADF, as fd_cloexec() fails in sd_listen_fds(). */
        close(fd4);
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "2", 1);
        assert_int_equal(listen_fds_take(&l), -EBADF);
        assert_null(l);
        assert_null(getenv("LISTEN_FDS"));
        close(fd3);
}

static void test_watchdog(void **state)
{
        uint64_t u = 77;

        assert_int_equal(watchdog_parse(NULL, NULL, SELF, &u), 0);
        assert_int_equal(watchdog_parse(NULL, "4242", SELF, &u), 0);
        assert_int_equal(u, 77);
        assert_int_equal(watchdog_parse("10000000", NULL, SELF, &u), 1);
        assert_int_equal(u, 10000000);
        u = 77;
        assert_int_equal(watchdog_parse("5000", "4242", SELF, &u), 1);
        assert_int_equal(u, 5000);
        u = 77;
        /* Another process's watchdog. */
        assert_int_equal(watchdog_parse("5000", "4243", SELF, &u), 0);
        assert_int_equal(u, 77);
        /* Malformed: neither on nor off. */
        assert_int_equal(watchdog_parse("0", NULL, SELF, &u), -EINVAL);
        assert_int_equal(watchdog_parse("18446744073709551615", NULL, SELF, &u), -EINVAL); /* infinity */
        assert_int_equal(watchdog_parse("18446744073709551616", NULL, SELF, &u), -EINVAL);
        assert_int_equal(watchdog_parse("", NULL, SELF, &u), -EINVAL);
        assert_int_equal(watchdog_parse("10s", NULL, SELF, &u), -EINVAL);
        assert_int_equal(watchdog_parse("5000", "x", SELF, &u), -EINVAL);
        assert_int_equal(watchdog_parse("5000", "0", SELF, &u), -EINVAL);
        assert_int_equal(u, 77);

        char pid[32];
        snprintf(pid, sizeof pid, "%i", (int) getpid());
        setenv("WATCHDOG_USEC", "2000000", 1);
        setenv("WATCHDOG_PID", pid, 1);
        assert_int_equal(watchdog_take(&u), 1);
        assert_int_equal(u, 2000000);
        assert_null(getenv("WATCHDOG_USEC"));
        assert_null(getenv("WATCHDOG_PID"));
}

static void test_notify_address(void **state)
{
        struct sockaddr_un a;
        socklen_t len = 0;

        assert_int_equal(notify_address_parse("/run/x/notify", &a, &len), 0);
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x/notify"));
        assert_memory_equal(a.sun_path, "/run/x/notify", strlen("/run/x/notify"));

        /* Abstract: '@' becomes the leading NUL, and the length ends the name (no NUL after it). */
        assert_int_equal(notify_address_parse("@drover/12/notify", &a, &len), 0);
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("@drover/12/notify"));
        assert_int_equal(a.sun_path[0], '\0');
        assert_memory_equal(a.sun_path + 1, "drover/12/notify", strlen("drover/12/notify"));

        len = 7;
        assert_int_equal(notify_address_parse("", &a, &len), -EINVAL);
        assert_int_equal(notify_address_parse("relative/path", &a, &len), -EINVAL);
        assert_int_equal(notify_address_parse("@", &a, &len), -EINVAL);
        assert_int_equal(notify_address_parse("/", &a, &len), -EINVAL);
        assert_int_equal(notify_address_parse("vsock:2:1234", &a, &len), -EAFNOSUPPORT);
        char longpath[sizeof a.sun_path + 2];
        memset(longpath, 'x', sizeof longpath - 1);
        longpath[0] = '/';
        longpath[sizeof longpath - 1] = '\0';
        assert_int_equal(notify_address_parse(longpath, &a, &len), -EINVAL);
        assert_int_equal(len, 7);
}

/* A receiver bound to an abstract address, as the supervisor's notify socket is. */
static int bind_receiver(char *name, size_t size)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        snprintf(name, size, "@drover-test-daemon/%i", (int) getpid());
        size_t n = strlen(name);
        memcpy(a.sun_path, name, n);
        a.sun_path[0] = '\0';
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, len), 0);
        return fd;
}

static void test_notifier_send(void **state)
{
        char name[108], buf[256];
        Notifier n = NOTIFIER_NULL;
        int rx = bind_receiver(name, sizeof name);

        assert_int_equal(notifier_open(&n, name), 0);
        assert_true(n.fd >= 0);
        assert_int_equal(fcntl(n.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        int fd = n.fd;

        /* Several messages over the one socket, each a datagram of its own, byte for byte. */
        assert_int_equal(notifier_send(&n, "READY=1"), 1);
        assert_int_equal(notifier_send(&n, "STATUS=serving\nWATCHDOG=1"), 1);
        assert_int_equal(n.fd, fd);
        ssize_t k = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
        assert_int_equal(k, strlen("READY=1"));
        assert_memory_equal(buf, "READY=1", (size_t) k);
        k = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
        assert_int_equal(k, strlen("STATUS=serving\nWATCHDOG=1"));
        assert_memory_equal(buf, "STATUS=serving\nWATCHDOG=1", (size_t) k);
        assert_int_equal(recv(rx, buf, sizeof buf, MSG_DONTWAIT), -1);

        assert_int_equal(notifier_send(&n, ""), -EINVAL);

        /* The receiver gone: the error comes back, nothing is raised (no SIGPIPE). */
        close(rx);
        assert_int_equal(notifier_send(&n, "WATCHDOG=1"), -ECONNREFUSED);
        notifier_close(&n);
        assert_int_equal(n.fd, -EBADF);

        /* No $NOTIFY_SOCKET: sending does nothing, successfully, as sd_notify() returns 0. */
        assert_int_equal(notifier_open(&n, NULL), 0);
        assert_int_equal(n.fd, -EBADF);
        assert_int_equal(notifier_send(&n, "READY=1"), 0);

        /* A bad address: refused at open, the notifier untouched. */
        n.fd = 1234;
        assert_int_equal(notifier_open(&n, "relative"), -EINVAL);
        assert_int_equal(n.fd, 1234);
}

/* A path address (systemd's own is /run/systemd/notify). */
static void test_notifier_path(void **state)
{
        char dir[] = "/tmp/drover-test-daemon-XXXXXX", path[128], buf[64];
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        Notifier n = NOTIFIER_NULL;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/notify", dir);
        strcpy(a.sun_path, path);
        int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(rx, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(notifier_open(&n, path), 0);
        assert_int_equal(notifier_send(&n, "STOPPING=1"), 1);
        ssize_t k = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
        assert_int_equal(k, strlen("STOPPING=1"));
        assert_memory_equal(buf, "STOPPING=1", (size_t) k);
        notifier_close(&n);
        close(rx);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listen_not_for_us), cmocka_unit_test(test_listen_malformed),
                cmocka_unit_test(test_listen_names),      cmocka_unit_test(test_listen_take),
                cmocka_unit_test(test_watchdog),          cmocka_unit_test(test_notify_address),
                cmocka_unit_test(test_notifier_send),     cmocka_unit_test(test_notifier_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
