/*
 * The job path of a batch with a downstream (wsched.h, "Resilience"):
 * around each job, in the one fixed order, outer to inner,
 *   batch deadline > single-flight > concurrency limit > rate limit >
 *   breaker > retries (budget) > hedge > attempt timeout > attempt.
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
 * The attempt timeout: each attempt (the primary's, in the job's record,
 * and the hedge's, in its hedge record) gets its cut, now + the timeout,
 * when it begins (pol.cut[0], [1]); the waits its job arms end no later
 * (run.c, arm_wait_timer, flagging the timer), and a wait that ends by
 * the cut is resumed here as RESUME_ATIMEOUT: the job's cleanup call,
 * then the attempt fails with -ETIMEDOUT. Nothing is shared: the cut is
 * the record's own timer, fired and claimed as any timer (waitq.c), so a
 * cancellation or a wake that claims the wait first wins as before.
 * The per-job state (struct job_pol) is written by the job's current call
 * only; consecutive calls are ordered by the wait's join and the deque
 * push (waitq.c C4, J2'), as the job's slot is.
 */
#include <errno.h>
#include <string.h>

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

/* An attempt begins in record k (0 the primary, 1 the hedge): its cut. */
static inline void attempt_begins(struct downstream *ds, struct job_pol *jp, unsigned k)
{
    if (unlikely(ds->attempt_timeout != 0))
        jp->cut[k] = wsched_now_ns() + ds->attempt_timeout;
}

/* A call of an attempt, resumed from a wait its cut ended (kind
 * RESUME_ATIMEOUT): the job's cleanup call, and the attempt's -ETIMEDOUT.
 * Else as call_job_frame. */
static bool call_attempt(wsched_ctx *ctx, struct wsched_batch *b, size_t i, struct job_wait *jw,
                         void *slot, unsigned kind, uint64_t value, int *ret)
{
    if (unlikely(kind == RESUME_ATIMEOUT)) {
        struct downstream *ds = b->ds;
        DS_COUNT(ds, attempt_timeouts);
        PROBE2(attempt_timeout, b, i);
        if (call_job_frame(ctx, b, i, jw, slot, WSCHED_RESUME_CANCELLED, 0, ret))
            return true; /* (it armed a wait in its cleanup call and a canceller
                          * claimed it before the drop: that resumption cleans up) */
        *ret = -ETIMEDOUT;
        return false;
    }
    return call_job_frame(ctx, b, i, jw, slot, kind, value, ret);
}

static void dead(struct downstream *ds, struct wsched_batch *b, size_t i, int status,
                 unsigned attempts, unsigned reason)
{
    wsched_dead_letter dl = {.batch = b, .arg = b->arg, .index = i, .status = status,
                             .attempts = attempts, .reason = reason, .downstream = ds->handle};
    wsched__ds_dead_letter(ds, &dl);
}

/* The job's end: the permit back with its final status. */
/* The job's end: the permit back with its final status; a flight it
 * leads ends (flight.c F3, or F4 without a result: WSCHED_ECANCELLED or
 * WSCHED_EDEADLINE, statuses no job returns itself). */
static bool finish_job(struct downstream *ds, struct wsched_batch *b, size_t i,
                       int status, int *ret)
{
    struct job_pol *jp = &b->pol[i];
    if (jp->c_start) {
        wsched__cc_leave(ds, status, wsched_now_ns() - jp->c_start); /* L2 */
        jp->c_start = 0;
    }
    if (jp->permit) {
        /* A trial cut short by the batch deadline was too slow: a failure
         * (else a hung call would hold the permit until it ends; with the
         * deadline it ends, and the breaker opens again). */
        int seen = status;
        if ((jp->permit & PERMIT_TRIAL) && (status == WSCHED_ECANCELLED || status == WSCHED_EDEADLINE) &&
            (ld(&b->cancel, RLX) == CANCEL_DEADLINE ||
             (b->deadline && wsched_now_ns() >= b->deadline)))
            seen = -ETIMEDOUT;
        wsched__breaker_release(ds, jp->permit, seen);
        jp->permit = 0;
        st(&jp->shield, 0, RLX);
    }
    if (unlikely(jp->flight != NULL))
        wsched__flight_leave(b, i, status,
                             status != WSCHED_ECANCELLED && status != WSCHED_EDEADLINE);
    *ret = status;
    return false;
}

