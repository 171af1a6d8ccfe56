/* SPDX-License-Identifier: MIT */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * HTTP/1.x request framing on top of Debian's http-parser (nodejs/http-parser). Pure: bytes in, a request
 * out; no I/O, no logging. The URL and the header fields are copied into a per-connection arena (allocated
 * once by http_request_init()) as they arrive, and the body into a growable buffer, so the caller may reuse
 * its read buffer between reads and a request may span any number of reads. The parser pauses after each
 * complete request, which is what makes pipelining safe: the caller answers one request, then calls
 * http_request_next() and feeds the bytes that followed it.
 *
 * Framing is strict and never guesses: Debian builds http-parser without HTTP_PARSER_STRICT, so every byte
 * of the request line, the header block, the chunk framing and the trailers also goes through a scanner of
 * our own (see http.c) before the library sees it, and the two must agree on where the head and the message
 * end.
 */

/* The defaults of the runtime limits. */
#define HTTP_URL_MAX_DEFAULT 8192U
#define HTTP_HEADER_BYTES_MAX_DEFAULT 16384U
#define HTTP_HEADERS_MAX_DEFAULT 100U
#define HTTP_BODY_MAX_DEFAULT (UINT64_C(1) << 20)
/* What http_request_init() accepts at most. */
#define HTTP_URL_MAX_CAP 65536U
#define HTTP_HEADER_BYTES_MAX_CAP (1U << 20)
#define HTTP_HEADERS_MAX_CAP 10000U
#define HTTP_BODY_MAX_CAP (UINT64_C(1) << 40)
/* The older names of the defaults. (A buffer of HTTP_URL_MAX + 1 fits a decoded path only under them.) */
#define HTTP_URL_MAX HTTP_URL_MAX_DEFAULT
#define HTTP_HEADER_BYTES_MAX HTTP_HEADER_BYTES_MAX_DEFAULT
#define HTTP_HEADERS_MAX HTTP_HEADERS_MAX_DEFAULT

/* A body buffer that grew beyond this is released after its request rather than kept for the next one. */
#define HTTP_BODY_KEEP 65536U
/* The arena and the header table start this small and grow on demand up to what the limits allow; between
 * requests, a grown arena or table goes back to this size (most heads fit it: a connection's idle cost). */
#define HTTP_ARENA_INITIAL 1024U
#define HTTP_HEADERS_INITIAL 16U

typedef struct HttpLimits {
        size_t url_max;          /* bytes of the request target: 414 beyond */
        size_t header_bytes_max; /* bytes after the request line up to and including the empty line, plus
                                  * the trailers of a chunked body: 431 beyond */
        unsigned headers_max;    /* header fields plus trailer fields: 431 beyond */
        uint64_t body_max;       /* bytes of the (decoded) body: 413 beyond */
} HttpLimits;

#define HTTP_LIMITS_DEFAULT                                                                                     \
        ((HttpLimits){                                                                                          \
                .url_max = HTTP_URL_MAX_DEFAULT,                                                                \
                .header_bytes_max = HTTP_HEADER_BYTES_MAX_DEFAULT,                                              \
                .headers_max = HTTP_HEADERS_MAX_DEFAULT,                                                        \
                .body_max = HTTP_BODY_MAX_DEFAULT,                                                              \
        })

/* -EINVAL unless every limit is between 1 and its cap. */
int http_limits_check(const HttpLimits *l);

typedef struct HttpHeader {
        uint32_t name_off, name_len;
        uint32_t value_off, value_len;
} HttpHeader;

typedef enum HttpParseState {
        HTTP_PARSE_INCOMPLETE, /* feed more bytes */
        HTTP_PARSE_COMPLETE,   /* a whole request: answer it, then http_request_next() */
        HTTP_PARSE_ERROR,      /* answer with error_status and close */
} HttpParseState;

/* Private: where our own scanner is in the raw byte stream (http.c). */
typedef struct HttpFraming {
        unsigned state;
        unsigned pos;          /* index into the version being matched */
        unsigned empty_lines;  /* before the request line */
        unsigned fields;       /* header and trailer lines so far */
        size_t line_bytes;     /* of the request target, or of the current chunk-size line */
        size_t field_bytes;    /* of the header block and trailers so far */
        uint64_t chunk_size;   /* of the chunk being read */
        uint64_t chunk_total;  /* the sum of the chunk sizes so far */
} HttpFraming;

typedef struct HttpRequest {
        http_parser parser;
        HttpLimits limits;
        HttpParseState state;
        unsigned error_status; /* 400, 413, 414, 417, 431, 500, 501, 505 when state is HTTP_PARSE_ERROR */
        bool started;          /* a byte of this request (not counting empty lines before it) was consumed */
        bool headers_done;     /* the header block is complete and valid: the fields below are set */
        bool keep_alive;       /* only meaningful when complete */
        bool expect_continue;  /* HTTP/1.1 "Expect: 100-continue" and a body follows: send
                                * HTTP_CONTINUE_RESPONSE before reading it (unless answering first) */
        bool chunked;          /* the body is chunked */
        bool has_content_length;
        uint64_t content_length; /* when has_content_length */

        uint32_t url_off, url_len;
        HttpHeader *headers; /* headers_cap entries, grown up to limits.headers_max */
        unsigned n_headers, headers_cap;
        bool in_value; /* the last header callback was a value */

        char *arena; /* arena_size bytes, grown on demand up to arena_max */
        size_t arena_size, arena_used;
        size_t arena_max; /* limits.url_max + limits.header_bytes_max */

        char *body;      /* the decoded body, NUL-terminated; valid when complete (NULL if none yet) */
        size_t body_len; /* valid when complete */
        size_t body_cap;

        HttpFraming framing;
} HttpRequest;

