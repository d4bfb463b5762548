/*
 * The worker loop: own deque, own inbox, search (steal from other deques,
 * then start new batches from any inbox), park (idle.c); and the work
 * finding that in-worker waits use (wsched__find_work).
 */
#include <errno.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "futex.h"
#include "internal.h"
#include "probes.h"
#include "tsan.h"

#include "idle.h"
#include "waitq.h"

WSCHED_TLS struct worker *wsched__self;

/* ---------------------------------------------------------------- util */

static uint32_t rng_next(uint64_t *s)
{
    /* xorshift64*: victim selection only. */
    uint64_t x = *s;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* ------------------------------------------------------------- finding */

/* After a take from an inbox that may have moved a run of posts onto our
 * deque (inbox.h I5): the full notify (N1 fence, N2), not N4's relaxed
 * repair. Those posts were published in an inbox, whose I1 RMW paired
 * with every parker's re-scan; the first job of the run may wait for the
 * others (or just run long), so "we run them ourselves" would not do: a
 * worker parking meanwhile, whose K2 re-scan missed our deque pushes
 * (still in this CPU's store buffer), must be seen by our N2 and woken.
 * Our own deque was empty before the take (the loop pops it first), so
 * this costs a fence per run, never per batch. While we search ourselves
 * N2 sees `searching` > 0 and L1 (stop_searching) covers it. */
static inline void took_run(struct worker *w)
{
    if (!deque_empty_hint(&w->dq))
        wsched__notify(w->pool, -1); /* N1, N2 (idle.c) */
}

static bool find_local(struct worker *w, struct task *t, bool *stolen)
{
    if (deque_pop_owner(&w->dq, t)) {
        *stolen = false;
        return true;
    }
    if (inbox_take_local(w, t, true)) { /* the loop: runs of posts (I5) */
        *stolen = true; /* a fresh range: treat as foreign work */
        took_run(w);
        return true;
    }
    return false;
}

/* One pass over the other workers, from a random start: deques first
 * (finish started requests), then, unless `helping`, inboxes (start new
 * ones; with runs of posts onto our deque when `run`: from the loop). */
static bool steal_pass(struct worker *w, struct task *t, bool helping, bool run)
{
    struct pool *p = w->pool;
    unsigned n = p->n, start = rng_next(&w->rng) % n;
    struct worker *v = NULL;
    for (unsigned k = 0; k < n && !v; k++) {
        struct worker *c = &p->workers[(start + k) % n];
        if (c == w)
            continue;
        enum steal_result r;
        while ((r = deque_steal(&c->dq, t)) == STEAL_RETRY)
            cpu_relax();
        if (r == STEAL_OK)
            v = c;
    }
    /* Then new batches, class by class over every inbox (ours included:
     * it is looked at again while searching; not counted as a steal). */
    int from;
    if (!v && !helping && (from = inbox_take_any(w, start, t, run)) >= 0) {
        v = &p->workers[from];
        if (run)
            took_run(w);
    }
    if (!v) {
        STAT_ADD(w, steal_fails, 1);
        return false;
    }
    if (v != w) {
        STAT_ADD(w, steals, 1);
        PROBE2(steal, w->index, v->index);
    }
    return true;
}

static bool steal_once(struct worker *w, struct task *t)
{
    return steal_pass(w, t, false, true);
}

/* Used by sync and in-worker waits: work of requests already started (our
 * own deque, then other deques), without parking, and a new batch from an
 * inbox only when `new_ok` (what the worker waits for is itself still in an
 * inbox): otherwise a waiting worker does not start unrelated requests,
 * whose jobs could hold it long after what it waits for is done (wsched.h,
 * "Waiting inside the pool"). */
bool wsched__find_work(struct worker *w, struct task *t, bool *stolen, bool new_ok)
{
    if (deque_pop_owner(&w->dq, t)) {
        *stolen = false;
        return true;
    }
    *stolen = true;
    if (new_ok && inbox_take_local(w, t, false))
        return true;
    return w->pool->n > 1 && steal_pass(w, t, !new_ok, false);
}


/* An in-job wait for a batch that found nothing to do for a while: sleep
 * on the batch's wait word (announced as a waiter, B4: the completion wakes
 * us at once), until our own next timer, another worker's overdue timers
 * (T4), the wait's deadline, or 1 ms at most: what would wake a parked
 * worker does not reach this one (it is not parked), so it looks again
 * that often. */
#define HELP_SPINS 64
#define HELP_YIELDS 16
#define HELP_NAP_NS 1000000u
uint64_t wsched__nap_until(struct worker *w, uint64_t deadline)
{
    uint64_t until = wsched_now_ns() + HELP_NAP_NS;
    if (deadline && deadline < until)
        until = deadline;
    if (w->wheel_held && w->wheel.armed) {
        uint64_t due = timer_wheel_next_due(&w->wheel);
        if (due < until)
            until = due;
    }
    uint64_t other = w->pool->n > 1 ? wsched__timers_due_elsewhere(w) : 0;
    if (other && other < until)
        until = other;
    return until;
}

static void help_nap(struct worker *w, _Atomic uint32_t *word, uint64_t deadline)
{
    struct timespec ts;
    if (!completion_announce(word)) /* B4 */
        futex_wait(word, BATCH_WAITED, abs_deadline(wsched__nap_until(w, deadline), &ts));
}

/* One step of an in-job wait for a batch or a posted job whose `queued`
 * word this is (NULL: children, wsched_sync): run one task (own deque
 * first; new submissions from inboxes only while the awaited batch or job
 * itself still waits in one, or it could never start on a
 * pool whose workers all wait), or back off: pause 64 times, yield 16
 * times, then (waiting for a batch: `word`) nap on its word; wsched_sync
 * naps on its own (forkjoin.c). */
void wsched__help_once(struct worker *w, unsigned *backoff, _Atomic uint32_t *queued,
                       _Atomic uint32_t *word, uint64_t deadline)
{
    struct task t;
    bool stolen;
    bool new_ok = queued && ld(queued, RLX); /* relaxed: a hint (internal.h) */
    if (wsched__find_work(w, &t, &stolen, new_ok)) {
        run_task(w, &t, stolen);
        *backoff = 0;
    } else if (wsched__help_waits(w)) {
        *backoff = 0; /* resumptions on our deque: the next step runs them */
    } else if (++*backoff < HELP_SPINS) {
        cpu_relax();
    } else if (!word || *backoff < HELP_NAP_AFTER) {
        sched_yield();
    } else {
        help_nap(w, word, deadline);
    }
}

/* ---------------------------------------------------------------- timers */

/* A job's timer fired (a sleep, or a deadline): if that decides the wait
 * (waitq.c C2), its resumption goes onto our own deque, from where another
 * worker may steal it like any task. */
static void fire_resume(void *ctx, struct timer *t)
{
    wsched__wait_fire(ctx, (struct job_wait *)(void *)t); /* the timer: first member */
}

/* Fire what is due on our wheel. Only from the loop, outside any job (a
 * fired wait must belong to a job call that has returned). True when
 * something fired. */
static inline bool run_timers(struct worker *w)
{
    if (likely(!w->wheel_held || !w->wheel.armed)) /* (T3: a thief has it) */
        return false;
    if (!timer_wheel_advance(&w->wheel, wsched_now_ns(), fire_resume, w))
        return false;
    /* T6: the held time we show parkers moves on with what we fired
     * (relaxed: a hint; a stale one costs another's spurious wake-up). */
    if (ld(&w->wheel_due, RLX))
        st(&w->wheel_due,
           w->wheel.armed ? timer_wheel_next_due(&w->wheel) | WHEEL_DUE_HELD : 0, RLX);
    return true;
}

/* Everything that completes our waits, from the loop: timers, waits
 * completed elsewhere (waitq.c R2), fd events. True when any resumption
 * may have been pushed. */
static inline bool run_waits(struct worker *w)
{
    bool any = run_timers(w);
    if (unlikely(ready_pending(w)))
        any |= wsched__ready_run(w);
    if (unlikely(w->nfds))
        any |= wsched__fd_poll(w);
    return any;
}

static bool search(struct worker *w, struct task *t)
{
    struct pool *p = w->pool;
    /* A pool of one worker searches too (its own inbox and waits), so the
     * next request of a caller that submits one at a time finds it awake
     * instead of paying a futex wake on each side. */
    if (!w->searching) {
        /* Cap searchers at half the workers (at least one). */
        uint32_t s = ld(&p->searching, RLX);
        if (2 * s >= p->n && s > 0)
            return false;
        fadd(&p->searching, 1, SC);
        w->searching = true;
    }
    uint64_t deadline = wsched_now_ns() + p->spin_ns;
    unsigned backoff = 1;
    for (;;) {
        if (steal_once(w, t))
            return true;
        if (run_waits(w) && deque_pop_owner(&w->dq, t))
            return true; /* a resumption of ours */
        if (wsched_now_ns() >= deadline)
            return false;
        /* Back off 1, 2, 4 .. 64 pauses, then yield between passes: a
         * thread that shares this CPU (a request thread about to submit,
         * when threads outnumber CPUs) runs instead of our spinning. */
        if (backoff <= 64) {
            for (unsigned i = 0; i < backoff; i++)
                cpu_relax();
            backoff *= 2;
        } else {
            sched_yield();
        }
    }
}

/* -------------------------------------------------------------- worker */

/* Busy time: from finding work to the next search or park. The clock is
 * read only on those transitions, never per task. */
static inline void busy_begin(struct worker *w)
{
#ifndef WSCHED_NO_STATS
    if (!w->busy_since)
        w->busy_since = wsched_now_ns();
#else
    (void)w;
#endif
}

static inline void busy_end(struct worker *w)
{
#ifndef WSCHED_NO_STATS
    if (w->busy_since) {
        STAT_ADD(w, busy_ns, wsched_now_ns() - w->busy_since);
        w->busy_since = 0;
    }
#else
    (void)w;
#endif
}

void *wsched__worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->pool;
    char name[16];
    snprintf(name, sizeof name, "wsched/%u", w->index);
    pthread_setname_np(pthread_self(), name);
    /* Our timed parks wait for our timers: a slack of about a tick, not the
     * thread's 50 us default (wsched.h, timer_slack_ns). A refusal (a
     * seccomp filter, say) leaves the default: timers are only later. */
    (void)prctl(PR_SET_TIMERSLACK, (unsigned long)p->timer_slack_ns, 0, 0, 0);
    wsched__self = w;

    struct task t;
    bool stolen;
    enum park_result pr = PARK_WOKEN;
    for (;;) {
        if (unlikely(!w->wheel_held))
            wsched__wheel_take(w); /* T1: back after a task, unless a thief has it */
        run_timers(w);
        if (unlikely(ready_pending(w)))
            wsched__ready_run(w);
        /* fds: every 64th task while busy, and before searching. */
        if (unlikely(w->nfds) && (++w->poll_tick & 63) == 0)
            wsched__fd_poll(w);
        stolen = true; /* unless find_local popped it from our own deque */
        bool found = find_local(w, &t, &stolen);
        if (!found && unlikely(w->nfds) && wsched__fd_poll(w))
            found = find_local(w, &t, &stolen);
        if (!found) {
            pool_settle(w); /* H5: before searching, and so before any park */
            busy_end(w);
            /* After a park cancelled because work was visible, take it even
             * if the searcher cap would keep us from searching. */
            found = search(w, &t) || (pr == PARK_SAW_WORK && p->n > 1 && steal_once(w, &t));
            /* T2: a busy worker's overdue timers (also after a park that
             * timed out for them, whatever the searcher cap said). */
            if (!found && p->n > 1 && wsched__timers_steal(w))
                found = find_local(w, &t, &stolen);
        }
        if (found) {
            if (w->searching)
                wsched__stop_searching(w);
            busy_begin(w);
            wsched__wheel_release(w); /* T1: our timers stay live during the task */
            run_task(w, &t, stolen);
            pr = PARK_WOKEN;
            continue;
        }
        /* Sleep until claimed, or until our earliest timer, or another's
         * that a thief should fire (T4). */
        wsched__wheel_take_spin(w);
        uint64_t due = w->wheel.armed ? timer_wheel_next_due(&w->wheel) : 0;
        uint64_t other = p->n > 1 ? wsched__timers_due_elsewhere(w) : 0;
        if (other && (!due || other < due))
            due = other;
        /* The others' wheel_due read here are only an estimate: our park's
         * published deadline (park_until). The park re-reads them after K1
         * (T6, idle.c), which no publication can slip past. */
        pr = wsched__park(w, due);
        if (w->nev)
            wsched__fd_events(w); /* what woke a park in epoll (idle.c K5) */
        if (pr == PARK_STOP)
            break;
    }
    if (w->searching) {
        w->searching = false;
        fsub(&p->searching, 1, SC);
    }
    /* Withdrawals of deadlines (waitq.c D3) posted by batches that
     * completed before destroy stopped us: their references. */
    wsched__wheel_take_spin(w);
    while (ready_pending(w))
        wsched__ready_run(w);
    busy_end(w);
    DEBUG_ASSERT(ld(&w->owed, RLX) == 0); /* settled before the last park */
    wsched__self = NULL;
    return NULL;
}
