/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/notify.h"
#include "config.h"
#include "supervisor/supervisor.h"

/*
 * The supervisor: one sd-event loop, no request handling. It holds the listening sockets, keeps one worker
 * process per slot, learns of every exit from the worker's pidfd (no SIGCHLD handler, no wait() loop), hears
 * the workers' sd_notify() messages on a private socket, and tells systemd about the pool as a whole.
 */

#define BACKOFF_MIN_USEC (100 * 1000ULL)
#define BACKOFF_MAX_USEC (30 * 1000 * 1000ULL)
#define HEALTHY_RUN_USEC (10 * 1000 * 1000ULL) /* a worker up this long resets its slot's backoff */
#define GRACEFUL_TIMEOUT_USEC (30 * 1000 * 1000ULL)

static const char *const state_names[] = {
        [WORKER_EMPTY] = "empty",
        [WORKER_STARTING] = "starting",
        [WORKER_READY] = "ready",
        [WORKER_STOPPING] = "stopping",
};

static uint64_t now_usec(Supervisor *s)
{
        uint64_t t = 0;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &t);
        return t;
}

static unsigned count_state(const Supervisor *s, WorkerState st)
{
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_slots; i++)
                n += s->slots[i].state == st;
        return n;
}

static unsigned count_alive(const Supervisor *s)
{
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_slots; i++)
                n += s->slots[i].pid > 0;
        return n;
}

/* STATUS= to systemd, only when it changed; READY=1 once every worker is ready. */
static void update_status(Supervisor *s)
{
        char status[sizeof s->status];
        unsigned ready = count_state(s, WORKER_READY);

        if (s->stopping)
                snprintf(status, sizeof status, "Stopping: %u workers left", count_alive(s));
        else {
                unsigned waiting = 0;
                for (unsigned i = 0; i < s->n_slots; i++)
                        waiting += s->slots[i].state == WORKER_EMPTY && s->slots[i].failures > 0;
                if (waiting > 0)
                        snprintf(status, sizeof status, "Ready: %u/%u workers, %u backing off after crashes",
                                 ready, s->n_slots, waiting);
                else
                        snprintf(status, sizeof status, "Ready: %u/%u workers", ready, s->n_slots);
        }

        if (!s->ready_sent && !s->stopping && ready == s->n_slots) {
                s->ready_sent = true;
                snprintf(s->status, sizeof s->status, "%s", status);
                (void) sd_notifyf(false, "READY=1\nSTATUS=%s", status);
                log_event(LOG_INFO, 0, "pool-ready", "%s", status);
                return;
        }
        if (!streq(status, s->status)) {
                snprintf(s->status, sizeof s->status, "%s", status);
                (void) sd_notifyf(false, "STATUS=%s", status);
        }
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata);
static int on_respawn_timer(sd_event_source *src, uint64_t usec, void *userdata);

static char **worker_argv(Supervisor *s, unsigned slot, char *slot_arg, size_t slot_arg_size, char *root_arg,
                          size_t root_arg_size, char *argv[static 5])
{
        size_t n = 0;
        argv[n++] = (char *) "drover";
        snprintf(slot_arg, slot_arg_size, "--worker=%u", slot);
        argv[n++] = slot_arg;
        if (s->options->root) {
                snprintf(root_arg, root_arg_size, "--root=%s", s->options->root);
                argv[n++] = root_arg;
        }
        argv[n] = NULL;
        return argv;
}

static int worker_start(WorkerSlot *w)
{
        Supervisor *s = w->supervisor;
        char slot_arg[32], root_arg[4200], *argv[5];
        pid_t pid;
        int pidfd, r;

        SpawnContext ctx = {
                .exe = s->exe,
                .argv = worker_argv(s, w->slot, slot_arg, sizeof slot_arg, root_arg, sizeof root_arg, argv),
                .envp = s->envp,
                .sockets = s->sockets,
                .n_sockets = s->n_sockets,
                .fdnames = s->fdnames,
                .notify_socket = s->notify_address,
        };
        r = spawn_worker(&ctx, &pid, &pidfd);
        if (r < 0)
                return log_worker_event(LOG_ERR, r, "spawn-failed", (int) w->slot, 0, "worker %u: spawn failed: %m",
                                        w->slot);

        r = sd_event_add_child_pidfd(s->event, &w->child_source, pidfd, WEXITED, on_child_exit, w);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                safe_close(pidfd);
                return log_worker_event(LOG_ERR, r, "spawn-failed", (int) w->slot, pid,
                                        "worker %u: cannot watch process %i: %m", w->slot, (int) pid);
        }
        (void) sd_event_source_set_child_pidfd_own(w->child_source, true);

        w->pid = pid;
        w->state = WORKER_STARTING;
        w->started_usec = now_usec(s);
        log_worker_event(LOG_INFO, 0, "spawn", (int) w->slot, pid, "worker %u: started as process %i", w->slot,
                         (int) pid);
        return 0;
}

