/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "handlers/mime.h"

static const char sample[] =
        "# This is a comment. blah blah blah\n"
        "#text/ignored ign\n"
        "\n"
        "application/json\t\t\t\tjson\n"
        "application/octet-stream\tbin deb\n"
        "application/x-no-extensions\n"
        "text/html\t\t\t\t\thtml htm shtml\n"
        "text/plain\t\t\t\t\ttxt text conf # trailing comment md\n"
        "text/x-first    dup\n"
        "text/x-second   dup DUP2\n"
        "text/x-third    Dup2\n"
        "image/svg+xml\t\t\t\t\tsvg svgz\r\n"
        "application/gzip gz\n"
        "   text/css   css   \n"
        "notatype foo\n"
        "image/png png"; /* no final newline */

static int setup_table(void **state)
{
        MimeTable *t = malloc(sizeof *t);

        if (!t)
                return -1;
        if (mime_table_parse(t, sample, STRLEN(sample)) < 0) {
                free(t);
                return -1;
        }
        *state = t;
        return 0;
}

static int teardown_table(void **state)
{
        MimeTable *t = *state;
        mime_table_done(t);
        free(t);
        return 0;
}

static void assert_type(const MimeTable *t, const char *filename, const char *expected)
{
        const char *type = mime_table_lookup(t, filename);
        if (!type || strcmp(type, expected) != 0)
                fail_msg("lookup(\"%s\") = \"%s\", expected \"%s\"", filename, type ? type : "(null)", expected);
}

static void test_parse_entries(void **state)
{
        MimeTable *t = *state;

        /* json bin deb html htm shtml txt text conf dup DUP2 svg svgz gz css png: "Dup2" is a duplicate,
         * comments and "notatype" contribute nothing. */
        assert_int_equal(t->n_entries, 16);
        /* Borrowed, not copied. */
        assert_ptr_equal(t->data, sample);
        assert_int_equal(t->size, STRLEN(sample));
        assert_null(t->owned);
        assert_non_null(t->index);
}

static void test_lookup(void **state)
{
        MimeTable *t = *state;

        assert_type(t, "index.html", "text/html");
        assert_type(t, "index.htm", "text/html");
        assert_type(t, "page.shtml", "text/html");
        assert_type(t, "data.json", "application/json");
        assert_type(t, "readme.txt", "text/plain");
        assert_type(t, "x.conf", "text/plain");
        assert_type(t, "logo.svg", "image/svg+xml");
        assert_type(t, "logo.svgz", "image/svg+xml"); /* before a CR */
        assert_type(t, "style.css", "text/css");      /* leading and trailing blanks */
        assert_type(t, "image.png", "image/png");     /* last line without newline */
        assert_type(t, "pkg.deb", "application/octet-stream");
        assert_type(t, "/srv/www/sub.dir/file.json", "application/json");
}

static void test_lookup_case_insensitive(void **state)
{
        MimeTable *t = *state;

        assert_type(t, "INDEX.HTML", "text/html");
        assert_type(t, "Index.Html", "text/html");
        assert_type(t, "photo.PNG", "image/png");
        assert_type(t, "x.Json", "application/json");
}

static void test_lookup_last_extension(void **state)
{
        MimeTable *t = *state;

        assert_type(t, "archive.tar.gz", "application/gzip");
        assert_type(t, "page.html.txt", "text/plain");
        assert_type(t, "a.b.c.json", "application/json");
}

static void test_lookup_default(void **state)
{
        MimeTable *t = *state;

        assert_string_equal(MIME_DEFAULT_TYPE, "application/octet-stream");
        assert_type(t, "noextension", MIME_DEFAULT_TYPE);
        assert_type(t, "trailingdot.", MIME_DEFAULT_TYPE);
        assert_type(t, "file.unknown", MIME_DEFAULT_TYPE);
        assert_type(t, "", MIME_DEFAULT_TYPE);
        assert_type(t, ".", MIME_DEFAULT_TYPE);
        /* The dot must be in the last path component. */
        assert_type(t, "dir.html/file", MIME_DEFAULT_TYPE);
        assert_type(t, "dir.html/", MIME_DEFAULT_TYPE);
        /* Not a prefix or substring match. */
        assert_type(t, "x.htmlx", MIME_DEFAULT_TYPE);
        assert_type(t, "x.ht", MIME_DEFAULT_TYPE);
        assert_type(t, "x.h", MIME_DEFAULT_TYPE);
        /* Comments are not mappings. */
        assert_type(t, "x.md", MIME_DEFAULT_TYPE);
        assert_type(t, "x.ign", MIME_DEFAULT_TYPE);
        assert_type(t, "x.blah", MIME_DEFAULT_TYPE);
        /* A line whose first word is not a type. */
        assert_type(t, "x.foo", MIME_DEFAULT_TYPE);
        assert_type(t, "x.notatype", MIME_DEFAULT_TYPE);
}

