/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/messages.h"
#include "common/notify.h"
#include "config.h"
#include "handlers/module.h"
#include "supervisor/supervisor.h"

/*
 * The supervisor: one sd-event loop, no request handling. It holds the listening sockets, keeps one worker
 * process per slot, learns of every exit from the worker's pidfd (no SIGCHLD handler, no wait() loop), hears
 * the workers' sd_notify() messages on a private socket, and tells systemd about the pool as a whole.
 *
 * Time is kept with deadlines, never with a polling tick: each process has a watchdog deadline (moved on each
 * WATCHDOG=1), a kill deadline once stopping, each slot a respawn deadline while backing off. While the pool is
 * idle the only wake-ups are the workers' pings and the systemd watchdog pets.
 */

#define BACKOFF_MIN_USEC (100 * USEC_PER_MSEC)
#define BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
#define HEALTHY_RUN_USEC (10 * USEC_PER_SEC) /* a worker up this long resets its slot's backoff */
#define WATCHDOG_KILL_GRACE_USEC (2 * USEC_PER_SEC) /* SIGABRT (core dump) to SIGKILL */
#define KILL_MARGIN_USEC (2 * USEC_PER_SEC)  /* beyond --graceful-timeout, which workers enforce themselves */
#define STATUS_INTERVAL_USEC USEC_PER_SEC

static const char *const process_state_names[] = {
        [PROCESS_STARTING] = "starting",
        [PROCESS_READY] = "ready",
        [PROCESS_STOPPING] = "stopping",
        [PROCESS_KILLED] = "killed",
};

static void update_status(Supervisor *s);
static int on_status_tick(sd_event_source *src, uint64_t usec, void *userdata);
static int on_idle_timer(sd_event_source *src, uint64_t usec, void *userdata);
static uint64_t slot_schedule(WorkerSlot *w);
static uint64_t backoff_delay(const WorkerSlot *w);
static bool slot_retiring(const WorkerSlot *w);
static void slot_start(WorkerSlot *w);
static void slots_start_rest(Supervisor *s);
static void reload_advance(Supervisor *s);
static void reload_finish(Supervisor *s, bool ok);
static int on_pair(sd_event_source *src, int fd, uint32_t revents, void *userdata);
static void process_unfree(Process *p);
static void pool_check(Supervisor *s);
static void dispatch_take_back(Process *p);

static uint64_t now_usec(Supervisor *s)
{
        uint64_t t = 0;
        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &t);
        return t;
}

static bool is_exec_pool(const Supervisor *s)
{
        return s->argv_exec != NULL;
}

static bool is_dispatch(const Supervisor *s)
{
        return s->options->accept == ACCEPT_DISPATCH;
}

/* ---- counting ---------------------------------------------------------------------------------------- */

static unsigned count_ready_slots(const Supervisor *s)
{
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_slots; i++)
                n += s->slots[i].current && s->slots[i].current->state == PROCESS_READY;
        return n;
}

static unsigned count_processes(const Supervisor *s)
{
        unsigned n = 0;
        for (Process *p = s->processes; p; p = p->next)
                n++;
        return n;
}

static unsigned count_backing_off(const Supervisor *s)
{
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_slots; i++)
                n += s->slots[i].respawn_timer != NULL;
        return n;
}

static void stats_totals(const Supervisor *s, uint64_t *ret_requests, uint64_t *ret_accepted, uint64_t *ret_conns)
{
        uint64_t req = s->requests_dead, acc = s->accepted_dead, conns = 0;
        for (Process *p = s->processes; p; p = p->next)
                if (p->stats_index >= 0) {
                        WorkerStats *st = &s->stats[p->stats_index];
                        req += stats_load(st->requests);
                        acc += stats_load(st->accepted);
                        conns += stats_load(st->connections);
                }
        *ret_requests = req;
        *ret_accepted = acc;
        *ret_conns = conns;
}

/* ---- shared stats records ---------------------------------------------------------------------------- */

