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

#include "common/macro.h"
#include "proto/http.h"

/* ---- helpers ---------------------------------------------------------------------------------------- */

static int setup_request(void **state)
{
        HttpRequest *r = malloc(sizeof *r);
        if (!r)
                return -1;
        memset(r, 0x5a, sizeof *r); /* http_request_init() must not rely on zeroed memory */
        http_request_init(r);
        *state = r;
        return 0;
}

static int teardown_request(void **state)
{
        free(*state);
        return 0;
}

static size_t feed_str(HttpRequest *r, const char *s)
{
        return http_request_feed(r, s, strlen(s));
}

static void assert_url(const HttpRequest *r, const char *expected)
{
        size_t len;
        const char *url = http_request_url(r, &len);
        assert_int_equal(len, strlen(expected));
        assert_memory_equal(url, expected, len);
}

static void assert_header(const HttpRequest *r, const char *name, const char *expected)
{
        size_t len = SIZE_MAX;
        const char *v = http_request_header(r, name, &len);
        if (!v)
                fail_msg("header \"%s\" not found", name);
        if (len != strlen(expected) || memcmp(v, expected, len) != 0)
                fail_msg("header \"%s\" is \"%.*s\", expected \"%s\"", name, (int) len, v, expected);
}

static void assert_no_header(const HttpRequest *r, const char *name)
{
        size_t len = 12345;
        assert_null(http_request_header(r, name, &len));
        assert_int_equal(len, 12345);
}

/* Feeds a whole request that must be complete and consume exactly all of it. */
static void assert_complete(HttpRequest *r, const char *req)
{
        assert_int_equal(feed_str(r, req), strlen(req));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->error_status, 0);
}

/* Feeds bytes that must end in an error with this status. */
static void assert_error(HttpRequest *r, const char *data, size_t len, unsigned status)
{
        size_t n = http_request_feed(r, data, len);
        assert_true(n <= len);
        if (r->state != HTTP_PARSE_ERROR)
                fail_msg("state %d after %zu of %zu bytes, expected HTTP_PARSE_ERROR (%u)", (int) r->state, n, len,
                         status);
        assert_int_equal(r->error_status, status);
        /* Once failed, nothing more is consumed. */
        assert_int_equal(http_request_feed(r, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 18), 0);
        assert_int_equal(r->state, HTTP_PARSE_ERROR);
        assert_int_equal(r->error_status, status);
}

static void assert_error_str(HttpRequest *r, const char *data, unsigned status)
{
        assert_error(r, data, strlen(data), status);
}

/* A growable string for building large requests. */
typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                b->cap = (b->len + n + 1) * 2;
                b->p = realloc(b->p, b->cap);
                assert_non_null(b->p);
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void buf_str(Buf *b, const char *s)
{
        buf_add(b, s, strlen(s));
}

