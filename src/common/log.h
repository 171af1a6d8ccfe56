/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <syslog.h>

#include "common/macro.h"

/*
 * One log call, one record. Under systemd (stderr is the journal stream named by $JOURNAL_STREAM) records go to
 * the journal (its native protocol: journal.h) with structured fields; otherwise they are lines on stderr.
 * All functions preserve errno and the *_errno ones return -abs(error) so callers can write
 * "return log_error_errno(r, ...)". The format may use %m for the error passed in.
 */

typedef struct LogContext {
        const char *event;    /* DROVER_EVENT=, or NULL */
        int slot;             /* DROVER_WORKER_SLOT=, or -1 */
        pid_t pid;            /* DROVER_WORKER_PID=, or 0 */
        const char *message_id; /* MESSAGE_ID=, or NULL */
} LogContext;

void log_setup(const char *ident, int worker_slot);
void log_set_max_level(int level);
bool log_to_journal(void);

int log_internal(int level, int error, const LogContext *ctx, const char *format, ...) _printf_(4, 5);

#define log_full_errno(level, error, ...) log_internal((level), (error), NULL, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)

/* A lifecycle event about one worker: carries DROVER_EVENT, DROVER_WORKER_SLOT and DROVER_WORKER_PID. */
#define log_worker_event(level, error, ev, s, p, ...)                                                          \
        log_internal((level), (error), &(const LogContext){ .event = (ev), .slot = (s), .pid = (p) }, __VA_ARGS__)
/* The same, with a MESSAGE_ID= that the journal catalog explains. */
#define log_worker_event_id(level, error, ev, s, p, mid, ...)                                                  \
        log_internal((level), (error),                                                                          \
                     &(const LogContext){ .event = (ev), .slot = (s), .pid = (p), .message_id = (mid) }, __VA_ARGS__)
#define log_event_id(level, error, ev, mid, ...)                                                                \
        log_internal((level), (error), &(const LogContext){ .event = (ev), .slot = -1, .message_id = (mid) },   \
                     __VA_ARGS__)
#define log_event(level, error, ev, ...)                                                                        \
        log_internal((level), (error), &(const LogContext){ .event = (ev), .slot = -1 }, __VA_ARGS__)

