/*
 * Completing waits: wait cells, the per-worker ready queue, epoll.
 *
 * A sleep, waker or fd wait can end in several ways at once: its event
 * (the timer, a wake from any thread, the fd's readiness), its deadline, a
 * cancellation of its batch, the pool's destroy. Each armed wait has a
 * wait cell; whoever changes the cell's word from ARMED to a result first
 * decides the completion, and every other completer is a no-op. Cells
 * live in a table the pool keeps until it is destroyed (chunks of 1024,
 * never freed before), so a waker's handle (cell index + generation) stays
 * safe to use after its wait, its job or its batch is gone: its CAS just
 * fails. The timer and the fd registration belong to the worker that
 * armed the wait (`owner`), and only it drops them.
 *
 * Labels (at the sites; S is the total order of seq_cst operations):
 *  (C1) arm (the job's worker, inside the job): take a cell from our free
 *       list; set jw's owner, kind and join = 2, cell->jw = jw, then the
 *       cell's word = gen|ARMED (RELEASE: a claimer that reads ARMED sees
 *       all of that), then jw->cell = index (SEQ_CST: the Dekker half
 *       against C3).
 *  (C2) claim (any completer): load word (ACQUIRE); ARMED, of the expected
 *       generation (a waker) or naming this jw (everyone else), then CAS
 *       word -> gen|result (ACQ_REL). One winner per arming; a loser
 *       touches nothing more. The winner may use jw: its job stays pending
 *       (and its batch alive) until the winner has given its unit of the
 *       join (C4 or J2').
 *  (J2') the job returned WSCHED_PENDING (batch.h). First, while its unit
 *       of the join still keeps jw and the batch alive: load b->cancel
 *       (SEQ_CST); cancelled, claim CANCELLED ourselves and, winning, hold
 *       both units: finalize now. Then join -= 1 (ACQ_REL); 0 means a
 *       completion came first: finalize now (we are the owner). Otherwise
 *       the completion's party finishes: from our RMW on, jw may be
 *       resumed elsewhere, completed and freed, and we touch nothing.
 *       (Reading the cancel word after the RMW was a use after free: a
 *       thief could fire the timer, resume and complete the job in between;
 *       found by tests/model/waitq.pml.)
 *  (C3) cancellation (policy.c, the one caller that set the batch's cancel
 *       word, by a SEQ_CST CAS): for every job, load jw->cell (SEQ_CST) and
 *       claim CANCELLED. Against J2' a Dekker pair: either our load of
 *       jw->cell follows the job's C1 store in S and we claim, or its J2'
 *       load of `cancel` follows our CAS and it claims itself (both may
 *       try; C2 picks one).
 *  (C4) a claim won away from the owner's loop (a waker, a canceller,
 *       destroy): join -= 1 (ACQ_REL); 0 means J2' came first: post jw to
 *       its owner (R1). A claim won by the owner's loop (its timer or fd
 *       event) comes after J2' on the same thread: join reaches 0 and it
 *       finalizes at once.
 *  (R1) post: the owner's ready_pending += 1 (SEQ_CST RMW), enqueue
 *       jw->node (wfcqueue, wait-free), then if the owner's parked bit is
 *       set, claim it and wake it (idle.c N3, K5). The owner's park sets
 *       its bit (K1) before it re-reads ready_pending (K2, SEQ_CST): either
 *       it sees the post or we see its bit (the N1/K2 argument of idle.c).
 *  (R2) the owner's loop, outside any job, dequeues and finalizes:
 *       cancels the timer, unregisters the fd, pushes the resumption onto
 *       its deque (stealable: deque.h P1 carries the job's frame).
 *       ready_pending -= 1 per node taken, relaxed: it only overstates (a
 *       producer between R1's count and its link keeps the owner looking,
 *       never parked past the post).
 *  (R3) jw travels through the queue, whose atomics TSan cannot see:
 *       tsan_release before the enqueue, tsan_acquire after the dequeue.
 *
 * Timers of a worker busy in a long task (the wheel stays owner-only: one
 * worker at a time mutates it, whoever holds its token):
 *  (T1) the owner holds its wheel's token (wheel_tok = 1) outside tasks.
 *       Before a task, with timers armed, it publishes the wheel's next due
 *       time (wheel_due, relaxed) and frees the token (RELEASE); after the
 *       task it takes it back by CAS 0 -> 1 (ACQUIRE) and clears wheel_due,
 *       or carries on without it while a thief has it. Also after a job of
 *       a batch with waits, inside a range (run.c): the timers that job
 *       armed become visible to thieves before the next job, however long.
 *  (T2) a worker with nothing to do that sees another's wheel_due more than
 *       TIMER_STEAL_GRACE_NS past takes the free token by CAS 0 -> 2
 *       (ACQUIRE), fires what is due (C2 claims), republishes wheel_due and
 *       frees it (RELEASE). The resumptions go onto the thief's deque; an fd
 *       wait's (its fd is the owner's) and any the deque cannot take go to
 *       the owner's ready queue (R1). A thief runs no job while holding it.
 *  (T3) without the token the owner leaves its wheel alone: timers it arms
 *       go onto a private `late` list, filed when it holds the token again;
 *       a wait to finalize whose timer is filed waits on a private list.
 *  (T4) an idle owner takes the token back before it parks, yielding while
 *       a thief holds it (one advance of due timers, T2). A parker sleeps at
 *       most until the earliest wheel_due published by the others, plus the
 *       grace, and then fires them itself (T2); T6 makes sure that a
 *       wheel_due published as it parks is not missed.
 *  (T5) an in-job wait (wsched_wait, wsched_sync) that finds no task fires
 *       our own due timers and finalizes our ready queue, inside the job:
 *       a timer's claim there gives its unit of the join (C4), since the
 *       waiting job may have armed it and not returned yet.
 *  (T6) no timer published while its owner starts a task goes unwatched
 *       by an idle worker: a Dekker pair of seq_cst operations. Publisher
 *       (T1's, or T2's republication): store wheel_due, then load the
 *       parked masks (timers_watch, below). Parker (idle.c
 *       wsched__park): store its deadline in park_until, set its parked bit
 *       (K1, an RMW: releases park_until with the bit), then re-read every
 *       other wheel_due and sleep until the earliest plus the grace, if
 *       sooner. In S the parker's re-read either follows the store (it sees
 *       the time) or precedes it, and then K1 precedes the publisher's load,
 *       which sees the bit (unless a claim or the parker itself cleared it
 *       since: that worker is awake and its next K1 follows the load) and
 *       reads park_until. If no parked worker's park_until falls within the
 *       grace of the new time, the publisher claims one (N2) and wakes it
 *       (N3): it searches, finds nothing and parks again, now with the time
 *       in its re-read. Cost: on x86 the seq_cst store is an xchg per task
 *       started (or job ended inside a range) with timers armed, the loads
 *       are plain, and a futex wake only when a new time comes earlier than
 *       every parker's deadline. (Before T6 the re-read was missing and the
 *       parker's estimate was all: a timer of a worker that started a long
 *       task just after another parked could stay unfired for that whole
 *       task; test_waits' busy-owner case, 5 of 150 debug runs. A 50 ms cap
 *       on every park stood in for this for one stop.)
 *       Model: tests/model/timerwatch.pml.
 * A claim made through T2 gives the completion's unit of the join (C4):
 * usually the arming job's J2' came before (the owner frees the token
 * between tasks and jobs), but a job inside a wait of its own runs inner
 * jobs, whose ends free it too.
 *
 * The resumption (run.c, on the owner or a thief) reads the result from
 * the word and the waker's value, both published to it by the join's
 * ACQ_REL RMWs and the push; it then frees the cell onto its own worker's
 * free list with the next generation (relaxed: the cell is no one else's
 * until its next C1 release).
 *
 * Costs: arming pops a private free list and writes the cell's line; a
 * timer's completion is one CAS, one RMW and the push. A remote completion
 * adds the enqueue, and a futex (or eventfd) wake when the owner sleeps.
 * Tests: tests/unit/test_waits.c, tests/stress/test_waits_stress.c,
 * tests/unit/test_wakers.c, tests/stress/test_wakers_stress.c; model:
 * tests/model/waitq.pml.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "downstream.h"
#include "idle.h"
#include "tsan.h"
#include "waitq.h"

#define CELL_STATE(word) ((unsigned)((word) & 0xff))
#define CELL_GEN(word) ((word) >> 8)

/* ---------------------------------------------------------------- cells */

