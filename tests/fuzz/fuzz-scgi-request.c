/* SPDX-License-Identifier: MIT */
/*
 * The SCGI request parser. The first byte of an input is not part of the request: bits 0-1 choose the limits
 * (the defaults, or tiny, small or medium ones), bits 2-7 seed the cuts. Every input runs twice, in one feed
 * and cut at random points, and both runs must end the same way with the same request.
 */
#include "common/macro.h"
#include "fuzz.h"
#include "proto/scgi.h"

static const HttpLimits profiles[4] = {
        { HTTP_URL_MAX_DEFAULT, HTTP_HEADER_BYTES_MAX_DEFAULT, HTTP_HEADERS_MAX_DEFAULT, HTTP_BODY_MAX_DEFAULT },
        { 1, 24, 2, 4 },
        { 1, 256, 8, 256 },
        { 1, 4096, 64, 4096 },
};

typedef struct Outcome {
        HttpParseState state;
        unsigned error_status;
        size_t consumed;
        uint64_t digest;
} Outcome;

static uint64_t check_complete(const ScgiRequest *r)
{
        uint64_t h = 0;
        size_t len;

        FUZZ_ASSERT(r->headers_done && r->started && r->error_status == 0);
        FUZZ_ASSERT(r->n_headers >= 2 && r->n_headers <= r->limits.headers_max);
        FUZZ_ASSERT(r->arena_used == r->netstring_len && r->netstring_len <= r->limits.header_bytes_max);
        FUZZ_ASSERT(r->content_length <= r->limits.body_max && r->body_len == r->content_length);
        FUZZ_ASSERT(r->body_len == 0 || r->body[r->body_len] == '\0');

        const char *scgi = scgi_request_header(r, "SCGI", &len);
        FUZZ_ASSERT(scgi && len == 1 && scgi[0] == '1');
        for (unsigned i = 0; i < r->n_headers; i++) {
                const char *name, *value;
                size_t vl;
                FUZZ_ASSERT(scgi_request_header_at(r, i, &name, &value, &vl) == 0);
                FUZZ_ASSERT(name[0] != '\0' && strlen(value) == vl);
                FUZZ_ASSERT(name >= r->arena && value + vl < r->arena + r->arena_used);
                if (i == 0)
                        FUZZ_ASSERT(strcmp(name, "CONTENT_LENGTH") == 0);
                /* Names are unique: the lookup finds this very header. */
                const char *found = scgi_request_header(r, name, &len);
                FUZZ_ASSERT(found == value && len == vl);
                h = (h ^ fuzz_hash(name, strlen(name))) * 0x100000001b3ULL;
                h = (h ^ fuzz_hash(value, vl)) * 0x100000001b3ULL;
        }
        return (h ^ fuzz_hash(r->body, r->body_len)) * 0x100000001b3ULL;
}

static Outcome run(const uint8_t *data, size_t size, const HttpLimits *limits, uint32_t seed)
{
        ScgiRequest r;
        Outcome o = {};
        size_t off = 0;

        FUZZ_ASSERT(scgi_request_init(&r, limits) == 0);
        while (off < size && r.state == HTTP_PARSE_INCOMPLETE) {
                size_t chunk = size - off;
                if (seed) {
                        uint32_t x = fuzz_rand(&seed);
                        chunk = MIN(chunk, (size_t) (x % 4 == 0 ? 1 : 1 + (x >> 8) % 97));
                }
                char *buf = fuzz_copy(data + off, chunk);
                size_t n = scgi_request_feed(&r, buf, chunk);
                free(buf);
                FUZZ_ASSERT(n <= chunk);
                FUZZ_ASSERT(r.state != HTTP_PARSE_INCOMPLETE || n == chunk);
                off += n;
        }
        if (r.state == HTTP_PARSE_COMPLETE) {
                o.digest = check_complete(&r);
                FUZZ_ASSERT(scgi_request_feed(&r, "1", 1) == 0);
        }
        if (r.state == HTTP_PARSE_ERROR) {
                FUZZ_ASSERT(r.error_status == 400 || r.error_status == 413 || r.error_status == 431);
                FUZZ_ASSERT(r.n_headers == 0);
                FUZZ_ASSERT(scgi_request_feed(&r, "1", 1) == 0);
        }
        o.state = r.state;
        o.error_status = r.error_status;
        o.consumed = off;
        scgi_request_free(&r);
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const HttpLimits *limits = &profiles[data[0] & 3];
        uint32_t seed = data[0] >> 2;

        Outcome whole = run(data + 1, size - 1, limits, 0);
        Outcome cut = run(data + 1, size - 1, limits, seed ? seed * 2654435761U : 1);
        if (whole.state != cut.state || whole.error_status != cut.error_status || whole.consumed != cut.consumed ||
            whole.digest != cut.digest) {
                fprintf(stderr, "whole: state %d, status %u, consumed %zu\n", (int) whole.state, whole.error_status,
                        whole.consumed);
                fprintf(stderr, "cut:   state %d, status %u, consumed %zu\n", (int) cut.state, cut.error_status,
                        cut.consumed);
                abort();
        }

        /* The response head writer, with the input's first bytes as a content type and extra headers. */
        char ct[64], buf[256];
        size_t n = MIN(size - 1, sizeof ct - 1);
        memcpy(ct, data + 1, n);
        ct[n] = '\0';
        int k = scgi_format_response_head(100 + data[0] * 3U, ct, size, ct, buf, sizeof buf);
        FUZZ_ASSERT(k == -EINVAL || k == -ENOBUFS || (k > 0 && (size_t) k < sizeof buf && buf[k] == '\0'));
        if (k > 0)
                FUZZ_ASSERT(strstr(buf, "\r\n\r\n") == buf + k - 4);
        return 0;
}