static void buf_fill(Buf *b, char c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                buf_add(b, &c, 1);
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

static void test_init_state(void **state)
{
        HttpRequest *r = *state;

        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_int_equal(r->error_status, 0);
        assert_false(r->started);
        assert_false(r->headers_done);
        assert_int_equal(r->n_headers, 0);
        assert_int_equal(r->url_len, 0);
        assert_int_equal(r->arena_used, 0);

        /* Nothing fed, nothing consumed. */
        assert_int_equal(http_request_feed(r, "", 0), 0);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_false(r->started);

        assert_int_equal(http_request_feed(r, "G", 1), 1);
        assert_true(r->started);
        assert_false(r->headers_done);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
}

static void test_simple_get(void **state)
{
        HttpRequest *r = *state;
        const char *req = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

        assert_complete(r, req);
        assert_true(r->started);
        assert_true(r->headers_done);
        assert_int_equal(http_request_method(r), HTTP_GET);
        assert_url(r, "/index.html?x=1");
        assert_int_equal(r->parser.http_major, 1);
        assert_int_equal(r->parser.http_minor, 1);
        assert_int_equal(r->n_headers, 2);
        assert_header(r, "Host", "example.com");
        assert_header(r, "Accept", "*/*");
        assert_true(r->keep_alive);

        /* Complete: nothing more is consumed until http_request_next(). */
        assert_int_equal(feed_str(r, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_url(r, "/index.html?x=1");
}

static void test_head_and_other_methods(void **state)
{
        HttpRequest *r = *state;

        assert_complete(r, "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_int_equal(http_request_method(r), HTTP_HEAD);
        assert_url(r, "/x");

        http_request_next(r);
        assert_complete(r, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_int_equal(http_request_method(r), HTTP_OPTIONS);
        assert_url(r, "*");

        http_request_next(r);
        assert_complete(r, "DELETE /y HTTP/1.0\r\n\r\n");
        assert_int_equal(http_request_method(r), HTTP_DELETE);
        assert_int_equal(r->n_headers, 0);
        assert_no_header(r, "Host");
}

static void test_keep_alive_rules(void **state)
{
        HttpRequest *r = *state;

        /* HTTP/1.1: persistent by default. */
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_true(r->keep_alive);

        http_request_next(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert_false(r->keep_alive);

        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nconnection: Close\r\n\r\n");
        assert_false(r->keep_alive);

        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
        assert_true(r->keep_alive);
        assert_int_equal(r->parser.http_minor, 1);

        /* HTTP/1.0: not persistent unless asked for. */
        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.0\r\n\r\n");
        assert_false(r->keep_alive);
        assert_int_equal(r->parser.http_major, 1);
        assert_int_equal(r->parser.http_minor, 0);

        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_true(r->keep_alive);

        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert_true(r->keep_alive);

        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.0\r\nConnection: close\r\n\r\n");
        assert_false(r->keep_alive);
}

static void test_pipelined_two_in_one_buffer(void **state)
{
        HttpRequest *r = *state;
        const char *first = "GET /a HTTP/1.1\r\nHost: one\r\nX-First: 1\r\n\r\n";
        const char *second = "HEAD /b HTTP/1.1\r\nHost: two\r\n\r\n";
        char buf[256];
        size_t n;

        snprintf(buf, sizeof buf, "%s%s", first, second);

        n = feed_str(r, buf);
        assert_int_equal(n, strlen(first));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_GET);
        assert_url(r, "/a");
        assert_header(r, "Host", "one");
        assert_header(r, "X-First", "1");

        /* Paused: feeding the rest before http_request_next() consumes nothing. */
        assert_int_equal(feed_str(r, buf + n), 0);

        http_request_next(r);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_false(r->started);
        assert_int_equal(r->n_headers, 0);

        assert_int_equal(feed_str(r, buf + n), strlen(second));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_HEAD);
        assert_url(r, "/b");
        assert_int_equal(r->n_headers, 1);
        assert_header(r, "Host", "two");
        assert_no_header(r, "X-First");
}

static void test_pipelined_three_and_partial(void **state)
{
        HttpRequest *r = *state;
        const char *buf = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HT";
        const char *urls[] = { "/1", "/2" };
        size_t off = 0;

        for (size_t i = 0; i < 2; i++) {
                size_t n = feed_str(r, buf + off);
                assert_int_equal(n, 28);
                assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
                assert_url(r, urls[i]);
                off += n;
                http_request_next(r);
        }

        /* A partial third request is consumed entirely and remembered. */
        assert_int_equal(feed_str(r, buf + off), strlen(buf + off));
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_true(r->started);
        assert_int_equal(feed_str(r, "TP/1.1\r\nHost: z\r\n\r\n"), strlen("TP/1.1\r\nHost: z\r\n\r\n"));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_url(r, "/3");
        assert_header(r, "Host", "z");
}

static void test_byte_by_byte(void **state)
{
        HttpRequest *r = *state;
        const char *req = "POST /upload/file%20name?q=1 HTTP/1.1\r\n"
                          "Host: example.org\r\n"
                          "Content-Type: text/plain\r\n"
                          "X-Empty:\r\n"
                          "X-Long-Header-Name: a value with spaces\r\n"
                          "Content-Length: 5\r\n"
                          "\r\n"
                          "hello"
                          "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        size_t first_len = strlen(req) - strlen("GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        char one[1];
        size_t i;

        /* One byte at a time, through one reused byte of buffer: the request must not point into it. */
        for (i = 0; i < first_len; i++) {
                assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
                one[0] = req[i];
                assert_int_equal(http_request_feed(r, one, 1), 1);
                one[0] = '#';
        }
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_POST);
        assert_url(r, "/upload/file%20name?q=1");
        assert_int_equal(r->n_headers, 5);
        assert_header(r, "Host", "example.org");
        assert_header(r, "Content-Type", "text/plain");
        assert_header(r, "X-Empty", "");
        assert_header(r, "X-Long-Header-Name", "a value with spaces");
        assert_header(r, "Content-Length", "5");
        assert_true(r->keep_alive);

        http_request_next(r);
        for (; req[i]; i++) {
                char c = req[i];
                assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
                assert_int_equal(http_request_feed(r, &c, 1), 1);
        }
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_GET);
        assert_url(r, "/next");
        assert_int_equal(r->n_headers, 1);
}

static void test_split_at_every_offset(void **state)
{
        HttpRequest *r = *state;
        const char *req = "GET /some/path HTTP/1.1\r\nHost: h.example\r\nUser-Agent: test/1.0\r\n\r\n";
        size_t len = strlen(req);

        for (size_t split = 0; split <= len; split++) {
                char a[128], b[128];

                memcpy(a, req, split);
                memcpy(b, req + split, len - split);
                http_request_init(r);
                assert_int_equal(http_request_feed(r, a, split), split);
                memset(a, '#', sizeof a); /* the caller reuses its buffer */
                if (split < len) {
                        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
                        assert_int_equal(http_request_feed(r, b, len - split), len - split);
                }
                memset(b, '#', sizeof b);
                assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
                assert_url(r, "/some/path");
                assert_int_equal(r->n_headers, 2);
                assert_header(r, "host", "h.example");
                assert_header(r, "user-agent", "test/1.0");
        }
}

static void test_header_lookup(void **state)
{
        HttpRequest *r = *state;

        assert_complete(r, "GET / HTTP/1.1\r\n"
                           "Host: a\r\n"
                           "X-Dup: first\r\n"
                           "x-dup: second\r\n"
                           "Content-TYPE: text/html\r\n"
                           "X-Spaces:    padded\r\n"
                           "\r\n");
        assert_int_equal(r->n_headers, 5);
        assert_header(r, "host", "a");
        assert_header(r, "HOST", "a");
        assert_header(r, "hOsT", "a");
        assert_header(r, "content-type", "text/html");
        assert_header(r, "CONTENT-TYPE", "text/html");
        /* The first of duplicates. */
        assert_header(r, "X-DUP", "first");
        /* Leading whitespace of the value is not part of it. */
        assert_header(r, "X-Spaces", "padded");

        /* No prefix or substring matches. */
        assert_no_header(r, "Hos");
        assert_no_header(r, "Hostx");
        assert_no_header(r, "Content");
        assert_no_header(r, "Type");
        assert_no_header(r, "");
        assert_no_header(r, "Accept");
}

static void test_next_resets_arena(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};

        /* Two requests that each use most of the arena: the second fits only if the first was released. */
        for (int i = 0; i < 2; i++) {
                buf_str(&b, "GET /big HTTP/1.1\r\nHost: h\r\nX-Big: ");
                buf_fill(&b, (char) ('a' + i), HTTP_HEADER_BYTES_MAX - 100);
                buf_str(&b, "\r\n\r\n");
        }
        size_t n = http_request_feed(r, b.p, b.len);
        assert_int_equal(n, b.len / 2);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        http_request_next(r);
        assert_int_equal(r->arena_used, 0);
        assert_int_equal(http_request_feed(r, b.p + n, b.len - n), b.len - n);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        size_t len;
        const char *v = http_request_header(r, "x-big", &len);
        assert_non_null(v);
        assert_int_equal(len, HTTP_HEADER_BYTES_MAX - 100);
        assert_int_equal(v[0], 'b');
        assert_int_equal(v[len - 1], 'b');
        free(b.p);
}

static void test_url_limit(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};

        /* Exactly HTTP_URL_MAX bytes of URL is fine. */
        buf_str(&b, "GET /");
        buf_fill(&b, 'u', HTTP_URL_MAX - 1);
        buf_str(&b, " HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_complete(r, b.p);
        assert_int_equal(r->url_len, HTTP_URL_MAX);
        free(b.p);
        b = (Buf){};

        /* One more: 414, in one buffer. */
        http_request_init(r);
        buf_str(&b, "GET /");
        buf_fill(&b, 'u', HTTP_URL_MAX);
        buf_str(&b, " HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_error(r, b.p, b.len, 414);

        /* And across many small reads. */
        http_request_init(r);
        for (size_t off = 0; off < b.len && r->state == HTTP_PARSE_INCOMPLETE; off += 100)
                (void) http_request_feed(r, b.p + off, MIN((size_t) 100, b.len - off));
        assert_int_equal(r->state, HTTP_PARSE_ERROR);
        assert_int_equal(r->error_status, 414);
        free(b.p);
        b = (Buf){};

        /* A very long URL without the request line ever finishing. */
        http_request_init(r);
        buf_str(&b, "GET /");
        buf_fill(&b, 'v', 3 * HTTP_URL_MAX);
        assert_error(r, b.p, b.len, 414);
        free(b.p);
}

static void test_too_many_headers(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};
        char line[64];

        buf_str(&b, "GET / HTTP/1.0\r\n");
        for (unsigned i = 0; i < HTTP_HEADERS_MAX; i++) {
                snprintf(line, sizeof line, "X-H%u: %u\r\n", i, i);
                buf_str(&b, line);
        }
        size_t head_len = b.len;
        buf_str(&b, "\r\n");

        /* Exactly HTTP_HEADERS_MAX is fine. */
        assert_complete(r, b.p);
        assert_int_equal(r->n_headers, HTTP_HEADERS_MAX);
        assert_header(r, "x-h0", "0");
        assert_header(r, "X-H99", "99");

        /* One more is 431. */
        b.len = head_len;
        buf_str(&b, "X-One-Too-Many: 1\r\n\r\n");
        http_request_init(r);
        assert_error(r, b.p, b.len, 431);
        free(b.p);
}

static void test_header_bytes_limit(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};

        /* The arena holds the URL, the field names and the values: "/" + "X" + value = HTTP_HEADER_BYTES_MAX. */
        buf_str(&b, "GET / HTTP/1.0\r\nX: ");
        buf_fill(&b, 'v', HTTP_HEADER_BYTES_MAX - 2);
        buf_str(&b, "\r\n\r\n");
        assert_complete(r, b.p);
        assert_int_equal(r->arena_used, HTTP_HEADER_BYTES_MAX);
        free(b.p);
        b = (Buf){};

        /* One byte more. */
        http_request_init(r);
        buf_str(&b, "GET / HTTP/1.0\r\nX: ");
        buf_fill(&b, 'v', HTTP_HEADER_BYTES_MAX - 1);
        buf_str(&b, "\r\n\r\n");
        assert_error(r, b.p, b.len, 431);
        free(b.p);
        b = (Buf){};

        /* Many moderate headers adding up to more than the arena, fed in pieces. */
        http_request_init(r);
        buf_str(&b, "GET / HTTP/1.0\r\n");
        for (int i = 0; i < 40; i++) {
                char name[32];
                snprintf(name, sizeof name, "X-Fill-%d: ", i);
                buf_str(&b, name);
                buf_fill(&b, 'f', 500);
                buf_str(&b, "\r\n");
        }
        buf_str(&b, "\r\n");
        for (size_t off = 0; off < b.len && r->state == HTTP_PARSE_INCOMPLETE; off += 333)
                (void) http_request_feed(r, b.p + off, MIN((size_t) 333, b.len - off));
        assert_int_equal(r->state, HTTP_PARSE_ERROR);
        assert_int_equal(r->error_status, 431);
        free(b.p);
        b = (Buf){};

        /* A huge field name. */
        http_request_init(r);
        buf_str(&b, "GET / HTTP/1.0\r\n");
        buf_fill(&b, 'N', HTTP_HEADER_BYTES_MAX + 10);
        buf_str(&b, ": v\r\n\r\n");
        assert_error(r, b.p, b.len, 431);
        free(b.p);
}

