/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "handlers/mime.h"

/*
 * A slot: the offsets of an extension and of its type in the text. Offsets are below MIME_FILE_MAX (24 bits),
 * so the top byte of ext holds 8 more bits of the extension's hash: most probes of other extensions end
 * there, without reading the text. ext == 0 is an empty slot: no extension starts the text (its type comes
 * first).
 */
typedef struct MimeSlot {
        uint32_t ext;
        uint32_t type;
} MimeSlot;

#define OFFSET_BITS 24
#define OFFSET_MASK ((1U << OFFSET_BITS) - 1)

/* A type handed out by a lookup: the NUL-terminated copy of the word at offset type. */
typedef struct MimeType {
        uint32_t type;
        char *s;
} MimeType;

struct MimeIndex {
        size_t mask; /* slots - 1 */
        /* The types handed out so far, open addressing on the offset; types_mask + 1 slots, at most half full. */
        MimeType *types;
        size_t types_mask;
        size_t n_types;
        MimeSlot slots[];
};

/* The bytes between words; a word also ends at the end of a line, at a comment, or at the end of the text. */
static const bool blank[256] = { [' '] = true, ['\t'] = true, ['\r'] = true };
static const bool ends_word_char[256] = { [' '] = true, ['\t'] = true, ['\r'] = true, ['\n'] = true, ['#'] = true };

static bool ends_word(const char *d, size_t size, size_t i)
{
        return i >= size || ends_word_char[(unsigned char) d[i]];
}

static size_t word_end(const char *d, size_t size, size_t i)
{
        while (!ends_word(d, size, i))
                i++;
        return i;
}

/* ASCII only, as strcasecmp() in the C locale. */
static unsigned char fold(char c)
{
        return c >= 'A' && c <= 'Z' ? (unsigned char) (c - 'A' + 'a') : (unsigned char) c;
}

/* FNV-1a of the folded bytes. */
static uint32_t hash_folded(const char *s, size_t n)
{
        uint32_t h = 2166136261U;
        for (size_t i = 0; i < n; i++)
                h = (h ^ fold(s[i])) * 16777619U;
        return h;
}

static uint32_t tag_of(uint32_t h)
{
        return h & ~OFFSET_MASK;
}

/* Whether the word at off of the text is key (klen bytes), ignoring case. */
static bool word_equals(const char *d, size_t size, size_t off, const char *key, size_t klen)
{
        for (size_t j = 0; j < klen; j++)
                if (ends_word(d, size, off + j) || fold(d[off + j]) != fold(key[j]))
                        return false;
        return ends_word(d, size, off + klen);
}

static MimeSlot *index_find(const MimeIndex *x, const char *d, size_t size, const char *key, size_t klen,
                            uint32_t h)
{
        for (size_t i = h & x->mask;; i = (i + 1) & x->mask) {
                const MimeSlot *s = &x->slots[i];
                if (s->ext == 0 ||
                    (tag_of(s->ext) == tag_of(h) && word_equals(d, size, s->ext & OFFSET_MASK, key, klen)))
                        return (MimeSlot *) s;
        }
}

static MimeIndex *index_new(size_t slots)
{
        MimeIndex *x = calloc(1, sizeof *x + slots * sizeof(MimeSlot));
        if (x)
                x->mask = slots - 1;
        return x;
}

/* At most 80% full: a few probes per lookup. */
static bool index_full(const MimeIndex *x, size_t n)
{
        return 5 * (n + 1) > 4 * (x->mask + 1);
}

/* Twice the slots, the entries hashed again from the text. */
static int index_grow(MimeIndex **px, const char *d, size_t size)
{
        MimeIndex *old = *px, *x = index_new(2 * (old->mask + 1));

        if (!x)
                return -ENOMEM;
        for (size_t i = 0; i <= old->mask; i++) {
                MimeSlot s = old->slots[i];
                if (s.ext == 0)
                        continue;
                size_t off = s.ext & OFFSET_MASK, len = word_end(d, size, off) - off;
                uint32_t h = hash_folded(d + off, len);
                *index_find(x, d, size, d + off, len, h) = s;
        }
        free(old);
        *px = x;
        return 0;
}

