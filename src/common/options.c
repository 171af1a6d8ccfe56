/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/options.h"
#include "config.h"

/* drover-worker reads no file (the supervisor passes every value on its command line): its copy of this file
 * is built with OPTIONS_NO_CONFIG_FILE, without the reader, so that it does not load libinih. */
#ifndef OPTIONS_NO_CONFIG_FILE
#include <ini.h>
#endif

enum {
        ARG_VERSION = 0x100,
        ARG_WORKER,
        ARG_WORKER_WATCHDOG,
        ARG_GRACEFUL_TIMEOUT,
        ARG_MAX_REQUESTS,
        ARG_MAX_REQUESTS_JITTER,
        ARG_EXIT_IDLE_TIME,
        ARG_READY_WORKERS,
        ARG_EXEC_READY,
        ARG_HANDLER,
        ARG_SERVER_HEADER,
        ARG_HEADER_TIMEOUT,
        ARG_KEEPALIVE_TIMEOUT,
        ARG_BODY_TIMEOUT,
        ARG_WRITE_TIMEOUT,
        ARG_OPEN_FILE_CACHE_VALID,
        ARG_MAX_REQUEST_LINE,
        ARG_MAX_HEADER_SIZE,
        ARG_MAX_HEADERS,
        ARG_MAX_BODY_SIZE,
        ARG_MAX_CONNECTIONS,
        ARG_KEEPALIVE_REQUESTS,
        ARG_CONFIG,
        ARG_CHECK_CONFIG,
        ARG_ACCEPT,
        ARG_MIN_WORKERS,
        ARG_MAX_WORKERS,
        ARG_WORKER_IDLE_TIMEOUT,
        ARG_EXEC, /* the file's exec=, no command-line option: there it is "-- COMMAND" */
};

