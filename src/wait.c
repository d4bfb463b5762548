/*
 * Waiting for a batch: outside the pool (poll briefly, then the futex of
 * completion.h B4), inside it (run other work, never start a new batch);
 * the batch deadline taking effect at the deadline; the completion
 * stream's consumer (wsched_next_done).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"

/* One step of an in-job wait (worker.c). The waiting job's private
 * children (forkjoin.c) go to the deque first: it would otherwise hold
 * them from every other worker, and from its own helping. */
static inline void help(struct worker *w, unsigned *backoff, _Atomic uint32_t *queued,
                        _Atomic uint32_t *word, uint64_t deadline)
{
    fj_share(w);
    wsched__help_once(w, backoff, queued, word, deadline);
}

/* Run other work until *word == until or the deadline (0 = none) passes:
 * in-worker waits never park the worker. `queued`: the awaited batch's or
 * posted job's (wsched__help_once). Returns false on timeout. */
bool wsched__help_until(struct worker *w, _Atomic uint32_t *queued, _Atomic uint32_t *word,
                        uint32_t until, uint64_t deadline)
{
    unsigned backoff = 0;
    while (ld(word, ACQ) != until) { /* ACQUIRE: B4 / P4 */
        if (deadline && wsched_now_ns() >= deadline)
            return false;
        help(w, &backoff, queued, word, deadline);
    }
    return true;
}

/* Outside the pool: poll briefly, then sleep on the batch's futex word until
 * done or the absolute deadline `until` (0 = none). True when done.
 * The poll: a batch about to complete then costs the completing worker no
 * futex wake and us no sleep/wake round trip; the yields hand the CPU to a
 * worker that shares it (more threads than CPUs is the common case for
 * request threads). Bounded: WAIT_SPINS pauses, then WAIT_YIELDS yields. */
#define WAIT_SPINS 64
#define WAIT_YIELDS 4
bool wsched__external_wait(_Atomic uint32_t *word, uint64_t until)
{
    for (unsigned i = 0; i < WAIT_SPINS + WAIT_YIELDS; i++) {
        if (i < WAIT_SPINS) {
            cpu_relax();
        } else {
            sched_yield(); /* may take long: keep to the deadline */
            if (until && wsched_now_ns() >= until)
                return completion_done(word);
        }
        if (completion_done(word))
            return true;
    }
    struct timespec ts;
    const struct timespec *deadline = abs_deadline(until, &ts);
    for (;;) {
        /* Announce a waiter (RUNNING -> WAITED) so the signaller wakes us
         * (B4; ACQUIRE on failure too: see completion.h). */
        if (completion_announce(word))
            return true;
        int r = futex_wait(word, BATCH_WAITED, deadline);
        if (completion_done(word))
            return true;
        if (r == -ETIMEDOUT)
            return false;
    }
}

/* Wait on a batch word: help inside the pool, poll then sleep outside. */
static bool word_wait(struct wsched_batch *b, _Atomic uint32_t *word, uint64_t until)
{
    struct worker *self = wsched__self;
    if (self && self->pool == b->pool)
        return wsched__help_until(self, &b->queued, word, BATCH_DONE, until);
    return wsched__external_wait(word, until);
}

/* The batch's deadline passed while we waited: decide the slots that are
 * not final (WSCHED_EDEADLINE), release every waiter, and report it. */
static void finish_after_returned(struct wsched_batch *b);

/* The deadline takes effect: false when the batch completed first. */
static bool deadline_decide(struct wsched_batch *b)
{
    /* Every job returned before we looked (batch_complete is between its
     * two stores): the batch completed; it did not miss its deadline. */
    if (completion_done(&b->returned))
        return false;
    /* The reason first (first reason wins): if the last range closed the
     * word meanwhile (CANCEL_CLOSED, batch_complete), every job returned
     * before the deadline took effect and the batch simply completed.
     * Running jobs see wsched_cancelled() from the clock anyway, so the
     * order against freeze does not matter to them (unlike quorum's).
     * Pending jobs are cancelled by the cancel word (waitq.c C3). */
    wsched__cancel_set(b, CANCEL_DEADLINE);
    if (ld(&b->cancel, ACQ) == CANCEL_CLOSED)
        return false;
    wsched__freeze(b, WSCHED_EDEADLINE);
    wsched__signal_done(b);
    return true;
}

/* The batch is complete once this returns (0: wsched_wait's answer). */
static int deadline_expire(struct wsched_batch *b)
{
    if (!deadline_decide(b))
        finish_after_returned(b);
    return 0;
}

/* D2-D4 (run.c): the batch's deadline timer fired, or its withdrawal
 * reached its owner. Whoever moves dl_state to DONE owns the timer's
 * reference; on a fire it ends the batch first (a completion that came
 * between is seen by deadline_expire, as for a waiter). */
void wsched__deadline_event(struct wsched_batch *b, bool fired)
{
    uint32_t armed = DL_ARMED;
    bool timer_ref = cas(&b->dl_state, &armed, DL_DONE, AR);
    if (timer_ref && fired)
        deadline_decide(b); /* (never waits: we may be inside a wheel's advance) */
    if (timer_ref)
        wsched_batch_free(b);
    if (!fired)
        wsched_batch_free(b); /* the withdrawal's own reference */
}