/* Starts the slot's worker now, or after its backoff delay if it keeps dying young. */
static void worker_schedule(WorkerSlot *w)
{
        Supervisor *s = w->supervisor;

        if (s->stopping)
                return;
        if (w->failures == 0) {
                if (worker_start(w) >= 0)
                        return;
                w->failures++;
        }

        uint64_t delay = BACKOFF_MIN_USEC << MIN(w->failures - 1, 20U);
        delay = MIN(delay, BACKOFF_MAX_USEC);
        if (w->failures >= 2)
                log_worker_event(LOG_WARNING, 0, "backoff", (int) w->slot, 0,
                                 "worker %u: %u failed starts in a row, next attempt in %llu ms", w->slot,
                                 w->failures, (unsigned long long) (delay / 1000));
        w->respawn_timer = sd_event_source_unref(w->respawn_timer);
        int r = sd_event_add_time_relative(s->event, &w->respawn_timer, CLOCK_MONOTONIC, delay, 1000,
                                           on_respawn_timer, w);
        if (r < 0)
                log_error_errno(r, "worker %u: cannot arm the respawn timer: %m", w->slot);
}

static int on_respawn_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        WorkerSlot *w = userdata;
        w->respawn_timer = sd_event_source_unref(w->respawn_timer);
        if (worker_start(w) < 0) {
                w->failures++;
                worker_schedule(w);
        }
        update_status(w->supervisor);
        return 0;
}

static void describe_exit(const siginfo_t *si, char *buf, size_t len)
{
        if (si->si_code == CLD_EXITED)
                snprintf(buf, len, "exited with status %i", si->si_status);
        else
                snprintf(buf, len, "killed by signal SIG%s%s", sigabbrev_np(si->si_status) ?: "?",
                         si->si_code == CLD_DUMPED ? " (core dumped)" : "");
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata)
{
        WorkerSlot *w = userdata;
        Supervisor *s = w->supervisor;
        WorkerState was = w->state;
        char how[64];
        bool clean = si->si_code == CLD_EXITED && si->si_status == 0;

        describe_exit(si, how, sizeof how);
        w->child_source = sd_event_source_unref(w->child_source);
        w->pid = 0;
        w->state = WORKER_EMPTY;

        if (s->stopping || was == WORKER_STOPPING) {
                log_worker_event(clean ? LOG_INFO : LOG_WARNING, 0, "exit", (int) w->slot, si->si_pid,
                                 "worker %u: process %i %s", w->slot, (int) si->si_pid, how);
        } else {
                log_worker_event(LOG_WARNING, 0, "exit", (int) w->slot, si->si_pid,
                                 "worker %u: process %i %s unexpectedly (was %s); replacing it", w->slot,
                                 (int) si->si_pid, how, state_names[was]);
                /* A worker that dies young, or before it was ever ready, is failing: back off. */
                if (was != WORKER_READY || now_usec(s) - w->started_usec < HEALTHY_RUN_USEC)
                        w->failures++;
                else
                        w->failures = 0;
                worker_schedule(w);
        }

        if (s->stopping && count_alive(s) == 0)
                (void) sd_event_exit(s->event, 0);
        update_status(s);
        return 0;
}

static WorkerSlot *slot_by_pid(Supervisor *s, pid_t pid)
{
        if (pid <= 0)
                return NULL;
        for (unsigned i = 0; i < s->n_slots; i++)
                if (s->slots[i].pid == pid)
                        return &s->slots[i];
        return NULL;
}