/*
 * Hedged rounds. With hedging, each attempt of the job is a round of up
 * to two attempts: the primary, in the job's own record and slot, and the
 * hedge, in its hedge record (b->hwaits[i]) and a scratch slot, started
 * when the round's hedge timer fires while the primary still runs.
 *  (H1) the round's start (the primary's context, nobody else live): the
 *       lost flags and hcode cleared, hstate = 2 live parties (the primary
 *       and the hedge record), the hedge timer armed on the hedge record.
 *  (H2) the timer's resumption starts the hedge's attempt by CAS setting
 *       HS_HSTART, unless the primary already returned (HS_PDONE) or won;
 *       else it leaves at once.
 *  (H3) an attempt's end: one CAS records the primary's return (HS_PDONE)
 *       and, for a success while none was decided, the win (HS_DECIDED,
 *       HS_WINH for the hedge); a failure's code goes to hcode. A winner,
 *       or a primary ending before the hedge started, cancels the other
 *       party: its lost flag (SEQ_CST), then a load of its cell (SEQ_CST)
 *       and a claim, the Dekker pair with the other's J2' (waitq.c), which
 *       reads lost after storing its cell: either we claim its wait, or it
 *       sees lost and claims it itself. Its resumption is then a cleanup
 *       call (a lost attempt is not a cancelled job: run.c).
 *  (H4) then live -= 1 (ACQ_REL): whoever brings it to 0 ends the round,
 *       seeing both attempts' writes: the winner's status (copying the
 *       hedge's scratch into the slot when it won: both have returned,
 *       nobody writes either any more), else the later failure, else
 *       (both were cleanups) a cancellation. The round's end then goes on
 *       as an unhedged attempt's would (retry, breaker, dead letter) and
 *       the job's unit of `remaining` is given back by that caller only:
 *       a party that is not last reports "pending" to its caller.
 *  (H5) a primary that fails while the round's hedge runs (HS_HSTART,
 *       nothing decided, both parties live) retries at once in its own
 *       record, after its backoff (lane_retry), instead of waiting for
 *       the hedge to end, as gRPC's hedging sends the next attempt when
 *       one fails: a slow hedge would otherwise hold the job until its
 *       own cut. It skips H3 and stays a live party, so nobody ends the
 *       round meanwhile; a hedge that wins cancels its backoff wait or
 *       its new attempt through `lost` (H3, J2'), as the first attempt's.
 *       Only the primary's record retries: the round-wide fields it writes
 *       (attempts, prev_delay, cut[0], phase) are read by the hedge's
 *       record only once it is last, after H4's RMW.
 */

/* H3 for attempt `hedge` of job i; true when we ended the round (H4). */
static bool attempt_end(struct pool *p, struct wsched_batch *b, size_t i, struct job_pol *jp,
                        bool hedge, bool cleanup, int code)
{
    if (!cleanup && code != 0)
        st(&jp->hcode, code, RLX); /* published by the RMW below */
    uint32_t s = ld(&jp->hstate, RLX), n;
    bool won;
    do {
        won = !cleanup && code == 0 && !(s & HS_DECIDED);
        n = s | (hedge ? 0 : HS_PDONE) | (won ? HS_DECIDED | (hedge ? HS_WINH : 0) : 0);
    } while (!cas_weak(&jp->hstate, &s, n, AR)); /* H3 */
    /* The other party: the winner's loser, or the hedge that did not start. */
    if (won || (!hedge && !(n & HS_HSTART))) {
        struct job_wait *other = hedge ? &b->waits[i] : &b->hwaits[i];
        st(&other->lost, 1, SC); /* H3: against its J2' */
        if (ld(&other->cell, SC) != WAIT_NO_CELL && wsched__wait_claim(p, other, CELL_CANCELLED))
            wsched__wait_done_remote(p, other);
    }
    return (fsub(&jp->hstate, 1, AR) & HS_LIVE) == 1; /* H4 */
}

/* H4: the round's outcome. False when both attempts were cleanups. */
static bool round_outcome(struct downstream *ds, struct wsched_batch *b, size_t i,
                          struct job_pol *jp, int *code)
{
    uint32_t s = ld(&jp->hstate, RLX); /* our H4 RMW acquired both sides */
    jp->hedged = 0;
    if (s & HS_DECIDED) {
        if ((s & HS_WINH) && b->hscratch)
            memcpy(b->slots + i * b->stride, b->hscratch + i * b->stride, b->slot_size);
        if (s & HS_WINH) {
            DS_COUNT(ds, hedge_wins);
            PROBE2(hedge_won, b, i);
        }
        *code = 0;
        return true;
    }
    *code = ld(&jp->hcode, RLX);
    return *code != 0;
}

