/* SPDX-License-Identifier: MIT */
/* sleep: answers after ?ms=N milliseconds of blocking sleep — a stand-in for a handler that waits on
 * something slow (a database, a backend) without giving the event loop back. While it sleeps, its worker
 * serves nothing else; the benchmarks use it to measure what that costs the other requests in each accept
 * mode.
 *
 * N is 0..5000 (SLEEP_MAX_MS). The cap is half the default --worker-watchdog (10 s): a worker pings its
 * watchdog at least every half deadline, so a sleep of up to half the deadline cannot get it killed. A
 * missing, empty, non-numeric or too large ms is answered 400 with a one-line reason; the first ms= of the
 * query counts.
 *
 *     cc -shared -fPIC $(pkg-config --cflags drover-handler) -o sleep.so sleep.c
 *     drover --handler=/sleep=./sleep.so
 *     curl 'http://127.0.0.1:8080/sleep?ms=50'
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <drover/handler.h>

#define SLEEP_MAX_MS 5000u

/* The value of the first "ms" parameter of the query (a pointer into it, not NUL-terminated), or NULL. */
static const char *find_ms(const char *q, size_t len, size_t *ret_len)
{
        const char *end = q + len;

        while (q < end) {
                const char *amp = memchr(q, '&', (size_t)(end - q));
                const char *next = amp ? amp : end;

                if (next - q >= 3 && memcmp(q, "ms=", 3) == 0) {
                        *ret_len = (size_t)(next - q - 3);
                        return q + 3;
                }
                q = amp ? amp + 1 : end;
        }
        return NULL;
}

/* Decimal digits only (no sign, no blanks, no "0x"), at most SLEEP_MAX_MS; the loop stops as soon as the
 * value passes the cap, so a long string of digits cannot overflow. */
static int parse_ms(const char *s, size_t len, unsigned *ret)
{
        unsigned v = 0;

        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
                if (v > SLEEP_MAX_MS)
                        return -ERANGE;
        }
        *ret = v;
        return 0;
}

static int reply(drover_response *resp, unsigned status, const char *text, size_t len)
{
        int r = drover_response_set_status(resp, status);
        if (r >= 0)
                r = drover_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
        if (r >= 0)
                r = drover_response_write(resp, text, len);
        return r;
}

static int sleep_handle(void *state, const drover_request *req, drover_response *resp)
{
        char text[160];
        const char *q, *v = NULL;
        size_t qlen, vlen = 0;
        unsigned ms;
        int k, r;

        q = drover_request_query(req, &qlen);
        if (q)
                v = find_ms(q, qlen, &vlen);
        if (!v) {
                k = snprintf(text, sizeof text, "sleep: missing ?ms=N, N milliseconds from 0 to %u\n",
                             SLEEP_MAX_MS);
                return reply(resp, 400, text, (size_t)k);
        }
        r = parse_ms(v, vlen, &ms);
        if (r < 0) {
                /* The value as sent (the raw query, still percent-encoded: no CR or LF), shortened. */
                k = snprintf(text, sizeof text, "sleep: invalid value '%.*s' for ms: %s, from 0 to %u\n",
                             (int)(vlen > 32 ? 32 : vlen), v,
                             r == -ERANGE ? "over the cap" : "expected whole milliseconds", SLEEP_MAX_MS);
                return reply(resp, 400, text, (size_t)k);
        }

        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        /* drover's workers take their signals through a signalfd, but a handler installed by another module
         * or a library interrupts the sleep: go on with what is left, so the answer never comes early. */
        while (nanosleep(&ts, &ts) < 0)
                if (errno != EINTR)
                        return -errno;

        k = snprintf(text, sizeof text, "slept %u ms\n", ms);
        return reply(resp, 200, text, (size_t)k);
}

const drover_handler drover_module = {
        .abi_version = DROVER_HANDLER_ABI_VERSION,
        .name = "sleep",
        .handle = sleep_handle,
};
