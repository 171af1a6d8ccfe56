/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "common/notify.h"
#include "common/parse.h"

static bool line_is(const char *line, size_t len, const char *assignment)
{
        size_t n = strlen(assignment);
        return len == n && memcmp(line, assignment, n) == 0;
}

static bool line_value(const char *line, size_t len, const char *key, const char **ret, size_t *ret_len)
{
        size_t n = strlen(key);
        if (len <= n || memcmp(line, key, n) != 0 || line[n] != '=')
                return false;
        *ret = line + n + 1;
        *ret_len = len - n - 1;
        return true;
}

int notify_parse(const char *buf, size_t len, NotifyMessage *ret)
{
        NotifyMessage m = {};
        bool any = false;
        const char *v;
        size_t vlen;

        if (memchr(buf, '\0', len))
                return -EBADMSG;

        for (const char *p = buf, *end = buf + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t l = (size_t) ((nl ? nl : end) - p);

                if (l > 0 && memchr(p, '=', l))
                        any = true;
                if (line_is(p, l, "READY=1"))
                        m.ready = true;
                else if (line_is(p, l, "STOPPING=1"))
                        m.stopping = true;
                else if (line_is(p, l, "WATCHDOG=1"))
                        m.watchdog = true;
                else if (line_is(p, l, "WATCHDOG=trigger"))
                        m.watchdog_trigger = true;
                else if (line_is(p, l, "X_DROVER_RETIRE=1"))
                        m.retire = true;
                else if (line_value(p, l, "STATUS", &v, &vlen)) {
                        vlen = MIN(vlen, sizeof m.status - 1);
                        memcpy(m.status, v, vlen);
                        m.status[vlen] = '\0';
                        m.has_status = true;
                } else if (line_value(p, l, "ERRNO", &v, &vlen)) {
                        char num[16];
                        unsigned e;
                        if (vlen < sizeof num) {
                                memcpy(num, v, vlen);
                                num[vlen] = '\0';
                                if (parse_unsigned(num, 0, 4095, &e) >= 0)
                                        m.errno_value = (int) e;
                        }
                }
                p += l + 1;
        }

        if (!any)
                return -EBADMSG;
        *ret = m;
        return 0;
}
