/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "handlers/static.h"
#include "proto/http.h"

#define INDEX_FILE "index.html"

static int openat2_beneath(int dirfd, const char *path)
{
        struct open_how how = {
                /* O_NONBLOCK: opening a FIFO someone left in the root must not block the worker. */
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int) syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        return fd < 0 ? negative_errno() : fd;
}

int static_handler_init(StaticHandler *h, const char *root, const char *mime_types_path)
{
        int fd, r;

        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *h = (StaticHandler){ .root_fd = fd };

        r = mime_table_load(&h->mime, mime_types_path);
        if (r < 0)
                log_warning_errno(r, "cannot read %s, serving every file as " MIME_DEFAULT_TYPE ": %m",
                                  mime_types_path);
        return 0;
}

void static_handler_done(StaticHandler *h)
{
        h->root_fd = safe_close(h->root_fd);
        mime_table_done(&h->mime);
}

/* The decoded path, percent-encoded again for a Location header, plus the trailing slash. Everything but
 * unreserved characters, sub-delims and '/', ':' and '@' is encoded, so no CR, LF or space reaches the header. */
static int location_encode(const char *path, size_t len, char *out, size_t size)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) path[i];
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (c && strchr("-._~!$&'()*+,;=:@/", c))) {
                        if (o + 1 >= size)
                                return -ENAMETOOLONG;
                        out[o++] = (char) c;
                } else {
                        if (o + 3 >= size)
                                return -ENAMETOOLONG;
                        out[o++] = '%';
                        out[o++] = hex[c >> 4];
                        out[o++] = hex[c & 15];
                }
        }
        if (o + 2 > size)
                return -ENAMETOOLONG;
        out[o++] = '/';
        out[o] = '\0';
        return 0;
}

static unsigned status_from_errno(int r)
{
        switch (r) {
        case -ENOENT:
        case -ENOTDIR:
        case -ENAMETOOLONG:
                return 404;
        case -EXDEV:  /* would leave the root */
        case -ELOOP:  /* symlink loop, or a magic link */
        case -EACCES:
        case -EPERM:
        case -ENXIO:  /* a unix socket (or a device) in the root */
                return 403;
        default:
                return 500;
        }
}

void static_handler_resolve(const StaticHandler *h, const char *path, size_t path_len, StaticResult *ret)
{
        _cleanup_close_ int fd = -EBADF;
        const char *rel = path;
        const char *name = path;
        struct stat st;

        *ret = (StaticResult){ .fd = -EBADF };

        while (*rel == '/')
                rel++;
        fd = openat2_beneath(h->root_fd, *rel ? rel : ".");
        if (fd < 0) {
                ret->status = status_from_errno(fd);
                return;
        }
        if (fstat(fd, &st) < 0) {
                ret->status = 500;
                return;
        }

        if (S_ISDIR(st.st_mode)) {
                if (path_len == 0 || path[path_len - 1] != '/') {
                        ret->status = location_encode(path, path_len, ret->location, sizeof ret->location) < 0
                                ? 404 : 301;
                        return;
                }
                /* Resolved from the root, not from the directory: an index that is a symlink to elsewhere
                 * inside the root is fine; RESOLVE_BENEATH still keeps it inside. */
                char index_path[HTTP_URL_MAX + sizeof INDEX_FILE + 1];
                snprintf(index_path, sizeof index_path, "%s" INDEX_FILE, rel);
                int ifd = openat2_beneath(h->root_fd, index_path);
                if (ifd < 0) {
                        /* No index: no directory listings. */
                        ret->status = ifd == -ENOENT ? 403 : status_from_errno(ifd);
                        return;
                }
                safe_close(fd);
                fd = ifd;
                name = INDEX_FILE;
                if (fstat(fd, &st) < 0) {
                        ret->status = 500;
                        return;
                }
        }

        if (!S_ISREG(st.st_mode)) {
                ret->status = 403;
                return;
        }

        ret->status = 200;
        ret->size = (uint64_t) st.st_size;
        ret->mtime = st.st_mtim.tv_sec;
        ret->content_type = mime_table_lookup(&h->mime, name);
        ret->fd = TAKE_FD(fd);
}
