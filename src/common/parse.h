/* SPDX-License-Identifier: MIT */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Pure parsing helpers: strings in, values out, no I/O and no logging. Each returns 0 or -EINVAL/-ERANGE
 * and leaves its output untouched on failure. */

typedef enum Protocol {
        PROTOCOL_HTTP,
        PROTOCOL_SCGI,
        _PROTOCOL_MAX,
        _PROTOCOL_INVALID = -1,
} Protocol;

const char *protocol_to_string(Protocol p);
Protocol protocol_from_string(const char *s);
/* The protocol a socket handed in by systemd speaks, from its FileDescriptorName=. Unknown names (including
 * systemd's default "unknown" and the unit name) fall back to `fallback`. */
Protocol protocol_from_fd_name(const char *name, Protocol fallback);

typedef struct ListenAddress {
        Protocol protocol;
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_un un;
        } sockaddr;
        socklen_t socklen;
} ListenAddress;

/* "[PROTO:]ADDRESS" where ADDRESS is IPV4:PORT, [IPV6]:PORT or an absolute path of a unix socket. */
int parse_listen_address(const char *s, ListenAddress *ret);
int format_listen_address(const ListenAddress *a, char *buf, size_t len);

/* Decimal digits only (leading zeros allowed): -EINVAL for anything else, -ERANGE above max (or below min). */
int parse_uint64(const char *s, uint64_t max, uint64_t *ret);
int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret);

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define DURATION_MAX (365ULL * 24 * 3600 * USEC_PER_SEC)

/* systemd-style durations: "500ms", "10s", "2min", "1h 30min", "1.5s"; a bare number is seconds. Units: us,
 * ms, s/sec, m/min, h/hr, d. Result in microseconds, at most DURATION_MAX. */
int parse_duration(const char *s, uint64_t *ret_usec);

/* Sizes in bytes: "512", "64K", "1M", "2G", "1T" (binary multiples; "KiB", "MiB" ... and "k" accepted). */
int parse_size(const char *s, uint64_t max, uint64_t *ret);