/* Our free list is empty: a new chunk of cells, through the pool's
 * allocator (the table of chunk pointers too, on the pool's first wait). */
static int cells_grow(struct worker *w)
{
    struct pool *p = w->pool;
    _Atomic(struct wait_cell *) *t = ld(&p->cells, ACQ);
    if (!t) {
        _Atomic(struct wait_cell *) *mine =
            mem_zalloc(&p->mem, sizeof *mine * CELL_MAX_CHUNKS, CACHELINE);
        if (!mine)
            return -ENOMEM;
        /* ACQ_REL, ACQUIRE on failure: the winner's zeroed table is seen by
         * every cell_at and by the loser, which uses the winner's. */
        if (cas_f(&p->cells, &t, mine, AR, ACQ))
            t = mine;
        else
            mem_free(&p->mem, mine, sizeof *mine * CELL_MAX_CHUNKS, CACHELINE);
    }
    uint32_t k = fadd(&p->cell_chunks, 1, RLX);
    if (k >= CELL_MAX_CHUNKS)
        return -ENOMEM; /* the count only grows: sweeps stop at the maximum */
    struct wait_cell *c = mem_alloc(&p->mem, sizeof *c * CELL_CHUNK, CACHELINE);
    if (!c)
        return -ENOMEM; /* chunk k stays NULL: skipped by sweeps */
    uint32_t base = k << CELL_CHUNK_SHIFT;
    for (uint32_t i = 0; i < CELL_CHUNK; i++) {
        st(&c[i].word, (1ull << 8) | CELL_FREE, RLX); /* generation 1 */
        st(&c[i].jw, NULL, RLX);
        st(&c[i].value, 0, RLX);
        c[i].next_free = i + 1 < CELL_CHUNK ? base + i + 1 : w->cell_free;
        c[i].pad = 0;
    }
    /* RELEASE: the initialised chunk before any index in it is used by
     * another thread (cell_at's ACQUIRE). */
    st(&t[k], c, REL);
    w->cell_free = base;
    return 0;
}

