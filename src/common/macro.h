/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define STRLEN(s) (sizeof(s) - 1)

/* Take ownership of a value out of a _cleanup_ variable: the variable is reset so the cleanup does nothing. */
#define TAKE_GENERIC(var, type, nullvalue)                                                                      \
        ({                                                                                                      \
                type *_pvar_ = &(var);                                                                          \
                type _var_ = *_pvar_;                                                                           \
                *_pvar_ = (nullvalue);                                                                          \
                _var_;                                                                                          \
        })
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)
#define TAKE_PTR(p) TAKE_GENERIC(p, typeof(p), NULL)

/* Closes an fd if it is valid, preserving errno; returns -EBADF so callers can write fd = safe_close(fd). */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void freep(void *p)
{
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* A NULL-terminated array of strings, as sd_listen_fds_with_names() returns. */
static inline char **strv_free(char **l)
{
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
        return NULL;
}
static inline void strv_freep(char ***l)
{
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* snprintf() at buf + off, advancing off; the enclosing function returns -ENOBUFS when the text does not fit.
 * For building a header block or an argument list in a fixed buffer. */
#define APPENDF_OR_RETURN(buf, size, off, ...)                                                                  \
        do {                                                                                                    \
                int _n = snprintf((buf) + (off), (size) - (off), __VA_ARGS__);                                  \
                if (_n < 0 || (size_t) _n >= (size) - (off))                                                    \
                        return -ENOBUFS;                                                                        \
                (off) += (size_t) _n;                                                                           \
        } while (0)

/* Negative errno from a libc call that set errno; never returns 0 even if errno was not set. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))
