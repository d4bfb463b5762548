/*
 * The timing wheel (src/timer.h) against a reference: random arms over
 * every level's range (and past the last one), cancels, re-arms from
 * inside the fire callback, and clock moves from one tick to hours. Checks
 * that every armed, uncancelled timer fires exactly once, never early and
 * under 64 ticks late (timer.h: levels 0-2 round up, higher levels move
 * their timers down), that each is filed again at most once per level,
 * that next_due is exactly the earliest bucket, and that an idle wheel
 * reports nothing due.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "timer.h"

enum { N = 4096 };

struct tt {
    struct timer t;
    int armed;        /* reference: armed and not yet fired or cancelled */
    uint64_t due;     /* ns */
    uint64_t armed_at; /* the wheel's clock (ns) when armed */
    unsigned fired;
};

static struct tt T[N];
static struct timer_wheel W;
static uint64_t now, prev_now; /* this advance's time, the previous one's */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static long fired_total, rearmed;
static int draining; /* no re-arming from callbacks */
static long far_armed; /* armed past the last level's window */

static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* The latest tick at which t may fire: its due tick, plus under one
 * granule of the highest level that rounds up (64 ticks). */
static uint64_t latest_tick(const struct tt *x)
{
    uint64_t e = (x->due + 1023) >> TW_TICK_SHIFT;
    return e + (1u << TW_LVL_SHIFT(TW_MOVE_LEVEL - 1)) - 1;
}

static uint64_t pick_delay(void)
{
    switch (rnd() % 6) {
    case 0: return rnd() % 100000;                /* level 0-1 */
    case 1: return rnd() % 5000000;               /* to 5 ms */
    case 2: return rnd() % 300000000;             /* to 300 ms */
    case 3: return rnd() % 20000000000ull;        /* to 20 s */
    case 4: return rnd() % 20000000000000ull;     /* to 5.5 h: past the last level */
    default: return 1 + rnd() % 2048;             /* a tick or two */
    }
}

static void arm(struct tt *x, uint64_t at)
{
    x->due = at;
    x->armed_at = now;
    if (timer_arm(&W, &x->t, at)) {
        x->armed = 1;
        uint64_t d = ((at + 1023) >> TW_TICK_SHIFT) - (now >> TW_TICK_SHIFT);
        if (d >> TW_LVL_SHIFT(TW_LEVELS - 1) >= 62)
            far_armed++;
    } else {
        /* Due already: only when at is not after the wheel's clock. */
        CHECK((at + 1023) >> TW_TICK_SHIFT <= W.clk);
        x->fired++;
    }
}

static void on_fire(void *ctx, struct timer *t)
{
    (void)ctx;
    struct tt *x = (struct tt *)t; /* t is the first member */
    CHECK(x->armed);
    CHECK(!timer_armed(t));
    /* The wheel's clock is the tick being run: never before the due tick,
     * never past the latest (the precision bound). */
    uint64_t e = (x->due + 1023) >> TW_TICK_SHIFT;
    if (W.clk < e || W.clk > latest_tick(x)) {
        fprintf(stderr, "fired at tick %" PRIu64 ", due tick %" PRIu64 ", latest %" PRIu64
                        " (armed at %" PRIu64 " ns for %" PRIu64 ")\n",
                W.clk, e, latest_tick(x), x->armed_at, x->due);
        abort();
    }
    if (now < x->due) {
        fprintf(stderr, "fired early: due %" PRIu64 ", now %" PRIu64 "\n", x->due, now);
        abort();
    }
    /* Not late: the previous advance did not reach its latest tick. */
    uint64_t latest_ns = latest_tick(x) << TW_TICK_SHIFT;
    if (prev_now >= latest_ns) {
        fprintf(stderr, "fired late: due %" PRIu64 " (armed at %" PRIu64 "), latest %" PRIu64
                        ", previous advance already at %" PRIu64 "\n",
                x->due, x->armed_at, latest_ns, prev_now);
        fprintf(stderr, "bucket %u (level %u idx %u), clk %" PRIu64 ", now %" PRIu64 "\n", t->bucket, t->bucket >> 6, t->bucket & 63, W.clk, now);
        abort();
    }
    x->armed = 0;
    x->fired++;
    fired_total++;
    /* Re-arm some from inside the callback, others cancel a neighbour. */
    uint64_t r = draining ? 7 : rnd() % 8;
    if (r == 0) {
        rearmed++;
        arm(x, now + pick_delay());
    } else if (r == 1) {
        struct tt *y = &T[rnd() % N];
        if (y->armed) {
            timer_cancel(&W, &y->t);
            y->armed = 0;
        }
    }
}

static void advance_to(uint64_t t)
{
    prev_now = now;
    now = t;
    timer_wheel_advance(&W, now, on_fire, NULL);
}

int main(void)
{
    check_watchdog(120);
    now = prev_now = 1000000000ull; /* an arbitrary start */
    timer_wheel_init(&W, now);
    CHECK_EQ(timer_wheel_next_due(&W), UINT64_MAX);
    for (int i = 0; i < N; i++)
        timer_init(&T[i].t);

    long rounds = check_scale(400000);
    for (long k = 0; k < rounds; k++) {
        struct tt *x = &T[rnd() % N];
        switch (rnd() % 4) {
        case 0: /* arm (or re-arm: cancel first) */
            if (x->armed) {
                timer_cancel(&W, &x->t);
                x->armed = 0;
            }
            arm(x, now + pick_delay());
            break;
        case 1: /* cancel */
            timer_cancel(&W, &x->t); /* a no-op when not armed */
            x->armed = 0;
            break;
        default: { /* move the clock: mostly small steps, some jumps */
            uint64_t step = rnd() % 16 ? rnd() % 200000 : pick_delay();
            advance_to(now + step);
        }
        }
        if (k % 1024 == 0) {
            /* next_due is the earliest bucket: nothing fires before it,
             * something (or a refiled far timer) at it. */
            size_t armed = 0;
            for (int i = 0; i < N; i++)
                armed += (size_t)T[i].armed;
            CHECK_EQ(W.armed, armed);
            uint64_t nd = timer_wheel_next_due(&W);
            if (armed == 0)
                CHECK_EQ(nd, UINT64_MAX);
            else {
                CHECK(nd != UINT64_MAX && nd > now - (now & 1023));
                long before = fired_total;
                if (nd - 1 > now) {
                    prev_now = now, now = nd - 1;
                    timer_wheel_advance(&W, now, on_fire, NULL);
                    CHECK_EQ(fired_total, before); /* nothing before it */
                }
            }
        }
    }
    /* Drain: everything fires, exactly once. */
    draining = 1;
    advance_to(now + 30000000000000ull);
    advance_to(now + 30000000000000ull);
    for (int i = 0; i < N; i++)
        CHECK(!T[i].armed);
    CHECK_EQ(W.armed, 0);
    CHECK_EQ(timer_wheel_next_due(&W), UINT64_MAX);
    /* Each timer is filed again at most once per level on its way down
     * (and, past the last window, a few times more). */
    CHECK(W.refiled <= (size_t)(TW_LEVELS * (fired_total + far_armed)));
    printf("test_timer: %ld rounds, %ld fired (%ld re-armed from a callback, %ld past the last "
           "level, %zu refiled), ok\n",
           rounds, fired_total, rearmed, far_armed, W.refiled);
    return 0;
}
