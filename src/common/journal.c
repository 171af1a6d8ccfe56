/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/daemon.h"
#include "common/journal.h"
#include "common/macro.h"

ssize_t journal_encode(const struct iovec *fields, size_t n, char *buf, size_t size)
{
        size_t used = 0;

        for (size_t i = 0; i < n; i++) {
                const char *f = fields[i].iov_base, *eq = memchr(f, '=', fields[i].iov_len);
                if (!eq || eq == f)
                        return -EINVAL;
                size_t klen = (size_t) (eq - f), vlen = fields[i].iov_len - klen - 1;
                /* The binary-safe form only where needed: the plain one is what journalctl shows and what
                 * every reader of the protocol understands. */
                bool binary = memchr(eq + 1, '\n', vlen) != NULL;
                size_t need = binary ? klen + 1 + sizeof(uint64_t) + vlen + 1 : fields[i].iov_len + 1;
                if (need > size - used)
                        return -ENOBUFS;
                if (binary) {
                        uint64_t le = htole64((uint64_t) vlen);
                        memcpy(buf + used, f, klen);
                        buf[used + klen] = '\n';
                        memcpy(buf + used + klen + 1, &le, sizeof le);
                        memcpy(buf + used + klen + 1 + sizeof le, eq + 1, vlen);
                } else
                        memcpy(buf + used, f, fields[i].iov_len);
                used += need;
                buf[used - 1] = '\n';
        }
        return (ssize_t) used;
}

int journal_send(const char *path, const struct iovec *fields, size_t n)
{
        static int fd = -EBADF;
        /* A record is a message of at most 2 KiB and a few short fields (log.c): this holds any of them. */
        char buf[4096];
        struct sockaddr_un a;
        socklen_t alen;
        ssize_t len;
        int r;

        /* The same addressing as $NOTIFY_SOCKET's: a path, or '@' for an abstract name. */
        r = notify_address_parse(path ?: JOURNAL_SOCKET, &a, &alen);
        if (r < 0)
                return r;
        len = journal_encode(fields, n, buf, sizeof buf);
        if (len < 0)
                return (int) len;
        if (fd < 0) {
                fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
        }
        /* Blocking, as sd_journal_sendv() is: under pressure journald slows its writers down rather than
         * lose their structured fields. */
        if (sendto(fd, buf, (size_t) len, MSG_NOSIGNAL, (const struct sockaddr *) &a, alen) < 0)
                return negative_errno();
        return 0;
}
