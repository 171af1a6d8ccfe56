/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "common/macro.h"
#include "config.h"
#include "worker/worker.h"

/*
 * A worker is what systemd would start for a socket-activated service: it finds its sockets in $LISTEN_FDS
 * (checking LISTEN_PID, as daemon.h does without libsystemd), reports READY=1 and STOPPING=1 — to the
 * supervisor, whose private socket is its $NOTIFY_SOCKET — and on SIGTERM stops accepting, finishes what it
 * has and exits 0.
 */

/*
 * The accept policy: how the workers share the connections of the listening sockets.
 *
 * Every worker waits on the shared listeners with EPOLLEXCLUSIVE, so the kernel wakes one waiting worker per
 * arriving connection: no thundering herd. But the worker that is woken and running keeps taking from the
 * backlog (its level-triggered listener is reported again at each epoll_wait()) while the others still wait
 * for a CPU (on two cores, one of them busy with the client, a burst is over before they get one), so left
 * alone one worker takes most connections of a burst: wrk opens its 32 at once and keeps them. So each
 * worker keeps to its share, computed without a system call from the shared stats records (stats.h):
 *
 *     share = ceil(connections open in all workers taking connections / those workers)
 *
 *  - After each accept, a worker above its share ends its batch and steps back: it swaps its exclusive,
 *    level-triggered registration of the listeners for a shared, edge-triggered one, the doorbell. It goes
 *    back to sleep, which lets the others run, and the kernel now wakes them for new connections. The
 *    doorbell still wakes it once per arriving connection, and it takes its exclusive place back when it is
 *    within its share again — checked on each doorbell and on each close of one of its own connections —
 *    or when nobody else accepts and no other stepped-back worker is within its share (that one comes back
 *    on the same doorbell: leaving it to it is what lets it run).
 *
 *  - Churn: each step back and return costs four epoll_ctl() and the doorbell a wake-up per arrival
 *    meanwhile. With a connection per request the counts cross the share all the time (on close-1k each of
 *    two workers holds 10–15 connections waiting for their request, and whichever runs takes more), and
 *    there the imbalance does not last: the connections close within milliseconds. So a worker that closed
 *    a connection in the last STEP_BACK_CHURN_MS steps back only beyond share + STEP_BACK_MARGIN, and a
 *    stepped-back worker returns as soon as its own closes bring it within its share rather than on the
 *    next doorbell. That took the step-backs per close-1k connection from 0.26–0.40 to 0.17–0.23 in
 *    paired runs. A burst of new connections (wrk's 32 keep-alive ones, which stay where they land) comes
 *    without closes, and is still spread at the share itself.
 *
 *  - Invariant: every connection that arrives wakes at least one worker that accepts it. Each worker taking
 *    connections is on the listeners, exclusively or by doorbell (the limits below aside), and the
 * least-loaded one is never above its share: when it is stepped back it comes back on the next doorbell
 * whatever the others do. So if nobody accepts exclusively, the next arrival brings the least-loaded worker
 * back. Connections already queued when the last worker steps back have no arrival to come, and the worker
 * that should accept them may be waiting for a CPU while the others run: so a worker that steps back or
 * stays back looks again STEP_BACK_RECHECK_MS later (one poll() without timeout) and, if connections are
 * still waiting, takes its place back when nobody else accepts, or looks again later when somebody does
 * (that one was told of them and takes them when it runs). The timer is armed only on a step-back or a
 * doorbell, that is when a connection arrives, and repeats only while connections wait.
 *
 *  - Cost: nothing while idle or in a steady keep-alive load (no new connections, no doorbell); a worker
 * with nothing open is never above its share, so the policy never wakes an idle pool. The limits
 *    (--max-connections, out of descriptors) take a worker off the listeners without a doorbell, as before;
 * it publishes ACCEPT_PAUSED, so nobody counts on it to come back.
 *
 * Exec workers never get here (they run their own program). A worker without the shared records (started by
 * hand, or the table was full) sees only itself and never steps back.
 */

static void accept_publish(Worker *w, uint32_t state)
{
        stats_store(w->stats->accepting, state);
}

