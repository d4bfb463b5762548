/*
 * A flight handed over to a joiner whose batch is cancelled before the
 * joiner runs (CI, stop 15: test_policies_together saw one attempt more
 * in the downstream's counters than its jobs made). The handover (flight.c
 * F4) claims the joiner's wait; if the joiner's batch is cancelled before
 * its resumption runs, that resumption is a cleanup: the joiner makes no
 * attempt and hands the flight on. Checked: `attempts` counts only calls
 * that were made, both jobs end cancelled, and the key is free again (a
 * later job of the key leads and runs).
 *
 * The order is forced on one worker with nothing but the scheduler's own
 * queues: B has a deadline; the worker is held by a job spinning on a
 * flag while the test cancels the leader A and lets B's deadline pass, so
 * that when the worker goes on, A's cleanup can hand the flight to B
 * before B's deadline timer fires, and B's resumption then finds its
 * deadline passed. If the scheduler fires the timer first, B is detached
 * by its deadline instead; the checks hold for every order, and the test
 * counts the rounds that took the handover path.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"

enum { KEY = 7 };

static _Atomic int calls, cleanups;
static _Atomic int hold_running, release_hold;

static uint64_t key_of(void *fctx, void *arg, size_t i)
{
    (void)fctx, (void)i;
    return (uint64_t)(uintptr_t)arg;
}

/* A and B (and the later check): the "call" sleeps for an hour. */
static int flight_job(wsched_ctx *c, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    switch (wsched_resume_kind(c)) {
    case WSCHED_RESUME_CANCELLED:
        atomic_fetch_add(&cleanups, 1);
        return 0;
    case WSCHED_RESUME_FIRST:
        atomic_fetch_add(&calls, 1);
        CHECK_OK(wsched_sleep_until(c, wsched_now_ns() + 3600ull * 1000000000ull));
        return WSCHED_PENDING;
    default:
        return 0;
    }
}

static int short_job(wsched_ctx *c, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    if (wsched_resume_kind(c) == WSCHED_RESUME_FIRST) {
        atomic_fetch_add(&calls, 1);
        CHECK_OK(wsched_sleep_until(c, wsched_now_ns() + 1000));
        return WSCHED_PENDING;
    }
    return 0;
}

/* D: holds the only worker until the test has queued both resumptions. */
static int holder(wsched_ctx *c, void *arg, size_t i, void *slot)
{
    (void)c, (void)arg, (void)i, (void)slot;
    atomic_store(&hold_running, 1);
    while (!atomic_load(&release_hold))
        sched_yield();
    return 0;
}

static wsched_batch *submit(wsched_pool *pool, wsched_job_fn fn, wsched_downstream *ds,
                            uint64_t key, uint64_t deadline)
{
    wsched_batch_desc d = {.fn = fn, .arg = (void *)(uintptr_t)key, .njobs = 1,
                           .flags = WSCHED_BATCH_WAITS, .downstream = ds,
                           .deadline_ns = deadline};
    wsched_batch *b = NULL;
    CHECK_OK(wsched_submit(pool, &d, &b));
    return b;
}

static wsched_downstream_stats stats(wsched_downstream *ds)
{
    wsched_downstream_stats s;
    CHECK_OK(wsched_downstream_get_stats(ds, &s, sizeof s));
    return s;
}

int main(void)
{
    check_watchdog(60);
    wsched_downstream_config cfg = {.name = "handover", .flight_key = key_of};
    wsched_downstream *ds = NULL;
    CHECK_OK(wsched_downstream_create(&ds, &cfg));
    wsched_pool *pool = check_pool(1);
    int handed = 0, handed_unrun = 0;
    const uint64_t margin = 20000000ull * (uint64_t)check_slow(); /* B's join, within it */
    for (int round = 0; round < 30; round++) {
        atomic_store(&calls, 0);
        atomic_store(&cleanups, 0);
        atomic_store(&hold_running, 0);
        atomic_store(&release_hold, 0);
        wsched_downstream_stats s0 = stats(ds);

        wsched_batch *a = submit(pool, flight_job, ds, KEY, 0);
        while (atomic_load(&calls) < 1) /* A leads and sleeps */
            sched_yield();
        uint64_t deadline = wsched_now_ns() + margin;
        wsched_batch *b = submit(pool, flight_job, ds, KEY, deadline);
        while (stats(ds).joined == s0.joined) /* B joined A's flight */
            sched_yield();
        wsched_batch *d = submit(pool, holder, NULL, 0, 0);
        while (!atomic_load(&hold_running))
            sched_yield();
        CHECK_OK(wsched_cancel(a)); /* A's cleanup queued behind the holder */
        while (wsched_now_ns() <= deadline) /* B's deadline passes, its timer not fired */
            sched_yield();
        atomic_store(&release_hold, 1);

        wsched_batch *all[] = {a, b, d};
        for (int k = 0; k < 3; k++) {
            CHECK_OK(wsched_wait(all[k], -1));
            CHECK_OK(wsched_wait_idle(all[k], -1));
        }
        CHECK_EQ(check_status(a, 0), WSCHED_ECANCELLED);
        int sb = check_status(b, 0);
        CHECK(sb == WSCHED_EDEADLINE || sb == WSCHED_ECANCELLED);
        CHECK_EQ(check_status(d, 0), 0);
        int made = atomic_load(&calls); /* A's, and B's if it ran */
        CHECK(made == 1 || made == 2);
        wsched_downstream_stats s1 = stats(ds);
        bool h = s1.flight_handovers != s0.flight_handovers;
        handed += h;
        handed_unrun += h && made == 1;
        /* Every attempt counted was a call (the bug: one more when B was
         * handed the flight and never ran). */
        CHECK_EQ(s1.attempts - s0.attempts, (uint64_t)made);
        CHECK_EQ(s1.jobs - s0.jobs, 2);
        for (int k = 0; k < 3; k++)
            wsched_batch_free(all[k]);

        /* The key is free: a new job of it leads and runs. */
        wsched_batch *e = submit(pool, short_job, ds, KEY, 0);
        CHECK_OK(wsched_wait(e, -1));
        CHECK_OK(wsched_wait_idle(e, -1));
        CHECK_EQ(check_status(e, 0), 0);
        CHECK_EQ(atomic_load(&calls), made + 1);
        CHECK_EQ(stats(ds).attempts - s1.attempts, 1);
        wsched_batch_free(e);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_OK(wsched_downstream_destroy(ds));
    printf("test_flight_handover_cancel: ok (of 30 rounds, %d handed the flight to B, "
           "%d of them before B's resumption found its deadline passed)\n",
           handed, handed_unrun);
    return 0;
}
