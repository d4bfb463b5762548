/*
 * Completing the waits of jobs that wait (WSCHED_BATCH_WAITS): the wait
 * cells that decide each completion once, the per-worker ready queue for
 * completions that happen elsewhere, and the per-worker epoll instance.
 * The protocol is argued at the top of waitq.c (C1-C4, R1-R3).
 */
#ifndef WSCHED_WAITQ_H
#define WSCHED_WAITQ_H

#include "internal.h"

/* A wait cell: one per armed sleep, waker or fd wait, in a table that the
 * pool keeps until it is destroyed, so that a waker's handle (cell index
 * and generation) is safe to use after the wait, its batch or its job is
 * gone. 32 bytes. */
struct wait_cell {
    /* generation << 8 | state (CELL_*): the one word every completer CASes. */
    _Atomic uint64_t word;
    _Atomic(struct job_wait *) jw; /* the wait, while armed */
    _Atomic uint64_t value;        /* a waker's value; an fd wait's fd */
    uint32_t next_free;            /* the holding worker's free list */
    uint32_t pad;
};

enum {
    CELL_FREE = 0,
    CELL_ARMED = 1,
    /* Completed, by what (the resumption reads it): */
    CELL_TIMER,     /* a sleep's time came */
    CELL_WOKEN,     /* wsched_wake */
    CELL_FD,        /* the fd is ready */
    CELL_TIMEDOUT,  /* a waker's or fd wait's deadline */
    CELL_CANCELLED, /* its batch was cancelled, or the pool destroyed */
    CELL_ATIMEOUT,  /* its attempt's timeout (a downstream's attempt_timeout_ns) */
};

#define CELL_CHUNK_SHIFT 10 /* 1024 cells, 32 KiB, per chunk */
#define CELL_CHUNK (1u << CELL_CHUNK_SHIFT)
#define CELL_MAX_CHUNKS 16384u /* 16 M waits armed at once */
#define CELL_IDX_BITS 24
#define CELL_GEN_MASK ((1ull << (64 - CELL_IDX_BITS)) - 1) /* 40 bits */
#define WAITQ_EVENTS 64 /* epoll events taken per call */

/* A cell's address; the chunk was published before any index in it was
 * handed out (RELEASE at growth, ACQUIRE here). NULL: never handed out. */
static inline struct wait_cell *cell_at(struct pool *p, uint32_t idx)
{
    _Atomic(struct wait_cell *) *t = ld(&p->cells, ACQ);
    if (!t || (idx >> CELL_CHUNK_SHIFT) >= CELL_MAX_CHUNKS)
        return NULL;
    struct wait_cell *c = ld(&t[idx >> CELL_CHUNK_SHIFT], ACQ);
    return c ? &c[idx & (CELL_CHUNK - 1)] : NULL;
}

/* Arming (the running job's worker, inside the job): take a free cell and
 * arm `jw` of kind `kind` with it (C1); `value` is kept in the cell (an fd
 * wait's fd); *id, if asked, is a waker's handle. 0 or -ENOMEM. */
WSCHED_INTERNAL int wsched__wait_arm(struct worker *w, struct job_wait *jw, unsigned kind,
                                     uint64_t value, uint64_t *id);
/* Decide jw's completion as `res` (CELL_*): true for the one caller that
 * wins (C2). Any thread; jw must be alive. */
WSCHED_INTERNAL bool wsched__wait_claim(struct pool *p, struct job_wait *jw, unsigned res);
WSCHED_INTERNAL void wsched__wait_set_value(struct pool *p, struct job_wait *jw, uint64_t value);
/* wsched_wake: 0, -EALREADY or -EINVAL. The caller holds the pool (H1). */
WSCHED_INTERNAL int wsched__wake_cell(struct pool *p, uint64_t id, uint64_t value);
/* After a claim won away from the owner's loop: the completion's unit of
 * the join; the last party queues jw for its owner (C4, R1). */
WSCHED_INTERNAL void wsched__wait_done_remote(struct pool *p, struct job_wait *jw);
/* Queue jw for its owner (R1), its join settled (or none: a deadline's
 * withdrawal, D3). */
WSCHED_INTERNAL void wsched__wait_post(struct pool *p, struct job_wait *jw);
/* The owner: drop jw's timer and fd registration and schedule the
 * resumption on our deque (R2). */
WSCHED_INTERNAL void wsched__wait_finalize(struct worker *w, struct job_wait *jw);
/* The owner's timer of jw fired (a sleep, or a deadline). */
WSCHED_INTERNAL void wsched__wait_fire(struct worker *w, struct job_wait *jw);
/* The job returned WSCHED_PENDING with a cell wait armed (J2'). */
WSCHED_INTERNAL void wsched__wait_pending(struct worker *w, struct job_wait *jw);
/* The job returned something else with a cell wait armed: drop it. False
 * when a completion won first: the job is then pending after all. */
