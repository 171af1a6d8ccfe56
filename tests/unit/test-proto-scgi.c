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
#include "proto/scgi.h"

/* ---- helpers ---------------------------------------------------------------------------------------- */

/* A growable byte string. */
typedef struct Buf {
        char *p;
        size_t len, cap;
} Buf;

static void buf_add(Buf *b, const void *s, size_t n)
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

/* A name and value, each with its NUL. */
static void block_add(Buf *block, const char *name, const char *value)
{
        buf_add(block, name, strlen(name) + 1);
        buf_add(block, value, strlen(value) + 1);
}

/* "LEN:" + block + "," + body. */
static Buf wrap(const Buf *block, const char *body)
{
        Buf b = {};
        char len[32];

        snprintf(len, sizeof len, "%zu:", block->len);
        buf_str(&b, len);
        buf_add(&b, block->p, block->len);
        buf_str(&b, ",");
        buf_str(&b, body);
        return b;
}

/* A compound literal of name/value pairs, NULL-terminated. */
#define PAIRS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* A request of these name/value pairs (a NULL name ends them) and body. */
static Buf request_of(const char *const *pairs, const char *body)
{
        Buf block = {};
        for (size_t i = 0; pairs[i]; i += 2)
                block_add(&block, pairs[i], pairs[i + 1]);
        Buf b = wrap(&block, body);
        free(block.p);
        return b;
}

static int setup_request(void **state)
{
        ScgiRequest *r = malloc(sizeof *r);
        if (!r)
                return -1;
        memset(r, 0x5a, sizeof *r); /* scgi_request_init() must not rely on zeroed memory */
        if (scgi_request_init(r, NULL) < 0)
                return -1;
        *state = r;
        return 0;
}

static int teardown_request(void **state)
{
        scgi_request_free(*state);
        free(*state);
        return 0;
}

static void reinit_limits(ScgiRequest *r, const HttpLimits *limits)
{
        scgi_request_free(r);
        assert_int_equal(scgi_request_init(r, limits), 0);
}

static void reinit(ScgiRequest *r)
{
        reinit_limits(r, NULL);
}

static void assert_header(const ScgiRequest *r, const char *name, const char *expected)
{
        size_t len = SIZE_MAX;
        const char *v = scgi_request_header(r, name, &len);
        if (!v)
                fail_msg("header \"%s\" not found", name);
        if (len != strlen(expected) || memcmp(v, expected, len) != 0 || v[len] != '\0')
                fail_msg("header \"%s\" is \"%.*s\", expected \"%s\"", name, (int) len, v, expected);
}

static void assert_no_header(const ScgiRequest *r, const char *name)
{
        size_t len = 12345;
        assert_null(scgi_request_header(r, name, &len));
        assert_int_equal(len, 12345);
}

static void assert_complete(ScgiRequest *r, const Buf *b)
{
        assert_int_equal(scgi_request_feed(r, b->p, b->len), b->len);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->error_status, 0);
        assert_true(r->headers_done);
}

static void assert_error(ScgiRequest *r, const char *data, size_t len, unsigned status)
{
        size_t n = scgi_request_feed(r, data, len);
        assert_true(n <= len);
        if (r->state != HTTP_PARSE_ERROR || r->error_status != status)
                fail_msg("state %d, status %u after %zu of %zu bytes; expected an error with %u",
                         (int) r->state, r->error_status, n, len, status);
        /* Once failed, nothing more is consumed. */
        assert_int_equal(scgi_request_feed(r, "5:", 2), 0);
        assert_int_equal(r->error_status, status);
        assert_int_equal(r->n_headers, 0);
}

