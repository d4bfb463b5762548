/*
 * A downstream's retries (wsched.h, "Resilience"): the backoff and its
 * jitter, which codes are retried, the retry decision the job path
 * (resilient.c) and wsched_retry_decide make, and the retry budget (gRPC's
 * throttling: one word of milli-tokens, changed by CAS within [0, max];
 * it publishes nothing but itself, so relaxed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "downstream.h"
#include "probes.h"

uint64_t wsched_backoff_ns(const wsched_retry *r, unsigned k, uint64_t prev_ns, uint64_t *rng)
{
    if (!r || !rng || k == 0)
        return 0;
    uint64_t cap = r->cap_ns ? r->cap_ns : r->base_ns * 1000;
    if (r->jitter == WSCHED_JITTER_DECORRELATED) {
        uint64_t prev = prev_ns ? prev_ns : r->base_ns;
        uint64_t hi = prev > UINT64_MAX / 3 ? UINT64_MAX : prev * 3;
        uint64_t d = ds_uniform(rng, r->base_ns, hi < r->base_ns ? r->base_ns : hi);
        return d < cap ? d : cap;
    }
    /* t = min(cap, base * 2^(k-1)), without overflow. */
    uint64_t t = r->base_ns;
    for (unsigned j = 1; j < k && t < cap; j++)
        t = t > cap / 2 ? cap : t * 2;
    if (t > cap)
        t = cap;
    switch (r->jitter) {
    case WSCHED_JITTER_NONE:
        (void)ds_splitmix64(rng); /* one draw per delay, whatever the mode */
        return t;
    case WSCHED_JITTER_EQUAL:
        return t / 2 + ds_uniform(rng, 0, t / 2);
    default:
        return ds_uniform(rng, 0, t);
    }
}

bool wsched__ds_retryable(const struct downstream *ds, int code)
{
    if (code == 0 || ds->max_attempts <= 1)
        return false;
    if (ds->retry_any)
        return code != WSCHED_EEXCEPTION && code != WSCHED_EBREAKER &&
               code != WSCHED_ELIMITED;
    for (unsigned k = 0; k < 8 && ds->retry.codes[k]; k++)
        if (ds->retry.codes[k] == code)
            return true;
    return false;
}

/* When the key's attempt-th retry may begin (the draw: wsched.h, `seed`),
 * and its delay; 0 when that is at or after the deadline: no attempt is
 * started that cannot begin before it. */
static uint64_t retry_when(struct downstream *ds, uint64_t key, unsigned attempt,
                           uint64_t deadline, uint64_t prev_delay, uint64_t *delay)
{
    uint64_t rng = ds->seed ^ (key * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)attempt << 56);
    *delay = wsched_backoff_ns(&ds->retry, attempt, prev_delay, &rng);
    uint64_t t = wsched_now_ns() + *delay;
    return deadline && t >= deadline ? 0 : t;
}

/* The retry decision after attempt `attempt` of job (or key) `key` ended
 * with `code` (wsched_retry_decide): the budget learns the outcome, then
 * 0 = retry at *when (after *delay), a WSCHED_DEAD_* reason = give up,
 * -ENOENT = nothing to retry (a success or a code not retried). The
 * retry is counted here, before the caller arms its wait (resilient.c). */
int wsched__retry_decide(struct downstream *ds, uint64_t key, unsigned attempt, int code,
                         uint64_t deadline, uint64_t *prev_delay, uint64_t *delay,
                         uint64_t *when)
{
    if (code == 0) {
        wsched__ds_budget_outcome(ds, true);
        return -ENOENT;
    }
    if (!wsched__ds_retryable(ds, code))
        return -ENOENT; /* fatal: the budget is for retryable failures */
    wsched__ds_budget_outcome(ds, false);
    if (attempt >= ds->max_attempts) {
        DS_COUNT(ds, exhausted);
        return WSCHED_DEAD_EXHAUSTED;
    }
    if (!ds_budget_allows(ds)) {
        DS_COUNT(ds, budget_denied);
        PROBE2(budget_denied, ds, key);
        return WSCHED_DEAD_BUDGET;
    }
    uint64_t d, t = retry_when(ds, key, attempt, deadline, *prev_delay, &d);
    if (!t) {
        DS_COUNT(ds, deadline_cut);
        return WSCHED_DEAD_DEADLINE;
    }
    *prev_delay = d;
    *delay = d;
    *when = t;
    DS_COUNT(ds, retries);
    return 0;
}

/* A retry in place of a hedged round's failed primary while its hedge
 * still runs (resilient.c H5): 0 = retry at *when, counted as a retry and
 * the failure learned by the budget, as wsched__retry_decide would; else
 * (not retryable, no attempt left, the budget low, past the deadline)
 * nothing is counted or learned: the round's end decides then, once. The
 * budget is read before the failure is learned here, not after as there:
 * one token's difference, on the side of letting the retry go. */
int wsched__retry_lane(struct downstream *ds, uint64_t key, unsigned attempt, int code,
                       uint64_t deadline, uint64_t *prev_delay, uint64_t *when)
{
    if (!wsched__ds_retryable(ds, code) || attempt >= ds->max_attempts || !ds_budget_allows(ds))
        return -ENOENT;
    uint64_t d, t = retry_when(ds, key, attempt, deadline, *prev_delay, &d);
    if (!t)
        return -ENOENT;
    wsched__ds_budget_outcome(ds, false);
    *prev_delay = d;
    *when = t;
    DS_COUNT(ds, retries);
    return 0;
}

int wsched_retry_decide(wsched_downstream *h, uint64_t key, unsigned attempt, int status,
                        uint64_t deadline_ns, uint64_t *prev_delay_ns, uint64_t *delay_ns)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    if (!prev_delay_ns || !delay_ns || attempt == 0)
        return -EINVAL;
    uint64_t when;
    return wsched__retry_decide(ds, key, attempt, status, deadline_ns, prev_delay_ns, delay_ns,
                                &when);
}

int wsched_budget_allows(const wsched_downstream *h)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    return ds_budget_allows(ds);
}

/* The retry budget after an attempt: a failure takes a token, a success
 * gives back ratio. A CAS loop to stay within [0, max]; a full bucket
 * after a success is the common case and costs one load. */
void wsched__ds_budget_outcome(struct downstream *ds, bool ok)
{
    if (!ds->budget_max)
        return;
    int64_t v = ld(&ds->tokens, RLX), n;
    do {
        if (ok) {
            if (v >= ds->budget_max || !ds->budget_ratio)
                return;
            n = v + ds->budget_ratio > ds->budget_max ? ds->budget_max : v + ds->budget_ratio;
        } else {
            if (v <= 0)
                return;
            n = v >= 1000 ? v - 1000 : 0;
        }
    } while (!cas_weak(&ds->tokens, &v, n, RLX));
}
