/* SPDX-License-Identifier: MIT */
/*
 * The HTTP request framer, fed a stream of pipelined requests cut at random points, with http_request_next()
 * after each complete one. The first byte of an input is not part of the stream: bits 0-1 choose the limits
 * (the defaults, or tiny, small or medium ones, so that every limit is reached), bits 2-7 seed the cuts. Every
 * input runs twice, in one feed and cut, and both runs must see the same requests with the same results.
 */
#include <strings.h>

#include "common/macro.h"
#include "fuzz.h"
#include "proto/http.h"

#define MAX_REQUESTS 64

static const HttpLimits profiles[4] = {
        { HTTP_URL_MAX_DEFAULT, HTTP_HEADER_BYTES_MAX_DEFAULT, HTTP_HEADERS_MAX_DEFAULT, HTTP_BODY_MAX_DEFAULT },
        { 4, 16, 2, 8 },
        { 64, 256, 8, 256 },
        { 1024, 2048, 32, 4096 },
};

typedef struct Outcome {
        unsigned n;         /* requests completed */
        HttpParseState state;
        unsigned error_status;
        size_t consumed;
        uint64_t digest; /* of everything the completed requests said */
} Outcome;

static bool is_tchar(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static uint64_t mix(uint64_t h, uint64_t x)
{
        return (h ^ x) * 0x100000001b3ULL;
}

static uint64_t check_complete(const HttpRequest *r)
{
        const HttpLimits *l = &r->limits;
        uint64_t h = 0;
        unsigned n_host = 0;

        FUZZ_ASSERT(r->headers_done);
        FUZZ_ASSERT(r->started);
        FUZZ_ASSERT(r->error_status == 0);
        FUZZ_ASSERT(r->parser.http_major == 1);
        FUZZ_ASSERT(r->arena_used <= r->arena_size);
        FUZZ_ASSERT(r->url_len > 0 && r->url_len <= l->url_max);
        FUZZ_ASSERT((size_t) r->url_off + r->url_len <= r->arena_used);
        for (uint32_t i = 0; i < r->url_len; i++) {
                unsigned char c = (unsigned char) r->arena[r->url_off + i];
                FUZZ_ASSERT(c > ' ' && c != 0x7f);
        }
        FUZZ_ASSERT(r->n_headers <= l->headers_max);
        for (unsigned i = 0; i < r->n_headers; i++) {
                const char *name, *value;
                size_t nl, vl;
                FUZZ_ASSERT(http_request_header_at(r, i, &name, &nl, &value, &vl) == 0);
                FUZZ_ASSERT(nl > 0);
                FUZZ_ASSERT(name >= r->arena && name + nl <= r->arena + r->arena_used);
                FUZZ_ASSERT(vl == 0 || (value >= r->arena && value + vl <= r->arena + r->arena_used));
                for (size_t j = 0; j < nl; j++)
                        FUZZ_ASSERT(is_tchar((unsigned char) name[j]));
                for (size_t j = 0; j < vl; j++) {
                        unsigned char c = (unsigned char) value[j];
                        FUZZ_ASSERT(c == '\t' || (c >= ' ' && c != 0x7f));
                }
                FUZZ_ASSERT(vl == 0 || (value[0] != ' ' && value[0] != '\t'));
                FUZZ_ASSERT(vl == 0 || (value[vl - 1] != ' ' && value[vl - 1] != '\t'));
                if (nl == 4 && strncasecmp(name, "host", 4) == 0)
                        n_host++;
                h = mix(h, fuzz_hash(name, nl));
                h = mix(h, fuzz_hash(value, vl));
        }
        FUZZ_ASSERT(http_request_header_at(r, r->n_headers, &(const char *){ NULL }, &(size_t){ 0 },
                                           &(const char *){ NULL }, &(size_t){ 0 }) == -ENOENT);
        FUZZ_ASSERT(n_host <= 1);
        FUZZ_ASSERT(n_host == 1 || r->parser.http_minor == 0);

        FUZZ_ASSERT(!(r->chunked && r->has_content_length));
        FUZZ_ASSERT(r->body_len <= l->body_max);
        if (r->has_content_length)
                FUZZ_ASSERT(r->body_len == r->content_length);
        if (r->body_len > 0) {
                FUZZ_ASSERT(r->body && r->body_len < r->body_cap);
                FUZZ_ASSERT(r->body[r->body_len] == '\0');
        }
        FUZZ_ASSERT(!r->expect_continue || r->parser.http_minor >= 1);

        size_t len;
        const char *v = http_request_header(r, "content-length", &len);
        FUZZ_ASSERT(!v == !r->has_content_length);

        /* The target decodes and normalises without trouble either way. */
        size_t url_len;
        const char *url = http_request_url(r, &url_len);
        char *path = malloc(url_len + 2);
        FUZZ_ASSERT(path);
        int k = http_target_decode_path(url, url_len, path, url_len + 2, NULL);
        FUZZ_ASSERT(k == -EINVAL || (k > 0 && (size_t) k <= url_len + 1));
        if (k > 0 && path[0] == '/')
                (void) http_path_normalize(path, (size_t) k);
        free(path);

        h = mix(h, fuzz_hash(url, url_len));
        h = mix(h, fuzz_hash(r->body, r->body_len));
        h = mix(h, (uint64_t) http_request_method(r) << 8 | r->parser.http_minor);
        h = mix(h, (uint64_t) r->keep_alive | r->chunked << 1 | r->expect_continue << 2 |
                           r->has_content_length << 3);
        return h;
}

static Outcome run(const uint8_t *data, size_t size, const HttpLimits *limits, uint32_t seed)
{
        HttpRequest r;
        Outcome o = {};
        size_t off = 0;

        FUZZ_ASSERT(http_request_init(&r, limits) == 0);
        while (off < size) {
                size_t chunk = size - off;
                if (seed) {
                        uint32_t x = fuzz_rand(&seed);
                        /* Mostly small pieces, often single bytes. */
                        chunk = MIN(chunk, (size_t) (x % 4 == 0 ? 1 : 1 + (x >> 8) % 97));
                }
                char *buf = fuzz_copy(data + off, chunk);
                size_t n = http_request_feed(&r, buf, chunk);
                free(buf);
                FUZZ_ASSERT(n <= chunk);
                off += n;

                if (r.state == HTTP_PARSE_ERROR) {
                        static const unsigned allowed[] = { 400, 413, 414, 417, 431, 500, 501, 505 };
                        bool ok = false;
                        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                                ok = ok || r.error_status == allowed[i];
                        FUZZ_ASSERT(ok);
                        FUZZ_ASSERT(http_request_feed(&r, "GET", 3) == 0);
                        break;
                }
                if (r.state == HTTP_PARSE_INCOMPLETE) {
                        /* Nothing is left unconsumed unless a request ended or failed. */
                        FUZZ_ASSERT(n == chunk);
                        continue;
                }
                FUZZ_ASSERT(n > 0);
                o.digest = mix(o.digest, check_complete(&r));
                o.n++;
                /* Complete: nothing more is consumed until the next. */
                FUZZ_ASSERT(http_request_feed(&r, "GET", 3) == 0);
                http_request_next(&r);
                FUZZ_ASSERT(r.state == HTTP_PARSE_INCOMPLETE && r.n_headers == 0 && r.body_len == 0);
                if (o.n == MAX_REQUESTS)
                        break;
        }
        o.state = r.state;
        /* Whether bytes that are no method are a 400 or an unknown method a 501 looks at what follows in the
         * same feed: the one thing a cut may change. */
        o.error_status = r.error_status == 501 ? 400 : r.error_status;
        o.consumed = r.state == HTTP_PARSE_ERROR ? 0 : off;
        http_request_free(&r);
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
        if (whole.n != cut.n || whole.state != cut.state || whole.error_status != cut.error_status ||
            whole.consumed != cut.consumed || whole.digest != cut.digest) {
                fprintf(stderr, "whole: %u requests, state %d, status %u, consumed %zu, digest %016llx\n",
                        whole.n, (int) whole.state, whole.error_status, whole.consumed,
                        (unsigned long long) whole.digest);
                fprintf(stderr, "cut:   %u requests, state %d, status %u, consumed %zu, digest %016llx\n", cut.n,
                        (int) cut.state, cut.error_status, cut.consumed, (unsigned long long) cut.digest);
                abort();
        }
        return 0;
}
