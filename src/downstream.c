/*
 * Downstreams: the shared policy state of one service the side jobs call
 * (wsched.h, "Resilience"): the retry budget, the circuit breaker, the
 * rate limit (GCRA), the dead-letter ring and the counters. The job path
 * that applies them around each attempt is resilient.c.
 *
 * Every shared word publishes nothing but itself, so each is read and
 * changed with relaxed atomics; what each RMW or CAS decides is argued at
 * its site. Labels:
 *  (B1) breaker, closed and not ramping: acquire is one load; the permit
 *       carries the epoch it was taken in.
 *  (B2) every transition is one CAS of the whole word that adds 1 to the
 *       epoch: an outcome whose permit names an older epoch (a late
 *       result of an earlier state) finds another epoch and changes
 *       nothing (resilience4j #674).
 *  (B3) half-open: a trial permit is taken by CAS out + 1 while out + succ
 *       < trials. `out` counts every trial permit out, of this half-open
 *       state or an earlier one (transitions carry it over), so at most
 *       `trials` trial calls are ever out at once (resilience4j #1432).
 *       Its release, exactly once on every exit path of the job that holds
 *       it (resilient.c), gives the permit back (out - 1) and, in the
 *       half-open state it was taken in, closes (the trials-th success) or
 *       opens (a failure); so out never stays up (#903, #935, #544).
 *  (B4) the window: one uncontended CAS per counted outcome on the
 *       worker's stripe (tag | calls | fails), and on a failure a sum of
 *       the stripes of the current tag; a stale tag (another time window,
 *       count window or epoch) counts as an empty window.
 *  (G1) GCRA: tat = max(tat, now) + T by one CAS when the cell conforms
 *       (tat - now <= tau); in delay mode also when it does not, the caller
 *       then waits tat - tau - T - now.
 *  (Q1) the ring (Vyukov's bounded MPMC queue): a producer claims a
 *       position by CAS on ring_head when its cell's seq says free, writes
 *       the letter, then seq = pos + 1 (RELEASE); a consumer whose ACQUIRE
 *       load of seq reads pos + 1 owns the letter, copies it and frees the
 *       cell with seq = pos + size (RELEASE, to the next producer's
 *       ACQUIRE). Not lock-free in the strict sense (a producer preempted
 *       between its CAS and its seq store holds back the consumers behind
 *       it), but nobody ever waits: drain returns what is ready, a full
 *       ring drops and counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "downstream.h"
#include "probes.h"

/* ----------------------------------------------------------------- memory */

static void *ds_alloc(const wsched_allocator *a, size_t size)
{
    if (a)
        return a->alloc(a->ctx, size, CACHELINE);
    void *p = NULL;
    return posix_memalign(&p, CACHELINE, size) == 0 ? p : NULL;
}

static void ds_free(const wsched_allocator *a, void *p, size_t size)
{
    if (a)
        a->free(a->ctx, p, size, CACHELINE);
    else
        free(p);
}

/* The allocator is kept after the handle's struct (the handle is freed
 * with it). */
struct ds_block {
    struct wsched_downstream ds;
    wsched_allocator alloc;
    bool has_alloc;
};



#define HOUR_NS 3600000000000ull
#define MS_NS 1000000ull

static int config_check(const wsched_downstream_config *c)
{
    for (unsigned k = 0; k < sizeof c->reserved / sizeof c->reserved[0]; k++)
        if (c->reserved[k])
            return -EINVAL;
    if (c->reserved0 || c->breaker.reserved0 || c->limit.reserved0)
        return -EINVAL;
    if (c->allocator && (!c->allocator->alloc || !c->allocator->free))
        return -EINVAL;
    const wsched_retry *r = &c->retry;
    if (r->max_attempts > 255 || r->jitter > WSCHED_JITTER_NONE)
        return -EINVAL;
    if (r->max_attempts > 1 && (r->base_ns == 0 || (r->cap_ns && r->cap_ns < r->base_ns) ||
                                r->base_ns > HOUR_NS || r->cap_ns > 24 * HOUR_NS))
        return -EINVAL;
    if (c->budget.max_tokens > 1000000 || c->budget.ratio_milli > 1000000)
        return -EINVAL;
    const wsched_breaker *b = &c->breaker;
    if (b->failure_rate_pct > 100 || b->trials > 255 || b->window_calls > (1u << 23))
        return -EINVAL;
    if ((b->failure_rate_pct || b->failure_count) &&
        (b->open_ns < MS_NS || b->open_ns > HOUR_NS || b->ramp_ns > HOUR_NS ||
         b->window_ns > HOUR_NS || b->failure_count > (1u << 23)))
        return -EINVAL;
    const wsched_rate_limit *l = &c->limit;
    if (l->rate_per_s > 1000000000ull || l->mode > WSCHED_LIMIT_DELAY ||
        l->burst > (1ull << 32))
        return -EINVAL;
    const wsched_concurrency *cc = &c->concurrency;
    if (cc->reserved0 || cc->max_limit > 1000000 || cc->latency_ns > HOUR_NS ||
        (cc->initial && ((cc->max_limit && cc->initial > cc->max_limit) ||
                         cc->min_limit > cc->initial)))
        return -EINVAL;
    if (c->hedge.reserved0 || c->hedge.delay_ns > HOUR_NS || c->hedge.percentile > 99 ||
        (c->hedge.percentile && !c->hedge.delay_ns))
        return -EINVAL;
    unsigned ring = c->ring_size ? c->ring_size : 1024;
    if (ring < 2 || ring > (1u << 20) || (ring & (ring - 1)))
        return -EINVAL;
    return 0;
}