static void test_dotfile(void **state)
{
        MimeTable *t = *state;

        /* A file named ".html" has the extension "html". */
        assert_type(t, ".html", "text/html");
        assert_type(t, "dir/.txt", "text/plain");
}

static void test_first_mapping_wins(void **state)
{
        MimeTable *t = *state;

        assert_type(t, "x.dup", "text/x-first");
        /* Also when the duplicates differ in case. */
        assert_type(t, "x.DUP2", "text/x-second");
        assert_type(t, "x.dup2", "text/x-second");
}

/* First-wins must hold however many duplicates there are and wherever they hash. */
static void test_first_mapping_wins_many(void **state)
{
        size_t cap = 64 * 1024, o = 0;
        char *data = malloc(cap);
        MimeTable t;

        assert_non_null(data);
        for (int i = 0; i < 300; i++)
                o += (size_t) snprintf(data + o, cap - o, "type/n%03d ext%d shared SHARED%d\n", i, i % 7, i % 3);
        assert_int_equal(mime_table_parse(&t, data, o), 0);

        assert_type(&t, "x.shared", "type/n000");
        for (int k = 0; k < 7; k++) {
                char name[16], type[16];
                snprintf(name, sizeof name, "f.EXT%d", k);
                snprintf(type, sizeof type, "type/n%03d", k);
                assert_type(&t, name, type);
        }
        for (int k = 0; k < 3; k++) {
                char name[16], type[16];
                snprintf(name, sizeof name, "f.shared%d", k);
                snprintf(type, sizeof type, "type/n%03d", k);
                assert_type(&t, name, type);
        }
        assert_int_equal(t.n_entries, 1 + 7 + 3);
        mime_table_done(&t);
        assert_null(t.data);
        assert_null(t.index);
        assert_int_equal(t.n_entries, 0);
        free(data);
}

