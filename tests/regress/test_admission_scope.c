/*
 * Issue 7, gaps around admission (max_jobs), decided and documented in
 * wsched.h: a nested batch larger than max_jobs is accepted (nested work
 * is exempt) while the same batch from outside gets -E2BIG; a worker of
 * pool A submitting to a full pool B is never made to wait: -EBUSY at
 * once even through wsched_submit (which waits from outside).
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

enum { MAX = 4 };

static struct check_gate gate;
static wsched_pool *pool_b;

/* In pool B: a nested batch of 3 * MAX jobs. */
static int nested_big(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i, (void)slot;
    wsched_batch_desc d = {.fn = common_nop_job, .njobs = 3 * MAX};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool_b, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    return 0;
}

/* In pool A, while B is full: must not wait. */
static int cross_submit(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i;
    wsched_batch_desc d = {.fn = common_nop_job, .njobs = 1};
    wsched_batch *b = (wsched_batch *)0x1;
    *(int *)slot = wsched_submit(pool_b, &d, &b);
    CHECK(b == NULL);
    *((int *)slot + 1) = wsched_submit_timed(pool_b, &d, &b, 1000000000ll);
    return 0;
}

int main(void)
{
    check_watchdog(60);
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.max_jobs = MAX;
    CHECK_OK(wsched_pool_create(&pool_b, &cfg));

    /* Outside: too big. Inside: accepted. */
    wsched_batch_desc big = {.fn = common_nop_job, .njobs = 3 * MAX};
    wsched_batch *b;
    CHECK_EQ(wsched_submit(pool_b, &big, &b), -E2BIG);
    wsched_batch_desc outer = {.fn = nested_big, .njobs = 1};
    CHECK_OK(wsched_submit(pool_b, &outer, &b));
    CHECK_OK(wsched_wait(b, -1));
    CHECK_EQ(check_status(b, 0), 0);
    wsched_batch_free(b);

    /* Fill B: MAX jobs held. */
    wsched_batch_desc full = {.fn = check_gate_job, .arg = &gate, .njobs = MAX};
    wsched_batch *held;
    CHECK_OK(wsched_submit(pool_b, &full, &held));
    wsched_batch_desc one = {.fn = common_nop_job, .njobs = 1};
    CHECK_EQ(wsched_submit_timed(pool_b, &one, &b, 0), -EBUSY);

    /* A worker of pool A submitting to full B: -EBUSY, never a wait. */
    wsched_pool *pool_a = check_pool(1);
    wsched_batch_desc d = {.fn = cross_submit, .njobs = 1, .slot_size = 2 * sizeof(int)};
    CHECK_OK(wsched_submit(pool_a, &d, &b));
    CHECK_OK(wsched_wait(b, -1)); /* returns although B stays full */
    CHECK_EQ(((int *)wsched_batch_slot(b, 0))[0], -EBUSY);
    CHECK_EQ(((int *)wsched_batch_slot(b, 0))[1], -EBUSY);
    wsched_batch_free(b);

    check_gate_open(&gate);
    CHECK_OK(wsched_wait(held, -1));
    wsched_batch_free(held);
    CHECK_OK(wsched_pool_destroy(pool_a));
    CHECK_OK(wsched_pool_destroy(pool_b));
    printf("test_admission_scope: ok\n");
    return 0;
}
