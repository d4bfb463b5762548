/*
 * Policies and cancellation: wsched_cancel, fail-fast's first error,
 * quorum accounting, and the arbitrated path (quorum or deadline), where
 * a job claims its slot and publishes its result by CAS on its status so
 * that an early completion can freeze the slots not final yet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "futex.h"
#include "probes.h"
#include "tsan.h"
#include "waitq.h"

/* First reason wins. A job that sees the flag (relaxed, per job) needs
 * nothing else from the canceller; the first error, stored before, stays
 * visible with it. SEQ_CST: C3 of waitq.c, the Dekker pair with a job
 * arming a wait (J2'). The winner reaches the batch's pending waits (C3),
 * holding the pool meanwhile (H4: the batch holds a unit until it is
 * complete, and it cannot be before the waits it cancels are resumed). */
void wsched__cancel_set(struct wsched_batch *b, uint32_t reason)
{
    uint32_t none = CANCEL_NONE;
    if (cas(&b->cancel, &none, reason, SC) && b->waits && reason != CANCEL_CLOSED) {
        fadd(&b->handle->inflight, 1, RLX); /* H4 */
        wsched__wait_cancel_batch(b);
        wsched__pool_leave(b->handle, 1);
    }
}

/* Wake the waiters now (quorum decided, deadline passed): the runtime's
 * reference, the admission unit and `remaining` still end with the last
 * range. ACQ_REL as in batch_complete. */
void wsched__signal_done(struct wsched_batch *b)
{
    wsched__word_signal(&b->done);
}

/* Decide every slot that is not final yet (arbitrated batches): CAS
 * NOTRUN or RUNNING -> `code`. A job finishing later finds its slot taken
 * and its result is discarded; one that finished first keeps it. */
void wsched__freeze(struct wsched_batch *b, int32_t code)
{
    for (size_t i = 0; i < b->n; i++) {
        int32_t v = ld(&b->status[i], RLX);
        while (v == WSCHED_ENOTRUN || v == STATUS_RUNNING) {
            if (cas_weak(&b->status[i], &v, code, AR)) {
                stream_push(b, i);
                break;
            }
        }
    }
}

/* The first job error of a fail-fast or quorum batch, and its index
 * (wsched_batch_outcome). */
void wsched__note_first_error(struct wsched_batch *b, size_t i, int32_t code)
{
    /* The index is claimed first (CAS from SIZE_MAX: one winner), then the
     * code is published with RELEASE: a reader that sees the code
     * (ACQUIRE, wsched_batch_outcome) sees its index. The other way round
     * a second failing job's early completion (fail-fast, quorum) could
     * release a waiter that read the code with the index not yet stored
     * (fuzz_api: "first error ... at 0"). */
    size_t none = SIZE_MAX;
    if (cas(&b->first_index, &none, i, RLX))
        st(&b->first_error, code, REL);
}

/* Quorum bookkeeping after a job of a QUORUM batch finished (per job:
 * the cost of the feature when used). */
static void quorum_account(struct wsched_batch *b, size_t i, int32_t code)
{
    bool decided;
    if (code == 0)
        decided = fadd(&b->succeeded, 1, AR) + 1 == b->quorum;
    else {
        wsched__note_first_error(b, i, code);
        decided = fadd(&b->failed, 1, AR) + 1 == b->n - b->quorum + 1;
    }
    if (decided) { /* exactly one job sees its count hit the threshold */
        /* Freeze first, then signal the running jobs: one that stops when
         * it sees the cancel finds its slot already decided. */
        wsched__freeze(b, WSCHED_ECANCELLED);
        wsched__cancel_set(b, CANCEL_QUORUM);
        wsched__signal_done(b);
    }
}

/* An arbitrated batch's job (quorum or deadline) claims its slot, runs, and
 * publishes its result, each by CAS on its status. */
void wsched__arbitrated_publish(struct wsched_batch *b, size_t i, int32_t code, bool account)
{
    int32_t v = STATUS_RUNNING;
    /* RELEASE: the slot's contents with its final status. */
    if (!cas(&b->status[i], &v, code, REL))
        return; /* frozen meanwhile: the decision stands, our result is dropped */
    stream_push(b, i);
    if (!account)
        return;
    if (b->policy == WSCHED_POLICY_QUORUM) {
        quorum_account(b, i, code);
    } else if (code != 0 && b->policy == WSCHED_POLICY_FAIL_FAST) {
        wsched__note_first_error(b, i, code);
        wsched__cancel_set(b, CANCEL_FAILFAST);
    }
}

/* True when the job went pending (WSCHED_BATCH_WAITS): its slot stays
 * RUNNING until its resumption publishes (run.c). */
bool wsched__run_arbitrated(wsched_ctx *ctx, struct wsched_batch *b, size_t i)
{
    _Atomic int32_t *st_i = &b->status[i];
    uint32_t reason = ld(&b->cancel, RLX);
    if (!reason && b->deadline && wsched_now_ns() >= b->deadline) {
        wsched__cancel_set(b, CANCEL_DEADLINE);
        reason = CANCEL_DEADLINE;
    }
    int32_t v = WSCHED_ENOTRUN;
    if (reason) {
        if (cas(st_i, &v, cancel_status(reason), RLX))
            stream_push(b, i);
        return false;
    }
    if (!cas(st_i, &v, STATUS_RUNNING, RLX))
        return false; /* frozen before we started */
    int r;
    if (b->waits) {
        if (call_job_waiting(ctx, b, i, false, WSCHED_RESUME_FIRST, 0, &r))
            return true;
    } else {
        r = b->fn(ctx, b->arg, i, b->slots ? b->slots + i * b->stride : NULL);
        ctx_implicit_sync(ctx);
    }
    wsched__arbitrated_publish(b, i, job_status(r), true);
    return false;
}

int wsched_cancel(wsched_batch *b)
{
    if (!b)
        return -EINVAL;
    wsched__cancel_set(b, CANCEL_USER);
    return 0;
}

int wsched_cancelled(const wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    if (!c->batch)
        return 0;
    struct wsched_batch *b = c->batch;
    if (c->wait && ld(&c->wait->lost, RLX))
        return 1; /* a hedged round's loser */
    uint64_t cut = ds_attempt_cut(c);
    if (unlikely(cut != 0) && wsched_now_ns() >= cut)
        return 1; /* its attempt's timeout passed */
    uint32_t reason = ld(&b->cancel, RLX);
    if (c->wait && shielded_from(b, c->wait->index, reason) &&
        !(b->deadline && wsched_now_ns() >= b->deadline))
        return 0; /* a breaker's trial runs to its outcome (resilient.c) */
    return (reason != CANCEL_NONE && reason != CANCEL_CLOSED) ||
           (b->deadline && wsched_now_ns() >= b->deadline);
}