/* The cell back onto our free list, one generation on: a handle of the
 * wait that used it now fails its CAS. */
static void cell_put(struct worker *w, uint32_t idx, struct wait_cell *c, uint64_t word)
{
    uint64_t gen = (CELL_GEN(word) + 1) & CELL_GEN_MASK;
    st(&c->jw, NULL, RLX);
    st(&c->word, ((gen ? gen : 1) << 8) | CELL_FREE, RLX);
    c->next_free = w->cell_free;
    w->cell_free = idx;
}

int wsched__wait_arm(struct worker *w, struct job_wait *jw, unsigned kind, uint64_t value,
                     uint64_t *id)
{
    if (w->cell_free == WAIT_NO_CELL) {
        int r = cells_grow(w);
        if (r)
            return r;
    }
    struct pool *p = w->pool;
    uint32_t idx = w->cell_free;
    struct wait_cell *c = cell_at(p, idx);
    w->cell_free = c->next_free;
    jw->owner = (uint16_t)w->index;
    jw->kind = (uint8_t)kind;
    jw->events = 0;
    jw->tflags = 0; /* (a fired timer's flags may be left: it is unlinked) */
    jw->armed = 1;
    st(&jw->join, 2, RLX); /* published by the word's RELEASE below */
    st(&c->jw, jw, RLX);
    st(&c->value, value, RLX);
    uint64_t gen = CELL_GEN(ld(&c->word, RLX));
    st(&c->word, (gen << 8) | CELL_ARMED, REL); /* C1 */
    st(&jw->cell, idx, SC);                      /* C1: against C3 */
    if (id)
        *id = (gen << CELL_IDX_BITS) | idx;
    return 0;
}

/* C2, for a completer that knows the wait. */
bool wsched__wait_claim(struct pool *p, struct job_wait *jw, unsigned res)
{
    uint32_t idx = ld(&jw->cell, RLX);
    if (idx == WAIT_NO_CELL)
        return false;
    struct wait_cell *c = cell_at(p, idx);
    uint64_t w0 = ld(&c->word, ACQ);
    if (CELL_STATE(w0) != CELL_ARMED || ld(&c->jw, RLX) != jw)
        return false;
    /* Success proves the word unchanged since w0: the jw read above was
     * stored before w0's RELEASE, for this arming. */
    return cas(&c->word, &w0, (w0 & ~0xffull) | res, AR); /* C2 */
}

/* After a claim of jw (C2): the value its resumption reads (published by
 * the C4 that follows). */
void wsched__wait_set_value(struct pool *p, struct job_wait *jw, uint64_t value)
{
    struct wait_cell *c = cell_at(p, ld(&jw->cell, RLX));
    st(&c->value, value, RLX);
}

