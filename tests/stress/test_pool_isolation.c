/*
 * Destroying one pool depends only on that pool's own work (issue 7,
 * defects 4 and 7). Pool A runs a job that holds its worker until a gate
 * opens; pool B grows a deque (a job spawns more children than the initial
 * ring holds) and is destroyed while A's job still runs. The gate is opened
 * only after wsched_pool_destroy(B) returned, so a destroy that waited for a
 * process-wide grace period (A's job) would deadlock: it must return within
 * the bound below. Under TSan, the grown deque's reclamation at destroy
 * must raise no report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"

static struct check_gate gate;

enum { CHILDREN = 5000 }; /* > the initial ring of 1024 records */
static _Atomic long children_ran;

static void child(wsched_ctx *ctx, void *arg)
{
    (void)ctx, (void)arg;
    atomic_fetch_add_explicit(&children_ran, 1, memory_order_relaxed);
}

static int grow_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i, (void)slot;
    for (int k = 0; k < CHILDREN; k++)
        CHECK_OK(wsched_spawn(ctx, child, NULL));
    return wsched_sync(ctx);
}

static void *destroy_thread(void *arg)
{
    int r = wsched_pool_destroy(arg);
    return (void *)(intptr_t)r;
}

int main(void)
{
    check_watchdog(120);
    long rounds = check_scale(20);
    if (rounds < 3)
        rounds = 3;
    wsched_pool *a = check_pool(1);
    for (long round = 0; round < rounds; round++) {
        check_gate_reset(&gate, 0);
        wsched_batch *ba;
        wsched_batch_desc da = {.fn = check_gate_job, .arg = &gate, .njobs = 1};
        CHECK_OK(wsched_submit(a, &da, &ba));
        check_gate_await(&gate, 1);

        wsched_pool *b = check_pool(1);
        atomic_store(&children_ran, 0);
        wsched_batch *bb;
        wsched_batch_desc db = {.fn = grow_job, .njobs = 1};
        CHECK_OK(wsched_submit(b, &db, &bb));
        CHECK_OK(wsched_wait(bb, -1));
        CHECK_EQ(check_status(bb, 0), 0);
        CHECK_EQ(atomic_load(&children_ran), CHILDREN);
        wsched_batch_free(bb);

        /* Destroy B on another thread; it must finish while A's job still
         * holds A's worker. A bound (not a synchronisation): 10 s. */
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, destroy_thread, b), 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        void *res = NULL;
        int jr = pthread_timedjoin_np(th, &res, &until);
        if (jr == ETIMEDOUT) {
            fprintf(stderr, "round %ld: destroying pool B waited for pool A's job\n", round);
            check_gate_open(&gate);
            pthread_join(th, &res);
            CHECK(!"wsched_pool_destroy(B) depended on another pool");
        }
        CHECK_EQ(jr, 0);
        CHECK_EQ((intptr_t)res, 0);

        check_gate_open(&gate);
        CHECK_OK(wsched_wait(ba, -1));
        CHECK_EQ(check_status(ba, 0), 0);
        wsched_batch_free(ba);
    }
    CHECK_OK(wsched_pool_destroy(a));
    printf("test_pool_isolation: %ld rounds, ok\n", rounds);
    return 0;
}
