/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "supervisor/supervisor.h"

static int bind_address(const ListenAddress *a, ListenSocket *ret)
{
        static const int one = 1;
        _cleanup_close_ int fd = -EBADF;
        char text[160];

        (void) format_listen_address(a, text, sizeof text);
        fd = socket(a->sockaddr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "--listen: cannot create a socket for '%s': %m", text), -EX_OSERR;

        if (a->sockaddr.sa.sa_family == AF_UNIX) {
                struct stat st;
                /* A socket file left by an earlier run would make bind() fail; anything else we leave alone. */
                if (lstat(a->sockaddr.un.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
                        (void) unlink(a->sockaddr.un.sun_path);
        } else
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (a->sockaddr.sa.sa_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);

        if (bind(fd, &a->sockaddr.sa, a->socklen) < 0)
                return log_error_errno(errno, "--listen: cannot bind '%s': %m", text), -EX_CONFIG;
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "--listen: cannot listen on '%s': %m", text), -EX_OSERR;

        *ret = (ListenSocket){ .protocol = a->protocol };
        snprintf(ret->name, sizeof ret->name, "%s", protocol_to_string(a->protocol));
        if (a->sockaddr.sa.sa_family == AF_UNIX)
                snprintf(ret->unlink, sizeof ret->unlink, "%s", a->sockaddr.un.sun_path);
        ret->fd = TAKE_FD(fd);
        return 0;
}

int sockets_collect(const Options *o, ListenSocket **ret, size_t *ret_n)
{
        ListenSocket *s = NULL;
        char **names = NULL;
        size_t n_s = 0;
        int n, r = 0;

        /* Checks LISTEN_PID against our PID (sockets meant for another process are not ours) and unsets the
         * variables, so nothing of systemd's hand-over leaks into the workers' environment. */
        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "cannot take the sockets passed by systemd: %m"), -EX_OSERR;

        if (n > 0) {
                if (o->n_listen > 0)
                        log_notice("systemd passed %i socket(s); ignoring --listen", n);
                s = calloc((size_t) n, sizeof *s);
                if (!s)
                        return log_error_errno(ENOMEM, "%m"), -EX_OSERR;
                for (int i = 0; i < n; i++) {
                        int fd = SD_LISTEN_FDS_START + i;
                        const char *name = names ? names[i] : "unknown";
                        s[n_s++] = (ListenSocket){ .fd = fd,
                                                   .protocol = protocol_from_fd_name(name, PROTOCOL_HTTP) };
                        /* Workers get the name systemd gave (an exec worker may rely on its own names); a
                         * built-in worker maps it to the same protocol again. */
                        snprintf(s[i].name, sizeof s[i].name, "%s", name);
                        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                                log_error("socket %i ('%s') passed by systemd is not a listening stream socket: "
                                          "drover needs ListenStream= sockets",
                                          fd, name);
                                r = -EX_CONFIG;
                                break;
                        }
                        /* Never bind or listen() again on an inherited socket; but do not block on it, and
                         * keep it out of anything we exec except through the explicit hand-over. */
                        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                }
                for (int i = 0; names && i < n; i++)
                        free(names[i]);
                free(names);
        } else {
                if (o->n_listen == 0) {
                        log_error("no sockets: start drover from a socket unit (systemctl start drover.socket), "
                                  "under systemd-socket-activate -l 127.0.0.1:8080 --fdname=http drover, or "
                                  "with --listen=127.0.0.1:8080");
                        return -EX_CONFIG;
                }
                if (o->exit_idle_usec > 0) {
                        /* The idle exit relies on systemd keeping the socket: here the port would close with
                         * drover and refuse the next client instead of starting drover again. */
                        log_error("--exit-idle-time: not available with --listen: it needs the listening sockets "
                                  "from systemd (a socket unit), which keep the port open and start drover again "
                                  "on the next connection");
                        return -EX_CONFIG;
                }
                s = calloc(o->n_listen, sizeof *s);
                if (!s)
                        return log_error_errno(ENOMEM, "%m"), -EX_OSERR;
                for (size_t i = 0; i < o->n_listen && r == 0; i++) {
                        r = bind_address(&o->listen[i], &s[n_s]);
                        if (r == 0)
                                n_s++;
                }
        }

        if (r < 0) {
                sockets_free(s, n_s);
                return r;
        }
        *ret = s;
        *ret_n = n_s;
        return (int) n_s;
}

void sockets_free(ListenSocket *s, size_t n)
{
        for (size_t i = 0; s && i < n; i++) {
                if (s[i].unlink[0])
                        (void) unlink(s[i].unlink);
                safe_close(s[i].fd);
        }
        free(s);
}