static const struct option long_options[] = {
        { "workers", required_argument, NULL, 'w' },
        { "min-workers", required_argument, NULL, ARG_MIN_WORKERS },
        { "max-workers", required_argument, NULL, ARG_MAX_WORKERS },
        { "worker-idle-timeout", required_argument, NULL, ARG_WORKER_IDLE_TIMEOUT },
        { "accept", required_argument, NULL, ARG_ACCEPT },
        { "listen", required_argument, NULL, 'l' },
        { "root", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        { "worker-watchdog", required_argument, NULL, ARG_WORKER_WATCHDOG },
        { "graceful-timeout", required_argument, NULL, ARG_GRACEFUL_TIMEOUT },
        { "max-requests", required_argument, NULL, ARG_MAX_REQUESTS },
        { "max-requests-jitter", required_argument, NULL, ARG_MAX_REQUESTS_JITTER },
        { "exit-idle-time", required_argument, NULL, ARG_EXIT_IDLE_TIME },
        { "ready-workers", required_argument, NULL, ARG_READY_WORKERS },
        { "exec-ready", required_argument, NULL, ARG_EXEC_READY },
        { "handler", required_argument, NULL, ARG_HANDLER },
        { "server-header", required_argument, NULL, ARG_SERVER_HEADER },
        { "header-timeout", required_argument, NULL, ARG_HEADER_TIMEOUT },
        { "keepalive-timeout", required_argument, NULL, ARG_KEEPALIVE_TIMEOUT },
        { "body-timeout", required_argument, NULL, ARG_BODY_TIMEOUT },
        { "write-timeout", required_argument, NULL, ARG_WRITE_TIMEOUT },
        { "open-file-cache-valid", required_argument, NULL, ARG_OPEN_FILE_CACHE_VALID },
        { "max-request-line", required_argument, NULL, ARG_MAX_REQUEST_LINE },
        { "max-header-size", required_argument, NULL, ARG_MAX_HEADER_SIZE },
        { "max-headers", required_argument, NULL, ARG_MAX_HEADERS },
        { "max-body-size", required_argument, NULL, ARG_MAX_BODY_SIZE },
        { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
        { "keepalive-requests", required_argument, NULL, ARG_KEEPALIVE_REQUESTS },
        { "config", required_argument, NULL, ARG_CONFIG },
        { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
        { "worker", required_argument, NULL, ARG_WORKER },
        {},
};

const char options_usage[] =
        "Usage: drover [OPTIONS] [-- COMMAND [ARG...]]\n"
        "\n"
        "A socket-activated prefork worker pool: built-in HTTP workers, or N copies of COMMAND started\n"
        "with the socket-activation environment systemd would give it.\n"
        "\n"
        "  -w, --workers=N            number of workers (1..1024; default: online CPUs); a fixed pool,\n"
        "                             the same as --min-workers=N --max-workers=N\n"
        "      --min-workers=N        workers kept running (default: --workers, at most --max-workers)\n"
        "      --max-workers=N        workers the pool may grow to under load (default: --workers, at least\n"
        "                             --min-workers)\n"
        "      --worker-idle-timeout=TIME  retire a worker above --min-workers idle for TIME (default 30s;\n"
        "                             0: never)\n"
        "      --accept=shared|dispatch  shared: every worker accepts (default); dispatch: drover accepts\n"
        "                             and hands each connection to a free worker, one at a time\n"
        "  -l, --listen=[PROTO:]ADDR  listen on ADDR when systemd passed no sockets; repeatable.\n"
        "                             ADDR is IPV4:PORT, [IPV6]:PORT or /path; PROTO is http (default)\n"
        "  -r, --root=DIR             document root of the static handler\n"
        "      --handler=[/PREFIX=]MODULE.so  serve requests (under /PREFIX) with a handler module;\n"
        "                             repeatable, the longest prefix wins, the static handler serves the rest\n"
        "      --server-header=NAME   the Server: header (default drover; '' to send none)\n"
        "      --header-timeout=TIME  a request's header must arrive within TIME (default 30s; then 408)\n"
        "      --keepalive-timeout=TIME  close a keep-alive connection idle for TIME (default 75s)\n"
        "      --body-timeout=TIME    close when a request body makes no progress for TIME (default 60s)\n"
        "      --write-timeout=TIME   close when a response makes no progress for TIME (default 60s)\n"
        "      --open-file-cache-valid=TIME  serve a static file found within TIME without looking\n"
        "                             again (default 1s; 0: look up every request)\n"
        "      --max-request-line=SIZE  longest request target (default 8K; then 414)\n"
        "      --max-header-size=SIZE largest header block (default 16K; then 431)\n"
        "      --max-headers=N        most header fields (default 100; then 431)\n"
        "      --max-body-size=SIZE   largest request body (default 1M; then 413)\n"
        "      --max-connections=N    connections per worker before it stops accepting (default 4096)\n"
        "      --keepalive-requests=N requests per connection before Connection: close (default 1000; 0: no limit)\n"
        "      --worker-watchdog=TIME liveness deadline per worker (default 10s; 0 disables;\n"
        "                             exec workers: none unless given)\n"
        "      --graceful-timeout=TIME how long stopping workers may finish in-flight work (default 30s)\n"
        "      --max-requests=N       recycle a worker after N requests (default 0: never)\n"
        "      --max-requests-jitter=N  add 0..N to each worker's --max-requests\n"
        "      --exit-idle-time=TIME  exit when no connection arrived for TIME (default 0: never)\n"
        "      --ready-workers=N      workers that must be ready before READY=1 (default: all)\n"
        "      --exec-ready=started|notify  when an exec worker counts as ready (default: started)\n"
        "      --config=FILE          the configuration file (default: " DROVER_CONFIG_FILE " if it exists);\n"
        "                             keys are these long option names; the command line overrides it\n"
        "      --check-config         check the configuration and the command line, print 'ok' or every\n"
        "                             problem (exit 78), and exit without serving\n"
        "  -h, --help                 show this help\n"
        "      --version              show the version\n";

#define DURATION_ALLOWED "expected a duration such as 500ms, 10s, 2min or 1h (a bare number is seconds)"

/* The state of one load: the options being built, where values come from, what the cross checks need. */
typedef struct LoadState {
        Options *o;
        OptionsErrors *errors;
        const char *file; /* the configuration file being read; NULL on the command line */
        unsigned line;
        const char *key;  /* the key of the line being applied (the file) */
        bool line_handled;
        bool line_pending; /* a line that must reach the handler (not blank, comment or section) */
        const char *reported_section;
        bool cmdline_listen, cmdline_handler; /* the command line replaces the file's lists */
        const char *exit_idle_arg, *exec_ready_arg;
        const char *ready_origin, *exit_idle_origin, *exec_ready_origin;
        const char *accept_arg, *accept_origin, *min_origin, *max_origin;
        bool min_set, max_set;
} LoadState;

void options_errors_reset(OptionsErrors *e)
{
        /* Not a zeroed copy: only what is read. The text is 16 KiB that would be faulted in for nothing. */
        e->n = 0;
        e->truncated = false;
        e->len = 0;
        e->text[0] = '\0';
}

void options_error(OptionsErrors *e, const char *format, ...)
{
        char msg[4608];
        size_t k = 0;
        va_list ap;

        e->n++;
        if (e->truncated)
                return;
        va_start(ap, format);
        (void) vsnprintf(msg, sizeof msg, format, ap);
        va_end(ap);

        /* One problem, one line: control characters in values are escaped. */
        for (const char *p = msg; *p; p++) {
                char esc[8];
                unsigned char ch = (unsigned char) *p;
                if (ch == '\n')
                        strcpy(esc, "\\n");
                else if (ch == '\t')
                        strcpy(esc, "\\t");
                else if (ch < 0x20 || ch == 0x7f)
                        snprintf(esc, sizeof esc, "\\x%02x", ch);
                else {
                        esc[0] = (char) ch;
                        esc[1] = '\0';
                }
                size_t n = strlen(esc);
                if (e->len + k + n + 2 > sizeof e->text) {
                        e->truncated = true;
                        e->text[e->len] = '\0'; /* keep only whole lines */
                        return;
                }
                memcpy(e->text + e->len + k, esc, n);
                k += n;
        }
        e->len += k;
        e->text[e->len++] = '\n';
        e->text[e->len] = '\0';
}

const char *options_label(const char *origin, const char *option, char *buf, size_t size)
{
        if (origin)
                return origin;
        snprintf(buf, size, "--%s", option);
        return buf;
}

static char *own(Options *o, char *p)
{
        if (!p)
                return NULL;
        if (o->n_owned >= o->n_owned_allocated) {
                size_t n = o->n_owned_allocated ? 2 * o->n_owned_allocated : 16;
                char **l = realloc(o->owned, n * sizeof *l);
                if (!l) {
                        free(p);
                        return NULL;
                }
                o->owned = l;
                o->n_owned_allocated = n;
        }
        o->owned[o->n_owned++] = p;
        return p;
}

void options_done(Options *o)
{
        for (size_t i = 0; i < o->n_owned; i++)
                free(o->owned[i]);
        free(o->owned);
        o->owned = NULL;
        o->n_owned = o->n_owned_allocated = 0;
}

/* Where the value being applied comes from: an owned "FILE:LINE: key", or NULL for the command line. */
static const char *current_origin(LoadState *st)
{
        char *s;
        if (!st->file)
                return NULL;
        if (asprintf(&s, "%s:%u: %s", st->file, st->line, st->key) < 0)
                return NULL;
        return own(st->o, s);
}

#define FAIL(...)                                                                                               \
        do {                                                                                                    \
                options_error(st->errors, __VA_ARGS__);                                                         \
                return -ERANGE;                                                                                 \
        } while (0)

static const char *option_name(int id)
{
        for (const struct option *lo = long_options; lo->name; lo++)
                if (lo->val == id)
                        return lo->name;
        return "?";
}

/* Applies one option, by its id, to st->o: the single place where values are checked, for the command line
 * and the configuration file alike. The label in messages is "--name" or "FILE:LINE: name". */
static int option_apply(LoadState *st, int id, const char *value)
{
        Options *o = st->o;
        const char *name = option_name(id);
        char lbuf[64];
        const char *origin = current_origin(st);
        const char *label = st->file ? (origin ?: name) : options_label(NULL, name, lbuf, sizeof lbuf);
        unsigned u;
        uint64_t v;

        switch (id) {
        case 'w':
                if (parse_unsigned(value, 1, WORKERS_MAX, &o->workers) < 0)
                        FAIL("%s: invalid value '%s': expected a whole number from 1 to %u", label, value,
                             WORKERS_MAX);
                break;
        case ARG_MIN_WORKERS:
        case ARG_MAX_WORKERS:
                if (parse_unsigned(value, 1, WORKERS_MAX, &u) < 0)
                        FAIL("%s: invalid value '%s': expected a whole number from 1 to %u", label, value,
                             WORKERS_MAX);
                if (id == ARG_MIN_WORKERS) {
                        o->min_workers = u;
                        st->min_set = true;
                        st->min_origin = origin;
                } else {
                        o->max_workers = u;
                        st->max_set = true;
                        st->max_origin = origin;
                }
                break;
        case ARG_WORKER_IDLE_TIMEOUT:
                if (parse_duration(value, &v) < 0 || (v > 0 && v < 10 * USEC_PER_MSEC))
                        FAIL("%s: invalid value '%s': expected 0 (never) or a duration of at least 10ms such as "
                             "500ms, 10s or 2min (a bare number is seconds)", label, value);
                o->worker_idle_timeout_usec = v;
                break;
        case ARG_ACCEPT:
                if (streq(value, "shared"))
                        o->accept = ACCEPT_SHARED;
                else if (streq(value, "dispatch"))
                        o->accept = ACCEPT_DISPATCH;
                else
                        FAIL("%s: invalid value '%s': expected 'shared' or 'dispatch'", label, value);
                st->accept_arg = value;
                st->accept_origin = origin;
                break;
        case 'l':
                if (!st->file && !st->cmdline_listen) {
                        /* The command line's addresses replace the file's. */
                        st->cmdline_listen = true;
                        o->n_listen = 0;
                }
                if (o->n_listen >= LISTEN_MAX)
                        FAIL("%s: too many addresses: at most %u are allowed", label, LISTEN_MAX);
                if (parse_listen_address(value, &o->listen[o->n_listen]) < 0)
                        FAIL("%s: invalid value '%s': expected [http:|scgi:]IPV4:PORT, [http:|scgi:][IPV6]:PORT or "
                             "[http:|scgi:]/absolute/path", label, value);
                if (o->n_listen == 0)
                        o->listen_origin = origin;
                o->n_listen++;
                break;
        case 'r':
                if (!*value)
                        FAIL("%s: invalid value '': expected a directory", label);
                o->root = value;
                o->root_origin = origin;
                break;
        case 'h':
                o->help = true;
                break;
        case ARG_VERSION:
                o->version = true;
                break;
        case ARG_CONFIG:
                if (!*value)
                        FAIL("%s: invalid value '': expected a file", label);
                o->config = value;
                break;
        case ARG_CHECK_CONFIG:
                o->check_config = true;
                break;
        case ARG_WORKER_WATCHDOG:
                if (parse_duration(value, &v) < 0)
                        FAIL("%s: invalid value '%s': " DURATION_ALLOWED, label, value);
                if (v > 0 && v < 10 * USEC_PER_MSEC)
                        FAIL("%s: invalid value '%s': expected 0 (off) or at least 10ms", label, value);
                o->worker_watchdog_usec = v;
                o->worker_watchdog_set = true;
                break;
        case ARG_GRACEFUL_TIMEOUT:
                if (parse_duration(value, &o->graceful_timeout_usec) < 0)
                        FAIL("%s: invalid value '%s': " DURATION_ALLOWED, label, value);
                break;
        case ARG_EXIT_IDLE_TIME:
                if (parse_duration(value, &o->exit_idle_usec) < 0)
                        FAIL("%s: invalid value '%s': " DURATION_ALLOWED, label, value);
                st->exit_idle_arg = value;
                st->exit_idle_origin = origin;
                break;
        case ARG_MAX_REQUESTS:
        case ARG_MAX_REQUESTS_JITTER: {
                unsigned long long n;
                char *end;
                errno = 0;
                n = strtoull(value, &end, 10);
                if (*value < '0' || *value > '9' || *end || errno || n > (1ULL << 48))
                        FAIL("%s: invalid value '%s': expected a whole number from 0 to %llu", label, value,
                             1ULL << 48);
                *(id == ARG_MAX_REQUESTS ? &o->max_requests : &o->max_requests_jitter) = n;
                break;
        }
        case ARG_READY_WORKERS:
                if (parse_unsigned(value, 1, WORKERS_MAX, &u) < 0)
                        FAIL("%s: invalid value '%s': expected a whole number from 1 to the number of workers "
                             "(--min-workers)", label, value);
                o->ready_workers = u;
                st->ready_origin = origin;
                break;
        case ARG_EXEC_READY:
                if (streq(value, "started"))
                        o->exec_ready = EXEC_READY_STARTED;
                else if (streq(value, "notify"))
                        o->exec_ready = EXEC_READY_NOTIFY;
                else
                        FAIL("%s: invalid value '%s': expected 'started' or 'notify'", label, value);
                st->exec_ready_arg = value;
                st->exec_ready_origin = origin;
                break;
        case ARG_EXEC: {
                /* The file's way of saying "-- COMMAND ARG...": split on blanks, no quoting. */
                char *copy = own(o, strdup(value)), **argv;
                size_t n = 0;
                if (!copy)
                        FAIL("%s: out of memory", label);
                argv = (char **) own(o, calloc(strlen(copy) / 2 + 2, sizeof(char *)));
                if (!argv)
                        FAIL("%s: out of memory", label);
                for (char *tok = strtok(copy, " \t"); tok; tok = strtok(NULL, " \t"))
                        argv[n++] = tok;
                if (n == 0)
                        FAIL("%s: invalid value '': expected a command and its arguments, separated by blanks", label);
                o->exec_argv = argv;
                o->exec_origin = origin;
                break;
        }
        case ARG_HANDLER: {
                HandlerSpec *h = &o->handlers[o->n_handlers];
                const char *path = value;
                if (!st->file && !st->cmdline_handler) {
                        st->cmdline_handler = true;
                        o->n_handlers = 0;
                        h = &o->handlers[0];
                }
                if (o->n_handlers >= HANDLERS_MAX)
                        FAIL("%s: too many modules: at most %u are allowed", label, HANDLERS_MAX);
                *h = (HandlerSpec){};
                if (value[0] == '/' && strchr(value, '=')) {
                        size_t n = (size_t) (strchr(value, '=') - value);
                        while (n > 1 && value[n - 1] == '/')
                                n--; /* "/app/" means "/app" */
                        if (n >= sizeof h->prefix || memchr(value, '?', n) || memchr(value, '%', n))
                                FAIL("%s: invalid value '%s': expected [/PREFIX=]MODULE.so with a plain path of at "
                                     "most %u bytes as PREFIX", label, value, HANDLER_PREFIX_MAX - 1);
                        if (!(n == 1 && value[0] == '/')) /* "/" is every request: "" */
                                memcpy(h->prefix, value, n);
                        path = strchr(value, '=') + 1;
                }
                if (!*path)
                        FAIL("%s: invalid value '%s': expected [/PREFIX=]MODULE.so", label, value);
                for (size_t i = 0; i < o->n_handlers; i++)
                        if (streq(o->handlers[i].prefix, h->prefix))
                                FAIL("%s: invalid value '%s': prefix '%s' already has a module ('%s'); expected one "
                                     "module per prefix", label, value, h->prefix[0] ? h->prefix : "/",
                                     o->handlers[i].path);
                h->path = path;
                o->handler_origin[o->n_handlers] = origin;
                o->n_handlers++;
                break;
        }
        case ARG_SERVER_HEADER:
                for (const char *p = value; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                FAIL("%s: invalid value '%s': expected printable text, or '' for no Server header",
                                     label, value);
                if (strlen(value) > 128)
                        FAIL("%s: invalid value '%s': expected at most 128 bytes", label, value);
                o->server_header = value;
                break;
        case ARG_HEADER_TIMEOUT:
        case ARG_KEEPALIVE_TIMEOUT:
        case ARG_BODY_TIMEOUT:
        case ARG_WRITE_TIMEOUT:
                if (parse_duration(value, &v) < 0 || v < USEC_PER_MSEC)
                        FAIL("%s: invalid value '%s': expected a duration of at least 1ms such as 500ms, 10s or 2min "
                             "(a bare number is seconds)", label, value);
                *(id == ARG_HEADER_TIMEOUT      ? &o->header_timeout_usec
                  : id == ARG_KEEPALIVE_TIMEOUT ? &o->keepalive_timeout_usec
                  : id == ARG_BODY_TIMEOUT      ? &o->body_timeout_usec
                                                : &o->write_timeout_usec) = v;
                break;
        case ARG_OPEN_FILE_CACHE_VALID:
                if (parse_duration(value, &v) < 0 || (v > 0 && v < USEC_PER_MSEC) || v > 3600 * USEC_PER_SEC)
                        FAIL("%s: invalid value '%s': expected 0 (no cache) or a duration from 1ms to 1h such as "
                             "500ms or 2s (a bare number is seconds)", label, value);
                o->open_file_cache_valid_usec = v;
                break;
        case ARG_MAX_REQUEST_LINE:
                if (parse_size(value, MAX_REQUEST_LINE_CAP, &v) < 0 || v < 16)
                        FAIL("%s: invalid value '%s': expected a size from 16 to %uK", label, value,
                             MAX_REQUEST_LINE_CAP / 1024);
                o->max_request_line = (unsigned) v;
                break;
        case ARG_MAX_HEADER_SIZE:
                if (parse_size(value, MAX_HEADER_SIZE_CAP, &v) < 0 || v < 256)
                        FAIL("%s: invalid value '%s': expected a size from 256 to %uM", label, value,
                             MAX_HEADER_SIZE_CAP / (1024 * 1024));
                o->max_header_size = (unsigned) v;
                break;
        case ARG_MAX_HEADERS:
                if (parse_unsigned(value, 1, MAX_HEADERS_CAP, &o->max_headers) < 0)
                        FAIL("%s: invalid value '%s': expected a whole number from 1 to %u", label, value,
                             MAX_HEADERS_CAP);
                break;
        case ARG_MAX_BODY_SIZE:
                if (parse_size(value, MAX_BODY_SIZE_CAP, &o->max_body_size) < 0)
                        FAIL("%s: invalid value '%s': expected a size from 0 to 1T, such as 512K or 10M", label,
                             value);
                break;
        case ARG_MAX_CONNECTIONS:
                if (parse_unsigned(value, 1, MAX_CONNECTIONS_CAP, &o->max_connections) < 0)
                        FAIL("%s: invalid value '%s': expected a whole number from 1 to %u", label, value,
                             MAX_CONNECTIONS_CAP);
                break;
        case ARG_KEEPALIVE_REQUESTS:
                if (parse_unsigned(value, 0, UINT_MAX, &o->keepalive_requests) < 0)
                        FAIL("%s: invalid value '%s': expected a whole number (0: no limit)", label, value);
                break;
        case ARG_WORKER:
                if (parse_unsigned(value, 0, WORKERS_MAX - 1, &o->worker_slot) < 0)
                        FAIL("%s: invalid value '%s': expected a slot from 0 to %u", label, value, WORKERS_MAX - 1);
                o->worker_mode = true;
                break;
        default:
                FAIL("%s: unsupported option", label);
        }
        return 0;
}

/* ---- the configuration file ------------------------------------------------------------------------- */
#ifndef OPTIONS_NO_CONFIG_FILE

/* Keys of the file: the long options that take a value, except those about the command line itself. */
static int file_key(const char *name)
{
        if (streq(name, "exec"))
                return ARG_EXEC;
        for (const struct option *lo = long_options; lo->name; lo++)
                if (streq(lo->name, name) && lo->has_arg == required_argument && lo->val != ARG_WORKER &&
                    lo->val != ARG_CONFIG)
                        return lo->val;
        return -1;
}

typedef struct Reader {
        FILE *f;
        LoadState *st;
        char *buf;
        size_t allocated;
        bool indented; /* the line read last starts with a blank */
} Reader;

static void check_pending_line(LoadState *st)
{
        if (st->line_pending && !st->line_handled)
                options_error(st->errors, "%s:%u: syntax error: expected 'key = value', a [drover] section header or "
                              "a comment (# or ;)", st->file, st->line);
        st->line_pending = false;
}

/* inih's reader, one line per call: it counts lines (inih's own count is not passed to the handler in
 * Debian's build), rejects lines too long for inih's buffer instead of letting it split them, and notes lines
 * that must reach the handler, so that every malformed line is reported, not only the first. */
static char *reader_next(char *str, int num, void *stream)
{
        Reader *r = stream;
        LoadState *st = r->st;
        ssize_t n;

        check_pending_line(st);
        n = getline(&r->buf, &r->allocated, r->f);
        if (n < 0)
                return NULL;
        st->line++;
        st->line_handled = false;
        if (n >= num) {
                options_error(st->errors, "%s:%u: line too long: at most %d bytes are allowed", st->file, st->line,
                              num - 2);
                strcpy(str, "\n");
                return str;
        }
        memcpy(str, r->buf, (size_t) n + 1);
        r->indented = r->buf[0] == ' ' || r->buf[0] == '\t';
        const char *p = r->buf + strspn(r->buf, " \t\r\n");
        if (st->line == 1 && strneq(p, "\xEF\xBB\xBF", 3))
                p += 3;
        st->line_pending = *p && *p != '#' && *p != ';' && !(*p == '[' && strchr(p, ']'));
        return str;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
        Reader *r = user;
        LoadState *st = r->st;
        Options *o = st->o;
        char *v;
        int id;

        st->line_handled = true;
        st->key = name;
        if (r->indented) {
                /* With inih's multi-line support an indented line continues the previous key: say so rather
                 * than append to it. */
                const char *p = r->buf + strspn(r->buf, " \t");
                size_t k = strlen(name);
                if (!strneq(p, name, k) || p[k + strspn(p + k, " \t")] != '=') {
                        options_error(st->errors, "%s:%u: indented line: continuation lines are not supported; "
                                      "expected 'key = value' at the start of the line", st->file, st->line);
                        return 1;
                }
        }
        if (*section && !streq(section, "drover")) {
                if (!st->reported_section || !streq(st->reported_section, section)) {
                        st->reported_section = own(o, strdup(section));
                        options_error(st->errors, "%s:%u: unknown section [%s]: expected [drover] (or keys before "
                                      "any section)", st->file, st->line, section);
                }
                return 1;
        }
        id = file_key(name);
        if (id < 0) {
                options_error(st->errors, "%s:%u: unknown key '%s': expected one of the long option names of "
                              "drover --help (such as workers, root, listen, handler, exec)", st->file, st->line,
                              name);
                return 1;
        }
        v = own(o, strdup(value));
        if (!v) {
                options_error(st->errors, "%s:%u: %s: out of memory", st->file, st->line, name);
                return 1;
        }
        (void) option_apply(st, id, v);
        return 1; /* carry on: every problem is reported */
}

static int load_file(LoadState *st, const char *path, bool explicit)
{
        Reader r = { .st = st };
        char lbuf[64];
        int k;

        r.f = fopen(path, "re");
        if (!r.f) {
                if (errno == ENOENT && !explicit)
                        return 0; /* no default file: the built-in defaults */
                int e = errno; /* for %m, whatever the label's formatting does */
                const char *label = explicit ? options_label(NULL, "config", lbuf, sizeof lbuf) : "configuration file";
                errno = e;
                options_error(st->errors, "%s: invalid value '%s': %m; expected a readable configuration file", label,
                              path);
                return -ERANGE;
        }
        st->file = path;
        st->line = 0;
        k = ini_parse_stream(reader_next, &r, on_ini_value, &r);
        check_pending_line(st);
        if (k < 0)
                options_error(st->errors, "%s: cannot parse: out of memory", path);
        fclose(r.f);
        free(r.buf);
        st->file = NULL;
        st->key = NULL;
        return 0;
}

#else
static int load_file(LoadState *st, const char *path, bool explicit)
{
        options_error(st->errors, "%s: a configuration file is read by drover, not by drover-worker", path);
        return -ERANGE;
}
#endif

/* ---- loading ----------------------------------------------------------------------------------------- */

typedef struct CommandArg {
        int id;
        const char *value;
} CommandArg;

int options_load(const OptionsSource *src, Options *ret, OptionsErrors *errors)
{
        int argc = src->argc;
        char **argv = src->argv;
        /* Built in place: as a local copied out at the end, its 16 KiB (mostly the table of --listen addresses)
         * cost the stack's pages and ret's, page faults at every start of every process. */
        Options *o = ret;

        *o = (Options){
                .workers = src->default_workers,
                .worker_idle_timeout_usec = WORKER_IDLE_TIMEOUT_DEFAULT_USEC,
                .worker_watchdog_usec = WORKER_WATCHDOG_DEFAULT_USEC,
                .graceful_timeout_usec = GRACEFUL_TIMEOUT_DEFAULT_USEC,
                .header_timeout_usec = HEADER_TIMEOUT_DEFAULT_USEC,
                .keepalive_timeout_usec = KEEPALIVE_TIMEOUT_DEFAULT_USEC,
                .body_timeout_usec = BODY_TIMEOUT_DEFAULT_USEC,
                .write_timeout_usec = WRITE_TIMEOUT_DEFAULT_USEC,
                .open_file_cache_valid_usec = OPEN_FILE_CACHE_VALID_DEFAULT_USEC,
                .max_request_line = MAX_REQUEST_LINE_DEFAULT,
                .max_header_size = MAX_HEADER_SIZE_DEFAULT,
                .max_headers = MAX_HEADERS_DEFAULT,
                .max_body_size = MAX_BODY_SIZE_DEFAULT,
                .max_connections = MAX_CONNECTIONS_DEFAULT,
                .keepalive_requests = KEEPALIVE_REQUESTS_DEFAULT,
                .server_header = "drover",
        };
        LoadState st = { .o = o, .errors = errors };
        _cleanup_free_ CommandArg *args = NULL;
        const char *last_value = NULL, *config = NULL;
        char **cmdline_exec = NULL;
        size_t n_args = 0;
        bool skip_file = false;
        char lbuf[64];
        int c, r = 0;

        options_errors_reset(errors);
        args = calloc((size_t) argc + 1, sizeof *args);
        if (!args) {
                options_error(errors, "out of memory");
                return -ENOMEM;
        }

        /* First the command line's syntax, remembering each option: the file comes first, but which file,
         * and whether to read one, is said on the command line. */
        optind = 0; /* full re-initialisation, so the parser can run more than once (tests, reload) */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:w:l:r:h", long_options, NULL)) >= 0) {
                last_value = optarg;
                switch (c) {
                case ':':
                        options_error(errors, "option '%s' requires a value", argv[optind - 1]);
                        return -EINVAL;
                case '?': {
                        const char *arg = argv[optind - 1];
                        if (strneq(arg, "--", 2)) {
                                /* A long option: unknown, or a flag given a value ("--help=yes"). */
                                size_t n = strcspn(arg + 2, "=");
                                for (const struct option *lo = long_options; lo->name; lo++)
                                        if (strlen(lo->name) == n && strneq(arg + 2, lo->name, n)) {
                                                options_error(errors, "option '--%s' does not take a value", lo->name);
                                                return -EINVAL;
                                        }
                                options_error(errors, "unknown option '%.*s'", (int) (n + 2), arg);
                        } else if (optopt > 0 && optopt < 0x80)
                                options_error(errors, "unknown option '-%c'", optopt);
                        else
                                options_error(errors, "unknown option '%s'", arg);
                        return -EINVAL;
                }
                default:
                        args[n_args++] = (CommandArg){ c, optarg };
                        if (c == ARG_CONFIG)
                                config = optarg;
                        else if (c == 'h' || c == ARG_VERSION || c == ARG_WORKER)
                                skip_file = true;
                }
        }
        if (optind < argc) {
                /* getopt_long stops at "--" (consumed) or at the first non-option ("+" in optstring). A "--"
                 * that was the value of the option before it ("-r --") is not the separator. */
                if (!streq(argv[optind - 1], "--") || argv[optind - 1] == last_value) {
                        options_error(errors, "unexpected argument '%s' (a COMMAND goes after '--')", argv[optind]);
                        return -EINVAL;
                }
                cmdline_exec = &argv[optind];
        }

        /* Workers get everything on their command line from the supervisor; --help and --version need none. */
        if (!skip_file) {
                if (config)
                        (void) load_file(&st, config, true);
                else if (src->default_config)
                        (void) load_file(&st, src->default_config, false);
        }

        for (size_t i = 0; i < n_args; i++)
                (void) option_apply(&st, args[i].id, args[i].value);
        if (cmdline_exec) {
                o->exec_argv = cmdline_exec;
                o->exec_origin = NULL;
        }

        /* Only when it is needed: sysconf() reads /sys/devices/system/cpu/online (and faults in its buffers), a
         * cost for nothing to a supervisor given -w and to every worker, which has no use for the pool's size
         * (and is not told it). */
        if (o->workers == 0 && o->worker_mode)
                o->workers = 1;
        else if (o->workers == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                o->workers = (unsigned) (cpus < 1 ? 1 : cpus > WORKERS_MAX ? WORKERS_MAX : cpus);
        }

        /* The pool's bounds: -w N alone is a fixed pool of N; a bound given alone takes -w (or the default) as
         * the other one where that is consistent with it. */
        if (!st.min_set && !st.max_set)
                o->min_workers = o->max_workers = o->workers;
        else if (!st.min_set)
                o->min_workers = MIN(o->workers, o->max_workers);
        else if (!st.max_set)
                o->max_workers = MAX(o->workers, o->min_workers);
        else if (o->min_workers > o->max_workers)
                options_error(errors, "%s: invalid value '%u': expected at most --max-workers (%u)",
                              options_label(st.min_origin, "min-workers", lbuf, sizeof lbuf), o->min_workers,
                              o->max_workers);

        /* Checks across options, each naming where the value came from. */
        if (o->ready_workers > o->min_workers)
                options_error(errors, "%s: invalid value '%u': expected at most the number of workers (%u)",
                              options_label(st.ready_origin, "ready-workers", lbuf, sizeof lbuf), o->ready_workers,
                              o->min_workers);
        if (o->accept == ACCEPT_DISPATCH && o->exec_argv)
                options_error(errors, "%s: invalid value '%s' with exec workers ('%s'): a connection handed over by "
                              "drover needs a built-in worker; expected 'shared'",
                              options_label(st.accept_origin, "accept", lbuf, sizeof lbuf), st.accept_arg,
                              o->exec_argv[0]);
        if (o->exec_argv && o->min_workers < o->max_workers)
                options_error(errors, "%s: invalid value '%u' with exec workers ('%s'): drover cannot see their "
                              "load to grow the pool; expected a fixed pool (-w N, or --max-workers equal to "
                              "--min-workers, %u)",
                              options_label(st.max_origin, "max-workers", lbuf, sizeof lbuf), o->max_workers,
                              o->exec_argv[0], o->min_workers);
        if (o->exit_idle_usec > 0 && o->exec_argv)
                options_error(errors, "%s: invalid value '%s' with exec workers ('%s'): drover cannot see their "
                              "connections; expected 0 (the default) or built-in workers",
                              options_label(st.exit_idle_origin, "exit-idle-time", lbuf, sizeof lbuf),
                              st.exit_idle_arg, o->exec_argv[0]);
        if (!o->exec_argv && st.exec_ready_arg && o->exec_ready != EXEC_READY_STARTED)
                options_error(errors, "%s: invalid value '%s' without a COMMAND: only exec workers (-- COMMAND or "
                              "exec=) have it", options_label(st.exec_ready_origin, "exec-ready", lbuf, sizeof lbuf),
                              st.exec_ready_arg);
        if (o->exec_argv && o->n_handlers > 0)
                options_error(errors, "%s: invalid value '%s' with exec workers ('%s'): modules run in built-in "
                              "workers only", options_label(o->handler_origin[0], "handler", lbuf, sizeof lbuf),
                              o->handlers[0].path, o->exec_argv[0]);
        if (o->exec_argv && !o->worker_watchdog_set)
                o->worker_watchdog_usec = 0; /* most programs never send WATCHDOG=1 */

        if (errors->n > 0)
                r = -ERANGE;
        return r;
}

int options_parse(int argc, char *argv[], unsigned default_workers, Options *ret, char *err, size_t errlen)
{
        OptionsSource src = { .argc = argc, .argv = argv, .default_workers = default_workers };
        static OptionsErrors errors; /* large: keep it off the stack */
        Options o;
        int r;

        r = options_load(&src, &o, &errors);
        if (r < 0) {
                /* The first problem, as a single line. */
                snprintf(err, errlen, "%.*s", (int) strcspn(errors.text, "\n"), errors.text);
                options_done(&o);
                return r == -ENOMEM ? -ERANGE : r;
        }
        *ret = o;
        return 0;
}

int options_worker_args(const Options *o, char *buf, size_t size, char **ret_argv, size_t n_argv)
{
        size_t used = 0, n = 0;

#define ARG(...)                                                                                                \
        do {                                                                                                    \
                if (n + 1 >= n_argv)                                                                            \
                        return -ENOBUFS;                                                                        \
                ret_argv[n++] = buf + used;                                                                     \
                APPENDF_OR_RETURN(buf, size, used, __VA_ARGS__);                                                \
                used++; /* past the NUL, which fitted */                                                        \
        } while (0)

        ARG("--header-timeout=%lluus", (unsigned long long) o->header_timeout_usec);
        ARG("--keepalive-timeout=%lluus", (unsigned long long) o->keepalive_timeout_usec);
        ARG("--body-timeout=%lluus", (unsigned long long) o->body_timeout_usec);
        ARG("--write-timeout=%lluus", (unsigned long long) o->write_timeout_usec);
        ARG("--open-file-cache-valid=%lluus", (unsigned long long) o->open_file_cache_valid_usec);
        ARG("--max-request-line=%u", o->max_request_line);
        ARG("--max-header-size=%u", o->max_header_size);
        ARG("--max-headers=%u", o->max_headers);
        ARG("--max-body-size=%llu", (unsigned long long) o->max_body_size);
        ARG("--max-connections=%u", o->max_connections);
        ARG("--keepalive-requests=%u", o->keepalive_requests);
        ARG("--server-header=%s", o->server_header);
        for (size_t i = 0; i < o->n_handlers; i++) {
                if (o->handlers[i].prefix[0])
                        ARG("--handler=%s=%s", o->handlers[i].prefix, o->handlers[i].path);
                else
                        ARG("--handler=%s", o->handlers[i].path);
        }
#undef ARG
        ret_argv[n] = NULL;
        return (int) n;
}