static void listeners_set(Worker *w, ListenMode mode)
{
        ListenMode old = w->listen_mode;

        if (old == mode)
                return;
        for (size_t i = 0; i < w->n_listeners; i++) {
                Listener *li = &w->listeners[i];
                int r = 0;
                if (old != LISTEN_OFF)
                        r = loop_del(&w->loop, &li->watch);
                if (r >= 0 && mode != LISTEN_OFF)
                        r = loop_add(&w->loop, &li->watch,
                                     mode == LISTEN_ON ? EPOLLIN | EPOLLEXCLUSIVE : EPOLLIN | EPOLLET);
                if (r < 0)
                        log_warning_errno(r, "cannot %s listening socket %i: %m",
                                          mode == LISTEN_OFF ? "unwatch" : "watch", li->watch.fd);
        }
        w->listen_mode = mode;
        if (mode != LISTEN_DOORBELL)
                timer_disarm(&w->step_back_timer);
        accept_publish(w, mode == LISTEN_ON         ? ACCEPT_ON
                          : mode == LISTEN_DOORBELL ? ACCEPT_DOORBELL
                                                    : ACCEPT_PAUSED);
}

static void listeners_register(Worker *w, bool on)
{
        listeners_set(w, on ? LISTEN_ON : LISTEN_OFF);
}

typedef struct PoolView {
        uint64_t total;        /* connections open in the workers taking connections, ours included */
        uint64_t workers;      /* workers taking connections, ours included */
        bool other_on;         /* another worker accepts */
        uint64_t min_doorbell; /* fewest connections of another stepped-back worker; UINT64_MAX: none */
} PoolView;

static PoolView pool_view(Worker *w)
{
        PoolView v = {.total = w->n_conns, .workers = 1, .min_doorbell = UINT64_MAX};
        size_t own, highest;

        if (!w->pool_stats)
                return v;
        own = highest = (size_t)(w->stats - w->pool_stats);
        for (size_t i = 0; i < w->pool_scan_end; i++) {
                const WorkerStats *st = &w->pool_stats[i];
                uint32_t state = stats_load(st->accepting);
                uint64_t n;
                if (i == own || state == ACCEPT_OUT)
                        continue;
                n = stats_load(st->connections);
                highest = MAX(highest, i);
                v.workers++;
                v.total += n;
                v.other_on |= state == ACCEPT_ON;
                if (state == ACCEPT_DOORBELL)
                        v.min_doorbell = MIN(v.min_doorbell, n);
        }
        /* The supervisor hands out the lowest free record, so the workers' records are near the start: scan
         * a margin past the highest one in use rather than the whole table. A worker beyond it is only
         * counted out of the share. */
        w->pool_scan_end = MIN(w->n_pool_stats, highest + 1 + STATS_SCAN_MARGIN);
        return v;
}

/* More than ceil(total / workers) connections. */
static bool above_share(const PoolView *v, uint64_t n)
{
        return n > 0 && v->workers * (n - 1) >= v->total;
}

/* Above its share, and by more than STEP_BACK_MARGIN if it closed a connection in the last
 * STEP_BACK_CHURN_MS (see above). */
static bool above_share_margin(Worker *w, const PoolView *v, uint64_t n)
{
        uint64_t margin = loop_now(&w->loop) - w->last_close_ms < STEP_BACK_CHURN_MS ? STEP_BACK_MARGIN : 0;

        return n > margin && above_share(v, n - margin);
}

static bool listeners_pending(Worker *w)
{
        struct pollfd pfd[LISTEN_MAX];

        for (size_t i = 0; i < w->n_listeners; i++)
                pfd[i] = (struct pollfd){.fd = w->listeners[i].watch.fd, .events = POLLIN};
        /* On failure, assume there is something: taking our place back is the safe side. */
        return poll(pfd, w->n_listeners, 0) != 0;
}

/* Looks again in STEP_BACK_RECHECK_MS unless it already will. */
static void step_back_timer_arm(Worker *w)
{
        if (!timer_armed(&w->step_back_timer))
                timer_arm(&w->loop, &w->q_step_back, &w->step_back_timer);
}

/* After an accept: false to go on with the batch, true if this worker stepped back (see above). */
static bool accept_step_back(Worker *w)
{
        PoolView v = pool_view(w);

        if (!above_share_margin(w, &v, w->n_conns))
                return false;
        listeners_set(w, LISTEN_DOORBELL);
        step_back_timer_arm(w);
        return true;
}

/* A stepped-back worker, told of a new connection by the doorbell or looking again on its timer: back to
 * accepting if it is within its share, or if nobody else accepts or will come back to (see above); on the
 * timer, also if connections are waiting and nobody else accepts. */
