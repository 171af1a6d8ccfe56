/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "handlers/mime.h"
#include "handlers/request.h"
#include "proto/http.h"

/* The static file handler: serves a document root. Every path is resolved beneath the root with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so neither "..", nor an absolute symlink, nor a symlink
 * leading out of the root can reach anything outside it.
 *
 * Two steps: static_handler_resolve() opens the file and describes it from fstat() of that very fd;
 * static_decide() then applies the request's conditional and range fields to that description (RFC 9110
 * sections 13 and 14) and says what to send. The second step is pure. */

typedef struct StaticCacheEntry StaticCacheEntry;

/* '"' + three 64-bit numbers in hex, two '-', '"', NUL */
#define STATIC_ETAG_MAX 64

/* The open-file cache (static_handler_open()): at most this many files, each opened at most once per
 * validity window; the content of files up to STATIC_CACHE_CONTENT_MAX bytes is kept in memory, within
 * STATIC_CACHE_CONTENT_BUDGET bytes per worker. */
#define STATIC_CACHE_ENTRIES 64U
#define STATIC_CACHE_BUCKETS 128U
#define STATIC_CACHE_CONTENT_MAX 16384U
#define STATIC_CACHE_CONTENT_BUDGET (256U * 1024U)

typedef struct StaticHandler {
        int root_fd;
        MimeTable mime;

        uint64_t cache_valid_ms; /* 0: no cache, every request opens its file */
        StaticCacheEntry *buckets[STATIC_CACHE_BUCKETS];
        StaticCacheEntry *lru_head, *lru_tail; /* most recently used first */
        unsigned n_entries;
        size_t content_bytes;
} StaticHandler;

/* A formatted response head kept with a cache entry (see StaticResult.head_cache). */
typedef struct StaticHeadCache {
        char *head; /* NULL: none yet */
        size_t len;
        time_t date; /* the second of the Date in it */
} StaticHeadCache;

typedef struct StaticResult {
        unsigned status;          /* 200, 301, 403, 404, 500 */
        int fd;                   /* the open file for 200, else -EBADF; the caller owns it unless entry */
        uint64_t size;
        time_t mtime;
        long mtime_nsec;          /* with mtime, size and ino: the ETag */
        uint64_t ino;
        uint64_t dev;             /* with ino, size, mtime and ctime: the file's identity for the cache */
        time_t ctime;
        long ctime_nsec;
        const char *content_type; /* for 200 */
        char etag[STATIC_ETAG_MAX]; /* for 200: the entity-tag, or "" to have static_decide() format it */

        /* From static_handler_open()'s cache: the entry, pinned until static_result_release(); fd is the
         * entry's. Its content (NULL unless the whole file is in memory, size bytes) and its preformatted
         * Last-Modified (of an mtime not in the future, else NULL) stay valid as long as the pin. */
        StaticCacheEntry *entry;
        const char *content;
        const char *last_modified;
        /* The header lines of a plain 200 of the whole file (Content-Type, Last-Modified, ETag,
         * Accept-Ranges), checked when the entry was made; NULL when the entry has none. */
        const char *headers_200;
        size_t headers_200_len;
        /* The entry's slot for the whole response head that such a 200 gets, kept by its user (the worker,
         * conn.c): the static handler only frees it with the entry. NULL without an entry. */
        StaticHeadCache *head_cache;

        /* Last, and nothing after it: a cache hit copies the result up to here (result_from_entry()), since a
         * cached file is a 200 and has no location - 512 bytes fewer to read and write on every hit. */
        char location[512]; /* for 301: the path with a trailing slash */
} StaticResult;

/* The fallback of the openat2() resolution (exposed for tests): component by component, O_NOFOLLOW, no "..". */
int static_open_beneath_walk(int dirfd, const char *path, int flags);

int static_handler_init(StaticHandler *h, const char *root, const char *mime_types_path);
void static_handler_done(StaticHandler *h);

/* Resolves the decoded request path (starting with '/') and opens what it names. Never fails: errors
 * become statuses in the result. */
void static_handler_resolve(const StaticHandler *h, const char *path, size_t path_len, StaticResult *ret);

/* static_handler_resolve() through the open-file cache: a file found (200) within the last cache_valid_ms
 * (by the monotonic now_ms) is described and served as it was then, without opening it again; after that
 * it is resolved again, and kept only if it is still the same file (device, inode, size, mtime and ctime),
 * else replaced. Only 200s are cached: whatever is served was, within the window, what an
 * openat2(RESOLVE_BENEATH) of the path opened. Release the result with static_result_release(). */
