/*
 * Issue 7, gap: the stats gauges are consistent in every snapshot
 * (parked + searching + running == nworkers, none above nworkers) while
 * workers keep moving between running, searching and parked. Before, a
 * snapshot could read parked 2 + searching 1 on 2 workers.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

static _Atomic int stop;

static void *client(void *arg)
{
    wsched_pool *pool = arg;
    while (!atomic_load(&stop)) {
        wsched_batch_desc d = {.fn = common_nop_job, .njobs = 3};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait(b, -1));
        wsched_batch_free(b);
    }
    return NULL;
}

int main(void)
{
    check_watchdog(120);
    for (unsigned nw = 1; nw <= 3; nw++) {
        wsched_pool *pool = check_pool(nw);
        atomic_store(&stop, 0);
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, client, pool), 0);
        long samples = check_scale(200000);
        for (long k = 0; k < samples; k++) {
            wsched_pool_stats s;
            CHECK_OK(wsched_pool_get_stats(pool, &s, sizeof s));
            CHECK_EQ(s.nworkers, nw);
            CHECK(s.parked <= nw && s.searching <= nw && s.running <= nw);
            CHECK_EQ(s.parked + s.searching + s.running, nw);
        }
        atomic_store(&stop, 1);
        pthread_join(th, NULL);
        CHECK_OK(wsched_pool_destroy(pool));
    }
    printf("test_stats_gauges: ok\n");
    return 0;
}
