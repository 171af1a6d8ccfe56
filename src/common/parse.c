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

int parse_uint64(const char *s, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (!s || !*s) /* digits only: no sign, no blanks, no base prefix */
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                unsigned d = (unsigned) (*s - '0');
                if (max < d || v > (max - d) / 10)
                        return s[strspn(s, "0123456789")] ? -EINVAL : -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret)
{
        uint64_t v;
        int r = parse_uint64(s, max, &v);

        if (r < 0)
                return r;
        if (v < min)
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

int parse_duration(const char *s, uint64_t *ret_usec)
{
        static const struct {
                const char *name;
                uint64_t usec;
        } units[] = {
                /* longest first where one name prefixes another ("ms" before "m", "min" before "m") */
                { "usec", 1 },
                { "us", 1 },
                { "msec", USEC_PER_MSEC },
                { "ms", USEC_PER_MSEC },
                { "seconds", USEC_PER_SEC },
                { "second", USEC_PER_SEC },
                { "sec", USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "minutes", 60 * USEC_PER_SEC },
                { "minute", 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "hours", 3600 * USEC_PER_SEC },
                { "hour", 3600 * USEC_PER_SEC },
                { "hr", 3600 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
                { "days", 86400 * USEC_PER_SEC },
                { "day", 86400 * USEC_PER_SEC },
                { "d", 86400 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        bool any = false;

        if (!s)
                return -EINVAL;
        for (const char *p = s;;) {
                uint64_t whole = 0, frac = 0, frac_div = 1, unit = USEC_PER_SEC;
                bool digits = false;

                while (*p == ' ')
                        p++;
                if (*p == '\0')
                        break;
                for (; *p >= '0' && *p <= '9'; p++, digits = true) {
                        if (whole > DURATION_MAX)
                                return -ERANGE;
                        whole = whole * 10 + (uint64_t) (*p - '0');
                }
                if (*p == '.') {
                        if (!digits || p[1] < '0' || p[1] > '9')
                                return -EINVAL; /* "1." and ".5" are typos, not durations */
                        for (p++; *p >= '0' && *p <= '9'; p++)
                                if (frac_div < 1000000000ULL) {
                                        frac = frac * 10 + (uint64_t) (*p - '0');
                                        frac_div *= 10;
                                }
                }
                if (!digits)
                        return -EINVAL;
                while (*p == ' ')
                        p++;
                if (*p >= 'a' && *p <= 'z') {
                        size_t i, n = 0;
                        while (p[n] >= 'a' && p[n] <= 'z')
                                n++;
                        for (i = 0; i < ELEMENTSOF(units); i++)
                                if (strlen(units[i].name) == n && strneq(p, units[i].name, n))
                                        break;
                        if (i == ELEMENTSOF(units))
                                return -EINVAL;
                        unit = units[i].usec;
                        p += n;
                } else if (any)
                        return -EINVAL; /* "1min 30": only the first (or only) number may go bare */
                if (whole > DURATION_MAX / unit)
                        return -ERANGE;
                total += whole * unit + frac * unit / frac_div;
                if (total > DURATION_MAX)
                        return -ERANGE;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

int parse_size(const char *s, uint64_t max, uint64_t *ret)
{
        static const struct {
                const char *name;
                unsigned shift;
        } units[] = {
                { "", 0 },   { "B", 0 },   { "K", 10 },  { "k", 10 },  { "KiB", 10 }, { "M", 20 }, { "MiB", 20 },
                { "G", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
        };
        unsigned long long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].name)) {
                        if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
                                return -ERANGE;
                        v <<= units[i].shift;
                        if (v > max)
                                return -ERANGE;
                        *ret = v;
                        return 0;
                }
        return -EINVAL;
}
