/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/macro.h"
#include "proto/http.h"

/* Leading empty lines before a request line that are skipped (RFC 9112 2.2 asks for at least one; some
 * clients send one after a body); more are an attack on the idle timeout, not a client. */
#define HTTP_EMPTY_LINES_MAX 8U
/* A chunk-size line with its extensions; nobody sends long ones. */
#define HTTP_CHUNK_LINE_MAX 4096U
/* What the library may see of a head: our limits at their caps, and slack for the method, the version and
 * skipped empty lines. Our scanner enforces the real limits before the library sees a byte. */
#define HTTP_PARSER_HEAD_MAX (HTTP_URL_MAX_CAP + HTTP_HEADER_BYTES_MAX_CAP + 65536U)

int http_limits_check(const HttpLimits *l)
{
        if (l->url_max == 0 || l->url_max > HTTP_URL_MAX_CAP)
                return -EINVAL;
        if (l->header_bytes_max == 0 || l->header_bytes_max > HTTP_HEADER_BYTES_MAX_CAP)
                return -EINVAL;
        if (l->headers_max == 0 || l->headers_max > HTTP_HEADERS_MAX_CAP)
                return -EINVAL;
        if (l->body_max == 0 || l->body_max > HTTP_BODY_MAX_CAP)
                return -EINVAL;
        return 0;
}

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
        /* A table: this runs for every byte of every method and field name. */
        static const bool tchar[256] = {
                ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true, ['!'] = true, ['#'] = true,
                ['$'] = true,         ['%'] = true,         ['&'] = true,         ['\''] = true, ['*'] = true,
                ['+'] = true,         ['-'] = true,         ['.'] = true,         ['^'] = true,  ['_'] = true,
                ['`'] = true,         ['|'] = true,         ['~'] = true,
        };
        return tchar[c];
}