static int on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Supervisor *s = userdata;

        for (;;) {
                char buf[4096];
                union {
                        struct cmsghdr hdr;
                        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
                } control;
                struct iovec iov = { buf, sizeof buf - 1 };
                struct msghdr mh = {
                        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control,
                };
                struct ucred *cred = NULL;
                NotifyMessage m;

                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return log_warning_errno(errno, "notify socket: %m"), 0;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET)
                                continue;
                        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (struct ucred *) CMSG_DATA(c);
                        else if (c->cmsg_type == SCM_RIGHTS) /* nobody may hand us fds this way */
                                for (int *f = (int *) CMSG_DATA(c);
                                     (char *) f < (char *) c + c->cmsg_len; f++)
                                        safe_close(*f);
                }

                WorkerSlot *w = slot_by_pid(s, cred ? cred->pid : 0);
                if (!w) {
                        log_notice("notify socket: dropping a message from process %i, which is not a worker",
                                   cred ? (int) cred->pid : -1);
                        continue;
                }
                if ((size_t) n >= sizeof buf - 1 || (mh.msg_flags & MSG_TRUNC) ||
                    notify_parse(buf, (size_t) n, &m) < 0) {
                        log_worker_event(LOG_NOTICE, 0, "bad-notify", (int) w->slot, w->pid,
                                         "worker %u: dropping a malformed notify message", w->slot);
                        continue;
                }

                if (m.ready && w->state == WORKER_STARTING) {
                        w->state = WORKER_READY;
                        log_worker_event(LOG_INFO, 0, "ready", (int) w->slot, w->pid, "worker %u: ready",
                                         w->slot);
                }
                if (m.stopping && w->state != WORKER_STOPPING) {
                        w->state = WORKER_STOPPING;
                        log_worker_event(LOG_INFO, 0, "stopping", (int) w->slot, w->pid, "worker %u: stopping",
                                         w->slot);
                }
                update_status(s);
        }
}

static int notify_socket_open(Supervisor *s)
{
        static const int one = 1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len = sizeof(sa_family_t);
        _cleanup_close_ int fd = -EBADF;

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* Autobind: the kernel picks a unique abstract address. Nothing on disk, which suits
         * ProtectSystem=strict and DynamicUser=, and no name to clash with another pool. */
        if (bind(fd, (struct sockaddr *) &sa, len) < 0)
                return negative_errno();
        len = sizeof sa;
        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return negative_errno();
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return negative_errno();

        size_t name_len = len - offsetof(struct sockaddr_un, sun_path);
        if (name_len < 2 || name_len >= sizeof s->notify_address)
                return -EINVAL;
        s->notify_address[0] = '@';
        memcpy(s->notify_address + 1, sa.sun_path + 1, name_len - 1);
        s->notify_address[name_len] = '\0';
        s->notify_fd = TAKE_FD(fd);
        return 0;
}

static int on_kill_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        Supervisor *s = userdata;
        for (unsigned i = 0; i < s->n_slots; i++)
                if (s->slots[i].pid > 0) {
                        log_worker_event(LOG_WARNING, 0, "kill", (int) i, s->slots[i].pid,
                                         "worker %u: still running after the graceful timeout; killing it", i);
                        (void) kill(s->slots[i].pid, SIGKILL);
                }
        return 0;
}

static void supervisor_stop(Supervisor *s, const char *why)
{
        if (s->stopping)
                return;
        s->stopping = true;
        log_event(LOG_INFO, 0, "stop", "%s: stopping %u workers", why, count_alive(s));
        (void) sd_notify(false, "STOPPING=1");
        for (unsigned i = 0; i < s->n_slots; i++) {
                WorkerSlot *w = &s->slots[i];
                w->respawn_timer = sd_event_source_unref(w->respawn_timer);
                if (w->pid > 0) {
                        w->state = WORKER_STOPPING;
                        (void) kill(w->pid, SIGTERM);
                }
        }
        if (count_alive(s) == 0) {
                (void) sd_event_exit(s->event, 0);
                return;
        }
        (void) sd_event_add_time_relative(s->event, &s->kill_timer, CLOCK_MONOTONIC, GRACEFUL_TIMEOUT_USEC, 0,
                                          on_kill_timer, s);
        update_status(s);
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
        Supervisor *s = userdata;
        supervisor_stop(s, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        return 0;
}

static char *self_executable(void)
{
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n < 0)
                return NULL;
        buf[n] = '\0';
        /* After a package upgrade the running image is " (deleted)": exec the new file at the same path. */
        char *d = strstr(buf, " (deleted)");
        if (d && d[10] == '\0')
                *d = '\0';
        return strdup(buf);
}

