/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/parse.h"

static const char *const protocol_names[_PROTOCOL_MAX] = {
        [PROTOCOL_HTTP] = "http",
        [PROTOCOL_SCGI] = "scgi",
};

const char *protocol_to_string(Protocol p)
{
        if (p < 0 || p >= _PROTOCOL_MAX)
                return NULL;
        return protocol_names[p];
}

Protocol protocol_from_string(const char *s)
{
        if (!s)
                return _PROTOCOL_INVALID;
        for (Protocol p = 0; p < _PROTOCOL_MAX; p++)
                if (streq(s, protocol_names[p]))
                        return p;
        return _PROTOCOL_INVALID;
}

Protocol protocol_from_fd_name(const char *name, Protocol fallback)
{
        Protocol p = protocol_from_string(name);
        return p >= 0 ? p : fallback;
}

int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret)
{
        unsigned long v;
        char *end;

        if (!s || *s < '0' || *s > '9') /* no sign, no leading space */
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

static int parse_port(const char *s, uint16_t *ret)
{
        unsigned v;
        int r = parse_unsigned(s, 1, 65535, &v);
        if (r < 0)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int parse_listen_address(const char *s, ListenAddress *ret)
{
        ListenAddress a = { .protocol = PROTOCOL_HTTP };
        const char *colon;
        uint16_t port;

        if (!s || !*s)
                return -EINVAL;

        /* An optional "proto:" prefix. "http:" and "scgi:" cannot start an address, so this is unambiguous. */
        colon = strchr(s, ':');
        if (colon) {
                char proto[8];
                size_t n = (size_t) (colon - s);
                if (n < sizeof proto) {
                        memcpy(proto, s, n);
                        proto[n] = '\0';
                        Protocol p = protocol_from_string(proto);
                        if (p >= 0) {
                                a.protocol = p;
                                s = colon + 1;
                        }
                }
        }

        if (s[0] == '/') {
                size_t n = strlen(s);
                if (n >= sizeof a.sockaddr.un.sun_path)
                        return -EINVAL;
                a.sockaddr.un.sun_family = AF_UNIX;
                memcpy(a.sockaddr.un.sun_path, s, n + 1);
                a.socklen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        } else if (s[0] == '[') {
                char host[INET6_ADDRSTRLEN];
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':' || (size_t) (close - s - 1) >= sizeof host)
                        return -EINVAL;
                memcpy(host, s + 1, (size_t) (close - s - 1));
                host[close - s - 1] = '\0';
                if (parse_port(close + 2, &port) < 0)
                        return -EINVAL;
                a.sockaddr.in6.sin6_family = AF_INET6;
                if (inet_pton(AF_INET6, host, &a.sockaddr.in6.sin6_addr) != 1)
                        return -EINVAL;
                a.sockaddr.in6.sin6_port = htons(port);
                a.socklen = sizeof a.sockaddr.in6;
        } else {
                char host[INET_ADDRSTRLEN];
                const char *c = strrchr(s, ':');
                if (!c || (size_t) (c - s) >= sizeof host)
                        return -EINVAL;
                memcpy(host, s, (size_t) (c - s));
                host[c - s] = '\0';
                if (parse_port(c + 1, &port) < 0)
                        return -EINVAL;
                a.sockaddr.in.sin_family = AF_INET;
                if (inet_pton(AF_INET, host, &a.sockaddr.in.sin_addr) != 1)
                        return -EINVAL;
                a.sockaddr.in.sin_port = htons(port);
                a.socklen = sizeof a.sockaddr.in;
        }

        *ret = a;
        return 0;
}

int format_listen_address(const ListenAddress *a, char *buf, size_t len)
{
        char host[INET6_ADDRSTRLEN];
        int n;

        switch (a->sockaddr.sa.sa_family) {
        case AF_UNIX:
                n = snprintf(buf, len, "%s:%s", protocol_to_string(a->protocol), a->sockaddr.un.sun_path);
                break;
        case AF_INET:
                inet_ntop(AF_INET, &a->sockaddr.in.sin_addr, host, sizeof host);
                n = snprintf(buf, len, "%s:%s:%u", protocol_to_string(a->protocol), host,
                             ntohs(a->sockaddr.in.sin_port));
                break;
        case AF_INET6:
                inet_ntop(AF_INET6, &a->sockaddr.in6.sin6_addr, host, sizeof host);
                n = snprintf(buf, len, "%s:[%s]:%u", protocol_to_string(a->protocol), host,
                             ntohs(a->sockaddr.in6.sin6_port));
                break;
        default:
                return -EAFNOSUPPORT;
        }
        return n < 0 || (size_t) n >= len ? -ENOBUFS : 0;
}
