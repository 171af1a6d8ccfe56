/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/macro.h"
#include "proto/http.h"

static HttpRequest *request_of(http_parser *p)
{
        return p->data;
}

static int fail(HttpRequest *r, unsigned status)
{
        r->error_status = status;
        return -1;
}

/* Appends a piece of the URL, a field name or a value to the arena. Pieces of one element arrive in order and
 * uninterrupted, so appending keeps each element contiguous. */
static int arena_append(HttpRequest *r, const char *at, size_t len, unsigned status_if_full)
{
        if (len > sizeof r->arena - r->arena_used)
                return fail(r, status_if_full);
        memcpy(r->arena + r->arena_used, at, len);
        r->arena_used += len;
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
        if (r->url_len + len > HTTP_URL_MAX)
                return fail(r, 414);
        if (r->url_len == 0)
                r->url_off = (uint16_t) r->arena_used;
        if (arena_append(r, at, len, 414) < 0)
                return -1;
        r->url_len = (uint16_t) (r->url_len + len);
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
        HttpRequest *r = request_of(p);
        /* Debian's http-parser is built non-strict and takes a space as part of a field name; RFC 9112 5.1
         * says whitespace before the colon MUST be rejected (else "Content-Length : 5" frames a body that a
         * lookup of Content-Length does not see). */
        if (memchr(at, ' ', len))
                return fail(r, 400);
        if (r->n_headers == 0 || r->in_value) {
                if (r->n_headers >= HTTP_HEADERS_MAX)
                        return fail(r, 431);
                r->headers[r->n_headers++] = (HttpHeader){ .name_off = (uint16_t) r->arena_used };
                r->in_value = false;
        }
        if (arena_append(r, at, len, 431) < 0)
                return -1;
        r->headers[r->n_headers - 1].name_len += (uint16_t) len;
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
        HttpRequest *r = request_of(p);
        HttpHeader *h = &r->headers[r->n_headers - 1];
        if (!r->in_value) {
                h->value_off = (uint16_t) r->arena_used;
                r->in_value = true;
        }
        if (arena_append(r, at, len, 431) < 0)
                return -1;
        h->value_len += (uint16_t) len;
        return 0;
}

static int on_headers_complete(http_parser *p)
{
        HttpRequest *r = request_of(p);
        unsigned n_host = 0;

        if (p->http_major != 1)
                return fail(r, 505);
        /* RFC 9112 3.2: an HTTP/1.1 request without Host, or any request with more than one, is a 400; two
         * Hosts are how a request smuggles a second virtual host past a proxy that reads the first. */
        for (unsigned i = 0; i < r->n_headers; i++)
                if (r->headers[i].name_len == 4 && strncasecmp(r->arena + r->headers[i].name_off, "host", 4) == 0)
                        n_host++;
        if (n_host > 1 || (n_host == 0 && p->http_minor >= 1))
                return fail(r, 400);
        r->headers_done = true;
        return 0;
}

static int on_message_complete(http_parser *p)
{
        HttpRequest *r = request_of(p);
        r->state = HTTP_PARSE_COMPLETE;
        r->keep_alive = http_should_keep_alive(p);
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_message_complete = on_message_complete,
};

static void request_reset(HttpRequest *r)
{
        r->state = HTTP_PARSE_INCOMPLETE;
        r->error_status = 0;
        r->started = r->headers_done = r->keep_alive = r->in_value = false;
        r->url_off = r->url_len = 0;
        r->n_headers = 0;
        r->arena_used = 0;
}

void http_request_init(HttpRequest *r)
{
        http_parser_init(&r->parser, HTTP_REQUEST);
        r->parser.data = r;
        request_reset(r);
}

void http_request_next(HttpRequest *r)
{
        request_reset(r);
        http_parser_pause(&r->parser, 0);
}