static void supervisor_done(Supervisor *s)
{
        for (unsigned i = 0; s->slots && i < s->n_slots; i++) {
                WorkerSlot *w = &s->slots[i];
                w->respawn_timer = sd_event_source_unref(w->respawn_timer);
                if (w->child_source) {
                        /* Only reached on an error path: make sure nothing outlives us. */
                        (void) sd_event_source_send_child_signal(w->child_source, SIGKILL, NULL, 0);
                        w->child_source = sd_event_source_unref(w->child_source);
                }
        }
        free(s->slots);
        s->kill_timer = sd_event_source_unref(s->kill_timer);
        s->notify_source = sd_event_source_unref(s->notify_source);
        s->notify_fd = safe_close(s->notify_fd);
        s->event = sd_event_unref(s->event);
        sockets_free(s->sockets, s->n_sockets);
        free(s->fdnames);
        free(s->envp);
        free(s->exe);
}

int supervisor_main(const Options *o)
{
        Supervisor s = { .options = o, .notify_fd = -EBADF };
        sigset_t mask;
        int r, ret = EX_OSERR;

        log_setup("drover", -1);

        /* Everything that can be checked before forking: a bad root is a config error, not a crash loop. */
        {
                const char *root = o->root ?: DROVER_DEFAULT_ROOT;
                _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) {
                        log_error_errno(errno, "--root: invalid value '%s'%s: %m; expected a readable directory", root,
                                  o->root ? "" : " (the default site)");
                        return EX_CONFIG;
                }
        }

        r = sockets_collect(o, &s.sockets, &s.n_sockets);
        if (r < 0)
                return -r;

        size_t len = 1;
        for (size_t i = 0; i < s.n_sockets; i++)
                len += strlen(s.sockets[i].name) + 1;
        s.fdnames = calloc(1, len);
        s.exe = self_executable();
        s.envp = spawn_base_environment();
        s.n_slots = o->workers;
        s.slots = calloc(s.n_slots, sizeof *s.slots);
        if (!s.fdnames || !s.exe || !s.envp || !s.slots) {
                log_error_errno(ENOMEM, "%m");
                goto finish;
        }
        for (size_t i = 0; i < s.n_sockets; i++) {
                if (i > 0)
                        strcat(s.fdnames, ":");
                strcat(s.fdnames, s.sockets[i].name);
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD); /* sd-event's child sources want it blocked, pidfd or not */
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                log_error_errno(errno, "sigprocmask: %m");
                goto finish;
        }

        r = sd_event_default(&s.event);
        if (r < 0) {
                log_error_errno(r, "cannot create the event loop: %m");
                goto finish;
        }
        if ((r = sd_event_add_signal(s.event, NULL, SIGTERM, on_signal, &s)) < 0 ||
            (r = sd_event_add_signal(s.event, NULL, SIGINT, on_signal, &s)) < 0) {
                log_error_errno(r, "cannot watch signals: %m");
                goto finish;
        }

        r = notify_socket_open(&s);
        if (r < 0) {
                log_error_errno(r, "cannot create the workers' notify socket: %m");
                goto finish;
        }
        r = sd_event_add_io(s.event, &s.notify_source, s.notify_fd, EPOLLIN, on_notify, &s);
        if (r < 0) {
                log_error_errno(r, "cannot watch the notify socket: %m");
                goto finish;
        }

        for (unsigned i = 0; i < s.n_slots; i++) {
                s.slots[i] = (WorkerSlot){ .supervisor = &s, .slot = i };
                worker_schedule(&s.slots[i]);
        }
        update_status(&s);

        r = sd_event_loop(s.event);
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m");
                goto finish;
        }
        log_event(LOG_INFO, 0, "exit", "all workers stopped; exiting");
        ret = 0;
finish:
        supervisor_done(&s);
        return ret;
}