int wsched_downstream_create(wsched_downstream **out, const wsched_downstream_config *c)
{
    if (out)
        *out = NULL;
    if (!out || !c)
        return -EINVAL;
    int r = config_check(c);
    if (r)
        return r;
    struct ds_block *blk = ds_alloc(c->allocator, sizeof *blk);
    if (!blk)
        return -ENOMEM;
    memset(blk, 0, sizeof *blk);
    if (c->allocator) {
        blk->alloc = *c->allocator;
        blk->has_alloc = true;
    }
    struct wsched_downstream *ds = &blk->ds;
    if (c->allocator) {
        ds->alloc = *c->allocator;
        ds->has_alloc = true;
    }
    unsigned ring = c->ring_size ? c->ring_size : 1024;
    if (!c->dead_letter) {
        ds->ring = ds_alloc(c->allocator, sizeof *ds->ring * ring);
        if (!ds->ring) {
            ds_free(c->allocator, blk, sizeof *blk);
            return -ENOMEM;
        }
        for (unsigned i = 0; i < ring; i++)
            st(&ds->ring[i].seq, i, RLX);
        ds->ring_mask = ring - 1;
    }
    ds->magic = DS_MAGIC;
    if (c->name) {
        strncpy(ds->name, c->name, sizeof ds->name - 1);
        ds->name[sizeof ds->name - 1] = 0;
    }
    ds->retry = c->retry;
    ds->max_attempts = c->retry.max_attempts > 1 ? c->retry.max_attempts : 1;
    if (ds->max_attempts > 1 && !ds->retry.cap_ns)
        ds->retry.cap_ns = ds->retry.base_ns * 1000;
    ds->retry_any = c->retry.codes[0] == 0;
    ds->budget_max = (int64_t)c->budget.max_tokens * 1000;
    ds->budget_ratio = c->budget.ratio_milli;
    st(&ds->tokens, ds->budget_max, RLX);
    ds->brk_cfg = c->breaker;
    ds->has_breaker = c->breaker.failure_rate_pct || c->breaker.failure_count;
    if (!ds->brk_cfg.trials)
        ds->brk_cfg.trials = 1;
    if (!ds->brk_cfg.min_calls)
        ds->brk_cfg.min_calls = 1;
    if (!ds->brk_cfg.window_calls)
        ds->brk_cfg.window_calls = 100;
    ds->open_u = (uint32_t)((c->breaker.open_ns + (1u << BRK_TIME_SHIFT) - 1) >> BRK_TIME_SHIFT);
    ds->ramp_u = (uint32_t)((c->breaker.ramp_ns + (1u << BRK_TIME_SHIFT) - 1) >> BRK_TIME_SHIFT);
    if (c->limit.rate_per_s) {
        ds->gcra_t = 1000000000ull / c->limit.rate_per_s;
        uint64_t burst = c->limit.burst ? c->limit.burst : 1;
        ds->gcra_tau = ds->gcra_t * (burst - 1);
        ds->limit_mode = c->limit.mode;
    }
    if (c->concurrency.initial) {
        ds->cc_min = (uint64_t)(c->concurrency.min_limit ? c->concurrency.min_limit : 1) << 10;
        ds->cc_max = (uint64_t)(c->concurrency.max_limit ? c->concurrency.max_limit : 1000000)
                     << 10;
        ds->cc_latency = c->concurrency.latency_ns;
        st(&ds->cc_limit, (uint64_t)c->concurrency.initial << 10, RLX);
    }
    ds->hedge_delay = c->hedge.delay_ns;
    ds->hedge_pct = c->hedge.percentile;
    st(&ds->hedge_cur, c->hedge.delay_ns, RLX);
    if (ds->hedge_pct) {
        ds->hist = ds_alloc(c->allocator, sizeof *ds->hist * DS_STRIPES);
        if (!ds->hist) {
            if (ds->ring)
                ds_free(c->allocator, ds->ring, sizeof *ds->ring * ring);
            ds_free(c->allocator, blk, sizeof *blk);
            return -ENOMEM;
        }
        for (unsigned k = 0; k < DS_STRIPES; k++)
            for (unsigned j = 0; j < DS_HIST; j++)
                st(&ds->hist[k][j], 0, RLX);
    }
    ds->flight_key = c->flight_key;
    ds->flight_ctx = c->flight_ctx;
    if (c->flight_key && wsched__flight_init(ds) != 0) {
        if (ds->hist)
            ds_free(c->allocator, ds->hist, sizeof *ds->hist * DS_STRIPES);
        if (ds->ring)
            ds_free(c->allocator, ds->ring, sizeof *ds->ring * ring);
        ds_free(c->allocator, blk, sizeof *blk);
        return -ENOMEM;
    }
    ds->dead_letter = c->dead_letter;
    ds->dead_letter_ctx = c->dead_letter_ctx;
    ds->clock = c->clock;
    ds->clock_ctx = c->clock_ctx;
    ds->seed = c->seed ? c->seed : wsched_now_ns() * 0x9E3779B97F4A7C15ull + 1;
    ds->t0 = ds_now(ds);
    *out = ds;
    return 0;
}