/* C2 for a waker, which knows only the handle. */
int wsched__wake_cell(struct pool *p, uint64_t id, uint64_t value)
{
    uint32_t idx = (uint32_t)(id & ((1u << CELL_IDX_BITS) - 1));
    uint64_t gen = id >> CELL_IDX_BITS;
    struct wait_cell *c = gen ? cell_at(p, idx) : NULL;
    if (!c)
        return -EINVAL;
    uint64_t w0 = ld(&c->word, ACQ);
    if (w0 != ((gen << 8) | CELL_ARMED) ||
        !cas(&c->word, &w0, (gen << 8) | CELL_WOKEN, AR)) /* C2 */
        return -EALREADY;
    /* Ours: the cell keeps naming the wait until the resumption frees it,
     * which needs our unit of the join (C4) first. */
    st(&c->value, value, RLX); /* published by C4's RELEASE */
    wsched__wait_done_remote(p, ld(&c->jw, RLX));
    return 0;
}

/* --------------------------------------------------------- ready queue */

void wsched__wait_post(struct pool *p, struct job_wait *jw)
{
    unsigned i = jw->owner; /* read now: once linked, jw may be resumed and gone */
    struct worker *o = &p->workers[i];
    fadd(&o->ready_pending, 1, SC); /* R1: counted before it is linked */
    cds_wfcq_node_init(&jw->node);
    tsan_release(jw); /* R3 */
    cds_wfcq_enqueue(&o->ready_head, &o->ready_tail, &jw->node);
    /* R1: the owner, if it parked (only it can finalize). */
    uint64_t bit = 1ull << (i % 64);
    if ((ld(&p->parked[i / 64], SC) & bit) && (fand(&p->parked[i / 64], ~bit, SC) & bit))
        wsched__wake_claimed(p, i);
}

void wsched__wait_done_remote(struct pool *p, struct job_wait *jw)
{
    /* C4. ACQ_REL: whoever brings the join to 0 sees both parties'
     * writes (the job's frame, the result and value). */
    if (fsub(&jw->join, 1, AR) == 1)
        wsched__wait_post(p, jw);
}

/* A claim won by the owner's loop: J2' came before on this thread, and
 * the winner of the claim is the only other party: no RMW needed (the
 * next arm resets the join). */
static void done_local(struct worker *w, struct job_wait *jw)
{
    DEBUG_ASSERT(ld(&jw->join, RLX) == 1);
    wsched__wait_finalize(w, jw);
}

static void fd_unregister(struct worker *w, struct job_wait *jw)
{
    struct wait_cell *c = cell_at(w->pool, ld(&jw->cell, RLX));
    /* Errors are expected and ignored: an fd closed while waited on has
     * left the epoll set already (wsched.h). */
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, (int)ld(&c->value, RLX), NULL);
    w->nfds--;
}

/* Drop jw's timer (owner): false when it is filed on the wheel and a thief
 * holds the token (T3). */
static bool timer_drop(struct worker *w, struct job_wait *jw)
{
    if (!(jw->tflags & JW_TIMED))
        return true;
    if (jw->tflags & JW_LATE) {
        struct timer *t = &jw->timer;
        if (t->next)
            t->next->pprev = t->pprev;
        *t->pprev = t->next;
        t->next = NULL;
        t->pprev = NULL;
    } else if (w->wheel_held) {
        timer_cancel(&w->wheel, &jw->timer); /* no-op if it fired */
    } else {
        return false;
    }
    jw->tflags = 0;
    return true;
}

void wsched__wait_finalize(struct worker *w, struct job_wait *jw)
{
    DEBUG_ASSERT(jw->owner == w->index);
    if (!timer_drop(w, jw)) { /* T3: once we hold the token */
        jw->node.next = (struct cds_wfcq_node *)(void *)w->deferred;
        w->deferred = jw;
        return;
    }
    if (jw->kind == WAIT_DEADLINE) { /* D3: the batch completed; timer withdrawn */
        jw->b->dl_fn(jw->b, false);
        return;
    }
    if (jw->kind == WSCHED_RESUME_FD)
        fd_unregister(w, jw);
    schedule_resume(w, jw);
}

void wsched__wait_pending(struct worker *w, struct job_wait *jw)
{
    uint32_t reason = ld(&jw->b->cancel, SC); /* J2': against C3, before our unit */
    /* ... and against H3 (resilient.c): the attempt lost a hedged round. */
    bool lost = jw->b->hwaits && ld(&jw->lost, SC);
    bool shield = shielded_from(jw->b, jw->index, reason); /* a trial: not cut */
    if (((reason != CANCEL_NONE && reason != CANCEL_CLOSED && !shield) || lost) &&
        wsched__wait_claim(w->pool, jw, CELL_CANCELLED)) {
        wsched__wait_finalize(w, jw); /* both units are ours */
        return;
    }
    if (fsub(&jw->join, 1, AR) == 1) /* J2': a completion came first */
        wsched__wait_finalize(w, jw);
    /* Else jw is the completion's party's now (it may be gone already). */
}