static int stats_open(Supervisor *s)
{
        _cleanup_close_ int fd = -EBADF;
        void *p;

        if (is_exec_pool(s))
                return 0;
        /* Room for every slot's current process and replacement, plus processes still draining after
         * several quick reloads, for as many slots as a reload may grow the pool to; a process that finds no
         * free record simply runs without one. The memfd's pages exist only once touched. */
        s->stats_capacity = 4 * (size_t) WORKERS_MAX + 16;
        fd = memfd_create("drover-stats", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (ftruncate(fd, (off_t) (s->stats_capacity * sizeof(WorkerStats))) < 0)
                return negative_errno();
        p = mmap(NULL, s->stats_capacity * sizeof(WorkerStats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        s->stats_used = calloc(s->stats_capacity, sizeof(bool));
        if (!s->stats_used) {
                munmap(p, s->stats_capacity * sizeof(WorkerStats));
                return -ENOMEM;
        }
        s->stats = p;
        s->stats_fd = TAKE_FD(fd);
        return 0;
}

static int stats_acquire(Supervisor *s)
{
        for (size_t i = 0; s->stats && i < s->stats_capacity; i++)
                if (!s->stats_used[i]) {
                        s->stats_used[i] = true;
                        memset(&s->stats[i], 0, sizeof s->stats[i]);
                        return (int) i;
                }
        return -1;
}

static void stats_release(Supervisor *s, Process *p)
{
        if (p->stats_index < 0)
                return;
        WorkerStats *st = &s->stats[p->stats_index];
        s->requests_dead += stats_load(st->requests);
        s->accepted_dead += stats_load(st->accepted);
        /* The other workers read these to share the load (worker.c): a dead worker holds no connection and
         * watches no listener. */
        stats_store(st->accepting, ACCEPT_OUT);
        stats_store(st->connections, 0);
        s->stats_used[p->stats_index] = false;
        p->stats_index = -1;
}

/* ---- processes --------------------------------------------------------------------------------------- */

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata);
static int on_exec_started(sd_event_source *src, void *userdata);
static int on_process_watchdog(sd_event_source *src, uint64_t usec, void *userdata);
static int on_process_kill(sd_event_source *src, uint64_t usec, void *userdata);

static Process *process_free(Process *p)
{
        if (!p)
                return NULL;
        Supervisor *s = p->supervisor;
        if (p->prev)
                p->prev->next = p->next;
        else
                s->processes = p->next;
        if (p->next)
                p->next->prev = p->prev;
        stats_release(s, p);
        dispatch_take_back(p);
        sd_event_source_unref(p->child_source);
        sd_event_source_unref(p->exec_source);
        sd_event_source_unref(p->watchdog_timer);
        sd_event_source_unref(p->kill_timer);
        sd_event_source_disable_unref(p->pair_source);
        free(p);
        return NULL;
}

/* Whether a one-shot deadline is armed (sd-event turns a one-shot source off before dispatching it). */
static bool timer_pending(sd_event_source *src)
{
        return src && sd_event_source_get_enabled(src, NULL) > 0;
}

/* (Re)arms a one-shot deadline, creating the source on first use. */
static int arm_timer(Supervisor *s, sd_event_source **src, uint64_t usec_from_now, sd_event_time_handler_t cb,
                     void *userdata)
{
        if (*src) {
                int r = sd_event_source_set_time_relative(*src, usec_from_now);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(*src, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time_relative(s->event, src, CLOCK_MONOTONIC, usec_from_now, USEC_PER_MSEC, cb,
                                          userdata);
}

static void process_mark_ready(Process *p);

#define START_TIMEOUT_USEC (90 * USEC_PER_SEC)

static uint64_t start_timeout(const Process *p)
{
        return p->watchdog_usec ?: START_TIMEOUT_USEC;
}

static Process *process_spawn(WorkerSlot *w)
{
        Supervisor *s = w->supervisor;
        const Options *o = s->options;
        char slot_arg[32], root_arg[4200], graceful_arg[64], maxreq_arg[64], engine_args[16384];
        char *builtin_argv[8 + 16 + HANDLERS_MAX];
        _cleanup_close_ int pair_fd = -EBADF, worker_pair_fd = -EBADF;
        Process *p;
        size_t n = 0;
        int pidfd, exec_errno, r;

        if (is_dispatch(s)) {
                /* Close-on-exec from birth: only this worker inherits its end (spawn_worker() dup2()s it into
                 * place), no other worker ever sees either end. */
                int pair[2];
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
                        log_worker_event(LOG_ERR, errno, "spawn-failed", (int) w->index, 0,
                                         "worker %u: socketpair: %m", w->index);
                        return NULL;
                }
                pair_fd = pair[0];
                worker_pair_fd = pair[1];
        }

        p = calloc(1, sizeof *p);
        if (!p) {
                log_error_errno(ENOMEM, "worker %u: %m", w->index);
                return NULL;
        }
        *p = (Process){ .supervisor = s, .slot = w, .slot_index = w->index, .state = PROCESS_STARTING,
                        .generation = s->generation, .stats_index = stats_acquire(s),
                        .watchdog_usec = o->worker_watchdog_usec, .graceful_usec = o->graceful_timeout_usec,
                        .exec_ready = o->exec_ready, .handed_fd = -EBADF };

        if (!is_exec_pool(s)) {
                builtin_argv[n++] = (char *) "drover-worker";
                snprintf(slot_arg, sizeof slot_arg, "--worker=%u", w->index);
                builtin_argv[n++] = slot_arg;
                if (o->root) {
                        snprintf(root_arg, sizeof root_arg, "--root=%s", o->root);
                        builtin_argv[n++] = root_arg;
                }
                snprintf(graceful_arg, sizeof graceful_arg, "--graceful-timeout=%lluus",
                         (unsigned long long) o->graceful_timeout_usec);
                builtin_argv[n++] = graceful_arg;
                if (o->max_requests > 0) {
                        /* Jitter so that workers started together do not all retire together. */
                        uint64_t jitter = 0;
                        if (o->max_requests_jitter > 0 && getrandom(&jitter, sizeof jitter, GRND_NONBLOCK) < 0)
                                jitter = (uint64_t) now_usec(s);
                        if (o->max_requests_jitter > 0)
                                jitter %= o->max_requests_jitter + 1;
                        snprintf(maxreq_arg, sizeof maxreq_arg, "--max-requests=%llu",
                                 (unsigned long long) (o->max_requests + jitter));
                        builtin_argv[n++] = maxreq_arg;
                }
                r = options_worker_args(o, engine_args, sizeof engine_args, builtin_argv + n,
                                        ELEMENTSOF(builtin_argv) - n);
                assert(r >= 0); /* sized for the longest options the parser accepts */
                n += (size_t) r;
                builtin_argv[n] = NULL;
        }

        SpawnContext ctx = {
                .exe = s->exe,
                .argv = is_exec_pool(s) ? s->argv_exec : builtin_argv,
                .envp = s->envp,
                .sockets = s->sockets,
                .n_sockets = s->n_sockets,
                .fdnames = s->fdnames,
                .notify_socket = s->notify_address,
                .watchdog_usec = o->worker_watchdog_usec,
                .stats_fd = p->stats_index >= 0 ? s->stats_fd : -EBADF,
                .stats_index = p->stats_index,
                .dispatch_fd = worker_pair_fd,
        };
        r = spawn_worker(&ctx, &p->pid, &pidfd, &exec_errno);
        if (r < 0) {
                log_worker_event(LOG_ERR, r, "spawn-failed", (int) w->index, 0, "worker %u: spawn failed: %m",
                                 w->index);
                stats_release(s, p);
                free(p);
                return NULL;
        }

        /* Linked first: from here on process_free() undoes everything. */
        p->next = s->processes;
        if (s->processes)
                s->processes->prev = p;
        s->processes = p;
        p->started_usec = now_usec(s);

        r = sd_event_add_child_pidfd(s->event, &p->child_source, pidfd, WEXITED, on_child_exit, p);
        if (r < 0) {
                (void) kill(p->pid, SIGKILL);
                (void) waitpid(p->pid, NULL, 0);
                safe_close(pidfd);
                log_worker_event(LOG_ERR, r, "spawn-failed", (int) w->index, p->pid,
                                 "worker %u: cannot watch process %i: %m", w->index, (int) p->pid);
                return process_free(p);
        }
        (void) sd_event_source_set_child_pidfd_own(p->child_source, true);

        if (pair_fd >= 0) {
                worker_pair_fd = safe_close(worker_pair_fd);
                r = sd_event_add_io(s->event, &p->pair_source, pair_fd, EPOLLIN, on_pair, p);
                if (r < 0) {
                        /* Without its pair the worker can never be given a connection: not a worker. */
                        (void) kill(p->pid, SIGKILL);
                        log_worker_event(LOG_ERR, r, "spawn-failed", (int) w->index, p->pid,
                                         "worker %u: cannot watch its dispatch socket: %m", w->index);
                } else {
                        (void) sd_event_source_set_io_fd_own(p->pair_source, true);
                        TAKE_FD(pair_fd);
                }
        }

        /* The start deadline: READY=1 within the watchdog period, or within START_TIMEOUT_USEC if there is no
         * watchdog (systemd's default TimeoutStartSec=). */
        (void) arm_timer(s, &p->watchdog_timer, start_timeout(p), on_process_watchdog, p);

        log_worker_event(LOG_INFO, 0, "spawn", (int) w->index, p->pid, "worker %u: started as process %i%s",
                         w->index, (int) p->pid, s->reloading ? " (reload)" : "");
        if (exec_errno > 0)
                /* Its exit, seen through the pidfd, is a failed start like any other. */
                log_worker_event(LOG_ERR, exec_errno, "exec-failed", (int) w->index, p->pid,
                                 "worker %u: cannot execute '%s': %m", w->index, s->exe);
        else if (is_exec_pool(s) && p->exec_ready == EXEC_READY_STARTED)
                /* An exec worker in "started" mode is ready now that it has exec'd, like Type=exec; but from the
                 * event loop: the caller has yet to give it its place in the slot, and a rolling reload of
                 * such workers must not recurse through every slot from here. */
                (void) sd_event_add_defer(s->event, &p->exec_source, on_exec_started, p);
        return p;
}

/* Sends SIGTERM and arms the SIGKILL deadline. The process is detached from its slot by the caller. */
static void process_stop(Process *p)
{
        Supervisor *s = p->supervisor;

        if (p->state == PROCESS_STOPPING || p->state == PROCESS_KILLED)
                return;
        p->state = PROCESS_STOPPING;
        process_unfree(p);
        (void) kill(p->pid, SIGTERM);
        /* A stopping worker still pings, but its deadline is now the graceful timeout. */
        if (p->watchdog_timer)
                (void) sd_event_source_set_enabled(p->watchdog_timer, SD_EVENT_OFF);
        (void) arm_timer(s, &p->kill_timer, p->graceful_usec + KILL_MARGIN_USEC, on_process_kill, p);
}

static void process_detach(Process *p)
{
        WorkerSlot *w = p->slot;
        if (!w)
                return;
        if (w->current == p)
                w->current = NULL;
        if (w->replacement == p)
                w->replacement = NULL;
        p->slot = NULL;
}

static int on_process_kill(sd_event_source *src, uint64_t usec, void *userdata)
{
        Process *p = userdata;
        log_worker_event(LOG_WARNING, 0, "kill", (int) p->slot_index, p->pid,
                         "worker %u: process %i still running %s; sending SIGKILL", p->slot_index, (int) p->pid,
                         p->state == PROCESS_KILLED ? "after SIGABRT" : "after the graceful timeout");
        (void) kill(p->pid, SIGKILL);
        return 0;
}

static int on_process_watchdog(sd_event_source *src, uint64_t usec, void *userdata)
{
        Process *p = userdata;
        Supervisor *s = p->supervisor;
        WorkerSlot *w = p->slot;
        char busy[STATS_CURRENT_MAX + 64] = "";
        unsigned long long ms = (unsigned long long) (p->watchdog_usec / USEC_PER_MSEC);

        if (p->state == PROCESS_STARTING) {
                log_worker_event_id(LOG_WARNING, 0, "start-timeout", (int) p->slot_index, p->pid,
                                    MESSAGE_WORKER_START_TIMEOUT,
                                    "worker %u: process %i did not send READY=1 within %llu ms (%s); killing and "
                                    "replacing it",
                                    p->slot_index, (int) p->pid,
                                    (unsigned long long) (start_timeout(p) / USEC_PER_MSEC),
                                    ms ? "--worker-watchdog" : "start timeout");
        } else {
                if (p->stats_index >= 0) {
                        WorkerStats *st = &s->stats[p->stats_index];
                        if (stats_load(st->busy)) {
                                char cur[STATS_CURRENT_MAX];
                                memcpy(cur, st->current, sizeof cur);
                                cur[sizeof cur - 1] = '\0';
                                snprintf(busy, sizeof busy, " while handling \"%s\"", cur);
                        } else
                                snprintf(busy, sizeof busy, " while not handling any request");
                }
                log_worker_event_id(LOG_WARNING, 0, "watchdog", (int) p->slot_index, p->pid, MESSAGE_WORKER_WATCHDOG,
                                    "worker %u: process %i missed its liveness deadline (--worker-watchdog=%llums: "
                                    "its event loop is stuck)%s; sending SIGABRT, replacing it",
                                    p->slot_index, (int) p->pid, ms, busy);
        }

        /* SIGABRT first, so that a core dump shows where it was stuck; SIGKILL after a grace. The slot does not
         * wait for the exit: its replacement starts now. */
        p->state = PROCESS_KILLED;
        process_unfree(p);
        (void) kill(p->pid, SIGABRT);
        (void) arm_timer(s, &p->kill_timer, WATCHDOG_KILL_GRACE_USEC, on_process_kill, p);
        if (w) {
                bool was_current = w->current == p;
                process_detach(p);
                s->restarts++;
                w->failures++;
                if (s->reloading && s->reload_slot == w->index && !was_current)
                        reload_finish(s, false);
                else if (!w->replacement && (was_current || slot_retiring(w)))
                        slot_schedule(w);
        }
        update_status(s);
        return 0;
}

static int on_exec_started(sd_event_source *src, void *userdata)
{
        Process *p = userdata;

        p->exec_source = sd_event_source_disable_unref(p->exec_source);
        if (p->state == PROCESS_STARTING)
                process_mark_ready(p);
        return 0;
}

static void describe_exit(const siginfo_t *si, char *buf, size_t len)
{
        if (si->si_code == CLD_EXITED)
                snprintf(buf, len, "exited with status %i", si->si_status);
        else
                snprintf(buf, len, "was killed by signal SIG%s%s", sigabbrev_np(si->si_status) ?: "?",
                         si->si_code == CLD_DUMPED ? " (core dumped)" : "");
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata)
{
        Process *p = userdata;
        Supervisor *s = p->supervisor;
        WorkerSlot *w = p->slot;
        ProcessState was = p->state;
        bool clean = si->si_code == CLD_EXITED && si->si_status == 0;
        bool old_draining = was == PROCESS_STOPPING && p->generation != s->generation;
        char how[64];

        describe_exit(si, how, sizeof how);

        if (!w || s->stopping || was == PROCESS_STOPPING || was == PROCESS_KILLED) {
                log_worker_event(clean ? LOG_INFO : LOG_WARNING, 0, "exit", (int) p->slot_index, p->pid,
                                 "worker %u: process %i %s", p->slot_index, (int) p->pid, how);
                process_free(p);
        } else {
                bool was_replacement = w->replacement == p;
                uint64_t lived = now_usec(s) - p->started_usec;

                char next[96] = "; the worker it was to replace keeps serving";
                pid_t pid = p->pid;

                process_detach(p);
                process_free(p);
                s->restarts++;

                /* A worker that dies young, or before it was ever ready, is failing: back off. */
                if (was != PROCESS_READY || lived < HEALTHY_RUN_USEC)
                        w->failures++;
                else
                        w->failures = 0;

                bool respawn = w->active && !(was_replacement && s->reloading && s->reload_slot == w->index) &&
                               !w->replacement && (!w->current || slot_retiring(w));
                if (respawn && backoff_delay(w) > 0)
                        snprintf(next, sizeof next, "; restarting it in %llu ms (%u failures in a row)",
                                 (unsigned long long) (backoff_delay(w) / USEC_PER_MSEC), w->failures);
                else if (respawn)
                        snprintf(next, sizeof next, "; replacing it");
                log_worker_event_id(LOG_WARNING, 0, "crash", (int) w->index, pid, MESSAGE_WORKER_CRASH,
                                    "worker %u: process %i %s unexpectedly (was %s, after %llu ms)%s", w->index,
                                    (int) pid, how, process_state_names[was],
                                    (unsigned long long) (lived / USEC_PER_MSEC), next);
                if (was_replacement && s->reloading && s->reload_slot == w->index)
                        reload_finish(s, false);
                else if (respawn)
                        slot_schedule(w);
        }

        if (s->reloading && old_draining)
                reload_advance(s); /* it may have been the last old worker the reload waited for */
        slots_start_rest(s);
        if (s->exit_requested && !s->processes)
                (void) sd_event_exit(s->event, 0);
        update_status(s);
        return 0;
}

/*
 * At start-up the first built-in worker starts alone and the others once it is ready (or gone): under socket
 * activation a client is already waiting, and the first worker serves it sooner without the others' exec and
 * dynamic linking competing for the CPU (-w 2: ~15 ms to the first byte instead of ~21, as with -w 1). A
 * built-in worker says READY=1 only after serving what was already waiting (worker_main()), so that client
 * does not wait for the others either. A built-in worker is ready within milliseconds; exec workers may take
 * their time, so they all start at once.
 */
static void slots_start_rest(Supervisor *s)
{
        if (!s->rest_deferred)
                return;
        s->rest_deferred = false;
        if (s->stopping)
                return;
        for (unsigned i = 1; i < s->n_slots; i++)
                if (s->slots[i].active && !s->slots[i].current && !s->slots[i].respawn_timer)
                        slot_start(&s->slots[i]);
}

static void process_mark_ready(Process *p)
{
        Supervisor *s = p->supervisor;
        WorkerSlot *w = p->slot;

        p->state = PROCESS_READY;
        if (p->pair_source) {
                p->free = true;
                p->free_since = now_usec(s);
        }
        log_worker_event(LOG_INFO, 0, "ready", (int) p->slot_index, p->pid, "worker %u: process %i ready",
                         p->slot_index, (int) p->pid);
        if (p->watchdog_usec > 0)
                (void) arm_timer(s, &p->watchdog_timer, p->watchdog_usec, on_process_watchdog, p);
        else
                (void) sd_event_source_set_enabled(p->watchdog_timer, SD_EVENT_OFF);

        if (w && w->replacement == p) {
                /* Take over, then let the old one drain: at no moment is the slot without a ready worker. */
                Process *old = w->current;
                w->current = p;
                w->replacement = NULL;
                if (old) {
                        old->slot = NULL;
                        process_stop(old);
                }
        }
        if (s->reloading)
                reload_advance(s);
        slots_start_rest(s);
        update_status(s);
}

/* ---- slots ------------------------------------------------------------------------------------------- */

static int on_respawn_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        WorkerSlot *w = userdata;
        w->respawn_timer = sd_event_source_unref(w->respawn_timer);
        slot_start(w);
        update_status(w->supervisor);
        return 0;
}

/* Starts a process for the slot: its current one if it has none, else its replacement. */
static void slot_start(WorkerSlot *w)
{
        Process *p = process_spawn(w);
        if (!p) {
                w->failures++;
                if (!w->current)
                        slot_schedule(w);
                return;
        }
        if (!w->current)
                w->current = p;
        else
                w->replacement = p;
}

/* The slot's worker asked to be recycled and has no replacement starting: one that failed is retried, with
 * the slot's backoff, since the worker asks only once. */
static bool slot_retiring(const WorkerSlot *w)
{
        return w->current && w->current->retire_asked && !w->replacement && !w->supervisor->reloading;
}

/* The first failure is replaced at once; from the second in a row, 100 ms doubling up to 30 s. */
static uint64_t backoff_delay(const WorkerSlot *w)
{
        if (w->failures <= 1)
                return 0;
        return MIN(BACKOFF_MIN_USEC << MIN(w->failures - 2, 20U), BACKOFF_MAX_USEC);
}

/* Starts the slot's worker now, or after its backoff delay if it keeps failing. Returns the delay. */
static uint64_t slot_schedule(WorkerSlot *w)
{
        Supervisor *s = w->supervisor;

        if (s->stopping || w->respawn_timer || !w->active)
                return 0;
        if (w->failures <= 1) {
                slot_start(w);
                return 0;
        }

        uint64_t delay = backoff_delay(w);
        /* Each death is logged once, with the delay; entering backoff gets one summary entry of its own. */
        if (w->failures == 2)
                log_worker_event_id(LOG_WARNING, 0, "backoff", (int) w->index, 0, MESSAGE_WORKER_BACKOFF,
                                    "worker %u: failing repeatedly; backing off (restart delays double from %llu ms "
                                    "up to %llu s, reset after %llu s of healthy running)",
                                    w->index, (unsigned long long) (BACKOFF_MIN_USEC / USEC_PER_MSEC),
                                    (unsigned long long) (BACKOFF_MAX_USEC / USEC_PER_SEC),
                                    (unsigned long long) (HEALTHY_RUN_USEC / USEC_PER_SEC));
        int r = sd_event_add_time_relative(s->event, &w->respawn_timer, CLOCK_MONOTONIC, delay, USEC_PER_MSEC,
                                           on_respawn_timer, w);
        if (r < 0)
                log_error_errno(r, "worker %u: cannot arm the respawn timer: %m", w->index);
        return delay;
}

/* Replacement first, then the old one drains (recycling and reload): capacity never drops. */
static void slot_replace(WorkerSlot *w)
{
        if (w->supervisor->stopping || w->replacement || !w->current)
                return;
        slot_start(w);
}

/* ---- the dynamic pool -------------------------------------------------------------------------------- */

/*
 * The pool has --max-workers slots; the active ones have (or are getting) a worker. --min-workers of them are
 * always active; more are activated on demand and retired when idle. A retired slot's process is detached and
 * stopped like a replaced one (it finishes what it serves); the slot can be activated again at once.
 */

static unsigned count_active_slots(const Supervisor *s)
{
        unsigned n = 0;
        for (unsigned i = 0; i < s->n_slots; i++)
                n += s->slots[i].active;
        return n;
}

/* Activates the lowest inactive slot. Returns whether a worker is starting for it. */
static bool pool_grow(Supervisor *s, const char *why)
{
        if (s->stopping)
                return false;
        for (unsigned i = 0; i < s->n_slots; i++) {
                WorkerSlot *w = &s->slots[i];
                if (w->active)
                        continue;
                w->active = true;
                w->failures = 0;
                log_worker_event(LOG_INFO, 0, "pool-grow", (int) i, 0,
                                 "pool: %s; starting worker %u (%u of at most %u)", why, i, count_active_slots(s),
                                 s->n_slots);
                slot_start(w);
                return w->current && w->current->state == PROCESS_STARTING;
        }
        return false;
}

static void slot_retire(WorkerSlot *w, const char *why)
{
        Supervisor *s = w->supervisor;
        Process *procs[2] = { w->current, w->replacement };

        w->active = false;
        w->respawn_timer = sd_event_source_disable_unref(w->respawn_timer);
        log_worker_event(LOG_INFO, 0, "pool-shrink", (int) w->index, w->current ? w->current->pid : 0,
                         "pool: worker %u %s; stopping it (%u left, at least %u)", w->index, why,
                         count_active_slots(s), s->options->min_workers);
        for (size_t k = 0; k < ELEMENTSOF(procs); k++)
                if (procs[k]) {
                        process_detach(procs[k]);
                        process_stop(procs[k]);
                }
}

static int on_shrink_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        update_status(userdata); /* which runs pool_check() */
        return 0;
}

/* Dispatch mode: retires the workers above --min-workers that have been free for --worker-idle-timeout,
 * highest slots first (connections go to the lowest free slot, so the high ones are the spare ones), and arms
 * the timer for the next one that may be. */
static void pool_shrink_idle(Supervisor *s)
{
        uint64_t timeout = s->options->worker_idle_timeout_usec, now = now_usec(s), next = UINT64_MAX;
        unsigned active = count_active_slots(s), min = s->options->min_workers;

        /* Only the (active - min) highest active slots are spare: the low ones, which get the connections
         * first, are kept even if they happened to be idle longer. */
        unsigned spare = active > min ? active - min : 0;
        for (unsigned i = s->n_slots; i-- > 0 && timeout > 0 && !s->stopping && !s->reloading && spare > 0;) {
                WorkerSlot *w = &s->slots[i];
                Process *p = w->current;
                if (!w->active)
                        continue;
                spare--;
                if (!p || w->replacement || p->state != PROCESS_READY || !p->free)
                        continue;
                if (now - p->free_since >= timeout) {
                        slot_retire(w, "was idle for --worker-idle-timeout");
                        active--;
                } else
                        next = MIN(next, p->free_since + timeout);
        }
        if (next != UINT64_MAX && active > min)
                (void) arm_timer(s, &s->shrink_timer, next - now, on_shrink_timer, s);
        else if (s->shrink_timer)
                (void) sd_event_source_set_enabled(s->shrink_timer, SD_EVENT_OFF);
}

#define LOAD_SATURATED 900U /* permille: a worker busier than this cannot take more */
#define LOAD_SPARE 500U     /* the others could carry the load at this much each: one worker is spare */

/* Shared mode: the workers report their load in the shared stats records (refreshed on their pings: no
 * message and no syscall of their own for it). Grows when every ready worker is saturated — connections at
 * --max-connections, or its loop busy — one worker at a time (not again while one is starting); shrinks by
 * one when the rest could have carried the load at half capacity for --worker-idle-timeout. */
static void pool_check_load(Supervisor *s)
{
        const Options *o = s->options;
        unsigned n = 0, saturated = 0, active = count_active_slots(s);
        uint64_t load = 0, conns = 0, now = now_usec(s);
        bool starting = false;

        if (s->stopping || s->reloading || o->min_workers == o->max_workers || is_exec_pool(s))
                return;
        for (unsigned i = 0; i < s->n_slots; i++) {
                Process *p = s->slots[i].active ? s->slots[i].current : NULL;
                if (!p)
                        continue;
                starting |= p->state == PROCESS_STARTING || s->slots[i].replacement;
                if (p->state != PROCESS_READY || p->stats_index < 0)
                        continue;
                WorkerStats *st = &s->stats[p->stats_index];
                uint32_t l = stats_load(st->load), c = stats_load(st->connections);
                n++;
                load += l;
                conns += c;
                saturated += c >= o->max_connections || l >= LOAD_SATURATED;
        }
        if (n > 0 && saturated == n && !starting) {
                s->underloaded_since = 0;
                (void) pool_grow(s, "every worker is saturated");
                return;
        }
        if (active > o->min_workers && n == active && !starting && load < (uint64_t) LOAD_SPARE * (n - 1) &&
            conns < (uint64_t) o->max_connections / 2 * (n - 1)) {
                if (s->underloaded_since == 0)
                        s->underloaded_since = now;
                else if (o->worker_idle_timeout_usec > 0 && now - s->underloaded_since >= o->worker_idle_timeout_usec) {
                        s->underloaded_since = 0;
                        for (unsigned i = s->n_slots; i-- > 0;)
                                if (s->slots[i].active) {
                                        slot_retire(&s->slots[i], "was spare for --worker-idle-timeout");
                                        break;
                                }
                }
        } else
                s->underloaded_since = 0;
}

static void pool_check(Supervisor *s)
{
        if (is_dispatch(s))
                pool_shrink_idle(s);
        else
                pool_check_load(s);
}

/* ---- dispatch ---------------------------------------------------------------------------------------- */

/*
 * --accept=dispatch: the supervisor accepts, and hands each connection to a free worker over that worker's
 * socketpair (protocol in src/worker/dispatch.c). It watches the listening sockets only while it could place
 * what it accepts — a worker is free, a worker is starting for a connection not yet placed, or the pool may
 * grow — and otherwise leaves connections in the kernel's backlog, which systemd's socket keeps across our
 * restarts; the connections it holds itself (`pending`) are at most one per starting worker. It never reads
 * from a connection. A connection it accepted is closed only once a worker has it: the supervisor keeps its
 * copy from the hand-over until the worker's "B" (sent on receipt, before it reads anything), so if the send
 * fails, or the worker dies (or is stopped by a signal and killed by its watchdog) before taking it, the
 * connection goes to the next free worker, or waits, never lost. After "B" it is the worker's own: a worker
 * that dies busy loses only its own connection.
 */

#define PENDING_MAX ((size_t) WORKERS_MAX)
#define DISPATCH_ACCEPT_BATCH 16
#define ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)

/* The lowest free slot: load concentrates on the low slots, so the high ones stay idle and retire. */
static Process *dispatch_free_worker(const Supervisor *s)
{
        for (unsigned i = 0; i < s->n_slots; i++) {
                Process *p = s->slots[i].current;
                if (p && p->state == PROCESS_READY && p->free && p->pair_source)
                        return p;
        }
        return NULL;
}

static void dispatch_counts(const Supervisor *s, unsigned *ret_free, unsigned *ret_busy, unsigned *ret_starting)
{
        unsigned nfree = 0, busy = 0, starting = 0;
        for (unsigned i = 0; i < s->n_slots; i++) {
                Process *p = s->slots[i].current;
                if (!p)
                        continue;
                if (p->state == PROCESS_STARTING)
                        starting++;
                else if (p->state == PROCESS_READY)
                        *(p->free ? &nfree : &busy) += 1;
        }
        *ret_free = nfree;
        *ret_busy = busy;
        *ret_starting = starting;
}

/* How many more connections the supervisor could place now or as soon as a starting worker is ready. */
static long dispatch_capacity(const Supervisor *s)
{
        unsigned nfree, busy, starting;
        dispatch_counts(s, &nfree, &busy, &starting);
        return (long) nfree + (long) starting - (long) s->n_pending;
}

static void pair_close(Process *p)
{
        p->pair_source = sd_event_source_disable_unref(p->pair_source);
        p->free = false;
}

/* A free worker that is being stopped gets EOF on its pair now: it exits once it sees it. A busy one keeps
 * its pair until it says "F". */
static void process_unfree(Process *p)
{
        if (p->free)
                pair_close(p);
}

static int dispatch_send(Process *p, int fd, unsigned listener)
{
        unsigned char index = (unsigned char) listener;
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { &index, 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof control };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
        if (sendmsg(sd_event_source_get_io_fd(p->pair_source), &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                int r = negative_errno();
                log_worker_event(LOG_WARNING, r, "dispatch-failed", (int) p->slot_index, p->pid,
                                 "worker %u: cannot hand process %i a connection: %m; it goes to another worker",
                                 p->slot_index, (int) p->pid);
                pair_close(p);
                return r;
        }
        p->free = false;
        safe_close(p->handed_fd); /* a worker that never said "B" for the last one: it is served by now */
        p->handed_fd = fd;
        p->handed_listener = listener;
        return 0;
}

/* The oldest waiting connection leaves the queue; its fd is now the caller's. */
static void pending_pop(Supervisor *s)
{
        s->pending_head = (s->pending_head + 1) % PENDING_MAX;
        s->n_pending--;
}

/* A worker died holding a connection it had not taken yet: it goes first to the next free worker. */
static void dispatch_take_back(Process *p)
{
        Supervisor *s = p->supervisor;

        if (p->handed_fd < 0)
                return;
        if (!s->pending || s->n_pending >= PENDING_MAX) {
                p->handed_fd = safe_close(p->handed_fd);
                return;
        }
        log_worker_event(LOG_NOTICE, 0, "dispatch-retry", (int) p->slot_index, p->pid,
                         "worker %u: process %i ended before taking the connection handed to it; it goes to "
                         "another worker", p->slot_index, (int) p->pid);
        s->pending_head = (s->pending_head + PENDING_MAX - 1) % PENDING_MAX;
        s->pending[s->pending_head] = (PendingConn){ .fd = TAKE_FD(p->handed_fd), .listener = p->handed_listener };
        s->n_pending++;
}

/* Hands the waiting connections, oldest first, to free workers. */
static void dispatch_assign(Supervisor *s)
{
        while (s->n_pending > 0) {
                Process *p = dispatch_free_worker(s);
                if (!p)
                        return;
                const PendingConn *c = &s->pending[s->pending_head];
                if (dispatch_send(p, c->fd, c->listener) >= 0)
                        pending_pop(s);
        }
}

/* Places what waits, then watches the listening sockets only if what they hold could be placed. */
static void dispatch_refresh(Supervisor *s)
{
        if (!s->listen_sources)
                return;
        dispatch_assign(s);
        bool want = !s->stopping && !timer_pending(s->accept_retry_timer) && s->n_pending < PENDING_MAX &&
                    (dispatch_capacity(s) > 0 || count_active_slots(s) < s->n_slots);
        if (want == s->listening)
                return;
        for (size_t i = 0; i < s->n_sockets; i++)
                (void) sd_event_source_set_enabled(s->listen_sources[i], want ? SD_EVENT_ON : SD_EVENT_OFF);
        s->listening = want;
}

/* Busy/free flips are too frequent for a STATUS= each: the one-second tick shows them. */
static void dispatch_changed(Supervisor *s)
{
        dispatch_refresh(s);
        pool_check(s);
        if (!timer_pending(s->status_timer) && !s->stopping)
                (void) arm_timer(s, &s->status_timer, STATUS_INTERVAL_USEC, on_status_tick, s);
}

static int on_accept_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
        dispatch_refresh(userdata);
        return 0;
}

static int on_listen(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Supervisor *s = userdata;
        unsigned listener = 0;

        for (size_t i = 0; i < s->n_sockets; i++)
                if (s->sockets[i].fd == fd)
                        listener = (unsigned) i;
        for (int i = 0; i < DISPATCH_ACCEPT_BATCH && !s->stopping && s->n_pending < PENDING_MAX; i++) {
                if (dispatch_capacity(s) <= 0 && !pool_grow(s, "a connection waits and no worker is free"))
                        break;
                int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* The connection stays in the backlog; a level-triggered listener would spin. */
                                log_warning_errno(errno, "accept: %m; pausing accepts for %llu ms",
                                                  (unsigned long long) (ACCEPT_RETRY_USEC / USEC_PER_MSEC));
                                (void) arm_timer(s, &s->accept_retry_timer, ACCEPT_RETRY_USEC, on_accept_retry, s);
                                break;
                        }
                        continue; /* ECONNABORTED and network errors concern only that connection */
                }
                s->pending[(s->pending_head + s->n_pending) % PENDING_MAX] =
                        (PendingConn){ .fd = c, .listener = listener };
                s->n_pending++;
                s->dispatched++;
                dispatch_assign(s);
        }
        dispatch_changed(s);
        return 0;
}