int wsched_downstream_destroy(wsched_downstream *ds)
{
    if (!ds || ds->magic != DS_MAGIC)
        return -EINVAL;
    /* ACQUIRE: pairs with the batch's RELEASE decrement (batch.c), after
     * its jobs' last use of us. */
    if (ld(&ds->users, ACQ) != 0)
        return -EBUSY;
    struct ds_block *blk = (struct ds_block *)(void *)ds;
    const wsched_allocator *a = blk->has_alloc ? &blk->alloc : NULL;
    wsched_allocator copy = blk->alloc;
    if (a)
        a = &copy;
    wsched__flight_fini(ds);
    if (ds->hist)
        ds_free(a, ds->hist, sizeof *ds->hist * DS_STRIPES);
    ds->magic = 0;
    if (ds->ring)
        ds_free(a, ds->ring, sizeof *ds->ring * (ds->ring_mask + 1));
    ds_free(a, blk, sizeof *blk);
    return 0;
}

/* ------------------------------------------------------------- retries */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__extension__ typedef unsigned __int128 u128;

/* Uniform in [lo, hi] (wsched.h, wsched_backoff_ns). */
static uint64_t uniform(uint64_t *rng, uint64_t lo, uint64_t hi)
{
    uint64_t x = splitmix64(rng);
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo;
    if (span == UINT64_MAX)
        return x;
    return lo + (uint64_t)(((u128)x * (span + 1)) >> 64);
}

uint64_t wsched_backoff_ns(const wsched_retry *r, unsigned k, uint64_t prev_ns, uint64_t *rng)
{
    if (!r || !rng || k == 0)
        return 0;
    uint64_t cap = r->cap_ns ? r->cap_ns : r->base_ns * 1000;
    if (r->jitter == WSCHED_JITTER_DECORRELATED) {
        uint64_t prev = prev_ns ? prev_ns : r->base_ns;
        uint64_t hi = prev > UINT64_MAX / 3 ? UINT64_MAX : prev * 3;
        uint64_t d = uniform(rng, r->base_ns, hi < r->base_ns ? r->base_ns : hi);
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
        (void)splitmix64(rng); /* one draw per delay, whatever the mode */
        return t;
    case WSCHED_JITTER_EQUAL:
        return t / 2 + uniform(rng, 0, t / 2);
    default:
        return uniform(rng, 0, t);
    }
}

bool wsched__ds_retryable(const struct wsched_downstream *ds, int code)
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

