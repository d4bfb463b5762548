/*
 * The batch cache (src/mem.c): in steady state a request costs no
 * allocator call (wsched_pool_stats.allocs does not move), a block comes
 * back with its slots zeroed and its statuses reset, large batches reuse
 * the thread's large block, threads that exit give their blocks back (the
 * ASan build's leak check), a batch freed after its pool was destroyed is
 * fine, a user allocator still sees every call, and wsched_reserve makes a
 * fresh thread's first burst allocate nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "../check.h"
#include "../common.h"

static uint64_t allocs(wsched_pool *pool)
{
    wsched_pool_stats st;
    CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
    return st.allocs;
}

/* Each job checks that its slot starts zeroed, then dirties it. */
static int dirty_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    uint64_t *s = slot;
    CHECK_EQ(*s, 0);
    *s = i + 1;
    return i % 7 == 3 ? -EIO : 0;
}

static void request(wsched_pool *pool, size_t n)
{
    wsched_batch_desc d = {.fn = dirty_job, .njobs = n, .slot_size = sizeof(uint64_t)};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < n; i++) {
        int st;
        CHECK_OK(wsched_batch_status(b, i, &st));
        CHECK_EQ(st, i % 7 == 3 ? -EIO : 0);
        CHECK_EQ(*(uint64_t *)wsched_batch_slot(b, i), i + 1);
    }
    wsched_batch_free(b);
}

/* Many requests in flight from one thread, as the single-submitter
 * fan-out does: after the first round, none allocates. */
static void steady_state(wsched_pool *pool)
{
    enum { INFLIGHT = 200, ROUNDS = 5 };
    wsched_batch *b[INFLIGHT];
    uint64_t before = 0;
    for (int round = 0; round < ROUNDS; round++) {
        if (round == 1)
            before = allocs(pool);
        for (int k = 0; k < INFLIGHT; k++) {
            wsched_batch_desc d = {.fn = dirty_job, .njobs = 10 + (size_t)k % 11,
                                   .slot_size = sizeof(uint64_t)};
            CHECK_OK(wsched_submit(pool, &d, &b[k]));
        }
        for (int k = 0; k < INFLIGHT; k++) {
            CHECK_OK(wsched_wait(b[k], -1));
            wsched_batch_free(b[k]);
        }
    }
    /* A block goes to the worker's cache instead only when the worker was
     * preempted between completing a batch and dropping its reference
     * (wsched_batch_free waits for it briefly): rare. */
    CHECK(allocs(pool) - before <= INFLIGHT * (ROUNDS - 1) / 100);
    /* Fresh statuses and slots on reused blocks. */
    for (int k = 0; k < 50; k++)
        request(pool, 1 + (size_t)k % 40);
}

static void large(wsched_pool *pool)
{
    request(pool, 300000); /* 1.2 MB of statuses, 2.4 MB of slots */
    uint64_t before = allocs(pool);
    for (int k = 0; k < 3; k++)
        request(pool, 300000 - (size_t)k * 1000);
    CHECK(allocs(pool) - before <= 1); /* (a preempted worker: see above) */
}

static void *client(void *arg)
{
    wsched_pool *pool = arg;
    for (int k = 0; k < 100; k++)
        request(pool, 1 + (size_t)k % 30);
    request(pool, 100000);
    return NULL; /* the thread's cache is flushed on exit */
}

/* A thread whose cache is empty submits a burst of 300 batches shaped
 * like the reserve: every block comes from the depot. */
struct burst {
    wsched_pool *pool;
    uint64_t allocs;
};
static void *first_burst(void *arg)
{
    struct burst *bu = arg;
    enum { K = 300 };
    static wsched_batch *b[K];
    uint64_t before = allocs(bu->pool);
    for (int k = 0; k < K; k++) {
        wsched_batch_desc d = {.fn = dirty_job, .njobs = 16, .slot_size = sizeof(uint64_t)};
        CHECK_OK(wsched_submit(bu->pool, &d, &b[k]));
    }
    bu->allocs = allocs(bu->pool) - before;
    for (int k = 0; k < K; k++) {
        CHECK_OK(wsched_wait(b[k], -1));
        for (size_t i = 0; i < 16; i++)
            CHECK_EQ(*(uint64_t *)wsched_batch_slot(b[k], i), i + 1);
        wsched_batch_free(b[k]);
    }
    return NULL;
}

static void reserve(void)
{
    wsched_pool *pool = check_pool(2);
    wsched_batch_desc like = {.njobs = 16, .slot_size = sizeof(uint64_t)};
    CHECK_EQ(wsched_reserve(pool, &like, 300), 300);
    struct burst bu = {pool, 0};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, first_burst, &bu), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(bu.allocs, 0);

    CHECK_EQ(wsched_reserve(NULL, &like, 1), -EINVAL);
    CHECK_EQ(wsched_reserve(pool, NULL, 1), -EINVAL);
    CHECK_EQ(wsched_reserve(pool, &like, 0), -EINVAL);
    like.flags = 0x80; /* a flag submit refuses */
    CHECK_EQ(wsched_reserve(pool, &like, 1), -EINVAL);
    like.flags = 0;
    like.njobs = 100000; /* above the largest class */
    CHECK_EQ(wsched_reserve(pool, &like, 1), -ENOTSUP);
    CHECK_OK(wsched_pool_destroy(pool));
    like.njobs = 16;
    CHECK_EQ(wsched_reserve(pool, &like, 1), -EBADF);
}

static _Atomic size_t user_calls;
static void *counting_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    atomic_fetch_add(&user_calls, 1);
    void *p = NULL;
    return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size) ? NULL : p;
}
static void counting_free(void *ctx, void *p, size_t size, size_t align)
{
    (void)ctx, (void)size, (void)align;
    free(p);
}

int main(void)
{
    check_watchdog(120);
    wsched_pool *pool = check_pool(2);
    steady_state(pool);
    large(pool);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, client, pool), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);

    /* A handle that outlives its pool goes back to this thread's cache. */
    wsched_batch_desc d = {.fn = common_nop_job, .njobs = 5};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_OK(wsched_pool_destroy(pool));
    wsched_batch_free(b);

    /* A user allocator sees one call per batch. */
    wsched_allocator a = {counting_alloc, counting_free, NULL};
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.allocator = &a;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    size_t start = atomic_load(&user_calls);
    for (int k = 0; k < 20; k++)
        request(pool, 16);
    CHECK_EQ(atomic_load(&user_calls) - start, 20);
    wsched_batch_desc like = {.njobs = 16};
    CHECK_EQ(wsched_reserve(pool, &like, 10), -ENOTSUP);
    CHECK_OK(wsched_pool_destroy(pool));

    reserve();
    return 0;
}