/* The worker said "F": its connection is closed. */
static void dispatch_worker_free(Process *p)
{
        Supervisor *s = p->supervisor;

        if (p->state == PROCESS_READY && p->slot) {
                p->free = true;
                p->free_since = now_usec(s);
                return;
        }
        /* Being stopped: while drover itself stops, what it still holds goes to whoever finishes first (served
         * with Connection: close); otherwise EOF, and the worker exits. */
        if (p->state == PROCESS_STOPPING && s->stopping && s->n_pending > 0) {
                const PendingConn *c = &s->pending[s->pending_head];
                p->free = true;
                if (dispatch_send(p, c->fd, c->listener) >= 0) {
                        pending_pop(s);
                        return;
                }
        }
        pair_close(p);
}

static int on_pair(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
        Process *p = userdata;
        Supervisor *s = p->supervisor;

        while (p->pair_source) {
                char buf[16];
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n <= 0) {
                        pair_close(p); /* the worker is gone: its exit follows */
                        break;
                }
                if (buf[0] == 'B' && n == 1)
                        p->handed_fd = safe_close(p->handed_fd); /* the worker has it: ours goes */
                else if (buf[0] == 'F' && n == 1)
                        dispatch_worker_free(p);
                else
                        log_worker_event(LOG_NOTICE, 0, "bad-dispatch", (int) p->slot_index, p->pid,
                                         "worker %u: dropping a malformed dispatch message", p->slot_index);
        }
        dispatch_changed(s);
        if (s->exit_requested && !s->processes)
                (void) sd_event_exit(s->event, 0);
        return 0;
}

