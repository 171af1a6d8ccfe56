/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "supervisor/supervisor.h"

extern char **environ;

#define EXIT_SPAWN_FAILED 127

/* Variables systemd sets for the supervisor that must not reach a worker: each worker gets its own. */
static const char *const private_variables[] = {
        "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET=", "WATCHDOG_PID=", "WATCHDOG_USEC=",
};

char **spawn_base_environment(void)
{
        size_t n = 0, k = 0;
        char **env;

        while (environ[n])
                n++;
        env = calloc(n + 1, sizeof *env);
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool skip = false;
                for (size_t j = 0; j < ELEMENTSOF(private_variables); j++)
                        if (strneq(environ[i], private_variables[j], strlen(private_variables[j])))
                                skip = true;
                if (!skip)
                        env[k++] = environ[i];
        }
        env[k] = NULL;
        return env;
}

/* Async-signal-safe decimal formatting for the child between fork and exec. */
static void format_pid(char *buf, pid_t pid)
{
        char tmp[16];
        size_t n = 0;
        unsigned long v = (unsigned long) pid;
        do
                tmp[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                *buf++ = tmp[--n];
        *buf = '\0';
}

static void child_fail(int exec_fd, const char *what)
{
        /* Only async-signal-safe calls here: the supervisor's state is not ours to use. */
        int e_num = errno;
        const char *e = strerror(e_num);
        struct iovec iov[] = {
                { (void *) "drover: worker: ", 16 }, { (void *) what, strlen(what) }, { (void *) ": ", 2 },
                { (void *) e, strlen(e) },           { (void *) "\n", 1 },
        };
        (void) !writev(STDERR_FILENO, iov, ELEMENTSOF(iov));
        (void) !write(exec_fd, &e_num, sizeof e_num);
        _exit(EXIT_SPAWN_FAILED);
}

_noreturn_ static void child(const SpawnContext *ctx, char **envp, char *listen_pid_value, char *watchdog_pid_value,
                             pid_t parent, int exec_fd)
{
        sigset_t none;
        int src[LISTEN_MAX + 2], tmp[LISTEN_MAX + 2];
        size_t n_fds = 0;

        /* The inherited fds, in order: the sockets from 3, then the stats memfd, then the dispatch pair (see
         * spawn_worker() for their numbers). */
        for (size_t i = 0; i < ctx->n_sockets; i++)
                src[n_fds++] = ctx->sockets[i].fd;
        if (ctx->stats_fd >= 0)
                src[n_fds++] = ctx->stats_fd;
        if (ctx->dispatch_fd >= 0)
                src[n_fds++] = ctx->dispatch_fd;

        /* No worker may outlive the supervisor, even one killed with SIGKILL. Check the parent afterwards:
         * it may have died before the prctl() took effect. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                child_fail(exec_fd, "prctl(PR_SET_PDEATHSIG)");
        if (getppid() != parent)
                _exit(EXIT_SPAWN_FAILED);

        /* A fresh signal state: the supervisor blocks the signals it handles through its event loop. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(exec_fd, "sigprocmask");

        /* The exec-status pipe must survive the shuffle below: move it above every target first. */
        exec_fd = fcntl(exec_fd, F_DUPFD_CLOEXEC, (int) (3 + n_fds));
        if (exec_fd < 0)
                _exit(EXIT_SPAWN_FAILED);

        /* Sockets to 3, 4, ..., then the stats memfd and the dispatch pair, in two steps, so that an fd already sitting at another's
         * target number is not overwritten; dup2() to the target clears FD_CLOEXEC on exactly these. */
        for (size_t i = 0; i < n_fds; i++) {
                tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, (int) (3 + n_fds));
                if (tmp[i] < 0)
                        child_fail(exec_fd, "fcntl(F_DUPFD_CLOEXEC)");
        }
        for (size_t i = 0; i < n_fds; i++)
                if (dup2(tmp[i], (int) (3 + i)) < 0)
                        child_fail(exec_fd, "dup2");
        /* Everything above goes, whether or not it was close-on-exec: the supervisor's own fds and anything its
         * parent leaked to it; but the exec-status pipe, which is close-on-exec, until the exec. */
        if ((exec_fd > (int) (3 + n_fds) && close_range((unsigned) (3 + n_fds), (unsigned) exec_fd - 1, 0) < 0) ||
            close_range((unsigned) exec_fd + 1, ~0U, 0) < 0)
                child_fail(exec_fd, "close_range");

        format_pid(listen_pid_value, getpid());
        if (watchdog_pid_value)
                format_pid(watchdog_pid_value, getpid());
        execve(ctx->exe, ctx->argv, envp);
        child_fail(exec_fd, ctx->exe);
        _exit(EXIT_SPAWN_FAILED);
}