/* The retry decision after attempt `attempt` of job (or key) `key` ended
 * with `code` (wsched_retry_decide): the budget learns the outcome, then
 * 0 = retry at *when (after *delay), a WSCHED_DEAD_* reason = give up,
 * -ENOENT = nothing to retry (a success or a code not retried). The
 * retry is counted here, before the caller arms its wait (resilient.c). */
int wsched__retry_decide(struct wsched_downstream *ds, uint64_t key, unsigned attempt, int code,
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
    /* The draw for the key's attempt-th retry (wsched.h, `seed`). */
    uint64_t rng = ds->seed ^ (key * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)attempt << 56);
    uint64_t d = wsched_backoff_ns(&ds->retry, attempt, *prev_delay, &rng);
    uint64_t t = wsched_now_ns() + d;
    if (deadline && t >= deadline) {
        /* No attempt is started that cannot begin before the deadline. */
        DS_COUNT(ds, deadline_cut);
        return WSCHED_DEAD_DEADLINE;
    }
    *prev_delay = d;
    *delay = d;
    *when = t;
    DS_COUNT(ds, retries);
    return 0;
}

int wsched_retry_decide(wsched_downstream *ds, uint64_t key, unsigned attempt, int status,
                        uint64_t deadline_ns, uint64_t *prev_delay_ns, uint64_t *delay_ns)
{
    if (!ds || ds->magic != DS_MAGIC || !prev_delay_ns || !delay_ns || attempt == 0)
        return -EINVAL;
    uint64_t when;
    return wsched__retry_decide(ds, key, attempt, status, deadline_ns, prev_delay_ns, delay_ns,
                                &when);
}

int wsched_budget_allows(const wsched_downstream *ds)
{
    if (!ds || ds->magic != DS_MAGIC)
        return -EINVAL;
    return ds_budget_allows(ds);
}

/* The retry budget after an attempt: a failure takes a token, a success
 * gives back ratio. A CAS loop to stay within [0, max]; a full bucket
 * after a success is the common case and costs one load. */
void wsched__ds_budget_outcome(struct wsched_downstream *ds, bool ok)
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

/* ------------------------------------------------------------- breaker */

static uint32_t time_u(const struct wsched_downstream *ds, uint64_t now)
{
    return now > ds->t0 ? (uint32_t)((now - ds->t0) >> BRK_TIME_SHIFT) : 0;
}

static uint64_t time_since(const struct wsched_downstream *ds)
{
    uint64_t now = ds_now(ds);
    return now > ds->t0 ? now - ds->t0 : 0;
}

static uint64_t brk_word(unsigned state, uint64_t ramp, unsigned epoch, unsigned out,
                         unsigned succ, uint32_t since)
{
    return (uint64_t)state | ramp | ((uint64_t)(epoch & 0x1fff) << 3) |
           ((uint64_t)out << 16) | ((uint64_t)succ << 24) | ((uint64_t)since << 32);
}

/* Per-thread draws for the ramp (not reproducible: a share, not a delay). */
static WSCHED_TLS uint64_t ramp_rng;

static bool brk_transition(struct wsched_downstream *ds, uint64_t *w, uint64_t to)
{
    if (!cas(&ds->brk, w, to, RLX)) /* B2 */
        return false;
    PROBE2(breaker_state, ds, BRK_STATE(to));
    switch (BRK_STATE(to)) {
    case WSCHED_BREAKER_OPEN: DS_COUNT(ds, breaker_opened); break;
    case WSCHED_BREAKER_HALF_OPEN: DS_COUNT(ds, breaker_half_opened); break;
    default: DS_COUNT(ds, breaker_closed); break;
    }
    return true;
}