static int dispatch_open(Supervisor *s)
{
        if (!is_dispatch(s))
                return 0;
        s->listen_sources = calloc(s->n_sockets, sizeof *s->listen_sources);
        s->pending = calloc(PENDING_MAX, sizeof *s->pending);
        if (!s->listen_sources || !s->pending)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_sockets; i++) {
                int r = sd_event_add_io(s->event, &s->listen_sources[i], s->sockets[i].fd, EPOLLIN, on_listen, s);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(s->listen_sources[i], SD_EVENT_OFF);
        }
        return 0;
}

static void dispatch_close(Supervisor *s)
{
        while (s->n_pending > 0) {
                safe_close(s->pending[s->pending_head].fd);
                pending_pop(s);
        }
        for (size_t i = 0; s->listen_sources && i < s->n_sockets; i++)
                sd_event_source_disable_unref(s->listen_sources[i]);
        free(s->listen_sources);
        free(s->pending);
        sd_event_source_disable_unref(s->accept_retry_timer);
}

/* ---- notify socket ----------------------------------------------------------------------------------- */

static Process *process_by_pid(Supervisor *s, pid_t pid)
{
        for (Process *p = s->processes; pid > 0 && p; p = p->next)
                if (p->pid == pid)
                        return p;
        return NULL;
}