int spawn_worker(const SpawnContext *ctx, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd)
{
        char listen_fds[32], listen_pid[32] = "LISTEN_PID=", fdnames[LISTEN_MAX * 65 + 32], notify[160],
                watchdog_usec[48], watchdog_pid[32] = "WATCHDOG_PID=", stats[64], dispatch[64];
        _cleanup_free_ char **envp = NULL;
        _cleanup_close_ int exec_read = -EBADF, exec_write = -EBADF;
        size_t n = 0;
        pid_t parent = getpid(), pid;
        int pidfd, pipefd[2];

        while (ctx->envp[n])
                n++;
        envp = calloc(n + 9, sizeof *envp);
        if (!envp)
                return -ENOMEM;
        memcpy(envp, ctx->envp, n * sizeof *envp);
        snprintf(listen_fds, sizeof listen_fds, "LISTEN_FDS=%zu", ctx->n_sockets);
        snprintf(fdnames, sizeof fdnames, "LISTEN_FDNAMES=%s", ctx->fdnames);
        snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", ctx->notify_socket);
        envp[n++] = listen_fds;
        envp[n++] = fdnames;
        envp[n++] = notify;
        /* The child writes its own PID into these after fork(): the values systemd would set. */
        envp[n++] = listen_pid;
        if (ctx->watchdog_usec > 0) {
                snprintf(watchdog_usec, sizeof watchdog_usec, "WATCHDOG_USEC=%llu",
                         (unsigned long long) ctx->watchdog_usec);
                envp[n++] = watchdog_usec;
                envp[n++] = watchdog_pid;
        }
        if (ctx->stats_fd >= 0) {
                snprintf(stats, sizeof stats, "DROVER_STATS=%zu:%i", 3 + ctx->n_sockets, ctx->stats_index);
                envp[n++] = stats;
        }
        if (ctx->dispatch_fd >= 0) {
                /* --accept=dispatch: the worker's end of its pair, right after the memfd (3 + LISTEN_FDS + 1 when
                 * the worker has a stats record, as it always has unless the table is full). */
                snprintf(dispatch, sizeof dispatch, "DROVER_DISPATCH=%zu",
                         3 + ctx->n_sockets + (ctx->stats_fd >= 0));
                envp[n++] = dispatch;
        }
        envp[n] = NULL;

        if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        exec_read = pipefd[0];
        exec_write = pipefd[1];

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0)
                child(ctx, envp, listen_pid + STRLEN("LISTEN_PID="),
                      ctx->watchdog_usec > 0 ? watchdog_pid + STRLEN("WATCHDOG_PID=") : NULL, parent, exec_write);
        exec_write = safe_close(exec_write);

        /* The child cannot be reaped before this: only we wait for it, from the event loop. A pidfd is
         * close-on-exec from birth. */
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                int r = negative_errno();
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        *ret_exec_fd = TAKE_FD(exec_read);
        return 0;
}

int resolve_command(const char *name, char **ret)
{
        const char *path = getenv("PATH") ?: "/usr/local/bin:/usr/bin:/bin";
        char buf[4096];

        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return negative_errno();
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        for (const char *p = path; *p;) {
                const char *colon = strchrnul(p, ':');
                int n = snprintf(buf, sizeof buf, "%.*s/%s", (int) (colon - p), p, name);
                if (n > 0 && (size_t) n < sizeof buf && colon > p && access(buf, X_OK) == 0) {
                        *ret = strdup(buf);
                        return *ret ? 0 : -ENOMEM;
                }
                p = *colon ? colon + 1 : colon;
        }
        return -ENOENT;
}
