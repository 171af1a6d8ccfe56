/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "proto/scgi.h"

enum {
        SCGI_LENGTH, /* the decimal length before ':' */
        SCGI_BLOCK,  /* the header block */
        SCGI_COMMA,  /* the ',' that ends the netstring */
        SCGI_BODY,
        SCGI_DONE,
};

int scgi_request_init(ScgiRequest *r, const HttpLimits *limits)
{
        HttpLimits l = limits ? *limits : HTTP_LIMITS_DEFAULT;
        int k;

        *r = (ScgiRequest){};
        k = http_limits_check(&l);
        if (k < 0)
                return k;
        r->limits = l;
        r->arena = malloc(l.header_bytes_max);
        r->headers = calloc(l.headers_max, sizeof *r->headers);
        r->sorted = calloc(l.headers_max, sizeof *r->sorted);
        if (!r->arena || !r->headers || !r->sorted) {
                scgi_request_free(r);
                return -ENOMEM;
        }
        r->state = HTTP_PARSE_INCOMPLETE;
        r->phase = SCGI_LENGTH;
        return 0;
}

void scgi_request_free(ScgiRequest *r)
{
        free(r->arena);
        free(r->headers);
        free(r->sorted);
        free(r->body);
        r->arena = NULL;
        r->headers = NULL;
        r->sorted = NULL;
        r->body = NULL;
        r->n_headers = 0;
        r->arena_used = 0;
        r->body_len = r->body_cap = 0;
}

static void request_fail(ScgiRequest *r, unsigned status)
{
        r->state = HTTP_PARSE_ERROR;
        r->error_status = status;
        r->phase = SCGI_DONE;
}

static int compare_names(const void *a, const void *b, void *userdata)
{
        const ScgiRequest *r = userdata;
        const ScgiHeader *x = &r->headers[*(const uint32_t *) a], *y = &r->headers[*(const uint32_t *) b];
        /* Names hold no NUL (it ends them), so strcmp() orders them completely. */
        return strcmp(r->arena + x->name_off, r->arena + y->name_off);
}

