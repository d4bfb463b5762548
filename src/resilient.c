/*
 * The job path of a batch with a downstream (wsched.h, "Resilience"):
 * around each job, in the one fixed order, outer to inner,
 *   batch deadline > rate limit > breaker > retries (budget) > attempt.
 * A job is rate-limited and let through the breaker once; its attempts
 * follow one another, each after a backoff that is a timer wait on the
 * job's own wait record (as wsched_sleep_until), so no worker is held
 * between attempts. What the caller (run.c, policy.c) sees is one final
 * status per job, as for any job: failure policies, quorum and the
 * completion stream act on final outcomes only.
 *
 * Exactly-once obligations, all on the paths through wsched__ds_call:
 *  - a breaker permit taken by a job is released once, with the job's
 *    final status, whichever way it ends: a success, a failure, an
 *    ignored code, a cancellation or deadline reaching its attempt or its
 *    backoff, the pool's destroy (a cancelled call);
 *  - a dead letter is given once, on the call that makes the job final,
 *    before the caller publishes the status.
 * The per-job state (struct job_pol) is written by the job's current call
 * only; consecutive calls are ordered by the wait's join and the deque
 * push (waitq.c C4, J2'), as the job's slot is.
 */
#include <errno.h>

#include "batch.h"
#include "downstream.h"
#include "probes.h"

/* Arm our own timer wait for job jw at when_ns, as wsched_sleep_until and
 * a WSCHED_PENDING return would (run.c, batch.h J2'). False when no wait
 * can be armed (the pool is being destroyed, no cell): no retry then. */
static bool arm_own_wait(struct worker *w, struct job_wait *jw, uint64_t when_ns)
{
    if (ld(&w->pool->handle->state, RLX) != POOL_ALIVE)
        return false;
    if (wsched__wait_arm(w, jw, WSCHED_RESUME_TIMER, 0, NULL) != 0)
        return false;
    wsched__timer_arm(w, jw, when_ns);
    wsched__wait_pending(w, jw); /* J2': from here jw may be resumed elsewhere */
    return true;
}

static void dead(struct wsched_downstream *ds, struct wsched_batch *b, size_t i, int status,
                 unsigned attempts, unsigned reason)
{
    wsched_dead_letter dl = {.batch = b, .index = i, .status = status,
                             .attempts = attempts, .reason = reason, .downstream = ds};
    wsched__ds_dead_letter(ds, &dl);
}

/* The job's end: the permit back with its final status. */
static bool finish(struct wsched_downstream *ds, struct job_pol *jp, int status, int *ret)
{
    if (jp->permit) {
        wsched__breaker_release(ds, jp->permit, status);
        jp->permit = 0;
    }
    *ret = status;
    return false;
}

bool wsched__ds_call(wsched_ctx *ctx, struct wsched_batch *b, size_t i, unsigned kind,
                     uint64_t value, int *ret)
{
    struct wsched_downstream *ds = b->ds;
    struct job_pol *jp = &b->pol[i];
    struct worker *w = ctx->w;
    struct job_wait *jw = &b->waits[i];
    bool cleanup = kind == WSCHED_RESUME_CANCELLED;

    if (jp->phase != PH_NONE) {
        /* Resumed from one of our own waits: the job is not in a call. A
         * cancellation (batch cancelled, deadline, quorum decided, destroy)
         * ends it without calling it: it holds nothing of its own. */
        unsigned phase = jp->phase;
        jp->phase = PH_NONE;
        jw->armed = 0;
        if (cleanup)
            return finish(ds, jp, WSCHED_ECANCELLED, ret); /* the caller's status stands */
        if (phase == PH_LIMIT_WAIT)
            goto breaker;
        kind = WSCHED_RESUME_RETRY;
        value = 0;
        jp->attempts++;
        DS_COUNT(ds, attempts);
        PROBE3(retry, b, i, jp->attempts);
        goto attempt;
    }
    if (kind != WSCHED_RESUME_FIRST)
        goto attempt; /* a resumption of the job's own wait */

    /* The job's first call: the rate limit, then the breaker. */
    DS_COUNT(ds, jobs);
    if (ds->gcra_t) {
        uint64_t now = ds_now(ds), mono = ds->clock ? wsched_now_ns() : now;
        /* Delay mode: a turn that comes after the deadline is no turn. */
        uint64_t max_delay = b->deadline ? (b->deadline > mono ? b->deadline - mono : 1) : 0;
        int64_t d = wsched__limit_acquire(ds, now, max_delay);
        if (d == WSCHED_ELIMITED) {
            PROBE2(limited, b, i);
            dead(ds, b, i, WSCHED_ELIMITED, 0, WSCHED_DEAD_LIMITED);
            *ret = WSCHED_ELIMITED;
            return false;
        }
        if (d > 0) {
            jp->phase = PH_LIMIT_WAIT; /* before J2' hands jw on (see the retry's) */
            if (arm_own_wait(w, jw, mono + (uint64_t)d))
                return true;
            jp->phase = PH_NONE; /* no wait to be had: go now */
        }
    }
breaker:
    if (ds->has_breaker) {
        uint32_t permit;
        if (wsched__breaker_acquire(ds, &permit) != 0) {
            PROBE2(breaker_rejected, b, i);
            dead(ds, b, i, WSCHED_EBREAKER, 0, WSCHED_DEAD_BREAKER);
            *ret = WSCHED_EBREAKER;
            return false;
        }
        jp->permit = permit;
    }
    jp->attempts = 1;
    DS_COUNT(ds, attempts);
    kind = WSCHED_RESUME_FIRST;
    value = 0;

attempt:;
    int r;
    if (call_job_attempt(ctx, b, i, kind, value, &r))
        return true; /* pending in a wait of its own */
    if (cleanup)
        return finish(ds, jp, WSCHED_ECANCELLED, ret);
    int code = job_status(r);
    uint32_t reason = ld(&b->cancel, RLX);
    if (code != 0 && reason != CANCEL_NONE && reason != CANCEL_CLOSED) {
        /* The batch stops: no more attempts (the budget still learns). */
        if (wsched__ds_retryable(ds, code))
            wsched__ds_budget_outcome(ds, false);
        return finish(ds, jp, code, ret);
    }
    uint64_t delay, when;
    int why = wsched__retry_decide(ds, i, jp->attempts, code, b->deadline, &jp->prev_delay,
                                   &delay, &when);
    if (why != 0) {
        if (why > 0)
            dead(ds, b, i, code, jp->attempts, (unsigned)why);
        return finish(ds, jp, code, ret);
    }
    /* Counted (the decision) and the phase set before the wait is armed:
     * once J2' gave our unit of the join away, the resumption may run (and
     * read the phase) elsewhere, and complete the batch, after which the
     * caller may destroy the downstream: nothing of ours is touched after. */
    jp->phase = PH_RETRY_WAIT;
    if (arm_own_wait(w, jw, when))
        return true;
    jp->phase = PH_NONE;
    return finish(ds, jp, code, ret);
}

int wsched_batch_attempts(const wsched_batch *b, size_t i)
{
    if (!b || i >= b->n || !b->pol)
        return -EINVAL;
    return b->pol[i].attempts;
}

int wsched_attempt(const wsched_ctx *c)
{
    if (!c)
        return -EINVAL;
    if (!c->wait || !c->batch || !c->batch->pol || c->wait->b != c->batch)
        return 1;
    return c->batch->pol[c->wait->index].attempts;
}
