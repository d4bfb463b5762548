/*
 * Batches: completion (the last range's B2 hand-off, then the wait words,
 * completion.h B3), the reference count, results and accessors
 * (wsched_batch_status, wsched_batch_outcome, ...).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "waitq.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"

void wsched__batch_unref(struct wsched_batch *b)
{
    /* ACQ_REL: the last reference sees all uses of the batch before freeing. */
    uint32_t old = fsub(&b->refs, 1, AR);
    /* The caller's and the runtime's, a deadline's timer and its
     * withdrawal (D1, D3), and one per flight its jobs joined (flight.c). */
    DEBUG_ASSERT(old >= 1 && (old <= 4 || b->ds));
    if (old == 1) {
        wsched_allocator a = b->alloc;
        mem_batch_free(&a, b, b->bytes); /* the freeing thread's cache */
    }
}

/* Set a wait word (done, returned) to DONE and wake its sleepers, if any.
 * B3 (completion.h): the RELEASE half publishes every slot to the waiter;
 * program order (and B2's acquire) already puts the completed range's
 * stores before it (tests/model: an exchange weakened to RELEASE is
 * equivalent). */
void wsched__word_signal(_Atomic uint32_t *word)
{
    if (completion_signal(word)) /* B3 */
        futex_wake_all(word);
}

void wsched__batch_complete(struct wsched_batch *b)
{
    PROBE1(batch_complete, b);
    /* Close the cancel word before the waiters are released: a cancel from
     * now on is too late (fuzz: wsched_cancel after wsched_wait turned a
     * COMPLETED outcome into CANCELLED). Relaxed: the RELEASE of B3 below
     * publishes it with the slots; a reason set before stays (CAS fails). */
    uint32_t none = CANCEL_NONE;
    if (ld(&b->cancel, RLX) == CANCEL_NONE)
        cas(&b->cancel, &none, CANCEL_CLOSED, RLX);
    /* Every job has returned: `returned` first, then `done`, so that a waiter
     * released by `done` (its ACQUIRE load reads this thread's later
     * RELEASE exchange) already sees `returned` set: wsched_wait returning is
     * the moment wsched_wait_idle answers 0 (header). */
    /* The downstream's user count: RELEASE, after every job's last use of
     * it (wsched_downstream_destroy's ACQUIRE), and before `returned`, so
     * that a waiter that saw the batch complete may destroy it. */
    if (b->ds)
        fsub(&b->ds->users, 1, REL);
    wsched__word_signal(&b->returned);
    DEBUG_POINT("complete");
    /* D3: a deadline timer armed on some worker's wheel is withdrawn
     * there (only its owner may unlink it); the message holds the batch.
     * Relaxed: D1's CAS came in a range that ended before our B2. */
    if (b->dl && ld(&b->dl_state, RLX) != DL_NONE) {
        fadd(&b->refs, 1, RLX); /* we hold the runtime's reference */
        wsched__wait_post(b->pool, b->dl);
    }
    struct wsched_pool *h = b->handle;
    _Atomic uint32_t *done = &b->done;
    bool wake = completion_signal(done); /* B3; a no-op after an early completion */
    /* J3: a parent job waiting for this batch (wsched_wait_batch), after
     * `done` (resumed, it finds the batch complete). ACQ_REL: our B2
     * acquired every slot; the release hands them on through the join to
     * whoever schedules the parent. */
    struct job_wait *jw = xchg(&b->waiter, WAITER_DONE, AR);
    if (jw && fsub(&jw->join, 1, AR) == 1) {
        DEBUG_ASSERT(wsched__self); /* the last range ends on a worker */
        schedule_resume(wsched__self, jw);
    }
    /* Our reference right after `done`, and the futex wake after it: a
     * caller that waited and frees its handle at once then drops the last
     * reference, so the block goes back to its own thread's batch cache
     * (mem.c), where its next submit finds it (wsched_batch_free waits
     * the few instructions for us). The batch may be freed by the time we
     * wake: FUTEX_WAKE reads no memory, and a later futex waiter at a
     * reused address gets at most a spurious wake, which every futex wait
     * here (and any correct one) re-checks. The pool is left last (the
     * handle is never freed; the pool lives until inflight reaches 0). */
    wsched__batch_unref(b);
    if (wake)
        futex_wake_all(done);
    wsched__pool_leave(h, 1);
}