int wsched__breaker_acquire(struct wsched_downstream *ds, uint32_t *permit)
{
    uint64_t w = ld(&ds->brk, RLX);
    for (;;) {
        unsigned state = BRK_STATE(w), epoch = BRK_EPOCH(w);
        if (likely(state == WSCHED_BREAKER_CLOSED && !(w & BRK_RAMP))) { /* B1 */
            *permit = PERMIT_VALID | epoch;
            return 0;
        }
        uint32_t now = time_u(ds, ds_now(ds));
        uint32_t elapsed = now - BRK_SINCE(w); /* mod 2^32 units: see wsched.h */
        if (state == WSCHED_BREAKER_CLOSED) { /* ramping up */
            if (elapsed >= ds->ramp_u) {
                /* The ramp is over: clear the bit (not a transition: the
                 * epoch stays; a lost race means someone else did). */
                if (cas(&ds->brk, &w, w & ~BRK_RAMP, RLX))
                    w &= ~BRK_RAMP;
                continue;
            }
            if (!ramp_rng)
                ramp_rng = (uint64_t)(uintptr_t)&ramp_rng ^ wsched_now_ns();
            if (uniform(&ramp_rng, 0, ds->ramp_u - 1) < elapsed) {
                *permit = PERMIT_VALID | epoch;
                return 0;
            }
            break;
        }
        if (state == WSCHED_BREAKER_OPEN) {
            /* Trials of an earlier half-open state still out count against
             * this one's (B3): with `trials` of them out, stay open. */
            if (elapsed < ds->open_u || BRK_OUT(w) >= ds->brk_cfg.trials)
                break;
            /* B2: open -> half-open, taking the first trial permit. */
            uint64_t to =
                brk_word(WSCHED_BREAKER_HALF_OPEN, 0, epoch + 1, BRK_OUT(w) + 1, 0, now);
            if (brk_transition(ds, &w, to)) {
                *permit = PERMIT_VALID | PERMIT_TRIAL | ((epoch + 1) & 0x1fff);
                return 0;
            }
            continue;
        }
        /* Half-open: B3. */
        if (BRK_OUT(w) + BRK_SUCC(w) >= ds->brk_cfg.trials)
            break;
        if (cas(&ds->brk, &w, w + (1ull << 16), RLX)) {
            *permit = PERMIT_VALID | PERMIT_TRIAL | epoch;
            return 0;
        }
    }
    DS_COUNT(ds, breaker_rejected);
    return WSCHED_EBREAKER;
}

/* How a final status counts: 1 success, -1 failure, 0 neither. */
static int brk_class(const struct wsched_downstream *ds, int status)
{
    if (status == 0)
        return 1;
    if (status == WSCHED_ECANCELLED || status == WSCHED_EDEADLINE ||
        status == WSCHED_EBREAKER || status == WSCHED_ELIMITED)
        return 0;
    for (unsigned k = 0; k < 8 && ds->brk_cfg.ignore_codes[k]; k++)
        if (ds->brk_cfg.ignore_codes[k] == status)
            return 0;
    return -1;
}

/* B4: the closed state's window, counted per stripe (so that a success
 * writes only its worker's line) and summed when a failure may open it.
 * A window is tagged with the epoch and the time window's number, or the
 * count window's generation (ds->win_gen); a stripe of another tag counts
 * as empty. A count window holds window_calls calls: the first failure
 * that finds it fuller starts the next generation, with itself in it. */
static uint64_t window_tag(const struct wsched_downstream *ds, unsigned epoch)
{
    uint64_t lo = ds->brk_cfg.window_ns ? time_since(ds) / ds->brk_cfg.window_ns
                                        : ld(&ds->win_gen, RLX);
    return ((uint64_t)(epoch & 0xff) << 8) | (lo & 0xff);
}

static void stripe_add(_Atomic uint64_t *sw, uint64_t tag, bool failed)
{
    uint64_t w = ld(sw, RLX), n;
    do {
        uint64_t calls = (w >> 24) & 0xffffff, fails = w & 0xffffff;
        if (w >> 48 != tag)
            calls = fails = 0;
        if (calls == 0xffffff)
            return; /* saturated (a count window is closed by a failure) */
        n = (tag << 48) | ((calls + 1) << 24) | (fails + failed);
    } while (!cas_weak(sw, &w, n, RLX));
}

static void window_sum(const struct wsched_downstream *ds, uint64_t tag, uint64_t *calls,
                       uint64_t *fails)
{
    *calls = *fails = 0;
    for (unsigned k = 0; k < DS_STRIPES; k++) {
        uint64_t w = ld(&ds->stripe[k].win, RLX);
        if (w >> 48 == tag) {
            *calls += (w >> 24) & 0xffffff;
            *fails += w & 0xffffff;
        }
    }
}

