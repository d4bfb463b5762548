/*
 * Issue 7, gap: a worker waiting inside the pool (wsched_wait on a nested
 * batch) does not start an unrelated new batch from an inbox, so a
 * blocking job of another request cannot hold it after what it waits for
 * is done. Job J (on worker Wa) submits nested batch N and waits for it;
 * N's job runs on the other worker (J waits until it started) and lingers
 * a little after an unrelated batch X (a job that blocks until the end of
 * the round) was queued. Before, Wa's helping could take X from the inbox
 * and block in it: X's job then ran on J's worker while J was waiting.
 */
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static _Atomic int n_started, x_queued, j_waiting, j_worker, bad;
static struct check_gate x_gate; /* holds X's job */
static wsched_pool *pool;

static int n_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    atomic_store(&n_started, 1);
    while (!atomic_load(&x_queued))
        sched_yield();
    /* Linger: a window for J's worker to (wrongly) start X. */
    for (volatile int k = 0; k < 200000; k++)
        ;
    return 0;
}

static int j_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    wsched_batch_desc d = {.fn = n_job, .njobs = 1};
    wsched_batch *n;
    CHECK_OK(wsched_submit(pool, &d, &n));
    while (!atomic_load(&n_started)) /* N's job was stolen by the other worker */
        sched_yield();
    atomic_store(&j_worker, (int)wsched_ctx_worker(ctx));
    atomic_store(&j_waiting, 1);
    CHECK_OK(wsched_wait(n, -1));
    atomic_store(&j_waiting, 0);
    wsched_batch_free(n);
    return 0;
}

static int x_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    if (atomic_load(&j_waiting) && (int)wsched_ctx_worker(ctx) == atomic_load(&j_worker))
        atomic_store(&bad, 1);
    check_gate_pass(&x_gate);
    return 0;
}

int main(void)
{
    check_watchdog(120);
    pool = check_pool(2);
    long rounds = check_scale(40);
    if (rounds < 5)
        rounds = 5;
    for (long r = 0; r < rounds; r++) {
        atomic_store(&n_started, 0);
        atomic_store(&x_queued, 0);
        check_gate_reset(&x_gate, 0);
        wsched_batch *j, *x;
        wsched_batch_desc dj = {.fn = j_job, .njobs = 1};
        CHECK_OK(wsched_submit(pool, &dj, &j));
        while (!atomic_load(&n_started))
            sched_yield();
        wsched_batch_desc dx = {.fn = x_job, .njobs = 1};
        CHECK_OK(wsched_submit(pool, &dx, &x));
        atomic_store(&x_queued, 1);
        /* J must finish while X's job is still held. */
        CHECK_OK(wsched_wait(j, 10000000000ll));
        check_gate_open(&x_gate);
        CHECK_OK(wsched_wait(x, -1));
        wsched_batch_free(j);
        wsched_batch_free(x);
        if (atomic_load(&bad))
            fprintf(stderr, "round %ld: the waiting worker started an unrelated batch\n", r);
        CHECK(!atomic_load(&bad));
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_wait_no_new_batch: %ld rounds, ok\n", rounds);
    return 0;
}
