/* SPDX-License-Identifier: MIT */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * HTTP/1.x request framing on top of Debian's http-parser (nodejs/http-parser). Pure: bytes in, a request out;
 * no I/O, no allocation, no logging. The URL and the header fields are copied into a fixed per-connection arena
 * as they arrive, so the caller may reuse its read buffer between reads and a request may span any number of
 * reads. The parser pauses after each complete request, which is what makes pipelining safe: the caller answers
 * one request, then calls http_request_next() and feeds the bytes that followed it.
 */

#define HTTP_URL_MAX 8192U
#define HTTP_HEADER_BYTES_MAX 16384U
#define HTTP_HEADERS_MAX 100U

typedef struct HttpHeader {
        uint16_t name_off, name_len;
        uint16_t value_off, value_len;
} HttpHeader;

typedef enum HttpParseState {
        HTTP_PARSE_INCOMPLETE, /* feed more bytes */
        HTTP_PARSE_COMPLETE,   /* a whole request: answer it, then http_request_next() */
        HTTP_PARSE_ERROR,      /* answer with error_status and close */
} HttpParseState;

typedef struct HttpRequest {
        http_parser parser;
        HttpParseState state;
        unsigned error_status; /* 400, 414, 431, 501, 505 when state is HTTP_PARSE_ERROR */
        bool started;          /* a byte of this request has been consumed */
        bool headers_done;
        bool keep_alive;       /* only meaningful when complete */

        uint16_t url_off, url_len;
        HttpHeader headers[HTTP_HEADERS_MAX];
        unsigned n_headers;
        bool in_value;         /* the last header callback was a value */

        size_t arena_used;
        char arena[HTTP_HEADER_BYTES_MAX];
} HttpRequest;

void http_request_init(HttpRequest *r);
/* Prepares for the next request on the same connection (after a complete one). */
void http_request_next(HttpRequest *r);
/* Feeds bytes; returns how many were consumed. Consumption stops after a complete request. */
size_t http_request_feed(HttpRequest *r, const char *data, size_t len);

static inline const char *http_request_url(const HttpRequest *r, size_t *ret_len)
{
        *ret_len = r->url_len;
        return r->arena + r->url_off;
}
static inline enum http_method http_request_method(const HttpRequest *r)
{
        return (enum http_method) r->parser.method;
}
/* Case-insensitive lookup of the first header with this name; NULL if absent. */
const char *http_request_header(const HttpRequest *r, const char *name, size_t *ret_len);

const char *http_status_reason(unsigned status);

/* Extracts the path of the request target (origin-form or absolute-form), percent-decodes it once, and rejects
 * NUL bytes and malformed escapes. Returns the decoded length, -EINVAL (400) or -ENAMETOOLONG. */
int http_target_decode_path(const char *url, size_t url_len, char *out, size_t out_size, size_t *ret_query_off);

typedef struct HttpResponseHead {
        unsigned status;
        unsigned minor_version; /* of the request: 0 or 1 */
        bool keep_alive;
        bool has_body_length;
        uint64_t content_length;
        const char *content_type; /* may be NULL */
        const char *date;         /* preformatted IMF-fixdate, may be NULL */
        const char *server;       /* may be NULL */
        time_t last_modified;     /* 0: none */
        const char *location;     /* may be NULL */
        const char *allow;        /* may be NULL */
        const char *etag;         /* the entity-tag, quotes included; may be NULL */
        const char *content_range; /* the value, for 206 and 416 (RFC 9110 14.4); may be NULL */
        bool accept_ranges;       /* sends "Accept-Ranges: bytes" */
} HttpResponseHead;

/* Writes the status line and header block. Returns its length, or -ENOBUFS if it does not fit. */
int http_format_head(const HttpResponseHead *h, char *buf, size_t size);
/* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"; buf must hold 30 bytes. */
void http_format_date(time_t t, char buf[static 30]);
/* Parses an HTTP-date (RFC 9110 5.6.7): IMF-fixdate, and the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37
 * GMT") and asctime ("Sun Nov  6 08:49:37 1994") forms a recipient must accept. Exactly the grammar, case
 * sensitive, no surrounding whitespace, no locale. now places RFC 850's two-digit years: one that would be
 * more than 50 years in the future is taken from the century before. Returns 0, -EINVAL if s is not an
 * HTTP-date, or -ERANGE if time_t cannot hold it. */
int http_parse_date(const char *s, size_t len, time_t now, time_t *ret);
