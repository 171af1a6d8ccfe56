/* SPDX-License-Identifier: MIT */
/*
 * A chunked request body: a fixed head with "Transfer-Encoding: chunked", then the input as the body. Fed in
 * one piece and again one byte at a time; both must end the same way, with the same body.
 */
#include "common/macro.h"
#include "fuzz.h"
#include "proto/http.h"

static const char head[] = "POST /upload HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n";

typedef struct Outcome {
        HttpParseState state;
        unsigned error_status;
        size_t consumed;
        size_t body_len;
        uint64_t body_hash;
} Outcome;

static Outcome run(const uint8_t *data, size_t size, bool bytewise)
{
        HttpLimits limits = HTTP_LIMITS_DEFAULT;
        HttpRequest r;
        Outcome o = {};
        size_t off = 0;

        limits.body_max = 65536;
        limits.header_bytes_max = 1024;
        FUZZ_ASSERT(http_request_init(&r, &limits) == 0);
        FUZZ_ASSERT(http_request_feed(&r, head, sizeof head - 1) == sizeof head - 1);
        FUZZ_ASSERT(r.state == HTTP_PARSE_INCOMPLETE && r.headers_done && r.chunked);

        while (off < size && r.state == HTTP_PARSE_INCOMPLETE) {
                size_t chunk = bytewise ? 1 : size - off;
                char *buf = fuzz_copy(data + off, chunk);
                size_t n = http_request_feed(&r, buf, chunk);
                free(buf);
                FUZZ_ASSERT(n <= chunk);
                FUZZ_ASSERT(r.state != HTTP_PARSE_INCOMPLETE || n == chunk);
                off += n;
        }
        if (r.state == HTTP_PARSE_COMPLETE) {
                FUZZ_ASSERT(r.body_len <= limits.body_max);
                FUZZ_ASSERT(r.body_len == 0 || r.body[r.body_len] == '\0');
                FUZZ_ASSERT(r.n_headers == 2); /* trailers are not headers */
                o.body_len = r.body_len;
                o.body_hash = fuzz_hash(r.body, r.body_len);
        }
        if (r.state == HTTP_PARSE_ERROR)
                FUZZ_ASSERT(r.error_status == 400 || r.error_status == 413 || r.error_status == 431);
        o.state = r.state;
        o.error_status = r.error_status;
        o.consumed = r.state == HTTP_PARSE_ERROR ? 0 : off;
        http_request_free(&r);
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Outcome whole = run(data, size, false), bytes = run(data, size, true);

        if (whole.state != bytes.state || whole.error_status != bytes.error_status ||
            whole.consumed != bytes.consumed || whole.body_len != bytes.body_len ||
            whole.body_hash != bytes.body_hash) {
                fprintf(stderr, "whole: state %d, status %u, consumed %zu, body %zu\n", (int) whole.state,
                        whole.error_status, whole.consumed, whole.body_len);
                fprintf(stderr, "bytes: state %d, status %u, consumed %zu, body %zu\n", (int) bytes.state,
                        bytes.error_status, bytes.consumed, bytes.body_len);
                abort();
        }
        return 0;
}