/* The type comes back as the file spells it; the extension matches in any case, in the file and asked. */
static void test_case(void **state)
{
        static const char text[] = "Text/X-Mixed  MiXeD UPPER\nIMAGE/PNG png\n";
        MimeTable t;

        assert_int_equal(mime_table_parse(&t, text, STRLEN(text)), 0);
        assert_int_equal(t.n_entries, 3);
        assert_type(&t, "a.mixed", "Text/X-Mixed");
        assert_type(&t, "a.MIXED", "Text/X-Mixed");
        assert_type(&t, "a.upper", "Text/X-Mixed");
        assert_type(&t, "a.uPPer", "Text/X-Mixed");
        assert_type(&t, "a.PNG", "IMAGE/PNG");
        /* Only ASCII letters fold: these differ from any extension by a byte. */
        assert_type(&t, "a.mixe\xc4", MIME_DEFAULT_TYPE);
        assert_type(&t, "a.png\t", MIME_DEFAULT_TYPE);
        assert_type(&t, "a.pn", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
}

/* Every extension of a line shares its type, and a type is the same string at every lookup. */
static void test_type_strings_are_stable(void **state)
{
        size_t cap = 64 * 1024, o = 0;
        char *data = malloc(cap);
        const char *first[100];
        MimeTable t;

        assert_non_null(data);
        /* 100 types, more than the first table of handed-out types holds: it grows. */
        for (int i = 0; i < 100; i++)
                o += (size_t) snprintf(data + o, cap - o, "type/t%d a%d b%d\n", i, i, i);
        assert_int_equal(mime_table_parse(&t, data, o), 0);
        assert_int_equal(t.n_entries, 200);
        for (int i = 0; i < 100; i++) {
                char name[16], type[16];
                snprintf(name, sizeof name, "x.a%d", i);
                snprintf(type, sizeof type, "type/t%d", i);
                first[i] = mime_table_lookup(&t, name);
                assert_string_equal(first[i], type);
        }
        for (int i = 0; i < 100; i++) {
                char name[16];
                snprintf(name, sizeof name, "x.B%d", i);
                assert_ptr_equal(mime_table_lookup(&t, name), first[i]);
                snprintf(name, sizeof name, "x.a%d", i);
                assert_ptr_equal(mime_table_lookup(&t, name), first[i]);
        }
        mime_table_done(&t);
        free(data);
}

/* Lines of any length, extensions of any length, and many extensions on one line. */
static void test_long_lines(void **state)
{
        size_t ext_len = 10000, n_exts = 5000, cap = 256 * 1024, o = 0;
        char *data = malloc(cap), *name = malloc(ext_len + 8);
        MimeTable t;

        assert_non_null(data);
        assert_non_null(name);
        o += (size_t) snprintf(data + o, cap - o, "%s", "application/x-long ");
        memset(data + o, 'q', ext_len);
        o += ext_len;
        o += (size_t) snprintf(data + o, cap - o, "%s", " \t short\ntext/x-many");
        for (size_t i = 0; i < n_exts; i++)
                o += (size_t) snprintf(data + o, cap - o, " m%zu", i);
        o += (size_t) snprintf(data + o, cap - o, "%s", "\ntext/plain txt\n");
        assert_true(o < cap);

        assert_int_equal(mime_table_parse(&t, data, o), 0);
        assert_int_equal(t.n_entries, 2 + n_exts + 1);
        strcpy(name, "f.");
        memset(name + 2, 'Q', ext_len);
        name[2 + ext_len] = '\0';
        assert_type(&t, name, "application/x-long");
        name[2 + ext_len - 1] = '\0'; /* one short */
        assert_type(&t, name, MIME_DEFAULT_TYPE);
        assert_type(&t, "f.short", "application/x-long");
        assert_type(&t, "f.m0", "text/x-many");
        assert_type(&t, "f.m4999", "text/x-many");
        assert_type(&t, "f.m5000", MIME_DEFAULT_TYPE);
        assert_type(&t, "f.txt", "text/plain");
        mime_table_done(&t);
        free(name);
        free(data);
}

/* '#' ends a line's meaning wherever it is, even inside a word. */
static void test_comments(void **state)
{
        static const char text[] = "#text/x-commented cmt\n"
                                   "text/x-a#b ab\n"
                                   "text/x-c c1#c2 c3\n"
                                   "  # text/x-d d\n"
                                   "text/x-e e # f\n"
                                   "text/x-g\t#\tg\n";
        MimeTable t;

        assert_int_equal(mime_table_parse(&t, text, STRLEN(text)), 0);
        assert_int_equal(t.n_entries, 2);
        assert_type(&t, "x.cmt", MIME_DEFAULT_TYPE);
        assert_type(&t, "x.ab", MIME_DEFAULT_TYPE); /* the type was "text/x-a", with the rest a comment */
        assert_type(&t, "x.c1", "text/x-c");
        assert_type(&t, "x.c2", MIME_DEFAULT_TYPE);
        assert_type(&t, "x.c3", MIME_DEFAULT_TYPE);
        assert_type(&t, "x.c1#c2", MIME_DEFAULT_TYPE);
        assert_type(&t, "x.d", MIME_DEFAULT_TYPE);
        assert_type(&t, "x.e", "text/x-e");
        assert_type(&t, "x.f", MIME_DEFAULT_TYPE);
        assert_type(&t, "x.g", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
}

/* The text is read as a C string, as when it was one: nothing after a NUL counts. */
static void test_nul_ends_the_text(void **state)
{
        static const char text[] = "text/x-a a\ntext/x-b b\0text/x-c c\n";
        MimeTable t;

        assert_int_equal(mime_table_parse(&t, text, STRLEN(text)), 0);
        assert_int_equal(t.n_entries, 2);
        assert_int_equal(t.size, strlen(text));
        assert_type(&t, "x.b", "text/x-b");
        assert_type(&t, "x.c", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
}

static void test_empty_table(void **state)
{
        const char *data;
        MimeTable t;

        assert_int_equal(mime_table_parse(&t, "", 0), 0);
        assert_int_equal(t.n_entries, 0);
        assert_null(t.index);
        assert_type(&t, "index.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);

        data = "# only comments\n\n   \n\ttext/html\n# text/html html\n";
        assert_int_equal(mime_table_parse(&t, data, strlen(data)), 0);
        assert_int_equal(t.n_entries, 0);
        assert_type(&t, "index.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);

        /* A zeroed table (as left by a failed load) answers the default. */
        t = (MimeTable){};
        assert_type(&t, "index.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
}

#define TEMPLATE "/tmp/drover-test-mime-XXXXXX"

/* A new file in path (sizeof TEMPLATE) with text. */
static void write_file(char *path, const char *text, size_t len)
{
        int fd;

        strcpy(path, TEMPLATE);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        close(fd);
}

static void test_load(void **state)
{
        char path[] = TEMPLATE;
        static const char text[] = "text/html html\napplication/wasm wasm\n";
        MimeTable t;

        write_file(path, text, STRLEN(text));
        int r = mime_table_load(&t, path);
        /* Rewritten in place (truncated) after the load, as an editor may: the table is the worker's own copy,
         * so lookups go on (a mapping of the file would fault here). */
        assert_int_equal(truncate(path, 0), 0);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(t.n_entries, 2);
        assert_non_null(t.owned);
        assert_int_equal(t.size, STRLEN(text));
        assert_type(&t, "a.wasm", "application/wasm");
        assert_type(&t, "a.HTML", "text/html");
        assert_type(&t, "a.css", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
        assert_null(t.owned);
        assert_null(t.data);
}

static void test_load_errors(void **state)
{
        char path[] = TEMPLATE;
        MimeTable t = { .n_entries = 42 };

        /* Missing file. */
        write_file(path, "", 0);
        unlink(path);
        assert_int_equal(mime_table_load(&t, path), -ENOENT);
        /* A directory. */
        assert_int_equal(mime_table_load(&t, "/"), -EISDIR);
        assert_int_equal(t.n_entries, 42); /* untouched on failure */

        /* Too large (sparse: nothing is written). */
        write_file(path, "", 0);
        assert_int_equal(truncate(path, (off_t) MIME_FILE_MAX + 1), 0);
        int r = mime_table_load(&t, path);
        assert_int_equal(r, -EFBIG);
        /* At the limit: read, and empty (all NUL). */
        assert_int_equal(truncate(path, (off_t) MIME_FILE_MAX), 0);
        r = mime_table_load(&t, path);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(t.n_entries, 0);
        mime_table_done(&t);
        assert_int_equal(mime_table_parse(&t, "a/b c", (size_t) MIME_FILE_MAX + 1), 0); /* ends at its NUL */
        mime_table_done(&t);

        /* Empty, and not a regular file: empty tables. */
        write_file(path, "", 0);
        r = mime_table_load(&t, path);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(t.n_entries, 0);
        assert_type(&t, "a.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
        assert_int_equal(mime_table_load(&t, "/dev/null"), 0);
        assert_int_equal(t.n_entries, 0);
        mime_table_done(&t);
}

#define TABLE_TEST(f) cmocka_unit_test_setup_teardown(f, setup_table, teardown_table)

int main(void)
{
        const struct CMUnitTest tests[] = {
                TABLE_TEST(test_parse_entries),
                TABLE_TEST(test_lookup),
                TABLE_TEST(test_lookup_case_insensitive),
                TABLE_TEST(test_lookup_last_extension),
                TABLE_TEST(test_lookup_default),
                TABLE_TEST(test_dotfile),
                TABLE_TEST(test_first_mapping_wins),
                cmocka_unit_test(test_first_mapping_wins_many),
                cmocka_unit_test(test_case),
                cmocka_unit_test(test_type_strings_are_stable),
                cmocka_unit_test(test_long_lines),
                cmocka_unit_test(test_comments),
                cmocka_unit_test(test_nul_ends_the_text),
                cmocka_unit_test(test_empty_table),
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_load_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
