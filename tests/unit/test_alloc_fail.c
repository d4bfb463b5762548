/*
 * Allocation failure, injected through wsched_allocator: the k-th
 * allocation fails, for every k until a run succeeds. Each failing call
 * returns -ENOMEM with nothing leaked (live allocation count back to zero)
 * and nothing half-built. Covers pool creation, submission, and deque
 * growth inside a running pool (spawn falls back to running inline).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"

static struct check_failing inj = CHECK_FAILING_INIT;
#define fail_at inj.fail_at /* index of the allocation that fails */
#define count inj.count
#define live inj.live
static wsched_allocator failing;

static int index_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)slot;
    *(size_t *)slot = i;
    return 0;
}


/* Deep chain: spawns 3000 children before syncing, forcing deque growth
 * (initial capacity 1024) while the allocator fails. */
static int deep_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    static struct common_fib kids[3000];
    for (int k = 0; k < 3000; k++) {
        kids[k] = (struct common_fib){10, 0};
        CHECK_OK(wsched_spawn(ctx, check_fib_task, &kids[k]));
    }
    CHECK_OK(wsched_sync(ctx));
    long s = 0;
    for (int k = 0; k < 3000; k++)
        s += kids[k].r;
    *(long *)slot = s;
    return 0;
}

int main(void)
{
    check_watchdog(120);
    failing = check_failing_allocator(&inj);
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.allocator = &failing;

    /* Pool creation failing at every allocation. */
    long k;
    for (k = 0;; k++) {
        atomic_store(&count, 0);
        atomic_store(&fail_at, k);
        wsched_pool *pool = (wsched_pool *)0x1;
        int r = wsched_pool_create(&pool, &cfg);
        if (r == 0) {
            atomic_store(&fail_at, -1);
            CHECK_OK(wsched_pool_destroy(pool));
            CHECK_EQ(atomic_load(&live), 0);
            break;
        }
        CHECK_EQ(r, -ENOMEM);
        CHECK(pool == NULL);
        CHECK_EQ(atomic_load(&live), 0);
    }
    CHECK(k >= 3); /* pool, cpu list, masks, workers, deques... */

    /* Submission failing. */
    atomic_store(&fail_at, -1);
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    long base = atomic_load(&live);
    atomic_store(&count, 0);
    atomic_store(&fail_at, 0);
    wsched_batch_desc d = {.fn = index_job, .njobs = 100, .slot_size = sizeof(size_t)};
    wsched_batch *b = (wsched_batch *)0x1;
    CHECK_EQ(wsched_submit(pool, &d, &b), -ENOMEM);
    CHECK(b == NULL);
    CHECK_EQ(atomic_load(&live), base);
    atomic_store(&fail_at, -1);
    CHECK_OK(wsched_submit(pool, &d, &b)); /* the pool is still fine */
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 100; i++)
        CHECK_EQ(*(size_t *)wsched_batch_slot(b, i), i);
    wsched_batch_free(b);

    /* Deque growth failing inside a job: children run inline, result right. */
    d = (wsched_batch_desc){.fn = deep_job, .njobs = 1, .slot_size = sizeof(long)};
    atomic_store(&inj.fail_over, 40000); /* the 64 KiB grown array cannot be had */
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(*(long *)wsched_batch_slot(b, 0), 3000L * 55);
    atomic_store(&inj.fail_over, 0);
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(atomic_load(&live), 0);
    printf("test_alloc_fail: ok (pool creation needs %ld allocations)\n", k);
    return 0;
}
