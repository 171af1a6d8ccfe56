/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * Extension → media type, from a file in /etc/mime.types format (Debian's media-types package): a type and its
 * extensions on a line, separated by blanks (space, tab, CR); '#' starts a comment to the end of the line; a
 * line whose first word has no '/' says nothing. The first mapping of an extension wins; lookups ignore ASCII
 * case.
 *
 * Every worker loads the table at start-up, so it is lean: the file is read once into one buffer and indexed
 * in one pass by an open-addressing hash table whose 8-byte slots are offsets into the text, sized from the file's length (16 KiB for Debian's): no
 * allocation or copy per entry, no sort. A type is copied out, NUL-terminated, the first time a lookup returns
 * it: a worker keeps only the few types it serves.
 */

typedef struct MimeIndex MimeIndex;

typedef struct MimeTable {
        const char *data; /* the text, not NUL-terminated */
        size_t size;
        char *owned;      /* the buffer mime_table_load() read the file into, freed by mime_table_done() */
        size_t n_entries; /* distinct extensions */
        MimeIndex *index; /* NULL without entries */
} MimeTable;

#define MIME_DEFAULT_TYPE "application/octet-stream"
/* Offsets into the text are 24 bits in the index. */
#define MIME_FILE_MAX (16U * 1024U * 1024U)

/* Pure: indexes size bytes of data (up to the first NUL, if any), which it borrows: data must outlive the
 * table. -ENOMEM, or -EFBIG beyond MIME_FILE_MAX. */
int mime_table_parse(MimeTable *t, const char *data, size_t size);
/* Reads and indexes the file: -errno of open() or read(), -EISDIR, -EFBIG, -ENOMEM. A file that is not a
 * regular one (or is empty) gives an empty table. The text is a private copy, not a mapping: mapping it would
 * save a few pages, but a file rewritten in place (an editor, `cat >`) would then fault every worker on its
 * next lookup. */
int mime_table_load(MimeTable *t, const char *path);
void mime_table_done(MimeTable *t);
/* The type for a file name (by its last extension, case-insensitive); the default type if unknown. Not
 * thread-safe: it may copy the type out on its first use (and answers the default type if that allocation
 * fails). The string lives as long as the table. */
const char *mime_table_lookup(const MimeTable *t, const char *filename);
