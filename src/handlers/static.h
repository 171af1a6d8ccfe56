/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "handlers/mime.h"

/* The static file handler: serves a document root. Every path is resolved beneath the root with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so neither "..", nor an absolute symlink, nor a symlink
 * leading out of the root can reach anything outside it. */

typedef struct StaticHandler {
        int root_fd;
        MimeTable mime;
} StaticHandler;

typedef struct StaticResult {
        unsigned status;          /* 200, 301, 403, 404, 500 */
        int fd;                   /* the open file for 200, else -EBADF; the caller owns it */
        uint64_t size;
        time_t mtime;
        const char *content_type; /* for 200 */
        char location[512];       /* for 301: the path with a trailing slash */
} StaticResult;

int static_handler_init(StaticHandler *h, const char *root, const char *mime_types_path);
void static_handler_done(StaticHandler *h);

/* Resolves the decoded request path (starting with '/') and opens what it names. Never fails: errors
 * become statuses in the result. */
void static_handler_resolve(const StaticHandler *h, const char *path, size_t path_len, StaticResult *ret);