/* RFC 9110 tchar */
static bool is_tchar(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool looks_like_method(const char *p, size_t len)
{
        size_t i = 0;
        while (i < len && is_tchar(p[i]))
                i++;
        return i == len || (i > 0 && p[i] == ' ') || (i == 0 && p[i] == ' ');
}

size_t http_request_feed(HttpRequest *r, const char *data, size_t len)
{
        size_t n;

        if (r->state != HTTP_PARSE_INCOMPLETE)
                return 0;

        n = http_parser_execute(&r->parser, &settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
        if (e == HPE_OK || e == HPE_PAUSED)
                return n;

        r->state = HTTP_PARSE_ERROR;
        if (r->error_status == 0) {
                switch (e) {
                case HPE_INVALID_METHOD:
                        /* A well-formed method this server does not know is 501; bytes that are no method at
                         * all (a TLS hello, binary, HTML) are 400. */
                        r->error_status = looks_like_method(data + n, len - n) ? 501 : 400;
                        break;
                case HPE_HEADER_OVERFLOW:
                        r->error_status = 431;
                        break;
                default:
                        r->error_status = 400;
                }
        }
        return n;
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

const char *http_status_reason(unsigned status)
{
        switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 412: return "Precondition Failed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 416: return "Range Not Satisfiable";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
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

        /* The path ends at '?' (the query) or '#' (a fragment, which clients should not send at all). */
        const char *path_end = p;
        while (path_end < end && *path_end != '?' && *path_end != '#')
                path_end++;
        q = path_end < end && *path_end == '?' ? path_end : NULL;

        for (; p < path_end; p++) {
                char c = *p;
                if (c == '%') {
                        int hi, lo;
                        if (path_end - p < 3 || (hi = unhex(p[1])) < 0 || (lo = unhex(p[2])) < 0)
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

void http_format_date(time_t t, char buf[static 30])
{
        struct tm tm;

        /* strftime() in the "C" locale (drover never calls setlocale()), which is what HTTP wants. */
        if (!gmtime_r(&t, &tm) || strftime(buf, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
                strcpy(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
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
                struct tm tm;

                if (!scan_rfc850_date(scan, &f))
                        return -EINVAL;
                /* RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent past
                 * year with those digits. */
                if (!gmtime_r(&now, &tm))
                        return -ERANGE;
                unsigned this_year = (unsigned) (tm.tm_year + 1900);
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

int http_format_head(const HttpResponseHead *h, char *buf, size_t size)
{
        size_t o = 0;
        int n;

#define PUT(...)                                                                                                \
        do {                                                                                                    \
                n = snprintf(buf + o, size - o, __VA_ARGS__);                                                   \
                if (n < 0 || (size_t) n >= size - o)                                                            \
                        return -ENOBUFS;                                                                        \
                o += (size_t) n;                                                                                \
        } while (0)

        PUT("HTTP/1.%u %u %s\r\n", h->minor_version ? 1U : 0U, h->status, http_status_reason(h->status));
        if (h->server)
                PUT("Server: %s\r\n", h->server);
        if (h->date)
                PUT("Date: %s\r\n", h->date);
        if (h->content_type)
                PUT("Content-Type: %s\r\n", h->content_type);
        if (h->has_body_length)
                PUT("Content-Length: %llu\r\n", (unsigned long long) h->content_length);
        if (h->last_modified > 0) {
                char d[30];
                http_format_date(h->last_modified, d);
                PUT("Last-Modified: %s\r\n", d);
        }
        if (h->etag)
                PUT("ETag: %s\r\n", h->etag);
        if (h->content_range)
                PUT("Content-Range: %s\r\n", h->content_range);
        if (h->accept_ranges)
                PUT("Accept-Ranges: bytes\r\n");
        if (h->location)
                PUT("Location: %s\r\n", h->location);
        if (h->allow)
                PUT("Allow: %s\r\n", h->allow);
        if (!h->keep_alive)
                PUT("Connection: close\r\n");
        else if (h->minor_version == 0)
                PUT("Connection: keep-alive\r\n");
        PUT("\r\n");
#undef PUT
        return (int) o;
}
