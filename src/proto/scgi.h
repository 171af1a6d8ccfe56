/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/http.h"

/*
 * SCGI requests (python.ca/scgi/protocol.txt). Pure: bytes in, a request out; no I/O, no logging. A request
 * is a netstring, "LEN:" + header block + ",", followed by CONTENT_LENGTH bytes of body. The header block is
 * NUL-terminated names and values; the first header is CONTENT_LENGTH (digits only), SCGI must be present
 * with the value "1", no name may be empty or appear twice. The header block is limited by the same limits
 * as an HTTP head (header_bytes_max: 431; headers_max: 431) and the body by body_max (413); everything else
 * wrong is a 400. One request per connection: there is no "next".
 */

typedef struct ScgiHeader {
        uint32_t name_off, name_len;
        uint32_t value_off, value_len;
} ScgiHeader;

typedef struct ScgiRequest {
        HttpLimits limits;
        HttpParseState state;  /* as for HTTP: INCOMPLETE, COMPLETE, ERROR */
        unsigned error_status; /* 400, 413, 431, 500 when state is HTTP_PARSE_ERROR */
        bool started;          /* a byte has been consumed */
        bool headers_done;     /* the header block is complete and valid: headers, content_length are set */

        unsigned phase;       /* private: where in the netstring we are */
        size_t netstring_len; /* the announced length of the header block */
        unsigned len_digits;

        char *arena; /* the header block as received: limits.header_bytes_max bytes */
        size_t arena_used;
        ScgiHeader *headers; /* in the order received; limits.headers_max entries */
        unsigned n_headers;
        uint32_t *sorted; /* indexes into headers, by name: for duplicates and lookups */

        uint64_t content_length;
        char *body;      /* NUL-terminated; NULL while body_len is 0 */
        size_t body_len; /* valid when complete */
        size_t body_cap;
} ScgiRequest;

/* Sets up a request with these limits (NULL: the defaults) and allocates its arena. Need not be given a
 * zeroed struct. Returns -EINVAL for limits beyond their caps, -ENOMEM. */
int scgi_request_init(ScgiRequest *r, const HttpLimits *limits);
/* Frees what init allocated; accepts a zeroed struct and may be called twice. */
void scgi_request_free(ScgiRequest *r);
/* Feeds bytes; returns how many were consumed. Consumption stops after the body, and at an error. */
size_t scgi_request_feed(ScgiRequest *r, const char *data, size_t len);

/* Case-sensitive lookup (CGI variables are), once headers_done. The value is NUL-terminated as well. NULL if
 * absent. */
const char *scgi_request_header(const ScgiRequest *r, const char *name, size_t *ret_len);
/* The i-th header in the order received, once headers_done: 0, or -ENOENT when i >= n_headers. Name and
 * value are NUL-terminated. */
int scgi_request_header_at(const ScgiRequest *r, unsigned i, const char **ret_name, const char **ret_value,
                           size_t *ret_value_len);

/* A CGI-style response head: "Status: 200 OK\r\n", "Content-Type: ...\r\n" unless content_type is NULL,
 * "Content-Length: N\r\n" unless content_length is UINT64_MAX, the preformatted extra_headers ("Name:
 * value\r\n" lines, may be NULL), and the empty line. Returns its length, -ENOBUFS if it does not fit, or
 * -EINVAL for a status outside 100..999, a content type with a control character, or malformed
 * extra_headers. */
int scgi_format_response_head(unsigned status, const char *content_type, uint64_t content_length,
                              const char *extra_headers, char *buf, size_t size);
