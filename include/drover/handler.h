/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * drover handler modules: the public, versioned C API.
 *
 * A module is a shared object that defines one symbol, `drover_module`, of type `drover_handler`:
 *
 *     #include <drover/handler.h>
 *
 *     static int handle(void *state, const drover_request *req, drover_response *resp)
 *     {
 *             drover_response_add_header(resp, "Content-Type", "text/plain");
 *             return drover_response_write(resp, "hello\n", 6);
 *     }
 *
 *     const drover_handler drover_module = {
 *             .abi_version = DROVER_HANDLER_ABI_VERSION,
 *             .name = "hello",
 *             .handle = handle,
 *     };
 *
 * built with `cc -shared -fPIC $(pkg-config --cflags drover-handler) -o hello.so hello.c` and loaded with
 * `drover --handler=/hello=/path/to/hello.so`. Each worker loads it after exec (so a reload loads the module
 * from disk again), calls init() once, handle() for every request routed to it, and fini() when it exits.
 *
 * handle() runs on the worker's event loop: while it runs, the worker serves nothing else. Keep it short, or
 * run more workers. The same request model serves HTTP/1.x and SCGI clients; drover frames the response
 * (status line or CGI Status:, Date, Server, Content-Length, Connection) itself.
 *
 * Every function returns >= 0 on success and a negative errno value on failure. Strings in a request are
 * not NUL-terminated unless said; they stay valid until handle() returns.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of this header; drover refuses a module built for another. */
#define DROVER_HANDLER_ABI_VERSION 1
/* The name of the symbol a module defines. */
#define DROVER_HANDLER_SYMBOL "drover_module"

typedef struct drover_request drover_request;
typedef struct drover_response drover_response;

typedef struct drover_header {
        const char *name; /* as the client sent it (HTTP), or derived from the CGI variable (SCGI: HTTP_X_Y → x-y) */
        size_t name_len;
        const char *value;
        size_t value_len;
} drover_header;

/* ---- the request ---- */

/* "GET", "POST", ...; NUL-terminated. */
const char *drover_request_method(const drover_request *r);
/* The percent-decoded path, starting with '/'. */
const char *drover_request_path(const drover_request *r, size_t *ret_len);
/* The query string as sent, without the '?'; NULL if the target had none. */
const char *drover_request_query(const drover_request *r, size_t *ret_len);
/* The prefix this module is mounted under ("" when it serves everything); the path still includes it. */
const char *drover_request_prefix(const drover_request *r, size_t *ret_len);
/* The first header with this name (case-insensitive), or NULL. */
const char *drover_request_header(const drover_request *r, const char *name, size_t *ret_len);
size_t drover_request_header_count(const drover_request *r);
/* The i-th header, in the order received; -ERANGE past the end. */
int drover_request_header_at(const drover_request *r, size_t i, drover_header *ret);
/* The whole request body (already read, de-chunked, at most the configured limit); NULL and 0 if none. */
const void *drover_request_body(const drover_request *r, size_t *ret_len);
/* The client's address ("127.0.0.1", "::1"), "" for a unix socket peer; NUL-terminated. With SCGI, the
 * frontend's REMOTE_ADDR. */
const char *drover_request_remote_address(const drover_request *r);
/* "HTTP/1.1", "HTTP/1.0" or "SCGI"; NUL-terminated. */
const char *drover_request_protocol(const drover_request *r);

/* ---- the response ---- */

/* 200 unless set; 100..599 (1xx other than by drover itself are refused: -EINVAL). */
int drover_response_set_status(drover_response *resp, unsigned status);
/* Adds a header. The name must be a token and the value free of CR, LF and NUL (-EINVAL). Content-Length,
 * Transfer-Encoding, Connection, Date and Server belong to drover (-EPERM). Content-Type defaults to
 * application/octet-stream when a body is sent without one. */
int drover_response_add_header(drover_response *resp, const char *name, const char *value);
/* Appends to the body, which drover sends once handle() returns (-ENOMEM, -EBUSY after send_fd). */
int drover_response_write(drover_response *resp, const void *data, size_t len);
/* The body is length bytes of fd from offset, sent with sendfile(); drover takes the fd (and closes it, on
 * failure too). Excludes drover_response_write() (-EBUSY). */
int drover_response_send_fd(drover_response *resp, int fd, uint64_t offset, uint64_t length);

/* ---- the module ---- */

typedef struct drover_handler {
        uint32_t abi_version; /* DROVER_HANDLER_ABI_VERSION */
        const char *name;
        /* Optional. Once per worker, before its first request; *ret_state is handed to handle() and fini().
         * A negative return stops the worker (it is logged and the supervisor backs off). */
        int (*init)(void **ret_state, const char *prefix);
        /* Required. A negative return, with nothing sent, answers 500. */
        int (*handle)(void *state, const drover_request *req, drover_response *resp);
        /* Optional. When the worker exits normally. */
        void (*fini)(void *state);
} drover_handler;

#ifdef __cplusplus
}
#endif
