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
        char *data = strdup(sample);

        if (!t || !data) {
                free(t);
                free(data);
                return -1;
        }
        if (mime_table_parse(t, data) < 0) {
                free(t);
                free(data);
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
        assert_non_null(t->data);
        assert_non_null(t->entries);

        /* Sorted, case-insensitively, without duplicates. */
        for (size_t i = 1; i < t->n_entries; i++)
                assert_true(strcasecmp(t->entries[i - 1].ext, t->entries[i].ext) < 0);
        /* Entries point into the data. */
        for (size_t i = 0; i < t->n_entries; i++) {
                assert_true(t->entries[i].ext >= t->data);
                assert_true(t->entries[i].type >= t->data);
                assert_true(strchr(t->entries[i].type, '/') != NULL);
        }
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

/* First-wins must hold however many duplicates there are and wherever qsort() puts them. */
static void test_first_mapping_wins_many(void **state)
{
        size_t cap = 64 * 1024, o = 0;
        char *data = malloc(cap);
        MimeTable t;

        assert_non_null(data);
        for (int i = 0; i < 300; i++)
                o += (size_t) snprintf(data + o, cap - o, "type/n%03d ext%d shared SHARED%d\n", i, i % 7, i % 3);
        assert_int_equal(mime_table_parse(&t, data), 0);

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
        assert_null(t.entries);
        assert_int_equal(t.n_entries, 0);
}

static void test_empty_table(void **state)
{
        MimeTable t;
        char *data;

        data = strdup("");
        assert_non_null(data);
        assert_int_equal(mime_table_parse(&t, data), 0);
        assert_int_equal(t.n_entries, 0);
        assert_type(&t, "index.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);

        data = strdup("# only comments\n\n   \n\ttext/html\n");
        assert_non_null(data);
        assert_int_equal(mime_table_parse(&t, data), 0);
        assert_int_equal(t.n_entries, 0);
        assert_type(&t, "index.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);

        /* A zeroed table (as left by a failed load) answers the default. */
        t = (MimeTable){};
        assert_type(&t, "index.html", MIME_DEFAULT_TYPE);
        mime_table_done(&t);
}

static void test_load(void **state)
{
        char path[] = "/tmp/drover-test-mime-XXXXXX";
        MimeTable t;
        int fd;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        static const char text[] = "text/html html\napplication/wasm wasm\n";
        assert_int_equal(write(fd, text, STRLEN(text)), STRLEN(text));
        close(fd);

        int r = mime_table_load(&t, path);
        unlink(path);
        assert_int_equal(r, 0);
        assert_int_equal(t.n_entries, 2);
        assert_type(&t, "a.wasm", "application/wasm");
        assert_type(&t, "a.HTML", "text/html");
        assert_type(&t, "a.css", MIME_DEFAULT_TYPE);
        mime_table_done(&t);

        /* Missing file. */
        assert_int_equal(mime_table_load(&t, path), -ENOENT);
        /* A directory. */
        assert_int_equal(mime_table_load(&t, "/"), -EISDIR);
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
                cmocka_unit_test(test_empty_table),
                cmocka_unit_test(test_load),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
