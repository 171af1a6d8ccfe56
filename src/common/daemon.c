/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/macro.h"
#include "common/parse.h"

/* The variables are written by systemd (or the supervisor), never by hand: anything but plain decimal digits
 * in range is malformed. */
static int parse_pid(const char *s, pid_t *ret)
{
        unsigned v;

        if (parse_unsigned(s, 1, INT_MAX, &v) < 0)
                return -EINVAL;
        *ret = (pid_t) v;
        return 0;
}

static char **names_split(const char *s, size_t n)
{
        char **l = calloc(n + 1, sizeof *l);
        if (!l)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                size_t k = s ? strcspn(s, ":") : STRLEN("unknown");
                l[i] = s ? strndup(s, k) : strdup("unknown");
                if (!l[i])
                        return strv_free(l);
                if (s)
                        s += k + (s[k] == ':');
        }
        return l;
}

int listen_fds_parse(const char *pid, const char *fds, const char *names, pid_t self, char ***ret_names)
{
        unsigned n;
        pid_t p;

        if (!pid)
                return 0;
        if (parse_pid(pid, &p) < 0)
                return -EINVAL;
        if (p != self)
                return 0;
        if (!fds)
                return 0;
        if (parse_unsigned(fds, 1, INT_MAX - LISTEN_FDS_START, &n) < 0)
                return -EINVAL;
        if (names && !*names)
                names = NULL; /* systemd splits "" into no names at all: each fd is "unknown" */
        if (names) {
                /* Empty names count: "a::b" names three fds, the second one "". */
                size_t k = 1;
                for (const char *c = names; *c; c++)
                        k += *c == ':';
                if (k != n)
                        return -EINVAL;
        }
        char **l = names_split(names, (size_t) n);
        if (!l)
                return -ENOMEM;
        *ret_names = l;
        return (int) n;
}

int listen_fds_take(char ***ret_names)
{
        _cleanup_strv_free_ char **l = NULL;
        int n;

        n = listen_fds_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES"), getpid(),
                             &l);
        (void) unsetenv("LISTEN_PID");
        (void) unsetenv("LISTEN_FDS");
        (void) unsetenv("LISTEN_FDNAMES");
        if (n <= 0)
                return n;
        /* Ours now: a program we exec must not inherit them (nor does it get the variables that would name
         * them). */
        for (int fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + n; fd++) {
                int flags = fcntl(fd, F_GETFD);
                if (flags < 0 || (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0))
                        return negative_errno();
        }
        *ret_names = TAKE_PTR(l);
        return n;
}

int watchdog_parse(const char *usec, const char *pid, pid_t self, uint64_t *ret_usec)
{
        uint64_t u;
        pid_t p;

        if (!usec)
                return 0;
        if (parse_uint64(usec, UINT64_MAX - 1, &u) < 0 || u == 0)
                return -EINVAL;
        if (pid) {
                if (parse_pid(pid, &p) < 0)
                        return -EINVAL;
                if (p != self)
                        return 0;
        }
        *ret_usec = u;
        return 1;
}

int watchdog_take(uint64_t *ret_usec)
{
        int r = watchdog_parse(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid(), ret_usec);
        (void) unsetenv("WATCHDOG_USEC");
        (void) unsetenv("WATCHDOG_PID");
        return r;
}

int notify_address_parse(const char *value, struct sockaddr_un *ret, socklen_t *ret_len)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        size_t n = strlen(value);

        if (value[0] != '/' && value[0] != '@')
                return n == 0 || !strchr(value, ':') ? -EINVAL : -EAFNOSUPPORT;
        if (n < 2 || n > sizeof a.sun_path)
                return -EINVAL;
        memcpy(a.sun_path, value, n);
        /* An abstract name has no terminating NUL: its length is the address's length. A path's NUL is left
         * out too, as systemd does (the kernel accepts both). */
        if (a.sun_path[0] == '@')
                a.sun_path[0] = '\0';
        *ret = a;
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
}

int notifier_open(Notifier *n, const char *address)
{
        Notifier m = NOTIFIER_NULL;
        int r;

        if (address) {
                r = notify_address_parse(address, &m.address, &m.address_len);
                if (r < 0)
                        return r;
                m.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (m.fd < 0)
                        return negative_errno();
        }
        *n = m;
        return 0;
}

int notifier_send(const Notifier *n, const char *message)
{
        if (!*message)
                return -EINVAL;
        if (n->fd < 0)
                return 0;
        /* Blocking, like sd_notify(): the receiver reads its queue promptly, and a message must not be lost
         * (STOPPING=1 is a promise the supervisor counts on). */
        if (sendto(n->fd, message, strlen(message), MSG_NOSIGNAL, (const struct sockaddr *) &n->address,
                   n->address_len) < 0)
                return negative_errno();
        return 1;
}

void notifier_close(Notifier *n)
{
        n->fd = safe_close(n->fd);
}