static void step_back_recheck(Worker *w, bool timer)
{
        PoolView v;
        bool pending;

        if (w->listen_mode != LISTEN_DOORBELL)
                return;
        v = pool_view(w);
        if (above_share(&v, w->n_conns) &&
            (v.other_on || (v.min_doorbell != UINT64_MAX && !above_share(&v, v.min_doorbell)))) {
                if (!timer) {
                        step_back_timer_arm(w);
                        return;
                }
                pending = listeners_pending(w);
                if (!pending)
                        return;
                if (v.other_on) {
                        /* Someone accepts, when it gets a CPU: keep an eye on the backlog meanwhile. */
                        step_back_timer_arm(w);
                        return;
                }
        }
        listeners_set(w, w->n_conns < w->max_connections ? LISTEN_ON : LISTEN_OFF);
}

/* A stepped-back worker whose connection closed: back to accepting if that puts it within its share. */
static void step_back_return(Worker *w)
{
        PoolView v = pool_view(w);

        if (!above_share(&v, w->n_conns))
                listeners_set(w, w->n_conns < w->max_connections ? LISTEN_ON : LISTEN_OFF);
}

static void on_step_back_timer(Loop *l, TimerEntry *e)
{
        step_back_recheck(container_of(l, Worker, loop), true);
}

void worker_connection_closed(Worker *w)
{
        w->last_close_ms = loop_now(&w->loop);
        if (w->n_conns == 0 && !w->draining)
                timer_arm(&w->loop, &w->q_trim, &w->trim_timer);
        if (dispatch_enabled(w)) {
                dispatch_connection_closed(w);
                return;
        }
        if (w->draining) {
                if (w->n_conns == 0)
                        w->loop.quit = true;
                return;
        }
        /* Off the listeners at a limit: a close is room again. Stepped back: maybe within its share. */
        if (w->listen_mode == LISTEN_OFF && w->n_conns < w->max_connections)
                listeners_register(w, true);
        else if (w->listen_mode == LISTEN_DOORBELL)
                step_back_return(w);
}

static void on_listener(Loop *l, IoWatch *watch, uint32_t events)
{
        Listener *li = container_of(watch, Listener, watch);
        Worker *w = container_of(l, Worker, loop);

        if (w->listen_mode == LISTEN_DOORBELL) {
                step_back_recheck(w, false); /* the doorbell: nothing to accept here */
                return;
        }
        for (int i = 0; i < ACCEPT_BATCH && w->listen_mode == LISTEN_ON; i++) {
                struct sockaddr_storage peer;
                socklen_t peer_len = sizeof peer;
                int fd = accept4(li->watch.fd, (struct sockaddr *) &peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* Out of descriptors or memory: leave the connection in the backlog (another
                                 * worker, or this one after a close, takes it) instead of spinning on a
                                 * level-triggered listener. */
                                log_warning_errno(errno, "accept: %m; pausing accepts until a connection closes");
                                if (w->n_conns > 0)
                                        listeners_register(w, false);
                                return;
                        }
                        continue; /* ECONNABORTED and network errors concern only that connection */
                }
                conn_accept(w, fd, li->protocol, (struct sockaddr *) &peer, peer_len);
                if (w->n_conns >= w->max_connections)
                        listeners_register(w, false); /* beyond --max-connections: leave them to the others */
                else if (accept_step_back(w))
                        return;
        }
}

/* $NOTIFY_SOCKET, opened once: a worker pings every few seconds for its whole life. */
static Notifier notifier = NOTIFIER_NULL;

static void worker_notify(const char *message)
{
        (void) notifier_send(&notifier, message);
}

static void worker_ping(Worker *w)
{
        uint64_t now = loop_now(&w->loop), elapsed = now - w->last_ping_ms;

        /* The load goes into the shared record, not the message: the supervisor reads it when it needs it. */
        if (elapsed > 0)
                stats_store(w->stats->load, (uint32_t) MIN(w->busy_ms * 1000 / elapsed, (uint64_t) 1000));
        w->busy_ms = 0;
        worker_notify("WATCHDOG=1");
        w->last_ping_ms = now;
        w->requests_at_ping = stats_load(w->stats->requests);
        w->conns_at_ping = w->n_conns;
        if (w->watchdog_usec > 0)
                timer_arm(&w->loop, &w->q_ping, &w->ping_timer);
}

static void on_ping_timer(Loop *l, TimerEntry *e)
{
        worker_ping(container_of(l, Worker, loop));
}