/* Count an outcome; true when the window now says open. */
static bool window_count(struct wsched_downstream *ds, unsigned epoch, bool failed)
{
    const wsched_breaker *c = &ds->brk_cfg;
    _Atomic uint64_t *sw = &ds_stripe_of(ds)->win;
    uint64_t tag = window_tag(ds, epoch);
    stripe_add(sw, tag, failed);
    if (!failed)
        return false;
    uint64_t calls, fails;
    window_sum(ds, tag, &calls, &fails);
    if (!c->window_ns && calls > c->window_calls) {
        /* Full: the next generation (one CAS wins; a loser's is the same
         * next one), and our failure counted there. */
        uint32_t g = (uint32_t)(tag & 0xff);
        uint32_t cur = ld(&ds->win_gen, RLX);
        if ((cur & 0xff) == g)
            cas(&ds->win_gen, &cur, cur + 1, RLX);
        tag = window_tag(ds, epoch);
        stripe_add(sw, tag, true);
        window_sum(ds, tag, &calls, &fails);
    }
    return (c->failure_count && fails >= c->failure_count) ||
           (c->failure_rate_pct && calls >= c->min_calls &&
            fails * 100 >= (uint64_t)c->failure_rate_pct * calls);
}

void wsched__breaker_release(struct wsched_downstream *ds, uint32_t permit, int status)
{
    if (!(permit & PERMIT_VALID) || !ds->has_breaker)
        return;
    int cls = brk_class(ds, status);
    unsigned epoch = PERMIT_EPOCH(permit);
    uint64_t w = ld(&ds->brk, RLX);
    if (!(permit & PERMIT_TRIAL)) {
        if (cls == 0 || BRK_EPOCH(w) != epoch || BRK_STATE(w) != WSCHED_BREAKER_CLOSED)
            return; /* B2: a late outcome of an older state */
        if (!window_count(ds, epoch, cls < 0))
            return;
        while (BRK_EPOCH(w) == epoch && BRK_STATE(w) == WSCHED_BREAKER_CLOSED) {
            uint64_t to = brk_word(WSCHED_BREAKER_OPEN, 0, epoch + 1, BRK_OUT(w), 0,
                                   time_u(ds, ds_now(ds)));
            if (brk_transition(ds, &w, to))
                return;
        }
        return;
    }
    /* B3: a trial's outcome. Its permit always comes back (out - 1, in
     * whatever state: out counts the trials out across states); it moves
     * the breaker only in the half-open state it was taken in (B2). */
    for (;;) {
        unsigned out = BRK_OUT(w);
        DEBUG_ASSERT(out > 0);
        if (out == 0)
            return;
        uint64_t to;
        if (cls == 0 || BRK_EPOCH(w) != epoch || BRK_STATE(w) != WSCHED_BREAKER_HALF_OPEN) {
            to = w - (1ull << 16); /* the permit back, nothing else */
            if (cas(&ds->brk, &w, to, RLX))
                return;
            continue;
        }
        if (cls < 0) {
            to = brk_word(WSCHED_BREAKER_OPEN, 0, epoch + 1, out - 1, 0, time_u(ds, ds_now(ds)));
        } else if (BRK_SUCC(w) + 1 >= ds->brk_cfg.trials) {
            to = brk_word(WSCHED_BREAKER_CLOSED, ds->ramp_u ? BRK_RAMP : 0, epoch + 1, out - 1, 0,
                          time_u(ds, ds_now(ds)));
        } else {
            to = w - (1ull << 16) + (1ull << 24);
            if (cas(&ds->brk, &w, to, RLX))
                return;
            continue;
        }
        if (brk_transition(ds, &w, to))
            return;
    }
}

int wsched_breaker_state(const wsched_downstream *ds)
{
    if (!ds || ds->magic != DS_MAGIC)
        return -EINVAL;
    return (int)BRK_STATE(ld(&ds->brk, RLX));
}

int wsched_breaker_acquire(wsched_downstream *ds, wsched_permit *permit)
{
    if (!ds || !permit || ds->magic != DS_MAGIC)
        return -EINVAL;
    *permit = 0;
    if (!ds->has_breaker) {
        *permit = PERMIT_VALID;
        return 0;
    }
    uint32_t p;
    int r = wsched__breaker_acquire(ds, &p);
    if (r == 0)
        *permit = p;
    return r;
}

int wsched_breaker_release(wsched_downstream *ds, wsched_permit permit, int status)
{
    if (!ds || ds->magic != DS_MAGIC || !(permit & PERMIT_VALID) || permit > UINT32_MAX)
        return -EINVAL;
    wsched__breaker_release(ds, (uint32_t)permit, status);
    return 0;
}

/* ------------------------------------------------- concurrency limit */

/*
 * (L1) enter: CAS inflight + 1 while below the limit's whole part; a full
 *      limit turns the job away (never waits).
 * (L2) leave: inflight - 1 (RMW), then the AIMD step on the limit by CAS:
 *      + 1/limit for a success within latency, x 0.9 for a failure or a
 *      slow one, clamped. Relaxed: the two words publish nothing but
 *      themselves; a job may see a limit a step old.
 */
