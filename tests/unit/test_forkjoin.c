/* Fork-join: fib with every call a task, checked against fib(n) computed
 * by iteration; nested batches submitted and waited from inside jobs. */
#include <stdatomic.h>

#include "check.h"

/*
 * A variant of check_fib_task kept on purpose, for the shape it tests: both
 * halves are spawned (none runs inline, so the sync always has two children
 * to join) and their records live on the heap, not in the task's frame.
 */
static void fib_spawn_both(wsched_ctx *ctx, void *arg)
{
    struct common_fib *f = arg;
    if (f->n < 2) {
        f->r = (uint64_t)f->n;
        return;
    }
    struct common_fib *kids = malloc(2 * sizeof *kids);
    kids[0] = (struct common_fib){f->n - 1, 0};
    kids[1] = (struct common_fib){f->n - 2, 0};
    wsched_spawn(ctx, fib_spawn_both, &kids[0]);
    wsched_spawn(ctx, fib_spawn_both, &kids[1]);
    wsched_sync(ctx);
    f->r = kids[0].r + kids[1].r;
    free(kids);
}

static int fib_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    struct common_fib f = {(int)(*(int *)arg + (int)(i % 3)), 0};
    check_fib_task(ctx, &f);
    *(uint64_t *)slot = f.r;
    return 0;
}

static int spawn_both_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    /* fib_spawn_both(15), its record in the job's slot. */
    struct common_fib *f = slot;
    f->n = 15;
    fib_spawn_both(ctx, f);
    return 0;
}

static int inner_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    *(uint64_t *)slot = i * 2;
    return 0;
}

/* A job that submits a batch from inside the pool and waits on it. */
static int nested_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    wsched_pool *pool = arg;
    (void)ctx;
    wsched_batch_desc d = {.fn = inner_job, .njobs = 50 + i, .slot_size = 8};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    uint64_t sum = 0;
    for (size_t k = 0; k < wsched_batch_size(b); k++)
        sum += *(uint64_t *)wsched_batch_slot(b, k);
    wsched_batch_free(b);
    *(uint64_t *)slot = sum;
    return 0;
}

/* A sync whose child was stolen and runs long naps (forkjoin.c S1-S2) and
 * is woken by the thief's count: the child's effects are visible after it,
 * every time. Rounds where the parent had to run the child itself (not
 * stolen within 2 s) prove nothing and are not counted. */
struct long_child {
    atomic_int started, done;
};

static void long_child_task(wsched_ctx *ctx, void *arg)
{
    (void)ctx;
    struct long_child *lc = arg;
    atomic_store(&lc->started, 1);
    common_spin_ns(3000000); /* 3 ms: the parent's backoff runs out and it naps */
    atomic_store_explicit(&lc->done, 1, memory_order_relaxed); /* published by the join */
}

static int napping_parent(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    struct long_child lc = {0};
    CHECK_OK(wsched_spawn(ctx, long_child_task, &lc));
    CHECK_OK(wsched_blocking(ctx)); /* make sure a thief is awake */
    uint64_t give_up = common_now_ns() + 2000000000ull;
    while (!atomic_load(&lc.started) && common_now_ns() < give_up)
        ;
    int stolen = atomic_load(&lc.started);
    CHECK_OK(wsched_sync(ctx));
    CHECK_EQ(atomic_load_explicit(&lc.done, memory_order_relaxed), 1);
    *(int *)slot = stolen;
    return 0;
}

static void test_sync_nap(void)
{
    wsched_pool *pool = check_pool(2);
    int proved = 0;
    for (int round = 0; round < 10; round++) {
        wsched_batch_desc d = {.fn = napping_parent, .njobs = 1, .slot_size = sizeof(int)};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        int st;
        CHECK_OK(wsched_batch_status(b, 0, &st));
        CHECK_EQ(st, 0);
        proved += *(int *)wsched_batch_slot(b, 0);
        wsched_batch_free(b);
    }
    CHECK(proved > 0);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("sync on a long stolen child (napping): %d rounds: ok\n", proved);
}

int main(void)
{
    check_watchdog(120);
    test_sync_nap();
    int big = check_slow() > 1 ? 22 : 30;
    for (unsigned workers = 1; workers <= 4; workers *= 2) {
        wsched_pool *pool = check_pool(workers);

        /* One job computing fib(big) with every call a task. */
        wsched_batch_desc d = {.fn = fib_job, .arg = &big, .njobs = 1, .slot_size = 8};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        CHECK_EQ(*(uint64_t *)wsched_batch_slot(b, 0), common_fib_value(big));
        wsched_batch_free(b);

        /* Many fib jobs at once (stealing across jobs and children). */
        int base = 18;
        d = (wsched_batch_desc){.fn = fib_job, .arg = &base, .njobs = 64, .slot_size = 8};
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        for (size_t i = 0; i < 64; i++)
            CHECK_EQ(*(uint64_t *)wsched_batch_slot(b, i), common_fib_value(base + (int)(i % 3)));
        wsched_batch_free(b);

        d = (wsched_batch_desc){.fn = spawn_both_job, .njobs = 16,
                                .slot_size = sizeof(struct common_fib)};
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        for (size_t i = 0; i < 16; i++)
            CHECK_EQ(((struct common_fib *)wsched_batch_slot(b, i))->r, common_fib_value(15));
        wsched_batch_free(b);

        d = (wsched_batch_desc){.fn = nested_job, .arg = pool, .njobs = 32, .slot_size = 8};
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        for (size_t i = 0; i < 32; i++) {
            uint64_t m = 50 + i;
            CHECK_EQ(*(uint64_t *)wsched_batch_slot(b, i), m * (m - 1));
        }
        wsched_batch_free(b);

        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("test_forkjoin: ok\n");
    return 0;
}
