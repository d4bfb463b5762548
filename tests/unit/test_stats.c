/* Observability: counters count what ran, gauges add up, snapshots are
 * safe while the pool runs. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <string.h>

#include <stddef.h>

#include "check.h"

static void leaf(wsched_ctx *ctx, void *arg)
{
    (void)ctx, (void)arg;
}

static int spawning_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    for (int k = 0; k < 10; k++)
        wsched_spawn(ctx, leaf, NULL);
    return wsched_sync(ctx);
}

static _Atomic int stop;
static void *snapshotter(void *arg)
{
    wsched_pool *pool = arg;
    wsched_worker_stats ws[8];
    while (!atomic_load(&stop)) {
        wsched_pool_stats st;
        CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
        CHECK_EQ(wsched_worker_get_stats(pool, ws, 8, sizeof ws[0]), 2);
        CHECK(st.parked + st.searching + st.running == st.nworkers);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(60);
    wsched_pool *pool = check_pool(2);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, snapshotter, pool), 0);

    wsched_batch_desc d = {.fn = common_nop_job, .njobs = 100000};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    d = (wsched_batch_desc){.fn = spawning_job, .njobs = 1000};
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    atomic_store(&stop, 1);
    pthread_join(th, NULL);

    /* Wait (polling the gauges: the watchdog bounds it) until both
     * workers are asleep, then look. */
    wsched_pool_stats st;
    do {
        CHECK_OK(wsched_pool_get_stats(pool, &st, sizeof st));
        sched_yield();
    } while (st.parked != 2);
    wsched_worker_stats ws[2];
    CHECK_EQ(wsched_worker_get_stats(pool, ws, 2, sizeof ws[0]), 2);
    CHECK_EQ(st.nworkers, 2);
    CHECK_EQ(st.total.jobs, 100000 + 1000);
    CHECK_EQ(st.total.tasks, 10 * 1000);
    /* Start-up's allocations at least (the pool, workers, deques) and
     * the two batches' memory: counted. */
    CHECK(st.allocs >= 3);
    CHECK_EQ(ws[0].jobs + ws[1].jobs, st.total.jobs);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.inflight, 0);
    CHECK(st.total.parks >= 1);
    CHECK(st.total.busy_ns > 0);
    CHECK_EQ(wsched_pool_get_stats(pool, NULL, sizeof st), -EINVAL);
    CHECK_EQ(wsched_pool_get_stats(pool, &st, offsetof(wsched_pool_stats, resilience) - 1), -EINVAL);
    CHECK_EQ(wsched_worker_get_stats(pool, NULL, 2, sizeof ws[0]), -EINVAL);
    CHECK_EQ(wsched_worker_get_stats(pool, ws, 2, sizeof ws[0] - 8), -EINVAL);
    /* Fewer entries than workers: that many. */
    CHECK_EQ(wsched_worker_get_stats(pool, ws, 1, sizeof ws[0]), 1);
    CHECK_EQ(wsched_worker_get_stats(pool, ws, 0, sizeof ws[0]), 0);
    /* A caller built against a later, larger struct: our fields, then
     * zeros (the bytes past ours are cleared, not left as they were). */
    struct {
        wsched_pool_stats v1;
        uint64_t later[3];
    } big;
    memset(&big, 0xab, sizeof big);
    CHECK_OK(wsched_pool_get_stats(pool, &big.v1, sizeof big));
    CHECK_EQ(big.v1.nworkers, 2);
    CHECK_EQ(big.v1.total.jobs, st.total.jobs);
    for (int k = 0; k < 3; k++)
        CHECK_EQ(big.later[k], 0);
    struct {
        wsched_worker_stats v1;
        uint64_t later;
    } wbig[2];
    memset(wbig, 0xab, sizeof wbig);
    CHECK_EQ(wsched_worker_get_stats(pool, &wbig[0].v1, 2, sizeof wbig[0]), 2);
    CHECK_EQ(wbig[0].v1.jobs + wbig[1].v1.jobs, st.total.jobs);
    CHECK_EQ(wbig[0].later, 0);
    CHECK_EQ(wbig[1].later, 0);
    CHECK_EQ(wsched_pool_get_stats(NULL, &st, sizeof st), -EINVAL);
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(wsched_pool_get_stats(pool, &st, sizeof st), -EBADF);
    printf("test_stats: ok (steals %llu, parks %llu, wakeups %llu)\n",
           (unsigned long long)st.total.steals, (unsigned long long)st.total.parks,
           (unsigned long long)st.total.wakeups);
    return 0;
}