bool wsched__cc_enter(struct wsched_downstream *ds)
{
    uint64_t n = ld(&ds->cc_inflight, RLX);
    for (;;) {
        if (n >= ld(&ds->cc_limit, RLX) >> 10)
            return false;
        if (cas_weak(&ds->cc_inflight, &n, n + 1, RLX)) /* L1 */
            return true;
    }
}

void wsched__cc_leave(struct wsched_downstream *ds, int status, uint64_t ns)
{
    fsub(&ds->cc_inflight, 1, RLX); /* L2 */
    if (status == WSCHED_ECANCELLED || status == WSCHED_EDEADLINE ||
        status == WSCHED_EBREAKER || status == WSCHED_ELIMITED)
        return; /* neither way: cancelled, or never called */
    bool ok = status == 0 && (!ds->cc_latency || ns <= ds->cc_latency);
    uint64_t l = ld(&ds->cc_limit, RLX), n;
    do {
        if (ok)
            n = l + ((uint64_t)1 << 20) / l; /* + 1/limit, in 1/1024ths */
        else
            n = l * 9 / 10;
        n = n < ds->cc_min ? ds->cc_min : n > ds->cc_max ? ds->cc_max : n;
        if (n == l)
            return;
    } while (!cas_weak(&ds->cc_limit, &l, n, RLX));
}

/* ---------------------------------------------------- adaptive hedging */

/*
 * (A1) a sample goes to its worker's stripe of the histogram: bucket 0 for
 *      under 1024 ns, then 2 per power of two (relaxed RMWs: statistics).
 * (A2) every 256 samples on a stripe, whoever took the 256th sums every
 *      stripe and stores the bucket holding the percentile's upper bound
 *      in hedge_cur (relaxed: a delay, read per round; a stale one only
 *      hedges a little early or late); past 8,192 samples in all it
 *      halves every bucket (RMWs, so concurrent samples are not lost).
 */
static unsigned hist_bucket(uint64_t ns)
{
    if (ns < 1024)
        return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= 10 */
    unsigned k = (e - 10) * 2 + (unsigned)((ns >> (e - 1)) & 1) + 1;
    return k < DS_HIST ? k : DS_HIST - 1;
}

static uint64_t hist_upper(unsigned k)
{
    if (k == 0)
        return 1024;
    unsigned e = (k - 1) / 2 + 10, sub = (k - 1) % 2;
    return (1ull << e) + ((uint64_t)(sub + 1) << (e - 1));
}

void wsched__hedge_sample(struct wsched_downstream *ds, uint64_t ns)
{
    unsigned s = (unsigned)(ds_stripe_of(ds) - ds->stripe);
    fadd(&ds->hist[s][hist_bucket(ns)], 1, RLX); /* A1 */
    if ((fadd(&ds->stripe[s].samples, 1, RLX) & 255) != 255)
        return;
    uint64_t sum[DS_HIST] = {0}, total = 0;
    for (unsigned k = 0; k < DS_STRIPES; k++)
        for (unsigned j = 0; j < DS_HIST; j++)
            sum[j] += ld(&ds->hist[k][j], RLX);
    for (unsigned j = 0; j < DS_HIST; j++)
        total += sum[j];
    if (total < 64)
        return;
    uint64_t want = (total * ds->hedge_pct + 99) / 100, acc = 0;
    unsigned j = 0;
    for (; j < DS_HIST - 1; j++)
        if ((acc += sum[j]) >= want)
            break;
    st(&ds->hedge_cur, hist_upper(j), RLX); /* A2 */
    if (total > 8192)
        for (unsigned k = 0; k < DS_STRIPES; k++)
            for (unsigned b = 0; b < DS_HIST; b++) {
                uint32_t v = ld(&ds->hist[k][b], RLX);
                if (v > 1)
                    fsub(&ds->hist[k][b], v / 2, RLX);
            }
}

/* ---------------------------------------------------------- rate limit */

