/* Observability: counters count what ran, gauges add up, snapshots are
 * safe while the pool runs. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

static int nop_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    return 0;
}

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
        CHECK_OK(wsched_stats(pool, &st, ws, 8));
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

    wsched_batch_desc d = {.fn = nop_job, .njobs = 100000};
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

    /* Let the workers go to sleep, then look. */
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    wsched_pool_stats st;
    wsched_worker_stats ws[2];
    CHECK_OK(wsched_stats(pool, &st, ws, 2));
    CHECK_EQ(st.nworkers, 2);
    CHECK_EQ(st.total.jobs, 100000 + 1000);
    CHECK_EQ(st.total.tasks, 10 * 1000);
    CHECK_EQ(ws[0].jobs + ws[1].jobs, st.total.jobs);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.inflight, 0);
    CHECK(st.total.parks >= 1);
    CHECK(st.total.busy_ns > 0);
    CHECK_EQ(wsched_stats(pool, NULL, NULL, 0), -EINVAL);
    CHECK_EQ(wsched_stats(NULL, &st, NULL, 0), -EINVAL);
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(wsched_stats(pool, &st, NULL, 0), -EBADF);
    printf("test_stats: ok (steals %llu, parks %llu, wakeups %llu)\n",
           (unsigned long long)st.total.steals, (unsigned long long)st.total.parks,
           (unsigned long long)st.total.wakeups);
    return 0;
}
