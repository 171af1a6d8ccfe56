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
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