int mime_table_parse(MimeTable *t, const char *data, size_t size)
{
        const char *p = data, *end;
        MimeIndex *x = NULL;
        size_t n = 0, slots = 8;

        /* As a C string: the text ends at a NUL. */
        size = strnlen(data, size);
        if (size > MIME_FILE_MAX)
                return -EFBIG;
        end = data + size;

        /* Sized for one extension per 48 bytes of text, as in Debian's file (~1,530 in 74 KiB, 2,048 slots);
         * a denser text makes the table grow. */
        while (slots < size / 48 + size / 192)
                slots *= 2;

        /* Line by line: memchr() finds the line's end and its comment, so that the words are split on blanks
         * alone. */
        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p)) ?: end;
                const char *stop = memchr(p, '#', (size_t) (eol - p)) ?: eol;
                const char *next = eol < end ? eol + 1 : end, *type;

                while (p < stop && blank[(unsigned char) *p])
                        p++;
                type = p;
                while (p < stop && !blank[(unsigned char) *p])
                        p++;
                if (!memchr(type, '/', (size_t) (p - type))) {
                        p = next;
                        continue;
                }
                for (;;) {
                        const char *ext;
                        MimeSlot *s;
                        uint32_t h;

                        while (p < stop && blank[(unsigned char) *p])
                                p++;
                        if (p == stop)
                                break;
                        ext = p;
                        while (p < stop && !blank[(unsigned char) *p])
                                p++;
                        if (!x)
                                x = index_new(slots);
                        else if (index_full(x, n) && index_grow(&x, data, size) < 0) {
                                free(x);
                                x = NULL;
                        }
                        if (!x)
                                return -ENOMEM;
                        /* Only the first mapping of an extension goes in. */
                        h = hash_folded(ext, (size_t) (p - ext));
                        s = index_find(x, data, size, ext, (size_t) (p - ext), h);
                        if (s->ext == 0) {
                                *s = (MimeSlot){ .ext = tag_of(h) | (uint32_t) (ext - data),
                                                 .type = (uint32_t) (type - data) };
                                n++;
                        }
                }
                p = next;
        }
        *t = (MimeTable){ .data = data, .size = size, .n_entries = n, .index = x };
        return 0;
}

int mime_table_load(MimeTable *t, const char *path)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (st.st_size > (off_t) MIME_FILE_MAX)
                return -EFBIG;
        if (!S_ISREG(st.st_mode) || st.st_size == 0) {
                *t = (MimeTable){};
                return 0;
        }
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        /* Up to the size fstat() saw: a file growing meanwhile is read as it was. */
        while (size < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + size, (size_t) st.st_size - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        r = mime_table_parse(t, buf, size);
        if (r < 0)
                return r;
        t->owned = TAKE_PTR(buf);
        return 0;
}

void mime_table_done(MimeTable *t)
{
        if (t->index) {
                for (size_t i = 0; t->index->types && i <= t->index->types_mask; i++)
                        free(t->index->types[i].s);
                free(t->index->types);
                free(t->index);
        }
        free(t->owned);
        *t = (MimeTable){};
}

static size_t type_slot(uint32_t type, size_t mask)
{
        return (type * 2654435761U) & mask;
}

/* The NUL-terminated copy of the type at offset type, made on first use; NULL if out of memory. */
static const char *type_string(const MimeTable *t, uint32_t type)
{
        MimeIndex *x = t->index;
        size_t i;

        for (i = x->types ? type_slot(type, x->types_mask) : 0; x->types && x->types[i].s;
             i = (i + 1) & x->types_mask)
                if (x->types[i].type == type)
                        return x->types[i].s;

        if (!x->types || 2 * (x->n_types + 1) > x->types_mask + 1) {
                size_t cap = x->types ? 2 * (x->types_mask + 1) : 16;
                MimeType *types = calloc(cap, sizeof *types);
                if (!types)
                        return NULL;
                for (size_t k = 0; x->types && k <= x->types_mask; k++) {
                        if (!x->types[k].s)
                                continue;
                        size_t j = type_slot(x->types[k].type, cap - 1);
                        while (types[j].s)
                                j = (j + 1) & (cap - 1);
                        types[j] = x->types[k];
                }
                free(x->types);
                x->types = types;
                x->types_mask = cap - 1;
                for (i = type_slot(type, x->types_mask); x->types[i].s; i = (i + 1) & x->types_mask)
                        ;
        }

        /* Not strndup(): the text need not be NUL-terminated, and the word's length is known. */
        size_t len = word_end(t->data, t->size, type) - type;
        char *s = malloc(len + 1);
        if (!s)
                return NULL;
        memcpy(s, t->data + type, len);
        s[len] = '\0';
        x->types[i] = (MimeType){ .type = type, .s = s };
        x->n_types++;
        return s;
}

const char *mime_table_lookup(const MimeTable *t, const char *filename)
{
        const char *slash = strrchr(filename, '/');
        const char *dot = strrchr(slash ? slash + 1 : filename, '.');
        const MimeSlot *s;
        size_t klen;

        if (!dot || !dot[1] || !t->index)
                return MIME_DEFAULT_TYPE;
        klen = strlen(dot + 1);
        s = index_find(t->index, t->data, t->size, dot + 1, klen, hash_folded(dot + 1, klen));
        if (s->ext == 0)
                return MIME_DEFAULT_TYPE;
        return type_string(t, s->type) ?: MIME_DEFAULT_TYPE;
}
