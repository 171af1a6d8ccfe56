/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/*
 * Per-process counters that built-in workers keep in a memfd the supervisor maps too, so the supervisor learns
 * request and connection counts without a syscall per request, and can name the request a stuck worker was
 * busy with when its watchdog fires (a stuck worker cannot tell it anything).
 *
 * The memfd is inherited at fd 3 + LISTEN_FDS, right after the sockets, and named by $DROVER_STATS=FD:INDEX;
 * exec workers never get it. Each record has exactly one writer (its worker) and is read by the supervisor
 * with relaxed atomic loads: counters are monotonic (except `connections`), so a stale read is only late.
 */

#define STATS_CURRENT_MAX 176

/* WorkerStats.accepting. The supervisor zeroes it when it reaps a worker, so a dead worker never looks like
 * it takes connections. */
enum {
        ACCEPT_OUT = 0,      /* not taking connections: not started yet, draining, gone, or an exec worker */
        ACCEPT_PAUSED = 1,   /* off the listeners at a limit (--max-connections, out of descriptors) */
        ACCEPT_DOORBELL = 2, /* above its share: only told of new connections, takes none (worker.c) */
        ACCEPT_ON = 3,       /* accepting */
};

typedef struct WorkerStats {
        uint64_t requests;    /* answered */
        uint64_t accepted;    /* connections accepted */
        uint32_t connections; /* open now */
        uint32_t busy;        /* 1 while a request is being handled; `current` names it */
        uint32_t load;        /* permille of the time between its last two pings spent handling events rather
                               * than waiting for them: a blocked handler or a saturated CPU shows as ~1000 */
        uint32_t accepting;   /* ACCEPT_*: where this worker stands with the listeners (worker.c) */
        char current[STATS_CURRENT_MAX];
} __attribute__((aligned(64))) WorkerStats; /* one cache line pair per worker: no false sharing */

#define stats_load(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define stats_store(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define stats_add(field, v) stats_store(field, stats_load(field) + (v)) /* single writer: no RMW needed */
