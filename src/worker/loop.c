/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "worker/loop.h"

static uint64_t monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int loop_init(Loop *l)
{
        *l = (Loop){ .now_ms = monotonic_ms() };
        l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        return l->epoll_fd < 0 ? negative_errno() : 0;
}

void loop_done(Loop *l)
{
        l->epoll_fd = safe_close(l->epoll_fd);
}

int loop_add(Loop *l, IoWatch *w, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.ptr = w };
        return epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? negative_errno() : 0;
}

int loop_mod(Loop *l, IoWatch *w, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.ptr = w };
        return epoll_ctl(l->epoll_fd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? negative_errno() : 0;
}

int loop_del(Loop *l, IoWatch *w)
{
        return epoll_ctl(l->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL) < 0 ? negative_errno() : 0;
}

void loop_add_queue(Loop *l, TimerQueue *q, uint64_t duration_ms, timer_handler_t handler)
{
        *q = (TimerQueue){ .duration_ms = duration_ms, .handler = handler };
        if (l->n_queues < LOOP_MAX_QUEUES)
                l->queues[l->n_queues++] = q;
}

uint64_t loop_now(Loop *l)
{
        return l->now_ms;
}

uint64_t loop_update_now(Loop *l)
{
        return l->now_ms = monotonic_ms();
}

void timer_disarm(TimerEntry *e)
{
        TimerQueue *q = e->queue;
        if (!q)
                return;
        if (e->prev)
                e->prev->next = e->next;
        else
                q->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                q->tail = e->prev;
        e->prev = e->next = NULL;
        e->queue = NULL;
}

void timer_arm(Loop *l, TimerQueue *q, TimerEntry *e)
{
        timer_disarm(e);
        e->deadline_ms = l->now_ms + q->duration_ms;
        l->earliest_ms = MIN(l->earliest_ms, e->deadline_ms);
        e->queue = q;
        e->prev = q->tail;
        e->next = NULL;
        if (q->tail)
                q->tail->next = e;
        else
                q->head = e;
        q->tail = e;
}

static int next_timeout(Loop *l)
{
        uint64_t earliest = UINT64_MAX;
        for (unsigned i = 0; i < l->n_queues; i++)
                if (l->queues[i]->head)
                        earliest = MIN(earliest, l->queues[i]->head->deadline_ms);
        l->earliest_ms = earliest;
        if (earliest == UINT64_MAX)
                return -1;
        if (earliest <= l->now_ms)
                return 0;
        /* +1: the coarse clock may lag the kernel's timer; never spin a whole tick early. */
        return (int) MIN(earliest - l->now_ms + 1, (uint64_t) 24 * 3600 * 1000);
}

static void expire_timers(Loop *l)
{
        /* Most batches (a request answered, a connection accepted) come long before any deadline: then there
         * is no queue to look at. */
        if (l->now_ms < l->earliest_ms)
                return;
        for (unsigned i = 0; i < l->n_queues; i++) {
                TimerQueue *q = l->queues[i];
                while (q->head && q->head->deadline_ms <= l->now_ms) {
                        TimerEntry *e = q->head;
                        timer_disarm(e);
                        q->handler(l, e);
                }
        }
}

/* One epoll_wait() with the given timeout, then the events, the expired timers and the batch hook. */
static int loop_iterate(Loop *l, int timeout)
{
        struct epoll_event events[64];
        int n = epoll_wait(l->epoll_fd, events, (int) ELEMENTSOF(events), timeout);

        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        l->now_ms = monotonic_ms();
        for (int i = 0; i < n; i++) {
                IoWatch *w = events[i].data.ptr;
                if (w->fd >= 0)
                        w->handler(l, w, events[i].events);
        }
        expire_timers(l);
        if (l->after_batch)
                l->after_batch(l);
        return 0;
}

int loop_run_pending(Loop *l)
{
        return loop_iterate(l, 0);
}

int loop_run(Loop *l)
{
        while (!l->quit) {
                int r = loop_iterate(l, next_timeout(l));
                if (r < 0)
                        return r;
        }
        return 0;
}