void static_handler_open(StaticHandler *h, const char *path, size_t path_len, uint64_t now_ms,
                         StaticResult *ret);
/* The cache's pure parts (exposed for tests): the key's hash, whether a re-resolved file is the cached one,
 * and whether an entry checked at checked_ms may still be served without a check at now_ms. */
uint64_t static_cache_hash(const char *path, size_t len);
bool static_cache_same_file(const StaticResult *a, const StaticResult *b);
bool static_cache_fresh(uint64_t checked_ms, uint64_t now_ms, uint64_t valid_ms);
/* Closes the result's fd if it owns it and unpins its cache entry. Idempotent. */
void static_result_release(StaticResult *r);
/* Drops every cache entry not pinned by a response in flight (a worker going idle gives its memory back). */
void static_cache_flush(StaticHandler *h);
/* Unpins an entry that a response borrowed from a result (the pin moves with it, see conn.c). */
void static_cache_entry_unref(StaticCacheEntry *e);

/* The request's fields that static_decide() reads, as sent (NULL: absent). Only the first field line of
 * each name counts. */
typedef struct StaticConditions {
        bool head; /* HEAD, else GET: Range applies to GET only (RFC 9110 14.2) */
        const char *if_match;
        size_t if_match_len;
        const char *if_unmodified_since;
        size_t if_unmodified_since_len;
        const char *if_none_match;
        size_t if_none_match_len;
        const char *if_modified_since;
        size_t if_modified_since_len;
        const char *range;
        size_t range_len;
        const char *if_range;
        size_t if_range_len;
} StaticConditions;

/* "bytes " + three 20-digit numbers, '-', '/', NUL */
#define STATIC_CONTENT_RANGE_MAX 96

typedef struct StaticDecision {
        unsigned status;       /* 200, 206, 304, 412 or 416 */
        uint64_t offset;       /* the body: the file's bytes [offset, offset + length), and Content-Length */
        uint64_t length;       /* ... 0 for 304, 412 and 416, which send none of the file */
        time_t last_modified;  /* for Last-Modified: the mtime, but never later than now (RFC 9110 8.8.2.1) */
        bool accept_ranges;    /* "Accept-Ranges: bytes": on 200 */
        char etag[STATIC_ETAG_MAX];                   /* always set */
        char content_range[STATIC_CONTENT_RANGE_MAX]; /* for 206 and 416, else "" */
} StaticDecision;

/* Fills the conditions from a request (HTTP or SCGI: the headers of the request model). */
void static_conditions_from_request(const drover_request *req, StaticConditions *ret);

/* What to answer to a GET or HEAD of a file that static_handler_resolve() found (status 200): preconditions
 * in RFC 9110 13.2.2's order (If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since), then If-Range
 * and Range. now: the Date of the response. Pure. */
void static_decide(const StaticConditions *c, const StaticResult *file, time_t now, StaticDecision *ret);

/* The strong entity-tag of a file, quotes included: "INO-SIZE-MTIME" in hex, MTIME in nanoseconds. A new
 * inode (a file replaced by rename, as editors and rsync do), another size or another mtime give another tag. */
void static_format_etag(uint64_t ino, uint64_t size, time_t mtime, long mtime_nsec,
                        char ret[static STATIC_ETAG_MAX]);

/* Whether the If-Match / If-None-Match field value (a list of entity-tags, or "*") matches etag, with
 * RFC 9110 8.8.3.2's weak or strong comparison. A list that turns out malformed matches nothing from there on. */
bool static_etag_list_match(const char *list, size_t len, const char *etag, bool weak);

typedef enum StaticRange {
        STATIC_RANGE_IGNORE,        /* not a single byte range we serve: send the whole file (200) */
        STATIC_RANGE_SATISFIABLE,   /* send *ret_offset, *ret_length (206) */
        STATIC_RANGE_UNSATISFIABLE, /* 416 */
} StaticRange;

/* Classifies a Range field value for a file of size bytes (RFC 9110 14.1, 14.2). */
StaticRange static_parse_range(const char *value, size_t len, uint64_t size, uint64_t *ret_offset,
                               uint64_t *ret_length);