void worker_request_done(Worker *w)
{
        uint64_t n = stats_load(w->stats->requests) + 1;
        stats_store(w->stats->requests, n);
        if (w->max_requests > 0 && n >= w->max_requests && !w->retire_sent && !w->draining) {
                /* The supervisor starts a replacement and, once it is ready, stops us: we keep serving until
                 * then, so no request waits on the swap. */
                w->retire_sent = true;
                log_worker_event(LOG_INFO, 0, "retire", (int) w->slot, getpid(),
                                 "reached --max-requests (%llu); asking for a replacement",
                                 (unsigned long long) w->max_requests);
                worker_notify("X_DROVER_RETIRE=1");
        }
}

/* Idle for IDLE_TRIM_MS: what a burst of connections left behind goes back to the system — the reusable
 * connection objects, and the heap's free memory (glibc keeps freed chunks otherwise). Busy again by now,
 * the worker keeps everything. */
static void on_trim_timer(Loop *l, TimerEntry *e)
{
        Worker *w = container_of(l, Worker, loop);
        Conn *c;

        if (w->n_conns > 0)
                return;
        while ((c = w->free_conns)) {
                w->free_conns = c->next;
                w->n_free_conns--;
                conn_free(c);
        }
        (void) malloc_trim(0);
}

static void on_graceful_timeout(Loop *l, TimerEntry *e)
{
        Worker *w = container_of(l, Worker, loop);
        log_worker_event(LOG_WARNING, 0, "graceful-timeout", (int) w->slot, getpid(),
                         "--graceful-timeout reached with %u connections open; closing them", w->n_conns);
        while (w->conns)
                conn_close(w->conns);
        w->loop.quit = true;
}

void worker_begin_drain(Worker *w)
{
        if (w->draining)
                return;
        log_worker_event(LOG_INFO, 0, "drain", (int) w->slot, getpid(),
                         "stopping: no new connections, finishing %u open", w->n_conns);
        /* Connections already queued on the listeners were accepted by the kernel on our behalf: serve them
         * rather than leave them to whoever listens next (nobody, with --listen). One pass: what arrives from
         * now on is for the workers that keep accepting, or for the next instance (the socket stays with
         * systemd). */
        for (size_t i = 0; i < w->n_listeners && w->n_conns < w->max_connections; i++)
                for (;;) {
                        struct sockaddr_storage peer;
                        socklen_t peer_len = sizeof peer;
                        int fd = accept4(w->listeners[i].watch.fd, (struct sockaddr *) &peer, &peer_len,
                                         SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (fd < 0) {
                                if (errno == ECONNABORTED || errno == EINTR)
                                        continue;
                                break;
                        }
                        conn_accept(w, fd, w->listeners[i].protocol, (struct sockaddr *) &peer, peer_len);
                        if (w->n_conns >= w->max_connections)
                                break;
                }
        listeners_register(w, false);
        accept_publish(w, ACCEPT_OUT); /* after: listeners_set() publishes ACCEPT_PAUSED */
        for (size_t i = 0; i < w->n_listeners; i++)
                w->listeners[i].watch.fd = safe_close(w->listeners[i].watch.fd);
        w->n_listeners = 0;
        w->draining = true;
        /* Only now: STOPPING=1 promises the supervisor that this worker accepts nothing more (a reload is done
         * once every old worker has said it). */
        worker_notify("STOPPING=1");
        for (Conn *c = w->conns, *next; c; c = next) {
                next = c->next;
                conn_begin_drain(c);
        }
        /* A dispatch worker also waits for the supervisor's EOF on its pair: a connection may be on its way. */
        if (w->n_conns == 0 && (!dispatch_enabled(w) || w->dispatch_eof))
                w->loop.quit = true;
        else
                timer_arm(&w->loop, &w->q_graceful, &w->graceful_timer);
}

static void on_signal(Loop *l, IoWatch *watch, uint32_t events)
{
        Worker *w = container_of(l, Worker, loop);
        struct signalfd_siginfo si;

        while (read(watch->fd, &si, sizeof si) == (ssize_t) sizeof si)
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        worker_begin_drain(w);
}

static void after_batch(Loop *l)
{
        Worker *w = container_of(l, Worker, loop);
        uint64_t start = loop_now(l);

        /* The coarse clock's ticks fall at random points of a batch, so the sum of the differences is an
         * unbiased measure of the time spent handling, even for batches shorter than a tick. */
        w->busy_ms += loop_update_now(l) - start;
        conns_release_closed(w);
        /* While requests flow, ping at least once a second (the supervisor's STATUS= rate comes from these);
         * while idle, only at the watchdog's pace. Never more than one ping per second: not a syscall per
         * request. */
        if ((stats_load(w->stats->requests) != w->requests_at_ping || w->n_conns != w->conns_at_ping) &&
            loop_now(l) - w->last_ping_ms >= 1000)
                worker_ping(w);
}

/* $DROVER_STATS=FD:INDEX: the supervisor's shared counters. Without it (started by hand, or the table was
 * full) the worker counts into a private record. */
static void worker_map_stats(Worker *w)
{
        const char *e = getenv("DROVER_STATS");
        unsigned fd, index;
        struct stat st;

        w->stats = &w->private_stats;
        if (!e || sscanf(e, "%u:%u", &fd, &index) != 2)
                return;
        if (fstat((int) fd, &st) >= 0 && (size_t) st.st_size >= (index + 1) * sizeof(WorkerStats)) {
                void *p = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, (int) fd, 0);
                if (p != MAP_FAILED) {
                        w->pool_stats = p;
                        w->n_pool_stats = (size_t) st.st_size / sizeof(WorkerStats);
                        w->pool_scan_end = MIN(w->n_pool_stats, index + 1 + STATS_SCAN_MARGIN);
                        w->stats = (WorkerStats *) p + index;
                }
        }
        (void) close((int) fd);
        (void) unsetenv("DROVER_STATS");
}