/* H1: arm the round's hedge timer, if hedging is on and it can begin
 * before the deadline. */
static void round_begin(struct worker *w, struct downstream *ds, struct wsched_batch *b,
                        size_t i, struct job_pol *jp)
{
    if (!ds->hedge_delay)
        return;
    uint64_t now = wsched_now_ns(), when = now + ds_hedge_delay(ds);
    jp->t_start = now;
    if (b->deadline && when >= b->deadline)
        return;
    struct job_wait *hjw = &b->hwaits[i];
    st(&b->waits[i].lost, 0, RLX); /* published by the arm's C1 RELEASE */
    st(&hjw->lost, 0, RLX);
    st(&jp->hcode, 0, RLX);
    st(&jp->hstate, 2, RLX);
    jp->hphase = HP_TIMER;
    jp->hedged = 1; /* before the arm: from there the record may run elsewhere */
    if (!arm_own_wait(w, hjw, when)) {
        jp->hedged = 0; /* nobody saw it */
        return;
    }
    /* T1 now, not at the job's end: the primary is about to run, maybe for
     * long, and the hedge must be able to start beside it; another worker
     * fires the timer once it is TIMER_STEAL_GRACE_NS overdue (T2). */
    wsched__wheel_boundary(w);
}

static bool round_end(wsched_ctx *ctx, struct wsched_batch *b, size_t i, bool cleanup,
                      int code, int *ret);
static bool primary_end(wsched_ctx *ctx, struct wsched_batch *b, size_t i, bool cleanup,
                        int code, int *ret);

/* A call for job i's hedge record: its timer fired or was cancelled, or
 * its attempt is called (first, or resumed from its own wait). */
static bool hedge_call(wsched_ctx *ctx, struct wsched_batch *b, size_t i, unsigned kind,
                       uint64_t value, int *ret)
{
    struct downstream *ds = b->ds;
    struct job_pol *jp = &b->pol[i];
    struct job_wait *hjw = &b->hwaits[i];
    struct pool *p = ctx->w->pool;
    bool cleanup = kind == WSCHED_RESUME_CANCELLED;
    if (jp->hphase == HP_TIMER) {
        hjw->armed = 0;
        bool start = !cleanup;
        if (start && !ds_budget_allows(ds)) {
            DS_COUNT(ds, hedges_denied);
            start = false;
        }
        /* Read before H2: the primary counts a retry (H5) only once it
         * sees HS_HSTART (ACQUIRE), so this read precedes that write. */
        jp->hattempt = jp->attempts;
        uint32_t s = ld(&jp->hstate, RLX);
        while (start && !(s & (HS_PDONE | HS_DECIDED)))
            if (cas_weak(&jp->hstate, &s, s | HS_HSTART, AR)) /* H2 */
                break;
        if (!start || (s & (HS_PDONE | HS_DECIDED))) {
            if (!attempt_end(p, b, i, jp, true, true, 0))
                return true;
            int code;
            bool ran = round_outcome(ds, b, i, jp, &code);
            return round_end(ctx, b, i, !ran, code, ret);
        }
        wsched__ds_budget_outcome(ds, false); /* a hedge takes a token */
        DS_COUNT(ds, hedges);
        PROBE3(hedge, b, i, jp->hattempt);
        jp->hphase = HP_ATTEMPT;
        attempt_begins(ds, jp, 1);
        if (b->hscratch)
            memset(b->hscratch + i * b->stride, 0, b->slot_size);
        kind = WSCHED_RESUME_HEDGE;
        value = 0;
    }
    int r;
    if (call_attempt(ctx, b, i, hjw, b->hscratch ? b->hscratch + i * b->stride : NULL, kind,
                     value, &r))
        return true; /* pending in a wait of its own */
    if (!attempt_end(p, b, i, jp, true, cleanup, job_status(r)))
        return true; /* the primary ends the round */
    int code;
    bool ran = round_outcome(ds, b, i, jp, &code);
    return round_end(ctx, b, i, !ran, code, ret);
}