static void handle_notify(Supervisor *s, Process *p, const NotifyMessage *m)
{
        WorkerSlot *w = p->slot;

        if (m->watchdog && p->state == PROCESS_READY && p->watchdog_usec > 0)
                (void) arm_timer(s, &p->watchdog_timer, p->watchdog_usec, on_process_watchdog, p);
        if (m->ready && p->state == PROCESS_STARTING)
                process_mark_ready(p);
        if (m->watchdog_trigger && (p->state == PROCESS_READY || p->state == PROCESS_STARTING))
                (void) arm_timer(s, &p->watchdog_timer, 0, on_process_watchdog, p);
        if (m->retire && w && w->current == p && !p->retire_asked) {
                p->retire_asked = true;
                log_worker_event_id(LOG_INFO, 0, "retire", (int) p->slot_index, p->pid, MESSAGE_WORKER_RETIRE,
                                    "worker %u: process %i reached --max-requests; starting its replacement",
                                    p->slot_index, (int) p->pid);
                slot_replace(w);
        }
        if (m->stopping)
                p->stop_acked = true;
        if (m->stopping && p->state != PROCESS_STOPPING && p->state != PROCESS_KILLED) {
                /* A worker stopping on its own (exec workers may) is replaced like a dead one once it exits;
                 * until then it counts as not ready. */
                p->state = PROCESS_STOPPING;
                process_unfree(p);
                log_worker_event(LOG_INFO, 0, "stopping", (int) p->slot_index, p->pid,
                                 "worker %u: process %i is stopping", p->slot_index, (int) p->pid);
                if (w && w->current == p && !s->stopping) {
                        process_detach(p);
                        slot_schedule(w);
                }
        }
        if (m->stopping && s->reloading)
                reload_advance(s);
        update_status(s);
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
                                for (int *f = (int *) CMSG_DATA(c); (char *) f < (char *) c + c->cmsg_len; f++)
                                        safe_close(*f);
                }

                Process *p = process_by_pid(s, cred ? cred->pid : 0);
                if (!p) {
                        /* Also the last words of a worker whose exit was reaped first: not an alarm. */
                        log_event(LOG_NOTICE, 0, "notify-dropped",
                                  "notify socket: dropping a message from process %i, which is not a worker",
                                  cred ? (int) cred->pid : -1);
                        continue;
                }
                if ((size_t) n >= sizeof buf - 1 || (mh.msg_flags & MSG_TRUNC) ||
                    notify_parse(buf, (size_t) n, &m) < 0) {
                        log_worker_event(LOG_NOTICE, 0, "bad-notify", (int) p->slot_index, p->pid,
                                         "worker %u: dropping a malformed notify message", p->slot_index);
                        continue;
                }
                handle_notify(s, p, &m);
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

