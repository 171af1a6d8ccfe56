/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
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
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "config.h"
#include "worker/worker.h"

/*
 * A worker is what systemd would start for a socket-activated service: it finds its sockets with
 * sd_listen_fds_with_names() (which checks LISTEN_PID), reports READY=1 and STOPPING=1 with sd_notify() — to
 * the supervisor, whose private socket is its $NOTIFY_SOCKET — and on SIGTERM stops accepting, finishes what
 * it has and exits 0.
 */

/*
 * The accept policy: how the workers share the connections of the listening sockets.
 *
 * Every worker waits on the shared listeners with EPOLLEXCLUSIVE, so the kernel wakes one waiting worker per
 * arriving connection: no thundering herd. But it wakes whichever waits first in the socket's queue, and a
 * woken worker accepts a batch, so left alone one worker takes most connections (wrk's 32 at once land in one
 * or two batches). So each worker keeps to its share, computed without a system call from the shared stats
 * records (stats.h): share = ceil(connections open in all workers / workers taking connections).
 *
 *  - After each accept, a worker above its share ends the batch and steps back: it takes its listeners out of
 *    its epoll set, so that the kernel wakes the others. It comes back as soon as it is within its share again,
 *    or when no other worker watches the listeners. It looks after each batch of its own events (its closes
 *    among them) and on a timer armed only while it is stepped back, that is while it holds connections (a
 *    worker with nothing open is never above its share, so an idle pool is never woken). The timer matters
 *    when its connections are quiet while the others take new ones: the last worker on the listeners cannot
 *    step back however many it takes, and nothing else would tell this one that it is below its share now.
 *    It backs off from STEP_BACK_RECHECK_MIN_MS (a burst is over within a few ms) to STEP_BACK_RECHECK_MAX_MS
 *    (a worker that stays above its share with idle keep-alive connections costs about one wake-up a
 *    second, as its watchdog pings do).
 *
 *  - Invariant: at least one worker taking connections watches the listeners. A worker steps back only after
 *    it has published ACCEPT_BACK, issued a full fence and then seen another worker in ACCEPT_ON. Two workers
 *    stepping back at once both store before they load, so at least one sees the other's ACCEPT_BACK and
 *    stays (Dekker's argument). With current counts the least-loaded worker is never above its share, so it
 *    does not even try. The limits (--max-connections, out of descriptors) still take a worker off the
 *    listeners unconditionally, as before; the stepped-back workers' recheck covers that case.
 *
 *  - No connection is stranded in a backlog: the kernel wakes one waiter per arriving connection, and the
 *    worker it woke may have been the only one told. So a worker steps back only when its listeners' backlogs
 *    are empty (a poll() without timeout, on the step-back path only); otherwise it stays on them, above its
 *    share, and takes one connection per loop iteration (the others take theirs meanwhile) until they are
 *    empty. A connection that arrives after that poll() finds this worker not waiting, so the kernel wakes
 *    another.
 *
 * Exec workers never get here (they run their own program). A worker without the shared records (started by
 * hand, or the table was full) sees only itself and never steps back.
 */

static void accept_publish(Worker *w, uint32_t state)
{
        stats_store(w->stats->accepting, state);
}

static void listeners_register(Worker *w, bool on)
{
        if (w->listening == on)
                return;
        if (!on)
                accept_publish(w, ACCEPT_BACK);
        for (size_t i = 0; i < w->n_listeners; i++) {
                Listener *li = &w->listeners[i];
                int r = on ? loop_add(&w->loop, &li->watch, EPOLLIN | EPOLLEXCLUSIVE)
                           : loop_del(&w->loop, &li->watch);
                if (r < 0)
                        log_warning_errno(r, "cannot %s listening socket %i: %m", on ? "watch" : "unwatch",
                                          li->watch.fd);
        }
        w->listening = on;
        if (on)
                accept_publish(w, ACCEPT_ON);
}

typedef struct PoolView {
        uint64_t total;   /* connections open in the workers taking connections, ours included */
        uint64_t workers; /* workers taking connections, ours included */
        bool other_on;    /* another worker watches the listeners */
} PoolView;

static PoolView pool_view(Worker *w)
{
        PoolView v = { .total = w->n_conns, .workers = 1 };
        size_t own, highest;

        if (!w->pool_stats)
                return v;
        own = highest = (size_t) (w->stats - w->pool_stats);
        /* Orders our own stores (ACCEPT_*, connections) before the loads below: see the invariant above. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        for (size_t i = 0; i < w->pool_scan_end; i++) {
                const WorkerStats *st = &w->pool_stats[i];
                uint32_t state = stats_load(st->accepting);
                if (i == own || state == ACCEPT_OUT)
                        continue;
                highest = MAX(highest, i);
                v.workers++;
                v.total += stats_load(st->connections);
                v.other_on |= state == ACCEPT_ON;
        }
        /* The supervisor hands out the lowest free record, so the workers' records are near the start: scan a
         * margin past the highest one in use (a worker outside it only makes us count fewer workers, which
         * errs on the side of staying on the listeners) rather than the whole table. */
        w->pool_scan_end = MIN(w->n_pool_stats, highest + 1 + STATS_SCAN_MARGIN);
        return v;
}

/* More than ceil(total / workers) connections. */
static bool above_share(const Worker *w, const PoolView *v)
{
        return w->n_conns > 0 && v->workers * (w->n_conns - 1) >= v->total;
}

