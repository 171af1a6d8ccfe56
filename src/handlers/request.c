/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/macro.h"
#include "handlers/request.h"
#include "proto/http.h"

/* The public API below is what modules link against: the drover binary exports exactly these symbols
 * (src/handlers/handler.sym). */

const char *drover_request_method(const drover_request *r)
{
        return r->method;
}

const char *drover_request_path(const drover_request *r, size_t *ret_len)
{
        if (ret_len)
                *ret_len = r->path_len;
        return r->path;
}

const char *drover_request_query(const drover_request *r, size_t *ret_len)
{
        if (ret_len)
                *ret_len = r->query ? r->query_len : 0;
        return r->query;
}

const char *drover_request_prefix(const drover_request *r, size_t *ret_len)
{
        if (ret_len)
                *ret_len = r->prefix_len;
        return r->prefix ?: "";
}

const char *headers_find(const drover_header *h, size_t n, const char *name, size_t *ret_len)
{
        size_t len = strlen(name);
        for (size_t i = 0; i < n; i++)
                if (h[i].name_len == len && strncasecmp(h[i].name, name, len) == 0) {
                        if (ret_len)
                                *ret_len = h[i].value_len;
                        return h[i].value;
                }
        return NULL;
}

const char *drover_request_header(const drover_request *r, const char *name, size_t *ret_len)
{
        return name ? headers_find(r->headers, r->n_headers, name, ret_len) : NULL;
}

size_t drover_request_header_count(const drover_request *r)
{
        return r->n_headers;
}

int drover_request_header_at(const drover_request *r, size_t i, drover_header *ret)
{
        if (i >= r->n_headers || !ret)
                return -ERANGE;
        *ret = r->headers[i];
        return 0;
}

const void *drover_request_body(const drover_request *r, size_t *ret_len)
{
        if (ret_len)
                *ret_len = r->body ? r->body_len : 0;
        return r->body_len > 0 ? r->body : NULL;
}

/* Formatted on demand: most requests never ask, and inet_ntop() is not free. */
const char *drover_request_remote_address(const drover_request *r)
{
        if (r->remote_address)
                return r->remote_address;
        if (!r->peer || !r->remote_buf)
                return "";
        if (!r->remote_buf[0]) {
                if (r->peer->sa_family == AF_INET)
                        (void) inet_ntop(AF_INET, &((const struct sockaddr_in *) r->peer)->sin_addr, r->remote_buf,
                                         INET6_ADDRSTRLEN);
                else if (r->peer->sa_family == AF_INET6)
                        (void) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) r->peer)->sin6_addr,
                                         r->remote_buf, INET6_ADDRSTRLEN);
        }
        return r->remote_buf;
}

const char *drover_request_protocol(const drover_request *r)
{
        return r->protocol;
}

/* ---- response ---- */

void response_init(drover_response *r)
{
        *r = (drover_response){ .status = 200, .fd = -EBADF };
}

void response_drop_body(drover_response *r)
{
        if (r->fd_borrowed)
                r->fd = -EBADF;
        else
                r->fd = safe_close(r->fd);
        r->fd_borrowed = false;
        r->fd_offset = r->fd_length = 0;
        r->ext = NULL;
        r->ext_len = 0;
        r->body_len = 0;
}

static void response_release(drover_response *r)
{
        response_drop_body(r);
        if (r->release)
                r->release(r->release_data);
        r->release = NULL;
        r->release_data = NULL;
}

void response_reset(drover_response *r)
{
        char *headers;
        char *body;
        size_t hcap, bcap;

        response_release(r);
        headers = r->headers;
        body = r->body;
        hcap = r->headers_cap;
        bcap = r->body_cap;
        /* A connection keeps modest buffers for its next response; a big one is given back. */
        if (bcap > 64 * 1024) {
                free(body);
                body = NULL;
                bcap = 0;
        }
        *r = (drover_response){ .status = 200, .fd = -EBADF, .headers = headers, .headers_cap = hcap,
                                .body = body, .body_cap = bcap };
        if (headers)
                headers[0] = '\0';
}

void response_free(drover_response *r)
{
        response_release(r);
        free(r->headers);
        free(r->body);
        response_init(r);
}

uint64_t response_body_length(const drover_response *r)
{
        return r->fd >= 0 ? r->fd_length : r->ext ? r->ext_len : r->body_len;
}

const char *response_default_content_type(const drover_response *r)
{
        return !r->has_content_type && response_body_length(r) > 0 ? "application/octet-stream" : NULL;
}

int drover_response_set_status(drover_response *r, unsigned status)
{
        if (status < 200 || status > 599)
                return -EINVAL;
        r->status = status;
        return 0;
}

static int grow(char **buf, size_t *cap, size_t need)
{
        if (need <= *cap)
                return 0;
        size_t n = MAX(*cap * 2, MAX(need, (size_t) 256));
        char *p = realloc(*buf, n);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = n;
        return 0;
}

int drover_response_add_header(drover_response *r, const char *name, const char *value)
{
        static const char *const reserved[] = { "content-length", "transfer-encoding", "connection", "date",
                                                 "server", "keep-alive", "status" };

        if (!name || !value || http_check_token(name) < 0 || http_check_field_value(value) < 0)
                return -EINVAL;
        size_t nl = strlen(name), vl = strlen(value), need = r->headers_len + nl + 2 + vl + 2 + 1;
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (nl == strlen(reserved[i]) && strcasecmp(name, reserved[i]) == 0)
                        return -EPERM;

        if (need > RESPONSE_HEADERS_MAX)
                return -E2BIG;
        int k = grow(&r->headers, &r->headers_cap, need);
        if (k < 0)
                return k;
        char *p = r->headers + r->headers_len;
        memcpy(p, name, nl);
        memcpy(p + nl, ": ", 2);
        memcpy(p + nl + 2, value, vl);
        memcpy(p + nl + 2 + vl, "\r\n", 3);
        r->headers_len = need - 1;
        if (nl == STRLEN("content-type") && strcasecmp(name, "content-type") == 0)
                r->has_content_type = true;
        return 0;
}

int response_add_checked_headers(drover_response *r, const char *lines, size_t len, bool content_type)
{
        size_t need = r->headers_len + len + 1;
        if (need > RESPONSE_HEADERS_MAX)
                return -E2BIG;
        int k = grow(&r->headers, &r->headers_cap, need);
        if (k < 0)
                return k;
        memcpy(r->headers + r->headers_len, lines, len);
        r->headers_len += len;
        r->headers[r->headers_len] = '\0';
        r->has_content_type = r->has_content_type || content_type;
        return 0;
}

int drover_response_write(drover_response *r, const void *data, size_t len)
{
        if (r->fd >= 0 || r->ext)
                return -EBUSY;
        if (len == 0)
                return 0;
        if (!data || r->body_len + len < len)
                return -EINVAL;
        int k = grow(&r->body, &r->body_cap, r->body_len + len);
        if (k < 0)
                return k;
        memcpy(r->body + r->body_len, data, len);
        r->body_len += len;
        return 0;
}

int drover_response_send_fd(drover_response *r, int fd, uint64_t offset, uint64_t length)
{
        if (fd < 0)
                return -EBADF;
        if (r->body_len > 0 || r->fd >= 0 || r->ext) {
                safe_close(fd);
                return -EBUSY;
        }
        r->fd = fd;
        r->fd_offset = offset;
        r->fd_length = length;
        return 0;
}
