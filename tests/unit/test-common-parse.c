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
#include "common/parse.h"

/* A ListenAddress filled with a recognisable pattern, to check that failures leave the output untouched. */
static ListenAddress poisoned(void)
{
        ListenAddress a;
        memset(&a, 0x5a, sizeof a);
        return a;
}

static void assert_untouched(const ListenAddress *a)
{
        ListenAddress p = poisoned();
        assert_memory_equal(a, &p, sizeof p);
}

static void assert_rejected(const char *s)
{
        ListenAddress a = poisoned();
        int r = parse_listen_address(s, &a);
        if (r != -EINVAL)
                fail_msg("parse_listen_address(\"%s\") = %d, expected -EINVAL", s ? s : "(null)", r);
        assert_untouched(&a);
}

static void assert_formats_as(const ListenAddress *a, const char *expected)
{
        char buf[256];
        assert_int_equal(format_listen_address(a, buf, sizeof buf), 0);
        assert_string_equal(buf, expected);
}

static void test_protocol_strings(void **state)
{
        assert_string_equal(protocol_to_string(PROTOCOL_HTTP), "http");
        assert_string_equal(protocol_to_string(PROTOCOL_SCGI), "scgi");
        assert_null(protocol_to_string(_PROTOCOL_MAX));
        assert_null(protocol_to_string(_PROTOCOL_INVALID));
        assert_null(protocol_to_string((Protocol) 42));

        assert_int_equal(protocol_from_string("http"), PROTOCOL_HTTP);
        assert_int_equal(protocol_from_string("scgi"), PROTOCOL_SCGI);
        assert_int_equal(protocol_from_string("HTTP"), _PROTOCOL_INVALID);
        assert_int_equal(protocol_from_string("https"), _PROTOCOL_INVALID);
        assert_int_equal(protocol_from_string("htt"), _PROTOCOL_INVALID);
        assert_int_equal(protocol_from_string(""), _PROTOCOL_INVALID);
        assert_int_equal(protocol_from_string(NULL), _PROTOCOL_INVALID);
}

static void test_protocol_from_fd_name(void **state)
{
        assert_int_equal(protocol_from_fd_name("http", PROTOCOL_SCGI), PROTOCOL_HTTP);
        assert_int_equal(protocol_from_fd_name("scgi", PROTOCOL_HTTP), PROTOCOL_SCGI);
        /* systemd's default name and the unit name fall back. */
        assert_int_equal(protocol_from_fd_name("unknown", PROTOCOL_HTTP), PROTOCOL_HTTP);
        assert_int_equal(protocol_from_fd_name("unknown", PROTOCOL_SCGI), PROTOCOL_SCGI);
        assert_int_equal(protocol_from_fd_name("drover.socket", PROTOCOL_SCGI), PROTOCOL_SCGI);
        assert_int_equal(protocol_from_fd_name("", PROTOCOL_SCGI), PROTOCOL_SCGI);
        assert_int_equal(protocol_from_fd_name(NULL, PROTOCOL_HTTP), PROTOCOL_HTTP);
        assert_int_equal(protocol_from_fd_name("SCGI", PROTOCOL_HTTP), PROTOCOL_HTTP);
}

