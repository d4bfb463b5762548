/*
 * A searcher that cancels its park must still wake a worker for the work
 * it does not take (idle.c K6). Found by test_post's test_run_stealable,
 * which hung in about 1 run of 20 under load: two posts arrived while the
 * only searcher was on its way to park, so both skipped their wake-ups
 * (N2: `searching` > 0); the searcher's re-scan (K2) saw them, cancelled
 * its park and took one; the other stayed in an inbox, with the second
 * worker asleep and nobody searching, until a busy worker finished.
 *
 * Built against the library's sources with WSCHED_DEBUG (wsched_debug): a
 * hook at the point where a searching worker starts to park ("K0-searching",
 * before K1) holds it there while the test posts two jobs that each wait
 * (bounded) for the other to start, with the other worker asleep. Both can
 * finish only if each runs on its own worker: before K6 the second was
 * never started while the first waited (the bound fired every round).
 */
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"

extern void (*wsched__debug_hook)(const char *label);

static wsched_pool *pool;
static _Atomic int armed, at_hook, posted, started;

static void hook(const char *label)
{
    if (strcmp(label, "K0-searching") != 0)
        return;
    int one = 1;
    if (!atomic_compare_exchange_strong(&armed, &one, 0))
        return;
    atomic_store(&at_hook, 1);
    while (!atomic_load(&posted)) /* the test posts both jobs meanwhile */
        sched_yield();
}

static void stats(wsched_pool_stats *st) { CHECK_OK(wsched_pool_get_stats(pool, st, sizeof *st)); }

/* Each of the two waits for the other to start: a bound, not a
 * synchronisation. Returns 0 when both ran at once, 1 if the bound fired. */
static int pair_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    atomic_fetch_add(&started, 1);
    uint64_t until = wsched_now_ns() + 3000000000ull;
    while (atomic_load(&started) < 2 && wsched_now_ns() < until)
        sched_yield();
    return atomic_load(&started) < 2;
}

int main(void)
{
    check_watchdog(120);
    wsched__debug_hook = hook;
    long rounds = check_scale(20);
    if (rounds < 3)
        rounds = 3;
    pool = check_pool(2);
    for (long r = 0; r < rounds; r++) {
        wsched_pool_stats st;
        /* Both workers asleep (or on the way, past their re-scan). */
        do {
            sched_yield();
            stats(&st);
        } while (st.parked < 2);
        atomic_store(&at_hook, 0);
        atomic_store(&posted, 0);
        atomic_store(&started, 0);
        atomic_store(&armed, 1);
        /* One job wakes one worker, which runs it, searches, finds
         * nothing and starts to park: the hook holds it there, still
         * counted in `searching`; the other worker stays asleep. */
        alignas(64) wsched_job z = WSCHED_JOB_INIT;
        CHECK_OK(wsched_post(pool, &z, common_nop_job, NULL));
        while (!atomic_load(&at_hook))
            sched_yield();
        CHECK_OK(wsched_job_wait(&z, -1));
        alignas(64) wsched_job a = WSCHED_JOB_INIT, b = WSCHED_JOB_INIT;
        CHECK_OK(wsched_post(pool, &a, pair_job, NULL)); /* N2 sees the searcher */
        CHECK_OK(wsched_post(pool, &b, pair_job, NULL));
        atomic_store(&posted, 1);
        CHECK_OK(wsched_job_wait(&a, -1));
        CHECK_OK(wsched_job_wait(&b, -1));
        int sa, sb;
        CHECK_OK(wsched_job_status(&a, &sa));
        CHECK_OK(wsched_job_status(&b, &sb));
        if (sa || sb)
            fprintf(stderr, "round %ld: a job waited alone, the other worker asleep\n", r);
        CHECK_EQ(sa, 0);
        CHECK_EQ(sb, 0);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_park_cancel_wake: %ld rounds, ok\n", rounds);
    return 0;
}
