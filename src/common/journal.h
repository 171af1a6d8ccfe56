/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * A writer of the journal's native protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/), written from its
 * documentation so that drover-worker need not load libsystemd: one datagram per record to
 * /run/systemd/journal/socket, each field "KEY=VALUE\n", or, for a value holding a newline, "KEY\n", the
 * value's length as 64-bit little-endian, the value and "\n".
 */

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/*
 * Encodes the fields (each "KEY=VALUE", as sd_journal_sendv() takes them) into buf. Pure. Returns the number
 * of bytes, or -EINVAL for a field without '=', or -ENOBUFS if they do not fit in size bytes.
 */
ssize_t journal_encode(const struct iovec *fields, size_t n, char *buf, size_t size);

/*
 * Sends one record to the journal's socket (path, or JOURNAL_SOCKET when NULL). The socket is opened on the
 * first call and kept for the process's life. Returns 0 or -errno: the caller writes to stderr instead.
 */
int journal_send(const char *path, const struct iovec *fields, size_t n);