/* ---- status and systemd's watchdog ------------------------------------------------------------------- */

static void format_rate(double r, char *buf, size_t len)
{
        if (r >= 1e6)
                snprintf(buf, len, "%.1fM", r / 1e6);
        else if (r >= 1e4)
                snprintf(buf, len, "%.0fk", r / 1e3);
        else if (r >= 1e3)
                snprintf(buf, len, "%.1fk", r / 1e3);
        else
                snprintf(buf, len, "%.0f", r);
}

/* STATUS= to systemd when it changed; READY=1 once enough workers are ready. Called on every state change
 * and on workers' pings, so while requests flow it is refreshed about once a second (workers ping at least
 * that often while busy) and while idle not at all. */
static void update_status(Supervisor *s)
{
        char status[sizeof s->status], rate[32];
        unsigned ready = count_ready_slots(s);
        uint64_t now = now_usec(s), req, acc, conns;

        dispatch_refresh(s);
        pool_check(s);
        if (ready == 0 && s->unready_since == 0)
                s->unready_since = now;
        else if (ready > 0)
                s->unready_since = 0;

        if (s->stopping) {
                snprintf(status, sizeof status, "Stopping: %u workers left", count_processes(s));
                goto send;
        }

        stats_totals(s, &req, &acc, &conns);
        if (s->rate_usec == 0) {
                s->rate_usec = now;
                s->rate_requests = req;
        } else if (now - s->rate_usec >= STATUS_INTERVAL_USEC) {
                s->rate = (double) (req - s->rate_requests) * 1e6 / (double) (now - s->rate_usec);
                s->rate_usec = now;
                s->rate_requests = req;
        }
        format_rate(s->rate, rate, sizeof rate);
        if (!timer_pending(s->status_timer) &&
            (req != s->tick_requests || conns != s->tick_conns || s->rate > 0))
                (void) arm_timer(s, &s->status_timer, STATUS_INTERVAL_USEC, on_status_tick, s);

        int n = snprintf(status, sizeof status, "%s: %u/%u workers", s->reloading ? "Reloading" : "Ready", ready,
                         s->n_slots);
        if (is_dispatch(s)) {
                unsigned nfree, busy, starting;
                dispatch_counts(s, &nfree, &busy, &starting);
                n += snprintf(status + n, sizeof status - (size_t) n, " (%u busy)", busy);
        }
        if (!is_exec_pool(s))
                n += snprintf(status + n, sizeof status - (size_t) n, ", %llu conns, %s req/s",
                              (unsigned long long) conns, rate);
        n += snprintf(status + n, sizeof status - (size_t) n, ", %u restarts", s->restarts);
        unsigned backing_off = count_backing_off(s);
        if (backing_off > 0)
                n += snprintf(status + n, sizeof status - (size_t) n, ", %u backing off after failures", backing_off);
        if (is_dispatch(s) && s->listening)
                snprintf(status + n, sizeof status - (size_t) n, ", accepting");
        else if (is_dispatch(s))
                snprintf(status + n, sizeof status - (size_t) n, ", backlog: waiting for a free worker");

send:
        if (!s->ready_sent && !s->stopping && ready >= s->ready_needed) {
                s->ready_sent = true;
                snprintf(s->status, sizeof s->status, "%s", status);
                (void) sd_notifyf(false, "READY=1\nSTATUS=%s", status);
                log_event(LOG_INFO, 0, "pool-ready", "%s", status);
                /* Idleness counts from here: a slow start is not idle time, and the connection that
                 * activated drover is served before any idle exit can happen. */
                if (s->options->exit_idle_usec > 0)
                        (void) arm_timer(s, &s->idle_timer, s->options->exit_idle_usec, on_idle_timer, s);
                return;
        }
        if (!streq(status, s->status)) {
                snprintf(s->status, sizeof s->status, "%s", status);
                (void) sd_notifyf(false, "STATUS=%s", status);
        }
}

static int on_status_tick(sd_event_source *src, uint64_t usec, void *userdata)
{
        Supervisor *s = userdata;
        uint64_t req, acc, conns;

        stats_totals(s, &req, &acc, &conns);
        bool moved = req != s->tick_requests || conns != s->tick_conns;
        s->tick_requests = req;
        s->tick_conns = conns;
        /* update_status() re-arms the tick while the counters move or the rate has not reached 0 yet. */
        if (moved || s->rate > 0)
                update_status(s);
        return 0;
}

/* The pool can serve: a worker is ready, or it has been without one for less than its recovery budget. */
static bool pool_healthy(Supervisor *s)
{
        uint64_t budget = MAX(3 * s->systemd_watchdog_usec, 3 * BACKOFF_MIN_USEC);
        if (count_ready_slots(s) > 0 || s->unready_since == 0)
                return true;
        return now_usec(s) - s->unready_since < budget;
}

static int on_systemd_watchdog(sd_event_source *src, uint64_t usec, void *userdata)
{
        Supervisor *s = userdata;

        if (pool_healthy(s)) {
                if (s->petting_stopped)
                        log_event(LOG_NOTICE, 0, "pool-recovered", "the pool recovered; petting systemd's watchdog again");
                s->petting_stopped = false;
                (void) sd_notify(false, "WATCHDOG=1");
        } else if (!s->petting_stopped) {
                s->petting_stopped = true;
                log_event_id(LOG_ERR, 0, "pool-unhealthy", MESSAGE_POOL_UNHEALTHY,
                             "no worker has been ready for %llu ms: the pool cannot recover by itself; no longer "
                             "petting systemd's watchdog, so that systemd restarts the service",
                             (unsigned long long) ((now_usec(s) - s->unready_since) / USEC_PER_MSEC));
        }
        return arm_timer(s, &s->systemd_watchdog_timer, s->systemd_watchdog_usec / 2, on_systemd_watchdog, s);
}

/* ---- stop, idle exit, reload ------------------------------------------------------------------------- */