int64_t wsched__limit_acquire(struct wsched_downstream *ds, uint64_t now, uint64_t max_delay)
{
    if (!ds->gcra_t)
        return 0;
    uint64_t tat = ld(&ds->tat, RLX);
    for (;;) {
        uint64_t t = tat > now ? tat : now;
        /* The cell conforms when it is due no later than now + tau. */
        uint64_t wait = t > now + ds->gcra_tau ? t - now - ds->gcra_tau : 0;
        if (wait && (ds->limit_mode == WSCHED_LIMIT_REJECT || (max_delay && wait > max_delay) ||
                     wait > (uint64_t)INT64_MAX)) {
            DS_COUNT(ds, limited);
            return WSCHED_ELIMITED;
        }
        if (cas_weak(&ds->tat, &tat, t + ds->gcra_t, RLX)) { /* G1 */
            if (wait)
                DS_COUNT(ds, delayed);
            return (int64_t)wait;
        }
    }
}

int64_t wsched_limit_acquire(wsched_downstream *ds, uint64_t now_ns, uint64_t max_delay_ns)
{
    if (!ds || ds->magic != DS_MAGIC)
        return -EINVAL;
    return wsched__limit_acquire(ds, now_ns ? now_ns : ds_now(ds), max_delay_ns);
}

/* --------------------------------------------------------- dead letters */

void wsched__ds_dead_letter(struct wsched_downstream *ds, const wsched_dead_letter *dl)
{
    PROBE3(dead_letter, dl->batch, dl->index, dl->reason);
    if (ds->dead_letter) {
        DS_COUNT(ds, dead_letters);
        ds->dead_letter(ds->dead_letter_ctx, dl);
        return;
    }
    uint64_t pos = ld(&ds->ring_head, RLX);
    for (;;) {
        struct ds_cell *c = &ds->ring[pos & ds->ring_mask];
        uint64_t seq = ld(&c->seq, ACQ); /* Q1: the consumer's free */
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (cas_weak(&ds->ring_head, &pos, pos + 1, RLX)) {
                c->dl = *dl;
                st(&c->seq, pos + 1, REL); /* Q1: the letter before its turn */
                DS_COUNT(ds, dead_letters);
                return;
            }
        } else if (dif < 0) {
            DS_COUNT(ds, dead_dropped); /* full */
            return;
        } else {
            pos = ld(&ds->ring_head, RLX);
        }
    }
}

int wsched_dead_letters_drain(wsched_downstream *ds, wsched_dead_letter *out, size_t n)
{
    if (!ds || ds->magic != DS_MAGIC || (!out && n))
        return -EINVAL;
    if (!ds->ring)
        return 0;
    size_t got = 0;
    uint64_t pos = ld(&ds->ring_tail, RLX);
    while (got < n && got < INT32_MAX) {
        struct ds_cell *c = &ds->ring[pos & ds->ring_mask];
        uint64_t seq = ld(&c->seq, ACQ); /* Q1: the producer's letter */
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            if (cas_weak(&ds->ring_tail, &pos, pos + 1, RLX)) {
                out[got++] = c->dl;
                st(&c->seq, pos + ds->ring_mask + 1, REL); /* Q1: free for the next lap */
                pos++;
            }
        } else if (dif < 0) {
            break; /* empty (or its producer is between CAS and store) */
        } else {
            pos = ld(&ds->ring_tail, RLX);
        }
    }
    return (int)got;
}

/* ---------------------------------------------------------------- stats */

int wsched_downstream_get_stats(const wsched_downstream *ds, wsched_downstream_stats *out,
                                size_t size)
{
    if (!ds || !out || ds->magic != DS_MAGIC)
        return -EINVAL;
    wsched_downstream_stats s;
    memset(&s, 0, sizeof s);
    for (unsigned k = 0; k < DS_STRIPES; k++) {
#define X(name) s.name += ld(&ds->stripe[k].name, RLX);
        DS_COUNTERS(X)
#undef X
    }
    uint64_t rejected = 0, retried = 0;
    for (unsigned k = 0; k < DS_STRIPES; k++) {
        rejected += ld(&ds->stripe[k].job_rejected, RLX);
        retried += ld(&ds->stripe[k].retry_attempts, RLX);
    }
    s.attempts = s.jobs - rejected - s.joined + s.flight_handovers + retried + s.hedges;
    s.budget_milli = ld(&ds->tokens, RLX);
    s.concurrency_limit = ld(&ds->cc_limit, RLX) >> 10;
    s.in_flight = ld(&ds->cc_inflight, RLX);
    s.hedge_delay_ns = ds_hedge_delay((struct wsched_downstream *)(uintptr_t)ds);
    return wsched__copy_out(out, size, &s, sizeof s, sizeof s);
}
