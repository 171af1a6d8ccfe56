/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "handlers/static.h"
#include "proto/http.h"

#define INDEX_FILE "index.html"

/* No O_NOFOLLOW: a symlink inside the root that names something else inside it is served (link.txt →
 * plain.txt), and RESOLVE_BENEATH already refuses every symlink that would leave the root, absolute ones
 * included. /proc's magic links (reachable only if the root contains a procfs) are refused twice over:
 * RESOLVE_NO_MAGICLINKS says ELOOP before RESOLVE_BENEATH would say EXDEV. Nor is there a check-then-open to
 * race: whatever is opened is described by fstat() of the opened fd, never by an earlier stat() of a path. */
/* Where openat2() is refused with ENOSYS — a seccomp filter that cannot look into its struct argument, as
 * systemd's RestrictSUIDSGID= (implied by DynamicUser=) installs — walk the path one component at a time
 * with O_NOFOLLOW instead. Stricter than RESOLVE_BENEATH (no symlink at all is followed, ".." is refused
 * outright), never less safe. */
int static_open_beneath_walk(int dirfd, const char *path, int flags)
{
        char buf[4096];
        int cur = dirfd, fd = -EBADF;
        char *save = NULL, *comp, *next;

        if (strlen(path) >= sizeof buf)
                return -ENAMETOOLONG;
        strcpy(buf, path);
        comp = strtok_r(buf, "/", &save);
        if (!comp)
                return -ENOENT;
        for (; comp; comp = next) {
                next = strtok_r(NULL, "/", &save);
                if (streq(comp, ".")) {
                        if (next)
                                continue;
                        fd = openat(cur, ".", flags);
                } else if (streq(comp, ".."))
                        fd = -1, errno = EXDEV;
                else
                        fd = openat(cur, comp, next ? O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                                                    : flags | O_NOFOLLOW);
                if (cur != dirfd)
                        safe_close(cur);
                if (fd < 0)
                        return negative_errno();
                cur = fd;
        }
        return cur == dirfd ? -ENOENT : cur;
}

static int openat2_beneath(int dirfd, const char *path)
{
        struct open_how how = {
                /* O_NONBLOCK: opening a FIFO someone left in the root must not block the worker; the fd is
                 * refused after fstat() anyway, since only regular files are served. */
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int) syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd < 0 && errno == ENOSYS)
                return static_open_beneath_walk(dirfd, path, (int) how.flags);
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
        static_cache_flush(h);
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
                /* Resolved from the root, not from the directory's fd: an index that is a symlink to
                 * elsewhere inside the root is fine, and beneath the directory "../x" would be refused.
                 * RESOLVE_BENEATH still keeps it inside the root. Should the directory be renamed in between,
                 * this opens whatever the path names now, also beneath the root, and describes what it
                 * opened: fstat() of the index's own fd. */
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
        ret->mtime_nsec = st.st_mtim.tv_nsec;
        ret->ino = (uint64_t) st.st_ino;
        ret->dev = (uint64_t) st.st_dev;
        ret->ctime = st.st_ctim.tv_sec;
        ret->ctime_nsec = st.st_ctim.tv_nsec;
        ret->content_type = mime_table_lookup(&h->mime, name);
        static_format_etag(ret->ino, ret->size, ret->mtime, ret->mtime_nsec, ret->etag);
        ret->fd = TAKE_FD(fd);
}

/* ---- the open-file cache ---------------------------------------------------------------------------------
 *
 * Per worker, single-threaded. An entry is keyed by the decoded request path and holds what
 * static_handler_resolve() found for it: the open fd, its description, and for a small file its whole
 * content, read once. Requests within cache_valid_ms of the entry's last check are answered from it without
 * a syscall; the first one after that resolves the path again (the same openat2(RESOLVE_BENEATH)) and keeps
 * the entry only if the same file, unchanged, is what the path names now.
 *
 * Lifetime: an entry is linked (reachable from its bucket and the LRU list) or not, and pinned by every
 * response in flight that borrowed its fd or content (refs). Eviction and replacement unlink it; the last
 * unpin of an unlinked entry frees it, so a response never loses its body mid-write. */