/* A poll (timeout 0) from inside the pool runs one task first, so a job
 * that polls in a loop makes progress (its nested jobs may sit on its own
 * deque). True when *word reached DONE. */
static bool poll_step(struct wsched_batch *b, _Atomic uint32_t *word)
{
    struct worker *self = wsched__self;
    if (self && self->pool == b->pool) {
        unsigned backoff = 0;
        help(self, &backoff, &b->queued, NULL, 0);
    }
    return completion_done(word);
}

int wsched_wait(wsched_batch *b, int64_t timeout_ns)
{
    if (!b)
        return -EINVAL;
    /* The call's own status only: 0 once the batch is complete, whatever
     * its outcome (wsched_batch_outcome), -ETIMEDOUT when our timeout ran
     * out first. */
    if (completion_done(&b->done)) /* ACQUIRE: slots visible */
        return 0;
    if (timeout_ns == 0 && (!b->deadline || wsched_now_ns() < b->deadline))
        return poll_step(b, &b->done) ? 0 : -ETIMEDOUT;
    uint64_t now = 0, until = 0; /* absolute; 0 = for ever */
    if (timeout_ns >= 0 || b->deadline) {
        now = wsched_now_ns();
        if (timeout_ns >= 0)
            until = now + (uint64_t)timeout_ns;
        if (b->deadline && (!until || b->deadline < until))
            until = b->deadline;
        if (until <= now)
            return b->deadline && now >= b->deadline ? deadline_expire(b) : -ETIMEDOUT;
    }
    if (word_wait(b, &b->done, until))
        return 0;
    if (b->deadline && wsched_now_ns() >= b->deadline)
        return deadline_expire(b);
    return -ETIMEDOUT;
}

int wsched_next_done(wsched_batch *b, int64_t timeout_ns, size_t *index)
{
    if (!b || !index || !b->ring)
        return -EINVAL;
    if (b->ring_head == b->n)
        return -ENODATA;
    _Atomic size_t *e = &b->ring[b->ring_head];
    uint64_t until = timeout_ns > 0 ? wsched_now_ns() + (uint64_t)timeout_ns : 0;
    struct worker *self = wsched__self;
    bool inside = self && self->pool == b->pool, polled = false, expired = false;
    unsigned backoff = 0;
    size_t v;
    /* ACQUIRE: pairs with stream_push's W1 RELEASE: slot and status visible. */
    while ((v = ld(e, ACQ)) == 0) {
        uint64_t now = until || b->deadline ? wsched_now_ns() : 0;
        if (b->deadline && now >= b->deadline && !expired) {
            /* The deadline takes effect for a stream consumer too: every
             * slot still open is decided now and pushed (the entries of
             * jobs deciding their own slot concurrently follow at once). */
            deadline_expire(b);
            expired = true;
            continue;
        }
        if (timeout_ns == 0) {
            if (polled || !inside)
                return -ETIMEDOUT;
            polled = true; /* a poll from a job makes progress first */
            help(self, &backoff, &b->queued, NULL, 0);
            continue;
        }
        if (until && now >= until)
            return -ETIMEDOUT;
        if (inside) {
            help(self, &backoff, &b->queued, NULL, 0); /* never block a worker */
            continue;
        }
        /* W3 (batch.h): announce the sleeper (RMW), re-check, then sleep
         * until a push changes the word, the timeout or the deadline. */
        uint32_t w = for_(&b->ring_word, RING_WAITER, SC) | RING_WAITER;
        if ((v = ld(e, ACQ)) != 0) /* W3 */
            break;
        uint64_t wake = until;
        if (b->deadline && !expired && (!wake || b->deadline < wake))
            wake = b->deadline;
        struct timespec ts;
        futex_wait(&b->ring_word, w, abs_deadline(wake, &ts));
    }
    b->ring_head++;
    *index = v - 1;
    return 0;
}

/* `returned` is set just before `done` (batch_complete): once it is seen,
 * wait the few instructions until done is set too, so that wsched_wait and
 * wsched_wait_idle answer "complete" from the same moment in both
 * directions (found by tests/fuzz: wait_idle 0, then wait(b, 0) timed out).
 * No timeout: the completing thread is already between the two stores. */
static void finish_after_returned(struct wsched_batch *b)
{
    if (!completion_done(&b->done))
        word_wait(b, &b->done, 0);
}

int wsched_wait_idle(wsched_batch *b, int64_t timeout_ns)
{
    if (!b)
        return -EINVAL;
    bool returned = completion_done(&b->returned);
    if (!returned && timeout_ns == 0)
        returned = poll_step(b, &b->returned);
    if (!returned && timeout_ns != 0) {
        uint64_t until = timeout_ns < 0 ? 0 : wsched_now_ns() + (uint64_t)timeout_ns;
        returned = word_wait(b, &b->returned, until);
    }
    if (!returned)
        return -ETIMEDOUT;
    finish_after_returned(b);
    return 0;
}
