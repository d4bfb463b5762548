/*
 * A downstream's handle after destroy (the brief: use after destroy gets
 * a clear error, never a crash): every call that takes it answers -EBADF,
 * a batch naming it is refused with -EBADF and nothing is submitted; a
 * pointer that was never a downstream's handle answers -EINVAL. Under
 * ASan a read of the freed downstream would be reported: the handle is a
 * tombstone that outlives it.
 */
#include <errno.h>
#include <string.h>

#include "check.h"

static int job(wsched_ctx *c, void *arg, size_t i, void *slot)
{
    (void)c, (void)arg, (void)i, (void)slot;
    return 0;
}

static void all_refuse(wsched_downstream *ds, wsched_pool *pool, int want)
{
    wsched_downstream_stats s;
    wsched_dead_letter dl[2];
    wsched_permit p = 0;
    uint64_t prev = 0, delay = 0;
    CHECK_EQ(wsched_downstream_get_stats(ds, &s, sizeof s), want);
    CHECK_EQ(wsched_breaker_state(ds), want);
    CHECK_EQ(wsched_breaker_acquire(ds, &p), want);
    CHECK_EQ(wsched_breaker_release(ds, 0x80000000u, 0), want);
    CHECK_EQ(wsched_limit_acquire(ds, 0, 0), want);
    CHECK_EQ(wsched_retry_decide(ds, 1, 1, -EIO, 0, &prev, &delay), want);
    CHECK_EQ(wsched_budget_allows(ds), want);
    CHECK_EQ(wsched_dead_letters_drain(ds, dl, 2), want);
    CHECK_EQ(wsched_downstream_destroy(ds), want);
    wsched_batch_desc d = {.fn = job, .njobs = 4, .downstream = ds};
    wsched_batch *b = (wsched_batch *)&d; /* set to NULL on failure */
    CHECK_EQ(wsched_submit(pool, &d, &b), want);
    CHECK(b == NULL);
    CHECK_EQ(wsched_reserve(pool, &d, 1), want);
}

int main(void)
{
    wsched_pool *pool = check_pool(2);
    for (int k = 0; k < 3; k++) {
        wsched_downstream_config c = {
            .name = "gone",
            .retry = {.max_attempts = 3, .base_ns = 1000},
            .breaker = {.failure_count = 5, .open_ns = 1000000000},
            .limit = {.rate_per_s = 1000},
            .hedge = {.delay_ns = 1000000, .percentile = k == 2 ? 90 : 0},
        };
        wsched_downstream *ds = NULL;
        CHECK_OK(wsched_downstream_create(&ds, &c));
        /* In use first: a batch through it. */
        wsched_batch_desc d = {.fn = job, .njobs = 8, .downstream = ds};
        wsched_batch *b = NULL;
        CHECK_OK(wsched_submit(pool, &d, &b));
        CHECK_OK(wsched_wait_idle(b, -1));
        wsched_batch_free(b);
        CHECK_OK(wsched_downstream_destroy(ds));
        all_refuse(ds, pool, -EBADF);
    }
    /* Never a downstream: a zeroed block, and one with another magic. */
    _Alignas(16) unsigned char fake[64];
    memset(fake, 0, sizeof fake);
    all_refuse((wsched_downstream *)(void *)fake, pool, -EINVAL);
    memset(fake, 0x5a, sizeof fake);
    all_refuse((wsched_downstream *)(void *)fake, pool, -EINVAL);
    CHECK_OK(wsched_pool_destroy(pool));
    puts("test_downstream_destroyed: ok");
    return 0;
}