#define HTTP_CONTINUE_RESPONSE "HTTP/1.1 100 Continue\r\n\r\n"

/* Sets up a request with these limits (NULL: the defaults) and allocates its (initial) arena. Need not be given a
 * zeroed struct. Returns -EINVAL for limits beyond their caps, -ENOMEM. */
int http_request_init(HttpRequest *r, const HttpLimits *limits);
/* Frees what init allocated; accepts a zeroed struct and may be called twice. */
void http_request_free(HttpRequest *r);
/* Prepares for the next request on the same connection (after a complete one). Keeps the arena and the
 * header table at their initial sizes (shrinks them if they grew), and the body buffer unless it grew beyond
 * HTTP_BODY_KEEP. */
void http_request_next(HttpRequest *r);
/* Prepares for the first request of a new connection, keeping the allocations (a reused connection object). */
void http_request_reset(HttpRequest *r);
/* Feeds bytes; returns how many were consumed. Consumption stops after a complete request, and at an error.
 */
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
/* The i-th header field in the order received: 0, or -ENOENT when i >= n_headers. */
int http_request_header_at(const HttpRequest *r, unsigned i, const char **ret_name, size_t *ret_name_len,
                           const char **ret_value, size_t *ret_value_len);

const char *http_status_reason(unsigned status);

/* Extracts the path of the request target (origin-form or absolute-form), percent-decodes it once, and
 * rejects NUL bytes and malformed escapes. Returns the decoded length, -EINVAL (400) or -ENAMETOOLONG. */
int http_target_decode_path(const char *url, size_t url_len, char *out, size_t out_size, size_t *ret_query_off);

/* Normalises a decoded path in place (RFC 3986 5.2.4): "." and ".." segments are resolved and runs of '/'
 * are merged; a trailing '/' (or one implied by a final "." or "..") is kept. path must start with '/' and
 * have room for len + 1 bytes: the result is NUL-terminated. Returns the new length, or -EINVAL for a path
 * not starting with '/' or a ".." that would climb above the root. */
int http_path_normalize(char *path, size_t len);

typedef struct HttpResponseHead {
        unsigned status;
        unsigned minor_version; /* of the request: 0 or 1 */
        bool keep_alive;        /* false: "Connection: close"; true on HTTP/1.0: "Connection: keep-alive" */
        bool has_body_length;
        uint64_t content_length;
        bool chunked;              /* "Transfer-Encoding: chunked"; HTTP/1.1 only, and not with a length */
        const char *content_type;  /* may be NULL */
        const char *date;          /* preformatted IMF-fixdate, may be NULL */
        const char *server;        /* NULL: no Server header */
        size_t server_len;         /* strlen(server) if the caller knows it, else 0: then it is measured */
        time_t last_modified;      /* 0: none */
        const char *etag;          /* the complete entity-tag, quotes included; may be NULL */
        bool accept_ranges;        /* "Accept-Ranges: bytes" */
        const char *content_range; /* e.g. "bytes 0-99/1234"; may be NULL */
        const char *location;      /* may be NULL */
        const char *allow;         /* may be NULL */
        const char *extra_headers; /* preformatted "Name: value\r\n" lines, may be NULL */
        size_t extra_headers_len;  /* strlen(extra_headers) if the caller knows it, else 0: then it is measured */
        /* The caller built extra_headers only from checked lines (a drover_response's block, see request.h):
         * it is not checked again. */
        bool extra_headers_checked;
        /* The caller checked server and date as field values once, when it set them up (a worker's Server
         * header at start-up, its Date once a second): they are not checked again for every response. */
        bool server_date_checked;
} HttpResponseHead;

/* Writes the status line and header block. Returns its length, -ENOBUFS if it does not fit, or -EINVAL if a
 * string field holds a CR, LF or other control character, extra_headers is not a run of "Name: value\r\n"
 * lines, or chunked is combined with a body length or HTTP/1.0 (nothing the client could be made to misframe
 * ever leaves). */
int http_format_head(const HttpResponseHead *h, char *buf, size_t size);
/* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"; buf must hold 30 bytes. */
void http_format_date(time_t t, char buf[static 30]);

/* Checks a header value to be sent: visible characters, obs-text, SP and HTAB only. Returns 0 or -EINVAL. */
int http_check_field_value(const char *value);
/* Checks a field name: a non-empty RFC 9110 token. Returns 0 or -EINVAL. */
int http_check_token(const char *s);
/* Checks a preformatted header block: lines of a token name, ':', and a value of visible characters, SP and
 * HTAB, each ending in CRLF. The empty string is valid. Returns 0 or -EINVAL. (Shared with scgi.c.) */
int http_check_header_block(const char *block);
/* Parses an HTTP-date (RFC 9110 5.6.7): IMF-fixdate, and the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37
 * GMT") and asctime ("Sun Nov  6 08:49:37 1994") forms a recipient must accept. Exactly the grammar, case
 * sensitive, no surrounding whitespace, no locale. now places RFC 850's two-digit years: one that would be
 * more than 50 years in the future is taken from the century before. Returns 0, -EINVAL if s is not an
 * HTTP-date, or -ERANGE if time_t cannot hold it. */
int http_parse_date(const char *s, size_t len, time_t now, time_t *ret);
