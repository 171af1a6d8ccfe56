/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/macro.h"
#include "handlers/static.h"

/*
 * The fixture, created once in a fresh temporary directory and removed afterwards:
 *
 *   TMP/mime.types
 *   TMP/outside.txt                 a file outside the root
 *   TMP/root/                       the document root
 *      index.html, file.txt (mtime 784111777), noext, image.PNG, page.HTM
 *      sub/index.html               sub/other.txt
 *      noindex/a.txt                a directory without index
 *      a b/index.html, q?x#y%/index.html, caf\xc3\xa9/index.html
 *      fifo                         a FIFO
 *      sock                         a unix socket
 *      abs-link -> /etc/passwd      absolute symlink leaving the root
 *      abs-inside -> TMP/root/file.txt    absolute symlink into the root
 *      escape -> ../outside.txt     relative symlink leaving the root
 *      escape-dir -> ..             relative symlink to the root's parent
 *      good-link -> file.txt        relative symlink inside
 *      link.html -> file.txt        the type follows the requested name
 *      sub-link -> sub              directory symlink inside
 *      loop -> loop                 a symlink loop
 *      dangling -> nonexistent
 *      dirindex/index.html/         an index that is a directory
 *      fifoindex/index.html         an index that is a FIFO
 *      escindex/index.html -> ../../outside.txt
 *      linkedindex/index.html -> ../sub/other.txt   an index symlink that stays in the root
 *      AAA…(254)/BBB…(254)/         the longest directory path whose Location fits
 *      AAA…(254)/CCC…(255)/         one byte longer
 *      169 spaces/, 170 spaces/     the same for characters that are percent-encoded
 */

#define FILE_TXT "hello world\n"
#define INDEX_HTML "<h1>home</h1>\n"
#define SUB_INDEX "<h1>sub</h1>\n"
#define OTHER_TXT "other\n"
#define FILE_MTIME 784111777

static char tmp[PATH_MAX];
static char root[PATH_MAX];
static char long_a[255], long_b[255], long_c[256];
static char spaces169[170], spaces170[171];
static StaticHandler handler;
static bool handler_ready;

/* snprintf() into an array, failing the test rather than truncating. */
#define xsprintf(buf, ...)                                                                                      \
        do {                                                                                                    \
                int _n = snprintf((buf), sizeof(buf), __VA_ARGS__);                                             \
                if (_n < 0 || (size_t) _n >= sizeof(buf))                                                       \
                        fail_msg("path too long");                                                              \
        } while (0)

