/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/*
 * The service side of systemd's start-up protocols, written from their documentation (sd_listen_fds(3),
 * sd_watchdog_enabled(3), sd_notify(3) "NOTES"), which systemd declares stable for reimplementation.
 * drover-worker uses these instead of libsystemd: loading libsystemd and the six libraries it needs costs
 * every worker exec about 70 page faults (10-15 us each on a virtual machine) and relocated private memory.
 */

#define LISTEN_FDS_START 3

/*
 * $LISTEN_PID, $LISTEN_FDS and $LISTEN_FDNAMES, checked as sd_listen_fds_with_names() checks them. Pure: the
 * variables' values (NULL: unset) and our pid in, the number of fds and their names out. Returns 0 when the
 * fds are not for us (no LISTEN_PID or LISTEN_FDS, or LISTEN_PID is another process), the number of fds
 * (> 0), or -EINVAL for a malformed value, a count that is not positive, or a number of names other than
 * the number of fds. *ret_names (set only when the result is > 0) is a NULL-terminated list of n names,
 * "unknown" for each fd when $LISTEN_FDNAMES is unset or empty; free it with strv_free().
 */
int listen_fds_parse(const char *pid, const char *fds, const char *names, pid_t self, char ***ret_names);

/*
 * The same on the environment, like sd_listen_fds_with_names(true, ...): the three variables are unset
 * whatever the outcome, and the fds from LISTEN_FDS_START on are made close-on-exec (-EBADF if one is not
 * open).
 */
int listen_fds_take(char ***ret_names);

/*
 * $WATCHDOG_USEC and $WATCHDOG_PID, as sd_watchdog_enabled() checks them. Pure. Returns 1 and the interval
 * when the watchdog is on for us, 0 when it is off (WATCHDOG_USEC unset, or WATCHDOG_PID is another
 * process), -EINVAL for a malformed value or an interval of 0 or infinity.
 */
int watchdog_parse(const char *usec, const char *pid, pid_t self, uint64_t *ret_usec);

/* The same on the environment, unsetting both variables, like sd_watchdog_enabled(true, ...). */
int watchdog_take(uint64_t *ret_usec);

/*
 * A notify socket: $NOTIFY_SOCKET parsed once, and one datagram socket kept for the process's life rather
 * than one per message as sd_notify() does (a socket() and a close() saved per WATCHDOG=1).
 */
typedef struct Notifier {
        int fd; /* -EBADF: no $NOTIFY_SOCKET, every send is a no-op */
        struct sockaddr_un address;
        socklen_t address_len;
} Notifier;

#define NOTIFIER_NULL ((Notifier){ .fd = -EBADF })

/*
 * Parses a $NOTIFY_SOCKET value: an absolute path, or '@' and the name of an abstract socket. Pure. Returns
 * 0, or -EINVAL (empty, relative or too long) or -EAFNOSUPPORT (another form, such as vsock:).
 */
int notify_address_parse(const char *value, struct sockaddr_un *ret, socklen_t *ret_len);

/* Opens a notifier for address (NULL: none; every send does nothing). Returns 0 or -errno. */
int notifier_open(Notifier *n, const char *address);
/* Sends one message (newline-separated VAR=VALUE assignments). Returns 1 if sent, 0 without a socket, or
 * -errno (-EINVAL for an empty message). */
int notifier_send(const Notifier *n, const char *message);
void notifier_close(Notifier *n);