WSCHED_INTERNAL bool wsched__wait_drop(struct worker *w, struct job_wait *jw);
/* wsched__wait_drop's second half, for a caller that won the claim
 * (wsched__wait_claim, CELL_CANCELLED) itself: timer, fd, cell. */
WSCHED_INTERNAL void wsched__wait_unarm(struct worker *w, struct job_wait *jw);
/* The resumption: what completed the wait (CELL_*), its value, and the
 * cell back to the running worker's free list. */
WSCHED_INTERNAL unsigned wsched__wait_take(struct worker *w, struct job_wait *jw,
                                           uint64_t *value);
/* The owner's loop: finalize what others completed. True if any. */
WSCHED_INTERNAL bool wsched__ready_run(struct worker *w);
/* fds: register (the job's worker, inside the job; 0 or -errno), undo a
 * registration, poll without blocking, handle the events in w->ev. */
WSCHED_INTERNAL int wsched__fd_register(struct worker *w, struct job_wait *jw, int fd,
                                        unsigned events);
WSCHED_INTERNAL void wsched__fd_unregister_raw(struct worker *w, int fd);
WSCHED_INTERNAL bool wsched__fd_poll(struct worker *w);
WSCHED_INTERNAL void wsched__fd_events(struct worker *w);
/* The wheel's token (T1-T4): file a wait's timer (owner, in the job);
 * take the token back (try, or yielding to a thief); free it before a task
 * (publishing the next due time); at a job boundary inside a task, file
 * and publish; fire another worker's overdue timers (true if any), and the
 * earliest time another's timers want a thief (0: none). */
WSCHED_INTERNAL void wsched__timer_arm(struct worker *w, struct job_wait *jw, uint64_t when_ns);
WSCHED_INTERNAL bool wsched__wheel_take(struct worker *w);
WSCHED_INTERNAL void wsched__wheel_take_spin(struct worker *w);
WSCHED_INTERNAL void wsched__wheel_release(struct worker *w);
WSCHED_INTERNAL void wsched__wheel_boundary(struct worker *w);
WSCHED_INTERNAL bool wsched__timers_steal(struct worker *w);
/* An in-job wait found no task: our ready queue and due timers (T5).
 * True if a resumption may have been pushed. */
WSCHED_INTERNAL bool wsched__help_waits(struct worker *w);
#define TIMER_STEAL_GRACE_NS 100000u /* 100 us past due: the owner is busy */
/* wheel_due's low bit (due times are whole ticks, TW_TICK_SHIFT): set
 * while the owner holds its wheel (T6). */
#define WHEEL_DUE_HELD 1u
static inline uint64_t due_grace(uint64_t due)
{
    return due > UINT64_MAX - TIMER_STEAL_GRACE_NS ? UINT64_MAX : due + TIMER_STEAL_GRACE_NS;
}

/* The earliest time plus the grace at which another worker's timers want
 * a thief (0: none): the parker's estimate (worker.c) and T6's re-read
 * (idle.c). Inline: idle.c calls nothing of waitq.c (tools/check_layers). */
static inline uint64_t wsched__timers_due_elsewhere(struct worker *w)
{
    struct pool *p = w->pool;
    uint64_t due = 0, now = 0;
    for (unsigned i = 0; i < p->n; i++) {
        /* SEQ_CST: called from a park after K1, T6's load half (a plain
         * load on x86); the estimate before it needs nothing. */
        uint64_t d = i == w->index ? 0 : ld(&p->workers[i].wheel_due, SC);
        if (d & WHEEL_DUE_HELD) {
            /* Its owner holds the wheel: it fires what is due itself, and
             * publishes again (T1) if it starts a task first. Between its
             * tasks a future time counts (its next release publishes it
             * again and finds us in time: no wake on every task); parked,
             * not (it sleeps until that time itself: we would only wake
             * with it), nor a past one (we could not fire it, and would
             * only spin). Skipped, its next release may wake one of us. */
            if (ld(&p->parked[i / 64], RLX) & (1ull << (i % 64)))
                continue;
            d &= ~(uint64_t)WHEEL_DUE_HELD;
            if (!now)
                now = wsched_now_ns();
            if (due_grace(d) <= now)
                continue;
        }
        if (d && (!due || d < due))
            due = d;
    }
    return due ? due_grace(due) : 0;
}

/* Cancellation reached a batch with waits: complete its armed cell waits
 * as cancelled (C3). */
WSCHED_INTERNAL void wsched__wait_cancel_batch(struct wsched_batch *b);
/* Destroy: cancel every armed wait of the pool (the destroyer sweeps
 * again until drained); true if it has any cells. Then free what waits
 * used. */
WSCHED_INTERNAL bool wsched__wait_sweep(struct pool *p);
WSCHED_INTERNAL void wsched__wait_fini(struct pool *p);

/* Is there work on our ready queue? (owner; SC in the park re-scan). */
static inline bool ready_pending(struct worker *w)
{
    return ld(&w->ready_pending, RLX) != 0;
}

#endif
