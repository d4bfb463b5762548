/*
 * Issue 7, defect 1: for a batch without quorum or deadline, the moment
 * wsched_wait returns is the moment every job has returned, so
 * wsched_wait_idle(b, 0) right after it must answer 0 (the header's
 * promise). Before the fix, batch_complete released the waiter before it
 * marked the batch idle and this failed in ~4-10 % of rounds. And the
 * converse: after wsched_wait_idle returned 0, wsched_wait(b, 0) sees the
 * batch complete (the first fix broke it; tests/fuzz found it).
 */
#include <errno.h>

#include "check.h"

static int job(wsched_ctx *ctx, void *arg, size_t i, void *slot)
{
    (void)ctx, (void)arg;
    volatile unsigned x = 0;
    for (unsigned k = 0; k < 200 * (unsigned)(i + 1); k++)
        x += k;
    *(size_t *)slot = i + 1;
    return i % 3 == 2 ? -EIO : 0;
}

int main(void)
{
    check_watchdog(120);
    wsched_pool *pool = check_pool(2);
    long rounds = check_scale(40000);
    static const unsigned policies[] = {WSCHED_POLICY_BEST_EFFORT, WSCHED_POLICY_FAIL_FAST};
    for (long r = 0; r < rounds; r++) {
        wsched_batch_desc d = {.fn = job, .njobs = 1 + (size_t)(r % 8), .slot_size = sizeof(size_t),
                               .policy = policies[r % 2]};
        wsched_batch *b;
        CHECK_OK(wsched_submit(pool, &d, &b));
        if (r % 4 < 2) {
            int w = wsched_wait(b, -1);
            CHECK(w == 0 || w == -EIO);
            CHECK_EQ(wsched_wait_idle(b, 0), 0);
        } else {
            /* The converse (found by tests/fuzz): wait_idle returned 0,
             * so wsched_wait(b, 0) must see the batch complete. */
            CHECK_EQ(wsched_wait_idle(b, -1), 0);
            int w = wsched_wait(b, 0);
            CHECK(w == 0 || w == -EIO);
        }
        wsched_batch_free(b);
    }
    CHECK_OK(wsched_pool_destroy(pool));
    printf("test_wait_idle_order: %ld rounds, ok\n", rounds);
    return 0;
}