static void assert_pairs_error(ScgiRequest *r, const char *const *pairs, const char *body, unsigned status)
{
        Buf b = request_of(pairs, body);
        reinit(r);
        assert_error(r, b.p, b.len, status);
        free(b.p);
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

static void test_init_free(void **state)
{
        ScgiRequest r = {};

        scgi_request_free(&r);
        scgi_request_free(&r);

        HttpLimits bad = HTTP_LIMITS_DEFAULT;
        bad.header_bytes_max = HTTP_HEADER_BYTES_MAX_CAP + 1;
        memset(&r, 0x5a, sizeof r);
        assert_int_equal(scgi_request_init(&r, &bad), -EINVAL);
        scgi_request_free(&r);

        assert_int_equal(scgi_request_init(&r, NULL), 0);
        assert_int_equal(r.state, HTTP_PARSE_INCOMPLETE);
        assert_false(r.started);
        assert_false(r.headers_done);
        assert_int_equal(r.n_headers, 0);
        assert_int_equal(r.body_len, 0);
        assert_int_equal(scgi_request_feed(&r, "", 0), 0);
        assert_false(r.started);
        scgi_request_free(&r);
}

static void test_simple(void **state)
{
        ScgiRequest *r = *state;
        /* The example of the SCGI specification. */
        static const char req[] = "70:"
                                  "CONTENT_LENGTH\0" "27\0"
                                  "SCGI\0" "1\0"
                                  "REQUEST_METHOD\0" "POST\0"
                                  "REQUEST_URI\0" "/deepthought\0"
                                  ","
                                  "What is the answer to life?";
        const char *name, *value;
        size_t vl;

        assert_int_equal(scgi_request_feed(r, req, sizeof req - 1), sizeof req - 1);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_true(r->started);
        assert_true(r->headers_done);
        assert_int_equal(r->content_length, 27);
        assert_int_equal(r->body_len, 27);
        assert_string_equal(r->body, "What is the answer to life?");
        assert_int_equal(r->n_headers, 4);

        assert_header(r, "CONTENT_LENGTH", "27");
        assert_header(r, "SCGI", "1");
        assert_header(r, "REQUEST_METHOD", "POST");
        assert_header(r, "REQUEST_URI", "/deepthought");
        /* Case-sensitive, no prefixes. */
        assert_no_header(r, "request_method");
        assert_no_header(r, "REQUEST");
        assert_no_header(r, "REQUEST_URIX");
        assert_no_header(r, "");

        /* In the order received. */
        static const char *const order[][2] = {
                { "CONTENT_LENGTH", "27" },
                { "SCGI", "1" },
                { "REQUEST_METHOD", "POST" },
                { "REQUEST_URI", "/deepthought" },
        };
        for (unsigned i = 0; i < ELEMENTSOF(order); i++) {
                assert_int_equal(scgi_request_header_at(r, i, &name, &value, &vl), 0);
                assert_string_equal(name, order[i][0]);
                assert_string_equal(value, order[i][1]);
                assert_int_equal(vl, strlen(order[i][1]));
        }
        assert_int_equal(scgi_request_header_at(r, 4, &name, &value, &vl), -ENOENT);

        /* Complete: nothing more is consumed. */
        assert_int_equal(scgi_request_feed(r, "x", 1), 0);
}

static void test_no_body(void **state)
{
        ScgiRequest *r = *state;
        static const char *const pairs[] = { "CONTENT_LENGTH", "0", "SCGI", "1", "QUERY_STRING", "", NULL };
        Buf b = request_of(pairs, "");

        /* Complete at the ','; what follows is not consumed. */
        buf_str(&b, "trailing");
        assert_int_equal(scgi_request_feed(r, b.p, b.len), b.len - strlen("trailing"));
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->body_len, 0);
        assert_header(r, "QUERY_STRING", "");
        free(b.p);
}

static void test_body_stops_at_length(void **state)
{
        ScgiRequest *r = *state;
        static const char *const pairs[] = { "CONTENT_LENGTH", "3", "SCGI", "1", NULL };
        Buf b = request_of(pairs, "abcdef");

        assert_int_equal(scgi_request_feed(r, b.p, b.len), b.len - 3);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->body_len, 3);
        assert_string_equal(r->body, "abc");
        free(b.p);
}