static void supervisor_stop(Supervisor *s, const char *why)
{
        if (s->stopping)
                return;
        s->stopping = true;
        s->exit_requested = true;
        log_event(LOG_INFO, 0, "stop", "%s: stopping %u workers", why, count_processes(s));
        (void) sd_notify(false, "STOPPING=1");
        s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
        s->status_timer = sd_event_source_disable_unref(s->status_timer);
        s->shrink_timer = sd_event_source_disable_unref(s->shrink_timer);
        for (unsigned i = 0; i < s->n_slots; i++)
                s->slots[i].respawn_timer = sd_event_source_disable_unref(s->slots[i].respawn_timer);
        for (Process *p = s->processes; p; p = p->next) {
                process_detach(p);
                process_stop(p);
        }
        if (!s->processes)
                (void) sd_event_exit(s->event, 0);
        update_status(s);
}

static int on_idle_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
        Supervisor *s = userdata;
        uint64_t req, acc, conns;

        stats_totals(s, &req, &acc, &conns);
        if (acc != s->idle_accepted || conns > 0 || s->n_pending > 0) {
                s->idle_accepted = acc;
                return arm_timer(s, &s->idle_timer, s->options->exit_idle_usec, on_idle_timer, s);
        }
        log_event_id(LOG_INFO, 0, "idle-exit", MESSAGE_IDLE_EXIT,
                     "no connection for %llu ms (--exit-idle-time): exiting; the socket stays with systemd, and "
                     "the next connection starts drover again",
                     (unsigned long long) (s->options->exit_idle_usec / USEC_PER_MSEC));
        supervisor_stop(s, "idle");
        return 0;
}

/*
 * The drover-worker to exec for built-in workers: the one next to our own executable if there is one (a
 * build tree), else the installed one, DROVER_WORKER_PATH. Looked up at start and again on every reload:
 * a reload after an upgrade rolls the pool onto the new drover-worker (exec'd by path, whatever replaced the
 * file), and onto one that has since appeared next to drover.
 */
static char *worker_executable(void)
{
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

        if (n > 0) {
                buf[n] = '\0';
                /* After a package upgrade the running image is " (deleted)": its directory is right. */
                char *d = strstr(buf, " (deleted)");
                if (d && d[10] == '\0')
                        *d = '\0';
                char *slash = strrchr(buf, '/');
                if (slash && (size_t) (slash + 1 - buf) + sizeof "drover-worker" <= sizeof buf) {
                        strcpy(slash + 1, "drover-worker");
                        if (access(buf, X_OK) == 0)
                                return strdup(buf);
                }
        }
        return strdup(DROVER_WORKER_PATH);
}

int supervisor_check(const Options *o, OptionsErrors *errors)
{
        unsigned before = errors->n;
        char lbuf[64];

        if (o->exec_argv) {
                _cleanup_free_ char *exe = NULL;
                int r = resolve_command(o->exec_argv[0], &exe);
                if (r < 0) {
                        errno = -r;
                        options_error(errors, "%s: invalid value '%s': %m; expected an executable file (a path, or a "
                                      "name found in $PATH)", o->exec_origin ?: "COMMAND", o->exec_argv[0]);
                }
                return errors->n > before ? -ERANGE : 0;
        }

        /* Without it no worker starts: an incomplete installation is found here, not in a restart loop. */
        _cleanup_free_ char *worker = worker_executable();
        if (!worker)
                options_error(errors, "out of memory");
        else if (access(worker, X_OK) < 0)
                options_error(errors, "the worker program '%s' is not executable: %m; expected "
                              "drover-worker next to drover or at " DROVER_WORKER_PATH, worker);

        const char *root = o->root ?: DROVER_DEFAULT_ROOT;
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno; /* for %m, whatever the label's formatting does */
                const char *label = options_label(o->root_origin, "root", lbuf, sizeof lbuf);
                errno = e;
                options_error(errors, "%s: invalid value '%s'%s: %m; expected a readable directory", label, root,
                              o->root ? "" : " (the default site)");
        }

        /* A module that cannot be loaded would make every worker fail to start: say so now, once. The workers
         * load them again after exec (a reload picks up new files). */
        for (size_t i = 0; i < o->n_handlers; i++) {
                char err[512];
                Module m;
                if (module_open(&o->handlers[i], &m, err, sizeof err) < 0) {
                        options_error(errors, "%s: invalid value '%s': cannot load it: %s",
                                      options_label(o->handler_origin[i], "handler", lbuf, sizeof lbuf),
                                      o->handlers[i].path, err);
                        continue;
                }
                module_close(&m);
        }
        return errors->n > before ? -ERANGE : 0;
}

static void log_problems(const OptionsErrors *errors, const char *prefix)
{
        const char *p = errors->text;
        while (*p) {
                size_t n = strcspn(p, "\n");
                log_error("%s%.*s", prefix, (int) n, p);
                p += n + (p[n] == '\n');
        }
        if (errors->truncated)
                log_error("%s... and more problems", prefix);
}

/*
 * A reload reads the configuration again: the file and the command line, checked as at start. Anything
 * invalid keeps the running pool and its options. What it cannot change without new sockets or a new slot
 * table is kept as it is, with a warning that it needs a restart: the listening addresses and
 * --exit-idle-time; switching between built-in and exec workers is refused as a whole. A new number of workers
 * is applied by reload_resize().
 */
static int reload_options(Supervisor *s)
{
        static OptionsErrors errors; /* large: keep it off the stack */
        _cleanup_free_ Options *n = NULL;
        Options *old = s->options;
        char *exe = NULL;
        int r;

        n = calloc(1, sizeof *n);
        if (!n)
                return log_error_errno(ENOMEM, "reload: %m; keeping the running pool");
        r = options_load(s->source, n, &errors);
        if (r >= 0 && ((n->exec_argv != NULL) != is_exec_pool(s))) {
                options_error(&errors, "%s: switching between built-in and exec workers needs a restart",
                              n->exec_origin ?: old->exec_origin ?: "COMMAND");
                r = -ERANGE;
        }
        if (r >= 0)
                r = supervisor_check(n, &errors);
        if (r >= 0 && is_exec_pool(s)) {
                r = resolve_command(n->exec_argv[0], &exe);
                if (r < 0)
                        options_error(&errors, "%s: cannot resolve '%s'", n->exec_origin ?: "COMMAND", n->exec_argv[0]);
        }
        if (r >= 0 && !is_exec_pool(s)) {
                /* supervisor_check() found it executable; a new path (now next to drover) takes effect. */
                exe = worker_executable();
                if (!exe) {
                        options_error(&errors, "out of memory");
                        r = -ENOMEM;
                }
        }
        if (r < 0) {
                log_problems(&errors, "reload: ");
                log_error("reload: the configuration is invalid; keeping the running pool and its options");
                options_done(n);
                free(exe);
                return -EINVAL;
        }

        if (n->n_listen != old->n_listen || memcmp(n->listen, old->listen, sizeof n->listen[0] * n->n_listen) != 0)
                log_warning("reload: listen: changed addresses need a restart (the sockets are kept); keeping the "
                            "current ones");
        if (n->accept != old->accept)
                log_warning("reload: accept: a change needs a restart; keeping '%s'",
                            old->accept == ACCEPT_DISPATCH ? "dispatch" : "shared");
        n->accept = old->accept;
        if (n->exit_idle_usec != old->exit_idle_usec)
                log_warning("reload: exit-idle-time: a change needs a restart; keeping %llu ms",
                            (unsigned long long) (old->exit_idle_usec / USEC_PER_MSEC));
        n->n_listen = old->n_listen;
        memcpy(n->listen, old->listen, sizeof n->listen);
        n->listen_origin = NULL; /* may point into old's strings */
        n->exit_idle_usec = old->exit_idle_usec;

        if (exe) {
                free(s->exe);
                s->exe = exe;
                s->argv_exec = n->exec_argv;
        }
        /* Nothing keeps pointers into the old options: processes copied what they need at spawn, sockets
         * were copied at start, and argv_exec was moved above. */
        s->options = TAKE_PTR(n);
        options_done(old);
        free(old);
        return 0;
}

/* A reload with another number of workers: new slots start with the new generation, slots beyond the new
 * number stop gracefully (their workers finish what they serve). Slots live in a fixed array, so processes
 * keep valid pointers to theirs. */
static void reload_resize(Supervisor *s)
{
        unsigned n = s->options->max_workers, old = s->n_slots, min = s->options->min_workers;

        s->ready_needed = s->options->ready_workers ?: min;
        if (n != old)
                log_event(LOG_INFO, 0, "reload-resize", "reload: workers: %u -> %u: %s %u", old, n,
                          n > old ? "starting" : "stopping", n > old ? n - old : old - n);
        for (unsigned i = n; i < old; i++) {
                WorkerSlot *w = &s->slots[i];
                w->active = false;
                w->respawn_timer = sd_event_source_disable_unref(w->respawn_timer);
                Process *procs[2] = { w->current, w->replacement };
                for (size_t k = 0; k < ELEMENTSOF(procs); k++)
                        if (procs[k]) {
                                process_detach(procs[k]);
                                process_stop(procs[k]);
                        }
        }
        s->n_slots = n;
        for (unsigned i = old; i < n; i++)
                s->slots[i] = (WorkerSlot){ .supervisor = s, .index = i };
        /* A new --min-workers: the lowest inactive slots join the pool. */
        for (unsigned i = 0; i < n && count_active_slots(s) < min; i++)
                if (!s->slots[i].active) {
                        s->slots[i].active = true;
                        slot_start(&s->slots[i]);
                }
}

