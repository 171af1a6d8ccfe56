/* SPDX-License-Identifier: MIT */
/* echo: reflects the request back as JSON — method, path, query, prefix, protocol, remote address, headers
 * (in order, as a list of [name, value] pairs) and the body. Useful to see what a handler receives, over HTTP
 * and over SCGI alike.
 *
 *     cc -shared -fPIC $(pkg-config --cflags drover-handler) -o echo.so echo.c
 *     drover --handler=/echo=./echo.so
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <drover/handler.h>

typedef struct Buf {
        char *p;
        size_t len, cap;
        int error;
} Buf;

static void put(Buf *b, const char *s, size_t n)
{
        if (b->error)
                return;
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 1024;
                while (cap < b->len + n)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->error = -ENOMEM;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
}

static void puts_(Buf *b, const char *s)
{
        put(b, s, strlen(s));
}

/* A JSON string. Bytes that are not printable ASCII are escaped as \u00XX, so binary bodies survive (as
 * Latin-1 code points) and the output is always valid JSON. */
static void put_json(Buf *b, const char *s, size_t n)
{
        char esc[8];

        put(b, "\"", 1);
        for (size_t i = 0; s && i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        put(b, esc, 2);
                } else if (c >= 0x20 && c < 0x7f)
                        put(b, (const char *) &s[i], 1);
                else {
                        snprintf(esc, sizeof esc, "\\u%04x", c);
                        put(b, esc, 6);
                }
        }
        put(b, "\"", 1);
}

static int echo_handle(void *state, const drover_request *req, drover_response *resp)
{
        Buf b = {};
        const char *s;
        size_t n, count = drover_request_header_count(req);
        drover_header h;
        int r;

        puts_(&b, "{\"method\": ");
        s = drover_request_method(req);
        put_json(&b, s, strlen(s));
        puts_(&b, ", \"path\": ");
        s = drover_request_path(req, &n);
        put_json(&b, s, n);
        puts_(&b, ", \"query\": ");
        s = drover_request_query(req, &n);
        if (s)
                put_json(&b, s, n);
        else
                puts_(&b, "null");
        puts_(&b, ", \"prefix\": ");
        s = drover_request_prefix(req, &n);
        put_json(&b, s, n);
        puts_(&b, ", \"protocol\": ");
        s = drover_request_protocol(req);
        put_json(&b, s, strlen(s));
        puts_(&b, ", \"remote_address\": ");
        s = drover_request_remote_address(req);
        put_json(&b, s, strlen(s));
        puts_(&b, ", \"headers\": [");
        for (size_t i = 0; i < count && drover_request_header_at(req, i, &h) >= 0; i++) {
                puts_(&b, i ? ", [" : "[");
                put_json(&b, h.name, h.name_len);
                puts_(&b, ", ");
                put_json(&b, h.value, h.value_len);
                puts_(&b, "]");
        }
        puts_(&b, "], \"body\": ");
        s = drover_request_body(req, &n);
        put_json(&b, s, n);
        puts_(&b, "}\n");

        r = b.error;
        if (r >= 0)
                r = drover_response_add_header(resp, "Content-Type", "application/json");
        if (r >= 0)
                r = drover_response_write(resp, b.p, b.len);
        free(b.p);
        return r;
}

const drover_handler drover_module = {
        .abi_version = DROVER_HANDLER_ABI_VERSION,
        .name = "echo",
        .handle = echo_handle,
};
