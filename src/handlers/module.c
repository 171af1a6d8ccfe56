/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "handlers/module.h"

int module_open(const HandlerSpec *spec, Module *ret, char *err, size_t errlen)
{
        void *dl;
        const drover_handler *h;

        /* RTLD_NOW: an unresolved symbol is a load error now, not a crash at the first request. RTLD_LOCAL:
         * modules cannot see each other's symbols. */
        dl = dlopen(spec->path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                const char *e = dlerror();
                snprintf(err, errlen, "%s", e ? e : "dlopen failed");
                return -ENOEXEC;
        }
        h = dlsym(dl, DROVER_HANDLER_SYMBOL);
        if (!h) {
                snprintf(err, errlen, "no '%s' symbol: not a drover handler module", DROVER_HANDLER_SYMBOL);
                dlclose(dl);
                return -ENOEXEC;
        }
        if (h->abi_version != DROVER_HANDLER_ABI_VERSION) {
                snprintf(err, errlen, "built for handler ABI version %u, this drover has version %u",
                         (unsigned) h->abi_version, (unsigned) DROVER_HANDLER_ABI_VERSION);
                dlclose(dl);
                return -EPROTO;
        }
        if (!h->handle) {
                snprintf(err, errlen, "its descriptor has no handle() function");
                dlclose(dl);
                return -EINVAL;
        }
        *ret = (Module){ .prefix = spec->prefix, .prefix_len = strlen(spec->prefix), .path = spec->path, .dl = dl,
                         .handler = h };
        return 0;
}

int module_init(Module *m)
{
        if (m->handler->init) {
                int r = m->handler->init(&m->state, m->prefix);
                if (r < 0)
                        return r;
        }
        m->initialized = true;
        return 0;
}

void module_close(Module *m)
{
        if (!m->dl)
                return;
        if (m->initialized && m->handler->fini)
                m->handler->fini(m->state);
        dlclose(m->dl);
        *m = (Module){};
}

Module *modules_route(Module *m, size_t n, const char *path, size_t path_len)
{
        Module *best = NULL;

        for (size_t i = 0; i < n; i++) {
                size_t l = m[i].prefix_len;
                if (l > path_len || memcmp(m[i].prefix, path, l) != 0)
                        continue;
                if (l < path_len && path[l] != '/')
                        continue; /* "/app" serves "/app" and "/app/x", not "/apple" */
                if (!best || l > best->prefix_len)
                        best = &m[i];
        }
        return best;
}
