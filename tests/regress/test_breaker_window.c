/*
 * The breaker's rate rule over a window that has just begun (breaker.c
 * B4). A count window of 200 calls used to start empty, so the rate rule
 * decided on its first min_calls calls: with 20 % failures, 50 % and
 * min_calls 20, some window's first 20 calls held 10 failures within
 * 10^6 calls, and the breaker opened on a healthy downstream (found by
 * the gateway's stalling-backend run: it opened on a 5 % stall rate). The
 * rate is now taken over a sliding window (the current one and the share
 * of the one before that a sliding window still holds). Checked by hand
 * (wsched_breaker_acquire/release, one thread, a fake clock): 20 %
 * failures never open it, in count and in time windows; 70 % do; and a
 * burst of failures after a long healthy run opens it within a window.
 */
#include <errno.h>
#include <stdatomic.h>

#include "check.h"

static _Atomic uint64_t fake_now = 1000000000ull;
static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now);
}

static uint64_t lcg = 12345;
static unsigned draw100(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((lcg >> 33) % 100);
}

/* Calls with `pct` % failures, 1 us apart; returns the call at which the
 * breaker opened (0: it did not). */
static long run(wsched_downstream *ds, long calls, unsigned pct)
{
    for (long k = 1; k <= calls; k++) {
        atomic_fetch_add(&fake_now, 1000);
        wsched_permit p;
        int r = wsched_breaker_acquire(ds, &p);
        if (r == WSCHED_EBREAKER)
            return k;
        CHECK_OK(r);
        CHECK_OK(wsched_breaker_release(ds, p, draw100() < pct ? -EIO : 0));
    }
    return 0;
}

static wsched_downstream *make(uint64_t window_ns)
{
    wsched_downstream_config c = {
        .breaker = {.failure_rate_pct = 50, .min_calls = 20, .window_calls = 200,
                    .window_ns = window_ns, .open_ns = 3600ull * 1000000000ull, .trials = 1},
        .clock = fake_clock,
    };
    wsched_downstream *ds = NULL;
    CHECK_OK(wsched_downstream_create(&ds, &c));
    return ds;
}

int main(void)
{
    const long n = 1000000 / check_slow();
    for (int timed = 0; timed < 2; timed++) {
        uint64_t window = timed ? 1000000 : 0; /* 1 ms: ~1,000 calls */
        wsched_downstream *ds = make(window);
        CHECK_EQ(run(ds, n, 20), 0); /* healthy: never opens */
        /* A burst: every call fails from now on; opens within a window
         * (the first failure that makes the sliding rate reach 50 %). */
        long at = run(ds, 5000, 100);
        CHECK(at > 0 && at <= (timed ? 1100 : 210));
        CHECK_EQ(wsched_breaker_state(ds), WSCHED_BREAKER_OPEN);
        printf("  %s window: 20 %% failures over %ld calls kept it closed; a burst opened it "
               "after %ld calls\n", timed ? "time" : "count", n, at);
        CHECK_OK(wsched_downstream_destroy(ds));

        ds = make(window);
        CHECK(run(ds, n, 70) > 0); /* unhealthy: opens */
        CHECK_OK(wsched_downstream_destroy(ds));
    }
    puts("test_breaker_window: ok");
    return 0;
}
