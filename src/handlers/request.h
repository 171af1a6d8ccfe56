/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "drover/handler.h"

/*
 * The one request model every protocol feeds and every handler reads: HTTP/1.x and SCGI requests are
 * translated into a drover_request, handlers answer into a drover_response, and the protocol frames that.
 * Pure: no I/O, no logging. The request only points into the protocol parser's buffers; the response owns
 * its header block and body.
 */

struct drover_request {
        const char *method;
        const char *path;
        size_t path_len;
        const char *query; /* NULL: none */
        size_t query_len;
        const char *prefix;
        size_t prefix_len;
        const drover_header *headers;
        size_t n_headers;
        const char *body;
        size_t body_len;
        const char *remote_address; /* NULL: formatted from peer into remote_buf when a handler asks */
        const struct sockaddr *peer;
        char *remote_buf; /* INET6_ADDRSTRLEN bytes, "" until formatted */
        const char *protocol;
        bool head; /* HEAD: the protocol sends no body, whatever the handler wrote */
};

#define RESPONSE_HEADERS_MAX 8192U /* bytes of handler-added header lines */

struct drover_response {
        unsigned status;
        char *headers; /* "Name: value\r\n" lines, NUL-terminated */
        size_t headers_len, headers_cap;
        bool has_content_type;
        char *body;
        size_t body_len, body_cap;
        int fd; /* body from a file, or -EBADF */
        uint64_t fd_offset, fd_length;

        /* Internal (never set by modules): a body or fd borrowed from their owner (the static handler's
         * cache), which `release(release_data)` gives back when the response is reset. A borrowed fd is not
         * closed here; a borrowed body (ext, ext_len) is sent instead of body. */
        bool fd_borrowed;
        const char *ext;
        size_t ext_len;
        void (*release)(void *data);
        void *release_data;
        /* headers holds only lines built by drover_response_add_header() and response_add_checked_headers():
         * always a valid header block (see http_format_head()). */
};

void response_init(drover_response *r);
/* Frees what the response owns and makes it ready for the next request (keeps small buffers). */
void response_reset(drover_response *r);
void response_free(drover_response *r);
/* Appends header lines that the caller built from checked values (e.g. the static handler's cache entries):
 * "Name: value\r\n" lines, len bytes, which must not include Content-Length, Connection or the other
 * reserved names. Returns 0, -E2BIG or -ENOMEM. */
int response_add_checked_headers(drover_response *r, const char *lines, size_t len, bool content_type);
/* Drops the body (memory, borrowed or file), keeping the headers: HEAD and 304. */
void response_drop_body(drover_response *r);
/* The body length the protocol announces: memory or file. */
uint64_t response_body_length(const drover_response *r);
/* The Content-Type to announce when the handler set none and there is a body, or NULL. */
const char *response_default_content_type(const drover_response *r);

/* Case-insensitive header lookup over an array. */
const char *headers_find(const drover_header *h, size_t n, const char *name, size_t *ret_len);