/* Field-value characters (RFC 9110 5.5): VCHAR, obs-text, SP, HTAB. */
static bool is_field_char(unsigned char c)
{
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Whether all 8 bytes of x are at least 0x20 and none is 0x7f: the bytes every field value is made of but
 * for HTAB, which takes the byte-by-byte path. (The classic exact tests for "some byte is less than n" and
 * "some byte is zero", n <= 128; obs-text bytes, 0x80 and above, pass both.) */
static bool word_is_plain(uint64_t x)
{
        const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
        uint64_t del = x ^ (ones * 0x7f);
        return !(((x - ones * 0x20) & ~x & highs) | ((del - ones) & ~del & highs));
}

static int unhex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* ---- our own framing scanner ---------------------------------------------------------------------------
 *
 * http-parser built without HTTP_PARSER_STRICT (as Debian builds it) accepts a bare CR as a line end and any
 * byte after a CR, takes obs-fold, accepts any two bytes after chunk data as its CRLF, swallows an LF inside
 * a chunk extension, and takes SP, HTAB and FF in places RFC 9112 does not. Each of those is a way for a
 * proxy in front of us and us to disagree on where a request ends. So every byte that is not body data first
 * goes through this scanner, which knows the grammar of RFC 9112 for the request line, the field lines, the
 * chunk framing and the trailers, and stops at the first byte that does not fit. It stops too right after
 * the empty line that ends the head (and the trailers), where the library must have reached the same point;
 * a Content-Length body is left to the library, which counts it exactly.
 */

enum {
        FR_LEAD, /* before the request line: empty lines are skipped */
        FR_LEAD_CR,
        FR_METHOD,
        FR_TARGET_START,
        FR_TARGET,
        FR_VERSION, /* matching "HTTP/d.d"; pos is the index */
        FR_LINE_CR, /* the CR after the version */
        FR_FIELD_START,
        FR_FIELD_NAME,
        FR_FIELD_VALUE,
        FR_FIELD_CR,
        FR_END_CR,    /* the CR of the empty line */
        FR_HEAD_DONE, /* after the head: the caller decides what follows */
        FR_BODY,      /* no body or a Content-Length one: the library frames it */
        FR_CHUNK_SIZE_START,
        FR_CHUNK_SIZE,
        FR_CHUNK_BWS,
        FR_CHUNK_EXT,
        FR_CHUNK_SIZE_CR,
        FR_CHUNK_DATA,
        FR_CHUNK_DATA_CR,
        FR_CHUNK_DATA_LF,
        FR_TRAILER_START,
        FR_TRAILER_NAME,
        FR_TRAILER_VALUE,
        FR_TRAILER_CR,
        FR_TRAILER_END_CR,
        FR_DONE, /* after the trailers */
};

static bool is_target_char(unsigned char c)
{
        return c > ' ' && c != 0x7f;
}

/* The run of bytes after data[i] (which was just accepted) for which ok() holds, as long as counting them
 * keeps *count within max: how many to skip. They are exactly the bytes the state machine would accept one
 * at a time, in the same state, counting each; where the run would cross max it is not taken at all, and
 * the byte-by-byte path finds the exact byte that crosses it. */
static size_t scan_run(const char *data, size_t i, size_t len, bool (*ok)(unsigned char), size_t *count,
                       size_t max)
{
        size_t j = i + 1;

        while (j < len && ok((unsigned char) data[j]))
                j++;
        size_t n = j - i - 1;
        if (n > max - MIN(*count, max))
                return 0;
        *count += n;
        return n;
}

/* The end of the run of field-value bytes that starts at data[j]: eight at a time where none is HTAB or a
 * control (the run of a Host or User-Agent value is most of a request's head). */
static size_t field_run_end(const char *data, size_t j, size_t len)
{
        for (; j + 8 <= len; j += 8) {
                uint64_t x;
                memcpy(&x, data + j, 8);
                if (!word_is_plain(x))
                        break;
        }
        while (j < len && is_field_char((unsigned char) data[j]))
                j++;
        return j;
}

/* scan_run() for field-value bytes: the same bytes, the same count. */
static size_t scan_value_run(const char *data, size_t i, size_t len, size_t *count, size_t max)
{
        size_t j = field_run_end(data, i + 1, len);
        size_t n = j - i - 1;
        if (n > max - MIN(*count, max))
                return 0;
        *count += n;
        return n;
}

static int arena_grow(HttpRequest *r, size_t len, unsigned status_if_full);

/* Appends a piece of the URL, a field name or a value to the arena. Pieces of one element arrive in order
 * and uninterrupted, so appending keeps each element contiguous. The arena grows (doubling) up to arena_max,
 * which the limits bound; elements are kept as offsets, so moving it invalidates nothing. The limits
 * themselves are enforced where they were before the arena could grow (on_url(), the scanner's field_bytes
 * and fields): arena_max is only the last line of defence. Inlined: it runs for the target and every
 * name and value, and growing is the rare part. */
static inline __attribute__((always_inline)) int arena_append(HttpRequest *r, const char *at, size_t len,
                                                              unsigned status_if_full)
{
        if (len > r->arena_size - r->arena_used && arena_grow(r, len, status_if_full) < 0)
                return -1;
        memcpy(r->arena + r->arena_used, at, len);
        r->arena_used += len;
        return 0;
}

static int headers_grow(HttpRequest *r);

/* The whole head of a request in data, in the form nearly every client sends it: a method, SP, a target, SP,
 * "HTTP/d.d", CRLF, field lines "name:value" ending in CRLF, and the empty line. This takes a line at a time
 * what framing_scan()'s state machine takes a byte at a time, and must stay exactly a shortcut of it:
 *   - it succeeds only where the state machine, started in FR_LEAD on the same bytes, would reach FR_HEAD_DONE
 *     at the same LF: the same grammar, every byte checked, and the same limits — the counts only grow, so a
 *     total within a limit at the end of each line never crossed it at any byte;
 *   - it then leaves the framing exactly as the state machine would (FR_HEAD_DONE, pos 8, the target length
 *     in line_bytes, field_bytes, fields) and returns the bytes up to and including that LF;
 *   - for anything else — a byte the grammar refuses, a limit crossed, a bare LF, an empty line before the
 *     request line, a head that data does not hold whole — it returns 0 having changed nothing, and the state
 *     machine takes the bytes from the start, finding the exact byte and status.
 * The fuzzers hold the two to it: every input runs in one feed (this path) and cut (mostly the other). */
static size_t framing_scan_head(HttpRequest *r, const char *data, size_t len)
{
        const HttpLimits *l = &r->limits;
        size_t i = 0, start, target, field_bytes = 0;
        unsigned fields = 0;

        while (i < len && is_tchar((unsigned char) data[i]))
                i++;
        if (i == 0 || i == len || data[i] != ' ')
                return 0;
        start = ++i;
        while (i < len && is_target_char((unsigned char) data[i]))
                i++;
        target = i - start;
        if (target == 0 || target > l->url_max || len - i < 11 || memcmp(data + i, " HTTP/", 6) != 0 ||
            data[i + 6] < '0' || data[i + 6] > '9' || data[i + 7] != '.' || data[i + 8] < '0' || data[i + 8] > '9' ||
            data[i + 9] != '\r' || data[i + 10] != '\n')
                return 0;
        /* What the library's data callbacks would store (see settings_recorded), stored here as the lines are
         * scanned; undone if the shortcut is not taken. At FR_LEAD nothing of the request is stored yet. */
        if (arena_append(r, data + start, target, 414) < 0)
                goto undo;
        r->url_len = (uint32_t) target;
        i += 11;

        for (;;) {
                if (len - i < 2)
                        goto undo;
                if (data[i] == '\r') {
                        if (data[i + 1] != '\n' || (field_bytes += 2) > l->header_bytes_max)
                                goto undo;
                        break;
                }
                start = i;
                while (i < len && is_tchar((unsigned char) data[i]))
                        i++;
                size_t colon = i;
                if (i == start || i == len || data[i] != ':')
                        goto undo;
                i = field_run_end(data, i + 1, len);
                if (len - i < 2 || data[i] != '\r' || data[i + 1] != '\n')
                        goto undo;
                /* The value without the whitespace around it (RFC 9110 5.5), as the library hands it over
                 * without the leading and finish_value() drops the trailing. */
                size_t value = colon + 1, line_end = i, value_end;
                while (value < line_end && (data[value] == ' ' || data[value] == '\t'))
                        value++;
                value_end = line_end;
                while (value_end > value && (data[value_end - 1] == ' ' || data[value_end - 1] == '\t'))
                        value_end--;
                i += 2;
                field_bytes += i - start;
                if (++fields > l->headers_max || field_bytes > l->header_bytes_max)
                        goto undo;
                if (r->n_headers == r->headers_cap && headers_grow(r) < 0)
                        goto undo;
                /* Name and value apart, the value with its trailing whitespace, as the callbacks store them:
                 * the arena holds exactly what it would. */
                uint32_t name_off = (uint32_t) r->arena_used;
                if (arena_append(r, data + start, colon - start, 431) < 0)
                        goto undo;
                uint32_t value_off = (uint32_t) r->arena_used;
                if (arena_append(r, data + value, line_end - value, 431) < 0)
                        goto undo;
                r->headers[r->n_headers++] = (HttpHeader){
                        .name_off = name_off,
                        .name_len = (uint32_t) (colon - start),
                        .value_off = value_off,
                        .value_len = (uint32_t) (value_end - value),
                };
        }

        r->framing.state = FR_HEAD_DONE;
        r->framing.pos = 8;
        r->framing.line_bytes = target;
        r->framing.field_bytes = field_bytes;
        r->framing.fields = fields;
        return i + 2;

undo:
        /* Only an allocation can have failed in what was stored: the state machine meets it again. */
        r->url_len = 0;
        r->n_headers = 0;
        r->arena_used = 0;
        r->error_status = 0;
        return 0;
}

/* Scans bytes ahead of the library. Returns how many may be given to it: all of them, or up to (not
 * including) a byte that breaks the grammar, setting *ret_status, or up to and including the LF of the empty
 * line that ends the head or the trailers. */
static size_t framing_scan(HttpRequest *r, const char *data, size_t len, unsigned *ret_status,
                           bool *ret_recorded)
{
        static const char version[] = "HTTP/d.d";
        HttpFraming *f = &r->framing;
        const HttpLimits *l = &r->limits;
        unsigned status = 0;
        size_t i;

        *ret_status = 0;
        *ret_recorded = false;
        if (f->state == FR_LEAD) {
                size_t k = framing_scan_head(r, data, len);
                if (k > 0) {
                        *ret_recorded = true;
                        return k;
                }
        }
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char) data[i];

                switch (f->state) {
                case FR_FIELD_START ... FR_END_CR:
                case FR_TRAILER_START ... FR_TRAILER_END_CR:
                        if (++f->field_bytes > l->header_bytes_max) {
                                status = 431;
                                goto fail;
                        }
                        break;
                default:
                        break;
                }

                switch (f->state) {
                case FR_LEAD:
                        if (c == '\r') {
                                f->state = FR_LEAD_CR;
                                break;
                        }
                        if (c == '\n') {
                                if (++f->empty_lines > HTTP_EMPTY_LINES_MAX)
                                        goto bad;
                                break;
                        }
                        /* Not even a method: the library would say 400 too, but one byte later. */
                        if (!is_tchar(c))
                                goto bad;
                        f->state = FR_METHOD;
                        /* The rest of the method in one step: the same bytes FR_METHOD would take. */
                        while (i + 1 < len && is_tchar((unsigned char) data[i + 1]))
                                i++;
                        break;
                case FR_LEAD_CR:
                        if (c != '\n' || ++f->empty_lines > HTTP_EMPTY_LINES_MAX)
                                goto bad;
                        f->state = FR_LEAD;
                        break;

                case FR_METHOD:
                        /* One SP between the parts of the request line, never more, never HTAB. */
                        if (c == ' ')
                                f->state = FR_TARGET_START;
                        else if (!is_tchar(c))
                                goto bad;
                        break;
                case FR_TARGET_START:
                case FR_TARGET:
                        if (c == ' ' && f->state == FR_TARGET) {
                                f->state = FR_VERSION;
                                f->pos = 0;
                                break;
                        }
                        /* The library takes HTAB and FF in a target; whitespace and controls end it here. */
                        if (c <= ' ' || c == 0x7f)
                                goto bad;
                        if (++f->line_bytes > l->url_max) {
                                status = 414;
                                goto fail;
                        }
                        f->state = FR_TARGET;
                        i += scan_run(data, i, len, is_target_char, &f->line_bytes, l->url_max);
                        break;
                case FR_VERSION:
                        if (f->pos == 8) {
                                /* A bare LF ends a line as well (RFC 9112 2.2), as in the library. */
                                if (c == '\r')
                                        f->state = FR_LINE_CR;
                                else if (c == '\n')
                                        f->state = FR_FIELD_START;
                                else
                                        goto bad;
                                break;
                        }
                        /* All of "HTTP/d.d" at once when it is there and right; else byte by byte, which
                         * finds the first byte that is wrong. */
                        if (f->pos == 0 && len - i >= 8 && memcmp(data + i, "HTTP/", 5) == 0 &&
                            data[i + 5] >= '0' && data[i + 5] <= '9' && data[i + 6] == '.' &&
                            data[i + 7] >= '0' && data[i + 7] <= '9') {
                                f->pos = 8;
                                i += 7;
                                break;
                        }
                        if (version[f->pos] == 'd' ? !(c >= '0' && c <= '9')
                                                   : c != (unsigned char) version[f->pos])
                                goto bad;
                        f->pos++;
                        break;
                case FR_LINE_CR:
                        if (c != '\n')
                                goto bad;
                        f->state = FR_FIELD_START;
                        break;

                case FR_FIELD_START:
                case FR_TRAILER_START:
                        if (c == '\r') {
                                f->state = f->state == FR_FIELD_START ? FR_END_CR : FR_TRAILER_END_CR;
                                break;
                        }
                        if (c == '\n')
                                goto end_of_section;
                        /* SP or HTAB here is obs-fold, or whitespace before the first field line: RFC 9112
                         * 5.2 and 2.2 let a server reject both, and a proxy may have read either as part of
                         * another line. A field name is a token. */
                        if (!is_tchar(c))
                                goto bad;
                        if (++f->fields > l->headers_max) {
                                status = 431;
                                goto fail;
                        }
                        f->state = f->state == FR_FIELD_START ? FR_FIELD_NAME : FR_TRAILER_NAME;
                        break;
                case FR_FIELD_NAME:
                case FR_TRAILER_NAME:
                        /* Also whitespace before the colon: RFC 9112 5.1 says MUST reject. */
                        if (c == ':')
                                f->state = f->state == FR_FIELD_NAME ? FR_FIELD_VALUE : FR_TRAILER_VALUE;
                        else if (!is_tchar(c))
                                goto bad;
                        else
                                i += scan_run(data, i, len, is_tchar, &f->field_bytes, l->header_bytes_max);
                        break;
                case FR_FIELD_VALUE:
                case FR_TRAILER_VALUE:
                        if (c == '\r')
                                f->state = f->state == FR_FIELD_VALUE ? FR_FIELD_CR : FR_TRAILER_CR;
                        else if (c == '\n')
                                f->state = f->state == FR_FIELD_VALUE ? FR_FIELD_START : FR_TRAILER_START;
                        else if (!is_field_char(c)) /* NUL, and controls other than HTAB */
                                goto bad;
                        else
                                i += scan_value_run(data, i, len, &f->field_bytes, l->header_bytes_max);
                        break;
                case FR_FIELD_CR:
                case FR_TRAILER_CR:
                        if (c != '\n')
                                goto bad;
                        f->state = f->state == FR_FIELD_CR ? FR_FIELD_START : FR_TRAILER_START;
                        break;
                case FR_END_CR:
                case FR_TRAILER_END_CR:
                        if (c != '\n')
                                goto bad;
                        goto end_of_section;

                case FR_BODY:
                        return len;

                case FR_CHUNK_SIZE_START: {
                        int h = unhex((char) c);
                        if (h < 0)
                                goto bad;
                        f->chunk_size = (uint64_t) h;
                        f->line_bytes = 1;
                        f->state = FR_CHUNK_SIZE;
                        goto check_chunk_size;
                }
                case FR_CHUNK_SIZE: {
                        int h = unhex((char) c);
                        if (++f->line_bytes > HTTP_CHUNK_LINE_MAX)
                                goto bad;
                        if (h >= 0) {
                                /* chunk_size <= body_max <= 2^40 before this: no overflow. */
                                f->chunk_size = f->chunk_size * 16 + (uint64_t) h;
                                goto check_chunk_size;
                        }
                        if (c == '\r')
                                f->state = FR_CHUNK_SIZE_CR;
                        else if (c == ';')
                                f->state = FR_CHUNK_EXT;
                        else if (c == ' ' || c == '\t')
                                f->state = FR_CHUNK_BWS;
                        else
                                goto bad;
                        break;
                }
                check_chunk_size:
                        /* Before any of the chunk arrives: a client announcing too much learns at once. */
                        if (f->chunk_size > l->body_max - f->chunk_total) {
                                status = 413;
                                goto fail;
                        }
                        break;
                case FR_CHUNK_BWS:
                        /* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) */
                        if (++f->line_bytes > HTTP_CHUNK_LINE_MAX)
                                goto bad;
                        if (c == ';')
                                f->state = FR_CHUNK_EXT;
                        else if (c != ' ' && c != '\t')
                                goto bad;
                        break;
                case FR_CHUNK_EXT:
                        /* Extensions are ignored, but no LF or control may hide in them. */
                        if (++f->line_bytes > HTTP_CHUNK_LINE_MAX)
                                goto bad;
                        if (c == '\r')
                                f->state = FR_CHUNK_SIZE_CR;
                        else if (!is_field_char(c))
                                goto bad;
                        break;
                case FR_CHUNK_SIZE_CR:
                        if (c != '\n')
                                goto bad;
                        f->chunk_total += f->chunk_size;
                        f->state = f->chunk_size == 0 ? FR_TRAILER_START : FR_CHUNK_DATA;
                        break;
                case FR_CHUNK_DATA: {
                        size_t n = (size_t) MIN(f->chunk_size, (uint64_t) (len - i));
                        f->chunk_size -= n;
                        i += n - 1;
                        if (f->chunk_size == 0)
                                f->state = FR_CHUNK_DATA_CR;
                        break;
                }
                case FR_CHUNK_DATA_CR:
                        if (c != '\r')
                                goto bad;
                        f->state = FR_CHUNK_DATA_LF;
                        break;
                case FR_CHUNK_DATA_LF:
                        if (c != '\n')
                                goto bad;
                        f->state = FR_CHUNK_SIZE_START;
                        break;

                default:
                        /* FR_HEAD_DONE and FR_DONE: the library must have finished; it did not. */
                        goto bad;
                }
                continue;

        end_of_section:
                f->state = f->state == FR_FIELD_START || f->state == FR_END_CR ? FR_HEAD_DONE : FR_DONE;
                return i + 1;
        }
        return len;

