/*
 * A hierarchical timing wheel (Varghese and Lauck, SOSP 1987) in the
 * non-cascading layout the Linux kernel adopted in 2016: a timer is filed
 * once, in the level whose granularity suits its remaining time, and never
 * moves between levels. Issue 9 gives each worker one, mutated only by its
 * owner (cross-thread arming and cancelling go through the owner); this
 * module is the data structure alone, with no atomics and no locks.
 *
 * Layout. Time is counted in ticks of 1024 ns (TW_TICK_SHIFT). Level L has
 * 64 buckets of 8^L ticks each (granularity shift 3L), so level 0 spans 64
 * ticks (65 us) at one tick, level 1 half a millisecond at 8 ticks, level
 * 2 4 ms at 64 ticks (65 us), level 3 33 ms, ... level 9 2.4 hours at 2.3
 * minutes. A timer due at tick e is filed in the lowest level L whose
 * window reaches it: with c the wheel's clock and s = 3L, its granule
 * g = e >> s must satisfy g - (c >> s) <= 63. Bucket g & 63 of level L
 * then comes round at tick g << s, at or before e.
 *
 * Precision: never early (e is the requested time rounded up to a tick),
 * and late by under 64 ticks (65 us), whatever the delay. Levels 0-2
 * (granules of 1, 8 and 64 ticks; delays to about 4 ms) file e rounded up
 * to its granule, as the kernel's wheel does at every level. Levels from
 * TW_MOVE_LEVEL up file the granule holding e instead, which comes round
 * at or before e; a timer found there that is due later is filed again,
 * with under one granule left, so a level lower, until it lands below
 * TW_MOVE_LEVEL. (Rounding up everywhere fires up to 13% of the delay
 * late: 4 ms on a 30 ms sleep; moving down everywhere would be exact but
 * moves every timer up to 9 times.) A timer moves at most once per level
 * from 3 up: timeouts are mostly cancelled before, sleeps pay a move or
 * two. Timers beyond the last level's window are filed at its far end and
 * moved on the same way. A timer armed during an advance (from a
 * fire callback) that is due after the advance's target is filed once the
 * clock has reached the target, not relative to the earlier tick being
 * run: after a long catch-up it would otherwise land in a level as coarse
 * as the gap.
 *
 * Costs. Insert: a level choice (a loop over at most 10 levels, usually
 * 2-3), a list push, a bit set. Cancel: a list unlink, maybe a bit clear.
 * Expiry: per due bucket, a bit clear and a walk of its list, and per
 * timer at most one move per level above 0. Finding the
 * next due tick: per level, one rotate and one count-trailing-zeros of the
 * level's 64-bit occupancy mask. Nothing allocates: the caller owns the
 * timer records (issue 9: one per job, allocated with the batch).
 */
#ifndef WSCHED_TIMER_H
#define WSCHED_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "debug.h"

#define TW_TICK_SHIFT 10 /* a tick is 1024 ns */
#define TW_LEVELS 10
#define TW_BITS 6
#define TW_SIZE (1u << TW_BITS) /* buckets per level */
#define TW_MASK (TW_SIZE - 1)
#define TW_LVL_SHIFT(l) (3u * (l)) /* granularity 8^l ticks */
#define TW_MOVE_LEVEL 3 /* levels from here move their timers down (timer.h) */

struct timer {
    struct timer *next;   /* bucket list */
    struct timer **pprev; /* the pointer that points at us; NULL: not armed */
    uint64_t due_ns;      /* the time asked for */
    uint32_t bucket;      /* level * TW_SIZE + index, while armed */
};

#define TW_DEFERRED (TW_LEVELS * TW_SIZE) /* t->bucket of a timer in `deferred` */

struct timer_wheel {
    uint64_t clk;  /* ticks: every bucket due at or before clk was run */
    uint64_t next; /* earliest tick with a filed timer; UINT64_MAX: none */
    size_t armed;
    uint64_t target;        /* during an advance: its target tick, else 0 */
    size_t refiled;         /* timers moved down (or on) when their bucket came (tests) */
    struct timer *deferred; /* armed during an advance, due after target */
    uint64_t occupied[TW_LEVELS]; /* bit i: bucket i of the level holds timers */
    struct timer *bucket[TW_LEVELS * TW_SIZE];
};

#define timer_wheel_init wsched__timer_wheel_init
#define timer_wheel_advance wsched__timer_wheel_advance
#define timer_wheel_next_due wsched__timer_wheel_next_due
#define timer_wheel_file wsched__timer_wheel_file

/* An empty wheel whose clock reads now_ns. */
void timer_wheel_init(struct timer_wheel *w, uint64_t now_ns);

/* File t (not armed) for due_ns: false if due_ns is already due at the
 * wheel's clock (the caller runs it now instead). Internal: timer_arm. */
bool timer_wheel_file(struct timer_wheel *w, struct timer *t);

/* Move the clock to now_ns, calling fire(ctx, t) once for every timer due
 * by then, earliest bucket first (the order within a bucket is not
 * defined). fire may arm and cancel timers, this one included. Returns the
 * number fired. */
size_t timer_wheel_advance(struct timer_wheel *w, uint64_t now_ns,
                           void (*fire)(void *ctx, struct timer *t), void *ctx);

/* The earliest time (ns) at which a filed timer is due, rounded up to its
 * bucket; UINT64_MAX when none is armed: what a parked worker sleeps
 * until. */
uint64_t timer_wheel_next_due(const struct timer_wheel *w);

static inline void timer_init(struct timer *t)
{
    t->next = NULL;
    t->pprev = NULL;
    t->due_ns = 0;
    t->bucket = 0;
}

static inline bool timer_armed(const struct timer *t) { return t->pprev != NULL; }

/* Arm t (not armed) for due_ns. False, and t stays unarmed, when due_ns
 * is not after the wheel's clock: it is due already. */
static inline bool timer_arm(struct timer_wheel *w, struct timer *t, uint64_t due_ns)
{
    DEBUG_ASSERT(!timer_armed(t));
    t->due_ns = due_ns;
    return timer_wheel_file(w, t);
}

/* Disarm t if armed (a no-op otherwise). O(1). The wheel's `next` may
 * then be early: advance just finds the bucket empty. */
static inline void timer_cancel(struct timer_wheel *w, struct timer *t)
{
    if (!t->pprev)
        return;
    if (t->next)
        t->next->pprev = t->pprev;
    *t->pprev = t->next;
    if (t->bucket != TW_DEFERRED && !w->bucket[t->bucket]) {
        unsigned lvl = t->bucket >> TW_BITS;
        w->occupied[lvl] &= ~(1ull << (t->bucket & TW_MASK));
    }
    t->pprev = NULL;
    t->next = NULL;
    w->armed--;
}

#endif