static void test_unknown_method(void **state)
{
        HttpRequest *r = *state;

        assert_error_str(r, "FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501);
        http_request_init(r);
        assert_error_str(r, "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", 501);
        http_request_init(r);
        assert_error_str(r, "GETX / HTTP/1.1\r\nHost: h\r\n\r\n", 501);
}

static void test_host_rules(void **state)
{
        HttpRequest *r = *state;

        /* RFC 9112 3.2: HTTP/1.1 needs exactly one Host; HTTP/1.0 may have none, never two. */
        assert_error_str(r, "GET / HTTP/1.1\r\n\r\n", 400);
        http_request_init(r);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
        http_request_init(r);
        assert_error_str(r, "GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n", 400);
        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.0\r\n\r\n");
        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.1\r\nX-Host: a\r\nHost:\r\n\r\n");
        assert_header(r, "host", "");
}

static void test_unsupported_version(void **state)
{
        HttpRequest *r = *state;

        assert_error_str(r, "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
        http_request_init(r);
        assert_error_str(r, "GET / HTTP/3.0\r\n\r\n", 505);
        http_request_init(r);
        assert_error_str(r, "GET / HTTP/0.9\r\n\r\n", 505);

        /* Minor versions of 1 other than 0 and 1 are HTTP/1.x. */
        http_request_init(r);
        assert_complete(r, "GET / HTTP/1.2\r\nHost: h\r\n\r\n");
        assert_int_equal(r->parser.http_minor, 2);
}

static void assert_all_400(HttpRequest *r, const char *const *garbage, size_t n_garbage)
{
        for (size_t i = 0; i < n_garbage; i++) {
                http_request_init(r);
                size_t len = strlen(garbage[i]);
                size_t n = http_request_feed(r, garbage[i], len);
                if (r->state != HTTP_PARSE_ERROR || r->error_status != 400)
                        fail_msg("garbage #%zu: state %d, status %u after %zu bytes; expected an error with 400", i,
                                 (int) r->state, r->error_status, n);
        }
}

static void test_garbage(void **state)
{
        static const char *const garbage[] = {
                "GET / XTTP/1.1\r\n\r\n",                   /* not HTTP */
                "GET / HTTP/1.x\r\n\r\n",                   /* bad version */
                "GET / HTTP/1.1 extra\r\n\r\n",             /* junk after the version */
                "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",              /* control character in the target */
                "GET / HTTP/1.1\r\nHost example.com\r\n\r\n", /* header line without colon */
                "GET / HTTP/1.1\r\nHost: h\r\nHo(st: x\r\n\r\n",       /* not a token */
                "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        };

        assert_all_400(*state, garbage, ELEMENTSOF(garbage));
}

/* A request line whose first byte cannot start a method (a token, RFC 9110 9.1) is malformed: 400. Only a
 * well-formed but unknown method is 501. */
static void test_garbage_not_a_method(void **state)
{
        static const char *const garbage[] = {
                "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
                "\x01\x02\x03\x04",
                "<html>\r\n\r\n",
        };

        assert_all_400(*state, garbage, ELEMENTSOF(garbage));
}

static void test_content_length_and_transfer_encoding(void **state)
{
        HttpRequest *r = *state;

        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n0\r\n\r\n", 400);
        http_request_init(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                            "5\r\nhello\r\n0\r\n\r\n", 400);
}

/* RFC 9112 5.1: whitespace between a field name and the colon MUST be rejected with 400. (http-parser built
 * without HTTP_PARSER_STRICT takes ' ' as a token character and still treats "Content-Length :" as the
 * length of the body, while the name drover stores is "Content-Length ".) */
static void test_whitespace_before_colon(void **state)
{
        HttpRequest *r = *state;

        assert_error_str(r, "GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", 400);
        http_request_init(r);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost\t: example.com\r\n\r\n", 400);
        http_request_init(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", 400);
        http_request_init(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400);
        /* A field name is a token: no space inside either. */
        http_request_init(r);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost: h\r\nX Y: z\r\n\r\n", 400);
}

/* RFC 9112 2.2: a line starting with whitespace right after the request line is either rejected or ignored;
 * it must never become a header that lookups find. */
static void test_whitespace_before_first_field(void **state)
{
        HttpRequest *r = *state;
        const char *req = "GET / HTTP/1.1\r\n Host: example.com\r\n\r\n";

        (void) http_request_feed(r, req, strlen(req));
        if (r->state == HTTP_PARSE_ERROR) {
                assert_int_equal(r->error_status, 400);
        } else {
                assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
                assert_no_header(r, "Host");
        }
}

static void test_body_consumed_then_next(void **state)
{
        HttpRequest *r = *state;
        /* The 22-byte body looks like a request: it must be skipped, not parsed. */
        const char *first = "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 22\r\n\r\nGET /evil HTTP/1.1\r\n\r\n";
        const char *second = "GET /after HTTP/1.1\r\nHost: h2\r\n\r\n";
        char buf[256];

        assert_int_equal(strlen("GET /evil HTTP/1.1\r\n\r\n"), 22);
        snprintf(buf, sizeof buf, "%s%s", first, second);

        size_t n = feed_str(r, buf);
        assert_int_equal(n, strlen(first));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_POST);
        assert_url(r, "/form");
        assert_int_equal(r->n_headers, 2);
        assert_header(r, "Content-Length", "22");

        http_request_next(r);
        assert_int_equal(feed_str(r, buf + n), strlen(second));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_GET);
        assert_url(r, "/after");
        assert_int_equal(r->n_headers, 1);
        assert_header(r, "host", "h2");
}

static void test_upgrade_request_then_next(void **state)
{
        HttpRequest *r = *state;
        /* drover never upgrades: what follows an Upgrade request is the next HTTP request. */
        const char *first = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        char buf[256];

        snprintf(buf, sizeof buf, "%sGET /plain HTTP/1.1\r\nHost: h\r\n\r\n", first);
        assert_int_equal(feed_str(r, buf), strlen(first));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_url(r, "/ws");
        assert_header(r, "upgrade", "websocket");

        http_request_next(r);
        assert_int_equal(feed_str(r, buf + strlen(first)), strlen("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_url(r, "/plain");
}

static void test_body_in_separate_reads(void **state)
{
        HttpRequest *r = *state;

        assert_int_equal(feed_str(r, "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"), 48);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_true(r->headers_done);
        assert_int_equal(feed_str(r, "01234"), 5);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        /* The rest of the body and the start of the next request: only the body is consumed. */
        assert_int_equal(feed_str(r, "56789GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 5);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(http_request_method(r), HTTP_PUT);
        assert_url(r, "/f");
}

static void test_chunked_body_consumed(void **state)
{
        HttpRequest *r = *state;
        const char *first = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        char buf[256];

        snprintf(buf, sizeof buf, "%sGET /d HTTP/1.1\r\nHost: h\r\n\r\n", first);
        assert_int_equal(feed_str(r, buf), strlen(first));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_url(r, "/c");
        assert_true(r->keep_alive);

        http_request_next(r);
        assert_int_equal(feed_str(r, buf + strlen(first)), strlen("GET /d HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_url(r, "/d");
}

static void test_leading_empty_lines(void **state)
{
        HttpRequest *r = *state;

        /* RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request-line. */
        assert_complete(r, "\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_url(r, "/x");
}

static void test_status_reason(void **state)
{
        static const struct {
                unsigned status;
                const char *reason;
        } table[] = {
                { 200, "OK" },
                { 204, "No Content" },
                { 206, "Partial Content" },
                { 301, "Moved Permanently" },
                { 304, "Not Modified" },
                { 400, "Bad Request" },
                { 403, "Forbidden" },
                { 404, "Not Found" },
                { 405, "Method Not Allowed" },
                { 408, "Request Timeout" },
                { 412, "Precondition Failed" },
                { 413, "Content Too Large" },
                { 414, "URI Too Long" },
                { 416, "Range Not Satisfiable" },
                { 431, "Request Header Fields Too Large" },
                { 500, "Internal Server Error" },
                { 501, "Not Implemented" },
                { 503, "Service Unavailable" },
                { 505, "HTTP Version Not Supported" },
                { 0, "Unknown" },
                { 299, "Unknown" },
                { 999, "Unknown" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                assert_string_equal(http_status_reason(table[i].status), table[i].reason);
}

/* ---- target decoding -------------------------------------------------------------------------------- */

typedef struct Decoded {
        int r;
        char out[256];
        size_t query_off;
} Decoded;

static Decoded decode(const char *url, size_t out_size)
{
        Decoded d = { .query_off = 99999 };

        assert_true(out_size <= sizeof d.out);
        memset(d.out, '#', sizeof d.out);
        d.r = http_target_decode_path(url, strlen(url), d.out, out_size, &d.query_off);
        /* Never a byte beyond out_size. */
        for (size_t i = out_size; i < sizeof d.out; i++)
                assert_int_equal(d.out[i], '#');
        return d;
}

static void assert_decodes(const char *url, const char *path, size_t query_off)
{
        Decoded d = decode(url, 256);
        if (d.r < 0)
                fail_msg("decoding \"%s\" failed: %d", url, d.r);
        assert_int_equal(d.r, strlen(path));
        assert_string_equal(d.out, path);
        assert_int_equal(d.query_off, query_off);
}

static void assert_decode_fails(const char *url, int error)
{
        Decoded d = decode(url, 256);
        if (d.r != error)
                fail_msg("decoding \"%s\" returned %d, expected %d", url, d.r, error);
        assert_int_equal(d.query_off, 99999);
}

static void test_decode_plain(void **state)
{
        assert_decodes("/", "/", 1);
        assert_decodes("/index.html", "/index.html", 11);
        assert_decodes("/a/b/c/", "/a/b/c/", 7);
        assert_decodes("/a+b", "/a+b", 4); /* '+' is not a space in a path */
        assert_decodes("", "/", 0);
}

static void test_decode_percent(void **state)
{
        assert_decodes("/a%20b", "/a b", 6);
        assert_decodes("/%2e%2e/etc/passwd", "/../etc/passwd", 18);
        assert_decodes("/%2E%2E", "/..", 7);
        assert_decodes("/x%2Fy", "/x/y", 6);
        assert_decodes("/%41%62%7a", "/Abz", 10);
        assert_decodes("/%25", "/%", 4);
        /* Decoded once only. */
        assert_decodes("/%252e", "/%2e", 6);
        assert_decodes("/caf%C3%A9", "/caf\xc3\xa9", 10);
        assert_decodes("/%3F", "/?", 4);
        assert_decodes("/%0d%0a", "/\r\n", 7);
        assert_decodes("/%ff", "/\xff", 4);
}

static void test_decode_rejects(void **state)
{
        assert_decode_fails("/%00", -EINVAL);
        assert_decode_fails("/a%00b", -EINVAL);
        assert_decode_fails("/%", -EINVAL);
        assert_decode_fails("/%2", -EINVAL);
        assert_decode_fails("/a%", -EINVAL);
        assert_decode_fails("/%zz", -EINVAL);
        assert_decode_fails("/%2g", -EINVAL);
        assert_decode_fails("/%g2", -EINVAL);
        assert_decode_fails("/% 2", -EINVAL);
        assert_decode_fails("/%-1", -EINVAL);
        assert_decode_fails("/%+1", -EINVAL);
        /* An escape cut short by the query. */
        assert_decode_fails("/%2?x", -EINVAL);
        assert_decode_fails("/%?41", -EINVAL);
        /* Neither origin-form nor absolute-form. */
        assert_decode_fails("*", -EINVAL);
        assert_decode_fails("example.com:443", -EINVAL);
        assert_decode_fails("index.html", -EINVAL);

        /* A literal NUL byte in the target. */
        char out[32];
        size_t q = 7;
        assert_int_equal(http_target_decode_path("/a\0b", 4, out, sizeof out, &q), -EINVAL);
        assert_int_equal(q, 7);
}

static void test_decode_query(void **state)
{
        assert_decodes("/path?x=1", "/path", 5);
        assert_decodes("/path?", "/path", 5);
        assert_decodes("/?", "/", 1);
        /* Escapes in the query are neither decoded nor checked. */
        assert_decodes("/p?%zz%00", "/p", 2);
        assert_decodes("/a%20b?c%20d", "/a b", 6);
        /* Only the first '?' ends the path. */
        assert_decodes("/a?b?c", "/a", 2);

        /* The query offset is optional. */
        char out[16];
        assert_int_equal(http_target_decode_path("/x?y", 4, out, sizeof out, NULL), 2);
        assert_string_equal(out, "/x");

        /* Only url_len bytes are read. */
        assert_int_equal(http_target_decode_path("/abc?q", 3, out, sizeof out, NULL), 3);
        assert_string_equal(out, "/ab");
}

static void test_decode_absolute_form(void **state)
{
        assert_decodes("http://h/x?y", "/x", 10);
        assert_decodes("http://example.com/a%20b", "/a b", 24);
        assert_decodes("http://example.com:8080/p/q?r=s", "/p/q", 27);
        assert_decodes("http://h", "/", 8);
        assert_decodes("http://h/", "/", 9);
        assert_decodes("https://user@h/x", "/x", 16);
        assert_decodes("http://h/%2e%2e/", "/../", 16);
        assert_decode_fails("http://h/%00", -EINVAL);
        assert_decode_fails("http:/x", -EINVAL);
}

/* The authority of an absolute-form target ends at the first '/', '?' or '#' (RFC 3986 3.2). */
static void test_decode_absolute_form_query_without_path(void **state)
{
        assert_decodes("http://h?x", "/", 8);
        assert_decodes("http://h?a/b", "/", 8);
        assert_decodes("http://h#f/x", "/", 12);
}

static void test_decode_too_long(void **state)
{
        Decoded d;

        /* "/abc" needs 5 bytes with its NUL. */
        d = decode("/abc", 5);
        assert_int_equal(d.r, 4);
        assert_string_equal(d.out, "/abc");
        assert_int_equal(d.query_off, 4);

        d = decode("/abc", 4);
        assert_int_equal(d.r, -ENAMETOOLONG);
        d = decode("/abc", 1);
        assert_int_equal(d.r, -ENAMETOOLONG);
        d = decode("/abc", 0);
        assert_int_equal(d.r, -ENAMETOOLONG);

        /* Measured after decoding: "/%41%42" is "/AB", 3 bytes. */
        d = decode("/%41%42", 4);
        assert_int_equal(d.r, 3);
        assert_string_equal(d.out, "/AB");
        d = decode("/%41%42", 3);
        assert_int_equal(d.r, -ENAMETOOLONG);

        /* The query does not count. */
        d = decode("/ab?cdefghijklmnop", 4);
        assert_int_equal(d.r, 3);
        assert_string_equal(d.out, "/ab");
        assert_int_equal(d.query_off, 3);

        /* The implicit "/" of an empty path. */
        d = decode("http://h", 2);
        assert_int_equal(d.r, 1);
        assert_string_equal(d.out, "/");
        d = decode("http://h", 1);
        assert_int_equal(d.r, -ENAMETOOLONG);
        d = decode("", 1);
        assert_int_equal(d.r, -ENAMETOOLONG);
}

/* ---- response head ---------------------------------------------------------------------------------- */

static void test_format_head_full(void **state)
{
        char date[30];
        char buf[1024];
        http_format_date(784111777, date);
        HttpResponseHead h = {
                .status = 200,
                .minor_version = 1,
                .keep_alive = true,
                .has_body_length = true,
                .content_length = 1234567890123ULL,
                .content_type = "text/html",
                .date = date,
                .server = "drover",
                .last_modified = 951782400,
                .location = "/x/",
                .allow = "GET, HEAD",
        };
        const char *expected = "HTTP/1.1 200 OK\r\n"
                               "Server: drover\r\n"
                               "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                               "Content-Type: text/html\r\n"
                               "Content-Length: 1234567890123\r\n"
                               "Last-Modified: Tue, 29 Feb 2000 00:00:00 GMT\r\n"
                               "Location: /x/\r\n"
                               "Allow: GET, HEAD\r\n"
                               "\r\n";

        int n = http_format_head(&h, buf, sizeof buf);
        assert_int_equal(n, strlen(expected));
        assert_string_equal(buf, expected);
}

static void test_format_head_minimal(void **state)
{
        char buf[256];
        HttpResponseHead h = { .status = 404, .minor_version = 1, .keep_alive = true };

        assert_int_equal(http_format_head(&h, buf, sizeof buf), strlen("HTTP/1.1 404 Not Found\r\n\r\n"));
        assert_string_equal(buf, "HTTP/1.1 404 Not Found\r\n\r\n");

        /* A zero Content-Length is still sent when there is a body length. */
        h = (HttpResponseHead){ .status = 204, .minor_version = 1, .keep_alive = true, .has_body_length = true };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");

        /* An unknown status still gets a reason phrase. */
        h = (HttpResponseHead){ .status = 299, .minor_version = 1, .keep_alive = true };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 299 Unknown\r\n\r\n");
}

static void test_format_head_connection(void **state)
{
        char buf[256];
        HttpResponseHead h = { .status = 200 };

        /* HTTP/1.0 keep-alive must be said. */
        h.minor_version = 0;
        h.keep_alive = true;
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");

        /* HTTP/1.1 keep-alive is the default: no header. */
        h.minor_version = 1;
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 200 OK\r\n\r\n");

        /* Closing is always said. */
        h.keep_alive = false;
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");

        h.minor_version = 0;
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n");

        /* Any minor version other than 0 answers as 1.1. */
        h.minor_version = 7;
        h.keep_alive = true;
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 200 OK\r\n\r\n");
}

static void test_format_head_no_buffer_space(void **state)
{
        HttpResponseHead h = {
                .status = 301,
                .minor_version = 0,
                .keep_alive = false,
                .has_body_length = true,
                .content_length = 0,
                .location = "/dir/",
                .last_modified = 784111777,
        };
        const char *expected = "HTTP/1.0 301 Moved Permanently\r\n"
                               "Content-Length: 0\r\n"
                               "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                               "Location: /dir/\r\n"
                               "Connection: close\r\n"
                               "\r\n";
        size_t len = strlen(expected);
        char buf[512];

        /* Room for the text and its NUL. */
        memset(buf, '#', sizeof buf);
        assert_int_equal(http_format_head(&h, buf, len + 1), len);
        assert_string_equal(buf, expected);

        /* Any smaller: -ENOBUFS, and nothing written past size. */
        for (size_t size = 0; size <= len; size++) {
                memset(buf, '#', sizeof buf);
                assert_int_equal(http_format_head(&h, buf, size), -ENOBUFS);
                for (size_t i = size; i < sizeof buf; i++)
                        assert_int_equal(buf[i], '#');
        }
}

static void test_format_date(void **state)
{
        static const struct {
                time_t t;
                const char *s;
        } table[] = {
                { 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
                { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
                { 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
                { 1700000000, "Tue, 14 Nov 2023 22:13:20 GMT" },
                { 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char buf[40];
                memset(buf, '#', sizeof buf);
                http_format_date(table[i].t, buf);
                assert_string_equal(buf, table[i].s);
                assert_int_equal(strlen(buf), 29);
                for (size_t j = 30; j < sizeof buf; j++)
                        assert_int_equal(buf[j], '#');
        }

        /* A time that does not fit the format falls back to the epoch rather than overflowing. */
        char buf[40];
        memset(buf, '#', sizeof buf);
        http_format_date((time_t) 400000000000LL, buf);
        assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
        for (size_t j = 30; j < sizeof buf; j++)
                assert_int_equal(buf[j], '#');
}

/* ---- HTTP-date parsing ------------------------------------------------------------------------------ */

#define NOW_2023 1700000000 /* Tue, 14 Nov 2023 22:13:20 GMT */

static int parse_date(const char *s, time_t now, time_t *ret)
{
        *ret = (time_t) -12345;
        return http_parse_date(s, strlen(s), now, ret);
}

static void assert_date(const char *s, time_t expected)
{
        time_t t;
        int r = parse_date(s, NOW_2023, &t);
        if (r < 0)
                fail_msg("\"%s\": %d", s, r);
        if (t != expected)
                fail_msg("\"%s\": %lld, expected %lld", s, (long long) t, (long long) expected);
}

static void assert_not_a_date(const char *s)
{
        time_t t;
        int r = parse_date(s, NOW_2023, &t);
        if (r != -EINVAL)
                fail_msg("\"%s\": %d (%lld), expected -EINVAL", s, r, (long long) t);
        assert_int_equal(t, (time_t) -12345);
}

static void test_parse_date_three_forms(void **state)
{
        /* RFC 9110 5.6.7's example, in its three forms. */
        assert_date("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
        assert_date("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
        assert_date("Sun Nov  6 08:49:37 1994", 784111777);
        /* asctime's day may also be two digits. */
        assert_date("Sun Nov 06 08:49:37 1994", 784111777);
        assert_date("Thu Jan  1 00:00:00 1970", 0);
        assert_date("Thu Jan 01 00:00:00 1970", 0);
        /* In 2023, "70" is 2070: less than 50 years ahead. */
        assert_date("Thursday, 01-Jan-70 00:00:00 GMT", 3155760000LL);

        /* Every day and month name: the first of each month of 2024. */
        static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
        static const char *const long_days[] = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                                 "Saturday", "Sunday" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        for (unsigned m = 0; m < 12; m++) {
                char s[64];
                struct tm tm = { .tm_year = 124, .tm_mon = (int) m, .tm_mday = 1 };
                time_t expected = timegm(&tm), t;
                const char *day = days[(tm.tm_wday + 6) % 7];
                const char *long_day = long_days[(tm.tm_wday + 6) % 7];

                snprintf(s, sizeof s, "%s, 01 %s 2024 00:00:00 GMT", day, months[m]);
                assert_int_equal(parse_date(s, NOW_2023, &t), 0);
                assert_int_equal(t, expected);
                snprintf(s, sizeof s, "%s, 01-%s-24 00:00:00 GMT", long_day, months[m]);
                assert_int_equal(parse_date(s, NOW_2023, &t), 0);
                assert_int_equal(t, expected);
                snprintf(s, sizeof s, "%s %s  1 00:00:00 2024", day, months[m]);
                assert_int_equal(parse_date(s, NOW_2023, &t), 0);
                assert_int_equal(t, expected);
        }
}

static void test_parse_date_round_trip(void **state)
{
        /* What http_format_date() writes parses back, across leap years and centuries. */
        static const time_t times[] = { 0, 1, 59, 60, 86399, 86400, 784111777, 951782400, 951868800,
                                        1700000000, 2147483647, 2147483648, 4102444800, 4107542400,
                                        253402300799 };
        for (size_t i = 0; i < ELEMENTSOF(times); i++) {
                char buf[30];
                time_t t;
                http_format_date(times[i], buf);
                assert_int_equal(parse_date(buf, NOW_2023, &t), 0);
                assert_int_equal(t, times[i]);
        }
        /* Every day of 2000 and 2100 (a leap year, and a century that is not one). */
        for (time_t t0 = 946684800; t0 < 946684800 + 366 * 86400; t0 += 86400 + 3601) {
                char buf[30];
                time_t t;
                http_format_date(t0, buf);
                assert_int_equal(parse_date(buf, NOW_2023, &t), 0);
                assert_int_equal(t, t0);
        }
        for (time_t t0 = 4102444800; t0 < 4102444800 + 365 * 86400; t0 += 86400 + 3599) {
                char buf[30];
                time_t t;
                http_format_date(t0, buf);
                assert_int_equal(parse_date(buf, NOW_2023, &t), 0);
                assert_int_equal(t, t0);
        }
}

static void test_parse_date_calendar(void **state)
{
        assert_date("Tue, 29 Feb 2000 00:00:00 GMT", 951782400);
        assert_date("Sat, 29 Feb 2020 12:00:00 GMT", 1582977600);
        assert_not_a_date("Thu, 29 Feb 2001 00:00:00 GMT");
        assert_not_a_date("Mon, 29 Feb 2100 00:00:00 GMT"); /* 2100 is no leap year */
        assert_not_a_date("Sun, 31 Nov 1994 08:49:37 GMT");
        assert_not_a_date("Sun, 00 Nov 1994 08:49:37 GMT");
        assert_not_a_date("Sun, 32 Dec 1994 08:49:37 GMT");
        assert_date("Sat, 31 Dec 1994 23:59:59 GMT", 788918399);
        assert_not_a_date("Sun, 06 Nov 1994 24:00:00 GMT");
        assert_not_a_date("Sun, 06 Nov 1994 08:60:37 GMT");
        assert_not_a_date("Sun, 06 Nov 1994 08:49:61 GMT");
        /* A leap second reads as the next minute's first second. */
        assert_date("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800);
        /* Before 1970, and the last second with four digits. */
        assert_date("Mon, 01 Jan 1900 00:00:00 GMT", -2208988800LL);
        assert_date("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799LL);
        /* The day name is not checked against the date (RFC 9110 asks no such check); 6 Nov 1994 was a
         * Sunday. */
        assert_date("Mon, 06 Nov 1994 08:49:37 GMT", 784111777);
}

static void test_parse_date_two_digit_years(void **state)
{
        time_t t;

        /* In 2023, "94" would be 2094, more than 50 years ahead: it is 1994. "73" (2073) is 50 years
         * ahead, not more, and stays; "74" (2074) becomes 1974. */
        assert_date("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
        assert_date("Monday, 06-Nov-73 08:49:37 GMT", 3277183777LL);
        assert_date("Wednesday, 06-Nov-74 08:49:37 GMT", 152959777);
        assert_date("Tuesday, 14-Nov-23 22:13:20 GMT", NOW_2023);
        assert_date("Saturday, 01-Jan-00 00:00:00 GMT", 946684800);
        /* In 2070, "94" is 2094. */
        assert_int_equal(parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 3155760000LL, &t), 0);
        assert_int_equal(t, 3939871777LL);
}

static void test_parse_date_rejects(void **state)
{
        static const char *const bad[] = {
                "",
                "garbage",
                "784111777",
                "sun, 06 Nov 1994 08:49:37 GMT",   /* case-sensitive */
                "Sun, 06 nov 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 gmt",
                "SUN, 06 NOV 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 UTC",
                "Sun, 06 Nov 1994 08:49:37 +0000",
                "Sun, 06 Nov 1994 08:49:37",
                "Sun, 6 Nov 1994 08:49:37 GMT",    /* day: two digits */
                "Sun, 06 Nov 94 08:49:37 GMT",     /* year: four digits */
                "Sun, 06 Nov 01994 08:49:37 GMT",
                "Sun, 06 Nov 1994 8:49:37 GMT",
                "Sun, 06 Nov 1994 08:49 GMT",
                "Sun,  06 Nov 1994 08:49:37 GMT",
                "Sun 06 Nov 1994 08:49:37 GMT",
                " Sun, 06 Nov 1994 08:49:37 GMT",  /* the caller trims */
                "Sun, 06 Nov 1994 08:49:37 GMT ",
                "Sun, 06 Nov 1994 08:49:37 GMTx",
                "Sun, 06-Nov-1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
                "Sunday, 06 Nov 1994 08:49:37 GMT", /* the long name is RFC 850's only */
                "Sun, 06-Nov-94 08:49:37 GMT",      /* and RFC 850 needs it */
                "Sunday, 06-Nov-94 08:49:37",
                "Sunday, 6-Nov-94 08:49:37 GMT",
                "Sunday, 06-Nov-994 08:49:37 GMT",
                "Sun Nov 6 08:49:37 1994",          /* asctime: SP DIGIT or 2DIGIT */
                "Sun Nov   6 08:49:37 1994",
                "Sun Nov  6 08:49:37 94",
                "Sun Nov  6 08:49:37 1994 GMT",
                "Sun Nov  6 08:49:37 1994 ",
                "Sunday Nov  6 08:49:37 1994",
                "Sun, 06 Nov 1994 08:49:37 GM",
                "Sun, 0x Nov 1994 08:49:37 GMT",
                "Sun, -6 Nov 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:-9:37 GMT",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_not_a_date(bad[i]);

        /* Every proper prefix of a valid date is invalid, and only len bytes are read. */
        static const char *const good[] = { "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                            "Sun Nov  6 08:49:37 1994" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                for (size_t n = 0; n < strlen(good[i]); n++) {
                        time_t t = 42;
                        assert_int_equal(http_parse_date(good[i], n, NOW_2023, &t), -EINVAL);
                        assert_int_equal(t, 42);
                }

        /* A NUL inside. */
        time_t t;
        assert_int_equal(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT\0", 30, NOW_2023, &t), -EINVAL);
        assert_int_equal(http_parse_date("Sun, 06 Nov 1994\0008:49:37 GMT", 29, NOW_2023, &t), -EINVAL);
}

static void test_format_head_validators(void **state)
{
        char buf[512];
        HttpResponseHead h = {
                .status = 206,
                .minor_version = 1,
                .keep_alive = true,
                .has_body_length = true,
                .content_length = 10,
                .last_modified = 784111777,
                .etag = "\"1-2-3\"",
                .content_range = "bytes 0-9/100",
        };

        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 206 Partial Content\r\n"
                                 "Content-Length: 10\r\n"
                                 "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                 "ETag: \"1-2-3\"\r\n"
                                 "Content-Range: bytes 0-9/100\r\n"
                                 "\r\n");

        h = (HttpResponseHead){ .status = 200, .minor_version = 1, .keep_alive = true, .has_body_length = true,
                                .content_length = 100, .etag = "\"1-2-3\"", .accept_ranges = true };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 200 OK\r\n"
                                 "Content-Length: 100\r\n"
                                 "ETag: \"1-2-3\"\r\n"
                                 "Accept-Ranges: bytes\r\n"
                                 "\r\n");

        /* A 304: no Content-Length, no Content-Type, the validators. */
        h = (HttpResponseHead){ .status = 304, .minor_version = 1, .keep_alive = true,
                                .last_modified = 784111777, .etag = "\"1-2-3\"" };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 304 Not Modified\r\n"
                                 "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                 "ETag: \"1-2-3\"\r\n"
                                 "\r\n");

        h = (HttpResponseHead){ .status = 416, .minor_version = 1, .keep_alive = true, .has_body_length = true,
                                .content_range = "bytes */100" };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 416 Range Not Satisfiable\r\n"
                                 "Content-Length: 0\r\n"
                                 "Content-Range: bytes */100\r\n"
                                 "\r\n");
}

#define REQ_TEST(f) cmocka_unit_test_setup_teardown(f, setup_request, teardown_request)

int main(void)
{
        const struct CMUnitTest tests[] = {
                REQ_TEST(test_init_state),
                REQ_TEST(test_simple_get),
                REQ_TEST(test_head_and_other_methods),
                REQ_TEST(test_keep_alive_rules),
                REQ_TEST(test_pipelined_two_in_one_buffer),
                REQ_TEST(test_pipelined_three_and_partial),
                REQ_TEST(test_byte_by_byte),
                REQ_TEST(test_split_at_every_offset),
                REQ_TEST(test_header_lookup),
                REQ_TEST(test_next_resets_arena),
                REQ_TEST(test_url_limit),
                REQ_TEST(test_too_many_headers),
                REQ_TEST(test_header_bytes_limit),
                REQ_TEST(test_unknown_method),
                REQ_TEST(test_host_rules),
                REQ_TEST(test_unsupported_version),
                REQ_TEST(test_garbage),
                REQ_TEST(test_garbage_not_a_method),
                REQ_TEST(test_content_length_and_transfer_encoding),
                REQ_TEST(test_whitespace_before_colon),
                REQ_TEST(test_whitespace_before_first_field),
                REQ_TEST(test_body_consumed_then_next),
                REQ_TEST(test_body_in_separate_reads),
                REQ_TEST(test_upgrade_request_then_next),
                REQ_TEST(test_chunked_body_consumed),
                REQ_TEST(test_leading_empty_lines),
                cmocka_unit_test(test_status_reason),
                cmocka_unit_test(test_decode_plain),
                cmocka_unit_test(test_decode_percent),
                cmocka_unit_test(test_decode_rejects),
                cmocka_unit_test(test_decode_query),
                cmocka_unit_test(test_decode_absolute_form),
                cmocka_unit_test(test_decode_absolute_form_query_without_path),
                cmocka_unit_test(test_decode_too_long),
                cmocka_unit_test(test_format_head_full),
                cmocka_unit_test(test_format_head_minimal),
                cmocka_unit_test(test_format_head_connection),
                cmocka_unit_test(test_format_head_no_buffer_space),
                cmocka_unit_test(test_format_date),
                cmocka_unit_test(test_parse_date_three_forms),
                cmocka_unit_test(test_parse_date_round_trip),
                cmocka_unit_test(test_parse_date_calendar),
                cmocka_unit_test(test_parse_date_two_digit_years),
                cmocka_unit_test(test_parse_date_rejects),
                cmocka_unit_test(test_format_head_validators),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