bad:
        status = 400;
fail:
        *ret_status = status;
        return i;
}

/* ---- http-parser callbacks ------------------------------------------------------------------------- */

static HttpRequest *request_of(http_parser *p)
{
        return p->data;
}

static int fail(HttpRequest *r, unsigned status)
{
        r->error_status = status;
        return -1;
}

/* Makes room for len more bytes (see arena_append()). */
static int arena_grow(HttpRequest *r, size_t len, unsigned status_if_full)
{
        if (len > r->arena_max - r->arena_used)
                return fail(r, status_if_full);
        size_t n = MIN(MAX(r->arena_size * 2, r->arena_used + len), r->arena_max);
        char *p = realloc(r->arena, n);
        if (!p)
                return fail(r, 500);
        r->arena = p;
        r->arena_size = n;
        return 0;
}

static int on_message_begin(http_parser *p)
{
        request_of(p)->started = true;
        return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
        HttpRequest *r = request_of(p);
        if (len > r->limits.url_max - r->url_len)
                return fail(r, 414);
        /* The bytes are not checked again here, nor a field name's in on_header_field(): the library sees only
         * bytes the scanner took, and the scanner ends every line at the first byte that breaks its grammar -
         * a target of visible characters ended by one SP, field names of token characters ended by ':' -
         * before the library could read it otherwise. So the library's URL is a part of the scanner's target
         * and its field names are parts of the scanner's names: no whitespace or control in either (which is
         * what keeps "Content-Length : 5" from framing a body, RFC 9112 5.1). The fuzzers assert both of every
         * request they complete. */
        if (r->url_len == 0)
                r->url_off = (uint32_t) r->arena_used;
        if (arena_append(r, at, len, 414) < 0)
                return -1;
        r->url_len += (uint32_t) len;
        return 0;
}

