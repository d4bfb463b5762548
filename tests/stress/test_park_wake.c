/*
 * Park/wake stress: bursts of batches from several threads separated by
 * idle gaps of varying length (so workers search, park and are woken in
 * every phase), each burst checked for exactly-once execution. A lost
 * wake-up leaves a batch unrun and the watchdog fails the test. Then: an
 * idle pool must burn ~no CPU.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static int inc_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)slot;
    _Atomic unsigned *hits = arg;
    atomic_fetch_add_explicit(&hits[i], 1, memory_order_relaxed);
    return 0;
}

struct burst {
    wsched_pool *pool;
    unsigned seed;
    long rounds;
};

static void gap(unsigned kind)
{
    static const uint64_t ns[] = {0, 2000, 20000, 200000, 2000000};
    if (ns[kind % 5])
        common_sleep_ns(ns[kind % 5]); /* an idle gap, not synchronisation */
}

static void *burster(void *arg)
{
    struct burst *b = arg;
    unsigned s = b->seed;
    for (long r = 0; r < b->rounds; r++) {
        s = s * 1103515245u + 12345u;
        size_t n = 1 + (s >> 8) % 40;
        _Atomic unsigned *hits = calloc(n, sizeof *hits);
        wsched_batch_desc d = {.fn = inc_job, .arg = (void *)hits, .njobs = n};
        wsched_batch *bt;
        CHECK_OK(wsched_submit(b->pool, &d, &bt));
        CHECK_OK(wsched_wait(bt, -1));
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(hits[i], 1);
        wsched_batch_free(bt);
        free((void *)hits);
        gap(s >> 20);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(120);
    for (unsigned workers = 2; workers <= 4; workers += 2) {
        wsched_pool *pool = check_pool(workers);
        enum { T = 3 };
        pthread_t th[T];
        struct burst bs[T];
        for (unsigned t = 0; t < T; t++) {
            bs[t] = (struct burst){pool, 17u * t + workers, check_scale(2000)};
            CHECK_EQ(pthread_create(&th[t], NULL, burster, &bs[t]), 0);
        }
        for (unsigned t = 0; t < T; t++)
            pthread_join(th[t], NULL);

        /* Idle: the pool parks; 300 ms of wall time may cost at most 5%
         * of one CPU (the search phase before parking is ~10 us). */
        common_sleep_ns(50000000); /* settle */
        double c0 = common_cpu_seconds();
        common_sleep_ns(300000000);
        double used = common_cpu_seconds() - c0;
        fprintf(stderr, "workers=%u idle cpu over 300 ms: %.3f ms\n", workers, used * 1e3);
        CHECK(used < 0.015);
        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("test_park_wake: ok\n");
    return 0;
}
