/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

/*
 * The worker's event loop: one epoll instance, created after exec, plus timer queues. It is deliberately
 * smaller than sd-event: the data path wants EPOLLEXCLUSIVE (which sd-event refuses), no priority queue work
 * per event, and no allocation per registration.
 *
 * Timeouts use one FIFO queue per duration: every entry of a queue has the same duration, so appending keeps
 * the queue sorted by deadline and arming, disarming and expiring are O(1). The loop sleeps until the earliest
 * head among the queues; with nothing armed it sleeps without a timeout (no periodic wake-ups).
 */

typedef struct Loop Loop;
typedef struct IoWatch IoWatch;
typedef void (*io_handler_t)(Loop *l, IoWatch *w, uint32_t events);

struct IoWatch {
        io_handler_t handler;
        int fd;
};

typedef struct TimerQueue TimerQueue;
typedef struct TimerEntry TimerEntry;
typedef void (*timer_handler_t)(Loop *l, TimerEntry *e);

struct TimerEntry {
        TimerEntry *prev, *next;
        TimerQueue *queue; /* NULL when disarmed */
        uint64_t deadline_ms;
};

struct TimerQueue {
        TimerEntry *head, *tail;
        uint64_t duration_ms;
        timer_handler_t handler;
};

#define LOOP_MAX_QUEUES 12

struct Loop {
        int epoll_fd;
        bool quit;
        uint64_t now_ms;
        /* No armed timer's deadline is earlier: exact after next_timeout(), lowered by timer_arm(), and only
         * ever too early after a disarm. A batch whose now is before it has no timer to expire. */
        uint64_t earliest_ms;
        TimerQueue *queues[LOOP_MAX_QUEUES];
        unsigned n_queues;
        /* Called after each batch of events and timers: objects closed during a batch are released here, so
         * that a later event of the same batch never touches freed memory. A handler skips a watch whose fd
         * has been set to -1. */
        void (*after_batch)(Loop *l);
};

int loop_init(Loop *l);
void loop_done(Loop *l);
int loop_add(Loop *l, IoWatch *w, uint32_t events);
int loop_mod(Loop *l, IoWatch *w, uint32_t events);
int loop_del(Loop *l, IoWatch *w);
void loop_add_queue(Loop *l, TimerQueue *q, uint64_t duration_ms, timer_handler_t handler);
uint64_t loop_now(Loop *l);
/* Reads the (coarse, vDSO: no syscall) clock again; returns the new now. */
uint64_t loop_update_now(Loop *l);

void timer_arm(Loop *l, TimerQueue *q, TimerEntry *e);
void timer_disarm(TimerEntry *e);
static inline bool timer_armed(const TimerEntry *e)
{
        return e->queue != NULL;
}

/* Runs until loop->quit is set. Returns 0 or -errno if epoll fails. */
int loop_run(Loop *l);
/* One pass over what is ready now, without waiting. Returns 0 or -errno if epoll fails. */
int loop_run_pending(Loop *l);