static void test_split_everywhere(void **state)
{
        ScgiRequest *r = *state;
        static const char *const pairs[] = {
                "CONTENT_LENGTH", "11", "SCGI", "1", "HTTP_HOST", "example.com", "PATH_INFO", "/a b", NULL,
        };
        Buf b = request_of(pairs, "hello\0world");
        /* request_of() stops the body at its NUL; put the rest back. */
        b.len -= strlen("hello");
        b.p[b.len] = '\0';
        buf_add(&b, "hello\0world", 11);

        for (size_t split = 0; split <= b.len; split++) {
                char *first = malloc(split + 1), *second = malloc(b.len - split + 1);
                memcpy(first, b.p, split);
                memcpy(second, b.p + split, b.len - split);
                reinit(r);
                assert_int_equal(scgi_request_feed(r, first, split), split);
                memset(first, '#', split); /* the caller reuses its buffer */
                if (split < b.len) {
                        assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
                        assert_int_equal(scgi_request_feed(r, second, b.len - split), b.len - split);
                }
                memset(second, '#', b.len - split);
                assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
                assert_header(r, "HTTP_HOST", "example.com");
                assert_header(r, "PATH_INFO", "/a b");
                assert_int_equal(r->body_len, 11);
                assert_memory_equal(r->body, "hello\0world", 11);
                free(first);
                free(second);
        }

        /* Byte by byte. */
        reinit(r);
        for (size_t i = 0; i < b.len; i++) {
                assert_int_equal(r->state, HTTP_PARSE_INCOMPLETE);
                assert_int_equal(scgi_request_feed(r, b.p + i, 1), 1);
        }
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
        assert_int_equal(r->body_len, 11);
        free(b.p);
}

static void test_bad_netstring(void **state)
{
        static const struct {
                const char *s;
                size_t len;
        } bad[] = {
#define S(x) { x, sizeof(x) - 1 }
                S("x"),
                S(":"),                       /* no length */
                S("05:"),                     /* a leading zero */
                S("00:,"),
                S("-5:"),
                S(" 5:"),
                S("5 :"),
                S("0:,"),                     /* an empty block: no CONTENT_LENGTH */
                S("24:CONTENT_LENGTH\0" "0\0SCGI\0" "1\0;"), /* no ',' */
                S("23:CONTENT_LENGTH\0" "0\0SCGI\0" "1\0,"), /* a length that is off by one */
                S("25:CONTENT_LENGTH\0" "0\0SCGI\0" "1\0,,"),
                S("24:CONTENT_LENGTH\0" "0\0SCGI\0" "1x,"),  /* the block does not end in NUL */
                S("22:CONTENT_LENGTH\0" "0\0SCGI\0,"),       /* a name without a value */
#undef S
        };
        ScgiRequest *r = *state;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                reinit(r);
                size_t n = scgi_request_feed(r, bad[i].s, bad[i].len);
                if (r->state != HTTP_PARSE_ERROR || r->error_status != 400)
                        fail_msg("#%zu: state %d, status %u after %zu bytes", i, (int) r->state,
                                 r->error_status, n);
        }

        /* The valid one those are variations of. */
        reinit(r);
        static const char good[] = "24:CONTENT_LENGTH\0" "0\0SCGI\0" "1\0,";
        assert_int_equal(scgi_request_feed(r, good, sizeof good - 1), sizeof good - 1);
        assert_int_equal(r->state, HTTP_PARSE_COMPLETE);
}

static void test_required_headers(void **state)
{
        ScgiRequest *r = *state;

        /* CONTENT_LENGTH first. */
        assert_pairs_error(r, PAIRS("SCGI", "1", "CONTENT_LENGTH", "0"), "", 400);
        assert_pairs_error(r, PAIRS("SCGI", "1"), "", 400);
        assert_pairs_error(r, PAIRS("content_length", "0", "SCGI", "1"), "", 400);
        /* Digits only. */
        static const char *const bad_lengths[] = { "", "-1", "+1", " 1", "1 ", "0x1", "1.0", "1e3",
                                                   "99999999999999999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad_lengths); i++)
                assert_pairs_error(r, PAIRS("CONTENT_LENGTH", bad_lengths[i], "SCGI", "1"), "", 400);
        /* SCGI=1 present. */
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0"), "", 400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", "0"), "", 400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", ""), "", 400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", "11"), "", 400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "scgi", "1"), "", 400);

        /* Anywhere after CONTENT_LENGTH is fine; leading zeros in CONTENT_LENGTH are digits too. */
        Buf b = request_of(PAIRS("CONTENT_LENGTH", "002", "A", "b", "SCGI", "1"), "xy");
        reinit(r);
        assert_complete(r, &b);
        assert_int_equal(r->content_length, 2);
        free(b.p);
}

