/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
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
        if (http_request_init(r, NULL) < 0)
                return -1;
        *state = r;
        return 0;
}

static int teardown_request(void **state)
{
        http_request_free(*state);
        free(*state);
        return 0;
}

/* A fresh request on the same struct, with the default limits or these. */
static void reinit_limits(HttpRequest *r, const HttpLimits *limits)
{
        http_request_free(r);
        assert_int_equal(http_request_init(r, limits), 0);
}

static void reinit(HttpRequest *r)
{
        reinit_limits(r, NULL);
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

        reinit(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nconnection: Close\r\n\r\n");
        assert_false(r->keep_alive);

        reinit(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
        assert_true(r->keep_alive);
        assert_int_equal(r->parser.http_minor, 1);

        /* HTTP/1.0: not persistent unless asked for. */
        reinit(r);
        assert_complete(r, "GET / HTTP/1.0\r\n\r\n");
        assert_false(r->keep_alive);
        assert_int_equal(r->parser.http_major, 1);
        assert_int_equal(r->parser.http_minor, 0);

        reinit(r);
        assert_complete(r, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_true(r->keep_alive);

        reinit(r);
        assert_complete(r, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert_true(r->keep_alive);

        reinit(r);
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
                reinit(r);
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

/* Everything a feed leaves behind that the caller or the next feed can see. */
static void assert_same_outcome(const HttpRequest *a, size_t na, const HttpRequest *b, size_t nb, const char *what)
{
        if (na != nb || a->state != b->state || a->error_status != b->error_status)
                fail_msg("%s: consumed %zu/%zu, state %d/%d, status %u/%u", what, na, nb, (int) a->state,
                         (int) b->state, a->error_status, b->error_status);
        /* After an error the scanner may have looked further ahead than the library took: only what the
         * caller sees, above, counts then. */
        if (a->state == HTTP_PARSE_ERROR)
                return;
        if (a->framing.state != b->framing.state || a->framing.pos != b->framing.pos)
                fail_msg("%s: framing state %u/%u, pos %u/%u", what, a->framing.state, b->framing.state,
                         a->framing.pos, b->framing.pos);
        assert_int_equal(a->framing.pos, b->framing.pos);
        assert_int_equal(a->framing.empty_lines, b->framing.empty_lines);
        assert_int_equal(a->framing.fields, b->framing.fields);
        assert_int_equal(a->framing.line_bytes, b->framing.line_bytes);
        assert_int_equal(a->framing.field_bytes, b->framing.field_bytes);
        assert_int_equal(a->started, b->started);
        assert_int_equal(a->n_headers, b->n_headers);
        assert_int_equal(a->url_len, b->url_len);
        assert_int_equal(a->arena_used, b->arena_used);
        assert_memory_equal(a->arena + a->url_off, b->arena + b->url_off, a->url_len);
        for (unsigned i = 0; i < a->n_headers; i++) {
                const char *an, *av, *bn, *bv;
                size_t anl, avl, bnl, bvl;
                assert_int_equal(http_request_header_at(a, i, &an, &anl, &av, &avl), 0);
                assert_int_equal(http_request_header_at(b, i, &bn, &bnl, &bv, &bvl), 0);
                assert_int_equal(anl, bnl);
                assert_int_equal(avl, bvl);
                assert_memory_equal(an, bn, anl);
                assert_memory_equal(av, bv, avl);
        }
}

/* A head whole in one feed takes the scanner's line-at-a-time shortcut; fed a byte at a time it goes through
 * the state machine. Both must end the same, at every limit around each head's own sizes: the same bytes
 * consumed, the same status at the same byte, the same counts and fields. */
static void test_whole_head_as_byte_by_byte(void **state)
{
        static const char *const heads[] = {
                "GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
                "GET /a?b=c HTTP/1.1\r\nHost: h\r\nUser-Agent: a\tb c/1.0  \r\nAccept: */*\r\n\r\nGET / HT",
                "GET / HTTP/1.1\r\nHost: h\r\nX:\r\nY: \x80\xff\r\n\r\n",
                "GET / HTTP/1.1\nHost: h\n\n",
                "GET / HTTP/1.1\r\nHost: h\n\r\n",
                "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.0\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\n\r",
                "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
                "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\n x\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\x01z\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\x7fz\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: a\rz\r\n\r\n",
                "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET /\t HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.x\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
                "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
                "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
                "BREW / HTTP/1.1\r\nHost: h\r\n\r\n",
                "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET",
                "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
        };
        const HttpLimits d = HTTP_LIMITS_DEFAULT;
        HttpRequest a, b;

        for (size_t k = 0; k < ELEMENTSOF(heads); k++) {
                size_t len = strlen(heads[k]);
                for (size_t url_max = 1; url_max <= 13; url_max++)
                        for (size_t hb = 1; hb <= 96; hb++)
                                for (unsigned hm = 1; hm <= 4; hm++) {
                                        HttpLimits l = { url_max == 13 ? d.url_max : url_max,
                                                         hb == 96 ? d.header_bytes_max : hb, hm, 16 };
                                        size_t na, nb = 0;
                                        char what[64];

                                        assert_int_equal(http_request_init(&a, &l), 0);
                                        assert_int_equal(http_request_init(&b, &l), 0);
                                        na = http_request_feed(&a, heads[k], len);
                                        while (nb < len && b.state == HTTP_PARSE_INCOMPLETE)
                                                nb += http_request_feed(&b, heads[k] + nb, 1);
                                        snprintf(what, sizeof what, "head %zu, limits %zu/%zu/%u", k, url_max, hb,
                                                 hm);
                                        assert_same_outcome(&a, na, &b, nb, what);
                                        http_request_free(&a);
                                        http_request_free(&b);
                                }
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
        reinit(r);
        buf_str(&b, "GET /");
        buf_fill(&b, 'u', HTTP_URL_MAX);
        buf_str(&b, " HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_error(r, b.p, b.len, 414);

        /* And across many small reads. */
        reinit(r);
        for (size_t off = 0; off < b.len && r->state == HTTP_PARSE_INCOMPLETE; off += 100)
                (void) http_request_feed(r, b.p + off, MIN((size_t) 100, b.len - off));
        assert_int_equal(r->state, HTTP_PARSE_ERROR);
        assert_int_equal(r->error_status, 414);
        free(b.p);
        b = (Buf){};

        /* A very long URL without the request line ever finishing. */
        reinit(r);
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
        reinit(r);
        assert_error(r, b.p, b.len, 431);
        free(b.p);
}

static void test_arena_grows_and_shrinks(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};
        size_t len;
        const char *v;

        /* The arena and the header table start small... */
        assert_int_equal(r->arena_size, HTTP_ARENA_INITIAL);
        assert_int_equal(r->headers_cap, HTTP_HEADERS_INITIAL);

        /* ...and grow, fed in pieces, to the most header fields allowed and a head well beyond the initial
         * arena, every field intact (offsets survive the moves). */
        buf_str(&b, "GET /grow HTTP/1.0\r\n"); /* 1.0: no Host, so every field is ours */
        for (unsigned i = 0; i < HTTP_HEADERS_MAX; i++) {
                char line[64];
                snprintf(line, sizeof line, "X-H%u: value-%u-", i, i);
                buf_str(&b, line);
                buf_fill(&b, 'v', 90);
                buf_str(&b, "\r\n");
        }
        buf_str(&b, "\r\n");
        for (size_t off = 0; off < b.len && r->state == HTTP_PARSE_INCOMPLETE; off += 97)
                (void) http_request_feed(r, b.p + off, MIN((size_t) 97, b.len - off));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->n_headers, HTTP_HEADERS_MAX);
        assert_true(r->arena_size > HTTP_ARENA_INITIAL);
        assert_true(r->arena_size <= r->arena_max);
        assert_true(r->headers_cap >= HTTP_HEADERS_MAX);
        v = http_request_header(r, "x-h0", &len);
        assert_non_null(v);
        assert_true(len == 8 + 90 && memcmp(v, "value-0-", 8) == 0);
        v = http_request_header(r, "X-H99", &len);
        assert_non_null(v);
        assert_true(len == 9 + 90 && memcmp(v, "value-99-", 9) == 0);
        v = http_request_url(r, &len);
        assert_true(len == 5 && memcmp(v, "/grow", 5) == 0);

        /* Between requests both go back to their initial size, and the next request parses. */
        http_request_next(r);
        assert_int_equal(r->arena_size, HTTP_ARENA_INITIAL);
        assert_int_equal(r->headers_cap, HTTP_HEADERS_INITIAL);
        assert_complete(r, "GET /small HTTP/1.1\r\nHost: h\r\n\r\n");
        v = http_request_header(r, "host", &len);
        assert_true(v && len == 1 && v[0] == 'h');

        /* One field more than allowed is still 431, however the table grew. */
        reinit(r);
        buf_str(&b, "");
        b.len = 0;
        buf_str(&b, "GET / HTTP/1.1\r\n");
        for (unsigned i = 0; i <= HTTP_HEADERS_MAX; i++)
                buf_str(&b, "X: y\r\n");
        buf_str(&b, "\r\n");
        assert_error(r, b.p, b.len, 431);
        free(b.p);
}

static void test_header_bytes_limit(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};

        /* The header block is every byte after the request line up to and including the empty line:
         * "X: " + value + "\r\n" + "\r\n" = HTTP_HEADER_BYTES_MAX. */
        buf_str(&b, "GET / HTTP/1.0\r\nX: ");
        buf_fill(&b, 'v', HTTP_HEADER_BYTES_MAX - 7);
        buf_str(&b, "\r\n\r\n");
        assert_complete(r, b.p);
        assert_int_equal(r->arena_used, 1 + 1 + HTTP_HEADER_BYTES_MAX - 7);
        free(b.p);
        b = (Buf){};

        /* One byte more. */
        reinit(r);
        buf_str(&b, "GET / HTTP/1.0\r\nX: ");
        buf_fill(&b, 'v', HTTP_HEADER_BYTES_MAX - 6);
        buf_str(&b, "\r\n\r\n");
        assert_error(r, b.p, b.len, 431);
        free(b.p);
        b = (Buf){};

        /* Many moderate headers adding up to more than the arena, fed in pieces. */
        reinit(r);
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
        reinit(r);
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
        reinit(r);
        assert_error_str(r, "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", 501);
        reinit(r);
        assert_error_str(r, "GETX / HTTP/1.1\r\nHost: h\r\n\r\n", 501);
}

static void test_host_rules(void **state)
{
        HttpRequest *r = *state;

        /* RFC 9112 3.2: HTTP/1.1 needs exactly one Host; HTTP/1.0 may have none, never two. */
        assert_error_str(r, "GET / HTTP/1.1\r\n\r\n", 400);
        reinit(r);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
        reinit(r);
        assert_error_str(r, "GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n", 400);
        reinit(r);
        assert_complete(r, "GET / HTTP/1.0\r\n\r\n");
        reinit(r);
        assert_complete(r, "GET / HTTP/1.1\r\nX-Host: a\r\nHost:\r\n\r\n");
        assert_header(r, "host", "");
}

static void test_unsupported_version(void **state)
{
        HttpRequest *r = *state;

        assert_error_str(r, "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
        reinit(r);
        assert_error_str(r, "GET / HTTP/3.0\r\n\r\n", 505);
        reinit(r);
        assert_error_str(r, "GET / HTTP/0.9\r\n\r\n", 505);

        /* Minor versions of 1 other than 0 and 1 are HTTP/1.x. */
        reinit(r);
        assert_complete(r, "GET / HTTP/1.2\r\nHost: h\r\n\r\n");
        assert_int_equal(r->parser.http_minor, 2);
}

static void assert_all_400(HttpRequest *r, const char *const *garbage, size_t n_garbage)
{
        for (size_t i = 0; i < n_garbage; i++) {
                reinit(r);
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
        reinit(r);
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
        reinit(r);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost\t: example.com\r\n\r\n", 400);
        reinit(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello", 400);
        reinit(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400);
        /* A field name is a token: no space inside either. */
        reinit(r);
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

/* Runs of plain bytes are copied whole: at every output size the result is what decoding one byte at a time
 * gives (this oracle, for origin-form targets): the first byte that is malformed or does not fit decides. */
static void test_decode_runs_at_every_size(void **state)
{
        static const char *const urls[] = { "/1k.bin", "/a%2Fb%41c/d", "/ab%00c", "/ab%4", "/x%zz", "/p/q?r#s",
                                            "/a#b", "/%41%42%43", "/abcdefgh%20ijklmnop" };

        for (size_t k = 0; k < ELEMENTSOF(urls); k++)
                for (size_t size = 0; size <= 24; size++) {
                        const char *u = urls[k], *p = u, *end = u + strlen(u);
                        char expected[32];
                        size_t o = 0;
                        int r = 0;

                        for (; p < end && *p != '?' && *p != '#'; p++) {
                                char c = *p;
                                if (c == '%') {
                                        unsigned v;
                                        if (end - p < 3 || sscanf(p + 1, "%2x", &v) != 1 || !isxdigit(p[1]) ||
                                            !isxdigit(p[2])) {
                                                r = -EINVAL;
                                                break;
                                        }
                                        c = (char) v;
                                        p += 2;
                                }
                                if (c == '\0') {
                                        r = -EINVAL;
                                        break;
                                }
                                if (o + 1 >= size) {
                                        r = -ENAMETOOLONG;
                                        break;
                                }
                                expected[o++] = c;
                        }
                        Decoded d = decode(u, size);
                        if (r < 0) {
                                assert_int_equal(d.r, r);
                                continue;
                        }
                        expected[o] = '\0';
                        assert_int_equal(d.r, (int) o);
                        assert_string_equal(d.out, expected);
                }
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

/* The status line at every status, the Server and extra lines with their lengths given or measured: the same
 * bytes as printf() makes. */
static void test_format_head_status_and_lengths(void **state)
{
        static const unsigned statuses[] = { 0, 1, 42, 99, 100, 200, 204, 404, 505, 599, 999, 1000, 65535 };
        static const char extra[] = "ETag: \"x\"\r\nX-A: b\r\n";
        char buf[512], expected[512];

        for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                for (int given = 0; given < 2; given++) {
                        HttpResponseHead h = { .status = statuses[i],
                                               .minor_version = 1,
                                               .keep_alive = true,
                                               .server = "drover/1",
                                               .server_len = given ? 8 : 0,
                                               .extra_headers = extra,
                                               .extra_headers_len = given ? STRLEN(extra) : 0 };
                        int n = snprintf(expected, sizeof expected, "HTTP/1.1 %u %s\r\nServer: drover/1\r\n%s\r\n",
                                         statuses[i], http_status_reason(statuses[i]), extra);
                        assert_int_equal(http_format_head(&h, buf, sizeof buf), n);
                        assert_string_equal(buf, expected);
                        /* And where it does not fit, at every size. */
                        for (size_t size = 0; size < (size_t) n + 1; size++)
                                assert_int_equal(http_format_head(&h, buf, size), -ENOBUFS);
                }
}

static void test_format_head_numbers(void **state)
{
        static const uint64_t lengths[] = { 0, 1, 9, 10, 11, 42, 99, 100, 101, 909, 999, 1000, 1024, 10000, 65536,
                                            102400, 1234567890123ULL, UINT64_MAX };
        char buf[256], expected[256];

        for (size_t i = 0; i < ELEMENTSOF(lengths); i++) {
                HttpResponseHead h = { .status = 206, .minor_version = 1, .keep_alive = true,
                                       .has_body_length = true, .content_length = lengths[i] };
                int n = snprintf(expected, sizeof expected,
                                 "HTTP/1.1 206 Partial Content\r\nContent-Length: %" PRIu64 "\r\n\r\n", lengths[i]);
                assert_int_equal(http_format_head(&h, buf, sizeof buf), n);
                assert_string_equal(buf, expected);
        }
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

/* The calendar by hand (no gmtime_r(), which reads /etc/localtime) agrees with the C library's everywhere the
 * format can say it, days before 1970 and leap centuries included, and falls back outside years 0..9999. */
static void test_format_date_agrees_with_gmtime(void **state)
{
        static const int64_t edges[] = {
                -62167219200LL,     /* 0000-01-01, the first representable */
                -62167219201LL,     /* a second before: year -1 */
                -2208988800LL,      /* 1900-01-01: not a leap year */
                -86401, -86400, -1, 0, 1, 86399, 86400,
                951782399, 951782400, 951868800,  /* 2000-02-28 23:59:59, 02-29, 03-01 */
                4107542400LL,       /* 2100-03-01 (2100-02-29 does not exist) */
                253402300799LL,     /* 9999-12-31 23:59:59, the last representable */
                253402300800LL,     /* 10000-01-01: out of the format */
        };
        int64_t checked = 0;

        for (size_t i = 0; i < ELEMENTSOF(edges) + 20000; i++) {
                /* The edges, then a walk over 0000..9999 and a little beyond, in steps that visit every
                 * weekday, hour and month. */
                int64_t t = i < ELEMENTSOF(edges) ? edges[i]
                                                  : -62167219200LL + (int64_t) (i - ELEMENTSOF(edges)) * 15780037LL;
                time_t tt = (time_t) t;
                struct tm tm;
                char want[64], got[40];

                assert_non_null(gmtime_r(&tt, &tm));
                if (tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999) {
                        /* %Y does not pad years below 1000. */
                        char ymd[16], hms[16];
                        assert_int_equal(strftime(ymd, sizeof ymd, "%a, %d %b", &tm), 11);
                        assert_int_equal(strftime(hms, sizeof hms, "%H:%M:%S", &tm), 8);
                        snprintf(want, sizeof want, "%s %04d %s GMT", ymd, tm.tm_year + 1900, hms);
                        checked++;
                } else
                        strcpy(want, "Thu, 01 Jan 1970 00:00:00 GMT");
                http_format_date(tt, got);
                if (strcmp(got, want) != 0)
                        fail_msg("t=%lld: \"%s\", expected \"%s\"", (long long) t, got, want);
        }
        assert_true(checked > 10000);
}

/* ---- limits ----------------------------------------------------------------------------------------- */

static void test_limits_check(void **state)
{
        HttpLimits l = HTTP_LIMITS_DEFAULT;

        assert_int_equal(l.url_max, 8192);
        assert_int_equal(l.header_bytes_max, 16384);
        assert_int_equal(l.headers_max, 100);
        assert_int_equal(l.body_max, 1024 * 1024);
        assert_int_equal(http_limits_check(&l), 0);

        l = (HttpLimits){ HTTP_URL_MAX_CAP, HTTP_HEADER_BYTES_MAX_CAP, HTTP_HEADERS_MAX_CAP,
                          HTTP_BODY_MAX_CAP };
        assert_int_equal(http_limits_check(&l), 0);
        l = (HttpLimits){ 1, 1, 1, 1 };
        assert_int_equal(http_limits_check(&l), 0);

        static const HttpLimits bad[] = {
                { 0, 16384, 100, 1 },
                { 8192, 0, 100, 1 },
                { 8192, 16384, 0, 1 },
                { 8192, 16384, 100, 0 },
                { HTTP_URL_MAX_CAP + 1, 16384, 100, 1 },
                { 8192, HTTP_HEADER_BYTES_MAX_CAP + 1, 100, 1 },
                { 8192, 16384, HTTP_HEADERS_MAX_CAP + 1, 1 },
                { 8192, 16384, 100, HTTP_BODY_MAX_CAP + 1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                HttpRequest r;
                assert_int_equal(http_limits_check(&bad[i]), -EINVAL);
                memset(&r, 0x5a, sizeof r);
                assert_int_equal(http_request_init(&r, &bad[i]), -EINVAL);
                http_request_free(&r); /* safe after a failed init */
        }
}

static void test_init_free(void **state)
{
        HttpRequest r = {};

        /* free accepts a zeroed struct, and twice. */
        http_request_free(&r);
        http_request_free(&r);

        /* The caps can be set; the arena starts small and may grow to url_max + header_bytes_max. */
        HttpLimits l = { HTTP_URL_MAX_CAP, HTTP_HEADER_BYTES_MAX_CAP, HTTP_HEADERS_MAX_CAP,
                         HTTP_BODY_MAX_CAP };
        assert_int_equal(http_request_init(&r, &l), 0);
        assert_int_equal(r.arena_max, HTTP_URL_MAX_CAP + HTTP_HEADER_BYTES_MAX_CAP);
        assert_int_equal(r.arena_size, HTTP_ARENA_INITIAL);
        assert_int_equal(r.headers_cap, HTTP_HEADERS_INITIAL);
        assert_non_null(r.arena);
        assert_non_null(r.headers);
        assert_null(r.body);
        http_request_free(&r);
        assert_null(r.arena);
        http_request_free(&r);

        /* NULL means the defaults. */
        assert_int_equal(http_request_init(&r, NULL), 0);
        assert_int_equal(r.limits.url_max, HTTP_URL_MAX_DEFAULT);
        assert_int_equal(r.arena_max, HTTP_URL_MAX_DEFAULT + HTTP_HEADER_BYTES_MAX_DEFAULT);
        http_request_free(&r);
}

static void test_custom_limits(void **state)
{
        HttpRequest *r = *state;
        HttpLimits l = { .url_max = 8, .header_bytes_max = 32, .headers_max = 3, .body_max = 10 };

        /* url_max */
        reinit_limits(r, &l);
        assert_complete(r, "GET /1234567 HTTP/1.1\r\nHost: h\r\n\r\n");
        reinit_limits(r, &l);
        assert_error_str(r, "GET /12345678 HTTP/1.1\r\nHost: h\r\n\r\n", 414);

        /* header_bytes_max: "Host: h\r\nX: 123456789012345\r\n\r\n" is 9 + 20 + 2 = 31, then 32. */
        reinit_limits(r, &l);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nX: 123456789012345\r\n\r\n");
        reinit_limits(r, &l);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nX: 1234567890123456\r\n\r\n");
        reinit_limits(r, &l);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost: h\r\nX: 12345678901234567\r\n\r\n", 431);

        /* headers_max */
        reinit_limits(r, &l);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
        assert_int_equal(r->n_headers, 3);
        reinit_limits(r, &l);
        assert_error_str(r, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431);

        /* body_max, with Content-Length: decided at the head, before any of the body. */
        l = (HttpLimits){ .url_max = 8, .header_bytes_max = 1024, .headers_max = 3, .body_max = 10 };
        reinit_limits(r, &l);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789");
        assert_int_equal(r->body_len, 10);
        reinit_limits(r, &l);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413);

        /* body_max, chunked: as the chunk sizes arrive. */
        reinit_limits(r, &l);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n");
        assert_int_equal(r->body_len, 10);
        reinit_limits(r, &l);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\n01234\r\n6\r\n", 413);
        reinit_limits(r, &l);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n", 413);
}

/* ---- bodies ----------------------------------------------------------------------------------------- */

static void assert_body(const HttpRequest *r, const char *expected)
{
        assert_int_equal(r->body_len, strlen(expected));
        assert_non_null(r->body);
        assert_memory_equal(r->body, expected, r->body_len);
        assert_int_equal(r->body[r->body_len], '\0');
}

static void test_content_length_body(void **state)
{
        HttpRequest *r = *state;

        assert_complete(r, "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
        assert_true(r->has_content_length);
        assert_int_equal(r->content_length, 11);
        assert_false(r->chunked);
        assert_body(r, "hello world");

        /* No body: body_len 0. */
        http_request_next(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_int_equal(r->body_len, 0);
        assert_false(r->has_content_length);

        /* Content-Length: 0, and with leading zeros and surrounding whitespace. */
        http_request_next(r);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        assert_int_equal(r->body_len, 0);
        assert_true(r->has_content_length);
        http_request_next(r);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:  003 \r\n\r\nabc");
        assert_body(r, "abc");

        /* A body with NUL bytes, CRs and what looks like a request. */
        http_request_next(r);
        const char req[] = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\na\0b\r\rGET";
        assert_int_equal(http_request_feed(r, req, sizeof req - 1), sizeof req - 1);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->body_len, 8);
        assert_memory_equal(r->body, "a\0b\r\rGET", 8);
}

static void test_body_split_everywhere(void **state)
{
        HttpRequest *r = *state;
        const char *reqs[] = {
                "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789",
                "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3;ext=1\r\n012\r\n7\r\n3456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        };

        for (size_t t = 0; t < ELEMENTSOF(reqs); t++) {
                size_t len = strlen(reqs[t]);
                for (size_t split = 0; split <= len; split++) {
                        char *a = strndup(reqs[t], split), *b = strdup(reqs[t] + split);
                        reinit(r);
                        assert_int_equal(http_request_feed(r, a, split), split);
                        memset(a, '#', split);
                        if (split < len) {
                                assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
                                assert_int_equal(http_request_feed(r, b, len - split), len - split);
                        }
                        memset(b, '#', len - split);
                        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
                        assert_body(r, "0123456789");
                        assert_int_equal(r->n_headers, 2);
                        free(a);
                        free(b);
                }
        }
}

static void test_body_buffer_reuse(void **state)
{
        HttpRequest *r = *state;
        Buf b = {};
        char line[128];

        /* A small body's buffer is kept for the next request. */
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
        char *kept = r->body;
        http_request_next(r);
        assert_ptr_equal(r->body, kept);
        assert_int_equal(r->body_len, 0);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nde");
        assert_body(r, "de");

        /* A large one's is released. */
        http_request_next(r);
        snprintf(line, sizeof line, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %u\r\n\r\n",
                 HTTP_BODY_KEEP * 2);
        buf_str(&b, line);
        buf_fill(&b, 'x', HTTP_BODY_KEEP * 2);
        assert_complete(r, b.p);
        assert_int_equal(r->body_len, HTTP_BODY_KEEP * 2);
        assert_true(r->body_cap > HTTP_BODY_KEEP);
        http_request_next(r);
        assert_null(r->body);
        assert_int_equal(r->body_cap, 0);
        assert_int_equal(r->body_len, 0);
        free(b.p);
}

static void test_chunked_body(void **state)
{
        HttpRequest *r = *state;

        assert_complete(r, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n1;a=b;c=\"d e\"\r\n \r\nA\r\n0123456789\r\n"
                           "00000\r\n\r\n");
        assert_true(r->chunked);
        assert_false(r->has_content_length);
        assert_body(r, "hello 0123456789");

        /* Upper- and lower-case hex, leading zeros, BWS before an extension. */
        http_request_next(r);
        assert_complete(r, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
                           "0001a\r\nabcdefghijklmnopqrstuvwxyz\r\n2 ;x\r\nAB\r\n0\r\n\r\n");
        assert_body(r, "abcdefghijklmnopqrstuvwxyzAB");

        /* An empty chunked body. */
        http_request_next(r);
        assert_complete(r, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_int_equal(r->body_len, 0);
        assert_true(r->keep_alive);
}

static void test_chunked_trailers(void **state)
{
        HttpRequest *r = *state;
        HttpLimits l = HTTP_LIMITS_DEFAULT;

        /* Accepted and ignored: not among the headers. */
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\nab\r\n0\r\nX-Checksum: 1234\r\nX-Other:  v \r\n\r\n");
        assert_body(r, "ab");
        assert_int_equal(r->n_headers, 2);
        assert_no_header(r, "X-Checksum");

        /* They follow the rules of header lines. */
        static const char *const bad[] = {
                "0\r\nX : v\r\n\r\n",      /* whitespace before the colon */
                "0\r\nX: v\r\n folded\r\n\r\n", /* obs-fold */
                "0\r\nX: a\rb\r\n\r\n",    /* bare CR */
                "0\r\nX: a\x01\r\n\r\n",   /* control character */
                "0\r\nno colon\r\n\r\n",
                "0\r\n\r\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Buf b = {};
                reinit(r);
                buf_str(&b, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
                buf_str(&b, bad[i]);
                assert_error(r, b.p, b.len, 400);
                free(b.p);
        }

        /* They count against the header byte limit, together with the head: the header block below is 39
         * bytes, the trailers 11. */
        l.header_bytes_max = 39 + 11;
        reinit_limits(r, &l);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "0\r\nX: 1234\r\n\r\n");
        reinit_limits(r, &l);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\nX: 12345\r\n\r\n", 431);

        /* And against the field count. */
        l = HTTP_LIMITS_DEFAULT;
        l.headers_max = 3;
        reinit_limits(r, &l);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "0\r\nA: 1\r\n\r\n");
        reinit_limits(r, &l);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\nA: 1\r\nB: 2\r\n\r\n", 431);
}

#define S(x) { x, sizeof(x) - 1 }

static void test_chunked_bad_framing(void **state)
{
        static const struct {
                const char *s;
                size_t len;
        } bad[] = {
                S("zz\r\n"), /* not hex */
                S("-1\r\n"),
                S("0x5\r\nhello\r\n0\r\n\r\n"),
                S("+5\r\nhello\r\n0\r\n\r\n"),
                S("\r\n"), /* no size */
                S(" 5\r\nhello\r\n0\r\n\r\n"),     /* whitespace before the size */
                S("5 \r\nhello\r\n0\r\n\r\n"),     /* whitespace without an extension */
                S("5\nhello\r\n0\r\n\r\n"),        /* bare LF after the size */
                S("5\rhello\r\n0\r\n\r\n"),        /* bare CR after the size */
                S("5;a\nb\r\nhello\r\n0\r\n\r\n"), /* LF inside an extension */
                S("5;a\0b\r\nhello\r\n0\r\n\r\n"), /* NUL inside an extension */
                S("5;a\x01\r\nhello\r\n0\r\n\r\n"),
                S("5\r\nhelloXY0\r\n\r\n"), /* data not followed by CRLF: the library takes any two bytes */
                S("5\r\nhello\n0\r\n\r\n"),
                S("5\r\nhello\r0\r\n\r\n"),
                S("5\r\nhello\r\r\n0\r\n\r\n"),
                S("5\r\nhello world\r\n0\r\n\r\n"), /* more data than announced */
                S("0\r\r\n\r\n"),
        };
        static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        HttpRequest *r = *state;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char buf[256];
                memcpy(buf, head, sizeof head - 1);
                memcpy(buf + sizeof head - 1, bad[i].s, bad[i].len);
                reinit(r);
                size_t n = http_request_feed(r, buf, sizeof head - 1 + bad[i].len);
                if (r->state != HTTP_PARSE_ERROR || r->error_status != 400)
                        fail_msg("chunked #%zu: state %d, status %u after %zu bytes", i, (int) r->state,
                                 r->error_status, n);
        }

        /* The trailer section is a header section: a bare LF ends it as it would a head. */
        reinit(r);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "1\r\nx\r\n0\r\n\n");
        assert_body(r, "x");

        /* A size that overflows any integer is too large long before. */
        reinit(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "ffffffffffffffffffffffff\r\n", 413);
        /* An over-long extension. */
        Buf b = {};
        reinit(r);
        buf_str(&b, head);
        buf_str(&b, "1;");
        buf_fill(&b, 'e', 5000);
        buf_str(&b, "\r\nx\r\n0\r\n\r\n");
        assert_error(r, b.p, b.len, 400);
        free(b.p);
}

static void test_content_length_rules(void **state)
{
        static const char *const bad[] = {
                "Content-Length: 5\r\nContent-Length: 5\r\n", /* even equal */
                "Content-Length: 5\r\ncontent-length: 6\r\n",
                "Content-Length: 5, 5\r\n",
                "Content-Length: 5,5\r\n",
                "Content-Length: +5\r\n",
                "Content-Length: -5\r\n",
                "Content-Length: 0x5\r\n",
                "Content-Length: 5a\r\n",
                "Content-Length: 5 5\r\n",
                "Content-Length:\r\n",
                "Content-Length: \r\n",
                "Content-Length: 1.0\r\n",
                "Content-Length: 99999999999999999999999\r\n", /* overflows */
                "Content-Length: 18446744073709551616\r\n",
        };
        HttpRequest *r = *state;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char buf[256];
                snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\nhello", bad[i]);
                reinit(r);
                size_t n = http_request_feed(r, buf, strlen(buf));
                if (r->state != HTTP_PARSE_ERROR || r->error_status != 400)
                        fail_msg("\"%s\": state %d, status %u after %zu bytes", bad[i], (int) r->state,
                                 r->error_status, n);
        }

        /* Valid but beyond body_max: 413, not 400. (Beyond what 64 bits hold is a 400, above.) */
        reinit(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999\r\n\r\n", 413);
        reinit(r);
        assert_error_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413);
        /* Exactly body_max is fine: the head is complete, the body awaited. */
        reinit(r);
        assert_int_equal(feed_str(r, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n\r\n"), 53);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_true(r->headers_done);
        assert_int_equal(r->content_length, 1048576);
}

static void test_transfer_encoding_rules(void **state)
{
        static const struct {
                const char *te;
                unsigned status;
        } table[] = {
                { "Transfer-Encoding: gzip, chunked\r\n", 501 },
                { "Transfer-Encoding: x-custom, chunked\r\n", 501 },
                { "Transfer-Encoding: gzip;q=1, chunked\r\n", 501 },
                { "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501 },
                { "Transfer-Encoding: chunked, gzip\r\n", 400 },
                { "Transfer-Encoding: gzip\r\n", 400 },
                { "Transfer-Encoding: identity\r\n", 400 },
                { "Transfer-Encoding: chunked, chunked\r\n", 400 },
                { "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400 },
                { "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400 },
                { "Transfer-Encoding: chunked;q=1\r\n", 400 },
                { "Transfer-Encoding: chunked,\r\n", 400 },
                { "Transfer-Encoding: , chunked\r\n", 400 },
                { "Transfer-Encoding: \r\n", 400 },
                { "Transfer-Encoding: chunkedx\r\n", 400 },
                { "Transfer-Encoding: \"chunked\"\r\n", 400 },
                { "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400 },
                { "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", 400 },
        };
        HttpRequest *r = *state;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char buf[256];
                snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n5\r\nhello\r\n0\r\n\r\n",
                         table[i].te);
                reinit(r);
                size_t n = http_request_feed(r, buf, strlen(buf));
                if (r->state != HTTP_PARSE_ERROR || r->error_status != table[i].status)
                        fail_msg("\"%s\": state %d, status %u after %zu bytes; expected %u", table[i].te,
                                 (int) r->state, r->error_status, n, table[i].status);
        }

        /* Case and whitespace do not matter. */
        reinit(r);
        assert_complete(r, "POST / HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING:   CHUNKED  \r\n\r\n0\r\n\r\n");
        assert_true(r->chunked);

        /* HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1): faulty framing. */
        reinit(r);
        assert_error_str(r, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
}

static void test_connect(void **state)
{
        HttpRequest *r = *state;

        /* Complete at the head; never kept alive, since a tunnel would follow. */
        assert_complete(r, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assert_int_equal(http_request_method(r), HTTP_CONNECT);
        assert_false(r->keep_alive);

        /* With a body: 400 (RFC 9110 9.3.6: CONNECT has no content). */
        reinit(r);
        assert_error_str(r, "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 5\r\n\r\nhello", 400);
        reinit(r);
        assert_error_str(r, "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\n\r\n", 400);
}

/* ---- strict lines ----------------------------------------------------------------------------------- */

static void assert_all_error(HttpRequest *r, const char *const *reqs, const size_t *lens, size_t n_reqs,
                             unsigned status)
{
        for (size_t i = 0; i < n_reqs; i++) {
                size_t len = lens ? lens[i] : strlen(reqs[i]);
                reinit(r);
                size_t n = http_request_feed(r, reqs[i], len);
                if (r->state != HTTP_PARSE_ERROR || r->error_status != status)
                        fail_msg("#%zu: state %d, status %u after %zu bytes; expected %u", i, (int) r->state,
                                 r->error_status, n, status);
        }
}

static void test_obs_fold(void **state)
{
        static const char *const reqs[] = {
                "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n",
                "GET / HTTP/1.1\r\nX-A: one\r\n Host: h\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\n two\n\n",
                "GET / HTTP/1.1\r\n\tHost: h\r\n\r\n",
        };
        assert_all_error(*state, reqs, NULL, ELEMENTSOF(reqs), 400);
}

static void test_nul_and_bare_cr(void **state)
{
        static const struct {
                const char *s;
                size_t len;
        } nul[] = {
                S("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"),
                S("GET / HTTP/1.1\0\r\nHost: h\r\n\r\n"),
                S("GET / HTTP/1.1\r\nHost: h\0\r\n\r\n"),
                S("GET / HTTP/1.1\r\nHo\0st: h\r\n\r\n"),
                S("GET / HTTP/1.1\r\nHost: h\r\n\0\r\n\r\n"),
                S("G\0ET / HTTP/1.1\r\nHost: h\r\n\r\n"),
                S("GET / HTTP/1.1\r\nHost: h\r\nX: \0\r\n\r\n"),
                S("\0GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        };
        static const char *const cr[] = {
                "GET / HTTP/1.1\rHost: h\r\n\r\n",
                "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX\r: a\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\n\rX",
                "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
                "\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        };
        HttpRequest *r = *state;

        for (size_t i = 0; i < ELEMENTSOF(nul); i++) {
                reinit(r);
                assert_error(r, nul[i].s, nul[i].len, 400);
        }
        assert_all_error(r, cr, NULL, ELEMENTSOF(cr), 400);
}

static void test_control_characters(void **state)
{
        HttpRequest *r = *state;
        static const char *const reqs[] = {
                "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX: a\x1b[31m\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX: a\x0b\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nX: a\x0c\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\x1f\r\n\r\n",
                "GET / HTTP/1.1\r\nX\x01: a\r\nHost: h\r\n\r\n",
                "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", /* the library takes HTAB and FF in a target */
                "GET /a\x0c" "b HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        };
        assert_all_error(r, reqs, NULL, ELEMENTSOF(reqs), 400);

        /* HTAB inside a value is fine, and so is obs-text. */
        reinit(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\nY: caf\xc3\xa9 \xff\r\n\r\n");
        assert_header(r, "X", "a\tb");
        assert_header(r, "Y", "caf\xc3\xa9 \xff");
}

static void test_request_line_strict(void **state)
{
        static const char *const reqs[] = {
                "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", /* two spaces */
                "GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET /\tHTTP/1.1\r\nHost: h\r\n\r\n",
                " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
                "GET /\r\n\r\n", /* HTTP/0.9 */
                "GET / http/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.11\r\nHost: h\r\n\r\n",
                "GET / HTTP/a.1\r\nHost: h\r\n\r\n",
                /* Each byte of "HTTP/d.d" wrong in turn, digits just outside '0'-'9' too. */
                "GET / hTTP/1.1\r\nHost: h\r\n\r\n",
                "GET / HtTP/1.1\r\nHost: h\r\n\r\n",
                "GET / HTtP/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTp/1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP\\1.1\r\nHost: h\r\n\r\n",
                "GET / HTTP//.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/:.1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1,1\r\nHost: h\r\n\r\n",
                "GET / HTTP/1./\r\nHost: h\r\n\r\n",
                "GET / HTTP/1.:\r\nHost: h\r\n\r\n",
                "G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", /* a control in the method */
                "GE\"T / HTTP/1.1\r\nHost: h\r\n\r\n",  /* not a tchar */
                "SOURCE / ICE/1.0\r\n\r\n", /* the library knows Icecast's */
                /* nine empty lines */
                "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        };
        assert_all_error(*state, reqs, NULL, ELEMENTSOF(reqs), 400);

        /* Up to eight empty lines before a request, CRLF or LF, are skipped; they do not start it. */
        HttpRequest *r = *state;
        reinit(r);
        assert_int_equal(feed_str(r, "\r\n\n\r\n\r\n\r\n\r\n\r\n\r\n"), 15);
        assert_false(r->started);
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");

        /* A bare LF ends a line in the head (RFC 9112 2.2), as in the library. */
        reinit(r);
        assert_complete(r, "GET /lf HTTP/1.1\nHost: h\nX: y\n\n");
        assert_url(r, "/lf");
        assert_header(r, "x", "y");
}

static void test_header_value_trimmed(void **state)
{
        HttpRequest *r = *state;

        assert_complete(r, "GET / HTTP/1.1\r\nHost:  h \t \r\nX:\t v w\t\r\nY:   \r\n\r\n");
        assert_header(r, "host", "h");
        assert_header(r, "x", "v w");
        assert_header(r, "y", "");
}

static void test_header_at(void **state)
{
        HttpRequest *r = *state;
        const char *name, *value;
        size_t nl, vl;

        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
        assert_int_equal(http_request_header_at(r, 0, &name, &nl, &value, &vl), 0);
        assert_int_equal(nl, 4);
        assert_memory_equal(name, "Host", 4);
        assert_int_equal(vl, 1);
        assert_memory_equal(value, "h", 1);
        assert_int_equal(http_request_header_at(r, 2, &name, &nl, &value, &vl), 0);
        assert_memory_equal(name, "x-a", 3);
        assert_memory_equal(value, "2", 1);
        assert_int_equal(http_request_header_at(r, 3, &name, &nl, &value, &vl), -ENOENT);
}

/* ---- Expect ----------------------------------------------------------------------------------------- */

static void test_expect_continue(void **state)
{
        HttpRequest *r = *state;

        /* The head is complete and the body not yet sent: the caller sends 100 Continue now. */
        const char *head = "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        assert_int_equal(feed_str(r, head), strlen(head));
        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
        assert_true(r->headers_done);
        assert_true(r->expect_continue);
        assert_int_equal(feed_str(r, "hello"), 5);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_body(r, "hello");

        /* Reset for the next request. */
        http_request_next(r);
        assert_false(r->expect_continue);

        /* Case-insensitive; chunked bodies too. */
        head = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_int_equal(feed_str(r, head), strlen(head));
        assert_true(r->expect_continue);

        /* Nothing to wait for without a body. */
        reinit(r);
        assert_complete(r, "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
        assert_false(r->expect_continue);

        /* HTTP/1.0 ignores Expect (RFC 9110 10.1.1), whatever it says. */
        reinit(r);
        assert_complete(r, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
        assert_false(r->expect_continue);
        reinit(r);
        assert_complete(r, "POST / HTTP/1.0\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx");

        /* Anything else: 417, at the head. */
        static const char *const reqs[] = {
                "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n",
                "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\nContent-Length: 1\r\n\r\n",
                "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n",
        };
        assert_all_error(r, reqs, NULL, ELEMENTSOF(reqs), 417);

        /* Too large a body is answered with 413 instead of a 100 Continue. */
        reinit(r);
        assert_error_str(r, "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                            "Content-Length: 2000000\r\n\r\n", 413);
}

/* ---- pipelining with bodies ------------------------------------------------------------------------- */

static void test_pipelined_bodies(void **state)
{
        HttpRequest *r = *state;
        const char *buf = "POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                          "POST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "2\r\nde\r\n0\r\n\r\n"
                          "\r\n" /* an empty line between requests */
                          "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"
                          "GET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        static const struct {
                const char *url, *body;
                bool keep_alive;
        } expected[] = {
                { "/1", "abc", true },
                { "/2", "de", true },
                { "/3", "", true },
                { "/4", "", false },
        };
        size_t len = strlen(buf);

        /* All in one buffer, and in pieces of every size. */
        for (size_t piece = 0; piece <= len; piece += piece < 16 ? 1 : 37) {
                size_t off = 0, avail = piece == 0 ? len : MIN(piece, len);
                size_t i = 0;

                reinit(r);
                while (i < ELEMENTSOF(expected)) {
                        size_t n = http_request_feed(r, buf + off, avail);
                        off += n;
                        avail -= n;
                        assert_int_not_equal(r->state, HTTP_PARSE_ERROR);
                        if (r->state == HTTP_PARSE_COMPLETE) {
                                assert_url(r, expected[i].url);
                                assert_int_equal(r->body_len, strlen(expected[i].body));
                                assert_memory_equal(r->body ? r->body : "", expected[i].body, r->body_len);
                                assert_int_equal(r->keep_alive, expected[i].keep_alive);
                                http_request_next(r);
                                i++;
                                continue;
                        }
                        assert_int_equal(avail, 0);
                        avail = piece == 0 ? len - off : MIN(piece, len - off);
                }
                assert_int_equal(off, len);
        }
}

/* ---- response heads: new fields --------------------------------------------------------------------- */

static void test_format_head_extra_fields(void **state)
{
        char buf[1024];
        HttpResponseHead h = {
                .status = 206,
                .minor_version = 1,
                .keep_alive = false,
                .has_body_length = true,
                .content_length = 100,
                .content_type = "video/mp4",
                .etag = "\"5f-1234\"",
                .accept_ranges = true,
                .content_range = "bytes 0-99/1234",
                .extra_headers = "Cache-Control: max-age=60\r\nX-Frame-Options: DENY\r\n",
        };
        const char *expected = "HTTP/1.1 206 Partial Content\r\n"
                               "Content-Type: video/mp4\r\n"
                               "Content-Length: 100\r\n"
                               "ETag: \"5f-1234\"\r\n"
                               "Accept-Ranges: bytes\r\n"
                               "Content-Range: bytes 0-99/1234\r\n"
                               "Cache-Control: max-age=60\r\n"
                               "X-Frame-Options: DENY\r\n"
                               "Connection: close\r\n"
                               "\r\n";

        assert_int_equal(http_format_head(&h, buf, sizeof buf), strlen(expected));
        assert_string_equal(buf, expected);

        /* Chunked, for a body of unknown length: HTTP/1.1 only, never with a length. */
        h = (HttpResponseHead){ .status = 200, .minor_version = 1, .keep_alive = true, .chunked = true };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        h.has_body_length = true;
        assert_int_equal(http_format_head(&h, buf, sizeof buf), -EINVAL);
        h.has_body_length = false;
        h.minor_version = 0;
        assert_int_equal(http_format_head(&h, buf, sizeof buf), -EINVAL);

        /* An empty block of extra headers is fine. */
        h = (HttpResponseHead){ .status = 200, .minor_version = 1, .keep_alive = true, .extra_headers = "" };
        assert_true(http_format_head(&h, buf, sizeof buf) > 0);
        assert_string_equal(buf, "HTTP/1.1 200 OK\r\n\r\n");
}

static void test_format_head_rejects_injection(void **state)
{
        char buf[512];
        static const char *const bad_values[] = {
                "text/html\r\nSet-Cookie: x=1",
                "a\nb",
                "a\rb",
                "a\x01",
                "a\x7f",
        };
        static const char *const bad_blocks[] = {
                "X: 1",                 /* no CRLF */
                "X: 1\n",               /* bare LF */
                "X: 1\r\n\r\nbody",     /* an empty line would end the head */
                "\r\n",
                ": v\r\n",              /* empty name */
                "X Y: v\r\n",           /* not a token */
                "X: a\rb\r\n",
                "X: 1\r\nY\r\n",        /* no colon */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                HttpResponseHead h = { .status = 200, .minor_version = 1, .keep_alive = true };
                const char **fields[] = { &h.content_type, &h.date,     &h.server, &h.etag,
                                          &h.content_range, &h.location, &h.allow };
                for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                        *fields[f] = bad_values[i];
                        assert_int_equal(http_format_head(&h, buf, sizeof buf), -EINVAL);
                        *fields[f] = NULL;
                }
                /* server_date_checked spares Server and Date only (the caller checked them); every other
                 * field is still checked. */
                h.server_date_checked = true;
                for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                        if (fields[f] == &h.date || fields[f] == &h.server)
                                continue;
                        *fields[f] = bad_values[i];
                        assert_int_equal(http_format_head(&h, buf, sizeof buf), -EINVAL);
                        *fields[f] = NULL;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_blocks); i++) {
                HttpResponseHead h = { .status = 200, .minor_version = 1, .keep_alive = true,
                                       .extra_headers = bad_blocks[i] };
                if (http_format_head(&h, buf, sizeof buf) != -EINVAL)
                        fail_msg("extra headers #%zu accepted", i);
                assert_int_equal(http_check_header_block(bad_blocks[i]), -EINVAL);
        }
        assert_int_equal(http_check_header_block(""), 0);
        assert_int_equal(http_check_header_block("A: 1\r\nB:\r\nC: x\ty \xff\r\n"), 0);
}

/* An HTTP/1.0 client asking for keep-alive gets it, and is told so; one that does not is told close. */
static void test_keep_alive_round_trip(void **state)
{
        HttpRequest *r = *state;
        char buf[256];
        static const struct {
                const char *req, *connection;
        } table[] = {
                { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "Connection: keep-alive\r\n" },
                { "GET / HTTP/1.0\r\n\r\n", "Connection: close\r\n" },
                { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", NULL },
                { "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "Connection: close\r\n" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                reinit(r);
                assert_complete(r, table[i].req);
                HttpResponseHead h = { .status = 200, .minor_version = r->parser.http_minor,
                                       .keep_alive = r->keep_alive };
                assert_true(http_format_head(&h, buf, sizeof buf) > 0);
                if (table[i].connection)
                        assert_non_null(strstr(buf, table[i].connection));
                else
                        assert_null(strstr(buf, "Connection"));
        }
}

/* ---- path normalisation ----------------------------------------------------------------------------- */

static void assert_normalizes(const char *in, const char *out)
{
        char buf[256];
        size_t len = strlen(in);

        memcpy(buf, in, len + 1);
        int r = http_path_normalize(buf, len);
        if (r < 0 || strcmp(buf, out) != 0)
                fail_msg("\"%s\" normalised to \"%s\" (%d), expected \"%s\"", in, r < 0 ? "" : buf, r, out);
        assert_int_equal(r, strlen(out));
}

static void assert_normalize_fails(const char *in)
{
        char buf[256];
        size_t len = strlen(in);

        memcpy(buf, in, len + 1);
        assert_int_equal(http_path_normalize(buf, len), -EINVAL);
}

static void test_path_normalize(void **state)
{
        assert_normalizes("/", "/");
        assert_normalizes("/a", "/a");
        assert_normalizes("/a/", "/a/");
        assert_normalizes("//", "/");
        assert_normalizes("//a//b///", "/a/b/");
        assert_normalizes("/./a/./b/.", "/a/b/");
        assert_normalizes("/.", "/");
        assert_normalizes("/./", "/");
        assert_normalizes("/a/b/..", "/a/");
        assert_normalizes("/a/b/../", "/a/");
        assert_normalizes("/a/b/../c", "/a/c");
        assert_normalizes("/a/..", "/");
        assert_normalizes("/a/../b/../c/./d", "/c/d");
        assert_normalizes("/aa/bb/cc/../../dd", "/aa/dd");
        /* Names that merely start with dots are names. */
        assert_normalizes("/.../..a/a../.hidden", "/.../..a/a../.hidden");
        assert_normalizes("/a/.b/..c/...", "/a/.b/..c/...");

        assert_normalize_fails("");
        assert_normalize_fails("a/b");
        assert_normalize_fails("/..");
        assert_normalize_fails("/../a");
        assert_normalize_fails("/a/../..");
        assert_normalize_fails("/a/./../../b");
        assert_normalize_fails("//..//");

        /* Only len bytes are looked at. */
        char buf[16] = "/a/b/../c";
        assert_int_equal(http_path_normalize(buf, 4), 4);
        assert_string_equal(buf, "/a/b");
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

static void test_check_field_value_every_byte_everywhere(void **state)
{
        char v[20];

        assert_int_equal(http_check_field_value(""), 0);
        /* Every byte at every position of strings that take the word-at-a-time path and its tail. */
        for (size_t len = 1; len < sizeof v; len++)
                for (size_t pos = 0; pos < len; pos++)
                        for (unsigned b = 1; b < 256; b++) {
                                bool ok = b == '\t' || (b >= 0x20 && b != 0x7f);
                                memset(v, 'a', len);
                                v[len] = '\0';
                                v[pos] = (char) b;
                                if ((http_check_field_value(v) == 0) != ok)
                                        fail_msg("byte 0x%02x at %zu of %zu: expected %s", b, pos, len,
                                                 ok ? "valid" : "invalid");
                        }
}

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
                REQ_TEST(test_arena_grows_and_shrinks),
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
                REQ_TEST(test_custom_limits),
                REQ_TEST(test_content_length_body),
                REQ_TEST(test_body_split_everywhere),
                REQ_TEST(test_body_buffer_reuse),
                REQ_TEST(test_chunked_body),
                REQ_TEST(test_chunked_trailers),
                REQ_TEST(test_chunked_bad_framing),
                REQ_TEST(test_content_length_rules),
                REQ_TEST(test_transfer_encoding_rules),
                REQ_TEST(test_connect),
                REQ_TEST(test_obs_fold),
                REQ_TEST(test_nul_and_bare_cr),
                REQ_TEST(test_control_characters),
                REQ_TEST(test_request_line_strict),
                REQ_TEST(test_header_value_trimmed),
                REQ_TEST(test_header_at),
                REQ_TEST(test_expect_continue),
                REQ_TEST(test_pipelined_bodies),
                REQ_TEST(test_keep_alive_round_trip),
                cmocka_unit_test(test_whole_head_as_byte_by_byte),
                cmocka_unit_test(test_limits_check),
                cmocka_unit_test(test_init_free),
                cmocka_unit_test(test_status_reason),
                cmocka_unit_test(test_decode_plain),
                cmocka_unit_test(test_decode_percent),
                cmocka_unit_test(test_decode_rejects),
                cmocka_unit_test(test_decode_query),
                cmocka_unit_test(test_decode_absolute_form),
                cmocka_unit_test(test_decode_absolute_form_query_without_path),
                cmocka_unit_test(test_decode_too_long),
                cmocka_unit_test(test_decode_runs_at_every_size),
                cmocka_unit_test(test_format_head_full),
                cmocka_unit_test(test_format_head_minimal),
                cmocka_unit_test(test_format_head_connection),
                cmocka_unit_test(test_format_head_no_buffer_space),
                cmocka_unit_test(test_format_date),
                cmocka_unit_test(test_format_date_agrees_with_gmtime),
                cmocka_unit_test(test_format_head_extra_fields),
                cmocka_unit_test(test_format_head_rejects_injection),
                cmocka_unit_test(test_format_head_numbers),
                cmocka_unit_test(test_format_head_status_and_lengths),
                cmocka_unit_test(test_path_normalize),
                cmocka_unit_test(test_parse_date_three_forms),
                cmocka_unit_test(test_parse_date_round_trip),
                cmocka_unit_test(test_parse_date_calendar),
                cmocka_unit_test(test_parse_date_two_digit_years),
                cmocka_unit_test(test_parse_date_rejects),
                cmocka_unit_test(test_format_head_validators),
                cmocka_unit_test(test_check_field_value_every_byte_everywhere),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