/* Digits only, at least one, no overflow. */
static int parse_length(const char *s, size_t len, uint64_t *ret)
{
        uint64_t x = 0;

        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                if (x > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                x = x * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = x;
        return 0;
}

/* The whole header block is in the arena: split it, and check what the protocol requires. Returns 0 or a
 * status. */
static unsigned parse_block(ScgiRequest *r)
{
        const char *p = r->arena, *end = r->arena + r->netstring_len;
        unsigned n = 0;
        uint64_t cl;
        int k;

        /* Every name and value ends in a NUL, so the block does. */
        if (r->netstring_len == 0 || end[-1] != '\0')
                return 400;
        while (p < end) {
                const char *name = p, *value;
                size_t name_len = strlen(name), value_len;

                if (name_len == 0)
                        return 400;
                p += name_len + 1;
                if (p >= end)
                        return 400; /* a name without a value */
                value = p;
                value_len = strlen(value);
                p += value_len + 1;
                if (n >= r->limits.headers_max)
                        return 431;
                r->headers[n] = (ScgiHeader){
                        .name_off = (uint32_t) (name - r->arena),
                        .name_len = (uint32_t) name_len,
                        .value_off = (uint32_t) (value - r->arena),
                        .value_len = (uint32_t) value_len,
                };
                r->sorted[n] = n;
                n++;
        }

        /* The first header is CONTENT_LENGTH: the protocol makes it so that a server knows the body's length
         * before anything else. */
        if (strcmp(r->arena + r->headers[0].name_off, "CONTENT_LENGTH") != 0)
                return 400;
        k = parse_length(r->arena + r->headers[0].value_off, r->headers[0].value_len, &cl);
        if (k < 0)
                return 400;

        /* A name twice: which one would a handler see? Sorted, so that 10000 headers cost no 10^8
         * comparisons. */
        r->n_headers = n;
        qsort_r(r->sorted, n, sizeof *r->sorted, compare_names, r);
        for (unsigned i = 1; i < n; i++)
                if (compare_names(&r->sorted[i - 1], &r->sorted[i], r) == 0) {
                        r->n_headers = 0;
                        return 400;
                }

        size_t len;
        const char *scgi = scgi_request_header(r, "SCGI", &len);
        if (!scgi || len != 1 || scgi[0] != '1') {
                r->n_headers = 0;
                return 400;
        }

        if (cl > r->limits.body_max) {
                r->n_headers = 0;
                return 413;
        }
        r->content_length = cl;
        return 0;
}

static int body_append(ScgiRequest *r, const char *data, size_t len)
{
        size_t need = r->body_len + len + 1;

        if (need > r->body_cap) {
                /* Grow as the body arrives, up to exactly its announced length. */
                size_t cap = MAX(need, MAX(r->body_cap * 2, (size_t) 4096));
                cap = MIN(cap, (size_t) r->content_length + 1);
                char *b = realloc(r->body, cap);
                if (!b)
                        return -ENOMEM;
                r->body = b;
                r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
        r->body[r->body_len] = '\0';
        return 0;
}

size_t scgi_request_feed(ScgiRequest *r, const char *data, size_t len)
{
        size_t i = 0;

        if (r->state != HTTP_PARSE_INCOMPLETE)
                return 0;
        if (len > 0)
                r->started = true;

        while (i < len && r->state == HTTP_PARSE_INCOMPLETE) {
                char c = data[i];

                switch (r->phase) {
                case SCGI_LENGTH:
                        if (c == ':') {
                                if (r->len_digits == 0) {
                                        request_fail(r, 400);
                                        return i;
                                }
                                r->phase = SCGI_BLOCK;
                                i++;
                                break;
                        }
                        /* Digits, and no leading zero: "00:" is no netstring. */
                        if (c < '0' || c > '9' || (r->len_digits == 1 && r->netstring_len == 0)) {
                                request_fail(r, 400);
                                return i;
                        }
                        r->netstring_len = r->netstring_len * 10 + (size_t) (c - '0');
                        r->len_digits++;
                        /* header_bytes_max is at most 1 MiB: no overflow before this trips. */
                        if (r->netstring_len > r->limits.header_bytes_max) {
                                request_fail(r, 431);
                                return i;
                        }
                        i++;
                        break;

                case SCGI_BLOCK: {
                        size_t n = MIN(len - i, r->netstring_len - r->arena_used);
                        memcpy(r->arena + r->arena_used, data + i, n);
                        r->arena_used += n;
                        i += n;
                        if (r->arena_used == r->netstring_len)
                                r->phase = SCGI_COMMA;
                        break;
                }

                case SCGI_COMMA: {
                        if (c != ',') {
                                request_fail(r, 400);
                                return i;
                        }
                        i++;
                        unsigned status = parse_block(r);
                        if (status != 0) {
                                request_fail(r, status);
                                return i;
                        }
                        r->headers_done = true;
                        r->phase = SCGI_BODY;
                        if (r->content_length == 0) {
                                r->phase = SCGI_DONE;
                                r->state = HTTP_PARSE_COMPLETE;
                        }
                        break;
                }

                case SCGI_BODY: {
                        size_t n = (size_t) MIN((uint64_t) (len - i), r->content_length - r->body_len);
                        if (body_append(r, data + i, n) < 0) {
                                request_fail(r, 500);
                                return i;
                        }
                        i += n;
                        if (r->body_len == r->content_length) {
                                r->phase = SCGI_DONE;
                                r->state = HTTP_PARSE_COMPLETE;
                        }
                        break;
                }

                default:
                        return i;
                }
        }
        return i;
}

const char *scgi_request_header(const ScgiRequest *r, const char *name, size_t *ret_len)
{
        size_t lo = 0, hi = r->n_headers;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const ScgiHeader *h = &r->headers[r->sorted[mid]];
                int c = strcmp(name, r->arena + h->name_off);
                if (c == 0) {
                        if (ret_len)
                                *ret_len = h->value_len;
                        return r->arena + h->value_off;
                }
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

int scgi_request_header_at(const ScgiRequest *r, unsigned i, const char **ret_name, const char **ret_value,
                           size_t *ret_value_len)
{
        if (i >= r->n_headers)
                return -ENOENT;
        *ret_name = r->arena + r->headers[i].name_off;
        *ret_value = r->arena + r->headers[i].value_off;
        *ret_value_len = r->headers[i].value_len;
        return 0;
}

int scgi_format_response_head(unsigned status, const char *content_type, uint64_t content_length,
                              const char *extra_headers, char *buf, size_t size)
{
        size_t o = 0;

        if (status < 100 || status > 999)
                return -EINVAL;
        if (content_type && http_check_field_value(content_type) < 0)
                return -EINVAL;
        if (extra_headers && http_check_header_block(extra_headers) < 0)
                return -EINVAL;

#define PUT(...) APPENDF_OR_RETURN(buf, size, o, __VA_ARGS__)

        PUT("Status: %u %s\r\n", status, http_status_reason(status));
        if (content_type)
                PUT("Content-Type: %s\r\n", content_type);
        if (content_length != UINT64_MAX)
                PUT("Content-Length: %llu\r\n", (unsigned long long) content_length);
        if (extra_headers)
                PUT("%s", extra_headers);
        PUT("\r\n");
#undef PUT
        return (int) o;
}
