/*
 * Limits and backpressure: a batch's parallelism limit is never exceeded
 * (and is reached); the pool-wide admission limit holds under many
 * submitting threads; load shedding (-EBUSY), timed backpressure
 * (-ETIMEDOUT), -E2BIG; a waiting submitter proceeds when room frees; no
 * worker ever waits for a permit (nested batches are exempt).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

static _Atomic int running, max_running;

static int limited_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    int now = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&max_running);
    while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now))
        ;
    for (int k = 0; k < 50; k++)
        sched_yield(); /* long enough for others to overlap */
    atomic_fetch_sub(&running, 1);
    *(size_t *)slot = i + 1;
    return 0;
}

static void test_max_parallel(void)
{
    wsched_pool *pool = check_pool(4);
    for (size_t m = 1; m <= 3; m++) {
        atomic_store(&max_running, 0);
        wsched_batch_desc d = {.fn = limited_job, .njobs = 40, .slot_size = sizeof(size_t),
                               .max_parallel = m};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        for (size_t i = 0; i < 40; i++)
            CHECK_EQ(*(size_t *)wsched_batch_slot(b, i), i + 1);
        CHECK(atomic_load(&max_running) <= (int)m);
        CHECK(atomic_load(&max_running) >= 1);
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
}

/* ---- pool-wide admission */
enum { Q = 50 };
static struct check_gate gate; /* held batches: fn check_gate_job, arg &gate */
static _Atomic long in_system, max_in_system;

static int counted_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    atomic_fetch_sub(&in_system, 1);
    return 0;
}

/* Nested batches are exempt: no deadlock even when the pool is full. */
static int nesting_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    wsched_batch_desc d = {.fn = check_gate_job, .arg = &gate, .njobs = 30};
    wsched_batch *b;
    int r = wsched_submit(arg, &d, &b);
    if (r)
        return r;
    r = wsched_wait(b, -1);
    wsched_batch_free(b);
    return r;
}

static void *client(void *arg)
{
    wsched_pool *pool = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (long r = 0; r < check_scale(400); r++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 5 + (seed >> 16) % 16;
        wsched_batch_desc d = {.fn = counted_job, .njobs = n};
        wsched_batch *b;
        int rc = wsched_submit_timed(pool, &d, &b, (seed >> 8) % 2 ? -1 : 0);
        if (rc == -EBUSY)
            continue; /* shed */
        CHECK_OK(rc);
        long now = atomic_fetch_add(&in_system, (long)n) + (long)n;
        long m = atomic_load(&max_in_system);
        while (now > m && !atomic_compare_exchange_weak(&max_in_system, &m, now))
            ;
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);
    }
    return NULL;
}

static void *late_submitter(void *arg)
{
    wsched_batch_desc d = {.fn = check_gate_job, .arg = &gate, .njobs = 20};
    wsched_batch *b;
    CHECK_OK(wsched_submit(arg, &d, &b)); /* waits for room */
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    return NULL;
}

static void test_admission(void)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.max_jobs = Q;
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    wsched_batch_desc d = {.fn = check_gate_job, .arg = &gate, .njobs = Q + 1};
    wsched_batch *b, *b2;
    CHECK_EQ(wsched_submit(pool, &d, &b), -E2BIG);
    CHECK(b == NULL);

    check_gate_reset(&gate, 0);
    d.njobs = 40;
    CHECK_OK(wsched_submit(pool, &d, &b)); /* 40 of 50 held */
    d.njobs = 20;
    CHECK_EQ(wsched_submit_timed(pool, &d, &b2, 0), -EBUSY);
    CHECK_EQ(wsched_submit_timed(pool, &d, &b2, 2000000), -ETIMEDOUT);
    d.njobs = 10;
    CHECK_OK(wsched_submit_timed(pool, &d, &b2, 0)); /* exactly fits */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_submitter, pool), 0);
    check_gate_open(&gate); /* room frees; the late submitter gets in */
    pthread_join(th, NULL);
    CHECK_OK(wsched_wait(b, -1));
    CHECK_OK(wsched_wait(b2, -1));
    wsched_batch_free(b);
    wsched_batch_free(b2);

    /* Full pool + nested submissions: exempt, no deadlock. */
    check_gate_open(&gate);
    d = (wsched_batch_desc){.fn = nesting_job, .arg = pool, .njobs = Q};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(check_not_ok(b), 0);
    wsched_batch_free(b);

    /* Many submitters: jobs in the system never exceed Q. */
    enum { T = 6 };
    pthread_t cl[T];
    for (int t = 0; t < T; t++)
        CHECK_EQ(pthread_create(&cl[t], NULL, client, pool), 0);
    for (int t = 0; t < T; t++)
        pthread_join(cl[t], NULL);
    CHECK(atomic_load(&max_in_system) <= Q);
    CHECK(atomic_load(&max_in_system) > 0);
    CHECK_EQ(atomic_load(&in_system), 0);
    CHECK_OK(wsched_pool_destroy(pool));
}

int main(void)
{
    check_watchdog(120);
    test_max_parallel();
    test_admission();
    printf("test_limits: ok (max jobs in system %ld of %d)\n", atomic_load(&max_in_system), Q);
    return 0;
}
