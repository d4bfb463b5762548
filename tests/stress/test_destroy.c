/*
 * Destroy with work in flight: submitter threads keep submitting while the
 * pool is destroyed. Every batch accepted before destroy runs to completion
 * (all slots written, waiters return 0); every submission after destroy
 * began fails with -ESHUTDOWN or -EBADF; nothing leaks (ASan build).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static int slow_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    volatile uint64_t x = i;
    for (int k = 0; k < 2000; k++)
        x = x * 6364136223846793005ull + 1;
    *(uint64_t *)slot = i + 1;
    return 0;
}

static _Atomic long accepted, refused, started;

static void *submitter(void *arg)
{
    wsched_pool *pool = arg;
    atomic_fetch_add(&started, 1);
    for (;;) {
        wsched_batch *bs[4];
        int nb = 0;
        for (; nb < 4; nb++) {
            wsched_batch_desc d = {.fn = slow_job, .njobs = 16, .slot_size = 8};
            int r = wsched_submit(pool, &d, &bs[nb]);
            if (r != 0) {
                CHECK(r == -ESHUTDOWN || r == -EBADF);
                CHECK(bs[nb] == NULL);
                atomic_fetch_add(&refused, 1);
                break;
            }
            atomic_fetch_add(&accepted, 1);
        }
        for (int k = 0; k < nb; k++) {
            CHECK_OK(wsched_wait(bs[k], -1));
            for (size_t i = 0; i < 16; i++)
                CHECK_EQ(*(uint64_t *)wsched_batch_slot(bs[k], i), i + 1);
            CHECK_EQ(check_not_ok(bs[k]), 0);
            wsched_batch_free(bs[k]);
        }
        if (nb < 4)
            return NULL;
    }
}

/* Nested work during the drain: a job of an accepted batch submits a batch
 * after destroy has begun; it is part of accepted work and must run. The
 * gate opens when the prober sees destroy begin. */
static struct check_gate draining;

static int leaf_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    *(uint64_t *)slot = i + 7;
    return 0;
}

static int nested_during_drain(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    wsched_pool *pool = arg;
    check_gate_pass(&draining);
    wsched_batch_desc d = {.fn = leaf_job, .njobs = 32, .slot_size = 8};
    wsched_batch *b;
    int r = wsched_submit(pool, &d, &b);
    if (r)
        return r;
    r = wsched_wait(b, -1);
    for (size_t k = 0; r == 0 && k < 32; k++)
        if (*(uint64_t *)wsched_batch_slot(b, k) != k + 7)
            r = -EPROTO;
    wsched_batch_free(b);
    return r;
}

static void *drain_prober(void *arg)
{
    /* Submit until refused: then destroy has begun. */
    for (;;) {
        wsched_batch_desc d = {.fn = common_nop_job, .njobs = 1};
        wsched_batch *b;
        int r = wsched_submit(arg, &d, &b);
        if (r) {
            CHECK_EQ(r, -ESHUTDOWN);
            check_gate_open(&draining);
            return NULL;
        }
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);
    }
}

static void test_nested_during_drain(void)
{
    wsched_pool *pool = check_pool(2);
    check_gate_reset(&draining, 0);
    wsched_batch *b;
    wsched_batch_desc d = {.fn = nested_during_drain, .arg = pool, .njobs = 1};
    CHECK_OK(wsched_submit(pool, &d, &b));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, drain_prober, pool), 0);
    CHECK_OK(wsched_pool_destroy(pool)); /* returns once b (and its child) ran */
    pthread_join(th, NULL);
    CHECK_OK(wsched_wait(b, 0));
    CHECK_EQ(check_status(b, 0), 0);
    wsched_batch_free(b);
}

int main(void)
{
    check_watchdog(120);
    for (int round = 0; round < 20; round++) {
        wsched_pool *pool = check_pool(2);
        atomic_store(&started, 0);
        enum { T = 4 };
        pthread_t th[T];
        for (int t = 0; t < T; t++)
            CHECK_EQ(pthread_create(&th[t], NULL, submitter, pool), 0);
        /* Destroy once every submitter has had a batch accepted. */
        while (atomic_load(&started) < T || atomic_load(&accepted) < (round + 1) * T)
            sched_yield();
        CHECK_OK(wsched_pool_destroy(pool));
        for (int t = 0; t < T; t++)
            pthread_join(th[t], NULL);
    }
    CHECK(atomic_load(&refused) >= 20 * 4);
    for (int round = 0; round < 10; round++)
        test_nested_during_drain();
    printf("test_destroy: accepted %ld, refused %ld: ok\n", atomic_load(&accepted),
           atomic_load(&refused));
    return 0;
}