bool wsched__wait_drop(struct worker *w, struct job_wait *jw)
{
    if (!wsched__wait_claim(w->pool, jw, CELL_CANCELLED)) {
        /* A waker or canceller won first and will give its unit: the job
         * is pending after all and is called again (wsched.h). */
        wsched__wait_pending(w, jw);
        return false;
    }
    wsched__wait_unarm(w, jw);
    return true;
}

void wsched__wait_unarm(struct worker *w, struct job_wait *jw)
{
    /* Armed in this call; a nested wait inside the job may have freed the
     * token since (T1 at an inner job's end): take it back, yielding while
     * a thief holds it (T4). */
    while (!timer_drop(w, jw))
        wsched__wheel_take_spin(w);
    if (jw->kind == WSCHED_RESUME_FD)
        fd_unregister(w, jw);
    uint64_t v;
    wsched__wait_take(w, jw, &v);
}

unsigned wsched__wait_take(struct worker *w, struct job_wait *jw, uint64_t *value)
{
    uint32_t idx = ld(&jw->cell, RLX);
    struct wait_cell *c = cell_at(w->pool, idx);
    uint64_t word = ld(&c->word, RLX); /* published by the join and the push */
    unsigned res = CELL_STATE(word);
    *value = res == CELL_WOKEN ? ld(&c->value, RLX) : res == CELL_FD ? jw->events : 0;
    st(&jw->cell, WAIT_NO_CELL, RLX);
    cell_put(w, idx, c, word);
    return res;
}

/* What a wait's timer firing means: a sleep's time, or a deadline. */
static inline unsigned timer_result(const struct job_wait *jw)
{
    if (unlikely(jw->tflags & JW_ATTEMPT))
        return CELL_ATIMEOUT; /* armed at the attempt's cut (run.c) */
    return jw->kind == WSCHED_RESUME_TIMER ? CELL_TIMER : CELL_TIMEDOUT;
}

void wsched__wait_fire(struct worker *w, struct job_wait *jw)
{
    if (jw->kind == WAIT_DEADLINE) { /* D2 */
        jw->b->dl_fn(jw->b, true);
        return;
    }
    unsigned res = timer_result(jw);
    if (wsched__wait_claim(w->pool, jw, res))
        done_local(w, jw);
}

bool wsched__ready_run(struct worker *w)
{
    bool any = false;
    for (;;) {
        struct cds_wfcq_node *n = __cds_wfcq_dequeue_nonblocking(&w->ready_head, &w->ready_tail);
        if (!n || n == CDS_WFCQ_WOULDBLOCK)
            break;
        fsub(&w->ready_pending, 1, RLX); /* R2 */
        struct job_wait *jw = caa_container_of(n, struct job_wait, node);
        tsan_acquire(jw); /* R3 */
        wsched__wait_finalize(w, jw);
        any = true;
    }
    return any;
}

void wsched__wait_cancel_batch(struct wsched_batch *b)
{
    struct pool *p = b->pool;
    for (size_t i = 0; i < b->n; i++) {
        struct job_wait *jw = &b->waits[i];
        /* A breaker's trial is not cut short (resilient.c): the shield is
         * set before the job arms its first wait, so reading the armed
         * cell (SEQ_CST) we see it. */
        uint32_t reason = ld(&b->cancel, RLX); /* (ours: set before C3) */
        if (ld(&jw->cell, SC) != WAIT_NO_CELL && !shielded_from(b, i, reason) &&
            wsched__wait_claim(p, jw, CELL_CANCELLED))
            wsched__wait_done_remote(p, jw); /* C3 */
        /* A hedge's record (resilient.c): its timer, or its attempt's wait. */
        jw = b->hwaits ? &b->hwaits[i] : NULL;
        if (jw && ld(&jw->cell, SC) != WAIT_NO_CELL && !shielded_from(b, i, reason) &&
            wsched__wait_claim(p, jw, CELL_CANCELLED))
            wsched__wait_done_remote(p, jw); /* C3 */
    }
}

/* ------------------------------------------------------------------ fds */