static int worker_setup_signals(Worker *w)
{
        sigset_t mask;

        /* A peer that resets mid-write must cost an EPIPE, not the process. */
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        w->signal_watch.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (w->signal_watch.fd < 0)
                return negative_errno();
        w->signal_watch.handler = on_signal;
        return loop_add(&w->loop, &w->signal_watch, EPOLLIN);
}

/* Limits, scratch buffers and handler modules. Returns 0 or an exit status. */
static int worker_setup_engine(Worker *w, const Options *o)
{
        int r;

        w->limits = (HttpLimits){ .url_max = o->max_request_line, .header_bytes_max = o->max_header_size,
                                  .headers_max = o->max_headers, .body_max = o->max_body_size };
        w->max_connections = o->max_connections;
        w->keepalive_requests = o->keepalive_requests;
        w->server = o->server_header && o->server_header[0] ? o->server_header : NULL;
        /* Checked here once, so that a response need not check it again (see server_date_checked); options
         * let through nothing that fails, but if something did, every response head would check it. */
        w->server_checked = !w->server || http_check_field_value(w->server) >= 0;
        w->server_len = w->server ? strlen(w->server) : 0;
        w->path_buf = malloc(w->limits.url_max + 1);
        w->header_buf = calloc(w->limits.headers_max, sizeof(drover_header));
        w->name_buf = malloc(w->limits.header_bytes_max);
        if (!w->path_buf || !w->header_buf || !w->name_buf)
                return log_error_errno(ENOMEM, "%m"), EX_OSERR;

        for (size_t i = 0; i < o->n_handlers; i++) {
                char err[512];
                Module *m = &w->modules[w->n_modules];
                r = module_open(&o->handlers[i], m, err, sizeof err);
                if (r < 0)
                        return log_error_errno(r, "--handler: cannot load '%s': %s", o->handlers[i].path, err),
                               EX_CONFIG;
                w->n_modules++;
                r = module_init(m);
                if (r < 0)
                        return log_error_errno(r, "--handler: module '%s' (%s): init failed: %m",
                                               m->handler->name ?: "?", m->path),
                               EX_CONFIG;
        }
        return 0;
}

static void worker_free_engine(Worker *w)
{
        Conn *c;

        for (size_t i = w->n_modules; i > 0; i--)
                module_close(&w->modules[i - 1]);
        w->n_modules = 0;
        while ((c = w->free_conns)) {
                w->free_conns = c->next;
                conn_free(c);
        }
        free(w->path_buf);
        free(w->header_buf);
        free(w->name_buf);
}