static void xwrite_file(const char *dir, const char *name, const char *content)
{
        char path[PATH_MAX];
        xsprintf(path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                fail_msg("creating %s: %m", path);
        size_t len = strlen(content);
        if (write(fd, content, len) != (ssize_t) len)
                fail_msg("writing %s: %m", path);
        close(fd);
}

static void xmkdir(const char *dir, const char *name)
{
        char path[PATH_MAX];
        xsprintf(path, "%s/%s", dir, name);
        if (mkdir(path, 0755) < 0)
                fail_msg("mkdir %s: %m", path);
}

static void xsymlink(const char *target, const char *dir, const char *name)
{
        char path[PATH_MAX];
        xsprintf(path, "%s/%s", dir, name);
        if (symlink(target, path) < 0)
                fail_msg("symlink %s: %m", path);
}

static void xmkfifo(const char *dir, const char *name)
{
        char path[PATH_MAX];
        xsprintf(path, "%s/%s", dir, name);
        if (mkfifo(path, 0644) < 0)
                fail_msg("mkfifo %s: %m", path);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        if (remove(path) < 0)
                fprintf(stderr, "cannot remove %s: %m\n", path);
        return 0;
}

static void remove_tree(void)
{
        if (tmp[0])
                (void) nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        tmp[0] = '\0';
}

static int group_setup(void **state)
{
        const char *t = getenv("TMPDIR");
        char path[PATH_MAX];

        xsprintf(tmp, "%s/drover-test-static-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) {
                tmp[0] = '\0';
                return -1;
        }
        xsprintf(root, "%s/root", tmp);

        xwrite_file(tmp, "mime.types", "# test types\ntext/html html htm\ntext/plain txt\nimage/png png\n");
        xwrite_file(tmp, "outside.txt", "secret\n");

        xmkdir(tmp, "root");
        xwrite_file(root, "index.html", INDEX_HTML);
        xwrite_file(root, "file.txt", FILE_TXT);
        xwrite_file(root, "noext", "x");
        xwrite_file(root, "image.PNG", "png");
        xwrite_file(root, "page.HTM", "htm");
        xsprintf(path, "%s/file.txt", root);
        struct timespec times[2] = { { .tv_sec = FILE_MTIME }, { .tv_sec = FILE_MTIME } };
        if (utimensat(AT_FDCWD, path, times, 0) < 0)
                return -1;

        xmkdir(root, "sub");
        xsprintf(path, "%s/sub", root);
        xwrite_file(path, "index.html", SUB_INDEX);
        xwrite_file(path, "other.txt", OTHER_TXT);

        xmkdir(root, "noindex");
        xsprintf(path, "%s/noindex", root);
        xwrite_file(path, "a.txt", "a");

        static const char *const odd[] = { "a b", "q?x#y%", "caf\xc3\xa9" };
        for (size_t i = 0; i < ELEMENTSOF(odd); i++) {
                xmkdir(root, odd[i]);
                xsprintf(path, "%s/%s", root, odd[i]);
                xwrite_file(path, "index.html", "odd");
        }

        xmkfifo(root, "fifo");

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", root) >= sizeof sa.sun_path)
                return -1;
        int sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sfd < 0 || bind(sfd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -1;
        close(sfd);

        xsymlink("/etc/passwd", root, "abs-link");
        xsprintf(path, "%s/file.txt", root);
        xsymlink(path, root, "abs-inside");
        xsymlink("../outside.txt", root, "escape");
        xsymlink("..", root, "escape-dir");
        xsymlink("file.txt", root, "good-link");
        xsymlink("file.txt", root, "link.html");
        xsymlink("sub", root, "sub-link");
        xsymlink("loop", root, "loop");
        xsymlink("nonexistent", root, "dangling");

        xmkdir(root, "dirindex");
        xsprintf(path, "%s/dirindex", root);
        xmkdir(path, "index.html");

        xmkdir(root, "fifoindex");
        xsprintf(path, "%s/fifoindex", root);
        xmkfifo(path, "index.html");

        xmkdir(root, "escindex");
        xsprintf(path, "%s/escindex", root);
        xsymlink("../../outside.txt", path, "index.html");

        xmkdir(root, "linkedindex");
        xsprintf(path, "%s/linkedindex", root);
        xsymlink("../sub/other.txt", path, "index.html");

        memset(long_a, 'A', sizeof long_a - 1);
        memset(long_b, 'B', sizeof long_b - 1);
        memset(long_c, 'C', sizeof long_c - 1);
        xmkdir(root, long_a);
        xsprintf(path, "%s/%s", root, long_a);
        xmkdir(path, long_b);
        xmkdir(path, long_c);

        memset(spaces169, ' ', sizeof spaces169 - 1);
        memset(spaces170, ' ', sizeof spaces170 - 1);
        xmkdir(root, spaces169);
        xmkdir(root, spaces170);

        xsprintf(path, "%s/mime.types", tmp);
        if (static_handler_init(&handler, root, path) < 0)
                return -1;
        handler_ready = true;
        return 0;
}

static int group_teardown(void **state)
{
        if (handler_ready)
                static_handler_done(&handler);
        handler_ready = false;
        remove_tree();
        return 0;
}

/* ---- helpers ---------------------------------------------------------------------------------------- */

static StaticResult resolve(const char *path)
{
        StaticResult res;
        memset(&res, 0x5a, sizeof res);
        static_handler_resolve(&handler, path, strlen(path), &res);
        return res;
}

static void assert_status(const char *path, unsigned status)
{
        StaticResult res = resolve(path);
        if (res.status != status)
                fail_msg("\"%s\": status %u, expected %u", path, res.status, status);
        assert_int_equal(res.fd, -EBADF);
        if (res.fd >= 0)
                close(res.fd);
}

static void assert_served(const char *path, const char *content, const char *type)
{
        StaticResult res = resolve(path);
        char buf[256];

        if (res.status != 200)
                fail_msg("\"%s\": status %u, expected 200", path, res.status);
        assert_true(res.fd >= 0);
        assert_int_equal(res.size, strlen(content));
        assert_non_null(res.content_type);
        assert_string_equal(res.content_type, type);

        ssize_t n = pread(res.fd, buf, sizeof buf, 0);
        int flags = fcntl(res.fd, F_GETFD);
        int fl = fcntl(res.fd, F_GETFL);
        close(res.fd);
        assert_int_equal(n, strlen(content));
        assert_memory_equal(buf, content, (size_t) n);
        assert_true(flags & FD_CLOEXEC);
        assert_int_equal(fl & O_ACCMODE, O_RDONLY);
}

static void assert_redirect(const char *path, const char *location)
{
        StaticResult res = resolve(path);
        if (res.status != 301)
                fail_msg("\"%s\": status %u, expected 301", path, res.status);
        assert_int_equal(res.fd, -EBADF);
        assert_string_equal(res.location, location);
}

/* ---- tests ------------------------------------------------------------------------------------------ */

static void test_regular_file(void **state)
{
        StaticResult res = resolve("/file.txt");

        assert_int_equal(res.status, 200);
        assert_true(res.fd >= 0);
        assert_int_equal(res.size, STRLEN(FILE_TXT));
        assert_int_equal(res.mtime, FILE_MTIME);
        assert_string_equal(res.content_type, "text/plain");
        close(res.fd);

        assert_served("/file.txt", FILE_TXT, "text/plain");
        assert_served("/sub/other.txt", OTHER_TXT, "text/plain");
        /* Repeated slashes. */
        assert_served("//file.txt", FILE_TXT, "text/plain");
        assert_served("/sub//other.txt", OTHER_TXT, "text/plain");
        /* ".." that stays inside the root. */
        assert_served("/sub/../file.txt", FILE_TXT, "text/plain");
        assert_served("/./file.txt", FILE_TXT, "text/plain");
}

static void test_content_types(void **state)
{
        assert_served("/noext", "x", "application/octet-stream");
        assert_served("/image.PNG", "png", "image/png");
        assert_served("/page.HTM", "htm", "text/html");
        assert_served("/index.html", INDEX_HTML, "text/html");
}

static void test_directory_index(void **state)
{
        assert_served("/", INDEX_HTML, "text/html");
        assert_served("/sub/", SUB_INDEX, "text/html");
        assert_served("//sub//", SUB_INDEX, "text/html");
        assert_served("/sub/./", SUB_INDEX, "text/html");
        assert_served("/sub/../", INDEX_HTML, "text/html");
        assert_served("/sub/index.html", SUB_INDEX, "text/html");
}

static void test_directory_redirect(void **state)
{
        assert_redirect("/sub", "/sub/");
        assert_redirect("/noindex", "/noindex/");
        assert_redirect("/sub/..", "/sub/../");
        assert_redirect("//sub", "//sub/");
        /* The empty path names the root. */
        assert_redirect("", "/");
        /* A directory symlink is a directory. */
        assert_redirect("/sub-link", "/sub-link/");
}

static void test_redirect_location_encoding(void **state)
{
        assert_redirect("/a b", "/a%20b/");
        assert_redirect("/q?x#y%", "/q%3Fx%23y%25/");
        assert_redirect("/caf\xc3\xa9", "/caf%C3%A9/");

        /* The redirected-to paths serve the index. */
        assert_served("/a b/", "odd", "text/html");
        assert_served("/q?x#y%/", "odd", "text/html");
}

static void test_redirect_location_length(void **state)
{
        char path[600];
        char expected[600];

        /* 510 bytes of path: the Location, with its slash, is 511 bytes, which with the NUL fills 512. */
        xsprintf(path, "/%s/%s", long_a, long_b);
        assert_int_equal(strlen(path), 510);
        xsprintf(expected, "%s/", path);
        assert_redirect(path, expected);

        /* One byte more does not fit: no truncated Location. */
        xsprintf(path, "/%s/%s", long_a, long_c);
        assert_int_equal(strlen(path), 511);
        assert_status(path, 404);

        /* Characters that need encoding count three times: "/" and 169 spaces make a 509-byte Location. */
        xsprintf(path, "/%s", spaces169);
        StaticResult res = resolve(path);
        assert_int_equal(res.status, 301);
        assert_int_equal(strlen(res.location), 1 + 169 * 3 + 1);
        assert_memory_equal(res.location, "/%20%20%20", 10);
        assert_string_equal(res.location + 1 + 168 * 3, "%20/");

        /* With 170 spaces it would be 512 bytes, without room for the NUL. */
        xsprintf(path, "/%s", spaces170);
        assert_status(path, 404);
}

static void test_directory_without_index(void **state)
{
        assert_status("/noindex/", 403);
        /* Its files are still served. */
        assert_served("/noindex/a.txt", "a", "text/plain");
        /* An index that is not a regular file. */
        assert_status("/dirindex/", 403);
        assert_status("/fifoindex/", 403);
        /* An index symlink leaving the root. */
        assert_status("/escindex/", 403);
}

/* An index.html symlink that stays inside the root is served like any other symlink inside the root: the
 * directory's index must resolve beneath the root, not beneath the directory. */
static void test_index_symlink_inside_root(void **state)
{
        assert_served("/linkedindex/index.html", OTHER_TXT, "text/html");
        assert_served("/linkedindex/", OTHER_TXT, "text/html");
}

static void test_dotdot_escapes(void **state)
{
        StaticResult res;

        static const char *const escapes[] = {
                "/../outside.txt",
                "/..",
                "/../",
                "/sub/../../outside.txt",
                "/sub/../../root/file.txt",
                "/../../../../../../etc/passwd",
                "/noindex/../../outside.txt",
        };
        for (size_t i = 0; i < ELEMENTSOF(escapes); i++) {
                res = resolve(escapes[i]);
                if (res.status != 403 && res.status != 404)
                        fail_msg("\"%s\": status %u, expected 403 or 404", escapes[i], res.status);
                assert_int_equal(res.fd, -EBADF);
        }
        /* openat2() says EXDEV: forbidden. */
        assert_status("/../outside.txt", 403);
}

static void test_symlinks(void **state)
{
        assert_status("/abs-link", 403);
        /* Even when it points back into the root: absolute symlinks are never followed. */
        assert_status("/abs-inside", 403);
        assert_status("/escape", 403);
        assert_status("/escape-dir/outside.txt", 403);
        assert_status("/escape-dir/root/file.txt", 403);
        assert_status("/escape-dir", 403);
        assert_status("/loop", 403);
        assert_status("/dangling", 404);

        assert_served("/good-link", FILE_TXT, "application/octet-stream");
        assert_served("/link.html", FILE_TXT, "text/html");
        assert_served("/sub-link/", SUB_INDEX, "text/html");
        assert_served("/sub-link/other.txt", OTHER_TXT, "text/plain");
}

static void test_not_regular(void **state)
{
        /* Must not block on the FIFO. */
        assert_status("/fifo", 403);
        assert_status("/fifo/", 404);
}

static void test_socket_is_forbidden(void **state)
{
        /* A unix socket is not a regular file either. */
        assert_status("/sock", 403);
}

static void test_missing(void **state)
{
        assert_status("/missing", 404);
        assert_status("/missing/", 404);
        assert_status("/sub/missing.txt", 404);
        assert_status("/missing/file.txt", 404);
        /* A file used as a directory. */
        assert_status("/file.txt/", 404);
        assert_status("/file.txt/x", 404);
        /* Case matters in file names. */
        assert_status("/FILE.TXT", 404);
        /* A name longer than NAME_MAX. */
        char path[300];
        memset(path, 'n', sizeof path);
        path[0] = '/';
        path[sizeof path - 1] = '\0';
        assert_status(path, 404);
}

static void test_unreadable(void **state)
{
        char path[PATH_MAX];

        if (geteuid() == 0)
                skip(); /* root reads everything */
        xsprintf(path, "%s/file.txt", root);
        assert_int_equal(chmod(path, 0), 0);
        StaticResult res = resolve("/file.txt");
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(res.status, 403);
        assert_int_equal(res.fd, -EBADF);
}

static void test_path_len_decides_trailing_slash(void **state)
{
        /* Only path_len bytes count for the trailing slash: "/sub/" cut to 4 is "/sub". */
        StaticResult res;
        static_handler_resolve(&handler, "/sub/", 4, &res);
        assert_int_equal(res.status, 301);
        assert_string_equal(res.location, "/sub/");
}

static void test_init_errors(void **state)
{
        StaticHandler h;
        char path[PATH_MAX];

        xsprintf(path, "%s/does-not-exist", tmp);
        assert_int_equal(static_handler_init(&h, path, "/nonexistent"), -ENOENT);

        xsprintf(path, "%s/file.txt", root);
        assert_int_equal(static_handler_init(&h, path, "/nonexistent"), -ENOTDIR);

        /* A missing mime.types is not fatal: every file is application/octet-stream. */
        xsprintf(path, "%s/mime-missing.types", tmp);
        assert_int_equal(static_handler_init(&h, root, path), 0);
        assert_true(h.root_fd >= 0);
        StaticResult res;
        static_handler_resolve(&h, "/index.html", 11, &res);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.content_type, MIME_DEFAULT_TYPE);
        close(res.fd);
        static_handler_done(&h);
        assert_int_equal(h.root_fd, -EBADF);
}

static void test_resolve_describes_the_opened_file(void **state)
{
        char path[PATH_MAX];
        struct stat st;

        /* A nanosecond mtime, which the ETag needs, comes from fstat() of the opened fd. */
        xsprintf(path, "%s/nsec.txt", root);
        xwrite_file(root, "nsec.txt", "0123456789");
        struct timespec times[2] = { { .tv_sec = FILE_MTIME, .tv_nsec = 987654321 },
                                     { .tv_sec = FILE_MTIME, .tv_nsec = 987654321 } };
        assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
        assert_int_equal(stat(path, &st), 0);

        StaticResult res = resolve("/nsec.txt");
        assert_int_equal(res.status, 200);
        assert_int_equal(res.size, 10);
        assert_int_equal(res.mtime, FILE_MTIME);
        assert_int_equal(res.mtime_nsec, 987654321);
        assert_int_equal(res.ino, st.st_ino);
        close(res.fd);

        /* The directory index describes the index, not the directory. */
        xsprintf(path, "%s/sub/index.html", root);
        assert_int_equal(stat(path, &st), 0);
        res = resolve("/sub/");
        assert_int_equal(res.status, 200);
        assert_int_equal(res.ino, st.st_ino);
        assert_int_equal(res.size, STRLEN(SUB_INDEX));
        close(res.fd);

        xsprintf(path, "%s/nsec.txt", root);
        assert_int_equal(unlink(path), 0);
}

static void test_device_node_is_forbidden(void **state)
{
        char path[PATH_MAX];

        /* /dev/null's numbers: a device whose open() is harmless, should the check ever come too late. */
        xsprintf(path, "%s/null", root);
        if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) < 0) {
                if (errno == EPERM || errno == EACCES)
                        skip(); /* no CAP_MKNOD */
                fail_msg("mknod %s: %m", path);
        }
        StaticResult res = resolve("/null");
        (void) unlink(path);
        assert_int_equal(res.status, 403);
        assert_int_equal(res.fd, -EBADF);
}