static bool listeners_pending(Worker *w)
{
        struct pollfd pfd[LISTEN_MAX];

        for (size_t i = 0; i < w->n_listeners; i++)
                pfd[i] = (struct pollfd){ .fd = w->listeners[i].watch.fd, .events = POLLIN };
        /* On failure, assume there is something: staying on the listeners is the safe side. */
        return poll(pfd, w->n_listeners, 0) != 0;
}

/* After an accept: false to go on with the batch; true if this worker is above its share (it stepped back if
 * it could, see above). */
static bool accept_above_share(Worker *w)
{
        PoolView v = pool_view(w);

        if (!v.other_on || !above_share(w, &v))
                return false;
        accept_publish(w, ACCEPT_BACK);
        v = pool_view(w);
        if (!v.other_on || !above_share(w, &v) || listeners_pending(w)) {
                accept_publish(w, ACCEPT_ON);
                return v.other_on && above_share(w, &v);
        }
        listeners_register(w, false);
        w->stepped_back = true;
        /* q_step_back holds this one entry only, so its duration may change between arms. */
        w->q_step_back.duration_ms = STEP_BACK_RECHECK_MIN_MS;
        timer_arm(&w->loop, &w->q_step_back, &w->step_back_timer);
        return true;
}

static void step_back_recheck(Worker *w)
{
        PoolView v;

        if (!w->stepped_back)
                return;
        v = pool_view(w);
        if (v.other_on && above_share(w, &v)) {
                if (!timer_armed(&w->step_back_timer))
                        timer_arm(&w->loop, &w->q_step_back, &w->step_back_timer);
                return;
        }
        w->stepped_back = false;
        timer_disarm(&w->step_back_timer);
        if (!w->draining && w->n_conns < w->max_connections)
                listeners_register(w, true);
}

static void on_step_back_timer(Loop *l, TimerEntry *e)
{
        Worker *w = container_of(l, Worker, loop);

        w->q_step_back.duration_ms = MIN(w->q_step_back.duration_ms * 2, STEP_BACK_RECHECK_MAX_MS);
        step_back_recheck(w);
}

void worker_connection_closed(Worker *w)
{
        if (w->draining) {
                if (w->n_conns == 0)
                        w->loop.quit = true;
                return;
        }
        /* Off the listeners at a limit: a close is room again. Stepped back: after_batch() decides. */
        if (!w->listening && !w->stepped_back && w->n_conns < w->max_connections)
                listeners_register(w, true);
}

static void on_listener(Loop *l, IoWatch *watch, uint32_t events)
{
        Listener *li = container_of(watch, Listener, watch);
        Worker *w = container_of(l, Worker, loop);

        for (int i = 0; i < ACCEPT_BATCH && w->listening; i++) {
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
                else if (accept_above_share(w))
                        return;
        }
}

static void worker_ping(Worker *w)
{
        (void) sd_notify(0, "WATCHDOG=1");
        w->last_ping_ms = loop_now(&w->loop);
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
                (void) sd_notify(0, "X_DROVER_RETIRE=1");
        }
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

static void worker_begin_drain(Worker *w)
{
        if (w->draining)
                return;
        log_worker_event(LOG_INFO, 0, "drain", (int) w->slot, getpid(),
                         "stopping: no new connections, finishing %u open", w->n_conns);
        (void) sd_notify(0, "STOPPING=1");
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
        accept_publish(w, ACCEPT_OUT);
        w->stepped_back = false;
        timer_disarm(&w->step_back_timer);
        for (size_t i = 0; i < w->n_listeners; i++)
                w->listeners[i].watch.fd = safe_close(w->listeners[i].watch.fd);
        w->n_listeners = 0;
        w->draining = true;
        for (Conn *c = w->conns, *next; c; c = next) {
                next = c->next;
                conn_begin_drain(c);
        }
        if (w->n_conns == 0)
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

        conns_release_closed(w);
        step_back_recheck(w);
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

        n = sd_listen_fds_with_names(true, &names);
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
        w->max_requests = o->max_requests;
        worker_map_stats(w);
        if (sd_watchdog_enabled(true, &w->watchdog_usec) <= 0)
                w->watchdog_usec = 0;
        loop_add_queue(&w->loop, &w->q_ping, MAX(w->watchdog_usec / 2000, 1), on_ping_timer);
        loop_add_queue(&w->loop, &w->q_step_back, STEP_BACK_RECHECK_MIN_MS, on_step_back_timer);

        const char *root = o->root ? o->root : DROVER_DEFAULT_ROOT;
        r = static_handler_init(&w->static_handler, root, DROVER_MIME_TYPES);
        if (r < 0)
                return log_error_errno(r, "--root: cannot open '%s': %m", root), EX_CONFIG;

        r = worker_setup_engine(w, o);
        if (r != 0)
                return r;

        r = worker_setup_signals(w);
        if (r < 0)
                return log_error_errno(r, "signals: %m"), EX_OSERR;

        for (int i = 0; i < n && (size_t) i < LISTEN_MAX; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                /* O_NONBLOCK lives on the shared open file description: the supervisor set it already, but a
                 * worker must never block in accept() even if started some other way. */
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                w->listeners[w->n_listeners++] = (Listener){
                        .watch = { .fd = fd, .handler = on_listener },
                        .protocol = protocol_from_fd_name(names ? names[i] : NULL, PROTOCOL_HTTP),
                };
        }

        listeners_register(w, true);
        (void) sd_notify(0, "READY=1");
        w->last_ping_ms = loop_now(&w->loop);
        if (w->watchdog_usec > 0)
                timer_arm(&w->loop, &w->q_ping, &w->ping_timer);

        r = loop_run(&w->loop);
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m"), EX_SOFTWARE;

        worker_free_engine(w);
        static_handler_done(&w->static_handler);
        return 0;
}
