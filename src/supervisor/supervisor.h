/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/options.h"
#include "common/parse.h"

typedef struct ListenSocket {
        int fd;
        Protocol protocol;
        char name[64];     /* FileDescriptorName= as handed to workers */
        char unlink[108];  /* a unix socket path we created and must remove, or "" */
} ListenSocket;

/* sockets.c: the sockets systemd passed in or, failing that, the --listen addresses bound here. Returns the
 * number of sockets, or a sysexits code (> 0 is impossible for a count of 0, so errors are negative: -EX_*)
 * after logging one clear line. */
int sockets_collect(const Options *o, ListenSocket **ret, size_t *ret_n);
void sockets_free(ListenSocket *s, size_t n);

/* spawn.c */
typedef struct SpawnContext {
        const char *exe;
        char **argv;         /* for this worker */
        char **envp;         /* base environment, without the socket-activation variables */
        const ListenSocket *sockets;
        size_t n_sockets;
        const char *fdnames; /* "http:scgi" */
        const char *notify_socket;
} SpawnContext;

int spawn_worker(const SpawnContext *ctx, pid_t *ret_pid, int *ret_pidfd);
char **spawn_base_environment(void);

/* The slot table. A slot holds at most one live process; a slot's state says what the supervisor expects of
 * it next. */
typedef enum WorkerState {
        WORKER_EMPTY,    /* no process; a respawn is due, possibly after a backoff delay */
        WORKER_STARTING, /* exec'd, READY=1 not yet received */
        WORKER_READY,
        WORKER_STOPPING, /* told to stop (or said STOPPING=1), waiting for the exit */
} WorkerState;

typedef struct Supervisor Supervisor;

typedef struct WorkerSlot {
        Supervisor *supervisor;
        unsigned slot;
        WorkerState state;
        pid_t pid;
        sd_event_source *child_source;
        sd_event_source *respawn_timer;
        uint64_t started_usec;
        unsigned failures; /* consecutive short-lived runs, for backoff */
} WorkerSlot;

struct Supervisor {
        sd_event *event;
        const Options *options;
        char *exe;
        char **envp;

        ListenSocket *sockets;
        size_t n_sockets;
        char *fdnames;

        int notify_fd;
        char notify_address[128];
        sd_event_source *notify_source;

        WorkerSlot *slots;
        unsigned n_slots;

        bool ready_sent;
        bool stopping;
        sd_event_source *kill_timer;
        char status[256];
};

int supervisor_main(const Options *o);
