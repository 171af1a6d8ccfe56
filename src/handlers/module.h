/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "common/options.h"
#include "drover/handler.h"

/* Handler modules (include/drover/handler.h): loaded with dlopen() in each worker after exec, routed by the
 * longest matching path prefix. */

typedef struct Module {
        const char *prefix; /* "" or "/app" (from the HandlerSpec) */
        size_t prefix_len;
        const char *path;
        void *dl;
        const drover_handler *handler;
        void *state;
        bool initialized;
} Module;

/* dlopen()s spec->path and checks the descriptor: symbol, ABI version, handle(). On failure returns -errno
 * and writes the reason (dlerror()'s, or which check failed) to err. */
int module_open(const HandlerSpec *spec, Module *ret, char *err, size_t errlen);
/* Calls the module's init(); its negative return is passed on. */
int module_init(Module *m);
/* fini() if initialized, dlclose(); accepts a zeroed Module. */
void module_close(Module *m);

/* The module serving path: the longest prefix that equals the path or is followed in it by '/'. NULL: none
 * (the static handler serves it). Pure. */
Module *modules_route(Module *m, size_t n, const char *path, size_t path_len);