bool wsched__ds_call(wsched_ctx *ctx, struct wsched_batch *b, size_t i, bool hedge,
                     unsigned kind, uint64_t value, int *ret)
{
    if (hedge)
        return hedge_call(ctx, b, i, kind, value, ret);
    struct downstream *ds = b->ds;
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
        if (phase == PH_JOINED) { /* flight.c: the flight's end reached us, or our own */
            if (!cleanup && kind == WSCHED_RESUME_WOKEN && value == FLIGHT_VALUE_LEAD)
                goto lead; /* handed over: we run the job now (F4) */
            if (!cleanup && kind == WSCHED_RESUME_WOKEN) {
                *ret = ld(&jp->hcode, RLX); /* the leader's status, its slot copied (F3) */
                return false;
            }
            /* Detached by our own cancel or deadline; or handed the flight
             * (F4) and then cancelled before this resumption ran: it is
             * handed on (finish), and, as we make no attempt, counted as
             * one that made none, or `attempts` would count the handover. */
            if (jp->flight)
                DS_COUNT(ds, job_rejected);
            return finish_job(ds, b, i, kind == WSCHED_RESUME_TIMEDOUT ? WSCHED_EDEADLINE
                                                                  : WSCHED_ECANCELLED, ret);
        }
        if (phase == PH_LANE_WAIT && cleanup) /* H5's backoff: the hedge won, or a cancel */
            return primary_end(ctx, b, i, true, 0, ret);
        if (cleanup) {
            if (phase == PH_LIMIT_WAIT)
                DS_COUNT(ds, job_rejected); /* (for `attempts`: it made none) */
            return finish_job(ds, b, i, WSCHED_ECANCELLED, ret); /* the caller's status stands */
        }
        if (phase == PH_LIMIT_WAIT)
            goto breaker;
        kind = WSCHED_RESUME_RETRY;
        value = 0;
        jp->attempts++;
        DS_COUNT(ds, retry_attempts);
        PROBE3(retry, b, i, jp->attempts);
        attempt_begins(ds, jp, 0);
        if (phase == PH_RETRY_WAIT) /* (H5's retry goes on in the round it began in) */
            round_begin(w, ds, b, i, jp);
        goto attempt;
    }
    if (kind != WSCHED_RESUME_FIRST)
        goto attempt; /* a resumption of the job's own wait */

    /* The job's first call: a flight to join, the rate limit, the breaker. */
    DS_COUNT(ds, jobs);
    if (ds->flight_key) {
        uint64_t key = ds->flight_key(ds->flight_ctx, b->arg, i);
        if (key && wsched__flight_enter(w, ds, b, i, key) == FLIGHT_JOINED)
            return true; /* pending on the flight: touch nothing more */
    }
lead:
    if (ds->cc_max) { /* the concurrency limit (L1) */
        if (!wsched__cc_enter(ds)) {
            DS_COUNT(ds, shed);
            DS_COUNT(ds, job_rejected);
            dead(ds, b, i, WSCHED_ELIMITED, 0, WSCHED_DEAD_SHED);
            return finish_job(ds, b, i, WSCHED_ELIMITED, ret);
        }
        jp->c_start = wsched_now_ns();
    }
    if (ds->gcra_t) {
        uint64_t now = ds_now(ds), mono = ds->clock ? wsched_now_ns() : now;
        /* Delay mode: a turn that comes after the deadline is no turn. */
        uint64_t max_delay = b->deadline ? (b->deadline > mono ? b->deadline - mono : 1) : 0;
        int64_t d = wsched__limit_acquire(ds, now, max_delay);
        if (d == WSCHED_ELIMITED) {
            PROBE2(limited, b, i);
            DS_COUNT(ds, job_rejected);
            dead(ds, b, i, WSCHED_ELIMITED, 0, WSCHED_DEAD_LIMITED);
            return finish_job(ds, b, i, WSCHED_ELIMITED, ret);
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
            DS_COUNT(ds, job_rejected);
            dead(ds, b, i, WSCHED_EBREAKER, 0, WSCHED_DEAD_BREAKER);
            return finish_job(ds, b, i, WSCHED_EBREAKER, ret);
        }
        jp->permit = permit;
        if (permit & PERMIT_TRIAL)
            st(&jp->shield, 1, SC); /* before any wait of ours is armed (C1) */
    }
    jp->attempts = 1;
    kind = WSCHED_RESUME_FIRST;
    value = 0;
    attempt_begins(ds, jp, 0);
    round_begin(w, ds, b, i, jp);