/* A caller that frees a batch it saw complete normally: the runtime's
 * reference goes a few instructions after `done` (batch_complete), so wait
 * for it, briefly, and drop the last reference ourselves: the block then
 * goes back to this thread's batch cache, where this thread's next submit
 * finds it (mem.c), not to the worker's. Bounded: a worker preempted in
 * between just frees it into its own. Relaxed loads: a plain spin; the
 * ACQ_REL RMW in batch_unref does the ordering. */
#define FREE_SPINS 128
void wsched_batch_free(wsched_batch *b)
{
    if (!b)
        return;
    if (!b->dl && completion_done(&b->returned) && completion_done(&b->done))
        for (unsigned i = 0; i < FREE_SPINS && ld(&b->refs, RLX) > 1; i++)
            cpu_relax();
    wsched__batch_unref(b);
}

size_t wsched_batch_size(const wsched_batch *b) { return b ? b->n : 0; }

void *wsched_batch_slot(const wsched_batch *b, size_t i)
{
    return b && b->slots && i < b->n ? b->slots + i * b->stride : NULL;
}

static int32_t status_public(int32_t v)
{
    return v == STATUS_RUNNING ? WSCHED_ENOTRUN : v;
}

int wsched_batch_status(const wsched_batch *b, size_t i, int *status)
{
    if (!b || !status || i >= b->n)
        return -EINVAL;
    /* Range jobs' statuses are written by their chunks and not before:
     * read once the batch completed (ACQUIRE, B4), else not final. */
    if (b->range_fn && !completion_done(&((wsched_batch *)b)->returned)) {
        *status = WSCHED_ENOTRUN;
        return 0;
    }
    /* ACQUIRE: pairs with the release CAS of an arbitrated job, so a final
     * status read before the batch completed comes with its slot. */
    *status = status_public(ld(&((wsched_batch *)b)->status[i], ACQ));
    return 0;
}

int wsched_batch_outcome(const wsched_batch *cb, wsched_outcome *dst, size_t size)
{
    if (!cb || !dst || size < sizeof(wsched_outcome))
        return -EINVAL;
    struct wsched_batch *b = (struct wsched_batch *)cb;
    wsched_outcome o = {0}, *out = &o;
    /* ACQUIRE on done (or returned, set just before it on a normal
     * completion): every status, cancel and first_error with it. */
    bool complete = completion_done(&b->done) || completion_done(&b->returned);
    uint32_t reason = ld(&b->cancel, ACQ);
    size_t first_failed = SIZE_MAX;
    /* Range jobs: statuses only once complete (wsched_batch_status). */
    size_t scan = b->range_fn && !complete ? 0 : b->n;
    out->unfinished = b->n - scan;
    for (size_t i = 0; i < scan; i++) {
        int32_t v = ld(&b->status[i], ACQ);
        if (v == 0) {
            out->ok++;
        } else if (v == WSCHED_ECANCELLED) {
            out->cancelled++;
        } else if (v == WSCHED_EDEADLINE) {
            out->timed_out++;
        } else if (v == WSCHED_ENOTRUN || v == STATUS_RUNNING) {
            out->unfinished++;
        } else {
            out->failed++;
            if (first_failed == SIZE_MAX)
                first_failed = i;
        }
    }
    if (!complete)
        out->end = WSCHED_END_RUNNING;
    else if (reason == CANCEL_USER)
        out->end = WSCHED_END_CANCELLED;
    else if (reason == CANCEL_DEADLINE)
        out->end = WSCHED_END_DEADLINE;
    else if (reason == CANCEL_FAILFAST)
        out->end = WSCHED_END_FAILED;
    else if (reason == CANCEL_QUORUM)
        out->end = ld(&b->succeeded, RLX) >= b->quorum ? WSCHED_END_QUORUM_REACHED
                                                        : WSCHED_END_QUORUM_IMPOSSIBLE;
    else
        out->end = WSCHED_END_COMPLETED;
    int32_t fe = ld(&b->first_error, ACQ); /* with its index (policy.c) */
    if (fe) { /* fail-fast or quorum: the first failure in time */
        out->first_error = fe;
        out->first_error_index = ld(&b->first_index, RLX);
    } else if (first_failed != SIZE_MAX) { /* else the lowest index */
        out->first_error = ld(&b->status[first_failed], RLX);
        out->first_error_index = first_failed;
    } else {
        out->first_error_index = SIZE_MAX;
    }
    return wsched__copy_out(dst, size, &o, sizeof o, sizeof o);
}