static int epoll_setup(struct worker *w)
{
    struct pool *p = w->pool;
    w->ev = mem_alloc(&p->mem, sizeof *w->ev * WAITQ_EVENTS, _Alignof(struct epoll_event));
    if (!w->ev)
        return -ENOMEM;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int ev = ep >= 0 ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    if (ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0) {
        int r = -errno;
        if (ev >= 0)
            close(ev);
        if (ep >= 0)
            close(ep);
        mem_free(&p->mem, w->ev, sizeof *w->ev * WAITQ_EVENTS, _Alignof(struct epoll_event));
        w->ev = NULL;
        return r;
    }
    /* Before any in_epoll store publishes them to a claimer (K5). */
    w->evfd = ev;
    w->epfd = ep;
    return 0;
}

int wsched__fd_register(struct worker *w, struct job_wait *jw, int fd, unsigned events)
{
    if (w->epfd < 0) {
        int r = epoll_setup(w);
        if (r)
            return r;
    }
    /* One-shot: the event is reported once, then the owner unregisters it
     * (R2, or here on failure); level-triggered: ready now, reported now. */
    struct epoll_event e = {
        .events = EPOLLONESHOT | ((events & WSCHED_FD_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
                  ((events & WSCHED_FD_WRITE) ? EPOLLOUT : 0),
        .data.ptr = jw,
    };
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) != 0)
        return -errno;
    w->nfds++;
    return 0;
}

void wsched__fd_unregister_raw(struct worker *w, int fd)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->nfds--;
}

static unsigned fd_bits(uint32_t e)
{
    return ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) ? WSCHED_FD_READ : 0) |
           ((e & EPOLLOUT) ? WSCHED_FD_WRITE : 0) |
           ((e & (EPOLLERR | EPOLLHUP)) ? WSCHED_FD_ERROR : 0);
}

/* The events in w->ev (from fd_poll or a park in epoll): claim each wait
 * (a loser was cancelled meanwhile: its owner, us, finalizes it from the
 * ready queue later, so jw is alive here). */
void wsched__fd_events(struct worker *w)
{
    int n = w->nev;
    w->nev = 0;
    for (int k = 0; k < n; k++) {
        struct job_wait *jw = w->ev[k].data.ptr;
        if (!jw) { /* the eventfd (park wake-ups): drain it */
            uint64_t v;
            ssize_t rd = read(w->evfd, &v, sizeof v);
            (void)rd;
            continue;
        }
        if (wsched__wait_claim(w->pool, jw, CELL_FD)) {
            jw->events = (uint8_t)fd_bits(w->ev[k].events);
            done_local(w, jw);
        }
    }
}

bool wsched__fd_poll(struct worker *w)
{
    if (!w->nfds)
        return false;
    int n = epoll_wait(w->epfd, w->ev, WAITQ_EVENTS, 0);
    if (n <= 0)
        return false;
    w->nev = n;
    wsched__fd_events(w);
    return true;
}

/* ---------------------------------------------------- the wheel's token */

/* File jw's timer (owner, in the job): on the wheel if we hold it, else on
 * the late list (T3). */
void wsched__timer_arm(struct worker *w, struct job_wait *jw, uint64_t when_ns)
{
    struct timer *t = &jw->timer;
    jw->tflags = JW_TIMED;
    if (!w->wheel_held) {
        t->due_ns = when_ns;
        t->next = w->late;
        if (t->next)
            t->next->pprev = &t->next;
        t->pprev = &w->late;
        w->late = t;
        jw->tflags |= JW_LATE;
        return;
    }
    struct timer_wheel *wh = &w->wheel;
    /* An idle wheel's clock may be old, and filing against it would pick a
     * level as coarse as its age: bring it to now (no timer can fire). A
     * wheel with timers is kept current by its worker's loop; it is not
     * advanced from inside a job, whose fired timers could resume a job
     * still in its own call (one that waits in wsched_sync, say). */
    if (!wh->armed && !wh->target) /* (not from a job resumed inside an advance) */
        timer_wheel_advance(wh, wsched_now_ns(), NULL, NULL);
    if (!timer_arm(wh, t, when_ns)) /* due already: the next tick */
        timer_arm(wh, t, (wh->clk + 1) << TW_TICK_SHIFT);
}

