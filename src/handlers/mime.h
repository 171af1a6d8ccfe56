/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Extension → media type, from a file in /etc/mime.types format (Debian's media-types package). */
typedef struct MimeEntry {
        const char *ext;
        const char *type;
} MimeEntry;

typedef struct MimeTable {
        char *data; /* the file's text, NUL-terminated in place; entries point into it */
        MimeEntry *entries;
        size_t n_entries;
} MimeTable;

#define MIME_DEFAULT_TYPE "application/octet-stream"

/* Pure: on success takes ownership of data (malloc'd, NUL-terminated); on failure (-ENOMEM) the caller
 * keeps it. */
int mime_table_parse(MimeTable *t, char *data);
int mime_table_load(MimeTable *t, const char *path);
void mime_table_done(MimeTable *t);
/* The type for a file name (by its last extension, case-insensitive); the default type if unknown. */
const char *mime_table_lookup(const MimeTable *t, const char *filename);