static void reload_begin(Supervisor *s)
{
        uint64_t mono = 0;

        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &mono);
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading", (unsigned long long) mono);
        log_event_id(LOG_INFO, 0, "reload-start", MESSAGE_RELOAD_START,
                     "reload: replacing %u workers one by one, each new one ready before the old one drains",
                     s->n_slots);

        if (reload_options(s) < 0) {
                s->reloading = true;
                reload_finish(s, false);
                return;
        }
        s->reloading = true;
        s->generation++;
        s->reload_slot = 0;
        reload_resize(s);
        reload_advance(s);
}

/*
 * Whether a worker of an older generation may still accept a connection. A reload is done — READY=1, and
 * `systemctl reload` returns — only once none may: an old worker signalled to stop still sits in epoll_wait()
 * on the listeners until it runs, and a connection the kernel hands it then would be served with the old
 * options after the reload said it was done. A built-in worker says STOPPING=1 only after it closed its
 * listening sockets, so the reload waits for that or for its exit (the kill timer bounds the wait). Exec
 * workers give no such promise: for them the SIGTERM has to do.
 */
static bool reload_old_still_accepting(const Supervisor *s)
{
        if (is_exec_pool(s))
                return false;
        for (const Process *p = s->processes; p; p = p->next)
                if (p->generation != s->generation && p->state == PROCESS_STOPPING && !p->stop_acked)
                        return true;
        return false;
}

/* Moves the rolling replacement on: the slot at reload_slot is done once its current process is of this
 * generation; slots without a process pick up the new generation when they respawn. */
static void reload_advance(Supervisor *s)
{
        while (s->reloading && s->reload_slot < s->n_slots) {
                WorkerSlot *w = &s->slots[s->reload_slot];
                if (!w->current || w->current->generation == s->generation) {
                        s->reload_slot++;
                        continue;
                }
                if (!w->replacement) {
                        slot_replace(w);
                        if (!w->replacement) {
                                /* Could not even spawn: the old worker keeps serving. */
                                reload_finish(s, false);
                                return;
                        }
                }
                /* Wait for the replacement's READY=1. One started before this reload (recycling) is of an older
                 * generation: once it has taken over, the slot is replaced again. */
                return;
        }
        if (s->reloading && !reload_old_still_accepting(s))
                reload_finish(s, true);
}

static void reload_finish(Supervisor *s, bool ok)
{
        if (!s->reloading)
                return;
        s->reloading = false;
        s->reloads_done++;
        if (ok)
                log_event_id(LOG_INFO, 0, "reload-done", MESSAGE_RELOAD_DONE, "reload: done, %u workers replaced",
                             s->n_slots);
        else
                log_event_id(LOG_ERR, 0, "reload-failed", MESSAGE_RELOAD_FAILED,
                             "reload: failed; the workers not yet replaced keep serving");
        s->status[0] = '\0'; /* force a fresh STATUS= with READY=1 */
        update_status(s);
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", s->status);

        if (s->reload_pending > 0 && !s->stopping) {
                s->reload_pending--;
                reload_begin(s);
        }
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata)
{
        Supervisor *s = userdata;

        switch (si->ssi_signo) {
        case SIGHUP:
                if (s->stopping)
                        break;
                if (s->reloading) {
                        /* Every reload asked for is carried out, in order: none is merged into another. */
                        s->reload_pending++;
                        log_event(LOG_INFO, 0, "reload-queued", "reload: queued behind the one running (%u waiting)",
                                  s->reload_pending);
                } else
                        reload_begin(s);
                break;
        default:
                supervisor_stop(s, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        }
        return 0;
}

/* ---- setup ------------------------------------------------------------------------------------------- */

static void supervisor_done(Supervisor *s)
{
        while (s->processes) {
                /* Only reached with processes on an error path: make sure nothing outlives us. */
                Process *p = s->processes;
                (void) kill(p->pid, SIGKILL);
                process_free(p);
        }
        for (unsigned i = 0; s->slots && i < WORKERS_MAX; i++)
                sd_event_source_unref(s->slots[i].respawn_timer);
        free(s->slots);
        dispatch_close(s);
        sd_event_source_unref(s->shrink_timer);
        sd_event_source_unref(s->idle_timer);
        sd_event_source_unref(s->status_timer);
        sd_event_source_unref(s->systemd_watchdog_timer);
        sd_event_source_unref(s->notify_source);
        safe_close(s->notify_fd);
        if (s->stats)
                munmap(s->stats, s->stats_capacity * sizeof(WorkerStats));
        free(s->stats_used);
        safe_close(s->stats_fd);
        sd_event_unref(s->event);
        sockets_free(s->sockets, s->n_sockets);
        free(s->fdnames);
        free(s->envp);
        free(s->exe);
        options_done(s->options);
        free(s->options);
}

int supervisor_main(Options *o, const OptionsSource *source)
{
        static OptionsErrors errors; /* large: keep it off the stack */
        Supervisor s = { .options = o, .source = source, .notify_fd = -EBADF, .stats_fd = -EBADF };
        sigset_t mask;
        int r, ret = EX_OSERR;

        log_setup("drover", -1);

        /* Everything that can be checked before forking: a bad root, module or command is a config error, not
         * a crash loop. */
        options_errors_reset(&errors);
        if (supervisor_check(o, &errors) < 0) {
                log_problems(&errors, "");
                options_done(o);
                free(o);
                return EX_CONFIG;
        }
        if (o->exec_argv) {
                r = resolve_command(o->exec_argv[0], &s.exe);
                if (r < 0) {
                        log_error_errno(r, "COMMAND: invalid value '%s': %m", o->exec_argv[0]);
                        options_done(o);
                        free(o);
                        return EX_CONFIG;
                }
                s.argv_exec = o->exec_argv;
        } else
                s.exe = worker_executable();

        r = sockets_collect(o, &s.sockets, &s.n_sockets);
        if (r < 0) {
                free(s.exe);
                options_done(o);
                free(o);
                return -r;
        }

        size_t len = 1;
        for (size_t i = 0; i < s.n_sockets; i++)
                len += strlen(s.sockets[i].name) + 1;
        s.fdnames = calloc(1, len);
        s.envp = spawn_base_environment();
        s.n_slots = o->max_workers;
        s.ready_needed = o->ready_workers ?: o->min_workers;
        s.slots = calloc(WORKERS_MAX, sizeof *s.slots); /* fixed: processes point to their slot; a reload may
                                                          * grow the pool */
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
        sigaddset(&mask, SIGHUP);
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
            (r = sd_event_add_signal(s.event, NULL, SIGINT, on_signal, &s)) < 0 ||
            (r = sd_event_add_signal(s.event, NULL, SIGHUP, on_signal, &s)) < 0) {
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
        r = stats_open(&s);
        if (r < 0) {
                log_error_errno(r, "cannot create the workers' stats memory: %m");
                goto finish;
        }

        /* systemd's watchdog (WatchdogSec=): petted only while the pool is healthy. */
        if (sd_watchdog_enabled(false, &s.systemd_watchdog_usec) > 0 && s.systemd_watchdog_usec > 0) {
                r = arm_timer(&s, &s.systemd_watchdog_timer, s.systemd_watchdog_usec / 2, on_systemd_watchdog, &s);
                if (r < 0)
                        log_warning_errno(r, "cannot arm the systemd watchdog timer: %m");
        }

        r = dispatch_open(&s);
        if (r < 0) {
                log_error_errno(r, "cannot watch the listening sockets: %m");
                goto finish;
        }

        for (unsigned i = 0; i < s.n_slots; i++)
                s.slots[i] = (WorkerSlot){ .supervisor = &s, .index = i, .active = i < o->min_workers };
        slot_start(&s.slots[0]); /* --min-workers is at least 1 */
        s.rest_deferred = true;
        if (!s.slots[0].current || is_exec_pool(&s))
                slots_start_rest(&s); /* exec workers, or it could not even fork: all at once */
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