/* The value of the last field is complete: drop its trailing whitespace (RFC 9110 5.5: not part of it). */
static void finish_value(HttpRequest *r)
{
        if (r->n_headers == 0)
                return;
        HttpHeader *h = &r->headers[r->n_headers - 1];
        while (h->value_len > 0 && (r->arena[h->value_off + h->value_len - 1] == ' ' ||
                                    r->arena[h->value_off + h->value_len - 1] == '\t'))
                h->value_len--;
}

/* Room for one more field: the table doubles, up to limits.headers_max (the caller checked n_headers against
 * it). */
static int headers_grow(HttpRequest *r)
{
        unsigned n = MIN(r->headers_cap * 2, r->limits.headers_max);
        HttpHeader *t = reallocarray(r->headers, n, sizeof *t);
        if (!t)
                return fail(r, 500);
        r->headers = t;
        r->headers_cap = n;
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
        HttpRequest *r = request_of(p);
        /* Debian's http-parser is built non-strict and would take a space as part of a field name: the scanner
         * refuses it first (see on_url()). */
        if (r->headers_done)
                return 0; /* a trailer: accepted, counted by the scanner, ignored */
        if (r->n_headers == 0 || r->in_value) {
                finish_value(r);
                if (r->n_headers >= r->limits.headers_max)
                        return fail(r, 431);
                if (r->n_headers == r->headers_cap && headers_grow(r) < 0)
                        return -1;
                r->headers[r->n_headers++] = (HttpHeader){ .name_off = (uint32_t) r->arena_used };
                r->in_value = false;
        }
        if (arena_append(r, at, len, 431) < 0)
                return -1;
        r->headers[r->n_headers - 1].name_len += (uint32_t) len;
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
        HttpRequest *r = request_of(p);
        if (r->headers_done)
                return 0;
        if (r->n_headers == 0)
                return fail(r, 400); /* a value without a name: cannot happen, never trust it */
        HttpHeader *h = &r->headers[r->n_headers - 1];
        if (!r->in_value) {
                h->value_off = (uint32_t) r->arena_used;
                r->in_value = true;
        }
        if (arena_append(r, at, len, 431) < 0)
                return -1;
        h->value_len += (uint32_t) len;
        return 0;
}

/* name is lowercase. By hand rather than strncasecmp(): the names are a few bytes long, and every request
 * compares some (Host at least). */
static bool header_name_is_n(const HttpRequest *r, const HttpHeader *h, const char *name, size_t n)
{
        const char *a = r->arena + h->name_off;

        if (h->name_len != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = a[i] >= 'A' && a[i] <= 'Z' ? (char) (a[i] + ('a' - 'A')) : a[i];
                if (c != name[i])
                        return false;
        }
        return true;
}
#define header_name_is(r, h, literal) header_name_is_n(r, h, "" literal, STRLEN(literal))

/* Splits off the next element of a comma-separated list (RFC 9110 5.6.1) with its surrounding whitespace
 * trimmed; *p is NULL after the last one. Returns false at the end of the list. */
static bool list_next(const char **p, const char *end, const char **ret_elem, size_t *ret_len)
{
        const char *s = *p, *e;

        if (!s)
                return false;
        e = memchr(s, ',', (size_t) (end - s));
        *p = e ? e + 1 : NULL;
        if (!e)
                e = end;
        while (s < e && (*s == ' ' || *s == '\t'))
                s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
        *ret_elem = s;
        *ret_len = (size_t) (e - s);
        return true;
}

/* Transfer-Encoding (RFC 9112 6.1, 6.3). Only chunked is implemented, and it must be the final coding and
 * appear once. The list over all Transfer-Encoding fields in order:
 *   - empty, or an empty element, or chunked with parameters, twice, or not last: 400, since the length of
 *     the body cannot be known (RFC 9112 6.3 rule 4 says 400 and close for "chunked not final"; "gzip" alone
 *     falls here too);
 *   - chunked last but some other coding before it ("gzip, chunked"): the framing is sound but we do not
 *     understand the coding, so 501 (RFC 9112 6.1: "SHOULD respond with 501").
 * Returns 0 (and sets *ret_chunked) or the status. */
static unsigned check_transfer_encoding(const HttpRequest *r, bool *ret_chunked)
{
        bool seen = false, chunked = false, other = false;

        for (unsigned i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = &r->headers[i];
                const char *p = r->arena + h->value_off, *end = p + h->value_len, *elem;
                size_t n;

                if (!header_name_is(r, h, "transfer-encoding"))
                        continue;
                seen = true;
                while (list_next(&p, end, &elem, &n)) {
                        size_t t = 0;
                        if (n == 0)
                                return 400;
                        while (t < n && is_tchar((unsigned char) elem[t]))
                                t++;
                        if (t == 0)
                                return 400;
                        /* What follows the coding's name: nothing, or its parameters. */
                        size_t rest = t;
                        while (rest < n && (elem[rest] == ' ' || elem[rest] == '\t'))
                                rest++;
                        if (rest < n && elem[rest] != ';')
                                return 400;
                        if (chunked)
                                return 400; /* something after chunked: chunked is not final, or twice */
                        if (t == 7 && strncasecmp(elem, "chunked", 7) == 0) {
                                if (rest < n)
                                        return 400;
                                chunked = true;
                        } else
                                other = true;
                }
        }
        if (!seen) {
                *ret_chunked = false;
                return 0;
        }
        if (!chunked)
                return 400;
        if (other)
                return 501;
        *ret_chunked = true;
        return 0;
}

/* Content-Length (RFC 9112 6.3): one field of digits only. A second one is a 400 even if equal, and so is a
 * list: two lengths are how a request smuggles a body past a proxy that reads the other one. Returns 0 or
 * 400. */
static unsigned check_content_length(HttpRequest *r)
{
        for (unsigned i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = &r->headers[i];
                const char *v = r->arena + h->value_off;
                uint64_t x = 0;

                if (!header_name_is(r, h, "content-length"))
                        continue;
                if (r->has_content_length || h->value_len == 0)
                        return 400;
                for (uint32_t j = 0; j < h->value_len; j++) {
                        if (v[j] < '0' || v[j] > '9')
                                return 400;
                        if (x > (UINT64_MAX - 9) / 10)
                                return 400;
                        x = x * 10 + (uint64_t) (v[j] - '0');
                }
                r->has_content_length = true;
                r->content_length = x;
        }
        return 0;
}

static bool value_is(const HttpRequest *r, const HttpHeader *h, const char *s)
{
        size_t n = strlen(s);
        return h->value_len == n && strncasecmp(r->arena + h->value_off, s, n) == 0;
}

