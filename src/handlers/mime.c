/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/macro.h"
#include "handlers/mime.h"

static int entry_cmp(const void *a, const void *b)
{
        return strcasecmp(((const MimeEntry *) a)->ext, ((const MimeEntry *) b)->ext);
}

int mime_table_parse(MimeTable *t, char *data)
{
        MimeEntry *entries = NULL;
        size_t n = 0, cap = 0;
        char *save_line = NULL;

        for (char *line = strtok_r(data, "\n", &save_line); line; line = strtok_r(NULL, "\n", &save_line)) {
                char *save_word = NULL, *type;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                type = strtok_r(line, " \t\r", &save_word);
                if (!type || !strchr(type, '/'))
                        continue;
                for (char *ext; (ext = strtok_r(NULL, " \t\r", &save_word));) {
                        if (n == cap) {
                                size_t ncap = cap ? cap * 2 : 512;
                                MimeEntry *e = realloc(entries, ncap * sizeof *e);
                                if (!e) {
                                        free(entries);
                                        return -ENOMEM;
                                }
                                entries = e;
                                cap = ncap;
                        }
                        entries[n++] = (MimeEntry){ ext, type };
                }
        }

        /* Stable order for duplicates: the first mapping of an extension in the file wins (mergesort-like
         * behaviour is not guaranteed by qsort, so keep the entry with the lower address on ties). */
        if (n > 0)
                qsort(entries, n, sizeof *entries, entry_cmp);
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
                if (w > 0 && strcasecmp(entries[w - 1].ext, entries[i].ext) == 0) {
                        if (entries[i].type < entries[w - 1].type)
                                entries[w - 1] = entries[i];
                        continue;
                }
                entries[w++] = entries[i];
        }

        *t = (MimeTable){ .data = data, .entries = entries, .n_entries = w };
        return 0;
}

int mime_table_load(MimeTable *t, const char *path)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t off = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size > 16 * 1024 * 1024)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (off < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + off, (size_t) st.st_size - off);
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                off += (size_t) k;
        }
        buf[off] = '\0';

        int r = mime_table_parse(t, buf);
        if (r < 0)
                return r;
        TAKE_PTR(buf);
        return 0;
}

void mime_table_done(MimeTable *t)
{
        free(t->entries);
        free(t->data);
        *t = (MimeTable){};
}

const char *mime_table_lookup(const MimeTable *t, const char *filename)
{
        const char *slash = strrchr(filename, '/');
        const char *dot = strrchr(slash ? slash + 1 : filename, '.');
        if (!dot || !dot[1] || t->n_entries == 0)
                return MIME_DEFAULT_TYPE;

        MimeEntry key = { .ext = dot + 1 };
        const MimeEntry *e = bsearch(&key, t->entries, t->n_entries, sizeof key, entry_cmp);
        return e ? e->type : MIME_DEFAULT_TYPE;
}
