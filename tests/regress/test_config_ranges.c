/*
 * Issue 7, defect 3 and the allocator gap: every configuration field is
 * validated; out-of-range values get -EINVAL instead of wrapping (spin_us =
 * 4294968 used to become ~704 ns: 32-bit nanoseconds), a half-set allocator
 * is refused instead of silently replaced by malloc, and non-zero reserved
 * fields are refused (so they can gain a meaning later without breaking
 * callers). timer_slack_ns: its range, and the workers' slack it sets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "check.h"

static void *my_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx, (void)align;
    return aligned_alloc(64, (size + 63) & ~(size_t)63);
}

static void my_free(void *ctx, void *p, size_t size, size_t align)
{
    (void)ctx, (void)size, (void)align;
    free(p);
}

/* A job: its worker's timer slack, into its slot. */
static int slack_job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg, (void)i;
    *(long *)slot = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    return 0;
}

/* Every worker's slack (each job of a batch of 64 reports its worker's). */
static void check_slack(uint64_t asked, long expect)
{
    wsched_config cfg;
    wsched_config_init(&cfg);
    cfg.nworkers = 2;
    cfg.timer_slack_ns = asked;
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    wsched_batch_desc d = {.fn = slack_job, .njobs = 64, .slot_size = sizeof(long)};
    wsched_batch *b;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    for (size_t i = 0; i < 64; i++)
        CHECK_EQ(*(const long *)wsched_batch_slot(b, i), expect);
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
}

static int create(const wsched_config *cfg)
{
    wsched_pool *pool = (wsched_pool *)0x1;
    int r = wsched_pool_create(&pool, cfg);
    if (r == 0)
        CHECK_OK(wsched_pool_destroy(pool));
    else
        CHECK(pool == NULL);
    return r;
}

int main(void)
{
    check_watchdog(60);
    wsched_config cfg;

    /* spin_us: 0 (default) .. WSCHED_SPIN_US_MAX. */
    wsched_config_init(&cfg);
    cfg.nworkers = 1;
    cfg.spin_us = 4294968; /* * 1000 wraps in 32 bits */
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.spin_us = WSCHED_SPIN_US_MAX + 1;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.spin_us = WSCHED_SPIN_US_MAX;
    CHECK_EQ(create(&cfg), 0);
    cfg.spin_us = 0;
    CHECK_EQ(create(&cfg), 0);

    /* max_jobs fits the signed admission counter. */
    cfg.max_jobs = (uint64_t)INT64_MAX + 1;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.max_jobs = UINT64_MAX;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.max_jobs = (uint64_t)INT64_MAX;
    CHECK_EQ(create(&cfg), 0);
    cfg.max_jobs = 0;

    /* timer_slack_ns: 0 (default: 1 us) .. WSCHED_TIMER_SLACK_NS_MAX, and
     * the workers have it (the caller's own stays as it was). */
    cfg.timer_slack_ns = WSCHED_TIMER_SLACK_NS_MAX + 1;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.timer_slack_ns = UINT64_MAX;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.timer_slack_ns = 0;
    long mine = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    check_slack(0, 1000);
    check_slack(1, 1);
    check_slack(WSCHED_TIMER_SLACK_NS_MAX, WSCHED_TIMER_SLACK_NS_MAX);
    CHECK_EQ(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), mine);

    /* A CPU count without a CPU list. */
    cfg.ncpus = 3;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.ncpus = 0;

    /* Reserved fields must be zero. */
    cfg.reserved[2] = &cfg;
    CHECK_EQ(create(&cfg), -EINVAL);
    cfg.reserved[2] = NULL;

    /* An allocator needs both functions. */
    wsched_allocator half = {.alloc = my_alloc};
    cfg.allocator = &half;
    CHECK_EQ(create(&cfg), -EINVAL);
    half = (wsched_allocator){.free = my_free};
    CHECK_EQ(create(&cfg), -EINVAL);
    wsched_allocator full = {.alloc = my_alloc, .free = my_free};
    cfg.allocator = &full;
    CHECK_EQ(create(&cfg), 0);

    /* Batch descriptors: reserved fields, a stride without slots. */
    wsched_config_init(&cfg);
    cfg.nworkers = 1;
    wsched_pool *pool;
    CHECK_OK(wsched_pool_create(&pool, &cfg));
    wsched_batch *b = (wsched_batch *)0x1;
    wsched_batch_desc d = {.fn = common_nop_job, .njobs = 2};
    d.reserved[0] = &d;
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL);
    CHECK(b == NULL);
    d.reserved[0] = NULL;
    d.slot_stride = 16;
    CHECK_EQ(wsched_submit(pool, &d, &b), -EINVAL);
    d.slot_stride = 0;
    CHECK_OK(wsched_submit(pool, &d, &b));
    CHECK_OK(wsched_wait(b, -1));
    wsched_batch_free(b);
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_config_ranges: ok\n");
    return 0;
}