static int on_headers_complete(http_parser *p)
{
        HttpRequest *r = request_of(p);
        unsigned n_host = 0, n_expect = 0, status;
        const HttpHeader *expect = NULL;
        bool chunked = false;

        finish_value(r);
        r->in_value = false;

        if (p->http_major != 1)
                return fail(r, 505);
        /* One pass finds the fields that matter here, by length first: most fields compare no bytes at all.
         * The checks below that walk the fields again run only when theirs is there. */
        unsigned n_content_length = 0, n_transfer_encoding = 0;
        for (unsigned i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = &r->headers[i];
                switch (h->name_len) {
                case STRLEN("host"):
                        n_host += header_name_is(r, h, "host");
                        break;
                case STRLEN("expect"):
                        if (header_name_is(r, h, "expect")) {
                                n_expect++;
                                expect = h;
                        }
                        break;
                case STRLEN("content-length"):
                        n_content_length += header_name_is(r, h, "content-length");
                        break;
                case STRLEN("transfer-encoding"):
                        n_transfer_encoding += header_name_is(r, h, "transfer-encoding");
                        break;
                default:
                        break;
                }
        }
        /* RFC 9112 3.2: an HTTP/1.1 request without Host, or any request with more than one, is a 400; two
         * Hosts are how a request smuggles a second virtual host past a proxy that reads the first. */
        if (n_host > 1 || (n_host == 0 && p->http_minor >= 1))
                return fail(r, 400);

        status = n_content_length > 0 ? check_content_length(r) : 0;
        if (status == 0 && n_transfer_encoding > 0)
                status = check_transfer_encoding(r, &chunked);
        if (status == 400 || status == 501) {
                /* A 400 outranks a 501: the framing is broken whatever the coding. */
                return fail(r, status);
        }
        /* Both framings at once (RFC 9112 6.3 rule 3 allows ignoring Content-Length, but then a proxy that
         * did not may see another request in our body); Transfer-Encoding in HTTP/1.0, which RFC 9112 6.1
         * says to treat as faulty framing; a body on CONNECT, whose bytes would follow as a tunnel. */
        bool te = n_transfer_encoding > 0;
        if (te && (r->has_content_length || p->http_minor == 0))
                return fail(r, 400);
        if (p->method == HTTP_CONNECT && (te || r->has_content_length))
                return fail(r, 400);
        /* The library must agree on chunked, or we would read a different body than it decodes. */
        if (chunked != !!(p->flags & F_CHUNKED))
                return fail(r, 400);

        /* Decided before any of the body is read, so that it can be answered instead of a 100 Continue. */
        if (r->has_content_length && r->content_length > r->limits.body_max)
                return fail(r, 413);

        /* RFC 9110 10.1.1: 100-continue is the only expectation; an HTTP/1.0 server ignores the field. */
        bool has_body = chunked || (r->has_content_length && r->content_length > 0);
        if (n_expect > 0 && p->http_minor >= 1) {
                if (n_expect > 1 || !value_is(r, expect, "100-continue"))
                        return fail(r, 417);
                r->expect_continue = has_body;
        }

        r->chunked = chunked;
        r->headers_done = true;
        return 0;
}

/* Makes room for len more body bytes and the NUL after them. */
static int body_reserve(HttpRequest *r, size_t len)
{
        size_t need = r->body_len + len + 1, cap;
        char *b;

        if (need <= r->body_cap)
                return 0;
        cap = MAX(need, MAX(r->body_cap * 2, (size_t) 4096));
        /* No more than the announced length: a 1 MiB Content-Length gets one allocation of that size. */
        if (r->has_content_length && r->content_length < SIZE_MAX && cap > r->content_length + 1)
                cap = MAX(need, (size_t) r->content_length + 1);
        b = realloc(r->body, cap);
        if (!b)
                return -ENOMEM;
        r->body = b;
        r->body_cap = cap;
        return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
        HttpRequest *r = request_of(p);

        if (len > r->limits.body_max - r->body_len)
                return fail(r, 413);
        if (body_reserve(r, len) < 0)
                return fail(r, 500);
        memcpy(r->body + r->body_len, at, len);
        r->body_len += len;
        r->body[r->body_len] = '\0';
        return 0;
}

