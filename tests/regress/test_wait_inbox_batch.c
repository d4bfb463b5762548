/*
 * A job may wait inside the pool on a batch submitted from outside (it is
 * then still in an inbox): the waiting worker must be able to start it, or
 * a pool whose every worker waits so could never make progress. On one
 * worker: job J waits for batch X, which the main thread submits only once
 * J runs. The fix for test_wait_no_new_batch (a waiting worker starts no
 * new batch) first made this hang; a waiter may start batches from inboxes
 * exactly while what it waits for is queued in one.
 */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static _Atomic(wsched_batch *) x_handle;
static _Atomic int j_running;

static int x_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    *(size_t *)slot = i + 1;
    return 0;
}

static int j_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    atomic_store(&j_running, 1);
    wsched_batch *x;
    while (!(x = atomic_load(&x_handle)))
        sched_yield();
    unsigned kind = (unsigned)(uintptr_t)arg;
    if (kind == 0)
        return wsched_wait(x, 10000000000ll); /* bounded: a hang fails */
    if (kind == 1)
        return wsched_wait_idle(x, 10000000000ll);
    int r;
    long polls = 0;
    while ((r = wsched_wait(x, 0)) != 0)
        if (++polls > 100000000)
            return r;
    return 0;
}

int main(void)
{
    check_watchdog(120);
    wsched_pool *pool = check_pool(1);
    for (unsigned round = 0; round < 30; round++) {
        atomic_store(&x_handle, NULL);
        atomic_store(&j_running, 0);
        wsched_batch *j, *x;
        wsched_batch_desc dj = {.fn = j_job, .arg = (void *)(uintptr_t)(round % 3), .njobs = 1};
        CHECK_OK(wsched_submit(pool, &dj, &j));
        while (!atomic_load(&j_running))
            sched_yield();
        wsched_batch_desc dx = {.fn = x_job, .njobs = 4, .slot_size = sizeof(size_t)};
        CHECK_OK(wsched_submit(pool, &dx, &x));
        atomic_store(&x_handle, x);
        CHECK_OK(wsched_wait(j, -1));
        CHECK_EQ(check_status(j, 0), 0);
        CHECK_OK(wsched_wait(x, -1));
        for (size_t k = 0; k < 4; k++)
            CHECK_EQ(*(size_t *)wsched_batch_slot(x, k), k + 1);
        wsched_batch_free(j);
        wsched_batch_free(x);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_wait_inbox_batch: ok\n");
    return 0;
}