/* A root where /proc's magic links are reachable: RESOLVE_NO_MAGICLINKS refuses them. */
static void test_magic_links(void **state)
{
        StaticHandler h;
        StaticResult res;

        if (static_handler_init(&h, "/proc/self", "/nonexistent") < 0)
                skip(); /* no /proc */
        static const char *const paths[] = { "/root/etc/passwd", "/root", "/cwd/", "/exe", "/fd/0", "/fd/1" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                static_handler_resolve(&h, paths[i], strlen(paths[i]), &res);
                if (res.status != 403)
                        fail_msg("\"%s\": status %u, expected 403", paths[i], res.status);
                assert_int_equal(res.fd, -EBADF);
        }
        static_handler_done(&h);
}

/* ---- conditional and range requests ----------------------------------------------------------------- */

#define T_SIZE 1000
#define T_INO 0x1234
#define T_MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define T_NSEC 123456789
#define T_ETAG "\"1234-3e8-ae1b981c3a4d715\""
#define T_NOW 1700000000

static const StaticResult t_file = {
        .status = 200,
        .fd = -EBADF,
        .size = T_SIZE,
        .mtime = T_MTIME,
        .mtime_nsec = T_NSEC,
        .ino = T_INO,
};

static void set_field(StaticConditions *c, const char *name, const char *value)
{
        size_t len = strlen(value);

        if (streq(name, "If-Match")) {
                c->if_match = value;
                c->if_match_len = len;
        } else if (streq(name, "If-Unmodified-Since")) {
                c->if_unmodified_since = value;
                c->if_unmodified_since_len = len;
        } else if (streq(name, "If-None-Match")) {
                c->if_none_match = value;
                c->if_none_match_len = len;
        } else if (streq(name, "If-Modified-Since")) {
                c->if_modified_since = value;
                c->if_modified_since_len = len;
        } else if (streq(name, "Range")) {
                c->range = value;
                c->range_len = len;
        } else if (streq(name, "If-Range")) {
                c->if_range = value;
                c->if_range_len = len;
        } else
                fail_msg("unknown field %s", name);
}

/* The decision for a GET (or HEAD) of f with the fields given as name, value pairs, NULL-terminated. */
static StaticDecision decide_file(const StaticResult *f, time_t now, int head, ...)
{
        StaticConditions c = { .head = head != 0 };
        StaticDecision d;
        va_list ap;

        va_start(ap, head);
        for (;;) {
                const char *name = va_arg(ap, const char *);
                if (!name)
                        break;
                set_field(&c, name, va_arg(ap, const char *));
        }
        va_end(ap);

        memset(&d, 0x5a, sizeof d);
        static_decide(&c, f, now, &d);
        return d;
}

#define decide(...) decide_file(&t_file, T_NOW, false, __VA_ARGS__, NULL)
#define decide_head(...) decide_file(&t_file, T_NOW, true, __VA_ARGS__, NULL)

static void assert_whole(const StaticDecision *d)
{
        assert_int_equal(d->status, 200);
        assert_int_equal(d->offset, 0);
        assert_int_equal(d->length, T_SIZE);
        assert_true(d->accept_ranges);
        assert_string_equal(d->etag, T_ETAG);
        assert_string_equal(d->content_range, "");
        assert_int_equal(d->last_modified, T_MTIME);
}

static void assert_bodyless(const StaticDecision *d, unsigned status)
{
        assert_int_equal(d->status, status);
        assert_int_equal(d->offset, 0);
        assert_int_equal(d->length, 0);
        assert_false(d->accept_ranges);
        assert_string_equal(d->etag, T_ETAG);
        assert_int_equal(d->last_modified, T_MTIME);
}