static void test_duplicates_and_empty_names(void **state)
{
        ScgiRequest *r = *state;

        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "SCGI", "1"), "", 400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "CONTENT_LENGTH", "5"), "", 400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "X", "a", "Y", "b", "X", "a"), "",
                           400);
        assert_pairs_error(r, PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "", "v"), "", 400);
        /* Names that differ in case are different names. */
        Buf b = request_of(PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "X", "a", "x", "b"), "");
        reinit(r);
        assert_complete(r, &b);
        assert_header(r, "X", "a");
        assert_header(r, "x", "b");
        free(b.p);
}

static void test_limits(void **state)
{
        ScgiRequest *r = *state;
        HttpLimits l = HTTP_LIMITS_DEFAULT;
        Buf block = {}, b;

        /* A block of exactly header_bytes_max. */
        block_add(&block, "CONTENT_LENGTH", "0");
        block_add(&block, "SCGI", "1");
        l.header_bytes_max = block.len;
        reinit_limits(r, &l);
        b = wrap(&block, "");
        assert_complete(r, &b);
        free(b.p);

        /* One more: 431, from the length alone. */
        l.header_bytes_max = block.len - 1;
        reinit_limits(r, &l);
        char len[16];
        snprintf(len, sizeof len, "%zu:", block.len);
        assert_error(r, len, strlen(len), 431);
        /* An absurd length fails at the digit that makes it too long. */
        reinit(r);
        assert_int_equal(scgi_request_feed(r, "99999999999999999999999:", 24), 4);
        assert_int_equal(r->error_status, 431);
        free(block.p);

        /* headers_max */
        l = HTTP_LIMITS_DEFAULT;
        l.headers_max = 3;
        reinit_limits(r, &l);
        b = request_of(PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "A", "a"), "");
        assert_complete(r, &b);
        free(b.p);
        reinit_limits(r, &l);
        b = request_of(PAIRS("CONTENT_LENGTH", "0", "SCGI", "1", "A", "a", "B", "b"), "");
        assert_error(r, b.p, b.len, 431);
        free(b.p);

        /* body_max: 413 as soon as the block is complete, before the body. */
        l = HTTP_LIMITS_DEFAULT;
        l.body_max = 4;
        reinit_limits(r, &l);
        b = request_of(PAIRS("CONTENT_LENGTH", "4", "SCGI", "1"), "abcd");
        assert_complete(r, &b);
        assert_string_equal(r->body, "abcd");
        free(b.p);
        reinit_limits(r, &l);
        b = request_of(PAIRS("CONTENT_LENGTH", "5", "SCGI", "1"), "");
        assert_error(r, b.p, b.len, 413);
        free(b.p);
        /* Malformed outranks too large. */
        reinit_limits(r, &l);
        b = request_of(PAIRS("CONTENT_LENGTH", "5", "SCGI", "2"), "");
        assert_error(r, b.p, b.len, 400);
        free(b.p);
}

