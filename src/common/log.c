/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "common/journal.h"
#include "common/log.h"

static const char *log_ident = "drover";
static int log_slot = -1;
static int log_max_level = LOG_INFO;
static bool log_journal;

/* $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected to stderr; only if stderr still is that
 * stream do we talk to the journal directly (a redirect by the operator must win). */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident, int worker_slot)
{
        log_ident = ident;
        log_slot = worker_slot;
        log_journal = stderr_is_journal();
        const char *lvl = getenv("DROVER_LOG_LEVEL");
        if (lvl && streq(lvl, "debug"))
                log_max_level = LOG_DEBUG;
}

void log_set_max_level(int level)
{
        log_max_level = level;
}

bool log_to_journal(void)
{
        return log_journal;
}

int log_internal(int level, int error, const LogContext *ctx, const char *format, ...)
{
        int saved = errno;
        char msg[2048];
        va_list ap;

        error = abs(error);
        if (level > log_max_level)
                goto out;

        errno = error; /* for %m */
        va_start(ap, format);
        (void) vsnprintf(msg, sizeof msg, format, ap);
        va_end(ap);

        int slot = ctx && ctx->slot >= 0 ? ctx->slot : log_slot;

        if (log_journal) {
                char f_msg[sizeof msg + 16], f_prio[32], f_ident[64], f_event[64], f_slot[48], f_pid[48],
                        f_errno[32], f_mid[64];
                struct iovec iov[8];
                size_t n = 0;

#define ADD(buf, ...)                                                                                           \
        do {                                                                                                    \
                int _l = snprintf(buf, sizeof buf, __VA_ARGS__);                                                \
                iov[n++] = (struct iovec){ buf, (size_t) MIN(_l, (int) sizeof buf - 1) };                      \
        } while (0)
                ADD(f_msg, "MESSAGE=%s", msg);
                ADD(f_prio, "PRIORITY=%i", level);
                ADD(f_ident, "SYSLOG_IDENTIFIER=%s", log_ident);
                if (ctx && ctx->event)
                        ADD(f_event, "DROVER_EVENT=%s", ctx->event);
                if (slot >= 0)
                        ADD(f_slot, "DROVER_WORKER_SLOT=%i", slot);
                if (ctx && ctx->pid > 0)
                        ADD(f_pid, "DROVER_WORKER_PID=%i", (int) ctx->pid);
                else if (log_slot >= 0)
                        ADD(f_pid, "DROVER_WORKER_PID=%i", (int) getpid());
                if (error > 0)
                        ADD(f_errno, "ERRNO=%i", error);
                if (ctx && ctx->message_id)
                        ADD(f_mid, "MESSAGE_ID=%s", ctx->message_id);
#undef ADD
                if (journal_send(NULL, iov, n) >= 0)
                        goto out;
                /* Fall through to stderr if the journal is gone. */
        }

        if (log_slot >= 0)
                fprintf(stderr, "%s[%i] worker %i: %s\n", log_ident, (int) getpid(), log_slot, msg);
        else
                fprintf(stderr, "%s[%i]: %s\n", log_ident, (int) getpid(), msg);
out:
        errno = saved;
        return -error;
}