attempt:;
    int r;
    if (call_attempt(ctx, b, i, jw, b->slots ? b->slots + i * b->stride : NULL, kind, value, &r))
        return true; /* pending in a wait of its own */
    return primary_end(ctx, b, i, cleanup, cleanup ? 0 : job_status(r), ret);
}

/* H5: the primary failed with `code` in a hedged round; true when it
 * retries beside the hedge (pending on its backoff wait). */
static bool lane_retry(struct worker *w, struct downstream *ds, struct wsched_batch *b, size_t i,
                       struct job_pol *jp, int code)
{
    /* ACQUIRE: pairs with H2's CAS, after the hedge's read of `attempts`. */
    uint32_t s = ld(&jp->hstate, ACQ);
    if ((s & (HS_HSTART | HS_DECIDED)) != HS_HSTART || (s & HS_LIVE) != 2)
        return false; /* no hedge running (H3 cancels one not started), or decided */
    uint32_t reason = ld(&b->cancel, RLX);
    uint64_t when;
    if ((reason != CANCEL_NONE && reason != CANCEL_CLOSED) ||
        wsched__retry_lane(ds, i, jp->attempts, code, b->deadline, &jp->prev_delay, &when) != 0)
        return false;
    jp->phase = PH_LANE_WAIT; /* before J2' hands the record on (see round_end) */
    if (arm_own_wait(w, &b->waits[i], when))
        return true;
    jp->phase = PH_NONE;
    return false;
}

/* The primary's attempt (or its H5 backoff, as a cleanup) ended. */
static bool primary_end(wsched_ctx *ctx, struct wsched_batch *b, size_t i, bool cleanup,
                        int code, int *ret)
{
    struct downstream *ds = b->ds;
    struct job_pol *jp = &b->pol[i];
    struct worker *w = ctx->w;
    if (jp->hedged && ds->hedge_pct && jp->t_start) {
        wsched__hedge_sample(ds, wsched_now_ns() - jp->t_start); /* A1: the round's first */
        jp->t_start = 0;
    }
    if (jp->hedged) {
        if (!cleanup && code != 0 && lane_retry(w, ds, b, i, jp, code))
            return true; /* H5: we stay a live party, pending on the backoff */
        if (!attempt_end(w->pool, b, i, jp, false, cleanup, code))
            return true; /* the hedge ends the round: we keep the unit meanwhile */
        cleanup = !round_outcome(ds, b, i, jp, &code);
    }
    return round_end(ctx, b, i, cleanup, code, ret);
}

/* An attempt (or a hedged round) ended with `code`, or with nothing but
 * cleanups: retry, or the job's end. */
static bool round_end(wsched_ctx *ctx, struct wsched_batch *b, size_t i, bool cleanup,
                      int code, int *ret)
{
    struct downstream *ds = b->ds;
    struct job_pol *jp = &b->pol[i];
    if (cleanup)
        return finish_job(ds, b, i, WSCHED_ECANCELLED, ret);
    uint32_t reason = ld(&b->cancel, RLX);
    if (code != 0 && reason != CANCEL_NONE && reason != CANCEL_CLOSED) {
        /* The batch stops: no more attempts (the budget still learns). */
        if (wsched__ds_retryable(ds, code))
            wsched__ds_budget_outcome(ds, false);
        return finish_job(ds, b, i, code, ret);
    }
    uint64_t delay, when;
    int why = wsched__retry_decide(ds, i, jp->attempts, code, b->deadline, &jp->prev_delay,
                                   &delay, &when);
    if (why != 0) {
        if (why > 0)
            dead(ds, b, i, code, jp->attempts, (unsigned)why);
        return finish_job(ds, b, i, code, ret);
    }
    /* Counted (the decision) and the phase set before the wait is armed:
     * once J2' gave our unit of the join away, the resumption may run (and
     * read the phase) elsewhere, and complete the batch, after which the
     * caller may destroy the downstream: nothing of ours is touched after.
     * The wait is the job's own record's, whichever record we run for: its
     * attempt has returned (H4). */
    jp->phase = PH_RETRY_WAIT;
    if (arm_own_wait(ctx->w, &b->waits[i], when))
        return true;
    jp->phase = PH_NONE;
    return finish_job(ds, b, i, code, ret);
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
    const struct wsched_batch *b = c->batch;
    size_t i = c->wait->index;
    if (b->hwaits && c->wait == &b->hwaits[i])
        return b->pol[i].hattempt; /* the hedge's: the primary may be counting another (H5) */
    return b->pol[i].attempts;
}
