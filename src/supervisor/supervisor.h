/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/options.h"
#include "common/parse.h"
#include "common/stats.h"

typedef struct ListenSocket {
        int fd;
        Protocol protocol;
        char name[64];    /* FileDescriptorName= as handed to workers */
        char unlink[108]; /* a unix socket path we created and must remove, or "" */
} ListenSocket;

/* sockets.c: the sockets systemd passed in or, failing that, the --listen addresses bound here. Returns the
 * number of sockets, or -EX_* (a sysexits code, negated) after logging one clear line. */
int sockets_collect(const Options *o, ListenSocket **ret, size_t *ret_n);
void sockets_free(ListenSocket *s, size_t n);

/* spawn.c */
typedef struct SpawnContext {
        const char *exe;
        char **argv;
        char **envp; /* base environment, without the socket-activation variables */
        const ListenSocket *sockets;
        size_t n_sockets;
        const char *fdnames; /* "http:scgi" */
        const char *notify_socket;
        uint64_t watchdog_usec; /* 0: no WATCHDOG_USEC/WATCHDOG_PID */
        int stats_fd;           /* -EBADF: none (exec workers) */
        int stats_index;
        int dispatch_fd; /* -EBADF: none; else the worker's end of its socketpair (--accept=dispatch) */
} SpawnContext;

/* Starts a worker: returns once it has exec'd, or failed to (ret_exec_errno: 0, or the errno of what failed,
 * said on stderr; the process then exits 127). ret_pidfd: the worker's pidfd, close-on-exec. */
int spawn_worker(const SpawnContext *ctx, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_errno);
char **spawn_base_environment(void);
int resolve_command(const char *name, char **ret);

typedef struct Supervisor Supervisor;
typedef struct WorkerSlot WorkerSlot;

/*
 * Processes and slots are separate tables. A slot is a place in the pool (N of them, fixed); a process is one
 * exec'd worker. A slot has at most one `current` process (the one serving, or starting to) and at most one
 * `replacement` (starting, to take over on READY=1: reload, recycling); a process that has been replaced or
 * stopped is detached from its slot and only waited for. Every process has a pidfd child source, so its exit
 * is seen at once, whatever its role.
 */
typedef enum ProcessState {
        PROCESS_STARTING, /* exec'd (or exec'ing), READY=1 not yet seen */
        PROCESS_READY,
        PROCESS_STOPPING, /* SIGTERM sent or STOPPING=1 seen; waiting for the exit */
        PROCESS_KILLED,   /* watchdog: SIGABRT sent, SIGKILL follows */
} ProcessState;

typedef struct Process {
        Supervisor *supervisor;
        struct Process *prev, *next;
        WorkerSlot *slot; /* NULL once detached */
        unsigned slot_index;
        ProcessState state;
        pid_t pid;
        unsigned generation; /* reload generation it was started in */
        /* The options it was started with: a reload must not hold an older worker to newer deadlines. */
        uint64_t watchdog_usec;
        uint64_t graceful_usec;
        ExecReady exec_ready;
        int stats_index;     /* -1: none */
        bool retire_asked;
        bool stop_acked; /* said STOPPING=1: a built-in worker takes no new connection after saying it */
        uint64_t started_usec;
        sd_event_source *child_source;
        sd_event_source *exec_source; /* an exec worker in "started" mode: ready from the loop once exec'd */
        sd_event_source *watchdog_timer; /* start deadline, then liveness deadline */
        sd_event_source *kill_timer;     /* SIGKILL after graceful timeout or watchdog grace */

        /* --accept=dispatch: the supervisor's end of the worker's socketpair (owned by pair_source), and
         * whether the worker is known free: READY=1 seen or "F" since the last hand-over. */
        sd_event_source *pair_source;
        bool free;
        uint64_t free_since;
        /* The connection last handed over, kept until the worker says "B" (it has it): if the worker dies
         * before that, the connection goes to another worker instead of being lost. -EBADF: none. */
        int handed_fd;
        unsigned handed_listener;
} Process;

struct WorkerSlot {
        Supervisor *supervisor;
        unsigned index;
        Process *current;
        Process *replacement;
        sd_event_source *respawn_timer;
        unsigned failures; /* consecutive failed runs, for backoff */
        bool active;       /* part of the pool now: --min-workers of them always, up to --max-workers */
};

/* A connection the supervisor accepted for a worker that is starting (dispatch mode). */
typedef struct PendingConn {
        int fd;
        unsigned listener;
} PendingConn;

struct Supervisor {
        sd_event *event;
        Options *options;             /* owned; replaced by a reload that re-read them */
        const OptionsSource *source; /* what the options were loaded from, read again on SIGHUP */
        char *exe;
        char **argv_exec; /* exec workers: the command line; NULL for built-in workers */
        char **envp;

        ListenSocket *sockets;
        size_t n_sockets;
        char *fdnames;

        int notify_fd;
        char notify_address[128];
        sd_event_source *notify_source;

        WorkerSlot *slots;
        unsigned n_slots;   /* --max-workers; the active ones have a worker */
        bool rest_deferred; /* start-up: slots after the first wait for it (supervisor.c, slots_start_rest) */
        unsigned ready_needed;
        Process *processes; /* every live process */

        int stats_fd;
        WorkerStats *stats;
        size_t stats_capacity;
        bool *stats_used;
        uint64_t requests_dead, accepted_dead; /* folded in from exited processes */

        unsigned generation;
        bool reloading;
        unsigned reload_pending;
        unsigned reload_slot;
        unsigned reloads_done;

        bool ready_sent;
        bool stopping;
        bool exit_requested; /* the loop exits once every process is gone */
        sd_event_source *idle_timer;
        uint64_t idle_accepted;

        uint64_t systemd_watchdog_usec;
        sd_event_source *systemd_watchdog_timer;
        uint64_t unready_since;
        bool petting_stopped;

        /* --accept=dispatch: the listening sockets' sources (on only while a worker is free or the pool may
         * grow) and the connections accepted for starting workers, oldest first. */
        sd_event_source **listen_sources;
        bool listening;
        sd_event_source *accept_retry_timer; /* after EMFILE and the like */
        PendingConn *pending;
        size_t pending_head, n_pending;
        uint64_t dispatched;

        /* The dynamic pool: retiring idle workers above --min-workers. */
        sd_event_source *shrink_timer;
        uint64_t underloaded_since; /* shared mode: the pool could do with one worker less since */

        unsigned restarts;
        uint64_t rate_requests, rate_usec;
        double rate;
        /* While the counters move, STATUS= is refreshed from a one-second tick that reads the shared counters;
         * the tick stops once a tick sees them still and the rate has fallen to 0. */
        sd_event_source *status_timer;
        uint64_t tick_requests, tick_conns;
        char status[256];
};

/* Everything about the options that can be checked without serving: the document root, every handler
 * module (loaded and unloaded), the exec command. Each problem is added to errors; returns 0 or -ERANGE. */
int supervisor_check(const Options *o, OptionsErrors *errors);

/* Takes ownership of o (allocated with malloc), and re-reads source on SIGHUP. Returns the exit status. */
int supervisor_main(Options *o, const OptionsSource *source);