static void assert_partial(const StaticDecision *d, uint64_t offset, uint64_t length, const char *content_range)
{
        assert_int_equal(d->status, 206);
        assert_int_equal(d->offset, offset);
        assert_int_equal(d->length, length);
        assert_false(d->accept_ranges);
        assert_string_equal(d->etag, T_ETAG);
        assert_string_equal(d->content_range, content_range);
}

static void test_etag_format(void **state)
{
        char etag[STATIC_ETAG_MAX];

        memset(etag, '#', sizeof etag);
        static_format_etag(T_INO, T_SIZE, T_MTIME, T_NSEC, etag);
        assert_string_equal(etag, T_ETAG);

        /* Each part changes it. */
        static_format_etag(T_INO + 1, T_SIZE, T_MTIME, T_NSEC, etag);
        assert_string_equal(etag, "\"1235-3e8-ae1b981c3a4d715\"");
        static_format_etag(T_INO, T_SIZE + 1, T_MTIME, T_NSEC, etag);
        assert_string_equal(etag, "\"1234-3e9-ae1b981c3a4d715\"");
        static_format_etag(T_INO, T_SIZE, T_MTIME, T_NSEC + 1, etag);
        assert_string_equal(etag, "\"1234-3e8-ae1b981c3a4d716\"");
        static_format_etag(T_INO, T_SIZE, T_MTIME + 1, T_NSEC, etag);
        assert_string_equal(etag, "\"1234-3e8-ae1b981ff3fa115\"");

        /* The largest values fit. */
        static_format_etag(UINT64_MAX, UINT64_MAX, 0, 0, etag);
        assert_string_equal(etag, "\"ffffffffffffffff-ffffffffffffffff-0\"");
        static_format_etag(UINT64_MAX, UINT64_MAX, (time_t) -1, 999999999, etag);
        assert_string_equal(etag, "\"ffffffffffffffff-ffffffffffffffff-ffffffffffffffff\"");

        /* static_decide() uses the same tag. */
        StaticDecision d = decide_file(&t_file, T_NOW, false, NULL);
        assert_string_equal(d.etag, T_ETAG);
}

static void test_etag_of_a_real_file_is_stable(void **state)
{
        StaticResult a = resolve("/file.txt"), b = resolve("/file.txt");
        StaticDecision da, db;
        StaticConditions c = {};
        char expected[STATIC_ETAG_MAX];
        struct stat st;
        char path[PATH_MAX];

        close(a.fd);
        close(b.fd);
        static_decide(&c, &a, T_NOW, &da);
        static_decide(&c, &b, T_NOW, &db);
        assert_string_equal(da.etag, db.etag);

        xsprintf(path, "%s/file.txt", root);
        assert_int_equal(stat(path, &st), 0);
        xsprintf(expected, "\"%llx-%zx-%llx\"", (unsigned long long) st.st_ino, STRLEN(FILE_TXT),
                 (unsigned long long) FILE_MTIME * 1000000000ULL);
        assert_string_equal(da.etag, expected);
}

static void test_unconditional(void **state)
{
        StaticDecision d = decide_file(&t_file, T_NOW, false, NULL);
        assert_whole(&d);
        d = decide_file(&t_file, T_NOW, true, NULL);
        assert_whole(&d);
}

static void test_last_modified_not_after_now(void **state)
{
        StaticResult future = t_file;
        future.mtime = T_NOW + 3600;

        StaticDecision d = decide_file(&future, T_NOW, false, NULL);
        assert_int_equal(d.status, 200);
        assert_int_equal(d.last_modified, T_NOW);
        /* The tag still tells the real mtime. */
        char etag[STATIC_ETAG_MAX];
        static_format_etag(T_INO, T_SIZE, T_NOW + 3600, T_NSEC, etag);
        assert_string_equal(d.etag, etag);
}

static void test_if_none_match(void **state)
{
        StaticDecision d;

        static const char *const matching[] = {
                T_ETAG,
                "W/" T_ETAG,                         /* weak comparison */
                "*",
                " * ",
                "\t" T_ETAG " ",
                "\"a\", " T_ETAG,
                "\"a\"," T_ETAG ",\"b\"",
                "W/\"a\" ,\t" T_ETAG,
                ", ," T_ETAG ",,",                   /* empty list elements */
                "\"x,y\", " T_ETAG,                  /* a comma inside a tag */
        };
        for (size_t i = 0; i < ELEMENTSOF(matching); i++) {
                d = decide("If-None-Match", matching[i]);
                if (d.status != 304)
                        fail_msg("If-None-Match: %s: %u, expected 304", matching[i], d.status);
                assert_bodyless(&d, 304);
                d = decide_head("If-None-Match", matching[i]);
                assert_bodyless(&d, 304);
        }

        static const char *const not_matching[] = {
                "\"other\"",
                "\"1234-3e8-ae1b981c3a4d716\"",
                "1234-3e8-ae1b981c3a4d715",          /* unquoted: malformed */
                "w/" T_ETAG,                         /* the W is case-sensitive */
                "\"a\" " T_ETAG,                     /* no comma: malformed from there on */
                "junk, " T_ETAG,                     /* malformed before the match */
                "**",
                "*, " T_ETAG,
                "",
                "\"" "1234-3e8-ae1b981c3a4d715",     /* unterminated */
                "\"1234 3e8\"",                      /* a space is no etagc */
        };
        for (size_t i = 0; i < ELEMENTSOF(not_matching); i++) {
                d = decide("If-None-Match", not_matching[i]);
                if (d.status != 200)
                        fail_msg("If-None-Match: %s: %u, expected 200", not_matching[i], d.status);
                assert_whole(&d);
        }
}