struct StaticCacheEntry {
        StaticCacheEntry *bucket_next;
        StaticCacheEntry *lru_prev, *lru_next;
        StaticHandler *handler; /* NULL once unlinked */
        unsigned refs;          /* pins by results and responses in flight */
        uint64_t checked_ms;
        uint64_t hash;
        StaticResult file;      /* status 200; file.fd is the entry's */
        char *content;          /* file.size bytes, or NULL */
        char last_modified[30]; /* "" for an mtime in the future when the entry was made */
        char *headers_200;
        size_t headers_200_len;
        StaticHeadCache head_cache;
        size_t path_len;
        char path[]; /* NUL-terminated */
};

uint64_t static_cache_hash(const char *path, size_t len)
{
        uint64_t x = UINT64_C(14695981039346656037); /* FNV-1a */
        for (size_t i = 0; i < len; i++)
                x = (x ^ (unsigned char) path[i]) * UINT64_C(1099511628211);
        return x;
}

bool static_cache_same_file(const StaticResult *a, const StaticResult *b)
{
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime == b->mtime &&
               a->mtime_nsec == b->mtime_nsec && a->ctime == b->ctime && a->ctime_nsec == b->ctime_nsec;
}

bool static_cache_fresh(uint64_t checked_ms, uint64_t now_ms, uint64_t valid_ms)
{
        /* now_ms < checked_ms cannot happen with a monotonic clock; treat it as stale rather than trust it.
         */
        return valid_ms > 0 && now_ms >= checked_ms && now_ms - checked_ms < valid_ms;
}

static void entry_free(StaticCacheEntry *e)
{
        safe_close(e->file.fd);
        free(e->content);
        free(e->headers_200);
        free(e->head_cache.head);
        free(e);
}