static void test_parse_uint64(void **state)
{
        uint64_t v = 42;

        (void) state;
        assert_int_equal(parse_uint64("18446744073709551615", UINT64_MAX, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_uint64("0", 0, &v), 0);
        assert_true(v == 0);
        assert_int_equal(parse_uint64("0009", 9, &v), 0);
        assert_true(v == 9);
        /* Above max, at every width: -ERANGE, output untouched. */
        v = 42;
        assert_int_equal(parse_uint64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_uint64("18446744073709551615", UINT64_MAX - 1, &v), -ERANGE);
        assert_int_equal(parse_uint64("1", 0, &v), -ERANGE);
        assert_int_equal(parse_uint64("10", 9, &v), -ERANGE);
        /* Anything but digits: -EINVAL, even after an overflow. */
        assert_int_equal(parse_uint64(NULL, 10, &v), -EINVAL);
        assert_int_equal(parse_uint64("", 10, &v), -EINVAL);
        assert_int_equal(parse_uint64("+1", 10, &v), -EINVAL);
        assert_int_equal(parse_uint64(" 1", 10, &v), -EINVAL);
        assert_int_equal(parse_uint64("1 ", 10, &v), -EINVAL);
        assert_int_equal(parse_uint64("0x1", 10, &v), -EINVAL);
        assert_int_equal(parse_uint64("99999999999999999999999x", UINT64_MAX, &v), -EINVAL);
        assert_true(v == 42);
}

static void test_parse_unsigned(void **state)
{
        unsigned v;

        v = 99;
        assert_int_equal(parse_unsigned("0", 0, 10, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_unsigned("10", 0, 10, &v), 0);
        assert_int_equal(v, 10);
        assert_int_equal(parse_unsigned("007", 0, 10, &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(parse_unsigned("4294967295", 0, UINT32_MAX, &v), 0);
        assert_int_equal(v, 4294967295U);

        /* Out of range: -ERANGE, output untouched. */
        v = 99;
        assert_int_equal(parse_unsigned("11", 0, 10, &v), -ERANGE);
        assert_int_equal(parse_unsigned("4", 5, 10, &v), -ERANGE);
        assert_int_equal(parse_unsigned("4294967296", 0, UINT32_MAX, &v), -ERANGE);
        assert_int_equal(parse_unsigned("99999999999999999999999999", 0, UINT32_MAX, &v), -ERANGE);
        assert_int_equal(v, 99);

        /* Not a number: -EINVAL, output untouched. */
        static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1a", "a", "0x1", "1.0", "-0" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                v = 99;
                int r = parse_unsigned(bad[i], 0, 100, &v);
                if (r != -EINVAL)
                        fail_msg("parse_unsigned(\"%s\") = %d, expected -EINVAL", bad[i], r);
                assert_int_equal(v, 99);
        }
        assert_int_equal(parse_unsigned(NULL, 0, 100, &v), -EINVAL);
        assert_int_equal(v, 99);
}

static void test_ipv4(void **state)
{
        ListenAddress a = poisoned();

        assert_int_equal(parse_listen_address("127.0.0.1:8080", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_HTTP);
        assert_int_equal(a.sockaddr.in.sin_family, AF_INET);
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 8080);
        assert_int_equal(ntohl(a.sockaddr.in.sin_addr.s_addr), 0x7f000001);
        assert_int_equal(a.socklen, sizeof(struct sockaddr_in));
        assert_formats_as(&a, "http:127.0.0.1:8080");

        a = poisoned();
        assert_int_equal(parse_listen_address("0.0.0.0:1", &a), 0);
        assert_int_equal(a.sockaddr.in.sin_addr.s_addr, htonl(INADDR_ANY));
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 1);

        a = poisoned();
        assert_int_equal(parse_listen_address("255.255.255.255:65535", &a), 0);
        assert_int_equal(ntohl(a.sockaddr.in.sin_addr.s_addr), 0xffffffffU);
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 65535);
        assert_formats_as(&a, "http:255.255.255.255:65535");
}

static void test_ipv6(void **state)
{
        ListenAddress a = poisoned();
        struct in6_addr expected;

        assert_int_equal(parse_listen_address("[::1]:8080", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_HTTP);
        assert_int_equal(a.sockaddr.in6.sin6_family, AF_INET6);
        assert_int_equal(ntohs(a.sockaddr.in6.sin6_port), 8080);
        assert_true(IN6_IS_ADDR_LOOPBACK(&a.sockaddr.in6.sin6_addr));
        assert_int_equal(a.socklen, sizeof(struct sockaddr_in6));
        /* No stray flow info or scope from the poison. */
        assert_int_equal(a.sockaddr.in6.sin6_flowinfo, 0);
        assert_int_equal(a.sockaddr.in6.sin6_scope_id, 0);
        assert_formats_as(&a, "http:[::1]:8080");

        a = poisoned();
        assert_int_equal(parse_listen_address("[::]:443", &a), 0);
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&a.sockaddr.in6.sin6_addr));
        assert_formats_as(&a, "http:[::]:443");

        a = poisoned();
        assert_int_equal(parse_listen_address("[2001:db8::a:b]:65535", &a), 0);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::a:b", &expected), 1);
        assert_memory_equal(&a.sockaddr.in6.sin6_addr, &expected, sizeof expected);
        assert_int_equal(ntohs(a.sockaddr.in6.sin6_port), 65535);

        /* v4-mapped is an IPv6 address. */
        a = poisoned();
        assert_int_equal(parse_listen_address("[::ffff:10.0.0.1]:80", &a), 0);
        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET6);
        assert_true(IN6_IS_ADDR_V4MAPPED(&a.sockaddr.in6.sin6_addr));
}