static int on_message_complete(http_parser *p)
{
        HttpRequest *r = request_of(p);
        r->state = HTTP_PARSE_COMPLETE;
        /* What follows a CONNECT would be a tunnel, which we never open: close after answering. */
        r->keep_alive = http_should_keep_alive(p) && p->method != HTTP_CONNECT;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* For a head that framing_scan_head() stored as it scanned it: the library frames and checks the same bytes,
 * without handing them over a second time. */
static const http_parser_settings settings_recorded = {
        .on_message_begin = on_message_begin,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* ---- requests ------------------------------------------------------------------------------------- */

static void request_reset(HttpRequest *r)
{
        r->state = HTTP_PARSE_INCOMPLETE;
        r->error_status = 0;
        r->started = r->headers_done = r->keep_alive = r->in_value = false;
        r->expect_continue = r->chunked = r->has_content_length = false;
        r->content_length = 0;
        r->url_off = r->url_len = 0;
        r->n_headers = 0;
        r->arena_used = 0;
        r->body_len = 0;
        if (r->body)
                r->body[0] = '\0';
        r->framing = (HttpFraming){ .state = FR_LEAD };
}

int http_request_init(HttpRequest *r, const HttpLimits *limits)
{
        HttpLimits l = limits ? *limits : HTTP_LIMITS_DEFAULT;
        int k;

        *r = (HttpRequest){};
        k = http_limits_check(&l);
        if (k < 0)
                return k;
        r->limits = l;
        r->arena_max = l.url_max + l.header_bytes_max;
        r->arena_size = MIN((size_t) HTTP_ARENA_INITIAL, r->arena_max);
        r->arena = malloc(r->arena_size);
        r->headers_cap = MIN(HTTP_HEADERS_INITIAL, l.headers_max);
        r->headers = calloc(r->headers_cap, sizeof *r->headers);
        if (!r->arena || !r->headers) {
                http_request_free(r);
                return -ENOMEM;
        }

        /* The library's own limit on a head is a global, 80 KiB by default; ours are stricter and checked
         * first, so lift its one out of the way of header_bytes_max up to its cap. Idempotent. */
        http_parser_set_max_header_size(HTTP_PARSER_HEAD_MAX);
        http_parser_init(&r->parser, HTTP_REQUEST);
        r->parser.data = r;
        request_reset(r);
        return 0;
}

void http_request_free(HttpRequest *r)
{
        free(r->arena);
        free(r->headers);
        free(r->body);
        r->arena = NULL;
        r->headers = NULL;
        r->body = NULL;
        r->arena_size = r->arena_used = 0;
        r->body_cap = r->body_len = 0;
        r->n_headers = r->headers_cap = 0;
        r->url_len = 0;
}

/* One large head or upload should not pin its buffers for the rest of a keep-alive connection, nor for the
 * next connection of a reused object. Shrinking cannot fail in a way that matters: a failed realloc keeps
 * the larger block, which is still valid. */
static void request_release_grown(HttpRequest *r)
{
        if (r->body_cap > HTTP_BODY_KEEP) {
                free(r->body);
                r->body = NULL;
                r->body_cap = 0;
        }
        size_t a = MIN((size_t) HTTP_ARENA_INITIAL, r->arena_max);
        if (r->arena && r->arena_size > a) {
                char *p = realloc(r->arena, a);
                if (p) {
                        r->arena = p;
                        r->arena_size = a;
                }
        }
        unsigned h = MIN(HTTP_HEADERS_INITIAL, r->limits.headers_max);
        if (r->headers && r->headers_cap > h) {
                HttpHeader *p = reallocarray(r->headers, h, sizeof *p);
                if (p) {
                        r->headers = p;
                        r->headers_cap = h;
                }
        }
}

void http_request_next(HttpRequest *r)
{
        request_release_grown(r);
        request_reset(r);
        http_parser_pause(&r->parser, 0);
}

void http_request_reset(HttpRequest *r)
{
        request_release_grown(r);
        http_parser_init(&r->parser, HTTP_REQUEST);
        r->parser.data = r;
        request_reset(r);
}

static bool looks_like_method(const char *p, size_t len)
{
        size_t i = 0;
        while (i < len && is_tchar((unsigned char) p[i]))
                i++;
        return i == len || (i > 0 && p[i] == ' ') || (i == 0 && p[i] == ' ');
}

static void request_fail(HttpRequest *r, unsigned status)
{
        r->state = HTTP_PARSE_ERROR;
        if (r->error_status == 0)
                r->error_status = status;
}

/* The library stopped with an error at data[0] (rest is everything fed after it). */
static void parser_failed(HttpRequest *r, enum http_errno e, const char *rest, size_t rest_len)
{
        switch (e) {
        case HPE_INVALID_METHOD:
                /* A well-formed method this server does not know is 501; bytes that are no method at all (a
                 * TLS hello, binary, HTML) are 400. */
                request_fail(r, looks_like_method(rest, rest_len) ? 501 : 400);
                break;
        case HPE_HEADER_OVERFLOW:
                request_fail(r, 431);
                break;
        default:
                request_fail(r, 400);
        }
}

size_t http_request_feed(HttpRequest *r, const char *data, size_t len)
{
        size_t off = 0;

        while (r->state == HTTP_PARSE_INCOMPLETE && off < len) {
                unsigned status;
                bool recorded;
                size_t k = framing_scan(r, data + off, len - off, &status, &recorded);
                /* Never execute zero bytes: to the library that means the end of the stream. */
                size_t n = k > 0 ? http_parser_execute(&r->parser, recorded ? &settings_recorded : &settings,
                                                       data + off, k)
                                 : 0;
                enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);

                if (e != HPE_OK && e != HPE_PAUSED) {
                        parser_failed(r, e, data + off + n, len - off - n);
                        return off + n;
                }
                off += n;

                if (r->state == HTTP_PARSE_COMPLETE) {
                        /* The library ended the message; it must be where our scanner ends it too. */
                        unsigned s = r->framing.state;
                        bool agree = s == FR_BODY || (n == k && s == FR_DONE) ||
                                     (n == k && s == FR_HEAD_DONE && !r->chunked && r->content_length == 0);
                        /* And the body it decoded must be the one our scanner counted. */
                        if (r->body_len != (r->chunked ? r->framing.chunk_total : r->content_length))
                                agree = false;
                        if (!agree)
                                request_fail(r, 400);
                        return off;
                }
                if (n != k) {
                        request_fail(r, 400); /* stopped short without a reason: never guess */
                        return off;
                }
                if (status != 0) {
                        request_fail(r, status);
                        return off;
                }
                if (r->framing.state == FR_DONE) {
                        /* Our trailers ended, the library's message did not: say so now, not at the next
                         * byte, which the client would never send. */
                        request_fail(r, 400);
                        return off;
                }
                if (r->framing.state == FR_HEAD_DONE) {
                        /* A head that the library did not see end, or a body it did not expect. */
                        if (!r->headers_done || (!r->chunked && !r->has_content_length)) {
                                request_fail(r, 400);
                                return off;
                        }
                        r->framing.state = r->chunked ? FR_CHUNK_SIZE_START : FR_BODY;
                }
        }
        return off;
}

const char *http_request_header(const HttpRequest *r, const char *name, size_t *ret_len)
{
        size_t n = strlen(name);
        for (unsigned i = 0; i < r->n_headers; i++) {
                const HttpHeader *h = &r->headers[i];
                if (h->name_len == n && strncasecmp(r->arena + h->name_off, name, n) == 0) {
                        *ret_len = h->value_len;
                        return r->arena + h->value_off;
                }
        }
        return NULL;
}

int http_request_header_at(const HttpRequest *r, unsigned i, const char **ret_name, size_t *ret_name_len,
                           const char **ret_value, size_t *ret_value_len)
{
        if (i >= r->n_headers)
                return -ENOENT;
        *ret_name = r->arena + r->headers[i].name_off;
        *ret_name_len = r->headers[i].name_len;
        *ret_value = r->arena + r->headers[i].value_off;
        *ret_value_len = r->headers[i].value_len;
        return 0;
}

const char *http_status_reason(unsigned status)
{
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 412: return "Precondition Failed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 416: return "Range Not Satisfiable";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
}

int http_target_decode_path(const char *url, size_t url_len, char *out, size_t out_size, size_t *ret_query_off)
{
        const char *p = url, *end = url + url_len, *q;
        size_t o = 0;

        /* absolute-form: "http://host[:port]/path" — skip scheme and authority. */
        if (url_len > 0 && url[0] != '/') {
                const char *s = memmem(url, url_len, "://", 3);
                if (!s)
                        return -EINVAL;
                /* The authority ends at the first '/', '?' or '#' (RFC 3986 3.2). */
                p = s + 3;
                while (p < end && *p != '/' && *p != '?' && *p != '#')
                        p++;
        }

        /* The path ends at '?' (the query) or '#' (a fragment, which clients should not send at all). One
         * pass finds the end and decodes: a "%XX" never spans it, as neither '?' nor '#' is a hex digit. A
         * run of bytes that are none of '?', '#', '%' and NUL - most paths entirely - is copied as it is. */
        for (; p < end && *p != '?' && *p != '#'; p++) {
                static const bool special[256] = { ['\0'] = true, ['?'] = true, ['#'] = true, ['%'] = true };
                const char *run = p;
                while (run < end && !special[(unsigned char) *run])
                        run++;
                if (run > p) {
                        size_t n = (size_t) (run - p);
                        if (n >= out_size - o) /* as the byte-by-byte check below would find at its last byte */
                                return -ENAMETOOLONG;
                        memcpy(out + o, p, n);
                        o += n;
                        p = run;
                        if (p == end || *p == '?' || *p == '#')
                                break;
                }
                char c = *p;
                if (c == '%') {
                        int hi, lo;
                        if (end - p < 3 || (hi = unhex(p[1])) < 0 || (lo = unhex(p[2])) < 0)
                                return -EINVAL;
                        c = (char) (hi << 4 | lo);
                        p += 2;
                }
                if (c == '\0')
                        return -EINVAL;
                if (o + 1 >= out_size)
                        return -ENAMETOOLONG;
                out[o++] = c;
        }
        q = p < end && *p == '?' ? p : NULL;
        if (o == 0) { /* "http://host" and "http://host?x" mean "/" */
                if (out_size < 2)
                        return -ENAMETOOLONG;
                out[o++] = '/';
        }
        out[o] = '\0';
        if (ret_query_off)
                *ret_query_off = q ? (size_t) (q - url) : url_len;
        return (int) o;
}

int http_path_normalize(char *path, size_t len)
{
        size_t i = 0, o = 0;
        bool trailing = false;

        if (len == 0 || path[0] != '/' || len > INT_MAX)
                return -EINVAL;

        /* Written in place: the output never overtakes the input, since every segment copied was preceded
         * by at least one '/' in the input and is preceded by exactly one in the output. */
        while (i < len) {
                while (i < len && path[i] == '/')
                        i++;
                size_t j = i;
                while (j < len && path[j] != '/')
                        j++;
                size_t seg = j - i;

                if (seg == 0 || (seg == 1 && path[i] == '.'))
                        trailing = true;
                else if (seg == 2 && path[i] == '.' && path[i + 1] == '.') {
                        /* Above the root: a client that means "/" does not write "/..". */
                        if (o == 0)
                                return -EINVAL;
                        while (path[o - 1] != '/')
                                o--;
                        o--;
                        trailing = true;
                } else {
                        path[o++] = '/';
                        memmove(path + o, path + i, seg);
                        o += seg;
                        trailing = false;
                }
                i = j;
        }
        if (o == 0 || trailing)
                path[o++] = '/';
        path[o] = '\0';
        return (int) o;
}

/* UTC calendar fields of a time (H. Hinnant's civil_from_days). Not gmtime_r(): glibc's reads /etc/localtime
 * on its first call (its time zone state is shared with localtime()), which costs every worker a file read
 * and a page fault on its first response; UTC needs no zone. */
typedef struct UtcTime {
        int64_t year;
        unsigned month; /* 0..11 */
        unsigned day, hour, minute, second;
        unsigned wday; /* 0: Sunday */
} UtcTime;

static UtcTime utc_from_time(int64_t t)
{
        int64_t days = t / 86400, secs = t % 86400;
        if (secs < 0) {
                secs += 86400;
                days--;
        }
        UtcTime u = { .hour = (unsigned) (secs / 3600), .minute = (unsigned) (secs / 60 % 60),
                      .second = (unsigned) (secs % 60), .wday = (unsigned) ((days % 7 + 11) % 7) };
        int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned) (z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        u.day = doy - (153 * mp + 2) / 5 + 1;
        u.month = mp < 10 ? mp + 2 : mp - 10;
        u.year = (int64_t) yoe + era * 400 + (u.month <= 1);
        return u;
}

void http_format_date(time_t t, char buf[static 30])
{
        static const char days[] = "SunMonTueWedThuFriSat";
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        UtcTime u = utc_from_time(t);

        /* By hand rather than strftime(): no locale to consult, and it is on every response's path. */
        if (u.year < 0 || u.year > 9999) {
                strcpy(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
                return;
        }
        unsigned y = (unsigned) u.year;
        memcpy(buf, days + 3 * u.wday, 3);
        buf[3] = ',';
        buf[4] = ' ';
        buf[5] = (char) ('0' + u.day / 10);
        buf[6] = (char) ('0' + u.day % 10);
        buf[7] = ' ';
        memcpy(buf + 8, months + 3 * u.month, 3);
        buf[11] = ' ';
        buf[12] = (char) ('0' + y / 1000);
        buf[13] = (char) ('0' + y / 100 % 10);
        buf[14] = (char) ('0' + y / 10 % 10);
        buf[15] = (char) ('0' + y % 10);
        buf[16] = ' ';
        buf[17] = (char) ('0' + u.hour / 10);
        buf[18] = (char) ('0' + u.hour % 10);
        buf[19] = ':';
        buf[20] = (char) ('0' + u.minute / 10);
        buf[21] = (char) ('0' + u.minute % 10);
        buf[22] = ':';
        buf[23] = (char) ('0' + u.second / 10);
        buf[24] = (char) ('0' + u.second % 10);
        memcpy(buf + 25, " GMT", 5);
}

int http_check_token(const char *s)
{
        if (!*s)
                return -EINVAL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (!is_tchar(*p))
                        return -EINVAL;
        return 0;
}

int http_check_field_value(const char *value)
{
        size_t len = strlen(value), i = 0;

        /* Eight bytes at a time: every response checks a few of these. */
        for (; i + 8 <= len; i += 8) {
                uint64_t x;
                memcpy(&x, value + i, 8);
                if (!word_is_plain(x))
                        break;
        }
        for (; i < len; i++)
                if (!is_field_char((unsigned char) value[i]))
                        return -EINVAL;
        return 0;
}

/* A header value we send: no CR, LF or other control that could end the line or the head early. */
static bool value_ok(const char *s)
{
        return !s || http_check_field_value(s) >= 0;
}

int http_check_header_block(const char *block)
{
        const unsigned char *p = (const unsigned char *) block;

        while (*p) {
                const unsigned char *name = p;
                while (is_tchar(*p))
                        p++;
                if (p == name || *p != ':')
                        return -EINVAL;
                p++;
                while (*p && is_field_char(*p))
                        p++;
                if (p[0] != '\r' || p[1] != '\n')
                        return -EINVAL;
                p += 2;
        }
        return 0;
}

/* ---- HTTP-date parsing ---------------------------------------------------------------------------------
 *
 * By hand rather than with strptime(): its %a and %b follow LC_TIME, and the grammar is small and exact. */

static const char *const day_names[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const day_names_long[] = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                              "Saturday", "Sunday" };
static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

typedef struct DateScan {
        const char *p, *end;
} DateScan;

static bool scan_literal(DateScan *s, const char *literal)
{
        size_t n = strlen(literal);
        if ((size_t) (s->end - s->p) < n || memcmp(s->p, literal, n) != 0)
                return false;
        s->p += n;
        return true;
}

/* One of names (none is a prefix of another); its index in *ret. */
static bool scan_name(DateScan *s, const char *const *names, size_t n_names, unsigned *ret)
{
        for (size_t i = 0; i < n_names; i++)
                if (scan_literal(s, names[i])) {
                        *ret = (unsigned) i;
                        return true;
                }
        return false;
}

/* Exactly n digits. */
static bool scan_digits(DateScan *s, unsigned n, unsigned *ret)
{
        unsigned v = 0;
        if ((size_t) (s->end - s->p) < n)
                return false;
        for (unsigned i = 0; i < n; i++) {
                if (s->p[i] < '0' || s->p[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s->p[i] - '0');
        }
        s->p += n;
        *ret = v;
        return true;
}

typedef struct DateFields {
        unsigned year, month, day; /* month 0..11 */
        unsigned hour, minute, second;
} DateFields;

static bool scan_time_of_day(DateScan *s, DateFields *f)
{
        return scan_digits(s, 2, &f->hour) && scan_literal(s, ":") && scan_digits(s, 2, &f->minute) &&
               scan_literal(s, ":") && scan_digits(s, 2, &f->second);
}

/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool scan_imf_fixdate(DateScan s, DateFields *f)
{
        unsigned wday;
        return scan_name(&s, day_names, ELEMENTSOF(day_names), &wday) && scan_literal(&s, ", ") &&
               scan_digits(&s, 2, &f->day) && scan_literal(&s, " ") &&
               scan_name(&s, month_names, ELEMENTSOF(month_names), &f->month) && scan_literal(&s, " ") &&
               scan_digits(&s, 4, &f->year) && scan_literal(&s, " ") && scan_time_of_day(&s, f) &&
               scan_literal(&s, " GMT") && s.p == s.end;
}

/* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"; the year is two digits, placed by the caller. */
static bool scan_rfc850_date(DateScan s, DateFields *f)
{
        unsigned wday;
        return scan_name(&s, day_names_long, ELEMENTSOF(day_names_long), &wday) && scan_literal(&s, ", ") &&
               scan_digits(&s, 2, &f->day) && scan_literal(&s, "-") &&
               scan_name(&s, month_names, ELEMENTSOF(month_names), &f->month) && scan_literal(&s, "-") &&
               scan_digits(&s, 2, &f->year) && scan_literal(&s, " ") && scan_time_of_day(&s, f) &&
               scan_literal(&s, " GMT") && s.p == s.end;
}

/* asctime-date: "Sun Nov  6 08:49:37 1994" (the day is 2DIGIT or SP DIGIT) */
static bool scan_asctime_date(DateScan s, DateFields *f)
{
        unsigned wday;
        if (!scan_name(&s, day_names, ELEMENTSOF(day_names), &wday) || !scan_literal(&s, " ") ||
            !scan_name(&s, month_names, ELEMENTSOF(month_names), &f->month) || !scan_literal(&s, " "))
                return false;
        if (!(scan_literal(&s, " ") ? scan_digits(&s, 1, &f->day) : scan_digits(&s, 2, &f->day)))
                return false;
        return scan_literal(&s, " ") && scan_time_of_day(&s, f) && scan_literal(&s, " ") &&
               scan_digits(&s, 4, &f->year) && s.p == s.end;
}

static bool is_leap_year(unsigned y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's days_from_civil); month
 * 1..12. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

int http_parse_date(const char *s, size_t len, time_t now, time_t *ret)
{
        static const unsigned month_days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        DateScan scan = { .p = s, .end = s + len };
        DateFields f = {};

        if (!scan_imf_fixdate(scan, &f) && !scan_asctime_date(scan, &f)) {
                if (!scan_rfc850_date(scan, &f))
                        return -EINVAL;
                /* RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent past
                 * year with those digits. Years beyond struct tm's (as gmtime_r() refused them): -ERANGE. */
                int64_t now_year = utc_from_time(now).year;
                if (now_year - 1900 > INT_MAX || now_year - 1900 < INT_MIN)
                        return -ERANGE;
                unsigned this_year = (unsigned) now_year;
                f.year += this_year / 100 * 100;
                if (f.year > this_year + 50)
                        f.year -= 100;
        }

        unsigned mdays = month_days[f.month] + (f.month == 1 && is_leap_year(f.year));
        /* 60 seconds: a leap second, which time_t does not count; it reads as the next minute's first. */
        if (f.day < 1 || f.day > mdays || f.hour > 23 || f.minute > 59 || f.second > 60)
                return -EINVAL;

        int64_t t = days_from_civil(f.year, f.month + 1, f.day) * 86400 + f.hour * 3600 + f.minute * 60 +
                    f.second;
        if ((int64_t) (time_t) t != t)
                return -ERANGE;
        *ret = (time_t) t;
        return 0;
}

/* Appends to a head being formatted; false when it does not fit. Copies rather than snprintf(): a head is
 * formatted for every response. */
typedef struct HeadBuf {
        char *buf;
        size_t size, len;
} HeadBuf;

/* Inlined, so that the length of a literal is known where it is copied. */
static inline __attribute__((always_inline)) bool head_put(HeadBuf *b, const char *s, size_t n)
{
        if (n >= b->size - b->len) /* keep room for the NUL */
                return false;
        memcpy(b->buf + b->len, s, n);
        b->len += n;
        return true;
}

static inline __attribute__((always_inline)) bool head_puts(HeadBuf *b, const char *s)
{
        return head_put(b, s, strlen(s));
}

static bool head_putu(HeadBuf *b, uint64_t v)
{
        /* Two digits per division: a Content-Length and a status in every head. */
        static const char pairs[] =
                "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                "8081828384858687888990919293949596979899";
        char d[20];
        size_t n = 0;

        while (v >= 100) {
                unsigned k = (unsigned) (v % 100);
                v /= 100;
                n += 2;
                memcpy(d + sizeof d - n, pairs + 2 * k, 2);
        }
        if (v >= 10) {
                n += 2;
                memcpy(d + sizeof d - n, pairs + 2 * v, 2);
        } else
                d[sizeof d - ++n] = (char) ('0' + v);
        return head_put(b, d + sizeof d - n, n);
}

static inline __attribute__((always_inline)) bool head_field(HeadBuf *b, const char *name_colon_sp,
                                                             const char *value)
{
        return head_puts(b, name_colon_sp) && head_puts(b, value) && head_put(b, "\r\n", 2);
}

int http_format_head(const HttpResponseHead *h, char *buf, size_t size)
{
        HeadBuf b = { .buf = buf, .size = size };
        bool ok;

        if (!value_ok(h->content_type) || !value_ok(h->etag) || !value_ok(h->content_range) ||
            !value_ok(h->location) || !value_ok(h->allow))
                return -EINVAL;
        if (!h->server_date_checked && (!value_ok(h->date) || !value_ok(h->server)))
                return -EINVAL;
        if (h->extra_headers && !h->extra_headers_checked && http_check_header_block(h->extra_headers) < 0)
                return -EINVAL;
        /* A chunked response to an HTTP/1.0 client, or one with a length as well, would be misframed. */
        if (h->chunked && (h->has_body_length || h->minor_version == 0))
                return -EINVAL;
        if (size == 0)
                return -ENOBUFS;

        ok = head_puts(&b, h->minor_version ? "HTTP/1.1 " : "HTTP/1.0 ");
        if (ok && h->status >= 100 && h->status <= 999) {
                /* Every status is three digits (RFC 9110 15): no general number formatting. */
                char d[4] = { (char) ('0' + h->status / 100), (char) ('0' + h->status / 10 % 10),
                              (char) ('0' + h->status % 10), ' ' };
                ok = head_put(&b, d, sizeof d);
        } else if (ok)
                ok = head_putu(&b, h->status) && head_put(&b, " ", 1);
        ok = ok && head_puts(&b, http_status_reason(h->status)) && head_put(&b, "\r\n", 2);
        if (ok && h->server)
                ok = head_puts(&b, "Server: ") &&
                     head_put(&b, h->server, h->server_len ? h->server_len : strlen(h->server)) &&
                     head_put(&b, "\r\n", 2);
        if (ok && h->date)
                ok = head_field(&b, "Date: ", h->date);
        if (ok && h->content_type)
                ok = head_field(&b, "Content-Type: ", h->content_type);
        if (ok && h->has_body_length)
                ok = head_puts(&b, "Content-Length: ") && head_putu(&b, h->content_length) &&
                     head_put(&b, "\r\n", 2);
        if (ok && h->chunked)
                ok = head_puts(&b, "Transfer-Encoding: chunked\r\n");
        if (ok && h->last_modified > 0) {
                char d[30];
                http_format_date(h->last_modified, d);
                ok = head_field(&b, "Last-Modified: ", d);
        }
        if (ok && h->etag)
                ok = head_field(&b, "ETag: ", h->etag);
        if (ok && h->accept_ranges)
                ok = head_puts(&b, "Accept-Ranges: bytes\r\n");
        if (ok && h->content_range)
                ok = head_field(&b, "Content-Range: ", h->content_range);
        if (ok && h->location)
                ok = head_field(&b, "Location: ", h->location);
        if (ok && h->allow)
                ok = head_field(&b, "Allow: ", h->allow);
        if (ok && h->extra_headers)
                ok = head_put(&b, h->extra_headers,
                              h->extra_headers_len ? h->extra_headers_len : strlen(h->extra_headers));
        if (ok && !h->keep_alive)
                ok = head_puts(&b, "Connection: close\r\n");
        else if (ok && h->minor_version == 0)
                ok = head_puts(&b, "Connection: keep-alive\r\n");
        if (ok)
                ok = head_put(&b, "\r\n", 2);
        if (!ok)
                return -ENOBUFS;
        buf[b.len] = '\0';
        return (int) b.len;
}