static void test_many_headers(void **state)
{
        ScgiRequest *r = *state;
        HttpLimits l = { .url_max = 1, .header_bytes_max = HTTP_HEADER_BYTES_MAX_CAP,
                         .headers_max = HTTP_HEADERS_MAX_CAP, .body_max = 1 };
        Buf block = {}, b;
        char name[32];

        /* The cap, with the duplicate at the very end: sorted, not compared pairwise. */
        block_add(&block, "CONTENT_LENGTH", "0");
        block_add(&block, "SCGI", "1");
        for (unsigned i = 2; i < HTTP_HEADERS_MAX_CAP; i++) {
                snprintf(name, sizeof name, "HTTP_X_%u", i);
                block_add(&block, name, "v");
        }
        b = wrap(&block, "");
        reinit_limits(r, &l);
        assert_complete(r, &b);
        assert_int_equal(r->n_headers, HTTP_HEADERS_MAX_CAP);
        assert_header(r, "HTTP_X_5000", "v");
        assert_header(r, "HTTP_X_9999", "v");
        assert_no_header(r, "HTTP_X_10000");
        free(b.p);

        block.len -= strlen("HTTP_X_9999") + 3;
        block_add(&block, "HTTP_X_2", "w");
        b = wrap(&block, "");
        reinit_limits(r, &l);
        assert_error(r, b.p, b.len, 400);
        free(b.p);
        free(block.p);
}

/* ---- response heads --------------------------------------------------------------------------------- */

static void test_format_response_head(void **state)
{
        char buf[256];
        const char *expected;

        expected = "Status: 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1234\r\n\r\n";
        assert_int_equal(scgi_format_response_head(200, "text/html", 1234, NULL, buf, sizeof buf),
                         strlen(expected));
        assert_string_equal(buf, expected);

        expected = "Status: 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_int_equal(scgi_format_response_head(404, NULL, 0, NULL, buf, sizeof buf), strlen(expected));
        assert_string_equal(buf, expected);

        expected = "Status: 302 Found\r\nLocation: /x\r\nX-A: b\r\n\r\n";
        assert_int_equal(scgi_format_response_head(302, NULL, UINT64_MAX, "Location: /x\r\nX-A: b\r\n", buf,
                                                   sizeof buf),
                         strlen(expected));
        assert_string_equal(buf, expected);

        expected = "Status: 599 Unknown\r\n\r\n";
        assert_int_equal(scgi_format_response_head(599, NULL, UINT64_MAX, "", buf, sizeof buf),
                         strlen(expected));
        assert_string_equal(buf, expected);

        /* Invalid. */
        assert_int_equal(scgi_format_response_head(99, NULL, 0, NULL, buf, sizeof buf), -EINVAL);
        assert_int_equal(scgi_format_response_head(1000, NULL, 0, NULL, buf, sizeof buf), -EINVAL);
        assert_int_equal(scgi_format_response_head(200, "a/b\r\nX: y", 0, NULL, buf, sizeof buf), -EINVAL);
        assert_int_equal(scgi_format_response_head(200, NULL, 0, "X: y", buf, sizeof buf), -EINVAL);
        assert_int_equal(scgi_format_response_head(200, NULL, 0, "X: y\r\n\r\nb", buf, sizeof buf), -EINVAL);

        /* Too small: -ENOBUFS, and nothing written past size. */
        expected = "Status: 200 OK\r\nContent-Type: a/b\r\nContent-Length: 5\r\n\r\n";
        size_t len = strlen(expected);
        for (size_t size = 0; size <= len + 1; size++) {
                memset(buf, '#', sizeof buf);
                int n = scgi_format_response_head(200, "a/b", 5, NULL, buf, size);
                if (size > len) {
                        assert_int_equal(n, len);
                        assert_string_equal(buf, expected);
                } else
                        assert_int_equal(n, -ENOBUFS);
                for (size_t i = size; i < sizeof buf; i++)
                        assert_int_equal(buf[i], '#');
        }
}

#define REQ_TEST(f) cmocka_unit_test_setup_teardown(f, setup_request, teardown_request)

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_free),
                REQ_TEST(test_simple),
                REQ_TEST(test_no_body),
                REQ_TEST(test_body_stops_at_length),
                REQ_TEST(test_split_everywhere),
                REQ_TEST(test_bad_netstring),
                REQ_TEST(test_required_headers),
                REQ_TEST(test_duplicates_and_empty_names),
                REQ_TEST(test_limits),
                REQ_TEST(test_many_headers),
                cmocka_unit_test(test_format_response_head),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