int worker_main(const Options *o)
{
        static Worker worker; /* large (listener table); static keeps it off the stack */
        Worker *w = &worker;
        _cleanup_strv_free_ char **names = NULL;
        int n, r;

        w->slot = o->worker_slot;
        log_setup("drover", (int) w->slot);
        (void) prctl(PR_SET_NAME, "drover-worker");

        r = notifier_open(&notifier, getenv("NOTIFY_SOCKET"));
        if (r < 0)
                log_warning_errno(r, "$NOTIFY_SOCKET: cannot use '%s': %m; not notifying",
                                  getenv("NOTIFY_SOCKET"));

        n = listen_fds_take(&names);
        if (n < 0)
                return log_error_errno(n, "cannot take the sockets passed in: %m"), EX_OSERR;
        if (n == 0) {
                log_error("worker mode is internal: started without sockets (LISTEN_FDS) for this process");
                return EX_USAGE;
        }

        r = loop_init(&w->loop);
        if (r < 0)
                return log_error_errno(r, "epoll: %m"), EX_OSERR;
        w->loop.after_batch = after_batch;
        loop_add_queue(&w->loop, &w->q_header, o->header_timeout_usec / USEC_PER_MSEC, conn_timeout);
        loop_add_queue(&w->loop, &w->q_idle, o->keepalive_timeout_usec / USEC_PER_MSEC, conn_timeout);
        loop_add_queue(&w->loop, &w->q_body, o->body_timeout_usec / USEC_PER_MSEC, conn_timeout);
        loop_add_queue(&w->loop, &w->q_write, o->write_timeout_usec / USEC_PER_MSEC, conn_timeout);
        loop_add_queue(&w->loop, &w->q_drain, DRAIN_IDLE_MS, conn_timeout);
        w->graceful_timeout_ms = o->graceful_timeout_usec / 1000;
        loop_add_queue(&w->loop, &w->q_graceful, w->graceful_timeout_ms, on_graceful_timeout);
        loop_add_queue(&w->loop, &w->q_trim, IDLE_TRIM_MS, on_trim_timer);
        w->max_requests = o->max_requests;
        w->read_first_hits = UINT8_MAX; /* read at once until that turns out not to pay (conn.c) */
        worker_map_stats(w);
        if (watchdog_take(&w->watchdog_usec) <= 0)
                w->watchdog_usec = 0;
        loop_add_queue(&w->loop, &w->q_ping, MAX(w->watchdog_usec / 2000, 1), on_ping_timer);
        loop_add_queue(&w->loop, &w->q_step_back, STEP_BACK_RECHECK_MS, on_step_back_timer);

        const char *root = o->root ? o->root : DROVER_DEFAULT_ROOT;
        r = static_handler_init(&w->static_handler, root, DROVER_MIME_TYPES);
        if (r < 0)
                return log_error_errno(r, "--root: cannot open '%s': %m", root), EX_CONFIG;
        w->static_handler.cache_valid_ms = o->open_file_cache_valid_usec / USEC_PER_MSEC;

        r = worker_setup_engine(w, o);
        if (r != 0)
                return r;

        r = worker_setup_signals(w);
        if (r < 0)
                return log_error_errno(r, "signals: %m"), EX_OSERR;

        for (int i = 0; i < n && (size_t) i < LISTEN_MAX; i++) {
                int fd = LISTEN_FDS_START + i;
                /* O_NONBLOCK lives on the shared open file description: the supervisor set it already, but a
                 * worker must never block in accept() even if started some other way. */
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                w->listeners[w->n_listeners++] = (Listener){
                        .watch = { .fd = fd, .handler = on_listener },
                        .protocol = protocol_from_fd_name(names ? names[i] : NULL, PROTOCOL_HTTP),
                };
        }

        r = dispatch_setup(w);
        if (r < 0)
                return EX_OSERR;
        listeners_register(w, true); /* none in dispatch mode: dispatch_setup() took them */
        w->last_ping_ms = loop_now(&w->loop);
        if (w->watchdog_usec > 0)
                timer_arm(&w->loop, &w->q_ping, &w->ping_timer);

        /* READY=1 only after one pass over what is already queued: at start-up the supervisor starts the
         * rest of the pool on it (slots_start_rest()), and under socket activation the client that started
         * the service is waiting in the backlog; served first, it does not share the CPU with the others'
         * exec. The pass never waits (timeout 0), so a worker with nothing queued is as ready as before. */
        r = loop_run_pending(&w->loop);
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m"), EX_SOFTWARE;
        if (!w->draining) /* a SIGTERM in the pass: this worker is not taking connections any more */
                worker_notify("READY=1");

        r = loop_run(&w->loop);
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m"), EX_SOFTWARE;

        worker_free_engine(w);
        static_handler_done(&w->static_handler);
        return 0;
}
