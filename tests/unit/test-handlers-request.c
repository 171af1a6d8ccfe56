/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "handlers/module.h"
#include "handlers/request.h"

static void test_request_accessors(void **state)
{
        static const drover_header headers[] = {
                { "Host", 4, "example.com", 11 },
                { "X-Dup", 5, "one", 3 },
                { "x-dup", 5, "two", 3 },
        };
        drover_request r = {
                .method = "POST", .path = "/a b", .path_len = 4, .query = "x=1&y", .query_len = 5,
                .prefix = "/a", .prefix_len = 2, .headers = headers, .n_headers = 3, .body = "data", .body_len = 4,
                .remote_address = "127.0.0.1", .protocol = "HTTP/1.1",
        };
        drover_header h;
        size_t n;

        assert_string_equal(drover_request_method(&r), "POST");
        assert_memory_equal(drover_request_path(&r, &n), "/a b", 4);
        assert_int_equal(n, 4);
        assert_memory_equal(drover_request_query(&r, &n), "x=1&y", 5);
        assert_int_equal(n, 5);
        assert_string_equal(drover_request_prefix(&r, &n), "/a");
        assert_memory_equal(drover_request_header(&r, "HOST", &n), "example.com", 11);
        assert_memory_equal(drover_request_header(&r, "x-DUP", &n), "one", 3); /* the first */
        assert_null(drover_request_header(&r, "Absent", &n));
        assert_null(drover_request_header(&r, NULL, &n));
        assert_int_equal(drover_request_header_count(&r), 3);
        assert_int_equal(drover_request_header_at(&r, 2, &h), 0);
        assert_memory_equal(h.value, "two", 3);
        assert_int_equal(drover_request_header_at(&r, 3, &h), -ERANGE);
        assert_memory_equal(drover_request_body(&r, &n), "data", 4);
        assert_string_equal(drover_request_remote_address(&r), "127.0.0.1");
        assert_string_equal(drover_request_protocol(&r), "HTTP/1.1");

        /* No query, no body, no prefix, no address. */
        drover_request e = { .method = "GET", .path = "/", .path_len = 1, .protocol = "SCGI" };
        assert_null(drover_request_query(&e, &n));
        assert_int_equal(n, 0);
        assert_null(drover_request_body(&e, &n));
        assert_int_equal(n, 0);
        assert_string_equal(drover_request_prefix(&e, &n), "");
        assert_string_equal(drover_request_remote_address(&e), "");
}

static void test_response_headers(void **state)
{
        drover_response r;

        response_init(&r);
        assert_int_equal(r.status, 200);
        assert_int_equal(drover_response_set_status(&r, 404), 0);
        assert_int_equal(drover_response_set_status(&r, 100), -EINVAL);
        assert_int_equal(drover_response_set_status(&r, 600), -EINVAL);
        assert_int_equal(r.status, 404);

        assert_int_equal(drover_response_add_header(&r, "X-One", "1"), 0);
        assert_int_equal(drover_response_add_header(&r, "Content-Type", "text/plain"), 0);
        assert_string_equal(r.headers, "X-One: 1\r\nContent-Type: text/plain\r\n");
        assert_true(r.has_content_type);

        /* Header injection and drover's own headers are refused. */
        assert_int_equal(drover_response_add_header(&r, "X-Evil", "a\r\nSet-Cookie: x"), -EINVAL);
        assert_int_equal(drover_response_add_header(&r, "X Evil", "a"), -EINVAL);
        assert_int_equal(drover_response_add_header(&r, "", "a"), -EINVAL);
        assert_int_equal(drover_response_add_header(&r, "X-Nul", "\x01"), -EINVAL);
        assert_int_equal(drover_response_add_header(&r, "content-length", "5"), -EPERM);
        assert_int_equal(drover_response_add_header(&r, "Connection", "close"), -EPERM);
        assert_int_equal(drover_response_add_header(&r, "Transfer-Encoding", "chunked"), -EPERM);
        assert_int_equal(drover_response_add_header(&r, "Date", "x"), -EPERM);
        assert_int_equal(drover_response_add_header(&r, "Server", "x"), -EPERM);
        assert_string_equal(r.headers, "X-One: 1\r\nContent-Type: text/plain\r\n");

        /* The header block is bounded. */
        char big[1024];
        memset(big, 'v', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        int k = 0;
        for (int i = 0; i < 20 && k == 0; i++)
                k = drover_response_add_header(&r, "X-Big", big);
        assert_int_equal(k, -E2BIG);
        assert_true(r.headers_len <= RESPONSE_HEADERS_MAX);

        response_reset(&r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.headers_len, 0);
        assert_false(r.has_content_type);
        response_free(&r);
        response_free(&r); /* twice is fine */
}

static void test_response_body(void **state)
{
        drover_response r;
        int fd;

        response_init(&r);
        assert_null(response_default_content_type(&r));
        assert_int_equal(drover_response_write(&r, "hello ", 6), 0);
        assert_int_equal(drover_response_write(&r, "world", 5), 0);
        assert_int_equal(drover_response_write(&r, NULL, 0), 0);
        assert_int_equal(response_body_length(&r), 11);
        assert_memory_equal(r.body, "hello world", 11);
        assert_string_equal(response_default_content_type(&r), "application/octet-stream");

        /* A body in memory excludes a file body; the fd is closed anyway. */
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(drover_response_send_fd(&r, fd, 0, 10), -EBUSY);
        assert_int_equal(fcntl(fd, F_GETFD), -1);

        response_reset(&r);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_int_equal(drover_response_send_fd(&r, fd, 5, 100), 0);
        assert_int_equal(response_body_length(&r), 100);
        assert_int_equal(drover_response_write(&r, "x", 1), -EBUSY);
        assert_int_equal(drover_response_send_fd(&r, -1, 0, 1), -EBADF);
        response_free(&r);
        assert_int_equal(fcntl(fd, F_GETFD), -1); /* the response owned it */
}

static void test_routing(void **state)
{
        Module m[] = {
                { .prefix = "", .prefix_len = 0 },
                { .prefix = "/app", .prefix_len = 4 },
                { .prefix = "/app/admin", .prefix_len = 10 },
                { .prefix = "/x", .prefix_len = 2 },
        };

        assert_ptr_equal(modules_route(m, 4, "/", 1), &m[0]);
        assert_ptr_equal(modules_route(m, 4, "/app", 4), &m[1]);
        assert_ptr_equal(modules_route(m, 4, "/app/", 5), &m[1]);
        assert_ptr_equal(modules_route(m, 4, "/app/page", 9), &m[1]);
        assert_ptr_equal(modules_route(m, 4, "/apple", 6), &m[0]);
        assert_ptr_equal(modules_route(m, 4, "/app/admin/users", 16), &m[2]);
        assert_ptr_equal(modules_route(m, 4, "/app/administrator", 18), &m[1]);
        assert_ptr_equal(modules_route(m, 4, "/x", 2), &m[3]);

        /* Without a catch-all, the rest goes to the static handler. */
        assert_null(modules_route(m + 1, 3, "/", 1));
        assert_null(modules_route(m + 1, 3, "/apple", 6));
        assert_null(modules_route(m, 0, "/app", 4));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_accessors),
                cmocka_unit_test(test_response_headers),
                cmocka_unit_test(test_response_body),
                cmocka_unit_test(test_routing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
