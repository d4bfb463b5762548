/*
 * Work conservation: no worker stays parked while stealable work waits.
 * Each scenario blocks one worker in a job until work that is queued
 * *behind* it has run; only another (parked) worker can run that work, so a
 * scheduler that is not work-conserving hangs here and the watchdog fails
 * the test.
 *  1. Batches queued in the busy worker's inbox (external submissions).
 *  2. Children spawned onto the busy worker's deque (fork-join), by a job
 *     that then calls wsched_blocking.
 *  3. The rest of the blocked job's own range, once the job says it is
 *     about to block (wsched_blocking).
 */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

enum { K = 8 };
static _Atomic int ran;

static void spin_until(int want)
{
    while (atomic_load_explicit(&ran, memory_order_acquire) < want)
        sched_yield(); /* the other worker must do it: we hold ours */
}

static int blocker_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    spin_until(K);
    return 0;
}

static int mark_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    atomic_fetch_add_explicit(&ran, 1, memory_order_release);
    return 0;
}

/* Job 0 blocks until every other job of its batch ran. */
static int sibling_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)slot;
    if (i == 0) {
        CHECK_OK(wsched_blocking(ctx));
        spin_until(K);
    } else {
        atomic_fetch_add_explicit(&ran, 1, memory_order_release);
    }
    return 0;
}

static void mark_task(wsched_ctx *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_fetch_add_explicit(&ran, 1, memory_order_release);
}

static int spawner_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    for (int k = 0; k < K; k++)
        CHECK_OK(wsched_spawn(ctx, mark_task, NULL));
    /* About to spin on other workers' progress: say so (a spawn's own wake
     * is cheap but not certain; wsched_blocking's is). */
    CHECK_OK(wsched_blocking(ctx));
    spin_until(K); /* not wsched_sync: we insist someone else steals them */
    return wsched_sync(ctx);
}

int main(void)
{
    check_watchdog(60);
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    wsched_pool *pool;
    for (int round = 0; round < 50; round++) {
        CHECK_OK(wsched_pool_create(&pool, &cfg));
        /* 1: inboxes. The K marking batches go round-robin over both
         * workers' inboxes, so some land behind the blocked worker. */
        atomic_store(&ran, 0);
        wsched_batch *blocker, *marks[K];
        wsched_batch_desc d = {.fn = blocker_job, .njobs = 1};
        CHECK_OK(wsched_submit(pool, &d, &blocker));
        for (int k = 0; k < K; k++) {
            wsched_batch_desc m = {.fn = mark_job, .njobs = 1};
            CHECK_OK(wsched_submit(pool, &m, &marks[k]));
        }
        CHECK_OK(wsched_wait(blocker, -1));
        for (int k = 0; k < K; k++) {
            CHECK_OK(wsched_wait(marks[k], -1));
            wsched_batch_free(marks[k]);
        }
        wsched_batch_free(blocker);
        CHECK_EQ(atomic_load(&ran), K);

        /* 2: deque. */
        atomic_store(&ran, 0);
        d = (wsched_batch_desc){.fn = spawner_job, .njobs = 1};
        CHECK_OK(wsched_submit(pool, &d, &blocker));
        CHECK_OK(wsched_wait(blocker, -1));
        CHECK_EQ(check_status(blocker, 0), 0);
        wsched_batch_free(blocker);
        CHECK_EQ(atomic_load(&ran), K);

        /* 3: siblings in the same range. */
        atomic_store(&ran, 0);
        d = (wsched_batch_desc){.fn = sibling_job, .njobs = K + 1};
        CHECK_OK(wsched_submit(pool, &d, &blocker));
        CHECK_OK(wsched_wait(blocker, -1));
        wsched_batch_free(blocker);
        CHECK_EQ(atomic_load(&ran), K);
        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("test_work_conserving: ok\n");
    return 0;
}