bool wsched__wheel_take(struct worker *w)
{
    if (w->wheel_held)
        return true;
    uint32_t free_tok = 0;
    if (!cas(&w->wheel_tok, &free_tok, 1, ACQ)) /* T1: a thief's advance is ours */
        return false;
    /* T6: ours again; the time stays, marked held (relaxed: only a hint
     * to parkers, see wsched__timers_due_elsewhere). */
    uint64_t d = ld(&w->wheel_due, RLX);
    if (d)
        st(&w->wheel_due, d | WHEEL_DUE_HELD, RLX);
    w->wheel_held = true;
    while (w->late) { /* T3: file what was armed meanwhile */
        struct timer *t = w->late;
        struct job_wait *jw = (struct job_wait *)(void *)t;
        w->late = t->next;
        if (w->late)
            w->late->pprev = &w->late;
        t->next = NULL;
        t->pprev = NULL;
        uint8_t cut = jw->tflags & JW_ATTEMPT; /* (the arm sets the flags afresh) */
        wsched__timer_arm(w, jw, t->due_ns);
        jw->tflags |= cut;
    }
    while (w->deferred) { /* T3: finalize what waited for the token */
        struct job_wait *jw = w->deferred;
        w->deferred = (struct job_wait *)(void *)jw->node.next;
        wsched__wait_finalize(w, jw);
    }
    return true;
}

void wsched__wheel_take_spin(struct worker *w)
{
    while (!wsched__wheel_take(w))
        sched_yield(); /* T4: a thief's advance, never a job */
}

/* T6: `due` was just stored (seq_cst) as a wheel_due: unless a parked
 * worker's deadline falls within its grace, claim one and wake it. */
static void timers_watch(struct pool *p, uint64_t due)
{
    uint64_t by = due_grace(due);
    int late = -1;
    for (unsigned k = 0; k < p->nmask; k++) {
        /* T6: seq_cst, after the publisher's seq_cst store of wheel_due. A
         * bit seen set carries its parker's park_until (K1's release); a
         * bit clear means that worker's next K1 follows this load in S, so
         * its re-read sees the store. */
        uint64_t m = ld(&p->parked[k], SC);
        while (m) {
            unsigned i = k * 64 + (unsigned)__builtin_ctzll(m);
            m &= m - 1;
            if (ld(&p->workers[i].park_until, RLX) <= by)
                return; /* it wakes in time, and fires them (T2) */
            late = (int)i;
        }
    }
    if (late < 0)
        return;
    /* Every parker sleeps past the grace: claim one (N2) and wake it (N3).
     * Lost, it woke already and re-reads wheel_due when it parks again. */
    uint64_t bit = 1ull << (late % 64);
    if (fand(&p->parked[late / 64], ~bit, SC) & bit)
        wsched__wake_claimed(p, (unsigned)late); /* (idle.c) */
}

void wsched__wheel_release(struct worker *w)
{
    if (!w->wheel_held)
        return;
    if (!w->wheel.armed) { /* we keep the token: nothing for thieves */
        if (ld(&w->wheel_due, RLX))
            st(&w->wheel_due, 0, RLX);
        return;
    }
    uint64_t due = timer_wheel_next_due(&w->wheel) & ~(uint64_t)WHEEL_DUE_HELD;
    st(&w->wheel_due, due, SC); /* T6: the store half of its store->load pair */
    w->wheel_held = false;
    st(&w->wheel_tok, 0, REL); /* T1: our wheel to a thief's ACQUIRE */
    if (w->pool->n > 1)
        timers_watch(w->pool, due); /* T6: someone idle watches it */
}

void wsched__wheel_boundary(struct worker *w)
{
    if (w->late)
        wsched__wheel_take(w); /* file them, if no thief has it */
    wsched__wheel_release(w);
}

/* T2: a timer of a busy worker's wheel fired in our hands. */
struct foreign {
    struct worker *thief;
    struct pool *p;
};

static void fire_foreign(void *ctx, struct timer *t)
{
    struct foreign *f = ctx;
    struct job_wait *jw = (struct job_wait *)(void *)t;
    if (jw->kind == WAIT_DEADLINE) { /* D2, in a thief's hands */
        jw->b->dl_fn(jw->b, true);
        return;
    }
    unsigned res = timer_result(jw);
    if (!wsched__wait_claim(f->p, jw, res))
        return;
    /* The completion's unit (C4): the job's J2' may be yet to come, when
     * the owner freed the token at an inner job's end while the job was
     * inside a wait of its own; then the owner finalizes (its timer_drop
     * finds the timer unlinked by our advance). */
    if (fsub(&jw->join, 1, AR) != 1)
        return;
    if (jw->kind != WSCHED_RESUME_FD) {
        struct task r = resume_task_of(jw);
        bool was_empty;
        if (deque_push_owner(&f->thief->dq, &r, &was_empty) == 0) {
            pushed(f->thief, was_empty);
            return;
        }
    }
    wsched__wait_post(f->p, jw); /* the owner unregisters the fd; or our deque is full */
}

