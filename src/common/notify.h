/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The sd_notify() protocol as spoken by workers: newline-separated VAR=VALUE assignments in one datagram.
 * Unknown assignments are ignored, as systemd does; drover's own carry the X_DROVER_ prefix.
 */
typedef struct NotifyMessage {
        bool ready;
        bool stopping;
        bool watchdog;
        bool watchdog_trigger;
        bool retire; /* X_DROVER_RETIRE=1: max-requests reached, replace me */
        bool has_status;
        char status[256];
        int errno_value; /* 0 if none */
} NotifyMessage;

/* Parses one datagram. Returns 0, or -EBADMSG if it holds a NUL byte or no assignment at all. */
int notify_parse(const char *buf, size_t len, NotifyMessage *ret);
