/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
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

/* Async-signal-safe decimal formatting for the child between clone and exec. */
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

/*
 * The child shares the supervisor's memory (CLONE_VM) while the supervisor is suspended (CLONE_VFORK) until
 * the child has exec'd or exited: no page table is copied, the supervisor takes no copy-on-write faults
 * afterwards, and the pidfd exists from birth. The price, and the invariants:
 *  - The child runs on child_stack, its own; everything else it touches is the supervisor's memory. It writes
 *    only to what is here for it: ChildArgs (exec_errno) and the LISTEN_PID=/WATCHDOG_PID= buffers, which
 *    nobody reads before it has exec'd (execve() copies them) or exited. It calls only async-signal-safe
 *    functions that neither allocate nor lock: a child stopped in the middle of malloc() would leave the
 *    supervisor's heap locked.
 *  - errno is thread-local, and the child runs on the supervisor's thread pointer: it clobbers the
 *    supervisor's errno. The supervisor reads nothing from errno across the clone but the clone's own failure.
 *  - Every signal is blocked around the clone, so no signal handler ever runs in the child on shared memory;
 *    the child resets every disposition before it unblocks anything.
 * child_stack is static: the supervisor is one thread and spawns one child at a time, and a child is done with
 * it before clone() returns.
 */
#define CHILD_STACK_SIZE (64 * 1024) /* child() and the few libc calls it makes; sanitizers' frames are larger */
static char child_stack[CHILD_STACK_SIZE] __attribute__((aligned(16)));

typedef struct ChildArgs {
        const SpawnContext *ctx;
        char **envp;
        char *listen_pid_value;
        char *watchdog_pid_value; /* NULL: no watchdog */
        pid_t parent;
        int exec_errno; /* set by the child when it fails before or in execve(); 0 if it exec'd */
} ChildArgs;

_noreturn_ static void child_fail(ChildArgs *a, const char *what)
{
        int e_num = errno;
        /* strerrordesc_np(): a constant string, not strerror()'s translation machinery (which may allocate). */
        const char *e = strerrordesc_np(e_num) ?: "Unknown error";
        struct iovec iov[] = {
                { (void *) "drover: worker: ", 16 }, { (void *) what, strlen(what) }, { (void *) ": ", 2 },
                { (void *) e, strlen(e) },           { (void *) "\n", 1 },
        };
        (void) !writev(STDERR_FILENO, iov, ELEMENTSOF(iov));
        a->exec_errno = e_num ?: EIO;
        _exit(EXIT_SPAWN_FAILED);
}

static int child(void *userdata)
{
        ChildArgs *a = userdata;
        const SpawnContext *ctx = a->ctx;
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
                child_fail(a, "prctl(PR_SET_PDEATHSIG)");
        if (getppid() != a->parent)
                _exit(EXIT_SPAWN_FAILED);

        /* A fresh signal state: the supervisor blocks the signals it handles through its event loop (and
         * spawn_worker() all of them, for the clone). */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(a, "sigprocmask");

        /* Sockets to 3, 4, ..., then the stats memfd and the dispatch pair, in two steps, so that an fd already
         * sitting at another's target number is not overwritten; dup2() to the target clears FD_CLOEXEC on
         * exactly these. */
        for (size_t i = 0; i < n_fds; i++) {
                tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, (int) (3 + n_fds));
                if (tmp[i] < 0)
                        child_fail(a, "fcntl(F_DUPFD_CLOEXEC)");
        }
        for (size_t i = 0; i < n_fds; i++)
                if (dup2(tmp[i], (int) (3 + i)) < 0)
                        child_fail(a, "dup2");
        /* Everything above goes, whether or not it was close-on-exec: the supervisor's own fds and anything its
         * parent leaked to it. */
        if (close_range((unsigned) (3 + n_fds), ~0U, 0) < 0)
                child_fail(a, "close_range");

        format_pid(a->listen_pid_value, getpid());
        if (a->watchdog_pid_value)
                format_pid(a->watchdog_pid_value, getpid());
        execve(ctx->exe, ctx->argv, a->envp);
        child_fail(a, ctx->exe);
}

int spawn_worker(const SpawnContext *ctx, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_errno)
{
        char listen_fds[32], listen_pid[32] = "LISTEN_PID=", fdnames[LISTEN_MAX * 65 + 32], notify[160],
                watchdog_usec[48], watchdog_pid[32] = "WATCHDOG_PID=", stats[64], dispatch[64];
        _cleanup_free_ char **envp = NULL;
        sigset_t all, saved;
        size_t n = 0;
        pid_t pid;
        int pidfd = -EBADF, r;

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
        /* The child writes its own PID into these before it execs: the values systemd would set. */
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

        ChildArgs args = {
                .ctx = ctx,
                .envp = envp,
                .listen_pid_value = listen_pid + STRLEN("LISTEN_PID="),
                .watchdog_pid_value = ctx->watchdog_usec > 0 ? watchdog_pid + STRLEN("WATCHDOG_PID=") : NULL,
                .parent = getpid(),
        };

        /* See child(): no signal handler may run in the child before it has reset them all. */
        sigfillset(&all);
        if (sigprocmask(SIG_SETMASK, &all, &saved) < 0)
                return negative_errno();
        /* The pidfd is close-on-exec from birth; the child cannot be reaped before we have it. */
        pid = clone(child, child_stack + sizeof child_stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args,
                    &pidfd);
        r = pid < 0 ? negative_errno() : 0; /* before anything else can set errno */
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                return r;

        /* Here the child has exec'd, or has failed and exited (or is exiting): CLONE_VFORK. */
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        *ret_exec_errno = args.exec_errno;
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