/* A timer fired inside a job's in-job wait (wsched_wait, wsched_sync): the
 * job that armed it may be the one waiting, before its J2', so the claim
 * gives the completion's unit (C4) and the last party finalizes. */
static void fire_nested(void *ctx, struct timer *t)
{
    struct worker *w = ctx;
    struct job_wait *jw = (struct job_wait *)(void *)t;
    if (jw->kind == WAIT_DEADLINE) { /* D2, inside an in-job wait */
        jw->b->dl_fn(jw->b, true);
        return;
    }
    unsigned res = timer_result(jw);
    if (wsched__wait_claim(w->pool, jw, res) && fsub(&jw->join, 1, AR) == 1)
        wsched__wait_finalize(w, jw);
}

bool wsched__help_waits(struct worker *w)
{
    bool any = false;
    if (ready_pending(w))
        any |= wsched__ready_run(w);
    if (!w->wheel_held) /* freed at an inner job's end (T1), or a thief has it */
        wsched__wheel_take(w);
    /* Not inside an advance of this wheel (a job run from a fire callback
     * when the deque was full). */
    if (w->wheel_held && w->wheel.armed && !w->wheel.target)
        any |= timer_wheel_advance(&w->wheel, wsched_now_ns(), fire_nested, w) != 0;
    return any;
}

bool wsched__timers_steal(struct worker *w)
{
    struct pool *p = w->pool;
    uint64_t now = 0;
    bool any = false;
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *v = &p->workers[i];
        uint64_t due = ld(&v->wheel_due, RLX);
        if (v == w || !due || (due & WHEEL_DUE_HELD))
            continue; /* (held: its owner fires them) */
        if (!now)
            now = wsched_now_ns();
        if (now < due_grace(due) || ld(&v->wheel_tok, RLX) != 0)
            continue;
        uint32_t free_tok = 0;
        if (!cas(&v->wheel_tok, &free_tok, 2, ACQ)) /* T2 */
            continue;
        struct foreign f = {w, p};
        any |= timer_wheel_advance(&v->wheel, now, fire_foreign, &f) != 0;
        uint64_t next =
            v->wheel.armed ? timer_wheel_next_due(&v->wheel) & ~(uint64_t)WHEEL_DUE_HELD : 0;
        st(&v->wheel_due, next, SC); /* T6, as the owner's T1 */
        st(&v->wheel_tok, 0, REL); /* T2 */
        if (next)
            timers_watch(p, next); /* T6: we may go busy next */
    }
    return any;
}

/* -------------------------------------------------------------- destroy */

bool wsched__wait_sweep(struct pool *p)
{
    _Atomic(struct wait_cell *) *t = ld(&p->cells, ACQ);
    if (!t)
        return false;
    uint32_t chunks = ld(&p->cell_chunks, RLX);
    if (chunks > CELL_MAX_CHUNKS)
        chunks = CELL_MAX_CHUNKS;
    for (uint32_t k = 0; k < chunks; k++) {
        struct wait_cell *c = ld(&t[k], ACQ);
        for (uint32_t i = 0; c && i < CELL_CHUNK; i++) {
            uint64_t w0 = ld(&c[i].word, ACQ);
            if (CELL_STATE(w0) != CELL_ARMED)
                continue;
            struct job_wait *jw = ld(&c[i].jw, RLX);
            if (cas(&c[i].word, &w0, (w0 & ~0xffull) | CELL_CANCELLED, AR)) /* C2 */
                wsched__wait_done_remote(p, jw);
        }
    }
    return true;
}

void wsched__wait_fini(struct pool *p)
{
    for (unsigned i = 0; p->workers && i < p->n; i++) {
        struct worker *w = &p->workers[i];
        if (w->epfd >= 0) {
            close(w->evfd);
            close(w->epfd);
            mem_free(&p->mem, w->ev, sizeof *w->ev * WAITQ_EVENTS, _Alignof(struct epoll_event));
        }
    }
    _Atomic(struct wait_cell *) *t = ld(&p->cells, ACQ);
    if (!t)
        return;
    uint32_t chunks = ld(&p->cell_chunks, RLX);
    for (uint32_t k = 0; k < chunks && k < CELL_MAX_CHUNKS; k++) {
        struct wait_cell *c = ld(&t[k], RLX);
        if (c)
            mem_free(&p->mem, c, sizeof *c * CELL_CHUNK, CACHELINE);
    }
    mem_free(&p->mem, t, sizeof *t * CELL_MAX_CHUNKS, CACHELINE);
}
