/*
 * A downstream's circuit breaker (wsched.h, wsched_breaker): one word of
 * state (downstream.h: BRK_*) and, while closed, a window counted per
 * worker stripe. Each word publishes nothing but itself, so relaxed
 * atomics; what each CAS decides is argued here:
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
 *       count window or epoch) counts as an empty window. The rate rule
 *       weighs in the window before, by the share of it that a sliding
 *       window of the same length would still hold: each stripe keeps two
 *       windows, by the tag's parity.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "downstream.h"
#include "probes.h"

static uint32_t time_u(const struct downstream *ds, uint64_t now)
{
    return now > ds->t0 ? (uint32_t)((now - ds->t0) >> BRK_TIME_SHIFT) : 0;
}

static uint64_t time_since(const struct downstream *ds)
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

static bool brk_transition(struct downstream *ds, uint64_t *w, uint64_t to)
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

int wsched__breaker_acquire(struct downstream *ds, uint32_t *permit)
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
            if (ds_uniform(&ramp_rng, 0, ds->ramp_u - 1) < elapsed) {
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
static int brk_class(const struct downstream *ds, int status)
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
static uint64_t window_tag(const struct downstream *ds, unsigned epoch)
{
    uint64_t lo = ds->brk_cfg.window_ns ? time_since(ds) / ds->brk_cfg.window_ns
                                        : ld(&ds->win_gen, RLX);
    return ((uint64_t)(epoch & 0xff) << 8) | (lo & 0xff);
}

static void stripe_add(struct ds_stripe *st_, uint64_t tag, bool failed)
{
    _Atomic uint64_t *sw = &st_->win[tag & 1];
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

static void window_sum(const struct downstream *ds, uint64_t tag, uint64_t *calls,
                       uint64_t *fails)
{
    *calls = *fails = 0;
    for (unsigned k = 0; k < DS_STRIPES; k++) {
        uint64_t w = ld(&ds->stripe[k].win[tag & 1], RLX);
        if (w >> 48 == tag) {
            *calls += (w >> 24) & 0xffffff;
            *fails += w & 0xffffff;
        }
    }
}

/* The window before tag's, in the same epoch (the tag's low byte wraps). */
static uint64_t prev_tag(uint64_t tag)
{
    return (tag & 0xff00) | ((tag - 1) & 0xff);
}

/* The part of the window before the current one that a sliding window
 * ending now still holds, in 1/1024ths: the current window's remaining
 * share of its calls or of its time. */
static uint64_t prev_share(const struct downstream *ds, uint64_t calls)
{
    const wsched_breaker *c = &ds->brk_cfg;
    if (c->window_ns) {
        uint64_t into = time_since(ds) % c->window_ns;
        return (uint64_t)(((ds_u128)(c->window_ns - into) << 10) / c->window_ns);
    }
    return calls >= c->window_calls ? 0 : ((c->window_calls - calls) << 10) / c->window_calls;
}

/* Count an outcome; true when the window now says open. */
static bool window_count(struct downstream *ds, unsigned epoch, bool failed)
{
    const wsched_breaker *c = &ds->brk_cfg;
    struct ds_stripe *sw = ds_stripe_of(ds);
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
    if (c->failure_count && fails >= c->failure_count)
        return true;
    if (!c->failure_rate_pct)
        return false;
    /* The rate over the sliding window: ours, and the share of the one
     * before (a window whose start alone would otherwise decide on its
     * first min_calls calls, a sample that small). */
    uint64_t pc, pf, share = prev_share(ds, calls);
    window_sum(ds, prev_tag(tag), &pc, &pf);
    uint64_t calls_w = (calls << 10) + pc * share, fails_w = (fails << 10) + pf * share;
    return calls_w >= ((uint64_t)c->min_calls << 10) &&
           fails_w * 100 >= (uint64_t)c->failure_rate_pct * calls_w;
}

void wsched__breaker_release(struct downstream *ds, uint32_t permit, int status)
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

int wsched_breaker_state(const wsched_downstream *h)
{
    struct downstream *ds;
    int r = ds_of(h, &ds);
    if (r)
        return r;
    return (int)BRK_STATE(ld(&ds->brk, RLX));
}

int wsched_breaker_acquire(wsched_downstream *h, wsched_permit *permit)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    if (!permit)
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

int wsched_breaker_release(wsched_downstream *h, wsched_permit permit, int status)
{
    struct downstream *ds;
    int e = ds_of(h, &ds);
    if (e)
        return e;
    if (!(permit & PERMIT_VALID) || permit > UINT32_MAX)
        return -EINVAL;
    wsched__breaker_release(ds, (uint32_t)permit, status);
    return 0;
}