static void lru_remove(StaticHandler *h, StaticCacheEntry *e)
{
        if (e->lru_prev)
                e->lru_prev->lru_next = e->lru_next;
        else
                h->lru_head = e->lru_next;
        if (e->lru_next)
                e->lru_next->lru_prev = e->lru_prev;
        else
                h->lru_tail = e->lru_prev;
        e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(StaticHandler *h, StaticCacheEntry *e)
{
        e->lru_prev = NULL;
        e->lru_next = h->lru_head;
        if (h->lru_head)
                h->lru_head->lru_prev = e;
        h->lru_head = e;
        if (!h->lru_tail)
                h->lru_tail = e;
}

static void entry_unlink(StaticCacheEntry *e)
{
        StaticHandler *h = e->handler;
        StaticCacheEntry **pp;

        if (!h)
                return;
        for (pp = &h->buckets[e->hash % STATIC_CACHE_BUCKETS]; *pp != e; pp = &(*pp)->bucket_next)
                ;
        *pp = e->bucket_next;
        lru_remove(h, e);
        h->n_entries--;
        if (e->content)
                h->content_bytes -= e->file.size;
        e->handler = NULL;
        e->bucket_next = NULL;
        if (e->refs == 0)
                entry_free(e);
}

void static_cache_entry_unref(StaticCacheEntry *e)
{
        if (--e->refs == 0 && !e->handler)
                entry_free(e);
}

static void lru_to_front(StaticHandler *h, StaticCacheEntry *e)
{
        if (h->lru_head == e)
                return;
        lru_remove(h, e);
        lru_push_front(h, e);
}

void static_cache_flush(StaticHandler *h)
{
        while (h->lru_head)
                entry_unlink(h->lru_head);
}

/* The whole file, if it is small, fits the budget and reads back as the size fstat() gave. */
static char *entry_read_content(StaticHandler *h, const StaticResult *f)
{
        if (f->size == 0 || f->size > STATIC_CACHE_CONTENT_MAX)
                return NULL;
        /* Make room among the least recently used contents first. */
        for (StaticCacheEntry *v = h->lru_tail;
             v && h->content_bytes + f->size > STATIC_CACHE_CONTENT_BUDGET;) {
                StaticCacheEntry *prev = v->lru_prev;
                if (v->content)
                        entry_unlink(v);
                v = prev;
        }
        if (h->content_bytes + f->size > STATIC_CACHE_CONTENT_BUDGET)
                return NULL;
        char *buf = malloc(f->size);
        if (!buf)
                return NULL;
        size_t got = 0;
        while (got < f->size) {
                ssize_t n = pread(f->fd, buf + got, f->size - got, (off_t) got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
        }
        /* A file written to while we read it: its bytes may not be those of the size and mtime we describe.
         * Serve it from the fd (as without a cache) until it settles. */
        struct stat st;
        if (got != f->size || fstat(f->fd, &st) < 0 || (uint64_t) st.st_size != f->size ||
            st.st_mtim.tv_sec != f->mtime || st.st_mtim.tv_nsec != f->mtime_nsec) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* The header lines of a plain 200, from values that are checked here once rather than per response. */
static void entry_format_headers(StaticCacheEntry *e)
{
        char buf[1024];
        int n;

        if (!e->last_modified[0] || http_check_field_value(e->file.content_type) < 0)
                return;
        n = snprintf(buf, sizeof buf,
                     "Content-Type: %s\r\nLast-Modified: %s\r\nETag: %s\r\nAccept-Ranges: bytes\r\n",
                     e->file.content_type, e->last_modified, e->file.etag);
        if (n < 0 || (size_t) n >= sizeof buf)
                return;
        e->headers_200 = strdup(buf);
        if (e->headers_200)
                e->headers_200_len = (size_t) n;
}

static StaticCacheEntry *entry_new(StaticHandler *h, const char *path, size_t path_len, uint64_t hash,
                                   StaticResult *file, uint64_t now_ms)
{
        StaticCacheEntry *e;
        time_t now = time(NULL);

        while (h->n_entries >= STATIC_CACHE_ENTRIES && h->lru_tail)
                entry_unlink(h->lru_tail);
        e = calloc(1, sizeof *e + path_len + 1);
        if (!e)
                return NULL;
        memcpy(e->path, path, path_len);
        e->path_len = path_len;
        e->hash = hash;
        e->checked_ms = now_ms;
        e->file = *file;
        file->fd = -EBADF; /* the entry's now */
        e->content = entry_read_content(h, &e->file);
        if (e->file.mtime <= now)
                http_format_date(e->file.mtime, e->last_modified);
        entry_format_headers(e);

        e->handler = h;
        e->bucket_next = h->buckets[hash % STATIC_CACHE_BUCKETS];
        h->buckets[hash % STATIC_CACHE_BUCKETS] = e;
        lru_push_front(h, e);
        h->n_entries++;
        if (e->content)
                h->content_bytes += e->file.size;
        return e;
}

static void result_from_entry(StaticCacheEntry *e, StaticResult *ret)
{
        memcpy(ret, &e->file, offsetof(StaticResult, location));
        ret->location[0] = '\0';
        e->refs++;
        ret->entry = e;
        ret->content = e->content;
        ret->last_modified = e->last_modified[0] ? e->last_modified : NULL;
        ret->headers_200 = e->headers_200;
        ret->headers_200_len = e->headers_200_len;
        ret->head_cache = &e->head_cache;
}

void static_handler_open(StaticHandler *h, const char *path, size_t path_len, uint64_t now_ms,
                         StaticResult *ret)
{
        StaticCacheEntry *e = NULL;
        uint64_t hash;

        if (h->cache_valid_ms == 0)
                return static_handler_resolve(h, path, path_len, ret);

        hash = static_cache_hash(path, path_len);
        for (e = h->buckets[hash % STATIC_CACHE_BUCKETS]; e; e = e->bucket_next)
                if (e->hash == hash && e->path_len == path_len && memcmp(e->path, path, path_len) == 0)
                        break;
        if (e && static_cache_fresh(e->checked_ms, now_ms, h->cache_valid_ms)) {
                lru_to_front(h, e);
                return result_from_entry(e, ret);
        }

        static_handler_resolve(h, path, path_len, ret);
        if (e && ret->status == 200 && static_cache_same_file(&e->file, ret)) {
                /* Still the same file: keep what was read and formatted, and the older fd (equivalent). */
                safe_close(ret->fd);
                e->checked_ms = now_ms;
                lru_to_front(h, e);
                return result_from_entry(e, ret);
        }
        if (e)
                entry_unlink(e); /* changed, gone or now refused: never served from the cache again */
        if (ret->status != 200)
                return;
        e = entry_new(h, path, path_len, hash, ret, now_ms);
        if (e)
                result_from_entry(e, ret);
}

void static_result_release(StaticResult *r)
{
        if (r->entry) {
                static_cache_entry_unref(r->entry);
                r->entry = NULL;
                r->fd = -EBADF;
        } else
                r->fd = safe_close(r->fd);
        r->content = r->last_modified = r->headers_200 = NULL;
        r->head_cache = NULL;
}

/* ---- conditional and range requests (RFC 9110 13, 14) --------------------------------------------------- */

void static_conditions_from_request(const drover_request *req, StaticConditions *ret)
{
        /* One pass over the fields rather than a lookup per condition: this runs for every static request.
         * Names compare case-insensitively, by length first; the first field of a name counts, as a lookup
         * by name would have found it. */
        static const struct {
                const char *name;
                size_t len;
        } wanted[] = {
                { "If-Match", 8 },       { "If-Unmodified-Since", 19 },
                { "If-None-Match", 13 }, { "If-Modified-Since", 17 },
                { "Range", 5 },          { "If-Range", 8 },
        };
        const char **values[ELEMENTSOF(wanted)] = { &ret->if_match,      &ret->if_unmodified_since,
                                                    &ret->if_none_match, &ret->if_modified_since,
                                                    &ret->range,         &ret->if_range };
        size_t *lens[ELEMENTSOF(wanted)] = { &ret->if_match_len,      &ret->if_unmodified_since_len,
                                             &ret->if_none_match_len, &ret->if_modified_since_len,
                                             &ret->range_len,         &ret->if_range_len };
        unsigned found = 0;

        *ret = (StaticConditions){ .head = req->head };
        for (size_t i = 0; i < req->n_headers; i++) {
                const drover_header *h = &req->headers[i];

                /* Every name wanted is 5 to 19 bytes long and starts with 'I' or 'R': most fields (Host,
                 * User-Agent, Accept...) are passed over at once. */
                if (h->name_len < 5 || h->name_len > 19 ||
                    ((h->name[0] | 0x20) != 'i' && (h->name[0] | 0x20) != 'r'))
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(wanted); k++)
                        if (!(found & (1u << k)) && h->name_len == wanted[k].len &&
                            strncasecmp(h->name, wanted[k].name, h->name_len) == 0) {
                                found |= 1u << k;
                                *values[k] = h->value;
                                *lens[k] = h->value_len;
                                break;
                        }
        }
}

void static_format_etag(uint64_t ino, uint64_t size, time_t mtime, long mtime_nsec,
                        char ret[static STATIC_ETAG_MAX])
{
        /* Nanoseconds, so that a rewrite within the same second (same size, same inode: an in-place write)
         * still changes the tag, as far as the file system's timestamps resolve. Unsigned arithmetic: a
         * pre-1970 mtime wraps, which is still one value per mtime. */
        uint64_t ns = (uint64_t) mtime * UINT64_C(1000000000) + (uint64_t) mtime_nsec;
        (void) snprintf(ret, STATIC_ETAG_MAX, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", ino, size, ns);
}

static bool is_ows(char c)
{
        return c == ' ' || c == '\t';
}

/* Field values may carry optional whitespace at either end (RFC 9110 5.5). */
static void trim_ows(const char **s, size_t *len)
{
        while (*len > 0 && is_ows(**s)) {
                (*s)++;
                (*len)--;
        }
        while (*len > 0 && is_ows((*s)[*len - 1]))
                (*len)--;
}

static const char *skip_ows(const char *p, const char *end)
{
        while (p < end && is_ows(*p))
                p++;
        return p;
}

/* entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE at *p; the opaque tag, quotes included, in *ret_tag. */
static bool scan_entity_tag(const char **p, const char *end, bool *ret_weak, const char **ret_tag,
                            size_t *ret_tag_len)
{
        const char *q = *p, *tag;
        bool weak = false;

        if (end - q >= 2 && q[0] == 'W' && q[1] == '/') {
                weak = true;
                q += 2;
        }
        if (q >= end || *q != '"')
                return false;
        tag = q++;
        for (; q < end && *q != '"'; q++) {
                unsigned char ch = (unsigned char) *q;
                if (ch < 0x21 || ch == 0x7f) /* etagc = %x21 / %x23-7E / obs-text */
                        return false;
        }
        if (q >= end)
                return false;
        q++;

        *ret_weak = weak;
        *ret_tag = tag;
        *ret_tag_len = (size_t) (q - tag);
        *p = q;
        return true;
}

/* Our own etag is strong; weak comparison ignores the other side's W/ too (RFC 9110 8.8.3.2). */
static bool etag_equal(const char *tag, size_t tag_len, bool tag_weak, const char *etag, bool weak)
{
        return (weak || !tag_weak) && tag_len == strlen(etag) && memcmp(tag, etag, tag_len) == 0;
}

bool static_etag_list_match(const char *list, size_t len, const char *etag, bool weak)
{
        const char *p, *end;

        trim_ows(&list, &len);
        /* "*": any current representation, and there is one. */
        if (len == 1 && list[0] == '*')
                return true;

        p = list;
        end = list + len;
        for (;;) {
                const char *tag;
                size_t tag_len;
                bool tag_weak;

                /* Empty list elements are allowed (RFC 9110 5.6.1.2). */
                while (p < end && (is_ows(*p) || *p == ','))
                        p++;
                if (p == end)
                        return false;
                if (!scan_entity_tag(&p, end, &tag_weak, &tag, &tag_len))
                        return false;
                if (etag_equal(tag, tag_len, tag_weak, etag, weak))
                        return true;
                p = skip_ows(p, end);
                if (p < end && *p != ',')
                        return false;
        }
}

/* 1*DIGIT, saturating: a position beyond any file is still a position, and beyond the end. */
static bool scan_position(const char **p, const char *end, uint64_t *ret)
{
        const char *q = *p;
        uint64_t v = 0;

        for (; q < end && *q >= '0' && *q <= '9'; q++) {
                unsigned d = (unsigned) (*q - '0');
                v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        }
        if (q == *p)
                return false;
        *p = q;
        *ret = v;
        return true;
}

StaticRange static_parse_range(const char *value, size_t len, uint64_t size, uint64_t *ret_offset,
                               uint64_t *ret_length)
{
        uint64_t first = 0, last = 0;
        bool suffix = false, have_last = false;
        const char *p, *end;
        unsigned n = 0;

        trim_ows(&value, &len);
        /* Range unit names are case-insensitive (RFC 9110 14.1); other units are ignored (14.2). */
        if (len < STRLEN("bytes=") || strncasecmp(value, "bytes=", STRLEN("bytes=")) != 0)
                return STATIC_RANGE_IGNORE;

        p = value + STRLEN("bytes=");
        end = value + len;
        for (;;) {
                while (p < end && (is_ows(*p) || *p == ','))
                        p++;
                if (p == end)
                        break;
                /* Several ranges would need multipart/byteranges, which we do not send: the whole file is
                 * an allowed answer to any Range (RFC 9110 14.2), and no worse than a client deserves for
                 * asking for more than one piece. */
                if (++n > 1)
                        return STATIC_RANGE_IGNORE;
                if (*p == '-') {
                        p++;
                        suffix = true;
                        if (!scan_position(&p, end, &last))
                                return STATIC_RANGE_IGNORE;
                } else {
                        if (!scan_position(&p, end, &first) || p == end || *p != '-')
                                return STATIC_RANGE_IGNORE;
                        p++;
                        have_last = scan_position(&p, end, &last);
                        /* last-pos before first-pos: invalid (RFC 9110 14.1.1), and ignored. */
                        if (have_last && last < first)
                                return STATIC_RANGE_IGNORE;
                }
                p = skip_ows(p, end);
                if (p < end && *p != ',')
                        return STATIC_RANGE_IGNORE; /* other-range, or junk after a range */
        }
        if (n == 0)
                return STATIC_RANGE_IGNORE;

        /* RFC 9110 14.1.1: satisfiable with a first-pos below the length, or a non-zero suffix-length. */
        if (suffix) {
                if (last == 0)
                        return STATIC_RANGE_UNSATISFIABLE;
                /* A suffix of an empty file is satisfiable by that definition, but no Content-Range can
                 * describe zero bytes: the whole, empty, file it is. */
                if (size == 0)
                        return STATIC_RANGE_IGNORE;
                *ret_length = MIN(last, size);
                *ret_offset = size - *ret_length;
                return STATIC_RANGE_SATISFIABLE;
        }
        if (first >= size)
                return STATIC_RANGE_UNSATISFIABLE; /* also "bytes=0-" of an empty file */
        if (!have_last || last >= size)
                last = size - 1;
        *ret_offset = first;
        *ret_length = last - first + 1;
        return STATIC_RANGE_SATISFIABLE;
}

static bool field_date(const char *value, size_t len, time_t now, time_t *ret)
{
        trim_ows(&value, &len);
        return http_parse_date(value, len, now, ret) >= 0;
}

/* RFC 9110 13.1.5. */
static bool if_range_holds(const char *value, size_t len, const StaticDecision *d, time_t now)
{
        trim_ows(&value, &len);
        if (len > 0 && (value[0] == '"' || (len >= 2 && value[0] == 'W' && value[1] == '/'))) {
                const char *p = value, *tag;
                size_t tag_len;
                bool tag_weak;

                /* One entity-tag, compared strongly: a weak one never matches. */
                return scan_entity_tag(&p, value + len, &tag_weak, &tag, &tag_len) && p == value + len &&
                       etag_equal(tag, tag_len, tag_weak, d->etag, false);
        }

        /* A date: exactly the Last-Modified we would send, and only while that is a strong validator, i.e. the
         * file has not changed within the current second, when it could change again unseen (RFC 9110
         * 8.8.2.2). Otherwise the condition is false and the whole file goes out: always safe. */
        time_t t;
        return field_date(value, len, now, &t) && t == d->last_modified && d->last_modified < now;
}

static void decide_without_body(StaticDecision *d, unsigned status)
{
        d->status = status;
        d->offset = d->length = 0;
        d->accept_ranges = false;
}

void static_decide(const StaticConditions *c, const StaticResult *file, time_t now, StaticDecision *ret)
{
        time_t t;

        *ret = (StaticDecision){
                .status = 200,
                .length = file->size,
                .last_modified = MIN(file->mtime, now),
                .accept_ranges = true,
        };
        if (file->etag[0])
                memcpy(ret->etag, file->etag, sizeof ret->etag);
        else
                static_format_etag(file->ino, file->size, file->mtime, file->mtime_nsec, ret->etag);

        /* 13.2.2 step 1 and 2: If-Match (strong comparison), else If-Unmodified-Since. */
        if (c->if_match) {
                if (!static_etag_list_match(c->if_match, c->if_match_len, ret->etag, /* weak= */ false))
                        return decide_without_body(ret, 412);
        } else if (c->if_unmodified_since &&
                   field_date(c->if_unmodified_since, c->if_unmodified_since_len, now, &t) &&
                   ret->last_modified > t)
                return decide_without_body(ret, 412);

        /* Step 3 and 4: If-None-Match (weak comparison), else If-Modified-Since, which an invalid date turns
         * off rather than fails (13.1.3). */
        if (c->if_none_match) {
                if (static_etag_list_match(c->if_none_match, c->if_none_match_len, ret->etag, /* weak= */ true))
                        return decide_without_body(ret, 304);
        } else if (c->if_modified_since &&
                   field_date(c->if_modified_since, c->if_modified_since_len, now, &t) &&
                   ret->last_modified <= t)
                return decide_without_body(ret, 304);

        /* Step 5: Range, for GET only (14.2); If-Range is its precondition, and a false one means the whole
         * file. */
        if (!c->range || c->head)
                return;
        if (c->if_range && !if_range_holds(c->if_range, c->if_range_len, ret, now))
                return;

        uint64_t offset, length;
        switch (static_parse_range(c->range, c->range_len, file->size, &offset, &length)) {
        case STATIC_RANGE_IGNORE:
                return;
        case STATIC_RANGE_SATISFIABLE:
                ret->status = 206;
                ret->offset = offset;
                ret->length = length;
                ret->accept_ranges = false;
                (void) snprintf(ret->content_range, sizeof ret->content_range,
                                "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, offset, offset + length - 1, file->size);
                return;
        case STATIC_RANGE_UNSATISFIABLE:
                decide_without_body(ret, 416);
                (void) snprintf(ret->content_range, sizeof ret->content_range, "bytes */%" PRIu64,
                                file->size);
                return;
        }
}
