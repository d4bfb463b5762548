#define _GNU_SOURCE
/*
 * Pool set-up: default worker count follows the affinity mask; workers are
 * pinned (job sees the CPU it was pinned to) and named wsched/<n>; NO_PIN
 * leaves them unpinned; wait with a timeout returns -ETIMEDOUT and the batch
 * still completes; a batch freed before completion is reclaimed by its last
 * job (ASan build: no leak, no use after free).
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>

#include "check.h"

struct seen {
    int cpu;
    int worker;
    char name[16];
};

static int where_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)arg, (void)i;
    struct seen *s = slot;
    s->cpu = sched_getcpu();
    s->worker = wsched_current_worker();
    CHECK_EQ(s->worker, wsched_ctx_worker(ctx));
    prctl(PR_GET_NAME, s->name, 0, 0, 0);
    return 0;
}

/* Held at the gate; then writes 42 to its slot (it ran after the gate). */
static struct check_gate gate;
static int gated_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i;
    check_gate_pass(&gate);
    if (slot)
        *(int *)slot = 42;
    return 0;
}

/* A job that waits, with a timeout, on a batch that cannot finish yet. */
static int inner_timeout_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)i, (void)slot;
    return wsched_wait(arg, 1000000); /* 1 ms */
}

int main(void)
{
    check_watchdog(60);
    CHECK_EQ(wsched_current_worker(), -ESRCH); /* not a worker */

    /* Default count = CPUs in the affinity mask (restrict it to one CPU). */
    cpu_set_t all, one;
    CHECK_EQ(sched_getaffinity(0, sizeof all, &all), 0);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &all))
            first = c;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, NULL));
    CHECK_EQ(wsched_pool_workers(pool), 1);
    CHECK_OK(wsched_pool_destroy(pool));
    CHECK_EQ(sched_setaffinity(0, sizeof all, &all), 0);
    CHECK_OK(wsched_pool_create(&pool, NULL));
    CHECK(wsched_pool_workers(pool) >= 1 && wsched_pool_workers(pool) <= CPU_COUNT(&all));
    CHECK_OK(wsched_pool_destroy(pool));

    /* Pinned to an explicit CPU list; names. */
    int last = first;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all))
            last = c;
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 3;
    cfg.cpus = &last;
    cfg.ncpus = 1;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    wsched_batch_desc d = {.fn = where_job, .njobs = 300, .slot_size = sizeof(struct seen)};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 300; i++) {
        struct seen *s = wsched_batch_slot(b, i);
        CHECK_EQ(s->cpu, last);
        CHECK(s->worker >= 0 && s->worker < 3);
        char want[16];
        snprintf(want, sizeof want, "wsched/%d", s->worker);
        CHECK(strcmp(s->name, want) == 0);
    }
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));

    /* NO_PIN + timeouts + abandoning a running batch. */
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.flags = WSCHED_POOL_NO_PIN;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    check_gate_reset(&gate, 0);
    d = (wsched_batch_desc){.fn = gated_job, .njobs = 1, .slot_size = sizeof(int)};
    CHECK_OK(wsched_submit(pool, &d, &b));
    /* Its job held by a worker before the in-job wait below: a batch still
     * queued in an inbox would be taken by the waiting job itself (its
     * helper starts what it waits for), and held there behind the gate,
     * which opens only after that wait returned (seen under load). */
    check_gate_await(&gate, 1);
    CHECK_EQ(wsched_wait(b, 0), -ETIMEDOUT);
    CHECK_EQ(wsched_wait(b, 2000000), -ETIMEDOUT); /* 2 ms */
    /* In-worker wait with a timeout also times out (and does not park). */
    wsched_batch *outer;
    d = (wsched_batch_desc){.fn = inner_timeout_job, .arg = b, .njobs = 1};
    CHECK_OK(wsched_submit(pool, &d, &outer));
    CHECK_OK(wsched_wait(outer, -1));
    CHECK_EQ(check_status(outer, 0), -ETIMEDOUT);
    wsched_batch_free(outer);
    check_gate_open(&gate);
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(*(int *)wsched_batch_slot(b, 0), 42);
    wsched_batch_free(b);

    /* Abandon: free while the job still runs; its last reference frees. */
    check_gate_reset(&gate, 0);
    d = (wsched_batch_desc){.fn = gated_job, .njobs = 4, .slot_size = sizeof(int)};
    CHECK_OK(wsched_submit(pool, &d, &b));
    wsched_batch_free(b);
    check_gate_open(&gate);
    CHECK_OK(wsched_pool_destroy(pool)); /* drains the abandoned batch */
    printf("test_pool: ok\n");
    return 0;
}