static void test_unix(void **state)
{
        ListenAddress a = poisoned();
        char path[sizeof a.sockaddr.un.sun_path + 1];

        assert_int_equal(parse_listen_address("/run/x.sock", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_HTTP);
        assert_int_equal(a.sockaddr.un.sun_family, AF_UNIX);
        assert_string_equal(a.sockaddr.un.sun_path, "/run/x.sock");
        assert_int_equal(a.socklen, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock") + 1);
        assert_formats_as(&a, "http:/run/x.sock");

        /* A colon inside a path is part of the path. */
        a = poisoned();
        assert_int_equal(parse_listen_address("/run/a:b", &a), 0);
        assert_int_equal(a.sockaddr.un.sun_family, AF_UNIX);
        assert_string_equal(a.sockaddr.un.sun_path, "/run/a:b");

        /* The longest path that fits with its NUL: sizeof sun_path - 1 bytes. */
        memset(path, 'p', sizeof path);
        path[0] = '/';
        path[sizeof a.sockaddr.un.sun_path - 1] = '\0';
        a = poisoned();
        assert_int_equal(parse_listen_address(path, &a), 0);
        assert_int_equal(strlen(a.sockaddr.un.sun_path), sizeof a.sockaddr.un.sun_path - 1);
        assert_string_equal(a.sockaddr.un.sun_path, path);
        assert_int_equal(a.socklen, sizeof(struct sockaddr_un));

        /* One more byte does not fit. */
        memset(path, 'p', sizeof path);
        path[0] = '/';
        path[sizeof a.sockaddr.un.sun_path] = '\0';
        assert_rejected(path);

        /* Only absolute paths. */
        assert_rejected("run/x.sock");
        assert_rejected("./x.sock");
}

static void test_protocol_prefix(void **state)
{
        ListenAddress a = poisoned();

        assert_int_equal(parse_listen_address("http:127.0.0.1:80", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_HTTP);
        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET);
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 80);

        a = poisoned();
        assert_int_equal(parse_listen_address("scgi:127.0.0.1:4000", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_SCGI);
        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET);
        assert_int_equal(ntohs(a.sockaddr.in.sin_port), 4000);
        assert_formats_as(&a, "scgi:127.0.0.1:4000");

        a = poisoned();
        assert_int_equal(parse_listen_address("scgi:[::1]:4000", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_SCGI);
        assert_int_equal(a.sockaddr.sa.sa_family, AF_INET6);
        assert_formats_as(&a, "scgi:[::1]:4000");

        a = poisoned();
        assert_int_equal(parse_listen_address("scgi:/run/app.sock", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_SCGI);
        assert_int_equal(a.sockaddr.sa.sa_family, AF_UNIX);
        assert_string_equal(a.sockaddr.un.sun_path, "/run/app.sock");
        assert_formats_as(&a, "scgi:/run/app.sock");

        a = poisoned();
        assert_int_equal(parse_listen_address("http:/run/web.sock", &a), 0);
        assert_int_equal(a.protocol, PROTOCOL_HTTP);
        assert_string_equal(a.sockaddr.un.sun_path, "/run/web.sock");

        /* Unknown or differently spelt prefixes, an empty address after the prefix, a doubled prefix. */
        assert_rejected("ftp:127.0.0.1:80");
        assert_rejected("HTTP:127.0.0.1:80");
        assert_rejected("https:127.0.0.1:80");
        assert_rejected("http:");
        assert_rejected("scgi:");
        assert_rejected("http:8080");
        assert_rejected("http:http:127.0.0.1:80");
        assert_rejected("http:scgi:/run/x.sock");
        assert_rejected(":127.0.0.1:80");
}

static void test_bad_ports(void **state)
{
        assert_rejected("127.0.0.1:0");
        assert_rejected("127.0.0.1:65536");
        assert_rejected("127.0.0.1:99999999999");
        assert_rejected("127.0.0.1:abc");
        assert_rejected("127.0.0.1:-1");
        assert_rejected("127.0.0.1:+80");
        assert_rejected("127.0.0.1: 80");
        assert_rejected("127.0.0.1:80 ");
        assert_rejected("127.0.0.1:8o");
        assert_rejected("127.0.0.1:");
        assert_rejected("127.0.0.1");
        assert_rejected("[::1]:0");
        assert_rejected("[::1]:65536");
        assert_rejected("[::1]:abc");
        assert_rejected("[::1]:");
        assert_rejected("[::1]");
        assert_rejected("[::1]8080");
        assert_rejected("scgi:127.0.0.1:0");
}

static void test_bad_hosts(void **state)
{
        assert_rejected("nonsense");
        assert_rejected("");
        assert_rejected(NULL);
        assert_rejected("localhost:80");
        assert_rejected(":80");
        assert_rejected("256.0.0.1:80");
        assert_rejected("1.2.3:80");
        assert_rejected("1.2.3.4.5:80");
        assert_rejected("1.2.3.4:80:90");
        assert_rejected("::1:8080");
        assert_rejected("[::1:8080");
        assert_rejected("::1]:8080");
        assert_rejected("[]:80");
        assert_rejected("[127.0.0.1]:80");
        assert_rejected("[::g]:80");
        assert_rejected("[fe80::1%lo]:80");
        assert_rejected("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:80");
        /* A host longer than any address. */
        assert_rejected("[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:80");
        assert_rejected("0000000000000000127.0.0.1:80");
}

static void test_format_small_buffer(void **state)
{
        ListenAddress a = poisoned();
        char buf[64];

        assert_int_equal(parse_listen_address("127.0.0.1:8080", &a), 0);
        /* "http:127.0.0.1:8080" is 19 bytes: it needs 20 with the NUL. */
        assert_int_equal(format_listen_address(&a, buf, 20), 0);
        assert_string_equal(buf, "http:127.0.0.1:8080");
        assert_int_equal(format_listen_address(&a, buf, 19), -ENOBUFS);

        ListenAddress bad = {};
        bad.sockaddr.sa.sa_family = AF_PACKET;
        assert_int_equal(format_listen_address(&bad, buf, sizeof buf), -EAFNOSUPPORT);
}

static void test_duration(void **state)
{
        static const struct {
                const char *s;
                uint64_t usec;
        } ok[] = {
                { "0", 0 },
                { "10", 10 * USEC_PER_SEC },
                { "10s", 10 * USEC_PER_SEC },
                { "500ms", 500 * USEC_PER_MSEC },
                { "2min", 120 * USEC_PER_SEC },
                { "2m", 120 * USEC_PER_SEC },
                { "1h 30min", 5400 * USEC_PER_SEC },
                { "1h30min", 5400 * USEC_PER_SEC },
                { "1.5s", 1500 * USEC_PER_MSEC },
                { "250us", 250 },
                { "1d", 86400 * USEC_PER_SEC },
                { " 3 s ", 3 * USEC_PER_SEC },
                { "30000000us", 30 * USEC_PER_SEC },
        };
        static const char *const bad[] = {
                "", " ", "s", "-1", "1x", "10 parsecs", "1min 30", "1.", ".", "ms", "1e3", "365days 1s",
                "99999999999999999999",
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                uint64_t v = 4242;
                int r = parse_duration(ok[i].s, &v);
                if (r < 0 || v != ok[i].usec)
                        fail_msg("\"%s\": r=%d v=%llu, expected %llu", ok[i].s, r, (unsigned long long) v,
                                 (unsigned long long) ok[i].usec);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint64_t v = 4242;
                if (parse_duration(bad[i], &v) >= 0)
                        fail_msg("\"%s\" was accepted as %llu", bad[i], (unsigned long long) v);
                assert_int_equal(v, 4242);
        }
        uint64_t v = 4242;
        assert_int_equal(parse_duration(NULL, &v), -EINVAL);
        assert_int_equal(parse_duration("365d", &v), 0);
        assert_int_equal(v, DURATION_MAX);
}

static void test_size(void **state)
{
        static const struct {
                const char *s;
                uint64_t v;
        } good[] = {
                { "0", 0 },          { "512", 512 },           { "1K", 1024 },           { "1k", 1024 },
                { "2KiB", 2048 },    { "10M", 10485760 },      { "1MiB", 1048576 },      { "3G", 3221225472ULL },
                { "1T", 1ULL << 40 }, { "7B", 7 },
        };
        static const char *const bad[] = { "", "K", "-1", " 1", "1 K", "1KB", "1.5M", "0x10", "1Q", "1K ", "+3" };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                v = 12345;
                if (parse_size(good[i].s, UINT64_MAX, &v) != 0 || v != good[i].v)
                        fail_msg("'%s' -> %llu", good[i].s, (unsigned long long) v);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                v = 12345;
                if (parse_size(bad[i], UINT64_MAX, &v) >= 0 || v != 12345)
                        fail_msg("'%s' accepted", bad[i]);
        }
        /* The maximum, and overflow of the multiplication. */
        assert_int_equal(parse_size("1M", 1048576, &v), 0);
        assert_int_equal(parse_size("1M", 1048575, &v), -ERANGE);
        assert_int_equal(parse_size("20000000T", UINT64_MAX, &v), -ERANGE);
        assert_int_equal(parse_size("99999999999999999999999", UINT64_MAX, &v), -ERANGE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_protocol_strings),
                cmocka_unit_test(test_protocol_from_fd_name),
                cmocka_unit_test(test_parse_uint64),
                cmocka_unit_test(test_parse_unsigned),
                cmocka_unit_test(test_ipv4),
                cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_unix),
                cmocka_unit_test(test_protocol_prefix),
                cmocka_unit_test(test_bad_ports),
                cmocka_unit_test(test_bad_hosts),
                cmocka_unit_test(test_format_small_buffer),
                cmocka_unit_test(test_duration),
                cmocka_unit_test(test_size),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
