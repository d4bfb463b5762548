/* The timing wheel: filing, advancing the clock, the next due tick. See
 * timer.h for the layout and the precision argument. */
#include "timer.h"

#include <string.h>

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ns)
{
    memset(w, 0, sizeof *w);
    w->clk = now_ns >> TW_TICK_SHIFT;
    w->next = UINT64_MAX;
}

/* The tick at which bucket `idx` of level `lvl` next comes round after the
 * clock. */
static inline uint64_t bucket_tick(uint64_t clk, unsigned lvl, unsigned k)
{
    unsigned s = TW_LVL_SHIFT(lvl);
    return ((clk >> s) + k) << s;
}

/* The earliest tick of a filed timer, from the occupancy masks: per level,
 * the first occupied bucket after the clock's position (1..63 buckets on:
 * filing keeps every timer within 63 buckets of the clock, and the clock
 * never passes a bucket that holds timers). */
static uint64_t scan_next(const struct timer_wheel *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned lvl = 0; lvl < TW_LEVELS; lvl++) {
        uint64_t m = w->occupied[lvl];
        if (!m)
            continue;
        unsigned s = TW_LVL_SHIFT(lvl);
        unsigned from = (unsigned)(((w->clk >> s) + 1) & TW_MASK);
        /* Rotate so that bit 0 is the bucket right after the clock's. */
        uint64_t r = from ? (m >> from) | (m << (TW_SIZE - from)) : m;
        unsigned k = (unsigned)__builtin_ctzll(r) + 1;
        uint64_t tick = bucket_tick(w->clk, lvl, k);
        if (tick < best)
            best = tick;
    }
    return best;
}

/* The requested time in ticks, rounded up (never early). */
static inline uint64_t due_tick(uint64_t due_ns)
{
    const uint64_t round = (1ull << TW_TICK_SHIFT) - 1;
    return due_ns > UINT64_MAX - round ? UINT64_MAX >> TW_TICK_SHIFT
                                       : (due_ns + round) >> TW_TICK_SHIFT;
}

bool timer_wheel_file(struct timer_wheel *w, struct timer *t)
{
    uint64_t e = due_tick(t->due_ns);
    if (e <= w->clk)
        return false; /* due already: the caller runs it */
    if (w->target && e > w->target) {
        /* Armed from a callback, due after this advance: filed when the
         * clock has reached the target (timer.h). */
        t->bucket = TW_DEFERRED;
        t->next = w->deferred;
        if (t->next)
            t->next->pprev = &t->next;
        w->deferred = t;
        t->pprev = &w->deferred;
        w->armed++;
        return true;
    }
    unsigned lvl = 0, s = 0;
    uint64_t slot;
    for (;; lvl++) {
        s = TW_LVL_SHIFT(lvl);
        /* Levels below TW_MOVE_LEVEL: e rounded up to its granule (late by
         * under 64 ticks). From it up: the granule holding e, which comes
         * round at or before e: the timer then moves a level lower. */
        slot = (e >> s) + (lvl < TW_MOVE_LEVEL && (e & ((1ull << s) - 1)) != 0);
        if (slot - (w->clk >> s) <= TW_MASK)
            break;
        if (lvl == TW_LEVELS - 1) {
            /* Past the last window: its far end, filed again from there. */
            slot = (w->clk >> s) + TW_MASK;
            break;
        }
    }
    unsigned b = lvl * TW_SIZE + (unsigned)(slot & TW_MASK);
    t->bucket = b;
    t->next = w->bucket[b];
    if (t->next)
        t->next->pprev = &t->next;
    w->bucket[b] = t;
    t->pprev = &w->bucket[b];
    w->occupied[lvl] |= 1ull << (b & TW_MASK);
    w->armed++;
    uint64_t tick = slot << s;
    if (tick < w->next)
        w->next = tick;
    return true;
}

/* Run every bucket that comes round at tick `t` (the clock is t). */
static size_t run_tick(struct timer_wheel *w, uint64_t t,
                       void (*fire)(void *ctx, struct timer *t), void *ctx)
{
    size_t n = 0;
    for (unsigned lvl = 0; lvl < TW_LEVELS; lvl++) {
        unsigned s = TW_LVL_SHIFT(lvl);
        if (lvl && (t & ((1ull << s) - 1)))
            break; /* level lvl turns only at multiples of its granule */
        unsigned idx = (unsigned)((t >> s) & TW_MASK);
        if (!(w->occupied[lvl] & (1ull << idx)))
            continue;
        /* Detach the whole list first: fire may file new timers (never
         * into this bucket: they are due after t). */
        unsigned b = lvl * TW_SIZE + idx;
        struct timer *list = w->bucket[b];
        w->bucket[b] = NULL;
        w->occupied[lvl] &= ~(1ull << idx);
        while (list) {
            struct timer *x = list;
            list = x->next;
            if (list)
                list->pprev = &list; /* keeps timer_cancel of a later one sane */
            x->next = NULL;
            x->pprev = NULL;
            w->armed--;
            if (due_tick(x->due_ns) > t && timer_wheel_file(w, x)) {
                /* Its granule came round before its tick: filed again, a
                 * level lower (or, past the last window, further on). */
                w->refiled++;
                continue;
            }
            DEBUG_ASSERT(fire); /* advance(NULL) only on a wheel with no timer */
            fire(ctx, x);
            n++;
        }
    }
    return n;
}

size_t timer_wheel_advance(struct timer_wheel *w, uint64_t now_ns,
                           void (*fire)(void *ctx, struct timer *t), void *ctx)
{
    uint64_t target = now_ns >> TW_TICK_SHIFT; /* ticks fully reached */
    size_t n = 0;
    DEBUG_ASSERT(w->target == 0); /* not re-entered from a callback */
    w->target = target;
    while (w->next <= target) {
        uint64_t t = w->next;
        if (t > w->clk)
            w->clk = t;
        n += run_tick(w, t, fire, ctx);
        w->next = scan_next(w);
    }
    if (target > w->clk)
        w->clk = target;
    w->target = 0;
    /* File what callbacks armed for later, relative to the new clock. */
    while (w->deferred) {
        struct timer *x = w->deferred;
        w->deferred = x->next;
        if (w->deferred)
            w->deferred->pprev = &w->deferred;
        x->next = NULL;
        x->pprev = NULL;
        w->armed--;
        bool filed = timer_wheel_file(w, x);
        DEBUG_ASSERT(filed); /* due after the old target, so after clk */
        (void)filed;
    }
    return n;
}

uint64_t timer_wheel_next_due(const struct timer_wheel *w)
{
    /* Fresh from the masks: `next` may be early after cancels. */
    uint64_t t = scan_next(w);
    return t == UINT64_MAX ? UINT64_MAX : t << TW_TICK_SHIFT;
}