static void test_if_none_match_overrides_if_modified_since(void **state)
{
        /* RFC 9110 13.1.3: If-Modified-Since is ignored when there is an If-None-Match, matching or not. */
        StaticDecision d = decide("If-None-Match", "\"other\"", "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_whole(&d);
        d = decide("If-None-Match", "junk", "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_whole(&d);
        d = decide("If-None-Match", T_ETAG, "If-Modified-Since", "Sat, 01 Jan 1994 00:00:00 GMT");
        assert_bodyless(&d, 304);
}

static void test_if_modified_since(void **state)
{
        StaticDecision d;

        static const char *const not_modified[] = {
                "Sun, 06 Nov 1994 08:49:37 GMT",    /* equal */
                "Sunday, 06-Nov-94 08:49:37 GMT",   /* the same in RFC 850 form */
                "Sun Nov  6 08:49:37 1994",         /* and in asctime form */
                "Sun, 06 Nov 1994 08:49:38 GMT",    /* later */
                "Tue, 14 Nov 2023 22:13:20 GMT",    /* now */
                "Fri, 31 Dec 2100 00:00:00 GMT",    /* in the future: still not earlier than the mtime */
                " Sun, 06 Nov 1994 08:49:37 GMT\t", /* optional whitespace around the value */
        };
        for (size_t i = 0; i < ELEMENTSOF(not_modified); i++) {
                d = decide("If-Modified-Since", not_modified[i]);
                if (d.status != 304)
                        fail_msg("If-Modified-Since: %s: %u, expected 304", not_modified[i], d.status);
                assert_bodyless(&d, 304);
                d = decide_head("If-Modified-Since", not_modified[i]);
                assert_bodyless(&d, 304);
        }

        static const char *const modified_or_ignored[] = {
                "Sun, 06 Nov 1994 08:49:36 GMT",    /* earlier */
                "Sunday, 06-Nov-94 08:49:36 GMT",
                "Sun Nov  6 08:49:36 1994",
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "garbage",                          /* invalid dates are ignored */
                "",
                "sun, 06 nov 1994 08:49:37 gmt",
                "Sun, 06 Nov 1994 08:49:37 UTC",
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", /* a list */
                "784111777",
                "Sun, 31 Nov 1994 08:49:37 GMT",
        };
        for (size_t i = 0; i < ELEMENTSOF(modified_or_ignored); i++) {
                d = decide("If-Modified-Since", modified_or_ignored[i]);
                if (d.status != 200)
                        fail_msg("If-Modified-Since: %s: %u, expected 200", modified_or_ignored[i], d.status);
                assert_whole(&d);
        }

        /* The comparison is by the Last-Modified sent: seconds. A file modified at .123456789 past a
         * second is not modified since that second. */
        d = decide("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_int_equal(d.status, 304);
}

static void test_if_match(void **state)
{
        StaticDecision d;

        static const char *const matching[] = { T_ETAG, "*", "\"a\", " T_ETAG, " " T_ETAG " " };
        for (size_t i = 0; i < ELEMENTSOF(matching); i++) {
                d = decide("If-Match", matching[i]);
                if (d.status != 200)
                        fail_msg("If-Match: %s: %u, expected 200", matching[i], d.status);
                assert_whole(&d);
        }

        /* Strong comparison: a weak tag never matches. */
        static const char *const failing[] = { "\"other\"", ("W/" T_ETAG), "", "junk" };
        for (size_t i = 0; i < ELEMENTSOF(failing); i++) {
                d = decide("If-Match", failing[i]);
                if (d.status != 412)
                        fail_msg("If-Match: %s: %u, expected 412", failing[i], d.status);
                assert_bodyless(&d, 412);
                assert_string_equal(d.content_range, "");
        }

        /* If-Match comes first: before If-None-Match and Range. */
        d = decide("If-Match", "\"other\"", "If-None-Match", T_ETAG);
        assert_int_equal(d.status, 412);
        d = decide("If-Match", "\"other\"", "Range", "bytes=0-1");
        assert_int_equal(d.status, 412);
        d = decide("If-Match", T_ETAG, "If-None-Match", T_ETAG);
        assert_int_equal(d.status, 304);
        d = decide("If-Match", T_ETAG, "Range", "bytes=0-1");
        assert_partial(&d, 0, 2, "bytes 0-1/1000");
}

static void test_if_unmodified_since(void **state)
{
        StaticDecision d;

        d = decide("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_whole(&d);
        d = decide("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:38 GMT");
        assert_whole(&d);
        d = decide("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:36 GMT");
        assert_bodyless(&d, 412);
        d = decide("If-Unmodified-Since", "Sun Nov  6 08:49:36 1994");
        assert_bodyless(&d, 412);
        /* An invalid date is ignored. */
        d = decide("If-Unmodified-Since", "yesterday");
        assert_whole(&d);
        /* If-Match wins over it. */
        d = decide("If-Match", T_ETAG, "If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:36 GMT");
        assert_whole(&d);
}

static void test_range_forms(void **state)
{
        StaticDecision d;

        d = decide("Range", "bytes=0-99");
        assert_partial(&d, 0, 100, "bytes 0-99/1000");
        d = decide("Range", "bytes=100-199");
        assert_partial(&d, 100, 100, "bytes 100-199/1000");
        d = decide("Range", "bytes=500-");
        assert_partial(&d, 500, 500, "bytes 500-999/1000");
        d = decide("Range", "bytes=-100");
        assert_partial(&d, 900, 100, "bytes 900-999/1000");
        d = decide("Range", "bytes=0-0");
        assert_partial(&d, 0, 1, "bytes 0-0/1000");
        d = decide("Range", "bytes=999-999");
        assert_partial(&d, 999, 1, "bytes 999-999/1000");
        d = decide("Range", "bytes=-1");
        assert_partial(&d, 999, 1, "bytes 999-999/1000");
        /* The whole file as a range is still a 206. */
        d = decide("Range", "bytes=0-");
        assert_partial(&d, 0, 1000, "bytes 0-999/1000");
        /* A last-pos beyond the end, and a suffix longer than the file, are cut to it. */
        d = decide("Range", "bytes=900-5000");
        assert_partial(&d, 900, 100, "bytes 900-999/1000");
        d = decide("Range", "bytes=-5000");
        assert_partial(&d, 0, 1000, "bytes 0-999/1000");
        d = decide("Range", "bytes=10-99999999999999999999999999");
        assert_partial(&d, 10, 990, "bytes 10-999/1000");
        d = decide("Range", "bytes=-99999999999999999999999999");
        assert_partial(&d, 0, 1000, "bytes 0-999/1000");
        /* The unit is case-insensitive; whitespace around the value and list elements is optional. */
        d = decide("Range", "BYTES=1-2");
        assert_partial(&d, 1, 2, "bytes 1-2/1000");
        d = decide("Range", " bytes=1-2 ");
        assert_partial(&d, 1, 2, "bytes 1-2/1000");
        d = decide("Range", "bytes=,1-2, ,");
        assert_partial(&d, 1, 2, "bytes 1-2/1000");
}

static void test_range_unsatisfiable(void **state)
{
        static const char *const values[] = {
                "bytes=1000-",
                "bytes=1000-1000",
                "bytes=5000-6000",
                "bytes=-0",
                "bytes=99999999999999999999999999-",
        };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                StaticDecision d = decide("Range", values[i]);
                if (d.status != 416)
                        fail_msg("Range: %s: %u, expected 416", values[i], d.status);
                assert_bodyless(&d, 416);
                assert_string_equal(d.content_range, "bytes */1000");
        }
}

static void test_range_ignored(void **state)
{
        static const char *const values[] = {
                "bytes=0-1,5-6",          /* several ranges: the whole file */
                "bytes=0-1, 2-3",
                "bytes=-1,0-0",
                "bytes=5000-6000,7000-",  /* several, even unsatisfiable ones */
                "bytes=5-2",              /* last before first: invalid */
                "bytes=",                 /* no range */
                "bytes=,",
                "bytes=-",
                "bytes=--1",
                "bytes=1-2-3",
                "bytes=1 -2",
                "bytes=1- 2",
                "bytes=0-1 x",
                "bytes=abc",              /* an other-range */
                "bytes=0x10-",
                "bytes =0-1",
                "bytes 0-1",
                "byte=0-1",
                "items=0-1",
                "0-1",
                "",
                "bytes=+1-2",
        };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                StaticDecision d = decide("Range", values[i]);
                if (d.status != 200)
                        fail_msg("Range: %s: %u, expected 200", values[i], d.status);
                assert_whole(&d);
        }
}

static void test_range_head_is_ignored(void **state)
{
        /* RFC 9110 14.2: range handling is defined for GET only; a HEAD gets the 200's head. */
        StaticDecision d = decide_head("Range", "bytes=0-99");
        assert_whole(&d);
        d = decide_head("Range", "bytes=5000-");
        assert_whole(&d);
}

static void test_range_of_an_empty_file(void **state)
{
        StaticResult empty = t_file;
        empty.size = 0;
        StaticDecision d;

        /* No first-pos is below a length of 0: unsatisfiable. */
        d = decide_file(&empty, T_NOW, false, "Range", "bytes=0-", NULL);
        assert_int_equal(d.status, 416);
        assert_int_equal(d.length, 0);
        assert_string_equal(d.content_range, "bytes */0");
        d = decide_file(&empty, T_NOW, false, "Range", "bytes=0-0", NULL);
        assert_int_equal(d.status, 416);
        d = decide_file(&empty, T_NOW, false, "Range", "bytes=-0", NULL);
        assert_int_equal(d.status, 416);
        /* A non-zero suffix is satisfiable, but no 206 can say "no bytes": the whole empty file. */
        d = decide_file(&empty, T_NOW, false, "Range", "bytes=-1", NULL);
        assert_int_equal(d.status, 200);
        assert_int_equal(d.length, 0);
        assert_string_equal(d.content_range, "");
}

static void test_conditionals_come_before_range(void **state)
{
        StaticDecision d = decide("If-None-Match", T_ETAG, "Range", "bytes=0-1");
        assert_bodyless(&d, 304);
        assert_string_equal(d.content_range, "");
        d = decide("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT", "Range", "bytes=0-1");
        assert_bodyless(&d, 304);
        d = decide("If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT", "Range", "bytes=0-1");
        assert_partial(&d, 0, 2, "bytes 0-1/1000");
        /* An unsatisfiable range of an unmodified file: 304 all the same. */
        d = decide("If-None-Match", T_ETAG, "Range", "bytes=5000-");
        assert_bodyless(&d, 304);
}

static void test_if_range(void **state)
{
        StaticDecision d;

        /* A matching entity-tag: the range. */
        d = decide("If-Range", T_ETAG, "Range", "bytes=0-1");
        assert_partial(&d, 0, 2, "bytes 0-1/1000");
        d = decide("If-Range", " " T_ETAG " ", "Range", "bytes=0-1");
        assert_partial(&d, 0, 2, "bytes 0-1/1000");
        /* A matching date, of a file older than the current second: the range. */
        d = decide("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT", "Range", "bytes=0-1");
        assert_partial(&d, 0, 2, "bytes 0-1/1000");
        d = decide("If-Range", "Sunday, 06-Nov-94 08:49:37 GMT", "Range", "bytes=0-1");
        assert_partial(&d, 0, 2, "bytes 0-1/1000");
        /* The If-Range holds, the range does not. */
        d = decide("If-Range", T_ETAG, "Range", "bytes=5000-");
        assert_int_equal(d.status, 416);

        /* Anything else: the whole file. */
        static const char *const failing[] = {
                "\"other\"",
                "W/" T_ETAG,                          /* strong comparison */
                T_ETAG ", \"other\"",                 /* one tag, not a list */
                "\"other\", " T_ETAG,
                "*",
                "Sun, 06 Nov 1994 08:49:38 GMT",      /* not exactly Last-Modified */
                "Sun, 06 Nov 1994 08:49:36 GMT",
                "garbage",
                "",
                "Wed",
        };
        for (size_t i = 0; i < ELEMENTSOF(failing); i++) {
                d = decide("If-Range", failing[i], "Range", "bytes=0-1");
                if (d.status != 200)
                        fail_msg("If-Range: %s: %u, expected 200", failing[i], d.status);
                assert_whole(&d);
                /* Not even a 416 when the range would not fit. */
                d = decide("If-Range", failing[i], "Range", "bytes=5000-");
                assert_whole(&d);
        }

        /* Without Range, If-Range means nothing. */
        d = decide("If-Range", "\"other\"");
        assert_whole(&d);
}

static void test_if_range_date_of_a_file_changed_this_second(void **state)
{
        StaticResult fresh = t_file;
        StaticDecision d;

        /* Modified within the current second, its date is no strong validator (RFC 9110 8.8.2.2): the
         * file may change again within that second, unseen. The ETag still works. */
        fresh.mtime = T_NOW;
        d = decide_file(&fresh, T_NOW, false, "If-Range", "Tue, 14 Nov 2023 22:13:20 GMT", "Range", "bytes=0-1",
                        NULL);
        assert_int_equal(d.status, 200);
        d = decide_file(&fresh, T_NOW + 1, false, "If-Range", "Tue, 14 Nov 2023 22:13:20 GMT", "Range",
                        "bytes=0-1", NULL);
        assert_int_equal(d.status, 206);

        char etag[STATIC_ETAG_MAX];
        static_format_etag(T_INO, T_SIZE, T_NOW, T_NSEC, etag);
        d = decide_file(&fresh, T_NOW, false, "If-Range", etag, "Range", "bytes=0-1", NULL);
        assert_int_equal(d.status, 206);
}

static void test_content_range_of_large_files(void **state)
{
        StaticResult big = t_file;
        big.size = UINT64_MAX;
        StaticDecision d;

        d = decide_file(&big, T_NOW, false, "Range", "bytes=18446744073709551613-", NULL);
        assert_int_equal(d.status, 206);
        assert_int_equal(d.offset, UINT64_MAX - 2);
        assert_int_equal(d.length, 2);
        assert_string_equal(d.content_range, "bytes 18446744073709551613-18446744073709551614/18446744073709551615");
        d = decide_file(&big, T_NOW, false, "Range", "bytes=-99999999999999999999", NULL);
        assert_int_equal(d.status, 206);
        assert_int_equal(d.offset, 0);
        assert_int_equal(d.length, UINT64_MAX);
        assert_string_equal(d.content_range, "bytes 0-18446744073709551614/18446744073709551615");
}

static void test_parse_range_directly(void **state)
{
        uint64_t off = 7, len = 7;

        assert_int_equal(static_parse_range("bytes=2-4", 9, 10, &off, &len), STATIC_RANGE_SATISFIABLE);
        assert_int_equal(off, 2);
        assert_int_equal(len, 3);
        /* Only len bytes count: "bytes=2-". */
        assert_int_equal(static_parse_range("bytes=2-4", 8, 10, &off, &len), STATIC_RANGE_SATISFIABLE);
        assert_int_equal(off, 2);
        assert_int_equal(len, 8);
        /* Nothing written unless satisfiable. */
        off = len = 7;
        assert_int_equal(static_parse_range("bytes=20-", 9, 10, &off, &len), STATIC_RANGE_UNSATISFIABLE);
        assert_int_equal(static_parse_range("bytes=0-1,2-3", 13, 10, &off, &len), STATIC_RANGE_IGNORE);
        assert_int_equal(off, 7);
        assert_int_equal(len, 7);
}

static void test_etag_list_match_directly(void **state)
{
        assert_true(static_etag_list_match("\"a\"", 3, "\"a\"", false));
        assert_false(static_etag_list_match("W/\"a\"", 5, "\"a\"", false));
        assert_true(static_etag_list_match("W/\"a\"", 5, "\"a\"", true));
        /* Only len bytes count. */
        assert_false(static_etag_list_match("\"a\"", 2, "\"a\"", true));
        assert_true(static_etag_list_match("*x", 1, "\"a\"", true));
        /* A prefix is no match. */
        assert_false(static_etag_list_match("\"ab\"", 4, "\"a\"", true));
        assert_false(static_etag_list_match("\"a\"", 3, "\"ab\"", true));
        /* obs-text is allowed in a tag. */
        static const char obs_text[] = "\"\xe9\", \"a\"";
        assert_true(static_etag_list_match(obs_text, STRLEN(obs_text), "\"a\"", true));
}

static void test_conditions_from_request(void **state)
{
        static const drover_header h[] = {
                { "Host", 4, "x", 1 },
                /* Near misses: same length or same start as a wanted name. */
                { "If-Rangf", 8, "no", 2 },
                { "Range-X", 7, "no", 2 },
                { "rANGe", 5, "bytes=9-9", 9 },
                { "if-none-match", 13, "\"a\"", 3 },
                { "If-Modified-Since", 17, "d1", 2 },
                { "RANGE", 5, "bytes=0-1", 9 },
                { "If-Range", 8, "\"r\"", 3 },
                { "If-Match", 8, "*", 1 },
                { "If-Unmodified-Since", 19, "d2", 2 },
                { "If-None-Match", 13, "\"second\"", 8 },
        };
        drover_request req = { .method = "GET", .path = "/", .path_len = 1, .headers = h,
                               .n_headers = ELEMENTSOF(h) };
        StaticConditions c;

        static_conditions_from_request(&req, &c);
        assert_false(c.head);
        /* Names are case-insensitive; the first field line of a name counts. */
        assert_int_equal(c.if_none_match_len, 3);
        assert_memory_equal(c.if_none_match, "\"a\"", 3);
        assert_int_equal(c.if_modified_since_len, 2);
        assert_memory_equal(c.if_modified_since, "d1", 2);
        assert_int_equal(c.range_len, 9);
        assert_memory_equal(c.range, "bytes=9-9", 9);
        assert_int_equal(c.if_range_len, 3);
        assert_memory_equal(c.if_range, "\"r\"", 3);
        assert_int_equal(c.if_match_len, 1);
        assert_memory_equal(c.if_match, "*", 1);
        assert_int_equal(c.if_unmodified_since_len, 2);
        assert_memory_equal(c.if_unmodified_since, "d2", 2);

        drover_request head = { .method = "HEAD", .path = "/", .path_len = 1, .headers = h, .n_headers = 1,
                                .head = true };
        static_conditions_from_request(&head, &c);
        assert_true(c.head);
        assert_null(c.if_match);
        assert_null(c.if_unmodified_since);
        assert_null(c.if_none_match);
        assert_null(c.if_modified_since);
        assert_null(c.range);
        assert_null(c.if_range);
}

static void test_open_walk_fallback(void **state)
{
        char dir[] = "/tmp/drover-walk-XXXXXX";
        char p[256];
        int rootfd, fd;

        assert_non_null(mkdtemp(dir));
        snprintf(p, sizeof p, "%s/sub", dir);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/sub/f.txt", dir);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        snprintf(p, sizeof p, "%s/link", dir);
        assert_int_equal(symlink("sub/f.txt", p), 0);
        rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(rootfd >= 0);

        fd = static_open_beneath_walk(rootfd, "sub/f.txt", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        fd = static_open_beneath_walk(rootfd, "./sub//./f.txt", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        fd = static_open_beneath_walk(rootfd, ".", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(static_open_beneath_walk(rootfd, "link", O_RDONLY | O_CLOEXEC), -ELOOP);
        assert_int_equal(static_open_beneath_walk(rootfd, "sub/../sub/f.txt", O_RDONLY | O_CLOEXEC), -EXDEV);
        assert_int_equal(static_open_beneath_walk(rootfd, "../etc/passwd", O_RDONLY | O_CLOEXEC), -EXDEV);
        assert_int_equal(static_open_beneath_walk(rootfd, "missing", O_RDONLY | O_CLOEXEC), -ENOENT);
        assert_int_equal(static_open_beneath_walk(rootfd, "sub/f.txt/x", O_RDONLY | O_CLOEXEC), -ENOTDIR);

        close(rootfd);
        snprintf(p, sizeof p, "%s/link", dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/sub/f.txt", dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/sub", dir);
        rmdir(p);
        rmdir(dir);
}

/* ---- the open-file cache ------------------------------------------------------------------------------ */

static void test_cache_pure_parts(void **state)
{
        StaticResult a = { .dev = 1, .ino = 2, .size = 3, .mtime = 4, .mtime_nsec = 5, .ctime = 6, .ctime_nsec = 7 };
        StaticResult b;

        /* Fresh strictly within the window, never with a window of 0 or a clock that went back. */
        assert_true(static_cache_fresh(100, 100, 1000));
        assert_true(static_cache_fresh(100, 1099, 1000));
        assert_false(static_cache_fresh(100, 1100, 1000));
        assert_false(static_cache_fresh(100, 100, 0));
        assert_false(static_cache_fresh(100, 99, 1000));

        /* The same file: every part of the identity counts. */
        b = a;
        assert_true(static_cache_same_file(&a, &b));
        b = a, b.dev++;
        assert_false(static_cache_same_file(&a, &b));
        b = a, b.ino++;
        assert_false(static_cache_same_file(&a, &b));
        b = a, b.size++;
        assert_false(static_cache_same_file(&a, &b));
        b = a, b.mtime++;
        assert_false(static_cache_same_file(&a, &b));
        b = a, b.mtime_nsec++;
        assert_false(static_cache_same_file(&a, &b));
        b = a, b.ctime++;
        assert_false(static_cache_same_file(&a, &b));
        b = a, b.ctime_nsec++;
        assert_false(static_cache_same_file(&a, &b));

        /* The key is the whole path, length included. */
        assert_true(static_cache_hash("/a.txt", 6) == static_cache_hash("/a.txt", 6));
        assert_true(static_cache_hash("/a.txt", 6) != static_cache_hash("/b.txt", 6));
        assert_true(static_cache_hash("/a.txt", 6) != static_cache_hash("/a.txt", 5));
}

static void cache_setup(StaticHandler *h, uint64_t valid_ms)
{
        char path[PATH_MAX];

        xsprintf(path, "%s/mime.types", tmp);
        assert_int_equal(static_handler_init(h, root, path), 0);
        h->cache_valid_ms = valid_ms;
}

/* Replaces root/name by rename: a new inode, as editors and rsync do. */
static void replace_file(const char *name, const char *content)
{
        char path[PATH_MAX], tmp_path[PATH_MAX];

        xsprintf(tmp_path, "%s/.%s.tmp", root, name);
        xsprintf(path, "%s/%s", root, name);
        xwrite_file(root, strrchr(tmp_path, '/') + 1, content);
        assert_int_equal(rename(tmp_path, path), 0);
}

static StaticResult cache_open(StaticHandler *h, const char *path, uint64_t now_ms)
{
        StaticResult res;
        memset(&res, 0x5a, sizeof res);
        static_handler_open(h, path, strlen(path), now_ms, &res);
        return res;
}

static void assert_cached_content(const StaticResult *res, const char *content)
{
        assert_int_equal(res->status, 200);
        assert_non_null(res->entry);
        assert_true(res->fd >= 0);
        assert_int_equal(res->size, strlen(content));
        assert_non_null(res->content);
        assert_memory_equal(res->content, content, strlen(content));
}

static void test_cache_serves_within_the_window_then_looks_again(void **state)
{
        StaticHandler h;
        StaticResult res;
        char etag[STATIC_ETAG_MAX];

        cache_setup(&h, 1000);
        replace_file("cache-a.txt", "one");
        res = cache_open(&h, "/cache-a.txt", 10000);
        assert_cached_content(&res, "one");
        assert_string_equal(res.content_type, "text/plain");
        assert_non_null(res.headers_200);
        assert_non_null(strstr(res.headers_200, "Content-Type: text/plain\r\n"));
        assert_non_null(strstr(res.headers_200, res.etag));
        assert_int_equal(res.headers_200_len, strlen(res.headers_200));
        memcpy(etag, res.etag, sizeof etag);
        static_result_release(&res);
        assert_int_equal(res.fd, -EBADF);
        assert_null(res.entry);
        assert_int_equal(h.n_entries, 1);

        /* Changed: within the window the old version, whole, with its own tag... */
        replace_file("cache-a.txt", "second");
        res = cache_open(&h, "/cache-a.txt", 10999);
        assert_cached_content(&res, "one");
        assert_string_equal(res.etag, etag);
        static_result_release(&res);
        /* ...after it the new one. */
        res = cache_open(&h, "/cache-a.txt", 11000);
        assert_cached_content(&res, "second");
        assert_string_not_equal(res.etag, etag);
        static_result_release(&res);
        assert_int_equal(h.n_entries, 1);

        /* Unchanged at the next look: the same entry goes on. */
        res = cache_open(&h, "/cache-a.txt", 12500);
        assert_cached_content(&res, "second");
        StaticCacheEntry *e = res.entry;
        static_result_release(&res);
        res = cache_open(&h, "/cache-a.txt", 12600);
        assert_ptr_equal(res.entry, e);
        static_result_release(&res);

        /* Deleted: 404 once the window since the last look has passed, and no entry left. */
        char path[PATH_MAX];
        xsprintf(path, "%s/cache-a.txt", root);
        assert_int_equal(unlink(path), 0);
        res = cache_open(&h, "/cache-a.txt", 13499);
        assert_int_equal(res.status, 200);
        static_result_release(&res);
        res = cache_open(&h, "/cache-a.txt", 13500);
        assert_int_equal(res.status, 404);
        assert_null(res.entry);
        assert_int_equal(res.fd, -EBADF);
        assert_int_equal(h.n_entries, 0);
        static_handler_done(&h);
}

static void test_cache_pinned_entry_outlives_replacement(void **state)
{
        StaticHandler h;
        StaticResult old, cur;

        cache_setup(&h, 1000);
        replace_file("cache-pin.txt", "old content");
        old = cache_open(&h, "/cache-pin.txt", 5000);
        assert_cached_content(&old, "old content");
        /* A response still sending the old version while the file is replaced and looked up again. */
        replace_file("cache-pin.txt", "new content!");
        cur = cache_open(&h, "/cache-pin.txt", 7000);
        assert_cached_content(&cur, "new content!");
        assert_ptr_not_equal(cur.entry, old.entry);
        assert_memory_equal(old.content, "old content", 11); /* still valid (ASan would say otherwise) */
        char buf[16];
        assert_int_equal(pread(old.fd, buf, sizeof buf, 0), 11);
        static_result_release(&old);
        static_result_release(&cur);
        /* Flushing drops what is not pinned; a pinned entry goes when its last pin does. */
        cur = cache_open(&h, "/cache-pin.txt", 7001);
        static_cache_flush(&h);
        assert_int_equal(h.n_entries, 0);
        assert_memory_equal(cur.content, "new content!", 12);
        static_result_release(&cur);
        static_handler_done(&h);
}

static void test_cache_symlink_swapped_in_is_refused_after_the_window(void **state)
{
        StaticHandler h;
        StaticResult res;
        char path[PATH_MAX];

        cache_setup(&h, 1000);
        replace_file("cache-swap.txt", "inside");
        res = cache_open(&h, "/cache-swap.txt", 1000);
        assert_cached_content(&res, "inside");
        static_result_release(&res);
        xsprintf(path, "%s/cache-swap.txt", root);
        assert_int_equal(unlink(path), 0);
        xsymlink("../outside.txt", root, "cache-swap.txt");
        res = cache_open(&h, "/cache-swap.txt", 1999);
        assert_cached_content(&res, "inside"); /* the file that was there: never the link's target */
        static_result_release(&res);
        res = cache_open(&h, "/cache-swap.txt", 2000);
        assert_int_equal(res.status, 403);
        assert_null(res.entry);
        static_result_release(&res);
        assert_int_equal(unlink(path), 0);
        static_handler_done(&h);
}

static void test_cache_bounds(void **state)
{
        StaticHandler h;
        StaticResult res;
        char name[64], url[80];
        char *big = malloc(STATIC_CACHE_CONTENT_MAX + 2);

        assert_non_null(big);
        cache_setup(&h, 60000);
        /* Beyond the in-memory size: the fd only. */
        memset(big, 'b', STATIC_CACHE_CONTENT_MAX + 1);
        big[STATIC_CACHE_CONTENT_MAX + 1] = '\0';
        replace_file("cache-big.bin", big);
        res = cache_open(&h, "/cache-big.bin", 1);
        assert_int_equal(res.status, 200);
        assert_non_null(res.entry);
        assert_null(res.content);
        assert_true(res.fd >= 0);
        assert_int_equal(res.size, STATIC_CACHE_CONTENT_MAX + 1);
        static_result_release(&res);

        /* More files than entries, more content than the budget: both stay bounded, every file is served. */
        memset(big, 'c', STATIC_CACHE_CONTENT_MAX);
        big[STATIC_CACHE_CONTENT_MAX] = '\0';
        for (unsigned i = 0; i < STATIC_CACHE_ENTRIES + 8; i++) {
                xsprintf(name, "cache-n%u.bin", i);
                xsprintf(url, "/%s", name);
                replace_file(name, big);
                res = cache_open(&h, url, 2);
                assert_int_equal(res.status, 200);
                assert_true(res.fd >= 0);
                assert_true(h.n_entries <= STATIC_CACHE_ENTRIES);
                assert_true(h.content_bytes <= STATIC_CACHE_CONTENT_BUDGET);
                static_result_release(&res);
        }
        static_handler_done(&h);
        for (unsigned i = 0; i < STATIC_CACHE_ENTRIES + 8; i++) {
                char path[PATH_MAX];
                xsprintf(path, "%s/cache-n%u.bin", root, i);
                (void) unlink(path);
        }
        free(big);
}

static void test_cache_off_opens_every_time(void **state)
{
        StaticHandler h;
        StaticResult res;

        cache_setup(&h, 0);
        res = cache_open(&h, "/file.txt", 1);
        assert_int_equal(res.status, 200);
        assert_null(res.entry);
        assert_null(res.content);
        assert_true(res.fd >= 0);
        assert_int_equal(h.n_entries, 0);
        static_result_release(&res); /* closes the fd the result owns */
        assert_int_equal(res.fd, -EBADF);
        /* Errors are never cached. */
        h.cache_valid_ms = 1000;
        res = cache_open(&h, "/nonexistent", 1);
        assert_int_equal(res.status, 404);
        assert_int_equal(h.n_entries, 0);
        static_handler_done(&h);
}

int main(void)
{
        /* Also after a failed group setup. */
        atexit(remove_tree);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_regular_file),
                cmocka_unit_test(test_content_types),
                cmocka_unit_test(test_directory_index),
                cmocka_unit_test(test_directory_redirect),
                cmocka_unit_test(test_redirect_location_encoding),
                cmocka_unit_test(test_redirect_location_length),
                cmocka_unit_test(test_directory_without_index),
                cmocka_unit_test(test_index_symlink_inside_root),
                cmocka_unit_test(test_dotdot_escapes),
                cmocka_unit_test(test_symlinks),
                cmocka_unit_test(test_not_regular),
                cmocka_unit_test(test_socket_is_forbidden),
                cmocka_unit_test(test_missing),
                cmocka_unit_test(test_unreadable),
                cmocka_unit_test(test_path_len_decides_trailing_slash),
                cmocka_unit_test(test_init_errors),
                cmocka_unit_test(test_resolve_describes_the_opened_file),
                cmocka_unit_test(test_device_node_is_forbidden),
                cmocka_unit_test(test_magic_links),
                cmocka_unit_test(test_etag_format),
                cmocka_unit_test(test_etag_of_a_real_file_is_stable),
                cmocka_unit_test(test_unconditional),
                cmocka_unit_test(test_last_modified_not_after_now),
                cmocka_unit_test(test_if_none_match),
                cmocka_unit_test(test_if_none_match_overrides_if_modified_since),
                cmocka_unit_test(test_if_modified_since),
                cmocka_unit_test(test_if_match),
                cmocka_unit_test(test_if_unmodified_since),
                cmocka_unit_test(test_range_forms),
                cmocka_unit_test(test_range_unsatisfiable),
                cmocka_unit_test(test_range_ignored),
                cmocka_unit_test(test_range_head_is_ignored),
                cmocka_unit_test(test_range_of_an_empty_file),
                cmocka_unit_test(test_conditionals_come_before_range),
                cmocka_unit_test(test_if_range),
                cmocka_unit_test(test_if_range_date_of_a_file_changed_this_second),
                cmocka_unit_test(test_content_range_of_large_files),
                cmocka_unit_test(test_parse_range_directly),
                cmocka_unit_test(test_etag_list_match_directly),
                cmocka_unit_test(test_conditions_from_request),
                cmocka_unit_test(test_open_walk_fallback),
                cmocka_unit_test(test_cache_pure_parts),
                cmocka_unit_test(test_cache_serves_within_the_window_then_looks_again),
                cmocka_unit_test(test_cache_pinned_entry_outlives_replacement),
                cmocka_unit_test(test_cache_symlink_swapped_in_is_refused_after_the_window),
                cmocka_unit_test(test_cache_bounds),
                cmocka_unit_test(test_cache_off_opens_every_time),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
